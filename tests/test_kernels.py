"""The C kernels, built for the host, against the numpy reference model, bit for bit.

Every spatial kernel is checked on whole tensors and on sub-rectangles computed from partial
windows (with padded row strides and ring-stored rows); the iterative tails are checked fed in
pieces. Bytes of a window that the kernel must not need are filled with noise, so reading the
wrong place changes the result.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from msfsim import refmodel
from msfsim.host_build import build, cdef_from_header

ROOT = Path(__file__).resolve().parents[1] / "msfsim" / "kernels_c"
SHIM = """
static int32_t msf_test_requantize(int32_t acc, int32_t m, int32_t s)
{ return msf_requantize(acc, m, s); }
static int32_t msf_test_requantize_fast(int32_t acc, int32_t m, int32_t r, int32_t s)
{ return msf_requantize_fast(acc, m, r, s); }
static int32_t msf_test_doubling_high_mult(int32_t a, int32_t b)
{ return msf_doubling_high_mult(a, b); }
static int msf_test_dsp(void) { return MSF_DSP; }
"""


def op_headers() -> list[str]:
    """The ops' own kernel headers (OpDef.c_header), beside msf_kernels.h."""
    from msfsim import ops
    return sorted({o.c_header for o in ops.REGISTRY.values() if o.c_header})


def build_kernels(*flags: str):
    cdef = cdef_from_header(ROOT / "msf_kernels.h") + "".join(
        cdef_from_header(ROOT / h) for h in op_headers()) + """
static int32_t msf_test_requantize(int32_t acc, int32_t m, int32_t s);
static int32_t msf_test_requantize_fast(int32_t acc, int32_t m, int32_t r, int32_t s);
static int32_t msf_test_doubling_high_mult(int32_t a, int32_t b);
static int msf_test_dsp(void);
"""
    return build("kernels_test", sorted(ROOT.glob("kernels/*.c")), cdef, include_dirs=[ROOT],
                 headers=["msf_kernels.h", "msf_nnsupport.h", *op_headers()], preamble=SHIM, extra_compile_args=["-Wall", *flags])


# The plain C kernels, and their Cortex-M DSP variant with C versions of the intrinsics.
@pytest.fixture(scope="module", params=["plain", "dsp"])
def kl(request):
    ffi, lib = build_kernels("-DMSF_DSP_EMULATE=1") if request.param == "dsp" else build_kernels()
    assert lib.msf_test_dsp() == (request.param == "dsp")
    return ffi, lib


def channel_params(ffi, weight, bias, mult, shift, zp_in: int, zp_out: int, depthwise: bool,
                   keep: list):
    """msf_channel_params of a conv layer and its fast_requant flag, as code generation
    (msfsim/codegen/emit.py) computes them."""
    axes = (0, 1) if depthwise else (1, 2, 3)
    wt = weight.astype(np.int64)
    b = np.zeros(len(mult), np.int64) if bias is None else np.asarray(bias, np.int64)
    ksum = b - zp_in * wt.sum(axis=axes)
    ksum = (ksum + (1 << 31)) % (1 << 32) - (1 << 31)
    m = np.asarray(mult, np.int64)
    e = -np.asarray(shift, np.int64)
    bound = np.abs(ksum) + 128 * np.abs(wt).sum(axis=axes)
    fast = bool(np.all(m >= 0) and np.all((e >= 1) & (e <= 22)) and np.all(bound < (1 << 30))
                and -128 <= zp_out <= 127)
    table = np.zeros((len(m), 4), np.int32)
    table[:, 0], table[:, 1] = ksum, m
    if fast:
        table[:, 2] = (1 << (e - 1)) + zp_out * (1 << e)
        table[:, 3] = e
    keep.append(table)
    return ffi.cast("const msf_channel_params *", ffi.from_buffer("int32_t[]", table)), int(fast)


# ------------------------------------------------------------------ windows

@dataclass
class Win:
    """An msf_window and the numpy storage behind it (kept alive with it)."""
    ptr: object
    buf: np.ndarray
    y0: int
    x0: int
    h: int
    w: int
    ring: int
    stride: int

    def read(self, y0: int, x0: int, h: int, w: int) -> np.ndarray:
        c = self.ptr.c
        rows = []
        for y in range(y0, y0 + h):
            r = (y % self.ring) if self.ring else (y - self.y0)
            start = r * self.stride + (x0 - self.x0) * c
            rows.append(self.buf[start:start + w * c].reshape(w, c))
        return np.stack(rows)


def window(ffi, rng, tensor: np.ndarray | None, shape, y0=0, x0=0, h=None, w=None,
           ring=0, extra=0) -> Win:
    """A window over rows [y0, y0+h) x cols [x0, x0+w) of a (H, W, C) tensor, filled from
    `tensor` (or noise for an output); `extra` bytes of slack per row; `ring` > 0 stores rows
    in a ring of that many rows."""
    th, tw, c = shape
    h = th - y0 if h is None else h
    w = tw - x0 if w is None else w
    stride = w * c + extra
    nrows = ring if ring else h
    buf = rng.integers(-128, 128, size=max(nrows, 1) * stride, dtype=np.int8)
    win = Win(None, buf, y0, x0, h, w, ring, stride)
    if tensor is not None:
        for y in range(y0, y0 + h):
            r = (y % ring) if ring else (y - y0)
            buf[r * stride:r * stride + w * c] = tensor[y, x0:x0 + w].reshape(-1)
    win.ptr = ffi.new("msf_window *", dict(
        data=ffi.from_buffer("int8_t[]", buf), y0=y0, x0=x0, h=h, w=w, c=c, row_stride=stride,
        ring_rows=ring, tensor_h=th, tensor_w=tw))
    return win


def needed(o0: int, n: int, k: int, s: int, p0: int, size: int) -> tuple[int, int]:
    """Input rows [a, b) (inside the tensor) read by outputs [o0, o0+n)."""
    a = max(o0 * s - p0, 0)
    b = min((o0 + n - 1) * s - p0 + k, size)
    return a, max(b, a)


# ------------------------------------------------------------------ random parameters

def rand_quant(rng, k_elems: int, cout: int):
    """Per-channel multipliers/shifts that keep typical outputs inside int8."""
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=cout).astype(np.int32)
    base = -int(round(7.5 + 0.5 * np.log2(k_elems)))
    shift = (base + rng.integers(-1, 2, size=cout)).astype(np.int32)
    return mult, shift


def rand_clamp(rng, zp_out: int) -> tuple[int, int]:
    if rng.random() < 0.4:  # relu6-like clamp
        return zp_out, min(127, zp_out + int(rng.integers(20, 120)))
    return -128, 127


@dataclass
class ConvCase:
    h: int
    w: int
    cin: int
    cout: int
    k: tuple[int, int]
    s: tuple[int, int]
    pad: tuple[int, int, int, int]
    depthwise: bool


def conv_params(ffi, rng, case: ConvCase, keep: list, fast: bool | None = None):
    """Random parameters; `fast` True / False forces the fast requantisation's conditions
    (full int8 clamp, every shift in range) to hold / to fail, None draws them."""
    kh, kw = case.k
    if case.depthwise:
        wt = rng.integers(-127, 128, size=(kh, kw, case.cin), dtype=np.int8)
        kel = kh * kw
    else:
        wt = rng.integers(-127, 128, size=(case.cout, kh, kw, case.cin), dtype=np.int8)
        kel = kh * kw * case.cin
    cout = case.cin if case.depthwise else case.cout
    bias = rng.integers(-5000, 5000, size=cout).astype(np.int32)
    mult, shift = rand_quant(rng, kel, cout)
    if fast is False or (fast is None and rng.random() < 0.2):  # a channel out of its range
        shift[int(rng.integers(0, cout))] = int(rng.choice([0, 1, -23]))
    zp_in, zp_out = (int(v) for v in rng.integers(-40, 40, size=2))
    lo, hi = (-128, 127) if fast else rand_clamp(rng, zp_out)
    keep += [wt, bias, mult, shift]
    channels, fast = channel_params(ffi, wt, bias, mult, shift, zp_in, zp_out, case.depthwise, keep)
    p = ffi.new("msf_conv_params *", dict(
        kernel_h=kh, kernel_w=kw, stride_h=case.s[0], stride_w=case.s[1], pad_top=case.pad[0],
        pad_left=case.pad[1], input_offset=-zp_in, output_offset=zp_out, act_min=lo, act_max=hi,
        weights=ffi.from_buffer("int8_t[]", wt), bias=ffi.from_buffer("int32_t[]", bias),
        multiplier=ffi.from_buffer("int32_t[]", mult), shift=ffi.from_buffer("int32_t[]", shift),
        channels=channels, fast_requant=fast))
    ref = dict(weight=wt, bias=bias, multiplier=mult, shift=shift, stride=case.s, pad=case.pad,
               zp_in=zp_in, zp_out=zp_out, act_min=lo, act_max=hi)
    return p, ref


def rand_conv_case(rng, depthwise: bool, k: int | None = None) -> ConvCase:
    k = int(rng.choice([1, 3, 5, 7])) if k is None else k
    kh, kw = (k, k) if rng.random() < 0.8 else (k, max(1, k - 2))
    s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pad = tuple(int(rng.integers(0, max(kh, kw) // 2 + 2)) for _ in range(4))
    pad = (min(pad[0], kh - 1), min(pad[1], kw - 1), min(pad[2], kh - 1), min(pad[3], kw - 1))
    h = int(rng.integers(max(kh - pad[0] - pad[2], 1), 14))
    w = int(rng.integers(max(kw - pad[1] - pad[3], 1), 14))
    cin = int(rng.integers(1, 9))
    return ConvCase(h, w, cin, int(rng.integers(1, 9)), (kh, kw), s, pad, depthwise)


def out_hw(case_hw, k, s, pad):
    return ((case_hw[0] + pad[0] + pad[2] - k[0]) // s[0] + 1,
            (case_hw[1] + pad[1] + pad[3] - k[1]) // s[1] + 1)


def rand_rect(rng, ho: int, wo: int) -> tuple[int, int, int, int]:
    oy0 = int(rng.integers(0, ho))
    ox0 = int(rng.integers(0, wo))
    return oy0, ox0, int(rng.integers(1, ho - oy0 + 1)), int(rng.integers(1, wo - ox0 + 1))


def run_region(ffi, lib, rng, fn_name, x, in_shape, k, s, pad, out_shape, rect, p, partial,
               scratch_bytes=0):
    """Run a single-input region kernel on `rect` of the output; returns the region."""
    oy0, ox0, oh, ow = rect
    if partial:
        ya, yb = needed(oy0, oh, k[0], s[0], pad[0], in_shape[0])
        xa, xb = needed(ox0, ow, k[1], s[1], pad[1], in_shape[1])
        ring = int(yb - ya + rng.integers(0, 3)) if rng.random() < 0.5 else 0
        win_in = window(ffi, rng, x, in_shape, ya, xa, yb - ya, xb - xa, ring=max(ring, 1) if ring else 0,
                        extra=int(rng.integers(0, 5)))
        oring = int(oh + rng.integers(0, 2)) if rng.random() < 0.5 else 0
        win_out = window(ffi, rng, None, out_shape, oy0, ox0, oh, ow, ring=oring,
                         extra=int(rng.integers(0, 5)))
    else:
        win_in = window(ffi, rng, x, in_shape)
        win_out = window(ffi, rng, None, out_shape)
    args = [win_in.ptr, p, win_out.ptr, oy0, ox0, oh, ow]
    if scratch_bytes is not None:
        scratch = np.zeros(max(scratch_bytes, 4) // 4 + 1, np.int32)
        args.append(ffi.from_buffer("int32_t[]", scratch))
    getattr(lib, fn_name)(*args)
    return win_out.read(oy0, ox0, oh, ow)


# ------------------------------------------------------------------ tests

@pytest.mark.parametrize("soft_mul", [False, True])
def test_requantize_matches_refmodel(kl, soft_mul):
    """Also with the 16-bit-pieces 64-bit product that cores without __muldi3 use."""
    ffi, lib = build_kernels("-DMSF_WIDE_MUL_SOFT=1") if soft_mul else kl
    rng = np.random.default_rng(1)
    acc = np.concatenate([rng.integers(-2**31, 2**31, 3000), rng.integers(-300, 300, 1000),
                          [0, 1, -1, 2**31 - 1, -2**31]])
    mult = np.concatenate([rng.integers(1 << 30, 1 << 31, acc.size - 2), [0, (1 << 31) - 1]])
    shift = rng.integers(-31, 32, acc.size)
    want = refmodel.requantize(acc, mult, shift)
    got = np.array([lib.msf_test_requantize(int(a), int(m), int(s))
                    for a, m, s in zip(acc, mult, shift)])
    np.testing.assert_array_equal(got, want)


EDGES = [-2**31, -2**31 + 1, -2**30 - 1, -2**30, -2**30 + 1, -65537, -65536, -257, -256, -129,
         -128, -3, -2, -1, 0, 1, 2, 3, 127, 128, 255, 256, 65535, 65536, 2**30 - 1, 2**30,
         2**30 + 1, 2**31 - 2, 2**31 - 1]


@pytest.mark.parametrize("soft_mul", [False, True])
def test_fixed_point_edges_match_gemmlowp(soft_mul):
    """DoublingHighMul as an arithmetic shift, and the right-shift requantisation folded into
    one 64-bit rounding, equal gemmlowp's nudge / truncate / RoundingDivideByPOT definitions
    (refmodel) on edge and random values, for any sign of the multiplier."""
    ffi, lib = build_kernels("-DMSF_WIDE_MUL_SOFT=1") if soft_mul else build_kernels()
    rng = np.random.default_rng(3)
    a, b = (v.ravel() for v in np.meshgrid(EDGES, EDGES))
    a = np.concatenate([a, rng.integers(-2**31, 2**31, 4000)])
    b = np.concatenate([b, rng.integers(-2**31, 2**31, 4000)])
    got = np.array([lib.msf_test_doubling_high_mult(int(x), int(y)) for x, y in zip(a, b)])
    np.testing.assert_array_equal(got, refmodel.doubling_high_mul(a, b))
    shift = rng.integers(-31, 32, a.size)
    shift[:len(EDGES) ** 2] = np.resize([-31, -30, -2, -1, 0, 1, 31], len(EDGES) ** 2)
    got = np.array([lib.msf_test_requantize(int(x), int(y), int(s))
                    for x, y, s in zip(a, b, shift)])
    np.testing.assert_array_equal(got, refmodel.requantize(a, b, shift))


@pytest.mark.parametrize("soft_mul", [False, True])
def test_fast_requantize_in_its_range(soft_mul):
    """msf_requantize_fast with the msf_channel_params constants equals requantize + offset for
    |acc| < 2^30, multipliers >= 0, right shifts 1..22 and int8 output offsets."""
    ffi, lib = build_kernels("-DMSF_WIDE_MUL_SOFT=1") if soft_mul else build_kernels()
    rng = np.random.default_rng(4)
    n = 6000
    edges = [v for v in EDGES if abs(v) < 2**30] + [2**30 - 1, -(2**30 - 1), 2**29, -2**29 - 1]
    acc = np.concatenate([np.resize(edges, n), rng.integers(-2**30 + 1, 2**30, n),
                          rng.integers(-5000, 5000, n)])
    mult = np.concatenate([rng.integers(0, 2**31, 2 * n), rng.integers(1 << 30, 1 << 31, n)])
    mult[:8] = [0, 1, 2**30, 2**31 - 1, 0, 1, 2**30, 2**31 - 1]
    e = rng.integers(1, 23, acc.size)
    e[:30] = np.resize([1, 2, 3, 21, 22], 30)
    zp = rng.integers(-128, 128, acc.size)
    zp[:16] = np.resize([-128, 127, 0, -1], 16)
    rnd = (1 << (e - 1)) + zp * (1 << e)
    got = np.array([lib.msf_test_requantize_fast(int(x), int(m), int(r), int(s))
                    for x, m, r, s in zip(acc, mult, rnd, e)])
    np.testing.assert_array_equal(got, refmodel.requantize(acc, mult, -e) + zp)


@pytest.mark.parametrize("kind", ["1x1", "1x1s2", "3x3s2", "dw3x3", "dw3x3s2", "dw5x5"])
def test_thin_regions_and_channel_tails(kl, kind):
    """One-column and one-row regions (how fused blocks call the kernels), single pixels and
    partial ring windows, over channel counts with every remainder of the kernels' blocking,
    with the fast requantisation and without."""
    ffi, lib = kl
    rng = np.random.default_rng(sum(map(ord, kind)))
    dw = kind.startswith("dw")
    k = int(kind[-3] if kind.endswith("s2") else kind[-1])
    s = 2 if kind.endswith("s2") else 1
    chans = [(3, 11), (5, 30), (11, 5), (30, 8), (33, 7), (8, 48), (1, 1), (4, 2), (7, 3)]
    for trial, (cin, cout) in enumerate(chans):
        pad = (k // 2,) * 4
        case = ConvCase(int(rng.integers(k, 12)), int(rng.integers(k, 12)), cin,
                        cin if dw else cout, (k, k), (s, s), pad, dw)
        keep: list = []
        p, ref = conv_params(ffi, rng, case, keep, fast=trial % 3 != 2)
        assert p.fast_requant == (trial % 3 != 2)
        x = rng.integers(-128, 128, size=(case.h, case.w, cin), dtype=np.int8)
        want = (refmodel.dwconv if dw else refmodel.conv)(x, **ref)
        ho, wo = want.shape[:2]
        if dw:
            fn, scratch = "msf_depthwise_conv_s8", None
        elif k == 1:
            fn, scratch = "msf_convolve_1x1_s8", None
        else:
            fn, scratch = "msf_convolve_s8", lib.msf_convolve_s8_get_buffer_size(p, cin)
        rects = ([(0, ox, ho, 1) for ox in range(wo)] + [(oy, 0, 1, wo) for oy in range(ho)]
                 + [(int(rng.integers(0, ho)), int(rng.integers(0, wo)), 1, 1)]
                 + [rand_rect(rng, ho, wo) for _ in range(2)])
        for rect in rects:
            got = run_region(ffi, lib, rng, fn, x, x.shape, case.k, case.s, case.pad,
                             want.shape, rect, p, rect[3] == 1, scratch)
            oy0, ox0, oh, ow = rect
            np.testing.assert_array_equal(got, want[oy0:oy0 + oh, ox0:ox0 + ow],
                                          err_msg=f"{case} rect={rect}")


@pytest.mark.parametrize("k", [1, 3, 5, 7])
@pytest.mark.parametrize("depthwise", [False, True])
def test_conv_whole_and_regions(kl, k, depthwise):
    ffi, lib = kl
    rng = np.random.default_rng(100 * k + depthwise)
    for trial in range(12):
        case = rand_conv_case(rng, depthwise, k)
        keep: list = []
        p, ref = conv_params(ffi, rng, case, keep)
        x = rng.integers(-128, 128, size=(case.h, case.w, case.cin), dtype=np.int8)
        want = (refmodel.dwconv if depthwise else refmodel.conv)(x, **ref)
        ho, wo = want.shape[:2]
        cout = want.shape[2]
        if depthwise:
            fn, scratch = "msf_depthwise_conv_s8", None
            assert lib.msf_depthwise_conv_s8_get_buffer_size(p, case.cin) == 0
        else:
            fn, scratch = "msf_convolve_s8", lib.msf_convolve_s8_get_buffer_size(p, case.cin)
            assert scratch == (0 if case.k == (1, 1) else -(-case.k[0] * case.k[1] * case.cin * 2 // 4) * 4)
        for partial, rect in [(False, (0, 0, ho, wo))] + [(True, rand_rect(rng, ho, wo)) for _ in range(3)]:
            got = run_region(ffi, lib, rng, fn, x, x.shape, case.k, case.s, case.pad,
                             (ho, wo, cout), rect, p, partial, scratch)
            oy0, ox0, oh, ow = rect
            np.testing.assert_array_equal(got, want[oy0:oy0 + oh, ox0:ox0 + ow],
                                          err_msg=f"{case} rect={rect} partial={partial}")


def test_conv_1x1_fast_path_with_padding_and_stride(kl):
    ffi, lib = kl
    rng = np.random.default_rng(7)
    for trial in range(10):
        case = ConvCase(int(rng.integers(1, 12)), int(rng.integers(1, 12)), int(rng.integers(1, 12)),
                        int(rng.integers(1, 9)), (1, 1), (int(rng.integers(1, 3)),) * 2,
                        tuple(int(v) for v in rng.integers(0, 2, 4)), False)
        keep: list = []
        p, ref = conv_params(ffi, rng, case, keep)
        x = rng.integers(-128, 128, size=(case.h, case.w, case.cin), dtype=np.int8)
        want = refmodel.conv(x, **ref)
        got = run_region(ffi, lib, rng, "msf_convolve_1x1_s8", x, x.shape, (1, 1), case.s,
                         case.pad, want.shape, (0, 0) + want.shape[:2], p, False, None)
        np.testing.assert_array_equal(got, want)


def pool_params(ffi, rng, kind, k, s, pad, zp_in, zp_out):
    lo, hi = rand_clamp(rng, zp_out) if kind == "avg" else (-128, 127)
    if kind == "max" and rng.random() < 0.5:
        lo, hi = zp_in, 127
    mult, shift = rand_quant(rng, k[0] * k[1], 1)
    p = ffi.new("msf_pool_params *", dict(
        kernel_h=k[0], kernel_w=k[1], stride_h=s[0], stride_w=s[1], pad_top=pad[0],
        pad_left=pad[1], input_offset=-zp_in, output_offset=zp_out, act_min=lo, act_max=hi,
        multiplier=int(mult[0]), shift=int(shift[0]) + 3))
    return p, int(mult[0]), int(shift[0]) + 3, lo, hi


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_whole_and_regions(kl, kind):
    ffi, lib = kl
    rng = np.random.default_rng(11 if kind == "max" else 12)
    for trial in range(20):
        k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        pad = (int(rng.integers(0, k[0])), int(rng.integers(0, k[1])),
               int(rng.integers(0, k[0])), int(rng.integers(0, k[1])))
        shape = (int(rng.integers(max(k[0] - pad[0] - pad[2], 1), 12)),
                 int(rng.integers(max(k[1] - pad[1] - pad[3], 1), 12)), int(rng.integers(1, 7)))
        zp_in, zp_out = (int(v) for v in rng.integers(-40, 40, size=2))
        p, m, sh, lo, hi = pool_params(ffi, rng, kind, k, s, pad, zp_in, zp_out)
        x = rng.integers(-128, 128, size=shape, dtype=np.int8)
        if kind == "max":
            want = refmodel.maxpool(x, k, s, pad, lo, hi)
        else:
            want = refmodel.avgpool(x, k, s, pad, m, sh, zp_in, zp_out, lo, hi)
        ho, wo = want.shape[:2]
        for partial, rect in [(False, (0, 0, ho, wo))] + [(True, rand_rect(rng, ho, wo)) for _ in range(3)]:
            got = run_region(ffi, lib, rng, f"msf_{kind}_pool_s8", x, shape, k, s, pad,
                             want.shape, rect, p, partial, None)
            oy0, ox0, oh, ow = rect
            np.testing.assert_array_equal(got, want[oy0:oy0 + oh, ox0:ox0 + ow])


def test_elementwise_add(kl):
    ffi, lib = kl
    rng = np.random.default_rng(21)
    from msfsim.ir import ADD_LEFT_SHIFT, quantize_multiplier
    for trial in range(15):
        shape = (int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 9)))
        sa, sb, so = rng.uniform(0.01, 0.1, 3)
        zpa, zpb, zpo = (int(v) for v in rng.integers(-50, 50, 3))
        twice = 2 * max(sa, sb)
        q = [quantize_multiplier(sa / twice), quantize_multiplier(sb / twice),
             quantize_multiplier(twice / ((1 << ADD_LEFT_SHIFT) * so))]
        mult = [m for m, _ in q]
        shift = [s for _, s in q]
        lo, hi = rand_clamp(rng, zpo)
        a = rng.integers(-128, 128, size=shape, dtype=np.int8)
        b = rng.integers(-128, 128, size=shape, dtype=np.int8)
        want = refmodel.add(a, b, mult, shift, zpa, zpb, zpo, lo, hi)
        p = ffi.new("msf_add_params *", dict(
            input1_offset=-zpa, input2_offset=-zpb, left_shift=ADD_LEFT_SHIFT,
            input1_mult=mult[0], input1_shift=shift[0], input2_mult=mult[1], input2_shift=shift[1],
            output_mult=mult[2], output_shift=shift[2], output_offset=zpo, act_min=lo, act_max=hi))
        oy0, ox0, oh, ow = rand_rect(rng, shape[0], shape[1])
        wa = window(ffi, rng, a, shape, oy0, ox0, oh, ow, extra=int(rng.integers(0, 4)))
        wb = window(ffi, rng, b, shape, 0, 0, ring=shape[0] + 1)
        wo = window(ffi, rng, None, shape, oy0, ox0, oh, ow, ring=oh)
        lib.msf_elementwise_add_s8(wa.ptr, wb.ptr, p, wo.ptr, oy0, ox0, oh, ow)
        np.testing.assert_array_equal(wo.read(oy0, ox0, oh, ow), want[oy0:oy0 + oh, ox0:ox0 + ow])
        assert lib.msf_elementwise_add_s8_get_buffer_size(p, shape[2]) == 0


def test_conv_maxpool_fused(kl):
    ffi, lib = kl
    rng = np.random.default_rng(31)
    for trial in range(12):
        case = rand_conv_case(rng, False, int(rng.choice([1, 3, 5])))
        keep: list = []
        p, ref = conv_params(ffi, rng, case, keep)
        x = rng.integers(-128, 128, size=(case.h, case.w, case.cin), dtype=np.int8)
        y = refmodel.conv(x, **ref)
        pk = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        ps = (pk[0] + int(rng.integers(0, 2)), pk[1] + int(rng.integers(0, 2)))  # stride >= window
        ppad = (int(rng.integers(0, pk[0])), int(rng.integers(0, pk[1])), 0, 0)
        if y.shape[0] + ppad[0] < pk[0] or y.shape[1] + ppad[1] < pk[1]:
            continue
        pp, *_ = pool_params(ffi, rng, "max", pk, ps, ppad, ref["zp_out"], 0)
        want = refmodel.maxpool(y, pk, ps, ppad, pp.act_min, pp.act_max)
        scratch_bytes = lib.msf_convolve_maxpool_s8_get_buffer_size(p, pp, case.cin, case.cout)
        scratch = np.zeros(scratch_bytes // 4 + 1, np.int32)
        rect = (0, 0) + want.shape[:2] if trial % 2 == 0 else rand_rect(rng, *want.shape[:2])
        wo = window(ffi, rng, None, want.shape)
        win = window(ffi, rng, x, x.shape)
        lib.msf_convolve_maxpool_s8(win.ptr, p, pp, y.shape[0], y.shape[1], wo.ptr, *rect,
                                    ffi.from_buffer("int32_t[]", scratch))
        oy0, ox0, oh, ow = rect
        np.testing.assert_array_equal(wo.read(*rect), want[oy0:oy0 + oh, ox0:ox0 + ow])


def test_gap_accumulate_in_pieces(kl):
    ffi, lib = kl
    rng = np.random.default_rng(41)
    for trial in range(10):
        shape = (int(rng.integers(1, 12)), int(rng.integers(1, 12)), int(rng.integers(1, 10)))
        zp_in, zp_out = (int(v) for v in rng.integers(-40, 40, 2))
        mult, shift = rand_quant(rng, 1, 1)
        m, s = int(mult[0]), int(shift[0]) + 7 - int(np.log2(shape[0] * shape[1]))
        lo, hi = rand_clamp(rng, zp_out)
        x = rng.integers(-128, 128, size=shape, dtype=np.int8)
        want = refmodel.gap(x, m, s, zp_in, zp_out, lo, hi)
        p = ffi.new("msf_gap_params *", dict(channels=shape[2], input_offset=-zp_in,
                                              output_offset=zp_out, act_min=lo, act_max=hi,
                                              multiplier=m, shift=s))
        assert lib.msf_global_avg_pool_s8_get_buffer_size(p) == 4 * shape[2]
        sums = np.zeros(shape[2], np.int32)
        sp = ffi.from_buffer("int32_t[]", sums)
        lib.msf_global_avg_pool_init_s8(p, sp)
        # row bands, each split into column pieces, each fed from its own ring window
        y = 0
        while y < shape[0]:
            bh = int(rng.integers(1, shape[0] - y + 1))
            x0 = 0
            while x0 < shape[1]:
                bw = int(rng.integers(1, shape[1] - x0 + 1))
                win = window(ffi, rng, x, shape, y, x0, bh, bw, ring=bh + int(rng.integers(0, 2)))
                lib.msf_global_avg_pool_accumulate_s8(win.ptr, p, y, x0, bh, bw, sp)
                x0 += bw
            y += bh
        out = np.zeros(shape[2], np.int8)
        lib.msf_global_avg_pool_finish_s8(p, sp, ffi.from_buffer("int8_t[]", out))
        np.testing.assert_array_equal(out, want.reshape(-1))


def test_dense_accumulate_in_pieces(kl):
    ffi, lib = kl
    rng = np.random.default_rng(51)
    for trial in range(10):
        shape = (int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(1, 12)))
        n = int(np.prod(shape))
        cout = int(rng.integers(1, 12))
        wt = rng.integers(-127, 128, size=(cout, n), dtype=np.int8)
        bias = rng.integers(-5000, 5000, cout).astype(np.int32)
        mult, shift = rand_quant(rng, n, cout)
        zp_in, zp_out = (int(v) for v in rng.integers(-40, 40, 2))
        lo, hi = rand_clamp(rng, zp_out)
        x = rng.integers(-128, 128, size=shape, dtype=np.int8)
        want = refmodel.dense(x, wt, bias, mult, shift, zp_in, zp_out, lo, hi)
        p = ffi.new("msf_fc_params *", dict(
            in_size=n, out_size=cout, input_offset=-zp_in, output_offset=zp_out, act_min=lo,
            act_max=hi, weights=ffi.from_buffer("int8_t[]", wt), bias=ffi.from_buffer("int32_t[]", bias),
            multiplier=ffi.from_buffer("int32_t[]", mult), shift=ffi.from_buffer("int32_t[]", shift)))
        assert lib.msf_fully_connected_s8_get_buffer_size(p) == 4 * cout
        flat = x.reshape(-1).copy()
        results = []
        for pieces in (1, int(rng.integers(2, n + 2))):
            acc = np.zeros(cout, np.int32)
            ap = ffi.from_buffer("int32_t[]", acc)
            lib.msf_fully_connected_init_s8(p, ap)
            cuts = np.unique(np.concatenate([[0, n], rng.integers(0, n, pieces - 1)]))
            for a, b in zip(cuts[:-1], cuts[1:]):
                chunk = flat[a:b].copy()
                lib.msf_fully_connected_accumulate_s8(p, ffi.from_buffer("int8_t[]", chunk),
                                                      int(a), int(b - a), ap)
            out = np.zeros(cout, np.int8)
            lib.msf_fully_connected_finish_s8(p, ap, ffi.from_buffer("int8_t[]", out))
            results.append(out)
        for out in results:
            np.testing.assert_array_equal(out, want.reshape(-1))


# ------------------------------------------------------------------ whole models, layer by layer

def run_layer_c(ffi, lib, rng, model, layer, values, fused_pool=None):
    """One IR layer on whole tensors through the C kernels (`fused_pool`: a max pool that
    follows a conv, also checked through the fused conv + max pool kernel)."""
    from msfsim.ir import ADD_LEFT_SHIFT, Op
    zin = [model.tensor(t).q.zero_point for t in layer.inputs]
    zout = model.tensor(layer.output).q.zero_point
    x = values[layer.inputs[0]]
    shape = model.out_shape(layer)
    buf = lambda t, a: ffi.from_buffer(t, a) if a is not None else ffi.NULL  # noqa: E731
    win = window(ffi, rng, x, x.shape)
    out = window(ffi, rng, None, shape)
    common = dict(output_offset=zout, act_min=layer.act_min, act_max=layer.act_max)
    if layer.op in (Op.CONV, Op.DWCONV):
        keep: list = []
        channels, fast = channel_params(ffi, layer.weight, layer.bias, layer.multiplier,
                                        layer.shift, zin[0], zout, layer.op == Op.DWCONV, keep)
        p = ffi.new("msf_conv_params *", dict(
            kernel_h=layer.kernel[0], kernel_w=layer.kernel[1], stride_h=layer.stride[0],
            stride_w=layer.stride[1], pad_top=layer.pad[0], pad_left=layer.pad[1],
            input_offset=-zin[0], weights=buf("int8_t[]", layer.weight),
            bias=buf("int32_t[]", layer.bias), multiplier=buf("int32_t[]", layer.multiplier),
            shift=buf("int32_t[]", layer.shift), channels=channels, fast_requant=fast, **common))
        if layer.op == Op.DWCONV:
            lib.msf_depthwise_conv_s8(win.ptr, p, out.ptr, 0, 0, shape[0], shape[1])
        else:
            scratch = np.zeros(lib.msf_convolve_s8_get_buffer_size(p, x.shape[2]) // 4 + 1, np.int32)
            lib.msf_convolve_s8(win.ptr, p, out.ptr, 0, 0, shape[0], shape[1],
                                ffi.from_buffer("int32_t[]", scratch))
        pool = fused_pool
        if pool is not None:  # the same conv with its max pool fused, never storing the conv output
            pp = ffi.new("msf_pool_params *", dict(
                kernel_h=pool.kernel[0], kernel_w=pool.kernel[1], stride_h=pool.stride[0],
                stride_w=pool.stride[1], pad_top=pool.pad[0], pad_left=pool.pad[1],
                output_offset=zout, act_min=pool.act_min, act_max=pool.act_max))
            pshape = model.out_shape(pool)
            pout = window(ffi, rng, None, pshape)
            n = lib.msf_convolve_maxpool_s8_get_buffer_size(p, pp, x.shape[2], shape[2])
            scratch = np.zeros(n // 4 + 1, np.int32)
            lib.msf_convolve_maxpool_s8(win.ptr, p, pp, shape[0], shape[1], pout.ptr, 0, 0,
                                        pshape[0], pshape[1], ffi.from_buffer("int32_t[]", scratch))
            np.testing.assert_array_equal(pout.read(0, 0, pshape[0], pshape[1]),
                                          values[pool.output])
    elif layer.op in (Op.MAXPOOL, Op.AVGPOOL):
        avg = layer.op == Op.AVGPOOL
        p = ffi.new("msf_pool_params *", dict(
            kernel_h=layer.kernel[0], kernel_w=layer.kernel[1], stride_h=layer.stride[0],
            stride_w=layer.stride[1], pad_top=layer.pad[0], pad_left=layer.pad[1],
            input_offset=-zin[0], multiplier=int(layer.multiplier[0]) if avg else 0,
            shift=int(layer.shift[0]) if avg else 0, **common))
        fn = lib.msf_avg_pool_s8 if avg else lib.msf_max_pool_s8
        fn(win.ptr, p, out.ptr, 0, 0, shape[0], shape[1])
    elif layer.op == Op.ADD:
        m, s = (int(v) for v in layer.multiplier), (int(v) for v in layer.shift)
        m, s = list(m), list(s)
        p = ffi.new("msf_add_params *", dict(
            input1_offset=-zin[0], input2_offset=-zin[1], left_shift=ADD_LEFT_SHIFT,
            input1_mult=m[0], input1_shift=s[0], input2_mult=m[1], input2_shift=s[1],
            output_mult=m[2], output_shift=s[2], **common))
        win2 = window(ffi, rng, values[layer.inputs[1]], x.shape)
        lib.msf_elementwise_add_s8(win.ptr, win2.ptr, p, out.ptr, 0, 0, shape[0], shape[1])
    elif layer.op == Op.GAP:
        p = ffi.new("msf_gap_params *", dict(channels=x.shape[2], input_offset=-zin[0],
                                              multiplier=int(layer.multiplier[0]),
                                              shift=int(layer.shift[0]), **common))
        acc = ffi.new("int32_t[]", x.shape[2])
        lib.msf_global_avg_pool_init_s8(p, acc)
        lib.msf_global_avg_pool_accumulate_s8(win.ptr, p, 0, 0, x.shape[0], x.shape[1], acc)
        lib.msf_global_avg_pool_finish_s8(p, acc, out.ptr.data)
    elif layer.op == Op.DENSE:
        p = ffi.new("msf_fc_params *", dict(
            in_size=x.size, out_size=shape[2], input_offset=-zin[0],
            weights=buf("int8_t[]", layer.weight), bias=buf("int32_t[]", layer.bias),
            multiplier=buf("int32_t[]", layer.multiplier), shift=buf("int32_t[]", layer.shift),
            **common))
        acc = ffi.new("int32_t[]", shape[2])
        flat = np.ascontiguousarray(x.reshape(-1))
        lib.msf_fully_connected_init_s8(p, acc)
        lib.msf_fully_connected_accumulate_s8(p, ffi.from_buffer("int8_t[]", flat), 0, x.size, acc)
        lib.msf_fully_connected_finish_s8(p, acc, out.ptr.data)
    else:
        raise AssertionError(f"no kernel for {layer.op}")
    return out.read(0, 0, shape[0], shape[1])


@pytest.mark.parametrize("name", ["lenet5-r28", "resnet8-r32", "dscnn-kws"])
def test_zoo_models_layer_by_layer(kl, name):
    """Real quantisation parameters: every layer's C output equals the reference's."""
    from msfsim import zoo
    from msfsim.ir import Op
    ffi, lib = kl
    rng = np.random.default_rng(61)
    model = zoo.load(name)
    x = rng.integers(-128, 128, model.tensor(model.input).shape, dtype=np.int8)
    ref = refmodel.run_layers(model, x)
    fused = 0
    for layer in model.layers:
        nxt = [model.layers[i] for i in model.consumers(layer.output)]
        pool = nxt[0] if (layer.op == Op.CONV and len(nxt) == 1 and nxt[0].op == Op.MAXPOOL
                          and nxt[0].stride[0] >= nxt[0].kernel[0]
                          and nxt[0].stride[1] >= nxt[0].kernel[1]) else None
        fused += pool is not None
        got = run_layer_c(ffi, lib, rng, model, layer, ref, pool)
        np.testing.assert_array_equal(got, ref[layer.output], err_msg=f"layer {layer.index} {layer.op}")
    assert fused == (2 if name == "lenet5-r28" else 0)


# ------------------------------------------------------------------ DSP assembly on Cortex-M7

def one_layer_chain(specs, hw=(5, 5), cin=4, seed=0):
    """A chain of conv layers, specs = (kind, cout, k, s) with kind "pw" / "conv" / "dw"
    (cout ignored for "dw") and TF-SAME padding; "relu6" clamps its output to [0, 6]."""
    from msfsim.ir import IRBuilder, QParams
    rng = np.random.default_rng(seed)
    b = IRBuilder("dsp", (hw[0], hw[1], cin), QParams(0.02, 3))
    x = b.input
    for kind, cout, k, s, act in specs:
        h, w, c = b.tensors[x].shape
        dw = kind == "dw"
        cout = c if dw else cout
        wt = rng.integers(-127, 128, size=(k, k, c) if dw else (cout, k, k, c)).astype(np.int8)
        pads = [((o - 1) * s + k - n) for n, o in ((h, -(-h // s)), (w, -(-w // s)))]
        pad = (pads[0] // 2, pads[1] // 2, pads[0] - pads[0] // 2, pads[1] - pads[1] // 2)
        fan_in = k * k * (1 if dw else c)
        x = b.conv(x, wt, np.full(cout, 1.0 / (64 * fan_in ** 0.5)), rng.normal(0, 0.1, cout),
                   QParams(0.03, -5), stride=(s, s), pad=pad, depthwise=dw, activation=act)
    return b.build()


DSP_CASES = [
    # pointwise: pairs and single pixels, odd output channels, every cin % 4, C fallbacks
    ([("pw", 2, 1, 1, "none")], (5, 5), 4),
    ([("pw", 3, 1, 1, "none")], (5, 5), 5),
    ([("pw", 5, 1, 1, "none")], (3, 5), 7),
    ([("pw", 9, 1, 1, "none")], (5, 3), 11),
    ([("pw", 7, 1, 1, "none")], (1, 1), 6),
    ([("pw", 6, 1, 1, "none")], (5, 5), 3),
    ([("pw", 1, 1, 1, "none")], (5, 5), 8),
    ([("pw", 6, 1, 2, "relu6")], (5, 5), 8),
    # depthwise 3x3: groups of four channels, the overlapping last group, border pixels
    ([("dw", 0, 3, 1, "none")], (5, 6), 4),
    ([("dw", 0, 3, 1, "none")], (6, 5), 7),
    ([("dw", 0, 3, 2, "none")], (7, 7), 11),
    ([("dw", 0, 3, 1, "none")], (4, 4), 3),
    ([("dw", 0, 5, 1, "none")], (6, 6), 6),
    # depthwise kxk: rows a fixed stride apart, or wrapping a ring (fused chain below)
    ([("dw", 0, 7, 2, "none")], (9, 8), 10),
    ([("dw", 0, 3, 1, "none")], (1, 6), 9),     # 3x3 windows one tap high
    ([("dw", 0, 5, 1, "relu6")], (7, 5), 13),
    ([("dw", 0, 3, 1, "relu6")], (5, 5), 8),
    # general convolution through im2col columns
    ([("conv", 11, 3, 2, "none")], (9, 9), 3),
    ([("conv", 5, 5, 1, "none")], (6, 7), 2),
    # a fused chain: one-column regions
    ([("pw", 12, 1, 1, "none"), ("dw", 0, 3, 1, "none"), ("pw", 5, 1, 1, "none")], (7, 6), 5),
    ([("pw", 8, 1, 1, "none"), ("dw", 0, 5, 1, "none"), ("pw", 3, 1, 1, "none")], (8, 7), 5),
]


def _dsp_case_exact(board: str, case: int, wide: bool, blocks_of) -> None:
    """DSP_CASES[case] built for `board` and run in the emulator, one firmware per block that
    `blocks_of(last layer index)` lists, each output bit-exact with the reference; `wide`:
    every eligible layer's weights pre-widened (msfsim.deploy), and the code must say so."""
    import shutil
    import tempfile
    from msfsim.codegen.emit import generate_block, wide_eligible
    from msfsim.measure import measure_generated
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    specs, hw, cin = DSP_CASES[case]
    model = one_layer_chain(specs, hw, cin, seed=case)
    if wide:
        layers = frozenset(la.index for la in model.layers if wide_eligible(model, la))
        if not layers:
            pytest.skip("no layer of this case can take pre-widened weights")
        model = model.with_wide_weights(layers)
    x = np.random.default_rng(case).integers(-128, 128, (hw[0], hw[1], cin), dtype=np.int8)
    want = refmodel.run(model, x).tobytes()
    for block in blocks_of(len(model.layers) - 1):
        with tempfile.TemporaryDirectory() as d:
            code = generate_block(model, block, x)
            assert ("weights_s16 = l" in code.files["msf_generated.c"]) == wide
            code.write(d)
            m = measure_generated(board, d)
        assert m.status == "ok", m
        assert m.output == want, f"{specs} {hw} cin={cin} {block}"


@pytest.mark.parametrize("wide", [False, True], ids=["int8", "wide"])
@pytest.mark.parametrize("case", range(len(DSP_CASES)))
def test_dsp_kernels_bit_exact_on_cortex_m7(case, wide):
    """The hand-scheduled Thumb-2 loops (compiled only for DSP cores) against the reference,
    run in the emulated Cortex-M7: whole layers and fused one-pixel-tile blocks, with int8
    weights and with every eligible layer's weights pre-widened (msfsim.deploy)."""
    from msfsim.fusion.block import Block, BlockConfig
    _dsp_case_exact("stm32f746", case, wide, lambda last: (
        [Block(0, last)] if last == 0 else [Block(0, last, BlockConfig((1, 1), "hcache")),
                                            Block(0, last, BlockConfig((2, 1), "recompute"))]))


@pytest.mark.parametrize("wide", [False, True], ids=["int8", "wide"])
@pytest.mark.parametrize("case", [i for i, (specs, _, _) in enumerate(DSP_CASES)
                                  if any(kind == "dw" and k != 3 for kind, _, k, _, _ in specs)])
def test_dsp_depthwise_kxk_bit_exact_on_cortex_m4(case, wide):
    """The kxk depthwise assembly (5x5, 7x7) on a Cortex-M4 board, with int8 and pre-widened
    weights, whole layers and a fused one-pixel-tile block, against the reference."""
    from msfsim.fusion.block import Block, BlockConfig
    _dsp_case_exact("nucleo-f412zg", case, wide, lambda last: (
        [Block(0, 0)] if last == 0 else []) + [Block(0, last, BlockConfig((1, 1), "hcache"))])


@pytest.mark.parametrize("kh,kw,c,hw,s,zp", [(3, 5, 9, (7, 8), 1, 3), (5, 3, 6, (9, 6), 2, -128),
                                              (1, 3, 7, (5, 5), 1, 127)])
def test_dsp_depthwise_non_square_wide_bit_exact(kh, kw, c, hw, s, zp):
    """Non-square depthwise kernels with pre-widened weights (kh * kw taps a group) between two
    pointwise layers: one-pixel hcache tiles and a stream2d ring, on the emulated Cortex-M7."""
    import shutil
    import tempfile
    from msfsim.codegen.emit import generate_block, wide_eligible
    from msfsim.fusion.block import Block, BlockConfig
    from msfsim.ir import IRBuilder, QParams
    from msfsim.measure import measure_generated
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    rng = np.random.default_rng(kh * 10 + kw)
    b = IRBuilder("nsq", (hw[0], hw[1], c), QParams(0.02, zp))
    x = b.conv(b.input, rng.integers(-127, 128, size=(c, 1, 1, c)).astype(np.int8),
               np.full(c, 1.0 / (64 * c ** 0.5)), rng.normal(0, 0.1, c), QParams(0.03, zp))
    x = b.conv(x, rng.integers(-128, 128, size=(kh, kw, c)).astype(np.int8),
               np.full(c, 1.0 / (64 * 3.0)), rng.normal(0, 0.1, c), QParams(0.03, -5),
               stride=(s, s), pad=(kh // 2, kw // 2, kh - 1 - kh // 2, kw - 1 - kw // 2),
               depthwise=True)
    b.conv(x, rng.integers(-127, 128, size=(5, 1, 1, c)).astype(np.int8),
           np.full(5, 1.0 / (64 * c ** 0.5)), rng.normal(0, 0.1, 5), QParams(0.03, 1))
    model = b.build()
    assert wide_eligible(model, model.layers[1])
    model = model.with_wide_weights(frozenset(la.index for la in model.layers
                                              if wide_eligible(model, la)))
    xin = np.random.default_rng(c).integers(-128, 128, (hw[0], hw[1], c), dtype=np.int8)
    want = refmodel.run(model, xin).tobytes()
    for block in (Block(0, 2, BlockConfig((1, 1), "hcache")),
                  Block(0, 2, BlockConfig((2, 2), "stream2d"))):
        with tempfile.TemporaryDirectory() as d:
            generate_block(model, block, xin).write(d)
            m = measure_generated("stm32f746", d)
        assert m.status == "ok", m
        assert m.output == want, block


# ------------------------------------------------------------------ host build cache

BUILD_SCRIPT = """
import sys
from msfsim.host_build import build
ffi, lib = build("twice", [sys.argv[1]], "int msf_twice(int x);")
print(lib.msf_twice(21), flush=True)
"""


def test_host_build_concurrent_and_keyed_by_content(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys
    src = tmp_path / "twice.c"
    src.write_text("int msf_twice(int x) { return 2 * x; }\n")
    env = dict(os.environ, MSFSIM_CACHE=str(tmp_path / "cache"),
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    procs = [subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT, str(src)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [o[0].strip() for o in outs] == ["42", "42"], outs
    libs = list((tmp_path / "cache" / "host").glob("_msf_twice_*"))
    assert len(libs) == 1 and libs[0].is_file()  # one library, no leftover temp dirs
    objs = lambda: sorted(p.name for p in (tmp_path / "cache" / "host" / "obj").iterdir())  # noqa: E731
    assert len(objs()) == 1 and objs()[0].startswith("twice-") and objs()[0].endswith(".o")
    # a changed source is a new key, built next to the old one
    monkeypatch.setenv("MSFSIM_CACHE", str(tmp_path / "cache"))
    src.write_text("int msf_twice(int x) { return x + x + 1; }\n")
    ffi, lib = build("twice", [src], "int msf_twice(int x);")
    assert lib.msf_twice(21) == 43
    assert len(list((tmp_path / "cache" / "host").glob("_msf_twice_*"))) == 2
    assert len(objs()) == 2   # the object is keyed by the preprocessed source too
