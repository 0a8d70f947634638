"""Import walls: pure modules load without torch, vLLM or Ray (checked in a fresh interpreter)."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "vllm", "ray", "transformers")


@pytest.mark.parametrize(
    "module",
    [
        "ttscale",
        "ttscale.forcing",
        "ttscale.scoring",
        "ttscale.families",
        "ttscale.store",
        "ttscale.measure",
        "ttscale.sweeps.plan",
        "ttscale.grid",
        "ttscale.sweeps.spec",
        "ttscale.sweeps.loading",
        "ttscale.sweeps.original",
        "ttscale.sweeps.resolve",
        "ttscale.analysis",
        "ttscale.analysis.emergence",
        "ttscale.analysis.report",
        "ttscale.analysis.workflow",
        "ttscale.serve.index",
        "ttscale.serve.queries",
        "ttscale.serve.progress",
        "ttscale.serve.api",
    ],
)
def test_pure_modules_do_not_import_heavy_frameworks(module):
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"{module} imported {loaded}"


def test_public_names_resolve():
    import ttscale

    for name in ttscale.__all__:
        assert getattr(ttscale, name) is not None
