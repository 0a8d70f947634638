"""Emergence scores of curves y_1..y_n over a sorted budget grid (METHOD.md §6), vectorised over curves.

Every function takes Y: (N, n) — N curves on the same n budgets, finite values — and returns (N,) arrays.
With Δ_i = y_{i+1} − y_i and m = n − 1:

    I(y)                      = sign(argmax y − argmin y) · (max y − min y)
    breakthroughness          = I / (m² · D),  D = ((1/m) Σ |Δ_i|^{1/2})²     (the original study's score)
    breakthroughness_bigbench = I / sqrt(median Δ_i²)                          (Srivastava et al. 2022, BIG-bench)
    linearity_bigbench        = I / sqrt(mean Δ_i²)                            (ibid.)

A single jump gives breakthroughness 1, an even ramp 1/m, a falling curve a negative value, a flat curve NaN
(0/0; its jump budget and size are NaN too); nothing is clipped. On quantised curves (accuracy over few seeds)
the median step is often exactly 0: the BIG-bench breakthroughness is then ±inf, kept as is; `infinite_counts`
counts them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SCORE_COLUMNS = (
    "breakthroughness",
    "breakthroughness_bigbench",
    "linearity_bigbench",
    "skewness",
    "skewness_weighted",
    "jump_budget",
    "jump_size",
)
EQUAL_STEPS = 1e-9  # relative spread of the Δ below which they count as equal (skewness undefined)


def steps(Y: np.ndarray) -> np.ndarray:
    """Δ: (N, m) differences between consecutive budgets."""
    return np.diff(np.asarray(Y, dtype=np.float64), axis=1)


def signed_range(Y: np.ndarray) -> np.ndarray:
    """I(y) = sign(argmax y − argmin y) · (max y − min y): positive when the curve rises overall. (N,)"""
    span = Y.max(axis=1) - Y.min(axis=1)
    return np.sign(Y.argmax(axis=1) - Y.argmin(axis=1)) * span


def direction(Y: np.ndarray) -> np.ndarray:
    """s = sign I(y): +1 for a curve rising overall, −1 falling, NaN flat (no direction) or with a NaN. (N,)"""
    s = np.sign(signed_range(np.asarray(Y, dtype=np.float64)))
    return np.where(s == 0, np.nan, s)


def oriented_jump(Y: np.ndarray) -> np.ndarray:
    """max_i s·Δ_i: the largest step in the curve's own direction (a falling curve's largest drop). (N,)

    This is the statistic `p_jump_size` tests and ranks by; NaN for a flat curve or fewer than 2 budgets.
    """
    Y = np.asarray(Y, dtype=np.float64)
    if Y.shape[1] < 2:
        return np.full(len(Y), np.nan)
    return (direction(Y)[:, None] * steps(Y)).max(axis=1)


def breakthroughness(Y: np.ndarray) -> np.ndarray:
    """I / (m² · D) with D = ((1/m) Σ |Δ_i|^{1/2})² (METHOD §6); NaN for a flat curve. (N,)"""
    delta = steps(Y)  # (N, m)
    m = delta.shape[1]
    D = np.mean(np.sqrt(np.abs(delta)), axis=1) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return signed_range(Y) / (m**2 * D)


def bigbench_scores(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(breakthroughness_bigbench, linearity_bigbench) = I / RootMedianSquare(Δ), I / RootMeanSquare(Δ).

    A median of 0 with I ≠ 0 gives ±inf (kept: it is what the formula says); a flat curve gives NaN.
    """
    delta_sq = steps(Y) ** 2  # (N, m)
    I_y = signed_range(Y)
    with np.errstate(invalid="ignore", divide="ignore"):
        return I_y / np.sqrt(np.median(delta_sq, axis=1)), I_y / np.sqrt(np.mean(delta_sq, axis=1))


def skewness(delta: np.ndarray) -> np.ndarray:
    """Adjusted Fisher–Pearson skewness G1 = g1 · sqrt(m(m−1)) / (m−2) of each row of Δ: (N, m) → (N,).

    Same as scipy.stats.skew(Δ, axis=1, bias=False), and NaN when m < 3 or when the Δ are all equal: where
    scipy's test only catches exact equality, here equal to rounding (sd(Δ) ≤ EQUAL_STEPS × max|Δ|) counts
    too, so an even ramp in floating point gets NaN instead of rounding noise.
    """
    N, m = delta.shape
    if m < 3:
        return np.full(N, np.nan)
    mean = delta.mean(axis=1)
    d = delta - mean[:, None]
    m2, m3 = np.mean(d**2, axis=1), np.mean(d**3, axis=1)
    constant = np.sqrt(m2) <= EQUAL_STEPS * np.abs(delta).max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        g1 = m3 / m2**1.5
    return np.where(constant, np.nan, g1 * np.sqrt(m * (m - 1.0)) / (m - 2.0))


def jumps(Y: np.ndarray, budgets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(jump_budget, jump_size): the budget right after the largest rise max Δ_i, and max Δ_i. (N,), (N,)

    A flat curve (max y = min y) has no jump: both are NaN.
    """
    delta = steps(Y)  # (N, m)
    i = delta.argmax(axis=1)
    flat = np.where(Y.max(axis=1) == Y.min(axis=1), np.nan, 1.0)
    return np.asarray(budgets, dtype=np.float64)[i + 1] * flat, delta[np.arange(len(i)), i] * flat


def curve_scores(Y: np.ndarray, budgets: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
    """Every score of SCORE_COLUMNS for each row of Y (N, n) on `budgets` (n,); NaN rows and n < 2 give NaN."""
    Y = np.asarray(Y, dtype=np.float64)
    N, n = Y.shape
    if n < 2:
        return {name: np.full(N, np.nan) for name in SCORE_COLUMNS}
    delta = steps(Y)
    bb, lin = bigbench_scores(Y)
    skew = skewness(delta)
    jump_budget, jump_size = jumps(Y, np.asarray(budgets))
    out = {
        "breakthroughness": breakthroughness(Y),
        "breakthroughness_bigbench": bb,
        "linearity_bigbench": lin,
        "skewness": skew,
        "skewness_weighted": skew * np.abs(delta).max(axis=1),
        "jump_budget": jump_budget,
        "jump_size": jump_size,
    }
    bad = ~np.isfinite(Y).all(axis=1)
    return {name: np.where(bad, np.nan, v) for name, v in out.items()}


def infinite_counts(
    table: pd.DataFrame, columns: Sequence[str] = SCORE_COLUMNS, *, by: Sequence[str] = ()
) -> pd.DataFrame:
    """How many curves score +inf and −inf per column (BIG-bench scores on quantised curves).

    Without `by`: indexed by score, columns "+inf" and "-inf". With `by` (e.g. model, dataset): one row per
    group and score, indexed by (*by, score): groups in order of first appearance, scores in `columns` order.
    """
    columns = [c for c in columns if c in table.columns]
    by = list(by)
    values = table[columns].to_numpy(dtype=np.float64).ravel()  # (N · len(columns),), row-major: curve by curve
    long = pd.DataFrame(
        {
            **{key: np.repeat(table[key].to_numpy(), len(columns)) for key in by},
            "score": np.tile(np.asarray(columns, dtype=object), len(table)),
            "+inf": np.isposinf(values).astype(np.int64),
            "-inf": np.isneginf(values).astype(np.int64),
        }
    )
    return long.groupby([*by, "score"], sort=False, observed=True, dropna=False)[["+inf", "-inf"]].sum()
