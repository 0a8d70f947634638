"""Row fields the runner derives from forcing: where the reasoning is cut, and why thinking stopped short.

The engines are FakeEngine doubles (byte tokens, known stop points): what is checked is bookkeeping."""

from ttscale.engines.base import Generation
from ttscale.engines.fake import FakeEngine
from ttscale.families import get_family
from ttscale.forcing import ForcingConfig
from ttscale.row_fields import text_offset
from ttscale.runner import RunSettings, run_unit
from ttscale.tasks import get_task

E_ACUTE = "é".encode()  # two bytes: a cut after the first one splits the character


class ThinksInAccents(FakeEngine):
    """Sampled 'thinking' is "ééé…", one byte per token, so odd budgets cut a character in half."""

    def _one(self, request):
        if request.sampling.greedy and request.seed is None:
            return super()._one(request)
        return Generation(tuple(E_ACUTE[i % 2] for i in range(request.max_tokens)), None)  # never stops: one call


def settings(**forcing) -> RunSettings:
    return RunSettings(model="fake", engine="fake", family=get_family("generic"), forcing=ForcingConfig(**forcing))


def test_text_offset_stops_before_a_split_character():
    full = "café au lait"
    prefix = "caf" + "\ufffd"  # the first byte of é alone decodes to the replacement character
    assert text_offset(prefix, full) == 3 and full[:3] == "caf"
    assert text_offset("café", full) == 4


def test_thinking_chars_slice_the_trajectory_text_at_every_budget():
    task = get_task("demo-arith")
    engine = ThinksInAccents()
    result = run_unit(engine, task, task.load(limit=2), seeds=[0], budgets=[3, 4, 7, 16], settings=settings())
    texts = {t["trajectory_id"]: t["text"] for t in result.trajectories}
    for row in result.rows:
        text = texts[row["trajectory_id"]]
        seen = text[: row["thinking_chars"]]
        assert "\ufffd" not in seen and seen == "é" * (row["budget"] // 2), row["budget"]


def test_rows_carry_why_thinking_stopped_and_count_every_continuation():
    task = get_task("demo-arith")
    engine = FakeEngine(stop_every=10)
    accept = run_unit(engine, task, task.load(limit=1), seeds=[0], budgets=[4, 64], settings=settings(
        on_early_stop="accept"))  # fmt: skip
    assert [(r["budget"], r["stopped"]) for r in accept.rows] == [(4, None), (64, "accepted")]
    assert accept.trajectories[0]["stopped"] == "accepted"
    go_on = run_unit(engine, task, task.load(limit=1), seeds=[0], budgets=[64], settings=settings())
    [row], [traj] = go_on.rows, go_on.trajectories
    assert row["stopped"] is None and row["thinking_tokens"] == 64
    assert row["continuations"] == len(traj["injection_starts"]) > 0


def test_cell_ids_change_with_the_measurement_version(monkeypatch):
    import ttscale.runner as runner

    task = get_task("demo-arith")
    before = runner.cell_ids(task, settings(), [8], [0])
    monkeypatch.setattr(runner, "MEASUREMENT_VERSION", runner.MEASUREMENT_VERSION + 1)
    assert runner.cell_ids(task, settings(), [8], [0]) != before  # old rows are measured again, not mixed in


def test_trajectory_ids_change_with_the_generation_version_only(monkeypatch):
    """A new measurement version that changes grading (3: answers cut by their cap) re-measures rows but reuses
    the stored trajectories; only a change to how trajectories are generated (TRAJECTORY_VERSION) makes new ones."""
    import ttscale.runner as runner

    task = get_task("demo-arith")
    first = runner.nested_trajectory_ids(task, settings(), ["p0"], [0])
    monkeypatch.setattr(runner, "MEASUREMENT_VERSION", runner.MEASUREMENT_VERSION + 1)
    assert runner.nested_trajectory_ids(task, settings(), ["p0"], [0]) == first
    monkeypatch.setattr(runner, "TRAJECTORY_VERSION", runner.TRAJECTORY_VERSION + 1)
    assert runner.nested_trajectory_ids(task, settings(), ["p0"], [0]) != first
