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


def cli(argv: list[str] | None = None) -> int:
    return run_job("eval", "evaluation", __doc__, EvalConfig, main, argv)


if __name__ == "__main__":
    sys.exit(cli())
