"""The text table of a search result (`msfsim search` without --json, the Robot log): the plan
and its blocks, the baselines and the front, each figure named with its convention."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .conventions import (F_DEFINITION, INSTRUCTIONS_RATIO, INSTRUCTIONS_RATIO_DEFINITION,
                          MEASURED_ACT_CONVENTION, MEMORY_CONVENTION, RAM_CONVENTIONS,
                          deployment_lines, describe_limits, point_basis, ram_convention)

if TYPE_CHECKING:
    from .result import MeasuredSearchResult, SearchResult
    from .summary import PlanSummary


def _n(v: float | None) -> str:
    return "—" if v is None else f"{int(v):,}"


def _r(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


MAX_FRONT_LINES = 40   # a longer front is printed as its first and last points


def _block_lines(r: SearchResult) -> list[str]:
    meas = r.measured_search
    head = f"{'#':>3} {'layers':>9} {'tile':>7} {'scheme':>9} "
    if meas:
        head += f"{'meas.act B':>10} "
    head += f"{'act B':>9} {'act_io B':>9} "
    if meas:
        head += f"{'measured B':>10} "
    head += f"{'MACs':>13}"
    if meas:
        head += f" {'instructions':>13}"
    lines = [head]
    for k, b in enumerate(r.plan.blocks):
        t = b.block.config.tile
        row = (f"{k:>3} {b.block.first:>4}-{b.block.last:<4} {t[0]:>3}x{t[1]:<3} "
               f"{b.block.config.scheme:>9} ")
        if meas:
            row += f"{_n(b.measured_act):>10} "
        row += f"{b.act:>9,} {b.act_io:>9,} "
        if meas:
            row += f"{_n(b.measured):>10} "
        row += f"{b.macs:>13,}"
        if meas:
            row += f" {_n(b.instructions):>13}"
        lines.append(row)
    if meas:
        lines.append("    (per block: meas.act and instructions of the block measured alone; "
                     "measured = its own firmware's arena + stack + static)")
    return lines


def _plan_figures(r: SearchResult, s: PlanSummary) -> str:
    """One plan's RAM and cost, in the search's convention first."""
    if r.measured_search:
        return (f"peak measured act {_n(s.measured_act)} B (act {s.act:,} B, act_io "
                f"{s.act_io:,} B), {s.macs:,} MACs, F {s.overhead:.3f}, "
                f"{_n(s.block_instructions)} instructions (blocks measured alone), "
                f"{_r(s.instructions_ratio)} {INSTRUCTIONS_RATIO}")
    return (f"peak act {s.act:,} B (act_io {s.act_io:,} B), {s.macs:,} MACs, "
            f"F {s.overhead:.3f}")


def _front_lines(r: SearchResult) -> list[str]:
    if not r.pareto:
        return []
    meas = r.measured_search
    chosen = r.chosen_index()
    bases = [point_basis(r.cost, p.measured) for p in r.pareto]
    counts = ", ".join(f"{bases.count(b)} {b}" for b in dict.fromkeys(bases))
    what = ("peak RAM in measured act (act beside), instructions = sum of the blocks "
            "measured alone" if meas else "peak RAM in act, cost in MACs (analytic)")
    lines = [f"pareto front: {len(r.pareto)} points ({counts}); {what}"]
    info = getattr(r, "measurement", {}).get("front") or {}
    if meas:
        lines.append(f"  ({front_note(info, bases)})")
    # --front: each front plan's own whole-model firmware (what `msfsim measure --plan` says)
    fw = {q["point"]: q["firmware"] for q in info.get("plans", []) if q.get("firmware")}
    head = "  " + (f"{'meas.act B':>10} " if meas else "") + f"{'act B':>9} {'MACs':>13} " \
        f"{'F':>6}" + (f" {'instructions':>13} {'x instr':>7}" if meas else "") + \
        (f" {'firmware instr':>14} {'firmware B':>10}" if fw else "") + "  basis"
    lines.append(head)
    idx = list(range(len(r.pareto)))
    if len(idx) > MAX_FRONT_LINES:
        half = MAX_FRONT_LINES // 2
        idx = idx[:half] + [-1] + idx[-half:]
    for k in idx:
        if k < 0:
            lines.append(f"  ... {len(r.pareto) - 2 * (MAX_FRONT_LINES // 2)} more points")
            continue
        p = r.pareto[k]
        row = "  " + (f"{_n(p.peak_ram_measured_act):>10} " if meas else "")
        row += f"{p.peak_ram_act:>9,} {p.macs:>13,} {p.overhead:>6.3f}"
        if meas:
            row += f" {_n(p.instructions):>13} {_r(p.instructions_ratio):>7}"
        if fw:
            f = fw.get(k) or {}
            row += f" {_n(f.get('instructions')):>14} {_n(f.get('measured_ram')):>10}"
        row += f"  {bases[k]}" + ("  <- chosen plan" if k == chosen else "")
        lines.append(row)
    if fw:
        lines.append("  (firmware instr, firmware B: each front plan built and run as one "
                     "firmware, as `msfsim measure --plan` does: instructions, arena + stack + "
                     "static; --json: measurement.front.plans holds each plan's blocks)")
    return lines


def front_state(front: dict, bases) -> str:
    """How a measured search's front was measured (JSON `measurement.front`, the bases of its
    points): "stable" (--front, every block measured), "bounded" (--front stopped at its round
    bound), "partial" (estimated points remain), or "measured"."""
    if front.get("complete"):
        return "stable" if front.get("stable") else "bounded"
    return "partial" if "estimate" in bases else "measured"


def front_note(front: dict, bases: list[str]) -> str:
    """What a measured search's front is: measured throughout (--front, stable), or with
    estimated points, and why."""
    rounds = front.get("rounds")
    state = front_state(front, bases)
    if state == "stable":
        return (f"--front: every block of every front plan measured; the front is stable after "
                f"{rounds} rounds of measuring and searching again")
    if state == "bounded":
        return (f"--front stopped at its bound of {front.get('max_rounds')} rounds: the points "
                f"marked estimate hold blocks not measured; their figures are estimates")
    if state == "partial":
        return ("estimate: a plan with blocks not measured, its figures estimated from the "
                "measured blocks; the chosen plan, the plans near it and the baselines are "
                "measured; --front measures every front plan")
    return "every front plan measured"


def format_search(r: SearchResult) -> str:
    """The text table of a search result: plan, blocks, baselines, front, conventions."""
    lines = [f"msfsim search: model {r.model}, platform {r.platform}, objective "
             f"{r.objective}, cost {r.cost} ({r.cost_model})"]
    lim = describe_limits(r.cost, r.constraints)
    if lim:
        lines.append("constraints: " + "; ".join(lim))
    conv = RAM_CONVENTIONS[ram_convention(r.cost)]
    lines.append(f"RAM convention: plan, baselines and front compared in {conv}"
                 + (" (analytic act beside it)" if r.measured_search else "")
                 + f"; {F_DEFINITION}"
                 + (f"; {INSTRUCTIONS_RATIO_DEFINITION}" if r.measured_search else ""))
    lines += _block_lines(r)
    p = r.plan
    lines.append(f"total: {len(p.blocks)} blocks, {_plan_figures(r, p)}")
    lines.append("baselines:")
    for name, s in r.baselines.items():
        if s is None:
            why = (f"not expressible under cost model {r.cost_model}"
                   if r.cost_model == "msfcnn" else "no plan of this kind fits the board")
            lines.append(f"  {name:<10} {why}")
        else:
            lines.append(f"  {name:<10} {_plan_figures(r, s)} ({len(s.blocks)} blocks)")
    lines += _front_lines(r)
    if r.search_seconds is not None:
        lines.append(f"search time: {r.search_seconds:.3f} s")
    lines.append(MEMORY_CONVENTION)
    if r.measured_search:
        lines.append(MEASURED_ACT_CONVENTION)
    lines += deployment_lines(r.input_in_place, r.wide_weights)
    return "\n".join(lines)


def format_measured(r: MeasuredSearchResult) -> str:
    """`format_search` and what the measured search measured: the whole-plan firmware, the
    measured act, the baselines' firmware and the candidates measured or dropped."""
    lines = [format_search(r)]
    m, p = r.measurement, r.plan
    w = m.get("plan_firmware", {})
    if p.instructions is not None:
        lines.append(f"measured (one whole-plan firmware, {r.backend}, {r.compiler}): "
                     f"{p.instructions:,} instructions, RAM {p.measured:,} B = arena "
                     f"{w.get('arena'):,} + stack {w.get('stack'):,} + static "
                     f"{w.get('static'):,}, flash {p.flash_bytes:,} B, output bit-exact "
                     f"with the host reference")
        lines.append(f"latency estimate: {p.latency_ms:.2f} ms (instructions / clock)")
    a = m.get("measured_act")
    if a:
        lines.append(f"measured act: {a['bytes']:,} B = worst block {a['block']} measured alone: "
                     f"arena {a['arena']:,} + stack {a['stack']:,} - network I/O "
                     f"{a['network_io']:,}")
    for name, s in r.baselines.items():
        if s is not None and s.instructions is not None:
            lines.append(f"  {name:<10} whole-plan firmware: {s.instructions:,} instructions, "
                         f"RAM {s.measured:,} B (measured)")
    st = m.get("stats", {})
    lines.append(f"candidates: {m.get('blocks_measured', 0)} blocks measured in "
                 f"{m.get('rounds', 0)} rounds ({st.get('measured', 0)} firmware built and "
                 f"run, {st.get('cache_hits', 0)} from the cache), "
                 f"{len(m.get('dropped', []))} dropped")
    for d in m.get("dropped", [])[:10]:
        lines.append(f"  dropped {d['block']}: {d['cause']}")
    return "\n".join(lines)
