"""RL job: GRPO with verifier rewards (``reasonpipe.rl``) as one stage, reused when it finished.
The run is the stage ``rl`` of its folder (``reasonpipe.stage.Stage``, record ``<out>/rl.stage.json``), its
config the resolved RLConfig without ``out``, ``quiet``, ``resume`` and the fields that do not change the trained
model (``save_every``, ``keep_checkpoints``), its inputs the bytes of ``model`` when it is a checkpoint folder (a
warm start from an SFT run's ``final``: a retrained SFT model re-runs RL) and of ``resume`` when it is one.
``resume: auto`` (the default) lets the stage decide: a run that finished with the same config is reused (one
line, then its recorded table; nothing trained), an interrupted one resumes from its last complete checkpoint,
a changed one starts afresh with its old checkpoints, model, metrics and report removed. ``resume: never``
always starts afresh (the old files removed); ``resume: <checkpoint folder>`` (outside ``out``) starts from that
checkpoint.

Example::

    reasonpipe rl --config configs/grpo-cpu.yaml   # after make demo (warm-starts its direct model); again: reused
"""

from __future__ import annotations

import dataclasses
import os
import sys

from reasonpipe.jobs import run_job
from reasonpipe.console import print_table
from reasonpipe.rl import RLConfig, check, train
from reasonpipe.stage import Stage

# RLConfig fields that do not change what the run writes (or that the stage's inputs carry instead).
UNTRACKED = ("out", "quiet", "resume", "save_every", "keep_checkpoints", "max_failures")


def rl_stage(config: RLConfig) -> Stage:
    """The run as the stage ``rl`` of ``config.out``: its config, its inputs (checkpoint folders), its outputs
    (``final``, ``summary.json``, ``report.md``) and what a re-run removes (checkpoints, metrics, plot, manifest)."""
    resolved = {k: v for k, v in dataclasses.asdict(config).items() if k not in UNTRACKED}
    inputs = {}
    if os.path.isdir(config.model):
        resolved.pop("model")
        inputs["model"] = config.model
    if config.resume not in ("auto", "never"):
        inputs["resume"] = config.resume
    return Stage("rl", config.out, resolved, inputs=inputs, outputs=["final", "summary.json", "report.md"],
                 scratch=["checkpoints", "metrics.jsonl", "grpo.png", ".grpo.png.tmp.png", "manifest.json"])


def main(config: RLConfig) -> int:
    check(config)  # a model/tokenizer mismatch or a bad trl: key stops here, before the stage writes anything
    stage = rl_stage(config)
    summary = stage.run(lambda: train(config), fresh=config.resume == "never")
    rows = [(k, str(v)) for k, v in summary.items() if not k.startswith("probe_")]
    for when in ("before", "after"):
        probe = summary[f"probe_{when}"] or {}
        rows += [(f"{k} {when} (step {probe.get('step')})", f"{v:.3f}") for k, v in probe.items() if k.startswith("probe/pass")]
    print_table(f"{config.out}: GRPO of {config.model} ({config.reward} reward)", rows, ("", "value"))
    print(f"report: {config.out}/report.md")
    return 0


def cli(argv: list[str] | None = None) -> int:
    return run_job("rl", "rl", __doc__, RLConfig, main, argv)


if __name__ == "__main__":
    sys.exit(cli())
