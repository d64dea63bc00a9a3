"""List Functions as program search (the DSL `reasonpipe search evolve --task list_functions` searches; the
reasoning-gym task of the same name is reasonpipe.tasks.gym.list_functions): find a program that maps input lists
to output lists.

A problem is a hidden program of a small DSL over integer lists, shown through example pairs: ``train``
(what a search may look at) and ``test`` (held out, to score the program it finds). A program is a
pipeline of primitives applied left to right, e.g. ``sort | head 3 | add 2``.

Primitives: ``reverse sort sort_desc unique init cumsum rotl rotr dup_each diffs`` (no argument),
``head k`` / ``tail k`` (take / drop the first k), ``add k``, ``mul k``, ``keep_gt k``, ``append k``,
``prepend k``, ``keep_even``, ``keep_odd``, and the reductions ``len sum max min first last`` (a one-item
list; ``max`` of an empty list raises, which is a behaviour). Every primitive is total on bounded lists
and fast, so programs always finish.

Example::

    reasonpipe search evolve --task list_functions --budget 2000 --seed 0
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass

from reasonpipe.errors import InputError

Program = tuple[tuple[str, int | None], ...]
IntList = tuple[int, ...]


def _unique(xs: list[int]) -> list[int]:
    return list(dict.fromkeys(xs))


# name -> (argument choices or None, function(list, argument) -> list)
PRIMITIVES: dict[str, tuple[tuple[int, ...] | None, Callable[[list[int], int | None], list[int]]]] = {
    "reverse": (None, lambda xs, k: xs[::-1]),
    "sort": (None, lambda xs, k: sorted(xs)),
    "sort_desc": (None, lambda xs, k: sorted(xs, reverse=True)),
    "unique": (None, lambda xs, k: _unique(xs)),
    "init": (None, lambda xs, k: xs[:-1]),
    "cumsum": (None, lambda xs, k: list(itertools.accumulate(xs))),
    "rotl": (None, lambda xs, k: xs[1:] + xs[:1]),
    "rotr": (None, lambda xs, k: xs[-1:] + xs[:-1]),
    "dup_each": (None, lambda xs, k: [x for x in xs for _ in (0, 1)]),
    "diffs": (None, lambda xs, k: [b - a for a, b in zip(xs, xs[1:])]),
    "keep_even": (None, lambda xs, k: [x for x in xs if x % 2 == 0]),
    "keep_odd": (None, lambda xs, k: [x for x in xs if x % 2]),
    "head": ((1, 2, 3, 4), lambda xs, k: xs[:k]),
    "tail": ((1, 2, 3), lambda xs, k: xs[k:]),
    "add": ((-2, -1, 1, 2, 3), lambda xs, k: [x + k for x in xs]),
    "mul": ((2, 3), lambda xs, k: [x * k for x in xs]),
    "keep_gt": ((2, 3, 4, 5, 6, 7), lambda xs, k: [x for x in xs if x > k]),
    "append": ((0, 1, 5, 9), lambda xs, k: xs + [k]),
    "prepend": ((0, 1, 5, 9), lambda xs, k: [k] + xs),
    "len": (None, lambda xs, k: [len(xs)]),
    "sum": (None, lambda xs, k: [sum(xs)]),
    "max": (None, lambda xs, k: [max(xs)]),
    "min": (None, lambda xs, k: [min(xs)]),
    "first": (None, lambda xs, k: xs[:1]),
    "last": (None, lambda xs, k: xs[-1:]),
}
MAX_LEN = 64  # lists longer than this are cut: a bound on every program's cost


def run(program: Program, xs: IntList) -> IntList:
    """Apply the program to one input list (raises what a primitive raises, e.g. ``max`` of [])."""
    out = list(xs)
    for name, k in program:
        out = PRIMITIVES[name][1](out, k)[:MAX_LEN]
    return tuple(out)


def show(program: Program) -> str:
    """``sort | head 3``; the identity program is ``id``."""
    return " | ".join(name if k is None else f"{name} {k}" for name, k in program) or "id"


def parse(text: str) -> Program:
    """Inverse of :func:`show`; InputError on an unknown primitive or a bad argument."""
    if text.strip() in ("", "id"):
        return ()
    out = []
    for part in text.split("|"):
        words = part.split()
        if not words or words[0] not in PRIMITIVES:
            raise InputError(f"unknown primitive {part.strip()!r} (known: {', '.join(PRIMITIVES)})", field="program")
        choices = PRIMITIVES[words[0]][0]
        if choices is None:
            if len(words) != 1:
                raise InputError(f"{words[0]} takes no argument", field="program")
            out.append((words[0], None))
        else:
            if len(words) != 2 or not words[1].lstrip("-").isdigit() or int(words[1]) not in choices:
                raise InputError(f"{words[0]} takes one of {choices}", field="program")
            out.append((words[0], int(words[1])))
    return tuple(out)


def random_primitive(rng: random.Random) -> tuple[str, int | None]:
    name = rng.choice(list(PRIMITIVES))
    choices = PRIMITIVES[name][0]
    return name, (None if choices is None else rng.choice(choices))


@dataclass(frozen=True)
class ListFunctionsProblem:
    program: Program                        # the hidden program (for reporting; a search never reads it)
    train: tuple[tuple[IntList, IntList], ...]
    test: tuple[tuple[IntList, IntList], ...]


@dataclass
class ListFunctionsConfig:
    min_ops: int = 1
    max_ops: int = 3
    train: int = 8
    test: int = 8
    min_len: int = 3
    max_len: int = 8
    max_value: int = 9


def random_input(rng: random.Random, c: ListFunctionsConfig) -> IntList:
    return tuple(rng.randint(0, c.max_value) for _ in range(rng.randint(c.min_len, c.max_len)))


def generate(rng: random.Random, config: ListFunctionsConfig | None = None) -> ListFunctionsProblem:
    """A hidden program and examples on which it is total, not the identity, and not constant."""
    c = config or ListFunctionsConfig()
    for _ in range(10_000):
        program = tuple(random_primitive(rng) for _ in range(rng.randint(c.min_ops, c.max_ops)))
        inputs = [random_input(rng, c) for _ in range(c.train + c.test)]
        try:
            outputs = [run(program, x) for x in inputs]
        except (ValueError, IndexError):
            continue
        train_out = outputs[:c.train]
        if len(set(train_out)) < 2 or all(o == x for o, x in zip(train_out, inputs)):
            continue
        pairs = tuple(zip(inputs, outputs))
        return ListFunctionsProblem(program, pairs[:c.train], pairs[c.train:])
    raise InputError("no non-trivial program found; widen the list or value ranges", field="max_ops")


def similarity(predicted: IntList, expected: IntList) -> float:
    """1 for an exact match; else the share of positions that agree, over the longer length."""
    if predicted == expected:
        return 1.0
    longest = max(len(predicted), len(expected))
    return sum(a == b for a, b in zip(predicted, expected)) / longest if longest else 1.0


def score(program: Program, pairs: tuple[tuple[IntList, IntList], ...]) -> float:
    """Mean similarity over the example pairs; an example on which the program raises scores 0."""
    if not pairs:
        raise ValueError("no example pairs to score against")
    total = 0.0
    for x, y in pairs:
        try:
            total += similarity(run(program, x), y)
        except (ValueError, IndexError):
            continue  # the program fails on this example: it scores 0 there
    return total / len(pairs)
