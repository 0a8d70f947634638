"""Emergence tables: every score, fit and p-value of each curve (METHOD.md §6), and the top-k ranking.

Besides the scores, each row says how far it can be trusted and compared:

- `complete`: the curve has a finite value at every budget of its grid, the union of the budgets at which any
  curve of its (model, dataset) has one. An incomplete curve is scored on fewer points, and fewer points push
  breakthroughness up (it lies in [1/m, 1] for a rising curve: any rising two-point curve scores 1), so
  `top_k` ranks complete curves only unless told otherwise.
- `n_problems_min`, `n_problems_max`, `problems_vary` (dataset curves, whose long table has `n_problems`): the
  fewest and most problems behind a point; `problems_vary` marks a curve whose points average different
  problem sets.
- `hinge_preferred`: the verdict on a break, True when the curve has at least HINGE_MIN_BUDGETS budgets and
  p_delta_bic_hinge < HINGE_ALPHA, False otherwise, and missing (NA) below HINGE_MIN_BUDGETS budgets or without
  a p-value. ΔBIC itself is descriptive: under a noisy straight line it is below −2 on 57% of curves at
  4 budgets and 25% at 7 (docs/analysis.md, "How to read ΔBIC against the p-values").
- `direction` (s = sign I(y), NaN when flat) and `oriented_jump` (max_i s·Δ_i): what ranking needs to orient
  every score as significance.ORIENTATION does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ttscale.analysis.curves import curve_matrix
from ttscale.analysis.fits import FIT_COLUMNS, fit_curves
from ttscale.analysis.scores import SCORE_COLUMNS, curve_scores, direction, oriented_jump
from ttscale.analysis.significance import ORIENTATION, P_COLUMNS, orient, p_values

PROBLEM_CURVE_KEYS = ("model", "dataset", "problem_id")
GRID_KEYS = ("model", "dataset")  # the curves of one (model, dataset) share one budget grid
HINGE_MIN_BUDGETS = 6  # below this, even the p-value-backed verdict on a break is withheld
HINGE_ALPHA = 0.05  # p_delta_bic_hinge below this (with enough budgets): hinge_preferred
SHAPE_COLUMNS = ("direction", "oriented_jump")
PROBLEM_COUNT_COLUMNS = ("n_problems_min", "n_problems_max", "problems_vary")  # dataset curves only
LEAD_COLUMNS = ("p_delta_bic_hinge", "p_delta_bic_sigmoid", "delta_bic_hinge", "delta_bic_sigmoid", "hinge_preferred")
COLUMNS = (  # after the keys, in this order (PROBLEM_COUNT_COLUMNS follow `complete` when present)
    *LEAD_COLUMNS,
    "n_budgets",
    "n_budgets_grid",
    "complete",
    *SCORE_COLUMNS,
    *SHAPE_COLUMNS,
    *(c for c in FIT_COLUMNS if c not in LEAD_COLUMNS),
    *(c for c in P_COLUMNS if c not in LEAD_COLUMNS),
)


def score_curves(
    Y: np.ndarray, budgets: np.ndarray, *, n_sim: int = 1000, seed: int = 0, method: str = "auto"
) -> dict[str, np.ndarray]:
    """Scores, shape, fits and p-values of complete curves Y (N, n) on one budget grid (n,): column → (N,)."""
    return {
        **curve_scores(Y, budgets),
        "direction": direction(Y),
        "oriented_jump": oriented_jump(Y),
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
    """One row per curve (keys), with COLUMNS: every score, fit and p-value, and how complete the curve is.

    `curves_long` holds keys + budget + value, one row per curve point: per-problem values (keys model,
    dataset, problem_id) or dataset curves (keys model, dataset, plus `n_problems`, which adds
    PROBLEM_COUNT_COLUMNS); other columns are ignored. A curve is scored on the budgets where it has a finite
    value (`n_budgets` of them, out of `n_budgets_grid` in its grid; `complete` when equal): curves sharing
    the same set of budgets are scored together. Curves with no finite value get NaN everywhere.
    """
    cm = curve_matrix(curves_long, keys, value=value)
    finite = np.isfinite(cm.values)  # (N, n)
    patterns, which = np.unique(finite, axis=0, return_inverse=True)
    which = which.reshape(-1)
    out = {name: np.full(len(finite), np.nan) for name in (*SCORE_COLUMNS, *SHAPE_COLUMNS, *FIT_COLUMNS, *P_COLUMNS)}
    for j, mask in enumerate(patterns):
        rows = which == j
        if mask.any():
            block = score_curves(cm.values[rows][:, mask], cm.budgets[mask], n_sim=n_sim, seed=seed, method=method)
            for name, v in block.items():
                out[name][rows] = v
    n_budgets, n_grid = finite.sum(axis=1), grid_sizes(cm.keys, finite)
    table = pd.DataFrame(
        {
            "n_budgets": n_budgets,
            "n_budgets_grid": n_grid,
            "complete": (n_budgets == n_grid) & (n_budgets > 0),
            **problem_counts(curves_long, keys, value),
            **out,
            "hinge_preferred": hinge_preferred(n_budgets, out["p_delta_bic_hinge"]),
        }
    )
    return lead_columns(pd.concat([cm.keys, table], axis=1), keys)


def grid_sizes(keys: pd.DataFrame, finite: np.ndarray) -> np.ndarray:
    """How many budgets each curve's grid has: the union of the finite budgets of its GRID_KEYS group. (N,)"""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    by = [k for k in GRID_KEYS if k in keys.columns]
    if by:
        group = keys.groupby(by, sort=False, observed=True, dropna=False).ngroup().to_numpy()  # (N,)
    else:  # no model or dataset key: all curves share one grid
        group = np.zeros(len(keys), dtype=np.int64)
    union = np.zeros((group.max() + 1, finite.shape[1]), dtype=bool)
    np.logical_or.at(union, group, finite)  # (groups, n): budgets where any curve of the group has a value
    return union.sum(axis=1)[group]


def problem_counts(curves_long: pd.DataFrame, keys: Sequence[str], value: str) -> dict[str, np.ndarray]:
    """PROBLEM_COUNT_COLUMNS per curve (sorted by keys, as curve_matrix) when the table has `n_problems`; else {}.

    Counts are taken over the points with a finite value; `problems_vary` is True when they differ.
    """
    if "n_problems" not in curves_long.columns:
        return {}
    points = curves_long[np.isfinite(curves_long[value].to_numpy(dtype=np.float64))]
    counts = points.groupby(list(keys), sort=True, observed=True, dropna=False)["n_problems"].agg(["min", "max"])
    all_keys = curves_long.groupby(list(keys), sort=True, observed=True, dropna=False).size().index
    counts = counts.reindex(all_keys)
    lo, hi = counts["min"].to_numpy(dtype=np.float64), counts["max"].to_numpy(dtype=np.float64)
    return {"n_problems_min": lo, "n_problems_max": hi, "problems_vary": hi > lo}


def hinge_preferred(n_budgets: np.ndarray, p_hinge: np.ndarray) -> pd.arrays.BooleanArray:
    """The verdict on a break: p_delta_bic_hinge < HINGE_ALPHA with at least HINGE_MIN_BUDGETS budgets.

    NA (no verdict) below HINGE_MIN_BUDGETS budgets or where the p-value is NaN; never decided by ΔBIC alone.
    """
    decided = (np.asarray(n_budgets) >= HINGE_MIN_BUDGETS) & ~np.isnan(p_hinge)
    verdict = pd.array(np.asarray(p_hinge) < HINGE_ALPHA, dtype="boolean")
    verdict[~decided] = pd.NA
    return verdict


def lead_columns(table: pd.DataFrame, keys: Sequence[str], by: str | None = None) -> pd.DataFrame:
    """The table with keys first, then (when `by` is a score) p_<by> and <by>, then LEAD_COLUMNS, then the rest."""
    scored = [f"p_{by}", by] if by is not None else []
    first = [c for c in dict.fromkeys([*keys, *scored, *LEAD_COLUMNS]) if c in table.columns]
    return table[first + [c for c in table.columns if c not in first]]


def rank_statistic(table: pd.DataFrame, by: str) -> pd.Series:
    """What top_k sorts by, larger = ranked first: the score oriented as in significance.ORIENTATION.

    Scores of ORIENTATION become their oriented statistic t (s·score, −s·linearity, −ΔBIC, −width, and
    `oriented_jump` for jump_size), so a falling curve ranks by how suddenly it falls; p-values rank small
    first (−p); any other column ranks larger first.
    """
    if by in ORIENTATION:
        need = {"signed": ["direction"], "jump": ["oriented_jump"], "unsigned": []}[ORIENTATION[by][1]]
        missing = [c for c in need if c not in table.columns]
        if missing:
            raise ValueError(f"Ranking by {by!r} needs the column(s) {missing} of an emergence_table.")
        s = table["direction"].to_numpy(dtype=np.float64) if "direction" in table.columns else np.nan
        jump = table["oriented_jump"].to_numpy(dtype=np.float64) if "oriented_jump" in table.columns else np.nan
        return pd.Series(orient(by, table[by].to_numpy(dtype=np.float64), s, jump), index=table.index)
    if by in P_COLUMNS:
        return -table[by].astype(np.float64)
    return table[by].astype(np.float64)


def top_k(
    table: pd.DataFrame,
    k: int,
    by: str = "breakthroughness",
    *,
    ascending: bool | None = None,
    complete_only: bool = True,
    keys: Sequence[str] = PROBLEM_CURVE_KEYS,
) -> pd.DataFrame:
    """The k curves ranked first by `by`, most emergent first (NaN last; ties keep key order).

    The order is that of `rank_statistic`: every score oriented so that larger is more emergent in the
    curve's own direction (ORIENTATION), p-values small first. `ascending=True` reverses it (least emergent
    first). +inf (BIG-bench on quantised curves) ranks first. With `complete_only` (default) only complete
    curves are ranked (column `complete`): an incomplete curve's score is on fewer points and not comparable.
    Columns: keys, p_<by>, <by>, then LEAD_COLUMNS (p-values of ΔBIC before ΔBIC), then the rest.
    """
    if by not in table.columns:
        available = ", ".join(c for c in (*SCORE_COLUMNS, *FIT_COLUMNS, *P_COLUMNS) if c in table.columns)
        raise ValueError(f"Unknown score {by!r}. Available: {available}.")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if complete_only:
        if "complete" not in table.columns:
            raise ValueError(
                "The table has no `complete` column: rank an emergence_table, or pass complete_only=False."
            )
        table = table[table["complete"].astype(bool)]
    statistic = rank_statistic(table, by)
    order = statistic.sort_values(ascending=bool(ascending), na_position="last", kind="stable").index
    return lead_columns(table.loc[order].head(k).reset_index(drop=True), keys, by)
