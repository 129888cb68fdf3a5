"""HTML report of a search: summary, block and baseline tables, RAM-per-block and Pareto plots.

Input is the DESIGN §7 JSON object, so a report can be regenerated from a saved `--json`
output. `write_report` adds a `report_context` entry (constraints, layer descriptions, board
sizes) taken from the live objects; `write_report_json` uses it when given no model or platform.

Output in `out_dir`: `index.html` (self-contained: inline CSS, plots as inline SVG),
`ram_per_block.{png,svg}`, `pareto.{png,svg}` and `result.json` (the data the page was made from).
The plots need matplotlib (extra `plots`); without it the page carries a small hand-made SVG
bar chart instead and no PNG is written.

Modules: `data` (reading the JSON: conventions, figures, labels, captions), `figures` (the
plots, drawn through the shared `msfsim.plots`) and `page` (the HTML).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import ops, plots
from ..fileio import write_atomic
from .data import (BASELINE_STYLE, BASELINES, CONVENTION_NAMES, CONVENTIONS, F_TEXT,
                   INSTR_RATIO_TEXT, SCHEMA, SCHEME_COLOURS, Json, block_label, block_ram,
                   conv_name, front_ram, latency_estimate, n_layers, network_io, pareto_axes,
                   pareto_caption, pareto_point, plan_peak, plot_convention, point_basis,
                   ram_convention, ram_plot_caption, upgrade)
from .figures import PLOTS, fallback_svg, figures, pareto_chart
from .page import FALLBACK_NOTE, render_html

__all__ = ["BASELINES", "BASELINE_STYLE", "CONVENTIONS", "CONVENTION_NAMES", "FALLBACK_NOTE",
           "F_TEXT", "INSTR_RATIO_TEXT", "PLOTS", "SCHEMA", "SCHEME_COLOURS", "block_label",
           "block_ram", "context", "conv_name", "front_ram", "latency_estimate", "n_layers",
           "network_io", "pareto_axes", "pareto_caption", "pareto_chart", "pareto_point",
           "plan_peak", "plot_convention", "point_basis", "ram_convention", "ram_plot_caption",
           "render_html", "upgrade", "write_report", "write_report_json"]


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
    figs = figures(data)
    if figs is None:
        svgs = {"ram_per_block": fallback_svg(data)}
        for name in PLOTS:  # images of an earlier report would no longer match the page
            for ext in ("png", "svg"):
                (out / f"{name}.{ext}").unlink(missing_ok=True)
    else:
        svgs = {}
        for name, (png, svg) in figs.items():
            write_atomic(out / f"{name}.png", png)
            write_atomic(out / f"{name}.svg", svg)
            svgs[name] = plots.inline_svg(svg.decode(), name)
    write_atomic(out / "result.json", json.dumps(data, indent=1) + "\n")
    index = out / "index.html"
    write_atomic(index, render_html(data, svgs, have_png=figs is not None))
    return index


def context(model: Any = None, platform: Any = None, constraints: dict | None = None,
            search_seconds: float | None = None) -> Json:
    """What the page needs from the live objects, as plain JSON."""
    ctx: Json = {"constraints": dict(constraints or {}), "search_seconds": search_seconds}
    if model is not None:
        ctx["model_layers"] = [
            {"index": layer.index, "name": layer.name, "op": getattr(layer.op, "value", layer.op),
             "kernel": list(layer.kernel), "stride": list(layer.stride),
             "windowed": ops.get(layer.op).windowed,
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

