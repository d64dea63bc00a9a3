"""Sudoku (9x9): the rules, puzzles with a unique solution, and what counts as a solved grid.

A puzzle is 81 characters in row-major order, ``0`` (or ``.`` on input) for a blank. Cells are
numbered ``i = 9 * row + col``; digit ``v`` is the bit ``1 << (v - 1)`` of a 9-bit candidate mask.

Generators (``SudokuConfig.source``):

* ``own`` (default): a random full grid (three diagonal boxes shuffled, the rest filled by a
  randomised search), then cells removed in random order while the solution stays unique, until
  exactly ``givens`` remain. Uniqueness after removing cell ``i`` (solution value ``s``) is checked by
  asking whether any solution puts another value at ``i``, so most removals cost one bitmask lookup.
  ``require_guess=True`` wants puzzles that naked + hidden singles cannot finish (only ~15% of
  random 30-given puzzles): swaps of a given and a blank that keep the solution unique climb until
  singles are stuck (see :func:`dig`); ``False`` keeps only puzzles singles finish. Random removal rarely gets
  below ~22 givens; asking for fewer fails with a clear error after ``MAX_ATTEMPTS`` grids.
* ``dokusan``: ``dokusan.generators.random_sudoku(avg_rank)``, the generator To Backtrack or Not used
  (about 9.5 puzzles/s). It draws from the global ``random`` module, so we seed that from ``rng`` and
  restore its state afterwards (not thread-safe). ``givens`` does not apply; ``require_guess`` does.

Scoring: the answer is the grid a trace arrives at after replaying its placements and reverts; it
scores 1.0 when complete, valid and consistent with the givens (the paper's "solved"), whether or not
the trace wrote ``SOL_E END``.

Example::

    python -c "from reasonpipe.tasks.sudoku import SudokuTask; import random; print(SudokuTask().generate(random.Random(0)).puzzle)"
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.traces import sudoku as grammar_module
from reasonpipe.traces.sudoku import End, GiveUp, Guess, Invalid, NoCand, Place, Revert, Start
from reasonpipe.traces.tokens import vocabulary_from

SOURCES = ("own", "dokusan")
ALL = 0x1FF  # the nine digits
BIT = (0,) + tuple(1 << (v - 1) for v in range(1, 10))  # BIT[v]; BIT[0] = 0 (blank)
ROW = tuple(i // 9 for i in range(81))
COL = tuple(i % 9 for i in range(81))
BOX = tuple(3 * (i // 27) + (i % 9) // 3 for i in range(81))
UNITS = (tuple(tuple(9 * r + c for c in range(9)) for r in range(9))
         + tuple(tuple(9 * r + c for r in range(9)) for c in range(9))
         + tuple(tuple(9 * (3 * (b // 3) + k // 3) + 3 * (b % 3) + k % 3 for k in range(9)) for b in range(9)))
PEERS = tuple(tuple(j for j in range(81) if j != i and (ROW[j] == ROW[i] or COL[j] == COL[i] or BOX[j] == BOX[i]))
              for i in range(81))
POPCOUNT = tuple(bin(m).count("1") for m in range(512))
DIGITS = tuple(tuple(v for v in range(1, 10) if m & BIT[v]) for m in range(512))  # digits of a mask, ascending
MAX_ATTEMPTS = 200      # own generator: fresh grids tried before giving up on the asked-for puzzle
MAX_SWAPS = 200         # own generator, require_guess=True: given/blank swaps tried per grid
MAX_DOKUSAN_DRAWS = 50  # dokusan: redraws for require_guess


def unit_name(u: int) -> str:
    """``row r`` / ``column c`` / ``box b`` for unit index ``u`` (rows 0-8, columns 9-17, boxes 18-26)."""
    return ("row", "column", "box")[u // 9] + f" {u % 9}"


def shared_unit(i: int, j: int) -> str:
    """The name of a unit two peer cells share (row first)."""
    if ROW[i] == ROW[j]:
        return f"row {ROW[i]}"
    if COL[i] == COL[j]:
        return f"column {COL[i]}"
    return f"box {BOX[i]}"


def cell_name(i: int) -> str:
    return f"({ROW[i]}, {COL[i]})"


# -- the board --------------------------------------------------------------------------------------

class Board:
    """A partial grid with per-row/column/box masks of the digits already used.

    The masks are kept for legal boards only: ``place`` assumes the value is legal (check with
    ``candidates``) and ``clear`` assumes the cell holds a value.
    """

    __slots__ = ("cells", "rows", "cols", "boxes")

    def __init__(self, cells: list[int] | None = None) -> None:
        self.cells = list(cells) if cells is not None else [0] * 81
        self.rows = [0] * 9
        self.cols = [0] * 9
        self.boxes = [0] * 9
        for i, v in enumerate(self.cells):
            if v:
                b = BIT[v]
                self.rows[ROW[i]] |= b
                self.cols[COL[i]] |= b
                self.boxes[BOX[i]] |= b

    def copy(self) -> "Board":
        new = Board.__new__(Board)
        new.cells, new.rows, new.cols, new.boxes = self.cells[:], self.rows[:], self.cols[:], self.boxes[:]
        return new

    def candidates(self, i: int) -> int:
        """Mask of the digits legal at cell ``i`` (whether or not it is empty)."""
        return ALL & ~(self.rows[ROW[i]] | self.cols[COL[i]] | self.boxes[BOX[i]])

    def place(self, i: int, v: int) -> None:
        b = BIT[v]
        self.cells[i] = v
        self.rows[ROW[i]] |= b
        self.cols[COL[i]] |= b
        self.boxes[BOX[i]] |= b

    def clear(self, i: int) -> None:
        b = ~BIT[self.cells[i]]
        self.cells[i] = 0
        self.rows[ROW[i]] &= b
        self.cols[COL[i]] &= b
        self.boxes[BOX[i]] &= b

    def conflict(self, i: int, v: int) -> int | None:
        """A peer of ``i`` that holds ``v``, or None."""
        for j in PEERS[i]:
            if self.cells[j] == v:
                return j
        return None

    def contradiction(self) -> str | None:
        """Why the board cannot be completed by any placement, or None: an empty cell without
        candidate (first in row-major order), else a digit with no place left in a unit."""
        cells = self.cells
        for i in range(81):
            if not cells[i] and not self.candidates(i):
                return f"{cell_name(i)} has no candidate"
        for u, unit in enumerate(UNITS):
            have = 0
            for i in unit:
                have |= BIT[cells[i]] if cells[i] else self.candidates(i)
            if have != ALL:
                return f"digit {DIGITS[ALL & ~have][0]} has no place in {unit_name(u)}"
        return None

    def to_puzzle(self) -> str:
        return "".join(map(str, self.cells))


def first_conflict(cells: list[int]) -> tuple[int, int] | None:
    """Two filled peer cells with the same value (first such pair in row-major order), or None."""
    for i in range(81):
        v = cells[i]
        if v:
            for j in PEERS[i]:
                if j > i and cells[j] == v:
                    return i, j
    return None


def is_solution(cells: list[int]) -> bool:
    """Every cell filled and every row, column and box holds each digit once."""
    if len(cells) != 81 or 0 in cells:
        return False
    for unit in UNITS:
        seen = 0
        for i in unit:
            v = cells[i]
            if not 1 <= v <= 9:
                return False
            seen |= BIT[v]
        if seen != ALL:
            return False
    return True


def givens_problem(givens: tuple[tuple[int, int, int], ...]) -> tuple[list[int], str | None]:
    """The cells a START line's givens describe, and why they are not a puzzle (None when they are):
    a cell off the board, a value outside 1..9, a cell given twice, or two givens in conflict."""
    cells = [0] * 81
    for r, c, v in givens:
        if not (0 <= r <= 8 and 0 <= c <= 8):
            return cells, f"({r}, {c}) is off the 9x9 board"
        if not 1 <= v <= 9:
            return cells, f"({r}, {c}) = {v}: value is not a digit 1..9"
        i = 9 * r + c
        if cells[i]:
            return cells, f"({r}, {c}) is given twice"
        cells[i] = v
    pair = first_conflict(cells)
    if pair is not None:
        i, j = pair
        return cells, (f"givens conflict: {cell_name(i)} = {cells[i]} and {cell_name(j)} = {cells[j]} "
                       f"share {shared_unit(i, j)}")
    return cells, None


# -- deduction and search ---------------------------------------------------------------------------

def propagate_singles(board: Board, placed: list[tuple[int, int]]) -> tuple[str, int] | None:
    """Fill naked and hidden singles until none is left, appending each ``(cell, value)`` to ``placed``.

    Order: a row-major sweep of naked singles (repeated while it places anything), then the units in
    order (rows, columns, boxes) for hidden singles, then back to naked singles. Returns None when
    no single is left, ``("nocand", cell)`` when an empty cell has no candidate, or
    ``("invalid", unit)`` when a digit has no place left in a unit.
    """
    cells, rows, cols, boxes = board.cells, board.rows, board.cols, board.boxes
    while True:
        progress = False
        for i in range(81):
            if cells[i]:
                continue
            r, c, b = ROW[i], COL[i], BOX[i]
            m = ALL & ~(rows[r] | cols[c] | boxes[b])
            if not m:
                return ("nocand", i)
            if not m & (m - 1):
                cells[i] = m.bit_length()
                rows[r] |= m
                cols[c] |= m
                boxes[b] |= m
                placed.append((i, cells[i]))
                progress = True
        if progress:
            continue
        for u, unit in enumerate(UNITS):
            once = twice = used = 0
            for i in unit:
                if cells[i]:
                    used |= BIT[cells[i]]
                else:
                    m = ALL & ~(rows[ROW[i]] | cols[COL[i]] | boxes[BOX[i]])
                    twice |= once & m
                    once |= m
            if (once | used) != ALL:
                return ("invalid", u)
            hidden = once & ~twice
            while hidden:
                bit = hidden & -hidden
                hidden ^= bit
                for i in unit:
                    if not cells[i] and bit & ~(rows[ROW[i]] | cols[COL[i]] | boxes[BOX[i]]):
                        cells[i] = bit.bit_length()
                        rows[ROW[i]] |= bit
                        cols[COL[i]] |= bit
                        boxes[BOX[i]] |= bit
                        placed.append((i, cells[i]))
                        progress = True
                        break
        if not progress:
            return None


def singles_solve(cells: list[int]) -> bool:
    """Do naked and hidden singles alone complete this puzzle (no guessing needed)?"""
    board = Board(cells)
    return propagate_singles(board, []) is None and 0 not in board.cells


def _hardness(cells: list[int]) -> int:
    """How far naked + hidden singles are from finishing the puzzle: at least 100 when they do not
    finish it (100 x the blanks they leave; 8100 on a contradiction), else 100 minus the naked singles
    open at the start (fewer open singles: closer to needing a guess)."""
    board = Board(cells)
    if propagate_singles(board, []) is not None:
        return 8100
    left = board.cells.count(0)
    if left:
        return 100 * left
    start = Board(cells)
    return 100 - sum(1 for i in range(81) if not cells[i] and POPCOUNT[start.candidates(i)] == 1)


def count_solutions(cells: list[int], limit: int = 2) -> int:
    """Number of solutions of the puzzle, counting stops at ``limit`` (1: solvable?, 2: unique?).

    Depth-first search on bitmasks: fill naked singles, then branch on the empty cell with the
    fewest candidates.
    """
    rows, cols, boxes = [0] * 9, [0] * 9, [0] * 9
    empties = []
    for i, v in enumerate(cells):
        if v:
            b = BIT[v]
            r, c, x = ROW[i], COL[i], BOX[i]
            if (rows[r] | cols[c] | boxes[x]) & b:
                return 0
            rows[r] |= b
            cols[c] |= b
            boxes[x] |= b
        else:
            empties.append(i)
    return _count(empties, rows, cols, boxes, limit)


def _count(empties: list[int], rows: list[int], cols: list[int], boxes: list[int], limit: int) -> int:
    """Solutions reachable by filling ``empties`` (at most ``limit``); the masks are restored on return."""
    placed: list[int] = []
    found = 0
    while True:
        changed = False
        rest = []
        best, best_n, best_m = -1, 10, 0
        for i in empties:
            m = ALL & ~(rows[ROW[i]] | cols[COL[i]] | boxes[BOX[i]])
            if not m & (m - 1):
                if not m:
                    break
                rows[ROW[i]] |= m
                cols[COL[i]] |= m
                boxes[BOX[i]] |= m
                placed.append(i)
                placed.append(m)
                changed = True
            else:
                rest.append(i)
                if POPCOUNT[m] < best_n:
                    best, best_n, best_m = i, POPCOUNT[m], m
        else:
            empties = rest
            if changed:
                continue
            if best < 0:
                found = 1
            else:
                rest.remove(best)
                r, c, x = ROW[best], COL[best], BOX[best]
                for v in DIGITS[best_m]:
                    b = BIT[v]
                    rows[r] |= b
                    cols[c] |= b
                    boxes[x] |= b
                    found += _count(rest, rows, cols, boxes, limit - found)
                    rows[r] ^= b
                    cols[c] ^= b
                    boxes[x] ^= b
                    if found >= limit:
                        break
        break
    for k in range(0, len(placed), 2):
        i, m = placed[k], placed[k + 1]
        rows[ROW[i]] ^= m
        cols[COL[i]] ^= m
        boxes[BOX[i]] ^= m
    return found


def solve(cells: list[int]) -> list[int] | None:
    """The first solution in search order (the solution, for a proper puzzle), or None."""
    board = Board(cells)
    if first_conflict(board.cells) is not None:
        return None
    return _fill(board, [i for i in range(81) if not board.cells[i]], None)


def _fill(board: Board, empties: list[int], rng: random.Random | None) -> list[int] | None:
    """Complete ``board`` in place by fewest-candidate search; candidates shuffled when ``rng`` is given."""
    free = [i for i in empties if not board.cells[i]]
    if not free:
        return board.cells
    best, best_m = -1, 0
    for i in free:
        m = board.candidates(i)
        if best < 0 or POPCOUNT[m] < POPCOUNT[best_m]:
            best, best_m = i, m
            if POPCOUNT[m] <= 1:
                break
    values = list(DIGITS[best_m])
    if rng is not None:
        rng.shuffle(values)
    for v in values:
        board.place(best, v)
        if _fill(board, free, rng) is not None:
            return board.cells
        board.clear(best)
    return None


def random_solution(rng: random.Random) -> list[int]:
    """A random complete grid."""
    board = Board()
    for b in (0, 4, 8):
        digits = list(range(1, 10))
        rng.shuffle(digits)
        for k, i in enumerate(UNITS[18 + b]):
            board.place(i, digits[k])
    cells = _fill(board, [i for i in range(81) if not board.cells[i]], rng)
    assert cells is not None  # three independent diagonal boxes always extend to a full grid
    return cells


class _Digger:
    """Blanks cells of a full grid one at a time, keeping its solution unique."""

    def __init__(self, solution: list[int]) -> None:
        self.solution = solution
        self.board = Board(solution)
        self.blanks: list[int] = []

    def try_blank(self, i: int) -> bool:
        """Blank cell ``i`` if the solution stays unique: any solution with the old value at ``i`` is
        the old one, so it is unique iff no other value at ``i`` can be completed."""
        board, s = self.board, self.solution[i]
        board.clear(i)
        for v in DIGITS[board.candidates(i) & ~BIT[s]]:
            board.place(i, v)
            found = _count(self.blanks, board.rows, board.cols, board.boxes, 1)
            board.clear(i)
            if found:
                board.place(i, s)
                return False
        self.blanks.append(i)
        return True

    def restore(self, i: int) -> None:
        self.board.place(i, self.solution[i])
        self.blanks.remove(i)


def dig(solution: list[int], givens: int, rng: random.Random, require_guess: bool | None = None) -> list[int] | None:
    """A puzzle with ``givens`` givens whose unique solution is ``solution``, or None when this grid
    and removal order do not give one.

    Cells are blanked in random order while the solution stays unique. With ``require_guess=True``
    and a result that singles still finish, a hill climb follows: swap a random given with a random
    blank, keep the swap when the solution stays unique and :func:`_hardness` does not drop, until
    singles no longer finish the puzzle (at most ``MAX_SWAPS`` swaps). Blanking further and then
    giving cells back fails for about half the grids (many minimal puzzles are still solved by
    singles); a pure random walk needs about twice as many swaps as the climb.
    """
    dg = _Digger(solution)
    order = list(range(81))
    rng.shuffle(order)
    k = 0
    while len(dg.blanks) < 81 - givens and k < 81:
        dg.try_blank(order[k])
        k += 1
    if len(dg.blanks) != 81 - givens:
        return None
    if require_guess is not True:
        return dg.board.cells
    hardness = _hardness(dg.board.cells)
    for _ in range(MAX_SWAPS):
        if hardness >= 100:
            return dg.board.cells
        given = rng.choice([i for i in order if dg.board.cells[i]])
        blank = rng.choice(dg.blanks)
        dg.restore(blank)
        if dg.try_blank(given):
            h = _hardness(dg.board.cells)
            if h >= hardness:
                hardness = h
                continue
            dg.restore(given)
        dg.board.clear(blank)  # back to the previous puzzle, known unique
        dg.blanks.append(blank)
    return None


# -- the task ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SudokuProblem:
    """A puzzle: 81 characters, row-major, ``0`` for a blank (``.`` is accepted and becomes ``0``)."""

    puzzle: str

    def __post_init__(self) -> None:
        if isinstance(self.puzzle, str) and "." in self.puzzle:
            object.__setattr__(self, "puzzle", self.puzzle.replace(".", "0"))

    def cells(self) -> list[int]:
        return [ord(ch) - 48 for ch in self.puzzle]


@dataclass
class SudokuConfig:
    """Generator settings (see module docstring)."""

    source: str = "own"                 # own | dokusan
    givens: int = 30                    # own generator: exact number of givens (17..80)
    require_guess: bool | None = None   # True: singles cannot finish it; False: singles can; None: either
    avg_rank: int = 150                 # dokusan: removal rounds (its difficulty knob; capped at 300 by dokusan)

    def validate(self) -> None:
        if self.source not in SOURCES:
            raise InputError(f"unknown source {self.source!r} (known: {', '.join(SOURCES)})", field="source")
        if not isinstance(self.givens, int) or isinstance(self.givens, bool) or not 17 <= self.givens <= 80:
            raise InputError(f"must be an integer 17..80, got {self.givens!r}", field="givens")
        if not (self.require_guess is None or isinstance(self.require_guess, bool)):
            raise InputError(f"must be true, false or null, got {self.require_guess!r}", field="require_guess")
        if not isinstance(self.avg_rank, int) or isinstance(self.avg_rank, bool) or not 1 <= self.avg_rank <= 10_000:
            raise InputError(f"must be an integer 1..10000, got {self.avg_rank!r}", field="avg_rank")


class SudokuTask:
    """Task contract (DESIGN.md): generate / prompt / parse_answer / score / vocabulary."""

    name = "sudoku"
    grammar = grammar_module

    def __init__(self, config: SudokuConfig | None = None) -> None:
        self.config = config or SudokuConfig()
        self.config.validate()

    def _wanted(self, cells: list[int]) -> bool:
        want = self.config.require_guess
        return want is None or want != singles_solve(cells)

    def generate(self, rng: random.Random) -> SudokuProblem:
        """A puzzle with a unique solution meeting the config's knobs (InputError when none is found)."""
        c = self.config
        if c.source == "dokusan":
            return self._generate_dokusan(rng)
        for _ in range(MAX_ATTEMPTS):
            cells = dig(random_solution(rng), c.givens, rng, c.require_guess)
            if cells is not None and self._wanted(cells):
                return SudokuProblem("".join(map(str, cells)))
        field = "givens" if c.require_guess is None else "require_guess"
        raise InputError(f"no puzzle with {c.givens} givens and require_guess={c.require_guess} in {MAX_ATTEMPTS} "
                         "attempts; random removal rarely goes below ~22 givens, and singles finish most puzzles "
                         "with many givens", field=field)

    def _generate_dokusan(self, rng: random.Random) -> SudokuProblem:
        from dokusan import generators

        for _ in range(MAX_DOKUSAN_DRAWS):
            saved = random.getstate()
            try:
                random.seed(rng.getrandbits(64))
                puzzle = str(generators.random_sudoku(avg_rank=self.config.avg_rank))
            finally:
                random.setstate(saved)
            cells = [ord(ch) - 48 for ch in puzzle]
            if count_solutions(cells, 2) == 1 and self._wanted(cells):
                return SudokuProblem(puzzle)
        raise InputError(f"dokusan gave no puzzle with require_guess={self.config.require_guess} in "
                         f"{MAX_DOKUSAN_DRAWS} draws", field="require_guess")

    def prompt(self, problem: SudokuProblem) -> str:
        """The trace's first line (the givens); a model continues from it."""
        return start_step(problem).to_line() + "\n"

    def parse_answer(self, text: str) -> str | None:
        """The 81-character grid the trace arrives at: its START givens, then its placements and reverts
        replayed in order; None when the text has no START line."""
        steps = grammar_module.parse(text) if isinstance(text, str) else []
        for k, step in enumerate(steps):
            if type(step) is Start:
                cells, _ = givens_problem(step.givens)
                return _replay(cells, steps[k + 1:])
        return None

    def check_solution(self, problem: SudokuProblem, grid: str) -> bool:
        """Is ``grid`` a complete valid grid that keeps every given of ``problem``?"""
        if not isinstance(grid, str) or len(grid) != 81 or not grid.isascii() or not grid.isdigit():
            return False
        cells = [ord(ch) - 48 for ch in grid]
        if not is_solution(cells):
            return False
        return all(g == "0" or g == ch for g, ch in zip(problem.puzzle, grid))

    def score(self, problem: SudokuProblem, text: str) -> float:
        """1.0 when the grid the text arrives at solves the puzzle, else 0.0; never raises on model output.

        ``text`` may be a whole trace or a completion of the prompt (no START line: replay starts from
        the puzzle's givens).
        """
        if not isinstance(text, str):
            return 0.0
        grid = self.parse_answer(text)
        if grid is None:
            grid = _replay(problem.cells(), grammar_module.parse(text))
        return 1.0 if self.check_solution(problem, grid) else 0.0

    @staticmethod
    @lru_cache(maxsize=1)
    def vocabulary() -> tuple[str, ...]:
        """Every word and symbol the grammar can write, and the digits (the task tokenizer's tokens)."""
        samples = [Start(((0, 1, 2), (3, 4, 5), (6, 7, 8), (8, 8, 9))), Place(0, 1, 2), Guess(3, 4, (5, 6), 7),
                   NoCand(8, 9), Invalid(), Revert(0, 1, (2, 3)), End(), GiveUp()]
        return vocabulary_from("".join(s.to_line() + "\n" for s in samples))

    # records
    @staticmethod
    def problem_of(steps: list) -> SudokuProblem | None:
        """The puzzle a trace's first line states, or None when it states none (or an impossible one)."""
        if steps and isinstance(steps[0], Start):
            cells, error = givens_problem(steps[0].givens)
            if error is None:
                return SudokuProblem("".join(map(str, cells)))
        return None

    @staticmethod
    def problem_to_json(problem: SudokuProblem) -> dict[str, Any]:
        return {"puzzle": problem.puzzle}

    @staticmethod
    def problem_from_json(obj: Any, field: str = "problem") -> SudokuProblem:
        if not isinstance(obj, dict):
            raise InputError(f"expected an object with 'puzzle', got {type(obj).__name__}", field=field)
        if "puzzle" not in obj:
            raise InputError("missing", field=f"{field}.puzzle")
        return _puzzle_from_str(obj["puzzle"], f"{field}.puzzle")

    @staticmethod
    def problem_from_line(line: str) -> SudokuProblem:
        """81 characters, ``0`` or ``.`` for a blank (surrounding whitespace ignored)."""
        return _puzzle_from_str(line.strip() if isinstance(line, str) else line, "problem")

    @staticmethod
    def problem_label(problem: SudokuProblem) -> str:
        return problem.puzzle


def start_step(problem: SudokuProblem) -> Start:
    """The START line of ``problem``: its givens in row-major order."""
    return Start(tuple((ROW[i], COL[i], ord(ch) - 48) for i, ch in enumerate(problem.puzzle) if ch != "0"))


def _puzzle_from_str(value: Any, field: str) -> SudokuProblem:
    if not isinstance(value, str):
        raise InputError(f"expected a string of 81 characters, got {type(value).__name__}", field=field)
    if len(value) != 81:
        raise InputError(f"expected 81 characters (0-9, '.' for a blank), got {len(value)}", field=field)
    for i, ch in enumerate(value):
        if ch not in "0123456789.":
            raise InputError(f"character {ch!r} at position {i} (row {ROW[i]}, col {COL[i]}) is not 0-9 or '.'",
                             field=field)
    problem = SudokuProblem(value)
    pair = first_conflict(problem.cells())
    if pair is not None:
        i, j = pair
        raise InputError(f"givens conflict: {cell_name(i)} and {cell_name(j)} both hold {problem.puzzle[i]} "
                         f"in {shared_unit(i, j)}", field=field)
    return problem


def _replay(cells: list[int], steps: list) -> str:
    """Apply placements (to empty on-board cells) and reverts (to the most recent open guess at the
    cell) in order; the grid reached, as 81 characters."""
    placed: list[int] = []
    guesses: list[tuple[int, int]] = []  # (cell, len(placed) when opened)
    for step in steps:
        t = type(step)
        if t is Place:
            if 0 <= step.row <= 8 and 0 <= step.col <= 8 and 1 <= step.value <= 9:
                i = 9 * step.row + step.col
                if not cells[i]:
                    cells[i] = step.value
                    placed.append(i)
        elif t is Guess:
            if 0 <= step.row <= 8 and 0 <= step.col <= 8:
                guesses.append((9 * step.row + step.col, len(placed)))
        elif t is Revert:
            i = 9 * step.row + step.col
            for k in range(len(guesses) - 1, -1, -1):
                if guesses[k][0] == i:
                    keep = guesses[k][1]
                    for j in placed[keep:]:
                        cells[j] = 0
                    del placed[keep:], guesses[k:]
                    break
    return "".join(map(str, cells))
