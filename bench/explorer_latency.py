"""Explorer latency on ~1M rows: the API answers from an index built once, never rereading every shard.

The synthetic store of bench/analysis_scale.py (6 models × 4 datasets × 8 budgets × 8 seeds × 650 problems =
998,400 rows in 24 shards) is indexed once, the first page's analyses are computed (curves of accuracy and
p_correct, the p_correct emergence table, as the Serve replica does when it starts), then a mix of requests is
timed through `Explorer.handle` (what the Serve deployment calls; Serve's HTTP proxy adds ~6–8 ms): options, curves,
emergence pages sorted and filtered, problem details (reading the problem's shard for distributions), progress.
Goal: p95 <= 200 ms on 2 cores.

    python bench/explorer_latency.py [--problems 650] [--requests 300]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import verdict
from analysis_scale import BUDGETS, DATASETS, MODELS, SEEDS, synthetic_shard

from ttscale.store import ResultStore

SORTS = ["breakthroughness", "p_breakthroughness", "jump_size", "delta_bic_hinge"]


def requests(n: int, problems: int, rng: np.random.Generator) -> list[tuple[str, str, dict[str, str]]]:
    """n requests, as the page makes them: mostly curves, leaderboard pages and problems."""
    out = []
    for _ in range(n):
        model, dataset = MODELS[rng.integers(len(MODELS))], DATASETS[rng.integers(len(DATASETS))]
        kind = rng.choice(["options", "curve", "emergence", "problem", "progress"], p=[0.1, 0.3, 0.25, 0.25, 0.1])
        params = {"model": model, "dataset": dataset}
        if kind == "curve":
            params["metric"] = str(rng.choice(["accuracy", "p_correct"]))
        elif kind == "emergence":
            params.update(metric="p_correct", by=str(rng.choice(SORTS)), offset=str(rng.integers(0, 600)))
        elif kind == "problem":
            params.update(problem_id=f"p{rng.integers(problems)}", seed=str(rng.integers(SEEDS)))
        out.append((str(kind), f"/api/{kind}", params if kind in ("curve", "emergence", "problem") else {}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=650)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="print where the request time goes")
    args = parser.parse_args()
    root, rng = Path(tempfile.mkdtemp(prefix="explorer-latency-")), np.random.default_rng(0)
    try:
        store = ResultStore(root / "results")
        for m in range(len(MODELS)):
            for d in range(len(DATASETS)):
                store.write_unit(f"m{m}d{d}", synthetic_shard(m, d, args.problems, rng))
        rows = len(MODELS) * len(DATASETS) * args.problems * SEEDS * len(BUDGETS)

        from ttscale.serve.api import Explorer
        from ttscale.serve.index import ResultsIndex
        from ttscale.serve.queries import options

        start = time.perf_counter()
        explorer = Explorer(ResultsIndex([store.root]))
        indexed = time.perf_counter() - start
        snap = explorer.index.snapshot()
        snap.problem_lookup()
        options(snap)
        for metric in ("accuracy", "p_correct"):
            snap.results.curves(metric)
        snap.results.emergence("p_correct", level="problem")
        warmed = time.perf_counter() - start - indexed
        print(f"{rows:,} rows in {len(store.row_shards())} shards: index {indexed:.1f} s, first page's analyses "
              f"{warmed:.1f} s (once, when the replica starts)", flush=True)  # fmt: skip

        times: dict[str, list[float]] = {}
        profile = __import__("cProfile").Profile() if args.profile else None
        if profile:
            profile.enable()
        for kind, path, params in requests(args.requests, args.problems, rng):
            t = time.perf_counter()
            reply = explorer.handle("GET", path, params)
            times.setdefault(kind, []).append(1000 * (time.perf_counter() - t))
            assert reply.status == 200, (path, params, reply.body[:300])
        for kind, ms in sorted(times.items()):
            p50, p95 = np.percentile(ms, [50, 95])
            print(f"  {kind:<10} n={len(ms):>3}  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {max(ms):6.1f} ms")
        if profile:
            profile.disable()
            __import__("pstats").Stats(profile).sort_stats("cumulative").print_stats(25)
        every = [t for ms in times.values() for t in ms]
        print(verdict("p95 latency of the API on 1M rows (ms)", float(np.percentile(every, 95)), 200.0))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
