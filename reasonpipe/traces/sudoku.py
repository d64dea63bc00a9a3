"""Sudoku trace grammar of To Backtrack or Not (Qin et al. 2025): typed steps <-> text lines.

One step a line; cells are 0-based ``(row, col)``::

    START original: (0, 1) = 5 (0, 4) = 7 ... solving SOL_S     givens, row-major
    START 4x4 original: (0, 1) = 3 ... solving SOL_S             a 4x4 (or 6x6) board: its size first
    (0, 2) = 4                                                   a placement
    guess: (3, 4) [2, 8] = 2                                     branch point: cell, candidates, value tried
    (3, 4) = 2                                                   ... followed by its placement
    nocand: (5, 1)                                               claim: that empty cell has no candidate
    invalid                                                      claim: the board is contradictory
    revert: (3, 4) [2, 8] = None                                 undo the open guess at (3, 4) and all after it
    SOL_E END                                                    claim: the grid is solved
    UNSOLVED END                                                 the search stopped without a solution

Parsing never fails: a line outside the grammar becomes :class:`Unparsed`, which verifiers report.
Numbers are written without leading zeros and limited to 3 digits (a hostile line cannot make int
parsing slow), so ``to_text(parse(t)) == t`` for every text of non-empty, newline-ended lines.
Values outside the board (``(9, 0) = 0``) still parse; the verifier refutes them. The START line names the
board size ``n x n`` when it is not 9x9 (``START 4x4 original:``, ``START 6x6 original:``; the cells of any
line are then ``(0..n-1, 0..n-1)`` and the digits ``1..n``); ``START 9x9`` and ``START 4x6`` are not in the
grammar, so every START line has one spelling.

Example::

    reasonpipe gen sudoku --n 1 --searcher dfs --seed 1 --out /tmp/sudoku.jsonl --quiet && python -c \
        "import json; print(json.loads(open('/tmp/sudoku.jsonl').readline())['text'])" \
        | python -m reasonpipe.traces.sudoku

(docs/formats.md shows the grammar.)
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import ClassVar, Union

from reasonpipe.traces.lines import Unparsed, parse_lines, to_text  # noqa: F401 (to_text: this grammar\'s, by name)

_N = r"(?:0|[1-9]\d{0,2})"
_CELL = rf"\(({_N}), ({_N})\)"
_LIST = rf"\[((?:{_N}(?:, {_N}){{0,15}})?)\]"

_START = re.compile(rf"START(?: ({_N})x({_N}))? original:((?: \({_N}, {_N}\) = {_N}){{0,81}}) solving SOL_S", re.ASCII)
_GIVEN = re.compile(rf"\(({_N}), ({_N})\) = ({_N})", re.ASCII)
_PLACE = re.compile(rf"{_CELL} = ({_N})", re.ASCII)
_GUESS = re.compile(rf"guess: {_CELL} {_LIST} = ({_N})", re.ASCII)
_NOCAND = re.compile(rf"nocand: {_CELL}", re.ASCII)
_REVERT = re.compile(rf"revert: {_CELL} {_LIST} = None", re.ASCII)
INVALID_TEXT = "invalid"
END_TEXT = "SOL_E END"
GIVE_UP_TEXT = "UNSOLVED END"


def _fmt_list(values: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, values)) + "]"


def _parse_list(s: str) -> tuple[int, ...]:
    return tuple(map(int, s.split(", "))) if s else ()


@dataclass(frozen=True, slots=True)
class Start:
    """The puzzle: its givens ``(row, col, value)`` in the order written (row-major from our searchers), and
    the board size ``n`` (an ``n x n`` board; written ``START 4x4 original: ...`` unless 9)."""

    kind: ClassVar[str] = "start"
    givens: tuple[tuple[int, int, int], ...]
    size: int = 9

    def to_line(self) -> str:
        head = "START original:" if self.size == 9 else f"START {self.size}x{self.size} original:"
        return head + "".join(f" ({r}, {c}) = {v}" for r, c, v in self.givens) + " solving SOL_S"

    def to_json(self) -> list:
        givens = [list(g) for g in self.givens]
        return [self.kind, givens] if self.size == 9 else [self.kind, givens, self.size]


@dataclass(frozen=True, slots=True)
class Place:
    """Write ``value`` into the empty cell ``(row, col)``; claim: it is legal on the current board."""

    kind: ClassVar[str] = "place"
    row: int
    col: int
    value: int

    def to_line(self) -> str:
        return f"({self.row}, {self.col}) = {self.value}"

    def to_json(self) -> list:
        return [self.kind, self.row, self.col, self.value]


@dataclass(frozen=True, slots=True)
class Guess:
    """Open a branch: try ``value`` at ``(row, col)`` whose candidates are ``cands``; a Place follows."""

    kind: ClassVar[str] = "guess"
    row: int
    col: int
    cands: tuple[int, ...]
    value: int

    def to_line(self) -> str:
        return f"guess: ({self.row}, {self.col}) {_fmt_list(self.cands)} = {self.value}"

    def to_json(self) -> list:
        return [self.kind, self.row, self.col, list(self.cands), self.value]


@dataclass(frozen=True, slots=True)
class NoCand:
    """Claim: the empty cell ``(row, col)`` has no legal candidate left."""

    kind: ClassVar[str] = "nocand"
    row: int
    col: int

    def to_line(self) -> str:
        return f"nocand: ({self.row}, {self.col})"

    def to_json(self) -> list:
        return [self.kind, self.row, self.col]


@dataclass(frozen=True, slots=True)
class Invalid:
    """Claim: the board is contradictory (an empty cell without candidate, or a digit without a place)."""

    kind: ClassVar[str] = "invalid"

    def to_line(self) -> str:
        return INVALID_TEXT

    def to_json(self) -> list:
        return [self.kind]


@dataclass(frozen=True, slots=True)
class Revert:
    """Close the most recent open guess at ``(row, col)``: undo it and every placement made after it."""

    kind: ClassVar[str] = "revert"
    row: int
    col: int
    cands: tuple[int, ...]

    def to_line(self) -> str:
        return f"revert: ({self.row}, {self.col}) {_fmt_list(self.cands)} = None"

    def to_json(self) -> list:
        return [self.kind, self.row, self.col, list(self.cands)]


@dataclass(frozen=True, slots=True)
class End:
    """Claim: the grid is complete, valid, and keeps the givens."""

    kind: ClassVar[str] = "end"

    def to_line(self) -> str:
        return END_TEXT

    def to_json(self) -> list:
        return [self.kind]


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The search stopped (node limit, or no solution) without solving the puzzle; no claim."""

    kind: ClassVar[str] = "give_up"

    def to_line(self) -> str:
        return GIVE_UP_TEXT

    def to_json(self) -> list:
        return [self.kind]


Step = Union[Start, Place, Guess, NoCand, Invalid, Revert, End, GiveUp, Unparsed]


def parse_line(line: str) -> Step:
    """One line -> one step (``Unparsed`` when it is not in the grammar)."""
    c = line[:1]
    if c == "(":
        m = _PLACE.fullmatch(line)
        if m:
            return Place(int(m[1]), int(m[2]), int(m[3]))
    elif c == "g":
        m = _GUESS.fullmatch(line)
        if m:
            return Guess(int(m[1]), int(m[2]), _parse_list(m[3]), int(m[4]))
    elif c == "r":
        m = _REVERT.fullmatch(line)
        if m:
            return Revert(int(m[1]), int(m[2]), _parse_list(m[3]))
    elif c == "n":
        m = _NOCAND.fullmatch(line)
        if m:
            return NoCand(int(m[1]), int(m[2]))
    elif c == "i":
        if line == INVALID_TEXT:
            return Invalid()
    elif c == "S":
        if line == END_TEXT:
            return End()
        m = _START.fullmatch(line)
        if m and (m[1] is None or (m[1] == m[2] and m[1] != "9")):  # 9x9 is written without its size
            return Start(tuple((int(r), int(col), int(v)) for r, col, v in _GIVEN.findall(m[3])),
                         int(m[1]) if m[1] is not None else 9)
    elif c == "U":
        if line == GIVE_UP_TEXT:
            return GiveUp()
    return Unparsed(line)


_TASK_PLACE = re.compile(rf"^{_CELL} = ({_N})$", re.ASCII)
_TASK_GUESS = re.compile(rf"^guess: {_CELL} ({_LIST}) = ({_N})$", re.ASCII)


def task_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of ``text`` that carry the task: each placed value (``(r, c) = [v]``), each guess's
    candidate list and value (``guess: (r, c) [[6, 8, 9]] = [9]``) and each contradiction (``[nocand: (r, c)]``);
    the givens and the reverts (copies of their guess) do not. Learning diagnostics score next-token accuracy there."""
    spans = []
    offset = 0
    for line in text.split("\n"):
        if m := _TASK_PLACE.match(line):
            spans.append((offset + m.start(m.lastindex), offset + m.end(m.lastindex)))
        elif m := _TASK_GUESS.match(line):
            k = m.lastindex
            spans += [(offset + m.start(k - 1), offset + m.end(k - 1)), (offset + m.start(k), offset + m.end(k))]
        elif line.startswith("nocand: "):
            spans.append((offset, offset + len(line)))
        offset += len(line) + 1
    return spans


def parse(text: str) -> list[Step]:
    """Text -> steps; identical lines (frequent: placements repeated across branches) are parsed once."""
    return parse_lines(text, parse_line)


def backtracks(steps: list[Step]) -> int:
    """Number of reverts: each abandons one wrong branch."""
    return sum(1 for s in steps if type(s) is Revert)


if __name__ == "__main__":
    for step in parse(sys.stdin.read()):
        print(f"{step.kind:10s} {step.to_line()}")
