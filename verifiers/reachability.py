"""Exact step verification of reachability traces (:mod:`reasonpipe.traces.reachability`).

Checks every step against the trace's problem (its graph, root and candidates; the BFS is recomputed from
the edges, stored layers and paths are not trusted):

- question line: states the problem (the same edge set, root and candidates; edge order is presentation);
- ``P n0>n1>...>nk``: starts at the root, every consecutive pair is an edge, and it ends at the node the next
  ``A`` line names (with no ``A`` line after it, any walk from the root is proved); shortness is not required;
- ``F ...``: the k-th ``F`` line lists exactly the nodes at BFS distance k from the root, each once (in any
  order; our searchers write them ascending); refuted with what is missing and what is extra;
- ``A n``: proved iff ``n`` is the candidate reachable from the root; a proved last ``A`` line makes the trace
  solved;
- a line outside the grammar is ``unformalizable``, and so is any step before the question line, or every step
  after a question line that is not a valid problem (that line itself is refuted).

A checker failure makes every step ``error``, never ``refuted``.

Example::

    reasonpipe gen reachability --n 50 --searcher bfs --out /tmp/reach.jsonl && reasonpipe verify /tmp/reach.jsonl
"""

from __future__ import annotations

from reasonpipe.tasks.reachability import bfs, node_name
from reasonpipe.traces import Trace
from reasonpipe.traces.reachability import Answer, Frontier, Path, Question, Unparsed
from reasonpipe.verifiers.verdicts import ExactVerifier, StepVerdict, Verdict

_P = Verdict.PROVED
_R = Verdict.REFUTED
_QUESTION_OK = StepVerdict(_P, "the question states the problem")
_UNPARSED = StepVerdict(Verdict.UNFORMALIZABLE, "line is not in the reachability trace grammar")
_FOREIGN = StepVerdict(Verdict.UNFORMALIZABLE, "not a reachability trace step")
_BEFORE = StepVerdict(Verdict.UNFORMALIZABLE, "before the question line: no graph yet")
_NO_GRAPH = StepVerdict(Verdict.UNFORMALIZABLE, "no graph: the question line is not a valid problem")
_SECOND = StepVerdict(_R, "a second question line")


def _names(nodes) -> str:
    return " ".join(node_name(i) for i in sorted(nodes))


class ReachabilityVerifier(ExactVerifier):
    """Verifier contract: ``verify(trace) -> [StepVerdict]``; ``report(trace)`` sums it up."""

    task = "reachability"

    def _check(self, trace: Trace) -> tuple[list[StepVerdict], bool]:
        steps = trace.steps
        problem = trace.problem
        # the node each step's next answer line names (for P lines)
        next_answer: list[int | None] = [None] * len(steps)
        claim = None
        for i in range(len(steps) - 1, -1, -1):
            next_answer[i] = claim
            if type(steps[i]) is Answer:
                claim = steps[i].node

        out: list[StepVerdict] = []
        add = out.append
        started = False
        edges: set[tuple[int, int]] = set()
        layers: tuple[tuple[int, ...], ...] = ()
        dist: dict[int, int] = {}
        frontier_k = 0
        solved = False
        for i, step in enumerate(steps):
            t = type(step)
            if t is Question:
                if started:
                    add(_SECOND)
                    continue
                started = True
                if problem is None:
                    add(StepVerdict(_R, "not a valid problem: the graph must be a DAG on nodes naa.. with exactly "
                                        "one candidate reachable from the root"))
                    continue
                edges = set(problem.edges)
                layers = bfs(problem.nodes, problem.edges, problem.root)[0]
                dist = {v: k for k, layer in enumerate(layers) for v in layer}
                add(self._question(step, problem, edges))
            elif t is Unparsed:
                add(_UNPARSED)
            elif t not in (Path, Frontier, Answer):
                add(_FOREIGN)
            elif not started:
                add(_BEFORE)
            elif problem is None:
                add(_NO_GRAPH)
            elif t is Path:
                add(self._path(step, problem.root, edges, next_answer[i]))
            elif t is Frontier:
                frontier_k += 1
                add(self._frontier(step, frontier_k, layers))
            else:
                verdict = self._answer(step, problem, dist)
                solved = verdict.verdict == _P
                add(verdict)
        return out, solved

    @staticmethod
    def _question(step: Question, problem, edges: set[tuple[int, int]]) -> StepVerdict:
        if step.root != problem.root:
            return StepVerdict(_R, f"root {node_name(step.root)} is not the problem's {node_name(problem.root)}")
        if set(step.candidates) != set(problem.candidates):
            return StepVerdict(_R, f"candidates {_names(step.candidates)} are not the problem's "
                                   f"{_names(problem.candidates)}")
        stated = set(step.edges)
        if stated != edges or len(step.edges) != len(stated):
            missing, extra = edges - stated, stated - edges
            parts = []
            if missing:
                parts.append("missing " + ", ".join(f"{node_name(s)}>{node_name(t)}" for s, t in sorted(missing)))
            if extra:
                parts.append("extra " + ", ".join(f"{node_name(s)}>{node_name(t)}" for s, t in sorted(extra)))
            if not parts:
                parts.append("an edge is listed twice")
            return StepVerdict(_R, "edges differ from the problem's: " + "; ".join(parts))
        return _QUESTION_OK

    @staticmethod
    def _path(step: Path, root: int, edges: set[tuple[int, int]], answer: int | None) -> StepVerdict:
        nodes = step.nodes
        if nodes[0] != root:
            return StepVerdict(_R, f"starts at {node_name(nodes[0])}, not at the root {node_name(root)}")
        for a, b in zip(nodes, nodes[1:]):
            if (a, b) not in edges:
                return StepVerdict(_R, f"no edge {node_name(a)}>{node_name(b)}")
        end = nodes[-1]
        if answer is not None and end != answer:
            return StepVerdict(_R, f"ends at {node_name(end)}, but the answer line names {node_name(answer)}")
        return StepVerdict(_P, f"{len(nodes) - 1} edge(s) from the root to {node_name(end)}")

    @staticmethod
    def _frontier(step: Frontier, k: int, layers: tuple[tuple[int, ...], ...]) -> StepVerdict:
        expected = set(layers[k]) if k < len(layers) else set()
        stated = set(step.nodes)
        if len(stated) != len(step.nodes):
            twice = sorted({v for v in step.nodes if step.nodes.count(v) > 1})
            return StepVerdict(_R, f"lists {_names(twice)} more than once")
        if stated != expected:
            parts = []
            if expected - stated:
                parts.append(f"missing {_names(expected - stated)}")
            if stated - expected:
                parts.append(f"extra {_names(stated - expected)}")
            where = f"layer {k}" if expected else f"layer {k} is empty (the deepest is {len(layers) - 1})"
            return StepVerdict(_R, f"{where}: " + "; ".join(parts))
        return StepVerdict(_P, f"exactly the {len(expected)} node(s) at distance {k} from the root")

    @staticmethod
    def _answer(step: Answer, problem, dist: dict[int, int]) -> StepVerdict:
        node = step.node
        if node not in problem.candidates:
            return StepVerdict(_R, f"{node_name(node)} is not a candidate ({_names(problem.candidates)})")
        if node in dist:
            return StepVerdict(_P, f"{node_name(node)} is reachable from the root (distance {dist[node]})")
        other = next(c for c in problem.candidates if c != node)
        return StepVerdict(_R, f"{node_name(node)} is not reachable from the root; {node_name(other)} is")
