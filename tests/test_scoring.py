"""The trie and the continuous metrics, on hand-computed numbers."""

import math

import numpy as np
import pytest

from ttscale.metrics import set_metrics
from ttscale.scoring import TrieScores, build_trie, candidate_logprobs, log_mass


def test_trie_shares_prefixes_and_orders_parents_first():
    trie = build_trie([[1, 2, 9], [1, 3, 9], [4, 9]])
    assert trie.num_nodes == 7  # 1, 4 | 2, 3, 9 | 9, 9
    assert all(trie.parents[n] < n for n in range(trie.num_nodes))
    assert sorted(map(tuple, trie.paths())) == [(1, 2, 9), (1, 3, 9), (4, 9)]
    assert set(trie.internal) == {n for n in range(trie.num_nodes) if n in set(trie.parents)}


def test_trie_rejects_duplicate_and_empty_candidates():
    with pytest.raises(ValueError, match="same token sequence"):
        build_trie([[1, 2], [1, 2]])
    with pytest.raises(ValueError, match="zero tokens"):
        build_trie([[1], []])


def test_candidate_logprobs_sum_along_paths():
    trie = build_trie([[1, 2], [1, 3], [4]])
    node_lp = np.zeros(trie.num_nodes)
    for n in range(trie.num_nodes):
        node_lp[n] = -(n + 1) * 0.1
    paths = trie.paths()
    expected = []
    for leaf in trie.leaves:
        total, node = 0.0, int(leaf)
        while node >= 0:
            total += node_lp[node]
            node = int(trie.parents[node])
        expected.append(total)
    assert np.allclose(candidate_logprobs(trie, TrieScores(node_lp, np.zeros(3))), expected)
    assert len(paths) == 3


def test_candidates_close_with_the_summed_mass_of_every_closing_token():
    # METHOD.md §5: P(c) = P(c's tokens) · Σ_{t ∈ closing} P(t | c), the closing set being every `}`-initial token.
    trie = build_trie([[1], [1, 2], [4]], closing=[9, 7, 9])
    assert list(trie.closing) == [7, 9]
    one, two, four = trie.leaves
    assert trie.parents[two] == one  # "1" ends where "12" goes on: an end with a child
    assert set(trie.expanded) == {one, two, four}  # every end needs its next-token distribution
    assert set(build_trie([[1], [1, 2], [4]]).expanded) == {one}  # without a closing set: parents only
    node_lp = np.log([0.5, 0.2, 0.25])[np.argsort([one, four, two])]  # p(1), p(4), p(2 | 1) by node id
    close = np.log([0.6, 0.7, 0.9])  # closing mass after "1", "12", "4"
    got = candidate_logprobs(trie, TrieScores(node_lp, close))
    assert np.allclose(np.exp(got), [0.5 * 0.6, 0.5 * 0.25 * 0.7, 0.2 * 0.9])


def test_log_mass_sums_probabilities_of_the_given_ids():
    logprobs = np.log(np.array([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]]))
    assert np.allclose(np.exp(log_mass(logprobs, np.array([1, 3]))), [0.6, 0.5])
    assert np.allclose(log_mass(logprobs, np.array([], dtype=np.int64)), 0.0)


def test_ancestor_matrix_is_reflexive_and_transitive():
    trie = build_trie([[1, 2, 3], [1, 2, 4], [5, 6]])
    internal = trie.internal
    anc = trie.ancestors(internal)
    assert anc.diagonal().all()
    for i, node in enumerate(internal):
        parent = trie.parents[node]
        if parent >= 0:
            j = list(internal).index(parent)
            assert anc[i, j] and not anc[j, i]


def test_set_metrics_on_a_known_distribution():
    p = np.array([0.5, 0.25, 0.125, 0.125])
    logp = np.log(p * 0.8)  # 80% of the mass lands on the set
    m = set_metrics(logp, gold_index=1)
    assert m.p_correct == pytest.approx(0.25)
    assert m.logp_correct == pytest.approx(math.log(0.25))
    assert m.rank == 2
    assert m.mass_on_set == pytest.approx(0.8)
    entropy = -float(np.sum(p * np.log(p)))
    assert m.entropy == pytest.approx(entropy)
    assert m.entropy_norm == pytest.approx(entropy / math.log(4))
    assert m.brier == pytest.approx(0.5**2 + 0.75**2 + 2 * 0.125**2)
    assert m.distribution.dtype == np.float32 and m.distribution.sum() == pytest.approx(1.0)


def test_ties_share_the_best_rank_and_missing_gold_gives_nulls():
    logp = np.log([0.4, 0.4, 0.2])
    assert set_metrics(logp, gold_index=1).rank == 1
    assert set_metrics(logp, gold_index=2).rank == 3
    m = set_metrics(logp, gold_index=None)
    assert m.p_correct is None and m.rank is None and m.brier is None
    assert m.entropy > 0


def test_tiny_probabilities_keep_finite_log_p_correct():
    logp = np.array([0.0, -2000.0])  # exp(-2000) underflows to 0 in float64
    m = set_metrics(logp, gold_index=1)
    assert m.p_correct == 0.0
    assert m.logp_correct == pytest.approx(-2000.0)
