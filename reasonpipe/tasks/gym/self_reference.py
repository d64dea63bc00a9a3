"""Self-referential statements (reasoning-gym ``self_reference``): how many truth assignments are consistent?

The problem: seven statements about how many of them are true or false (``At least 3 ... are true``, ``Either
Statement 3 or Statement 4 is true, but not both``, ``The number of true statements is a prime number`` ...);
the answer is the number of truth assignments under which every statement is true exactly when it says
something true. Our solver enumerates all ``2^n`` assignments (as reasoning-gym does).

Problem line::

    s1 atleast 3 true ; s2 atmost 2 false ; s3 exactly 0 true ; s4 exactly 3 false ; s5 xor s3 s4 ;
    s6 prime true ; s7 composite false ; ask solutions

A branch is a candidate solution set, its assignments written as bit strings (statement 1 first), sorted::

    Try: count 2 : 0110100 1100100        (``count 0 : none`` when empty)

Claims (``T`` a number of true statements, ``X`` an assignment)::

    if 3 true then 1010110 has 4 true     X is what the statements say when exactly T are true, and has N ones
    if 2 true then 1100100 consistent     ... and has exactly T ones: X is consistent
    consistent 0110100                    X is consistent
    statement 4 false under 1010110       statement 4's claim is false under X (refutes a branch listing X
                                          with statement 4 true)
    consistent 0110100 missing            X is consistent and the branch does not list it (refutes it)

The right branch is checked by one ``if`` line for each T = 0..n: X is consistent exactly when it is
what the statements say when T of them are true and has T ones, so these lines count the solutions.
Wrong branches: the right set plus an inconsistent assignment (what the statements say for a T that does
not reproduce itself, or a solution with one bit flipped), the right set less one solution, or one
solution replaced by a one-bit flip of it: 18 to 79 distinct wrong branches (5,000 seeds).

Does NOT cover: statements of other shapes than reasoning-gym 0.1.25 writes (the problem then raises
NotCovered), nor ``xor`` statements about other ``xor`` statements.

Example::

    reasonpipe gen self_reference --n 3 --searcher kbacktrack --k 2 --out /tmp/s.jsonl
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

from reasonpipe.tasks.gym.base import Branch, GymTask, NotCovered

_COUNT = re.compile(r"(At least|At most|Exactly) (\d+) of these (\d+) statements are (true|false)\.")
_XOR = re.compile(r"Either Statement (\d+) or Statement (\d+) is true, but not both\.")
_NUMBER = re.compile(r"The number of (true|false) statements is a (prime|composite) number\.")
_KIND = {"At least": "atleast", "At most": "atmost", "Exactly": "exactly"}

_BITS = r"[01]{1,16}"
_CLAIMS = {
    "if": re.compile(rf"if (\d{{1,2}}) true then ({_BITS}) (?:has (\d{{1,2}}) true|(consistent))"),
    "consistent": re.compile(rf"consistent ({_BITS})"),
    "missing": re.compile(rf"consistent ({_BITS}) missing"),
    "under": re.compile(rf"statement (\d{{1,2}}) (true|false) under ({_BITS})"),
}
_BRANCH = re.compile(rf"count (\d{{1,3}}) : (none|{_BITS}(?: {_BITS})*)")


@dataclass(frozen=True)
class Statement:
    """One statement: ``kind`` atleast | atmost | exactly (``number`` of ``polarity`` statements),
    prime | composite (the number of ``polarity`` statements is), or xor (of statements ``refs``, 1-based)."""

    kind: str
    polarity: str = ""
    number: int = 0
    refs: tuple[int, ...] = ()

    def words(self) -> str:
        if self.kind == "xor":
            return "xor " + " ".join(f"s{r}" for r in self.refs)
        if self.kind in ("prime", "composite"):
            return f"{self.kind} {self.polarity}"
        return f"{self.kind} {self.number} {self.polarity}"


@dataclass(frozen=True)
class Puzzle:
    statements: tuple[Statement, ...]

    @property
    def n(self) -> int:
        return len(self.statements)


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n ** 0.5) + 1))


def _statement(text: str, n: int) -> Statement:
    m = _COUNT.fullmatch(text)
    if m and int(m.group(3)) == n:
        return Statement(_KIND[m.group(1)], m.group(4), int(m.group(2)))
    m = _XOR.fullmatch(text)
    if m:
        return Statement("xor", refs=(int(m.group(1)), int(m.group(2))))
    m = _NUMBER.fullmatch(text)
    if m:
        return Statement(m.group(2), m.group(1))
    raise NotCovered(f"self_reference: a statement this task does not read: {text!r}")


@lru_cache(maxsize=1024)
def parse_question(question: str) -> Puzzle:
    """The statements of a reasoning-gym question; NotCovered when one has an unknown shape."""
    found = re.findall(r"Statement (\d+): '([^'\n]*)'", question)
    n = len(found)
    if n == 0 or [int(i) for i, _ in found] != list(range(1, n + 1)):
        raise NotCovered("self_reference: no numbered statements in the question")
    statements = tuple(_statement(text, n) for _, text in found)
    for s in statements:
        if s.kind == "xor" and any(not 1 <= r <= n or statements[r - 1].kind == "xor" for r in s.refs):
            raise NotCovered("self_reference: an xor statement about a statement this task does not read")
    return Puzzle(statements)


def _claim_holds(s: Statement, n: int, trues: int, truth: tuple[bool, ...]) -> bool:
    """Is the claim of ``s`` true when ``trues`` of the ``n`` statements are true and ``truth`` gives the
    xor's operands?"""
    count = trues if s.polarity == "true" else n - trues
    if s.kind == "atleast":
        return count >= s.number
    if s.kind == "atmost":
        return count <= s.number
    if s.kind == "exactly":
        return count == s.number
    if s.kind == "prime":
        return is_prime(count)
    if s.kind == "composite":
        return count > 1 and not is_prime(count)
    return sum(truth[r - 1] for r in s.refs) == 1  # xor


def statement_holds(p: Puzzle, j: int, truth: tuple[bool, ...]) -> bool:
    """Is statement ``j`` (1-based) true as a claim under the assignment ``truth``?"""
    return _claim_holds(p.statements[j - 1], p.n, sum(truth), truth)


def consistent(p: Puzzle, truth: tuple[bool, ...]) -> bool:
    return len(truth) == p.n and all(statement_holds(p, j, truth) == truth[j - 1] for j in range(1, p.n + 1))


def forced(p: Puzzle, trues: int) -> tuple[bool, ...]:
    """What the statements say when exactly ``trues`` of them are true (xor read off the others)."""
    plain = tuple(s.kind != "xor" and _claim_holds(s, p.n, trues, ()) for s in p.statements)
    return tuple(_claim_holds(s, p.n, trues, plain) if s.kind == "xor" else plain[i]
                 for i, s in enumerate(p.statements))


def solutions(p: Puzzle) -> list[tuple[bool, ...]]:
    """Every consistent assignment (all 2^n enumerated), sorted by bit string."""
    out = []
    for i in range(2 ** p.n):
        truth = tuple(bool((i >> j) & 1) for j in range(p.n))
        if consistent(p, truth):
            out.append(truth)
    return sorted(out, key=bits)


def bits(truth: tuple[bool, ...]) -> str:
    return "".join("1" if t else "0" for t in truth)


def _truth(text: str) -> tuple[bool, ...]:
    return tuple(c == "1" for c in text)


def branch_text(assignments: list[tuple[bool, ...]]) -> str:
    listed = sorted({bits(t) for t in assignments})
    return f"count {len(listed)} : " + (" ".join(listed) if listed else "none")


def parse_branch(text: str, n: int) -> frozenset[str] | None:
    """The assignments a branch lists; None unless it is ``count N : ...`` with N distinct n-bit strings."""
    m = _BRANCH.fullmatch(text)
    if not m:
        return None
    listed = [] if m.group(2) == "none" else m.group(2).split(" ")
    if int(m.group(1)) != len(listed) or len(set(listed)) != len(listed) or any(len(x) != n for x in listed):
        return None
    if listed != sorted(listed):
        return None
    return frozenset(listed)


def refutation(p: Puzzle, truth: tuple[bool, ...]) -> str:
    """The first statement whose truth value the (inconsistent) assignment gets wrong."""
    for j in range(1, p.n + 1):
        said = statement_holds(p, j, truth)
        if said != truth[j - 1]:
            return f"statement {j} {'true' if said else 'false'} under {bits(truth)}"
    raise ValueError("a consistent assignment has no refutation")


def if_claim(p: Puzzle, trues: int) -> str:
    x = forced(p, trues)
    tail = "consistent" if sum(x) == trues else f"has {sum(x)} true"
    return f"if {trues} true then {bits(x)} {tail}"


class SelfReferenceTask(GymTask):
    name = "self_reference"
    gym_name = "self_reference"

    def render(self, entry: dict) -> str:
        p = parse_question(entry["question"])
        parts = [f"s{i} {s.words()}" for i, s in enumerate(p.statements, 1)]
        return " ; ".join(parts + ["ask solutions"])

    def branches(self, entry: dict, rng: random.Random) -> tuple[Branch, list[Branch]]:
        p = parse_question(entry["question"])
        sols = solutions(p)
        if sorted(forced(p, t) for t in range(p.n + 1) if sum(forced(p, t)) == t) != sorted(sols):
            raise AssertionError("self_reference: the per-count derivation disagrees with the enumeration")
        right = Branch(branch_text(sols), tuple(if_claim(p, t) for t in range(p.n + 1)), answer=str(len(sols)))
        return right, self._wrongs(p, sols)

    def _wrongs(self, p: Puzzle, sols: list[tuple[bool, ...]]) -> list[Branch]:
        out: dict[str, Branch] = {}

        def add(listed: list[tuple[bool, ...]], reject: str) -> None:
            checks = tuple(f"consistent {bits(t)}" for t in sorted(listed, key=bits) if t in sols)
            out.setdefault(branch_text(listed), Branch(branch_text(listed), checks, reject))

        def flips(t: tuple[bool, ...]) -> list[tuple[bool, ...]]:
            return [t[:i] + (not t[i],) + t[i + 1:] for i in range(p.n)]

        said = [forced(p, t) for t in range(p.n + 1)]
        for x in said + [y for t in sols for y in flips(t)]:  # the right set plus an inconsistent assignment
            if x not in sols:
                add(sols + [x], refutation(p, x))
        for t in sols:  # the right set less one solution
            add([s for s in sols if s != t], f"consistent {bits(t)} missing")
        for t in sols:  # one solution replaced by a one-bit flip of it
            for x in flips(t):
                if x not in sols:
                    add([s for s in sols if s != t] + [x], refutation(p, x))
        if not sols:  # one assignment near what the statements say
            for x in [y for t in said for y in flips(t)]:
                add([x], refutation(p, x))
        return list(out.values())

    def check(self, entry: dict, branch: str, claim: str, refutes: bool) -> bool | None:
        p = parse_question(entry["question"])
        kind, m = next(((k, m) for k, rx in _CLAIMS.items() if (m := rx.fullmatch(claim))), (None, None))
        if kind is None:
            return None
        listed = parse_branch(branch, p.n)
        if listed is None:
            return False
        if kind == "if":
            trues, x = int(m.group(1)), m.group(2)
            if trues > p.n or len(x) != p.n or bits(forced(p, trues)) != x:
                return False
            ok = x.count("1") == trues if m.group(4) else x.count("1") == int(m.group(3))
            return ok and not refutes
        if kind == "consistent":
            x = m.group(1)
            return len(x) == p.n and consistent(p, _truth(x)) and not refutes
        if kind == "missing":
            x = m.group(1)
            return len(x) == p.n and consistent(p, _truth(x)) and x not in listed
        j, said, x = int(m.group(1)), m.group(2) == "true", m.group(3)
        if not 1 <= j <= p.n or len(x) != p.n:
            return False
        truth = _truth(x)
        holds = statement_holds(p, j, truth) == said
        return holds and (not refutes or (x in listed and truth[j - 1] != said))

    @classmethod
    def words(cls) -> tuple[str, ...]:
        return ("s", "atleast", "atmost", "exactly", "true", "false", "xor", "prime", "composite", "ask",
                "solutions", "count", "none", "if", "then", "has", "consistent", "statement", "under", "missing")
