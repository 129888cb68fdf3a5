"""`msfsim run`: execute a plan on a user's int8 NHWC input.

The host backend runs the generated C compiled for this machine (msfsim.host); an emulator
backend (any of the msfsim.sim registry) builds the whole plan, with the input in flash, into
one firmware and reads the output back from the guest.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .. import MsfsimError, NoPlan, ToolMissing, platforms
from ..codegen import generate_plan
from ..ir import Model
from ..measure import build_firmware, measure_elf, plan_budget
from ..platforms import Platform
from .plan import plan_blocks

HOST = "host"


def backend_names() -> tuple[str, ...]:
    """What `run` takes: the host build, then every registered emulator backend."""
    from ..sim import backend_names as emulators
    return (HOST, *emulators())


def run(model: Model, plat: Platform | str, x: np.ndarray, plan: str | Path | None = None,
        backend: str = HOST) -> np.ndarray:
    """Output (int8, the output tensor's HWC shape) of `plan` (layer by layer when None) on
    the int8 HWC input `x`."""
    names = backend_names()
    if backend not in names:
        raise MsfsimError(f"unknown backend {backend!r}; choose one of {', '.join(names)}")
    shape = model.tensor(model.input).shape
    x = np.asarray(x)
    if x.dtype != np.int8 or x.shape != shape:
        raise MsfsimError(f"input must be int8 of shape {shape}, got {x.dtype} {x.shape}")
    blocks = plan_blocks(model, plan)
    out_shape = model.tensor(model.output).shape
    if backend == HOST:
        from .. import host
        y, _ = host.run_plan(model, blocks, x)
        return np.asarray(y, np.int8).reshape(out_shape)

    from ..sim import BackendUnavailable
    from ..toolchain import LinkOverflowError, ToolchainError

    p = plat if isinstance(plat, Platform) else platforms.load(plat)
    code = generate_plan(model, blocks, x)
    budget = plan_budget(model.total_macs, code.input_bytes + code.output_bytes)
    with tempfile.TemporaryDirectory(prefix="msfsim-run-") as d:
        code.write(d)
        try:
            elf = build_firmware(p, d)
            m = measure_elf(elf, p, backend, budget)
        except LinkOverflowError as exc:
            raise NoPlan(f"the plan does not fit {p.label}: {exc}") from None
        except (ToolchainError, BackendUnavailable) as exc:
            raise ToolMissing(str(exc)) from None
        except ValueError as exc:  # a board without this backend
            raise MsfsimError(str(exc)) from None
    if m.status != "ok":
        raise ToolMissing(f"running the plan on {backend} failed: {m.status}: {m.detail}")
    y = np.frombuffer(m.output, np.int8)
    if y.size != int(np.prod(out_shape)):
        raise ToolMissing(f"{backend} returned {y.size} output bytes, expected {int(np.prod(out_shape))}")
    return y.reshape(out_shape).copy()

