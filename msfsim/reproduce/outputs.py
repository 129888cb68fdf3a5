"""The files of a reproduction, each written atomically: msf-cnn.md, msf-cnn.json and the
plots (PNG and SVG with matplotlib, SVG only without)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..fileio import write_atomic
from . import figures
from .plans import Row
from .tables import render_markdown



def write_outputs(data: dict[str, Any], out: Path) -> list[Path]:
    """msf-cnn.md, msf-cnn.json and the plots, each written atomically."""
    paths: list[Path] = []
    plots: dict[str, list[str]] = {}  # model (or "*"): the image files msf-cnn.md shows
    rows = [Row(**r) for r in data["rows"]]
    for key, stem, files in figures.figures(data, rows):
        for ext, content in files.items():
            paths.append(write_atomic(out / f"{stem}.{ext}", content))
        plots.setdefault(key, []).append(f"{stem}.{next(iter(files))}")  # the PNG, if any
    data["plots"] = {k: v for k, v in plots.items()}
    paths.insert(0, write_atomic(out / "msf-cnn.json", json.dumps(data, indent=1) + "\n"))
    paths.insert(0, write_atomic(out / "msf-cnn.md", render_markdown(data, plots)))
    return paths


def write_partial(data: dict[str, Any], out: Path) -> None:
    """msf-cnn.json and msf-cnn.md of the rows so far (no plots: they come at the end)."""
    write_atomic(out / "msf-cnn.json", json.dumps(data, indent=1) + "\n")
    write_atomic(out / "msf-cnn.md", render_markdown(data, {}))

