"""The measured search end to end on a small model: emulator-measured weights, a cache that
makes a second run measure nothing, dropped faulting candidates, P1 / P2 on measured weights."""
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from msfsim import NoPlan, refmodel, zoo
from msfsim.fusion.block import Block
from msfsim.measure import measurement_input
from msfsim.pipeline import run
from msfsim.pipeline.measured_search import search_measured

MODEL = "lenet5-r28"
BOARD = "stm32f746"


@pytest.fixture(scope="module")
def model():
    """Deployed as the CLI deploys it (pre-widened weights on this board), so that the CLI
    runs below find the fixture's measurements in the cache."""
    from msfsim import platforms
    from msfsim.deploy import deploy
    return deploy(zoo.load(MODEL), platforms.load(BOARD))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("measurements")


@pytest.fixture(scope="module")
def cold(model, cache):
    t0 = time.perf_counter()
    r = search_measured(model, BOARD, jobs=2, cache_dir=cache, progress=False)
    return r, time.perf_counter() - t0


def blocks_of(summary):
    return [b.block for b in summary.blocks]


def test_cold_search_measures_and_reports_the_whole_plan(model, cold):
    r, _ = cold
    st = r.measurement["stats"]
    assert st["measured"] > 0 and st["cache_hits"] == 0
    assert r.cost == "measured" and r.backend == "unicorn" and "gcc" in r.compiler
    p = r.plan
    # whole-plan firmware figures: RAM = arena + stack + static, latency = instructions / clock
    fw = r.measurement["plan_firmware"]
    assert p.measured == fw["arena"] + fw["stack"] + fw["static"]
    assert fw["arena"] >= p.act_io  # the arena holds at least the worst block with its I/O
    assert p.instructions > p.macs  # an int8 MAC costs more than one instruction on a Cortex-M7
    assert p.latency_ms == pytest.approx(1e3 * p.instructions / 216e6)
    assert p.flash_bytes > 0
    # every block of the chosen plan was measured on its own
    assert all(b.instructions and b.measured for b in p.blocks)
    # the vanilla baseline is measured too and defines F
    van = r.baselines["vanilla"]
    assert van.instructions > 0 and van.overhead == 1.0
    assert p.instructions_ratio == pytest.approx(sum(b.instructions for b in p.blocks)
                                                 / sum(b.instructions for b in van.blocks))
    assert p.overhead == pytest.approx(p.macs / van.macs)  # F is the MACs ratio
    # JSON (DESIGN §7) carries the measured fields
    j = json.loads(r.dumps())
    assert j["cost"] == "measured" and j["peak_ram"]["measured"] == p.measured
    assert j["instructions"] == p.instructions and j["pareto"]
    assert all(pt["instructions"] is not None for pt in j["pareto"])


def test_chosen_plan_is_bit_exact_with_the_reference(model, cold):
    r, _ = cold
    x = measurement_input(model, seed=7)  # not the input the search measured with
    y = run(model, BOARD, x, plan=None, backend="host")
    assert np.array_equal(y, refmodel.run(model, x))
    blocks = blocks_of(r.plan)
    from msfsim import host
    out, _ = host.run_plan(model, blocks, x)
    assert np.array_equal(out, refmodel.run(model, x))


def test_min_ram_is_minimal_on_the_measured_front(cold):
    r, _ = cold
    ram_weight = r.measurement["plan_firmware"]["ram_weight"]
    assert ram_weight == min(pt.peak_ram_measured_act for pt in r.pareto)


def test_warm_run_measures_nothing_new(model, cold, cache):
    r0, t_cold = cold
    t0 = time.perf_counter()
    r = search_measured(model, BOARD, jobs=2, cache_dir=cache, progress=False)
    t_warm = time.perf_counter() - t0
    st = r.measurement["stats"]
    assert st["measured"] == 0
    assert st["cache_hits"] == r0.measurement["stats"]["measured"]
    assert blocks_of(r.plan) == blocks_of(r0.plan)
    assert r.plan.instructions == r0.plan.instructions and r.plan.measured == r0.plan.measured
    assert t_warm < 5.0 and t_warm < t_cold


def test_faulting_candidate_is_reported_and_dropped(model, cold, cache, capsys):
    r0, _ = cold
    victim = next(b.block for b in r0.plan.blocks if b.block.config.scheme != "layer")

    def budget(block, cost):  # a few instructions: the victim cannot finish
        return 50 if block == victim else 10**9

    r = search_measured(model, BOARD, jobs=2, cache_dir=cache, progress=False, budget=budget)
    dropped = {d["block"]: d["cause"] for d in r.measurement["dropped"]}
    assert victim.key in dropped and dropped[victim.key].startswith("budget")
    assert victim not in blocks_of(r.plan)
    assert victim.key in capsys.readouterr().err
    # the budget stop is not cached: without it the block is measured and chosen again
    r2 = search_measured(model, BOARD, jobs=1, cache_dir=cache, progress=False)
    assert victim in blocks_of(r2.plan) and not r2.measurement["dropped"]


def test_p1_overhead_limit_holds_on_measured_instructions(model, cold, cache):
    r0, _ = cold
    limit = 1.2
    assert r0.plan.instructions_ratio > limit  # otherwise the constraint would not bind
    r = search_measured(model, BOARD, max_overhead=limit, jobs=2, cache_dir=cache, progress=False)
    van = r.baselines["vanilla"]
    instr = sum(b.instructions for b in r.plan.blocks)
    assert instr <= limit * sum(b.instructions for b in van.blocks)
    assert r.plan.instructions_ratio <= limit
    assert r.measurement["plan_firmware"]["ram_weight"] >= r0.measurement["plan_firmware"]["ram_weight"]
    with pytest.raises(NoPlan):
        search_measured(model, BOARD, max_overhead=0.5, jobs=2, cache_dir=cache, progress=False)


def test_p2_ram_limit_holds_on_measured_ram(model, cold, cache):
    r0, _ = cold
    front = sorted(r0.pareto, key=lambda p: p.peak_ram_measured_act)
    if len(front) < 2:
        pytest.skip("a one-point front has no RAM / speed trade-off")
    limit = front[0].peak_ram_measured_act  # the tightest budget any plan meets
    r = search_measured(model, BOARD, objective="latency", max_ram=limit, jobs=2,
                        cache_dir=cache, progress=False)
    assert r.measurement["plan_firmware"]["ram_weight"] <= limit
    loose = search_measured(model, BOARD, objective="latency", max_ram=10**6, jobs=2,
                            cache_dir=cache, progress=False)
    assert loose.plan.instructions_ratio <= r.plan.instructions_ratio
    with pytest.raises(NoPlan):
        search_measured(model, BOARD, objective="latency", max_ram=limit - 1, jobs=2,
                        cache_dir=cache, progress=False)


def test_cli_measured_search_json(cold, cache, tmp_path):
    r0, _ = cold
    plan = tmp_path / "plan.json"
    p = subprocess.run([sys.executable, "-m", "msfsim", "search", f"zoo:{MODEL}", "--platform",
                        BOARD, "--cache", str(cache), "--jobs", "2", "--json", "-o", str(plan)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["cost"] == "measured" and j["measurement"]["stats"]["measured"] == 0
    assert [b["layers"] for b in j["blocks"]] == [[b.block.first, b.block.last] for b in r0.plan.blocks]
    assert j["peak_ram"]["measured"] == r0.plan.measured
    assert json.loads(plan.read_text())["instructions"] == r0.plan.instructions


def test_budget_stop_is_a_status_and_not_cached(model, tmp_path):
    from msfsim.codegen import generate_block
    from msfsim.measure import Item, Measurer, output_digest
    values = refmodel.run_layers(model, measurement_input(model))
    block = Block(0, 0)
    code = generate_block(model, block, [values[model.input]])
    item = Item(block.key, code, output_digest(values[code.output]), budget=50)
    for _ in range(2):  # measured both times: a budget stop says nothing about the firmware
        with Measurer(BOARD, jobs=1, cache_dir=tmp_path, progress=False) as m:
            o = m.measure([item])[block.key]
            assert o.status == "budget" and not o.cached and m.stats.measured == 1
    item.budget = 10**9
    with Measurer(BOARD, jobs=1, cache_dir=tmp_path, progress=False) as m:
        ok = m.measure([item])[block.key]
    assert ok.ok and 50 < ok.instructions and not ok.cached
    item.budget = ok.instructions - 1  # a cached result is held to the budget too
    with Measurer(BOARD, jobs=1, cache_dir=tmp_path, progress=False) as m:
        again = m.measure([item])[block.key]
    assert again.cached and again.status == "budget"


class _RecordingBar:
    """Stands in for tqdm: the totals it was given over time and its count."""
    made: list["_RecordingBar"] = []

    def __init__(self, total=None, disable=False, **kw):
        self._total, self.n, self.totals, self.closed = total, 0, [], False
        _RecordingBar.made.append(self)

    @property
    def total(self):
        return self._total

    @total.setter
    def total(self, v):
        self._total = v
        self.totals.append(v)

    def update(self, k=1):
        self.n += k
        assert self.n <= self._total, (self.n, self._total)

    def set_description(self, *a, **k):
        pass

    def set_postfix_str(self, *a, **k):
        pass

    def close(self):
        self.closed = True


def test_progress_total_is_honest(model, cold, cache, monkeypatch):
    """The bar never runs past its total and ends exactly at it; with the memo of a previous
    run its first total is already the final one (no growth each round)."""
    from msfsim.measure import measurer
    r, _ = cold
    _RecordingBar.made = []
    monkeypatch.setattr(measurer, "_bar_class", lambda: _RecordingBar)
    search_measured(model, BOARD, jobs=2, cache_dir=cache, progress=True)
    (bar,) = _RecordingBar.made
    assert bar.closed and bar.n == bar.total
    first = next(t for t in bar.totals if t > 0)
    assert first == bar.total  # announced up front from the memo: the ETA is right at once


def test_round_projection_shrinks_geometrically_and_is_withdrawn():
    from msfsim.pipeline.progress import DEFAULT_RATIO, RoundProjection, projected_after

    class M:
        def __init__(self):
            self.outstanding, self.total = 0, 0

        def announce(self, n, stage=""):
            self.outstanding += n
            self.total += n

        def measured(self, n):
            self.outstanding -= n

    m = M()
    p = RoundProjection(m, whole_plans=4)
    p.round(60, "round 1")  # 60 + 60 * 0.6 / 0.4 + 4
    assert m.total == 60 + projected_after(60, DEFAULT_RATIO) + 4 == 154
    m.measured(60)
    p.round(24, "round 2")  # ratio 0.4 learned: 24 + 16 + 4 outstanding
    assert m.outstanding == 24 + 16 + 4
    m.measured(24)
    p.settle(3)  # no more rounds; one baseline does not exist
    assert m.outstanding == 3 and m.total == 60 + 24 + 3
