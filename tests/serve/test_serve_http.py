"""`ttscale serve` for real: a Ray Serve app on a local Ray instance (token authentication on), bound to 127.0.0.1
only, answering the API and the page over HTTP, 404 on traversal, showing no planted secret, stopped by SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.ray


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HF_SECRET = "hf_PLANTEDsecret0123456789abcdef"
RAY_SECRET = "fedcba9876543210" * 4  # a Ray token is 64 hex characters


def start_serve(*args: str, timeout: float = 180, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Run `ttscale serve ARGS` until it prints its URL; returns the process and the URL."""
    proc = subprocess.Popen([sys.executable, "-m", "ttscale.cli", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)  # fmt: skip
    deadline, lines = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.startswith("explorer: "):
            return proc, line.split()[1]
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("ttscale serve did not start:\n" + "".join(lines)[-3000:])


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def request(port: int, path: str) -> tuple[int, bytes]:
    """GET a raw path (no client-side normalisation of `..`)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def listening_ips(port: int) -> set[str]:
    return {c.laddr.ip for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port}


def test_serve_binds_localhost_and_answers_over_http(demo_results):
    port = free_port()
    env = {**os.environ, "HF_TOKEN": HF_SECRET, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": RAY_SECRET}
    proc, url = start_serve(str(demo_results), "--port", str(port), env=env)
    try:
        assert url == f"http://127.0.0.1:{port}/"
        assert listening_ips(port) == {"127.0.0.1"}  # not 0.0.0.0: other machines cannot reach it
        status, body = request(port, "/api/options")
        assert status == 200 and json.loads(body)["models"] == ["fake-a", "fake-b"]
        status, body = request(port, "/")
        assert status == 200 and b"ttscale explorer" in body
        info = json.loads(request(port, "/api/info")[1])
        assert info["dashboard_url"].startswith("http://127.0.0.1:")
        for path in ("/api/runs/results/files/../../../../etc/passwd", "/api/runs/results/files/..%2F..%2Fetc%2Fpasswd",
                     "/static/..%2F..%2Fcli.py"):  # fmt: skip
            assert request(port, path)[0] == 404, path
        assert request(port, "/api/runs/results/files/manifest.json")[0] == 200
        shown = b"".join(request(port, path)[1] for path in (
            "/", "/static/explorer.js", "/api/info", "/api/runs", "/api/options", "/api/progress",
            "/api/emergence?metric=accuracy&limit=500", "/api/problem?model=fake-a&dataset=demo-mc&problem_id=mc-000",
            "/api/runs/results/files/manifest.json", "/api/runs/results/files/events.jsonl", "/api/nope",
        ))  # fmt: skip
        assert HF_SECRET.encode() not in shown and RAY_SECRET.encode() not in shown
    finally:
        stop(proc)
    assert proc.returncode in (0, -signal.SIGTERM)
