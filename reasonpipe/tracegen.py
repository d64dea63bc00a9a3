"""Trace generation: problems (generated or the user's) -> searcher -> JSONL, in parallel, deterministically.

Problem ``i`` of a run with seed ``s`` draws from its own generator seeded by ``(s, i)``, so the output
is byte-identical whatever the number of workers. Workers return finished JSON lines in chunks; the
parent writes them in order to a temporary file that is renamed into place at the end. A searcher that
cannot write the asked-for trace for a generated problem (:class:`~reasonpipe.searchers.base.SearchFailed`) makes
that index draw again from the same generator; for the user's own problems it is an error naming the line
(or a skip with ``skip_bad``). An interrupted run resumes where it stopped (``--resume``), with the same
bytes as an uninterrupted one.

Example::

    reasonpipe gen countdown --n 1000 --searcher dfs --seed 1 --out cd.jsonl --workers 2
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import multiprocessing as mp
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from reasonpipe.errors import InputError
from reasonpipe.seeds import stream
from reasonpipe.jsonl import RecordReader, atomic_write, dumps, sniff
from reasonpipe.tasks import get_task_class, make_task
from reasonpipe.tokenizer import TaskTokenizer
from reasonpipe.searchers import SearchFailed, SearchOptions, get_searcher

MAX_REDRAWS = 1000


@dataclass
class GenRequest:
    """Everything that decides the output file's bytes (``workers``, ``chunk``, ``backend`` and ``max_restarts``
    do not)."""

    task: str
    searcher: str
    out: str
    n: int | None = None  # None with ``problems`` means all of them
    seed: int = 0
    workers: int = 1
    task_options: dict[str, Any] = field(default_factory=dict)
    search: SearchOptions = field(default_factory=SearchOptions)
    problems: str | None = None  # the user's problems file instead of generated ones
    skip_bad: bool = False
    steps: bool = False  # also write each trace's typed steps (see reasonpipe.traces)
    chunk: int = 256
    backend: str = "process"  # process: a local process pool; ray: Ray actors (joins a running Ray, or starts one)
    max_restarts: int = 3  # ray: times a dead worker is restarted (its unfinished chunks rerun) before the run fails


@dataclass
class GenSummary:
    traces: int = 0
    solved: int = 0
    chars: int = 0
    tokens: int = 0
    backtracks: int = 0
    nodes_expanded: int = 0
    redraws: int = 0
    skipped: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    ray_nodes: dict[str, int] = field(default_factory=dict)  # backend ray: Ray node id -> chunks generated there

    def add(self, other: "GenSummary") -> None:
        for name in ("traces", "solved", "chars", "tokens", "backtracks", "nodes_expanded", "redraws", "skipped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for node, chunks in other.ray_nodes.items():
            self.ray_nodes[node] = self.ray_nodes.get(node, 0) + chunks
        self.errors.extend(other.errors[: max(0, 20 - len(self.errors))])

    def rows(self) -> list[tuple[str, str]]:
        n = max(self.traces, 1)
        return [("traces", f"{self.traces}"), ("solved", f"{self.solved} ({self.solved / n:.1%})"),
                ("mean chars", f"{self.chars / n:.1f}"), ("mean tokens", f"{self.tokens / n:.1f}"),
                ("mean backtracks", f"{self.backtracks / n:.2f}"), ("mean nodes expanded", f"{self.nodes_expanded / n:.1f}"),
                ("redraws", f"{self.redraws}"), ("skipped (bad input)", f"{self.skipped}"),
                ("seconds", f"{self.seconds:.2f}"), ("traces/s", f"{self.traces / max(self.seconds, 1e-9):.0f}")]


def problem_rng(seed: int, index: int) -> random.Random:
    """The generator of problem ``index`` in a run seeded ``seed`` (stable across processes and runs)."""
    return stream("reasonpipe", seed, index)


class _Maker:
    """Per-process state: the task, the searcher and the tokenizer, built once."""

    def __init__(self, request: GenRequest) -> None:
        self.request = request
        self.task = make_task(request.task, **request.task_options)
        self.search = get_searcher(request.task, request.searcher)
        self.tokenizer = TaskTokenizer.for_task(request.task)

    def _line(self, trace, summary: GenSummary) -> str:
        trace.task = self.request.task  # as the request names it (a plug-in's module:Class), so the record resolves
        text = trace.to_text()
        trace.meta.chars = len(text)
        trace.meta.tokens = self.tokenizer.count(text)
        summary.traces += 1
        summary.solved += trace.meta.solved
        summary.chars += trace.meta.chars
        summary.tokens += trace.meta.tokens
        summary.backtracks += trace.meta.backtracks
        summary.nodes_expanded += trace.meta.nodes_expanded
        return dumps(trace.to_record(text, steps=self.request.steps))

    def generated(self, start: int, stop: int) -> tuple[list[str], GenSummary]:
        r = self.request
        out, summary = [], GenSummary()
        for index in range(start, stop):
            rng = problem_rng(r.seed, index)
            for attempt in range(MAX_REDRAWS):
                problem = self.task.generate(rng)
                try:
                    trace = self.search(self.task, problem, r.search, rng)
                    break
                except SearchFailed as e:
                    summary.redraws += 1
                    last = e
            else:
                raise InputError(f"no problem in {MAX_REDRAWS} draws admits this trace ({last}); "
                                 f"change the task or searcher options", field="searcher")
            trace.id = f"{r.task}-{r.seed}-{index}"
            out.append(self._line(trace, summary))
        return out, summary

    def given(self, items: list[tuple[int, int, str, Any]]) -> tuple[list[str], GenSummary]:
        """``items``: (index, line in the problems file, id, problem)."""
        r = self.request
        out, summary = [], GenSummary()
        for index, line, pid, problem in items:
            try:
                trace = self.search(self.task, problem, r.search, problem_rng(r.seed, index))
            except SearchFailed as e:
                err = InputError(f"searcher {r.searcher}: {e}", path=r.problems, line=line, field="problem")
                if not r.skip_bad:
                    raise err from None
                summary.skipped += 1
                summary.errors.append(str(err))
                continue
            trace.id = pid
            out.append(self._line(trace, summary))
        return out, summary


_MAKER: _Maker | None = None  # one per worker process, set by the pool initializer


def _init_worker(request: GenRequest) -> None:
    global _MAKER
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _MAKER = _Maker(request)


def _run_generated(span: tuple[int, int]) -> tuple[list[str], GenSummary]:
    return _MAKER.generated(*span)


def _run_given(items: list) -> tuple[list[str], GenSummary]:
    return _MAKER.given(items)


def read_problems(path: str, task: str, *, skip_bad: bool = False,
                  counter: GenSummary | None = None) -> Iterator[tuple[int, str, Any]]:
    """The user's problems: (line, id, problem) from JSONL / a JSON array (records with a ``problem`` field,
    or the problem's own fields, e.g. Stream of Search's ``nums``/``target``) or from plain lines
    (CountDown ``n1,n2,...;target``; Sudoku 81 characters, or 36 / 16 for a 6x6 / 4x4 board; blank lines and
    ``#`` comments skipped)."""
    cls = get_task_class(task)
    counter = counter if counter is not None else GenSummary()

    def bad(err: InputError) -> None:
        if not skip_bad:
            raise err
        counter.skipped += 1
        if len(counter.errors) < 20:
            counter.errors.append(str(err))

    if sniff(path) == "text":
        with open(path, "rb") as f:
            for line_no, raw in enumerate(f, 1):
                try:
                    text = raw.decode("utf-8").strip()
                    if not text or text.startswith("#"):
                        continue
                    yield line_no, f"{os.path.basename(path)}:{line_no}", cls.problem_from_line(text)
                except UnicodeDecodeError:
                    bad(InputError("not UTF-8 text; is this a binary file?", path=path, line=line_no))
                except InputError as e:
                    bad(e.located(path=path, line=line_no))
        return
    reader = RecordReader(path, skip_bad=skip_bad)
    for line_no, record in reader:
        try:
            if "task" in record and record["task"] != task:
                raise InputError(f"record is for task {record['task']!r}, not {task!r}", field="task")
            obj, name = (record["problem"], "problem") if "problem" in record else (record, "")
            problem = cls.problem_from_json(obj, field=name or "record")
        except InputError as e:
            reader.reject(e.located(line=line_no))
            continue
        rid = record.get("id")
        yield line_no, str(rid) if isinstance(rid, (str, int)) else f"{os.path.basename(path)}:{line_no}", problem
    counter.skipped += reader.skipped
    counter.errors.extend(reader.errors[: max(0, 20 - len(counter.errors))])


def _chunks(request: GenRequest, counter: GenSummary, start: int) -> Iterator[tuple[str, Any, int]]:
    """(kind, work, number of problem indices it covers), from problem index ``start`` on."""
    if request.problems is None:
        for first in range(start, request.n, request.chunk):
            last = min(first + request.chunk, request.n)
            yield "generated", (first, last), last - first
        return
    batch = []
    problems = read_problems(request.problems, request.task, skip_bad=request.skip_bad, counter=counter)
    for index, (line, pid, problem) in enumerate(problems):
        if request.n is not None and index >= request.n:
            break
        if index < start:
            continue
        batch.append((index, line, pid, problem))
        if len(batch) == request.chunk:
            yield "given", batch, len(batch)
            batch = []
    if batch:
        yield "given", batch, len(batch)


def _ordered(submit: Any, fetch: Any, request: GenRequest, counter: GenSummary,
             start: int) -> Iterator[tuple[list[str], GenSummary, int]]:
    """Chunks submitted in input order and yielded in that order, at most 4 per worker in flight."""
    pending: collections.deque = collections.deque()
    for i, (kind, arg, size) in enumerate(_chunks(request, counter, start)):
        pending.append((submit(i, kind, arg), size))
        if len(pending) >= 4 * request.workers:
            handle, size = pending.popleft()
            yield *fetch(handle), size
    while pending:
        handle, size = pending.popleft()
        yield *fetch(handle), size


class _RayMaker:
    """A Ray actor holding one :class:`_Maker` (task, searcher and tokenizer built once per worker)."""

    def __init__(self, request: GenRequest) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        self.maker = _Maker(request)

    def run(self, kind: str, arg: Any) -> tuple[list[str], GenSummary]:
        import ray

        lines, part = self.maker.generated(*arg) if kind == "generated" else self.maker.given(arg)
        part.ray_nodes = {ray.get_runtime_context().get_node_id(): 1}  # where it ran (GenSummary.ray_nodes)
        return lines, part


def _ray_results(request: GenRequest, counter: GenSummary, start: int) -> Iterator[tuple[list[str], GenSummary, int]]:
    """Chunks as Ray actor calls, round-robin over ``workers`` actors. Output bytes do not depend on the
    number of workers: every problem's generator is seeded by (seed, index) alone. Joins a running Ray (e.g.
    inside a submitted job, or a cluster named by RAY_ADDRESS); otherwise starts a local one for the call."""
    import ray

    from reasonpipe.localray import ray_session

    with ray_session(num_cpus=max(request.workers, 1)):
        # A dead actor (SIGKILL, OOM, a lost node) is restarted and its unfinished calls run again: a chunk is a
        # pure function of (request, indices) and chunks are written in order, so none is lost or written twice.
        # SPREAD: on a cluster, the actors go to different nodes where they can (one node's CPUs are not filled first)
        actor = ray.remote(num_cpus=1, max_restarts=request.max_restarts, max_task_retries=request.max_restarts,
                           scheduling_strategy="SPREAD")(_RayMaker)
        actors = [actor.remote(request) for _ in range(request.workers)]
        yield from _ordered(lambda i, kind, arg: actors[i % len(actors)].run.remote(kind, arg), ray.get,
                            request, counter, start)


def _results(request: GenRequest, counter: GenSummary, start: int) -> Iterator[tuple[list[str], GenSummary, int]]:
    """Chunks of finished lines, in input order; at most a few chunks per worker in flight."""
    if request.backend == "ray":
        yield from _ray_results(request, counter, start)
        return
    if request.workers <= 1:
        maker = _Maker(request)
        for kind, arg, size in _chunks(request, counter, start):
            lines, part = maker.generated(*arg) if kind == "generated" else maker.given(arg)
            yield lines, part, size
        return
    ctx = mp.get_context("fork")
    with ctx.Pool(request.workers, initializer=_init_worker, initargs=(request,)) as pool:
        def submit(i: int, kind: str, arg: Any):
            return pool.apply_async(_run_generated if kind == "generated" else _run_given, (arg,))

        yield from _ordered(submit, lambda result: result.get(), request, counter, start)


def validate(request: GenRequest) -> None:
    """Fail early, before any work, on options that cannot work."""
    make_task(request.task, **request.task_options)
    get_searcher(request.task, request.searcher)
    request.search.validate()
    if request.problems is None and (request.n is None or request.n < 0):
        raise InputError("--n is required (>= 0) when problems are generated", field="n")
    if request.workers < 1:
        raise InputError(f"must be >= 1, got {request.workers}", field="workers")
    if request.max_restarts < -1:
        raise InputError(f"must be -1 (no limit) or >= 0, got {request.max_restarts}", field="max_restarts")
    if request.backend not in ("process", "ray"):
        raise InputError(f"unknown backend {request.backend!r} (process | ray)", field="backend")


def fingerprint(request: GenRequest) -> dict[str, Any]:
    """What decides the output's bytes: the request without ``out``, ``workers``, ``chunk``, ``backend`` and
    ``max_restarts``."""
    d = dataclasses.asdict(request)
    for name in ("out", "workers", "chunk", "backend", "max_restarts"):
        d.pop(name)
    return d


class _Checkpoint:
    """The unfinished output ``<out>.partial`` and its state ``<out>.partial.json`` (problems done, bytes
    written, running totals), saved at most every ``every`` seconds after an fsync of the data."""

    def __init__(self, request: GenRequest, every: float = 2.0) -> None:
        self.path = request.out + ".partial"
        self.state_path = self.path + ".json"
        self.fingerprint = fingerprint(request)
        self.every = every
        self.saved_at = time.monotonic()

    def load(self) -> tuple[int, int, GenSummary] | None:
        """(problems done, bytes, totals) of a resumable run of the same request, else None."""
        if not (os.path.exists(self.path) and os.path.exists(self.state_path)):
            return None
        with open(self.state_path, encoding="utf-8") as f:
            state = json.load(f)
        if state.get("request") != json.loads(json.dumps(self.fingerprint)):
            raise InputError(f"the unfinished run in {self.path} was made with other options; remove it or run "
                             f"without --resume", field="resume")
        totals = {k: v for k, v in state["summary"].items() if k != "errors"}
        return state["done"], state["bytes"], GenSummary(**totals)

    def save(self, f: IO[bytes], done: int, size: int, summary: GenSummary, force: bool = False) -> None:
        """Record that the first ``size`` bytes hold the traces of the first ``done`` problems."""
        if not force and time.monotonic() - self.saved_at < self.every:
            return
        f.flush()
        os.fsync(f.fileno())
        state = {"request": self.fingerprint, "done": done, "bytes": size, "summary": dataclasses.asdict(summary)}
        with atomic_write(self.state_path) as g:
            json.dump(state, g)
        self.saved_at = time.monotonic()

    def finish(self, f: IO[bytes], out: str) -> None:
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(self.path, out)
        self.discard()

    def discard(self) -> None:
        for path in (self.path, self.state_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def generate(request: GenRequest, progress: Any = None, resume: bool = False) -> GenSummary:
    """Write the traces of ``request`` to ``request.out``; ``progress(k)`` is told of each chunk.

    The output grows in ``<out>.partial`` and is renamed to ``out`` when complete. Interrupted (Ctrl-C,
    SIGKILL, a crash), the partial file and its state stay; ``resume=True`` continues where they end and
    the result is byte-identical to an uninterrupted run. Bad input (:class:`InputError`) removes them.
    """
    validate(request)
    checkpoint = _Checkpoint(request)
    state = checkpoint.load() if resume else None
    done, size, summary = state if state else (0, 0, GenSummary())
    reading = GenSummary()  # bad records of the problems file, counted on this pass over the whole file
    seconds_before = summary.seconds
    started = time.perf_counter()
    os.makedirs(os.path.dirname(os.path.abspath(request.out)), exist_ok=True)
    f = open(checkpoint.path, "r+b" if state else "wb")
    try:
        f.truncate(size)
        f.seek(size)
        if progress is not None and done:
            progress(done)
        for lines, part, consumed in _results(request, reading, done):
            data = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
            # one statement: CPython does not deliver Ctrl-C between the two stores, so done and size agree
            size, done = size + f.write(data), done + consumed
            summary.add(part)
            summary.seconds = seconds_before + time.perf_counter() - started
            checkpoint.save(f, done, size, summary)
            if progress is not None:
                progress(consumed)
    except (KeyboardInterrupt, SystemExit):  # a chunk cut mid-write lies beyond ``size``: resume truncates it
        checkpoint.save(f, done, size, summary, force=True)
        f.close()
        raise
    except InputError:  # bad input: nothing worth resuming
        f.close()
        checkpoint.discard()
        raise
    except BaseException:  # a crash (a worker lost for good, a bug): what was written stays resumable
        checkpoint.save(f, done, size, summary, force=True)
        f.close()
        raise
    checkpoint.finish(f, request.out)
    summary.skipped += reading.skipped
    summary.errors.extend(reading.errors[: max(0, 20 - len(summary.errors))])
    return summary
