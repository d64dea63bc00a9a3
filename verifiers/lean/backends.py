"""Ask Lean whether proofs prove our statements, so that no proof can forge the answer: file and REPL backends.

Both take :class:`Goal` s (our statement, parsed by the guard, and a proof that passed the policy) and return
one :class:`Outcome` each:

- ``ok``: a trusted check confirmed it (below), with only Lean's standard axioms;
- ``statement``: Lean rejects our statement itself: not formalizable;
- ``proof``: the proof fails, or it leans on ``sorryAx`` / ``Lean.ofReduceBool`` / another axiom;
- ``error``: Lean itself failed (timeout, crash, out of memory, output the check cannot have printed, a kernel
  replay that disagrees, the time budget spent) — never read as a refutation.

**The trusted check.** A proof runs in Lean, and Lean lets a proof print (a logged message, an error that
echoes a string), so what Lean prints while it elaborates a proof is never read as a verdict. File mode uses
three modules in a fresh temporary folder, with fresh random names per batch (no step can name another):

1. ``Stmts.lean``: the header, then ``noncomputable def rpS_<nonce>_<k> : Prop := <our statement>`` — only our
   text, compiled with ``lean -o``;
2. ``Cand.lean``: the header, then ``theorem rpP_<nonce>_<k> <our statement> := <their proof>`` — compiled with
   ``lean -o``; Lean writes no ``.olean`` while any declaration has an error, so the declarations whose lines
   hold an error are dropped and the rest compiled again (the messages only *locate* failures: a forged one can
   make a step fail, never pass; the dropped ones get one more compile of their own, in a new random order, so a
   proof that forges errors against its neighbours costs them nothing);
3. ``Check.lean``: ``import Stmts``, ``import Cand``, then per group of up to 64 steps ``theorem rpG_j : rpS_a ∧
   rpS_b ∧ ... := ⟨@rpP_a, @rpP_b, ...⟩`` (the kernel checks each candidate against its statement) and ``#print
   axioms rpG_j``. Its input holds only our names; its output is read strictly
   (:func:`~reasonpipe.verifiers.lean.diagnostics.read_check`), and the statements it checks against were elaborated in
   ``Stmts``, where no proof could change their meaning. A group that fails or uses a non-standard axiom is
   checked member by member (``CheckAx.lean``: ``example : rpS_k := @rpP_k`` and ``#print axioms rpP_k``).
4. With ``replay`` (``lean4checker`` found, or required with ``replay="on"``), the kernel checks every
   declaration of ``Cand.olean`` again, in a separate process; a disagreement is ``error``.

**REPL mode** does the same in three commands per step (``def`` in the header's environment, the candidate in
that one, the check in the candidate's), reading the check's reply only at the positions of our commands.

**Cost.** ``Stmts`` and ``Cand`` compile at the same time; a batch that times out or crashes is re-run once per
step, each step alone (a step that times out alone is ``error``), never bisected; ``deadline`` (a
``time.monotonic()`` value) bounds the wall-clock time of the whole verify call.

Every process runs through :mod:`reasonpipe.verifiers.lean.sandbox` (bubblewrap where it works: the toolchain and the project
read-only, the batch folder the only writable path, no network).

Example::

    python -c "from reasonpipe.verifiers.lean.backends import FileBackend; print(FileBackend().version())"
"""

from __future__ import annotations

import bisect
import math
import os
import random
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from reasonpipe.verifiers.lean.diagnostics import (CheckResult, Diagnostic, UnexpectedOutput, parse_axioms,
                                        parse_messages, read_check, unsound_axioms)
from reasonpipe.verifiers.lean.guard import Declaration
from reasonpipe.verifiers.lean.sandbox import (LeanNotFound, Limits, RunResult, SandboxError, find_executable, run_limited,
                                    sandbox_argv, scrubbed_env, toolchain_binds)

OK, STATEMENT, PROOF, ERROR = "ok", "statement", "proof", "error"
MAX_BATCH = 1000
GROUP = 64            # candidates per `#print axioms` in the check (one traversal of their dependencies)
MAX_COMPILES = 3      # compiles of one module before the declarations still failing are given up
REPLAYS = ("auto", "on", "off")
_NAMES = re.compile(r"rp[SPG]_[0-9a-f]{12}_(\d+)")


class BudgetSpent(RuntimeError):
    """The verify call's wall-clock budget for Lean is used up."""


@dataclass(frozen=True)
class Goal:
    """Prove ``decl``'s statement (its binders and conclusion; its own proof is ignored) with ``proof``."""

    decl: Declaration
    proof: str


@dataclass(frozen=True)
class Outcome:
    status: str        # ok | statement | proof | error
    message: str = ""
    axioms: tuple[str, ...] = ()


def anonymize(message: str) -> str:
    """A Lean message with our per-batch names replaced by ``step`` (same reasons for the same input)."""
    return _NAMES.sub("step", message)


def statement_text(name: str, decl: Declaration) -> str:
    """``noncomputable def NAME : Prop := ∀ binders, conclusion``, with the statement's ``set_option ... in``."""
    options = "".join(f"set_option {k} {v} in\n" for k, v in decl.options)
    return f"{options}noncomputable def {name} : Prop := {decl.as_pi()}"


def candidate_text(name: str, goal: Goal) -> str:
    """``theorem NAME binders : conclusion := proof``, rendered (and guarded again) from the parsed parts."""
    return goal.decl.render(name, goal.proof)


def layout(header: str, blocks: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The file text and each block's (first, last) 1-based line."""
    lines = header.splitlines() if header else []
    spans = []
    for block in blocks:
        first = len(lines) + 1
        lines.extend(block.split("\n"))
        spans.append((first, len(lines)))
    return "\n".join(lines) + "\n", spans


def errors_per_block(diags: Sequence[Diagnostic], spans: Sequence[tuple[int, int]]) -> dict[int, str]:
    """Block index -> its first error message (a hint), for the blocks whose lines hold an error."""
    out: dict[int, str] = {}
    firsts = [s for s, _ in spans]
    for d in diags:
        if d.severity != "error":
            continue
        k = bisect.bisect_right(firsts, d.line) - 1
        if k >= 0 and d.line <= spans[k][1]:
            out.setdefault(k, d.text)
    return out


@dataclass
class _Compiled:
    """How compiling one module went: which blocks are in the .olean, which failed and why."""

    ok: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    error: dict[int, str] = field(default_factory=dict)   # Lean itself failed for these (not their fault)
    timed_out: str = ""                                    # the run's description when it timed out/crashed


class _Timeout(Exception):
    """A batch's Lean run timed out or crashed (the message says how): each of its steps is re-run alone."""


class FileBackend:
    """Many steps per ``lean`` run, three modules per batch (see the module docstring); ``jobs`` at once."""

    def __init__(self, lean: str = "lean", header: str = "", *, project: str | None = None,
                 limits: Limits = Limits(), jobs: int = 1, batch_size: int = MAX_BATCH, replay: str = "auto",
                 lean4checker: str = "lean4checker", deadline: float | None = None) -> None:
        if jobs < 1 or batch_size < 1:
            raise ValueError(f"jobs and batch_size must be >= 1, got {jobs}, {batch_size}")
        if replay not in REPLAYS:
            raise ValueError(f"replay must be one of {', '.join(REPLAYS)}, got {replay!r}")
        self.lean = lean
        self.header = header.strip()
        self.project = project
        self.limits = limits
        self.jobs = jobs
        self.batch_size = batch_size
        self.replay = replay
        self.lean4checker = lean4checker
        self.deadline = deadline
        self.runs = 0  # lean processes started (for reports and tests)
        self._lock = threading.Lock()
        self._features: dict | None = None
        self._rng = random.Random(secrets.randbits(64))  # layout order: unpredictable to a proof

    # -- running Lean -------------------------------------------------------------------------------------

    def _exe(self) -> str:
        return find_executable(self.lean)

    def _binds(self) -> list[str]:
        return [self.project] if self.project else []

    def _spawn(self, argv: list[str], tmp: str, timeout: float, lean_path: str | None = None, *,
               sandboxed: bool = True) -> RunResult:
        """Run ``argv`` in the sandbox with ``tmp`` as the only writable folder; SandboxError when it cannot.
        ``sandboxed`` False only for our own set-up commands that need to write (``lake env`` in the project)."""
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise BudgetSpent("the Lean time budget of this verify call is spent")
            timeout = min(timeout, left)
        limits = Limits(timeout_s=max(timeout, 0.1), memory_mb=self.limits.memory_mb,
                        max_output_bytes=self.limits.max_output_bytes, use_bwrap=self.limits.use_bwrap)
        extra = {"LEAN_PATH": lean_path} if lean_path is not None else {}
        wrapped = sandbox_argv(argv, tmp, use_bwrap=self.limits.use_bwrap if sandboxed else False,
                               readonly=self._binds())
        res = run_limited(wrapped, cwd=tmp, limits=limits, env=scrubbed_env(extra, home=tmp))  # SandboxError itself
        with self._lock:
            self.runs += 1
        return res

    def features(self) -> dict:
        """What this ``lean`` can do, asked once: ``json`` (``--json``), ``libdir``, ``path`` (the project's
        LEAN_PATH), ``checker`` (the lean4checker to replay with, or None)."""
        with self._lock:
            if self._features is not None:
                return self._features
        with tempfile.TemporaryDirectory(prefix="reasonpipe-lean-") as tmp:
            exe = self._exe()
            helped = self._spawn([exe, "--help"], tmp, 30.0)
            libdir = self._spawn([exe, "--print-libdir"], tmp, 30.0)
            path = ""
            if self.project:
                # our own set-up, on the user's project: lake may need to write its .lake folder
                res = self._spawn([find_executable("lake"), "-d", self.project, "env", "printenv", "LEAN_PATH"], tmp,
                                  max(self.limits.timeout_s, 60.0), sandboxed=False)
                if res.returncode != 0:
                    raise SandboxError(f"`lake env` in {self.project} failed: {res.why()}")
                path = res.stdout.strip()
        checker = None
        if self.replay != "off":
            try:
                checker = find_executable(self.lean4checker)
            except LeanNotFound:
                if self.replay == "on":
                    raise
        lib = libdir.stdout.strip() if libdir.returncode == 0 and libdir.stdout.strip() else ""
        found = {"json": "--json" in helped.stdout + helped.stderr, "libdir": lib, "path": path, "checker": checker}
        with self._lock:
            self._features = found
        return found

    def _lean_path(self, tmp: str) -> str:
        f = self.features()
        return ":".join(p for p in (tmp, f["path"], f["libdir"]) if p)

    def version(self) -> str:
        """``lean --version`` (part of every cache key: another Lean may judge differently)."""
        with tempfile.TemporaryDirectory(prefix="reasonpipe-lean-") as tmp:
            res = self._spawn([self._exe(), "--version"], tmp, 30.0)
        if res.returncode != 0:
            raise SandboxError(f"`{self.lean} --version` failed: {res.why()}")
        return res.stdout.strip()

    def _timeout(self, n: int) -> float:
        # a batch of n small steps gets the per-step timeout once per 50 steps (3 ms each with a real Lean)
        return self.limits.timeout_s * max(1, math.ceil(n / 50))

    def _messages(self, res: RunResult, filename: str) -> list[Diagnostic]:
        return parse_messages(res.stdout + "\n" + res.stderr, filename, json_lines=self.features()["json"])

    def _flags(self) -> list[str]:
        return ["--json"] if self.features()["json"] else []

    # -- probes -------------------------------------------------------------------------------------------

    def probe(self, lines: Sequence[str]) -> dict[int, set[int]]:
        """Run the header then ``lines`` (one command each): {index of a line with an error: its error columns}."""
        with tempfile.TemporaryDirectory(prefix="reasonpipe-lean-") as tmp:
            text, spans = layout(self.header, list(lines))
            with open(os.path.join(tmp, "Probe.lean"), "w", encoding="utf-8") as f:
                f.write(text)
            res = self._spawn([self._exe(), *self._flags(), "Probe.lean"], tmp, self._timeout(len(lines)),
                              self._lean_path(tmp))
        if res.timed_out or res.crashed:
            raise RuntimeError(f"the keyword probe failed: lean {res.why()}")
        diags = self._messages(res, "Probe.lean")
        header_lines = len(self.header.splitlines()) if self.header else 0
        if any(d.severity == "error" and d.line <= header_lines for d in diags):
            raise RuntimeError("the header failed: " + next(str(d) for d in diags if d.line <= header_lines))
        first = header_lines + 1
        out: dict[int, set[int]] = {}
        for d in diags:
            if d.severity == "error" and first <= d.line < first + len(lines):
                out.setdefault(d.line - first, set()).add(d.column)
        return out

    # -- checking -----------------------------------------------------------------------------------------

    def check(self, goals: Sequence[Goal]) -> list[Outcome]:
        if not goals:
            return []
        n = max(self.jobs, math.ceil(len(goals) / self.batch_size))
        size = math.ceil(len(goals) / n)
        batches = [list(goals[i:i + size]) for i in range(0, len(goals), size)]
        if self.jobs == 1 or len(batches) == 1:
            results = [self._check_batch(b) for b in batches]
        else:
            with ThreadPoolExecutor(self.jobs) as pool:  # lean runs in subprocesses: threads suffice
                results = list(pool.map(self._check_batch, batches))
        return [o for r in results for o in r]

    def _check_batch(self, goals: list[Goal]) -> list[Outcome]:
        """Outcomes for one batch; a batch that times out or crashes: each step once alone."""
        try:
            return self._attempt(goals, rerun_failures=True)
        except BudgetSpent as e:
            return [Outcome(ERROR, str(e))] * len(goals)
        except _Timeout as e:
            if len(goals) == 1:
                return [Outcome(ERROR, f"lean {e}")]
        out = []
        for g in goals:
            try:
                out.extend(self._attempt([g], rerun_failures=False))
            except BudgetSpent as e:
                out.append(Outcome(ERROR, str(e)))
            except _Timeout as e:
                out.append(Outcome(ERROR, f"lean {e}"))
        return out

    def _attempt(self, goals: list[Goal], *, rerun_failures: bool) -> list[Outcome]:
        """One pass of the three modules over ``goals`` (raises _Timeout, BudgetSpent)."""
        nonce = secrets.token_hex(6)
        order = list(range(len(goals)))
        self._rng.shuffle(order)  # where a step sits in the files is unpredictable to every proof
        out: list[Outcome | None] = [None] * len(goals)
        with tempfile.TemporaryDirectory(prefix="reasonpipe-lean-") as tmp:
            stmts = {k: statement_text(f"rpS_{nonce}_{k}", goals[k].decl) for k in order}
            cands = {}
            for k in order:
                try:
                    cands[k] = candidate_text(f"rpP_{nonce}_{k}", goals[k])
                except ValueError as e:  # GuardError: the proof would change how the statement parses
                    out[k] = Outcome(PROOF, f"the proof does not fit the statement: {e}")
            with ThreadPoolExecutor(2) as pool:
                fs = pool.submit(self._compile, tmp, "Stmts", [(k, stmts[k]) for k in order])
                fc = pool.submit(self._compile, tmp, "Cand", [(k, cands[k]) for k in order if k in cands])
                s, c = fs.result(), fc.result()
            if s.timed_out or c.timed_out:
                raise _Timeout(s.timed_out or c.timed_out)
            for k, why in {**s.error, **c.error}.items():
                out[k] = Outcome(ERROR, anonymize(why))
            for k, why in s.failed.items():
                out[k] = Outcome(STATEMENT, anonymize(why))
            failed = [k for k in c.failed if out[k] is None]
            ready = [k for k in order if k in s.ok and k in c.ok and out[k] is None]
            # Stmts.olean may hold statements whose candidate failed, Cand.olean candidates whose statement
            # failed: Check names only the steps in both
            if ready:
                for k, o in zip(ready, self._verify(tmp, nonce, ready)):
                    out[k] = o
        for k in failed:
            out[k] = Outcome(PROOF, anonymize(c.failed[k]))
        if failed and rerun_failures and len(failed) > 1:
            # one more compile of the failures alone, in a new random order, with new names: a proof that forged
            # an error line against a neighbour in the batch above cannot aim at the same neighbour here
            try:
                again = self._attempt([goals[k] for k in failed], rerun_failures=False)
            except _Timeout:  # they failed in the batch above; that answer stands
                again = [out[k] for k in failed]
            except BudgetSpent as e:
                again = [Outcome(ERROR, str(e))] * len(failed)
            for k, o in zip(failed, again):
                out[k] = o
        return out  # type: ignore[return-value]

    def _compile(self, tmp: str, module: str, blocks: list[tuple[int, str]]) -> _Compiled:
        """``lean -o MODULE.olean MODULE.lean`` over ``blocks``, dropping those with errors until an .olean
        is written (at most MAX_COMPILES runs)."""
        result = _Compiled()
        remaining = list(blocks)
        olean = os.path.join(tmp, f"{module}.olean")
        header_lines = len(self.header.splitlines()) if self.header else 0
        for _ in range(MAX_COMPILES):
            if not remaining:
                return result
            if os.path.exists(olean):
                os.remove(olean)
            text, spans = layout(self.header, [b for _, b in remaining])
            with open(os.path.join(tmp, f"{module}.lean"), "w", encoding="utf-8") as f:
                f.write(text)
            res = self._spawn([self._exe(), *self._flags(), "-o", f"{module}.olean", f"{module}.lean"], tmp,
                              self._timeout(len(remaining)), self._lean_path(tmp))
            if res.timed_out or res.crashed:
                result.timed_out = res.why()
                return result
            if res.returncode == 0 and os.path.exists(olean):
                result.ok = [k for k, _ in remaining]
                return result
            diags = self._messages(res, f"{module}.lean")
            head = [d for d in diags if d.severity == "error" and d.line <= header_lines]
            if head:
                for k, _ in remaining:
                    result.error[k] = f"the header failed: {head[0]}"
                return result
            flagged = errors_per_block(diags, spans)
            if not flagged:
                for k, _ in remaining:
                    result.error[k] = f"lean wrote no {module}.olean and located no error: {res.why()}"
                return result
            for i, why in flagged.items():
                result.failed[remaining[i][0]] = why
            remaining = [b for i, b in enumerate(remaining) if i not in flagged]
        for k, _ in remaining:
            result.error[k] = f"{module} still failed after {MAX_COMPILES} compiles"
        return result

    def _verify(self, tmp: str, nonce: str, ready: list[int]) -> list[Outcome]:
        """The trusted check (and the replay) of candidates that compiled; one Outcome per ``ready`` entry.

        ``Check.lean`` proves one conjunction per group of candidates (which type-checks every member against its
        statement) and prints its axioms; a group that fails or uses a non-standard axiom goes member by member
        through ``CheckAx.lean`` (``example : rpS_k := @rpP_k`` and ``#print axioms rpP_k`` each)."""
        lines = ["import Stmts", "import Cand"]
        groups = [ready[i:i + GROUP] for i in range(0, len(ready), GROUP)]
        group_line: dict[int, int] = {}
        report_line: dict[str, int] = {}
        for j, members in enumerate(groups):
            g = f"rpG_{nonce}_{j}"
            if len(members) == 1:
                k = members[0]
                lines.append(f"theorem {g} : rpS_{nonce}_{k} := @rpP_{nonce}_{k}")
            else:
                stmt = " ∧ ".join(f"rpS_{nonce}_{k}" for k in members)
                proof = ", ".join(f"@rpP_{nonce}_{k}" for k in members)
                lines.append(f"theorem {g} : {stmt} := ⟨{proof}⟩")
            group_line[j] = len(lines)
            lines.append(f"#print axioms {g}")
            report_line[g] = len(lines)
        try:
            check = self._run_check(tmp, "Check", lines, report_line)
        except UnexpectedOutput as e:
            return [Outcome(ERROR, f"the trusted check printed what it cannot have printed ({e})")] * len(ready)
        except RuntimeError as e:
            return [Outcome(ERROR, str(e))] * len(ready)
        result: dict[int, Outcome] = {}
        doubtful: list[int] = []
        for j, members in enumerate(groups):
            axioms = check.axioms.get(f"rpG_{nonce}_{j}")
            if group_line[j] in check.errors or axioms is None or unsound_axioms(axioms):
                doubtful += members
            else:
                for k in members:
                    result[k] = Outcome(OK, "", axioms)
        if doubtful:
            self._verify_members(tmp, nonce, doubtful, result)
        if any(o.status == OK for o in result.values()):
            replay_error = self._replay(tmp)  # the kernel, again, on every declaration of Cand
            if replay_error is not None:
                result = {k: Outcome(ERROR, replay_error) if o.status == OK else o for k, o in result.items()}
        return [result[k] for k in ready]

    def _verify_members(self, tmp: str, nonce: str, members: list[int], result: dict[int, Outcome]) -> None:
        """``CheckAx.lean``: each member's type check and axioms on its own; fills ``result``."""
        lines = ["import Stmts", "import Cand"]
        example_line, report_line = {}, {}
        for k in members:
            lines.append(f"example : rpS_{nonce}_{k} := @rpP_{nonce}_{k}")
            example_line[k] = len(lines)
            lines.append(f"#print axioms rpP_{nonce}_{k}")
            report_line[f"rpP_{nonce}_{k}"] = len(lines)
        try:
            ax = self._run_check(tmp, "CheckAx", lines, report_line)
        except UnexpectedOutput as e:
            for k in members:
                result[k] = Outcome(ERROR, f"the trusted check printed what it cannot have printed ({e})")
            return
        except RuntimeError as e:
            for k in members:
                result[k] = Outcome(ERROR, str(e))
            return
        for k in members:
            axioms = ax.axioms.get(f"rpP_{nonce}_{k}")
            if example_line[k] in ax.errors:
                why = anonymize(ax.errors[example_line[k]][0])
                result[k] = Outcome(PROOF, f"the proof does not prove the statement: {why}")
            elif axioms is None:
                result[k] = Outcome(ERROR, "the trusted check printed no axioms report for the step")
            elif unsound_axioms(axioms):
                result[k] = Outcome(PROOF, f"the proof uses {', '.join(unsound_axioms(axioms))}", axioms)
            else:
                result[k] = Outcome(OK, "", axioms)

    def _run_check(self, tmp: str, module: str, lines: list[str], reports: dict[str, int]) -> CheckResult:
        with open(os.path.join(tmp, f"{module}.lean"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        res = self._spawn([self._exe(), *self._flags(), f"{module}.lean"], tmp, self._timeout(len(lines)),
                          self._lean_path(tmp))
        if res.timed_out or res.crashed:
            raise RuntimeError(f"the trusted check failed: lean {res.why()}")
        if res.truncated:
            raise RuntimeError("the trusted check printed more than the output limit")
        result = read_check(res.stdout + "\n" + res.stderr, f"{module}.lean", reports,
                            json_lines=self.features()["json"])
        imports = result.errors.get(1) or result.errors.get(2)  # lines 1-2: `import Stmts`, `import Cand`
        if imports:
            raise RuntimeError(f"the trusted check could not import the modules: {imports[0]}")
        return result

    def _replay(self, tmp: str) -> str | None:
        """None when the kernel accepts Cand's declarations again (or no replay), else why not."""
        checker = self.features()["checker"]
        if checker is None:
            return None
        res = self._spawn([checker, "Cand"], tmp, self._timeout(1) * 5, self._lean_path(tmp))
        if res.returncode == 0 and not res.timed_out:
            return None
        return "the kernel replay (lean4checker) rejects the candidates: " + anonymize(res.why())


class ReplBackend:
    """One REPL process per job; the header's environment is built once per process; three commands a step."""

    def __init__(self, repl: str = "repl", header: str = "", *, project: str | None = None,
                 limits: Limits = Limits(), jobs: int = 1, replay: str = "auto", lean4checker: str = "lean4checker",
                 deadline: float | None = None) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        if replay not in REPLAYS:
            raise ValueError(f"replay must be one of {', '.join(REPLAYS)}, got {replay!r}")
        self.repl = repl
        self.header = header.strip()
        self.project = project
        self.limits = limits
        self.jobs = jobs
        self.replay = replay
        self.lean4checker = lean4checker
        self.deadline = deadline
        self._sessions: list = []
        self._checker: str | None | bool = False  # False: not looked up yet

    def _argv(self) -> list[str]:
        if self.project:  # `lake -d PROJECT env` from the session's own temporary directory
            return [find_executable("lake"), "-d", self.project, "env", find_executable(self.repl)]
        return [find_executable(self.repl)]

    def _session(self, k: int):
        from reasonpipe.verifiers.lean.repl import ReplSession

        while len(self._sessions) <= k:
            self._sessions.append(ReplSession(self._argv(), self.header, limits=self.limits,
                                              env=scrubbed_env(), readonly=self._binds()))
        return self._sessions[k]

    def _binds(self) -> list[str]:
        """The project, and the `lean` toolchain the REPL asks for its library (`lean --print-prefix`)."""
        binds = [self.project] if self.project else []
        try:
            lean = find_executable("lean")
        except LeanNotFound:  # a REPL started through `lake env` finds its own toolchain, inside the project
            return binds
        return binds + toolchain_binds(lean)

    def version(self) -> str:
        return f"repl:{find_executable(self.repl)}"

    def checker(self) -> str | None:
        if self._checker is False:
            self._checker = None
            if self.replay != "off":
                try:
                    self._checker = find_executable(self.lean4checker)
                except LeanNotFound:
                    if self.replay == "on":
                        raise
        return self._checker  # type: ignore[return-value]

    def probe(self, lines: Sequence[str]) -> dict[int, set[int]]:
        from reasonpipe.verifiers.lean.repl import ReplError

        try:
            resp = self._session(0).check("\n".join(lines))
        except ReplError as e:
            raise RuntimeError(f"the keyword probe failed: {e}") from e
        out: dict[int, set[int]] = {}
        for m in resp.messages:
            if m.severity == "error" and 0 < m.pos.line <= len(lines):
                out.setdefault(m.pos.line - 1, set()).add(m.pos.column)
        return out

    def _left(self) -> float | None:
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise BudgetSpent("the Lean time budget of this verify call is spent")
        return min(left, self.limits.timeout_s)

    def check_one(self, session, goal: Goal) -> Outcome:
        from reasonpipe.verifiers.lean.repl import ReplError

        nonce = secrets.token_hex(6)
        s, p = f"rpS_{nonce}_0", f"rpP_{nonce}_0"
        try:
            r1 = session.check(statement_text(s, goal.decl), timeout=self._left())
            if r1.errors or r1.env is None:
                return Outcome(STATEMENT, anonymize(r1.errors[0].data if r1.errors else "no environment"))
            try:
                text = candidate_text(p, goal)
            except ValueError as e:
                return Outcome(PROOF, f"the proof does not fit the statement: {e}")
            r2 = session.check(text, env=r1.env, timeout=self._left())
            if r2.env is None:
                return Outcome(ERROR, "the REPL gave no environment for the candidate")
            r3 = session.check(f"example : {s} := @{p}\n#print axioms {p}", env=r2.env, timeout=self._left())
            replay = self._replay(session, r2.env) if not r3.errors else None
        except BudgetSpent as e:
            return Outcome(ERROR, str(e))
        except ReplError as e:
            return Outcome(ERROR, f"repl: {type(e).__name__}: {e}")
        hint = anonymize(r2.errors[0].data) if r2.errors else ""
        if any(m.pos.line == 1 for m in r3.errors):
            return Outcome(PROOF, hint or anonymize(next(m.data for m in r3.errors if m.pos.line == 1)))
        reports = [m for m in r3.messages if m.severity == "info"]
        found = parse_axioms(reports[0].data) if len(reports) == 1 and reports[0].pos.line == 2 else None
        if found is None or found[0] not in (p, f"_root_.{p}") or r3.errors:
            return Outcome(ERROR, "the trusted check printed what it cannot have printed")
        bad = unsound_axioms(found[1])
        if bad:
            return Outcome(PROOF, (hint + "; " if hint else "") + f"the proof uses {', '.join(bad)}", found[1])
        if replay is not None:
            return Outcome(ERROR, replay)
        return Outcome(OK, "", found[1])

    def _replay(self, session, env: int) -> str | None:
        checker = self.checker()
        if checker is None:
            return None
        tmp = tempfile.mkdtemp(prefix="reasonpipe-replay-")
        try:
            path = os.path.join(session.cwd, "RpCand.olean")
            session.pickle(env, path)
            shutil.copy(path, os.path.join(tmp, "RpCand.olean"))
            limits = Limits(timeout_s=self.limits.timeout_s * 5, memory_mb=self.limits.memory_mb,
                            use_bwrap=self.limits.use_bwrap)
            res = run_limited(sandbox_argv([checker, "RpCand"], tmp, use_bwrap=self.limits.use_bwrap), cwd=tmp,
                              limits=limits, env=scrubbed_env({"LEAN_PATH": tmp}, home=tmp))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if res.returncode == 0 and not res.timed_out:
            return None
        return "the kernel replay (lean4checker) rejects the candidate: " + anonymize(res.why())

    def check(self, goals: Sequence[Goal]) -> list[Outcome]:
        if not goals:
            return []
        jobs = min(self.jobs, len(goals))
        sessions = [self._session(k) for k in range(jobs)]
        if jobs == 1:
            return [self.check_one(sessions[0], g) for g in goals]
        shards = [list(range(k, len(goals), jobs)) for k in range(jobs)]
        out: list[Outcome | None] = [None] * len(goals)

        def run(k: int) -> None:
            for i in shards[k]:
                out[i] = self.check_one(sessions[k], goals[i])

        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(run, range(jobs)))
        return out  # type: ignore[return-value]

    def close(self) -> None:
        for s in self._sessions:
            s.close()
        self._sessions.clear()
