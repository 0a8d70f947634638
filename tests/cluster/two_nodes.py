"""A real two-node Ray cluster on this machine: a head started with `ray start --head` and a worker node
joined with `ray start --address`, each its own raylet, with token authentication on. The worker node can be
lost (its raylet SIGKILLed) and joined again; teardown takes down every process either node started."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_port_range(seed: int, taken: list[int], size: int = 100) -> int:
    """The low end of `size` worker ports below the kernel's ephemeral range (where `free_port` picks), that
    holds none of the `taken` ports: Ray refuses to start a node whose worker ports overlap its other ports."""
    first = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    slots = (first - 20000) // size
    for i in range(slots):
        low = 20000 + ((seed + i) % slots) * size
        if not any(low <= port < low + size for port in taken):
            return low
    raise RuntimeError("no free worker port range below the ephemeral ports")


class TwoNodeCluster:
    """Head with `head_cpus` CPUs, worker with `worker_cpus`, and as many logical GPUs as asked (`*_gpus`: Ray
    counts them like real ones, for placement tests); `env` connects a driver to it (token included)."""

    def __init__(self, *, head_cpus: int = 1, worker_cpus: int = 2, head_gpus: int = 0, worker_gpus: int = 0) -> None:
        self.head_cpus, self.worker_cpus = head_cpus, worker_cpus
        self.head_gpus, self.worker_gpus = head_gpus, worker_gpus
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ttscale-2n-", dir="/tmp"))  # short: Ray's socket paths
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        token = secrets.token_hex(32)
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0"}
        self.env.pop("RAY_ADDRESS", None)
        self._roots: list[int] = []  # pids of the raylets and GCS: their process trees are the cluster
        self.worker_port: int | None = None

    def start(self) -> TwoNodeCluster:
        self._ray_start(
            "--head", f"--port={self.port}", f"--num-cpus={self.head_cpus}", f"--num-gpus={self.head_gpus}",
            f"--temp-dir={self.temp_dir}", "--include-dashboard=false",
        )  # fmt: skip
        self._roots += [p.pid for p in self._processes() if p.name() in ("gcs_server", "raylet")]
        self.join_worker()
        return self

    def join_worker(self) -> None:
        """Start the worker node (again), on fresh ports, and wait until the cluster counts it."""
        self.worker_port = free_port()
        ports = [free_port() for _ in range(6)]
        low = worker_port_range(self.worker_port, [self.worker_port, *ports])
        self._ray_start(
            f"--address={self.address}", f"--num-cpus={self.worker_cpus}", f"--num-gpus={self.worker_gpus}",
            f"--node-manager-port={self.worker_port}",
            f"--object-manager-port={ports[0]}", f"--metrics-export-port={ports[1]}",
            f"--dashboard-agent-listen-port={ports[2]}", f"--dashboard-agent-grpc-port={ports[3]}",
            f"--runtime-env-agent-port={ports[4]}", f"--min-worker-port={low}", f"--max-worker-port={low + 99}",
        )  # fmt: skip
        raylet = self.worker_raylet()
        assert raylet is not None, "the worker node's raylet did not start"
        self._roots.append(raylet.pid)
        self.wait_for_cpus(self.head_cpus + self.worker_cpus)

    def worker_raylet(self) -> psutil.Process | None:
        flag = f"--node_manager_port={self.worker_port}"
        return next((p for p in self._processes() if p.name() == "raylet" and flag in p.cmdline()), None)

    def lose_worker(self) -> float:
        """SIGKILL the worker node's raylet (its workers go with it), as when a node dies; returns the time."""
        raylet = self.worker_raylet()
        assert raylet is not None, "no worker node to lose"
        children = raylet.children(recursive=True)
        raylet.kill()
        when = time.time()
        for child in children:  # what a dead node's processes do on their own, at once rather than on a timer
            with contextlib.suppress(psutil.Error):
                child.kill()
        return when

    def engine_actors(self) -> list[psutil.Process]:
        """The live processes of ttscale's engine actors on either node."""
        return [p for p in self._tree() if _title(p).startswith("ray::EngineWorker")]

    def engine_actors_on_worker(self) -> list[psutil.Process]:
        """Those of the worker node: the ones losing it ends."""
        raylet = self.worker_raylet()
        below = {p.pid for p in raylet.children(recursive=True)} if raylet is not None else set()
        return [p for p in self.engine_actors() if p.pid in below]

    def wait_for_cpus(self, cpus: int, timeout: float = 60.0) -> None:
        script = (
            f"import ray, time; ray.init(address='{self.address}', log_to_driver=False)\n"
            f"end = time.time() + {timeout}\n"
            f"while ray.cluster_resources().get('CPU', 0) != {float(cpus)} and time.time() < end: time.sleep(0.5)\n"
            "print(ray.cluster_resources().get('CPU', 0))"
        )
        out = subprocess.run([sys.executable, "-c", script], env=self.env, capture_output=True, text=True, timeout=120)
        assert out.stdout.strip().endswith(str(float(cpus))), out.stdout + out.stderr[-2000:]

    def stop(self) -> None:
        for process in self._tree() + [p for p in self._processes() if p.pid not in self._roots]:
            with contextlib.suppress(psutil.Error):
                process.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _ray_start(self, *args: str) -> None:
        out = subprocess.run([RAY, "start", "--disable-usage-stats", *args], env=self.env, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]

    def _tree(self) -> list[psutil.Process]:
        out = []
        for pid in self._roots:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(pid)
                out += [root, *root.children(recursive=True)]
        return out

    def _processes(self) -> list[psutil.Process]:
        """Processes started for this cluster: they name its temp dir or its head's port."""
        marks = (str(self.temp_dir), f":{self.port}")
        found = []
        for p in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if any(m in arg for arg in (p.info["cmdline"] or []) for m in marks):
                    found.append(p)
        return found


def _title(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        cmdline = process.cmdline()
        return cmdline[0] if cmdline else ""
    return ""
