"""Emulator backends: each runs a firmware ELF and returns a `Measurement`.

`unicorn` (default, in-process, exact block-hook counts), `qemu` (subprocess with a counting
TCG plugin), `renode` (optional: a user's Renode driven over its XML-RPC robot server).
"""
from __future__ import annotations

from msfsim.platforms import Platform
from msfsim.sim.base import (DEFAULT_BUDGET, DEFAULT_TIMEOUT_S, Backend, BackendUnavailable,
                             Measurement)

__all__ = ["Backend", "BackendUnavailable", "Measurement", "get_backend", "backend_names",
           "backend_available", "doctor_rows", "DEFAULT_BUDGET", "DEFAULT_TIMEOUT_S"]

_NAMES = ("unicorn", "qemu", "renode")


def backend_names() -> tuple[str, ...]:
    return _NAMES


def get_backend(name: str) -> Backend:
    if name == "unicorn":
        from msfsim.sim.unicorn_backend import UnicornBackend
        return UnicornBackend()
    if name == "qemu":
        from msfsim.sim.qemu_backend import QemuBackend
        return QemuBackend()
    if name == "renode":
        from msfsim.sim.renode_backend import RenodeBackend
        return RenodeBackend()
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(_NAMES)}")


def backend_available(name: str, platform: Platform) -> tuple[bool, str]:
    return get_backend(name).available(platform)


def doctor_rows() -> list[dict[str, str]]:
    from msfsim.sim import qemu_backend, renode_backend, unicorn_backend

    rows = []
    try:
        import unicorn
        rows.append({"tool": "unicorn", "status": "ok", "detail": unicorn.__version__,
                     "install": "pip install unicorn"})
    except ImportError:
        rows.append({"tool": "unicorn", "status": "missing", "detail": "default backend",
                     "install": "pip install unicorn"})
    native = unicorn_backend.native_hook() is not None if _has("unicorn") else False
    rows.append({"tool": "unicorn native hook (cffi + host gcc)", "status": "ok" if native else "missing",
                 "detail": "exact counting in native code; without it a much slower Python hook",
                 "install": "pip install cffi; apt-get install gcc"})
    rows.extend(qemu_backend.doctor_rows())
    rows.extend(renode_backend.doctor_rows())
    return rows


def _has(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None
