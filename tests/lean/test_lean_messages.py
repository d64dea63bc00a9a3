"""Reading Lean's output: messages as hints (recorded real Lean output), and the trusted check read strictly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonpipe.verifiers.lean.backends import anonymize, errors_per_block, layout
from reasonpipe.verifiers.lean.diagnostics import UnexpectedOutput, parse_axioms, parse_messages, read_check, unsound_axioms

CASES = Path(__file__).parent / "data" / "cli-cases.json"  # what a real (early) Lean 4 printed


def _cases() -> dict:
    return {c["file"]: c for c in json.loads(CASES.read_text())["cases"]}


def test_recorded_messages_locate_the_failing_declarations():
    case = _cases()["arith_mixed.lean"]
    diags = parse_messages(case["stdout"], "arith_mixed.lean")
    assert [(d.line, d.column, d.severity) for d in diags] == [(2, 42, "error"), (4, 44, "error")]
    assert diags[0].text == "failed to reduce to 'true'\n  false"
    # one declaration per line: the second and fourth failed
    assert errors_per_block(diags, [(1, 1), (2, 2), (3, 3), (4, 4)]) == {1: diags[0].text, 3: diags[1].text}


@pytest.mark.parametrize("name,where", [("parse_error.lean", (1, 29)), ("unknown_ident.lean", (1, 17)),
                                        ("duplicate_name.lean", (2, 8))])
def test_recorded_errors(name, where):
    case = _cases()[name]
    (d,) = parse_messages(case["stdout"] + case["stderr"], name)
    assert (d.line, d.column, d.severity) == (*where, "error")


def test_bare_lines_are_never_messages():
    """Early Lean prints `#print axioms` bare, and `#eval` output is bare too: neither is a message."""
    cases = _cases()
    assert parse_messages(cases["eval_side_effect.lean"]["stdout"], "eval_side_effect.lean") == []
    diags = parse_messages(cases["print_axioms.lean"]["stdout"], "print_axioms.lean")
    assert [(d.line, d.severity) for d in diags] == [(2, "warning")]


def test_json_messages():
    out = "\n".join(json.dumps({"fileName": "Cand.lean", "pos": {"line": n, "column": 2}, "severity": sev,
                                "data": data}) for n, sev, data in [(3, "error", "bad"), (4, "information", "hi")])
    diags = parse_messages(out + "\nnot json\n", "Cand.lean", json_lines=True)
    assert [(d.line, d.severity, d.text) for d in diags] == [(3, "error", "bad"), (4, "info", "hi")]


def test_axioms_reports():
    assert parse_axioms("'step' depends on axioms: [sorryAx]") == ("step", ("sorryAx",))
    assert parse_axioms("'a.b' depends on axioms: [propext,\n  Quot.sound]") == ("a.b", ("propext", "Quot.sound"))
    assert parse_axioms("'x' does not depend on any axioms") == ("x", ())
    assert parse_axioms("prefix 'x' does not depend on any axioms") is None  # exactly a report, nothing around it
    assert unsound_axioms(("propext", "sorryAx", "Classical.choice")) == ("sorryAx",)


# -- the trusted check, read strictly ------------------------------------------------------------------------

REPORTS = {"rpG_0123456789ab_0": 5, "rpG_0123456789ab_1": 7}


def test_check_output_is_read():
    out = ("Check.lean:4:10: error: type mismatch\n  rpP_0123456789ab_1\nhas type\n  True : Prop\n"
           "'rpG_0123456789ab_0' does not depend on any axioms\n"
           "'rpG_0123456789ab_1' depends on axioms: [propext,\n  sorryAx]\n")
    res = read_check(out, "Check.lean", REPORTS)
    assert res.axioms == {"rpG_0123456789ab_0": (), "rpG_0123456789ab_1": ("propext", "sorryAx")}
    assert list(res.errors) == [4] and res.errors[4][0].startswith("type mismatch\n  rpP_0123456789ab_1")


@pytest.mark.parametrize("out", [
    "'rpG_0123456789ab_0' does not depend on any axioms\n'rpG_0123456789ab_0' does not depend on any axioms\n",
    "'step' does not depend on any axioms\n",                       # a name the check did not ask about
    "this ran inside the checker\n",                                # a bare line nobody asked for
    "Other.lean:1:0: error: boom\n",                                # a message about another file
    "Check.lean:3:0: info: hello\n",                                # an information message we did not ask for
])
def test_check_output_that_the_check_cannot_have_printed_voids_the_batch(out):
    with pytest.raises(UnexpectedOutput):
        read_check(out, "Check.lean", REPORTS)


def test_json_check_output_counts_a_report_only_at_its_command():
    def msg(line: int, data: str, sev: str = "information") -> str:
        return json.dumps({"fileName": "Check.lean", "pos": {"line": line, "column": 0}, "severity": sev,
                           "data": data})

    good = msg(5, "'rpG_0123456789ab_0' does not depend on any axioms")
    assert read_check(good, "Check.lean", REPORTS, json_lines=True).axioms == {"rpG_0123456789ab_0": ()}
    with pytest.raises(UnexpectedOutput):  # the right text at the wrong place
        read_check(msg(4, "'rpG_0123456789ab_0' does not depend on any axioms"), "Check.lean", REPORTS,
                   json_lines=True)
    with pytest.raises(UnexpectedOutput):
        read_check("garbage", "Check.lean", REPORTS, json_lines=True)


def test_layout_and_names():
    text, spans = layout("import Foo", ["a", "b\n  c", "d"])
    assert text == "import Foo\na\nb\n  c\nd\n" and spans == [(2, 2), (3, 4), (5, 5)]
    assert anonymize("unknown constant 'rpP_0123456789ab_17'") == "unknown constant 'step'"
