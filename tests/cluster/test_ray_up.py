"""cluster/ray-cluster.yaml is a valid `ray up` file: checked against Ray's own cluster-config schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CONFIG = Path(__file__).resolve().parents[2] / "cluster" / "ray-cluster.yaml"


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def _schema() -> dict:
    import json

    import ray.autoscaler

    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def test_the_file_passes_rays_cluster_config_schema(config):
    jsonschema = pytest.importorskip("jsonschema")
    from ray.autoscaler._private.util import prepare_config, validate_config

    jsonschema.validate(config, _schema())  # the file as written
    validate_config(prepare_config(config))  # and merged with the provider's defaults, as `ray up` does


def test_a_misspelt_field_is_caught_by_the_same_check(config):
    jsonschema = pytest.importorskip("jsonschema")
    with pytest.raises(jsonschema.ValidationError, match="head_node_typ"):
        jsonschema.validate({**config, "head_node_typ": "head"}, _schema())


def test_gpu_nodes_install_ttscale_with_vllm_and_keep_token_auth(config):
    gpu_types = {name: t for name, t in config["available_node_types"].items() if name != config["head_node_type"]}
    assert gpu_types and all(t["max_workers"] >= 1 for t in gpu_types.values())
    assert any("ttscale[vllm]" in command for command in config["setup_commands"])
    assert "~/.ray/auth_token" in config["file_mounts"]
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token" in c for c in starts if "ray start" in c)


def test_every_node_type_boots_an_image_that_can_run_ttscale_and_vllm(config):
    """Without an ImageId Ray's AWS default (an old Deep Learning AMI, too old a Python for vLLM) boots."""
    dlami = "resolve:ssm:/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"
    for name, node_type in config["available_node_types"].items():
        assert node_type["node_config"].get("ImageId") == dlami, name  # Ubuntu 24.04: Python 3.12, NVIDIA driver
    assert any("python3 -m venv" in command for command in config["setup_commands"])  # PEP 668: no system pip


def test_each_gpu_node_type_offers_a_resource_a_sweep_can_ask_for(config):
    gpu_types = {n: t["resources"] for n, t in config["available_node_types"].items() if t["resources"].get("GPU")}
    custom = {n: set(r) - {"CPU", "GPU"} for n, r in gpu_types.items()}
    assert custom == {"gpu_l40s": {"gpu_48gb"}, "gpu_h100": {"gpu_80gb"}}
    assert all(gpu_types[n][next(iter(c))] == gpu_types[n]["GPU"] for n, c in custom.items())  # one per GPU


def _sweep(tmp_path, resources) -> Path:
    sweep = {
        "name": "route", "output_dir": str(tmp_path / "results"), "budgets": [128], "seeds": 1,
        "datasets": [{"name": "demo-arith", "limit": 2}],
        "models": [{"name": "fake-32b", "engine": "fake", "tensor_parallel": 2, "resources": resources},
                   {"name": "fake-7b", "engine": "fake"}],
    }  # fmt: skip
    path = tmp_path / "route.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def test_plan_checks_each_models_resources_against_the_node_types(tmp_path):
    import subprocess
    import sys

    def plan(resources):
        return subprocess.run(
            [sys.executable, "-m", "ttscale.cli", "plan", str(_sweep(tmp_path, resources)), "--cluster", str(CONFIG)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    fits = plan({"gpu_80gb": 2})
    assert fits.returncode == 0, fits.stderr
    refused = plan({"gpu_141gb": 2})
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "route.yaml: `models.0` (fake-32b) needs 2 GPU, 2 gpu_141gb on one node" in lines[0]
    assert "ray-cluster.yaml's node types" in lines[0] and "8 GPU, 8 gpu_80gb" in lines[0]
