"""Secrets never reach what ttscale writes: a planted HF_TOKEN and Ray token are absent from every output file
of a sweep and its analysis, and from what the commands print. The engine is the `fake` double."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

HF_SECRET = "hf_PLANTEDsecret0123456789abcdef"
RAY_SECRET = "0123456789abcdef" * 4  # a Ray token is 64 hex characters


def test_planted_tokens_appear_in_no_output(tmp_path, make_sweep):
    path = make_sweep(
        models=[{"name": "fake", "engine": "fake", "device": "cpu", "threads": 1, "replicas": 1}],
        datasets=[{"name": "demo-arith", "limit": 2}], budgets=[8, 16], seeds=1,
    )  # fmt: skip
    env = {**os.environ, "HF_TOKEN": HF_SECRET, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": RAY_SECRET}
    printed = ""
    for cmd in (["sweep", str(path)], ["analyze", str(tmp_path / "results"), "--n-boot", "20", "--n-sim", "20"],
                ["status", str(tmp_path / "results")]):  # fmt: skip
        proc = subprocess.run([sys.executable, "-m", "ttscale.cli", *cmd], capture_output=True, text=True, env=env,
                              timeout=600)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        printed += proc.stdout + proc.stderr
    outputs = [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
    assert any(p.name == "report.html" for p in outputs) and any(p.suffix == ".parquet" for p in outputs)
    for secret in (HF_SECRET, RAY_SECRET):
        assert secret not in printed
        leaked = [str(p) for p in outputs if secret.encode() in p.read_bytes()]
        assert not leaked, f"{secret[:8]}… found in {leaked}"
    assert not _lingering_lock(tmp_path / "results")


def _lingering_lock(root: Path) -> bool:
    return (root / "run.lock").exists()
