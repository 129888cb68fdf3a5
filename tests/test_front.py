"""`msfsim search --front`: a Pareto front of measured plans. Every point is measured (each
block, and the plan as one firmware, as `msfsim measure --plan` reports it), the front is
non-dominated from the least RAM to layer by layer; without --front, estimated points are
marked in the JSON, the text, the report and its plot."""
import json
import subprocess
import sys

import pytest

from msfsim import platforms, plots, report, zoo
from msfsim.deploy import deploy
from msfsim.fusion.block import Block, BlockConfig
from msfsim.pipeline import measured_search
from msfsim.pipeline.measured_search import search_measured
from msfsim.search import refine
from msfsim.search.pareto import Plan

MODEL = "lenet5-r28"
BOARD = "stm32f746"


@pytest.fixture(scope="module")
def model():
    """Deployed as the CLI deploys it, so that `msfsim measure` finds the same firmware."""
    return deploy(zoo.load(MODEL), platforms.load(BOARD))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("front-measurements")


@pytest.fixture(scope="module")
def front_run(model, cache):
    return search_measured(model, BOARD, jobs=2, cache_dir=cache, progress=False, front=True)


@pytest.fixture(scope="module")
def plain_run(model, cache, front_run):
    """Without --front, measuring only the chosen plan's neighbour: estimates remain."""
    return search_measured(model, BOARD, jobs=2, cache_dir=cache, progress=False,
                           front_plans=1)


def test_every_front_point_is_measured_from_least_ram_to_layer_by_layer(front_run):
    r = front_run
    info = r.measurement["front"]
    assert info["complete"] and info["stable"] and info["estimated_points"] == 0
    assert 1 <= info["rounds"] <= info["max_rounds"] and len(r.pareto) == info["points"]
    assert len(r.pareto) >= 3 and all(p.measured for p in r.pareto)
    assert all(q["measured"] for q in r.to_json()["pareto"])
    # non-dominated: RAM up, instructions down, strictly
    rams = [p.peak_ram_measured_act for p in r.pareto]
    instr = [p.instructions for p in r.pareto]
    assert rams == sorted(set(rams)) and instr == sorted(set(instr), reverse=True)
    # the first point is the min-RAM plan (the chosen one), the last no slower than layer by layer
    first, last = r.pareto[0], r.pareto[-1]
    assert first.chosen and (first.peak_ram_measured_act, first.instructions) == \
        (r.plan.measured_act, r.plan.block_instructions)
    assert last.instructions <= r.baselines["vanilla"].block_instructions
    # every front plan was also built and run as one firmware
    plans = info["plans"]
    assert [q["point"] for q in plans] == list(range(len(r.pareto)))
    assert all(q["firmware"]["status"] == "ok" for q in plans)
    assert "every block of every front plan measured" in r.format_table()


def test_front_points_equal_a_direct_measure(front_run, model, cache, tmp_path):
    r = front_run
    plans = r.measurement["front"]["plans"]
    for k in sorted({1, len(r.pareto) - 1}):
        path = tmp_path / f"point{k}.json"
        path.write_text(json.dumps({"model_fingerprint": model.fingerprint(),
                                    "layer_count": plans[k]["layer_count"],
                                    "blocks": plans[k]["blocks"]}))
        p = subprocess.run([sys.executable, "-m", "msfsim", "measure", f"zoo:{MODEL}",
                            "--platform", BOARD, "--plan", str(path), "--cache", str(cache),
                            "--json"], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        j = json.loads(p.stdout)
        point, fw = r.pareto[k], plans[k]["firmware"]
        assert j["instructions"] == fw["instructions"]
        assert j["peak_ram"]["measured"] == fw["measured_ram"]
        assert (j["peak_ram"]["act"], j["macs"]) == (point.peak_ram_act, point.macs)
        # the point's own figure (its blocks measured alone) is that firmware's, near enough
        assert point.instructions == pytest.approx(fw["instructions"], rel=0.02)


def test_without_front_estimated_points_are_marked(plain_run, front_run):
    r = plain_run
    info = r.measurement["front"]
    assert not info["complete"] and "plans" not in info
    js = r.to_json()["pareto"]
    est = [k for k, q in enumerate(js) if not q["measured"]]
    assert est, "a one-neighbour search leaves estimated points"
    assert info["estimated_points"] == len(est)
    assert r.measurement["blocks_measured"] < front_run.measurement["blocks_measured"]
    chosen = next(q for q in js if q["chosen"])
    assert chosen["measured"]  # the chosen plan is always measured
    text = r.format_table()
    rows = text.split("pareto front")[1].split("search time")[0]
    assert rows.count("  estimate") == len(est)
    assert "--front measures every front plan" in text


def test_the_report_draws_estimates_apart(plain_run, tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "draw", lambda ax, chart, real=plots.draw:
                        (drawn.append(chart), real(ax, chart))[1])
    index = report.write_report(None, None, plain_run, tmp_path)
    data = json.loads((tmp_path / "result.json").read_text())
    est = [p for p in data["pareto"] if not p["measured"]]
    chart = report.pareto_chart(data)
    if plots.matplotlib() is not None:
        chart = next(c for c in drawn if c.title.startswith("RAM / latency"))
    (hollow,) = [s for s in chart.series if s.hollow]
    assert sorted(hollow.points) == sorted((p["peak_ram_measured_act"], p["instructions"])
                                           for p in est)
    assert "estimate" in hollow.label and "measured" not in hollow.label
    assert sum(chart.step_dashed[:-1]) == len(est)
    page = index.read_text()
    assert page.count('<tr class="estimate">') == len(est)
    assert "the estimated points were not (--front measures every front plan)" in page


def test_the_front_report_shows_each_plan_as_one_firmware(front_run, tmp_path):
    from test_report import num, tables
    index = report.write_report(None, None, front_run, tmp_path)
    rows = tables(index)["pareto"]
    plans = front_run.measurement["front"]["plans"]
    assert [num(r[8]) for r in rows] == [q["firmware"]["instructions"] for q in plans]
    assert [num(r[9]) for r in rows] == [q["firmware"]["measured_ram"] for q in plans]
    assert {r[6] for r in rows} == {"measured"}
    assert "Every block of every front plan was measured (--front)" in index.read_text()


def test_warm_front_generates_no_code(model, cache, front_run, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a warm search generated code")
    monkeypatch.setattr(measured_search, "generate_block", refuse)
    monkeypatch.setattr(measured_search, "plan_item", refuse)
    r = search_measured(model, BOARD, jobs=2, cache_dir=cache, progress=False, front=True)
    assert r.measurement["stats"]["measured"] == 0 and r.measurement["front"]["rounds"] == 1
    assert r.pareto == front_run.pareto
    assert r.measurement["front"]["plans"] == front_run.measurement["front"]["plans"]


def test_the_round_bound_is_said(model, cache, front_run, capsys):
    r = search_measured(model, BOARD, objective="latency", max_ram=10**6, jobs=2,
                        cache_dir=cache, progress=False, front=True, max_rounds=1)
    info = r.measurement["front"]
    if info["stable"]:
        pytest.skip("one round settled this front")
    assert info["rounds"] == 1 and info["estimated_points"] > 0
    assert sum(not p.measured for p in r.pareto) == info["estimated_points"]
    assert "the front is not stable after 1 rounds" in capsys.readouterr().err
    assert "--front stopped at its bound of 1 rounds" in r.format_table()
    built = {q["point"] for q in info["plans"] if q["firmware"]}
    assert built == {k for k, p in enumerate(r.pareto) if p.measured}


def test_a_batch_takes_shared_blocks_first():
    a, b, c, d, e = (Block(0, 0), Block(1, 1), Block(1, 2, BlockConfig((2, 2), "hcache")),
                     Block(2, 2), Block(0, 1, BlockConfig((1, 1), "stream2d")))
    front = [Plan((e, Block(2, 2)), 10, 90), Plan((a, c), 20, 80), Plan((a, b, d), 30, 70)]
    known = {d}
    assert refine.unsettled(front, known) == [e, a, c, b]
    assert refine.estimated_points(front, known) == 3
    assert refine.next_batch(front, known, 1) == [a]         # in two plans
    assert refine.next_batch(front, known, 2) == [a, e]      # then the plan with one left
    assert refine.next_batch(front, known | {a, b, c, e}, 8) == []


def test_the_estimate_learns_from_measured_blocks():
    from msfsim.fusion import exact
    from msfsim.search.estimate import BlockEstimates
    from msfsim.search.weights import EdgeWeights
    model = zoo.load("dscnn-kws")  # analytic figures only: nothing is measured here
    an = EdgeWeights(model, exact.block_cost)
    layers = {Block(i, i): (an.block_cost(Block(i, i)).act + 100, 7 * an.block_cost(
        Block(i, i)).macs + 1000) for i in range(len(model.layers))}
    fused = Block(1, 3, BlockConfig((1, 1), "stream2d"))
    est = BlockEstimates(model, layers, an)
    b1 = Block(1, 1)
    assert est(b1, an.block_cost(b1)) == layers[b1]      # a measured layer: its measurement
    base = sum(layers[Block(i, i)][1] for i in range(1, 4))
    macs = sum(an.block_cost(Block(i, i)).macs for i in range(1, 4))
    ram, ins = est(fused, an.block_cost(fused))
    assert ins == pytest.approx(base * an.block_cost(fused).macs / macs, rel=1e-6)
    # measured stream2d blocks 20 % slower than their layers teach the scheme's correction
    measured = {**layers, fused: (ram, int(1.2 * ins))}
    other = Block(2, 4, BlockConfig((1, 1), "stream2d"))
    plain = BlockEstimates(model, layers, an)(other, an.block_cost(other))[1]
    taught = BlockEstimates(model, measured, an)(other, an.block_cost(other))[1]
    assert plain < taught < 1.2 * plain
    assert ram == an.block_cost(fused).act + 100          # RAM: act + the measured offset


def test_front_goes_with_measured_costs():
    p = subprocess.run([sys.executable, "-m", "msfsim", "search", f"zoo:{MODEL}", "--platform",
                        BOARD, "--cost", "analytic", "--front"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2 and "--front" in p.stderr and "--cost measured" in p.stderr


def test_the_progress_bar_of_a_front_run_is_honest(model, cache, front_run, monkeypatch):
    """Warm: every firmware (blocks and whole plans) is counted once, announced up front."""
    from msfsim.measure import measurer
    from test_measured_search import _RecordingBar
    _RecordingBar.made = []
    monkeypatch.setattr(measurer, "_bar_class", lambda: _RecordingBar)
    r = search_measured(model, BOARD, jobs=2, cache_dir=cache, progress=True, front=True)
    (bar,) = _RecordingBar.made
    assert bar.closed and bar.n == bar.total == r.measurement["stats"]["cache_hits"] + \
        r.measurement["stats"]["identical"]
    assert next(t for t in bar.totals if t > 0) == bar.total
