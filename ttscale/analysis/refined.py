"""The report's view of refined budget grids: the budgets `ttscale refine` added, and the jump before and after.

A refined (model, dataset) has budgets its manifest records `refine` adding, or beyond the shared grid (the
budgets every pair has). Its dataset curve is shown on its grid before (without those budgets) and after (its own
finer grid); the jump — the interval of the largest rise — narrows when the new budgets fall inside it.
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
    "model", "dataset", "metric", "budgets_added", "n_budgets_before", "n_budgets_after", "jump_before",
    "jump_after", "jump_size_before", "jump_size_after", "breakthroughness_before", "breakthroughness_after",
]  # fmt: skip


def jump_interval(grid: tuple[int, ...], jump_budget: float) -> str:
    """ "lo–hi": the grid budgets around the largest rise (jump_budget is the budget right after it); "" if none."""
    if not np.isfinite(jump_budget) or int(jump_budget) not in grid or grid.index(int(jump_budget)) == 0:
        return ""
    hi = int(jump_budget)
    return f"{grid[grid.index(hi) - 1]}–{hi}"


def refined_table(results: Results, metrics: list[str]) -> pd.DataFrame:
    """One row per refined (model, dataset) and metric: the budgets added, and the dataset curve's jump interval,
    jump size and breakthroughness on its grid before and after refining."""
    out = []
    grids = results.grids()
    for (model, dataset), added in results.refined_pairs().items():
        after_grid = grids[model, dataset]
        before_grid = tuple(b for b in after_grid if b not in added)
        before_results = results.on_grid(before_grid)
        for metric in metrics:
            after, before = (_pair(r.emergence(metric, level="dataset"), model, dataset)
                             for r in (results, before_results))  # fmt: skip
            if after.empty or before.empty:
                continue
            a, b = after.iloc[0], before.iloc[0]
            out.append({
                "model": model, "dataset": dataset, "metric": metric, "budgets_added": ", ".join(map(str, added)),
                "n_budgets_before": int(b.n_budgets), "n_budgets_after": int(a.n_budgets),
                "jump_before": jump_interval(before_grid, b.jump_budget),
                "jump_after": jump_interval(after_grid, a.jump_budget),
                "jump_size_before": b.jump_size, "jump_size_after": a.jump_size,
                "breakthroughness_before": b.breakthroughness, "breakthroughness_after": a.breakthroughness,
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
