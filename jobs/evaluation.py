"""Evaluation job: the parallel-versus-sequential budget grid (``reasonpipe.evaluation``) as one stage, reused when
it finished.
The grid is the stage ``eval`` of its folder (``reasonpipe.stage.Stage``, record ``<out>/eval.stage.json``),
its config the resolved EvalConfig without ``out`` and ``workers`` (the same samples on any number of workers)
and with ``backtrack_model`` and ``direct_model`` replaced by their folders' bytes (its inputs): a run with the same
config and models is reused (one line, then its recorded table; nothing sampled), a changed setting or a
retrained model re-runs it (``results.jsonl``, ``report.md``, the plot and the manifest removed first), an
interrupted one runs again (sampling keeps no partial state). To evaluate once more with nothing changed,
delete ``<out>/eval.stage.json`` or ``<out>/results.jsonl``.

Example::

    reasonpipe eval --config configs/eval-demo.yaml --problems 50   # after make demo; again: reused
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from reasonpipe.jobs import run_job
from reasonpipe.console import print_table
from reasonpipe.diagnostics import Verdict, comparison_sentence
from reasonpipe.evaluation import (DIAGNOSTIC_HEADERS, HEADERS, EvalConfig, ModelDiagnostics, diagnostic_rows,
                                   rows_of, run_eval)
from reasonpipe.stage import Stage
from reasonpipe.strategies import Point

# EvalConfig fields that do not change the results (or that the stage's inputs carry instead).
UNTRACKED = ("out", "workers", "backtrack_model", "direct_model")


def eval_stage(config: EvalConfig) -> Stage:
    """The grid as the stage ``eval`` of ``config.out``: its config, the model folders as inputs, its outputs
    (``results.jsonl``, ``report.md``, ``accuracy_vs_flops.png``) and the manifest."""
    resolved = {k: v for k, v in dataclasses.asdict(config).items() if k not in UNTRACKED}
    inputs = {role: path for role, path in (("backtrack_model", config.backtrack_model),
                                            ("direct_model", config.direct_model)) if path}
    return Stage("eval", config.out, resolved, inputs=inputs,
                 outputs=["results.jsonl", "diagnostics.json", "report.md", "accuracy_vs_flops.png"],
                 scratch=["manifest.json"])


def main(config: EvalConfig) -> int:
    stage = eval_stage(config)
    summary = stage.run(lambda: {"points": [dataclasses.asdict(p) for p in run_eval(config)]})
    points = [Point(**p) for p in summary["points"]]
    print_table(f"{config.out}: accuracy, tokens and FLOPs per budget", rows_of(points), HEADERS)
    with open(os.path.join(config.out, "diagnostics.json"), encoding="utf-8") as f:
        diagnostics = [ModelDiagnostics(**d) for d in json.load(f)]
    if diagnostics:
        print_table(f"{config.out}: has each model learned its task?", diagnostic_rows(diagnostics),
                    DIAGNOSTIC_HEADERS)
        print(comparison_sentence({d.role: Verdict(d.learned, d.reason) for d in diagnostics}))
    print(f"report: {os.path.join(config.out, 'report.md')}")
    return 0


def cli(argv: list[str] | None = None) -> int:
    return run_job("eval", "evaluation", __doc__, EvalConfig, main, argv)


if __name__ == "__main__":
    sys.exit(cli())
