"""Lean formalization of trace steps: our statements (CountDown, Sudoku), Safe records' statements with their
proofs kept apart (a prover's whole declaration contributes only its proof)."""

from __future__ import annotations

import dataclasses

import pytest

from reasonpipe.traces import Trace
from reasonpipe.traces import countdown as cd
from reasonpipe.verifiers.lean.formalize import FORMALIZERS, Formal, FormalStep, countdown_step, formal_step, formalize, main
from reasonpipe.verifiers.lean.guard import parse_declaration
from reasonpipe.verifiers.lean.policy import check_statement
from reasonpipe.verifiers.verdicts import Verdict


@pytest.mark.parametrize("line, source", [
    ("Exploring Operation: 66-42=24, Resulting Numbers: [61, 24]", "theorem step : (66 : Int) - 42 = 24"),
    ("Exploring Operation: 25+3=28, Resulting Numbers: [28]", "theorem step : (25 : Int) + 3 = 28"),
    ("Exploring Operation: 6*7=42, Resulting Numbers: [42, 5]", "theorem step : (6 : Int) * 7 = 42"),
    ("Exploring Operation: 96/8=12, Resulting Numbers: [12]", "theorem step : (8 : Int) ≠ 0 ∧ (12 : Int) * 8 = 96"),
    ("Generated Node #0,0: 47:[61, 24] Operation: 66-42=24", "theorem step : (66 : Int) - 42 = 24"),
    ("47,47 equal: Goal Reached", "theorem step : (47 : Int) = 47"),
    ("37,47 unequal: No Solution", "theorem step : (37 : Int) ≠ 47"),
])
def test_countdown_claims_become_int_theorems(line, source):
    f = countdown_step(cd.parse_line(line))
    assert f.checked and f.statement == source and f.proof is None


def test_false_division_is_stated_as_false_multiplication():
    # 7/2=3 breaks the exact-division rule: 3 * 2 = 7 is false, so Lean cannot prove it
    assert countdown_step(cd.parse_line("Exploring Operation: 7/2=3, Resulting Numbers: [3]")).statement == \
        "theorem step : (2 : Int) ≠ 0 ∧ (3 : Int) * 2 = 7"
    f = countdown_step(cd.parse_line("Exploring Operation: 0/0=5, Resulting Numbers: [5]"))
    assert "(0 : Int) ≠ 0" in f.statement


@pytest.mark.parametrize("line, verdict", [
    ("Current State: 47:[42, 61, 66], Operations: []", Verdict.NO_CHECK),
    ("Moving to Node #0,0", Verdict.NO_CHECK),
    ("No solution found.", Verdict.NO_CHECK),
    ("I think the answer is 47", Verdict.UNFORMALIZABLE),
])
def test_countdown_bookkeeping_and_junk(line, verdict):
    f = countdown_step(cd.parse_line(line))
    assert not f.checked and f.verdict == verdict and f.reason


def test_every_step_kind_of_a_generated_trace(tmp_path, cli):
    out = tmp_path / "cd.jsonl"
    assert cli("gen", "countdown", "--n", "20", "--searcher", "dfs", "--seed", "3", "--out", out, "--quiet").code == 0
    kinds = set()
    from reasonpipe.traces import read_traces

    for trace in read_traces(str(out)):
        formals = formalize(trace)
        assert len(formals) == len(trace.steps)
        for step, f in zip(trace.steps, formals):
            kinds.add(step.kind)
            assert f.checked == (step.kind in ("explore", "generate", "goal", "dead_end"))
            if f.checked:  # our statements are canonical and pass the default policy
                assert parse_declaration(f.statement).head() == f.statement and f.proof is None
                check_statement(f.statement)
    assert {"state", "explore", "generate", "move", "dead_end", "goal"} <= kinds


def test_sudoku_claims_are_stated_over_the_board():
    text = ("START original: (0, 0) = 1 (0, 1) = 2 (1, 0) = 3 solving SOL_S\n"
            "(0, 2) = 3\n"
            "guess: (1, 1) [4, 5] = 4\n"
            "(1, 1) = 4\n"
            "invalid\n"
            "revert: (1, 1) [4, 5] = None\n")
    trace = Trace.from_text("sudoku", text)
    fs = formalize(trace)
    assert [f.verdict for f in fs] == [Verdict.NO_CHECK, None, None, None, Verdict.NO_CHECK, Verdict.NO_CHECK]
    # (0, 2) = 3: the cell is empty, 3 is a digit and not among the peers' digits [1, 2, 3]... (3 is at (1, 0),
    # not a peer of (0, 2)): the peers of (0, 2) hold 1, 2 (row 0) and 3 (box 0)
    assert fs[1].statement == ("theorem step : (0 : Nat) = 0 ∧ (3 : Nat) ∈ [1, 2, 3, 4, 5, 6, 7, 8, 9] ∧ "
                            "(3 : Nat) ∉ ([1, 2, 3] : List Nat)")
    # the guess is stated over the board after the placement: (1, 1)'s peers now hold 1, 2, 3
    assert "(4 : Nat) ∈ ([4, 5] : List Nat)" in fs[2].statement and "d ∉ ([1, 2, 3] : List Nat)" in fs[2].statement
    for f in fs:
        if f.checked:
            assert parse_declaration(f.statement).head() == f.statement and f.proof is None
            check_statement(f.statement)


SAFE_STMT = "theorem test\n  (a x: ℝ)\n  (h₀: a * x + 3 = x - 5)\n  (h₁: x = 3):\n  (a = (-3)) := by sorry"
OURS = "theorem step (a x : ℝ) (h₀ : a * x + 3 = x - 5) (h₁ : x = 3) : (a = (-3))"


def test_formal_fields():
    assert [f.name for f in dataclasses.fields(Formal)] == ["statement", "proof", "verdict", "reason"]
    assert Formal(statement="theorem step : True").checked and not Formal(verdict=Verdict.NO_CHECK).checked
    assert set(FORMALIZERS) == {"countdown", "sudoku", "formal"}


def test_safe_no_verification_required():
    assert formal_step(FormalStep("So x = 3.", "False")).verdict == Verdict.NO_CHECK
    assert formal_step(FormalStep("So x = 3.", None)).verdict == Verdict.NO_CHECK
    assert formal_step(FormalStep("So x = 3.", "  ")).verdict == Verdict.NO_CHECK


def test_safe_statement_has_its_proof_stripped():
    f = formal_step(FormalStep("a = -3", SAFE_STMT))
    assert f.checked and f.statement == OURS and f.proof is None
    d = parse_declaration(f.statement)
    assert d.proof is None and d.name == "step" and [b.names for b in d.binders] == [("a", "x"), ("h₀",), ("h₁",)]


@pytest.mark.parametrize("proof, expected", [
    ("by linarith", "by linarith"),
    (":= by linarith", "by linarith"),
    (":=\n  by\n    linarith -- done", "by\n  linarith"),
    ("by\n  nlinarith [sq_nonneg (a - 3), h₀]\n  -- tail comment\n", "by\n  nlinarith [sq_nonneg (a - 3), h₀]"),
    ("by simp\n   ring", "  by simp\n     ring"),      # the columns relative to each other are kept
    ("  by simp\n    ring", "  by simp\n    ring"),     # ... also the first line's indent
    ("sorry", None), ("by sorry", None), (":= by sorry", None), ("  ", None), ("", None),
])
def test_safe_proof_kept_apart(proof, expected):
    f = formal_step(FormalStep("a = -3", SAFE_STMT, proof=proof))
    assert f.checked and f.statement == OURS and f.proof == expected


@pytest.mark.parametrize("whole, expected", [
    ("theorem test (a x : ℝ) (h₀ : a * x + 3 = x - 5) (h₁ : x = 3) : a = -3 := by linarith", "by linarith"),
    # a different statement: only its proof is kept, Lean checks that proof against OUR statement
    ("theorem foo (a x : ℝ) (h : True) : 1 = 1 := by\n  linarith -- done", "by\n  linarith"),
    ("lemma foo : a = -3 := by\n  subst h₁\n  linarith", "by\n  subst h₁\n  linarith"),
    ("example : False := absurd h₁ (by norm_num)", "absurd h₁ (by norm_num)"),
    ("/-- doc -/\ntheorem foo : False := by linarith", "by linarith"),
    ("set_option maxHeartbeats 400000 in\ntheorem foo : False := by linarith", "by linarith"),
    ("theorem foo : a = -3 := by sorry", None),
    ("theorem foo : a = -3", None),
])
def test_safe_whole_declaration_contributes_only_its_proof(whole, expected):
    f = formal_step(FormalStep("a = -3", SAFE_STMT, proof=whole))
    assert f.checked and f.statement == OURS and f.proof == expected


def test_the_provers_statement_never_replaces_ours():
    lie = "theorem test (a x : ℝ) (h₀ : a * x + 3 = x - 5) (h₁ : x = 3) : True := trivial"
    f = formal_step(FormalStep("a = -3", SAFE_STMT, proof=lie))
    assert f.statement == OURS and f.proof == "trivial"
    # an unknown binder form could move the prover's `:=`: rejected, never guessed
    sneaky = "theorem t : let_delayed x := 5; x = 5 := by simp"
    f = formal_step(FormalStep("a = -3", SAFE_STMT, proof=sneaky))
    assert f.verdict == Verdict.UNFORMALIZABLE and "let_delayed" in f.reason


def test_safe_statement_with_its_own_proof():
    f = formal_step(FormalStep("t", "theorem t (x : ℕ) : x + 0 = x := by simp"))
    assert (f.statement, f.proof) == ("theorem step (x : ℕ) : x + 0 = x", "by simp")
    # the record's proof field wins over a proof inside its statement
    f = formal_step(FormalStep("t", "theorem t (x : ℕ) : x + 0 = x := by simp", proof="by omega"))
    assert f.proof == "by omega"
    f = formal_step(FormalStep("t", "set_option maxHeartbeats 1000 in\n/-- doc -/ example : 1 = 1 := rfl"))
    assert (f.statement, f.proof) == ("set_option maxHeartbeats 1000 in\ntheorem step : 1 = 1", "rfl")


@pytest.mark.parametrize("statement, proof, match", [
    ("theorem t : True := trivial\n#eval 1", None, "rejected by the guard: command `#eval`"),
    ("axiom cheat : False", None, "axiom"),
    ("theorem t : True := by exact sorry", None, "sorry"),
    (SAFE_STMT, "by simp\n#eval 1", "proof is rejected by the guard: command `#eval`"),
    (SAFE_STMT, "theorem a : True := trivial\ntheorem b : True := trivial", "second declaration"),
    (SAFE_STMT, "by exact sorry", "sorry"),
    (SAFE_STMT, 'by "unterminated', "unterminated string"),
])
def test_safe_rejections_are_unformalizable(statement, proof, match):
    f = formal_step(FormalStep("s", statement, proof=proof))
    assert f.verdict == Verdict.UNFORMALIZABLE and match in f.reason and f.statement == "" and f.proof is None


def test_passthrough_trace():
    steps = [FormalStep("a", SAFE_STMT, "by linarith"), FormalStep("b", "False")]
    trace = Trace(task="formal", problem=None, steps=steps, meta={})
    fs = formalize(trace)
    assert [f.verdict for f in fs] == [None, Verdict.NO_CHECK] and fs[0].proof == "by linarith"


def test_unknown_task_is_unformalizable():
    trace = Trace(task="nope", problem=None, steps=[FormalStep("a", SAFE_STMT)], meta={})
    (f,) = formalize(trace)
    assert f.verdict == Verdict.UNFORMALIZABLE and "nope" in f.reason


def test_main_prints_statements(capsys):
    assert main(["Exploring Operation: 25+3=28, Resulting Numbers: [28]", "Moving to Node #0,0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "theorem step : (25 : Int) + 3 = 28" and out[1].startswith("no_check: ")
