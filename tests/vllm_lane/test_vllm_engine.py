"""The vllm engine on real vLLM: the same tokens and the same trie distributions as the hf engine."""

import numpy as np
import pytest

pytest.importorskip("vllm", reason="vLLM is not installed in this venv (make vllm-env builds one)")

from ttscale.engines.base import GREEDY, GenerationRequest, Sampling, ScoreRequest
from ttscale.engines.vllm import MAX_LOGPROB_IDS, ContextLengthError, _score_plan
from ttscale.families import get_family
from ttscale.forcing import ForcingConfig, ForcingTokens, Trajectory, derive_seed, generate_trajectories
from ttscale.scoring import build_trie, candidate_logprobs

pytestmark = pytest.mark.vllm

QUESTIONS = ["What is 17 + 25?", "Name three colours.", "Is 91 a prime number? Explain briefly."]


@pytest.fixture(scope="module")
def prompts(vllm_engine):
    return [tuple(vllm_engine.chat_prompt_ids([{"role": "user", "content": q}])) for q in QUESTIONS]


def test_tokenizer_and_eos_match_the_hf_engine(vllm_engine, smol, prompts):
    assert vllm_engine.eos_token_ids == smol.eos_token_ids
    assert prompts[0] == tuple(smol.chat_prompt_ids([{"role": "user", "content": QUESTIONS[0]}]))
    assert vllm_engine.closing_brace_ids == smol.closing_brace_ids
    assert vllm_engine.info.engine == "vllm" and vllm_engine.info.dtype == "float32"


def test_greedy_tokens_equal_the_hf_engine(vllm_engine, smol, prompts):
    requests = [GenerationRequest(p, 24, smol.eos_token_ids) for p in prompts]
    assert vllm_engine.generate(requests) == smol.generate(requests)


def test_stop_ids_end_generation_and_are_reported_not_returned(vllm_engine, prompts):
    [free] = vllm_engine.generate([GenerationRequest(prompts[1], 16, frozenset())])
    stop = free.token_ids[4]
    [stopped] = vllm_engine.generate([GenerationRequest(prompts[1], 16, frozenset({stop}))])
    assert stopped.token_ids == free.token_ids[: free.token_ids.index(stop)] and stopped.stop_token_id == stop
    assert free.stop_token_id is None and len(free.token_ids) == 16  # EOS is a stop only when asked for


def test_a_seeded_request_is_the_same_alone_and_in_a_batch(vllm_engine, prompts):
    sampled = Sampling(temperature=0.8, top_p=0.95, top_k=50)
    requests = [
        GenerationRequest(p, 20, frozenset(), seed=s, sampling=sampled) for p, s in zip(prompts, [3, 4, 5], strict=True)
    ]
    batched = vllm_engine.generate(requests)
    assert vllm_engine.generate(requests[1:2])[0] == batched[1]
    assert len({g.token_ids for g in batched}) == 3


def test_follow_ups_run_until_on_finish_stops_them(vllm_engine, prompts):
    seen = []

    def on_finish(index, generation):
        seen.append((index, len(generation.token_ids)))
        if sum(1 for i, _ in seen if i == index) < 3:
            prompt = (*prompts[index], *generation.token_ids)
            return GenerationRequest(prompt, 4, frozenset())
        return None

    results = vllm_engine.generate([GenerationRequest(p, 4, frozenset()) for p in prompts[:2]], on_finish)
    assert sorted(seen) == [(0, 4)] * 3 + [(1, 4)] * 3
    assert all(len(r.token_ids) == 4 for r in results)


def _answer_prefix(engine, prompt):
    return (*prompt, *engine.encode("Let me think.\n\n**Final Answer**\n\\boxed{"))


@pytest.mark.parametrize("candidates", [list("ABCD"), [str(n) for n in range(100)]], ids=["letters", "0-99"])
def test_trie_distributions_equal_the_hf_engine(vllm_engine, smol, prompts, candidates):
    closing = sorted(smol.closing_brace_ids)
    trie = build_trie([smol.encode(c) for c in candidates], closing=closing)
    requests = [ScoreRequest(_answer_prefix(smol, p), trie) for p in prompts[:2]]
    for ours, theirs in zip(vllm_engine.score(requests), smol.score(requests), strict=True):
        assert np.max(np.abs(ours.node_logprobs - theirs.node_logprobs)) < 1e-4
        assert np.max(np.abs(ours.close_logprobs - theirs.close_logprobs)) < 1e-4
        q_ours = np.exp(candidate_logprobs(trie, ours) - np.logaddexp.reduce(candidate_logprobs(trie, ours)))
        q_theirs = np.exp(candidate_logprobs(trie, theirs) - np.logaddexp.reduce(candidate_logprobs(trie, theirs)))
        assert np.max(np.abs(q_ours - q_theirs)) < 1e-4


def test_a_node_with_more_than_128_ids_is_asked_in_several_requests():
    trie = build_trie([[t] for t in range(300)], closing=[1000, 1001])
    plan = _score_plan(trie)
    root_asks = [ids for (path, ids), node in zip(plan.asks, plan.node_of_ask, strict=True) if node == -1]
    assert [len(ids) for ids in root_asks] == [128, 128, 44] and max(map(len, root_asks)) <= MAX_LOGPROB_IDS
    assert sorted(t for ids in root_asks for t in ids) == list(range(300))


def test_nested_forcing_with_continuations_equals_independent_runs(vllm_engine, prompts):
    config = ForcingConfig(on_early_stop="continue")
    tokens = ForcingTokens.build(vllm_engine, get_family("smollm2"))
    sampling = Sampling(temperature=0.8, top_p=0.95)

    def trajectory(i, limit):
        return Trajectory(prompt_ids=prompts[i], rng_seed=derive_seed(f"q{i}", 0), max_model_tokens=limit)

    nested = [trajectory(i, 64) for i in range(len(prompts))]
    generate_trajectories(vllm_engine, nested, config=config, tokens=tokens, sampling=sampling)
    assert any(t.continuations for t in nested), "no early stop to continue: pick other questions"
    for i, traj in enumerate(nested):
        for budget in (16, 40, 64):
            alone = trajectory(i, budget)
            generate_trajectories(vllm_engine, [alone], config=config, tokens=tokens, sampling=sampling)
            prefix = traj.prefix(budget)
            assert prefix.token_ids == tuple(alone.token_ids) and prefix.thinking_tokens == budget
            assert prefix.injected_tokens == prefix.continuations * len(tokens.continuation_ids)


def test_a_request_longer_than_the_context_is_refused_in_one_line(vllm_engine, prompts):
    with pytest.raises(ContextLengthError, match="max_model_len is 2048"):
        vllm_engine.generate([GenerationRequest(prompts[0], 4096, frozenset(), sampling=GREEDY)])


def test_a_warmed_trunk_serves_every_cut_from_the_prefix_cache(vllm_engine, smol, prompts):
    """`warm` (refine's hint for budgets cut from one stored trajectory) computes the trunk once: then every cut's
    full blocks come from the cache, the answers are the hf engine's, and neither warming nor scoring counts as
    generated tokens (the live `ttscale_tokens_generated` series)."""
    block = vllm_engine.llm.llm_engine.vllm_config.cache_config.block_size

    thinking = " ".join(f"Step {i}: 91 = 7 x 13, so {i} is not it." for i in range(12))
    trunk = (*prompts[2], *vllm_engine.encode(thinking))  # no earlier request computed it
    tail = tuple(vllm_engine.encode("\n\n**Final Answer**\n\\boxed{"))
    lengths = [len(prompts[2]) + 40, len(prompts[2]) + 100, len(trunk)]  # three budgets, each with a forced answer
    answers = [GenerationRequest((*trunk[:n], *tail), 6, frozenset(), sampling=GREEDY) for n in lengths]
    full_blocks = sum(n // block * block for n in lengths)
    generated = vllm_engine.generated_tokens
    vllm_engine.warm([trunk])
    assert vllm_engine.generated_tokens == generated
    cached = vllm_engine.cached_prompt_tokens
    warmed = vllm_engine.generate(answers)
    assert vllm_engine.cached_prompt_tokens - cached >= full_blocks
    assert warmed == smol.generate(answers)
    generated = vllm_engine.generated_tokens
    vllm_engine.score([ScoreRequest(a.prompt_ids, build_trie([[t] for t in range(10)])) for a in answers])
    assert vllm_engine.generated_tokens == generated


def test_a_unit_streams_out_groups_as_they_finish_on_vllm(vllm_engine):
    """Pipelined on real vLLM (`Engine.concurrent_calls`): a group cut from a stored trajectory is answered, scored
    and yielded while the other seed still generates in the same running batch; the rows equal the whole unit's."""
    from ttscale.runner import RunSettings, iter_unit, run_unit
    from ttscale.tasks import get_task

    task = get_task("demo-arith")
    problems = task.load(1)
    settings = RunSettings(model="smollm2-135m", engine="vllm", family=get_family("smollm2"))
    first = run_unit(vllm_engine, task, problems, seeds=[0], budgets=[8, 24], settings=settings)
    pieces = list(
        iter_unit(vllm_engine, task, problems, seeds=[0, 1], budgets=[8, 24], settings=settings,
                  stored=first.trajectories)
    )  # fmt: skip
    assert [sorted({r["seed"] for r in p.rows}) for p in pieces] == [[0], [1]]
    kept = ("cell_id", "answer", "thinking_tokens", "trajectory_tokens")
    assert [{k: r[k] for k in kept} for r in pieces[0].rows] == [{k: r[k] for k in kept} for r in first.rows]


def test_streamed_tokens_are_the_generation_in_order_and_seeded_tokens_do_not_change(vllm_engine, prompts):
    """With `on_tokens`, vLLM returns every step's new tokens (DELTA outputs): each request's streamed tokens are a
    prefix of its generation (its last step comes with the finished output), which equals an unstreamed one."""
    sampled = Sampling(temperature=0.8, top_p=0.95)
    seeds = [7, 8, 9]
    requests = [
        GenerationRequest(p, 32, frozenset(), seed=s, sampling=sampled) for p, s in zip(prompts, seeds, strict=True)
    ]
    streamed: dict[int, list[int]] = {}
    results = vllm_engine.generate(requests, on_tokens=lambda i, ids: streamed.setdefault(i, []).extend(ids))
    assert results == vllm_engine.generate(requests)
    for i, generation in enumerate(results):
        assert streamed[i] == list(generation.token_ids[: len(streamed[i])]) and 16 <= len(streamed[i]) < 32


def test_a_unit_checkpoints_its_trajectories_on_vllm_and_a_retry_extends_one(vllm_engine):
    """Checkpoints on real vLLM: snapshots of trajectories still generating are prefixes of the finished ones, and a
    unit given the longest as stored generates only the tokens after it."""
    from ttscale.runner import RunSettings, iter_unit, run_unit
    from ttscale.tasks import get_task

    task = get_task("demo-arith")
    problems = task.load(1)
    settings = RunSettings(model="smollm2-135m", engine="vllm", family=get_family("smollm2"))
    pieces = list(
        iter_unit(vllm_engine, task, problems, seeds=[0, 1], budgets=[8, 96], settings=settings,
                  checkpoint_every_s=0.5)
    )  # fmt: skip
    checkpoints = [t for p in pieces if p.checkpoint for t in p.trajectories]
    final = {t["trajectory_id"]: t for p in pieces if not p.checkpoint for t in p.trajectories}
    assert checkpoints, "no checkpoint while two 96-token trajectories generated"
    for snap in checkpoints:
        assert final[snap["trajectory_id"]]["token_ids"][: len(snap["token_ids"])] == snap["token_ids"]
    latest = max(checkpoints, key=lambda s: s["model_tokens"])
    retry = run_unit(vllm_engine, task, problems, seeds=[latest["seed"]], budgets=[8, 96], settings=settings,
                     stored=[latest])  # fmt: skip
    [grown] = retry.trajectories
    assert grown["token_ids"][: len(latest["token_ids"])] == latest["token_ids"] and grown["model_tokens"] == 96
    assert retry.thinking_generated == 96 - latest["model_tokens"]
