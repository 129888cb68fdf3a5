"""`msfsim reproduce msf-cnn` on a reduced set: LeNet-5 (fits the 16 KB HiFive1) and the
published MCUNet 320 KB proxy (no plan of it fits), so measured and does-not-fit rows, the
published comparison, the progress bar, the partial outputs of an interrupted run and the cache
are exercised in a minute or two."""
import contextlib
import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from msfsim import MsfsimError, platforms, plots
from msfsim.measure import measurer
from msfsim import reproduce as rp
from msfsim.reproduce import outputs, plans, run
from msfsim.cli import main

MODELS = ["lenet5-r28", "mcunet-320kb-r176"]
BOARD = "hifive1b"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("measurements")


class FakeBar:
    """Stands in for tqdm: records the total, the updates and whether it was shown."""
    made: list["FakeBar"] = []

    def __init__(self, total=None, disable=False, **kw):
        self.total, self.disable, self.kw, self.n, self.closed = total, disable, kw, 0, False
        FakeBar.made.append(self)

    def update(self, k=1):
        self.n += k

    def set_description(self, *a, **k):
        pass

    def set_postfix_str(self, *a, **k):
        pass

    def close(self):
        self.closed = True


def _run(out: Path, cache: Path, models=MODELS, mp: pytest.MonkeyPatch | None = None):
    """reproduce() with the bar shown (to fake bars), recording every atomic write and a
    snapshot of msf-cnn.json each time it is written."""
    written: list[Path] = []
    snapshots: list[dict] = []
    real = outputs.write_atomic

    def recording(path, data, *a, **k):
        written.append(Path(path))
        if Path(path).name == "msf-cnn.json":
            snapshots.append(json.loads(data))
        return real(path, data, *a, **k)

    stdout = io.StringIO()
    own = mp is None
    mp = mp or pytest.MonkeyPatch()
    FakeBar.made = []
    mp.setattr(outputs, "write_atomic", recording)
    mp.setattr(run, "_bar_class", lambda: FakeBar)
    mp.setattr(measurer, "_bar_class", lambda: FakeBar)
    try:
        with contextlib.redirect_stdout(stdout):
            paths = rp.reproduce("msf-cnn", [BOARD], out, models=models, cache_dir=cache,
                                 progress=True)
    finally:
        if own:
            mp.undo()
    return paths, written, stdout.getvalue(), snapshots, list(FakeBar.made)


@pytest.fixture(scope="module")
def cold_run(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("repro")
    paths, written, stdout, snaps, bars = _run(out, cache)
    return SimpleNamespace(out=out, paths=paths, written=written, stdout=stdout,
                           data=json.loads((out / "msf-cnn.json").read_text()),
                           snapshots=snaps, bars=bars)


@pytest.fixture(scope="module")
def cold(cold_run):
    c = cold_run
    return c.out, c.paths, c.written, c.stdout, c.data


def test_files_written_atomically(cold):
    out, paths, written, _, _ = cold
    names = {p.name for p in paths}
    assert {"msf-cnn.md", "msf-cnn.json"} <= names
    exts = ("png", "svg") if plots.matplotlib() else ("svg",)
    for stem in ("ram_lenet5-r28", "ram_mcunet-320kb-r176", "ram_vs_instructions"):
        assert {f"{stem}.{e}" for e in exts} <= names
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    # every output went through the atomic writer, and no temporary file is left behind
    assert set(paths) == set(written)
    assert sorted(p.name for p in out.iterdir()) == sorted(names)


def test_every_row_is_measured_or_says_why_not(cold):
    *_, data = cold
    rows = data["rows"]
    assert {(r["model"], r["method"]) for r in rows} == {
        (m, k) for m in MODELS for k in rp.METHODS}
    assert all(r["board"] == BOARD for r in rows)
    clock = platforms.load(BOARD).clock_hz
    sram = platforms.load(BOARD).sram.size
    for r in rows:
        if r["model"] == "lenet5-r28":  # 2-4 KB plans: every one fits the 16 KB board
            m = r["measured"]
            assert r["status"] == "measured", r
            assert m["bit_exact"] is True
            assert m["instructions"] > r["analytic"]["macs"]
            assert m["ram"] == m["arena"] + m["stack"] + m["static"] <= sram
            assert m["arena"] >= r["analytic"]["act_io"]
            assert m["latency_ms_estimate"] == pytest.approx(1e3 * m["instructions"] / clock)
            assert m["flash_bytes"] > 0
        else:  # the MCUNet proxy's smallest plan needs over 40 KB
            assert r["status"] == "does not fit" and r["measured"] is None
            assert "SRAM" in r["reason"] and ("overflowed" in r["reason"]
                                              or "16,384 B" in r["reason"])
    van = next(r for r in rows if r["model"] == "lenet5-r28" and r["method"] == "vanilla")
    assert van["measured"]["instructions_ratio"] == 1.0
    # msf-CNN's plan is analysed under both models; its own matches the published minimum
    msf = next(r for r in rows if r["model"] == "mcunet-320kb-r176" and r["method"] == "msf-cnn")
    assert msf["analytic"]["msfcnn"]["act"] == rp.PUBLISHED["mcunet-320kb-r176"].msfcnn_min_act
    assert msf["analytic"]["act"] > 0 and msf["analytic"]["macs"] > 0
    assert msf["blocks"] and all(":hcache:1x1" in b or ":layer:" in b for b in msf["blocks"])


def test_published_figures_are_labelled_and_compared(cold):
    out, _, _, stdout, data = cold
    assert data["published"]["mbv2-w0.35-r144"]["source"] == "published"
    assert data["published"]["mbv2-w0.35-r144"]["msfcnn_min_act"] == 7887
    comp = {c["quantity"]: c for c in data["comparison"]["mcunet-320kb-r176"]}
    assert comp["msf-CNN minimum peak RAM, analytic (B)"]["ratio"] == pytest.approx(1.0)
    assert comp["msf-CNN overhead F at that minimum"]["ratio"] == pytest.approx(1.0, abs=0.01)
    assert comp["layer-by-layer peak RAM, analytic (B)"]["ours"] == 309_760
    # no STM32F767 in this run: no latency figure, and no ratio pretending otherwise
    lat = comp["msf-CNN minimum-RAM plan latency on STM32F767 (ms)"]
    assert lat["ours"] is None and lat["ratio"] is None and "not in this run" in lat["ours_from"]
    assert "lenet5-r28" not in data["comparison"]  # no published figures for it
    md = (out / "msf-cnn.md").read_text()
    assert "## Published figures (literature values, not measured here)" in md
    assert "7,887" in md and "19,329.9" in md
    assert "does not fit: " in md and "bit-exact" in md
    assert "Memory convention" in md and "arena high-water + stack high-water" in md
    assert data["board_info"][BOARD]["compiler"] in md and "unicorn" in md
    # stdout: a short table, one line per row
    assert stdout.count("| lenet5-r28 | hifive1b |") == 5
    assert stdout.count("| does not fit: ") == 5


def test_second_run_is_served_by_the_cache(cold, cache, tmp_path):
    *_, first = cold
    _run(tmp_path, cache, models=MODELS[:1])
    second = json.loads((tmp_path / "msf-cnn.json").read_text())
    info = second["board_info"][BOARD]
    assert info["whole_plans"]["measured"] == 0
    assert all(s.get("measured", 0) == 0 for s in info["searches"].values())
    assert all(r["measured"]["cached"] for r in second["rows"] if r["measured"])

    def key(d):
        return [(r["model"], r["method"], r["status"], r["measured"] and
                 {k: v for k, v in r["measured"].items() if k != "cached"}) for r in d["rows"]]
    assert key(second) == [k for k in key(first) if k[0] == MODELS[0]]


def test_fallback_plots_without_matplotlib(cold, tmp_path, monkeypatch):
    *_, data = cold
    monkeypatch.setattr(plots, "matplotlib", lambda: None)
    paths = rp.write_outputs(dict(data), tmp_path)
    assert not any(p.suffix == ".png" for p in paths)
    svg = (tmp_path / "ram_lenet5-r28.svg").read_text()
    assert svg.startswith("<svg") and "vanilla @ hifive1b" in svg
    assert svg.count('class="bar"') == 5                          # every plan measured
    nofit = (tmp_path / "ram_mcunet-320kb-r176.svg").read_text()
    assert 'class="bar"' not in nofit and nofit.count('class="nobar"') == 5
    scatter = (tmp_path / "ram_vs_instructions.svg").read_text()  # the shared plain-SVG chart
    assert scatter.count('class="point"') == sum(1 for r in data["rows"] if r["measured"])
    assert "measured RAM (bytes)" in scatter and "instructions (measured, whole plan)" in scatter
    assert "ram_vs_instructions.svg" in (tmp_path / "msf-cnn.md").read_text()


def test_instructions_ratio_is_not_called_f(cold):
    """F is the MACs ratio everywhere in msfsim; the measured instructions ratio has its own name."""
    out, *_, data = cold
    md = (out / "msf-cnn.md").read_text()
    assert "measured F" not in md and "| x instr vs layer-by-layer |" in md
    for r in data["rows"]:
        if r["measured"]:
            assert "overhead" not in r["measured"] and r["measured"]["instructions_ratio"] > 0
            assert r["analytic"]["overhead"] > 0   # F: MACs / layer-by-layer MACs


def test_unknown_backend_lists_the_backends(tmp_path):
    from msfsim.sim import backend_names
    with pytest.raises(MsfsimError, match="unknown backend 'nope'") as exc:
        rp.reproduce("msf-cnn", ["hifive1b"], tmp_path / "x", models=["lenet5-r28"],
                     backend="nope")
    assert all(name in str(exc.value) for name in backend_names())
    assert not (tmp_path / "x").exists()


def test_published_figures_name_their_source():
    from msfsim.reproduce import published
    assert "arXiv:2505.11483" in published.SOURCE
    assert all(v["source"] == "published" for v in published.published_json().values())


def test_board_without_backend_is_skipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run, "_unavailable", lambda plat, backend: "no emulator here (test)")
    paths = rp.reproduce("msf-cnn", ["esp32c3"], tmp_path, models=["lenet5-r28"],
                         progress=False)
    data = json.loads((tmp_path / "msf-cnn.json").read_text())
    assert data["rows"] == []
    assert data["board_info"]["esp32c3"] == {"skipped": "no emulator here (test)"}
    assert "esp32c3: skipped — no emulator here (test)" in (tmp_path / "msf-cnn.md").read_text()
    assert [p.name for p in paths] == ["msf-cnn.md", "msf-cnn.json"]


def test_bad_input_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["reproduce", "msf-cnn", "--platform", "stm32f746", "--platform", "nope",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown platform 'nope'" in err and "Traceback" not in err
    assert not out.exists()
    with pytest.raises(MsfsimError, match="unknown zoo model"):
        rp.reproduce("msf-cnn", ["hifive1b"], out, models=["nope"])
    with pytest.raises(MsfsimError, match="unknown reproduction"):
        rp.reproduce("tinyengine", None, out)


def test_one_bar_over_the_rows(cold_run):
    data = cold_run.data
    outer, *inner = cold_run.bars
    # reproduce's own bar: one step per row (models x boards x plans), shown, complete, closed
    assert outer.kw["unit"] == "row" and outer.disable is False
    assert outer.total == len(data["rows"]) == len(MODELS) * 1 * len(rp.METHODS)
    assert outer.n == outer.total and outer.closed
    # the searches and whole-plan measurers inside it draw no bar of their own
    assert inner and all(b.disable for b in inner)


def test_rows_are_written_as_they_complete(cold_run):
    data, snaps = cold_run.data, cold_run.snapshots
    partial = [s for s in snaps if "partial" in s]
    # after each model: the rows so far, marked partial; the final file is not marked
    assert [s["partial"] for s in partial] == [{"rows": 5, "of": 10}, {"rows": 10, "of": 10}]
    assert snaps[-1] == data and "partial" not in data
    assert partial[0]["rows"] == data["rows"][:5]
    assert {r["model"] for r in partial[0]["rows"]} == {MODELS[0]}


def test_interrupted_run_leaves_its_rows_and_a_rerun_completes(cold, cache, tmp_path, capsys):
    *_, first = cold
    real = plans.msfsim_plan

    def interrupt_second_model(prep, *a, **k):
        if prep.model.name == MODELS[1]:
            raise KeyboardInterrupt
        return real(prep, *a, **k)

    mp = pytest.MonkeyPatch()
    mp.setattr(plans, "msfsim_plan", interrupt_second_model)
    try:
        with pytest.raises(KeyboardInterrupt):
            _run(tmp_path, cache, mp=mp)
    finally:
        mp.undo()
    data = json.loads((tmp_path / "msf-cnn.json").read_text())
    assert data["partial"] == {"rows": 5, "of": 10}

    def key(rows):
        return [(r["model"], r["method"], r["status"], r["blocks"], r["measured"] and
                 {k: v for k, v in r["measured"].items() if k != "cached"}) for r in rows]
    assert key(data["rows"]) == key(first["rows"][:5])
    md = (tmp_path / "msf-cnn.md").read_text()
    assert "**Partial: 5 of 10 rows.**" in md and "| vanilla |" in md
    err = capsys.readouterr().err
    assert "interrupted: 5 of 10 rows are in" in err and "rerun" in err
    # the rerun completes the same table, the measured rows served by the cache
    _run(tmp_path, cache)
    done = json.loads((tmp_path / "msf-cnn.json").read_text())
    assert "partial" not in done and key(done["rows"]) == key(first["rows"])
    assert all(r["measured"]["cached"] for r in done["rows"] if r["measured"])
    assert "Partial" not in (tmp_path / "msf-cnn.md").read_text()
