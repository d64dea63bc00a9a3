"""Sudoku: generator knobs, trace grammar round trips, searchers, exact verification, scoring."""

from __future__ import annotations

import random

import pytest

from reasonpipe.errors import InputError
from reasonpipe.tasks.sudoku import (SudokuConfig, SudokuProblem, SudokuTask, count_solutions, singles_solve,
                                     solve)
from reasonpipe.traces import Trace
from reasonpipe.traces import sudoku as grammar
from reasonpipe.traces.sudoku import End, GiveUp, Guess, Invalid, NoCand, Place, Revert, Start, Unparsed
from reasonpipe.searchers.base import SearchFailed, SearchOptions
from reasonpipe.searchers.sudoku import dfs, direct, kbacktrack
from reasonpipe.verifiers.sudoku import SudokuVerifier
from reasonpipe.verifiers.verdicts import Verdict

SEARCHERS = {"dfs": dfs, "direct": direct, "kbacktrack": kbacktrack}


@pytest.fixture(scope="module")
def task() -> SudokuTask:
    return SudokuTask(SudokuConfig(require_guess=True))


@pytest.fixture(scope="module")
def puzzles(task) -> list[SudokuProblem]:
    rng = random.Random(7)
    return [task.generate(rng) for _ in range(6)]


def _trace(task, problem, name: str, seed: int = 0, **options) -> Trace:
    return SEARCHERS[name](task, problem, SearchOptions(**options), random.Random(seed))


def _holds(trace: Trace) -> tuple[bool, bool]:
    verdicts, solved = SudokuVerifier().check(trace)
    return all(v.holds for v in verdicts) and len(verdicts) == len(trace.steps), solved


# -- generator --------------------------------------------------------------------------------------

@pytest.mark.parametrize("givens,require_guess", [(30, None), (30, True), (36, False), (25, None)])
def test_generated_puzzles_are_unique_and_meet_the_knobs(givens, require_guess):
    task = SudokuTask(SudokuConfig(givens=givens, require_guess=require_guess))
    rng = random.Random(givens)
    for _ in range(5):
        p = task.generate(rng)
        cells = p.cells()
        assert 81 - cells.count(0) == givens
        assert count_solutions(cells, 2) == 1
        if require_guess is not None:
            assert singles_solve(cells) is (not require_guess)


def test_require_guess_puzzles_make_the_dfs_guess(task, puzzles):
    for p in puzzles:
        assert _trace(task, p, "dfs").meta.nodes_expanded >= 1


def test_generation_is_deterministic_per_seed():
    task = SudokuTask()
    a = [task.generate(random.Random(3)).puzzle for _ in range(2)]
    assert a[0] == a[1]
    assert task.generate(random.Random(4)).puzzle != a[0]


def test_dokusan_source_is_deterministic_and_leaves_global_random_alone():
    task = SudokuTask(SudokuConfig(source="dokusan"))
    random.seed(123)
    before = random.getstate()
    p = task.generate(random.Random(11))
    assert random.getstate() == before
    assert count_solutions(p.cells(), 2) == 1
    assert task.generate(random.Random(11)) == p


@pytest.mark.parametrize("options,field", [({"source": "web"}, "source"), ({"givens": 5}, "givens"),
                                           ({"givens": True}, "givens"), ({"require_guess": "yes"}, "require_guess"),
                                           ({"avg_rank": 0}, "avg_rank")])
def test_bad_config_names_the_field(options, field):
    with pytest.raises(InputError) as e:
        SudokuTask(SudokuConfig(**options))
    assert e.value.field == field


# -- problems in and out ----------------------------------------------------------------------------

def test_problem_json_round_trip_and_dot_blanks(puzzles):
    p = puzzles[0]
    assert SudokuTask.problem_from_json(SudokuTask.problem_to_json(p)) == p
    dotted = p.puzzle.replace("0", ".")
    assert SudokuTask.problem_from_line(dotted + "\n") == p
    assert SudokuProblem(dotted).puzzle == p.puzzle
    assert SudokuTask.problem_label(p) == p.puzzle


@pytest.mark.parametrize("obj,field,words", [
    ("x" * 81, "problem", "expected an object"),
    ({}, "problem.puzzle", "missing"),
    ({"puzzle": 5}, "problem.puzzle", "expected a string"),
    ({"puzzle": "0" * 80}, "problem.puzzle", "got 80"),
    ({"puzzle": "0" * 80 + "x"}, "problem.puzzle", "'x' at position 80"),
    ({"puzzle": "11" + "0" * 79}, "problem.puzzle", "givens conflict: (0, 0) and (0, 1)"),
])
def test_problem_from_json_errors_name_the_field(obj, field, words):
    with pytest.raises(InputError) as e:
        SudokuTask.problem_from_json(obj)
    assert e.value.field == field
    assert f"field '{field}'" in str(e.value) and words in str(e.value)


# -- grammar ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(SEARCHERS))
def test_text_and_steps_round_trip_for_every_searcher(task, puzzles, name):
    for seed, p in enumerate(puzzles):
        trace = _trace(task, p, name, seed, k=3)
        text = trace.to_text()
        steps = grammar.parse(text)
        assert steps == trace.steps
        assert grammar.to_text(steps) == text
        assert not any(type(s) is Unparsed for s in steps)
        assert SudokuTask.problem_of(steps) == p
        back = Trace.from_record(trace.to_record())
        assert back.steps == trace.steps and back.problem == p


def test_every_line_kind_parses_to_its_step():
    lines = {"START original: (0, 1) = 5 (8, 8) = 9 solving SOL_S": Start(((0, 1, 5), (8, 8, 9))),
             "START original: solving SOL_S": Start(()),
             "(3, 4) = 2": Place(3, 4, 2), "guess: (3, 4) [2, 8] = 2": Guess(3, 4, (2, 8), 2),
             "nocand: (5, 1)": NoCand(5, 1), "invalid": Invalid(), "revert: (3, 4) [2, 8] = None": Revert(3, 4, (2, 8)),
             "SOL_E END": End(), "UNSOLVED END": GiveUp()}
    for line, step in lines.items():
        assert grammar.parse_line(line) == step and step.to_line() == line
    assert grammar.to_text(grammar.parse("\n".join(lines) + "\n")) == "\n".join(lines) + "\n"


@pytest.mark.parametrize("line", ["", "(03, 4) = 2", "(3,4) = 2", "(3, 4) = 2 ", "(" + "9" * 100_000 + ", 1) = 1",
                                  "guess: (1, 1) [" + "1, " * 50_000 + "1] = 1", "revert: (1, 1) [2] = 2",
                                  "START original:" + " (1, 1) = 1" * 100 + " solving SOL_S", "\x00\udcff",
                                  "é (1, 1) = 1",
                                  "Invalid", "SOL_E END\r"])
def test_hostile_lines_parse_to_unparsed_without_raising(line):
    step = grammar.parse_line(line)
    assert type(step) is Unparsed and step.to_line() == line


# -- searchers and verifier -------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(SEARCHERS))
def test_searcher_traces_verify_and_report_their_meta(task, puzzles, name):
    for seed, p in enumerate(puzzles):
        trace = _trace(task, p, name, seed, k=2)
        ok, solved = _holds(trace)
        assert ok and solved and trace.meta.solved
        assert trace.meta.searcher == name
        assert trace.meta.backtracks == grammar.backtracks(trace.steps)
        assert trace.meta.nodes_expanded == sum(type(s) is Guess for s in trace.steps)
        grid = task.parse_answer(trace.to_text())
        assert grid is not None and task.check_solution(p, grid)
        assert "".join(map(str, solve(p.cells()))) == grid


def test_direct_is_the_dfs_without_its_detours(task, puzzles):
    for p in puzzles:
        d = _trace(task, p, "direct")
        assert d.meta.backtracks == 0 and not any(type(s) in (Guess, Revert, NoCand, Invalid) for s in d.steps)
        assert len(d.steps) == 2 + p.puzzle.count("0")
        dfs_places = [s for s in _trace(task, p, "dfs").steps if type(s) is Place]
        kept = iter(dfs_places)
        assert all(any(s == t for t in kept) for s in d.steps[1:-1])  # a subsequence, in the dfs's order


def test_kbacktrack_makes_exactly_k_distinct_wrong_branches(task, puzzles):
    for seed, p in enumerate(puzzles):
        trace = _trace(task, p, "kbacktrack", seed, k=3)
        solution = solve(p.cells())
        guesses = [(s.row, s.col, s.value) for s in trace.steps if type(s) is Guess]
        reverts = [s for s in trace.steps if type(s) is Revert]
        assert len(reverts) == 3 == trace.meta.backtracks == len(set(guesses)) == len(guesses)
        assert all(solution[9 * r + c] != v for r, c, v in guesses)
        assert _holds(trace) == (True, True)


def test_kbacktrack_zero_is_the_direct_path_and_impossible_k_fails(task, puzzles):
    p = puzzles[0]
    assert _trace(task, p, "kbacktrack", k=0).steps == _trace(task, p, "direct").steps
    with pytest.raises(SearchFailed):
        _trace(task, p, "kbacktrack", k=10_000)


def test_same_seed_gives_identical_traces(task, puzzles):
    for name in SEARCHERS:
        a = _trace(task, puzzles[1], name, 5, k=4).to_text()
        assert a == _trace(task, puzzles[1], name, 5, k=4).to_text()
    k5, k6 = (_trace(task, puzzles[1], "kbacktrack", seed, k=4).to_text() for seed in (5, 6))
    assert k5 != k6


def test_node_limit_gives_up_and_still_verifies(task):
    trace = _trace(task, SudokuProblem("0" * 81), "dfs", max_nodes=3)
    assert type(trace.steps[-1]) is GiveUp and not trace.meta.solved and trace.meta.nodes_expanded == 3
    verdicts, solved = SudokuVerifier().check(trace)
    assert all(v.holds for v in verdicts) and not solved and verdicts[-1].verdict == Verdict.NO_CHECK
    with pytest.raises(SearchFailed):
        _trace(task, SudokuProblem("0" * 81), "direct", max_nodes=3)


def test_unsolvable_puzzle_ends_unsolved(task):
    cells = list("12345678" + "0" * 73)
    cells[9 * 4 + 8] = "9"  # (0, 8) can only be 9, which column 8 already holds
    trace = _trace(task, SudokuProblem("".join(cells)), "dfs")
    assert [type(s) for s in trace.steps] == [Start, NoCand, GiveUp]
    assert _holds(trace) == (True, False)


def _first_guess_trace(task, puzzles) -> Trace:
    return next(t for t in (_trace(task, p, "dfs") for p in puzzles) if t.meta.backtracks)


def test_one_changed_placement_is_refuted_with_its_cell(task, puzzles):
    trace = _trace(task, puzzles[0], "dfs")
    k = next(i for i, s in enumerate(trace.steps) if type(s) is Place)
    s = trace.steps[k]
    row_values = {int(ch) for ch in trace.problem.puzzle[9 * s.row: 9 * s.row + 9]} - {0}
    trace.steps[k] = Place(s.row, s.col, min(row_values))  # a value its row already holds
    report = SudokuVerifier().report(trace)
    assert report.first_failure == k and report.first_failure_verdict == "refuted"
    assert f"({s.row}, {s.col}) = {min(row_values)} conflicts with" in report.first_failure_reason
    trace.steps[k] = Place(s.row, s.col, s.value)
    for i, g in enumerate(trace.problem.puzzle):
        if g != "0":
            trace.steps[k] = Place(i // 9, i % 9, s.value)  # onto a given
            break
    reason = SudokuVerifier().report(trace).first_failure_reason
    assert f"({i // 9}, {i % 9}) already holds {g} (a given)" == reason


def test_revert_without_matching_open_guess_is_refuted(task, puzzles):
    trace = _first_guess_trace(task, puzzles)
    k = next(i for i, s in enumerate(trace.steps) if type(s) is Revert)
    s = trace.steps[k]
    other = next(c for c in range(9) if c != s.col)
    trace.steps[k] = Revert(s.row, other, s.cands)
    verdicts = SudokuVerifier().verify(trace)
    assert verdicts[k].verdict == Verdict.REFUTED
    assert f"no open guess at ({s.row}, {other})" in verdicts[k].reason
    trace.steps[k] = Revert(s.row, s.col, s.cands + (9,) if 9 not in s.cands else s.cands[:-1])
    assert SudokuVerifier().verify(trace)[k].verdict == Verdict.REFUTED


def test_false_claims_are_refuted(task, puzzles):
    trace = _trace(task, puzzles[0], "direct")
    start, first = trace.steps[0], trace.steps[1]
    v = SudokuVerifier()

    def verdicts(steps):
        return v.verify(Trace("sudoku", trace.problem, steps, trace.meta))

    assert [x.verdict for x in verdicts([start, NoCand(first.row, first.col), Invalid(), End()])] == \
        [Verdict.PROVED, Verdict.REFUTED, Verdict.REFUTED, Verdict.REFUTED]
    assert "not complete" in verdicts([start, End()])[1].reason
    cands = tuple(range(1, 10))
    assert "is not legal" in verdicts([start, Guess(first.row, first.col, cands, first.value)])[1].reason
    assert verdicts([start, Guess(first.row, first.col, (first.value,), first.value),
                     Place(first.row, first.col, first.value)])[2].verdict == Verdict.PROVED
    other = next(x for x in range(1, 10) if x != first.value)
    after_guess = verdicts([start, Guess(first.row, first.col, (first.value,), first.value),
                            Place(first.row, first.col, other)])
    assert after_guess[2].verdict == Verdict.REFUTED and "must place" in after_guess[2].reason
    before = verdicts([first, Unparsed("hello"), start])
    assert [x.verdict for x in before] == [Verdict.UNFORMALIZABLE, Verdict.UNFORMALIZABLE, Verdict.PROVED]
    wrong_start = Start(start.givens[1:])
    assert "differs from the problem" in verdicts([wrong_start])[0].reason
    assert verdicts([start, start])[1].verdict == Verdict.REFUTED


def test_contradiction_claims_are_proved_when_true(task):
    cells = list("12345678" + "0" * 73)
    cells[9 * 4 + 8] = "9"
    problem = SudokuProblem("".join(cells))
    start = SudokuTask().grammar.parse(SudokuTask().prompt(problem))[0]
    trace = Trace("sudoku", problem, [start, NoCand(0, 8), Invalid()], _trace(task, problem, "dfs").meta)
    assert [x.verdict for x in SudokuVerifier().verify(trace)] == [Verdict.PROVED] * 3


def test_checker_crash_is_an_error_not_a_refutation(task, puzzles):
    trace = _trace(task, puzzles[0], "direct")
    trace.steps[2] = Place("x", 0, 1)  # a malformed step object (not from the parser)
    verdicts, solved = SudokuVerifier().check(trace)
    assert verdicts[2].verdict == Verdict.ERROR and all(x.verdict == Verdict.ERROR for x in verdicts[3:])
    assert not solved and not any(x.verdict == Verdict.REFUTED for x in verdicts)


# -- scoring ----------------------------------------------------------------------------------------

def test_score_full_trace_completion_and_garbage(task, puzzles):
    p = puzzles[0]
    text = _trace(task, p, "dfs").to_text()
    assert task.score(p, text) == 1.0
    assert task.score(p, text[len(task.prompt(p)):]) == 1.0  # a completion of the prompt
    assert task.score(p, text.replace("SOL_E END\n", "")) == 1.0  # solved grid, no end marker
    assert task.score(p, "\n".join(text.split("\n")[:-3])) == 0.0  # grid not complete
    assert task.score(puzzles[1], text) == 0.0  # another puzzle's solution
    assert task.parse_answer("(0, 0) = 1") is None


@pytest.mark.parametrize("text", ["", "garbage", "\x00\xff\n\n", "数独 ✓ (1, 1) = 1", "(0, 0) = 1\n" * 200_000,
                                  "guess: (0, 0) [1] = 1\n" * 50_000 + "revert: (0, 0) [1] = None\n" * 60_000,
                                  "(" + "9" * 1_000_000, "(9, 9) = 9\nrevert: (99, 99) [] = None", None,
                                  b"SOL_E END", 12])
def test_score_never_raises_on_model_output(task, puzzles, text):
    assert task.score(puzzles[0], text) == 0.0


def test_vocabulary_covers_every_trace(task, puzzles):
    from reasonpipe.tokenizer import tokens_of

    vocab = set(task.vocabulary())
    for name in SEARCHERS:
        assert set(tokens_of(_trace(task, puzzles[0], name, k=2).to_text())) <= vocab
    assert set(tokens_of(task.prompt(puzzles[0]))) <= vocab
    assert set(tokens_of("UNSOLVED END\nnocand: (1, 2)\ninvalid\n")) <= vocab
