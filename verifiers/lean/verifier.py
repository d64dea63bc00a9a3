"""The Lean 4 verifier: formalize each step, guard it, prove it in Lean, and give the contract's verdicts.

For every step (:mod:`verifiers.lean.formalize`):

1. steps without a statement keep their ``no_check`` / ``unformalizable`` verdict;
2. the statement goes through the guard (:mod:`verifiers.lean.guard`): exactly one declaration, no commands,
   no attributes, no look-alike characters — else ``unformalizable`` with the guard's reason; a
   syntactically contentless statement (conclusion ``True``, a hypothesis restated...) is ``vacuous``;
3. Lean tries the step's own proof, then each closing tactic in turn (``decide``, ``rfl``, ``omega``,
   ``simp`` by default; add ``norm_num`` with a Mathlib header), one batch per round, and records which one
   succeeded. A step is ``proved`` only when Lean reports no error *and* ``#print axioms`` lists nothing
   beyond ``propext``, ``Classical.choice``, ``Quot.sound`` (so ``sorry``, ``native_decide`` and added axioms
   never count);
4. a proved statement with hypotheses is checked for contradictory hypotheses (Lean proving ``False`` from
   them with the same tactics): ``vacuous`` if so;
5. an unproved statement without hypotheses is ``refuted`` when Lean proves its negation by ``decide``;
   otherwise ``refuted`` with "no proof found" (Safe's "Failure of Proof"); if Lean itself failed (timeout,
   crash) on any attempt, ``error`` — never ``refuted``. An error in the statement (Lean cannot elaborate it)
   is ``unformalizable`` (Safe's "Failed Formalization").

Identical statements are checked once per run; with ``cache`` (a SQLite file of :mod:`reasonpipe.fhash`)
across runs too, keyed by the Lean version, header, tactics and statement. Errors are never cached.

With ``exact=True`` (``--backend exact+lean``) the exact verifier decides each step and Lean confirms the
steps it formalizes; a disagreement is an ``error`` naming both verdicts.

Example::

    reasonpipe verify cd.jsonl --backend lean --lean-mode file --jobs 2
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from verifiers.lean.backends import ERROR, OK, STATEMENT, Attempt, FileBackend, ReplBackend
from verifiers.lean.formalize import Formal, formalize
from verifiers.lean.guard import Declaration, GuardError, parse_declaration, parse_header, vacuity
from verifiers.lean.sandbox import Limits, find_executable
from verifiers.verdicts import StepVerdict, TraceReport, Verdict, summarize

DEFAULT_TACTICS = ("decide", "rfl", "omega", "simp")
MODES = ("file", "repl")
NEGATION = -1  # attempt index of "the negation, by decide" in cached results
_CODES = {Verdict.PROVED: 1, Verdict.REFUTED: 2, Verdict.UNFORMALIZABLE: 3, Verdict.VACUOUS: 4}
_VERDICT_OF_CODE = {v: k for k, v in _CODES.items()}


@dataclass(frozen=True)
class LeanConfig:
    """How to reach Lean and what to try. Every field has a CLI flag (``reasonpipe verify --help``)."""

    mode: str = "file"                       # file: one `lean` run per batch; repl: a persistent REPL
    lean: str = "lean"                       # the lean executable (name on PATH, or a path)
    repl: str = "repl"                       # the leanprover-community/repl executable
    header: str = ""                         # e.g. "import Mathlib\nopen Real"; checked by the guard
    project: str | None = None               # a Lake project: Lean runs under `lake env` there
    tactics: tuple[str, ...] = DEFAULT_TACTICS
    timeout_s: float = 20.0                  # per step (REPL) / per 50 steps of a batch (file)
    memory_mb: int | None = 8192
    jobs: int = 1                            # Lean processes at once
    batch_size: int = 1000                   # declarations per `lean` run (file mode)
    cache: str | None = None                 # SQLite file of reasonpipe.fhash: verdicts across runs
    bwrap: bool | None = None                # bubblewrap: None = when installed

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"lean mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not self.tactics:
            raise ValueError("at least one closing tactic is needed")
        for t in self.tactics:
            if not t.strip() or "\n" in t:
                raise ValueError(f"a closing tactic must be one non-empty line, got {t!r}")


@dataclass
class LeanStats:
    statements: int = 0       # steps with a statement
    distinct: int = 0         # distinct statements among them
    cache_hits: int = 0       # distinct statements answered by the persistent cache
    lean_attempts: int = 0    # declarations sent to Lean
    seconds: float = 0.0

    @property
    def hit_rate(self) -> float:
        """Fraction of statements not sent to Lean (repeats within the run, and persistent cache hits)."""
        return 1 - (self.distinct - self.cache_hits) / self.statements if self.statements else 0.0

    def rows(self) -> list[tuple[str, str]]:
        return [("Lean statements", f"{self.statements:,}"), ("distinct statements", f"{self.distinct:,}"),
                ("persistent cache hits", f"{self.cache_hits:,}"),
                ("statements not sent to Lean", f"{self.hit_rate:.1%}"),
                ("declarations Lean checked", f"{self.lean_attempts:,}"), ("Lean seconds", f"{self.seconds:.2f}")]


@dataclass
class _Pending:
    """A distinct statement while its attempts run."""

    decl: Declaration
    proofs: list[str]
    labels: list[str]
    failures: list[str] = field(default_factory=list)  # "label: Lean's first message line" per failed attempt
    failed: str = ""   # Lean's own failure (timeout, crash) on some attempt
    result: StepVerdict | None = None
    attempt: int = 0


def lean_missing_message(config: LeanConfig) -> str | None:
    """None when the configured Lean (or REPL) can be found; else how to install it."""
    from verifiers.lean.sandbox import LeanNotFound

    try:
        find_executable(config.repl if config.mode == "repl" else config.lean)
        if config.project:
            find_executable("lake")
    except LeanNotFound as e:
        return str(e)
    return None


class LeanVerifier:
    """The Verifier contract over Lean: ``verify(trace)``, ``report(trace)``, and batched ``report_many``."""

    def __init__(self, config: LeanConfig = LeanConfig(), *, backend: Any = None) -> None:
        self.config = config
        self.header = parse_header(config.header) if config.header.strip() else ""
        limits = Limits(timeout_s=config.timeout_s, memory_mb=config.memory_mb, use_bwrap=config.bwrap)
        if backend is None:
            if config.mode == "repl":
                backend = ReplBackend(config.repl, self.header, project=config.project, limits=limits, jobs=config.jobs)
            else:
                backend = FileBackend(config.lean, self.header, project=config.project, limits=limits,
                                      jobs=config.jobs, batch_size=config.batch_size)
        self.backend = backend
        self.stats = LeanStats()
        self._memo: dict[bytes, tuple[int, int]] = {}  # this run's results: key -> (verdict code, attempt)
        self._store = None
        if config.cache:
            from reasonpipe.fhash import SQLiteStore

            self._store = SQLiteStore(config.cache)
        self._version: str | None = None

    # -- keys and the cache ------------------------------------------------------------------------------

    def _key(self, f: Formal) -> bytes:
        if self._version is None:
            self._version = self.backend.version()
        parts = (self._version, self.header, "\x1f".join(self.config.tactics), f.source, f.expect)
        return hashlib.blake2b("\x00".join(parts).encode("utf-8"), digest_size=16).digest()

    def _from_code(self, f: Formal, code: int, attempt: int) -> StepVerdict:
        verdict = _VERDICT_OF_CODE[code]
        if verdict == Verdict.PROVED:
            try:
                label = self._plan(parse_declaration(f.source)).labels[attempt]
            except (GuardError, IndexError):
                label = f"attempt {attempt}"
            return StepVerdict(verdict, f"Lean: {label} (cached)")
        if verdict == Verdict.REFUTED and attempt == NEGATION:
            return StepVerdict(verdict, "Lean proves the negation by decide (cached)")
        return StepVerdict(verdict, f"{verdict} by an earlier check of the same statement (cached; rerun without "
                                    "--cache for Lean's message)")

    # -- checking -----------------------------------------------------------------------------------------

    def _plan(self, decl: Declaration) -> _Pending:
        proofs, labels = [], []
        if decl.proof is not None:
            proofs.append(decl.proof)
            labels.append("the step's own proof")
        for t in self.config.tactics:
            proofs.append(f"by {t}")
            labels.append(f"by {t}")
        return _Pending(decl=decl, proofs=proofs, labels=labels)

    @staticmethod
    def _attempt(decl: Declaration, proof: str) -> Attempt:
        text = decl.render("step", proof)
        start = parse_declaration(text).proof_span[0]  # where Lean's errors stop being the statement's
        before = text[:start]
        line = before.count("\n")
        return Attempt(text=text, proof_line=line, proof_column=start - (before.rfind("\n") + 1))

    def _run(self, items: list[tuple[_Pending, Attempt]]) -> list:
        if not items:
            return []
        started = time.perf_counter()
        outcomes = self.backend.check([a for _, a in items])
        self.stats.seconds += time.perf_counter() - started
        self.stats.lean_attempts += len(items)
        return outcomes

    def _decide(self, formals: list[Formal]) -> list[tuple[StepVerdict, int]]:
        """Verdicts for distinct statements, each with the index of the attempt that decided it."""
        plans: list[_Pending | None] = []
        out: list[tuple[StepVerdict, int] | None] = [None] * len(formals)
        for i, f in enumerate(formals):
            try:
                decl = parse_declaration(f.source)
                if f.expect and decl.statement() != parse_declaration(f.expect).statement():
                    raise GuardError("the proof's declaration states something other than the step's statement")
            except GuardError as e:
                out[i] = (StepVerdict(Verdict.UNFORMALIZABLE, f"rejected by the guard: {e}"), 0)
                plans.append(None)
                continue
            why = vacuity(decl)
            if why is not None:
                out[i] = (StepVerdict(Verdict.VACUOUS, why), 0)
                plans.append(None)
                continue
            plans.append(self._plan(decl))
        rounds = max((len(p.proofs) for p in plans if p is not None), default=0)
        for r in range(rounds):
            todo = [p for p in plans if p is not None and p.result is None and r < len(p.proofs)]
            for p, o in zip(todo, self._run([(p, self._attempt(p.decl, p.proofs[r])) for p in todo])):
                if o.status == OK:
                    p.result, p.attempt = StepVerdict(Verdict.PROVED, f"Lean: {p.labels[r]}"), r
                elif o.status == STATEMENT:
                    p.result = StepVerdict(Verdict.UNFORMALIZABLE, f"Lean rejects the statement: {o.message}")
                elif o.status == ERROR:
                    p.failed = o.message
                else:
                    p.failures.append(f"{p.labels[r]}: {o.message.splitlines()[0][:200] if o.message else 'failed'}")
        # hypotheses that contradict each other make any conclusion provable: not a real check
        hyp = [p for p in plans if p is not None and p.result is not None and p.result.verdict == Verdict.PROVED
               and p.decl.binders]
        probe = "by first | " + " | ".join(self.config.tactics)
        for p, o in zip(hyp, self._run([(p, self._attempt(dataclasses.replace(p.decl, conclusion="False"), probe))
                                        for p in hyp])):
            if o.status == OK:
                p.result = StepVerdict(Verdict.VACUOUS, "the hypotheses are contradictory (Lean proves False from them)")
        # a closed statement no tactic proved: is its negation provable?
        closed = [p for p in plans if p is not None and p.result is None and not p.decl.binders]
        neg = [(p, self._attempt(dataclasses.replace(p.decl, conclusion=f"¬ ({p.decl.conclusion})"), "by decide"))
               for p in closed]
        for (p, _), o in zip(neg, self._run(neg)):
            if o.status == OK:
                p.result, p.attempt = StepVerdict(Verdict.REFUTED, "Lean proves the negation by decide"), NEGATION
        for i, p in enumerate(plans):
            if p is None:
                continue
            if p.result is None:
                if p.failed:
                    p.result = StepVerdict(Verdict.ERROR, f"Lean failed: {p.failed}")
                else:
                    p.result = StepVerdict(Verdict.REFUTED, "no proof found: " + "; ".join(p.failures))
            out[i] = (p.result, p.attempt)
        return out  # type: ignore[return-value]

    def check_formals(self, formals: Sequence[Formal]) -> list[StepVerdict]:
        """One verdict per formal; each distinct statement is decided once (and cached when asked)."""
        verdicts: list[StepVerdict | None] = [None] * len(formals)
        groups: dict[bytes, list[int]] = {}
        for i, f in enumerate(formals):
            if not f.checked:
                verdicts[i] = StepVerdict(f.verdict, f.reason)
                continue
            self.stats.statements += 1
            groups.setdefault(self._key(f), []).append(i)
        keys = list(groups)
        resolved: dict[bytes, StepVerdict] = {}
        new_keys = [k for k in keys if k not in self._memo]
        self.stats.distinct += len(new_keys)
        stored = self._store.get_many(new_keys) if self._store is not None and new_keys else {}
        for k in keys:
            if k in self._memo:
                resolved[k] = self._from_code(formals[groups[k][0]], *self._memo[k])
            elif k in stored:
                code = int(stored[k].values[-1])
                self._memo[k] = (code // 1000, code % 1000 - 1)
                resolved[k] = self._from_code(formals[groups[k][0]], *self._memo[k])
                self.stats.cache_hits += 1
        todo = [k for k in keys if k not in resolved]
        decided = self._decide([formals[groups[k][0]] for k in todo])
        fresh = []
        for k, (v, attempt) in zip(todo, decided):
            resolved[k] = v
            if v.verdict in _CODES:  # errors are transient: never cached
                self._memo[k] = (_CODES[v.verdict], attempt)
                fresh.append((k, float(_CODES[v.verdict] * 1000 + attempt + 1), 0.0))
        if self._store is not None and fresh:
            self._store.add_many(fresh)
        for k, idx in groups.items():
            for i in idx:
                verdicts[i] = resolved[k]
        return verdicts  # type: ignore[return-value]

    # -- the Verifier contract ------------------------------------------------------------------------------

    def verify(self, trace: Any) -> list[StepVerdict]:
        return self.check_formals(formalize(trace))

    def report(self, trace: Any, line: int | None = None) -> TraceReport:
        return self.report_many([(line, trace)])[0]

    def report_many(self, items: Sequence[tuple[int | None, Any]], *, exact: bool = False) -> list[TraceReport]:
        """Reports for many traces with one Lean batch per round for all of them (what makes file mode cheap)."""
        from verifiers import get_verifier

        formals: list[Formal] = []
        bounds: list[tuple[int, int]] = []
        for _, trace in items:
            fs = formalize(trace)
            bounds.append((len(formals), len(formals) + len(fs)))
            formals.extend(fs)
        lean = self.check_formals(formals)
        reports = []
        exact_verifiers: dict[str, Any] = {}
        for (line, trace), (a, b) in zip(items, bounds):
            verdicts = lean[a:b]
            solved = False
            if exact:
                ev = exact_verifiers.get(trace.task) or exact_verifiers.setdefault(trace.task, get_verifier(trace.task))
                exact_verdicts, solved = ev.check(trace)
                verdicts = [combine(e, v, f) for e, v, f in zip(exact_verdicts, verdicts, formals[a:b])]
            else:
                solved = _lean_solved(trace, verdicts)
            reports.append(summarize(trace.id, trace.task, verdicts, solved, trace.steps, line))
        return reports

    def close(self) -> None:
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()
        if self._store is not None:
            self._store.close()


def _lean_solved(trace: Any, verdicts: list[StepVerdict]) -> bool:
    """Solved by Lean's account: every step holds and a final-answer claim (goal / end) was proved."""
    if not verdicts or not all(v.holds for v in verdicts):
        return False
    return any(getattr(s, "kind", "") in ("goal", "end") and v.verdict == Verdict.PROVED
               for s, v in zip(trace.steps, verdicts))


def combine(exact: StepVerdict, lean: StepVerdict, formal: Formal) -> StepVerdict:
    """``exact+lean``: the exact verdict, confirmed by Lean where Lean checked the step.

    Lean states only a step's arithmetic (or board) claim, the exact verifier also its bookkeeping, so a step
    the exact verifier refutes stays refuted whatever Lean says; a step it proves must be proved by Lean too.
    """
    if not formal.checked or not exact.holds:
        return exact
    if lean.verdict == Verdict.PROVED:
        return StepVerdict(exact.verdict, f"{exact.reason}; {lean.reason}")
    if lean.verdict == Verdict.ERROR:
        return StepVerdict(Verdict.ERROR, f"exact: {exact.verdict}; Lean could not confirm: {lean.reason}")
    return StepVerdict(Verdict.ERROR, f"exact and Lean disagree: exact says {exact.verdict} ({exact.reason}), "
                                      f"Lean says {lean.verdict} ({lean.reason})")
