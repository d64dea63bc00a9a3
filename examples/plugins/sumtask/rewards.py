"""Rewards for GRPO on "sum to target", as TRL reward functions (reasonpipe's Reward contract): lists in, one float
per completion out. Named in an RL config as ``reward: sumtask.rewards:Solved`` (a class: reasonpipe builds it
with the run's task and task options) or ``reward: sumtask.rewards:answered`` (a function, used as it is).

Example::

    PYTHONPATH=examples/plugins python -c "from reasonpipe.rewards import make_reward; r = make_reward('sumtask.rewards:Solved', 'sumtask.task:SumTask'); print(r(['<bos>Numbers 4 3 target 7\\n'], ['Take 4 at 0 sum 4\\nTake 3 at 1 sum 7\\nAnswer 4 3\\n'], problem=['{\\"numbers\\": [4, 3], \\"target\\": 7}']))"
"""

from __future__ import annotations

import json
from typing import Any

from reasonpipe.tasks import get_task_class, make_task, score_completion


class Solved:
    """1.0 when the completion's answer is some of the numbers adding up to the target, else 0.0 (the task's exact
    score of prompt + completion); reads the dataset's ``problem`` column (the problem as JSON). Picklable: it
    keeps the task's name and options, and builds the task when first called."""

    __name__ = "solved"

    def __init__(self, task: str, task_options: dict[str, Any] | None = None) -> None:
        self.task_name, self.task_options = task, dict(task_options or {})
        self._task = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_task": None}

    def __call__(self, prompts: list[Any], completions: list[str], problem: list[Any] | None = None,
                 **kwargs: Any) -> list[float | None]:
        if problem is None:
            raise ValueError("solved: the dataset needs a 'problem' column (the problem as JSON)")
        if self._task is None:
            self._task = make_task(self.task_name, **self.task_options)
        cls = get_task_class(self.task_name)
        return [score_completion(self._task, cls.problem_from_json(json.loads(p) if isinstance(p, str) else p), q, c)
                for q, c, p in zip(prompts, completions, problem)]


def answered(prompts: list[Any], completions: list[str], **kwargs: Any) -> list[float]:
    """0.1 for a completion that ends in an ``Answer`` line, right or wrong (a format reward, beside ``Solved``)."""
    return [0.1 if c.rstrip("\n").rpartition("\n")[2].startswith("Answer ") else 0.0 for c in completions]
