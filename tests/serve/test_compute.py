"""The explorer's compute view on rows where parallel sampling at a small budget reaches what k = 1 reaches only at the
largest: the frontier takes the parallel point, and the JSON says so (no Ray: a snapshot of a made-up frame)."""

from __future__ import annotations

import pandas as pd
import pytest

from ttscale.analysis import Results
from ttscale.serve import queries
from ttscale.serve.index import COMPUTE, Snapshot

BUDGETS = [8, 16, 32, 64]
SPLIT = ["7", "9", "7", "8"]  # two seeds right, the wrong ones split: maj@4 always right, accuracy 0.5


def snapshot() -> Snapshot:
    """Four problems, four seeds: the split answers up to B = 32, every seed right at B = 64; a seed spends B tokens."""
    rows = [
        {"model": "m", "dataset": "d", "problem_id": f"p{p}", "budget": b, "seed": s, "cell_id": f"{p}-{b}-{s}",
         "answer": a, "correct": int(a == "7"), "gold": "7", "unclosed": False, "thinking_tokens": b,
         "answer_tokens": 0}
        for p in range(4) for b in BUDGETS for s, a in enumerate(SPLIT if b < 64 else ["7"] * 4)
    ]  # fmt: skip
    return Snapshot(Results.from_frame(pd.DataFrame(rows), n_boot=20, n_sim=20), generation=0, built_at=0.0)


def test_the_frontier_takes_the_parallel_point_that_k1_reaches_only_at_the_largest_budget():
    snap = snapshot()
    c = queries.compute(snap, "m", "d", "maj")
    p, f = c["points"], c["frontier"]
    k1 = {b: v for k, b, v in zip(p["k"], p["budget"], p["value"], strict=True) if k == 1}
    assert k1 == {8: 0.5, 16: 0.5, 32: 0.5, 64: 1.0}
    at = dict(zip(f["cost"], zip(f["value"], f["budget"], f["k"], strict=True), strict=True))
    assert at[24.0] == (pytest.approx(2 / 3), 8, 3)  # maj@3 at B = 8: two votes for the gold, or a three-way tie
    assert at[32.0] == (1.0, 8, 4)  # four seeds at B = 8 cost what one seed costs at B = 32, and beat it
    assert f["value"] == sorted(f["value"]) and f["cost"] == sorted(f["cost"]) and f["cost"][0] == 8.0
    front = c["scores"][1]
    assert front["curve"] == "frontier" and front["parallel_points"] >= 1 and "Parallel points" in c["answer"]
    assert (COMPUTE, "maj") in snap._memo  # computed once per snapshot and metric, for every pair
    assert c["scores"][0]["n_points"] == front["n_points"] == len(BUDGETS)  # the same number of doublings
