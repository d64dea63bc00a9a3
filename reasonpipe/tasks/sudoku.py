"""Sudoku (9x9, and the small 4x4 and 6x6 boards): the rules, puzzles with a unique solution, and what
counts as a solved grid.

A puzzle of size ``n`` (``SudokuConfig.size``: 9, 6 or 4) is ``n * n`` characters in row-major order,
``0`` (or ``.`` on input) for a blank. Cells are numbered ``i = n * row + col``; digit ``v`` (1..n) is the bit
``1 << (v - 1)`` of an ``n``-bit candidate mask. Boxes are 3x3 on the 9x9 board, 2 rows x 3 columns on the
6x6 board and 2x2 on the 4x4 board (:data:`SIZES`); every board's shape is a :class:`Geometry`
(:data:`GEOMETRIES`), and the length of a puzzle (81, 36 or 16) says which.

Generators (``SudokuConfig.source``):

* ``own`` (default): a random full grid (9x9: three diagonal boxes shuffled; 4x4 and 6x6: the first box
  shuffled, since two diagonal boxes do not always extend there; the rest filled by a randomised
  search), then cells removed in random order while the solution stays unique, until exactly ``givens``
  remain. Uniqueness after removing cell ``i`` (solution value ``s``) is checked by asking whether any
  solution puts another value at ``i``, so most removals cost one bitmask lookup.
  ``require_guess=True`` wants puzzles that naked + hidden singles cannot finish (only ~15% of
  random 30-given 9x9 puzzles): swaps of a given and a blank that keep the solution unique climb until
  singles are stuck (see :func:`dig`); ``False`` keeps only puzzles singles finish. Random removal rarely gets
  below ~22 givens on the 9x9 board; asking for fewer fails with a clear error after ``MAX_ATTEMPTS`` grids.
  The default ``givens`` depends on the size (:data:`DEFAULT_GIVENS`, the valid range in :data:`GIVENS_RANGE`).
* ``dokusan`` (9x9 only): ``dokusan.generators.random_sudoku(avg_rank)``, the generator To Backtrack or Not used
  (about 9.5 puzzles/s). It draws from the global ``random`` module, so we seed that from ``rng`` and
  restore its state afterwards (not thread-safe). ``givens`` does not apply; ``require_guess`` does.

Scoring: the answer is the grid a trace arrives at after replaying its placements and reverts; it
scores 1.0 when complete, valid and consistent with the givens (the paper's "solved"), whether or not
the trace wrote ``SOL_E END``.

Example::

    python -c "from reasonpipe.tasks.sudoku import SudokuTask, SudokuConfig; import random; print(SudokuTask(SudokuConfig(size=4)).generate(random.Random(0)).puzzle)"
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
SIZES: dict[int, tuple[int, int]] = {9: (3, 3), 6: (2, 3), 4: (2, 2)}  # board size -> (box rows, box columns)
DEFAULT_GIVENS: dict[int, int] = {9: 30, 6: 12, 4: 6}  # see SudokuConfig for why
# own generator: valid givens per size, from the fewest any puzzle with a unique solution has to n * n - 1
GIVENS_RANGE: dict[int, tuple[int, int]] = {9: (17, 80), 6: (8, 35), 4: (4, 15)}
BIT = (0,) + tuple(1 << (v - 1) for v in range(1, 10))  # BIT[v]; BIT[0] = 0 (blank)
POPCOUNT = tuple(bin(m).count("1") for m in range(512))
DIGITS = tuple(tuple(v for v in range(1, 10) if m & BIT[v]) for m in range(512))  # digits of a mask, ascending
MAX_ATTEMPTS = 200      # own generator: fresh grids tried before giving up on the asked-for puzzle
MAX_SWAPS = 200         # own generator, require_guess=True: given/blank swaps tried per grid
MAX_DOKUSAN_DRAWS = 50  # dokusan: redraws for require_guess


@dataclass(frozen=True)
class Geometry:
    """The shape of one board size: per cell its row, column and box, the units and each cell's peers."""

    size: int                               # n: digits 1..n, n rows, n columns, n boxes
    box_rows: int
    box_cols: int
    all: int                                # the mask of every digit
    row: tuple[int, ...]                    # per cell
    col: tuple[int, ...]
    box: tuple[int, ...]
    units: tuple[tuple[int, ...], ...]      # rows 0..n-1, columns n..2n-1, boxes 2n..3n-1; cells in order
    peers: tuple[tuple[int, ...], ...]      # per cell, ascending
    first_boxes: tuple[int, ...]            # filled at random first by random_solution

    @property
    def cells(self) -> int:
        return self.size * self.size


def _geometry(size: int) -> Geometry:
    br, bc = SIZES[size]
    n, per_band = size, size // bc
    cells = range(n * n)
    row = tuple(i // n for i in cells)
    col = tuple(i % n for i in cells)
    box = tuple(per_band * (row[i] // br) + col[i] // bc for i in cells)
    units = (tuple(tuple(n * r + c for c in range(n)) for r in range(n))
             + tuple(tuple(n * r + c for r in range(n)) for c in range(n))
             + tuple(tuple(n * (br * (b // per_band) + k // bc) + bc * (b % per_band) + k % bc for k in range(n))
                     for b in range(n)))
    peers = tuple(tuple(j for j in cells if j != i and (row[j] == row[i] or col[j] == col[i] or box[j] == box[i]))
                  for i in cells)
    first = (0, 4, 8) if size == 9 else (0,)  # 4x4: two diagonal boxes do not always extend to a full grid
    return Geometry(size, br, bc, (1 << n) - 1, row, col, box, units, peers, first)


GEOMETRIES: dict[int, Geometry] = {size: _geometry(size) for size in SIZES}
BY_CELLS: dict[int, int] = {size * size: size for size in SIZES}  # puzzle length -> board size
NINE = GEOMETRIES[9]
ALL = NINE.all  # the nine digits
ROW, COL, BOX, UNITS, PEERS = NINE.row, NINE.col, NINE.box, NINE.units, NINE.peers  # the 9x9 board's


def geometry_of(cells: list[int] | str) -> Geometry:
    """The geometry of a grid by its length (81, 36 or 16 cells); KeyError for another length."""
    return GEOMETRIES[BY_CELLS[len(cells)]]


def unit_name(u: int, size: int = 9) -> str:
    """``row r`` / ``column c`` / ``box b`` for unit index ``u`` (rows first, then columns, then boxes)."""
    return ("row", "column", "box")[u // size] + f" {u % size}"


def shared_unit(i: int, j: int, size: int = 9) -> str:
    """The name of a unit two peer cells share (row first)."""
    g = GEOMETRIES[size]
    if g.row[i] == g.row[j]:
        return f"row {g.row[i]}"
    if g.col[i] == g.col[j]:
        return f"column {g.col[i]}"
    return f"box {g.box[i]}"


def cell_name(i: int, size: int = 9) -> str:
    return f"({i // size}, {i % size})"


# -- the board --------------------------------------------------------------------------------------

class Board:
    """A partial grid with per-row/column/box masks of the digits already used.

    The board's size is the length of ``cells`` (81, 36 or 16), or ``size`` for an empty board.
    The masks are kept for legal boards only: ``place`` assumes the value is legal (check with
    ``candidates``) and ``clear`` assumes the cell holds a value.
    """

    __slots__ = ("cells", "rows", "cols", "boxes", "g")

    def __init__(self, cells: list[int] | None = None, size: int = 9) -> None:
        g = self.g = geometry_of(cells) if cells is not None else GEOMETRIES[size]
        self.cells = list(cells) if cells is not None else [0] * g.cells
        self.rows = [0] * g.size
        self.cols = [0] * g.size
        self.boxes = [0] * g.size
        for i, v in enumerate(self.cells):
            if v:
                b = BIT[v]
                self.rows[g.row[i]] |= b
                self.cols[g.col[i]] |= b
                self.boxes[g.box[i]] |= b

    def copy(self) -> "Board":
        new = Board.__new__(Board)
        new.cells, new.rows, new.cols, new.boxes = self.cells[:], self.rows[:], self.cols[:], self.boxes[:]
        new.g = self.g
        return new

    def candidates(self, i: int) -> int:
        """Mask of the digits legal at cell ``i`` (whether or not it is empty)."""
        g = self.g
        return g.all & ~(self.rows[g.row[i]] | self.cols[g.col[i]] | self.boxes[g.box[i]])

    def place(self, i: int, v: int) -> None:
        g, b = self.g, BIT[v]
        self.cells[i] = v
        self.rows[g.row[i]] |= b
        self.cols[g.col[i]] |= b
        self.boxes[g.box[i]] |= b

    def clear(self, i: int) -> None:
        g, b = self.g, ~BIT[self.cells[i]]
        self.cells[i] = 0
        self.rows[g.row[i]] &= b
        self.cols[g.col[i]] &= b
        self.boxes[g.box[i]] &= b

    def conflict(self, i: int, v: int) -> int | None:
        """A peer of ``i`` that holds ``v``, or None."""
        for j in self.g.peers[i]:
            if self.cells[j] == v:
                return j
        return None

    def contradiction(self) -> str | None:
        """Why the board cannot be completed by any placement, or None: an empty cell without
        candidate (first in row-major order), else a digit with no place left in a unit."""
        cells, g = self.cells, self.g
        for i in range(g.cells):
            if not cells[i] and not self.candidates(i):
                return f"{cell_name(i, g.size)} has no candidate"
        for u, unit in enumerate(g.units):
            have = 0
            for i in unit:
                have |= BIT[cells[i]] if cells[i] else self.candidates(i)
            if have != g.all:
                return f"digit {DIGITS[g.all & ~have][0]} has no place in {unit_name(u, g.size)}"
        return None

    def to_puzzle(self) -> str:
        return "".join(map(str, self.cells))


def first_conflict(cells: list[int]) -> tuple[int, int] | None:
    """Two filled peer cells with the same value (first such pair in row-major order), or None."""
    peers = geometry_of(cells).peers
    for i in range(len(cells)):
        v = cells[i]
        if v:
            for j in peers[i]:
                if j > i and cells[j] == v:
                    return i, j
    return None


def is_solution(cells: list[int]) -> bool:
    """Every cell filled and every row, column and box holds each digit once (a board of 81, 36 or 16 cells)."""
    if len(cells) not in BY_CELLS or 0 in cells:
        return False
    g = geometry_of(cells)
    for unit in g.units:
        seen = 0
        for i in unit:
            v = cells[i]
            if not 1 <= v <= g.size:
                return False
            seen |= BIT[v]
        if seen != g.all:
            return False
    return True


def givens_problem(givens: tuple[tuple[int, int, int], ...], size: int = 9) -> tuple[list[int], str | None]:
    """The cells a START line's givens describe on a ``size`` board, and why they are not a puzzle (None when
    they are): a board size we do not know, a cell off the board, a value outside 1..size, a cell given twice,
    or two givens in conflict."""
    if size not in GEOMETRIES:
        return [], f"no {size}x{size} board (sizes: {', '.join(map(str, sorted(SIZES)))})"
    n = size
    cells = [0] * (n * n)
    for r, c, v in givens:
        if not (0 <= r < n and 0 <= c < n):
            return cells, f"({r}, {c}) is off the {n}x{n} board"
        if not 1 <= v <= n:
            return cells, f"({r}, {c}) = {v}: value is not a digit 1..{n}"
        i = n * r + c
        if cells[i]:
            return cells, f"({r}, {c}) is given twice"
        cells[i] = v
    pair = first_conflict(cells)
    if pair is not None:
        i, j = pair
        return cells, (f"givens conflict: {cell_name(i, n)} = {cells[i]} and {cell_name(j, n)} = {cells[j]} "
                       f"share {shared_unit(i, j, n)}")
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
    g = board.g
    ROW, COL, BOX, ALL, UNITS, n_cells = g.row, g.col, g.box, g.all, g.units, g.cells  # noqa: N806 (locals, fast)
    while True:
        progress = False
        for i in range(n_cells):
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
    finish it (100 x the blanks they leave; 100 x the cells on a contradiction), else 100 minus the naked
    singles open at the start (fewer open singles: closer to needing a guess)."""
    board = Board(cells)
    if propagate_singles(board, []) is not None:
        return 100 * len(cells)
    left = board.cells.count(0)
    if left:
        return 100 * left
    start = Board(cells)
    return 100 - sum(1 for i in range(len(cells)) if not cells[i] and POPCOUNT[start.candidates(i)] == 1)


def count_solutions(cells: list[int], limit: int = 2) -> int:
    """Number of solutions of the puzzle, counting stops at ``limit`` (1: solvable?, 2: unique?).

    Depth-first search on bitmasks: fill naked singles, then branch on the empty cell with the
    fewest candidates.
    """
    g = geometry_of(cells)
    rows, cols, boxes = [0] * g.size, [0] * g.size, [0] * g.size
    empties = []
    for i, v in enumerate(cells):
        if v:
            b = BIT[v]
            r, c, x = g.row[i], g.col[i], g.box[i]
            if (rows[r] | cols[c] | boxes[x]) & b:
                return 0
            rows[r] |= b
            cols[c] |= b
            boxes[x] |= b
        else:
            empties.append(i)
    return _count(g, empties, rows, cols, boxes, limit)


def _count(g: Geometry, empties: list[int], rows: list[int], cols: list[int], boxes: list[int], limit: int) -> int:
    """Solutions reachable by filling ``empties`` (at most ``limit``); the masks are restored on return."""
    ROW, COL, BOX, ALL = g.row, g.col, g.box, g.all  # noqa: N806 (locals, fast)
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
                    found += _count(g, rest, rows, cols, boxes, limit - found)
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
    return _fill(board, [i for i in range(len(cells)) if not board.cells[i]], None)


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


def random_solution(rng: random.Random, size: int = 9) -> list[int]:
    """A random complete grid of the given size."""
    board = Board(size=size)
    g = board.g
    for b in g.first_boxes:
        digits = list(range(1, size + 1))
        rng.shuffle(digits)
        for k, i in enumerate(g.units[2 * size + b]):
            board.place(i, digits[k])
    cells = _fill(board, [i for i in range(g.cells) if not board.cells[i]], rng)
    assert cells is not None  # independent boxes (9x9: the diagonal ones; else one box) always extend
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
            found = _count(board.g, self.blanks, board.rows, board.cols, board.boxes, 1)
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
    n_cells = len(solution)
    dg = _Digger(solution)
    order = list(range(n_cells))
    rng.shuffle(order)
    k = 0
    while len(dg.blanks) < n_cells - givens and k < n_cells:
        dg.try_blank(order[k])
        k += 1
    if len(dg.blanks) != n_cells - givens:
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
    """A puzzle: ``n * n`` characters (81, 36 or 16), row-major, ``0`` for a blank (``.`` is accepted and
    becomes ``0``); its length gives the board size."""

    puzzle: str

    def __post_init__(self) -> None:
        if isinstance(self.puzzle, str) and "." in self.puzzle:
            object.__setattr__(self, "puzzle", self.puzzle.replace(".", "0"))

    @property
    def size(self) -> int:
        """The board size (9, 6 or 4), by the puzzle's length; 9 for a length no board has."""
        return BY_CELLS.get(len(self.puzzle), 9)

    def cells(self) -> list[int]:
        return [ord(ch) - 48 for ch in self.puzzle]


@dataclass
class SudokuConfig:
    """Generator settings (see module docstring).

    ``givens`` defaults by size (:data:`DEFAULT_GIVENS`): 9x9 30, as always; 6x6 12 and 4x4 6, about the same
    share of the board (37%, 33%, 38%). Both are reached on every grid: random removal stops at a minimal
    puzzle, which had 8 to 12 givens on 300 random 6x6 grids and 4 to 6 on 300 4x4 grids, so generation does
    not redraw. On the 6x6 board ``require_guess: true`` at 12 givens takes about 10 ms a puzzle (the swap
    climb of :func:`dig`); without it few 6x6 puzzles need a guess (1 in 40 at 11 givens, none at 12).
    On the 4x4 board no puzzle with a unique solution needs a guess: naked + hidden singles finish every one
    (checked on every subset of givens of both essentially different 4x4 grids, tests/tasks/test_sudoku_small.py),
    so ``require_guess: true`` is an error there and the dfs never guesses (its traces equal ``direct``'s).
    """

    source: str = "own"                 # own | dokusan (9x9 only)
    givens: int | None = None           # own generator: exact number of givens (None: the size's default;
    #                                     9x9 17..80, 6x6 8..35, 4x4 4..15)
    require_guess: bool | None = None   # True: singles cannot finish it; False: singles can; None: either
    avg_rank: int = 150                 # dokusan: removal rounds (its difficulty knob; capped at 300 by dokusan)
    size: int = 9                       # board: 9 (3x3 boxes), 6 (2x3 boxes), 4 (2x2 boxes)

    def givens_count(self) -> int:
        """The number of givens the own generator aims at (``givens``, or the size's default)."""
        return DEFAULT_GIVENS.get(self.size, 30) if self.givens is None else self.givens

    def validate(self) -> None:
        if self.source not in SOURCES:
            raise InputError(f"unknown source {self.source!r} (known: {', '.join(SOURCES)})", field="source")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size not in SIZES:
            raise InputError(f"must be one of {', '.join(map(str, sorted(SIZES)))}, got {self.size!r}", field="size")
        if self.source == "dokusan" and self.size != 9:
            raise InputError(f"source dokusan makes 9x9 puzzles only, got size {self.size} (use source own)",
                             field="size")
        lo, hi = GIVENS_RANGE[self.size]
        if self.givens is not None and (not isinstance(self.givens, int) or isinstance(self.givens, bool)
                                        or not lo <= self.givens <= hi):
            raise InputError(f"must be an integer {lo}..{hi} for size {self.size}, got {self.givens!r}",
                             field="givens")
        if not (self.require_guess is None or isinstance(self.require_guess, bool)):
            raise InputError(f"must be true, false or null, got {self.require_guess!r}", field="require_guess")
        if self.require_guess is True and self.size == 4:
            raise InputError("no 4x4 puzzle with a unique solution needs a guess (naked and hidden singles finish "
                             "every one); use size 6 or 9", field="require_guess")
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
        givens = c.givens_count()
        for _ in range(MAX_ATTEMPTS):
            cells = dig(random_solution(rng, c.size), givens, rng, c.require_guess)
            if cells is not None and self._wanted(cells):
                return SudokuProblem("".join(map(str, cells)))
        field = "givens" if c.require_guess is None else "require_guess"
        board = "" if c.size == 9 else f" on the {c.size}x{c.size} board"
        hint = ("random removal rarely goes below ~22 givens" if c.size == 9
                else f"random removal rarely goes below {DEFAULT_GIVENS[c.size]} givens on this board")
        raise InputError(f"no puzzle with {givens} givens and require_guess={c.require_guess}{board} in "
                         f"{MAX_ATTEMPTS} attempts; {hint}, and singles finish most puzzles with many givens",
                         field=field)

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
        """The trace's first line (the givens, and the board size unless 9x9); a model continues from it."""
        return start_step(problem).to_line() + "\n"

    def parse_answer(self, text: str) -> str | None:
        """The grid the trace arrives at (``n * n`` characters, ``n`` the START line's size): its START givens,
        then its placements and reverts replayed in order; None when the text has no START line, ``""`` when
        START names a board size we do not know."""
        steps = grammar_module.parse(text) if isinstance(text, str) else []
        for k, step in enumerate(steps):
            if type(step) is Start:
                if step.size not in GEOMETRIES:
                    return ""
                cells, _ = givens_problem(step.givens, step.size)
                return _replay(cells, steps[k + 1:], step.size)
        return None

    def check_solution(self, problem: SudokuProblem, grid: str) -> bool:
        """Is ``grid`` a complete valid grid of the puzzle's size that keeps every given of ``problem``?"""
        if (not isinstance(grid, str) or len(grid) != len(problem.puzzle) or not grid.isascii()
                or not grid.isdigit()):
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
            grid = _replay(problem.cells(), grammar_module.parse(text), problem.size)
        return 1.0 if self.check_solution(problem, grid) else 0.0

    @staticmethod
    @lru_cache(maxsize=1)
    def vocabulary() -> tuple[str, ...]:
        """Every word and symbol the grammar can write, and the digits (the task tokenizer's tokens).

        The 9x9 grammar's tokens come first, sorted, as they always were (their ids do not move); the
        tokens only the small boards' START line writes (the ``x`` of ``4x4``) follow."""
        samples = [Start(((0, 1, 2), (3, 4, 5), (6, 7, 8), (8, 8, 9))), Place(0, 1, 2), Guess(3, 4, (5, 6), 7),
                   NoCand(8, 9), Invalid(), Revert(0, 1, (2, 3)), End(), GiveUp()]
        nine = vocabulary_from("".join(s.to_line() + "\n" for s in samples))
        small = vocabulary_from("".join(Start(((0, 1, 2),), size).to_line() + "\n" for size in SIZES if size != 9))
        return nine + tuple(t for t in small if t not in nine)

    # records
    @staticmethod
    def problem_of(steps: list) -> SudokuProblem | None:
        """The puzzle a trace's first line states, or None when it states none (or an impossible one)."""
        if steps and isinstance(steps[0], Start):
            cells, error = givens_problem(steps[0].givens, steps[0].size)
            if error is None:
                return SudokuProblem("".join(map(str, cells)))
        return None

    @staticmethod
    def problem_to_json(problem: SudokuProblem) -> dict[str, Any]:
        """``{"puzzle": ...}``, with ``"size"`` as well for a board other than 9x9."""
        size = problem.size
        return {"puzzle": problem.puzzle} if size == 9 else {"puzzle": problem.puzzle, "size": size}

    @staticmethod
    def problem_from_json(obj: Any, field: str = "problem") -> SudokuProblem:
        if not isinstance(obj, dict):
            raise InputError(f"expected an object with 'puzzle', got {type(obj).__name__}", field=field)
        if "puzzle" not in obj:
            raise InputError("missing", field=f"{field}.puzzle")
        size = obj.get("size")
        if size is None:  # by the puzzle's length (records of 9x9 boards have no size)
            size = BY_CELLS.get(len(obj["puzzle"]), 9) if isinstance(obj["puzzle"], str) else 9
        elif not isinstance(size, int) or isinstance(size, bool) or size not in SIZES:
            raise InputError(f"must be one of {', '.join(map(str, sorted(SIZES)))}, got {size!r}",
                             field=f"{field}.size")
        return _puzzle_from_str(obj["puzzle"], f"{field}.puzzle", size)

    @staticmethod
    def problem_from_line(line: str) -> SudokuProblem:
        """81, 36 or 16 characters (a 9x9, 6x6 or 4x4 board), ``0`` or ``.`` for a blank (surrounding
        whitespace ignored)."""
        value = line.strip() if isinstance(line, str) else line
        return _puzzle_from_str(value, "problem", BY_CELLS.get(len(value), 9) if isinstance(value, str) else 9)

    @staticmethod
    def problem_label(problem: SudokuProblem) -> str:
        return problem.puzzle


def start_step(problem: SudokuProblem) -> Start:
    """The START line of ``problem``: its givens in row-major order, and its board size."""
    n = problem.size
    return Start(tuple((i // n, i % n, ord(ch) - 48) for i, ch in enumerate(problem.puzzle) if ch != "0"), n)


def _puzzle_from_str(value: Any, field: str, size: int = 9) -> SudokuProblem:
    n = size
    board = "" if n == 9 else f" for a {n}x{n} board"
    if not isinstance(value, str):
        raise InputError(f"expected a string of {n * n} characters{board}, got {type(value).__name__}", field=field)
    if len(value) != n * n:
        raise InputError(f"expected {n * n} characters{board} (0-{n}, '.' for a blank), got {len(value)}",
                         field=field)
    allowed = "0123456789"[:n + 1] + "."
    for i, ch in enumerate(value):
        if ch not in allowed:
            raise InputError(f"character {ch!r} at position {i} (row {i // n}, col {i % n}) is not 0-{n} or '.'",
                             field=field)
    problem = SudokuProblem(value)
    pair = first_conflict(problem.cells())
    if pair is not None:
        i, j = pair
        raise InputError(f"givens conflict: {cell_name(i, n)} and {cell_name(j, n)} both hold {problem.puzzle[i]} "
                         f"in {shared_unit(i, j, n)}", field=field)
    return problem


def _replay(cells: list[int], steps: list, size: int = 9) -> str:
    """Apply placements (to empty on-board cells, digits 1..size) and reverts (to the most recent open guess at
    the cell) in order; the grid reached, as ``size * size`` characters."""
    n = size
    placed: list[int] = []
    guesses: list[tuple[int, int]] = []  # (cell, len(placed) when opened)
    for step in steps:
        t = type(step)
        if t is Place:
            if 0 <= step.row < n and 0 <= step.col < n and 1 <= step.value <= n:
                i = n * step.row + step.col
                if not cells[i]:
                    cells[i] = step.value
                    placed.append(i)
        elif t is Guess:
            if 0 <= step.row < n and 0 <= step.col < n:
                guesses.append((n * step.row + step.col, len(placed)))
        elif t is Revert:
            i = n * step.row + step.col
            for k in range(len(guesses) - 1, -1, -1):
                if guesses[k][0] == i:
                    keep = guesses[k][1]
                    for j in placed[keep:]:
                        cells[j] = 0
                    del placed[keep:], guesses[k:]
                    break
    return "".join(map(str, cells))
