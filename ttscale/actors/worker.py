"""The Ray actor that owns one engine and runs work units on it, checking every cell comes back once.

Methods run in two concurrency groups: `units` (work units; two at once on engines that batch across calls,
so one unit's trajectories decode while the other scores or is being written) and `monitor` (progress, info,
ping), which answers while units run, so a long unit reports its tokens and finished trajectories live.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import ray
from ray.util import metrics

from ttscale.engines import create_engine, engine_kind
from ttscale.runner import RunSettings, UnitPiece, UnitProgress, iter_unit, unit_groups
from ttscale.schema import rows_table, trajectories_table
from ttscale.tasks.base import Problem, Task

UNITS_AT_ONCE = 2  # units in flight inside a batching engine's actor
PROVENANCE = ("engine", "engine_version", "model_path", "family", "config_id", "config")  # into the manifest
METRICS_EVERY_S = 5.0  # how often live token and trajectory counts go to the dashboard


class UnitIncompleteError(RuntimeError):
    """A unit's rows do not cover its expected cells exactly once (a bug, never silently written)."""


class EngineWorker:
    """One engine, loaded once; `run` measures a work unit and returns its rows as Arrow tables."""

    def __init__(
        self, *, model: str, engine: str, engine_options: dict[str, Any], settings: RunSettings, label: str
    ) -> None:
        self.label = label
        self.settings = settings
        # Any process the engine starts (vLLM's engine core) that calls ray.init() must join this actor's cluster:
        # without RAY_ADDRESS Ray would look for a `ray_current_cluster` file, which neither a local instance nor a
        # `ray start --temp-dir` head writes where it looks, and start a private instance (or join another user's).
        # vLLM exports it only when it picks the spawn start method itself, which its CPU platform pre-empts.
        os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
        self.engine = create_engine(engine, model, **engine_options)
        _warm_up()
        self._units: dict[str, UnitProgress] = {}
        self._lock = threading.Lock()
        self._tokens_reported = 0
        self._trajectories_reported: dict[str, int] = {}
        tags = {"model": model, "actor": label}
        self._tokens = metrics.Counter(
            "ttscale_tokens_generated", "Tokens generated (thinking, answers, scoring), live", tag_keys=tuple(tags)
        )
        self._trajectories = metrics.Counter(
            "ttscale_trajectories_done", "Thinking trajectories completed, live", tag_keys=tuple(tags)
        )
        self._rows = metrics.Counter("ttscale_rows_done", "Result rows produced", tag_keys=tuple(tags))
        self._failures = metrics.Counter("ttscale_unit_failures", "Work units that raised", tag_keys=tuple(tags))
        self._latency = metrics.Histogram(
            "ttscale_unit_seconds", "Wall time of one work unit",
            boundaries=[1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200], tag_keys=tuple(tags),
        )  # fmt: skip
        self._busy = metrics.Gauge("ttscale_actor_units_running", "Units running on the actor", tag_keys=tuple(tags))
        for m in (self._tokens, self._trajectories, self._rows, self._failures, self._latency, self._busy):
            m.set_default_tags(tags)
        self._busy.set(0)
        threading.Thread(target=self._publish_live, name="ttscale-live-metrics", daemon=True).start()

    @ray.method(concurrency_group="monitor")
    def info(self) -> dict[str, Any]:
        """What this actor runs and where, for the manifest, the dashboard and placement checks: its node, the GPUs
        Ray gave it (a tensor-parallel engine's workers use exactly these), its placement group, and the engine's
        own report. Read from this process only: it never waits for resources, so it answers while units run."""
        info = self.engine.info
        ctx = ray.get_runtime_context()
        placement = getattr(self.engine, "placement", None)  # engines with workers of their own report them
        return {
            **info.__dict__,
            "label": self.label,
            "pid": os.getpid(),
            "node_id": ctx.get_node_id(),
            "gpu_ids": [str(g) for g in ctx.get_accelerator_ids().get("GPU", [])],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "placement_group": ctx.get_placement_group_id(),
            "engine_placement": placement() if callable(placement) else None,
        }

    @ray.method(concurrency_group="monitor")
    def ping(self) -> bool:
        return True

    @ray.method(concurrency_group="monitor")
    def shutdown(self) -> None:
        """Release the engine (vLLM: stop its engine-core and worker processes, freeing their GPUs) before the
        driver kills the actor, so nothing it started outlives it."""
        self.engine.close()

    @ray.method(concurrency_group="monitor")
    def progress(self) -> dict[str, Any]:
        """Live: the engine's tokens so far, and each running unit's finished trajectories."""
        with self._lock:
            units = {uid: p.still_running() for uid, p in self._units.items()}
        return {"tokens": int(self.engine.generated_tokens), "units": units}

    def _publish_live(self) -> None:
        """Every METRICS_EVERY_S, add the tokens and trajectories since the last time to the dashboard's
        counters, so they move while a unit runs (a thread of its own: no driver has to ask)."""
        while True:
            time.sleep(METRICS_EVERY_S)
            with self._lock:
                self._report_tokens()
                for uid, p in self._units.items():
                    self._report_trajectories(uid, p)

    def _report_tokens(self) -> None:
        """Add the engine's tokens since the last report to the dashboard counter (call with the lock held)."""
        tokens = int(self.engine.generated_tokens)
        if tokens > self._tokens_reported:
            self._tokens.inc(tokens - self._tokens_reported)
            self._tokens_reported = tokens

    def _report_trajectories(self, unit_id: str, progress: UnitProgress) -> None:
        """Add a unit's newly finished trajectories to the dashboard counter (call with the lock held)."""
        new = progress.trajectories_done - self._trajectories_reported.get(unit_id, 0)
        if new > 0:
            self._trajectories.inc(new)
            self._trajectories_reported[unit_id] = progress.trajectories_done

    @ray.method(concurrency_group="units", num_returns="streaming")
    def run(
        self,
        task: Task,
        problems: Sequence[Problem],
        seeds: Sequence[int],
        budgets: Sequence[int],
        expected: set[tuple[str, str]],
        unit_id: str = "",
        stored: Sequence[dict[str, Any]] = (),
        checkpoint_every_s: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Measure the (problem, seed) groups that hold an `expected` (cell id, problem id) row and stream exactly
        those rows out as groups finish (`runner.iter_unit`). `stored`: the nested trajectories the store already
        holds for the unit's (problem, seed) pairs (read by the driver), which its budgets are cut from or which
        are extended.

        A Ray streaming generator: per finished piece, first a small header (`kind: "rows"`: its row keys, rows,
        trajectories, tokens), then its tables (rows, trajectories), which only the driver's shard writer
        fetches; last, `kind: "end"` with the unit's summary (seconds, the engine that made the rows). Rows
        already yielded stay valid when the unit fails later: a retry measures only the groups still missing.
        Every `checkpoint_every_s` while trajectories generate, a piece with no rows (`checkpoint`: how many
        trajectories, `trajectory_ids`) carries snapshots of those still growing, which a retry extends."""
        start, started_at = time.perf_counter(), time.time()
        progress = self._started(unit_id)
        settings = self.settings
        emitted: set[tuple[str, str]] = set()
        tokens = thinking = 0
        engine_fields = None
        try:
            groups = unit_groups(task, settings, budgets, seeds, expected)
            pieces = iter_unit(
                self.engine, task, problems, seeds=seeds, budgets=budgets, settings=settings, progress=progress,
                stored=stored, groups=groups, checkpoint_every_s=checkpoint_every_s,
            )  # fmt: skip
            for piece in pieces:
                if piece.checkpoint:
                    yield checkpoint_header(piece)
                    yield {"rows": rows_table([]), "trajectories": trajectories_table(piece.trajectories)}
                    continue
                rows = [r for r in piece.rows if (r["cell_id"], r["problem_id"]) in expected]
                keys = [(r["cell_id"], r["problem_id"]) for r in rows]
                if len(set(keys)) != len(keys) or emitted & set(keys):
                    raise UnitIncompleteError(f"unit {unit_id} produced a row twice")
                emitted.update(keys)
                tokens, thinking = tokens + piece.generated_tokens, thinking + piece.thinking_generated
                engine_fields = engine_fields or ({k: rows[0][k] for k in PROVENANCE} if rows else None)
                header = {
                    "kind": "rows", "keys": keys, "rows": len(rows), "groups": piece.groups,
                    "trajectories": len({r["trajectory_id"] for r in rows}),
                    "tokens": piece.generated_tokens, "thinking_tokens": piece.thinking_generated,
                }  # fmt: skip
                progress.trajectories_streamed += header["trajectories"]  # counted by the driver once stored
                yield header
                yield {"rows": rows_table(rows), "trajectories": trajectories_table(piece.trajectories)}
                if rows:  # Ray's Counter.inc refuses 0
                    self._rows.inc(len(rows))
            if emitted != expected:
                raise UnitIncompleteError(
                    f"unit returned {len(emitted)} rows for {len(expected)} expected cells "
                    f"({len(expected - emitted)} missing)"
                )
        except Exception:
            self._failures.inc()
            raise
        finally:
            self._finished(unit_id, progress)
        seconds = time.perf_counter() - start
        self._latency.observe(seconds)
        yield {
            "kind": "end",
            "rows": len(emitted),
            "tokens": tokens,
            "thinking_tokens": thinking,  # 0 when every budget was cut from stored trajectories
            "seconds": seconds,
            "started": started_at,  # wall clock on the actor's node: when the unit began running
            "engine": engine_fields,
        }

    def _started(self, unit_id: str) -> UnitProgress:
        progress = UnitProgress()
        with self._lock:
            self._units[unit_id] = progress
            self._busy.set(len(self._units))
        return progress

    def _finished(self, unit_id: str, progress: UnitProgress) -> None:
        with self._lock:
            self._report_tokens()
            self._report_trajectories(unit_id, progress)
            self._units.pop(unit_id, None)
            self._trajectories_reported.pop(unit_id, None)
            self._busy.set(len(self._units))


def checkpoint_header(piece: UnitPiece) -> dict[str, Any]:
    """The header of a checkpoint piece: no rows; the trajectories it snapshots and the model tokens they hold."""
    return {
        "kind": "rows", "keys": [], "rows": 0, "groups": 0, "trajectories": 0, "tokens": 0, "thinking_tokens": 0,
        "checkpoint": len(piece.trajectories), "trajectory_ids": [t["trajectory_id"] for t in piece.trajectories],
        "checkpoint_tokens": sum(t["model_tokens"] for t in piece.trajectories),
    }  # fmt: skip


def _warm_up() -> None:
    """Import what a unit's grading needs (math-verify, sympy) before the actor says it is ready, so its first
    unit does not spend seconds importing while its engine waits."""
    from ttscale.tasks.grading import grade_math

    grade_math("\\frac{1}{2}", "0.5")


WorkerActor = ray.remote(concurrency_groups={"units": 1, "monitor": 1})(EngineWorker)
BatchingWorkerActor = ray.remote(concurrency_groups={"units": UNITS_AT_ONCE, "monitor": 1})(EngineWorker)


def worker_class(engine: str):
    """The actor class for an engine: batching engines take UNITS_AT_ONCE units at once."""
    return BatchingWorkerActor if engine_kind(engine).batches else WorkerActor


def units_at_once(engine: str) -> int:
    return UNITS_AT_ONCE if engine_kind(engine).batches else 1
