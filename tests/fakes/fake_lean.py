#!/usr/bin/env python3
"""A stand-in for ``lean FILE`` in tests: it judges the small closed statements our formalizer writes.

It is NOT Lean. It reads a batch file as the file backend writes it (header, then ``namespace Sk`` /
``theorem step : PROP := PROOF`` / ``end Sk`` / ``#print axioms Sk.step`` blocks), evaluates PROP with
Python when PROP is integer arithmetic (``(a : Int) op b = c``, ``≠``, ``∧``, ``¬``, ``True``/``False``, and
hypotheses ``(h : P)``), and prints what real Lean prints, in its layout (``FILE:LINE:COL: error: ...`` and
``'Sk.step' depends on axioms: [...]``; see ../shared/lean/cli-cases.json). It lets the tests drive the
whole file path (sandbox, batching, diagnostics mapping, bisection) on machines without Lean; tests marked
``lean`` run the same path against the real thing.

Tactics: ``decide``/``rfl``/``omega``/``simp`` prove a true PROP and fail on a false one (the error at the
proof); ``sorry`` warns and depends on ``sorryAx``; ``native_decide`` depends on ``Lean.ofReduceBool``;
``first | ...`` proves ``False`` from hypotheses when one of them is false; an unknown tactic is an error.
A statement it cannot read is "unknown identifier" at the statement. Magic numbers: 7777777 in a statement
hangs, 6666666 crashes (SIGSEGV), 5555555 runs "out of memory". ``import Missing`` in the header fails.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time

TACTICS = {"decide", "rfl", "omega", "simp", "norm_num"}


def evaluate(prop: str) -> bool | None:
    """Python's value of a closed arithmetic proposition in Lean syntax; None when it is not one."""
    expr = prop.strip()
    expr = re.sub(r"\((-?\d+) : (?:Int|Nat|ℤ|ℕ)\)", r"\1", expr)
    expr = expr.replace("≠", "!=").replace("∧", " and ").replace("∨", " or ").replace("¬", " not ")
    expr = re.sub(r"(?<![<>=!])=(?!=)", "==", expr)
    if set(re.findall(r"[A-Za-z_]+", expr)) - {"and", "or", "not", "True", "False"}:
        return None
    if re.search(r"[^\w\s+\-*/()!=<>]", expr):
        return None
    expr = expr.replace("/", "//")
    try:
        return bool(eval(expr, {"__builtins__": {}}, {}))  # noqa: S307 - digits and operators only (checked above)
    except Exception:
        return None


def split_binders(stmt: str) -> tuple[list[str], str]:
    """``(h : P) (g : Q) : C`` -> ([P, Q], C)."""
    hyps = []
    rest = stmt.strip()
    while rest.startswith("("):
        depth = 0
        for i, ch in enumerate(rest):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0:
                break
        inner, rest = rest[1:i], rest[i + 1:].strip()
        hyps.append(inner.split(":", 1)[1].strip())
    return hyps, rest[1:].strip() if rest.startswith(":") else rest


def judge(decl: str, line: int, out: list[str], name: str) -> bool:
    """Print the diagnostics of one ``theorem step ... := proof``; True when it was declared."""
    flat = decl.replace("\n", " ")
    head, _, proof = flat.partition(":=")
    stmt = head[len("theorem step"):]
    hyps, concl = split_binders(stmt)
    if "7777777" in stmt:
        time.sleep(3600)
    if "6666666" in stmt:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "5555555" in stmt:
        sys.stderr.write("INTERNAL PANIC: out of memory\n")
        sys.exit(1)
    values = [evaluate(h) for h in hyps] + [evaluate(concl)]
    if any(v is None for v in values):
        word = re.search(r"[A-Za-z_]\w*", concl)
        out.append(f"Steps.lean:{line}:{len('theorem step : ')}: error: unknown identifier "
                   f"'{word.group(0) if word else '?'}'")
        return False
    proof_col = len(head) + 3
    proof = proof.strip()
    tactic = proof[3:].strip() if proof.startswith("by ") else proof
    axioms: list[str] = []
    hyp_false = any(v is False for v in values[:-1])
    if tactic in ("sorry", "admit"):
        out.append(f"Steps.lean:{line}:{proof_col}: warning: declaration uses 'sorry'")
        axioms = ["sorryAx"]
    elif tactic == "native_decide":
        axioms = ["Lean.ofReduceBool"] if values[-1] else []
        if not values[-1]:
            out.append(f"Steps.lean:{line}:{proof_col}: error: native_decide evaluated that the proposition is false")
            axioms = ["sorryAx"]
    elif tactic.startswith("first |"):
        if not (hyp_false or values[-1]):
            out.append(f"Steps.lean:{line}:{proof_col}: error: unsolved goals")
            axioms = ["sorryAx"]
    elif tactic in TACTICS:
        if not (values[-1] or hyp_false):
            out.append(f"Steps.lean:{line}:{proof_col}: error: failed to reduce to 'true'\n  false")
            axioms = ["sorryAx"]
    else:
        out.append(f"Steps.lean:{line}:{proof_col}: error: unknown tactic")
        axioms = ["sorryAx"]
    out.append(f"'{name}' depends on axioms: [{', '.join(axioms)}]" if axioms else
               f"'{name}' does not depend on any axioms")
    return True


def main(argv: list[str]) -> int:
    if argv == ["--version"]:
        print("Lean (version 4.0.0-fake, tests/fakes/fake_lean.py)")
        return 0
    path = argv[-1]
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    out: list[str] = []
    errors = False
    i = 0
    block: list[str] = []
    start = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("import Missing"):
            out.append(f"Steps.lean:{i + 1}:0: error: unknown package 'Missing'")
            errors = True
        elif line.startswith("theorem step"):
            block, start = [line], i + 1
        elif block and not line.startswith("end S"):
            block.append(line)
        elif line.startswith("end S"):
            name = line[4:] + ".step"
            before = len(out)
            judge("\n".join(block), start, out, name)
            errors |= any(": error:" in o for o in out[before:])
            block = []
        i += 1
    print("\n".join(out))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
