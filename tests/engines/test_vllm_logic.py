"""The vllm engine's pure logic, checked without vLLM: trie scoring plans, output conversion, environment.

Real vLLM runs in tests/vllm_lane (the venv make vllm-env builds)."""

from __future__ import annotations

import contextlib
import os
import signal
from types import SimpleNamespace

import numpy as np
import pytest

from ttscale.engines.vllm import (
    MAX_LOGPROB_IDS,
    _generation,
    _prepare_environment,
    _score_plan,
    check_version,
    descendant_processes,
    llm_arguments,
    process_info,
    resolve_device,
    score_batches,
)
from ttscale.errors import ModelError, TtscaleWarning
from ttscale.scoring import build_trie, candidate_logprobs


def _answers(plan, logprobs_after) -> list[dict[int, float]]:
    """What vLLM would return for each ask: the log-probs of exactly the asked ids after the ask's path."""
    return [{t: float(logprobs_after(path)[t]) for t in ids} for path, ids in plan.asks]


def test_a_scoring_plan_reassembles_the_exact_candidate_log_probs():
    vocab = 300
    rng = np.random.default_rng(0)
    tables: dict[tuple[int, ...], np.ndarray] = {}

    def logprobs_after(path: tuple[int, ...]) -> np.ndarray:
        if path not in tables:
            logits = rng.normal(size=vocab) * 2
            tables[path] = logits - np.log(np.exp(logits).sum())
        return tables[path]

    candidates = [[1], [1, 2], [3, 4, 5], [3, 4, 6], *[[7, t] for t in range(10, 150)]]  # one node: 140 children
    closing = list(range(200, 260))
    trie = build_trie(candidates, closing=closing)
    plan = _score_plan(trie)
    assert all(len(ids) <= MAX_LOGPROB_IDS for _, ids in plan.asks)
    node_of_7 = int(np.flatnonzero((trie.tokens == 7) & (trie.parents == -1))[0])
    assert plan.node_of_ask.count(node_of_7) == 2  # 140 children: asked in two requests
    scores = plan.assemble(_answers(plan, logprobs_after))
    expected = []
    for cand in candidates:
        lp = sum(logprobs_after(tuple(cand[:i]))[t] for i, t in enumerate(cand))
        after = logprobs_after(tuple(cand))[closing]
        expected.append(lp + np.log(np.exp(after).sum()))
    assert np.allclose(candidate_logprobs(trie, scores), expected, atol=1e-12)


def test_vllm_output_becomes_a_generation_with_the_stop_token_reported_not_kept():
    def done(reason, stop=None):
        return SimpleNamespace(finish_reason=reason, stop_reason=stop)

    assert _generation(done("stop", 2), [5, 6, 2], frozenset({2})).token_ids == (5, 6)
    assert _generation(done("stop", 2), [5, 6, 2], frozenset({2})).stop_token_id == 2
    assert _generation(done("length"), [5, 6, 7], frozenset({2})) == _generation(done("length"), [5, 6, 7], frozenset())
    assert _generation(done("length"), [5, 6, 7], frozenset({2})).stop_token_id is None


def test_leftover_vllm_data_parallel_settings_are_cleared_and_the_start_method_is_left_to_vllm(monkeypatch):
    """vLLM's `_maybe_force_spawn` exports RAY_ADDRESS (the actor's cluster) for its spawned processes only when it
    is the one to choose spawn: a preset VLLM_WORKER_MULTIPROC_METHOD=spawn makes it return first (defect 1 of
    issue 21; the vLLM lane checks the engine core's environment in a real actor)."""
    monkeypatch.setenv("VLLM_DP_RANK", "3")
    monkeypatch.setenv("VLLM_DP_SIZE", "4")
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.delenv("VLLM_WORKER_MULTIPROC_METHOD", raising=False)
    _prepare_environment(cpu=True, kv_cache_gib=None, tensor_parallel=1, threads=None)
    assert "VLLM_DP_RANK" not in os.environ and "VLLM_DP_SIZE" not in os.environ
    assert "VLLM_WORKER_MULTIPROC_METHOD" not in os.environ
    assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "4"
    _prepare_environment(cpu=True, kv_cache_gib=2, tensor_parallel=1, threads=None)
    assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "2"


def test_cpu_tensor_parallel_on_one_numa_node_shares_the_actors_threads_unbound(monkeypatch):
    """vLLM binds each CPU worker to a NUMA node and refuses to start with more workers than nodes ("Not enough
    allowed NUMA nodes"): without binding, the actor's threads are split among its workers."""
    for key in ("VLLM_CPU_OMP_THREADS_BIND", "OMP_NUM_THREADS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr("ttscale.engines.vllm._numa_nodes", lambda: 1)
    _prepare_environment(cpu=True, kv_cache_gib=None, tensor_parallel=1, threads=2)
    assert "VLLM_CPU_OMP_THREADS_BIND" not in os.environ
    _prepare_environment(cpu=True, kv_cache_gib=None, tensor_parallel=3, threads=6)
    assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == "nobind" and os.environ["OMP_NUM_THREADS"] == "2"
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0-1|2-3")  # the user's own binding is kept
    _prepare_environment(cpu=True, kv_cache_gib=None, tensor_parallel=2, threads=4)
    assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == "0-1|2-3"


ARGS = dict(
    dtype="bfloat16", quantization=None, gpu_memory_utilization=0.9, max_model_len=4096, enable_prefix_caching=True,
    block_size=None, enforce_eager=None, max_num_seqs=None, distributed_executor_backend=None, seed=0,
)  # fmt: skip


def test_gpu_settings_follow_the_placement_not_what_torch_sees():
    """An engine placed on GPUs gets GPU settings even where this process sees no CUDA (defect 5 of issue 21: a
    TP actor under RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO=1 saw none and silently ran with CPU settings)."""
    gpu = llm_arguments("/m", device="cuda", tensor_parallel=2, **ARGS)
    assert gpu["gpu_memory_utilization"] == 0.9 and "block_size" not in gpu and gpu["enforce_eager"] is False
    assert gpu["tensor_parallel_size"] == 2 and gpu["distributed_executor_backend"] == "mp"
    cpu = llm_arguments("/m", device="cpu", tensor_parallel=3, **ARGS)
    assert "gpu_memory_utilization" not in cpu and cpu["block_size"] == 32 and cpu["enforce_eager"] is True
    assert cpu["distributed_executor_backend"] == "mp"
    assert "distributed_executor_backend" not in llm_arguments("/m", device="cuda", tensor_parallel=1, **ARGS)
    assert resolve_device("cuda") == "cuda" and resolve_device("cpu") == "cpu"


def test_the_ray_executor_and_an_unknown_device_are_refused_in_one_line():
    with pytest.raises(ModelError, match="mp executor only"):
        llm_arguments("/m", device="cuda", tensor_parallel=2, **{**ARGS, "distributed_executor_backend": "ray"})
    with pytest.raises(ModelError, match="Use cuda, cpu or auto"):
        resolve_device("gpu")


@pytest.mark.parametrize("version", ["0.19.1", "0.20.2", "0.21.0"])
def test_a_vllm_before_0_22_is_refused_naming_the_supported_versions(version):
    """logprob_token_ids is missing before 0.20, empty without `logprobs` in 0.20, taken after the sampling
    processors in 0.21: scoring would crash or be silently wrong."""
    with pytest.raises(ModelError, match=rf"vLLM {version} is too old.*pip install 'vllm>=0\.22,<0\.34'"):
        check_version(version)


def test_supported_versions_pass_and_a_newer_one_only_warns():
    for version in ("0.22.0", "0.32.0+cpu", "0.33.0"):
        check_version(version)
    with pytest.warns(TtscaleWarning, match=r"vLLM 0\.34\.0 is newer than the versions ttscale supports"):
        check_version("0.34.0")


def test_an_installed_vllm_too_old_is_refused_before_anything_starts(monkeypatch):
    import importlib.metadata

    from ttscale.engines.vllm import installed_too_old

    def version(installed):
        def lookup(distribution):
            if distribution not in installed:
                raise importlib.metadata.PackageNotFoundError(distribution)
            return installed[distribution]

        return lookup

    monkeypatch.setattr(importlib.metadata, "version", version({"vllm": "0.19.1"}))
    assert installed_too_old().startswith("vLLM 0.19.1 is too old")
    monkeypatch.setattr(importlib.metadata, "version", version({"vllm-cpu": "0.32.0"}))
    assert installed_too_old() is None
    monkeypatch.setattr(importlib.metadata, "version", version({"vllm": "0.40.0"}))  # newer: the engine warns
    assert installed_too_old() is None


def test_scoring_rows_go_to_vllm_in_batches_of_bounded_prompt_tokens():
    """Each ask repeats its row's prefix: a study-sized unit's rows at once would be billions of token ids."""
    assert score_batches([400, 400, 400, 100, 900, 2000, 50], budget=1000) == [[0, 1], [2, 3], [4], [5], [6]]
    assert score_batches([], budget=1000) == []
    rows = [1001 * 4200] * 1024  # a unit at the study's settings: 1,024 AIME rows, 1,001 asks, ~4.2k-token prefixes
    batches = score_batches(rows, budget=1 << 24)
    assert sum(map(len, batches)) == 1024 and max(sum(rows[i] for i in b) for b in batches) <= 1 << 24


def test_descendant_processes_finds_children_and_grandchildren_with_their_ray_address():
    import subprocess
    import sys
    import time

    sleep = "import time; time.sleep(30)"
    code = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {sleep!r}]); {sleep}"
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "RAY_ADDRESS": "10.0.0.1:6379"})
    try:
        for _ in range(100):
            found = descendant_processes(os.getpid())
            if any(p["parent"] == child.pid for p in found):
                break
            time.sleep(0.05)
        by_pid = {p["pid"]: p for p in found}
        assert by_pid[child.pid]["parent"] == os.getpid() and by_pid[child.pid]["ray_address"] == "10.0.0.1:6379"
        assert process_info(child.pid)["parent"] == os.getpid() and "time.sleep" in by_pid[child.pid]["command"]
        [grandchild] = [p for p in found if p["parent"] == child.pid]
        assert grandchild["ray_address"] == "10.0.0.1:6379" and grandchild["name"].startswith("python")
    finally:
        for process in descendant_processes(child.pid):  # the grandchild: never anything else of this process's
            with contextlib.suppress(ProcessLookupError):
                os.kill(process["pid"], signal.SIGKILL)
        child.kill()
        child.wait()
