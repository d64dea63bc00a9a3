"""The trace grammar of "sum to target": one frozen dataclass per kind of line, ``parse_line``, ``parse`` and
``task_spans`` (what reasonpipe asks of a grammar; docs/adding-a-task.md).

A trace is a depth-first search over the numbers in order, deciding for each whether to take it::

    Numbers 4 6 3 target 7      the problem
    Take 4 at 0 sum 4           take the number at index 0: the sum is now 4
    Take 6 at 1 sum 10          ...
    Skip 6 at 1 sum 4           back at the node (index 1, sum 4): leave the 6 out
    Take 3 at 2 sum 7
    Answer 4 3                  the numbers taken

Example::

    python -c "from sumtask.grammar import parse; print(parse('Numbers 4 3 target 7\\nTake 4 at 0 sum 4\\n'))"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from reasonpipe.traces.lines import Unparsed, parse_lines


@dataclass(frozen=True, slots=True)
class Numbers:
    kind: ClassVar[str] = "numbers"
    numbers: tuple[int, ...]
    target: int

    def to_line(self) -> str:
        return f"Numbers {' '.join(map(str, self.numbers))} target {self.target}"

    def to_json(self) -> list:
        return [self.kind, list(self.numbers), self.target]


@dataclass(frozen=True, slots=True)
class Take:
    """Take ``number`` (the one at ``index``) at the current node; ``total`` is the sum after it."""

    kind: ClassVar[str] = "take"
    number: int
    index: int
    total: int

    def to_line(self) -> str:
        return f"Take {self.number} at {self.index} sum {self.total}"

    def to_json(self) -> list:
        return [self.kind, self.number, self.index, self.total]


@dataclass(frozen=True, slots=True)
class Skip:
    """Leave out ``number`` (the one at ``index``) at the node (``index``, ``total``) of the current path."""

    kind: ClassVar[str] = "skip"
    number: int
    index: int
    total: int

    def to_line(self) -> str:
        return f"Skip {self.number} at {self.index} sum {self.total}"

    def to_json(self) -> list:
        return [self.kind, self.number, self.index, self.total]


@dataclass(frozen=True, slots=True)
class Answer:
    kind: ClassVar[str] = "answer"
    numbers: tuple[int, ...]

    def to_line(self) -> str:
        return f"Answer {' '.join(map(str, self.numbers))}"

    def to_json(self) -> list:
        return [self.kind, list(self.numbers)]


_NUMBERS = re.compile(r"Numbers((?: \d+)+) target (\d+)")
_MOVE = re.compile(r"(Take|Skip) (\d+) at (\d+) sum (\d+)")
_ANSWER = re.compile(r"Answer((?: \d+)+)")
SAMPLE = "Numbers target Take Skip at sum Answer \n"  # every word and symbol of the grammar (the vocabulary)


def parse_line(line: str) -> Any:
    """The step of one line; ``Unparsed`` for a line outside the grammar (never raises)."""
    if m := _NUMBERS.fullmatch(line):
        return Numbers(tuple(int(x) for x in m[1].split()), int(m[2]))
    if m := _MOVE.fullmatch(line):
        return (Take if m[1] == "Take" else Skip)(int(m[2]), int(m[3]), int(m[4]))
    if m := _ANSWER.fullmatch(line):
        return Answer(tuple(int(x) for x in m[1].split()))
    return Unparsed(line)


def parse(text: str) -> list:
    return parse_lines(text, parse_line)


def task_spans(text: str) -> list[tuple[int, int]]:
    """The sums after each move and the answer's numbers: what the learning diagnostics score."""
    spans = [m.span(1) for m in re.finditer(r"sum (\d+)$", text, re.M)]
    spans += [m.span(1) for m in re.finditer(r"^Answer (\d+(?: \d+)*)$", text, re.M)]
    return sorted(spans)
