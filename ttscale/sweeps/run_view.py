"""How a caller shows a sweep run as it goes: the hooks `run_sweep_file` and `run_refinement` call at each step."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ttscale.compaction import Compacted
    from ttscale.sweeps.placement import Connection
    from ttscale.sweeps.plan import Plan
    from ttscale.sweeps.progress import ProgressFn
    from ttscale.sweeps.spec import LoadedSweep

__all__ = ["RunView"]


class RunView:
    """Shows nothing; the CLI's view prints ttscale's warnings as lines, the plan in a line, and a progress bar."""

    def step(self) -> AbstractContextManager[object]:
        """Around each step that may warn: loading the sweep, planning it, checking its models."""
        return contextlib.nullcontext()

    def claimed(self, loaded: LoadedSweep, plan: Plan) -> None:
        """The results directory is claimed (when there is work to do) and the plan is final; nothing has run."""

    def running(self) -> AbstractContextManager[ProgressFn | None]:
        """Around the run itself (Ray started, units dispatched); gives the callback for the driver's progress."""
        return contextlib.nullcontext()

    def connected(self, connection: Connection) -> None:
        """Ray is up (started here or joined); nothing has been dispatched yet."""

    def compacting(self, kind: str, step: str, done: int, total: int) -> None:
        """The run has ended and its many small shards are being merged (`compaction.Progress`)."""

    def compacted(self, done: list[Compacted]) -> None:
        """The run's small shards were merged: what each shard directory went from and to."""
