"""The shared judge of the Lean 4 stand-ins used by the tests: fake_lean.py (``lean``), fake_repl.py
``--evaluate`` (the leanprover-community REPL) and fake_lean4checker.py (``lean4checker``). It is NOT Lean: it
reads the small files the Lean backend writes and answers as real Lean does, in real Lean's layouts, for what
such files and the proofs in them can do (checked against a real 2021 Lean 4 by tests/lean/test_lean_fakes.py).

Files (commands start at column 0, or at a command keyword anywhere, as in Lean; a declaration continues on
indented lines; any token at column 0 ends it):

- header ``import X`` lines: X is read from ``X.olean`` (this module's JSON "fake olean") in a LEAN_PATH folder,
  transitively; ``Init``/``Std``/``Lean``/``Mathlib``/``Batteries``/... are library names always present
  (``Mathlib`` adds its command keywords: ``lemma``, ``alias``, ...). A missing module is an error at its
  ``import`` and nothing else runs; two modules declaring one name is ``import failed, environment already
  contains 'NAME'``.
- ``[noncomputable] def NAME : Prop := PROP``, ``theorem``/``lemma NAME BINDERS : PROP := PROOF``,
  ``example BINDERS : PROP := PROOF``, ``axiom NAME BINDERS : PROP``, ``#print axioms NAME``, ``#check NAME``,
  ``#eval "s"``/``#eval IO.println "s"``/``#eval 1 + 1``, ``namespace``/``section``/``end`` (names in a
  namespace are prefixed), ``open``/``set_option``/``variable``/... (no effect), and ``evil_cmd ...``: a made-up
  command keyword that logs its text (a string literal decoded) as information. Other text at a command
  position is Lean's ``expected command`` parse error. After any parse error, parsing resumes at the next
  command keyword wherever it is (inside the same proof too), as Lean's error recovery does.
- statements: integer/natural arithmetic (``+ - * / % ^``, ``(n : Int)`` ascriptions, Nat truncated
  subtraction, Int division Euclidean, or rounding toward zero in the early style as the 2021 Lean), ``= ≠ < >
  ≤ ≥ ∣``, ``∧ ∨ ¬ → ↔``, ``True``/``False``, ``∀``/``∃``, ``Nat.gcd``-like functions, names of
  ``Prop`` definitions and of binders ``(x : Nat) (h : P) {y : Int} [inst : C]``. Types are compared as Lean's
  definitional equality would for these forms: binder names and kinds, ``>``/``<`` notation (``a < b`` is
  ``a + 1 ≤ b`` on Nat and Int), definitions unfolded, closed arithmetic evaluated; Int is not Nat.
  ``example : S := @P`` and ``theorem G : S_a ∧ S_b := ⟨@P_a, @P_b⟩`` print real Lean's ``type mismatch`` /
  ``application type mismatch`` layouts (both types echoed); G depends on the union of the members' axioms.
- tactics: ``decide native_decide rfl omega simp simp_all norm_num linarith nlinarith positivity trivial
  contradiction assumption exact apply intro intros constructor exfalso show have let cases rcases obtain
  nomatch sorry admit skip done first try all_goals any_goals repeat · <;>`` and the message makers: ``trace
  "s"`` (an information message at the tactic, escapes decoded: a proof can print lines that look like other
  messages), ``fail "s"`` (an error at the tactic: s, then the goal), ``dbg_trace "s"`` (stderr), ``sleep N``
  (N ms), and the term ``include_str "PATH"`` (really opens PATH, relative to the source file's folder; a
  mismatch echoes the content as a string literal; ``let x := ...`` values are echoed by ``unsolved goals`` as
  written). Closed statements are evaluated; ``omega``/``linarith``/``simp_all`` judge statements with variables
  on a grid of sample values (unsound in general, fine for tests). ``contradiction``/``simp_all``/``cases h``/
  ``nomatch h`` close any goal when a hypothesis is false or of an empty type (``Empty``, ``PEmpty``, ``Fin 0``,
  ``False``, ``Inhabited Empty``; the real 2021 Lean's ``contradiction`` does not see the last two);
  ``decide`` never reads hypotheses. ``sorry`` warns and adds ``sorryAx``; ``native_decide`` adds
  ``Lean.ofReduceBool``; simp/omega add ``propext``, linarith the three standard axioms. A declaration with an
  error is still added, depending on ``sorryAx``. An unknown tactic is ``unknown tactic`` one column after its
  start (as Lean reports it); the tactics before it run. ``$FAKE_LEAN_NO_TACTICS`` (words) takes tactics away.
- the keyword probe ``example : True := let W := trivial; W`` fails exactly when W is a token: the 2021 Lean's
  identifier-like tokens (measured), plus ``include_str calc nofun opaque import ...`` in the current style,
  Mathlib's commands with a Mathlib header, ``evil_cmd``, and the words in ``$FAKE_LEAN_KEYWORDS``. Leading
  tactic words (trace, fail, decide, exact?, ...) are not tokens in any Lean.
- magic numbers in a theorem's statement: 7777777 hangs, 6666666 crashes (SIGSEGV), 5555555 runs out of memory
  (``INTERNAL PANIC: out of memory`` on stderr, exit 1), 4444444 elaborates fine but is written to the olean
  with ``kernel_ok: false`` (only the kernel replay, fake_lean4checker.py, notices).

Styles: ``early`` prints as the 2021 Lean 4 (information messages bare, no ``--json``, 2021 wording: ``unknown
identifier 'x'``, ``declaration uses 'sorry'`` at the sorry, ``failed to reduce to 'true'``; the ``sorry`` and
``nomatch`` tactics are parse errors there); ``current`` as current releases (information messages bare in
plain output, as real Lean prints them; ``--json``; ``Unknown identifier `x```, ``declaration uses `sorry``` at
the declaration's name); ``infopos`` is ``current`` printing information messages as ``FILE:L:C: info: text``
(the layout of wrappers such as lake).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time

# --- styles, keywords -------------------------------------------------------------------------------------

STYLES = ("early", "current", "infopos")

# Identifier-like tokens of real Lean's token table (measured with the 2021 Lean: `let W := trivial` fails).
# Leading tactic words (decide, trace, fail, exact, simp, omega, ...) are NOT tokens in any Lean: the tactic
# parser category reads them as non-reserved symbols, so `let trace := ...` is fine in real Lean too.
_EARLY_KEYWORDS = set("""
theorem def example abbrev instance structure class inductive axiom axioms constant namespace section end open
variable variables universe universes noncomputable private protected partial unsafe mutual attribute deriving
macro macro_rules syntax elab elab_rules notation infix infixl infixr prefix postfix set_option initialize
builtin_initialize export where extends with at from have show suffices fun λ let in if then else do match by
nomatch return for unless mut try catch finally break continue sorry Type Prop Sort using generalizing rec local
scoped priority dbg_trace panic! assert! unreachable! exists declare_syntax_cat binder_predicate
""".split())
# current releases add these (and dropped the Lean 3 style `constant`, `variables`, `universes`, `axioms`);
# `include_str` and `show_term` are term syntax (tokens), `calc`/`nofun` term keywords, the rest commands
_CURRENT_KEYWORDS = (_EARLY_KEYWORDS - {"constant", "variables", "universes", "axioms"}) | set("""
calc nofun opaque import termination_by decreasing_by include omit run_cmd show_term include_str nonrec
""".split())
# commands and tokens a Mathlib header adds
MATHLIB_KEYWORDS = {"lemma", "alias", "irreducible_def", "assert_not_exists", "library_note", "notation3", "says"}
FAKE_KEYWORDS = {"evil_cmd"}  # a made-up command keyword of this stand-in (logs its text as information)

KNOWN_LIBRARIES = {"Init", "Std", "Lean", "Lake", "Mathlib", "Batteries", "Aesop", "Qq", "ProofWidgets",
                   "Plausible", "ImportGraph", "LeanSearchClient", "Archive", "Counterexamples"}

# command keywords: a token that starts a command wherever it is (outside strings and comments)
STRONG_COMMANDS = {"theorem", "def", "example", "abbrev", "instance", "structure", "class", "inductive", "axiom",
                   "opaque", "namespace", "section", "end", "variable", "universe", "mutual", "attribute",
                   "deriving", "macro", "macro_rules", "syntax", "elab", "elab_rules", "notation", "infix",
                   "infixl", "infixr", "prefix", "postfix", "initialize", "builtin_initialize", "export",
                   "declare_syntax_cat", "import", "noncomputable", "private", "protected", "partial", "unsafe",
                   "nonrec", "@[", "evil_cmd", "#print", "#eval", "#check", "#reduce", "#exit", "#synth",
                   "#guard_msgs", "#help", "#lint", "#find", "#simp", "#norm_num"}
MATHLIB_COMMANDS = {"lemma", "alias", "irreducible_def", "assert_not_exists", "library_note", "notation3"}
# commands that also have term/tactic forms (`open Nat in ...`): commands only at column 0
WEAK_COMMANDS = {"open", "set_option"}
MODIFIERS = {"noncomputable", "private", "protected", "partial", "unsafe", "nonrec", "@["}
DECL_KEYWORDS = {"theorem", "lemma", "def", "example", "abbrev", "instance", "axiom", "opaque", "structure",
                 "class", "inductive"}

STANDARD_AXIOMS = ("propext", "Classical.choice", "Quot.sound")


def keywords(style: str, mathlib: bool = False) -> set[str]:
    found = set(_EARLY_KEYWORDS if style == "early" else _CURRENT_KEYWORDS) | FAKE_KEYWORDS
    if mathlib:
        found |= MATHLIB_KEYWORDS
    found |= set(os.environ.get("FAKE_LEAN_KEYWORDS", "").split())  # a test may add tokens of its own
    return found


def style_from(argv0: str, argv: list[str]) -> tuple[str, list[str]]:
    """The style (``--fake-style=S`` first, then $FAKE_LEAN_STYLE, then the executable's name) and the rest."""
    style = None
    rest = []
    for arg in argv:
        if arg.startswith("--fake-style="):
            style = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    if style is None:
        style = os.environ.get("FAKE_LEAN_STYLE") or None
    if style is None:
        base = os.path.basename(argv0)
        style = "early" if "early" in base else "infopos" if "infopos" in base else "current"
    if style not in STYLES:
        sys.stderr.write(f"fake_lean: unknown style {style!r} (one of {', '.join(STYLES)})\n")
        sys.exit(2)
    return style, rest


# --- strings ----------------------------------------------------------------------------------------------

class LeanSyntaxError(Exception):
    def __init__(self, msg: str, pos: int, end: int | None = None):
        super().__init__(msg)
        self.msg, self.pos, self.end = msg, pos, end


def decode_string(raw: str) -> str:
    """The value of a Lean string literal (with its quotes), escapes decoded as Lean does."""
    body = raw[1:-1]
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        n = body[i + 1] if i + 1 < len(body) else ""
        if n in "\\\"'":
            out.append(n)
            i += 2
        elif n == "n":
            out.append("\n")
            i += 2
        elif n == "t":
            out.append("\t")
            i += 2
        elif n == "r":
            out.append("\r")
            i += 2
        elif n == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", body[i + 2:i + 4]):
            out.append(chr(int(body[i + 2:i + 4], 16)))
            i += 4
        elif n == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2:i + 6]):
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        elif n == "\n":  # a string gap: backslash, newline, then whitespace is skipped
            i += 2
            while i < len(body) and body[i] in " \t\r\n":
                i += 1
        else:
            raise ValueError("invalid escape sequence")
    return "".join(out)


def quote_string(s: str) -> str:
    """Lean's ``String.quote``: how an elaborated string literal is shown in a message."""
    out = ['"']
    for c in s:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 32 or ord(c) == 127:
            out.append("\\x%02x" % ord(c))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


# --- tokens -----------------------------------------------------------------------------------------------

class Tok:
    __slots__ = ("kind", "text", "start", "end", "line", "col", "bol")

    def __init__(self, kind, text, start, end, line, col, bol):
        self.kind, self.text, self.start, self.end = kind, text, start, end
        self.line, self.col, self.bol = line, col, bol

    def __repr__(self):
        return f"Tok({self.kind},{self.text!r},{self.line}:{self.col})"


_SYMBOLS = sorted([":=", "<;>", "<->", "->", "<=", ">=", "!=", "==", "&&", "||", "..", "::", "=>", "<|", "|>",
                   "@[", "++", "^^"], key=len, reverse=True)


def _id_first(c: str) -> bool:
    return c.isalpha() and c not in "λΠΣ" or c == "_" or 0x2100 <= ord(c) <= 0x214F


def _id_rest(c: str) -> bool:
    return (c.isalnum() and c not in "λΠΣ") or c in "_'!?" or 0x2100 <= ord(c) <= 0x214F \
        or 0x2080 <= ord(c) <= 0x209C or 0x1D62 <= ord(c) <= 0x1D6A


def tokenize(text: str) -> list[Tok]:
    """Lean-like tokens: identifiers (dotted, with ?/! suffixes), numbers, strings, `#cmd`, symbols; comments and
    whitespace skipped. A bad string is a LeanSyntaxError."""
    toks: list[Tok] = []
    i, n = 0, len(text)
    line, line_start = 1, 0
    bol = True
    while i < n:
        c = text[i]
        if c == "\n":
            i += 1
            line, line_start, bol = line + 1, i, True
            continue
        if c in " \t\r":
            i += 1
            continue
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/-", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/-", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("-/", j):
                    depth, j = depth - 1, j + 2
                else:
                    if text[j] == "\n":
                        line, line_start = line + 1, j + 1
                    j += 1
            i = j
            continue
        start, col = i, i - line_start
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                if text[j] == "\\":
                    j += 1
                j += 1
            if j >= n:
                raise LeanSyntaxError("unterminated string literal", start)
            j += 1
            raw = text[i:j]
            try:
                decode_string(raw)
            except ValueError as e:
                raise LeanSyntaxError(str(e), start) from None
            kind, i = "str", j
        elif c.isdigit():
            m = re.compile(r"0[xX][0-9a-fA-F]+|0[bB][01]+|\d+(\.\d+)?([eE][-+]?\d+)?").match(text, i)
            kind, i = "num", m.end()
        elif c == "«" or _id_first(c):
            j = i
            while True:
                if j < n and text[j] == "«":
                    k = text.find("»", j)
                    j = n if k < 0 else k + 1
                else:
                    j += 1
                    while j < n and _id_rest(text[j]):
                        j += 1
                if j + 1 < n and text[j] == "." and (_id_first(text[j + 1]) or text[j + 1] == "«"):
                    j += 1
                    continue
                break
            kind, i = ("sym" if text[start:j] == "_" else "id"), j
        elif c == "#" and i + 1 < n and text[i + 1].isalpha():
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            kind, i = "sym", j
        else:
            for s in _SYMBOLS:
                if text.startswith(s, i):
                    i += len(s)
                    break
            else:
                i += 1
            kind = "sym"
        toks.append(Tok(kind, text[start:i], start, i, line, col, bol))
        bol = False
    return toks


# --- errors of elaboration ----------------------------------------------------------------------------------

class ElabError(Exception):
    """An error message at a token range (first token, last token)."""

    def __init__(self, msg: str, first: Tok, last: Tok | None = None):
        super().__init__(msg)
        self.msg, self.first, self.last = msg, first, last or first


class UnknownIdent(ElabError):
    pass


# --- terms ------------------------------------------------------------------------------------------------

class N:
    """A parsed term: ``tag`` and ``args``; ``first``/``last`` are its first and last tokens."""
    __slots__ = ("tag", "args", "first", "last")

    def __init__(self, tag, args, first, last=None):
        self.tag, self.args, self.first, self.last = tag, args, first, last or first

    def __repr__(self):
        return f"N({self.tag}, {self.args!r})"


# op: (precedence, min precedence of the left operand, of the right operand)
BINOPS = {"↔": (20, 21, 21), "→": (25, 26, 25), "∨": (30, 31, 30), "∧": (35, 36, 35),
          "=": (50, 51, 51), "≠": (50, 51, 51), "<": (50, 51, 51), ">": (50, 51, 51), "≤": (50, 51, 51),
          "≥": (50, 51, 51), "∣": (50, 51, 51), "==": (50, 51, 51),
          "+": (65, 65, 66), "-": (65, 65, 66), "*": (70, 70, 71), "/": (70, 70, 71), "%": (70, 70, 71),
          "^": (75, 76, 75)}
OP_ALIASES = {"->": "→", "<->": "↔", "<=": "≤", ">=": "≥", "!=": "≠"}
OPENERS = {"(": ")", "[": "]", "{": "}", "⟨": "⟩", "⦃": "⦄", "@[": "]"}
CLOSERS = {v for v in OPENERS.values()}
TERM_KEYWORDS = {"by", "fun", "λ", "let", "have", "show", "sorry", "nomatch", "dbg_trace", "Type", "Prop", "Sort",
                 "include_str", "if", "match", "do", "calc", "nofun", "suffices", "panic!", "assert!",
                 "unreachable!"}


def match_brackets(toks: list[Tok]) -> dict[int, int]:
    """Index of each bracket's partner (unbalanced brackets have none)."""
    found: dict[int, int] = {}
    stack: list[int] = []
    for i, t in enumerate(toks):
        if t.kind != "sym":
            continue
        if t.text in OPENERS:
            stack.append(i)
        elif t.text in CLOSERS:
            while stack and OPENERS[toks[stack[-1]].text] != t.text:
                stack.pop()
            if stack:
                j = stack.pop()
                found[i], found[j] = j, i
    return found


EARLY = [False]  # the style of this process's messages (set by the Elaborator)


class Parser:
    """Pratt parser of Lean terms over toks[i:end]."""

    def __init__(self, toks: list[Tok], i: int, end: int, kw: set[str], pairs: dict[int, int]):
        self.toks, self.i, self.end, self.kw, self.pairs = toks, i, end, kw, pairs

    def peek(self, k: int = 0) -> Tok | None:
        j = self.i + k
        return self.toks[j] if j < self.end else None

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def eof_pos(self) -> int:
        return self.toks[self.end - 1].end if self.end > 0 else 0

    def fail(self, what: str, t: Tok | None = None):
        t = t if t is not None else self.peek()
        if t is None and self.end < len(self.toks):
            t = self.toks[self.end]  # cut short by the next command's keyword: Lean reports it at that token
        if t is None:
            raise LeanSyntaxError(f"unexpected end of input; expected {what}", self.eof_pos())
        if EARLY[0]:  # the 2021 Lean does not name the token it did not expect
            raise LeanSyntaxError(f"expected {what}", t.start, t.end)
        if t.kind == "id" and t.text not in self.kw:
            raise LeanSyntaxError(f"unexpected identifier; expected {what}", t.start, t.end)
        raise LeanSyntaxError(f"unexpected token '{t.text}'; expected {what}", t.start, t.end)

    def expect(self, text: str) -> Tok:
        t = self.peek()
        if t is None or t.text != text:
            self.fail(f"'{text}'")
        return self.next()

    def sub(self, i: int, end: int) -> "Parser":
        return Parser(self.toks, i, end, self.kw, self.pairs)

    def closing(self) -> int:
        """Index of the partner of the opening bracket at self.i (an error when unbalanced)."""
        j = self.pairs.get(self.i)
        if j is None or j >= self.end:
            t = self.peek()
            raise LeanSyntaxError(f"unexpected end of input; expected '{OPENERS[t.text]}'", self.eof_pos())
        return j

    def op(self) -> str | None:
        t = self.peek()
        if t is None or t.kind != "sym":
            return None
        text = OP_ALIASES.get(t.text, t.text)
        return text if text in BINOPS else None

    # expressions
    def expr(self, minprec: int = 0) -> N:
        left = self.prefix()
        while True:
            op = self.op()
            if op is None:
                return left
            prec, lmin, rmin = BINOPS[op]
            if prec < minprec:
                return left
            self.next()
            right = self.expr(rmin)
            left = N("bin", (op, left, right), left.first, right.last)
            if prec == 50 and self.op() in BINOPS and BINOPS[self.op()][0] == 50:
                return left

    def starts_arg(self) -> bool:
        t = self.peek()
        if t is None:
            return False
        if t.kind in ("num", "str"):
            return True
        if t.kind == "id":
            return t.text not in self.kw or t.text in ("Type", "Prop")
        return t.text in ("(", "⟨", "@", "_", "↑")

    def prefix(self) -> N:
        t = self.peek()
        if t is None:
            self.fail("term")
        text = t.text
        if text == "¬":
            self.next()
            arg = self.expr(40)
            return N("not", (arg,), t, arg.last)
        if text == "-" and t.kind == "sym":
            self.next()
            arg = self.expr(75)
            return N("neg", (arg,), t, arg.last)
        if text in ("∀", "∃", "Π", "∑", "∏"):
            self.next()
            binders = self.binders(stop=(",",))
            self.expect(",")
            body = self.expr(0)
            return N("pi" if text in ("∀", "Π") else "ex" if text == "∃" else "big", (binders, body), t, body.last)
        if text in ("fun", "λ"):
            self.next()
            binders = self.binders(stop=("=>", "↦"))
            if self.peek() is None or self.peek().text not in ("=>", "↦"):
                self.fail("'=>'")
            self.next()
            body = self.expr(0)
            return N("fun", (binders, body), t, body.last)
        if text == "by":
            self.next()
            start, self.i = self.i, self.end
            return N("by", (start, self.end), t, self.toks[self.end - 1])
        if text in ("let", "have"):
            return self.let_have()
        if text == "show":
            self.next()
            ty = self.expr(0)
            nxt = self.peek()
            if nxt is not None and nxt.text == "from":
                self.next()
                e = self.expr(0)
            elif nxt is not None and nxt.text == "by":
                e = self.expr(0)
            else:
                self.fail("'from' or 'by'")
            return N("show", (ty, e), t, e.last)
        if text == "sorry":
            self.next()
            return N("sorry", (), t)
        if text == "nomatch":
            self.next()
            e = self.expr(0)
            return N("nomatch", (e,), t, e.last)
        if text == "dbg_trace":
            self.next()
            s = self.peek()
            if s is None or s.kind != "str":
                self.fail("string literal")
            self.next()
            if self.peek() is not None and self.peek().text == ";":
                self.next()
            body = self.expr(0)
            return N("dbg_trace", (decode_string(s.text), body), t, body.last)
        if text == "include_str" and (self.peek(1) is not None and self.peek(1).kind in ("str",)
                                      or "include_str" in self.kw):
            self.next()
            arg = self.expr(1024)
            return N("incl", (arg,), t, arg.last)
        head = self.atom()
        args = []
        while self.starts_arg():
            args.append(self.atom())
        if args:
            return N("app", (head, args), head.first, args[-1].last)
        return head

    def atom(self) -> N:
        t = self.peek()
        if t is None:
            self.fail("term")
        if t.kind == "num":
            self.next()
            value = int(t.text, 0) if re.fullmatch(r"\d+|0[xX][0-9a-fA-F]+|0[bB][01]+", t.text) else None
            return N("num", (value, t.text), t)
        if t.kind == "str":
            self.next()
            return N("str", (t.text, decode_string(t.text)), t)
        if t.kind == "id":
            if t.text in self.kw and t.text not in ("Type", "Prop", "Sort"):
                if t.text in ("by", "sorry", "nomatch", "fun", "λ", "let", "have", "show"):
                    return self.prefix()
                self.fail("term")
            self.next()
            return N("id", (t.text,), t)
        if t.text == "@":
            self.next()
            name = self.peek()
            if name is None or name.kind != "id" or name.text in self.kw:
                self.fail("identifier")
            self.next()
            return N("at", (name.text,), t, name)
        if t.text == "_":
            self.next()
            return N("hole", (), t)
        if t.text == "↑":
            self.next()
            arg = self.atom()
            return N("coe", (arg,), t, arg.last)
        if t.text == "(":
            j = self.closing()
            inner = self.sub(self.i + 1, j)
            if inner.peek() is None:
                self.i = j + 1
                return N("unit", (), t, self.toks[j])
            e = inner.expr(0)
            nxt = inner.peek()
            if nxt is not None and nxt.text == ":":
                inner.next()
                ty = inner.expr(0)
                e = N("asc", (e, ty), t, self.toks[j])
            elif nxt is not None and nxt.text == ",":
                elems = [e]
                while inner.peek() is not None and inner.peek().text == ",":
                    inner.next()
                    elems.append(inner.expr(0))
                e = N("tuple", (elems,), t, self.toks[j])
            else:
                e = N("paren", (e,), t, self.toks[j])
            if inner.peek() is not None:
                inner.fail("')'")
            self.i = j + 1
            dot, field = self.peek(), self.peek(1)
            if dot is not None and dot.text == "." and dot.start == self.toks[j].end and field is not None \
                    and field.kind == "id" and field.start == dot.end:
                self.i += 2
                return N("proj", (e, field.text), t, field)
            return e
        if t.text == "⟨":
            j = self.closing()
            inner = self.sub(self.i + 1, j)
            elems = []
            while inner.peek() is not None:
                elems.append(inner.expr(0))
                if inner.peek() is not None:
                    inner.expect(",")
            self.i = j + 1
            return N("anon", (elems,), t, self.toks[j])
        if t.text == "by" or t.text in TERM_KEYWORDS:
            return self.prefix()
        self.fail("term")

    def let_have(self) -> N:
        t = self.next()
        name = self.peek()
        name_tok = None
        if name is not None and name.kind == "id" and name.text in self.kw:
            raise LeanSyntaxError("expected identifier or term" if EARLY[0] else
                                  f"unexpected token '{name.text}'; expected identifier", name.start, name.end)
        if name is not None and (name.kind == "id" or name.text == "_"):
            name_tok = self.next()
        binders = self.binders(stop=(":", ":="))
        ty = None
        if self.peek() is not None and self.peek().text == ":":
            self.next()
            ty = self.expr(0)
        if self.peek() is None or self.peek().text != ":=":
            self.fail("':='" if t.text == "let" else "':=' or '|'")
        self.next()
        value = self.expr(0)
        nxt = self.peek()
        if nxt is not None and nxt.text == ";":
            self.next()
        elif nxt is not None and not nxt.bol:
            self.fail("';' or line break")
        if self.peek() is None:
            # a `let`/`have` without a body (the end of a tactic)
            return N(t.text, (name_tok, binders, ty, value, None), t, value.last)
        body = self.expr(0)
        return N(t.text, (name_tok, binders, ty, value, body), t, body.last)

    def binders(self, stop: tuple[str, ...]) -> list[tuple]:
        """Binder groups up to one of ``stop``: [(name, type or None, bracket, name token)]."""
        found = []
        while True:
            t = self.peek()
            if t is None or t.text in stop:
                return found
            if t.text in ("(", "{", "[", "⦃", "⟨"):
                j = self.closing()
                inner = self.sub(self.i + 1, j)
                names = []
                if t.text == "[":
                    if inner.peek(1) is not None and inner.peek(1).text == ":" and inner.peek().kind == "id":
                        names.append(inner.next())
                        inner.next()
                    ty = inner.expr(0)
                    found.append((names[0].text if names else None, ty, "[", names[0] if names else t))
                else:
                    while inner.peek() is not None and (inner.peek().kind == "id" or inner.peek().text == "_"):
                        nt = inner.next()
                        if nt.text in self.kw:
                            inner.fail("identifier", nt)
                        names.append(nt)
                    if not names:
                        inner.fail("identifier")
                    ty = None
                    if inner.peek() is not None and inner.peek().text == ":":
                        inner.next()
                        ty = inner.expr(0)
                    if inner.peek() is not None and inner.peek().text == ":=":  # a default value
                        inner.next()
                        inner.expr(0)
                    if inner.peek() is not None:
                        inner.fail("')'")
                    for nt in names:
                        found.append((nt.text, ty, t.text, nt))
                self.i = j + 1
            elif t.kind == "id" or t.text == "_":
                if t.text in self.kw:
                    self.fail("identifier" if not found else f"'{stop[0]}'")
                names = []
                while self.peek() is not None and (self.peek().kind == "id" or self.peek().text == "_") \
                        and self.peek().text not in self.kw:
                    names.append(self.next())
                ty = None
                if self.peek() is not None and self.peek().text == ":" and ":" not in stop:
                    self.next()
                    ty = self.expr(0)
                for nt in names:
                    found.append((nt.text, ty, "(", nt))
            else:
                self.fail(f"'{stop[0]}'" if found else "identifier")


# --- meaning of terms ---------------------------------------------------------------------------------------

NUMTYPES = {"Nat": "Nat", "ℕ": "Nat", "Int": "Int", "ℤ": "Int", "Rat": "Rat", "ℚ": "Rat", "Real": "Real",
            "ℝ": "Real", "Complex": "Complex", "ℂ": "Complex"}
_NUMORDER = {"Nat": 0, "Int": 1, "Rat": 2, "Real": 3, "Complex": 4}
MATHLIB_ONLY = {"ℝ", "ℚ", "ℂ", "Real", "Rat", "Complex", "Even", "Odd", "Nat.Prime", "Set", "Finset"}
TYPE_NAMES = {"Nat", "ℕ", "Int", "ℤ", "Rat", "ℚ", "Real", "ℝ", "Complex", "ℂ", "Empty", "PEmpty", "Bool",
              "String", "Unit", "PUnit", "Char", "Prop", "Type", "Sort", "Float"}
TYPE_CTORS = {"Fin", "List", "Option", "Array", "Set", "Finset", "Inhabited", "Nonempty", "Decidable", "IsEmpty",
              "Subsingleton", "Unique"}
PROP_CONSTS = {"True", "False"}
# functions the judge evaluates on closed arguments: name -> (result type or None: the arguments' type, arity)
FUNCTIONS = {"Nat.succ": ("Nat", 1), "Nat.pred": ("Nat", 1), "Nat.gcd": ("Nat", 2), "Nat.lcm": ("Nat", 2),
             "Nat.min": ("Nat", 2), "Nat.max": ("Nat", 2), "min": (None, 2), "max": (None, 2),
             "Int.natAbs": ("Nat", 1), "Int.toNat": ("Nat", 1), "Nat.factorial": ("Nat", 1),
             "Int.emod": ("Int", 2), "Int.ediv": ("Int", 2), "Nat.sqrt": ("Nat", 1), "Int.gcd": ("Nat", 2)}
PREDICATES = {"Even": 1, "Odd": 1, "Nat.Prime": 1}
PROOF_NAMES = {"trivial", "rfl", "True.intro", "absurd", "False.elim", "Empty.elim", "PEmpty.elim", "id",
               "Fin.elim0", "default", "Classical.byContradiction", "Nat.lt_irrefl", "Nat.le_refl", "Eq.refl"}
EMPTY_TYPES = {"Empty", "PEmpty", "False", "(app Fin Nat:0)", "(app Inhabited Empty)", "(app Inhabited PEmpty)",
               "(app Nonempty Empty)", "(app Nonempty PEmpty)", "(app IsEmpty Unit)"}


class NotEvaluable(Exception):
    pass


def numjoin(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if _NUMORDER.get(a, 0) >= _NUMORDER.get(b, 0) else b


def _fraction():
    import fractions
    return fractions.Fraction


def arith(op: str, T: str, a, b):
    """Lean's value of ``a op b`` at numeric type T (Nat: truncated subtraction; Int: Euclidean division, or
    division rounding toward zero in the early style, as the 2021 Lean)."""
    if op == "+":
        return a + b
    if op == "*":
        return a * b
    if op == "-":
        return max(a - b, 0) if T == "Nat" else a - b
    if op == "/":
        if b == 0:
            return 0
        if T in ("Real", "Rat", "Complex"):
            return _fraction()(a) / b
        if T == "Nat":
            return a // b
        if EARLY[0]:  # the 2021 Lean's Int division rounds toward zero (Int.div); current: Euclidean (ediv)
            q = abs(a) // abs(b)
            return q if (a >= 0) == (b > 0) else -q
        r = a % abs(b)
        return (a - r) // b
    if op == "%":
        if b == 0:
            return a
        if T == "Nat":
            return a % b
        if EARLY[0]:
            return a - b * arith("/", T, a, b)
        return a % abs(b)
    if op == "^":
        if b < 0 or int(b) != b:
            raise NotEvaluable()
        if abs(a) > 1 and b * max(abs(a), 2).bit_length() > 200_000:
            raise NotEvaluable()  # too large to compute here (Lean would grind too)
        return a ** int(b)
    raise NotEvaluable()


def call_function(name: str, args: list):
    import math
    if any(not isinstance(a, int) for a in args):
        raise NotEvaluable()
    if name == "Nat.succ":
        return args[0] + 1
    if name == "Nat.pred":
        return max(args[0] - 1, 0)
    if name in ("Nat.gcd", "Int.gcd"):
        return math.gcd(*args)
    if name == "Nat.lcm":
        return abs(args[0] * args[1]) // math.gcd(*args) if all(args) else 0
    if name in ("Nat.min", "min"):
        return min(args)
    if name in ("Nat.max", "max"):
        return max(args)
    if name == "Int.natAbs":
        return abs(args[0])
    if name == "Int.toNat":
        return max(args[0], 0)
    if name == "Nat.factorial":
        if args[0] > 3000:
            raise NotEvaluable()
        return math.factorial(args[0])
    if name == "Int.emod":
        return arith("%", "Int", *args)
    if name == "Int.ediv":
        return arith("/", "Int", *args)
    if name == "Nat.sqrt":
        return math.isqrt(args[0])
    raise NotEvaluable()


def call_predicate(name: str, args: list) -> bool:
    if any(not isinstance(a, int) for a in args):
        raise NotEvaluable()
    if name == "Even":
        return args[0] % 2 == 0
    if name == "Odd":
        return args[0] % 2 == 1
    if name == "Nat.Prime":
        n = args[0]
        return n >= 2 and all(n % k for k in range(2, int(n ** 0.5) + 1))
    raise NotEvaluable()


class Hyp:
    """A local hypothesis or variable: ``ty`` (a term) read with the names map ``nm``; ``kind``: var (of a
    type), prop (a proof), inst (an instance), let (with a value)."""
    __slots__ = ("uid", "name", "ty", "nm", "kind", "value", "value_raw", "ty_text", "canon")
    counter = 0

    def __init__(self, name, ty, nm, kind, value=None, value_raw=None, ty_text=None, canon=None):
        Hyp.counter += 1
        self.uid = Hyp.counter
        self.name, self.ty, self.nm, self.kind = name, ty, nm, kind
        self.value, self.value_raw, self.ty_text = value, value_raw, ty_text
        self.canon = canon  # a `let` of a proof: the canonical form of what it proves


class Scope:
    """What names mean while reading a term: bound variables (innermost last), local hypotheses by name."""
    __slots__ = ("bound", "nm")

    def __init__(self, nm: dict, bound: tuple = ()):
        self.nm, self.bound = nm, bound

    def bind(self, name, ty, sc_ty) -> "Scope":
        return Scope(self.nm, self.bound + ((name, ty, sc_ty),))


# --- messages ---------------------------------------------------------------------------------------------

class Msg:
    __slots__ = ("severity", "line", "col", "eline", "ecol", "data")

    def __init__(self, severity, line, col, eline, ecol, data):
        self.severity, self.line, self.col, self.eline, self.ecol, self.data = \
            severity, line, col, eline, ecol, data

    def __repr__(self):
        return f"Msg({self.severity}, {self.line}:{self.col}, {self.data!r})"


def name_key(name: str):
    """Lean's ``Name.lt`` order: fewer components first, then component by component."""
    parts = name.split(".")
    return (len(parts), parts)


def axioms_report(name: str, axioms) -> str:
    """``#print axioms`` text, a long list wrapped as Lean's formatter does (width 120, one space indent)."""
    axioms = sorted(set(axioms), key=name_key)
    if not axioms:
        return f"'{name}' does not depend on any axioms"
    line = f"'{name}' depends on axioms: [{', '.join(axioms)}]"
    if len(line) <= 120:
        return line
    return f"'{name}' depends on axioms: [" + ",\n ".join(axioms) + "]"


class Wording:
    """Message texts of the early (2021) and current Lean."""

    def __init__(self, style: str):
        self.early = style == "early"

    def q(self, name: str) -> str:
        return f"'{name}'" if self.early else f"`{name}`"

    def unknown_identifier(self, name):
        return f"unknown identifier '{name}'" if self.early else f"Unknown identifier `{name}`"

    def unknown_constant(self, name):
        return f"unknown constant '{name}'" if self.early else f"Unknown constant `{name}`"

    def uses_sorry(self):
        return "declaration uses 'sorry'" if self.early else "declaration uses `sorry`"

    def decide_false(self, prop):
        if self.early:
            return "failed to reduce to 'true'\n  false"
        return f"tactic 'decide' proved that the proposition\n  {prop}\nis false"

    def decide_free(self, prop):
        if self.early:
            return f"expected type must not contain free or meta variables\n  {prop}"
        return (f"expected type must not contain free variables\n  {prop}\n"
                "Use the '+revert' option to automatically cleanup and revert free variables.")

    def decide_undecidable(self, prop):
        head = "failed to synthesize instance" if self.early else "failed to synthesize"
        return f"{head}\n  Decidable ({prop})"

    def no_goals(self):
        return "no goals to be proved" if self.early else "No goals to be solved"

    def expected_command(self, tok: Tok, kw: set[str]):
        if self.early:
            return "expected command"
        if tok.kind == "id" and tok.text not in kw:
            return "unexpected identifier; expected command"
        return f"unexpected token '{tok.text}'; expected command"

    def missing_module(self, module, search_path, cwd):
        root = module.split(".")[0]
        if self.early:
            return f"unknown package '{root}'\nYou might need to open '{cwd}' as a workspace in your editor"
        return (f"unknown module prefix '{root}'\n\nNo directory '{root}' or file '{root}.olean' in the search "
                "path entries:\n" + "\n".join(search_path))

    def fail_plain(self):
        return "tactic 'fail' failed" if self.early else "Failed: `fail` tactic was invoked"


def type_mismatch(term: str, has: str, expected: str, sort: str = "Prop") -> str:
    return f"type mismatch\n  {term}\nhas type\n  {has} : {sort}\nbut is expected to have type\n  {expected} : Prop"


# --- fake oleans --------------------------------------------------------------------------------------------

OLEAN_FORMAT = "fakelean-olean"


def lean_path() -> list[str]:
    return [p for p in os.environ.get("LEAN_PATH", "").split(os.pathsep) if p]


def find_module(module: str, search_path: list[str]) -> str | None:
    rel = module.replace(".", os.sep) + ".olean"
    for folder in search_path:
        path = os.path.join(folder, rel)
        if os.path.isfile(path):
            return path
    return None


def read_olean(path: str) -> dict:
    """A fake olean (ValueError when the file is not one)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"failed to read file '{path}', invalid header") from None
    if not isinstance(obj, dict) or obj.get("format") != OLEAN_FORMAT:
        raise ValueError(f"failed to read file '{path}', invalid header")
    return obj


def write_olean(path: str, module: str, imports: list[str], decls: list[dict]) -> None:
    obj = {"format": OLEAN_FORMAT, "version": 1, "module": module, "imports": imports, "declarations": decls}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


# --- goals --------------------------------------------------------------------------------------------------

class Goal:
    __slots__ = ("hyps", "target", "nm")

    def __init__(self, hyps: list[Hyp], target: N, nm: dict):
        self.hyps, self.target, self.nm = hyps, target, nm

    def with_target(self, target: N, nm: dict | None = None) -> "Goal":
        return Goal(self.hyps, target, self.nm if nm is None else nm)

    def add(self, hyp: Hyp, rename: str | None = None) -> "Goal":
        nm = dict(self.nm)
        nm[hyp.name] = hyp
        if rename:
            nm[rename] = hyp
        return Goal(self.hyps + [hyp], self.target, nm)

    @property
    def sc(self) -> Scope:
        return Scope(self.nm)


def _bin(op, a, b):
    return N("bin", (op, a, b), a.first, b.last)


def _id(name, tok):
    return N("id", (name,), tok)


# --- the elaborator -----------------------------------------------------------------------------------------

KNOWN_TACTICS = {
    "decide", "rfl", "omega", "simp", "simp_all", "simp_arith", "norm_num", "linarith", "nlinarith", "positivity",
    "trivial", "contradiction", "assumption", "exact", "apply", "refine", "exact_mod_cast", "intro", "intros",
    "rintro", "constructor", "exfalso", "show", "have", "let", "cases", "rcases", "obtain", "nomatch", "sorry",
    "admit", "native_decide", "skip", "done", "first", "try", "all_goals", "any_goals", "repeat", "focus", "case",
    "next", "trace", "fail", "sleep", "dbg_trace", "ring", "ring_nf", "tauto", "aesop", "left", "right",
    "and_intros", "split_ands", "induction", "subst", "injection", "rw", "rewrite", "unfold", "calc", "use",
    "exists", "field_simp", "push_cast", "norm_cast", "nofun", "exact?", "apply?", "decide?", "simp?",
    "trace_state", "by_cases", "by_contra", "specialize", "iterate", "change", "gcongr", "bound",
}
NOARG_CLOSERS = {"decide", "rfl", "omega", "simp", "simp_all", "simp_arith", "norm_num", "linarith", "nlinarith",
                 "positivity", "trivial", "contradiction", "assumption", "native_decide", "ring", "ring_nf",
                 "tauto", "aesop", "field_simp", "push_cast", "norm_cast"}
SIMP_LIKE = {"simp", "simp_arith", "norm_num", "ring", "ring_nf", "field_simp", "push_cast", "norm_cast"}
ARITH_LIKE = {"omega", "linarith", "nlinarith", "positivity"}
TACTIC_AXIOMS = {"simp": ("propext",), "simp_all": ("propext",), "simp_arith": ("propext",),
                 "norm_num": ("propext",), "omega": ("propext",), "ring": ("propext",),
                 "linarith": STANDARD_AXIOMS, "nlinarith": STANDARD_AXIOMS, "positivity": STANDARD_AXIOMS,
                 "aesop": STANDARD_AXIOMS, "tauto": STANDARD_AXIOMS}
MAGIC_HANG, MAGIC_SEGV, MAGIC_OOM, MAGIC_KERNEL = "7777777", "6666666", "5555555", "4444444"


class Elaborator:
    """Runs one file (or one REPL command) against an environment of declarations."""

    def __init__(self, text: str, *, style: str, env: dict, module: str, file_label: str, src_dir: str,
                 mathlib: bool = False, on_command=None, repl: bool = False, next_proof_state=None):
        self.text, self.style, self.env, self.module = text, style, env, module
        self.file_label, self.src_dir, self.mathlib, self.repl = file_label, src_dir, mathlib, repl
        self.on_command = on_command or (lambda: None)
        self.next_proof_state = next_proof_state or (lambda: 0)
        self.words = Wording(style)
        EARLY[0] = style == "early"
        self.kw = keywords(style, mathlib)
        self.msgs: list[Msg] = []
        self.sorries: list[dict] = []
        self.own: list[str] = []  # declarations added here, in order
        self.ns: list[tuple[str, str]] = []  # (kind, name) of namespace/section blocks
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.toks: list[Tok] = []
        self.pairs: dict[int, int] = {}
        self.cur: dict = {}
        self.imports: list[str] = []
        # a test may take tactics away (then `unknown tactic`, as a Lean without them says)
        self.missing_tactics = set(os.environ.get("FAKE_LEAN_NO_TACTICS", "").split())

    # positions and messages
    def lc(self, offset: int) -> tuple[int, int]:
        lo, hi = 0, len(self.line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - self.line_starts[lo]

    def log(self, severity: str, start: int, end: int | None, data: str) -> None:
        line, col = self.lc(start)
        eline, ecol = self.lc(max(end, start)) if end is not None else (None, None)
        self.msgs.append(Msg(severity, line, col, eline, ecol, data))

    def log_tok(self, severity: str, first: Tok, last: Tok | None, data: str) -> None:
        self.log(severity, first.start, (last or first).end, data)

    def error(self, e: ElabError) -> None:
        self.log_tok("error", e.first, e.last, e.msg)
        if self.cur is not None:
            self.cur["error"] = True

    def syntax_error(self, e: LeanSyntaxError) -> None:
        self.log("error", e.pos, e.end, e.msg)  # some parse errors have no end position (none in JSON)

    @property
    def has_errors(self) -> bool:
        return any(m.severity == "error" for m in self.msgs)

    # names
    def qualify(self, name: str) -> str:
        prefix = ".".join(n for k, n in self.ns if k == "namespace" and n)
        return f"{prefix}.{name}" if prefix else name

    def find_decl(self, name: str) -> dict | None:
        parts = [n for k, n in self.ns if k == "namespace" and n]
        while True:
            full = ".".join(parts + [name])
            if full in self.env:
                return self.env[full]
            if not parts:
                return None
            parts.pop()

    def builtin(self, name: str) -> bool:
        if name in MATHLIB_ONLY and not self.mathlib:
            return False
        return name in TYPE_NAMES or name in TYPE_CTORS or name in PROP_CONSTS or name in FUNCTIONS \
            or name in PREDICATES or name in PROOF_NAMES or name in MATHLIB_ONLY

    def resolve(self, name: str, sc: Scope):
        for k in range(len(sc.bound) - 1, -1, -1):
            if sc.bound[k][0] == name:
                return ("bvar", len(sc.bound) - 1 - k, sc.bound[k])
        h = sc.nm.get(name)
        if h is not None:
            return ("hyp", h)
        d = self.find_decl(name)
        if d is not None:
            return ("decl", d)
        if self.builtin(name):
            return ("builtin", name)
        return None

    def unknown(self, name: str, tok: Tok):
        raise UnknownIdent(self.words.unknown_identifier(name), tok)

    # types
    def numtype_of_type(self, ty: N | None) -> str | None:
        if ty is None:
            return None
        if ty.tag == "paren":
            return self.numtype_of_type(ty.args[0])
        if ty.tag == "id":
            return NUMTYPES.get(ty.args[0])
        return None

    def is_type(self, ty: N | None) -> bool:
        if ty is None:
            return True
        if ty.tag == "paren":
            return self.is_type(ty.args[0])
        if ty.tag == "id":
            return ty.args[0] in TYPE_NAMES
        if ty.tag == "app" and ty.args[0].tag == "id":
            return ty.args[0].args[0] in TYPE_CTORS
        return False

    def hyp_kind(self, ty: N | None, bracket: str) -> str:
        if bracket == "[":
            return "inst"
        return "var" if self.is_type(ty) else "prop"

    def ntype(self, node: N, sc: Scope) -> str | None:
        tag = node.tag
        if tag == "paren":
            return self.ntype(node.args[0], sc)
        if tag == "asc":
            return self.numtype_of_type(node.args[1]) or self.ntype(node.args[0], sc)
        if tag == "id":
            r = self.resolve(node.args[0], sc)
            if r is None:
                return None
            if r[0] == "bvar":
                return self.numtype_of_type(r[2][1])
            if r[0] == "hyp":
                h = r[1]
                if h.kind in ("let", "subst") and h.value is not None:
                    return self.ntype(h.value, Scope(h.nm))
                return self.numtype_of_type(h.ty)
            return None
        if tag == "bin" and node.args[0] in "+-*/%^":
            if node.args[0] == "^":
                return self.ntype(node.args[1], sc)
            return numjoin(self.ntype(node.args[1], sc), self.ntype(node.args[2], sc))
        if tag == "neg":
            return numjoin(self.ntype(node.args[0], sc), "Int")
        if tag == "app" and node.args[0].tag == "id" and node.args[0].args[0] in FUNCTIONS:
            result = FUNCTIONS[node.args[0].args[0]][0]
            if result is not None:
                return result
            found = None
            for a in node.args[1]:
                found = numjoin(found, self.ntype(a, sc))
            return found
        return None

    # canonical forms (definitional equality up to notation, binder names and closed arithmetic)
    def carith(self, node: N, T: str, sc: Scope):
        tag = node.tag
        if tag == "num":
            v = node.args[0]
            if v is None:
                return None, f"{T}:{node.args[1]}"
            return v, f"{T}:{v}"
        if tag == "paren":
            return self.carith(node.args[0], T, sc)
        if tag == "asc":
            T2 = self.numtype_of_type(node.args[1])
            if T2 is None:
                self.ctype(node.args[1], sc)
                return None, f"(asc {self.cany(node.args[0], sc)})"
            v, c = self.carith(node.args[0], T2, sc)
            if T2 == T:
                return v, c
            return (v, f"{T}:{v}") if v is not None else (None, f"(coe {T} {c})")
        if tag == "coe":
            return self.carith(node.args[0], T, sc)
        if tag == "id":
            name = node.args[0]
            r = self.resolve(name, sc)
            if r is None:
                self.unknown(name, node.first)
            if r[0] == "bvar":
                vt = self.numtype_of_type(r[2][1])
                ref = f"#{r[1]}"
                return None, ref if vt in (None, T) else f"(coe {T} {ref})"
            if r[0] == "hyp":
                h = r[1]
                if h.kind in ("let", "subst") and h.value is not None:
                    return self.carith(h.value, T, Scope(h.nm))
                vt = self.numtype_of_type(h.ty)
                ref = f"@{h.uid}"
                return None, ref if vt in (None, T) else f"(coe {T} {ref})"
            if r[0] == "decl":
                return None, f"c:{r[1]['name']}"
            return None, name
        if tag == "bin" and node.args[0] in "+-*/%^":
            op, a, b = node.args
            va, ca = self.carith(a, T, sc)
            vb, cb = self.carith(b, "Nat" if op == "^" else T, sc)
            if va is not None and vb is not None:
                try:
                    v = arith(op, T, va, vb)
                    return v, f"{T}:{v}"
                except NotEvaluable:
                    pass
            return None, f"({op} {T} {ca} {cb})"
        if tag == "neg":
            v, c = self.carith(node.args[0], T, sc)
            return (-v, f"{T}:{-v}") if v is not None else (None, f"(neg {c})")
        if tag == "app" and node.args[0].tag == "id":
            fname = node.args[0].args[0]
            if fname in FUNCTIONS:
                argT = "Int" if fname.startswith("Int.") else "Nat" if fname.startswith("Nat.") else T
                vals, cs = [], []
                for a in node.args[1]:
                    v, c = self.carith(a, argT, sc)
                    vals.append(v)
                    cs.append(c)
                if all(v is not None for v in vals):
                    try:
                        v = call_function(fname, vals)
                        return v, f"{T}:{v}"
                    except NotEvaluable:
                        pass
                return None, f"(app {fname} {' '.join(cs)})"
        return None, self.cany(node, sc)

    def is_prop_like(self, node: N, sc: Scope) -> bool:
        tag = node.tag
        if tag == "paren":
            return self.is_prop_like(node.args[0], sc)
        if tag in ("not", "pi", "ex"):
            return True
        if tag == "bin":
            return node.args[0] not in "+-*/%^"
        if tag == "id":
            if node.args[0] in PROP_CONSTS:
                return True
            r = self.resolve(node.args[0], sc)
            return r is not None and r[0] == "decl" and r[1].get("prop_def", False)
        if tag == "app" and node.args[0].tag == "id":
            return node.args[0].args[0] in PREDICATES
        return False

    def cany(self, node: N, sc: Scope) -> str:
        if self.is_type(node):
            return self.ctype(node, sc)
        if self.is_prop_like(node, sc):
            return self.cprop(node, sc)
        if node.tag in ("num", "bin", "neg", "asc", "coe", "paren") or node.tag == "id":
            if node.tag == "id" and self.resolve(node.args[0], sc) is None:
                self.unknown(node.args[0], node.first)
            if node.tag == "id":
                r = self.resolve(node.args[0], sc)
                if r[0] in ("bvar", "hyp") or r[0] == "decl":
                    return self.carith(node, self.ntype(node, sc) or "Nat", sc)[1]
                return node.args[0]
            return self.carith(node, self.ntype(node, sc) or "Nat", sc)[1]
        if node.tag == "app":
            head = node.args[0]
            if head.tag == "id" and self.resolve(head.args[0], sc) is None:
                self.unknown(head.args[0], head.first)
            return f"(app {self.cany(head, sc)} {' '.join(self.cany(a, sc) for a in node.args[1])})"
        if node.tag == "str":
            return f"str:{node.args[1]!r}"
        return f"?{node.tag}@{node.first.start}"

    def ctype(self, ty: N | None, sc: Scope) -> str:
        if ty is None:
            return "?"
        if ty.tag == "paren":
            return self.ctype(ty.args[0], sc)
        if ty.tag == "id":
            name = ty.args[0]
            if name in NUMTYPES:
                return NUMTYPES[name]
            if name in TYPE_NAMES:
                return name
            return self.cprop(ty, sc)
        if ty.tag == "app" and ty.args[0].tag == "id" and ty.args[0].args[0] in TYPE_CTORS:
            head = ty.args[0].args[0]
            if head == "Fin":
                return f"(app Fin {' '.join(self.carith(a, 'Nat', sc)[1] for a in ty.args[1])})"
            return f"(app {head} {' '.join(self.ctype(a, sc) for a in ty.args[1])})"
        return self.cprop(ty, sc)

    def cprop(self, node: N, sc: Scope) -> str:
        tag = node.tag
        if tag == "paren":
            return self.cprop(node.args[0], sc)
        if tag == "asc":
            return self.cprop(node.args[0], sc)
        if tag == "id":
            name = node.args[0]
            if name in PROP_CONSTS and self.resolve(name, sc) == ("builtin", name):
                return name
            r = self.resolve(name, sc)
            if r is None:
                self.unknown(name, node.first)
            if r[0] == "bvar":
                return f"#{r[1]}"
            if r[0] == "hyp":
                h = r[1]
                if h.kind in ("let", "subst") and h.value is not None:
                    return self.cprop(h.value, Scope(h.nm))
                return f"@{h.uid}"
            if r[0] == "decl":
                d = r[1]
                if d.get("prop_def"):
                    return d["vcanon"]
                return f"c:{d['name']}"
            return NUMTYPES.get(name, name)
        if tag == "bin":
            op, a, b = node.args
            if op in ("=", "≠", "<", ">", "≤", "≥", "∣", "=="):
                if self.is_prop_like(a, sc) or self.is_prop_like(b, sc) or self.is_type(a):
                    ca, cb = self.cany(a, sc), self.cany(b, sc)
                    T = "Prop"
                else:
                    T = numjoin(self.ntype(a, sc), self.ntype(b, sc)) or "Nat"
                    ca, cb = self.carith(a, T, sc)[1], self.carith(b, T, sc)[1]
                if op == "=":
                    return f"(eq {T} {ca} {cb})"
                if op == "≠":
                    return f"(pi (eq {T} {ca} {cb}) False)"
                if op in ("<", ">"):
                    lo, hi = (a, b) if op == "<" else (b, a)
                    if T in ("Nat", "Int"):  # Nat.lt n m := n + 1 ≤ m, Int.lt likewise: definitionally equal
                        one = N("num", (1, "1"), lo.first)
                        return f"(le {T} {self.carith(_bin('+', lo, one), T, sc)[1]} {self.carith(hi, T, sc)[1]})"
                    return f"(lt {T} {ca if op == '<' else cb} {cb if op == '<' else ca})"
                if op == "≤":
                    return f"(le {T} {ca} {cb})"
                if op == "≥":
                    return f"(le {T} {cb} {ca})"
                if op == "∣":
                    return f"(dvd {T} {ca} {cb})"
                return f"(beq {T} {ca} {cb})"
            if op in ("∧", "∨", "↔"):
                name = {"∧": "and", "∨": "or", "↔": "iff"}[op]
                return f"({name} {self.cprop(a, sc)} {self.cprop(b, sc)})"
            if op == "→":
                return f"(pi {self.cprop(a, sc)} {self.cprop(b, sc.bind('_', a, sc))})"
            return self.cany(node, sc)
        if tag == "not":
            return f"(pi {self.cprop(node.args[0], sc)} False)"
        if tag in ("pi", "ex"):
            binders, body = node.args
            out, closers, inner = [], 0, sc
            for name, ty, _bracket, _tok in binders:
                out.append(f"({tag} {self.ctype(ty, inner)} ")
                closers += 1
                inner = inner.bind(name, ty, inner)
            return "".join(out) + self.cprop(body, inner) + ")" * closers
        if tag == "app" and node.args[0].tag == "id":
            head = node.args[0].args[0]
            r = self.resolve(head, sc)
            if r is None:
                self.unknown(head, node.args[0].first)
            return f"(app {head} {' '.join(self.cany(a, sc) for a in node.args[1])})"
        return self.cany(node, sc)

    def canon_statement(self, binders, ty: N, sc: Scope) -> str:
        if not binders:
            return self.cprop(ty, sc)
        return self.cprop(N("pi", (binders, ty), ty.first, ty.last), sc)

    # evaluation (compiled to Python: closed statements, and statements with variables on sample grids)
    def comp_arith(self, node: N, T: str, sc: Scope, vm: dict) -> str:
        tag = node.tag
        if tag == "num":
            if node.args[0] is None:
                raise NotEvaluable()
            return repr(node.args[0])
        if tag == "paren" or tag == "coe":
            return self.comp_arith(node.args[0], T, sc, vm)
        if tag == "asc":
            T2 = self.numtype_of_type(node.args[1])
            if T2 is None:
                raise NotEvaluable()
            return self.comp_arith(node.args[0], T2, sc, vm)
        if tag == "id":
            r = self.resolve(node.args[0], sc)
            if r is not None and r[0] == "hyp":
                h = r[1]
                if h.kind in ("let", "subst") and h.value is not None:
                    return self.comp_arith(h.value, T, Scope(h.nm), vm)
                if h.uid in vm:
                    return vm[h.uid]
            raise NotEvaluable()
        if tag == "bin" and node.args[0] in "+-*/%^":
            op, a, b = node.args
            left, right = self.comp_arith(a, T, sc, vm), self.comp_arith(b, "Nat" if op == "^" else T, sc, vm)
            return f"_A({op!r},{T!r},{left},{right})"
        if tag == "neg":
            return f"(-{self.comp_arith(node.args[0], T, sc, vm)})"
        if tag == "app" and node.args[0].tag == "id" and node.args[0].args[0] in FUNCTIONS:
            fname = node.args[0].args[0]
            argT = "Int" if fname.startswith("Int.") else "Nat" if fname.startswith("Nat.") else T
            args = ",".join(self.comp_arith(a, argT, sc, vm) for a in node.args[1])
            return f"_F({fname!r},[{args}])"
        raise NotEvaluable()

    def comp_prop(self, node: N, sc: Scope, vm: dict) -> str:
        tag = node.tag
        if tag in ("paren", "asc"):
            return self.comp_prop(node.args[0], sc, vm)
        if tag == "id":
            name = node.args[0]
            r = self.resolve(name, sc)
            if r == ("builtin", name) and name in PROP_CONSTS:
                return "True" if name == "True" else "False"
            if r is not None and r[0] == "hyp" and r[1].kind in ("let", "subst") and r[1].value is not None:
                return self.comp_prop(r[1].value, Scope(r[1].nm), vm)
            raise NotEvaluable()
        if tag == "not":
            return f"(not {self.comp_prop(node.args[0], sc, vm)})"
        if tag == "bin":
            op, a, b = node.args
            if op in ("=", "≠", "<", ">", "≤", "≥", "∣", "=="):
                if self.is_prop_like(a, sc) or self.is_prop_like(b, sc):
                    if op in ("=", "=="):
                        return f"({self.comp_prop(a, sc, vm)}=={self.comp_prop(b, sc, vm)})"
                    raise NotEvaluable()
                T = numjoin(self.ntype(a, sc), self.ntype(b, sc)) or "Nat"
                ca, cb = self.comp_arith(a, T, sc, vm), self.comp_arith(b, T, sc, vm)
                if op == "∣":
                    return f"_D({ca},{cb})"
                py = {"=": "==", "==": "==", "≠": "!=", "<": "<", ">": ">", "≤": "<=", "≥": ">="}[op]
                return f"({ca}{py}{cb})"
            pa, pb = self.comp_prop(a, sc, vm), self.comp_prop(b, sc, vm)
            if op == "∧":
                return f"({pa} and {pb})"
            if op == "∨":
                return f"({pa} or {pb})"
            if op == "→":
                return f"((not {pa}) or {pb})"
            if op == "↔":
                return f"(bool({pa})==bool({pb}))"
            raise NotEvaluable()
        if tag == "app" and node.args[0].tag == "id" and node.args[0].args[0] in PREDICATES:
            pname = node.args[0].args[0]
            args = ",".join(self.comp_arith(a, "Int" if pname != "Nat.Prime" else "Nat", sc, vm)
                            for a in node.args[1])
            return f"_P({pname!r},[{args}])"
        raise NotEvaluable()

    def truth(self, node: N, sc: Scope) -> bool | None:
        """The value of a closed proposition; None when the judge cannot evaluate it."""
        try:
            return bool(eval(self.comp_prop(node, sc, {}), _EVAL_GLOBALS))  # noqa: S307 - generated from a parse
        except Exception:
            return None

    def mentions_locals(self, node: N, sc: Scope) -> bool:
        """Whether a term mentions a local hypothesis or variable (the free variables `decide` refuses)."""
        tag = node.tag
        if tag == "id":
            r = self.resolve(node.args[0], sc)
            if r is not None and r[0] == "hyp" and r[1].kind == "subst":
                return self.mentions_locals(r[1].value, Scope(r[1].nm))
            return r is not None and r[0] == "hyp"
        if tag in ("pi", "ex"):
            binders, body = node.args
            inner = sc
            for name, ty, _b, _t in binders:
                if ty is not None and self.mentions_locals(ty, inner):
                    return True
                inner = inner.bind(name, ty, inner)
            return self.mentions_locals(body, inner)
        for a in node.args:
            if isinstance(a, N) and self.mentions_locals(a, sc):
                return True
            if isinstance(a, list) and any(isinstance(x, N) and self.mentions_locals(x, sc) for x in a):
                return True
        return False

    def sampled(self, g: Goal, target: N | None = None, use_hyps: bool = True) -> bool | None:
        """Whether the goal holds at every point of a sample grid of its numeric variables where the hypotheses
        hold: True, False (a counterexample), None (the judge cannot evaluate it)."""
        target = g.target if target is None else target
        numeric = [h for h in g.hyps if h.kind == "var" and self.numtype_of_type(h.ty) in ("Nat", "Int")]
        vm = {h.uid: f"v{i}" for i, h in enumerate(numeric)}
        conds = []
        if use_hyps:
            for h in g.hyps:
                if h.kind == "prop":
                    try:
                        conds.append(self.comp_prop(h.ty, Scope(h.nm), vm))
                    except NotEvaluable:
                        pass
        unreadable = False
        try:
            goal = self.comp_prop(target, g.sc, vm)
        except NotEvaluable:
            if not conds:
                return None
            goal, unreadable = "False", True  # then it holds only where the hypotheses never do
        args = ",".join(vm[h.uid] for h in numeric)
        try:
            counter = eval(f"lambda {args}: ({' and '.join(conds) or 'True'}) and not ({goal})",  # noqa: S307
                           _EVAL_GLOBALS)
            for point in _grid([self.numtype_of_type(h.ty) for h in numeric]):
                if counter(*point):
                    return None if unreadable else False
        except Exception:
            return None
        return True

    def empty_hyp(self, h: Hyp) -> bool:
        """A hypothesis over an empty type, or a false closed proposition."""
        try:
            if self.ctype(h.ty, Scope(h.nm)) in EMPTY_TYPES:
                return True
        except ElabError:
            return False
        if h.kind == "prop":
            if self.truth(h.ty, Scope(h.nm)) is False:
                return True
        return False

    def contradictory(self, g: Goal) -> bool:
        if any(self.empty_hyp(h) for h in g.hyps):
            return True
        props = {}
        for h in g.hyps:
            if h.kind == "prop":
                try:
                    props[self.cprop(h.ty, Scope(h.nm))] = h
                except ElabError:
                    pass
        for c in props:
            if c.startswith("(pi ") and c.endswith(" False)") and c[4:-7] in props:
                return True
        return False

    def hyp_false(self, h: Hyp, g: Goal) -> bool:
        """`cases h`/`nomatch h` closes the goal: h is over an empty type, false, or false at every sample."""
        if self.empty_hyp(h):
            return True
        if h.kind != "prop":
            return False
        sub = Goal([x for x in g.hyps if x.kind != "prop" or x is h], _id("False", h.ty.first), g.nm)
        return self.sampled(sub) is True

    # pretty printing (Lean's layout for the forms the judge knows)
    def pp(self, node: N | None, sc: Scope | None = None, prec: int = 0) -> str:
        if node is None:
            return "?"
        sc = sc or Scope({})
        tag, args = node.tag, node.args
        if tag == "num":
            return args[1]
        if tag == "str":
            return args[0]
        if tag == "id":
            h = sc.nm.get(args[0])
            if h is None or any(b[0] == args[0] for b in sc.bound):
                return args[0]
            return self.pp(h.value, Scope(h.nm), prec) if h.kind == "subst" else h.name
        if tag == "at":
            return "@" + args[0]
        if tag in ("paren", "asc", "coe"):
            if tag == "coe":
                return "↑" + self.pp(args[0], sc, 1024)
            return self.pp(args[0], sc, prec)
        if tag == "bin":
            op, a, b = args
            p, lmin, rmin = BINOPS[op]
            s = f"{self.pp(a, sc, lmin)} {op} {self.pp(b, sc, rmin)}"
            return f"({s})" if p < prec else s
        if tag == "not":
            s = "¬" + self.pp(args[0], sc, 40)
            return s
        if tag == "neg":
            s = "-" + self.pp(args[0], sc, 75)
            return f"({s})" if prec > 75 else s
        if tag in ("pi", "ex"):
            s = self.pp_binders(tag, args[0], args[1], sc)
            return f"({s})" if prec > 0 else s
        if tag == "app":
            s = " ".join([self.pp(args[0], sc, 1024)] + [self.pp(a, sc, 1025) for a in args[1]])
            return f"({s})" if prec > 1024 else s
        if tag == "anon":
            return "⟨" + ", ".join(self.pp(e, sc) for e in args[0]) + "⟩"
        if tag == "hole":
            return "_"
        if tag == "sorry":
            return "sorry"
        return self.text[node.first.start:node.last.end]

    def pp_binders(self, tag: str, binders, body: N, sc: Scope) -> str:
        if tag == "ex":
            names = " ".join(b[0] or "x" for b in binders)
            inner = sc
            for name, ty, _b, _t in binders:
                inner = inner.bind(name, ty, inner)
            return f"∃ {names}, {self.pp(body, inner)}"
        parts = []
        inner = sc
        rest_nodes = [b[1] for b in binders] + [body]
        for k, (name, ty, bracket, _tok) in enumerate(binders):
            later = rest_nodes[k + 1:]
            dependent = name is not None and any(_mentions(n, name) for n in later if n is not None)
            tys = self.pp(ty, inner) if ty is not None else None
            if bracket == "(" and not dependent and ty is not None and not self.is_type(ty):
                parts.append((None, self.pp(ty, inner, 26)))
            elif bracket == "[":
                parts.append(("∀", f"[{name + ' : ' if name else 'inst : '}{tys}]"))
            elif ty is None:
                parts.append(("∀", name))
            else:
                left, right = {"{": ("{", "}"), "⦃": ("⦃", "⦄")}.get(bracket, ("(", ")"))
                parts.append(("∀", f"{left}{name} : {tys}{right}"))
            inner = inner.bind(name, ty, inner)
        out = []
        for kind, s in parts:
            if kind is None:
                out.append(f"{s} → ")
            else:
                out.append(f"∀ {s}, ")
        return "".join(out) + self.pp(body, inner, 25 if parts and parts[-1][0] is None else 0)

    def statement_pp(self, binders, ty: N) -> str:
        if not binders:
            return self.pp(ty)
        return self.pp_binders("pi", binders, ty, Scope({}))

    def hyp_type_text(self, h: Hyp) -> str:
        return h.ty_text if h.ty_text is not None else self.pp(h.ty, Scope(h.nm))

    def goal_text(self, g: Goal) -> str:
        lines = []
        names = [h.name for h in g.hyps]
        shown = []
        for k, h in enumerate(g.hyps):
            name = h.name + ("✝" if h.name in names[k + 1:] and not h.name.endswith("✝") else "")
            ty = self.hyp_type_text(h)
            if h.kind == "let":
                shown.append([[name], ty, h.value_raw])
            elif shown and shown[-1][2] is None and shown[-1][1] == ty:
                shown[-1][0].append(name)
            else:
                shown.append([[name], ty, None])
        for group, ty, value in shown:
            lines.append(f"{' '.join(group)} : {ty}" + (f" := {value}" if value is not None else ""))
        lines.append("⊢ " + self.pp(g.target, g.sc))
        return "\n".join(lines)

    def goals_text(self, goals: list[Goal]) -> str:
        return "\n\n".join(self.goal_text(g) for g in goals)

    def source(self, node: N) -> str:
        return self.text[node.first.start:node.last.end]

    def term_text(self, node: N) -> str:
        if node.tag in ("at", "id"):
            return node.args[0]
        if node.tag == "paren":
            return self.term_text(node.args[0])
        return self.source(node)

    # tactic blocks: parsing
    def find_top(self, a: int, b: int, text: str, last: bool = False) -> int | None:
        found, k = None, a
        while k < b:
            t = self.toks[k]
            if t.kind == "sym" and t.text in OPENERS and k in self.pairs:
                k = self.pairs[k] + 1
                continue
            if t.text == text:
                if not last:
                    return k
                found = k
            k += 1
        return found

    def split_items(self, i: int, bound: int) -> tuple[list[tuple[int, int]], int]:
        if i >= bound:
            return [], i
        col = self.toks[i].col
        items, cur, k = [], i, i
        while k < bound:
            t = self.toks[k]
            if k > i and t.bol:
                if t.col < col:
                    break
                if t.col == col and t.text not in ("|", "<;>") and cur < k:
                    items.append((cur, k))
                    cur = k
            if t.kind == "sym" and t.text in OPENERS and k in self.pairs and self.pairs[k] < bound:
                k = self.pairs[k] + 1
                continue
            if t.text == ";":
                if cur < k:
                    items.append((cur, k))
                cur = k + 1
            k += 1
        if cur < k:
            items.append((cur, k))
        return items, k

    def parse_block(self, i: int, bound: int):
        """(tactic nodes parsed, index where the block stopped, the parse error or None)."""
        items, stop = self.split_items(i, bound)
        nodes = []
        for a, b in items:
            try:
                nodes.append(self.parse_item(a, b))
            except LeanSyntaxError as e:
                return nodes, stop, e
        return nodes, stop, None

    def parse_seq(self, a: int, b: int) -> tuple:
        items, stop = self.split_items(a, b)
        if stop < b:
            t = self.toks[stop]
            raise LeanSyntaxError(f"unexpected token '{t.text}'; expected ')'", t.start, t.end)
        if not items:
            raise LeanSyntaxError("unexpected end of input; expected tactic",
                                  self.toks[b - 1].end if b > 0 else 0)
        return ("seq", [self.parse_item(x, y) for x, y in items])

    def term_parser(self, a: int, b: int) -> Parser:
        return Parser(self.toks, a, b, self.kw, self.pairs)

    def parse_item(self, a: int, b: int) -> tuple:
        toks = self.toks
        j = self.find_top(a, b, "<;>", last=True)
        if j is not None:
            if j == a or j + 1 >= b:
                t = toks[j]
                raise LeanSyntaxError("unexpected token '<;>'; expected tactic", t.start, t.end)
            return ("then", self.parse_item(a, j), self.parse_item(j + 1, b))
        t = toks[a]
        name = t.text
        if name in ("·", "."):
            return ("focus", t, self.parse_seq(a + 1, b), toks[b - 1])
        if name in ("(", "{"):
            j = self.pairs.get(a)
            if j is None or j >= b:
                raise LeanSyntaxError(f"unexpected end of input; expected '{OPENERS[name]}'", toks[b - 1].end)
            if j != b - 1:
                u = toks[j + 1]
                raise LeanSyntaxError(f"unexpected token '{u.text}'; expected ';' or line break", u.start, u.end)
            seq = self.parse_seq(a + 1, j)
            return seq if name == "(" else ("focus", t, seq, toks[j])
        if name == "first":
            if a + 1 >= b or toks[a + 1].text != "|":
                raise LeanSyntaxError("unexpected end of input; expected '|'" if a + 1 >= b else
                                      f"unexpected token '{toks[a + 1].text}'; expected '|'",
                                      toks[a + 1].start if a + 1 < b else t.end)
            bars, k = [], a + 1
            while k < b:
                u = toks[k]
                if u.kind == "sym" and u.text in OPENERS and k in self.pairs:
                    k = self.pairs[k] + 1
                    continue
                if u.text == "|":
                    bars.append(k)
                k += 1
            alts = []
            for x, y in zip(bars, bars[1:] + [b]):
                alts.append(self.parse_seq(x + 1, y))
            return ("first", t, alts)
        if name in ("try", "repeat", "all_goals", "any_goals", "focus", "iterate"):
            start = a + 1
            if name == "iterate" and start < b and toks[start].kind == "num":
                start += 1
            return ("comb", "repeat" if name == "iterate" else name, t, self.parse_seq(start, b))
        if name in ("case", "next", "case'"):
            j = self.find_top(a, b, "=>")
            if j is None:
                raise LeanSyntaxError("unexpected end of input; expected '=>'", toks[b - 1].end)
            return ("focus", t, self.parse_seq(j + 1, b), toks[b - 1])
        if t.kind == "id":
            if name in ("sorry", "nomatch") and EARLY[0]:  # not tactics of the 2021 Lean (`admit` works)
                raise LeanSyntaxError("expected '{' or tactic", t.start, t.end)
            if name not in KNOWN_TACTICS or name in self.missing_tactics:
                raise LeanSyntaxError("unknown tactic", t.start + 1)
            return self.parse_leaf(name, a, b)
        if t.kind == "sym" and t.text == "<":
            raise LeanSyntaxError("unknown tactic", t.start + 1)
        raise LeanSyntaxError(f"unexpected token '{name}'; expected tactic" if name not in ("⊢",) else
                              "unknown tactic", t.start, t.end)

    def parse_leaf(self, name: str, a: int, b: int) -> tuple:
        toks = self.toks
        t, last = toks[a], toks[b - 1]
        nxt = toks[a + 1] if a + 1 < b else None
        if name in ("exact", "apply", "refine", "exact_mod_cast", "use", "exists", "specialize", "change",
                    "show", "calc"):
            p = self.term_parser(a + 1, b)
            term = p.expr(0)
            if p.peek() is not None:
                p.fail("';' or line break")
            return ("tac", name, t, last, term)
        if name in ("have", "let"):
            p = self.term_parser(a, b)
            node = p.let_have()
            return ("tac", name, t, last, node)
        if name in ("intro", "intros", "rintro"):
            return ("tac", name, t, last, [toks[k] for k in range(a + 1, b) if toks[k].kind == "id"
                                            or toks[k].text == "_"])
        if name in ("cases", "rcases", "nomatch", "induction", "subst", "injection", "obtain", "by_cases"):
            target = None
            if name == "obtain":
                j = self.find_top(a, b, ":=")
                target = toks[j + 1] if j is not None and j + 1 < b else None
            elif nxt is not None and nxt.kind == "id":
                target = nxt
            if target is None and name in ("cases", "rcases", "nomatch", "induction"):
                p = self.term_parser(a + 1, b)
                p.fail("term")
            return ("tac", name, t, last, target)
        if name in ("trace", "dbg_trace"):
            if nxt is None or nxt.kind != "str":
                p = self.term_parser(a + 1, b)
                p.fail("string literal")
            return ("tac", name, t, last, decode_string(nxt.text))
        if name == "fail":
            return ("tac", name, t, last, decode_string(nxt.text) if nxt is not None and nxt.kind == "str"
                    else None)
        if name == "sleep":
            if nxt is None or nxt.kind != "num":
                p = self.term_parser(a + 1, b)
                p.fail("numeral")
            return ("tac", name, t, last, int(nxt.text, 0))
        data = {"only": False, "star": False, "at": [], "args": []}
        k = a + 1
        while k < b:
            u = toks[k]
            if u.text == "only":
                data["only"] = True
            elif u.text == "[" and k in self.pairs:
                inner = [toks[x].text for x in range(k + 1, self.pairs[k]) if toks[x].text != ","]
                data["args"] += inner
                data["star"] |= "*" in inner
                k = self.pairs[k]
            elif u.text == "at":
                data["at"] = [toks[x].text for x in range(k + 1, b) if toks[x].kind == "id" or toks[x].text == "⊢"]
                break
            k += 1
        return ("tac", name, t, last, data)

    # tactic blocks: running
    def snapshot(self):
        c = self.cur
        return (len(self.msgs), len(self.sorries), set(c["axioms"]), list(c["explicit"]), c["error"])

    def restore(self, snap) -> None:
        nmsgs, nsorries, axioms, explicit, error = snap
        del self.msgs[nmsgs:]
        del self.sorries[nsorries:]
        self.cur["axioms"], self.cur["explicit"], self.cur["error"] = axioms, explicit, error

    def explicit_sorry(self, tok: Tok, g: Goal) -> None:
        self.cur["explicit"].append(tok)
        self.cur["axioms"].add("sorryAx")
        line, col = self.lc(tok.start)
        eline, ecol = self.lc(tok.end)
        self.sorries.append({"proofState": self.next_proof_state(), "pos": {"line": line, "column": col},
                             "goal": self.goal_text(g), "endPos": {"line": eline, "column": ecol}})

    def run_seq(self, nodes, goals: list[Goal]) -> list[Goal]:
        for node in nodes:
            goals = self.run_tac(node, goals)
        return goals

    def run_tac(self, node: tuple, goals: list[Goal]) -> list[Goal]:
        kind = node[0]
        if kind == "seq":
            return self.run_seq(node[1], goals)
        if kind == "then":
            if not goals:
                return self.run_tac(node[1], goals)
            out = []
            for g in self.run_tac(node[1], goals[:1]):
                out += self.run_tac(node[2], [g])
            return out + goals[1:]
        if kind == "first":
            err = None
            for alt in node[2]:
                snap = self.snapshot()
                try:
                    return self.run_tac(alt, goals)
                except ElabError as e:
                    self.restore(snap)
                    err = e
            raise err
        if kind == "comb":
            name, seq = node[1], node[3]
            if name == "try":
                snap = self.snapshot()
                try:
                    return self.run_tac(seq, goals)
                except ElabError:
                    self.restore(snap)
                    return goals
            if name == "repeat":
                for _ in range(64):
                    if not goals:
                        break
                    snap = self.snapshot()
                    try:
                        new = self.run_tac(seq, goals)
                    except ElabError:
                        self.restore(snap)
                        break
                    if len(new) == len(goals) and all(a is b for a, b in zip(new, goals)):
                        break
                    goals = new
                return goals
            if name == "all_goals":
                out = []
                for g in goals:
                    out += self.run_tac(seq, [g])
                return out
            if name == "any_goals":
                out, ok, err = [], False, None
                for g in goals:
                    snap = self.snapshot()
                    try:
                        out += self.run_tac(seq, [g])
                        ok = True
                    except ElabError as e:
                        self.restore(snap)
                        out.append(g)
                        err = e
                if not ok and err is not None:
                    raise err
                return out
            return self.run_tac(("focus", node[2], seq, node[2]), goals)
        if kind == "focus":
            tok, seq, last = node[1], node[2], node[3]
            if not goals:
                raise ElabError(self.words.no_goals(), tok)
            left = self.run_tac(seq, goals[:1])
            if left:
                raise ElabError("unsolved goals\n" + self.goals_text(left), tok, last)
            return goals[1:]
        # a leaf tactic
        _, name, tok, last, data = node
        if name in ("skip", "trace", "dbg_trace", "sleep", "trace_state"):
            return self.leaf(name, tok, last, data, goals[0] if goals else None, goals)
        if not goals:
            raise ElabError(self.words.no_goals(), tok, last)
        return self.leaf(name, tok, last, data, goals[0], goals)

    def close(self, name: str, goals: list[Goal]) -> list[Goal]:
        self.cur["axioms"].update(TACTIC_AXIOMS.get(name, ()))
        return goals[1:]

    def leaf(self, name: str, tok: Tok, last: Tok, data, g: Goal | None, goals: list[Goal]) -> list[Goal]:
        W = self.words
        rest = goals[1:]
        if name == "skip":
            return goals
        if name == "trace":
            self.log("information", tok.start, tok.end, data)
            return goals
        if name == "trace_state":
            self.log("information", tok.start, tok.end, self.goals_text(goals) if goals else "no goals")
            return goals
        if name == "dbg_trace":
            sys.stderr.write(data + "\n")
            sys.stderr.flush()
            return goals
        if name == "sleep":
            time.sleep(data / 1000)
            return goals
        if name == "fail":
            text = data if data is not None else W.fail_plain()
            raise ElabError(f"{text}\n{self.goals_text(goals)}", tok, last)
        if name in ("sorry", "admit"):
            self.explicit_sorry(tok, g)
            return rest
        if name == "done":
            raise ElabError("unsolved goals\n" + self.goals_text(goals), tok)
        target, sc = g.target, g.sc
        if name in ("decide", "native_decide", "decide?"):
            prop = self.pp(target, sc)
            if self.mentions_locals(target, sc):
                raise ElabError(W.decide_free(prop), tok)
            value = self.truth(target, sc)
            if value is True:
                if name == "native_decide":
                    self.cur["axioms"].add("Lean.ofReduceBool")
                if name == "decide?":
                    self.log("information", tok.start, tok.end, "Try this: decide")
                return rest
            if value is False:
                if name == "native_decide":
                    raise ElabError(f"native_decide evaluated that the proposition\n  {prop}\nis false", tok)
                raise ElabError(W.decide_false(prop), tok)
            raise ElabError(W.decide_undecidable(prop), tok)
        if name == "rfl":
            t = _strip(target)
            if t.tag == "bin" and t.args[0] in ("=", "↔", "≤", "≥"):
                a, b = t.args[1], t.args[2]
                if self.sides_equal(t.args[0], a, b, sc):
                    return rest
                if W.early:
                    raise ElabError(type_mismatch("rfl", f"{self.pp(a, sc)} = {self.pp(a, sc)}",
                                                  self.pp(target, sc)), tok)
                raise ElabError(f"tactic 'rfl' failed, the left-hand side\n  {self.pp(a, sc)}\nis not "
                                f"definitionally equal to the right-hand side\n  {self.pp(b, sc)}\n"
                                + self.goal_text(g), tok)
            raise ElabError("The rfl tactic failed. Possible reasons:\n- The goal is not a reflexive relation "
                            "(neither `=` nor a relation with a @[refl] lemma).\n" + self.goal_text(g), tok)
        if name == "trivial":
            if self.is_true(target, sc) or self.assumption(g) or self.contradictory(g):
                return rest
            raise ElabError("tactic 'assumption' failed, \n" + self.goal_text(g), tok)
        if name == "assumption":
            if self.assumption(g):
                return rest
            raise ElabError("tactic 'assumption' failed, \n" + self.goal_text(g), tok)
        if name == "contradiction":
            if self.contradictory(g):
                return rest
            raise ElabError("tactic 'contradiction' failed, \n" + self.goal_text(g), tok)
        if name in ARITH_LIKE:
            verdict = self.sampled(g)
            if verdict is True or any(self.ctype(h.ty, Scope(h.nm)) in ("False", "(app Fin Nat:0)")
                                      for h in g.hyps if h.ty is not None and h.kind != "inst"):
                return self.close(name, goals)
            if name == "omega":
                raise ElabError("omega could not prove the goal:\na possible counterexample may satisfy the "
                                "constraints\n" + self.goal_text(g), tok)
            if name == "positivity":
                raise ElabError("failed to prove positivity\n" + self.goal_text(g), tok)
            raise ElabError(f"{name} failed to find a contradiction\n" + self.goal_text(g), tok)
        if name in SIMP_LIKE or name in ("simp?",):
            if data and data.get("at"):
                for hname in data["at"]:
                    h = g.nm.get(hname)
                    if h is None:
                        raise ElabError(f"unknown local declaration '{hname}'", tok, last)
                    if self.hyp_false(h, g):
                        return self.close(name, goals)
                raise ElabError("simp made no progress", tok, last)
            if data and data.get("star") and self.contradictory(g):
                return self.close(name, goals)
            if _strip(target).tag == "id" and _strip(target).args[0] == "True":
                return self.close(name, goals)
            value = self.truth(target, sc)
            if value is True:
                return self.close(name, goals)
            if value is False:
                if _strip(target).tag == "id" and _strip(target).args[0] == "False":
                    raise ElabError("simp made no progress", tok, last)
                self.cur["axioms"].update(TACTIC_AXIOMS.get(name, ()))
                return [g.with_target(_id("False", tok))] + rest
            verdict = self.sampled(g, use_hyps=bool(data and data.get("star")))
            if verdict is True:
                return self.close(name, goals)
            if name in ("norm_num", "simp_arith") and self.sampled(g) is True:
                return self.close(name, goals)
            raise ElabError(f"{'simp' if name != 'norm_num' else 'norm_num'} made no progress"
                            if name != "ring" else "ring failed", tok, last)
        if name in ("simp_all", "aesop", "tauto"):
            if self.contradictory(g) or self.is_true(target, sc) or self.sampled(g) is True:
                return self.close(name, goals)
            raise ElabError(f"{name} made no progress" if name == "simp_all" else f"{name} failed", tok)
        if name in ("exact", "apply", "refine", "exact_mod_cast"):
            try:
                self.elab(data, g)
            except ElabError as e:
                if e.msg.startswith("type mismatch\n") and e.first is data.first and not isinstance(e, UnknownIdent):
                    raise ElabError(e.msg, tok, last) from None  # Lean reports it at the tactic
                raise
            return rest
        if name in ("intro", "intros", "rintro"):
            names = data if data else [None] * (64 if name == "intros" else 1)
            cur = g
            for ntok in names:
                step = self.intro(cur, ntok)
                if step is None:
                    if name == "intros" and not data:
                        break
                    raise ElabError("no additional binders or let bindings in the goal to introduce"
                                    if not W.early else "tactic 'introN' failed, insufficient number of binders",
                                    tok, last)
                cur = step
            return [cur] + rest
        if name in ("constructor", "and_intros", "split_ands"):
            t = _strip(self.unfold(target, sc))
            if t.tag == "id" and t.args[0] == "True":
                return rest
            if t.tag == "bin" and t.args[0] == "∧":
                a, b = t.args[1], t.args[2]
                parts = [g.with_target(a), g.with_target(b)]
                if name != "constructor":
                    out = []
                    for p in parts:
                        out += self.leaf(name, tok, last, data, p, [p]) if _strip(p.target).tag == "bin" and \
                            _strip(p.target).args[0] == "∧" else [p]
                    return out + rest
                return parts + rest
            if t.tag == "bin" and t.args[0] == "↔":
                a, b = t.args[1], t.args[2]
                return [g.with_target(_bin("→", a, b)), g.with_target(_bin("→", b, a))] + rest
            raise ElabError("tactic 'constructor' failed, target is not an inductive datatype\n"
                            + self.goal_text(g), tok)
        if name in ("left", "right"):
            t = _strip(self.unfold(target, sc))
            if t.tag == "bin" and t.args[0] == "∨":
                return [g.with_target(t.args[1] if name == "left" else t.args[2])] + rest
            raise ElabError(f"tactic '{name}' failed, target is not an inductive datatype with two constructors",
                            tok)
        if name == "exfalso":
            return [g.with_target(_id("False", tok))] + rest
        if name == "show":
            try:
                same = self.cprop(data, sc) == self.cprop(target, sc)
            except UnknownIdent as e:
                raise e
            if not same:
                raise ElabError(type_mismatch("this", self.pp(target, sc), self.pp(data, sc)), data.first,
                                data.last)
            return [g.with_target(data)] + rest
        if name in ("have", "let"):
            return [self.have_let(data, g, tactic=True)] + rest
        if name in ("cases", "rcases", "nomatch", "induction", "obtain", "subst", "injection"):
            h = g.nm.get(data.text) if data is not None else None
            if h is None:
                if data is not None and self.resolve(data.text, sc) is None:
                    self.unknown(data.text, data)
                raise ElabError(f"fake_lean: the stand-in runs '{name}' on local hypotheses only", tok, last)
            if self.hyp_false(h, g):
                return rest
            if name == "nomatch":
                raise ElabError(f"missing cases:\n{self.hyp_type_text(h)}", tok, last)
            ht = _strip(h.ty) if h.ty is not None else None
            if ht is not None and ht.tag == "bin" and ht.args[0] == "∧" and name in ("cases", "rcases", "obtain"):
                left = Hyp("left", ht.args[1], h.nm, "prop")
                right = Hyp("right", ht.args[2], h.nm, "prop")
                return [g.add(left).add(right)] + rest
            return goals
        if name == "by_cases":
            return goals
        raise ElabError(f"fake_lean: the stand-in does not run the tactic '{name}'", tok, last)

    def is_true(self, target: N, sc: Scope) -> bool:
        t = _strip(target)
        if t.tag == "id" and t.args[0] == "True" and self.resolve("True", sc) == ("builtin", "True"):
            return True
        return not self.mentions_locals(target, sc) and self.truth(target, sc) is True

    def assumption(self, g: Goal) -> bool:
        try:
            want = self.cprop(g.target, g.sc)
        except ElabError:
            return False
        for h in g.hyps:
            if h.kind == "let" and h.canon is not None and h.canon == want:
                return True
            if h.kind == "prop":
                try:
                    if self.cprop(h.ty, Scope(h.nm)) == want:
                        return True
                except ElabError:
                    pass
        return False

    def unfold(self, node: N, sc: Scope) -> N:
        """A Prop definition's value (parsed again from its source), so that `⟨..⟩`/`constructor` see ∧."""
        t = _strip(node)
        if t.tag == "id":
            r = self.resolve(t.args[0], sc)
            if r is not None and r[0] == "decl" and r[1].get("prop_def") and r[1].get("value_src"):
                try:
                    toks = tokenize(r[1]["value_src"])
                    p = Parser(toks, 0, len(toks), self.kw, match_brackets(toks))
                    return p.expr(0)
                except LeanSyntaxError:
                    return node
        return node

    def intro(self, g: Goal, ntok: Tok | None) -> Goal | None:
        t = _strip(g.target)
        given = ntok.text if ntok is not None and ntok.text != "_" else None
        if t.tag == "pi":
            binders, body = t.args
            (bname, ty, bracket, _btok), more = binders[0], binders[1:]
            name = given or (bname if bname and bracket != "[" else "inst✝" if bracket == "[" else "a✝")
            hyp = Hyp(name, ty, g.nm, self.hyp_kind(ty, bracket))
            nm = dict(g.nm)
            nm[name] = hyp
            if bname:
                nm[bname] = hyp
            new_target = N("pi", (more, body), t.first, t.last) if more else body
            return Goal(g.hyps + [hyp], new_target, nm)
        if t.tag == "bin" and t.args[0] == "→":
            hyp = Hyp(given or "a✝", t.args[1], g.nm, "prop")
            return g.add(hyp).with_target(t.args[2])
        if t.tag == "not":
            hyp = Hyp(given or "a✝", t.args[0], g.nm, "prop")
            return Goal(g.hyps + [hyp], _id("False", t.first), {**g.nm, hyp.name: hyp})
        if t.tag == "bin" and t.args[0] == "≠":
            hyp = Hyp(given or "a✝", _bin("=", t.args[1], t.args[2]), g.nm, "prop")
            return Goal(g.hyps + [hyp], _id("False", t.first), {**g.nm, hyp.name: hyp})
        return None

    # terms
    def read_include(self, node: N) -> str:
        arg = _strip(node.args[0])
        if arg.tag != "str":
            raise ElabError("fake_lean: include_str needs a string literal", node.first, node.last)
        path = arg.args[1]
        full = path if os.path.isabs(path) else os.path.join(self.src_dir, path)
        try:
            with open(full, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError as e:
            text = (e.strerror or "i/o error").lower()
            raise ElabError(f"{text} (error code: {e.errno or 0})\n  file: {full}", node.first, node.last) \
                from None

    def type_of(self, node: N, g: Goal):
        """(type text, canonical type, axioms, sort) of a proof term the judge can type by itself; None if not."""
        t = _strip(node)
        if t.tag in ("id", "at"):
            name = t.args[0]
            r = self.resolve(name, g.sc)
            tok = t.last
            if r is None:
                base, _, field = name.rpartition(".")
                h = g.nm.get(base) if base else None
                if h is not None and field in ("1", "2", "left", "right") and h.kind == "prop":
                    ht = _strip(h.ty)
                    if ht.tag == "bin" and ht.args[0] == "∧":
                        part = ht.args[1] if field in ("1", "left") else ht.args[2]
                        return (self.pp(part, Scope(h.nm)), self.cprop(part, Scope(h.nm)), set(), "Prop")
                self.unknown(name, tok)
            if r[0] == "hyp":
                h = r[1]
                if h.kind == "let":
                    return (self.hyp_type_text(h), h.canon, set(), "Prop" if h.canon is not None else "Type")
                return (self.hyp_type_text(h), self.cprop(h.ty, Scope(h.nm)) if h.kind == "prop" else None, set(),
                        "Prop" if h.kind == "prop" else "Type")
            if r[0] == "decl":
                d = r[1]
                if d["kind"] == "def":
                    return (d["type"], None, set(), "Type")
                return (d["type"], d["canon"], set(d["axioms"]), "Prop")
            if r[0] == "builtin" and name in ("trivial", "True.intro"):
                return ("True", "True", set(), "Prop")
            return None
        if t.tag == "str":
            return ("String", None, set(), "Type")
        if t.tag == "num":
            return ("Nat", None, set(), "Type")
        return None

    def mismatch(self, node: N, g: Goal, has: str, sort: str, term: str | None = None):
        raise ElabError(type_mismatch(term or self.term_text(node), has, self.pp(g.target, g.sc), sort),
                        node.first, node.last)

    def elab(self, node: N, g: Goal) -> None:
        """Check that ``node`` proves the goal (raises ElabError); records axioms and sorries."""
        tag, args = node.tag, node.args
        sc = g.sc
        if tag == "paren":
            return self.elab(args[0], g)
        if tag == "sorry":
            return self.explicit_sorry(node.first, g)
        if tag == "by":
            start, end = args
            nodes, stop, err = self.parse_block(start, end)
            if err is not None:
                raise ElabError(err.msg, self.tok_at(err.pos), None)
            left = self.run_seq(nodes, [g])
            if left:
                raise ElabError("unsolved goals\n" + self.goals_text(left), node.first, node.last)
            return None
        if tag in ("id", "at"):
            name = args[0]
            if tag == "id" and name == "rfl" and self.resolve(name, sc) == ("builtin", "rfl"):
                t = _strip(g.target)
                if t.tag == "bin" and t.args[0] == "=" and self.sides_equal("=", t.args[1], t.args[2], sc):
                    return None
                lhs = self.pp(t.args[1], sc) if t.tag == "bin" else "?a"
                raise ElabError(type_mismatch("rfl", f"{lhs} = {lhs}", self.pp(g.target, sc)), node.first,
                                node.last)
            if name in ("h.elim",) or name.endswith(".elim"):
                h = g.nm.get(name[:-len(".elim")])
                if h is not None:
                    if self.hyp_false(h, g):
                        return None
                    raise ElabError(f"invalid field notation, type is not of the form (C ...) where C is a "
                                    f"constant\n  {h.name}\nhas type\n  {self.hyp_type_text(h)}", node.first)
            typed = self.type_of(node, g)
            if typed is None:
                raise ElabError(f"fake_lean: the stand-in cannot judge the term '{self.source(node)}'",
                                node.first, node.last)
            text, canon, axioms, sort = typed
            want = self.cprop(g.target, sc)
            if canon is not None and canon == want:
                self.cur["axioms"].update(axioms)
                return None
            self.mismatch(node, g, text, sort)
        if tag == "anon":
            return self.elab_anon(node, g)
        if tag == "str":
            self.mismatch(node, g, "String", "Type", term=args[0])
        if tag == "incl":
            content = self.read_include(node)
            self.mismatch(node, g, "String", "Type", term=quote_string(content))
        if tag == "num":
            self.mismatch(node, g, "Nat", "Type")
        if tag in ("let", "have"):
            if args[4] is None:
                raise ElabError("unexpected end of input; expected term", node.last)
            g2 = self.have_let(node, g, tactic=False)
            return self.elab(args[4], g2)
        if tag == "show":
            ty, e = args
            if self.cprop(ty, sc) != self.cprop(g.target, sc):
                raise ElabError(type_mismatch("this", self.pp(ty, sc), self.pp(g.target, sc)), node.first, node.last)
            return self.elab(e, g.with_target(ty))
        if tag == "asc":
            e, ty = args
            self.elab(e, g.with_target(ty))
            if self.cprop(ty, sc) != self.cprop(g.target, sc):
                self.mismatch(node, g, self.pp(ty, sc), "Prop")
            return None
        if tag == "proj" and args[1] == "elim":
            inner = _strip(args[0])
            if inner.tag == "asc" and _strip(inner.args[0]).tag == "id" and _strip(inner.args[0]).args[0] == "default":
                want = f"(app Inhabited {self.ctype(inner.args[1], sc)})"
                if self.ctype(inner.args[1], sc) in EMPTY_TYPES and any(
                        h.kind == "inst" and self.ctype(h.ty, Scope(h.nm)) == want for h in g.hyps):
                    return None
                raise ElabError(f"failed to synthesize\n  Inhabited {self.pp(inner.args[1], sc)}", inner.first,
                                inner.last)
            if inner.tag == "id" and inner.args[0] in g.nm and self.hyp_false(g.nm[inner.args[0]], g):
                return None
            raise ElabError(f"fake_lean: the stand-in cannot judge the term '{self.source(node)}'", node.first,
                            node.last)
        if tag == "nomatch":
            h = g.nm.get(args[0].args[0]) if _strip(args[0]).tag == "id" else None
            if h is not None and self.hyp_false(h, g):
                return None
            raise ElabError("missing cases:\n" + (self.hyp_type_text(h) if h else "_"), node.first, node.last)
        if tag == "dbg_trace":
            sys.stderr.write(args[0] + "\n")
            sys.stderr.flush()
            return self.elab(args[1], g)
        if tag == "hole":
            raise ElabError("don't know how to synthesize placeholder\ncontext:\n" + self.goal_text(g), node.first)
        if tag == "fun":
            binders, body = args
            cur = g
            for name, _ty, _b, tok in binders:
                step = self.intro(cur, tok)
                if step is None:
                    raise ElabError(f"type mismatch\n  {self.source(node)}\nhas a function type, but is expected "
                                    f"to have type\n  {self.pp(g.target, sc)}", node.first, node.last)
                cur = step
            return self.elab(body, cur)
        if tag == "app" and args[0].tag in ("id", "at"):
            head = args[0].args[0]
            fargs = args[1]
            if self.resolve(head, sc) is None and not head.endswith(".elim"):
                self.unknown(head, args[0].last)
            if head == "absurd" and len(fargs) == 2:
                typed = self.type_of(fargs[0], g)
                if typed is None or typed[1] is None:
                    raise ElabError(f"fake_lean: the stand-in cannot judge the term '{self.source(fargs[0])}'",
                                    fargs[0].first, fargs[0].last)
                h_ty = self._prop_of(fargs[0], g)
                self.elab(fargs[1], g.with_target(N("not", (h_ty,), h_ty.first, h_ty.last)))
                return None
            if head in ("False.elim", "Empty.elim", "PEmpty.elim", "Fin.elim0", "absurd", "nomatch") \
                    and len(fargs) == 1:
                arg = _strip(fargs[0])
                if arg.tag == "id" and arg.args[0] in g.nm and self.hyp_false(g.nm[arg.args[0]], g):
                    return None
                if head == "False.elim":
                    return self.elab(fargs[0], g.with_target(_id("False", node.first)))
                raise ElabError(f"fake_lean: the stand-in cannot judge the term '{self.source(node)}'",
                                node.first, node.last)
            if head == "id" and len(fargs) == 1:
                return self.elab(fargs[0], g)
            raise ElabError(f"fake_lean: the stand-in does not apply '{head}' to arguments", node.first, node.last)
        raise ElabError(f"fake_lean: the stand-in cannot judge the term '{self.source(node)}'", node.first, node.last)

    def _prop_of(self, node: N, g: Goal) -> N:
        t = _strip(node)
        r = self.resolve(t.args[0], g.sc)
        if r is not None and r[0] == "hyp":
            return r[1].ty
        raise ElabError(f"fake_lean: the stand-in cannot judge the term '{self.source(node)}'", node.first, node.last)

    def tok_at(self, offset: int) -> Tok:
        for t in self.toks:
            if t.start <= offset < t.end or t.start >= offset:
                return Tok(t.kind, t.text, offset, max(offset, t.start if t.start > offset else offset), t.line,
                           t.col, t.bol)
        return self.toks[-1]

    def sides_equal(self, op: str, a: N, b: N, sc: Scope) -> bool:
        try:
            if self.is_prop_like(a, sc) or self.is_prop_like(b, sc) or op == "↔":
                return self.cany(a, sc) == self.cany(b, sc)
            T = numjoin(self.ntype(a, sc), self.ntype(b, sc)) or "Nat"
            return self.carith(a, T, sc)[1] == self.carith(b, T, sc)[1]
        except ElabError:
            return False

    def elab_anon(self, node: N, g: Goal) -> None:
        """``⟨a, b, ...⟩``: And (tail elements nest, as Lean's anonymous constructor does), Iff, True."""
        elems = node.args[0]
        sc = g.sc
        target = _strip(self.unfold(g.target, sc))
        if target.tag == "id" and target.args[0] == "True" and not elems:
            return None
        if target.tag == "bin" and target.args[0] == "↔" and len(elems) == 2:
            a, b = target.args[1], target.args[2]
            self.elab(elems[0], g.with_target(_bin("→", a, b)))
            self.elab(elems[1], g.with_target(_bin("→", b, a)))
            return None
        if target.tag == "ex" and len(elems) >= 2:
            # ⟨w, proof⟩: the witness becomes a `let` the body reads (so closed bodies evaluate)
            binders, body = target.args
            name, _ty, _bracket, _tok = binders[0]
            w = elems[0]
            self.cany(w, sc)
            hyp = Hyp(name or "x", None, g.nm, "subst", value=w, value_raw=self.pp(w, sc), ty_text="?")
            nm = dict(g.nm)
            if name:
                nm[name] = hyp
            rest_target = N("ex", (binders[1:], body), target.first, target.last) if binders[1:] else body
            sub = Goal(g.hyps, rest_target, nm)
            rest = elems[1:]
            if len(rest) == 1:
                return self.elab(rest[0], sub)
            return self.elab_anon(N("anon", (rest,), node.first, node.last), sub)
        if not (target.tag == "bin" and target.args[0] == "∧"):
            raise ElabError(f"invalid constructor ⟨...⟩, expected type must be an inductive type \n  "
                            f"{self.pp(g.target, sc)}", node.first, node.last)
        # the conjuncts, as many as elements (the last takes the rest)
        parts, cur = [], target
        while len(parts) < len(elems) - 1:
            cur = _strip(self.unfold(cur, sc))
            if not (cur.tag == "bin" and cur.args[0] == "∧"):
                break
            parts.append(cur.args[1])
            cur = cur.args[2]
        parts.append(cur)
        if len(parts) != len(elems):
            raise ElabError(f"invalid constructor ⟨...⟩, insufficient number of arguments, constructs 'And.intro' "
                            f"has #2 explicit fields, but only #{len(elems)} provided", node.first, node.last)
        n = len(elems)
        failed = False
        for k, (elem, part) in enumerate(zip(elems, parts)):
            sub = g.with_target(part)
            e = _strip(elem)
            if e.tag in ("id", "at"):
                try:
                    typed = self.type_of(elem, sub)
                except UnknownIdent as err:
                    self.error(err)
                    failed = True
                    continue
                if typed is not None and typed[1] is not None:
                    if typed[1] == self.cprop(part, sc):
                        self.cur["axioms"].update(typed[2])
                        continue
                    app = (f"And.intro {self.term_text(elem)}" if k < n - 1 else
                           f"{{ left := {self.term_text(elems[k - 1])}, right := {self.term_text(elem)} }}")
                    raise ElabError(f"application type mismatch\n  {app}\nargument\n  {self.term_text(elem)}\n"
                                    f"has type\n  {typed[0]} : {typed[3]}\nbut is expected to have type\n  "
                                    f"{self.pp(part, sc)} : Prop", node.first, node.last)
            self.elab(elem, sub)
        if failed:
            self.cur["axioms"].add("sorryAx")

    def have_let(self, node: N, g: Goal, tactic: bool) -> Goal:
        name_tok, binders, ty, value, _body = node.args
        name = name_tok.text if name_tok is not None and name_tok.text != "_" else "this"
        if node.tag == "have":
            if ty is None:
                typed = self.type_of(value, g)
                if typed is None or typed[1] is None:
                    raise ElabError("fake_lean: the stand-in needs the type of a `have`", node.first, node.last)
                hyp = Hyp(name, None, g.nm, "prop", ty_text=typed[0])
                hyp.ty = self._prop_of(value, g)
                self.cur["axioms"].update(typed[2])
                return g.add(hyp)
            self.cprop(ty, g.sc)
            self.elab(value, g.with_target(ty))
            return g.add(Hyp(name, ty, g.nm, "prop"))
        # let: the value as Lean shows it (the literal as written; an included file as a string literal)
        v = _strip(value)
        typed = None
        if v.tag == "incl":
            content = self.read_include(v)
            raw, ty_text, stored = quote_string(content), "String", None
        elif v.tag == "str":
            raw, ty_text, stored = v.args[0], "String", None
        elif v.tag == "num" or (v.tag == "asc" and _strip(v.args[0]).tag == "num"):
            T = self.numtype_of_type(ty) or (self.numtype_of_type(v.args[1]) if v.tag == "asc" else None) or "Nat"
            raw, ty_text, stored = self.pp(value, g.sc), T, value
        else:
            try:
                typed = self.type_of(value, g)
            except UnknownIdent:
                raise
            if typed is None:
                try:
                    T = self.ntype(value, g.sc) or "Nat"
                    self.carith(value, T, g.sc)
                    typed = (T, None, set(), "Type")
                except ElabError:
                    raise
            raw, ty_text, stored = self.pp(value, g.sc), typed[0], value
        canon = None
        if v.tag in ("id", "at") and typed is not None and typed[1] is not None:
            canon = typed[1]
            self.cur["axioms"].update(typed[2])
        if ty is not None:
            ty_text = self.pp(ty, g.sc)
        hyp = Hyp(name, ty, g.nm, "let", value=stored, value_raw=raw, ty_text=ty_text, canon=canon)
        return g.add(hyp)

    # commands
    def is_command_start(self, k: int) -> bool:
        t = self.toks[k]
        if t.bol and t.col == 0:
            return True
        if t.kind == "sym":
            return t.text in STRONG_COMMANDS
        if t.kind == "id":
            return (t.text in STRONG_COMMANDS or (self.mathlib and t.text in MATHLIB_COMMANDS)) and t.text in self.kw
        return False

    def is_keyword_start(self, k: int) -> bool:
        t = self.toks[k]
        if t.kind == "sym":
            return t.text in STRONG_COMMANDS
        return (t.text in STRONG_COMMANDS or t.text in WEAK_COMMANDS or
                (self.mathlib and t.text in MATHLIB_COMMANDS)) and t.text in self.kw

    def chunk_end(self, a: int) -> int:
        toks, n = self.toks, len(self.toks)
        k = a
        # modifiers (and attributes) join the declaration keyword that follows them
        while k < n and toks[k].text in MODIFIERS:
            k = self.pairs.get(k, k) + 1 if toks[k].text == "@[" else k + 1
        k = max(k, a) + 1
        while k < n and not self.is_command_start(k):
            k += 1
        return k

    def run(self, header: bool = True) -> None:
        try:
            self.toks = tokenize(self.text)
        except LeanSyntaxError as e:
            # the tokens before the bad literal still run; the error is reported where Lean reports it
            self.toks = tokenize_prefix(self.text, e.pos)
            self.pairs = match_brackets(self.toks)
            self._run(header)
            self.syntax_error(e)
            self.on_command()
            return
        self.pairs = match_brackets(self.toks)
        self._run(header)

    def _run(self, header: bool) -> None:
        toks, n = self.toks, len(self.toks)
        k = 0
        if header:
            mods = []
            while k < n and toks[k].text in ("import", "prelude"):
                if toks[k].text == "prelude":
                    k += 1
                    continue
                if k + 1 >= n or toks[k + 1].kind != "id":
                    self.log("error", toks[k].end, toks[k].end, "unexpected end of input; expected identifier")
                    self.on_command()
                    return
                mods.append((toks[k], toks[k + 1].text))
                k += 2
            if not self.load_imports(mods):
                self.on_command()
                return
        self.kw = keywords(self.style, self.mathlib)
        recovering = False
        while k < n:
            end = self.chunk_end(k)
            if recovering and not self.is_keyword_start(k):
                k = end
                continue
            recovering = False
            try:
                stop = self.command(k, end)
            except LeanSyntaxError as e:
                self.syntax_error(e)
                stop, recovering = None, True
            except _Stop:
                self.on_command()
                return
            self.on_command()
            if stop == "recover":
                recovering = True
            k = end

    def load_imports(self, mods) -> bool:
        """Reads the imported modules (transitively); False (after an error message) when one is missing."""
        search = lean_path()
        seen: set[str] = set()
        names_from: dict[str, str] = {}

        def visit(module: str, tok: Tok) -> bool:
            if module in seen:
                return True
            seen.add(module)
            root = module.split(".")[0]
            if root in KNOWN_LIBRARIES:
                if root == "Mathlib":
                    self.mathlib = True
                return True
            path = find_module(module, search)
            if path is None:
                self.log("error", tok.start, tok.start, self.words.missing_module(module, search, os.getcwd()))
                return False
            try:
                olean = read_olean(path)
            except (OSError, ValueError) as e:
                self.log("error", tok.start, tok.start, str(e))
                return False
            for dep in olean.get("imports", []):
                if not visit(dep, tok):
                    return False
            for d in olean.get("declarations", []):
                if d["name"] in self.env:
                    self.log("error", tok.start, tok.start,
                             f"import failed, environment already contains '{d['name']}' from "
                             f"{names_from.get(d['name'], self.env[d['name']].get('module', '?'))}")
                    return False
                self.env[d["name"]] = d
                names_from[d["name"]] = module
            return True

        for tok, module in mods:
            self.imports.append(module)
            if not visit(module, tok):
                return False
        return True

    def command(self, a: int, b: int):
        toks = self.toks
        k = a
        while k < b and toks[k].text in MODIFIERS:
            k = self.pairs.get(k, k) + 1 if toks[k].text == "@[" else k + 1
        if k >= b:
            raise LeanSyntaxError(self.words.expected_command(toks[a], self.kw), toks[a].start, toks[a].end)
        t = toks[k]
        word = t.text
        if word in ("theorem", "example", "instance") or (word == "lemma" and self.mathlib):
            return self.cmd_theorem(k, b)
        if word in ("def", "abbrev"):
            return self.cmd_def(k, b)
        if word in ("axiom", "opaque"):
            return self.cmd_axiom(k, b)
        if word == "namespace":
            name = toks[k + 1].text if k + 1 < b and toks[k + 1].kind == "id" else ""
            self.ns.append(("namespace", name))
            return None
        if word == "section":
            self.ns.append(("section", toks[k + 1].text if k + 1 < b and toks[k + 1].kind == "id" else ""))
            return None
        if word == "end":
            if self.ns:
                self.ns.pop()
            else:
                self.log_tok("error", t, t, "invalid 'end', insufficient scopes")
            return None
        if word == "#print":
            if k + 1 < b and toks[k + 1].text == "axioms":
                return self.cmd_print_axioms(k, b)
            return None
        if word == "#check":
            return self.cmd_check(k, b)
        if word == "#eval":
            return self.cmd_eval(k, b)
        if word == "#exit":
            raise _Stop()
        if word == "evil_cmd":
            rest = toks[k + 1:b]
            if len(rest) == 1 and rest[0].kind == "str":
                data = decode_string(rest[0].text)
            else:
                data = self.text[t.end:toks[b - 1].end].strip() if rest else ""
            self.log_tok("information", t, t, data)
            return None
        if word == "import":
            self.log_tok("error", t, t, "invalid 'import' command, it must be used in the beginning of the file")
            return "recover"
        if word in STRONG_COMMANDS or word in WEAK_COMMANDS or word in MODIFIERS \
                or (self.mathlib and word in MATHLIB_COMMANDS):
            return None  # open, set_option, variable, universe, attribute, ...: no effect on what is judged
        raise LeanSyntaxError(self.words.expected_command(t, self.kw), t.start, t.end)

    def split_signature(self, i: int, b: int):
        """(index of the top-level ':', index of the top-level ':=') in toks[i:b]; None where absent."""
        colon = assign = None
        k = i
        while k < b:
            t = self.toks[k]
            if t.kind == "sym" and t.text in OPENERS and k in self.pairs and self.pairs[k] < b:
                k = self.pairs[k] + 1
                continue
            if t.text == ":" and colon is None and assign is None:
                colon = k
            elif t.text == ":=":
                assign = k
                break
            k += 1
        return colon, assign

    def parse_signature(self, k: int, b: int, need_name: bool):
        toks = self.toks
        i = k + 1
        name_tok = None
        if need_name:
            if i >= b or toks[i].kind != "id" or toks[i].text in self.kw:
                Parser(toks, i, b, self.kw, self.pairs).fail("identifier")
            name_tok = toks[i]
            i += 1
        colon, assign = self.split_signature(i, b)
        if colon is None:
            p = Parser(toks, i, b, self.kw, self.pairs)
            p.binders(stop=(":", ":="))
            p.fail("':'")
        p = Parser(toks, i, colon, self.kw, self.pairs)
        binders = p.binders(stop=(":",))
        if p.peek() is not None:
            p.fail("':'")
        tend = assign if assign is not None else b
        p = Parser(toks, colon + 1, tend, self.kw, self.pairs)
        ty = p.expr(0)
        if p.peek() is not None:
            p.fail("':='")
        return name_tok, binders, ty, colon, assign

    def new_decl_state(self) -> None:
        self.cur = {"axioms": set(), "explicit": [], "error": False}

    def binder_goal(self, binders, ty: N) -> Goal:
        nm: dict = {}
        hyps: list[Hyp] = []
        for name, bty, bracket, _tok in binders:
            kind = self.hyp_kind(bty, bracket)
            hname = name if name else "inst✝"
            h = Hyp(hname, bty, dict(nm), kind)
            hyps.append(h)
            if name:
                nm[name] = h
        return Goal(hyps, ty, nm)

    def check_statement(self, binders, ty: N) -> None:
        """Reads every binder type and the statement (UnknownIdent for a name that means nothing)."""
        sc = Scope({})
        t = _strip(ty)
        if t.tag in ("id", "at") and not binders:
            r = self.resolve(t.args[0], sc)
            if r is not None and r[0] == "decl" and r[1]["kind"] in ("theorem", "axiom"):
                raise ElabError(f"type expected\nfailed to synthesize instance\n  CoeSort ({r[1]['type']}) ?m.4",
                                ty.first, ty.last)
        for name, bty, bracket, _tok in binders:
            if bty is not None:
                self.ctype(bty, sc) if self.is_type(bty) or bracket == "[" else self.cprop(bty, sc)
            sc = sc.bind(name, bty, sc)
        self.cprop(ty, sc)

    def magic(self, a: int, b: int) -> None:
        nums = {t.text for t in self.toks[a:b] if t.kind == "num"}
        if MAGIC_HANG in nums or MAGIC_SEGV in nums or MAGIC_OOM in nums:
            self.on_command()
        if MAGIC_HANG in nums:
            time.sleep(3600)
        if MAGIC_SEGV in nums:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(5)
        if MAGIC_OOM in nums:
            sys.stdout.flush()
            sys.stderr.write("INTERNAL PANIC: out of memory\n")
            sys.stderr.flush()
            os._exit(1)

    def cmd_theorem(self, k: int, b: int):
        toks = self.toks
        kwtok = toks[k]
        is_example = kwtok.text in ("example", "instance")
        name_tok, binders, ty, colon, assign = self.parse_signature(k, b, need_name=not is_example)
        name = self.qualify(name_tok.text) if name_tok is not None else None
        if assign is None:
            Parser(toks, b, b, self.kw, self.pairs).fail("':='")
        if name is not None and name in self.env:
            self.log_tok("error", name_tok, name_tok, f"'{name}' has already been declared")
            return None
        # parse the body first: a parse error is reported before anything the elaboration says
        body_first = assign + 1
        parse_err, leftover, term, block = None, None, None, None
        by_tok = toks[body_first] if body_first < b and toks[body_first].text == "by" else None
        if body_first >= b:
            parse_err = LeanSyntaxError("unexpected end of input; expected term", toks[assign].end)
        elif by_tok is not None:
            nodes, stop, err = self.parse_block(body_first + 1, b)
            block, parse_err = nodes, err
            if err is None and stop < b:
                leftover = toks[stop]
        else:
            p = Parser(toks, body_first, b, self.kw, self.pairs)
            try:
                term = p.expr(0)
                if p.peek() is not None:
                    leftover = p.peek()
            except LeanSyntaxError as e:
                parse_err = e
        if parse_err is not None:
            self.syntax_error(parse_err)
        self.new_decl_state()
        statement_ok = True
        try:
            self.check_statement(binders, ty)
        except ElabError as e:
            self.error(e)
            statement_ok = False
        canon = ptype = None
        if statement_ok:
            canon = self.canon_statement(binders, ty, Scope({}))
            ptype = self.statement_pp(binders, ty)
            self.magic(k, assign)
            g = self.binder_goal(binders, ty)
            if parse_err is not None and term is None and (block is None or (
                    not block and parse_err.msg != "unknown tactic")):
                # the body is missing (not even one tactic parsed): it elaborates as `sorry`, silently
                self.cur["axioms"].add("sorryAx")
            elif block is not None:
                try:
                    left = self.run_seq(block, [g])
                    if left:
                        last = toks[b - 1] if leftover is None else toks[toks.index(leftover) - 1]
                        if parse_err is not None:
                            last = self.last_before(parse_err.pos)
                        raise ElabError("unsolved goals\n" + self.goals_text(left), by_tok, last)
                except ElabError as e:
                    self.error(e)
            elif term is not None:
                try:
                    self.elab(term, g)
                except ElabError as e:
                    self.error(e)
        if not statement_ok:
            canon, ptype = f"sorry#{kwtok.start}", self.statement_pp(binders, ty)
        failed = self.cur["error"] or not statement_ok
        if self.cur["explicit"] and not failed:
            where = self.cur["explicit"][0] if self.words.early else (name_tok or kwtok)
            self.log_tok("warning", where, where, self.words.uses_sorry())
        axioms = set(self.cur["axioms"])
        if failed:
            axioms.add("sorryAx")
        if name is not None:
            self.add_decl({"name": name, "kind": "theorem", "type": ptype, "canon": canon,
                           "axioms": sorted(axioms, key=name_key),
                           "kernel_ok": MAGIC_KERNEL not in {t.text for t in toks[k:assign]}})
        if leftover is not None and parse_err is None:
            raise LeanSyntaxError(self.words.expected_command(leftover, self.kw), leftover.start, leftover.end)
        return "recover" if parse_err is not None else None

    def last_before(self, offset: int) -> Tok:
        last = self.toks[0]
        for t in self.toks:
            if t.end > offset:
                break
            last = t
        return last

    def add_decl(self, d: dict) -> None:
        d.setdefault("module", self.module)
        self.env[d["name"]] = d
        self.own.append(d["name"])

    def cmd_def(self, k: int, b: int):
        toks = self.toks
        i = k + 1
        if i >= b or toks[i].kind != "id" or toks[i].text in self.kw:
            Parser(toks, i, b, self.kw, self.pairs).fail("identifier")
        name_tok = toks[i]
        name = self.qualify(name_tok.text)
        colon, assign = self.split_signature(i + 1, b)
        if assign is None:
            Parser(toks, b, b, self.kw, self.pairs).fail("':='")
        p = Parser(toks, i + 1, colon if colon is not None else assign, self.kw, self.pairs)
        binders = p.binders(stop=(":", ":="))
        ty = None
        if colon is not None:
            tp = Parser(toks, colon + 1, assign, self.kw, self.pairs)
            ty = tp.expr(0)
            if tp.peek() is not None:
                tp.fail("':='")
        vp = Parser(toks, assign + 1, b, self.kw, self.pairs)
        value = vp.expr(0)
        leftover = vp.peek()
        if name in self.env:
            self.log_tok("error", name_tok, name_tok, f"'{name}' has already been declared")
            return None
        self.new_decl_state()
        is_prop = ty is not None and _strip(ty).tag == "id" and _strip(ty).args[0] == "Prop" and not binders
        d = {"name": name, "kind": "def", "type": self.pp(ty) if ty is not None else "?", "axioms": [],
             "kernel_ok": True, "prop_def": is_prop}
        try:
            if is_prop:
                d["vcanon"] = self.cprop(value, Scope({}))
                d["value"] = self.pp(value)
                d["value_src"] = self.text[value.first.start:value.last.end]
            else:
                g = self.binder_goal(binders, ty or _id("Nat", name_tok))
                d["vcanon"] = self.cany(value, g.sc)
                if ty is None:
                    T = self.ntype(value, g.sc)
                    d["type"] = T or ("String" if _strip(value).tag == "str" else "Nat")
        except ElabError as e:
            self.error(e)
            d["vcanon"] = f"sorry#{k}"
            d["axioms"] = ["sorryAx"]
        self.add_decl(d)
        if leftover is not None:
            raise LeanSyntaxError(self.words.expected_command(leftover, self.kw), leftover.start, leftover.end)
        return None

    def cmd_axiom(self, k: int, b: int):
        name_tok, binders, ty, colon, assign = self.parse_signature(k, b, need_name=True)
        name = self.qualify(name_tok.text)
        if name in self.env:
            self.log_tok("error", name_tok, name_tok, f"'{name}' has already been declared")
            return None
        self.new_decl_state()
        try:
            self.check_statement(binders, ty)
            canon = self.canon_statement(binders, ty, Scope({}))
        except ElabError as e:
            self.error(e)
            canon = f"sorry#{k}"
        self.add_decl({"name": name, "kind": "axiom", "type": self.statement_pp(binders, ty), "canon": canon,
                       "axioms": [name], "kernel_ok": True})
        return None

    def cmd_print_axioms(self, k: int, b: int):
        toks = self.toks
        t = toks[k]
        if k + 2 >= b or toks[k + 2].kind != "id":
            Parser(toks, k + 2, b, self.kw, self.pairs).fail("identifier")
        name = toks[k + 2].text
        d = self.find_decl(name)
        if d is None:
            self.log("error", t.start, t.end, self.words.unknown_constant(name))
        else:
            self.log("information", t.start, t.end, axioms_report(d["name"], d.get("axioms", [])))
        if k + 3 < b:
            u = toks[k + 3]
            raise LeanSyntaxError(self.words.expected_command(u, self.kw), u.start, u.end)
        return None

    def cmd_check(self, k: int, b: int):
        toks = self.toks
        t = toks[k]
        if k + 1 < b and toks[k + 1].kind == "id":
            d = self.find_decl(toks[k + 1].text)
            if d is not None:
                self.log("information", t.start, t.end, f"{d['name']} : {d['type']}")
                return None
            if k + 2 == b:
                u = toks[k + 1]
                self.log("error", u.start, u.end, self.words.unknown_identifier(u.text))
                return None
        self.log("information", t.start, t.end, self.text[t.end:toks[b - 1].end].strip() + " : Prop")
        return None

    def cmd_eval(self, k: int, b: int):
        toks = self.toks
        t = toks[k]
        p = Parser(toks, k + 1, b, self.kw, self.pairs)
        e = p.expr(0)
        s = _strip(e)
        if s.tag == "str":
            self.log("information", t.start, t.end, s.args[0])
        elif s.tag == "app" and s.args[0].tag == "id" and s.args[0].args[0] in ("IO.println", "IO.print") \
                and len(s.args[1]) == 1 and _strip(s.args[1][0]).tag == "str":
            self.log("information", t.start, t.end, _strip(s.args[1][0]).args[1])
        else:
            try:
                T = self.ntype(e, Scope({})) or "Nat"
                v, _ = self.carith(e, T, Scope({}))
                if v is None:
                    raise NotEvaluable()
                self.log("information", t.start, t.end, str(v))
            except (ElabError, NotEvaluable):
                self.log("error", t.start, t.end, "fake_lean: the stand-in cannot evaluate this")
        return None

    def own_decls(self) -> list[dict]:
        return [self.env[n] for n in self.own]


class _Stop(Exception):
    pass


def tokenize_prefix(text: str, pos: int) -> list[Tok]:
    try:
        return tokenize(text[:pos])
    except LeanSyntaxError:
        return []


def _strip(node: N) -> N:
    while node.tag in ("paren",):
        node = node.args[0]
    return node


def _mentions(node, name: str) -> bool:
    if isinstance(node, N):
        if node.tag in ("id", "at") and node.args[0] == name:
            return True
        return any(_mentions(a, name) for a in node.args)
    if isinstance(node, (list, tuple)):
        return any(_mentions(a, name) for a in node)
    return False


def _domain(T: str, radius: int) -> list[int]:
    if T == "Nat":
        return list(range(0, 2 * radius + 1)) + [10 ** 6, 10 ** 9 + 7]
    return list(range(-radius, radius + 1)) + [10 ** 6, -(10 ** 6), 10 ** 9 + 7]


def _grid(types: list[str], budget: int = 30000):
    """Sample points for the variables: the whole grid when it is small, else a fixed pseudo-random sample."""
    import itertools
    import random
    if not types:
        return [()]
    radius = 60
    while radius > 1 and (2 * radius + 4) ** len(types) > budget:
        radius = max(1, radius * 2 // 3)
    domains = [_domain(T, radius) for T in types]
    total = 1
    for d in domains:
        total *= len(d)
    if total <= budget:
        return itertools.product(*domains)
    rng = random.Random(14)
    return ([rng.choice(d) for d in domains] for _ in range(budget))


def _dvd(a, b):
    return b == 0 if a == 0 else b % a == 0


_EVAL_GLOBALS = {"__builtins__": {"bool": bool}, "_A": arith, "_F": call_function, "_P": call_predicate,
                 "_D": _dvd}


# --- drivers ------------------------------------------------------------------------------------------------

HERE = os.path.dirname(os.path.realpath(__file__))

_EARLY_HELP = """Miscellaneous:
  --help -h          display this message
  --version -v       display version number
  --githash          display the git commit hash number used to build this binary
  --run              call the 'main' definition in a file with the remaining arguments
  --o=oname -o       create olean file
  --c=fname -c       name of the C output file
  --stdin            take input from stdin
  --root=dir         set package root directory from which the module name of the input file is calculated
                     (default: current working directory)
  --trust=num -t     trust level (default: max) 0 means do not trust any macro,
                     and type check all imported modules
  --quiet -q         do not print verbose messages
  --memory=num -M    maximum amount of memory that should be used by Lean
                     (in megabytes)
  --timeout=num -T   maximum number of memory allocations per task
                     this is a deterministic way of interrupting long running tasks
  --threads=num -j   number of threads used to process lean files
  --tstack=num -s    thread stack size in Kb
  --server           start lean in server mode
  --worker           start lean in server-worker mode
  --plugin=file      load and initialize shared library for registering linters etc.
  --deps             just print dependencies of a Lean input
  --print-prefix     print the installation prefix for Lean and exit
  --print-libdir     print the installation directory for Lean's built-in libraries and exit
  --profile          display elaboration/type checking time for each definition/theorem
  --stats            display environment statistics
  -D name=value      set a configuration option (see set_option command)
"""
_CURRENT_HELP = """Miscellaneous:
  --help -h          display this message
  --features -f      display features compiler provides (eg. LLVM support)
  --version -v       display version number
  --githash          display the git commit hash number used to build this binary
  --run              call the 'main' definition in the input file with the remaining arguments
  --o=oname -o       create olean file
  --i=iname -i       create ilean file
  --c=fname -c       name of the C output file
  --bc=fname -b      name of the LLVM bitcode file
  --stdin            take input from stdin
  --root=dir         set package root directory from which the module name of the input file is calculated
                     (default: current working directory)
  --trust=num -t     trust level (default: max) 0 means do not trust any macro,
                     and type check all imported modules
  --quiet -q         do not print verbose messages
  --memory=num -M    maximum amount of memory that should be used by Lean
                     (in megabytes)
  --timeout=num -T   maximum number of memory allocations per task
                     this is a deterministic way of interrupting long running tasks
  --threads=num -j   number of threads used to process lean files
  --tstack=num -s    thread stack size in Kb
  --server           start lean in server mode
  --worker           start lean in server-worker mode
  --plugin=file      load and initialize Lean shared library for registering linters etc.
  --load-dynlib=file load shared library to make its symbols available to the interpreter
  --json             report Lean output (e.g., messages) as JSON (one per line)
  --deps             just print dependencies of a Lean input
  --print-prefix     print the installation prefix for Lean and exit
  --print-libdir     print the installation directory for Lean's built-in libraries and exit
  --profile          display elaboration/type checking time for each definition/theorem
  --stats            display environment statistics
  --error=kind       report Lean messages of kind as errors
  -D name=value      set a configuration option (see set_option command)
"""


def version_line(style: str) -> str:
    if style == "early":
        return "Lean (version 4.0.0-fake, commit fake-early, Release)"
    return "Lean (version 4.0.0-fake, x86_64-unknown-linux-gnu, commit fake-current, Release)"


def format_plain(m: Msg, file_label: str, style: str) -> str:
    if m.severity == "information":
        text = m.data if style != "infopos" else f"{file_label}:{m.line}:{m.col}: info: {m.data}"
    else:
        text = f"{file_label}:{m.line}:{m.col}: {m.severity}: {m.data}"
    return text if text.endswith("\n") else text + "\n"


def format_json(m: Msg, file_label: str) -> str:
    obj = {"caption": "", "data": m.data, "fileName": file_label, "isSilent": False, "keepFullRange": False,
           "kind": "[anonymous]", "pos": {"column": m.col, "line": m.line}, "severity": m.severity}
    if m.eline is not None:
        obj["endPos"] = {"column": m.ecol, "line": m.eline}
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


_VALUED_OPTIONS = {"-j", "-M", "-T", "-t", "-s", "-c", "-i", "-b", "-D", "-e"}


def cli_main(argv0: str, argv: list[str]) -> int:
    """``lean [options] FILE`` as described at the top of this module."""
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(encoding="utf-8")
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # a closed pipe ends the process quietly, as for Lean
    style, args = style_from(argv0, argv)
    help_text = _EARLY_HELP if style == "early" else _CURRENT_HELP
    out = None
    use_json = use_stdin = False
    files: list[str] = []
    it = iter(args)
    for arg in it:
        if arg in ("--version", "-v"):
            print(version_line(style))
            return 0
        if arg in ("--help", "-h"):
            sys.stdout.write(version_line(style) + "\n" + help_text)
            return 0
        if arg == "--githash":
            print("fake" + style)
            return 0
        if arg == "--print-prefix":
            print(HERE)
            return 0
        if arg == "--print-libdir":
            print(HERE)
            return 0
        if arg == "--json" and style != "early":
            use_json = True
        elif arg == "--stdin":
            use_stdin = True
        elif arg == "-o":
            out = next(it, None)
        elif arg.startswith("--o=") or arg.startswith("-o="):
            out = arg.split("=", 1)[1]
        elif arg.startswith("-o") and len(arg) > 2 and not arg.startswith("--"):
            out = arg[2:]
        elif arg in _VALUED_OPTIONS:
            next(it, None)
        elif arg.startswith("-D") or arg in ("-q", "--quiet", "--profile", "--stats", "--deps") \
                or (arg.startswith("--") and "=" in arg and arg.split("=")[0] in (
                    "--threads", "--memory", "--timeout", "--root", "--trust", "--tstack", "--c", "--i", "--bc",
                    "--error", "--plugin", "--load-dynlib")):
            continue  # real Lean options that change nothing the stand-in judges: accepted and ignored
        elif arg.startswith("-"):
            sys.stderr.write(f"{argv0}: unrecognized option '{arg}'\n")
            sys.stdout.write("Unknown command line option\n" + version_line(style) + "\n" + help_text)
            return 1
        else:
            files.append(arg)
    if use_stdin:
        text, label = sys.stdin.read(), "<stdin>"
    else:
        if len(files) != 1:
            sys.stdout.write("Expected exactly one file name\n" + version_line(style) + "\n" + help_text)
            return 1
        label = files[0]
        try:
            with open(label, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            sys.stderr.write(f"file '{label}' not found\n")
            return 1
    module = os.path.splitext(os.path.basename(label))[0]
    printed = [0]
    elab: Elaborator | None = None

    def flush():
        msgs = elab.msgs
        for m in msgs[printed[0]:]:
            sys.stdout.write(format_json(m, label) if use_json else format_plain(m, label, style))
        printed[0] = len(msgs)
        sys.stdout.flush()

    elab = Elaborator(text, style=style, env={}, module=module, file_label=label,
                      src_dir=os.path.dirname(os.path.abspath(label)) if not use_stdin else os.getcwd(),
                      on_command=flush)
    elab.run()
    flush()
    if elab.has_errors:
        return 1
    if out is not None:
        try:
            write_olean(out, module, elab.imports, elab.own_decls())
        except OSError as e:
            sys.stdout.write(f"failed to write '{out}': {e.strerror}\n")
            return 1
    return 0


def checker_main(argv: list[str]) -> int:
    """``lean4checker [--fresh] MODULE...``: replays each module's declarations in the (fake) kernel."""
    fresh = "--fresh" in argv
    modules = [a for a in argv if not a.startswith("-")]
    if any(a in ("--help", "-h") for a in argv) or not modules:
        sys.stdout.write("usage: fake_lean4checker.py [--fresh] MODULE...\n"
                         "Replays the declarations of each MODULE (MODULE.olean on LEAN_PATH) in the kernel.\n")
        return 0 if modules or any(a in ("--help", "-h") for a in argv) else 1
    search = lean_path()
    rc = 0
    done: set[str] = set()

    def check(module: str, top: bool) -> None:
        nonlocal rc
        if module in done:
            return
        done.add(module)
        if module.split(".")[0] in KNOWN_LIBRARIES:
            return
        path = find_module(module, search)
        if path is None:
            print(f"error: object file for module {module} not found (LEAN_PATH={os.pathsep.join(search)})")
            rc = 1
            return
        try:
            olean = read_olean(path)
        except (OSError, ValueError) as e:
            print(f"error: {e}")
            rc = 1
            return
        if fresh:
            for dep in olean.get("imports", []):
                check(dep, False)
        for d in olean.get("declarations", []):
            if not d.get("kernel_ok", True):
                print(f"error: kernel rejected {d['name']}: (kernel) declaration type mismatch, '{d['name']}' "
                      "does not have the type it claims")
                rc = 1

    for module in modules:
        check(module, True)
    sys.stdout.flush()
    return rc


# --- the REPL (leanprover-community/repl protocol) ----------------------------------------------------------

REPL_SEVERITY = {"information": "info", "warning": "warning", "error": "error"}


class Repl:
    """Environments are immutable: each command gets a new number (as the real REPL)."""

    def __init__(self):
        self.envs: list[dict] = []
        self.proof_states = 0

    def next_proof_state(self) -> int:
        n = self.proof_states
        self.proof_states += 1
        return n

    def new_env(self, decls: dict, mathlib: bool, imports: list[str]) -> int:
        self.envs.append({"decls": decls, "mathlib": mathlib, "imports": imports})
        return len(self.envs) - 1

    def handle(self, request: dict) -> dict:
        if "cmd" in request or "path" in request:
            if "path" in request:
                try:
                    with open(request["path"], encoding="utf-8") as f:
                        text = f.read()
                except OSError as e:
                    return {"message": f"fake: cannot read {request['path']}: {e.strerror}"}
            else:
                text = request["cmd"]
            if not isinstance(text, str):
                return {"message": "fake: cmd must be a string"}
            base = None
            if request.get("env") is not None:
                n = request["env"]
                if not isinstance(n, int) or not 0 <= n < len(self.envs):
                    return {"message": "Unknown environment."}
                base = self.envs[n]
            elab = Elaborator(text, style="current", env=dict(base["decls"]) if base else {}, module="_repl",
                              file_label="<input>", src_dir=os.getcwd(),
                              mathlib=base["mathlib"] if base else False, repl=True,
                              next_proof_state=self.next_proof_state)
            elab.run(header=base is None)
            env_id = self.new_env(elab.env, elab.mathlib, (base["imports"] if base else []) + elab.imports)
            reply: dict = {}
            if elab.sorries:
                reply["sorries"] = elab.sorries
            if elab.msgs:
                reply["messages"] = [{"severity": REPL_SEVERITY[m.severity],
                                      "pos": {"line": m.line, "column": m.col},
                                      **({"endPos": {"line": m.eline, "column": m.ecol}} if m.eline is not None
                                         else {}),
                                      "data": m.data}
                                     for m in elab.msgs]
            reply["env"] = env_id
            return reply
        if "pickleTo" in request:
            n = request.get("env")
            if not isinstance(n, int) or not 0 <= n < len(self.envs):
                return {"message": "Unknown environment."}
            path = request["pickleTo"]
            env = self.envs[n]
            try:
                folder = os.path.dirname(path)
                if folder:
                    os.makedirs(folder, exist_ok=True)
                write_olean(path, os.path.splitext(os.path.basename(path))[0], env["imports"],
                            list(env["decls"].values()))
            except OSError as e:
                return {"message": f"fake: cannot write {path}: {e.strerror}"}
            return {"env": n}
        if "unpickleEnvFrom" in request:
            try:
                olean = read_olean(request["unpickleEnvFrom"])
            except (OSError, ValueError) as e:
                return {"message": f"fake: {e}"}
            decls = {d["name"]: d for d in olean.get("declarations", [])}
            imports = olean.get("imports", [])
            mathlib = any(m.split(".")[0] == "Mathlib" for m in imports)
            return {"env": self.new_env(decls, mathlib, imports)}
        if "tactic" in request or "proofState" in request:
            return {"message": "fake: tactic mode is not supported by fake_repl.py --evaluate"}
        return {"message": f"fake: unsupported request {request!r}"}
