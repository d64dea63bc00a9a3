"""Lean formalization of trace steps, and reading real Lean output (../shared/lean/cli-cases.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonpipe.traces import Trace
from reasonpipe.traces import countdown as cd
from verifiers.lean.backends import OK, PROOF, STATEMENT, Attempt, assign, classify
from verifiers.lean.diagnostics import axioms_in, parse_output, unsound_axioms
from verifiers.lean.formalize import FormalStep, countdown_step, formal_step, formalize
from verifiers.verdicts import Verdict

SHARED = Path(__file__).resolve().parent / "data"  # a copy of ../shared/lean (real Lean output)
CLI_CASES = SHARED / "lean" / "cli-cases.json"


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
    assert f.checked and f.source == source


def test_false_division_is_stated_as_false_multiplication():
    # 7/2=3 breaks the exact-division rule: 3 * 2 = 7 is false, so Lean cannot prove it
    assert countdown_step(cd.parse_line("Exploring Operation: 7/2=3, Resulting Numbers: [3]")).source == \
        "theorem step : (2 : Int) ≠ 0 ∧ (3 : Int) * 2 = 7"
    assert "(0 : Int) ≠ 0" in countdown_step(cd.parse_line("Exploring Operation: 0/0=5, Resulting Numbers: [5]")).source


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
    assert fs[1].source == ("theorem step : (0 : Nat) = 0 ∧ (3 : Nat) ∈ [1, 2, 3, 4, 5, 6, 7, 8, 9] ∧ "
                            "(3 : Nat) ∉ ([1, 2, 3] : List Nat)")
    # the guess is stated over the board after the placement: (1, 1)'s peers now hold 1, 2, 3
    assert "(4 : Nat) ∈ ([4, 5] : List Nat)" in fs[2].source and "d ∉ ([1, 2, 3] : List Nat)" in fs[2].source


def test_safe_pass_through():
    assert formal_step(FormalStep("So x = 3.", "False")).verdict == Verdict.NO_CHECK
    assert formal_step(FormalStep("So x = 3.", None)).verdict == Verdict.NO_CHECK
    stmt = "theorem test\n  (a x: ℝ)\n  (h₀: a * x + 3 = x - 5)\n  (h₁: x = 3):\n  (a = (-3)) := by sorry"
    f = formal_step(FormalStep("a = -3", stmt))
    assert f.checked and f.source == stmt  # the guard turns `by sorry` into "no proof yet"
    f = formal_step(FormalStep("a = -3", stmt, proof="by linarith"))
    assert f.source.endswith(":= by linarith") and "sorry" not in f.source
    whole = "theorem test (a x : ℝ) (h₀ : a * x + 3 = x - 5) (h₁ : x = 3) : a = -3 := by linarith"
    f = formal_step(FormalStep("a = -3", stmt, proof=whole))
    assert f.source == whole and f.expect == stmt  # the verifier checks both state the same


# -- real Lean output -------------------------------------------------------------------------------------

def _cases() -> dict[str, dict]:
    if not CLI_CASES.is_file():
        pytest.skip(f"recorded Lean output not found at {CLI_CASES}")
    return {c["file"]: c for c in json.loads(CLI_CASES.read_text())["cases"]}


def _outcomes(case: dict) -> list[str]:
    """Each `theorem` line of a recorded case as one step: its outcome from the recorded output."""
    lines = case["source"].splitlines()
    steps = [(i + 1, line) for i, line in enumerate(lines) if line.startswith("theorem ")]
    diags, axioms = parse_output(case["stdout"] + case["stderr"], case["file"])
    spans = [(n, n) for n, _ in steps]
    per = assign(diags, spans)
    out = []
    for (n, line), d in zip(steps, per):
        name = line.split()[1]
        col = line.index(":=") + 3
        attempt = Attempt(text=line, proof_line=0, proof_column=col)
        printed = axioms.get(name, () if "#print axioms" not in case["source"] else None)
        out.append(classify(attempt, d, printed).status)
    return out


@pytest.mark.parametrize("name, expected", [
    ("arith_valid.lean", [OK, OK, OK, OK]),
    ("arith_mixed.lean", [OK, PROOF, OK, PROOF]),        # 7*8=57 and 66-19=46 fail at `decide`
    ("parse_error.lean", [STATEMENT, OK]),               # `(1 : Nat) + = 2`: the statement does not parse
    ("unknown_ident.lean", [STATEMENT]),
    ("duplicate_name.lean", [OK, STATEMENT]),            # the clash is at the name: the batch backend namespaces
    ("print_axioms.lean", [OK, PROOF]),                  # step_2 depends on sorryAx
    ("axiom_cheat.lean", [PROOF]),                       # depends on the added axiom `cheat`
    ("huge_numbers.lean", [OK]),
])
def test_recorded_diagnostics_map_to_the_right_steps(name, expected):
    assert _outcomes(_cases()[name]) == expected


def test_recorded_messages_and_axioms():
    cases = _cases()
    diags, _ = parse_output(cases["arith_mixed.lean"]["stdout"], "arith_mixed.lean")
    assert [(d.line, d.column, d.severity) for d in diags] == [(2, 42, "error"), (4, 44, "error")]
    assert diags[0].text == "failed to reduce to 'true'\n  false"
    _, axioms = parse_output(cases["print_axioms.lean"]["stdout"], "print_axioms.lean")
    assert axioms == {"step_1": (), "step_2": ("sorryAx",)}
    assert unsound_axioms(("propext", "Classical.choice", "Quot.sound")) == ()
    assert unsound_axioms(("propext", "Lean.ofReduceBool")) == ("Lean.ofReduceBool",)
    # newer releases print the report as an info message; the REPL sends it as a message's data
    assert parse_output("Steps.lean:9:0: info: 'S3.step' depends on axioms: [propext,\n Quot.sound]\n")[1] == \
        {"S3.step": ("propext", "Quot.sound")}
    assert axioms_in("'step' depends on axioms: [sorryAx]") == ("step", ("sorryAx",))
