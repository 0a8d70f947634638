"""The report's self-contained HTML page: its sections (text, figure, extra tables) with plotly.js inlined once."""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

import ttscale
from ttscale.analysis.emergence import HINGE_ALPHA, HINGE_MIN_BUDGETS
from ttscale.analysis.refined import fig_refined
from ttscale.analysis.report.compute import compute_html, fig_compute
from ttscale.analysis.report.figures import (
    fig_correlation,
    fig_curves,
    fig_scores,
    fig_size,
    fig_thinking_tokens,
    fig_top_k,
    missing_panels,
    short_answer,
)
from ttscale.analysis.report.names import CONTINUOUS, dataset_labels, label
from ttscale.analysis.report.reasoning import reasoning_tails
from ttscale.analysis.report.tables import incomplete_curves
from ttscale.analysis.report.texts import (
    COMPUTE_TEXT,
    CORRELATION_TEXT,
    CURVES_TEXT,
    DELTA_BIC_TEXT,
    INCOMPLETE_TEXT,
    INFINITE_TEXT,
    PROBLEM_COUNTS_TEXT,
    REFINED_TEXT,
    SCORES_TEXT,
    SIZE_TEXT,
    TOKENS_TEXT,
    UNCLOSED_TEXT,
    pass_k_text,
    topk_text,
)

if TYPE_CHECKING:
    from ttscale.analysis.results import Results


def report_page(
    results: Results,
    compare: Results,
    tables: dict[str, pd.DataFrame],
    *,
    metric: str,
    metrics: list[str],
    pass_k: int,
    k: int,
    score: str,
    ranking: str,
    min_range: float,
) -> str:
    """The HTML page of the report on `tables` (`tables.report_tables`, with `compare` the results they scored)."""
    curves, per_dataset, per_problem, top = (tables[n] for n in ("curves", "emergence_datasets",
                                                                 "emergence_problems", "top_k"))  # fmt: skip
    infinite, unclosed, refined = tables["infinite_counts"], tables["unclosed"], tables["refined_grids"]
    labels = dataset_labels(results.rows.dataset)
    scores_text = SCORES_TEXT.format(score=score) + " " + DELTA_BIC_TEXT.format(n=HINGE_MIN_BUDGETS, alpha=HINGE_ALPHA)
    sections = [
        ("curves", "Scaling curves", CURVES_TEXT + " " + pass_k_text(pass_k), fig_curves(curves, metrics, labels)),
        ("scores", "Emergence scores", scores_text, fig_scores(per_problem, per_dataset, score, labels)),
        ("top-k", f"Top {k} most emergent problems", topk_text(per_problem, metric, score, ranking, min_range),
         fig_top_k(results, top, metric, score, labels)),
        *([("refined", "Refined budget grids", REFINED_TEXT.format(shared=list(compare.shared_grid())),
            fig_refined(results, metric, label(metric)))] if results.refined_pairs() else []),
        *([("compute", "Sequential vs parallel compute", COMPUTE_TEXT.format(score=score),
            fig_compute(*_maj(tables["parallel_points"], tables["frontier"]), "maj", labels))]
          if "parallel_points" in tables else []),
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
        "compute": compute_html(_maj(tables["frontier_scores"])[0], labels, score) if "frontier_scores" in tables
        else "",
    }
    return _page(results, sections, extras, metrics)


def _maj(*tables: pd.DataFrame) -> list[pd.DataFrame]:
    """The maj@k rows of compute tables (`tables.compute_tables`)."""
    return [t[t["metric"] == "maj"] for t in tables]


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


def _top_k_html(results: Results, top: pd.DataFrame, score: str, labels: dict[str, str]) -> str:
    """A table per top problem: answers, correctness and the end of the reasoning at each budget (first seed).

    Each heading leads with the p-value of the ranking score, then the score itself.
    """
    blocks = []
    texts = reasoning_tails(results, top)
    for i, t in enumerate(top.itertuples()):
        a = results.answers(t.model, t.dataset, t.problem_id)
        first_seed = a[a.seed == a.seed.min()]
        rows_html = []
        for row in first_seed.itertuples():
            thought = texts.get((t.model, t.dataset, t.problem_id, int(row.seed), int(row.budget)), "")
            rows_html.append(
                f"<tr><td>{row.budget}</td><td>{row.thinking_tokens}</td><td>{html.escape(short_answer(row.answer))}</td>"
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
    incomplete = curves[incomplete_curves(curves)]
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
