"""Linear, hinge and sigmoid fits: planted breakpoints and widths on noisy synthetic curves, BIC, flat curves."""

import math

import numpy as np
import pytest

from ttscale.analysis.fits import (
    HINGE_STEP,
    SIGMOID_WIDTH_FACTOR,
    bic,
    fit_curves,
    fit_hinge,
    fit_linear,
    fit_sigmoid,
    hinge_grid,
)

X = np.arange(7.0, 15.0)  # log2 of budgets 128 … 16384
BUDGETS = 2 ** X.astype(int)


def test_bic_and_width_constant_by_hand():
    assert bic(np.array([2.0]), 8, 4)[0] == pytest.approx(8 * math.log(2 / 8) + 4 * math.log(8))
    assert pytest.approx(4.39, abs=0.01) == SIGMOID_WIDTH_FACTOR  # 10%→90% of a logistic: 2·ln 9 / s


def test_linear_fit_recovers_a_line():
    fit = fit_linear(np.array([0.1 + 0.05 * X]), X)
    assert fit["slope"][0] == pytest.approx(0.05) and fit["intercept"][0] == pytest.approx(0.1)
    assert fit["rss"][0] == pytest.approx(0.0, abs=1e-20)


def test_hinge_grid_leaves_two_points_each_side():
    taus = hinge_grid(X)
    assert taus[0] == 8.0 and taus[-1] == 12.75
    below = X[:, None] <= taus[None, :]  # (n, T)
    assert (below.sum(axis=0) >= 2).all() and ((~below).sum(axis=0) >= 2).all()
    assert len(hinge_grid(X[:3])) == 0


@pytest.mark.parametrize("tau", [8.6, 9.0, 10.5, 11.25, 12.0])
def test_hinge_recovers_a_planted_breakpoint_within_one_grid_step(tau):
    rng = np.random.default_rng(int(tau * 100))
    Y = 0.1 + 0.02 * X + 0.15 * np.maximum(X - tau, 0.0) + rng.normal(0.0, 0.005, (10, len(X)))  # (10, n)
    fit = fit_hinge(Y, X)
    assert np.abs(fit["tau"] - tau).max() <= HINGE_STEP + 1e-9
    assert np.allclose(fit["c"], 0.15, atol=0.05)
    assert (fit_curves(Y, BUDGETS)["delta_bic_hinge"] < 0).all()  # BIC favours the break


@pytest.mark.parametrize("width", [1.5, 2.5, 4.0])
def test_sigmoid_recovers_a_planted_width_and_midpoint(width):
    rng = np.random.default_rng(int(width * 10))
    s = SIGMOID_WIDTH_FACTOR / width
    Y = 0.2 + 0.6 / (1 + np.exp(-s * (X - 10.3))) + rng.normal(0.0, 0.01, (10, len(X)))  # (10, n)
    fit = fit_sigmoid(Y, X)
    np.testing.assert_allclose(fit["width"], width, rtol=0.25)
    np.testing.assert_allclose(fit["x0"], 10.3, atol=0.25)
    np.testing.assert_allclose(fit["lo"], 0.2, atol=0.1)
    out = fit_curves(Y, BUDGETS)
    assert (out["delta_bic_sigmoid"] < 0).all()
    np.testing.assert_allclose(out["sigmoid_midpoint_budget"], 2 ** out["sigmoid_midpoint"])


def test_falling_sigmoid_fits_with_hi_below_lo():
    y = 0.9 - 0.7 / (1 + np.exp(-2.0 * (X - 9.5)))
    fit = fit_sigmoid(y[None, :], X)
    assert fit["hi"][0] == pytest.approx(0.2, abs=1e-3) and fit["lo"][0] == pytest.approx(0.9, abs=1e-3)
    assert fit["width"][0] == pytest.approx(SIGMOID_WIDTH_FACTOR / 2.0, rel=0.02)


def test_bic_does_not_favour_a_break_on_straight_lines():
    exact = fit_curves(np.array([0.1 + 0.05 * X]), BUDGETS)
    assert exact["delta_bic_hinge"][0] == pytest.approx(2 * math.log(len(X)))  # RSS floored alike: k penalty
    noisy = 0.1 + 0.05 * X + np.random.default_rng(3).normal(0.0, 0.02, (200, len(X)))
    delta = fit_curves(noisy, BUDGETS)["delta_bic_hinge"]
    assert np.median(delta) > 0 and (delta < 0).mean() < 0.5  # with n = 8, BIC alone often errs: see p-values


def test_flat_and_short_curves_do_not_crash():
    out = fit_curves(np.full((2, len(X)), 0.5), BUDGETS)
    assert out["delta_bic_hinge"] == pytest.approx([2 * math.log(len(X))] * 2)
    assert out["delta_bic_sigmoid"] == pytest.approx([2 * math.log(len(X))] * 2)
    assert np.isnan(out["breakpoint"]).all() and np.isnan(out["sigmoid_width"]).all()
    short = fit_curves(np.array([[0.0, 0.5, 1.0]]), [1, 2, 4])
    assert all(np.isnan(v).all() for v in short.values())
    assert np.isnan(fit_sigmoid(np.ones((1, 4)), X[:4])["width"]).all()  # 4 parameters need 5 points
