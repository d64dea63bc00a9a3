"""The keyword probe's reading of Lean's answers (verifiers/lean/keywords.py), against a scripted Lean: which
error positions make a word a keyword, and that each word is asked about once."""

from __future__ import annotations

from reasonpipe.verifiers.lean.keywords import TOKEN_COLUMN, KeywordProbe, command_probe_lines, token_probe_lines


class ScriptedLean:
    """Answers probe files as real Lean does for a given set of reserved tokens and command keywords."""

    def __init__(self, tokens: set[str], commands: set[str]) -> None:
        self.tokens, self.commands, self.files = tokens, commands, []

    def __call__(self, lines: list[str]) -> dict[int, set[int]]:
        self.files.append(list(lines))
        errors: dict[int, set[int]] = {}
        for i, line in enumerate(lines):
            if line.startswith("example : True := let "):
                word = line.split()[5]
                if word in self.tokens:
                    errors.setdefault(i, set()).add(TOKEN_COLUMN)
                    if word in self.commands and i + 1 < len(lines):
                        errors.setdefault(i + 1, set()).add(0)  # Lean resumed at the keyword: spills over
            elif line != "set_option pp.all false" and line not in self.commands:
                errors.setdefault(i, set()).add(0)  # "expected command"
            elif line in self.commands:
                errors.setdefault(i, set()).add(len(line) + 1)  # the command parses on and fails later
        return errors


def test_the_token_probe_refuses_reserved_tokens_only_at_their_column():
    lean = ScriptedLean(tokens={"theorem", "at"}, commands={"theorem"})
    probe = KeywordProbe(lean)
    # `theorem` spills an error into the next line (x'), at column 0: x' stays an identifier
    assert probe.keywords(["foo", "theorem", "x'", "at"]) == {"theorem", "at"}
    assert lean.files[0] == token_probe_lines(sorted(["foo", "theorem", "x'", "at"]))


def test_the_command_probe_refuses_only_what_starts_a_command():
    lean = ScriptedLean(tokens={"theorem", "simp_all"}, commands={"theorem", "namespace"})
    probe = KeywordProbe(lean, commands_only=True)
    assert probe.keywords(["theorem", "simp_all", "namespace", "h1"]) == {"theorem", "namespace"}
    assert lean.files[0] == command_probe_lines(sorted(["theorem", "simp_all", "namespace", "h1"]))


def test_each_word_is_asked_about_once():
    lean = ScriptedLean(tokens={"at"}, commands=set())
    probe = KeywordProbe(lean)
    assert probe.keywords({"at", "foo"}) == {"at"}
    assert probe.keywords({"foo", "at"}) == {"at"} and probe.runs == 1
    assert probe.keywords({"foo", "bar"}) == set() and probe.runs == 2 and lean.files[1] == token_probe_lines(["bar"])
