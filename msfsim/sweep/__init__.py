"""`msfsim sweep`: measured searches of many models x boards (x constraints) as one batch.

All cases share one measurement session (msfsim.measure.MeasureSession): one cache, one dedupe
of identical firmware, one executor (the local pool, or the Dask cluster of --scheduler) and
ONE progress bar over every firmware of every case, its total projected from the start
(msfsim.pipeline.progress). The outputs (sweep.csv, sweep.json, index.html linking each row's
HTML report under reports/) are rewritten atomically after each row, marked partial until the
last; a rerun measures only what is missing (the measurement cache serves the rest).

A model that cannot be imported, a board where nothing fits ("no plan") or a failed search is a
row with its error; the sweep goes on and exits 0 (rows marked); bad arguments exit 2; a tool
missing on a cluster worker (or a worker with another msfsim version) stops it with exit 4.

Modules: `cases` (the cases, the rows and their columns), `run` (the driver), `outputs` (the
files).
"""
from .cases import BASELINES, COLUMNS, Case, Row, expand
from .outputs import FILES, write_outputs
from .run import sweep

__all__ = ["BASELINES", "COLUMNS", "Case", "FILES", "Row", "expand", "sweep", "write_outputs"]
