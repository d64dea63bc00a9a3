"""Is each step of a trace valid? Exact checkers by task (a Lean 4 backend lands beside them).

``get_verifier(task).verify(trace) -> [StepVerdict]``; ``.report(trace)`` adds counts, the first
failing step and whether the trace reached a verified solution.

Example::

    reasonpipe verify cd.jsonl
"""

from __future__ import annotations

from reasonpipe.errors import InputError
from verifiers.countdown import CountdownVerifier
from verifiers.sudoku import SudokuVerifier
from verifiers.verdicts import StepVerdict, TraceReport, Verdict

VERIFIERS = {"countdown": CountdownVerifier, "sudoku": SudokuVerifier}


def get_verifier(task: str):
    """The exact verifier for ``task``; InputError listing the known tasks otherwise."""
    if task not in VERIFIERS:
        raise InputError(f"no verifier for task {task!r} (known: {', '.join(VERIFIERS)})", field="task")
    return VERIFIERS[task]()


__all__ = ["VERIFIERS", "StepVerdict", "TraceReport", "Verdict", "get_verifier"]
