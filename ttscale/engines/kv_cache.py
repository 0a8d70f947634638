"""The `hf` engine's KV caches: the LRU prefix cache and the helpers that crop, slice and left-pad per-layer caches."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import DynamicCache

Layers = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (keys, values), each (1, kv_heads, L, head_dim)


@dataclass
class Cached:
    """One sequence's KV cache; `last_logits` are the logits after its final token, when known."""

    ids: np.ndarray
    layers: Layers
    last_logits: torch.Tensor | None


class PrefixCache:
    """LRU store of per-sequence KV caches, looked up by longest common token prefix (like vLLM's APC)."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self._entries: OrderedDict[int, Cached] = OrderedDict()
        self._tokens = 0

    def lookup(self, ids: np.ndarray) -> tuple[Cached | None, int]:
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

    def insert(self, entry: Cached) -> None:
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


def empty_layers(config, dtype: torch.dtype, device: torch.device) -> Layers:
    """Zero-length KV shaped like the layers of a model with this `config` (a template for rows with no prefix)."""
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    zeros = torch.zeros(1, heads, 0, head_dim, dtype=dtype, device=device)
    return [(zeros, zeros)] * config.num_hidden_layers


def cache_of(output) -> DynamicCache:
    """The KV cache a forward returned (`cache` in newer transformers, `past_key_values` before)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def layers_of(cache: DynamicCache) -> Layers:
    return [(layer.keys, layer.values) for layer in cache.layers]


def cache_from(layers: Layers) -> DynamicCache:
    return DynamicCache(ddp_cache_data=[(k, v) for k, v in layers])


def crop(layers: Layers, length: int) -> Layers:
    return [(k[:, :, :length], v[:, :, :length]) for k, v in layers]


def row_layers(layers: Layers, row: int, positions: torch.Tensor) -> Layers:
    """One row of a batch cache, only its `positions` (its real tokens, pads dropped), copied out of the batch."""
    return [(k[row : row + 1, :, positions].clone(), v[row : row + 1, :, positions].clone()) for k, v in layers]


def pad_left(t: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad dim 2 (KV: B, heads, L, d) or dim 1 (mask: B, L) on the left up to `length`."""
    dim = 2 if t.dim() == 4 else 1
    missing = length - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def left_pad(per_row: Sequence[Layers], device: torch.device) -> tuple[Layers, torch.Tensor]:
    """Stack per-row caches of different lengths into one left-padded batch cache plus its 2D mask."""
    lengths = [row[0][0].shape[2] for row in per_row]
    longest = max(lengths)
    mask = torch.zeros(len(per_row), longest, dtype=torch.long, device=device)
    for b, n in enumerate(lengths):
        mask[b, longest - n :] = 1
    return left_pad_into(per_row, longest, None, device), mask


def left_pad_into(
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
