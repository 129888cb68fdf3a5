"""The DAG search: exact Pareto front (vs brute force), P1 / P2, baselines, results."""
from __future__ import annotations

import itertools
import json
import re
import zlib

import pytest

from msfsim import NoPlan
from msfsim.fusion import msfcnn
from msfsim.fusion.block import LAYER, Block, BlockCost
from msfsim.fusion.space import candidate_blocks
from msfsim.ir import Model
from msfsim.search import baselines as bl
from msfsim.search.api import search, search_analytic, select
from msfsim.search.pareto import Infeasible, build_dag, pareto_front
from msfsim.search.weights import EdgeWeights
from test_fusion_space import random_chain, residual_net


def fake_cost(model: Model, block: Block) -> BlockCost:
    """Arbitrary but deterministic per-block figures: the search must not rely on any
    structure of a cost model (single layers get cost = vanilla-like values too)."""
    h = zlib.crc32(f"{model.name}/{block.key}".encode())
    ram, cost = 50 + h % 997, 20 + (h >> 10) % 991
    return BlockCost(act=ram, act_io=ram + 7, macs=cost)


def brute_front(model: Model, blocks: list[Block], weights: EdgeWeights) -> set[tuple[int, int]]:
    """All plans: every set of cuts x every config of every block; keep the non-dominated."""
    n = len(model.layers)
    by_range: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for b in blocks:
        w = weights(b)
        if w is not None:
            by_range.setdefault((b.first, b.last), []).append(w)
    points = set()
    for mask in range(1 << (n - 1)):
        cuts = [0] + [i for i in range(1, n) if mask >> (i - 1) & 1] + [n]
        ranges = [(a, b - 1) for a, b in zip(cuts, cuts[1:])]
        if any(r not in by_range for r in ranges):
            continue
        for combo in itertools.product(*(by_range[r] for r in ranges)):
            points.add((max(r for r, _ in combo), sum(c for _, c in combo)))
    return {p for p in points
            if not any(q != p and q[0] <= p[0] and q[1] <= p[1] for q in points)}


def check_front(model: Model, blocks: list[Block], weights: EdgeWeights) -> list:
    front = pareto_front(build_dag(len(model.layers), blocks, weights))
    assert {(p.ram, p.cost) for p in front} == brute_front(model, blocks, weights)
    for p in front:  # each point is a real plan with the figures it claims
        assert p.blocks[0].first == 0 and p.blocks[-1].last == len(model.layers) - 1
        assert all(a.last + 1 == b.first for a, b in zip(p.blocks, p.blocks[1:]))
        ws = [weights(b) for b in p.blocks]
        assert (max(w[0] for w in ws), sum(w[1] for w in ws)) == (p.ram, p.cost)
    assert [p.ram for p in front] == sorted(p.ram for p in front)
    return front


@pytest.mark.parametrize("seed,n", [(1, 6), (2, 7), (5, 8)])
def test_front_equals_brute_force_on_chains(seed, n):
    model = random_chain(seed, n, res=8)
    check_front(model, candidate_blocks(model), EdgeWeights(model, fake_cost))


def test_front_equals_brute_force_on_residual_net():
    model = residual_net()
    front = check_front(model, candidate_blocks(model), EdgeWeights(model, fake_cost))
    assert len(front) > 1


def test_front_equals_brute_force_with_msfcnn_costs():
    model = random_chain(7, 7, res=16)
    w = EdgeWeights(model, msfcnn.block_cost)
    check_front(model, msfcnn.candidate_blocks(model), w)
    assert any(len(p.blocks) < 7 for p in pareto_front(build_dag(7, msfcnn.candidate_blocks(model), w)))


def test_injected_weights_take_the_same_path():
    """Measured weights given as a mapping block -> (ram, instructions) give the same front."""
    model = random_chain(2, 7, res=8)
    blocks = candidate_blocks(model)
    analytic = EdgeWeights(model, fake_cost)
    measured = EdgeWeights(model, {b: analytic(b) for b in blocks})
    fa = pareto_front(build_dag(7, blocks, analytic))
    fm = pareto_front(build_dag(7, blocks, measured))
    assert [(p.ram, p.cost, p.blocks) for p in fa] == [(p.ram, p.cost, p.blocks) for p in fm]
    missing = EdgeWeights(model, {})
    assert missing(blocks[0]) is None and "no weight" in missing.rejected[blocks[0]]


def test_p1_p2_consistency():
    model = random_chain(5, 8, res=8)
    w = EdgeWeights(model, fake_cost)
    blocks = candidate_blocks(model)
    plan_v = bl.vanilla(model, w)
    front = pareto_front(build_dag(8, blocks, w))
    assert len(front) >= 3
    v = plan_v.cost
    for f_max in sorted({p.cost / v for p in front} | {p.cost / v + 1e-3 for p in front}):
        if f_max < front[-1].cost / v:
            continue
        p = select(front, v, "ram", f_max, None)
        assert p.cost <= f_max * v * (1 + 1e-12)
        assert not any(q.ram < p.ram and q.cost <= f_max * v for q in front)
    for r_max in sorted({p.ram for p in front} | {p.ram + 1 for p in front}):
        p = select(front, v, "latency", None, r_max)
        assert p.ram <= r_max
        assert not any(q.cost < p.cost and q.ram <= r_max for q in front)


def test_infeasible_constraints_say_which_and_best():
    model = random_chain(5, 8, res=8)
    w = EdgeWeights(model, fake_cost)
    blocks = candidate_blocks(model)
    plan, front, vanilla = search(model, w, blocks)
    with pytest.raises(Infeasible) as exc:
        search(model, w, blocks, "latency", max_ram=front[0].ram - 1)
    assert exc.value.constraint == "max-ram" and exc.value.best == front[0].ram
    assert isinstance(exc.value, NoPlan) and exc.value.exit_code == 3
    f_best = front[-1].cost / vanilla.cost
    with pytest.raises(Infeasible) as exc:
        search(model, w, blocks, "ram", max_overhead=f_best * 0.999)
    assert exc.value.constraint == "max-overhead" and exc.value.best == pytest.approx(f_best)
    # both constraints: min RAM at F <= f_max is above max_ram
    p1 = select(front, vanilla.cost, "ram", f_best, None)
    with pytest.raises(Infeasible, match="max-ram|RAM") as exc:
        search(model, w, blocks, "ram", max_overhead=f_best, max_ram=p1.ram - 1)
    assert exc.value.best == p1.ram


def test_baselines():
    model = residual_net()  # layer 5 is a 2x2/s2 max-pool: fused in place in vanilla
    w = EdgeWeights(model, fake_cost)
    van = bl.vanilla(model, w)
    assert Block(4, 5, LAYER) in van.blocks and len(van.blocks) == 7
    head = bl.mcunetv2(model, w)
    assert head.blocks[0].first == 0 and head.blocks[0].config.scheme == "recompute"
    assert all(b.config.scheme == "layer" for b in head.blocks[1:])
    # best over every head block that the space offers
    best = min((max(w(b)[0], bl._plan(bl.layer_blocks(model, w, b.last + 1), w).ram
                    if b.last + 1 < 8 else 0),
                w(b)[1] + (bl._plan(bl.layer_blocks(model, w, b.last + 1), w).cost
                           if b.last + 1 < 8 else 0))
               for b in candidate_blocks(model)
               if b.first == 0 and b.last > 0 and b.config.scheme == "recompute")
    assert (head.ram, head.cost) == best
    assert bl.streamnet(model, w).blocks[0].config.scheme == "stream2d"


DESIGN_KEYS = {"schema", "model", "platform", "objective", "cost", "cost_model", "backend",
               "compiler", "blocks", "peak_ram", "macs", "overhead", "instructions",
               "block_instructions", "instructions_ratio", "latency_ms", "flash_bytes",
               "baselines", "pareto", "input_in_place", "wide_weight_layers",
               "model_fingerprint", "layer_count", "ram_convention"}
PLAN_KEYS = {"blocks", "peak_ram", "macs", "overhead", "instructions", "block_instructions",
             "instructions_ratio", "latency_ms", "flash_bytes"}
PEAK_RAM_KEYS = {"act", "act_io", "measured", "measured_act"}
FRONT_KEYS = {"peak_ram_act", "peak_ram_measured_act", "measured", "macs", "overhead",
              "instructions", "instructions_ratio", "chosen"}


def test_search_result_json_and_table():
    model = random_chain(2, 7, res=16)
    r = search_analytic(model, "stm32f746", cost_model="msfcnn", max_overhead=1.5)
    js = json.loads(r.dumps())
    assert set(js) == DESIGN_KEYS
    assert js["schema"] == 2 and js["ram_convention"] == "act"
    assert js["cost"] == "analytic" and js["backend"] is None and js["instructions"] is None
    assert js["instructions_ratio"] is None and js["block_instructions"] is None
    assert set(js["baselines"]) == {"vanilla", "mcunetv2", "streamnet"}
    assert set(js["baselines"]["vanilla"]) == PLAN_KEYS
    assert js["baselines"]["mcunetv2"] is None  # recompute is outside msf-CNN's space
    blk = js["blocks"][0]
    assert set(blk) == {"layers", "tile", "scheme", "ram", "macs", "instructions"}
    assert set(blk["ram"]) == PEAK_RAM_KEYS and blk["ram"]["measured"] is None
    assert blk["ram"]["measured_act"] is None
    assert set(js["peak_ram"]) == PEAK_RAM_KEYS and js["peak_ram"]["measured_act"] is None
    assert js["peak_ram"]["act"] == max(b["ram"]["act"] for b in js["blocks"])
    assert js["macs"] == sum(b["macs"] for b in js["blocks"])
    assert js["overhead"] <= 1.5 and js["baselines"]["vanilla"]["overhead"] == 1.0
    assert js["pareto"][0]["peak_ram_act"] <= js["peak_ram"]["act"]
    assert all(set(p) == FRONT_KEYS for p in js["pareto"])
    assert not any(p["measured"] for p in js["pareto"])  # analytic: nothing is measured
    (chosen,) = [p for p in js["pareto"] if p["chosen"]]
    assert (chosen["peak_ram_act"], chosen["macs"]) == (js["peak_ram"]["act"], js["macs"])
    table = r.format_table()
    assert "act = block buffers" in table and "vanilla" in table and "pareto front" in table
    front = table.split("pareto front")[1].split("search time")[0]
    assert "<- chosen plan" in front and "measured" not in front and "analytic" in front


def test_f_is_the_macs_ratio_even_under_instruction_weights():
    """F = MACs / layer-by-layer MACs for plan, baselines and front, whatever the search
    weights (here a mapping block -> (ram, instructions))."""
    model = random_chain(2, 7, res=16)
    runnable = EdgeWeights(model, msfcnn.block_cost)
    table = {b: (fake_cost(model, b).act, fake_cost(model, b).macs)
             for b in msfcnn.candidate_blocks(model) if runnable(b) is not None}
    for r in (search_analytic(model, "b", cost_model="msfcnn"),
              search_analytic(model, "b", cost_model="msfcnn", weights=table)):
        van = r.baselines["vanilla"]
        for s in [r.plan] + [v for v in r.baselines.values() if v]:
            assert s.overhead == pytest.approx(s.macs / van.macs)
            assert s.instructions_ratio is None  # nothing was measured


def test_sram_caps_the_ram():
    model = random_chain(2, 7, res=16)
    free = search_analytic(model, "b", objective="latency", cost_model="msfcnn")
    with pytest.raises(Infeasible) as exc:
        search_analytic(model, "b", objective="latency", cost_model="msfcnn",
                        sram_bytes=free.pareto[0].peak_ram_act - 1)
    assert exc.value.constraint == "max-ram"


def test_exact_cost_model_end_to_end():
    pytest.importorskip("msfsim.fusion.exact")
    model = residual_net()
    r = search_analytic(model, "stm32f746", cost_model="exact")
    van = r.baselines["vanilla"]
    assert r.plan.act <= van.act
    assert r.plan.blocks[0].block.first == 0 and r.plan.blocks[-1].block.last == 7
    assert r.pareto[-1].overhead <= 1.0 + 1e-12 or r.pareto[-1].macs <= van.macs
    assert r.plan.act == r.pareto[0].peak_ram_act


def test_mapping_weights_through_search_analytic():
    """Weights given as block -> (ram, instructions) drive the search; the named cost model
    still gives each block's act / MACs, and the measured figures fill the measured fields."""
    from msfsim.search.result import PlanSummary
    model = random_chain(2, 7, res=16)
    runnable = EdgeWeights(model, msfcnn.block_cost)
    table = {b: (fake_cost(model, b).act, fake_cost(model, b).macs)
             for b in msfcnn.candidate_blocks(model) if runnable(b) is not None}
    r = search_analytic(model, "b", cost_model="msfcnn", weights=table)
    w = EdgeWeights(model, table)
    front = pareto_front(build_dag(7, msfcnn.candidate_blocks(model), w))
    assert r.pareto[0].peak_ram_act == front[0].ram
    blocks = tuple(b.block for b in r.plan.blocks)
    assert max(table[b][0] for b in blocks) == front[0].ram
    assert r.plan.blocks[0].act == msfcnn.block_cost(model, blocks[0]).act
    s = PlanSummary.of(front[0], EdgeWeights(model, msfcnn.block_cost), 1, measured=table)
    assert s.measured == front[0].ram and s.instructions == front[0].cost
    assert s.to_json()["blocks"][0]["instructions"] == table[front[0].blocks[0]][1]


def test_plan_file_round_trip(tmp_path):
    from msfsim import MsfsimError
    from msfsim.search.result import load_plan
    model = random_chain(2, 7, res=16)
    r = search_analytic(model, "b", cost_model="msfcnn")
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(r.to_plan_json()))
    assert tuple(load_plan(path, 7)) == tuple(b.block for b in r.plan.blocks)
    js = r.to_plan_json()
    js["blocks"] = js["blocks"][1:]
    with pytest.raises(MsfsimError, match="does not start at layer 0"):
        load_plan(js, 7)
    with pytest.raises(MsfsimError, match="the model has 8"):
        load_plan(r.to_plan_json(), 8)


# ------------------------------------------------------------------------------ measured search
# One measured search of lenet5 (seconds with a warm cache: MSFSIM_CACHE): its text, JSON and
# figures tell one story, in one RAM convention.

@pytest.fixture(scope="module")
def measured_lenet():
    from msfsim import ToolMissing, platforms, zoo
    from msfsim.deploy import deploy
    from msfsim.pipeline.measured_search import search_measured
    plat = platforms.load("stm32f746")
    model = deploy(zoo.load("lenet5-r28"), plat)
    try:
        return model, plat, search_measured(model, plat, jobs=2, progress=False)
    except ToolMissing as exc:
        pytest.skip(f"measured search unavailable: {exc}")


def test_measured_json_schema(measured_lenet):
    _, _, r = measured_lenet
    js = json.loads(r.dumps())
    assert set(js) == DESIGN_KEYS | {"measurement"}
    assert js["schema"] == 2 and js["ram_convention"] == "measured_act"
    for s in [js] + [v for v in js["baselines"].values() if v]:
        assert set(s["peak_ram"]) == PEAK_RAM_KEYS
        assert s["peak_ram"]["measured_act"] == max(b["ram"]["measured_act"] for b in s["blocks"])
        assert s["block_instructions"] == sum(b["instructions"] for b in s["blocks"])
    assert all(set(p) == FRONT_KEYS for p in js["pareto"])
    # the final front is searched on measured weights: every point is measured
    assert all(p["measured"] and p["peak_ram_measured_act"] is not None for p in js["pareto"])
    assert js["peak_ram"]["measured_act"] == js["measurement"]["measured_act"]["bytes"]


def test_measured_plan_is_on_its_front_and_no_baseline_below_it(measured_lenet):
    _, _, r = measured_lenet
    p = r.plan
    (chosen,) = [q for q in r.to_json()["pareto"] if q["chosen"]]
    assert (chosen["peak_ram_measured_act"], chosen["instructions"]) == \
        (p.measured_act, p.block_instructions)
    assert (chosen["peak_ram_act"], chosen["macs"]) == (p.act, p.macs)
    for name, s in r.baselines.items():
        if s is None or s.measured_act is None:
            continue
        assert any(q.peak_ram_measured_act <= s.measured_act
                   and q.instructions <= s.block_instructions for q in r.pareto), name


def test_measured_f_is_the_macs_ratio(measured_lenet):
    _, _, r = measured_lenet
    van = r.baselines["vanilla"]
    for s in [r.plan] + [v for v in r.baselines.values() if v]:
        assert s.overhead == pytest.approx(s.macs / van.macs)
        assert s.instructions_ratio == pytest.approx(s.block_instructions
                                                     / van.block_instructions)
    stream = r.baselines["streamnet"]
    assert stream.overhead == pytest.approx(stream.macs / van.macs)
    for q in r.pareto:
        assert q.overhead == pytest.approx(q.macs / van.macs)
        assert q.instructions_ratio == pytest.approx(q.instructions / van.block_instructions)


def test_measured_text_shows_measured_columns(measured_lenet):
    _, _, r = measured_lenet
    text = r.format_table()
    head = next(line for line in text.splitlines() if "layers" in line and "tile" in line)
    assert "meas.act B" in head and "instructions" in head and "measured B" in head
    rows = [line for line in text.splitlines() if re.match(r"\s+\d+\s+\d+-\d+\s", line)]
    assert len(rows) == len(r.plan.blocks)
    for row, b in zip(rows, r.plan.blocks):
        assert f"{b.measured_act:,}" in row and f"{b.instructions:,}" in row
    assert f"peak measured act {r.plan.measured_act:,} B" in text
    assert f"F {r.plan.overhead:.3f}" in text
    assert f"{r.plan.instructions_ratio:.3f} x instr vs layer-by-layer" in text
    front = text.split("pareto front")[1]
    assert "<- chosen plan" in front and "estimate" not in front.split("search time")[0]


def test_measured_report_tells_one_story(measured_lenet, tmp_path):
    from msfsim import report
    from test_report import svg_legend_peak, inline_svgs, tables, num
    model, plat, r = measured_lenet
    index = report.write_report(model, plat, r, tmp_path)
    page = index.read_text()
    summary = {row[0]: row[1] for row in tables(index)["summary"]}
    peak = num(summary["peak RAM measured act (B; blocks measured alone)"])
    assert peak == r.plan.measured_act
    assert svg_legend_peak(inline_svgs(page)[0], "measured act") == peak
    assert num(summary["peak RAM measured, whole-plan firmware (B)"]) == r.plan.measured


def test_a_model_without_macs_searches():
    """Elementwise layers only (a LUT then a max pool): every plan costs 0 MACs like layer by
    layer, so F is 1, not a division by zero; with --max-overhead 1 and without one."""
    import numpy as np
    from msfsim.ir import IRBuilder, QParams
    b = IRBuilder("no_macs", (8, 8, 3), QParams(0.02, 3))
    x = b.lut(b.input, np.arange(-128, 128, dtype=np.int8)[::-1].copy(), QParams(0.02, 3))
    b.pool(x, "max", (2, 2), (2, 2))
    model = b.build()
    assert model.total_macs == 0
    for overhead in (None, 1.0):
        r = search_analytic(model, "stm32f746", max_overhead=overhead)
        assert r.plan.overhead == 1.0 and r.plan.macs == 0
        assert all(p.overhead == 1.0 for p in r.pareto)
        assert r.plan.act <= r.baselines["vanilla"].act
