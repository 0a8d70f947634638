"""Analysis at scale: a synthetic store of ~1M result rows analysed end to end, as `ttscale analyze` does.

6 models × 4 datasets × 8 budgets × 8 seeds × 650 problems = 998,400 rows, written as Parquet shards of
the real row schema. Timed: reading through Ray Data, per-problem values, dataset curves with 1000
bootstrap resamples, emergence scores, fits and p-values for every problem and dataset curve, and the
HTML report. Goal: <= 60 s on 2 cores and <= 4 GiB peak memory. Memory is reported twice: this process's
peak RSS, and the peak over time of the summed PSS of this process and every process it started (the local
Ray instance and its Ray Data workers), sampled twice a second.

    python bench/analysis_scale.py [--problems 650] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from _common import verdict

from ttscale.store import ROW_SCHEMA, ResultStore

MODELS = [f"deepseek-ai/DeepSeek-R1-Distill-Qwen-{s}" for s in ("1.5B", "7B", "14B", "32B")] + [
    "Qwen/QwQ-32B",
    "microsoft/Phi-4-reasoning-plus",
]
DATASETS = ["aime24", "aime25", "gpqa-diamond", "math500"]
BUDGETS = [2**k for k in range(7, 15)]
SEEDS = 8


def synthetic_shard(model: int, dataset: int, problems: int, rng: np.random.Generator) -> pa.Table:
    """One (model, dataset): sigmoid curves in log2 budget with random midpoints and widths, plus noise."""
    x = np.log2(BUDGETS)  # (n_budgets,)
    mid = rng.uniform(7, 15, size=(problems, 1))
    width = rng.choice([0.3, 1.0, 4.0], size=(problems, 1))
    p = 1 / (1 + np.exp(-(x[None] - mid) * 4.39 / width))  # (problems, budgets)
    P = np.repeat(p[:, None, :], SEEDS, axis=1)  # (problems, seeds, budgets)
    p_correct = np.clip(P + rng.normal(0, 0.05, P.shape), 1e-6, 1)
    correct = (rng.random(P.shape) < P).astype(np.int8)
    n = P.size
    pid = np.repeat(np.arange(problems), SEEDS * len(BUDGETS))
    seed = np.tile(np.repeat(np.arange(SEEDS), len(BUDGETS)), problems)
    budget = np.tile(BUDGETS, problems * SEEDS)
    cell = [f"m{model}d{dataset}b{b}s{s}" for b, s in zip(budget, seed, strict=True)]
    columns = {
        "model": [MODELS[model]] * n, "dataset": [DATASETS[dataset]] * n, "problem_id": [f"p{i}" for i in pid],
        "seed": seed.astype(np.int32), "budget": budget.astype(np.int32), "cell_id": cell,
        "trajectory_id": [f"t{model}-{dataset}-{i}-{s}" for i, s in zip(pid, seed, strict=True)],
        "config_id": [f"cfg{model}"] * n, "config": ["{}"] * n,
        "answer": ["42"] * n, "correct": correct.ravel(), "gold": ["42"] * n,
        "p_correct": p_correct.ravel(), "entropy": (1 - p_correct.ravel()) * 3, "brier": (1 - p_correct.ravel()) ** 2,
        "mass_on_set": np.full(n, 0.9), "prompt_tokens": np.full(n, 100, np.int32),
        "thinking_tokens": budget.astype(np.int32), "continuations": np.zeros(n, np.int32),
        "injected_tokens": np.zeros(n, np.int32), "answer_tokens": np.full(n, 4, np.int32),
        "thinking_chars": (budget * 4).astype(np.int32), "trajectory_mode": ["nested"] * n,
        "on_early_stop": ["continue"] * n, "temperature": np.full(n, 0.6), "top_p": np.full(n, 0.95),
        "top_k": np.zeros(n, np.int32), "rng_seed": np.zeros(n, np.int64), "family": ["deepseek-r1-distill"] * n,
        "engine": ["vllm"] * n, "engine_version": ["synthetic"] * n, "model_path": ["synthetic"] * n,
        "ttscale_version": ["synthetic"] * n, "created_at": [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)] * n,
    }  # fmt: skip
    arrays = [pa.array(columns[f.name], type=f.type) if f.name in columns else pa.nulls(n, f.type) for f in ROW_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=ROW_SCHEMA)


class TreeMemory:
    """Samples the summed PSS (proportional set size: shared pages split between their users) of this process
    and all its descendants in a background thread, and keeps the peak."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval, self.peak_bytes = interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    total += proc.memory_full_info().pss
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.interval)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=650)
    parser.add_argument("--keep", type=Path, help="write the synthetic store and report here and keep them")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="analysis-scale-"))
    store, rng = ResultStore(root / "results"), np.random.default_rng(0)
    start = time.perf_counter()
    for m in range(len(MODELS)):
        for d in range(len(DATASETS)):
            store.write_unit(f"m{m}d{d}", synthetic_shard(m, d, args.problems, rng))
    rows = len(MODELS) * len(DATASETS) * args.problems * SEEDS * len(BUDGETS)
    print(f"wrote {rows:,} rows in {len(store.row_shards())} shards in {time.perf_counter() - start:.1f} s", flush=True)

    from ttscale.analysis import Results

    with TreeMemory() as tree:
        start = time.perf_counter()
        results = Results.open(store.root)
        read = time.perf_counter() - start
        report = results.report(root / "analysis")
        total = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"read through Ray Data {read:.1f} s; analysis + report {total - read:.1f} s; report {report}")
    print(f"problem curves scored: {len(results.emergence('p_correct', level='problem')):,}")
    tree_gib = tree.peak_bytes / 2**30
    print(f"peak RSS of this process {peak_gib:.2f} GiB; peak PSS with Ray's processes {tree_gib:.2f} GiB")
    print(verdict("seconds end to end", total, 60.0))
    print(verdict("peak memory, this process + Ray (GiB)", tree_gib, 4.0))
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
