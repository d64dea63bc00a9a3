"""Rewards from the verifiers, as TRL reward functions: plain callables on batches.

TRL calls ``reward(prompts=..., completions=..., completion_ids=..., **columns)`` with the dataset's other
columns as keyword lists and wants one float per completion, ``None`` for "not applicable". Ours read the
``problem`` column (the problem as JSON, as ``reasonpipe gen`` writes it) and score each completion as its
text format (:mod:`reasonpipe.textformat`) says: the task's prompt line + the completion is the whole trace again
(layout ``trace``), or the ``<answer>`` content is scored alone and the ``<think>`` content is the trace (layout
``answer``):

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
import functools
import json
import logging
from typing import Any

from reasonpipe.tasks import get_task_class, make_task
from reasonpipe.textformat import ANSWER, TextFormat

log = logging.getLogger(__name__)


class _TraceReward(abc.ABC):
    """Shared: rebuild each problem from its JSON column and each trace from prompt + completion."""

    __name__ = "reward"

    def __init__(self, task: str, task_options: dict[str, Any] | None = None,
                 text_format: TextFormat | None = None) -> None:
        self.task_name = task
        self.task_options = dict(task_options or {})
        self.text_format = text_format or TextFormat()  # how a completion holds its trace and answer
        self._task = None

    def __getstate__(self) -> dict:
        return {"task_name": self.task_name, "task_options": self.task_options, "text_format": self.text_format,
                "_task": None}

    @property
    def task(self) -> Any:
        if self._task is None:
            self._task = make_task(self.task_name, **self.task_options)
        return self._task

    def problem(self, value: Any) -> Any:
        obj = json.loads(value) if isinstance(value, str) else value
        return get_task_class(self.task_name).problem_from_json(obj)

    @staticmethod
    def content(completion: Any) -> str:
        """A completion's text (conversational completions: the last message's content)."""
        if not isinstance(completion, str):
            return completion[-1]["content"] if completion else ""
        return completion

    def trace(self, problem: Any, completion: str) -> str:
        """The whole trace a completion holds, as the task's grammar reads it (:meth:`TextFormat.trace_text`)."""
        return self.text_format.trace_text(self.task, problem, completion)

    def __call__(self, prompts: list[Any], completions: list[Any], problem: list[Any] | None = None,
                 **kwargs: Any) -> list[float | None]:
        if problem is None:
            raise ValueError(f"{self.__name__}: the dataset needs a 'problem' column (the problem as JSON)")
        return [self.one(self.problem(p), self.content(c)) for c, p in zip(completions, problem)]

    @abc.abstractmethod
    def one(self, problem: Any, completion: str) -> float | None:
        """The reward of one completion for ``problem``."""


class Correctness(_TraceReward):
    """1.0 when the final answer in the trace is correct (the task's exact scorer), else 0.0."""

    __name__ = "correctness"

    def one(self, problem: Any, completion: str) -> float | None:
        return self.text_format.score(self.task, problem, completion)


class Shaped(_TraceReward):
    """1 correct, ``format_reward`` (0.1) when well-formed but wrong, else 0."""

    __name__ = "shaped"

    def __init__(self, task: str, task_options: dict[str, Any] | None = None, format_reward: float = 0.1,
                 text_format: TextFormat | None = None) -> None:
        super().__init__(task, task_options, text_format)
        self.format_reward = format_reward

    def well_formed(self, text: str) -> bool:
        steps = get_task_class(self.task_name).grammar.parse(text)
        return bool(steps) and all(s.kind != "unparsed" for s in steps) and self.task.parse_answer(text) is not None

    def one(self, problem: Any, completion: str) -> float | None:
        if self.text_format.score(self.task, problem, completion) >= 1.0:
            return 1.0
        if self.text_format.layout == "answer" and not ANSWER.search(completion):
            return 0.0  # the answer layout is well-formed only with its <answer> tag
        return self.format_reward if self.well_formed(self.trace(problem, completion)) else 0.0


class StepScore(_TraceReward):
    """Fraction of steps that hold by the verifier; None (logged) when the verifier failed on a step."""

    __name__ = "step_score"

    def __init__(self, task: str, task_options: dict[str, Any] | None = None, lean: Any = None,
                 text_format: TextFormat | None = None) -> None:
        super().__init__(task, task_options, text_format)
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

    def one(self, problem: Any, completion: str) -> float | None:
        from reasonpipe.traces import Trace

        trace = Trace.from_text(self.task_name, self.trace(problem, completion), problem=problem)
        report = self.verifier.report(trace)
        if report.step_score is None:
            log.warning("step_score: the verifier failed on a step (%s): reward None",
                        next((v.reason for v in report.verdicts if v.verdict == "error"), "error"))
        return report.step_score


REWARDS = {"correctness": Correctness, "shaped": Shaped, "step_score": StepScore}


def make_reward(name: str, task: str, task_options: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """A reward by name (correctness | shaped | step_score), or a plug-in ``module:attr`` (docs/plugins.md): a class
    is instantiated with ``(task, task_options)`` and those of ``kwargs`` (e.g. ``text_format``) that its
    ``__init__`` takes by name; a function is the TRL reward function as it is. Either way the result has a
    ``__name__`` (TRL's logs): the plug-in's attribute name where it has none."""
    import inspect

    from reasonpipe.errors import InputError
    from reasonpipe.plugins import is_plugin, load_object

    if is_plugin(name):
        obj = load_object(name, "reward", "reward")
        if isinstance(obj, type):
            params = inspect.signature(obj).parameters.values()
            takes = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
            if not any(p.kind is p.VAR_KEYWORD for p in params):
                kwargs = {k: v for k, v in kwargs.items() if k in takes}
            reward = obj(task, task_options, **kwargs)
        else:
            reward = obj
        if not getattr(reward, "__name__", None):
            reward.__name__ = name.rpartition(":")[2].rpartition(".")[2]
        return reward
    if name not in REWARDS:
        raise InputError(f"unknown reward {name!r} (known: {', '.join(REWARDS)}, or a plug-in module:attr)",
                         field="reward")
    return REWARDS[name](task, task_options, **kwargs)


# -- verl's custom reward function ------------------------------------------------------------------------------



def compute_score(data_source: str, solution_str: str, ground_truth: Any,
                  extra_info: dict[str, Any] | None = None) -> float:
    """verl's custom reward function (``custom_reward_function.path`` = this file, ``name`` = compute_score) for
    the rows ``reasonpipe export --to verl`` writes; the same call suits OpenRLHF-style reward functions.

    The task is ``data_source``'s (``reasonpipe/<task>``), else ``extra_info["task"]``; the problem is
    ``ground_truth`` (the problem as JSON, a string or an object); ``extra_info["layout"]`` (``trace``, the
    default, or ``answer``) says how ``solution_str`` (the completion, without the prompt) is written, and
    ``extra_info["score"]`` what it earns: ``exact`` (default; the task's exact scorer, of the whole trace or of
    the ``<answer>`` equation) or ``step`` (the fraction of the trace's steps the exact step verifier proves or
    that need no check; a verifier failure gives 0.0, logged). Never raises on the model's output (malformed
    text scores 0.0); a ``data_source``, ``ground_truth`` or ``extra_info`` it cannot use raises ValueError.

    Example::

        >>> from reasonpipe.rewards import compute_score
        >>> compute_score("reasonpipe/countdown", "Exploring Operation: 2+3=5, Resulting Numbers: [5]\\n5,5 equal: Goal Reached\\n", '{"nums": [2, 3], "target": 5}')
        1.0
        >>> compute_score("reasonpipe/countdown", "<think>\\n...\\n</think>\\n<answer> 3 + 2 </answer>", {"nums": [2, 3], "target": 5}, {"layout": "answer"})
        1.0
        >>> compute_score("reasonpipe/countdown", "no idea", '{"nums": [2, 3], "target": 5}', {"score": "step"})
        0.5
    """
    from reasonpipe.errors import InputError

    info = extra_info if isinstance(extra_info, dict) else {}
    if isinstance(data_source, str) and data_source.startswith("reasonpipe/"):
        name = data_source[len("reasonpipe/"):]
    elif isinstance(info.get("task"), str):
        name = info["task"]
    else:
        raise ValueError(f"compute_score: data_source {data_source!r} is not 'reasonpipe/<task>' and extra_info has "
                         "no 'task' (rows written by `reasonpipe export --to verl` have both)")
    layout = str(info.get("layout") or "trace")
    try:
        scorer = _verl_scorer(name, layout)
        obj = json.loads(ground_truth) if isinstance(ground_truth, (str, bytes)) else ground_truth
        if isinstance(obj, dict):  # read back from Parquet as a struct: numpy arrays and scalars
            obj = {k: v.tolist() if hasattr(v, "tolist") else v for k, v in obj.items()}
        problem = get_task_class(name).problem_from_json(obj, field="ground_truth")
    except (InputError, ValueError) as e:  # json's errors are ValueErrors
        raise ValueError(f"compute_score: {e}") from None
    kind = info.get("score") or "exact"
    if kind not in ("exact", "step"):
        raise ValueError(f"compute_score: extra_info['score'] is {kind!r}, expected 'exact' or 'step'")
    if not isinstance(solution_str, str):
        return 0.0
    try:
        if kind == "exact":
            return scorer.text_format.score(scorer.task, problem, solution_str)
        value = scorer.one(problem, solution_str)  # the trace TextFormat.trace_text gives; None: logged there
        return 0.0 if value is None else float(value)
    except Exception:  # a scorer bug must not stop a training run: logged, and scored as wrong
        log.exception("compute_score: scoring a %s completion failed: reward 0.0", name)
        return 0.0


@functools.lru_cache(maxsize=None)
def _verl_scorer(name: str, layout: str) -> StepScore:
    """One scorer per (task, layout), built on first use: its task and verifier are made once per process."""
    from reasonpipe.textformat import TextFormat

    get_task_class(name, field="data_source")
    fmt = TextFormat(tokenizer="model", layout=layout)
    fmt.check_task(make_task(name), field="extra_info.layout")
    return StepScore(name, text_format=fmt)
