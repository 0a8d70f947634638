"""The `hf` engine: transformers on CPU, with automatic prefix KV caching and tree-attention trie scoring.

Generation runs its own batched decode loop so each request keeps its own seed, stop ids and length:
prompts are prefilled one by one (reusing the longest cached prefix), their caches are left-padded
into one batch, and finished rows leave the batch as they finish. Every finished sequence's KV cache
goes into an LRU prefix cache, so the forced answer at budget B prefills only the forced-answer tokens
on top of the cached prompt + thinking, and trie scoring starts from the forced-answer prefix's cache.
"""

from __future__ import annotations

import importlib.util
import inspect
import random
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from ttscale.engines.base import (
    EngineInfo,
    Generation,
    GenerationRequest,
    OnFinish,
    Sampling,
    ScoreRequest,
)
from ttscale.engines.models import resolve_model
from ttscale.engines.tokenizer import TokenizerEngine
from ttscale.errors import ModelError
from ttscale.scoring import Trie, TrieScores

Layers = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (keys, values), each (1, kv_heads, L, head_dim)


@dataclass
class _Cached:
    """One sequence's KV cache; `last_logits` are the logits after its final token, when known."""

    ids: np.ndarray
    layers: Layers
    last_logits: torch.Tensor | None


class PrefixCache:
    """LRU store of per-sequence KV caches, looked up by longest common token prefix (like vLLM's APC)."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self._entries: OrderedDict[int, _Cached] = OrderedDict()
        self._tokens = 0
        self.hits_tokens = 0  # prompt tokens served from the cache, for benchmarks
        self.miss_tokens = 0

    def lookup(self, ids: np.ndarray) -> tuple[_Cached | None, int]:
        """The entry sharing the longest prefix with `ids`, and that prefix's length."""
        best, best_len = None, 0
        for key, entry in self._entries.items():
            n = min(len(entry.ids), len(ids))
            if n <= best_len:
                continue
            diff = np.flatnonzero(entry.ids[:n] != ids[:n])
            common = int(diff[0]) if len(diff) else n
            if common > best_len:
                best, best_len, best_key = entry, common, key
        if best is not None:
            self._entries.move_to_end(best_key)
        return best, best_len

    def insert(self, entry: _Cached) -> None:
        if len(entry.ids) > self.max_tokens:
            return
        self._entries[id(entry)] = entry
        self._tokens += len(entry.ids)
        while self._tokens > self.max_tokens:
            _, old = self._entries.popitem(last=False)
            self._tokens -= len(old.ids)

    def clear(self) -> None:
        self._entries.clear()
        self._tokens = 0


class HFEngine(TokenizerEngine):
    """transformers causal LM on CPU (or one GPU), fp32 by default; see the module docstring."""

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "float32",
        threads: int | None = None,
        max_batch: int = 16,
        prefix_cache_tokens: int = 32_768,
        score_logits: int = 100_000_000,
        device: str = "cpu",
        quantization: int | None = None,
    ) -> None:
        if threads:
            torch.set_num_threads(threads)
        self._resolved = resolve_model(model)
        self._device = torch.device(device)
        self._dtype = getattr(torch, dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(self._resolved.path)
        if quantization is None:
            self.model = AutoModelForCausalLM.from_pretrained(self._resolved.path, dtype=self._dtype)
            self.model.to(self._device)
        else:  # bitsandbytes places the quantised weights itself: they are never moved after loading
            self.model = AutoModelForCausalLM.from_pretrained(
                self._resolved.path, dtype=self._dtype, device_map=str(self._device),
                quantization_config=bitsandbytes_config(quantization, self._dtype),
            )  # fmt: skip
        self.model.eval()
        self._generation_eos = getattr(self.model.generation_config, "eos_token_id", None)
        # transformers >= 5.2x renamed `past_key_values` to `cache`; speak whichever this version knows.
        self._cache_kw = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        self.max_batch = max_batch
        self.score_logits = score_logits
        self.vocab_size = int(self.model.config.vocab_size)
        self.cache = PrefixCache(prefix_cache_tokens)
        self._info = EngineInfo(
            engine="hf",
            engine_version=f"transformers-{transformers.__version__}+torch-{torch.__version__}",
            model=model,
            model_path=f"{self._resolved.source}@{self._resolved.revision}",
            dtype=dtype if quantization is None else f"{dtype}+bnb-int{quantization}",
        )

    # -- tokens (encode, decode, chat template, EOS, vocabulary: TokenizerEngine) ---------------------

    @property
    def info(self) -> EngineInfo:
        return self._info

    def _forward(self, *, cache: DynamicCache, **inputs: torch.Tensor):
        return self.model(**inputs, **{self._cache_kw: cache}, use_cache=True)

    # -- prefill --------------------------------------------------------------------------------------

    def warm(self, prefixes: Sequence[Sequence[int]]) -> None:
        """Prefill these sequences into the prefix cache: budgets cut from a stored trajectory (no generation
        left its KV here) then prefill only their forced-answer tokens, as after a trajectory generated here."""
        if prefixes:
            self._prefill_many(prefixes)

    @torch.inference_mode()
    def _prefill_many(self, prompts: Sequence[Sequence[int]]) -> list[_Cached]:
        """KV caches and last logits for many prompts, computing only what the prefix cache lacks.

        All uncached suffixes run in one forward: row r is [pad | its cached prefix] as the past and
        [pad | its suffix] as input, so every row's last input token is its prompt's last token; the
        2D mask hides the pads and position ids continue each row's own prefix.
        """
        results: list[_Cached | None] = [None] * len(prompts)
        work = []  # (row, ids, cached entry or None, tokens reused)
        for i, ids in enumerate(prompts):
            ids_np = np.asarray(ids, dtype=np.int64)
            entry, common = self.cache.lookup(ids_np)
            if entry is not None and common == len(ids_np) == len(entry.ids) and entry.last_logits is not None:
                self.cache.hits_tokens += common
                results[i] = entry
                continue
            reuse = min(common, len(ids_np) - 1)  # at least one token must run to produce logits
            self.cache.hits_tokens += reuse
            self.cache.miss_tokens += len(ids_np) - reuse
            work.append((i, ids_np, entry if reuse > 0 else None, reuse))
        for chunk in _chunks(work, self.max_batch):
            for (i, *_), cached in zip(chunk, self._prefill_forward(chunk), strict=True):
                results[i] = cached
                self.cache.insert(cached)
        return results  # type: ignore[return-value]

    def _prefill_forward(self, work: Sequence[tuple[int, np.ndarray, _Cached | None, int]]) -> list[_Cached]:
        R = len(work)
        past_len = max(reuse for *_, reuse in work)
        suffix_len = max(len(ids) - reuse for _, ids, _, reuse in work)
        input_ids = torch.zeros(R, suffix_len, dtype=torch.long, device=self._device)  # pads are masked out
        positions = torch.zeros(R, suffix_len, dtype=torch.long, device=self._device)
        mask = torch.zeros(R, past_len + suffix_len, dtype=torch.long, device=self._device)
        for r, (_, ids, _, reuse) in enumerate(work):
            n = len(ids) - reuse
            input_ids[r, suffix_len - n :] = torch.as_tensor(ids[reuse:])
            positions[r, suffix_len - n :] = torch.arange(reuse, len(ids))
            mask[r, past_len - reuse : past_len] = 1
            mask[r, past_len + suffix_len - n :] = 1
        past = DynamicCache()
        if past_len:
            layers = self._empty_layers(past_len) if any(e is None for _, _, e, _ in work) else None
            per_row = [_crop(e.layers, reuse) if e is not None else None for _, _, e, reuse in work]
            past = _cache_from(_left_pad_into(per_row, past_len, layers, self._device))
        out = self._forward(
            input_ids=input_ids, position_ids=positions, attention_mask=mask, cache=past, logits_to_keep=1
        )
        layers = _layers_of(_cache_of(out))
        results = []
        for r, (_, ids, _, _) in enumerate(work):
            real = torch.nonzero(mask[r]).squeeze(1)  # (len(ids),) the row's own positions, holes dropped
            row_layers = [(k[r : r + 1, :, real].clone(), v[r : r + 1, :, real].clone()) for k, v in layers]
            results.append(_Cached(ids=ids, layers=row_layers, last_logits=out.logits[r, -1].float()))
        return results

    def _empty_layers(self, length: int) -> Layers:
        """Zero KV of `length` slots, shaped like this model's layers (a template for rows with no prefix)."""
        cfg = self.model.config
        heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        zeros = torch.zeros(1, heads, 0, head_dim, dtype=self._dtype, device=self._device)
        return [(zeros, zeros)] * cfg.num_hidden_layers

    # -- generation -----------------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest], on_finish: OnFinish | None = None) -> list[Generation]:
        """Continuous batching: up to `max_batch` rows decode together; a finished row leaves at once and
        the next waiting request (a follow-up from `on_finish` first) is prefilled and joins the batch."""
        results: list[Generation | None] = [None] * len(requests)
        # Longest first: short requests then fill the slots that finish early (shorter makespan).
        waiting = deque(sorted(enumerate(requests), key=lambda item: -item[1].max_tokens))
        batch = _Batch()
        while waiting or batch.rows:
            self._admit(batch, waiting, results, on_finish)
            if batch.rows:
                self._step(batch, waiting, results, on_finish)
        return results  # type: ignore[return-value]

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        return self.generate(requests)

    @torch.inference_mode()
    def _admit(self, batch: _Batch, waiting: deque, results: list, on_finish: OnFinish | None) -> None:
        """Prefill waiting requests into free slots; rows that finish on their first token leave at once."""
        while waiting and len(batch.rows) < self.max_batch:
            take = [waiting.popleft() for _ in range(min(self.max_batch - len(batch.rows), len(waiting)))]
            prefills = self._prefill_many([request.prompt_ids for _, request in take])
            joining = []
            for (index, request), prefill in zip(take, prefills, strict=True):
                row = _Row(index, request, prefill, self._device)
                row.push(row.sample(prefill.last_logits))
                self.generated_tokens += 1
                if row.done:
                    self._finish(row, waiting, results, on_finish)
                else:
                    joining.append(row)
            batch.join(joining)

    @torch.inference_mode()
    def _step(self, batch: _Batch, waiting: deque, results: list, on_finish: OnFinish | None) -> None:
        """Feed every row its newest token, sample the next, and let finished rows leave the batch."""
        rows = batch.rows
        tokens = torch.tensor([[r.generated[-1]] for r in rows], device=self._device)
        positions = torch.tensor([[r.next_position - 1] for r in rows], device=self._device)
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones(len(rows), 1)], dim=1)
        out = self._forward(
            input_ids=tokens, position_ids=positions, attention_mask=batch.mask, cache=_cache_from(batch.layers)
        )
        batch.layers = _layers_of(_cache_of(out))
        logits = out.logits[:, -1].float()  # (B, V)
        for b, row in enumerate(rows):
            row.push(row.sample(logits[b]))
        self.generated_tokens += len(rows)
        done = [b for b, row in enumerate(rows) if row.done]
        for b in done:
            self._store_finished(rows[b], batch.layers, b, batch.mask[b])
        batch.keep([b for b, row in enumerate(rows) if not row.done])
        for b in done:
            self._finish(rows[b], waiting, results, on_finish)

    def _finish(self, row: _Row, waiting: deque, results: list, on_finish: OnFinish | None) -> None:
        results[row.index] = row.result()
        follow = on_finish(row.index, results[row.index]) if on_finish is not None else None
        if follow is not None:
            waiting.appendleft((row.index, follow))  # continue it next, ahead of fresh requests

    def _store_finished(self, row: _Row, batch_layers: Layers, b: int, mask_row: torch.Tensor) -> None:
        """Keep a finished row's KV (prompt + every token fed so far) for follow-ups and forced answers."""
        fed = row.fed_ids()
        real = torch.nonzero(mask_row).squeeze(1)
        if len(real) != len(fed):
            return
        layers = [(k[b : b + 1, :, real].clone(), v[b : b + 1, :, real].clone()) for k, v in batch_layers]
        self.cache.insert(_Cached(ids=np.asarray(fed, dtype=np.int64), layers=layers, last_logits=None))

    # -- scoring --------------------------------------------------------------------------------------

    def score(self, requests: Sequence[ScoreRequest]) -> list[TrieScores]:
        """Requests sharing a trie are scored together, as many prefixes per forward as memory allows."""
        results: list[TrieScores | None] = [None] * len(requests)
        groups: dict[int, list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(id(request.trie), []).append(i)
        for members in groups.values():
            trie = requests[members[0]].trie
            per_forward = max(1, self.score_logits // (max(len(trie.expanded), 1) * self.vocab_size))
            for start in range(0, len(members), per_forward):
                chunk = members[start : start + per_forward]
                for i, scores in zip(
                    chunk, self._score_batch([requests[i].prefix_ids for i in chunk], trie), strict=True
                ):
                    results[i] = scores
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def _score_batch(self, prefixes: Sequence[tuple[int, ...]], trie: Trie) -> list[TrieScores]:
        """Tree attention: each prefix once from the cache, then every expanded trie node in one forward.

        Node inputs are their own tokens at position L + depth - 1; the 4D mask lets a node see its
        row's real prefix tokens and its own ancestors (itself included), nothing else. A node's output
        gives its children's log-probs and, at a candidate's end, the closing tokens' log mass.
        """
        cached = self._prefill_many(prefixes)
        roots = np.flatnonzero(trie.parents < 0)
        node_lp = np.empty((len(prefixes), trie.num_nodes), dtype=np.float64)
        close_lp = np.zeros((len(prefixes), len(trie.leaves)), dtype=np.float64)
        for r, prefix in enumerate(cached):
            assert prefix.last_logits is not None
            root_lp = torch.log_softmax(prefix.last_logits.float(), -1)[torch.as_tensor(trie.tokens[roots])]
            node_lp[r, roots] = root_lp.double().cpu().numpy()  # .cpu(): the logits live on the model's device
        expanded = trie.expanded  # (M,) breadth-first: ancestors first
        if len(expanded) == 0:
            return [TrieScores(n, c) for n, c in zip(node_lp, close_lp, strict=True)]
        R, M = len(cached), len(expanded)
        layers, pad = _left_pad([c.layers for c in cached], self._device)  # pad: (R, Lmax), 1 = real token
        blocked = torch.finfo(self._dtype).min
        mask = torch.full((R, 1, M, pad.shape[1] + M), blocked, dtype=self._dtype, device=self._device)
        mask[:, 0, :, : pad.shape[1]].masked_fill_(pad[:, None, :].bool(), 0.0)
        mask[:, 0, :, pad.shape[1] :].masked_fill_(torch.from_numpy(trie.ancestors(expanded)).to(self._device), 0.0)
        lengths = torch.tensor([len(c.ids) for c in cached], device=self._device)[:, None]  # (R, 1)
        input_ids = torch.as_tensor(trie.tokens[expanded], device=self._device).expand(R, M)
        positions = lengths + torch.as_tensor(trie.depths[expanded] - 1, device=self._device)[None]
        out = self._forward(input_ids=input_ids, position_ids=positions, attention_mask=mask, cache=_cache_from(layers))
        row_of = np.full(trie.num_nodes, -1, dtype=np.int64)
        row_of[expanded] = np.arange(M)
        rest = np.flatnonzero(trie.parents >= 0)
        at = torch.as_tensor(row_of[trie.parents[rest]])
        tok = torch.as_tensor(trie.tokens[rest])
        for r in range(R):
            logprobs = torch.log_softmax(out.logits[r].float(), -1)  # (M, V)
            node_lp[r, rest] = logprobs[at, tok].double().cpu().numpy()
            if len(trie.closing):
                ends = logprobs[torch.as_tensor(row_of[trie.leaves])]  # (|S|, V)
                close_lp[r] = torch.logsumexp(ends[:, torch.as_tensor(trie.closing)].double(), -1).cpu().numpy()
        return [TrieScores(n, c) for n, c in zip(node_lp, close_lp, strict=True)]

    @torch.inference_mode()
    def score_bruteforce(
        self, prefix_ids: Sequence[int], candidates: Sequence[Sequence[int]], closing: Sequence[int] = ()
    ) -> np.ndarray:
        """Reference scorer for tests and benchmarks: one full-context forward per candidate, no caching.

        log P(c) = Σ log p(c's tokens) + log Σ_{t ∈ closing} p(t | c) (the last term left out with no `closing`)."""
        out = np.empty(len(candidates), dtype=np.float64)
        closing_ids = torch.as_tensor(list(closing), dtype=torch.long)
        for c, cand in enumerate(candidates):
            ids = torch.as_tensor([*prefix_ids, *cand], device=self._device)[None]
            logits = self.model(input_ids=ids, use_cache=False).logits[0].float()
            logprobs = torch.log_softmax(logits[len(prefix_ids) - 1 :].double(), -1)  # (len(cand) + 1, V)
            out[c] = float(logprobs[torch.arange(len(cand)), torch.as_tensor(cand)].sum())
            if len(closing_ids):
                out[c] += float(torch.logsumexp(logprobs[-1, closing_ids], -1))
        return out

    def close(self) -> None:
        self.cache.clear()


class _Batch:
    """The rows decoding together: their left-padded KV cache and its 2D attention mask."""

    def __init__(self) -> None:
        self.rows: list[_Row] = []
        self.layers: Layers = []
        self.mask = torch.zeros(0, 0, dtype=torch.long)

    def join(self, rows: list[_Row]) -> None:
        """Add rows (their prefilled caches) to the batch, left-padding whichever side is shorter."""
        if not rows:
            return
        layers, mask = _left_pad([r.prefill.layers for r in rows], mask_device(rows))
        if self.rows:
            length = max(mask.shape[1], self.mask.shape[1])
            self.layers = [
                (
                    torch.cat([_pad_left(k0, length), _pad_left(k1, length)]),
                    torch.cat([_pad_left(v0, length), _pad_left(v1, length)]),
                )
                for (k0, v0), (k1, v1) in zip(self.layers, layers, strict=True)
            ]
            mask = torch.cat([_pad_left(self.mask, length), _pad_left(mask, length)])
        self.layers, self.mask = (layers, mask) if not self.rows else (self.layers, mask)
        self.rows = [*self.rows, *rows]

    def keep(self, indices: list[int]) -> None:
        if len(indices) == len(self.rows):
            return
        index = torch.tensor(indices, dtype=torch.long, device=self.mask.device)
        self.layers = [(k[index], v[index]) for k, v in self.layers]
        self.mask = self.mask[index]
        self.rows = [self.rows[i] for i in indices]


def mask_device(rows: list[_Row]) -> torch.device:
    return rows[0].prefill.layers[0][0].device


def _pad_left(t: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad dim 2 (KV: B, heads, L, d) or dim 1 (mask: B, L) on the left up to `length`."""
    dim = 2 if t.dim() == 4 else 1
    missing = length - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


class _Row:
    """Decode state of one request inside a batch."""

    def __init__(self, index: int, request: GenerationRequest, prefill: _Cached, device: torch.device) -> None:
        self.index = index
        self.request = request
        self.prefill = prefill
        self.generated: list[int] = []
        self.stop_token_id: int | None = None
        self.done = False
        seed = request.seed if request.seed is not None else random.SystemRandom().randrange(2**63)
        self.generator = torch.Generator(device=device).manual_seed(seed)

    @property
    def next_position(self) -> int:
        return len(self.request.prompt_ids) + len(self.generated)

    def fed_ids(self) -> list[int]:
        """Tokens whose KV the batch cache holds once the row is done: a newest token appended by a
        length finish was sampled but never fed; a stop token is never appended."""
        fed = self.generated if self.stop_token_id is not None else self.generated[:-1]
        return [*self.request.prompt_ids, *fed]

    def sample(self, logits: torch.Tensor) -> int:
        return sample_token(logits, self.request.sampling, self.generator)

    def push(self, token: int) -> None:
        if token in self.request.stop_token_ids:
            self.stop_token_id, self.done = token, True
            return
        self.generated.append(token)
        self.done = len(self.generated) >= self.request.max_tokens

    def result(self) -> Generation:
        return Generation(token_ids=tuple(self.generated), stop_token_id=self.stop_token_id)


_NUCLEUS_GUESS = 256  # tokens looked at first for the top-p nucleus; widened until it holds mass p


def sample_token(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator) -> int:
    """Greedy argmax, or one multinomial draw from this row's generator over `sampling_distribution`."""
    if sampling.greedy:
        return int(torch.argmax(logits))
    ids, probs = sampling_distribution(logits, sampling)
    return int(ids[torch.multinomial(probs, 1, generator=generator)])


def sampling_distribution(logits: torch.Tensor, sampling: Sampling) -> tuple[torch.Tensor, torch.Tensor]:
    """The tokens sampling may draw and their (unnormalised) probabilities, in HF's and vLLM's order:

    1) temperature: p = softmax(logits / T);
    2) top-k: keep the k most likely tokens, renormalised;
    3) top-p: of those, keep the smallest most-likely-first set whose mass reaches p (a token stays
       while the mass before it is < p), so p applies to the renormalised top-k, not the full vocabulary.

    Returns (ids, probs), most likely first; both (n,) with n ≥ 1.
    """
    probs = torch.softmax(logits / sampling.temperature, -1)  # (V,)
    vocab = probs.shape[-1]
    k = min(sampling.top_k or vocab, vocab)
    if sampling.top_p >= 1.0:
        if k == vocab:
            return torch.arange(vocab, device=probs.device), probs
        values, order = torch.topk(probs, k)  # (k,) descending
        return order, values
    top = min(_NUCLEUS_GUESS, k)
    values, order = torch.topk(probs, top)  # (top,) descending
    while top < k and values.sum() < sampling.top_p:
        top = min(top * 8, k)  # the nucleus is almost always in the top few hundred: avoid sorting all V
        values, order = torch.topk(probs, top)
    kept_mass = probs.new_tensor(1.0) if k == vocab else torch.topk(probs, k).values.sum() if top < k else values.sum()
    before = (torch.cumsum(values, -1) - values) / kept_mass  # (top,) mass of the more likely tokens
    keep = before < sampling.top_p
    return order[keep], values[keep]


def _cache_of(output) -> DynamicCache:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _layers_of(cache: DynamicCache) -> Layers:
    return [(layer.keys, layer.values) for layer in cache.layers]


def _cache_from(layers: Layers) -> DynamicCache:
    return DynamicCache(ddp_cache_data=[(k, v) for k, v in layers])


def _crop(layers: Layers, length: int) -> Layers:
    return [(k[:, :, :length], v[:, :, :length]) for k, v in layers]


def _left_pad(per_row: Sequence[Layers], device: torch.device) -> tuple[Layers, torch.Tensor]:
    """Stack per-row caches of different lengths into one left-padded batch cache plus its 2D mask."""
    lengths = [row[0][0].shape[2] for row in per_row]
    longest = max(lengths)
    mask = torch.zeros(len(per_row), longest, dtype=torch.long, device=device)
    for b, n in enumerate(lengths):
        mask[b, longest - n :] = 1
    return _left_pad_into(per_row, longest, None, device), mask


def _left_pad_into(
    per_row: Sequence[Layers | None], length: int, template: Layers | None, device: torch.device
) -> Layers:
    """(R, heads, length, head_dim) per layer, each row's cache right-aligned; None rows stay zero."""
    like = next(row for row in per_row if row is not None) if template is None else template
    layers = []
    for layer in range(len(like)):
        k0, v0 = like[layer]
        keys = k0.new_zeros(len(per_row), k0.shape[1], length, k0.shape[3])
        values = v0.new_zeros(len(per_row), v0.shape[1], length, v0.shape[3])
        for b, row in enumerate(per_row):
            if row is not None:
                n = row[layer][0].shape[2]
                keys[b, :, length - n :] = row[layer][0][0]
                values[b, :, length - n :] = row[layer][1][0]
        layers.append((keys, values))
    return layers


def _chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def bitsandbytes_config(bits: int, compute_dtype: torch.dtype) -> transformers.BitsAndBytesConfig:
    """transformers' on-the-fly bitsandbytes quantisation, as the original study loaded its models: 8 bits
    (LLM.int8) or 4 bits computing in `compute_dtype`; one-line ModelError when bitsandbytes is missing."""
    if bits not in (4, 8):
        raise ModelError(f"Got quantization {bits!r}. Give 8 or 4 (bits), or leave it out for the model's own weights.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError(
            f"quantization: {bits} needs bitsandbytes, which is not installed here. Install it with "
            "pip install 'ttscale[quantization]'."
        )
    if bits == 8:
        return transformers.BitsAndBytesConfig(load_in_8bit=True)
    return transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=compute_dtype)
