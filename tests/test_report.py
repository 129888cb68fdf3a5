"""The HTML report: files, valid images, and tables that carry exactly the search's numbers."""
from __future__ import annotations

import copy
import json
import re
import struct
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from msfsim import plots, report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_PNG_BYTES = 10_000      # a rendered plot with text, not an empty canvas
MIN_PNG_SIDE = 600          # pixels

HAS_MATPLOTLIB = plots.matplotlib() is not None
needs_matplotlib = pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib (extra plots)")


class _Tables(HTMLParser):
    """Cell texts of every <table id=...>: {id: [row: [cell text]]} (header rows excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = dict(attrs).get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables(index: Path) -> dict[str, list[list[str]]]:
    p = _Tables()
    p.feed(index.read_text())
    return p.tables


def num(text: str) -> int | float | None:
    if text == "—":
        return None
    text = text.replace(",", "")
    return float(text) if "." in text else int(text)


def check_png(path: Path) -> None:
    raw = path.read_bytes()
    assert raw[:8] == PNG_SIGNATURE and raw[12:16] == b"IHDR"
    width, height = struct.unpack(">II", raw[16:24])
    assert width >= MIN_PNG_SIDE and height >= MIN_PNG_SIDE // 2
    assert len(raw) >= MIN_PNG_BYTES


def inline_svgs(html_text: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", html_text, flags=re.S)


# ------------------------------------------------------------------------------ fixtures

def hand_written() -> dict:
    """A schema-2 object of a measured search: 3 blocks over 6 layers, one baseline not
    expressible, a front of two measured points (one the chosen plan's) and one estimate."""
    def blk(first, last, tile, scheme, act, act_io, measured, macs, instr, measured_act):
        return {"layers": [first, last], "tile": tile, "scheme": scheme,
                "ram": {"act": act, "act_io": act_io, "measured": measured,
                        "measured_act": measured_act},
                "macs": macs, "instructions": instr}

    def plan(blocks, latency=None, flash=None):
        return {"blocks": blocks,
                "peak_ram": {k: max(b["ram"][k] for b in blocks)
                             for k in ("act", "act_io", "measured", "measured_act")},
                "macs": sum(b["macs"] for b in blocks),
                "instructions": sum(b["instructions"] for b in blocks),
                "block_instructions": sum(b["instructions"] for b in blocks),
                "latency_ms": latency, "flash_bytes": flash}

    def ratios(p, van):  # F in MACs, the instructions ratio of the blocks measured alone
        p["overhead"] = p["macs"] / van["macs"]
        p["instructions_ratio"] = p["block_instructions"] / van["block_instructions"]
        return p

    chosen = plan([blk(0, 2, [2, 4], "hcache", 3_000, 5_000, 6_100, 90_000, 400_000, 3_400),
                   blk(3, 4, [1, 1], "stream2d", 2_500, 2_500, 4_200, 40_000, 150_000, 2_900),
                   blk(5, 5, [1, 1], "layer", 600, 700, 1_900, 5_000, 20_000, 750)],
                  flash=12_345)
    vanilla = plan([blk(i, i, [1, 1], "layer", a, a + 10, a + 1_500, m, 4 * m, a + 400)
                    for i, (a, m) in enumerate([(9_000, 30_000), (12_000, 20_000),
                                                (8_000, 30_000), (5_000, 20_000),
                                                (4_000, 20_000), (600, 5_000)])])
    stream = plan([blk(0, 1, [1, 1], "stream2d", 4_000, 6_000, 5_500, 50_000, 210_000, 4_300)]
                  + copy.deepcopy(vanilla["blocks"][2:]))
    for p in (chosen, vanilla, stream):
        ratios(p, vanilla)

    def point(p, measured, chosen_point=False):
        return {"peak_ram_act": p["peak_ram"]["act"],
                "peak_ram_measured_act": p["peak_ram"]["measured_act"], "measured": measured,
                "macs": p["macs"], "overhead": p["overhead"],
                "instructions": p["block_instructions"],
                "instructions_ratio": p["instructions_ratio"], "chosen": chosen_point}

    estimate = copy.deepcopy(vanilla)  # a plan with fewer instructions, some blocks estimated
    estimate["peak_ram"] = {"act": 8_800, "act_io": 8_810, "measured": None,
                            "measured_act": 9_400}
    estimate["block_instructions"] = 480_000
    ratios(estimate, vanilla)
    return {"schema": 2, "model": "tiny-hand", "platform": "stm32f746", "objective": "ram",
            "cost": "measured", "cost_model": "exact", "backend": "unicorn",
            "compiler": "arm-none-eabi-gcc 12.2.1 -O2", "ram_convention": "measured_act",
            **chosen,
            "baselines": {"vanilla": vanilla, "mcunetv2": None, "streamnet": stream},
            "pareto": [point(chosen, True, True), point(stream, True),
                       point(estimate, False)]}


def without_network_io(data: dict) -> dict:
    """`data` with act_io == act everywhere: no network buffer inside any block."""
    data = copy.deepcopy(data)
    for s in [data] + [v for v in data["baselines"].values() if v]:
        for b in s["blocks"]:
            b["ram"]["act_io"] = b["ram"]["act"]
        s["peak_ram"]["act_io"] = s["peak_ram"]["act"]
    return data


def caption(page: str, fig_id: str) -> str:
    return re.search(rf'<figcaption id="{fig_id}">(.*?)</figcaption>', page, re.S)[1]


def svg_legend_peak(svg: str, convention: str) -> int:
    """The plan peak a RAM-per-block plot (matplotlib or fallback) states in its legend."""
    m = re.search(rf"plan peak \({re.escape(convention)}\):? ?([\d,]+) B", svg)
    assert m, f"no plan peak ({convention}) in the plot"
    return int(m[1].replace(",", ""))


@pytest.fixture(scope="module")
def searched():
    """(model, platform, result) of a real analytic search of a small zoo model."""
    api = pytest.importorskip("msfsim.search.api")
    from msfsim import platforms, zoo
    model = zoo.load("lenet5-r28")
    result = api.search_analytic(model, "stm32f746", max_overhead=2.0, cost_model="exact")
    return model, platforms.load("stm32f746"), result


@pytest.fixture(scope="module")
def search_report(searched, tmp_path_factory):
    model, platform, result = searched
    out = tmp_path_factory.mktemp("report") / "nested" / "dir"
    return report.write_report(model, platform, result, out), result


# ------------------------------------------------------------------------------ tests

def test_report_files_and_images(search_report):
    index, _ = search_report
    out = index.parent
    assert index.name == "index.html"
    names = {p.name for p in out.iterdir()}
    assert {"index.html", "result.json"} <= names
    assert not [n for n in names if n.startswith(".")], "temporary files left behind"
    if HAS_MATPLOTLIB:
        for name in ("ram_per_block", "pareto"):
            check_png(out / f"{name}.png")
            root = ET.parse(out / f"{name}.svg").getroot()
            assert root.tag.endswith("svg")
    page = index.read_text()
    svgs = inline_svgs(page)
    assert len(svgs) == (2 if HAS_MATPLOTLIB else 1)
    for svg in svgs:
        ET.fromstring(svg)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "two inline plots share an element id"


def test_report_tables_equal_json(search_report):
    index, result = search_report
    data = result.to_json()
    saved = json.loads((index.parent / "result.json").read_text())
    assert {k: v for k, v in saved.items() if k != "report_context"} == data
    assert saved["report_context"]["constraints"]["max_overhead"] == 2.0
    t = tables(index)
    summary = {row[0]: row[1] for row in t["summary"]}
    assert num(summary["peak RAM act (B)"]) == data["peak_ram"]["act"]
    assert num(summary["peak RAM act_io (B)"]) == data["peak_ram"]["act_io"]
    assert num(summary["peak RAM measured, whole-plan firmware (B)"]) is None
    assert num(summary["peak RAM measured act (B; blocks measured alone)"]) is None
    assert num(summary["MACs"]) == data["macs"]
    assert num(summary[report.F_TEXT]) == pytest.approx(data["overhead"], abs=5e-5)
    assert len(t["blocks"]) == len(data["blocks"])
    for row, b in zip(t["blocks"], data["blocks"]):
        assert num(row[6]) == b["ram"]["act"] and num(row[7]) == b["ram"]["act_io"]
        assert num(row[8]) is None and num(row[9]) is None
        assert num(row[10]) == b["macs"]
        assert row[4] == b["scheme"] and row[3] == "{}×{}".format(*b["tile"])
    rows = {row[0]: row for row in t["baselines"]}
    for name, base in data["baselines"].items():
        if base is None:
            assert "not expressible" in rows[name][1]
        else:
            assert num(rows[name][2]) == base["peak_ram"]["act"]
            assert num(rows[name][6]) == base["macs"]
            assert num(rows[name][7]) == pytest.approx(base["overhead"], abs=5e-5)
    assert [num(r[1]) for r in t["pareto"]] == [p["peak_ram_act"] for p in data["pareto"]]
    # an analytic front is neither measured nor an estimate of a measurement
    assert {r[6] for r in t["pareto"]} == {"analytic"}
    assert [r[7] for r in t["pareto"]].count("yes") == 1


def test_report_mentions_blocks_and_conventions(search_report):
    index, result = search_report
    page = index.read_text()
    for b in result.to_json()["blocks"]:
        assert report.block_label(b) in page
    for convention in ("act:", "act_io:", "measured:"):
        assert convention in page
    assert "RAM per block, act convention" in page      # the plot's axis label (inline SVG)
    assert "analytic costs" in page and "lenet5-r28" in page and "stm32f746" in page


def test_regenerated_from_saved_json_is_identical(search_report, tmp_path):
    index, _ = search_report
    saved = json.loads((index.parent / "result.json").read_text())
    again = report.write_report_json(saved, tmp_path)
    assert again.read_text() == index.read_text()


def test_measured_report_uses_measured_ram(tmp_path):
    from msfsim import platforms
    data = hand_written()
    plat = platforms.load("stm32f746")
    index = report.write_report_json(data, tmp_path, platform=plat)
    page = index.read_text()
    if HAS_MATPLOTLIB:
        assert "RAM per block, measured act convention" in page   # the plot's axis label
        assert "peak RAM, measured act convention" in page        # the trade-off plot's
    assert "here <b>measured act</b>" in page
    assert "backend unicorn" in page and "arm-none-eabi-gcc 12.2.1 -O2" in page
    t = tables(index)
    summary = {row[0]: row[1] for row in t["summary"]}
    assert t["summary"][0][0].startswith("peak RAM measured act")  # the compared convention first
    assert num(summary["peak RAM measured act (B; blocks measured alone)"]) == 3_400
    assert num(summary["peak RAM measured, whole-plan firmware (B)"]) == 6_100
    assert num(summary["flash (B)"]) == 12_345
    assert num(summary[report.F_TEXT]) == pytest.approx(135_000 / 125_000, abs=5e-5)
    assert num(summary[report.INSTR_RATIO_TEXT]) == pytest.approx(570_000 / 500_000, abs=5e-5)
    latency = next(v for k, v in summary.items() if k.startswith("latency estimate"))
    assert num(latency) == pytest.approx(570_000 / plat.clock_hz * 1e3, abs=5e-4)
    assert [num(r[8]) for r in t["blocks"]] == [3_400, 2_900, 750]
    assert [num(r[9]) for r in t["blocks"]] == [6_100, 4_200, 1_900]
    assert [r[-1] for r in t["blocks"]] == ["100%", "85%", "22%"]
    rows = {row[0]: row for row in t["baselines"]}
    assert "not expressible" in rows["mcunetv2"][1]
    assert num(rows["vanilla"][4]) == 12_400 and num(rows["vanilla"][5]) == 13_500
    assert num(rows["streamnet"][9]) == 210_000 + 4 * 75_000
    assert num(rows["streamnet"][7]) == pytest.approx(1.0)  # same MACs as layer by layer


def test_fallback_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "matplotlib", lambda: None)
    data = hand_written()
    index = report.write_report_json(data, tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"index.html", "result.json"}
    page = index.read_text()
    assert "need matplotlib" in page
    (svg,) = inline_svgs(page)
    root = ET.fromstring(svg)
    bars = [e for e in root.iter() if e.tag.endswith("rect") and e.get("class") == "bar"]
    assert len(bars) == len(data["blocks"])
    heights = [float(e.get("height")) for e in bars]
    # Bar heights are proportional to the measured act of each block, as in matplotlib's plot.
    assert heights[1] / heights[0] == pytest.approx(2_900 / 3_400, rel=1e-2)
    assert "RAM per block, measured act convention" in svg
    for b in data["blocks"]:
        assert report.block_label(b) in page


def test_write_replaces_existing_report(tmp_path):
    data = hand_written()
    report.write_report_json(data, tmp_path)
    data["model"] = "tiny-hand-2"
    index = report.write_report_json(data, tmp_path)
    assert "tiny-hand-2" in index.read_text()
    assert json.loads((tmp_path / "result.json").read_text())["model"] == "tiny-hand-2"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@needs_matplotlib
def test_fallback_removes_images_of_an_earlier_report(tmp_path, monkeypatch):
    report.write_report_json(hand_written(), tmp_path)
    assert (tmp_path / "pareto.png").exists()
    monkeypatch.setattr(plots, "matplotlib", lambda: None)
    report.write_report_json(hand_written(), tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"index.html", "result.json"}


# ------------------------------------------------------------------------------ one story

@pytest.mark.parametrize("drawn_by", ["matplotlib", "fallback"])
def test_ram_plot_caption_matches_hatching(tmp_path, monkeypatch, drawn_by):
    """The caption names hatching exactly when the plot draws it, in both plot paths."""
    if drawn_by == "fallback":
        monkeypatch.setattr(plots, "matplotlib", lambda: None)
    elif not HAS_MATPLOTLIB:
        pytest.skip("matplotlib (extra plots)")
    for data, hatched in ((hand_written(), True), (without_network_io(hand_written()), False)):
        out = tmp_path / str(hatched)
        page = report.write_report_json(data, out).read_text()
        svg = inline_svgs(page)[0]        # the RAM-per-block plot
        drawn = "<pattern" in svg         # matplotlib and the fallback both hatch by a pattern
        text = caption(page, "ram-caption")
        assert drawn == hatched
        assert ("hatched" in text) == drawn
        if drawn_by == "fallback":
            assert bool(re.search(r'class="netio"', svg)) == drawn


@pytest.mark.parametrize("drawn_by", ["matplotlib", "fallback"])
def test_plot_peak_equals_summary_peak(tmp_path, monkeypatch, search_report, drawn_by):
    """The RAM-per-block plot's plan peak is the summary's figure in the same convention, in a
    measured and in an analytic report."""
    if drawn_by == "fallback":
        monkeypatch.setattr(plots, "matplotlib", lambda: None)
    elif not HAS_MATPLOTLIB:
        pytest.skip("matplotlib (extra plots)")
    _, analytic = search_report
    cases = [(hand_written(), "measured act",
              "peak RAM measured act (B; blocks measured alone)"),
             (analytic.to_json(), "act", "peak RAM act (B)")]
    for k, (data, conv, row) in enumerate(cases):
        index = report.write_report_json(data, tmp_path / str(k))
        page = index.read_text()
        summary = {r[0]: r[1] for r in tables(index)["summary"]}
        peak = svg_legend_peak(inline_svgs(page)[0], conv)
        assert peak == num(summary[row])
        key = "measured_act" if conv == "measured act" else "act"
        assert peak == max(b["ram"][key] for b in data["blocks"])


def test_front_points_say_measured_or_estimate(tmp_path):
    data = hand_written()
    index = report.write_report_json(data, tmp_path)
    t = tables(index)["pareto"]
    assert [r[6] for r in t] == ["measured", "measured", "estimate"]
    assert [num(r[0]) for r in t] == [p["peak_ram_measured_act"] for p in data["pareto"]]
    page = index.read_text()
    if HAS_MATPLOTLIB:
        pareto_svg = inline_svgs(page)[1]
        assert "Pareto front, estimate (1 plans)" in pareto_svg
        assert "Pareto front, measured (2 plans)" in pareto_svg
        assert "hollow markers and dashed stretches: estimates" in caption(page,
                                                                          "pareto-caption")
    # the chosen plan is drawn where its front point is, in the same convention
    conv, fkey, pkey = report.pareto_axes(data)
    assert conv == "measured_act" and fkey == "instructions"
    chosen = next(p for p in data["pareto"] if p["chosen"])
    assert report.pareto_point(data, conv, pkey) == (chosen["peak_ram_measured_act"],
                                                      chosen["instructions"])
    # and no baseline lies below the front in that convention
    for name, base in data["baselines"].items():
        if base is not None:
            x, y = report.pareto_point(base, conv, pkey)
            assert any(report.front_ram(p, conv) <= x and p[fkey] <= y for p in data["pareto"])


def test_schema_1_is_read_in_schema_2_terms():
    """A saved schema-1 measured result: its front RAM was measured act and its overhead an
    instructions ratio; F is recomputed from MACs."""
    old = hand_written()
    del old["schema"], old["ram_convention"]
    for s in [old] + [v for v in old["baselines"].values() if v]:
        for b in s["blocks"]:
            del b["ram"]["measured_act"]
        del s["peak_ram"]["measured_act"], s["block_instructions"]
        s["overhead"] = s.pop("instructions_ratio")
    for p in old["pareto"]:
        p["peak_ram_act"] = p.pop("peak_ram_measured_act")
        p["overhead"] = p.pop("instructions_ratio")
        del p["measured"], p["chosen"]
    new = report.upgrade(old)
    ref = hand_written()
    assert new["schema"] == 2 and new["ram_convention"] == "act"
    assert new["overhead"] == pytest.approx(ref["overhead"])
    assert new["instructions_ratio"] == pytest.approx(ref["instructions_ratio"])
    assert [p["peak_ram_measured_act"] for p in new["pareto"]] == \
        [p["peak_ram_measured_act"] for p in ref["pareto"]]
    assert all(p["peak_ram_act"] is None for p in new["pareto"])


def test_the_front_story_and_each_front_plan_as_one_firmware(tmp_path):
    """A --front result: the page says every front plan was measured and shows each plan's
    own firmware beside its point; estimated rows (without --front) are marked."""
    data = hand_written()
    for p in data["pareto"]:
        p["measured"] = True
    firmware = [{"status": "ok", "instructions": 1_000 + k, "measured_ram": 9_000 + k}
                for k in range(len(data["pareto"]))]
    data["measurement"] = {"front": {
        "complete": True, "stable": True, "rounds": 4, "max_rounds": 60,
        "plans": [{"point": k, "blocks": [], "firmware": f} for k, f in enumerate(firmware)]}}
    index = report.write_report_json(data, tmp_path)
    rows = tables(index)["pareto"]
    assert [num(r[8]) for r in rows] == [f["instructions"] for f in firmware]
    assert [num(r[9]) for r in rows] == [f["measured_ram"] for f in firmware]
    page = index.read_text()
    assert "stable after 4 rounds" in page and 'class="estimate"' not in page
    plain = hand_written()  # without --front: one estimate, marked
    page = report.write_report_json(plain, tmp_path / "plain").read_text()
    assert page.count('<tr class="estimate">') == 1
    assert "3 points (2 measured, 1 estimate)" in page
    assert len(tables(tmp_path / "plain" / "index.html")["pareto"][0]) == len(report.page.PARETO_HEADER)
