"""Placement decisions, checked without a cluster: the resources each actor asks Ray for."""

import pytest

from ttscale.errors import TtscaleError
from ttscale.sweeps.placement import actor_shape, launcher_node_types, plan_replicas
from ttscale.sweeps.spec import ModelSpec


def test_hf_actors_ask_for_cpus_only():
    shape = actor_shape(ModelSpec(name="smollm2-135m"), threads=2)
    assert shape.num_cpus == 2 and shape.num_gpus == 0 and not shape.grouped


def test_vllm_on_cpu_asks_for_cpus_and_tensor_parallel_on_cpu_is_grouped_like_on_gpus():
    shape = actor_shape(ModelSpec(name="smollm2-135m", engine="vllm", device="cpu"), threads=2)
    assert (shape.num_cpus, shape.num_gpus, shape.grouped) == (2, 0, False)
    tp3 = actor_shape(ModelSpec(name="smollm2-135m", engine="vllm", device="cpu", tensor_parallel=3), threads=2)
    assert tp3.grouped and tp3.bundle == {"CPU": 2, "GPU": 0}  # three worker processes share the actor's CPUs


def test_a_tensor_parallel_actor_holds_all_its_gpus_in_one_bundle():
    one = actor_shape(ModelSpec(name="org/m", engine="vllm"), threads=1)
    assert one.num_gpus == 1 and not one.grouped
    tp = actor_shape(ModelSpec(name="org/m", engine="vllm", tensor_parallel=2, resources={"large_gpu": 2}), threads=1)
    assert tp.grouped and (tp.num_gpus, tp.num_cpus) == (2, 2)  # one CPU per worker process
    assert tp.bundle == {"CPU": 2, "GPU": 2, "large_gpu": 2}


def test_a_ray_up_files_node_types_are_read_with_their_resources(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("available_node_types:\n  head: {resources: {}}\n  big: {resources: {GPU: 8, large_gpu: 8}}\n")
    assert launcher_node_types(path) == {"head": {}, "big": {"GPU": 8.0, "large_gpu": 8.0}}
    path.write_text("cluster_name: x\n")
    with pytest.raises(TtscaleError, match=r"c\.yaml: not a readable `ray up` cluster file"):
        launcher_node_types(path)


def test_auto_replicas_share_a_custom_resource_among_the_models_that_ask_for_it():
    big = [ModelSpec(name=f"org/b{i}", engine="vllm", tensor_parallel=2, resources={"large_gpu": 2}) for i in range(2)]
    small = ModelSpec(name="org/s", engine="vllm")
    cluster = {"GPU": 24, "CPU": 96, "large_gpu": 8}  # 8 GPUs on large nodes, 16 on small ones
    assert plan_replicas([*big, small], [10, 10, 10], cluster) == [2, 2, 8]  # 8 large GPUs / 2 models / 2 each


def test_auto_replicas_share_the_cluster_and_never_exceed_the_units():
    models = [ModelSpec(name="a", engine="vllm"), ModelSpec(name="b", engine="vllm", tensor_parallel=2)]
    assert plan_replicas(models, [10, 10], {"GPU": 8, "CPU": 64}) == [4, 2]  # 4 GPUs each
    assert plan_replicas(models, [3, 10], {"GPU": 8, "CPU": 64}) == [3, 2]
    assert plan_replicas(models, [0, 10], {"GPU": 8, "CPU": 64}) == [0, 4]  # a finished model takes nothing
    cpu = [ModelSpec(name="smollm2-135m", threads=2)]
    assert plan_replicas(cpu, [5], {"CPU": 2}) == [1]
    assert plan_replicas(cpu, [5], {"CPU": 8}) == [4]
    fixed = [ModelSpec(name="smollm2-135m", replicas=3)]
    assert plan_replicas(fixed, [2], {"CPU": 2}) == [2]
