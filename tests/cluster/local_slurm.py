"""A real one-node SLURM cluster on this machine for the tests: munge, slurmctld and slurmd in a private dir.

Debian 12's `slurm-wlm` (22.05) and `munge`, as root: a munge key owned by the munge user, `munged` on a private
socket, a `slurm.conf` naming this host at 127.0.0.1 with its CPUs and memory, then `slurmctld` and `slurmd` on
free ports. `LocalSlurm.start()` raises `SlurmUnavailable` with the reason when this machine cannot run it (not
root, packages missing, a daemon that does not come up); the fixture turns that into a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "scontrol", "squeue", "scancel", "sinfo")
# The states of a job that has ended for good (a requeued job goes back to PENDING instead).
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL",
         "DEADLINE"}  # fmt: skip


class SlurmUnavailable(RuntimeError):
    """Why a local SLURM cluster cannot run here (one line, with the fix)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    """munged + slurmctld + slurmd under `root`; `env` is what sbatch and friends need (SLURM_CONF)."""

    def __init__(self, root: Path | None = None) -> None:
        # The munge user must reach its socket: a private dir under /tmp, searchable by all (pytest's are 0700).
        self.root = root or Path(tempfile.mkdtemp(prefix="ttscale-slurm-", dir="/tmp"))
        self.root.chmod(0o755)
        self.started = False
        self.conf = self.root / "slurm.conf"
        self.munge_dir = self.root / "munge"
        self.socket = self.munge_dir / "munge.sock"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> LocalSlurm:
        missing = [b for b in BINARIES if shutil.which(b) is None]
        if missing:
            raise SlurmUnavailable(
                f"{', '.join(missing)} not installed: apt-get install slurm-wlm munge (.ci/run does)"
            )
        if os.geteuid() != 0:
            raise SlurmUnavailable("a local SLURM cluster needs root (slurmd runs jobs as their users)")
        for d in ("state", "spool", "log"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self._start_munge()
        self._write_conf()
        for daemon in ("slurmctld", "slurmd"):
            self._run([daemon, "-f", str(self.conf)], f"{daemon} did not start")
            self.started = True
        self._wait_idle()
        return self

    def _run(self, cmd: list[str], failure: str) -> None:
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise SlurmUnavailable(f"{failure}: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")

    def _start_munge(self) -> None:
        self.munge_dir.mkdir(parents=True, exist_ok=True)
        key = self.munge_dir / "munge.key"
        self._run(["mungekey", "--create", f"--keyfile={key}"], "mungekey failed")
        shutil.chown(self.munge_dir, "munge", "munge")
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
        self.munge_dir.chmod(0o755)  # munged wants its socket's directory searchable by all
        self._run(
            ["runuser", "-u", "munge", "--", "munged", f"--key-file={key}", f"--socket={self.socket}",
             f"--pid-file={self.munge_dir / 'munged.pid'}", f"--log-file={self.munge_dir / 'munged.log'}",
             f"--seed-file={self.munge_dir / 'munged.seed'}"],
            "munged did not start",
        )  # fmt: skip

    def _write_conf(self) -> None:
        host = socket.gethostname().split(".")[0]
        memory_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 - 1024
        r = self.root
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=ttscale-test",
                    f"SlurmctldHost={host}(127.0.0.1)",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.socket}",
                    "CredType=cred/munge",
                    f"StateSaveLocation={r / 'state'}",
                    f"SlurmdSpoolDir={r / 'spool'}",
                    f"SlurmctldPidFile={r / 'slurmctld.pid'}",
                    f"SlurmdPidFile={r / 'slurmd.pid'}",
                    f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core",
                    "MpiDefault=none",
                    "SwitchType=switch/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "ReturnToService=2",
                    "KillWait=30",
                    "MinJobAge=600",
                    f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={memory_mib} State=UNKNOWN",
                    "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def _wait_idle(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True).stdout
            if out.strip() in ("idle", "mixed", "allocated"):
                return
            time.sleep(0.5)
        raise SlurmUnavailable(f"the node did not come up within {timeout:.0f} s (see {self.root / 'log'})")

    # -- using it --------------------------------------------------------------------------------------------

    def sbatch(self, *args: str, cwd: Path, env: dict[str, str] | None = None, wait: bool = False) -> str:
        """Submit a job; returns its id (with `wait`, once it has ended).

        `wait` polls the job's state rather than using `sbatch --wait`, which sleeps 2, 8, then 32 s between its
        checks: a job that ends after 11 s would be seen ended only at 42 s."""
        cmd = ["sbatch", "--parsable", *args]
        proc = subprocess.run(cmd, cwd=cwd, env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        job = proc.stdout.strip().split(";")[0]
        if not job:
            raise RuntimeError(f"sbatch failed: {proc.stderr.strip()}")
        if wait:
            self.wait_state(job, ENDED, timeout=1800)
        return job

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` as a dict (JobState, ExitCode, Restarts, ...)."""
        out = subprocess.run(["scontrol", "show", "job", job_id], env=self.env, capture_output=True, text=True).stdout
        fields = {}
        for token in out.split():
            if "=" in token:
                key, value = token.split("=", 1)
                fields.setdefault(key, value)
        return fields

    def wait_state(self, job_id: str, states: set[str], timeout: float = 600.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.job(job_id).get("JobState", "")
            if state in states:
                return state
            time.sleep(0.5)
        raise TimeoutError(f"job {job_id} did not reach {states} within {timeout:.0f} s: {self.job(job_id)}")

    def command(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)

    def stop(self) -> None:
        """Cancel every job, stop the daemons and remove the private dir."""
        if self.started:  # without slurmctld, scancel would retry for a minute
            subprocess.run(["scancel", "--full", "--user=root"], env=self.env, capture_output=True, timeout=60)
        for pid_file in (self.root / "slurmd.pid", self.root / "slurmctld.pid", self.munge_dir / "munged.pid"):
            with contextlib.suppress(OSError, ValueError):  # not started, or gone already
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        time.sleep(1)
        shutil.rmtree(self.root, ignore_errors=True)
