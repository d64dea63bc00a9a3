"""The trace data model: a problem, a typed list of steps in the task's grammar, and what the search did.

A :class:`Trace` renders to the task's text grammar with :meth:`Trace.to_text` and parses back with
:meth:`Trace.from_text`; the two are inverse for every trace a searcher writes (lines outside the
grammar parse to an ``Unparsed`` step, so parsing never fails and a verifier can flag them). On disk a
trace is one JSONL record with ``id``, ``task``, ``problem``, ``text`` and ``meta``, plus ``steps`` (each
step as ``[kind, ...fields]``) when asked for: ``steps`` is exactly what parsing ``text`` gives, and
writing it made files 1.6x larger (19.5 vs 12.1 MB) and ``reasonpipe verify`` 1.4x slower (0.83 vs 0.59 s)
for 1,000 CountDown DFS traces, so it is opt-in (``reasonpipe gen --steps``); when present it is checked
against ``text``.

This package sits below the tasks (:mod:`reasonpipe.tasks`) and never imports them. Rendering needs no task
(every grammar writes one line per step, :func:`reasonpipe.traces.lines.to_text`), but parsing by task name
and the JSONL record do: the grammar to parse with, the problem a trace's first line states, and the
problem's JSON. A :class:`TaskFormat` gives those, and the task registry is plugged in from above:
importing :mod:`reasonpipe.tasks` (which importing any task, searcher or verifier does) calls
:func:`use_task_registry` with its ``get_task_class``, since a task class is a ``TaskFormat``. Tasks thus
register in one place, reasoning-gym tasks stay imported lazily by the registry, and the dependency points
one way (tasks -> traces). Parsing with a grammar module directly (``reasonpipe.traces.countdown.parse``)
needs no registry.

Example::

    python -c "import reasonpipe.tasks; from reasonpipe.traces import read_traces; print(next(iter(read_traces('cd.jsonl'))).to_text())"
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from reasonpipe.errors import InputError
from reasonpipe.jsonl import RecordReader
from reasonpipe.traces.lines import to_text as _lines_to_text


class TaskFormat(Protocol):
    """What a :class:`Trace` needs of its task to parse text and read and write records (a task class is one).

    ``grammar`` is the trace grammar module (``parse(text) -> steps``). A task whose trace states its
    problem in full also has ``problem_of(steps)``: the problem the first line states, or None; one that
    does not (reasoning-gym's, regenerated from a seed) leaves it out, and its traces parsed without a
    problem have none.
    """

    grammar: Any

    @staticmethod
    def problem_to_json(problem: Any) -> dict[str, Any]: ...

    @staticmethod
    def problem_from_json(obj: Any, field: str = "problem") -> Any: ...


_task_registry: Callable[..., TaskFormat] | None = None


def use_task_registry(lookup: Callable[..., TaskFormat]) -> None:
    """Resolve task names with ``lookup(name, field=...)`` (which raises InputError for an unknown name).

    :mod:`reasonpipe.tasks` installs its ``get_task_class`` here when imported; see the module docstring.
    """
    global _task_registry
    _task_registry = lookup


def task_format(task: Any, *, field: str | None = None) -> TaskFormat:
    """The :class:`TaskFormat` registered as ``task``; InputError naming ``field`` when there is none."""
    if _task_registry is None:
        raise RuntimeError(f"no task registry to look up task {task!r}: import reasonpipe.tasks first "
                           "(importing any task, searcher or verifier does)")
    return _task_registry(task, field=field)


@dataclass
class TraceMeta:
    """What the searcher did to write the trace."""

    searcher: str
    nodes_expanded: int
    backtracks: int
    solved: bool
    chars: int = 0
    tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"searcher": self.searcher, "nodes_expanded": self.nodes_expanded, "backtracks": self.backtracks,
                "solved": self.solved, "chars": self.chars, "tokens": self.tokens, "extra": dict(self.extra)}

    @classmethod
    def from_json(cls, obj: Any) -> "TraceMeta":
        if not isinstance(obj, dict):
            raise InputError(f"expected an object, got {type(obj).__name__}", field="meta")
        kinds = {"searcher": str, "nodes_expanded": int, "backtracks": int, "solved": bool,
                 "chars": int, "tokens": int, "extra": dict}
        values = {}
        for name, kind in kinds.items():
            if name not in obj:
                if name in ("searcher", "nodes_expanded", "backtracks", "solved"):
                    raise InputError("missing", field=f"meta.{name}")
                continue
            value = obj[name]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise InputError(f"expected {kind.__name__}, got {type(value).__name__}", field=f"meta.{name}")
            values[name] = value
        return cls(**values)


@dataclass
class Trace:
    """One search trace: ``steps`` in the grammar of ``task`` for ``problem``."""

    task: str
    problem: Any
    steps: list
    meta: TraceMeta
    id: str = ""

    def to_text(self) -> str:
        return _lines_to_text(self.steps)  # the same for every grammar: one line per step

    @classmethod
    def from_text(cls, task: str, text: str, *, problem: Any = None, meta: TraceMeta | None = None,
                  id: str = "") -> "Trace":
        """Parse ``text`` in the task's grammar; the problem defaults to the one its first line states."""
        fmt = task_format(task)
        steps = fmt.grammar.parse(text)
        if problem is None:
            problem_of = getattr(fmt, "problem_of", None)  # optional, see TaskFormat
            problem = problem_of(steps) if problem_of is not None else None
        return cls(task=task, problem=problem, steps=steps,
                   meta=meta or TraceMeta(searcher="unknown", nodes_expanded=0, backtracks=0, solved=False), id=id)

    def to_record(self, text: str | None = None, *, steps: bool = False) -> dict[str, Any]:
        """The JSONL record; ``text`` if already rendered; ``steps`` adds the typed steps as JSON."""
        record = {
            "id": self.id,
            "task": self.task,
            "problem": task_format(self.task).problem_to_json(self.problem),
            "text": self.to_text() if text is None else text,
        }
        if steps:
            record["steps"] = [s.to_json() for s in self.steps]
        record["meta"] = self.meta.to_json()
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Trace":
        """Validate and load one reasonpipe record; raises InputError naming the bad field.

        The ``text`` field is authoritative (it is what models read and write); ``steps``, when
        present, must agree with it.
        """
        task = _field(record, "task", str)
        task_cls = task_format(task, field="task")
        text = _field(record, "text", str)
        problem = task_cls.problem_from_json(_field(record, "problem", object), field="problem")
        meta = TraceMeta.from_json(_field(record, "meta", dict)) if "meta" in record else None
        rid = record.get("id", "")
        if not isinstance(rid, (str, int)) or isinstance(rid, bool):
            raise InputError(f"expected a string, got {type(rid).__name__}", field="id")
        trace = cls.from_text(task, text, problem=problem, meta=meta, id=str(rid))
        if "steps" in record:
            steps = _field(record, "steps", list)
            if len(steps) != len(trace.steps) or any(s.to_json() != j for s, j in zip(trace.steps, steps)):
                bad = next((i for i, (s, j) in enumerate(zip(trace.steps, steps)) if s.to_json() != j),
                           min(len(steps), len(trace.steps)))
                raise InputError(f"disagrees with 'text' at step {bad + 1}", field=f"steps[{bad}]")
        return trace


def _field(record: dict[str, Any], name: str, kind: type) -> Any:
    if name not in record:
        raise InputError("missing", field=name)
    value = record[name]
    if kind is not object and not isinstance(value, kind):
        raise InputError(f"expected {kind.__name__}, got {type(value).__name__}", field=name)
    return value


def grammar_of(task: str):
    """The text grammar (parse / to_text) of a registered task."""
    return task_format(task).grammar


def read_traces(path: str, *, skip_bad: bool = False) -> Iterator[Trace]:
    """Stream traces from a reasonpipe JSONL file, validating each record."""
    reader = RecordReader(path, skip_bad=skip_bad)
    for line, record in reader:
        try:
            yield Trace.from_record(record)
        except InputError as e:
            reader.reject(e.located(line=line))
