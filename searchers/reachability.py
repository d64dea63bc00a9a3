"""Reachability searchers that write traces: ``path``, ``bfs`` and ``direct``.

Each runs a BFS from the root over the question's graph (:func:`reasonpipe.tasks.reachability.solve_graph`),
finds the one candidate it reaches, and writes the question line, a CoT, and ``A <answer>``:

* ``path`` (discrete CoT, Coconut's ProsQA): ``P root>...>answer``, the canonical shortest path (each node's
  predecessor the smallest id in the layer before it);
* ``bfs`` (frontier CoT, Reasoning by Superposition): ``F <layer k>`` for k = 1 .. the answer's layer, nodes
  ascending;
* ``direct``: the answer line only.

Meta: ``nodes_expanded`` = the nodes the BFS expanded before reaching the answer's layer (0 for ``direct``),
``backtracks`` = 0, ``solved`` = True. :class:`~reasonpipe.searchers.base.SearchFailed` when not exactly one candidate
is reachable (only possible for the user's own problems). Deterministic; ``rng`` is not used.

Example::

    reasonpipe gen reachability --n 3 --searcher bfs --seed 0 --out /tmp/reach.jsonl
"""

from __future__ import annotations

import random

from reasonpipe.errors import InputError
from reasonpipe.tasks.reachability import ReachProblem, solve_graph
from reasonpipe.traces import Trace, TraceMeta
from reasonpipe.traces.reachability import Answer, Frontier, Path, Question
from reasonpipe.searchers.base import SearchFailed, SearchOptions


def _search(task, problem: ReachProblem, name: str, cot: str) -> Trace:
    try:
        answer, layers, path = solve_graph(problem.nodes, problem.edges, problem.root, problem.candidates)
    except InputError as e:
        raise SearchFailed(e.message) from None
    depth = len(path) - 1
    steps: list = [Question(problem.edges, problem.candidates, problem.root)]
    if cot == "path":
        steps.append(Path(path))
    elif cot == "bfs":
        steps.extend(Frontier(layer) for layer in layers[1:depth + 1])
    steps.append(Answer(answer))
    expanded = sum(len(layer) for layer in layers[:depth]) if cot else 0
    meta = TraceMeta(searcher=name, nodes_expanded=expanded, backtracks=0, solved=True)
    return Trace(task=task.name, problem=problem, steps=steps, meta=meta)


def path(task, problem: ReachProblem, options: SearchOptions, rng: random.Random) -> Trace:
    """Question, ``P`` shortest path, answer (module docstring)."""
    return _search(task, problem, "path", "path")


def bfs(task, problem: ReachProblem, options: SearchOptions, rng: random.Random) -> Trace:
    """Question, one ``F`` line per BFS layer up to the answer's, answer (module docstring)."""
    return _search(task, problem, "bfs", "bfs")


def direct(task, problem: ReachProblem, options: SearchOptions, rng: random.Random) -> Trace:
    """Question and answer only (module docstring)."""
    return _search(task, problem, "direct", "")


__all__ = ["bfs", "direct", "path"]
