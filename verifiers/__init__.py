"""Is each step of a trace valid? Exact checkers by task (a Lean 4 backend lands beside them).

``get_verifier(task).verify(trace) -> [StepVerdict]``; ``.report(trace)`` adds counts, the first
failing step and whether the trace reached a verified solution.

A plug-in verifier is named ``module:attr`` (``get_verifier(task, "my_pkg.verify:MyVerifier")``, a ``verifier:``
field of a config; ``docs/plugins.md``): a class or factory called with the task instance when it takes an
argument, else with nothing, returning an object with ``verify(trace)`` and ``report(trace, line=None)`` (an
:class:`~reasonpipe.verifiers.verdicts.ExactVerifier` subclass has both). A plug-in task's default verifier is its
class attribute ``verifier`` (such a ``module:attr``, or the class itself).

Example::

    reasonpipe verify cd.jsonl
"""

from __future__ import annotations

import inspect
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.plugins import is_plugin, load_object
from reasonpipe.tasks import GYM_TASKS, get_task_class, make_task
from reasonpipe.verifiers.countdown import CountdownVerifier
from reasonpipe.verifiers.gym import GymVerifier
from reasonpipe.verifiers.reachability import ReachabilityVerifier
from reasonpipe.verifiers.sudoku import SudokuVerifier
from reasonpipe.verifiers.verdicts import StepVerdict, TraceReport, Verdict

VERIFIERS = {"countdown": CountdownVerifier, "sudoku": SudokuVerifier, "reachability": ReachabilityVerifier}
# the reasoning-gym tasks: one verifier class, built on the task object (``GymVerifier(make_task(name))``)
GYM_VERIFIERS = {name: GymVerifier for name in GYM_TASKS}


def get_verifier(task: str, verifier: str | None = None) -> Any:
    """The verifier for ``task``: the plug-in ``verifier`` (``module:attr``) when given, else the task's exact
    verifier (a plug-in task's own ``verifier`` attribute); InputError naming the field otherwise."""
    if verifier:
        return _build(task, load_object(verifier, "verifier", "verifier"), verifier)
    if task in GYM_VERIFIERS:
        return GYM_VERIFIERS[task](make_task(task))
    if task in VERIFIERS:
        return VERIFIERS[task]()
    if is_plugin(task):
        own = getattr(get_task_class(task, field="task"), "verifier", None)
        if own is None:
            raise InputError(f"the plug-in task {task} names no verifier: set its class attribute verifier, or "
                             f"name one (verifier: module:attr)", field="verifier")
        return get_verifier(task, own) if isinstance(own, str) else _build(task, own, f"{task}.verifier")
    raise InputError(f"no verifier for task {task!r} (known: {', '.join([*VERIFIERS, *GYM_TASKS])})", field="task")


def _build(task: str, factory: Any, name: str) -> Any:
    """``factory(task instance)`` when it takes an argument, else ``factory()``; checked for verify and report."""
    if not callable(factory):
        raise InputError(f"{name} is a {type(factory).__name__}, not a verifier", field="verifier")
    try:
        takes_task = any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                         for p in inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # no signature to read (a builtin): called with nothing
        takes_task = False
    made = factory(make_task(task)) if takes_task else factory()
    missing = [m for m in ("verify", "report") if not callable(getattr(made, m, None))]
    if missing:
        raise InputError(f"the plug-in verifier {name} returned a {type(made).__name__!r}, which has no "
                         f"{' and no '.join(m + '(trace)' for m in missing)}", field="verifier")
    return made


__all__ = ["GYM_VERIFIERS", "VERIFIERS", "GymVerifier", "StepVerdict", "TraceReport", "Verdict", "get_verifier"]
