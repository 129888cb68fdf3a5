"""What a measured firmware gave (`Outcome`, checked against the reference output) and the one
rule that turns a whole-plan measurement that failed into the user's error."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .. import MsfsimError, NoPlan, ToolMissing
from ..platforms import Platform
from ..search.pareto import Infeasible


@dataclass(frozen=True)
class Outcome:
    """One measured firmware, checked against the reference output."""
    status: str                # ok | fault | timeout | budget | overflow | error | mismatch
    detail: str
    instructions: int | None
    stack_peak: int | None
    arena_peak: int | None
    static_ram: int | None
    measured_ram: int | None
    flash_bytes: int | None
    compiler: str | None
    cached: bool
    csr_instructions: int | None = None   # RV32 minstret under QEMU -icount (equal when ok)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def cause(self) -> str:
        return f"{self.status}: {self.detail}" if self.detail else self.status

    @classmethod
    def of(cls, row: dict[str, Any], expect_sha: str | None, cached: bool,
           budget: int | None = None) -> "Outcome":
        """`row` checked against the reference digest and, for a cached row measured under
        another budget, against this budget (as a fresh run would be)."""
        status, detail = row["status"], row["detail"]
        if status == "ok" and expect_sha is not None and row["output_sha256"] != expect_sha:
            status, detail = "mismatch", "output differs from the host reference (refmodel)"
        elif status == "ok" and budget is not None and row["instructions"] > budget:
            status, detail = "budget", (f"{row['instructions']:,} instructions exceed the budget "
                                        f"of {budget:,}")
        return cls(status, detail, row["instructions"], row["stack_peak"], row["arena_peak"],
                   row["static_ram"], row["measured_ram"], row["flash_bytes"], row["compiler"],
                   cached, row.get("csr_instructions"))


def whole_plan_error(o: Outcome, backend: str, subject: str = "the plan",
                     board: Platform | None = None, check: str = "all") -> MsfsimError | None:
    """The error a whole-plan firmware's outcome means for the user, or None when it is fine.

    An output that differs from the host reference is a bug of msfsim (exit 1 class
    MsfsimError, exit 2); a firmware that does not fit is "no plan" (exit 3): with `board`
    (a search chose the plan for that board) an `Infeasible` on its SRAM, without (the user
    gave the plan) a `NoPlan`; any other failure is a tool that failed (exit 4).
    `check="mismatch"` looks at the output only (the baselines of a search: their firmware
    may fail to fit or run without that being an error)."""
    if o.status == "mismatch":
        tail = ": generated code or kernels are wrong for this plan" if check == "all" else ""
        return MsfsimError(f"{subject}'s firmware output differs from the host reference on "
                           f"{backend}{tail}")
    if o.ok or check == "mismatch":
        return None
    if o.status == "overflow":
        if board is not None:
            return Infeasible("sram", board.sram.size, math.inf,
                              f"{subject}'s firmware does not fit {board.label}: {o.detail}")
        return NoPlan(f"{subject}'s {o.detail}")  # nothing to choose: this plan is all there is
    if board is not None:
        return ToolMissing(f"{subject}'s firmware failed on {backend}: {o.cause}")
    return ToolMissing(f"measuring {subject} on {backend} failed: {o.cause}")
