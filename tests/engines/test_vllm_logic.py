"""The vllm engine's pure logic, checked without vLLM: trie scoring plans, output conversion, environment.

Real vLLM runs in tests/vllm_lane (the venv make vllm-env builds)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np

from ttscale.actors.engines.vllm import MAX_LOGPROB_IDS, _generation, _prepare_environment, _score_plan
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
    def output(tokens, reason, stop=None):
        return SimpleNamespace(outputs=[SimpleNamespace(token_ids=tokens, finish_reason=reason, stop_reason=stop)])

    assert _generation(output([5, 6, 2], "stop", 2), frozenset({2})).token_ids == (5, 6)
    assert _generation(output([5, 6, 2], "stop", 2), frozenset({2})).stop_token_id == 2
    assert _generation(output([5, 6, 7], "length"), frozenset({2})) == _generation(
        output([5, 6, 7], "length"), frozenset()
    )
    assert _generation(output([5, 6, 7], "length"), frozenset({2})).stop_token_id is None


def test_leftover_vllm_data_parallel_settings_are_cleared_and_workers_spawn(monkeypatch):
    monkeypatch.setenv("VLLM_DP_RANK", "3")
    monkeypatch.setenv("VLLM_DP_SIZE", "4")
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    _prepare_environment(cpu=True, kv_cache_gib=None)
    assert "VLLM_DP_RANK" not in os.environ and "VLLM_DP_SIZE" not in os.environ
    assert os.environ["VLLM_WORKER_MULTIPROC_METHOD"] == "spawn"
    assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "4"
    _prepare_environment(cpu=True, kv_cache_gib=2)
    assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "2"
