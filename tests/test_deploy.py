"""Deployment choices (msfsim.deploy): which layers get pre-widened weights, their layout, and
that codegen refuses a layer whose kernels would not read them."""
from dataclasses import replace

import numpy as np
import pytest

from msfsim import cli, platforms, zoo
from msfsim.codegen import generate_block
from msfsim.codegen.emit import wide_eligible, wide_weights
from msfsim.deploy import deploy, flash_estimate, wide_extra_bytes, wide_weight_layers
from msfsim.fusion.block import Block
from msfsim.ir import Op
from msfsim.platforms import Region

from test_kernels import one_layer_chain


def test_conv_rows_in_lane_order():
    model = one_layer_chain([("conv", 5, 3, 1, "none")], (6, 6), 3)  # k = 27: a tail of 3
    layer = model.layers[0]
    w = layer.weight.reshape(5, -1)
    rows = wide_weights(layer)
    assert rows.dtype == np.int16 and rows.shape == (5, 28)
    assert (rows[:, :24].reshape(5, 6, 4) == w[:, :24].reshape(5, 6, 4)[:, :, [0, 2, 1, 3]]).all()
    assert (rows[:, 24:27] == w[:, 24:]).all() and (rows[:, 27] == 0).all()


def test_depthwise_groups_cover_every_channel():
    model = one_layer_chain([("dw", 0, 3, 1, "none")], (5, 5), 6)  # C % 4 = 2
    layer = model.layers[0]
    w = layer.weight.reshape(9, 6)
    groups = wide_weights(layer)
    assert groups.shape == (2, 9, 4)
    assert (groups[0] == w[:, [0, 2, 1, 3]]).all()
    assert (groups[1] == w[:, [2, 4, 3, 5]]).all()  # the last group ends at the last channel


def test_depthwise_kxk_groups_hold_every_tap():
    model = one_layer_chain([("dw", 0, 5, 1, "none")], (7, 7), 5)  # C % 4 = 1
    w = model.layers[0].weight.reshape(25, 5)
    groups = wide_weights(model.layers[0])
    assert groups.shape == (2, 25, 4)  # the assembly steps 25 * 8 bytes a group
    assert (groups[0] == w[:, [0, 2, 1, 3]]).all()
    assert (groups[1] == w[:, [1, 3, 2, 4]]).all()


def test_eligibility_follows_the_dsp_loops():
    assert wide_eligible(*_first(one_layer_chain([("pw", 6, 1, 1, "none")], (4, 4), 8)))
    # clamped outputs (ReLU6 inside the int8 range) take the C path: int8 weights only
    assert not wide_eligible(*_first(one_layer_chain([("pw", 6, 1, 2, "relu6")], (4, 4), 8)))
    assert not wide_eligible(*_first(one_layer_chain([("pw", 3, 1, 1, "none")], (4, 4), 8)))
    assert wide_eligible(*_first(one_layer_chain([("dw", 0, 5, 1, "none")], (6, 6), 8)))
    assert not wide_eligible(*_first(one_layer_chain([("dw", 0, 3, 1, "none")], (6, 6), 3)))


def _first(model):
    return model, model.layers[0]


def test_codegen_refuses_a_layer_that_cannot_take_wide_weights():
    model = one_layer_chain([("pw", 6, 1, 2, "relu6")], (4, 4), 8).with_wide_weights(frozenset({0}))
    with pytest.raises(ValueError, match="cannot be pre-widened"):
        generate_block(model, Block(0, 0))


def test_wide_weights_only_in_dsp_builds():
    model = one_layer_chain([("pw", 6, 1, 1, "none")], (4, 4), 8).with_wide_weights(frozenset({0}))
    text = generate_block(model, Block(0, 0)).files["msf_generated.c"]
    dsp, other = text.split("#if MSF_DSP_ASM")[1].split("#else")
    assert "l0_weights_s16[48] __attribute__((aligned(4)))" in dsp and ".weights = NULL" in dsp
    assert "weights_s16" not in other.split("#endif")[0] and "int8_t l0_weights[48]" in other


def test_selection_by_board():
    model = zoo.load("mbv2-w0.35-r144")
    stm = platforms.load("stm32f746")
    everything = {la.index for la in model.layers if wide_eligible(model, la)}
    assert wide_weight_layers(model, stm) == everything  # 1 MB holds them all
    assert wide_weight_layers(model, platforms.load("hifive1b")) == frozenset()  # no DSP
    # a smaller flash: the layers with the most MACs per extra byte, within the room left
    room = 40_000
    small = replace(stm, flash=Region(stm.flash.origin, flash_estimate(model) + room))
    chosen = wide_weight_layers(model, small)
    assert chosen and chosen < everything
    assert sum(wide_extra_bytes(model.layers[i]) for i in chosen) <= room
    ratio = {i: model.macs(model.layers[i]) / wide_extra_bytes(model.layers[i]) for i in everything}
    best_left = max(ratio[i] for i in everything - chosen)
    assert max(ratio[i] for i in chosen) >= best_left
    assert deploy(model, small, wide=False).wide_weights == frozenset()
    assert deploy(model, platforms.load("hifive1b")).input_in_place  # the board's default


def test_cli_measure_reports_wide_weights(capsys):
    """Same output and RAM, fewer instructions, more flash: the trade the option makes."""
    if not _have_arm_gcc():
        pytest.skip("arm-none-eabi-gcc is not installed")
    runs = {}
    for weights in ("auto", "int8"):
        rc = cli.main(["measure", "zoo:lenet5-r28", "--platform", "stm32f746", "--vanilla",
                       "--weights", weights, "--json"])
        assert rc == 0
        runs[weights] = __import__("json").loads(capsys.readouterr().out)
    auto, int8 = runs["auto"], runs["int8"]
    assert auto["output_matches_reference"] and int8["output_matches_reference"]
    assert auto["wide_weight_layers"] and not int8["wide_weight_layers"]
    assert auto["peak_ram"]["act"] == int8["peak_ram"]["act"]
    assert auto["instructions"] < int8["instructions"]
    assert auto["flash_bytes"] > int8["flash_bytes"]
    assert all(zoo.load("lenet5-r28").layers[i].op in (Op.CONV, Op.DWCONV)
               for i in auto["wide_weight_layers"])


def _have_arm_gcc() -> bool:
    import shutil
    return shutil.which("arm-none-eabi-gcc") is not None


def test_weights_that_cannot_fit_flash_are_exit_3(capsys):
    """Every search (analytic too) refuses a model whose weights alone exceed the board's flash,
    naming both sizes."""
    import dataclasses
    from msfsim import NoPlan
    from msfsim.deploy import check_flash, weight_bytes
    model = zoo.load("mbv2-w0.35-r144")
    plat = platforms.load("stm32f746")
    tiny = dataclasses.replace(plat, flash=Region(plat.flash.origin, 64 * 1024))
    with pytest.raises(NoPlan, match=f"{weight_bytes(model):,} B of flash"):
        check_flash(model, tiny)
    with pytest.raises(NoPlan):
        deploy(model, tiny)
    check_flash(model, plat)  # the real board takes it
