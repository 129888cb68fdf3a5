"""The files of a sweep, each written atomically (temporary file + rename, msfsim.fileio):
sweep.csv and sweep.json (one row per model x board x constraint) and index.html, a table
linking each row's report (reports/<case>/index.html, msfsim.report)."""
from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Any

from ..fileio import write_atomic
from .cases import COLUMNS

FILES = ("sweep.csv", "sweep.json", "index.html")


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in COLUMNS})
    return buf.getvalue()


def _cell(key: str, value: Any) -> str:
    if value is None or value == "":
        return "<td></td>"
    if key == "report":
        return f'<td><a href="{html.escape(str(value))}">report</a></td>'
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    if isinstance(value, float):
        return f'<td class="n">{value:.4g}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _html(data: dict[str, Any]) -> str:
    keys = [k for k in COLUMNS if k not in ("objective",)]
    head = "".join(f"<th>{html.escape(k.replace('_', ' '))}</th>" for k in keys)
    body = "\n".join("<tr>" + "".join(_cell(k, r.get(k)) for k in keys) + "</tr>"
                     for r in data["rows"])
    partial = data.get("partial")
    state = (f"<p><b>In progress</b>: {partial['rows']} of {partial['of']} rows.</p>"
             if partial else "")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>msfsim sweep</title>
<style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:90%}}td.n{{text-align:right}}</style>
</head><body>
<h1>msfsim sweep</h1>
<p>{html.escape(data.get("command", ""))}</p>{state}
<p>objective {html.escape(str(data.get("objective")))}; latency is an estimate (instructions /
clock); measured RAM = arena + stack high-water + static of the whole-plan firmware; measured
act = the worst block measured alone, network input and output excluded; bit-exact: the
whole-plan firmware's output equals the host reference. A row that failed says why.</p>
<table><tr>{head}</tr>
{body}
</table></body></html>
"""


def write_outputs(data: dict[str, Any], out: Path) -> list[Path]:
    """sweep.csv, sweep.json and index.html of `data` (its "rows"), each atomically."""
    return [write_atomic(out / "sweep.csv", _csv(data["rows"])),
            write_atomic(out / "sweep.json", json.dumps(data, indent=1) + "\n"),
            write_atomic(out / "index.html", _html(data))]
