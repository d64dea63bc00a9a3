"""The Lean verifier end to end: file backend against a stand-in `lean` (tests/fakes/fake_lean.py), the CLI
without Lean, and (marker `lean`) the same paths against a real Lean on PATH."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from reasonpipe.traces import Trace
from verifiers import get_verifier
from verifiers.lean import LeanConfig, LeanVerifier
from verifiers.lean.backends import FileBackend
from verifiers.lean.formalize import Formal, theorem
from verifiers.lean.sandbox import Limits
from verifiers.verdicts import StepVerdict, Verdict

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
    """The stand-in as an executable named `lean` (the backend runs it like Lean, through the sandbox)."""
    exe = tmp_path / "bin" / "lean"
    exe.parent.mkdir()
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE_LEAN} \"$@\"\n")
    exe.chmod(0o755)
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
    assert v.stats.statements == 8 and v.stats.distinct == 6 and v.backend.runs == 1


def test_false_arithmetic_is_refuted_with_lean_message(fake_lean):
    v = _verifier(fake_lean)
    bad = CD.replace("Exploring Operation: 28*4=112", "Exploring Operation: 28*4=113")
    report = v.report(Trace.from_text("countdown", bad, id="t"))
    assert not report.valid and report.first_failure == 5
    assert report.verdicts[5] == StepVerdict(Verdict.REFUTED, "Lean proves the negation by decide")


def test_verdict_kinds_and_rounds(fake_lean):
    v = _verifier(fake_lean, tactics=("bogus_tactic", "decide"))
    formals = [theorem("(2 : Int) + 2 = 4"),                              # proved by the second tactic
               Formal(source="theorem t : foo + 1 = 2"),                    # Lean cannot elaborate the statement
               Formal(source="theorem t : (1 : Int) = 1\n#eval 1"),         # guard: a command after it
               Formal(source="theorem t : True := trivial"),                # vacuous
               Formal(source="theorem t (h : (1 : Int) = 1) : (3 : Int) = 3 := by sorry"),
               Formal(source="theorem t : (2 : Int) + 2 = 5 := by native_decide"),
               Formal(verdict=Verdict.NO_CHECK, reason="bookkeeping")]
    out = v.check_formals(formals)
    assert [o.verdict for o in out] == [Verdict.PROVED, Verdict.UNFORMALIZABLE, Verdict.UNFORMALIZABLE,
                                        Verdict.VACUOUS, Verdict.PROVED, Verdict.REFUTED, Verdict.NO_CHECK]
    assert out[0].reason == "Lean: by decide"
    assert "unknown identifier" in out[1].reason and "guard" in out[2].reason


def test_contradictory_hypotheses_are_vacuous(fake_lean):
    # (h : 2 + 2 = 5) is false, so any conclusion follows: proved by Lean, but vacuous
    out = _verifier(fake_lean).check_formals([Formal(source="theorem t (h : (2 : Int) + 2 = 5) : (1 : Int) = 1")])
    assert out[0].verdict == Verdict.VACUOUS


def test_sorry_and_native_decide_never_count(fake_lean):
    v = _verifier(fake_lean, tactics=("sorry",))
    out = v.check_formals([theorem("(2 : Int) + 2 = 4"), Formal(source="theorem t : (2 : Int) + 2 = 4 := by native_decide")])
    assert [o.verdict for o in out] == [Verdict.REFUTED, Verdict.REFUTED]  # no sound proof found
    assert "sorryAx" in out[0].reason and "Lean.ofReduceBool" in out[1].reason


def test_timeout_and_crash_are_errors_and_bisected(fake_lean):
    backend = FileBackend(fake_lean, limits=Limits(timeout_s=1, memory_mb=None), batch_size=8)
    v = LeanVerifier(LeanConfig(lean=fake_lean, memory_mb=None, tactics=("decide",)), backend=backend)
    formals = [theorem(f"({i} : Int) + 1 = {i + 1}") for i in range(6)]
    formals[2] = theorem("(7777777 : Int) = 7777777")  # the stand-in hangs on this one
    formals[4] = theorem("(6666666 : Int) = 6666666")  # and crashes on this one
    out = v.check_formals(formals)
    assert [o.verdict for o in out] == ["proved", "proved", "error", "proved", "error", "proved"]
    assert "timed out" in out[2].reason and "signal" in out[4].reason.lower()
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

requires_lean = pytest.mark.skipif(shutil.which("lean") is None, reason="no `lean` on PATH")


@pytest.mark.lean
@requires_lean
def test_real_lean_countdown_file_mode(tmp_path, cli):
    path = tmp_path / "cd.jsonl"
    assert cli("gen", "countdown", "--n", "5", "--searcher", "dfs", "--seed", "1", "--out", path, "--quiet").code == 0
    r = cli("verify", path, "--backend", "exact+lean", "--quiet")
    assert r.code == 0, r.out + r.err


@pytest.mark.lean
@requires_lean
def test_real_lean_verdicts():
    v = LeanVerifier(LeanConfig())
    out = v.check_formals([theorem("(25 : Int) + 3 = 28"), theorem("(7 : Int) * 8 = 57"),
                           Formal(source="theorem t : foo + 1 = 2"),
                           Formal(source="theorem t : (2 : Nat) + 2 = 5 := sorry"),
                           Formal(source="theorem t (h : (1 : Nat) = 2) : (5 : Nat) = 7 := by cases h")])
    assert [o.verdict for o in out] == [Verdict.PROVED, Verdict.REFUTED, Verdict.UNFORMALIZABLE, Verdict.REFUTED,
                                        Verdict.VACUOUS]


@pytest.mark.lean
@pytest.mark.skipif(shutil.which("repl") is None, reason="no leanprover-community `repl` on PATH")
def test_real_lean_repl_mode():
    v = LeanVerifier(LeanConfig(mode="repl"))
    out = v.check_formals([theorem("(25 : Int) + 3 = 28"), theorem("(7 : Int) * 8 = 57")])
    assert [o.verdict for o in out] == [Verdict.PROVED, Verdict.REFUTED]
    v.close()


# -- the REPL backend, against the fake REPL replaying a recording in the REPL's own format ---------------

def test_repl_backend_maps_messages_to_verdicts(tmp_path):
    """Two steps through `--lean-mode repl`: the replies are written as the real REPL writes them (positions
    relative to the command, the `#print axioms` report as an info message)."""
    good, bad = theorem("(25 : Int) + 3 = 28"), theorem("(7 : Int) * 8 = 57")
    att = LeanVerifier._attempt
    decl = __import__("verifiers.lean.guard", fromlist=["parse_declaration"]).parse_declaration
    texts = [att(decl(good.source), "by decide").text, att(decl(bad.source), "by decide").text,
             att(decl("theorem step : ¬ ((7 : Int) * 8 = 57)"), "by decide").text]

    def info(line: int, data: str) -> dict:
        return {"severity": "info", "pos": {"line": line, "column": 0}, "endPos": {"line": line, "column": 18},
                "data": data}

    replies = [{"messages": [info(2, "'step' does not depend on any axioms")], "env": 0},
               {"messages": [{"severity": "error", "pos": {"line": 1, "column": 38},
                              "endPos": {"line": 1, "column": 44}, "data": "decide failed: the proposition\n  7 * 8 = 57\nis false"},
                             info(2, "'step' depends on axioms: [sorryAx]")], "env": 1},
               {"messages": [info(2, "'step' does not depend on any axioms")], "env": 2}]
    requests = [{"cmd": t + "\n#print axioms step"} for t in texts]
    golden = tmp_path / "golden"
    golden.mkdir()
    (golden / "steps.in").write_text("\n\n".join(json.dumps(r) for r in requests) + "\n")
    (golden / "steps.expected.out").write_text("\n\n".join(json.dumps(r) for r in replies) + "\n")
    repl = tmp_path / "bin" / "repl"
    repl.parent.mkdir()
    fake = Path(__file__).parent / "fakes" / "fake_repl.py"
    repl.write_text(f"#!/bin/sh\nexec {sys.executable} -S -I {fake} --golden steps --dir {golden}\n")
    repl.chmod(0o755)
    v = LeanVerifier(LeanConfig(mode="repl", repl=str(repl), memory_mb=None, tactics=("decide",)))
    out = v.check_formals([good, bad])
    v.close()
    assert out == [StepVerdict(Verdict.PROVED, "Lean: by decide"),
                   StepVerdict(Verdict.REFUTED, "Lean proves the negation by decide")]
