"""What the runner derives from a tokenizer (forcing ids, candidate tries) belongs to one engine.

The engines here are FakeEngine doubles that differ only in their tokenizer: what is checked is that no
engine is ever given another's token ids, not anything about a model."""

import gc
from dataclasses import replace

from ttscale.engines.fake import FakeEngine
from ttscale.families import get_family
from ttscale.runner import _forcing_tokens, _trie
from ttscale.tasks.solution_sets import integers

DIGITS = b"0123456789"


class RelabelledDigits(FakeEngine):
    """A fake whose tokenizer writes digit d as byte DIGITS[(d + shift) % 10]: same vocabulary, other ids."""

    def __init__(self, shift: int) -> None:
        super().__init__()
        self.table = bytes.maketrans(DIGITS, DIGITS[shift:] + DIGITS[:shift])

    def encode(self, text: str) -> list[int]:
        return list(super().encode(text)) if text == "</think>" else list(text.encode().translate(self.table))


def freed() -> None:
    """Free what the last engine left: the young generations hold it (a full collection walks the whole session's
    heap, ~1 s each with torch and Ray imported, 200 times)."""
    gc.collect(1)


def test_engines_created_one_after_another_never_share_a_trie():
    # CPython reuses the id of a freed engine: caches keyed by id(engine) handed later engines stale tries.
    solutions = integers(0, 99)
    wrong, ids = 0, []
    for n in range(200):
        engine = RelabelledDigits(shift=n % 10)
        ids.append(id(engine))
        trie = _trie(engine, solutions)
        wrong += sorted(map(tuple, trie.paths())) != sorted(tuple(engine.encode(c)) for c in solutions.candidates)
        del engine, trie
        freed()
    assert len(set(ids)) < len(ids), "no engine id was reused: this test would not catch an id-keyed cache"
    assert wrong == 0


def test_forcing_tokens_follow_the_engine_they_were_built_for():
    family = replace(get_family("deepseek-r1-distill"), continuation="\nWait, 7")
    wrong, ids = 0, []
    for n in range(200):
        engine = RelabelledDigits(shift=n % 10)
        ids.append(id(engine))
        wrong += _forcing_tokens(engine, family).continuation_ids != tuple(engine.encode(family.continuation))
        del engine
        freed()
    assert len(set(ids)) < len(ids), "no engine id was reused: this test would not catch an id-keyed cache"
    assert wrong == 0


def test_a_trie_is_built_once_per_engine():
    engine = RelabelledDigits(shift=3)
    assert _trie(engine, integers(0, 9)) is _trie(engine, integers(0, 9))
    assert list(_trie(engine, integers(0, 9)).closing) == [ord("}")]
