"""What is stored: the Arrow schemas of result rows and trajectories, a row's key, and tables built to them.

A row is one (cell, problem): a cell is (model, dataset, budget, seed), and its columns say what was measured
(METHOD.md); a trajectory is the thinking a nested-mode (problem, seed) grew, every budget a prefix of it.
`ttscale/store.py` writes and reads them; `ttscale/row_fields.py` builds a row's values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ttscale.metrics import set_metrics_declared

__all__ = ["ROW_KEY", "ROW_SCHEMA", "TRAJECTORY_SCHEMA", "longest_versions", "rows_table", "trajectories_table"]

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
        # the model's settings (family strings, forcing, sampling, dtype) as a short hash and as JSON:
        # rows of one model name under two configs are two curves, never one average
        pa.field("config_id", pa.string(), nullable=False),
        pa.field("config", pa.string(), nullable=False),
        # discrete answer (METHOD.md §4)
        pa.field("answer", pa.string()),  # extracted from the forced \boxed{...}; null if nothing was written
        # what the answer votes for in maj@k (METHOD.md §6b): the grader's normalised form, the source option for
        # shuffled choices; null when it is no vote (nothing written, unfinished, not graded) and in older rows
        pa.field("answer_key", pa.string()),
        pa.field("answer_text", pa.string()),  # the raw forced-answer generation
        pa.field("unclosed", pa.bool_()),  # the model never closed the forced \boxed{
        pa.field("truncated", pa.bool_()),  # ... because the answer's token cap cut it (graded incorrect)
        pa.field("correct", pa.int8()),  # 0/1; null only when grading failed (see `error`)
        pa.field("gold", pa.string(), nullable=False),  # the gold in this row's rendering (letter after shuffle)
        pa.field("choice_order", pa.list_(pa.int8())),  # multiple choice: source index shown as each letter
        pa.field("error", pa.string()),  # why grading or scoring failed; null when they worked
        # continuous metrics over the solution set (METHOD.md §5); null without a finite set
        pa.field("solution_set", pa.string()),
        *(pa.field(m.column, pa.type_for_alias(m.arrow_type)) for m in set_metrics_declared()),  # ttscale/metrics.py
        pa.field("distribution", pa.list_(pa.float32())),
        # token accounting (METHOD.md §3)
        pa.field("prompt_tokens", pa.int32(), nullable=False),
        pa.field("thinking_tokens", pa.int32(), nullable=False),  # model tokens in the prefix, <= budget
        pa.field("natural_end", pa.int32()),  # model-token index of the first stop attempt inside the prefix
        pa.field("continuations", pa.int32(), nullable=False),
        pa.field("injected_tokens", pa.int32(), nullable=False),
        pa.field("answer_tokens", pa.int32(), nullable=False),
        # why the prefix holds fewer than `budget` model tokens: accepted | max_continuations | empty_rounds;
        # null when it holds exactly `budget` (forcing.StopReason)
        pa.field("stopped", pa.string()),
        # the reasoning itself, per row in independent mode (nested mode keeps it in the trajectories table)
        pa.field("thinking_chars", pa.int32(), nullable=False),  # nested: text[:thinking_chars] is this budget's
        pa.field("thinking_token_ids", pa.list_(pa.int32())),
        pa.field("thinking_text", pa.string()),
        # how it was produced
        pa.field("trajectory_mode", pa.string(), nullable=False),
        pa.field("on_early_stop", pa.string(), nullable=False),
        pa.field("temperature", pa.float64(), nullable=False),
        pa.field("top_p", pa.float64(), nullable=False),
        pa.field("top_k", pa.int32(), nullable=False),
        pa.field("rng_seed", pa.int64(), nullable=False),
        # the version of the trajectory this row was cut from: its model tokens (nested mode keeps one id per
        # (problem, seed), and a longer version supersedes a shorter one); null in rows of an older ttscale
        pa.field("trajectory_tokens", pa.int32()),
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
        pa.field("prompt_sha", pa.string()),  # forcing.prompt_digest of the prompt ids (null: stored before it)
        pa.field("model_revision", pa.string()),  # the engine's model_path (source@revision) that generated it
        pa.field("token_ids", pa.list_(pa.int32()), nullable=False),  # thinking, model and injected tokens
        pa.field("injected", pa.list_(pa.bool_()), nullable=False),  # per token: injected by forcing?
        pa.field("injection_starts", pa.list_(pa.int32())),  # index of each injection's first token
        pa.field("text", pa.string(), nullable=False),
        pa.field("model_tokens", pa.int32(), nullable=False),
        pa.field("natural_end", pa.int32()),
        pa.field("continuations", pa.int32(), nullable=False),
        pa.field("finished", pa.bool_(), nullable=False),  # ended before the largest budget; `stopped` says why
        pa.field("stopped", pa.string()),
    ]
)

ROW_KEY = ("cell_id", "problem_id")  # what makes a row unique, and what resume diffs on


def longest_versions(trajectories: pa.Table) -> pa.Table:
    """One version per trajectory id, its longest (the first of equal ones, in table order), sorted by id: a later,
    longer run of a trajectory (a checkpoint extended, a refine) supersedes the shorter ones it continues."""
    order = pc.sort_indices(trajectories, [("trajectory_id", "ascending"), ("model_tokens", "descending")])
    table = trajectories.take(order)
    ids = table.column("trajectory_id").to_pylist()
    keep = [i for i, tid in enumerate(ids) if i == 0 or ids[i - 1] != tid]
    return table.take(pa.array(keep, type=pa.int64()))


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
