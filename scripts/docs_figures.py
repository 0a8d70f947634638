"""Render the report's figures from a results directory as PNGs for docs/analysis.md (and, after `ttscale
refine`, its before/after figure for the README).

Needs `pip install kaleido` and a Chrome/Chromium (e.g. Debian's `chromium`); not a runtime dependency.

    python scripts/docs_figures.py results/demo docs/img
"""

from __future__ import annotations

import sys
from pathlib import Path

from ttscale.analysis import Results
from ttscale.analysis.report import DISCRETE, curve_metrics, fig_curves, fig_scores, fig_thinking_tokens
from ttscale.analysis.values import default_pass_k


def main(results_dir: str, out: str) -> None:
    r = Results.open(results_dir)
    metrics = curve_metrics(r.rows, default_pass_k(r.rows))
    import pandas as pd

    curves = pd.concat([r.curves(m).assign(metric=m) for m in metrics], ignore_index=True)
    per_problem = pd.concat(
        [r.emergence(m, level="problem").assign(metric=m) for m in (DISCRETE, "p_correct")], ignore_index=True
    )
    scored = [m for m in metrics if m != "thinking_tokens"]
    per_dataset = pd.concat([r.emergence(m, level="dataset").assign(metric=m) for m in scored], ignore_index=True)
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    figures = {
        "demo-curves": fig_curves(curves, metrics),
        "demo-thinking-tokens": fig_thinking_tokens(r.rows),
        "demo-scores": fig_scores(per_problem, per_dataset, "breakthroughness"),
    }
    if r.refined_pairs():  # after `ttscale refine`: the refined grid before and after (README, docs/sweeps.md)
        from ttscale.analysis.refined import fig_refined

        figures["demo-refined"] = fig_refined(r, "p_correct", "p(correct)")
    for name, fig in figures.items():
        fig.write_image(target / f"{name}.png", width=1300, height=fig.layout.height or 450, scale=1)
        print(target / f"{name}.png")


if __name__ == "__main__":
    main(*sys.argv[1:3])
