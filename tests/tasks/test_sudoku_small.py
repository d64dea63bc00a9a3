"""Sudoku on the small boards (4x4 with 2x2 boxes, 6x6 with 2x3 boxes): unique puzzles (checked by a brute-force
solver written here, independent of the task's), the grammar's size, searchers, exact verification of every step
and of corrupted steps, k-backtrack counts, scoring, records, the vocabulary, and the CLI's ``--size``.
The 9x9 output staying byte-identical is tests/tasks/test_gen_golden.py."""

from __future__ import annotations

import json
import random

import pytest

from reasonpipe.cli import main
from reasonpipe.errors import InputError
from reasonpipe.searchers.base import SearchOptions
from reasonpipe.searchers.sudoku import dfs, direct, kbacktrack
from reasonpipe.tasks.sudoku import (DEFAULT_GIVENS, SudokuConfig, SudokuProblem, SudokuTask, count_solutions,
                                     singles_solve)
from reasonpipe.traces import Trace
from reasonpipe.traces import sudoku as grammar
from reasonpipe.traces.sudoku import Guess, NoCand, Place, Revert, Start, Unparsed
from reasonpipe.traces.tokens import tokens_of
from reasonpipe.verifiers.sudoku import SudokuVerifier
from reasonpipe.verifiers.verdicts import Verdict

SEARCHERS = {"dfs": dfs, "direct": direct, "kbacktrack": kbacktrack}
BOXES = {4: (2, 2), 6: (2, 3)}  # written out here, not taken from the task


# -- an independent brute-force solver ----------------------------------------------------------------

def _legal(grid: list[int], n: int, i: int, v: int) -> bool:
    br, bc = BOXES[n]
    r, c = divmod(i, n)
    r0, c0 = r - r % br, c - c % bc
    return (all(grid[n * r + k] != v for k in range(n)) and all(grid[n * k + c] != v for k in range(n))
            and all(grid[n * (r0 + a) + c0 + b] != v for a in range(br) for b in range(bc)))


def brute_solutions(puzzle: str, n: int, limit: int = 2) -> list[str]:
    """Up to ``limit`` solutions, by plain backtracking in row-major order."""
    grid = [int(ch) for ch in puzzle]
    assert len(grid) == n * n
    for i, v in enumerate(grid):  # the givens themselves must not clash
        if v:
            grid[i] = 0
            assert _legal(grid, n, i, v), "givens conflict"
            grid[i] = v
    found: list[str] = []

    def fill(i: int) -> None:
        while i < n * n and grid[i]:
            i += 1
        if i == n * n:
            found.append("".join(map(str, grid)))
            return
        for v in range(1, n + 1):
            if _legal(grid, n, i, v):
                grid[i] = v
                fill(i + 1)
                grid[i] = 0
                if len(found) >= limit:
                    return

    fill(0)
    return found


def _trace(task: SudokuTask, problem: SudokuProblem, name: str, seed: int = 0, **options) -> Trace:
    return SEARCHERS[name](task, problem, SearchOptions(**options), random.Random(seed))


def _holds(trace: Trace) -> tuple[bool, bool]:
    verdicts, solved = SudokuVerifier().check(trace)
    return all(v.holds for v in verdicts) and len(verdicts) == len(trace.steps), solved


@pytest.fixture(scope="module")
def boards() -> dict[tuple[int, bool | None], tuple[SudokuTask, list[SudokuProblem]]]:
    out = {}
    for size, guess in ((4, None), (6, None), (6, True)):
        task = SudokuTask(SudokuConfig(size=size, require_guess=guess))
        rng = random.Random(size)
        out[size, guess] = (task, [task.generate(rng) for _ in range(8)])
    return out


# -- generator ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("size,require_guess", [(4, None), (4, False), (6, None), (6, False), (6, True)])
def test_generated_puzzles_have_one_solution_by_brute_force(size, require_guess):
    task = SudokuTask(SudokuConfig(size=size, require_guess=require_guess))
    rng = random.Random(100 + size)
    for _ in range(12):
        p = task.generate(rng)
        assert p.size == size and len(p.puzzle) == size * size
        assert set(p.puzzle) <= set("0123456789"[:size + 1])
        assert size * size - p.puzzle.count("0") == DEFAULT_GIVENS[size]
        assert len(brute_solutions(p.puzzle, size)) == 1
        if require_guess is not None:
            assert singles_solve(p.cells()) is (not require_guess)


@pytest.mark.parametrize("size,givens", [(4, 4), (4, 10), (6, 9), (6, 20)])
def test_givens_are_exact_at_other_counts(size, givens):
    task = SudokuTask(SudokuConfig(size=size, givens=givens))
    rng = random.Random(givens)
    for _ in range(4):
        p = task.generate(rng)
        assert size * size - p.puzzle.count("0") == givens and len(brute_solutions(p.puzzle, size)) == 1


def test_generation_is_deterministic_per_seed():
    for size in (4, 6):
        task = SudokuTask(SudokuConfig(size=size))
        a, b = (task.generate(random.Random(3)).puzzle for _ in range(2))
        assert a == b
        assert [task.generate(random.Random(s)).puzzle for s in range(5)] != [a] * 5


def test_no_unique_4x4_puzzle_needs_a_guess():
    """Why require_guess: true is refused at size 4: on both essentially different 4x4 grids (told apart by how
    many of their 2^16 subsets of givens have one solution), singles finish every uniquely solvable subset."""
    grids = ["1234341221434321", "1234341223414123"]
    unique_counts = []
    for grid in grids:
        assert len(brute_solutions(grid, 4)) == 1  # a valid full grid
        sol = [int(ch) for ch in grid]
        unique = 0
        for mask in range(1 << 16):
            cells = [sol[i] if mask >> i & 1 else 0 for i in range(16)]
            if count_solutions(cells, 2) == 1:
                unique += 1
                assert singles_solve(cells), cells
        unique_counts.append(unique)
    assert unique_counts[0] != unique_counts[1]  # not the same grid up to symmetry
    with pytest.raises(InputError) as e:
        SudokuTask(SudokuConfig(size=4, require_guess=True))
    assert e.value.field == "require_guess"


@pytest.mark.parametrize("options,field,words", [
    ({"size": 5}, "size", "must be one of 4, 6, 9"), ({"size": True}, "size", "got True"),
    ({"size": 4, "source": "dokusan"}, "size", "9x9 puzzles only"), ({"size": 4, "givens": 3}, "givens", "4..15"),
    ({"size": 4, "givens": 16}, "givens", "4..15"), ({"size": 6, "givens": 36}, "givens", "8..35"),
    ({"size": 6, "givens": 7}, "givens", "8..35"), ({"givens": 16}, "givens", "17..80"),
])
def test_bad_size_options_name_the_field(options, field, words):
    with pytest.raises(InputError) as e:
        SudokuTask(SudokuConfig(**options))
    assert e.value.field == field and words in str(e.value)


# -- grammar, records, vocabulary ----------------------------------------------------------------------

def test_start_line_carries_the_size_and_9x9_is_unchanged(boards):
    task, puzzles = boards[4, None]
    p = puzzles[0]
    prompt = task.prompt(p)
    assert prompt.startswith("START 4x4 original: (") and prompt.endswith(" solving SOL_S\n")
    assert grammar.parse_line(prompt[:-1]) == Start(tuple((i // 4, i % 4, int(ch)) for i, ch in enumerate(p.puzzle)
                                                          if ch != "0"), 4)
    assert SudokuTask.problem_of(grammar.parse(prompt)) == p
    six = boards[6, None][1][0]
    assert SudokuTask().prompt(six).startswith("START 6x6 original: (")
    nine = SudokuTask().generate(random.Random(0))
    assert SudokuTask().prompt(nine).startswith("START original: (")
    assert SudokuTask.problem_to_json(nine) == {"puzzle": nine.puzzle}
    assert Start(((0, 0, 1),)).to_json() == ["start", [[0, 0, 1]]]
    assert Start(((0, 0, 1),), 6).to_json() == ["start", [[0, 0, 1]], 6]


@pytest.mark.parametrize("line", ["START 9x9 original: (0, 0) = 1 solving SOL_S",
                                  "START 4x6 original: (0, 0) = 1 solving SOL_S",
                                  "START 04x04 original: solving SOL_S", "START 4x4original: solving SOL_S"])
def test_odd_start_lines_are_unparsed(line):
    step = grammar.parse_line(line)
    assert type(step) is Unparsed and step.to_line() == line


def test_a_start_line_of_an_unknown_size_is_refuted_not_crashed():
    step = grammar.parse_line("START 5x5 original: (0, 0) = 1 solving SOL_S")
    assert step == Start(((0, 0, 1),), 5)
    verdicts = SudokuVerifier().verify(Trace("sudoku", None, [step, Place(0, 1, 2)], None))
    assert verdicts[0].verdict == Verdict.REFUTED and "no 5x5 board" in verdicts[0].reason
    assert SudokuTask().parse_answer(step.to_line() + "\n") == ""


def test_records_carry_the_size_and_round_trip(boards):
    for size in (4, 6):
        task, puzzles = boards[size, None]
        p = puzzles[1]
        assert SudokuTask.problem_to_json(p) == {"puzzle": p.puzzle, "size": size}
        assert SudokuTask.problem_from_json({"puzzle": p.puzzle, "size": size}) == p
        assert SudokuTask.problem_from_json({"puzzle": p.puzzle}) == p  # by its length
        assert SudokuTask.problem_from_line(p.puzzle.replace("0", ".") + "\n") == p
        trace = _trace(task, p, "kbacktrack", k=1)
        back = Trace.from_record(json.loads(json.dumps(trace.to_record())))
        assert back.problem == p and back.steps == trace.steps and back.to_text() == trace.to_text()


@pytest.mark.parametrize("obj,field,words", [
    ({"puzzle": "0" * 16, "size": 6}, "problem.puzzle", "expected 36 characters for a 6x6 board"),
    ({"puzzle": "0" * 16, "size": 7}, "problem.size", "must be one of"),
    ({"puzzle": "5" + "0" * 15}, "problem.puzzle", "'5' at position 0 (row 0, col 0) is not 0-4"),
    ({"puzzle": "1" + "0" * 5 + "1" + "0" * 29, "size": 6}, "problem.puzzle", "givens conflict: (0, 0) and (1, 0)"),
])
def test_small_problem_errors_name_the_field(obj, field, words):
    with pytest.raises(InputError) as e:
        SudokuTask.problem_from_json(obj)
    assert e.value.field == field and words in str(e.value)


def test_vocabulary_keeps_the_9x9_ids_and_covers_the_small_boards(boards):
    vocab = SudokuTask.vocabulary()
    nine = ("\n", " ", "(", ")", ",", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ":", "=", "END", "None",
            "SOL_E", "SOL_S", "START", "UNSOLVED", "[", "]", "guess", "invalid", "nocand", "original", "revert",
            "solving")
    assert vocab[:len(nine)] == nine  # the 9x9 tokens keep their ids
    for (size, _), (task, puzzles) in boards.items():
        for name in SEARCHERS:
            assert set(tokens_of(_trace(task, puzzles[0], name, k=1).to_text())) <= set(vocab)


# -- searchers and the verifier ------------------------------------------------------------------------

@pytest.mark.parametrize("key", [(4, None), (6, None), (6, True)])
@pytest.mark.parametrize("name", list(SEARCHERS))
def test_every_searcher_trace_verifies_step_by_step(boards, key, name):
    task, puzzles = boards[key]
    for seed, p in enumerate(puzzles):
        trace = _trace(task, p, name, seed, k=2)
        assert _holds(trace) == (True, True) and trace.meta.solved
        assert grammar.parse(trace.to_text()) == trace.steps
        for s in trace.steps[1:]:
            if type(s) in (Place, Guess, NoCand, Revert):
                assert 0 <= s.row < key[0] and 0 <= s.col < key[0]
        assert task.parse_answer(trace.to_text()) == brute_solutions(p.puzzle, key[0])[0]
        assert task.score(p, trace.to_text()) == 1.0


def test_the_6x6_guessing_puzzles_make_the_dfs_backtrack(boards):
    task, puzzles = boards[6, True]
    traces = [_trace(task, p, "dfs") for p in puzzles]
    assert all(t.meta.nodes_expanded >= 1 for t in traces)
    assert any(t.meta.backtracks >= 1 for t in traces)
    four_task, four = boards[4, None]
    for p in four:  # on the 4x4 board singles finish: the dfs is the direct path
        assert _trace(four_task, p, "dfs").steps == _trace(four_task, p, "direct").steps


@pytest.mark.parametrize("size,k", [(4, 1), (4, 2), (6, 3)])
def test_kbacktrack_has_exactly_k_wrong_branches(boards, size, k):
    task, puzzles = boards[size, None]
    made = 0
    for seed, p in enumerate(puzzles):
        try:
            trace = _trace(task, p, "kbacktrack", seed, k=k)
        except Exception as e:  # a puzzle with fewer than k refutable wrong branches
            assert type(e).__name__ == "SearchFailed"
            continue
        made += 1
        solution = brute_solutions(p.puzzle, size)[0]
        guesses = [(s.row, s.col, s.value) for s in trace.steps if type(s) is Guess]
        reverts = [s for s in trace.steps if type(s) is Revert]
        assert len(reverts) == k == trace.meta.backtracks == grammar.backtracks(trace.steps)
        assert len(guesses) == len(set(guesses)) == k
        assert all(solution[size * r + c] != str(v) for r, c, v in guesses)
        assert _holds(trace) == (True, True)
    assert made >= len(puzzles) // 2


def _refuted_at(trace: Trace, k: int) -> str:
    verdicts = SudokuVerifier().verify(trace)
    assert verdicts[k].verdict == Verdict.REFUTED, verdicts[k]
    assert all(v.holds for v in verdicts[:k])
    return verdicts[k].reason


def _with(trace: Trace, k: int, step) -> Trace:
    steps = list(trace.steps)
    steps[k] = step
    return Trace("sudoku", trace.problem, steps, trace.meta)


@pytest.mark.parametrize("size", [4, 6])
def test_corrupted_steps_are_refuted(boards, size):
    task, puzzles = boards[size, None]
    p = puzzles[0]
    trace = _trace(task, p, "kbacktrack", k=1)
    k = next(i for i, s in enumerate(trace.steps) if type(s) is Place)
    s = trace.steps[k]
    # a wrong value: a digit its row already holds
    row = {int(ch) for ch in p.puzzle[size * s.row: size * s.row + size]} - {0}
    assert "conflicts with" in _refuted_at(_with(trace, k, Place(s.row, s.col, min(row))), k)
    # a value out of range for the size (a legal digit on the 9x9 board), and a cell off the board
    assert f"value is not a digit 1..{size}" in _refuted_at(_with(trace, k, Place(s.row, s.col, size + 1)), k)
    assert f"off the {size}x{size} board" in _refuted_at(_with(trace, k, Place(size, 0, 1)), k)
    # a wrong candidate list: an illegal candidate, an out-of-range one, and a revert listing other candidates
    g = next(i for i, x in enumerate(trace.steps) if type(x) is Guess)
    guess = trace.steps[g]
    illegal = next(v for v in range(1, size + 1) if v not in guess.cands)
    more = tuple(sorted(guess.cands + (illegal,)))
    assert "is not legal" in _refuted_at(_with(trace, g, Guess(guess.row, guess.col, more, guess.value)), g)
    out_of_range = guess.cands + (size + 1,)
    assert f"not a digit 1..{size}" in _refuted_at(_with(trace, g, Guess(guess.row, guess.col, out_of_range,
                                                                         guess.value)), g)
    r = next(i for i, x in enumerate(trace.steps) if type(x) is Revert)
    assert "but the guess at" in _refuted_at(_with(trace, r, Revert(guess.row, guess.col, guess.cands[:1])), r)
    # a false nocand: a cell that still has candidates
    assert "still has candidates" in _refuted_at(_with(trace, k, NoCand(s.row, s.col)), k)
    # a START line of another size than the problem's (a 6x6 puzzle's givens do not fit a 4x4 board at all)
    other = 6 if size == 4 else 4
    reason = _refuted_at(_with(trace, 0, Start(trace.steps[0].givens, other)), 0)
    if size == 4:
        assert reason == "START states a 6x6 board, the problem is 4x4"
    else:
        assert "not a digit 1..4" in reason or "off the 4x4 board" in reason


def test_a_true_nocand_is_proved_on_a_small_board():
    problem = SudokuProblem("1200" "0000" "0000" "0003")  # after (0, 2) = 4, (0, 3) has row 1, 2, 4 and column 3
    start = grammar.parse_line(SudokuTask().prompt(problem)[:-1])
    trace = Trace("sudoku", problem, [start, Place(0, 2, 4), NoCand(0, 3)], None)
    assert [v.verdict for v in SudokuVerifier().verify(trace)] == [Verdict.PROVED] * 3


# -- scoring -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [4, 6])
def test_score_accepts_the_solution_and_rejects_a_wrong_grid(boards, size):
    task, puzzles = boards[size, None]
    p = puzzles[2]
    text = _trace(task, p, "direct").to_text()
    assert task.score(p, text) == 1.0
    assert task.score(p, text[len(task.prompt(p)):]) == 1.0  # a completion of the prompt
    solution = brute_solutions(p.puzzle, size)[0]
    blanks = [i for i, ch in enumerate(p.puzzle) if ch == "0"]
    # a full grid that keeps the givens but breaks a unit: two blanks' values swapped
    a, b = next((a, b) for a in blanks for b in blanks if a < b and solution[a] != solution[b])
    wrong = list(solution)
    wrong[a], wrong[b] = wrong[b], wrong[a]
    lines = [f"({i // size}, {i % size}) = {wrong[i]}" for i in blanks]
    assert task.score(p, task.prompt(p) + "\n".join(lines) + "\nSOL_E END\n") == 0.0
    assert not task.check_solution(p, "".join(wrong)) and task.check_solution(p, solution)
    assert task.score(p, "\n".join(lines[:-1]) + "\n") == 0.0  # incomplete
    assert task.score(p, text.replace(f"START {size}x{size} ", "START ")) == 0.0  # read as a 9x9 board
    assert task.score(p, f"({size}, 0) = 1\n({size + 3}, {size + 3}) = {size + 2}\n") == 0.0


# -- the command line -----------------------------------------------------------------------------------

def test_cli_gen_size_and_verify(tmp_path, capsys):
    out = tmp_path / "sd4.jsonl"
    assert main(["gen", "sudoku", "--size", "4", "--n", "6", "--searcher", "kbacktrack", "--k", "1", "--seed", "2",
                 "--out", str(out), "--quiet"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 6
    assert all(r["problem"]["size"] == 4 and r["text"].startswith("START 4x4 original:") for r in records)
    assert main(["verify", str(out)]) == 0
    again = tmp_path / "again.jsonl"
    main(["gen", "sudoku", "--size", "4", "--n", "6", "--searcher", "kbacktrack", "--k", "1", "--seed", "2",
          "--out", str(again), "--quiet"])
    assert again.read_bytes() == out.read_bytes()
    assert main(["gen", "sudoku", "--size", "5", "--n", "1", "--out", str(tmp_path / "x.jsonl"), "--quiet"]) == 2
    assert "size" in capsys.readouterr().err


def test_lean_statements_use_the_small_board(boards):
    from reasonpipe.verifiers.lean.formalize import sudoku as formalize

    task, puzzles = boards[4, None]
    trace = _trace(task, puzzles[0], "kbacktrack", k=1)
    statements = [f.statement for f in formalize(trace) if f.statement]
    assert statements and all("[1, 2, 3, 4]" in s and "9" not in s for s in statements)
