"""Moved: the measured search is the pipeline's (msfsim.pipeline.measured_search), since it
drives code generation and measurement, which msfsim.search (pure: weights in, plans out) never
imports. Kept for old imports (benchmarks/measured_search.py); resolved when first used, so
that search itself depends on nothing above it."""
from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    return getattr(importlib.import_module("msfsim.pipeline.measured_search"), name)
