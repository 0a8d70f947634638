"""Budget forcing's token accounting, on the deterministic FakeEngine double (stop points known exactly).

The same properties are checked on the real SmolLM2 model in tests/engines/test_forcing_model.py.
"""

from dataclasses import replace

import pytest

from ttscale.engines.base import Generation, Sampling
from ttscale.engines.fake import EOS, FakeEngine
from ttscale.families import get_family
from ttscale.forcing import (
    ForcingConfig,
    ForcingTokens,
    Trajectory,
    derive_seed,
    force_answers,
    generate_trajectories,
)

SAMPLING = Sampling(temperature=0.7, top_p=0.9)
SMOL = get_family("smollm2")


def run(engine, budgets, config, prompt=(1, 2, 3), seed=0):
    tokens = ForcingTokens.build(engine, SMOL)
    trajs = [Trajectory(prompt_ids=tuple(prompt), rng_seed=derive_seed("p", seed), max_model_tokens=max(budgets))]
    generate_trajectories(engine, trajs, config=config, tokens=tokens, sampling=SAMPLING)
    return trajs[0], tokens


def test_prefix_is_exactly_the_budget_when_the_model_never_stops():
    traj, _ = run(FakeEngine(), [8, 32, 64], ForcingConfig())
    assert traj.model_tokens == 64 and traj.natural_end is None
    for b in (1, 8, 32, 64):
        prefix = traj.prefix(b)
        assert prefix.thinking_tokens == b and len(prefix.token_ids) == b
        assert prefix.continuations == prefix.injected_tokens == 0


def test_continue_injects_uncounted_tokens_and_records_them():
    engine = FakeEngine(stop_every=10)
    traj, tokens = run(engine, [64], ForcingConfig(on_early_stop="continue"))
    n_cont = len(tokens.continuation_ids)
    assert traj.continuations > 0 and traj.model_tokens == 64
    assert traj.natural_end == 7  # prompt of 3 tokens: first stop attempt at absolute position 10
    for b in (4, 7, 8, 20, 64):
        prefix = traj.prefix(b)
        model_ids = [t for t, inj in zip(traj.token_ids, traj.injected, strict=True) if not inj]
        assert prefix.thinking_tokens == b
        assert prefix.injected_tokens == prefix.continuations * n_cont
        assert len(prefix.token_ids) == b + prefix.injected_tokens
        assert prefix.token_ids[-1] == model_ids[b - 1]  # ends on the B-th model token, never an injection
        assert EOS not in prefix.token_ids  # the stop token itself is dropped
        assert prefix.natural_end == (7 if b > 7 else None)


def test_accept_keeps_the_natural_end_for_larger_budgets():
    traj, _ = run(FakeEngine(stop_every=10), [64], ForcingConfig(on_early_stop="accept"))
    assert traj.finished and traj.model_tokens == 7 == traj.natural_end
    assert traj.prefix(4).thinking_tokens == 4
    big = traj.prefix(64)
    assert big.thinking_tokens == 7 and big.continuations == 0 and big.natural_end == 7


def test_max_continuations_caps_the_injections():
    traj, _ = run(FakeEngine(stop_every=10), [64], ForcingConfig(max_continuations=2))
    assert traj.continuations == 2 and traj.finished and traj.model_tokens < 64


class AlwaysStops(FakeEngine):
    """Ends its thinking before writing a single token, every time."""

    def _one(self, request):
        return Generation(token_ids=(), stop_token_id=EOS)


def test_a_model_that_always_stops_at_once_does_not_loop_forever():
    traj, _ = run(AlwaysStops(), [16], ForcingConfig())
    assert traj.finished and traj.model_tokens == 0
    assert traj.token_ids == []  # injections with nothing after them are dropped
    assert traj.continuations == 0 and traj.injection_starts == []
    assert traj.prefix(16).thinking_tokens == 0
    assert traj.stopped == traj.prefix(16).stopped == "empty_rounds"  # below B with no cap set: said so


class StopsAgainAtOnce(FakeEngine):
    """Thinks 5 tokens and stops; answers the first continuation with an immediate stop; then thinks on."""

    calls_seen = 0

    def _one(self, request):
        self.calls_seen += 1
        if self.calls_seen == 1:
            return Generation(token_ids=super()._one(replace(request, max_tokens=5)).token_ids, stop_token_id=EOS)
        if self.calls_seen == 2:
            return Generation(token_ids=(), stop_token_id=EOS)
        return super()._one(request)


def test_back_to_back_injections_count_as_two_continuations():
    traj, tokens = run(StopsAgainAtOnce(), [32], ForcingConfig())
    n_cont = len(tokens.continuation_ids)
    assert traj.injection_starts == [5, 5 + n_cont]  # "…\nWait\nWait…": two injections, no model token between
    prefix = traj.prefix(32)
    assert prefix.injected_tokens == 2 * n_cont and prefix.continuations == 2 == traj.continuations
    assert traj.prefix(5).continuations == 0  # injections after the B-th model token are not in the prefix
    assert prefix.stopped is None and prefix.thinking_tokens == 32


def test_rows_say_why_thinking_stopped_below_the_budget():
    accepted, _ = run(FakeEngine(stop_every=10), [64], ForcingConfig(on_early_stop="accept"))
    assert accepted.prefix(4).stopped is None and accepted.prefix(64).stopped == "accepted"
    capped, _ = run(FakeEngine(stop_every=10), [64], ForcingConfig(max_continuations=2))
    assert capped.prefix(capped.model_tokens).stopped is None and capped.prefix(64).stopped == "max_continuations"
    full, _ = run(FakeEngine(stop_every=10), [64], ForcingConfig())
    assert full.stopped is None and full.prefix(64).stopped is None


@pytest.mark.parametrize("stop_every", [None, 10])
def test_nested_prefix_equals_an_independent_run_with_the_same_seed(stop_every):
    engine = FakeEngine(stop_every=stop_every)
    nested, _ = run(engine, [64], ForcingConfig())
    for b in (5, 16, 33, 64):
        alone, _ = run(engine, [b], ForcingConfig())
        assert nested.prefix(b).token_ids == tuple(alone.token_ids)


def test_forced_answer_stops_at_the_brace_that_closes_the_box():
    engine = FakeEngine(answer="\\frac{1}{2}")
    tokens = ForcingTokens.build(engine, SMOL)
    [answer] = force_answers(engine, [(1, 2, 3)], config=ForcingConfig(answer_max_tokens=40), tokens=tokens)
    assert engine.decode(answer.answer_ids) == "\\frac{1}{2}}"
    assert engine.calls == 3  # paused at each '}' and resumed until the braces balanced


def test_forced_answer_respects_answer_max_tokens():
    engine = FakeEngine(answer="123456789")
    tokens = ForcingTokens.build(engine, SMOL)
    [answer] = force_answers(engine, [(1,)], config=ForcingConfig(answer_max_tokens=4), tokens=tokens)
    assert engine.decode(answer.answer_ids) == "1234"


def test_seeds_are_stable_and_distinct():
    assert derive_seed("p1", 0) == derive_seed("p1", 0)
    assert len({derive_seed("p1", s) for s in range(100)}) == 100
    assert 0 <= derive_seed("x") < 2**63


class _EndsWithoutClosing(FakeEngine):
    """The test double answering its text and then EOS, without the closing brace: an answer that ended on its own."""

    def _answer_rest(self, prompt_ids):
        return super()._answer_rest(prompt_ids)[:-1]


def test_an_answer_cut_by_its_cap_is_truncated_and_one_closed_or_ended_on_its_own_is_not():
    tokens = ForcingTokens.build(FakeEngine(), SMOL)
    cut, closed = (
        force_answers(FakeEngine(answer="707"), [(1,)], config=ForcingConfig(answer_max_tokens=cap), tokens=tokens)[0]
        for cap in (2, 4)
    )
    assert (FakeEngine().decode(cut.answer_ids), cut.truncated) == ("70", True)  # "70" may be the start of "707"
    assert (FakeEngine().decode(closed.answer_ids), closed.truncated) == ("707}", False)
    engine = _EndsWithoutClosing(answer="707")
    [ended] = force_answers(engine, [(1,)], config=ForcingConfig(answer_max_tokens=8), tokens=tokens)
    assert (engine.decode(ended.answer_ids), ended.truncated) == ("707", False)


def test_rows_grade_an_answer_cut_by_its_cap_incorrect_and_say_so():
    """The audit's case: the model answers 707, the gold is its prefix 70, the cap cuts after two tokens."""
    from ttscale.measure import measure
    from ttscale.tasks import get_task

    [problem] = get_task("demo-arith").load(1)
    rows = {}
    for answer, cap in ((problem.gold + "7", len(problem.gold)), (problem.gold, 8)):
        m = measure(FakeEngine(answer=answer), "demo-arith", budgets=[8], limit=1,
                    forcing=ForcingConfig(answer_max_tokens=cap))  # fmt: skip
        [rows[answer]] = m.rows.to_pylist()
    cut = rows[problem.gold + "7"]
    assert (cut["answer_text"], cut["unclosed"], cut["truncated"], cut["correct"]) == (problem.gold, True, True, 0)
    whole = rows[problem.gold]
    assert (whole["unclosed"], whole["truncated"], whole["correct"]) == (False, False, 1)
