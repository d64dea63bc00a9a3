"""The task "sum to target": a problem is some numbers and a target that some of them add up to; the answer is
such a choice. It follows reasonpipe's Task contract (docs/plugins.md) and is named in configs as
``task: sumtask.task:SumTask``; its options are the dataclass :class:`SumConfig` (``config_class``), its default
step verifier :class:`sumtask.verifier.SumVerifier` (the class attribute ``verifier``).

The rule of the task, written once: :func:`is_answer` (the score and the verifier's last step call it).

Example::

    PYTHONPATH=examples/plugins python -c "import random; from reasonpipe.tasks import make_task; t = make_task('sumtask.task:SumTask', count=4); print(t.prompt(t.generate(random.Random(0))))"
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.traces.tokens import vocabulary_from
from sumtask import grammar as sum_grammar


@dataclass(frozen=True)
class SumProblem:
    numbers: tuple[int, ...]
    target: int


@dataclass
class SumConfig:
    count: int = 5  # numbers per problem
    max_number: int = 9  # each number is drawn from 1..max_number

    def __post_init__(self) -> None:
        if not 1 <= self.count <= 12:
            raise InputError(f"must be 1..12, got {self.count}", field="count")
        if self.max_number < 1:
            raise InputError(f"must be >= 1, got {self.max_number}", field="max_number")


def is_answer(problem: SumProblem, chosen: tuple[int, ...]) -> bool:
    """Whether ``chosen`` is some of the problem's numbers (each used at most as often as it occurs) adding up to
    the target."""
    return sum(chosen) == problem.target and not Counter(chosen) - Counter(problem.numbers)


class SumTask:
    name = "sum"
    grammar = sum_grammar
    config_class = SumConfig
    verifier = "sumtask.verifier:SumVerifier"

    def __init__(self, config: SumConfig | None = None) -> None:
        self.config = config or SumConfig()

    def generate(self, rng: random.Random) -> SumProblem:
        """Numbers from 1..max_number; the target is the sum of a non-empty subset of them (so it is solvable)."""
        numbers = tuple(rng.randint(1, self.config.max_number) for _ in range(self.config.count))
        chosen = [n for n in numbers if rng.random() < 0.5] or [rng.choice(numbers)]
        return SumProblem(numbers, sum(chosen))

    @staticmethod
    def prompt(problem: SumProblem) -> str:
        return sum_grammar.Numbers(problem.numbers, problem.target).to_line() + "\n"

    @staticmethod
    def parse_answer(text: str) -> tuple[int, ...] | None:
        found = re.findall(r"^Answer((?: \d+)+)$", text, re.M)
        return tuple(int(x) for x in found[-1].split()) if found else None

    def score(self, problem: SumProblem, text: str) -> float:
        answer = self.parse_answer(text)
        return float(answer is not None and is_answer(problem, answer))

    @staticmethod
    def vocabulary() -> tuple[str, ...]:
        return vocabulary_from(sum_grammar.SAMPLE)

    @staticmethod
    def problem_of(steps: list) -> SumProblem | None:
        first = steps[0] if steps else None
        return SumProblem(first.numbers, first.target) if isinstance(first, sum_grammar.Numbers) else None

    @staticmethod
    def problem_to_json(problem: SumProblem) -> dict[str, Any]:
        return {"numbers": list(problem.numbers), "target": problem.target}

    @staticmethod
    def problem_from_json(obj: Any, field: str = "problem") -> SumProblem:
        if not isinstance(obj, dict):
            raise InputError(f"expected an object, got {type(obj).__name__}", field=field)
        numbers, target = obj.get("numbers"), obj.get("target")
        if not (isinstance(numbers, list) and numbers and all(type(n) is int and n >= 1 for n in numbers)):
            raise InputError("expected a non-empty list of positive integers", field=f"{field}.numbers")
        if type(target) is not int or target < 1:
            raise InputError("expected a positive integer", field=f"{field}.target")
        return SumProblem(tuple(numbers), target)

    @staticmethod
    def problem_from_line(line: str) -> SumProblem:
        """A problem of a plain-text problems file (``reasonpipe gen --from``): ``4,6,3;7``."""
        numbers, sep, target = line.partition(";")
        try:
            return SumTask.problem_from_json({"numbers": [int(n) for n in numbers.split(",")], "target": int(target)})
        except ValueError:
            raise InputError(f"expected n1,n2,...;target, got {line!r}") from None
