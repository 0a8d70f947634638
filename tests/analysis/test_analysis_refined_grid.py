"""Analysis on a grid `ttscale refine` made uneven in log2 (METHOD.md §6): scores on the doubling budgets, so that
added budgets change no score or ranking; jumps located on every budget; curves compared on the shared doubling
grid; the report's before/after view of each refined (model, dataset)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ttscale.analysis import AnalysisWorkflow, Results
from ttscale.analysis.emergence import emergence_table, top_k
from ttscale.analysis.gaps import log_spaced
from ttscale.analysis.grids import ScoringGrid, interval_width, scoring_grid
from ttscale.analysis.report import write_report
from ttscale.errors import TtscaleWarning

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
         "p_correct": p_correct(b, j, jump_at), "entropy": 1.2 * (1 - p_correct(b, j, jump_at)),
         "thinking_tokens": b, "thinking_chars": 4 * b}
        for j in range(problems) for b in budgets
    ]  # fmt: skip


def long_table(curves: dict[str, list[float]], budgets: list[int]) -> pd.DataFrame:
    """Problem curves (problem id → values at `budgets`) as a long table of one (model, dataset)."""
    return pd.DataFrame(
        [{"model": "m", "dataset": "d", "problem_id": p, "budget": b, "value": v}
         for p, values in curves.items() for b, v in zip(budgets, values, strict=True)]
    )  # fmt: skip


def log_linear_point(budget: int, budgets: list[int], values: list[float]) -> float:
    """The value at `budget` on the straight line in log2 B between its two neighbours."""
    return float(np.interp(np.log2(budget), np.log2(budgets), values))


SCORES = ["breakthroughness", "breakthroughness_bigbench", "linearity_bigbench", "skewness", "skewness_weighted",
          "jump_budget", "jump_size", "delta_bic_hinge", "p_breakthroughness", "p_jump_size"]  # fmt: skip


def test_a_curve_linear_in_log2_budget_keeps_its_scores_when_budgets_are_added():
    base = [64, 128, 256, 512, 1024]
    ramp = [0.1 + 0.2 * i for i in range(5)]  # exactly linear in log2 B
    refined = sorted([*base, 91, 181])
    before = emergence_table(long_table({"ramp": ramp}, base), n_sim=50)
    after = emergence_table(long_table({"ramp": [log_linear_point(b, base, ramp) for b in refined]}, refined), n_sim=50)
    assert before.breakthroughness.iloc[0] == pytest.approx(0.25)  # 1/m on the doubling grid (was 0.172 after)
    pd.testing.assert_frame_equal(after[SCORES], before[SCORES])
    assert after.n_budgets.iloc[0] == 5 and after.doubling_grid.iloc[0] and after.complete.iloc[0]


def test_a_budget_on_the_log_linear_interpolation_of_its_neighbours_changes_no_score_or_ranking():
    base = [64, 128, 256, 512, 1024]
    curves = {"a": [0.0, 0.05, 0.6, 0.8, 0.81], "b": [0.1, 0.3, 0.35, 0.6, 0.7], "c": [0.5, 0.45, 0.2, 0.1, 0.1],
              "d": [0.2, 0.22, 0.25, 0.3, 0.9]}  # fmt: skip
    refined = sorted([*base, 91, 181, 362])  # refine adds the same budgets to every problem of the pair
    finer = {p: [log_linear_point(b, base, v) for b in refined] for p, v in curves.items()}
    before = emergence_table(long_table(curves, base), n_sim=50)
    after = emergence_table(long_table(finer, refined), n_sim=50)
    pd.testing.assert_frame_equal(after[SCORES], before[SCORES])
    for score in ("breakthroughness", "skewness", "jump_size"):
        assert list(top_k(after, 4, by=score).problem_id) == list(top_k(before, 4, by=score).problem_id), score


def test_refined_budgets_change_no_score_even_where_they_add_a_change():
    """Problem a's rise is looked at closely: its scores stay those of the doubling grid, only its jump moves."""
    base = [64, 128, 256, 512, 1024]
    values = {"a": [0.0, 0.1, 0.2, 0.9, 1.0], "b": [0.0, 0.2, 0.4, 0.6, 0.8]}
    refined = sorted([*base, 362])
    finer = {"a": [0.0, 0.1, 0.2, 0.85, 0.9, 1.0], "b": [0.0, 0.2, 0.4, 0.5, 0.6, 0.8]}
    before, after = emergence_table(long_table(values, base), n_sim=50), emergence_table(long_table(finer, refined))
    pd.testing.assert_frame_equal(after[SCORES[:7]], before[SCORES[:7]])
    assert list(top_k(after, 2).problem_id) == list(top_k(before, 2).problem_id) == ["a", "b"]
    a_before, a_after = before.set_index("problem_id").loc["a"], after.set_index("problem_id").loc["a"]
    assert (a_before.jump_interval_lo, a_before.jump_interval_hi) == (256, 512)
    assert (a_after.jump_interval_lo, a_after.jump_interval_hi) == (256, 362)  # 0.65 over half a unit of log2 B
    assert a_after.jump_slope == pytest.approx(0.65 / np.log2(362 / 256))


@pytest.mark.parametrize("seed", range(20))
def test_a_jump_located_on_the_base_grid_is_located_at_least_as_tightly_after_refinement(seed):
    rng = np.random.default_rng(seed)
    base = [16, 32, 64, 128, 256, 512]
    at = rng.uniform(4.2, 8.8)  # log2 of the jump's centre, anywhere between the grid's ends
    sharp = rng.uniform(2.0, 12.0)

    def curve(budgets):
        x = np.log2(budgets)
        return list(0.05 + 0.9 / (1.0 + np.exp(-sharp * (x - at))) + 0.01 * np.sin(3 * x + seed))

    before = emergence_table(long_table({"p": curve(base)}, base), n_sim=20).iloc[0]
    gap = (int(before.jump_interval_lo), int(before.jump_interval_hi))
    refined = sorted({*base, *log_spaced(*gap, 3)})  # what `ttscale refine --per-gap 3` adds inside the jump
    after = emergence_table(long_table({"p": curve(refined)}, refined), n_sim=20).iloc[0]
    width = interval_width(before.jump_interval_lo, before.jump_interval_hi)
    assert interval_width(after.jump_interval_lo, after.jump_interval_hi) <= width
    if abs(after.jump_slope) > abs(before.jump_slope):  # the steeper stretch lies inside the refined gap
        assert gap[0] <= after.jump_interval_lo < after.jump_interval_hi <= gap[1]
    assert after.breakthroughness == before.breakthroughness


def test_a_grid_uneven_from_the_start_is_scored_on_its_steps_and_said_to_be():
    budgets = [100, 300, 900, 2700]
    table = emergence_table(long_table({"p": [0.1, 0.2, 0.7, 0.8]}, budgets), n_sim=20)
    assert not table.doubling_grid.iloc[0] and table.n_budgets.iloc[0] == 4
    rows = pd.DataFrame(rows_for("m", "uneven", budgets, 8.5))
    with pytest.warns(TtscaleWarning, match="not a doubling grid: m · uneven"):
        Results.from_frame(rows, n_boot=20, n_sim=20).emergence()


def test_scoring_grid_is_the_doubling_chain_once_recorded_refinements_are_left_out():
    assert scoring_grid([64, 91, 128, 181, 256]) == ScoringGrid((64, 128, 256), True)
    assert scoring_grid([64, 128, 256, 512], refined=[128]) == ScoringGrid((64, 256, 512), False)
    assert scoring_grid([64, 128, 512]) == ScoringGrid((64, 128, 512), False)  # a doubling is missing
    assert scoring_grid([64]) == ScoringGrid((64,), True) and scoring_grid([]) == ScoringGrid((), False)


def test_curves_are_compared_on_the_shared_doubling_grid():
    rows = pd.DataFrame(
        rows_for("m", "refined", sorted(BASE + ADDED), 5.6) + rows_for("m", "plain", BASE, 6.4)
        + rows_for("m", "longer", [*BASE, 512], 6.0)
    )  # fmt: skip
    results = Results.from_frame(rows, n_boot=20, n_sim=20)
    assert results.shared_grid() == tuple(BASE)
    assert results.refined_pairs() == {("m", "refined"): tuple(ADDED)}  # a longer sweep is not a refinement
    plain = Results.from_frame(rows[rows.budget.isin(BASE)], n_boot=20, n_sim=20)
    scores = ["model", "dataset", "problem_id", *SCORES[:7]]
    pd.testing.assert_frame_equal(results.top_k(18)[scores], plain.top_k(18)[scores])
    own = results.emergence(level="dataset").set_index("dataset")
    assert own.n_budgets.to_dict() == {"longer": 6, "plain": 5, "refined": 5}
    compared = results.comparable().emergence(level="dataset").set_index("dataset")
    assert compared.n_budgets.to_dict() == {"longer": 5, "plain": 5, "refined": 5}
    assert compared.loc["refined", "jump_interval_hi"] in (45, 64)  # refined budgets still locate its jump
    same = Results.from_frame(rows[rows.dataset != "longer"])
    assert same.comparable() is same  # one doubling grid: a refined pair needs no trimming


def test_the_emergence_scores_of_the_facade_and_its_top_k_are_one_computation():
    rows = pd.DataFrame(rows_for("m", "refined", sorted(BASE + ADDED), 5.6))
    workflow = AnalysisWorkflow.from_results(Results.from_frame(rows, n_boot=20, n_sim=20))
    scores = workflow.emergence_scores().set_index("problem_id").p_correct_breakthroughness
    top = workflow.get_top_k_max_emergence_samples(k=6).set_index("problem_id").breakthroughness
    pd.testing.assert_series_equal(scores.loc[top.index], top, check_names=False)


def test_the_report_shows_each_refined_grid_before_and_after(tmp_path):
    rows = pd.DataFrame(rows_for("m", "refined", sorted(BASE + ADDED), 5.6))
    results = Results.from_frame(rows, n_boot=20, n_sim=20)
    assert results.refined_pairs() == {("m", "refined"): tuple(ADDED)}  # off the doubling grid: refine's
    results.refinements = {("m", "refined"): tuple(ADDED)}  # as Results.open reads them from the manifest
    html = write_report(results, tmp_path, k=2).read_text()
    assert "Refined budget grids" in html and "change no score" in html
    refined = pd.read_csv(tmp_path / "refined_grids.csv")
    row = refined[refined.metric == "p_correct"].iloc[0]
    assert row.budgets_added == "45, 91" and (row.n_budgets_scored, row.n_budgets_located) == (5, 7)
    assert row.jump_before == "32–64" and row.jump_after == "45–64"  # the jump located twice as finely
    assert row.jump_slope_after > row.jump_slope_before > 0
    plain = Results.from_frame(rows[rows.budget.isin(BASE)], n_boot=20, n_sim=20)
    assert row.breakthroughness == pytest.approx(plain.emergence(level="dataset").breakthroughness.iloc[0])
