"""What the keywords act on: the current plan, and the figures of its firmware measured on a
backend (with the versions they were measured with, which baselines record)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from msfsim import pipeline
from msfsim.fusion.block import Block
from msfsim.ir import Model
from msfsim.platforms import Platform

MEASURED_RAM = "measured RAM = arena high-water + stack high-water + static .data/.bss"


@lru_cache(maxsize=None)
def backend_version(backend: str, platform_name: str) -> str:
    """Version of the emulator that runs `platform_name` on `backend` (counts depend on it)."""
    if backend not in pipeline.backend_names():
        return backend
    return pipeline.backend_version(backend, pipeline.load_platform(platform_name))


@dataclass(frozen=True)
class CurrentPlan:
    """The plan the keywords act on: its board, blocks and a tag naming how it was made."""
    model: Model
    platform: Platform
    blocks: tuple[Block, ...]
    tag: str                    # e.g. "ram,F<=1.5", "vanilla", a plan file stem
    act: int | None = None
    act_io: int | None = None

    @property
    def block_keys(self) -> list[str]:
        return [b.key for b in self.blocks]

    @property
    def what(self) -> str:
        return f"{self.model.name} plan {self.tag} on {self.platform.label}"


@dataclass(frozen=True)
class Figures:
    """A plan measured as one firmware (the measurement's outcome plus what it ran on). `error`
    is what the outcome means for the user (msfsim.measure.outcome.whole_plan_error), None when
    the firmware ran, fitted and computed the reference output."""
    status: str
    detail: str
    instructions: int | None
    measured_ram: int | None
    arena: int | None
    stack: int | None
    static: int | None
    flash_bytes: int | None
    compiler: str
    backend: str
    backend_version: str
    cached: bool
    error: str | None = None

    def ram_text(self, ram: int | None = None) -> str:
        return (f"{self.measured_ram if ram is None else ram:,} B (arena {self.arena:,} + stack "
                f"{self.stack:,} + static {self.static:,})")

    def to_json(self) -> dict[str, Any]:
        return {"instructions": self.instructions, "measured_ram": self.measured_ram,
                "arena": self.arena, "stack": self.stack, "static": self.static,
                "flash_bytes": self.flash_bytes, "compiler": self.compiler,
                "backend": self.backend, "backend_version": self.backend_version}
