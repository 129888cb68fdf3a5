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

from msfsim import report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_PNG_BYTES = 10_000      # a rendered plot with text, not an empty canvas
MIN_PNG_SIDE = 600          # pixels

HAS_MATPLOTLIB = report._matplotlib() is not None
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
    """A §7 object of a measured search: 3 blocks over 6 layers, one baseline not expressible."""
    def blk(first, last, tile, scheme, act, act_io, measured, macs, instr):
        return {"layers": [first, last], "tile": tile, "scheme": scheme,
                "ram": {"act": act, "act_io": act_io, "measured": measured}, "macs": macs,
                "instructions": instr}

    def plan(blocks, overhead, latency=None, flash=None):
        return {"blocks": blocks,
                "peak_ram": {k: max(b["ram"][k] for b in blocks)
                             for k in ("act", "act_io", "measured")},
                "macs": sum(b["macs"] for b in blocks), "overhead": overhead,
                "instructions": sum(b["instructions"] for b in blocks),
                "latency_ms": latency, "flash_bytes": flash}

    chosen = plan([blk(0, 2, [2, 4], "hcache", 3_000, 5_000, 6_100, 90_000, 400_000),
                   blk(3, 4, [1, 1], "stream2d", 2_500, 2_500, 4_200, 40_000, 150_000),
                   blk(5, 5, [1, 1], "layer", 600, 700, 1_900, 5_000, 20_000)], 1.25,
                  flash=12_345)
    vanilla = plan([blk(i, i, [1, 1], "layer", a, a + 10, a + 1_500, m, 4 * m)
                    for i, (a, m) in enumerate([(9_000, 30_000), (12_000, 20_000),
                                                (8_000, 30_000), (5_000, 20_000),
                                                (4_000, 20_000), (600, 5_000)])], 1.0)
    stream = plan([blk(0, 1, [1, 1], "stream2d", 4_000, 6_000, 5_500, 50_000, 210_000)]
                  + copy.deepcopy(vanilla["blocks"][2:]), 1.0)
    return {"model": "tiny-hand", "platform": "stm32f746", "objective": "ram",
            "cost": "measured", "cost_model": "exact", "backend": "unicorn",
            "compiler": "arm-none-eabi-gcc 12.2.1 -O2", **chosen,
            "baselines": {"vanilla": vanilla, "mcunetv2": None, "streamnet": stream},
            "pareto": [{"peak_ram_act": 3_000, "macs": 135_000, "overhead": 1.25,
                        "instructions": 570_000},
                       {"peak_ram_act": 4_000, "macs": 125_000, "overhead": 1.0,
                        "instructions": 520_000}]}


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
    assert num(summary["peak RAM measured (B)"]) is None
    assert num(summary["MACs"]) == data["macs"]
    assert num(summary["overhead F (vs layer-by-layer)"]) == pytest.approx(data["overhead"],
                                                                            abs=5e-5)
    assert len(t["blocks"]) == len(data["blocks"])
    for row, b in zip(t["blocks"], data["blocks"]):
        assert num(row[6]) == b["ram"]["act"] and num(row[7]) == b["ram"]["act_io"]
        assert num(row[9]) == b["macs"]
        assert row[4] == b["scheme"] and row[3] == "{}×{}".format(*b["tile"])
    rows = {row[0]: row for row in t["baselines"]}
    for name, base in data["baselines"].items():
        if base is None:
            assert "not expressible" in rows[name][1]
        else:
            assert num(rows[name][2]) == base["peak_ram"]["act"]
            assert num(rows[name][5]) == base["macs"]
    assert [num(r[0]) for r in t["pareto"]] == [p["peak_ram_act"] for p in data["pareto"]]


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
        assert "RAM per block, measured convention" in page   # the plot's axis label
    assert "here <b>measured</b>" in page
    assert "backend unicorn" in page and "arm-none-eabi-gcc 12.2.1 -O2" in page
    t = tables(index)
    summary = {row[0]: row[1] for row in t["summary"]}
    assert num(summary["peak RAM measured (B)"]) == 6_100
    assert num(summary["flash (B)"]) == 12_345
    latency = next(v for k, v in summary.items() if k.startswith("latency estimate"))
    assert num(latency) == pytest.approx(570_000 / plat.clock_hz * 1e3, abs=5e-4)
    assert [num(r[8]) for r in t["blocks"]] == [6_100, 4_200, 1_900]
    assert [r[-1] for r in t["blocks"]] == ["100%", "69%", "31%"]
    rows = {row[0]: row for row in t["baselines"]}
    assert "not expressible" in rows["mcunetv2"][1]
    assert num(rows["vanilla"][4]) == 13_500 and num(rows["streamnet"][7]) == 210_000 + 4 * 75_000


def test_fallback_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "_matplotlib", lambda: None)
    data = hand_written()
    index = report.write_report_json(data, tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"index.html", "result.json"}
    page = index.read_text()
    assert "need matplotlib" in page
    (svg,) = inline_svgs(page)
    root = ET.fromstring(svg)
    bars = [e for e in root.iter() if e.tag.endswith("rect")]
    assert len(bars) == len(data["blocks"])
    heights = [float(e.get("height")) for e in bars]
    # Bar heights are proportional to the measured RAM of each block.
    assert heights[1] / heights[0] == pytest.approx(4_200 / 6_100, rel=1e-2)
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
    monkeypatch.setattr(report, "_matplotlib", lambda: None)
    report.write_report_json(hand_written(), tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"index.html", "result.json"}
