"""GRPO steps/s and generated tokens/s with 1 and 2 data-parallel workers (reasonpipe.rl on Ray Train), the same
global batch, on this machine, with rollouts from transformers (each worker its slice) or from a vLLM server the job
starts (``vllm_mode: server``: rank 0 asks it for every worker's rollouts; the weights pushed and checked every
step); one JSON row per run appended to ``benchmarks/results/grpo-workers.jsonl`` (host, device, versions). The same
script on a GPU cluster: ``--device cuda`` with RAY_ADDRESS set, and a larger ``--model`` / batch.

Example::

    python benchmarks/grpo_workers.py --steps 6 --workers 1 2 --rollouts transformers server
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def model_folder(args: argparse.Namespace, folder: str) -> str:
    """``--model`` as a folder vLLM can load (a size name: a fresh model of that size, seed 0, saved)."""
    if os.path.isdir(args.model):
        return args.model
    from reasonpipe.models import build_model
    from reasonpipe.tokenizer import TaskTokenizer

    path = os.path.join(folder, f"start-{args.model}")
    if not os.path.isdir(path):
        hf = TaskTokenizer.for_task("countdown").hf()
        build_model(args.model, hf, max_positions=512, seed=0).save_pretrained(path)
        hf.save_pretrained(path)
    return path


def run(workers: int, rollouts: str, args: argparse.Namespace, folder: str) -> dict:
    from reasonpipe.rl import RLConfig, train
    from reasonpipe.vllm_server import ServerSettings

    serve = rollouts == "server"
    cfg = RLConfig(model=model_folder(args, folder) if serve else args.model,
                   out=os.path.join(folder, f"w{workers}-{rollouts}"), task="countdown",
                   task_options={"numbers": 3, "max_number": 9, "target_min": 10, "target_max": 49},
                   reward="step_score", problems=64, probe_problems=1, probe_ks=[1], probe_every=0,
                   num_generations=args.generations, prompts_per_step=args.prompts, max_steps=args.steps,
                   max_completion_length=args.tokens, lr=1e-4, quiet=True, device=args.device, save_every=10_000,
                   num_workers=workers, resume="never", log_every=1, use_vllm=serve, vllm_mode="server",
                   vllm_server=ServerSettings(max_model_len=512))
    started = time.time()
    summary = train(cfg)
    wall = time.time() - started
    with open(os.path.join(cfg.out, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f if '"loss"' in line]
    generated = sum(r["completions/mean_length"] * args.prompts * args.generations for r in rows)
    extra = {}
    if serve:
        served = summary["vllm_server"]
        extra = {"push_seconds_mean": served["push_seconds_mean"],
                 "max_logprob_gap": summary["vllm_sync_max_logprob_gap"]}
    return {"workers": workers, "rollouts": rollouts, **extra, "steps": summary["steps"], "global_batch": args.prompts * args.generations,
            "max_completion_length": args.tokens, "train_seconds": summary["train_seconds"],
            "wall_seconds": round(wall, 2), "steps_per_s": round(summary["steps"] / summary["train_seconds"], 4),
            "generated_tokens_per_s": round(generated / summary["train_seconds"], 1), "model": args.model}


def main() -> None:
    from reasonpipe.manifest import host, package_versions

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rollouts", nargs="+", default=["transformers"], choices=["transformers", "server"])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--generations", type=int, default=8)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--model", default="tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="benchmarks/results/grpo-workers.jsonl")
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as folder:
        rows = [run(w, r, args, folder) for r in args.rollouts for w in args.workers]
    base = rows[0]["steps_per_s"]
    for row in rows:
        row.update(speedup_vs_first=round(row["steps_per_s"] / base, 3), host=host(), versions=package_versions(),
                   omp_num_threads=os.environ["OMP_NUM_THREADS"], benchmark="grpo_workers")
        print(json.dumps({k: v for k, v in row.items() if k not in ("host", "versions")}))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
