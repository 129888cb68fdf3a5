"""The report page: summary, block, baseline and front tables around the inline plots."""
from __future__ import annotations

import html
from typing import Iterable

from .. import __version__
from .data import (BASELINES, CONVENTIONS, F_TEXT, INSTR_RATIO_TEXT, Json, block_label,
                   block_ram, conv_name, cost_text, fmt_float, fmt_int, front_story,
                   latency_estimate, n_layers, pareto_caption, plan_peak, plot_convention,
                   point_basis, ram_plot_caption, title_bits, upgrade)

FALLBACK_NOTE = ("The PNG files and the full plots need matplotlib (pip install "
                 "'msfsim[plots]'); this page shows a simplified chart of RAM per block.")
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
.sub{color:#555;margin-top:0}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.peak td{font-weight:bold}tr.estimate td{font-style:italic;color:#666}
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
        "act": [("peak RAM act (B)", False), (fmt_int(plan_peak(data, "act")), True)],
        "measured_act": [("peak RAM measured act (B; blocks measured alone)", False),
                         (fmt_int(plan_peak(data, "measured_act")), True)]}
    order = [conv] + [c for c in ram_rows if c != conv]
    rows = [ram_rows[c] for c in order]
    rows += [[("peak RAM act_io (B)", False), (fmt_int(peak["act_io"]), True)],
             [("peak RAM measured, whole-plan firmware (B)", False),
              (fmt_int(peak["measured"]), True)],
             [("MACs", False), (fmt_int(data["macs"]), True)],
             [(F_TEXT, False), (fmt_float(data["overhead"]), True)],
             [(INSTR_RATIO_TEXT, False), (fmt_float(data.get("instructions_ratio")), True)],
             [("instructions, blocks measured alone", False),
              (fmt_int(data.get("block_instructions")), True)],
             [("instructions, whole-plan firmware", False),
              (fmt_int(data.get("instructions")), True)],
             [(how, False), (fmt_float(ms, 3), True)],
             [("flash (B)", False), (fmt_int(data.get("flash_bytes")), True)],
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
        if layer.get("windowed", layer["op"] in ("conv", "dwconv", "maxpool", "avgpool")):
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
                     (fmt_int(b["ram"]["act"]), True), (fmt_int(b["ram"]["act_io"]), True),
                     (fmt_int(b["ram"].get("measured_act")), True),
                     (fmt_int(b["ram"]["measured"]), True), (fmt_int(b["macs"]), True),
                     (fmt_int(b.get("instructions")), True),
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
                     (fmt_int(plan_peak(s, "act")), True),
                     (fmt_int(plan_peak(s, "act_io")), True),
                     (fmt_int(plan_peak(s, "measured_act")), True),
                     (fmt_int(plan_peak(s, "measured")), True), (fmt_int(s["macs"]), True),
                     (fmt_float(s["overhead"]), True),
                     (fmt_float(s.get("instructions_ratio")), True),
                     (fmt_int(s.get("instructions")), True),
                     (fmt_float(ms, 3), True)])
    return rows


FIRMWARE_HEADER = ["instructions (the plan as one firmware)",
                   "measured B (the plan as one firmware)"]


def front_firmware(data: Json) -> dict[int, Json]:
    """--front: each front point's whole-model firmware figures, by point index."""
    front = (data.get("measurement") or {}).get("front") or {}
    return {q["point"]: q["firmware"] for q in front.get("plans") or [] if q.get("firmware")}


def _pareto_rows(data: Json) -> list[list[tuple[str, bool]]]:
    fw = front_firmware(data)
    rows = []
    for k, p in enumerate(data["pareto"]):
        row = [(fmt_int(p.get("peak_ram_measured_act")), True),
               (fmt_int(p.get("peak_ram_act")), True), (fmt_int(p["macs"]), True),
               (fmt_float(p.get("overhead")), True), (fmt_int(p.get("instructions")), True),
               (fmt_float(p.get("instructions_ratio")), True), (point_basis(data, p), False),
               ("yes" if p.get("chosen") else "", False)]
        if fw:
            f = fw.get(k) or {}
            row += [(fmt_int(f.get("instructions")), True), (fmt_int(f.get("measured_ram")), True)]
        rows.append(row)
    return rows


def _pareto_classes(data: Json) -> list[str]:
    return [point_basis(data, p) for p in data["pareto"]]


def render_html(data: Json, svgs: dict[str, str], have_png: bool = True) -> str:
    """The report page for `data` with the given inline SVG plots."""
    data = upgrade(data)
    ctx = data.get("report_context", {})
    plat, goal = title_bits(data)
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
        f"{esc(cost_text(data)[0].upper() + cost_text(data)[1:])}. RAM figures compared in "
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
        bases = [point_basis(data, p) for p in data["pareto"]]
        counts = ", ".join(f"{bases.count(b)} {b}" for b in dict.fromkeys(bases))
        parts += ["<h2>Pareto front</h2>",
                  f'<p id="front-story">{len(bases)} points ({esc(counts)}). '
                  f"{esc(front_story(data, set(bases)))}.</p>",
                  _table("pareto", PARETO_HEADER + (FIRMWARE_HEADER if front_firmware(data)
                                                    else []),
                         _pareto_rows(data), _pareto_classes(data))]
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
              f"<p>Costs: {esc(cost_text(data))}. Backend: "
              f"{esc(str(data.get('backend') or 'none'))}; compiler: "
              f"{esc(str(data.get('compiler') or 'none'))}."
              + (f" Search time {seconds:.2f} s." if seconds is not None else "")
              + f" Generated by msfsim {esc(__version__)}; data in "
              '<a href="result.json">result.json</a>.</p></footer>',
              "</body></html>"]
    return "\n".join(parts) + "\n"

