"""Stable identities: canonical JSON hashes of everything that changes a result."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from enum import Enum
from pathlib import PurePath
from typing import Any


def normalize(value: Any) -> Any:
    """Turn a config value into plain JSON types; unknown types raise rather than under-hash."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return repr(value)  # keeps 0.1 and 0.10000000000000002 apart, and -0.0 from 0.0
    if isinstance(value, Enum):
        return normalize(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: normalize(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(normalize(v) for v in value)
    if hasattr(value, "model_dump"):  # pydantic models
        return normalize(value.model_dump(mode="json"))
    raise TypeError(f"cannot hash a value of type {type(value).__name__}: add it to ttscale.ids.normalize")


def canonical_json(value: Any) -> str:
    return json.dumps(normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def stable_hash(value: Any, length: int = 20) -> str:
    """sha256 of the canonical JSON of `value`, as `length` hex characters."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


def pair_digest(*, model: Mapping[str, Any], dataset: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    """Hash what all cells of one (model, dataset) share, once; `cell_id` then adds budget and seed."""
    return stable_hash({"model": model, "dataset": dataset, "settings": settings}, length=64)


def cell_id(pair: str, budget: int, seed: int) -> str:
    """The key of a (model, dataset, budget, seed) cell: changes whenever anything that changes its rows does."""
    return hashlib.sha256(f"{pair}|budget={budget}|seed={seed}".encode()).hexdigest()[:20]


def trajectory_id(*, model: Mapping[str, Any], dataset: Mapping[str, Any], settings: Mapping[str, Any],
                  problem_id: str, seed: int, budget: int | None) -> str:  # fmt: skip
    """The key of one trajectory: (problem, seed) in nested mode, (problem, seed, budget) in independent."""
    return stable_hash(
        {
            "model": model,
            "dataset": dataset,
            "settings": settings,
            "problem": problem_id,
            "seed": seed,
            "budget": budget,
        }
    )
