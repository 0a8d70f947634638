"""One driver writes a results directory at a time; a dead driver's lock never blocks the rerun."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from ttscale import run_lock
from ttscale.run_lock import ResultsDirInUse, RunLock

HOLD = "; ".join(  # another process: a driver that holds the lock
    ["import sys, time", "from ttscale.run_lock import RunLock", "RunLock(sys.argv[1], sweep='demo').acquire()",
     "print('held', flush=True)", "time.sleep(60)"]
)  # fmt: skip


def test_a_second_driver_is_refused_naming_the_first(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        expected = rf"another ttscale sweep \(demo: host {socket.gethostname()}, pid {holder.pid}, started .*\)\. Wait"
        with pytest.raises(ResultsDirInUse, match=expected):
            RunLock(tmp_path, sweep="demo").acquire()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path) as held:  # its holder is dead: taken over at once
        assert json.loads((tmp_path / "run.lock").read_text())["run"] == held.owner["run"]
    assert not (tmp_path / "run.lock").exists()  # released


def test_this_process_may_claim_twice_and_the_outer_claim_releases(tmp_path):
    outer = RunLock(tmp_path)
    outer.acquire()
    with RunLock(tmp_path):  # run_sweep inside the CLI, which claimed first
        pass
    assert (tmp_path / "run.lock").exists()
    outer.release()
    assert not (tmp_path / "run.lock").exists()


def test_the_lock_of_a_dead_driver_on_this_host_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = {"host": socket.gethostname(), "pid": dead.pid, "run": "gone", "started": 0, "heartbeat": time.time()}
    (tmp_path / "run.lock").write_text(json.dumps(lock))
    with RunLock(tmp_path) as held:
        assert json.loads((tmp_path / "run.lock").read_text())["run"] == held.owner["run"]


def test_another_hosts_lock_holds_until_its_heartbeat_is_stale(tmp_path):
    fresh = {"host": "gpu-node-7", "pid": 1, "run": "r", "started": time.time(), "heartbeat": time.time()}
    (tmp_path / "run.lock").write_text(json.dumps(fresh))
    with pytest.raises(ResultsDirInUse, match="host gpu-node-7"):
        RunLock(tmp_path).acquire()
    stale = {**fresh, "heartbeat": time.time() - run_lock.STALE_S - 1}
    (tmp_path / "run.lock").write_text(json.dumps(stale))
    with RunLock(tmp_path):
        pass


def test_the_holder_refreshes_its_heartbeat(tmp_path, monkeypatch):
    monkeypatch.setattr(run_lock, "HEARTBEAT_S", 0.05)
    with RunLock(tmp_path):
        first = json.loads((tmp_path / "run.lock").read_text())["heartbeat"]
        time.sleep(0.3)
        assert json.loads((tmp_path / "run.lock").read_text())["heartbeat"] > first
