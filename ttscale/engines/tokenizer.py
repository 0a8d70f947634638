"""What engines that load a Hugging Face directory share: ids, text, chat template, EOS, vocabulary, provenance.

`hf` and `vllm` both tokenise with the model directory's own `AutoTokenizer`, so the same prompt becomes the
same token ids on either engine (vLLM then receives ids, never text).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from ttscale.engines.base import Engine, EngineInfo
from ttscale.engines.models import ResolvedModel


class TokenizerEngine(Engine):
    """An engine whose tokenizer is `AutoTokenizer` of a model directory; subclasses set `tokenizer`, `_info`
    (see `model_info`) and `_generation_eos` (the `eos_token_id` of the model's generation config, an id, a list
    or None)."""

    tokenizer: object
    _info: EngineInfo
    _generation_eos: int | list[int] | None = None

    @property
    def info(self) -> EngineInfo:
        return self._info

    @cached_property
    def eos_token_ids(self) -> frozenset[int]:
        ids = {self.tokenizer.eos_token_id}
        gen_eos = self._generation_eos
        ids.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        return frozenset(int(i) for i in ids if i is not None)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=False)

    def chat_prompt_ids(self, messages: Sequence[dict[str, str]]) -> list[int]:
        text = self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        # The template already holds any BOS it wants: adding special tokens again would double it.
        return self.encode(text)

    def vocab_texts(self) -> Sequence[str]:
        return self._vocab_texts

    @cached_property
    def _vocab_texts(self) -> list[str]:
        return [self.tokenizer.decode([i]) for i in range(len(self.tokenizer))]


def model_info(engine: str, engine_version: str, model: str, resolved: ResolvedModel, dtype: str) -> EngineInfo:
    """The record of a model loaded from `resolved`: `model` as the user named it, and what was loaded as
    `<source>@<revision>`."""
    return EngineInfo(
        engine=engine,
        engine_version=engine_version,
        model=model,
        model_path=f"{resolved.source}@{resolved.revision}",
        dtype=dtype,
    )


def load_tokenizer(path: Path):
    """`AutoTokenizer` of a model directory (imports transformers only here)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def generation_eos(path: Path) -> int | list[int] | None:
    """`eos_token_id` of the directory's generation config, or None when it has none."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(path).eos_token_id
    except OSError:
        return None
