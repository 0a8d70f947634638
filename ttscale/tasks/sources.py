"""Where a dataset's rows come from: a local .jsonl/.json/.parquet file, the Hugging Face Hub, or code."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from ttscale.errors import TaskError
from ttscale.tasks.base import Problem

FILE_SUFFIXES = (".jsonl", ".json", ".parquet")  # a local dataset file; the one definition (sweeps, report)
SPLIT_PREFERENCE = ("test", "validation", "train")  # for a bare hub id without a registered split
_TRUE = {"1", "true", "yes", "on"}

Row = dict[str, Any]


@dataclass(frozen=True)
class Source:
    """One place to read rows from; frozen and hashable so loaded rows can be cached per source."""

    kind: Literal["file", "hub", "generated"]
    location: str  # file path, hub id, or generator name
    config: str | None = None
    split: str | None = None
    generate: Callable[[], Sequence[Problem]] | None = None  # kind == "generated"

    def describe(self) -> str:
        """How error messages name this source."""
        return f"'{self.location}'" if self.kind != "hub" else f"hub dataset '{self.location}'"

    def identity(self) -> dict[str, Any]:
        """What makes the rows what they are: file name and content hash, or hub id/config/split."""
        if self.kind == "file":
            return {"kind": "file", "file": Path(self.location).name, "sha256": file_sha256(self.location)}
        return {"kind": self.kind, "location": self.location, "config": self.config, "split": self.split}


def looks_like_path(name: str) -> bool:
    """A name ending in a data-file suffix, or naming an existing file, is a path (not a hub id)."""
    return name.endswith(FILE_SUFFIXES) or Path(name).is_file()


def file_source(path: str) -> Source:
    """A Source for a local file; a missing file or an unknown suffix raises one line."""
    if not Path(path).is_file():
        raise TaskError(f"Dataset file not found: '{path}'. Give an existing .jsonl, .json or .parquet file.")
    if not path.endswith(FILE_SUFFIXES):
        raise TaskError(f"Cannot read '{path}': use a {', '.join(FILE_SUFFIXES)} file.")
    return Source("file", path)


@dataclass(frozen=True)
class RowTable:
    """A source's rows in stored order (a JSONL line that cannot be decoded is an UnreadableRow), the column
    names seen, and for JSONL the line number of each row, so messages can point at it."""

    rows: tuple[Row | UnreadableRow, ...]
    columns: tuple[str, ...]
    lines: tuple[int, ...] | None = None  # 1-based line per row (JSONL); None: rows are named by position

    def where(self, n: int) -> str:
        """How a message names row `n`: `line 12` in a JSONL file, else `row 11` (0-based, as stored)."""
        return f"line {self.lines[n]}" if self.lines is not None else f"row {n}"


@dataclass(frozen=True)
class UnreadableRow:
    """A stored row that could not be decoded (invalid UTF-8, invalid JSON): that row's problem, not the file's."""

    kind: str  # a validation.KINDS key
    detail: str


def read_rows(source: Source) -> RowTable:
    """All rows of a file or hub source in their stored order, and the column names seen."""
    if source.kind == "file":
        try:
            stat = Path(source.location).stat()
            return _read_file(str(Path(source.location).resolve()), stat.st_mtime_ns, stat.st_size)
        except OSError as exc:  # unreadable, a directory, removed meanwhile
            why = exc.strerror or type(exc).__name__
            raise TaskError(f"Cannot read {source.describe()}: {why}. Give a readable data file.") from None
    return _read_hub(source.location, source.config, source.split)


@lru_cache(maxsize=16)
def _read_file(path: str, mtime_ns: int, size: int) -> RowTable:
    """Cached per (path, mtime, size): a file edited in place is read again."""
    if path.endswith(".parquet"):
        return _with_columns(_parquet_rows(path), f"'{path}'")
    if path.endswith(".jsonl"):
        return _jsonl_rows(path)
    try:
        rows = json.loads(Path(path).read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise TaskError(f"'{path}' is not valid UTF-8 (byte {exc.start}). Save it as UTF-8.") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise TaskError(f"Invalid JSON in '{path}': {why}. Fix the file.") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise TaskError(f"'{path}' must hold a list of objects (one per problem).")
    return _with_columns(rows, f"'{path}'")


def _jsonl_rows(path: str) -> RowTable:
    """One row per non-blank line; a line that is not UTF-8 or not a JSON object is that row's problem."""
    rows: list[Row | UnreadableRow] = []
    lines: list[int] = []
    for n, raw in enumerate(Path(path).read_bytes().split(b"\n"), start=1):
        if raw.strip():
            rows.append(_jsonl_row(raw))
            lines.append(n)
    return _with_columns(rows, f"'{path}'", tuple(lines))


def _jsonl_row(raw: bytes) -> Row | UnreadableRow:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return UnreadableRow("invalid_utf8", f"not valid UTF-8 (byte {exc.start} of the line)")
    try:
        row = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        return UnreadableRow("invalid_json", f"invalid JSON ({why})")
    if not isinstance(row, dict):
        return UnreadableRow("invalid_json", f"a JSON {type(row).__name__}, not an object")
    return row


def _parquet_rows(path: str) -> list[Row | UnreadableRow]:
    """Rows of a Parquet file; a row whose strings are not UTF-8 becomes an UnreadableRow, not a crash."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise TaskError(f"Cannot read '{path}' as Parquet: {_first_line(exc)}. Give a valid Parquet file.") from None
    try:
        return [_decoded(row) for row in table.to_pylist()]
    except UnicodeDecodeError:  # some row holds invalid UTF-8: find it, keep the others
        return [_parquet_row(table, n) for n in range(table.num_rows)]


def _parquet_row(table: Any, n: int) -> Row | UnreadableRow:
    try:
        return _decoded(table.slice(n, 1).to_pylist()[0])
    except UnicodeDecodeError as exc:
        return UnreadableRow("invalid_utf8", f"a string is not valid UTF-8 (byte {exc.start})")


def _decoded(row: Row) -> Row:
    """Binary cells decoded as UTF-8 text (a failure is the row's problem, raised as UnicodeDecodeError)."""
    return {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in row.items()}


def _with_columns(rows: list, where: str, lines: tuple[int, ...] | None = None) -> RowTable:
    if not rows:
        raise TaskError(f"{where} has no rows.")
    columns = dict.fromkeys(k for row in rows if isinstance(row, dict) for k in row)
    return RowTable(tuple(rows), tuple(columns), lines)


@lru_cache(maxsize=16)
def _read_hub(hub_id: str, config: str | None, split: str | None) -> RowTable:
    """Rows from `datasets.load_dataset`, imported here so that importing ttscale.tasks stays light."""
    _check_hub_reachable(hub_id)
    try:
        import datasets

        loaded = datasets.load_dataset(hub_id, config, split=split)
        if split is None:
            loaded = _pick_split(loaded, hub_id)
    except TaskError:
        raise
    except Exception as exc:  # datasets raises many types (ConnectionError, FileNotFoundError, ValueError...)
        raise _hub_error(hub_id, _first_line(exc)) from None
    return _with_columns(loaded.to_list(), f"hub dataset '{hub_id}'")


def _pick_split(loaded: Any, hub_id: str) -> Any:
    names = list(loaded)
    name = next((s for s in SPLIT_PREFERENCE if s in names), names[0] if len(names) == 1 else None)
    if name is None:
        raise TaskError(
            f"Hub dataset '{hub_id}' has splits {names} and none is test/validation/train; "
            "download the split you want and pass its .jsonl/.parquet path."
        )
    return loaded[name]


def _check_hub_reachable(hub_id: str) -> None:
    """Fail in milliseconds, not after ~25 s of retries, when the hub's host does not even resolve."""
    if any(os.environ.get(v, "").lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        return  # offline mode: datasets answers from its cache (or fails) at once
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        why = f"{host} does not resolve; set HF_HUB_OFFLINE=1 to use a cached copy"
        raise _hub_error(hub_id, why) from None


def _hub_error(hub_id: str, why: str) -> TaskError:
    return TaskError(
        f"Cannot load '{hub_id}' from the Hugging Face Hub ({why}). "
        "Download it and pass a local .jsonl/.parquet path instead."
    )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def file_sha256(path: str) -> str:
    """The content hash that identifies a local dataset file, wherever it lives."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
