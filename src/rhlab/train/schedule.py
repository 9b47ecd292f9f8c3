"""When a reward component is switched on during a GRPO run: one schedule shared by the hack penalty
(`reward.PenaltySchedule`) and the safety mix (`safety_mix.SafetySchedule`).

    off              never
    from_start       from step 1
    from_step        from `start_step` on
    after_threshold  latch the first step t whose observed rate crosses `threshold`; on from step t + 1 + `delay`

The latch is the only state. It is rebuilt on resume by calling `observe` with every finished step's rate, in order,
so a resumed run switches at the same step as an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Literal, Optional

ScheduleMode = Literal["off", "from_start", "from_step", "after_threshold"]


class Schedule:
    """`inclusive`: the rate crosses the threshold at `rate >= threshold` (else only above it)."""

    def __init__(self, mode: ScheduleMode, *, start_step: Optional[int] = None, threshold: Optional[float] = None,
                 delay: int = 0, inclusive: bool = False):
        self.mode, self.start_step, self.threshold = mode, start_step, threshold
        self.delay, self.inclusive = delay, inclusive
        self.triggered_at: int | None = None  # the step whose rate first crossed the threshold

    def observe(self, step: int, rate: float | None) -> None:
        if self.mode != "after_threshold" or self.triggered_at is not None or rate is None or math.isnan(rate):
            return
        threshold = float(self.threshold if self.threshold is not None else 1.0)
        if rate >= threshold if self.inclusive else rate > threshold:
            self.triggered_at = step

    def switch_step(self) -> int | None:
        """The first step on which the component is on (None: never, or not known yet)."""
        if self.mode == "off":
            return None
        if self.mode == "from_start":
            return 1
        if self.mode == "from_step":
            return int(self.start_step or 0)
        return None if self.triggered_at is None else self.triggered_at + 1 + self.delay

    def active(self, step: int) -> bool:
        """Whether the component is on at optimiser step `step` (steps count from 1)."""
        s = self.switch_step()
        return s is not None and step >= s
