"""The Lean 4 verifier: formalize each step, guard it, prove it in Lean, and give the contract's verdicts.

For every step (:mod:`reasonpipe.verifiers.lean.formalize`): our statement (or, for Safe records, the record's statement as
the challenge) and, where the step has one, the prover's proof — only its proof, never its own statement.

1. steps without a statement keep their ``no_check`` / ``unformalizable`` verdict;
2. the statement goes through the guard (:mod:`reasonpipe.verifiers.lean.guard`: exactly one statement, no commands, no
   look-alike characters) and the proof through the policy (:mod:`reasonpipe.verifiers.lean.policy`: in the default mode an
   allow-list of tactics and term forms, nothing that prints, sleeps, reads files or runs code; with
   ``trust_tactics`` only the lexical rules) — else ``unformalizable`` with the reason; a syntactically
   contentless statement (conclusion ``True``, a hypothesis restated, an empty type...) is ``vacuous``;
3. the words they use that are neither allow-listed nor dotted names are asked of Lean with the configured header
   (:mod:`reasonpipe.verifiers.lean.keywords`): a word the grammar makes a keyword is ``unformalizable`` (it could start a
   second command after a parse error);
4. Lean tries the step's own proof, then each closing tactic in turn (``decide``, ``rfl``, ``omega``, ``simp`` by
   default), one batch per round. A step is ``proved`` only when the backend's *trusted check* confirms it: a
   Lean run whose input holds nothing but our names and statements type-checks the compiled proof against the
   statement and lists its axioms, nothing beyond ``propext``, ``Classical.choice``, ``Quot.sound``
   (:mod:`reasonpipe.verifiers.lean.backends`); what Lean printed while elaborating a proof is only ever a reason;
5. a proved statement with hypotheses is probed for contradictory hypotheses and empty binder types (Lean proving
   ``False`` from them with ``contradiction``, ``simp_all``, ``omega``, ``decide``, or from one binder with
   ``nomatch`` / ``cases`` — a tactic this Lean lacks simply fails): ``vacuous`` if so;
6. an unproved statement without hypotheses is ``refuted`` when Lean proves its negation by ``decide`` (through
   the same trusted check); otherwise ``refuted`` with "no proof found" (Safe's "Failure of Proof"); if Lean
   itself failed (timeout, crash, budget) on any attempt, ``error`` — never ``refuted``. An error in the
   statement (Lean cannot elaborate it) is ``unformalizable`` (Safe's "Failed Formalization").

Identical (statement, proof) pairs are checked once per run; with ``cache`` (a SQLite file of
:mod:`reasonpipe.fhash`) across runs too, keyed by the protocol, the Lean version, header, tactics, mode, statement
and proof. Errors are never cached. ``budget_s`` bounds the wall-clock time of Lean in one verify call.

With ``exact=True`` (``--backend exact+lean``) the exact verifier decides each step and Lean confirms the
steps it formalizes; a disagreement is an ``error`` naming both verdicts.

What this does not do: it does not make Lean itself trustworthy (its kernel, and the compiled ``.olean`` files
of the header, are trusted; ``replay`` re-checks the candidates' declarations with ``lean4checker`` when it is
installed). See ``docs/lean-trust.md`` for the threat model.

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

from reasonpipe.verifiers.lean.backends import ERROR, OK, REPLAYS, STATEMENT, FileBackend, Goal, ReplBackend
from reasonpipe.verifiers.lean.formalize import Formal, formalize
from reasonpipe.verifiers.lean.guard import Binder, Declaration, GuardError, parse_declaration, parse_header, vacuity
from reasonpipe.verifiers.lean.keywords import KeywordProbe
from reasonpipe.verifiers.lean.policy import check_proof, check_statement, proof_words
from reasonpipe.verifiers.lean.sandbox import Limits, find_executable
from reasonpipe.verifiers.verdicts import StepVerdict, TraceReport, Verdict, summarize

DEFAULT_TACTICS = ("decide", "rfl", "omega", "simp")
# Lean proving False from a statement's hypotheses: the statement holds for nothing.
CONTRADICTION_TACTICS = ("contradiction", "simp_all", "omega", "decide")
# ... or from one binder alone (`[Inhabited Empty]`, `(x : Fin 0)`): its type has no element.
EMPTY_TYPE_TACTICS = ("nomatch h_empty", "cases h_empty <;> contradiction", "contradiction")
MODES = ("file", "repl")
PROTOCOL = "trusted-check-1"  # in every cache key: verdicts of an earlier way of checking are not reused
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
    project: str | None = None               # a Lake project: Lean sees its packages (LEAN_PATH from `lake env`)
    tactics: tuple[str, ...] = DEFAULT_TACTICS
    timeout_s: float = 20.0                  # per step (REPL) / per 50 steps of a batch (file)
    memory_mb: int | None = 8192
    jobs: int = 1                            # Lean processes at once
    batch_size: int = 1000                   # declarations per `lean` run (file mode)
    cache: str | None = None                 # SQLite file of reasonpipe.fhash: verdicts across runs
    bwrap: bool | None = None                # bubblewrap: None = wherever it works
    trust_tactics: bool = False              # proofs may use any tactic (own provers, own machine)
    replay: str = "auto"                     # kernel replay with lean4checker: auto (when found) | on | off
    lean4checker: str = "lean4checker"
    budget_s: float | None = None            # wall-clock seconds of Lean for the whole verify call

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"lean mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.replay not in REPLAYS:
            raise ValueError(f"replay must be one of {', '.join(REPLAYS)}, got {self.replay!r}")
        if not self.tactics:
            raise ValueError("at least one closing tactic is needed")
        for t in self.tactics:
            if not t.strip() or "\n" in t:
                raise ValueError(f"a closing tactic must be one non-empty line, got {t!r}")
            try:  # the user's own tactics: lexically guarded, not allow-listed
                check_proof(f"by {t}", trust_tactics=True)
            except GuardError as e:
                raise ValueError(f"closing tactic {t!r}: {e}") from None
        if self.budget_s is not None and not self.budget_s > 0:
            raise ValueError(f"budget_s must be a positive number of seconds, got {self.budget_s!r}")


@dataclass
class LeanStats:
    statements: int = 0       # steps with a statement
    distinct: int = 0         # distinct (statement, proof) pairs among them
    cache_hits: int = 0       # distinct pairs answered by the persistent cache
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
    """A distinct (statement, proof) while its attempts run."""

    decl: Declaration
    proofs: list[str]
    labels: list[str]
    words: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)  # "label: Lean's first message line" per failed attempt
    failed: str = ""   # Lean's own failure (timeout, crash) on some attempt
    result: StepVerdict | None = None
    attempt: int = 0


def lean_missing_message(config: LeanConfig) -> str | None:
    """None when the configured Lean (or REPL) can be found; else how to install it."""
    from reasonpipe.verifiers.lean.sandbox import LeanNotFound

    try:
        find_executable(config.repl if config.mode == "repl" else config.lean)
        if config.project:
            find_executable("lake")
        if config.replay == "on":
            find_executable(config.lean4checker)
    except LeanNotFound as e:
        return str(e)
    return None


def _first_line(message: str) -> str:
    return message.splitlines()[0][:200] if message else "failed"


class LeanVerifier:
    """The Verifier contract over Lean: ``verify(trace)``, ``report(trace)``, and batched ``report_many``."""

    def __init__(self, config: LeanConfig = LeanConfig(), *, backend: Any = None) -> None:
        self.config = config
        self.header = parse_header(config.header) if config.header.strip() else ""
        # the configured closing tactics are the user's own: lexically guarded, not allow-listed
        self.tactics = tuple(check_proof(f"by {t}", trust_tactics=True) for t in config.tactics)
        limits = Limits(timeout_s=config.timeout_s, memory_mb=config.memory_mb, use_bwrap=config.bwrap)
        deadline = time.monotonic() + config.budget_s if config.budget_s is not None else None
        if backend is None:
            if config.mode == "repl":
                backend = ReplBackend(config.repl, self.header, project=config.project, limits=limits,
                                      jobs=config.jobs, replay=config.replay, lean4checker=config.lean4checker,
                                      deadline=deadline)
            else:
                backend = FileBackend(config.lean, self.header, project=config.project, limits=limits,
                                      jobs=config.jobs, batch_size=config.batch_size, replay=config.replay,
                                      lean4checker=config.lean4checker, deadline=deadline)
        self.backend = backend
        self.keywords = KeywordProbe(backend.probe, commands_only=config.trust_tactics)
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
        parts = (PROTOCOL, self._version, self.header, "\x1f".join(self.config.tactics),
                 "trust" if self.config.trust_tactics else "allow-list", f.statement, f.proof or "")
        return hashlib.blake2b("\x00".join(parts).encode("utf-8"), digest_size=16).digest()

    def _label(self, f: Formal, attempt: int) -> str:
        if f.proof:
            if attempt == 0:
                return "the step's own proof"
            attempt -= 1
        return f"by {self.config.tactics[attempt]}" if 0 <= attempt < len(self.config.tactics) else f"attempt {attempt}"

    def _from_code(self, f: Formal, code: int, attempt: int) -> StepVerdict:
        verdict = _VERDICT_OF_CODE[code]
        if verdict == Verdict.PROVED:
            return StepVerdict(verdict, f"Lean: {self._label(f, attempt)} (cached)")
        if verdict == Verdict.REFUTED and attempt == NEGATION:
            return StepVerdict(verdict, "Lean proves the negation by decide (cached)")
        return StepVerdict(verdict, f"{verdict} by an earlier check of the same statement (cached; rerun without "
                                    "--cache for Lean's message)")

    # -- checking -----------------------------------------------------------------------------------------

    def _run(self, goals: list[Goal]) -> list:
        if not goals:
            return []
        started = time.perf_counter()
        outcomes = self.backend.check(goals)
        self.stats.seconds += time.perf_counter() - started
        self.stats.lean_attempts += len(goals)
        return outcomes

    def _prepare(self, f: Formal) -> _Pending | StepVerdict:
        """The guard, the policy and the syntactic vacuity check: a plan of attempts, or the verdict already."""
        trust = self.config.trust_tactics
        try:
            decl = parse_declaration(f.statement)
            check_statement(decl, trust_tactics=trust)
            proof = check_proof(f.proof, trust_tactics=trust) if f.proof else None
        except GuardError as e:
            return StepVerdict(Verdict.UNFORMALIZABLE, f"rejected by the guard: {e}")
        why = vacuity(decl)
        if why is not None:
            return StepVerdict(Verdict.VACUOUS, why)
        proofs, labels = ([proof], ["the step's own proof"]) if proof is not None else ([], [])
        proofs += list(self.tactics)
        labels += [f"by {t}" for t in self.config.tactics]
        words = proof_words(f.statement) | (proof_words(proof) if proof is not None else set())
        return _Pending(decl=decl, proofs=proofs, labels=labels, words=words)

    def _screen_words(self, plans: list[_Pending | None]) -> None:
        """Ask Lean which of the plans' words are keywords of its grammar; those plans are decided here."""
        live = [p for p in plans if p is not None and p.result is None and p.words]
        if not live:
            return
        try:
            bad = self.keywords.keywords(set().union(*(p.words for p in live)))
        except Exception as e:  # a probe Lean could not run: nothing can be said about these words
            for p in live:
                p.result = StepVerdict(Verdict.ERROR, f"Lean failed: {e}")
            return
        what = "can start a command" if self.config.trust_tactics else "is a keyword"
        for p in live:
            hit = sorted(p.words & bad)
            if hit:
                p.result = StepVerdict(Verdict.UNFORMALIZABLE,
                                       f"rejected by the guard: `{hit[0]}` {what} of this Lean and header")

    def _vacuity_goals(self, p: _Pending) -> list[Goal]:
        """Proofs of False from the statement's binders: any that Lean accepts makes the statement vacuous."""
        goals = [Goal(dataclasses.replace(p.decl, conclusion="False"), f"by {t}") for t in CONTRADICTION_TACTICS]
        for i, b in enumerate(p.decl.binders):
            probe = Binder(("h_empty",), b.type, "explicit")
            decl = dataclasses.replace(p.decl, binders=p.decl.binders[:i] + (probe,), conclusion="False")
            goals += [Goal(decl, f"by {t}") for t in EMPTY_TYPE_TACTICS]
        return goals

    def _decide(self, formals: list[Formal]) -> list[tuple[StepVerdict, int]]:
        """Verdicts for distinct (statement, proof) pairs, each with the index of the attempt that decided it."""
        plans: list[_Pending | None] = []
        out: list[tuple[StepVerdict, int] | None] = [None] * len(formals)
        for i, f in enumerate(formals):
            prepared = self._prepare(f)
            if isinstance(prepared, StepVerdict):
                out[i] = (prepared, 0)
                plans.append(None)
            else:
                plans.append(prepared)
        self._screen_words(plans)
        rounds = max((len(p.proofs) for p in plans if p is not None), default=0)
        for r in range(rounds):
            todo = [p for p in plans if p is not None and p.result is None and r < len(p.proofs)]
            for p, o in zip(todo, self._run([Goal(p.decl, p.proofs[r]) for p in todo])):
                if o.status == OK:
                    p.result, p.attempt = StepVerdict(Verdict.PROVED, f"Lean: {p.labels[r]}"), r
                elif o.status == STATEMENT:
                    p.result = StepVerdict(Verdict.UNFORMALIZABLE,
                                           f"Lean rejects the statement: {_first_line(o.message)}")
                elif o.status == ERROR:
                    p.failed = o.message
                else:
                    p.failures.append(f"{p.labels[r]}: {_first_line(o.message)}")
        # hypotheses that contradict each other, or a binder type with no element: any conclusion is provable
        hyp = [p for p in plans if p is not None and p.result is not None and p.result.verdict == Verdict.PROVED
               and p.decl.binders]
        probes = [(p, g) for p in hyp for g in self._vacuity_goals(p)]
        for (p, _), o in zip(probes, self._run([g for _, g in probes])):
            if o.status == OK and p.result.verdict == Verdict.PROVED:
                p.result = StepVerdict(Verdict.VACUOUS, "the hypotheses are contradictory or a binder's type is "
                                                        "empty (Lean proves False from them)")
        # a closed statement no tactic proved: is its negation provable? (not after Lean itself failed on it: a
        # statement that hangs or crashes Lean would do so again)
        closed = [p for p in plans if p is not None and p.result is None and not p.decl.binders and not p.failed]
        neg = [Goal(dataclasses.replace(p.decl, conclusion=f"¬ ({p.decl.conclusion})"), "by decide") for p in closed]
        for p, o in zip(closed, self._run(neg)):
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
        from reasonpipe.verifiers import get_verifier

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
