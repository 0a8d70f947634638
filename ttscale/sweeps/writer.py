"""The shard writer: one thread writes finished units' shards, so the dispatch loop never waits on the disk.

The loop hands over a finished unit (`submit`: its job and a reference to its tables) and carries on
dispatching; the thread fetches the tables (the loop never deserialises rows), checks they hold exactly the
rows the unit was sent for, writes them atomically (`ResultStore.write_unit`: temporary file, fsync, rename)
in hand-over order, and reports each back (`finished`); the loop does all its bookkeeping then, in its own
thread. `close` waits for every write
handed over: a normal end, an error or Ctrl-C all leave every finished unit on disk; a hard kill loses at
most the units not yet written, which the next run redoes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ttscale.store import ResultStore


@dataclass
class Written:
    """One handed-over unit, back from the writer: `error` is None when its shards are on disk."""

    job: Any  # the driver's job: `.unit.unit_id` and `.expected`, the (cell id, problem id) keys it must write
    summary: dict[str, Any]
    error: BaseException | None = None


class UnexpectedRowsError(RuntimeError):
    """A unit's rows are not exactly the rows it was sent for: never written."""


class ShardWriter:
    """A daemon thread that writes units' shards in hand-over order; see the module docstring."""

    def __init__(self, store: ResultStore, fetch: Callable[[Any], dict[str, Any]]) -> None:
        self.store = store
        self.fetch = fetch  # reference → {"rows": table, "trajectories": table} (ray.get in the driver)
        self._inbox: queue.SimpleQueue[tuple[Any, dict[str, Any], Any] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[Written] = queue.SimpleQueue()
        self.pending = 0  # handed over, not yet reported back by `finished`
        self._thread = threading.Thread(target=self._run, name="ttscale-shard-writer", daemon=True)
        self._thread.start()

    def submit(self, job: Any, summary: dict[str, Any], tables: Any) -> None:
        self.pending += 1
        self._inbox.put((job, summary, tables))

    def finished(self, *, wait: bool = False) -> list[Written]:
        """Units written (or failed) since the last call; with `wait`, block until every pending one is back."""
        out = []
        while self.pending:
            try:
                written = self._done.get(block=wait)
            except queue.Empty:
                break
            self.pending -= 1
            out.append(written)
        return out

    def close(self) -> list[Written]:
        """Finish every write handed over, stop the thread, and return what had not been collected yet."""
        rest = self.finished(wait=True)
        self._inbox.put(None)
        self._thread.join()
        return rest

    def _run(self) -> None:
        while (item := self._inbox.get()) is not None:
            job, summary, ref = item
            try:
                tables = self.fetch(ref)
                rows = tables["rows"]
                keys = list(zip(rows.column("cell_id").to_pylist(), rows.column("problem_id").to_pylist(), strict=True))
                if len(keys) != len(set(keys)) or set(keys) != job.expected:  # never a row twice, or one not asked
                    raise UnexpectedRowsError(
                        f"unit {job.unit.unit_id} returned {len(keys)} rows for {len(job.expected)} expected"
                    )
                self.store.write_unit(job.unit.unit_id, rows, tables["trajectories"])
            except BaseException as exc:  # reported to the loop, which stops the sweep with it
                self._done.put(Written(job, summary, exc))
            else:
                self._done.put(Written(job, summary))
