"""Import walls and hub failures, each checked in a fresh interpreter so no earlier import hides them."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from ttscale.errors import TaskError
from ttscale.tasks import get_task

HEAVY = ("datasets", "torch", "ray", "math_verify", "vllm", "transformers")


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    command = [sys.executable, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=120)


def test_importing_tasks_loads_no_heavy_library():
    code = (
        "import sys, ttscale.tasks as t\n"
        "t.get_task('aime24'); t.get_task('gpqa-diamond').identity(); t.get_task('demo-mc').load()\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_offline_hub_fails_fast_in_one_line():
    code = (
        "import time\n"
        "from ttscale.errors import TaskError\n"
        "from ttscale.tasks import get_task\n"
        "for name in ('aime24', 'nobody/no-such-dataset'):\n"
        "    start = time.time()\n"
        "    try:\n"
        "        get_task(name).load()\n"
        "    except TaskError as exc:\n"
        "        print(repr(str(exc)), round(time.time() - start, 1))\n"
    )
    result = _python(code, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, result.stdout
    for line, hub_id in zip(lines, ("HuggingFaceH4/aime_2024", "nobody/no-such-dataset"), strict=True):
        message, seconds = line.rsplit(" ", 1)
        assert f"Cannot load '{hub_id}' from the Hugging Face Hub" in message
        assert "pass a local .jsonl/.parquet path instead." in message
        assert "\\n" not in message
        assert float(seconds) < 10  # the first includes importing datasets (~2 s)


def test_unresolvable_hub_fails_without_retrying(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    start = time.time()
    expected = (
        r"^Cannot load 'openai/gsm8k' from the Hugging Face Hub \(hub\.invalid does not resolve; "
        r"set HF_HUB_OFFLINE=1 to use a cached copy\)\. Download it and pass a local"
    )
    with pytest.raises(TaskError, match=expected):
        get_task("gsm8k").load()
    assert time.time() - start < 5
