"""The GPU recipes for pretrained models, run whole at tiny width on CPU: the same config files, the same jobs and
code paths, with the stand-in "downloaded" model of tests/pretrained.py and a handful of steps (the overrides below
are the only difference)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reasonpipe.textformat import TextFormat

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning", "ignore::DeprecationWarning")


def test_how_much_backtracking_on_a_pretrained_model(tmp_path, cli, pretrained_model):
    """configs/hmb-qwen2.5.yaml: k-backtrack traces -> SFT in the answer layout -> accuracy -> GRPO -> accuracy."""
    result = cli("ksweep", "--config", REPO / "configs" / "hmb-qwen2.5.yaml", "--runs_dir", tmp_path, "--name", "hmb",
                 "--sft.model", pretrained_model, "--ks", "[1]", "--traces", "24", "--workers", "1",
                 "--sft.max_steps", "4", "--sft.batch_size", "4", "--sft.grad_accum", "1", "--sft.heldout", "4",
                 "--sft.diagnostics_every", "0", "--eval_problems", "4", "--samples", "2", "--max_new_tokens", "48",
                 "--rl.max_steps", "1", "--rl.problems", "4", "--rl.probe_problems", "2", "--rl.probe_ks", "[1, 2]",
                 "--rl.prompts_per_step", "2", "--rl.num_generations", "2", "--rl.use_vllm", "false",
                 "--rl.max_completion_length", "48", "--quiet", "true")
    assert result.code == 0, result.err
    k1 = tmp_path / "hmb" / "k1"
    answer = TextFormat("model", "plain", "answer")
    assert TextFormat.load(str(k1 / "sft" / "final")) == answer == TextFormat.load(str(k1 / "rl" / "final"))
    row = json.loads((tmp_path / "hmb" / "results.jsonl").read_text().splitlines()[0])
    assert row["sft"]["tokens"]["traces"] == 4 and row["sft"]["tokens"]["task_total"] > 0  # measured in its format
    assert (k1 / "sft" / "tensorboard").is_dir() and (k1 / "rl" / "tensorboard").is_dir()
    with open(k1 / "traces.jsonl") as f:
        assert all(json.loads(line)["meta"]["backtracks"] == 1 for line in f)


@pytest.mark.vllm
def test_tinyzero_countdown_grpo_from_the_base_model(tmp_path, pretrained_model):
    """configs/tinyzero-countdown-grpo.yaml: GRPO from the pretrained model, vLLM colocated, shaped reward (the
    command in a process of its own: vLLM writes to the real stdout, which pytest's capture is not)."""
    out = tmp_path / "tz"
    result = subprocess.run(
        [sys.executable, "-m", "reasonpipe", "rl", "--config", "configs/tinyzero-countdown-grpo.yaml", "--model",
         pretrained_model, "--out", str(out), "--problems", "8", "--probe_problems", "2", "--probe_ks", "[1, 2]",
         "--probe_every", "0", "--prompts_per_step", "2", "--max_steps", "2", "--max_completion_length", "24",
         "--trl.gradient_accumulation_steps", "2", "--device", "cpu", "--quiet", "true"],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["vllm_sync_checks"] == 2 and summary["vllm_sync_max_logprob_gap"] < 1e-3
    args = json.loads((out / "manifest.json").read_text())["config"]
    assert args["trl"] == {"gradient_accumulation_steps": 2} and args["reward"] == "shaped" and args["beta"] == 0.001
    assert TextFormat.load(str(out / "final")) == TextFormat("model", "plain", "answer")
