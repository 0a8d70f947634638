"""Analysis on a grid `ttscale refine` made uneven in log2: scores, fits and p-values on the sorted grid, curves
compared only on the shared grid, and the report's before/after view of each refined (model, dataset)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ttscale.analysis import Results
from ttscale.analysis.emergence import emergence_table
from ttscale.analysis.report import write_report

BASE = [16, 32, 64, 128, 256]
ADDED = [45, 91]  # refine's log-spaced budgets in 32–64 and 64–128


def p_correct(budget: int, problem: int, jump_at: float) -> float:
    """A smooth sigmoid in log2 B, centred at `jump_at` (log2 units), with a small problem-specific offset."""
    return 0.05 + 0.9 / (1.0 + np.exp(-6.0 * (np.log2(budget) - jump_at))) + 0.003 * problem


def rows_for(model: str, dataset: str, budgets: list[int], jump_at: float, problems: int = 6) -> list[dict]:
    return [
        {"model": model, "dataset": dataset, "problem_id": f"p{j}", "seed": 0, "budget": b,
         "cell_id": f"{model}-{dataset}-{b}", "trajectory_id": f"{model}-{dataset}-{j}", "family": "toy",
         "answer": "1", "gold": "1", "correct": int(p_correct(b, j, jump_at) > 0.5),
         "p_correct": p_correct(b, j, jump_at), "thinking_tokens": b, "thinking_chars": 4 * b}
        for j in range(problems) for b in budgets
    ]  # fmt: skip


def test_scores_fits_and_p_values_are_defined_on_an_uneven_sorted_grid():
    grid = sorted(BASE + ADDED)
    values = pd.DataFrame(
        [
            {
                "model": "m",
                "dataset": "d",
                "problem_id": f"p{j}",
                "budget": b,
                "value": p_correct(b, j, 5.6) + 0.01 * np.sin(7 * b + j),
            }
            for j in range(4)
            for b in reversed(grid)
        ]
    )  # fmt: skip (given unsorted: the grid is sorted before Δ_i is taken)
    table = emergence_table(values, n_sim=50)
    assert (table.n_budgets == len(grid)).all() and table.complete.all()
    for column in ("breakthroughness", "skewness", "delta_bic_hinge", "sigmoid_midpoint", "p_breakthroughness"):
        assert np.isfinite(table[column]).all(), column
    assert (table.jump_budget == 64).all()  # the largest rise is 45 → 64, inside the old 32–64 gap
    assert ((table.sigmoid_midpoint > 5.0) & (table.sigmoid_midpoint < 6.2)).all()  # log2 units, on uneven x
    assert ((table.p_breakthroughness >= 0) & (table.p_breakthroughness <= 1)).all()


def test_curves_are_compared_only_on_the_shared_grid():
    rows = pd.DataFrame(rows_for("m", "refined", sorted(BASE + ADDED), 5.6) + rows_for("m", "plain", BASE, 6.4))
    results = Results.from_frame(rows, n_boot=20, n_sim=20)
    assert results.shared_grid() == tuple(BASE)
    assert results.refined_pairs() == {("m", "refined"): tuple(ADDED)}
    plain = Results.from_frame(rows[rows.budget.isin(BASE)], n_boot=20, n_sim=20)
    top, expected = results.top_k(12), plain.top_k(12)
    pd.testing.assert_frame_equal(top, expected)  # the refined pair is ranked on the shared budgets
    assert results.emergence(level="dataset").set_index("dataset").n_budgets.to_dict() == {"plain": 5, "refined": 7}
    same = Results.from_frame(rows[rows.dataset == "plain"])
    assert same.comparable() is same and same.refined_pairs() == {}


def test_the_report_shows_each_refined_grid_before_and_after(tmp_path):
    rows = pd.DataFrame(rows_for("m", "refined", sorted(BASE + ADDED), 5.6))
    results = Results.from_frame(rows, n_boot=20, n_sim=20)
    assert results.refined_pairs() == {}  # one pair, no manifest: nothing says which budgets were added
    results.refinements = {("m", "refined"): tuple(ADDED)}  # as Results.open reads them from the manifest
    html = write_report(results, tmp_path, k=2).read_text()
    assert "Refined budget grids" in html and "before refining" in html
    refined = pd.read_csv(tmp_path / "refined_grids.csv")
    row = refined[refined.metric == "p_correct"].iloc[0]
    assert row.budgets_added == "45, 91" and (row.n_budgets_before, row.n_budgets_after) == (5, 7)
    assert row.jump_before == "32–64" and row.jump_after == "45–64"  # the jump located twice as finely
    assert row.jump_size_after < row.jump_size_before
    assert row.breakthroughness_after == pytest.approx(
        Results.from_frame(rows, n_boot=20, n_sim=20).emergence(level="dataset").breakthroughness.iloc[0]
    )
