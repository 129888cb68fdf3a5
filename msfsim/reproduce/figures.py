"""The reproduction's plots: RAM by plan and board for each model, measured RAM against
instructions; with matplotlib, or the plain SVG charts of `msfsim.plots` without it."""
from __future__ import annotations

from typing import Any

from .. import platforms, plots
from ..report import BASELINE_STYLE
from .plans import METHODS, Row
from .published import KB, PUBLISHED
from .tables import find

METHOD_COLOURS = {**{k: v[0] for k, v in BASELINE_STYLE.items()},
                  "msf-cnn": "#4e79a7", "msfsim": "#59a14f"}
BOARD_MARKERS = ("o", "s", "^", "D", "v", "P")
BOARD_COLOURS = ("#4e79a7", "#f28e2b", "#76b7b2", "#e15759", "#b07aa1", "#9c755f")
SCATTER_TITLE = "Measured RAM vs instructions (emulated; latency = instructions / clock)"
RAM_LABEL = "measured RAM (bytes)"
INSTRUCTIONS_LABEL = "instructions (measured, whole plan)"

Files = dict[str, "bytes | str"]


def slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in name)


def figures(data: dict[str, Any], rows: list[Row]) -> list[tuple[str, str, Files]]:
    """Each plot as (key: its model, or "*" for RAM vs instructions; file stem; {extension:
    content}): PNG and SVG drawn by matplotlib, or a plain SVG chart without it."""
    boards, models = data["boards"], data["models"]
    mpl = plots.matplotlib() is not None
    out: list[tuple[str, str, Files]] = []
    for n in models:
        if not any(r.model == n for r in rows):
            continue
        if mpl:
            png, svg = plots.render(lambda fig, n=n: draw_ram(fig, n, rows, boards), (10, 6))
            out.append((n, f"ram_{slug(n)}", {"png": png, "svg": svg}))
        else:
            out.append((n, f"ram_{slug(n)}", {"svg": fallback_bars(n, rows, boards)}))
    if any(r.ok for r in rows):
        if mpl:
            png, svg = plots.render(lambda fig: draw_scatter(fig, rows, models, boards),
                                    (15, 5.5))
            out.append(("*", "ram_vs_instructions", {"png": png, "svg": svg}))
        else:
            out.append(("*", "ram_vs_instructions",
                        {"svg": plots.chart_svg(scatter_chart(rows, boards)) + "\n"}))
    return out


def _colour(boards: list[str], board: str) -> str:
    k = boards.index(board) if board in boards else 0
    return BOARD_COLOURS[k % len(BOARD_COLOURS)]


def draw_ram(fig: Any, model: str, rows: list[Row], boards: list[str]) -> None:
    """Grouped bars: measured RAM per plan, one bar per board; exact act and the published
    figure as markers; a cross at the board's SRAM for a plan that does not fit."""
    ax = fig.subplots()
    methods = list(METHODS)
    width = 0.8 / max(1, len(boards))
    values: list[float] = []
    acts: list[tuple[float, int]] = []
    nofit_done = False
    for k, board in enumerate(boards):
        xs, ys = [], []
        for i, method in enumerate(methods):
            r = find(rows, model, method, board)
            x = i - 0.4 + width * (k + 0.5)
            if r is None:
                continue
            if r.analytic:
                acts.append((x, r.analytic["act"]))
            if r.ok:
                xs.append(x)
                ys.append(r.measured["ram"])  # type: ignore[index]
            elif r.status == "does not fit":
                sram = platforms.load(board).sram.size
                ax.plot([x], [sram], marker="x", color=BOARD_COLOURS[k % len(BOARD_COLOURS)],
                        markersize=9, mew=2, linestyle="none",
                        label=None if nofit_done else "does not fit (× at the board's SRAM)")
                nofit_done = True
                values.append(sram)
        ax.bar(xs, ys, width, color=BOARD_COLOURS[k % len(BOARD_COLOURS)],
               label=f"{board}: measured RAM" if xs else None, zorder=2)
        values += ys
    if acts:
        ax.plot(*zip(*acts), marker="_", markersize=70 * width, mew=2, color="black",
                linestyle="none", label="analytic act (exact model)", zorder=4)
        values += [a[1] for a in acts]
    pub = PUBLISHED.get(model)
    if pub:
        ppts = [(0, pub.vanilla_act), (1, pub.mcunetv2_kb * KB), (2, pub.streamnet_kb * KB),
                (3, pub.msfcnn_min_act)]
        ax.plot(*zip(*ppts), marker="D", color="#d4a017", markeredgecolor="black",
                linestyle="none", label="published (literature, analytic)", zorder=5)
        values += [p[1] for p in ppts]
    log = plots.wide_range(values)
    if log:
        ax.set_yscale("log")
    plots.bytes_axis(ax.yaxis, log)
    ax.set_xticks(range(len(methods)), methods)
    ax.set_ylabel(f"RAM (bytes{', log scale' if log else ''})")
    ax.set_title(f"RAM by plan and board: {model}\nmeasured = arena + stack + static, whole plan "
                 f"as one firmware; act excludes the network input and output", fontsize=10)
    ax.grid(axis="y", alpha=0.3, zorder=0)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def draw_scatter(fig: Any, rows: list[Row], models: list[str], boards: list[str]) -> None:
    """Measured RAM against instructions, one panel per model; colour = plan, marker = board."""
    measured_models = [n for n in models if any(r.model == n and r.ok for r in rows)]
    axes = fig.subplots(1, len(measured_models), squeeze=False)[0]
    for ax, n in zip(axes, measured_models):
        xs, ys = [], []
        for r in rows:
            if r.model != n or not r.ok:
                continue
            k = boards.index(r.board) if r.board in boards else 0
            x, y = r.measured["ram"], r.measured["instructions"]  # type: ignore[index]
            # Later plans and boards are drawn smaller on top, so equal figures stay visible.
            rank = list(METHODS).index(r.method) if r.method in METHODS else 2
            size = (150 - 20 * rank) * 0.75 ** k
            ax.scatter([x], [y], color=METHOD_COLOURS.get(r.method, "#333333"),
                       marker=BOARD_MARKERS[k % len(BOARD_MARKERS)], s=size, zorder=3,
                       edgecolors="black", linewidths=0.5)
            xs.append(x)
            ys.append(y)
        for axis, vals, name in ((ax.xaxis, xs, "x"), (ax.yaxis, ys, "y")):
            log = plots.wide_range(vals)
            if log:
                getattr(ax, f"set_{name}scale")("log")
            plots.bytes_axis(axis, log)
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_xlabel(RAM_LABEL)
        ax.set_ylabel(INSTRUCTIONS_LABEL)
        ax.set_title(n, fontsize=10)
        ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], marker="o", linestyle="none", color=c, label=m)
               for m, c in METHOD_COLOURS.items() if any(r.method == m and r.ok for r in rows)]
    handles += [Line2D([], [], marker=BOARD_MARKERS[k % len(BOARD_MARKERS)], linestyle="none",
                       color="#777777", label=b) for k, b in enumerate(boards)
                if any(r.board == b and r.ok for r in rows)]
    axes[-1].legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                    borderaxespad=0)
    fig.suptitle(SCATTER_TITLE, fontsize=11)


def fallback_bars(model: str, rows: list[Row], boards: list[str]) -> str:
    """Plain SVG (no matplotlib): one bar of measured RAM per plan and board, in the board's
    colour; a red label and a cross where the plan has no measurement."""
    bars = []
    for r in rows:
        if r.model != model:
            continue
        label = f"{r.method} @ {r.board}"
        ram = r.measured["ram"] if r.ok else None  # type: ignore[index]
        bars.append(plots.Bar(label, ram, _colour(boards, r.board),
                              f"{label}: {ram:,} B" if ram is not None
                              else f"{label}: {r.result_text()}"))
    notes = ["×: not measured (see msf-cnn.md)"] if any(b.value is None for b in bars) else []
    return plots.bars_svg(f"Measured RAM (bytes): {model}", bars, notes=notes) + "\n"


def scatter_chart(rows: list[Row], boards: list[str]) -> plots.Chart:
    """Measured RAM against instructions of every model in one chart (the plain SVG stand-in for
    `draw_scatter`'s panels): colour = plan, marker = board."""
    series: dict[tuple[str, str], plots.Series] = {}
    for r in rows:
        if not r.ok:
            continue
        k = boards.index(r.board) if r.board in boards else 0
        s = series.setdefault((r.method, r.board), plots.Series(
            f"{r.method} @ {r.board}", [], METHOD_COLOURS.get(r.method, "#333333"),
            BOARD_MARKERS[k % len(BOARD_MARKERS)], 7, edge="black"))
        x, y = r.measured["ram"], r.measured["instructions"]  # type: ignore[index]
        s.points.append((x, y))
        s.tips.append(f"{r.model} {r.method} @ {r.board}: {x:,} B, {y:,} instructions")
    xs = [x for s in series.values() for x, _ in s.points]
    ys = [y for s in series.values() for _, y in s.points]
    return plots.Chart(SCATTER_TITLE, RAM_LABEL, INSTRUCTIONS_LABEL, list(series.values()),
                       xlog=plots.wide_range(xs), ylog=plots.wide_range(ys), ybytes=True,
                       legend="upper left")
