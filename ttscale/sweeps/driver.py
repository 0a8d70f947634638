"""The sweep driver: a dispatch loop that feeds work units to one actor pool per model and streams results.

The driver never touches tokens, and leaves resources to `sweeps/placement.py`. It dispatches units from a
queue per model to actors once they are up, so faster actors take more; keeps each actor busy with as many
units as its engine runs at once plus `WAITING_PER_ACTOR`; retries a failed unit (on another actor when there
is one); writes each finished unit's shard atomically as it arrives; asks busy actors for live progress
(tokens, finished trajectories) every `PROGRESS_EVERY_S`; and frees a model's actors as soon as its queue is
empty, re-planning the pools so the freed GPUs (or CPUs) go to the models that still have work.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import ray

from ttscale.actors.worker import units_at_once, worker_class
from ttscale.errors import TtscaleError
from ttscale.runner import nested_trajectory_ids
from ttscale.store import ResultStore
from ttscale.sweeps.placement import (
    PlacedActor,
    actor_shape,
    cpu_threads,
    place_actor,
    plan_replicas,
    release_actors,
)
from ttscale.sweeps.plan import WorkUnit, engine_options, run_settings, split_unit
from ttscale.sweeps.resolve import ResolvedSweep
from ttscale.sweeps.telemetry import SweepMetrics
from ttscale.sweeps.writer import ShardWriter, Written

WAITING_PER_ACTOR = 1  # units queued on an actor beyond those it runs, so it never idles between units
PROGRESS_EVERY_S = 2.0  # how often busy actors are asked for their live tokens and trajectories
POLLS_PER_S = 10.0  # ...but no more progress calls than this per second over all actors

__all__ = ["Driver", "Progress", "ProgressFn", "SweepOutcome"]


@dataclass
class _Slot:
    """One actor of a model's pool."""

    model: int
    replica: int
    label: str
    actor: PlacedActor
    capacity: int  # units it runs at once + WAITING_PER_ACTOR
    ready_ref: Any = None  # its first `info()`: where it runs; dispatch waits until the actor is up
    ready: bool = False
    in_flight: int = 0
    generation: int = 0
    jobs: list[_Job] = field(default_factory=list)  # dispatched, not yet back, in dispatch (= run) order
    running_when_lost: _Job | None = None  # the unit that was running when the actor died
    timed_out: _Job | None = None  # the unit whose time ran out: the actor was killed for it
    progress_ref: Any = None

    @property
    def handle(self) -> Any:
        return self.actor.handle


@dataclass
class _Job:
    unit: WorkUnit
    expected: set[tuple[str, str]]
    attempt: int = 1
    avoid: set[str] = field(default_factory=set)  # labels of actors it already failed on
    started: float = 0.0
    slot: _Slot | None = None
    tables: Any = None  # the reference to its rows and trajectories, fetched by the shard writer only


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


ProgressFn = Callable[[Progress], None]


class Driver:
    """Runs one resolved sweep on a connected Ray cluster; see the module docstring."""

    def __init__(
        self,
        resolved: ResolvedSweep,
        store: ResultStore,
        *,
        on_progress: ProgressFn | None = None,
        on_dispatch: Callable[[Any, WorkUnit], None] | None = None,
    ) -> None:
        self.resolved, self.store = resolved, store
        self.spec = resolved.spec
        self.on_progress, self.on_dispatch = on_progress, on_dispatch
        self.done = store.done_keys()
        self.outcome = SweepOutcome()
        self.slots: list[_Slot] = []
        self.queues: list[deque[_Job]] = [deque() for _ in self.spec.models]
        self.in_flight: dict[Any, _Job] = {}
        self.engines: dict[str, dict[str, Any]] = {}  # model -> engine/model versions seen in its rows
        self.rows_left_per_cell: Counter[str] = Counter()
        self.cells_to_do = [0] * len(self.spec.models)
        self.cells_done = [0] * len(self.spec.models)
        self.metrics = SweepMetrics(self.spec.name)
        self._generations = 0  # replacement actors get fresh names: the dead one's may linger a moment
        self._to_do = 0
        self._actor_tokens: dict[str, int] = {}  # label -> tokens its engine reported (dead actors' stay)
        self._live_units: dict[str, dict[str, Any]] = {}  # unit id -> its latest progress, while it runs
        self._trajectories_stored = [0, 0]  # done, total of stored units
        self._last_poll = 0.0
        self.writer = ShardWriter(store, fetch=ray.get)
        self._resources: dict[str, float] = {}
        self.stop_requested: str | None = None  # set by request_stop (from a signal handler)
        self._stop_deadline = 0.0  # the cluster's, read at the start and when pools are re-planned
        self._problems_by_id = [{p.id: p for p in problems} for problems in resolved.problems]
        self._thread_start = time.thread_time()
        self._settings = [run_settings(self.spec, model) for model in self.spec.models]
        nested = self.spec.forcing.trajectory == "nested"
        self._stored_trajectories = store.trajectory_index() if nested else {}  # what units can reuse, where

    # -- actors -----------------------------------------------------------------------------------------

    def _start_actor(self, model_index: int, replica: int, generation: int = 0) -> _Slot:
        model = self.spec.models[model_index]
        threads = cpu_threads(model, self._resources)
        label = f"{self.spec.name}/{model.name}#{replica}" + (f".{generation}" if generation else "")
        actor = place_actor(
            worker_class(model.engine), actor_shape(model, threads=threads), name=label, model=model.name,
            engine=model.engine, engine_options=engine_options(self.spec, model, threads=threads),
            settings=run_settings(self.spec, model), label=label,
        )  # fmt: skip
        slot = _Slot(
            model=model_index, replica=replica, label=label, actor=actor, generation=generation,
            capacity=units_at_once(model.engine) + WAITING_PER_ACTOR,
        )  # fmt: skip
        slot.ready_ref = slot.handle.info.remote()
        return slot

    def _stop_actor(self, slot: _Slot) -> None:
        self._stop_actors([slot])

    def _stop_actors(self, slots: list[_Slot]) -> None:
        """Release the actors together: ready ones first let their engines shut down (see release_actors)."""
        release_actors([s.actor for s in slots if s.ready], graceful=True)
        release_actors([s.actor for s in slots if not s.ready], graceful=False)  # dead, or still loading
        for slot in slots:
            if slot.ready:
                self.store.log_event("actor_released", actor=slot.label)

    def _generation(self) -> int:
        self._generations += 1
        return self._generations

    def _replace(self, slot: _Slot) -> _Slot:
        self._stop_actor(slot)
        self.slots.remove(slot)
        fresh = self._start_actor(slot.model, slot.replica, self._generation())
        self.slots.append(fresh)
        return fresh

    def _check_ready(self) -> None:
        """Mark actors whose first `info()` came back, and record where each runs (node, GPUs, placement group,
        the engine's own processes) in the run's events; an actor that died while loading its model takes its
        model's queue down with it (every actor of it would fail the same way)."""
        pending = {s.ready_ref: s for s in self.slots if not s.ready and s.ready_ref is not None}
        if not pending:
            return
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
        for ref in ready:
            slot = pending[ref]
            try:
                where = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                self._actor_failed_to_start(slot, exc)
                continue
            slot.ready = True
            model = self.spec.models[slot.model]
            self.store.log_event(
                "actor_ready", actor=slot.label, model=model.name, gpus=_gpus(model),
                **{k: where.get(k) for k in ("node_id", "gpu_ids", "placement_group", "engine_placement")},
            )  # fmt: skip

    def _actor_failed_to_start(self, slot: _Slot, exc: BaseException) -> None:
        error = _short_error(exc)
        for job in list(self.queues[slot.model]):
            self._record(job, exc, error, final=True, actor=slot.label)
        self._model_cannot_start(slot.model, error)

    def _plan_pools(self) -> None:
        """Start actors up to each model's share of the cluster for the work it still has (a finished model's
        resources go to the others). Actors wait for their resources in Ray's queue; dispatch waits for them."""
        running = Counter(job.unit.model for job in self.in_flight.values())
        units = [len(q) + running[m] for m, q in enumerate(self.queues)]
        self._resources = ray.cluster_resources()
        wanted = plan_replicas(self.spec.models, units, self._resources)
        for m, n in enumerate(wanted):
            slots = [s for s in self.slots if s.model == m]
            room = sum(s.capacity - s.in_flight for s in slots)  # queued units the pool already has places for
            extra = min(n - len(slots), len(self.queues[m]) - room)
            if extra <= 0:
                continue  # a new actor would start only to find the last units taken
            have = {s.replica for s in slots}
            free = [r for r in range(n + len(have)) if r not in have][:extra]
            self.slots.extend(self._start_actor(m, r, self._generation()) for r in free)

    # -- the loop ---------------------------------------------------------------------------------------

    def run(self) -> SweepOutcome:
        start, self._thread_start = time.perf_counter(), time.thread_time()
        plan = self.resolved.plan
        for unit in plan.units:
            expected = plan.expected_keys(unit, self.done)
            if expected:
                self.queues[unit.model].append(_Job(unit=unit, expected=expected))
        self._to_do = sum(len(j.expected) for q in self.queues for j in q)
        self.rows_left_per_cell = Counter(cell for q in self.queues for j in q for cell, _ in j.expected)
        for m, (model, queue) in enumerate(zip(self.spec.models, self.queues, strict=True)):
            self.cells_to_do[m] = len({cell for j in queue for cell, _ in j.expected})
            self.metrics.cells(model.name, 0, self.cells_to_do[m])
        units_per_model = [len(q) for q in self.queues]
        self._resources = ray.cluster_resources()
        replicas = plan_replicas(self.spec.models, units_per_model, self._resources)
        for m, n in enumerate(replicas):
            self.slots.extend(self._start_actor(m, r) for r in range(n))
        self.store.log_event("run_start", units=sum(units_per_model), rows=self._to_do, replicas=replicas)
        self._report()
        try:
            while self._work_left():
                self._check_ready()
                if self.stop_requested is None:
                    self._dispatch()
                self._collect()
                self._stored(self.writer.finished())
                self._poll_progress()
                if self._release_finished_pools() and self.stop_requested is None:
                    self._plan_pools()
            if self.stop_requested is not None:
                self._record_stop()
        except BaseException:
            self._shut_down(start, raise_write_errors=False)
            raise
        self._shut_down(start, raise_write_errors=True)
        return self.outcome

    def request_stop(self, reason: str, grace_s: float) -> None:
        """Stop taking work (a signal: preemption, a time limit). Units that finish within `grace_s` are still
        written; then the run ends, dropping what is still running (the next run redoes it)."""
        if self.stop_requested is None:
            self.stop_requested, self._stop_deadline = reason, time.monotonic() + grace_s
            self.store.log_event("stop_requested", reason=reason, grace_s=grace_s, running=len(self.in_flight))

    def _work_left(self) -> bool:
        if self.stop_requested is not None:
            running = bool(self.in_flight) and time.monotonic() < self._stop_deadline
            return running or bool(self.writer.pending)
        return bool(self.in_flight or any(self.queues) or self.writer.pending)

    def _record_stop(self) -> None:
        self.outcome.stopped = self.stop_requested
        self.outcome.dropped_units = [job.unit.unit_id for job in self.in_flight.values()]
        self.outcome.not_started_units = sum(len(q) for q in self.queues)

    def _shut_down(self, start: float, *, raise_write_errors: bool) -> None:
        """Stop every actor, finish every shard write handed over, and log the run's end."""
        self._stop_actors(list(self.slots))
        rest = self.writer.close()  # every unit handed over is on disk before the run ends
        self.outcome.seconds = time.perf_counter() - start
        self.outcome.driver_seconds = time.thread_time() - self._thread_start
        try:
            self._stored(rest if raise_write_errors else [w for w in rest if w.error is None])
        finally:
            with contextlib.suppress(OSError):  # a full disk must not hide the error that ends the run
                self.store.log_event("run_end", **{k: v for k, v in self.outcome.__dict__.items()})

    def _dispatch(self) -> None:
        for m, queue in enumerate(self.queues):  # a retried unit may come back after its pool was freed
            if queue and not any(s.model == m for s in self.slots):
                self.slots.append(self._start_actor(m, 0, generation=self._generation()))
        for slot in self.slots:
            queue = self.queues[slot.model]
            while slot.ready and queue and slot.in_flight < slot.capacity:
                job = self._next_job(queue, slot)
                if job is None:
                    break
                d = job.unit.dataset
                problems = [self._problems_by_id[d][pid] for pid in job.unit.problem_ids]
                ref, job.tables = slot.handle.run.remote(
                    self.resolved.tasks[d], problems, list(job.unit.seeds), list(job.unit.budgets), job.expected,
                    unit_id=job.unit.unit_id, stored=self._stored_for(job.unit),
                )  # fmt: skip
                job.slot, job.started = slot, time.monotonic()
                slot.in_flight += 1
                slot.jobs.append(job)
                self.in_flight[ref] = job
                self.store.log_event("dispatch", unit=job.unit.unit_id, actor=slot.label, attempt=job.attempt)
                if self.on_dispatch is not None:
                    self.on_dispatch(slot.handle, job.unit)

    def _stored_for(self, unit: WorkUnit) -> list[dict[str, Any]]:
        """The stored nested trajectories (longest version of each) of the unit's (problem, seed) pairs, which
        its actor cuts budgets from instead of generating: read here, sent with the unit. Only units with a
        stored trajectory read the store (a fresh sweep never does)."""
        if not self._stored_trajectories:
            return []
        task, settings = self.resolved.tasks[unit.dataset], self._settings[unit.model]
        wanted = nested_trajectory_ids(task, settings, unit.problem_ids, unit.seeds).values()
        ids = sorted(set(wanted) & self._stored_trajectories.keys())
        if not ids:
            return []
        self.outcome.units_reusing += 1
        shards = [path for tid in ids for path in self._stored_trajectories[tid]]
        return self.store.read_trajectories(ids, shards=shards).to_pylist()

    def _next_job(self, queue: deque[_Job], slot: _Slot) -> _Job | None:
        """The first queued job this actor has not failed yet (any job if every actor has failed it)."""
        pool = [s.label for s in self.slots if s.model == slot.model]
        for i, job in enumerate(queue):
            if slot.label not in job.avoid or set(pool) <= job.avoid:
                del queue[i]
                return job
        return None

    def _collect(self) -> None:
        if not self.in_flight:
            time.sleep(0.05)  # actors still starting: nothing to wait on yet
            return
        ready, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=0.5)
        for ref in ready:
            job = self.in_flight.pop(ref)
            try:
                summary = ray.get(ref)  # the small return: the tables go to the writer as a reference
            except ray.exceptions.RayError as exc:  # the unit raised, its actor died, or Ray's memory monitor
                self._live_units.pop(job.unit.unit_id, None)
                _fetched_error(job.tables)
                job.tables = None
                lost = isinstance(exc, ray.exceptions.RayActorError | ray.exceptions.OutOfMemoryError)
                self._failed(job, exc, actor_lost=lost)
            else:
                self._write(job, summary)
            job.slot.in_flight -= 1
            job.slot.jobs.remove(job)
            self._report()
        self._time_out_hung_units()

    def _poll_progress(self) -> None:
        """Ask busy actors how far their running units are (tokens, trajectories), for `on_progress`; every
        PROGRESS_EVERY_S, or less often with many actors (at most POLLS_PER_S calls a second in all)."""
        if self.on_progress is None:
            return
        asked = {s.progress_ref: s for s in self.slots if s.progress_ref is not None}
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
                running = {job.unit.unit_id for job in self.in_flight.values()}  # a late reply must not revive one
                self._live_units.update({uid: p for uid, p in live["units"].items() if uid in running})
            if ready:
                self._report()
        busy = [s for s in self.slots if s.ready and s.in_flight and s.progress_ref is None]
        now = time.monotonic()
        if now - self._last_poll < max(PROGRESS_EVERY_S, len(busy) / POLLS_PER_S):
            return
        self._last_poll = now
        for slot in busy:
            slot.progress_ref = slot.handle.progress.remote()

    def _write(self, job: _Job, summary: dict[str, Any]) -> None:
        """Hand a finished unit to the writer thread, which writes exactly its expected rows (it checks); they
        count as done from now on. `expected` was planned as rows not stored, so none is ever written twice."""
        if job.expected & self.done:
            raise RuntimeError(f"unit {job.unit.unit_id} would write rows that are already stored")
        self.done |= job.expected
        self.writer.submit(job, summary, job.tables)

    def _stored(self, written: list[Written]) -> None:
        """Bookkeeping for units whose shards are on disk: counts, metrics, manifest, events."""
        for w in written:
            if w.error is not None:
                raise TtscaleError(
                    f"Cannot write results to {self.store.root}: {type(w.error).__name__}: {w.error}. Free space or "
                    "fix the permissions, then run the same command again: finished units are kept."
                ) from w.error
            self._account(w.job, w.summary)
        if written:
            self._report()

    def _account(self, job: _Job, summary: dict[str, Any]) -> None:
        job.tables = None  # on disk now: let Ray free the object
        self._live_units.pop(job.unit.unit_id, None)  # its trajectories now count as stored
        model = self.spec.models[job.unit.model].name
        self._count_cells(job.expected, job.unit.model)
        thinking = summary.get("thinking_tokens", 0)
        self.metrics.stored(model, summary["rows"], summary["tokens"], thinking, time.monotonic() - job.started)
        if model not in self.engines and summary["engine"]:
            self.engines[model] = summary["engine"]
            self._record_engines()
        self._trajectories_stored[0] += summary["trajectories"]
        self._trajectories_stored[1] += summary["trajectories"]
        self.outcome.rows_written += summary["rows"]
        self.outcome.units_done += 1
        self.outcome.tokens += summary["tokens"]
        self.outcome.thinking_tokens += thinking
        self.store.log_event(
            "done", unit=job.unit.unit_id, actor=job.slot.label, rows=summary["rows"], seconds=summary["seconds"],
            started=summary["started"],
        )  # fmt: skip

    def _count_cells(self, keys: set[tuple[str, str]], m: int) -> None:
        """Cells whose last expected row just arrived count as done."""
        for cell, _ in keys:
            self.rows_left_per_cell[cell] -= 1
            if self.rows_left_per_cell[cell] == 0:
                self.cells_done[m] += 1
        self.metrics.cells(self.spec.models[m].name, self.cells_done[m], self.cells_to_do[m])

    def _record_engines(self) -> None:
        """Put the engine and model versions into this run's manifest entry as soon as they are known."""
        manifest = self.store.manifest()
        if manifest is not None and manifest.get("runs"):
            manifest["runs"][-1]["engines"] = dict(self.engines)
            self.store.write_manifest(manifest)

    def _failed(self, job: _Job, exc: BaseException, *, actor_lost: bool) -> None:
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
            if slot in self.slots:
                self._replace(slot)
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

    def _split(self, job: _Job, exc: BaseException, error: str) -> bool:
        """Out of memory: queue the unit again as two halves (a smaller batch each), without spending an attempt;
        False when it is one problem × one seed already."""
        halves = split_unit(job.unit)
        if halves is None:
            return False
        self._record(job, exc, error, final=False)
        grid = self.resolved.plan.expected_keys
        jobs = [
            _Job(unit=replace(half, rows=len(keys)), expected=keys, attempt=job.attempt, avoid=set(job.avoid))
            for half in halves
            if (keys := grid(half, set()) & job.expected)
        ]
        self.store.log_event("split", unit=job.unit.unit_id, into=[j.unit.unit_id for j in jobs], reason=error)
        self.queues[job.unit.model].extendleft(reversed(jobs))
        return True

    def _record(self, job: _Job, exc: BaseException, error: str, *, final: bool, actor: str | None = None) -> None:
        actor = actor or job.slot.label
        self.store.record_failure(
            job.unit.unit_id, job.attempt, error, "".join(traceback.format_exception(exc))[-4000:],
            actor=actor, model=self.spec.models[job.unit.model].name,
            dataset=self.spec.datasets[job.unit.dataset].name, budgets=list(job.unit.budgets), final=final,
        )  # fmt: skip
        self.store.log_event("failed", unit=job.unit.unit_id, actor=actor, attempt=job.attempt, error=error)
        self.metrics.failed(self.spec.models[job.unit.model].name)

    def _model_cannot_start(self, model: int, error: str) -> None:
        """An actor failed while loading its model: retrying elsewhere will fail the same way."""
        name = self.spec.models[model].name
        message = f"model '{name}' could not start: {error}"
        if message not in self.outcome.fatal:
            self.outcome.fatal.append(message)
        for slot in [s for s in self.slots if s.model == model]:
            self._stop_actor(slot)
            self.slots.remove(slot)
        while self.queues[model]:
            self.outcome.failed_units.append(self.queues[model].popleft().unit.unit_id)

    def _time_out_hung_units(self) -> None:
        limit = self.spec.unit_timeout_s
        if limit is None:
            return
        now = time.monotonic()
        for job in list(self.in_flight.values()):
            slot = job.slot
            if slot is not None and slot.timed_out is None and now - job.started > limit and slot in self.slots:
                slot.timed_out = job
                self.store.log_event("timed_out", unit=job.unit.unit_id, actor=slot.label, seconds=now - job.started)
                ray.kill(slot.handle, no_restart=True)  # a hung engine: its refs fail as actor errors

    def _release_finished_pools(self) -> bool:
        """Stop the actors of models with nothing left to do; True when any went."""
        finished = [s for s in self.slots if not self.queues[s.model] and s.in_flight == 0]
        self._stop_actors(finished)
        for slot in finished:
            self.slots.remove(slot)
        return bool(finished)

    def _report(self) -> None:
        if self.on_progress is None:
            return
        done, total, out = sum(self.cells_done), sum(self.cells_to_do), self.outcome
        live = list(self._live_units.values())
        self.on_progress(
            Progress(
                cells_done=done, cells_to_do=total, rows_done=out.rows_written, rows_to_do=self._to_do,
                tokens=max(sum(self._actor_tokens.values()), out.tokens),
                trajectories_done=self._trajectories_stored[0] + sum(u["trajectories_done"] for u in live),
                trajectories_total=self._trajectories_stored[1] + sum(u["trajectories_total"] for u in live),
            )
        )  # fmt: skip


def _gpus(model) -> int:
    return model.tensor_parallel if model.on_gpus else 0


def _died_starting(exc: BaseException) -> bool:
    """Did the actor die in its constructor (model load), rather than while running a unit?"""
    return "creation task" in str(exc) or "__init__" in str(exc)


def _fetched_error(ref: Any) -> None:
    """Fetch a failed unit's second return (its error again), so Ray does not report it as an unhandled error."""
    with contextlib.suppress(Exception):
        ray.get(ref, timeout=5)


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
