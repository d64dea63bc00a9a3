"""Verify every step of every trace in a file: reasonpipe JSONL, Stream-of-Search records, or plain text.

Formats (``auto`` picks by content):

- ``reasonpipe``: our JSONL records (``id``, ``task``, ``problem``, ``text``, ``steps``, ``meta``);
- ``sos``: Stream of Search's CountDown records (``nums``, ``target``, ``search_path``, ...), as one JSON
  array (their ``json.dump``) or one object a line;
- ``text``: traces as plain text, separated by blank lines; ``#`` lines are comments; the task is read
  from each trace's first line (``Current State:`` CountDown, ``START`` Sudoku);
- ``safe``: Safe's records (``{"answer", "correct", "steps": [{"step", "formal_statement", "proof", ...}]}``),
  whose steps carry their own Lean statements: verified with ``--backend lean`` only.

Backends: ``exact`` (the task's exact verifier), ``lean`` (each step stated and proved in Lean 4,
:mod:`reasonpipe.verifiers.lean`), ``exact+lean`` (exact verdicts, confirmed by Lean where Lean states the step). The Lean
backends check traces in chunks, so that one ``lean`` run covers the steps of many traces.

Streams the file (memory stays flat), writes per-trace verdicts atomically when asked, and returns a
summary: counts per verdict, valid and solved traces, and the first failing step of each failing trace.

Example::

    reasonpipe verify cd.jsonl --out verdicts.jsonl
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.jsonl import RecordReader, atomic_write, dumps, sniff
from reasonpipe.traces import Trace, TraceMeta
from reasonpipe.verifiers import get_verifier
from reasonpipe.verifiers.verdicts import TraceReport, Verdict

FORMATS = ("auto", "reasonpipe", "sos", "text", "safe")
BACKENDS = ("exact", "lean", "exact+lean")
LEAN_CHUNK_STEPS = 20_000  # steps formalized and sent to Lean together (several batches of --batch-size)
_TEXT_STARTS = {"Current State:": "countdown", "START": "sudoku"}


@dataclass
class VerifySummary:
    traces: int = 0
    steps: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Verdict.ALL, 0))
    valid: int = 0
    solved: int = 0
    skipped: int = 0
    skip_errors: list[str] = field(default_factory=list)
    failing: list[TraceReport] = field(default_factory=list)  # the first ``keep_failing`` failing traces
    failing_total: int = 0
    seconds: float = 0.0
    format: str = ""
    per_trace: list[tuple[int, int, bool, bool, int]] = field(default_factory=list)  # chars, steps, valid, solved, backtracks
    backend: str = "exact"
    lean_rows: list[tuple[str, str]] = field(default_factory=list)

    @property
    def all_hold(self) -> bool:
        return self.traces > 0 and self.valid == self.traces

    def rows(self) -> list[tuple[str, str]]:
        rows = [("format", self.format), ("backend", self.backend), ("traces", str(self.traces)),
                ("steps", str(self.steps))]
        rows += [(name, str(n)) for name, n in self.counts.items()]
        rows += [("valid traces (every step holds)", f"{self.valid}"), ("solved traces", f"{self.solved}"),
                 ("skipped bad records", str(self.skipped)), ("seconds", f"{self.seconds:.2f}"),
                 ("steps/s", f"{self.steps / max(self.seconds, 1e-9):,.0f}")]
        return rows + self.lean_rows


def detect_format(path: str, skip_bad: bool = False) -> str:
    """``text`` for plain text; for JSON, ``sos`` if the first record has ``search_path``, ``safe`` if its steps
    are objects (Safe's records), else ``reasonpipe``."""
    kind = sniff(path)
    if kind == "text":
        return "text"
    for _, record in RecordReader(path, skip_bad=skip_bad):
        if "search_path" in record and "text" not in record:
            return "sos"
        steps = record.get("steps")
        if "text" not in record and isinstance(steps, list) and steps and isinstance(steps[0], dict):
            return "safe"
        return "reasonpipe"
    raise InputError("no JSON object records found", path=path)


def _sos_trace(record: dict[str, Any]) -> Trace:
    from reasonpipe.tasks.countdown import CountdownTask

    path = record.get("search_path")
    if not isinstance(path, str):
        raise InputError("missing" if path is None else f"expected a string, got {type(path).__name__}",
                         field="search_path")
    problem = CountdownTask.problem_from_json({"nums": record.get("nums"), "target": record.get("target")}
                                              if "nums" in record and "target" in record else record, field="record")
    meta = TraceMeta(searcher=str(record.get("search_type", "sos")), nodes_expanded=0, backtracks=0,
                     solved="Goal Reached" in path)
    return Trace.from_text("countdown", path, problem=problem, meta=meta)


def _safe_trace(record: dict[str, Any]) -> Trace:
    """Safe's record: steps with their own Lean statements (task ``formal``)."""
    from reasonpipe.verifiers.lean.formalize import FormalStep

    steps = record.get("steps")
    if not isinstance(steps, list):
        raise InputError("missing" if steps is None else f"expected a list, got {type(steps).__name__}", field="steps")
    out = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            raise InputError(f"expected an object, got {type(step).__name__}", field=f"steps[{i}]")
        values = {}
        for name in ("step", "formal_statement", "proof"):
            v = step.get(name)
            if v is not None and not isinstance(v, str):
                raise InputError(f"expected a string, got {type(v).__name__}", field=f"steps[{i}].{name}")
            values[name] = v
        out.append(FormalStep(text=values["step"] or "", statement=values["formal_statement"], proof=values["proof"]))
    meta = TraceMeta(searcher="safe", nodes_expanded=0, backtracks=0, solved=bool(record.get("correct", False)))
    return Trace(task="formal", problem=None, steps=out, meta=meta)


def iter_traces(path: str, fmt: str = "auto", *, skip_bad: bool = False,
                summary: VerifySummary | None = None) -> Iterator[tuple[int, Trace]]:
    """(line, trace) for every trace in the file; bad records raise InputError or, skipped, are counted."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})", field="format")
    summary = summary if summary is not None else VerifySummary()
    fmt = detect_format(path, skip_bad) if fmt == "auto" else fmt
    summary.format = fmt
    if fmt == "text":
        yield from _iter_text(path, skip_bad, summary)
        return
    reader = RecordReader(path, skip_bad=skip_bad)
    for line, record in reader:
        try:
            if fmt == "sos":
                trace = _sos_trace(record)
                trace.id = str(record.get("id", f"{line}"))
            elif fmt == "safe":
                trace = _safe_trace(record)
                trace.id = str(record.get("id", f"{line}"))
            else:
                trace = Trace.from_record(record)
        except InputError as e:
            reader.reject(e.located(line=line))
            continue
        yield line, trace
    summary.skipped += reader.skipped
    summary.skip_errors.extend(reader.errors)


def _iter_text(path: str, skip_bad: bool, summary: VerifySummary) -> Iterator[tuple[int, Trace]]:
    def flush(start: int, lines: list[str]) -> Trace | None:
        first = lines[0]
        task = next((t for prefix, t in _TEXT_STARTS.items() if first.startswith(prefix)), None)
        if task is None:
            err = InputError(f"cannot tell the task of a trace starting {first[:40]!r} (expected a line starting "
                             f"{' or '.join(map(repr, _TEXT_STARTS))})", path=path, line=start)
            if not skip_bad:
                raise err
            summary.skipped += 1
            summary.skip_errors.append(str(err))
            return None
        trace = Trace.from_text(task, "\n".join(lines) + "\n", id=f"{start}")
        return trace

    block: list[str] = []
    start = 0
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise InputError("not UTF-8 text; is this a binary file?", path=path, line=line_no) from None
            if "\x00" in line:
                raise InputError("binary data (NUL bytes), expected UTF-8 text", path=path, line=line_no)
            if line.startswith("#"):
                continue
            if not line.strip():
                if block:
                    trace = flush(start, block)
                    if trace is not None:
                        yield start, trace
                    block = []
                continue
            if not block:
                start = line_no
            block.append(line)
    if block:
        trace = flush(start, block)
        if trace is not None:
            yield start, trace


def _exact_reports(traces: Iterator[tuple[int, Trace]],
                   plugin: str | None = None) -> Iterator[tuple[Trace, TraceReport]]:
    verifiers: dict[str, Any] = {}
    for line, trace in traces:
        if trace.task == "formal":
            raise InputError("these records carry their own Lean statements (Safe's format): verify them with "
                             "--backend lean", line=line)
        verifier = verifiers.get(trace.task)
        if verifier is None:
            verifier = verifiers[trace.task] = get_verifier(trace.task, plugin)
        yield trace, verifier.report(trace, line=line)


def _lean_reports(traces: Iterator[tuple[int, Trace]], verifier: Any, exact: bool) -> Iterator[tuple[Trace, TraceReport]]:
    """Traces in chunks of about LEAN_CHUNK_STEPS steps: one round of Lean batches covers a whole chunk."""
    chunk: list[tuple[int, Trace]] = []
    steps = 0
    for line, trace in traces:
        if exact and trace.task == "formal":
            raise InputError("Safe records have no exact verifier: use --backend lean", line=line)
        chunk.append((line, trace))
        steps += len(trace.steps)
        if steps >= LEAN_CHUNK_STEPS:
            yield from zip((t for _, t in chunk), verifier.report_many(chunk, exact=exact))
            chunk, steps = [], 0
    if chunk:
        yield from zip((t for _, t in chunk), verifier.report_many(chunk, exact=exact))


def verify_file(path: str, *, fmt: str = "auto", out: str | None = None, skip_bad: bool = False,
                keep_failing: int = 20, per_trace: bool = False, progress: Any = None, backend: str = "exact",
                lean: Any = None, verifier: str | None = None) -> VerifySummary:
    """Verify every trace in ``path``; write per-trace verdicts to ``out`` (JSONL) when given.

    ``backend``: exact | lean | exact+lean; ``lean``: a :class:`reasonpipe.verifiers.lean.LeanConfig` for the Lean ones;
    ``verifier``: a plug-in verifier (``module:attr``, exact backend) instead of each task's own.
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})", field="backend")
    if verifier and backend != "exact":
        raise InputError(f"a plug-in verifier runs as the exact backend, not {backend}", field="verifier")
    summary = VerifySummary(backend=backend)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:  # on any error the partial verdicts file is removed
        f = stack.enter_context(atomic_write(out)) if out else None
        traces = iter_traces(path, fmt, skip_bad=skip_bad, summary=summary)
        lean_verifier = None
        if backend == "exact":
            reports = _exact_reports(traces, verifier or None)
        else:
            from reasonpipe.verifiers.lean import LeanConfig, LeanVerifier

            lean_verifier = LeanVerifier(lean if lean is not None else LeanConfig())
            stack.callback(lean_verifier.close)
            reports = _lean_reports(traces, lean_verifier, exact=backend == "exact+lean")
        for trace, report in reports:
            summary.traces += 1
            summary.steps += report.steps
            for name, n in report.counts.items():
                summary.counts[name] += n
            summary.valid += report.valid
            summary.solved += report.solved
            if not report.valid:
                summary.failing_total += 1
                if len(summary.failing) < keep_failing:
                    summary.failing.append(report)
            if per_trace:
                chars = trace.meta.chars or len(trace.to_text())
                summary.per_trace.append((chars, report.steps, report.valid, report.solved, trace.meta.backtracks))
            if f is not None:
                f.write(dumps(report.to_json(with_steps=True)))
                f.write("\n")
            if progress is not None:
                progress(1)
        if summary.traces == 0:
            raise InputError("no traces in file" + (f" ({summary.skipped} bad records skipped)" if summary.skipped else ""),
                             path=path)
        if lean_verifier is not None:
            summary.lean_rows = lean_verifier.stats.rows()
    summary.seconds = time.perf_counter() - started
    return summary
