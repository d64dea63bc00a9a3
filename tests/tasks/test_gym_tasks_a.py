"""reasoning-gym tasks arc_1d, list_functions, color_cube_rotation: determinism, scoring, k-backtrack traces
that verify, refuted tampering, the tokenizer, and our solvers cross-checked against reasoning-gym."""

from __future__ import annotations

import json
import random

import pytest

from reasonpipe.tasks import make_task
from reasonpipe.tasks.gym import arc_1d, color_cube_rotation, list_functions
from reasonpipe.tasks.gym.base import GymProblem
from reasonpipe.tasks.gym.grammar import Answer, Check, Reject, Try
from reasonpipe.tokenizer import TaskTokenizer
from reasonpipe.traces import Trace
from reasonpipe.searchers.base import SearchOptions
from reasonpipe.searchers.gym import direct, kbacktrack
from reasonpipe.verifiers import get_verifier
from reasonpipe.verifiers.verdicts import Verdict

NAMES = ("arc_1d", "list_functions", "color_cube_rotation")


@pytest.fixture(scope="module")
def tasks() -> dict:
    return {name: make_task(name) for name in NAMES}


@pytest.fixture(scope="module")
def problems(tasks) -> dict[str, list[GymProblem]]:
    return {name: [task.generate(random.Random(f"a/{i}")) for i in range(4)] for name, task in tasks.items()}


def _trace(task, problem: GymProblem, k: int, seed: int = 0) -> Trace:
    return kbacktrack(task, problem, SearchOptions(k=k), random.Random(seed))


def _verdicts(name: str, trace: Trace) -> list[str]:
    return [v.verdict for v in get_verifier(name).verify(trace)]


def _with_steps(trace: Trace, steps: list) -> Trace:
    return Trace(task=trace.task, problem=trace.problem, steps=steps, meta=trace.meta)


def _family(seed: int) -> int:
    """reasoning-gym's list_functions family of a one-item dataset (its ``task_indices`` for size 1)."""
    return random.Random(seed).choices(range(17), k=1)[0]


# -- generation ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_problems_and_global_random_left_alone(name):
    import reasoning_gym  # noqa: F401 (importing it draws from the global generator; generating must not)

    random.seed(11)
    expected_next = random.random()
    random.seed(11)
    a = [make_task(name).generate(random.Random(s)) for s in range(6)]
    assert random.random() == expected_next  # generating does not move the global generator
    b = [make_task(name).generate(random.Random(s)) for s in range(6)]
    assert a == b and len({p.gym_seed for p in a}) == 6
    task = make_task(name)
    for p in a:
        line = task.render(task.entry(p))
        assert "\n" not in line and line == make_task(name).render(make_task(name).entry(p))
        assert task.prompt(p) == f"Problem: {line}\n"


def test_list_functions_family_14_is_reproducible_although_reasoning_gym_uses_global_random():
    seed = next(s for s in range(1000) if _family(s) == 14)
    first = make_task("list_functions").entry(GymProblem(seed, "", ""))
    random.seed(123)  # whatever the global state, the entry is the same
    again = make_task("list_functions").entry(GymProblem(seed, "", ""))
    assert first["question"] == again["question"] and first["answer"] == again["answer"]


@pytest.mark.parametrize("name", NAMES)
def test_cli_gen_is_byte_identical_per_seed_and_verifies(cli, tmp_path, name):
    outs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for out in outs:
        r = cli("gen", name, "--n", "5", "--searcher", "kbacktrack", "--k", "2", "--seed", "1", "--out", out, "--quiet")
        assert r.code == 0, r.err
    assert outs[0].read_bytes() == outs[1].read_bytes()
    records = [json.loads(line) for line in outs[0].read_text().splitlines()]
    assert len(records) == 5 and all(r["meta"]["backtracks"] == 2 for r in records)
    assert cli("verify", outs[0], "--quiet").code == 0


# -- scoring ------------------------------------------------------------------------------------------------

def _wrong_answer(name: str, entry: dict) -> str:
    if name == "arc_1d":
        row = entry["answer"].split()
        return " ".join(["9" if row[0] != "9" else "8"] + row[1:])
    if name == "list_functions":
        return "[-7]"
    return next(c for c in entry["metadata"]["initial_state"].values() if c != entry["answer"])


@pytest.mark.parametrize("name", NAMES)
def test_score_reference_wrong_and_missing_answers(tasks, problems, name):
    task = tasks[name]
    for p in problems[name]:
        entry = task.entry(p)
        assert task.score(p, f"Answer: {p.answer}\n") == 1.0
        # reasoning-gym gives a wrong colour 0.01 (a format reward); the other two give 0
        assert task.score(p, f"Answer: {_wrong_answer(name, entry)}\n") == (0.01 if name == "color_cube_rotation" else 0.0)
        assert task.score(p, "Try: x\nCheck: nothing\n") == 0.0
        assert task.score(p, "") == 0.0


def test_arc_and_list_functions_give_partial_credit_for_padded_answers(tasks, problems):
    for name in ("arc_1d", "list_functions"):
        p = problems[name][0]
        padded = p.answer + " 0"  # reasoning-gym's default scorer: len(answer) / len(what was written)
        assert tasks[name].score(p, f"Answer: {padded}\n") == pytest.approx(len(p.answer) / len(padded))


# -- k-backtrack traces ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("k", [0, 1, 2, 3, 5])
def test_kbacktrack_traces_verify_with_k_distinct_wrong_branches(tasks, problems, name, k):
    task, tokenizer = tasks[name], TaskTokenizer.for_task(name)
    for p in problems[name]:
        trace = _trace(task, p, k)
        report = get_verifier(name).report(trace)
        assert report.valid and report.solved, (trace.to_text(), report.first_failure_reason)
        assert set(_verdicts(name, trace)) <= {Verdict.PROVED, Verdict.NO_CHECK}
        assert trace.meta.backtracks == k == sum(type(s) is Reject for s in trace.steps)
        tries = [s.text for s in trace.steps if type(s) is Try]
        assert len(tries) == k + 1 and len(set(tries)) == k + 1
        assert tokenizer.unknown(trace.to_text()) == set()
        if k == 0:
            assert trace.steps == direct(task, p, SearchOptions(), random.Random(0)).steps


@pytest.mark.parametrize("name", NAMES)
def test_branches_are_right_or_refuted_and_at_least_five_wrong(tasks, problems, name):
    task = tasks[name]
    for p in problems[name]:
        entry = task.entry(p)
        right, wrongs = task.branches(entry, random.Random(0))
        texts = [w.text for w in wrongs]
        assert len(set(texts)) == len(texts) >= 5 and right.text not in texts
        assert all(task.check(entry, right.text, c, False) for c in right.checks)
        for w in wrongs:
            assert all(task.check(entry, w.text, c, False) for c in w.checks)
            assert task.check(entry, w.text, w.refutation, True) is True
            assert task.check(entry, right.text, w.refutation, True) is False  # no refutation of the right one
            assert task.check(entry, w.text, w.refutation.split(" not ")[0], True) is False  # holds, refutes nothing


# -- tampering ----------------------------------------------------------------------------------------------

def _changed(text: str) -> str:
    """The claim with its last number or colour changed."""
    words = text.split(" ")
    for i in range(len(words) - 1, -1, -1):
        w = words[i].strip("[],")
        if w.isdigit():
            words[i] = words[i].replace(w, str(int(w) + 1 if w != "9" else 8), 1)
            return " ".join(words)
        if w in color_cube_rotation.COLOURS:
            words[i] = "red" if w != "red" else "blue"
            return " ".join(words)
    raise AssertionError(f"nothing to change in {text!r}")


def _tampered(task, trace: Trace) -> dict[str, tuple[Trace, int]]:
    """Each kind of tampering, and the index of the step that must be refuted."""
    steps = trace.steps
    first_check = next(i for i, s in enumerate(steps) if type(s) is Check)
    first_reject = next(i for i, s in enumerate(steps) if type(s) is Reject)
    last_try = max(i for i, s in enumerate(steps) if type(s) is Try)
    right_claim = next(s.text for s in steps[last_try:] if type(s) is Check)
    answer = len(steps) - 1
    entry = task.entry(trace.problem)
    wrong = _wrong_answer(trace.task, entry)
    out = {
        "changed check": steps[:first_check] + [Check(_changed(steps[first_check].text))] + steps[first_check + 1:],
        "changed reject": steps[:first_reject] + [Reject(_changed(steps[first_reject].text))] + steps[first_reject + 1:],
        "reject on the right branch": steps[:last_try + 1] + [Reject(right_claim)] + steps[last_try + 1:],
        "wrong answer": steps[:answer] + [Answer(wrong)],
        "repeated try": steps[:first_reject + 1] + steps[1:first_reject + 1] + steps[first_reject + 1:],
    }
    at = {"changed check": first_check, "changed reject": first_reject, "reject on the right branch": last_try + 1,
          "wrong answer": answer, "repeated try": first_reject + 1}
    return {kind: (_with_steps(trace, s), at[kind]) for kind, s in out.items()}


@pytest.mark.parametrize("name", NAMES)
def test_tampered_traces_are_refuted_at_the_changed_step(tasks, problems, name):
    task = tasks[name]
    for p in problems[name][:2]:
        trace = _trace(task, p, 2)
        for kind, (bad, at) in _tampered(task, trace).items():
            report = get_verifier(name).report(bad)
            assert not report.valid, kind
            assert report.first_failure == at and report.first_failure_verdict == Verdict.REFUTED, (kind, bad.to_text())
            if kind == "wrong answer":
                assert not report.solved


@pytest.mark.parametrize("name", NAMES)
def test_cli_verify_exits_1_on_tampered_records(cli, tmp_path, tasks, problems, name):
    task = tasks[name]
    good = _trace(task, problems[name][0], 3)
    good.id = "good"
    lines = [json.dumps(good.to_record())]
    for kind, (bad, _) in _tampered(task, good).items():
        bad.id = kind
        lines.append(json.dumps(bad.to_record()))
    path = tmp_path / "t.jsonl"
    path.write_text(lines[0] + "\n")
    assert cli("verify", path, "--quiet").code == 0
    path.write_text("\n".join(lines) + "\n")
    r = cli("verify", path, "--quiet", "--show", "10")
    assert r.code == 1
    for kind in ("changed check", "wrong answer", "repeated try"):
        assert kind in r.out


def test_cube_refutations_speak_of_the_last_turn_and_the_branch_colour():
    task = make_task("color_cube_rotation", options={"min_rotations": 2, "max_rotations": 4})
    for seed in range(5):
        entry = task.entry(task.generate(random.Random(seed)))
        puzzle = color_cube_rotation.Puzzle.of(entry)
        states, ask, n = puzzle.states(), puzzle.ask, len(puzzle.rotations)
        answer = states[-1].on(ask)
        wrong = next(c for c in puzzle.start.colours if c != answer and states[1].side_of(c) != ask)
        other = next(c for c in puzzle.start.colours if c not in (answer, wrong))
        branch = f"{ask} is {wrong}"
        assert task.check(entry, branch, f"after {n} {wrong} is {states[n].side_of(wrong)} not {ask}", True)
        assert task.check(entry, branch, f"after {n} {ask} is {answer} not {wrong}", True)
        assert not task.check(entry, branch, f"after 1 {wrong} is {states[1].side_of(wrong)} not {ask}", True)
        assert not task.check(entry, branch, f"after {n} {other} is {states[n].side_of(other)} not {ask}", True)
        assert not task.check(entry, f"{ask} is {answer}", f"after {n} {ask} is {answer} not {wrong}", True)
        assert not task.check(entry, branch, f"after {n} {ask} is {answer}", True)  # holds, refutes nothing
        assert task.check(entry, branch, f"after {n} {ask} is {answer}", False)


HOSTILE = ["", " ", "not", "example", "example 0 gives 1", "example 99 gives 0 0", "example 1 gives [",
           "example 1 gives [1,2]", "example -1 gives []", "after", "after 0 red is top", "after 99 top is red",
           "after 1 rotate : top red", "top is red not red", "x" * 5000, "example 1 gives " + "9 " * 3000,
           "\x00\n\t", "after 1 red is top not top", "é ü"]


@pytest.mark.parametrize("name", NAMES)
def test_check_never_raises_and_calls_hostile_text_false(tasks, problems, name):
    task = tasks[name]
    entry = task.entry(problems[name][0])
    right, wrongs = task.branches(entry, random.Random(0))
    for branch in [right.text, wrongs[0].text, "", "nonsense", "sort | | head", "head 99999", "left is",
                   "shift_right -1"]:
        for claim in HOSTILE + list(right.checks[:1]):
            for refutes in (False, True):
                assert task.check(entry, branch, claim, refutes) in (True, False, None)
        for claim in HOSTILE:
            assert task.check(entry, branch, claim, True) is False
    assert task.check(entry, "nonsense", right.checks[0], False) is False


# -- our solvers against reasoning-gym -------------------------------------------------------------------

def test_cube_simulation_agrees_with_reasoning_gym_on_600_seeds():
    import reasoning_gym

    for options in ({}, {"min_rotations": 4, "max_rotations": 9}):
        for seed in range(300):
            entry = reasoning_gym.create_dataset("color_cube_rotation", size=1, seed=seed, **options)[0]
            assert color_cube_rotation.simulate(entry) == entry["answer"], (seed, options)


def test_arc_catalogue_covers_every_task_type_and_300_seeds():
    import reasoning_gym
    from reasoning_gym.arc.arc_1d_tasks import ARC_1D_TASKS

    assert set(arc_1d.GYM_RULE) == set(ARC_1D_TASKS)
    assert set(arc_1d.GYM_RULE.values()) <= set(arc_1d.RULES)
    task, kinds = make_task("arc_1d"), set()
    for seed in range(300):
        entry = reasoning_gym.create_dataset("arc_1d", size=1, seed=seed)[0]
        puzzle = arc_1d.Puzzle.of(entry)
        assert arc_1d.fits(arc_1d.RULES[arc_1d.GYM_RULE[entry["metadata"]["task_name"]]], puzzle), seed
        right, wrongs = task.branches(entry, random.Random(0))  # never NotCovered on these seeds
        assert right.answer == entry["answer"] and len(wrongs) >= 5
        kinds.add(entry["metadata"]["task_name"])
    assert len(kinds) >= 60  # the seeds reach most task types


FAMILY_PROGRAM = {0: "id", 1: "tail 2 | first", 2: "reverse", 3: "unique | keep_lt 30 | sum", 4: "keep_eq 5 | len",
                  5: "before_even", 6: "add_index", 7: "at_last", 8: "len", 9: "sum", 10: "sort", 11: "sort_desc",
                  12: "inc_ends", 13: "is_asc", 14: "div_by 10", 15: "last | mul 2", 16: "mul 2 | add -4"}


def test_list_functions_programs_match_every_reasoning_gym_family_on_300_seeds():
    task, families = make_task("list_functions"), set()
    for seed in range(300):
        entry = task.entry(GymProblem(seed, "", ""))
        puzzle = list_functions.Puzzle.of(entry)
        program = list_functions.parse_program(FAMILY_PROGRAM[_family(seed)])
        assert program is not None
        for x, y in puzzle.train:
            assert list_functions.run(program, x) == y, (seed, x)
        assert list_functions.show_list(list_functions.run(program, puzzle.test)) == entry["answer"], seed
        families.add(_family(seed))
        if seed < 80:  # the search itself (slower) on fewer seeds
            right, wrongs = task.branches(entry, random.Random(0))
            assert right.answer == entry["answer"] and len(wrongs) >= 5
    assert families == set(range(17))
