"""Solution sets: candidates, names, caching and how answers are canonicalised to an index."""

from __future__ import annotations

import pytest

from ttscale.errors import TaskError
from ttscale.tasks.solution_sets import canonical_letter, declared, integers, letters, solution_set_named


def test_letters_candidates_and_name():
    assert letters(4).candidates == ("A", "B", "C", "D")
    assert letters(4).name == "letters-4"
    assert letters(4) is letters(4)  # cached


def test_aime_integers_are_three_digit_strings():
    aime = integers(0, 999, width=3)
    assert aime.name == "int-000-999"
    assert len(aime) == 1000
    assert aime.candidates[:3] == ("000", "001", "002") and aime.candidates[-1] == "999"
    assert aime is integers(0, 999, width=3)


def test_plain_integers():
    plain = integers(0, 999)
    assert plain.name == "int-0-999"
    assert plain.candidates[7] == "7"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("7", 7),
        ("007", 7),
        ("07", 7),
        (" 42 ", 42),
        ("0", 0),
        ("999", 999),
        ("1000", None),
        ("-1", None),
        ("1/2", None),  # never strip characters to force a number
        ("12a", None),
        ("4 2", None),
        ("7.0", None),
        ("", None),
        (None, None),
    ],
)
def test_integer_index_of(answer, expected):
    assert integers(0, 999, width=3).index_of(answer) == expected
    assert integers(0, 999).index_of(answer) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("A", 0),
        ("b", 1),
        ("(C)", 2),
        ("D)", 3),
        ("A.", 0),
        ("\\text{A}", 0),
        ("\\textbf{(B)}", 1),
        ("\\mathrm{ c }", 2),
        ("$D$", 3),
        ("**A**", 0),
        ("E", None),  # outside the four options
        ("AB", None),
        ("the answer is A", None),
        ("", None),
    ],
)
def test_letter_index_of(answer, expected):
    assert letters(4).index_of(answer) == expected


def test_canonical_letter_uppercases():
    assert canonical_letter("\\text{(d)}") == "D"


def test_declared_matches_stripped_text_exactly():
    colours = declared("colours", ["red", "green", "blue"])
    assert colours.index_of(" green ") == 1
    assert colours.index_of("Green") is None


def test_declared_rejects_duplicates():
    with pytest.raises(TaskError, match="distinct, non-empty values"):
        declared("bad", ["x", "x"])


@pytest.mark.parametrize("name", ["letters-4", "int-000-999", "int-0-999", "int-00-99"])
def test_solution_set_named(name):
    assert solution_set_named(name).name == name


def test_solution_set_named_none_and_unknown():
    assert solution_set_named("none") is None
    with pytest.raises(TaskError, match=r"Unknown solution set 'digits'\. Use letters-N, int-LO-HI"):
        solution_set_named("digits")


def test_integers_bad_bounds():
    with pytest.raises(TaskError, match="need lo <= hi"):
        integers(10, 1)
