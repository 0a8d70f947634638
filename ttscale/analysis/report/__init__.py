"""The analysis report: tables as Parquet and CSV, and one self-contained HTML file of plotly figures.

names: the metric lists and labels · tables: the tables · figures: the plotly figures · texts: the prose ·
reasoning: the reasoning read from the store · page: the HTML page.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ttscale.analysis.emergence import MIN_RANGE
from ttscale.analysis.report.figures import fig_curves, fig_scores, fig_thinking_tokens, fig_top_k
from ttscale.analysis.report.names import DISCRETE, curve_metrics, dataset_labels, label, ranking_metric
from ttscale.analysis.report.page import report_page
from ttscale.analysis.report.tables import report_tables, unclosed_table, write_tables
from ttscale.analysis.values import default_pass_k

if TYPE_CHECKING:
    from ttscale.analysis.results import Results

__all__ = [  # what the rest of ttscale, the scripts and the tests import from the report
    "DISCRETE", "curve_metrics", "dataset_labels", "fig_curves", "fig_scores", "fig_thinking_tokens", "fig_top_k",
    "label", "unclosed_table", "write_report",
]  # fmt: skip


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
    metric = ranking_metric(results.rows, metric)
    out.mkdir(parents=True, exist_ok=True)
    pass_k = default_pass_k(results.rows)
    metrics = curve_metrics(results.rows, pass_k)
    tables, compare = report_tables(results, metric, metrics, k=k, score=score, ranking=ranking, min_range=min_range)
    write_tables(tables, out)
    path = out / "report.html"
    path.write_text(report_page(results, compare, tables, metric=metric, metrics=metrics, pass_k=pass_k, k=k,
                                score=score, ranking=ranking, min_range=min_range))  # fmt: skip
    return path
