"""The hf engine on the real SmolLM2 model: seeded batched generation and trie scoring."""

import numpy as np
import pytest

from ttscale.engines.base import GenerationRequest, Sampling, ScoreRequest
from ttscale.metrics import set_metrics
from ttscale.scoring import build_trie, candidate_logprobs

pytestmark = pytest.mark.model

SAMPLED = Sampling(temperature=0.8, top_p=0.95, top_k=50)


@pytest.fixture(scope="module")
def prompt(smol):
    return tuple(smol.chat_prompt_ids([{"role": "user", "content": "What is 17 + 25? Put the answer in \\boxed{}."}]))


@pytest.fixture(scope="module")
def answer_prefix(smol, prompt):
    thinking = smol.generate([GenerationRequest(prompt, 24, frozenset(), seed=1, sampling=SAMPLED)])[0].token_ids
    return (*prompt, *thinking, *smol.encode("\n\n**Final Answer**\n\\boxed{"))


def test_chat_prompt_has_a_single_bos(smol, prompt):
    bos = smol.tokenizer.bos_token_id
    assert prompt.count(bos) == sum(1 for t in prompt if t == bos)
    assert prompt[:2] != (bos, bos)
    assert smol.decode(prompt).endswith("<|im_start|>assistant\n")


def test_seeded_request_is_the_same_alone_and_inside_a_batch(smol, prompt):
    poem = tuple(smol.chat_prompt_ids([{"role": "user", "content": "Write a short poem about the sea."}]))
    free = Sampling(temperature=1.0)
    reqs = [
        GenerationRequest(p, 20, frozenset(), seed=s, sampling=free) for p, s in [(poem, 3), (prompt, 4), (poem, 5)]
    ]
    batched = smol.generate(reqs)
    smol.cache.clear()
    alone = smol.generate(reqs[:1])
    assert batched[0] == alone[0]
    assert batched[0].token_ids != batched[2].token_ids  # different seeds, different samples


def test_generation_honours_max_tokens_and_stop_ids(smol, prompt):
    [long] = smol.generate([GenerationRequest(prompt, 12, frozenset(), seed=0, sampling=SAMPLED)])
    assert len(long.token_ids) == 12 and long.stop_token_id is None
    stop = long.token_ids[5]
    [short] = smol.generate([GenerationRequest(prompt, 12, frozenset({stop}), seed=0, sampling=SAMPLED)])
    first = long.token_ids.index(stop)
    assert short.token_ids == long.token_ids[:first] and short.stop_token_id == stop


def test_closing_set_is_every_token_that_begins_with_a_brace(smol):
    closing = smol.closing_brace_ids
    texts = smol.vocab_texts()
    assert smol.encode("}") == [min(closing, key=lambda t: len(texts[t]))]
    assert all(texts[t].startswith("}") for t in closing)
    assert {"}$", "}."} <= {texts[t] for t in closing}  # SmolLM2 merges the brace with what follows it
    assert len(closing) == sum(1 for text in texts if text.startswith("}"))


def test_closing_mass_counts_every_brace_token_not_only_the_bare_one(smol, prompt):
    # After `\boxed{042` the model closes with `}`, `}$`, `}.`, ...: scoring only `}` understated P(c).
    prefix = (*prompt, *smol.encode("The answer is $\\boxed{"))
    bare = build_trie([smol.encode("042")], closing=smol.encode("}"))
    full = build_trie([smol.encode("042")], closing=sorted(smol.closing_brace_ids))
    [bare_scores, full_scores] = smol.score([ScoreRequest(prefix, bare), ScoreRequest(prefix, full)])
    assert np.allclose(bare_scores.node_logprobs, full_scores.node_logprobs)
    assert full_scores.close_logprobs[0] > bare_scores.close_logprobs[0] + 1e-3
    brute = smol.score_bruteforce(prefix, [smol.encode("042")], closing=sorted(smol.closing_brace_ids))
    # fp32 over 30 layers: the trie's one forward over every node (a 4D float mask) and brute force's forward per
    # candidate sum in different orders; measured 1.1e-4 apart on this log p of about -11 (transformers 5.24)
    assert abs(candidate_logprobs(full, full_scores)[0] - brute[0]) < 3e-4


def test_trie_equals_brute_force_for_four_letters(smol, answer_prefix):
    closing = sorted(smol.closing_brace_ids)
    candidates = [smol.encode(c) for c in "ABCD"]
    trie = build_trie(candidates, closing=closing)
    tree = candidate_logprobs(trie, smol.score([ScoreRequest(answer_prefix, trie)])[0])
    brute = smol.score_bruteforce(answer_prefix, [trie.paths()[i] for i in range(4)], closing=closing)
    assert np.max(np.abs(tree - brute)) < 1e-4
    assert float(set_metrics(tree, gold_index=0).distribution.sum(dtype=np.float64)) == pytest.approx(1.0, abs=1e-6)


def test_trie_equals_brute_force_for_integers_0_to_999(smol, answer_prefix):
    closing = sorted(smol.closing_brace_ids)
    candidates = [smol.encode(str(n)) for n in range(1000)]
    trie = build_trie(candidates, closing=closing)
    tree = candidate_logprobs(trie, smol.score([ScoreRequest(answer_prefix, trie)])[0])
    metrics = set_metrics(tree, gold_index=42)  # what a result row stores
    assert float(metrics.distribution.sum(dtype=np.float64)) == pytest.approx(1.0, abs=1e-5)
    assert np.all(tree < 0) and 0 < metrics.mass_on_set <= 1
    # Full-context brute force (one forward per candidate, ~0.3 s each) on a fixed spread of candidates;
    # bench/solution_set.py compares all 1000.
    picks = [0, 7, 10, 42, 99, 100, 123, 500, 777, 999, *np.random.default_rng(0).choice(1000, 10, replace=False)]
    brute = smol.score_bruteforce(answer_prefix, [candidates[i] for i in picks], closing=closing)
    assert np.max(np.abs(tree[picks] - brute)) < 1e-4


def test_prefixes_scored_together_match_one_at_a_time(smol, prompt, answer_prefix):
    trie = build_trie([smol.encode(str(n)) for n in range(100)], closing=sorted(smol.closing_brace_ids))
    other = (*prompt, *smol.encode("\n\n**Final Answer**\n\\boxed{"))  # a shorter prefix: rows get padded
    together = smol.score([ScoreRequest(answer_prefix, trie), ScoreRequest(other, trie)])
    alone = [smol.score([ScoreRequest(p, trie)])[0] for p in (answer_prefix, other)]
    for a, b in zip(together, alone, strict=True):
        assert np.max(np.abs(a.node_logprobs - b.node_logprobs)) < 1e-4
        assert np.max(np.abs(a.close_logprobs - b.close_logprobs)) < 1e-4
