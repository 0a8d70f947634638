"""Math grading off the main thread: run in a child process, killed and replaced when one answer overruns.

Both sides of the child are here, below `grading` and the child's entry point (`_grading_child`): the parent's
`IsolatedGrader`, and `serve`, the loop the child runs. Neither imports `grading`."""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

READY_TIMEOUT_S = 120.0  # starting the child (python + sympy + math-verify); not counted against an answer
CHILD_MODULE = "ttscale.tasks._grading_child"  # what the child runs: `serve` over `grading`


class Overran(Exception):
    """The child took longer than its limit on one call; it has been killed (a fresh one starts)."""


class IsolatedGrader:
    """One child process per parent process, serving `grading` calls as JSON lines; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        atexit.register(self.close)

    def close(self) -> None:
        """Stop the child (it exits when its stdin closes; killed if it does not within a second)."""
        with self._lock:
            if self._proc is None:
                return
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc.stdout.close()
            self._proc = None

    def call(self, op: str, args: list[Any], limit_s: float) -> Any:
        """`grading.<op>(*args)` run in the child; raises Overran after `limit_s`, RuntimeError if it raised."""
        with self._lock:
            proc = self._ready()
            proc.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
            proc.stdin.flush()
            line = self._read_line(proc, limit_s)
            if line is None:
                self._kill()
                raise Overran(f"no result within {limit_s:g} s")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["value"]

    def _ready(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", CHILD_MODULE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            if self._read_line(self._proc, READY_TIMEOUT_S) != "ready\n":
                self._kill()
                raise Overran("the grading process did not start")
        return self._proc

    @staticmethod
    def _read_line(proc: subprocess.Popen[str], limit_s: float) -> str | None:
        readable, _, _ = select.select([proc.stdout], [], [], limit_s)
        return proc.stdout.readline() or None if readable else None

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc.stdin.close()
            self._proc.stdout.close()
            self._proc = None


def serve(functions: Any, warm: Callable[[], Any]) -> None:
    """The child: `warm()` (imports and first-call costs, paid before "ready"), then answer one JSON request per
    line until stdin closes, calling the attribute of `functions` the request names."""
    warm()
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = {"value": getattr(functions, request["op"])(*request["args"])}
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
        print(json.dumps(reply), flush=True)
