"""The numpy fixed-point reference: requantisation against exact rational arithmetic, the
vectorised ops against naive loops, and the dequantised results against float maths."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from msfsim import refmodel
from msfsim.ir import IRBuilder, QParams, activation_qparams, quantize_weights


# ------------------------------------------------------------------ requantize

def _wrap32(v: int) -> int:
    return ((v + 2**31) % 2**32) - 2**31


def _round_half_up(q: Fraction) -> int:
    return math.floor(q + Fraction(1, 2))


def _round_half_away(q: Fraction) -> int:
    return int(math.copysign(math.floor(abs(q) + Fraction(1, 2)), q))


def requantize_bigint(acc: int, mult: int, shift: int) -> int:
    """Exact rationals: the int32 left shift wraps, the doubling high multiply rounds half up
    (saturating INT32_MIN * INT32_MIN), the power-of-two division rounds half away from zero."""
    x = _wrap32(_wrap32(acc) * 2 ** max(shift, 0))
    if x == mult == -2**31:
        high = 2**31 - 1
    else:
        high = _round_half_up(Fraction(x * mult, 2**31))
    return _round_half_away(Fraction(high, 2 ** max(-shift, 0)))


EDGE_CASES = [
    (0, 1 << 30, 0), (1, 0, 0), (-12345, 0, -5), (2**31 - 1, 0, 7),
    # rounding ties of the high multiply: x * m / 2^31 = +-0.5, +-1.5
    (1, 1 << 30, 0), (-1, 1 << 30, 0), (3, 1 << 30, 0), (-3, 1 << 30, 0),
    # ties of the power-of-two division: -5/2, 5/2, -3/4 ... with m = 2^31 - 1 near 1.0
    (5, (1 << 31) - 1, -1), (-5, (1 << 31) - 1, -1), (6, 1 << 30, -1), (-6, 1 << 30, -1),
    (-2, 1 << 30, -1), (2, 1 << 30, -1), (-12, 1 << 30, -2), (12, 1 << 30, -2),
    # large shifts
    (2**31 - 1, (1 << 31) - 1, -31), (-2**31, (1 << 31) - 1, -31), (-2**31, 1 << 30, -31),
    (1, (1 << 31) - 1, 31), (-1, 1 << 30, 31), (3, 1 << 30, 30), (70000, 1518500250, 20),
    # saturation and extremes
    (-2**31, -2**31, 0), (-2**31, (1 << 31) - 1, 0), (2**31 - 1, (1 << 31) - 1, 0),
]


@pytest.mark.parametrize("acc,mult,shift", EDGE_CASES)
def test_requantize_edge_cases(acc, mult, shift):
    assert int(refmodel.requantize(acc, mult, shift)) == requantize_bigint(acc, mult, shift)


def test_requantize_ties_round_as_documented():
    # x * m / 2^31 = -0.5 rounds up to 0, +0.5 to 1; -2/4 = -0.5 rounds away to -1
    assert int(refmodel.requantize(-1, 1 << 30, 0)) == 0
    assert int(refmodel.requantize(1, 1 << 30, 0)) == 1
    assert int(refmodel.requantize(-4, 1 << 30, -2)) == -1  # high = -2, -2/4 -> -1
    assert int(refmodel.requantize(4, 1 << 30, -2)) == 1


def test_requantize_random_vectorised_against_bigint():
    rng = np.random.default_rng(5)
    n = 4000
    acc = np.concatenate([rng.integers(-2**31, 2**31, n // 2), rng.integers(-2000, 2000, n // 2)])
    mult = rng.integers(1 << 30, 1 << 31, n)
    mult[::97] = 0
    shift = rng.integers(-31, 32, n)
    got = refmodel.requantize(acc, mult, shift)
    want = [requantize_bigint(int(a), int(m), int(s)) for a, m, s in zip(acc, mult, shift)]
    np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------ ops against naive loops

def naive_conv(x, w, bias, mult, shift, stride, pad, zp_in, zp_out, lo, hi, depthwise):
    h, wd, c = x.shape
    kh, kw = w.shape[:2] if depthwise else w.shape[1:3]
    cout = c if depthwise else w.shape[0]
    ho = (h + pad[0] + pad[2] - kh) // stride[0] + 1
    wo = (wd + pad[1] + pad[3] - kw) // stride[1] + 1
    out = np.zeros((ho, wo, cout), np.int8)
    for oy in range(ho):
        for ox in range(wo):
            for co in range(cout):
                acc = int(bias[co])
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = oy * stride[0] - pad[0] + ky, ox * stride[1] - pad[1] + kx
                        if not (0 <= iy < h and 0 <= ix < wd):
                            continue
                        if depthwise:
                            acc += (int(x[iy, ix, co]) - zp_in) * int(w[ky, kx, co])
                        else:
                            acc += int(np.dot(x[iy, ix].astype(np.int64) - zp_in, w[co, ky, kx]))
                v = requantize_bigint(acc, int(mult[co]), int(shift[co])) + zp_out
                out[oy, ox, co] = min(max(v, lo), hi)
    return out


@pytest.mark.parametrize("depthwise", [False, True])
def test_conv_matches_naive_loops(depthwise):
    rng = np.random.default_rng(3 + depthwise)
    for _ in range(6):
        k = int(rng.choice([1, 3, 5]))
        c = int(rng.integers(1, 5))
        cout = c if depthwise else int(rng.integers(1, 5))
        x = rng.integers(-128, 128, (int(rng.integers(k, 9)), int(rng.integers(k, 9)), c), dtype=np.int8)
        w = rng.integers(-127, 128, (k, k, c) if depthwise else (cout, k, k, c), dtype=np.int8)
        bias = rng.integers(-3000, 3000, cout)
        mult = rng.integers(1 << 30, 1 << 31, cout)
        shift = rng.integers(-12, -6, cout)
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pad = tuple(int(v) for v in rng.integers(0, k // 2 + 1, 4))
        zp_in, zp_out = int(rng.integers(-30, 30)), int(rng.integers(-30, 30))
        args = (x, w, bias, mult, shift, stride, pad, zp_in, zp_out, zp_out, 127)
        fn = refmodel.dwconv if depthwise else refmodel.conv
        np.testing.assert_array_equal(fn(*args), naive_conv(*args, depthwise))


def test_pools_match_naive_loops():
    rng = np.random.default_rng(9)
    x = rng.integers(-128, 128, (7, 6, 3), dtype=np.int8)
    k, s, pad = (3, 2), (2, 2), (1, 0, 1, 1)
    mx = refmodel.maxpool(x, k, s, pad)
    av = refmodel.avgpool(x, k, s, pad, 1 << 30, -2, zp_in=5, zp_out=-3)
    for oy in range(mx.shape[0]):
        for ox in range(mx.shape[1]):
            ys = [oy * 2 - 1 + i for i in range(3) if 0 <= oy * 2 - 1 + i < 7]
            xs = [ox * 2 + j for j in range(2) if 0 <= ox * 2 + j < 6]
            patch = x[np.ix_(ys, xs)].astype(int)
            np.testing.assert_array_equal(mx[oy, ox], patch.max(axis=(0, 1)))
            sums = (patch - 5).sum(axis=(0, 1))
            want = [min(max(requantize_bigint(int(v), 1 << 30, -2) - 3, -128), 127) for v in sums]
            np.testing.assert_array_equal(av[oy, ox], want)


# ------------------------------------------------------------------ float sanity and models

def _float_conv(x, w, b, stride, pad, depthwise=False):
    xp = np.pad(x, ((pad[0], pad[2]), (pad[1], pad[3]), (0, 0)))
    kh, kw = (w.shape[:2] if depthwise else w.shape[1:3])
    ho = (xp.shape[0] - kh) // stride[0] + 1
    wo = (xp.shape[1] - kw) // stride[1] + 1
    out = np.zeros((ho, wo, x.shape[2] if depthwise else w.shape[0]))
    for oy in range(ho):
        for ox in range(wo):
            patch = xp[oy * stride[0]:oy * stride[0] + kh, ox * stride[1]:ox * stride[1] + kw]
            out[oy, ox] = (np.einsum("ijc,ijc->c", patch, w) if depthwise
                           else np.einsum("ijc,oijc->o", patch, w))
    return out + b


def test_float_sanity_conv():
    """Dequantised int8 conv output is within a few output steps of the float conv."""
    rng = np.random.default_rng(0)
    xf = rng.uniform(-1.0, 2.0, (10, 9, 4))
    wf = rng.normal(0, 0.3, (6, 3, 3, 4))
    bf = rng.normal(0, 0.2, 6)
    ref = _float_conv(xf, wf, bf, (2, 1), (1, 1, 1, 1))
    qin = activation_qparams(xf.min(), xf.max())
    qout = activation_qparams(ref.min(), ref.max())
    b = IRBuilder("t", xf.shape, qin)
    wq, ws = quantize_weights(wf, 0)
    b.conv(b.input, wq, ws, bf, qout, stride=(2, 1), pad=(1, 1, 1, 1))
    model = b.build()
    xq = np.clip(np.round(xf / qin.scale) + qin.zero_point, -128, 127).astype(np.int8)
    y = (refmodel.run(model, xq).astype(np.float64) - qout.zero_point) * qout.scale
    err = np.abs(y - ref)
    assert err.max() < 3 * qout.scale + 0.05 * np.abs(ref).max(), err.max()
    assert err.mean() < qout.scale


def small_net():
    """Every op of the IR in one small residual network, with float shadow parameters."""
    rng = np.random.default_rng(2)
    q = QParams(0.02, -10)
    b = IRBuilder("small", (12, 11, 3), q)
    qa = activation_qparams(0.0, 6.0)
    w1, s1 = quantize_weights(rng.normal(0, 0.3, (8, 3, 3, 3)), 0)
    t1 = b.conv(b.input, w1, s1, rng.normal(0, 0.1, 8), qa, (2, 2), (1, 1, 1, 1), activation="relu6")
    wd, sd = quantize_weights(rng.normal(0, 0.3, (3, 3, 8)), 2)
    t2 = b.conv(t1, wd, sd, None, qa, pad=(1, 1, 1, 1), depthwise=True, activation="relu6")
    qs = activation_qparams(-3.0, 9.0)
    t3 = b.add(t1, t2, qs, activation="relu")
    t4 = b.pool(t3, "max", (2, 2), (2, 2), (0, 0, 1, 1))
    t5 = b.pool(t4, "avg", (3, 3), (1, 1), (1, 1, 1, 1), out_q=activation_qparams(0.0, 6.0))
    t6 = b.gap(t5)
    wf, sf = quantize_weights(rng.normal(0, 0.3, (5, 8)), 0)
    b.dense(t6, wf, sf, rng.normal(0, 0.1, 5), activation_qparams(-4.0, 4.0))
    return b.build()


def test_run_layers_covers_every_op():
    model = small_net()
    x = np.random.default_rng(1).integers(-128, 128, (12, 11, 3), dtype=np.int8)
    values = refmodel.run_layers(model, x)
    assert set(values) == {t.id for t in model.tensors}
    for t in model.tensors:
        assert values[t.id].shape == t.shape and values[t.id].dtype == np.int8
    out = refmodel.run(model, x)
    np.testing.assert_array_equal(out, values[model.output])
    # the relu6 clamp holds: conv outputs never exceed 6.0 nor fall below 0.0
    for layer in model.layers[:2]:
        v = values[layer.output]
        assert v.min() >= layer.act_min and v.max() <= layer.act_max
    # an op-by-op recomputation agrees with the layer walk
    add_layer = model.layers[2]
    a, b = (values[t] for t in add_layer.inputs)
    zps = [model.tensor(t).q.zero_point for t in add_layer.inputs]
    np.testing.assert_array_equal(
        refmodel.add(a, b, add_layer.multiplier, add_layer.shift, *zps,
                     model.tensor(add_layer.output).q.zero_point, add_layer.act_min,
                     add_layer.act_max), values[add_layer.output])


def test_run_rejects_wrong_input():
    model = small_net()
    with pytest.raises(ValueError):
        refmodel.run(model, np.zeros((12, 11, 3), np.float32))
    with pytest.raises(ValueError):
        refmodel.run(model, np.zeros((11, 12, 3), np.int8))
