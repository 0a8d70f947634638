"""Per-(problem, budget) values of a curve metric (ttscale/metrics.py), over seeds, and unbiased pass@k."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import comb

from ttscale.metrics import get_metric

PROBLEM_KEYS = ("model", "dataset", "problem_id", "budget")  # one problem value per key; seeds are averaged


def pass_at_k(n: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """Unbiased pass@k = 1 − C(n−c, k) / C(n, k) (Chen et al. 2021, "Evaluating LLMs trained on code", eq. 1).

    n: (P,) graded seeds per problem, c: (P,) correct among them. NaN where n < k (not estimable).
    """
    n, c = np.asarray(n, dtype=np.float64), np.asarray(c, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = 1.0 - comb(n - c, k) / comb(n, k)  # comb(a, k) = 0 for a < k: at least one success drawn
    return np.where(n >= k, estimate, np.nan)


def default_pass_k(rows: pd.DataFrame) -> int:
    """The k of the report's pass@k curve: the fewest seeds that any (model, dataset, problem, budget) ran.

    Every point is then estimable (n >= k) unless grading failed there, and with one seed per point the
    result is 1 (pass@1 is accuracy). Seeds are counted as rows, so a null `correct` still counts as run.
    """
    missing = [c for c in PROBLEM_KEYS if c not in rows.columns]
    if missing:
        raise ValueError(f"rows lack the columns {missing} needed to count seeds")
    if rows.empty:
        return 1
    return int(rows.groupby(list(PROBLEM_KEYS), sort=False, observed=True).size().min())


def first_rows(codes: np.ndarray) -> np.ndarray:
    """Each group's first row, for group codes 0…G−1 (ngroup's): (G,), in O(R) rather than np.unique's sort."""
    first = np.empty(int(codes.max()) + 1 if len(codes) else 0, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # the last write for a code is its first row
    return first


@dataclass(frozen=True, eq=False)
class ProblemGroups:
    """Which (model, dataset, problem_id, budget) each row belongs to: `codes` (R,), groups numbered in sorted key
    order, and `keys` (G, 4). Every metric's problem values share it (one grouping of the rows, not one per metric)."""

    codes: np.ndarray
    keys: pd.DataFrame


def problem_groups(rows: pd.DataFrame) -> ProblemGroups:
    missing = [c for c in PROBLEM_KEYS if c not in rows.columns]
    if missing:
        raise ValueError(f"rows lack the columns {missing} needed to group rows by problem")
    codes = rows.groupby(list(PROBLEM_KEYS), sort=True, observed=True, dropna=False).ngroup().to_numpy()
    keys = rows[list(PROBLEM_KEYS)].iloc[first_rows(codes)].reset_index(drop=True)
    keys["budget"] = keys["budget"].astype(np.int64)
    return ProblemGroups(codes, keys)


def problem_values(rows: pd.DataFrame, metric: str, groups: ProblemGroups | None = None) -> pd.DataFrame:
    """One value per (model, dataset, problem_id, budget): the metric over that problem's seeds.

    Returns columns model, dataset, problem_id, budget, value, sorted by the keys. A problem whose rows are
    all null for the metric keeps its row with value NaN (nulls stay visible, never become zeros). `groups`:
    `problem_groups(rows)`, when already made.
    """
    spec = get_metric(metric)
    missing = [c for c in (*PROBLEM_KEYS, spec.column) if c not in rows.columns]
    if missing:
        raise ValueError(f"rows lack the columns {missing} needed for metric {metric!r}")
    groups = groups or problem_groups(rows)
    column = rows[spec.column].astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)  # nullable → NaN
    ok = ~np.isnan(column)
    G = len(groups.keys)
    count = np.bincount(groups.codes[ok], minlength=G).astype(np.float64)  # graded seeds n
    total = np.bincount(groups.codes[ok], weights=column[ok], minlength=G)  # their sum (correct seeds c)
    if spec.k is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(count > 0, total / count, np.nan) * spec.sign
    else:
        value = pass_at_k(count, total, spec.k)
    return groups.keys.assign(value=value)
