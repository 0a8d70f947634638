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
    """One unit's way through a run: queued, dispatched to an actor, streamed out, retried, split or stored."""

    unit: WorkUnit
    expected: set[tuple[str, str]]  # the (cell id, problem id) keys it must write, none of them stored yet
    attempt: int = 1
    avoid: set[str] = field(default_factory=set)  # labels of actors it already failed on
    started: float = 0.0
    slot: Slot | None = None
    # what its streams delivered (one per attempt): rows handed to the writer, the header whose tables come
    # next, pieces not yet on disk, rows on disk, and the summary its last attempt ended with
    handed: set[tuple[str, str]] = field(default_factory=set)
    handed_before: int = 0  # of them, handed before its current attempt
    header: dict[str, Any] | None = None
    pieces_pending: int = 0
    stored_rows: int = 0
    summary: dict[str, Any] | None = None
    accounted: bool = False  # counted as done
