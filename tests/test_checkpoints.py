"""Long trajectories are checkpointed (issue 25): while a unit generates, snapshots of its trajectories still
growing come out every `checkpoint_every_s`; each is exactly what the uninterrupted run holds at that moment (a
prefix of its final trajectory), and a retry given one as a stored trajectory extends it rather than starting
over. On the FakeEngine double (byte tokens, `seconds_per_token` to make generation take time) for the
bookkeeping, and on SmolLM2 through the `hf` engine for the real thing."""

from __future__ import annotations

import pytest

from ttscale.engines.fake import FakeEngine
from ttscale.families import get_family
from ttscale.forcing import ForcingConfig, GrowingTrajectories, Trajectory, derive_seed
from ttscale.runner import RunSettings, iter_unit, run_unit
from ttscale.tasks import get_task

TASK = get_task("demo-arith")
BUDGETS = [16, 96]


def settings(**forcing) -> RunSettings:
    return RunSettings(model="fake", engine="fake", family=get_family("generic"), forcing=ForcingConfig(**forcing))


class Recording(FakeEngine):
    """Records every generation request: sampled ones are thinking, greedy ones forced answers."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.requests = []

    def _generate(self, requests):
        self.requests.extend(requests)
        return super()._generate(requests)


def checkpointed_unit(engine, problems, *, every_s=0.1, **forcing):
    pieces = list(
        iter_unit(engine, TASK, problems, seeds=[0, 1], budgets=BUDGETS, settings=settings(**forcing),
                  checkpoint_every_s=every_s)
    )  # fmt: skip
    checkpoints = [t for p in pieces if p.checkpoint for t in p.trajectories]
    final = {t["trajectory_id"]: t for p in pieces if not p.checkpoint for t in p.trajectories}
    return pieces, checkpoints, final


@pytest.mark.parametrize("stop_every", [None, 11])  # with continuations injected, too
def test_checkpoints_are_prefixes_of_the_final_trajectories_and_change_no_row(stop_every):
    problems = TASK.load(2)
    engine = FakeEngine(seconds_per_token=0.002, stop_every=stop_every)  # 4 trajectories of 96 tokens: ~0.8 s
    pieces, checkpoints, final = checkpointed_unit(engine, problems)

    assert len(checkpoints) >= 4  # several snapshots of the trajectories while they grew
    for snap in checkpoints:
        whole = final[snap["trajectory_id"]]
        assert not snap["finished"] and 0 < snap["model_tokens"] < max(BUDGETS)
        assert whole["token_ids"][: len(snap["token_ids"])] == snap["token_ids"]
        assert whole["injected"][: len(snap["injected"])] == snap["injected"]
        assert snap["text"] == bytes(t for t in snap["token_ids"] if t < 256).decode("utf-8", errors="replace")
    by_id: dict[str, list[int]] = {}
    for snap in checkpoints:  # a trajectory is snapshot again only once it grew
        by_id.setdefault(snap["trajectory_id"], []).append(snap["model_tokens"])
    assert all(lengths == sorted(set(lengths)) for lengths in by_id.values())
    assert all(p.rows == [] and p.generated_tokens == 0 for p in pieces if p.checkpoint)

    plain = run_unit(FakeEngine(stop_every=stop_every), TASK, problems, seeds=[0, 1], budgets=BUDGETS,
                     settings=settings())  # fmt: skip
    rows = sorted((r for p in pieces for r in p.rows), key=lambda r: (r["problem_id"], r["seed"], r["budget"]))
    same = ("cell_id", "answer", "correct", "thinking_tokens", "continuations", "trajectory_tokens", "p_correct")
    assert [{k: r[k] for k in same} for r in rows] == [{k: r[k] for k in same} for r in plain.rows]


@pytest.mark.parametrize("stop_every", [None, 11])
def test_a_retry_extends_the_checkpoint_and_generates_only_the_tokens_after_it(stop_every):
    problems = TASK.load(1)
    _, checkpoints, final = checkpointed_unit(FakeEngine(seconds_per_token=0.002, stop_every=stop_every), problems)
    latest: dict[str, dict] = {}
    for snap in checkpoints:  # what the store reads back: the longest version of each
        if snap["model_tokens"] > latest.get(snap["trajectory_id"], {"model_tokens": -1})["model_tokens"]:
            latest[snap["trajectory_id"]] = snap

    engine = Recording(stop_every=stop_every)
    retry = run_unit(engine, TASK, problems, seeds=[0, 1], budgets=BUDGETS, settings=settings(),
                     stored=list(latest.values()))  # fmt: skip
    held = sum(s["model_tokens"] for s in latest.values())
    assert retry.thinking_generated == 2 * max(BUDGETS) - held  # only what the checkpoints did not hold
    for grown in retry.trajectories:
        snap = latest[grown["trajectory_id"]]
        assert grown["token_ids"][: len(snap["token_ids"])] == snap["token_ids"] and grown["model_tokens"] == 96
    for row in retry.rows:
        assert row["trajectory_tokens"] == 96  # as rows cut from a reused trajectory carry it
    for snap in latest.values():  # where the snapshot cut a round, the rest of it is drawn with a seed of its own
        if not snap["injected"][-1]:
            seed = derive_seed(snap["rng_seed"], snap["continuations"], "extend", snap["model_tokens"])
            assert any(r.seed == seed for r in engine.requests)
    assert set(final) == {t["trajectory_id"] for t in retry.trajectories}


def test_a_snapshot_right_after_an_injection_resumes_exactly_as_the_uninterrupted_run():
    """Cut at a round's start, a resumed trajectory draws that round with the round's own seed: token for token
    what the run would have made had it not been interrupted."""
    problems = TASK.load(1)
    whole = run_unit(FakeEngine(stop_every=11), TASK, problems, seeds=[0], budgets=[64], settings=settings())
    [traj] = whole.trajectories
    start = traj["injection_starts"][1]
    end = start + sum(traj["injected"][start:][: traj["injected"][start:].index(False)])
    cut = {**traj, "token_ids": traj["token_ids"][:end], "injected": traj["injected"][:end],
           "injection_starts": traj["injection_starts"][:2], "continuations": 2, "finished": False,
           "model_tokens": end - sum(traj["injected"][:end])}  # fmt: skip
    resumed = run_unit(FakeEngine(stop_every=11), TASK, problems, seeds=[0], budgets=[64], settings=settings(),
                       stored=[cut])  # fmt: skip
    [grown] = resumed.trajectories
    assert grown["token_ids"] == traj["token_ids"] and grown["injected"] == traj["injected"]
    assert resumed.thinking_generated == 64 - cut["model_tokens"]


def test_a_snapshot_never_counts_a_round_twice_nor_misses_one():
    """The engine reports a running request's tokens, then finishes it: a snapshot taken in between holds each
    token once, whichever side of the round's end it falls."""
    growing = GrowingTrajectories()
    traj = Trajectory(prompt_ids=(1, 2), rng_seed=0, max_model_tokens=10)
    growing.start([traj])
    growing.tokens(0, [5, 6])
    [(_, snap)] = growing.snapshot()
    assert snap.token_ids == [5, 6] and traj.token_ids == []
    assert growing.snapshot() == []  # nothing new since
    growing.tokens(0, [7])
    with growing.lock:  # what generate_trajectories does when the round finishes
        growing.round_ended(0)
        traj._extend([5, 6, 7, 8], injected=False)
    [(_, snap)] = growing.snapshot()
    assert snap.token_ids == [5, 6, 7, 8] and snap.model_tokens == 4


def test_on_smollm2_checkpoints_hold_the_tokens_the_finished_trajectory_starts_with(smol):
    smol_settings = RunSettings(model="smollm2-135m", engine="hf", family=get_family("smollm2"))
    problems = TASK.load(1)
    pieces = list(
        iter_unit(smol, TASK, problems, seeds=[0, 1], budgets=[8, 48], settings=smol_settings, checkpoint_every_s=1)
    )
    checkpoints = [t for p in pieces if p.checkpoint for t in p.trajectories]
    final = {t["trajectory_id"]: t for p in pieces if not p.checkpoint for t in p.trajectories}
    assert checkpoints, "no checkpoint in a generation of two 48-token trajectories"
    for snap in checkpoints:
        assert final[snap["trajectory_id"]]["token_ids"][: len(snap["token_ids"])] == snap["token_ids"]
        assert snap["model_tokens"] < 48 and snap["text"] == smol.decode(snap["token_ids"])

    latest = max(checkpoints, key=lambda s: s["model_tokens"])
    retry = run_unit(smol, TASK, problems, seeds=[latest["seed"]], budgets=[8, 48], settings=smol_settings,
                     stored=[latest])  # fmt: skip
    [grown] = retry.trajectories
    assert grown["token_ids"][: len(latest["token_ids"])] == latest["token_ids"] and grown["model_tokens"] == 48
    assert retry.thinking_generated == 48 - latest["model_tokens"]
