"""The results directory's run lock: one `ttscale sweep` writes a results directory at a time.

A second driver on the same directory (two SLURM jobs of one sweep, say) is refused in one line that names
the running one. The lock is a small JSON file (`run.lock`: host, pid, start, heartbeat) created with O_EXCL,
which works on NFS without a lock daemon; the holder refreshes its heartbeat every HEARTBEAT_S. A lock whose
holder is gone (same host and its pid is dead, or a heartbeat older than STALE_S from another host) is taken
over, so a killed driver never blocks the rerun.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ttscale.errors import TtscaleError

HEARTBEAT_S = 15.0  # how often the holder refreshes the lock
STALE_S = 120.0  # a lock from another host not refreshed for this long is abandoned


class ResultsDirInUse(TtscaleError):
    """Another driver holds the results directory."""


class RunLock:
    """Hold `<root>/run.lock` while a sweep writes `root`; a context manager."""

    def __init__(self, root: str | Path, *, sweep: str = "") -> None:
        self.path = Path(root) / "run.lock"
        self.owner = {
            "host": socket.gethostname(), "pid": os.getpid(), "sweep": sweep, "run": uuid.uuid4().hex[:12],
            "started": time.time(),
        }  # fmt: skip
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nested = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Create the lock, or take over an abandoned one; ResultsDirInUse (one line) if it is held."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and _this_process(holder):
                    self._nested = True  # this process holds it already (the CLI claims first): nothing to do
                    return
                if holder is not None and not _abandoned(holder):
                    raise ResultsDirInUse(_in_use(self.path.parent, holder)) from None
                self.path.unlink(missing_ok=True)  # abandoned (or unreadable): take it over
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump({**self.owner, "heartbeat": time.time()}, fh)
            self._thread = threading.Thread(target=self._beat, name="ttscale-run-lock", daemon=True)
            self._thread.start()
            return
        raise ResultsDirInUse(f"{self.path.parent} is being claimed by another ttscale sweep right now; try again.")

    def release(self) -> None:
        if self._nested:
            return
        self._stop.set()
        holder = self._holder()
        if holder is not None and holder.get("run") == self.owner["run"]:
            self.path.unlink(missing_ok=True)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            holder = self._holder()
            if holder is None or holder.get("run") != self.owner["run"]:
                return  # taken over (we were presumed dead): never fight for it
            tmp = self.path.with_name(f".run.lock.{self.owner['run']}")
            tmp.write_text(json.dumps({**self.owner, "heartbeat": time.time()}))
            os.replace(tmp, self.path)

    def _holder(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None


def _this_process(holder: dict[str, Any]) -> bool:
    return holder.get("host") == socket.gethostname() and holder.get("pid") == os.getpid()


def _abandoned(holder: dict[str, Any]) -> bool:
    """The holder is gone: its pid is dead on this host, or (another host) its heartbeat is older than STALE_S."""
    if holder.get("host") == socket.gethostname():
        try:
            os.kill(int(holder.get("pid", -1)), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError, OverflowError):
            return False
        return False
    return time.time() - float(holder.get("heartbeat", 0)) > STALE_S


def _in_use(root: Path, holder: dict[str, Any]) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder.get("started", 0))))
    age = time.time() - float(holder.get("heartbeat", 0))
    return (
        f"{root} is being written by another ttscale sweep ({holder.get('sweep') or 'a sweep'}: host "
        f"{holder.get('host')}, pid {holder.get('pid')}, started {started}, alive {age:.0f} s ago). Wait for it to "
        f"finish, or stop it; a lock not refreshed for {STALE_S:.0f} s is taken over."
    )
