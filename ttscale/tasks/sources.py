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

FILE_SUFFIXES = (".jsonl", ".json", ".parquet")
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


def read_rows(source: Source) -> tuple[tuple[Row, ...], tuple[str, ...]]:
    """All rows of a file or hub source in their stored order, and the column names seen."""
    if source.kind == "file":
        stat = Path(source.location).stat()
        return _read_file(str(Path(source.location).resolve()), stat.st_mtime_ns, stat.st_size)
    return _read_hub(source.location, source.config, source.split)


@lru_cache(maxsize=16)
def _read_file(path: str, mtime_ns: int, size: int) -> tuple[tuple[Row, ...], tuple[str, ...]]:
    """Cached per (path, mtime, size): a file edited in place is read again."""
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    elif path.endswith(".jsonl"):
        lines = Path(path).read_text().splitlines()
        rows = [_json(line, path, n) for n, line in enumerate(lines) if line.strip()]
    else:
        rows = _json(Path(path).read_text(), path, None)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise TaskError(f"'{path}' must hold a list of objects (one per problem).")
    return _with_columns(rows, path)


def _json(text: str, path: str, line: int | None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {line + 1} of '{path}'" if line is not None else f"'{path}'"
        raise TaskError(f"Invalid JSON on {where}: {exc.msg}.") from None


def _with_columns(rows: list[Row], where: str) -> tuple[tuple[Row, ...], tuple[str, ...]]:
    if not rows:
        raise TaskError(f"{where} has no rows.")
    columns = dict.fromkeys(k for row in rows for k in row)
    return tuple(rows), tuple(columns)


@lru_cache(maxsize=16)
def _read_hub(hub_id: str, config: str | None, split: str | None) -> tuple[tuple[Row, ...], tuple[str, ...]]:
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
