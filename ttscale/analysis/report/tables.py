"""The report's tables (curves, emergence scores, top-k, ±inf counts, unclosed answers, refined grids): computed
from the results and written as Parquet and CSV."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import csv

from ttscale.analysis.emergence import RANKINGS, lead_columns
from ttscale.analysis.frontier import COMPUTE_COLUMNS, PARALLEL_METRICS
from ttscale.analysis.refined import refined_table
from ttscale.analysis.report.names import DISCRETE, TOKENS
from ttscale.analysis.scores import infinite_counts
from ttscale.errors import ConfigError

if TYPE_CHECKING:
    from ttscale.analysis.results import Results


def report_tables(
    results: Results, metric: str, metrics: list[str], *, k: int, score: str, ranking: str, min_range: float
) -> tuple[dict[str, pd.DataFrame], Results]:
    """Every table of the report, by file name, and the results their scores compare (`Results.comparable`).

    `metric` ranks the top-k problems; `metrics` are the curves table's (`names.curve_metrics`).
    """
    scored = [m for m in metrics if m != TOKENS]  # thinking tokens are a check on forcing, not a score
    curves = pd.concat([results.curves(m).assign(metric=m) for m in metrics], ignore_index=True)
    compare = results.comparable()  # scores are compared on the budgets every (model, dataset) has
    per_dataset = scores_table([compare.emergence(m, level="dataset").assign(metric=m) for m in scored], score)
    per_problem = scores_table(
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
        "infinite_counts": infinite, "unclosed": unclosed, "refined_grids": refined, **compute_tables(results),
    }  # fmt: skip
    return tables, compare


def compute_tables(results: Results) -> dict[str, pd.DataFrame]:
    """Sequential vs parallel compute (METHOD.md §6b) for every metric of PARALLEL_METRICS, a `metric` column each:
    every (budget, k) point with its band and cost, the frontier, and the scores of k = 1 and of the frontier; none
    when the rows lack COMPUTE_COLUMNS (a DataFrame built by hand)."""
    if not set(COMPUTE_COLUMNS) <= set(results.rows.columns):
        return {}

    def each(view) -> pd.DataFrame:
        return pd.concat([view(m).assign(metric=m) for m in PARALLEL_METRICS], ignore_index=True)

    return {
        "parallel_points": each(results.parallel), "frontier": each(results.frontier),
        "frontier_scores": each(results.frontier_emergence),
    }  # fmt: skip


def write_tables(tables: dict[str, pd.DataFrame], out: Path) -> None:
    """Each table as <name>.parquet and <name>.csv in `out`."""
    for name, table in tables.items():
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        pq.write_table(arrow, out / f"{name}.parquet")
        csv.write_csv(_csv_ready(arrow), out / f"{name}.csv")  # pyarrow's writer: ~10x pandas' on 10^5 rows


def _csv_ready(table: pa.Table) -> pa.Table:
    """CSV has no lists or dictionaries: list columns become their JSON-like text, dictionaries their values."""
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(field.type.value_type))
        elif pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            text = pa.array([None if v is None else str(v) for v in table.column(i).to_pylist()], pa.string())
            table = table.set_column(i, field.name, text)
    return table


def scores_table(tables: list[pd.DataFrame], score: str) -> pd.DataFrame:
    """Emergence tables of several metrics as one, led by the keys, the metric, p_<score> and <score>."""
    table = pd.concat(tables, ignore_index=True)
    keys = [c for c in ("model", "dataset", "problem_id") if c in table.columns]
    return lead_columns(table, [*keys, "metric"], score)


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


def incomplete_curves(table: pd.DataFrame) -> np.ndarray:
    """Rows that are incomplete curves: some values, but not at every budget of their grid. (N,) bool

    A curve with no value at all (a metric its dataset lacks) is empty, not incomplete; a table without a
    `complete` column has no incomplete curves.
    """
    if "complete" not in table.columns:
        return np.zeros(len(table), dtype=bool)
    return ~table["complete"].to_numpy(dtype=bool) & (table["n_budgets"].to_numpy() > 0)
