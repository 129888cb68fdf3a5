"""The reproduction as text: ours beside the published figures, the Markdown document and the
short table printed on stdout."""
from __future__ import annotations

from typing import Any

from .plans import Row
from .published import KB, LATENCY_BOARD, PUBLISHED, PUBLISHED_SLOWDOWN

INSTR_RATIO = "x instr vs layer-by-layer"  # as msfsim.search.result names it; F is MACs
CONVENTION_LINES = (
    "act (B): block buffers + block input + block output + live skip tensors, network input "
    "and output excluded (msf-CNN convention, comparable with the published figures); the "
    "plan's figure is the maximum over its blocks.",
    "act_io (B): act with the network input and output buffers counted.",
    "measured RAM (B): arena high-water + stack high-water + static RAM (.data + .bss), from "
    "the emulator, for the whole plan built as one firmware; this is what must fit the board.",
    f"F: MACs / layer-by-layer MACs under the same cost model; {INSTR_RATIO}: instructions / "
    "layer-by-layer instructions, each plan built as one firmware on the same board.",
    "latency: an estimate, instructions / clock (one instruction per cycle), not a board "
    "measurement.",
)


def find(rows: list[Row], model: str, method: str, board: str | None = None) -> Row | None:
    return next((r for r in rows if r.model == model and r.method == method
                 and (board is None or r.board == board)), None)


def _analytic_row(rows: list[Row], model: str, method: str) -> Row | None:
    """Any row of a board-independent plan (its analytic figures are the same on every board)."""
    return next((r for r in rows if r.model == model and r.method == method and r.analytic), None)


def comparison(model: str, rows: list[Row]) -> list[dict[str, Any]]:
    """Ours beside the published figures; the ratio only where both measure the same thing."""
    pub = PUBLISHED[model]
    out: list[dict[str, Any]] = []

    def add(quantity: str, published: Any, ours: Any, how: str, ratio: bool = True) -> None:
        r = (ours / published if ratio and isinstance(published, (int, float)) and ours is not None
             else None)
        out.append({"quantity": quantity, "published": published, "ours": ours, "ratio": r,
                    "ours_from": how})

    def msf(method: str, key: str) -> Any:
        r = _analytic_row(rows, model, method)
        return r.analytic["msfcnn"][key] if r and r.analytic and r.analytic["msfcnn"] else None

    def ex(method: str, key: str) -> Any:
        r = _analytic_row(rows, model, method)
        return r.analytic[key] if r and r.analytic else None

    add("layer-by-layer peak RAM, analytic (B)", pub.vanilla_act, msf("vanilla", "act"),
        "msf-CNN's cost model, act")
    add("msf-CNN minimum peak RAM, analytic (B)", pub.msfcnn_min_act, msf("msf-cnn", "act"),
        "msf-CNN's cost model and space, act")
    add("msf-CNN overhead F at that minimum", pub.msfcnn_overhead, msf("msf-cnn", "overhead"),
        "msf-CNN's cost model (MACs / layer-by-layer MACs)")
    add("msf-CNN minimum-RAM plan, compiled workspace (B)", pub.workspace, ex("msf-cnn", "act"),
        "what msfsim's generated code allocates for the same plan, network input and output "
        "excluded (exact act)")
    add("MCUNetV2 peak RAM (B)", pub.mcunetv2_kb * KB, ex("mcunetv2", "act"),
        "msfsim's MCUNetV2-style plan, exact act (head chosen for the lowest act)")
    add("StreamNet peak RAM (B)", pub.streamnet_kb * KB, ex("streamnet", "act"),
        "msfsim's StreamNet-style plan, exact act (head chosen for the lowest act)")
    r = find(rows, model, "msf-cnn", LATENCY_BOARD)
    lat = r.measured["latency_ms_estimate"] if r and r.ok else None
    why = "" if lat is not None else (f" (not measured: {r.result_text()})" if r else
                                      f" (board {LATENCY_BOARD} not in this run)")
    add("msf-CNN minimum-RAM plan latency on STM32F767 (ms)", pub.stm32f767_ms, lat,
        f"estimate on {LATENCY_BOARD}: emulated instructions / 216 MHz, msfsim's kernels{why}")
    slow = r.measured["instructions_ratio"] if r and r.ok else None
    add("msf-CNN minimum-RAM plan slowdown vs layer by layer",
        f"{PUBLISHED_SLOWDOWN[0]}-{PUBLISHED_SLOWDOWN[1]} (range over the three models)", slow,
        f"measured instructions / layer-by-layer instructions on {LATENCY_BOARD}{why}",
        ratio=False)
    return out


# ---------------------------------------------------------------------------- text

def _i(v: Any) -> str:
    return "—" if v is None else f"{int(v):,}"


def _f(v: Any, digits: int = 3) -> str:
    return "—" if v is None else f"{float(v):,.{digits}f}"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in rows]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(r) + " |" for r in esc])


def _method_label(r: Row, per_board: bool) -> str:
    return f"{r.method} ({r.board})" if per_board else r.method


def _analytic_table(rows: list[Row]) -> str:
    """One line per board-independent plan, one per board for msfsim's measured plan."""
    lines, seen = [], set()
    for r in rows:
        key = (r.method, r.board if r.method == "msfsim" else "")
        if key in seen:
            continue
        seen.add(key)
        a = r.analytic
        if a is None:
            lines.append([_method_label(r, r.method == "msfsim"), "—", "—", "—", "—", "—",
                          "—", "—", f"{r.status}: {r.reason}"])
            continue
        m = a["msfcnn"]
        lines.append([_method_label(r, r.method == "msfsim"), str(len(r.blocks)), _i(a["act"]),
                      _i(a["act_io"]), _i(m["act"]) if m else "not expressible",
                      _i(a["macs"]), _f(a["overhead"]), _f(m["overhead"]) if m else "—", ""])
    return _md_table(["plan", "blocks", "act B", "act_io B", "act B (msf-CNN model)", "MACs",
                      "F", "F (msf-CNN model)", "note"], lines)


def _measured_table(rows: list[Row]) -> str:
    lines = []
    for r in rows:
        m = r.measured
        if m is None:
            lines.append([r.board, r.method] + ["—"] * 6 + [r.result_text()])
            continue
        lines.append([r.board, r.method, _i(m["instructions"]),
                      f"{m['ram']:,} = {m['arena']:,} + {m['stack']:,} + {m['static']:,}",
                      _f(m["latency_ms_estimate"], 1), _i(m["flash_bytes"]),
                      _f(m["instructions_ratio"]), "yes" if m["bit_exact"] else "NO",
                      "" if m["bit_exact"] else r.reason])
    return _md_table(["board", "plan", "instructions", "RAM B = arena + stack + static",
                      "latency estimate ms", "flash B", INSTR_RATIO, "bit-exact", "note"],
                     lines)


def _comparison_table(comp: list[dict[str, Any]]) -> str:
    def num(v: Any) -> str:
        if v is None:
            return "—"
        if isinstance(v, str):
            return v
        return f"{v:,}" if isinstance(v, int) else f"{v:,.3f}" if v < 100 else f"{v:,.1f}"
    return _md_table(["quantity", "published", "ours", "ours / published", "ours from"],
                     [[c["quantity"], num(c["published"]), num(c["ours"]),
                       _f(c["ratio"]), c["ours_from"]] for c in comp])


def _published_table() -> str:
    return _md_table(
        ["model (published)", "layer by layer B", "msf-CNN min B", "F", "workspace B",
         "MCUNetV2 kB", "StreamNet kB", "STM32F767 ms"],
        [[n, _i(p.vanilla_act), _i(p.msfcnn_min_act), f"{p.msfcnn_overhead:.2f}",
          _i(p.workspace), str(p.mcunetv2_kb), str(p.streamnet_kb), f"{p.stm32f767_ms:,.1f}"]
         for n, p in PUBLISHED.items()])


def render_markdown(data: dict[str, Any], plots: dict[str, list[str]]) -> str:
    rows = [Row(**r) for r in data["rows"]]
    info = data["board_info"]
    out = ["# msf-CNN comparison, reproduced without a board", "",
           f"Command: `{data['command']}` — msfsim {data['msfsim_version']}, backend "
           f"{data['backend']}" + (f" ({data['backend_version']})" if data["backend_version"]
                                   else "") + f", Python {data['python']}; wall time "
           f"{data['wall_seconds']:,.1f} s.", ""]
    if data.get("partial"):
        done, total = data["partial"]["rows"], data["partial"]["of"]
        out += [f"**Partial: {done} of {total} rows.** The run is in progress or was "
                f"interrupted; rerun the command to complete it (the measurement cache serves "
                f"what was already measured). Plots are written when the run completes.", ""]
    out += ["Boards:"]
    for b in data["boards"]:
        i = info.get(b, {})
        if not i:
            out.append(f"- {b}: not measured yet")
            continue
        if "skipped" in i:
            out.append(f"- {b}: skipped — {i['skipped']}")
            continue
        wp = i["whole_plans"]
        out.append(f"- {i['label']}: {i['sram']:,} B SRAM, {i['flash']:,} B flash, "
                   f"{i['clock_hz'] / 1e6:g} MHz; compiler {i['compiler']}; whole-plan "
                   f"firmware: {wp['measured']} built and run, {wp['cache_hits']} from the cache")
    out += ["", "## Memory convention", ""] + [f"- {c}" for c in data["conventions"]]
    out += [f"- {data['published_note']}.", f"- Measurement input: {data['measurement_input']}.",
            "", "## Plans", ""] + [f"- **{k}**: {v}" for k, v in data["methods"].items()]
    out += ["", "## Published figures (literature values, not measured here)", "",
            _published_table(), "",
            f"msf-CNN also reported its minimum-RAM plans {PUBLISHED_SLOWDOWN[0]}–"
            f"{PUBLISHED_SLOWDOWN[1]}× slower than its own layer-by-layer build (published)."]
    for n in data["models"]:
        mrows = [r for r in rows if r.model == n]
        out += ["", f"## {n}", "", "### Analytic (bytes and MACs, not measured)", "",
                _analytic_table(mrows) if mrows else "(no board measured)", "",
                "### Measured (whole plan as one firmware, emulated)", "",
                _measured_table(mrows) if mrows else "(no board measured)"]
        if n in data["comparison"]:
            out += ["", "### Ours beside the published figures", "",
                    _comparison_table(data["comparison"][n])]
        for f in plots.get(n, []):
            out += ["", f"![RAM by plan and board: {n}]({f})"]
    for f in plots.get("*", []):
        out += ["", f"![measured RAM vs instructions]({f})"]
    return "\n".join(out) + "\n"


def summary_table(data: dict[str, Any]) -> str:
    """The short stdout version: one line per model, board and plan."""
    lines = []
    for r in data["rows"]:
        m = r["measured"]
        act = r["analytic"]["act"] if r["analytic"] else None
        res = (("bit-exact" if m["bit_exact"] else "OUTPUT DIFFERS") if m
               else f"{r['status']}: {r['reason']}")
        lines.append([r["model"], r["board"], r["method"], _i(act), _i(m and m["ram"]),
                      _i(m and m["instructions"]),
                      _f(m and m["latency_ms_estimate"], 1), res])
    skipped = [f"{b}: skipped — {i['skipped']}" for b, i in data["board_info"].items()
               if "skipped" in i]
    return "\n".join([_md_table(["model", "board", "plan", "act B", "measured RAM B",
                                 "instructions", "est. ms", "result"], lines), *skipped])

