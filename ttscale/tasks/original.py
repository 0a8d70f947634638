"""The original study's dataset ids (its configs' `dataset_name`, its analysis' short names) and the task each is.

The original code (see ../shared/seed/README.md) loaded three hub datasets by id and its analysis called them
by a short name taken from the run directory. Each maps onto a registered task here; `note` says what, if
anything, the task asks differently (docs/migrating.md repeats it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OriginalDataset:
    """One dataset of the original study and the registered task that measures it."""

    original_id: str  # the hub id the original configs give as `dataset_name`
    short_name: str  # what the original analysis called it (`emergence_scores(dataset_name="gpqa")`)
    task: str  # the registered ttscale task (ttscale.tasks.REGISTRY)
    note: str  # how the task differs from what the original asked, in one sentence


ORIGINAL_DATASETS: dict[str, OriginalDataset] = {
    d.original_id: d
    for d in (
        OriginalDataset(
            "Idavidrein/gpqa",
            "gpqa",
            "gpqa-diamond",
            "config gpqa_diamond as in the original, but the revised question and options (the original read "
            "the Pre-Revision columns), shuffled per (problem, seed) instead of once",
        ),
        OriginalDataset("math-ai/aime25", "aime25", "aime25", "the same hub dataset and split (test)"),
        OriginalDataset(
            "Maxwell-Jia/AIME_2024",
            "aime_2024",
            "aime24",
            "the same 30 problems, read from HuggingFaceH4/aime_2024 (problem ids 60-89)",
        ),
    )
}


def task_for(name: str) -> str | None:
    """The registered task an original dataset id or short name stands for (case-insensitive), else None."""
    key = name.strip().lower()
    for d in ORIGINAL_DATASETS.values():
        if key in (d.original_id.lower(), d.short_name):
            return d.task
    return None
