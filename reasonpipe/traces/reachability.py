"""Reachability trace grammar (ProsQA-style graphs): typed steps <-> text lines.

One step a line; nodes are named ``naa, nab, ...`` (see :func:`reasonpipe.tasks.reachability.node_name`)::

    naa>nab|nab>nqq|nxd>nqq Q nqq nxd R naa     the question (the prompt): edges, candidates, root
    P naa>nab>nqq                                a path from the root (searcher ``path``)
    F nab nxx                                    BFS layer k, the k-th F line (searcher ``bfs``)
    A nqq                                        the answer: the candidate the root reaches

A trace is the question line, then the CoT lines (``P`` or ``F``, none for ``direct``), then the answer line.
``F`` lines list their nodes in ascending order when our searchers write them; parsing keeps the order
written, so ``to_text(parse(t)) == t`` for every text of non-empty, newline-ended lines. Parsing never fails:
a line outside the grammar becomes :class:`Unparsed`, which verifiers report. Any ``n`` + two lowercase
letters parses as a node (ids up to 675); the verifier refutes nodes outside the problem's graph.

:func:`cot_steps` and :func:`answer_line` give the CoT and answer of a problem as strings, for latent-thought
models that replace CoT steps by thoughts (one path step = one node name).

Example::

    printf 'naa>nab|nab>nac|nad>nae Q nac nae R naa\\nP naa>nab>nac\\nA nac\\n' \\
        | python -m reasonpipe.traces.reachability
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any, ClassVar, Union

from reasonpipe.errors import InputError
from reasonpipe.traces.lines import Unparsed, parse_lines, to_text  # noqa: F401 (to_text: this grammar\'s, by name)

_NODE = r"n[a-z]{2}"
_QUESTION = re.compile(rf"((?:{_NODE}>{_NODE})(?:\|{_NODE}>{_NODE})*)? Q ({_NODE}) ({_NODE}) R ({_NODE})", re.ASCII)
_PATH = re.compile(rf"P ({_NODE}(?:>{_NODE})*)", re.ASCII)
_FRONTIER = re.compile(rf"F ((?:{_NODE}(?: {_NODE})*)?)", re.ASCII)
_ANSWER = re.compile(rf"A ({_NODE})", re.ASCII)
MAX_LINE = 1 << 16  # longer lines are not parsed (a complete 128-node graph's prompt is ~65k characters)
KINDS = ("path", "bfs")  # the CoT kinds of :func:`cot_steps`


NAMES = tuple("n" + chr(97 + i // 26) + chr(97 + i % 26) for i in range(26 * 26))  # every name the grammar reads
_name = NAMES.__getitem__


def _index(name: str) -> int:
    return (ord(name[1]) - 97) * 26 + ord(name[2]) - 97


@dataclass(frozen=True, slots=True)
class Question:
    """The problem as the prompt states it: edges in prompt order, the two candidates, the root."""

    kind: ClassVar[str] = "question"
    edges: tuple[tuple[int, int], ...]
    candidates: tuple[int, int]
    root: int

    def to_line(self) -> str:
        a, b = self.candidates
        return ("|".join([f"{_name(s)}>{_name(t)}" for s, t in self.edges])
                + f" Q {_name(a)} {_name(b)} R {_name(self.root)}")

    def to_json(self) -> list:
        return [self.kind, [list(e) for e in self.edges], list(self.candidates), self.root]


@dataclass(frozen=True, slots=True)
class Path:
    """Claim: ``nodes`` is a walk along edges from the root (to the answer the trace then names)."""

    kind: ClassVar[str] = "path"
    nodes: tuple[int, ...]

    def to_line(self) -> str:
        return "P " + ">".join([_name(i) for i in self.nodes])

    def to_json(self) -> list:
        return [self.kind, list(self.nodes)]


@dataclass(frozen=True, slots=True)
class Frontier:
    """Claim: ``nodes`` are exactly the nodes at BFS distance k from the root, for the k-th F line."""

    kind: ClassVar[str] = "frontier"
    nodes: tuple[int, ...]

    def to_line(self) -> str:
        return "F " + " ".join([_name(i) for i in self.nodes])

    def to_json(self) -> list:
        return [self.kind, list(self.nodes)]


@dataclass(frozen=True, slots=True)
class Answer:
    """Claim: ``node`` is the candidate the root reaches."""

    kind: ClassVar[str] = "answer"
    node: int

    def to_line(self) -> str:
        return "A " + _name(self.node)

    def to_json(self) -> list:
        return [self.kind, self.node]


Step = Union[Question, Path, Frontier, Answer, Unparsed]


def parse_line(line: str) -> Step:
    """One line -> one step (``Unparsed`` when it is not in the grammar)."""
    c = line[:1] if len(line) <= MAX_LINE else ""
    if c == "P":
        m = _PATH.fullmatch(line)
        if m:
            return Path(tuple(map(_index, m[1].split(">"))))
    elif c == "F":
        m = _FRONTIER.fullmatch(line)
        if m:
            return Frontier(tuple(map(_index, m[1].split(" "))) if m[1] else ())
    elif c == "A":
        m = _ANSWER.fullmatch(line)
        if m:
            return Answer(_index(m[1]))
    elif c == "n" or c == " ":
        m = _QUESTION.fullmatch(line)
        if m:
            edges = tuple((_index(e[:3]), _index(e[4:])) for e in m[1].split("|")) if m[1] else ()
            return Question(edges, (_index(m[2]), _index(m[3])), _index(m[4]))
    return Unparsed(line)


def task_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of ``text`` that carry the task: the nodes of each frontier or path line (``F``, ``P``) and
    the answer's node (``A``), the lines after the question; learning diagnostics score next-token accuracy there."""
    spans = []
    offset = 0
    for line in text.split("\n"):
        if line[:2] in ("F ", "P ", "A "):
            spans.append((offset + 2, offset + len(line)))
        offset += len(line) + 1
    return spans


def parse(text: str) -> list[Step]:
    """Text -> steps, one per non-empty line."""
    return parse_lines(text, parse_line)


def backtracks(steps: list[Step]) -> int:
    """Reachability traces never backtrack."""
    return 0


# -- the CoT of a problem, for the searchers and latent-thought models --------------------------------

def cot_steps(problem: Any, kind: str) -> list[str]:
    """The CoT as step strings without newlines: ``path``: one node name per path node after the root
    (``["nbc", "nqq"]``; the ``P`` line is ``"P " + root + ">" + ">".join(steps)``); ``bfs``: one ``F ...`` line per
    BFS layer 1 .. the answer's layer."""
    if kind == "path":
        return [_name(i) for i in problem.path[1:]]
    if kind == "bfs":
        return [Frontier(layer).to_line() for layer in problem.layers[1:len(problem.path)]]
    raise InputError(f"unknown CoT kind {kind!r} (known: {', '.join(KINDS)})", field="kind")


def answer_line(problem: Any) -> str:
    """``A <answer>`` and a newline."""
    return Answer(problem.answer).to_line() + "\n"


if __name__ == "__main__":
    for step in parse(sys.stdin.read()):
        print(f"{step.kind:10s} {step.to_line()}")
