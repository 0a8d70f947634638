"""Compaction of small shards: reading and planning a results directory of 100,000 small shards, before and after
`ttscale compact`, against the same rows written one shard per unit (today's 1,000 shards).

The rows are analysis_scale.py's 1M synthetic rows (6 models × 4 datasets × 650 problems × 8 seeds × 8 budgets,
every ROW_SCHEMA column), cut into --shards row shards of ~10 rows (what a sweep that streams a few finished
(problem, seed) groups per flush leaves); their 124,800 nested trajectories (128 tokens each) into
--trajectory-shards shards. Timed on each directory: `ResultStore.done_keys()` (what planning reads),
`trajectory_index()` (what a nested sweep reads at its start) and `Results.open` (what analysis and the explorer
read); and the compaction itself. Goal: after compaction, each read no slower than on the one-shard-per-unit
directory (ratio <= 1).

    python bench/store_compaction.py [--shards 100000] [--trajectory-shards 10000] [--baseline-shards 1000]
                                     [--problems 650] [--keep DIR]
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from _common import verdict
from analysis_scale import BUDGETS, DATASETS, MODELS, synthetic_shard

from ttscale.compaction import compact
from ttscale.schema import TRAJECTORY_SCHEMA
from ttscale.store import ResultStore

TOKENS = 128  # per synthetic trajectory


def synthetic_rows(problems: int) -> pa.Table:
    """analysis_scale's rows, (model, dataset) after (model, dataset), in the order a sweep finishes them."""
    rng = np.random.default_rng(0)
    return pa.concat_tables(
        [synthetic_shard(m, d, problems, rng) for m in range(len(MODELS)) for d in range(len(DATASETS))]
    ).combine_chunks()


def synthetic_trajectories(rows: pa.Table) -> pa.Table:
    """One nested trajectory per (model, dataset, problem, seed) of the rows: its first row's identity."""
    first = rows.filter(pa.compute.equal(rows["budget"], BUDGETS[0]))
    n = first.num_rows
    tokens = pa.array([list(range(TOKENS))] * n, type=pa.list_(pa.int32()))
    columns = {
        "trajectory_id": first["trajectory_id"], "model": first["model"], "dataset": first["dataset"],
        "problem_id": first["problem_id"], "seed": first["seed"], "rng_seed": first["rng_seed"],
        "prompt_tokens": first["prompt_tokens"], "token_ids": tokens,
        "injected": pa.array([[False] * TOKENS] * n, type=pa.list_(pa.bool_())),
        "text": pa.array(["thinking " * (TOKENS // 2)] * n), "model_tokens": pa.array([TOKENS] * n, pa.int32()),
        "continuations": pa.array([0] * n, pa.int32()), "finished": pa.array([False] * n),
    }  # fmt: skip
    arrays = [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in TRAJECTORY_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=TRAJECTORY_SCHEMA)


def write_shards(directory: Path, table: pa.Table, shards: int, prefix: str) -> None:
    """`table` cut into `shards` consecutive shards named as a sweep names them (`<unit>-<8 hex>.parquet`)."""
    directory.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, table.num_rows, shards + 1).astype(int)
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        pq.write_table(table.slice(lo, hi - lo), directory / f"{prefix}{i:06d}-{i * 2654435761 % 2**32:08x}.parquet")


def write_store(root: Path, rows: pa.Table, trajectories: pa.Table, shards: int, trajectory_shards: int) -> ResultStore:
    start = time.perf_counter()
    store = ResultStore(root)
    write_shards(store.rows_dir, rows, shards, "u")
    write_shards(store.trajectories_dir, trajectories, trajectory_shards, "u")
    print(f"{root.name}: {rows.num_rows:,} rows in {shards:,} shards, {trajectories.num_rows:,} trajectories in "
          f"{trajectory_shards:,} shards, written in {time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
    return store


def timed_reads(store: ResultStore, label: str) -> dict[str, Any]:
    """Seconds of each read, and what it read (to check that compaction changed nothing)."""
    from ttscale.analysis import Results

    reads: dict[str, Callable[[], Any]] = {
        "done_keys": store.done_keys,
        "trajectory_index": lambda: sorted(store.trajectory_index()),
        "Results.open": lambda: len(Results.open(store.root).rows),
    }
    out: dict[str, Any] = {}
    for name, read in reads.items():
        start = time.perf_counter()
        out[name] = read()
        out[f"{name} s"] = time.perf_counter() - start
    shards = len(store.row_shards()), len(store.trajectory_shards())
    print(f"{label} ({shards[0]:,} + {shards[1]:,} shards): "
          + ", ".join(f"{name} {out[f'{name} s']:.2f} s" for name in reads), flush=True)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=100_000, help="small rows shards")
    parser.add_argument("--trajectory-shards", type=int, default=10_000, help="small trajectories shards")
    parser.add_argument("--baseline-shards", type=int, default=1_000, help="shards of the one-per-unit directory")
    parser.add_argument("--problems", type=int, default=650, help="per (model, dataset): 650 gives ~1M rows")
    parser.add_argument("--keep", type=Path, help="write the directories here and keep them")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="store-compaction-"))
    rows = synthetic_rows(args.problems)
    trajectories = synthetic_trajectories(rows)
    baseline = write_store(root / "per-unit", rows, trajectories, args.baseline_shards, args.baseline_shards)
    small = write_store(root / "streamed", rows, trajectories, args.shards, args.trajectory_shards)
    today = timed_reads(baseline, "one shard per unit")
    before = timed_reads(small, "small shards")

    start = time.perf_counter()
    done = compact(small)
    seconds = time.perf_counter() - start
    for result in done:
        print(f"compacted {result.line()}", flush=True)
    print(f"compaction: {seconds:.0f} s, {1000 * seconds / (args.shards + args.trajectory_shards):.2f} ms per small "
          f"shard; on disk {_mib(small.rows_dir):.0f} MiB of rows, {_mib(small.trajectories_dir):.0f} MiB of "
          "trajectories", flush=True)  # fmt: skip
    after = timed_reads(small, "compacted")

    for name in ("done_keys", "trajectory_index", "Results.open"):
        assert after[name] == before[name] == today[name], f"{name} read other rows after compaction"
        print(f"{name}: small shards {before[f'{name} s'] / after[f'{name} s']:.0f}x slower than compacted", flush=True)
        print(verdict(f"{name}, compacted / one shard per unit", after[f"{name} s"] / today[f"{name} s"], 1.0))
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


def _mib(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.glob("*.parquet")) / 2**20


if __name__ == "__main__":
    main()
