"""Datasets: find one by name, hub id or file path with `get_task`; then load, prompt and grade it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from ttscale.errors import TaskError
from ttscale.ids import stable_hash
from ttscale.tasks import aime24, aime25, demo_arith, demo_mc, gpqa, gsm8k, math500
from ttscale.tasks.base import AnswerFormat, Grade, Problem, PromptedProblem, Task
from ttscale.tasks.formats import layout_for
from ttscale.tasks.grading import check_golds, extract_boxed_answer, join_golds
from ttscale.tasks.prompts import DEFAULT_INSTRUCTIONS
from ttscale.tasks.solution_sets import SolutionSet, declared, solution_set_named
from ttscale.tasks.sources import Source, file_source, looks_like_path, read_rows
from ttscale.tasks.spec import DatasetTask, TaskSpec, bind
from ttscale.tasks.validation import BadRowPolicy, RowReport, check_policy

__all__ = [
    "AnswerFormat",
    "DatasetTask",
    "Grade",
    "Problem",
    "PromptedProblem",
    "RowReport",
    "SolutionSet",
    "Task",
    "TaskSpec",
    "check_golds",
    "extract_boxed_answer",
    "get_task",
    "join_golds",
    "list_tasks",
]

REGISTRY: dict[str, TaskSpec] = {
    m.SPEC.name: m.SPEC for m in (aime24, aime25, gpqa, math500, gsm8k, demo_arith, demo_mc)
}
AD_HOC_VERSION = 1  # files and bare hub ids: their content hash or hub id carries the rest
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def list_tasks() -> list[str]:
    """The registered dataset names."""
    return list(REGISTRY)


def get_task(
    name_or_path: str,
    *,
    path: str | None = None,
    columns: Mapping[str, str] | None = None,
    answer_format: AnswerFormat | None = None,
    solution_set: str | Sequence[str] | None = None,
    bad_rows: BadRowPolicy = "refuse",
) -> DatasetTask:
    """A task from a registered name (read from a local copy at `path` if given), a hub id or a file.

    `columns` maps "question", "answer" and optionally "choices" and "id" to a file's own column names;
    `answer_format` and `solution_set` override the defaults; a set is a name ("letters-4", "int-000-999",
    "none"...) or the dataset's own list of answers (scored as declared, e.g. ["yes", "no", "maybe"]).
    `bad_rows` ("refuse" or "skip") says what `load` does with rows that are empty, ungradable, repeated or
    undecodable: refuse the dataset in one line, or drop them with a warning.
    """
    policy = check_policy(bad_rows)
    if name_or_path in REGISTRY:
        spec = REGISTRY[name_or_path]
        task = bind(spec, file_source(path) if path is not None else spec.source(), columns)
    elif path is not None:
        raise TaskError(
            f"Got path='{path}' for '{name_or_path}': path= only applies to a registered name "
            f"({', '.join(REGISTRY)}); pass the file itself as the dataset."
        )
    else:
        task = _ad_hoc(name_or_path, columns)
    return replace(_override(task, answer_format, solution_set), bad_rows=policy)


def _ad_hoc(name: str, columns: Mapping[str, str] | None) -> DatasetTask:
    """A task for a file or a hub id: its layout (read now, so bad columns fail early) fixes the format."""
    if looks_like_path(name):
        source = file_source(name)
    elif _HUB_ID.fullmatch(name):
        source = Source("hub", name)
    else:
        raise TaskError(
            f"Unknown dataset '{name}'. Known: {', '.join(REGISTRY)}; "
            "or give a hub id (org/name) or a .jsonl/.parquet path."
        )
    layout = layout_for(read_rows(source).columns, columns, source.describe())
    fmt: AnswerFormat = "choice" if layout.choices else "math"
    spec = TaskSpec(name=name, version=AD_HOC_VERSION, answer_format=fmt)
    return bind(spec, source, columns)


def _override(
    task: DatasetTask, answer_format: AnswerFormat | None, solution_set: str | Sequence[str] | None
) -> DatasetTask:
    if answer_format is not None and answer_format != task.answer_format:
        if answer_format not in DEFAULT_INSTRUCTIONS:
            known = ", ".join(DEFAULT_INSTRUCTIONS)
            raise TaskError(f"Got answer_format='{answer_format}': use one of {known}.")
        task = replace(
            task,
            answer_format=answer_format,
            instruction=DEFAULT_INSTRUCTIONS[answer_format],
            letters_per_problem=answer_format == "choice" and task.solutions is None,
        )
    if isinstance(solution_set, str):
        task = replace(task, solutions=solution_set_named(solution_set), letters_per_problem=False)
    elif solution_set is not None:
        task = replace(task, solutions=declared_set(solution_set), letters_per_problem=False)
    return task


def declared_set(values: Sequence[str]) -> SolutionSet:
    """A dataset's own answers as a set, named by a hash of its values so a changed list gives new cells."""
    values = [str(v) for v in values]
    return declared(f"declared-{stable_hash(values, length=10)}", values)
