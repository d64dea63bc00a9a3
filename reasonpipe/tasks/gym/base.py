"""What every reasoning-gym task shares: problems by seed, scoring by reasoning-gym, k-backtrack traces, checks.

A task module subclasses :class:`GymTask` and writes four things:

- ``render(entry) -> str``: the problem as one compact line (what the model reads after ``Problem: ``);
- ``branches(entry, rng) -> (right, wrongs)``: the correct :class:`Branch` and distinct wrong ones, each with
  the claims that check it (``checks``) and, for a wrong one, the claim that refutes it (``refutation``);
- ``check(entry, branch, claim, refutes) -> bool | None``: does ``claim`` hold about ``branch`` (and, when
  ``refutes``, does it show the branch wrong)? None: a claim this task cannot check (``no_check``);
- ``words()``: the words its lines use (the task tokenizer's vocabulary).

A hook that meets an entry this task does not read (a shape of problem outside what it covers) raises
:class:`NotCovered`.

From those, :class:`GymTask` gives the Task contract (problems are reasoning-gym entries regenerated from
their seed, scored by reasoning-gym's ``score_answer``); the searchers ``direct`` / ``kbacktrack``
(:mod:`reasonpipe.searchers.gym`) write traces from the branches, and ``GymVerifier`` (:mod:`reasonpipe.verifiers.gym`) checks
every step with ``check``.

Example::

    python -c "from reasonpipe.tasks import make_task; import random; t = make_task('color_cube_rotation'); p = t.generate(random.Random(0)); print(t.prompt(p))"
"""

from __future__ import annotations

import abc
import random
import string
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.tasks.gym import grammar
from reasonpipe.tasks.gym.grammar import Answer, ProblemLine


class NotCovered(Exception):
    """This task's rules do not read this reasoning-gym entry (a problem shape it does not cover); the
    searchers report it as ``SearchFailed``, so the generator draws another problem."""


@dataclass(frozen=True)
class GymProblem:
    """A reasoning-gym entry, identified by the seed that regenerates it; ``answer`` is its reference."""

    gym_seed: int
    question: str
    answer: str


@dataclass
class GymConfig:
    """Options passed to reasoning-gym's dataset config (e.g. ``{"min_rotations": 1}``) as a JSON object."""

    options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if not isinstance(self.options, dict):
            raise InputError(f"expected an object, got {type(self.options).__name__}", field="options")


@dataclass(frozen=True)
class Branch:
    """One candidate: its ``Try`` text, the claims that check it, its refutation if wrong, its answer if right."""

    text: str
    checks: tuple[str, ...] = ()
    refutation: str | None = None
    answer: str | None = None


class GymTask(abc.ABC):
    """Task contract over a reasoning-gym dataset; subclasses set ``name``, ``gym_name`` and the four hooks."""

    name = ""
    gym_name = ""
    grammar = grammar

    def __init__(self, config: GymConfig | None = None) -> None:
        self.config = config or GymConfig()
        self.config.validate()
        self._entries: dict[int, dict] = {}

    # -- reasoning-gym ------------------------------------------------------------------------------------

    def entry(self, problem: GymProblem) -> dict:
        """The full reasoning-gym entry (question, answer, metadata), regenerated from the seed and cached."""
        e = self._entries.get(problem.gym_seed)
        if e is None:
            e = self._dataset(problem.gym_seed)[0]
            if len(self._entries) > 4096:
                self._entries.clear()
            self._entries[problem.gym_seed] = e
        return e

    def _dataset(self, seed: int):
        import reasoning_gym

        try:
            return reasoning_gym.create_dataset(self.gym_name, size=1, seed=seed, **self.config.options)
        except TypeError as e:  # an unknown option
            raise InputError(f"reasoning-gym {self.gym_name}: {e}", field="options") from None

    # -- the hooks a task writes --------------------------------------------------------------------------

    @abc.abstractmethod
    def render(self, entry: dict) -> str:
        """The problem as one compact line."""

    @abc.abstractmethod
    def branches(self, entry: dict, rng: random.Random) -> tuple[Branch, list[Branch]]:
        """The correct branch and distinct wrong ones (each with its refutation)."""

    @abc.abstractmethod
    def check(self, entry: dict, branch: str, claim: str, refutes: bool) -> bool | None:
        """Does ``claim`` hold about ``branch`` (and refute it, when ``refutes``)? None: not checkable."""

    @classmethod
    def words(cls) -> tuple[str, ...]:
        return ()

    # -- the Task contract --------------------------------------------------------------------------------

    def generate(self, rng: random.Random) -> GymProblem:
        seed = rng.randrange(2**31)
        e = self._dataset(seed)[0]
        self._entries[seed] = e
        return GymProblem(gym_seed=seed, question=e["question"], answer=str(e["answer"]))

    def prompt(self, problem: GymProblem) -> str:
        return ProblemLine(self.render(self.entry(problem))).to_line() + "\n"

    def parse_answer(self, text: str) -> str | None:
        """The text of the first ``Answer:`` line."""
        if not isinstance(text, str):
            return None
        for step in grammar.parse(text):
            if type(step) is Answer:
                return step.text
        return None

    def score(self, problem: GymProblem, text: str) -> float:
        """reasoning-gym's score of the answer (1.0 exact; some tasks give partial credit); never raises."""
        answer = self.parse_answer(text)
        if answer is None:
            return 0.0
        try:
            return float(self._dataset(problem.gym_seed).score_answer(answer, self.entry(problem)))
        except Exception:  # a scorer must not crash on model output
            return 0.0

    @classmethod
    @lru_cache(maxsize=None)
    def vocabulary(cls) -> tuple[str, ...]:
        from reasonpipe.traces.tokens import vocabulary_from

        sample = " ".join(grammar.WORDS + tuple(cls.words())) + string.punctuation + string.digits + " \n"
        return vocabulary_from(sample)

    @staticmethod
    def problem_to_json(problem: GymProblem) -> dict[str, Any]:
        return {"gym_seed": problem.gym_seed, "question": problem.question, "answer": problem.answer}

    @staticmethod
    def problem_from_json(obj: Any, field: str = "problem") -> GymProblem:
        if not isinstance(obj, dict):
            raise InputError(f"expected an object, got {type(obj).__name__}", field=field)
        seed = obj.get("gym_seed")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise InputError(f"expected a non-negative integer, got {seed!r}", field=f"{field}.gym_seed")
        for name in ("question", "answer"):
            if not isinstance(obj.get(name), str):
                raise InputError(f"expected a string, got {type(obj.get(name)).__name__}", field=f"{field}.{name}")
        return GymProblem(seed, obj["question"], obj["answer"])

    @staticmethod
    def problem_from_line(line: str) -> GymProblem:
        """A problem file line: a reasoning-gym seed (the entry is regenerated from it)."""
        try:
            seed = int(line.strip())
        except ValueError:
            raise InputError(f"expected a reasoning-gym seed (an integer), got {line.strip()[:40]!r}") from None
        return GymProblem(seed, "", "")

    @staticmethod
    def problem_label(problem: GymProblem) -> str:
        return f"seed {problem.gym_seed}"
