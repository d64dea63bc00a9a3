"""Sudoku searchers that write To-Backtrack-or-Not traces: ``dfs``, ``direct`` and ``kbacktrack``, on every
board size (9x9, 6x6, 4x4: the problem's).

* ``dfs``: naked and hidden singles (one placement line each, in the order of
  :func:`reasonpipe.tasks.sudoku.propagate_singles`), then a guess on the empty cell with the fewest
  candidates (ties: first in row-major order; values in ascending order). A guess writes
  ``guess: (r, c) [cands] = v`` and its placement; a contradiction writes ``nocand: (r, c)`` or
  ``invalid`` and then ``revert: (r, c) [cands] = None`` for the guess being abandoned; when every
  value of a guess has failed, the enclosing guess is reverted next. ``SOL_E END`` when solved;
  ``UNSOLVED END`` at the node limit (``max_nodes`` guesses) or when the puzzle has no solution.
* ``direct``: the dfs's solution path only: every placement that stands in the final grid, in the
  order the dfs made it (correct guesses become plain placements), then ``SOL_E END``.
* ``kbacktrack`` (How Much Backtracking): the direct path with exactly ``k`` detours, each a
  distinct wrong ``(cell, value)`` tried at some point of the path on a cell with two or more
  candidates, whose singles lead to a contradiction with no further guess; each detour is written
  like a dfs branch (guess, placements, contradiction, revert) before the path continues. Points,
  cells and values are drawn with ``rng``; :class:`~reasonpipe.searchers.base.SearchFailed` when fewer than
  ``k`` such detours exist.

The traces of ``dfs`` do not depend on ``rng``; all three are deterministic given its seed.

Example::

    reasonpipe gen sudoku --n 3 --searcher kbacktrack --k 2 --seed 0 --out /tmp/sd.jsonl
"""

from __future__ import annotations

import random

from reasonpipe.tasks.sudoku import (DIGITS, GEOMETRIES, POPCOUNT, Board, first_conflict, propagate_singles,
                                     start_step)
from reasonpipe.traces import Trace, TraceMeta
from reasonpipe.traces.sudoku import End, GiveUp, Guess, Invalid, NoCand, Place, Revert
from reasonpipe.searchers.base import SearchFailed, SearchOptions

# Placement steps are immutable, so one object per (cell, value) serves every trace: per board size,
# _PLACES[size][cell][value].
_PLACES = {size: tuple(tuple(Place(g.row[i], g.col[i], v) for v in range(size + 1)) for i in range(g.cells))
           for size, g in GEOMETRIES.items()}


class _NodeLimit(Exception):
    """Raised inside the search when ``max_nodes`` guesses have been made."""


class _Dfs:
    """One depth-first search; ``steps`` is the trace so far, ``path`` the placements now standing."""

    def __init__(self, board: Board, max_nodes: int) -> None:
        self.board = board
        self.places = _PLACES[board.g.size]
        self.max_nodes = max_nodes
        self.steps: list = []
        self.path: list[tuple[int, int]] = []
        self.nodes = 0
        self.backtracks = 0

    def propagate(self) -> bool:
        """Write the singles; False (after writing the contradiction) when the board is contradictory."""
        placed: list[tuple[int, int]] = []
        contradiction = propagate_singles(self.board, placed)
        places, g = self.places, self.board.g
        self.steps.extend(places[i][v] for i, v in placed)
        self.path.extend(placed)
        if contradiction is not None:
            kind, i = contradiction
            self.steps.append(NoCand(g.row[i], g.col[i]) if kind == "nocand" else Invalid())
            return False
        return True

    def search(self) -> bool:
        if not self.propagate():
            return False
        board = self.board
        g = board.g
        best, best_m = -1, 0
        for i in range(g.cells):
            if not board.cells[i]:
                m = board.candidates(i)
                if best < 0 or POPCOUNT[m] < POPCOUNT[best_m]:
                    best, best_m = i, m
                    if POPCOUNT[m] == 2:
                        break
        if best < 0:
            return True
        r, c, cands = g.row[best], g.col[best], DIGITS[best_m]
        for v in cands:
            if self.max_nodes and self.nodes >= self.max_nodes:
                raise _NodeLimit
            self.nodes += 1
            mark = len(self.path)
            self.steps.append(Guess(r, c, cands, v))
            self.steps.append(self.places[best][v])
            board.place(best, v)
            self.path.append((best, v))
            if self.search():
                return True
            for i, _ in self.path[mark:]:
                board.clear(i)
            del self.path[mark:]
            self.steps.append(Revert(r, c, cands))
            self.backtracks += 1
        return False


def _run_dfs(problem, max_nodes: int) -> tuple[_Dfs, bool]:
    cells = problem.cells()
    if first_conflict(cells) is not None:
        raise SearchFailed("the givens conflict")
    run = _Dfs(Board(cells), max_nodes)
    run.steps.append(start_step(problem))
    try:
        solved = run.search()
    except _NodeLimit:
        solved = False
    run.steps.append(End() if solved else GiveUp())
    return run, solved


def dfs(task, problem, options: SearchOptions, rng: random.Random) -> Trace:
    """Singles, then fewest-candidate guesses with backtracking (module docstring)."""
    run, solved = _run_dfs(problem, options.max_nodes)
    meta = TraceMeta(searcher="dfs", nodes_expanded=run.nodes, backtracks=run.backtracks, solved=solved)
    return Trace(task=task.name, problem=problem, steps=run.steps, meta=meta)


def _solution_path(problem, options: SearchOptions) -> list[tuple[int, int]]:
    run, solved = _run_dfs(problem, options.max_nodes)
    if not solved:
        raise SearchFailed("the dfs found no solution" + (" within max_nodes" if options.max_nodes else ""))
    return run.path


def direct(task, problem, options: SearchOptions, rng: random.Random) -> Trace:
    """The solution path only (module docstring)."""
    path = _solution_path(problem, options)
    places = _PLACES[problem.size]
    steps = [start_step(problem)] + [places[i][v] for i, v in path] + [End()]
    meta = TraceMeta(searcher="direct", nodes_expanded=0, backtracks=0, solved=True)
    return Trace(task=task.name, problem=problem, steps=steps, meta=meta)


def _detour(board: Board, i: int, w: int) -> list | None:
    """The branch ``guess (i) = w`` on ``board`` written out, when its singles reach a contradiction
    without a further guess; None otherwise. ``board`` is left as it was."""
    trial = board.copy()
    cands = DIGITS[trial.candidates(i)]
    trial.place(i, w)
    placed: list[tuple[int, int]] = []
    contradiction = propagate_singles(trial, placed)
    if contradiction is None:
        return None
    g, places = board.g, _PLACES[board.g.size]
    r, c = g.row[i], g.col[i]
    kind, j = contradiction
    return ([Guess(r, c, cands, w), places[i][w]] + [places[p][v] for p, v in placed]
            + [NoCand(g.row[j], g.col[j]) if kind == "nocand" else Invalid(), Revert(r, c, cands)])


def kbacktrack(task, problem, options: SearchOptions, rng: random.Random) -> Trace:
    """The direct path with exactly ``options.k`` distinct failed detours (module docstring)."""
    path = _solution_path(problem, options)
    board = Board(problem.cells())
    solution = board.cells[:]
    for i, v in path:
        solution[i] = v
    # every (point on the path, cell with >= 2 candidates there, wrong value), drawn in random order
    options_at: list[tuple[int, int, int]] = []
    for j, (pi, pv) in enumerate(path):
        for i in range(board.g.cells):
            if not board.cells[i]:
                m = board.candidates(i)
                if POPCOUNT[m] >= 2:
                    options_at.extend((j, i, w) for w in DIGITS[m] if w != solution[i])
        board.place(pi, pv)
    rng.shuffle(options_at)

    detours: dict[int, list] = {}
    used: set[tuple[int, int]] = set()
    boards: dict[int, Board] = {}
    for j, i, w in options_at:
        if len(used) == options.k:
            break
        if (i, w) in used:
            continue
        at = boards.get(j)
        if at is None:
            at = boards[j] = Board(problem.cells())
            for pi, pv in path[:j]:
                at.place(pi, pv)
        steps = _detour(at, i, w)
        if steps is not None:
            used.add((i, w))
            detours.setdefault(j, []).extend(steps)
    if len(used) < options.k:
        raise SearchFailed(f"only {len(used)} distinct wrong branches end in a contradiction by singles; "
                           f"k={options.k} asked")

    steps = [start_step(problem)]
    places = _PLACES[problem.size]
    for j, (i, v) in enumerate(path):
        steps.extend(detours.get(j, ()))
        steps.append(places[i][v])
    steps.append(End())
    meta = TraceMeta(searcher="kbacktrack", nodes_expanded=options.k, backtracks=options.k, solved=True)
    return Trace(task=task.name, problem=problem, steps=steps, meta=meta)


__all__ = ["dfs", "direct", "kbacktrack"]
