"""`ttscale sweep` with `engine: vllm` end to end on a local Ray instance: real vLLM (CPU build) in an actor."""

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed in this venv (make vllm-env builds one)")
from lane_sweeps import run_cli

from invariants import assert_rows_are_sound
from ttscale.store import ResultStore
from ttscale.tasks import get_task

pytestmark = [pytest.mark.vllm, pytest.mark.ray]


def test_a_vllm_sweep_writes_rows_as_sound_as_hf_rows(tp1_sweep):
    path, proc = tp1_sweep
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "12 of 12 rows to run in 2 units" in proc.stdout
    store = ResultStore(path.parent / "results")
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

    again = run_cli("sweep", str(path), timeout=300)
    assert again.returncode == 0 and "nothing to do" in again.stdout  # resumes: no engine started, nothing redone
