"""Read what Lean printed: diagnostics (``FILE:LINE:COL: severity: text``) and ``#print axioms`` reports.

``lean FILE`` prints one message per diagnostic, ``FILE:LINE:COL: error: text``, the text possibly running over
several lines; ``#print axioms NAME`` prints ``'NAME' depends on axioms: [a, b]`` or ``'NAME' does not depend
on any axioms`` (plain, or after an ``info:`` prefix in newer releases). Lines are 1-based, columns 0-based
(as Lean counts: in codepoints). The REPL sends the same messages as JSON; :func:`axioms_in` reads its
``#print axioms`` replies too.

Example::

    python -m verifiers.lean.diagnostics ../shared/lean/cli-cases.json
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass

# `lean` prints the path it was given; any prefix up to ":LINE:COL: severity:" is the file name.
_DIAG = re.compile(r"^(?P<file>.*?):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning|info|information)"
                   r"(?:\([^)]*\))?:[ ]?(?P<text>.*)$")
_AXIOMS = re.compile(r"'(?P<name>[^']+)' (?:depends on axioms: \[(?P<list>[^\]]*)\]|(?P<none>does not depend on any axioms))")
_AXIOMS_OPEN = re.compile(r"'(?P<name>[^']+)' depends on axioms: \[[^\]]*$")

# What a sound proof may use: Lean's three standard axioms. `sorryAx` (sorry, admit, error recovery),
# `Lean.ofReduceBool` (native_decide trusts the compiler) and any declared axiom are not.
STANDARD_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})


@dataclass(frozen=True)
class Diagnostic:
    line: int      # 1-based
    column: int    # 0-based, codepoints
    severity: str  # error | warning | info
    text: str

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.severity}: {self.text}"


def _join_open_axioms(lines: list[str]) -> list[str]:
    """Lean wraps a long axioms list over lines; put each report back on one line."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if _AXIOMS_OPEN.search(line):
            while "]" not in line and i + 1 < len(lines):
                i += 1
                line += " " + lines[i].strip()
        out.append(line)
        i += 1
    return out


def parse_output(output: str, filename: str | None = None) -> tuple[list[Diagnostic], dict[str, tuple[str, ...]]]:
    """Diagnostics (for ``filename`` when given) and the axioms reported per declaration name.

    A line that is neither a diagnostic header nor an axioms report continues the message before it.
    """
    diags: list[Diagnostic] = []
    axioms: dict[str, tuple[str, ...]] = {}
    current: dict | None = None

    def flush() -> None:
        if current is not None:
            diags.append(Diagnostic(current["line"], current["col"], current["sev"], "\n".join(current["text"])))

    for line in _join_open_axioms(output.splitlines()):
        m = _DIAG.match(line)
        a = _AXIOMS.search(line)
        if a and (m is None or m["sev"].startswith("info")):
            axioms[a["name"]] = () if a["none"] else tuple(x.strip() for x in a["list"].split(",") if x.strip())
            flush()
            current = None
            continue
        if m and (filename is None or m["file"] == filename or m["file"].endswith("/" + filename)):
            flush()
            sev = "info" if m["sev"].startswith("info") else m["sev"]
            current = {"line": int(m["line"]), "col": int(m["col"]), "sev": sev, "text": [m["text"]]}
        elif current is not None:
            current["text"].append(line)
    flush()
    return diags, axioms


def axioms_in(text: str) -> tuple[str, tuple[str, ...]] | None:
    """(name, axioms) from one ``#print axioms`` message (e.g. the REPL's info message), else None."""
    a = _AXIOMS.search(" ".join(text.split()))
    if a is None:
        return None
    return a["name"], (() if a["none"] else tuple(x.strip() for x in a["list"].split(",") if x.strip()))


def unsound_axioms(axioms: tuple[str, ...]) -> tuple[str, ...]:
    """The axioms a proof used beyond the standard three (empty: sound)."""
    return tuple(a for a in axioms if a not in STANDARD_AXIOMS)


def main(argv: list[str] | None = None) -> int:
    """Print the parsed diagnostics and axioms of every case in a cli-cases.json file."""
    path = (argv if argv is not None else sys.argv[1:])[0]
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    for case in cases:
        diags, axioms = parse_output(case["stdout"] + case["stderr"], case["file"])
        print(case["file"], [str(d) for d in diags], axioms)
    return 0


if __name__ == "__main__":
    sys.exit(main())
