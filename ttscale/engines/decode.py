"""The `hf` engine's decode batch: each request's decode state, and the rows' shared left-padded KV cache."""

from __future__ import annotations

import random

import torch

from ttscale.engines.base import Generation, GenerationRequest
from ttscale.engines.kv_cache import Cached, Layers, left_pad, pad_left
from ttscale.engines.sampling import sample_token


class Batch:
    """The rows decoding together: their left-padded KV cache and its 2D attention mask."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.layers: Layers = []
        self.mask = torch.zeros(0, 0, dtype=torch.long)

    def join(self, rows: list[Row]) -> None:
        """Add rows (their prefilled caches) to the batch, left-padding whichever side is shorter."""
        if not rows:
            return
        layers, mask = left_pad([r.prefill.layers for r in rows], rows[0].prefill.layers[0][0].device)
        if self.rows:
            length = max(mask.shape[1], self.mask.shape[1])
            self.layers = [
                (
                    torch.cat([pad_left(k0, length), pad_left(k1, length)]),
                    torch.cat([pad_left(v0, length), pad_left(v1, length)]),
                )
                for (k0, v0), (k1, v1) in zip(self.layers, layers, strict=True)
            ]
            mask = torch.cat([pad_left(self.mask, length), pad_left(mask, length)])
        self.layers, self.mask = (layers, mask) if not self.rows else (self.layers, mask)
        self.rows = [*self.rows, *rows]

    def keep(self, indices: list[int]) -> None:
        if len(indices) == len(self.rows):
            return
        index = torch.tensor(indices, dtype=torch.long, device=self.mask.device)
        self.layers = [(k[index], v[index]) for k, v in self.layers]
        self.mask = self.mask[index]
        self.rows = [self.rows[i] for i in indices]


class Row:
    """Decode state of one request inside a batch."""

    def __init__(self, index: int, request: GenerationRequest, prefill: Cached, device: torch.device) -> None:
        self.index = index
        self.request = request
        self.prefill = prefill
        self.generated: list[int] = []
        self.stop_token_id: int | None = None
        self.done = False
        self.reported = 0  # of `generated`, the tokens already passed to the caller's `on_tokens`
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
