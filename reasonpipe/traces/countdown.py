"""CountDown trace grammar of Stream of Search (Gandhi et al. 2024): typed steps <-> text lines.

One step a line::

    Current State: 47:[42, 61, 66], Operations: []
    Exploring Operation: 66-42=24, Resulting Numbers: [61, 24]
    Generated Node #0,0: 47:[61, 24] Operation: 66-42=24
    Moving to Node #0,0
    37,47 unequal: No Solution
    47,47 equal: Goal Reached
    No solution found.

Parsing never fails: a line outside the grammar becomes :class:`Unparsed`, which verifiers report.
Steps are plain (mutable, for speed) slotted dataclasses: treat them as immutable, since parsing and the
searchers share one object between identical lines. Numbers are canonical decimals (no leading zeros),
so every parsed line renders back to exactly itself.

Example::

    reasonpipe gen countdown --n 1 --searcher dfs --seed 1 --out /tmp/countdown.jsonl --quiet && python -c \
        "import json; print(json.loads(open('/tmp/countdown.jsonl').readline())['text'])" \
        | python -m reasonpipe.traces.countdown

(docs/formats.md shows the grammar.)
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar, Union

from reasonpipe.traces.lines import Unparsed, to_text  # noqa: F401 (to_text: this grammar\'s, by name)


# Lines are matched by fast patterns; list fields (numbers, node ids, operations) are then validated
# strictly by cached parsers. Every number must be canonical (no leading zeros), so each parsed line renders
# back to exactly itself; lines longer than MAX_LINE are not parsed, which bounds every number well below
# Python's int-conversion limit.
_N = r"(?:[1-9][0-9]*|0)"
_STATE = re.compile(rf"Current State: ({_N}):\[([0-9, ]*)\], Operations: \[((?:'[^',]*', )*'[^',]*')?\]")
_EXPLORE = re.compile(r"Exploring Operation: ([0-9]+[-+*/][0-9]+=[0-9]+), Resulting Numbers: \[([0-9, ]*)\]")
_GENERATE = re.compile(rf"Generated Node #([0-9,]+): ({_N}):\[([0-9, ]*)\] Operation: ([0-9]+[-+*/][0-9]+=[0-9]+)")
_MOVE = re.compile(r"Moving to Node #([0-9,]+)")
_CLAIM = re.compile(rf"({_N}),({_N}) (equal: Goal Reached|unequal: No Solution)")
_OP_IN_LIST = re.compile(rf"({_N})([-+*/])({_N})=({_N})")
MAX_LINE = 4096
EXHAUSTED_TEXT = "No solution found."


@dataclass(slots=True)
class Op:
    """One arithmetic operation ``a sym b = result`` as written (not necessarily true)."""

    a: int
    sym: str
    b: int
    result: int
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    def __str__(self) -> str:
        if self._text is None:
            self._text = f"{self.a}{self.sym}{self.b}={self.result}"
        return self._text

    @staticmethod
    def parse(text: str) -> "Op | None":
        return _parse_op(text)


@lru_cache(maxsize=1 << 16)
def _fmt_nums(nums: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, nums)) + "]"


def _canonical(digits: str) -> bool:
    """A decimal number as we write it: digits, no leading zero (except ``0`` itself)."""
    return digits.isdigit() and digits.isascii() and (digits[0] != "0" or len(digits) == 1)


@lru_cache(maxsize=1 << 16)  # a node's numbers recur in its Explore, Generate and State lines
def _parse_nums(s: str) -> tuple[int, ...] | None:
    """``"61, 24"`` -> (61, 24); None unless exactly ``n, n, ...`` with canonical numbers."""
    if not s:
        return ()
    parts = s.split(", ")
    for p in parts:
        if not _canonical(p):
            return None
    return tuple(map(int, parts))


@lru_cache(maxsize=1 << 16)
def _valid_node(node: str) -> bool:
    """``0,3,1``: canonical numbers joined by single commas."""
    return all(_canonical(p) for p in node.split(","))


@dataclass(slots=True)
class State:
    kind: ClassVar[str] = "state"
    target: int
    nums: tuple[int, ...]
    ops: tuple[Op, ...]
    _line: str | None = field(default=None, init=False, repr=False, compare=False)

    def to_line(self) -> str:  # cached: searchers restate the same State object after each backtrack
        if self._line is None:
            ops = "[" + ", ".join([f"'{op}'" for op in self.ops]) + "]"
            self._line = f"Current State: {self.target}:{_fmt_nums(self.nums)}, Operations: {ops}"
        return self._line

    def to_json(self) -> list:
        return [self.kind, self.target, list(self.nums), [str(o) for o in self.ops]]


@dataclass(slots=True)
class Explore:
    kind: ClassVar[str] = "explore"
    op: Op
    nums: tuple[int, ...]

    def to_line(self) -> str:
        return f"Exploring Operation: {self.op}, Resulting Numbers: {_fmt_nums(self.nums)}"

    def to_json(self) -> list:
        return [self.kind, str(self.op), list(self.nums)]


@dataclass(slots=True)
class Generate:
    kind: ClassVar[str] = "generate"
    node: str
    target: int
    nums: tuple[int, ...]
    op: Op

    def to_line(self) -> str:
        return f"Generated Node #{self.node}: {self.target}:{_fmt_nums(self.nums)} Operation: {self.op}"

    def to_json(self) -> list:
        return [self.kind, self.node, self.target, list(self.nums), str(self.op)]


@dataclass(slots=True)
class Move:
    kind: ClassVar[str] = "move"
    node: str

    def to_line(self) -> str:
        return f"Moving to Node #{self.node}"

    def to_json(self) -> list:
        return [self.kind, self.node]


@dataclass(slots=True)
class Goal:
    """Claim ``value == target`` for the last explored single number."""

    kind: ClassVar[str] = "goal"
    value: int
    target: int

    def to_line(self) -> str:
        return f"{self.value},{self.target} equal: Goal Reached"

    def to_json(self) -> list:
        return [self.kind, self.value, self.target]


@dataclass(slots=True)
class DeadEnd:
    """Claim ``value != target`` for the last explored single number."""

    kind: ClassVar[str] = "dead_end"
    value: int
    target: int

    def to_line(self) -> str:
        return f"{self.value},{self.target} unequal: No Solution"

    def to_json(self) -> list:
        return [self.kind, self.value, self.target]


@dataclass(slots=True)
class Exhausted:
    """The search ends without a solution."""

    kind: ClassVar[str] = "exhausted"

    def to_line(self) -> str:
        return EXHAUSTED_TEXT

    def to_json(self) -> list:
        return [self.kind]


Step = Union[State, Explore, Generate, Move, Goal, DeadEnd, Exhausted, Unparsed]


# Parsing is memoised (bounded LRU): the same lines recur within a trace (states restated after each
# backtrack, moves back) and across traces (moves, dead ends), and one shared Op object per operation
# text makes the verifier's comparisons of operation lists cheap. Steps are never mutated, so sharing
# them is safe.
@lru_cache(maxsize=1 << 16)
def _parse_op(text: str) -> "Op | None":
    m = _OP_IN_LIST.fullmatch(text)
    return None if m is None else Op(int(m[1]), m[2], int(m[3]), int(m[4]))


@lru_cache(maxsize=1 << 16)
def _parse_ops(text: str) -> tuple[Op, ...] | None:
    """``'a+b=c', 'd*e=f'`` -> Ops (None if any is malformed); path prefixes recur, so this is cached too."""
    ops = tuple([_parse_op(t) for t in text[1:-1].split("', '")])
    for op in ops:
        if op is None:
            return None
    return ops


@lru_cache(maxsize=1 << 16)
def parse_line(line: str) -> Step:
    """One line -> one step (``Unparsed`` when it is not in the grammar)."""
    c = line[:1] if len(line) <= MAX_LINE else ""
    if c == "C":
        m = _STATE.fullmatch(line)
        if m:
            nums = _parse_nums(m[2])
            ops = _parse_ops(m[3]) if m[3] else ()
            if nums is not None and ops is not None:
                return State(int(m[1]), nums, ops)
    elif c == "E":
        m = _EXPLORE.fullmatch(line)
        if m:
            op, nums = _parse_op(m[1]), _parse_nums(m[2])
            if op is not None and nums is not None:
                return Explore(op, nums)
    elif c == "G":
        m = _GENERATE.fullmatch(line)
        if m and _valid_node(m[1]):
            op, nums = _parse_op(m[4]), _parse_nums(m[3])
            if op is not None and nums is not None:
                return Generate(m[1], int(m[2]), nums, op)
    elif c == "M":
        m = _MOVE.fullmatch(line)
        if m and _valid_node(m[1]):
            return Move(m[1])
    elif c == "N":
        if line == EXHAUSTED_TEXT:
            return Exhausted()
    elif "0" <= c <= "9":
        m = _CLAIM.fullmatch(line)
        if m:
            return (Goal if m[3][0] == "e" else DeadEnd)(int(m[1]), int(m[2]))
    return Unparsed(line)


# What carries the task in a trace (the rest is format or copying): the result of each explored operation and
# the numbers it leaves, and each goal check. Learning diagnostics score a model's next-token accuracy there.
_TASK_SPANS = re.compile(r"(?<=Exploring Operation: )[0-9]+[-+*/][0-9]+=([0-9]+), Resulting Numbers: (\[[0-9, ]*\])"
                         r"|[0-9]+,[0-9]+ ((?:un)?equal: (?:Goal Reached|No Solution))")


def task_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of ``text`` that carry the task: each explored operation's result digits and its resulting
    numbers (``66-42=[24], Resulting Numbers: [[61, 24]]``) and each goal check (``37,47 [unequal: No Solution]``)."""
    return [m.span(g) for m in _TASK_SPANS.finditer(text) for g in (1, 2, 3) if m.group(g) is not None]


def parse(text: str) -> list[Step]:
    """Text -> steps, one per non-empty line."""
    return [parse_line(line) for line in text.split("\n") if line]


def backtracks(steps: list[Step]) -> int:
    """Moves back to a node visited before: each is one abandoned branch ("go back to step j")."""
    seen = {"0"}
    count = 0
    for s in steps:
        if type(s) is Move:
            if s.node in seen:
                count += 1
            else:
                seen.add(s.node)
    return count


if __name__ == "__main__":
    for step in parse(sys.stdin.read()):
        print(f"{step.kind:10s} {step.to_line()}")
