"""Exact step verification of Sudoku traces in the To-Backtrack-or-Not grammar (9x9, 6x6 and 4x4 boards).

Replays the board the trace describes and checks every step against the rules of its size ``n`` (the
problem's, else the START line's): cells ``(0..n-1, 0..n-1)``, digits ``1..n``:

- ``START``: a board size we know, the givens are on the board, each cell given once, no two in conflict,
  and equal to the trace's problem (size included) when it has one (the board then starts from the
  problem, whatever START says);
- ``(r, c) = v``: the cell is empty and ``v`` is legal there (no peer holds it); right after a guess it
  must place the guessed value;
- ``guess: (r, c) [cands] = v``: the cell is empty, ``v`` is among the listed candidates and every
  listed candidate is legal there (a subset of the legal digits is fine: other solvers prune more);
  it opens a branch;
- ``nocand: (r, c)``: that cell is empty and no digit is legal there;
- ``invalid``: some empty cell has no candidate, or some digit has no place left in a row, column or box;
- ``revert: (r, c) [cands] = None``: an open guess at that cell exists (the most recent one is taken)
  and lists the same candidates; it and every placement after it are undone, closing any guess
  opened after it;
- ``SOL_E END``: the grid is complete, valid and keeps the givens; a proved one makes the trace solved;
- ``UNSOLVED END`` is a claim about the search, not a step: ``no_check``;
- a line outside the grammar is ``unformalizable``, and so is any step before the START line.

A refuted placement is not applied, so the board stays legal and later steps are checked against it.
A checker failure makes that step (and the steps after it, which were not checked) ``error``, never
``refuted``.

Example::

    reasonpipe verify sd.jsonl
"""

from __future__ import annotations

from reasonpipe.tasks.sudoku import (BIT, BY_CELLS, DIGITS, Board, cell_name, first_conflict, givens_problem,
                                     is_solution, shared_unit)
from reasonpipe.traces import Trace
from reasonpipe.traces.sudoku import End, GiveUp, Guess, Invalid, NoCand, Place, Revert, Start, Unparsed
from reasonpipe.verifiers.verdicts import ExactVerifier, StepVerdict, Verdict

_P = Verdict.PROVED
_R = Verdict.REFUTED
_PLACE_OK = StepVerdict(_P, "cell empty and value legal")
_GUESS_OK = StepVerdict(_P, "cell empty, value among the candidates, every candidate legal")
_GIVE_UP = StepVerdict(Verdict.NO_CHECK, "a claim about the search, not a checkable step")
_UNPARSED = StepVerdict(Verdict.UNFORMALIZABLE, "line is not in the Sudoku trace grammar")
_FOREIGN = StepVerdict(Verdict.UNFORMALIZABLE, "not a Sudoku trace step")
_BEFORE_START = StepVerdict(Verdict.UNFORMALIZABLE, "before the START line: no board yet")
_NO_BOARD = StepVerdict(Verdict.UNFORMALIZABLE, "no board: the START line's givens are not a valid puzzle")


def _fmt(values) -> str:
    return "[" + ", ".join(map(str, values)) + "]"


def _problem_cells(problem) -> list[int] | None:
    """The problem's cells when it is a well-formed, conflict-free puzzle; None otherwise."""
    puzzle = getattr(problem, "puzzle", None)
    if (not isinstance(puzzle, str) or len(puzzle) not in BY_CELLS or not puzzle.isascii()
            or not puzzle.isdigit()):
        return None
    cells = [ord(ch) - 48 for ch in puzzle]
    if max(cells) > BY_CELLS[len(cells)]:
        return None
    return cells if first_conflict(cells) is None else None


def _off_board(r: int, c: int, n: int) -> StepVerdict | None:
    if 0 <= r < n and 0 <= c < n:
        return None
    return StepVerdict(_R, f"({r}, {c}) is off the {n}x{n} board")


class SudokuReplay:
    """The board as the trace has built it so far, with its open guesses."""

    def __init__(self, problem) -> None:
        self.problem_cells = _problem_cells(problem)
        self.started = False
        self.board: Board | None = None
        self.givens: list[int] = []
        self.placed: list[int] = []                                # cells placed, in order
        self.guesses: list[tuple[int, tuple[int, ...], int, int]] = []  # (cell, cands, value, len(placed))
        self.pending: tuple[int, int] | None = None                # (cell, value) a guess's placement must be
        self.solved = False

    def no_board(self) -> StepVerdict:
        return _NO_BOARD if self.started else _BEFORE_START

    def _cell(self, row: int, col: int) -> int | StepVerdict:
        """The index of cell (row, col) on the current board, or the verdict that ends the step."""
        if self.board is None:
            return self.no_board()
        n = self.board.g.size
        off = _off_board(row, col, n)
        return off if off is not None else n * row + col

    def _name(self, i: int) -> str:
        return cell_name(i, self.board.g.size)

    def _why_illegal(self, i: int, v: int) -> str:
        board = self.board
        if board.cells[i]:
            return f"{self._name(i)} already holds {board.cells[i]}" + (" (a given)" if self.givens[i] else "")
        j = board.conflict(i, v)
        return f"{self._name(i)} = {v} conflicts with {self._name(j)} = {v} in {shared_unit(i, j, board.g.size)}"

    def start(self, step: Start) -> StepVerdict:
        if self.started:
            return StepVerdict(_R, "a second START line (the board is not reset)")
        self.started = True
        cells, error = givens_problem(step.givens, step.size)
        known = self.problem_cells
        if error is None and known is not None and len(cells) != len(known):
            n = BY_CELLS[len(known)]
            error = f"START states a {step.size}x{step.size} board, the problem is {n}x{n}"
        elif error is None and known is not None and cells != known:
            i = next(k for k in range(len(known)) if cells[k] != known[k])
            error = (f"START differs from the problem at {cell_name(i, step.size)}: it states "
                     f"{cells[i] or 'a blank'}, the problem has {known[i] or 'a blank'}")
        if error is None:
            known = cells
        if known is not None:
            self.board = Board(known)
            self.givens = known[:]
        if error is not None:
            return StepVerdict(_R, error)
        return StepVerdict(_P, "givens match the problem and do not conflict" if self.problem_cells is not None
                           else "givens do not conflict")

    def place(self, step: Place) -> StepVerdict:
        pending, self.pending = self.pending, None
        r, c, v = step.row, step.col, step.value
        i = self._cell(r, c)
        if type(i) is not int:
            return i
        board = self.board
        n = board.g.size
        if not 1 <= v <= n:
            return StepVerdict(_R, f"({r}, {c}) = {v}: value is not a digit 1..{n}")
        if pending is not None and pending != (i, v):
            return StepVerdict(_R, f"the guess before it tried {self._name(pending[0])} = {pending[1]}; "
                                   "this line must place that")
        if board.cells[i] or not board.candidates(i) & BIT[v]:
            return StepVerdict(_R, self._why_illegal(i, v))
        board.place(i, v)
        self.placed.append(i)
        return _PLACE_OK

    def guess(self, step: Guess) -> StepVerdict:
        self.pending = None
        v = step.value
        i = self._cell(step.row, step.col)
        if type(i) is not int:
            return i
        board = self.board
        n = board.g.size
        if board.cells[i]:
            return StepVerdict(_R, f"{self._name(i)} already holds {board.cells[i]}")
        self.guesses.append((i, step.cands, v, len(self.placed)))
        self.pending = (i, v)
        legal = board.candidates(i)
        if not step.cands:
            return StepVerdict(_R, f"no candidates listed for {self._name(i)}")
        for x in step.cands:
            if not 1 <= x <= n:
                return StepVerdict(_R, f"candidate {x} is not a digit 1..{n}")
            if not legal & BIT[x]:
                return StepVerdict(_R, f"candidate {x} is not legal: {self._why_illegal(i, x)}")
        if v not in step.cands:
            return StepVerdict(_R, f"value {v} is not among the listed candidates {_fmt(step.cands)}")
        return _GUESS_OK

    def nocand(self, step: NoCand) -> StepVerdict:
        self.pending = None
        i = self._cell(step.row, step.col)
        if type(i) is not int:
            return i
        board = self.board
        if board.cells[i]:
            return StepVerdict(_R, f"{self._name(i)} is not empty (holds {board.cells[i]})")
        legal = board.candidates(i)
        if legal:
            return StepVerdict(_R, f"{self._name(i)} still has candidates {_fmt(DIGITS[legal])}")
        return StepVerdict(_P, f"{self._name(i)} is empty and every digit is taken by a peer")

    def invalid(self, step: Invalid) -> StepVerdict:
        self.pending = None
        if self.board is None:
            return self.no_board()
        why = self.board.contradiction()
        if why is None:
            return StepVerdict(_R, "every empty cell has a candidate and every digit has a place in every row, "
                                   "column and box")
        return StepVerdict(_P, why)

    def revert(self, step: Revert) -> StepVerdict:
        self.pending = None
        i = self._cell(step.row, step.col)
        if type(i) is not int:
            return i
        board = self.board
        g = len(self.guesses) - 1
        while g >= 0 and self.guesses[g][0] != i:
            g -= 1
        if g < 0:
            last = f"; the most recent open guess is at {self._name(self.guesses[-1][0])}" if self.guesses else ""
            return StepVerdict(_R, f"no open guess at {self._name(i)} to revert{last}")
        _, cands, value, mark = self.guesses[g]
        undone = self.placed[mark:]
        for j in undone:
            board.clear(j)
        del self.placed[mark:], self.guesses[g:]
        if step.cands != cands:
            return StepVerdict(_R, f"lists candidates {_fmt(step.cands)} but the guess at {self._name(i)} "
                                   f"listed {_fmt(cands)}")
        return StepVerdict(_P, f"undid the guess {self._name(i)} = {value} and {len(undone)} placement(s)")

    def end(self, step: End) -> StepVerdict:
        self.pending = None
        board = self.board
        if board is None:
            return self.no_board()
        cells = board.cells
        empty = cells.count(0)
        if empty:
            i = cells.index(0)
            return StepVerdict(_R, f"the grid is not complete: {empty} empty cell(s), the first {self._name(i)}")
        if not is_solution(cells):
            return StepVerdict(_R, "the grid breaks a row, column or box")
        for i, g in enumerate(self.givens):
            if g and cells[i] != g:
                return StepVerdict(_R, f"{self._name(i)} holds {cells[i]} but the given is {g}")
        self.solved = True
        return StepVerdict(_P, "the grid is complete, valid and keeps the givens")


class SudokuVerifier(ExactVerifier):
    """Verifier contract: ``verify(trace) -> [StepVerdict]``; ``report(trace)`` sums it up."""

    task = "sudoku"

    def _check(self, trace: Trace) -> tuple[list[StepVerdict], bool]:
        """One verdict per step, and whether a ``SOL_E END`` claim was proved."""
        steps = trace.steps
        out: list[StepVerdict] = []
        try:
            replay = SudokuReplay(trace.problem)
            handlers = {Place: replay.place, Guess: replay.guess, Revert: replay.revert, NoCand: replay.nocand,
                        Invalid: replay.invalid, Start: replay.start, End: replay.end}
            for step in steps:
                t = type(step)
                handler = handlers.get(t)
                if handler is not None:
                    if replay.started or t is Start:
                        out.append(handler(step))
                    else:
                        out.append(_BEFORE_START)
                elif t is GiveUp:
                    replay.pending = None
                    out.append(_GIVE_UP)
                elif t is Unparsed:
                    replay.pending = None
                    out.append(_UNPARSED)
                else:
                    out.append(_FOREIGN)
        except Exception as e:  # a checker bug must never read as a refutation
            k = len(out)
            out.append(StepVerdict(Verdict.ERROR, f"verifier crashed: {type(e).__name__}: {e}"))
            out.extend([StepVerdict(Verdict.ERROR, f"not checked: the verifier crashed at step {k + 1}")]
                       * (len(steps) - k - 1))
            return out, False
        return out, replay.solved
