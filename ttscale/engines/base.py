"""The engine interface: batched generation and trie scoring, in token ids end to end."""

from __future__ import annotations

import abc
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from ttscale.scoring import Trie, TrieScores

T = TypeVar("T")


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen; `temperature == 0` means greedy (argmax)."""

    temperature: float = 0.0
    """>= 0. 0 is greedy decoding."""
    top_p: float = 1.0
    """In (0, 1]. 1 keeps the whole distribution."""
    top_k: int = 0
    """>= 0. 0 keeps every token."""

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}.")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


GREEDY = Sampling()


@dataclass(frozen=True)
class GenerationRequest:
    """One sequence to continue: at most `max_tokens` new tokens, ending early at any stop token."""

    prompt_ids: tuple[int, ...]
    max_tokens: int
    stop_token_ids: frozenset[int] = field(default_factory=frozenset)
    seed: int | None = None
    """Per-request RNG seed: the same seed and prompt give the same tokens, whatever else is batched."""
    sampling: Sampling = GREEDY

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}.")
        if not self.prompt_ids:
            raise ValueError("prompt_ids must not be empty.")


@dataclass(frozen=True)
class Generation:
    """What came back for one request; the stop token itself is not in `token_ids`."""

    token_ids: tuple[int, ...]
    stop_token_id: int | None  # the stop token that ended generation, or None when max_tokens ran out


@dataclass(frozen=True)
class ScoreRequest:
    """Score every node of `trie` as a continuation of `prefix_ids`."""

    prefix_ids: tuple[int, ...]
    trie: Trie


OnFinish = Callable[[int, Generation], "GenerationRequest | None"]
OnTokens = Callable[[int, Sequence[int]], None]
"""`on_tokens(index, new_token_ids)`: tokens a running request has just generated, before it finishes (never its
stop token): what a checkpoint of a long trajectory stores (`forcing.GrowingTrajectories`)."""


@dataclass(frozen=True)
class EngineInfo:
    """What produced the numbers: stored with every row and in the manifest."""

    engine: str
    engine_version: str
    model: str  # what the user asked for
    model_path: str  # what was loaded
    dtype: str


class Engine(abc.ABC):
    """A language model behind token ids: generate continuations, score candidate tries, tokenise.

    Implementations: `hf` (transformers on CPU), `vllm` (GPUs), and `FakeEngine` (a deterministic test
    double for orchestration logic only). Both batched calls return results in the order of the requests.
    """

    generated_tokens: int = 0
    """Tokens generated since the engine started (monotonic): read while a unit runs, for live progress."""
    concurrent_calls: bool = False
    """Whether `generate` and `score` may be called from several threads at once, each call served alongside
    the others (vLLM: one step loop batches every caller): a unit then answers and scores the groups whose
    trajectories are complete while the rest still generate, and streams their rows out (`runner.iter_unit`)."""

    @property
    @abc.abstractmethod
    def info(self) -> EngineInfo: ...

    @property
    @abc.abstractmethod
    def eos_token_ids(self) -> frozenset[int]: ...

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        on_finish: OnFinish | None = None,
        on_tokens: OnTokens | None = None,
    ) -> list[Generation]:
        """Continue every request; identical inputs and seeds give identical outputs.

        `on_finish(index, generation)` is called as each request finishes and may return a follow-up
        request for the same index (e.g. the thinking so far plus an injected continuation), which the
        engine runs as soon as it can, alongside the others: continuous batching, as vLLM schedules.
        `on_tokens(index, token_ids)`, if given, is called with a running request's new tokens as the engine
        produces them: in order, each once, a prefix of the generation that `on_finish` then receives whole
        (engines that decode step by step; this default reports none before a request finishes).
        The returned list holds each index's last generation. This default runs follow-ups in rounds;
        engines that can admit requests into a running batch override it.
        """
        results = self._generate(requests)
        pending = list(range(len(requests)))
        while on_finish is not None and pending:
            follow = {i: on_finish(i, results[i]) for i in pending}
            pending = [i for i, r in follow.items() if r is not None]
            if not pending:
                break
            for i, gen in zip(pending, self._generate([follow[i] for i in pending]), strict=True):
                results[i] = gen
        return results

    @abc.abstractmethod
    def _generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """One batched call: continue every request, results in request order."""

    def warm(self, prefixes: Sequence[Sequence[int]]) -> None:  # noqa: B027 - optional hook
        """A hint that many coming requests start with these token sequences (budgets cut from one stored
        trajectory): an engine with a prefix cache computes their KV once now, so each request prefills only
        its own tail. The default does nothing."""

    @abc.abstractmethod
    def score(self, requests: Sequence[ScoreRequest]) -> list[TrieScores]:
        """For each request, from raw logits at temperature 1 (float64): log p(node token | prefix, node's
        ancestors) for every trie node, and log Σ_{t ∈ trie.closing} p(t | prefix, candidate) for every
        candidate (0 when the trie has no closing set)."""

    @abc.abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, with no special tokens added."""

    @abc.abstractmethod
    def decode(self, token_ids: Sequence[int]) -> str: ...

    @abc.abstractmethod
    def chat_prompt_ids(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """The model's chat template applied with `add_generation_prompt=True`, as token ids."""

    @abc.abstractmethod
    def vocab_texts(self) -> Sequence[str]:
        """The decoded text of every token id (cached), for finding e.g. tokens that contain '}'."""

    @property
    def closing_brace_ids(self) -> frozenset[int]:
        """Every token whose text begins with `}` (`}`, `}$`, `}.`, `}\\n\\n`, …): what closes a `\\boxed{`
        answer (METHOD.md §5). Derived once per engine."""
        return self.derived(
            "closing_brace_ids",
            lambda: frozenset(i for i, text in enumerate(self.vocab_texts()) if text.startswith("}")),
        )

    def derived(self, key: Hashable, build: Callable[[], T]) -> T:
        """A value derived from this engine's tokenizer (forcing ids, candidate tries), built once and kept
        on the engine itself, so it dies with it. Never key such values by `id(engine)`: CPython reuses the
        id of a freed object, and the next engine would get the last one's token ids."""
        memo = self.__dict__.setdefault("_derived", {})
        if key not in memo:
            memo[key] = build()
        return memo[key]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release memory and processes held by the engine."""


class RunningBatchEngine(Engine):
    """An engine that admits follow-ups into its own running batch: it overrides `generate`, and its one batched
    call (`_generate`) is `generate` with no follow-ups."""

    @abc.abstractmethod
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        on_finish: OnFinish | None = None,
        on_tokens: OnTokens | None = None,
    ) -> list[Generation]:
        """As `Engine.generate`, each follow-up joining the running batch as soon as its request finishes, and
        `on_tokens` told of every token a request generates as it is decoded."""

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        return self.generate(requests)
