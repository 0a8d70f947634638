"""A tensor-parallel actor on a real two-node Ray cluster (tests/cluster/two_nodes.py, two logical GPUs a node)
whose nodes are fragmented by one-GPU actors: its group waits rather than span both nodes, and goes whole to the
node that frees two GPUs (defect 2 of issue 21: with PACK its two GPUs were placed on two nodes at once).

The actor is ttscale's own engine worker placed by `place_actor`, as the driver places it, holding the `fake`
engine double (what is checked is placement, never a model)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ray
pytest.importorskip("psutil")

from two_nodes import TwoNodeCluster  # noqa: E402 (needs psutil)

DRIVER = r"""
import json, sys, time
import ray
from ray.util.placement_group import placement_group_table
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from ttscale.actors.worker import worker_class
from ttscale.sweeps.placement import NAMESPACE, actor_shape, place_actor
from ttscale.sweeps.plan import engine_options, run_settings
from ttscale.sweeps.spec import SweepSpec

ray.init(address=sys.argv[1], namespace=NAMESPACE, log_to_driver=False)
nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])

@ray.remote(num_gpus=1, num_cpus=0)
class OneGpuEngine:  # stands for a TP=1 engine actor of another model
    def node(self):
        return ray.get_runtime_context().get_node_id()

blockers = [OneGpuEngine.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
            for n in nodes]
assert sorted(ray.get([b.node.remote() for b in blockers])) == nodes  # one free GPU left on each node

spec = SweepSpec.model_validate({"name": "tp", "output_dir": "/tmp/unused", "budgets": [8], "seeds": 1,
    "models": [{"name": "fake-tp2", "engine": "fake", "tensor_parallel": 2}], "datasets": [{"name": "demo-arith"}]})
model = spec.models[0]
placed = place_actor(worker_class("fake"), actor_shape(model, threads=1), name="tp/fake-tp2#0", model=model.name,
                     engine="fake", engine_options=engine_options(spec, model, threads=1),
                     settings=run_settings(spec, model), label="tp/fake-tp2#0")
waited = placed.group.wait(timeout_seconds=8)
table = placement_group_table(placed.group)
report = {"nodes": nodes, "ready_while_fragmented": waited, "state_while_fragmented": table["state"],
          "strategy": table["strategy"], "nodes_while_fragmented": sorted(set(table["bundles_to_node_id"].values()))}

freed = nodes[1]
ray.kill(blockers[1])  # the worker node's one-GPU actor finishes: two GPUs free there
report["ready_after_free"] = placed.group.wait(timeout_seconds=60)
table = placement_group_table(placed.group)
report["bundle_nodes"] = sorted(set(table["bundles_to_node_id"].values()))
report["bundles"] = list(table["bundles"].values())
report["freed"] = freed
report["info"] = ray.get(placed.handle.info.remote(), timeout=60)
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def fragmented():
    cluster = TwoNodeCluster(head_cpus=2, worker_cpus=2, head_gpus=2, worker_gpus=2)
    try:
        cluster.start()
        out = subprocess.run([sys.executable, "-c", DRIVER, cluster.address], env=cluster.env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
        yield json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        cluster.stop()


def test_a_tp2_group_waits_rather_than_span_two_fragmented_nodes(fragmented):
    assert not fragmented["ready_while_fragmented"], f"placed across nodes: {fragmented['nodes_while_fragmented']}"
    assert fragmented["strategy"] == "STRICT_PACK"
    assert fragmented["state_while_fragmented"] == "PENDING"


def test_it_goes_whole_to_the_node_that_frees_two_gpus_and_the_actor_holds_both(fragmented):
    assert fragmented["ready_after_free"]
    assert fragmented["bundle_nodes"] == [fragmented["freed"]]
    assert fragmented["bundles"] == [{"GPU": 2.0, "CPU": 2.0}]
    info = fragmented["info"]
    assert info["node_id"] == fragmented["freed"] and info["placement_group"]
    assert len(info["gpu_ids"]) == 2 and sorted(info["cuda_visible_devices"].split(",")) == sorted(info["gpu_ids"])
