"""`ttscale refine`: add budgets where a results directory's curves change most, cut from its stored trajectories.

The sweep is the one the directory's manifest recorded. The new budgets join the grid of their (model, dataset)
for every problem and seed (the refinement is recorded in the manifest first, so `ttscale sweep`, `status` and
a rerun of `refine` all see that grid), and the units that run them cut the stored nested trajectories: only
forced answers and scoring run. An interrupted refinement is finished by the next `refine` before any new one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ttscale.analysis.gaps import LEVELS, PairRefinement, refine_grid
from ttscale.errors import ConfigError
from ttscale.metrics import curve_columns
from ttscale.store import ResultStore
from ttscale.sweeps.original import parse_sweep
from ttscale.sweeps.refinement_record import refined_budgets, with_refinement
from ttscale.sweeps.resolve import ResolvedSweep, plan_inputs, resolve
from ttscale.sweeps.spec import LoadedSweep

CURVE_COLUMNS = ["model", "dataset", "problem_id", "seed", "budget", *curve_columns()]


@dataclass
class Refinement:
    """What one `ttscale refine` runs: the recorded sweep against its store, with the new budgets in its plan."""

    loaded: LoadedSweep
    resolved: ResolvedSweep
    pairs: list[PairRefinement] = field(default_factory=list)  # chosen now (empty when resuming or nothing to add)
    record: dict[str, Any] = field(default_factory=dict)  # what the manifest records (empty when resuming)
    resuming: bool = False  # finishing budgets an interrupted refinement recorded

    @property
    def thinking_tokens(self) -> int:
        """Estimated thinking tokens to generate: 0 when the stored trajectories reach every new budget."""
        return sum(p.thinking_tokens for p in self.resolved.plan.pairs)

    @property
    def forced_answers(self) -> int:
        return self.resolved.plan.rows_remaining


def recorded_sweep(store: ResultStore) -> LoadedSweep:
    """The sweep a results directory last ran (from its manifest), writing into that directory."""
    manifest = store.manifest()
    if not manifest or not manifest.get("sweep_text"):
        raise ConfigError(
            f"{store.root} has no manifest.json with a sweep: give a results directory `ttscale sweep` wrote."
        )
    loaded = parse_sweep(manifest["sweep_text"], Path(manifest.get("sweep_path") or store.root / "manifest.json"))
    spec = loaded.spec.model_copy(update={"output_dir": store.root})
    return loaded.model_copy(update={"spec": spec})


def plan_refinement(
    results_dir: str | Path,
    *,
    metric: str = "p_correct",
    level: str = "dataset",
    per_gap: int = 1,
    max_budgets: int = 4,
    top: int = 4,
) -> Refinement:
    """Choose the budgets to add (or find an interrupted refinement to finish) and plan their rows.

    Refuses, in one line: a directory that is not a results directory, independent trajectories (nothing is
    stored to cut from), a sweep with rows still missing (its curves are not whole yet), and a metric with no
    values."""
    if not Path(results_dir).is_dir():
        raise ConfigError(f"Got '{results_dir}' for RESULTS_DIR. It is not a directory; give a ttscale results dir.")
    store = ResultStore(results_dir)
    _check_options(metric, level, per_gap, max_budgets)
    loaded = recorded_sweep(store)
    if loaded.spec.forcing.trajectory != "nested":
        raise ConfigError(
            f"{store.root}: the sweep ran with `forcing.trajectory: independent`, which stores no trajectory to cut "
            "new budgets from. Add the budgets to the sweep file and run `ttscale sweep` instead."
        )
    inputs = plan_inputs(store)
    current = resolve(loaded, **inputs)
    if current.plan.rows_remaining:
        base = resolve(loaded, inputs["done"])  # the sweep's own budgets, without any refinement
        if base.plan.rows_remaining:
            raise ConfigError(
                f"{store.root}: {base.plan.rows_remaining} rows of sweep '{loaded.spec.name}' are still missing, so "
                f"its curves are not whole. Finish it first: ttscale sweep {loaded.path}"
            )
        return Refinement(loaded, current, resuming=True)  # an interrupted refinement: finish it
    pairs = _choose(store, current, metric=metric, level=level, per_gap=per_gap, max_budgets=max_budgets, top=top)
    pair_ids = {(p.model, p.dataset): p.pair_id for p in current.plan.pairs}
    record = {
        "time": time.time(), "metric": metric, "level": level, "per_gap": per_gap, "max_budgets": max_budgets,
        "pairs": [
            {"model": p.model, "dataset": p.dataset, "pair_id": pair_ids[p.model, p.dataset], "budgets": p.added,
             "gaps": [{**g.__dict__, "budgets": bs} for g, bs in zip(p.gaps, p.budgets, strict=True)]}
            for p in pairs
        ],
    }  # fmt: skip
    refined = refined_budgets(with_refinement(store.manifest() or {}, record))
    resolved = resolve(loaded, inputs["done"], refined=refined, stored=inputs["stored"], measured=inputs["measured"])
    return Refinement(loaded, resolved, pairs=pairs, record=record)


def record_refinement(refinement: Refinement) -> None:
    """Write the refinement into the manifest before its units run (the caller holds the run lock)."""
    if refinement.resuming or not refinement.pairs:
        return
    store = ResultStore(refinement.loaded.spec.output_dir)
    store.write_manifest(with_refinement(store.manifest() or {}, refinement.record))


def _check_options(metric: str, level: str, per_gap: int, max_budgets: int) -> None:
    from ttscale.metrics import get_metric

    try:
        get_metric(metric)
    except ValueError as exc:
        raise ConfigError(f"Got '{metric}' for --metric. {exc}") from None
    if level not in LEVELS:
        raise ConfigError(f"Got '{level}' for --level. Use {' or '.join(LEVELS)}.")
    if per_gap < 1 or max_budgets < per_gap:
        raise ConfigError(f"Got --per-gap {per_gap} and --max-budgets {max_budgets}. Need 1 <= per-gap <= max-budgets.")


def _choose(store: ResultStore, resolved: ResolvedSweep, **options: Any) -> list[PairRefinement]:
    """The new budgets per (model, dataset), from this sweep's rows only (another config's rows in the same
    directory are not part of its curves)."""
    metric = options.pop("metric")
    values = sweep_values(store, resolved, metric)
    if not values["value"].notna().any():
        raise ConfigError(
            f"{store.root}: metric {metric} has no values in these results (no solution set?). "
            "Give another --metric, e.g. accuracy."
        )
    return refine_grid(values, **options)


def sweep_values(
    store: ResultStore, resolved: ResolvedSweep, metric: str, pairs: set[tuple[str, str]] | None = None
) -> pd.DataFrame:
    """Per-problem values of `metric` (model, dataset, problem_id, budget, value) from the rows of this sweep's
    cells (of `pairs` only, if given), named as the sweep names its models and datasets."""
    from ttscale.analysis.values import problem_values

    spec = resolved.spec
    pair_of = {c: (spec.models[m].name, spec.datasets[d].name) for (m, d, _, _), c in resolved.plan.cell_ids.items()}
    pair_of = {c: pair for c, pair in pair_of.items() if pairs is None or pair in pairs}
    rows = store.rows_where("cell_id", sorted(pair_of), ["cell_id", *CURVE_COLUMNS]).to_pandas()
    names = rows["cell_id"].map(pair_of)
    rows["model"], rows["dataset"] = names.str[0], names.str[1]
    return problem_values(rows, metric)


def dataset_values(refinement: Refinement) -> pd.DataFrame:
    """The dataset curve (mean over problems, per budget) of each refined pair (every pair when resuming), on the
    metric it was refined on: what `ttscale refine` prints before and after."""
    pairs = {(p.model, p.dataset) for p in refinement.pairs} or None
    store = ResultStore(refinement.loaded.spec.output_dir)
    values = sweep_values(store, refinement.resolved, refinement.record.get("metric", "p_correct"), pairs)
    return values.groupby(["model", "dataset", "budget"], as_index=False)["value"].mean()
