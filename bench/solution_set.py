"""Trie scoring vs brute force for the 1000-integer AIME set from a 256-token prefix (SmolLM2, CPU).

Brute force runs one full-context forward per candidate; the trie runs the prefix once and every trie
node in one tree-attention forward. Prints both timings, the speed-up (goal >= 20x) and the largest
log-prob difference (must be < 1e-4).

    python bench/solution_set.py [--candidates 1000]   # fewer brute-force candidates extrapolate linearly
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import threads, timed, verdict

from ttscale.engines.base import GenerationRequest, Sampling, ScoreRequest
from ttscale.engines.hf import HFEngine
from ttscale.scoring import build_trie, candidate_logprobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--candidates", type=int, default=100, help="brute-force this many, evenly spaced (of 1000); time scaled"
    )
    parser.add_argument("--prefix", type=int, default=256, help="thinking tokens before the forced answer")
    args = parser.parse_args()

    engine = HFEngine("smollm2-135m", threads=threads())
    prompt = engine.chat_prompt_ids([{"role": "user", "content": "Find the remainder when 2^100 is divided by 7."}])
    [thinking] = engine.generate(
        [GenerationRequest(tuple(prompt), args.prefix, frozenset(), seed=0, sampling=Sampling(temperature=0.8))]
    )
    prefix = (*prompt, *thinking.token_ids, *engine.encode("\n\n**Final Answer**\n\\boxed{"))
    candidates = [engine.encode(f"{n:03d}") for n in range(1000)]
    closing = sorted(engine.closing_brace_ids)  # every `}`-initial token closes a candidate (METHOD §5)
    trie = build_trie(candidates, closing=closing)
    seconds = {}
    engine.cache.clear()
    with timed(seconds, "trie"):  # includes the prefix forward, as a fresh forced answer would
        tree = candidate_logprobs(trie, engine.score([ScoreRequest(prefix, trie)])[0])
    picks = np.linspace(0, 999, args.candidates).round().astype(int)
    with timed(seconds, "brute"):
        brute = engine.score_bruteforce(prefix, [candidates[i] for i in picks], closing=closing)
    brute_total = seconds["brute"] * 1000 / len(picks)
    diff = float(np.max(np.abs(tree[picks] - brute)))
    print(f"prefix {len(prefix)} tokens, 1000 candidates, {trie.num_nodes} trie nodes ({len(trie.expanded)} run)")
    print(f"trie        {seconds['trie']:8.2f} s")
    print(f"brute force {brute_total:8.2f} s" + ("" if len(picks) == 1000 else f"  ({len(picks)} run, scaled)"))
    print(f"max |log p trie - log p brute| = {diff:.2e}  ({'OK' if diff < 1e-4 else 'MISMATCH'})")
    print(verdict("speed-up brute/trie", brute_total / seconds["trie"], 20, lower_is_better=False))


if __name__ == "__main__":
    main()
