"""The proof policy: what an untrusted proof (and a statement) may contain in the default mode and with
--trust-tactics; the words the keyword probe is asked about; statements as one Prop term (``as_pi``) for the
trusted statement file, checked against real Lean where a `lean` is on PATH."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reasonpipe.verifiers.lean.guard import Binder, GuardError, parse_declaration, parse_proof
from reasonpipe.verifiers.lean.policy import (ALLOWED_NOTATIONS, ALLOWED_TACTICS, ALLOWED_TERM_WORDS, ALLOWED_WORDS, check_proof,
                                   check_statement, proof_words)

SAFE = "theorem test\n  (a x: ℝ)\n  (h₀: a * x + 3 = x - 5)\n  (h₁: x = 3):\n  (a = (-3)) := by sorry"


def refused(proof: str, match: str, **kw) -> GuardError:
    with pytest.raises(GuardError) as info:
        check_proof(proof, **kw)
    assert match in info.value.reason, info.value.reason
    return info.value


# -- default mode: what a proof may never do ------------------------------------------------------------------

DENIED = [
    # prints
    ("trace", 'by\n  trace "hello"\n  simp', "`trace` prints"),
    ("trace_no_string", "by\n  trace_state\n  simp", "`trace_state` prints"),
    ("dbg_trace_tactic", 'by\n  dbg_trace "x"; simp', "dbg_trace"),
    ("dbg_trace_term", 'dbg_trace "x"; trivial', "dbg_trace"),
    ("dbgTrace", 'dbgTrace "x" fun _ => trivial', "dbgTrace"),
    ("logInfo", "by\n  logInfo m\n  trivial", "`logInfo` prints"),
    ("show_term", "by show_term simp", "`show_term` prints"),
    ("says", "by\n  simp? says simp only [h]", "`simp?` prints"),
    ("says_alone", "by\n  simp says simp only [h]", "`says` prints"),
    ("exact?", "by exact?", "`exact?` prints suggestions"),
    ("apply?", "by apply?", "`apply?` prints suggestions"),
    ("simp?", "by simp? [foo]", "`simp?` prints suggestions"),
    ("simp_all?", "by simp_all?", "`simp_all?` prints suggestions"),
    ("simp?!", "by simp?!", "`simp?!` prints suggestions"),
    ("aesop?", "by aesop?", "`aesop?` prints suggestions"),
    ("rw?", "by rw?", "`rw?` prints suggestions"),
    ("exact?_in_first", "by first | exact? | simp", "`exact?` prints"),
    ("exact?_after_then", "by\n  constructor <;> exact?", "`exact?` prints"),
    ("hint", "by hint", "`hint` prints"),
    ("extract_goal", "by\n  extract_goal\n  simp", "`extract_goal` prints"),
    ("observe", "by\n  observe h : x = 1\n  simp", "`observe` prints"),
    ("rw_search", "by rw_search", "`rw_search` prints"),
    ("library_search", "by library_search", "`library_search` prints"),
    # sleeps
    ("sleep", "by\n  sleep 100000\n  simp", "`sleep` sleeps"),
    ("sleep_in_first", "by first | sleep 1000 | simp", "`sleep` sleeps"),
    ("IO_sleep", "by exact (IO.sleep 1).run", "IO"),
    # reads files
    ("include_str", 'by\n  have := include_str "/etc/passwd"\n  trivial', "`include_str` reads files"),
    ("include_str_word", "by\n  have := my_include_str_x\n  trivial", "reads files"),
    ("include_str_dotted", "by exact Foo.include_str", "reads files"),
    ("readFile", "by\n  have := readFile p\n  trivial", "`readFile` reads files"),
    ("readFile_dotted", "by exact FS.readFile p", "reads files"),
    ("IO_FS", "by exact IO.FS.readFile p", "IO"),
    # evaluates code at elaboration time
    ("native_decide", "by native_decide", "`native_decide` evaluates code"),
    ("decide_plus_native", "by decide +native", "`native` evaluates code"),
    ("decide_native_config", "by decide (config := { native := true })", "`native` evaluates code"),
    ("run_tac", "by\n  run_tac pure ()\n  trivial", "run_tac"),
    ("by_elab", "by_elab pure default", "by_elab"),
    ("eval%", "by exact eval% (1 + 1)", "`eval%`"),
    ("decl_name%", "by exact decl_name%", "`decl_name%`"),
    ("let_mvar%", "by exact (let_mvar% ?m := 1; trivial)", "`let_mvar%`"),
    ("hash_eval", "by\n  simp\n#eval 1", "#eval"),
    ("hash_array", "by exact #[1, 2].size_pos", "`#`"),
    ("hash_card", "by simp [#s]", "#s"),
    ("bv_decide", "by bv_decide", "`bv_decide` evaluates code"),
    ("evalExpr", "by exact evalExpr", "evalExpr"),
    # panics
    ("panic!", 'by exact panic! "x"', "`panic!` panics"),
    ("unreachable!", "by exact unreachable!", "`unreachable!` panics"),
    ("assert!", "by exact (assert! true; trivial)", "`assert!` panics"),
    ("panic_fn", "by exact panic (toString 1)", "`panic` panics"),
    ("panicWithPos", "by exact panicWithPos m 1 2 m", "panics"),
    ("other_bang", "by simp!", "`simp!` is not allowed"),
    # strings and characters: no text of the proof's choosing may reach a message
    ("string", 'by\n  have h : "a" = "a" := rfl\n  trivial', "string literal"),
    ("string_in_show", 'by simp [show "x".length = 1 from rfl]', "string literal"),
    ("escape_in_string", 'by\n  have : "\\n#eval 1" ≠ "" := by decide\n  trivial', "string literal"),
    ("char", "by\n  have : 'a' = 'a' := rfl\n  trivial", "character literal"),
    ("char_escape", "by\n  have : '\\n' ≠ 'a' := by decide\n  trivial", "character literal"),
    ("fail_message", 'by first | fail "forged error" | simp', "string literal"),
    # core keywords that are not on the list
    ("do", "by exact (do return 1 : Id Nat) = 1", "`do` is not on the proof allow-list"),
    ("return", "by exact return", "`return`"),
    ("decreasing_by", "by simp\ndecreasing_by simp", "`decreasing_by` is not on the proof allow-list"),
    ("termination_by", "by simp\ntermination_by x", "`termination_by`"),
    # the guard's rules hold in both modes
    ("sorry_inside", "by\n  simp\n  sorry", "sorry"),
    ("admit", "by admit", "admit"),
    ("sorry_whole", "sorry", "sorry"),
    ("by_sorry_whole", "by sorry", "sorry"),
    ("second_declaration", "trivial\ntheorem u : False := sorry", "second declaration"),
    ("attribute", "by\n  attribute [simp] foo\n  simp", "attribute"),
    ("ofReduceBool", "Lean.ofReduceBool _ _ rfl", "ofReduceBool"),
    ("starts_with_assign", ":= by simp", "starts with `:=`"),
    ("empty", "  -- nothing", "empty proof"),
    ("polyrith", "by polyrith", "polyrith"),
]


@pytest.mark.parametrize("proof,match", [(p, m) for _, p, m in DENIED], ids=[i for i, _, _ in DENIED])
def test_denied_in_default_mode(proof, match):
    e = refused(proof, match)
    assert e.line is not None and e.offset is not None and 0 <= e.offset <= len(proof)
    assert str(e).endswith(f"(at line {e.line}, column {e.column})")


def test_the_reason_says_where():
    e = refused("by\n  intro x\n  simp at x ⊢\n  trace_state", "trace_state")
    assert (e.line, e.column) == (4, 3)
    assert "--trust-tactics" in e.reason
    e = refused("by\n  have : 1 = 1 := rfl\n  exact (\"x\", 1).2", "string literal")
    assert (e.line, e.column) == (3, 10)


def test_modulo_with_spaces_is_fine_glued_is_not():
    assert check_proof("by\n  have : n % 2 = 0 ∨ n % 2 = 1 := by omega\n  omega").startswith("by")
    refused("by\n  have : n%2 = 0 := h\n  omega", "`n%`")


# -- default mode: what a proof may do ----------------------------------------------------------------------

ALLOWED = [
    "by decide", "rfl", "by norm_num", "by simp", "by omega", "by linarith", "by positivity", "by ring_nf",
    "by field_simp", "by aesop", "by tauto", "by decide +kernel", "trivial", "by exact_mod_cast h", "h.symm",
    "by\n  nlinarith [sq_nonneg (x - 2), sq_nonneg (x + 2), h₀, h₁]",
    "by\n  intro x hx\n  rcases hx with ⟨y, rfl⟩\n  simp",
    "by first | decide | omega | simp",
    "by constructor <;> norm_num",
    "by\n  constructor\n  · exact hp\n  · exact hq",
    "by\n  constructor\n  . exact hp\n  . exact hq",
    "by\n  calc a = b := by ring\n    _ = c := by simp [h]",
    "calc a = b := h₁\n  _ = c := h₂",
    "⟨hp, hq⟩", "⟨_, by simp⟩", "⟨fun h => h.1, fun h => ⟨h, trivial⟩⟩",
    "fun x => by simp", "fun ⟨x, hx⟩ => hx", "fun x ↦ x.2",
    "by simp [foo, bar] at h ⊢", "by simp only [Nat.add_comm] at *", "by simp_all", "by simp_arith",
    "by\n  induction n with\n  | zero => simp\n  | succ n ih => omega",
    "by\n  cases h with\n  | inl h => left; exact h\n  | inr h => right; exact h",
    "by\n  have h₂ : x = 3 := by linarith\n  subst h₂\n  norm_num",
    "by\n  obtain ⟨k, hk⟩ := h\n  exact ⟨k + 1, by omega⟩",
    "by\n  by_contra! h\n  push_neg at h\n  linarith",
    "by\n  by_cases h : x ≤ 3\n  · omega\n  · push_neg at h; nlinarith",
    "by\n  set y := x + 1 with hy\n  omega",
    "by\n  interval_cases x <;> simp_all",
    "by\n  rw [show (4 : ℝ) = 2 * 2 by norm_num]\n  ring",
    "by\n  refine ⟨?_, ?_⟩\n  all_goals norm_num",
    "by\n  norm_num [Nat.pow_succ] at h ⊢\n  omega",
    "by\n  set_option maxRecDepth 2000 in\n  decide",
    "by\n  apply mul_pos <;> positivity",
    "by\n  unfold f\n  simp",
    "by\n  ext x\n  simp",
    "by\n  use 3\n  norm_num",
    "by\n  conv_lhs => rw [h]",
    "by\n  linear_combination 2 * h",
    "by\n  contrapose! h\n  linarith",
    "by\n  exacts [rfl, rfl]",
    "by\n  suffices h : x = 1 by simp [h]\n  omega",
    "by\n  show x = 1\n  omega",
    "by\n  repeat rw [h]",
    "by\n  any_goals simp\n  all_goals omega",
    "by\n  next => simp",
    "by\n  try simp\n  omega",
    "by\n  specialize h 3\n  exact h",
    "by\n  exfalso\n  exact absurd h (by decide)",
    "by\n  rintro ⟨x, y⟩\n  exact ⟨y, x⟩",
    "by\n  intros\n  trivial",
    "by\n  induction' n with n ih\n  · rfl\n  · simp [ih]",
    "by\n  cases' h with x hx\n  exact hx",
    "by\n  zify at h ⊢\n  push_cast\n  linarith",
    "by\n  gcongr",
    "by\n  fin_cases i <;> decide",
    "by\n  funext x\n  ring",
    "by\n  symm\n  exact h",
    "by\n  rename_i h'\n  exact h'",
    "by\n  clear h\n  simp",
    "by\n  split_ifs <;> omega",
    "absurd h (by decide)", "h ▸ rfl", "Or.inl rfl", "Nat.le_of_lt_succ (by omega)",
    "match h with\n  | ⟨x, hx⟩ => hx",
    "if h : x = 0 then by simp [h] else by omega",
    "by\n  have := h π\n  positivity",
    "by\n  exact (Finset.sum_range_succ _ _).trans (by simp)",
    "by\n  letI := Classical.propDecidable\n  haveI : Nonempty ℕ := ⟨0⟩\n  exact this.some_spec",
    "by my_lemma_name h",  # a lemma name, not a tactic: fine here; the keyword probe asks Lean about `my_lemma_name`
]


@pytest.mark.parametrize("proof", ALLOWED)
def test_allowed_in_default_mode(proof):
    out = check_proof(proof)
    assert out == parse_proof(proof)  # the canonical proof text
    assert check_proof(out) == out  # canonical text is a fixed point
    decl = parse_declaration(SAFE)
    rendered = decl.render("rpP_0123456789ab_0", out)
    assert parse_declaration(rendered).proof == out


def test_canonical_text_drops_comments_and_keeps_the_layout():
    proof = "by -- start\n    constructor /- both -/\n    · exact hp -- left\n    · exact hq"
    assert check_proof(proof) == "by\n  constructor\n  · exact hp\n  · exact hq"
    assert check_proof("  by constructor\n     <;> rfl") == "  by constructor\n     <;> rfl"


# -- trust mode -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("proof", [
    "by exact?", "by aesop?", "by native_decide", 'by trace "hello"', "by decide +native",
    'by\n  have : "a" ≠ "b" := by decide\n  trivial', "by exact #[1].size_pos", "by simp says simp only [h]",
])
def test_trust_mode_keeps_only_the_lexical_rules(proof):
    assert check_proof(proof, trust_tactics=True) == parse_proof(proof)
    with pytest.raises(GuardError):
        check_proof(proof)


def test_unknown_tactics_are_for_the_keyword_probe():
    # not on the list, but the policy cannot know whether the header makes it a tactic (then it is rejected
    # by the verifier's keyword probe) or a lemma name (then it is fine): it is among the words to ask about
    assert check_proof("by my_custom_tactic") == "by my_custom_tactic"
    assert proof_words("by my_custom_tactic") == {"my_custom_tactic"}


@pytest.mark.parametrize("proof,match", [
    ("by simp\n#eval 1", "#eval"), ('#eval IO.println "x"', "#eval"), ("by\n  run_tac pure ()", "run_tac"),
    ("trivial\ntheorem u : False := sorry", "second declaration"), ("by exact sorry", "sorry"), ("sorry", "sorry"),
    ("by simp\nmacro_rules | _ => pure default", "macro_rules"), ("by exact @[simp] foo", "attributes"),
    ('by exact "\\q"', "invalid escape"), ("by exact unsafeIO x", "unsafeIO"), ("by polyrith", "polyrith"),
])
def test_trust_mode_still_rejects_commands(proof, match):
    with pytest.raises(GuardError, match=match):
        check_proof(proof, trust_tactics=True)


# -- statements -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "theorem step : (25 : Int) + 3 = 28", "theorem step : (8 : Int) ≠ 0 ∧ (12 : Int) * 8 = 96", SAFE,
    "theorem step : (0 : Nat) = 0 ∧ (3 : Nat) ∈ [1, 2, 3, 4, 5, 6, 7, 8, 9] ∧ (3 : Nat) ∉ ([1, 2, 3] : List Nat)",
    "theorem t (x : ℝ) (h : 0 < x) : Real.sqrt (x ^ 2) = x ∧ π > 3 ∧ x % 2 = x % 2",
    "theorem t {α : Type} [inst : Inhabited α] [DecidableEq α] (x : α) : x = x",
])
def test_statements_allowed(text):
    d = check_statement(text)
    assert d == parse_declaration(text) and check_statement(d) is d


@pytest.mark.parametrize("text,match,at", [
    ("theorem t (h : (by exact True)) : True", "`by` block in the statement", "by"),
    ("theorem t : (by exact 1) = 1", "`by` block", "by"),
    ('theorem t : "a" = "a"', "string literal", '"'),
    ("theorem t : 'a' = 'a'", "character literal", "'"),
    ("theorem t : #[1].size = 1", "`#`", "#"),
    ("theorem t : (do return 1 : Id Nat) = 1", "`do` block", "do"),
    ("theorem t : (eval% 1) = 1", "`eval%`", "eval"),
    ("theorem t (x : ℕ) : x%2 = 0", "`x%`", "x%"),
    ("theorem t : (include_str_x) = 1", "reads files", "include"),
    ("theorem t : exact? = 1", "prints suggestions", "exact"),
])
def test_statements_refused_in_default_mode(text, match, at):
    with pytest.raises(GuardError) as info:
        check_statement(text)
    # positions refer to the statement as Declaration.statement() writes it
    column = parse_declaration(text).statement().index(at) + 1
    assert match in info.value.reason and (info.value.line, info.value.column) == (1, column), info.value
    check_statement(text, trust_tactics=True)  # the lexical rules alone accept them


def test_statement_checks_need_the_guard_too():
    with pytest.raises(GuardError, match="#eval"):
        check_statement("theorem t : True := trivial\n#eval 1", trust_tactics=True)


# -- the words the keyword probe is asked about ------------------------------------------------------------

@pytest.mark.parametrize("text,words", [
    ("by decide", set()),
    ("by\n  intro x\n  simp at x ⊢\n  omega", {"x"}),
    ("by nlinarith [sq_nonneg (a - b), h₀, Nat.succ_le, «foo bar»]", {"sq_nonneg", "a", "b", "h₀"}),
    ("by exact Nat.succ_le_of_lt h", {"h"}),        # dotted names are never keywords
    ("by my_tactic", {"my_tactic"}),
    ("by first | decide | my_tac <;> simp", {"my_tac"}),
    ("theorem step : (25 : Int) + 3 = 28", {"step", "Int"}),   # `theorem` is a core keyword
    ("theorem t (x : ℝ) (h : 0 < x) : π < x ∨ x ≤ π", {"t", "x", "h"}),  # ℝ and π: allow-listed notations
    ("fun ⟨_, hx⟩ => hx", {"hx"}),
    ("by\n  calc a = b := by ring\n    _ = c := h", {"a", "b", "c", "h"}),
    ("by decide +kernel", {"kernel"}),
])
def test_proof_words(text, words):
    assert proof_words(text) == words


def test_proof_words_rejects_what_does_not_lex():
    with pytest.raises(GuardError, match="unterminated string") as info:
        proof_words('by exact "abc')
    assert info.value.line == 1


def test_allow_list_tables():
    assert ALLOWED_WORDS == ALLOWED_TACTICS | ALLOWED_TERM_WORDS | ALLOWED_NOTATIONS
    assert {"decide", "rfl", "norm_num", "simp", "simp_all", "simp_arith", "omega", "linarith", "nlinarith",
            "positivity", "ring", "ring_nf", "field_simp", "exact", "apply", "refine", "refine'", "intro", "intros",
            "rintro", "constructor", "use", "exists", "existsi", "exact_mod_cast", "push_cast", "norm_cast", "zify",
            "qify", "push_neg", "cases", "rcases", "obtain", "induction", "rw", "rewrite", "rwa", "nth_rewrite",
            "subst", "contradiction", "exfalso", "trivial", "assumption", "by_contra", "by_cases", "split", "left",
            "right", "specialize", "unfold", "first", "try", "repeat", "all_goals", "any_goals", "focus", "case",
            "next", "skip", "done", "tauto", "gcongr", "interval_cases", "fin_cases", "symm", "trans", "congr",
            "ext", "funext", "aesop", "clear", "rename_i", "set"} <= ALLOWED_TACTICS
    assert {"have", "show", "calc", "let", "fun", "match", "at", "with", "using", "only", "generalizing", "from",
            "then", "else", "if"} <= ALLOWED_TERM_WORDS
    never = {"trace", "trace_state", "dbg_trace", "logInfo", "show_term", "says", "sleep", "include_str",
             "native_decide", "run_tac", "by_elab", "panic!", "unreachable!", "assert!", "polyrith", "do", "native"}
    assert not never & ALLOWED_WORDS
    assert not any("?" in w for w in ALLOWED_WORDS)


# -- statements as one Prop term ------------------------------------------------------------------------------

AS_PI = [
    ("theorem step : (25 : Int) + 3 = 28", "(25 : Int) + 3 = 28"),
    (SAFE, "∀ (a x : ℝ) (h₀ : a * x + 3 = x - 5) (h₁ : x = 3), (a = (-3))"),
    ("theorem t {α : Type} [inst : Inhabited α] [DecidableEq α] ⦃x y : α⦄ (h : x = y) : y = x",
     "∀ {α : Type} [inst : Inhabited α] [DecidableEq α] ⦃x y : α⦄ (h : x = y), y = x"),
    ("theorem t [∀ n : Nat, Inhabited (Fin n)] (n : Nat) : ∀ m, m + n = n + m",
     "∀ [∀ n : Nat, Inhabited (Fin n)] (n : Nat), ∀ m, m + n = n + m"),
    ("theorem t (x : Nat) : let y := x; y = x", "∀ (x : Nat), let y := x; y = x"),
    ("set_option maxHeartbeats 1000 in\ntheorem t (x : Nat) : x = x", "∀ (x : Nat), x = x"),
]


@pytest.mark.parametrize("text,pi", AS_PI)
def test_as_pi_round_trips(text, pi):
    d = parse_declaration(text)
    assert d.as_pi() == pi
    again = parse_declaration(f"theorem s : {pi}")
    assert again.binders == () and again.conclusion == pi
    # the statement without a proof parses back to the same parts
    head = parse_declaration(d.head("rpS_0123456789ab_0"))
    assert (head.binders, head.conclusion, head.options, head.proof) == (d.binders, d.conclusion, d.options, None)


def test_as_pi_of_binders():
    d = parse_declaration("theorem t (a b : ℕ) {c : ℕ} [Add ℕ] : a + b = c")
    assert d.binders[2] == Binder((), "Add ℕ", "instance")
    assert d.as_pi() == "∀ (a b : ℕ) {c : ℕ} [Add ℕ], a + b = c"


def _run_lean(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    path = tmp_path / "Pi.lean"
    path.write_text(source)
    lean = shutil.which("lean")  # the tests that call this are marked `lean`
    return subprocess.run([lean, path.name], cwd=tmp_path, capture_output=True, text=True, timeout=120)


# statements with the binder forms every Lean 4 has (the early 2021 build lacks ⦃⦄ binders and `default`)
REAL = [
    ("theorem t (x y : Nat) (h : x = y) : y = x", "h.symm"),
    ("theorem t {α : Type} [inst : Inhabited α] [Inhabited α] (x : α) : x = x", "rfl"),
    ("theorem t {α : Type} [DecidableEq α] (a b : α) (h : a = b) : b = a", "h ▸ rfl"),
    ("theorem t [∀ n : Nat, Inhabited (Fin (n + 1))] (n : Nat) : ∀ m : Nat, m + n = n + m",
     "fun m => Nat.add_comm m n"),
    ("theorem t (x : Nat) : let y := x; y = x", "rfl"),
    ("theorem step : (25 : Int) + 3 = 28", "by decide"),
]


@pytest.mark.lean
@pytest.mark.parametrize("text,proof", REAL)
def test_as_pi_states_the_same_in_real_lean(tmp_path, text, proof):
    d = parse_declaration(text)
    source = (f"noncomputable def rpS_0 : Prop := {d.as_pi()}\n"
              f"{d.render('rpP_0', check_proof(proof))}\n"
              "example : rpS_0 := @rpP_0\n")
    r = _run_lean(tmp_path, source)
    assert r.returncode == 0 and "error" not in r.stdout + r.stderr, source + r.stdout + r.stderr


@pytest.mark.lean
def test_as_pi_of_another_statement_does_not_check_in_real_lean(tmp_path):
    ours = parse_declaration("theorem t (x : Nat) (h : x > 0) : x ≥ 1")
    theirs = parse_declaration("theorem t (x : Nat) (h : x > 0) : True")
    source = (f"noncomputable def rpS_0 : Prop := {ours.as_pi()}\n"
              f"{theirs.render('rpP_0', 'trivial')}\n"
              "example : rpS_0 := @rpP_0\n")
    r = _run_lean(tmp_path, source)
    assert r.returncode != 0 and "Pi.lean:3:" in r.stdout + r.stderr
