"""GPQA Diamond: 198 graduate-level, "Google-proof" science multiple-choice questions.

Card:
- hub: `Idavidrein/gpqa`, config `gpqa_diamond`, split `train` (the only split). The dataset is gated:
  accept its terms on the hub and log in (`hf auth login`) first, or pass a local copy.
- columns: `Question`, `Correct Answer`, `Incorrect Answer 1`..`Incorrect Answer 3`, `Record ID` (the id);
  the remaining columns (explanations, annotator data) are ignored.
- answer format: one letter. The four options are shuffled per (problem id, seed) (METHOD.md §2); the
  gold letter follows the shuffle. Solution set `letters-4`.
"""

from __future__ import annotations

from ttscale.tasks.solution_sets import letters
from ttscale.tasks.spec import TaskSpec

VERSION = 1

SPEC = TaskSpec(
    name="gpqa-diamond",
    version=VERSION,
    answer_format="choice",
    hub_id="Idavidrein/gpqa",
    config="gpqa_diamond",
    split="train",
    solutions=letters(4),
)
