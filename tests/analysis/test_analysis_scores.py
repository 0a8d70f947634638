"""Emergence scores (METHOD.md §6) on hand-computed curves."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import skew

from ttscale.analysis.scores import curve_scores, infinite_counts

BUDGETS = [128, 256, 512, 1024, 2048]


def scores(y, budgets=None):
    y = np.atleast_2d(np.asarray(y, dtype=float))
    budgets = budgets if budgets is not None else [2 ** (7 + i) for i in range(y.shape[1])]
    return {k: v[0] for k, v in curve_scores(y, budgets).items()}


@pytest.mark.parametrize("at", [1, 2, 3, 4])
def test_a_single_step_gives_breakthroughness_one(at):
    y = [0.0] * at + [1.0] * (5 - at)
    assert scores(y)["breakthroughness"] == pytest.approx(1.0)


@pytest.mark.parametrize("m", [1, 2, 3, 5, 7])
def test_an_even_ramp_over_m_steps_gives_one_over_m(m):
    y = np.linspace(0.2, 0.7, m + 1)
    assert scores(y)["breakthroughness"] == pytest.approx(1.0 / m)


def test_falling_curves_are_negative_and_flat_curves_nan():
    assert scores([1, 1, 0, 0])["breakthroughness"] == pytest.approx(-1.0)
    assert scores([0.8, 0.6, 0.4, 0.2])["breakthroughness"] == pytest.approx(-1.0 / 3)
    flat = scores([0.5] * 5)
    assert math.isnan(flat["breakthroughness"]) and math.isnan(flat["breakthroughness_bigbench"])


def test_hand_computed_curve():
    # Δ = (0.1, 0.4, 0.1), I = 0.6, m = 3, D = (4·√0.1 / 3)² = 1.6 / 9, so m²·D = 1.6
    s = scores([0.0, 0.1, 0.5, 0.6])
    assert s["breakthroughness"] == pytest.approx(0.6 / 1.6)
    assert s["breakthroughness_bigbench"] == pytest.approx(0.6 / 0.1)  # median Δ² = 0.01
    assert s["linearity_bigbench"] == pytest.approx(0.6 / math.sqrt(0.06))  # mean Δ² = 0.18 / 3
    # I takes the sign of argmax − argmin, not of the endpoints: here the maximum comes first
    assert scores([0.2, 0.9, 0.1, 0.3])["breakthroughness"] < 0


def test_bigbench_median_zero_is_infinite_and_counted():
    rising, falling, ramp = [0, 0, 0, 1, 1], [1, 1, 0, 0, 0], [0, 0.25, 0.5, 0.75, 1.0]
    assert scores(rising)["breakthroughness_bigbench"] == math.inf
    assert scores(falling)["breakthroughness_bigbench"] == -math.inf
    assert scores(rising)["linearity_bigbench"] == pytest.approx(1 / math.sqrt(1 / 4))  # finite: mean Δ² = 1/4
    table = pd.DataFrame(curve_scores(np.array([rising, falling, ramp, rising], dtype=float), BUDGETS))
    counts = infinite_counts(table)
    assert counts.loc["breakthroughness_bigbench"].tolist() == [2, 1]
    assert counts.loc["breakthroughness"].tolist() == [0, 0]
    table["model"] = ["a", "a", "b", "b"]  # per group: a has the rising and the falling step, b one rising step
    grouped = infinite_counts(table, ["breakthroughness_bigbench", "linearity_bigbench"], by=["model"])
    assert grouped.index.names == ["model", "score"]
    assert grouped.loc[("a", "breakthroughness_bigbench")].tolist() == [1, 1]
    assert grouped.loc[("b", "breakthroughness_bigbench")].tolist() == [1, 0]
    assert grouped.loc[("b", "linearity_bigbench")].tolist() == [0, 0]


def test_skewness_matches_scipy_and_needs_three_steps():
    Y = np.random.default_rng(0).normal(size=(20, 8)).cumsum(axis=1)
    out = curve_scores(Y, [2**k for k in range(7, 15)])
    delta = np.diff(Y, axis=1)
    np.testing.assert_allclose(out["skewness"], skew(delta, axis=1, bias=False), rtol=1e-10)
    np.testing.assert_allclose(out["skewness_weighted"], out["skewness"] * np.abs(delta).max(axis=1), rtol=1e-10)
    assert math.isnan(scores([0.1, 0.5, 0.6])["skewness"])  # m = 2
    assert math.isnan(scores([0.0, 0.2, 0.4, 0.6])["skewness"])  # all Δ equal: scipy gives NaN too
    assert math.isnan(scores(0.1 + 0.05 * np.arange(7.0, 15.0))["skewness"])  # equal to rounding: scipy gives −0.3
    assert scores([0.0, 0.0, 0.0, 1.0])["skewness"] == pytest.approx(skew([0.0, 0.0, 1.0], bias=False))


def test_jump_budget_and_size():
    s = scores([0.1, 0.2, 0.6, 0.7, 0.65], BUDGETS)
    assert s["jump_budget"] == 512 and s["jump_size"] == pytest.approx(0.4)
    s = scores([0.5, 0.4, 0.3, 0.35, 0.1], BUDGETS)  # falling: jump_size is still max Δ, the largest rise
    assert s["jump_budget"] == 1024 and s["jump_size"] == pytest.approx(0.05)


def test_missing_values_and_short_curves_give_nan():
    out = curve_scores(np.array([[0.0, np.nan, 1.0], [0.0, 0.5, 1.0]]), [1, 2, 4])
    assert all(math.isnan(v[0]) for v in out.values())
    assert out["breakthroughness"][1] == pytest.approx(0.5)
    assert all(math.isnan(v[0]) for v in curve_scores(np.ones((1, 1)), [8]).values())


def test_a_flat_curve_has_no_jump():
    s = scores([0.4] * 5, BUDGETS)
    assert math.isnan(s["jump_budget"]) and math.isnan(s["jump_size"])
    s = scores([0.4, 0.4, 0.4, 0.4, 0.5], BUDGETS)  # not flat: the jump is where it is
    assert s["jump_budget"] == 2048 and s["jump_size"] == pytest.approx(0.1)
