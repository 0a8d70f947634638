"""Faults injected for real on a two-node Ray cluster (tests/cluster/two_nodes.py), each followed by a check
that the store is exact: every expected row once, and equal to a run without faults.

The engine is the `fake` double, slowed to ~2 s a unit so that there is a mid-sweep to hit; the head node has
room for one actor, the worker node for two. How many faults each test injects is set by environment variables
so that `make soak` can run them longer (TTSCALE_SOAK_DRIVER_KILLS, TTSCALE_SOAK_ACTOR_KILLS,
TTSCALE_SOAK_NODE_LOSSES); figures go to TTSCALE_RELIABILITY_FIGURES (see tests/reliability_figures.py).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from reliability_figures import record_fault

from invariants import rows_without_timings
from ttscale.store import ResultStore

pytestmark = pytest.mark.ray
psutil = pytest.importorskip("psutil")

from two_nodes import TwoNodeCluster  # noqa: E402 (needs psutil)
from work_lost import WorkLost, read_ledger, work_lost  # noqa: E402

DRIVER_KILLS = int(os.environ.get("TTSCALE_SOAK_DRIVER_KILLS", "20"))
ACTOR_KILLS = int(os.environ.get("TTSCALE_SOAK_ACTOR_KILLS", "6"))
NODE_LOSSES = int(os.environ.get("TTSCALE_SOAK_NODE_LOSSES", "1"))
SEEDS, BUDGETS = 2, [8, 16]


@pytest.fixture(scope="module")
def cluster():
    nodes = TwoNodeCluster(head_cpus=1, worker_cpus=2)
    try:
        yield nodes.start()
    finally:
        nodes.stop()


def write_sweep(where: Path, problems: int, *, max_attempts: int = 3) -> Path:
    sweep = {
        "name": "faults", "output_dir": str(where / "results"),
        "models": [{"name": "fake", "engine": "fake", "device": "cpu", "threads": 1, "replicas": 3,
                    "engine_options": {"seconds_per_token": 0.04}}],
        "datasets": [{"name": "demo-arith", "limit": problems}], "budgets": BUDGETS, "seeds": SEEDS,
        "problems_per_unit": 1, "max_attempts": max_attempts,
    }  # fmt: skip
    where.mkdir(parents=True, exist_ok=True)
    path = where / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def start_driver(cluster: TwoNodeCluster, path: Path) -> subprocess.Popen:
    """`ttscale sweep` on the cluster, its output appended to driver.log beside the sweep file."""
    with open(path.parent / "driver.log", "a") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ttscale.cli", "sweep", str(path), "--address", cluster.address],
            env=cluster.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def finish(driver: subprocess.Popen, path: Path, timeout: float = 300) -> str:
    """Wait for the driver to end; its log."""
    try:
        driver.wait(timeout=timeout)
    finally:
        driver.kill()
    return (path.parent / "driver.log").read_text()[-3000:]


def sweep(cluster: TwoNodeCluster, path: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "ttscale.cli", "sweep", str(path), "--address", cluster.address]
    return subprocess.run(cmd, env=cluster.env, capture_output=True, text=True, timeout=timeout)


def rows(results: Path):
    """Every stored row in key order, without its timings; asserts each shard reads and no row is twice."""
    table = rows_without_timings(ResultStore(results))
    assert not (results / "corrupt").exists(), "a shard was unreadable"
    keys = list(zip(table.column("cell_id").to_pylist(), table.column("problem_id").to_pylist(), strict=True))
    assert len(keys) == len(set(keys)), "duplicate rows"
    return table


_references: dict[int, object] = {}


def reference(cluster: TwoNodeCluster, tmp_path_factory, problems: int):
    """The rows of the same sweep run on the cluster with no fault (the fake engine is deterministic)."""
    if problems not in _references:
        path = write_sweep(tmp_path_factory.mktemp("reference"), problems)
        done = sweep(cluster, path)
        assert done.returncode == 0, done.stderr[-3000:]
        _references[problems] = rows(path.parent / "results")
    return _references[problems]


def exact(results: Path, expected) -> tuple[int, int]:
    """(rows lost, duplicate rows) against the reference, asserting the store equals it."""
    got = rows(results)
    assert got.num_rows == expected.num_rows and got.equals(expected)
    return 0, 0


def wait_for_event(results: Path, event: str, count: int = 1, timeout: float = 120) -> list[dict]:
    end = time.time() + timeout
    while time.time() < end:
        found = [e for e in ResultStore(results).events() if e["event"] == event]
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {count} {event!r} events within {timeout} s")


def test_a_lost_worker_node_is_survived(cluster, tmp_path, tmp_path_factory):
    problems = 12
    expected = reference(cluster, tmp_path_factory, problems)
    recoveries = []
    for loss in range(NODE_LOSSES):
        where = tmp_path / f"loss-{loss}"
        path = write_sweep(where, problems)
        results = where / "results"
        driver = start_driver(cluster, path)
        try:
            wait_for_event(results, "done", 2)  # all three actors are busy, two of them on the worker node
            lost_at = cluster.lose_worker()
        finally:
            log = finish(driver, path)
        assert driver.returncode == 0, log
        events = ResultStore(results).events()
        lost = [e for e in events if e["event"] in ("failed", "requeued") and e["time"] >= lost_at]
        assert lost, "no unit was running on the lost node"
        redone = {e["unit"] for e in lost}
        finished = max(e["time"] for e in events if e["event"] == "done" and e["unit"] in redone)
        recoveries.append(finished - lost_at)
        exact(results, expected)
        cluster.join_worker()  # the node comes back for the next test
    record_fault(
        "worker node lost", injected=NODE_LOSSES, survived=NODE_LOSSES, rows_lost=0, duplicates=0,
        recover_s=[round(r, 2) for r in recoveries],
    )  # fmt: skip


def test_actors_killed_at_random_while_they_work(cluster, tmp_path, tmp_path_factory):
    problems = 12
    expected = reference(cluster, tmp_path_factory, problems)
    path = write_sweep(tmp_path, problems, max_attempts=ACTOR_KILLS + 3)  # every kill may hit one unit
    rng = random.Random(12)
    driver = start_driver(cluster, path)
    kills = 0
    try:
        wait_for_event(tmp_path / "results", "dispatch")
        while kills < ACTOR_KILLS and driver.poll() is None:
            time.sleep(rng.uniform(0.3, 2.0))
            actors = cluster.engine_actors()
            if actors:
                rng.choice(actors).send_signal(signal.SIGKILL)
                kills += 1
    finally:
        log = finish(driver, path)
    if driver.returncode != 0:  # units out of attempts: the rerun finishes them, as a user would
        assert "failed" in log, log
        again = sweep(cluster, path)
        assert again.returncode == 0, again.stderr[-3000:]
    assert kills >= min(ACTOR_KILLS, 3), f"only {kills} actors were killed before the sweep ended"
    exact(tmp_path / "results", expected)
    record_fault("actor killed", injected=kills, survived=kills, rows_lost=0, duplicates=0)


def test_the_driver_killed_at_random_moments_then_rerun(cluster, tmp_path, tmp_path_factory):
    """SIGKILL `ttscale sweep` at random moments, rerunning after each, DRIVER_KILLS times in a row; when a
    rerun finds the sweep finished, the store must be exact, and the kills go on in a fresh results dir."""
    problems = 30
    expected = reference(cluster, tmp_path_factory, problems)
    rng = random.Random(20)
    kills, sweeps, runs = 0, 0, 0
    while kills < DRIVER_KILLS:
        where = tmp_path / f"sweep-{sweeps}"
        path = write_sweep(where, problems)
        while kills < DRIVER_KILLS:
            driver = start_driver(cluster, path)
            time.sleep(rng.uniform(0.5, 8.0))
            if driver.poll() is not None:  # it finished the sweep before its kill
                break
            driver.kill()
            driver.wait(timeout=60)
            kills += 1
        final = sweep(cluster, path)
        assert final.returncode == 0, final.stderr[-3000:]
        exact(where / "results", expected)
        assert not list((where / "results" / "tmp").glob(".*"))  # half-written files of killed drivers are gone
        runs += len(ResultStore(where / "results").manifest()["runs"])
        sweeps += 1
    record_fault(
        "driver SIGKILL", injected=kills, survived=kills, rows_lost=0, duplicates=0, sweeps=sweeps, runs=runs
    )  # fmt: skip


# -- work lost per failure ---------------------------------------------------------------------------------

WORK_LOST_TRIALS = int(os.environ.get("TTSCALE_SOAK_WORK_LOST", "1"))  # failures of each kind
LONG_BUDGETS, LONG_SECONDS_PER_TOKEN, CHECKPOINT_S = [64, 1024], 0.002, 0.25  # 2 s a trajectory; 8 snapshots


def write_long_sweep(where: Path, problems: int, ledger: Path, checkpoint_s: float = CHECKPOINT_S) -> Path:
    """Trajectories eight checkpoint intervals long, so that a failure strikes inside one, and a token ledger."""
    path = write_sweep(where, problems, max_attempts=4)
    sweep = yaml.safe_load(path.read_text())
    sweep["models"][0]["engine_options"] = {"seconds_per_token": LONG_SECONDS_PER_TOKEN, "token_ledger": str(ledger)}
    sweep.update(budgets=LONG_BUDGETS, flush_every_s=checkpoint_s)
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def fail(kind: str, cluster: TwoNodeCluster, driver: subprocess.Popen, rng: random.Random) -> set[int]:
    """Inject one failure; the engine processes it ended (waited for: a dead driver's actors go soon after)."""
    actors = {p.pid: p for p in cluster.engine_actors()}
    if kind == "actor killed":
        victim = rng.choice(sorted(actors))
        actors[victim].send_signal(signal.SIGKILL)
        doomed = {victim}
    elif kind == "worker node lost":
        on_worker = {p.pid for p in cluster.engine_actors_on_worker()}
        cluster.lose_worker()
        doomed = on_worker
    else:
        driver.kill()
        driver.wait(timeout=60)
        doomed = set(actors)
    end = time.time() + 60
    while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in doomed):
        assert time.time() < end, f"engine processes {doomed} outlived the failure"
        time.sleep(0.1)
    return doomed


FAILURES = ["actor killed", "worker node lost", "driver SIGKILL"]
NO_CHECKPOINTS_S = 3600.0  # flush_every_s past the sweep's end: groups stream out, nothing growing is saved


@pytest.mark.parametrize("kind", FAILURES)
def test_work_lost_per_failure_is_at_most_a_checkpoint_interval_per_actor(cluster, tmp_path, kind):
    """A failure mid-sweep, with trajectories eight checkpoint intervals long: every row is stored once, and the
    thinking tokens generated again (counted from the engines' token ledger) are at most what the dead actors made
    in about two checkpoint intervals (the last snapshot, and the one in flight) plus the time to notice."""
    for trial in range(WORK_LOST_TRIALS):
        lost, _ = one_failure(cluster, tmp_path / f"trial-{trial}", kind, random.Random(f"{kind}-{trial}"))
        bound = lost.actors_lost * lost.actor_tokens_per_s * (2 * CHECKPOINT_S + 2.0)
        assert 0 <= lost.generated_again <= bound, (lost, bound)
        record_work_lost(f"work lost: {kind}", lost, CHECKPOINT_S)


@pytest.mark.parametrize("kind", FAILURES)
def test_without_checkpoints_a_failure_loses_the_trajectories_the_dead_actors_had_growing(cluster, tmp_path, kind):
    """The same failures with checkpoints off (`flush_every_s` past the sweep's end): streaming alone. A group that
    finished before the failure is kept (it streamed out), but every trajectory a dead actor had growing is
    generated again (`WorkLost.in_flight`, from the ledger before the failure); the loss stays within what the
    unit-level code before streaming lost (`unit_level`), plus what the dying actors made until they died. The
    measured baseline for the checkpointed figure above."""
    for trial in range(WORK_LOST_TRIALS):
        rng = random.Random(f"{kind}-{trial}")
        lost, dying_s = one_failure(cluster, tmp_path / f"trial-{trial}", kind, rng, checkpoint_s=NO_CHECKPOINTS_S)
        slack = lost.actors_lost * lost.actor_tokens_per_s * (dying_s + 1.0)
        assert lost.in_flight <= lost.generated_again <= lost.unit_level + slack, (lost, slack)
        record_work_lost(f"work lost, no checkpoints: {kind}", lost, NO_CHECKPOINTS_S)


def one_failure(
    cluster: TwoNodeCluster, where: Path, kind: str, rng: random.Random, checkpoint_s: float = CHECKPOINT_S
) -> tuple[WorkLost, float]:
    """A sweep of 12 problems (four units of ~4 s on each of the three actors: the fake engine decodes a unit's two
    trajectories one after the other, 2 s each) that suffers one failure at a random moment while trajectories
    grow, run to its end (rerun after a driver kill); every row is stored once. Returns the work lost and the
    seconds the failed processes took to die."""
    problems = 12
    ledger, results = where / "ledger.txt", where / "results"
    path = write_long_sweep(where, problems, ledger, checkpoint_s)
    driver = start_driver(cluster, path)
    try:
        wait_until_generating(ledger, actors=3)
        time.sleep(rng.uniform(0.0, 12.0))  # anywhere in the first three of each actor's four units
        failed_at = time.time()
        dead = fail(kind, cluster, driver, rng)
        dying_s = time.time() - failed_at
    finally:
        log = finish(driver, path)
    if kind == "worker node lost":
        cluster.join_worker()
    if kind == "driver SIGKILL" or driver.returncode != 0:
        again = sweep(cluster, path)
        assert again.returncode == 0, again.stderr[-3000:]
    else:
        assert driver.returncode == 0, log
    assert rows(results).num_rows == problems * SEEDS * len(LONG_BUDGETS)  # none lost, none twice
    return work_lost(ledger, ResultStore(results), failed_at, dead, max(LONG_BUDGETS)), dying_s


def wait_until_generating(ledger: Path, actors: int, timeout: float = 120) -> None:
    """Until `actors` engine processes have written thinking tokens to the ledger: trajectories are growing."""
    end = time.time() + timeout
    while len({e.pid for e in read_ledger(ledger)}) < actors:
        assert time.time() < end, f"{actors} actors did not start generating within {timeout} s"
        time.sleep(0.1)


def record_work_lost(kind: str, lost: WorkLost, checkpoint_s: float) -> None:
    record_fault(
        kind, failures=1, actors_lost=[lost.actors_lost], generated_again=[lost.generated_again], before=[lost.before],
        unit_level=[lost.unit_level], in_flight=[lost.in_flight], actor_seconds=[round(lost.actor_seconds, 3)],
        unit_level_actor_seconds=[round(lost.unit_level_actor_seconds, 3)], checkpoint_s=[checkpoint_s],
        actor_tokens_per_s=[round(lost.actor_tokens_per_s)],
    )  # fmt: skip
