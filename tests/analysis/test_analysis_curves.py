"""Curve matrices and dataset curves with bootstrap-over-problems bands (coverage, missing points, seeds)."""

import numpy as np
import pandas as pd
import pytest

from ttscale.analysis.curves import bootstrap_means, curve_matrix, dataset_curves


def _values(n_problems=5, budgets=(128, 256, 512), datasets=("d1",), seed=0):
    rng = np.random.default_rng(seed)
    rows = [("m", d, f"p{i}", b, float(rng.random())) for d in datasets for i in range(n_problems) for b in budgets]
    return pd.DataFrame(rows, columns=["model", "dataset", "problem_id", "budget", "value"])


def test_curve_matrix_pivots_and_keeps_key_order():
    df = _values().sample(frac=1.0, random_state=0)  # shuffled rows
    cm = curve_matrix(df, ["model", "dataset", "problem_id"])
    assert cm.budgets.tolist() == [128, 256, 512] and cm.values.shape == (5, 3)
    assert cm.keys["problem_id"].tolist() == [f"p{i}" for i in range(5)]
    row = df[(df.problem_id == "p3") & (df.budget == 256)]["value"].item()
    assert cm.values[3, 1] == row


def test_curve_matrix_rejects_duplicates_and_bad_budgets():
    df = _values()
    with pytest.raises(ValueError, match=r"several rows share one \(model, dataset, problem_id, budget\)"):
        curve_matrix(pd.concat([df, df.iloc[:1]]), ["model", "dataset", "problem_id"])
    with pytest.raises(ValueError, match="budgets must be positive"):
        curve_matrix(df.assign(budget=0), ["model", "dataset", "problem_id"])
    with pytest.raises(ValueError, match=r"lacks the columns \['problem'\]"):
        curve_matrix(df, ["model", "problem"])


def test_dataset_curve_is_the_mean_over_problems_with_a_band_around_it():
    df = _values(n_problems=40, datasets=("d1", "d2"))
    curves = dataset_curves(df, n_boot=200, seed=0)
    assert list(curves.columns) == ["model", "dataset", "budget", "value", "lo", "hi", "n_problems"]
    assert len(curves) == 6 and (curves["n_problems"] == 40).all()
    expected = df.groupby(["dataset", "budget"])["value"].mean().to_numpy()
    np.testing.assert_allclose(curves["value"], expected)
    assert ((curves.lo < curves.value) & (curves.value < curves.hi)).all()
    again = dataset_curves(df, n_boot=200, seed=0)
    pd.testing.assert_frame_equal(curves, again)
    alone = dataset_curves(df[df.dataset == "d2"], n_boot=200, seed=0)  # a group's band ignores the others
    np.testing.assert_array_equal(alone["lo"], curves[curves.dataset == "d2"]["lo"])
    assert not np.array_equal(dataset_curves(df, n_boot=200, seed=1)["lo"], curves["lo"])


def test_bootstrap_resamples_whole_problems():
    V = np.array([[0.0, 0.0], [1.0, 1.0]])  # (P, n): a problem's budgets move together
    boot = bootstrap_means(V, np.random.default_rng(0), 50)
    np.testing.assert_array_equal(boot[:, 0], boot[:, 1])
    assert set(np.round(boot[:, 0], 2)) <= {0.0, 0.5, 1.0}


def test_missing_points_are_skipped_and_counted():
    df = _values(n_problems=4)
    df.loc[(df.problem_id == "p0") & (df.budget == 512), "value"] = np.nan
    df = df[~((df.problem_id == "p1") & (df.budget == 256))]
    curves = dataset_curves(df, n_boot=100).set_index("budget")
    assert curves["n_problems"].to_dict() == {128: 4, 256: 3, 512: 3}
    kept = df.dropna().groupby("budget")["value"].mean()
    np.testing.assert_allclose(curves["value"], kept)
    other = _values(n_problems=3, budgets=(64, 128), datasets=("d9",))  # a dataset on another grid
    both = dataset_curves(pd.concat([df, other]), n_boot=100)
    assert both[both.dataset == "d9"]["budget"].tolist() == [64, 128]


def test_bootstrap_bands_cover_the_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(2024)
    n_reps, n_problems, truth = 200, 60, np.array([0.3, 0.5])  # known mean per budget
    ability = rng.normal(0.0, 0.15, (n_reps, n_problems, 1))  # problem effects shared across budgets
    values = truth + ability + rng.normal(0.0, 0.1, (n_reps, n_problems, 2))  # (reps, P, budgets)
    rep, problem, budget = np.meshgrid(np.arange(n_reps), np.arange(n_problems), [0, 1], indexing="ij")
    df = pd.DataFrame(
        {
            "model": "m",
            "dataset": rep.ravel().astype(str),
            "problem_id": problem.ravel().astype(str),
            "budget": np.array([256, 512])[budget.ravel()],
            "value": values.ravel(),
        }
    )
    curves = dataset_curves(df, n_boot=1000, seed=0)
    target = np.where(curves["budget"] == 256, truth[0], truth[1])
    coverage = ((curves["lo"] <= target) & (target <= curves["hi"])).mean()
    assert 0.90 <= coverage <= 0.99


def test_dataset_curves_rejects_bad_levels():
    with pytest.raises(ValueError, match="need 0 < level < 1 and n_boot >= 1, got level=95"):
        dataset_curves(_values(), level=95)


def test_nan_quantiles_equal_numpys_nanquantile_column_by_column():
    from ttscale.analysis.curves import nan_quantiles

    rng = np.random.default_rng(3)
    A = rng.random((200, 12))
    A[rng.random(A.shape) < 0.3] = np.nan
    A[:, 4], A[:199, 7] = np.nan, np.nan  # a column without values, and one with a single value
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanquantile(A, [0.025, 0.5, 0.975], axis=0)
    np.testing.assert_array_equal(nan_quantiles(A, [0.025, 0.5, 0.975]), expected)


def test_fits_of_repeated_curves_are_computed_once_with_the_same_numbers():
    from ttscale.analysis.fits import fit_curves, per_distinct_curve

    rng = np.random.default_rng(4)
    distinct = rng.integers(0, 9, size=(40, 8)) / 8  # accuracy-like curves over 8 budgets
    Y = distinct[rng.integers(0, 40, size=400)]
    budgets = 2 ** np.arange(4, 12)
    calls = []

    def fits(curves):
        calls.append(len(curves))
        return fit_curves(curves, budgets)

    got, direct = per_distinct_curve(fits, Y), fit_curves(Y, budgets)
    assert calls == [len(np.unique(Y, axis=0))]
    for name, values in direct.items():
        np.testing.assert_allclose(got[name], values, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name)
