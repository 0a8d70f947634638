"""Parametric-bootstrap p-values of the emergence scores against the smooth linear null (METHOD.md §6).

Null model (per curve, x = log2 B): y = a + b·x + σ·ε, ε ~ N(0, I). The simulated curves keep the observed
least-squares line â + b̂·x and replace its residuals by Gaussian noise projected onto the residual space
(orthogonal to 1 and x) and rescaled to the observed residual sum of squares. This is the parametric
bootstrap conditioned on the null's sufficient statistics (â, b̂, RSS): given them, the observed curve and
the simulated ones are exchangeable, so p is exactly uniform under the null for every score (a Monte-Carlo
conditional or "rotation" test, Langsrud 2005, Statistics and Computing 15:53). The plain plug-in version
(noise of sd σ̂ taken as the truth) gave strongly non-uniform, humped p-values for linearity and jump size,
whose values are tied to b̂/σ̂. Each score is recomputed on n_sim simulated curves and

    p = (1 + #{t_null ≥ t_obs}) / (1 + #{t_null not NaN})          (North, Curtis & Sham 2002, AJHG 71:439)

for an *oriented* statistic t (larger = more emergent), computed the same way on observed and simulated
curves. With s = sign I(y) the curve's own direction (+1 rising, −1 falling):

    breakthroughness, breakthroughness_bigbench, skewness, skewness_weighted   t = s · score
    linearity_bigbench                                                           t = −s · score
    jump_size                        t = max_i s·Δ_i  (for a falling curve: the largest drop)
    delta_bic_hinge, delta_bic_sigmoid, sigmoid_width                            t = −score

so a sudden drop in a falling curve counts like a sudden rise in a rising one. Locations (jump_budget,
breakpoint, sigmoid_midpoint) get no p-value: they have no emergent direction. Ties count against the
curve (≥), so a statistic with mass at a bound (sigmoid_width at the edge of its grid) is conservative.

Reduction. Every score is unchanged by y → y + const and either unchanged or multiplied by α under y → α·y
(α > 0). So the comparison is the same on ỹ = (y − ȳ)/σ̂, σ̂ = sqrt(RSS/(n − 2)), against ρ·x̃ + e with
x̃ = (x − x̄)/sd(x), ρ = b̂·sd(x)/σ̂ and e the rescaled residual noise (|e|² = n − 2): the null depends on a
curve only through ρ, and (mirroring y → −y) only through |ρ|. Two methods:

- "per_curve": simulate ρ_c·x̃ + e for each curve c, with its own noise (cost N·n_sim curves, chunked).
- "interpolated": simulate on RHO_NODES values of |ρ| (evenly spaced in asinh|ρ|, up to RHO_MAX, cost
  RHO_NODES·n_sim whatever N); a curve between two nodes is tested against the null whose quantiles are
  interpolated linearly in asinh|ρ| between theirs (displacement interpolation: exact when the null just
  shifts with ρ, as the jump size's does); |ρ| > RHO_MAX uses the last node (noise under 1e-4 of the
  trend). Each node has its own noise, but curves near one node share its null sample, so their p-values
  are dependent (each is still valid).
- "auto" (default): per_curve when N·n_sim ≤ PER_CURVE_MAX_SIMS, else interpolated.

Degenerate curves: n < 3 budgets (no residual space) give NaN; a curve that is a line to rounding (σ̂ ≤
1e-9 × its range, flat curves included) is its own null: p = 1 wherever the statistic is defined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ttscale.analysis.fits import fit_curves, fit_linear, per_distinct_curve
from ttscale.analysis.scores import curve_scores, direction, oriented_jump

# score -> (direction, kind): kind "signed" is oriented by s = sign I(y), "unsigned" is not, "jump" is max s·Δ
ORIENTATION: dict[str, tuple[float, str]] = {
    "breakthroughness": (1.0, "signed"),
    "breakthroughness_bigbench": (1.0, "signed"),
    "linearity_bigbench": (-1.0, "signed"),
    "skewness": (1.0, "signed"),
    "skewness_weighted": (1.0, "signed"),
    "jump_size": (1.0, "jump"),
    "delta_bic_hinge": (-1.0, "unsigned"),
    "delta_bic_sigmoid": (-1.0, "unsigned"),
    "sigmoid_width": (-1.0, "unsigned"),
}
P_COLUMNS = tuple(f"p_{name}" for name in ORIENTATION)
METHODS = ("auto", "per_curve", "interpolated")
RHO_NODES = 81  # nodes of |ρ| (slope over noise, in standard deviations of x) for the interpolated null
RHO_MAX = 1e4  # the last node: beyond it noise is negligible against the trend
PER_CURVE_MAX_SIMS = 200_000  # "auto" simulates per curve up to this many simulated curves (N · n_sim)
SIM_CHUNK = 100_000  # simulated curves scored at once (bounds memory to ~100 MiB of temporaries)
LINE_TOLERANCE = 1e-9  # σ̂ below this fraction of a curve's range: the curve is a line to rounding


def oriented_statistics(Y: np.ndarray, budgets: np.ndarray) -> dict[str, np.ndarray]:
    """t for every score of ORIENTATION, per curve of Y (N, n); larger = more emergent. (N,) each."""
    scores = {**curve_scores(Y, budgets), **fit_curves(Y, budgets)}
    s = direction(Y) if Y.shape[1] else np.full(len(Y), np.nan)  # a flat curve has no direction
    jump = oriented_jump(Y)
    return {name: orient(name, scores[name], s, jump) for name in ORIENTATION}


def orient(name: str, score: np.ndarray, s: np.ndarray, jump: np.ndarray) -> np.ndarray:
    """The oriented statistic t of ORIENTATION[name] from the raw score, the direction s and max s·Δ. (N,)"""
    sign, kind = ORIENTATION[name]
    if kind == "jump":
        return np.asarray(jump, dtype=np.float64)
    return sign * np.asarray(score, dtype=np.float64) * (s if kind == "signed" else 1.0)


def _standardise(Y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ỹ, ρ, line): curves in units of σ̂ about their mean (N, n), ρ = b̂·sd(x)/σ̂ (N,), exact-line mask (N,)."""
    linear = fit_linear(Y, x)
    sigma = np.sqrt(linear["rss"] / (len(x) - 2))
    line = sigma <= LINE_TOLERANCE * (Y.max(axis=1) - Y.min(axis=1))
    safe = np.where(line, 1.0, sigma)
    return (Y - Y.mean(axis=1, keepdims=True)) / safe[:, None], linear["slope"] * x.std() / safe, line


def _p_from_null(t: np.ndarray, null: np.ndarray) -> np.ndarray:
    """p = (1 + #{null ≥ t}) / (1 + #{null not NaN}) per row: t (c,), null (c, n_sim) → (c,)."""
    count = (null >= t[:, None]).sum(axis=1)  # NaN compares False
    valid = (~np.isnan(null)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isnan(t) | (valid == 0), np.nan, (1.0 + count) / (1.0 + valid))


def residual_noise(rng: np.random.Generator, shape: tuple[int, ...], x_std: np.ndarray) -> np.ndarray:
    """Gaussian noise (..., n) projected off span{1, x̃} and rescaled to |e|² = n − 2 (see the module docstring)."""
    n = len(x_std)
    e = rng.standard_normal((*shape, n))
    e -= e.mean(axis=-1, keepdims=True)
    e -= (e @ x_std)[..., None] * x_std / (x_std @ x_std)  # x̃ has mean 0: the two projections commute
    return e * np.sqrt((n - 2) / np.einsum("...i,...i->...", e, e))[..., None]


def _p_per_curve(
    t_obs: dict, rho: np.ndarray, x_std: np.ndarray, rng: np.random.Generator, n_sim: int, budgets: np.ndarray
) -> dict[str, np.ndarray]:
    """Simulate ρ_c·x̃ + e with fresh noise e for every curve c, in chunks of curves."""
    p = {name: np.empty(len(rho)) for name in ORIENTATION}
    step = max(1, SIM_CHUNK // n_sim)
    for start in range(0, len(rho), step):
        sl = slice(start, start + step)
        e = residual_noise(rng, (len(rho[sl]), n_sim), x_std)  # (c, n_sim, n)
        t_null = oriented_statistics((rho[sl, None, None] * x_std + e).reshape(-1, len(x_std)), budgets)
        for name in ORIENTATION:
            p[name][sl] = _p_from_null(t_obs[name][sl], t_null[name].reshape(-1, n_sim))
    return p


def _null_at_nodes(
    nodes: np.ndarray, x_std: np.ndarray, rng: np.random.Generator, n_sim: int, budgets: np.ndarray
) -> dict[str, np.ndarray]:
    """Null statistics at each |ρ| node, with fresh noise per node: name → (K, n_sim)."""
    n = len(x_std)
    null = {name: np.empty((len(nodes), n_sim)) for name in ORIENTATION}
    step = max(1, SIM_CHUNK // n_sim)
    for start in range(0, len(nodes), step):
        sl = slice(start, start + step)
        sims = nodes[sl, None, None] * x_std + residual_noise(rng, (len(nodes[sl]), n_sim), x_std)  # (k, n_sim, n)
        t_null = oriented_statistics(sims.reshape(-1, n), budgets)
        for name in ORIENTATION:
            null[name][sl] = t_null[name].reshape(-1, n_sim)
    return null


def _quantiles(null_k: np.ndarray, L: int) -> np.ndarray:
    """The sorted non-NaN null sample of one node, resampled to L quantiles if NaNs shortened it. (L,)"""
    v = np.sort(null_k[~np.isnan(null_k)])
    if len(v) in (0, L):
        return v
    return np.quantile(v, (np.arange(L) + 0.5) / L, method="inverted_cdf")


def _p_between(t: np.ndarray, w: np.ndarray, q_left: np.ndarray, q_right: np.ndarray) -> np.ndarray:
    """p of t (c,) against the null whose quantiles are interpolated, (1 − w)·q_left + w·q_right. (c,)"""
    if len(q_left) == 0 or len(q_left) != len(q_right):
        return np.full(len(t), np.nan)
    w = w[:, None]
    with np.errstate(invalid="ignore"):  # 0·inf in the branch np.where discards
        q = np.where(w == 0.0, q_left, np.where(w == 1.0, q_right, (1.0 - w) * q_left + w * q_right))  # (c, L)
    count = (q >= t[:, None]).sum(axis=1)
    return np.where(np.isnan(t), np.nan, (1.0 + count) / (1.0 + q.shape[1]))


def _interpolation_null(rng_key: tuple, n_sim: int, budgets: tuple) -> dict[str, list[np.ndarray]]:
    """The null's sorted samples at every |ρ| node, name → K arrays: simulated once per (seed, budgets, n_sim), since
    they depend on nothing else (every metric's problem curves on one grid share them). Read-only."""
    key = (rng_key, n_sim, budgets)
    if key not in _NULL_CACHE:
        if len(_NULL_CACHE) >= NULL_CACHE_SIZE:
            _NULL_CACHE.pop(next(iter(_NULL_CACHE)))
        x = np.log2(np.asarray(budgets, dtype=np.float64))
        du = math.asinh(RHO_MAX) / (RHO_NODES - 1)
        rng = np.random.default_rng(list(rng_key))
        null = _null_at_nodes(np.sinh(du * np.arange(RHO_NODES)), (x - x.mean()) / x.std(), rng, n_sim,
                              np.asarray(budgets, dtype=np.float64))  # fmt: skip
        _NULL_CACHE[key] = {name: [_quantiles(v, n_sim) for v in null[name]] for name in ORIENTATION}
    return _NULL_CACHE[key]


_NULL_CACHE: dict[tuple, dict[str, list[np.ndarray]]] = {}
NULL_CACHE_SIZE = 8  # budget grids whose interpolation null is kept (~81 × 200 floats per score each)


def _p_interpolated(
    t_obs: dict, rho: np.ndarray, rng_key: tuple, n_sim: int, budgets: np.ndarray
) -> dict[str, np.ndarray]:
    """p against the null interpolated between the two |ρ| nodes around each curve (see the module docstring)."""
    du = math.asinh(RHO_MAX) / (RHO_NODES - 1)
    null_quantiles = _interpolation_null(rng_key, n_sim, tuple(budgets.tolist()))
    u = np.minimum(np.arcsinh(np.abs(rho)) / du, RHO_NODES - 1.0)  # (N,) position in node units
    k = np.minimum(np.floor(u).astype(np.int64), RHO_NODES - 2)  # left node
    w = u - k  # weight of the right node, in [0, 1]
    p = {name: np.full(len(rho), np.nan) for name in ORIENTATION}
    for name in ORIENTATION:
        quantiles = null_quantiles[name]  # K sorted samples
        for j in np.unique(k):
            for rows in np.array_split(np.flatnonzero(k == j), max(1, (k == j).sum() * n_sim // SIM_CHUNK)):
                p[name][rows] = _p_between(t_obs[name][rows], w[rows], quantiles[j], quantiles[j + 1])
    return p


def p_values(
    Y: np.ndarray, budgets: Sequence[int] | np.ndarray, *, n_sim: int = 1000, seed: int = 0, method: str = "auto"
) -> dict[str, np.ndarray]:
    """One-sided parametric-bootstrap p-value of every score in ORIENTATION, per curve of Y (N, n).

    Returns P_COLUMNS → (N,) arrays. Deterministic given `seed`, the budget grid and the curves' order: the
    noise comes from default_rng([seed, *budgets]). See the module docstring for the null and the methods.
    """
    if n_sim < 1 or method not in METHODS:
        raise ValueError(f"need n_sim >= 1 and method in {METHODS}, got n_sim={n_sim}, method={method!r}")
    Y, budgets = np.asarray(Y, dtype=np.float64), np.asarray(budgets, dtype=np.float64)  # costs are not integers
    N, n = Y.shape
    if n < 3 or N == 0:
        return {f"p_{name}": np.full(N, np.nan) for name in ORIENTATION}
    x = np.log2(budgets)
    Y_std, rho, line = _standardise(Y, x)
    t_obs = per_distinct_curve(lambda curves: oriented_statistics(curves, budgets), Y_std)
    if method == "auto":
        method = "per_curve" if N * n_sim <= PER_CURVE_MAX_SIMS else "interpolated"
    rng_key = (seed, *np.round(budgets).astype(np.int64).tolist())  # integer budgets: as before
    if method == "per_curve":
        p = _p_per_curve(t_obs, rho, (x - x.mean()) / x.std(), np.random.default_rng(list(rng_key)), n_sim, budgets)
    else:
        p = _p_interpolated(t_obs, rho, rng_key, n_sim, budgets)
    return {f"p_{name}": np.where(line & ~np.isnan(t_obs[name]), 1.0, p[name]) for name in ORIENTATION}
