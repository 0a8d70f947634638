"""cluster/slurm-ray.sh under real SLURM: the demo sweep, a preempted job that resumes, two jobs on one node.

The cluster is one node (this machine) with 2 CPUs and no GPUs, so every job overrides the script's GPU and
CPU defaults on the command line, as a user would."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from local_slurm import ENDED

from ttscale.store import ResultStore

pytestmark = [pytest.mark.slurm, pytest.mark.ray]

ONE_NODE = ["--nodes=1", "--gpus-per-node=0", "--time=30"]


def log_of(tmp_path: Path, job: str) -> str:
    return (tmp_path / f"job-{job}.log").read_text()


def banner_ports(log: str) -> tuple[int, int]:
    """The port block and the dashboard's port a job printed at the top of its log."""
    block = re.search(r"ray:\s+ports (\d+)-(\d+)", log)
    tunnel = re.search(r"ssh -N -L 8265:[\d.]+:(\d+)", log)
    assert block and tunnel, log[:2000]
    return int(block.group(1)), int(tunnel.group(1))


def slow_sweep(tmp_path: Path, units: int = 4) -> Path:
    """A sweep of the `fake` engine double sleeping per token (a slow engine), 4 units of ~2 s on one actor."""
    spec = {
        "name": "slow", "output_dir": "results/slow",
        "models": [{"name": "fake-slow", "engine": "fake", "device": "cpu", "threads": 1, "replicas": 1,
                    "engine_options": {"seconds_per_token": 0.004}}],
        "datasets": [{"name": "demo-arith", "limit": 2 * units}], "budgets": [128], "seeds": 2,
        "problems_per_unit": 2,
    }  # fmt: skip
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_shellcheck_finds_no_warning(script):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck; .ci/run does)")
    proc = subprocess.run(["shellcheck", "-S", "warning", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_sbatch_runs_the_demo_sweep(slurm, tmp_path, job_env, script, demo_sweep):
    out = str(tmp_path / "job-%j.log")
    job = slurm.sbatch(*ONE_NODE, "--cpus-per-task=2", f"--output={out}", script, demo_sweep.name,
                       cwd=tmp_path, env=job_env, wait=True)  # fmt: skip
    log = log_of(tmp_path, job)
    assert slurm.job(job)["JobState"] == "COMPLETED", log[-3000:]
    spec = yaml.safe_load(demo_sweep.read_text())
    rows = spec["datasets"][0]["limit"] * spec["seeds"] * len(spec["budgets"])  # 4 problems × 2 seeds × 2 budgets
    assert f"{rows} of {rows} rows to run in 2 units" in log
    # a batch log is no terminal: a line per finished unit and status lines, which `tail -f` shows as they come
    assert len([line for line in log.splitlines() if line.startswith("unit ") and " done: " in line]) == 2
    assert f"progress: rows {rows}/{rows} (100%)" in log
    store = ResultStore(tmp_path / "results" / "demo")
    keys = store.read_pandas(["cell_id", "problem_id"])
    assert len(keys) == rows and not keys.duplicated().any()
    # the top of the log tells the user how to reach the dashboard and follow the job
    assert log.startswith(f"== ttscale on SLURM job {job}")
    assert "ssh -N -L 8265:" in log and f"squeue -j {job}" in log and "ttscale status demo.yaml" in log
    assert "all 1 node(s) joined" in log and "--address auto" not in log
    block, dashboard = banner_ports(log)
    assert f"--address {_head_ip(log)}:{block}" in log and dashboard == block + 1
    assert no_ray_left(job) and not Path(f"/tmp/ray-{job}").exists()  # Ray torn down, its temp dir removed
    assert not (Path.home() / ".ray" / f"ttscale-{job}.token").exists()


def test_a_preempted_requeued_job_resumes_with_no_row_lost_or_duplicated(slurm, tmp_path, job_env, script):
    sweep = slow_sweep(tmp_path)
    out = str(tmp_path / "job-%j.log")
    job = slurm.sbatch(*ONE_NODE, "--cpus-per-task=1", "--requeue", f"--output={out}", script, sweep.name,
                       cwd=tmp_path, env=job_env)  # fmt: skip
    store = ResultStore(tmp_path / "results" / "slow")
    deadline = time.monotonic() + 300
    while not store.row_shards():  # a unit has finished: the sweep is mid-run
        assert time.monotonic() < deadline and slurm.job(job)["JobState"] in ("PENDING", "RUNNING")
        time.sleep(0.5)
    assert slurm.command("scancel", "--signal=USR1", "--batch", job).returncode == 0  # the time-limit warning
    slurm.wait_state(job, {"PENDING"}, timeout=300)  # it stopped, kept what finished, and requeued itself
    first_run = log_of(tmp_path, job)
    assert "got SIGUSR1" in first_run and "stopped by SIGUSR1" in first_run and "requeueing job" in first_run
    kept = store.read_table(["cell_id", "problem_id"]).num_rows
    assert 0 < kept < 16
    assert slurm.command("scontrol", "update", f"JobId={job}", "StartTime=now").returncode == 0  # skip requeue delay
    assert slurm.wait_state(job, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=600) == "COMPLETED"
    assert slurm.job(job)["Restarts"] == "1" and no_ray_left(job)
    second_run = log_of(tmp_path, job)[len(first_run) :]
    assert f"{16 - kept} of 16 rows to run" in second_run  # it resumed: only what was missing
    keys = store.read_pandas(["cell_id", "problem_id"])
    assert len(keys) == 16 and not keys.duplicated().any()


def test_a_cancelled_job_keeps_finished_units_and_a_new_job_completes_the_sweep(slurm, tmp_path, job_env, script):
    sweep = slow_sweep(tmp_path)
    out = str(tmp_path / "job-%j.log")
    job = slurm.sbatch(*ONE_NODE, "--cpus-per-task=1", f"--output={out}", script, sweep.name, cwd=tmp_path,
                       env=job_env)  # fmt: skip
    store = ResultStore(tmp_path / "results" / "slow")
    deadline = time.monotonic() + 300
    while not store.row_shards():
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert slurm.command("scancel", job).returncode == 0  # SIGTERM to the whole job, as preemption sends
    slurm.wait_state(job, {"CANCELLED", "COMPLETED", "FAILED"}, timeout=300)
    assert no_ray_left(job), _processes_mentioning(f"/tmp/ray-{job}/")  # a cancelled job's Ray does not linger
    again = slurm.sbatch(*ONE_NODE, "--cpus-per-task=1", f"--output={out}", script, sweep.name, cwd=tmp_path,
                         env=job_env, wait=True)  # fmt: skip
    assert slurm.job(again)["JobState"] == "COMPLETED", log_of(tmp_path, again)[-3000:]
    keys = store.read_pandas(["cell_id", "problem_id"])
    assert len(keys) == 16 and not keys.duplicated().any()


def test_two_jobs_on_one_node_use_their_own_ports_temp_dirs_and_clusters(slurm, tmp_path, job_env, script):
    sweep = slow_sweep(tmp_path, units=2)
    out = str(tmp_path / "job-%j.log")
    common = [*ONE_NODE, "--cpus-per-task=1", f"--output={out}", script, sweep.name]
    first = slurm.sbatch(*common, cwd=tmp_path, env=job_env)
    light = "; ".join(
        [
            "import ray",
            "ray.init()",
            "print('cluster at', ray.get_runtime_context().gcs_address, 'nodes:', len(ray.nodes()))",
        ]
    )
    second = slurm.sbatch(*common, "--", "python3", "-c", light, cwd=tmp_path, env=job_env)  # its own head only
    for job in (first, second):
        assert slurm.wait_state(job, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=600) == "COMPLETED", log_of(
            tmp_path, job
        )[-3000:]
    logs = {job: log_of(tmp_path, job) for job in (first, second)}
    assert no_ray_left(first) and no_ray_left(second)
    ports = {job: banner_ports(log) for job, log in logs.items()}
    assert ports[first][0] != ports[second][0]  # separate port blocks
    assert f"temp dir /tmp/ray-{first} " in logs[first] and f"temp dir /tmp/ray-{second} " in logs[second]
    head_ip = _head_ip(logs[second])
    assert f"cluster at {head_ip}:{ports[second][0]} nodes: 1" in logs[second]  # RAY_ADDRESS and the token work
    assert ResultStore(tmp_path / "results" / "slow").read_table(["cell_id"]).num_rows == 8


def test_each_node_declares_gpu_80gb_for_its_large_gpus(slurm, tmp_path, job_env, script):
    """What large models' `resources: {gpu_80gb: N}` routes on: one per GPU of >= 80,000 MiB, as nvidia-smi reports
    it on the node (here a stand-in nvidia-smi on PATH: two 80 GB GPUs and a 40 GB one), or TTSCALE_RAY_RESOURCES."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    smi = fake_bin / "nvidia-smi"
    smi.write_text("#!/bin/sh\nprintf '81559\\n81920\\n40960\\n'\n")
    smi.chmod(0o755)
    show = "import ray; ray.init(); print('gpu_80gb =', ray.cluster_resources().get('gpu_80gb'))"
    out = str(tmp_path / "job-%j.log")
    env = {**job_env, "PATH": f"{fake_bin}:{job_env['PATH']}"}
    # the two jobs run side by side (one CPU each), each with its own Ray
    detected = slurm.sbatch(*ONE_NODE, "--cpus-per-task=1", f"--output={out}", script, "-", "--", "python3", "-c",
                            show, cwd=tmp_path, env=env)  # fmt: skip
    given = slurm.sbatch(*ONE_NODE, "--cpus-per-task=1", f"--output={out}", script, "-", "--", "python3", "-c", show,
                         cwd=tmp_path, env={**env, "TTSCALE_RAY_RESOURCES": '{"gpu_80gb": 8}'})  # fmt: skip
    for job in (detected, given):
        assert slurm.wait_state(job, ENDED) == "COMPLETED", log_of(tmp_path, job)[-3000:]
    assert "gpu_80gb = 2.0" in log_of(tmp_path, detected), log_of(tmp_path, detected)[-3000:]
    assert "(2 of them gpu_80gb)" in log_of(tmp_path, detected)
    assert "gpu_80gb = 8.0" in log_of(tmp_path, given), log_of(tmp_path, given)[-3000:]
    assert no_ray_left(detected) and no_ray_left(given)


def no_ray_left(job: str, timeout: float = 60.0) -> bool:
    """Whether every process of the job's Ray (its temp dir in their command lines) is gone, within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _processes_mentioning(f"/tmp/ray-{job}/"):
            return True
        time.sleep(0.5)
    return False


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if proc.name.isdigit() and text in cmdline:
            found.append(cmdline[:200])
    return found


def _head_ip(log: str) -> str:
    match = re.search(r"head \S+ \(([\d.]+):\d+\)", log)
    assert match, log[:500]
    return match.group(1)
