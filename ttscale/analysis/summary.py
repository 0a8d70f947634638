"""What `ttscale analyze --json` prints: per (model, dataset), its grid, its dataset-level emergence and its
sequential-vs-parallel answer (METHOD.md §6b), as JSON-ready values read from the results' cached analyses."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttscale.analysis.frontier import CURVES, PARALLEL_METRICS

if TYPE_CHECKING:
    from ttscale.analysis.results import Results

SUMMARY_METRICS = ("accuracy", "p_correct")  # dataset-level emergence per pair, where the rows have the metric
SCORE = "breakthroughness"


def analysis_summary(results: Results, report: Path, *, score: str = SCORE) -> dict[str, Any]:
    """The report's path and tables, and per (model, dataset): budgets, seeds, problems, the dataset curves'
    `score` and p-value for SUMMARY_METRICS, and for each of PARALLEL_METRICS the k = 1 and frontier scores, the
    frontier's parallel points and the sentence answering §6b."""
    rows, compare = results.rows, results.comparable()
    emergence = {m: compare.emergence(m, level="dataset") for m in SUMMARY_METRICS if _has(rows, m)}
    compute = {m: results.frontier_emergence(m) for m in PARALLEL_METRICS} if "thinking_tokens" in rows else {}
    pairs = []
    for (model, dataset), grid in results.grids().items():
        pair = rows[(rows["model"] == model) & (rows["dataset"] == dataset)]
        entry: dict[str, Any] = {
            "model": model, "dataset": dataset, "budgets": list(grid), "seeds": int(pair["seed"].nunique()),
            "problems": int(pair["problem_id"].nunique()), "rows": len(pair),
            "emergence": {m: _scores(_one(t, model, dataset), score) for m, t in emergence.items()},
            "compute": {m: _compute(t, model, dataset, score) for m, t in compute.items()},
        }  # fmt: skip
        pairs.append(entry)
    return {"report": str(report), "tables": str(report.parent), "rows": len(rows), "score": score, "pairs": pairs}


def _has(rows, metric: str) -> bool:
    from ttscale.metrics import get_metric

    column = get_metric(metric).column
    return column in rows.columns and rows[column].notna().any()


def _one(table, model: str, dataset: str):
    match = table[(table["model"] == model) & (table["dataset"] == dataset)]
    return match.iloc[0] if len(match) else None


def _scores(row, score: str) -> dict[str, float | None]:
    if row is None:
        return {score: None, f"p_{score}": None}
    return {score: _float(row.get(score)), f"p_{score}": _float(row.get(f"p_{score}"))}


def _compute(table, model: str, dataset: str, score: str) -> dict[str, Any]:
    pair = table[(table["model"] == model) & (table["dataset"] == dataset)]
    by_curve = {r["curve"]: r for r in pair.to_dict("records")}
    front = by_curve.get(CURVES[1], {})
    return {
        "k1": _scores(by_curve.get(CURVES[0]), score), "frontier": _scores(front or None, score),
        "parallel_points": front.get("parallel_points"), "frontier_points": front.get("n_points"),
        "answer": front.get("answer"),
    }  # fmt: skip


def _float(value) -> float | str | None:
    """Strict JSON has no NaN or infinity: null for NaN, "inf" or "-inf" for the BIG-bench scores' infinities."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")
