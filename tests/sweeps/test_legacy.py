"""Configs in the original study's flat format: recognised, mapped key by key onto a sweep, planned into the same
cells as the native sweep `ttscale convert` writes for them, and refused in one line when they cannot be."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ttscale.errors import ConfigError, TtscaleWarning
from ttscale.sweeps.original import KNOWN_KEYS, MAPPED, NO_EFFECT, convert_file, load_sweep, parse_sweep, render_sweep
from ttscale.sweeps.plan import build_plan, run_settings
from ttscale.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "sweeps" / "legacy" / "original_gpqa.yaml"
# The keys issue 15 lists: mapped, then those with no effect (warned about).
ISSUE_KEYS = [
    "model_name",
    "dataset_name",
    "start_token_budget",
    "end_token_budget",
    "num_completions",
    "num_samples",
    "sample_idxs_range",
    "normalise_over_solution_set",
    "inference_engine",
    "vllm_gpu_memory_utilization",
    "quantization",
    "max_model_len",
    "batch_size",
    "SAVE_BOOL",
    "TIME_BASED_SAVING",
    "save_every_n_mins",
    "DEBUG_MODE",
    "ATTENTION_TYPE",
    "force_end_batch_size",
    "solution_set_batch_size",
    "max_new_tokens_frac",
]
# What EXAMPLE means, written by hand in the native format.
EXPECTED = """
name: original_gpqa
output_dir: results/original_gpqa
models:
  - name: deepseek-ai/DeepSeek-R1-Distill-Qwen-7B
    engine: vllm
    engine_options: {gpu_memory_utilization: 0.9}
datasets:
  - name: gpqa-diamond
    limit: 8
budgets: [128, 256, 512, 1024, 2048]
seeds: [0, 1, 2]
problems_per_unit: 4
"""


def ttscale(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ttscale.cli", *args], capture_output=True, text=True, cwd=cwd)


def old_config(tmp_path: Path, text: str = "", name: str = "old.yaml", **keys) -> Path:
    """An original-format config: a small valid one on the bundled demo-mc set, with `keys` changed (None drops)."""
    base = {
        "model_name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "dataset_name": "demo-mc",
        "start_token_budget": 4,
        "end_token_budget": 7,
        "num_completions": 2,
    }
    base.update(keys)
    path = tmp_path / name
    path.write_text(text or yaml.safe_dump({k: v for k, v in base.items() if v is not None}, sort_keys=False))
    return path


def plan_of(spec, problems: int = 10):
    """The plan of a spec over made-up problem ids (the real datasets live on the hub): its cells and units."""
    identities = [get_task(d.name).identity() for d in spec.datasets]
    ids = [[f"p{i}" for i in range(d.offset, d.offset + (d.limit or problems))] for d in spec.datasets]
    return build_plan(spec, identities, ids)


def test_the_example_has_every_key_the_issue_lists_and_nothing_unknown():
    keys = list(yaml.safe_load(EXAMPLE.read_text()))
    assert set(ISSUE_KEYS) <= set(keys) and set(keys) <= set(KNOWN_KEYS)
    assert set(MAPPED) | set(NO_EFFECT) == set(KNOWN_KEYS)


def test_the_original_example_plans_into_the_cells_of_its_native_equivalent():
    with pytest.warns(TtscaleWarning) as caught:
        loaded = load_sweep(EXAMPLE)
    expected = parse_sweep(textwrap.dedent(EXPECTED), Path("expected.yaml")).spec
    assert loaded.spec == expected
    plan, native = plan_of(loaded.spec), plan_of(expected)
    assert plan.cell_ids == native.cell_ids
    assert sorted(plan.cell_ids) == [(0, 0, b, s) for b in (128, 256, 512, 1024, 2048) for s in (0, 1, 2)]
    assert plan.rows_total == 5 * 3 * 8 and len(plan.units) == 2  # 8 problems, batch_size 4
    assert [u.problem_ids for u in plan.units] == [("p0", "p1", "p2", "p3"), ("p4", "p5", "p6", "p7")]
    notes = [str(w.message) for w in caught]
    assert len(notes) == 2  # the differences in meaning once, the keys with no effect once
    assert all(words in notes[0] for words in ("exactly B model tokens", "raw logits", "nested", "independent"))
    assert all(key in notes[1] for key in NO_EFFECT)


def test_each_key_maps_onto_its_native_field(tmp_path):
    spec = load_sweep(
        old_config(
            tmp_path,
            model_name=["deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "Qwen/QwQ-32B"],
            dataset_name=["Maxwell-Jia/AIME_2024", "math-ai/aime25", "Idavidrein/gpqa", "demo-mc"],
            sample_idxs_range=[10, 15],
            inference_engine="vllm",
            vllm_gpu_memory_utilization=0.5,
            max_model_len=8192,
            vllm_max_num_seqs=32,
            batch_size=5,
            final_answer_budget=10,
            force_continue=" Hmm, but let me keep thinking...",
        ),
        warn=False,
    ).spec
    assert [m.name for m in spec.models] == ["deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "Qwen/QwQ-32B"]
    model = spec.models[0]
    assert model.engine == "vllm" and model.overrides == {"continuation": " Hmm, but let me keep thinking..."}
    assert model.engine_options == {"gpu_memory_utilization": 0.5, "max_model_len": 8192, "max_num_seqs": 32}
    assert [d.name for d in spec.datasets] == ["aime24", "aime25", "gpqa-diamond", "demo-mc"]
    assert all((d.offset, d.limit) == (10, 5) for d in spec.datasets)  # problems 10..14
    assert spec.budgets == [16, 32, 64, 128] and spec.seeds == [0, 1]
    assert spec.problems_per_unit == 5 and spec.forcing.answer_max_tokens == 10
    assert spec.forcing.trajectory == "nested"  # the documented difference: independent is one line away


def test_the_original_defaults_and_null_strings(tmp_path):
    path = old_config(tmp_path, num_completions=None, num_samples="None", batch_size="None", inference_engine="None")
    with pytest.warns(TtscaleWarning) as caught:
        spec = load_sweep(path).spec
    assert spec.seeds == [0] and spec.datasets[0].limit is None and spec.problems_per_unit == 8
    assert spec.models[0].engine == "hf"  # the original's conf.py default
    notes = " ".join(str(w.message) for w in caught)
    assert "normalise_over_solution_set is unset" in notes and "quantization is unset" in notes


def test_vllm_settings_under_the_hf_engine_have_no_effect_and_say_so(tmp_path):
    path = old_config(tmp_path, inference_engine="hf", vllm_gpu_memory_utilization=0.9, max_model_len=4096)
    with pytest.warns(TtscaleWarning) as caught:
        spec = load_sweep(path).spec
    assert spec.models[0].engine == "hf" and spec.models[0].engine_options == {}
    ignored = [str(w.message) for w in caught if "ignored" in str(w.message)]
    assert len(ignored) == 1 and "vllm_gpu_memory_utilization (it applies to inference_engine: vllm only)" in ignored[0]
    assert "max_model_len (it applies" in ignored[0]


@pytest.mark.parametrize(
    "keys",
    [
        {},
        {"num_samples": 3, "batch_size": 2, "inference_engine": "vllm", "max_model_len": 4096},
        {"sample_idxs_range": [2, 5], "force_continue": "\nWait, let me check: #1 'quoted' \"twice\"\n"},
        {
            "sample_idxs_range": [0, 3],
            "num_samples": 3,
            "final_answer_budget": 12,
            "normalise_over_solution_set": False,
        },
        {"model_name": ["org/a-1.5B", "org/b: 7B"], "dataset_name": ["demo-mc", "demo-arith"], "SAVE_BOOL": True},
        {"model_name": "smollm2-135m", "inference_engine": "hf", "quantization": None, "vllm_max_num_seqs": 4},
    ],
)
def test_convert_round_trips_into_a_valid_sweep_with_the_same_cells(tmp_path, keys):
    old = old_config(tmp_path, **keys)
    text = convert_file(old)
    direct = load_sweep(old, warn=False)
    native = parse_sweep(text, tmp_path / "native.yaml")
    assert native.original is None  # the converted file is a native sweep
    assert native.spec == direct.spec
    assert plan_of(native.spec).cell_ids == plan_of(direct.spec).cell_ids
    for key in yaml.safe_load(old.read_text()):  # every key of the old file is named in a comment
        assert key in text
    assert render_sweep(direct) == text


def test_convert_on_the_command_line_prints_or_writes_a_sweep_that_plans_the_same(tmp_path):
    old = old_config(tmp_path, num_samples=4, batch_size=2, SAVE_BOOL=True)
    printed = ttscale("convert", str(old), cwd=tmp_path)
    assert printed.returncode == 0 and printed.stderr == "", printed.stderr  # the notes are comments in the text
    assert printed.stdout.startswith("# A native ttscale sweep") and "# num_samples: the first 4" in printed.stdout
    out = tmp_path / "native" / "old-native.yaml"
    written = ttscale("convert", str(old), "-o", str(out), cwd=tmp_path)
    assert written.returncode == 0 and out.read_text() == printed.stdout
    assert "warning:" in written.stderr and "SAVE_BOOL" in written.stderr  # not on stdout: said where it is seen
    again = ttscale("convert", str(old), "-o", str(out), cwd=tmp_path)
    assert again.returncode == 1 and "it exists" in again.stderr and out.read_text() == printed.stdout
    plans = [json.loads(ttscale("plan", str(p), "--json", cwd=tmp_path).stdout) for p in (old, out)]
    assert plans[0] == plans[1] and plans[0]["sweep"] == "old" and plans[0]["rows_total"] == 4 * 4 * 2
    native = ttscale("convert", str(out), cwd=tmp_path)
    assert native.returncode == 1 and "already a native sweep file" in native.stderr


def test_an_unknown_key_is_refused_in_one_line_listing_the_known_keys(tmp_path):
    path = old_config(tmp_path, tokenizer_name="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")
    for command in ("plan", "sweep", "convert"):
        proc = ttscale(command, str(path), cwd=tmp_path)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 1 and len(lines) == 1, proc.stderr
        assert lines[0].startswith("error: Unknown key `tokenizer_name` in") and "old.yaml" in lines[0]
        assert "Known keys: " + ", ".join(KNOWN_KEYS) in lines[0]
        assert not (tmp_path / "results").exists()
    with pytest.raises(ConfigError, match=r"Unknown key `save_bool`.* Did you mean `SAVE_BOOL`"):
        load_sweep(old_config(tmp_path, save_bool=True))


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"quantization": 8, "inference_engine": "vllm"}, "quantization: 8 with engine vllm .* no bitsandbytes"),
        ({"quantization": 3}, "`quantization`. The original took 8 or 4"),
        ({"start_token_budget": 9}, "Got 7 for .*: `end_token_budget`. It is below start_token_budget \\(9\\)"),
        ({"end_token_budget": 31}, "Got 31 for .*: `end_token_budget`. Input should be less than or equal to 30"),
        ({"num_samples": 5, "sample_idxs_range": [0, 4]}, "they select different problems"),
        ({"sample_idxs_range": [5, 2]}, "`sample_idxs_range`. It selects problems start..end-1"),
        ({"model_name": None}, "`model_name` is required in a config of the original format"),
        ({"inference_engine": "tgi"}, "Got 'tgi' for .*: `inference_engine`"),
        ({"num_completions": 0}, "Got 0 for .*: `num_completions`"),
        ({"normalise_over_solution_set": "yes"}, "`normalise_over_solution_set`. Input should be a valid boolean"),
        ({"inference_engine": "vllm", "max_model_len": 512}, "Got 512 for .*: `max_model_len`. The largest budget"),
        ({"seeds": 3}, "mixes keys of the original study's format .* with native sweep keys \\(seeds\\)"),
    ],
)
def test_bad_original_configs_fail_in_one_line_naming_file_and_key(tmp_path, keys, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_sweep(old_config(tmp_path, **keys))
    assert "\n" not in str(info.value) and "old.yaml" in str(info.value)


def test_dataset_and_model_ids_of_the_original_map_onto_tasks_and_families(tmp_path):
    text = convert_file(old_config(tmp_path, model_name="deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
                                   dataset_name="Maxwell-Jia/AIME_2024"))  # fmt: skip
    assert "- name: aime24  # dataset_name: Maxwell-Jia/AIME_2024 (see above)" in text
    assert "HuggingFaceH4/aime_2024" in text  # the header says where the same 30 problems are read from
    assert "family deepseek-r1-distill, inferred from the name" in text


def test_a_results_dir_made_from_an_original_config_reads_back_without_warnings(tmp_path):
    """Status and the explorer re-read the sweep text the manifest keeps: it is parsed again, silently."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = parse_sweep(EXAMPLE.read_text(), Path("/elsewhere/original_gpqa.yaml"))
    assert loaded.spec.name == "original_gpqa" and loaded.original is not None


def test_docs_migrating_shows_what_convert_writes_for_the_example():
    text = convert_file(EXAMPLE)  # the body names the file by its name only, wherever it is run from
    body = text[text.index("name: original_gpqa") :]
    assert body.strip() in (ROOT / "docs" / "migrating.md").read_text()


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=30),
    st.sampled_from(["None", "none", "vllm", "hf", "Idavidrein/gpqa", "demo-mc", "org/model"]),
    st.lists(st.one_of(st.integers(-5, 50), st.text(max_size=5)), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)  # fmt: skip


@settings(max_examples=300, deadline=2000, derandomize=True, database=None)
@given(
    changes=st.dictionaries(st.sampled_from([*KNOWN_KEYS, "seeds", "tokenizer_name", "Model_Name", 7]), VALUES),
    dropped=st.sets(st.sampled_from(["model_name", "dataset_name", "start_token_budget", "end_token_budget"])),
)
def test_mutated_original_configs_give_a_sweep_or_one_line_naming_the_file(tmp_path_factory, changes, dropped):
    base = yaml.safe_load(EXAMPLE.read_text())
    data = {k: v for k, v in {**base, **changes}.items() if k not in dropped}
    path = tmp_path_factory.mktemp("fuzz") / "mutated.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        loaded = load_sweep(path, warn=False)
    except ConfigError as exc:
        assert "\n" not in str(exc) and "mutated.yaml" in str(exc)
        return
    assert parse_sweep(render_sweep(loaded), path).spec == loaded.spec  # and it converts, exactly


def test_quantization_maps_onto_the_model_and_its_identity(tmp_path):
    """The original's example config sets quantization: 8: it becomes the model's own setting, in its cell ids."""
    quantised = load_sweep(old_config(tmp_path, name="q8.yaml", quantization=8))
    plain = load_sweep(old_config(tmp_path, name="plain.yaml", quantization=None))
    assert quantised.spec.models[0].quantization == 8 and plain.spec.models[0].quantization is None
    assert "quantization: 8" in convert_file(tmp_path / "q8.yaml")
    q_settings, p_settings = (run_settings(s.spec, s.spec.models[0]) for s in (quantised, plain))
    assert q_settings.config_id != p_settings.config_id  # quantised rows are another curve
    assert "quantization" not in p_settings.model_identity()  # unquantised cell ids are what they were
