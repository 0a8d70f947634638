"""The engine registry: each engine describes itself once, and nothing outside this module branches on its name.

An `EngineKind` says what the rest of ttscale needs to know about an engine without importing it (no torch, no
vLLM): the performance options a sweep may pass it, whether one running batch serves several callers, where it
runs by default, what it can do (tensor parallelism, quantisation), which extra installs it and how to tell it is
installed, and how a sweep's model settings and placement become its keyword arguments. `create_engine` imports
the engine's module only when an actor builds one. The pattern is submitit's executors and vLLM's platforms.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ttscale.errors import ConfigError

if TYPE_CHECKING:
    from ttscale.engines.base import Engine


@dataclass(frozen=True)
class Placement:
    """What a sweep decided about one model's actors, in the terms every engine's options are built from."""

    dtype: str
    on_gpus: bool
    threads: int  # the actor's CPU threads (CPU engines)
    tensor_parallel: int
    context_tokens: int  # the context the largest budget needs (prompt, thinking, injections, answer)
    quantization: int | None = None


OptionsBuilder = Callable[[dict[str, Any], Placement], dict[str, Any]]


def _threads_and_device(options: dict[str, Any], placement: Placement) -> dict[str, Any]:
    """A one-device engine (hf): its CPU threads, and CUDA when it was placed on a GPU."""
    options.setdefault("threads", placement.threads)
    if placement.on_gpus:
        options.setdefault("device", "cuda")
    return options


def _vllm_options(options: dict[str, Any], placement: Placement) -> dict[str, Any]:
    """vLLM: the device from the placement (never from what torch sees), the actor's CPUs on its CPU build,
    `max_model_len` from the budget grid, and tensor parallelism on its mp executor (the workers are processes of
    the actor, which holds all their GPUs; see sweeps/placement.py)."""
    options["device"] = "cuda" if placement.on_gpus else "cpu"
    if not placement.on_gpus:
        options.setdefault("threads", placement.threads)  # shared by its tensor-parallel workers
    options.setdefault("max_model_len", placement.context_tokens)
    options["tensor_parallel"] = placement.tensor_parallel
    if placement.tensor_parallel > 1:
        options["distributed_executor_backend"] = "mp"
    return options


def _record_tensor_parallel(options: dict[str, Any], placement: Placement) -> dict[str, Any]:
    """The test double: it records the tensor-parallel size it was placed with (it has no workers)."""
    if placement.tensor_parallel > 1:
        options["tensor_parallel"] = placement.tensor_parallel
    return options


def _mp_executor_only(options: dict[str, Any]) -> str | None:
    executor = options.get("distributed_executor_backend", "mp")
    if executor == "mp":
        return None
    return (
        f"Got distributed_executor_backend: {executor!r}. ttscale runs a tensor-parallel vLLM engine's workers as "
        "processes of its actor, on one node (vLLM's mp executor; see docs/cluster.md): remove it"
    )


def _vllm_installed_too_old() -> str | None:
    from ttscale.engines.vllm import installed_too_old  # reads package metadata; vLLM itself is not imported

    return installed_too_old()


@dataclass(frozen=True)
class EngineKind:
    """One engine, described once: everything ttscale decides about it without importing it."""

    name: str
    module: str  # imported only when an engine is created
    class_name: str
    summary: str  # one line for docs and errors
    options: tuple[str, ...] | None  # performance-only `engine_options` it takes; None: passed through unchecked
    batches: bool = False  # one running batch serves several callers: an actor takes several units at once
    gpu_by_default: bool = False  # `device: auto` places it on GPUs
    tensor_parallel: bool = False  # can run one model across several devices
    quantization_refused: str | None = None  # why `quantization` is refused; None: it quantises (bitsandbytes)
    loads_weights: bool = True  # False: the model name only labels it (the test double)
    context_option: str | None = None  # the option that caps its context window, checked against the budgets
    extra: str | None = None  # the pip extra that installs it: pip install 'ttscale[<extra>]'
    requires: str | None = None  # the module whose presence says it is installed
    display_name: str = ""  # how errors name it ("vLLM"); the name by default
    build_options: OptionsBuilder = field(default=lambda options, placement: options, repr=False)
    check_options: Callable[[dict[str, Any]], str | None] = field(default=lambda options: None, repr=False)
    installed_too_old: Callable[[], str | None] = field(default=lambda: None, repr=False)

    def options_for(self, configured: dict[str, Any], placement: Placement) -> dict[str, Any]:
        """The keyword arguments one actor's engine is built with: the sweep's own options, the dtype and any
        quantisation, then what this engine takes from its placement."""
        options = dict(configured)
        options.setdefault("dtype", placement.dtype)
        if placement.quantization is not None:
            options["quantization"] = placement.quantization
        return self.build_options(options, placement)

    def unavailable(self) -> str | None:
        """Why this engine cannot run in this install (one line with the fix), or None when it can."""
        if self.requires is not None and importlib.util.find_spec(self.requires) is None:
            return (
                f"{self.display_name or self.name} is not installed here. Install it on a GPU machine with "
                f"pip install 'ttscale[{self.extra}]'."
            )
        return self.installed_too_old()

    def load(self, model: str, **options: Any) -> Engine:
        """Import the engine's module and build it (torch or vLLM load here, on first use)."""
        engine_class = getattr(importlib.import_module(self.module), self.class_name)
        return engine_class(model, **options)


ENGINE_KINDS: dict[str, EngineKind] = {}


def register_engine(kind: EngineKind) -> EngineKind:
    """Add an engine (see CONTRIBUTING.md, "An engine"); a second engine under one name is refused."""
    if kind.name in ENGINE_KINDS and ENGINE_KINDS[kind.name] != kind:
        raise ValueError(f"an engine called {kind.name!r} is already registered")
    ENGINE_KINDS[kind.name] = kind
    return kind


register_engine(
    EngineKind(
        name="hf",
        module="ttscale.engines.hf",
        class_name="HFEngine",
        summary="transformers in the actor's process: CPUs, or one GPU with device: gpu",
        options=("max_batch", "prefix_cache_tokens", "score_logits"),
        build_options=_threads_and_device,
    )
)
register_engine(
    EngineKind(
        name="vllm",
        module="ttscale.engines.vllm",
        class_name="VLLMEngine",
        summary="vLLM (GPUs, or its CPU build with device: cpu), tensor parallel on its mp executor",
        options=None,
        batches=True,
        gpu_by_default=True,
        tensor_parallel=True,
        quantization_refused=(
            "The vLLM versions ttscale supports (0.22-0.33) have no bitsandbytes quantisation (the original's older "
            "vLLM had it): use engine: hf (device: gpu on GPUs) to quantise on the fly as the original did, or name "
            "a pre-quantised checkpoint (AWQ, GPTQ) as the model"
        ),
        context_option="max_model_len",
        extra="vllm",
        requires="vllm",
        display_name="vLLM",
        build_options=_vllm_options,
        check_options=_mp_executor_only,
        installed_too_old=_vllm_installed_too_old,
    )
)
register_engine(
    EngineKind(
        name="fake",
        module="ttscale.engines.fake",
        class_name="FakeEngine",
        summary="the deterministic test double for orchestration tests and benchmarks, never a model",
        options=(
            "stop_every",
            "stop_token",
            "seconds_per_token",
            "answer",
            "hang_on",
            "oom_above",
            "memory_per_sequence_mb",
            "memory_limit_mb",  # fault injection (the double only)
            "exit_after_tokens",
            "token_ledger",  # measurement of work lost (the double only)
        ),
        gpu_by_default=True,
        tensor_parallel=True,
        quantization_refused="The test double has no weights: remove it",
        loads_weights=False,
        build_options=_record_tensor_parallel,
    )
)


def engine_kind(name: str) -> EngineKind:
    """The engine called `name`; an unknown name is a ConfigError that lists the known ones."""
    try:
        return ENGINE_KINDS[name]
    except KeyError:
        raise ConfigError(f"Unknown engine '{name}'. Known: {', '.join(ENGINE_KINDS)}.") from None


def engine_unavailable(name: str, *, anywhere: bool = False) -> str | None:
    """Why engine `name` cannot run in this install (one line with the fix), or None when it can.

    `anywhere=True` asks only what no machine can fix: an engine this ttscale does not ship."""
    if name not in ENGINE_KINDS:
        return f"unknown engine '{name}'. Known: {', '.join(ENGINE_KINDS)}."
    return None if anywhere else ENGINE_KINDS[name].unavailable()


def create_engine(name: str, model: str, **options: Any) -> Engine:
    """Load `model` on the engine called `name` (imports torch/vLLM only here, on first use)."""
    problem = engine_unavailable(name)
    if problem:
        raise ConfigError(f"Engine '{name}': {problem}")
    return ENGINE_KINDS[name].load(model, **options)
