"""Shared helpers for the benchmark scripts: timing and printing a ratio against its goal."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager


def threads() -> int:
    return int(os.environ.get("TTSCALE_BENCH_THREADS", min(2, os.cpu_count() or 1)))


@contextmanager
def timed(out: dict, key: str):
    start = time.perf_counter()
    yield
    out[key] = time.perf_counter() - start


def verdict(name: str, ratio: float, goal: float, *, lower_is_better: bool = True) -> str:
    ok = ratio <= goal if lower_is_better else ratio >= goal
    sign = "<=" if lower_is_better else ">="
    return f"{name}: {ratio:.3f}  (goal {sign} {goal})  {'PASS' if ok else 'MISS'}"
