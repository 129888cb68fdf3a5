"""HTML report of a search: summary, block and baseline tables, RAM-per-block and Pareto plots.

Input is the DESIGN §7 JSON object, so a report can be regenerated from a saved `--json`
output. `write_report` adds a `report_context` entry (constraints, layer descriptions, board
sizes) taken from the live objects; `write_report_json` uses it when given no model or platform.

Output in `out_dir`: `index.html` (self-contained: inline CSS, plots as inline SVG),
`ram_per_block.{png,svg}`, `pareto.{png,svg}` and `result.json` (the data the page was made from).
The plots need matplotlib (extra `plots`); without it the page carries a small hand-made SVG
bar chart instead and no PNG is written.
"""
from __future__ import annotations

import html
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable

from . import __version__
from .fileio import write_atomic

BASELINES = ("vanilla", "mcunetv2", "streamnet")
SCHEME_COLOURS = {"layer": "#a6a6a6", "recompute": "#f28e2b", "hcache": "#4e79a7",
                  "stream2d": "#59a14f"}
BASELINE_STYLE = {"vanilla": ("#d62728", "o"), "mcunetv2": ("#9467bd", "s"),
                  "streamnet": ("#8c564b", "D")}
CONVENTIONS = {
    "act": "act: block buffers + block input + block output + live skip tensors; network input "
           "and output excluded (msf-CNN convention, comparable with published figures)",
    "act_io": "act_io: act with the network input and output buffers counted",
    "measured": "measured: arena high-water + stack high-water + static RAM of the runtime, as "
                "measured in the emulator (the figure that must fit the board)",
}
LOG_SCALE_RATIO = 8     # a y (or x) range wider than this is drawn on a log axis
PNG_DPI = 150
FALLBACK_NOTE = ("The PNG files and the full plots need matplotlib (pip install "
                 "'msfsim[plots]'); this page shows a simplified chart of RAM per block.")
PLOTS = ("ram_per_block", "pareto")

Json = dict[str, Any]


# ------------------------------------------------------------------------------ public API

def write_report(model: Any, platform: Any, result: Any, out_dir: str | os.PathLike) -> Path:
    """Report of a `SearchResult` (anything with `.to_json()`); returns the index.html path."""
    data = dict(result.to_json())
    data["report_context"] = context(model, platform, getattr(result, "constraints", None),
                                     getattr(result, "search_seconds", None))
    return write_report_json(data, out_dir)


def write_report_json(data: Json, out_dir: str | os.PathLike, model: Any = None,
                      platform: Any = None) -> Path:
    """Report from a §7 JSON dict; `model` / `platform` (IR model, board), when given, add
    layer and board details to (or replace those of) its `report_context`. Returns the
    index.html path."""
    data = dict(data)
    ctx = dict(data.get("report_context") or {})
    if model is not None or platform is not None:
        ctx.update({k: v for k, v in context(model, platform).items() if v})
    data["report_context"] = ctx
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = _figures(data)
    if figures is None:
        svgs = {"ram_per_block": _fallback_svg(data)}
        for name in PLOTS:  # images of an earlier report would no longer match the page
            for ext in ("png", "svg"):
                (out / f"{name}.{ext}").unlink(missing_ok=True)
    else:
        svgs = {}
        for name, (png, svg) in figures.items():
            _write_atomic(out / f"{name}.png", png)
            _write_atomic(out / f"{name}.svg", svg)
            svgs[name] = _inline_svg(svg.decode(), name)
    _write_atomic(out / "result.json", json.dumps(data, indent=1) + "\n")
    index = out / "index.html"
    _write_atomic(index, render_html(data, svgs, have_png=figures is not None))
    return index


def context(model: Any = None, platform: Any = None, constraints: dict | None = None,
            search_seconds: float | None = None) -> Json:
    """What the page needs from the live objects, as plain JSON."""
    ctx: Json = {"constraints": dict(constraints or {}), "search_seconds": search_seconds}
    if model is not None:
        ctx["model_layers"] = [
            {"index": layer.index, "name": layer.name, "op": getattr(layer.op, "value", layer.op),
             "kernel": list(layer.kernel), "stride": list(layer.stride),
             "out_shape": list(model.out_shape(layer))} for layer in model.layers]
        ctx["model_macs"] = int(model.total_macs)
    if platform is not None and not isinstance(platform, str):
        sram, flash = getattr(platform, "sram", None), getattr(platform, "flash", None)
        ctx["platform"] = {"name": getattr(platform, "name", str(platform)),
                           "label": getattr(platform, "label", str(platform)),
                           "core": getattr(platform, "core", None),
                           "clock_hz": getattr(platform, "clock_hz", None),
                           "sram_bytes": getattr(sram, "size", None),
                           "flash_bytes": getattr(flash, "size", None)}
    elif isinstance(platform, str):
        ctx["platform"] = {"name": platform, "label": platform}
    return ctx


# ------------------------------------------------------------------------------ data helpers

def plot_convention(blocks: list[Json]) -> str:
    """`measured` when every block of the plan has a measured RAM, else `act` (DESIGN §3)."""
    return "measured" if blocks and all(b["ram"]["measured"] is not None for b in blocks) \
        else "act"


def block_ram(block: Json, convention: str) -> int:
    """A block's RAM under `convention`, falling back to act when it was not measured."""
    value = block["ram"].get(convention)
    return int(block["ram"]["act"] if value is None else value)


def block_label(block: Json, layers: list[Json] | None = None) -> str:
    """`L3–9 hcache 4×4` for a fused block; `L4 dense` (op when `layers` is given) for a
    layer-by-layer one."""
    first, last = block["layers"]
    span = f"L{first}" if first == last else f"L{first}–{last}"
    if block["scheme"] == "layer":
        if not layers:
            return span
        return f"{span} " + "+".join(str(layers[i]["op"]) for i in range(first, last + 1))
    h, w = block["tile"]
    return f"{span} {block['scheme']} {h}×{w}"


def n_layers(data: Json) -> int:
    layers = data.get("report_context", {}).get("model_layers")
    if layers:
        return len(layers)
    return max(b["layers"][1] for b in data["blocks"]) + 1


def latency_estimate(data: Json, summary: Json) -> tuple[float | None, str]:
    """(ms, how it was obtained): the reported figure, else instructions at one per cycle."""
    if summary.get("latency_ms") is not None:
        return float(summary["latency_ms"]), "latency estimate (ms)"
    clock = (data.get("report_context", {}).get("platform") or {}).get("clock_hz")
    if clock:
        how = f"latency estimate (ms; 1 instruction/cycle at {clock / 1e6:g} MHz)"
        if summary.get("instructions") is not None:
            return summary["instructions"] / clock * 1e3, how
        return None, how
    return None, "latency estimate (ms; needs measured instructions and a clock)"


def _baselines(data: Json) -> list[tuple[str, Json]]:
    return [(k, v) for k, v in (data.get("baselines") or {}).items() if v]


def _fmt_int(v: Any) -> str:
    return "—" if v is None else f"{int(v):,}"


def _fmt_float(v: Any, digits: int = 4) -> str:
    return "—" if v is None else f"{float(v):.{digits}f}"


def _title_bits(data: Json) -> tuple[str, str]:
    ctx = data.get("report_context", {})
    plat = (ctx.get("platform") or {}).get("label") or data["platform"]
    cons = ctx.get("constraints") or {}
    if data["objective"] == "ram":
        goal = "minimise peak RAM (P1)"
    else:
        goal = "minimise latency (P2)"
    limits = []
    if cons.get("max_overhead") is not None:
        limits.append(f"overhead F ≤ {cons['max_overhead']:g}")
    if cons.get("max_ram") is not None:
        limits.append(f"RAM ≤ {int(cons['max_ram']):,} B")
    if cons.get("sram") is not None:
        limits.append(f"board SRAM {int(cons['sram']):,} B")
    return plat, goal + (" subject to " + ", ".join(limits) if limits else ", unconstrained")


def _cost_text(data: Json) -> str:
    if data["cost"] == "measured":
        return (f"measured costs (backend {data.get('backend') or '?'}, compiler "
                f"{data.get('compiler') or '?'}; candidate space of cost model "
                f"{data['cost_model']})")
    return f"analytic costs (cost model {data['cost_model']}: bytes and MACs, not measured)"


# ------------------------------------------------------------------------------ matplotlib plots

def _matplotlib() -> Any:
    """The matplotlib module, or None when it is not installed (extra `plots`)."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        return None
    return matplotlib


def _figures(data: Json) -> dict[str, tuple[bytes, bytes]] | None:
    """{name: (png, svg)} of both plots, or None without matplotlib."""
    mpl = _matplotlib()
    if mpl is None:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = {}
    for name, draw in zip(PLOTS, (_draw_ram_per_block, _draw_pareto)):
        fig = Figure(figsize=_figsize(name, data), layout="constrained")
        FigureCanvasAgg(fig)
        draw(fig, data)
        out[name] = _save(mpl, fig)
    return out


def _figsize(name: str, data: Json) -> tuple[float, float]:
    if name == "pareto":
        return 8.5, 5.5
    return min(18.0, max(9.0, 4.0 + 0.2 * n_layers(data))), 7.0


def _save(mpl: Any, fig: Any) -> tuple[bytes, bytes]:
    png, svg = io.BytesIO(), io.BytesIO()
    # Text stays text in the SVG (no per-glyph defs) and ids are stable across runs.
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "msfsim"}):
        fig.savefig(png, format="png", dpi=PNG_DPI, metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None})
    return png.getvalue(), svg.getvalue()


def _bytes_axis(axis: Any, log: bool) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator
    if log:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _stair_edges(blocks: list[Json]) -> list[float]:
    return [b["layers"][0] - 0.5 for b in blocks] + [blocks[-1]["layers"][1] + 0.5]


def _draw_ram_per_block(fig: Any, data: Json) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle
    from matplotlib.ticker import MaxNLocator

    blocks, n = data["blocks"], n_layers(data)
    conv = plot_convention(blocks)
    ax, strip = fig.subplots(2, 1, sharex=True, height_ratios=[4.2, 1.4])
    values = [block_ram(b, conv) for b in blocks]
    lefts = [b["layers"][0] - 0.5 for b in blocks]
    widths = [b["layers"][1] - b["layers"][0] + 1 for b in blocks]
    colours = [SCHEME_COLOURS.get(b["scheme"], "#777777") for b in blocks]
    ax.bar(lefts, values, widths, align="edge", color=colours, edgecolor="white", linewidth=0.6,
           zorder=2)
    handles = [Patch(color=c, label=f"plan block: {s}") for s, c in SCHEME_COLOURS.items()
               if any(b["scheme"] == s for b in blocks)]
    if conv == "act":
        # act_io - act is the network input/output the msf-CNN convention leaves out.
        extra = [b["ram"]["act_io"] - b["ram"]["act"] for b in blocks]
        if any(extra):
            ax.bar(lefts, extra, widths, bottom=values, align="edge", color="none",
                   edgecolor="#555555", hatch="///", linewidth=0.5, zorder=2)
            handles.append(Patch(facecolor="none", edgecolor="#555555", hatch="///",
                                 label="+ network input/output (act_io)"))
    peak = max(values)
    handles.append(ax.axhline(peak, color="black", linewidth=1.4, zorder=9,
                              label=f"plan peak ({conv}): {peak:,} B"))
    everything = list(values)
    # Baselines share their layer-by-layer tails: wider lines underneath keep each one visible.
    widths_by_rank = (3.4, 2.2, 1.1)
    for rank, (name, base) in enumerate(_baselines(data)):
        colour = BASELINE_STYLE.get(name, ("#333333", "o"))[0]
        bconv = conv if plot_convention(base["blocks"]) == conv else "act"
        bvals = [block_ram(b, bconv) for b in base["blocks"]]
        everything += bvals
        tag = "" if bconv == conv else f" ({bconv})"
        handles.append(ax.stairs(bvals, _stair_edges(base["blocks"]), baseline=None,
                                 color=colour, zorder=4 + rank,
                                 linewidth=widths_by_rank[min(rank, len(widths_by_rank) - 1)],
                                 label=f"{name}{tag} per block, peak {max(bvals):,} B"))
        ax.axhline(max(bvals), color=colour, linestyle="--", linewidth=1.0, zorder=3)
    for name, base in (data.get("baselines") or {}).items():
        if base is None:
            handles.append(Line2D([], [], linestyle="none", label=f"{name}: not expressible "
                                  f"under cost model {data['cost_model']}"))
    sram = (data.get("report_context", {}).get("platform") or {}).get("sram_bytes")
    top = max(everything)
    if sram and sram <= 2 * top:
        handles.append(ax.axhline(sram, color="#e15759", linestyle=":", linewidth=1.5,
                                  label=f"board SRAM {sram:,} B"))
        top = max(top, sram)
    log = top / max(1, min(v for v in values if v > 0) if any(values) else 1) > LOG_SCALE_RATIO
    if log:
        ax.set_yscale("log")
        ax.set_ylim(max(1, min(everything) / 1.6), top * 1.6)
    else:
        ax.set_ylim(0, top * 1.12)
    _bytes_axis(ax.yaxis, log)
    ax.set_ylabel(f"RAM per block, {conv} convention (bytes{', log scale' if log else ''})")
    ax.grid(axis="y", which="major", alpha=0.3, zorder=0)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0)
    plat, goal = _title_bits(data)
    ax.set_title(f"RAM per block: {data['model']} on {plat}\n{goal}; {data['cost']} costs",
                 fontsize=11)
    # Block strip: which layers each plan block runs, labelled by range, scheme and tile.
    font = 8 if n <= 40 else 7 if n <= 70 else 6
    layers = data.get("report_context", {}).get("model_layers")
    for b, left, width, colour in zip(blocks, lefts, widths, colours):
        strip.add_patch(Rectangle((left, 0), width, 1, facecolor=colour, edgecolor="white",
                                  linewidth=0.8))
        strip.text(left + width / 2, 0.5, block_label(b, layers), rotation=90, ha="center",
                   va="center", fontsize=font, clip_on=True)
    strip.set_ylim(0, 1)
    strip.set_yticks([])
    strip.set_ylabel("plan\nblocks", rotation=0, ha="right", va="center")
    strip.set_xlim(-0.5, n - 0.5)
    strip.xaxis.set_major_locator(MaxNLocator(nbins=min(n, 32), integer=True))
    strip.set_xlabel("layer index (topological order); each bar spans its block's layers")


def _draw_pareto(fig: Any, data: Json) -> None:
    ax = fig.subplots()
    front = sorted(data.get("pareto") or [], key=lambda p: p["peak_ram_act"])
    use_instr = bool(front) and all(p.get("instructions") is not None for p in front)
    ykey = "instructions" if use_instr else "overhead"

    def yval(s: Json) -> float | None:
        return s.get(ykey)

    xs = [p["peak_ram_act"] for p in front]
    ys = [yval(p) for p in front]
    if front:
        # Staircase of the best cost reachable within a RAM budget.
        ax.step(xs + [xs[-1] * 1.15], ys + [ys[-1]], where="post", color="#4e79a7",
                linewidth=1.4, zorder=2)
        ax.plot(xs, ys, "o", color="#4e79a7", markersize=4, zorder=3,
                label=f"Pareto front ({len(front)} plans)")
    allx = list(xs)
    plan_y = yval(data)
    if plan_y is not None:
        ax.plot([data["peak_ram"]["act"]], [plan_y], "*", color="#f28e2b", markersize=17,
                markeredgecolor="black", zorder=5,
                label=f"chosen plan: {data['peak_ram']['act']:,} B, "
                      f"{_y_text(ykey, plan_y)}")
        allx.append(data["peak_ram"]["act"])
    labels = []
    for k, (name, base) in enumerate(_baselines(data)):
        y = yval(base)
        if y is None:
            continue
        colour, marker = BASELINE_STYLE.get(name, ("#333333", "o"))
        x = base["peak_ram"]["act"]
        allx.append(x)
        ax.plot([x], [y], marker, color=colour, markersize=8, zorder=4,
                label=f"{name}: {x:,} B, {_y_text(ykey, y)}")
        labels.append((name, x, y, colour, 10 if k % 2 == 0 else -16))
    cons = data.get("report_context", {}).get("constraints") or {}
    if ykey == "overhead" and cons.get("max_overhead") is not None:
        ax.axhline(cons["max_overhead"], color="#e15759", linestyle="--", linewidth=1,
                   label=f"max overhead F = {cons['max_overhead']:g}")
    if cons.get("max_ram") is not None:
        ax.axvline(cons["max_ram"], color="#e15759", linestyle="-.", linewidth=1,
                   label=f"max RAM {int(cons['max_ram']):,} B")
    if allx and max(allx) / max(1, min(allx)) > LOG_SCALE_RATIO:
        ax.set_xscale("log")
        _bytes_axis(ax.xaxis, True)
        xlabel_extra = ", log scale"
    else:
        _bytes_axis(ax.xaxis, False)
        xlabel_extra = ""
    ax.set_xlabel(f"peak RAM, act convention (bytes{xlabel_extra})")
    if use_instr:
        ax.set_ylabel("instructions (measured, whole plan)")
    elif data["cost"] == "measured":
        ax.set_ylabel("overhead F = cost / layer-by-layer cost")
    else:
        ax.set_ylabel("overhead F = MACs / layer-by-layer MACs")
    if use_instr:
        from matplotlib.ticker import FuncFormatter
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.grid(alpha=0.3, which="major")
    ax.margins(x=0.06, y=0.08)
    ax.autoscale_view()
    to_axes = ax.transData + ax.transAxes.inverted()
    for name, x, y, colour, dy in labels:
        # Labels point inwards so that points near the right edge keep theirs inside.
        inward = to_axes.transform((x, y))[0] > 0.75
        ax.annotate(name, (x, y), xytext=(-10 if inward else 10, dy), fontsize=9,
                    textcoords="offset points", color=colour,
                    ha="right" if inward else "left")
    ax.legend(fontsize=8, loc="upper right", framealpha=0.92)
    plat, _ = _title_bits(data)
    ax.set_title(f"RAM / latency trade-off: {data['model']} on {plat}\n"
                 f"{data['cost']} costs, cost model {data['cost_model']}", fontsize=11)


def _y_text(ykey: str, v: float) -> str:
    return f"{int(v):,} instr." if ykey == "instructions" else f"F {v:.3f}"


def _inline_svg(svg: str, prefix: str) -> str:
    """An SVG document as an inline element; ids are prefixed so two plots cannot clash."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}-{m[1]}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m[1]})", svg)
    svg = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m[1]}"', svg)
    # Scale with the page instead of the fixed point size matplotlib writes.
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="plot"', svg,
                  count=1)


# ------------------------------------------------------------------------------ fallback plot

def _fallback_svg(data: Json) -> str:
    """Plain SVG bar chart of RAM per block with the plan's and baselines' peaks."""
    blocks = data["blocks"]
    conv = plot_convention(blocks)
    values = [block_ram(b, conv) for b in blocks]
    lines = [(f"plan peak ({conv})", max(values), "#000000")]
    for name, base in _baselines(data):
        bconv = conv if plot_convention(base["blocks"]) == conv else "act"
        lines.append((name + ("" if bconv == conv else f" ({bconv})"),
                      max(block_ram(b, bconv) for b in base["blocks"]),
                      BASELINE_STYLE.get(name, ("#333333",))[0]))
    w, h, left, bottom, top = 760, 360, 70, 110, 20
    ymax = max(v for _, v, _ in lines) * 1.08
    bw = (w - left - 180) / len(blocks)

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - v / ymax)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {w} {h}" '
             f'font-family="sans-serif" font-size="10">',
             f'<text x="{left}" y="12" font-size="12">RAM per block, {conv} convention '
             f'(bytes)</text>',
             f'<line x1="{left}" y1="{y(0)}" x2="{w - 180}" y2="{y(0)}" stroke="#333"/>']
    for frac in (0.0, 0.5, 1.0):  # y-axis labels
        parts.append(f'<text x="{left - 4}" y="{y(frac * ymax) + 3:.1f}" text-anchor="end">'
                     f'{frac * ymax:,.0f}</text>')
    for k, (b, v) in enumerate(zip(blocks, values)):
        x = left + k * bw
        parts.append(f'<rect x="{x + 1:.1f}" y="{y(v):.1f}" width="{max(bw - 2, 1):.1f}" '
                     f'height="{y(0) - y(v):.1f}" fill="{SCHEME_COLOURS.get(b["scheme"], "#777")}">'
                     f'<title>{html.escape(block_label(b))}: {v:,} B</title></rect>')
        parts.append(f'<text transform="translate({x + bw / 2:.1f},{y(0) + 6}) rotate(60)" '
                     f'font-size="9">{html.escape(block_label(b))}</text>')
    for k, (name, v, colour) in enumerate(lines):
        parts.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{w - 180}" y2="{y(v):.1f}" '
                     f'stroke="{colour}" stroke-dasharray="{"none" if k == 0 else "5,3"}"/>')
        parts.append(f'<text x="{w - 175}" y="{top + 14 * (k + 1)}" fill="{colour}">'
                     f'{html.escape(name)}: {v:,} B</text>')
    parts.append("</svg>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------ HTML

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
.sub{color:#555;margin-top:0}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.peak td{font-weight:bold}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}
svg.plot{width:100%;height:auto;max-width:1200px}
.note{background:#fff6dd;border:1px solid #e8d28a;padding:.4em .8em}
footer{margin-top:2em;color:#555;font-size:.85em;border-top:1px solid #ddd;padding-top:.6em}
"""


def _table(table_id: str, header: Iterable[str], rows: Iterable[Iterable[tuple[str, bool]]],
           classes: Iterable[str] | None = None) -> str:
    """A table; each cell is (text, numeric)."""
    out = [f'<table id="{table_id}"><thead><tr>',
           "".join(f"<th>{html.escape(h)}</th>" for h in header), "</tr></thead><tbody>"]
    cls = list(classes) if classes is not None else []
    for k, row in enumerate(rows):
        attr = f' class="{cls[k]}"' if k < len(cls) and cls[k] else ""
        out.append(f"<tr{attr}>" + "".join(
            f'<td class="num">{html.escape(t)}</td>' if num else f"<td>{html.escape(t)}</td>"
            for t, num in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _summary_rows(data: Json) -> list[list[tuple[str, bool]]]:
    peak = data["peak_ram"]
    ms, how = latency_estimate(data, data)
    rows = [[("peak RAM act (B)", False), (_fmt_int(peak["act"]), True)],
            [("peak RAM act_io (B)", False), (_fmt_int(peak["act_io"]), True)],
            [("peak RAM measured (B)", False), (_fmt_int(peak["measured"]), True)],
            [("MACs", False), (_fmt_int(data["macs"]), True)],
            [("overhead F (vs layer-by-layer)", False), (_fmt_float(data["overhead"]), True)],
            [("instructions", False), (_fmt_int(data.get("instructions")), True)],
            [(how, False), (_fmt_float(ms, 3), True)],
            [("flash (B)", False), (_fmt_int(data.get("flash_bytes")), True)],
            [("blocks", False), (str(len(data["blocks"])), True)]]
    plat = data.get("report_context", {}).get("platform") or {}
    if plat.get("sram_bytes"):
        fig = peak["measured"] if peak["measured"] is not None else peak["act_io"]
        basis = "measured" if peak["measured"] is not None \
            else "act_io: a lower bound, no stack or runtime"
        verdict = "yes" if fig <= plat["sram_bytes"] else "no"
        rows.append([(f"fits board SRAM {plat['sram_bytes']:,} B ({basis})", False),
                     (verdict, False)])
    return rows


def _ops_text(ctx: Json, first: int, last: int) -> str:
    layers = ctx.get("model_layers")
    if not layers:
        return ""

    def one(layer: Json) -> str:
        if layer["op"] in ("conv", "dwconv", "maxpool", "avgpool"):
            return f"{layer['op']} {layer['kernel'][0]}×{layer['kernel'][1]}" + (
                f" s{layer['stride'][0]}" if layer["stride"][0] > 1 else "")
        return str(layer["op"])

    names = [one(layers[i]) for i in range(first, last + 1) if i < len(layers)]
    return " → ".join(names) if len(names) <= 4 else \
        " → ".join(names[:3]) + f" → … ({len(names)} layers)"


def _block_rows(data: Json) -> tuple[list[list[tuple[str, bool]]], list[str]]:
    ctx = data.get("report_context", {})
    conv = plot_convention(data["blocks"])
    peak = max(block_ram(b, conv) for b in data["blocks"])
    rows, classes = [], []
    for k, b in enumerate(data["blocks"]):
        first, last = b["layers"]
        ram = block_ram(b, conv)
        span = str(first) if first == last else f"{first}–{last}"
        rows.append([(str(k), True), (span, False), (block_label(b), False),
                     (f"{b['tile'][0]}×{b['tile'][1]}", False), (b["scheme"], False),
                     (_ops_text(ctx, first, last), False),
                     (_fmt_int(b["ram"]["act"]), True), (_fmt_int(b["ram"]["act_io"]), True),
                     (_fmt_int(b["ram"]["measured"]), True), (_fmt_int(b["macs"]), True),
                     (_fmt_int(b.get("instructions")), True),
                     (f"{100 * ram / peak:.0f}%", True)])
        classes.append("peak" if ram == peak else "")
    return rows, classes


def _baseline_rows(data: Json) -> list[list[tuple[str, bool]]]:
    rows = []
    entries = [("chosen plan", data)] + [(k, (data.get("baselines") or {}).get(k))
                                         for k in BASELINES]
    entries += [(k, v) for k, v in (data.get("baselines") or {}).items() if k not in BASELINES]
    for name, s in entries:
        if s is None:
            rows.append([(name, False)] + [("not expressible under cost model "
                                            f"{data['cost_model']}", False)] + [("", False)] * 7)
            continue
        ms, _ = latency_estimate(data, s)
        rows.append([(name, False), (str(len(s["blocks"])), True),
                     (_fmt_int(s["peak_ram"]["act"]), True),
                     (_fmt_int(s["peak_ram"]["act_io"]), True),
                     (_fmt_int(s["peak_ram"]["measured"]), True), (_fmt_int(s["macs"]), True),
                     (_fmt_float(s["overhead"]), True), (_fmt_int(s.get("instructions")), True),
                     (_fmt_float(ms, 3), True)])
    return rows


def render_html(data: Json, svgs: dict[str, str], have_png: bool = True) -> str:
    """The report page for `data` with the given inline SVG plots."""
    ctx = data.get("report_context", {})
    plat, goal = _title_bits(data)
    conv = plot_convention(data["blocks"])
    esc = html.escape
    title = f"msfsim report: {data['model']} on {plat}"
    model_line = f"{n_layers(data)} layers"
    if ctx.get("model_macs"):
        model_line += f", {ctx['model_macs']:,} MACs layer by layer"
    block_rows, block_classes = _block_rows(data)
    _, latency_how = latency_estimate(data, data)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="sub">Objective: {esc(goal)}. Model: {esc(model_line)}. '
        f"{esc(_cost_text(data)[0].upper() + _cost_text(data)[1:])}.</p>",
    ]
    if not have_png:
        parts.append(f'<p class="note">{esc(FALLBACK_NOTE)}</p>')
    parts += ["<h2>Summary</h2>",
              _table("summary", ["chosen plan", "value"], _summary_rows(data)),
              "<h2>RAM per block</h2>",
              f'<figure>{svgs["ram_per_block"]}<figcaption>RAM per block of the chosen plan '
              f"({esc(conv)} convention; bars span the layers each block runs, hatched: network "
              f"input/output counted only in act_io), the plan's peak (solid line) and the "
              f"baselines' per-block RAM (steps) and peaks (dashed)."
              + (' Files: <a href="ram_per_block.png">PNG</a>, '
                 '<a href="ram_per_block.svg">SVG</a>.' if have_png else "")
              + "</figcaption></figure>"]
    if "pareto" in svgs:
        parts.append("<h2>RAM / latency trade-off</h2>"
                     f'<figure>{svgs["pareto"]}<figcaption>Pareto front of peak RAM (act) '
                     "against cost; the chosen plan is the star, baselines are labelled points. "
                     'Files: <a href="pareto.png">PNG</a>, <a href="pareto.svg">SVG</a>.'
                     "</figcaption></figure>")
    parts += ["<h2>Blocks of the chosen plan</h2>",
              _table("blocks", ["#", "layers", "block", "tile", "scheme", "layer ops", "act B",
                                "act_io B", "measured B", "MACs", "instructions",
                                f"% of peak ({conv})"], block_rows, block_classes),
              "<h2>Baselines</h2>",
              _table("baselines", ["plan", "blocks", "peak act B", "peak act_io B",
                                   "peak measured B", "MACs", "overhead F", "instructions",
                                   latency_how], _baseline_rows(data))]
    if data.get("pareto"):
        parts += ["<h2>Pareto front</h2>",
                  _table("pareto", ["peak RAM act B", "MACs", "overhead F", "instructions"],
                         [[(_fmt_int(p["peak_ram_act"]), True), (_fmt_int(p["macs"]), True),
                           (_fmt_float(p["overhead"]), True),
                           (_fmt_int(p.get("instructions")), True)] for p in data["pareto"]])]
    seconds = ctx.get("search_seconds")
    parts += ["<footer><p>Memory conventions (bytes): "
              + "; ".join(esc(CONVENTIONS[c]) for c in ("act", "act_io", "measured"))
              + ". The RAM-per-block plot uses measured RAM when every block of the plan "
              f"was measured, else act: here <b>{esc(conv)}</b>.</p>",
              f"<p>Costs: {esc(_cost_text(data))}. Backend: "
              f"{esc(str(data.get('backend') or 'none'))}; compiler: "
              f"{esc(str(data.get('compiler') or 'none'))}."
              + (f" Search time {seconds:.2f} s." if seconds is not None else "")
              + f" Generated by msfsim {esc(__version__)}; data in "
              '<a href="result.json">result.json</a>.</p></footer>',
              "</body></html>"]
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------ files

def _write_atomic(path: Path, data: str | bytes) -> None:
    write_atomic(path, data)


