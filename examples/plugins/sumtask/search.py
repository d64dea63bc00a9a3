"""Searchers of "sum to target", each ``(task, problem, options, rng) -> Trace`` (reasonpipe's Searcher contract):
``dfs`` writes the whole depth-first search, dead ends and backtracks included; ``direct`` only the path to the
answer it finds. Named in configs as ``searcher: sumtask.search:dfs``.

Example::

    PYTHONPATH=examples/plugins python -c "import random; from sumtask.search import dfs; from sumtask.task import SumProblem, SumTask; print(dfs(SumTask(), SumProblem((4, 6, 3), 7), None, random.Random(0)).to_text())"
"""

from __future__ import annotations

import random
from typing import Any

from reasonpipe.searchers.base import SearchFailed
from reasonpipe.traces import Trace, TraceMeta
from sumtask.grammar import Answer, Numbers, Skip, Take
from sumtask.task import SumProblem


def _search(problem: SumProblem) -> tuple[list, list[int], int, int]:
    """Depth-first over the numbers in order, taking a number before leaving it out, never past the target:
    (the steps after the problem line, the indices taken, nodes expanded, backtracks)."""
    numbers, target = problem.numbers, problem.target
    steps: list[Any] = []
    taken: list[int] = []
    counts = {"nodes": 0, "backtracks": 0}

    def visit(i: int, total: int) -> bool:
        counts["nodes"] += 1
        if total == target:
            return True
        if i == len(numbers):
            return False
        if total + numbers[i] <= target:
            steps.append(Take(numbers[i], i, total + numbers[i]))
            taken.append(i)
            if visit(i + 1, total + numbers[i]):
                return True
            taken.pop()
            counts["backtracks"] += 1
        steps.append(Skip(numbers[i], i, total))
        return visit(i + 1, total)

    if not visit(0, 0):
        raise SearchFailed(f"no numbers of {list(numbers)} add up to {target}")
    return steps, taken, counts["nodes"], counts["backtracks"]


def dfs(task: Any, problem: SumProblem, options: Any, rng: random.Random) -> Trace:
    steps, taken, nodes, backtracks = _search(problem)
    answer = Answer(tuple(problem.numbers[i] for i in taken))
    return Trace(task=task.name, problem=problem, steps=[Numbers(problem.numbers, problem.target), *steps, answer],
                 meta=TraceMeta(searcher="dfs", nodes_expanded=nodes, backtracks=backtracks, solved=True))


def direct(task: Any, problem: SumProblem, options: Any, rng: random.Random) -> Trace:
    _, taken, nodes, _ = _search(problem)
    steps: list[Any] = [Numbers(problem.numbers, problem.target)]
    total = 0
    for i in range(max(taken) + 1):
        if i in taken:
            total += problem.numbers[i]
            steps.append(Take(problem.numbers[i], i, total))
        else:
            steps.append(Skip(problem.numbers[i], i, total))
    steps.append(Answer(tuple(problem.numbers[i] for i in taken)))
    return Trace(task=task.name, problem=problem, steps=steps,
                 meta=TraceMeta(searcher="direct", nodes_expanded=nodes, backtracks=0, solved=True))
