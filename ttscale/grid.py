"""The budget and seed grid of a measurement, validated one way for a sweep file (`SweepSpec`) and `measure()`.

Pure Python: each function takes what a user wrote and returns the sorted grid, or raises ValueError with
"Got X. Rule. Fix" (the caller says which field it was)."""

from __future__ import annotations

from typing import Any

from ttscale.messages import short_repr

MAX_LOG2 = 30  # {log2: [lo, hi]} runs to 2^30
MAX_BUDGET = 2**MAX_LOG2  # tokens; the same cap for a listed budget
MAX_SEEDS = 100_000  # seeds in one grid
MAX_SEED = 2**32 - 1  # the largest seed every engine's RNG takes (numpy's limit)


def budgets(value: Any) -> list[int]:
    """Thinking budgets in tokens: a list of positive integers (at most 2^30), or {log2: [lo, hi]} for
    2^lo..2^hi; sorted, each once."""
    if isinstance(value, dict):
        if set(value) != {"log2"} or not isinstance(value["log2"], list) or len(value["log2"]) != 2:
            raise ValueError(f"Got {short_repr(value)}. Write a list like [16, 32, 64] or {{log2: [4, 8]}}")
        lo, hi = value["log2"]
        if not all(_is_int(v) for v in (lo, hi)) or not 0 <= lo <= hi <= MAX_LOG2:
            raise ValueError(f"Got log2: {short_repr(value['log2'])}. Give two integers 0 <= lo <= hi <= {MAX_LOG2}")
        return [2**k for k in range(lo, hi + 1)]
    if not isinstance(value, list) or not value:
        raise ValueError(f"Got {short_repr(value)}. Write a list like [16, 32, 64] or {{log2: [4, 8]}}")
    for b in value:
        if not _is_int(b) or b <= 0:
            raise ValueError(f"Got {short_repr(b)}. Every budget must be a positive integer number of tokens")
        if b > MAX_BUDGET:
            raise ValueError(f"Got {short_repr(b)}. A budget is at most 2^{MAX_LOG2} = {MAX_BUDGET} tokens")
    return sorted(set(value))


def seeds(value: Any) -> list[int]:
    """Seeds: a count n (seeds 0..n-1, n at most 100000) or a list of distinct integers 0..2^32-1; sorted."""
    if _is_int(value):
        if not 1 <= value <= MAX_SEEDS:
            raise ValueError(
                f"Got {short_repr(value)}. Give a count >= 1 (at most {MAX_SEEDS}) or a list of integers >= 0"
            )
        return list(range(value))
    if not isinstance(value, list) or not value or len(value) > MAX_SEEDS:
        raise ValueError(f"Got {short_repr(value)}. Give a count >= 1 or a list of integers >= 0")
    if any(not _is_int(s) or s < 0 for s in value) or len(set(value)) != len(value):
        raise ValueError(f"Got {short_repr(value)}. Seeds must be distinct integers >= 0")
    if max(value) > MAX_SEED:
        raise ValueError(f"Got {short_repr(max(value))}. A seed is at most 2^32 - 1 = {MAX_SEED}")
    return sorted(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
