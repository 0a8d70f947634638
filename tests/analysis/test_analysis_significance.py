"""Parametric-bootstrap p-values: uniform under the linear null, small for planted steps and breaks."""

import math

import numpy as np
import pytest
from scipy.stats import kstest

from ttscale.analysis.significance import ORIENTATION, P_COLUMNS, p_values, residual_noise

X = np.arange(7.0, 15.0)
BUDGETS = 2 ** np.arange(7, 15)
STEP_SCORES = ["breakthroughness", "breakthroughness_bigbench", "skewness", "skewness_weighted", "delta_bic_sigmoid"]


def noisy_lines(n_curves: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    slopes = rng.uniform(-0.1, 0.1, n_curves)
    return 0.3 + slopes[:, None] * (X - 7) + rng.normal(0.0, 0.05, (n_curves, len(X)))  # (N, n)


def test_residual_noise_lies_in_the_residual_space_with_the_observed_rss():
    x_std = (X - X.mean()) / X.std()
    e = residual_noise(np.random.default_rng(0), (5, 3), x_std)  # (5, 3, n)
    np.testing.assert_allclose(e.sum(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(e @ x_std, 0.0, atol=1e-12)
    np.testing.assert_allclose((e**2).sum(axis=-1), len(X) - 2)


@pytest.mark.parametrize("method", ["per_curve", "interpolated"])
def test_p_values_are_uniform_for_noisy_lines(method):
    p = p_values(noisy_lines(300, seed=5), BUDGETS, n_sim=200, seed=1, method=method)
    assert set(p) == set(P_COLUMNS)
    for name in ORIENTATION:
        values = p[f"p_{name}"]
        assert not np.isnan(values).any()
        if name == "sigmoid_width":  # mass at the grid's widest width: ties make it conservative, not uniform
            assert (values <= 0.1).mean() <= 0.12 and (values <= 0.05).mean() <= 0.07
        else:
            assert kstest(values, "uniform").pvalue > 0.01, name
            assert 0.04 <= (values <= 0.1).mean() <= 0.16, name


@pytest.mark.parametrize("method", ["per_curve", "interpolated"])
@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_p_values_are_small_for_a_planted_step(method, direction):
    rng = np.random.default_rng(11)
    Y = 0.5 + direction * 0.25 * np.where(X >= 11, 1.0, -1.0) + rng.normal(0.0, 0.01, (10, len(X)))  # (10, n)
    p = p_values(Y, BUDGETS, n_sim=200, seed=0, method=method)
    for name in STEP_SCORES:
        assert (p[f"p_{name}"] < 0.05).all(), name


def test_p_value_of_the_hinge_is_small_for_a_planted_break():
    rng = np.random.default_rng(12)
    Y = 0.1 + 0.01 * X + 0.12 * np.maximum(X - 10.5, 0.0) + rng.normal(0.0, 0.01, (10, len(X)))  # (10, n)
    p = p_values(Y, BUDGETS, n_sim=200, seed=0)
    assert (p["p_delta_bic_hinge"] < 0.05).all()
    assert np.median(p_values(noisy_lines(40, seed=2), BUDGETS, n_sim=200)["p_delta_bic_hinge"]) > 0.2


def test_interpolated_null_agrees_with_per_curve_simulation():
    Y = noisy_lines(30, seed=8)
    Y[::3] += 0.3 * (X >= 10)  # some emergent curves, so small p-values are compared too
    per_curve = p_values(Y, BUDGETS, n_sim=1000, seed=1, method="per_curve")
    interpolated = p_values(Y, BUDGETS, n_sim=1000, seed=2, method="interpolated")
    for name in P_COLUMNS:  # Monte-Carlo error of a difference of two p-values from 1000 draws: ≲ 0.022
        assert np.mean(np.abs(per_curve[name] - interpolated[name])) < 0.03, name


def test_p_values_are_deterministic_given_the_seed():
    Y = noisy_lines(5, seed=3)
    a, b = p_values(Y, BUDGETS, n_sim=100, seed=4), p_values(Y, BUDGETS, n_sim=100, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = p_values(Y, BUDGETS, n_sim=100, seed=5)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_degenerate_curves():
    line, flat = 0.1 + 0.05 * X, np.full(len(X), 0.4)
    p = p_values(np.array([line, flat]), BUDGETS, n_sim=50)
    assert p["p_breakthroughness"][0] == 1.0  # an exact line is its own null
    assert math.isnan(p["p_skewness"][0])  # all steps equal: skewness undefined
    assert math.isnan(p["p_breakthroughness"][1]) and p["p_delta_bic_hinge"][1] == 1.0  # flat: no direction
    short = p_values(np.array([[0.0, 0.5]]), [1, 2], n_sim=50)
    assert all(math.isnan(v[0]) for v in short.values())


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match=r"need n_sim >= 1 and method in \('auto', 'per_curve', 'interpolated'\)"):
        p_values(noisy_lines(2, 0), BUDGETS, method="exact")
    with pytest.raises(ValueError, match="got n_sim=0"):
        p_values(noisy_lines(2, 0), BUDGETS, n_sim=0)
