"""Reading a native sweep file: its text and YAML within bounds, its fields validated into a `LoadedSweep`, the
paths it names checked; every problem a one-line ConfigError naming file, field and fix.

`ttscale.sweeps.original` is the front-end that takes a sweep file in either format: it reads the original
study's configs and calls this module for the rest (this module never imports it)."""

from __future__ import annotations

import difflib
import functools
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ttscale.errors import ConfigError
from ttscale.messages import one_line, said_of, short_repr
from ttscale.sweeps.spec import LoadedSweep, SweepSpec
from ttscale.tasks.sources import FILE_SUFFIXES

# Bounds on what a sweep file may hold, so a hostile or broken file fails in one line instead of hanging.
MAX_SWEEP_BYTES = 1 << 20  # a real sweep file is a few kB
MAX_YAML_DEPTH = 32  # nesting of mappings and lists (a sweep needs 4)
MAX_YAML_NODES = 100_000  # values after expanding aliases: bounds "billion laughs" alias bombs


def read_sweep_text(path: Path) -> str:
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


def sweep_mapping(text: str, path: Path) -> dict:
    """The mapping of fields sweep YAML text holds (read within the bounds above); `path` is named in errors."""
    data = _yaml_data(text, path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty. Write the sweep's fields (see docs/sweeps.md).")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sweep fields at the top level, got {type(data).__name__}.")
    return data


def validated(data: dict, text: str, path: Path, original: Any = None) -> LoadedSweep:
    """A native sweep mapping validated as a `SweepSpec`, kept with its file's text (and, for a config of the
    original study's format, its conversion: `original`); a bad field is a one-line ConfigError."""
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(one_line(validation_message(path, exc))) from None
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
        elif ds.name.endswith(FILE_SUFFIXES):
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


def _likely_key(loc: tuple, model: type[BaseModel]) -> str | None:
    """The known key closest in spelling to an unknown one at `loc` in `model` (e.g. seed → seeds), if any."""
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
def _union_fields(model: type[BaseModel]) -> frozenset[str]:
    """Fields of `model` and the models it holds typed as a union of several types: pydantic adds a member tag
    (`int`, `literal['auto']`) after them."""
    return frozenset(
        name
        for held in _models_in(model)
        for name, info in held.model_fields.items()
        if typing.get_origin(info.annotation) in (typing.Union, types.UnionType)
        and len([a for a in typing.get_args(info.annotation) if a is not type(None)]) > 1
    )


def _models_in(model: type[BaseModel]) -> list[type[BaseModel]]:
    """`model` and every model its fields hold (in lists, unions, ...), each once."""
    found, todo = [], [model]
    while todo:
        held = todo.pop()
        if held not in found:
            found.append(held)
            todo += [m for info in held.model_fields.values() for m in _models_of(info.annotation)]
    return found


def _models_of(annotation: Any) -> list[type[BaseModel]]:
    if typing.get_origin(annotation) is None and isinstance(annotation, type):
        return [annotation] if issubclass(annotation, BaseModel) else []
    return [m for arg in typing.get_args(annotation) for m in _models_of(arg)]


def _field_path(loc: tuple, model: type[BaseModel]) -> str:
    """`models.0.replicas` from pydantic's loc, without union member tags; odd keys shown as their repr."""
    parts: list[str] = []
    after_union = False
    for part in loc:
        if after_union and isinstance(part, str):
            after_union = False
            continue
        after_union = isinstance(part, str) and part in _union_fields(model)
        parts.append(part[:60] if isinstance(part, str) and part.strip() else short_repr(part, 60))
    return ".".join(parts) or "(top level)"


def validation_message(
    path: Path,
    exc: ValidationError,
    model: type[BaseModel] = SweepSpec,
    *,
    docs: str = "docs/sweeps.md",
    required_in: str = "",
) -> str:
    """The first error validating `model` (a sweep, or a config of the original study's format) as:
    Got X for `file`: `field`. Rule. Fix.

    An unknown key comes first (a misspelt `seed` also makes `seeds` missing: the misspelling is the news),
    with the key it most likely meant. `docs` is where the keys are described; `required_in` says where a
    missing key is required (e.g. " in a config of the original format")."""
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    field = _field_path(err["loc"], model)
    kind, msg = err["type"], err["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        meant = _likely_key(err["loc"], model)
        hint = f" Did you mean `{meant}`?" if meant else " Remove it or fix its spelling."
        return f"Unknown key `{field}` in {path}.{hint} (See {docs} for the keys.)"
    if kind == "missing":
        return f"{path}: `{field}` is required{required_in}. Add it (see {docs})."
    if kind == "value_error" and not err["loc"]:  # a check across fields (e.g. a name listed twice)
        return f"{path}: {msg}."
    if kind == "value_error" and msg.startswith("Got "):  # the validator said what it got
        return said_of(msg, f"{path}: `{field}`")
    return f"Got {short_repr(err.get('input'))} for {path}: `{field}`. {msg}."
