"""An honest progress-bar total for the measured search, whose rounds are not known in advance.

The search measures a first round of blocks, then in each round the blocks its new choice
needs, until none is left. The bar's total is announced before each round as: the firmwares of
this round + a projection of the rounds to come + the whole-plan firmwares at the end.

- When the search memo of a previous run exists (the "search-seed" row), the first round holds
  every block that run measured: nothing more is projected.
- Otherwise the rounds are assumed to shrink geometrically: the next rounds are projected as
  n * r / (1 - r) for a round of n blocks, with r the geometric mean of the ratios seen so far
  between consecutive rounds (`DEFAULT_RATIO`, on the high side, before two rounds exist).
- With `--front`, after the first round, the rounds to come are projected as the unmeasured
  blocks of the current front not in this round (`pending`): the front is measured in batches
  of about the same size, so a geometric projection does not fit.

What was projected and did not come is withdrawn when the search settles (`Measurer.close`), so
the bar ends exactly at its total; a round larger than projected raises the total when it
starts. A sweep's single bar holds, for each case not started yet, `case_estimate` firmwares
(the memo's size, else `PER_LAYER` per layer), replaced by the search's own figures when it
starts.
"""
from __future__ import annotations

import math
from typing import Any

DEFAULT_RATIO = 0.6    # next round / this round before any is seen (measured: 0.3-0.6)
MAX_RATIO = 0.9
PER_LAYER = 6          # firmwares per layer a search without memo measures (lenet5: 47 / 7)


def projected_after(n: int, ratio: float) -> int:
    """Blocks expected in the rounds after one of `n` blocks, rounds shrinking by `ratio`."""
    r = min(max(ratio, 0.0), MAX_RATIO)
    return int(math.ceil(n * r / (1.0 - r) - 1e-9)) if n > 0 else 0


class RoundProjection:
    """Keeps the measurer's announced total equal to: this round + projected rounds + the
    whole plans (see the module doc)."""

    def __init__(self, m: Any, whole_plans: int, memo_size: int | None = None):
        self.m = m
        self.whole = whole_plans
        self.memo = memo_size
        self.sizes: list[int] = []

    def ratio(self) -> float:
        rs = [b / a for a, b in zip(self.sizes, self.sizes[1:]) if a > 0 and b > 0]
        if not rs:
            return DEFAULT_RATIO
        return math.exp(sum(math.log(r) for r in rs) / len(rs))

    def round(self, n: int, stage: str, pending: int | None = None) -> None:
        """A round of `n` block firmwares is about to be measured; `pending` (when known) more
        are to come in later rounds."""
        self.sizes.append(n)
        if self.memo is not None and len(self.sizes) == 1:
            later = 0  # the memo's blocks are all in this first round
        elif pending is not None:
            later = pending
        else:
            later = projected_after(n, self.ratio())
        want = n + later + self.whole
        self.m.announce(want - self.m.outstanding, stage)

    def settle(self, whole_plans: int) -> None:
        """The rounds are over; `whole_plans` firmwares remain (the plan and its baselines)."""
        self.whole = whole_plans
        self.m.announce(whole_plans - self.m.outstanding, "whole plans")


def case_estimate(layers: int, memo_size: int | None, whole_plans: int) -> int:
    """Firmwares a measured search of a model of `layers` layers is expected to measure."""
    blocks = memo_size if memo_size is not None else PER_LAYER * layers
    return blocks + whole_plans
