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
searchers share one object between identical lines.
Numbers are limited to 30 digits so a hostile line cannot make int parsing slow.

Example::

    python -m reasonpipe.traces.countdown < ../shared/formats/sos_countdown_trace.txt
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar, Union


_NUM = r"\d{1,30}"
_OP = rf"({_NUM})([-+*/])({_NUM})=({_NUM})"
_OP_TEXT = rf"({_NUM}[-+*/]{_NUM}={_NUM})"
_NUMS = rf"((?:{_NUM}(?:, {_NUM})*)?)"
_QOPS = r"((?:'[^',]{1,100}', )*'[^',]{1,100}')?"  # each operation is then checked by Op.parse

_STATE = re.compile(rf"Current State: ({_NUM}):\[{_NUMS}\], Operations: \[{_QOPS}\]", re.ASCII)
_EXPLORE = re.compile(rf"Exploring Operation: {_OP_TEXT}, Resulting Numbers: \[{_NUMS}\]", re.ASCII)
_GENERATE = re.compile(rf"Generated Node #({_NUM}(?:,{_NUM})*): ({_NUM}):\[{_NUMS}\] Operation: {_OP_TEXT}", re.ASCII)
_MOVE = re.compile(rf"Moving to Node #({_NUM}(?:,{_NUM})*)", re.ASCII)
_CLAIM = re.compile(rf"({_NUM}),({_NUM}) (equal: Goal Reached|unequal: No Solution)", re.ASCII)
_OP_IN_LIST = re.compile(_OP, re.ASCII)
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

    @classmethod
    def parse(cls, text: str) -> "Op | None":
        m = _OP_IN_LIST.fullmatch(text)
        return None if m is None else cls(int(m[1]), m[2], int(m[3]), int(m[4]))


@lru_cache(maxsize=1 << 16)
def _fmt_nums(nums: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, nums)) + "]"


def _parse_nums(s: str) -> tuple[int, ...]:
    return tuple(map(int, s.split(", "))) if s else ()


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


@dataclass(slots=True)
class Unparsed:
    """A line outside the grammar, kept verbatim."""

    kind: ClassVar[str] = "unparsed"
    line: str

    def to_line(self) -> str:
        return self.line

    def to_json(self) -> list:
        return [self.kind, self.line]


Step = Union[State, Explore, Generate, Move, Goal, DeadEnd, Exhausted, Unparsed]


def _op(text: str, cache: dict[str, Op]) -> Op | None:
    op = cache.get(text)
    if op is None:
        op = Op.parse(text)
        if op is not None:
            cache[text] = op
    return op


def parse_line(line: str, ops_cache: dict[str, Op] | None = None) -> Step:
    """One line -> one step (``Unparsed`` when it is not in the grammar).

    ``ops_cache`` shares one Op object per distinct operation text across the lines of a trace (the
    same operation recurs in every later state on its path), which makes parsing and comparison cheap.
    """
    cache = {} if ops_cache is None else ops_cache
    c = line[:1]
    if c == "C":
        m = _STATE.fullmatch(line)
        if m:
            ops: tuple[Op, ...] = ()
            if m[3]:
                ops = tuple([_op(t, cache) for t in m[3][1:-1].split("', '")])
                if None in ops:
                    return Unparsed(line)
            return State(int(m[1]), _parse_nums(m[2]), ops)
    elif c == "E":
        m = _EXPLORE.fullmatch(line)
        if m:
            return Explore(_op(m[1], cache), _parse_nums(m[2]))
    elif c == "G":
        m = _GENERATE.fullmatch(line)
        if m:
            return Generate(m[1], int(m[2]), _parse_nums(m[3]), _op(m[4], cache))
    elif c == "M":
        m = _MOVE.fullmatch(line)
        if m:
            return Move(m[1])
    elif c == "N":
        if line == EXHAUSTED_TEXT:
            return Exhausted()
    elif "0" <= c <= "9":
        m = _CLAIM.fullmatch(line)
        if m:
            return (Goal if m[3][0] == "e" else DeadEnd)(int(m[1]), int(m[2]))
    return Unparsed(line)


def parse(text: str) -> list[Step]:
    """Text -> steps; identical lines (frequent: states revisited, moves back) are parsed once."""
    cache: dict[str, Step] = {}
    ops_cache: dict[str, Op] = {}
    steps = []
    for line in text.split("\n"):
        if not line:
            continue
        step = cache.get(line)
        if step is None:
            step = cache[line] = parse_line(line, ops_cache)
        steps.append(step)
    return steps


def to_text(steps: list[Step]) -> str:
    """Steps -> text, one line each, every line ending in a newline."""
    return "".join([s.to_line() + "\n" for s in steps])


def problem_of(steps: list[Step]):
    """The problem a trace's first line states, or None when it states none."""
    from reasonpipe.tasks.countdown import CountdownProblem

    if steps and isinstance(steps[0], State):
        return CountdownProblem(nums=steps[0].nums, target=steps[0].target)
    return None


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
