"""`msfsim sweep`: models x boards as one batch with one cache and one progress bar, rows in
sweep.csv / sweep.json / index.html with a report each, resumable through the cache, a failing
case as a row. Two-layer ONNX nets keep the cold run short (every firmware is a full build)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from msfsim.measure import measurer
from msfsim.cli import main

from test_dask import tiny_net

BOARDS = ["stm32f746", "nucleo-f767zi"]


class FakeBar:
    """Stands in for tqdm: records the total over time and the updates."""
    made: list["FakeBar"] = []

    def __init__(self, total=None, disable=False, **kw):
        self._total, self.disable, self.kw, self.n, self.closed = total, disable, kw, 0, False
        self.totals: list[int] = []
        FakeBar.made.append(self)

    @property
    def total(self):
        return self._total

    @total.setter
    def total(self, v):
        self._total = v
        self.totals.append(v)

    def update(self, k=1):
        self.n += k
        assert self.n <= self._total, (self.n, self._total)  # never past its total

    def set_description(self, *a, **k):
        pass

    def set_postfix_str(self, *a, **k):
        pass

    def close(self):
        self.closed = True


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return [tiny_net(d / "tiny_a.onnx", 0), tiny_net(d / "tiny_b.onnx", 1)]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("sweep-cache")


def run_sweep(argv, capsys=None):
    mp = pytest.MonkeyPatch()
    FakeBar.made = []
    mp.setattr(measurer, "_bar_class", lambda: FakeBar)
    try:
        rc = main(["sweep", *map(str, argv)])
    finally:
        mp.undo()
    return rc, list(FakeBar.made)


@pytest.fixture(scope="module")
def first(models, cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep-out")
    rc, bars = run_sweep([*models, "--platform", ",".join(BOARDS), "--jobs", "2",
                          "--cache", cache, "--out", out])
    return rc, out, bars


def test_four_rows_in_csv_json_and_html(first, models):
    rc, out, _ = first
    assert rc == 0
    data = json.loads((out / "sweep.json").read_text())
    assert "partial" not in data and data["latency_is_estimate"] is True
    rows = data["rows"]
    assert [(r["model"], r["platform"]) for r in rows] == [(str(m), b) for m in models
                                                           for b in BOARDS]
    for r in rows:
        assert r["status"] == "ok" and r["fits"] is True and r["bit_exact"] is True, r
        assert r["instructions"] > 0 and r["measured_ram"] > 0 and r["blocks"]
        assert r["latency_ms_estimate"] > 0 and r["flash_bytes"] > 0
        assert r["vanilla_instructions"] > 0 and r["vanilla_ram"] > 0
        assert (out / r["report"]).is_file()
    with open(out / "sweep.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 4 and table[0]["instructions"] == str(rows[0]["instructions"])
    page = (out / "index.html").read_text()
    assert all(f'href="{r["report"]}"' in page for r in rows)
    assert data["stats"]["measured"] > 0 and data["stats"]["cache_hits"] == 0


def test_one_bar_that_ends_at_its_total(first):
    _, _, bars = first
    assert len(bars) == 1  # one bar for every model, board and round
    bar = bars[0]
    assert bar.n == bar.total and bar.closed
    assert bar.totals[0] > 0  # the whole sweep is projected before its first firmware


def test_rerun_measures_nothing(first, models, cache, tmp_path):
    _, out, _ = first
    rc, bars = run_sweep([*models, "--platform", ",".join(BOARDS), "--cache", cache,
                          "--out", tmp_path])
    assert rc == 0
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert data["stats"]["measured"] == 0 and data["stats"]["cache_hits"] > 0
    before = json.loads((out / "sweep.json").read_text())["rows"]
    keys = ("blocks", "instructions", "measured_ram", "measured_act", "flash_bytes")
    assert [[r[k] for k in keys] for r in data["rows"]] == [[r[k] for k in keys] for r in before]
    bar = bars[0]
    assert bar.n == bar.total  # the memo of the first run was the projection: it is exact


def test_failed_cases_are_rows_not_a_crash(first, models, cache, tmp_path):
    """A model that cannot be imported and a RAM budget nothing fits (the blocks are served by
    the cache of the first sweep) are rows with their error; the sweep exits 0."""
    rc, bars = run_sweep([models[0], tmp_path / "missing.onnx", "--platform", BOARDS[0],
                          "--objective", "latency", "--max-ram", "100", "--cache", cache,
                          "--out", tmp_path])
    assert rc == 0
    rows = {Path(r["model"]).name: r
            for r in json.loads((tmp_path / "sweep.json").read_text())["rows"]}
    assert len(rows) == 2
    assert rows["missing.onnx"]["status"] == "error" and "no such file" in rows["missing.onnx"]["error"]
    assert rows["tiny_a.onnx"]["status"] == "no plan" and rows["tiny_a.onnx"]["fits"] is False
    assert rows["tiny_a.onnx"]["constraint"] == "max-ram 100"
    assert bars[0].n == bars[0].total


def test_bad_arguments_exit_2_before_any_work(models, tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    for argv, needle in ((["--platform", "stm32f746", "--out", f], "a-file"),
                         (["--platform", "nope", "--out", tmp_path / "o"], "nope"),
                         (["--platform", "stm32f746", "--objective", "latency", "--out",
                           tmp_path / "o"], "--max-ram"),
                         (["--platform", "stm32f746", "--max-overhead", "0", "--out",
                           tmp_path / "o"], "0")):
        r = subprocess.run([sys.executable, "-m", "msfsim", "sweep", str(models[0]),
                            *map(str, argv)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, (argv, r.stderr)
        err = r.stderr.strip()
        assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
