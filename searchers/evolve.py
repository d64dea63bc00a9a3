"""Regularized (aging) evolution over programs, with or without the functional-hash cache.

Real et al. (2019): keep a population of ``population`` programs; each cycle, sample ``sample`` of them,
mutate the fittest (ties: the first sampled), evaluate the child, add it and retire the *oldest* member.
``budget`` counts candidates (the initial population included), so a cache-less run evaluates ``budget``
times; with :class:`~reasonpipe.fhash.FunctionalHashCache` the evaluations are the cache's misses (and
partial hits). The search's randomness is its own ``random.Random(seed)``; evaluation and the cache never
draw from it, and fitness depends only on a program's outputs on the probes (the probes contain every
input the fitness reads), so the cache changes how many evaluations a run spends, never what it finds.

Spaces:

- ``list_functions``: pipelines of the List Functions DSL (:mod:`reasonpipe.tasks.list_programs`) of
  1..``max_ops`` primitives; mutations replace, insert, delete or re-argument one primitive, or swap two.
  Fitness: mean example similarity on the train pairs (1.0 = all exact). The probes are the train inputs.
  Evaluation also runs the program on ``heldout`` extra hidden inputs: the configurable cost (a slower
  held-out check), reported but not part of the fitness.
- ``countdown``: postfix expressions that use each number once; mutations change an operator, swap two
  numbers or re-bracket. Fitness ``1 / (1 + |value - target|)`` (0 when a rule is broken). The probes are the
  problem's numbers plus random number lists of the same size, so equivalent expressions (``a+b``,
  ``b+a``) share a hash.

Example::

    reasonpipe search evolve --task list_functions --budget 3000 --seed 0 --compare
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from reasonpipe.fhash import FunctionalHashCache
from reasonpipe.seeds import stream
from reasonpipe.tasks import list_programs as lf
from reasonpipe.tasks.countdown import CountdownProblem, apply


@dataclass
class EvolveConfig:
    population: int = 100
    sample: int = 10
    budget: int = 3000          # candidates, initial population included
    seed: int = 0


@dataclass
class EvolveResult:
    best: Any
    best_text: str
    best_fitness: float
    solved: bool
    candidates: int
    evaluations: int
    seconds: float
    history: list[tuple[int, int, float]] = field(default_factory=list)  # (candidates, evaluations, best so far)
    extra: dict[str, Any] = field(default_factory=dict)


class Space(Protocol):
    """What evolution needs from a problem: programs, mutation, probes, running and evaluating."""

    name: str
    probes: list[Any]

    def random_program(self, rng: random.Random) -> Any:
        """A program drawn at random (the initial population)."""

    def mutate(self, program: Any, rng: random.Random) -> Any:
        """A child of ``program``."""

    def behaviour(self, program: Any) -> Callable[[Any], Any]:
        """The program as a function of one probe input (what the cache hashes)."""

    def evaluate(self, program: Any) -> float:
        """The fitness (higher is better); must depend only on the outputs on ``probes``."""

    def show(self, program: Any) -> str:
        """The program as text."""


class ListFunctionsSpace:
    name = "list_functions"

    def __init__(self, problem: lf.ListFunctionsProblem, *, max_ops: int = 4, heldout: int = 200,
                 heldout_seed: int = 0) -> None:
        self.problem = problem
        self.max_ops = max_ops
        self.probes = [x for x, _ in problem.train]
        rng = stream("heldout", heldout_seed)
        cfg = lf.ListFunctionsConfig()
        hidden = []
        while len(hidden) < heldout:
            x = lf.random_input(rng, cfg)
            try:
                hidden.append((x, lf.run(problem.program, x)))
            except (ValueError, IndexError):
                continue
        self.heldout = tuple(hidden)
        self.heldout_seen = 0.0  # sum of held-out similarity over evaluations (what the extra cost computed)

    def random_program(self, rng: random.Random) -> lf.Program:
        return tuple(lf.random_primitive(rng) for _ in range(rng.randint(1, self.max_ops)))

    def mutate(self, program: lf.Program, rng: random.Random) -> lf.Program:
        ops = list(program)
        kind = rng.randrange(5)
        if kind == 0 or not ops:                                   # insert
            if len(ops) < self.max_ops:
                ops.insert(rng.randint(0, len(ops)), lf.random_primitive(rng))
            else:
                ops[rng.randrange(len(ops))] = lf.random_primitive(rng)
        elif kind == 1 and len(ops) > 1:                           # delete
            del ops[rng.randrange(len(ops))]
        elif kind == 2:                                            # new argument for one primitive
            i = rng.randrange(len(ops))
            name, _ = ops[i]
            choices = lf.PRIMITIVES[name][0]
            ops[i] = (name, None if choices is None else rng.choice(choices))
        elif kind == 3 and len(ops) > 1:                           # swap two
            i, j = rng.sample(range(len(ops)), 2)
            ops[i], ops[j] = ops[j], ops[i]
        else:                                                      # replace one
            ops[rng.randrange(len(ops))] = lf.random_primitive(rng)
        return tuple(ops)

    def behaviour(self, program: lf.Program) -> Callable[[Any], Any]:
        return lambda x: lf.run(program, x)

    def evaluate(self, program: lf.Program) -> float:
        fitness = lf.score(program, self.problem.train)
        if self.heldout:
            self.heldout_seen += lf.score(program, self.heldout)  # the configurable extra cost
        return fitness

    def show(self, program: lf.Program) -> str:
        return lf.show(program)


class CountdownSpace:
    name = "countdown"
    OPS = ("+", "-", "*", "/")

    def __init__(self, problem: CountdownProblem, *, n_probes: int = 8, probe_seed: int = 0) -> None:
        self.problem = problem
        n = len(problem.nums)
        rng = stream("countdown-probes", probe_seed)
        self.probes = [tuple(problem.nums)] + [tuple(rng.randint(1, 99) for _ in range(n)) for _ in range(n_probes)]

    # a program is a postfix tuple: ints are positions in the number list, strings are operators
    def random_program(self, rng: random.Random) -> tuple:
        slots = list(range(len(self.problem.nums)))
        rng.shuffle(slots)
        return self._bracket(slots, [rng.choice(self.OPS) for _ in slots[1:]], rng)

    def _bracket(self, slots: list[int], ops: list[str], rng: random.Random) -> tuple:
        """A random valid postfix with these leaves and operators, in this order."""
        out: list[Any] = [slots[0]]
        depth, si, oi = 1, 1, 0
        while si < len(slots) or oi < len(ops):
            if si < len(slots) and (depth < 2 or rng.random() < 0.5):
                out.append(slots[si])
                si, depth = si + 1, depth + 1
            else:
                out.append(ops[oi])
                oi, depth = oi + 1, depth - 1
        return tuple(out)

    def mutate(self, program: tuple, rng: random.Random) -> tuple:
        slots = [t for t in program if type(t) is int]
        ops = [t for t in program if type(t) is str]
        kind = rng.randrange(3)
        if kind == 0 and ops:
            ops[rng.randrange(len(ops))] = rng.choice(self.OPS)
        elif kind == 1 and len(slots) > 1:
            i, j = rng.sample(range(len(slots)), 2)
            slots[i], slots[j] = slots[j], slots[i]
        else:
            return self._bracket(slots, ops, rng)
        it_s, it_o = iter(slots), iter(ops)
        return tuple(next(it_s) if type(t) is int else next(it_o) for t in program)

    @staticmethod
    def value(program: tuple, nums: tuple[int, ...]) -> int:
        stack: list[int] = []
        for t in program:
            if type(t) is int:
                stack.append(nums[t])
            else:
                b, a = stack.pop(), stack.pop()
                v = apply(a, t, b)
                if v is None:
                    raise ValueError(f"{a}{t}{b} breaks the rules")
                stack.append(v)
        return stack[0]

    def behaviour(self, program: tuple) -> Callable[[Any], Any]:
        return lambda nums: self.value(program, nums)

    def evaluate(self, program: tuple) -> float:
        try:
            v = self.value(program, self.problem.nums)
        except ValueError:
            return 0.0
        return 1.0 / (1.0 + abs(v - self.problem.target))

    def show(self, program: tuple) -> str:
        stack: list[str] = []
        for t in program:
            if type(t) is int:
                stack.append(str(self.problem.nums[t]))
            else:
                b, a = stack.pop(), stack.pop()
                stack.append(f"({a}{t}{b})")
        return stack[0][1:-1] if stack[0].startswith("(") else stack[0]


def aging_evolution(space: Space, config: EvolveConfig, cache: FunctionalHashCache | None = None,
                    progress: Callable[[int], None] | None = None) -> EvolveResult:
    """Run the search; ``progress(k)`` is told of every ``k`` candidates made."""
    rng = random.Random(config.seed)
    if config.sample > config.population or config.population > config.budget:
        raise ValueError("need sample <= population <= budget")
    evaluations = 0

    def fitness(program: Any) -> float:
        nonlocal evaluations
        if cache is None:
            evaluations += 1
            return space.evaluate(program)
        before = cache.stats.evaluations
        f = cache.get_or_evaluate(space.behaviour(program), space.probes, lambda _: space.evaluate(program))
        evaluations += cache.stats.evaluations - before
        return f

    started = time.perf_counter()
    population: deque[tuple[Any, float]] = deque()
    best, best_f = None, -1.0
    history = []
    for made in range(1, config.budget + 1):
        if made <= config.population:
            child = space.random_program(rng)
        else:
            sample = [population[i] for i in rng.sample(range(len(population)), config.sample)]
            parent = max(sample, key=lambda pf: pf[1])[0]
            child = space.mutate(parent, rng)
        f = fitness(child)
        population.append((child, f))
        if len(population) > config.population:
            population.popleft()
        if f > best_f:
            best, best_f = child, f
        if made % 50 == 0 or made == config.budget:
            history.append((made, evaluations, best_f))
            if progress is not None:
                progress(50 if made % 50 == 0 else made % 50)
    return EvolveResult(best=best, best_text=space.show(best), best_fitness=best_f, solved=best_f == 1.0,
                        candidates=config.budget, evaluations=evaluations, seconds=time.perf_counter() - started,
                        history=history)
