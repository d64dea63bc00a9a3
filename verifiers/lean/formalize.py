"""Turn trace steps into Lean 4 statements: one :class:`Formal` per step.

Three sources of statements:

- **CountDown** (deterministic): every arithmetic claim ``a op b = c`` of an ``Exploring Operation`` or
  ``Generated Node`` line becomes a theorem over ``Int``; exact division is stated as multiplication with a
  non-zero divisor (``b ≠ 0 ∧ c * b = a``), so ``7/2=3`` is false, as the rules say. ``equal: Goal Reached``
  and ``unequal: No Solution`` become ``v = t`` / ``v ≠ t``. The search bookkeeping (current state, node ids,
  moves, the multiset of remaining numbers) is not arithmetic: those steps are ``no_check`` here, and
  ``--backend exact+lean`` checks them exactly.
- **Sudoku** (deterministic, decidable over the board): the trace is replayed (the exact verifier's
  :class:`~reasonpipe.verifiers.sudoku.SudokuReplay`) and each claim is stated over the digits on the board at that
  step: a placement says the cell is empty, the value is a digit and it is in none of the cell's row, column
  and box; a guess says the same of every listed candidate and that the value is one of them; ``nocand`` says
  every digit is taken by a peer; ``SOL_E END`` says every row, column and box holds every digit.
  ``invalid`` (a board-level contradiction) is ``no_check`` with the reason; start, revert and give-up lines
  are bookkeeping.
- **Pass-through** (Safe's records, ``docs/formats.md``): each step carries its own
  statement (``formal_statement``, usually ending ``:= by sorry``) and optionally a proof; a statement that is
  ``False`` or absent means "no verification required" (``no_check``). The statement (its proof stripped) is
  the challenge; of the proof only the proof itself is kept, also when the prover wrote a whole declaration.

Each :class:`Formal` holds a statement and, separately, a proof (None: the closing tactics the verifier is
configured with prove it); the verifier builds the declaration Lean checks from both.

Example::

    python -m reasonpipe.verifiers.lean.formalize "Exploring Operation: 66-42=24, Resulting Numbers: [61, 24]"
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from reasonpipe.traces import countdown as cd
from reasonpipe.traces import sudoku as sd
from reasonpipe.verifiers.verdicts import Verdict

DIGITS_LIST = "[1, 2, 3, 4, 5, 6, 7, 8, 9]"  # the 9x9 board's digits (a smaller board's: _digits_list)


@dataclass(frozen=True)
class Formal:
    """What Lean is asked about one step.

    ``statement``: ``theorem step BINDERS : CONCL`` without a proof, OUR statement (for a Safe record, the
    record's own statement with its proof stripped: the challenge). ``proof``: the prover's proof only (a term
    or a ``by`` block, what follows ``:=``), canonical and lexically guarded; None: the verifier's closing
    tactics prove it. When the step is not checked, ``verdict`` (``no_check`` / ``unformalizable``) and
    ``reason`` say why not. A prover's whole declaration contributes only its proof: its statement is never
    compared with ours as text, Lean checks the proof against our statement.
    """

    statement: str = ""
    proof: str | None = None
    verdict: str | None = None
    reason: str = ""

    @property
    def checked(self) -> bool:
        return self.verdict is None


def theorem(prop: str) -> Formal:
    """A statement without proof: ``theorem step : PROP``."""
    return Formal(statement=f"theorem step : {prop}")


def no_check(reason: str) -> Formal:
    return Formal(verdict=Verdict.NO_CHECK, reason=reason)


def unformalizable(reason: str) -> Formal:
    return Formal(verdict=Verdict.UNFORMALIZABLE, reason=reason)


# -- CountDown ------------------------------------------------------------------------------------------

def countdown_op(op: cd.Op) -> Formal:
    """``a op b = c`` as a closed statement over Int; division as multiplication with a non-zero divisor."""
    a, b, c = op.a, op.b, op.result
    if op.sym == "/":
        return theorem(f"({b} : Int) ≠ 0 ∧ ({c} : Int) * {b} = {a}")
    return theorem(f"({a} : Int) {op.sym} {b} = {c}")


_BOOKKEEPING = "search bookkeeping, not an arithmetic claim (--backend exact+lean checks it exactly)"


def countdown_step(step: Any) -> Formal:
    kind = type(step)
    if kind is cd.Explore or kind is cd.Generate:
        return countdown_op(step.op)
    if kind is cd.Goal:
        return theorem(f"({step.value} : Int) = {step.target}")
    if kind is cd.DeadEnd:
        return theorem(f"({step.value} : Int) ≠ {step.target}")
    if kind is cd.State or kind is cd.Move:
        return no_check(_BOOKKEEPING)
    if kind is cd.Exhausted:
        return no_check("a claim about the search, not a checkable step")
    if kind is cd.Unparsed:
        return unformalizable("line is not in the CountDown trace grammar")
    return unformalizable(f"not a CountDown step: {type(step).__name__}")


def countdown(trace: Any) -> list[Formal]:
    return [countdown_step(s) for s in trace.steps]


# -- Sudoku ----------------------------------------------------------------------------------------------

def _lean_list(values) -> str:
    return "[" + ", ".join(map(str, values)) + "]"


def _peer_digits(board: Any, i: int) -> list[int]:
    cells = board.cells
    return sorted({cells[j] for j in board.g.peers[i] if cells[j]})


def _digits_list(size: int) -> str:
    return DIGITS_LIST if size == 9 else _lean_list(range(1, size + 1))


def sudoku(trace: Any) -> list[Formal]:
    """Replay the board with the exact verifier's replay and state each claim over the board before it."""
    from reasonpipe.verifiers.sudoku import SudokuReplay

    replay = SudokuReplay(trace.problem)
    handlers = {sd.Place: replay.place, sd.Guess: replay.guess, sd.Revert: replay.revert, sd.NoCand: replay.nocand,
                sd.Invalid: replay.invalid, sd.Start: replay.start, sd.End: replay.end}
    out: list[Formal] = []
    for step in trace.steps:
        board = replay.board
        kind = type(step)
        if kind is sd.Unparsed:
            out.append(unformalizable("line is not in the Sudoku trace grammar"))
        elif kind in (sd.Start, sd.Revert, sd.GiveUp):
            out.append(no_check("search bookkeeping, not a claim about the board"))
        elif kind is sd.Invalid:
            out.append(no_check("a board-level contradiction claim is not formalized (--backend exact+lean "
                                "checks it exactly)"))
        elif board is None:
            out.append(unformalizable("no board yet (the trace must start with START)"))
        elif kind is sd.End:
            units = ", ".join(_lean_list(board.cells[j] for j in unit) for unit in board.g.units)
            digits_list = _digits_list(board.g.size)
            out.append(theorem(f"∀ u ∈ ([{units}] : List (List Nat)), ∀ d ∈ {digits_list}, d ∈ u"))
        elif not (0 <= step.row < board.g.size and 0 <= step.col < board.g.size):
            out.append(unformalizable(f"({step.row}, {step.col}) is off the {board.g.size}x{board.g.size} board"))
        else:
            n = board.g.size
            digits_list = _digits_list(n)
            i = n * step.row + step.col
            cell, used = board.cells[i], _lean_list(_peer_digits(board, i))
            if kind is sd.Place:
                out.append(theorem(f"({cell} : Nat) = 0 ∧ ({step.value} : Nat) ∈ {digits_list} ∧ "
                                   f"({step.value} : Nat) ∉ ({used} : List Nat)"))
            elif kind is sd.Guess:
                cands = _lean_list(step.cands)
                out.append(theorem(f"({cell} : Nat) = 0 ∧ ({step.value} : Nat) ∈ ({cands} : "
                                   f"List Nat) ∧ ∀ d ∈ ({cands} : List Nat), d ∈ {digits_list} ∧ "
                                   f"d ∉ ({used} : List Nat)"))
            elif kind is sd.NoCand:
                out.append(theorem(f"({cell} : Nat) = 0 ∧ ∀ d ∈ {digits_list}, d ∈ ({used} : List Nat)"))
            else:
                out.append(unformalizable(f"not a Sudoku step: {kind.__name__}"))
        handler = handlers.get(kind)
        if handler is not None and (replay.started or kind is sd.Start):
            handler(step)  # advance the board exactly as the trace does (its verdict is the exact backend's)
    return out


# -- pass-through (Safe) ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class FormalStep:
    """A step of a trace that carries its own Lean statement (Safe's record format)."""

    text: str
    statement: str | None
    proof: str | None = None

    def to_line(self) -> str:
        return self.text.replace("\n", " ")

    def to_json(self) -> list:
        return ["formal", self.text, self.statement, self.proof]


def _declares(text: str) -> bool:
    """Whether ``text`` is a whole declaration (``theorem``/``lemma``/``example``, maybe after
    ``set_option ... in`` or a doc comment) rather than a proof. GuardError when Lean's lexer would fail."""
    from reasonpipe.verifiers.lean.guard import DECLARATION_KEYWORDS, TRIVIA, tokenize

    return any(t.kind == "keyword" and t.text in DECLARATION_KEYWORDS for t in tokenize(text)
               if t.kind not in TRIVIA)


def formal_step(step: FormalStep) -> Formal:
    """A step's own statement (its proof stripped) and its proof, both through the guard's lexing rules.

    The statement is the record's ``formal_statement`` parsed by the guard and written back without a proof
    (``theorem step BINDERS : CONCL``). The proof is the record's ``proof``: a term or ``by`` block (a leading
    ``:=`` dropped), or a whole declaration (``theorem foo ... := PROOF``, ``lemma``, ``example``), of which
    only PROOF is kept. Without a ``proof`` field, a real proof inside ``formal_statement`` is used. A whole
    ``sorry`` / ``by sorry`` is no proof (None: the verifier's closing tactics try). Whatever the guard rejects
    is ``unformalizable`` with its reason.
    """
    from reasonpipe.verifiers.lean.guard import GuardError, parse_declaration, parse_proof

    stmt = step.statement
    if stmt is None or not stmt.strip() or stmt.strip() == "False":
        return no_check("no verification required (the step carries no formal statement)")
    try:
        decl = parse_declaration(stmt)
    except GuardError as e:
        return unformalizable(f"rejected by the guard: {e}")
    statement = decl.head("step")
    text = step.proof or ""
    try:
        if not text.strip():
            return Formal(statement=statement, proof=decl.proof)
        if _declares(text):
            return Formal(statement=statement, proof=parse_declaration(text).proof)
        if text.lstrip().startswith(":="):  # blank it out: every other character keeps its column
            at = text.index(":=")
            text = text[:at] + "  " + text[at + 2:]
        return Formal(statement=statement, proof=parse_proof(text) if text.strip() else None)
    except GuardError as e:
        return unformalizable(f"the step's proof is rejected by the guard: {e}")


def passthrough(trace: Any) -> list[Formal]:
    return [formal_step(s) for s in trace.steps]


FORMALIZERS = {"countdown": countdown, "sudoku": sudoku, "formal": passthrough}


def formalize(trace: Any) -> list[Formal]:
    """One :class:`Formal` per step of ``trace`` (by its task); unformalizable for unknown tasks."""
    fn = FORMALIZERS.get(trace.task)
    if fn is None:
        return [unformalizable(f"no Lean formalization for task {trace.task!r} "
                               f"(known: {', '.join(FORMALIZERS)})")] * len(trace.steps)
    return fn(trace)


def main(argv: list[str] | None = None) -> int:
    """Print the Lean statement of each CountDown line given on the command line."""
    for line in (argv if argv is not None else sys.argv[1:]):
        f = countdown_step(cd.parse_line(line))
        print(f.statement if f.checked else f"{f.verdict}: {f.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
