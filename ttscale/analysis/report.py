"""The analysis report: tables as Parquet and CSV, and one self-contained HTML file of plotly figures."""

from __future__ import annotations

import html
import json
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

import ttscale
from ttscale.analysis.emergence import (
    HINGE_ALPHA,
    HINGE_MIN_BUDGETS,
    MIN_RANGE,
    RANK_ALPHA,
    RANKINGS,
    lead_columns,
    unranked,
)
from ttscale.analysis.refined import fig_refined, refined_table
from ttscale.analysis.results import model_table
from ttscale.analysis.scores import infinite_counts
from ttscale.analysis.values import default_pass_k
from ttscale.errors import ConfigError, TtscaleWarning
from ttscale.metrics import METRICS, get_metric, shown_metrics
from ttscale.store import ResultStore

if TYPE_CHECKING:
    from ttscale.analysis.results import Results

DISCRETE = "accuracy"  # the discrete metric every curve figure and fallback uses
CONTINUOUS = tuple(shown_metrics(discrete=False))  # the continuous metrics of the registry (ttscale/metrics.py)
RANKABLE = (DISCRETE, *CONTINUOUS)  # the metrics `metric=` (analyze --metric) may rank problems by
TOKENS = "thinking_tokens"
DATA_SUFFIXES = (".jsonl", ".json", ".parquet")  # local dataset files (ttscale.tasks.sources.FILE_SUFFIXES)
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f"]


def write_report(
    results: Results,
    out: Path,
    *,
    metric: str = "p_correct",
    k: int = 8,
    score: str = "breakthroughness",
    ranking: str = "reviewed",
    min_range: float = MIN_RANGE,
) -> Path:
    """Compute every table, write them (Parquet + CSV) and the HTML report into `out`.

    `metric` ranks the top-k problems and must be one of RANKABLE (else ConfigError); one with no values in
    these rows falls back to accuracy with a warning. The curves table holds accuracy, pass@k (k from
    `default_pass_k`, left out when that is 1), the continuous metrics and mean thinking tokens.
    """
    metric = _ranking_metric(results.rows, metric)
    out.mkdir(parents=True, exist_ok=True)
    pass_k = default_pass_k(results.rows)
    metrics = curve_metrics(results.rows, pass_k)
    scored = [m for m in metrics if m != TOKENS]  # thinking tokens are a check on forcing, not a score
    curves = pd.concat([results.curves(m).assign(metric=m) for m in metrics], ignore_index=True)
    compare = results.comparable()  # scores are compared on the budgets every (model, dataset) has
    per_dataset = _scores_table([compare.emergence(m, level="dataset").assign(metric=m) for m in scored], score)
    per_problem = _scores_table(
        [compare.emergence(m, level="problem").assign(metric=m) for m in dict.fromkeys([DISCRETE, metric])], score
    )
    if ranking not in RANKINGS:
        raise ConfigError(f"Got ranking {ranking!r}. Use one of: {', '.join(RANKINGS)}.")
    top = results.top_k(k, by=score, metric=metric, ranking=ranking, min_range=min_range)
    infinite = infinite_table(per_problem, per_dataset)
    unclosed = unclosed_table(results.rows)
    refined = refined_table(results, list(dict.fromkeys([metric, DISCRETE])))
    tables = {
        "curves": curves, "emergence_datasets": per_dataset, "emergence_problems": per_problem, "top_k": top,
        "infinite_counts": infinite, "unclosed": unclosed, "refined_grids": refined,
    }  # fmt: skip
    for name, table in tables.items():
        table.to_parquet(out / f"{name}.parquet", index=False)
        table.to_csv(out / f"{name}.csv", index=False)

    labels = dataset_labels(results.rows.dataset)
    scores_text = SCORES_TEXT.format(score=score) + " " + DELTA_BIC_TEXT.format(n=HINGE_MIN_BUDGETS, alpha=HINGE_ALPHA)
    sections = [
        ("curves", "Scaling curves", CURVES_TEXT + " " + _pass_k_text(pass_k), fig_curves(curves, metrics, labels)),
        ("scores", "Emergence scores", scores_text, fig_scores(per_problem, per_dataset, score, labels)),
        ("top-k", f"Top {k} most emergent problems", _topk_text(per_problem, metric, score, ranking, min_range),
         fig_top_k(results, top, metric, score, labels)),
        *([("refined", "Refined budget grids", REFINED_TEXT.format(shared=list(compare.shared_grid())),
            fig_refined(results, metric, label(metric)))] if results.refined_pairs() else []),
        ("thinking-tokens", "Real thinking tokens per budget", TOKENS_TEXT, fig_thinking_tokens(results.rows)),
        ("unclosed", "Unclosed answers", UNCLOSED_TEXT, None),
        ("correlation", "Discrete vs continuous", CORRELATION_TEXT.format(metric=label(metric)),
         fig_correlation(results, metric)),
        ("size", "Emergence against model size", SIZE_TEXT.format(score=score),
         fig_size(results.rows, per_dataset, score, labels)),
    ]  # fmt: skip
    extras = {
        "curves": _missing_panels_html(curves, metrics, labels) + _problem_counts_html(curves),
        "scores": _infinite_html(infinite, score),
        "top-k": _incomplete_html(per_problem, metric, score, k, labels) + _top_k_html(results, top, score, labels),
        "unclosed": _unclosed_html(unclosed),
        "refined": _refined_html(refined),
    }
    path = out / "report.html"
    path.write_text(_page(results, sections, extras, metrics))
    return path


def _topk_text(per_problem: pd.DataFrame, metric: str, score: str, ranking: str, min_range: float) -> str:
    """What the top-k section says: the ranked curves and how they were ordered (with the threshold)."""
    text = TOPK_TEXT.format(score=score, metric=label(metric))
    if ranking == "score":
        return text + SCORE_RANKING_TEXT.format(min_range=min_range)
    curves = per_problem[per_problem["metric"] == metric]
    return text + REVIEWED_TEXT.format(
        metric=label(metric), min_range=min_range, alpha=RANK_ALPHA, left_out=unranked(curves, min_range),
        total=int(curves["complete"].astype(bool).sum()),
    )  # fmt: skip


def _scores_table(tables: list[pd.DataFrame], score: str) -> pd.DataFrame:
    """Emergence tables of several metrics as one, led by the keys, the metric, p_<score> and <score>."""
    table = pd.concat(tables, ignore_index=True)
    keys = [c for c in ("model", "dataset", "problem_id") if c in table.columns]
    return lead_columns(table, [*keys, "metric"], score)


def _ranking_metric(rows: pd.DataFrame, metric: str) -> str:
    """`metric` if it is RANKABLE and has values here; accuracy (with a warning) if it has none."""
    if metric not in RANKABLE:
        raise ConfigError(f"Unknown metric {metric!r} for the report. Use one of: {', '.join(RANKABLE)}.")
    if metric == DISCRETE or _has(rows, metric):
        return metric
    warnings.warn(
        f"metric {metric!r} has no values in these results (no solution set?); ranking by accuracy instead.",
        TtscaleWarning,
        stacklevel=3,
    )
    return DISCRETE


def curve_metrics(rows: pd.DataFrame, pass_k: int) -> list[str]:
    """The metrics of the curves table, in figure order: accuracy, pass@k, continuous, thinking tokens.

    pass@k is left out when k is 1 (pass@1 is accuracy); a metric whose column is absent or all null is too.
    """
    discrete = [DISCRETE, *([f"pass@{pass_k}"] if pass_k >= 2 else [])]
    return [m for m in (*discrete, *CONTINUOUS, TOKENS) if _has(rows, m)]


def label(metric: str) -> str:
    """How a metric is named in the report ("pass@4" stays as it is)."""
    return METRICS[metric].label if metric in METRICS and metric != "pass@k" else metric


def dataset_labels(datasets: Iterable[str]) -> dict[str, str]:
    """Short display names of datasets: a dataset file's stem ("/home/u/data/aime_local.jsonl" → "aime_local").

    Labels that collide get their parent directories, one at a time, until they differ ("a/test", "b/test");
    names that are not file paths (registered names, hub ids) stay as they are. Tables and hover text keep
    the full name.
    """
    names = sorted({str(d) for d in datasets})
    depth = dict.fromkeys(names, 0)
    while True:
        labels = {name: _short_name(name, depth[name]) for name in names}
        counts = Counter(labels.values())
        deeper = [n for n in names if counts[labels[n]] > 1 and _short_name(n, depth[n] + 1) != labels[n]]
        if not deeper:
            return {n: labels[n] if counts[labels[n]] == 1 else n for n in names}
        for name in deeper:
            depth[name] += 1


def _short_name(name: str, parents: int) -> str:
    """A dataset file's stem after its last `parents` directories ("data/aime_local"); other names unchanged."""
    path = PurePosixPath(name.replace("\\", "/"))
    is_file = path.suffix.lower() in DATA_SUFFIXES or name.startswith(("/", "./", "../", "~"))
    if not is_file:
        return name
    stem = path.name[: -len(path.suffix)] if path.suffix.lower() in DATA_SUFFIXES else path.name
    directories = [part for part in path.parent.parts if part not in ("/", ".")]
    return "/".join([*directories[len(directories) - parents :], stem] if parents else [stem])


def _has(rows: pd.DataFrame, metric: str) -> bool:
    column = get_metric(metric).column
    return column in rows and rows[column].notna().any()


def _x(budgets) -> np.ndarray:
    return np.log2(np.asarray(budgets, dtype=float))


def _budget_axis(fig: go.Figure, budgets, **where) -> None:
    ticks = sorted(set(int(b) for b in budgets))
    fig.update_xaxes(tickvals=_x(ticks), ticktext=[str(b) for b in ticks], title_text="budget (tokens, log2)", **where)


def _colors(models) -> dict[str, str]:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(sorted(set(models)))}


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
    for r, dataset in enumerate(datasets, start=1):
        for c, metric in enumerate(metrics, start=1):
            if (dataset, metric) not in present:
                continue
            sel = curves[(curves.dataset == dataset) & (curves.metric == metric)]
            for model, g in sel.groupby("model"):
                g = g.sort_values("budget")
                x = _x(g.budget)
                band = dict(legendgroup=model, showlegend=False, hoverinfo="skip", line=dict(width=0))
                fig.add_trace(go.Scatter(x=x, y=g.hi, name=f"{model} 95% band", mode="lines", **band), r, c)
                fig.add_trace(
                    go.Scatter(x=x, y=g.lo, name=f"{model} 95% band", mode="lines", fill="tonexty",
                               fillcolor=_alpha(colors[model], 0.18), **band), r, c,
                )  # fmt: skip
                fig.add_trace(
                    go.Scatter(x=x, y=g.value, name=model, mode="lines+markers", legendgroup=model,
                               showlegend=model not in shown, line=dict(color=colors[model]),
                               customdata=np.stack([g.budget, g.n_problems], axis=1),
                               hovertemplate=f"{model}<br>{html.escape(str(dataset))}<br>B=%{{customdata[0]}}<br>"
                               f"{label(metric)}=%{{y:.3f}} over %{{customdata[1]}} problems<extra></extra>"),
                    r, c,
                )  # fmt: skip
                shown.add(model)
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


def _missing_panels_html(curves: pd.DataFrame, metrics: list[str], labels: dict[str, str]) -> str:
    """One line per dataset that lacks a metric: which, and why (no finite solution set, for the continuous ones)."""
    lines = []
    for dataset, absent in missing_panels(curves, metrics).items():
        why = (
            "it has no finite solution set, which these metrics are computed over"
            if set(absent) <= set(CONTINUOUS)
            else "its rows have no values for them"
        )
        lines.append(
            f"<li><span title='{html.escape(str(dataset))}'>{html.escape(labels[dataset])}</span>: no "
            f"{', '.join(html.escape(label(m)) for m in absent)} panel; {why}.</li>"
        )
    return f"<ul id='missing-panels'>{''.join(lines)}</ul>" if lines else ""


def _problem_counts_html(curves: pd.DataFrame) -> str:
    """A note and a table of the dataset curves whose number of problems changes from budget to budget."""
    counts = curves.groupby(["model", "dataset", "metric"], sort=True).n_problems.agg(["min", "max"]).reset_index()
    varying = counts[counts["min"] != counts["max"]]
    if varying.empty:
        return ""
    rows_html = "".join(
        f"<tr><td>{html.escape(str(r.model))}</td><td>{html.escape(str(r.dataset))}</td>"
        f"<td>{html.escape(label(r.metric))}</td><td>{r.min}–{r.max}</td></tr>"
        for r in varying.itertuples()
    )
    return (
        f"<p>{PROBLEM_COUNTS_TEXT}</p><table id='problem-counts'><tr><th>model</th><th>dataset</th><th>metric</th>"
        f"<th>problems per point</th></tr>{rows_html}</table>"
    )


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


def _incomplete(table: pd.DataFrame) -> np.ndarray:
    """Rows that are incomplete curves: some values, but not at every budget of their grid. (N,) bool

    A curve with no value at all (a metric its dataset lacks) is empty, not incomplete; a table without a
    `complete` column has no incomplete curves.
    """
    if "complete" not in table.columns:
        return np.zeros(len(table), dtype=bool)
    return ~table["complete"].to_numpy(dtype=bool) & (table["n_budgets"].to_numpy() > 0)


def _drawn(table: pd.DataFrame, score: str) -> np.ndarray:
    """Rows fig_scores draws: curves that are not incomplete, with a finite score. (N,) bool"""
    return ~_incomplete(table) & np.isfinite(table[score].to_numpy(dtype=np.float64))


def _left_out(per_problem: pd.DataFrame, per_dataset: pd.DataFrame, metric: str, score: str) -> str:
    """The title suffix of one fig_scores panel: " · N ±inf left out" (problem and dataset curves) and
    " · M incomplete left out" (problem curves); "" if none."""
    problems = per_problem[per_problem.metric == metric]
    incomplete = _incomplete(problems)
    values = np.concatenate(
        [problems.loc[~incomplete, score].to_numpy(dtype=np.float64),
         per_dataset.loc[per_dataset.metric == metric, score].to_numpy(dtype=np.float64)]
    )  # fmt: skip
    n_inf, n_incomplete = int(np.isinf(values).sum()), int(incomplete.sum())
    return (f" · {n_inf} ±inf left out" if n_inf else "") + (
        f" · {n_incomplete} incomplete left out" if n_incomplete else ""
    )


def infinite_table(per_problem: pd.DataFrame, per_dataset: pd.DataFrame) -> pd.DataFrame:
    """Curves scoring +inf and −inf, per level, metric, model, dataset and score (`scores.infinite_counts`).

    Columns: level ("problem" | "dataset"), metric, model, dataset, score, curves (how many curves the group
    has), +inf, -inf. Every score of SCORE_COLUMNS has a row, zeros included, so absence means "not scored".
    """
    keys = ["metric", "model", "dataset"]
    frames = []
    for level, table in (("problem", per_problem), ("dataset", per_dataset)):
        counts = infinite_counts(table, by=keys).reset_index()
        sizes = table.groupby(keys, sort=False, observed=True).size().rename("curves").reset_index()
        frames.append(counts.merge(sizes, on=keys).assign(level=level))
    columns = ["level", *keys, "score", "curves", "+inf", "-inf"]
    return pd.concat(frames, ignore_index=True)[columns]


def _infinite_html(infinite: pd.DataFrame, score: str) -> str:
    """A note and a small table: how many curves scored ±inf, summed over models and datasets."""
    shown = infinite[(infinite.score == "breakthroughness_bigbench") | (infinite.score == score)]
    summary = shown.groupby(["level", "metric", "score"], sort=False)[["curves", "+inf", "-inf"]].sum()
    rows_html = "".join(
        f"<tr><td>{level}</td><td>{html.escape(label(metric))}</td><td>{name}</td><td>{curves}</td>"
        f"<td>{pos}</td><td>{neg}</td></tr>"
        for (level, metric, name), (curves, pos, neg) in zip(summary.index, summary.to_numpy(), strict=True)
    )
    return (
        f"<p>{INFINITE_TEXT}</p><table id='infinite-counts'><tr><th>level</th><th>metric</th><th>score</th>"
        f"<th>curves</th><th>+inf</th><th>−inf</th></tr>{rows_html}</table>"
    )


def _pass_k_text(pass_k: int) -> str:
    """The sentence saying which pass@k the curves show, and why that k."""
    if pass_k < 2:
        return "There is no pass@k panel: some points ran a single seed, and pass@1 is accuracy."
    return (
        f"pass@{pass_k} is the unbiased estimate of the chance that at least one of {pass_k} seeds is right; "
        f"k = {pass_k} is the fewest seeds any (problem, budget) ran, the largest k every point can estimate."
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
    return {int(b): ", ".join(_short(x) for x in g.answer) for b, g in a.groupby("budget")}


def _short(answer) -> str:
    return "∅" if answer is None or (isinstance(answer, float) and np.isnan(answer)) else str(answer)[:24]


def _top_k_html(results: Results, top: pd.DataFrame, score: str, labels: dict[str, str]) -> str:
    """A table per top problem: answers, correctness and the end of the reasoning at each budget (first seed).

    Each heading leads with the p-value of the ranking score, then the score itself.
    """
    blocks = []
    texts = _reasoning(results, top)
    for i, t in enumerate(top.itertuples()):
        a = results.answers(t.model, t.dataset, t.problem_id)
        first_seed = a[a.seed == a.seed.min()]
        rows_html = []
        for row in first_seed.itertuples():
            thought = texts.get((t.model, t.dataset, t.problem_id, int(row.seed), int(row.budget)), "")
            rows_html.append(
                f"<tr><td>{row.budget}</td><td>{row.thinking_tokens}</td><td>{html.escape(_short(row.answer))}</td>"
                f"<td>{'✔' if row.correct == 1 else '✘'}</td><td class='thought'>{html.escape(thought)}</td></tr>"
            )
        blocks.append(
            f"<details{' open' if i == 0 else ''}><summary>#{i + 1} {html.escape(t.problem_id)} · "
            f"{html.escape(t.model)} · <span title='{html.escape(str(t.dataset))}'>{html.escape(labels[t.dataset])}"
            f"</span> · {_score_text(t, score)} · gold {html.escape(str(a.gold.iloc[0]))}</summary>"
            "<table><tr><th>budget</th><th>thinking tokens</th><th>answer (seed "
            f"{int(first_seed.seed.min()) if len(first_seed) else 0})</th><th></th>"
            f"<th>end of the reasoning the answer was forced after</th></tr>{''.join(rows_html)}</table></details>"
        )
    return "\n".join(blocks)


def _score_text(row, score: str) -> str:
    """ "p = 0.004 (breakthroughness 0.83)": the p-value of the ranking score first, then the score."""
    p = getattr(row, f"p_{score}", None)
    value = getattr(row, score)
    lead = f"p = {p:.3g}" if p is not None and np.isfinite(p) else "no p-value"
    return f"{lead} ({html.escape(score)} {value:.3g})"


def _incomplete_html(per_problem: pd.DataFrame, metric: str, score: str, k: int, labels: dict[str, str]) -> str:
    """The problem curves of `metric` that miss a budget of their grid: how many, and the first k (not ranked)."""
    curves = per_problem[(per_problem.metric == metric) & (per_problem.n_budgets > 0)]
    incomplete = curves[_incomplete(curves)]
    if incomplete.empty:
        return ""
    rows_html = "".join(
        f"<tr><td>{html.escape(str(r['model']))}</td><td title='{html.escape(str(r['dataset']))}'>"
        f"{html.escape(labels[r['dataset']])}</td><td>{html.escape(str(r['problem_id']))}</td>"
        f"<td>{r['n_budgets']} of {r['n_budgets_grid']}</td><td>{r[f'p_{score}']:.3g}</td><td>{r[score]:.3g}</td></tr>"
        for r in incomplete.head(k).to_dict("records")
    )
    return (
        f"<p>{INCOMPLETE_TEXT.format(n=len(incomplete), total=len(curves), metric=label(metric), score=score)}</p>"
        f"<table id='incomplete-curves'><caption>incomplete curves, not ranked (first {min(k, len(incomplete))}, "
        f"in key order)</caption><tr><th>model</th><th>dataset</th><th>problem</th><th>budgets</th>"
        f"<th>p_{html.escape(score)}</th><th>{html.escape(score)}</th></tr>{rows_html}</table>"
    )


def unclosed_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Forced answers that never closed their \\boxed{, per model, dataset and budget, by why (METHOD.md §4).

    Columns: rows; unclosed (rows flagged `unclosed`); truncated (of those, cut by the answer's token cap: graded
    incorrect); ended_unclosed (ended on their own, at EOS: graded on what they wrote when whole); share
    (unclosed / rows); unclosed_correct (unclosed answers graded right); unknown (rows whose flag is null: written
    before the column existed, or grading failed). Where no row of a group has a flag, or the rows lack the column,
    the counts are null (<NA>), not 0; so are truncated and ended_unclosed where no row records `truncated`.
    """
    keys = [k for k in ("model", "dataset", "budget") if k in rows.columns]
    flag = _flag(rows, "unclosed")
    cut = _flag(rows, "truncated")
    unclosed = flag.fillna(False).astype(bool)
    right = pd.to_numeric(rows["correct"], errors="coerce").eq(1) if "correct" in rows.columns else False
    frame = rows[keys].assign(
        unclosed=unclosed, truncated=unclosed & cut.fillna(False).astype(bool),
        ended_unclosed=unclosed & cut.eq(False).fillna(False).astype(bool), unclosed_correct=unclosed & right,
        unknown=flag.isna(), cut_known=cut.notna(),
    )  # fmt: skip
    table = frame.groupby(keys, sort=True, observed=True).agg(
        rows=("unclosed", "size"), unclosed=("unclosed", "sum"), truncated=("truncated", "sum"),
        ended_unclosed=("ended_unclosed", "sum"), unclosed_correct=("unclosed_correct", "sum"),
        unknown=("unknown", "sum"), cut_known=("cut_known", "sum"),
    ).reset_index()  # fmt: skip
    recorded = table["unknown"] < table["rows"]
    for column in ("unclosed", "unclosed_correct", "truncated", "ended_unclosed"):
        table[column] = table[column].astype("Int64").where(recorded)
    cut_recorded = table.pop("cut_known") > 0
    for column in ("truncated", "ended_unclosed"):
        table[column] = table[column].where(cut_recorded)
    table["share"] = (table["unclosed"] / table["rows"]).astype("Float64")
    return table[[*keys, "rows", "unclosed", "truncated", "ended_unclosed", "share", "unclosed_correct", "unknown"]]


def _flag(rows: pd.DataFrame, column: str) -> pd.Series:
    """A nullable boolean column of the rows, all <NA> when they lack it."""
    if column in rows.columns:
        return rows[column].astype("boolean")
    return pd.Series(pd.NA, index=rows.index, dtype="boolean")


def _refined_html(refined: pd.DataFrame) -> str:
    """Where the refined grids' jumps lie, on the doubling grid and on every budget, as an HTML table ("" if none)."""
    if refined.empty:
        return ""
    head = ("model", "dataset", "metric", "budgets added", "jump interval (doubling grid → every budget)",
            "jump slope per log2 B (before → after)", "breakthroughness", "jump size")  # fmt: skip
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            r.model, r.dataset, label(r.metric), r.budgets_added,
            f"{r.jump_before or 'flat'} → {r.jump_after or 'flat'}",
            f"{_num(r.jump_slope_before)} → {_num(r.jump_slope_after)}", _num(r.breakthroughness), _num(r.jump_size),
        )) + "</tr>"
        for r in refined.itertuples(index=False)
    )  # fmt: skip
    return f"<table><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{body}</table>"


def _num(x: float) -> str:
    """A score to 3 decimals; "flat" for NaN (a flat curve has no jump and no score)."""
    return f"{x:.3f}" if np.isfinite(x) else "flat"


def _unclosed_html(unclosed: pd.DataFrame) -> str:
    """The unclosed-answer counts per model, dataset and budget as an HTML table (full dataset names)."""
    if unclosed["unclosed"].isna().all():
        return (
            "<p id='unclosed-missing'>No row records whether its answer closed (the <code>unclosed</code> column is "
            "absent or null): not counted.</p>"
        )

    def cell(v, fmt: str = "{}") -> str:
        return "–" if pd.isna(v) else fmt.format(v)

    budget = "budget" in unclosed.columns
    rows_html = "".join(
        f"<tr><td>{html.escape(str(r.model))}</td><td>{html.escape(str(r.dataset))}</td>"
        + (f"<td>{r.budget}</td>" if budget else "")
        + f"<td>{r.rows:,}</td><td>{cell(r.unclosed)}</td><td>{cell(r.truncated)}</td>"
        f"<td>{cell(r.ended_unclosed)}</td><td>{cell(r.share, '{:.1%}')}</td><td>{cell(r.unclosed_correct)}</td>"
        f"<td>{r.unknown:,}</td></tr>"
        for r in unclosed.itertuples()
    )
    return (
        "<table id='unclosed'><tr><th>model</th><th>dataset</th>" + ("<th>budget</th>" if budget else "")
        + "<th>rows</th><th>unclosed</th><th>cut by the answer cap</th><th>ended on their own</th><th>share</th>"
        f"<th>unclosed, graded right</th><th>not recorded</th></tr>{rows_html}</table>"
    )  # fmt: skip


def _reasoning(results: Results, top: pd.DataFrame, chars: int = 400) -> dict[tuple, str]:
    """The last `chars` characters of thinking at each budget, from the trajectories (nested) or rows."""
    wanted = set(zip(top.model, top.dataset, top.problem_id, strict=True))
    rows = results.rows
    sel = rows[[k in wanted for k in zip(rows.model, rows.dataset, rows.problem_id, strict=True)]]
    texts: dict[tuple, str] = {}
    trajectories, inline = {}, {}
    wanted_ids = sorted(set(sel.trajectory_id))
    for root in results.roots:
        store = ResultStore(root)
        t = store.read_trajectories(wanted_ids).to_pandas()  # only the top-k problems' reasoning
        trajectories.update(dict(zip(t.trajectory_id, t.text, strict=True)))
        rows_inline = store.rows_where("trajectory_id", wanted_ids, ["trajectory_id", "thinking_text"])
        inline.update(zip(rows_inline.column(0).to_pylist(), rows_inline.column(1).to_pylist(), strict=True))
    for r in sel.itertuples():
        key = (r.model, r.dataset, r.problem_id, int(r.seed), int(r.budget))
        if r.trajectory_id in trajectories:  # nested: one text per trajectory, cut where this budget saw it
            texts[key] = "…" + trajectories[r.trajectory_id][: r.thinking_chars][-chars:]
        elif inline.get(r.trajectory_id):  # independent: each row holds its own reasoning
            texts[key] = "…" + inline[r.trajectory_id][-chars:]
    return texts


def _alpha(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _figure_html(fig: go.Figure | None, sid: str) -> str:
    """A figure as an HTML div (plotly.js is inlined once in the page head); "" for a section without one."""
    if fig is None:
        return ""
    return fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False, div_id=f"fig-{sid}")


def _page(results: Results, sections, extras: dict[str, str], metrics: list[str]) -> str:
    """The HTML page: a summary, then each section's text, figure (if any) and extra HTML (`extras[section id]`)."""
    rows = results.rows
    summary = (
        f"{len(rows):,} rows · {rows.model.nunique()} models · {rows.dataset.nunique()} datasets · "
        f"{rows.problem_id.nunique():,} problems · budgets {sorted(int(b) for b in rows.budget.unique())} · "
        f"{rows.seed.nunique()} seeds · metrics {', '.join(label(m) for m in metrics)}"
    )
    parts = [
        f"<section id='{sid}'><h2>{html.escape(title)}</h2><p>{text}</p>"
        + _figure_html(fig, sid)
        + extras.get(sid, "")
        + "</section>"
        for sid, title, text, fig in sections
    ]
    sources = ", ".join(html.escape(str(r)) for r in results.roots) or "a DataFrame"
    figures = [f"fig-{sid}" for sid, _, _, fig in sections if fig is not None]
    meta = json.dumps({"figures": figures, "ttscale_version": ttscale.__version__})
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ttscale report</title>
<meta name="ttscale-report" content='{meta}'>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1400px; color: #222; }}
section {{ margin: 2.5rem 0; }} p {{ max-width: 60rem; line-height: 1.45; }}
table {{ border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem; }}
td, th {{ border: 1px solid #ddd; padding: 0.25rem 0.5rem; vertical-align: top; }}
td.thought {{ font-family: ui-monospace, monospace; white-space: pre-wrap; max-width: 50rem; }}
summary {{ cursor: pointer; font-weight: 600; margin: 0.4rem 0; }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>ttscale report</h1>
<p>{summary}<br>from {sources}; ttscale {ttscale.__version__}. Budgets are on a log2 axis.</p>
{"".join(parts)}
</body></html>
"""


CURVES_TEXT = (
    "Each panel is one dataset and one metric; lines are the mean over problems of the per-problem mean over "
    "seeds, shaded bands are 95% bootstrap intervals over problems. The discrete metrics (accuracy, pass@k) come "
    "first, then the continuous metrics over the solution set: a jump in accuracy that the continuous metrics do "
    "not show is a candidate artefact of the discrete metric. The last column is the mean real thinking tokens "
    "(log scale), a check that the budget was spent."
)
SCORES_TEXT = (
    "Distribution of <b>{score}</b> over complete problem-level curves, per model (x) and dataset (colour); "
    "diamonds are the dataset-level curves. 1 is a single jump, 1/m an even ramp over m steps, negative a falling "
    "curve."
)
DELTA_BIC_TEXT = (
    "In the tables, read the p-values first: each score's <code>p_*</code> is a calibrated test against a noisy "
    "straight line. ΔBIC (<code>delta_bic_hinge</code>, <code>delta_bic_sigmoid</code>: BIC of the fit minus BIC "
    "of the line) is <b>descriptive</b>: on pure noise around a line it is below −2 for 57% of curves at 4 budgets, "
    "41% at 5, 32% at 6 and 25% at 7, so a negative ΔBIC is no evidence of a break. <code>hinge_preferred</code> "
    "is the verdict: true only with at least {n} budgets and <code>p_delta_bic_hinge</code> &lt; {alpha}, and "
    "empty (no verdict) below {n} budgets."
)
INCOMPLETE_TEXT = (
    "<b>{n} of {total} problem curves of {metric} are incomplete</b>: they have no value at some budget of their "
    "model and dataset's grid. They are scored on the points they have, and fewer points push {score} up (any "
    "rising two-point curve scores 1), so they are not ranked with the complete curves above."
)
PROBLEM_COUNTS_TEXT = (
    "The number of problems behind a point changes along these dataset curves (a problem without a value at a "
    "budget is skipped there), so a change from budget to budget can come from the set of problems, not only "
    "from the budget. The <code>problems_vary</code> column of <code>emergence_datasets</code> flags them."
)
UNCLOSED_TEXT = (
    "Forced answers whose <code>\\boxed{</code> the model never closed (column <code>unclosed</code>), per model, "
    "dataset and budget, by why. One <b>cut by the answer's token cap</b> (<code>truncated</code>) was still being "
    'written ("70" may be the start of "707") and is graded incorrect, whatever its prefix parses to. One that '
    "<b>ended on its own</b> (end of sequence) is graded on what it wrote when it is complete on its own (an "
    "integer, an option letter, or LaTeX that parses whole), otherwise it counts as wrong. Many unclosed answers "
    "at some budgets pull accuracy down there for a reason that is not the reasoning."
)
INFINITE_TEXT = (
    "A score of ±inf (the BIG-bench breakthroughness when the median step is 0, common on quantised accuracy "
    "curves) cannot be drawn: those curves are left out of the boxes and diamonds, and counted here (per model "
    "and dataset in <code>infinite_counts.csv</code>)."
)
REFINED_TEXT = (
    "<code>ttscale refine</code> added budgets to these (model, dataset) grids, cut from the same stored "
    "trajectories. Each refined dataset curve is shown on its doubling grid (dashed) and on every budget (solid, "
    "added budgets ringed). The added budgets <b>locate</b> the jump and change no score: every emergence score "
    "counts steps between budgets (breakthroughness over m steps lies in [1/m, 1]), so scores are computed on "
    "the doubling budgets (one step = one unit of log2 B), here {shared} for every (model, dataset), and a "
    "problem is not penalised for being looked at more closely. The table gives the jump interval (the "
    "neighbouring budgets between which the curve changes most per unit of log2 B) and that slope, on the "
    "doubling grid and on every budget."
)
TOPK_TEXT = (
    "Complete problem curves of {metric}, ranked by {score} oriented so that larger is more emergent in the "
    "curve's own direction (a sudden drop counts like a sudden rise); each title gives the p-value of that score "
    "and the curve's change I(y) (max − min, signed by direction), its effect size. Hover a point for the forced "
    "answers of every seed at that budget; below, the answer and the end of the reasoning at each budget for the "
    "first seed."
)
REVIEWED_TEXT = (
    " <b>Ranking:</b> breakthroughness and skewness are scale-free (a curve moving by a thousandth scores like one "
    "moving by a half), so only curves whose {metric} changes by at least {min_range} (|I(y)|) are ranked "
    "({left_out} of {total} left out), significant ones first (p &lt; {alpha}), each group by the score. "
    "<code>--ranking score</code> ranks by the score alone."
)
SCORE_RANKING_TEXT = (
    " <b>Ranking:</b> by the score alone (<code>--ranking score</code>): scale-free, so a curve that barely "
    "moves can rank first; the default ranks only curves moving by at least {min_range}, significant first."
)
TOKENS_TEXT = (
    "Real thinking tokens behind every forced answer. With exact forcing the boxes sit on the budget line unless "
    "the model ended its thinking itself (on_early_stop=accept); the original study's artefact was a sevenfold "
    "jump here between neighbouring budgets."
)
CORRELATION_TEXT = (
    "How the discrete and the continuous view agree: dataset curves of accuracy against {metric}, and the "
    "distribution of per-problem correlations between the two curves."
)
SIZE_TEXT = (
    "Dataset-level {score} against parameter count (read from the model name), one line per model family, "
    "dataset and metric: does emergence at test time depend on model size?"
)
