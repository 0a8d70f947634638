"""Per-(problem, budget) values of a curve metric (ttscale/metrics.py), over seeds, and unbiased pass@k."""

from __future__ import annotations

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


def problem_values(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One value per (model, dataset, problem_id, budget): the metric over that problem's seeds.

    Returns columns model, dataset, problem_id, budget, value, sorted by the keys. A problem whose rows are
    all null for the metric keeps its row with value NaN (nulls stay visible, never become zeros).
    """
    spec = get_metric(metric)
    missing = [c for c in (*PROBLEM_KEYS, spec.column) if c not in rows.columns]
    if missing:
        raise ValueError(f"rows lack the columns {missing} needed for metric {metric!r}")
    column = rows[spec.column].astype("float64")  # nullable ints and pd.NA become float NaN
    grouped = column.groupby([rows[k] for k in PROBLEM_KEYS], sort=True, observed=True, dropna=False)
    if spec.k is None:
        value = grouped.mean() * spec.sign
    else:
        counts = grouped.agg(["count", "sum"])  # count = graded seeds n, sum = correct seeds c
        value = pd.Series(pass_at_k(counts["count"], counts["sum"], spec.k), index=counts.index)
    out = value.rename("value").reset_index()
    out["budget"] = out["budget"].astype(np.int64)
    return out
