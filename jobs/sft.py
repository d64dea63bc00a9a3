"""SFT job: train one model on trace files (``reasonpipe.sft``), resumable with ``--resume auto``.

Example::

    reasonpipe sft --config configs/sft-demo.yaml   # after make demo
"""

from __future__ import annotations

import sys

from reasonpipe.jobs import run_job
from reasonpipe.console import print_table
from reasonpipe.sft import SFTConfig, train


def main(config: SFTConfig) -> int:
    summary = train(config)
    rows = [(k, str(v)) for k, v in summary.items() if k != "data"] + [(f"data.{k}", str(v)) for k, v in summary["data"].items()]
    print_table(f"{config.out}: SFT of {config.model} on {', '.join(config.data)}", rows, ("", "value"))
    return 0


def cli(argv: list[str] | None = None) -> int:
    return run_job("sft", "sft", __doc__, SFTConfig, main, argv)


if __name__ == "__main__":
    sys.exit(cli())
