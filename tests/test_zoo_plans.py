"""Every zoo model: vanilla and fused plans run on the host bit-exact with the reference, and the
arena the generated code touches is the arena the exact cost model planned."""
import numpy as np
import pytest

from msfsim import host, plan, refmodel, zoo
from msfsim.fusion import exact
from msfsim.search.api import search_analytic

NAMES = [r[0] for r in zoo.list_models()]


def blocks_of(model, result):
    return plan.from_json(model, result.to_plan_json())


@pytest.mark.parametrize("name", NAMES)
def test_plans_are_bit_exact_and_use_the_planned_arena(name):
    m = zoo.load(name)
    x = np.random.default_rng(7).integers(-128, 128, m.tensor(m.input).shape, dtype=np.int8)
    ref = refmodel.run(m, x)
    plans = {"vanilla": plan.vanilla(m),
             "min-ram": blocks_of(m, search_analytic(m, "stm32f746")),
             "F<=1.3": blocks_of(m, search_analytic(m, "stm32f746", max_overhead=1.3))}
    for label, blocks in plans.items():
        y, high_water = host.run_plan(m, blocks, x)
        assert np.array_equal(y, ref), f"{name} {label}: output differs from the reference"
        assert high_water == exact.plan_cost(m, blocks).buffers["arena"], f"{name} {label}"
