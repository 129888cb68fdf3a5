"""`msfsim run` and `msfsim measure`: one plan, host and emulator backends, bit-exact outputs,
and the command-line round trip with exit codes."""
import inspect
import json
import subprocess
import sys

import numpy as np
import pytest

from msfsim import MsfsimError, cli, refmodel, zoo
from msfsim.measure import measurement_input
from msfsim.pipeline import measure_plan
from msfsim.pipeline import run
from msfsim.search.api import search_analytic

BOARD = "stm32f746"


def msfsim(*args):
    return subprocess.run([sys.executable, "-m", "msfsim", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def resnet8_plan(tmp_path_factory):
    """An analytic min-RAM plan of a residual net (fused blocks with skips), as a plan file."""
    model = zoo.load("resnet8-r32")
    r = search_analytic(model, BOARD)
    assert any(b.block.config.scheme != "layer" for b in r.plan.blocks)
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    path.write_text(json.dumps(r.to_plan_json()))
    return model, path


@pytest.mark.parametrize("backend", ["host", "unicorn", "qemu"])
def test_run_plan_is_bit_exact(resnet8_plan, backend):
    model, path = resnet8_plan
    x = measurement_input(model, seed=11)
    y = run(model, BOARD, x, plan=path, backend=backend)
    assert y.dtype == np.int8 and y.shape == model.tensor(model.output).shape
    assert np.array_equal(y, refmodel.run(model, x))


def test_run_vanilla_on_riscv():
    model = zoo.load("dscnn-kws")
    x = measurement_input(model, seed=5)
    assert np.array_equal(run(model, "esp32c3", x, backend="unicorn"), refmodel.run(model, x))


def test_run_rejects_a_wrong_input():
    model = zoo.load("dscnn-kws")
    with pytest.raises(MsfsimError, match="int8"):
        run(model, BOARD, np.zeros(model.tensor(model.input).shape, np.float32))


def test_measure_plan_reports_one_firmware(resnet8_plan, tmp_path):
    model, path = resnet8_plan
    m = measure_plan(model, BOARD, plan=path, cache_dir=tmp_path)
    van = measure_plan(model, BOARD, vanilla=True, cache_dir=tmp_path)
    o = m.outcome
    assert o.ok and m.output_matches_reference and not o.cached
    assert o.measured_ram == o.arena_peak + o.stack_peak + o.static_ram
    assert o.arena_peak >= m.act_io
    assert m.latency_ms == pytest.approx(1e3 * o.instructions / 216e6)
    # the fused plan trades instructions for RAM against layer by layer
    assert m.act < van.act and o.instructions > van.outcome.instructions
    j = m.to_json()
    assert j["peak_ram"] == {"act": m.act, "act_io": m.act_io, "measured": o.measured_ram}
    assert j["measured"]["stack"] == o.stack_peak and j["flash_bytes"] == o.flash_bytes
    assert "act = block buffers" in j["convention"] and "measured" in m.format_table()
    again = measure_plan(model, BOARD, plan=path, cache_dir=tmp_path)
    assert again.outcome.cached and again.outcome.instructions == o.instructions



def test_cli_measure_round_trip(resnet8_plan, tmp_path):
    model, path = resnet8_plan
    r = msfsim("measure", "zoo:resnet8-r32", "--platform", BOARD, "--plan", path, "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["instructions"] > 0 and j["peak_ram"]["measured"] > j["peak_ram"]["act"]
    assert j["output_matches_reference"] is True
    r = msfsim("measure", "zoo:resnet8-r32", "--platform", BOARD, "--vanilla")
    assert r.returncode == 0 and "instructions" in r.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"blocks": [{"layers": [0, 1], "tile": [1, 1], "scheme": "layer"}]}')
    r = msfsim("measure", "zoo:resnet8-r32", "--platform", BOARD, "--plan", bad)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_cli_run_round_trip(resnet8_plan, tmp_path):
    model, path = resnet8_plan
    x = measurement_input(model, seed=3)
    np.save(tmp_path / "in.npy", x)
    for backend in ("host", "unicorn"):
        out = tmp_path / f"out-{backend}.npy"
        r = msfsim("run", "zoo:resnet8-r32", "--platform", BOARD, "--plan", path, "--backend",
                   backend, "--input", tmp_path / "in.npy", "--output", out)
        assert r.returncode == 0, r.stderr
        assert np.array_equal(np.load(out), refmodel.run(model, x))
    np.save(tmp_path / "f.npy", x.astype(np.float32))
    r = msfsim("run", "zoo:resnet8-r32", "--platform", BOARD, "--backend", "host",
               "--input", tmp_path / "f.npy", "--output", tmp_path / "o.npy")
    assert r.returncode == 2 and "int8" in r.stderr and "Traceback" not in r.stderr


def test_plan_of_another_model_is_refused(resnet8_plan, tmp_path):
    """A plan file names its model by a content hash of the IR: the same layer count with other
    weights is refused before anything is built (exit 2)."""
    model, path = resnet8_plan
    assert json.loads(path.read_text())["model_fingerprint"] == model.fingerprint()
    other = zoo.load("resnet8-r32")
    assert other.fingerprint() == model.fingerprint()      # deterministic
    data = json.loads(path.read_text())
    data["model_fingerprint"] = "0" * 16
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps(data))
    r = msfsim("measure", "zoo:resnet8-r32", "--platform", BOARD, "--plan", bad)
    assert r.returncode == 2 and "made for another model" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
