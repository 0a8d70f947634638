"""Seeded next-token sampling for the `hf` engine: temperature, top-k and top-p in HF's and vLLM's order."""

from __future__ import annotations

import torch

from ttscale.engines.base import Sampling

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
