"""Verification job: ``reasonpipe verify`` as a job (``python -m jobs.verify --config F``), exact or in Lean 4.

Exit 0 when every step of every trace holds, 1 when one does not (the table names the first failing step of
each failing trace), 2 on bad input or a missing Lean.

Example::

    python -m jobs.verify --config configs/verify-demo.yaml
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from jobs import run_job
from reasonpipe.console import print_table, progress


@dataclass
class VerifyJobConfig:
    file: str = ""
    format: str = "auto"                  # auto | reasonpipe | sos | text | safe
    backend: str = "exact"                # exact | lean | exact+lean
    out: str = ""                         # per-trace verdicts (JSONL); empty: none
    skip_bad: bool = False
    show: int = 20                        # failing traces listed
    lean_mode: str = "file"               # file | repl
    lean: str = "lean"
    repl: str = "repl"
    lean_header: str = ""                 # header text, e.g. "import Mathlib"
    lean_project: str = ""
    tactics: list[str] = field(default_factory=lambda: ["decide", "rfl", "omega", "simp"])
    jobs: int = 1
    timeout: float = 20.0
    cache: str = ""
    trust_tactics: bool = False           # proofs may use any tactic (default: the policy's allow-list)
    replay: str = "auto"                  # kernel replay with lean4checker: auto | on | off
    budget: float = 0.0                   # wall-clock seconds of Lean for the whole job; 0: unlimited
    quiet: bool = False


def main(config: VerifyJobConfig) -> int:
    from reasonpipe.verify import verify_file

    lean = None
    if config.backend != "exact":
        from verifiers.lean import LeanConfig, lean_missing_message

        lean = LeanConfig(mode=config.lean_mode, lean=config.lean, repl=config.repl, header=config.lean_header,
                          project=config.lean_project or None, tactics=tuple(config.tactics), timeout_s=config.timeout,
                          jobs=config.jobs, cache=config.cache or None, trust_tactics=config.trust_tactics,
                          replay=config.replay, budget_s=config.budget or None)
        missing = lean_missing_message(lean)
        if missing is not None:
            print(missing, file=sys.stderr)
            return 2
    from verifiers.lean.sandbox import SandboxError

    try:
        with progress(f"verify {config.file}", None, config.quiet) as advance:
            summary = verify_file(config.file, fmt=config.format, out=config.out or None, skip_bad=config.skip_bad,
                                  keep_failing=config.show, progress=advance, backend=config.backend, lean=lean)
    except SandboxError as e:  # Lean could not be run at all
        print(f"verify: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print_table(f"{config.file}: step verification", summary.rows(), ("", "value"))
    if summary.failing:
        rows = [(r.id, str(r.first_failure + 1), r.first_failure_verdict, r.first_failure_reason) for r in summary.failing]
        print_table("first failing step of each failing trace", rows, ("trace", "step", "verdict", "reason"))
    return 0 if summary.all_hold else 1


def cli(argv: list[str] | None = None) -> int:
    return run_job("verify", "verify", __doc__, VerifyJobConfig, main, argv)


if __name__ == "__main__":
    sys.exit(cli())
