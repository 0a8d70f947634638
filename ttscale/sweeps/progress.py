"""A run's progress: cells and rows done, and tokens and trajectories live from busy actors, reported to a callback.

Stored units count as they are written; running units count from what their actors report when asked, every
`PROGRESS_EVERY_S` (less often with many actors: at most `POLLS_PER_S` calls a second over all of them).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ray

from ttscale.sweeps.jobs import Job
from ttscale.sweeps.outcome import SweepOutcome
from ttscale.sweeps.plan import WorkUnit
from ttscale.sweeps.pool import Slot
from ttscale.sweeps.telemetry import SweepMetrics

if TYPE_CHECKING:
    from ttscale.sweeps.spec import SweepSpec

PROGRESS_EVERY_S = 2.0  # how often busy actors are asked for their live tokens and trajectories
POLLS_PER_S = 10.0  # ...but no more progress calls than this per second over all actors

__all__ = ["POLLS_PER_S", "PROGRESS_EVERY_S", "Progress", "ProgressFn", "RunProgress"]


@dataclass(frozen=True)
class Progress:
    """How far this run is: cells (model, dataset, budget, seed) and rows (cell × problem) it set out to do,
    and, live from the actors, tokens generated and thinking trajectories finished."""

    cells_done: int
    cells_to_do: int
    rows_done: int
    rows_to_do: int
    tokens: int  # generated so far by this run's actors, running units included
    trajectories_done: int = 0  # of the units stored or running
    trajectories_total: int = 0  # of the units stored or running (known once a unit starts)
    thinking_tokens: int = 0  # model thinking tokens in the rows stored so far
    units_to_do: int = 0
    units_done: int = 0  # every row stored
    units_running: int = 0
    units_failed: int = 0  # out of tries
    events: tuple[str, ...] = ()  # units that finished or failed since the last report, a line each
    # the plan's estimate of actor time (a unit's tokens over its model's rate, `Plan.unit_minutes`), in seconds:
    # of the rows to do, and of those stored, each row weighing its unit's estimate over its unit's rows
    work_to_do_s: float = 0.0
    work_done_s: float = 0.0


ProgressFn = Callable[[Progress], None]


class RunProgress:
    """Counts a run's cells, rows, tokens and trajectories, and hands each change to `on_progress`."""

    def __init__(
        self, spec: SweepSpec, metrics: SweepMetrics, outcome: SweepOutcome, on_progress: ProgressFn | None
    ) -> None:
        self.spec, self.metrics, self.outcome, self.on_progress = spec, metrics, outcome, on_progress
        self.rows_to_do = 0
        self.rows_left_per_cell: Counter[str] = Counter()
        self.cells_to_do = [0] * len(spec.models)
        self.cells_done = [0] * len(spec.models)
        self._actor_tokens: dict[str, int] = {}  # label -> tokens its engine reported (dead actors' stay)
        self._live_units: dict[str, dict[str, Any]] = {}  # unit id -> its latest progress, while it runs
        self._trajectories_stored = [0, 0]  # done, total of stored units
        self._last_poll = 0.0
        self.units_to_do = 0
        self.units_running = 0  # set by the driver
        self._events: list[str] = []
        self._row_seconds: dict[str, float] = {}  # cell -> a row's share of its unit's estimate (mean over its rows)
        self._work_to_do_s = self._work_done_s = 0.0

    def start(self, queues: list[deque[Job]], unit_seconds: Callable[[WorkUnit], float] | None = None) -> None:
        """What this run sets out to do: the rows and cells of every queued job, and (given `unit_seconds`, a
        unit's estimated actor time) each row's share of that time, so that progress and its ETA weigh a 32B
        model's rows above a 1.5B model's."""
        self.rows_to_do = sum(len(j.expected) for q in queues for j in q)
        self.units_to_do = sum(len(q) for q in queues)
        self.rows_left_per_cell = Counter()
        seconds: Counter[str] = Counter()  # cell -> its rows' shares of their units' estimates
        for m, (model, queue) in enumerate(zip(self.spec.models, queues, strict=True)):
            cells: set[str] = set()
            for job in queue:
                rows_per_cell = Counter(cell for cell, _ in job.expected)  # the one pass over a job's keys
                self.rows_left_per_cell.update(rows_per_cell)
                cells.update(rows_per_cell)
                if unit_seconds is not None and job.expected:
                    share = unit_seconds(job.unit) / len(job.expected)
                    for cell, rows in rows_per_cell.items():
                        seconds[cell] += share * rows
            self.cells_to_do[m] = len(cells)
            self.metrics.cells(model.name, 0, self.cells_to_do[m])
        self._row_seconds = {cell: seconds[cell] / self.rows_left_per_cell[cell] for cell in seconds}
        self._work_to_do_s = sum(seconds.values())

    def unit_ended(self, unit_id: str) -> None:
        """A unit stopped running (stored or failed): its live progress no longer counts."""
        self._live_units.pop(unit_id, None)

    def rows_stored(self, job: Job, keys: set[tuple[str, str]], trajectories: int) -> None:
        """Rows a unit streamed out are on disk: their cells (once complete) and trajectories count as stored."""
        self._count_cells(keys, job.unit.model)
        self._work_done_s += sum(self._row_seconds.get(cell, 0.0) for cell, _ in keys)
        self._trajectories_stored[0] += trajectories
        self._trajectories_stored[1] += trajectories

    def poll(self, slots: list[Slot], running: Collection[Job]) -> None:
        """Ask busy actors how far their running units are (tokens, trajectories), for `on_progress`; every
        PROGRESS_EVERY_S, or less often with many actors (at most POLLS_PER_S calls a second in all)."""
        if self.on_progress is None:
            return
        asked = {s.progress_ref: s for s in slots if s.progress_ref is not None}
        if asked:
            ready, _ = ray.wait(list(asked), num_returns=len(asked), timeout=0)
            for ref in ready:
                slot = asked[ref]
                slot.progress_ref = None
                try:
                    live = ray.get(ref)
                except ray.exceptions.RayError:
                    continue  # a dead actor: its units' refs report it
                self._actor_tokens[slot.label] = int(live["tokens"])
                running_ids = {job.unit.unit_id for job in running}  # a late reply must not revive one
                self._live_units.update({uid: p for uid, p in live["units"].items() if uid in running_ids})
            if ready:
                self.report()
        busy = [s for s in slots if s.ready and s.in_flight and s.progress_ref is None]
        now = time.monotonic()
        if now - self._last_poll < max(PROGRESS_EVERY_S, len(busy) / POLLS_PER_S):
            return
        self._last_poll = now
        for slot in busy:
            slot.progress_ref = slot.handle.progress.remote()

    def note(self, line: str) -> None:
        """A unit finished or failed: one line for the next report (a batch log shows each)."""
        if self.on_progress is not None:
            self._events.append(line)

    def report(self) -> None:
        if self.on_progress is None:
            return
        done, total, out = sum(self.cells_done), sum(self.cells_to_do), self.outcome
        live = list(self._live_units.values())
        events, self._events = tuple(self._events), []
        self.on_progress(
            Progress(
                cells_done=done, cells_to_do=total, rows_done=out.rows_written, rows_to_do=self.rows_to_do,
                tokens=max(sum(self._actor_tokens.values()), out.tokens),
                trajectories_done=self._trajectories_stored[0] + sum(u["trajectories_done"] for u in live),
                trajectories_total=self._trajectories_stored[1] + sum(u["trajectories_total"] for u in live),
                thinking_tokens=out.thinking_tokens, units_to_do=self.units_to_do, units_done=out.units_done,
                units_running=self.units_running, units_failed=len(out.failed_units), events=events,
                work_to_do_s=self._work_to_do_s, work_done_s=self._work_done_s,
            )
        )  # fmt: skip

    def _count_cells(self, keys: set[tuple[str, str]], m: int) -> None:
        """Cells whose last expected row just arrived count as done."""
        for cell, _ in keys:
            self.rows_left_per_cell[cell] -= 1
            if self.rows_left_per_cell[cell] == 0:
                self.cells_done[m] += 1
        self.metrics.cells(self.spec.models[m].name, self.cells_done[m], self.cells_to_do[m])
