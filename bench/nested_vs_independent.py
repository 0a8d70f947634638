"""Nested vs independent trajectories on SmolLM2 (CPU): tokens generated and wall time, same work.

Runs the full measurement (trajectories, forced answers, solution-set scoring, grading) for the same
problems × seeds × budgets in both modes and prints the ratios. Goals: tokens <= 0.55x, wall <= 0.65x.

    python bench/nested_vs_independent.py [--problems 8] [--seeds 2] [--budgets 16,32,64,128,256]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import threads, timed, verdict

from ttscale.engines.hf import HFEngine
from ttscale.forcing import ForcingConfig
from ttscale.measure import measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="demo-arith")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--budgets", default="16,32,64,128,256")
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]

    engine = HFEngine("smollm2-135m", threads=threads())
    results, seconds = {}, {}
    for mode in ("independent", "nested"):
        engine.cache.clear()
        tokens = []
        with timed(seconds, mode):
            results[mode] = measure(
                engine, args.dataset, budgets=budgets, seeds=args.seeds, limit=args.problems,
                forcing=ForcingConfig(trajectory=mode), problems_per_unit=args.problems,
                on_unit=lambda _d, _t, n, tokens=tokens: tokens.append(n),
            )  # fmt: skip
        results[mode + "_tokens"] = sum(tokens)
        print(f"{mode:12s} {seconds[mode]:7.1f} s  {results[mode + '_tokens']:6d} tokens generated", flush=True)

    n = results["nested"].to_pandas().sort_values(["problem_id", "seed", "budget"], ignore_index=True)
    i = results["independent"].to_pandas().sort_values(["problem_id", "seed", "budget"], ignore_index=True)
    assert len(n) == len(i) == args.problems * args.seeds * len(budgets)
    assert (n.thinking_tokens <= n.budget).all() and (i.thinking_tokens <= i.budget).all()
    print(f"workload: {args.problems} problems x {args.seeds} seeds x budgets {budgets} on {args.dataset}")
    print(f"accuracy nested {n.correct.mean():.3f}, independent {i.correct.mean():.3f} (different samples, same law)")
    print(verdict("tokens nested/independent", results["nested_tokens"] / results["independent_tokens"], 0.55))
    print(verdict("wall   nested/independent", seconds["nested"] / seconds["independent"], 0.65))


if __name__ == "__main__":
    main()
