"""CountDown searchers that write Stream-of-Search traces: dfs, bfs, beam, direct, kbacktrack.

- ``dfs``: Stream of Search's depth-first search, writing the same bytes as its ``countdown_dfs.dfs``.
  Children of a node are all legal combinations of two of its numbers, sorted by the heuristic (``sum``:
  mean distance to the target; ``mult``: distance to the target's factors), those above the threshold (the
  target) pruned; after a failed child the trace moves back to the parent and restates it, which is one
  backtrack. A failed search just ends (``meta.solved`` is false), as theirs does.
- ``bfs`` / ``beam``: level by level; each expanded node keeps its ``beam`` best children and the next level
  keeps the ``beam`` best nodes (``bfs`` keeps all). Unlike Stream of Search's version, node order never
  depends on a shuffle, so the same problem always gives the same trace.
- ``direct``: the canonical solution path only (no search), in the same grammar.
- ``kbacktrack``: the solution path with exactly ``k`` detours (How Much Backtracking): each detour takes a
  distinct wrong operation (one whose resulting numbers cannot reach the target) at some node of the
  path, descends to a dead end, and moves back to that node.

The rules come from :mod:`reasonpipe.tasks.countdown`: a node's children are its ``successors`` (the
``legal_operations`` on each pair), and the solution path replays the solution with ``numbers_after``.

A node limit (``max_nodes`` expansions) ends the search unsolved (``meta.extra["truncated"]``); ``bfs``,
``beam`` and ``direct`` end a failed search with ``No solution found.``, as Stream of Search's BFS does.

Example::

    reasonpipe gen countdown --n 100 --searcher dfs --seed 1 --out /tmp/cd.jsonl
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import lru_cache

from reasonpipe.tasks.countdown import (CountdownProblem, CountdownTask, Nums, legal_operations, max_tree_nodes,
                                        numbers_after, replace_pair, solvable, solve, successors)
from reasonpipe.traces import Trace, TraceMeta
from reasonpipe.traces.countdown import DeadEnd, Exhausted, Explore, Generate, Goal, Move, Op, State, backtracks
from reasonpipe.searchers.base import SearchFailed, SearchOptions

# -- heuristics (Stream of Search) ------------------------------------------------------------------
# A heuristic maps the target to a per-number distance ``d``; a node's score is the sum of ``d`` over its
# numbers (divided by their count for ``sum``), so a child's score is its parent's minus the two operands'
# distances plus the result's: computed without building the child.

def sum_distance(target: int) -> Callable[[int], float]:
    """``sum``: distance to the target; a node scores the mean over its numbers."""
    return lambda x: abs(x - target)


@lru_cache(maxsize=4096)
def _factors(target: int) -> tuple[int, ...]:
    return tuple(f for f in range(2, target + 1) if target % f == 0) or (max(target, 1),)


def mult_distance(target: int) -> Callable[[int], float]:
    """``mult``: distance to the nearest factor (>= 2) of the target; a node scores the sum."""
    factors = _factors(target)
    return lambda x: min([abs(x - f) for f in factors])


HEURISTICS = {"sum": (sum_distance, True), "mult": (mult_distance, False)}


def score(heuristic: str, target: int, nums: Nums) -> float:
    """A node's heuristic score (lower is closer), as Stream of Search's ``sum_heuristic``/``mult_heuristic``."""
    make, mean = HEURISTICS[heuristic]
    d = make(target)
    total = sum([d(x) for x in nums])
    return total / len(nums) if mean else float(total)


def scored_children(nums: Nums, target: int, heuristic: str, threshold: float | None) -> list[tuple[float, Nums, Op]]:
    """The node's :func:`~reasonpipe.tasks.countdown.successors` with their scores, best first (stable: ties
    keep generation order), pruned above threshold; a child's numbers are built only when it is kept."""
    make, mean = HEURISTICS[heuristic]
    d = make(target)
    n = len(nums)
    dist = [d(x) for x in nums]
    total = sum(dist)
    m = n - 1
    limit = float("inf") if threshold is None else threshold * m if mean else threshold
    kept = []
    for i in range(n):
        a = nums[i]
        for j in range(i + 1, n):
            b = nums[j]
            base = total - dist[i] - dist[j]
            # scores compared before division by m, which keeps the comparison exact for integer distances
            for x, sym, y, r in legal_operations(a, b):
                h = base + d(r)
                if h <= limit:
                    kept.append((h, i, j, r, x, sym, y))
    kept.sort(key=lambda c: c[0])
    out = []
    for h, i, j, r, x, sym, y in kept:
        out.append((h / m if mean else h, replace_pair(nums, i, j, r), Op(x, sym, y, r)))
    return out


def _meta(name: str, problem: CountdownProblem, steps: list, nodes: int, solved: bool, **extra) -> TraceMeta:
    explored = sum(1 for s in steps if type(s) is Explore)
    rating = max(0.0, 1.0 - (explored + 1) / max_tree_nodes(len(problem.nums))) if solved else 0.0
    return TraceMeta(searcher=name, nodes_expanded=nodes, backtracks=backtracks(steps), solved=solved,
                     extra={"explored": explored, "rating": round(rating, 6), **extra})


# -- depth-first ------------------------------------------------------------------------------------

def dfs(task: CountdownTask, problem: CountdownProblem, options: SearchOptions, rng: random.Random) -> Trace:
    target = problem.target
    heuristic = options.heuristic
    threshold = target if options.threshold == "target" else None
    limit = options.max_nodes or float("inf")
    steps: list = []
    append = steps.append
    expanded = 0

    make, mean = HEURISTICS[heuristic]
    d = make(target)
    leaf_limit = float("inf") if threshold is None else threshold

    def expand(node: str, nums: Nums, ops: tuple[Op, ...], state: State) -> bool | None:
        """True: goal reached; False: subtree exhausted; None: node limit hit."""
        nonlocal expanded
        if expanded >= limit:
            return None
        expanded += 1
        back = None
        if len(nums) == 2:  # children are single numbers: the hot case, no child numbers built
            leaves = [(d(r), r, x, sym, y) for x, sym, y, r in legal_operations(nums[0], nums[1])]
            leaves = [c for c in leaves if c[0] <= leaf_limit]
            leaves.sort(key=lambda c: c[0])
            last = len(leaves) - 1
            for g, (_, r, x, sym, y) in enumerate(leaves):
                append(Explore(Op(x, sym, y, r), (r,)))
                if r == target:
                    append(Goal(target, target))
                    return True
                append(DeadEnd(r, target))
                if g < last:
                    if back is None:
                        back = Move(node)
                    append(back)
                    append(state)
            return False
        scored = scored_children(nums, target, heuristic, threshold)  # children have 2+ numbers here
        last = len(scored) - 1
        for g, (_, new, op) in enumerate(scored):
            child = f"{node},{g}"
            child_ops = ops + (op,)
            child_state = State(target, new, child_ops)
            append(Explore(op, new))
            append(Generate(child, target, new, op))
            append(Move(child))
            append(child_state)
            found = expand(child, new, child_ops, child_state)
            if found or found is None:
                return found
            if g < last:
                if back is None:
                    back = Move(node)
                append(back)
                append(state)
        return False

    root = State(target, problem.nums, ())
    append(root)
    solved = expand("0", problem.nums, (), root) is True  # a failed search just ends, as Stream of Search's
    meta = _meta("dfs", problem, steps, expanded, solved, heuristic=options.heuristic, threshold=options.threshold,
                 truncated=bool(options.max_nodes) and expanded >= options.max_nodes and not solved)
    return Trace("countdown", problem, steps, meta)


# -- breadth-first / beam ---------------------------------------------------------------------------

def _beam_search(name: str, width: int | None, problem: CountdownProblem, options: SearchOptions) -> Trace:
    target = problem.target
    limit = options.max_nodes or float("inf")
    steps: list = []
    append = steps.append
    expanded = 0
    frontier = [("0", problem.nums, ())]
    append(State(target, problem.nums, ()))
    solved = truncated = False
    while frontier and not solved and not truncated:
        level = []  # (score, id, nums, ops) of every child generated at this level
        for idx, (node, nums, ops) in enumerate(frontier):
            if expanded >= limit:
                truncated = True
                break
            if idx > 0:
                append(Move(node))
                append(State(target, nums, ops))
            expanded += 1
            scored = scored_children(nums, target, options.heuristic, None)
            if width is not None:
                scored = scored[:width]
            for g, (score, new, op) in enumerate(scored):
                append(Explore(op, new))
                if len(new) == 1:
                    if new[0] == target:
                        append(Goal(target, target))
                        solved = True
                        break
                    append(DeadEnd(new[0], target))
                else:
                    child = f"{node},{g}"
                    append(Generate(child, target, new, op))
                    level.append((score, child, new, ops + (op,)))
            if solved:
                break
        if solved or truncated:
            break
        level.sort(key=lambda c: c[0])
        if width is not None:
            level = level[:width]
        frontier = [(child, new, ops) for _, child, new, ops in level]
        if frontier:
            node, nums, ops = frontier[0]
            append(Move(node))
            append(State(target, nums, ops))
    if not solved:
        append(Exhausted())
    meta = _meta(name, problem, steps, expanded, solved, heuristic=options.heuristic, beam=width,
                 truncated=truncated)
    return Trace("countdown", problem, steps, meta)


def beam(task: CountdownTask, problem: CountdownProblem, options: SearchOptions, rng: random.Random) -> Trace:
    return _beam_search("beam", options.beam, problem, options)


def bfs(task: CountdownTask, problem: CountdownProblem, options: SearchOptions, rng: random.Random) -> Trace:
    return _beam_search("bfs", None, problem, options)


# -- solution path, with or without k detours --------------------------------------------------------

def _path(problem: CountdownProblem) -> list[tuple[Nums, tuple[Op, ...]]]:
    """The canonical solution as the list of (nums, ops) of every node on it, root first."""
    solution = solve(problem.nums, problem.target)
    if solution is None:
        raise SearchFailed(f"no solution for {CountdownTask.problem_label(problem)}")
    nodes = [(problem.nums, ())]
    for op in solution:
        nums, ops = nodes[-1]
        nodes.append((tuple(numbers_after(nums, op)), ops + (op,)))
    return nodes


def _write_path(problem: CountdownProblem, path: list[tuple[Nums, tuple[Op, ...]]],
                detours: dict[int, list[tuple[Nums, Op]]], rng: random.Random) -> tuple[list, int]:
    """Steps for the solution path, taking the listed wrong children (and a dead end below each) first."""
    target = problem.target
    steps: list = [State(target, path[0][0], ())]
    node = "0"
    expanded = 0
    for depth in range(len(path) - 1):
        nums, ops = path[depth]
        state = State(target, nums, ops)
        expanded += 1
        index = 0
        for new, op in detours.get(depth, []):
            # Descend one random line of the wrong subtree to a dead end, then return to this node.
            child, cur, cur_ops = f"{node},{index}", new, ops + (op,)
            index += 1
            steps.append(Explore(op, cur))
            while len(cur) > 1:
                steps += [Generate(child, target, cur, cur_ops[-1]), Move(child), State(target, cur, cur_ops)]
                expanded += 1
                cur, op2 = rng.choice(list(successors(cur)))
                cur_ops = cur_ops + (op2,)
                child += ",0"
                steps.append(Explore(op2, cur))
            steps.append(DeadEnd(cur[0], target))
            steps += [Move(node), state]
        new, new_ops = path[depth + 1]
        steps.append(Explore(new_ops[-1], new))
        if len(new) == 1:
            steps.append(Goal(target, target))
        else:
            node = f"{node},{index}"
            steps += [Generate(node, target, new, new_ops[-1]), Move(node), State(target, new, new_ops)]
    return steps, expanded


def direct(task: CountdownTask, problem: CountdownProblem, options: SearchOptions, rng: random.Random) -> Trace:
    try:
        path = _path(problem)
    except SearchFailed:
        steps = [State(problem.target, problem.nums, ()), Exhausted()]
        return Trace("countdown", problem, steps, _meta("direct", problem, steps, 0, False, unsolvable=True))
    steps, expanded = _write_path(problem, path, {}, rng)
    return Trace("countdown", problem, steps, _meta("direct", problem, steps, expanded, True))


def kbacktrack(task: CountdownTask, problem: CountdownProblem, options: SearchOptions,
               rng: random.Random) -> Trace:
    path = _path(problem)
    target = problem.target
    wrong: list[tuple[int, Nums, Op]] = []
    seen: set[tuple[int, str]] = set()
    for depth in range(len(path) - 1):
        right = path[depth + 1][1][-1]
        for new, op in successors(path[depth][0]):
            key = (depth, str(op))
            if op == right or key in seen:
                continue
            seen.add(key)
            dead = not solvable(new, target)
            if dead:
                wrong.append((depth, new, op))
    if len(wrong) < options.k:
        raise SearchFailed(f"only {len(wrong)} distinct wrong branches for k={options.k}")
    chosen = sorted(rng.sample(range(len(wrong)), options.k))
    detours: dict[int, list[tuple[Nums, Op]]] = {}
    for i in chosen:
        depth, new, op = wrong[i]
        detours.setdefault(depth, []).append((new, op))
    steps, expanded = _write_path(problem, path, detours, rng)
    meta = _meta("kbacktrack", problem, steps, expanded, True, k=options.k,
                 branches=[f"{depth}:{op}" for depth, _, op in (wrong[i] for i in chosen)])
    return Trace("countdown", problem, steps, meta)
