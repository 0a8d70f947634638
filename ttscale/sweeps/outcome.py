"""What a sweep run did: rows and units written, tokens spent, units that failed, and why it stopped early."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SweepOutcome"]


@dataclass
class SweepOutcome:
    """What a run did."""

    rows_written: int = 0
    units_done: int = 0
    failed_units: list[str] = field(default_factory=list)
    fatal: list[str] = field(default_factory=list)  # models that could not start
    tokens: int = 0
    thinking_tokens: int = 0  # of `tokens`, model thinking tokens (budgets cut from stored trajectories cost none)
    units_reusing: int = 0  # units sent stored trajectories to cut budgets from or extend
    seconds: float = 0.0
    driver_seconds: float = 0.0  # CPU time of the dispatch loop's thread (its own work; waiting on Ray costs none)
    stopped: str | None = None  # why the run stopped before the end (e.g. "SIGTERM"), or None
    dropped_units: list[str] = field(default_factory=list)  # running when it stopped: redone by the next run
    not_started_units: int = 0  # still queued when it stopped
