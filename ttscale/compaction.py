"""Compaction: a results directory's many small Parquet shards merged into few large ones, atomically and safely.

Why. A sweep that streams results out of its actors writes a shard per flush, and every reader pays per shard (open,
footer, schema): planning reads 1M rows in 73 s from 100,000 shards of 10 rows, 1.9 s from 1,000 and 0.6 s once
compacted (bench/store_compaction.py, docs/benchmarks.md). `compact` merges them; `ttscale compact DIR` runs it,
and a sweep runs it when its run ends if a directory holds at least WORTHWHILE_SHARDS small shards
(`compact_if_worthwhile`).

What. `rows/` and `trajectories/` are compacted one after the other, each on its own. A shard under SMALL_BYTES on
disk is small; small shards are read in name order and gathered into targets of up to TARGET_ROWS rows or
TARGET_MEMORY bytes in memory, whichever comes first (the bench's 1M rows take 23 MiB on disk), each sorted (rows
by problem, trajectories by id) and written in row groups of ROW_GROUP_ROWS rows, so that a read filtered by problem
or trajectory id opens only a few. A rows target keeps every row of its sources, duplicates included (a requeued
unit written twice: readers resolve those as before). A trajectories target keeps only the longest version of each
trajectory among its sources (`longest_versions`, the version every reader takes): a trajectory checkpointed every
`flush_every_s` for an hour leaves a dozen growing prefixes of itself, ~6x its final size, and the superseded ones
carry nothing a reader sees (a version in another shard is compared by readers as before). A target is named
`compacted-<epoch>-<n>-<hex>.parquet`: it belongs to no one unit. A gathering of one shard is left as it is, and so
is a shard that cannot be read (the next reader sets it aside, as for any unreadable shard).

Protocol, per directory, with the results directory's run lock held (no sweep writes, no other compaction runs):
  1. stage: each target is written to `tmp/.compact-<target>` and fsynced;
  2. journal: `<dir>/_compaction.json` is written atomically (tmp, fsync, rename, fsync of the directory) with the
     epoch raised by one and the groups (target name, source names);
  3. rename: each target is renamed into `<dir>`, then the directory is fsynced;
  4. unlink: every source is unlinked;
  5. clear: the journal is written again with no groups (the epoch stays).
The journal is one file per directory that stays, holding the epoch; a journal with groups is a commit in progress
(or cut short). Nothing in `<dir>` changes outside steps 3 and 4, and both come after the epoch moved in step 2.

Readers (ttscale/store.py) read the journal *before* listing `<dir>`, and for each group whose target exists when
checked *after* the listing, read the target instead of its sources. Every reader runs inside `read_consistently`,
which reads again when an epoch moved while it ran or when a shard it listed was gone (FileNotFoundError: a vanished
shard is never quarantined). Why each row is seen exactly once: a reader whose epochs did not move saw no step 2, so
any commit it overlapped had written its journal before the reader read it; for each group, if the target existed
after the listing, its sources are dropped (and the target, which stays, is read); if it did not, no source had been
unlinked yet (sources go only after every target is renamed), so all of them were listed, and if one vanished
before it was read, the reader reads again.

A kill, at any point. Before step 2 only files in `tmp/` exist (removed as partial writes), and no reader sees them.
After it, the journal says which sources each target replaces, so a reader sees each row once in any state the
kill left. `recover` (at the start of every compaction and every sweep run) finishes such a journal: where a group's
target was renamed its remaining sources are unlinked; where it was not, its staged file is deleted and the sources
stay; then the groups are cleared. Everything is fsynced in that order, so a power cut leaves the same states.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ttscale.errors import TtscaleError
from ttscale.run_lock import RunLock
from ttscale.schema import ROW_SCHEMA, TRAJECTORY_SCHEMA, longest_versions
from ttscale.store import JOURNAL_NAME, Journal, ResultStore, read_journal, read_shard

SMALL_BYTES = 32 * 2**20  # a shard under this many bytes on disk is merged; a larger one is left as it is
TARGET_ROWS = 1_000_000  # a compacted shard holds at most this many rows ...
TARGET_MEMORY = 512 * 2**20  # ... and at most this many bytes of Arrow memory (what compacting it holds, twice)
ROW_GROUP_ROWS = 16_384  # rows per row group: a read filtered by problem or trajectory id skips the others
WORTHWHILE_SHARDS = 256  # a run's end compacts a directory that holds at least this many small shards

KINDS = ("rows", "trajectories")
SCHEMAS = {"rows": ROW_SCHEMA, "trajectories": TRAJECTORY_SCHEMA}
ROW_SORT_KEYS = ["problem_id", "model", "dataset", "cell_id"]  # trajectories: by id (longest_versions)

Progress = Callable[[str, str, int, int], None]
"""Called as compaction goes: (kind, step, done, total), step one of read, staged, journal, renamed, unlinked, cleared
(in that order; `staged` has no total)."""


@dataclass
class Compacted:
    """What compacting one shard directory did."""

    kind: str  # rows | trajectories
    shards_before: int
    shards_after: int
    rows: int  # rows of the shards merged (each now in a compacted shard, but superseded trajectory versions)
    merged: int  # shards merged
    written: int  # compacted shards written
    unreadable: int  # small shards that could not be read, left as they are
    seconds: float
    superseded: int = 0  # trajectory versions dropped: a longer version of the same trajectory was merged with them

    def line(self) -> str:
        """One line for the terminal."""
        skipped = f"; {self.unreadable} unreadable shard(s) left as they are" if self.unreadable else ""
        superseded = f", {self.superseded:,} superseded trajectory versions dropped" if self.superseded else ""
        return (
            f"{self.kind}: {self.shards_before:,} → {self.shards_after:,} shards ({self.rows:,} rows of "
            f"{self.merged:,} small shards merged into {self.written}{superseded}) in {self.seconds:.1f} s{skipped}"
        )


@dataclass
class _Staged:
    """A target written to tmp/ and fsynced, not yet in its directory."""

    tmp: Path
    target: str
    sources: list[Path]
    rows: int  # rows read from the sources
    superseded: int  # of them, trajectory versions left out

    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.sources)


def compact(store: ResultStore, *, progress: Progress | None = None) -> list[Compacted]:
    """Compact rows/ and trajectories/ of a results directory (the module docstring says how), holding its run lock:
    ResultsDirInUse (one line) when a sweep holds it; a directory that holds no results is a TtscaleError."""
    check_results_dir(store)
    with RunLock(store.root, sweep="ttscale compact"):
        recover(store)
        return [_compact_dir(store, kind, progress) for kind in KINDS]


def compact_if_worthwhile(store: ResultStore, *, progress: Progress | None = None) -> list[Compacted]:
    """`compact` when rows/ or trajectories/ holds at least WORTHWHILE_SHARDS small shards (what a run's end calls);
    nothing, and an empty list, otherwise."""
    if not any(len(small_shards(store, kind)) >= WORTHWHILE_SHARDS for kind in KINDS):
        return []
    return compact(store, progress=progress)


def small_shards(store: ResultStore, kind: str) -> list[Path]:
    """The shards of one kind under SMALL_BYTES on disk, in name order."""
    return [p for p in store.shards_in(_directory(store, kind)) if _size(p) < SMALL_BYTES]


def recover(store: ResultStore) -> int:
    """Finish what a killed compaction left (call with the run lock held): for each group of a journal with groups,
    unlink the sources of a target that was renamed into place, delete a staged target that was not, then clear the
    groups; and delete targets staged before a journal was written. Returns how many groups there were."""
    groups = sum(_recover_dir(store, _directory(store, kind)) for kind in KINDS)
    tmp = store.root / "tmp"
    for staged in tmp.glob(".compact-*") if tmp.is_dir() else ():  # only a compaction writes these: none runs now
        staged.unlink(missing_ok=True)
    return groups


def _recover_dir(store: ResultStore, directory: Path) -> int:
    journal = read_journal(directory)
    for target, sources in journal.groups:
        if (directory / target).is_file():
            for name in sources:
                (directory / name).unlink(missing_ok=True)
        else:
            _staged_path(store, target).unlink(missing_ok=True)
    if journal.groups:
        _fsync_dir(directory)
        _write_journal(store, directory, Journal(journal.epoch))
    return len(journal.groups)


def check_results_dir(store: ResultStore) -> None:
    """A TtscaleError (one line, naming the path and the fix) unless `store` is a results directory."""
    if not store.root.exists():
        raise TtscaleError(f"{store.root} does not exist. Give a results directory (a sweep's output_dir).")
    if not store.exists():
        raise TtscaleError(
            f"{store.root} is not a ttscale results directory (no manifest.json, no rows/). Give a sweep's "
            "output_dir, e.g. `ttscale compact results/demo`."
        )


def _compact_dir(store: ResultStore, kind: str, progress: Progress | None) -> Compacted:
    """Stage every target of one directory, then commit them all at once (steps 2-5)."""
    start = time.perf_counter()
    directory = _directory(store, kind)
    before = len(store.shards_in(directory))
    small = small_shards(store, kind)
    epoch = read_journal(directory).epoch + 1
    staged: list[_Staged] = []
    unreadable: list[Path] = []
    try:
        for group in _gather(small, kind, unreadable, progress):
            staged.append(_stage(store, kind, group, f"compacted-{epoch:06d}-{len(staged):04d}"))
            _report(progress, kind, "staged", len(staged), 0)
        if staged:
            _write_journal(store, directory, Journal(epoch, tuple((s.target, s.names()) for s in staged)))
    except BaseException:  # before the journal: the staged targets are nothing yet
        for s in staged:
            s.tmp.unlink(missing_ok=True)
        raise
    if staged:
        _commit(store, kind, staged, epoch, progress)
    return Compacted(
        kind, before, len(store.shards_in(directory)), sum(s.rows for s in staged), sum(len(s.sources) for s in staged),
        len(staged), len(unreadable), time.perf_counter() - start, sum(s.superseded for s in staged),
    )  # fmt: skip


def _gather(small: list[Path], kind: str, unreadable: list[Path], progress: Progress | None) -> Iterator[list[tuple]]:
    """The small shards read in name order, gathered into groups of up to TARGET_ROWS rows or TARGET_MEMORY bytes;
    a group of one shard is left out (nothing to merge). Each group is a list of (path, table); the shards that
    could not be read are appended to `unreadable`."""
    group: list[tuple[Path, pa.Table]] = []
    rows = memory = 0
    for i, path in enumerate(small):
        try:
            table = read_shard(path, SCHEMAS[kind])
        except (ValueError, OSError):  # unreadable (or gone): left as it is, for readers to set aside
            unreadable.append(path)
            table = None
        _report(progress, kind, "read", i + 1, len(small))
        if table is None:
            continue
        size = table.get_total_buffer_size()  # what it holds in memory (nbytes costs more on small tables)
        if group and (rows + table.num_rows > TARGET_ROWS or memory + size > TARGET_MEMORY):
            if len(group) > 1:
                yield group
            group, rows, memory = [], 0, 0
        group.append((path, table))
        rows, memory = rows + table.num_rows, memory + size
    if len(group) > 1:
        yield group


def _stage(store: ResultStore, kind: str, group: list[tuple], stem: str) -> _Staged:
    """Step 1: one target, sorted (a trajectory's longest version only), written to tmp/ and fsynced."""
    table = pa.concat_tables([t for _, t in group])
    read = table.num_rows
    if kind == "trajectories":
        table = longest_versions(table)  # sorted by id already: one version each
    else:
        table = table.sort_by([(k, "ascending") for k in ROW_SORT_KEYS])
    target = f"{stem}-{uuid.uuid4().hex[:8]}.parquet"
    tmp = _staged_path(store, target)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS)
        _fsync(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return _Staged(tmp, target, [p for p, _ in group], read, read - table.num_rows)


def _commit(store: ResultStore, kind: str, staged: list[_Staged], epoch: int, progress: Progress | None) -> None:
    """Steps 3-5, once the journal is written. An error on the way is finished by `recover` before it is raised."""
    directory = _directory(store, kind)
    _report(progress, kind, "journal", 1, 1)
    try:
        for i, s in enumerate(staged):
            os.replace(s.tmp, directory / s.target)
            _report(progress, kind, "renamed", i + 1, len(staged))
        _fsync_dir(directory)
        sources = [p for s in staged for p in s.sources]
        for i, path in enumerate(sources):
            path.unlink(missing_ok=True)
            _report(progress, kind, "unlinked", i + 1, len(sources))
        _fsync_dir(directory)
        _write_journal(store, directory, Journal(epoch))
        _report(progress, kind, "cleared", 1, 1)
    except Exception:
        _recover_dir(store, directory)
        raise


def _write_journal(store: ResultStore, directory: Path, journal: Journal) -> None:
    """The journal, atomically: written to tmp/, fsynced, renamed into place, the directory fsynced."""
    groups = [{"target": target, "sources": list(sources)} for target, sources in journal.groups]
    tmp = store.root / "tmp" / f".{directory.name}{JOURNAL_NAME}.{os.getpid()}"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.write_text(json.dumps({"epoch": journal.epoch, "groups": groups}))
        _fsync(tmp)
        os.replace(tmp, directory / JOURNAL_NAME)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)


def _directory(store: ResultStore, kind: str) -> Path:
    return store.rows_dir if kind == "rows" else store.trajectories_dir


def _staged_path(store: ResultStore, target: str) -> Path:
    return store.root / "tmp" / f".compact-{target}"  # a leading dot: remove_partial_writes deletes it


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return SMALL_BYTES  # gone (set aside by a reader): not small, not merged


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _report(progress: Progress | None, kind: str, step: str, done: int, total: int) -> None:
    if progress is not None:
        progress(kind, step, done, total)
