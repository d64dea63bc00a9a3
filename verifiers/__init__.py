"""Is each step of a trace valid? Exact checkers by task (a Lean 4 backend lands beside them).

``get_verifier(task).verify(trace) -> [StepVerdict]``; ``.report(trace)`` adds counts, the first
failing step and whether the trace reached a verified solution.

Example::

    reasonpipe verify cd.jsonl
"""

from __future__ import annotations

from reasonpipe.errors import InputError
from reasonpipe.tasks import GYM_TASKS, make_task
from reasonpipe.verifiers.countdown import CountdownVerifier
from reasonpipe.verifiers.gym import GymVerifier
from reasonpipe.verifiers.reachability import ReachabilityVerifier
from reasonpipe.verifiers.sudoku import SudokuVerifier
from reasonpipe.verifiers.verdicts import StepVerdict, TraceReport, Verdict

VERIFIERS = {"countdown": CountdownVerifier, "sudoku": SudokuVerifier, "reachability": ReachabilityVerifier}
# the reasoning-gym tasks: one verifier class, built on the task object (``GymVerifier(make_task(name))``)
GYM_VERIFIERS = {name: GymVerifier for name in GYM_TASKS}


def get_verifier(task: str):
    """The exact verifier for ``task``; InputError listing the known tasks otherwise."""
    if task in GYM_VERIFIERS:
        return GYM_VERIFIERS[task](make_task(task))
    if task not in VERIFIERS:
        raise InputError(f"no verifier for task {task!r} (known: {', '.join([*VERIFIERS, *GYM_TASKS])})",
                         field="task")
    return VERIFIERS[task]()


__all__ = ["GYM_VERIFIERS", "VERIFIERS", "GymVerifier", "StepVerdict", "TraceReport", "Verdict", "get_verifier"]
