"""Sequential vs parallel compute from result rows (METHOD.md §6b): maj@k per problem, costs, frontier, scores."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from invariants import counted
from ttscale.analysis import Results
from ttscale.analysis.frontier import answer
from ttscale.errors import TtscaleWarning
from ttscale.tasks.grading import grade_math


def rows_of(
    points: dict[tuple[str, int], list[str | None]],
    gold: str = "7",
    *,
    answer_tokens: int = 0,
    keys: dict[str, str] | None = None,
    thinking: dict[int, int] | None = None,
) -> pd.DataFrame:
    """Result rows: for each (problem, budget), one seed per listed answer (None: nothing written), graded against
    `gold` by string; `keys` gives an answer_key per written answer (else the column is absent, as in old rows)."""
    rows = []
    for (problem, budget), answers in points.items():
        for seed, written in enumerate(answers):
            rows.append({
                "model": "m", "dataset": "d", "problem_id": problem, "budget": budget, "seed": seed,
                "cell_id": f"{budget}-{seed}", "answer": written, "correct": int(written == gold), "gold": gold,
                "unclosed": False, "thinking_tokens": (thinking or {}).get(budget, budget),
                "answer_tokens": answer_tokens,
                **({"answer_key": None if written is None else keys.get(written, written)} if keys else {}),
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_maj_at_k_per_problem_counts_every_subset_of_three_right_and_five_wrong_split_three_two():
    answers = ["7", "9", "4", "7", "9", "4", "7", "9"]
    got = Results.from_frame(rows_of({("p", 64): answers})).parallel("maj", by="problem")
    assert got["k"].tolist() == list(range(1, 9))
    assert got["value"].tolist() == pytest.approx([float(counted(answers, "7", k)) for k in range(1, 9)])
    assert got["value"].iloc[0] == pytest.approx(3 / 8)  # maj@1 is accuracy


def test_equivalent_answers_written_differently_vote_together():
    # two seeds right; three wrong, written three ways that the grader reads as one number
    written = ["\\frac{1}{2}", "0.5", "1/2"]
    keys = {w: grade_math(w, "7").key for w in written}
    answers = ["7", "7", *written]
    by_key = Results.from_frame(rows_of({("p", 64): answers}, keys=keys)).parallel("maj", by="problem")
    as_written = Results.from_frame(rows_of({("p", 64): answers})).parallel("maj", by="problem")
    assert by_key["value"].iloc[4] == 0.0  # all five: 3 votes for 1/2 beat 2 for the gold
    assert as_written["value"].iloc[4] == 1.0  # without the grader's key, three singletons lose to the gold's 2
    assert by_key["value"].tolist() == pytest.approx([float(counted(["7", "7", "h", "h", "h"], "7", k))
                                                      for k in range(1, 6)])  # fmt: skip


def test_ties_abstainers_and_ungraded_rows():
    rows = rows_of({("p", 64): ["7", "9", None, None]})
    rows.loc[len(rows)] = {**rows.iloc[0].to_dict(), "seed": 9, "cell_id": "x", "correct": None}  # grading failed
    got = Results.from_frame(rows).parallel("maj", by="problem")
    assert got["k"].max() == 4  # the ungraded row is not a seed
    assert got["value"].tolist() == pytest.approx([1 / 4, float(counted(["7", "9", None, None], "7", 2)),
                                                   float(counted(["7", "9", None, None], "7", 3)), 0.5])  # fmt: skip


def test_pass_at_k_and_accuracy_sit_beside_maj_at_k():
    results = Results.from_frame(rows_of({("p", 64): ["7", "9", "9", "4"]}))
    assert results.parallel("pass", by="problem")["value"].tolist() == pytest.approx([1 / 4, 1 / 2, 3 / 4, 1.0])
    assert results.parallel("accuracy", by="problem")["value"].tolist() == pytest.approx([1 / 4] * 4)
    with pytest.raises(ValueError, match="Use one of: maj, pass, accuracy"):
        results.parallel("majority")


def test_a_point_costs_k_times_the_tokens_a_seed_really_spent():
    rows = rows_of({("p", 64): ["7", "9"], ("q", 64): ["9", "9"]}, answer_tokens=6, thinking={64: 40})
    points = Results.from_frame(rows, n_boot=50).parallel("maj")
    assert points[["k", "budget", "tokens_per_seed", "cost"]].values.tolist() == [[1, 64, 46, 46], [2, 64, 46, 92]]


def test_the_frontier_switches_from_sampling_more_to_thinking_longer_at_a_known_cost():
    # At B = 64 the gold is one of two answers given three times in eight seeds: maj@k grows with k but stays below
    # 1. At B = 128 and 256 no seed is right; at B = 512 every seed is. Costs are B·k (thinking = B, no answer tokens).
    small = ["7", "7", "7", "9", "9", "9", "4", "5"]
    points = {(p, 64): small for p in ("p", "q")} | {(p, 512): ["7"] * 8 for p in ("p", "q")}
    points |= {(p, b): ["1", "2", "3", "4", "5", "6", "8", "9"] for p in ("p", "q") for b in (128, 256)}
    results = Results.from_frame(rows_of(points), n_boot=50)
    steps = results.frontier("maj")
    at = dict(zip(steps["cost"], zip(steps["budget"], steps["k"], steps["value"], strict=True), strict=True))
    maj = [float(counted(small, "7", k)) for k in range(1, 9)]
    best = int(np.argmax(maj[:4]))
    assert at[64.0] == (64, 1, pytest.approx(maj[0]))
    assert at[256.0] == (64, best + 1, pytest.approx(maj[best]))  # B = 256 at k = 1 costs as much and scores 0
    assert max(maj) < 1.0 and at[512.0] == (512, 1, 1.0)  # from cost 512 on, thinking longer wins
    assert steps["value"].is_monotonic_increasing and steps["cost"].is_monotonic_increasing


def frontier_results(seed: int = 0) -> Results:
    """Ten problems on a doubling grid whose k = 1 accuracy jumps between 128 and 256 with noise, and whose
    small budgets already have the gold as the plurality of eight seeds: parallel sampling fills the jump in."""
    rng = np.random.default_rng(seed)
    points = {}
    for p, b in itertools.product(range(10), (16, 32, 64, 128, 256, 512)):
        right = 8 if b >= 256 else int(rng.integers(2, 4))
        points[(f"p{p}", b)] = ["7"] * right + [str(10 + i) for i in range(8 - right)]
    return Results.from_frame(rows_of(points), n_boot=100, n_sim=100)


def test_frontier_scores_sit_beside_the_k1_curve_on_doubling_grids_with_a_computed_answer():
    table = frontier_results().frontier_emergence("maj")
    assert table["curve"].tolist() == ["k = 1", "frontier"]
    sequential, front = table.iloc[0], table.iloc[1]
    assert sequential["x"] == [16, 32, 64, 128, 256, 512]
    assert front["x"] == pytest.approx([16 * 2**j for j in range(6)])  # the doubling cost grid from the cheapest point
    assert front["doubling_grid"] and sequential["doubling_grid"]
    assert front["parallel_points"] > 0
    assert np.isfinite(front["p_breakthroughness"]) and np.isfinite(sequential["p_breakthroughness"])
    assert front["answer"] == answer(sequential, front) and sequential["answer"] is None
    assert "k = 1" in front["answer"] and "frontier" in front["answer"]


def test_the_answer_says_which_way_the_evidence_goes():
    base = {"n_points": 6, "signed_range": 0.5, "direction": 1.0, "breakthroughness": 0.8, "parallel_points": 0}
    jump, none = {**base, "p_breakthroughness": 0.01}, {**base, "p_breakthroughness": 0.4}
    filled = answer(pd.Series(jump), pd.Series({**none, "parallel_points": 4}))
    assert "fills it in" in filled and "4 of the frontier's 6 points" in filled
    assert "does not fill it in" in answer(pd.Series(jump), pd.Series(jump))
    assert "Neither" in answer(pd.Series(none), pd.Series(none))
    assert "fills it in" in answer(pd.Series(jump), pd.Series({**base, "signed_range": 0.0}))  # a flat frontier


def test_scoring_the_frontier_on_measured_costs_that_are_not_doubling_warns():
    results = frontier_results()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results.frontier_emergence("maj")  # the doubling cost grid: no warning
    with pytest.warns(TtscaleWarning, match="not a doubling grid"):
        table = results.frontier_emergence("maj", grid="measured")
    front = table[table["curve"] == "frontier"].iloc[0]
    assert not front["doubling_grid"] and front["n_points"] > 6  # every measured cost
    with pytest.raises(ValueError, match="Use one of: doubling, measured"):
        results.frontier_emergence("maj", grid="log")
