"""The Lean verifier end to end: file backend against a stand-in `lean` (tests/lean/fakes/fake_lean.py), the CLI
without Lean, and (marker `lean`) the same paths against a real Lean on PATH."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonpipe.traces import Trace
from reasonpipe.verifiers import get_verifier
from reasonpipe.verifiers.lean import LeanConfig, LeanVerifier
from reasonpipe.verifiers.lean.backends import FileBackend
from reasonpipe.verifiers.lean.formalize import Formal, theorem
from reasonpipe.verifiers.lean.sandbox import Limits
from reasonpipe.verifiers.verdicts import StepVerdict, Verdict

FAKE_LEAN = Path(__file__).parent / "fakes" / "fake_lean.py"
CD = ("Current State: 28:[25, 3, 4], Operations: []\n"
      "Exploring Operation: 25+3=28, Resulting Numbers: [4, 28]\n"
      "Generated Node #0,0: 28:[4, 28] Operation: 25+3=28\n"
      "Moving to Node #0,0\n"
      "Current State: 28:[4, 28], Operations: ['25+3=28']\n"
      "Exploring Operation: 28*4=112, Resulting Numbers: [112]\n"
      "112,28 unequal: No Solution\n"
      "Moving to Node #0\n"
      "Current State: 28:[25, 3, 4], Operations: []\n"
      "Exploring Operation: 4-3=1, Resulting Numbers: [25, 1]\n"
      "Generated Node #0,1: 28:[25, 1] Operation: 4-3=1\n"
      "Moving to Node #0,1\n"
      "Current State: 28:[25, 1], Operations: ['4-3=1']\n"
      "Exploring Operation: 25+1=26, Resulting Numbers: [26]\n"
      "26,28 unequal: No Solution\n")


@pytest.fixture
def fake_lean(tmp_path) -> str:
    """The stand-in as an executable named `lean` (a link to the script: the backend runs it like Lean, through
    the sandbox, which binds the script's folder and interpreter)."""
    exe = tmp_path / "bin" / "lean"
    exe.parent.mkdir()
    exe.symlink_to(FAKE_LEAN)
    return str(exe)


def _verifier(lean: str, **kw) -> LeanVerifier:
    return LeanVerifier(LeanConfig(lean=lean, memory_mb=None, **kw))


def test_countdown_trace_through_the_file_backend(fake_lean):
    v = _verifier(fake_lean)
    trace = Trace.from_text("countdown", CD, id="t")
    assert get_verifier("countdown").report(trace).valid  # a well-formed trace (the exact verifier agrees)
    report = v.report(trace)
    assert report.valid and not report.solved
    assert [x.verdict for x in report.verdicts][:8] == ["no_check", "proved", "proved", "no_check", "no_check",
                                                          "proved", "proved", "no_check"]
    assert report.verdicts[1].reason == "Lean: by decide"
    # each explore line and its generate line state the same theorem: checked once
    # `lean --version` (the cache key), `--help` and `--print-libdir` (features), one keyword probe (the words
    # `step` and `Int`), then one batch: Stmts, Cand and Check
    assert v.stats.statements == 8 and v.stats.distinct == 6 and v.backend.runs == 1 + 2 + 1 + 3


def test_false_arithmetic_is_refuted_with_lean_message(fake_lean):
    v = _verifier(fake_lean)
    bad = CD.replace("Exploring Operation: 28*4=112", "Exploring Operation: 28*4=113")
    report = v.report(Trace.from_text("countdown", bad, id="t"))
    assert not report.valid and report.first_failure == 5
    assert report.verdicts[5] == StepVerdict(Verdict.REFUTED, "Lean proves the negation by decide")


def test_verdict_kinds_and_rounds(fake_lean):
    v = _verifier(fake_lean, tactics=("bogus_tactic", "decide"))
    formals = [theorem("(2 : Int) + 2 = 4"),                              # proved by the second tactic
               Formal("theorem t : foo + 1 = 2"),                           # Lean cannot elaborate the statement
               Formal("theorem t : (1 : Int) = 1\n#eval 1"),                # guard: a command after it
               Formal("theorem t : True", "trivial"),                       # vacuous
               Formal("theorem t (h : (1 : Int) = 1) : (3 : Int) = 3"),     # proved by decide, not vacuous
               Formal("theorem t : (2 : Int) + 2 = 5", "by native_decide"),  # the policy refuses native_decide
               Formal(verdict=Verdict.NO_CHECK, reason="bookkeeping")]
    out = v.check_formals(formals)
    assert [o.verdict for o in out] == [Verdict.PROVED, Verdict.UNFORMALIZABLE, Verdict.UNFORMALIZABLE,
                                        Verdict.VACUOUS, Verdict.PROVED, Verdict.UNFORMALIZABLE, Verdict.NO_CHECK]
    assert out[0].reason == "Lean: by decide"
    assert "unknown identifier" in out[1].reason.lower() and "guard" in out[2].reason and "native_decide" in out[5].reason


def test_contradictory_hypotheses_are_vacuous(fake_lean):
    # (h : 2 + 2 = 5) is false, so any conclusion follows: proved by Lean, but vacuous
    out = _verifier(fake_lean).check_formals([Formal("theorem t (h : (2 : Int) + 2 = 5) : (1 : Int) = 1")])
    assert out[0].verdict == Verdict.VACUOUS
    # the same through Lean's probe, where the guard's syntax check cannot see it: (h : x < 0) over Nat
    out = _verifier(fake_lean).check_formals([Formal("theorem t (x : Nat) (h : x + 1 = 0) : (1 : Int) = 1")])
    assert out[0].verdict == Verdict.VACUOUS and "Lean proves False" in out[0].reason


def test_sorry_and_native_decide_never_count(fake_lean):
    # configured tactics are the user's own (not allow-listed), but the axioms check still applies to them
    v = _verifier(fake_lean, tactics=("native_decide",))
    out = v.check_formals([theorem("(2 : Int) + 2 = 4")])
    assert out[0].verdict == Verdict.REFUTED  # no sound proof found
    assert "Lean.ofReduceBool" in out[0].reason
    with pytest.raises(ValueError, match="sorry"):  # a closing tactic that cannot prove anything is refused
        LeanConfig(tactics=("sorry",))
    # with --trust-tactics a prover's native_decide gets to Lean, and its axiom fails it there
    v = _verifier(fake_lean, trust_tactics=True)
    out = v.check_formals([Formal("theorem t : (2 : Int) + 2 = 4", "by native_decide")])
    assert out[0].verdict == Verdict.PROVED and out[0].reason == "Lean: by decide"


def test_timeout_and_crash_are_errors_and_each_step_rerun_once_alone(fake_lean):
    backend = FileBackend(fake_lean, limits=Limits(timeout_s=1, memory_mb=None), batch_size=8)
    v = LeanVerifier(LeanConfig(lean=fake_lean, memory_mb=None, tactics=("decide",)), backend=backend)
    formals = [theorem(f"({i} : Int) + 1 = {i + 1}") for i in range(6)]
    formals[2] = theorem("(7777777 : Int) = 7777777")  # the stand-in hangs on this one
    formals[4] = theorem("(6666666 : Int) = 6666666")  # and crashes on this one
    v.check_formals(formals[:1])  # the keyword probe and the features, out of the count below
    runs = backend.runs
    out = v.check_formals(formals)
    assert [o.verdict for o in out] == ["proved", "proved", "error", "proved", "error", "proved"]
    assert "timed out" in out[2].reason and "SIGSEGV" in out[4].reason
    # the batch (Stmts and Cand at once) failed, then each step alone: at most 3 runs per step, no bisection
    assert backend.runs - runs <= 2 + 3 * 6
    # as a step-level reward: a Lean failure is "unknown" (None), never a wrong step
    trace = Trace.from_text("countdown", CD.replace("28*4=112", "7777777*1=7777777"))
    assert v.report(trace).step_score is None
    assert v.report(Trace.from_text("countdown", CD)).step_score == 1.0


def test_cache_across_runs(fake_lean, tmp_path):
    cache = str(tmp_path / "lean.db")
    trace = Trace.from_text("countdown", CD, id="t")
    first = _verifier(fake_lean, cache=cache)
    assert first.report(trace).valid and first.stats.cache_hits == 0
    first.close()
    second = _verifier(fake_lean, cache=cache)
    report = second.report(trace)
    assert report.valid and second.stats.cache_hits == 6 and second.stats.lean_attempts == 0
    assert second.backend.runs == 1  # `lean --version` for the cache key, nothing else
    assert report.verdicts[1].reason == "Lean: by decide (cached)"
    second.close()


def test_exact_plus_lean(fake_lean):
    v = _verifier(fake_lean)
    good = v.report_many([(1, Trace.from_text("countdown", CD, id="a"))], exact=True)[0]
    assert good.valid and "Lean: by decide" in good.verdicts[1].reason
    # wrong bookkeeping, right arithmetic: the exact verifier refutes, Lean's arithmetic proof does not save it
    bad = CD.replace("Resulting Numbers: [4, 28]", "Resulting Numbers: [5, 28]")
    report = v.report_many([(1, Trace.from_text("countdown", bad, id="b"))], exact=True)[0]
    assert report.verdicts[1].verdict == Verdict.REFUTED


def test_cli_lean_backend(fake_lean, tmp_path, cli):
    path = tmp_path / "cd.jsonl"
    assert cli("gen", "countdown", "--n", "5", "--searcher", "dfs", "--seed", "1", "--out", path, "--quiet").code == 0
    r = cli("verify", path, "--backend", "lean", "--lean", fake_lean, "--quiet", "--out", tmp_path / "v.jsonl")
    assert r.code == 0, r.out + r.err
    assert "statements not sent to Lean" in r.out
    r = cli("verify", path, "--backend", "exact+lean", "--lean", fake_lean, "--quiet", "--jobs", "2")
    assert r.code == 0, r.out + r.err


def test_cli_safe_records(fake_lean, tmp_path, cli):
    path = tmp_path / "safe.jsonl"
    records = [{"answer": "4", "correct": True, "steps": [
        {"step": "2 + 2 = 4", "formal_statement": "theorem test : (2 : Int) + 2 = 4 := by sorry", "proof": None},
        {"step": "so the answer is 4", "formal_statement": "False"}]},
        {"answer": "5", "correct": False, "steps": [
            {"step": "2 + 2 = 5", "formal_statement": "theorem test : (2 : Int) + 2 = 5 := by sorry"}]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    r = cli("verify", path, "--backend", "lean", "--lean", fake_lean, "--quiet")
    assert r.code == 1 and "refuted" in r.out and "format" in r.out and "safe" in r.out
    r = cli("verify", path, "--quiet")
    assert r.code == 2 and "--backend lean" in r.err


def test_cli_without_lean_says_how_to_install(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no lean anywhere
    path = tmp_path / "cd.txt"
    path.write_text(CD)
    r = cli("verify", path, "--backend", "lean")
    assert r.code == 2 and "elan" in r.err and "lean" in r.err
    r = cli("verify", path, "--backend", "lean", "--lean-mode", "repl")
    assert r.code == 2 and "repl" in r.err


# -- a real Lean ---------------------------------------------------------------------------------------------

@pytest.mark.lean
def test_real_lean_countdown_file_mode(tmp_path, cli):
    path = tmp_path / "cd.jsonl"
    assert cli("gen", "countdown", "--n", "5", "--searcher", "dfs", "--seed", "1", "--out", path, "--quiet").code == 0
    r = cli("verify", path, "--backend", "exact+lean", "--quiet")
    assert r.code == 0, r.out + r.err


@pytest.mark.lean
def test_real_lean_verdicts():
    v = LeanVerifier(LeanConfig(memory_mb=None))
    out = v.check_formals([theorem("(25 : Int) + 3 = 28"), theorem("(7 : Int) * 8 = 57"),
                           Formal("theorem t : foo + 1 = 2"),
                           Formal("theorem t : (2 : Nat) + 2 = 5", "by decide"),
                           Formal("theorem t (h : (1 : Nat) = 2) : (5 : Nat) = 7", "by cases h"),
                           Formal("theorem t (x : Nat) (h : x + 1 = 0) : (5 : Nat) = 7", "by cases h")])
    assert [o.verdict for o in out] == [Verdict.PROVED, Verdict.REFUTED, Verdict.UNFORMALIZABLE, Verdict.REFUTED,
                                        Verdict.VACUOUS, Verdict.VACUOUS]
    v.close()


@pytest.mark.lean
@pytest.mark.lean_repl
def test_real_lean_repl_mode():
    v = LeanVerifier(LeanConfig(mode="repl"))
    out = v.check_formals([theorem("(25 : Int) + 3 = 28"), theorem("(7 : Int) * 8 = 57")])
    assert [o.verdict for o in out] == [Verdict.PROVED, Verdict.REFUTED]
    v.close()
