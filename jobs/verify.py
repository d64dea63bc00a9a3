"""Verification job: ``reasonpipe verify`` as a job stage (``reasonpipe verify --config F``), exact or in Lean 4.
The run is one stage (``reasonpipe.stage.Stage``): its config the settings without ``file``, ``out``,
``quiet``, ``jobs``, ``cache`` and ``force``, its input the bytes of ``file``; its record lies beside the verdicts,
``<out>.stage.json``, or, with no ``out``, beside the traces, ``<file>.verify.stage.json``. A run with the same
file bytes and settings is reused (one line, then its recorded tables and exit code; Lean is not started), a
changed one verifies again (the old verdicts removed first); ``force: true`` always verifies again.

Exit 0 when every step of every trace holds, 1 when one does not (the table names the first failing step of
each failing trace), 2 on bad input or a missing Lean.

Example::

    reasonpipe verify --config configs/verify-demo.yaml
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from reasonpipe.jobs import run_job
from reasonpipe.console import print_table, progress
from reasonpipe.stage import Stage


@dataclass
class VerifyJobConfig:
    """One trace file verified step by step (the fields of ``reasonpipe verify``)."""

    file: str = field(default="", metadata={"help": "the traces: JSONL, Stream of Search JSON, or text"})
    format: str = field(default="auto", metadata={"help": "auto | reasonpipe | sos | text | safe"})
    backend: str = field(default="exact", metadata={"help": "exact | lean | exact+lean (exact confirmed by Lean)"})
    verifier: str = field(default="", metadata={"help": "a plug-in verifier, module:attr (docs/plugins.md; exact "
                                                "backend); empty: each task's own"})
    out: str = field(default="", metadata={"help": "per-trace verdicts (JSONL); empty: none"})
    skip_bad: bool = field(default=False, metadata={"help": "skip bad records (counted) instead of stopping"})
    show: int = field(default=20, metadata={"help": "failing traces listed"})
    lean_mode: str = field(default="file", metadata={"help": "lean: file (many steps per `lean` run) | repl "
                                                     "(a persistent leanprover-community/repl)"})
    lean: str = field(default="lean", metadata={"help": "lean: the lean executable"})
    repl: str = field(default="repl", metadata={"help": "lean: the REPL executable"})
    lean_header: str = field(default="", metadata={"help": "lean: header text, e.g. \"import Mathlib\""})
    lean_project: str = field(default="", metadata={"help": "lean: a Lake project folder (Lean runs under "
                                                    "`lake env` there); empty: none"})
    tactics: list[str] = field(default_factory=lambda: ["decide", "rfl", "omega", "simp"],
                               metadata={"help": "lean: closing tactics to try"})
    jobs: int = field(default=1, metadata={"help": "lean: Lean processes at once"})
    timeout: float = field(default=20.0, metadata={"help": "lean: seconds per step (file mode: per 50 steps)"})
    cache: str = field(default="", metadata={"help": "lean: SQLite file of verdicts of earlier runs; empty: none"})
    trust_tactics: bool = field(default=False, metadata={"help": "lean: proofs may use any tactic (default: the "
                                                         "policy's allow-list)"})
    replay: str = field(default="auto", metadata={"help": "lean: kernel replay with lean4checker: auto | on | off"})
    budget: float = field(default=0.0, metadata={"help": "lean: wall-clock seconds of Lean for the whole job; "
                                                 "0: unlimited"})
    quiet: bool = field(default=False, metadata={"help": "no progress bar"})
    force: bool = field(default=False, metadata={"help": "verify again even when a run with the same file bytes "
                                                 "and settings finished (default: reuse its recorded result)"})


# VerifyJobConfig fields that do not change the verdicts (or that the stage's inputs carry instead).
UNTRACKED = ("file", "out", "quiet", "jobs", "cache", "force")


def verify_stage(config: VerifyJobConfig) -> Stage:
    """The run as a stage: its record beside ``out`` (``<out>.stage.json``), or beside ``file`` when there is no
    ``out`` (``<file>.verify.stage.json``); ``file``'s bytes are its input."""
    resolved = {k: v for k, v in dataclasses.asdict(config).items() if k not in UNTRACKED}
    if config.out:
        name = os.path.basename(config.out)
        return Stage(name, os.path.dirname(config.out) or ".", resolved, inputs={"file": config.file},
                     outputs=[name])
    return Stage(os.path.basename(config.file) + ".verify", os.path.dirname(config.file) or ".", resolved,
                 inputs={"file": config.file})


def main(config: VerifyJobConfig) -> int:
    from reasonpipe.verify import verify_file

    stage = verify_stage(config)
    lean = None
    if config.backend != "exact":
        from reasonpipe.verifiers.lean import LeanConfig, lean_missing_message

        lean = LeanConfig(mode=config.lean_mode, lean=config.lean, repl=config.repl, header=config.lean_header,
                          project=config.lean_project or None, tactics=tuple(config.tactics), timeout_s=config.timeout,
                          jobs=config.jobs, cache=config.cache or None, trust_tactics=config.trust_tactics,
                          replay=config.replay, budget_s=config.budget or None)
        missing = lean_missing_message(lean) if config.force or not stage.done() else None  # reuse needs no Lean
        if missing is not None:
            print(missing, file=sys.stderr)
            return 2
    from reasonpipe.verifiers.lean.sandbox import SandboxError

    def verify() -> dict[str, Any]:
        with progress(f"verify {config.file}", None, config.quiet) as advance:
            summary = verify_file(config.file, fmt=config.format, out=config.out or None, skip_bad=config.skip_bad,
                                  keep_failing=config.show, progress=advance, backend=config.backend, lean=lean,
                                  verifier=config.verifier or None)
        failing = [(r.id, str(r.first_failure + 1), r.first_failure_verdict, r.first_failure_reason)
                   for r in summary.failing]
        return {"rows": summary.rows(), "failing": failing, "all_hold": summary.all_hold}

    try:
        summary = stage.run(verify, fresh=config.force)
    except SandboxError as e:  # Lean could not be run at all
        print(f"verify: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print_table(f"{config.file}: step verification", [tuple(row) for row in summary["rows"]], ("", "value"))
    if summary["failing"]:
        print_table("first failing step of each failing trace", [tuple(row) for row in summary["failing"]],
                    ("trace", "step", "verdict", "reason"))
    return 0 if summary["all_hold"] else 1


def cli(argv: list[str] | None = None) -> int:
    return run_job("verify", "verify", __doc__, VerifyJobConfig, main, argv)


if __name__ == "__main__":
    sys.exit(cli())
