"""Instructions per MAC of depthwise border pixels against interior ones, per board.

    PYTHONPATH=. python benchmarks/dw_borders.py [--platform stm32f746] [--case dw3:5x5:96 ...]
        [--models NAME ...] [--wide] [--kernels-dir DIR]

Each case is a one-layer model (random int8 weights, input zero point 3, TF-SAME padding) built
as a single-block firmware and run in unicorn; only instructions retired inside the kernel's
own functions are counted (a Python block hook, as in benchmarks/profile_plan.py and
benchmarks/kernels.py). MACs are those of the taps inside the tensor (padding taps excluded).
Two methods, printed per case:

  layer   the block computes the whole layer in one kernel call (scheme `layer`). The interior
          cost per pixel I is measured on the same layer without padding (valid convolution on
          an input grown so that the output keeps its shape: every pixel interior); the border
          pixels then cost N(padded layer) - (interior pixels) x I.
  tile    a one-pixel-tile block (scheme `recompute`, tile 1x1): the kernel is called once per
          output pixel, so the instructions of every call are that pixel's own cost, call
          overhead included; pixels are grouped as corner / edge / interior.

Beside every row, `asm/MAC` counts only the instructions retired in the assembly routines
(msf_dw3x3_*, msf_dwkxk_*: the taps and the requantisation), and for the tile rows `call` is
what each call spends outside them (entry checks, clipping, the job, the call itself): the
price a pixel pays for being computed alone. For the layer's border row, asm/MAC is the border
assembly's own (the `_edge` routines) over the border MACs: what no change to the C around it
can lower. Cores without the assembly (RV32, Xtensa) print `-` there. Both runs are checked
bit-exact against the host reference (refmodel). --wide deploys the layer with pre-widened
int16 weights (msf_conv_params.weights_s16, as msfsim.deploy does on
DSP cores); --kernels-dir measures another copy of msfsim/kernels_c (e.g. before a change).
Case syntax: `dwK[sS]:HxW:C` (kernel K x K, stride S, default 1, on an H x W x C input), e.g.
dw3:5x5:96, dw5s2:14x14:120. --models takes the cases from zoo models instead: every distinct
depthwise layer shape they hold (the layer's input, kernel, stride and C; TF-SAME padding), then
a summary per method: the largest border instructions/MAC and the cases above 5, counting every
instruction of the kernel, then the assembly routines alone.
"""
from __future__ import annotations

import argparse
import bisect
import collections
import re
import tempfile
from pathlib import Path

import numpy as np

from msfsim import KERNELS_DIR, platforms, refmodel
from msfsim.codegen.emit import generate_block, wide_eligible
from msfsim.fusion.block import Block, BlockConfig
from msfsim.ir import IRBuilder, Model, QParams
from msfsim.measure import build_firmware
from msfsim.sim import unicorn_backend as ub
from msfsim.sim.elf import ElfImage
from msfsim.toolchain import LinkOverflowError

# 3x3 shapes of mbv2's tiles, then the published models' odd channel counts (mbv2: 11, 30, 66)
# and 5x5 / 7x7 layers (mcunet)
DEFAULT_CASES = ["dw3:5x5:96", "dw3:25x5:48", "dw3:7x7:160", "dw3s2:7x7:160", "dw3s2:10x10:48",
                 "dw3:3x3:13", "dw3:9x9:11", "dw3:5x5:66", "dw5:5x5:120", "dw5s2:11x11:64",
                 "dw7:7x7:48"]
# boards with less than 64 KiB of SRAM (hifive1b: 16 KiB) get narrower layers of the same shapes
SMALL_CASES = ["dw3:5x5:96", "dw3:25x5:16", "dw3:7x7:64", "dw3s2:7x7:64", "dw3s2:10x10:32",
               "dw3:3x3:13", "dw3:9x9:11", "dw5:5x5:40", "dw7:7x7:16"]
ENTRY = "msf_depthwise_conv_s8"
KERNEL_PREFIXES = ("msf_depthwise", "msf_dw", "dw")
ASM = re.compile(r"msf_dw(3x3|kxk)_")  # the kernel's assembly routines (MSF_ASM_FUNCTION)


def same_pad(n: int, s: int, k: int = 3) -> tuple[int, int]:
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def dw_model(h: int, w: int, c: int, s: int, padded: bool, wide: bool, seed: int = 0,
             k: int = 3) -> Model:
    """One kxk depthwise layer; unpadded: on an input grown so that the output is the padded
    layer's, every window inside the tensor."""
    rng = np.random.default_rng(seed)
    (pt, pb), (pl, pr) = same_pad(h, s, k), same_pad(w, s, k)
    if not padded:
        h, w = h + pt + pb, w + pl + pr
        pt = pb = pl = pr = 0
    b = IRBuilder(f"dw{h}x{w}x{c}", (h, w, c), QParams(0.02, 3))
    wt = rng.integers(-127, 128, size=(k, k, c)).astype(np.int8)
    b.conv(b.input, wt, np.full(c, 1.0 / (64 * 3.0)), rng.normal(0, 0.1, c), QParams(0.03, -5),
           stride=(s, s), pad=(pt, pl, pb, pr), depthwise=True)
    model = b.build()
    if wide:
        layers = frozenset(la.index for la in model.layers if wide_eligible(model, la))
        model = model.with_wide_weights(layers)
    return model


class Call:
    """Kernel instructions of one call of msf_depthwise_conv_s8: in all, in the assembly
    routines, in the border ones (`_edge`)."""
    __slots__ = ("n", "asm", "edge")

    def __init__(self) -> None:
        self.n = self.asm = self.edge = 0


def run_calls(model: Model, block: Block, platform: str, kernels_dir: Path) -> tuple[list[Call], bool]:
    """Kernel instructions of each call of msf_depthwise_conv_s8, and whether the output is
    bit-exact with the reference."""
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, size=model.tensor(model.input).shape, dtype=np.int8)
    code = generate_block(model, block, x)
    plat = platforms.load(platform)
    with tempfile.TemporaryDirectory() as d:
        code.write(Path(d))
        elf = build_firmware(plat, d, kernels_dir=kernels_dir)
    image = ElfImage(elf.path)
    funcs = sorted((v & ~1, s, n) for n, (v, s) in image.symbols.items()
                   if s > 0 and n.startswith(KERNEL_PREFIXES))
    starts = [f[0] for f in funcs]
    entry = image.symbols[ENTRY][0] & ~1
    calls: list[Call] = []
    base_hook = ub._PyCounter.hook

    def hook(self, uc, address, size, user):
        before = self.total
        base_hook(self, uc, address, size, user)
        if address == entry:
            calls.append(Call())
        k = bisect.bisect_right(starts, address) - 1
        if k >= 0 and address < funcs[k][0] + funcs[k][1] and calls:
            n = self.total - before
            c = calls[-1]
            c.n += n
            if ASM.match(funcs[k][2]):
                c.asm += n
                if "_edge" in funcs[k][2]:
                    c.edge += n

    ub._PyCounter.hook = hook
    try:
        m = ub.UnicornBackend(native=False).run(elf, plat, budget_instructions=10**10,
                                                timeout_s=3600)
    finally:
        ub._PyCounter.hook = base_hook
    return calls, m.output == refmodel.run(model, x).tobytes()


def pixel_taps(model: Model) -> list[tuple[str, int]]:
    """Per output pixel (row-major): its kind and the number of its taps inside the tensor."""
    layer = model.layers[0]
    k = layer.kernel[0]
    h, w, _ = model.tensor(model.input).shape
    oh, ow, _ = model.tensor(layer.output).shape
    s, pt, pl = layer.stride[0], layer.pad[0], layer.pad[1]
    out = []
    for oy in range(oh):
        iy = oy * s - pt
        rows = min(iy + k, h) - max(iy, 0)
        for ox in range(ow):
            ix = ox * s - pl
            cols = min(ix + k, w) - max(ix, 0)
            kind = ("interior" if rows == k and cols == k
                    else "corner" if rows < k and cols < k else "edge")
            out.append((kind, max(rows, 0) * max(cols, 0)))
    return out


def bench(spec: str, platform: str, wide: bool,
          kernels_dir: Path) -> tuple[list[str], dict[str, float]]:
    """The case's table rows, and its border instructions/MAC per method (layer, tile)."""
    kind, hw, c = spec.split(":")
    m = re.fullmatch(r"dw(\d+)(?:s(\d+))?", kind)
    if m is None:
        raise SystemExit(f"bad case {spec!r}: expected dwK[sS]:HxW:C")
    k, s = int(m[1]), int(m[2] or 1)
    h, w = (int(v) for v in hw.split("x"))
    c = int(c)
    padded = dw_model(h, w, c, s, True, wide, k=k)
    valid = dw_model(h, w, c, s, False, wide, k=k)
    pix = pixel_taps(padded)
    n_int = sum(g == "interior" for g, _ in pix)
    border_macs = sum(t for g, t in pix if g != "interior") * c
    rows = []
    border_per_mac: dict[str, float] = {}
    macs = sum(t for _, t in pix) * c
    # layer: one call for the whole layer
    (pad,), ok1 = run_calls(padded, Block(0, 0), platform, kernels_dir)
    (val,), ok2 = run_calls(valid, Block(0, 0), platform, kernels_dir)
    per_int = val.n / len(pix)
    border = pad.n - n_int * per_int
    vmacs = len(pix) * k * k * c
    has_asm = pad.asm > 0 or val.asm > 0

    def per(n: float, m: int) -> str:  # an asm/MAC cell
        return f"{n / m:>7.2f}" if has_asm else f"{'-':>7}"

    rows.append(f"{spec:<16} {'layer':<8} {'all':<9} {len(pix):>6} {pad.n:>12,} "
                f"{macs:>10,} {pad.n / macs:>7.2f} {per(pad.asm, macs)} {'':>6}  {ok1 and ok2}")
    rows.append(f"{'':<16} {'':<8} {'interior':<9} {len(pix):>6} {val.n:>12,} "
                f"{vmacs:>10,} {val.n / vmacs:>7.2f} {per(val.asm, vmacs)} {'':>6}"
                "   (valid layer)")
    if border_macs:
        border_per_mac["layer"] = border / border_macs
        if has_asm:
            border_per_mac["layer, assembly alone,"] = pad.edge / border_macs
        rows.append(f"{'':<16} {'':<8} {'border':<9} {len(pix) - n_int:>6} {border:>12,.0f} "
                    f"{border_macs:>10,} {border / border_macs:>7.2f} "
                    f"{per(pad.edge, border_macs)}")
    # tile: one call per output pixel
    calls, ok = run_calls(padded, Block(0, 0, BlockConfig((1, 1), "recompute")), platform,
                          kernels_dir)
    assert len(calls) == len(pix), (len(calls), len(pix))
    groups: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    for (kind, taps), call in zip(pix, calls):
        for g in (kind, "border") if kind != "interior" else (kind,):
            groups[g][0] += 1
            groups[g][1] += call.n
            groups[g][2] += taps * c
            groups[g][3] += call.asm
    for g in ("corner", "edge", "border", "interior"):
        if g in groups:
            npx, n, gmacs, asm = groups[g]
            if g == "border":
                border_per_mac["tile"] = n / gmacs
                if has_asm:
                    border_per_mac["tile, assembly alone,"] = asm / gmacs
            call = f"{(n - asm) / npx:>6.0f}" if has_asm else f"{'-':>6}"
            rows.append(f"{'':<16} {'tile':<8} {g:<9} {npx:>6} {n:>12,} {gmacs:>10,} "
                        f"{n / gmacs:>7.2f} {per(asm, gmacs)} {call}"
                        + (f"  {ok}" if g == "corner" else ""))
    return rows, border_per_mac


def model_cases(names: list[str]) -> list[str]:
    """Case specs of every distinct square depthwise layer shape of these zoo models."""
    from msfsim import zoo
    from msfsim.ops.dwconv import DwConvOp
    from msfsim.ops import get
    cases: list[str] = []
    for name in names:
        model = zoo.load(name)
        for layer in model.layers:
            if not isinstance(get(layer.op), DwConvOp):
                continue
            (k, kw), (s, sw) = layer.kernel, layer.stride
            if k != kw or s != sw:
                print(f"{name} layer {layer.index}: kernel {layer.kernel} stride {layer.stride} "
                      "not square, skipped")
                continue
            h, w, c = model.tensor(layer.inputs[0]).shape
            spec = f"dw{k}{f's{s}' if s > 1 else ''}:{h}x{w}:{c}"
            if spec not in cases:
                cases.append(spec)
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--platform", default="stm32f746")
    ap.add_argument("--case", action="append", help="case spec (repeatable)")
    ap.add_argument("--models", nargs="+", help="zoo models whose depthwise layers are the cases")
    ap.add_argument("--wide", action="store_true", help="pre-widened weights (weights_s16)")
    ap.add_argument("--kernels-dir", type=Path, default=KERNELS_DIR)
    a = ap.parse_args()
    print(f"{a.platform}, {'pre-widened' if a.wide else 'int8'} weights, kernels "
          f"{a.kernels_dir}")
    print("layer: border = N(padded layer) - interior pixels x (per pixel of the valid layer); "
          "tile: per-call counts of 1x1 tiles. MACs: taps inside the tensor.")
    print(f"{'case':<16} {'method':<8} {'pixels':<9} {'n':>6} {'instructions':>12} "
          f"{'MACs':>10} {'/MAC':>7} {'asm/MAC':>7} {'call':>6}  exact")
    small = platforms.load(a.platform).sram.size < 64 * 1024
    specs = a.case or (model_cases(a.models) if a.models else
                       SMALL_CASES if small else DEFAULT_CASES)
    worst: dict[str, list[tuple[float, str]]] = collections.defaultdict(list)
    for spec in specs:
        try:
            rows, border_per_mac = bench(spec, a.platform, a.wide, a.kernels_dir)
            print("\n".join(rows), flush=True)
            for method, v in border_per_mac.items():
                worst[method].append((v, spec))
        except LinkOverflowError as e:
            print(f"{spec:<16} does not fit: {e}", flush=True)
    for method, vals in worst.items():
        above = sorted((v, sp) for v, sp in vals if v > 5.0)
        print(f"{method} border over {len(vals)} cases: at most {max(vals)[0]:.2f} "
              f"instructions/MAC ({max(vals)[1]}); above 5: "
              + (", ".join(f"{sp} {v:.2f}" for v, sp in above) or "none"))


if __name__ == "__main__":
    main()
