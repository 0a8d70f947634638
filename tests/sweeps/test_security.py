"""Security on a shared cluster: the Ray instance ttscale starts keeps token authentication on and serves its
dashboard on 127.0.0.1 only; sweep YAML is loaded safely (no Python objects built from tags)."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import urlparse

import pytest

from ttscale.errors import TtscaleError
from ttscale.sweeps.original import load_sweep

LOOK = """
import json, os, sys, urllib.error, urllib.request
from pathlib import Path
from urllib.parse import urlparse
import psutil
from ttscale.sweeps.run import run_sweep
from ttscale.sweeps.original import load_sweep

def status(url, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code

seen = {}
def look(connection):
    port = urlparse(connection.dashboard_url).port
    sockets = psutil.net_connections("inet")
    listening = [c.laddr.ip for c in sockets if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
    token = os.environ.get("RAY_AUTH_TOKEN") or (Path.home() / ".ray" / "auth_token").read_text().strip()
    api = connection.dashboard_url + "/api/version"
    seen.update(url=connection.dashboard_url, listening=listening, without=status(api, None), with_=status(api, token))

rows = run_sweep(load_sweep(sys.argv[1]), address="local", on_connect=look).rows_written
print(json.dumps({**seen, "rows": rows}))
"""


@pytest.mark.ray
def test_the_local_ray_ttscale_starts_needs_the_token_and_listens_on_localhost_only(tmp_path, make_sweep):
    path = make_sweep(
        models=[{"name": "fake", "engine": "fake", "device": "cpu", "threads": 1}],
        datasets=[{"name": "demo-arith", "limit": 1}], budgets=[8], seeds=1,
    )  # fmt: skip
    run = subprocess.run([sys.executable, "-c", LOOK, str(path)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])  # Ray started as `ttscale sweep` starts it
    assert seen["rows"] == 1 and urlparse(seen["url"]).hostname == "127.0.0.1"
    assert set(seen["listening"]) == {"127.0.0.1"}  # the dashboard: nothing on 0.0.0.0 or a public address
    assert seen["without"] == 401 and seen["with_"] == 200  # token authentication is on, and ttscale has the token


@pytest.mark.parametrize(
    "payload",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    ],
)
def test_yaml_tags_never_build_python_objects(tmp_path, payload):
    marker = tmp_path / "pwned"
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: {payload.format(marker=marker)}\noutput_dir: out\nmodels: []\n")
    with pytest.raises(TtscaleError) as caught:
        load_sweep(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    assert not marker.exists()
