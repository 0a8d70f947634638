"""Emergence tables end to end: rows → problem values → dataset curves → scores, fits, p-values, top-k."""

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from ttscale.analysis.curves import dataset_curves
from ttscale.analysis.emergence import COLUMNS, emergence_table, top_k, unranked
from ttscale.analysis.fits import FIT_COLUMNS
from ttscale.analysis.scores import SCORE_COLUMNS, infinite_counts
from ttscale.analysis.significance import P_COLUMNS
from ttscale.analysis.values import problem_values

BUDGETS = [128, 256, 512, 1024, 2048, 4096]
KEYS = ["model", "dataset", "problem_id"]


def synthetic_rows(models=2, datasets=2, problems=30, seeds=4, seed=0) -> pd.DataFrame:
    """Result rows (the analysis columns of ROW_SCHEMA): each problem has a budget where it starts to work."""
    rng = np.random.default_rng(seed)
    m, d, p, s, b = np.meshgrid(
        np.arange(models), np.arange(datasets), np.arange(problems), np.arange(seeds), np.arange(len(BUDGETS)),
        indexing="ij",
    )  # fmt: skip
    onset = rng.integers(0, len(BUDGETS), (models, datasets, problems))[m, d, p]  # (rows,)
    p_correct = np.clip(0.2 + 0.6 / (1 + np.exp(-2.0 * (b - onset))) + rng.normal(0, 0.05, m.shape), 0, 1)
    rows = pd.DataFrame(
        {
            "model": np.char.add("model", m.ravel().astype(str)),
            "dataset": np.char.add("data", d.ravel().astype(str)),
            "problem_id": np.char.add("q", p.ravel().astype(str)),
            "seed": s.ravel(),
            "budget": np.array(BUDGETS)[b.ravel()],
            "correct": (rng.random(m.size) < p_correct.ravel()).astype(float),
            "p_correct": p_correct.ravel(),
            "thinking_tokens": np.array(BUDGETS)[b.ravel()],
        }
    )
    return rows


def test_one_row_per_curve_with_every_column():
    values = problem_values(synthetic_rows(models=1, datasets=1, problems=8), "p_correct")
    table = emergence_table(values, keys=KEYS, n_sim=50)
    assert list(table.columns) == [*KEYS, *COLUMNS] and len(table) == 8
    assert (table["n_budgets"] == len(BUDGETS)).all()
    assert table["breakthroughness"].notna().all() and table["p_breakthroughness"].between(0, 1).all()


def test_curves_with_missing_points_are_scored_on_the_points_they_have():
    values = problem_values(synthetic_rows(models=1, datasets=1, problems=4), "p_correct")
    values.loc[(values.problem_id == "q1") & (values.budget == 512), "value"] = np.nan
    values = values[~((values.problem_id == "q2") & (values.budget <= 256))]
    table = emergence_table(values, keys=KEYS, n_sim=50).set_index("problem_id")
    assert table["n_budgets"].to_dict() == {"q0": 6, "q1": 5, "q2": 4, "q3": 6}
    q1 = values[(values.problem_id == "q1")].dropna()
    alone = emergence_table(q1, keys=KEYS, n_sim=50)  # same grid, scored alone: same scores
    assert alone["breakthroughness"].item() == pytest.approx(table.loc["q1", "breakthroughness"])
    assert np.isnan(table.loc["q2", "skewness"]) is np.False_  # m = 3 steps: defined


def test_quantised_accuracy_curves_give_counted_infinities():
    curves = pd.DataFrame(
        {"model": "m", "dataset": "d", "problem_id": np.repeat(["a", "b", "c"], 5), "budget": BUDGETS[:5] * 3}
    )
    curves["value"] = [*[0, 0, 0, 1, 1], *[1, 1, 0, 0, 0], *[0, 0.25, 0.5, 0.75, 1.0]]  # step, falling step, ramp
    table = emergence_table(curves, keys=KEYS, n_sim=50)
    assert table["breakthroughness_bigbench"].tolist()[:2] == [np.inf, -np.inf]
    assert infinite_counts(table).loc["breakthroughness_bigbench"].tolist() == [1, 1]


def test_empty_and_single_point_inputs():
    empty = pd.DataFrame({k: [] for k in [*KEYS, "budget", "value"]})
    assert emergence_table(empty).shape == (0, len(KEYS) + len(COLUMNS))
    assert dataset_curves(empty).empty
    one = pd.DataFrame({"model": ["m"], "dataset": ["d"], "problem_id": ["p"], "budget": [128], "value": [0.5]})
    row = emergence_table(one).iloc[0]
    assert row["n_budgets"] == 1 and row["n_budgets_grid"] == 1 and row["complete"]
    assert row[[*SCORE_COLUMNS, *FIT_COLUMNS, *P_COLUMNS, "direction", "hinge_preferred"]].isna().all()


def test_top_k_by_score_alone_ranks_by_score_with_nan_last():
    table = pd.DataFrame(
        {
            "problem_id": list("abcde"),
            "complete": True,
            "direction": [1.0, 1.0, 1.0, -1.0, 1.0],
            "breakthroughness": [0.2, np.nan, 0.9, -0.5, 0.9],
            "p_breakthroughness": [0.5, np.nan, 0.01, 0.2, 0.03],
            "breakthroughness_bigbench": [1.0, np.inf, 2.0, np.nan, 3.0],
        }
    )
    assert top_k(table, 3, ranking="score")["problem_id"].tolist() == ["c", "e", "d"]  # ties keep order; d falls by 0.5
    assert top_k(table, 5, ranking="score")["problem_id"].tolist()[-1] == "b"
    assert top_k(table, 2, by="p_breakthroughness", ranking="score")["problem_id"].tolist() == [
        "c",
        "e",
    ]  # small p first
    assert top_k(table, 1, by="breakthroughness_bigbench", ranking="score")["problem_id"].tolist() == [
        "b"
    ]  # +inf first
    assert top_k(table, 2, ascending=True, ranking="score")["problem_id"].tolist() == [
        "a",
        "d",
    ]  # reversed: least emergent first
    with pytest.raises(ValueError, match=r"Unknown score 'breakthrough'\. Available: breakthroughness"):
        top_k(table, 3, by="breakthrough")


def test_the_reviewed_ranking_leaves_out_curves_that_barely_move_and_puts_significant_ones_first():
    table = pd.DataFrame(
        {
            "problem_id": ["tiny", "big-noisy", "big-significant", "flat"],
            "complete": True,
            "direction": [-1.0, 1.0, 1.0, np.nan],
            "signed_range": [-0.0014, 0.45, 0.27, 0.0],  # I(y): the effect size
            "breakthroughness": [-0.9, 0.8, 0.5, np.nan],
            "p_breakthroughness": [0.149, 0.2, 0.01, np.nan],
        }
    )
    assert top_k(table, 4, ranking="score")["problem_id"].tolist()[0] == "tiny"  # scale-free: a thousandth first
    reviewed = top_k(table, 4)
    assert reviewed["problem_id"].tolist() == ["big-significant", "big-noisy"]  # significant first, tiny left out
    assert list(reviewed.columns[:4]) == ["problem_id", "p_breakthroughness", "breakthroughness", "signed_range"]
    assert top_k(table, 4, min_range=0.3)["problem_id"].tolist() == ["big-noisy"]
    assert top_k(table, 4, min_range=0.0)["problem_id"].tolist()[0] == "big-significant"
    assert unranked(table, 0.05) == 2
    with pytest.raises(ValueError, match="Got ranking='best'"):
        top_k(table, 2, ranking="best")


def test_the_audits_demo_case_a_falling_thousandth_is_not_ranked_above_a_rise_of_a_quarter():
    curves = long_curves(
        {
            "falls-a-thousandth": [0.0014, 0.0014, 0.0013, 0.0013, 0.0, 0.0, 0.0],
            "rises-a-quarter": [0.30, 0.31, 0.35, 0.42, 0.50, 0.55, 0.57],
        }
    )
    table = emergence_table(curves, keys=KEYS, n_sim=50)
    assert top_k(table, 2, ranking="score")["problem_id"].tolist()[0] == "falls-a-thousandth"
    assert top_k(table, 2)["problem_id"].tolist() == ["rises-a-quarter"]
    assert table.set_index("problem_id").signed_range.to_dict() == pytest.approx(
        {"falls-a-thousandth": -0.0014, "rises-a-quarter": 0.27}
    )


def test_pipeline_smoke_at_small_scale():
    start = time.perf_counter()
    rows = synthetic_rows(models=2, datasets=2, problems=60, seeds=4)  # 5,760 rows, 240 problem curves
    for metric in ("accuracy", "p_correct"):
        values = problem_values(rows, metric)
        curves = dataset_curves(values, n_boot=200)
        per_problem = emergence_table(values, keys=KEYS, n_sim=200, method="interpolated")
        per_dataset = emergence_table(curves, keys=["model", "dataset"], n_sim=200)
        assert len(values) == 240 * len(BUDGETS) and len(curves) == 4 * len(BUDGETS)
        assert len(per_problem) == 240 and len(per_dataset) == 4
        assert per_dataset["breakthroughness"].between(0, 1).all()  # rising mean curves
        scored = per_problem["breakthroughness"].notna()  # flat curves (all seeds right or wrong) are NaN
        assert scored.mean() > 0.5 and per_problem["p_breakthroughness"][scored].between(0, 1).all()
        assert per_problem["p_breakthroughness"][~scored].isna().all()
        assert len(top_k(per_problem, 5)) == 5
    assert time.perf_counter() - start < 20


def test_analysis_modules_do_not_import_ray_or_torch():
    modules = ["values", "curves", "scores", "fits", "significance", "emergence"]
    code = "import sys\n" + "".join(f"import ttscale.analysis.{m}\n" for m in modules)
    code += "print(','.join(m for m in ('torch', 'ray', 'vllm', 'transformers') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def long_curves(curves: dict[str, list[float]], budgets: tuple[int, ...] = (*BUDGETS, 8192)) -> pd.DataFrame:
    """Problem curves of one model and dataset in long form; NaN points are left out (the budget was not run)."""
    rows = [
        {"model": "m", "dataset": "d", "problem_id": pid, "budget": b, "value": v}
        for pid, values in curves.items()
        for b, v in zip(budgets, values, strict=True)
        if not np.isnan(v)
    ]
    return pd.DataFrame(rows)


def test_incomplete_curves_are_flagged_and_not_ranked():
    nan = np.nan
    curves = long_curves(
        {
            "jump": [0.1, 0.1, 0.1, 0.8, 0.85, 0.85, 0.9],  # a clean jump on all 7 budgets: breakthroughness ≈ 0.83
            "short": [0.1, 0.2, nan, nan, nan, nan, nan],  # any rising two-point curve scores 1
            "ramp": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
        }
    )
    table = emergence_table(curves, keys=KEYS, n_sim=50).set_index("problem_id")
    assert table["complete"].to_dict() == {"jump": True, "ramp": True, "short": False}
    assert table["n_budgets"].to_dict() == {"jump": 7, "ramp": 7, "short": 2}
    assert (table["n_budgets_grid"] == 7).all()
    assert table.loc["short", "breakthroughness"] == pytest.approx(1.0)
    assert table.loc["jump", "breakthroughness"] < 0.9
    ranked = emergence_table(curves, keys=KEYS, n_sim=50)
    assert top_k(ranked, 3)["problem_id"].tolist() == ["jump", "ramp"]  # the incomplete curve is not ranked
    everything = top_k(ranked, 3, complete_only=False, ranking="score")["problem_id"].tolist()
    assert everything == ["short", "jump", "ramp"]


def test_the_grid_is_per_model_and_dataset():
    curves = pd.concat(
        [
            long_curves({"a": [0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8]}),
            long_curves({"a": [0.1, 0.2, 0.3, 0.5, 0.6, np.nan, np.nan]}).assign(dataset="short-sweep"),
        ]
    )
    table = emergence_table(curves, keys=KEYS, n_sim=20)
    assert table[["dataset", "n_budgets", "n_budgets_grid", "complete"]].values.tolist() == [
        ["d", 7, 7, True],
        ["short-sweep", 5, 5, True],  # its own grid ran 5 budgets: complete there
    ]


def test_dataset_curves_say_when_their_problem_count_varies():
    values = long_curves({"a": [0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8], "b": [0.2, 0.2, 0.4, 0.5, 0.5, 0.6, np.nan]})
    even = long_curves({"a": [0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8]}).assign(dataset="even")
    curves = dataset_curves(pd.concat([values, even]), n_boot=20)
    table = emergence_table(curves, keys=["model", "dataset"], n_sim=20).set_index("dataset")
    assert table["problems_vary"].to_dict() == {"d": True, "even": False}
    assert table.loc["d", ["n_problems_min", "n_problems_max"]].tolist() == [1, 2]
    assert "problems_vary" not in emergence_table(values, keys=KEYS, n_sim=20).columns  # problem curves: no counts


def test_top_k_orients_every_score_by_the_curves_direction():
    curves = long_curves(
        {
            "falling-ramp": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3],  # linearity −6: as even as a curve gets
            "rising-jump": [0.1, 0.1, 0.1, 0.8, 0.8, 0.8, 0.8],  # linearity 2.45
            "falling-jump": [0.95, 0.95, 0.15, 0.15, 0.15, 0.15, 0.1],  # drops by 0.8; jump_size (max Δ) is 0
            "rising-ramp": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75],
        }
    )
    table = emergence_table(curves, keys=KEYS, n_sim=20)
    by_linearity = top_k(table, 4, by="linearity_bigbench", ranking="score")["problem_id"].tolist()
    assert by_linearity == ["rising-jump", "falling-jump", "rising-ramp", "falling-ramp"]  # t = −s·linearity
    assert top_k(table, 2, by="jump_size", ranking="score")["problem_id"].tolist() == ["falling-jump", "rising-jump"]
    by_score = top_k(table, 2, by="breakthroughness", ranking="score")["problem_id"].tolist()
    assert by_score == ["rising-jump", "falling-jump"]
    least = top_k(table, 1, by="breakthroughness", ascending=True, ranking="score")["problem_id"].tolist()
    assert least == ["falling-ramp"]
    best_bic = top_k(table, 1, by="delta_bic_hinge", ranking="score")["delta_bic_hinge"].item()
    assert best_bic == table["delta_bic_hinge"].min()


def test_top_k_leads_with_the_p_value_of_its_score():
    table = emergence_table(problem_values(synthetic_rows(models=1, datasets=1, problems=6), "p_correct"), n_sim=20)
    lead = ["p_delta_bic_hinge", "p_delta_bic_sigmoid", "delta_bic_hinge", "delta_bic_sigmoid", "hinge_preferred"]
    assert list(table.columns[: len(KEYS) + 5]) == [*KEYS, *lead]
    top = top_k(table, 3, by="skewness")
    assert list(top.columns[: len(KEYS) + 8]) == [*KEYS, "p_skewness", "skewness", "signed_range", *lead]


def test_hinge_is_preferred_only_with_six_budgets_and_a_small_p():
    x = np.arange(8.0)
    rng = np.random.default_rng(4)
    planted = 0.1 + 0.01 * x + 0.12 * np.maximum(x - 3.5, 0.0) + rng.normal(0.0, 0.005, (2, 8))  # (2, 8)
    line = 0.1 + 0.05 * x + rng.normal(0.0, 0.02, 8)
    curves = long_curves(
        {"break-8": planted[0], "break-5": planted[1][:5].tolist() + [np.nan] * 3, "line-8": line},
        [*BUDGETS, 8192, 16384],
    )
    curves.loc[curves.problem_id == "break-5", "dataset"] = "five-budgets"
    table = emergence_table(curves, keys=KEYS, n_sim=200).set_index("problem_id")
    assert table["hinge_preferred"].dtype == "boolean"
    assert table["hinge_preferred"].drop("break-5").tolist() == [True, False]
    assert table.loc["break-5", "n_budgets"] == 5 and pd.isna(table.loc["break-5", "hinge_preferred"])  # no verdict
