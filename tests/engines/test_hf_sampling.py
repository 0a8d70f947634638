"""The hf engine samples from the same tokens as transformers and vLLM: temperature, then top-k, then top-p
on the renormalised top-k (so QwQ-style settings mean the same on both engines)."""

import pytest
import torch
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from ttscale.engines.base import Sampling
from ttscale.engines.sampling import sample_token, sampling_distribution

VOCAB = 49152  # SmolLM2's


def transformers_support(logits: torch.Tensor, sampling: Sampling) -> set[int]:
    """The token ids transformers' own warpers leave finite, applied in generate()'s order."""
    x = TemperatureLogitsWarper(sampling.temperature)(None, logits[None].clone())
    if sampling.top_k:
        x = TopKLogitsWarper(sampling.top_k)(None, x)
    if sampling.top_p < 1.0:
        x = TopPLogitsWarper(sampling.top_p)(None, x)
    return set(torch.nonzero(torch.isfinite(x[0])).flatten().tolist())


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"),
    [(0.6, 40, 0.95), (0.6, 20, 0.95), (0.7, 0, 0.9), (1.0, 1000, 0.8), (0.6, 50, 1.0), (1.0, 0, 1.0)],
)
def test_kept_tokens_equal_transformers_warpers(temperature, top_k, top_p):
    sampling = Sampling(temperature=temperature, top_k=top_k, top_p=top_p)
    generator = torch.Generator().manual_seed(top_k)
    for _ in range(5):
        logits = torch.randn(VOCAB, generator=generator) * 3.0  # (V,) peaked like an LM's next-token logits
        ids, probs = sampling_distribution(logits, sampling)
        assert set(ids.tolist()) == transformers_support(logits, sampling)
        assert torch.all(probs > 0) and len(ids) == len(set(ids.tolist()))


def test_top_p_applies_to_the_renormalised_top_k():
    # QwQ's T=0.6, top_k=40, top_p=0.95 on a flat tail: the top 40 hold 84% of the mass. Measured on the full
    # vocabulary, 95% is never reached inside them and all 40 stay; renormalised, the nucleus is smaller.
    logits = torch.full((VOCAB,), -1.0)
    logits[:40] = torch.linspace(5.0, 3.0, 40)
    sampling = Sampling(temperature=0.6, top_k=40, top_p=0.95)
    top40_mass = torch.softmax(logits / 0.6, -1).topk(40).values.sum()
    assert top40_mass < 0.95
    ids, _ = sampling_distribution(logits, sampling)
    assert set(ids.tolist()) == transformers_support(logits, sampling)
    assert len(ids) < 40


def test_draws_come_from_the_kept_tokens_only():
    logits = torch.randn(VOCAB, generator=torch.Generator().manual_seed(1)) * 3.0
    sampling = Sampling(temperature=0.6, top_k=40, top_p=0.95)
    kept = set(sampling_distribution(logits, sampling)[0].tolist())
    generator = torch.Generator().manual_seed(0)
    assert {sample_token(logits, sampling, generator) for _ in range(300)} <= kept
