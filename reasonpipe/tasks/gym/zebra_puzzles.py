"""Zebra puzzles (reasoning-gym ``zebra_puzzles``): who lives in the asked house, by a full solution grid.

reasoning-gym's entry keeps only the question text, so we read the puzzle back from it: the attributes and
their values (the ``- Each person has a unique name: arnold, bob, ...`` lines, matched to reasoning-gym's
own word lists in ``logic/contrib/logic_puzzle/literals.py``), the numbered clues (each sentence matched
against every clue reasoning-gym's clue classes can write over those values) and the asked cell; then
solve it ourselves (constraint propagation over the houses of each value, then guesses). Reader and
solver agree with reasoning-gym's answer on 1,000 of 1,000 default (4 x 4) seeds, 1000..1999.

Problem line (values qualified by their attribute in clues, ``cN`` the clue numbered N in the question)::

    houses 4 ; name arnold bob carol alice ; phonemodel huawei_p50 oneplus_9 ... ;
    c1 name.carol at 3 ; c2 children.timothy same name.alice ; c3 phonemodel.oneplus_9 directleft ... ;
    ask name at 1

Clue words: ``at`` / ``notat`` (a house), ``same`` (same house), ``directleft`` (the house just left of),
``beside``, ``leftof`` / ``rightof`` (somewhere left / right of), ``onebetween`` / ``twobetween``.

A branch is a full grid, one row per attribute in the problem's order, each listing the values of houses
1..n::

    Try: name bob carol arnold alice ; phonemodel ... ; children ... ; nationality ...

Claims: ``clue 3 holds`` / ``clue 3 fails`` (clue 3 evaluated on the grid; a grid that is not one
permutation of each attribute's values makes every claim false). The right branch is the unique solution,
checked clue by clue; a wrong branch is the solution with two houses swapped in one attribute row
(n(n-1)/2 per attribute: 24 at the default 4 houses x 4 attributes), checked clue by clue up to the first
clue it breaks, which refutes it (``Reject: clue 3 fails``). The answer is the asked value (``bob``).

Does NOT cover: question text that reasoning-gym 0.1.25 does not write (an unknown attribute line or clue
sentence, or one that reads as two different clues, raises NotCovered and the generator draws again).
Any size reasoning-gym allows (2..7 houses and attributes) is read and solved: about 20 ms at 4 x 4,
0.25 s at 7 x 7 (reasoning-gym itself takes 0.15 s and 14 s to generate those).

Example::

    reasonpipe gen zebra_puzzles --n 3 --searcher kbacktrack --k 2 --out /tmp/z.jsonl
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

from reasoning_gym.logic.contrib.logic_puzzle import clues as rg_clues
from reasoning_gym.logic.contrib.logic_puzzle import literals as rg_literals

from reasonpipe.tasks.gym.base import Branch, GymTask, NotCovered

# the attribute classes reasoning-gym's generate_puzzle draws from (Name always, then M - 1 of the others)
ATTRIBUTES: tuple[type, ...] = (rg_literals.Name, rg_literals.Color, rg_literals.Nationality, rg_literals.Animal,
                                rg_literals.Drink, rg_literals.Cigar, rg_literals.Food, rg_literals.Flower,
                                rg_literals.PhoneModel, rg_literals.Children, rg_literals.Smoothie)
# reasoning-gym's clue class -> our word; unary clues (a value and a house) first
UNARY = {rg_clues.found_at: "at", rg_clues.not_at: "notat"}
BINARY = {rg_clues.same_house: "same", rg_clues.consecutive: "directleft", rg_clues.beside: "beside",
          rg_clues.left_of: "leftof", rg_clues.right_of: "rightof", rg_clues.one_between: "onebetween",
          rg_clues.two_between: "twobetween"}
KINDS = tuple(UNARY.values()) + tuple(BINARY.values())
# a binary clue between the houses p (its first value) and q (its second)
RELATIONS = {"same": lambda p, q: p == q, "directleft": lambda p, q: p + 1 == q,
             "beside": lambda p, q: abs(p - q) == 1, "leftof": lambda p, q: p < q, "rightof": lambda p, q: p > q,
             "onebetween": lambda p, q: abs(p - q) == 2, "twobetween": lambda p, q: abs(p - q) == 3}
_CLAIM = re.compile(r"clue (\d{1,3}) (holds|fails)")

Value = tuple[str, str]  # (attribute label, value name), e.g. ("phonemodel", "huawei_p50")
Grid = tuple[tuple[str, ...], ...]  # one row per attribute: the values of houses 1..n


@dataclass(frozen=True)
class Clue:
    """``kind`` is one of :data:`KINDS`; ``house`` for at / notat, ``other`` for the binary kinds."""

    kind: str
    value: Value
    other: Value | None = None
    house: int = 0

    def words(self) -> str:
        first = f"{self.value[0]}.{self.value[1]}"
        if self.other is None:
            return f"{first} {self.kind} {self.house}"
        return f"{first} {self.kind} {self.other[0]}.{self.other[1]}"

    def holds(self, where: dict[Value, int]) -> bool:
        """Evaluate on a map value -> house (every value this clue names must be in it)."""
        if self.other is None:
            return self.allows(where[self.value])
        return RELATIONS[self.kind](where[self.value], where[self.other])

    def allows(self, house: int) -> bool:
        """A unary clue: may its value be in ``house``?"""
        return house == self.house if self.kind == "at" else house != self.house


@dataclass(frozen=True)
class Puzzle:
    houses: int
    attributes: tuple[tuple[str, tuple[str, ...]], ...]  # (label, values in the question's order)
    clues: tuple[Clue, ...]  # clue i + 1 of the question
    ask: tuple[str, int]  # (attribute label, house)

    def row(self, attr: str) -> int:
        return [a for a, _ in self.attributes].index(attr)


# -- reading the question ---------------------------------------------------------------------------------

def label(cls: type) -> str:
    return cls.__name__.lower()


def _heading(cls: type) -> str:
    return cls.description().split(":")[0]


def _attribute(line: str) -> tuple[type, tuple]:
    heading, _, items = line.partition(": ")
    cls = next((c for c in ATTRIBUTES if _heading(c) == heading), None)
    if cls is None:
        raise NotCovered(f"zebra_puzzles: unknown attribute line {line[:60]!r}")
    members = {m.name.replace("_", " "): m for m in cls}
    try:
        return cls, tuple(members[item] for item in items.split(", "))
    except KeyError:
        raise NotCovered(f"zebra_puzzles: unknown value in {line[:60]!r}") from None


def _sentences(literals: list, houses: tuple[int, ...]) -> dict[str, set[Clue]]:
    """Every clue sentence reasoning-gym can write over these values -> the clues it reads as."""
    def ours(m) -> Value:
        return (label(type(m)), m.name)

    out: dict[str, set[Clue]] = {}
    for m in literals:
        for cls, kind in UNARY.items():
            for h in houses:
                out.setdefault(str(cls(m, h)), set()).add(Clue(kind, ours(m), house=h))
    for m in literals:
        for n in literals:
            if m is n:
                continue
            for cls, kind in BINARY.items():
                out.setdefault(str(cls(m, n, houses)), set()).add(Clue(kind, ours(m), ours(n)))
    return out


@lru_cache(maxsize=512)
def parse_question(question: str) -> Puzzle:
    """The puzzle a reasoning-gym question states; NotCovered for text reasoning-gym does not write."""
    m = re.search(r"There are (\d+) houses", question)
    ask = re.search(r"What is (\w+) of the person who lives in House (\d+)\?", question)
    if not m or not ask:
        raise NotCovered("zebra_puzzles: no house count or no question")
    houses = int(m.group(1))
    attrs = [_attribute(line[3:]) for line in question.splitlines() if line.startswith(" - ")]
    if not attrs or any(len(values) != houses for _, values in attrs):
        raise NotCovered("zebra_puzzles: attribute lines do not match the house count")
    sentences = _sentences([v for _, values in attrs for v in values], tuple(range(1, houses + 1)))
    numbered = re.findall(r"^(\d+)\. (.*)$", question, flags=re.M)
    if [int(i) for i, _ in numbered] != list(range(1, len(numbered) + 1)):
        raise NotCovered("zebra_puzzles: clues are not numbered 1..n")
    clues = []
    for _, text in numbered:
        read = sentences.get(text, set())
        if len(read) != 1:
            raise NotCovered(f"zebra_puzzles: clue {text!r} reads as {len(read)} clues")
        clues.append(next(iter(read)))
    asked = ask.group(1).lower()
    attributes = tuple((label(cls), tuple(v.name for v in values)) for cls, values in attrs)
    if asked not in [a for a, _ in attributes] or not 1 <= int(ask.group(2)) <= houses:
        raise NotCovered("zebra_puzzles: the question asks for an unknown attribute or house")
    return Puzzle(houses, attributes, tuple(clues), (asked, int(ask.group(2))))


# -- solving ----------------------------------------------------------------------------------------------

def positions(p: Puzzle, grid: Grid) -> dict[Value, int]:
    return {(a, v): h for (a, _), row in zip(p.attributes, grid) for h, v in enumerate(row, 1)}


def _propagate(p: Puzzle, dom: dict[Value, int]) -> bool:
    """Narrow the house sets (bit masks) to a fixpoint: unary clues, each binary clue both ways, one house
    per value and one value per house in each attribute. False when some value has no house left."""
    houses = range(1, p.houses + 1)
    changed = True
    while changed:
        changed = False

        def narrow(v: Value, mask: int) -> None:
            nonlocal changed
            if dom[v] & mask != dom[v]:
                dom[v] &= mask
                changed = True

        for c in p.clues:
            if c.other is None:
                narrow(c.value, sum(1 << h for h in houses if c.allows(h)))
                continue
            a, b, rel = dom[c.value], dom[c.other], RELATIONS[c.kind]
            narrow(c.value, sum(1 << h for h in houses if a >> h & 1 and any(b >> g & 1 and rel(h, g) for g in houses)))
            narrow(c.other, sum(1 << g for g in houses if b >> g & 1 and any(a >> h & 1 and rel(h, g) for h in houses)))
        for attr, values in p.attributes:
            vs = [(attr, v) for v in values]
            for v in vs:
                if dom[v] & (dom[v] - 1) == 0:  # one house (or none): no other value of the attribute has it
                    for w in vs:
                        if w != v:
                            narrow(w, ~dom[v])
            for h in houses:
                holders = [v for v in vs if dom[v] >> h & 1]
                if len(holders) == 1:
                    narrow(holders[0], 1 << h)
        if any(d == 0 for d in dom.values()):
            return False
    return True


def solve(p: Puzzle, limit: int = 2) -> list[Grid]:
    """Up to ``limit`` solutions: constraint propagation, then a guess on a value with fewest houses left."""
    full = sum(1 << h for h in range(1, p.houses + 1))
    found: list[Grid] = []

    def go(dom: dict[Value, int]) -> None:
        if len(found) >= limit or not _propagate(p, dom):
            return
        open_ = [v for v, d in dom.items() if d & (d - 1)]
        if not open_:
            where = {v: d.bit_length() - 1 for v, d in dom.items()}
            if all(c.holds(where) for c in p.clues):
                found.append(tuple(tuple(sorted(values, key=lambda v: where[(a, v)])) for a, values in p.attributes))
            return
        v = min(open_, key=lambda v: (bin(dom[v]).count("1"), v))
        for h in range(1, p.houses + 1):
            if dom[v] >> h & 1:
                go({**dom, v: 1 << h})

    go({(a, v): full for a, values in p.attributes for v in values})
    return found


@lru_cache(maxsize=512)
def solution(p: Puzzle) -> Grid:
    found = solve(p)
    if len(found) != 1:
        raise NotCovered(f"zebra_puzzles: {len(found)} solutions, expected one")
    return found[0]


def answer_of(p: Puzzle, grid: Grid) -> str:
    """The asked value, written as reasoning-gym writes its answer (``_`` as a space)."""
    attr, house = p.ask
    return grid[p.row(attr)][house - 1].replace("_", " ")


# -- branches and claims ----------------------------------------------------------------------------------

def grid_text(p: Puzzle, grid: Grid) -> str:
    return " ; ".join(f"{a} {' '.join(row)}" for (a, _), row in zip(p.attributes, grid))


def parse_grid(p: Puzzle, text: str) -> Grid | None:
    """The grid a branch states; None unless each row is its attribute's values in some order."""
    rows = text.split(" ; ")
    if len(rows) != len(p.attributes):
        return None
    grid = []
    for (a, values), row in zip(p.attributes, rows):
        words = row.split(" ")
        if words[0] != a or sorted(words[1:]) != sorted(values):
            return None
        grid.append(tuple(words[1:]))
    return tuple(grid)


def scan(p: Puzzle, grid: Grid) -> tuple[tuple[str, ...], str | None]:
    """Clue by clue: the ``holds`` claims up to the first clue that fails, and that clue's ``fails`` claim."""
    where = positions(p, grid)
    checks = []
    for i, c in enumerate(p.clues, 1):
        if not c.holds(where):
            return tuple(checks), f"clue {i} fails"
        checks.append(f"clue {i} holds")
    return tuple(checks), None


def swaps(grid: Grid) -> list[Grid]:
    """The grid with two houses swapped in one row, every way."""
    out = []
    for r, row in enumerate(grid):
        for i in range(len(row)):
            for j in range(i + 1, len(row)):
                new = list(row)
                new[i], new[j] = new[j], new[i]
                out.append(grid[:r] + (tuple(new),) + grid[r + 1:])
    return out


class ZebraPuzzlesTask(GymTask):
    name = "zebra_puzzles"
    gym_name = "zebra_puzzles"

    def render(self, entry: dict) -> str:
        p = parse_question(entry["question"])
        parts = [f"houses {p.houses}"] + [f"{a} {' '.join(values)}" for a, values in p.attributes]
        parts += [f"c{i} {c.words()}" for i, c in enumerate(p.clues, 1)]
        return " ; ".join(parts + [f"ask {p.ask[0]} at {p.ask[1]}"])

    def branches(self, entry: dict, rng: random.Random) -> tuple[Branch, list[Branch]]:
        p = parse_question(entry["question"])
        grid = solution(p)
        checks, failed = scan(p, grid)
        if failed is not None:
            raise AssertionError("zebra_puzzles: the solver's grid breaks a clue")
        right = Branch(grid_text(p, grid), checks, answer=answer_of(p, grid))
        wrongs = []
        for g in swaps(grid):
            checks, failed = scan(p, g)
            if failed is None:
                raise AssertionError("zebra_puzzles: a second grid meets every clue")
            wrongs.append(Branch(grid_text(p, g), checks, failed))
        return right, wrongs

    def check(self, entry: dict, branch: str, claim: str, refutes: bool) -> bool | None:
        m = _CLAIM.fullmatch(claim)
        if not m:
            return None
        p = parse_question(entry["question"])
        grid = parse_grid(p, branch)
        i = int(m.group(1))
        if grid is None or not 1 <= i <= len(p.clues):
            return False
        fails = not p.clues[i - 1].holds(positions(p, grid))
        return fails if m.group(2) == "fails" else not fails and not refutes

    @classmethod
    def words(cls) -> tuple[str, ...]:
        values = tuple(m.name for c in ATTRIBUTES for m in c)
        return ("houses", "ask", "at", "c", "clue", "holds", "fails") + KINDS + \
            tuple(label(c) for c in ATTRIBUTES) + values
