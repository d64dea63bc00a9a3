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


# --help text of the SFTConfig fields that carry no comment in reasonpipe/sft.py.
HELP: dict[str, str] = {
    "task": "the task of the traces (its tokenizer)",
    "batch_size": "examples per device and step",
    "grad_accum": "gradient-accumulation steps per optimizer step",
    "max_steps": "optimizer steps",
    "lr": "peak learning rate (cosine schedule with a floor)",
    "min_lr_ratio": "the schedule's floor, a fraction of lr",
    "warmup_steps": "linear warm-up steps",
    "weight_decay": "AdamW weight decay",
    "seed": "seed of the model's initialisation and the data order",
    "save_every": "steps between checkpoints",
    "keep_checkpoints": "checkpoints kept (the oldest removed)",
    "log_every": "steps between metrics.jsonl rows",
    "quiet": "no progress bar or log lines (metrics.jsonl only)",
}


def cli(argv: list[str] | None = None) -> int:
    return run_job("sft", "sft", __doc__, SFTConfig, main, argv, help=HELP)


if __name__ == "__main__":
    sys.exit(cli())
