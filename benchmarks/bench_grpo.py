"""GRPO throughput: steps/s and rollout tokens/s of our recipe against TRL's default settings, same model, same run.

Each variant runs ``--steps`` GRPO steps from the same checkpoint on the same problems; rows give steps/s,
completions/s and generated tokens/s (completion tokens over wall time, rollouts and updates included), with
the ratio to TRL's defaults (``GRPOConfig`` with only what the task needs: 8 completions per step, 8 per prompt,
256 completion tokens at most). Variants: ``trl_defaults``, ``ours`` (the recipe's batch: 4 prompts x 16
generations), ``ours_vllm`` (the same with TRL's colocated vLLM, where vLLM imports).

Example::

    OMP_NUM_THREADS=1 python benchmarks/bench_grpo.py --model runs/demo-cpu/models/direct/final --steps 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_traces import emit  # noqa: E402
from reasonpipe.rl import RLConfig, train  # noqa: E402

TASK_OPTIONS = {"numbers": 3, "max_number": 9, "target_min": 10, "target_max": 49}


def run(name: str, model: str, steps: int, tmp: str, **overrides) -> dict:
    cfg = RLConfig(model=model, out=os.path.join(tmp, name), task="countdown", task_options=TASK_OPTIONS,
                        problems=64, probe_problems=1, probe_ks=[1], probe_every=0, max_steps=steps,
                        save_every=10**6, log_every=1, quiet=True, resume="never", **overrides)
    started = time.perf_counter()
    summary = train(cfg)
    wall = time.perf_counter() - started
    with open(os.path.join(cfg.out, "metrics.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if '"completions/mean_length"' in line]
    completions = cfg.prompts_per_step * cfg.num_generations * len(rows)
    tokens = sum(r["completions/mean_length"] for r in rows) * cfg.prompts_per_step * cfg.num_generations
    seconds = summary["train_seconds"]
    return {"steps_per_s": len(rows) / seconds, "completions_per_s": completions / seconds,
            "tokens_per_s": tokens / seconds, "steps": len(rows), "train_seconds": seconds, "wall_seconds": round(wall, 1),
            "completions_per_step": cfg.prompts_per_step * cfg.num_generations,
            "mean_completion_tokens": round(tokens / max(completions, 1), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="runs/demo-cpu/models/direct/final", help="an SFT checkpoint folder")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = run("trl_defaults", args.model, args.steps, tmp, num_generations=8, prompts_per_step=1,
                   max_completion_length=256, lr=1e-6)
        emit("grpo_trl_defaults", base["tokens_per_s"], "generated tokens/s", **base)
        ours = run("ours", args.model, args.steps, tmp, num_generations=16, prompts_per_step=4,
                   max_completion_length=160, lr=1e-4)
        emit("grpo_ours", ours["tokens_per_s"], "generated tokens/s", **ours,
             ratio_tokens_per_s=round(ours["tokens_per_s"] / base["tokens_per_s"], 2))
        try:
            import vllm  # noqa: F401
        except ImportError as e:
            emit("grpo_ours_vllm", None, "generated tokens/s", unmeasured=f"vllm does not import: {e}")
            return
        fast = run("ours_vllm", args.model, args.steps, tmp, num_generations=16, prompts_per_step=4,
                   max_completion_length=160, lr=1e-4, use_vllm=True)
        emit("grpo_ours_vllm", fast["tokens_per_s"], "generated tokens/s", **fast,
             ratio_tokens_per_s=round(fast["tokens_per_s"] / base["tokens_per_s"], 2))


if __name__ == "__main__":
    main()
