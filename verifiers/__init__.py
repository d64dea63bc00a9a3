"""Is each step of a trace valid? Exact checkers by task (a Lean 4 backend lands beside them).

``get_verifier(task).verify(trace) -> [StepVerdict]``; ``.report(trace)`` adds counts, the first
failing step and whether the trace reached a verified solution.

Example::

    reasonpipe verify cd.jsonl
"""

from __future__ import annotations

from reasonpipe.errors import InputError
from verifiers.countdown import CountdownVerifier
from verifiers.reachability import ReachabilityVerifier
from verifiers.sudoku import SudokuVerifier
from verifiers.verdicts import StepVerdict, TraceReport, Verdict

VERIFIERS = {"countdown": CountdownVerifier, "sudoku": SudokuVerifier, "reachability": ReachabilityVerifier}


def get_verifier(task: str):
    """The exact verifier for ``task``; InputError listing the known tasks otherwise."""
    from reasonpipe.tasks import GYM_TASKS

    if task in GYM_TASKS:
        from reasonpipe.tasks import make_task
        from reasonpipe.tasks.gym.base import GymVerifier

        return GymVerifier(make_task(task))
    if task not in VERIFIERS:
        raise InputError(f"no verifier for task {task!r} (known: {', '.join([*VERIFIERS, *GYM_TASKS])})",
                         field="task")
    return VERIFIERS[task]()


__all__ = ["VERIFIERS", "StepVerdict", "TraceReport", "Verdict", "get_verifier"]
