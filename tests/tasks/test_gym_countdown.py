"""Our CountDown rules against reasoning-gym's CountDown items (its rules: targets 100-999, each number used
at most once; ours: every number used exactly once, no negative or fractional intermediate)."""

from __future__ import annotations

import ast

import pytest

from reasonpipe.tasks.countdown import CountdownProblem, CountdownTask, expression_to_ops, ops_to_expression, solve

rg = pytest.importorskip("reasoning_gym")


def _numbers_used(expr: str) -> list[int]:
    return sorted(n.value for n in ast.walk(ast.parse(expr, mode="eval")) if isinstance(n, ast.Constant))


def test_expression_round_trip():
    ops = expression_to_ops("94*4 - 61 - 6")
    assert [str(o) for o in ops] == ["94*4=376", "376-61=315", "315-6=309"]
    assert eval(ops_to_expression(ops)) == 309
    assert expression_to_ops("3 - 5 + 10") is None      # a negative intermediate breaks our rules
    assert expression_to_ops("7 / 2 * 4") is None       # so does a fraction
    assert expression_to_ops("__import__('os')") is None


def test_cross_check_with_reasoning_gym():
    data = rg.create_dataset("countdown", size=100, seed=3)
    task = CountdownTask()
    agree_all_used = 0
    for entry in data:
        nums, target = tuple(entry["metadata"]["numbers"]), entry["metadata"]["target"]
        problem = CountdownProblem(nums, target)
        ref = entry["answer"]
        assert data.score_answer(ref, entry) == 1.0
        ops = expression_to_ops(ref)
        uses_all = _numbers_used(ref) == sorted(nums)
        # their reference is correct under our rules exactly when it uses every number and stays non-negative
        # and integral on the way (our order of operations is the expression's own)
        ours = ops is not None and task.check_solution(problem, ops)
        assert ours == (uses_all and ops is not None)
        agree_all_used += ours
        # every solution under our rules is a correct answer under theirs
        solution = solve(nums, target)
        if solution is not None:
            assert data.score_answer(ops_to_expression(solution), entry) == 1.0
    assert agree_all_used > 80  # about 90% of their references stay valid under our rules (898 of 1000)
