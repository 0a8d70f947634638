"""The report's plotly figures: curves, score distributions, top-k problems, thinking tokens, correlation, size."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ttscale.analysis.report.names import CONTINUOUS, DISCRETE, TOKENS, dataset_labels, distinct, label
from ttscale.analysis.report.tables import incomplete_curves
from ttscale.analysis.results import model_table

if TYPE_CHECKING:
    from ttscale.analysis.results import Results

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f"]


def _x(budgets) -> np.ndarray:
    return np.log2(np.asarray(budgets, dtype=float))


def _budget_axis(fig: go.Figure, budgets, **where) -> None:
    ticks = [int(b) for b in np.unique(np.asarray(budgets, dtype=np.int64))]
    fig.update_xaxes(tickvals=_x(ticks), ticktext=[str(b) for b in ticks], title_text="budget (tokens, log2)", **where)


def _colors(models) -> dict[str, str]:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(sorted(distinct(models)))}


def fig_curves(curves: pd.DataFrame, metrics: list[str], labels: dict[str, str] | None = None) -> go.Figure:
    """Rows: datasets. Columns: `metrics` (accuracy, pass@k, continuous, thinking tokens). One line per model.

    A (dataset, metric) without values (e.g. p_correct without a solution set) gets no panel; titles use the
    short `labels` of `dataset_labels`, hover text the full dataset name and the problems behind each point.
    """
    labels = labels or dataset_labels(curves.dataset)
    datasets = sorted(curves.dataset.unique())
    present = _present_panels(curves)
    specs = [[{} if (d, m) in present else None for m in metrics] for d in datasets]
    fig = make_subplots(
        rows=max(len(datasets), 1), cols=max(len(metrics), 1), shared_xaxes=True, horizontal_spacing=0.05,
        vertical_spacing=0.08, specs=specs or None,
        subplot_titles=[f"{labels[d]} · {label(m)}" for d in datasets for m in metrics if (d, m) in present],
    )  # fmt: skip
    colors = _colors(curves.model)
    shown = set()  # models already in the legend
    traces, where = [], []  # added at once: plotly checks a figure's layout on every add_trace
    for r, dataset in enumerate(datasets, start=1):
        for c, metric in enumerate(metrics, start=1):
            if (dataset, metric) not in present:
                continue
            sel = curves[(curves.dataset == dataset) & (curves.metric == metric)]
            for model, g in sel.groupby("model", observed=True):
                g = g.sort_values("budget")
                x = _x(g.budget)
                band = dict(type="scatter", legendgroup=model, showlegend=False, hoverinfo="skip",
                            line=dict(width=0))  # fmt: skip
                traces += [  # plain dicts of numpy arrays: plotly checks each trace once, not per pandas column
                    dict(x=x, y=g.hi.to_numpy(), name=f"{model} 95% band", mode="lines", **band),
                    dict(x=x, y=g.lo.to_numpy(), name=f"{model} 95% band", mode="lines", fill="tonexty",
                         fillcolor=_alpha(colors[model], 0.18), **band),
                    dict(type="scatter", x=x, y=g.value.to_numpy(), name=model, mode="lines+markers",
                         legendgroup=model, showlegend=model not in shown, line=dict(color=colors[model]),
                         customdata=np.stack([g.budget, g.n_problems], axis=1),
                         hovertemplate=f"{model}<br>{html.escape(str(dataset))}<br>B=%{{customdata[0]}}<br>"
                         f"{label(metric)}=%{{y:.3f}} over %{{customdata[1]}} problems<extra></extra>"),
                ]  # fmt: skip
                where += [(r, c)] * 3
                shown.add(model)
    if traces:
        fig.add_traces(traces, rows=[r for r, _ in where], cols=[c for _, c in where])
    _budget_axis(fig, curves.budget)
    if TOKENS in metrics:  # forced thinking tokens follow the budget: a straight line on log–log axes
        fig.update_yaxes(type="log", col=metrics.index(TOKENS) + 1)
    fig.update_annotations(font_size=12)
    fig.update_layout(height=280 * len(datasets) + 80, title="Dataset curves: mean over problems, 95% bootstrap bands")
    return fig


def _present_panels(curves: pd.DataFrame) -> set[tuple[str, str]]:
    """The (dataset, metric) pairs with at least one finite value in the curves table."""
    finite = curves[np.isfinite(curves.value.to_numpy(dtype=np.float64))]
    return set(zip(finite.dataset, finite.metric, strict=True))


def missing_panels(curves: pd.DataFrame, metrics: list[str]) -> dict[str, list[str]]:
    """dataset → the metrics of `metrics` it has no values for (their panels are left out), in figure order."""
    present = _present_panels(curves)
    missing = {d: [m for m in metrics if (d, m) not in present] for d in sorted(curves.dataset.unique())}
    return {d: ms for d, ms in missing.items() if ms}


def box_stats(df: pd.DataFrame, by: list[str], column: str) -> pd.DataFrame:
    """Quartiles and 1.5·IQR fences per group, so box plots of a million rows embed a few numbers each."""
    g = df[[*by, column]].dropna().groupby(by)[column]
    stats = g.quantile([0.25, 0.5, 0.75]).unstack().rename(columns={0.25: "q1", 0.5: "median", 0.75: "q3"})
    stats = stats.join(g.min().rename("min")).join(g.max().rename("max")).join(g.mean().rename("mean"))
    iqr = stats.q3 - stats.q1
    stats["lowerfence"] = np.maximum(stats["min"], stats.q1 - 1.5 * iqr)
    stats["upperfence"] = np.minimum(stats["max"], stats.q3 + 1.5 * iqr)
    return stats.reset_index()


def _box(stats: pd.DataFrame, x: str, name: str, color: str, showlegend: bool = True) -> go.Box:
    return go.Box(
        x=stats[x].astype(str), q1=stats.q1, median=stats["median"], q3=stats.q3, mean=stats["mean"],
        lowerfence=stats.lowerfence, upperfence=stats.upperfence, name=name, legendgroup=name,
        marker_color=color, showlegend=showlegend,
    )  # fmt: skip


def fig_scores(
    per_problem: pd.DataFrame, per_dataset: pd.DataFrame, score: str, labels: dict[str, str] | None = None
) -> go.Figure:
    """Problem-level score distributions per model and dataset, discrete and continuous side by side.

    ±inf scores cannot be drawn, and incomplete problem curves (a budget of their grid missing) score on fewer
    points: both are left out, and each panel's title says how many were.
    """
    labels = labels or dataset_labels([*per_problem.dataset, *per_dataset.dataset])
    metrics = list(dict.fromkeys(per_problem.metric))
    titles = [f"{score} of {label(m)} curves{_left_out(per_problem, per_dataset, m, score)}" for m in metrics]
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=titles)
    colors = _colors(per_problem.dataset)
    for c, metric in enumerate(metrics, start=1):
        sel = per_problem[(per_problem.metric == metric) & _drawn(per_problem, score)]
        for dataset, g in sel.groupby("dataset"):
            fig.add_trace(_box(box_stats(g, ["model"], score), "model", labels[dataset], colors[dataset], c == 1), 1, c)
        agg = per_dataset[(per_dataset.metric == metric) & np.isfinite(per_dataset[score])]
        fig.add_trace(
            go.Scatter(x=agg.model, y=agg[score], mode="markers", name="dataset curve", legendgroup="dataset curve",
                       showlegend=c == 1, marker=dict(symbol="diamond", size=11, color="black"),
                       text=agg.dataset, hovertemplate="%{text}: %{y:.3f}<extra>dataset curve</extra>"), 1, c,
        )  # fmt: skip
    fig.update_layout(boxmode="group", height=460, title=f"{score}: per problem (boxes) and per dataset (diamonds)")
    return fig


def _drawn(table: pd.DataFrame, score: str) -> np.ndarray:
    """Rows fig_scores draws: curves that are not incomplete, with a finite score. (N,) bool"""
    return ~incomplete_curves(table) & np.isfinite(table[score].to_numpy(dtype=np.float64))


def _left_out(per_problem: pd.DataFrame, per_dataset: pd.DataFrame, metric: str, score: str) -> str:
    """The title suffix of one fig_scores panel: " · N ±inf left out" (problem and dataset curves) and
    " · M incomplete left out" (problem curves); "" if none."""
    problems = per_problem[per_problem.metric == metric]
    incomplete = incomplete_curves(problems)
    values = np.concatenate(
        [problems.loc[~incomplete, score].to_numpy(dtype=np.float64),
         per_dataset.loc[per_dataset.metric == metric, score].to_numpy(dtype=np.float64)]
    )  # fmt: skip
    n_inf, n_incomplete = int(np.isinf(values).sum()), int(incomplete.sum())
    return (f" · {n_inf} ±inf left out" if n_inf else "") + (
        f" · {n_incomplete} incomplete left out" if n_incomplete else ""
    )


def fig_top_k(
    results: Results, top: pd.DataFrame, metric: str, score: str, labels: dict[str, str] | None = None
) -> go.Figure:
    """Small multiples of the top-k problems' curves; hovering a point shows the forced answers there.

    Each title gives the rank, problem, dataset label, model, the p-value of the ranking score and the effect size.
    """
    labels = labels or dataset_labels(results.rows.dataset)
    n = max(len(top), 1)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    titles = [
        f"#{i + 1} {t.problem_id} · {labels[t.dataset]}<br>{t.model}{_p_text(t, score)}"
        for i, t in enumerate(top.itertuples())
    ]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles or ["no problem curves"], shared_yaxes=True)
    values = {m: results.problem_values(m) for m in dict.fromkeys([DISCRETE, metric])}
    for i, t in enumerate(top.itertuples()):
        r, c = divmod(i, cols)
        answers = _answers_by_budget(results, t.model, t.dataset, t.problem_id)
        for m, color in zip(values, ("#d62728", "#1f77b4"), strict=False):
            v = values[m]
            g = v[(v.model == t.model) & (v.dataset == t.dataset) & (v.problem_id == t.problem_id)].sort_values(
                "budget"
            )
            text = [answers.get(int(b), "") for b in g.budget]
            fig.add_trace(
                go.Scatter(x=_x(g.budget), y=g.value, mode="lines+markers", name=label(m), legendgroup=m,
                           showlegend=i == 0, line=dict(color=color), text=text,
                           hovertemplate="B=%{x}<br>%{y:.3f}<br>answers: %{text}<extra>" + label(m) + "</extra>"),
                r + 1, c + 1,
            )  # fmt: skip
    _budget_axis(fig, results.rows.budget)
    fig.update_annotations(font_size=11)
    fig.update_layout(height=280 * rows + 80, title="Most emergent problems (hover: forced answers by seed)")
    return fig


def _p_text(row, score: str) -> str:
    """ " · p=0.004 · I=+0.27" for a top-k row: the p-value of the ranking score (when it has one) and the
    curve's change I(y), its effect size (when the row has it)."""
    p = getattr(row, f"p_{score}", None)
    change = getattr(row, "signed_range", None)
    text = f" · p={p:.2g}" if p is not None and np.isfinite(p) else ""
    return text + (f" · I={change:+.3g}" if change is not None and np.isfinite(change) else "")


def fig_thinking_tokens(rows: pd.DataFrame) -> go.Figure:
    """Real thinking tokens per budget: forcing must give exactly B unless the model ended on its own."""
    fig = go.Figure()
    colors = _colors(rows.model)
    stats = box_stats(rows, ["model", "budget"], "thinking_tokens")
    for model, g in stats.groupby("model"):
        fig.add_trace(_box(g.sort_values("budget"), "budget", model, colors[model]))
    budgets = sorted(int(b) for b in rows.budget.unique())
    fig.add_trace(
        go.Scatter(x=[str(b) for b in budgets], y=budgets, mode="markers", name="budget B",
                   marker=dict(symbol="line-ew-open", size=30, color="black")),
    )  # fmt: skip
    fig.update_layout(
        boxmode="group", height=420, yaxis_type="log", xaxis_title="budget", yaxis_title="thinking tokens"
    )
    return fig


def fig_correlation(results: Results, metric: str) -> go.Figure:
    """Left: dataset curves, accuracy against the continuous metric. Right: per-problem curve correlations."""
    titles = [f"dataset curves: accuracy vs {label(metric)}", f"per-problem r of accuracy and {label(metric)}"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles)
    acc, cont = results.curves(DISCRETE), results.curves(metric)
    both = acc.merge(cont, on=["model", "dataset", "budget"], suffixes=("_acc", "_cont"))
    colors = _colors(both.model)
    for model, g in both.groupby("model"):
        fig.add_trace(
            go.Scatter(x=g.value_cont, y=g.value_acc, mode="markers", name=model, marker=dict(color=colors[model]),
                       text=[f"{d} B={b}" for d, b in zip(g.dataset, g.budget, strict=True)],
                       hovertemplate="%{text}<br>%{x:.3f} → acc %{y:.3f}<extra></extra>"), 1, 1,
        )  # fmt: skip
    r = per_problem_correlation(results, metric)
    for model, g in r.groupby("model"):
        fig.add_trace(
            go.Histogram(x=g.r, name=f"{model} r", marker_color=colors.get(model), opacity=0.6, nbinsx=20), 1, 2
        )
    fig.update_layout(barmode="overlay", height=420)
    fig.update_xaxes(title_text=label(metric), row=1, col=1)
    fig.update_yaxes(title_text="accuracy", row=1, col=1)
    return fig


def per_problem_correlation(results: Results, metric: str) -> pd.DataFrame:
    """Pearson r between each problem's accuracy curve and its `metric` curve (NaN for flat curves)."""
    keys = ["model", "dataset", "problem_id"]
    both = results.problem_values(DISCRETE).merge(results.problem_values(metric), on=[*keys, "budget"])
    a = both.pivot_table(index=keys, columns="budget", values="value_x")
    b = both.pivot_table(index=keys, columns="budget", values="value_y").reindex(a.index)
    A, B = a.to_numpy() - a.to_numpy().mean(1, keepdims=True), b.to_numpy() - b.to_numpy().mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (A * B).sum(1) / np.sqrt((A**2).sum(1) * (B**2).sum(1))
    return a.index.to_frame(index=False).assign(r=r)


def fig_size(
    rows: pd.DataFrame, per_dataset: pd.DataFrame, score: str, labels: dict[str, str] | None = None
) -> go.Figure:
    """Dataset-level emergence against parameter count, one line per family and dataset (named by its label)."""
    labels = labels or dataset_labels(rows.dataset)
    models = model_table(rows)
    data = per_dataset.merge(models, on="model")
    titles = [f"{score} of discrete metrics (accuracy, pass@k)", f"{score} of continuous metrics"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles)
    for c, continuous in enumerate((False, True), start=1):
        sel = data[data.metric.isin(CONTINUOUS) == continuous]
        sel = sel[~np.isinf(sel[score])]  # ±inf cannot be drawn; the scores section counts them
        for (family, dataset, metric), g in sel.groupby(["family", "dataset", "metric"]):
            g = g.sort_values("params_b")
            fig.add_trace(
                go.Scatter(x=g.params_b, y=g[score], mode="lines+markers",
                           name=f"{family} · {labels[dataset]} · {label(metric)}", text=g.model,
                           hovertemplate="%{text}<br>%{x} B params<br>%{y:.3f}<extra></extra>"), 1, c,
            )  # fmt: skip
    fig.update_xaxes(type="log", title_text="parameters (billions)")
    fig.update_layout(height=420)
    return fig


def _answers_by_budget(results: Results, model: str, dataset: str, problem_id: str) -> dict[int, str]:
    a = results.answers(model, dataset, problem_id)
    return {int(b): ", ".join(short_answer(x) for x in g.answer) for b, g in a.groupby("budget")}


def short_answer(answer) -> str:
    return "∅" if answer is None or (isinstance(answer, float) and np.isnan(answer)) else str(answer)[:24]


def _alpha(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
