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
