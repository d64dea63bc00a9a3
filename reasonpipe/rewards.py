"""Rewards from the verifiers, as TRL reward functions: plain callables on batches.

TRL calls ``reward(prompts=..., completions=..., completion_ids=..., **columns)`` with the dataset's other
columns as keyword lists and wants one float per completion, ``None`` for "not applicable". Ours read the
``problem`` column (the problem as JSON, as ``reasonpipe gen`` writes it) and score ``prompt + completion``
(the prompt is the trace's first line, so the text is a whole trace again):

- :class:`Correctness`: 1 for a correct final answer, else 0 (To Backtrack or Not's reward);
- :class:`Shaped`: 1 correct, 0.1 well-formed but wrong (every line in the task's grammar and an answer
  claim present), 0 otherwise (TinyZero's 0 / 0.1 / 1);
- :class:`StepScore`: the fraction of steps the verifier proves (or that need no check); with a
  ``LeanConfig`` the steps go through Lean. A verifier failure (crash, timeout) gives ``None`` for that
  completion and is logged: never silently 0.

They are picklable classes (they cross process boundaries), each with a ``__name__`` for TRL's logs.

Example::

    >>> from reasonpipe.rewards import Correctness
    >>> r = Correctness("countdown")
    >>> p = "<bos>Current State: 5:[2, 3], Operations: []\\n"
    >>> r([p], ["Exploring Operation: 2+3=5, Resulting Numbers: [5]\\n5,5 equal: Goal Reached\\n"], problem=['{"nums": [2, 3], "target": 5}'])
    [1.0]
"""

from __future__ import annotations

import abc
import json
import logging
from typing import Any

from reasonpipe.tasks import completion_text, get_task_class, make_task

log = logging.getLogger(__name__)


class _TraceReward(abc.ABC):
    """Shared: rebuild each problem from its JSON column and each trace from prompt + completion."""

    __name__ = "reward"

    def __init__(self, task: str, task_options: dict[str, Any] | None = None) -> None:
        self.task_name = task
        self.task_options = dict(task_options or {})
        self._task = None

    def __getstate__(self) -> dict:
        return {"task_name": self.task_name, "task_options": self.task_options, "_task": None}

    @property
    def task(self) -> Any:
        if self._task is None:
            self._task = make_task(self.task_name, **self.task_options)
        return self._task

    def problem(self, value: Any) -> Any:
        obj = json.loads(value) if isinstance(value, str) else value
        return get_task_class(self.task_name).problem_from_json(obj)

    @staticmethod
    def text(prompt: Any, completion: Any) -> str:
        if not isinstance(completion, str):  # conversational completions: the last message's content
            completion = completion[-1]["content"] if completion else ""
        return completion_text(prompt if isinstance(prompt, str) else "", completion)

    def __call__(self, prompts: list[Any], completions: list[Any], problem: list[Any] | None = None,
                 **kwargs: Any) -> list[float | None]:
        if problem is None:
            raise ValueError(f"{self.__name__}: the dataset needs a 'problem' column (the problem as JSON)")
        return [self.one(self.problem(p), self.text(q, c)) for q, c, p in zip(prompts, completions, problem)]

    @abc.abstractmethod
    def one(self, problem: Any, text: str) -> float | None:
        """The reward of one whole trace ``text`` for ``problem``."""


class Correctness(_TraceReward):
    """1.0 when the final answer in the trace is correct (the task's exact scorer), else 0.0."""

    __name__ = "correctness"

    def one(self, problem: Any, text: str) -> float | None:
        return float(self.task.score(problem, text))


class Shaped(_TraceReward):
    """1 correct, ``format_reward`` (0.1) when well-formed but wrong, else 0."""

    __name__ = "shaped"

    def __init__(self, task: str, task_options: dict[str, Any] | None = None, format_reward: float = 0.1) -> None:
        super().__init__(task, task_options)
        self.format_reward = format_reward

    def well_formed(self, text: str) -> bool:
        steps = get_task_class(self.task_name).grammar.parse(text)
        return bool(steps) and all(s.kind != "unparsed" for s in steps) and self.task.parse_answer(text) is not None

    def one(self, problem: Any, text: str) -> float | None:
        if self.task.score(problem, text) >= 1.0:
            return 1.0
        return self.format_reward if self.well_formed(text) else 0.0


class StepScore(_TraceReward):
    """Fraction of steps that hold by the verifier; None (logged) when the verifier failed on a step."""

    __name__ = "step_score"

    def __init__(self, task: str, task_options: dict[str, Any] | None = None, lean: Any = None) -> None:
        super().__init__(task, task_options)
        self.lean = lean  # a reasonpipe.verifiers.lean.LeanConfig: check the steps in Lean instead of exactly
        self._verifier = None

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "lean": self.lean, "_verifier": None}

    @property
    def verifier(self) -> Any:
        if self._verifier is None:
            if self.lean is not None:
                from reasonpipe.verifiers.lean import LeanVerifier

                self._verifier = LeanVerifier(self.lean)
            else:
                from reasonpipe.verifiers import get_verifier

                self._verifier = get_verifier(self.task_name)
        return self._verifier

    def one(self, problem: Any, text: str) -> float | None:
        from reasonpipe.traces import Trace

        trace = Trace.from_text(self.task_name, text, problem=problem)
        report = self.verifier.report(trace)
        if report.step_score is None:
            log.warning("step_score: the verifier failed on a step (%s): reward None",
                        next((v.reason for v in report.verdicts if v.verdict == "error"), "error"))
        return report.step_score


REWARDS = {"correctness": Correctness, "shaped": Shaped, "step_score": StepScore}


def make_reward(name: str, task: str, task_options: dict[str, Any] | None = None, **kwargs: Any) -> _TraceReward:
    """A reward by name (correctness | shaped | step_score)."""
    from reasonpipe.errors import InputError

    if name not in REWARDS:
        raise InputError(f"unknown reward {name!r} (known: {', '.join(REWARDS)})", field="reward")
    return REWARDS[name](task, task_options, **kwargs)
