"""RL job: GRPO with verifier rewards (``reasonpipe.rl``), resumable with ``--resume auto``.

Example::

    reasonpipe rl --config configs/grpo-cpu.yaml   # after make demo (warm-starts its direct model)
"""

from __future__ import annotations

import sys

from reasonpipe.jobs import run_job
from reasonpipe.console import print_table
from reasonpipe.rl import RLConfig, train


def main(config: RLConfig) -> int:
    summary = train(config)
    rows = [(k, str(v)) for k, v in summary.items() if not k.startswith("probe_")]
    for when in ("before", "after"):
        probe = summary[f"probe_{when}"] or {}
        rows += [(f"{k} {when} (step {probe.get('step')})", f"{v:.3f}") for k, v in probe.items() if k.startswith("probe/pass")]
    print_table(f"{config.out}: GRPO of {config.model} ({config.reward} reward)", rows, ("", "value"))
    print(f"report: {config.out}/report.md")
    return 0


# --help text of the RLConfig fields that carry no comment in reasonpipe/rl.py.
HELP: dict[str, str] = {
    "out": "run folder: checkpoints/, final/, metrics.jsonl, report.md, grpo.png",
    "task": "the task: its problems, tokenizer and verifier",
    "probe_problems": "held-out problems of the pass@k probe",
    "probe_ks": "the k of pass@k at each probe (max(probe_ks) samples per problem)",
    "probe_temperature": "sampling temperature of the probe",
    "prompts_per_step": "prompts per optimizer step (each with num_generations completions)",
    "max_steps": "optimizer steps",
    "lr": "learning rate",
    "temperature": "sampling temperature of the rollouts",
    "max_completion_length": "generated tokens per completion, at most",
    "save_every": "steps between checkpoints",
    "keep_checkpoints": "checkpoints kept (the oldest removed)",
    "log_every": "steps between metrics.jsonl rows",
    "seed": "seed of the problems, the model's initialisation and the sampling",
    "quiet": "no progress bar or log lines (metrics.jsonl only)",
}


def cli(argv: list[str] | None = None) -> int:
    return run_job("rl", "rl", __doc__, RLConfig, main, argv, help=HELP)


if __name__ == "__main__":
    sys.exit(cli())
