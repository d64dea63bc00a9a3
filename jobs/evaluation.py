"""Evaluation job: the parallel-versus-sequential budget grid (``reasonpipe.evaluation``).

Example::

    reasonpipe eval --config configs/eval-demo.yaml --problems 50   # after make demo
"""

from __future__ import annotations

import os
import sys

from reasonpipe.jobs import run_job
from reasonpipe.console import print_table
from reasonpipe.evaluation import HEADERS, EvalConfig, rows_of, run_eval


def main(config: EvalConfig) -> int:
    points = run_eval(config)
    print_table(f"{config.out}: accuracy, tokens and FLOPs per budget", rows_of(points), HEADERS)
    print(f"report: {os.path.join(config.out, 'report.md')}")
    return 0


# --help text of the EvalConfig fields that carry no comment in reasonpipe/evaluation.py.
HELP: dict[str, str] = {
    "out": "run folder: results.jsonl, report.md, accuracy_vs_flops.png, manifest.json",
    "task": "the task",
    "task_options": "the task's options for the held-out problems",
    "problems": "held-out problems",
    "problem_seed": "seed of the problems (their own, apart from the sampling's)",
    "lengths": "the sequential model's budgets L: generated tokens of its one sample",
    "ns": "the parallel model's budgets n: samples per problem",
    "sequential_temperature": "sampling temperature of the backtracking model (0: greedy)",
    "parallel_temperature": "sampling temperature of the direct model",
    "batch_size": "hf: prompts per generate call",
    "device": "auto | cpu | cuda",
    "seed": "seed of the sampling",
}


def cli(argv: list[str] | None = None) -> int:
    return run_job("eval", "evaluation", __doc__, EvalConfig, main, argv, help=HELP)


if __name__ == "__main__":
    sys.exit(cli())
