"""The sweep commands as a user runs them: bad files fail in one line and write nothing; plan and status."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml


def ttscale(*args, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "ttscale.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


def bad_file(tmp_path, sweep_spec, kind):
    path = tmp_path / "bad.yaml"
    spec = sweep_spec()
    if kind == "malformed":
        path.write_text("name: t\nmodels: [unclosed\n")
        return path
    if kind == "unknown key":
        spec["seedz"] = 3
    elif kind == "negative budget":
        spec["budgets"] = [16, -32]
    elif kind == "unknown model":
        spec["models"] = [{"name": "smollm9-1m"}]
    elif kind == "missing dataset file":
        spec["datasets"] = [{"name": str(tmp_path / "missing.jsonl")}]
    elif kind == "zero seeds":
        spec["seeds"] = 0
    elif kind == "budget past the context":  # a local model directory whose config says 4096 tokens
        model_dir = tmp_path / "short-context-model"
        model_dir.mkdir()
        (model_dir / "config.json").write_text(json.dumps({"max_position_embeddings": 4096}))
        spec["models"] = [{"name": str(model_dir)}]
        spec["budgets"] = [1024, 4096]
    elif kind == "max_model_len below the budgets":
        spec["models"] = [{"name": "org/model", "engine": "vllm", "engine_options": {"max_model_len": 2048}}]
        spec["budgets"] = [1024, 2048]
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("malformed", "malformed YAML at line"),
        ("unknown key", "Unknown key `seedz`"),
        ("negative budget", "Got -32 for"),
        ("unknown model", "Got 'smollm9-1m' for"),
        ("missing dataset file", "`datasets.0.name`. No such file"),
        ("zero seeds", "Got 0 for"),
        ("budget past the context", "has a context of 4096 tokens, but the largest budget, 4096 tokens, needs"),
        ("max_model_len below the budgets", "`models.0.engine_options.max_model_len`. But the largest budget"),
    ],
)
@pytest.mark.parametrize("command", ["sweep", "plan"])
def test_bad_sweep_files_fail_in_one_line_and_write_nothing(tmp_path, sweep_spec, kind, message, command):
    path = bad_file(tmp_path, sweep_spec, kind)
    proc = ttscale(command, str(path), cwd=tmp_path)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], proc.stderr
    assert "bad.yaml" in lines[0]
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "engine": "vllm"}, "`models.0.engine` (vllm)"),
        ({"name": "HuggingFaceTB/SmolLM2-135M-Instructt"}, "is not in the local hub cache and the hub cannot be"),
    ],
)
def test_a_model_that_cannot_start_is_refused_before_ray_starts_or_anything_is_written(
    tmp_path, sweep_spec, model, message, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # CI has no hub either: keep the answer fast and the same
    spec = sweep_spec()
    spec["models"] = [model]
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert ttscale("plan", str(path), cwd=tmp_path).returncode == 0  # planning needs neither
    proc = ttscale("sweep", str(path), cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and message in lines[0] and "gpu.yaml" in lines[0], proc.stderr
    assert "Ray" not in proc.stdout + proc.stderr and not (tmp_path / "results").exists()


def test_gpu_models_need_their_gpus_on_one_node():
    from types import SimpleNamespace

    from ttscale.errors import TtscaleError, TtscaleWarning
    from ttscale.sweeps.placement import check_resources
    from ttscale.sweeps.spec import ModelSpec

    model = ModelSpec(name="Qwen/QwQ-32B", engine="vllm", tensor_parallel=2)
    loaded = SimpleNamespace(path="all.yaml", spec=SimpleNamespace(models=[model]))
    resolved = SimpleNamespace(plan=SimpleNamespace(units=[SimpleNamespace(model=0)]))
    two_single_gpu_nodes = [{"CPU": 8, "GPU": 1}] * 2  # 2 GPUs in all, but one actor holds a TP engine's GPUs
    with pytest.raises(TtscaleError, match=r"`models.0` \(Qwen/QwQ-32B\) needs 2 GPU on one node.*have: 1 GPU\)"):
        check_resources(loaded, resolved, two_single_gpu_nodes)
    with pytest.warns(TtscaleWarning, match="continuing"):  # a cluster may autoscale: warn, do not refuse
        check_resources(loaded, resolved, two_single_gpu_nodes, local=False)
    check_resources(loaded, resolved, [{"CPU": 8}, {"CPU": 8, "GPU": 2}])
    resolved.plan.units = []  # nothing left to run for it: no GPUs needed
    check_resources(loaded, resolved, [{"CPU": 8}])


def test_models_that_ask_for_a_custom_resource_need_a_node_that_offers_it():
    from types import SimpleNamespace

    from ttscale.errors import TtscaleError
    from ttscale.sweeps.placement import check_resources
    from ttscale.sweeps.spec import ModelSpec

    big = ModelSpec(name="org/32b", engine="vllm", tensor_parallel=2, resources={"gpu_80gb": 2})
    cpu = ModelSpec(name="m", engine="hf", resources={"big_memory": 1})
    nodes = [{"CPU": 48, "GPU": 4, "gpu_48gb": 4, "node:10.0.0.1": 1}, {"CPU": 192, "GPU": 8, "gpu_80gb": 8}]
    for model, fits in ((big, nodes), (cpu, [{"CPU": 4, "big_memory": 1}])):
        loaded = SimpleNamespace(path="s.yaml", spec=SimpleNamespace(models=[model]))
        resolved = SimpleNamespace(plan=SimpleNamespace(units=[SimpleNamespace(model=0)]))
        check_resources(loaded, resolved, fits)
        with pytest.raises(TtscaleError, match=r"s\.yaml: `models\.0` .* no node of the Ray cluster has that"):
            check_resources(loaded, resolved, nodes[:1])  # the L40S node: GPUs, but not the 80 GB kind


def test_plan_json_counts_cells_units_and_tokens(tmp_path, make_sweep):
    path = make_sweep(budgets=[16, 32, 64])
    proc = ttscale("plan", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["rows_total"] == 2 * 2 * 3 and plan["rows_remaining"] == plan["rows_total"] and plan["units"] == 2
    pair = plan["pairs"][0]
    assert pair["cells"] == 3 * 2 and pair["tokens_nested"] < pair["tokens_independent"]
    assert not (tmp_path / "results").exists()  # planning writes nothing
