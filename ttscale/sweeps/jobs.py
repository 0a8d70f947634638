"""A work unit as the dispatch loop tracks it: the rows it must write, its attempts, and the actor it runs on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ttscale.sweeps.plan import WorkUnit

if TYPE_CHECKING:
    from ttscale.sweeps.pool import Slot

__all__ = ["Job"]


@dataclass
class Job:
    """One unit's way through a run: queued, dispatched to an actor, retried, split or stored."""

    unit: WorkUnit
    expected: set[tuple[str, str]]  # the (cell id, problem id) keys it must write, none of them stored yet
    attempt: int = 1
    avoid: set[str] = field(default_factory=set)  # labels of actors it already failed on
    started: float = 0.0
    slot: Slot | None = None
    tables: Any = None  # the reference to its rows and trajectories, fetched by the shard writer only
