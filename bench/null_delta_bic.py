"""How often ΔBIC favours a hinge or a sigmoid on noisy straight lines, against the p-values, at 4–8 budgets.

Null curves: y = b·x + σ·ε over budgets 2^7, 2^8, … (x = log2 B), ε ~ N(0, 1), σ = 1. ΔBIC(hinge − linear) does
not depend on the line (the hinge contains it), ΔBIC(sigmoid − linear) does, so the sigmoid rows are printed
for several slopes b (in units of σ per octave). For each number of budgets this prints

    P(ΔBIC < −2)        how often ΔBIC "positively" favours the break (Kass & Raftery 1995's threshold)
    P(ΔBIC < 0)         how often its sign alone favours it
    P(p < 0.05)         how often the parametric-bootstrap p-value of the same statistic is below 0.05

The rates of the last column should be ≈ 0.05 (the p-value is calibrated); the first two are what a reader
of ΔBIC alone would be misled by. docs/analysis.md ("How to read ΔBIC against the p-values") quotes them.

    python bench/null_delta_bic.py [--curves 20000] [--n-sim 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ttscale.analysis.fits import fit_curves
from ttscale.analysis.significance import p_values

BUDGET_COUNTS = (4, 5, 6, 7, 8)
SLOPES = (0.0, 0.5, 2.0)  # b/σ per octave, for the sigmoid (the hinge's rates do not depend on it)


def null_curves(rng: np.random.Generator, n_budgets: int, n_curves: int, slope: float) -> tuple[np.ndarray, np.ndarray]:
    """(budgets (n,), Y (N, n)): straight lines of the given slope in x = log2 B plus unit Gaussian noise."""
    x = np.arange(7.0, 7.0 + n_budgets)
    return (2**x).astype(np.int64), slope * (x - x.mean()) + rng.standard_normal((n_curves, n_budgets))


def rates(Y: np.ndarray, budgets: np.ndarray, name: str, n_sim: int, seed: int) -> tuple[float, float, float]:
    """P(ΔBIC < −2), P(ΔBIC < 0) and P(p < 0.05) of one ΔBIC column over the curves Y."""
    delta = fit_curves(Y, budgets)[name]
    p = p_values(Y, budgets, n_sim=n_sim, seed=seed, method="interpolated")[f"p_{name}"]
    return float(np.mean(delta < -2.0)), float(np.mean(delta < 0.0)), float(np.mean(p < 0.05))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=int, default=20_000)
    parser.add_argument("--n-sim", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    print(f"{args.curves:,} noisy straight lines per row; p-values from {args.n_sim} simulations (interpolated null)")
    print(f"{'fit':<8} {'slope/σ':>7} {'budgets':>7} {'P(ΔBIC<−2)':>11} {'P(ΔBIC<0)':>10} {'P(p<0.05)':>10}")
    for name, slopes in (("delta_bic_hinge", (0.0,)), ("delta_bic_sigmoid", SLOPES)):
        for slope in slopes:
            for n in BUDGET_COUNTS if name == "delta_bic_hinge" else BUDGET_COUNTS[1:]:  # a sigmoid needs 5
                budgets, Y = null_curves(rng, n, args.curves, slope)
                below2, below0, small_p = rates(Y, budgets, name, args.n_sim, args.seed)
                fit = name.removeprefix("delta_bic_")
                print(f"{fit:<8} {slope:>7.1f} {n:>7} {below2:>11.3f} {below0:>10.3f} {small_p:>10.3f}", flush=True)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
