"""Moved: `msfsim run` is the pipeline's (msfsim.pipeline.runner); kept for old imports."""
from msfsim.pipeline.runner import HOST, backend_names, run  # noqa: F401
