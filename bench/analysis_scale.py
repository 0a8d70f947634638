"""Analysis at scale: synthetic stores of ~1M and ~10M result rows, analysed as `ttscale analyze` does.

1M rows (6 models × 4 datasets × 8 budgets × 8 seeds × 650 problems): read with pyarrow in this process, then
per-problem values, dataset curves with 1000 bootstrap resamples, emergence scores, fits and p-values for every
problem and dataset curve, the sequential-vs-parallel compute analysis (maj@k, pass@k, the frontier and its
scores) and the HTML report. Goal: <= 15 s and <= 4 GiB on 2 cores.

10M rows (6,500 problems per pair): on a two-node Ray cluster started on this machine (head + worker, as the
tests start it), `analysis/reduce.py` reduces each block of rows to (problem, budget) groups in the Ray tasks that
read them; only that table reaches the driver, which then computes dataset curves and emergence scores of
accuracy and p_correct and the maj@k frontier. Reported: wall time and the driver's peak RSS (goal <= 4 GiB),
and the same path on the 1M store, to say how it scales.

    python bench/analysis_scale.py [--problems 650] [--cluster-problems 6500 | 0 to skip] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from _common import verdict

from ttscale.schema import ROW_SCHEMA
from ttscale.store import ResultStore

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
    wrong = rng.choice(["41", "43", "7", "420"], size=n, p=[0.4, 0.3, 0.2, 0.1])  # wrong answers split their votes
    answers = np.where(correct.ravel() == 1, "42", wrong).tolist()
    pid = np.repeat(np.arange(problems), SEEDS * len(BUDGETS))
    seed = np.tile(np.repeat(np.arange(SEEDS), len(BUDGETS)), problems)
    budget = np.tile(BUDGETS, problems * SEEDS)
    cell = [f"m{model}d{dataset}b{b}s{s}" for b, s in zip(budget, seed, strict=True)]
    columns = {
        "model": [MODELS[model]] * n, "dataset": [DATASETS[dataset]] * n, "problem_id": [f"p{i}" for i in pid],
        "seed": seed.astype(np.int32), "budget": budget.astype(np.int32), "cell_id": cell,
        "trajectory_id": [f"t{model}-{dataset}-{i}-{s}" for i, s in zip(pid, seed, strict=True)],
        "config_id": [f"cfg{model}"] * n, "config": ["{}"] * n,
        "answer": answers, "answer_key": answers, "correct": correct.ravel(), "gold": ["42"] * n,
        "p_correct": p_correct.ravel(), "entropy": (1 - p_correct.ravel()) * 3, "brier": (1 - p_correct.ravel()) ** 2,
        "mass_on_set": np.full(n, 0.9), "prompt_tokens": np.full(n, 100, np.int32),
        "thinking_tokens": budget.astype(np.int32), "continuations": np.zeros(n, np.int32),
        "injected_tokens": np.zeros(n, np.int32), "answer_tokens": rng.integers(3, 12, n).astype(np.int32),
        "thinking_chars": (budget * 4).astype(np.int32), "trajectory_mode": ["nested"] * n,
        "on_early_stop": ["continue"] * n, "temperature": np.full(n, 0.6), "top_p": np.full(n, 0.95),
        "top_k": np.zeros(n, np.int32), "rng_seed": np.zeros(n, np.int64), "family": ["deepseek-r1-distill"] * n,
        "engine": ["vllm"] * n, "engine_version": ["synthetic"] * n, "model_path": ["synthetic"] * n,
        "ttscale_version": ["synthetic"] * n, "created_at": [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)] * n,
    }  # fmt: skip
    arrays = [pa.array(columns[f.name], type=f.type) if f.name in columns else pa.nulls(n, f.type) for f in ROW_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=ROW_SCHEMA)


def write_store(root: Path, problems: int) -> ResultStore:
    """A synthetic results directory: one shard per (model, dataset)."""
    store, rng = ResultStore(root), np.random.default_rng(0)
    start = time.perf_counter()
    for m in range(len(MODELS)):
        for d in range(len(DATASETS)):
            store.write_unit(f"m{m}d{d}", synthetic_shard(m, d, problems, rng))
    rows = len(MODELS) * len(DATASETS) * problems * SEEDS * len(BUDGETS)
    print(f"wrote {rows:,} rows in {len(store.row_shards())} shards in {time.perf_counter() - start:.1f} s", flush=True)
    return store


def one_machine(store: ResultStore, out: Path) -> None:
    """Read with pyarrow, analyse and write the report, in this process."""
    from ttscale.analysis import Results

    start = time.perf_counter()
    results = Results.open(store.root)
    read = time.perf_counter() - start
    report = results.report(out)
    total = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"read with pyarrow {read:.1f} s; analysis + report {total - read:.1f} s; report {report}")
    print(f"problem curves scored: {len(results.emergence('p_correct', level='problem')):,}; frontier answers: "
          f"{results.frontier_emergence()['answer'].notna().sum()}")  # fmt: skip
    print(verdict("seconds end to end, 1M rows", total, 15.0))
    print(verdict("peak memory of this process (GiB)", peak_gib, 4.0))


def on_cluster(stores: list[ResultStore]) -> None:
    """A two-node Ray cluster on this machine, and a driver process connected to it (token included) per store."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "cluster"))
    from two_nodes import TwoNodeCluster

    cluster = TwoNodeCluster(head_cpus=1, worker_cpus=1).start()
    try:
        for store in stores:
            command = [sys.executable, __file__, "--driver", cluster.address, str(store.root)]
            subprocess.run(command, env=cluster.env, check=True, timeout=3600)
    finally:
        cluster.stop()


def driver(address: str, root: Path) -> None:
    """Reduce on the cluster, then curves, emergence and the maj@k frontier from the reduced table, in this process."""
    import ray
    import ray.data

    from ttscale.analysis.emergence import emergence_table
    from ttscale.analysis.frontier import frontier_scores
    from ttscale.analysis.reduce import reduce_problems

    ray.init(address=address, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    start = time.perf_counter()
    table = reduce_problems(root)
    reduced = time.perf_counter() - start
    for metric in ("accuracy", "p_correct"):
        emergence_table(table.curves(metric), keys=["model", "dataset"], n_sim=200)
    scores = frontier_scores(table.parallel("maj"), n_sim=200)
    total = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    rows = int(table.table["seeds"].sum())
    print(f"{rows:,} rows on two nodes: reduced to {len(table.table):,} (problem, budget) rows in {reduced:.1f} s; "
          f"curves, emergence and the frontier ({len(scores)} curves) {total - reduced:.1f} s; total {total:.1f} s; "
          f"driver peak RSS {peak:.2f} GiB", flush=True)
    print(verdict(f"driver peak memory, {rows / 1e6:.1f}M rows (GiB)", peak, 4.0), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=650)
    parser.add_argument("--cluster-problems", type=int, default=6500, help="the 10M store's problems; 0: skip")
    parser.add_argument("--keep", type=Path, help="write the synthetic stores and report here and keep them")
    parser.add_argument("--driver", nargs=2, metavar=("ADDRESS", "DIR"), help=argparse.SUPPRESS)  # on_cluster's
    args = parser.parse_args()
    if args.driver:
        return driver(args.driver[0], Path(args.driver[1]))
    root = args.keep or Path(tempfile.mkdtemp(prefix="analysis-scale-"))
    small = write_store(root / "results", args.problems)
    one_machine(small, root / "analysis")
    if args.cluster_problems:
        large = write_store(root / "results-10m", args.cluster_problems)
        on_cluster([small, large])
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
