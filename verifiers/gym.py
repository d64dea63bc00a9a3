"""The step verifier of the reasoning-gym tasks (:mod:`reasonpipe.tasks.gym`), one for all of them.

The problem line must match the problem; each ``Try`` opens a branch not tried before; each ``Check`` must
hold about the open branch and each ``Reject`` refute it (the task's ``check``); the ``Answer`` must be
correct by reasoning-gym's scorer.

Example::

    python -c "from reasonpipe.tasks import make_task; from reasonpipe.verifiers.gym import GymVerifier; print(GymVerifier(make_task('arc_1d')).task)"
"""

from __future__ import annotations

from reasonpipe.tasks.gym.base import GymTask
from reasonpipe.tasks.gym.grammar import Answer, Check, ProblemLine, Reject, Try, Unparsed
from reasonpipe.traces import Trace
from reasonpipe.verifiers.verdicts import ExactVerifier, StepVerdict, Verdict


class GymVerifier(ExactVerifier):
    """Checks each step: the problem line matches the problem, each claim holds about the open branch, each
    ``Reject`` refutes it, and the ``Answer`` is correct by reasoning-gym's scorer."""

    def __init__(self, task: GymTask) -> None:
        self.task_obj = task
        self.task = task.name

    def _check(self, trace: Trace) -> tuple[list[StepVerdict], bool]:
        task, out, solved = self.task_obj, [], False
        entry = task.entry(trace.problem) if trace.problem is not None else None
        branch: str | None = None
        tried: set[str] = set()
        for i, step in enumerate(trace.steps):
            t = type(step)
            if entry is None:
                out.append(StepVerdict(Verdict.REFUTED, "no problem to check against"))
            elif t is ProblemLine:
                ok = i == 0 and step.text == task.render(entry)
                out.append(StepVerdict(Verdict.PROVED, "states the problem") if ok else
                           StepVerdict(Verdict.REFUTED, "not the problem's line" if i == 0 else "a second problem line"))
            elif t is Try:
                if step.text in tried:
                    out.append(StepVerdict(Verdict.REFUTED, "this branch was already tried"))
                else:
                    out.append(StepVerdict(Verdict.NO_CHECK, "opens a branch"))
                tried.add(step.text)
                branch = step.text
            elif t in (Check, Reject):
                if branch is None:
                    out.append(StepVerdict(Verdict.REFUTED, "no open branch"))
                    continue
                ok = task.check(entry, branch, step.text, t is Reject)
                if ok is None:
                    out.append(StepVerdict(Verdict.NO_CHECK, "a claim this task does not check"))
                elif ok:
                    out.append(StepVerdict(Verdict.PROVED, "refutes the branch" if t is Reject else "holds"))
                else:
                    out.append(StepVerdict(Verdict.REFUTED, "does not refute the branch" if t is Reject else
                                           "does not hold"))
                if t is Reject:
                    branch = None
            elif t is Answer:
                if branch is None:
                    out.append(StepVerdict(Verdict.REFUTED, "an answer without an open branch"))
                    continue
                score = task._dataset(trace.problem.gym_seed).score_answer(step.text, entry)
                if score >= 1.0:
                    solved = True
                    out.append(StepVerdict(Verdict.PROVED, "correct by reasoning-gym's scorer"))
                else:
                    out.append(StepVerdict(Verdict.REFUTED, f"reasoning-gym scores it {score}"))
            elif t is Unparsed:
                out.append(StepVerdict(Verdict.UNFORMALIZABLE, "line is not in the trace grammar"))
            else:
                out.append(StepVerdict(Verdict.UNFORMALIZABLE, f"not a step of this grammar: {t.__name__}"))
        return out, solved
