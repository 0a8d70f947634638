"""Result storage: the Arrow schemas of rows and trajectories, and conversion of result dicts into tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

ROW_SCHEMA = pa.schema(
    [
        # identity: one row per (cell, problem); a cell is (model, dataset, budget, seed)
        pa.field("model", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("problem_id", pa.string(), nullable=False),
        pa.field("seed", pa.int32(), nullable=False),
        pa.field("budget", pa.int32(), nullable=False),
        pa.field("cell_id", pa.string(), nullable=False),
        pa.field("trajectory_id", pa.string(), nullable=False),
        # discrete answer (METHOD.md §4)
        pa.field("answer", pa.string()),  # extracted from the forced \boxed{...}; null if nothing was written
        pa.field("answer_text", pa.string()),  # the raw forced-answer generation
        pa.field("unclosed", pa.bool_()),  # the model never closed the forced \boxed{
        pa.field("correct", pa.int8()),  # 0/1; null only when grading failed (see `error`)
        pa.field("gold", pa.string(), nullable=False),  # the gold in this row's rendering (letter after shuffle)
        pa.field("choice_order", pa.list_(pa.int8())),  # multiple choice: source index shown as each letter
        pa.field("error", pa.string()),  # why grading or scoring failed; null when they worked
        # continuous metrics over the solution set (METHOD.md §5); null without a finite set
        pa.field("solution_set", pa.string()),
        pa.field("p_correct", pa.float64()),
        pa.field("logp_correct", pa.float64()),
        pa.field("rank", pa.int32()),
        pa.field("entropy", pa.float64()),
        pa.field("entropy_norm", pa.float64()),
        pa.field("brier", pa.float64()),
        pa.field("mass_on_set", pa.float64()),
        pa.field("distribution", pa.list_(pa.float32())),
        # token accounting (METHOD.md §3)
        pa.field("prompt_tokens", pa.int32(), nullable=False),
        pa.field("thinking_tokens", pa.int32(), nullable=False),  # model tokens in the prefix, <= budget
        pa.field("natural_end", pa.int32()),  # model-token index of the first stop attempt inside the prefix
        pa.field("continuations", pa.int32(), nullable=False),
        pa.field("injected_tokens", pa.int32(), nullable=False),
        pa.field("answer_tokens", pa.int32(), nullable=False),
        # the reasoning itself, per row in independent mode (nested mode keeps it in the trajectories table)
        pa.field("thinking_chars", pa.int32(), nullable=False),  # len of the thinking text at this budget
        pa.field("thinking_token_ids", pa.list_(pa.int32())),
        pa.field("thinking_text", pa.string()),
        # how it was produced
        pa.field("trajectory_mode", pa.string(), nullable=False),
        pa.field("on_early_stop", pa.string(), nullable=False),
        pa.field("temperature", pa.float64(), nullable=False),
        pa.field("top_p", pa.float64(), nullable=False),
        pa.field("top_k", pa.int32(), nullable=False),
        pa.field("rng_seed", pa.int64(), nullable=False),
        pa.field("family", pa.string(), nullable=False),
        pa.field("engine", pa.string(), nullable=False),
        pa.field("engine_version", pa.string(), nullable=False),
        pa.field("model_path", pa.string(), nullable=False),
        pa.field("ttscale_version", pa.string(), nullable=False),
        # timings: batched work is attributed evenly to the rows it served (seconds)
        pa.field("trajectory_seconds", pa.float64()),
        pa.field("answer_seconds", pa.float64()),
        pa.field("score_seconds", pa.float64()),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

TRAJECTORY_SCHEMA = pa.schema(
    [
        pa.field("trajectory_id", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("problem_id", pa.string(), nullable=False),
        pa.field("seed", pa.int32(), nullable=False),
        pa.field("budget", pa.int32()),  # null in nested mode: one trajectory serves every budget
        pa.field("rng_seed", pa.int64(), nullable=False),
        pa.field("prompt_tokens", pa.int32(), nullable=False),
        pa.field("token_ids", pa.list_(pa.int32()), nullable=False),  # thinking, model and injected tokens
        pa.field("injected", pa.list_(pa.bool_()), nullable=False),  # per token: injected by forcing?
        pa.field("text", pa.string(), nullable=False),
        pa.field("model_tokens", pa.int32(), nullable=False),
        pa.field("natural_end", pa.int32()),
        pa.field("continuations", pa.int32(), nullable=False),
        pa.field("finished", pa.bool_(), nullable=False),  # ended on its own before the largest budget
    ]
)

ROW_KEY = ("cell_id", "problem_id")  # what makes a row unique, and what resume diffs on


def rows_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Rows as a table of ROW_SCHEMA; a missing or extra column is a bug and raises."""
    return _table(rows, ROW_SCHEMA)


def trajectories_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    return _table(rows, TRAJECTORY_SCHEMA)


def _table(rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    rows = list(rows)
    names = set(schema.names)
    for row in rows:
        if set(row) != names:
            missing, extra = sorted(names - set(row)), sorted(set(row) - names)
            raise ValueError(f"result row does not match the schema: missing {missing}, extra {extra}")
    return pa.Table.from_pylist(rows, schema=schema)
