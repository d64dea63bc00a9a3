"""SFT job: train one model on trace files (``reasonpipe.sft``) as one stage, reused when it finished.
The run is the stage ``sft`` of its folder (``reasonpipe.stage.Stage``, record ``<out>/sft.stage.json``),
its config the resolved SFTConfig without ``out``, ``quiet``, ``resume`` and the fields that do not change the
trained model (``workers``, ``save_every``, ``keep_checkpoints``, ``max_failures``), its inputs the bytes of the
``data`` files (and of ``model`` or ``resume`` when they are checkpoint folders). ``resume: auto`` (the default)
lets the stage decide: a run that finished with the same config and data is reused (one line, then its recorded
table; nothing trained), an interrupted one resumes from its last complete checkpoint, a changed one starts
afresh with its old checkpoints, model and metrics removed. ``resume: never`` always starts afresh (the old
files removed); ``resume: <checkpoint folder>`` (outside ``out``) starts from that checkpoint.

Example::

    reasonpipe sft --config configs/sft-demo.yaml   # after make demo; run it again: reused
"""

from __future__ import annotations

import dataclasses
import os
import sys

from reasonpipe.jobs import run_job
from reasonpipe.console import print_table
from reasonpipe.sft import SFTConfig, check, train
from reasonpipe.stage import Stage

# SFTConfig fields that do not change what the run writes (or that the stage's inputs carry instead).
UNTRACKED = ("out", "data", "quiet", "resume", "workers", "save_every", "keep_checkpoints", "max_failures")


def sft_stage(config: SFTConfig) -> Stage:
    """The run as the stage ``sft`` of ``config.out``: its config, its inputs (data files, checkpoint folders),
    its outputs (``final``, ``summary.json``) and what a re-run removes (checkpoints, metrics, manifest)."""
    resolved = {k: v for k, v in dataclasses.asdict(config).items() if k not in UNTRACKED}
    inputs = {f"data.{i}": path for i, path in enumerate(config.data)}
    if os.path.isdir(config.model):
        resolved.pop("model")
        inputs["model"] = config.model
    if config.resume not in ("auto", "never"):
        inputs["resume"] = config.resume
    return Stage("sft", config.out, resolved, inputs=inputs, outputs=["final", "summary.json"],
                 scratch=["checkpoints", "metrics.jsonl", "manifest.json"])


def main(config: SFTConfig) -> int:
    check(config)  # a model/tokenizer mismatch or a bad trl: key stops here, before the stage writes anything
    stage = sft_stage(config)
    summary = stage.run(lambda: train(config), fresh=config.resume == "never")
    rows = [(k, str(v)) for k, v in summary.items() if k != "data"] + [(f"data.{k}", str(v)) for k, v in summary["data"].items()]
    print_table(f"{config.out}: SFT of {config.model} on {', '.join(config.data)}", rows, ("", "value"))
    return 0


def cli(argv: list[str] | None = None) -> int:
    return run_job("sft", "sft", __doc__, SFTConfig, main, argv)


if __name__ == "__main__":
    sys.exit(cli())
