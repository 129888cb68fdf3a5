"""`msfsim reproduce msf-cnn`: the msf-CNN comparison rebuilt without a board.

For each model and board, five plans are compared: layer by layer (vanilla), an MCUNetV2-style
and a StreamNet-style head block, msf-CNN's own minimum-RAM plan (its cost model and space) and
msfsim's measured minimum-RAM plan. Every plan gets its analytic figures (exact model, and
msf-CNN's model where the plan is expressible in it) and is then built as one firmware and run
in the emulator: instructions, RAM (arena + stack + static), flash, bit-exact output. A plan
that does not fit a board is a row saying why. The figures msf-CNN published are shown beside
ours, labelled as literature values, with the ratio ours / published where the two measure the
same thing.

Output in `out_dir` (each file written atomically): `msf-cnn.md`, `msf-cnn.json` and the
plots `ram_<model>.{png,svg}` (RAM by method and board) and `ram_vs_instructions.{png,svg}`
(SVG only, simplified, without matplotlib).

The run shows one progress bar over its rows (models x boards x plans, with an ETA; the
searches and measurers inside it show none). After each model on each board, msf-cnn.md and
msf-cnn.json are rewritten with the rows so far, marked partial (`"partial": {"rows", "of"}`;
no plots yet), so an interrupted run leaves what it completed; a rerun redoes the rows from the
measurement cache and goes on where the interrupted run stopped. The finished files are the
same as without the partial writes.

Modules: `published` (msf-CNN's figures, with their source: literature values), `plans` (what
is run: models, boards, the five plans, one row per plan and board), `run` (the entry point,
the progress bar, the rows written as they complete), `tables` (the comparison, Markdown and
the stdout table), `figures` (the plots, through the shared `msfsim.plots`) and `outputs` (the
files, each written atomically).
"""
from __future__ import annotations

from .outputs import write_outputs
from .plans import BOARDS, METHODS, MODELS, WHAT, Row
from .published import KB, LATENCY_BOARD, PUBLISHED, PUBLISHED_NOTE, PUBLISHED_SLOWDOWN, Published
from .run import reproduce
from .tables import CONVENTION_LINES, render_markdown, summary_table

__all__ = ["BOARDS", "CONVENTION_LINES", "KB", "LATENCY_BOARD", "METHODS", "MODELS", "PUBLISHED",
           "PUBLISHED_NOTE", "PUBLISHED_SLOWDOWN", "Published", "Row", "WHAT", "render_markdown",
           "reproduce", "summary_table", "write_outputs"]
