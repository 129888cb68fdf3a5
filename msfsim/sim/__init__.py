"""Emulator backends: each runs a firmware ELF and returns a `Measurement`; a registry lists them.

Shipped: `unicorn` (default, in-process, exact block-hook counts), `qemu` (subprocess with a
counting TCG plugin), `renode` (optional, untested here: a user's Renode driven over its XML-RPC
robot server). The command line's `--backend` choices, `msfsim doctor`, `msfsim platforms`, the
Robot keywords and `msfsim run` all read this registry: nothing else names a backend.

Adding a backend (Renode for real, another emulator) is one file, `msfsim/sim/NAME_backend.py`,
found and imported on the first registry call. It defines:

- a subclass of `msfsim.sim.base.Backend`, decorated with `@register`, with
  - `name`: what `--backend` takes, and the `[backends.NAME]` table it reads from board data;
  - `summary` (one line for `msfsim doctor`), `order` (its place in listings; unicorn 0, qemu
    10, renode 20), `tested` (False for a backend that cannot be exercised where msfsim is
    developed);
  - `available(platform) -> (ok, why)`: usable for this board here, else why not and how to
    install it;
  - `run(elf, platform, budget_instructions, timeout_s) -> Measurement`: `self.prepare()` gives
    the ELF image, the two marker addresses and the fields `make_measurement` needs, which
    turns what the emulator saw (count between the markers, the guest's result record, output
    bytes) into a Measurement the same way for every backend (DESIGN §4);
  - `version(platform) -> str`: the emulator's version (recorded beside every count);
  - `doctor_rows() -> [{"tool", "status", "detail", "install"}]`: what it needs installed;
  - optionally `serves(platform)`: by default, whether the board's data has `[backends.NAME]`.
- the per-core settings it needs, as a `[backends.NAME]` table in the family files
  (msfsim/boards/families/*.toml; a board file may override keys) -- which families it serves
  is which family files have that table (`families_served`).

A board's default backend is its family's `default_backend` (a board file may name another);
the command line's default is `default_backend()`, the first backend in order.

The registry: `register` / `unregister`, `backend_names`, `get_backend`, `backend_available`,
`backend_version`, `families_served`, `default_backend`, `doctor_rows`. What this machine can
build and run per board (`msfsim platforms`, `msfsim doctor`) is `msfsim.sim.inventory`.

Imports: sim -> toolchain -> platforms, never the other way.
"""
from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import TypeVar

from msfsim import platforms
from msfsim.platforms import Platform
from msfsim.sim.base import (DEFAULT_BUDGET, DEFAULT_TIMEOUT_S, Backend, BackendUnavailable,
                             Measurement)

__all__ = ["Backend", "BackendUnavailable", "Measurement", "register", "unregister",
           "get_backend", "backend_names", "backend_available", "backend_version",
           "families_served", "default_backend", "doctor_rows", "DEFAULT_BUDGET",
           "DEFAULT_TIMEOUT_S"]

MODULE_SUFFIX = "_backend"   # msfsim/sim/NAME_backend.py files are backends

_REGISTRY: dict[str, type[Backend]] = {}
_LOCK = threading.RLock()
_DISCOVERED = False

B = TypeVar("B", bound=type[Backend])


def register(cls: B) -> B:
    """Class decorator: make a Backend subclass available under `cls.name`."""
    name = getattr(cls, "name", "")
    if not isinstance(cls, type) or not issubclass(cls, Backend):
        raise TypeError(f"{cls!r} is not a msfsim.sim.base.Backend subclass")
    if not name or not name.isidentifier() or name == "host":
        raise ValueError(f"{cls.__name__}: backend name {name!r} must be an identifier other than 'host'")
    with _LOCK:
        known = _REGISTRY.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"backend {name!r} is registered already ({known.__module__}.{known.__qualname__})")
        _REGISTRY[name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a backend (tests, plugins that withdraw one)."""
    with _LOCK:
        _REGISTRY.pop(name, None)


def _discover() -> None:
    """Import every msfsim/sim/*_backend.py once: each registers its backend."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    with _LOCK:
        if _DISCOVERED:
            return
        for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if mod.name.endswith(MODULE_SUFFIX):
                importlib.import_module(f"{__name__}.{mod.name}")
        _DISCOVERED = True


def _classes() -> list[type[Backend]]:
    _discover()
    with _LOCK:
        return sorted(_REGISTRY.values(), key=lambda c: (c.order, c.name))


def backend_names() -> tuple[str, ...]:
    """Every registered backend, in listing order (unicorn, qemu, renode, then others)."""
    return tuple(c.name for c in _classes())


def get_backend(name: str, **options) -> Backend:
    _discover()
    with _LOCK:
        cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(backend_names())}")
    return cls(**options)


def backend_available(name: str, platform: Platform) -> tuple[bool, str]:
    return get_backend(name).available(platform)


def backend_version(name: str, platform: Platform | None = None) -> str:
    """The version of the emulator `name` runs `platform` with (counts depend on it)."""
    return get_backend(name).version(platform)


def families_served(name: str) -> list[str]:
    """The core families whose family file has a `[backends.NAME]` table."""
    get_backend(name)  # unknown names are an error
    return [f for f in platforms.families() if name in platforms.family(f).backends]


def default_backend(platform: Platform | None = None) -> str:
    """The backend `platform` is measured with unless told otherwise: its family's (or its
    board file's) `default_backend` when registered and serving it, else the first registered
    backend that serves it. Without a platform: the first backend in order (the command
    line's default)."""
    names = backend_names()
    if platform is None:
        return names[0]
    if platform.default_backend in names and get_backend(platform.default_backend).serves(platform):
        return platform.default_backend
    return next((n for n in names if get_backend(n).serves(platform)), names[0])


def doctor_rows() -> list[dict[str, str]]:
    """Every backend's rows of `msfsim doctor`, in listing order."""
    rows: list[dict[str, str]] = []
    for cls in _classes():
        rows.extend(cls().doctor_rows())
    return rows
