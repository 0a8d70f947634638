"""MATH-500: the 500-problem subset of Hendrycks' MATH test set used by "Let's Verify Step by Step".

Card:
- hub: `HuggingFaceH4/MATH-500` (default config), split `test`, 500 rows
- columns: `problem`, `solution`, `answer` (LaTeX), `subject`, `level`, `unique_id` (the id,
  e.g. "test/precalculus/807.json"); `subject` and `level` are kept in Problem.meta.
- answer format: free-form LaTeX graded by math-verify equivalence; no solution set (discrete metrics only).
"""

from __future__ import annotations

from ttscale.tasks.spec import TaskSpec

VERSION = 1

SPEC = TaskSpec(
    name="math500",
    version=VERSION,
    answer_format="math",
    hub_id="HuggingFaceH4/MATH-500",
    split="test",
)
