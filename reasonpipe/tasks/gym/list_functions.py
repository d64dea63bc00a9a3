"""List Functions (reasoning-gym ``list_functions``): find the list program behind some input/output pairs.

reasoning-gym draws one of 17 rule families (identity, third element, reverse, sum of the distinct
elements under 30, count of 5s, elements followed by an even one, add the index, element at the index the
last element names, length, sum, sort up / down, first and last plus one, sorted-up flag, divisible-by-10
flag, twice the last, 2x - 4) and shows four or so pairs and a test input. We search programs of our List
Functions DSL (:mod:`reasonpipe.tasks.list_functions`: its primitives, argument syntax and ``show``),
extended here by the primitives those families need (:data:`EXTRA`), and write traces in the shared
gym grammar::

    Problem: in [3, 1, 2] out [2, 1, 3] | in [5, 4, 9, 7] out [7, 9, 4, 5] | test [8, 6, 1]
    Try: sort                                   a program: primitives left to right, ``|`` between
    Reject: example 1 gives [1, 2, 3] not [2, 1, 3]
    Try: reverse
    Check: example 1 gives [2, 1, 3]
    Check: example 2 gives [7, 9, 4, 5]
    Answer: [1, 6, 8]

Programs are enumerated by length: one or two primitives, then three when the last is a reduction
(``sum len max min first last``). The right branch is the first program that maps every example and
gives reasoning-gym's test answer; wrong branches are other programs (distinct in what they do to the
examples) that get some example wrong, the most plausible first (those that fail late and nearly
match). Claims: ``example I gives LIST`` and ``example I gives LIST not LIST2`` (LIST2 the expected
output), checked by running the branch's program; any other text is false.

Not covered: a problem none of these programs solves raises NotCovered (the generator draws another);
on 2000 seeds none did, and each had 8 wrong branches. reasoning-gym's family 14 draws from Python's
global ``random`` (so its entries differ between runs for one seed): we seed it from the problem's seed
while reasoning-gym builds the entry and restore it after, so that problems, traces and verification are
reproducible. Our DSL's ``append prepend rotl rotr dup_each`` are understood in branches but not searched.

Example::

    reasonpipe gen list_functions --n 3 --searcher kbacktrack --k 2 --out /tmp/lf.jsonl
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from reasonpipe.tasks import list_programs as dsl
from reasonpipe.tasks.gym.base import Branch, GymTask, NotCovered

Program = dsl.Program
IntList = dsl.IntList
MAX_WRONG = 8  # wrong branches offered: the most plausible ones


def _before(parity: int) -> Callable[[list[int], int | None], list[int]]:
    return lambda xs, k: [a for a, b in zip(xs, xs[1:]) if b % 2 == parity]


def _inc_ends(xs: list[int], k: int | None) -> list[int]:
    out = list(xs)
    if out:
        out[0] += 1
        out[-1] += 1
    return out


# primitives the reasoning-gym families need beyond our DSL's, in its (list, argument) -> list form
EXTRA: dict[str, Callable[[list[int], int | None], list[int]]] = {
    "keep_lt": lambda xs, k: [x for x in xs if x < k],
    "keep_eq": lambda xs, k: [x for x in xs if x == k],
    "before_even": _before(0),
    "before_odd": _before(1),
    "add_index": lambda xs, k: [x + i for i, x in enumerate(xs)],
    "at_last": lambda xs, k: [xs[xs[-1]]] if xs and 0 <= xs[-1] < len(xs) else [],
    "inc_ends": _inc_ends,
    "is_asc": lambda xs, k: [int(xs == sorted(xs))],
    "is_desc": lambda xs, k: [int(xs == sorted(xs, reverse=True))],
    "div_by": lambda xs, k: [int(all(x % k == 0 for x in xs))],
}
FUNCTIONS: dict[str, Callable[[list[int], int | None], list[int]]] = {
    **{name: f for name, (_, f) in dsl.PRIMITIVES.items()}, **EXTRA}

# the primitives the search enumerates, with their arguments (our DSL's ``append`` / ``prepend`` /
# ``rotl`` ... are left out of the search: no reasoning-gym family uses them, and each one costs time)
ARGS: dict[str, tuple[int, ...] | None] = {
    "reverse": None, "sort": None, "sort_desc": None, "unique": None, "init": None, "cumsum": None,
    "diffs": None, "keep_even": None, "keep_odd": None, "len": None, "sum": None, "max": None, "min": None,
    "first": None, "last": None, "head": (1, 2, 3), "tail": (1, 2, 3), "add": (-4, -1, 1, 2), "mul": (2, 3),
    "keep_gt": (30, 50), "keep_lt": (30, 50), "keep_eq": (5,), "before_even": None, "before_odd": None,
    "add_index": None, "at_last": None, "inc_ends": None, "is_asc": None, "is_desc": None, "div_by": (5, 10),
}
REDUCTIONS = ("sum", "len", "max", "min", "first", "last")
STEPS: tuple[tuple[str, int | None], ...] = tuple(
    (name, k) for name, choices in ARGS.items() for k in (choices if choices is not None else (None,)))
_ERRORS = (ValueError, IndexError, TypeError, ZeroDivisionError, OverflowError)


def run(program: Program, xs: IntList) -> IntList:
    """Our DSL's :func:`~reasonpipe.tasks.list_functions.run`, over its primitives and :data:`EXTRA`."""
    out = list(xs)
    for name, k in program:
        out = FUNCTIONS[name](out, k)[:dsl.MAX_LEN]
    return tuple(out)


def parse_program(text: str) -> Program | None:
    """The program that :func:`~reasonpipe.tasks.list_functions.show` writes as ``text``; None if none."""
    if text == "id":
        return ()
    out = []
    for part in text.split(" | "):
        words = part.split(" ")
        if words[0] not in FUNCTIONS:
            return None
        takes = ARGS.get(words[0], dsl.PRIMITIVES.get(words[0], (None,))[0]) is not None
        if len(words) != 1 + takes or (takes and not re.fullmatch(r"-?[1-9]\d{0,2}", words[1])):
            return None
        out.append((words[0], int(words[1]) if takes else None))
    return tuple(out)


def show_list(xs: IntList) -> str:
    """Python's list syntax, as reasoning-gym writes answers: ``[1, 2]``."""
    return "[" + ", ".join(map(str, xs)) + "]"


# -- problems -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Puzzle:
    """The examples and the test input, read from reasoning-gym's question (its metadata has none)."""

    train: tuple[tuple[IntList, IntList], ...]
    test: IntList

    @classmethod
    def of(cls, entry: dict) -> "Puzzle":
        q = entry["question"]
        ins = dict(re.findall(r"^Input (\d+): (\[.*\])$", q, re.M))
        outs = dict(re.findall(r"^Output (\d+): (\[.*\])$", q, re.M))
        test = re.search(r"^Input: (\[.*\])$", q, re.M)
        train = tuple((_ints(ins[i]), _ints(outs[i])) for i in sorted(ins, key=int))
        return cls(train, _ints(test.group(1)))


def _ints(text: str) -> IntList:
    return tuple(json.loads(text))


def _outputs(program: Program, inputs: list[IntList]) -> tuple[IntList, ...] | None:
    """What the program makes of each input; None if it fails on one."""
    try:
        return tuple(run(program, x) for x in inputs)
    except _ERRORS:
        return None


def _step(step: tuple[str, int | None], lists: tuple[IntList, ...]) -> tuple[IntList, ...] | None:
    """One primitive applied to each list (as :func:`run` does); None if it fails on one."""
    f, k = FUNCTIONS[step[0]], step[1]
    try:
        return tuple(tuple(f(list(xs), k)[:dsl.MAX_LEN]) for xs in lists)
    except _ERRORS:
        return None


def runs(inputs: tuple[IntList, ...]) -> Iterator[tuple[Program, tuple[IntList, ...]]]:
    """Every program the search tries, shortest first (the identity, ``id``, first of all; those of length
    three end with a reduction), with its outputs on ``inputs``; programs that fail on one are skipped."""
    yield (), inputs
    first = [(s, o) for s in STEPS if (o := _step(s, inputs)) is not None]
    yield from (((s,), o) for s, o in first)
    second = []
    for s1, o1 in first:
        for s2 in STEPS:
            if (o2 := _step(s2, o1)) is not None:
                second.append(((s1, s2), o2))
                yield (s1, s2), o2
    reductions = [s for s in STEPS if s[0] in REDUCTIONS]
    for program, o2 in second:
        for s3 in reductions:
            if (o3 := _step(s3, o2)) is not None:
                yield program + (s3,), o3


def _first_miss(outs: tuple[IntList, ...], wanted: tuple[IntList, ...]) -> int | None:
    return next((i for i, (o, y) in enumerate(zip(outs, wanted)) if o != y), None)


def _wrong(program: Program, outs: tuple[IntList, ...], wanted: tuple[IntList, ...]) -> Branch:
    """The branch of a program that gets some example wrong: checks up to it, refuted by it."""
    bad = _first_miss(outs, wanted)
    return Branch(text=dsl.show(program),
                  checks=tuple(f"example {i + 1} gives {show_list(outs[i])}" for i in range(bad)),
                  refutation=f"example {bad + 1} gives {show_list(outs[bad])} not {show_list(wanted[bad])}")


def search(puzzle: Puzzle, answer: str) -> tuple[Branch, list[Branch]]:
    """The first program that fits every example and gives ``answer`` on the test, and wrong ones: programs
    of one or two primitives, one per behaviour on the examples, that get an example wrong, the most
    plausible first (they fail late, and on the failing example nearly match)."""
    inputs = tuple(x for x, _ in puzzle.train) + (puzzle.test,)
    wanted = tuple(y for _, y in puzzle.train)
    right: Branch | None = None
    seen: set[tuple[IntList, ...]] = set()
    wrongs: list[tuple[tuple, int, Program, tuple[IntList, ...]]] = []
    for program, outs in runs(inputs):
        if right is not None and len(program) > 2:
            break
        shown = outs[:-1]
        if right is None and shown == wanted and show_list(outs[-1]) == answer:
            checks = tuple(f"example {i} gives {show_list(y)}" for i, y in enumerate(wanted, 1))
            right = Branch(dsl.show(program), checks, answer=answer)
        if len(program) <= 2 and shown not in seen:  # one wrong program per behaviour
            seen.add(shown)
            bad = _first_miss(shown, wanted)
            if bad is not None:
                near = dsl.similarity(shown[bad], wanted[bad]) + (len(shown[bad]) == len(wanted[bad]))
                wrongs.append(((-bad, -near, len(program)), len(wrongs), program, shown))
    if right is None:
        raise NotCovered("no program of the search maps every example and the test")
    return right, [_wrong(p, o, wanted) for *_, p, o in sorted(wrongs)[:MAX_WRONG]]


# -- the task -----------------------------------------------------------------------------------------------

class _SeededGlobalRandom:
    """A reasoning-gym dataset whose items are built with Python's global ``random`` seeded from ``seed``
    (and restored after): reasoning-gym's family 14 draws from it."""

    def __init__(self, dataset: Any, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __getitem__(self, idx: int) -> dict:
        state = random.getstate()
        random.seed(f"list_functions/{self.seed}/{idx}")
        try:
            return self.dataset[idx]
        finally:
            random.setstate(state)

    def score_answer(self, answer: Any, entry: dict) -> float:
        return self.dataset.score_answer(answer, entry)


_CLAIM = re.compile(r"example (\d+) gives (\[[-0-9, ]*\])(?: not (\[[-0-9, ]*\]))?")


def _claimed(text: str) -> IntList | None:
    """A list as :func:`show_list` writes it; None for any other spelling."""
    try:
        xs = tuple(json.loads(text))
    except ValueError:
        return None
    return xs if show_list(xs) == text else None


class ListFunctionsTask(GymTask):
    name = "list_functions"
    gym_name = "list_functions"

    def _dataset(self, seed: int):
        return _SeededGlobalRandom(super()._dataset(seed), seed)

    def render(self, entry: dict) -> str:
        p = Puzzle.of(entry)
        return " | ".join([*(f"in {show_list(x)} out {show_list(y)}" for x, y in p.train),
                           f"test {show_list(p.test)}"])

    def branches(self, entry: dict, rng: random.Random) -> tuple[Branch, list[Branch]]:
        return search(Puzzle.of(entry), str(entry["answer"]))

    def check(self, entry: dict, branch: str, claim: str, refutes: bool) -> bool | None:
        program, m = parse_program(branch), _CLAIM.fullmatch(claim)
        if program is None or m is None:
            return False
        p = Puzzle.of(entry)
        i = int(m.group(1))
        got, other = _claimed(m.group(2)), None if m.group(3) is None else _claimed(m.group(3))
        if not 1 <= i <= len(p.train) or got is None or (m.group(3) is not None and other is None):
            return False
        x, y = p.train[i - 1]
        if _outputs(program, [x]) != (got,):
            return False
        if other is None:
            return not refutes
        return other == y != got

    @classmethod
    def words(cls) -> tuple[str, ...]:
        return tuple(sorted(FUNCTIONS)) + ("id", "in", "out", "test", "example", "gives", "not")
