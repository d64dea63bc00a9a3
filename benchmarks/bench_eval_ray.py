"""Evaluation sampling spread over Ray workers: 2 workers against 1 (one in-process sampler), same
prompts, same seed, same samples.

The work is the direct model's best-of-n part of the demo's evaluation grid (hf sampler, CPU), on the
demo's trained model (``make demo`` first, or pass ``--model``).

Example::

    OMP_NUM_THREADS=1 python benchmarks/bench_eval_ray.py --model runs/demo-cpu/models/direct/final
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_traces import emit  # noqa: E402
from reasonpipe.evaluation import EvalConfig, eval_problems  # noqa: E402
from reasonpipe.tasks import make_task  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="runs/demo-cpu/models/direct/final")
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    from reasonpipe.ray_sampling import RaySampler
    from reasonpipe.sampling import make_sampler

    cfg = EvalConfig(problems=args.problems, task_options={"numbers": 3, "max_number": 9, "target_min": 10,
                                                           "target_max": 49, "split": "test_target"})
    task = make_task(cfg.task, **cfg.task_options)
    prompts = [task.prompt(p) for p in eval_problems(cfg)]
    runs = {}
    local = make_sampler("hf", args.model, device="cpu", batch_size=args.batch_size)
    started = time.perf_counter()
    runs[1] = (local.sample(prompts, args.n, args.max_new_tokens, 1.0, 0), time.perf_counter() - started)
    with RaySampler("hf", args.model, 2, device="cpu", batch_size=args.batch_size) as ray_sampler:
        ray_sampler.ready()  # the actors have loaded the model: sampling alone is timed
        started = time.perf_counter()
        runs[2] = (ray_sampler.sample(prompts, args.n, args.max_new_tokens, 1.0, 0), time.perf_counter() - started)
    for workers, (samples, seconds) in runs.items():
        tokens = sum(c.tokens for row in samples for c in row)
        emit(f"eval_sampling_{workers}_workers", tokens / seconds, "generated tokens/s", problems=args.problems,
             n=args.n, batch_size=args.batch_size, seconds=round(seconds, 2), tokens=tokens,
             **({"speedup_vs_1": round(runs[1][1] / seconds, 2), "same_samples": samples == runs[1][0]}
                if workers == 2 else {"baseline": "one HFSampler in this process"}))


if __name__ == "__main__":
    main()
