"""Emergence tables end to end: rows → problem values → dataset curves → scores, fits, p-values, top-k."""

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from ttscale.analysis.curves import dataset_curves
from ttscale.analysis.emergence import COLUMNS, emergence_table, top_k
from ttscale.analysis.metrics import problem_values
from ttscale.analysis.scores import infinite_counts

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
    assert row["n_budgets"] == 1 and row[list(COLUMNS[1:])].isna().all()


def test_top_k_ranks_by_score_with_nan_last():
    table = pd.DataFrame(
        {
            "problem_id": list("abcde"),
            "breakthroughness": [0.2, np.nan, 0.9, -0.5, 0.9],
            "p_breakthroughness": [0.5, np.nan, 0.01, 0.2, 0.03],
            "breakthroughness_bigbench": [1.0, np.inf, 2.0, np.nan, 3.0],
        }
    )
    assert top_k(table, 3)["problem_id"].tolist() == ["c", "e", "a"]  # ties keep order
    assert top_k(table, 5)["problem_id"].tolist()[-1] == "b"
    assert top_k(table, 2, by="p_breakthroughness")["problem_id"].tolist() == ["c", "e"]  # small p first
    assert top_k(table, 1, by="breakthroughness_bigbench")["problem_id"].tolist() == ["b"]  # +inf first
    assert top_k(table, 2, ascending=True)["problem_id"].tolist() == ["d", "a"]
    with pytest.raises(ValueError, match=r"Unknown score 'breakthrough'\. Available: breakthroughness"):
        top_k(table, 3, by="breakthrough")


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
    modules = ["metrics", "curves", "scores", "fits", "significance", "emergence"]
    code = "import sys\n" + "".join(f"import ttscale.analysis.{m}\n" for m in modules)
    code += "print(','.join(m for m in ('torch', 'ray', 'vllm', 'transformers') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
