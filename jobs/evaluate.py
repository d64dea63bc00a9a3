"""Evaluation job: the parallel-versus-sequential budget grid (``reasonpipe.evaluation``).

Example::

    python -m jobs.evaluate --config configs/eval-example.yaml --problems 50
"""

from __future__ import annotations

import argparse
import os
import sys

from reasonpipe.config import load_config
from reasonpipe.console import print_table, run_command
from reasonpipe.evaluation import HEADERS, EvalConfig, rows_of, run_eval


def main(config: EvalConfig) -> int:
    points = run_eval(config)
    print_table(f"{config.out}: accuracy, tokens and FLOPs per budget", rows_of(points), HEADERS)
    print(f"report: {os.path.join(config.out, 'report.md')}")
    return 0


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="YAML with the fields of reasonpipe.evaluation.EvalConfig")
    args, overrides = parser.parse_known_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return run_command("eval", lambda: main(load_config(EvalConfig, args.config, overrides)))


if __name__ == "__main__":
    sys.exit(cli())
