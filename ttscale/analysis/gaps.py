"""Where curves change most between neighbouring budgets, and the log-spaced budgets `ttscale refine` adds there.

A gap is an interval (lo, hi) of consecutive budgets of a (model, dataset) grid. Its change is |Δ| of the dataset
curve (the mean over problems), or, for a problem curve, its largest step in its own direction. New budgets are
evenly spaced in x = log2 B strictly inside a gap, rounded to whole tokens:

    b_i = round(2^(log2 lo + i · (log2 hi − log2 lo) / (k + 1))),   i = 1..k

Gaps are taken largest change first; with `level="problem"` the gaps where the most emergent problem curves
(largest oriented breakthroughness, complete curves only) take their largest step come right after the dataset
curve's largest change. Budgets are added gap by gap, `per_gap` each, until `max_budgets` for the pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ttscale.analysis.curves import curve_matrix
from ttscale.analysis.grids import scoring_grid
from ttscale.analysis.scores import breakthroughness, direction, steps

LEVELS = ("dataset", "problem")


@dataclass(frozen=True)
class Gap:
    """An interval of neighbouring budgets, how much a curve changes across it, and which curve that is."""

    lo: int
    hi: int
    change: float  # |Δ| of the curve across the gap
    source: str  # "dataset", or "problem <id>"


@dataclass
class PairRefinement:
    """The budgets chosen for one (model, dataset) grid and the gaps they fill."""

    model: str
    dataset: str
    gaps: list[Gap] = field(default_factory=list)
    budgets: list[list[int]] = field(default_factory=list)  # per gap, the budgets added inside it

    @property
    def added(self) -> list[int]:
        return sorted(b for bs in self.budgets for b in bs)


def log_spaced(lo: int, hi: int, k: int) -> list[int]:
    """k budgets evenly spaced in log2 strictly inside (lo, hi), rounded to whole tokens; fewer (duplicates and
    the ends dropped) when the gap is too narrow for k distinct ones."""
    if k < 1 or hi - lo < 2:
        return []
    x = np.log2(lo) + (np.log2(hi) - np.log2(lo)) * np.arange(1, k + 1) / (k + 1)
    return sorted({int(b) for b in np.rint(np.exp2(x)) if lo < b < hi})


def dataset_gaps(budgets: Sequence[int], values: Sequence[float]) -> list[Gap]:
    """Every gap of one curve with a finite, non-zero change, largest |Δ| first (ties: lower budget first)."""
    budgets, values = np.asarray(budgets, dtype=np.int64), np.asarray(values, dtype=np.float64)
    change = np.abs(np.diff(values))
    order = sorted((i for i in range(len(change)) if np.isfinite(change[i]) and change[i] > 0),
                   key=lambda i: (-change[i], budgets[i]))  # fmt: skip
    return [Gap(int(budgets[i]), int(budgets[i + 1]), float(change[i]), "dataset") for i in order]


def problem_gaps(Y: np.ndarray, budgets: Sequence[int], problem_ids: Sequence[str], top: int) -> list[Gap]:
    """The gap of each of the `top` most emergent complete problem curves (rows of Y, (P, n)) where it takes its
    largest step in its own direction, most emergent first (oriented breakthroughness s·score on the doubling
    budgets, as top_k ranks: a grid refined before is ranked as the analysis scores it)."""
    Y = np.asarray(Y, dtype=np.float64)
    complete = np.isfinite(Y).all(axis=1)
    if Y.shape[1] < 2 or not complete.any():
        return []
    Yc, ids = Y[complete], np.asarray(problem_ids, dtype=object)[complete]
    scored = np.isin(budgets, scoring_grid(budgets).budgets)
    s = direction(Yc[:, scored])
    with np.errstate(invalid="ignore"):
        rank = s * breakthroughness(Yc[:, scored])  # (P,): NaN for flat curves, which rank last
    order = [i for i in np.argsort(-np.nan_to_num(rank, nan=-np.inf), kind="stable") if np.isfinite(rank[i])]
    oriented = s[:, None] * steps(Yc)  # (P, n − 1)
    gaps = []
    for i in order[:top]:
        j = int(np.nanargmax(oriented[i]))
        gaps.append(Gap(int(budgets[j]), int(budgets[j + 1]), float(abs(oriented[i, j])), f"problem {ids[i]}"))
    return gaps


def candidate_gaps(
    problem_values: pd.DataFrame, *, level: str = "dataset", top: int = 4
) -> dict[tuple[str, str], list[Gap]]:
    """(model, dataset) → its gaps in the order refinement takes them, from per-problem values (model, dataset,
    problem_id, budget, value): the dataset curve's gaps by change, and at `level="problem"` the top problems'
    jump gaps right after the largest one. Gaps repeat only once (the first reason given is kept)."""
    if level not in LEVELS:
        raise ValueError(f"Got level={level!r}. Use one of {', '.join(LEVELS)}.")
    out = {}
    for (model, dataset), pv in problem_values.groupby(["model", "dataset"], sort=True, observed=True):
        pv = pv[np.isfinite(pv["value"].to_numpy(dtype=np.float64))]
        if pv.empty:
            continue
        curve = pv.groupby("budget", sort=True)["value"].mean()
        ordered = dataset_gaps(curve.index.to_numpy(), curve.to_numpy())
        if level == "problem":
            cm = curve_matrix(pv, ["problem_id"])
            ordered = [*ordered[:1], *problem_gaps(cm.values, cm.budgets, cm.keys.problem_id, top), *ordered[1:]]
        seen, unique = set(), []
        for gap in ordered:
            if (gap.lo, gap.hi) not in seen:
                seen.add((gap.lo, gap.hi))
                unique.append(gap)
        out[str(model), str(dataset)] = unique
    return out


def choose_budgets(
    gaps: Sequence[Gap], *, existing: Sequence[int] = (), per_gap: int = 1, max_budgets: int = 4
) -> tuple[list[Gap], list[list[int]]]:
    """Fill gaps in order, `per_gap` log-spaced budgets each (those not on the grid yet), until `max_budgets`; a gap
    whose budgets would overshoot the cap, or that is too narrow for any, is passed over."""
    taken, added, total, grid = [], [], 0, set(existing)
    for gap in gaps:
        new = [b for b in log_spaced(gap.lo, gap.hi, per_gap) if b not in grid]
        if not new or total + len(new) > max_budgets:
            continue
        taken.append(gap)
        added.append(new)
        grid.update(new)
        total += len(new)
    return taken, added


def refine_grid(
    problem_values: pd.DataFrame,
    *,
    level: str = "dataset",
    per_gap: int = 1,
    max_budgets: int = 4,
    top: int = 4,
) -> list[PairRefinement]:
    """The budgets to add to each (model, dataset) grid where its curves change most; pairs with nothing to add
    (flat curves, gaps one token wide) are left out."""
    if per_gap < 1 or max_budgets < 1:
        raise ValueError(f"need per_gap >= 1 and max_budgets >= 1, got {per_gap} and {max_budgets}")
    out = []
    for (model, dataset), gaps in candidate_gaps(problem_values, level=level, top=top).items():
        grid = problem_values.loc[(problem_values.model == model) & (problem_values.dataset == dataset), "budget"]
        taken, added = choose_budgets(gaps, existing=grid.unique(), per_gap=per_gap, max_budgets=max_budgets)
        if taken:
            out.append(PairRefinement(model, dataset, taken, added))
    return out
