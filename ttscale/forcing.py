"""Budget forcing (METHOD.md §3): thinking trajectories cut at exactly B model tokens, then a forced answer.

Talks to the engine interface only, in token ids. One (model, problem, seed) gets one trajectory of
B_max model tokens in `nested` mode (every budget is a prefix of it) or one fresh trajectory per budget in
`independent` mode. When the model tries to end its thinking early (end-of-thinking marker or EOS), the
`continue` policy drops the stop token, injects the continuation string (not counted toward the budget)
and asks for more, each round with a seed derived from the trajectory's seed and the round number, so a
nested prefix at B is token for token the trajectory an independent run with the same seed stops at B.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ttscale.engines.base import GREEDY, Engine, Generation, GenerationRequest, Sampling
from ttscale.families import Family

TrajectoryMode = Literal["nested", "independent"]
EarlyStopPolicy = Literal["continue", "accept"]

MAX_EMPTY_ROUNDS = 4  # consecutive continuations that yield no model token before we accept the stop
StopReason = Literal["accepted", "max_continuations", "empty_rounds"]
"""Why a trajectory ended before its budget: the natural end accepted (on_early_stop=accept), the
continuation cap reached, or MAX_EMPTY_ROUNDS + 1 continuations in a row answered by an immediate stop."""


@dataclass(frozen=True)
class ForcingConfig:
    """How trajectories are generated and answers forced; every field changes results (and cell ids)."""

    trajectory: TrajectoryMode = "nested"
    on_early_stop: EarlyStopPolicy = "continue"
    max_continuations: int | None = None
    """Cap on injected continuations per trajectory; None = unlimited."""
    answer_max_tokens: int = 16
    """Greedy tokens allowed for the forced answer, ending at the brace that closes `\\boxed{`."""
    independent_seeds: Literal["per_budget", "shared"] = "per_budget"
    """Independent mode: a fresh RNG seed per (seed, budget) (the original study's design), or the nested
    trajectory's seed (common random numbers, which makes independent runs reproduce nested prefixes)."""

    def __post_init__(self) -> None:
        if self.max_continuations is not None and self.max_continuations < 0:
            raise ValueError(f"max_continuations must be >= 0 or None, got {self.max_continuations}.")
        if self.answer_max_tokens < 1:
            raise ValueError(f"answer_max_tokens must be >= 1, got {self.answer_max_tokens}.")


@dataclass(frozen=True)
class ForcingTokens:
    """A family's strings as token ids for one tokenizer, plus the brace bookkeeping for answers."""

    stop_ids: frozenset[int]  # end of thinking: the marker (when it is one token) and EOS
    continuation_ids: tuple[int, ...]
    forced_answer_ids: tuple[int, ...]
    eos_ids: frozenset[int]
    closing_ids: frozenset[int]  # every token whose text holds a '}', plus EOS: where answers pause
    brace_net: dict[int, int]  # token id -> (# '{') - (# '}') for every token holding a brace

    @classmethod
    def build(cls, engine: Engine, family: Family) -> ForcingTokens:
        marker = engine.encode(family.think_end) if family.think_end else []
        # A multi-token marker cannot be a stop id; such families end thinking at EOS only.
        stop = set(engine.eos_token_ids) | ({marker[0]} if len(marker) == 1 else set())
        net, closing = {}, set(engine.eos_token_ids)
        for tok, text in enumerate(engine.vocab_texts()):
            if "{" in text or "}" in text:
                net[tok] = text.count("{") - text.count("}")
            if "}" in text:
                closing.add(tok)
        return cls(
            stop_ids=frozenset(stop),
            continuation_ids=tuple(engine.encode(family.continuation)),
            forced_answer_ids=tuple(engine.encode(family.forced_answer)),
            eos_ids=frozenset(engine.eos_token_ids),
            closing_ids=frozenset(closing),
            brace_net=net,
        )


def derive_seed(*parts: object) -> int:
    """A 63-bit RNG seed from any parts (sha256 of their repr): stable across runs, machines and Pythons."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class ThinkingPrefix:
    """The thinking a forced answer at budget B sees, with METHOD.md §3's token accounting."""

    token_ids: tuple[int, ...]
    thinking_tokens: int  # model tokens in the prefix, <= B
    continuations: int  # continuation strings injected inside the prefix
    injected_tokens: int  # their tokens (not counted in thinking_tokens)
    natural_end: int | None  # model-token index where the model first tried to stop, if inside the prefix
    stopped: StopReason | None = None  # why the prefix holds fewer than B model tokens; None when it holds B


@dataclass
class Trajectory:
    """Thinking tokens of one (problem, seed[, budget]) in order, model-generated and injected."""

    prompt_ids: tuple[int, ...]
    rng_seed: int
    max_model_tokens: int
    token_ids: list[int] = field(default_factory=list)
    injected: list[bool] = field(default_factory=list)
    natural_end: int | None = None
    finished: bool = False  # ended before its budget; `stopped` says why
    stopped: StopReason | None = None
    continuations: int = 0
    injection_starts: list[int] = field(default_factory=list)  # index in token_ids where each injection begins
    empty_rounds: int = 0
    resumed_at: int | None = None  # model tokens it held when loaded from the store (None: generated here)

    @property
    def model_tokens(self) -> int:
        return len(self.injected) - sum(self.injected)

    def prefix(self, budget: int) -> ThinkingPrefix:
        """The first `budget` model tokens and the injections among them; never overshoots B.

        An injection right after the B-th model token is not part of the prefix: an independent run
        stopped at B never sees the stop attempt that caused it. For the same reason `natural_end` is
        reported only when the stop attempt came before the budget ran out (natural_end < B).
        """
        model_positions = [i for i, injected in enumerate(self.injected) if not injected]
        if budget <= len(model_positions):
            cut, seen, stopped = model_positions[budget - 1] + 1, budget, None
        elif self.finished:
            cut, seen, stopped = len(self.token_ids), len(model_positions), self.stopped
        else:
            raise ValueError(f"trajectory holds {len(model_positions)} model tokens, fewer than budget {budget}")
        continuations = sum(1 for start in self.injection_starts if start < cut)  # back-to-back ones count apart
        natural_end = self.natural_end if self.natural_end is not None and self.natural_end < budget else None
        return ThinkingPrefix(
            tuple(self.token_ids[:cut]), seen, continuations, sum(self.injected[:cut]), natural_end, stopped
        )

    @classmethod
    def resume(
        cls,
        stored: Mapping[str, Any],
        *,
        prompt_ids: tuple[int, ...],
        rng_seed: int,
        max_model_tokens: int,
        model_revision: str | None = None,
    ) -> Trajectory:
        """A stored nested trajectory (a `TRAJECTORY_SCHEMA` row) as a live one, to cut budgets from or grow.

        Its budget becomes the larger of `max_model_tokens` and what it already holds, so a stored trajectory
        longer than the unit's largest budget is kept whole and nothing is generated for it. It must come from
        the same prompt tokens (compared by `prompt_digest`: the chat template and tokenizer render them), RNG
        seed and model revision (when both are known): anything else is another reasoning process under the
        same id, which would mix two in one curve, so it raises. Trajectories stored before the digest existed
        are checked by prompt length."""
        digest = stored.get("prompt_sha")
        same_prompt = digest == prompt_digest(prompt_ids) if digest else stored["prompt_tokens"] == len(prompt_ids)
        if not same_prompt or stored["rng_seed"] != rng_seed:
            raise ValueError(
                f"stored trajectory {stored['trajectory_id']} was generated from another prompt or seed "
                f"({stored['prompt_tokens']} prompt tokens, seed {stored['rng_seed']}; now {len(prompt_ids)}, "
                f"{rng_seed}): the model's chat template, tokenizer or prompt changed; measure into a new results "
                "directory."
            )
        revision = stored.get("model_revision")
        if revision and model_revision and revision != model_revision:
            raise ValueError(
                f"stored trajectory {stored['trajectory_id']} was generated by {revision}, and the engine now loads "
                f"{model_revision}: another version of the model under the same name. Measure into a new results "
                "directory, or load the version the results were measured with."
            )
        injected = [bool(x) for x in stored["injected"]]
        model_tokens = len(injected) - sum(injected)
        return cls(
            prompt_ids=prompt_ids, rng_seed=rng_seed, max_model_tokens=max(max_model_tokens, model_tokens),
            token_ids=list(stored["token_ids"]), injected=injected, natural_end=stored["natural_end"],
            finished=bool(stored["finished"]), stopped=stored["stopped"], continuations=stored["continuations"],
            injection_starts=list(stored["injection_starts"] or []), resumed_at=model_tokens,
        )  # fmt: skip

    def grown_by(self, token_ids: Sequence[int]) -> Trajectory:
        """A copy holding these model tokens after its own: a snapshot of it while a request grows it."""
        copy = replace(
            self, token_ids=[*self.token_ids, *token_ids], injected=[*self.injected, *[False] * len(token_ids)]
        )
        copy.injection_starts = list(self.injection_starts)
        return copy

    def _extend(self, ids: Sequence[int], *, injected: bool) -> None:
        self.token_ids.extend(ids)
        self.injected.extend([injected] * len(ids))


def generate_trajectories(
    engine: Engine,
    trajectories: Sequence[Trajectory],
    *,
    config: ForcingConfig,
    tokens: ForcingTokens,
    sampling: Sampling,
    on_done: Callable[[Trajectory], None] | None = None,
    growing: GrowingTrajectories | None = None,
) -> None:
    """Grow every trajectory to its budget (or its natural end). A trajectory that stops early gets its
    continuation as a follow-up request, which the engine batches with the others still running.
    `on_done(trajectory)` is called as each one is complete (for live progress); `growing`, if given, follows
    the tokens of every running request, so another thread can snapshot the trajectories mid-generation."""
    active = [t for t in trajectories if not t.finished and t.model_tokens < t.max_model_tokens]
    growing = growing if growing is not None else GrowingTrajectories()
    growing.start(active)

    def request(t: Trajectory) -> GenerationRequest:
        return GenerationRequest(
            prompt_ids=(*t.prompt_ids, *t.token_ids),
            max_tokens=t.max_model_tokens - t.model_tokens,
            stop_token_ids=tokens.stop_ids,
            seed=round_seed(t),
            sampling=sampling,
        )

    def on_finish(i: int, gen: Generation) -> GenerationRequest | None:
        traj = active[i]
        with growing.lock:  # a snapshot sees the round's tokens either streamed or in the trajectory, never both
            growing.round_ended(i)
            traj._extend(gen.token_ids, injected=False)
            if gen.stop_token_id is not None:
                _on_stop(traj, len(gen.token_ids), config, tokens)
        if traj.finished or traj.model_tokens >= traj.max_model_tokens:
            if on_done is not None:
                on_done(traj)
            return None
        return request(traj)

    if active:
        engine.generate([request(t) for t in active], on_finish=on_finish, on_tokens=growing.tokens)


class GrowingTrajectories:
    """The trajectories `generate_trajectories` is growing and the tokens each one's running request has generated
    so far (reported by the engine as it decodes): what a checkpoint stores of trajectories still generating.

    A snapshot is exact: its tokens are the ones the uninterrupted run holds at that moment, so they are a prefix
    of the trajectory that run ends with; it is resumed (`Trajectory.resume`) like any stored trajectory."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._active: list[Trajectory] = []
        self._round: dict[int, list[int]] = {}  # index in _active -> tokens of its running request so far
        self._snapshotted: dict[int, int] = {}  # index -> model tokens its last snapshot held

    def start(self, active: list[Trajectory]) -> None:
        with self.lock:
            self._active, self._round, self._snapshotted = active, {}, {}

    def tokens(self, index: int, token_ids: Sequence[int]) -> None:
        """The engine's `on_tokens`: new tokens of a running request, none of them a stop token."""
        with self.lock:
            self._round.setdefault(index, []).extend(token_ids)

    def round_ended(self, index: int) -> None:
        """Its request finished (call with the lock held): the generation holds the round's tokens whole."""
        self._round.pop(index, None)

    def snapshot(self) -> list[tuple[Trajectory, Trajectory]]:
        """(trajectory, copy) of each trajectory still growing that holds model tokens not in its last snapshot (nor
        in the store it was resumed from), the copy with its running request's tokens so far appended."""
        out = []
        with self.lock:
            for i, t in enumerate(self._active):
                if t.finished or t.model_tokens >= t.max_model_tokens:
                    continue
                running = self._round.get(i, [])
                held = t.model_tokens + len(running)
                if held <= max(self._snapshotted.get(i, 0), t.resumed_at or 0):
                    continue
                self._snapshotted[i] = held
                out.append((t, t.grown_by(running)))
        return out


def round_seed(t: Trajectory) -> int:
    """The RNG seed of a trajectory's next generation round: derived from (trajectory seed, round) for a round
    that starts the trajectory or follows an injection. A stored trajectory extended where it was cut off
    (`resumed_at`) gets a seed of its own for that round, derived from (seed, round, "extend", tokens held): the
    round's own seed would replay the random draws its first tokens already used, correlating old and new
    tokens. So the extension is deterministic, but not token for token what one longer run would have made."""
    extending = t.resumed_at is not None and t.model_tokens == t.resumed_at and not (t.injected and t.injected[-1])
    if extending:
        return derive_seed(t.rng_seed, t.continuations, "extend", t.model_tokens)
    return derive_seed(t.rng_seed, t.continuations)


def _on_stop(traj: Trajectory, new_tokens: int, config: ForcingConfig, tokens: ForcingTokens) -> None:
    """The model tried to end its thinking: accept it, or inject the continuation string."""
    if traj.natural_end is None:
        traj.natural_end = traj.model_tokens
    traj.empty_rounds = traj.empty_rounds + 1 if new_tokens == 0 else 0
    capped = config.max_continuations is not None and traj.continuations >= config.max_continuations
    stopped = _stop_reason(config, capped, traj.empty_rounds)
    if stopped is not None:
        traj.finished, traj.stopped = True, stopped
        while traj.injected and traj.injected[-1]:  # a stuck loop may leave injections with nothing after
            traj.token_ids.pop()
            traj.injected.pop()
        while traj.injection_starts and traj.injection_starts[-1] >= len(traj.token_ids):
            traj.injection_starts.pop()
            traj.continuations -= 1
        return
    traj.injection_starts.append(len(traj.token_ids))
    traj._extend(tokens.continuation_ids, injected=True)
    traj.continuations += 1


def _stop_reason(config: ForcingConfig, capped: bool, empty_rounds: int) -> StopReason | None:
    """Why the trajectory ends at this stop attempt, or None when the continuation goes in."""
    if config.on_early_stop == "accept":
        return "accepted"
    if capped:
        return "max_continuations"
    return "empty_rounds" if empty_rounds > MAX_EMPTY_ROUNDS else None


@dataclass(frozen=True)
class ForcedAnswer:
    """The greedy answer generated after the forced-answer string, in tokens (closing brace included)."""

    prefix_ids: tuple[int, ...]  # prompt + thinking prefix + forced-answer ids: where scoring starts too
    answer_ids: tuple[int, ...]
    truncated: bool = False  # cut by answer_max_tokens with the box still open (METHOD.md §4: graded incorrect)


def force_answers(
    engine: Engine, prefixes: Sequence[tuple[int, ...]], *, config: ForcingConfig, tokens: ForcingTokens
) -> list[ForcedAnswer]:
    """Greedy answers after each forced prefix, stopping at the brace that balances the forced `\\boxed{`.

    Engines stop on token ids, and `\\frac{1}{2}` holds a '}' that does not close the box, so generation
    stops at any token holding a '}' and resumes (on the cached prefix) until the braces balance, EOS, or
    `answer_max_tokens` in all. An answer still inside the box when the cap ran out is `truncated`; one that
    ended on its own (EOS) is not, closed or not.
    """
    answers: list[list[int]] = [[] for _ in prefixes]
    depth = [1] * len(prefixes)
    ended = [False] * len(prefixes)  # at EOS: the model finished on its own

    def request(i: int) -> GenerationRequest:
        return GenerationRequest(
            prompt_ids=(*prefixes[i], *answers[i]),
            max_tokens=config.answer_max_tokens - len(answers[i]),
            stop_token_ids=tokens.closing_ids,
            sampling=GREEDY,
        )

    def on_finish(i: int, gen: Generation) -> GenerationRequest | None:
        answers[i].extend(gen.token_ids)
        depth[i] += sum(tokens.brace_net.get(t, 0) for t in gen.token_ids)
        stop = gen.stop_token_id
        if stop is None or stop in tokens.eos_ids:
            ended[i] = stop is not None
            return None
        answers[i].append(stop)
        depth[i] += tokens.brace_net[stop]
        return request(i) if depth[i] > 0 and len(answers[i]) < config.answer_max_tokens else None

    if prefixes:
        engine.generate([request(i) for i in range(len(prefixes))], on_finish=on_finish)
    return [
        ForcedAnswer(prefix_ids=p, answer_ids=tuple(a), truncated=depth[i] > 0 and not ended[i])
        for i, (p, a) in enumerate(zip(prefixes, answers, strict=True))
    ]


def prompt_digest(prompt_ids: Sequence[int]) -> str:
    """A short hash of the prompt's token ids: what a stored trajectory must have been generated from."""
    return hashlib.sha256(b"".join(int(t).to_bytes(4, "little", signed=True) for t in prompt_ids)).hexdigest()[:16]


def forced_prefix(prompt_ids: Sequence[int], thinking: ThinkingPrefix, tokens: ForcingTokens) -> tuple[int, ...]:
    """prompt + thinking cut at B + forced-answer string: the one prefix answer and scores share."""
    return (*prompt_ids, *thinking.token_ids, *tokens.forced_answer_ids)


def open_thinking(engine: Engine, prompt_ids: Sequence[int], family: Family) -> tuple[int, ...]:
    """Append the family's think-start marker unless the chat template already ends with it."""
    start = family.think_start
    if not start:
        return tuple(prompt_ids)
    tail = engine.decode(prompt_ids[-16:])
    if tail.endswith(start):
        return tuple(prompt_ids)
    missing = start[len(start.rstrip()) :] if tail.endswith(start.rstrip()) else start
    return (*prompt_ids, *engine.encode(missing))


class Stopwatch:
    """Accumulates wall seconds per phase, to attribute batched time to rows."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def phase(self, name: str) -> _Phase:
        return _Phase(self, name)


class _Phase:
    def __init__(self, watch: Stopwatch, name: str) -> None:
        self.watch, self.name = watch, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.watch.seconds[self.name] = self.watch.seconds.get(self.name, 0.0) + time.perf_counter() - self.start
