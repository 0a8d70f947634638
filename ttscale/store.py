"""Result storage: append-only Parquet shards written atomically, manifest, done set, readers (schemas: schema.py).

A results directory holds:

    manifest.json           the sweep file text and hash, ttscale/engine/model versions, one entry per run
    rows/<unit>-<id>.parquet          one shard per finished work unit (ROW_SCHEMA)
    trajectories/<unit>-<id>.parquet  its nested-mode trajectories (TRAJECTORY_SCHEMA)
    failures/<unit>-<id>.json         one record per failed attempt
    events.jsonl            what each run dispatched and finished, for status and audits

Shards are written under `tmp/` and renamed into place, so a crash never leaves a partial shard; the
rows shard is renamed last, so a unit counts as done exactly when its rows are visible.

`ttscale compact` (ttscale/compaction.py) merges small shards into `compacted-*.parquet` ones while readers run:
each shard directory's `_compaction.json` journal says which shards a compacted one replaces, every listing
(`row_shards`, `trajectory_shards`) applies it, and every reader goes through `read_consistently`, so that a
reader sees each row exactly once at any instant of a compaction (the protocol is in ttscale/compaction.py).
"""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from ttscale.errors import TtscaleError, TtscaleWarning
from ttscale.schema import ROW_KEY, ROW_SCHEMA, TRAJECTORY_SCHEMA, longest_versions

if TYPE_CHECKING:
    import pandas as pd
    import ray.data

JOURNAL_NAME = "_compaction.json"  # in rows/ and trajectories/: see ttscale/compaction.py (`_`: pyarrow skips it)
READ_ATTEMPTS = 12  # how often read_consistently lists and reads again before it gives up
THREADED_READ_ROWS = 65_536  # read_shard decodes a shard's columns on threads from this many rows on

T = TypeVar("T")


class ShardVanished(Exception):
    """A listed shard was gone when it was read (a compaction replaced it, or another reader set it aside as
    unreadable): the reader lists the directory again (`read_consistently`), and never quarantines it."""


@dataclass(frozen=True)
class Journal:
    """A shard directory's compaction journal: its epoch (raised as each compaction starts to commit) and the
    groups of a commit in progress, or cut short by a kill: (target shard name, the source shard names it replaces)."""

    epoch: int = 0
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()


def read_journal(directory: Path) -> Journal:
    """The journal of `directory` (an empty one at epoch 0 when none was written); a damaged one is one line."""
    path = directory / JOURNAL_NAME
    try:
        data = json.loads(path.read_text())
        groups = tuple((str(g["target"]), tuple(map(str, g["sources"]))) for g in data["groups"])
        return Journal(int(data["epoch"]), groups)
    except (FileNotFoundError, NotADirectoryError):
        return Journal()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TtscaleError(
            f"{path} is damaged ({type(exc).__name__}: {exc}), so the compacted shards of {directory} cannot be told "
            "from the shards they replace. Restore it from a backup; the rows are all still in the shards."
        ) from None


def apply_journal(directory: Path, journal: Journal, listed: Iterable[Path]) -> list[Path]:
    """A listing of `directory` taken after reading `journal`, with each group whose target exists (checked now,
    after the listing) read from its target instead of its sources: every row once (ttscale/compaction.py)."""
    shards = {p.name: p for p in listed}
    for target, sources in journal.groups:
        if target in shards or (directory / target).is_file():
            shards[target] = directory / target
            for name in sources:
                shards.pop(name, None)
    return [shards[name] for name in sorted(shards)]


def read_consistently(stores: Sequence[ResultStore], read: Callable[[], T]) -> T:
    """`read()`, which lists and reads shards of `stores`, run again until no compaction began to commit while it
    ran (the journals' epochs did not move) and no shard it listed vanished: what every reader of shards goes
    through, so that it sees each row exactly once while `ttscale compact` runs. An error raised while a compaction
    committed is taken for its effect and the read is tried again; any other error is raised."""
    for attempt in range(READ_ATTEMPTS):
        before = [store.compaction_epochs() for store in stores]
        try:
            result = read()
        except ShardVanished:
            pass
        except Exception:
            if [store.compaction_epochs() for store in stores] == before:
                raise
        else:
            if [store.compaction_epochs() for store in stores] == before:
                return result
        time.sleep(min(0.01 * 2**attempt, 1.0))
    roots = ", ".join(str(store.root) for store in stores)
    raise TtscaleError(
        f"{roots} kept changing while it was read ({READ_ATTEMPTS} tries): compactions committed one after another, "
        "or shards kept vanishing. Read again once `ttscale compact` has finished."
    )


class ResultStore:
    """One results directory: see the module docstring for its layout."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.rows_dir = self.root / "rows"
        self.trajectories_dir = self.root / "trajectories"
        self.failures_dir = self.root / "failures"
        self.manifest_path = self.root / "manifest.json"
        self.events_path = self.root / "events.jsonl"

    def exists(self) -> bool:
        return self.manifest_path.is_file() or self.rows_dir.is_dir()

    def _ensure(self) -> None:
        for d in (self.rows_dir, self.trajectories_dir, self.failures_dir, self.root / "tmp"):
            d.mkdir(parents=True, exist_ok=True)

    # -- writing ----------------------------------------------------------------------------------------

    def remove_partial_writes(self) -> int:
        """Delete files a killed writer left in tmp/ (never seen by readers); call only with the run lock held,
        when no other writer can be mid-write. Returns how many went."""
        leftovers = list((self.root / "tmp").glob(".*")) if (self.root / "tmp").is_dir() else []
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)

    def write_unit(self, unit_id: str, rows: pa.Table, trajectories: pa.Table | None = None) -> Path:
        """Write one unit's shards atomically (trajectories first, rows last) and return the rows shard."""
        self._ensure()
        name = f"{unit_id}-{uuid.uuid4().hex[:8]}.parquet"
        if trajectories is not None and trajectories.num_rows:
            self._atomic_parquet(trajectories.cast(TRAJECTORY_SCHEMA), self.trajectories_dir / name)
        return self._atomic_parquet(rows.cast(ROW_SCHEMA), self.rows_dir / name)

    def write_trajectories(self, unit_id: str, trajectories: pa.Table) -> Path:
        """Write trajectories alone (a unit's checkpoint: versions of trajectories still generating) atomically."""
        self._ensure()
        name = f"{unit_id}-{uuid.uuid4().hex[:8]}.parquet"
        return self._atomic_parquet(trajectories.cast(TRAJECTORY_SCHEMA), self.trajectories_dir / name)

    def trajectory_shard_of(self, rows_shard: Path) -> Path:
        """The trajectory shard `write_unit` wrote beside a rows shard."""
        return self.trajectories_dir / rows_shard.name

    def _atomic_parquet(self, table: pa.Table, target: Path) -> Path:
        tmp = self.root / "tmp" / f".{target.name}.{os.getpid()}"
        try:
            pq.write_table(table, tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:  # a full disk, say: never leave half a file behind, even in tmp/
            tmp.unlink(missing_ok=True)
            raise
        return target

    def record_failure(self, unit_id: str, attempt: int, error: str, detail: str = "", **extra: Any) -> None:
        self._ensure()
        record = {
            "unit_id": unit_id,
            "attempt": attempt,
            "error": error,
            "detail": detail,
            "time": time.time(),
            **extra,
        }
        self._atomic_json(record, self.failures_dir / f"{unit_id}-{attempt}-{uuid.uuid4().hex[:6]}.json")

    def log_event(self, event: str, **fields: Any) -> None:
        """Append one JSON line to events.jsonl (dispatch, done, failed, run start/end)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.events_path, "a") as fh:
            fh.write(json.dumps({"event": event, "time": time.time(), **fields}) + "\n")

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._ensure()
        self._atomic_json(dict(manifest), self.manifest_path)

    def _atomic_json(self, obj: Any, target: Path) -> None:
        tmp = self.root / "tmp" / f".{target.name}.{os.getpid()}"
        try:
            tmp.write_text(json.dumps(obj, indent=2, default=str))
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # -- reading ----------------------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any] | None:
        """The manifest, or None when there is none yet; a damaged one is a one-line TtscaleError."""
        if not self.manifest_path.is_file():
            return None
        try:
            return json.loads(self.manifest_path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            path = self.manifest_path
            raise TtscaleError(
                f"{path} is damaged ({type(exc).__name__}: {exc}; a full disk, or a copy cut short?). Move it aside "
                f"(mv {path} {path}.damaged) and run again: the rows are kept and a new manifest is started."
            ) from None

    def row_shards(self) -> list[Path]:
        """The rows shards, each row in exactly one of them (a compaction's journal applied); read them inside
        `read_consistently`, since a compaction may replace them while they are read."""
        return self.shards_in(self.rows_dir)

    def trajectory_shards(self) -> list[Path]:
        """The trajectories shards, as `row_shards`."""
        return self.shards_in(self.trajectories_dir)

    def shards_in(self, directory: Path) -> list[Path]:
        """The shards of one shard directory with its compaction journal applied: the journal is read before the
        listing, and a group's target is checked after it (ttscale/compaction.py says why)."""
        if not directory.is_dir():
            return []
        journal = read_journal(directory)
        return apply_journal(directory, journal, directory.glob("*.parquet"))

    def compaction_epochs(self) -> tuple[int, int]:
        """The epochs of rows/ and trajectories/: one moves as a compaction of that directory begins to commit."""
        return read_journal(self.rows_dir).epoch, read_journal(self.trajectories_dir).epoch

    def read_consistently(self, read: Callable[[], T]) -> T:
        """`read()` (which lists and reads this store's shards) with every row seen exactly once while a
        compaction runs: see the module function `read_consistently`."""
        return read_consistently([self], read)

    def done_keys(self) -> set[tuple[str, str]]:
        """(cell id, problem id) of every readable stored row: what resume subtracts (an unreadable shard's rows
        are missing, so they are measured again; see `_read_each`)."""
        table = self.read_consistently(lambda: self._read_tables(self.row_shards(), list(ROW_KEY)))
        if table is None:
            return set()
        return set(zip(table.column("cell_id").to_pylist(), table.column("problem_id").to_pylist(), strict=True))

    def failures(self) -> list[dict[str, Any]]:
        if not self.failures_dir.is_dir():
            return []
        records = [r for r in (_json_or_none(p.read_text()) for p in self.failures_dir.glob("*.json")) if r]
        return sorted(records, key=lambda r: r["time"])

    def events(self) -> list[dict[str, Any]]:
        """The events log; a line cut short by a killed driver is skipped."""
        if not self.events_path.is_file():
            return []
        lines = self.events_path.read_text(errors="replace").splitlines()
        return [e for e in (_json_or_none(line) for line in lines if line.strip()) if e]

    def read_table(self, columns: list[str] | None = None) -> pa.Table:
        """All rows as one Arrow table (empty, with the schema, when there are none)."""
        table = self.read_consistently(lambda: self._read_tables(self.row_shards(), columns))
        if table is None:
            schema = ROW_SCHEMA if columns is None else pa.schema([ROW_SCHEMA.field(c) for c in columns])
            return schema.empty_table()
        return table

    def read_pandas(self, columns: list[str] | None = None) -> pd.DataFrame:
        """All rows as pandas, for small results (use `read()` for large ones)."""
        return self.read_table(columns).to_pandas()

    def rows_where(self, column: str, values: list, columns: list[str]) -> pa.Table:
        """Some columns of the rows whose `column` is in `values`, filtered while reading each shard."""
        empty = pa.schema([ROW_SCHEMA.field(c) for c in columns]).empty_table()
        if not values:
            return empty
        filters = [(column, "in", values)]
        parts = self.read_consistently(lambda: self._read_each(self.row_shards(), ROW_SCHEMA, columns, filters))
        return pa.concat_tables(parts) if parts else empty

    def trajectory_index(self) -> dict[str, list[Path]]:
        """trajectory id → the shards holding a version of it (reading that one column only): what a sweep can
        reuse, and where to read it without opening every shard."""

        def read() -> dict[str, list[Path]]:
            index: dict[str, list[Path]] = {}
            for path in self.trajectory_shards():
                part = self._read_each([path], TRAJECTORY_SCHEMA, ["trajectory_id"])
                for tid in set(part[0].column("trajectory_id").to_pylist()) if part else ():
                    index.setdefault(tid, []).append(path)
            return index

        return self.read_consistently(read)

    def trajectory_lengths(self) -> dict[str, tuple[int, bool]]:
        """trajectory id → (model tokens, finished) of its longest stored version (three columns read): how far
        each stored trajectory reaches, for the plan's estimate of thinking still to generate."""
        columns = ["trajectory_id", "model_tokens", "finished"]
        table = self.read_consistently(
            lambda: self._read_tables_as(self.trajectory_shards(), TRAJECTORY_SCHEMA, columns)
        )
        lengths: dict[str, tuple[int, bool]] = {}
        if table is None:
            return lengths
        columns = (table.column(c).to_pylist() for c in ("trajectory_id", "model_tokens", "finished"))
        for tid, tokens, finished in zip(*columns, strict=True):
            if tid not in lengths or tokens > lengths[tid][0]:
                lengths[tid] = (tokens, bool(finished))
        return lengths

    def read_trajectories(self, ids: list[str] | None = None, shards: Iterable[Path] | None = None) -> pa.Table:
        """Trajectories (all, or those with the given ids, filtered while reading), one per id: a later,
        longer run of the same trajectory supersedes a shorter one. `shards`: read only these (from
        `trajectory_index`) instead of every trajectory shard; when one is gone (a compaction merged it since),
        every trajectory shard is read instead."""
        if ids is not None and not ids:
            return TRAJECTORY_SCHEMA.empty_table()
        filters = None if ids is None else [("trajectory_id", "in", ids)]
        given = None if shards is None else sorted(set(shards))

        def read() -> list[pa.Table]:
            if given is not None:
                try:
                    return self._read_each(given, TRAJECTORY_SCHEMA, filters=filters)
                except ShardVanished:
                    pass
            return self._read_each(self.trajectory_shards(), TRAJECTORY_SCHEMA, filters=filters)

        parts = self.read_consistently(read)
        if not parts:
            return TRAJECTORY_SCHEMA.empty_table()
        return longest_versions(pa.concat_tables(parts))

    def read(self, columns: list[str] | None = None) -> ray.data.Dataset:
        """All rows (or some columns) as a Ray Dataset: ray.data.read_parquet over the shards.

        Joins the Ray instance this process is connected to, or starts a quiet local one. The shards are listed
        now and read when the Dataset is consumed: a compaction that commits in between makes that fail with
        FileNotFoundError. Consume it inside `read_consistently` (`store.read_consistently(lambda:
        store.read().to_pandas())`), which lists and reads again then."""
        import logging

        import ray
        import ray.data

        if not ray.is_initialized():
            ray.init(logging_level=logging.WARNING, log_to_driver=False, include_dashboard=False)
        logging.getLogger("ray.data").setLevel(logging.WARNING)

        shards = self.read_consistently(lambda: [str(p) for p in self.row_shards() if self._footer_ok(p)])
        schema = ROW_SCHEMA if columns is None else pa.schema([ROW_SCHEMA.field(c) for c in columns])
        if not shards:
            return ray.data.from_arrow(schema.empty_table())
        ds = ray.data.read_parquet(shards, schema=ROW_SCHEMA)
        return ds if columns is None else ds.select_columns(columns)  # projected into the read by Ray Data

    def _read_tables(self, paths: list[Path], columns: list[str] | None) -> pa.Table | None:
        return self._read_tables_as(paths, ROW_SCHEMA, columns)

    def _read_tables_as(self, paths: list[Path], schema: pa.Schema, columns: list[str] | None) -> pa.Table | None:
        parts = self._read_each(paths, schema, columns)
        return pa.concat_tables(parts) if parts else None

    def _read_each(self, paths: list[Path], schema: pa.Schema, columns=None, filters=None) -> list[pa.Table]:
        """Every readable shard as `schema`. An unreadable one (truncated, corrupt, not a ttscale shard) is moved
        to `corrupt/` with a warning and skipped: its rows count as missing, so the next sweep measures them again.
        A shard that is gone raises ShardVanished (a compaction replaced it: list again), never quarantined."""
        parts = []
        for path in paths:
            try:
                parts.append(read_shard(path, schema, columns, filters=filters))
            except FileNotFoundError:
                raise ShardVanished(str(path)) from None
            except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError, its IO errors OSErrors
                self._quarantine(path, exc)
        return parts

    def _footer_ok(self, path: Path) -> bool:
        try:
            pq.read_metadata(path)
        except FileNotFoundError:
            raise ShardVanished(str(path)) from None
        except (ValueError, OSError) as exc:
            self._quarantine(path, exc)
            return False
        return True

    def _quarantine(self, path: Path, exc: BaseException) -> None:
        target = self.root / "corrupt" / f"{path.parent.name}-{path.name}"
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
        try:
            target.parent.mkdir(exist_ok=True)
            os.replace(path, target)
            where = f"moved to {target}"
        except OSError:
            where = "left in place (the directory is not writable)"
        warnings.warn(
            f"{path} is unreadable ({reason}): {where}; its rows count as missing and will be measured again.",
            TtscaleWarning,
            stacklevel=3,
        )


def refinement_budgets(manifest: Mapping[str, Any] | None, key: str | tuple[str, ...]) -> dict[Any, tuple[int, ...]]:
    """Every budget the refinements recorded in a manifest (`ttscale refine`) added to each pair's grid, sorted,
    keyed by the pair's `key` field(s): "pair_id" for planning (a changed config does not inherit them) or
    ("model", "dataset") for analysis."""
    out: dict[Any, set[int]] = {}
    for refinement in (manifest or {}).get("refinements", []):
        for pair in refinement.get("pairs", []):
            name = pair[key] if isinstance(key, str) else tuple(pair[k] for k in key)
            out.setdefault(name, set()).update(int(b) for b in pair["budgets"])
    return {name: tuple(sorted(budgets)) for name, budgets in out.items()}


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def read_shard(path: Path, schema: pa.Schema, columns: list[str] | None = None, filters=None) -> pa.Table:
    """One shard as `schema` (or its `columns`): a shard written before a nullable column existed reads
    with that column null, so results of an older ttscale stay readable beside new ones."""
    wanted = pa.schema([schema.field(c) for c in columns]) if columns is not None else schema
    with pq.ParquetFile(path) as shard:  # the file opened and its footer read once (a small shard costs mostly that)
        present = set(shard.schema_arrow.names)
        missing = [f for f in wanted if f.name not in present]
        if any(not f.nullable for f in missing):
            names = ", ".join(f.name for f in missing if not f.nullable)
            raise ValueError(f"{path} lacks the column(s) {names}: it is not a ttscale shard of this kind.")
        names = [f.name for f in wanted if f.name in present]
        if filters is None:  # threads only pay on a large shard (a compacted one)
            table = shard.read(columns=names, use_threads=shard.metadata.num_rows >= THREADED_READ_ROWS)
    if filters is not None:
        table = pq.read_table(path, columns=names, filters=filters)
    for f in missing:
        table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    table = table.select(wanted.names)
    return table if table.schema.equals(wanted) else table.cast(wanted)  # as written: nothing to cast
