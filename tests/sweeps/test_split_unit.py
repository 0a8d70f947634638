"""A unit that ran out of memory splits into halves that cover exactly its grid, problems first, then seeds."""

from __future__ import annotations

from ttscale.sweeps.plan import WorkUnit, split_unit


def unit(problems: int, seeds: int) -> WorkUnit:
    ids = tuple(f"p{i}" for i in range(problems))
    return WorkUnit("u", 0, 0, ids, tuple(range(seeds)), (8, 16), rows=problems * seeds * 2, tokens=problems * seeds)


def grid(u: WorkUnit) -> set[tuple[str, int, int]]:
    return {(p, s, b) for p in u.problem_ids for s in u.seeds for b in u.budgets}


def test_halves_cover_the_unit_exactly_once():
    for problems, seeds in [(5, 3), (1, 4), (2, 1), (8, 8)]:
        whole = unit(problems, seeds)
        first, second = split_unit(whole)
        assert grid(first) | grid(second) == grid(whole) and not grid(first) & grid(second)
        assert first.budgets == second.budgets == whole.budgets  # nested forcing keeps a trajectory's budgets
        assert {first.unit_id, second.unit_id} == {"u.1", "u.2"}
        assert first.rows + second.rows == whole.rows


def test_problems_split_before_seeds_and_one_sequence_does_not_split():
    assert [len(h.problem_ids) for h in split_unit(unit(5, 3))] == [2, 3]
    assert [len(h.seeds) for h in split_unit(unit(1, 3))] == [1, 2]
    assert split_unit(unit(1, 1)) is None
