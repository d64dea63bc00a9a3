"""SFT job: train one model on trace files (``reasonpipe.sft``), resumable with ``--resume auto``.

Example::

    python -m jobs.sft --config configs/countdown-3m.yaml --key sft_backtrack   # or a plain SFTConfig YAML
"""

from __future__ import annotations

import argparse
import os
import sys

from reasonpipe.config import load_config
from reasonpipe.console import print_table, run_command
from reasonpipe.sft import SFTConfig, train


def main(config: SFTConfig) -> int:
    summary = train(config)
    rows = [(k, str(v)) for k, v in summary.items() if k != "data"] + [(f"data.{k}", str(v)) for k, v in summary["data"].items()]
    print_table(f"{config.out}: SFT of {config.model} on {', '.join(config.data)}", rows, ("", "value"))
    return 0


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.sft", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="YAML with the fields of reasonpipe.sft.SFTConfig")
    args, overrides = parser.parse_known_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return run_command("sft", lambda: main(load_config(SFTConfig, args.config, overrides)))


if __name__ == "__main__":
    sys.exit(cli())
