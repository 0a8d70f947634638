"""The report's "Sequential vs parallel compute" section (METHOD.md §6b): its figure and its table of answers."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ttscale.analysis.frontier import CURVES, PARALLEL_METRICS

SEQUENTIAL_COLOR, FRONTIER_COLOR, FIXED_BUDGET_COLOR = "#1f77b4", "#d62728", "#9a9a9a"


def _pairs(points: pd.DataFrame) -> tuple[list[str], list[str]]:
    return sorted(points["dataset"].unique()), sorted(points["model"].unique())


def fig_compute(points: pd.DataFrame, steps: pd.DataFrame, metric: str, labels: dict[str, str]) -> go.Figure:
    """Rows: datasets, columns: models. Each panel: `metric` against cost (log2) along k = 1 (the budget grows), along
    each budget with k growing (grey), and the compute frontier (a step line); hover gives B, k, cost and the band."""
    datasets, models = _pairs(points)
    titles = [f"{labels.get(d, d)} · {m}" for d in datasets for m in models]
    fig = make_subplots(rows=max(len(datasets), 1), cols=max(len(models), 1), subplot_titles=titles or None,
                        horizontal_spacing=0.06, vertical_spacing=0.1)  # fmt: skip
    name = PARALLEL_METRICS[metric]
    hover = f"B=%{{customdata[0]}}, k=%{{customdata[1]}}<br>cost %{{customdata[2]:.0f}} tokens<br>{name}=%{{y:.3f}}"
    traces, where = [], []  # added at once: plotly checks a figure's layout on every add_trace
    for r, dataset in enumerate(datasets, start=1):
        for c, model in enumerate(models, start=1):
            pair = points[(points["dataset"] == dataset) & (points["model"] == model)]
            front = steps[(steps["dataset"] == dataset) & (steps["model"] == model)]
            first = r == 1 and c == 1
            fixed = _with_gaps(pair.sort_values(["budget", "k"]), "budget")  # one trace: a line per budget
            sequential = pair[pair["k"] == 1].sort_values("budget")
            traces += [
                _line(fixed, "one B, k growing", hover, first, color=FIXED_BUDGET_COLOR, width=1, group="fixed"),
                _line(sequential, "k = 1 (thinking longer)", hover, first, color=SEQUENTIAL_COLOR, width=2,
                      group="sequential", band=True),
                _line(front, "frontier", hover, first, color=FRONTIER_COLOR, width=2, group="frontier", shape="hv"),
            ]  # fmt: skip
            where += [(r, c)] * 3
    if traces:
        fig.add_traces(traces, rows=[r for r, _ in where], cols=[c for _, c in where])
    fig.update_xaxes(title_text="cost (tokens per problem, log2)", type="log", dtick=np.log10(2))
    fig.update_yaxes(title_text=name)
    fig.update_annotations(font_size=12)
    title = f"{name} against compute: thinking longer (k = 1), sampling more (k), and the frontier"
    fig.update_layout(height=300 * max(len(datasets), 1) + 80, title=title)
    return fig


def _with_gaps(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """The rows of `frame` with a NaN row after each run of equal `by`: plotly breaks the line there, so one trace
    draws many lines (hundreds of traces make the page slow to build and to draw)."""
    if frame.empty:
        return frame
    ends = np.flatnonzero(np.r_[frame[by].to_numpy()[1:] != frame[by].to_numpy()[:-1], True])
    gaps = pd.DataFrame(np.nan, index=ends + 0.5, columns=frame.columns)
    return pd.concat([frame.set_axis(np.arange(len(frame), dtype=float)), gaps]).sort_index()


def _line(frame: pd.DataFrame, name: str, hover: str, legend: bool, *, color: str, width: float, group: str,
          band: bool = False, shape: str = "linear") -> dict:  # fmt: skip
    """One trace over cost, as a plain dict of numpy arrays (plotly checks it once); `band` adds the bootstrap band
    as error bars."""
    value = frame["value"].to_numpy(dtype=np.float64)
    custom = np.stack([frame["budget"], frame["k"], frame["cost"]], axis=1).astype(np.float64) if len(frame) else None
    errors = None
    if band:
        hi, lo = frame["hi"].to_numpy(dtype=np.float64), frame["lo"].to_numpy(dtype=np.float64)
        errors = dict(type="data", symmetric=False, array=hi - value, arrayminus=value - lo, thickness=1, width=0)
    return dict(
        type="scatter", x=frame["cost"].to_numpy(dtype=np.float64), y=value, name=name, legendgroup=group,
        showlegend=legend, customdata=custom, mode="lines+markers" if group != "fixed" else "lines",
        line=dict(color=color, width=width, shape=shape), error_y=errors, hovertemplate=hover + "<extra></extra>",
    )  # fmt: skip


def compute_html(scores: pd.DataFrame, labels: dict[str, str], score: str) -> str:
    """Per (model, dataset): the sentence answering §6b, and both curves' score and p-value, as an HTML table."""
    if scores.empty:
        return ""
    rows = []
    for (model, dataset), pair in scores.groupby(["model", "dataset"], sort=True):
        by_curve = {r["curve"]: r for r in pair.to_dict("records")}
        cells = [html.escape(str(model)), f"<span title='{html.escape(str(dataset))}'>"
                 f"{html.escape(labels.get(dataset, dataset))}</span>"]  # fmt: skip
        for curve in CURVES:
            r = by_curve.get(curve, {})
            cells.append(f"{_num(r.get(score))} (p = {_num(r.get(f'p_{score}'))})")
        cells.append(html.escape(str(by_curve.get(CURVES[1], {}).get("answer") or "")))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = ["model", "dataset", f"{score} along k = 1 (log2 B)", f"{score} on the frontier (log2 cost)", "answer"]
    return (
        f"<table id='compute-answers'><tr>{''.join(f'<th>{html.escape(h)}</th>' for h in head)}</tr>"
        f"{''.join(rows)}</table>"
    )


def _num(x) -> str:
    return f"{x:.3g}" if x is not None and np.isfinite(x) else "–"
