"""Linear, hinge and sigmoid fits of curves in x = log2 B, compared by Gaussian BIC (METHOD.md §6).

All fits are least squares, vectorised over curves: Y is (N, n), N curves on one budget grid x (n,).

    linear   y = a + b·x                                   k = 2
    hinge    y = a + b·x + c·(x − τ)₊                      k = 4 (a, b, c, τ); τ on a grid, ≥ 2 points each side
    sigmoid  y = lo + (hi − lo) / (1 + e^(−s(x − x0)))     k = 4; width = 2·ln 9 / s ≈ 4.39 / s

    BIC = n·ln(RSS/n) + k·ln(n)  (Schwarz 1978, Gaussian errors with unknown variance)

The hinge and sigmoid are linear in their other parameters once τ (or x0, s) is fixed, so each is a grid
search over the nonlinear parameter(s) with closed-form least squares at every grid point; the sigmoid's
best grid point is then polished to convergence by a bounded Levenberg–Marquardt in (x0, log s) with lo/hi
in closed form (variable projection), vectorised over curves.

RSS floor: an RSS below RSS_FLOOR × the curve's total sum of squares about its mean (plus 1e-300) is
raised to that floor before taking logs, so a perfect or flat fit gives a finite BIC. A flat curve therefore
gets ΔBIC = 2·ln n (no evidence for a break) and NaN locations (breakpoint, width, midpoint).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.special import expit

SIGMOID_WIDTH_FACTOR = 2.0 * math.log(9.0)  # logistic 10%→90% rise spans ln(0.9/0.1)·2 / s in x (log2 units)
HINGE_STEP = 0.25  # log2 units (a quarter octave) between candidate breakpoints τ
SIGMOID_X0_STEP = 0.25  # grid step of the midpoint x0, as a fraction of the smallest budget spacing
SIGMOID_N_WIDTHS = 24  # log-spaced widths from half the smallest spacing to twice the x-range
SIGMOID_X0_RATE_STEP = 0.5  # finest x0 step of a grid row, in units of its 1/s
SIGMOID_MAX_ITER = 100  # Levenberg–Marquardt rounds after the grid, at most
SIGMOID_RTOL = 1e-10  # a curve has converged when a step lowers its RSS by less than this fraction of its TSS
LM_START_LAMBDA, LM_DOWN, LM_UP, LM_MAX_LAMBDA = 1e-3, 3.0, 4.0, 1e8  # Marquardt damping schedule
RSS_FLOOR = 1e-12  # fraction of a curve's total sum of squares (dimensionless)
CHUNK_ELEMENTS = 1 << 22  # float64 elements per temporary (N_chunk × grid) array: 32 MiB
FIT_COLUMNS = (
    "delta_bic_hinge",
    "breakpoint",
    "breakpoint_budget",
    "delta_bic_sigmoid",
    "sigmoid_width",
    "sigmoid_midpoint",
    "sigmoid_midpoint_budget",
)


def bic(rss: np.ndarray, n: int, k: int) -> np.ndarray:
    """Gaussian BIC = n·ln(RSS/n) + k·ln(n) (Schwarz 1978); pass RSS already floored."""
    return n * np.log(rss / n) + k * math.log(n)


def _chunks(N: int, per_curve: int) -> list[slice]:
    """Slices of ≤ CHUNK_ELEMENTS / per_curve curves, to bound temporaries."""
    size = max(1, CHUNK_ELEMENTS // max(per_curve, 1))
    return [slice(i, min(i + size, N)) for i in range(0, N, size)]


def _centred(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Yc, ȳ, TSS): curves about their means (N, n), means (N,), total sums of squares (N,)."""
    mean = Y.mean(axis=1)
    Yc = Y - mean[:, None]
    return Yc, mean, np.einsum("ij,ij->i", Yc, Yc)


def _floor(rss: np.ndarray, tss: np.ndarray) -> np.ndarray:
    return np.maximum(rss, RSS_FLOOR * tss + 1e-300)


def fit_linear(Y: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
    """Ordinary least squares y = a + b·x per curve: intercept, slope, rss. (N,) each."""
    Yc, mean, _ = _centred(np.asarray(Y, dtype=np.float64))
    xc = x - x.mean()  # (n,)
    slope = Yc @ xc / (xc @ xc)
    residual = Yc - slope[:, None] * xc[None, :]  # (N, n), summed directly: no cancellation on exact lines
    rss = np.einsum("ij,ij->i", residual, residual)
    return {"intercept": mean - slope * x.mean(), "slope": slope, "rss": rss}


def hinge_grid(x: np.ndarray, step: float = HINGE_STEP) -> np.ndarray:
    """Breakpoints τ from x_2 up to (not including) x_{n−1}: ≥ 2 points with x ≤ τ and ≥ 2 with x > τ."""
    if len(x) < 4:
        return np.empty(0)
    return np.arange(x[1], x[-2] - 1e-9, step)


def fit_hinge(Y: np.ndarray, x: np.ndarray, *, step: float = HINGE_STEP) -> dict[str, np.ndarray]:
    """Hinge y = a + b·x + c·(x − τ)₊: the τ of least RSS on `hinge_grid`, closed form per τ. (N,) each.

    For each τ the residual maker R_τ = I − X_τ X_τ⁺ (n, n) gives RSS_τ(y) = yᵀ R_τ y for all curves at once.
    Returns tau, a, b, c, rss; NaN for all when n < 4.
    """
    Y = np.asarray(Y, dtype=np.float64)
    taus = hinge_grid(x, step)  # (T,)
    N, n = Y.shape
    if len(taus) == 0:
        return {name: np.full(N, np.nan) for name in ("tau", "a", "b", "c", "rss")}
    X = np.stack([np.broadcast_to(np.ones(n), (len(taus), n)), np.broadcast_to(x, (len(taus), n))], axis=2)
    X = np.concatenate([X, np.maximum(x[None, :] - taus[:, None], 0.0)[:, :, None]], axis=2)  # (T, n, 3)
    X_pinv = np.linalg.pinv(X)  # (T, 3, n)
    R = np.eye(n)[None] - X @ X_pinv  # (T, n, n)
    R_flat = R.transpose(1, 0, 2).reshape(n, len(taus) * n)  # (n, T·n)
    best, rss, coef = np.empty(N, dtype=np.int64), np.empty(N), np.empty((N, 3))  # coef: a, b, c
    for sl in _chunks(N, len(taus) * n):
        rss_t = np.einsum("itj,ij->it", (Y[sl] @ R_flat).reshape(-1, len(taus), n), Y[sl])  # (N_chunk, T)
        best[sl] = rss_t.argmin(axis=1)
        rss[sl] = np.maximum(rss_t[np.arange(len(rss_t)), best[sl]], 0.0)
        coef[sl] = np.einsum("ikj,ij->ik", X_pinv[best[sl]], Y[sl])
    return {"tau": taus[best], "a": coef[:, 0], "b": coef[:, 1], "c": coef[:, 2], "rss": rss}


def sigmoid_grid(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (x0, log s) search box: x0 in [x_1, x_n], widths from half the smallest spacing to twice the range.

    Returns x0 values (A,) and log-rate values (W,), each evenly spaced; their product is the grid.
    """
    spacing = np.diff(x).min()
    x0 = np.arange(x[0], x[-1] + 1e-9, SIGMOID_X0_STEP * spacing)
    widths = np.geomspace(spacing / 2.0, 2.0 * (x[-1] - x[0]), SIGMOID_N_WIDTHS)
    return x0, np.log(SIGMOID_WIDTH_FACTOR / widths)[::-1]


def _logistic(x: np.ndarray, x0: np.ndarray, log_s: np.ndarray) -> np.ndarray:
    """g = 1 / (1 + e^(−s(x − x0))) per curve: x (n,), x0 and log s (N,) → (N, n)."""
    return expit(np.exp(log_s)[:, None] * (x[None, :] - x0[:, None]))


def _sigmoid_ls(Yc: np.ndarray, tss: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form lo/hi for per-curve logistic columns g (N, n): (rss, amplitude hi − lo). (N,), (N,)

    The RSS is summed from the residuals (not TSS − projection), so it stays accurate on near-perfect fits.
    """
    gc = g - g.mean(axis=1, keepdims=True)
    s_gg = np.einsum("ij,ij->i", gc, gc)
    s_yg = np.einsum("ij,ij->i", Yc, gc)
    ok = s_gg > 1e-12
    amplitude = np.where(ok, s_yg / np.where(ok, s_gg, 1.0), 0.0)
    residual = Yc - amplitude[:, None] * gc
    return np.einsum("ij,ij->i", residual, residual), amplitude


def sigmoid_starts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starting points (x0, log s) in the `sigmoid_grid` box, flattened: (K,), (K,).

    Each log-rate row of `sigmoid_grid` gets evenly spaced x0 values, the grid's x0 step apart or
    SIGMOID_X0_RATE_STEP / s apart if that is finer: a steep logistic moves over 1/s in x0, so a coarse row
    could step over the best steep fit (a jump between two budgets).
    """
    x0s, log_s = sigmoid_grid(x)
    span = x0s[-1] - x0s[0]
    base = SIGMOID_X0_STEP * np.diff(x).min()
    counts = [math.ceil(span / min(base, SIGMOID_X0_RATE_STEP / math.exp(u)) - 1e-9) + 1 for u in log_s]
    x0 = np.concatenate([np.linspace(x0s[0], x0s[-1], c) for c in counts])
    return x0, np.repeat(log_s, counts)


def _sigmoid_grid_search(Yc: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best (x0, log s) per curve over `sigmoid_starts` by projection on centred logistic columns. (N,), (N,)"""
    X0, LS = sigmoid_starts(x)  # (K,)
    G = expit(np.exp(LS)[None, :] * (x[:, None] - X0[None, :]))  # (n, K)
    Gc = G - G.mean(axis=0)
    Q = Gc / np.sqrt(np.maximum((Gc**2).sum(axis=0), 1e-300))  # (n, K) unit columns
    best = np.empty(Yc.shape[0], dtype=np.int64)
    for sl in _chunks(Yc.shape[0], len(X0)):
        best[sl] = np.abs(Yc[sl] @ Q).argmax(axis=1)  # largest projection = least RSS
    return X0[best], LS[best]


def _lm_step(
    Yc: np.ndarray, x: np.ndarray, theta: np.ndarray, lam: np.ndarray, box: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """One Levenberg–Marquardt proposal for θ = (x0, log s) (N, 2), bounded to `box` = (lower (2,), upper (2,)).

    Variable projection (Golub & Pereyra 1973, Kaufman's 1975 Jacobian): lo and hi are least squares for each
    θ, so the residual is r = P⊥y, P⊥ projecting off span{1, g}, and its Jacobian is J = −A·P⊥ ∂g/∂θ (N, n, 2),
    A = hi − lo, with ∂g/∂x0 = −s·g(1 − g) and ∂g/∂log s = s·(x − x0)·g(1 − g). The step solves
    (JᵀJ + λ·diag JᵀJ) δ = −Jᵀr; a coordinate on its bound whose descent points out of the box is held
    (δ = 0 there). Returns θ + δ clipped to the box.
    """
    x0, log_s = theta[:, 0], theta[:, 1]
    g = _logistic(x, x0, log_s)  # (N, n)
    gc = g - g.mean(axis=1, keepdims=True)
    s_gg = np.maximum(np.einsum("ij,ij->i", gc, gc), 1e-300)
    amplitude = np.einsum("ij,ij->i", Yc, gc) / s_gg
    r = Yc - amplitude[:, None] * gc  # (N, n), orthogonal to 1 and g
    slope = (amplitude * np.exp(log_s))[:, None] * g * (1.0 - g)  # A·s·g(1 − g)
    J = np.stack([slope, -slope * (x[None, :] - x0[:, None])], axis=2)  # (N, n, 2) = −A·∂g/∂θ
    J -= J.mean(axis=1, keepdims=True)  # P⊥: off 1 …
    J -= np.einsum("nik,ni->nk", J, gc)[:, None, :] * (gc / s_gg[:, None])[:, :, None]  # … and off g (⟂ 1)
    JtJ = np.einsum("nik,nil->nkl", J, J)  # (N, 2, 2)
    descent = -np.einsum("nik,ni->nk", J, r)  # (N, 2)
    lower, upper = box
    free = ~(((theta <= lower) & (descent < 0.0)) | ((theta >= upper) & (descent > 0.0)))  # (N, 2)
    return np.clip(theta + _damped_solve(JtJ, descent, lam, free), lower, upper)


def _damped_solve(JtJ: np.ndarray, rhs: np.ndarray, lam: np.ndarray, free: np.ndarray) -> np.ndarray:
    """δ solving (JᵀJ + λ·diag JᵀJ) δ = rhs per curve, by Cramer's rule, with δ = 0 where `free` is False. (N, 2)"""
    a = JtJ[:, 0, 0] * (1.0 + lam) + 1e-300
    d = JtJ[:, 1, 1] * (1.0 + lam) + 1e-300
    b = np.where(free.all(axis=1), JtJ[:, 0, 1], 0.0)  # a held coordinate decouples from the other
    r0, r1 = np.where(free, rhs, 0.0).T
    det = a * d - b * b
    return np.stack([(d * r0 - b * r1) / det, (a * r1 - b * r0) / det], axis=1)


def _polish(
    Yc: np.ndarray, tss: np.ndarray, x: np.ndarray, x0: np.ndarray, log_s: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bounded Levenberg–Marquardt (`_lm_step`) from each curve's grid point, inside the `sigmoid_grid` box.

    A step is kept only if it lowers the RSS (then λ ÷ LM_DOWN, else λ × LM_UP), so the RSS never rises. A
    curve stops once a kept step lowers its RSS by at most SIGMOID_RTOL × TSS, or λ passes LM_MAX_LAMBDA (no
    step helps: a minimum, possibly on the box's edge); at most SIGMOID_MAX_ITER rounds, each computing only
    the curves still moving. Returns x0, log s, rss. (N,) each.
    """
    x0s, log_ss = sigmoid_grid(x)
    box = (np.array([x0s[0], log_ss[0]]), np.array([x0s[-1], log_ss[-1]]))
    theta = np.stack([x0, log_s], axis=1)  # (N, 2)
    rss, _ = _sigmoid_ls(Yc, tss, _logistic(x, x0, log_s))
    lam = np.full(len(Yc), LM_START_LAMBDA)
    active = np.flatnonzero(tss > 0.0)
    for _ in range(SIGMOID_MAX_ITER):
        if len(active) == 0:
            break
        proposal = _lm_step(Yc[active], x, theta[active], lam[active], box)
        new_rss, _ = _sigmoid_ls(Yc[active], tss[active], _logistic(x, proposal[:, 0], proposal[:, 1]))
        better = new_rss < rss[active]
        gain = np.where(better, rss[active] - new_rss, 0.0)
        theta[active] = np.where(better[:, None], proposal, theta[active])
        rss[active] = np.minimum(new_rss, rss[active])
        lam[active] = np.where(better, lam[active] / LM_DOWN, lam[active] * LM_UP)
        done = (better & (gain <= SIGMOID_RTOL * tss[active])) | (lam[active] > LM_MAX_LAMBDA)
        active = active[~done]
    return theta[:, 0], theta[:, 1], rss


def fit_sigmoid(Y: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
    """Logistic y = lo + (hi − lo)/(1 + e^(−s(x − x0))), s > 0 (hi < lo for a falling curve). (N,) each.

    Grid over (x0, log s) (`sigmoid_starts`) with lo/hi by least squares, then a bounded Levenberg–Marquardt
    polish from the best grid point (`_polish`), both inside the `sigmoid_grid` box. Widths below half the
    smallest budget spacing cannot be told apart (a step between two budgets): the fit stops at that bound.
    Returns lo, hi, x0, s, width, rss; NaN for all when n < 5 (4 parameters need at least 5 points).
    """
    Y = np.asarray(Y, dtype=np.float64)
    N, n = Y.shape
    if n < 5:
        return {name: np.full(N, np.nan) for name in ("lo", "hi", "x0", "s", "width", "rss")}
    Yc, mean, tss = _centred(Y)
    x0, log_s, rss = _polish(Yc, tss, x, *_sigmoid_grid_search(Yc, x))
    g = _logistic(x, x0, log_s)  # (N, n)
    _, amplitude = _sigmoid_ls(Yc, tss, g)
    lo = mean - amplitude * g.mean(axis=1)
    s = np.exp(log_s)
    return {"lo": lo, "hi": lo + amplitude, "x0": x0, "s": s, "width": SIGMOID_WIDTH_FACTOR / s, "rss": rss}


def per_distinct_curve(
    compute: Callable[[np.ndarray], dict[str, np.ndarray]], Y: np.ndarray
) -> dict[str, np.ndarray]:
    """`compute` (a per-row function of Y (N, n) → columns of (N,)) on the distinct rows of Y only, spread back.

    Curves of a discrete metric repeat (accuracy over 8 seeds and 8 budgets: 15,600 problem curves, 3,662
    distinct), and a curve's fits do not depend on the others, so this gives the same numbers for less work."""
    if len(Y) < 2:
        return compute(Y)
    distinct, inverse = np.unique(Y, axis=0, return_inverse=True)
    if len(distinct) > 0.8 * len(Y):
        return compute(Y)
    return {name: v[inverse.ravel()] for name, v in compute(distinct).items()}


def fit_curves(Y: np.ndarray, budgets: np.ndarray) -> dict[str, np.ndarray]:
    """FIT_COLUMNS for each curve of Y (N, n) on `budgets` (n,): ΔBIC vs linear, breakpoint, sigmoid shape.

    delta_bic_* = BIC(model) − BIC(linear) is descriptive: negative when the fit beats the line by more than
    its extra parameters cost under BIC, which on noisy straight lines happens often with few budgets
    (ΔBIC_hinge < −2 on 57% of them at 4 budgets, 21% at 8: bench/null_delta_bic.py). Judge a break by its
    p-value (significance.p_values) instead. Locations are in log2 budget (breakpoint, sigmoid_midpoint) and
    as budgets (2^τ, 2^x0); NaN for a flat curve.
    """
    Y = np.asarray(Y, dtype=np.float64)
    x = np.log2(np.asarray(budgets, dtype=np.float64))
    n = len(x)
    if n < 4:  # neither the hinge (2 points each side of τ) nor the sigmoid can be fitted
        return {name: np.full(Y.shape[0], np.nan) for name in FIT_COLUMNS}
    _, _, tss = _centred(Y)
    rss_linear = _floor(fit_linear(Y, x)["rss"], tss)
    hinge, sigmoid = fit_hinge(Y - Y.mean(axis=1, keepdims=True), x), fit_sigmoid(Y, x)  # centred: less rounding
    flat = np.where(tss > 0.0, 1.0, np.nan)  # multiplies locations: NaN where the curve is flat
    return {
        "delta_bic_hinge": bic(_floor(hinge["rss"], tss), n, 4) - bic(rss_linear, n, 2),
        "breakpoint": hinge["tau"] * flat,
        "breakpoint_budget": 2.0 ** hinge["tau"] * flat,
        "delta_bic_sigmoid": bic(_floor(sigmoid["rss"], tss), n, 4) - bic(rss_linear, n, 2),
        "sigmoid_width": sigmoid["width"] * flat,
        "sigmoid_midpoint": sigmoid["x0"] * flat,
        "sigmoid_midpoint_budget": 2.0 ** sigmoid["x0"] * flat,
    }
