"""The sweep driver: a dispatch loop that feeds work units to one actor pool per model and streams results.

The driver never touches tokens, and leaves resources to `sweeps/placement.py`. It dispatches units from a
queue per model to actors once they are up, so faster actors take more; keeps each actor busy with as many
units as its engine runs at once plus `WAITING_PER_ACTOR`; hands each piece a unit streams out (its finished
(problem, seed) groups) to the shard writer as it arrives, counts its rows once they are on disk, and the unit
once all its rows are; a failed unit is retried for the rows it had not streamed out yet. It composes the actor
pools' life (`sweeps/pool.py`: actors started, replaced, and released as soon as a model's queue is empty,
re-planning the pools so the freed GPUs or CPUs go to the models that still have work), the failure policy
(`sweeps/failures.py`: retries, splits, time-outs, fatal models) and live progress (`sweeps/progress.py`).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import ray

from ttscale.errors import TtscaleError
from ttscale.runner import nested_trajectory_ids
from ttscale.store import ResultStore
from ttscale.sweeps.failures import FailurePolicy
from ttscale.sweeps.jobs import Job
from ttscale.sweeps.outcome import SweepOutcome
from ttscale.sweeps.plan import WorkUnit, run_settings
from ttscale.sweeps.pool import ActorPools, Slot
from ttscale.sweeps.progress import ProgressFn, RunProgress
from ttscale.sweeps.resolve import ResolvedSweep
from ttscale.sweeps.telemetry import SweepMetrics
from ttscale.sweeps.writer import ShardWriter, Written

__all__ = ["Driver"]


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
        self.on_dispatch = on_dispatch
        self.done = store.done_keys()
        self.outcome = SweepOutcome()
        self.queues: list[deque[Job]] = [deque() for _ in self.spec.models]
        self.in_flight: dict[Any, Job] = {}
        self.engines: dict[str, dict[str, Any]] = {}  # model -> engine/model versions seen in its rows
        self.metrics = SweepMetrics(self.spec.name)
        self.pools = ActorPools(self.spec, store)
        self.progress = RunProgress(self.spec, self.metrics, self.outcome, on_progress)
        self.failures = FailurePolicy(
            resolved, store, self.metrics, self.pools, self.queues, self.outcome, note=self.progress.note
        )
        self.writer = ShardWriter(
            store, fetch=ray.get, lost_errors=(ray.exceptions.RayError,), flush_groups=self.spec.flush_every_groups,
            flush_seconds=self.spec.flush_every_s,
        )  # fmt: skip
        self.stop_requested: str | None = None  # set by request_stop (from a signal handler)
        self._stop_deadline = 0.0  # after a requested stop: until when running units may still finish
        self._problems_by_id = [{p.id: p for p in problems} for problems in resolved.problems]
        self._thread_start = time.thread_time()
        self._settings = [run_settings(self.spec, model) for model in self.spec.models]
        self._nested = self.spec.forcing.trajectory == "nested"
        # what units can reuse (and retries extend), where: read at the start, checkpoints added as they are written
        self._stored_trajectories = store.trajectory_index() if self._nested else {}

    def run(self) -> SweepOutcome:
        start, self._thread_start = time.perf_counter(), time.thread_time()
        plan = self.resolved.plan
        for unit in plan.units:
            expected = plan.expected_keys(unit, self.done)
            if expected:
                self.queues[unit.model].append(Job(unit=unit, expected=expected))
        self.progress.start(self.queues, lambda unit: plan.unit_minutes(unit) * 60)
        units_per_model = [len(q) for q in self.queues]
        replicas = self.pools.start_all(units_per_model)
        self.store.log_event("run_start", units=sum(units_per_model), rows=self.progress.rows_to_do, replicas=replicas)
        self.progress.report()
        try:
            while self._work_left():
                self.pools.check_ready(self.failures.actor_failed_to_start)
                if self.stop_requested is None:
                    self._dispatch()
                self._collect()
                self._stored(self.writer.finished())
                self.progress.units_running = len(self.in_flight)
                self.progress.poll(self.pools.slots, self.in_flight.values())
                if self.pools.release_finished(self.queues) and self.stop_requested is None:
                    self.pools.replan(self.queues, Counter(job.unit.model for job in self.in_flight.values()))
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
        self.pools.stop(list(self.pools.slots))
        rest = self.writer.close()  # every unit handed over is on disk before the run ends
        self.outcome.seconds = time.perf_counter() - start
        self.outcome.driver_seconds = time.thread_time() - self._thread_start
        try:
            self._stored(rest if raise_write_errors else [w for w in rest if w.error is None])
        finally:
            with contextlib.suppress(OSError):  # a full disk must not hide the error that ends the run
                self.store.log_event("run_end", **{k: v for k, v in self.outcome.__dict__.items()})

    # -- dispatch ---------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        for m, queue in enumerate(self.queues):  # a retried unit may come back after its pool was freed
            if queue:
                self.pools.ensure_actor(m)
        for slot in self.pools.slots:
            queue = self.queues[slot.model]
            while slot.ready and queue and slot.in_flight < slot.capacity:
                job = self._next_job(queue, slot)
                if job is None:
                    break
                d = job.unit.dataset
                problems = [self._problems_by_id[d][pid] for pid in job.unit.problem_ids]
                stream = slot.handle.run.remote(
                    self.resolved.tasks[d], problems, list(job.unit.seeds), list(job.unit.budgets), job.expected,
                    unit_id=job.unit.unit_id, stored=self._stored_for(job.unit),
                    checkpoint_every_s=self.spec.flush_every_s if self._nested else None,
                )  # fmt: skip
                job.slot, job.started, job.handed_before = slot, time.monotonic(), len(job.handed)
                slot.in_flight += 1
                slot.jobs.append(job)
                self.in_flight[stream] = job
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

    def _next_job(self, queue: deque[Job], slot: Slot) -> Job | None:
        """The first queued job this actor has not failed yet (any job if every actor has failed it). A retry waits
        until what its failed attempt streamed is on disk, so that it is sent the latest checkpoints."""
        pool = [s.label for s in self.pools.of_model(slot.model)]
        for i, job in enumerate(queue):
            if job.pieces_pending:
                continue
            if slot.label not in job.avoid or set(pool) <= job.avoid:
                del queue[i]
                return job
        return None

    # -- results ----------------------------------------------------------------------------------------

    def _collect(self) -> None:
        if not self.in_flight:
            time.sleep(0.05)  # actors still starting: nothing to wait on yet
            return
        ready, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=0.5)
        for stream in ready:
            while stream in self.in_flight and ray.wait([stream], timeout=0)[0]:
                self._next_item(stream, self.in_flight[stream])
        self.failures.time_out_hung_units(self.in_flight.values())

    def _next_item(self, stream: Any, job: Job) -> None:
        """Take the next item a running unit streamed out: a piece's header, its tables, or the unit's end."""
        try:
            ref = next(stream)
        except StopIteration:  # a stream ends after its "end" item, or after the error that ended it
            self._unit_ended(stream, job, None)
            return
        if job.header is not None:  # the tables of the piece whose header came last: the writer fetches them
            self._hand_over(job, job.header, ref)
            job.header = None
            return
        try:
            item = ray.get(ref)  # a header or the end: small
        except ray.exceptions.RayError as exc:  # the unit raised, its actor died, or Ray's memory monitor
            self._unit_ended(stream, job, exc)
            return
        if item["kind"] == "rows":
            job.header = item
        else:
            self._unit_ended(stream, job, None, summary=item)

    def _hand_over(self, job: Job, header: dict[str, Any], ref: Any) -> None:
        """Hand a piece to the writer; its rows count as done from now on. Its keys must be rows the unit was
        sent for and has not streamed yet (planned as rows not stored), so none is ever written twice."""
        keys = {tuple(k) for k in header["keys"]}
        if not keys <= job.expected - job.handed or keys & self.done:
            raise RuntimeError(f"unit {job.unit.unit_id} streamed rows it was not sent for, or already stored")
        job.handed |= keys
        self.done |= keys
        job.pieces_pending += 1
        self.writer.submit(job, header, ref)

    def _unit_ended(self, stream: Any, job: Job, exc: BaseException | None, summary: dict | None = None) -> None:
        """A unit's stream ended: with its summary (every row streamed), or with an error, after which the failure
        policy queues it again for exactly the rows it had not streamed out (those it did are being written)."""
        if self.in_flight.pop(stream, None) is None:
            return
        self.writer.end(job)  # write what it streamed now, whatever the flush policy says
        job.header = None
        missing = job.expected - job.handed
        if exc is None and summary is None and missing:
            exc = RuntimeError(f"unit {job.unit.unit_id} ended without its last {len(missing)} rows")
        if exc is not None and missing:
            self.progress.unit_ended(job.unit.unit_id)
            if len(job.handed) > job.handed_before:  # this attempt stored some groups: the retry skips them
                streamed = len(job.handed) - job.handed_before
                self.store.log_event("partial", unit=job.unit.unit_id, streamed=streamed, missing=len(missing))
            job.expected = missing
            self.failures.attempt_failed(job, exc)
        else:
            job.summary = summary or {"seconds": time.monotonic() - job.started, "started": None, "engine": None}
        job.slot.in_flight -= 1
        job.slot.jobs.remove(job)
        self._maybe_done(job)
        self.progress.report()

    def _stored(self, written: list[Written]) -> None:
        """Bookkeeping for pieces whose shards are on disk: counts, metrics, and units whose rows all are."""
        for w in written:
            if w.error is not None:
                raise TtscaleError(
                    f"Cannot write results to {self.store.root}: {type(w.error).__name__}: {w.error}. Free space or "
                    "fix the permissions, then run the same command again: finished units are kept."
                ) from w.error
            job = w.job
            job.pieces_pending -= 1
            if w.lost is not None and w.header.get("checkpoint"):  # nothing to redo: the retry starts further back
                self.store.log_event("checkpoint_lost", unit=job.unit.unit_id, error=str(w.lost)[:200])
            elif w.lost is not None:
                self._lost(job, w)
            elif w.header.get("checkpoint"):
                self._checkpointed(job, w)
            else:
                self._account_piece(job, w.header)
            self._maybe_done(job)
        if written:
            self.progress.report()

    def _lost(self, job: Job, w: Written) -> None:
        """A piece's tables were gone before the writer fetched them (their node died): measure its rows again."""
        keys = {tuple(k) for k in w.header["keys"]}
        self.done -= keys
        job.handed -= keys
        self.store.log_event("lost", unit=job.unit.unit_id, rows=len(keys), error=str(w.lost)[:200])
        retry = Job(unit=replace(job.unit, rows=len(keys)), expected=keys, attempt=job.attempt, avoid=set(job.avoid))
        self.queues[job.unit.model].appendleft(retry)

    def _checkpointed(self, job: Job, w: Written) -> None:
        """Snapshots of a unit's trajectories still generating are on disk: a retry of its groups extends them."""
        if w.trajectory_shard is not None:
            for tid in w.header["trajectory_ids"]:
                self._stored_trajectories.setdefault(tid, []).append(w.trajectory_shard)
        self.store.log_event(
            "checkpoint", unit=job.unit.unit_id, trajectories=w.header["checkpoint"],
            model_tokens=w.header["checkpoint_tokens"],
        )  # fmt: skip

    def _account_piece(self, job: Job, header: dict[str, Any]) -> None:
        model = self.spec.models[job.unit.model].name
        keys = {tuple(k) for k in header["keys"]}
        self.progress.rows_stored(job, keys, header["trajectories"])
        self.metrics.stored(model, header["rows"], header["tokens"], header["thinking_tokens"])
        self.outcome.rows_written += header["rows"]
        self.outcome.tokens += header["tokens"]
        self.outcome.thinking_tokens += header["thinking_tokens"]
        job.stored_rows += header["rows"]

    def _maybe_done(self, job: Job) -> None:
        """A unit counts as done once its stream ended with every row streamed and all of them are on disk."""
        if job.summary is None or job.pieces_pending or job.accounted:
            return
        job.accounted = True
        summary, model = job.summary, self.spec.models[job.unit.model].name
        self.progress.unit_ended(job.unit.unit_id)
        self.metrics.unit_done(model, time.monotonic() - job.started)
        if model not in self.engines and summary.get("engine"):
            self.engines[model] = summary["engine"]
            self._record_engines()
        self.outcome.units_done += 1
        self.progress.note(
            f"unit {job.unit.unit_id} done: {job.stored_rows} rows in {summary['seconds']:.0f} s on {job.slot.label}"
        )
        self.store.log_event(
            "done", unit=job.unit.unit_id, actor=job.slot.label, model=model, rows=job.stored_rows,
            seconds=summary["seconds"], started=summary["started"], tokens=summary.get("tokens"),
            thinking_tokens=summary.get("thinking_tokens"),
        )  # fmt: skip

    def _record_engines(self) -> None:
        """Put the engine and model versions into this run's manifest entry as soon as they are known."""
        manifest = self.store.manifest()
        if manifest is not None and manifest.get("runs"):
            manifest["runs"][-1]["engines"] = dict(self.engines)
            self.store.write_manifest(manifest)
