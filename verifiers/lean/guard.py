"""The statement guard: show that untrusted Lean 4 text is exactly one theorem and nothing else.

A Safe-style verifier (Liu et al. 2025) states each reasoning step as a Lean 4 theorem. Statements and
proofs come from untrusted sources (a model, a user's file), and Lean runs whatever commands a file holds:
``#eval`` does IO inside the checker (the recorded ``injection_newline`` case wrote a file), an ``axiom``
makes anything check, ``sorry`` only warns. So before any text reaches Lean, :func:`parse_declaration`
lexes it the way Lean 4 does and accepts only::

    [set_option NAME VALUE in]*  [/-- doc -/]  (theorem | lemma) NAME | example   BINDERS : TYPE  [:= PROOF]

What it does:

- a lexer that follows Lean 4's own (``Lean.Parser.Basic``): nested ``/- -/`` comments (including Lean's
  quirk that the character right after ``/-`` is skipped, so ``/-/- -/`` is one whole comment), doc comments,
  strings and char literals with exactly Lean's escapes, interpolated and raw strings, ``«»`` identifiers,
  numbers, ``#``-commands. Wherever Lean's lexer stops with an error the guard stops too: after a parse
  error Lean carries on *from the error's position*, so a lexical error inside a string would let Lean read
  the rest of that "string" as commands;
- rejected anywhere, by token (so ``-- #eval`` in a comment or ``"#eval"`` in a string is harmless): every
  ``#``-command; every command keyword of Lean, Batteries and Mathlib that we know of (a second ``theorem``,
  ``def``, ``axiom``, ``macro``, ``open``, ``import``, ``alias``, ...: after a parse error Lean skips to the
  next command keyword and runs that command, so none may appear even inside a proof); modifiers (``unsafe``,
  ``private``, ``noncomputable``, ``local``, ...); attributes ``@[...]``; backquoted names and syntax
  quotations; ``set_option`` outside :data:`ALLOWED_OPTIONS` or without ``in``; :data:`FORBIDDEN_IDENTIFIERS`
  (as a whole name or as one component, after ``«»`` unquoting) and every name in the ``Lean`` namespace;
  ``sorry``, ``admit`` and ``stop`` except as the whole proof;
- raw strings, interpolated strings, any ``{`` in a string (Lean reads some plain strings as interpolated,
  e.g. after ``throwError``), strings spanning lines, ``«»`` names that are not plain identifiers, and a
  string, char, comment or ``«`` right after a symbol (a library token such as Mathlib's ``⁻¹'`` could
  swallow the quote, and Lean would read as code what the guard took for a string);
- characters: only an allow-list for Lean mathematics (ASCII; Greek without the letters that look Latin;
  sub/superscripts; ℕ ℤ ℚ ℝ ℂ and the letterlike block; arrows; mathematical operators and brackets;
  script, double-struck and fraktur letters), checked over the whole text including comments and strings;
  no bidi controls, zero-width characters, non-ASCII spaces, full-width forms, Cyrillic, Armenian or Cherokee;
  the text must be NFC; at most :data:`MAX_TEXT_CHARS` characters and :data:`MAX_BRACKET_DEPTH` nested brackets.

The statement's parts (binders, type) are what Lean reads, or the text is rejected: the type ends at the
first top-level ``:=`` that no ``let``/``have``/``haveI``/``letI``/``let_fun`` of the type claims; a binder
form the guard does not parse (``let_delayed``, ``let_tmp``, ``let_mvar%``, ``let_expr``, ``have'``, a
``let`` with ``|`` alternatives), a ``by``/``do``/``calc`` block at the top level of the type, a line break
after a layout-sensitive word or an inner ``:=`` in the statement (the parts are flattened to one line), a
binder with a default value, pattern or missing type: all GuardError, never a guess.

:meth:`Declaration.render` re-emits a clean ``theorem NAME binders : type := proof`` from the parsed parts
only (comments gone, the tactic layout kept) and runs the guard over its own output, so what reaches Lean is
always something the guard accepted. Send ``render()``'s output to Lean, never the original text.
:meth:`Declaration.as_pi` gives the statement as one Prop term (``∀ binders, type``) for a trusted
``def S : Prop := ...``; :meth:`Declaration.head` the statement without a proof. :func:`parse_proof` guards a
proof on its own (what follows ``:=``) and returns its canonical text; :mod:`reasonpipe.verifiers.lean.policy` adds the
allow-list of what a proof may do.

What it does NOT do:

- it does not parse Lean's term or tactic grammar: a proof or type that is not valid Lean passes the guard and
  fails in Lean (that is Lean's error to report; the lexing rules above are what keep the error from exposing
  hidden code);
- it knows a fixed set of tokens: a command keyword that an imported library declares and that is not in
  :data:`COMMAND_KEYWORDS` is not recognised (keep the header to known libraries), and library notations
  that the rules above have to refuse are rejected: Mathlib's ``f '' s``, ``f ⁻¹' s``, ``∑' i, f i`` and
  ``#s`` for a cardinality (write ``Set.image``, ``Set.preimage``, ``tsum``, ``Finset.card``);
- ``native_decide`` is allowed lexically; its axiom ``Lean.ofReduceBool`` is caught after the run by
  ``#print axioms``, which the verifier checks for every declaration (as it does ``sorryAx``);
- :func:`vacuity` is syntactic only (``True``, a hypothesis restated, ``False`` or a false numeral fact as a
  hypothesis, ``p → p``, binders over ``Empty``/``PEmpty``/``Fin 0``, instances that cannot exist such as
  ``[Inhabited Empty]``); contradictory hypotheses in general are checked with Lean by the verifier
  (it tries to prove ``False`` from them);
- equation-compiler proofs (``theorem f : T | pat => ...``) are not recognised as proofs.

Example::

    python -c "from reasonpipe.verifiers.lean.guard import parse_declaration as p; print(p('theorem t : (2:Int)+2=4 := by decide').render('step'))"
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

MAX_TEXT_CHARS = 20_000
MAX_BRACKET_DEPTH = 200

TRIVIA = frozenset({"ws", "comment"})  # tokens that are not code (docstrings are code: Lean parses them)


class GuardError(ValueError):
    """Why a text was rejected; ``offset`` is a character offset into the text, ``line``/``column`` 1-based."""

    def __init__(self, reason: str, *, offset: int | None = None, text: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset
        self.line: int | None = None
        self.column: int | None = None
        if offset is not None and text is not None:
            before = text[:offset]
            self.line = before.count("\n") + 1
            self.column = offset - (before.rfind("\n") + 1) + 1

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.reason} (at line {self.line}, column {self.column})"
        if self.offset is not None:
            return f"{self.reason} (at offset {self.offset})"
        return self.reason

    def __reduce__(self):  # keep offset and position across pickling (worker processes)
        return (_restore_guard_error, (self.reason, self.offset, self.line, self.column))


def _restore_guard_error(reason: str, offset: int | None, line: int | None, column: int | None) -> GuardError:
    e = GuardError(reason, offset=offset)
    e.line, e.column = line, column
    return e


# -- tokens -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    """``kind``: ident keyword command number string char symbol comment docstring ws; ``text[start:end]``."""

    kind: str
    text: str
    start: int
    end: int


# Declaration keywords and every other command-starting word of Lean core, Batteries, Mathlib and Aesop that
# we know of. None of them is legal inside one step's statement or proof; after a parse error Lean skips to the
# next of them and runs it, so they are rejected anywhere, not only at the top level.
DECLARATION_KEYWORDS = frozenset({"theorem", "lemma", "example"})
COMMAND_KEYWORDS = DECLARATION_KEYWORDS | frozenset({
    "def", "abbrev", "instance", "axiom", "opaque", "constant", "structure", "class", "inductive", "coinductive",
    "mutual", "deriving", "where", "import", "prelude", "module", "open", "export", "namespace", "section", "end",
    "universe", "variable", "omit", "include", "attribute", "initialize", "builtin_initialize", "macro",
    "macro_rules", "syntax", "elab", "elab_rules", "notation", "notation3", "infix", "infixl", "infixr", "prefix",
    "postfix", "binder_predicate", "declare_syntax_cat", "run_cmd", "run_elab", "run_meta", "add_decl_doc",
    "init_quot", "seal", "unseal", "simproc", "dsimproc", "simproc_decl", "dsimproc_decl", "grind_pattern",
    "recommended_spelling", "unif_hint", "gen_injective_theorems", "alias", "irreducible_def", "proof_wanted",
    "assert_not_exists", "assert_not_imported", "library_note", "initialize_simps_projections",
    "mk_iff_of_inductive_prop", "compile_inductive", "compile_def", "suppress_compilation",
    "unsuppress_compilation", "recall", "whatsnew", "count_heartbeats", "add_aesop_rules", "erase_aesop_rules",
    "extend_docs", "lean_lib", "lean_exe", "test_extern", "set_premise_selector",
})
COMMAND_PREFIXES = ("register_", "declare_", "builtin_")  # register_option, declare_simp_like_tactic, ...
MODIFIERS = frozenset({"unsafe", "partial", "private", "protected", "public", "meta", "noncomputable", "nonrec",
                       "local", "scoped"})
SORRY_WORDS = frozenset({"sorry", "admit", "stop"})  # `stop tac` is `repeat sorry`
_TERM_KEYWORDS = frozenset({
    "fun", "let", "have", "show", "from", "by", "at", "with", "match", "if", "then", "else", "do", "in", "calc",
    "suffices", "obtain", "set_option", "Type", "Sort", "Prop", "nomatch", "nofun", "termination_by",
    "decreasing_by", "haveI", "letI", "let_fun", "run_tac", "by_elab", "s!", "m!", "f!", "return", "for", "mut",
})
KEYWORDS = COMMAND_KEYWORDS | MODIFIERS | SORRY_WORDS | _TERM_KEYWORDS
_INTERPOLATORS = frozenset({"s!", "m!", "f!"})

# Multi-character symbols, longest first (none contains "--" or "/-", which always start comments in Lean).
_SYMBOLS = ("...", "<;>", "<|>", "|>.", "<->", ">>=", "<$>", "<*>", ":=", "::", "=>", "->", "<-", "<|", "|>",
            "..", ">=", "<=", "!=", "==", "&&", "||", "++", "⁻¹")
_SYMBOLS_BY_FIRST = {c: tuple(s for s in _SYMBOLS if s[0] == c) for c in {s[0] for s in _SYMBOLS}}
_OPENERS = {"(": ")", "[": "]", "{": "}", "⟨": "⟩", "⦃": "⦄", "‹": "›", "⟦": "⟧", "⌊": "⌋", "⌈": "⌉",
            "⁅": "⁆", "⟪": "⟫"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}
_QUOTABLE = frozenset("\\\"'rnt")


def _is_letter_like(c: str) -> bool:  # Lean.isLetterLike (Init/Meta.lean)
    v = ord(c)
    return ((0x3B1 <= v <= 0x3C9 and v != 0x3BB) or (0x391 <= v <= 0x3A9 and v not in (0x3A0, 0x3A3))
            or 0x3CA <= v <= 0x3FB or 0x1F00 <= v <= 0x1FFE or 0x2100 <= v <= 0x214F or 0x1D49C <= v <= 0x1D59F)


def _is_subscript_alnum(c: str) -> bool:
    v = ord(c)
    return 0x2080 <= v <= 0x2089 or 0x2090 <= v <= 0x209C or 0x1D62 <= v <= 0x1D6A


def _is_id_first(c: str) -> bool:  # Char.isAlpha is ASCII-only in Lean
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or c == "_" or _is_letter_like(c)


def _is_id_rest(c: str) -> bool:
    return (_is_id_first(c) or "0" <= c <= "9" or c in "'!?" or _is_subscript_alnum(c))


def _is_hex(c: str) -> bool:
    return c in "0123456789abcdefABCDEF"


def tokenize(text: str) -> list[Token]:
    """Lean 4's tokens of ``text``, trivia included (the texts concatenate back to ``text``).

    Purely lexical: no character policy and no command checks (that is :func:`parse_declaration`). GuardError
    wherever Lean's lexer would fail: unterminated comments, strings, char literals and ``«`` escapes,
    invalid escapes, tabs and lone carriage returns outside comments and strings, ``0x`` without digits,
    a scientific literal without exponent digits, ``''``.
    """
    try:
        return list(_lex(text))
    except GuardError as e:
        raise GuardError(e.reason, offset=e.offset, text=text) from None


def _lex(text: str) -> tuple[Token, ...]:
    """:func:`tokenize` without positions in errors; short texts cached (a statement is lexed by the guard, the
    policy and the keyword screen in turn). Tokens are immutable; the result is shared."""
    if len(text) > _CACHED_CHARS:
        return tuple(_lex_text(text))
    return _lex_cached(text)


_CACHED_CHARS = 4000  # at most 256 cached texts of this size: a bounded memory cost


@lru_cache(maxsize=256)
def _lex_cached(text: str) -> tuple[Token, ...]:
    return tuple(_lex_text(text))


def _lex_text(text: str) -> list[Token]:
    out: list[Token] = []
    n = len(text)
    holes: list[int] = []  # open interpolation holes of s!"..{..}..": brace depth inside each
    i = 0

    def add(kind: str, j: int) -> None:
        out.append(Token(kind, text[i:j], i, j))

    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if holes and c == "}" and holes[-1] == 0:  # end of a hole: the interpolated string goes on
            holes.pop()
            j, more = _interp_chunk(text, i + 1, i)
            add("string", j)
            if more:
                holes.append(0)
        elif c in " \n\r\t":
            j = _PLAIN_WS.match(text, i).end()
            while j < n and text[j] in " \n\r\t":
                if text[j] == "\t":
                    raise GuardError("tab character outside comments and strings (Lean rejects tabs)", offset=j)
                if text[j] == "\r" and (j + 1 >= n or text[j + 1] != "\n"):
                    raise GuardError("isolated carriage return (Lean rejects it)", offset=j)
                j += 1
            add("ws", j)
        elif c == "-" and nxt == "-":
            j = text.find("\n", i)
            add("comment", n if j < 0 else j)
        elif c == "/" and nxt == "-":
            third = text[i + 2] if i + 2 < n else ""
            if third in ("-", "!"):  # /-- and /-! are doc comments: Lean scans their body from after the opener
                add("docstring", _finish_comment(text, i + 3, i))
            else:  # a plain comment: Lean skips the character after "/-" before it scans (so "/-/- -/" is closed)
                add("comment", _finish_comment(text, i + 3, i))
        elif c == '"':
            add("string", _string_end(text, i + 1, i))
        elif c == "'":
            if nxt == "'":
                raise GuardError("unexpected ''", offset=i)
            add("char", _char_end(text, i + 1, i))
        elif "0" <= c <= "9":
            add("number", _number_end(text, i))
        elif c == "#" and nxt and (_is_id_first(nxt) or nxt == "«"):
            add("command", _ident_end(text, i + 1))
        elif c == "r" and _raw_string_start(text, i + 1):
            add("string", _raw_string_end(text, i))
        elif _is_id_first(c) or c == "«":
            j = _ident_end(text, i)
            word = text[i:j]
            add("keyword" if word in KEYWORDS else "ident", j)
            if word in _INTERPOLATORS and j < n and text[j] == '"':
                i = j
                j, more = _interp_chunk(text, j + 1, j)
                add("string", j)
                if more:
                    holes.append(0)
        else:
            sym = next((s for s in _SYMBOLS_BY_FIRST.get(c, ()) if text.startswith(s, i)), c)
            j = i + len(sym)
            if holes and sym == "{":
                holes[-1] += 1
            elif holes and sym == "}":
                holes[-1] -= 1
            add("symbol", j)
        i = out[-1].end
    if holes:
        raise GuardError("unterminated interpolated string", offset=n)
    return out


def _finish_comment(text: str, j: int, start: int) -> int:
    """End of a block comment whose body starts at ``j`` (Lean's finishCommentBlock, nesting 1)."""
    n, depth = len(text), 1
    while j < n:
        c = text[j]
        if c == "-" and j + 1 < n and text[j + 1] == "/":
            depth -= 1
            j += 2
            if depth == 0:
                return j
        elif c == "/" and j + 1 < n and text[j + 1] == "-":
            depth += 1
            j += 2
        else:
            j += 1
    raise GuardError("unterminated comment", offset=start)


def _escape_end(text: str, j: int, quotable: frozenset[str] | str = _QUOTABLE) -> int:
    """``text[j]`` follows a backslash; the end of the escape (Lean's quotedCharCoreFn)."""
    c = text[j] if j < len(text) else ""
    if c and c in quotable:
        return j + 1
    digits = {"x": 2, "u": 4}.get(c)
    if digits and all(_is_hex(d) for d in text[j + 1:j + 1 + digits]) and j + 1 + digits <= len(text):
        return j + 1 + digits
    raise GuardError(f"invalid escape sequence \\{c}" if c else "unterminated escape sequence", offset=j - 1)


def _string_end(text: str, j: int, start: int) -> int:
    n = len(text)
    while j < n:
        c = text[j]
        if c == '"':
            return j + 1
        j = _escape_end(text, j + 1) if c == "\\" else j + 1
    raise GuardError("unterminated string literal", offset=start)


def _interp_chunk(text: str, j: int, start: int) -> tuple[int, bool]:
    """A literal part of ``s!"..."`` from ``j``: (its end, whether it ends in ``{`` that opens a hole)."""
    n = len(text)
    while j < n:
        c = text[j]
        if c == '"':
            return j + 1, False
        if c == "{":
            return j + 1, True
        j = _escape_end(text, j + 1, _QUOTABLE | {"{"}) if c == "\\" else j + 1
    raise GuardError("unterminated string literal", offset=start)


def _char_end(text: str, j: int, start: int) -> int:
    if j >= len(text):
        raise GuardError("unterminated character literal", offset=start)
    j = _escape_end(text, j + 1) if text[j] == "\\" else j + 1
    if j < len(text) and text[j] == "'":
        return j + 1
    raise GuardError("missing end of character literal", offset=start)


def _number_end(text: str, i: int) -> int:
    n = len(text)
    if text[i] == "0" and i + 1 < n and text[i + 1] in "bBoOxX":
        ok = {"b": "01", "o": "01234567", "x": "0123456789abcdefABCDEF"}[text[i + 1].lower()]
        j = i + 2
        while j < n and text[j] in ok:
            j += 1
        if j == i + 2:
            raise GuardError(f"missing digits after {text[i:i + 2]}", offset=i)
        return j
    j = i
    while j < n and "0" <= text[j] <= "9":
        j += 1
    if j + 1 < n and text[j] == "." and "0" <= text[j + 1] <= "9":
        j += 1
        while j < n and "0" <= text[j] <= "9":
            j += 1
    if j < n and text[j] in "eE":
        k = j + 1
        if k < n and text[k] in "+-":
            k += 1
        if not (k < n and "0" <= text[k] <= "9"):
            raise GuardError("missing exponent digits in scientific literal", offset=i)
        while k < n and "0" <= text[k] <= "9":
            k += 1
        j = k
    return j


_PLAIN_WS = re.compile(r"[ \n]*")
_ASCII_ID_REST = re.compile(r"[A-Za-z0-9_'!?]*")
_ASCII_PROBLEM = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # control characters (tab, LF, CR aside)


def _ident_end(text: str, i: int) -> int:
    """End of the (dotted, possibly «quoted») identifier starting at ``i`` (Lean's identFnAux)."""
    n = len(text)
    j = i
    while True:
        if text[j] == "«":
            close = text.find("»", j + 1)
            if close < 0:
                raise GuardError("unterminated identifier escape «", offset=j)
            j = close + 1
        else:
            j = _ASCII_ID_REST.match(text, j + 1).end()
            while j < n and _is_id_rest(text[j]):  # non-ASCII letter-likes and subscripts
                j = _ASCII_ID_REST.match(text, j + 1).end()
        if j + 1 < n and text[j] == "." and (_is_id_first(text[j + 1]) or text[j + 1] == "«"):
            j += 1
            continue
        return j


def _raw_string_start(text: str, j: int) -> bool:
    while j < len(text) and text[j] == "#":
        j += 1
    return j < len(text) and text[j] == '"'


def _raw_string_end(text: str, i: int) -> int:
    j = i + 1
    while text[j] == "#":
        j += 1
    hashes = j - i - 1
    close = text.find('"' + "#" * hashes, j + 1)
    if close < 0:
        raise GuardError("unterminated raw string literal", offset=i)
    return close + 1 + hashes


def _components(name: str) -> list[str]:
    """``a.«b c».d`` -> ["a", "b c", "d"] (dots inside «» do not split)."""
    parts, cur, quoted = [], [], False
    for c in name:
        if c == "«" and not quoted:
            quoted = True
        elif c == "»" and quoted:
            quoted = False
        elif c == "." and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return parts


def _plain(component: str) -> bool:
    return bool(component) and _is_id_first(component[0]) and all(_is_id_rest(c) for c in component[1:])


# -- characters -------------------------------------------------------------------------------------------

_GREEK_LOOKALIKES = {0x391: "A", 0x392: "B", 0x395: "E", 0x396: "Z", 0x397: "H", 0x399: "I", 0x39A: "K",
                     0x39C: "M", 0x39D: "N", 0x39F: "O", 0x3A1: "P", 0x3A4: "T", 0x3A5: "Y", 0x3A7: "X",
                     0x3BF: "o"}
_ASCII_LOOKALIKES = {0x2212: "-", 0x2215: "/", 0x2217: "*", 0x2236: ":", 0x00B5: "μ", 0x2126: "Ω",
                     0x212A: "K", 0x212B: "Å"}
_INVISIBLE = set(range(0x200B, 0x2010)) | set(range(0x2060, 0x2065)) | {0xFEFF, 0x00AD, 0x180E, 0x034F}
_BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A)) | {0x061C}
_LOOKALIKE_SCRIPTS = (((0x0400, 0x052F), "Cyrillic"), ((0x1C80, 0x1C8F), "Cyrillic"), ((0x2DE0, 0x2DFF), "Cyrillic"),
                      ((0xA640, 0xA69F), "Cyrillic"), ((0x0530, 0x058F), "Armenian"), ((0x13A0, 0x13FF), "Cherokee"),
                      ((0xAB70, 0xABBF), "Cherokee"))
_ALLOWED_SINGLES = {0x00AB, 0x00BB, 0x00AC, 0x00B1, 0x00B2, 0x00B3, 0x00B7, 0x00B9, 0x00D7, 0x00F7,  # «»¬±²³·¹×÷
                    0x03D1, 0x03D5, 0x03D6, 0x03F0, 0x03F1, 0x03F5,  # ϑ ϕ ϖ ϰ ϱ ϵ
                    0x2016, 0x2020, 0x2021, 0x2022, 0x2026, 0x2032, 0x2033, 0x2039, 0x203A, 0x2045, 0x2046,
                    0x2308, 0x2309, 0x230A, 0x230B, 0x2B1D}  # ‖ † ‡ • … ′ ″ ‹ › ⁅ ⁆ ⌈ ⌉ ⌊ ⌋ ⬝
_ALLOWED_RANGES = ((0x0391, 0x03A9), (0x03B1, 0x03C9),  # Greek (look-alikes removed above)
                   (0x1D2C, 0x1D6A), (0x1D9B, 0x1DBF),  # modifier letters: ᵀ ᵒᵈ ᶜ ᵢ ...
                   (0x2070, 0x209F),                    # superscripts and subscripts
                   (0x2100, 0x214F),                    # letterlike: ℕ ℤ ℚ ℝ ℂ ℓ ...
                   (0x2190, 0x22FF),                    # arrows, mathematical operators
                   (0x25A0, 0x25FF),                    # geometric shapes (▸ is Lean's rewrite arrow)
                   (0x27C0, 0x27FF), (0x2900, 0x2AFF),  # math symbols A/B, supplemental arrows/operators, ⟨ ⟩ ⦃ ⦄
                   (0x1D49C, 0x1D59F),                  # script, double-struck, fraktur letters (𝓝 𝔼)
                   (0x1D7D8, 0x1D7E1))                  # double-struck digits (𝟙)


def _char_problem(ch: str) -> str | None:
    v = ord(ch)
    if ch in "\n\t\r":
        return None  # tabs and lone CRs are the lexer's to reject outside comments and strings
    if v < 0x20 or v == 0x7F or 0x80 <= v <= 0x9F:
        return f"control character U+{v:04X}"
    if v < 0x7F:
        return None
    name = unicodedata.name(ch, f"U+{v:04X}")
    if v in _BIDI:
        return f"bidirectional control character U+{v:04X} ({name})"
    if v in _INVISIBLE:
        return f"invisible character U+{v:04X} ({name})"
    if unicodedata.category(ch) in ("Zs", "Zl", "Zp"):
        return f"non-ASCII whitespace U+{v:04X} ({name})"
    if 0xFF00 <= v <= 0xFFEF:
        return f"full-width character U+{v:04X} ({name})"
    for (lo, hi), script in _LOOKALIKE_SCRIPTS:
        if lo <= v <= hi:
            return f"{script} character U+{v:04X} ({name}) imitates Latin"
    if v in _GREEK_LOOKALIKES:
        return f"Greek letter U+{v:04X} ({name}) looks like Latin {_GREEK_LOOKALIKES[v]}"
    if v in _ASCII_LOOKALIKES:
        return f"character U+{v:04X} ({name}) looks like {_ASCII_LOOKALIKES[v]}"
    if v in _ALLOWED_SINGLES or any(lo <= v <= hi for lo, hi in _ALLOWED_RANGES):
        if unicodedata.category(ch) != "Cn":  # unassigned code points inside the ranges
            return None
    return f"character U+{v:04X} ({name}) is not in the allowed set"


@lru_cache(maxsize=256)
def _check_text(text: str) -> None:
    if len(text) > MAX_TEXT_CHARS:
        raise GuardError(f"text is {len(text)} characters, more than the limit {MAX_TEXT_CHARS}")
    if not unicodedata.is_normalized("NFC", text):
        bad = next((i for i in range(len(text)) if not unicodedata.is_normalized("NFC", text[max(0, i - 1):i + 1])),
                   None)
        raise GuardError("text is not in Unicode normal form NFC", offset=bad)
    if text.isascii():
        bad = _ASCII_PROBLEM.search(text)
        if bad:
            raise GuardError(_char_problem(bad.group()) or "control character", offset=bad.start())
        return
    for i, ch in enumerate(text):
        if ch < "\x7f" and ch >= " ":
            continue
        problem = _char_problem(ch)
        if problem:
            raise GuardError(problem, offset=i)


# -- options and names --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OptionRule:
    """An allowed ``set_option``: ``kind`` "bool" or "nat"; a nat value must lie in [low, high]."""

    kind: str
    low: int = 0
    high: int = 0


_PP_BOOLS = ("all", "explicit", "notation", "universes", "proofs", "proofs.withType", "funBinderTypes",
             "piBinderTypes", "numericTypes", "coercions", "fieldNotation", "mvars", "beta", "letVarTypes",
             "instances", "instanceTypes", "natLit", "structureInstances", "unicode.fun", "safeShadowing", "match",
             "fullNames", "privateNames", "instantiateMVars", "tagAppFns", "deepTerms", "oneline", "rawOnError")
_PP_NATS = ("maxSteps", "deepTerms.threshold", "proofs.threshold")
ALLOWED_OPTIONS: Mapping[str, OptionRule] = MappingProxyType({
    "maxHeartbeats": OptionRule("nat", 1, 400_000),  # 0 would switch the limit off
    "synthInstance.maxHeartbeats": OptionRule("nat", 1, 400_000),
    "synthInstance.maxSize": OptionRule("nat", 1, 1024),
    "maxRecDepth": OptionRule("nat", 1, 10_000),
    "exponentiation.threshold": OptionRule("nat", 1, 1024),
    **{f"pp.{o}": OptionRule("bool") for o in _PP_BOOLS},
    **{f"pp.{o}": OptionRule("nat", 0, 100_000) for o in _PP_NATS},
})

# Never allowed, as a whole name or as one component of a dotted name (after «» unquoting and _root_).
# Besides these: every name in the `Lean` namespace (meta-programming: Lean.Elab, Lean.Meta, Lean.Compiler,
# Lean.ofReduceBool, ...), every component containing "unsafe" and every component starting with "dbg".
FORBIDDEN_IDENTIFIERS: frozenset[str] = frozenset({
    "sorryAx", "Lean.ofReduceBool", "ofReduceBool", "Lean.ofReduceNat", "ofReduceNat", "reduceBool", "reduceNat",
    "trustCompiler", "implemented_by", "extern", "unsafeIO", "unsafeBaseIO", "unsafeEIO", "unsafeCast", "IO", "EIO",
    "BaseIO", "System", "run_tac", "run_cmd", "run_elab", "run_meta", "by_elab", "dbg_trace", "dbgTrace",
    "evalExpr", "evalConst", "throwError", "throwErrorAt", "MetaM", "TermElabM", "TacticM", "CoreM",
    "CommandElabM", "MacroM", "polyrith",  # polyrith calls a web service from inside Lean
})
FORBIDDEN_PREFIXES = ("Lean",)


def _name_problem(tok: Token) -> str | None:
    """Why an identifier token may not appear (forbidden names, non-plain «» parts, commands), or None."""
    if len(tok.text) > _CACHED_WORD_CHARS:
        return _word_name_problem.__wrapped__(tok.text)
    return _word_name_problem(tok.text)


_CACHED_WORD_CHARS = 64  # longer words are checked without the cache (bounded memory)


@lru_cache(maxsize=16384)
def _word_name_problem(word: str) -> str | None:
    if word in COMMAND_KEYWORDS or word.startswith(COMMAND_PREFIXES):
        if word in DECLARATION_KEYWORDS:
            return f"a second declaration (`{word}`): exactly one theorem is allowed"
        return f"`{word}` starts a command: only one theorem, lemma or example is allowed"
    if word in MODIFIERS:
        return f"modifier `{word}` is not allowed"
    comps = _components(word)
    for comp in comps:
        if not _plain(comp):
            return f"quoted identifier «{comp}» is not a plain name"
    if comps[0] == "_root_":
        comps = comps[1:]
    full = ".".join(comps)
    if full in FORBIDDEN_IDENTIFIERS or any(c in FORBIDDEN_IDENTIFIERS for c in comps):
        return f"identifier `{word}` is not allowed"
    if any(full == p or full.startswith(p + ".") for p in FORBIDDEN_PREFIXES):
        return f"identifier `{word}` is in Lean's meta-programming namespace"
    if any("unsafe" in c.lower() or c.startswith("dbg") for c in comps):
        return f"identifier `{word}` is not allowed (unsafe or debugging primitive)"
    return None  # «def» is an identifier in Lean, harmless


def _is_sorry(tok: Token) -> bool:
    return tok.kind in ("ident", "keyword") and ".".join(_components(tok.text)) in SORRY_WORDS


def _check_option(toks: Sequence[Token], k: int) -> tuple[str, str]:
    """``toks[k]`` is ``set_option``: (name, value) if allow-listed, else GuardError."""
    if k + 2 >= len(toks):
        raise GuardError("incomplete set_option", offset=toks[k].start)
    name, value = toks[k + 1], toks[k + 2]
    rule = ALLOWED_OPTIONS.get(name.text) if name.kind == "ident" else None
    if rule is None:
        raise GuardError(f"set_option {name.text} is not allowed", offset=name.start)
    if rule.kind == "bool" and value.text not in ("true", "false"):
        raise GuardError(f"set_option {name.text} needs true or false, got {value.text}", offset=value.start)
    if rule.kind == "nat" and not (value.kind == "number" and value.text.isdigit()
                                   and rule.low <= int(value.text) <= rule.high):
        raise GuardError(f"set_option {name.text} must be a number from {rule.low} to {rule.high}, got {value.text}",
                         offset=value.start)
    return name.text, value.text


# -- declarations -----------------------------------------------------------------------------------------

_BINDER_KINDS = {"(": "explicit", "{": "implicit", "⦃": "strict", "[": "instance"}
_BRACKETS = {"explicit": "()", "implicit": "{}", "strict": "⦃⦄", "instance": "[]"}


@dataclass(frozen=True)
class Binder:
    """One bracketed binder group: ``(a x : ℝ)`` -> names ("a", "x"), type "ℝ", kind "explicit"."""

    names: tuple[str, ...]  # empty for an anonymous instance binder [Foo α]
    type: str
    kind: str  # explicit ( ) | implicit { } | strict ⦃ ⦄ | instance [ ]

    def render(self) -> str:
        left, right = _BRACKETS[self.kind]
        if not self.names:
            return f"{left}{self.type}{right}"
        return f"{left}{' '.join(self.names)} : {self.type}{right}"


@dataclass(frozen=True)
class Declaration:
    """One guarded declaration. Equality compares the parts, not where they were in the text."""

    keyword: str                          # theorem | lemma | example
    name: str | None                      # None for example
    binders: tuple[Binder, ...]
    conclusion: str                       # the type after the top-level ':' (comments removed, single spaces)
    proof: str | None                     # after ':=' (comments removed, tactic layout kept); None: absent or sorry
    options: tuple[tuple[str, str], ...]  # `set_option NAME VALUE in` prefixes
    statement_span: tuple[int, int] = field(compare=False)      # keyword .. end of the type, in the original text
    proof_span: tuple[int, int] | None = field(compare=False)   # the proof text (also when it is `sorry`)

    def statement(self) -> str:
        """``(a x : ℝ) (h₀ : a * x + 3 = x - 5) : a = -3``: binders and type, as :meth:`render` writes them."""
        return " ".join([b.render() for b in self.binders] + [":", self.conclusion])

    def head(self, name: str = "step") -> str:
        """The statement without a proof: ``set_option ... in`` lines, then ``theorem NAME binders : type``."""
        return "".join(f"set_option {k} {v} in\n" for k, v in self.options) + f"theorem {name} {self.statement()}"

    def as_pi(self) -> str:
        """The statement as one Prop term, for ``noncomputable def S : Prop := <as_pi>``: the binders as a
        ``∀`` telescope, ``∀ (x : T) {y : U} [inst : C] [D] ⦃z : V⦄, CONCL``, or just CONCL without binders.
        (The ``set_option ... in`` prefixes, :attr:`options`, are not part of it.) ``theorem t BINDERS : CONCL``
        and ``∀ BINDERS, CONCL`` state the same: Lean's ``example : S := @t`` checks it.
        """
        if not self.binders:
            return self.conclusion
        return "∀ " + " ".join(b.render() for b in self.binders) + ", " + self.conclusion

    def _emit(self, name: str, proof: str | None) -> str:
        head = self.head(name)
        if proof is None:
            return f"{head} := by sorry"
        body = _layout(proof)
        if "\n" not in body or body.startswith("by\n"):
            return f"{head} := {body}"
        return f"{head} :=\n{body}"

    def render(self, name: str, proof: str | None = None) -> str:
        """``theorem NAME binders : conclusion := proof`` from the parsed parts only (``proof`` overrides).

        A proof of several lines keeps its layout: ``by`` then the tactic lines indented by two, or (for other
        proofs) all lines on their own, their columns relative to each other unchanged. No proof at all is
        written ``:= by sorry``. The result goes through the guard again: GuardError if the name or the proof
        would not pass it, or if the proof would change how the statement parses.
        """
        text = self._emit(name, self.proof if proof is None else proof)
        again = parse_declaration(text)
        parts = (again.name, again.binders, again.conclusion, again.options)
        if parts != (name, self.binders, self.conclusion, self.options):
            base = parse_declaration(self._emit(name, None))  # our parts may be spaced differently: as Lean reads
            if parts != (name, base.binders, base.conclusion, base.options):
                raise GuardError(f"the declaration does not render back to itself with name {name!r} and this "
                                 "proof")
        if again.proof is not None and again.proof != _layout(self.proof if proof is None else proof):
            text = again._emit(name, again.proof)  # the proof carried comments: emit the parsed proof instead
        return text


def _layout(proof: str) -> str:
    """The canonical text of a proof given as a block of lines (the first line's indent is its column).

    One line: stripped. ``by`` alone on the first line: ``by`` then the other lines, dedented to two spaces.
    Anything else: every line, the smallest indent made two, columns relative to each other kept.
    """
    lines = [ln.rstrip() for ln in proof.split("\n")]
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return ""
    if len(lines) == 1:
        return lines[0].strip()
    indent = [len(ln) - len(ln.lstrip(" ")) for ln in lines]
    if lines[0].strip() == "by":
        m = min(indent[1:])
        return "by\n" + "\n".join("  " + ln[m:] for ln in lines[1:])
    m = min(indent)
    return "\n".join("  " + ln[m:] for ln in lines)


def _flatten(toks: Sequence[Token], first: int, last: int) -> str:
    """Tokens ``first..last`` (inclusive) as text: comments dropped, any gap one space, adjacency kept."""
    out: list[str] = []
    gap = False
    for t in toks[first:last + 1]:
        if t.kind in TRIVIA:
            gap = True
            continue
        if out and gap:
            out.append(" ")
        out.append(t.text)
        gap = False
    return "".join(out)


_SAFE_BEFORE_OPENER = frozenset("([{⟨⦃‹⟦,;)]}⟩⦄›⟧")


def _check_openers(toks: Sequence[Token]) -> None:
    """A string, char, comment or «name» may not start right after a symbol (brackets and commas aside).

    Libraries add multi-character tokens the guard cannot know (Mathlib's ``⁻¹'``, ``∑'``, ProofWidgets'
    ``</``): Lean may read the symbol and the quote or comment opener as one token, and then read as code
    what the guard took for a string or a comment.
    """
    for prev, t in zip(toks, toks[1:]):
        opens = t.kind in ("string", "char", "comment", "docstring") or t.text.startswith("«")
        if opens and prev.kind == "symbol" and prev.end == t.start and prev.text[-1] not in _SAFE_BEFORE_OPENER:
            raise GuardError(f"`{t.text[:2]}` right after `{prev.text}`: Lean may read them as one token "
                             "(put a space between)", offset=t.start)


def _scan(toks: Sequence[Token], sig: list[int], allowed: set[int]) -> list[int]:
    """Token checks over the whole text; returns each significant token's bracket level.

    ``allowed``: positions in ``sig`` exempt from the command check (the head keyword, its docstring, the
    set_option prefixes, which the caller checks itself).
    """
    _check_openers(toks)
    level: list[int] = []
    stack: list[int] = []  # positions in sig of open brackets
    for p, k in enumerate(sig):
        t = toks[k]
        if t.kind == "command":
            raise GuardError(f"command `{t.text}` is not allowed", offset=t.start)
        if t.kind == "docstring" and p not in allowed:
            raise GuardError("doc comment outside the declaration's head", offset=t.start)
        if t.kind == "string":
            if t.text.startswith("r"):
                raise GuardError("raw string literals are not allowed", offset=t.start)
            if "{" in t.text or t.text.startswith("}"):
                raise GuardError("interpolated strings (and `{` in strings) are not allowed", offset=t.start)
            if "\n" in t.text:
                raise GuardError("string literals may not span lines", offset=t.start)
        if t.kind == "char" and "\n" in t.text:
            raise GuardError("character literal holds a line break", offset=t.start)
        if t.kind == "symbol" and t.text == "`":
            raise GuardError("name literals and syntax quotations (`) are not allowed", offset=t.start)
        if t.kind == "symbol" and t.text == "@" and k + 1 < len(toks) and toks[k + 1].text == "[":
            raise GuardError("attributes @[...] are not allowed", offset=t.start)
        if t.kind in ("ident", "keyword") and p not in allowed:
            if t.text == "set_option":  # without `in` it is a command that changes the options of what follows
                _check_option([toks[j] for j in sig[p:p + 3]], 0)
                if p + 3 >= len(sig) or toks[sig[p + 3]].text != "in":
                    raise GuardError("set_option must be followed by `in` (as a command it would change the "
                                     "options of whatever comes after)", offset=t.start)
            else:
                problem = _name_problem(t)
                if problem:
                    raise GuardError(problem, offset=t.start)
        if t.kind == "symbol" and t.text in _OPENERS:
            level.append(len(stack))
            stack.append(p)
            if len(stack) > MAX_BRACKET_DEPTH:
                raise GuardError(f"brackets nested more than {MAX_BRACKET_DEPTH} deep", offset=t.start)
        elif t.kind == "symbol" and t.text in _CLOSERS:
            if not stack or toks[sig[stack[-1]]].text != _CLOSERS[t.text]:
                raise GuardError(f"unbalanced `{t.text}`", offset=t.start)
            stack.pop()
            level.append(len(stack))
        else:
            level.append(len(stack))
    if stack:
        opener = toks[sig[stack[-1]]]
        raise GuardError(f"`{opener.text}` is never closed", offset=opener.start)
    return level


def _matching(toks: Sequence[Token], sig: list[int], level: list[int], p: int) -> int:
    for q in range(p + 1, len(sig)):
        if level[q] == level[p] and toks[sig[q]].text in _CLOSERS:
            return q
    raise GuardError("unbalanced bracket", offset=toks[sig[p]].start)  # unreachable after _scan


# `:=`-binders a statement's type may hold (each pairs with the next `:=` at its level); every other word
# that looks like one of Lean's let/have variants (let_delayed, let_tmp, let_mvar%, let_expr, have', ...) is
# rejected in a statement, so the declaration's own `:=` is never mistaken
_LET_WORDS = frozenset({"let", "have", "haveI", "letI", "let_fun"})
# blocks whose extent depends on line breaks and columns: at the top level of a type they could swallow the
# declaration's `:=` (a tactic such as `obtain ... := h`, a calc step `_ = x := p`, a do-block assignment)
_BLOCK_WORDS = frozenset({"by", "do", "calc"})
# words after which the statement's line breaks may matter (a `let` body on its own line, tactic blocks,
# calc steps); `_flatten` joins lines, so a statement may not break lines after one of them
_LAYOUT_WORDS = _LET_WORDS | _BLOCK_WORDS | {"suffices"}


def _unknown_binder_word(word: str) -> bool:
    """``let_delayed``, ``let_tmp``, ``let_mvar``, ``let_expr``, ``let'``, ``have'``, ``haveI'``...: a let/have
    variant the splitter does not know (``letter`` or ``haven`` are plain names)."""
    for head in ("let", "have"):
        if word.startswith(head) and word not in _LET_WORDS:
            c = word[len(head):][:1]
            return not c or not ("a" <= c <= "z" or "0" <= c <= "9" or _is_subscript_alnum(c))
    return False


def _split_type(toks: Sequence[Token], sig: list[int], level: list[int], colon: int) -> int | None:
    """Position (in ``sig``) of the declaration's `:=` after the type that starts after ``colon``, or None.

    Lean ends the type at the first top-level `:=` that no `let`/`have` of the type claims. GuardError wherever
    the guard cannot be sure to end it where Lean does: a `let` with `|` alternatives or anything else before
    its own `:=` that could mean it has none (`from`, `←`), a `let` left without `:=`, a `by`/`do`/`calc`
    block at the top level of the type (its tactics may hold `:=`; put it in parentheses).
    """
    pending = 0
    for r in range(colon + 1, len(sig)):
        if level[r] != 0:
            continue
        t = toks[sig[r]]
        if t.kind in ("ident", "keyword"):
            if t.text in _LET_WORDS:
                pending += 1
            elif t.text in _BLOCK_WORDS:
                raise GuardError(f"cannot tell where a `{t.text}` block in the statement ends: put it in "
                                 "parentheses", offset=t.start)
            elif _unknown_binder_word(t.text):
                raise GuardError(f"cannot tell the declaration's `:=` from the `:=` of `{t.text}` in its type "
                                 "(unknown binder form)", offset=t.start)
        if pending and t.text in ("|", "from", "←", "<-"):  # a `let` that may have no `:=` of its own
            raise GuardError(f"cannot tell the declaration's `:=` from a `let`/`have` in its type (`{t.text}` "
                             "before the `let`'s own `:=`)", offset=t.start)
        if t.text == ":=":
            if not pending:
                return r
            pending -= 1
    if pending:
        raise GuardError("cannot tell the declaration's `:=` from a `let`/`have` in its type",
                         offset=toks[sig[colon]].start)
    return None


def _check_statement_words(toks: Sequence[Token], sig: list[int], level: list[int], first: int, last: int) -> None:
    """Rules over the whole statement (``sig[first..last]``: keyword, binders, type) that keep its parsed
    parts equal to what Lean reads: no unknown let/have variant anywhere (binder types included), and no line
    break after a layout-sensitive word or an inner `:=` before its bracket group closes (the parts are
    flattened to one line, and a `let` body, a tactic, a calc step or a structure field on its own line would
    read differently)."""
    active: Token | None = None  # the layout-sensitive token whose bracket group we are in
    active_level = 0
    for r in range(first, last + 1):
        t = toks[sig[r]]
        if active is not None and level[r] < active_level:
            active = None
        if active is not None and any(toks[k].kind in TRIVIA and "\n" in toks[k].text
                                      for k in range(sig[r - 1] + 1, sig[r])):
            raise GuardError(f"line break after `{active.text}` in a statement: its meaning may depend on the "
                             "layout (write the statement's `let`/`have`/`by`/`:=` parts on one line, `;` "
                             "between)", offset=_break_before(toks, sig, r))
        if t.kind in ("ident", "keyword"):
            if _unknown_binder_word(t.text):
                raise GuardError(f"`{t.text}` in a statement: a binder form the guard does not parse",
                                 offset=t.start)
            if active is None and t.text in _LAYOUT_WORDS:
                active, active_level = t, level[r]
        elif active is None and t.text == ":=":
            active, active_level = t, level[r]


def _break_before(toks: Sequence[Token], sig: list[int], r: int) -> int:
    """Offset of the first line break before significant token ``r``."""
    for k in range(sig[r - 1] + 1, sig[r]):
        if "\n" in toks[k].text:
            return toks[k].start + toks[k].text.index("\n")
    return toks[sig[r]].start


def _proof_of(text: str, toks: Sequence[Token], psig: list[int], allow_sorry: bool) -> str | None:
    """The canonical proof text of the significant tokens ``psig`` (already scanned); None for a whole
    ``sorry`` / ``by sorry`` (GuardError when not ``allow_sorry``); ``sorry``/``admit``/``stop`` elsewhere
    are rejected."""
    first_tok = toks[psig[0]]
    words = [toks[k].text for k in psig]
    if words in (["sorry"], ["by", "sorry"]):
        if not allow_sorry:
            raise GuardError("the proof is `sorry`", offset=first_tok.start)
        return None
    for k in psig:
        if _is_sorry(toks[k]):
            raise GuardError(f"`{toks[k].text}` inside a proof (only a whole proof `sorry` means "
                             "\"no proof yet\")", offset=toks[k].start)
    # comments become spaces (their line breaks stay), so every token keeps its line and column
    pieces = ["".join(c if c == "\n" else " " for c in t.text) if t.kind == "comment" else t.text
              for t in toks[psig[0]:psig[-1] + 1]]
    column = first_tok.start - (text.rfind("\n", 0, first_tok.start) + 1)
    return _layout(" " * column + "".join(pieces))


def parse_proof(text: str, *, allow_sorry: bool = True) -> str | None:
    """A proof on its own (a term, or a ``by`` block: what follows ``:=``), under the lexing rules of
    :func:`parse_declaration`: no commands, no second declaration, no attributes, no forbidden names,
    balanced brackets, allowed characters. Returns the canonical proof text (comments gone, the layout kept;
    the first line's indent is its column) that :meth:`Declaration.render` puts after ``:=``; None for a
    whole ``sorry`` / ``by sorry`` (GuardError when not ``allow_sorry``).
    """
    try:
        return _parse_proof(text, allow_sorry)
    except GuardError as e:
        raise GuardError(e.reason, offset=e.offset, text=text) from None


def _parse_proof(text: str, allow_sorry: bool) -> str | None:
    _check_text(text)
    toks = _lex(text)
    sig = [k for k, t in enumerate(toks) if t.kind not in TRIVIA]
    if not sig:
        raise GuardError("empty proof", offset=len(text))
    _scan(toks, sig, set())
    if toks[sig[0]].text == ":=":
        raise GuardError("the proof starts with `:=` (give only what follows it)", offset=toks[sig[0]].start)
    return _proof_of(text, toks, sig, allow_sorry)


def parse_declaration(text: str, *, allow_sorry_proof: bool = True) -> Declaration:
    """Exactly one ``theorem``/``lemma``/``example`` (with allow-listed ``set_option ... in`` prefixes).

    A proof that is exactly ``sorry`` or ``by sorry`` means "no proof yet": ``proof`` is None (GuardError when
    ``allow_sorry_proof`` is False); ``sorry``/``admit``/``stop`` anywhere else is rejected. Everything the
    module docstring lists is rejected with a GuardError that names the reason and the offset.
    """
    try:
        return _parse_declaration(text, allow_sorry_proof)
    except GuardError as e:
        raise GuardError(e.reason, offset=e.offset, text=text) from None


def _head(toks: Sequence[Token], sig: list[int]) -> tuple[list[tuple[str, str]], int, set[int]]:
    """The set_option prefixes, the position of the declaration keyword, positions exempt from the scan."""
    options: list[tuple[str, str]] = []
    allowed: set[int] = set()
    p = 0
    while p < len(sig) and toks[sig[p]].text == "set_option":
        name, value = _check_option([toks[k] for k in sig[p:p + 3]], 0)
        if p + 3 >= len(sig) or toks[sig[p + 3]].text != "in":
            at = toks[sig[min(p + 3, len(sig) - 1)]]
            raise GuardError("set_option before the declaration must end in `in`", offset=at.start)
        options.append((name, value))
        allowed.update(range(p, p + 4))
        p += 4
    if p < len(sig) and toks[sig[p]].kind == "docstring":
        allowed.add(p)
        p += 1
    if p >= len(sig):
        raise GuardError("no declaration", offset=toks[-1].end if toks else 0)
    if toks[sig[p]].text in DECLARATION_KEYWORDS:
        allowed.add(p)
    return options, p, allowed


def _parse_declaration(text: str, allow_sorry_proof: bool) -> Declaration:
    _check_text(text)
    toks = _lex(text)
    sig = [k for k, t in enumerate(toks) if t.kind not in TRIVIA]
    options, p, allowed = _head(toks, sig)
    level = _scan(toks, sig, allowed)  # the most specific reason first: a command, an attribute, a modifier...
    if toks[sig[p]].text not in DECLARATION_KEYWORDS:
        t = toks[sig[p]]
        raise GuardError(f"expected `theorem`, `lemma` or `example`, got `{t.text}`", offset=t.start)

    def tok(q: int) -> Token:
        return toks[sig[q]]

    def end_error(what: str) -> GuardError:
        return GuardError(f"expected {what}, but the text ends", offset=len(text))

    kw = tok(p)
    q = p + 1
    name = None
    if kw.text != "example":
        if q >= len(sig):
            raise end_error("a name")
        if tok(q).kind != "ident" or tok(q).text == "_":
            raise GuardError(f"expected the theorem's name, got `{tok(q).text}`", offset=tok(q).start)
        name = tok(q).text
        q += 1
    binders: list[Binder] = []
    while q < len(sig) and tok(q).text in _BINDER_KINDS:
        close = _matching(toks, sig, level, q)
        binders.append(_binder(toks, sig, level, q, close))
        q = close + 1
    if q >= len(sig):
        raise end_error("`:` and the statement")
    if tok(q).text != ":":
        raise GuardError(f"expected a bracketed binder or `:`, got `{tok(q).text}`", offset=tok(q).start)
    colon = q
    assign = _split_type(toks, sig, level, colon)
    last = (assign if assign is not None else len(sig)) - 1
    if last <= colon:
        raise GuardError("the statement has no type after `:`", offset=tok(colon).end)
    for r in range(p, last + 1):
        if _is_sorry(tok(r)):
            raise GuardError(f"`{tok(r).text}` in the statement", offset=tok(r).start)
    _check_statement_words(toks, sig, level, p, last)
    conclusion = _flatten(toks, sig[colon + 1], sig[last])
    statement_span = (kw.start, tok(last).end)

    proof: str | None = None
    proof_span = None
    if assign is not None:
        if assign + 1 >= len(sig):
            raise GuardError("empty proof after `:=`", offset=tok(assign).end)
        proof_span = (tok(assign + 1).start, tok(len(sig) - 1).end)
        proof = _proof_of(text, toks, sig[assign + 1:], allow_sorry_proof)
    return Declaration(keyword=kw.text, name=name, binders=tuple(binders), conclusion=conclusion, proof=proof,
                       options=tuple(options), statement_span=statement_span, proof_span=proof_span)


def _binder(toks: Sequence[Token], sig: list[int], level: list[int], open_: int, close: int) -> Binder:
    kind = _BINDER_KINDS[toks[sig[open_]].text]
    inside = level[open_] + 1
    colon = next((r for r in range(open_ + 1, close) if level[r] == inside and toks[sig[r]].text == ":"), None)
    at = toks[sig[open_]].start
    if close == open_ + 1:
        raise GuardError("empty binder", offset=at)
    for r in range(open_ + 1, close):
        if level[r] == inside and toks[sig[r]].text == ":=":
            raise GuardError("binders with default values are not supported", offset=toks[sig[r]].start)
    names = [toks[sig[r]] for r in range(open_ + 1, colon)] if colon is not None else []
    plain = bool(names) and all(t.kind == "ident" and len(_components(t.text)) == 1 for t in names)
    if kind == "instance" and (colon is None or not (plain and len(names) == 1)):
        return Binder((), _flatten(toks, sig[open_ + 1], sig[close - 1]), kind)
    if colon is None:
        raise GuardError("binder without a type", offset=at)
    if not plain:
        raise GuardError("expected binder names before `:`", offset=at)
    if colon + 1 >= close:
        raise GuardError("binder without a type", offset=toks[sig[colon]].start)
    return Binder(tuple(t.text for t in names), _flatten(toks, sig[colon + 1], sig[close - 1]), kind)


# -- header -----------------------------------------------------------------------------------------------

def parse_header(text: str, *, allowed_imports: Collection[str] | None = None) -> str:
    """The statement header: ``import X`` lines first, then ``open X Y`` / ``open scoped X`` and allow-listed
    ``set_option`` lines; comments and ``/-! -/`` module docs are dropped. Returns one command per line.

    ``allowed_imports``: None accepts any module name; otherwise each import must be in it. Opening the
    ``Lean`` namespace (or any forbidden name) is rejected: it would make meta-programming names reachable.
    """
    try:
        return _parse_header(text, allowed_imports)
    except GuardError as e:
        raise GuardError(e.reason, offset=e.offset, text=text) from None


def _parse_header(text: str, allowed_imports: Collection[str] | None) -> str:
    _check_text(text)
    toks = _lex(text)
    _check_openers(toks)
    toks = [t for t in toks if t.kind not in TRIVIA and not (t.kind == "docstring" and t.text.startswith("/-!"))]
    lines: list[str] = []
    imports_done = False
    p = 0
    while p < len(toks):
        t = toks[p]
        if t.text == "import":
            if imports_done:
                raise GuardError("`import` must come before every other command", offset=t.start)
            if p + 1 >= len(toks) or toks[p + 1].kind != "ident":
                raise GuardError("`import` needs a module name", offset=t.end)
            mod = toks[p + 1]
            if not all(_plain(c) for c in _components(mod.text)):
                raise GuardError(f"module name {mod.text} is not plain", offset=mod.start)
            if allowed_imports is not None and mod.text not in allowed_imports:
                raise GuardError(f"import {mod.text} is not allowed", offset=mod.start)
            lines.append(f"import {mod.text}")
            p += 2
        elif t.text == "open":
            imports_done = True
            q = p + 1
            words = []
            if q < len(toks) and toks[q].text == "scoped":
                words.append("scoped")
                q += 1
            start = q
            while q < len(toks) and toks[q].kind == "ident":
                problem = _name_problem(toks[q])
                if problem:
                    raise GuardError(f"cannot open {toks[q].text}: {problem}", offset=toks[q].start)
                words.append(toks[q].text)
                q += 1
            if q == start:
                raise GuardError("`open` needs namespace names", offset=t.end)
            lines.append("open " + " ".join(words))
            p = q
        elif t.text == "set_option":
            imports_done = True
            name, value = _check_option(toks, p)
            lines.append(f"set_option {name} {value}")
            p += 3
        else:
            raise GuardError(f"only import, open and allowed set_option lines may be in the header, got `{t.text}`",
                             offset=t.start)
    return "\n".join(lines)


# -- vacuity ----------------------------------------------------------------------------------------------

_BINDING = frozenset({"∀", "∃", "∃!", "fun", "λ", "Π", "Σ", "∑", "∏", "⋃", "⋂", "⨆", "⨅", "∫", "let", "have",
                      "show", "if", "match", "by"})
_SPELLING = {"->": "→", "<=": "≤", ">=": "≥", "<->": "↔", "!=": "≠"}
_NUMERAL_TYPES = {"Nat": "ℕ", "ℕ": "ℕ", "Int": "ℤ", "ℤ": "ℤ", "Rat": "ℚ", "ℚ": "ℚ", "Real": "ℝ", "ℝ": "ℝ",
                  "Complex": "ℂ", "ℂ": "ℂ"}
_RELATIONS = {"=": lambda a, b: a == b, "≠": lambda a, b: a != b, "<": lambda a, b: a < b,
              ">": lambda a, b: a > b, "≤": lambda a, b: a <= b, "≥": lambda a, b: a >= b}


def _words(text: str) -> list[str]:
    """The significant token texts of already-guarded text, spellings unified (-> is →)."""
    return [_SPELLING.get(t.text, t.text) for t in _lex(text) if t.kind not in TRIVIA]


def _strip_parens(w: list[str]) -> list[str]:
    while len(w) >= 2 and w[0] == "(" and w[-1] == ")":
        depth = 0
        for i, x in enumerate(w):
            depth += x in _OPENERS
            depth -= x in _CLOSERS
            if depth == 0 and i < len(w) - 1:
                return w
        w = w[1:-1]
    return w


def _split(w: list[str], ops: Collection[str]) -> list[list[str]]:
    """Split at top-level ``ops``; a part that starts with a binder (∀ x, ...) extends to the end."""
    parts: list[list[str]] = [[]]
    depth = 0
    for x in w:
        if x in _OPENERS:
            depth += 1
        elif x in _CLOSERS:
            depth -= 1
        if depth == 0 and x in ops and parts[-1] and parts[-1][0] not in _BINDING:
            parts.append([])
        else:
            parts[-1].append(x)
    return parts


def _numeral(w: list[str]) -> tuple[int, str | None] | None:
    w = _strip_parens(w)
    typ = None
    parts = _split(w, {":"})
    if len(parts) == 2 and len(parts[1]) == 1 and parts[1][0] in _NUMERAL_TYPES:
        w, typ = _strip_parens(parts[0]), _NUMERAL_TYPES[parts[1][0]]
    elif len(parts) != 1:
        return None
    sign = 1
    if len(w) == 2 and w[0] == "-":
        sign, w = -1, w[1:]
    if len(w) == 1 and w[0].isdigit():
        return sign * int(w[0]), typ
    return None


def _false_numeral_fact(w: list[str]) -> bool:
    w = _strip_parens(w)
    for op, holds in _RELATIONS.items():
        parts = _split(w, {op})
        if len(parts) != 2:
            continue
        a, b = _numeral(parts[0]), _numeral(parts[1])
        if a is None or b is None:
            return False
        types = {t for t in (a[1], b[1]) if t is not None}
        if len(types) > 1:
            return False
        typ = types.pop() if types else "ℕ"
        if (typ == "ℕ" and min(a[0], b[0]) < 0) or (typ == "ℂ" and op not in ("=", "≠")):
            return False
        return not holds(a[0], b[0])
    return False


def _trivially_true(w: list[str]) -> bool:
    w = _strip_parens(w)
    if w == ["True"]:
        return True
    if w and w[0] in _BINDING:
        return False
    for ops in ({"↔"}, {"→"}):
        parts = _split(w, ops)
        if len(parts) > 1:
            if ops == {"↔"}:
                return len(parts) == 2 and _strip_parens(parts[0]) == _strip_parens(parts[1])
            *premises, final = [_strip_parens(x) for x in parts]
            return final in premises or _trivially_true(final) or any(_trivially_false(x) for x in premises)
    parts = _split(w, {"∨"})
    if len(parts) > 1:
        return any(_trivially_true(x) for x in parts)
    parts = _split(w, {"∧"})
    if len(parts) > 1:
        return all(_trivially_true(x) for x in parts)
    if w and w[0] == "¬":
        return _trivially_false(w[1:])
    for op in ("=", "≤", "≥"):
        parts = _split(w, {op})
        if len(parts) == 2 and parts[0] and _strip_parens(parts[0]) == _strip_parens(parts[1]):
            return True
    return False


def _trivially_false(w: list[str]) -> bool:
    w = _strip_parens(w)
    if w == ["False"]:
        return True
    if not w or w[0] in _BINDING or len(_split(w, {"↔", "→"})) > 1:
        return False
    parts = _split(w, {"∨"})
    if len(parts) > 1:
        return all(_trivially_false(x) for x in parts)
    parts = _split(w, {"∧"})
    if len(parts) > 1:
        return any(_trivially_false(x) for x in parts)
    if w[0] == "¬":
        return _trivially_true(w[1:])
    for op in ("≠", "<", ">"):
        parts = _split(w, {op})
        if len(parts) == 2 and parts[0] and _strip_parens(parts[0]) == _strip_parens(parts[1]):
            return True
    return _false_numeral_fact(w)


# Types with no element, and classes no instance of which can exist for them
_EMPTY_TYPES = (["Empty"], ["PEmpty"], ["False"], ["Fin", "0"])
_INHABITED_TYPES = frozenset({"Nat", "ℕ", "Int", "ℤ", "Rat", "ℚ", "Real", "ℝ", "Complex", "ℂ", "Bool", "Prop",
                              "Unit", "PUnit", "True"})
_NONEMPTY_CLASSES = frozenset({"Inhabited", "Nonempty", "Unique"})


def _empty_type(w: list[str]) -> bool:
    """``Empty``, ``PEmpty``, ``False``, ``Fin 0`` (in parentheses or not), or a false fact as a type."""
    w = _strip_parens(w)
    if w in _EMPTY_TYPES:
        return True
    if len(w) >= 2 and w[0] == "Fin" and _numeral(w[1:]) in ((0, None), (0, "ℕ")):
        return True
    return _trivially_false(w)


def _impossible_instance(w: list[str]) -> str | None:
    """Why an instance (or hypothesis) of class application ``w`` cannot exist, or None."""
    w = _strip_parens(w)
    if len(w) >= 2 and w[0] in _NONEMPTY_CLASSES and _empty_type(w[1:]):
        return f"{w[0]} of an empty type"
    if len(w) >= 2 and w[0] == "Fact" and _trivially_false(w[1:]):
        return "Fact of a false proposition"
    if len(w) >= 2 and w[0] == "IsEmpty" and len(_strip_parens(w[1:])) == 1 and _strip_parens(w[1:])[0] in \
            _INHABITED_TYPES:
        return "IsEmpty of an inhabited type"
    return None


def _forall_over_empty(w: list[str]) -> bool:
    """``∀ x : Empty, ...``, ``∀ (x : Fin 0), ...``: a conclusion over an empty type (first binder group)."""
    if not w or w[0] != "∀":
        return False
    head = _split(w[1:], {","})[0]
    groups: list[list[str]] = []
    if head and head[0] in ("(", "{", "⦃", "["):
        depth, cur = 0, []
        for x in head:
            depth += x in _OPENERS
            depth -= x in _CLOSERS
            cur.append(x)
            if depth == 0:
                groups.append(cur[1:-1])
                cur = []
    else:
        groups.append(head)
    for g in groups:
        parts = _split(g, {":"})
        if len(parts) == 2 and _empty_type(parts[1]):
            return True
    return False


def vacuity(decl: Declaration) -> str | None:
    """Why the statement says nothing (so a proof of it checks nothing), or None. Syntactic only.

    Caught: a conclusion that is trivially true (``True``, ``(True)``, ``True ∧ True``, ``P ∨ True``,
    ``P → True``, ``x = x``, ``p → p``, an implication from ``False``, ``∀ x : Empty, ...``); a conclusion
    that restates a hypothesis; a hypothesis ``False`` or a false fact about integer literals
    (``(1 : Nat) = 2``, ``2 < 1``, ``(3:ℤ) ≠ 3``); a binder over an empty type (``(x : Empty)``,
    ``{x : PEmpty}``, ``(x : Fin 0)``); an instance that cannot exist (``[Inhabited Empty]``,
    ``[inst : Nonempty (Fin 0)]``, ``[Fact (1 = 2)]``, ``[IsEmpty ℕ]``, also as explicit hypotheses).
    Hypotheses that contradict each other in general are the verifier's to find with Lean (it tries to prove
    ``False`` from them).
    """
    concl = _strip_parens(_words(decl.conclusion))
    hyps = [(" ".join(b.names) or "_", _strip_parens(_words(b.type)), b) for b in decl.binders]
    for name, h, b in hyps:
        what = "instance" if b.kind == "instance" else "hypothesis"
        impossible = _impossible_instance(h)
        if impossible:
            return f"{what} {b.render()} cannot exist: {impossible}"
        if h == ["False"]:
            return f"{what} {name} is False"
        if _trivially_false(h):
            return f"{what} {name} is false: {b.type}"
        if _empty_type(h):
            return f"binder {b.render()} ranges over an empty type"
    for name, h, b in hyps:
        if h == concl and b.kind != "instance":
            return f"the conclusion restates hypothesis {name}"
    if _forall_over_empty(concl):
        return f"the conclusion quantifies over an empty type: {decl.conclusion}"
    if _trivially_true(concl):
        if concl == ["True"]:
            return "the conclusion is True"
        return f"the conclusion is trivially true: {decl.conclusion}"
    return None
