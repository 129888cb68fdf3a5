"""Measurement on a real Dask cluster (no mocks): a LocalCluster of worker processes on loopback,
and `dask scheduler` / `dask worker` subprocesses driven through the CLI.

The model is a two-layer ONNX net (few candidate blocks: each firmware costs a full build, and
two cores are shared). The cluster workers get the local run's cache root as their own
(MSFSIM_CACHE): their ELF build cache then holds the local run's builds, so they compile little
and emulate every job; the client's measurement cache (SQLite) is a fresh directory each time, so
every row of a cluster run comes back from a worker.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

distributed = pytest.importorskip("distributed")

from msfsim import pipeline  # noqa: E402
from msfsim.measure.dask_executor import DaskExecutor  # noqa: E402
from msfsim.measure.session import MeasureSession  # noqa: E402

BOARD = "stm32f746"
VENV_BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def tiny_net(path: Path, seed: int = 0) -> Path:
    """conv3x3 + ReLU -> conv1x1 on a 2x8x8 input: a handful of candidate blocks."""
    rng = np.random.default_rng(seed)

    def init(name, a):
        return numpy_helper.from_array(np.asarray(a, np.float32), name)
    inits = [init("w1", rng.normal(0, .3, (4, 2, 3, 3))), init("b1", rng.normal(0, .1, 4)),
             init("w2", rng.normal(0, .3, (4, 4, 1, 1)))]
    nodes = [helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
             helper.make_node("Conv", ["r1", "w2"], ["out"], name="pw")]
    g = helper.make_graph(nodes, f"tiny{seed}",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2, 8, 8])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 8, 8])],
                          inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path


def summary(r) -> dict:
    """What must not depend on where the measurements ran."""
    return {"plan": [b.block.key for b in r.plan.blocks], "instructions": r.plan.instructions,
            "measured_ram": r.plan.measured, "flash": r.plan.flash_bytes,
            "baselines": {k: (v.instructions, v.measured) for k, v in r.baselines.items() if v},
            "pareto": [(p.peak_ram_measured_act, p.instructions, p.measured) for p in r.pareto]}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return tiny_net(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="module")
def model(model_file):
    plat = pipeline.load_platform(BOARD)
    return pipeline.deployed(pipeline.load_model(str(model_file)), plat)


@pytest.fixture(scope="module")
def local_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("local-cache")


@pytest.fixture(scope="module")
def local(model, local_cache):
    """The reference: the same search on the local process pool."""
    return pipeline.search_measured(model, BOARD, jobs=2, cache_dir=local_cache, progress=False)


class _env:
    """Set environment variables for worker processes started meanwhile."""

    def __init__(self, **kv):
        self.kv, self.old = kv, {}

    def __enter__(self):
        for k, v in self.kv.items():
            self.old[k] = os.environ.get(k)
            os.environ[k] = v

    def __exit__(self, *exc):
        for k, v in self.old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def cluster(local, local_cache):
    with _env(MSFSIM_CACHE=str(local_cache)):
        lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=":0")
    client = distributed.Client(lc, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        lc.close()


def test_cluster_search_equals_local(model, local, cluster, tmp_path):
    ex = DaskExecutor.on_client(cluster)
    with MeasureSession(tmp_path / "client-cache", executor=ex, progress=False) as s:
        r = pipeline.search_measured(model, BOARD, session=s)
        assert s.remote
    assert summary(r) == summary(local)
    st = r.measurement["stats"]
    assert st["measured"] > 0 and st["cache_hits"] == 0  # every row came from a worker
    # the client owns the cache: it stored the rows; a rerun here measures nothing
    r2 = pipeline.search_measured(model, BOARD, jobs=1, cache_dir=tmp_path / "client-cache",
                                  progress=False)
    assert r2.measurement["stats"]["measured"] == 0 and summary(r2) == summary(local)


def test_worker_killed_mid_run_is_survived(model, local, tmp_path):
    """A fresh cluster whose workers build cold (a few seconds per job): one worker is killed
    once the first row is back; the scheduler reruns its job elsewhere, the result is the same."""
    with _env(MSFSIM_CACHE=str(tmp_path / "worker-cache")):
        lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=":0")
    client = distributed.Client(lc, set_as_default=False)
    killed: list[int] = []
    try:
        pids = sorted(client.run(os.getpid).values())
        ex = DaskExecutor.on_client(client)
        with MeasureSession(tmp_path / "client-cache", executor=ex, progress=False) as s:
            def killer():
                deadline = time.monotonic() + 120
                while s.stats.measured < 1 and time.monotonic() < deadline:
                    time.sleep(0.05)
                if s.stats.measured >= 1:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
            t = threading.Thread(target=killer, daemon=True)
            t.start()
            r = pipeline.search_measured(model, BOARD, session=s)
            t.join(5)
        assert killed, "the run ended before a worker could be killed"
        assert summary(r) == summary(local)
        assert not r.measurement["dropped"]
    finally:
        client.close()
        lc.close()


# ----------------------------------------------------------------------------- subprocesses

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dask scheduler exited: {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("dask scheduler did not listen")


def stop(procs: list[subprocess.Popen]) -> None:
    """End the scheduler and workers we started, by pid (their process groups)."""
    for p in reversed(procs):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
    for p in reversed(procs):
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


def start_cluster(tmp: Path, worker_env: dict) -> tuple[str, list[subprocess.Popen]]:
    port = free_port()
    procs: list[subprocess.Popen] = []
    log = open(tmp / "dask.log", "ab")
    try:
        procs.append(subprocess.Popen(
            [str(VENV_BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--no-dashboard"], stdout=log, stderr=log, start_new_session=True))
        wait_port(port, procs[0])
        addr = f"tcp://127.0.0.1:{port}"
        procs.append(subprocess.Popen(
            [str(VENV_BIN / "dask"), "worker", addr, "--nthreads", "1", "--nworkers", "1",
             "--host", "127.0.0.1", "--no-dashboard"], stdout=log, stderr=log, env=worker_env,
            start_new_session=True, cwd=tmp))
    except BaseException:
        stop(procs)
        raise
    return addr, procs


def msfsim(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "msfsim", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


def one_line(r) -> str:
    err = r.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_cli_search_on_scheduler_and_worker_subprocesses(model_file, local, local_cache, tmp_path):
    addr, procs = start_cluster(tmp_path, {**os.environ, "MSFSIM_CACHE": str(local_cache)})
    try:
        import json
        r = msfsim("search", model_file, "--platform", BOARD, "--scheduler", addr,
                   "--cache", tmp_path / "c", "--json")
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)
        keys = [f"L{b['layers'][0]}-{b['layers'][1]}:{b['scheme']}:{b['tile'][0]}x{b['tile'][1]}"
                for b in got["blocks"]]
        assert keys == summary(local)["plan"]
        assert got["instructions"] == local.plan.instructions
        assert got["peak_ram"]["measured"] == local.plan.measured
        assert got["measurement"]["stats"]["measured"] > 0
        # MSFSIM_SCHEDULER does the same; the cache now serves everything
        r = msfsim("measure", model_file, "--platform", BOARD, "--vanilla", "--cache",
                   tmp_path / "c", "--json", env={**os.environ, "MSFSIM_SCHEDULER": addr})
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["output_matches_reference"] is True
    finally:
        stop(procs)
    assert all(p.poll() is not None for p in procs)


def test_worker_without_compiler_is_exit_4_naming_it(model_file, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PATH"}
    env.update(PATH=str(VENV_BIN), MSFSIM_CACHE=str(tmp_path / "wc"))  # no cross-gcc on PATH
    addr, procs = start_cluster(tmp_path, env)
    try:
        r = msfsim("measure", model_file, "--platform", BOARD, "--vanilla", "--scheduler", addr,
                   "--cache", tmp_path / "c")
        assert r.returncode == 4, r.stderr
        err = one_line(r)
        assert "worker tcp://127.0.0.1:" in err and socket.gethostname() in err
        assert "arm-none-eabi" in err and "install" in err
    finally:
        stop(procs)


def test_without_dask_scheduler_is_exit_4_with_install_hint(model_file, tmp_path):
    code = ("import sys; sys.modules['distributed'] = None; sys.modules['dask'] = None; "
            "from msfsim.cli import main; sys.exit(main(sys.argv[1:]))")
    for argv in (["search", str(model_file), "--platform", BOARD, "--scheduler",
                  "tcp://127.0.0.1:9"],
                 ["sweep", str(model_file), "--platform", BOARD, "--out", str(tmp_path / "o"),
                  "--scheduler", "tcp://127.0.0.1:9"]):
        r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                           timeout=60, cwd=ROOT)
        assert r.returncode == 4, r.stderr
        assert "pip install 'msfsim[dask]'" in one_line(r)


def test_unreachable_or_malformed_scheduler_is_one_line_in_seconds(model_file, tmp_path):
    t0 = time.monotonic()
    r = msfsim("measure", model_file, "--platform", BOARD, "--vanilla", "--scheduler",
               f"tcp://127.0.0.1:{free_port()}", "--cache", tmp_path / "c")
    assert r.returncode == 4 and "cannot reach the Dask scheduler" in one_line(r)
    assert time.monotonic() - t0 < 40
    r = msfsim("search", model_file, "--platform", BOARD, "--scheduler", "localhost")
    assert r.returncode == 2 and "tcp://HOST:PORT" in one_line(r)


def test_cancel_all_cancels_the_cluster_futures(model, cluster, tmp_path):
    """What Ctrl-C does (Measurer.abort -> executor.cancel_all): the run's futures are
    cancelled on the cluster, which keeps running for the next run."""
    from msfsim.measure import Measurer
    from msfsim.pipeline import plan_blocks, plan_item
    ex = DaskExecutor.on_client(cluster)
    with MeasureSession(tmp_path / "c", executor=ex, progress=False) as s:
        m = Measurer(BOARD, session=s)
        blocks = plan_blocks(model, None)
        rng = np.random.default_rng(7)
        shape = model.tensor(model.input).shape
        futs = []
        for _ in range(4):  # inputs no build cache holds: each job compiles for seconds
            x = rng.integers(-128, 128, size=shape, dtype=np.int8)
            it = plan_item(model, blocks, x, None, "plan")
            futs.append(ex.submit(m._job(m.key(it.code), it)))
        ex.cancel_all()
        assert all(f.cancelled() for f in futs)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        left = cluster.run_on_scheduler(
            lambda dask_scheduler: [k for k in dask_scheduler.tasks if "msfsim-measure" in str(k)])
        if not left:
            break
        time.sleep(0.2)
    assert not left
    assert cluster.scheduler_info()["workers"]  # the cluster stays up
