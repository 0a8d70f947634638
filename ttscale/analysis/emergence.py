"""Emergence tables: every score, fit and p-value of each curve (METHOD.md §6), and the top-k ranking."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ttscale.analysis.curves import curve_matrix
from ttscale.analysis.fits import FIT_COLUMNS, fit_curves
from ttscale.analysis.scores import SCORE_COLUMNS, curve_scores
from ttscale.analysis.significance import P_COLUMNS, p_values

PROBLEM_CURVE_KEYS = ("model", "dataset", "problem_id")
COLUMNS = ("n_budgets", *SCORE_COLUMNS, *FIT_COLUMNS, *P_COLUMNS)
ASCENDING = frozenset({"linearity_bigbench", "delta_bic_hinge", "delta_bic_sigmoid", "sigmoid_width", *P_COLUMNS})


def score_curves(
    Y: np.ndarray, budgets: np.ndarray, *, n_sim: int = 1000, seed: int = 0, method: str = "auto"
) -> dict[str, np.ndarray]:
    """Scores, fits and p-values of complete curves Y (N, n) on one budget grid (n,): column → (N,)."""
    return {
        **curve_scores(Y, budgets),
        **fit_curves(Y, budgets),
        **p_values(Y, budgets, n_sim=n_sim, seed=seed, method=method),
    }


def emergence_table(
    curves_long: pd.DataFrame,
    *,
    keys: Sequence[str] = PROBLEM_CURVE_KEYS,
    n_sim: int = 1000,
    seed: int = 0,
    method: str = "auto",
    value: str = "value",
) -> pd.DataFrame:
    """One row per curve (keys), with n_budgets and every score, fit and p-value (COLUMNS).

    `curves_long` holds keys + budget + value, one row per curve point: per-problem values (keys model,
    dataset, problem_id) or dataset curves (keys model, dataset); other columns are ignored. A curve is
    scored on the budgets where it has a finite value (`n_budgets` of them): curves sharing the same set of
    budgets are scored together, so curves on different grids, or with a missing point, are still scored
    (on fewer points). Curves with no finite value get NaN everywhere.
    """
    cm = curve_matrix(curves_long, keys, value=value)
    finite = np.isfinite(cm.values)  # (N, n)
    patterns, which = np.unique(finite, axis=0, return_inverse=True)
    which = which.reshape(-1)
    out = {name: np.full(len(finite), np.nan) for name in COLUMNS[1:]}
    for j, mask in enumerate(patterns):
        rows = which == j
        if mask.any():
            block = score_curves(cm.values[rows][:, mask], cm.budgets[mask], n_sim=n_sim, seed=seed, method=method)
            for name, v in block.items():
                out[name][rows] = v
    table = pd.DataFrame({"n_budgets": finite.sum(axis=1), **out})
    return pd.concat([cm.keys, table], axis=1)


def top_k(table: pd.DataFrame, k: int, by: str = "breakthroughness", *, ascending: bool | None = None) -> pd.DataFrame:
    """The k curves ranked first by `by` (NaN last; ties keep key order).

    Larger first, except for scores where smaller is more emergent (ASCENDING: linearity, ΔBIC, sigmoid
    width, p-values); `ascending` overrides. +inf (BIG-bench on quantised curves) ranks first.
    """
    if by not in table.columns:
        raise ValueError(f"Unknown score {by!r}. Available: {', '.join(c for c in COLUMNS if c in table.columns)}.")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    ascending = by in ASCENDING if ascending is None else ascending
    ranked = table.sort_values(by, ascending=ascending, na_position="last", kind="stable")
    return ranked.head(k).reset_index(drop=True)
