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


def cli(argv: list[str] | None = None) -> int:
    return run_job("rl", "rl", __doc__, RLConfig, main, argv)


if __name__ == "__main__":
    sys.exit(cli())
