"""Failure policy: retry a failed unit elsewhere, halve it when out of memory, time out hung ones, record failures.

A unit that raised is queued again on another actor while it has attempts left (`max_attempts`); one that ran
out of memory is split into two halves without spending an attempt; one that runs past `unit_timeout_s` has
its actor killed. When an actor dies, only the unit it was running spends an attempt: the others queued on it
are requeued. An actor that dies while loading its model is fatal for that model: every actor of it would
fail the same way, so its queue fails at once. Every failed attempt is recorded in the store and its events.
"""

from __future__ import annotations

import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace

import ray

from ttscale.store import ResultStore
from ttscale.sweeps.jobs import Job
from ttscale.sweeps.outcome import SweepOutcome
from ttscale.sweeps.plan import split_unit
from ttscale.sweeps.pool import ActorPools, Slot
from ttscale.sweeps.resolve import ResolvedSweep
from ttscale.sweeps.telemetry import SweepMetrics

__all__ = ["FailurePolicy"]


class FailurePolicy:
    """What happens to a run's failed attempts and lost actors; see the module docstring."""

    def __init__(
        self,
        resolved: ResolvedSweep,
        store: ResultStore,
        metrics: SweepMetrics,
        pools: ActorPools,
        queues: list[deque[Job]],
        outcome: SweepOutcome,
        note: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.resolved, self.spec, self.note = resolved, resolved.spec, note  # note: a line for the progress view
        self.store, self.metrics, self.pools, self.queues, self.outcome = store, metrics, pools, queues, outcome

    def attempt_failed(self, job: Job, exc: BaseException) -> None:
        """A unit's stream raised (the unit raised, its actor died, or Ray's memory monitor killed it) with rows
        still missing: `job.expected` holds only those now."""
        lost = isinstance(exc, ray.exceptions.RayActorError | ray.exceptions.OutOfMemoryError)
        self._failed(job, exc, actor_lost=lost)

    def actor_failed_to_start(self, slot: Slot, exc: BaseException) -> None:
        """An actor died while loading its model: its model's queued units fail, and the model cannot start."""
        error = _short_error(exc)
        for job in list(self.queues[slot.model]):
            self._record(job, exc, error, final=True, actor=slot.label)
        self._model_cannot_start(slot.model, error)

    def time_out_hung_units(self, running: Iterable[Job]) -> None:
        """Kill the actor of each unit running longer than `unit_timeout_s`: its refs then fail as actor errors."""
        limit = self.spec.unit_timeout_s
        if limit is None:
            return
        now = time.monotonic()
        for job in list(running):
            slot = job.slot
            if slot is not None and slot.timed_out is None and now - job.started > limit and slot in self.pools.slots:
                slot.timed_out = job
                self.store.log_event("timed_out", unit=job.unit.unit_id, actor=slot.label, seconds=now - job.started)
                ray.kill(slot.handle, no_restart=True)  # a hung engine: its refs fail as actor errors

    def _failed(self, job: Job, exc: BaseException, *, actor_lost: bool) -> None:
        """Record a failed attempt and queue the unit again, unless it is out of attempts.

        When an actor dies, every unit queued on it comes back failed, but only those it was running had
        started (the oldest `units_at_once` of them): the others are requeued without spending an attempt."""
        error, slot = _short_error(exc), job.slot
        if slot.timed_out is not None:  # killed for a hung unit: that one failed, the others are requeued
            slot.running_when_lost = slot.timed_out
            if job is slot.timed_out:
                error = f"UnitTimeout: ran over unit_timeout_s={self.spec.unit_timeout_s:g} s; its actor was replaced"
        if actor_lost and _died_starting(exc):
            self._record(job, exc, error, final=True)
            self._model_cannot_start(job.unit.model, error)
            self.outcome.failed_units.append(job.unit.unit_id)
            return
        if actor_lost:
            if slot.running_when_lost is None:
                slot.running_when_lost = slot.jobs[0] if slot.jobs else job
            if slot in self.pools.slots:
                self.pools.replace(slot)
            if job is not slot.running_when_lost:
                self.store.log_event("requeued", unit=job.unit.unit_id, actor=slot.label, reason="actor lost")
                self.queues[job.unit.model].appendleft(job)
                return
        if _out_of_memory(exc) and self._split(job, exc, error):
            return
        final = job.attempt >= self.spec.max_attempts
        self._record(job, exc, error, final=final)
        if final:
            self.outcome.failed_units.append(job.unit.unit_id)
            return
        job.attempt += 1
        job.avoid.add(slot.label)
        self.queues[job.unit.model].appendleft(job)

    def _split(self, job: Job, exc: BaseException, error: str) -> bool:
        """Out of memory: queue the unit again as two halves (a smaller batch each), without spending an attempt;
        False when it is one problem × one seed already."""
        halves = split_unit(job.unit)
        if halves is None:
            return False
        self._record(job, exc, error, final=False)
        grid = self.resolved.plan.expected_keys
        jobs = [
            Job(unit=replace(half, rows=len(keys)), expected=keys, attempt=job.attempt, avoid=set(job.avoid))
            for half in halves
            if (keys := grid(half, set()) & job.expected)
        ]
        self.store.log_event("split", unit=job.unit.unit_id, into=[j.unit.unit_id for j in jobs], reason=error)
        self.queues[job.unit.model].extendleft(reversed(jobs))
        return True

    def _record(self, job: Job, exc: BaseException, error: str, *, final: bool, actor: str | None = None) -> None:
        actor = actor or job.slot.label
        self.store.record_failure(
            job.unit.unit_id, job.attempt, error, "".join(traceback.format_exception(exc))[-4000:],
            actor=actor, model=self.spec.models[job.unit.model].name,
            dataset=self.spec.datasets[job.unit.dataset].name, budgets=list(job.unit.budgets),
            seeds=list(job.unit.seeds), problems=sorted({problem for _, problem in job.expected}),
            rows_missing=len(job.expected), final=final,
        )  # fmt: skip
        self.store.log_event("failed", unit=job.unit.unit_id, actor=actor, attempt=job.attempt, error=error)
        self.metrics.failed(self.spec.models[job.unit.model].name)
        then = "recorded failed" if final else f"attempt {job.attempt} of {self.spec.max_attempts}"
        self.note(f"unit {job.unit.unit_id} failed on {actor} ({then}): {error}")

    def _model_cannot_start(self, model: int, error: str) -> None:
        """An actor failed while loading its model: retrying elsewhere will fail the same way."""
        name = self.spec.models[model].name
        message = f"model '{name}' could not start: {error}"
        if message not in self.outcome.fatal:
            self.outcome.fatal.append(message)
        self.pools.remove_model(model)
        while self.queues[model]:
            self.outcome.failed_units.append(self.queues[model].popleft().unit.unit_id)


def _died_starting(exc: BaseException) -> bool:
    """Did the actor die in its constructor (model load), rather than while running a unit?"""
    return "creation task" in str(exc) or "__init__" in str(exc)


def _out_of_memory(exc: BaseException) -> bool:
    """Did the unit run out of memory: CUDA's OutOfMemoryError, a CPU MemoryError, or Ray's memory monitor?"""
    cause = getattr(exc, "cause", None) or exc
    if isinstance(cause, MemoryError | ray.exceptions.OutOfMemoryError) or type(cause).__name__ == "OutOfMemoryError":
        return True
    text = str(cause).lower()
    return "out of memory" in text or "can't allocate memory" in text


def _short_error(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}"[:300]
