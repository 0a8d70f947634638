"""Bind a validated sweep to its datasets and models: load problem lists, check model names, plan.

Everything here runs before any result is written, so a bad model or dataset stops the sweep with one
line that names the sweep file and the field, and leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ttscale.actors.engines.models import ALIASES
from ttscale.errors import ConfigError, TaskError
from ttscale.sweeps.plan import Plan, build_plan
from ttscale.sweeps.spec import LoadedSweep, ModelSpec
from ttscale.tasks import get_task
from ttscale.tasks.base import Problem
from ttscale.tasks.spec import DatasetTask


@dataclass
class ResolvedSweep:
    """A sweep with its tasks and problems loaded, and its plan against the store's done set."""

    loaded: LoadedSweep
    tasks: list[DatasetTask]
    problems: list[list[Problem]]
    plan: Plan

    @property
    def spec(self):
        return self.loaded.spec


def check_model_name(loaded: LoadedSweep, index: int, model: ModelSpec) -> None:
    """Refuse a model name that cannot resolve, without loading or downloading anything."""
    name = model.name
    if name in ALIASES:
        return
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigError(_bad(loaded, index, name, f"File {path} does not exist. Give an existing .gguf file"))
        return
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(
                _bad(loaded, index, name, "The directory has no config.json. Give a Hugging Face model dir")
            )
        return
    if is_hub_id(name):
        return  # a hub id: checked by `ttscale sweep` before it starts; fetched when the actor loads it
    known = ", ".join(sorted(ALIASES))
    raise ConfigError(
        _bad(
            loaded, index, name, f"Not an alias (known: {known}), a local directory, a .gguf file or a hub id org/name"
        )
    )


def is_hub_id(name: str) -> bool:
    """org/name that is not a local path."""
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not Path(name).expanduser().exists()


def _bad(loaded: LoadedSweep, index: int, name: str, why: str) -> str:
    return f"Got '{name}' for {loaded.path}: `models.{index}.name`. {why}."


def resolve(loaded: LoadedSweep, done: set[tuple[str, str]] | frozenset = frozenset()) -> ResolvedSweep:
    """Check every model, load every dataset's problems, and plan against `done`."""
    spec = loaded.spec
    for i, model in enumerate(spec.models):
        check_model_name(loaded, i, model)
    tasks, problems = [], []
    for i, ds in enumerate(spec.datasets):
        try:
            task = get_task(
                ds.name, path=ds.path, columns=ds.columns, answer_format=ds.answer_format, solution_set=ds.solution_set
            )
            problems.append(task.load(ds.limit))
        except TaskError as exc:
            raise ConfigError(f"{loaded.path}: `datasets.{i}.name` ({ds.name}): {exc}") from None
        tasks.append(task)
    plan = build_plan(spec, [t.identity() for t in tasks], [[p.id for p in ps] for ps in problems], done)
    return ResolvedSweep(loaded=loaded, tasks=tasks, problems=problems, plan=plan)
