"""The original study's flat YAML configs: recognise one, map each key onto a native sweep, render that as YAML.

The original study (the study ttscale continues; ../shared/seed/README.md) ran one model on one dataset per
flat config file:

    model_name: "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    dataset_name: "Idavidrein/gpqa"
    start_token_budget: 7   # 2^7 = 128 tokens
    end_token_budget: 11    # 2^11 = 2048 tokens
    num_completions: 3
    normalise_over_solution_set: true

This module is the front-end that takes a sweep file in either format: `parse_sweep` and `load_sweep`
recognise such a file (`recognise`) and validate `to_native(...).native` instead, and hand anything else to
the native loader (`loading.py`, which never imports this module), so `ttscale plan`, `sweep` and `status`
take it as it is; `load_sweep` warns `notes` once (what ttscale measures differently, and the keys that have
no effect); `render` writes the native sweep file with a comment per mapped key (`ttscale convert`). Pure
Python: no Ray, no torch. docs/migrating.md has the table.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import tempfile
import textwrap
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from ttscale.errors import ConfigError, TtscaleError, TtscaleWarning
from ttscale.families import infer_family
from ttscale.grid import MAX_LOG2, MAX_SEEDS
from ttscale.messages import one_line, short_repr
from ttscale.sweeps.command_line import Command, is_command_text, read_commands
from ttscale.sweeps.loading import check_paths, read_sweep_text, sweep_mapping, validated, validation_message
from ttscale.sweeps.plan import context_tokens
from ttscale.sweeps.spec import LoadedSweep, SweepSpec
from ttscale.tasks.original import ORIGINAL_DATASETS, task_for

# The keys of the original format that ttscale maps, and where each goes (docs/migrating.md has the same table).
MAPPED: dict[str, str] = {
    "model_name": "models[].name",
    "dataset_name": "datasets[].name",
    "start_token_budget": "budgets: {log2: [start, end]}",
    "end_token_budget": "budgets: {log2: [start, end]}",
    "num_completions": "seeds",
    "num_samples": "datasets[].limit",
    "sample_idxs_range": "datasets[].offset and limit",
    "normalise_over_solution_set": "p_correct (every row is normalised over the solution set)",
    "inference_engine": "models[].engine",
    "vllm_gpu_memory_utilization": "models[].engine_options.gpu_memory_utilization",
    "quantization": "models[].quantization (8 or 4 bits, bitsandbytes on the hf engine)",
    "max_model_len": "models[].engine_options.max_model_len",
    "batch_size": "problems_per_unit",
    # Documented in the original README's "Additional configuration parameters", with exact native equivalents:
    "vllm_max_num_seqs": "models[].engine_options.max_num_seqs",
    "final_answer_budget": "forcing.answer_max_tokens",
    "force_continue": "models[].overrides.continuation",
}
# Keys that did something in the original and have no effect here, with why (one warning names them).
NO_EFFECT: dict[str, str] = {
    "SAVE_BOOL": "every finished work unit is stored",
    "TIME_BASED_SAVING": "every work unit is stored as it finishes",
    "save_every_n_mins": "every work unit is stored as it finishes",
    "DEBUG_MODE": "no mode changes how ttscale generates",
    "ATTENTION_TYPE": "the engine picks its attention kernels",
    "force_end_batch_size": "forced answers are batched with everything the engine holds",
    "solution_set_batch_size": "a solution set is scored in one pass over its trie",
    "max_new_tokens_frac": "thinking is generated to exactly the budget, not in chunks",
}
KNOWN_KEYS = (*MAPPED, *NO_EFFECT)
DEFAULT_ENGINE = "hf"  # the original's conf.py default (its README said vllm; the code ran hf)

# What ttscale measures differently from the original study, whatever the config says (docs/migrating.md).
MEANING = (
    "budgets are exact: thinking is cut at exactly B model tokens (in the original, a debug flag and a repetition "
    "guard stopped small budgets far short of B), and every row records the real count",
    "continuous metrics come from raw logits (temperature 1, no top-k, top-p or repetition penalty) of one "
    "token prefix, over the whole solution set",
    "trajectories are nested: every budget is a prefix of one trajectory per (problem, seed); "
    "`forcing: {trajectory: independent}` in a native sweep reproduces the original's regeneration per budget",
    "the forced-answer string (and the continuation, unless force_continue sets it) is the model family's, and "
    "sampling is the sweep's (temperature 0.6, top-p 0.95), not the original's",
)
NULL_STRINGS = ("None", "none")  # the original's conf.py read the string None as null


class OriginalConfig(BaseModel):
    """The mapped keys of an original config, typed (the original's defaults where it had one that ttscale keeps)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: StrictStr | list[StrictStr]
    """A hub id (org/name), or anything a native sweep takes: an alias, a local directory, a .gguf file."""
    dataset_name: StrictStr | list[StrictStr]
    """An original id (Idavidrein/gpqa, math-ai/aime25, Maxwell-Jia/AIME_2024), or any native dataset name."""
    start_token_budget: StrictInt = Field(ge=0, le=MAX_LOG2)
    end_token_budget: StrictInt = Field(ge=0, le=MAX_LOG2)
    num_completions: StrictInt = Field(default=1, ge=1, le=MAX_SEEDS)
    num_samples: StrictInt | None = Field(default=None, ge=1)
    sample_idxs_range: tuple[StrictInt, StrictInt] | None = None
    normalise_over_solution_set: StrictBool | None = None
    inference_engine: Literal["vllm", "hf"] | None = None
    vllm_gpu_memory_utilization: float | None = Field(default=None, gt=0.0, le=1.0)
    quantization: StrictInt | None = None
    max_model_len: StrictInt | None = Field(default=None, ge=1)
    batch_size: StrictInt | None = Field(default=None, ge=1, le=1_000_000)
    vllm_max_num_seqs: StrictInt | None = Field(default=None, ge=1)
    final_answer_budget: StrictInt | None = Field(default=None, ge=1, le=1024)
    force_continue: StrictStr | None = Field(default=None, min_length=1)

    @field_validator("model_name", "dataset_name")
    @classmethod
    def _names(cls, value: str | list[str]) -> str | list[str]:
        names = [value] if isinstance(value, str) else value
        if not names or any(not n.strip() for n in names):
            raise ValueError("Give a non-empty name, or a list of them")
        if len(set(names)) != len(names):
            raise ValueError("A name is listed twice. List each once")
        return value

    @field_validator("end_token_budget")
    @classmethod
    def _budget_order(cls, value: int, info) -> int:
        start = info.data.get("start_token_budget")
        if start is not None and value < start:
            raise ValueError(
                f"It is below start_token_budget ({start}). Budgets run 2^start_token_budget..2^end_token_budget: "
                "give end >= start"
            )
        return value

    @field_validator("sample_idxs_range")
    @classmethod
    def _range(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 0 <= value[0] < value[1]:
            raise ValueError("It selects problems start..end-1 (0-based): give 0 <= start < end, e.g. [0, 30]")
        return value

    @field_validator("quantization")
    @classmethod
    def _bits(cls, value: int | None) -> int | None:
        if value is not None and value not in (4, 8):
            raise ValueError("The original took 8 or 4 (bits) or None")
        return value


@dataclass
class Conversion:
    """An original config mapped onto a native sweep."""

    native: dict[str, Any]
    """A native sweep mapping (SweepSpec fields), in the order `render` writes it."""
    comments: dict[tuple, str] = field(default_factory=dict)
    """Native path (e.g. ("models", 0, "engine")) → the original key(s) it came from: `render`'s inline comments."""
    remarks: list[str] = field(default_factory=list)
    """Original keys with no native field of their own, and what they mean here: `render`'s header comments."""
    ignored: dict[str, str] = field(default_factory=dict)
    """Keys of the file that have no effect in ttscale → why."""
    notes: list[str] = field(default_factory=list)
    """What `load_sweep` warns, once each: the differences in meaning, the ignored keys, anything else to know."""


def load_sweep(path: str | Path, *, warn: bool = True) -> LoadedSweep:
    """Read and validate a sweep file, native or in the original study's format, and check the paths it names;
    any problem is a one-line ConfigError naming file, field and fix. With `warn`, what an original config
    means here is said in TtscaleWarnings."""
    path = Path(path)
    loaded = parse_sweep(read_sweep_text(path), path)
    check_paths(loaded)
    if warn and loaded.original is not None:  # what the original study's config means here, said once per load
        for note in loaded.original.notes:
            warnings.warn(note, TtscaleWarning, stacklevel=2)
    return loaded


def parse_sweep(text: str, path: Path) -> LoadedSweep:
    """Validate sweep YAML text, native or in the original study's format; `path` is named in errors (and kept
    with the spec)."""
    data = sweep_mapping(text, path)
    original = to_native(data, path) if recognise(data, path) else None
    return validated(original.native if original is not None else data, text, path, original=original)


def recognise(data: dict, path: Path) -> bool:
    """Is this mapping a config in the original study's flat format? A file mixing both formats is refused."""
    keys = {k for k in data if isinstance(k, str)}
    original, native = sorted(keys & set(KNOWN_KEYS)), sorted(keys & set(SweepSpec.model_fields))
    if original and native:
        raise ConfigError(
            f"{path} mixes keys of the original study's format ({', '.join(original[:4])}) with native sweep keys "
            f"({', '.join(native[:4])}). Write one format: `ttscale convert` turns an original config into a native "
            "sweep (docs/migrating.md)."
        )
    return bool(original)


def to_native(data: dict, path: Path) -> Conversion:
    """Map an original config (a parsed YAML mapping) onto a native sweep mapping; one-line ConfigError if it
    cannot be (an unknown key, a bad value, quantisation, contradictory problem selection)."""
    data = {k: (None if isinstance(v, str) and v.strip() in NULL_STRINGS else v) for k, v in data.items()}
    _refuse_unknown(data, path)
    try:
        config = OriginalConfig.model_validate({k: v for k, v in data.items() if k in MAPPED})
    except ValidationError as exc:
        message = validation_message(
            path, exc, OriginalConfig, docs="docs/migrating.md", required_in=" in a config of the original format"
        )
        raise ConfigError(one_line(message)) from None
    conversion = Conversion(native={})
    _name(conversion, path)
    _models(conversion, config)
    _datasets(conversion, config, path)
    _grid(conversion, config)
    _scoring(conversion, config, data)
    conversion.ignored.update({k: why for k, why in NO_EFFECT.items() if k in data})
    conversion.notes = _notes(conversion, config, data, path)
    _check_context(conversion, config, path)
    return conversion


def _refuse_unknown(data: dict, path: Path) -> None:
    unknown = [k for k in data if k not in KNOWN_KEYS]
    if not unknown:
        return
    key = unknown[0] if isinstance(unknown[0], str) else short_repr(unknown[0])
    by_case = {k.lower(): k for k in KNOWN_KEYS}
    close = by_case.get(key.lower()) or next(iter(difflib.get_close_matches(key[:60], KNOWN_KEYS, n=1)), None)
    hint = f" Did you mean `{close}`?" if close else ""
    raise ConfigError(
        one_line(
            f"Unknown key `{key[:60]}` in {path} (a config in the original study's format).{hint} Known keys: "
            f"{', '.join(KNOWN_KEYS)}. Remove it, or convert the file (`ttscale convert`) and edit the native "
            "sweep (docs/migrating.md)."
        )
    )


def _names(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def sweep_name(path: Path) -> str:
    """The native sweep name of an original config: its file name, in the characters a name may hold."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-._")
    return name or "original"


def _name(c: Conversion, path: Path) -> None:
    name = sweep_name(path)
    c.native["name"] = name
    c.native["output_dir"] = f"results/{name}"
    c.comments[("name",)] = f"from the file name ({path.name})"
    c.comments[("output_dir",)] = "from the file name; relative to the working directory"


VLLM_OPTIONS = {  # original key → vLLM engine option (engine_options of an `engine: vllm` model)
    "vllm_gpu_memory_utilization": "gpu_memory_utilization",
    "max_model_len": "max_model_len",
    "vllm_max_num_seqs": "max_num_seqs",
}


def _models(c: Conversion, config: OriginalConfig) -> None:
    engine = config.inference_engine or DEFAULT_ENGINE
    given = {key: getattr(config, key) for key in VLLM_OPTIONS if getattr(config, key) is not None}
    if engine != "vllm":
        c.ignored.update({key: "it applies to inference_engine: vllm only" for key in given})
        given = {}
    said = (
        f"inference_engine: {engine}" if config.inference_engine else f"inference_engine unset: the original's {engine}"
    )
    if engine == "hf":
        said += "; hf runs on CPUs here: add `device: gpu` for one GPU"
    models = []
    for i, name in enumerate(_names(config.model_name)):
        model: dict[str, Any] = {"name": name, "engine": engine}
        c.comments[("models", i, "name")] = f"model_name; family {infer_family(name).name}, inferred from the name"
        c.comments[("models", i, "engine")] = said
        if given:
            model["engine_options"] = {VLLM_OPTIONS[key]: value for key, value in given.items()}
            c.comments.update({("models", i, "engine_options", VLLM_OPTIONS[key]): key for key in given})
        if config.quantization is not None:
            model["quantization"] = config.quantization
            c.comments[("models", i, "quantization")] = (
                f"quantization: {config.quantization}: bitsandbytes on the fly, as the original (rows of another curve)"
            )
        if config.force_continue is not None:
            model["overrides"] = {"continuation": config.force_continue}
            c.comments[("models", i, "overrides", "continuation")] = "force_continue: injected after an early stop"
        models.append(model)
    c.native["models"] = models


def _datasets(c: Conversion, config: OriginalConfig, path: Path) -> None:
    offset, limit = _selection(config, path)
    datasets = []
    for j, name in enumerate(_names(config.dataset_name)):
        task = task_for(name)
        dataset: dict[str, Any] = {"name": task or name}
        original = next((d for d in ORIGINAL_DATASETS.values() if d.task == task), None)
        c.comments[("datasets", j, "name")] = f"dataset_name: {name}" + (" (see above)" if original else "")
        if original:
            c.remarks.append(f"dataset_name: {name} is the task {task}: {original.note}")
        if offset:
            dataset["offset"] = offset
            c.comments[("datasets", j, "offset")] = f"sample_idxs_range {list(config.sample_idxs_range)}: skip {offset}"
        if limit is not None:
            dataset["limit"] = limit
            said = [f"num_samples: the first {limit} problems"] if config.num_samples is not None else []
            if config.sample_idxs_range is not None:
                said.append(
                    f"sample_idxs_range {list(config.sample_idxs_range)}: problems {offset}..{offset + limit - 1}"
                )
            c.comments[("datasets", j, "limit")] = "; ".join(said)
        datasets.append(dataset)
    c.native["datasets"] = datasets


def _selection(config: OriginalConfig, path: Path) -> tuple[int, int | None]:
    """(offset, limit) from num_samples (the first N problems) or sample_idxs_range [start, end).

    The original refused both at once; here both are taken when they select the same problems ([0, N) and N),
    and refused in one line when they do not."""
    n, span = config.num_samples, config.sample_idxs_range
    if span is None:
        return 0, n
    start, end = span
    if n is not None and (start, end) != (0, n):
        raise ConfigError(
            f"Got num_samples: {n} and sample_idxs_range: {list(span)} for {path}: they select different problems "
            f"(the first {n}; problems {start}..{end - 1}). Keep one of them."
        )
    return start, end - start


def _grid(c: Conversion, config: OriginalConfig) -> None:
    lo, hi, n = config.start_token_budget, config.end_token_budget, config.num_completions
    c.native["budgets"] = {"log2": [lo, hi]}
    c.comments[("budgets",)] = (
        f"start_token_budget: {lo}, end_token_budget: {hi}: 2^{lo}..2^{hi} = {2**lo}..{2**hi} thinking tokens"
    )
    c.native["seeds"] = n
    c.comments[("seeds",)] = f"num_completions: {n} (seeds {'0' if n == 1 else f'0..{n - 1}'})"
    if config.final_answer_budget is not None:
        c.native["forcing"] = {"answer_max_tokens": config.final_answer_budget}
        c.comments[("forcing",)] = "final_answer_budget: answer tokens after the forced \\boxed{"
    if config.batch_size is not None:
        c.native["problems_per_unit"] = config.batch_size
        c.comments[("problems_per_unit",)] = "batch_size: problems per work unit (each runs their seeds × budgets)"


NONE_MEANS = {  # a mapped key given as None: what ttscale does instead (the native sweep's header says it)
    "num_samples": "every problem",
    "sample_idxs_range": "every problem",
    "max_model_len": "vLLM's context is sized from the largest budget",
    "vllm_gpu_memory_utilization": "vLLM's 0.9",
    "vllm_max_num_seqs": "vLLM's own",
    "batch_size": "8 problems per work unit",
    "final_answer_budget": "16 answer tokens",
    "force_continue": "the model family's continuation",
}
UNNORMALISED = (
    "ttscale's p_correct is always q(gold), normalised over the solution set; the unnormalised P(gold) is "
    "p_correct × mass_on_set"
)
OWN_WEIGHTS = (
    "ttscale measures the model's own weights, in bfloat16 on GPUs and float32 on CPUs (the original loaded "
    "unquantised weights in float16: add `dtype: float16` to the model to match)"
)


def _scoring(c: Conversion, config: OriginalConfig, data: dict) -> None:
    """The keys with no native field of their own: normalisation and quantisation (the native sweep's header)."""
    normalise = config.normalise_over_solution_set
    if normalise:
        c.remarks.append(f"normalise_over_solution_set: true: {UNNORMALISED}")
    else:
        c.remarks.append(f"normalise_over_solution_set {'false' if normalise is False else 'unset'}: {UNNORMALISED}")
    if "quantization" in data and config.quantization is None:
        c.remarks.append(f"quantization: None: {OWN_WEIGHTS}")
    elif "quantization" not in data:
        c.remarks.append(f"quantization unset (the original's code then quantised to 8 bits on GPUs): {OWN_WEIGHTS}")
    selected = config.num_samples is not None or config.sample_idxs_range is not None  # the other one chooses
    unset = [
        f"{k} ({why})"
        for k, why in NONE_MEANS.items()
        if k in data and data[k] is None and not (selected and k in ("num_samples", "sample_idxs_range"))
    ]
    if unset:
        c.remarks.append(f"None, so ttscale's default applies: {'; '.join(unset)}")


def _notes(c: Conversion, config: OriginalConfig, data: dict, path: Path) -> list[str]:
    """The warnings of a load: differences in meaning first, then ignored keys, then unset keys whose original
    default ttscale does not follow."""
    notes = [f"{path} is a config in the original study's format; what ttscale measures differently: "
             f"{'; '.join(MEANING)} (docs/migrating.md)."]  # fmt: skip
    if c.ignored:
        listed = "; ".join(f"{k} ({why})" for k, why in c.ignored.items())
        notes.append(f"{path}: no effect in ttscale, ignored: {listed}.")
    if not config.normalise_over_solution_set:
        said = "false" if config.normalise_over_solution_set is False else "unset (the original's default, false)"
        notes.append(f"{path}: normalise_over_solution_set is {said}, the unnormalised P(gold); {UNNORMALISED}.")
    if "quantization" not in data:
        notes.append(
            f"{path}: quantization is unset, which in the original's code meant 8-bit weights on GPUs; {OWN_WEIGHTS}."
        )
    return notes


def _check_context(c: Conversion, config: OriginalConfig, path: Path) -> None:
    """A max_model_len below what the largest budget needs is refused naming the original key."""
    if config.max_model_len is None or "engine_options" not in c.native["models"][0]:
        return
    try:
        needed = context_tokens(SweepSpec.model_validate(c.native))
    except ValidationError:
        return  # parse_sweep reports it
    if config.max_model_len < needed:
        raise ConfigError(
            f"Got {config.max_model_len} for {path}: `max_model_len`. The largest budget, {2**config.end_token_budget} "
            f"tokens, needs about {needed} tokens of context (prompt, thinking, injected continuations and the forced "
            "answer). Raise it, set it to None (ttscale then sizes it), or lower end_token_budget."
        )


# -- rendering -------------------------------------------------------------------------------------------------

COMMENT_WIDTH = 116  # header comment lines are wrapped at this many characters
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./@+-]*")


def _yaml(value: Any) -> str:
    """One value as YAML flow text that reads back as the same value (strings plain when that is safe)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_yaml(k)}: {_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, str):
        plain = _PLAIN.fullmatch(value) and yaml.safe_load(value) == value
        return value if plain else json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML scalar
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return repr(value)


def _line(text: str, comment: str | None) -> str:
    return f"{text}  # {one_line(comment)}" if comment else text


def _body(c: Conversion) -> list[str]:
    lines = []
    for key, value in c.native.items():
        if key not in ("models", "datasets"):
            lines.append(_line(f"{key}: {_yaml(value)}", c.comments.get((key,))))
            continue
        lines.append(f"{key}:")
        for i, item in enumerate(value):
            for n, (k, v) in enumerate(item.items()):
                lead = "  - " if n == 0 else "    "
                if isinstance(v, dict):
                    lines.append(f"{lead}{k}:")
                    lines += [
                        _line(f"      {kk}: {_yaml(vv)}", c.comments.get((key, i, k, kk))) for kk, vv in v.items()
                    ]
                else:
                    lines.append(_line(f"{lead}{k}: {_yaml(v)}", c.comments.get((key, i, k))))
    return lines


def render(c: Conversion, source: Path) -> str:
    """The native sweep file of a conversion: a header on what differs, then the sweep with a comment per key."""
    header = [
        f"# A native ttscale sweep, converted by `ttscale convert` from {source} (the original study's format).",
        "# What ttscale measures differently from the original study (docs/migrating.md):",
        *[f"#   - {line}" for line in MEANING],
    ]
    if c.ignored:
        header.append("# Keys of the original with no effect here:")
        header += [f"#   - {key}: {why}" for key, why in c.ignored.items()]
    header += [f"# {remark}" for remark in c.remarks]
    wrapped = [w for line in header for w in textwrap.wrap(one_line(line), COMMENT_WIDTH, subsequent_indent="#     ")]
    return "\n".join([*wrapped, *_body(c)]) + "\n"


def render_sweep(loaded: LoadedSweep) -> str:
    """The native sweep file of a loaded original config, checked to read back as the same sweep."""
    if loaded.original is None:
        raise ConfigError(f"{loaded.path} is already a native sweep file: it has none of the original format's keys.")
    native = render(loaded.original, loaded.path)
    if parse_sweep(native, loaded.path).spec != loaded.spec:  # comments and quoting must not change the sweep
        raise TtscaleError(f"Converting {loaded.path} gave a sweep that reads back differently; please report it.")
    return native


def convert(config: str, output: Path | None = None, *, force: bool = False) -> str:
    """What `ttscale convert` does: the native sweep of an original config file, run script, or one command line
    given in quotes (`convert_file` or `convert_commands`), written to `output` if given."""
    if not Path(config).exists() and is_command_text(config):
        return convert_commands(config, Path("command-line"), output, force=force)
    return convert_file(Path(config), output, force=force)


def convert_file(path: Path, output: Path | None = None, *, force: bool = False) -> str:
    """The native sweep file of an original config; with `output`, also written there whole (or not at all) and
    the load's notes warned (printed to a terminal, the text itself says them in its comments). A file that is
    not YAML but a run script holding `python main.py ...` commands is read by `convert_commands`."""
    path = Path(path)
    if path.is_file() and path.suffix not in (".yaml", ".yml"):
        text = _text(path)
        if is_command_text(text):
            return convert_commands(text, path, output, force=force)
    text = render_sweep(load_sweep(path, warn=output is not None))
    if output is not None:
        _write(Path(output), text, source=path, force=force)
    return text


def convert_commands(text: str, source: Path, output: Path | None = None, *, force: bool = False) -> str:
    """The native sweep of the original's command lines (a command, or a run script holding several): their flags
    are the original's keys (`command_line.read_commands`); several commands become one sweep of all their models
    and datasets, and must agree on everything else."""
    conversion = to_native(merged_commands(read_commands(text, str(source)), source), source)
    native = render(conversion, source)
    parse_sweep(native, source)  # what it wrote must load as a native sweep
    if output is not None:
        for note in conversion.notes:
            warnings.warn(note, TtscaleWarning, stacklevel=2)
        _write(Path(output), native, source=source, force=force)
    return native


def merged_commands(commands: list[Command], source: Path) -> dict[str, Any]:
    """One original config for several commands: their model and dataset names listed (each once), every other
    key the same in all of them, or a one-line ConfigError naming the first that differs."""
    merged: dict[str, Any] = {"model_name": [], "dataset_name": []}
    for command in commands:
        for key in ("model_name", "dataset_name"):
            names = command.config.get(key)
            for name in names if isinstance(names, list) else [names] if names is not None else []:
                if name not in merged[key]:
                    merged[key].append(name)
    first = commands[0]
    for command in commands[1:]:
        for key in sorted((set(first.config) | set(command.config)) - {"model_name", "dataset_name"}):
            if first.config.get(key) != command.config.get(key):
                raise ConfigError(
                    f"{source}: the commands at lines {first.line} and {command.line} differ in --{key} "
                    f"({short_repr(first.config.get(key))} and {short_repr(command.config.get(key))}); one sweep has "
                    "one value for it. Put them in separate scripts and convert each."
                )
    for key in ("model_name", "dataset_name"):
        if not merged[key]:
            del merged[key]
        elif len(merged[key]) == 1:
            merged[key] = merged[key][0]
    return {**{k: v for k, v in first.config.items() if k not in merged}, **merged}


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}. Give a readable text file.") from None


def _write(output: Path, text: str, *, source: Path, force: bool) -> None:
    """Write `text` to `output` atomically: a temporary file beside it, then a rename."""
    if output.exists() and output.resolve() == source.resolve():
        raise ConfigError(f"Got {output} for --output: it is the config being converted. Give another path.")
    if output.is_dir():
        raise ConfigError(f"Got {output} for --output: it is a directory. Give a file path such as sweeps/mine.yaml.")
    if output.exists() and not force:
        raise ConfigError(f"Got {output} for --output: it exists. Give another path, or --force to replace it.")
    tmp = None
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, output)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise ConfigError(f"Cannot write {output}: {exc.strerror}. Fix the permissions or give another path.") from None
