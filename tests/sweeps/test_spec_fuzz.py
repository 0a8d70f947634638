"""Fuzzed sweep files: every file gives a valid spec or one line naming the file (and field), never a traceback.

Cases are raw text (random YAML-ish characters, unicode, invalid UTF-8) and mutations of a valid sweep (wrong
types, huge numbers, NaN, unicode, deep nesting, misspelt keys). Each is loaded with `load_sweep`, what the
CLI calls, and a valid spec is also resolved (datasets loaded, models checked, planned), as `ttscale plan` does.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from fuzz_figures import record
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ttscale.errors import TtscaleError
from ttscale.sweeps.loading import MAX_YAML_NODES
from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.resolve import resolve
from ttscale.sweeps.spec import DatasetSpec, ForcingSpec, ModelSpec, SweepSpec

CASES: Counter[str] = Counter()
FUZZ = settings(
    max_examples=int(os.environ.get("TTSCALE_FUZZ_EXAMPLES", "1000")),  # make soak raises it
    deadline=2000,  # ms per case: a case that hangs (an alias bomb, a huge range) fails here
    derandomize=True,  # the same cases on every run, so CI is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
WORKDIR = Path(tempfile.mkdtemp(prefix="ttscale-spec-fuzz-"))
VALID: dict[str, Any] = {
    "name": "fuzz",
    "output_dir": str(WORKDIR / "results"),
    "models": [{"name": "smollm2-135m", "engine": "hf", "threads": 1, "replicas": 1}],
    "datasets": [{"name": "demo-arith", "limit": 2}],
    "budgets": {"log2": [4, 5]},
    "seeds": 2,
    "forcing": {"trajectory": "nested", "on_early_stop": "continue"},
    "sampling": {"temperature": 0.6, "top_p": 0.95},
    "problems_per_unit": 4,
}


@pytest.fixture(scope="module", autouse=True)
def _figures():
    yield
    record("sweep_files", sum(CASES.values()))
    shutil.rmtree(WORKDIR, ignore_errors=True)


def check(data: bytes, kind: str) -> str:
    """Load `data` as a sweep file the way the CLI does; return "valid" or the one-line error."""
    CASES[kind] += 1
    path = WORKDIR / f"{kind}.yaml"
    path.write_bytes(data)
    try:
        resolve(load_sweep(path))
    except TtscaleError as exc:
        return one_line_naming_the_file(str(exc), path)
    return "valid"


def one_line_naming_the_file(message: str, path: Path) -> str:
    assert "\n" not in message and "\r" not in message, message
    assert str(path) in message, message
    assert len(message) < 1000, message
    message.encode("utf-8")  # printable: no lone surrogates
    return message


# Raw text: YAML punctuation, sweep words, numbers and odd characters, glued at random.
FRAGMENTS = st.sampled_from(
    [":", ": ", "- ", "[", "]", "{", "}", ",", "\n", "\n  ", "\t", "&a ", "*a", "<<: *a", "!!python/object ", "!!int ",
     "'", '"', "#", "---\n", "...", "name", "seeds", "budgets", "models", "datasets", "output_dir", "log2", "limit",
     "1", "-1", "0x1F", "1e400", "1.0e+400", ".nan", ".inf", "99999999999999999999999", "null", "~", "yes", "é",
     "\u202e", "\x00", "\ufeff", "\\ud800", "\U0001f600", "smollm2-135m", "demo-arith"]
)  # fmt: skip
RAW_TEXT = st.one_of(
    st.lists(FRAGMENTS, max_size=40).map("".join),
    st.text(max_size=200),
    st.lists(st.one_of(FRAGMENTS, st.text(max_size=5)), max_size=30).map("".join),
)


@FUZZ
@given(text=RAW_TEXT, encoding=st.sampled_from(["utf-8", "utf-16", "latin-1", "raw"]), junk=st.binary(max_size=8))
@example(text="a: " + "[" * 10_000 + "]" * 10_000, encoding="utf-8", junk=b"")  # PyYAML's composer recursed
@example(text="seeds: " + "9" * 5000, encoding="utf-8", junk=b"")  # int() refused > 4300 digits
@example(text="", encoding="utf-8", junk=b"\xff\xfe\x00")  # not UTF-8
@example(text="- a\n- b\n", encoding="utf-8", junk=b"")  # a list, not a mapping
def test_raw_text_gives_a_spec_or_one_line(text, encoding, junk):
    raw = encoding == "raw"  # lone surrogates written as they are: invalid UTF-8
    data = text.encode("utf-8", "surrogatepass") if raw else text.encode(encoding, "replace")
    check(data + junk if junk else data, "raw")


# Values of any YAML type, some absurd.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([0, -1, 2**31, 2**63, 2**64 + 1, 10**100, 10**4000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        ["", " ", "~", "~nobody-here/x.jsonl", "../..", "/", "a\x00b", "x.jsonl", "\u202egnp", "int-0-1e9"]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4)
    ),
    max_leaves=12,
)


def places(data: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(container, key) for every value in the valid sweep, nested ones included."""
    out: list[tuple[Any, Any]] = []
    for key, value in data.items():
        out.append((data, key))
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                out += places(item)
    return out


@st.composite
def mutated_sweeps(draw) -> dict[str, Any]:
    """The valid sweep with 1-3 edits: a value replaced, a key dropped, renamed, added, or nested deep."""
    data = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        container, key = draw(st.sampled_from(places(data)))
        if key not in container:
            continue
        edit = draw(st.sampled_from(["replace", "replace", "drop", "rename", "add", "nest"]))
        if edit == "replace":
            container[key] = draw(VALUES)
        elif edit == "drop":
            del container[key]
        elif edit == "rename":
            container[draw(st.one_of(st.text(min_size=1, max_size=12), st.integers()))] = container.pop(key)
        elif edit == "add":
            container[draw(st.text(max_size=12))] = draw(VALUES)
        else:
            depth = draw(st.integers(1, 200))
            value = container[key]
            for _ in range(depth):
                value = [value]
            container[key] = value
    return data


@FUZZ
@given(data=mutated_sweeps())
def test_mutated_sweeps_give_a_spec_or_one_line(data):
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    result = check(text.encode("utf-8", "surrogatepass"), "mutated")
    top_level = ("expected a mapping", "nested more than", "values once aliases", "malformed YAML", "not UTF-8")
    if result != "valid" and not any(t in result for t in top_level):
        assert "`" in result, f"no field named: {result}"  # every schema error names its field


def typo(word: str, data: st.DataObject) -> str:
    """One edit a hand makes: a letter dropped, doubled, swapped with the next, or replaced."""
    i = data.draw(st.integers(0, len(word) - 1))
    kind = data.draw(st.sampled_from(["drop", "double", "swap", "replace"]))
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "swap" and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + data.draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz_")) + word[i + 1 :]


def holders(sweep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The mappings of a sweep whose keys can be misspelt."""
    return {"top": sweep, "model": sweep["models"][0], "dataset": sweep["datasets"][0], "forcing": sweep["forcing"]}


SCHEMAS = {"top": SweepSpec, "model": ModelSpec, "dataset": DatasetSpec, "forcing": ForcingSpec}


@FUZZ
@given(data=st.data())
@example(data=None)  # the issue's own case: `seed` for `seeds`, named before "`seeds` is required"
def test_a_misspelt_key_is_named_with_its_intent_before_any_required_message(data):
    sweep = copy.deepcopy(VALID)
    if data is None:
        where, key, wrong = "top", "seeds", "seed"
    else:
        where = data.draw(st.sampled_from(sorted(SCHEMAS)))
        key = data.draw(st.sampled_from(sorted(holders(sweep)[where])))
        wrong = typo(key, data)
    if wrong in SCHEMAS[where].model_fields or len(key) < 4:  # another key is no typo; short keys: no clear intent
        return
    holder = holders(sweep)[where]
    holder[wrong] = holder.pop(key)
    message = check(yaml.safe_dump(sweep, sort_keys=False).encode(), "typo")
    assert message.startswith("Unknown key `"), message
    assert f"{wrong}` in " in message and "is required" not in message, message
    assert f"Did you mean `{key}`?" in message, message


def test_an_alias_bomb_is_refused_at_once():
    """ "Billion laughs": nine levels of ten aliases each would be 10^9 values once expanded."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 10)}]" for k in range(1, 10)]
    start = time.perf_counter()
    message = check(("\n".join(lines) + "\nname: x\nseeds: *a9\n").encode(), "bomb")
    assert f"more than {MAX_YAML_NODES} values once aliases are expanded" in message
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("seeds: &a [*a]\n", "recursive alias"),
        ("", "the file is empty"),
        ("42\n", "expected a mapping of sweep fields at the top level, got int"),
        ("name: a\n\tseeds: 1\n", "malformed YAML at line 2"),
        ("x: !!python/object:os.system {}\n", "malformed YAML"),
        (yaml.safe_dump({**VALID, "seeds": 10**14}), "`seeds`. Give a count >= 1"),  # list(range(10**14)) ran out
        (yaml.safe_dump({**VALID, "sampling": {"temperature": float("inf")}}), "Input should be a finite number"),
    ],
)
def test_known_bad_files_give_their_line(text, expected):
    assert expected in check(text.encode(), "known")


@pytest.mark.parametrize("text", ["!!int ", "!!float ", "seeds: !!int ", "!!bool "])
def test_empty_typed_scalars_are_one_line(tmp_path, text):
    """Found at 4000 examples: PyYAML raises IndexError on an empty `!!int`."""
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    with pytest.raises(TtscaleError) as caught:
        load_sweep(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
