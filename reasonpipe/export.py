"""Traces for other trainers: a reasonpipe trace file as TRL's or verl's datasets.

Reads a trace JSONL file as ``reasonpipe gen`` writes it (records with ``id``, ``task``, ``problem``, ``text``,
``meta``; each validated as :meth:`reasonpipe.traces.Trace.from_record` does) and writes one of:

- ``prompt-completion``: TRL's standard prompt-completion rows ``{"prompt", "completion"}``, the text a
  pretrained model reads and writes (:class:`reasonpipe.textformat.TextFormat` with the model's tokenizer and the
  plain format): ``SFTTrainer`` trains on them as they are, the loss on the completion only;
- ``messages``: TRL's conversational language-modeling rows ``{"messages": [user, assistant]}`` (a system
  message first with ``system``), rendered by the model's own chat template at training time;
- ``verl``: verl's RL layout, one row per problem (repeated problems are dropped, counted): ``data_source``
  (``reasonpipe/<task>``), ``prompt`` (the chat messages), ``ability``, ``reward_model`` (``{"style": "rule",
  "ground_truth": the problem as JSON}``) and ``extra_info`` (split, index, id, task, layout, score). verl's
  ``custom_reward_function`` pointed at :func:`reasonpipe.rewards.compute_score` scores its rollouts with the
  task's exact scorer (``score: exact``) or the step verifier (``score: step``).

``layout`` is the text format's: ``trace`` (the completion is the rest of the trace) or ``answer`` (an
instruction after the problem; the completion is ``<think> trace </think> <answer> equation </answer>``, which
only a task with an answer form has: CountDown). A trace that claims no answer has no completion in the answer
layout: an error naming its line, or with ``skip_unanswered`` skipped and counted (verl rows need no completion
and keep it). The output is JSONL, or Parquet (pyarrow) when its name ends in ``.parquet``; it is written to a
temporary file renamed into place when complete, so a crash leaves nothing half-written.

Not done here: tokenizing (the trainer does it with the model's tokenizer), a chat-template rendering of the
prompt-completion rows (use ``messages`` for a chat model), or task options (records do not carry them; every
task here reads its problems without them).

Example::

    reasonpipe gen countdown --n 100 --numbers 3 --out cd.jsonl && reasonpipe export cd.jsonl --to verl --layout answer --out cd.parquet
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.jsonl import RecordReader, atomic_write, dumps
from reasonpipe.tasks import make_task
from reasonpipe.textformat import LAYOUTS, TextFormat
from reasonpipe.traces import Trace, task_format

TARGETS = ("prompt-completion", "messages", "verl")
SCORES = ("exact", "step")
DATA_SOURCE_PREFIX = "reasonpipe/"  # verl's data_source: reasonpipe/<task> (what compute_score reads back)
ABILITY = {"countdown": "math"}  # verl's ability column; every other task is "logic"
PARQUET_BATCH = 4096  # rows per Parquet row group write


@dataclass(frozen=True)
class ExportOptions:
    """What to write: ``to`` one of :data:`TARGETS`; the rest as in the module docstring."""

    to: str
    layout: str = "trace"
    system: str = ""
    split: str = "train"
    score: str = "exact"
    skip_unanswered: bool = False
    limit: int | None = None  # at most this many rows

    def __post_init__(self) -> None:
        for name, allowed in (("to", TARGETS), ("layout", LAYOUTS), ("score", SCORES)):
            if getattr(self, name) not in allowed:
                raise InputError(f"unknown {name} {getattr(self, name)!r} ({' | '.join(allowed)})", field=name)
        if self.system and self.to == "prompt-completion":
            raise InputError("prompt-completion rows have no system message (use --to messages or verl)",
                             field="system")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"expected a positive number, got {self.limit}", field="limit")
        if not self.split:
            raise InputError("expected a split name", field="split")


# -- the rows ---------------------------------------------------------------------------------------------------

@dataclass
class PromptCompletionRow:
    """TRL's standard prompt-completion example."""

    prompt: str
    completion: str


@dataclass
class MessagesRow:
    """TRL's conversational language-modeling example."""

    messages: list[dict[str, str]]


@dataclass
class VerlRow:
    """One problem in verl's RL dataset layout."""

    data_source: str
    prompt: list[dict[str, str]]
    ability: str
    reward_model: dict[str, str]
    extra_info: dict[str, Any]


def _messages_type(pa: Any) -> Any:
    return pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def parquet_schema(to: str) -> Any:
    """The Parquet schema of the rows of ``to`` (fixed, so that every file of a kind has the same columns)."""
    import pyarrow as pa

    if to == "prompt-completion":
        return pa.schema([("prompt", pa.string()), ("completion", pa.string())])
    if to == "messages":
        return pa.schema([("messages", _messages_type(pa))])
    extra = pa.struct([("split", pa.string()), ("index", pa.int64()), ("id", pa.string()), ("task", pa.string()),
                       ("layout", pa.string()), ("score", pa.string())])
    return pa.schema([("data_source", pa.string()), ("prompt", _messages_type(pa)), ("ability", pa.string()),
                      ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
                      ("extra_info", extra)])


# -- the summary ------------------------------------------------------------------------------------------------

@dataclass
class ExportSummary:
    out: str
    to: str
    layout: str
    container: str = "jsonl"  # jsonl | parquet
    traces: int = 0  # records read
    rows: int = 0  # rows written
    skipped_unanswered: int = 0
    duplicate_problems: int = 0
    tasks: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def table(self) -> list[tuple[str, str]]:
        return [("to", self.to), ("layout", self.layout), ("file format", self.container),
                ("traces read", str(self.traces)), ("rows written", str(self.rows)),
                ("skipped: no answer (answer layout)", str(self.skipped_unanswered)),
                ("skipped: repeated problem (verl)", str(self.duplicate_problems)),
                ("tasks", ", ".join(f"{t} {n}" for t, n in sorted(self.tasks.items()))),
                ("seconds", f"{self.seconds:.2f}")]


# -- reading and writing ----------------------------------------------------------------------------------------

def export_rows(path: str, options: ExportOptions, summary: ExportSummary | None = None) -> Iterator[Any]:
    """The rows (dataclasses above) for the traces in ``path``; bad records raise InputError naming file, line
    and field."""
    summary = summary if summary is not None else ExportSummary(out="", to=options.to, layout=options.layout)
    fmt = TextFormat(tokenizer="model", format="plain", layout=options.layout, system=options.system)
    tasks: dict[str, Any] = {}
    seen: set[str] = set()
    reader = RecordReader(path)
    for line, record in reader:
        if options.limit is not None and summary.rows >= options.limit:
            return
        summary.traces += 1
        try:
            trace = Trace.from_record(record)
            task = tasks.get(trace.task)
            if task is None:
                task = tasks[trace.task] = make_task(trace.task)
                fmt.check_task(task, field="task")
            row = _row(options, fmt, task, trace, record["text"], summary.rows, seen)
        except InputError as e:
            raise e.located(path=path, line=line) from None
        if row is None:
            if options.to == "verl":
                summary.duplicate_problems += 1
            else:
                summary.skipped_unanswered += 1
            continue
        summary.rows += 1
        summary.tasks[trace.task] = summary.tasks.get(trace.task, 0) + 1
        yield row
    if summary.traces == 0:
        raise InputError("no traces in file", path=path)


def _row(options: ExportOptions, fmt: TextFormat, task: Any, trace: Trace, text: str, index: int,
         seen: set[str]) -> Any:
    """One record's row; None when it is left out (a repeated problem for verl, a trace with no answer)."""
    user = fmt.user_text(task, trace.problem)
    if not text.startswith(task.prompt(trace.problem)):
        raise InputError("does not start with the problem's first line (the prompt): "
                         f"{task.prompt(trace.problem)[:60]!r}", field="text")
    problem_json = task_format(trace.task).problem_to_json(trace.problem)
    if options.to == "verl":
        key = trace.task + "\n" + json.dumps(problem_json, sort_keys=True)
        if key in seen:
            return None
        seen.add(key)
        return VerlRow(data_source=DATA_SOURCE_PREFIX + trace.task, prompt=fmt.messages(user),
                       ability=ABILITY.get(trace.task, "logic"),
                       reward_model={"style": "rule", "ground_truth": json.dumps(problem_json)},
                       extra_info={"split": options.split, "index": index, "id": trace.id, "task": trace.task,
                                   "layout": options.layout, "score": options.score})
    completion = fmt.completion(task, trace.problem, text)
    if completion is None:
        if options.skip_unanswered:
            return None
        raise InputError("the trace claims no answer, so the answer layout has no completion for it "
                         "(--skip-unanswered leaves such traces out)", field="text")
    if options.to == "prompt-completion":
        return PromptCompletionRow(prompt=user, completion=completion)
    return MessagesRow(messages=fmt.messages(user, completion))


def export_file(path: str, out: str, options: ExportOptions,
                progress: Callable[[int], None] | None = None) -> ExportSummary:
    """Write the traces in ``path`` to ``out`` (JSONL, or Parquet for ``*.parquet``) as ``options`` says;
    atomically: on any error nothing is left at ``out`` (an earlier file there stays as it was)."""
    parquet = out.endswith(".parquet")
    summary = ExportSummary(out=out, to=options.to, layout=options.layout, container="parquet" if parquet else "jsonl")
    started = time.perf_counter()
    rows = export_rows(path, options, summary)
    if progress is not None:
        rows = _counted(rows, progress)
    if parquet:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = parquet_schema(options.to)
        with atomic_write(out, "wb") as f:
            writer = pq.ParquetWriter(f, schema)
            try:
                batch: list[dict[str, Any]] = []
                for row in rows:
                    batch.append(asdict(row))
                    if len(batch) >= PARQUET_BATCH:
                        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                        batch = []
                if batch or summary.rows == 0:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            finally:
                writer.close()
    else:
        with atomic_write(out) as f:
            for row in rows:
                f.write(dumps(asdict(row)))
                f.write("\n")
    summary.seconds = time.perf_counter() - started
    return summary


def _counted(rows: Iterator[Any], progress: Callable[[int], None]) -> Iterator[Any]:
    for row in rows:
        yield row
        progress(1)
