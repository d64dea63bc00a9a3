"""The Lean statement guard: lexing as Lean does, one declaration and nothing else, render round trips,
vacuity, the header; attacks each as its own case. No Lean needed."""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
from pathlib import Path

import pytest

from reasonpipe.verifiers.lean.guard import (ALLOWED_OPTIONS, FORBIDDEN_IDENTIFIERS, Binder, Declaration, GuardError,
                                  parse_declaration, parse_header, parse_proof, tokenize, vacuity)

SHARED = Path(__file__).resolve().parent / "data"  # a copy of ../shared/lean (real Lean output)
CLI_CASES = SHARED / "cli-cases.json"
SAFE = "theorem test\n  (a x: ℝ)\n  (h₀: a * x + 3 = x - 5)\n  (h₁: x = 3):\n  (a = (-3)) := by sorry"
MINIF2F_HEADER = "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\nopen BigOperators Real Nat Topology"


def rejected(text: str, match: str = "", **kw) -> GuardError:
    with pytest.raises(GuardError) as info:
        parse_declaration(text, **kw)
    assert re.search(match, info.value.reason), info.value.reason
    return info.value


# -- the recorded Lean runs --------------------------------------------------------------------------------

def _cli_cases() -> dict[str, dict]:
    if not CLI_CASES.exists():
        pytest.skip(f"recorded Lean runs not found at {CLI_CASES}")
    return {c["file"].removesuffix(".lean"): c for c in json.loads(CLI_CASES.read_text())["cases"]}


def _declarations(source: str) -> list[str]:
    """Split a recorded file into its commands: a line that starts at column 0 starts a new one."""
    chunks: list[str] = []
    for line in source.splitlines():
        if line and not line[0].isspace() or not chunks:
            chunks.append(line)
        else:
            chunks[-1] += "\n" + line
    return chunks


@pytest.mark.parametrize("name", ["axiom_cheat", "eval_side_effect", "injection_newline", "duplicate_name",
                                  "print_axioms", "arith_mixed", "arith_valid", "parse_error", "sorry_proof",
                                  "vacuous"])
def test_recorded_files_with_more_than_one_command_are_rejected(name):
    source = _cli_cases()[name]["source"]
    e = rejected(source)
    first_line = source.splitlines()[0]
    if first_line.startswith("axiom"):
        assert "axiom" in e.reason
    else:  # the first theorem is fine; the guard stops at what follows it
        assert e.line is not None and e.line >= 2


@pytest.mark.parametrize("name", ["huge_numbers", "slow_decide", "unknown_ident"])
def test_recorded_single_theorems_parse(name):
    d = parse_declaration(_cli_cases()[name]["source"])
    assert d.keyword == "theorem" and d.name == "step_1" and d.proof == "by decide" and d.binders == ()


def test_each_command_of_the_recorded_files_alone():
    seen = 0
    for case in _cli_cases().values():
        for chunk in _declarations(case["source"]):
            if chunk.startswith("theorem") and "admit" not in chunk:
                d = parse_declaration(chunk)
                assert d.name.startswith("step_")
                seen += 1
            else:  # axiom, #eval, #print, and `by admit`
                rejected(chunk)
    assert seen >= 15


def test_recorded_vacuous_file():
    step_1, step_2 = _declarations(_cli_cases()["vacuous"]["source"])
    d = parse_declaration(step_1)
    assert d.proof == "by\n  cases h" and "hypothesis h is false" in vacuity(d)
    assert vacuity(parse_declaration(step_2)) == "the conclusion is True"


def test_recorded_sorry_proof_is_no_proof():
    step_1 = _declarations(_cli_cases()["sorry_proof"]["source"])[0]
    assert parse_declaration(step_1).proof is None
    rejected(step_1, "sorry", allow_sorry_proof=False)


# -- attacks ----------------------------------------------------------------------------------------------

T = "theorem t : True := trivial"
ATTACKS = [
    # commands that run code or change the environment
    ("eval_after_newline", T + '\n#eval IO.println "x"', "#eval"),
    ("eval_same_line", T + ' #eval IO.println "x"', "#eval"),
    ("eval_glued_to_proof", T + '#eval 1', "#eval"),
    ("eval_writes_file", T + '\n#eval (IO.FS.writeFile "pwned.txt" "x" : IO Unit)', "#eval"),
    ("eval_first", '#eval 1\n' + T, "#eval"),
    ("exit", T + "\n#exit", "#exit"),
    ("print_axioms", T + "\n#print axioms t", "#print"),
    ("check", T + "\n#check t", "#check"),
    ("reduce", T + "\n#reduce 1", "#reduce"),
    ("guard_msgs", "#guard_msgs in\n" + T, "#guard_msgs"),
    ("run_cmd", T + '\nrun_cmd IO.println "x"', "run_cmd"),
    ("run_tac_in_by", 'theorem t : True := by\n  run_tac pure ()\n  trivial', "run_tac"),
    ("run_elab", T + "\nrun_elab pure ()", "run_elab"),
    ("run_meta", T + "\nrun_meta pure ()", "run_meta"),
    ("run_cmd_inside_by", "theorem t : True := by run_cmd pure ()", "run_cmd"),
    ("by_elab", "theorem t : True := by_elab pure default", "by_elab"),
    ("import_in_step", "import Mathlib\n" + T, "import"),
    ("import_after", T + "\nimport Mathlib", "import"),
    # options
    ("maxHeartbeats_0", "set_option maxHeartbeats 0 in\n" + T, "maxHeartbeats"),
    ("maxHeartbeats_too_big", "set_option maxHeartbeats 100000000 in\n" + T, "maxHeartbeats"),
    ("option_not_allowed", "set_option autoImplicit true in\n" + T, "autoImplicit"),
    ("option_trace", "set_option trace.Meta.synthInstance true in\n" + T, "trace"),
    ("option_inside_proof", "theorem t : True := by\n  set_option maxHeartbeats 0 in\n  trivial", "maxHeartbeats"),
    ("option_without_in", "set_option maxHeartbeats 1000\n" + T, "`in`"),
    ("option_after", T + "\nset_option maxHeartbeats 1000", "`in`|set_option"),
    # declarations that are not the one theorem
    ("axiom", "axiom cheat : (1 : Nat) = 2\ntheorem t : (1 : Nat) = 2 := cheat", "axiom"),
    ("axiom_after", T + "\naxiom cheat : False", "axiom"),
    ("opaque", T + "\nopaque f : Nat", "opaque"),
    ("unsafe_def", "unsafe def f : Nat := 1\n" + T, "unsafe"),
    ("unsafe_term", "theorem t : True := unsafe trivial", "unsafe"),
    ("extern_attribute", '@[extern "x"] theorem t : True := trivial', "attributes"),
    ("implemented_by_attribute", "@[implemented_by f] theorem t : True := trivial", "attributes"),
    ("simp_attribute", "@[simp] theorem t : True := trivial", "attributes"),
    ("attribute_command", T + "\nattribute [simp] t", "attribute"),
    ("macro", T + '\nmacro "x" : term => pure default', "macro"),
    ("macro_rules", T + "\nmacro_rules | _ => pure default", "macro_rules"),
    ("syntax", T + '\nsyntax "x" : term', "syntax"),
    ("elab", T + '\nelab "x" : term => pure default', "elab"),
    ("notation", T + '\nnotation "ℵ" => 1', "notation"),
    ("infixl", T + '\ninfixl:65 " +++ " => Nat.add', "infixl"),
    ("second_theorem_same_line", T + " theorem u : False := sorry", "second declaration"),
    ("second_theorem_next_line", T + "\ntheorem u : True := trivial", "second declaration"),
    ("lemma_after", T + "\nlemma u : True := trivial", "second declaration"),
    ("example_after", T + "\nexample : True := trivial", "second declaration"),
    ("def_after", T + "\ndef f : Nat := 1", "def"),
    ("def_only", "def f : Nat := 1", "def"),
    ("instance_after", T + "\ninstance : Inhabited Nat := ⟨0⟩", "instance"),
    ("alias_after", T + "\nalias u := t", "alias"),
    ("namespace", "namespace X\n" + T, "namespace"),
    ("end_after", T + "\nend X", "end"),
    ("open_in_step", "open Lean in\n" + T, "open"),
    ("private", "private " + T, "private"),
    ("noncomputable", "noncomputable " + T, "noncomputable"),
    ("local_notation", T + '\nlocal notation "ℵ" => 1', "local"),
    ("where_clause", "theorem t : True := h where h := trivial", "where"),
    ("mutual", "mutual\n" + T + "\nend", "mutual"),
    # comments and strings that close earlier than they seem to
    ("theorem_after_comment_close", T + " /- -/ theorem u : False := sorry", "second declaration"),
    ("nested_comment_closed_twice", T + " /- /- -/ -/ #eval 1", "#eval"),
    ("lean_skips_char_after_comment_open", T + ' /-/- -/ #eval IO.println "x" -/', "#eval"),
    ("escaped_backslash_ends_string", 'theorem t : "\\\\" #eval 1 = "" := rfl', "#eval"),
    ("invalid_escape", 'theorem t : "\\q #eval 1" = "" := rfl', "invalid escape"),
    ("unicode_escape_braces", 'theorem t : "\\u{41}" = "A" := rfl', "invalid escape"),
    ("raw_string", 'theorem t : r"\\" = "\\\\" := rfl', "raw string"),
    ("interpolated_string", 'theorem t : s!"{1}" = "1" := rfl', "interpolated"),
    ("brace_in_string", 'theorem t : "{" = "{" := rfl', "interpolated"),
    ("string_over_lines", 'theorem t : "a\nb" = "a" := rfl', "span lines"),
    # a library token may run into a quote or comment opener (Mathlib's ⁻¹' and '', core's //)
    ("token_swallows_quote", 'theorem t : f ⁻¹\'"\' x "y #eval 1 " = 1 := rfl', "right after `⁻¹`"),
    ("token_swallows_comment", "theorem t : { n : ℕ //- #eval 1 -/ } = ∅ := rfl", "right after `/`"),
    ("token_swallows_line_comment", "theorem t : 1 = 1 :=-- #eval 1\n  rfl", "right after `:=`"),
    ("image_notation", "theorem t (f : ℕ → ℕ) (s : Set ℕ) : f '' s = s := sorry", "''"),
    ("doc_comment_in_proof", T + " /-- doc -/", "doc comment"),
    ("module_doc_after", T + "\n/-! doc -/", "doc comment"),
    ("syntax_quotation", "theorem t : True := by\n  exact `(True.intro)", "quotation"),
    ("name_literal", "theorem t : True := by\n  have := `True.intro\n  trivial", "quotation"),
    # look-alike and invisible characters
    ("cyrillic_e_in_eval", T + "\n#\u0435val 1", "Cyrillic"),
    ("cyrillic_e_in_theorem", "th\u0435orem t : True := trivial", "Cyrillic"),
    ("fullwidth_hash", T + "\n\uff03eval 1", "full-width"),
    ("greek_capital_alpha", "theorem t (\u0391 : Prop) (h : \u0391) : \u0391 := h", "Greek"),
    ("greek_small_omicron", "theorem t (\u03bf : Nat) : \u03bf = \u03bf := rfl", "Greek"),
    ("armenian", "theorem t (\u0578 : Nat) : True := trivial", "Armenian"),
    ("zero_width_joiner_in_eval", T + "\n#e\u200dval 1", "invisible"),
    ("zero_width_space_in_comment", T + " -- a\u200bb", "invisible"),
    ("bidi_override_in_comment", T + " -- \u202e }1 lave# ", "bidirectional"),
    ("bidi_isolate", T + " -- \u2066x\u2069", "bidirectional"),
    ("nbsp", "theorem t :\u00a0True := trivial", "whitespace"),
    ("byte_order_mark", "\ufeff" + T, "invisible"),
    ("unicode_minus", "theorem t : (3 : Int) \u2212 1 = 2 := by decide", "looks like -"),
    ("control_character", T + " -- \x1b[2J", "control"),
    ("not_nfc", "theorem t : (1 : Nat) =\u0338 2 := by decide", "NFC"),
    ("not_nfc_ohm", "theorem t (\u2126 : Nat) : True := trivial", "NFC"),
    # sorry and friends
    ("sorry_in_exact", "theorem t : 1 = 2 := by exact sorry", "sorry"),
    ("sorry_after_tactics", "theorem t : 1 = 2 := by\n  simp\n  sorry", "sorry"),
    ("sorry_in_term", "theorem t : 1 = 2 := (sorry)", "sorry"),
    ("sorry_in_statement", "theorem t (h : sorry) : True := trivial", "sorry"),
    ("admit", "theorem t : 1 = 2 := by admit", "admit"),
    ("stop", "theorem t : 1 = 2 := by\n  stop\n  simp", "stop"),
    ("quoted_sorry", "theorem t : 1 = 2 := «sorry»", "sorry"),
    ("sorryAx", "theorem t : 1 = 2 := sorryAx _ false", "sorryAx"),
    # forbidden identifiers
    ("quoted_eval_identifier", "theorem t : True := «#eval»", "not a plain name"),
    ("quoted_identifier_with_spaces", 'theorem t : True := «#eval IO.println "x"»', "not a plain name"),
    ("ofReduceBool", "theorem t : True := Lean.ofReduceBool _ _ rfl", "ofReduceBool"),
    ("ofReduceBool_root", "theorem t : True := _root_.Lean.ofReduceBool _ _ rfl", "ofReduceBool"),
    ("ofReduceBool_quoted", "theorem t : True := «Lean».«ofReduceBool» _ _ rfl", "ofReduceBool"),
    ("unsafeIO", "theorem t : True := (unsafeIO (pure ())).elim (fun _ => trivial) (fun _ => trivial)",
     "unsafeIO"),
    ("unsafeBaseIO", "theorem t : True := by\n  have := unsafeBaseIO (pure 1)\n  trivial", "unsafeBaseIO"),
    ("IO_in_proof", 'theorem t : True := by\n  have := IO.println "x"\n  trivial', "IO"),
    ("lean_elab", "theorem t : True := by\n  have := Lean.Elab.Command.elabCommand\n  trivial", "Lean"),
    ("lean_meta", "theorem t : True := by\n  have := @Lean.Meta.whnf\n  trivial", "Lean"),
    ("dbg_trace", 'theorem t : True := dbg_trace "x"; trivial', "dbg_trace"),
    ("dbgTraceIfShared", 'theorem t : True := dbgTraceIfShared "x" trivial', "dbgTraceIfShared"),
    ("polyrith", "theorem t (x : ℚ) (h : x = 1) : 2 * x = 2 := by polyrith", "polyrith"),
    # lexical errors Lean would recover from at a position the guard must not guess
    ("unterminated_string", 'theorem t : "abc = 1 := rfl', "unterminated string"),
    ("unterminated_comment", T + " /- #eval 1", "unterminated comment"),
    ("unterminated_nested_comment", T + " /- /- -/", "unterminated comment"),
    ("unterminated_char", "theorem t : 'ab = 'a' := rfl", "character literal"),
    ("double_quote_char", "theorem t : '' = 1 := rfl", "''"),
    ("exponent_without_digits", T + " 2edef x := 1", "exponent"),
    ("hex_without_digits", "theorem t : 0x = 0 := rfl", "digits"),
    ("unterminated_guillemet", "theorem t : «abc = 1 := rfl", "unterminated identifier"),
    ("tab", "theorem t : True :=\ttrivial", "tab"),
    ("lone_carriage_return", "theorem t : True :=\rtrivial", "carriage return"),
    # structure
    ("deep_nesting", "theorem t : " + "(" * 201 + "True" + ")" * 201 + " := trivial", "nested"),
    ("too_long", T + " " * 20_000, "limit"),
    ("unbalanced_open", "theorem t : (True := trivial", "never closed"),
    ("unbalanced_close", "theorem t : True) := trivial", "unbalanced"),
    ("mismatched_brackets", "theorem t : (True] := trivial", "unbalanced"),
    ("empty", "", "no declaration"),
    ("only_comment", "-- theorem t : True := trivial", "no declaration"),
    ("binder_default_value", "theorem t (n : Nat := 3) : n = n := rfl", "default"),
    ("bare_binder", "theorem t n : n = n := rfl", "bracketed binder"),
    ("binder_without_type", "theorem t (n) : n = n := rfl", "without a type"),
    ("no_type", "theorem t := trivial", "bracketed binder or `:`"),
    ("empty_proof", "theorem t : True := -- nothing", "empty proof"),
    ("let_alternatives_eat_assign", "theorem t : let f : Nat → Nat\n  | _ => 1\n  f 0 = 1 := rfl", "cannot tell"),
    ("keyword_as_name", "theorem fun : True := trivial", "name"),
]


@pytest.mark.parametrize("text,match", [(t, m) for _, t, m in ATTACKS], ids=[i for i, _, _ in ATTACKS])
def test_attack_is_rejected(text, match):
    e = rejected(text, match)
    if e.offset is not None:
        assert 0 <= e.offset <= len(text)
        assert e.line is not None and str(e).endswith(f"(at line {e.line}, column {e.column})")


def test_error_position_points_at_the_command():
    e = rejected("theorem t : True := trivial\n  #eval 1")
    assert (e.line, e.column, e.offset) == (2, 3, 30)
    assert str(e) == "command `#eval` is not allowed (at line 2, column 3)"


def test_guard_error_pickles_with_its_position():
    e = pickle.loads(pickle.dumps(rejected("theorem t : True := trivial\n#exit")))
    assert isinstance(e, GuardError) and (e.line, e.column) == (2, 1) and "#exit" in str(e)


# -- accepted forms ---------------------------------------------------------------------------------------

HARMLESS = [
    ("eval_in_line_comment", T + ' -- #eval IO.println "x"'),
    ("theorem_in_comment", T + " /- theorem u : False := sorry -/"),
    ("nested_comment_all_comment", T + " /- /- -/ #eval -/"),
    ("comment_close_in_string", 'theorem t : "-/ #eval" = "-/ #eval" := rfl'),
    ("escaped_quote_keeps_string_open", 'theorem t : "\\" #eval" = "\\" #eval" := rfl'),
    ("eval_in_string", 'theorem t : "#eval" ≠ "" := by decide'),
    ("doc_comment_before", "/-- The step. -/\n" + T),
    ("char_literals_and_primes", "theorem t (h' : 'a' = 'a') (f' : Nat → Nat) : 'a' = 'a' := h'"),
    ("escapes", "theorem t : '\\n' ≠ '\\x41' ∧ \"\\u0041\\t\" ≠ \"\" := by decide"),
    ("quoted_plain_identifier", "theorem «t» : True := trivial"),
    ("native_decide", "theorem t : 2 + 2 = 4 := by native_decide"),
    ("eval_like_names", "theorem t (evaluation : Nat) (h : evaluation = 1) : evaluation = 1 := h"),
    ("array_literal", "theorem t : #[1, 2].size = 2 := rfl"),
]


@pytest.mark.parametrize("text", [t for _, t in HARMLESS], ids=[i for i, _ in HARMLESS])
def test_harmless_text_is_accepted(text):
    parse_declaration(text)


def test_safe_statement():
    d = parse_declaration(SAFE)
    assert (d.keyword, d.name, d.conclusion, d.proof, d.options) == ("theorem", "test", "(a = (-3))", None, ())
    assert d.binders == (Binder(("a", "x"), "ℝ", "explicit"), Binder(("h₀",), "a * x + 3 = x - 5", "explicit"),
                         Binder(("h₁",), "x = 3", "explicit"))
    assert d.statement() == "(a x : ℝ) (h₀ : a * x + 3 = x - 5) (h₁ : x = 3) : (a = (-3))"
    stated = SAFE[slice(*d.statement_span)]
    assert stated.startswith("theorem test") and stated.endswith("(-3))")
    assert SAFE[slice(*d.proof_span)] == "by sorry"
    assert vacuity(d) is None
    with pytest.raises(GuardError, match="sorry"):
        parse_declaration(SAFE, allow_sorry_proof=False)


@pytest.mark.parametrize("proof", [":= sorry", ":= by sorry", ":= by\n  sorry", ":=\n  sorry -- later"])
def test_whole_sorry_proof_means_no_proof(proof):
    assert parse_declaration(f"theorem t : 1 = 2 {proof}").proof is None


def test_no_proof_at_all():
    d = parse_declaration("theorem step : (2 : Int) + 2 = 4")
    assert d.proof is None and d.proof_span is None and d.conclusion == "(2 : Int) + 2 = 4"


def test_decide_step():
    d = parse_declaration("theorem step_1 : (25 : Int) + 3 = 28 := by decide")
    assert (d.name, d.binders, d.conclusion, d.proof) == ("step_1", (), "(25 : Int) + 3 = 28", "by decide")
    assert d.statement() == ": (25 : Int) + 3 = 28"


def test_example():
    d = parse_declaration("example : 2 + 2 = 4 := rfl")
    assert (d.keyword, d.name, d.conclusion, d.proof) == ("example", None, "2 + 2 = 4", "rfl")


def test_binder_kinds():
    d = parse_declaration("lemma t {α : Type} [inst : Add α] [Mul α] ⦃x y : α⦄ [∀ n : Nat, Inhabited (Fin n)]\n"
                          "    (h : x = y) : y = x := h.symm")
    assert d.keyword == "lemma"
    assert d.binders == (Binder(("α",), "Type", "implicit"), Binder(("inst",), "Add α", "instance"),
                         Binder((), "Mul α", "instance"), Binder(("x", "y"), "α", "strict"),
                         Binder((), "∀ n : Nat, Inhabited (Fin n)", "instance"), Binder(("h",), "x = y", "explicit"))
    assert d.statement().startswith("{α : Type} [inst : Add α] [Mul α] ⦃x y : α⦄ [∀ n : Nat, Inhabited (Fin n)] (h")


def test_colons_and_assignments_inside_the_type():
    d = parse_declaration("theorem t : let x := 5; (fun y : Nat => y) x = 5 := by simp")
    assert (d.conclusion, d.proof) == ("let x := 5; (fun y : Nat => y) x = 5", "by simp")
    d = parse_declaration("theorem t : ∀ f : Nat → Nat, f = fun x : Nat => f x := fun _ => rfl")
    assert (d.conclusion, d.proof) == ("∀ f : Nat → Nat, f = fun x : Nat => f x", "fun _ => rfl")
    d = parse_declaration("theorem t (h : { n : Nat // n = 1 }) : h.1 = 1 := by\n  have e : h.1 = 1 := h.2\n  exact e")
    assert d.binders[0].type == "{ n : Nat // n = 1 }" and d.proof == "by\n  have e : h.1 = 1 := h.2\n  exact e"


def test_comments_are_removed_from_the_parts():
    d = parse_declaration("theorem t /- c -/ (x : ℕ) -- why\n  : x/- glued -/+ 0 = x := by\n  simp -- done\n")
    assert d.binders == (Binder(("x",), "ℕ", "explicit"),)
    assert d.conclusion == "x + 0 = x" and d.proof == "by\n  simp"


def test_tactic_layout_is_kept():
    text = ("theorem t (p q : Prop) (hp : p) (hq : q) : p ∧ q := by\n"
            "      constructor\n"
            "      · exact hp\n"
            "      · -- the second goal\n"
            "        exact hq")
    d = parse_declaration(text)
    assert d.proof == "by\n  constructor\n  · exact hp\n  ·\n    exact hq"
    out = d.render("step")
    assert out.endswith(":= by\n  constructor\n  · exact hp\n  ·\n    exact hq")


def test_term_proof_over_lines_keeps_its_columns():
    head = "theorem t (p q : Prop) (hp : p) (hq : q) : p ∧ q := "
    d = parse_declaration(head + "⟨hp,\n" + " " * (len(head) + 1) + "hq⟩")
    assert d.proof == "  ⟨hp,\n   hq⟩"  # hq stays one column right of ⟨, as in the original
    assert d.render("step").endswith(" :=\n  ⟨hp,\n   hq⟩")


def test_tactic_on_the_by_line_keeps_its_alignment():
    head = "theorem t : 1 = 1 ∧ 2 = 2 := "
    d = parse_declaration(head + "by constructor\n" + " " * (len(head) + 3) + "<;> rfl")
    # `<;> rfl` was aligned under `constructor`: both move together, so Lean reads the same block
    assert d.proof == "  by constructor\n     <;> rfl"


def test_windows_line_endings():
    d = parse_declaration("theorem t (p : Prop) (hp : p) : p := by\r\n  exact hp -- done\r\n")
    assert d.proof == "by\n  exact hp" and "\r" not in d.render("step")


@pytest.mark.parametrize("text", ["theorem t (f : ℕ → ℕ) (s : Set ℕ) : f '' s = s := sorry",
                                  "theorem t (f : ℕ → ℕ) (s : Set ℕ) : f ⁻¹' s = s := sorry",
                                  "theorem t : ∑' i : ℕ, (0 : ℝ) = 0 := sorry",
                                  "theorem t (s : Finset ℕ) : #s = s.card := rfl"])
def test_library_notations_the_guard_refuses(text):
    # documented: their tokens would let Lean and the guard disagree on where strings start (or are commands)
    rejected(text)


def test_allowed_option_prefix():
    d = parse_declaration("set_option maxHeartbeats 400000 in\nset_option pp.all true in\n" + T)
    assert d.options == (("maxHeartbeats", "400000"), ("pp.all", "true"))
    assert d.render("step").startswith("set_option maxHeartbeats 400000 in\nset_option pp.all true in\ntheorem step")


def test_allowed_option_inside_a_proof():
    d = parse_declaration("theorem t : True := by\n  set_option maxRecDepth 2000 in\n  trivial")
    assert d.proof == "by\n  set_option maxRecDepth 2000 in\n  trivial"


def test_option_tables():
    assert ALLOWED_OPTIONS["maxHeartbeats"].low == 1 and ALLOWED_OPTIONS["maxHeartbeats"].high == 400_000
    assert "autoImplicit" not in ALLOWED_OPTIONS
    assert {"sorryAx", "Lean.ofReduceBool", "unsafeIO", "IO", "implemented_by", "extern"} <= FORBIDDEN_IDENTIFIERS
    assert "native_decide" not in FORBIDDEN_IDENTIFIERS


ACCEPTED = [
    SAFE,
    "theorem step_1 : (25 : Int) + 3 = 28 := by decide",
    "example : 2 + 2 = 4 := rfl",
    "theorem step : (2 : Int) + 2 = 4",
    "lemma t {α : Type} [inst : Add α] [Mul α] ⦃x y : α⦄ (h : x = y) : y = x := h.symm",
    "theorem t : let x := 5; x = 5 := by simp",
    "set_option maxHeartbeats 400000 in\n" + T,
    "theorem t (p q : Prop) (hp : p) (hq : q) : p ∧ q := by\n  constructor\n  · exact hp\n  · exact hq",
    "theorem t (p q : Prop) (hp : p) (hq : q) : p ∧ q := ⟨hp,\n     hq⟩",
    "theorem t : 1 = 1 ∧ 2 = 2 := by constructor\n                                <;> rfl",
    "theorem mathd_algebra_10 (x : ℝ) (h₀ : 0 < x) (h₁ : x ^ 2 = 4) : x = 2 := by\n"
    "  nlinarith [sq_nonneg (x - 2), sq_nonneg (x + 2), h₀, h₁]",
    "theorem amc (n : ℕ) (h : n ∣ 12) : ∑ k ∈ Finset.range 4, k = 6 ∧ |(-2 : ℤ)| = 2 ∧ ⌊(2.5 : ℝ)⌋ = 2 ∧ "
    "Real.sqrt 4 = 2 ∧ (2 : ℝ)⁻¹ * 2 = 1 ∧ √(4 : ℝ) = 2 := by\n"
    "  refine ⟨by decide, by norm_num, ?_, ?_, ?_, ?_⟩ <;> norm_num",
    "/-- doc -/ theorem t (x : ℕ) -- comment\n : x + 0 = x := by\n  -- a comment line\n  simp",
] + [t for _, t in HARMLESS]


@pytest.mark.parametrize("text", ACCEPTED)
def test_render_round_trip(text):
    d = parse_declaration(text)
    out = d.render("step")
    again = parse_declaration(out)
    assert again == dataclasses.replace(d, keyword="theorem", name="step")
    assert again.render("step") == out
    assert out.startswith("set_option" if d.options else "theorem step ")
    assert "--" not in out and "/-" not in out


@pytest.mark.parametrize("text", ACCEPTED)
def test_head_and_as_pi_round_trip(text):
    d = parse_declaration(text)
    head = parse_declaration(d.head("rpS_0123456789ab_0"))
    assert head == dataclasses.replace(d, keyword="theorem", name="rpS_0123456789ab_0", proof=None)
    pi = parse_declaration(f"theorem s : {d.as_pi()}")
    assert pi.binders == () and pi.conclusion == d.as_pi()
    assert d.as_pi() == (f"∀ {' '.join(b.render() for b in d.binders)}, {d.conclusion}" if d.binders
                         else d.conclusion)


def test_render_with_a_proof():
    d = parse_declaration(SAFE)
    out = d.render("step", "by\n  tac1\n  tac2")
    assert out == ("theorem step (a x : ℝ) (h₀ : a * x + 3 = x - 5) (h₁ : x = 3) : (a = (-3)) := by\n"
                   "  tac1\n  tac2")
    assert parse_declaration(out).proof == "by\n  tac1\n  tac2"
    assert d.render("step", "by linarith").endswith(": (a = (-3)) := by linarith")
    assert d.render("step").endswith(":= by sorry")
    # comments in a given proof do not reach the output
    assert d.render("step", "by\n  linarith -- done") .endswith(":= by\n  linarith")
    # a modified conclusion (the verifier's negation probe) renders and parses
    neg = dataclasses.replace(parse_declaration("theorem s : (2 : Int) + 2 = 5"), conclusion="¬ ((2 : Int) + 2 = 5)")
    assert parse_declaration(neg.render("step", "by decide")).conclusion == "¬ ((2 : Int) + 2 = 5)"


@pytest.mark.parametrize("name,proof,match", [
    ("step", "by simp\n#eval 1", "#eval"),
    ("step", "trivial\ntheorem u : False := sorry", "second declaration"),
    ("step", "by exact sorry", "sorry"),
    ("step", "by\n  run_tac pure ()", "run_tac"),
    ("step", "trivial /-", "unterminated comment"),
    ("def", "trivial", "def"),
    ("a b", "trivial", "binder|name"),
    ("x#eval", "trivial", "#eval"),
])
def test_render_guards_its_output(name, proof, match):
    d = parse_declaration(T)
    with pytest.raises(GuardError, match=match):
        d.render(name, proof)


# -- the statement is what Lean reads, or it is rejected ------------------------------------------------------

@pytest.mark.parametrize("text,match", [
    # let/have variants the splitter does not know: the `:=` that ends the type could be theirs
    ("theorem t : let_delayed x := (1 : Nat); x = 2 := by simp", "let_delayed"),
    ("theorem t : let_tmp x := (1 : Nat); x = 2 := by simp", "let_tmp"),
    ("theorem t : let_mvar% ?m := (1 : Nat); ?m = 2 := by simp", "let_mvar"),
    ("theorem t : let_expr x := (1 : Nat); x = 2 := by simp", "let_expr"),
    ("theorem t : have' h := (1 : Nat); h = 2 := by simp", "have'"),
    ("theorem t : let' x := (1 : Nat); x = 2 := by simp", "let'"),
    ("theorem t (h : (let_delayed x := 1; x) = 1) : True := trivial", "let_delayed"),
    ("theorem t : (let_tmp x := 1; x) = 1 := rfl", "let_tmp"),
    # blocks whose own `:=` the guard cannot tell from the declaration's
    ("theorem t : by obtain ⟨x⟩ := h; exact True := trivial", "`by` block"),
    ("theorem t : calc 1 = 1 := rfl := rfl", "`calc` block"),
    ("theorem t : do let x := 1; pure x := rfl", "`do` block"),
    ("theorem t : let f : Nat → Nat | _ => 1; f 0 = 1 := rfl", "alternatives|`|`"),
    ("theorem t : have h : 1 = 1 from rfl; h = h := rfl", "`from`"),
    ("theorem t : let x ← pure 1; x = 1 := rfl", "`←`"),
    ("theorem t : let x : Nat; x = 1", "cannot tell"),
    # line breaks after a layout-sensitive word: the flattened statement would read differently
    ("theorem t : let x := 5\n  x = 5 := rfl", "line break after `let`"),
    ("theorem t (x : Nat) : have h : x = x := rfl\n  h = h := rfl", "line break after `have`"),
    ("theorem t : ((by\n  exact 1) : Nat) = 1 := rfl", "line break after `by`"),
    ("theorem t (p : Nat × Nat) (h : p = { fst := 1\n  snd := 2 }) : p.1 = 1 := by simp [h]", "line break after `:=`"),
    ("theorem t : (calc (1 : Nat) = 1 := rfl\n  _ = 1 := rfl) = rfl := rfl", "line break"),
])
def test_statement_forms_the_guard_does_not_parse(text, match):
    rejected(text, match)


@pytest.mark.parametrize("text,conclusion,proof", [
    ("theorem t : let x := 5; x = 5 := by simp", "let x := 5; x = 5", "by simp"),
    ("theorem t : let x := 5; let y := x; y = 5", "let x := 5; let y := x; y = 5", None),
    ("theorem t : have h : 1 = 1 := rfl; h = h := rfl", "have h : 1 = 1 := rfl; h = h", "rfl"),
    ("theorem t : letI := 1; haveI := 2; True := trivial", "letI := 1; haveI := 2; True", "trivial"),
    ("theorem t : let f := fun | 0 => 1 | _ => 2; f 0 = 1 := rfl", "let f := fun | 0 => 1 | _ => 2; f 0 = 1", "rfl"),
    ("theorem t : ((by exact 1) : Nat) = 1 := rfl", "((by exact 1) : Nat) = 1", "rfl"),
    ("theorem t (letter haven : Nat) : letter = haven := sorry", "letter = haven", None),
    ("theorem t (p : Nat × Nat) (h : p = { fst := 1, snd := 2 }) :\n  p.1 = 1 := by simp [h]", "p.1 = 1",
     "by simp [h]"),
    ("theorem t :\n  ∀ x : Nat,\n  x = x := fun _ => rfl", "∀ x : Nat, x = x", "fun _ => rfl"),
])
def test_statement_forms_the_guard_parses(text, conclusion, proof):
    d = parse_declaration(text)
    assert (d.conclusion, d.proof) == (conclusion, proof)
    assert parse_declaration(d.head()).conclusion == conclusion  # also without the proof


def test_a_provers_statement_cannot_hide_behind_an_unknown_binder():
    # Lean reads the type `let_delayed x := 5; x = 5` and the proof `by simp`; a guard that did not know
    # let_delayed would have read the type `let_delayed x` and the proof `5; x = 5 := by simp`
    rejected("theorem t : let_delayed x := 5; x = 5 := by simp", "let_delayed")


# -- a proof on its own -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text,proof", [
    ("by decide", "by decide"),
    ("  rfl  ", "rfl"),
    ("by\n  intro x -- why\n  simp", "by\n  intro x\n  simp"),
    ("\n\nby\n    constructor\n    · rfl\n    · rfl\n", "by\n  constructor\n  · rfl\n  · rfl"),
    ("by constructor\n   <;> rfl", "  by constructor\n     <;> rfl"),
    ("  by constructor\n     <;> rfl", "  by constructor\n     <;> rfl"),
    ("⟨hp,\n hq⟩", "  ⟨hp,\n   hq⟩"),
    ("sorry", None), ("by sorry", None), ("by\n  sorry -- later", None),
])
def test_parse_proof(text, proof):
    assert parse_proof(text) == proof
    if proof is not None:
        assert parse_proof(proof) == proof


@pytest.mark.parametrize("text,match", [
    ("by simp\n#eval 1", "#eval"), ("trivial\ntheorem u : True := trivial", "second declaration"),
    ("by exact sorry", "sorry"), (":= by simp", "starts with `:=`"), ("", "empty proof"), ("-- c", "empty proof"),
    ("by\n  run_tac pure ()", "run_tac"), ("(trivial", "never closed"), ('by exact "a', "unterminated"),
    ("by simp /-- doc -/", "doc comment"), ("by exact @[simp] h", "attributes"), ("by\tsimp", "tab"),
    ("by exact Lean.ofReduceBool", "ofReduceBool"),
])
def test_parse_proof_rejects(text, match):
    with pytest.raises(GuardError, match=match):
        parse_proof(text)


def test_parse_proof_whole_sorry_when_not_allowed():
    with pytest.raises(GuardError, match="the proof is `sorry`"):
        parse_proof("by sorry", allow_sorry=False)


def test_render_of_a_parsed_proof_keeps_its_meaning():
    d = parse_declaration("theorem s : 1 = 1 ∧ 2 = 2")
    proof = parse_proof("by constructor\n   <;> rfl")
    out = d.render("step", proof)
    assert out == "theorem step : 1 = 1 ∧ 2 = 2 :=\n  by constructor\n     <;> rfl"
    assert parse_declaration(out).proof == proof


# -- vacuity ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,reason", [
    ("theorem t : True := trivial", "the conclusion is True"),
    ("theorem t : (True) := trivial", "the conclusion is True"),
    ("theorem t : True ∧ True := ⟨trivial, trivial⟩", "trivially true"),
    ("theorem t (x : ℕ) : x = 3 ∨ True := Or.inr trivial", "trivially true"),
    ("theorem t (x : ℕ) : x = x := rfl", "trivially true"),
    ("theorem t (p : Prop) : p → p := id", "trivially true"),
    ("theorem t (p : Prop) : (p) -> p := id", "trivially true"),
    ("theorem t (x : ℕ) : False → x = 2 := False.elim", "trivially true"),
    ("theorem t (x : ℝ) (h₀ : x = 3) : x = 3 := h₀", "restates hypothesis h₀"),
    ("theorem t (x : ℝ) (h₀ : x = 3) : (x = 3) := h₀", "restates hypothesis h₀"),
    ("theorem t (h : (1 : Nat) = 2) : (5 : Nat) = 7 := by cases h", "hypothesis h is false: (1 : Nat) = 2"),
    ("theorem t (h : 2 < 1) : (5 : Nat) = 7 := by omega", "hypothesis h is false"),
    ("theorem t (h : (3:ℤ) ≠ 3) : (5 : Nat) = 7 := absurd rfl h", "hypothesis h is false"),
    ("theorem t (h : (-1 : ℤ) ≥ 0) : (5 : Nat) = 7 := by omega", "hypothesis h is false"),
    ("theorem t (x : ℕ) (h : x < x) : x = 7 := by omega", "hypothesis h is false"),
    ("theorem t (h : False) : (5 : Nat) = 7 := h.elim", "hypothesis h is False"),
    ("theorem t (x : ℕ) (h : x = 1 ∧ False) : x = 7 := h.2.elim", "hypothesis h is false"),
    # binders over empty types, instances that cannot exist
    ("theorem t [Inhabited Empty] : (1 : Nat) = 2 := sorry", "instance [Inhabited Empty] cannot exist"),
    ("theorem t [inst : Nonempty Empty] : (1 : Nat) = 2 := sorry", "Nonempty of an empty type"),
    ("theorem t [Inhabited PEmpty] : (1 : Nat) = 2 := sorry", "Inhabited of an empty type"),
    ("theorem t [Nonempty (Fin 0)] : (1 : Nat) = 2 := sorry", "Nonempty of an empty type"),
    ("theorem t [Unique False] : (1 : Nat) = 2 := sorry", "Unique of an empty type"),
    ("theorem t [Fact (1 = 2)] : (1 : Nat) = 2 := sorry", "Fact of a false proposition"),
    ("theorem t [IsEmpty ℕ] : (1 : Nat) = 2 := sorry", "IsEmpty of an inhabited type"),
    ("theorem t (h : Nonempty Empty) : (1 : Nat) = 2 := sorry", "hypothesis (h : Nonempty Empty) cannot exist"),
    ("theorem t (x : Empty) : (1 : Nat) = 2 := sorry", "binder (x : Empty) ranges over an empty type"),
    ("theorem t {x : PEmpty} : (1 : Nat) = 2 := sorry", "binder {x : PEmpty} ranges over an empty type"),
    ("theorem t (y : ℕ) (x : Fin 0) : y = 2 := sorry", "binder (x : Fin 0) ranges over an empty type"),
    ("theorem t (x : Fin (0 : ℕ)) : (1 : Nat) = 2 := sorry", "ranges over an empty type"),
    ("theorem t ⦃x : (Empty)⦄ : (1 : Nat) = 2 := sorry", "ranges over an empty type"),
    ("theorem t : ∀ x : Empty, (1 : Nat) = 2 := sorry", "quantifies over an empty type"),
    ("theorem t : ∀ (n : ℕ) (x : Fin 0), n = 2 := sorry", "quantifies over an empty type"),
])
def test_vacuous(text, reason):
    why = vacuity(parse_declaration(text))
    assert why is not None and reason in why


@pytest.mark.parametrize("text", [
    "theorem step_1 : (25 : Int) + 3 = 28 := by decide",
    SAFE,
    "theorem t (h : (1 : Int) = 1) : (3 : Int) = 3 := by sorry",
    "theorem t (h : (5 : ZMod 3) = 2) : (1 : Nat) = 1 + 0 := rfl",
    "theorem t (x : ℕ) : x = 3 → x + 1 = 4 := by omega",
    "theorem t (x : ℕ) (h : x = 2) : ∀ y : ℕ, y = y → y = y := fun _ h => h",
    "theorem t (h : (-1 : ℕ) = 0) : (5 : Nat) = 7 := sorry",  # not a literal Lean elaborates: left to Lean
    "theorem t (p q : Prop) (hp : p) (hq : q) : p ∧ q := ⟨hp, hq⟩",
    "theorem t (x : ℝ) (h₀ : x = 3) : x + 0 = 3 := by simp [h₀]",
    "theorem t {α : Type} [Inhabited α] [Nonempty ℕ] [Fact (1 < 2)] (x : Fin 3) : x = x + 0 := sorry",
    "theorem t (f : Empty → ℕ) (n : Fin 1) : n = 0 := sorry",
    "theorem t : ∀ x : Fin 2, x = x + 0 := sorry",
    "theorem t [IsEmpty α] (x : ℕ) : x = x + 0 := sorry",
])
def test_not_vacuous(text):
    assert vacuity(parse_declaration(text)) is None


# -- header -----------------------------------------------------------------------------------------------

def test_header_minif2f():
    assert parse_header(MINIF2F_HEADER) == MINIF2F_HEADER
    assert parse_header(MINIF2F_HEADER, allowed_imports={"Mathlib", "Aesop"}) == MINIF2F_HEADER
    messy = "-- Safe's header\nimport   Mathlib\n/-! module doc -/\nopen scoped  BigOperators\n\nopen Real"
    assert parse_header(messy) == "import Mathlib\nopen scoped BigOperators\nopen Real"


@pytest.mark.parametrize("text,match", [
    ("import Mathlib\n#eval 1", "#eval"),
    ("import Mathlib\ndef f := 1", "def"),
    ("import Mathlib\naxiom cheat : False", "axiom"),
    ("import Mathlib\nset_option maxHeartbeats 0", "maxHeartbeats"),
    ("import Mathlib\nset_option autoImplicit true", "autoImplicit"),
    ("open Real\nimport Mathlib", "before"),
    ("import Mathlib\nopen Lean Elab", "Lean"),
    ("import Mathlib\nopen Real in", "in"),
    ("import Mathlib\n/-- doc -/", "doc|only import"),
    ("import Mathl\u0456b", "Cyrillic"),
    ("import Mathlib\n" + T, "theorem"),
    ("import «Mathlib Evil»", "plain"),
    ("import Mathlib+-- x", "right after"),
])
def test_header_rejects(text, match):
    with pytest.raises(GuardError, match=match):
        parse_header(text)


def test_header_import_allow_list():
    with pytest.raises(GuardError, match="import Evil is not allowed"):
        parse_header("import Mathlib\nimport Evil", allowed_imports={"Mathlib"})


# -- the lexer --------------------------------------------------------------------------------------------

def kinds(text: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in tokenize(text) if t.kind != "ws"]


@pytest.mark.parametrize("text", [SAFE, T + " -- c\n/- a /- b -/ c -/", 's!"a{x}b{"c"}d" ++ r#"q"#', "x.1.2 ≠ 0x1F",
                                  "h' 'a' '\\n' «a b».c #eval #[1] 1.5e3 2E-3 0b101 ⁻¹ <;> :="])
def test_tokens_cover_the_text(text):
    toks = tokenize(text)
    assert "".join(t.text for t in toks) == text
    assert all(text[t.start:t.end] == t.text for t in toks)


def test_lexer_follows_lean():
    assert kinds("«#eval»") == [("ident", "«#eval»")]
    assert kinds("#eval x") == [("command", "#eval"), ("ident", "x")]
    assert kinds("#[1]")[0] == ("symbol", "#")
    assert kinds("h' f'' 'a'") == [("ident", "h'"), ("ident", "f''"), ("char", "'a'")]
    assert kinds("(x)'a'") == [("symbol", "("), ("ident", "x"), ("symbol", ")"), ("char", "'a'")]
    assert kinds("/-/- -/ x") == [("comment", "/-/- -/"), ("ident", "x")]  # Lean skips the char after /-
    assert kinds("/- /- -/ x -/ y") == [("comment", "/- /- -/ x -/"), ("ident", "y")]
    assert kinds("/-- d -/ /-! m -/") == [("docstring", "/-- d -/"), ("docstring", "/-! m -/")]
    assert kinds("a--b\nc") == [("ident", "a"), ("comment", "--b"), ("ident", "c")]
    assert kinds('"a\\"b" c') == [("string", '"a\\"b"'), ("ident", "c")]
    assert kinds('r#"a"b"# c') == [("string", 'r#"a"b"#'), ("ident", "c")]
    assert kinds('s!"a{x + "}"}b"') == [("keyword", "s!"), ("string", '"a{'), ("ident", "x"), ("symbol", "+"),
                                        ("string", '"}"'), ("string", '}b"')]
    assert kinds("0x1F 1.5e3 2e-3 12.") == [("number", "0x1F"), ("number", "1.5e3"), ("number", "2e-3"),
                                             ("number", "12"), ("symbol", ".")]
    assert kinds("Nat.succ_le.mp theorem_1 theorem") == [("ident", "Nat.succ_le.mp"), ("ident", "theorem_1"),
                                                         ("keyword", "theorem")]
    assert kinds("a:=b ->c") == [("ident", "a"), ("symbol", ":="), ("ident", "b"), ("symbol", "->"), ("ident", "c")]


@pytest.mark.parametrize("text,match", [('"abc', "unterminated string"), ("/- /- -/", "unterminated comment"),
                                        ("'a", "character literal"), ('"\\z"', "invalid escape"),
                                        ("«a", "identifier escape"), ('r#"a"', "raw string"),
                                        ('s!"a{x', "interpolated"), ("1e", "exponent")])
def test_lexer_errors(text, match):
    with pytest.raises(GuardError, match=match):
        tokenize(text)


def test_module_docstring_example_runs():
    import reasonpipe.verifiers.lean.guard as guard
    assert "python -c" in guard.__doc__ and "does NOT" in guard.__doc__
    d = parse_declaration("theorem t : (2:Int)+2=4 := by decide")
    assert d.render("step") == "theorem step : (2:Int)+2=4 := by decide"
    assert isinstance(d, Declaration)
