"""Refinements in a results directory's manifest: the budgets `ttscale refine` added to each (model, dataset) grid."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ttscale.store import ResultStore, refinement_budgets
from ttscale.sweeps.plan import StoredLength


def refined_budgets(manifest: Mapping[str, Any] | None) -> dict[str, list[int]]:
    """pair digest → every budget refinements added to its grid (sorted). A pair is keyed by its digest, not its
    names, so a sweep whose config changed (new cell ids) does not inherit another config's budgets."""
    return {pair_id: list(budgets) for pair_id, budgets in refinement_budgets(manifest, "pair_id").items()}


def with_refinement(manifest: Mapping[str, Any], refinement: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest with one more refinement recorded (recorded before it runs, so a killed refine resumes)."""
    return {**manifest, "refinements": [*manifest.get("refinements", []), dict(refinement)]}


def stored_lengths(store: ResultStore) -> dict[str, StoredLength]:
    """Every stored trajectory's reach, for the plan's estimate of the thinking still to generate."""
    return {tid: StoredLength(tokens, finished) for tid, (tokens, finished) in store.trajectory_lengths().items()}


def plan_inputs(store: ResultStore) -> dict[str, Any]:
    """What planning against a store needs besides the sweep: done rows, refined budgets, stored trajectories."""
    return {"done": store.done_keys(), "refined": refined_budgets(store.manifest()), "stored": stored_lengths(store)}
