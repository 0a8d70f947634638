"""The original study's `AnalysisWorkflow` over ttscale results: the original's numbers under its keys, the native
API's under native names, and the native top-k.

The results are made in process with the `fake` engine (two "models" on two bundled datasets, five budgets, two
seeds): real rows with every continuous metric, in a real results directory, in about a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import scipy.stats

from ttscale.analysis import AnalysisWorkflow, Results
from ttscale.analysis.curves import curve_matrix
from ttscale.analysis.emergence import rank_statistic
from ttscale.analysis.results import ANALYSIS_COLUMNS
from ttscale.analysis.workflow import SCORE_METRICS, matching
from ttscale.errors import TtscaleError
from ttscale.measure import measure
from ttscale.store import ResultStore

BUDGETS = [8, 16, 32, 64, 128]
KEYS = ["model", "dataset", "problem_id"]


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory):
    """A results directory: fake-a and fake-b on demo-arith (6 problems) and demo-mc (4), budgets 8…128, 2 seeds."""
    root = tmp_path_factory.mktemp("workflow") / "results"
    store = ResultStore(root)
    for model in ("fake-a", "fake-b"):
        for dataset, limit in (("demo-arith", 6), ("demo-mc", 4)):
            m = measure(model, dataset, budgets=BUDGETS, seeds=2, limit=limit, engine="fake")
            store.write_unit(f"{model}-{dataset}", m.rows, m.trajectories)
    return root


@pytest.fixture(scope="module")
def native(demo_results):
    """The native API on the same rows (the pandas reader; `test_the_ray_reader_...` checks Results.open too)."""
    return Results.from_frame(ResultStore(demo_results).read_pandas(ANALYSIS_COLUMNS), n_boot=50, n_sim=20)


@pytest.fixture
def workflow(demo_results, tmp_path):
    return AnalysisWorkflow(paths=[demo_results], results_save_dir=tmp_path / "analysis", n_boot=50, n_sim=20)


def same(a, b) -> None:
    np.testing.assert_array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))


def the_originals_breakthroughness(Y: np.ndarray) -> np.ndarray:
    """The original's `breakthrough_score(x, y, diff_average="mean_sqrt")` (utils/analysis_utils.py), restated from
    its source: (1/m²) · I / mean(|Δ|^½)², clipped to [0, 100], NaN (flat) → 0; the workflow then takes abs."""
    delta = np.diff(Y, axis=1)
    sign = np.where(np.argmax(Y, axis=1) - np.argmin(Y, axis=1) > 0, 1, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = (
            (1 / delta.shape[1] ** 2)
            * (sign * (Y.max(axis=1) - Y.min(axis=1)))
            / np.mean(np.abs(delta) ** 0.5, axis=1) ** 2
        )
    return np.abs(np.nan_to_num(np.clip(score, 0, 100), nan=0))


def the_originals_skewness(Y: np.ndarray) -> np.ndarray:
    """The original's `differences_skew_score(y, magnitude_weight=True)`: scipy's adjusted skewness of the steps
    times the largest |step|."""
    delta = np.diff(Y, axis=1)
    return scipy.stats.skew(delta, axis=1, bias=False) * np.max(np.abs(delta), axis=1)


def test_the_originals_keys_give_the_originals_numbers_on_the_issues_curves(tmp_path):
    """The audit's two curves: a falling jump (original 0, the facade gave 1.0) and a rising jump (original
    1.342, the facade gave the unweighted 2.236)."""
    curves = {"falls": [0.9, 0.9, 0.9, 0.1, 0.1, 0.1], "rises": [0.2, 0.2, 0.2, 0.8, 0.8, 0.8]}
    budgets = [8, 16, 32, 64, 128, 256]
    rows = pd.DataFrame(
        [{"model": "m", "dataset": "d", "problem_id": p, "seed": 0, "budget": b, "cell_id": f"{p}{b}",
          "correct": 0, "p_correct": y, "entropy": 1.0 - y}
         for p, ys in curves.items() for b, y in zip(budgets, ys, strict=True)]
    )  # fmt: skip
    workflow = AnalysisWorkflow.from_results(Results.from_frame(rows, n_boot=20, n_sim=20), tmp_path)
    scores = workflow.emergence_scores().set_index("problem_id")
    assert scores.loc["falls", "abs_probs_breakthroughness"] == 0.0  # clipped to [0, 100] before the abs
    assert scores.loc["falls", "p_correct_breakthroughness"] == pytest.approx(-1.0)  # native: signed, unclipped
    assert scores.loc["rises", "probs_skewness"] == pytest.approx(0.6 * np.sqrt(5), abs=1e-12)  # 1.342
    assert scores.loc["rises", "p_correct_skewness"] == pytest.approx(np.sqrt(5))  # native: unweighted, 2.236
    Y = np.array([curves["falls"], curves["rises"]])
    same(scores.loc[["falls", "rises"], "abs_probs_breakthroughness"], the_originals_breakthroughness(Y))
    same(scores.loc[["falls", "rises"], "probs_skewness"].round(12), the_originals_skewness(Y).round(12))


def test_emergence_scores_are_the_originals_numbers_under_its_keys_and_native_ones_under_native_names(workflow, native):
    scores = workflow.emergence_scores()
    assert list(scores.columns) == [
        *KEYS, "complete", "abs_probs_breakthroughness", "abs_negent_breakthroughness", "probs_skewness",
        "negent_skewness", "p_correct_breakthroughness", "p_correct_skewness", "p_correct_skewness_weighted",
        "neg_entropy_breakthroughness", "neg_entropy_skewness", "neg_entropy_skewness_weighted",
    ]  # fmt: skip
    assert len(scores) == 2 * (6 + 4) and not scores.duplicated(KEYS).any()
    for prefix, metric in SCORE_METRICS.items():
        table = native.emergence(metric, level="problem").merge(scores, on=KEYS, validate="one_to_one")
        assert len(table) == len(scores)
        for name in ("breakthroughness", "skewness", "skewness_weighted"):
            same(table[f"{metric}_{name}"], table[name])
        Y = curve_matrix(native.problem_values(metric), KEYS).values  # sorted by the keys, as the table
        np.testing.assert_allclose(table[f"abs_{prefix}_breakthroughness"], the_originals_breakthroughness(Y))
        np.testing.assert_allclose(table[f"{prefix}_skewness"], the_originals_skewness(Y), rtol=1e-9, atol=1e-12)
        assert (table["complete_x"] | ~table["complete_y"]).all()  # complete here: complete for each metric
    assert scores["complete"].all() and np.isfinite(scores["abs_probs_breakthroughness"]).all()
    assert metric == "neg_entropy" and native.problem_values("neg_entropy")["value"].lt(0).all()  # −entropy


def test_names_select_models_and_datasets_as_the_original_did(workflow):
    assert set(workflow.emergence_scores(model_name="fake-a").model) == {"fake-a"}
    assert set(workflow.emergence_scores(model_name="FAKE").model) == {"fake-a", "fake-b"}  # contains, any case
    both = workflow.emergence_scores(model_name="fake-b", dataset_name="arith")
    assert set(zip(both.model, both.dataset, strict=True)) == {("fake-b", "demo-arith")} and len(both) == 6
    with pytest.raises(TtscaleError, match=r"No model matches 'deepseek'\. The models here: fake-a, fake-b\."):
        workflow.emergence_scores(model_name="deepseek", dataset_name="gpqa")
    names = ["aime24", "aime25", "gpqa-diamond"]
    assert matching(names, "gpqa", "dataset") == ["gpqa-diamond"]
    assert matching(names, "Idavidrein/gpqa", "dataset") == ["gpqa-diamond"]
    assert matching(names, "aime_2024", "dataset") == ["aime24"]  # the original's short name for AIME 2024
    assert matching(names, "Maxwell-Jia/AIME_2024", "dataset") == ["aime24"]
    assert matching(names, "aime", "dataset") == ["aime24", "aime25"]


def test_the_top_k_are_the_native_top_k_most_emergent_first(workflow, native):
    top = workflow.get_top_k_max_emergence_samples(k=4)
    pd.testing.assert_frame_equal(top, native.top_k(4))  # the reviewed ranking, as everywhere
    top = workflow.get_top_k_max_emergence_samples(k=4, ranking="score")
    pd.testing.assert_frame_equal(top, native.top_k(4, ranking="score"))
    assert len(top) == 4 and not top.duplicated(KEYS).any()
    statistic = rank_statistic(top, "breakthroughness").to_numpy()
    assert (np.diff(statistic) <= 0).all()  # most emergent first
    everything = native.emergence("p_correct", level="problem")
    best = rank_statistic(everything, "breakthroughness").nlargest(4).to_numpy()
    same(statistic, best)  # and no curve outside the k ranks higher
    by = workflow.get_top_k_max_emergence_samples(
        "fake-a", "demo-mc", k=50, metric="neg_entropy", by="skewness", ranking="score"
    )
    assert len(by) == 4 and set(by.model) == {"fake-a"} and set(by.dataset) == {"demo-mc"}  # all there are
    with pytest.raises(ValueError, match="Got k=0"):
        workflow.get_top_k_max_emergence_samples(k=0)


def test_the_top_k_is_what_the_name_promises_on_planted_curves(tmp_path):
    """One problem jumps once, one ramps evenly, one falls: the jump comes first (the original returned the
    k *least* emergent: it summed ranks where 0 is best and then took the largest sums)."""
    curves = {"jump": [0.1, 0.1, 0.1, 0.9, 0.9], "ramp": [0.1, 0.3, 0.5, 0.7, 0.9], "flat": [0.5] * 5}
    rows = pd.DataFrame(
        [
            {"model": "m", "dataset": "d", "problem_id": p, "seed": 0, "budget": b, "cell_id": f"{p}{b}",
             "correct": 0, "p_correct": y, "entropy": 1.0 - y}
            for p, ys in curves.items() for b, y in zip(BUDGETS, ys, strict=True)
        ]
    )  # fmt: skip
    workflow = AnalysisWorkflow.from_results(Results.from_frame(rows, n_boot=20, n_sim=20), tmp_path)
    top = workflow.get_top_k_max_emergence_samples(k=2)
    assert list(top.problem_id) == ["jump", "ramp"]
    assert top.breakthroughness.tolist() == pytest.approx([1.0, 1 / 4])  # one jump: 1; an even ramp: 1/m
    scores = workflow.emergence_scores().set_index("problem_id")
    assert scores.loc["flat", "abs_probs_breakthroughness"] == 0  # the original's 0 under its key
    assert np.isnan(scores.loc["flat", "p_correct_breakthroughness"])  # natively NaN: a flat curve has no score


def test_aggregate_plots_show_and_save_the_native_curves(workflow, native, monkeypatch):
    shown = []
    monkeypatch.setattr(go.Figure, "show", lambda fig, *a, **k: shown.append(fig))
    figures = workflow.aggregate_plots(SHOW=True, SAVE=True)
    assert set(figures) == {(m, d) for m in ("fake-a", "fake-b") for d in ("demo-arith", "demo-mc")}
    assert shown == list(figures.values())
    saved = workflow.results_save_dir / "aggregate_plots"
    assert {p.name for p in saved.glob("*.html")} == {f"{m}_{d}_aggregate.html" for m, d in figures}
    assert (saved / "plotly.min.js").is_file()  # written once beside the figures: they open offline
    fig = figures[("fake-b", "demo-mc")]
    lines = [t for t in fig.data if t.name == "fake-b"]  # one line per metric panel, bands apart
    for trace, metric in zip(lines, ("accuracy", "p_correct", "neg_entropy"), strict=True):
        curve = native.curves(metric)
        same(trace.y, curve[(curve.model == "fake-b") & (curve.dataset == "demo-mc")].sort_values("budget").value)
    assert workflow.aggregate_plots(SHOW=False, model_name="fake-a", dataset_name="mc").keys() == {
        ("fake-a", "demo-mc")
    }
    assert len(shown) == 4


def test_top_k_plots_are_shown_and_saved_when_asked(workflow, monkeypatch):
    shown = []
    monkeypatch.setattr(go.Figure, "show", lambda fig, *a, **k: shown.append(fig))
    workflow.get_top_k_max_emergence_samples(k=4, plot=True)
    assert len(shown) == 1 and not workflow.results_save_dir.exists()  # plot only: nothing written
    workflow.get_top_k_max_emergence_samples("fake-a", k=2, save_plots=True)
    assert (workflow.results_save_dir / "top_2_samples_fake-a.html").is_file() and len(shown) == 1


def test_paths_must_hold_results(tmp_path, demo_results):
    with pytest.raises(TtscaleError, match="holds no result rows"):
        AnalysisWorkflow(paths=tmp_path)
    twice = AnalysisWorkflow(paths=[demo_results, demo_results], results_save_dir=tmp_path, n_boot=50, n_sim=20)
    assert len(twice.results.rows) == 2 * (6 + 4) * 2 * len(BUDGETS)  # the same rows once
    assert twice.model_names == ["fake-a", "fake-b"] and twice.dataset_names == ["demo-arith", "demo-mc"]


@pytest.mark.ray
def test_the_ray_reader_gives_the_same_numbers(demo_results, workflow, ray_local):
    """`Results.open(through_ray=True)` (Ray Data) and the facade's pyarrow reader see the same rows: the same scores
    and top-k (Ray Data's pandas names strings string[pyarrow]; the values are compared, not that dtype)."""
    opened = AnalysisWorkflow.from_results(Results.open(demo_results, through_ray=True, n_boot=50, n_sim=20))
    for call in (lambda w: w.emergence_scores(), lambda w: w.get_top_k_max_emergence_samples(k=5)):
        pd.testing.assert_frame_equal(call(opened), call(workflow), check_dtype=False)
