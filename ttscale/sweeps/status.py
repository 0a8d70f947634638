"""Sweep status: completion per model × dataset × budget, and failed units not since completed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ttscale.errors import ConfigError
from ttscale.store import ResultStore
from ttscale.sweeps.original import load_sweep, parse_sweep
from ttscale.sweeps.plan import budget_completion, build_plan
from ttscale.sweeps.refinement_record import refined_budgets
from ttscale.sweeps.resolve import resolve
from ttscale.sweeps.spec import LoadedSweep


@dataclass
class StatusReport:
    sweep: str
    root: Path
    completion: list[dict[str, Any]]
    rows_total: int
    rows_done: int
    shards: int
    failures: list[dict[str, Any]] = field(default_factory=list)


def load_for_status(target: Path) -> tuple[LoadedSweep, ResultStore]:
    """A sweep file, or a results directory (whose manifest holds the sweep file it was made with)."""
    if target.is_file():
        loaded = load_sweep(target)
        return loaded, ResultStore(loaded.spec.output_dir)
    if target.is_dir():
        store = ResultStore(target)
        manifest = store.manifest()
        if manifest is None:
            raise ConfigError(
                f"{target} holds no ttscale results (no manifest.json). Give a results dir or a sweep file."
            )
        return parse_sweep(manifest["sweep_text"], Path(manifest["sweep_path"])), store
    raise ConfigError(f"{target} does not exist. Give a results directory or a sweep .yaml file.")


def sweep_status(target: Path) -> StatusReport:
    """Completion of a sweep file against its store, or of a results dir against the sweep it last ran.

    A results dir is planned from the datasets its manifest recorded (identity and problem ids), so its
    status needs no dataset, hub or network; a sweep file loads its datasets, which may have changed."""
    target = Path(target)
    loaded, store = load_for_status(target)
    done = store.done_keys()
    refined = refined_budgets(store.manifest())
    recorded = (store.manifest() or {}).get("datasets") if target.is_dir() else None
    if recorded is not None and [d["name"] for d in recorded] != [d.name for d in loaded.spec.datasets]:
        recorded = None  # a manifest from another version of the sweep: load the datasets instead
    if recorded is not None:
        identities, problem_ids = [d["identity"] for d in recorded], [d["problem_ids"] for d in recorded]
        plan = build_plan(loaded.spec, identities, problem_ids, done, refined=refined)
    else:
        resolved = resolve(loaded, done, refined=refined)
        plan, problem_ids = resolved.plan, [[p.id for p in ps] for ps in resolved.problems]
    completion = budget_completion(loaded.spec, plan, problem_ids, done)
    return StatusReport(
        sweep=loaded.spec.name,
        root=store.root,
        completion=completion,
        rows_total=sum(r["rows"] for r in completion),
        rows_done=sum(r["done"] for r in completion),
        shards=len(store.row_shards()),
        failures=open_failures(store),
    )


def open_failures(store: ResultStore) -> list[dict[str, Any]]:
    """Failed units, one line each, unless a later attempt of the same unit finished."""
    finished = {}
    for event in store.events():
        if event["event"] == "done":
            finished[event["unit"]] = max(finished.get(event["unit"], 0.0), event["time"])
    by_unit: dict[str, list[dict[str, Any]]] = {}
    for record in store.failures():
        by_unit.setdefault(record["unit_id"], []).append(record)
    out = []
    for unit, records in by_unit.items():
        last = max(records, key=lambda r: r["time"])
        if finished.get(unit, 0.0) > last["time"]:
            continue
        out.append({**last, "attempts": len(records)})
    return sorted(out, key=lambda r: r["time"])
