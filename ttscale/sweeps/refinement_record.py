"""The refinements a results directory's manifest records: the budgets `ttscale refine` added to each (model,
dataset) grid, read back and appended. (Choosing and running them is `refine.py`'s job.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ttscale.store import refinement_budgets


def refined_budgets(manifest: Mapping[str, Any] | None) -> dict[str, list[int]]:
    """pair digest → every budget refinements added to its grid (sorted). A pair is keyed by its digest, not its
    names, so a sweep whose config changed (new cell ids) does not inherit another config's budgets."""
    return {pair_id: list(budgets) for pair_id, budgets in refinement_budgets(manifest, "pair_id").items()}


def with_refinement(manifest: Mapping[str, Any], refinement: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest with one more refinement recorded (recorded before it runs, so a killed refine resumes)."""
    return {**manifest, "refinements": [*manifest.get("refinements", []), dict(refinement)]}

