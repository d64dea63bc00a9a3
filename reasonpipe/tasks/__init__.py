"""Task registry: what a problem and a correct final answer are, by name.

Each task class provides the DESIGN.md contract — ``generate(rng)``, ``prompt(problem)``,
``parse_answer(text)``, ``score(problem, text)``, ``vocabulary()`` — plus its trace ``grammar`` and
problem (de)serialisation. Options go into the task's config dataclass.

A plug-in task is named ``module:Class`` instead of a registered name (``docs/plugins.md``): the class must have
the contract's attributes (:data:`CONTRACT`; which one is missing is the error), and its options dataclass is its
class attribute ``config_class`` (none: the task takes no options, and is built as ``Class()``).

Importing this package plugs the registry into :mod:`reasonpipe.traces` (``use_task_registry``), which sits
below the tasks and so cannot look them up itself: ``Trace.from_text("countdown", ...)`` and the JSONL
records then resolve task names here, reasoning-gym tasks included (still imported only when first used).

Example::

    python -c "from reasonpipe.tasks import make_task; import random; print(make_task('countdown').generate(random.Random(0)))"
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.plugins import is_plugin, load_object
from reasonpipe.tasks.countdown import CountdownConfig, CountdownTask
from reasonpipe.tasks.reachability import ReachabilityConfig, ReachabilityTask
from reasonpipe.tasks.sudoku import SudokuConfig, SudokuTask
from reasonpipe.traces import use_task_registry
from reasonpipe.traces.tokens import strip_bos

TASKS: dict[str, tuple[type, type]] = {
    "countdown": (CountdownTask, CountdownConfig),
    "sudoku": (SudokuTask, SudokuConfig),
    "reachability": (ReachabilityTask, ReachabilityConfig),
}
# reasoning-gym tasks (How Much Backtracking's other tasks): module:class, imported when first used
GYM_TASKS: dict[str, str] = {
    "arc_1d": "reasonpipe.tasks.gym.arc_1d:Arc1DTask",
    "list_functions": "reasonpipe.tasks.gym.list_functions:ListFunctionsTask",
    "color_cube_rotation": "reasonpipe.tasks.gym.color_cube_rotation:ColorCubeRotationTask",
    "zebra_puzzles": "reasonpipe.tasks.gym.zebra_puzzles:ZebraPuzzlesTask",
    "self_reference": "reasonpipe.tasks.gym.self_reference:SelfReferenceTask",
    "advanced_geometry": "reasonpipe.tasks.gym.advanced_geometry:AdvancedGeometryTask",
}


# what a task class must have (the Task contract, docs/architecture.md); a plug-in task is checked against it
CONTRACT = ("generate", "prompt", "parse_answer", "score", "vocabulary", "grammar", "problem_to_json",
            "problem_from_json")
PLUGIN_HINT = "or a plug-in task class as module:Class"


@dataclasses.dataclass
class NoOptions:
    """The options of a plug-in task without a ``config_class``: none."""


def task_names() -> list[str]:
    return [*TASKS, *GYM_TASKS]


def _plugin_entry(spec: str, field: str) -> tuple[type, type]:
    cls = load_object(spec, field, "task class")
    if not isinstance(cls, type):
        raise InputError(f"{spec} is a {type(cls).__name__}, not a task class", field=field)
    missing = [name for name in CONTRACT if not hasattr(cls, name)]
    if missing:
        raise InputError(f"the plug-in task {spec} lacks {', '.join(missing)} of the task contract "
                         f"({', '.join(CONTRACT)}; docs/plugins.md)", field=field)
    if not callable(getattr(cls.grammar, "parse", None)):
        raise InputError(f"the plug-in task {spec}: its grammar has no parse(text) -> steps", field=field)
    config_cls = getattr(cls, "config_class", None)
    if config_cls is None:
        return cls, NoOptions
    if not (isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls)):
        raise InputError(f"the plug-in task {spec}: config_class must be a dataclass, got {config_cls!r}", field=field)
    return cls, config_cls


def _entry(name: Any, field: str | None = None) -> tuple[type, type] | None:
    if not isinstance(name, str):
        return None
    if name in TASKS:
        return TASKS[name]
    if name in GYM_TASKS:
        from reasonpipe.tasks.gym.base import GymConfig

        module, cls = GYM_TASKS[name].split(":")
        return getattr(importlib.import_module(module), cls), GymConfig
    if is_plugin(name):
        return _plugin_entry(name, field or "task")
    return None


def _unknown(name: Any, field: str | None) -> InputError:
    return InputError(f"unknown task {name!r} (known: {', '.join(task_names())}) {PLUGIN_HINT}", field=field)


def get_task_class(name: Any, *, field: str | None = None) -> type:
    """The task class registered as ``name``, or the plug-in class ``module:Class``; InputError listing the known
    names otherwise (or saying what the plug-in lacks)."""
    entry = _entry(name, field)
    if entry is None:
        raise _unknown(name, field)
    return entry[0]


def make_task(name: str, **options: Any):
    """A task instance; ``options`` are fields of its config dataclass (unknown ones are an error)."""
    entry = _entry(name)
    if entry is None:
        raise _unknown(name, None)
    cls, config_cls = entry
    _check_known(name, config_cls, options)
    return cls() if config_cls is NoOptions else cls(config_cls(**options))


def _check_known(name: str, config_cls: type, options: dict[str, Any]) -> None:
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)} for task {name} "
                         f"(known: {', '.join(sorted(known)) or 'none'})", field=unknown[0])


def check_options(name: str, options: dict[str, Any], field: str = "task_options") -> None:
    """Raise :class:`InputError` unless ``options`` are options of task ``name`` that it accepts (known keys, of
    their types, values the task takes), naming ``field.<option>`` (``field`` for an unknown task: the task
    field's error is the caller's to name). For a config's ``__post_init__``: the check at load."""
    from reasonpipe.config import build

    entry = _entry(name, "task")
    if entry is None:
        raise _unknown(name, "task")
    try:
        _check_known(name, entry[1], options)
        build(entry[1], options)
        make_task(name, **options)
    except InputError as e:
        raise InputError(e.message, field=f"{field}.{e.field}" if e.field else field) from None
    except (TypeError, ValueError) as e:
        raise InputError(f"task {name} does not take these options: {e}", field=field) from None


def completion_text(prompt: str, completion: str) -> str:
    """The whole trace a model wrote after ``prompt``, as the task's scorer reads it: the prompt without its BOS,
    then the completion. Every score of a sampled completion (rewards, evaluation) reads it through here."""
    return strip_bos(prompt) + completion


def score_completion(task: Any, problem: Any, prompt: str, completion: str) -> float:
    """The task's exact score (0..1) of ``completion`` sampled after ``prompt`` for ``problem``."""
    return float(task.score(problem, completion_text(prompt, completion)))


use_task_registry(get_task_class)  # a task class is a reasonpipe.traces.TaskFormat
