"""CountDown: rules, generator and splits, searchers, the Stream-of-Search grammar, and the exact verifier."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from conftest import DATA
from reasonpipe.tasks import make_task
from reasonpipe.tasks.countdown import (CountdownProblem, apply, combine, legal_operations, numbers_after,
                                        replace_pair, solvable, solve, successors)
from reasonpipe.traces import Trace
from reasonpipe.traces import countdown as grammar
from reasonpipe.searchers import SearchOptions, get_searcher
from reasonpipe.searchers.base import SearchFailed
from reasonpipe.searchers.countdown import score, scored_children
from reasonpipe.verifiers import get_verifier
from reasonpipe.verifiers.verdicts import Verdict

TASK = make_task("countdown")
VERIFIER = get_verifier("countdown")
SEARCHERS = ["dfs", "bfs", "beam", "direct", "kbacktrack"]


def problems(n: int, seed: int = 0, **options) -> list[CountdownProblem]:
    task = make_task("countdown", **options) if options else TASK
    return [task.generate(random.Random(f"{seed}/{i}")) for i in range(n)]


def reference_solve(nums: list[int], target: int):
    """Plain exhaustive search in Stream of Search's order (the definition solve() must match)."""
    if len(nums) == 1:
        return [] if nums[0] == target else None
    for i, j in itertools.combinations(range(len(nums)), 2):
        rest = [nums[k] for k in range(len(nums)) if k not in (i, j)]
        for value, op in combine(nums[i], nums[j]):
            sub = reference_solve(rest + [value], target)
            if sub is not None:
                return [op] + sub
    return None


# -- rules ------------------------------------------------------------------------------------------

def test_rules_forbid_negatives_and_fractions():
    assert apply(7, "-", 9) is None and apply(9, "-", 7) == 2
    assert apply(9, "/", 2) is None and apply(9, "/", 0) is None and apply(8, "/", 2) == 4
    assert [str(op) for _, op in combine(3, 12)] == ["3+12=15", "3*12=36", "12-3=9", "12/3=4"]
    assert [str(op) for _, op in combine(5, 7)] == ["5+7=12", "5*7=35", "7-5=2"]


def test_legal_operations_are_the_rule():
    """legal_operations is Stream of Search's candidates (a+b, a*b, hi-lo, hi/lo) filtered by apply."""
    for a, b in itertools.product(range(40), repeat=2):
        lo, hi = min(a, b), max(a, b)
        candidates = ((a, "+", b), (a, "*", b), (hi, "-", lo), (hi, "/", lo))
        plain = [(x, sym, y, apply(x, sym, y)) for x, sym, y in candidates if apply(x, sym, y) is not None]
        assert legal_operations(a, b) == plain, (a, b)
    assert apply(0, "/", 5) == 0 and all(sym != "/" for _, sym, _, _ in legal_operations(0, 5))


def test_successors_replay_and_replace_pair():
    nums = (3, 12, 3, 5)
    children = list(successors(nums))
    assert len(children) == sum(len(legal_operations(nums[i], nums[j])) for i, j in itertools.combinations(range(4), 2))
    assert children[0] == ((3, 5, 15), children[0][1]) and str(children[0][1]) == "3+12=15"
    for new, op in children:
        assert sorted(numbers_after(nums, op)) == sorted(new)  # replaying the operation gives the child
    assert replace_pair((1, 2, 3, 4), 1, 3, 9) == (1, 3, 9)
    assert numbers_after([3, 5], grammar.Op(3, "+", 3, 6)) is None  # only one 3 to take
    assert numbers_after([3, 5], grammar.Op(5, "-", 3, 2)) == [2]


def test_solve_matches_exhaustive_reference_including_zeros():
    rng = random.Random(3)
    for _ in range(300):
        nums = [rng.randint(0, 15) for _ in range(rng.randint(1, 4))]
        target = rng.randint(0, 30)
        ours, ref = solve(tuple(nums), target), reference_solve(nums, target)
        assert (ours is None) == (ref is None) == (not solvable(nums, target)), (nums, target)
        if ours is not None:
            assert [str(o) for o in ours] == [str(o) for o in ref]
            assert TASK.check_solution(CountdownProblem(tuple(nums), target), ours)


# -- generator and splits ---------------------------------------------------------------------------

def test_generator_is_deterministic_and_solvable():
    a, b = problems(40, seed=5), problems(40, seed=5)
    assert a == b and a != problems(40, seed=6)
    for p in a:
        assert len(p.nums) == 4 and all(1 <= x <= 99 for x in p.nums) and 10 <= p.target <= 100
        assert solve(p.nums, p.target) is not None


@pytest.mark.parametrize("numbers", [3, 5, 6])
def test_generator_number_count(numbers):
    for p in problems(5, numbers=numbers):
        assert len(p.nums) == numbers and solvable(p.nums, p.target)


def test_splits_hold_out_targets_and_solutions():
    train = make_task("countdown")
    assert len(train.heldout_targets) == 9 and not set(train.heldout_targets) & set(train.train_targets)
    test_t = problems(60, split="test_target")
    assert all(p.target in train.heldout_targets for p in test_t)
    for p in problems(60):
        assert p.target in train.train_targets and not train.solution_heldout(solve(p.nums, p.target))
    for p in problems(30, split="test_solution"):
        assert p.target in train.train_targets and train.solution_heldout(solve(p.nums, p.target))


def test_unsolvable_option_and_bad_config():
    assert any(not solvable(p.nums, p.target) for p in problems(50, solvable=False))
    from reasonpipe.errors import InputError

    with pytest.raises(InputError, match="numbers"):
        make_task("countdown", numbers=9)
    with pytest.raises(InputError, match="split"):
        make_task("countdown", split="nope")


# -- searchers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SEARCHERS)
def test_every_searcher_round_trips_and_verifies(name):
    search = get_searcher("countdown", name)
    opts = SearchOptions(k=2, beam=3, heuristic="mult" if name == "beam" else "sum")
    for i, p in enumerate(problems(25, seed=11)):
        trace = search(TASK, p, opts, random.Random(i))
        text = trace.to_text()
        assert grammar.to_text(grammar.parse(text)) == text
        assert [s.to_json() for s in Trace.from_text("countdown", text).steps] == [s.to_json() for s in trace.steps]
        report = VERIFIER.report(trace)
        assert report.valid, (name, p, report.first_failure_reason, report.first_failure_text)
        assert report.solved == trace.meta.solved
        assert trace.meta.backtracks == grammar.backtracks(trace.steps)
        if trace.meta.solved:
            assert TASK.score(p, text) == 1.0
            assert TASK.check_solution(p, TASK.parse_answer(text))


def test_direct_and_kbacktrack_always_solve():
    for i, p in enumerate(problems(20, seed=2)):
        assert get_searcher("countdown", "direct")(TASK, p, SearchOptions(), random.Random(i)).meta.backtracks == 0
        assert get_searcher("countdown", "kbacktrack")(TASK, p, SearchOptions(k=0), random.Random(i)).meta.solved


def test_kbacktrack_has_exactly_k_distinct_wrong_branches():
    search = get_searcher("countdown", "kbacktrack")
    for i, p in enumerate(problems(30, seed=7)):
        trace = search(TASK, p, SearchOptions(k=3), random.Random(i))
        steps = trace.steps
        assert trace.meta.backtracks == 3 == grammar.backtracks(steps)
        assert len(set(trace.meta.extra["branches"])) == 3
        # a detour leaves a node that can still reach the target by an operation whose numbers cannot
        first_ops = []
        for j, s in enumerate(steps):
            prev = steps[j - 1]
            if (isinstance(s, grammar.Explore) and isinstance(prev, grammar.State)
                    and solvable(prev.nums, p.target) and not solvable(s.nums, p.target)):
                first_ops.append((prev.to_line(), str(s.op)))
        assert len(first_ops) == len(set(first_ops)) == 3
        assert VERIFIER.report(trace).valid and TASK.score(p, trace.to_text()) == 1.0


def test_kbacktrack_too_many_is_search_failed():
    p = CountdownProblem((2, 3), 5)  # 2+3: only *, - and no / are wrong
    with pytest.raises(SearchFailed):
        get_searcher("countdown", "kbacktrack")(TASK, p, SearchOptions(k=3), random.Random(0))


def test_node_limit_ends_unsolved_and_still_valid():
    p = CountdownProblem((91, 87, 3, 2), 11)
    trace = get_searcher("countdown", "dfs")(TASK, p, SearchOptions(max_nodes=2), random.Random(0))
    assert trace.meta.nodes_expanded == 2 and trace.meta.extra["truncated"] and not trace.meta.solved
    report = VERIFIER.report(trace)
    assert report.valid and not report.solved and report.counts["proved"] == report.steps
    trace = get_searcher("countdown", "beam")(TASK, p, SearchOptions(max_nodes=2), random.Random(0))
    assert isinstance(trace.steps[-1], grammar.Exhausted) and trace.meta.extra["truncated"]
    report = VERIFIER.report(trace)
    assert report.valid and not report.solved and report.counts["no_check"] == 1


def test_incremental_scores_equal_stream_of_search_heuristics():
    rng = random.Random(0)
    for _ in range(50):
        nums = tuple(rng.randint(1, 99) for _ in range(4))
        target = rng.randint(10, 100)
        for h in ("sum", "mult"):
            for s, new, _ in scored_children(nums, target, h, None):
                assert s == score(h, target, new)


def test_dfs_writes_the_same_traces_as_stream_of_search():
    """Records written by Stream of Search's own DFS (tests/data): ours are identical line for line."""
    records = json.loads((DATA / "sos_countdown_dfs.json").read_text())
    dfs = get_searcher("countdown", "dfs")
    for r in records:
        heuristic = "sum" if r["heuristic"] == "sum_heuristic" else "mult"
        ours = dfs(TASK, CountdownProblem(tuple(r["nums"]), r["target"]), SearchOptions(heuristic=heuristic), None)
        assert ours.to_text() == r["search_path"]


# -- verifier ---------------------------------------------------------------------------------------

SAMPLE = """Current State: 47:[42, 61, 66], Operations: []
Exploring Operation: 66-42=24, Resulting Numbers: [61, 24]
Generated Node #0,0: 47:[61, 24] Operation: 66-42=24
Moving to Node #0,0
Current State: 47:[61, 24], Operations: ['66-42=24']
Exploring Operation: 61-24=37, Resulting Numbers: [37]
37,47 unequal: No Solution
Moving to Node #0
Current State: 47:[42, 61, 66], Operations: []
Exploring Operation: 61-42=19, Resulting Numbers: [66, 19]
Generated Node #0,1: 47:[66, 19] Operation: 61-42=19
Moving to Node #0,1
Current State: 47:[66, 19], Operations: ['61-42=19']
Exploring Operation: 66-19=47, Resulting Numbers: [47]
47,47 equal: Goal Reached
"""


def verdicts_of(text: str, problem: CountdownProblem | None = None):
    return VERIFIER.verify(Trace.from_text("countdown", text, problem=problem))


def first_bad(text: str, problem: CountdownProblem | None = None):
    for i, v in enumerate(verdicts_of(text, problem)):
        if not v.holds:
            return i, v
    return None


def test_sample_holds():
    """SAMPLE is the example trace of Stream of Search's countdown_utils.py, with one dead end left out."""
    report = VERIFIER.report(Trace.from_text("countdown", SAMPLE))
    assert report.valid and report.solved and report.steps == 15 == report.counts["proved"]


def test_traces_parse_by_task_name_once_the_tasks_are_imported():
    """reasonpipe.traces never imports the tasks; importing reasonpipe.tasks plugs its registry in."""
    import subprocess
    import sys

    code = "\n".join([
        "import sys; from reasonpipe.traces import Trace",
        "assert 'reasonpipe.tasks' not in sys.modules",
        "try:\n    Trace.from_text('countdown', 'x')",
        "except RuntimeError as e:\n    assert 'import reasonpipe.tasks' in str(e)",
        "else:\n    raise AssertionError('parsed without a task registry')",
        "import reasonpipe.tasks",
        f"assert Trace.from_text('countdown', {SAMPLE!r}).problem.target == 47"])
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("old,new,step,why", [
    ("66-42=24, Resulting", "66-42=25, Resulting", 1, "is 24, not 25"),
    ("61-24=37, Resulting Numbers: [37]", "61-24=36, Resulting Numbers: [36]", 5, "is 37, not 36"),
    ("Resulting Numbers: [61, 24]", "Resulting Numbers: [61, 25]", 1, "should be [24, 61]"),
    ("61-42=19, Resulting Numbers: [66, 19]", "42-61=19, Resulting Numbers: [66, 19]", 9, "negative"),
    ("66-19=47, Resulting", "66-18=48, Resulting", 13, "not both among"),
    ("Moving to Node #0,1\n", "Moving to Node #0,7\n", 11, "never generated"),
    ("47,47 equal", "47,47 unequal: No Solution\n47,48 equal", 14, "are equal"),
    ("37,47 unequal", "37,47 equal: Goal Reached\n37,47 unequal", 6, "not equal"),
    ("Generated Node #0,1:", "Generated Node #0,0:", 10, "already generated"),
    ("Generated Node #0,1:", "Generated Node #0,0,1:", 10, "not a child id"),
    ("Current State: 47:[66, 19], Operations: ['61-42=19']", "Current State: 47:[66, 20], Operations: ['61-42=19']", 12, "not node #0,1"),
    ("Current State: 47:[61, 24], Operations: ['66-42=24']", "Current State: 47:[61, 24], Operations: ['66-41=25']", 4, "operations are not"),
])
def test_one_changed_step_is_refuted_and_named(old, new, step, why):
    assert old in SAMPLE
    bad = first_bad(SAMPLE.replace(old, new, 1), CountdownProblem((42, 61, 66), 47))
    assert bad is not None and bad[0] == step and bad[1].verdict == Verdict.REFUTED and why in bad[1].reason


def test_division_rules_and_garbage_lines():
    text = "Current State: 10:[9, 2, 3], Operations: []\nExploring Operation: 9/2=4, Resulting Numbers: [3, 4]\n"
    assert "not exact" in first_bad(text)[1].reason
    text = "Current State: 10:[9, 0, 3], Operations: []\nExploring Operation: 9/0=0, Resulting Numbers: [3, 0]\n"
    assert "division by zero" in first_bad(text)[1].reason
    v = verdicts_of(SAMPLE.replace("Moving to Node #0\n", "I think we should go back\n"))
    assert v[7].verdict == Verdict.UNFORMALIZABLE
    assert verdicts_of("Moving to Node #0\n")[0].verdict == Verdict.REFUTED  # no state to start from
    wrong_problem = first_bad(SAMPLE, CountdownProblem((42, 61, 67), 47))
    assert wrong_problem[0] == 0 and "is not the problem" in wrong_problem[1].reason


def test_parse_never_raises_and_score_never_raises():
    rng = random.Random(0)
    alphabet = "Current State:0123456789[], '+-*/=#\nExploringGoal Reached\u00e9\u0663\x00"
    samples = ["", "\n\n", "9" * 5000, "Exploring Operation: " + "9" * 400 + "+1=2, Resulting Numbers: [1]",
               "Current State: 5:[1, 2], Operations: ['1+2=3', 'x']", SAMPLE[:50], "\u0663+\u0663=\u0666"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300))) for _ in range(300)]
    samples += [SAMPLE[: rng.randint(0, len(SAMPLE))] for _ in range(100)]
    for s in samples:
        grammar.parse(s)
        assert TASK.score(CountdownProblem((42, 61, 66), 47), s) in (0.0, 1.0)
        VERIFIER.verify(Trace.from_text("countdown", s))
    assert TASK.score(CountdownProblem((42, 61, 66), 47), SAMPLE) == 1.0
    assert TASK.score(CountdownProblem((42, 61, 66), 46), SAMPLE) == 0.0
    assert TASK.score(CountdownProblem((42, 61, 66), 47), None) == 0.0
