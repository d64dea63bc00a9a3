"""Task registry: what a problem and a correct final answer are, by name.

Each task class provides the DESIGN.md contract — ``generate(rng)``, ``prompt(problem)``,
``parse_answer(text)``, ``score(problem, text)``, ``vocabulary()`` — plus its trace ``grammar`` and
problem (de)serialisation. Options go into the task's config dataclass.

Example::

    python -c "from reasonpipe.tasks import make_task; import random; print(make_task('countdown').generate(random.Random(0)))"
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.tasks.countdown import CountdownConfig, CountdownTask
from reasonpipe.tasks.sudoku import SudokuConfig, SudokuTask

TASKS: dict[str, tuple[type, type]] = {
    "countdown": (CountdownTask, CountdownConfig),
    "sudoku": (SudokuTask, SudokuConfig),
}


def get_task_class(name: Any, *, field: str | None = None) -> type:
    """The task class registered as ``name``; InputError listing the known names otherwise."""
    try:
        return TASKS[name][0]
    except (KeyError, TypeError):
        raise InputError(f"unknown task {name!r} (known: {', '.join(TASKS)})", field=field) from None


def make_task(name: str, **options: Any):
    """A task instance; ``options`` are fields of its config dataclass (unknown ones are an error)."""
    cls = get_task_class(name)
    config_cls = TASKS[name][1]
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)} for task {name} (known: {', '.join(sorted(known))})",
                         field=unknown[0])
    return cls(config_cls(**options))
