"""The stages a face (msfsim.cli, msfsim.robotlib) drives, in the pipeline's order:
import -> deploy -> candidate space -> search (analytic, or measured) -> measure -> result,
and what is done with a result (a C project, a report, a run on an input). The faces call
these and nothing else of msfsim's stages."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import MsfsimError, platforms
from ..ir import Model
from ..platforms import Platform
from ..search.api import search_analytic
from ..search.result import SearchResult
from ..toolchain import MIN_STACK_BYTES
from .measured_search import search_measured

COSTS = ("measured", "analytic")


def load_platform(name: str) -> Platform:
    return platforms.load(name)


def zoo_names() -> tuple[str, ...]:
    from .. import zoo
    return tuple(zoo.NAMES)


def zoo_models() -> list[tuple[str, str, tuple[int, ...], int]]:
    """The bundled models: (name, description, input shape, layers)."""
    from .. import zoo
    return zoo.list_models()


def zoo_export(name: str, path: str | Path, qdq: bool = False) -> None:
    """Write the bundled model `name` as an ONNX file (float, or QDQ int8)."""
    from .. import zoo
    zoo.export(name, path, qdq=qdq)


def load_model(spec: str, input_shape: str | None = None) -> Model:
    """MODEL argument: a path to an .onnx or int8 .tflite file, or zoo:NAME."""
    if spec.startswith("zoo:"):
        from .. import zoo
        name = spec[4:]
        if name not in zoo.NAMES:
            raise MsfsimError(f"unknown zoo model {name!r}; available: {', '.join(zoo.NAMES)}")
        if input_shape:
            raise MsfsimError("--input-shape applies to ONNX files, not to zoo models")
        return zoo.load(name)
    if spec.lower().endswith(".tflite"):
        if input_shape:
            raise MsfsimError("--input-shape applies to ONNX files, not to .tflite models "
                              "(their shapes are static)")
        from ..importers.tflite import import_tflite
        return import_tflite(spec)
    from ..importers.onnx import import_model
    return import_model(spec, input_shape=input_shape)


def tflm_arena(spec: str) -> int | None:
    """For a .tflite MODEL: the tensor arena TensorFlow Lite Micro's interpreter allocates for
    it (None for other models, or when tflite_micro is not installed). Call it after the model
    imported: only files msfsim accepted reach TFLM."""
    if not spec.lower().endswith(".tflite"):
        return None
    from ..importers.tflite import tflm_arena_bytes
    return tflm_arena_bytes(spec)


def deployed(model: Model, plat: Platform, input_in_place: bool | None = None,
             weights: str = "auto") -> Model:
    """The model as deployed on the board (msfsim.deploy): network input read in place or
    copied into the arena (default from the board file), weights pre-widened where the board's
    DSP loops gain and its flash allows (`weights="auto"`)."""
    from ..deploy import deploy
    return deploy(model, plat, input_in_place, wide=weights == "auto")


def search(model: Model, plat: Platform, *, cost: str = "measured", objective: str = "ram",
           max_overhead: float | None = None, max_ram: int | None = None,
           cost_model: str = "exact", backend: str = "unicorn", jobs: int | None = None,
           cache_dir: str | Path | None = None, compiler: str | None = None,
           progress: bool | None = None, session: Any = None) -> SearchResult:
    """The plan of `model` (deployed) for `plat`: on measured costs (candidate blocks compiled
    and emulated) or on the analytic model; the board's SRAM caps the RAM either way.
    `session` (`open_session`): where measurements run (local pool or Dask) and are cached."""
    if cost == "measured":
        return search_measured(model, plat, objective=objective, max_overhead=max_overhead,
                               max_ram=max_ram, cost_model=cost_model, backend=backend,
                               jobs=jobs, cache_dir=cache_dir, compiler=compiler,
                               progress=progress, session=session)
    if cost != "analytic":
        raise ValueError(f"unknown cost {cost!r}; expected one of {COSTS}")
    return search_analytic(model, plat.name, objective=objective, max_overhead=max_overhead,
                           max_ram=max_ram, cost_model=cost_model, sram_bytes=plat.sram.size,
                           stack_floor=MIN_STACK_BYTES)


def open_session(cache_dir: str | Path | None = None, jobs: int | None = None,
                 progress: bool | None = None, scheduler: str | None = None) -> Any:
    """The measurements of one run (msfsim.measure.MeasureSession: cache, one progress bar,
    and the one decision of where jobs run: the Dask cluster at `scheduler` or
    $MSFSIM_SCHEDULER, else a local pool of `jobs` workers). Use it as a context manager."""
    from ..measure import MeasureSession
    return MeasureSession(cache_dir, jobs, progress, scheduler=scheduler)


def scheduler_address(scheduler: str | None) -> str | None:
    """The Dask scheduler a run uses: `scheduler`, else $MSFSIM_SCHEDULER, else None."""
    from ..measure import scheduler_address as address
    return address(scheduler)


def check_scheduler(scheduler: str | None) -> str | None:
    """The Dask scheduler a run is to use (`scheduler`, else $MSFSIM_SCHEDULER), checked before
    any work: a malformed address is exit 2, Dask not installed exit 4. None: local."""
    from ..measure.dask_executor import _distributed, check_address
    address = scheduler_address(scheduler)
    if address is not None:
        check_address(address)
        _distributed()
    return address


def check_emit_target(out_dir: str | Path, plat: Platform, prefix: str) -> None:
    from ..codegen.project import check_target
    check_target(out_dir, plat, prefix)


def emit_project(model: Model, plat: Platform, result: SearchResult, out_dir: str | Path,
                 prefix: str) -> Path:
    from ..codegen.project import emit_project as emit
    return emit(model, plat, result, out_dir, prefix)


def write_report(model: Model, plat: Platform, result: SearchResult, out_dir: str | Path) -> Any:
    from ..report import write_report as write
    return write(model, plat, result, out_dir)


def backend_names() -> tuple[str, ...]:
    from ..sim import backend_names as names
    return tuple(names())


def default_backend() -> str:
    from ..sim import default_backend as default
    return default()


def backend_available(backend: str, plat: Platform) -> tuple[bool, str]:
    """Whether `backend` can run `plat` here, and why not."""
    from ..sim import backend_available as available
    return available(backend, plat)


def backend_version(backend: str, plat: Platform | None = None) -> str:
    """The version of the emulator `backend` runs `plat` with (counts depend on it)."""
    from ..sim import backend_version as version
    return version(backend, plat)


def reference_output(model: Model, x: Any) -> Any:
    """The host reference's output (msfsim.refmodel) on the int8 input `x`."""
    from .. import refmodel
    return refmodel.run(model, x)


def plan_json(model: Model, blocks: list[Any]) -> dict[str, Any]:
    """The plan file (`msfsim search -o`) of `blocks`."""
    from .. import plan as planfile
    return planfile.to_json(model, blocks)


def describe_platforms() -> list[dict[str, Any]]:
    from ..sim.inventory import describe
    return describe()


def doctor() -> list[dict[str, Any]]:
    from ..sim.inventory import doctor as rows
    return rows()
