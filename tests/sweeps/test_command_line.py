"""`ttscale convert` on the original study's launch command lines and run scripts (issue 22, item 4): flags are the
original's keys, a script's own variables are expanded, and what needs a shell to resolve is refused in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ttscale.errors import ConfigError
from ttscale.sweeps.command_line import read_commands
from ttscale.sweeps.original import convert_commands, convert_file, load_sweep, parse_sweep

RUN_SCRIPT = r"""#!/bin/bash
#SBATCH --gres=gpu:1
start_token_budget=7
end_token_budget=10   # 2^10
export model="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
# python3 main.py --model_name old/model --dataset_name gpqa --start_token_budget 1 --end_token_budget 2

python3 main.py --batch_size 5 --start_token_budget $start_token_budget --end_token_budget ${end_token_budget} \
    --sample_idxs_range "(130,198)" --model_name $model \
    --dataset_name Idavidrein/gpqa --num_completions 5 --quantization None \
    --normalise_over_solution_set --SAVE_BOOL --inference_engine vllm \
    --vllm_gpu_memory_utilization 0.7 --max_new_tokens_frac 0.0625
"""
AS_YAML = {
    "batch_size": 5, "start_token_budget": 7, "end_token_budget": 10, "sample_idxs_range": [130, 198],
    "model_name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "dataset_name": "Idavidrein/gpqa", "num_completions": 5,
    "quantization": None, "normalise_over_solution_set": True, "SAVE_BOOL": True, "inference_engine": "vllm",
    "vllm_gpu_memory_utilization": 0.7, "max_new_tokens_frac": 0.0625,
}  # fmt: skip


def test_a_run_script_reads_as_the_config_its_command_stands_for():
    [command] = read_commands(RUN_SCRIPT, "run.sh")  # the commented-out command stays out
    assert command.line == 8 and command.config == AS_YAML


def test_a_run_script_converts_to_the_same_sweep_as_its_yaml_config(tmp_path):
    script = tmp_path / "gpqa_7b.sh"
    script.write_text(RUN_SCRIPT)
    config = tmp_path / "gpqa_7b.yaml"
    config.write_text(yaml.safe_dump({k: "None" if v is None else v for k, v in AS_YAML.items()}))
    from_script, from_yaml = convert_file(script), convert_file(config)
    assert parse_sweep(from_script, script).spec == parse_sweep(from_yaml, config).spec
    out = tmp_path / "native.yaml"
    with pytest.warns(Warning):  # the notes (ignored keys, what differs) are said when written to a file
        convert_file(script, out)
    assert load_sweep(out).spec.models[0].engine == "vllm"


def test_several_commands_make_one_sweep_of_their_models_and_datasets():
    command = RUN_SCRIPT.split("\n", 7)[7]
    script = RUN_SCRIPT + 'model="deepseek-ai/DeepSeek-R1-Distill-Qwen-14B"  # the next command uses it\n' + command
    native = yaml.safe_load(convert_commands(script, Path("both.sh")))
    assert [m["name"] for m in native["models"]] == [
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
    ]  # fmt: skip
    differing = RUN_SCRIPT + command.replace("--num_completions 5", "--num_completions 3")
    with pytest.raises(ConfigError, match=r"lines 8 and 13 differ in --num_completions \(5 and 3\)"):
        convert_commands(differing, Path("two.sh"))


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("budget=$(cat b.txt)\npython3 main.py --start_token_budget $budget", r"line 1: command substitution"),
        ("python3 main.py --model_name $MODEL", r"line 1: `\$MODEL` is not set by the script before this line"),
        ("for m in a b; do\n  python3 main.py --model_name $m\ndone", r"line 1: `for` decides how often"),
        ("python3 main.py --start_token_budget $((3+4))", r"arithmetic|command substitution"),
        ("python3 main.py gpqa", r"`gpqa` is not a `--key value` argument"),
        ("echo nothing to run", r"holds no `python main.py \.\.\.` command"),
        ('python3 main.py --model_name "unclosed', r"No closing quotation\. Close the quotes"),
    ],
)
def test_what_needs_a_shell_to_resolve_is_refused_in_one_line(script, message):
    with pytest.raises(ConfigError, match=message) as raised:
        read_commands(script, "job.sh")
    assert "\n" not in str(raised.value) and str(raised.value).startswith("job.sh")


def test_ttscale_convert_takes_a_command_line_in_quotes():
    command = ("python3 main.py --model_name deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B --dataset_name aime_2024 "
               "--start_token_budget 7 --end_token_budget 9 --num_completions 2")  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "ttscale.cli", "convert", command], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    native = yaml.safe_load(proc.stdout)
    assert native["budgets"] == {"log2": [7, 9]} and native["seeds"] == 2 and native["name"] == "command-line"
    bad = subprocess.run([sys.executable, "-m", "ttscale.cli", "convert", "python3 main.py --model_name $M"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode != 0 and "`$M` is not set" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
