"""The Lean stand-ins themselves (tests/lean/fakes): fake_lean.py, fake_lean4checker.py and fake_repl.py --evaluate.

Other tests drive the Lean backend through these fakes, so here they are held to what real Lean does: the
three-module protocol (``lean -o`` writes a module only without errors; a trusted ``Check.lean`` imports it),
the messages a proof can produce (a logged message is its own message at the tactic; an error echoes its
string), parsing that resumes at the next command keyword after an error, the keyword probe, the magic numbers
and the kernel replay. The tests marked ``early_lean`` compare layouts with a real (2021) Lean 4 where one is
unpacked (../shared/lean/early-lean4/install); they skip cleanly without it.

Example::

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/lean/test_lean_fakes.py
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import early_lean_path

FAKES = Path(__file__).resolve().parent / "fakes"
FAKE_LEAN = FAKES / "fake_lean.py"
FAKE_CHECKER = FAKES / "fake_lean4checker.py"
FAKE_REPL = FAKES / "fake_repl.py"
PY = [sys.executable, "-S", "-I"]  # the fakes need only the standard library


def lean(cwd: Path, *args: str, style: str = "current", lean_path: list[Path] | None = None,
         timeout: float = 30, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.pop("FAKE_LEAN_STYLE", None)
    full_env.pop("FAKE_LEAN_KEYWORDS", None)
    full_env["LEAN_PATH"] = os.pathsep.join(str(p) for p in (lean_path or [cwd]))
    full_env.update(env or {})
    style_args = [f"--fake-style={style}"] if style else []
    return subprocess.run([*PY, str(FAKE_LEAN), *style_args, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def write(folder: Path, **files: str) -> None:
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


def run_file(tmp_path: Path, source: str, style: str = "current", *args: str, name: str = "T.lean"):
    write(tmp_path, **{name: source})
    return lean(tmp_path, *args, name, style=style)


def error_lines(out: str, file: str = "T.lean") -> set[int]:
    return {int(m) for m in re.findall(rf"^{re.escape(file)}:(\d+):\d+: error", out, re.M)}


# --- the CLI ---------------------------------------------------------------------------------------------------

def test_version_help_and_paths(tmp_path):
    r = lean(tmp_path, "--version")
    assert r.returncode == 0 and r.stdout.startswith("Lean (version 4.0.0-fake")
    current = lean(tmp_path, "--help").stdout
    early = lean(tmp_path, "--help", style="early").stdout
    assert "--json" in current and "--json" not in early
    assert "--print-libdir" in current and "--print-libdir" in early
    for flag in ("--print-libdir", "--print-prefix"):
        r = lean(tmp_path, flag)
        assert r.returncode == 0 and Path(r.stdout.strip()).is_dir()


def test_style_from_the_executable_name_and_the_environment(tmp_path):
    write(tmp_path, **{"T.lean": "theorem t : (1 : Nat) + 1 = 2 := by decide\n#print axioms t\n"})
    link = tmp_path / "lean-early"
    link.symlink_to(FAKE_LEAN)
    r = subprocess.run([str(link), "--json", "T.lean"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "unrecognized option '--json'" in r.stderr  # the 2021 Lean has no --json
    assert "--json" not in subprocess.run([str(link), "--help"], capture_output=True, text=True).stdout
    r = lean(tmp_path, "--json", "T.lean", style="", env={"FAKE_LEAN_STYLE": "early"})
    assert r.returncode == 1 and "unrecognized option" in r.stderr
    r = lean(tmp_path, "--json", "T.lean", style="")  # plain name: current
    assert r.returncode == 0 and json.loads(r.stdout)["data"] == "'t' does not depend on any axioms"


def test_bad_command_lines(tmp_path):
    assert lean(tmp_path).returncode == 1  # no file
    r = lean(tmp_path, "Nope.lean")
    assert r.returncode == 1 and "Nope.lean" in r.stderr
    r = lean(tmp_path, "--bogus", "T.lean")
    assert r.returncode == 1 and "unrecognized option '--bogus'" in r.stderr


def test_exit_code_follows_errors_only(tmp_path):
    ok = run_file(tmp_path, "theorem t : (2 : Nat) + 2 = 5 := sorry\n")
    assert ok.returncode == 0 and "warning" in ok.stdout  # a warning is not an error
    bad = run_file(tmp_path, "theorem t : (2 : Nat) + 2 = 5 := by decide\n")
    assert bad.returncode == 1


# --- the three-module protocol -----------------------------------------------------------------------------------

STMTS = """noncomputable def rpS_ab12_0 : Prop := (2 : Int) + 2 = 4
noncomputable def rpS_ab12_1 : Prop := ∀ (x : Nat) (h : x > 0), x ≥ 1
noncomputable def rpS_ab12_2 : Prop := (2 : Int) + 2 = 5
noncomputable def rpS_ab12_3 : Prop := (3 : Nat) * 3 = 9
"""
CAND = """theorem rpP_ab12_0 : (2 : Int) + 2 = 4 := by decide
theorem rpP_ab12_1 (x : Nat) (h : x > 0) : x ≥ 1 :=
  by omega
theorem rpP_ab12_2 : (2 : Int) + 2 = 5 := sorry
theorem rpP_ab12_3 : (3 : Nat) * 3 = 9 := by native_decide
"""


def compile_modules(tmp_path: Path, stmts: str = STMTS, cand: str = CAND, style: str = "current"):
    write(tmp_path, **{"Stmts.lean": stmts, "Cand.lean": cand})
    return (lean(tmp_path, "-o", "Stmts.olean", "Stmts.lean", style=style),
            lean(tmp_path, "-o", "Cand.olean", "Cand.lean", style=style))


def test_three_modules(tmp_path):
    s, c = compile_modules(tmp_path)
    assert (s.returncode, s.stdout) == (0, "")
    assert c.returncode == 0 and c.stdout == "Cand.lean:4:8: warning: declaration uses `sorry`\n"
    write(tmp_path, **{"Check.lean": "import Stmts\nimport Cand\n"
                       "example : rpS_ab12_0 := @rpP_ab12_0\n"
                       "example : rpS_ab12_1 := @rpP_ab12_1\n"
                       "example : rpS_ab12_2 := @rpP_ab12_2\n"
                       "example : rpS_ab12_3 := @rpP_ab12_3\n"
                       "theorem rpG_ab12_0 : rpS_ab12_0 ∧ rpS_ab12_1 := ⟨@rpP_ab12_0, @rpP_ab12_1⟩\n"
                       "#print axioms rpG_ab12_0\n"
                       "theorem rpG_ab12_1 : rpS_ab12_2 ∧ rpS_ab12_3 := ⟨@rpP_ab12_2, @rpP_ab12_3⟩\n"
                       "#print axioms rpG_ab12_1\n"
                       "#print axioms rpP_ab12_2\n#print axioms rpP_ab12_3\n"})
    r = lean(tmp_path, "Check.lean")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines() == [
        "'rpG_ab12_0' depends on axioms: [propext]",
        "'rpG_ab12_1' depends on axioms: [sorryAx, Lean.ofReduceBool]",  # Lean's Name.lt order
        "'rpP_ab12_2' depends on axioms: [sorryAx]",
        "'rpP_ab12_3' depends on axioms: [Lean.ofReduceBool]"]


def test_no_olean_when_an_error_is_printed(tmp_path):
    cand = CAND + "theorem rpP_ab12_4 : (2 : Int) + 2 = 5 := by decide\n"
    _, c = compile_modules(tmp_path, cand=cand)
    assert c.returncode == 1 and not (tmp_path / "Cand.olean").exists()
    assert "Cand.lean:6:45: error: tactic 'decide' proved that the proposition\n  2 + 2 = 5\nis false\n" in c.stdout
    _, c = compile_modules(tmp_path)  # the rerun without the failing declaration writes the module
    assert c.returncode == 0 and (tmp_path / "Cand.olean").exists()
    olean = json.loads((tmp_path / "Cand.olean").read_text())
    first = olean["declarations"][0]
    assert {"name", "kind", "type", "axioms", "kernel_ok"} <= set(first)
    assert (first["name"], first["kind"], first["type"], first["axioms"], first["kernel_ok"]) == \
        ("rpP_ab12_0", "theorem", "2 + 2 = 4", [], True)
    assert [d["name"] for d in olean["declarations"]] == [f"rpP_ab12_{k}" for k in range(4)]


def test_check_type_mismatch_layout(tmp_path):
    compile_modules(tmp_path)
    write(tmp_path, **{"Check.lean": "import Stmts\nimport Cand\n"
                       "example : rpS_ab12_0 := @rpP_ab12_1\n"
                       "theorem rpG_ab12_0 : rpS_ab12_0 ∧ rpS_ab12_3 ∧ rpS_ab12_1 := "
                       "⟨@rpP_ab12_0, @rpP_ab12_0, @rpP_ab12_1⟩\n"
                       "#print axioms rpG_ab12_0\n"
                       "theorem rpG_ab12_1 : rpS_ab12_0 ∧ rpS_ab12_3 := ⟨@rpP_ab12_0, @rpP_ab12_0⟩\n"
                       "theorem rpG_ab12_2 : rpS_ab12_3 := @rpP_ab12_9\n"
                       "#print axioms rpP_ab12_9\n"})
    r = lean(tmp_path, "Check.lean", style="early")
    assert r.returncode == 1
    assert r.stdout == (
        "Check.lean:3:24: error: type mismatch\n  rpP_ab12_1\nhas type\n  ∀ (x : Nat), x > 0 → x ≥ 1 : Prop\n"
        "but is expected to have type\n  rpS_ab12_0 : Prop\n"
        "Check.lean:4:61: error: application type mismatch\n  And.intro rpP_ab12_0\nargument\n  rpP_ab12_0\n"
        "has type\n  2 + 2 = 4 : Prop\nbut is expected to have type\n  rpS_ab12_3 : Prop\n"
        "'rpG_ab12_0' depends on axioms: [sorryAx]\n"
        "Check.lean:6:48: error: application type mismatch\n  { left := rpP_ab12_0, right := rpP_ab12_0 }\n"
        "argument\n  rpP_ab12_0\nhas type\n  2 + 2 = 4 : Prop\nbut is expected to have type\n"
        "  rpS_ab12_3 : Prop\n"
        "Check.lean:7:36: error: unknown identifier 'rpP_ab12_9'\n"
        "Check.lean:8:0: error: unknown constant 'rpP_ab12_9'\n")
    current = lean(tmp_path, "Check.lean").stdout
    assert "error: Unknown identifier `rpP_ab12_9`" in current and "Unknown constant `rpP_ab12_9`" in current


def test_statement_is_compared_up_to_definitional_unfolding(tmp_path):
    stmts = ("noncomputable def rpS_q_0 : Prop := ∀ (x : Nat) (h : x > 0), x ≥ 1\n"
             "noncomputable def rpS_q_1 : Prop := (2 : Int) + 2 = 4\n"
             "noncomputable def rpS_q_2 : Prop := (2 : Nat) + 2 = 4\n")
    cand = ("theorem rpP_q_0 {y : Nat} (hy : 0 < y) : 1 ≤ y := by omega\n"  # binder names and > / ≥ notation
            "theorem rpP_q_1 : (4 : Int) = 4 := by decide\n"  # closed arithmetic
            "theorem rpP_q_2 : (2 : Int) + 2 = 4 := by decide\n")  # Int is not Nat
    compile_modules(tmp_path, stmts, cand)
    write(tmp_path, **{"Check.lean": "import Stmts\nimport Cand\nexample : rpS_q_0 := @rpP_q_0\n"
                       "example : rpS_q_1 := @rpP_q_1\nexample : rpS_q_2 := @rpP_q_2\n"})
    assert error_lines(lean(tmp_path, "Check.lean").stdout, "Check.lean") == {5}


def test_imports(tmp_path):
    r = run_file(tmp_path, "import Missing\ntheorem t : True := trivial\n#print axioms t\n", "early")
    assert r.returncode == 1
    assert r.stdout == (f"T.lean:1:0: error: unknown package 'Missing'\nYou might need to open '{tmp_path}' as a "
                        "workspace in your editor\n")  # and nothing else runs
    r = run_file(tmp_path, "import Init\nimport Mathlib.Tactic\nlemma t : (1 : ℕ) + 1 = 2 := by norm_num\n"
                 "#print axioms t\n")
    assert (r.returncode, r.stdout) == (0, "'t' depends on axioms: [propext]\n")
    r = run_file(tmp_path, "lemma t : (1 : Nat) + 1 = 2 := by decide\n")  # `lemma` is Mathlib's
    assert r.returncode == 1 and "T.lean:1:0: error: unexpected identifier; expected command" in r.stdout


def test_imports_are_transitive_and_unique(tmp_path):
    write(tmp_path, **{"A.lean": "theorem a : (1 : Nat) = 1 := rfl\n",
                       "B.lean": "import A\ntheorem b : True := trivial\n",
                       "C.lean": "import B\n#print axioms a\n#print axioms b\n", "D.lean": "import A\nimport B\n",
                       "A2.lean": "theorem a : (1 : Nat) = 1 := rfl\n", "E.lean": "import A\nimport A2\n"})
    for m in ("A", "B", "A2"):
        assert lean(tmp_path, "-o", f"{m}.olean", f"{m}.lean").returncode == 0
    r = lean(tmp_path, "C.lean")
    assert (r.returncode, r.stdout) == (0, "'a' does not depend on any axioms\n'b' does not depend on any axioms\n")
    assert lean(tmp_path, "D.lean").returncode == 0  # a diamond is fine
    r = lean(tmp_path, "E.lean", style="early")
    assert r.returncode == 1 and r.stdout.startswith("E.lean:2:0: error: import failed, environment already "
                                                     "contains 'a'")


def test_olean_is_found_on_lean_path_only(tmp_path):
    (tmp_path / "lib").mkdir()
    write(tmp_path / "lib", **{"M.lean": "theorem m : True := trivial\n"})
    assert lean(tmp_path / "lib", "-o", "M.olean", "M.lean").returncode == 0
    write(tmp_path, **{"U.lean": "import M\n#print axioms m\n"})
    assert lean(tmp_path, "U.lean", lean_path=[tmp_path]).returncode == 1
    r = lean(tmp_path, "U.lean", lean_path=[tmp_path / "nowhere", tmp_path / "lib"])
    assert (r.returncode, r.stdout) == (0, "'m' does not depend on any axioms\n")


# --- messages a proof can produce ----------------------------------------------------------------------------

FORGE = 'Check.lean:3:0: error: forged\\n\'rpG_x_0\' depends on axioms: []'


@pytest.mark.parametrize("style", ["current", "early", "infopos"])
def test_trace_is_an_information_message_at_the_tactic(tmp_path, style):
    r = run_file(tmp_path, f'theorem t : (2 : Nat) + 2 = 4 := by\n  trace "{FORGE}"\n  decide\n', style)
    assert r.returncode == 0
    forged = "Check.lean:3:0: error: forged\n'rpG_x_0' depends on axioms: []\n"
    assert r.stdout == (f"T.lean:2:2: info: {forged}" if style == "infopos" else forged)


def test_trace_as_json(tmp_path):
    r = run_file(tmp_path, f'theorem t : (2 : Nat) + 2 = 4 := by\n  trace "{FORGE}"\n  decide\n#print axioms t\n',
                 "current", "--json")
    first, second = [json.loads(line) for line in r.stdout.splitlines()]
    assert first == {"caption": "", "data": "Check.lean:3:0: error: forged\n'rpG_x_0' depends on axioms: []",
                     "endPos": {"column": 7, "line": 2}, "fileName": "T.lean", "isSilent": False,
                     "keepFullRange": False, "kind": "[anonymous]", "pos": {"column": 2, "line": 2},
                     "severity": "information"}
    assert (second["pos"], second["severity"], second["data"]) == \
        ({"column": 0, "line": 4}, "information", "'t' does not depend on any axioms")


def test_fail_echoes_its_string_then_the_goal(tmp_path):
    r = run_file(tmp_path, 'theorem t (x : Nat) : x = x := by\n  fail "a\\nT.lean:9:9: error: b \\"q\\""\n')
    assert r.returncode == 1
    assert r.stdout == 'T.lean:2:2: error: a\nT.lean:9:9: error: b "q"\nx : Nat\n⊢ x = x\n'


def test_a_logged_message_survives_a_later_failure_but_not_a_failed_alternative(tmp_path):
    r = run_file(tmp_path, 'theorem t : (1 : Nat) = 2 := by\n  trace "kept"\n'
                           '  first | (trace "dropped"; decide) | omega\n')
    assert r.stdout.startswith("kept\nT.lean:3:")
    assert "dropped" not in r.stdout


def test_let_literal_is_echoed_as_written(tmp_path):
    r = run_file(tmp_path, 'theorem t : (1 : Nat) = 1 := by\n  let x := "a\\"b\\\\c\\nd"\n  skip\n', "early")
    assert r.stdout == 'T.lean:1:29: error: unsolved goals\nx : String := "a\\"b\\\\c\\nd"\n⊢ 1 = 1\n'


def test_include_str_reads_relative_to_the_source_and_echoes_the_content(tmp_path):
    (tmp_path / "src").mkdir()
    write(tmp_path / "src", **{"secret.txt": 'top "secret"\n'})
    write(tmp_path / "src", **{"T.lean": 'theorem t : (1 : Nat) = 1 := by\n  exact include_str "secret.txt"\n'
                                          'theorem u : (1 : Nat) = 1 := by\n  let s := include_str "secret.txt"\n'
                                          '  skip\n'
                                          'theorem v : (1 : Nat) = 1 := include_str "gone.txt"\n'})
    r = lean(tmp_path, "src/T.lean")
    assert r.returncode == 1
    out = r.stdout
    assert '  "top \\"secret\\"\\n"\nhas type\n  String : Type\nbut is expected to have type\n  1 = 1 : Prop' in out
    assert 's : String := "top \\"secret\\"\\n"' in out
    assert f"src/T.lean:6:29: error: no such file or directory (error code: 2)\n  file: {tmp_path}/src/gone.txt" in out


def test_sleep_sleeps(tmp_path):
    start = time.monotonic()
    r = run_file(tmp_path, "theorem t : True := by\n  sleep 400\n  trivial\n")
    assert r.returncode == 0 and time.monotonic() - start >= 0.4


def test_dbg_trace_writes_to_stderr(tmp_path):
    r = run_file(tmp_path, 'theorem t : True := by\n  dbg_trace "to stderr"\n  trivial\n')
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "to stderr\n")


# --- parse errors and where parsing resumes ----------------------------------------------------------------------

def test_unknown_tactic_then_resume_at_the_next_command_keyword(tmp_path):
    r = run_file(tmp_path, "theorem t : (1 : Nat) = 1 := by\n  rfl\n  foo_tac\n  rfl #print axioms t\n"
                 "theorem u : (1 : Nat) = 1 := by\n  bar_tac 3\ntheorem w : True := trivial\n#print axioms u\n",
                 "early")
    assert r.returncode == 1
    assert r.stdout == ("T.lean:3:3: error: unknown tactic\n"  # one column in, as Lean reports it
                        "'t' does not depend on any axioms\n"  # the tactics before it ran; the command inside ran
                        "T.lean:6:3: error: unknown tactic\n"
                        "T.lean:5:29: error: unsolved goals\n⊢ 1 = 1\n"
                        "'u' depends on axioms: [sorryAx]\n")


def test_a_line_at_column_zero_ends_the_declaration(tmp_path):
    r = run_file(tmp_path, "theorem foo : (1 : Nat) = 1 := by\n\nsorry\n")
    assert r.stdout == ("T.lean:1:31: error: unsolved goals\n⊢ 1 = 1\n"
                        "T.lean:3:0: error: unexpected token 'sorry'; expected command\n")


def test_commands_in_a_proof_run_even_without_an_error(tmp_path):
    r = run_file(tmp_path, 'theorem t : True := by trivial #print axioms t\nexample : True := trivial evil_cmd "x"\n')
    assert r.stdout == "'t' does not depend on any axioms\nx\n"


# --- the keyword probe -------------------------------------------------------------------------------------------

PROBE_WORDS = ["foo", "at", "fun", "theorem", "trace", "fail", "decide", "decide?", "exact?", "simp", "omega",
               "evil_cmd", "sorry", "Type", "by", "show", "this", "lemma", "include_str", "calc", "nomatch",
               "panic!", "dbg_trace", "only", "import"]


def probe(tmp_path: Path, words: list[str], style: str, header: str = "", env: dict | None = None) -> set[str]:
    lines = header + "".join(f"example : True := let {w} := trivial; {w}\n" for w in words)
    write(tmp_path, **{"P.lean": lines})
    r = lean(tmp_path, "P.lean", style=style, env=env)
    offset = header.count("\n")
    # a token fails at its own column (22); a command keyword also spills an error into the next line's column 0
    at_word = {int(m) for m in re.findall(r"^P\.lean:(\d+):22: error", r.stdout, re.M)}
    return {words[n - 1 - offset] for n in at_word}


def test_keyword_probe(tmp_path):
    real_tokens = {"at", "fun", "theorem", "sorry", "Type", "by", "show", "nomatch", "panic!", "dbg_trace"}
    assert probe(tmp_path, PROBE_WORDS, "early") == real_tokens | {"evil_cmd"}
    # current Lean also has `include_str` (term syntax), `calc` and `import` as tokens
    assert probe(tmp_path, PROBE_WORDS, "current") == real_tokens | {"evil_cmd", "include_str", "calc", "import"}
    # leading tactic words are not tokens in any Lean; Mathlib's header adds `lemma`
    assert "lemma" in probe(tmp_path, PROBE_WORDS, "current", header="import Mathlib\n")
    assert probe(tmp_path, ["foo", "trace"], "current", env={"FAKE_LEAN_KEYWORDS": "trace"}) == {"trace"}


# --- judging -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tactic", ["decide", "rfl", "omega", "simp", "norm_num", "native_decide", "trivial",
                                    "linarith"])
def test_tactics_prove_true_closed_statements_and_fail_false_ones(tmp_path, tactic):
    r = run_file(tmp_path, f"theorem a : (6 : Int) * 7 = 42 := by {tactic}\n"
                 f"theorem b : (6 : Int) * 7 = 43 := by {tactic}\n#print axioms a\n#print axioms b\n")
    assert error_lines(r.stdout) == {2}
    assert re.search(r"^'b' depends on axioms: \[.*sorryAx", r.stdout, re.M)


def test_decide_wording_by_style(tmp_path):
    src = "theorem b : (7 : Int) * 8 = 57 := by decide\ntheorem c (x : Nat) : x = x := by decide\n"
    assert run_file(tmp_path, src, "early").stdout == (
        "T.lean:1:37: error: failed to reduce to 'true'\n  false\n"
        "T.lean:2:34: error: expected type must not contain free or meta variables\n  x = x\n")
    current = run_file(tmp_path, src).stdout
    assert current.startswith("T.lean:1:37: error: tactic 'decide' proved that the proposition\n  7 * 8 = 57\n"
                              "is false\n")


@pytest.mark.parametrize("style,where,text", [("early", "1:33", "declaration uses 'sorry'"),
                                              ("current", "1:8", "declaration uses `sorry`")])
def test_sorry_warns(tmp_path, style, where, text):
    r = run_file(tmp_path, "theorem t : (2 : Nat) + 2 = 5 := sorry\n#print axioms t\n", style)
    assert (r.returncode, r.stdout) == (0, f"T.lean:{where}: warning: {text}\n't' depends on axioms: [sorryAx]\n")


@pytest.mark.parametrize("binder", ["(h : (2 : Int) + 2 = 5)", "(h : False)", "(x : Empty)", "(x : PEmpty)",
                                    "(x : Fin 0)", "[Inhabited Empty]", "(x : Nat) (h : x < 0)"])
def test_vacuous_hypotheses(tmp_path, binder):
    src = "".join(f"theorem v{i} {binder} : (1 : Int) = 2 := by {t}\n"
                  for i, t in enumerate(["contradiction", "simp_all", "decide", "first | decide | simp_all"]))
    lines = error_lines(run_file(tmp_path, src).stdout)
    assert lines == ({3} if "x < 0" not in binder else {1, 3})  # decide never looks at hypotheses
    omega = run_file(tmp_path, f"theorem w {binder} : False := by omega\n")  # omega reads Fin, not Empty
    assert (omega.returncode == 0) == (binder not in ("(x : Empty)", "(x : PEmpty)", "[Inhabited Empty]"))


def test_hypotheses_that_hold_are_not_vacuous(tmp_path):
    src = ("theorem a (h : (2 : Int) + 2 = 4) : False := by contradiction\n"
           "theorem b (x : Nat) (h : x > 3) : False := by omega\n"
           "theorem c [Inhabited Nat] : False := by simp_all\n")
    assert error_lines(run_file(tmp_path, src).stdout) == {1, 2, 3}


def test_exact_another_declaration(tmp_path):
    r = run_file(tmp_path, "theorem p : (2 : Nat) + 2 = 4 := by decide\n"
                 "theorem q : (2 : Nat) + 2 = 4 := by exact p\n"
                 "theorem r : (3 : Nat) + 2 = 5 := by exact p\n"
                 "theorem s : (2 : Nat) + 2 = 4 := by exact nope\n#print axioms q\n", "early")
    assert r.stdout == ("T.lean:3:36: error: type mismatch\n  p\nhas type\n  2 + 2 = 4 : Prop\n"
                        "but is expected to have type\n  3 + 2 = 5 : Prop\n"
                        "T.lean:4:42: error: unknown identifier 'nope'\n"
                        "'q' does not depend on any axioms\n")


def test_first_alternatives_and_structure(tmp_path):
    src = ("theorem a : (1 : Nat) < 2 ∧ (3 : Nat) ≠ 4 := by\n  constructor\n  · decide\n  · decide\n"
           "theorem b (x : Int) (h : x > 0) : x ≥ 1 := by\n  first | decide | omega\n"
           "theorem c : ∀ (n : Nat), n + 0 = n := by\n  intro m\n  omega\n"
           "theorem d : ∃ x : Nat, x > 3 := ⟨4, by decide⟩\n"
           "theorem e (p : (2 : Nat) = 2) : (2 : Nat) = 2 := by\n  have q : (1 : Nat) = 1 := rfl\n  exact p\n"
           "theorem f (x : Int) (h : x > 0) : x ≥ 2 := by omega\n")
    assert error_lines(run_file(tmp_path, src).stdout) == {14}


def test_long_axiom_lists_wrap_as_lean_formats_them(tmp_path):
    names = [f"axiom_with_a_rather_long_name_{k}" for k in range(4)]
    src = "".join(f"axiom {n} : (1 : Nat) = 1\n" for n in names)
    src += "theorem t : (1 : Nat) = 1 := by\n" + "".join(f"  have h{k} : (1 : Nat) = 1 := {n}\n"
                                                         for k, n in enumerate(names))
    src += "  native_decide\n#print axioms t\n"
    r = run_file(tmp_path, src)
    assert r.returncode == 0
    assert r.stdout == ("'t' depends on axioms: [axiom_with_a_rather_long_name_0,\n axiom_with_a_rather_long_name_1,\n"
                        " axiom_with_a_rather_long_name_2,\n axiom_with_a_rather_long_name_3,\n Lean.ofReduceBool]\n")


def test_integer_division_by_style(tmp_path):
    src = "theorem a : (-7 : Int) / 2 = -3 := by decide\ntheorem b : (-7 : Int) % 2 = 1 := by decide\n"
    assert error_lines(run_file(tmp_path, src, "early").stdout) == {2}  # 2021: rounds toward zero
    assert error_lines(run_file(tmp_path, src).stdout) == {1}  # current: Euclidean


def test_a_lean_without_some_tactics(tmp_path):
    write(tmp_path, **{"T.lean": "theorem t : (1 : Nat) = 1 := by omega\n"})
    r = lean(tmp_path, "T.lean", "--json", env={"FAKE_LEAN_NO_TACTICS": "omega norm_num"})
    first, second = [json.loads(line) for line in r.stdout.splitlines()]
    assert (first["data"], first["pos"], "endPos" in first) == ("unknown tactic", {"column": 33, "line": 1}, False)
    assert second["data"] == "unsolved goals\n⊢ 1 = 1"


def test_duplicate_declaration(tmp_path):
    r = run_file(tmp_path, "theorem s : (1 : Nat) + 1 = 2 := by decide\ntheorem s : (2 : Nat) + 2 = 4 := by decide\n")
    assert r.stdout == "T.lean:2:8: error: 's' has already been declared\n"


def test_unreadable_statement_is_an_unknown_identifier(tmp_path):
    r = run_file(tmp_path, "theorem s : foo + 1 = 2 := by decide\n", "early")
    assert (r.returncode, r.stdout) == (1, "T.lean:1:12: error: unknown identifier 'foo'\n")


# --- magic numbers and the kernel replay --------------------------------------------------------------------------

def test_magic_hang(tmp_path):
    write(tmp_path, **{"T.lean": "theorem t : (7777777 : Int) = 7777777 := by decide\n"})
    with pytest.raises(subprocess.TimeoutExpired):
        lean(tmp_path, "T.lean", timeout=1)


def test_magic_crash_and_out_of_memory(tmp_path):
    r = run_file(tmp_path, "theorem t : (6666666 : Int) = 6666666 := by decide\n")
    assert r.returncode == -signal.SIGSEGV
    r = run_file(tmp_path, "theorem t : (5555555 : Int) = 5555555 := by decide\n")
    assert (r.returncode, r.stderr) == (1, "INTERNAL PANIC: out of memory\n")


def checker(cwd: Path, *modules: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PY, str(FAKE_CHECKER), *modules], cwd=cwd, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "LEAN_PATH": str(cwd)})


def test_kernel_replay_catches_what_elaboration_let_through(tmp_path):
    stmts = "noncomputable def rpS_k_0 : Prop := (4444444 : Int) + 1 = 4444445\n"
    cand = "theorem rpP_k_0 : (4444444 : Int) + 1 = 4444445 := by decide\n"
    s, c = compile_modules(tmp_path, stmts, cand)
    assert (s.returncode, c.returncode, c.stdout) == (0, 0, "")
    write(tmp_path, **{"Check.lean": "import Stmts\nimport Cand\nexample : rpS_k_0 := @rpP_k_0\n"
                                     "theorem rpG_k_0 : rpS_k_0 := @rpP_k_0\n#print axioms rpG_k_0\n"})
    assert lean(tmp_path, "Check.lean").stdout == "'rpG_k_0' does not depend on any axioms\n"
    r = checker(tmp_path, "Cand")
    assert r.returncode == 1 and r.stdout.startswith("error: kernel rejected rpP_k_0: ")
    assert checker(tmp_path, "Stmts").returncode == 0
    compile_modules(tmp_path)
    assert (checker(tmp_path, "Stmts", "Cand").returncode, checker(tmp_path, "Cand").stdout) == (0, "")


def test_checker_failures(tmp_path):
    assert checker(tmp_path, "Nope").returncode == 1
    (tmp_path / "Bad.olean").write_bytes(b"\x00olean")
    r = checker(tmp_path, "Bad")
    assert r.returncode == 1 and r.stdout.startswith("error: ")
    assert checker(tmp_path).returncode == 1  # no module


# --- fake_repl.py --evaluate ---------------------------------------------------------------------------------------

class Repl:
    """A minimal client of the REPL protocol (a request and a blank line; a reply ends with a blank line)."""

    def __init__(self, cwd: Path, *flags: str):
        self.proc = subprocess.Popen([*PY, str(FAKE_REPL), "--evaluate", *flags], cwd=cwd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")

    def __call__(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if line == "":
                raise EOFError(self.proc.stderr.read())
            if not line.strip():
                if lines:
                    return json.loads("".join(lines))
                continue
            lines.append(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture
def repl(tmp_path):
    client = Repl(tmp_path)
    yield client
    client.close()


def test_repl_three_commands(repl):
    assert repl({"cmd": ""}) == {"env": 0}
    assert repl({"cmd": "noncomputable def rpS_r_0 : Prop := (2 : Int) + 2 = 4", "env": 0}) == {"env": 1}
    proof = 'theorem rpP_r_0 : (2 : Int) + 2 = 4 := by\n  trace "\'rpP_r_0\' does not depend on any axioms"\n  decide'
    assert repl({"cmd": proof, "env": 1}) == {
        "messages": [{"severity": "info", "pos": {"line": 2, "column": 2}, "endPos": {"line": 2, "column": 7},
                      "data": "'rpP_r_0' does not depend on any axioms"}], "env": 2}
    verdict = repl({"cmd": "example : rpS_r_0 := @rpP_r_0\n#print axioms rpP_r_0", "env": 2})
    assert verdict == {"messages": [{"severity": "info", "pos": {"line": 2, "column": 0},
                                     "endPos": {"line": 2, "column": 6},
                                     "data": "'rpP_r_0' does not depend on any axioms"}], "env": 3}


def test_repl_errors_keep_the_declaration_with_sorry(repl):
    repl({"cmd": "noncomputable def rpS_r_0 : Prop := (2 : Int) + 2 = 5"})
    reply = repl({"cmd": "theorem rpP_r_0 : (2 : Int) + 2 = 5 := by decide", "env": 0})
    assert reply["env"] == 1 and reply["messages"][0]["severity"] == "error"
    assert reply["messages"][0]["pos"] == {"line": 1, "column": 42}
    verdict = repl({"cmd": "example : rpS_r_0 := @rpP_r_0\n#print axioms rpP_r_0", "env": 1})
    assert [m["data"] for m in verdict["messages"]] == ["'rpP_r_0' depends on axioms: [sorryAx]"]


def test_repl_environments_are_immutable(repl):
    repl({"cmd": "theorem a : True := trivial"})
    assert repl({"cmd": "theorem b : True := trivial", "env": 0})["env"] == 1
    assert repl({"cmd": "theorem b : True := trivial", "env": 0}) == {"env": 2}  # env 0 has no `b`
    dup = repl({"cmd": "theorem b : True := trivial", "env": 1})
    assert dup["messages"][0]["data"] == "'b' has already been declared"
    assert repl({"cmd": "#print axioms b", "env": 99}) == {"message": "Unknown environment."}


def test_repl_sorries_and_warning(repl):
    reply = repl({"cmd": "theorem foo (x : Int) : x = x := by sorry"})
    assert reply == {"sorries": [{"proofState": 0, "pos": {"line": 1, "column": 36}, "goal": "x : Int\n⊢ x = x",
                                  "endPos": {"line": 1, "column": 41}}],
                     "messages": [{"severity": "warning", "pos": {"line": 1, "column": 8},
                                   "endPos": {"line": 1, "column": 11}, "data": "declaration uses `sorry`"}],
                     "env": 0}


def test_repl_pickle_and_kernel_replay(tmp_path, repl):
    repl({"cmd": "theorem ok : (1 : Nat) + 1 = 2 := by decide\n"
                 "theorem bad : (4444444 : Nat) = 4444444 := by decide"})
    assert repl({"pickleTo": str(tmp_path / "Env.olean"), "env": 0}) == {"env": 0}
    r = checker(tmp_path, "Env")
    assert r.returncode == 1 and "kernel rejected bad" in r.stdout and "ok" not in r.stdout.split(":")[0]
    assert repl({"unpickleEnvFrom": str(tmp_path / "Env.olean")}) == {"env": 1}
    assert repl({"cmd": "#print axioms ok", "env": 1})["messages"][0]["data"] == "'ok' does not depend on any axioms"


def test_repl_failure_modes_and_usage(tmp_path):
    client = Repl(tmp_path, "--crash-after", "1", "--exit-code", "3")
    assert client({"cmd": "theorem a : True := trivial"}) == {"env": 0}
    with pytest.raises(EOFError, match="fake: crashing on request 2"):
        client({"cmd": "theorem b : True := trivial"})
    assert client.proc.wait(timeout=10) == 3
    both = subprocess.run([*PY, str(FAKE_REPL), "--evaluate", "--golden", "def_eval"], capture_output=True, text=True)
    assert both.returncode == 2 and "usage" in both.stderr


# --- against a real (2021) Lean 4 ------------------------------------------------------------------------------

EARLY_LEAN = early_lean_path()  # the `early_lean` marker skips where it is None

SAME_AS_EARLY_LEAN = {
    "arith": "theorem step_1 : (25 : Int) + 3 = 28 := by decide\ntheorem step_2 : (7 : Int) * 8 = 57 := by decide\n",
    "sorry_axioms": "theorem step_1 : (25 : Int) + 3 = 28 := by decide\ntheorem step_2 : (2 : Nat) + 2 = 5 := sorry\n"
                    "theorem step_3 : (2 : Nat) + 2 = 5 := by admit\n#print axioms step_1\n#print axioms step_2\n",
    "axiom_cheat": "axiom cheat : (1 : Nat) = 2\ntheorem step_1 : (1 : Nat) = 2 := cheat\n#print axioms step_1\n",
    "duplicate": "theorem step_1 : (1 : Nat) + 1 = 2 := by decide\ntheorem step_1 : (2 : Nat) + 2 = 4 := by decide\n",
    "unknown_ident": "theorem step_1 : foo + 1 = 2 := by decide\n",
    "parse_error": "theorem step_1 : (1 : Nat) + = 2 := by decide\ntheorem step_2 : (1 : Nat) + 1 = 2 := by decide\n",
    "resume": "theorem t : (1 : Nat) = 1 := by\n  rfl\n  foo_tac\n#print axioms t\ntheorem u : (1 : Nat) = 1 := by\n"
              "  bar_tac 3\n  rfl #print axioms u\n",
    "let_echo": 'theorem t : (1 : Nat) = 1 := by\n  let x := "a\\"b\\\\c\\nd"\n  have h : (2 : Nat) = 2 := rfl\n'
                "  let y := 5\n  skip\n",
    "free_vars": "theorem t (x : Nat) (h : x > 0) : x ≥ 1 := by decide\ntheorem u (x : Nat) : x = x := by\n  skip\n",
    "string_mismatch": 'theorem t : (1 : Nat) = 2 := "abc"\n',
    "int_division": "theorem a : (-7 : Int) / 2 = -3 := by decide\ntheorem b : (-7 : Int) % 2 = 1 := by decide\n"
                    "theorem c : (2 : Nat) - 5 = 0 := by decide\ntheorem d : (7 : Int) / 0 = 0 := by decide\n",
    "missing_tactics": 'theorem t1 : (1 : Nat) = 1 := by omega\n'
                       'theorem t2 : (1 : Nat) = 1 := by\n  first | omega | decide\n',
    "exact_mismatch": "theorem p : (1 : Nat) = 1 := by decide\nexample : (2 : Nat) = 2 := by exact p\n"
                      "example : (2 : Nat) = 2 := p\n",
    "vacuous": "theorem v1 (h : (1 : Nat) = 2) : False := by contradiction\n"
               "theorem v2 (h : False) : False := by simp_all\n"
               "theorem v3 (x : Empty) : False := by contradiction\n"
               "theorem v4 (x : Nat) (h : x < 0) : False := by cases h\n"
               "theorem v5 (h : (1 : Nat) = 2) : False := by decide\n",
}


def _run_both(tmp_path: Path, source: str, name: str = "T.lean", lean_path: list[Path] | None = None,
              real_path: list[Path] | None = None, env: dict | None = None):
    write(tmp_path, **{name: source})
    libdir = subprocess.run([EARLY_LEAN, "--print-libdir"], capture_output=True, text=True).stdout.strip()
    real = subprocess.run([EARLY_LEAN, name], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LEAN_PATH": os.pathsep.join([*(str(p) for p in real_path or []),
                                                                           libdir])})
    fake = lean(tmp_path, name, style="early", lean_path=lean_path, env=env)
    return real, fake


@pytest.mark.early_lean
@pytest.mark.parametrize("case", sorted(SAME_AS_EARLY_LEAN))
def test_same_output_as_early_lean(tmp_path, case):
    real, fake = _run_both(tmp_path, SAME_AS_EARLY_LEAN[case],
                           env={"FAKE_LEAN_NO_TACTICS": "omega"} if case == "missing_tactics" else None)
    assert (fake.returncode, fake.stdout) == (real.returncode, real.stdout)


@pytest.mark.early_lean
def test_three_modules_same_as_early_lean(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "fake").mkdir()
    cand = CAND.replace("by omega", "h").replace("by native_decide", "by decide")  # tactics the 2021 Lean has
    write(tmp_path, **{"Stmts.lean": STMTS, "Cand.lean": cand})
    for module in ("Stmts", "Cand"):
        real = subprocess.run([EARLY_LEAN, "-o", f"real/{module}.olean", f"{module}.lean"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        fake = lean(tmp_path, "-o", f"fake/{module}.olean", f"{module}.lean", style="early")
        assert (fake.returncode, fake.stdout.replace("`", "'")) == (real.returncode, real.stdout)
    check = ("import Stmts\nimport Cand\nexample : rpS_ab12_0 := @rpP_ab12_0\nexample : rpS_ab12_1 := @rpP_ab12_1\n"
             "example : rpS_ab12_2 := @rpP_ab12_0\nexample : rpS_ab12_3 := @rpP_ab12_1\n"
             "theorem rpG_ab12_0 : rpS_ab12_0 ∧ rpS_ab12_1 := ⟨@rpP_ab12_0, @rpP_ab12_1⟩\n"
             "#print axioms rpG_ab12_0\n"
             "theorem rpG_ab12_1 : rpS_ab12_2 ∧ rpS_ab12_3 ∧ rpS_ab12_0 := "
             "⟨@rpP_ab12_2, @rpP_ab12_3, @rpP_ab12_3⟩\n"
             "#print axioms rpG_ab12_1\ntheorem rpG_ab12_2 : rpS_ab12_2 := @rpP_ab12_2\n#print axioms rpG_ab12_2\n"
             "#print axioms rpP_ab12_9\n")
    real, fake = _run_both(tmp_path, check, "Check.lean", lean_path=[tmp_path / "fake"],
                           real_path=[tmp_path / "real"])
    assert (fake.returncode, fake.stdout) == (real.returncode, real.stdout)
    missing, _ = _run_both(tmp_path, "import Nope\n", "Missing.lean", lean_path=[tmp_path / "fake"])
    assert missing.stdout.startswith("Missing.lean:1:0: error: unknown package 'Nope'\n")
    assert lean(tmp_path, "Missing.lean", style="early").stdout.startswith(
        "Missing.lean:1:0: error: unknown package 'Nope'\n")


@pytest.mark.early_lean
def test_keyword_probe_same_as_early_lean(tmp_path):
    words = [w for w in PROBE_WORDS if w != "evil_cmd"] + ["have", "with", "from", "using", "universe", "Prop",
                                                             "cases", "rcases", "first", "assumption", "exists"]
    source = "".join(f"example : True := let {w} := trivial; {w}\n" for w in words)
    real, fake = _run_both(tmp_path, source, "P.lean")

    def flagged(out: str) -> set[str]:
        # the line of the error; real Lean may also flag the line after a command keyword it resumed at
        return {words[n - 1] for n in error_lines(out, "P.lean") if n <= len(words)}
    assert flagged(fake.stdout) <= flagged(real.stdout)
    # each keyword of the real Lean gets an error on its own line from the fake too
    real_own = {w for w in words if f"P.lean:{words.index(w) + 1}:22: error" in real.stdout}
    assert real_own <= flagged(fake.stdout)
