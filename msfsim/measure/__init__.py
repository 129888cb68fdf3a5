"""The measurement engine, once: picklable jobs (`Job`, `measure_job`), the persistent cache
(`MeasurementCache`), executors (`LocalPoolExecutor`, and `DaskExecutor` for a cluster, behind
the `Executor` interface), the `MeasureSession` that a run's measurers share (cache, executor,
dedupe, one progress bar), the `Measurer` that feeds jobs to them, and `whole_plan_error`, the one rule that turns a whole-plan
firmware's outcome into the user's error. `firmware` builds and runs one firmware directly.

It compiles and runs generated code; it does not search and does not generate code (the
pipeline hands it `GeneratedCode`).
"""
from .cache import MeasurementCache, make_key
from .executor import Executor, LocalPoolExecutor
from .firmware import build_firmware, firmware_sources, measure_elf, measure_generated
from .jobs import (BASE_BUDGET, CACHED_STATUSES, DEFAULT_TIMEOUT_S, INPUT_SEED,
                   INSTRUCTIONS_PER_WORK, Job, measure_job, measurement_input, output_digest,
                   plan_budget, valid_row)
from .measurer import Item, Measurer, Stats
from .outcome import Outcome, whole_plan_error
from .session import MeasureSession, executor_for, scheduler_address

__all__ = ["MeasurementCache", "make_key", "Executor", "LocalPoolExecutor", "build_firmware",
           "firmware_sources", "measure_elf", "measure_generated", "BASE_BUDGET",
           "CACHED_STATUSES", "DEFAULT_TIMEOUT_S", "INPUT_SEED", "INSTRUCTIONS_PER_WORK", "Job",
           "measure_job", "measurement_input", "output_digest", "plan_budget", "valid_row",
           "Item", "Measurer", "Stats", "Outcome", "whole_plan_error", "MeasureSession",
           "executor_for", "scheduler_address"]
