"""The vllm engine against raw `LLM.generate`: the same demo unit's requests, the same tokens out.

A demo unit (demo-arith, nested forcing with continuations, every budget, forced answers and solution-set
scoring) runs through ttscale's vllm engine, which records every request it hands vLLM and the round it
belongs to (a continuation is the round after the request it follows). The same requests then run through
raw `LLM.generate` on the same engine, one call per round and phase, as a script without ttscale's step loop
would run them. The tokens out must be identical; the goal is ttscale's throughput >= 0.9× raw's
(raw wall / ttscale wall, the same tokens either way).

    .venv-vllm/bin/python bench/vllm_engine.py [--problems 4] [--seeds 2] [--budgets 16,32,64,128,256]
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
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]

    from ttscale.actors.engines import vllm as vllm_engine
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
    engine.close()  # shut vLLM's engine-core process down: never leave it running


if __name__ == "__main__":
    main()
