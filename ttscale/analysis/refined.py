"""The report's view of refined budget grids: the budgets `ttscale refine` added, and where the jump lies before and
after.

A refined (model, dataset) has budgets beyond its scoring grid (`Results.refined_pairs`): they change no score (the
scores use the doubling budgets, METHOD.md §6) and locate the jump. Its dataset curve is shown on its doubling grid
(before) and on every budget (after); the jump interval — the neighbouring budgets between which the curve
changes most per unit of log2 B — narrows when the new budgets fall inside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

if TYPE_CHECKING:
    from ttscale.analysis.results import Results

REFINED_COLUMNS = [
    "model", "dataset", "metric", "budgets_added", "n_budgets_scored", "n_budgets_located", "jump_before",
    "jump_after", "jump_slope_before", "jump_slope_after", "breakthroughness", "jump_size",
]  # fmt: skip


def interval_text(lo: float, hi: float) -> str:
    """ "lo–hi" for a located jump interval; "" when there is none (a flat curve)."""
    return f"{int(lo)}–{int(hi)}" if np.isfinite(lo) and np.isfinite(hi) else ""


def refined_table(results: Results, metrics: list[str]) -> pd.DataFrame:
    """One row per refined (model, dataset) and metric: the budgets added, the dataset curve's jump interval and
    slope (per unit of log2 B) on its doubling grid (before) and on every budget (after), and its scores (the
    same on both: they use the doubling budgets)."""
    out = []
    for (model, dataset), added in results.refined_pairs().items():
        before_results = results.on_grid(results.scoring_grids()[model, dataset].budgets)
        for metric in metrics:
            after, before = (_pair(r.emergence(metric, level="dataset"), model, dataset)
                             for r in (results, before_results))  # fmt: skip
            if after.empty or before.empty:
                continue
            a, b = after.iloc[0], before.iloc[0]
            out.append({
                "model": model, "dataset": dataset, "metric": metric, "budgets_added": ", ".join(map(str, added)),
                "n_budgets_scored": int(a.n_budgets), "n_budgets_located": int(a.n_budgets) + len(added),
                "jump_before": interval_text(b.jump_interval_lo, b.jump_interval_hi),
                "jump_after": interval_text(a.jump_interval_lo, a.jump_interval_hi),
                "jump_slope_before": b.jump_slope, "jump_slope_after": a.jump_slope,
                "breakthroughness": a.breakthroughness, "jump_size": a.jump_size,
            })  # fmt: skip
    return pd.DataFrame(out, columns=REFINED_COLUMNS)


def _pair(table: pd.DataFrame, model: str, dataset: str) -> pd.DataFrame:
    return table[(table.model == model) & (table.dataset == dataset)]


def fig_refined(results: Results, metric: str, label: str) -> go.Figure | None:
    """Per refined (model, dataset): the dataset curve on its grid before refining (dashed) and after (solid), the
    added budgets ringed. None when no grid was refined."""
    refined = results.refined_pairs()
    if not refined:
        return None
    own = results.curves(metric)
    pairs = sorted(refined)
    fig = make_subplots(rows=1, cols=len(pairs), subplot_titles=[f"{m} · {d}" for m, d in pairs], shared_yaxes=True)
    for c, (model, dataset) in enumerate(pairs, start=1):
        o = own[(own.model == model) & (own.dataset == dataset)].sort_values("budget")
        s = o[~o.budget.isin(refined[model, dataset])]  # a point's mean does not depend on the other budgets
        new = o[o.budget.isin(refined[model, dataset])]
        first = c == 1
        traces = [
            _points(s, "before refining", first, mode="lines+markers", line=dict(dash="dash", color="#888")),
            _points(o, "after refining", first, mode="lines+markers", line=dict(color="#1f77b4")),
            _points(new, "added by refine", first, mode="markers",
                    marker=dict(size=13, symbol="circle-open", line=dict(width=2), color="#d62728")),
        ]  # fmt: skip
        for trace in traces:
            fig.add_trace(trace, 1, c)
        ticks = sorted(int(b) for b in o.budget)
        fig.update_xaxes(tickvals=np.log2(ticks), ticktext=[str(b) for b in ticks], row=1, col=c,
                         title_text="budget (tokens, log2)")  # fmt: skip
    fig.update_yaxes(title_text=label, col=1)
    fig.update_layout(height=380, title=f"{label}: dataset curves before and after refining")
    return fig


def _points(curve: pd.DataFrame, name: str, first: bool, **style) -> go.Scatter:
    """One trace of a curve (budget, value) on the log2 axis; hover gives the budget in tokens."""
    return go.Scatter(
        x=np.log2(curve.budget), y=curve.value, name=name, legendgroup=name, showlegend=first,
        customdata=curve.budget, hovertemplate="B=%{customdata}<br>%{y:.3f}<extra>" + name + "</extra>", **style,
    )  # fmt: skip
