"""The Ray actor that owns one engine and runs work units on it, checking every cell comes back once."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import ray
from ray.util import metrics

from ttscale.actors.engines import create_engine
from ttscale.runner import RunSettings, run_unit
from ttscale.store import rows_table, trajectories_table
from ttscale.tasks.base import Problem, Task


class UnitIncompleteError(RuntimeError):
    """A unit's rows do not cover its expected cells exactly once (a bug, never silently written)."""


class EngineWorker:
    """One engine, loaded once; `run` measures a work unit and returns its rows as Arrow tables."""

    def __init__(
        self, *, model: str, engine: str, engine_options: dict[str, Any], settings: RunSettings, label: str
    ) -> None:
        self.label = label
        self.settings = settings
        self.engine = create_engine(engine, model, **engine_options)
        tags = {"model": model, "actor": label}
        self._rows = metrics.Counter("ttscale_rows_done", "Result rows produced", tag_keys=("model", "actor"))
        self._tokens = metrics.Counter(
            "ttscale_tokens_generated", "Tokens generated (thinking + answers)", tag_keys=("model", "actor")
        )
        self._failures = metrics.Counter("ttscale_unit_failures", "Work units that raised", tag_keys=("model", "actor"))
        self._latency = metrics.Histogram(
            "ttscale_unit_seconds",
            "Wall time of one work unit",
            boundaries=[1, 5, 15, 30, 60, 120, 300, 600, 1800],
            tag_keys=("model", "actor"),
        )
        self._busy = metrics.Gauge("ttscale_actor_busy", "1 while a unit runs", tag_keys=("model", "actor"))
        for m in (self._rows, self._tokens, self._failures, self._latency, self._busy):
            m.set_default_tags(tags)
        self._busy.set(0)

    def info(self) -> dict[str, Any]:
        """What this actor runs, for the manifest and the dashboard."""
        info = self.engine.info
        return {
            **info.__dict__,
            "label": self.label,
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
        }

    def run(
        self,
        task: Task,
        problems: Sequence[Problem],
        seeds: Sequence[int],
        budgets: Sequence[int],
        expected: set[tuple[str, str]],
    ) -> dict[str, Any]:
        """Measure the unit and keep exactly the `expected` (cell id, problem id) rows."""
        start = time.perf_counter()
        self._busy.set(1)
        try:
            result = run_unit(self.engine, task, problems, seeds=seeds, budgets=budgets, settings=self.settings)
            rows = [r for r in result.rows if (r["cell_id"], r["problem_id"]) in expected]
            keys = [(r["cell_id"], r["problem_id"]) for r in rows]
            if len(keys) != len(set(keys)) or set(keys) != expected:
                missing = len(expected - set(keys))
                raise UnitIncompleteError(
                    f"unit returned {len(keys)} rows for {len(expected)} expected cells ({missing} missing, "
                    f"{len(keys) - len(set(keys))} duplicated)"
                )
        except Exception:
            self._failures.inc()
            raise
        finally:
            self._busy.set(0)
        seconds = time.perf_counter() - start
        self._rows.inc(len(rows))
        self._tokens.inc(result.generated_tokens)
        self._latency.observe(seconds)
        return {
            "rows": rows_table(rows),
            "trajectories": trajectories_table(result.trajectories),
            "tokens": result.generated_tokens,
            "seconds": seconds,
        }

    def ping(self) -> bool:
        return True


WorkerActor = ray.remote(EngineWorker)
