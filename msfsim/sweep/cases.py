"""What a sweep runs: every model x board x constraint as one `Case`, and one `Row` per case."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .. import MsfsimError
from ..names import safe_name

OBJECTIVES = ("ram", "latency")


@dataclass(frozen=True)
class Case:
    """One search of a sweep: a model on a board under one constraint."""
    model: str                     # the MODEL argument: a path or zoo:NAME
    platform: str
    objective: str                 # "ram" (P1) or "latency" (P2)
    max_overhead: float | None = None
    max_ram: int | None = None

    @property
    def constraint(self) -> str:
        if self.objective == "ram":
            return "none" if self.max_overhead is None else f"max-overhead {self.max_overhead:g}"
        return f"max-ram {self.max_ram}"

    @property
    def slug(self) -> str:
        """A file name for the case's report directory."""
        text = f"{self.model.removeprefix('zoo:')}_{self.platform}_{self.objective}"
        if self.max_overhead is not None:
            text += f"_F{self.max_overhead:g}"
        if self.max_ram is not None:
            text += f"_R{self.max_ram}"
        return safe_name(text.rsplit("/", 1)[-1], "case")  # the one sanitiser (msfsim.names)


def expand(models: Sequence[str], platforms: Sequence[str], objective: str,
           max_overheads: Sequence[float | None], max_rams: Sequence[int | None]) -> list[Case]:
    """Every model x board x constraint, in that order (constraints: --max-overhead values
    with objective ram, --max-ram values with objective latency)."""
    if objective not in OBJECTIVES:
        raise MsfsimError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if objective == "latency":
        if any(v is not None for v in max_overheads):
            raise MsfsimError("--max-overhead goes with --objective ram; use --max-ram with "
                              "--objective latency")
        if not [v for v in max_rams if v is not None]:
            raise MsfsimError("--objective latency needs --max-ram SIZE")
        constraints = [(None, r) for r in max_rams]
    else:
        rams = list(max_rams) or [None]
        constraints = [(f, r) for f in (list(max_overheads) or [None]) for r in rams]
    return [Case(m, p, objective, f, r) for m in dict.fromkeys(models)
            for p in dict.fromkeys(platforms) for f, r in constraints]


# The columns of sweep.csv, in order; sweep.json holds the same rows with these keys.
COLUMNS = ("model", "platform", "objective", "constraint", "status", "error", "blocks",
           "n_blocks", "measured_act", "measured_ram", "instructions", "latency_ms_estimate",
           "flash_bytes", "sram_bytes", "fits", "bit_exact", "vanilla_instructions",
           "vanilla_ram", "mcunetv2_instructions", "mcunetv2_ram", "streamnet_instructions",
           "streamnet_ram", "measured", "cache_hits", "seconds", "report")
BASELINES = ("vanilla", "mcunetv2", "streamnet")


@dataclass
class Row:
    """One case's outcome: the plan's figures, or the error that stopped it (`status`: ok,
    "no plan" for a board where nothing fits, error for anything else)."""
    case: Case
    status: str = "ok"
    error: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        c = self.case
        row: dict[str, Any] = {k: None for k in COLUMNS}
        row.update(model=c.model, platform=c.platform, objective=c.objective,
                   constraint=c.constraint, status=self.status, error=self.error,
                   fits=False, bit_exact=False)
        row.update(self.values)
        return row


def result_values(result: Any, sram: int) -> dict[str, Any]:
    """A row's figures from a measured search result (msfsim.search.result)."""
    p = result.plan
    m = result.measurement
    values: dict[str, Any] = {
        "blocks": " ".join(b.block.key for b in p.blocks), "n_blocks": len(p.blocks),
        "measured_act": (m.get("measured_act") or {}).get("bytes", p.measured_act),
        "measured_ram": p.measured, "instructions": p.instructions,
        "latency_ms_estimate": None if p.latency_ms is None else round(p.latency_ms, 4),
        "flash_bytes": p.flash_bytes, "sram_bytes": sram,
        "fits": p.measured is not None and p.measured <= sram,
        "bit_exact": bool((m.get("plan_firmware") or {}).get("output_matches_reference")),
        "measured": m.get("stats", {}).get("measured"),
        "cache_hits": m.get("stats", {}).get("cache_hits"),
        "seconds": round(result.search_seconds, 2)}
    for name in BASELINES:
        b = result.baselines.get(name)
        values[f"{name}_instructions"] = None if b is None else b.instructions
        values[f"{name}_ram"] = None if b is None else b.measured
    return values
