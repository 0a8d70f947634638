"""An index of results directories for the explorer: every shard's analysis columns read once, new shards added as
they land (the sweep may still be running), and snapshots that queries read without locks."""

from __future__ import annotations

import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ttscale.analysis import Results
from ttscale.analysis.results import ANALYSIS_COLUMNS
from ttscale.errors import TtscaleError, TtscaleWarning
from ttscale.schema import ROW_SCHEMA, TRAJECTORY_SCHEMA
from ttscale.store import ResultStore, ShardVanished, read_shard

# The analysis columns, plus what progress and the problem view need; never the distributions or the reasoning.
INDEX_COLUMNS = [*ANALYSIS_COLUMNS, "solution_set", "created_at"]
RESCAN_S = 2.0  # the shard lists are listed again at most this often (seconds); only new shards are read
PROBLEM_KEYS = ["model", "dataset", "problem_id"]
TRAJECTORY_COLUMNS = ["trajectory_id", "text", "model_tokens", "finished", "stopped"]  # what the problem view shows
CURVES, RANKED, COMPUTE = (
    "curves_by_pair",
    "ranked",
    "compute_by_pair",
)  # memo keys of queries' derived tables: (CURVES, metric), (RANKED, metric, level, …), (COMPUTE, metric)


class NotFound(LookupError):
    """A run, model, dataset, problem or file the explorer does not have: answered with 404."""


@dataclass
class Run:
    """One results directory, its shards read so far, and the trajectory shard of each trajectory id."""

    name: str
    store: ResultStore
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)  # rows shard name → its index columns
    unreadable: dict[str, str] = field(default_factory=dict)  # shard name → why it was skipped
    trajectory_shards: dict[str, tuple[int, Path]] = field(default_factory=dict)  # id → (model tokens, shard)
    seen_trajectory_shards: set[str] = field(default_factory=set)


@dataclass
class Snapshot:
    """The rows of every run at one moment, as one `Results` (whose analyses are cached), and a problem lookup."""

    results: Results
    generation: int
    built_at: float
    _problems: dict[tuple[str, str, str], tuple[int, int]] | None = None
    _memo: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def memo(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """`compute()` once per snapshot and key (what queries derive from the rows: lookups, ranked tables)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @property
    def rows(self) -> pd.DataFrame:
        return self.results.rows

    def warm_like(self, old: Snapshot) -> None:
        """Compute the curves, emergence tables and compute frontiers `old` had computed (what the page is showing),
        and the lookup."""
        self.problem_lookup()
        for key in list(old._memo):
            try:
                if key[0] == CURVES:
                    self.results.curves(key[1])
                elif key[0] == RANKED:
                    self.results.emergence(key[1], level=key[2])
                elif key[0] == COMPUTE:
                    self.results.frontier(key[1])
                    self.results.frontier_emergence(key[1])
            except Exception:  # a metric the new rows cannot give: the request that asks for it says why
                continue

    def problem_lookup(self) -> dict[tuple[str, str, str], tuple[int, int]]:
        """(model, dataset, problem id) → the slice of its rows (rows are sorted by problem), built on first use."""
        with self._lock:
            if self._problems is None:
                self._problems = _runs_of(self.rows, PROBLEM_KEYS)
            return self._problems

    def problem_rows(self, model: str, dataset: str, problem_id: str) -> pd.DataFrame:
        """The rows of one problem (every seed and budget): a slice, not a copy; NotFound when there are none."""
        span = self.problem_lookup().get((model, dataset, problem_id))
        if span is None:
            raise NotFound(f"no rows for problem {problem_id!r} of {model} on {dataset}")
        return self.rows.iloc[span[0] : span[1]]


class ResultsIndex:
    """One or more results directories, indexed for the explorer; `snapshot()` is what queries read."""

    def __init__(
        self, roots: list[str | Path], *, rescan_s: float = RESCAN_S, n_boot: int = 1000, n_sim: int = 200,
        background: bool = False,
    ) -> None:  # fmt: skip
        if not roots:
            raise TtscaleError("Give at least one results directory.")
        self.runs: dict[str, Run] = {}
        for root in roots:
            path = Path(root).resolve()  # it may not exist yet: a sweep about to start writes it
            name = _unique(_slug(path.name), self.runs)
            self.runs[name] = Run(name=name, store=ResultStore(path))
        self.rescan_s, self.n_boot, self.n_sim = rescan_s, n_boot, n_sim
        self.background = background
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()  # held by the one background refresh at a time
        self._scanned_at = -np.inf
        self._snapshot: Snapshot | None = None
        self.refresh(force=True)

    def run(self, name: str) -> Run:
        if name not in self.runs:
            raise NotFound(f"no run named {name!r}")
        return self.runs[name]

    def snapshot(self) -> Snapshot:
        """The current snapshot, after reading any shard that landed since the last scan (at most every rescan_s).

        With `background`, the scan runs in a thread and the request gets the current snapshot at once: the next
        one, with the new shards and the analyses the last snapshot had computed, replaces it when it is ready."""
        if not self.background:
            self.refresh()
        elif time.monotonic() - self._scanned_at >= self.rescan_s and self._refreshing.acquire(blocking=False):
            threading.Thread(target=self._refresh_then_release, daemon=True, name="explorer-refresh").start()
        assert self._snapshot is not None
        return self._snapshot

    def _refresh_then_release(self) -> None:
        try:
            self.refresh()
        finally:
            self._refreshing.release()

    def refresh(self, force: bool = False) -> bool:
        """List the shards again (unless scanned less than rescan_s ago) and read the new ones; True if any.

        A new snapshot computes the analyses its predecessor had computed before it replaces it."""
        if not force and time.monotonic() - self._scanned_at < self.rescan_s:
            return False
        with self._lock:
            if not force and time.monotonic() - self._scanned_at < self.rescan_s:
                return False  # another request scanned while this one waited
            changed = any([_read_new_shards(run) for run in self.runs.values()])
            self._scanned_at = time.monotonic()
            if changed or self._snapshot is None:
                old = self._snapshot
                new = Snapshot(self._combine(), 0 if old is None else old.generation + 1, time.time())
                if old is not None:
                    new.warm_like(old)
                self._snapshot = new
            return changed

    def _combine(self) -> Results:
        frames = [f for run in self.runs.values() for f in run.frames.values()]
        if frames:
            rows = pd.concat(frames, ignore_index=True)
            rows = rows[~rows.duplicated(["cell_id", "problem_id"])]  # a unit written twice (a requeue, copies)
            rows = rows.sort_values([*PROBLEM_KEYS, "seed", "budget"], ignore_index=True)  # a problem is one slice
        else:
            rows = pd.DataFrame({c: pd.Series(dtype=object) for c in [*INDEX_COLUMNS, "run", "shard"]})
        with warnings.catch_warnings():  # several configs of one model become model@<config>: the page shows both
            warnings.simplefilter("ignore", TtscaleWarning)
            return Results.from_frame(rows, roots=[r.store.root for r in self.runs.values()],
                                      n_boot=self.n_boot, n_sim=self.n_sim)  # fmt: skip

    def trajectory_shard(self, run: str, trajectory_id: str) -> Path | None:
        """The trajectories shard holding a trajectory (its longest run), or None (independent mode, or not yet)."""
        found = self.run(run).trajectory_shards.get(trajectory_id)
        return None if found is None else found[1]

    def trajectory(self, run: str, trajectory_id: str) -> dict | None:
        """A trajectory's text and token counts (its longest run), or None; read from every trajectories shard when
        the one the index knows is gone (a compaction merged it since the last scan)."""
        path = self.trajectory_shard(run, trajectory_id)
        if path is None:
            return None
        try:
            return read_trajectory(path, trajectory_id)
        except FileNotFoundError:
            table = self.run(run).store.read_trajectories([trajectory_id])
            rows = table.select(TRAJECTORY_COLUMNS[1:]).to_pylist()
            return rows[0] if rows else None


def _read_new_shards(run: Run) -> bool:
    """Read the index columns of every rows shard not read before, and the ids of every new trajectories shard; forget
    the shards a compaction replaced. Listed and read consistently (ResultStore.read_consistently): every row once.

    An unreadable shard is skipped and remembered (the explorer is read-only: it never moves shards aside)."""
    before = set(run.frames)
    run.store.read_consistently(lambda: (_scan_rows(run), _scan_trajectories(run)))
    return set(run.frames) != before  # shard names are never reused: the same names hold the same rows


def _scan_rows(run: Run) -> None:
    listed = run.store.row_shards()
    names = {p.name for p in listed}
    for name in [name for name in run.frames if name not in names]:  # merged into a compacted shard
        del run.frames[name]
    run.unreadable = {name: why for name, why in run.unreadable.items() if name in names}
    for path in listed:
        if path.name in run.frames or path.name in run.unreadable:
            continue
        try:
            frame = read_shard(path, ROW_SCHEMA, INDEX_COLUMNS).to_pandas()
        except FileNotFoundError:
            raise ShardVanished(str(path)) from None
        except (ValueError, OSError) as exc:
            run.unreadable[path.name] = f"{type(exc).__name__}: {exc}"[:200]
            continue
        run.frames[path.name] = frame.assign(run=run.name, shard=path.name)


def _scan_trajectories(run: Run) -> None:
    listed = run.store.trajectory_shards()
    if not run.seen_trajectory_shards <= {p.name for p in listed}:  # a compaction merged some: index them all again
        run.trajectory_shards.clear()
        run.seen_trajectory_shards.clear()
    for path in listed:
        if path.name in run.seen_trajectory_shards:
            continue
        try:
            table = pq.read_table(path, columns=["trajectory_id", "model_tokens"])
        except FileNotFoundError:
            raise ShardVanished(str(path)) from None
        except (ValueError, OSError):
            run.seen_trajectory_shards.add(path.name)
            continue
        run.seen_trajectory_shards.add(path.name)
        ids, tokens = table.column("trajectory_id").to_pylist(), table.column("model_tokens").to_pylist()
        for tid, n in zip(ids, tokens, strict=True):
            if tid not in run.trajectory_shards or n > run.trajectory_shards[tid][0]:
                run.trajectory_shards[tid] = (n, path)  # a later, longer run of a trajectory supersedes a shorter


def _runs_of(rows: pd.DataFrame, keys: list[str]) -> dict[tuple, tuple[int, int]]:
    """key → (start, stop) of each run of equal keys in rows sorted by `keys`."""
    n = len(rows)
    if n == 0:
        return {}
    columns = [rows[k].to_numpy(dtype=object) for k in keys]
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for c in columns:
        change[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(change)
    stops = np.append(starts[1:], n)
    return {tuple(c[s] for c in columns): (int(s), int(e)) for s, e in zip(starts, stops, strict=True)}


def read_trajectory(path: Path, trajectory_id: str) -> dict | None:
    """One trajectory's text and token counts from its shard (the longest, when a shard holds it twice)."""
    table = read_shard(path, TRAJECTORY_SCHEMA, TRAJECTORY_COLUMNS, filters=[("trajectory_id", "=", trajectory_id)])
    if table.num_rows == 0:
        return None
    rows = table.to_pylist()
    return max(rows, key=lambda r: r["model_tokens"])


def _slug(name: str) -> str:
    """A results directory's name as a URL path segment."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "results"


def _unique(name: str, taken: dict) -> str:
    candidate, i = name, 2
    while candidate in taken:
        candidate, i = f"{name}-{i}", i + 1
    return candidate
