"""Run one work unit on one engine: prompts → trajectories → forced answers → grades and scores → rows.

A work unit is one model, one dataset, a batch of problems × seeds, and every budget. The in-process
`measure()` loop and the Ray worker both call `run_unit`, so the two produce identical rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ttscale import ids, row_fields
from ttscale.engines.base import Engine, Sampling, ScoreRequest
from ttscale.families import Family
from ttscale.forcing import (
    ForcingConfig,
    ForcingTokens,
    GrowingTrajectories,
    Stopwatch,
    Trajectory,
    derive_seed,
    force_answers,
    forced_prefix,
    generate_trajectories,
    open_thinking,
)
from ttscale.scoring import Trie, build_trie, candidate_logprobs
from ttscale.tasks.base import Problem, PromptedProblem, Task

MEASUREMENT_VERSION = 3
"""The version of what a row's numbers mean, hashed into every cell id, so that rows measured under older
semantics are measured again rather than mixed with new ones. 2: the closing brace is every `}`-initial
token, top-p applies to the renormalised top-k, back-to-back continuations count apart, and an unclosed
answer is graded only when complete on its own. 3: an answer cut by its token cap is graded incorrect
(METHOD.md §4) and rows record it (`truncated`)."""
TRAJECTORY_VERSION = 2
"""The version of how a trajectory is generated, hashed into every trajectory id: the last MEASUREMENT_VERSION
that changed generation (2: top-p on the renormalised top-k). A new version that changes only what is read
from a trajectory (grading, scoring) leaves it, so stored trajectories are reused, not generated again."""


@dataclass(frozen=True)
class RunSettings:
    """Everything besides the unit's problems, seeds and budgets that decides its rows."""

    model: str  # as named in the sweep (alias, path or hub id)
    engine: str
    family: Family
    forcing: ForcingConfig = field(default_factory=ForcingConfig)
    sampling: Sampling = field(default_factory=lambda: Sampling(temperature=0.6, top_p=0.95))
    dtype: str = "float32"
    quantization: int | None = None  # bitsandbytes bits (8 or 4), or the model's own weights

    def model_identity(self) -> dict[str, Any]:
        """What a cell id hashes of the model; quantisation only when set, so unquantised ids never change."""
        identity = {"name": self.model, "engine": self.engine, "dtype": self.dtype}
        return identity if self.quantization is None else {**identity, "quantization": self.quantization}

    def settings_identity(self) -> dict[str, Any]:
        return {
            "family": self.family, "forcing": self.forcing, "sampling": self.sampling,
            "measurement": MEASUREMENT_VERSION,
        }  # fmt: skip

    def trajectory_identity(self) -> dict[str, Any]:
        """What a trajectory id hashes of the settings: the settings, with the generation's own version."""
        return {**self.settings_identity(), "measurement": TRAJECTORY_VERSION}

    @cached_property
    def config_json(self) -> str:
        """Everything about the model and its settings that decides results, as canonical JSON (built once)."""
        return ids.canonical_json({"model": self.model_identity(), "settings": self.settings_identity()})

    @cached_property
    def config_id(self) -> str:
        """A short hash of `config_json` (built once): rows of one model name with two config ids must not be mixed."""
        return hashlib.sha256(self.config_json.encode()).hexdigest()[:12]


@dataclass
class UnitResult:
    """The rows and trajectories one unit produced (plain dicts matching the store's schemas)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    trajectories: list[dict[str, Any]] = field(default_factory=list)
    generated_tokens: int = 0  # model + answer tokens the engine generated for this unit
    thinking_generated: int = 0  # of which model thinking tokens (0 when every budget was cut from the store)


@dataclass
class UnitProgress:
    """How far a running unit is; `run_unit` updates it as it goes, another thread may read it."""

    phase: str = "queued"  # queued | trajectories | answers | scoring | done
    trajectories_total: int = 0
    trajectories_done: int = 0
    trajectories_streamed: int = 0  # of the done ones, those whose rows went out already (the driver counts them)

    def still_running(self) -> dict[str, Any]:
        """Live counts of what has not streamed out yet: the driver counts streamed trajectories once stored."""
        streamed = min(self.trajectories_streamed, self.trajectories_done)
        return {
            "phase": self.phase, "trajectories_total": self.trajectories_total - streamed,
            "trajectories_done": self.trajectories_done - streamed,
        }  # fmt: skip


def cell_ids(
    task: Task, settings: RunSettings, budgets: Sequence[int], seeds: Sequence[int]
) -> dict[tuple[int, int], str]:
    """(budget, seed) → cell id for one model × dataset."""
    pair = ids.pair_digest(
        model=settings.model_identity(), dataset=task.identity(), settings=settings.settings_identity()
    )
    return {(b, s): ids.cell_id(pair, b, s) for b in budgets for s in seeds}


def unit_groups(
    task: Task, settings: RunSettings, budgets: Sequence[int], seeds: Sequence[int], keys: Collection[tuple[str, str]]
) -> set[tuple[str, int]]:
    """The (problem id, seed) groups that hold any of these (cell id, problem id) row keys: what a unit measures
    when only some of its rows are missing (a retry after some of its groups were stored)."""
    seed_of = {cell: seed for (_, seed), cell in cell_ids(task, settings, budgets, seeds).items()}
    return {(pid, seed_of[cell]) for cell, pid in keys if cell in seed_of}


def run_unit(
    engine: Engine,
    task: Task,
    problems: Sequence[Problem],
    *,
    seeds: Sequence[int],
    budgets: Sequence[int],
    settings: RunSettings,
    progress: UnitProgress | None = None,
    stored: Sequence[Mapping[str, Any]] = (),
) -> UnitResult:
    """Measure every (problem, seed, budget) of the unit and return all its rows at once, in (problem, seed,
    budget) order: `iter_unit`'s pieces joined (what the in-process `measure()` loop and tests use)."""
    result = UnitResult()
    for piece in iter_unit(
        engine, task, problems, seeds=seeds, budgets=budgets, settings=settings, progress=progress, stored=stored
    ):
        if piece.checkpoint:
            continue
        result.rows.extend(piece.rows)
        result.trajectories.extend(piece.trajectories)
        result.generated_tokens += piece.generated_tokens
        result.thinking_generated += piece.thinking_generated
    order = {(p.id, s): i for i, (p, s) in enumerate((p, s) for p in problems for s in seeds)}
    result.rows.sort(key=lambda r: (order[r["problem_id"], r["seed"]], r["budget"]))
    result.trajectories.sort(key=lambda t: (order[t["problem_id"], t["seed"]], t["budget"] or 0))
    return result


def iter_unit(
    engine: Engine,
    task: Task,
    problems: Sequence[Problem],
    *,
    seeds: Sequence[int],
    budgets: Sequence[int],
    settings: RunSettings,
    progress: UnitProgress | None = None,
    stored: Sequence[Mapping[str, Any]] = (),
    groups: Collection[tuple[str, int]] | None = None,
    checkpoint_every_s: float | None = None,
) -> Iterator[UnitPiece]:
    """Measure the unit's (problem, seed) groups (all, or only `groups`) and yield their rows as they finish.

    A group is one (problem, seed): its trajectory (nested) or one per budget (independent), and a row per
    budget. On an engine that takes calls from several threads (`Engine.concurrent_calls`: vLLM), the
    trajectories are generated in a thread of their own and each group is answered, scored and yielded as soon
    as its trajectories are complete, with whichever others finished meanwhile, while the rest still generate;
    elsewhere every group is yielded together once all are generated. `progress`, if given, is kept up to date.

    `checkpoint_every_s` (nested mode): that often while trajectories generate, yield a checkpoint piece
    (`UnitPiece.checkpoint`, no rows) holding a snapshot of every trajectory still growing, its tokens so far; a
    retry given it as `stored` extends it rather than starting over (see `forcing.GrowingTrajectories`).

    `stored` (nested mode): trajectories of the unit's (problem, seed) pairs already in the store
    (`TRAJECTORY_SCHEMA` rows, the longest version of each). Budgets within one are cut from its tokens, so
    no thinking is generated for them; a budget beyond it extends it from its stored tokens. Only trajectories
    that are new or grew are returned to be stored (a grown one as a new, longer version of the same id)."""
    unit = _Unit(engine, task, problems, seeds, budgets, settings, progress or UnitProgress(), stored, groups)
    if unit.groups:
        yield from unit.pieces(checkpoint_every_s if unit.nested else None)


@dataclass
class UnitPiece:
    """Finished (problem, seed) groups of a unit: their rows, and their trajectories that are new or grew."""

    rows: list[dict[str, Any]]
    trajectories: list[dict[str, Any]]
    groups: int
    generated_tokens: int  # model + answer tokens generated for these groups
    thinking_generated: int  # of which model thinking tokens
    checkpoint: bool = False  # no rows: snapshots of trajectories still generating, to store as partial versions


class _Unit:
    """One unit's state between its phases: prompts, trajectories, and what finishing a group needs."""

    def __init__(self, engine, task, problems, seeds, budgets, settings, progress, stored, groups) -> None:
        self.engine, self.task, self.settings, self.progress = engine, task, settings, progress
        self.budgets = sorted(set(budgets))
        self.forcing, self.watch = settings.forcing, Stopwatch()
        self.nested = self.forcing.trajectory == "nested"
        self.tokens = _forcing_tokens(engine, settings.family)
        wanted = None if groups is None else set(groups)
        self.prompted = {
            (p.id, s): task.prompt(p, s) for p in problems for s in seeds if wanted is None or (p.id, s) in wanted
        }
        self.prompt_ids = {key: _prompt_ids(engine, pp, settings.family) for key, pp in self.prompted.items()}
        self.groups = list(self.prompt_ids)
        self.trajectories = _plan_trajectories(self.prompt_ids, self.budgets, self.forcing)
        self.traj_ids = {k: _trajectory_id(task, settings, k) for k in self.trajectories}
        if self.nested:
            _resume_stored(self.trajectories, stored, self.traj_ids, engine.info.model_path)
        self.held = {k: list(t.token_ids) for k, t in self.trajectories.items() if t.resumed_at is not None}
        self.problem_by_id = {p.id: p for p in problems}
        self.cells = cell_ids(task, settings, self.budgets, sorted({s for _, s in self.groups}))
        self.started = time.perf_counter()
        progress.phase, progress.trajectories_total = "trajectories", len(self.trajectories)

    def group_trajectories(self, group: tuple[str, int]) -> list[tuple]:
        return [group] if self.nested else [(*group, b) for b in self.budgets]

    def generate(
        self, on_done: Callable[[Trajectory], None] | None = None, growing: GrowingTrajectories | None = None
    ) -> None:
        """Grow every trajectory to its budget (see `generate_trajectories`)."""

        def done(trajectory: Trajectory) -> None:
            self.progress.trajectories_done += 1
            if on_done is not None:
                on_done(trajectory)

        with self.watch.phase("trajectory"):
            generate_trajectories(
                self.engine, list(self.trajectories.values()), config=self.forcing, tokens=self.tokens,
                sampling=self.settings.sampling, on_done=done, growing=growing,
            )  # fmt: skip
        self.progress.trajectories_done = len(self.trajectories)  # those complete before any generation, too

    def per_trajectory_s(self) -> float:
        """Generation time per trajectory (batched work attributed evenly): the generation's wall time over the
        unit's trajectories once it ended; while it runs, the time so far over the trajectories finished so far."""
        total = self.watch.seconds.get("trajectory")
        if total is not None:
            return total / max(len(self.trajectories), 1)
        return (time.perf_counter() - self.started) / max(self.progress.trajectories_done, 1)

    def pieces(self, checkpoint_every_s: float | None) -> Iterator[UnitPiece]:
        """Generate in a thread. On an engine that takes concurrent calls, answer, score and yield groups as their
        trajectories complete; on others, all groups once generation ended. Meanwhile, every `checkpoint_every_s`,
        yield a checkpoint of the trajectories still growing."""
        ready: queue.SimpleQueue[tuple[str, int] | None] = queue.SimpleQueue()
        key_of = {id(t): k for k, t in self.trajectories.items()}
        waiting = {g: len(self.group_trajectories(g)) for g in self.groups}
        for key, t in self.trajectories.items():
            if t.finished or t.model_tokens >= t.max_model_tokens:  # cut from the store: nothing to generate
                self.progress.trajectories_done += 1
                self._count_done(key[:2], waiting, ready)
        failure: list[BaseException] = []
        growing = GrowingTrajectories()

        def generate() -> None:
            try:
                self.generate(on_done=lambda t: self._count_done(key_of[id(t)][:2], waiting, ready), growing=growing)
            except BaseException as exc:  # raised in the unit's own thread, below
                failure.append(exc)
            finally:
                ready.put(None)

        thread = threading.Thread(target=generate, name="ttscale-unit-generation", daemon=True)
        thread.start()
        left, generating, complete = set(self.groups), True, []
        order = {g: i for i, g in enumerate(self.groups)}  # all at once: in the unit's order, as before threads
        next_checkpoint = time.monotonic() + checkpoint_every_s if checkpoint_every_s else float("inf")
        while left:
            batch = []
            if generating:
                with contextlib.suppress(queue.Empty):
                    wait = next_checkpoint - time.monotonic()
                    batch.append(ready.get(timeout=max(wait, 0.0)) if wait != float("inf") else ready.get())
            while True:
                try:
                    batch.append(ready.get_nowait())
                except queue.Empty:
                    break
            generating = generating and None not in batch
            if failure:
                raise failure[0]
            complete += [g for g in batch if g is not None]
            if generating and time.monotonic() >= next_checkpoint:
                checkpoint = self.checkpoint(growing)
                if checkpoint is not None:
                    yield checkpoint
                next_checkpoint = time.monotonic() + checkpoint_every_s
            if complete and (self.engine.concurrent_calls or not generating):
                finished = sorted(complete, key=order.__getitem__) if not generating else complete
                left -= set(finished)
                complete = []
                yield self.finish(finished)
            elif not generating and left:
                raise RuntimeError(f"generation ended with {len(left)} groups incomplete")
        thread.join()

    def checkpoint(self, growing: GrowingTrajectories) -> UnitPiece | None:
        """A piece holding a snapshot of each trajectory that grew since its last one: stored, it is a partial
        version a retry extends (`Trajectory.resume`); the finished trajectory supersedes it as a longer one."""
        snapshots = growing.snapshot()
        if not snapshots:
            return None
        model_path, key_of = self.engine.info.model_path, {id(t): k for k, t in self.trajectories.items()}
        rows = []
        for live, copy in snapshots:
            key = key_of[id(live)]
            text = self.engine.decode(copy.token_ids)
            rows.append(
                row_fields.trajectory_row(self.settings, self.task, key, copy, self.traj_ids[key], text, model_path)
            )
        return UnitPiece([], rows, 0, 0, 0, checkpoint=True)

    def _count_done(self, group: tuple[str, int], waiting: dict, ready: queue.SimpleQueue) -> None:
        waiting[group] -= 1
        if waiting[group] == 0:
            ready.put(group)

    def finish(self, groups: Sequence[tuple[str, int]]) -> UnitPiece:
        """Force the answers of these groups' budgets, score them and build their rows."""
        engine, task, settings, tokens, budgets = self.engine, self.task, self.settings, self.tokens, self.budgets
        keys = [k for g in groups for k in self.group_trajectories(g)]
        trajectories = {k: self.trajectories[k] for k in keys}
        _check_extensions(trajectories, {k: v for k, v in self.held.items() if k in trajectories})
        self.progress.phase = "answers"
        watch = Stopwatch()
        items = [(key, b) for key in groups for b in budgets]  # (problem, seed), budget
        thinking = {(key, b): _trajectory_for(self.trajectories, key, b).prefix(b) for key, b in items}
        prefixes = [forced_prefix(self.prompt_ids[key], thinking[key, b], tokens) for key, b in items]
        with watch.phase("answer"):
            engine.warm(_stored_trunks(trajectories, self.prompt_ids, thinking, budgets))
            answers = force_answers(engine, prefixes, config=self.forcing, tokens=tokens)

        sets = {key: task.solution_set(self.problem_by_id[key[0]]) for key in groups}
        scored = [i for i, (key, _) in enumerate(items) if sets[key] is not None]
        self.progress.phase = "scoring"
        with watch.phase("score"):
            tries = {s.name: _trie(engine, s) for s in (sets[items[i][0]] for i in scored)}
            scores = engine.score([ScoreRequest(prefixes[i], tries[sets[items[i][0]].name]) for i in scored])
        set_logps = {
            i: candidate_logprobs(tries[sets[items[i][0]].name], sc) for i, sc in zip(scored, scores, strict=True)
        }
        seconds = {
            **row_fields.per_row_seconds(watch, 1, len(items), len(scored)),
            "trajectory_seconds": self.per_trajectory_s(),
        }
        now, info = dt.datetime.now(dt.timezone.utc), engine.info
        texts = {k: engine.decode(t.token_ids) for k, t in trajectories.items()} if self.nested else {}
        rows = []
        for i, (key, budget) in enumerate(items):
            pid, seed = key
            traj_key = key if self.nested else (*key, budget)
            row = row_fields.row_base(
                settings, info, task, pid, seed, budget, self.cells[budget, seed], self.traj_ids[traj_key], now
            )
            row.update(row_fields.token_fields(self.prompt_ids[key], thinking[key, budget], answers[i].answer_ids))
            row.update(row_fields.answer_fields(engine, task, self.prompted[key], answers[i]))
            row.update(row_fields.set_fields(sets[key], self.prompted[key], set_logps.get(i)))
            row.update(
                row_fields.thinking_fields(engine, self.forcing, thinking[key, budget].token_ids, texts.get(traj_key))
            )
            traj = trajectories[traj_key]
            row.update(rng_seed=traj.rng_seed, trajectory_tokens=traj.model_tokens, **seconds)
            row["score_seconds"] = seconds["score_seconds"] if i in set_logps else None
            rows.append(row)
        new = []
        if self.nested:
            for traj_key, traj in trajectories.items():
                if traj.resumed_at is not None and traj.model_tokens == traj.resumed_at:
                    continue  # cut from the store, unchanged: that version is stored already
                new.append(
                    row_fields.trajectory_row(settings, task, traj_key, traj, self.traj_ids[traj_key], texts[traj_key],
                                              info.model_path)
                )  # fmt: skip
        thinking_generated = sum(t.model_tokens - (t.resumed_at or 0) for t in trajectories.values())
        answer_tokens = sum(len(a.answer_ids) for a in answers)
        return UnitPiece(rows, new, len(groups), thinking_generated + answer_tokens, thinking_generated)


def _stored_trunks(trajectories, prompt_ids, thinking, budgets) -> list[tuple[int, ...]]:
    """prompt + thinking to the unit's largest budget, of each trajectory cut from the store unchanged: no
    generation left its KV in the engine, so it is prefilled once (`Engine.warm`) rather than once per budget."""
    return [
        (*prompt_ids[key], *thinking[key, budgets[-1]].token_ids)
        for key, t in trajectories.items()
        if t.resumed_at is not None and t.model_tokens == t.resumed_at and (key, budgets[-1]) in thinking
    ]


def _plan_trajectories(
    prompt_ids: dict[tuple[str, int], tuple[int, ...]], budgets: Sequence[int], forcing: ForcingConfig
) -> dict[tuple, Trajectory]:
    """Nested: one trajectory per (problem, seed) up to B_max. Independent: one per (problem, seed, budget)."""
    if forcing.trajectory == "nested":
        return {
            (pid, s): Trajectory(prompt_ids=p, rng_seed=derive_seed(pid, s), max_model_tokens=budgets[-1])
            for (pid, s), p in prompt_ids.items()
        }
    shared = forcing.independent_seeds == "shared"
    return {
        (pid, s, b): Trajectory(
            prompt_ids=p, rng_seed=derive_seed(pid, s) if shared else derive_seed(pid, s, b), max_model_tokens=b
        )
        for (pid, s), p in prompt_ids.items()
        for b in budgets
    }


def _resume_stored(
    trajectories: dict[tuple, Trajectory],
    stored: Sequence[Mapping[str, Any]],
    traj_ids: Mapping[tuple, str],
    model_revision: str,
) -> None:
    """Replace each planned nested trajectory that the store already holds by its stored version (see
    `Trajectory.resume`: same prompt tokens, seed and model revision, or it raises); stored trajectories of
    other ids are ignored."""
    by_id = {row["trajectory_id"]: row for row in stored}
    for key, planned in list(trajectories.items()):
        row = by_id.get(traj_ids[key])
        if row is not None:
            trajectories[key] = Trajectory.resume(
                row, prompt_ids=planned.prompt_ids, rng_seed=planned.rng_seed,
                max_model_tokens=planned.max_model_tokens, model_revision=model_revision,
            )  # fmt: skip


def _check_extensions(trajectories: Mapping[tuple, Trajectory], held: Mapping[tuple, list[int]]) -> None:
    """A stored trajectory that grew must still start with every token it held: a new version that does not
    would be another reasoning process under the same id, so it raises rather than being stored."""
    for key, old in held.items():
        if trajectories[key].token_ids[: len(old)] != old:
            raise RuntimeError(f"trajectory {key} was extended but no longer starts with its stored tokens")


def _trajectory_for(trajectories: dict[tuple, Trajectory], key: tuple[str, int], budget: int) -> Trajectory:
    return trajectories[key] if key in trajectories else trajectories[(*key, budget)]


def _prompt_ids(engine: Engine, prompted: PromptedProblem, family: Family) -> tuple[int, ...]:
    messages = [{"role": "system", "content": family.system_prompt}] if family.system_prompt else []
    messages.append({"role": "user", "content": prompted.user_message})
    return open_thinking(engine, engine.chat_prompt_ids(messages), family)


def _forcing_tokens(engine: Engine, family: Family) -> ForcingTokens:
    """The family's strings in this engine's token ids, built once per engine (see `Engine.derived`)."""
    return engine.derived(("forcing_tokens", family), lambda: ForcingTokens.build(engine, family))


def _trie(engine: Engine, solution_set) -> Trie:
    """The solution set's candidates as a token trie closed by every `}`-initial token (METHOD.md §5),
    built once per engine and candidate list."""
    return engine.derived(
        ("trie", solution_set.candidates),
        lambda: build_trie([engine.encode(c) for c in solution_set.candidates], closing=engine.closing_brace_ids),
    )


def nested_trajectory_ids(
    task: Task, settings: RunSettings, problem_ids: Sequence[str], seeds: Sequence[int]
) -> dict[tuple[str, int], str]:
    """(problem id, seed) → the id of its nested trajectory: independent of the budget grid, so a sweep that
    adds budgets finds the trajectories an earlier run stored."""
    return {(p, s): _trajectory_id(task, settings, (p, s)) for p in problem_ids for s in seeds}


def _trajectory_id(task: Task, settings: RunSettings, key: tuple) -> str:
    budget = key[2] if len(key) == 3 else None
    return ids.trajectory_id(
        model=settings.model_identity(), dataset=task.identity(), settings=settings.trajectory_identity(),
        problem_id=key[0], seed=key[1], budget=budget,
    )  # fmt: skip
