"""Reuse of stored nested trajectories (issue 14): a budget within one is cut from its tokens, nothing thought
again; a budget beyond one extends it from its stored tokens. In process, on the FakeEngine double (byte
tokens): what is checked is which tokens the forced answers saw and which were generated."""

from __future__ import annotations

import pytest

from ttscale.engines.fake import FakeEngine
from ttscale.families import get_family
from ttscale.forcing import ForcingConfig, Trajectory, derive_seed, prompt_digest
from ttscale.runner import RunSettings, run_unit
from ttscale.tasks import get_task


class Recording(FakeEngine):
    """Records every generation request: sampled ones are thinking, greedy ones forced answers."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.requests = []

    def _generate(self, requests):
        self.requests.extend(requests)
        return super()._generate(requests)

    @property
    def thinking_requests(self):
        return [r for r in self.requests if r.seed is not None]


def settings(**forcing) -> RunSettings:
    return RunSettings(model="fake", engine="fake", family=get_family("generic"), forcing=ForcingConfig(**forcing))


def stored_rows(result) -> list[dict]:
    """What the store gives back for a unit's trajectories (the same plain dicts)."""
    return [dict(t) for t in result.trajectories]


@pytest.mark.parametrize("stop_every", [None, 5])  # with continuations injected, too
def test_a_budget_within_a_stored_trajectory_is_cut_from_it_and_generates_no_thinking(stop_every):
    task, problems = get_task("demo-arith"), get_task("demo-arith").load(limit=2)
    first = run_unit(Recording(stop_every=stop_every), task, problems, seeds=[0, 1], budgets=[8, 32],
                     settings=settings())  # fmt: skip
    stored = {t["trajectory_id"]: t for t in first.trajectories}

    engine = Recording(stop_every=stop_every)
    again = run_unit(engine, task, problems, seeds=[0, 1], budgets=[16], settings=settings(),
                     stored=stored_rows(first))  # fmt: skip

    assert engine.thinking_requests == [] and again.thinking_generated == 0
    assert again.trajectories == []  # nothing new to store: the rows point at the stored version
    forced_prompts = [r.prompt_ids for r in engine.requests]  # all greedy: forced answers
    for row in again.rows:
        traj = stored[row["trajectory_id"]]
        assert row["trajectory_tokens"] == traj["model_tokens"] == 32
        prompt = (0,) * row["prompt_tokens"]
        live = Trajectory.resume(unchecked(traj), prompt_ids=prompt, rng_seed=row["rng_seed"], max_model_tokens=0)
        cut = live.prefix(16).token_ids
        assert list(cut) == traj["token_ids"][: len(cut)]
        assert traj["text"][: row["thinking_chars"]].encode() == bytes(cut)  # byte tokens: text is the tokens
        assert any(tuple(p[row["prompt_tokens"] : row["prompt_tokens"] + len(cut)]) == cut for p in forced_prompts)
    assert again.generated_tokens == sum(r["answer_tokens"] for r in again.rows)


def test_without_stored_trajectories_the_unit_generates_as_before():
    task, problems = get_task("demo-arith"), get_task("demo-arith").load(limit=1)
    result = run_unit(Recording(), task, problems, seeds=[0], budgets=[8, 32], settings=settings())
    assert result.thinking_generated == 32 and result.rows[0]["trajectory_tokens"] == 32


def unchecked(traj: dict) -> dict:
    """A stored trajectory without its prompt digest, for tests that resume it on a stand-in prompt of its length."""
    return {**traj, "prompt_sha": None}


def test_a_stored_trajectory_from_another_prompt_is_refused():
    task, problems = get_task("demo-arith"), get_task("demo-arith").load(limit=1)
    first = run_unit(Recording(), task, problems, seeds=[0], budgets=[8], settings=settings())
    [traj] = stored_rows(first)
    traj["prompt_tokens"] += 1
    traj["prompt_sha"] = None  # a trajectory stored before the digest: checked by its length
    with pytest.raises(ValueError, match="another prompt or seed"):
        run_unit(Recording(), task, problems, seeds=[0], budgets=[4], settings=settings(), stored=[traj])


def test_a_stored_trajectory_from_another_prompt_of_the_same_length_is_refused():
    """A changed chat template or tokenizer can render a prompt of the same length: the tokens must match."""
    task, problems = get_task("demo-arith"), get_task("demo-arith").load(limit=1)
    first = run_unit(Recording(), task, problems, seeds=[0], budgets=[8], settings=settings())
    [traj] = stored_rows(first)
    prompt = tuple(range(traj["prompt_tokens"]))
    assert traj["prompt_sha"] != prompt_digest(prompt)
    with pytest.raises(ValueError, match="chat template, tokenizer or prompt changed"):
        Trajectory.resume(traj, prompt_ids=prompt, rng_seed=traj["rng_seed"], max_model_tokens=0)
    old = {**traj, "prompt_sha": None}  # stored before the digest existed: checked by length, as before
    assert Trajectory.resume(old, prompt_ids=prompt, rng_seed=traj["rng_seed"], max_model_tokens=0).resumed_at == 8


def test_a_stored_trajectory_of_another_model_revision_is_never_extended():
    task, problems = get_task("demo-arith"), get_task("demo-arith").load(limit=1)
    first = run_unit(Recording(), task, problems, seeds=[0], budgets=[8], settings=settings())
    [traj] = stored_rows(first)
    assert traj["model_revision"] == "fake"  # the engine's model_path: what generated it
    traj["model_revision"] = "hub:org/model@0123abcd"
    with pytest.raises(ValueError, match="another version of the model under the same name"):
        run_unit(Recording(), task, problems, seeds=[0], budgets=[16], settings=settings(), stored=[traj])


@pytest.mark.model
def test_on_smollm2_a_budget_between_stored_ones_thinks_nothing_and_a_larger_one_extends(smol, monkeypatch):
    task, problems = get_task("demo-arith"), get_task("demo-arith").load(limit=1)
    smol_settings = RunSettings(model="smollm2-135m", engine="hf", family=get_family("smollm2"))
    first = run_unit(smol, task, problems, seeds=[0], budgets=[4, 16], settings=smol_settings)
    [traj] = stored_rows(first)

    requests = []
    generate = smol.generate
    monkeypatch.setattr(
        smol, "generate", lambda reqs, on_finish=None, **kw: requests.extend(reqs) or generate(reqs, on_finish, **kw)
    )
    between = run_unit(smol, task, problems, seeds=[0], budgets=[8], settings=smol_settings, stored=[traj])
    assert [r for r in requests if r.seed is not None] == [] and between.thinking_generated == 0
    [row] = between.rows
    prompt = (0,) * row["prompt_tokens"]
    live = Trajectory.resume(unchecked(traj), prompt_ids=prompt, rng_seed=row["rng_seed"], max_model_tokens=0)
    cut = live.prefix(8).token_ids
    start = row["prompt_tokens"]
    assert requests and all(r.prompt_ids[start : start + len(cut)] == cut for r in requests)
    assert row["trajectory_tokens"] == 16 and row["thinking_tokens"] == 8

    above = run_unit(smol, task, problems, seeds=[0], budgets=[24], settings=smol_settings, stored=[traj])
    [grown] = above.trajectories
    assert grown["trajectory_id"] == traj["trajectory_id"] and grown["model_tokens"] == 24
    assert grown["token_ids"][: len(traj["token_ids"])] == traj["token_ids"] and above.thinking_generated == 8


def test_a_budget_beyond_a_stored_trajectory_extends_it_with_a_fresh_seed_for_the_new_tokens():
    task, problems = get_task("demo-arith"), get_task("demo-arith").load(limit=1)
    first = run_unit(Recording(stop_every=7), task, problems, seeds=[0], budgets=[8, 32], settings=settings())
    [traj] = stored_rows(first)

    engine = Recording(stop_every=7)
    longer = run_unit(engine, task, problems, seeds=[0], budgets=[16, 48], settings=settings(), stored=[traj])
    [grown] = longer.trajectories
    assert grown["trajectory_id"] == traj["trajectory_id"] and grown["model_tokens"] == 48
    assert grown["token_ids"][: len(traj["token_ids"])] == traj["token_ids"]
    assert longer.thinking_generated == 16 and [r["trajectory_tokens"] for r in longer.rows] == [48, 48]
    first_round = engine.thinking_requests[0]
    assert first_round.prompt_ids[-len(traj["token_ids"]) :] == tuple(traj["token_ids"])
    assert first_round.seed == derive_seed(traj["rng_seed"], traj["continuations"], "extend", 32)
