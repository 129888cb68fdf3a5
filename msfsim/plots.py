"""Plot helpers shared by the search report (`msfsim.report`) and `msfsim reproduce`.

One place finds matplotlib (extra `plots`), renders a figure to PNG and SVG bytes, formats byte
axes and decides when a range needs a log axis. Without matplotlib, both fall back to the
hand-made SVG charts here:

- `Chart`, a declarative chart of points (one legend entry per `Series`, hollow for
  estimates), an optional staircase (dashed where it runs through estimates), reference lines
  (`Rule`) and point labels (`Label`).
  `draw(ax, chart)` draws it with matplotlib, `chart_svg(chart)` without: the same points,
  labels, axis titles and hollow markers in both.
- `bars_svg`: a bar chart of labelled values (`Bar`), optionally hatched on top, with levels
  (`Level`) and notes beside it: the simplified chart shown when matplotlib is missing.
"""
from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

LOG_SCALE_RATIO = 8     # a y (or x) range wider than this is drawn on a log axis
PNG_DPI = 150


# ------------------------------------------------------------------------------ matplotlib

def matplotlib() -> Any:
    """The matplotlib module, or None when it is not installed (extra `plots`)."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        return None
    return matplotlib


def render(draw: Callable[[Any], None], figsize: tuple[float, float]) -> tuple[bytes, bytes]:
    """(png, svg) of a new figure of `figsize` inches that `draw(fig)` filled; needs
    matplotlib (see `matplotlib()`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    draw(fig)
    return save(matplotlib(), fig)


def save(mpl: Any, fig: Any) -> tuple[bytes, bytes]:
    png, svg = io.BytesIO(), io.BytesIO()
    # Text stays text in the SVG (no per-glyph defs) and ids are stable across runs.
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "msfsim"}):
        fig.savefig(png, format="png", dpi=PNG_DPI, metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None})
    return png.getvalue(), svg.getvalue()


def bytes_axis(axis: Any, log: bool) -> None:
    """Tick labels as whole numbers with thousands separators (1-2-5 ticks on a log axis)."""
    from matplotlib.ticker import FuncFormatter, LogLocator
    if log:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def wide_range(values: Sequence[float | None], top: float | None = None) -> bool:
    """Whether the positive `values` (up to `top` when given) span more than LOG_SCALE_RATIO:
    such a range is drawn on a log axis."""
    v = [x for x in values if x and x > 0]
    return bool(v) and (max(v) if top is None else top) / min(v) > LOG_SCALE_RATIO


def inline_svg(svg: str, prefix: str) -> str:
    """An SVG document as an inline element; ids are prefixed so two plots cannot clash."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}-{m[1]}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m[1]})", svg)
    svg = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m[1]}"', svg)
    # Scale with the page instead of the fixed point size matplotlib writes.
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="plot"', svg,
                  count=1)


# ------------------------------------------------------------------------------ Chart

@dataclass
class Series:
    """Markers under one legend entry; without points, a legend entry only (what is not
    drawn, and why)."""
    label: str | None
    points: list[tuple[float, float]]
    colour: str = "#333333"
    marker: str = "o"        # matplotlib marker: o s D ^ v * P x
    size: float = 6.0        # marker diameter, points
    hollow: bool = False     # an estimate: white inside, never drawn like a measurement
    edge: str | None = None  # marker edge colour (default: `colour`)
    zorder: float = 3
    tips: list[str] = field(default_factory=list)  # per point (SVG tooltips)


@dataclass
class Rule:
    """A reference line across the plot: vertical at x = value (`axis` "x") or horizontal."""
    axis: str
    value: float
    label: str
    colour: str = "#e15759"
    style: str = "--"        # matplotlib linestyle: "--" or "-."


@dataclass
class Label:
    """Text beside a point, `dy` points above it (below when negative)."""
    text: str
    x: float
    y: float
    colour: str
    dy: float = 10


@dataclass
class Chart:
    """Points on x/y axes; `step` (post-step staircase through its points) is drawn under them,
    dashed from each point `step_dashed` flags (an estimate) to the next: its level and the
    riser up to it."""
    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    step: list[tuple[float, float]] = field(default_factory=list)
    step_colour: str = "#4e79a7"
    step_dashed: list[bool] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    xlog: bool = False
    ylog: bool = False
    xbytes: bool = True      # tick labels as whole numbers with thousands separators
    ybytes: bool = False
    legend: str = "best"     # matplotlib legend location


def step_segments(chart: Chart) -> list[tuple[list[tuple[float, float]], bool]]:
    """The staircase as runs of (points, dashed): the level of point k (up to the next point's
    x) is point k's, the riser from it to point k + 1 is point k + 1's."""
    pts, dashed = chart.step, chart.step_dashed
    runs: list[tuple[list[tuple[float, float]], bool]] = []
    for k in range(len(pts) - 1):
        (x0, y0), (x1, y1) = pts[k], pts[k + 1]
        d0 = k < len(dashed) and dashed[k]
        d1 = k + 1 < len(dashed) and dashed[k + 1]
        for seg, d in (([(x0, y0), (x1, y0)], d0), ([(x1, y0), (x1, y1)], d1)):
            if seg[0] == seg[1]:
                continue
            if runs and runs[-1][1] == d and runs[-1][0][-1] == seg[0]:
                runs[-1][0].append(seg[1])
            else:
                runs.append((list(seg), d))
    return runs


def draw(ax: Any, chart: Chart) -> None:
    """`chart` on a matplotlib Axes."""
    for pts, dashed in step_segments(chart):
        ax.plot([x for x, _ in pts], [y for _, y in pts], color=chart.step_colour,
                linewidth=1.4, linestyle="--" if dashed else "-", zorder=2)
    for s in chart.series:
        if not s.points:
            ax.plot([], [], linestyle="none", label=s.label)
            continue
        ax.plot([x for x, _ in s.points], [y for _, y in s.points], linestyle="none",
                marker=s.marker, color=s.colour, markersize=s.size, zorder=s.zorder,
                markerfacecolor="white" if s.hollow else s.colour,
                markeredgecolor=s.edge or s.colour, label=s.label)
    for r in chart.rules:
        line = ax.axvline if r.axis == "x" else ax.axhline
        line(r.value, color=r.colour, linestyle=r.style, linewidth=1, label=r.label)
    for log, name in ((chart.xlog, "x"), (chart.ylog, "y")):
        if log:
            getattr(ax, f"set_{name}scale")("log")
    if chart.xbytes:
        bytes_axis(ax.xaxis, chart.xlog)
    ax.set_xlabel(chart.xlabel)
    ax.set_ylabel(chart.ylabel)
    if chart.ybytes:
        bytes_axis(ax.yaxis, chart.ylog)
    ax.grid(alpha=0.3, which="major")
    ax.margins(x=0.06, y=0.08)
    ax.autoscale_view()
    to_axes = ax.transData + ax.transAxes.inverted()
    for lb in chart.labels:
        # Labels point inwards so that points near the right edge keep theirs inside.
        inward = to_axes.transform((lb.x, lb.y))[0] > 0.75
        ax.annotate(lb.text, (lb.x, lb.y), xytext=(-10 if inward else 10, lb.dy), fontsize=9,
                    textcoords="offset points", color=lb.colour,
                    ha="right" if inward else "left")
    ax.legend(fontsize=8, loc=chart.legend, framealpha=0.92)
    ax.set_title(chart.title, fontsize=11)


# ------------------------------------------------------------------------------ plain SVG

def esc(text: Any) -> str:
    return html.escape(str(text))


def svg_open(w: int, h: int, plot_class: bool = True) -> str:
    cls = ' class="plot"' if plot_class else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg"{cls} viewBox="0 0 {w} {h}" '
            f'font-family="sans-serif" font-size="10">')


def _fmt_tick(v: float, whole: bool) -> str:
    return f"{v:,.0f}" if whole else f"{round(v, 9):g}"


class _Scale:
    """Data to pixels along one axis, linear or log10, with the range padded by `margin`."""

    def __init__(self, values: list[float], log: bool, p0: float, p1: float,
                 margin: float = 0.06) -> None:
        v = [math.log10(x) for x in values if x > 0] if log else list(values)
        lo, hi = (min(v), max(v)) if v else (0.0, 1.0)
        pad = (hi - lo) * margin or (0.3 if log else abs(hi) * 0.1 or 1.0)
        self.lo, self.hi, self.log, self.p0, self.p1 = lo - pad, hi + pad, log, p0, p1

    def __call__(self, x: float) -> float:
        t = math.log10(x) if self.log else x
        return self.p0 + (self.p1 - self.p0) * (t - self.lo) / (self.hi - self.lo)

    def ticks(self) -> list[float]:
        if self.log:
            decades = range(math.floor(self.lo), math.ceil(self.hi) + 1)
            subs = (1, 2, 5) if self.hi - self.lo < 3 else (1,)
            out = [s * 10.0 ** d for d in decades for s in subs]
        else:
            raw = (self.hi - self.lo) / 6
            mag = 10 ** math.floor(math.log10(raw))
            step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
            out = [k * step for k in range(math.ceil(self.lo / step),
                                           math.floor(self.hi / step) + 1)]
        return [t for t in out if self.lo <= (math.log10(t) if self.log else t) <= self.hi]


def _marker(marker: str, cx: float, cy: float, r: float, attrs: str, inner: str = "",
            cls: str = "point") -> str:
    """One marker as an SVG element of class `cls`; `attrs` carries its paint and data."""
    if marker == "o":
        return (f'<circle class="{cls}" cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" {attrs}>'
                f'{inner}</circle>')
    shape = _SHAPES.get(marker, _SHAPES["*"])
    pts = " ".join(f"{cx + r * dx:.1f},{cy + r * dy:.1f}" for dx, dy in shape)
    return f'<polygon class="{cls}" points="{pts}" {attrs}>{inner}</polygon>'


_DASH = {"--": "6,3", "-.": "6,3,1,3", ":": "1,3"}  # matplotlib linestyle: SVG dashes
_SHAPES = {  # unit outlines of the markers other than "o", y downwards
    "s": [(-1, -1), (1, -1), (1, 1), (-1, 1)],
    "D": [(0, -1.3), (1.1, 0), (0, 1.3), (-1.1, 0)],
    "^": [(0, -1.2), (1.1, 0.9), (-1.1, 0.9)],
    "v": [(0, 1.2), (1.1, -0.9), (-1.1, -0.9)],
    "P": [(-.35, -1), (.35, -1), (.35, -.35), (1, -.35), (1, .35), (.35, .35), (.35, 1),
          (-.35, 1), (-.35, .35), (-1, .35), (-1, -.35), (-.35, -.35)],
    "x": [(-1, -1), (0, -.3), (1, -1), (.3, 0), (1, 1), (0, .3), (-1, 1), (-.3, 0)],
    "*": [(math.sin(k * math.pi / 5) * (1.3 if k % 2 == 0 else 0.55),
           -math.cos(k * math.pi / 5) * (1.3 if k % 2 == 0 else 0.55)) for k in range(10)],
}


def chart_svg(chart: Chart, h: int = 420) -> str:
    """`chart` as a plain SVG document (no matplotlib): points of each series in a
    `<g class="series" data-label>` with their data in `data-x` / `data-y`; the legend at the
    right, as wide as its longest entry."""
    titles = chart.title.split("\n")
    entries = [s.label for s in chart.series if s.label] + [r.label for r in chart.rules]
    x0, x1 = 80, 530
    w = x1 + max(230, 40 + round(5.3 * max(map(len, entries), default=0)))
    y0, y1 = 18 + 14 * len(titles), h - 46
    xs = [x for s in chart.series for x, _ in s.points] + [x for x, _ in chart.step]
    ys = [y for s in chart.series for _, y in s.points] + [y for _, y in chart.step]
    xs += [r.value for r in chart.rules if r.axis == "x"]
    ys += [r.value for r in chart.rules if r.axis == "y"]
    sx, sy = _Scale(xs, chart.xlog, x0, x1), _Scale(ys, chart.ylog, y1, y0)
    parts = [svg_open(w, h)]
    parts += [f'<text x="{x0}" y="{14 * (k + 1)}" font-size="12">{esc(t)}</text>'
              for k, t in enumerate(titles)]
    parts.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" '
                 f'stroke="#333"/>')
    for t in sx.ticks():
        parts.append(f'<line x1="{sx(t):.1f}" y1="{y0}" x2="{sx(t):.1f}" y2="{y1}" '
                     f'stroke="#ddd"/><text x="{sx(t):.1f}" y="{y1 + 13}" '
                     f'text-anchor="middle">{_fmt_tick(t, chart.xbytes)}</text>')
    for t in sy.ticks():
        parts.append(f'<line x1="{x0}" y1="{sy(t):.1f}" x2="{x1}" y2="{sy(t):.1f}" '
                     f'stroke="#ddd"/><text x="{x0 - 4}" y="{sy(t) + 3:.1f}" '
                     f'text-anchor="end">{_fmt_tick(t, chart.ybytes)}</text>')
    parts += [f'<text class="xlabel" x="{(x0 + x1) / 2:.1f}" y="{h - 12}" '
              f'text-anchor="middle">{esc(chart.xlabel)}</text>',
              f'<text class="ylabel" transform="translate(14,{(y0 + y1) / 2:.1f}) rotate(-90)" '
              f'text-anchor="middle">{esc(chart.ylabel)}</text>']
    for pts, dashed in step_segments(chart):
        line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        dash = ' stroke-dasharray="6,3"' if dashed else ""
        parts.append(f'<polyline class="{"step estimate" if dashed else "step"}" '
                     f'points="{line}" fill="none" stroke="{chart.step_colour}" '
                     f'stroke-width="1.4"{dash}/>')
    for r in chart.rules:
        dash = _DASH.get(r.style, "6,3")
        ends = ((sx(r.value), y0, sx(r.value), y1) if r.axis == "x"
                else (x0, sy(r.value), x1, sy(r.value)))
        parts.append('<line class="rule" x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" '
                     .format(*ends) + f'stroke="{r.colour}" stroke-dasharray="{dash}"/>')
    for s in sorted(chart.series, key=lambda s: s.zorder):  # stable: as given at equal zorder
        paint = (f'fill="{"#ffffff" if s.hollow else s.colour}" stroke="{s.edge or s.colour}" '
                 f'stroke-width="1"')
        parts.append(f'<g class="series" data-label="{esc(s.label or "")}">')
        for j, (x, y) in enumerate(s.points):
            tip = f"<title>{esc(s.tips[j])}</title>" if j < len(s.tips) else ""
            parts.append(_marker(s.marker, sx(x), sy(y), max(2.0, 0.55 * s.size),
                                 f'{paint} data-x="{float(x)!r}" data-y="{float(y)!r}"', tip))
        parts.append("</g>")
    for lb in chart.labels:
        inward = (sx(lb.x) - x0) / (x1 - x0) > 0.75
        parts.append(f'<text class="label" x="{sx(lb.x) + (-8 if inward else 8):.1f}" '
                     f'y="{sy(lb.y) - lb.dy:.1f}" fill="{lb.colour}" font-size="9" '
                     f'text-anchor="{"end" if inward else "start"}">{esc(lb.text)}</text>')
    ly = y0 + 4
    for s in chart.series:  # the legend, in the order given (as matplotlib's)
        if s.label is None:
            continue
        ly += 14
        if s.points:
            parts.append(_marker(s.marker, x1 + 16, ly - 3, 4,
                                 f'fill="{"#ffffff" if s.hollow else s.colour}" '
                                 f'stroke="{s.edge or s.colour}"', cls="key"))
        parts.append(f'<text class="legend" x="{x1 + 26}" y="{ly}">{esc(s.label)}</text>')
    for r in chart.rules:
        ly += 14
        parts.append(f'<line x1="{x1 + 8}" y1="{ly - 3}" x2="{x1 + 22}" y2="{ly - 3}" '
                     f'stroke="{r.colour}" stroke-dasharray="{_DASH.get(r.style, "6,3")}"/>'
                     f'<text class="legend" x="{x1 + 26}" y="{ly}">{esc(r.label)}</text>')
    return "\n".join(parts + ["</svg>"])


# ------------------------------------------------------------------------------ bars

@dataclass
class Bar:
    """One bar: `value` (None: no bar, its label is drawn red and `tip` says why), `extra`
    stacked on top of it, hatched."""
    label: str
    value: int | None
    colour: str
    tip: str
    extra: int = 0
    extra_tip: str = ""


@dataclass
class Level:
    """A horizontal line across the bars, named beside them."""
    label: str
    value: int
    colour: str


def bars_svg(title: str, bars: Sequence[Bar], levels: Sequence[Level] = (),
             notes: Sequence[str] = ()) -> str:
    """Plain SVG bar chart (no matplotlib): one bar per item, labels below, y-axis labels at
    0, half and the top; levels (the first solid, the others dashed) and notes at the right."""
    w, h, left, bottom, top = 760, 360, 70, 110, 20
    heights = [lv.value for lv in levels] + [(b.value or 0) + b.extra for b in bars]
    ymax = (max(heights, default=0) or 1) * 1.08
    bw = (w - left - 180) / max(1, len(bars))

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - v / ymax)

    parts = [svg_open(w, h)]
    if any(b.extra for b in bars):  # the hatch of the extra on top
        parts.append('<defs><pattern id="netio" width="6" height="6" '
                     'patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" '
                     'y1="0" x2="0" y2="6" stroke="#555" stroke-width="1"/></pattern></defs>')
    parts += [f'<text x="{left}" y="12" font-size="12">{esc(title)}</text>',
              f'<line x1="{left}" y1="{y(0)}" x2="{w - 180}" y2="{y(0)}" stroke="#333"/>']
    for frac in (0.0, 0.5, 1.0) if max(heights, default=0) > 0 else (0.0,):  # y-axis labels
        parts.append(f'<text x="{left - 4}" y="{y(frac * ymax) + 3:.1f}" text-anchor="end">'
                     f'{frac * ymax:,.0f}</text>')
    for k, b in enumerate(bars):
        x = left + k * bw
        if b.value is not None:
            parts.append(f'<rect class="bar" x="{x + 1:.1f}" y="{y(b.value):.1f}" '
                         f'width="{max(bw - 2, 1):.1f}" height="{y(0) - y(b.value):.1f}" '
                         f'fill="{b.colour}"><title>{esc(b.tip)}</title></rect>')
        else:
            parts.append(f'<text class="nobar" x="{x + bw / 2:.1f}" y="{y(0) - 3:.1f}" '
                         f'text-anchor="middle" fill="#e15759">×<title>{esc(b.tip)}</title>'
                         f'</text>')
        if b.extra:
            v = b.value or 0
            parts.append(f'<rect class="netio" x="{x + 1:.1f}" y="{y(v + b.extra):.1f}" '
                         f'width="{max(bw - 2, 1):.1f}" height="{y(v) - y(v + b.extra):.1f}" '
                         f'fill="url(#netio)" stroke="#555" stroke-width="0.5">'
                         f'<title>{esc(b.extra_tip)}</title></rect>')
        fill = "" if b.value is not None else ' fill="#e15759"'
        parts.append(f'<text transform="translate({x + bw / 2:.1f},{y(0) + 6}) rotate(60)" '
                     f'font-size="9"{fill}>{esc(b.label)}</text>')
    for k, lv in enumerate(levels):
        parts.append(f'<line x1="{left}" y1="{y(lv.value):.1f}" x2="{w - 180}" '
                     f'y2="{y(lv.value):.1f}" stroke="{lv.colour}" '
                     f'stroke-dasharray="{"none" if k == 0 else "5,3"}"/>')
        parts.append(f'<text x="{w - 175}" y="{top + 14 * (k + 1)}" fill="{lv.colour}">'
                     f'{esc(lv.label)}: {lv.value:,} B</text>')
    for j, note in enumerate(notes):
        parts.append(f'<text x="{w - 175}" y="{top + 14 * (len(levels) + j + 1)}" '
                     f'fill="#555">{esc(note)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
