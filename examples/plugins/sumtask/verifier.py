"""The step verifier of "sum to target" (reasonpipe's Verifier contract through
:class:`~reasonpipe.verifiers.verdicts.ExactVerifier`: one method, ``_check``). It replays the search: the path of
nodes (index, sum, numbers taken) from the root to the current node. A ``Take`` must take the current node's next
number and add it up right; a ``Skip`` must leave out the next number of a node on the current path (the current
node, or one it backtracks to); the ``Answer`` must be the numbers taken on the path, adding up to the target.

Built with the task instance (``SumVerifier(task)``): the task's own rule :func:`sumtask.task.is_answer` decides
the answer. The default verifier of :class:`~sumtask.task.SumTask`; named in a config as
``verifier: sumtask.verifier:SumVerifier``.

Example::

    PYTHONPATH=examples/plugins python -c "from reasonpipe.traces import Trace; from reasonpipe.verifiers import get_verifier; t = 'sumtask.task:SumTask'; print(get_verifier(t).report(Trace.from_text(t, 'Numbers 4 3 target 7\\nTake 4 at 0 sum 4\\nTake 3 at 1 sum 7\\nAnswer 4 3\\n')).counts)"
"""

from __future__ import annotations

from typing import Any

from reasonpipe.traces import Trace
from reasonpipe.verifiers.verdicts import ExactVerifier, StepVerdict, Verdict
from sumtask.grammar import Answer, Numbers, Skip, Take
from sumtask.task import is_answer


class SumVerifier(ExactVerifier):
    def __init__(self, task: Any) -> None:
        self.task = task.name

    def _check(self, trace: Trace) -> tuple[list[StepVerdict], bool]:
        problem, out, solved = trace.problem, [], False
        if problem is None:
            return [StepVerdict(Verdict.REFUTED, "no problem to check against")] * len(trace.steps), False
        numbers = problem.numbers
        path: list[tuple[int, int, tuple[int, ...]]] = [(0, 0, ())]  # (next index, sum, numbers taken) per node
        for i, step in enumerate(trace.steps):
            index, total, taken = path[-1]
            if isinstance(step, Numbers):
                ok = i == 0 and step.numbers == numbers and step.target == problem.target
                out.append(StepVerdict(Verdict.NO_CHECK, "states the problem") if ok else
                           StepVerdict(Verdict.REFUTED, "not the problem" if i == 0 else "a second problem line"))
            elif isinstance(step, Take):
                ok = step.index == index < len(numbers) and step.number == numbers[index] \
                    and step.total == total + step.number
                if ok:
                    path.append((index + 1, step.total, (*taken, step.number)))
                out.append(StepVerdict(Verdict.PROVED, "takes the next number, sum right") if ok else
                           StepVerdict(Verdict.REFUTED, "not the next number, or the sum is wrong"))
            elif isinstance(step, Skip):
                at = next((k for k, (j, s, _) in enumerate(path) if j == step.index and s == step.total), None)
                ok = at is not None and step.index < len(numbers) and step.number == numbers[step.index]
                if ok:
                    del path[at + 1:]
                    path.append((step.index + 1, step.total, path[at][2]))
                out.append(StepVerdict(Verdict.PROVED, "leaves out the next number of a node on the path") if ok else
                           StepVerdict(Verdict.REFUTED, "no such node on the path, or not its next number"))
            elif isinstance(step, Answer):
                solved = step.numbers == taken and is_answer(problem, step.numbers)
                out.append(StepVerdict(Verdict.PROVED, "the numbers taken add up to the target") if solved else
                           StepVerdict(Verdict.REFUTED, "not the numbers taken, or they miss the target"))
            else:
                out.append(StepVerdict(Verdict.UNFORMALIZABLE, "not in the sum-to-target grammar"))
        return out, solved
