"""The report's plots: RAM per block and the RAM / latency trade-off with matplotlib, and the
plain SVG chart of RAM per block the page shows without it (all through `msfsim.plots`)."""
from __future__ import annotations

from typing import Any

from .. import plots
from .data import (BASELINE_STYLE, F_TEXT, SCHEME_COLOURS, Json, baseline_plans, block_label,
                   block_ram, conv_name, front_ram, n_layers, network_io, pareto_axes,
                   pareto_point, plan_blocks_ram, plan_peak, plot_convention, point_basis,
                   title_bits)

PLOTS = ("ram_per_block", "pareto")


def figures(data: Json) -> dict[str, tuple[bytes, bytes]] | None:
    """{name: (png, svg)} of both plots, or None without matplotlib."""
    if plots.matplotlib() is None:
        return None
    return {name: plots.render(lambda fig, draw=draw: draw(fig, data), figsize(name, data))
            for name, draw in zip(PLOTS, (draw_ram_per_block, draw_pareto))}


def figsize(name: str, data: Json) -> tuple[float, float]:
    if name == "pareto":
        return 8.5, 5.5
    return min(18.0, max(9.0, 4.0 + 0.2 * n_layers(data))), 7.0


def stair_edges(blocks: list[Json]) -> list[float]:
    return [b["layers"][0] - 0.5 for b in blocks] + [blocks[-1]["layers"][1] + 0.5]


def draw_ram_per_block(fig: Any, data: Json) -> None:
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
    for rank, (bname, base) in enumerate(baseline_plans(data)):
        colour = BASELINE_STYLE.get(bname, ("#333333", "o"))[0]
        bvals = plan_blocks_ram(base, conv)
        bpeak = plan_peak(base, conv)
        if bvals is None or bpeak is None:
            handles.append(Line2D([], [], linestyle="none",
                                  label=f"{bname}: not plotted (no {name} for every block)"))
            continue
        everything += bvals
        handles.append(ax.stairs(bvals, stair_edges(base["blocks"]), baseline=None,
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
    log = plots.wide_range(everything, top)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(max(1, min(positive) / 1.6), top * 1.6)
    else:
        ax.set_ylim(0, top * 1.12)
    plots.bytes_axis(ax.yaxis, log)
    ax.set_ylabel(f"RAM per block, {name} convention (bytes{', log scale' if log else ''})")
    ax.grid(axis="y", which="major", alpha=0.3, zorder=0)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0)
    plat, goal = title_bits(data)
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


def pareto_chart(data: Json) -> plots.Chart:
    """The RAM / latency trade-off of a search: its front (staircase and points, hollow where
    estimated), the chosen plan, the baselines and the constraints, in the plot's convention."""
    conv, fkey, pkey = pareto_axes(data)
    name = conv_name(conv)
    front = sorted((p for p in data.get("pareto") or []
                    if front_ram(p, conv) is not None and p.get(fkey) is not None),
                   key=lambda p: front_ram(p, conv))  # type: ignore[arg-type, return-value]
    xs = [front_ram(p, conv) for p in front]
    ys = [p[fkey] for p in front]
    series, step, dashed = [], [], []
    if front:
        # Staircase of the best cost reachable within a RAM budget, dashed where an estimate
        # sets it.
        step = list(zip(xs + [xs[-1] * 1.15], ys + [ys[-1]]))
        dashed = [point_basis(data, p) == "estimate" for p in front]
        dashed.append(dashed[-1])
        for basis in ("measured", "analytic", "estimate"):
            pts = [(x, y) for p, x, y in zip(front, xs, ys) if point_basis(data, p) == basis]
            if not pts:
                continue
            hollow = basis == "estimate"  # an estimate is never drawn like a measurement
            series.append(plots.Series(f"Pareto front, {basis} ({len(pts)} plans)", pts,
                                       "#4e79a7", size=5 if hollow else 4, hollow=hollow,
                                       tips=[f"{x:,} B, {y_text(fkey, y)} ({basis})"
                                             for x, y in pts]))
    allx = list(xs)
    chosen = pareto_point(data, conv, pkey)
    if chosen is not None:
        x, y = chosen
        whole = (f"; whole firmware {data['instructions']:,}"
                 if pkey == "block_instructions" and data.get("instructions") is not None else "")
        series.append(plots.Series(f"chosen plan: {x:,} B, {y_text(fkey, y)}{whole}", [chosen],
                                   "#f28e2b", "*", 17, edge="black", zorder=5))
        allx.append(x)
    labels = []
    for k, (bname, base) in enumerate(baseline_plans(data)):
        colour, marker = BASELINE_STYLE.get(bname, ("#333333", "o"))
        pt = pareto_point(base, conv, pkey)
        if pt is None:
            series.append(plots.Series(
                f"{bname}: not plotted (no {name} or cost for every block)", []))
            continue
        x, y = pt
        allx.append(x)
        series.append(plots.Series(f"{bname}: {x:,} B, {y_text(fkey, y)}", [pt], colour, marker,
                                   8, zorder=4))
        labels.append(plots.Label(bname, x, y, colour, 10 if k % 2 == 0 else -16))
    rules = []
    cons = data.get("report_context", {}).get("constraints") or {}
    if cons.get("max_overhead") is not None:
        f_max = cons["max_overhead"]
        van = (data.get("baselines") or {}).get("vanilla") or {}
        if data["cost"] != "measured":  # analytic: --max-overhead bounds F itself
            rules.append(plots.Rule("y", f_max, f"max overhead F = {f_max:g}"))
        elif fkey == "instructions" and van.get(pkey) is not None:
            rules.append(plots.Rule("y", f_max * van[pkey], f"--max-overhead {f_max:g} × "
                                    "layer-by-layer instructions"))
    if cons.get("max_ram") is not None:
        rules.append(plots.Rule("x", cons["max_ram"],
                                f"max RAM {int(cons['max_ram']):,} B ({name})", style="-."))
    xlog = plots.wide_range(allx)
    plat, _ = title_bits(data)
    return plots.Chart(
        f"RAM / latency trade-off: {data['model']} on {plat}\n"
        f"{data['cost']} costs, cost model {data['cost_model']}",
        f"peak RAM, {name} convention (bytes{', log scale' if xlog else ''})",
        "instructions, sum of the blocks measured alone" if fkey == "instructions" else F_TEXT,
        series, step, rules=rules, labels=labels, xlog=xlog, ybytes=fkey == "instructions",
        step_dashed=dashed)


def draw_pareto(fig: Any, data: Json) -> None:
    plots.draw(fig.subplots(), pareto_chart(data))


def y_text(ykey: str, v: float) -> str:
    return f"{int(v):,} instr." if ykey == "instructions" else f"F {v:.3f}"


def fallback_svg(data: Json) -> str:
    """Plain SVG bar chart of RAM per block with the plan's and baselines' peaks, in the same
    convention, hatching and peaks as the matplotlib plot."""
    blocks = data["blocks"]
    conv = plot_convention(data)
    name = conv_name(conv)
    peak = plan_peak(data, conv)
    levels = [] if peak is None else [plots.Level(f"plan peak ({name})", peak, "#000000")]
    skipped = []
    for bname, base in baseline_plans(data):
        bpeak = plan_peak(base, conv)
        if plan_blocks_ram(base, conv) is None or bpeak is None:
            skipped.append(f"{bname}: not plotted")
            continue
        levels.append(plots.Level(bname, bpeak, BASELINE_STYLE.get(bname, ("#333333",))[0]))
    bars = []
    for b, e in zip(blocks, network_io(blocks)):  # network I/O hatched on top, as matplotlib's
        v = block_ram(b, conv) or 0
        bars.append(plots.Bar(block_label(b), v, SCHEME_COLOURS.get(b["scheme"], "#777"),
                              f"{block_label(b)}: {v:,} B", e,
                              f"+ network input/output {e:,} B (counted in act_io)"))
    # the hatch as ram_plot_caption() names it
    notes = skipped + (["hatched: network I/O (act_io)"] if any(b.extra for b in bars) else [])
    return plots.bars_svg(f"RAM per block, {name} convention (bytes)", bars, levels, notes)
