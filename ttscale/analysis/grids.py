"""Which budgets of a grid the emergence scores use (its doubling budgets), and where the jump lies on all of them.

Emergence scores (METHOD.md §6) count index steps Δᵢ, so they mean the same thing only on a doubling grid, where
one step is one unit of x = log2 B. A grid `ttscale refine` made finer is therefore scored on its doubling budgets
and its other budgets only **locate** the jump:

    scoring grid   = B_min · 2^k, k = 0, 1, …, up to B_max, when all of them are on the grid (refine's budgets,
                     and any the manifest records refine adding, left out first)
    jump_interval  = (B_j, B_j+1), the neighbours on the *full* grid between which y changes most per unit of x
                     in the curve's own direction: argmax_j s · (y_j+1 − y_j) / (x_j+1 − x_j)
    jump_slope     = (y_j+1 − y_j) / (x_j+1 − x_j) there (signed: negative for a falling curve)

A grid whose doublings do not reach its largest budget (64, 128, 512, or 100, 300, 900) has no doubling grid:
it is scored on its own steps, and `doubling` is False so that callers can say its scores are not comparable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np


@dataclass(frozen=True)
class ScoringGrid:
    """The budgets a (model, dataset) is scored on, and whether they form a doubling grid."""

    budgets: tuple[int, ...]
    doubling: bool


def is_doubling(budgets: Sequence[int]) -> bool:
    """True when each budget is exactly twice the one before (a single budget counts; none does not)."""
    return len(budgets) > 0 and all(b == 2 * a for a, b in pairwise(budgets))


def scoring_grid(grid: Iterable[int], refined: Iterable[int] = ()) -> ScoringGrid:
    """The budgets of `grid` that scores use: its doubling chain from the smallest budget to the largest, once the
    budgets in `refined` (those refine recorded adding) are left out; the whole of that grid when the chain does
    not reach its largest budget (`doubling` False)."""
    base = sorted({int(b) for b in grid} - {int(b) for b in refined})
    if not base:
        return ScoringGrid((), False)
    chain = [base[0]]
    while chain[-1] < base[-1] and 2 * chain[-1] in base:
        chain.append(2 * chain[-1])
    if chain[-1] == base[-1]:
        return ScoringGrid(tuple(chain), True)
    return ScoringGrid(tuple(base), is_doubling(base))


def jump_location(Y: np.ndarray, budgets: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, slope) per curve of Y (N, n) on `budgets` (n,): the neighbouring budgets between which the curve
    changes most per unit of log2 B in its own direction, and that change per unit of log2 B. NaN for a flat
    curve, a curve with a NaN, or fewer than two budgets."""
    Y = np.asarray(Y, dtype=np.float64)
    N, n = Y.shape
    nan = np.full(N, np.nan)
    if n < 2:
        return nan, nan.copy(), nan.copy()
    x = np.log2(np.asarray(budgets, dtype=np.float64))
    slope = np.diff(Y, axis=1) / np.diff(x)  # (N, n − 1)
    span = Y.max(axis=1) - Y.min(axis=1)
    s = np.sign(Y.argmax(axis=1) - Y.argmin(axis=1)).astype(np.float64)  # the curve's direction, as I(y)'s sign
    j = np.argmax(s[:, None] * slope, axis=1)  # first of equal slopes: the lower interval
    valid = np.isfinite(Y).all(axis=1) & (span > 0)
    b = np.asarray(budgets, dtype=np.float64)
    lo, hi, at = b[j], b[j + 1], slope[np.arange(N), j]
    return np.where(valid, lo, np.nan), np.where(valid, hi, np.nan), np.where(valid, at, np.nan)


def interval_width(lo, hi):
    """How wide jump intervals are in units of log2 B (NaN where none is located); scalars or arrays."""
    return np.log2(np.asarray(hi, dtype=np.float64)) - np.log2(np.asarray(lo, dtype=np.float64))
