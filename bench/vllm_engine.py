"""The vllm engine against raw `LLM.generate`: the same demo unit's requests, the same tokens out.

A demo unit (demo-arith, nested forcing with continuations, every budget, forced answers and solution-set
scoring) runs through ttscale's vllm engine, which records every request it hands vLLM and the round it
belongs to (a continuation is the round after the request it follows). The same requests then run through
raw `LLM.generate` on the same engine, one call per round and phase, as a script without ttscale's step loop
would run them. The tokens out must be identical; the goal is ttscale's throughput >= 0.9× raw's
(raw wall / ttscale wall, the same tokens either way).

Then the cost of scoring a large solution set, the AIME case (int-0-999: 1,000 candidates and the closing-brace
set): `--score-rows` forced-answer prefixes with thinking of `--score-thinking` tokens, scored by the vllm engine
and by the hf engine's tree attention. Printed: vLLM requests per row, prompt tokens per row served from the
prefix cache and computed (the computed ones are each request's partial last block plus its trie path: the
cost model of docs/benchmarks.md), rows/s of both, and the largest |Δ log p| between them.

    .venv-vllm/bin/python bench/vllm_engine.py [--problems 4] [--seeds 2] [--budgets 16,32,64,128,256]
                                               [--score-rows 3] [--score-thinking 128] [--solution-set int-0-999]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--budgets", default="16,32,64,128,256")
    parser.add_argument("--dtype", default="float32", help="float32 on CPUs without AVX-512 (bf16 is emulated)")
    parser.add_argument("--model", default="smollm2-135m", help="an alias, a local directory or a cached hub id")
    parser.add_argument("--family", default="smollm2", help="the model's family (deepseek-r1-distill, ...)")
    parser.add_argument("--score-rows", type=int, default=3, help="rows scored over --solution-set (0: skip)")
    parser.add_argument("--score-thinking", type=int, default=128, help="thinking tokens before each forced answer")
    parser.add_argument("--solution-set", default="int-0-999")
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]

    from ttscale.engines import vllm as vllm_engine
    from ttscale.families import get_family
    from ttscale.forcing import ForcingConfig
    from ttscale.runner import RunSettings, run_unit
    from ttscale.tasks import get_task

    recorded: list[tuple[int, int, tuple[int, ...], object]] = []  # (call, round, prompt ids, params)
    produced: list[tuple[tuple[int, int], tuple[int, ...]]] = []  # ((call, round), token ids out)
    rounds: dict[tuple[int, int], int] = {}
    request_round: dict[str, tuple[int, int]] = {}
    original_add, original_finished = vllm_engine._StepLoop._add, vllm_engine._StepLoop._finished

    def recording_add(self, call, index, request, tokens_prompt):
        key = (id(call), index)
        rounds[key] = rounds.get(key, -1) + 1
        recorded.append((id(call), rounds[key], request.prompt_ids, request.params))
        original_add(self, call, index, request, tokens_prompt)
        request_round[next(reversed(self.owners))] = (id(call), rounds[key])  # the request id just added

    def recording_finished(self, output, tokens_prompt):
        produced.append((request_round[output.request_id], tuple(output.outputs[0].token_ids)))
        original_finished(self, output, tokens_prompt)

    vllm_engine._StepLoop._add, vllm_engine._StepLoop._finished = recording_add, recording_finished
    import torch

    cpu_only = {} if torch.cuda.is_available() else {"kv_cache_gib": 2}
    engine = vllm_engine.VLLMEngine(args.model, dtype=args.dtype, max_model_len=4096, **cpu_only)
    task = get_task("demo-arith")
    settings = RunSettings(model=args.model, engine="vllm", family=get_family(args.family),
                           forcing=ForcingConfig(), dtype=args.dtype)  # fmt: skip
    problems = task.load(args.problems)
    run_unit(engine, task, problems[:1], seeds=[0], budgets=budgets[:1], settings=settings)  # warm-up
    recorded.clear()
    produced.clear()
    engine.llm.reset_prefix_cache()
    start = time.perf_counter()
    result = run_unit(engine, task, problems, seeds=list(range(args.seeds)), budgets=budgets, settings=settings)
    ours = time.perf_counter() - start
    engine._loop.stop()

    engine.llm.reset_prefix_cache()
    calls = list(dict.fromkeys(call for call, *_ in recorded))
    batches = defaultdict(list)
    for call, round_, prompt, params in recorded:
        batches[calls.index(call), round_].append((prompt, params))
    from vllm.inputs import TokensPrompt

    raw_out = []
    start = time.perf_counter()
    for key in sorted(batches):
        prompts = [TokensPrompt(prompt_token_ids=list(p)) for p, _ in batches[key]]
        outputs = engine.llm.generate(prompts, [params for _, params in batches[key]], use_tqdm=False)
        raw_out.extend((key, tuple(o.outputs[0].token_ids)) for o in outputs)
    raw = time.perf_counter() - start

    order = {call: i for i, call in enumerate(calls)}
    same = sorted(((order[c], r), t) for (c, r), t in produced) == sorted(raw_out)
    tokens = sum(len(t) for _, t in raw_out)
    print(
        f"demo unit: {args.problems} problems x {args.seeds} seeds, budgets {budgets}, {len(result.rows)} rows, "
        f"{len(recorded)} vLLM requests in {len(batches)} rounds, {tokens} tokens out, dtype {args.dtype}"
    )
    print(f"ttscale vllm engine: {ours:7.2f} s  ({tokens / ours:,.0f} tok/s)")
    print(f"raw LLM.generate:    {raw:7.2f} s  ({tokens / raw:,.0f} tok/s), one call per round")
    print(f"same tokens out: {same}")
    print(verdict("throughput ttscale / raw", raw / ours, 0.9, lower_is_better=False))
    engine._loop = vllm_engine._StepLoop(engine.llm.llm_engine, on_tokens=engine._count)  # the bench stopped it
    engine._loop.start()
    if args.score_rows:
        score_large_set(engine, args)
    engine.close()  # shut vLLM's engine-core process down: never leave it running


def score_large_set(engine, args) -> None:
    """Score `--score-rows` forced-answer prefixes over the solution set on vLLM and on hf; print the cost per row."""
    import numpy as np

    from ttscale.engines.base import ScoreRequest
    from ttscale.engines.hf import HFEngine
    from ttscale.engines.vllm import _score_plan
    from ttscale.scoring import build_trie, candidate_logprobs
    from ttscale.tasks.solution_sets import solution_set_named

    solutions = solution_set_named(args.solution_set)
    trie = build_trie([engine.encode(c) for c in solutions.candidates], closing=sorted(engine.closing_brace_ids))
    asks = _score_plan(trie).asks
    thinking = engine.encode(" ".join(f"Step {i}: 91 = 7 x 13, so {i} is not the answer." for i in range(200)))
    prefixes = []
    for i in range(args.score_rows):
        prompt = engine.chat_prompt_ids(
            [{"role": "user", "content": f"Find the remainder of {7 + i}^{100 + i} mod 1000."}]
        )
        tail = engine.encode("\n\n**Final Answer**\n\\boxed{")
        prefixes.append((*prompt, *thinking[i : i + args.score_thinking], *tail))
    engine.score([ScoreRequest(prefixes[0][:-3], trie)])  # warm-up on another prefix: compiled paths, allocations
    cached, start = engine.cached_prompt_tokens, time.perf_counter()
    ours = [engine.score([ScoreRequest(p, trie)])[0] for p in prefixes]  # a row at a time, as a unit scores them
    vllm_s = time.perf_counter() - start
    prompt_tokens = sum(len(p) + len(path) for p in prefixes for path, _ in asks)
    from_cache = engine.cached_prompt_tokens - cached

    hf = HFEngine(args.model, threads=2)
    hf.score([ScoreRequest(prefixes[0][:-3], trie)])
    start = time.perf_counter()
    theirs = [hf.score([ScoreRequest(p, trie)])[0] for p in prefixes]
    hf_s = time.perf_counter() - start
    delta = max(
        float(np.max(np.abs(candidate_logprobs(trie, a) - candidate_logprobs(trie, b))))
        for a, b in zip(ours, theirs, strict=True)
    )
    rows = len(prefixes)
    block = engine.llm.llm_engine.vllm_config.cache_config.block_size
    print(
        f"\nscoring {args.solution_set}: {len(solutions)} candidates, {len(trie.tokens)} trie nodes, {rows} rows with "
        f"prefixes of {min(map(len, prefixes))}-{max(map(len, prefixes))} tokens, block size {block}"
    )
    computed = prompt_tokens - from_cache
    print(f"vllm engine: {len(asks)} requests per row; prompt tokens per row {prompt_tokens / rows:,.0f}, of which "
          f"{from_cache / rows:,.0f} from the prefix cache and {computed / rows:,.0f} computed")  # fmt: skip
    print(f"vllm engine: {rows / vllm_s:.3f} rows/s ({vllm_s / rows:.1f} s per row)")
    print(f"hf engine (tree attention, one forward over {len(trie.tokens)} nodes): {rows / hf_s:.3f} rows/s "
          f"({hf_s / rows:.1f} s per row)")  # fmt: skip
    print(f"max |Δ log p| over every candidate, vllm vs hf: {delta:.1e}")


if __name__ == "__main__":
    main()
