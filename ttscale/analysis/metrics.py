"""The curve metrics of METHOD.md §4–§5 and their per-(problem, budget) values, averaged over seeds."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import comb

PROBLEM_KEYS = ("model", "dataset", "problem_id", "budget")  # one problem value per key; seeds are averaged


@dataclass(frozen=True)
class Metric:
    """How one curve metric is read from result rows (ROW_SCHEMA in ttscale/store.py).

    `column` is averaged over the seeds of a (model, dataset, problem, budget), nulls dropped, then
    multiplied by `sign` (so that larger is better for every metric); pass@k instead applies the unbiased
    estimator to the 0/1 `correct` column. `discrete` marks metrics that take few values per problem
    (accuracy over n seeds is a multiple of 1/n), which is what makes a curve look like it jumps.
    """

    name: str
    column: str
    discrete: bool
    description: str
    sign: float = 1.0
    k: int | None = None  # pass@k only


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("accuracy", "correct", True, "mean of `correct` over seeds (METHOD §4)"),
        Metric("pass@k", "correct", True, "unbiased pass@k over seeds; ask for e.g. 'pass@4' (METHOD §4)"),
        Metric("p_correct", "p_correct", False, "q(gold), the normalised probability of the gold (METHOD §5)"),
        Metric("neg_entropy", "entropy", False, "−entropy (nats) of q over the solution set", sign=-1.0),
        Metric("neg_brier", "brier", False, "−Brier score of q against the gold", sign=-1.0),
        Metric("mass_on_set", "mass_on_set", False, "unnormalised probability mass on the solution set"),
        Metric("thinking_tokens", "thinking_tokens", False, "real model thinking tokens in the prefix"),
    ]
}

_PASS_AT_K = re.compile(r"pass@(\d+)")


def get_metric(name: str) -> Metric:
    """The metric called `name`; "pass@4" gives pass@k with k = 4. Unknown names raise ValueError."""
    if name in METRICS and name != "pass@k":
        return METRICS[name]
    match = _PASS_AT_K.fullmatch(name)
    if match and int(match.group(1)) >= 1:
        template = METRICS["pass@k"]
        return Metric(name, template.column, True, template.description, k=int(match.group(1)))
    known = ", ".join(n if n != "pass@k" else "pass@<k> (e.g. pass@4)" for n in METRICS)
    raise ValueError(f"Unknown metric {name!r}. Known: {known}.")


def is_discrete(name: str) -> bool:
    """Whether the metric takes few values per problem (accuracy, pass@k) rather than a continuum."""
    return get_metric(name).discrete


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
