"""The report's reading of a search's JSON (DESIGN §7): schema upgrade, RAM conventions, plan
and front figures, labels and captions; shared by the page and the plots."""
from __future__ import annotations

import copy
from typing import Any

from msfsim.search.table import front_state

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

Json = dict[str, Any]


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
    base = [name for name, s in baseline_plans(data) if plan_blocks_ram(s, conv) is not None]
    text += "), the plan's peak (solid line)"
    if base:
        text += " and the baselines' per-block RAM (steps) and peaks (dashed)"
    return text + "."


def plan_blocks_ram(summary: Json, conv: str) -> list[int] | None:
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


def baseline_plans(data: Json) -> list[tuple[str, Json]]:
    return [(k, v) for k, v in (data.get("baselines") or {}).items() if v]


def fmt_int(v: Any) -> str:
    return "—" if v is None else f"{int(v):,}"


def fmt_float(v: Any, digits: int = 4) -> str:
    return "—" if v is None else f"{float(v):.{digits}f}"


def title_bits(data: Json) -> tuple[str, str]:
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


def cost_text(data: Json) -> str:
    if data["cost"] == "measured":
        return (f"measured costs (backend {data.get('backend') or '?'}, compiler "
                f"{data.get('compiler') or '?'}; candidate space of cost model "
                f"{data['cost_model']})")
    return f"analytic costs (cost model {data['cost_model']}: bytes and MACs, not measured)"


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


def front_story(data: Json, bases: set[str]) -> str:
    """How a search's front was measured (JSON `measurement.front`)."""
    if data.get("cost") != "measured":
        return "Points of the analytic cost model: nothing was measured"
    front = (data.get("measurement") or {}).get("front") or {}
    state = front_state(front, bases)
    if state == "stable":
        return (f"Every block of every front plan was measured (--front): the front is stable "
                f"after {front.get('rounds')} rounds of measuring and searching again, and each "
                f"front plan was also built and run as one firmware")
    if state == "bounded":
        return (f"--front stopped at its bound of {front.get('max_rounds')} rounds: the "
                f"estimated points hold blocks not measured yet")
    if state == "partial":
        return ("The chosen plan, the plans near it and the baselines were measured; the "
                "estimated points were not (--front measures every front plan)")
    return "Every front plan was measured"


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
        if "estimate" in bases:  # as drawn by report.figures.pareto_chart
            marks += ("; hollow markers and dashed stretches: estimates (plans with blocks not "
                      "measured, their figures estimated from the measured blocks)")
        marks += ". " + front_story(data, bases)
    return (f"Pareto front of peak RAM ({name} convention) against {cost}; {marks}. The chosen "
            f"plan (star) and the baselines (labelled points) are drawn in the same convention.")

