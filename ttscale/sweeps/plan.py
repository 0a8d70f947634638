"""Planning: expand a sweep into cells and work units, subtract what the store holds, estimate tokens.

Pure Python (no Ray, no torch): a cell is (model, dataset, budget, seed) and its id is the sha256 of
canonical JSON over everything that changes its rows; a result row is keyed by (cell id, problem id).
A work unit is one model, one dataset, up to `problems_per_unit` problems × the seeds × the budgets that
still have a missing row among them. A (model, dataset) grid is the sweep's budgets plus any `ttscale refine`
added for that pair (recorded in the manifest, keyed by the pair's digest, so a changed config does not inherit
them). With stored nested trajectories, the token estimate counts only the thinking still to generate.

Each unit's estimated wall time is its tokens over its model's rate (`rates.py`: measured in the results
directory, the sweep file's `tokens_per_s`, or a default). With `unit_target_minutes`, a (model, dataset) gets
as many problems per unit (at most `problems_per_unit`) as keep its costliest problem's units within the target,
or, when one problem alone is over it, one problem and as few seeds per unit; a unit still over it (problems
that miss different seeds) is halved, by problems and then by seeds, down to one (problem, seed).
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from typing import Any

from ttscale import ids
from ttscale.engines.base import Sampling
from ttscale.engines.registry import Placement
from ttscale.families import resolve_family
from ttscale.forcing import ForcingConfig
from ttscale.runner import RunSettings
from ttscale.sweeps.rates import Measured, Rate, rate_for
from ttscale.sweeps.spec import DatasetSpec, ForcingSpec, ModelSpec, SamplingSpec, SweepSpec

# Every spec field is either part of a cell's identity or declared not to change results. A test fails
# when a new field is in neither list, so nothing that changes results can go unhashed.
HASHED_FIELDS: dict[type, frozenset[str]] = {
    ModelSpec: frozenset({"name", "engine", "family", "overrides", "dtype", "quantization"}),
    DatasetSpec: frozenset({"name", "path", "columns", "answer_format", "solution_set"}),  # via task.identity()
    ForcingSpec: frozenset(ForcingSpec.model_fields),
    SamplingSpec: frozenset(SamplingSpec.model_fields),
    SweepSpec: frozenset({"models", "datasets", "budgets", "seeds", "forcing", "sampling"}),
}
IGNORED_FIELDS: dict[type, frozenset[str]] = {
    ModelSpec: frozenset(
        {"tensor_parallel", "device", "replicas", "threads", "resources", "engine_options", "tokens_per_s"}
    ),
    DatasetSpec: frozenset({"limit", "offset", "bad_rows"}),  # which problems, not what a problem's row holds
    ForcingSpec: frozenset(),
    SamplingSpec: frozenset(),
    SweepSpec: frozenset(
        {
            "name",
            "output_dir",
            "problems_per_unit",
            "max_attempts",
            "unit_timeout_s",
            "flush_every_groups",
            "flush_every_s",
            "unit_target_minutes",
        }
    ),  # how work is cut into units, and how it is retried: never what a row holds
}


PROMPT_TOKENS = 1024  # room for the longest prompt (chat template + problem + options), in tokens
CONTINUATION_TOKENS = 8  # an upper estimate of one injected continuation ("\nWait" is 2 tokens)
ANSWER_OVERHEAD_TOKENS = 48  # the forced-answer string, plus the deepest candidate and its closing brace


def context_tokens(spec: SweepSpec) -> int:
    """Tokens of context one trajectory needs at the largest budget: prompt allowance + B_max + injected
    continuations (up to `max_continuations`, else one per 64 thinking tokens, at least 64) + forced answer."""
    b_max = max(spec.budgets)
    cap = spec.forcing.max_continuations
    injections = cap if cap is not None else max(64, b_max // 64)
    if spec.forcing.on_early_stop == "accept":
        injections = 0
    return (
        PROMPT_TOKENS
        + b_max
        + CONTINUATION_TOKENS * injections
        + ANSWER_OVERHEAD_TOKENS
        + spec.forcing.answer_max_tokens
    )


def engine_options(spec: SweepSpec, model: ModelSpec, *, threads: int) -> dict[str, Any]:
    """The keyword arguments one actor's engine is built with: the sweep's own `engine_options`, plus what the
    engine takes from its placement (ttscale/engines/registry.py says which, per engine)."""
    placement = Placement(
        dtype=model.resolved_dtype,
        on_gpus=model.on_gpus,
        threads=threads,
        tensor_parallel=model.tensor_parallel,
        context_tokens=context_tokens(spec),
        quantization=model.quantization,
    )
    return model.kind.options_for(model.engine_options, placement)


def run_settings(spec: SweepSpec, model: ModelSpec) -> RunSettings:
    """The RunSettings a model's actors use; its identity is what cell ids hash."""
    return RunSettings(
        model=model.name,
        engine=model.engine,
        family=resolve_family(model.name, model.family, model.overrides),
        forcing=ForcingConfig(**spec.forcing.model_dump()),
        sampling=Sampling(**spec.sampling.model_dump()),
        dtype=model.resolved_dtype,
        quantization=model.quantization,
    )


@dataclass(frozen=True)
class WorkUnit:
    """One actor call: one model, one dataset, some problems × seeds × budgets (those with missing rows)."""

    unit_id: str
    model: int  # index into spec.models
    dataset: int  # index into spec.datasets
    problem_ids: tuple[str, ...]
    seeds: tuple[int, ...]
    budgets: tuple[int, ...]
    rows: int  # rows still missing among problems × seeds × budgets (the unit writes exactly these)
    tokens: int  # estimated generated tokens (thinking + answers)
    thinking: int = 0  # of `tokens`, thinking (none for budgets cut from stored trajectories)


@dataclass
class PairSummary:
    """Planned work for one (model, dataset)."""

    model: str
    dataset: str
    cells: int = 0
    rows: int = 0
    rows_done: int = 0
    units: int = 0
    tokens_nested: int = 0  # estimated generated tokens for the remaining work, nested mode (stored reused)
    tokens_independent: int = 0  # the same work in independent mode
    thinking_tokens: int = 0  # of tokens_nested, thinking (0 when stored trajectories cover every budget)
    forced_answers: int = 0  # forced answers (= rows) still to run
    budgets: list[int] = field(default_factory=list)  # this pair's grid: the sweep's budgets plus refined ones
    pair_id: str = ""  # the digest its cell ids derive from (what a refinement is keyed by)
    bad_rows_skipped: dict[str, int] = field(default_factory=dict)  # the dataset's rows dropped (bad_rows: skip)
    problems_per_unit: int = 0  # the sizing: problems per unit (`problems_per_unit`, or fewer for the time target)
    seeds_per_unit: int = 0  # and seeds per unit (all, unless one problem alone is over the time target)

    @property
    def rows_remaining(self) -> int:
        return self.rows - self.rows_done


@dataclass
class Plan:
    """The whole sweep: cell ids per (model, dataset, budget, seed), work units, and a summary."""

    cell_ids: dict[tuple[int, int, int, int], str]  # (model idx, dataset idx, budget, seed) -> cell id
    units: list[WorkUnit]
    pairs: list[PairSummary] = field(default_factory=list)
    grids: dict[tuple[int, int], tuple[int, ...]] = field(default_factory=dict)  # (model, dataset) -> budgets
    rates: dict[int, Rate] = field(default_factory=dict)  # model idx -> its units' tokens per second
    models: list[str] = field(default_factory=list)  # model names, by index
    target_minutes: float | None = None  # the sweep's unit_target_minutes

    def unit_minutes(self, unit: WorkUnit) -> float:
        """The unit's estimated wall time on its actor: its tokens over its model's rate."""
        return unit.tokens / self.rates[unit.model].tokens_per_s / 60

    def unit_times(self) -> list[UnitTimes]:
        """Per model (that has a rate): its rate and its units' estimated minutes."""
        out = []
        for m, rate in sorted(self.rates.items()):
            minutes = [self.unit_minutes(u) for u in self.units if u.model == m]
            over = [x for x in minutes if self.target_minutes is not None and x > self.target_minutes]
            out.append(UnitTimes(self.models[m], rate, minutes, over))
        return out

    @property
    def rows_total(self) -> int:
        return sum(p.rows for p in self.pairs)

    @property
    def rows_done(self) -> int:
        return sum(p.rows_done for p in self.pairs)

    @property
    def rows_remaining(self) -> int:
        return self.rows_total - self.rows_done

    def expected_keys(self, unit: WorkUnit, done: Set[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (cell id, problem id) rows this unit must produce: its grid minus what is already stored."""
        return {
            (self.cell_ids[unit.model, unit.dataset, b, s], p)
            for p in unit.problem_ids
            for s in unit.seeds
            for b in unit.budgets
        } - set(done)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows_total": self.rows_total,
            "rows_done": self.rows_done,
            "rows_remaining": self.rows_remaining,
            "units": len(self.units),
            "unit_target_minutes": self.target_minutes,
            "pairs": [{**p.__dict__, "rows_remaining": p.rows_remaining} for p in self.pairs],
            "models": [t.to_json() for t in self.unit_times()],
        }


@dataclass(frozen=True)
class UnitTimes:
    """One model's rate and its units' estimated minutes (what `ttscale plan` shows per model)."""

    model: str
    rate: Rate
    minutes: list[float]
    over_target: list[float]  # minutes of the units over unit_target_minutes: one (problem, seed) each

    @property
    def median(self) -> float | None:
        return statistics.median(self.minutes) if self.minutes else None

    @property
    def max(self) -> float | None:
        return max(self.minutes) if self.minutes else None

    def to_json(self) -> dict[str, Any]:
        def rounded(x: float | None) -> float | None:
            return None if x is None else round(x, 2)

        return {"model": self.model, **self.rate.to_json(), "units": len(self.minutes),
                "unit_minutes_median": rounded(self.median), "unit_minutes_max": rounded(self.max),
                "units_over_target": len(self.over_target)}  # fmt: skip


@dataclass(frozen=True)
class StoredLength:
    """How far a stored nested trajectory reaches: its model tokens, and whether it ended (then it serves any
    budget). What the token estimate subtracts."""

    model_tokens: int
    finished: bool

    def covers(self, budget: int) -> bool:
        return self.finished or self.model_tokens >= budget


def build_plan(
    spec: SweepSpec,
    dataset_identities: Sequence[Mapping[str, Any]],
    problem_ids: Sequence[Sequence[str]],
    done: Set[tuple[str, str]] = frozenset(),
    *,
    refined: Mapping[str, Sequence[int]] | None = None,
    stored: Mapping[str, StoredLength] | None = None,
    measured: Mapping[str, Measured] | None = None,
) -> Plan:
    """Expand the sweep (datasets given as identity + ordered problem ids) and subtract `done` row keys.

    `refined`: budgets `ttscale refine` added, per pair digest (see `refinement_record.refined_budgets`); they join
    that pair's grid only. `stored`: nested trajectory id → how far its stored version reaches, so the
    estimate counts only thinking still to generate (a budget cut from a stored trajectory costs none).
    `measured`: per model name, what earlier runs measured of its units (`rates.measured_rates`), for the rate
    each unit's minutes are estimated with (and units sized by, under `unit_target_minutes`)."""
    seeds, refined, stored, measured = spec.seeds, refined or {}, stored or {}, measured or {}
    nested = spec.forcing.trajectory == "nested"
    cell_ids: dict[tuple[int, int, int, int], str] = {}
    units: list[WorkUnit] = []
    pairs: list[PairSummary] = []
    grids: dict[tuple[int, int], tuple[int, ...]] = {}
    rates = {m: rate_for(model, measured.get(model.name)) for m, model in enumerate(spec.models)}
    target_minutes = spec.unit_target_minutes
    for m, model in enumerate(spec.models):
        settings = run_settings(spec, model)
        target = None if target_minutes is None else target_minutes * 60 * rates[m].tokens_per_s  # in tokens
        for d, dataset in enumerate(spec.datasets):
            pair_id = ids.pair_digest(
                model=settings.model_identity(), dataset=dataset_identities[d], settings=settings.settings_identity()
            )
            budgets = tuple(sorted({*spec.budgets, *refined.get(pair_id, ())}))
            grids[m, d] = budgets
            cells = {(b, s): ids.cell_id(pair_id, b, s) for b in budgets for s in seeds}
            cell_ids.update({(m, d, b, s): c for (b, s), c in cells.items()})
            pair = PairSummary(model=model.name, dataset=dataset.name, cells=len(cells), budgets=list(budgets),
                               pair_id=pair_id)  # fmt: skip
            reach = _reach(settings, dataset_identities[d], stored) if nested and stored else None
            pid_list = list(problem_ids[d])
            pair.rows = len(cells) * len(pid_list)

            def unit_of(batch, unit_seeds, m=m, d=d, budgets=budgets, cells=cells, reach=reach):
                return _unit(m, d, batch, unit_seeds, budgets, cells, done, spec, reach)

            pair_units, pair.problems_per_unit, pair.seeds_per_unit = _pair_units(
                pid_list, seeds, unit_of, spec.problems_per_unit, target
            )
            for unit in pair_units:
                units.append(unit)
                pair.units += 1
                pair.tokens_nested += unit.tokens
                pair.thinking_tokens += unit.thinking
                pair.forced_answers += unit.rows
                pair.tokens_independent += _tokens(
                    len(unit.problem_ids), len(unit.seeds), unit.budgets, spec, nested=False
                )
            pair.rows_done = pair.rows - pair.forced_answers
            pairs.append(pair)
    return Plan(
        cell_ids=cell_ids, units=units, pairs=pairs, grids=grids, rates=rates, models=[m.name for m in spec.models],
        target_minutes=target_minutes,
    )  # fmt: skip


UnitOf = Callable[[tuple[str, ...], tuple[int, ...]], WorkUnit | None]  # a batch's unit, trimmed to its missing rows


def _pair_units(
    problems: Sequence[str], seeds: Sequence[int], unit_of: UnitOf, cap: int, target: float | None
) -> tuple[list[WorkUnit], int, int]:
    """One (model, dataset)'s units, and its sizing (problems per unit, seeds per unit).

    Without a target (in tokens), batches of `cap` problems in dataset order, every seed: the plan as it always
    was. With one, batches of as many problems (at most `cap`) as keep the costliest problem's work within it,
    the same size throughout so a batch keeps its problems (and its unit id) while the sizing holds; when one
    problem alone is over the target, one problem and balanced groups of as few seeds as fit. A unit still over
    it (its problems miss different seeds or budgets, so its rectangle costs more) is halved, by problems and
    then by seeds (`_fitted`); one (problem, seed) over it stays whole: a trajectory is never split."""
    k, groups = cap, [tuple(seeds)]
    if target is not None:
        k, groups = _sizing(problems, seeds, unit_of, cap, target)
    units = []
    for start in range(0, len(problems), k):
        batch = tuple(problems[start : start + k])
        for group in groups:
            units += _fitted(unit_of(batch, group), unit_of, target)
    return units, k, max(len(g) for g in groups)


def _sizing(
    problems: Sequence[str], seeds: Sequence[int], unit_of: UnitOf, cap: int, target: float
) -> tuple[int, list[tuple[int, ...]]]:
    """(problems per unit, seed groups) that keep units within `target` tokens (see `_pair_units`)."""
    costs = [u.tokens for p in problems if (u := unit_of((p,), tuple(seeds))) is not None]
    if not costs:
        return cap, [tuple(seeds)]
    worst = max(costs)
    if worst <= target:
        return max(1, min(cap, int(target // worst))), [tuple(seeds)]
    per_seed = max(u.tokens for p in problems for s in seeds if (u := unit_of((p,), (s,))) is not None)
    fit = max(1, min(len(seeds), int(target // per_seed)))
    n_groups = math.ceil(len(seeds) / fit)
    size = math.ceil(len(seeds) / n_groups)  # balanced: 8 seeds at 5 a unit are 4 + 4, not 5 + 3
    return 1, [tuple(seeds[i : i + size]) for i in range(0, len(seeds), size)]


def _fitted(unit: WorkUnit | None, unit_of: UnitOf, target: float | None) -> list[WorkUnit]:
    """`unit`, or its halves (problems, then seeds) until each is within `target` tokens or one (problem, seed)."""
    if unit is None:
        return []
    if target is None or unit.tokens <= target:
        return [unit]
    problems, seeds = unit.problem_ids, unit.seeds
    if len(problems) > 1:
        k = len(problems) // 2
        halves = [(problems[:k], seeds), (problems[k:], seeds)]
    elif len(seeds) > 1:
        k = len(seeds) // 2
        halves = [(problems, seeds[:k]), (problems, seeds[k:])]
    else:
        return [unit]
    return [u for ps, ss in halves for u in _fitted(unit_of(ps, ss), unit_of, target)]


def _reach(settings: RunSettings, dataset_identity: Mapping[str, Any], stored: Mapping[str, StoredLength]):
    """(problem id, seed) → the stored version of its nested trajectory (None when not stored)."""
    model, pair_settings = settings.model_identity(), settings.trajectory_identity()

    def reach(problem_id: str, seed: int) -> StoredLength | None:
        tid = ids.trajectory_id(model=model, dataset=dataset_identity, settings=pair_settings,
                                problem_id=problem_id, seed=seed, budget=None)  # fmt: skip
        return stored.get(tid)

    return reach


def _unit(m, d, problems, seeds, budgets, cells, done, spec, reach=None) -> WorkUnit | None:
    """The unit for one problem batch, trimmed to the problems, seeds and budgets that still miss a row."""
    missing = [(b, s, p) for b in budgets for s in seeds for p in problems if (cells[b, s], p) not in done]
    if not missing:
        return None
    unit_budgets = tuple(sorted({b for b, _, _ in missing}))
    unit_seeds = tuple(sorted({s for _, s, _ in missing}))
    lacking = {p for _, _, p in missing}
    problems = tuple(p for p in problems if p in lacking)  # in dataset order
    nested = spec.forcing.trajectory == "nested"
    if reach is None:
        thinking = len(problems) * len(unit_seeds) * (max(unit_budgets) if nested else sum(unit_budgets))
    else:  # nested, with stored trajectories: only thinking beyond what each stored version reaches
        thinking = sum(_to_generate(reach(p, s), max(unit_budgets)) for p in problems for s in unit_seeds)
    tokens = thinking + spec.forcing.answer_max_tokens * len(missing)
    unit_id = hashlib.sha256(
        f"{m}|{d}|{cells[budgets[0], seeds[0]]}|{problems}|{unit_seeds}|{unit_budgets}".encode()
    ).hexdigest()[:16]
    return WorkUnit(
        unit_id, m, d, problems, unit_seeds, unit_budgets, rows=len(missing), tokens=tokens, thinking=thinking
    )


def _to_generate(stored: StoredLength | None, budget: int) -> int:
    """Thinking tokens a trajectory still needs to reach `budget`: none when its stored version covers it."""
    if stored is None:
        return budget
    return 0 if stored.covers(budget) else budget - stored.model_tokens


def split_unit(unit: WorkUnit) -> tuple[WorkUnit, WorkUnit] | None:
    """Two halves of a unit, for a smaller batch after it ran out of memory: its problems halved, or, with one
    problem, its seeds; None for one problem × one seed (budgets stay together: nested forcing cuts them all
    from one trajectory)."""
    if len(unit.problem_ids) > 1:
        k = len(unit.problem_ids) // 2
        parts = [(unit.problem_ids[:k], unit.seeds), (unit.problem_ids[k:], unit.seeds)]
    elif len(unit.seeds) > 1:
        k = len(unit.seeds) // 2
        parts = [(unit.problem_ids, unit.seeds[:k]), (unit.problem_ids, unit.seeds[k:])]
    else:
        return None
    size = len(unit.problem_ids) * len(unit.seeds)

    def half(i: int, problems: tuple[str, ...], seeds: tuple[int, ...]) -> WorkUnit:
        share = len(problems) * len(seeds)
        return replace(
            unit, unit_id=f"{unit.unit_id}.{i}", problem_ids=problems, seeds=seeds,
            rows=unit.rows * share // size, tokens=unit.tokens * share // size,
            thinking=unit.thinking * share // size,
        )  # fmt: skip

    return half(1, *parts[0]), half(2, *parts[1])


def _tokens(problems: int, seeds: int, budgets: Sequence[int], spec: SweepSpec, *, nested: bool) -> int:
    """Upper estimate of generated tokens: thinking (B_max per trajectory nested, ΣB independent) + answers."""
    thinking = max(budgets) if nested else sum(budgets)
    answers = spec.forcing.answer_max_tokens * len(budgets)
    return problems * seeds * (thinking + answers)


def budget_completion(
    spec: SweepSpec, plan: Plan, problem_ids: Sequence[Sequence[str]], done: Set[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Rows stored vs planned for every (model, dataset, budget): what `ttscale status` shows."""
    out = []
    for m, model in enumerate(spec.models):
        for d, dataset in enumerate(spec.datasets):
            for b in plan.grids.get((m, d), spec.budgets):
                cells = [plan.cell_ids[m, d, b, s] for s in spec.seeds]
                total = len(cells) * len(problem_ids[d])
                stored = sum(1 for c in cells for p in problem_ids[d] if (c, p) in done)
                out.append({"model": model.name, "dataset": dataset.name, "budget": b, "rows": total, "done": stored})
    return out
