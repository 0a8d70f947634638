"""Placement decisions, checked without a cluster: the resources each actor asks Ray for."""

from ttscale.sweeps.placement import actor_shape, plan_replicas
from ttscale.sweeps.spec import ModelSpec


def test_hf_actors_ask_for_cpus_only():
    shape = actor_shape(ModelSpec(name="smollm2-135m"), threads=2)
    assert shape.num_cpus == 2 and shape.num_gpus == 0 and not shape.bundles


def test_vllm_on_cpu_asks_for_cpus():
    shape = actor_shape(ModelSpec(name="smollm2-135m", engine="vllm", device="cpu"), threads=2)
    assert (shape.num_cpus, shape.num_gpus, shape.gpus) == (2, 0, 0)


def test_gpu_actors_ask_for_tensor_parallel_gpus_packed_on_one_node():
    one = actor_shape(ModelSpec(name="org/m", engine="vllm"), threads=1)
    assert one.num_gpus == 1 and not one.bundles
    tp = actor_shape(ModelSpec(name="org/m", engine="vllm", tensor_parallel=2), threads=1)
    assert tp.bundles == [{"GPU": 1, "CPU": 1}, {"GPU": 1, "CPU": 1}] and tp.num_gpus == 0 and tp.gpus == 2


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
