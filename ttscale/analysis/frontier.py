"""Sequential vs parallel compute (METHOD.md §6b) as tables: each (B, k) point's value and cost, the compute
frontier, and the emergence scores of k = 1 and of the frontier side by side.

Points: for every (model, dataset, budget) and k = 1…n, maj@k, pass@k or accuracy averaged over problems with a
bootstrap band (resampling problems, as every dataset curve), and its cost, k × the tokens a seed spent at B.

Frontier scores: the k = 1 curve is scored over log2 B on its budgets; the frontier over log2 cost on the doubling
grid of costs c₀·2ʲ, j = 0…n−1, from the cheapest point c₀ (the cost of the smallest budget at k = 1), with as many
points as the k = 1 curve, so that both scores count the same number of doublings. `grid="measured"` scores the
frontier at every cost where it was measured instead, and warns when those costs are not a doubling grid.
"""

from __future__ import annotations

import warnings
from itertools import pairwise

import numpy as np
import pandas as pd

from ttscale.analysis.curves import DATASET_KEYS, dataset_curves
from ttscale.analysis.emergence import score_curves
from ttscale.analysis.grids import is_doubling
from ttscale.analysis.parallel import frontier
from ttscale.analysis.values import PROBLEM_KEYS
from ttscale.analysis.votes import VoteCounts, maj_values, pass_values, seed_counts
from ttscale.errors import TtscaleWarning

PARALLEL_METRICS = {"maj": "maj@k", "pass": "pass@k", "accuracy": "accuracy"}  # name → label
POINT_KEYS = (*DATASET_KEYS, "k")  # one curve over budgets per (model, dataset, k)
CURVES = ("k = 1", "frontier")  # the two curves `frontier_scores` compares per (model, dataset)
GRIDS = ("doubling", "measured")
DOUBLING_TOLERANCE = 0.02  # a cost grid is doubling when every ratio is within 2% of 2
COMPUTE_COLUMNS = ("answer", "correct", "thinking_tokens")  # without them there is no vote or cost


def check_metric(metric: str) -> None:
    if metric not in PARALLEL_METRICS:
        raise ValueError(f"Got metric {metric!r}. Use one of: {', '.join(PARALLEL_METRICS)}.")


def problem_points(counts: VoteCounts, metric: str = "maj") -> pd.DataFrame:
    """One value per (model, dataset, problem, budget, k), k = 1…n, from the votes of `votes.vote_counts`: maj@k,
    pass@k, or accuracy (the same at every k: k seeds answer no better on average than one). NaN where the problem
    has fewer than k graded seeds."""
    check_metric(metric)
    ks = list(seed_counts(counts))
    if metric == "maj":
        values = maj_values(counts, ks)
    elif metric == "pass":
        values = pass_values(counts, ks)
    else:
        n = counts.seeds.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(n[:, None] >= np.asarray(ks)[None], (counts.correct / n)[:, None], np.nan)
    long = counts.keys.loc[counts.keys.index.repeat(len(ks))].reset_index(drop=True)
    long["k"] = np.tile(np.asarray(ks, dtype=np.int64), len(counts.keys))
    long["value"] = values.ravel()
    long["budget"] = long["budget"].astype(np.int64)
    return long[[*PROBLEM_KEYS, "k", "value"]]


def seed_tokens(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (model, dataset, budget): the mean tokens a seed spent (real thinking tokens plus the forced answer's)."""
    missing = [c for c in (*DATASET_KEYS, "budget", "thinking_tokens") if c not in rows.columns]
    if missing:
        raise ValueError(f"rows lack the columns {missing} needed for the cost of a point")
    spent = rows["thinking_tokens"].astype(np.float64)
    if "answer_tokens" in rows.columns:
        spent = spent + rows["answer_tokens"].astype(np.float64)
    else:
        warnings.warn("the rows lack answer_tokens: costs count thinking tokens only", TtscaleWarning, stacklevel=3)
    keys = [rows[c] for c in (*DATASET_KEYS, "budget")]
    out = spent.groupby(keys, sort=True, observed=True).mean().rename("tokens_per_seed").reset_index()
    out["budget"] = out["budget"].astype(np.int64)
    return out


def point_curves(points: pd.DataFrame, tokens: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Dataset curves of `problem_points` per (model, dataset, k), with bootstrap bands over problems, and the cost
    of each point. Columns: model, dataset, k, budget, value, lo, hi, n_problems, tokens_per_seed, cost."""
    # One band per (model, dataset) over all its (k, budget) columns: every k resamples the same problems, and the
    # draws are those of the pair's other curves. dataset_curves takes the columns as a positive integer "budget".
    budgets = np.sort(points["budget"].unique())
    column = (points["k"].to_numpy() - 1) * len(budgets) + np.searchsorted(budgets, points["budget"].to_numpy()) + 1
    curves = dataset_curves(points.assign(budget=column), n_boot=n_boot, seed=seed, keys=DATASET_KEYS)
    code = curves["budget"].to_numpy() - 1
    curves["k"], curves["budget"] = code // len(budgets) + 1, budgets[code % len(budgets)].astype(np.int64)
    curves = curves.merge(tokens, on=[*DATASET_KEYS, "budget"], how="left")
    curves["cost"] = curves["k"] * curves["tokens_per_seed"]
    columns = [*POINT_KEYS, "budget", "value", "lo", "hi", "n_problems", "tokens_per_seed", "cost"]
    return curves.sort_values([*DATASET_KEYS, "k", "budget"], ignore_index=True)[columns]


def frontier_table(curves: pd.DataFrame) -> pd.DataFrame:
    """The compute frontier of each (model, dataset) over the points of `point_curves`: at every measured cost, the
    best value at or below it, the (budget, k) that reaches it, and that point's band.
    Columns: model, dataset, cost, value, budget, k, lo, hi."""
    frames = []
    for (model, dataset), pair in curves.groupby(list(DATASET_KEYS), sort=True, observed=True):
        points = list(zip(pair["budget"], pair["k"], pair["cost"], pair["value"], strict=True))
        steps = pd.DataFrame(frontier(points), columns=["cost", "value", "budget", "k"])
        frames.append(steps.assign(model=model, dataset=dataset))
    columns = [*DATASET_KEYS, "cost", "value", "budget", "k", "lo", "hi"]
    if not frames:
        return pd.DataFrame(columns=columns)
    band = curves[[*DATASET_KEYS, "budget", "k", "lo", "hi"]]
    return pd.concat(frames, ignore_index=True).merge(band, on=[*DATASET_KEYS, "budget", "k"], how="left")[columns]


def frontier_at(steps: pd.DataFrame, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frontier `steps` (one pair's rows of `frontier_table`, sorted by cost) read at `costs`: its value, budget
    and k at or below each cost (NaN and 0 below its cheapest point)."""
    at = np.searchsorted(steps["cost"].to_numpy(), costs, side="right") - 1  # the last step at or below each cost
    ok = at >= 0
    pick = np.where(ok, at, 0)
    value = np.where(ok, steps["value"].to_numpy()[pick], np.nan)
    budget = np.where(ok, steps["budget"].to_numpy()[pick], 0)
    k = np.where(ok, steps["k"].to_numpy()[pick], 0)
    return value, budget, k


def is_doubling_costs(costs: np.ndarray, tolerance: float = DOUBLING_TOLERANCE) -> bool:
    """True when each cost is twice the one before, within `tolerance` (costs are means of token counts)."""
    return len(costs) > 0 and all(abs(b / a - 2.0) <= 2.0 * tolerance for a, b in pairwise(costs))


def frontier_scores(
    curves: pd.DataFrame, *, n_sim: int = 200, seed: int = 0, grid: str = "doubling", steps: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Emergence scores (METHOD.md §6, with p-values) of each (model, dataset)'s k = 1 curve over log2 B and of its
    frontier over log2 cost (see the module's docstring for the cost grid). One row per (model, dataset, curve):
    model, dataset, curve, n_points, doubling_grid, x (the budgets or costs scored), parallel_points (frontier
    points reached by k > 1), then every score, fit and p-value column of `emergence.score_curves`. `steps`: the
    frontier of `curves` (`frontier_table`) when already computed."""
    if grid not in GRIDS:
        raise ValueError(f"Got grid={grid!r}. Use one of: {', '.join(GRIDS)}.")
    steps = frontier_table(curves) if steps is None else steps
    fronts = dict(iter(steps.groupby(list(DATASET_KEYS), sort=False, observed=True)))
    rows, uneven = [], []
    for (model, dataset), pair in curves.groupby(list(DATASET_KEYS), sort=True, observed=True):
        sequential = pair[(pair["k"] == 1) & np.isfinite(pair["value"])].sort_values("budget")
        front = fronts[(model, dataset)]
        if grid == "doubling":
            costs = front["cost"].min() * 2.0 ** np.arange(len(sequential))
        else:
            costs = front["cost"].to_numpy(dtype=np.float64)
            if len(costs) > 2 and not is_doubling_costs(costs):
                uneven.append(f"{model} · {dataset}")
        value, _, k = frontier_at(front, costs)
        base = {"model": model, "dataset": dataset}
        rows.append({**base, "curve": CURVES[0], "x": sequential["budget"].to_numpy(dtype=np.float64),
                     "y": sequential["value"].to_numpy(), "doubling_grid": is_doubling(sequential["budget"].tolist()),
                     "parallel_points": 0})  # fmt: skip
        rows.append({**base, "curve": CURVES[1], "x": costs, "y": value,
                     "doubling_grid": grid == "doubling" or is_doubling_costs(costs),
                     "parallel_points": int((k > 1).sum())})  # fmt: skip
    if uneven:
        warnings.warn(
            f"frontier scored on measured costs that are not a doubling grid: {'; '.join(uneven)}. Emergence scores "
            "count steps between points, so they are comparable only on doubling grids: use grid='doubling'.",
            TtscaleWarning,
            stacklevel=2,
        )
    return _scored(rows, n_sim=n_sim, seed=seed)


# Where a score is a location on x, and how it follows a change of units x → scale·x (log2 x → log2 x + log2 scale)
SCALED = ("jump_budget", "breakpoint_budget", "sigmoid_midpoint_budget")
SHIFTED = ("breakpoint", "sigmoid_midpoint")


def _scored(rows: list[dict], *, n_sim: int, seed: int) -> pd.DataFrame:
    """Score the curves of `rows` (x, y arrays) together where their x are one grid up to a factor (every doubling
    grid is 2ʲ times its first point): scores, fits and p-values depend on log2 x only through its differences, so
    each grid is scored as x / x₀ and its locations are put back in its units. A curve with fewer than two finite
    points gets NaN scores."""
    scores: list[dict] = [{} for _ in rows]
    by_grid: dict[tuple, list[int]] = {}
    for i, row in enumerate(rows):
        if np.isfinite(row["y"]).sum() >= 2 and np.isfinite(row["y"]).all():
            by_grid.setdefault(tuple(np.round(row["x"] / row["x"][0], 9)), []).append(i)
    for grid, members in by_grid.items():
        Y = np.vstack([rows[i]["y"] for i in members])
        block = score_curves(Y, np.asarray(grid), n_sim=n_sim, seed=seed)
        for j, i in enumerate(members):
            scale = float(rows[i]["x"][0])
            scores[i] = {name: float(v[j]) * (scale if name in SCALED else 1.0)
                         + (np.log2(scale) if name in SHIFTED else 0.0) for name, v in block.items()}  # fmt: skip
    kept = ("model", "dataset", "curve", "doubling_grid", "parallel_points")
    return pd.DataFrame(
        [{**{c: r[c] for c in kept}, "n_points": int(np.isfinite(r["y"]).sum()), "x": r["x"].tolist(), **s}
         for r, s in zip(rows, scores, strict=True)]
    )  # fmt: skip


def answer(sequential: pd.Series, front: pd.Series, score: str = "breakthroughness", alpha: float = 0.05) -> str:
    """The sentence that answers METHOD.md §6b's question for one (model, dataset): is a jump along k = 1 still a jump
    on the frontier, or does parallel sampling at smaller budgets fill it in? From the two rows of `frontier_scores`
    (a jump is significant when p_<score> < alpha; a falling curve's fall counts as its jump)."""
    seq, fro = _described(sequential, score), _described(front, score)
    parallel, points = int(front["parallel_points"]), int(front["n_points"])
    mix = f" Parallel points (k > 1) make {parallel} of the frontier's {points} points."
    p_seq, p_front = _p(sequential, score), _p(front, score)
    if sequential.get("direction", 0) < 0:
        return f"Along k = 1 the curve falls ({seq}); the frontier keeps the best point at or below each cost, so it " \
               f"cannot fall ({fro})." + mix  # fmt: skip
    if not np.isfinite(p_seq) or not np.isfinite(p_front):
        return f"No test of a jump: along k = 1 {seq}; on the frontier {fro}." + mix
    if p_seq < alpha and p_front < alpha:
        verdict = f"The jump along k = 1 ({seq}) is still a jump on the frontier ({fro}): parallel sampling at " \
                  "smaller budgets does not fill it in."  # fmt: skip
    elif p_seq < alpha:
        verdict = f"The jump along k = 1 ({seq}) is not one on the frontier ({fro}): parallel sampling at smaller " \
                  "budgets fills it in."  # fmt: skip
    elif p_front < alpha:
        verdict = f"No significant jump along k = 1 ({seq}), but the frontier jumps ({fro})."
    else:
        verdict = f"Neither k = 1 ({seq}) nor the frontier ({fro}) jumps significantly (α = {alpha})."
    return verdict + mix


def _p(row: pd.Series, score: str) -> float:
    """p_<score> of a row of `frontier_scores`; a flat curve has no jump (1.0)."""
    return 1.0 if row.get("signed_range", np.nan) == 0 else float(row.get(f"p_{score}", np.nan))


def _described(row: pd.Series, score: str) -> str:
    """ "breakthroughness 0.82, p = 0.004", or why a curve has no score (flat, too few points)."""
    if row.get("n_points", 0) < 2:
        return f"{row.get('n_points', 0)} point(s), too few to score"
    if row.get("signed_range", np.nan) == 0:
        return "flat"
    p = row.get(f"p_{score}", np.nan)
    fall = ", falling" if row.get("direction", 0) < 0 else ""
    return f"{score} {row.get(score, np.nan):.2f}{fall}, p = {p:.3g}" if np.isfinite(p) else \
        f"{score} {row.get(score, np.nan):.2f}{fall}, no p-value"  # fmt: skip


def with_answers(scores: pd.DataFrame, score: str = "breakthroughness") -> pd.DataFrame:
    """`frontier_scores` with the column `answer`: `answer`'s sentence on each frontier row (None on k = 1 rows)."""
    out = scores.assign(answer=None)
    for (_, _), pair in scores.groupby(list(DATASET_KEYS), sort=False):
        sequential, front = pair[pair["curve"] == CURVES[0]], pair[pair["curve"] == CURVES[1]]
        if len(sequential) and len(front):
            out.loc[front.index[0], "answer"] = answer(sequential.iloc[0], front.iloc[0], score)
    return out
