"""Bind a validated sweep to its datasets and models: load problem lists, check model names, plan.

Everything here runs before any result is written, so a bad model or dataset stops the sweep with one
line that names the sweep file and the field, and leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ttscale.engines.models import ALIASES, model_context_length
from ttscale.errors import ConfigError, TaskError
from ttscale.messages import one_line
from ttscale.store import ResultStore
from ttscale.sweeps.plan import PROMPT_TOKENS, Plan, StoredLength, build_plan, context_tokens
from ttscale.sweeps.rates import Measured, measured_rates
from ttscale.sweeps.refinement_record import refined_budgets
from ttscale.sweeps.spec import LoadedSweep, ModelSpec, expand_user
from ttscale.tasks import RowReport, get_task
from ttscale.tasks.base import Problem
from ttscale.tasks.spec import DatasetTask


@dataclass
class ResolvedSweep:
    """A sweep with its tasks and problems loaded, and its plan against the store's done set."""

    loaded: LoadedSweep
    tasks: list[DatasetTask]
    problems: list[list[Problem]]
    plan: Plan
    row_reports: list[RowReport] = field(default_factory=list)  # per dataset: bad rows found (and skipped)

    @property
    def spec(self):
        return self.loaded.spec


def check_model_name(loaded: LoadedSweep, index: int, model: ModelSpec) -> None:
    """Refuse a model name that cannot resolve, without loading or downloading anything."""
    name = model.name
    if name in ALIASES or not model.kind.loads_weights:  # the test double loads nothing: any name labels it
        return
    path = Path(expand_user(name))
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


def check_context(loaded: LoadedSweep, index: int, model: ModelSpec) -> None:
    """Refuse budgets that cannot fit the model's context window (when its config is on this machine), or a
    vLLM `max_model_len` set below what the largest budget needs."""
    spec = loaded.spec
    needed = context_tokens(spec)
    b_max = max(spec.budgets)
    why = (
        f"the largest budget, {b_max} tokens, needs about {needed} tokens of context ({PROMPT_TOKENS} for the "
        f"prompt, the thinking, injected continuations and the forced answer)"
    )
    option = model.kind.context_option
    configured = model.engine_options.get(option) if option else None
    if configured is not None and int(configured) < needed:
        raise ConfigError(
            f"Got {configured} for {loaded.path}: `models.{index}.engine_options.{option}`. But {why}. Raise "
            "it, or lower the largest budget."
        )
    window = model_context_length(model.name)
    if window is not None and window < needed:
        raise ConfigError(
            f"Got budgets up to {b_max} for {loaded.path}: `budgets`. Model '{model.name}' (`models.{index}`) has a "
            f"context of {window} tokens, but {why}. Lower the largest budget to at most {window - needed + b_max}."
        )


def is_hub_id(name: str) -> bool:
    """org/name that is not a local path."""
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not Path(expand_user(name)).exists()


def _bad(loaded: LoadedSweep, index: int, name: str, why: str) -> str:
    return f"Got '{name}' for {loaded.path}: `models.{index}.name`. {why}."


def resolve(
    loaded: LoadedSweep,
    done: set[tuple[str, str]] | frozenset = frozenset(),
    *,
    refined: Mapping[str, Sequence[int]] | None = None,
    stored: Mapping[str, StoredLength] | None = None,
    measured: Mapping[str, Measured] | None = None,
) -> ResolvedSweep:
    """Check every model, load every dataset's problems, and plan against `done` (with budgets refinements added,
    stored trajectories' reach for the estimate, and the rates earlier runs measured: see `build_plan`)."""
    spec = loaded.spec
    for i, model in enumerate(spec.models):
        check_model_name(loaded, i, model)
        check_context(loaded, i, model)
    tasks, problems, reports = [], [], []
    for i, ds in enumerate(spec.datasets):
        try:
            task = get_task(
                ds.name,
                path=ds.path,
                columns=ds.columns,
                answer_format=ds.answer_format,
                solution_set=ds.solution_set,
                bad_rows=ds.bad_rows,
            )
            loaded_problems, report = task.load_checked(ds.limit, ds.offset)
        except TaskError as exc:
            raise ConfigError(one_line(f"{loaded.path}: `datasets.{i}` ({ds.name}): {exc}")) from None
        tasks.append(task)
        problems.append(loaded_problems)
        reports.append(report)
    plan = build_plan(
        spec, [t.identity() for t in tasks], [[p.id for p in ps] for ps in problems], done, refined=refined,
        stored=stored, measured=measured,
    )  # fmt: skip
    for pair in plan.pairs:  # what `ttscale plan --json` shows per (model, dataset)
        pair.bad_rows_skipped = reports[[d.name for d in spec.datasets].index(pair.dataset)].counts
    return ResolvedSweep(loaded=loaded, tasks=tasks, problems=problems, plan=plan, row_reports=reports)


def resolve_in(loaded: LoadedSweep, store: ResultStore) -> ResolvedSweep:
    """`resolve` against what a results directory holds: its rows, its refinements, its trajectories, and the
    units' rates its events log measured."""
    return resolve(loaded, **plan_inputs(store))


def plan_inputs(store: ResultStore) -> dict[str, Any]:
    """What planning against a store needs besides the sweep: done rows, refined budgets, stored trajectories, and
    per model the tokens and wall time of its finished units (events.jsonl's `done` lines: `rates.measured_rates`)."""
    return {
        "done": store.done_keys(), "refined": refined_budgets(store.manifest()), "stored": stored_lengths(store),
        "measured": measured_rates(store.events()),
    }  # fmt: skip


def stored_lengths(store: ResultStore) -> dict[str, StoredLength]:
    """Every stored trajectory's reach, for the plan's estimate of the thinking still to generate."""
    return {tid: StoredLength(tokens, finished) for tid, (tokens, finished) in store.trajectory_lengths().items()}
