"""What every line-based trace grammar shares: the step for a line outside the grammar, and steps <-> text.

Each grammar (``reasonpipe.traces.countdown``, ``sudoku``, ``reachability``, the reasoning-gym grammar) has its
own ``parse_line``; :func:`parse_lines` and :func:`to_text` are the same for all of them.

Example::

    python -c "from reasonpipe.traces.lines import Unparsed, to_text; print(repr(to_text([Unparsed('x')])))"
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Unparsed:
    """A line outside the grammar, kept verbatim."""

    kind: ClassVar[str] = "unparsed"
    line: str

    def to_line(self) -> str:
        return self.line

    def to_json(self) -> list:
        return [self.kind, self.line]


def parse_lines(text: str, parse_line: Callable[[str], Any]) -> list[Any]:
    """Text -> steps, one per non-empty line; identical lines (frequent: states repeated across branches)
    are parsed once and share their step."""
    cache: dict[str, Any] = {}
    steps = []
    for line in text.split("\n"):
        if not line:
            continue
        step = cache.get(line)
        if step is None:
            step = cache[line] = parse_line(line)
        steps.append(step)
    return steps


def to_text(steps: Sequence[Any]) -> str:
    """Steps -> text, one line each, every line ending in a newline."""
    return "\n".join([s.to_line() for s in steps]) + "\n" if steps else ""
