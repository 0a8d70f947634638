"""Placement decisions, checked without a cluster: the resources each actor asks Ray for."""

from ttscale.sweeps.driver import actor_options, plan_replicas
from ttscale.sweeps.spec import ModelSpec


def test_hf_actors_ask_for_cpus_only():
    opts = actor_options(ModelSpec(name="smollm2-135m"), label="s/m#0", threads=2)
    assert opts["num_cpus"] == 2 and opts["num_gpus"] == 0 and opts["name"] == "s/m#0"


def test_gpu_actors_ask_for_tensor_parallel_gpus_packed_on_one_node():
    one = actor_options(ModelSpec(name="org/m", engine="vllm"), label="x", threads=1)
    assert one["num_gpus"] == 1 and "placement" not in one
    tp = actor_options(ModelSpec(name="org/m", engine="vllm", tensor_parallel=2), label="x", threads=1)
    assert tp["placement"] == [{"GPU": 1, "CPU": 1}, {"GPU": 1, "CPU": 1}]


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
