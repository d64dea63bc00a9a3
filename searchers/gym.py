"""The searchers of the reasoning-gym tasks (:mod:`reasonpipe.tasks.gym`): ``direct`` and ``kbacktrack``.

Each task gives its correct branch and distinct wrong ones (``GymTask.branches``); a searcher writes them as
a trace in the shared grammar: ``Problem:``, then for each wrong branch tried ``Try:``, its ``Check:`` lines
and the ``Reject:`` that refutes it, then the correct branch's ``Try:``, ``Check:`` lines and ``Answer:``.
An entry the task does not cover (:class:`~reasonpipe.tasks.gym.base.NotCovered`) is a
:class:`~reasonpipe.searchers.base.SearchFailed`: the generator draws another problem.

Example::

    reasonpipe gen color_cube_rotation --n 5 --searcher kbacktrack --k 2 --out /tmp/cube.jsonl
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable

from reasonpipe.tasks.gym.base import Branch, GymProblem, GymTask, NotCovered
from reasonpipe.tasks.gym.grammar import Answer, Check, ProblemLine, Reject, Try
from reasonpipe.traces import Trace, TraceMeta
from reasonpipe.searchers.base import SearchFailed, SearchOptions


def _trace(task: GymTask, problem: GymProblem, tried: list[Branch], right: Branch, searcher: str) -> Trace:
    entry = task.entry(problem)
    if not problem.question:  # a problem given by seed only
        problem = GymProblem(problem.gym_seed, entry["question"], str(entry["answer"]))
    steps: list = [ProblemLine(task.render(entry))]
    for b in tried:
        steps.append(Try(b.text))
        steps.extend(Check(c) for c in b.checks)
        steps.append(Reject(b.refutation))
    steps.append(Try(right.text))
    steps.extend(Check(c) for c in right.checks)
    steps.append(Answer(right.answer))
    meta = TraceMeta(searcher=searcher, nodes_expanded=len(tried) + 1, backtracks=len(tried), solved=True)
    return Trace(task=task.name, problem=problem, steps=steps, meta=meta)


def _covered(search: Callable[..., Trace]) -> Callable[..., Trace]:
    """``search``, with an entry the task does not cover reported as SearchFailed (same message)."""

    @functools.wraps(search)
    def run(task: GymTask, problem: GymProblem, options: SearchOptions, rng: random.Random) -> Trace:
        try:
            return search(task, problem, options, rng)
        except NotCovered as e:
            raise SearchFailed(str(e)) from e

    return run


@_covered
def direct(task: GymTask, problem: GymProblem, options: SearchOptions, rng: random.Random) -> Trace:
    """The correct branch only: its checks and the answer."""
    right, _ = task.branches(task.entry(problem), rng)
    return _trace(task, problem, [], right, "direct")


@_covered
def kbacktrack(task: GymTask, problem: GymProblem, options: SearchOptions, rng: random.Random) -> Trace:
    """Exactly ``options.k`` distinct wrong branches, each refuted, then the correct one."""
    right, wrongs = task.branches(task.entry(problem), rng)
    distinct = list({b.text: b for b in wrongs if b.refutation and b.text != right.text}.values())
    if len(distinct) < options.k:
        raise SearchFailed(f"only {len(distinct)} distinct wrong branches, {options.k} asked for")
    return _trace(task, problem, rng.sample(distinct, options.k), right, "kbacktrack")


SEARCHERS: dict[str, Callable[..., Trace]] = {"direct": direct, "kbacktrack": kbacktrack}
