"""The `hf` engine: transformers on CPU (or one GPU) loading, batched generation and tree-attention trie scoring.

Generation runs its own batched decode loop so each request keeps its own seed, stop ids and length:
prompts are prefilled one by one (reusing the longest cached prefix), their caches are left-padded
into one batch, and finished rows leave the batch as they finish. Every finished sequence's KV cache
goes into an LRU prefix cache, so the forced answer at budget B prefills only the forced-answer tokens
on top of the cached prompt + thinking, and trie scoring starts from the forced-answer prefix's cache.
The caches live in kv_cache.py, the decode batch's rows in decode.py, and sampling in sampling.py.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections import deque
from collections.abc import Sequence

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, DynamicCache

from ttscale.engines.base import (
    Generation,
    GenerationRequest,
    OnFinish,
    OnTokens,
    RunningBatchEngine,
    ScoreRequest,
)
from ttscale.engines.decode import Batch, Row
from ttscale.engines.kv_cache import (
    Cached,
    Layers,
    PrefixCache,
    cache_from,
    cache_of,
    crop,
    empty_layers,
    layers_of,
    left_pad,
    left_pad_into,
    row_layers,
)
from ttscale.engines.models import resolve_model
from ttscale.engines.tokenizer import TokenizerEngine, load_tokenizer, model_info
from ttscale.errors import ModelError
from ttscale.scoring import Trie, TrieScores


class HFEngine(TokenizerEngine, RunningBatchEngine):
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
        self.tokenizer = load_tokenizer(self._resolved.path)
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
        self._info = model_info(
            "hf",
            f"transformers-{transformers.__version__}+torch-{torch.__version__}",
            model,
            self._resolved,
            dtype if quantization is None else f"{dtype}+bnb-int{quantization}",
        )

    # -- tokens and info (encode, decode, chat template, EOS, vocabulary, info: TokenizerEngine) ------

    def _forward(self, *, cache: DynamicCache, **inputs: torch.Tensor):
        return self.model(**inputs, **{self._cache_kw: cache}, use_cache=True)

    # -- prefill --------------------------------------------------------------------------------------

    def warm(self, prefixes: Sequence[Sequence[int]]) -> None:
        """Prefill these sequences into the prefix cache: budgets cut from a stored trajectory (no generation
        left its KV here) then prefill only their forced-answer tokens, as after a trajectory generated here."""
        if prefixes:
            self._prefill_many(prefixes)

    @torch.inference_mode()
    def _prefill_many(self, prompts: Sequence[Sequence[int]]) -> list[Cached]:
        """KV caches and last logits for many prompts, computing only what the prefix cache lacks.

        All uncached suffixes run in one forward: row r is [pad | its cached prefix] as the past and
        [pad | its suffix] as input, so every row's last input token is its prompt's last token; the
        2D mask hides the pads and position ids continue each row's own prefix.
        """
        results: list[Cached | None] = [None] * len(prompts)
        work = []  # (row, ids, cached entry or None, tokens reused)
        for i, ids in enumerate(prompts):
            ids_np = np.asarray(ids, dtype=np.int64)
            entry, common = self.cache.lookup(ids_np)
            if entry is not None and common == len(ids_np) == len(entry.ids) and entry.last_logits is not None:
                results[i] = entry
                continue
            reuse = min(common, len(ids_np) - 1)  # at least one token must run to produce logits
            work.append((i, ids_np, entry if reuse > 0 else None, reuse))
        for chunk in _chunks(work, self.max_batch):
            for (i, *_), cached in zip(chunk, self._prefill_forward(chunk), strict=True):
                results[i] = cached
                self.cache.insert(cached)
        return results  # type: ignore[return-value]

    def _prefill_forward(self, work: Sequence[tuple[int, np.ndarray, Cached | None, int]]) -> list[Cached]:
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
            no_prefix = any(e is None for _, _, e, _ in work)
            layers = empty_layers(self.model.config, self._dtype, self._device) if no_prefix else None
            per_row = [crop(e.layers, reuse) if e is not None else None for _, _, e, reuse in work]
            past = cache_from(left_pad_into(per_row, past_len, layers, self._device))
        out = self._forward(
            input_ids=input_ids, position_ids=positions, attention_mask=mask, cache=past, logits_to_keep=1
        )
        layers = layers_of(cache_of(out))
        results = []
        for r, (_, ids, _, _) in enumerate(work):
            real = torch.nonzero(mask[r]).squeeze(1)  # (len(ids),) the row's own positions, holes dropped
            results.append(Cached(ids=ids, layers=row_layers(layers, r, real), last_logits=out.logits[r, -1].float()))
        return results

    # -- generation -----------------------------------------------------------------------------------

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        on_finish: OnFinish | None = None,
        on_tokens: OnTokens | None = None,
    ) -> list[Generation]:
        """Continuous batching: up to `max_batch` rows decode together; a finished row leaves at once and
        the next waiting request (a follow-up from `on_finish` first) is prefilled and joins the batch. Each
        step's new token of a row still running goes to `on_tokens`."""
        results: list[Generation | None] = [None] * len(requests)
        # Longest first: short requests then fill the slots that finish early (shorter makespan).
        waiting = deque(sorted(enumerate(requests), key=lambda item: -item[1].max_tokens))
        batch = Batch()
        while waiting or batch.rows:
            self._admit(batch, waiting, results, on_finish)
            if batch.rows:
                self._step(batch, waiting, results, on_finish)
            if on_tokens is not None:
                for row in batch.rows:  # still running: its newest token is final (a stop token ends the row)
                    on_tokens(row.index, row.generated[row.reported :])
                    row.reported = len(row.generated)
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def _admit(self, batch: Batch, waiting: deque, results: list, on_finish: OnFinish | None) -> None:
        """Prefill waiting requests into free slots; rows that finish on their first token leave at once."""
        while waiting and len(batch.rows) < self.max_batch:
            take = [waiting.popleft() for _ in range(min(self.max_batch - len(batch.rows), len(waiting)))]
            prefills = self._prefill_many([request.prompt_ids for _, request in take])
            joining = []
            for (index, request), prefill in zip(take, prefills, strict=True):
                row = Row(index, request, prefill, self._device)
                row.push(row.sample(prefill.last_logits))
                self.generated_tokens += 1
                if row.done:
                    self._finish(row, waiting, results, on_finish)
                else:
                    joining.append(row)
            batch.join(joining)

    @torch.inference_mode()
    def _step(self, batch: Batch, waiting: deque, results: list, on_finish: OnFinish | None) -> None:
        """Feed every row its newest token, sample the next, and let finished rows leave the batch."""
        rows = batch.rows
        tokens = torch.tensor([[r.generated[-1]] for r in rows], device=self._device)
        positions = torch.tensor([[r.next_position - 1] for r in rows], device=self._device)
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones(len(rows), 1)], dim=1)
        out = self._forward(
            input_ids=tokens, position_ids=positions, attention_mask=batch.mask, cache=cache_from(batch.layers)
        )
        batch.layers = layers_of(cache_of(out))
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

    def _finish(self, row: Row, waiting: deque, results: list, on_finish: OnFinish | None) -> None:
        results[row.index] = row.result()
        follow = on_finish(row.index, results[row.index]) if on_finish is not None else None
        if follow is not None:
            waiting.appendleft((row.index, follow))  # continue it next, ahead of fresh requests

    def _store_finished(self, row: Row, batch_layers: Layers, b: int, mask_row: torch.Tensor) -> None:
        """Keep a finished row's KV (prompt + every token fed so far) for follow-ups and forced answers."""
        fed = row.fed_ids()
        real = torch.nonzero(mask_row).squeeze(1)
        if len(real) != len(fed):
            return
        layers = row_layers(batch_layers, b, real)
        self.cache.insert(Cached(ids=np.asarray(fed, dtype=np.int64), layers=layers, last_logits=None))

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
        layers, pad = left_pad([c.layers for c in cached], self._device)  # pad: (R, Lmax), 1 = real token
        blocked = torch.finfo(self._dtype).min
        mask = torch.full((R, 1, M, pad.shape[1] + M), blocked, dtype=self._dtype, device=self._device)
        mask[:, 0, :, : pad.shape[1]].masked_fill_(pad[:, None, :].bool(), 0.0)
        mask[:, 0, :, pad.shape[1] :].masked_fill_(torch.from_numpy(trie.ancestors(expanded)).to(self._device), 0.0)
        lengths = torch.tensor([len(c.ids) for c in cached], device=self._device)[:, None]  # (R, 1)
        input_ids = torch.as_tensor(trie.tokens[expanded], device=self._device).expand(R, M)
        positions = lengths + torch.as_tensor(trie.depths[expanded] - 1, device=self._device)[None]
        out = self._forward(input_ids=input_ids, position_ids=positions, attention_mask=mask, cache=cache_from(layers))
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
        """Reference scorer: one full-context forward per candidate, no caching. Kept public as the check the trie
        scorer is held to, by tests/engines/test_hf.py, bench/solution_set.py and scripts/gpu_bare.py.

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
