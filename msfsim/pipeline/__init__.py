"""The pipeline: the one place that drives import -> deploy -> candidate space -> search ->
measure -> result. The faces (msfsim.cli, msfsim.robotlib) call it; the stages below it
(importers, fusion, search, codegen, measure, sim) never call each other around it.

- `stages`: the entry points of the faces (load, deploy, search, emit, report, run, ...)
- `measured_search`: the loop between the pure search on weights and the measurement engine
- `plan`: a whole plan as one firmware, and `msfsim measure`
- `runner`: `msfsim run`, a plan on a user's input
"""
from ..measure import measurement_input
from .measured_search import search_estimate, search_measured
from .plan import (PlanMeasurement, measure_blocks, measure_plan, plan_blocks, plan_item,
                   plan_peaks)
from .runner import run
from .stages import (backend_available, backend_names, backend_version, plan_json,
                     reference_output, check_emit_target, check_scheduler, default_backend, deployed,
                     describe_platforms, doctor, emit_project, load_model, load_platform, open_session,
                     scheduler_address, search, tflm_arena,
                     write_report, zoo_export, zoo_models, zoo_names)

__all__ = ["backend_available", "backend_version", "plan_json", "reference_output",
           "measurement_input", "plan_peaks", "search_estimate", "search_measured", "PlanMeasurement", "measure_blocks", "measure_plan",
           "plan_blocks", "plan_item", "run", "backend_names", "check_emit_target", "check_scheduler",
           "default_backend", "deployed", "describe_platforms", "doctor", "emit_project",
           "load_model", "load_platform", "open_session", "scheduler_address", "search", "tflm_arena", "write_report", "zoo_export", "zoo_models",
           "zoo_names"]
