"""Ask Lean whether declarations check: a batch-file backend and a REPL backend, one interface.

Both take :class:`Attempt` s (a declaration named ``step``, already through the guard, and where its proof
starts) and return one :class:`Outcome` each:

- ``ok``: no error, and ``#print axioms`` lists only Lean's standard axioms;
- ``statement``: Lean rejects the statement itself (the error lies before the proof): not formalizable;
- ``proof``: the proof fails, or it leans on ``sorryAx`` / ``Lean.ofReduceBool`` / an added axiom;
- ``error``: Lean itself failed (timeout, crash, out of memory, no report) — never read as a refutation.

**File mode** writes many declarations into one file, each in its own namespace (``namespace S17 ... end
S17`` then ``#print axioms S17.step``), runs ``lean`` once, and maps each diagnostic back to its declaration
by line. About 20x cheaper than a process per declaration (3 ms against 76 ms per small ``decide`` theorem,
measured by the issue's author with a real Lean). A batch that times out or crashes is split in halves and
retried, so one pathological step costs only itself.

**REPL mode** keeps one leanprover-community/repl process per job: the header is elaborated once, and each
declaration is sent as ``{"cmd": ..., "env": header_env}``, so names never clash.

Both run Lean through :mod:`verifiers.lean.sandbox` (temporary directory, wall-clock timeout, memory limit,
scrubbed environment, bubblewrap where installed).

Example::

    python -c "from verifiers.lean.backends import FileBackend; print(FileBackend().version())"
"""

from __future__ import annotations

import bisect
import math
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from verifiers.lean.diagnostics import Diagnostic, axioms_in, parse_output, unsound_axioms
from verifiers.lean.sandbox import Limits, find_executable, run_limited, sandbox_argv, scrubbed_env

OK, STATEMENT, PROOF, ERROR = "ok", "statement", "proof", "error"
FILE_NAME = "Steps.lean"
MAX_BATCH = 1000


@dataclass(frozen=True)
class Attempt:
    """One declaration ``theorem step ... := proof`` (guarded), and the line/column where its proof starts."""

    text: str
    proof_line: int  # 0-based line within ``text``
    proof_column: int

    @property
    def lines(self) -> int:
        return self.text.count("\n") + 1


@dataclass(frozen=True)
class Outcome:
    status: str        # ok | statement | proof | error
    message: str = ""
    axioms: tuple[str, ...] = ()


def classify(attempt: Attempt, diags: list[tuple[int, int, Diagnostic]], axioms: tuple[str, ...] | None) -> Outcome:
    """``diags``: (line within the attempt, column, diagnostic); ``axioms`` None when Lean printed none."""
    errors = [(line, col, d) for line, col, d in diags if d.severity == "error"]
    in_statement = [d for line, col, d in errors if (line, col) < (attempt.proof_line, attempt.proof_column)]
    if in_statement:
        return Outcome(STATEMENT, in_statement[0].text)
    if errors:
        return Outcome(PROOF, errors[0][2].text)
    if axioms is None:
        return Outcome(ERROR, "Lean printed no axioms report for the declaration")
    bad = unsound_axioms(axioms)
    if bad:
        return Outcome(PROOF, f"the proof uses {', '.join(bad)}", axioms)
    return Outcome(OK, "", axioms)


def assign(diags: Sequence[Diagnostic], spans: Sequence[tuple[int, int]]) -> list[list[tuple[int, int, Diagnostic]]]:
    """Each diagnostic to the declaration whose (first, last) 1-based line span holds it, as (line within the
    declaration, 0-based; column; diagnostic). Diagnostics outside every span are dropped."""
    per: list[list[tuple[int, int, Diagnostic]]] = [[] for _ in spans]
    starts = [s for s, _ in spans]
    for d in diags:
        k = bisect.bisect_right(starts, d.line) - 1
        if k >= 0 and d.line <= spans[k][1]:
            per[k].append((d.line - spans[k][0], d.column, d))
    return per


class FileBackend:
    """Many declarations per ``lean`` run; ``jobs`` runs in parallel."""

    def __init__(self, lean: str = "lean", header: str = "", *, project: str | None = None,
                 limits: Limits = Limits(), jobs: int = 1, batch_size: int = MAX_BATCH) -> None:
        if jobs < 1 or batch_size < 1:
            raise ValueError(f"jobs and batch_size must be >= 1, got {jobs}, {batch_size}")
        self.lean = lean
        self.header = header.strip()
        self.project = project
        self.limits = limits
        self.jobs = jobs
        self.batch_size = batch_size
        self.runs = 0  # lean processes started (for reports and tests)

    def _argv(self, path: str) -> list[str]:
        if self.project:  # `lake env` puts the project's packages (e.g. Mathlib) on LEAN_PATH
            return [find_executable("lake"), "-d", self.project, "env", self.lean, path]
        return [find_executable(self.lean), path]

    def version(self) -> str:
        """``lean --version`` (part of every cache key: another Lean may judge differently)."""
        with tempfile.TemporaryDirectory(prefix="reasonpipe-lean-") as tmp:
            argv = self._argv("--version")
            res = run_limited(sandbox_argv(argv, tmp, use_bwrap=self.limits.use_bwrap), cwd=tmp, limits=self.limits,
                              env=scrubbed_env())
        if res.returncode != 0:
            raise RuntimeError(f"`{self.lean} --version` failed: {res.why()}")
        return res.stdout.strip()

    def check(self, attempts: Sequence[Attempt]) -> list[Outcome]:
        if not attempts:
            return []
        # balanced batches, at most batch_size each, at least one per job
        n = max(self.jobs, math.ceil(len(attempts) / self.batch_size))
        size = math.ceil(len(attempts) / n)
        batches = [list(attempts[i:i + size]) for i in range(0, len(attempts), size)]
        if self.jobs == 1 or len(batches) == 1:
            results = [self._check_batch(b) for b in batches]
        else:
            with ThreadPoolExecutor(self.jobs) as pool:  # lean runs in subprocesses: threads suffice
                results = list(pool.map(self._check_batch, batches))
        return [o for r in results for o in r]

    def render(self, attempts: Sequence[Attempt]) -> tuple[str, list[tuple[int, int]]]:
        """The batch file, and each attempt's (first, last) 1-based line of its declaration block."""
        lines = self.header.splitlines() if self.header else []
        spans: list[tuple[int, int]] = []
        for k, a in enumerate(attempts):
            lines.append(f"namespace S{k}")
            first = len(lines) + 1
            lines.extend(a.text.split("\n"))
            spans.append((first, len(lines) + 2))  # the `end` and `#print axioms` lines belong to it too
            lines.append(f"end S{k}")
            lines.append(f"#print axioms S{k}.step")
        return "\n".join(lines) + "\n", spans

    def _check_batch(self, attempts: list[Attempt]) -> list[Outcome]:
        text, spans = self.render(attempts)
        header_lines = len(self.header.splitlines()) if self.header else 0
        # a batch of n small steps gets the per-step timeout once per 50 steps (3 ms each with a real Lean)
        limits = Limits(timeout_s=self.limits.timeout_s * max(1, math.ceil(len(attempts) / 50)),
                        memory_mb=self.limits.memory_mb, max_output_bytes=self.limits.max_output_bytes,
                        use_bwrap=self.limits.use_bwrap)
        with tempfile.TemporaryDirectory(prefix="reasonpipe-lean-") as tmp:
            path = os.path.join(tmp, FILE_NAME)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            argv = sandbox_argv(self._argv(FILE_NAME), tmp, use_bwrap=self.limits.use_bwrap)
            res = run_limited(argv, cwd=tmp, limits=limits, env=scrubbed_env())
            self.runs += 1
        if res.timed_out or res.crashed:
            if len(attempts) > 1:  # split and retry: one pathological step must not sink the others
                half = len(attempts) // 2
                return self._check_batch(attempts[:half]) + self._check_batch(attempts[half:])
            return [Outcome(ERROR, f"lean {res.why()}")]
        diags, axioms = parse_output(res.stdout + "\n" + res.stderr, FILE_NAME)
        header_errors = [d for d in diags if d.line <= header_lines and d.severity == "error"]
        if header_errors:
            return [Outcome(ERROR, f"the header failed: {header_errors[0]}")] * len(attempts)
        per = assign(diags, spans)
        if res.returncode not in (0, 1) and not any(per):
            return [Outcome(ERROR, f"lean {res.why()}")] * len(attempts)
        return [classify(a, per[k], axioms.get(f"S{k}.step")) for k, a in enumerate(attempts)]


class ReplBackend:
    """One REPL process per job; the header's environment is built once per process."""

    def __init__(self, repl: str = "repl", header: str = "", *, project: str | None = None,
                 limits: Limits = Limits(), jobs: int = 1) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        self.repl = repl
        self.header = header.strip()
        self.project = project
        self.limits = limits
        self.jobs = jobs
        self._sessions: list = []

    def _argv(self) -> list[str]:
        if self.project:  # `lake -d PROJECT env` from the session's own temporary directory
            return [find_executable("lake"), "-d", self.project, "env", find_executable(self.repl)]
        return [find_executable(self.repl)]

    def _session(self, k: int):
        from verifiers.lean.repl import ReplSession

        while len(self._sessions) <= k:
            self._sessions.append(ReplSession(self._argv(), self.header, limits=self.limits, env=scrubbed_env()))
        return self._sessions[k]

    def version(self) -> str:
        return f"repl:{find_executable(self.repl)}"

    def check_one(self, session, attempt: Attempt) -> Outcome:
        from verifiers.lean.repl import ReplError

        code = attempt.text + "\n#print axioms step"
        try:
            resp = session.check(code)
        except ReplError as e:
            return Outcome(ERROR, f"repl: {type(e).__name__}: {e}")
        axioms = None
        diags = []
        for m in resp.messages:
            found = axioms_in(m.data) if m.severity == "info" else None
            if found is not None and found[0] in ("step", "_root_.step"):
                axioms = found[1]
                continue
            if m.pos.line - 1 < attempt.lines:  # messages on the `#print axioms` line are not the step's
                diags.append((m.pos.line - 1, m.pos.column, Diagnostic(m.pos.line, m.pos.column, m.severity, m.data)))
        return classify(attempt, diags, axioms)

    def check(self, attempts: Sequence[Attempt]) -> list[Outcome]:
        if not attempts:
            return []
        jobs = min(self.jobs, len(attempts))
        sessions = [self._session(k) for k in range(jobs)]
        if jobs == 1:
            return [self.check_one(sessions[0], a) for a in attempts]
        shards = [list(range(k, len(attempts), jobs)) for k in range(jobs)]
        out: list[Outcome | None] = [None] * len(attempts)

        def run(k: int) -> None:
            for i in shards[k]:
                out[i] = self.check_one(sessions[k], attempts[i])

        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(run, range(jobs)))
        return out  # type: ignore[return-value]

    def close(self) -> None:
        for s in self._sessions:
            s.close()
        self._sessions.clear()
