"""In-process measurement without Ray: problems × seeds × budgets on one engine, returned as tables."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ttscale import grid
from ttscale.engines import Engine, Sampling, create_engine
from ttscale.errors import ConfigError
from ttscale.families import resolve_family
from ttscale.forcing import ForcingConfig
from ttscale.messages import one_line, said_of
from ttscale.runner import RunSettings, run_unit
from ttscale.schema import rows_table, trajectories_table
from ttscale.tasks import get_task
from ttscale.tasks.base import Task

DEFAULT_SAMPLING = Sampling(temperature=0.6, top_p=0.95)  # DeepSeek-R1's recommended settings


@dataclass(frozen=True)
class Measurement:
    """Result rows (one per problem × seed × budget) and, in nested mode, one trajectory per problem × seed."""

    rows: pa.Table
    trajectories: pa.Table

    def to_pandas(self) -> pd.DataFrame:
        return self.rows.to_pandas()

    def write(self, path: str | Path) -> None:
        """The rows as one Parquet file at `path` (a .parquet name), and the trajectories beside it, if any."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(self.rows, path)
        if self.trajectories.num_rows:
            pq.write_table(self.trajectories, path.with_name(path.stem + ".trajectories.parquet"))

    def summary(self) -> pd.DataFrame:
        """Per budget: accuracy (mean over problems of the mean over seeds), mean p_correct, mean thinking tokens."""
        return budget_summary(self.to_pandas())


def budget_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Accuracy is averaged over seeds within a problem first, then over problems (METHOD.md §4)."""
    per_problem = rows.groupby(["model", "dataset", "budget", "problem_id"], as_index=False).agg(
        correct=("correct", "mean"), p_correct=("p_correct", "mean"), thinking_tokens=("thinking_tokens", "mean")
    )
    return (
        per_problem.groupby(["model", "dataset", "budget"], as_index=False)
        .agg(
            problems=("problem_id", "nunique"),
            accuracy=("correct", "mean"),
            p_correct=("p_correct", "mean"),
            thinking_tokens=("thinking_tokens", "mean"),
        )
        .sort_values(["model", "dataset", "budget"], ignore_index=True)
    )


def _grid_of(field: str, value: Any) -> list[int]:
    """`budgets` or `seeds` checked as a sweep file's (`ttscale.grid`), or a one-line ConfigError naming the
    argument; any sequence (a tuple, a range) is taken as a list."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, list)):
        value = list(value)
    try:
        return grid.budgets(value) if field == "budgets" else grid.seeds(value)
    except ValueError as exc:
        raise ConfigError(one_line(said_of(str(exc), field))) from None


def measure(
    model: str | Engine = "smollm2-135m",
    dataset: str | Task = "demo-arith",
    *,
    budgets: Sequence[int] = (16, 32, 64),
    seeds: int | Sequence[int] = 1,
    limit: int | None = None,
    forcing: ForcingConfig | None = None,
    sampling: Sampling | None = None,
    family: str | None = None,
    family_overrides: dict[str, str | None] | None = None,
    engine: str = "hf",
    engine_options: dict[str, Any] | None = None,
    problems_per_unit: int = 8,
    on_unit: Callable[[int, int, int], None] | None = None,
    stored: pa.Table | Sequence[Mapping[str, Any]] = (),
) -> Measurement:
    """Measure `model` on `dataset` at every budget and seed, in this process, and return the tables.

    `model` is an alias (`smollm2-135m`), a local directory, a hub id, or an already-built Engine;
    `dataset` a registered name, hub id, local file, or a Task. Work is split into units of
    `problems_per_unit` problems × all seeds × all budgets, exactly as the Ray driver splits it;
    `on_unit(done_units, total_units, generated_tokens)` is called after each unit.
    `budgets` and `seeds` are checked as a sweep file's are (`ttscale.grid`): budgets positive, at most 2^30
    tokens (or {"log2": [lo, hi]}); seeds a count, or distinct integers >= 0.

    `stored` (nested mode): trajectories an earlier call returned (its `.trajectories`), to cut new budgets from
    (no thinking generated) or extend, as a sweep reuses its store; only trajectories that are new or grew are
    returned.
    """
    budgets, seed_list = _grid_of("budgets", budgets), _grid_of("seeds", seeds)
    task = get_task(dataset) if isinstance(dataset, str) else dataset
    problems = task.load(limit)
    model_name = model if isinstance(model, str) else model.info.model
    settings = RunSettings(
        model=model_name,
        engine=engine if isinstance(model, str) else model.info.engine,
        family=resolve_family(model_name, family, family_overrides),
        forcing=forcing or ForcingConfig(),
        sampling=sampling or DEFAULT_SAMPLING,
        dtype=(engine_options or {}).get("dtype", "float32") if isinstance(model, str) else model.info.dtype,
        quantization=(engine_options or {}).get("quantization") if isinstance(model, str) else None,
    )
    llm = create_engine(engine, model, **(engine_options or {})) if isinstance(model, str) else model
    stored = stored.to_pylist() if isinstance(stored, pa.Table) else list(stored)
    rows, trajectories = [], []
    units = [problems[i : i + problems_per_unit] for i in range(0, len(problems), problems_per_unit)]
    for done, unit in enumerate(units, start=1):
        result = run_unit(llm, task, unit, seeds=seed_list, budgets=budgets, settings=settings, stored=stored)
        rows.extend(result.rows)
        trajectories.extend(result.trajectories)
        if on_unit is not None:
            on_unit(done, len(units), result.generated_tokens)
    return Measurement(rows=rows_table(rows), trajectories=trajectories_table(trajectories))
