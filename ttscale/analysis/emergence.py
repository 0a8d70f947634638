"""Emergence tables: every score, fit and p-value of each curve (METHOD.md §6), and the top-k ranking.

Scores, fits and p-values are computed on the curve's scoring grid (`grids.scoring_grid`): the doubling budgets
of its (model, dataset) grid, the union of the budgets at which any of its curves has a value, so that budgets
`ttscale refine` added change no score. Every budget, refined ones included, locates the jump: `jump_interval_lo`,
`jump_interval_hi` and `jump_slope` (per unit of log2 B, `grids.jump_location`).

Besides the scores, each row says how far it can be trusted and compared:

- `complete`: the curve has a finite value at every budget of its scoring grid. An incomplete curve is scored on
  fewer points, and fewer points push breakthroughness up (it lies in [1/m, 1] for a rising curve: any rising
  two-point curve scores 1), so `top_k` ranks complete curves only unless told otherwise.
- `doubling_grid`: the scoring grid is a doubling grid; False for a grid uneven from the start (scored on its own
  steps: its scores are not comparable with doubling-grid scores).
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

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ttscale.analysis.curves import curve_matrix
from ttscale.analysis.fits import FIT_COLUMNS, fit_curves, per_distinct_curve
from ttscale.analysis.grids import jump_location, scoring_grid
from ttscale.analysis.scores import SCORE_COLUMNS, curve_scores, direction, oriented_jump, signed_range
from ttscale.analysis.significance import ORIENTATION, P_COLUMNS, orient, p_values

PROBLEM_CURVE_KEYS = ("model", "dataset", "problem_id")
GRID_KEYS = ("model", "dataset")  # the curves of one (model, dataset) share one budget grid
HINGE_MIN_BUDGETS = 6  # below this, even the p-value-backed verdict on a break is withheld
HINGE_ALPHA = 0.05  # p_delta_bic_hinge below this (with enough budgets): hinge_preferred
SHAPE_COLUMNS = ("signed_range", "direction", "oriented_jump")  # I(y): the effect size beside every score
RANKINGS = ("reviewed", "score")  # top_k's orders: a minimum range, significant first, then by score; or score alone
MIN_RANGE = 0.05  # |I(y)| below this (in the metric's units) is not ranked by the reviewed ranking
RANK_ALPHA = 0.05  # p_<score> below this: ranked among the significant curves
LOCATION_COLUMNS = ("jump_interval_lo", "jump_interval_hi", "jump_slope")  # on every budget, refined ones included
PROBLEM_COUNT_COLUMNS = ("n_problems_min", "n_problems_max", "problems_vary")  # dataset curves only
LEAD_COLUMNS = ("p_delta_bic_hinge", "p_delta_bic_sigmoid", "delta_bic_hinge", "delta_bic_sigmoid", "hinge_preferred")
COLUMNS = (  # after the keys, in this order (PROBLEM_COUNT_COLUMNS follow `complete` when present)
    *LEAD_COLUMNS,
    "n_budgets",
    "n_budgets_grid",
    "complete",
    "doubling_grid",
    *SCORE_COLUMNS,
    *LOCATION_COLUMNS,
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
        "signed_range": signed_range(Y),
        "direction": direction(Y),
        "oriented_jump": oriented_jump(Y),
        **per_distinct_curve(lambda curves: fit_curves(curves, budgets), Y),
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
    refined: Mapping[tuple[str, str], Sequence[int]] | None = None,
) -> pd.DataFrame:
    """One row per curve (keys), with COLUMNS: every score, fit and p-value, where the jump lies, and how complete
    the curve is.

    `curves_long` holds keys + budget + value, one row per curve point: per-problem values (keys model,
    dataset, problem_id) or dataset curves (keys model, dataset, plus `n_problems`, which adds
    PROBLEM_COUNT_COLUMNS); other columns are ignored. Each (model, dataset) grid is scored on its scoring grid
    (`grids.scoring_grid`, once the budgets `refined` records refine adding to that pair are left out); a curve
    is scored on the budgets of that grid where it has a finite value (`n_budgets` of them, out of
    `n_budgets_grid`; `complete` when equal), and its jump is located on all of its finite budgets. Curves with
    no finite value get NaN everywhere.
    """
    cm = curve_matrix(curves_long, keys, value=value)
    finite = np.isfinite(cm.values)  # (N, n)
    group, pairs = grid_groups(cm.keys, finite)
    on_grid = np.zeros((len(pairs), len(cm.budgets)), dtype=bool)  # (groups, n): each group's scoring grid
    doubling = np.zeros(len(pairs), dtype=bool)
    for g, (pair, present) in enumerate(pairs):
        grid = scoring_grid(cm.budgets[present], (refined or {}).get(pair, ()))
        on_grid[g], doubling[g] = np.isin(cm.budgets, grid.budgets), grid.doubling
    scored = finite & on_grid[group]  # (N, n)
    names = (*SCORE_COLUMNS, *LOCATION_COLUMNS, *SHAPE_COLUMNS, *FIT_COLUMNS, *P_COLUMNS)
    out = {name: np.full(len(finite), np.nan) for name in names}
    for rows, mask in same_masks(scored):
        block = score_curves(cm.values[rows][:, mask], cm.budgets[mask], n_sim=n_sim, seed=seed, method=method)
        for name, v in block.items():
            out[name][rows] = v
    for rows, mask in same_masks(finite):
        located = jump_location(cm.values[rows][:, mask], cm.budgets[mask])
        for name, v in zip(LOCATION_COLUMNS, located, strict=True):
            out[name][rows] = v
    n_budgets, n_grid = scored.sum(axis=1), on_grid.sum(axis=1)[group]
    table = pd.DataFrame(
        {
            "n_budgets": n_budgets,
            "n_budgets_grid": n_grid,
            "complete": (n_budgets == n_grid) & (n_budgets > 0),
            "doubling_grid": doubling[group],
            **problem_counts(curves_long, keys, value),
            **out,
            "hinge_preferred": hinge_preferred(n_budgets, out["p_delta_bic_hinge"]),
        }
    )
    return lead_columns(pd.concat([cm.keys, table], axis=1), keys)


def same_masks(masks: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows, mask) for each distinct row of a boolean matrix (N, n) with a True: the curves scored on the same
    budgets, scored together."""
    if masks.size == 0:
        return []
    patterns, which = np.unique(masks, axis=0, return_inverse=True)
    which = which.reshape(-1)
    return [(which == j, mask) for j, mask in enumerate(patterns) if mask.any()]


def grid_groups(keys: pd.DataFrame, finite: np.ndarray) -> tuple[np.ndarray, list[tuple[tuple, np.ndarray]]]:
    """Each curve's GRID_KEYS group (N,), and per group its (model, dataset) pair and the budgets (a mask over the
    matrix's budgets) where any of its curves has a finite value. Without both keys, curves share one grid
    (pair ())."""
    by = [k for k in GRID_KEYS if k in keys.columns]
    if by:
        codes = keys.groupby(by, sort=False, observed=True, dropna=False).ngroup().to_numpy()  # (N,)
    else:
        codes = np.zeros(len(keys), dtype=np.int64)
    if len(codes) == 0:
        return codes, []
    union = np.zeros((codes.max() + 1, finite.shape[1]), dtype=bool)
    np.logical_or.at(union, codes, finite)  # (groups, n)
    _, first = np.unique(codes, return_index=True)
    pairs = [tuple(str(keys[k].iloc[i]) for k in GRID_KEYS) if len(by) == len(GRID_KEYS) else () for i in first]
    return codes, list(zip(pairs, union, strict=True))


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
    """The table with keys first, then (when `by` is a score) p_<by>, <by> and the effect size signed_range, then
    LEAD_COLUMNS, then the rest."""
    scored = [f"p_{by}", by, "signed_range"] if by is not None else []
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
    ranking: str = "reviewed",
    min_range: float = MIN_RANGE,
    alpha: float = RANK_ALPHA,
) -> pd.DataFrame:
    """The k curves ranked first by `by`, most emergent first (NaN last; ties keep key order).

    `ranking="reviewed"` (default), what a reviewer would accept: a curve whose values move by less than
    `min_range` (|I(y)|, in the metric's units) is not ranked, since scale-free scores rate a curve moving by a
    thousandth like one moving by a half; the others come significant first (p_<by> < `alpha`), each group in the
    order of `rank_statistic`. `ranking="score"`: that order alone, every curve ranked (scale-free).
    `rank_statistic` orients every score so that larger is more emergent in the curve's own direction
    (ORIENTATION), p-values small first; +inf (BIG-bench on quantised curves) ranks first. `ascending=True`
    reverses the order (least emergent first). With `complete_only` (default) only complete curves are ranked
    (column `complete`): an incomplete curve's score is on fewer points and not comparable.
    Columns: keys, p_<by>, <by>, signed_range (the effect size), then LEAD_COLUMNS, then the rest.
    """
    if by not in table.columns:
        available = ", ".join(c for c in (*SCORE_COLUMNS, *FIT_COLUMNS, *P_COLUMNS) if c in table.columns)
        raise ValueError(f"Unknown score {by!r}. Available: {available}.")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if ranking not in RANKINGS:
        raise ValueError(f"Got ranking={ranking!r}. Use one of: {', '.join(RANKINGS)}.")
    if complete_only:
        if "complete" not in table.columns:
            raise ValueError(
                "The table has no `complete` column: rank an emergence_table, or pass complete_only=False."
            )
        table = table[table["complete"].astype(bool)]
    statistic = rank_statistic(table, by)
    order = pd.DataFrame({"statistic": statistic})
    sort_by, descending = ["statistic"], [not ascending]
    if ranking == "reviewed":
        if "signed_range" not in table.columns:
            raise ValueError("Ranking 'reviewed' needs the column signed_range of an emergence_table.")
        order = order[table["signed_range"].abs() >= min_range]
        p = table[f"p_{by}"] if f"p_{by}" in table.columns else table[by] if by in P_COLUMNS else None
        if p is not None:
            order["significant"] = p.loc[order.index].astype(np.float64) < alpha
            sort_by, descending = ["significant", *sort_by], [not ascending, *descending]
    ranked = order.sort_values(sort_by, ascending=[not d for d in descending], na_position="last", kind="stable")
    return lead_columns(table.loc[ranked.index].head(k).reset_index(drop=True), keys, by)


def unranked(table: pd.DataFrame, min_range: float = MIN_RANGE, *, complete_only: bool = True) -> int:
    """How many curves the reviewed ranking leaves out for moving by less than `min_range`."""
    if complete_only and "complete" in table.columns:
        table = table[table["complete"].astype(bool)]
    return int((table["signed_range"].abs() < min_range).sum() + table["signed_range"].isna().sum())
