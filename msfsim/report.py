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

import copy
import html
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable

from . import __version__
from .fileio import write_atomic

SCHEMA = 2             # the JSON schema this module reads (msfsim.search.result)
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
    "measured_act": "measured act: the act convention on measurements, the plan's worst block "
                    "measured alone (arena + stack high-water minus the network input/output "
                    "buffers it holds); a measured search's RAM weight",
}
CONVENTION_NAMES = {"act": "act", "act_io": "act_io", "measured": "measured",
                    "measured_act": "measured act"}
F_TEXT = "overhead F = MACs / layer-by-layer MACs"
INSTR_RATIO_TEXT = "x instr vs layer-by-layer (instructions, blocks measured alone)"
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
    data = upgrade(dict(data))
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

def upgrade(data: Json) -> Json:
    """A schema-1 object (before front points and plans named their RAM convention) in
    schema 2 terms: its measured-search front RAM was measured act and its `overhead` there an
    instructions ratio; what it did not record becomes null."""
    if data.get("schema", 1) >= SCHEMA:
        return data
    data = copy.deepcopy(data)
    measured = data.get("cost") == "measured"
    plans = [data] + [v for v in (data.get("baselines") or {}).values() if v]
    van = (data.get("baselines") or {}).get("vanilla")
    van_macs = van["macs"] if van else None

    def f_of(macs: Any) -> float | None:  # F was an instructions ratio in measured searches
        return macs / van_macs if van_macs and macs is not None else None

    for s in plans:
        s["peak_ram"].setdefault("measured_act", None)
        for b in s["blocks"]:
            b["ram"].setdefault("measured_act", None)
        s.setdefault("block_instructions", None)
        s.setdefault("instructions_ratio", s.get("overhead") if measured else None)
        if measured:
            s["overhead"] = f_of(s.get("macs"))
    for p in data.get("pareto") or []:
        p.setdefault("measured", measured)
        p.setdefault("chosen", False)
        if measured:
            p.setdefault("peak_ram_measured_act", p.get("peak_ram_act"))
            p["instructions_ratio"] = p.get("overhead")
            p["peak_ram_act"], p["overhead"] = None, f_of(p.get("macs"))
        else:
            p.setdefault("peak_ram_measured_act", None)
            p.setdefault("instructions_ratio", None)
    data["ram_convention"] = "act"  # schema 1 plans carry no measured act
    data["schema"] = SCHEMA
    return data


def ram_convention(data: Json) -> str:
    """The convention plan, baselines and front are compared in (JSON `ram_convention`):
    measured_act in a measured search, act in an analytic one."""
    conv = data.get("ram_convention") or "act"
    return conv if conv in CONVENTION_NAMES else "act"


def plot_convention(data: Json) -> str:
    """The RAM convention of both plots and the comparison columns: `ram_convention(data)`
    when every block of the plan has a figure in it, else `act` (DESIGN §3)."""
    conv = ram_convention(data)
    blocks = data["blocks"]
    return conv if blocks and all(block_ram(b, conv) is not None for b in blocks) else "act"


def block_ram(block: Json, convention: str) -> int | None:
    """A block's RAM under `convention` (None when it has no figure in it)."""
    value = block["ram"].get(convention)
    return None if value is None else int(value)


def plan_peak(summary: Json, convention: str) -> int | None:
    """A plan's peak RAM under `convention`: the one figure the summary table, the baseline
    table and both plots show (for a measured search: the worst block measured alone, which is
    also the plan's front point)."""
    value = summary["peak_ram"].get(convention)
    return None if value is None else int(value)


def front_ram(point: Json, convention: str) -> int | None:
    """A front point's peak RAM under `convention`."""
    value = point.get("peak_ram_measured_act" if convention == "measured_act" else "peak_ram_act")
    return None if value is None else int(value)


def conv_name(convention: str) -> str:
    return CONVENTION_NAMES.get(convention, convention)


def point_basis(data: Json, point: Json) -> str:
    """measured / estimate (measured search) or analytic, as `msfsim.search.result`."""
    if data.get("cost") != "measured":
        return "analytic"
    return "measured" if point.get("measured") else "estimate"


def network_io(blocks: list[Json]) -> list[int]:
    """Per block: the network input / output buffers it holds (act_io - act), which the act
    conventions leave out; drawn hatched on the RAM-per-block plot when any is non-zero."""
    return [int(b["ram"]["act_io"]) - int(b["ram"]["act"]) for b in blocks]


def ram_plot_caption(data: Json, conv: str) -> str:
    """The RAM-per-block figure's caption; it names hatching only when the plot draws it."""
    text = (f"RAM per block of the chosen plan ({conv_name(conv)} convention; bars span the "
            f"layers each block runs")
    if any(network_io(data["blocks"])):
        text += ("; hatched on top: the network input/output buffers a block holds, left out "
                 "by the act conventions and counted in act_io")
    base = [name for name, s in _baselines(data) if _plan_blocks_ram(s, conv) is not None]
    text += "), the plan's peak (solid line)"
    if base:
        text += " and the baselines' per-block RAM (steps) and peaks (dashed)"
    return text + "."


def _plan_blocks_ram(summary: Json, conv: str) -> list[int] | None:
    vals = [block_ram(b, conv) for b in summary["blocks"]]
    return None if any(v is None for v in vals) else vals  # type: ignore[return-value]


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
    conv = conv_name(ram_convention(data))
    if cons.get("max_overhead") is not None:
        # --max-overhead bounds the search's cost ratio: instructions when measured, else MACs
        limits.append(f"instructions ≤ {cons['max_overhead']:g} × layer-by-layer"
                      if data["cost"] == "measured" else
                      f"overhead F ≤ {cons['max_overhead']:g} (MACs)")
    if cons.get("max_ram") is not None:
        limits.append(f"peak {conv} ≤ {int(cons['max_ram']):,} B")
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
    conv = plot_convention(data)
    name = conv_name(conv)
    ax, strip = fig.subplots(2, 1, sharex=True, height_ratios=[4.2, 1.4])
    values = [block_ram(b, conv) or 0 for b in blocks]
    lefts = [b["layers"][0] - 0.5 for b in blocks]
    widths = [b["layers"][1] - b["layers"][0] + 1 for b in blocks]
    colours = [SCHEME_COLOURS.get(b["scheme"], "#777777") for b in blocks]
    ax.bar(lefts, values, widths, align="edge", color=colours, edgecolor="white", linewidth=0.6,
           zorder=2)
    handles = [Patch(color=c, label=f"plan block: {s}") for s, c in SCHEME_COLOURS.items()
               if any(b["scheme"] == s for b in blocks)]
    extra = network_io(blocks)
    if any(extra):  # ram_plot_caption() names the hatching under the same condition
        ax.bar(lefts, extra, widths, bottom=values, align="edge", color="none",
               edgecolor="#555555", hatch="///", linewidth=0.5, zorder=2)
        handles.append(Patch(facecolor="none", edgecolor="#555555", hatch="///",
                             label="+ network input/output (counted in act_io)"))
    peak = plan_peak(data, conv)
    everything = list(values) + [v + e for v, e in zip(values, extra)]
    if peak is not None:
        handles.append(ax.axhline(peak, color="black", linewidth=1.4, zorder=9,
                                  label=f"plan peak ({name}): {peak:,} B"))
    # Baselines share their layer-by-layer tails: wider lines underneath keep each one visible.
    widths_by_rank = (3.4, 2.2, 1.1)
    for rank, (bname, base) in enumerate(_baselines(data)):
        colour = BASELINE_STYLE.get(bname, ("#333333", "o"))[0]
        bvals = _plan_blocks_ram(base, conv)
        bpeak = plan_peak(base, conv)
        if bvals is None or bpeak is None:
            handles.append(Line2D([], [], linestyle="none",
                                  label=f"{bname}: not plotted (no {name} for every block)"))
            continue
        everything += bvals
        handles.append(ax.stairs(bvals, _stair_edges(base["blocks"]), baseline=None,
                                 color=colour, zorder=4 + rank,
                                 linewidth=widths_by_rank[min(rank, len(widths_by_rank) - 1)],
                                 label=f"{bname} per block, peak {bpeak:,} B"))
        ax.axhline(bpeak, color=colour, linestyle="--", linewidth=1.0, zorder=3)
    for bname, base in (data.get("baselines") or {}).items():
        if base is None:
            handles.append(Line2D([], [], linestyle="none", label=f"{bname}: not expressible "
                                  f"under cost model {data['cost_model']}"))
    sram = (data.get("report_context", {}).get("platform") or {}).get("sram_bytes")
    top = max(everything)
    if sram and sram <= 2 * top:
        handles.append(ax.axhline(sram, color="#e15759", linestyle=":", linewidth=1.5,
                                  label=f"board SRAM {sram:,} B"))
        top = max(top, sram)
    positive = [v for v in everything if v > 0]
    log = bool(positive) and top / min(positive) > LOG_SCALE_RATIO
    if log:
        ax.set_yscale("log")
        ax.set_ylim(max(1, min(positive) / 1.6), top * 1.6)
    else:
        ax.set_ylim(0, top * 1.12)
    _bytes_axis(ax.yaxis, log)
    ax.set_ylabel(f"RAM per block, {name} convention (bytes{', log scale' if log else ''})")
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


def pareto_axes(data: Json) -> tuple[str, str, str]:
    """(RAM convention, y key of front points, y key of plans) of the trade-off plot: measured
    act and instructions of the blocks measured alone in a measured search (the front's own
    figures, so the chosen plan lies on its front), act and F otherwise."""
    conv = plot_convention(data)
    front = data.get("pareto") or []
    if data["cost"] == "measured" and front and all(p.get("instructions") is not None
                                                    for p in front):
        return conv, "instructions", "block_instructions"
    return conv, "overhead", "overhead"


def pareto_point(summary: Json, conv: str, ykey: str) -> tuple[int, float] | None:
    """A plan's (x, y) on the trade-off plot, None when it has no figure in that convention."""
    x, y = plan_peak(summary, conv), summary.get(ykey)
    return None if x is None or y is None else (x, y)


def _draw_pareto(fig: Any, data: Json) -> None:
    ax = fig.subplots()
    conv, fkey, pkey = pareto_axes(data)
    name = conv_name(conv)
    front = sorted((p for p in data.get("pareto") or []
                    if front_ram(p, conv) is not None and p.get(fkey) is not None),
                   key=lambda p: front_ram(p, conv))  # type: ignore[arg-type, return-value]
    xs = [front_ram(p, conv) for p in front]
    ys = [p[fkey] for p in front]
    if front:
        # Staircase of the best cost reachable within a RAM budget.
        ax.step(xs + [xs[-1] * 1.15], ys + [ys[-1]], where="post", color="#4e79a7",
                linewidth=1.4, zorder=2)
        for basis in ("measured", "analytic", "estimate"):
            pts = [(x, y) for p, x, y in zip(front, xs, ys) if point_basis(data, p) == basis]
            if not pts:
                continue
            hollow = basis == "estimate"  # an estimate is never drawn like a measurement
            ax.plot([x for x, _ in pts], [y for _, y in pts], "o", color="#4e79a7",
                    markerfacecolor="white" if hollow else "#4e79a7",
                    markersize=5 if hollow else 4, zorder=3,
                    label=f"Pareto front, {basis} ({len(pts)} plans)")
    allx = list(xs)
    chosen = pareto_point(data, conv, pkey)
    if chosen is not None:
        x, y = chosen
        whole = (f"; whole firmware {data['instructions']:,}"
                 if pkey == "block_instructions" and data.get("instructions") is not None else "")
        ax.plot([x], [y], "*", color="#f28e2b", markersize=17, markeredgecolor="black", zorder=5,
                label=f"chosen plan: {x:,} B, {_y_text(fkey, y)}{whole}")
        allx.append(x)
    labels = []
    for k, (bname, base) in enumerate(_baselines(data)):
        colour, marker = BASELINE_STYLE.get(bname, ("#333333", "o"))
        pt = pareto_point(base, conv, pkey)
        if pt is None:
            ax.plot([], [], linestyle="none",
                    label=f"{bname}: not plotted (no {name} or cost for every block)")
            continue
        x, y = pt
        allx.append(x)
        ax.plot([x], [y], marker, color=colour, markersize=8, zorder=4,
                label=f"{bname}: {x:,} B, {_y_text(fkey, y)}")
        labels.append((bname, x, y, colour, 10 if k % 2 == 0 else -16))
    cons = data.get("report_context", {}).get("constraints") or {}
    if cons.get("max_overhead") is not None:
        f_max = cons["max_overhead"]
        van = (data.get("baselines") or {}).get("vanilla") or {}
        if data["cost"] != "measured":  # analytic: --max-overhead bounds F itself
            ax.axhline(f_max, color="#e15759", linestyle="--", linewidth=1,
                       label=f"max overhead F = {f_max:g}")
        elif fkey == "instructions" and van.get(pkey) is not None:
            ax.axhline(f_max * van[pkey], color="#e15759", linestyle="--", linewidth=1,
                       label=f"--max-overhead {f_max:g} × layer-by-layer instructions")
    if cons.get("max_ram") is not None:
        ax.axvline(cons["max_ram"], color="#e15759", linestyle="-.", linewidth=1,
                   label=f"max RAM {int(cons['max_ram']):,} B ({name})")
    if allx and max(allx) / max(1, min(allx)) > LOG_SCALE_RATIO:
        ax.set_xscale("log")
        _bytes_axis(ax.xaxis, True)
        xlabel_extra = ", log scale"
    else:
        _bytes_axis(ax.xaxis, False)
        xlabel_extra = ""
    ax.set_xlabel(f"peak RAM, {name} convention (bytes{xlabel_extra})")
    if fkey == "instructions":
        ax.set_ylabel("instructions, sum of the blocks measured alone")
        from matplotlib.ticker import FuncFormatter
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    else:
        ax.set_ylabel(F_TEXT)
    ax.grid(alpha=0.3, which="major")
    ax.margins(x=0.06, y=0.08)
    ax.autoscale_view()
    to_axes = ax.transData + ax.transAxes.inverted()
    for bname, x, y, colour, dy in labels:
        # Labels point inwards so that points near the right edge keep theirs inside.
        inward = to_axes.transform((x, y))[0] > 0.75
        ax.annotate(bname, (x, y), xytext=(-10 if inward else 10, dy), fontsize=9,
                    textcoords="offset points", color=colour,
                    ha="right" if inward else "left")
    ax.legend(fontsize=8, loc="best", framealpha=0.92)
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
    """Plain SVG bar chart of RAM per block with the plan's and baselines' peaks, in the same
    convention, hatching and peaks as the matplotlib plot."""
    blocks = data["blocks"]
    conv = plot_convention(data)
    name = conv_name(conv)
    values = [block_ram(b, conv) or 0 for b in blocks]
    extra = network_io(blocks)
    peak = plan_peak(data, conv)
    lines = [] if peak is None else [(f"plan peak ({name})", peak, "#000000")]
    skipped = []
    for bname, base in _baselines(data):
        bpeak = plan_peak(base, conv)
        if _plan_blocks_ram(base, conv) is None or bpeak is None:
            skipped.append(f"{bname}: not plotted")
            continue
        lines.append((bname, bpeak, BASELINE_STYLE.get(bname, ("#333333",))[0]))
    w, h, left, bottom, top = 760, 360, 70, 110, 20
    ymax = max([v for _, v, _ in lines] + [v + e for v, e in zip(values, extra)]) * 1.08
    bw = (w - left - 180) / len(blocks)

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - v / ymax)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {w} {h}" '
             f'font-family="sans-serif" font-size="10">']
    if any(extra):  # the hatch of the network input/output, as ram_plot_caption() says
        parts.append('<defs><pattern id="netio" width="6" height="6" '
                     'patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" '
                     'y1="0" x2="0" y2="6" stroke="#555" stroke-width="1"/></pattern></defs>')
    parts += [f'<text x="{left}" y="12" font-size="12">RAM per block, {html.escape(name)} '
              f'convention (bytes)</text>',
              f'<line x1="{left}" y1="{y(0)}" x2="{w - 180}" y2="{y(0)}" stroke="#333"/>']
    for frac in (0.0, 0.5, 1.0):  # y-axis labels
        parts.append(f'<text x="{left - 4}" y="{y(frac * ymax) + 3:.1f}" text-anchor="end">'
                     f'{frac * ymax:,.0f}</text>')
    for k, (b, v, e) in enumerate(zip(blocks, values, extra)):
        x = left + k * bw
        parts.append(f'<rect class="bar" x="{x + 1:.1f}" y="{y(v):.1f}" '
                     f'width="{max(bw - 2, 1):.1f}" height="{y(0) - y(v):.1f}" '
                     f'fill="{SCHEME_COLOURS.get(b["scheme"], "#777")}">'
                     f'<title>{html.escape(block_label(b))}: {v:,} B</title></rect>')
        if e:  # network input/output on top, hatched as in the matplotlib plot
            parts.append(f'<rect class="netio" x="{x + 1:.1f}" y="{y(v + e):.1f}" '
                         f'width="{max(bw - 2, 1):.1f}" height="{y(v) - y(v + e):.1f}" '
                         f'fill="url(#netio)" stroke="#555" stroke-width="0.5">'
                         f'<title>+ network input/output {e:,} B (counted in act_io)</title>'
                         f'</rect>')
        parts.append(f'<text transform="translate({x + bw / 2:.1f},{y(0) + 6}) rotate(60)" '
                     f'font-size="9">{html.escape(block_label(b))}</text>')
    for k, (lname, v, colour) in enumerate(lines):
        parts.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{w - 180}" y2="{y(v):.1f}" '
                     f'stroke="{colour}" stroke-dasharray="{"none" if k == 0 else "5,3"}"/>')
        parts.append(f'<text x="{w - 175}" y="{top + 14 * (k + 1)}" fill="{colour}">'
                     f'{html.escape(lname)}: {v:,} B</text>')
    notes = skipped + (["hatched: network I/O (act_io)"] if any(extra) else [])
    for j, note in enumerate(notes):
        parts.append(f'<text x="{w - 175}" y="{top + 14 * (len(lines) + j + 1)}" '
                     f'fill="#555">{html.escape(note)}</text>')
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
    conv = plot_convention(data)
    ms, how = latency_estimate(data, data)
    ram_rows = {
        "act": [("peak RAM act (B)", False), (_fmt_int(plan_peak(data, "act")), True)],
        "measured_act": [("peak RAM measured act (B; blocks measured alone)", False),
                         (_fmt_int(plan_peak(data, "measured_act")), True)]}
    order = [conv] + [c for c in ram_rows if c != conv]
    rows = [ram_rows[c] for c in order]
    rows += [[("peak RAM act_io (B)", False), (_fmt_int(peak["act_io"]), True)],
             [("peak RAM measured, whole-plan firmware (B)", False),
              (_fmt_int(peak["measured"]), True)],
             [("MACs", False), (_fmt_int(data["macs"]), True)],
             [(F_TEXT, False), (_fmt_float(data["overhead"]), True)],
             [(INSTR_RATIO_TEXT, False), (_fmt_float(data.get("instructions_ratio")), True)],
             [("instructions, blocks measured alone", False),
              (_fmt_int(data.get("block_instructions")), True)],
             [("instructions, whole-plan firmware", False),
              (_fmt_int(data.get("instructions")), True)],
             [(how, False), (_fmt_float(ms, 3), True)],
             [("flash (B)", False), (_fmt_int(data.get("flash_bytes")), True)],
             [("blocks", False), (str(len(data["blocks"])), True)]]
    plat = data.get("report_context", {}).get("platform") or {}
    if plat.get("sram_bytes"):
        fig = peak["measured"] if peak["measured"] is not None else peak["act_io"]
        basis = "measured, whole-plan firmware" if peak["measured"] is not None \
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
    conv = plot_convention(data)
    peak = plan_peak(data, conv) or 1
    rows, classes = [], []
    for k, b in enumerate(data["blocks"]):
        first, last = b["layers"]
        ram = block_ram(b, conv) or 0
        span = str(first) if first == last else f"{first}–{last}"
        rows.append([(str(k), True), (span, False), (block_label(b), False),
                     (f"{b['tile'][0]}×{b['tile'][1]}", False), (b["scheme"], False),
                     (_ops_text(ctx, first, last), False),
                     (_fmt_int(b["ram"]["act"]), True), (_fmt_int(b["ram"]["act_io"]), True),
                     (_fmt_int(b["ram"].get("measured_act")), True),
                     (_fmt_int(b["ram"]["measured"]), True), (_fmt_int(b["macs"]), True),
                     (_fmt_int(b.get("instructions")), True),
                     (f"{100 * ram / peak:.0f}%", True)])
        classes.append("peak" if ram == peak else "")
    return rows, classes


BLOCK_HEADER = ["#", "layers", "block", "tile", "scheme", "layer ops", "act B", "act_io B",
                "measured act B (block alone)", "measured B (block's own firmware)", "MACs",
                "instructions (block alone)"]
BASELINE_HEADER = ["plan", "blocks", "peak act B", "peak act_io B", "peak measured act B",
                   "peak measured B (whole-plan firmware)", "MACs", "overhead F (MACs)",
                   "x instr vs layer-by-layer", "instructions (whole-plan firmware)"]
PARETO_HEADER = ["peak RAM measured act B", "peak RAM act B", "MACs", "overhead F (MACs)",
                 "instructions (blocks measured alone)", "x instr vs layer-by-layer", "basis",
                 "chosen plan"]


def _baseline_rows(data: Json) -> list[list[tuple[str, bool]]]:
    rows = []
    entries = [("chosen plan", data)] + [(k, (data.get("baselines") or {}).get(k))
                                         for k in BASELINES]
    entries += [(k, v) for k, v in (data.get("baselines") or {}).items() if k not in BASELINES]
    for name, s in entries:
        if s is None:
            rows.append([(name, False)] + [("not expressible under cost model "
                                            f"{data['cost_model']}", False)]
                        + [("", False)] * (len(BASELINE_HEADER) - 1))
            continue
        ms, _ = latency_estimate(data, s)
        rows.append([(name, False), (str(len(s["blocks"])), True),
                     (_fmt_int(plan_peak(s, "act")), True),
                     (_fmt_int(plan_peak(s, "act_io")), True),
                     (_fmt_int(plan_peak(s, "measured_act")), True),
                     (_fmt_int(plan_peak(s, "measured")), True), (_fmt_int(s["macs"]), True),
                     (_fmt_float(s["overhead"]), True),
                     (_fmt_float(s.get("instructions_ratio")), True),
                     (_fmt_int(s.get("instructions")), True),
                     (_fmt_float(ms, 3), True)])
    return rows


def _pareto_rows(data: Json) -> list[list[tuple[str, bool]]]:
    return [[(_fmt_int(p.get("peak_ram_measured_act")), True),
             (_fmt_int(p.get("peak_ram_act")), True), (_fmt_int(p["macs"]), True),
             (_fmt_float(p.get("overhead")), True), (_fmt_int(p.get("instructions")), True),
             (_fmt_float(p.get("instructions_ratio")), True), (point_basis(data, p), False),
             ("yes" if p.get("chosen") else "", False)] for p in data["pareto"]]


def pareto_caption(data: Json) -> str:
    conv, fkey, _ = pareto_axes(data)
    name = conv_name(conv)
    cost = ("instructions (sum of the blocks measured alone)" if fkey == "instructions"
            else "overhead F (MACs / layer-by-layer MACs)")
    bases = {point_basis(data, p) for p in data.get("pareto") or []}
    if data["cost"] != "measured":
        marks = "points of the analytic cost model"
    else:
        marks = "filled markers: front plans whose every block was measured"
        if "estimate" in bases:  # as drawn by _draw_pareto
            marks += "; hollow markers: estimates (some blocks not measured)"
        marks += (". The front is made of the blocks measured, those near the chosen plan and "
                  "of the baselines: far from the chosen plan, unmeasured plans may do better")
    return (f"Pareto front of peak RAM ({name} convention) against {cost}; {marks}. The chosen "
            f"plan (star) and the baselines (labelled points) are drawn in the same convention.")


def render_html(data: Json, svgs: dict[str, str], have_png: bool = True) -> str:
    """The report page for `data` with the given inline SVG plots."""
    data = upgrade(data)
    ctx = data.get("report_context", {})
    plat, goal = _title_bits(data)
    conv = plot_convention(data)
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
        f"{esc(_cost_text(data)[0].upper() + _cost_text(data)[1:])}. RAM figures compared in "
        f"the <b>{esc(conv_name(conv))}</b> convention; {esc(F_TEXT)}.</p>",
    ]
    if not have_png:
        parts.append(f'<p class="note">{esc(FALLBACK_NOTE)}</p>')
    parts += ["<h2>Summary</h2>",
              _table("summary", ["chosen plan", "value"], _summary_rows(data)),
              "<h2>RAM per block</h2>",
              f'<figure>{svgs["ram_per_block"]}<figcaption id="ram-caption">'
              f"{esc(ram_plot_caption(data, conv))}"
              + (' Files: <a href="ram_per_block.png">PNG</a>, '
                 '<a href="ram_per_block.svg">SVG</a>.' if have_png else "")
              + "</figcaption></figure>"]
    if "pareto" in svgs:
        parts.append("<h2>RAM / latency trade-off</h2>"
                     f'<figure>{svgs["pareto"]}<figcaption id="pareto-caption">'
                     f"{esc(pareto_caption(data))} "
                     'Files: <a href="pareto.png">PNG</a>, <a href="pareto.svg">SVG</a>.'
                     "</figcaption></figure>")
    parts += ["<h2>Blocks of the chosen plan</h2>",
              _table("blocks", BLOCK_HEADER + [f"% of peak ({conv_name(conv)})"], block_rows,
                     block_classes),
              "<h2>Baselines</h2>",
              _table("baselines", BASELINE_HEADER + [latency_how], _baseline_rows(data))]
    if data.get("pareto"):
        parts += ["<h2>Pareto front</h2>",
                  _table("pareto", PARETO_HEADER, _pareto_rows(data))]
    seconds = ctx.get("search_seconds")
    shown = ("act", "act_io", "measured") + (("measured_act",) if data["cost"] == "measured"
                                             else ())
    parts += ["<footer><p>Memory conventions (bytes): "
              + "; ".join(esc(CONVENTIONS[c]) for c in shown)
              + ". Plots and comparisons use the search's own convention, measured act in a "
              "measured search and act in an analytic one, when every block of the plan has "
              f"it, else act: here <b>{esc(conv_name(conv))}</b>. {esc(F_TEXT)}"
              + (f"; {esc(INSTR_RATIO_TEXT)}, the figure --max-overhead bounds in a measured "
                 "search" if data["cost"] == "measured" else "") + ".</p>",
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


