"""GPU placement on a local Ray instance with 4 logical GPUs, with the `fake` engine double standing in for vLLM.

A TP=2 model beside TP=1 models: each actor gets the right devices (one GPU; or, for TP=2, both GPUs of one
STRICT_PACK bundle, held by the actor whose engine workers use them), actors that run at the same time never
share a GPU, and GPUs a finished model frees go to a model still waiting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.ray

GPUS = 4


@pytest.fixture(scope="module")
def placement(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpus")
    sweep = {
        "name": "gpus",
        "output_dir": str(tmp / "results"),
        "models": [
            {
                "name": "fake-tp2",
                "engine": "fake",
                "tensor_parallel": 2,
                "engine_options": {"seconds_per_token": 0.004},
            },
            {"name": "fake-fast", "engine": "fake", "engine_options": {"seconds_per_token": 0.0005}},
            {"name": "fake-slow", "engine": "fake", "engine_options": {"seconds_per_token": 0.004}},
            {"name": "fake-late", "engine": "fake", "engine_options": {"seconds_per_token": 0.002}},
        ],
        "datasets": [{"name": "demo-arith", "limit": 6}],
        "budgets": [64],
        "seeds": 1,
        "problems_per_unit": 1,
    }
    path = tmp / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    script = Path(__file__).with_name("logical_gpus.py")
    proc = subprocess.run([sys.executable, str(script), str(path), str(GPUS)], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def actors(result) -> dict[str, dict]:
    """Per actor label: its model, GPU ids, placement group, and when it was busy (first dispatch to last done)."""
    out: dict[str, dict] = {}
    for info in result["seen"]:
        visible = info["cuda_visible_devices"]
        entry = {"model": info["model"], "gpus": set(info["gpu_ids"]), "visible": visible, "group": info["group"]}
        out.setdefault(info["label"], entry)
    for e in result["events"]:
        if e["event"] in ("dispatch", "done") and e.get("actor") in out:
            a = out[e["actor"]]
            a["start"] = min(a.get("start", e["time"]), e["time"])
            a["end"] = max(a.get("end", e["time"]), e["time"])
    return out


def overlap(a, b) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def test_every_row_is_written(placement):
    assert placement["rows"] == 4 * 6 and not placement["failed"]


def test_tp1_actors_get_one_gpu_and_tp2_actors_both_gpus_of_one_strict_bundle(placement):
    for label, a in actors(placement).items():
        if a["model"] == "fake-tp2":
            group = a["group"]
            assert group and group["strategy"] == "STRICT_PACK" and len(group["nodes"]) == 1, label
            assert group["bundles"] == [{"GPU": 2.0, "CPU": 2.0}]  # one worker process (and its CPU) per GPU
            assert len(a["gpus"]) == 2  # the actor holds both: its engine's mp workers are its processes
            assert set(a["visible"].split(",")) == a["gpus"]  # ... and see exactly those
        else:
            assert a["group"] is None and len(a["gpus"]) == 1, label
            assert a["visible"] == next(iter(a["gpus"]))


def test_actors_running_at_the_same_time_never_share_a_gpu(placement):
    busy = list(actors(placement).values())
    for i, a in enumerate(busy):
        for b in busy[i + 1 :]:
            if overlap(a, b):
                assert not a["gpus"] & b["gpus"], (a, b)


def test_a_tp2_pool_runs_beside_two_tp1_pools(placement):
    busy = actors(placement).values()
    tp2 = [a for a in busy if a["model"] == "fake-tp2"]
    tp1 = [a for a in busy if a["model"] != "fake-tp2"]
    assert any(sum(overlap(t, a) for a in tp1) >= 2 for t in tp2)
    assert set().union(*(a["gpus"] for a in busy)) <= {str(g) for g in range(GPUS)}


def test_gpus_of_a_finished_model_go_to_a_model_still_waiting(placement):
    busy = list(actors(placement).values())
    reused = [
        (a["model"], b["model"])
        for a in busy
        for b in busy
        if a["model"] != b["model"] and b["end"] <= a["start"] and a["gpus"] & b["gpus"]
    ]
    assert reused, "no actor started on GPUs another model had finished with"
