"""The trace grammar shared by the reasoning-gym tasks: typed steps <-> text lines.

One step a line::

    Problem: top blue right cyan ... rotate back ask left     the problem, in the task's compact words
    Try: <branch>                                             open a branch (a candidate rule, count, ...)
    Check: <claim>                                            a claim about the open branch that holds
    Reject: <claim>                                           a claim that refutes it: backtrack
    Answer: <answer>                                          the final answer

Parsing never fails: any other line becomes :class:`Unparsed`, which verifiers report.

Example::

    printf 'Problem: x\\nTry: a\\nReject: a fails\\nTry: b\\nAnswer: 1\\n' | python -m reasonpipe.tasks.gym.grammar
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import ClassVar, Union

from reasonpipe.traces.lines import Unparsed, to_text  # noqa: F401 (to_text: this grammar\'s, by name)

WORDS = ("Problem", "Try", "Check", "Reject", "Answer")


@dataclass(frozen=True, slots=True)
class ProblemLine:
    kind: ClassVar[str] = "problem"
    text: str

    def to_line(self) -> str:
        return f"Problem: {self.text}"

    def to_json(self) -> list:
        return [self.kind, self.text]


@dataclass(frozen=True, slots=True)
class Try:
    kind: ClassVar[str] = "try"
    text: str

    def to_line(self) -> str:
        return f"Try: {self.text}"

    def to_json(self) -> list:
        return [self.kind, self.text]


@dataclass(frozen=True, slots=True)
class Check:
    kind: ClassVar[str] = "check"
    text: str

    def to_line(self) -> str:
        return f"Check: {self.text}"

    def to_json(self) -> list:
        return [self.kind, self.text]


@dataclass(frozen=True, slots=True)
class Reject:
    kind: ClassVar[str] = "reject"
    text: str

    def to_line(self) -> str:
        return f"Reject: {self.text}"

    def to_json(self) -> list:
        return [self.kind, self.text]


@dataclass(frozen=True, slots=True)
class Answer:
    kind: ClassVar[str] = "answer"
    text: str

    def to_line(self) -> str:
        return f"Answer: {self.text}"

    def to_json(self) -> list:
        return [self.kind, self.text]


Step = Union[ProblemLine, Try, Check, Reject, Answer, Unparsed]
_KINDS = {"Problem: ": ProblemLine, "Try: ": Try, "Check: ": Check, "Reject: ": Reject, "Answer: ": Answer}


def parse_line(line: str) -> Step:
    for prefix, cls in _KINDS.items():
        if line.startswith(prefix) and len(line) > len(prefix) and line == line.rstrip():
            return cls(line[len(prefix):])
    return Unparsed(line)


def task_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of ``text`` that carry the task: each ``Check``/``Reject`` line's verdict (what follows its
    clue: ``holds`` / ``fails``) and the ``Answer``; learning diagnostics score next-token accuracy there."""
    spans = []
    offset = 0
    for line in text.split("\n"):
        if line.startswith(("Check: ", "Reject: ")) and " " in line[7:]:
            cut = line.rstrip().rfind(" ")
            spans.append((offset + cut + 1, offset + len(line.rstrip())))
        elif line.startswith("Answer: "):
            spans.append((offset + len("Answer: "), offset + len(line)))
        offset += len(line) + 1
    return spans


def parse(text: str) -> list[Step]:
    return [parse_line(line) for line in text.splitlines()]


def problem_of(steps: list[Step]):
    """The problem cannot be rebuilt from its compact line (reasoning-gym regenerates it from its seed)."""
    return None


def backtracks(steps: list[Step]) -> int:
    return sum(type(s) is Reject for s in steps)


def main() -> int:
    for step in parse(sys.stdin.read()):
        print(step.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
