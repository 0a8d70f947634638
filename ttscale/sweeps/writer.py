"""The shard writer: one thread fetches the pieces units stream out and writes them on a flush policy.

The dispatch loop hands over each piece a running unit streams out (`submit`: its job, its header with the
(cell id, problem id) keys it holds, and a reference to its tables) and carries on dispatching. The thread
fetches the tables at once (so a piece outlives the actor or node that made it), checks they hold exactly the
header's rows, and buffers them per unit; it writes a unit's buffered pieces as one shard
(`ResultStore.write_unit`: temporary file, fsync, rename; trajectories before rows) when `flush_groups`
(problem, seed) groups have gathered, when the oldest has waited `flush_seconds`, or when the unit ended
(`end`), and reports each piece back (`finished`); the loop does all its bookkeeping then, in its own thread.
A checkpoint piece (no rows: snapshots of trajectories still generating) is written at once, with whatever
the unit has buffered. `close` writes everything buffered: a normal end, an error or Ctrl-C leave every piece
handed over on disk; a hard kill of the driver loses at most the buffered pieces (at most `flush_seconds` of a
unit's finished work), which the next run measures again. A piece whose tables cannot be fetched (its node
died first) comes back `lost`, and the loop queues its rows again.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ttscale.store import ResultStore

FLUSH_GROUPS = 64  # a shard per this many finished (problem, seed) groups of a unit (~the study's 8 × 8 unit)...
FLUSH_SECONDS = 300.0  # ...or once its oldest piece has waited this long: a driver kill loses at most this

__all__ = ["FLUSH_GROUPS", "FLUSH_SECONDS", "ShardWriter", "UnexpectedRowsError", "Written"]


@dataclass
class Written:
    """One handed-over piece, back from the writer: on disk when `error` and `lost` are both None."""

    job: Any  # the driver's job: `.unit.unit_id`
    header: dict[str, Any]  # what the actor said of the piece: keys, rows, trajectories, tokens
    error: BaseException | None = None  # writing failed (the run stops with it)
    lost: BaseException | None = None  # its tables could not be fetched: its rows must be measured again
    trajectory_shard: Path | None = None  # where its trajectories went (with the rest of its unit's flush)


class UnexpectedRowsError(RuntimeError):
    """A piece's rows are not exactly the rows its header names: never written."""


@dataclass
class _Buffer:
    pieces: list[tuple[dict[str, Any], dict[str, pa.Table]]] = field(default_factory=list)
    groups: int = 0
    since: float = 0.0


class ShardWriter:
    """A daemon thread that fetches, buffers and writes units' pieces; see the module docstring."""

    def __init__(
        self,
        store: ResultStore,
        fetch: Callable[[Any], dict[str, Any]],
        *,
        lost_errors: tuple[type[BaseException], ...] = (),
        flush_groups: int = FLUSH_GROUPS,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.store = store
        self.fetch = fetch  # reference → {"rows": table, "trajectories": table} (ray.get in the driver)
        self.lost_errors = lost_errors  # what `fetch` raises when the object is gone (Ray's errors in the driver)
        self.flush_groups, self.flush_seconds = flush_groups, flush_seconds
        self._inbox: queue.SimpleQueue[tuple[str, Any, Any, Any] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[Written] = queue.SimpleQueue()
        self._buffers: dict[int, tuple[Any, _Buffer]] = {}  # id(job) -> (job, its pieces not yet written)
        self.pending = 0  # pieces handed over, not yet reported back by `finished`
        self.shards = 0  # row shards written
        self._thread = threading.Thread(target=self._run, name="ttscale-shard-writer", daemon=True)
        self._thread.start()

    def submit(self, job: Any, header: dict[str, Any], tables: Any) -> None:
        """A piece of a running unit: fetch it now, write it on the flush policy."""
        self.pending += 1
        self._inbox.put(("piece", job, header, tables))

    def end(self, job: Any) -> None:
        """The unit ended (finished, failed or dropped): write what it has buffered now."""
        self._inbox.put(("end", job, None, None))

    def finished(self, *, wait: bool = False) -> list[Written]:
        """Pieces written (or failed) since the last call; with `wait`, block until every pending one is back."""
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
        """Write everything handed over, stop the thread, and return what had not been collected yet."""
        self._inbox.put(None)
        self._thread.join()
        return self.finished(wait=True)

    # -- the thread -------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                item = self._inbox.get(timeout=self._until_next_flush())
            except queue.Empty:
                self._flush_due()
                continue
            if item is None:
                for key in list(self._buffers):
                    self._flush(key)
                return
            kind, job, header, ref = item
            if kind == "piece":
                self._take(job, header, ref)
            else:
                self._flush(id(job))
            self._flush_due()

    def _take(self, job: Any, header: dict[str, Any], ref: Any) -> None:
        try:
            tables = self.fetch(ref)
        except self.lost_errors as exc:
            self._done.put(Written(job, header, lost=exc))
            return
        except BaseException as exc:
            self._done.put(Written(job, header, error=exc))
            return
        _, buffer = self._buffers.setdefault(id(job), (job, _Buffer(since=time.monotonic())))
        buffer.pieces.append((header, tables))
        buffer.groups += header.get("groups", 1)
        if buffer.groups >= self.flush_groups or header.get("checkpoint"):
            self._flush(id(job))

    def _until_next_flush(self) -> float | None:
        if not self._buffers:
            return None
        oldest = min(buffer.since for _, buffer in self._buffers.values())
        return max(0.0, oldest + self.flush_seconds - time.monotonic())

    def _flush_due(self) -> None:
        now = time.monotonic()
        for key, (_, buffer) in list(self._buffers.items()):
            if now - buffer.since >= self.flush_seconds:
                self._flush(key)

    def _flush(self, key: int) -> None:
        """Write one unit's buffered pieces as one shard and report each piece."""
        if key not in self._buffers:
            return
        job, buffer = self._buffers.pop(key)
        headers = [header for header, _ in buffer.pieces]
        try:
            for header, tables in buffer.pieces:
                _check(job, header, tables["rows"])
            rows = pa.concat_tables([tables["rows"] for _, tables in buffer.pieces])
            trajectories = pa.concat_tables([tables["trajectories"] for _, tables in buffer.pieces])
            shard = None
            if rows.num_rows:
                rows_shard = self.store.write_unit(job.unit.unit_id, rows, trajectories)
                self.shards += 1
                shard = self.store.trajectory_shard_of(rows_shard) if trajectories.num_rows else None
            elif trajectories.num_rows:  # checkpoints only
                shard = self.store.write_trajectories(job.unit.unit_id, trajectories)
        except BaseException as exc:  # reported to the loop, which stops the sweep with it
            for header in headers:
                self._done.put(Written(job, header, error=exc))
        else:
            for header in headers:
                self._done.put(Written(job, header, trajectory_shard=shard))


def _check(job: Any, header: dict[str, Any], rows: pa.Table) -> None:
    """Never a row twice, nor one the header does not name (the loop checked the header against the unit)."""
    keys = list(zip(rows.column("cell_id").to_pylist(), rows.column("problem_id").to_pylist(), strict=True))
    if len(keys) != len(set(keys)) or set(keys) != {tuple(k) for k in header["keys"]}:
        raise UnexpectedRowsError(
            f"unit {job.unit.unit_id} streamed {len(keys)} rows for the {len(header['keys'])} its header named"
        )
