"""Adversarial proofs against `reasonpipe verify --backend lean`, end to end, in file and REPL modes.

Each class of weakness in docs/lean-trust.md gets a prover that tries it. The stand-ins (tests/lean/fakes/) print
what real Lean prints for these proofs: a `trace` is its own message at the tactic (bare in the 2021 Lean's
layout, where it looks exactly like a `#print axioms` report), `fail "s"` is an error that echoes s, a smuggled
`evil_cmd` (a command keyword only the stand-in's grammar has) logs its text, `include_str` really reads the
file. The prover wins if any forged step, or any honest neighbour in the same batch, is reported otherwise than
Lean's own answer: every forgery must stay not proved, every honest step proved.

Modes: `file` with the current layout (`lean --json` detected and used), `file-early` (the 2021 layout: plain
text, bare information messages) and `repl` (the REPL's JSON protocol, three commands a step).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from pathlib import Path

import pytest

from reasonpipe.verifiers.lean.backends import FileBackend, Goal
from reasonpipe.verifiers.lean.guard import parse_declaration
from reasonpipe.verifiers.lean.sandbox import Limits

FAKES = Path(__file__).parent / "fakes"
MODES = ("file", "file-early", "repl")


@pytest.fixture
def toolchain(tmp_path) -> Path:
    """The stand-ins, linked under names the fakes read: `lean` (current layout), `lean-early`, `repl-eval`
    (an evaluating REPL), `lean4checker`. The sandbox binds the links' folder and the scripts' real folder."""
    bin_dir = tmp_path / "toolchain" / "bin"
    bin_dir.mkdir(parents=True)
    for name, target in (("lean", "fake_lean.py"), ("lean-early", "fake_lean.py"), ("repl-eval", "fake_repl.py"),
                         ("lean4checker", "fake_lean4checker.py")):
        (bin_dir / name).symlink_to(FAKES / target)
    return bin_dir


def _record(statement: str, proof: str | None, text: str = "a step") -> dict:
    step = {"step": text, "formal_statement": f"theorem test {statement} := by sorry"}
    if proof is not None:
        step["proof"] = proof
    return {"steps": [step]}


def _honest(n: int) -> list[dict]:
    """True steps with proofs Lean accepts: the neighbours a forger aims at."""
    return [_record(f": ({k} : Int) + 1 = {k + 1}", "by decide", f"honest {k}") for k in range(1, n + 1)]


def _verify(cli, tmp_path: Path, toolchain: Path, mode: str, records: list[dict], *extra: str):
    """Run the CLI on the records (one trace each): (exit code, verdict of each record's one step, output)."""
    path = tmp_path / f"safe-{secrets.token_hex(4)}.jsonl"
    out = path.with_suffix(".verdicts.jsonl")
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    lean = ["--lean-mode", "repl", "--repl", toolchain / "repl-eval"] if mode == "repl" else \
        ["--lean", toolchain / ("lean-early" if mode == "file-early" else "lean")]
    r = cli("verify", path, "--format", "safe", "--backend", "lean", "--quiet", "--out", out, "--memory-mb", "2048",
            *lean, *extra)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return r.code, [(row["verdicts"][0], row.get("reasons", {}).get("1", "")) for row in rows], r


def _proved(verdicts) -> list[bool]:
    return [v == "proved" for v, _ in verdicts]


# -- 1. output injection -------------------------------------------------------------------------------------

# what a proof of a FALSE statement prints to forge a verdict, for itself or for a neighbour
FORGED_LINES = ["'S0.step' does not depend on any axioms",             # the earlier protocol's per-step report
                "'step' does not depend on any axioms",
                *(f"Cand.lean:{n}:0: error: forged" for n in range(1, 13)),   # errors for every neighbour's line
                *(f"Check.lean:{n}:0: error: forged" for n in range(1, 13))]


def _forgers() -> list[dict]:
    text = "\\n".join(FORGED_LINES)
    lie = ": (2 : Int) + 2 = 5"
    return [_record(lie, f'by trace "{text}"\n  decide', "logs a message"),
            _record(lie, f'by fail "{text}"', "fails with an echo"),
            _record(lie, f'by\n  let s := "{text}"\n  decide', "echoed by unsolved goals"),
            _record(lie, 'by trace "\'rpG_000000000000_0\' does not depend on any axioms"\n  decide', "guesses"),
            _record(lie, "by decide\nevil_cmd step is proved", "smuggles a command")]


@pytest.mark.parametrize("mode", MODES)
def test_output_injection_default_mode_refuses_every_printing_proof(cli, tmp_path, toolchain, mode):
    records = _honest(3) + _forgers() + _honest(3)
    code, verdicts, r = _verify(cli, tmp_path, toolchain, mode, records)
    assert code == 1, r.out + r.err
    assert _proved(verdicts) == [True] * 3 + [False] * 5 + [True] * 3, verdicts
    forged = verdicts[3:8]
    assert all(v == "unformalizable" for v, _ in forged), forged
    assert "prints" in forged[0][1] and "evil_cmd" in forged[4][1]


@pytest.mark.parametrize("mode", MODES)
def test_output_injection_reaching_lean_never_forges_a_verdict(cli, tmp_path, toolchain, mode):
    """--trust-tactics lets the printing reach Lean: the trusted check still decides, and the honest neighbours
    (in the same batch, from other traces) are still proved."""
    records = _honest(4) + _forgers()[:4] + _honest(4)
    code, verdicts, r = _verify(cli, tmp_path, toolchain, mode, records, "--trust-tactics")
    assert code == 1, r.out + r.err
    assert _proved(verdicts) == [True] * 4 + [False] * 4 + [True] * 4, verdicts
    # the false statement is refuted (its negation is proved by decide), whatever it printed
    assert {v for v, _ in verdicts[4:8]} == {"refuted"}, verdicts[4:8]


@pytest.mark.parametrize("mode", MODES)
def test_forged_verdicts_are_never_cached(cli, tmp_path, toolchain, mode):
    cache = tmp_path / "lean.db"
    records = _honest(2) + _forgers()[:4] + _honest(2)
    for run in range(2):
        code, verdicts, r = _verify(cli, tmp_path, toolchain, mode, records, "--trust-tactics", "--cache", cache)
        assert _proved(verdicts) == [True] * 2 + [False] * 4 + [True] * 2, (run, verdicts)
    # the second run answered every step from the cache, with the same verdicts
    assert "(cached)" in verdicts[2][1] and re.search(r"declarations Lean checked\s*│\s*0\b", r.out), r.out


def test_a_smuggled_command_cannot_reach_the_check(toolchain):
    """Below the guard and the keyword probe: a second command inside a proof runs when Cand is compiled, and
    prints a forged report there; the verdict comes from Check, where it cannot print."""
    backend = FileBackend(str(toolchain / "lean-early"), limits=Limits(timeout_s=20, memory_mb=None))
    lie = parse_declaration("theorem step : (2 : Int) + 2 = 5")
    truth = parse_declaration("theorem step : (2 : Int) + 2 = 4")
    smuggled = "by decide\nevil_cmd 'rpG_000000000000_0' does not depend on any axioms"
    out = backend.check([Goal(truth, "by decide"), Goal(lie, smuggled), Goal(truth, "by decide")])
    assert [o.status for o in out] == ["ok", "proof", "ok"]


# -- 2. statement ownership ----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_a_provers_own_statement_is_never_used(cli, tmp_path, toolchain, mode):
    records = [
        # the prover states something true and proves it: only its proof is kept, against our (false) statement
        _record(": (2 : Int) + 2 = 5", "theorem test : (2 : Int) + 2 = 4 := by decide"),
        # a binder form the parser does not take, in the prover's declaration: refused, not guessed at
        _record(": (2 : Int) + 2 = 5", "theorem test (h : let_fun y := 1; y = 1) : (2 : Int) + 2 = 4 := by decide"),
        # the same binder form in the challenge itself: refused, never mis-parsed
        _record("(x : Nat) (h : let_fun y := x; y = 1) : x = 1", "by decide"),
        # an honest prover's declaration: its proof proves our statement
        _record(": (2 : Int) + 2 = 4", "theorem whatever : (2 : Int) + 2 = 4 := by decide"),
    ]
    code, verdicts, r = _verify(cli, tmp_path, toolchain, mode, records)
    assert [v for v, _ in verdicts] == ["refuted", "unformalizable", "unformalizable", "proved"], verdicts


# -- 3. command boundary ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("trust", [False, True])
def test_a_command_keyword_only_the_header_knows_is_refused(cli, tmp_path, toolchain, mode, trust):
    """`evil_cmd` is in no list of ours: Lean's own grammar (the keyword probe) says it starts a command."""
    records = _honest(1) + [_record(": (2 : Int) + 2 = 4", "by decide\nevil_cmd hello"),
                            _record(": (2 : Int) + 2 = 4", "by decide\naxiom cheat : False")] + _honest(1)
    code, verdicts, r = _verify(cli, tmp_path, toolchain, mode, records, *(["--trust-tactics"] if trust else []))
    assert [v for v, _ in verdicts] == ["proved", "unformalizable", "unformalizable", "proved"], verdicts
    assert "evil_cmd" in verdicts[1][1] and "axiom" in verdicts[2][1]


# -- 4. side channels -----------------------------------------------------------------------------------------

@pytest.fixture
def secret_file():
    """A file outside every folder the sandbox binds (the home folder), removed afterwards."""
    path = Path.home() / f".reasonpipe-secret-{secrets.token_hex(6)}"
    text = f"SECRET-{secrets.token_hex(8)}"
    path.write_text(text)
    yield path, text
    path.unlink()


@pytest.mark.bwrap
@pytest.mark.parametrize("mode", MODES)
def test_include_str_cannot_read_outside_the_sandbox(cli, tmp_path, toolchain, mode, secret_file):
    path, text = secret_file
    proof = f'by exact include_str "{path}"'
    open_claim = "(x : Nat) : x + 0 = x + 1"  # not closed: no negation round, so the reason lists each attempt
    code, verdicts, r = _verify(cli, tmp_path, toolchain, mode, [_record(open_claim, proof)])
    assert verdicts[0][0] == "unformalizable" and "include_str" in verdicts[0][1]  # the policy, first
    code, verdicts, r = _verify(cli, tmp_path, toolchain, mode, [_record(open_claim, proof)], "--trust-tactics")
    assert verdicts[0][0] == "refuted" and "the step's own proof: no such file" in verdicts[0][1], verdicts
    everything = r.out + r.err + "".join(p.read_text() for p in tmp_path.glob("*.verdicts.jsonl"))
    assert text not in everything
    # the control: without bubblewrap the same proof reads the file (Lean's message is then a type mismatch
    # quoting it on its next line)
    code, verdicts, r = _verify(cli, tmp_path, toolchain, mode, [_record(open_claim, proof)], "--trust-tactics",
                                "--no-bwrap")
    assert "the step's own proof: type mismatch" in verdicts[0][1], verdicts


@pytest.mark.parametrize("mode", ["file", "repl"])
def test_a_sleeping_proof_costs_its_own_step_only(cli, tmp_path, toolchain, mode):
    records = _honest(3) + [_record(": (2 : Int) + 2 = 5", "by\n  sleep 600000\n  decide")] + _honest(3)
    code, verdicts, r = _verify(cli, tmp_path, toolchain, mode, records)
    assert verdicts[3][0] == "unformalizable" and "sleep" in verdicts[3][1]
    started = time.monotonic()
    code, verdicts, r = _verify(cli, tmp_path, toolchain, mode, records, "--trust-tactics", "--timeout", "1")
    assert time.monotonic() - started < 60
    assert [v for v, _ in verdicts] == ["proved"] * 3 + ["error"] + ["proved"] * 3, verdicts


# -- 5. vacuity ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_empty_types_and_instance_binders_are_vacuous(cli, tmp_path, toolchain, mode):
    records = [_record("[Inhabited Empty] : (2 : Int) + 2 = 5", "by contradiction"),
               _record("(x : Fin 0) : (2 : Int) + 2 = 5", "by contradiction"),
               _record("(x : Nat) (h : x + 1 = 0) : (2 : Int) + 2 = 5", "by contradiction"),  # only Lean sees it
               _record("(x : Nat) (h : x + 1 = 2) : x = 1", "by omega")]                   # a real hypothesis
    code, verdicts, r = _verify(cli, tmp_path, toolchain, mode, records)
    assert [v for v, _ in verdicts] == ["vacuous", "vacuous", "vacuous", "proved"], verdicts
    assert "Lean proves False" in verdicts[2][1]


# -- 6. cost ----------------------------------------------------------------------------------------------------

def test_hanging_steps_cost_one_rerun_each_and_the_budget_bounds_the_call(cli, tmp_path, toolchain):
    hang = [_record(": (7777777 : Int) + 0 = 7777777", "by decide") for _ in range(4)]
    records = _honest(6) + hang + _honest(6)
    started = time.monotonic()
    code, verdicts, r = _verify(cli, tmp_path, toolchain, "file", records, "--timeout", "1")
    spent = time.monotonic() - started
    assert [v for v, _ in verdicts] == ["proved"] * 6 + ["error"] * 4 + ["proved"] * 6, verdicts
    assert spent < 30  # the batch timed out once (1 s), then each step alone: 4 more timeouts, no bisection
    started = time.monotonic()
    code, verdicts, r = _verify(cli, tmp_path, toolchain, "file", hang * 3, "--timeout", "1", "--budget", "3")
    assert time.monotonic() - started < 15
    assert {v for v, _ in verdicts} == {"error"} and any("budget" in why for _, why in verdicts), verdicts


# -- 7. sandbox paths --------------------------------------------------------------------------------------------

@pytest.mark.bwrap
def test_a_toolchain_under_tmp_is_bound_and_a_broken_one_is_one_line(cli, tmp_path):
    copy = tmp_path / "elsewhere" / "bin"  # a toolchain copied under /tmp, not a link into the repository
    copy.mkdir(parents=True)
    for f in FAKES.glob("*.py"):
        shutil.copy(f, copy / f.name)
    (copy / "lean").symlink_to(copy / "fake_lean.py")
    code, verdicts, r = _verify(cli, tmp_path, copy, "file", _honest(2))
    assert code == 0 and _proved(verdicts) == [True, True], r.out + r.err
    broken = tmp_path / "broken" / "bin"
    broken.mkdir(parents=True)
    (broken / "lean").write_text("#!/nonexistent/interpreter\n")
    (broken / "lean").chmod(0o755)
    code, verdicts, r = _verify(cli, tmp_path, broken, "file", _honest(1))
    assert code == 2 and verdicts == []
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err, r.err


# -- the kernel replay --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["file", "repl"])
def test_the_kernel_replay_catches_what_elaboration_let_through(cli, tmp_path, toolchain, mode):
    """The stand-in writes 4444444's declaration as the kernel would reject it: only the replay notices."""
    records = _honest(1) + [_record(": (4444444 : Int) + 0 = 4444444", "by decide")]
    checker = ["--lean4checker", str(toolchain / "lean4checker")]
    code, verdicts, r = _verify(cli, tmp_path, toolchain, mode, records, "--replay", "off")
    assert [v for v, _ in verdicts] == ["proved", "proved"]
    code, verdicts, r = _verify(cli, tmp_path, toolchain, mode, records, "--replay", "on", *checker)
    assert verdicts[1][0] == "error" and "kernel replay" in verdicts[1][1], verdicts
    assert verdicts[0][0] == ("error" if mode == "file" else "proved")  # file mode replays the batch's module


def test_replay_on_without_lean4checker_says_so(cli, tmp_path, toolchain):
    path = tmp_path / "safe.jsonl"
    path.write_text(json.dumps(_honest(1)[0]) + "\n")
    r = cli("verify", path, "--format", "safe", "--backend", "lean", "--lean", toolchain / "lean", "--replay", "on",
            "--lean4checker", tmp_path / "no-such-checker")
    assert r.code == 2 and "no-such-checker" in r.err


# -- against a real Lean (the early Lean 4 build that CI unpacks; skipped without `lean` on PATH) ----------------

def _real(cli, tmp_path: Path, records: list[dict], *extra: str):
    lean = Path(shutil.which("lean") or "lean")
    return _verify(cli, tmp_path, lean.parent, "file", records, *extra)


@pytest.mark.lean
def test_real_lean_echoed_text_forges_nothing(cli, tmp_path):
    """Real Lean echoes a `let`'s value in an `unsolved goals` error: the forger's text reaches Lean's output."""
    text = "\\n".join(FORGED_LINES)
    forger = _record(": (2 : Int) + 2 = 5", f'by\n  let s := "{text}"\n  exact (rfl : (4 : Int) = 4)', "echo")
    records = _honest(3) + [forger] + _honest(3)
    code, verdicts, r = _real(cli, tmp_path, records)
    assert [v for v, _ in verdicts] == ["proved"] * 3 + ["unformalizable"] + ["proved"] * 3, verdicts
    code, verdicts, r = _real(cli, tmp_path, records, "--trust-tactics")
    assert [v for v, _ in verdicts] == ["proved"] * 3 + ["refuted"] + ["proved"] * 3, verdicts


@pytest.fixture
def guard_without_namespace(monkeypatch):
    """The guard's hand lists with `namespace` taken out: what a keyword missing from them looks like."""
    from reasonpipe.verifiers.lean import guard, policy

    def clear() -> None:
        guard._lex_cached.cache_clear()
        guard._word_name_problem.cache_clear()

    clear()
    monkeypatch.setattr(guard, "COMMAND_KEYWORDS", guard.COMMAND_KEYWORDS - {"namespace"})
    monkeypatch.setattr(guard, "KEYWORDS", guard.KEYWORDS - {"namespace"})
    monkeypatch.setattr(policy, "_CORE_KEYWORDS", policy._CORE_KEYWORDS - {"namespace"})
    yield
    clear()


@pytest.mark.lean
@pytest.mark.parametrize("trust", [False, True])
def test_real_lean_a_command_keyword_missing_from_our_lists(cli, tmp_path, guard_without_namespace, trust):
    """Every command of the early Lean is in the guard's lists, so one is taken out: Lean's own grammar (the
    keyword probe) still refuses it, in both modes."""
    records = _honest(1) + [_record(": (2 : Int) + 2 = 5", "by decide\nnamespace Foo")] + _honest(1)
    code, verdicts, r = _real(cli, tmp_path, records, *(["--trust-tactics"] if trust else []))
    assert [v for v, _ in verdicts] == ["proved", "unformalizable", "proved"], verdicts
    assert "`namespace`" in verdicts[1][1] and "of this Lean and header" in verdicts[1][1]


@pytest.mark.lean
def test_real_lean_statement_ownership_and_vacuity(cli, tmp_path):
    records = [_record(": (2 : Int) + 2 = 5", "theorem test : (2 : Int) + 2 = 4 := by decide"),
               _record(": (2 : Int) + 2 = 4", "theorem other_name : (2 : Int) + 2 = 4 := by decide"),
               _record("(x : Fin 0) : (2 : Int) + 2 = 5", "by cases x"),
               _record("(x : Nat) (h : x + 1 = 0) : (2 : Int) + 2 = 5", "by cases h")]
    code, verdicts, r = _real(cli, tmp_path, records)
    assert [v for v, _ in verdicts] == ["refuted", "proved", "vacuous", "vacuous"], verdicts


@pytest.mark.lean
def test_real_lean_budget(cli, tmp_path):
    path = tmp_path / "cd.jsonl"
    assert cli("gen", "countdown", "--n", "300", "--searcher", "dfs", "--seed", "2", "--out", path,
               "--quiet").code == 0
    started = time.monotonic()
    r = cli("verify", path, "--backend", "lean", "--quiet", "--budget", "1", "--batch-size", "200")
    assert time.monotonic() - started < 20
    assert r.code == 1 and re.search(r"error\s*│\s*[1-9]", r.out), r.out
