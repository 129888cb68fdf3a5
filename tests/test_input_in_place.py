"""Network input read in place (flash, a sensor buffer) instead of copied into the arena."""
from __future__ import annotations

import json

import numpy as np
import pytest

from msfsim import cli, refmodel, zoo
from msfsim.fusion import exact
from msfsim.host import run_plan
from msfsim.pipeline import measurement_input
from msfsim.search.api import search_analytic


@pytest.mark.parametrize("name", ["resnet8-r32", "mcunet-res-r96", "lenet5-r28"])
def test_in_place_plan_is_bit_exact_and_its_arena_holds_no_input(name):
    copied = zoo.load(name)
    model = copied.with_input_in_place()
    assert model.input_in_place and not copied.input_in_place
    blocks = [s.block for s in search_analytic(model, "stm32f746").plan.blocks]
    x = measurement_input(model)
    y, high_water = run_plan(model, blocks, x)
    assert np.array_equal(y, refmodel.run(model, x))
    cost = exact.plan_cost(model, blocks)
    assert high_water == cost.buffers["arena"]
    # act (network I/O excluded) does not depend on where the input lies; act_io of the first
    # block loses exactly the input buffer
    first = blocks[0]
    a, b = exact.block_cost(copied, first), exact.block_cost(model, first)
    assert a.act == b.act
    assert a.act_io - b.act_io == (copied.tensor(copied.input).size + 3) // 4 * 4


def test_cli_default_comes_from_the_board_and_flags_override_it(capsys):
    def run(*args: str) -> dict:
        assert cli.main(["search", "zoo:lenet5-r28", "--cost", "analytic", "--json", *args]) == 0
        return json.loads(capsys.readouterr().out)

    assert run("--platform", "hifive1b")["input_in_place"] is True
    assert run("--platform", "hifive1b", "--input-in-arena")["input_in_place"] is False
    assert run("--platform", "stm32f746")["input_in_place"] is False
    on = run("--platform", "stm32f746", "--input-in-place")
    off = run("--platform", "stm32f746")
    assert on["input_in_place"] is True
    assert on["peak_ram"]["act"] == off["peak_ram"]["act"]
    assert on["peak_ram"]["act_io"] < off["peak_ram"]["act_io"]


def test_in_place_and_arena_flags_are_exclusive(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["search", "zoo:lenet5-r28", "--platform", "stm32f746", "--input-in-place",
                  "--input-in-arena"])
    assert e.value.code == 2
