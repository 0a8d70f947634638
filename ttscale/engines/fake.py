"""FakeEngine: a deterministic test double for orchestration logic. It is NOT a language model.

Tokens are bytes (ids 0–255) plus EOS (256) and a one-token end-of-thinking marker (257). A sampled
token is a pure function of (seed, position), so tests know exactly what comes out; `stop_every` makes
the "model" try to end its thinking at known positions; `seconds_per_token` simulates engine time for
scheduling benchmarks. Faults can be injected for reliability tests: `hang_on` hangs a generate call whose
prompt holds that text (a hung engine), `oom_above` raises a CUDA-style out-of-memory error for batches of
more sequences, and `memory_per_sequence_mb` really allocates that much per sequence of a batch (with
`memory_limit_mb` capping the actor process's address space at what it holds plus that much, so a large
batch really runs out of memory).
Nothing measured on it says anything about a real model: real features are
proven on the `hf` engine with SmolLM2.
"""

from __future__ import annotations

import hashlib
import os
import resource
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ttscale.engines.base import Engine, EngineInfo, Generation, GenerationRequest, OnFinish, ScoreRequest
from ttscale.scoring import TrieScores, log_mass

EOS, THINK_END = 256, 257
VOCAB = 258
_THOUGHT = b"abcdefghij klmnop"  # what "thinking" tokens look like


class FakeEngine(Engine):
    """See the module docstring."""

    def __init__(
        self,
        model: str = "fake",
        *,
        stop_every: int | None = None,
        stop_token: int = EOS,
        seconds_per_token: float = 0.0,
        answer: str | None = None,
        dtype: str = "none",
        tensor_parallel: int = 1,
        hang_on: str | None = None,
        oom_above: int | None = None,
        memory_per_sequence_mb: int = 0,
        memory_limit_mb: int | None = None,
    ) -> None:
        self.model = model
        self.dtype = dtype
        self.tensor_parallel = tensor_parallel  # recorded only: the double has no workers of its own
        self.stop_every = stop_every
        self.stop_token = stop_token
        self.seconds_per_token = seconds_per_token
        self.answer = answer  # fixed greedy answer text; default derives digits from the prompt
        self.generated_tokens = 0
        self.calls = 0
        self.hang_on = hang_on.encode() if hang_on else None
        self.oom_above = oom_above
        self.memory_per_sequence_mb = memory_per_sequence_mb
        self.memory_limit_mb = memory_limit_mb
        self._lock = threading.Lock()  # counters, when units call from two threads

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(engine="fake", engine_version="0", model=self.model, model_path="fake", dtype=self.dtype)

    @property
    def eos_token_ids(self) -> frozenset[int]:
        return frozenset({EOS})

    def encode(self, text: str) -> list[int]:
        return [THINK_END] if text == "</think>" else list(text.encode())

    def decode(self, token_ids: Sequence[int]) -> str:
        return bytes(t for t in token_ids if t < 256).decode("utf-8", errors="replace")

    def chat_prompt_ids(self, messages: Sequence[dict[str, str]]) -> list[int]:
        return self.encode("".join(f"<{m['role']}>{m['content']}\n" for m in messages) + "<assistant>")

    def vocab_texts(self) -> Sequence[str]:
        return [bytes([i]).decode("latin-1") for i in range(256)] + ["", "</think>"]

    concurrent_calls = True  # a pure function of its inputs: callers in several threads are served alike

    def generate(self, requests: Sequence[GenerationRequest], on_finish: OnFinish | None = None) -> list[Generation]:
        """Continuous batching, one sequence at a time: each request runs to its end (with its follow-ups) before
        the next starts, so requests finish at different times, as in a real engine's running batch. Faults
        that depend on the batch (`oom_above`, memory) see the whole batch first; `hang_on` hangs at its request."""
        self._inject_batch_faults(requests)
        results = []
        for i, request in enumerate(requests):
            while True:
                generation = self._generate([request])[0]
                follow = on_finish(i, generation) if on_finish is not None else None
                if follow is None:
                    break
                request = follow
            results.append(generation)
        return results

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        with self._lock:
            self.calls += 1
        self._inject_hang(requests)
        return [self._one(r) for r in requests]

    def _inject_hang(self, requests: Sequence[GenerationRequest]) -> None:
        prompts = [bytes(t for t in r.prompt_ids if t < 256) for r in requests]
        if self.hang_on is not None and any(self.hang_on in prompt for prompt in prompts):
            while True:  # hung, as an engine stuck in a collective or a driver call: only killing the actor ends it
                time.sleep(1.0)

    def _inject_batch_faults(self, requests: Sequence[GenerationRequest]) -> None:
        if self.oom_above is not None and len(requests) > self.oom_above:
            raise OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate {len(requests)} sequences' KV cache (the fake engine's "
                f"oom_above={self.oom_above})"
            )
        if self.memory_limit_mb is not None:
            _limit_address_space(self.memory_limit_mb)
        if self.memory_per_sequence_mb:
            working = np.ones(len(requests) * self.memory_per_sequence_mb * 2**20, dtype=np.uint8)  # touched: real
            del working

    def _one(self, request: GenerationRequest) -> Generation:
        out: list[int] = []
        greedy = request.sampling.greedy and request.seed is None
        answer = self._answer_rest(request.prompt_ids) if greedy else b""
        for step in range(request.max_tokens):
            position = len(request.prompt_ids) + step
            if greedy:
                tok = answer[step] if step < len(answer) else EOS
            elif self.stop_every and position % self.stop_every == 0 and step > 0:
                tok = self.stop_token
            else:
                tok = _THOUGHT[_mix(request.seed, position) % len(_THOUGHT)]
            if tok in request.stop_token_ids:
                self._spend(len(out) + 1)
                return Generation(token_ids=tuple(out), stop_token_id=tok)
            out.append(tok)
        self._spend(len(out))
        return Generation(token_ids=tuple(out), stop_token_id=None)

    def _answer_rest(self, prompt_ids: Sequence[int]) -> bytes:
        """The part of the fixed answer not yet in the prompt (greedy answers resume where they paused)."""
        text = (self.answer if self.answer is not None else str(_mix(0, *prompt_ids[:64]) % 100)) + "}"
        full = text.encode()
        tail = bytes(t for t in prompt_ids[-len(full) :] if t < 256)
        done = max((k for k in range(len(full) + 1) if tail.endswith(full[:k])), default=0)
        return full[done:]

    def _spend(self, tokens: int) -> None:
        with self._lock:
            self.generated_tokens += tokens
        if self.seconds_per_token:
            time.sleep(self.seconds_per_token * tokens)

    def score(self, requests: Sequence[ScoreRequest]) -> list[TrieScores]:
        """Node log-probs from a normalised pseudo-random distribution per trie position (the children of
        node n, and the closing tokens after a candidate ending at n, share position n's distribution)."""
        out = []
        for request in requests:
            trie = request.trie
            base = _mix(*request.prefix_ids[-32:])

            node_lp = np.array([_logprobs(base, int(trie.parents[n]))[trie.tokens[n]] for n in range(trie.num_nodes)])
            close_lp = np.array([log_mass(_logprobs(base, int(leaf)), trie.closing) for leaf in trie.leaves])
            out.append(TrieScores(node_lp, close_lp))
        return out


class OutOfMemoryError(RuntimeError):
    """What torch raises when CUDA memory runs out (torch.OutOfMemoryError is a RuntimeError too)."""


def _limit_address_space(megabytes: int) -> None:
    """Cap this process's address space at what it maps now plus `megabytes`: a larger allocation then really
    fails with MemoryError, as on a node whose memory is spent."""
    pages = int(Path("/proc/self/statm").read_text().split()[0])
    now = pages * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (now + megabytes * 2**20, resource.getrlimit(resource.RLIMIT_AS)[1]))


def _logprobs(base: int, node: int) -> np.ndarray:
    """The fake's next-token log-probs after trie node `node` (-1 = the prefix): (VOCAB,)."""
    logits = np.random.default_rng([base, node + 1]).normal(size=VOCAB)
    return logits - np.log(np.sum(np.exp(logits)))


def _mix(*parts: int | None) -> int:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "big")
