"""CountDown (Stream of Search rules): combine the numbers with + - * / to reach the target.

Rules: each number is used exactly once; ``+`` and ``*`` always; ``a-b`` only when ``a >= b`` (no
negatives); ``a/b`` only when ``b`` divides ``a`` exactly (no fractions). The generator draws numbers in
``1..max_number`` and, when ``solvable`` is set, redraws until an exhaustive search finds a solution
(Stream of Search's procedure). Splits as in Stream of Search: ``test_target`` problems use the 10% of
targets held out from training; ``test_solution`` problems use training targets but a canonical solution
whose hash falls in the held-out 10%. Both are decided per problem, so any worker makes the same call.

Example::

    reasonpipe gen countdown --n 5 --searcher direct --seed 0 --out /tmp/cd.jsonl
"""

from __future__ import annotations

import ast
import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.seeds import stream
from reasonpipe.traces import countdown as grammar_module
from reasonpipe.traces.countdown import DeadEnd, Exhausted, Explore, Generate, Goal, Move, Op, State
from reasonpipe.traces.tokens import vocabulary_from

MAX_VALUE = 10**15  # numbers and targets accepted from users; generated ones are far smaller
SPLITS = ("train", "test_target", "test_solution")


@dataclass(frozen=True)
class CountdownProblem:
    nums: tuple[int, ...]
    target: int


@dataclass
class CountdownConfig:
    """Generator settings (see module docstring)."""

    numbers: int = 4
    target_min: int = 10
    target_max: int = 100
    max_number: int | None = None  # default target_max - 1, as Stream of Search
    solvable: bool = True
    split: str = "train"
    split_seed: int = 0
    heldout_fraction: float = 0.1

    def validate(self) -> None:
        if not 2 <= self.numbers <= 8:
            raise InputError(f"must be 2..8, got {self.numbers}", field="numbers")
        if not 0 <= self.target_min <= self.target_max < MAX_VALUE:
            raise InputError(f"need 0 <= target_min <= target_max, got {self.target_min}..{self.target_max}",
                             field="target_max")
        if self.split not in SPLITS:
            raise InputError(f"unknown split {self.split!r} (known: {', '.join(SPLITS)})", field="split")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise InputError(f"must be in (0, 1), got {self.heldout_fraction}", field="heldout_fraction")
        if self.split == "test_solution" and not self.solvable:
            raise InputError("the held-out-solution split needs solvable problems", field="split")
        if (self.max_number if self.max_number is not None else self.target_max - 1) < 1:
            raise InputError("must be at least 1", field="max_number")


# -- rules ------------------------------------------------------------------------------------------
# Each rule is written once, here, and the searchers, the verifier, evolution and the generator use it:
# which operations are legal (apply, and legal_operations for the moves a search tries), replaying an
# operation on the numbers (numbers_after), and the children of a node (successors, replace_pair).
# One deliberate copy: solvable()'s inner loop writes legal_operations' results out, for speed.

Nums = tuple[int, ...]


def apply(a: int, sym: str, b: int) -> int | None:
    """The value of ``a sym b`` under the rules, or None when the rules forbid it: ``+`` and ``*`` always,
    ``a-b`` only when ``a >= b`` (no negatives), ``a/b`` only when ``b`` divides ``a`` exactly."""
    if sym == "+":
        return a + b
    if sym == "*":
        return a * b
    if sym == "-":
        return a - b if a >= b else None
    if sym == "/":
        return a // b if b != 0 and a % b == 0 else None
    return None


def legal_operations(a: int, b: int) -> list[tuple[int, str, int, int]]:
    """The legal moves on the pair ``a``, ``b``: every ``(left, symbol, right, result)``, in Stream of
    Search's order ``a+b``, ``a*b``, ``hi-lo``, ``hi/lo`` (``hi``, ``lo``: the larger and the smaller number),
    each kept when :func:`apply` allows it. So the subtraction is always there and the division when it is
    exact; ``lo/hi`` is never tried, even ``0/hi``, which the rules allow.

    The hot path of every search: the three moves :func:`apply` always allows here are written out, and
    only the division asks it (``test_legal_operations_are_the_rule`` holds this to the plain definition).
    """
    lo, hi = (a, b) if a <= b else (b, a)
    out = [(a, "+", b, a + b), (a, "*", b, a * b), (hi, "-", lo, hi - lo)]
    quotient = apply(hi, "/", lo)
    if quotient is not None:
        out.append((hi, "/", lo, quotient))
    return out


def combine(a: int, b: int) -> list[tuple[int, Op]]:
    """:func:`legal_operations` as ``(result, Op)`` pairs."""
    return [(r, Op(x, sym, y, r)) for x, sym, y, r in legal_operations(a, b)]


def numbers_after(nums: Sequence[int], op: Op) -> list[int] | None:
    """Replay one operation: ``nums`` with one ``op.a`` and one ``op.b`` taken out and ``op.result``
    appended, or None when the operands are not both there. The arithmetic is not checked (see :func:`apply`).
    """
    pool = list(nums)
    try:
        pool.remove(op.a)
        pool.remove(op.b)
    except ValueError:
        return None
    pool.append(op.result)
    return pool


def replace_pair(nums: Nums, i: int, j: int, result: int) -> Nums:
    """A child's numbers: those at positions ``i < j`` taken out, the others in order, ``result`` last."""
    return nums[:i] + nums[i + 1:j] + nums[j + 1:] + (result,)


def successors(nums: Nums) -> Iterator[tuple[Nums, Op]]:
    """Every child of a node (numbers, operation), in Stream of Search's order: pairs ``i < j``, then
    :func:`legal_operations`; each child's numbers are :func:`replace_pair`'s. Lazy, so a search that
    stops at the first good child builds no more."""
    n = len(nums)
    for i in range(n):
        for j in range(i + 1, n):
            for x, sym, y, r in legal_operations(nums[i], nums[j]):
                yield replace_pair(nums, i, j, r), Op(x, sym, y, r)


@lru_cache(maxsize=None)
def _splits(n: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """For every bitmask over ``n`` numbers, its splits into two non-empty parts (lowest bit on the left)."""
    table: list[tuple[tuple[int, int], ...]] = [()] * (1 << n)
    for mask in range(1, 1 << n):
        low = mask & -mask
        parts = []
        sub = (mask - 1) & mask
        while sub:
            if sub & low:
                parts.append((sub, mask ^ sub))
            sub = (sub - 1) & mask
        table[mask] = tuple(parts)
    return tuple(table)


def solvable(nums: tuple[int, ...] | list[int], target: int) -> bool:
    """Can the numbers reach the target? Exact, and about 10x faster than searching for a solution.

    Every solution is a binary expression tree, so it splits the numbers into two groups whose reachable
    values combine to the target. Reachable sets of the proper subsets are built on demand (bitmask
    memo); at the top only the values ``y`` that could pair with each ``x`` to give the target are looked
    up, instead of combining the two largest sets.
    """
    n = len(nums)
    if n == 1:
        return nums[0] == target
    splits = _splits(n)
    memo: dict[int, Any] = {1 << i: (nums[i],) for i in range(n)}

    def reach(mask: int) -> set[int]:
        r: set[int] = set()
        add = r.add
        for sub, other in splits[mask]:
            left = memo.get(sub) or reach(sub)
            right = memo.get(other) or reach(other)
            for x in left:
                for y in right:
                    # legal_operations(x, y)'s results, written out: the generator's hot loop, 2.5x faster
                    # than calling it (test_solve_matches_exhaustive_reference_including_zeros holds
                    # it to the rule)
                    lo, hi = (x, y) if x <= y else (y, x)
                    add(x + y)
                    add(x * y)
                    add(hi - lo)
                    if lo and hi % lo == 0:
                        add(hi // lo)
        memo[mask] = r
        return r

    t = target
    for sub, other in splits[(1 << n) - 1]:
        a = memo.get(sub) or reach(sub)
        b = memo.get(other) or reach(other)
        if len(a) > len(b):
            a, b = b, a
        for x in a:
            if x == 0 and t == 0:
                return True
            # every y with t among the results of (x, y): x+y, hi-lo either way, y/x and x/y solved for y
            for y in (t - x, x - t, x + t, x * t):
                if y in b and _reaches(x, y, t):
                    return True
            if x and t % x == 0 and t // x in b:  # x*y
                return True
            if t and x % t == 0 and x // t in b and _reaches(x, x // t, t):
                return True
    return False


def _reaches(x: int, y: int, t: int) -> bool:
    return any(r == t for _, _, _, r in legal_operations(x, y))


def solve(nums: tuple[int, ...], target: int) -> list[Op] | None:
    """First solution in Stream of Search's exhaustive order (pairs i<j, then +, *, -, /), or None.

    The same answer as a plain depth-first search, but each branch is entered only if :func:`solvable`
    says it can succeed, so the search walks straight down the first solution.
    """
    if not solvable(nums, target):
        return None
    ops: list[Op] = []
    cur = tuple(nums)
    while len(cur) > 1:
        cur, op = next((new, op) for new, op in successors(cur) if solvable(new, target))
        ops.append(op)
    return ops


def expression_to_ops(expr: str) -> list[Op] | None:
    """An arithmetic expression (reasoning-gym's CountDown answers, ``94*4 - 61 - 6``) as our operations,
    innermost first, each written larger-operand-first where the order does not matter; None when it is not
    a plain integer expression over + - * / or breaks our rules (a negative or fractional intermediate)."""
    import ast

    ops: list[Op] = []
    symbols = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}

    def walk(node: ast.AST) -> int | None:
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 0:
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in symbols:
            a, b = walk(node.left), walk(node.right)
            if a is None or b is None:
                return None
            sym = symbols[type(node.op)]
            value = apply(a, sym, b)
            if value is None:
                return None
            if sym in "+*" and a < b:
                a, b = b, a
            ops.append(Op(a, sym, b, value))
            return value
        return None

    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None
    return ops if walk(tree.body) is not None else None


def ops_to_expression(ops: list[Op]) -> str:
    """Our operations as one arithmetic expression (each intermediate result replaced by its expression)."""
    exprs: dict[int, list[str]] = {}
    for op in ops:
        a = exprs[op.a].pop() if exprs.get(op.a) else str(op.a)
        b = exprs[op.b].pop() if exprs.get(op.b) else str(op.b)
        exprs.setdefault(op.result, []).append(f"({a} {op.sym} {b})")
    last = ops[-1].result
    return exprs[last][-1][1:-1] if exprs.get(last) else str(last)


def max_tree_nodes(n: int) -> int:
    """Stream of Search's naive node count for ``n`` numbers (1152 for 4), used for its rating."""
    total = 1
    for k in range(n, 1, -1):
        total *= k * (k - 1) // 2 * 4
    return total


# -- the task ---------------------------------------------------------------------------------------

class CountdownTask:
    """Task contract (DESIGN.md): generate / prompt / parse_answer / score / vocabulary."""

    name = "countdown"
    grammar = grammar_module

    def __init__(self, config: CountdownConfig | None = None) -> None:
        self.config = config or CountdownConfig()
        self.config.validate()
        c = self.config
        self.max_number = c.max_number if c.max_number is not None else c.target_max - 1
        targets = list(range(c.target_min, c.target_max + 1))
        stream("countdown-targets", c.split_seed).shuffle(targets)
        n_held = max(1, int(len(targets) * c.heldout_fraction)) if len(targets) > 1 else 0
        self.heldout_targets = sorted(targets[:n_held])
        self.train_targets = sorted(targets[n_held:])
        self._targets = self.heldout_targets if c.split == "test_target" else self.train_targets

    # splits
    def solution_heldout(self, solution: list[Op]) -> bool:
        """Is this canonical solution in the held-out-solution 10%? (a stable hash of its text)"""
        key = f"{self.config.split_seed}|" + ",".join(map(str, solution))
        return zlib.crc32(key.encode()) % 10_000 < self.config.heldout_fraction * 10_000

    def generate(self, rng: random.Random) -> CountdownProblem:
        c = self.config
        for _ in range(100_000):
            target = rng.choice(self._targets)
            nums = tuple(rng.randint(1, self.max_number) for _ in range(c.numbers))
            if not c.solvable:
                return CountdownProblem(nums, target)
            if not solvable(nums, target):
                continue
            if c.split != "test_target" and self.solution_heldout(solve(nums, target)) != (c.split == "test_solution"):
                continue
            return CountdownProblem(nums, target)
        raise InputError("no solvable problem found in 100000 draws; widen the number or target range",
                         field="numbers")

    def prompt(self, problem: CountdownProblem) -> str:
        """The trace's first line; a model continues from it (Stream of Search)."""
        return State(problem.target, problem.nums, ()).to_line() + "\n"

    def parse_answer(self, text: str) -> list[Op] | None:
        """The operations that reach the first ``Goal Reached``: the last state's ops + the last explored op."""
        steps = grammar_module.parse(text) if isinstance(text, str) else []
        last_state: State | None = None
        last_explore: Explore | None = None
        for step in steps:
            t = type(step)
            if t is State:
                last_state = step
            elif t is Explore:
                last_explore = step
            elif t is Goal:
                if last_explore is None:
                    return None
                return list(last_state.ops if last_state else ()) + [last_explore.op]
        return None

    def check_solution(self, problem: CountdownProblem, ops: list[Op]) -> bool:
        """Do ``ops`` use every number exactly once, follow the rules, and end at the target?"""
        pool: list[int] | None = list(problem.nums)
        for op in ops:
            if apply(op.a, op.sym, op.b) != op.result:
                return False
            pool = numbers_after(pool, op)
            if pool is None:
                return False
        return pool == [problem.target]

    def score(self, problem: CountdownProblem, text: str) -> float:
        """1.0 when the answer in ``text`` is a correct solution, else 0.0; never raises on model output."""
        ops = self.parse_answer(text)
        return 1.0 if ops is not None and self.check_solution(problem, ops) else 0.0

    # the answer as one equation: the <answer> form of TinyZero and How Much Backtracking
    ANSWER_HINT = "one equation that uses every number exactly once, e.g. <answer> (1 + 2) * 3 </answer>"

    def answer_text(self, text: str) -> str | None:
        """The answer of the trace ``text`` as one equation (``(2 + 4) * 4``), or None when it claims none."""
        ops = self.parse_answer(text)
        if not ops:
            return None
        pending: dict[int, list[str]] = {}  # value -> expressions of earlier results not used yet
        expr = ""
        for op in ops:
            a = pending[op.a].pop() if pending.get(op.a) else str(op.a)
            b = pending[op.b].pop() if pending.get(op.b) else str(op.b)
            expr = f"{a} {op.sym} {b}"
            pending.setdefault(op.result, []).append(f"({expr})")
        return expr

    def score_answer(self, problem: CountdownProblem, answer: str) -> float:
        """1.0 when ``answer`` is an equation over + - * / and parentheses that uses every number of the problem
        exactly once and equals the target (exact rational arithmetic: TinyZero's rule), else 0.0; never raises."""
        if not isinstance(answer, str) or len(answer) > 1000:
            return 0.0
        text = answer.strip()
        if "=" in text:  # "expression = target" is accepted when the stated target is the problem's
            text, _, rhs = text.partition("=")
            if rhs.strip() != str(problem.target):
                return 0.0
        try:
            tree = ast.parse(text.strip(), mode="eval")
            numbers: list[int] = []
            value = _evaluate(tree.body, numbers)
        except (SyntaxError, ValueError, ZeroDivisionError, RecursionError, TypeError):
            return 0.0
        return 1.0 if sorted(numbers) == sorted(problem.nums) and value == problem.target else 0.0

    @staticmethod
    @lru_cache(maxsize=1)
    def vocabulary() -> tuple[str, ...]:
        """Every word and symbol the grammar can write, and the digits (the task tokenizer's tokens)."""
        op = Op(12345, "+", 67890, 0)
        samples = [State(1, (2, 3), (op, Op(1, "-", 2, 3), Op(4, "*", 5, 6), Op(7, "/", 8, 9))),
                   Explore(op, (1,)), Generate("0,1", 2, (3,), op), Move("0"), Goal(1, 1), DeadEnd(1, 2), Exhausted()]
        return vocabulary_from("".join(s.to_line() + "\n" for s in samples))

    # records
    @staticmethod
    def problem_of(steps: list) -> CountdownProblem | None:
        """The problem a trace's first line states, or None when it states none."""
        if steps and isinstance(steps[0], State):
            return CountdownProblem(nums=steps[0].nums, target=steps[0].target)
        return None

    @staticmethod
    def problem_to_json(problem: CountdownProblem) -> dict[str, Any]:
        return {"nums": list(problem.nums), "target": problem.target}

    @staticmethod
    def problem_from_json(obj: Any, field: str = "problem") -> CountdownProblem:
        if not isinstance(obj, dict):
            raise InputError(f"expected an object with 'nums' and 'target', got {type(obj).__name__}", field=field)
        for name in ("nums", "target"):
            if name not in obj:
                raise InputError("missing", field=f"{field}.{name}")
        nums = obj["nums"]
        if not isinstance(nums, list) or not 1 <= len(nums) <= 8:
            raise InputError("expected a list of 1 to 8 integers", field=f"{field}.nums")
        for i, n in enumerate(nums):
            _check_int(n, f"{field}.nums[{i}]")
        _check_int(obj["target"], f"{field}.target")
        return CountdownProblem(tuple(nums), obj["target"])

    @staticmethod
    def problem_from_line(line: str) -> CountdownProblem:
        """``n1,n2,...;target`` (spaces allowed)."""
        left, sep, right = line.partition(";")
        if not sep:
            raise InputError("expected 'n1,n2,...;target'", field="problem")
        try:
            nums = [int(x) for x in left.split(",")]
            target = int(right)
        except ValueError:
            raise InputError("expected integers in 'n1,n2,...;target'", field="problem") from None
        return CountdownTask.problem_from_json({"nums": nums, "target": target})

    @staticmethod
    def problem_label(problem: CountdownProblem) -> str:
        return ",".join(map(str, problem.nums)) + f";{problem.target}"


def _check_int(value: Any, field: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"expected an integer, got {type(value).__name__}", field=field)
    if not 0 <= value < MAX_VALUE:
        shown = str(value) if abs(value) < 10**20 else f"a {len(str(abs(value)))}-digit number"
        raise InputError(f"{shown} is out of range 0..{MAX_VALUE - 1}", field=field)


_OPERATORS = {ast.Add: Fraction.__add__, ast.Sub: Fraction.__sub__, ast.Mult: Fraction.__mul__,
              ast.Div: Fraction.__truediv__}


def _evaluate(node: ast.AST, numbers: list[int]) -> Fraction:
    """The value of an equation's syntax tree (numbers and + - * / only), collecting the numbers it uses;
    ValueError for anything else."""
    if isinstance(node, ast.Constant) and type(node.value) is int and 0 <= node.value <= MAX_VALUE:
        numbers.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.left, numbers), _evaluate(node.right, numbers))
    raise ValueError(f"not part of an equation: {type(node).__name__}")
