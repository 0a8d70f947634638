"""quantization: 8 or 4 on the hf engine: bitsandbytes quantises SmolLM2 on the fly on this CPU, as the original
study quantised its models (issue 22, item 4); what an engine cannot do is refused in one line."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from ttscale.engines.base import GenerationRequest
from ttscale.engines.hf import HFEngine, bitsandbytes_config
from ttscale.errors import ConfigError, ModelError
from ttscale.sweeps.spec import ModelSpec

PROMPT = "The capital of France is"


@pytest.mark.model
@pytest.mark.parametrize(("bits", "layer"), [(8, "Linear8bitLt"), (4, "Linear4bit")])
def test_smollm2_quantised_on_the_fly_on_this_cpu(smol, bits, layer):
    import bitsandbytes  # noqa: F401  (installed by `make setup`: the [quantization] extra)

    engine = HFEngine("smollm2-135m", quantization=bits, threads=2)
    assert type(engine.model.model.layers[0].self_attn.q_proj).__name__ == layer
    assert engine.info.dtype == f"float32+bnb-int{bits}" and engine.info.model_path == smol.info.model_path
    ids = tuple(engine.encode(PROMPT))
    [ours] = engine.generate([GenerationRequest(prompt_ids=ids, max_tokens=3)])
    [theirs] = smol.generate([GenerationRequest(prompt_ids=ids, max_tokens=3)])
    assert ours.token_ids[:1] == theirs.token_ids[:1]  # the same greedy answer to an easy prompt ...
    with torch.no_grad():
        logits = [e.model(torch.tensor([ids])).logits[0, -1].float().numpy() for e in (engine, smol)]
    assert not np.allclose(logits[0], logits[1], atol=1e-3)  # ... from weights that are not the original ones


def test_without_bitsandbytes_quantization_is_refused_in_one_line(monkeypatch):
    real = importlib.util.find_spec
    missing = lambda name, *args: None if name == "bitsandbytes" else real(name, *args)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", missing)
    with pytest.raises(ModelError, match=r"quantization: 8 needs bitsandbytes.*'ttscale\[quantization\]'"):
        bitsandbytes_config(8, torch.float32)
    with pytest.raises(ModelError, match="Give 8 or 4"):
        bitsandbytes_config(3, torch.float32)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"engine": "vllm", "quantization": 4}, "The vLLM versions ttscale supports .* have no bitsandbytes"),
        ({"engine": "vllm", "quantization": 8, "device": "cpu"}, "use engine: hf"),
        ({"engine": "fake", "quantization": 8}, "The test double has no weights"),
        ({"engine": "hf", "quantization": 6}, "Input should be 4 or 8"),
        ({"engine": "hf", "engine_options": {"quantization": 8}}, "Set them as model fields \\(quantization\\)"),
    ],
)
def test_what_an_engine_cannot_quantise_is_refused(model, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        ModelSpec(name="smollm2-135m", **model)
    assert ModelSpec(name="smollm2-135m", engine="hf", quantization=8).quantization == 8
