"""Retired instructions per output and per MAC of the convolution kernels, per board.

    PYTHONPATH=. python benchmarks/kernels.py [--platform stm32f746] [--case pw:18x18:11:66 ...]

Each case is a one-layer model (random int8 weights, typical quantisation) run as one
layer-by-layer block; only the instructions retired inside the kernel's own functions are
counted (a Python block hook, as in benchmarks/profile_plan.py), and the output is checked
against the host reference. Case syntax: `pw|conv3|conv3s2|dw3|dw3s2:HxW:Cin[:Cout]`.
"""
from __future__ import annotations

import argparse
import bisect
import collections
import tempfile
from pathlib import Path

import numpy as np

from msfsim import platforms, refmodel
from msfsim.codegen.emit import generate_block
from msfsim.fusion.block import Block
from msfsim.ir import IRBuilder, Model, QParams
from msfsim.measure import build_firmware
from msfsim.sim import unicorn_backend as ub
from msfsim.sim.elf import ElfImage

DEFAULT_CASES = ["conv3s2:36x36:3:11", "pw:18x18:5:30", "pw:18x18:8:48", "pw:18x18:11:11",
                 "pw:18x18:11:66", "pw:9x9:33:198", "pw:9x9:198:33", "pw:5x5:336:56",
                 "dw3:18x18:48", "dw3s2:18x18:30", "dw3:9x9:132", "dw3:5x5:336"]
KERNEL_PREFIXES = ("msf_convolve", "msf_depthwise", "msf_pw", "msf_dw", "msf_conv", "pw_", "dw",
                   "conv_", "im2col", "copy_s8", "fill_s8")


def case_model(spec: str, seed: int = 0) -> Model:
    kind, hw, *ch = spec.split(":")
    h, w = (int(v) for v in hw.split("x"))
    cin = int(ch[0])
    cout = int(ch[1]) if len(ch) > 1 else cin
    k = 1 if kind == "pw" else 3
    s = 2 if kind.endswith("s2") else 1
    dw = kind.startswith("dw")
    rng = np.random.default_rng(seed)
    b = IRBuilder(spec, (h, w, cin), QParams(0.02, 3))
    shape = (k, k, cin) if dw else (cout, k, k, cin)
    wt = rng.integers(-127, 128, size=shape).astype(np.int8)
    pad = (k // 2, k // 2, k // 2, k // 2) if k > 1 else (0, 0, 0, 0)
    if s == 2 and k > 1:
        pad = (0, 0, 1, 1)  # TF SAME on an even size
    fan_in = k * k * (1 if dw else cin)
    b.conv(b.input, wt, np.full(cout, 1.0 / (64 * fan_in ** 0.5)), rng.normal(0, 0.1, cout),
           QParams(0.03, -5), stride=(s, s), pad=pad, depthwise=dw)
    return b.build()


def run_case(spec: str, platform: str) -> tuple[int, int, int, bool]:
    """(kernel instructions, outputs, MACs, bit-exact) of one case."""
    model = case_model(spec)
    layer = model.layers[0]
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, size=model.tensor(model.input).shape, dtype=np.int8)
    code = generate_block(model, Block(0, 0), x)
    plat = platforms.load(platform)
    with tempfile.TemporaryDirectory() as d:
        code.write(Path(d))
        elf = build_firmware(plat, d)
    image = ElfImage(elf.path)
    funcs = sorted((v & ~1, s, n) for n, (v, s) in image.symbols.items()
                   if s > 0 and n.startswith(KERNEL_PREFIXES))
    starts = [f[0] for f in funcs]
    counted = collections.Counter()
    base_hook = ub._PyCounter.hook

    def hook(self, uc, address, size, user):
        before = self.total
        base_hook(self, uc, address, size, user)
        k = bisect.bisect_right(starts, address) - 1
        if k >= 0 and address < funcs[k][0] + funcs[k][1]:
            counted[funcs[k][2]] += self.total - before

    ub._PyCounter.hook = hook
    try:
        m = ub.UnicornBackend(native=False).run(elf, plat, budget_instructions=10**10,
                                                timeout_s=3600)
    finally:
        ub._PyCounter.hook = base_hook
    outputs = model.tensor(layer.output).size
    exact = m.output == refmodel.run(model, x).tobytes()
    return sum(counted.values()), outputs, model.macs(layer), exact


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--platform", default="stm32f746")
    ap.add_argument("--case", action="append", help="case spec (repeatable); default: a set "
                    "of mbv2-w0.35 layer shapes")
    a = ap.parse_args()
    print(f"{'case':<22} {'instructions':>13} {'/output':>9} {'/MAC':>7}  exact")
    for spec in a.case or DEFAULT_CASES:
        n, outs, macs, ok = run_case(spec, a.platform)
        print(f"{spec:<22} {n:>13,} {n / outs:>9.1f} {n / macs:>7.2f}  {ok}")


if __name__ == "__main__":
    main()
