"""Depthwise 3x3 border pixels on the Cortex-M7 DSP path, bit-exact with the reference.

A border pixel's window clipped to the tensor (2x3, 3x2, 2x2 taps) runs the border assembly of
msf_depthwise_conv_s8.c (accumulators at the bias, the input offset added as the input widens);
other clipped windows (1-row / 1-column, on tensors 1 pixel high or wide) and fewer than four
channels stay in C. The assembly exists only in Cortex-M DSP builds, so every case runs in the
emulated stm32f746: whole layers, one-pixel tiles (one kernel call per output pixel: corners,
edges and interior pixels each alone) and fused chains whose depthwise input is a column window
or a ring of rows; int8 and pre-widened weights; input zero points 3 and the extremes -128 and
127 (input offset 128 and -127), with inputs over the whole int8 range.
"""
from __future__ import annotations

import shutil
import tempfile

import numpy as np
import pytest

from msfsim import refmodel
from msfsim.ir import IRBuilder, QParams

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                reason="arm-none-eabi-gcc is not installed")


def same_pad(n: int, s: int) -> tuple[int, int]:
    total = max((-(-n // s) - 1) * s + 3 - n, 0)
    return total // 2, total - total // 2


def dw_chain(hw, c, stride, zp, pw_around=False, seed=0):
    """A 3x3 depthwise layer (TF-SAME padding) on an (h, w, c) input of zero point zp;
    pw_around puts pointwise layers before and after it (a fused chain)."""
    rng = np.random.default_rng(seed)
    b = IRBuilder("dwb", (hw[0], hw[1], c), QParams(0.02, zp))
    x = b.input
    if pw_around:
        wt = rng.integers(-127, 128, size=(c, 1, 1, c)).astype(np.int8)
        x = b.conv(x, wt, np.full(c, 1.0 / (64 * c ** 0.5)), rng.normal(0, 0.1, c),
                   QParams(0.03, zp))
    (pt, pb), (pl, pr) = same_pad(hw[0], stride), same_pad(hw[1], stride)
    wt = rng.integers(-128, 128, size=(3, 3, c)).astype(np.int8)
    x = b.conv(x, wt, np.full(c, 1.0 / (64 * 3.0)), rng.normal(0, 0.1, c), QParams(0.03, -5),
               stride=(stride, stride), pad=(pt, pl, pb, pr), depthwise=True)
    if pw_around:
        wt = rng.integers(-127, 128, size=(5, 1, 1, c)).astype(np.int8)
        b.conv(x, wt, np.full(5, 1.0 / (64 * c ** 0.5)), rng.normal(0, 0.1, 5),
               QParams(0.03, 1))
    return b.build()


# (h, w), channels, stride, input zero point
CASES = [
    ((5, 5), 4, 1, 3),      # one group of four
    ((5, 6), 8, 1, -128),   # input offset 128
    ((6, 5), 7, 1, 127),    # input offset -127; the last group overlaps
    ((4, 4), 13, 1, 3),
    ((3, 3), 5, 1, -1),
    ((2, 2), 6, 1, 3),      # every pixel a corner
    ((2, 5), 11, 1, 0),     # two-row windows only
    ((5, 2), 9, 1, 127),    # two-column windows only
    ((7, 7), 11, 2, 3),     # stride 2, padding 1 on every side
    ((8, 8), 12, 2, -128),  # stride 2, padding only bottom / right
    ((6, 9), 6, 2, 127),
    ((1, 5), 8, 1, 3),      # one-row windows: C
    ((5, 1), 5, 1, 3),      # one-column windows: C
    ((5, 5), 3, 1, -128),   # fewer than four channels: C
    ((4, 5), 2, 2, 127),
    ((3, 4), 1, 1, 3),
]


def run_stm32f746(model, blocks, x):
    from concurrent.futures import ThreadPoolExecutor

    from msfsim.codegen.emit import generate_block
    from msfsim.measure import measure_generated
    want = refmodel.run(model, x).tobytes()

    def run(block):
        with tempfile.TemporaryDirectory() as d:
            code = generate_block(model, block, x)
            code.write(d)
            return measure_generated("stm32f746", d)
    with ThreadPoolExecutor(2) as pool:  # the builds are compiler processes: two at a time
        for block, m in zip(blocks, pool.map(run, blocks)):
            assert m.status == "ok", m
            assert m.output == want, block


def wide_model(model, wide):
    from msfsim.codegen.emit import wide_eligible
    if not wide:
        return model
    layers = frozenset(la.index for la in model.layers if wide_eligible(model, la))
    if not layers:
        pytest.skip("no layer of this case can take pre-widened weights")
    return model.with_wide_weights(layers)


# Pre-widened weights take the same border code with another weight load: a few cases suffice.
WIDE_CASES = (1, 2, 3, 8, 9, 11, 12)  # 11, 12: one-tap windows, the kxk loop


@pytest.mark.parametrize("case,wide", [(i, False) for i in range(len(CASES))]
                         + [(i, True) for i in WIDE_CASES])
def test_dw_border_pixels_bit_exact_on_cortex_m7(case, wide):
    """Whole layer and one-pixel tiles (each border pixel a kernel call of its own)."""
    from msfsim.fusion.block import Block, BlockConfig
    hw, c, s, zp = CASES[case]
    model = wide_model(dw_chain(hw, c, s, zp, seed=case), wide)
    x = np.random.default_rng(case).integers(-128, 128, (hw[0], hw[1], c), dtype=np.int8)
    x.flat[::7] = zp  # some taps at the zero point itself
    run_stm32f746(model, [Block(0, 0), Block(0, 0, BlockConfig((1, 1), "recompute"))], x)


@pytest.mark.parametrize("hw,c,s,zp,wide", [((6, 7), 6, 1, -128, False), ((7, 6), 9, 2, 127, True),
                                            ((5, 5), 4, 1, 3, False)])
def test_dw_border_in_fused_chains_on_cortex_m7(hw, c, s, zp, wide):
    """The depthwise input as a column window (hcache), a region (recompute) and a ring of
    rows (stream2d): border rows and columns of windows that do not start at the tensor's;
    tiles of two or three rows put runs of border pixels down a column window and a ring."""
    from msfsim.fusion.block import Block, BlockConfig
    model = wide_model(dw_chain(hw, c, s, zp, pw_around=True, seed=c), wide)
    x = np.random.default_rng(c).integers(-128, 128, (hw[0], hw[1], c), dtype=np.int8)
    run_stm32f746(model, [Block(0, 2, BlockConfig((1, 1), "hcache")),
                          Block(0, 2, BlockConfig((2, 1), "recompute")),
                          Block(0, 2, BlockConfig((1, 2), "stream2d")),
                          Block(0, 2, BlockConfig((3, 1), "hcache")),
                          Block(0, 2, BlockConfig((3, 2), "recompute")),
                          Block(0, 2, BlockConfig((2, 2), "stream2d")),
                          Block(0, 2, BlockConfig((3, 3), "stream2d"))], x)
