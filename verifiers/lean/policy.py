"""What a proof (and a statement) may contain: the allow-list on top of the guard's lexing rules.

The guard (:mod:`reasonpipe.verifiers.lean.guard`) makes sure a text is exactly what it looks like: one declaration, no
commands, no attributes, no forbidden names, strings and comments where Lean sees them. This module decides
what an untrusted proof may *do* once Lean elaborates it. Two modes:

- **default** (``trust_tactics=False``): besides the guard's rules, a proof may not

  * print: ``trace``, ``trace_state``, ``dbg_trace``, ``logInfo``, ``show_term``, ``says``, ``hint``,
    ``extract_goal``, ``observe``, ``rw_search``, ``library_search``, and every word with a ``?``
    (``exact?``, ``apply?``, ``simp?``, ``simp_all?``, ``aesop?``, ``rw?``...: they print suggestions);
  * sleep (``sleep``), read files (``include_str`` and every word containing it, ``readFile``,
    ``readBinFile``, ``FilePath``...), or evaluate code at elaboration time (``native_decide``, ``native``
    as in ``decide +native``, ``run_tac``, ``by_elab``, ``eval%`` and every ``word%`` elaborator, anything
    starting with ``#``: commands, ``#[..]``, ``#s``);
  * panic: ``panic!``, ``unreachable!``, ``assert!``, ``panic``..., ``dbgTrace``; no other ``word!`` than the
    allow-listed tactic variants (``by_contra!``, ``use!``...);
  * hold a string or char literal at all (so no escape, and no text of the proof's choosing, can reach a
    message), or a core keyword that is not on the allow-list (``do``, ``return``, ``for``, ``mut``,
    ``termination_by``, ``decreasing_by``...);

  and every word it uses that the configured header makes a reserved keyword must be on :data:`ALLOWED_WORDS`.
  The policy cannot know the header's keywords itself: :func:`proof_words` lists the words it must ask about
  (undotted, not allow-listed, not a core keyword), and the verifier's keyword probe asks Lean; a word that
  turns out to be a reserved token rejects the step, so no command keyword of any library gets through.
  What this does *not* catch: Lean does not reserve most tactic names (``decide`` is also a function), so a
  tactic of the header's libraries that is neither on the deny-lists above nor a reserved token passes the
  policy, like a lemma name. That limits what the allow-list promises (it is a second line: what a proof prints
  is never read as a verdict, see :mod:`reasonpipe.verifiers.lean.backends`), not what a verdict means.
  A statement (:func:`check_statement`) follows the same rules and, besides, may not hold a ``by`` or ``do``
  block.
- **trust** (``trust_tactics=True``, ``--trust-tactics``, for users who run their own provers on their own
  machines): only the guard's lexical rules (no commands, no ``#eval``, no attributes, no forbidden names...).

``sorry``: a proof that is exactly ``sorry`` or ``by sorry`` means "no proof yet" to the formalizer, which
turns it into ``proof=None`` (the verifier's closing tactics then try); :func:`check_proof` rejects it (a
sorry proof can never count), and ``sorry``/``admit``/``stop`` inside a proof are rejected in both modes
(Lean's ``#print axioms`` would list ``sorryAx`` anyway).

The allow-list (:data:`ALLOWED_TACTICS`, :data:`ALLOWED_TERM_WORDS`, :data:`ALLOWED_NOTATIONS`) holds what our
formalizations and common prover output (DeepSeek-Prover, Kimina, Goedel: miniF2F-style Mathlib proofs) use and
nothing that prints, sleeps, reads files, runs code or reaches the network: closing automation that only
builds proof terms (``decide``, ``simp``, ``omega``, ``norm_num``, ``linarith``, ``ring``, ``aesop``...),
structural tactics (``intro``, ``cases``, ``rcases``, ``obtain``, ``induction``, ``constructor``, ``use``...),
rewriting (``rw``, ``simp only``, ``nth_rewrite``, ``conv``...), goal management (``first``, ``try``,
``all_goals``, ``case``, ``next``, ``·``, ``<;>``...), term keywords (``fun``, ``match``, ``let``, ``have``,
``show``, ``calc``, ``if``...) and Mathlib's letter-like notations (``ℝ``, ``π``, ``𝓝``...). Left out on
purpose: ``polyrith`` (a web service), ``bv_decide`` and ``native_decide`` (compiled evaluation), the
``?`` tactics and ``says`` (print), ``conv?``, ``unfold?``, ``decreasing_by``/``termination_by`` (not needed
for a theorem), ``do`` (programs), and aesop's clause words (``(add safe ...)``).

Example::

    python -c "from reasonpipe.verifiers.lean.policy import check_proof as c; print(c('by\\n  intro x\\n  simp [foo] at x ⊢'))"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from types import MappingProxyType

from reasonpipe.verifiers.lean.guard import (KEYWORDS, TRIVIA, Declaration, GuardError, Token, _lex, parse_declaration,
                                  parse_proof, tokenize)

# -- the allow-list ----------------------------------------------------------------------------------------

ALLOWED_TACTICS: frozenset[str] = frozenset({
    # closing automation: builds a proof term, prints nothing
    "decide", "rfl", "ac_rfl", "eq_refl", "trivial", "assumption", "contradiction", "exfalso", "tauto",
    "norm_num", "norm_num1", "simp", "simp_all", "simp_arith", "dsimp", "simpa", "simp_rw", "omega", "linarith",
    "linarith!", "nlinarith", "nlinarith!", "positivity", "bound", "ring", "ring1", "ring_nf", "field_simp",
    "abel", "abel_nf", "group", "noncomm_ring", "linear_combination", "cancel_denoms", "aesop", "gcongr",
    "interval_cases", "fin_cases", "infer_instance", "continuity", "fun_prop", "norm_cast",
    "push_cast", "exact_mod_cast", "apply_mod_cast", "assumption_mod_cast", "rw_mod_cast", "mod_cast", "zify",
    "qify", "rify", "lift", "push_neg", "contrapose", "contrapose!", "by_contra", "by_contra!", "by_cases",
    "absurd", "nofun", "nomatch",
    # structure
    "exact", "exacts", "apply", "refine", "refine'", "intro", "intros", "rintro", "constructor", "use", "use!",
    "exists", "existsi", "left", "right", "cases", "cases'", "rcases", "obtain", "induction", "induction'",
    "split", "split_ifs", "split_ands", "specialize", "generalize", "revert", "clear", "rename_i", "rename",
    "set", "replace", "choose", "subst", "subst_vars", "symm", "trans", "congr", "congr!", "ext", "funext",
    "apply_fun", "change", "unfold", "unfold_let", "classical", "nontriviality",
    # rewriting
    "rw", "rewrite", "rwa", "erw", "nth_rewrite", "nth_rw", "conv", "conv_lhs", "conv_rhs", "lhs", "rhs", "arg",
    "enter",
    # goal management
    "first", "try", "repeat", "repeat'", "iterate", "all_goals", "any_goals", "focus", "case", "case'", "next",
    "skip", "done", "swap", "rotate_left", "rotate_right", "pick_goal", "on_goal",
})
ALLOWED_TERM_WORDS: frozenset[str] = frozenset({
    "fun", "let", "have", "haveI", "letI", "show", "from", "suffices", "calc", "match", "if", "then", "else", "by",
    "at", "with", "using", "only", "generalizing", "in", "this", "Type", "Sort", "Prop", "set_option", "_",
})
# Mathlib's letter-like notations (each is one token when its namespace is open): numbers, π, totient,
# arithmetic functions, neighbourhoods, filters, expectation and probability, aleph-null
ALLOWED_NOTATIONS: frozenset[str] = frozenset({
    "ℕ", "ℤ", "ℚ", "ℝ", "ℂ", "ℍ", "π", "φ", "σ", "μ", "ω", "Ω", "ζ", "Λ", "𝓝", "𝓟", "𝔼", "ℙ", "ℵ₀",
})
ALLOWED_WORDS: frozenset[str] = ALLOWED_TACTICS | ALLOWED_TERM_WORDS | ALLOWED_NOTATIONS

# -- what is never allowed in the default mode --------------------------------------------------------------

_PRINTS = "prints a message"
_SLEEPS = "sleeps"
_READS = "reads files"
_EVALUATES = "evaluates code at elaboration time"
_PANICS = "panics or prints when evaluated"

DENIED_WORDS: Mapping[str, str] = MappingProxyType({
    **{w: _PRINTS for w in ("trace", "trace_state", "dbg_trace", "logInfo", "logWarning", "logError", "show_term",
                            "says", "hint", "extract_goal", "observe", "rw_search", "library_search", "print",
                            "println", "eprint", "eprintln", "dbgTrace", "dbgTraceIfShared")},
    "sleep": _SLEEPS,
    **{w: _EVALUATES for w in ("native_decide", "native", "run_tac", "run_cmd", "run_elab", "run_meta", "by_elab",
                               "bv_decide", "evalExpr", "evalConst", "eval_expr")},
    **{w: _PANICS for w in ("panic", "panic!", "unreachable!", "assert!", "panicWithPos", "panicWithPosWithDecl",
                            "panicCore")},
})
# a dotted or undotted name with one of these in a component
_DENIED_PARTS = (("include_str", _READS), ("include_bytes", _READS), ("readFile", _READS),
                 ("readBinFile", _READS), ("readToEnd", _READS), ("FilePath", _READS), ("sleep", _SLEEPS),
                 ("panic", _PANICS), ("dbgTrace", _PRINTS))
_CORE_KEYWORDS = KEYWORDS  # always tokens: either allowed above, or rejected here / by the guard


def _word_problem(word: str) -> str | None:
    """Why the default mode refuses the identifier or keyword ``word``, or None."""
    return _word_problem_cached(word) if len(word) <= 64 else _word_problem_cached.__wrapped__(word)


@lru_cache(maxsize=16384)
def _word_problem_cached(word: str) -> str | None:
    if word.startswith("«"):
        return None  # a quoted name is never a keyword (the guard checks its parts)
    if word in ALLOWED_WORDS:
        return None
    why = DENIED_WORDS.get(word)
    if why:
        return f"`{word}` {why}"
    if "?" in word:
        return f"`{word}` prints suggestions (every `?` tactic does)"
    for comp in word.split("."):
        for part, why in _DENIED_PARTS:
            if part in comp:
                return f"`{word}` {why}"
        if comp in DENIED_WORDS:
            return f"`{word}` {DENIED_WORDS[comp]}"
    if word.endswith("!"):
        return f"`{word}` is not allowed (`panic!`/`assert!`-style macros; allowed: " \
               f"{', '.join(sorted(w for w in ALLOWED_WORDS if w.endswith('!')))})"
    if word in _CORE_KEYWORDS:
        return f"`{word}` is not on the proof allow-list"
    return None


def _default_rules(toks: Sequence[Token], where: str, *, statement: bool) -> None:
    """The default mode's token rules (``toks``: a guarded text's tokens). GuardError with the position."""
    sig = [t for t in toks if t.kind not in TRIVIA]
    for i, t in enumerate(sig):
        if t.kind in ("string", "char"):
            what = "string" if t.kind == "string" else "character"
            raise GuardError(f"{what} literal in {where}: strings and characters are not allowed (no text of "
                             "the proof's choosing may reach Lean's messages)", offset=t.start)
        if t.kind == "symbol" and t.text == "#":
            raise GuardError(f"`#` in {where} (commands, `#[...]`, `#s`) is not allowed", offset=t.start)
        if t.kind not in ("ident", "keyword"):
            continue
        nxt = sig[i + 1] if i + 1 < len(sig) else None
        if nxt is not None and nxt.text.startswith("%") and nxt.start == t.end:
            raise GuardError(f"`{t.text}%` in {where}: `word%` elaborators (eval%, ...) evaluate code at "
                             "elaboration time (write `a % b` with spaces for the remainder)", offset=t.start)
        if statement and t.text in ("by", "do"):
            raise GuardError(f"a `{t.text}` block in {where}: statements are terms, without tactics or programs",
                             offset=t.start)
        why = _word_problem(t.text)
        if why:
            raise GuardError(f"{why} (in {where}; --trust-tactics lifts the allow-list)", offset=t.start)


def check_proof(proof: str, *, trust_tactics: bool = False) -> str:
    """The canonical text of ``proof`` (a term or a ``by`` block, what follows ``:=``) if the policy allows it;
    else GuardError saying what and where (line and column in ``proof``).

    Both modes: the guard's lexing rules (:func:`reasonpipe.verifiers.lean.guard.parse_proof`); a whole ``sorry`` /
    ``by sorry`` is rejected (it is no proof). Default mode: also the allow-list rules of the module docstring.
    The result goes after ``:=`` in :meth:`Declaration.render`.
    """
    return _check_proof(proof, trust_tactics)


@lru_cache(maxsize=1024)
def _check_proof(proof: str, trust_tactics: bool) -> str:  # the same closing tactics come again and again
    canonical = parse_proof(proof, allow_sorry=False)
    assert canonical is not None
    if not trust_tactics:
        try:
            _default_rules(tokenize(proof), "the proof", statement=False)
        except GuardError as e:
            raise GuardError(e.reason, offset=e.offset, text=proof) from None
    return canonical


def check_statement(decl: Declaration | str, *, trust_tactics: bool = False) -> Declaration:
    """The parsed statement if the policy allows it (a text is parsed first); GuardError otherwise.

    Default mode: the binders' types and the conclusion follow the proof rules and hold no ``by``/``do``
    block (positions refer to :meth:`Declaration.statement`'s text). Trust mode: the guard's rules only.
    """
    if isinstance(decl, str):
        decl = parse_declaration(decl)
    if not trust_tactics:
        text = decl.statement()
        head = decl.head("step")  # usually the formalizer's own text, so already lexed once (the lexer caches)
        skip = len(head) - len(text)
        try:
            _default_rules([t for t in _lex(head) if t.start >= skip], "the statement", statement=True)
        except GuardError as e:
            offset = None if e.offset is None else e.offset - skip
            raise GuardError(e.reason, offset=offset, text=text) from None
    return decl


def proof_words(text: str) -> set[str]:
    """The words of ``text`` (a proof or a statement) to ask Lean about: identifier-like, undotted, unquoted,
    neither on :data:`ALLOWED_WORDS` nor a core keyword. A dotted name is never a keyword, so it is left out.
    The verifier's keyword probe rejects the step when the header makes any of them a keyword."""
    try:
        toks = _lex(text)
    except GuardError as e:
        raise GuardError(e.reason, offset=e.offset, text=text) from None
    out: set[str] = set()
    for t in toks:
        if t.kind in ("ident", "keyword"):
            w = t.text
            if "." not in w and not w.startswith("«") and w not in ALLOWED_WORDS and w not in _CORE_KEYWORDS:
                out.add(w)
    return out
