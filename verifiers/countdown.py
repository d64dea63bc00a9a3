"""Exact step verification of CountDown traces in the Stream-of-Search grammar.

Replays the search tree the trace describes and checks every step against the rules:

- ``Current State``: the first is the problem (target, numbers, no operations); later ones restate the node
  the trace is at (its numbers as a multiset and the operations that led to it);
- ``Exploring Operation``: the arithmetic holds under the rules (no negatives, exact division), both operands
  are among the current numbers, and the resulting numbers are the current ones with the operands replaced
  by the result;
- ``Generated Node``: repeats the last explored operation and numbers, with a fresh id that extends the
  current node's id by one component;
- ``Moving to Node``: goes to the root or a node generated earlier;
- ``equal: Goal Reached`` / ``unequal: No Solution``: the last explored operation left one number, it is the
  one named, and the (in)equality with the target is true;
- ``No solution found.`` is a claim about the search, not a step: ``no_check``;
- a line outside the grammar is ``unformalizable``.

A trace whose every step holds but that never reaches the goal is valid and reported unsolved. The rules
are the task's (:mod:`reasonpipe.tasks.countdown`): ``apply`` for the arithmetic, ``numbers_after`` for the
resulting numbers.

Example::

    reasonpipe verify cd.jsonl
"""

from __future__ import annotations

from reasonpipe.tasks.countdown import apply, numbers_after
from reasonpipe.traces import Trace
from reasonpipe.traces.countdown import DeadEnd, Exhausted, Explore, Generate, Goal, Move, State, Unparsed
from reasonpipe.verifiers.verdicts import ExactVerifier, StepVerdict, Verdict

_P = Verdict.PROVED
_R = Verdict.REFUTED
_STATE_OK = StepVerdict(_P, "state matches the current node")
_ROOT_OK = StepVerdict(_P, "initial state is the problem")
_EXPLORE_OK = StepVerdict(_P, "arithmetic holds, operands available, resulting numbers follow")
_GENERATE_OK = StepVerdict(_P, "node is the explored operation's result, with a fresh child id")
_MOVE_OK = StepVerdict(_P, "node was generated before")
_GOAL_OK = StepVerdict(_P, "the remaining number equals the target")
_DEAD_OK = StepVerdict(_P, "the remaining number differs from the target")
_EXHAUSTED = StepVerdict(Verdict.NO_CHECK, "a claim about the search, not a checkable step")
_UNPARSED = StepVerdict(Verdict.UNFORMALIZABLE, "line is not in the CountDown trace grammar")
_NO_STATE = StepVerdict(_R, "no current state yet (the trace must start with 'Current State')")
_NO_EXPLORE = StepVerdict(_R, "no explored operation to refer to")


def _fmt(nums) -> str:
    return "[" + ", ".join(map(str, nums)) + "]"


class CountdownVerifier(ExactVerifier):
    """Verifier contract: ``verify(trace) -> [StepVerdict]``; ``report(trace)`` sums it up."""

    task = "countdown"

    def _check(self, trace: Trace) -> tuple[list[StepVerdict], bool]:
        problem = trace.problem
        if problem is None:
            return [_NO_STATE] * len(trace.steps), False
        target = problem.target
        # node id -> (sorted numbers, operations that led to it)
        nodes: dict[str, tuple[list[int], tuple]] = {}
        cur_id: str | None = None
        cur_nums: list[int] = []
        cur_ops: tuple = ()
        cur_state: State | None = None  # the State step last proved at the current node
        pending: Explore | None = None  # the last explored operation, until a claim or node consumes it
        solved = False
        out: list[StepVerdict] = []
        add = out.append
        # The branches are ordered by how often each kind occurs in search traces (this is the hot loop).
        for step in trace.steps:
            t = type(step)
            if t is Explore:
                pending = None
                if cur_id is None:
                    add(_NO_STATE)
                    continue
                op = step.op
                a, b, sym = op.a, op.b, op.sym
                value = apply(a, sym, b)
                if value is None:
                    why = ("a subtraction with a negative result" if sym == "-" else
                           "division by zero" if b == 0 else "a division that is not exact")
                    add(StepVerdict(_R, f"{op}: {why} is not allowed"))
                    continue
                if value != op.result:
                    add(StepVerdict(_R, f"{op}: {a}{sym}{b} is {value}, not {op.result}"))
                    continue
                pool = numbers_after(cur_nums, op)
                if pool is None:
                    add(StepVerdict(_R, f"{op}: operands {a} and {b} are not both among the current numbers "
                                        f"{_fmt(cur_nums)}"))
                    continue
                pool.sort()
                if sorted(step.nums) != pool:
                    add(StepVerdict(_R, f"{op}: resulting numbers should be {_fmt(pool)}, not {_fmt(step.nums)}"))
                    continue
                pending = step
                add(_EXPLORE_OK)
            elif t is State:
                pending = None
                if step is cur_state:  # the same line restated at the same node: already checked
                    add(_STATE_OK)
                    continue
                nums = sorted(step.nums)
                if cur_id is None:
                    if step.target == target and nums == sorted(problem.nums) and not step.ops:
                        nodes["0"] = (nums, ())
                        cur_id, cur_nums, cur_ops, cur_state = "0", nums, (), step
                        add(_ROOT_OK)
                    else:
                        add(StepVerdict(_R, f"initial state {step.target}:{_fmt(step.nums)} with operations "
                                            f"{len(step.ops)} is not the problem {target}:{_fmt(problem.nums)}"))
                elif step.target != target:
                    add(StepVerdict(_R, f"target {step.target} is not the problem's {target}"))
                elif nums != cur_nums:
                    add(StepVerdict(_R, f"numbers {_fmt(step.nums)} are not node #{cur_id}'s {_fmt(cur_nums)}"))
                elif step.ops != cur_ops:
                    add(StepVerdict(_R, f"operations are not those that led to node #{cur_id}: "
                                        f"{[str(o) for o in cur_ops]}"))
                else:
                    cur_state = step
                    add(_STATE_OK)
            elif t is Move:
                pending = None
                node_id = step.node
                if node_id == cur_id:
                    add(_MOVE_OK)
                    continue
                node = nodes.get(node_id)
                if node is None:
                    add(StepVerdict(_R, f"node #{node_id} was never generated"))
                else:
                    cur_id = node_id
                    cur_nums, cur_ops = node
                    cur_state = None
                    add(_MOVE_OK)
            elif t is DeadEnd or t is Goal:
                p, pending = pending, None
                goal = t is Goal
                if p is None:
                    add(_NO_EXPLORE)
                elif len(p.nums) != 1 or p.nums[0] != step.value:
                    add(StepVerdict(_R, f"{step.value} is not the single number left by {p.op} ({_fmt(p.nums)})"))
                elif step.target != target:
                    add(StepVerdict(_R, f"target {step.target} is not the problem's {target}"))
                elif (step.value == target) != goal:
                    add(StepVerdict(_R, f"{step.value} and {target} are {'not ' if goal else ''}equal"))
                else:
                    add(_GOAL_OK if goal else _DEAD_OK)
                    solved = solved or goal
            elif t is Generate:
                p, pending = pending, None
                if p is None:
                    add(_NO_EXPLORE)
                elif step.op != p.op or sorted(step.nums) != sorted(p.nums) or step.target != target:
                    add(StepVerdict(_R, f"node #{step.node} is not the explored {p.op} -> {_fmt(p.nums)}"))
                elif step.node in nodes:
                    add(StepVerdict(_R, f"node #{step.node} was already generated"))
                elif step.node.rpartition(",")[0] != cur_id:
                    add(StepVerdict(_R, f"node #{step.node} is not a child id of the current node #{cur_id}"))
                else:
                    nodes[step.node] = (sorted(step.nums), cur_ops + (step.op,))
                    add(_GENERATE_OK)
            elif t is Exhausted:
                add(_EXHAUSTED)
            elif t is Unparsed:
                add(_UNPARSED)
            else:
                add(StepVerdict(Verdict.UNFORMALIZABLE, f"not a CountDown step: {type(step).__name__}"))
        return out, solved
