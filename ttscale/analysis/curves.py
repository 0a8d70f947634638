"""Curves over the budget grid: long ↔ matrix form, and dataset curves with bootstrap-over-problems bands."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from ttscale.analysis.values import first_rows

DATASET_KEYS = ("model", "dataset")


@dataclass(frozen=True, eq=False)
class CurveMatrix:
    """Curves of a long table as one matrix: `values[i, j]` is curve `keys.iloc[i]` at `budgets[j]`."""

    keys: pd.DataFrame  # (N, len(keys)), sorted by the keys
    budgets: np.ndarray  # (n,) int64, sorted ascending: the union of every curve's budgets
    values: np.ndarray  # (N, n) float64, NaN where a curve has no value at a budget


def curve_matrix(curves_long: pd.DataFrame, keys: Sequence[str], *, value: str = "value") -> CurveMatrix:
    """Pivot a long table (keys + budget + value, one row per curve point) into a CurveMatrix.

    Vectorised (no per-curve loop). A repeated (keys, budget) pair raises: aggregate over seeds first.
    """
    keys = list(keys)
    missing = [c for c in [*keys, "budget", value] if c not in curves_long.columns]
    if missing:
        raise ValueError(f"the curve table lacks the columns {missing}")
    curve = curves_long.groupby(keys, sort=True, observed=True, dropna=False).ngroup().to_numpy()  # (R,)
    point, budgets = pd.factorize(curves_long["budget"].to_numpy(dtype=np.int64), sort=True)  # hashing, no sort of R
    if len(budgets) and budgets[0] <= 0:
        raise ValueError(f"budgets must be positive (x = log2 B), got {budgets[0]}")
    n_curves = int(curve.max()) + 1 if len(curve) else 0
    cell = curve * len(budgets) + point  # (R,) flat index into the (N, n) matrix
    if len(cell) and np.bincount(cell, minlength=n_curves * len(budgets)).max() > 1:
        raise ValueError(f"several rows share one ({', '.join(keys)}, budget): aggregate over seeds first")
    values = np.full(n_curves * len(budgets), np.nan)
    values[cell] = curves_long[value].to_numpy(dtype=np.float64)
    key_frame = curves_long[keys].iloc[first_rows(curve)].reset_index(drop=True)  # ngroup codes: key order
    return CurveMatrix(key_frame, budgets, values.reshape(n_curves, len(budgets)))


def _group_rng(seed: int, key: tuple) -> np.random.Generator:
    """A generator per group, derived from (seed, group key), so a band never depends on the other groups."""
    return np.random.default_rng([seed, zlib.crc32("\x1f".join(map(str, key)).encode())])


def resample_counts(rng: np.random.Generator, P: int, n_boot: int) -> np.ndarray:
    """(n_boot, P): how many times each of P problems is drawn in each of `n_boot` resamples with replacement."""
    idx = rng.integers(0, P, size=(n_boot, P))  # (n_boot, P)
    W = np.bincount((np.arange(n_boot)[:, None] * P + idx).ravel(), minlength=n_boot * P)
    return W.reshape(n_boot, P).astype(np.int16 if P < 2**15 else np.int32)


@lru_cache(maxsize=128)
def _group_counts(seed: int, key: tuple, P: int, n_boot: int) -> np.ndarray:
    """`resample_counts` of one group, drawn once: every metric of a (model, dataset) resamples the same problems
    (the draws depend only on (seed, key, P, n_boot)), so the report's curves share them; int16, ~1 MB each."""
    counts = resample_counts(_group_rng(seed, key), P, n_boot)
    counts.flags.writeable = False
    return counts


def bootstrap_means(V: np.ndarray, rng: np.random.Generator | np.ndarray, n_boot: int) -> np.ndarray:
    """Means over problems of `n_boot` resamples of the rows (problems) of V, NaNs skipped.

    V: (P, n) problems × budgets. One (n_boot, P) index matrix resamples whole problems, so a problem's
    budgets stay together (`rng` may be those counts already drawn, `resample_counts`). Returns (n_boot, n); NaN
    where a resample has no value at a budget.
    """
    P = V.shape[0]
    W = rng if isinstance(rng, np.ndarray) else resample_counts(rng, P, n_boot)
    W = W.astype(np.float64)  # (n_boot, P): times each problem was drawn
    finite = np.isfinite(V)
    sums = W @ np.where(finite, V, 0.0)  # (n_boot, n)
    counts = W @ finite.astype(np.float64)  # (n_boot, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def nan_quantiles(A: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """np.nanquantile(A, qs, axis=0) (linear interpolation) for a 2-D A, vectorised over columns: numpy's own runs a
    Python loop over the columns once any value is NaN. Returns (len(qs), n); NaN for a column without values."""
    ordered = np.sort(A, axis=0)  # NaNs sort last
    count = np.isfinite(A).sum(axis=0)  # (n,)
    out = np.full((len(qs), A.shape[1]), np.nan)
    cols = np.flatnonzero(count > 0)
    for i, q in enumerate(qs):
        position = q * (count[cols] - 1)
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, count[cols] - 1)
        low, high = ordered[below, cols], ordered[above, cols]
        out[i, cols] = low + (high - low) * (position - below)
    return out


def _band(V: np.ndarray, counts: np.ndarray, n_boot: int, level: float) -> dict[str, np.ndarray]:
    """Mean over problems and its percentile-bootstrap band, per budget, for one (P, n) matrix."""
    boot = bootstrap_means(V, counts, n_boot)  # (n_boot, n)
    alpha = (1.0 - level) / 2.0
    n_problems = np.isfinite(V).sum(axis=0)  # (n,)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(np.isfinite(V), V, 0.0).sum(axis=0) / n_problems
    lo, hi = np.full(V.shape[1], np.nan), np.full(V.shape[1], np.nan)
    ok = n_problems > 0
    if ok.any():
        lo[ok], hi[ok] = nan_quantiles(boot[:, ok], [alpha, 1.0 - alpha])
    return {"value": value, "lo": lo, "hi": hi, "n_problems": n_problems}


def _runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of equal consecutive labels."""
    if len(labels) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]]).tolist()
    return list(zip(starts, [*starts[1:], len(labels)], strict=True))


def dataset_curves(
    problem_values_df: pd.DataFrame,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    keys: Sequence[str] = DATASET_KEYS,
) -> pd.DataFrame:
    """Dataset curves: the mean over problems at each budget, with a percentile-bootstrap band over problems.

    METHOD.md §6: resample problems with replacement (each keeps all its budgets), 1000 resamples by default.
    A problem missing at a budget is skipped there (`n_problems` counts the problems behind each point);
    budgets a group never ran are left out. Each group draws from `default_rng([seed, crc32(key)])`.
    Returns keys + budget, value, lo, hi, n_problems.
    """
    if not 0.0 < level < 1.0 or n_boot < 1:
        raise ValueError(f"need 0 < level < 1 and n_boot >= 1, got level={level}, n_boot={n_boot}")
    keys = list(keys)
    cm = curve_matrix(problem_values_df, [*keys, "problem_id"])
    group = cm.keys.groupby(keys, sort=True, observed=True, dropna=False).ngroup().to_numpy()  # (N,)
    frames = []
    for start, stop in _runs(group):  # rows are sorted by key, so each group is one run of rows
        key = tuple(cm.keys.iloc[start][keys].tolist())
        band = _band(cm.values[start:stop], _group_counts(seed, key, stop - start, n_boot), n_boot, level)
        frame = pd.DataFrame({"budget": cm.budgets, **band})
        frames.append(frame[frame["n_problems"] > 0].assign(**dict(zip(keys, key, strict=True))))
    columns = [*keys, "budget", "value", "lo", "hi", "n_problems"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]
