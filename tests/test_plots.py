"""The shared plot helper (msfsim.plots): one chart, drawn by matplotlib and by the plain SVG
fallback, shows the same points, labels and axis titles, and estimates are hollow in both."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from msfsim import plots, report
from test_report import hand_written

needs_matplotlib = pytest.mark.skipif(plots.matplotlib() is None,
                                      reason="matplotlib (extra plots)")


def synthetic() -> plots.Chart:
    """Every feature of a Chart: a staircase, filled, hollow and legend-only series, another
    marker, both kinds of rule, point labels and a log x axis."""
    return plots.Chart(
        "A title\nits second line", "peak RAM (bytes, log scale)", "instructions",
        [plots.Series("measured (2 plans)", [(1_000, 900_000), (30_000, 400_000)], "#4e79a7"),
         plots.Series("estimate (1 plan)", [(8_000, 500_000)], "#4e79a7", size=5, hollow=True),
         plots.Series("vanilla: not plotted (no act for every block)", []),
         plots.Series("chosen", [(1_000, 900_000)], "#f28e2b", "*", 17, edge="black", zorder=5),
         plots.Series("streamnet", [(12_000, 450_000)], "#8c564b", "D", 8, zorder=4)],
        step=[(1_000, 900_000), (8_000, 500_000), (30_000, 400_000), (34_500, 400_000)],
        rules=[plots.Rule("y", 800_000, "--max-overhead 2 × layer-by-layer instructions"),
               plots.Rule("x", 20_000, "max RAM 20,000 B (act)", style="-.")],
        labels=[plots.Label("streamnet", 12_000, 450_000, "#8c564b")],
        xlog=True, ybytes=True)


def pareto() -> plots.Chart:
    """The report's trade-off chart of a measured search with an estimated front point."""
    data = report.upgrade(hand_written())
    data["report_context"] = {"constraints": {"max_overhead": 1.5, "max_ram": 5_000}}
    return report.pareto_chart(data)


CHARTS = {"synthetic": synthetic, "pareto": pareto}


def legend_labels(chart: plots.Chart) -> list[str]:
    return [s.label for s in chart.series if s.label] + [r.label for r in chart.rules]


def drawn_by_matplotlib(chart: plots.Chart):
    """(axes, svg text) of `chart` drawn by matplotlib."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(8.5, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    plots.draw(ax, chart)
    _, svg = plots.save(plots.matplotlib(), fig)
    return ax, svg.decode()


def drawn_as_svg(chart: plots.Chart) -> ET.Element:
    return ET.fromstring(plots.chart_svg(chart))


def svg_series(root: ET.Element) -> dict[str, list[ET.Element]]:
    return {g.get("data-label"): [e for e in g if e.get("class") == "point"]
            for g in root.iter() if g.get("class") == "series"}


def texts(root: ET.Element, cls: str | None = None) -> list[str]:
    return [e.text for e in root.iter() if e.tag.endswith("text")
            and (cls is None or e.get("class") == cls)]


@needs_matplotlib
@pytest.mark.parametrize("name", CHARTS)
def test_matplotlib_and_svg_draw_the_same_chart(name):
    chart = CHARTS[name]()
    ax, mpl_svg = drawn_by_matplotlib(chart)
    root = drawn_as_svg(chart)
    # the same axis titles and title
    assert ax.get_xlabel() == chart.xlabel == texts(root, "xlabel")[0]
    assert ax.get_ylabel() == chart.ylabel == texts(root, "ylabel")[0]
    assert ax.get_title() == chart.title
    for line in chart.title.split("\n"):
        assert line in texts(root)
    # the same legend, in the same order, and the text is in matplotlib's SVG too
    labels = legend_labels(chart)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels
    assert texts(root, "legend") == labels
    for text in labels + [chart.xlabel, chart.ylabel]:
        assert text.replace("&", "&amp;") in mpl_svg
    # the same points under each label
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    svg = svg_series(root)
    for s in chart.series:
        ln = lines[s.label]
        mpl_points = list(zip(ln.get_xdata(), ln.get_ydata()))
        svg_points = [(float(e.get("data-x")), float(e.get("data-y"))) for e in svg[s.label]]
        assert mpl_points == svg_points == [(float(x), float(y)) for x, y in s.points]
    # the point labels, and the log axis where asked
    assert [a.get_text() for a in ax.texts] == [lb.text for lb in chart.labels]
    assert texts(root, "label") == [lb.text for lb in chart.labels]
    assert ax.get_xscale() == ("log" if chart.xlog else "linear")


@needs_matplotlib
@pytest.mark.parametrize("name", CHARTS)
def test_estimates_are_hollow_in_both(name):
    chart = CHARTS[name]()
    hollow = {s.label for s in chart.series if s.hollow}
    assert hollow and any(s.points and not s.hollow for s in chart.series)
    ax, mpl_svg = drawn_by_matplotlib(chart)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    svg = svg_series(drawn_as_svg(chart))
    for s in chart.series:
        if not s.points:
            continue
        face = lines[s.label].get_markerfacecolor()
        assert (face == "white") == (s.label in hollow)
        fills = {e.get("fill") for e in svg[s.label]}
        assert fills == ({"#ffffff"} if s.label in hollow else {s.colour})
        assert {e.get("stroke") for e in svg[s.label]} == {s.edge or s.colour}
    assert "fill: #ffffff" in mpl_svg   # the hollow marker as matplotlib writes it


def test_pareto_chart_marks_the_estimate():
    chart = pareto()
    (est,) = [s for s in chart.series if s.hollow]
    assert est.label == "Pareto front, estimate (1 plans)" and len(est.points) == 1
    assert [s.label for s in chart.series if s.points and not s.hollow][0] == \
        "Pareto front, measured (2 plans)"


def test_svg_without_matplotlib(monkeypatch):
    """The fallback needs no matplotlib: the chart is valid SVG with every point in its series."""
    monkeypatch.setattr(plots, "matplotlib", lambda: None)
    chart = synthetic()
    root = drawn_as_svg(chart)
    assert root.tag.endswith("svg")
    series = svg_series(root)
    assert {k: len(v) for k, v in series.items()} == {s.label: len(s.points)
                                                      for s in chart.series}
    # a point further right and higher in the data is further right and higher on the page
    (a, b) = series["measured (2 plans)"]
    assert float(a.get("cx")) < float(b.get("cx")) and float(a.get("cy")) < float(b.get("cy"))


def test_bars_svg():
    bars = [plots.Bar("a", 1_000, "#111111", "a: 1,000 B"),
            plots.Bar("b", 500, "#222222", "b: 500 B", extra=250, extra_tip="+ 250 B"),
            plots.Bar("c", None, "#333333", "c: does not fit")]
    root = ET.fromstring(plots.bars_svg("RAM (bytes)", bars,
                                        [plots.Level("peak", 1_000, "#000000")], ["a note"]))
    rects = [e for e in root.iter() if e.get("class") == "bar"]
    assert len(rects) == 2
    h = [float(e.get("height")) for e in rects]
    assert h[1] / h[0] == pytest.approx(0.5, rel=1e-2)
    assert [e.get("class") for e in root.iter() if e.get("class") in ("netio", "nobar")] == \
        ["netio", "nobar"]
    assert any(e.tag.endswith("pattern") for e in root.iter())
    assert {"RAM (bytes)", "peak: 1,000 B", "a note"} <= set(texts(root))


def test_wide_range():
    assert plots.wide_range([100, 900]) and not plots.wide_range([100, 700])
    assert not plots.wide_range([0, None, 5]) and not plots.wide_range([])
    assert plots.wide_range([100, 200], top=1_000)


def test_the_staircase_is_dashed_where_estimates_set_it():
    """The front's staircase is solid through measured points and dashed from an estimate:
    its level and the riser up to it, in both renderers."""
    chart = pareto()  # two measured points, then an estimate
    assert chart.step_dashed == [False, False, True, True]
    runs = plots.step_segments(chart)
    assert [d for _, d in runs] == [False, True]
    (x0, y0), (x1, y1), (x2, y2), (x3, _) = chart.step
    assert runs[0][0] == [(x0, y0), (x1, y0), (x1, y1), (x2, y1)]
    assert runs[1][0] == [(x2, y1), (x2, y2), (x3, y2)]
    lines = [e for e in drawn_as_svg(chart).iter()
             if (e.get("class") or "").startswith("step")]
    assert [e.get("class") for e in lines] == ["step", "step estimate"]
    assert lines[1].get("stroke-dasharray") and not lines[0].get("stroke-dasharray")
    if plots.matplotlib() is not None:
        ax, _ = drawn_by_matplotlib(chart)
        steps = [ln for ln in ax.get_lines() if ln.get_label().startswith("_")]
        assert [ln.get_linestyle() for ln in steps] == ["-", "--"]
