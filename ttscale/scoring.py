"""Solution-set scoring: the candidate trie and candidate log-probabilities over it (METHOD.md §5).

Everything here is numpy. An engine fills in one number per trie node, log P(token | prefix, ancestors),
and one per candidate, log Σ_{t ∈ closing} P(t | prefix, candidate): the probability that the answer
closes right after it, summed over every token whose text begins with `}` (`}`, `}$`, `}.`, `}\\n\\n`, …),
from **raw logits at temperature 1** (no top-k, top-p or penalties); this module turns those numbers into
candidate log-probabilities; the per-row metrics over the set are declared in ttscale/metrics.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Trie:
    """Candidate token sequences merged on shared prefixes; nodes are in breadth-first order.

    Node n holds token `tokens[n]` at depth `depths[n]` (1 = first token after the prefix) under
    `parents[n]` (-1 for a child of the root, i.e. of the prefix's last token). Breadth-first order means
    every parent comes before its children, which the engines and `candidate_logprobs` rely on.

    `closing` is the set of token ids that may end a candidate (METHOD.md §5: every token whose text
    begins with `}`): P(c) = P(c's tokens) · Σ_{t ∈ closing} P(t | c). An empty set scores the candidates'
    token sequences alone. A candidate may end inside another's path ("1" and "12"): `leaves` are then
    nodes with children.
    """

    tokens: np.ndarray  # (N,) int64
    parents: np.ndarray  # (N,) int64, -1 = root
    depths: np.ndarray  # (N,) int64, >= 1
    leaves: np.ndarray  # (|S|,) int64: the node where candidate c ends
    closing: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # (K,) int64, sorted

    @property
    def num_nodes(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def expanded(self) -> np.ndarray:
        """Nodes whose next-token distribution scoring needs, breadth-first: parents of other nodes, and
        every candidate's end when there is a closing set."""
        needed = np.zeros(self.num_nodes, dtype=bool)
        needed[self.parents[self.parents >= 0]] = True
        if len(self.closing):
            needed[self.leaves] = True
        return np.flatnonzero(needed)

    @property
    def internal(self) -> np.ndarray:
        """Indices of nodes with children (`expanded` without a closing set). Kept public for tests/test_scoring.py,
        which checks `ancestors` on it; the engines score `expanded`."""
        has_child = np.zeros(self.num_nodes, dtype=bool)
        has_child[self.parents[self.parents >= 0]] = True
        return np.flatnonzero(has_child)

    def ancestors(self, nodes: np.ndarray) -> np.ndarray:
        """Boolean matrix A[i, j] = node nodes[j] is nodes[i] or one of its ancestors (nodes closed upward)."""
        position = np.full(self.num_nodes, -1, dtype=np.int64)
        position[nodes] = np.arange(len(nodes))
        anc = np.zeros((len(nodes), len(nodes)), dtype=bool)
        anc[np.arange(len(nodes)), np.arange(len(nodes))] = True
        for i, node in enumerate(nodes):  # BFS order: a parent's row is complete before its children's
            parent = self.parents[node]
            if parent >= 0:
                anc[i] |= anc[position[parent]]
        return anc

    def paths(self) -> list[list[int]]:
        """The token sequence of every candidate (for brute-force checks)."""
        out = []
        for leaf in self.leaves:
            seq, node = [], int(leaf)
            while node >= 0:
                seq.append(int(self.tokens[node]))
                node = int(self.parents[node])
            out.append(seq[::-1])
        return out


def build_trie(candidates: Sequence[Sequence[int]], closing: Sequence[int] = ()) -> Trie:
    """Merge candidate token sequences into a breadth-first trie; candidates must be distinct and non-empty.

    `closing`: the token ids that close a candidate (see `Trie`); none by default."""
    children: list[dict[int, int]] = [{}]  # per node (0 = root) its token -> child map, in insertion order
    node_token, node_parent, end_nodes = [0], [-1], []
    for seq in candidates:
        if len(seq) == 0:
            raise ValueError("a solution-set candidate tokenised to zero tokens")
        node = 0
        for tok in seq:
            nxt = children[node].get(int(tok))
            if nxt is None:
                nxt = len(node_token)
                children[node][int(tok)] = nxt
                children.append({})
                node_token.append(int(tok))
                node_parent.append(node)
            node = nxt
        end_nodes.append(node)
    if len(set(end_nodes)) != len(end_nodes):
        raise ValueError("two solution-set candidates tokenise to the same token sequence")
    # Renumber breadth-first, dropping the root: new id = BFS rank - 1.
    order, depth = [], {0: 0}
    frontier = [0]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for child in children[node].values():
                depth[child] = depth[node] + 1
                order.append(child)
                nxt_frontier.append(child)
        frontier = nxt_frontier
    new_id = {old: i for i, old in enumerate(order)}
    new_id[0] = -1
    return Trie(
        tokens=np.array([node_token[o] for o in order], dtype=np.int64),
        parents=np.array([new_id[node_parent[o]] for o in order], dtype=np.int64),
        depths=np.array([depth[o] for o in order], dtype=np.int64),
        leaves=np.array([new_id[e] for e in end_nodes], dtype=np.int64),
        closing=np.unique(np.asarray(list(closing), dtype=np.int64)),
    )


@dataclass(frozen=True)
class TrieScores:
    """What an engine computes for one prefix and one trie, from raw logits at temperature 1."""

    node_logprobs: np.ndarray  # (N,) log p(node token | prefix, node's ancestors)
    close_logprobs: np.ndarray  # (|S|,) log Σ_{t ∈ closing} p(t | prefix, candidate c); 0 without a closing set


def candidate_logprobs(trie: Trie, scores: TrieScores) -> np.ndarray:
    """log P(c) = Σ_t log p(token_t | prefix, c_<t) + log Σ_{t ∈ closing} p(t | prefix, c): (|S|,)."""
    cum = np.array(scores.node_logprobs, dtype=np.float64)
    for depth in range(2, int(trie.depths.max(initial=1)) + 1):
        level = np.flatnonzero(trie.depths == depth)
        cum[level] += cum[trie.parents[level]]
    return cum[trie.leaves] + np.asarray(scores.close_logprobs, dtype=np.float64)


def log_mass(logprobs: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """log Σ_{t ∈ ids} p(t) from log-probs over the vocabulary (..., V): (...,); 0 (all mass) for no ids."""
    if len(ids) == 0:
        return np.zeros(logprobs.shape[:-1])
    picked = np.asarray(logprobs, dtype=np.float64)[..., ids]  # (..., K)
    top = picked.max(axis=-1, keepdims=True)
    finite = np.where(np.isfinite(top), top, 0.0)
    return (finite + np.log(np.exp(picked - finite).sum(axis=-1, keepdims=True)))[..., 0]
