"""Read what Lean printed: messages (text or ``--json``) and ``#print axioms`` reports, strictly where it matters.

Two kinds of output are read here, with different trust:

- **hints** (:func:`parse_messages`): what ``lean`` printed while elaborating untrusted proofs. A proof can
  print there (a logged message, an error that echoes a string), so these messages only ever *explain* a
  failure or locate which declaration failed; they never make a step proved.
- **the trusted check** (:func:`read_check`): the output of a file that holds nothing but our names and our
  statements (``example : S := @P`` and ``#print axioms G``). It is read strictly: every line must be a message
  header, a continuation of the message before it, or an axioms report for one of the names we asked about,
  exactly once; anything else raises :class:`UnexpectedOutput` and the whole batch is an ``error``. With
  ``--json`` an axioms report counts only at the line of our ``#print axioms`` command.

``lean FILE`` prints ``FILE:LINE:COL: severity: text`` (the text possibly running over several lines); early
Lean 4 prints information messages (``#print axioms``) bare, current releases as ``FILE:L:C: info: ...``;
``lean --json`` prints one JSON object per message. Lines are 1-based, columns 0-based.

Example::

    python -m reasonpipe.verifiers.lean.diagnostics tests/lean/data/cli-cases.json
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass

_HEADER = re.compile(r"^(?P<file>[^\n]*?):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning|info|information)"
                     r"(?:\([^)]*\))?:[ ]?(?P<text>.*)$")
_AXIOMS = re.compile(r"^'(?P<name>[^'\s]+)' (?:depends on axioms: \[(?P<list>[^\]]*)\]|"
                     r"(?P<none>does not depend on any axioms))$")
_AXIOMS_OPEN = re.compile(r"^'(?P<name>[^'\s]+)' depends on axioms: \[[^\]]*$")

# What a sound proof may use: Lean's three standard axioms. `sorryAx` (sorry, admit, error recovery),
# `Lean.ofReduceBool` (native_decide trusts the compiler) and any declared axiom are not.
STANDARD_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})


class UnexpectedOutput(ValueError):
    """The trusted check printed something it cannot have printed by itself: the batch's verdicts are void."""


@dataclass(frozen=True)
class Diagnostic:
    line: int      # 1-based
    column: int    # 0-based, codepoints
    severity: str  # error | warning | info
    text: str

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.severity}: {self.text}"


def _severity(word: str) -> str:
    return "info" if word.startswith("info") else word


def parse_messages(output: str, filename: str, *, json_lines: bool = False) -> list[Diagnostic]:
    """Messages about ``filename`` (hints: a proof may have written any of them); bare lines are dropped.

    Text: a header line starts a message and the lines after it continue it. JSON: one object a line;
    lines that are not JSON objects are dropped.
    """
    if json_lines:
        out = []
        for line in output.splitlines():
            msg = _json_message(line)
            if msg is not None and _same_file(msg[0], filename):
                out.append(msg[1])
        return out
    diags: list[Diagnostic] = []
    current: dict | None = None
    for line in output.splitlines():
        m = _HEADER.match(line)
        if m and _same_file(m["file"], filename):
            if current is not None:
                diags.append(Diagnostic(current["line"], current["col"], current["sev"], "\n".join(current["text"])))
            current = {"line": int(m["line"]), "col": int(m["col"]), "sev": _severity(m["sev"]), "text": [m["text"]]}
        elif current is not None:
            current["text"].append(line)
    if current is not None:
        diags.append(Diagnostic(current["line"], current["col"], current["sev"], "\n".join(current["text"])))
    return diags


def _same_file(name: str, filename: str) -> bool:
    return name == filename or name.endswith("/" + filename)


def _json_message(line: str) -> tuple[str, Diagnostic] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
        pos = obj["pos"]
        return str(obj.get("fileName", "")), Diagnostic(int(pos["line"]), int(pos["column"]),
                                                          _severity(str(obj["severity"])), str(obj["data"]))
    except (ValueError, KeyError, TypeError):
        return None


def parse_axioms(text: str) -> tuple[str, tuple[str, ...]] | None:
    """(name, axioms) when ``text`` is exactly one ``#print axioms`` report (wrapped lines allowed), else None."""
    a = _AXIOMS.match(" ".join(text.split()))
    if a is None:
        return None
    return a["name"], (() if a["none"] else tuple(x.strip() for x in a["list"].split(",") if x.strip()))


@dataclass(frozen=True)
class CheckResult:
    """What the trusted check said: errors per line of the check file, the axioms reported per name."""

    errors: Mapping[int, tuple[str, ...]]
    axioms: Mapping[str, tuple[str, ...]]


def read_check(output: str, filename: str, reports: Mapping[str, int], *, json_lines: bool = False) -> CheckResult:
    """Read the trusted check's output strictly.

    ``reports``: each name we ran ``#print axioms`` on -> the 1-based line of that command. A report for any
    other name, a second report for one name, a message about another file, or (JSON) a report away from its
    command's line raises :class:`UnexpectedOutput`. Warnings are ignored; errors are collected per line.
    """
    errors: dict[int, list[str]] = {}
    axioms: dict[str, tuple[str, ...]] = {}

    def report(found: tuple[str, tuple[str, ...]], line: int | None) -> None:
        name, listed = found
        if name not in reports:
            raise UnexpectedOutput(f"an axioms report for {name!r}, which the check did not ask about")
        if line is not None and line != reports[name]:
            raise UnexpectedOutput(f"the axioms report for {name!r} is at line {line}, not at its command")
        if name in axioms:
            raise UnexpectedOutput(f"two axioms reports for {name!r}")
        axioms[name] = listed

    if json_lines:
        for raw in output.splitlines():
            if not raw.strip():
                continue
            msg = _json_message(raw)
            if msg is None:
                raise UnexpectedOutput(f"a line that is not a JSON message: {raw[:120]!r}")
            file, d = msg
            if not _same_file(file, filename):
                raise UnexpectedOutput(f"a message about another file: {file!r}")
            found = parse_axioms(d.text) if d.severity == "info" else None
            if found is not None:
                report(found, d.line)
            elif d.severity == "error":
                errors.setdefault(d.line, []).append(d.text)
            elif d.severity == "info":
                raise UnexpectedOutput(f"an information message the check did not ask for: {d.text[:120]!r}")
        return CheckResult({k: tuple(v) for k, v in errors.items()}, axioms)

    lines = output.splitlines()
    i = 0
    current: list[str] | None = None  # the error message being read, if any
    while i < len(lines):
        line = lines[i]
        m = _HEADER.match(line)
        if m:
            if not _same_file(m["file"], filename):
                raise UnexpectedOutput(f"a message about another file: {m['file']!r}")
            found = parse_axioms(m["text"]) if _severity(m["sev"]) == "info" else None
            if found is not None:
                report(found, None)  # no --json: positions of information messages are not trusted either
                current = None
            elif m["sev"] == "error":
                current = errors.setdefault(int(m["line"]), [])
                current.append(m["text"])
            elif _severity(m["sev"]) == "info":
                raise UnexpectedOutput(f"an information message the check did not ask for: {m['text'][:120]!r}")
            else:
                current = []  # a warning: read and ignored
            i += 1
            continue
        if _AXIOMS_OPEN.match(line) or _AXIOMS.match(line):
            text = line
            while "]" not in text and "does not depend" not in text and i + 1 < len(lines):
                i += 1
                text += " " + lines[i].strip()
            found = parse_axioms(text)
            if found is None:
                raise UnexpectedOutput(f"a broken axioms report: {text[:120]!r}")
            report(found, None)
            current = None
            i += 1
            continue
        if current is None:
            if line.strip():
                raise UnexpectedOutput(f"a line the check cannot have printed: {line[:120]!r}")
        else:
            if current:
                current[-1] += "\n" + line
        i += 1
    return CheckResult({k: tuple(v) for k, v in errors.items()}, axioms)


def unsound_axioms(axioms: tuple[str, ...]) -> tuple[str, ...]:
    """The axioms a proof used beyond the standard three (empty: sound)."""
    return tuple(a for a in axioms if a not in STANDARD_AXIOMS)


def main(argv: list[str] | None = None) -> int:
    """Print the parsed messages of every case in a cli-cases.json file."""
    path = (argv if argv is not None else sys.argv[1:])[0]
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    for case in cases:
        diags = parse_messages(case["stdout"] + case["stderr"], case["file"])
        print(case["file"], [str(d) for d in diags])
    return 0


if __name__ == "__main__":
    sys.exit(main())
