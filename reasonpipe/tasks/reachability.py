"""Graph reachability (ProsQA-style, for Coconut and Reasoning by Superposition): which candidate can the root reach?

A problem is a directed acyclic graph on ``nodes`` nodes named ``naa, nab, ...`` (:func:`node_name`: ``"n"``
and two lowercase letters, so each name is ONE token of the task tokenizer), a root, and two candidates of
which exactly one is reachable from the root. The prompt lists the edges, the candidates and the root::

    nab>nqc|naa>nab|... Q nqq nxd R naa

and the answer line is ``A nqq``. Node ids are a random permutation of ``0..nodes-1`` (the numbers carry no
information) and every node is on at least one edge, so the prompt states the whole graph.

Generator (:meth:`ReachabilityTask.generate`), after ProsQA: the nodes are split into an *explored side*
(the root and everything it reaches) and an *other side* that the root cannot reach.

* explored side: BFS layers ``0..depth`` (plus, when there are nodes to spare, a layer ``depth + 1``); every
  node of layer ``k >= 1`` gets one parent in layer ``k - 1``, each parent taking at most ``branching``
  children, so layer ``k`` is at most ``branching`` times as wide as layer ``k - 1``. The answer is a node of
  layer ``depth``: its shortest distance from the root is exactly ``depth``.
* other side: a second tree of the same shape, rooted at a decoy source; the unreachable candidate (the
  distractor) sits at the same depth as the answer when the side has the nodes for it, so it has in-edges
  (from the other side) like the answer does.
* ``edge_density``: extra random edges, ``edge_density`` times the number of tree edges (rounded at random),
  that keep the graph a DAG (all edges follow one topological order: by layer, ties at random), never lead
  from the explored side to the other side (the distractor stays unreachable), and on the explored side go
  from layer ``k`` to layer ``k`` or ``k + 1`` only (the BFS layers, hence ``depth``, stay as built). Edges from
  the other side into the explored side are allowed, so the two sides are not separate components.

Spare nodes (beyond the ``depth + 3`` every problem needs) go to either side with probability 1/2; a node
the explored side has no room for (``branching``) goes to the other side.

Splits: a problem is held out (``test``) when a stable hash (CRC-32) of its prompt falls in
:data:`HELDOUT_FRACTION` (10%) of the hash range; ``train`` draws only the others. Decided per problem, as in
CountDown's solution split, so any worker makes the same call. A drawn graph whose labelling lands in the
wrong split is relabelled (two node names swapped, the candidate order drawn again) rather than rebuilt: 10x
cheaper for the test split, and a uniformly random labelling stays uniformly random.

Derived fields (``answer``, ``layers``, ``path``) are functions of the graph, root and candidates
(:func:`solve_graph`): ``path`` is the canonical shortest path, each node's predecessor being the smallest id
in the layer before it that has an edge to it.

Example::

    reasonpipe gen reachability --n 5 --searcher path --seed 0 --out /tmp/reach.jsonl
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.traces import reachability as grammar_module
from reasonpipe.traces.reachability import NAMES as _NAMES
from reasonpipe.traces.reachability import Answer, Question
from reasonpipe.traces.tokens import vocabulary_from

MAX_NODES = 128          # the vocabulary covers node names 0..MAX_NODES-1
SPLITS = ("train", "test")
HELDOUT_FRACTION = 0.1   # share of problems (by prompt hash) in the test split
_INDEX = {name: i for i, name in enumerate(_NAMES)}
_RELABELS = 200          # labellings of one graph shape tried for the asked-for split before a new shape


def node_name(i: int) -> str:
    """``"n"`` + two lowercase letters: 0 -> ``naa``, 1 -> ``nab``, 26 -> ``nba``."""
    if not 0 <= i < MAX_NODES:
        raise InputError(f"node {i} is out of range 0..{MAX_NODES - 1}", field="node")
    return _NAMES[i]


def node_index(name: str) -> int:
    """The inverse of :func:`node_name`; InputError for anything else."""
    i = _INDEX.get(name) if isinstance(name, str) else None
    if i is None or i >= MAX_NODES:
        raise InputError(f"{name!r} is not a node name naa..{_NAMES[MAX_NODES - 1]}", field="node")
    return i


@dataclass(frozen=True)
class ReachProblem:
    """A DAG, a root and two candidates, exactly one of them (``answer``) reachable from the root.

    ``edges`` are in prompt order; ``layers[k]`` are the nodes at BFS distance ``k`` from the root (sorted),
    up to the last non-empty layer; ``path`` is the canonical shortest path root -> answer.
    """

    nodes: int
    edges: tuple[tuple[int, int], ...]
    root: int
    candidates: tuple[int, int]
    answer: int
    layers: tuple[tuple[int, ...], ...]
    path: tuple[int, ...]


@dataclass
class ReachabilityConfig:
    """Generator settings (see module docstring)."""

    nodes: int = 20             # nodes per graph (every graph has exactly this many)
    depth: int = 4              # BFS distance root -> reachable candidate (= path steps)
    branching: int = 2          # most children per node in the tree part of either side
    edge_density: float = 0.1   # extra edges, as a fraction of the tree edges
    split: str = "train"        # train | test (held out by a hash of the prompt)
    min_depth: int = 0          # 0: always ``depth``; else depth drawn uniformly in [min_depth, depth]

    def validate(self) -> None:
        for name in ("nodes", "depth", "branching", "min_depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise InputError(f"expected an integer, got {type(value).__name__}", field=name)
        if not 1 <= self.depth <= MAX_NODES - 3:
            raise InputError(f"must be 1..{MAX_NODES - 3}, got {self.depth}", field="depth")
        if not self.depth + 3 <= self.nodes <= MAX_NODES:
            raise InputError(f"must be depth + 3 ({self.depth + 3}) .. {MAX_NODES}: a path of depth + 1 nodes, "
                             f"the distractor and a node pointing to it; got {self.nodes}", field="nodes")
        if self.branching < 1:
            raise InputError(f"must be >= 1, got {self.branching}", field="branching")
        if (not isinstance(self.edge_density, (int, float)) or isinstance(self.edge_density, bool)
                or not 0.0 <= self.edge_density <= 10.0):
            raise InputError(f"must be a number in 0..10, got {self.edge_density!r}", field="edge_density")
        if self.split not in SPLITS:
            raise InputError(f"unknown split {self.split!r} (known: {', '.join(SPLITS)})", field="split")
        if self.min_depth != 0 and not 1 <= self.min_depth <= self.depth:
            raise InputError(f"must be 0 (= depth) or 1..depth ({self.depth}), got {self.min_depth}",
                             field="min_depth")


# -- graph functions --------------------------------------------------------------------------------

def bfs(nodes: int, edges: tuple[tuple[int, int], ...] | list[tuple[int, int]], root: int
        ) -> tuple[tuple[tuple[int, ...], ...], dict[int, int]]:
    """BFS layers from ``root`` (sorted, up to the last non-empty one) and each reached node's canonical
    parent: the smallest id in the layer before it with an edge to it."""
    adj: list[list[int]] = [[] for _ in range(nodes)]
    for s, t in edges:
        adj[s].append(t)
    parent = {root: -1}
    layers = [(root,)]
    layer = [root]
    while True:
        nxt = []
        for u in layer:  # sorted: the first node to reach v is its smallest-id predecessor
            for v in adj[u]:
                if v not in parent:
                    parent[v] = u
                    nxt.append(v)
        if not nxt:
            return tuple(layers), parent
        nxt.sort()
        layers.append(tuple(nxt))
        layer = nxt


def is_dag(nodes: int, edges: tuple[tuple[int, int], ...] | list[tuple[int, int]]) -> bool:
    """Kahn's algorithm: can every node be removed in a topological order?"""
    indeg = [0] * nodes
    adj: list[list[int]] = [[] for _ in range(nodes)]
    for s, t in edges:
        adj[s].append(t)
        indeg[t] += 1
    ready = [v for v in range(nodes) if not indeg[v]]
    seen = 0
    while ready:
        u = ready.pop()
        seen += 1
        for v in adj[u]:
            indeg[v] -= 1
            if not indeg[v]:
                ready.append(v)
    return seen == nodes


def solve_graph(nodes: int, edges: tuple[tuple[int, int], ...], root: int, candidates: tuple[int, int]
                ) -> tuple[int, tuple[tuple[int, ...], ...], tuple[int, ...]]:
    """(answer, layers, canonical shortest path) of a question; InputError unless exactly one candidate is
    reachable from the root."""
    layers, parent = bfs(nodes, edges, root)
    reached = [c for c in candidates if c in parent]
    if len(reached) != 1:
        names = " and ".join(_NAMES[c] for c in candidates)
        raise InputError(f"{'both' if reached else 'neither'} of {names} reachable from {_NAMES[root]}; "
                         "exactly one must be", field="candidates")
    answer = reached[0]
    path = [answer]
    while path[-1] != root:
        path.append(parent[path[-1]])
    return answer, layers, tuple(reversed(path))


def make_problem(nodes: int, edges: tuple[tuple[int, int], ...], root: int, candidates: tuple[int, int]
                 ) -> ReachProblem:
    """A validated problem from the graph, root and candidates (derived fields computed); InputError naming
    the field otherwise."""
    if not isinstance(nodes, int) or isinstance(nodes, bool) or not 1 <= nodes <= MAX_NODES:
        raise InputError(f"must be an integer 1..{MAX_NODES}, got {nodes!r}", field="nodes")
    seen = set()
    for i, (s, t) in enumerate(edges):
        if not (0 <= s < nodes and 0 <= t < nodes):
            raise InputError(f"edge {s}>{t} has a node outside 0..{nodes - 1}", field=f"edges[{i}]")
        if s == t:
            raise InputError(f"self-loop on {_NAMES[s]}", field=f"edges[{i}]")
        if (s, t) in seen:
            raise InputError(f"edge {_NAMES[s]}>{_NAMES[t]} listed twice", field=f"edges[{i}]")
        seen.add((s, t))
    if not 0 <= root < nodes:
        raise InputError(f"{root} is outside 0..{nodes - 1}", field="root")
    if len(candidates) != 2 or not all(0 <= c < nodes for c in candidates) or candidates[0] == candidates[1]:
        raise InputError(f"expected two distinct nodes in 0..{nodes - 1}, got {list(candidates)}", field="candidates")
    if not is_dag(nodes, edges):
        raise InputError("the graph has a cycle", field="edges")
    answer, layers, path = solve_graph(nodes, tuple(edges), root, tuple(candidates))
    return ReachProblem(nodes, tuple(edges), root, (candidates[0], candidates[1]), answer, layers, path)


def question_problem(question: Question) -> ReachProblem:
    """The problem a prompt line states (``nodes`` = the largest id named + 1); InputError when it is not one."""
    ids = [question.root, *question.candidates, *(x for e in question.edges for x in e)]
    top = max(ids)
    if top >= MAX_NODES:
        raise InputError(f"node {_NAMES[top]} is beyond the last node {_NAMES[MAX_NODES - 1]}", field="nodes")
    return make_problem(top + 1, question.edges, question.root, question.candidates)


# -- the task ---------------------------------------------------------------------------------------

class ReachabilityTask:
    """Task contract (DESIGN.md): generate / prompt / parse_answer / score / vocabulary."""

    name = "reachability"
    grammar = grammar_module

    def __init__(self, config: ReachabilityConfig | None = None) -> None:
        self.config = config or ReachabilityConfig()
        self.config.validate()

    # splits
    @staticmethod
    def heldout(problem: ReachProblem) -> bool:
        """Is this problem in the test split? (CRC-32 of its prompt in the held-out 10%)"""
        return _heldout(ReachabilityTask.prompt(problem))

    def generate(self, rng: random.Random) -> ReachProblem:
        c = self.config
        depth = rng.randint(c.min_depth, c.depth) if c.min_depth else c.depth
        want_test = c.split == "test"
        for _ in range(1000):
            n, edges, root, answer, decoy = self._shape(rng, depth)
            rng.shuffle(edges)  # the prompt order (the labels below are random, so it stays random)
            perm = list(range(n))
            rng.shuffle(perm)
            for _ in range(_RELABELS):
                cands = (perm[answer], perm[decoy]) if rng.random() < 0.5 else (perm[decoy], perm[answer])
                nm = [_NAMES[p] for p in perm]
                prompt = ("|".join([nm[s] + ">" + nm[t] for s, t in edges])
                          + f" Q {_NAMES[cands[0]]} {_NAMES[cands[1]]} R {nm[root]}\n")
                if _heldout(prompt) == want_test:
                    labelled = tuple([(perm[s], perm[t]) for s, t in edges])
                    got, layers, path = solve_graph(n, labelled, perm[root], cands)
                    if got != perm[answer] or len(path) != depth + 1:  # the construction guarantees both
                        raise RuntimeError(f"generator bug: answer {got} vs {perm[answer]}, path {path}")
                    return ReachProblem(n, labelled, perm[root], cands, got, layers, path)
                # wrong split: swap two labels (a uniform labelling stays uniform) and hash again
                i, j = int(rng.random() * n), int(rng.random() * n)
                perm[i], perm[j] = perm[j], perm[i]
        raise RuntimeError("no labelling in the asked-for split after 200000 tries")  # p ~ 0.9**200000

    def _shape(self, rng: random.Random, depth: int) -> tuple[int, list[tuple[int, int]], int, int, int]:
        """One unlabelled graph: (nodes, edges, root, answer, decoy); the root is 0."""
        c = self.config
        n, b = c.nodes, c.branching
        rand = rng.random
        spare = n - (depth + 3)
        to_a = sum(1 for _ in range(spare) if rand() < 0.5)
        # explored side: widths of layers 0..depth+1
        wa = [1] * (depth + 1) + [0]
        overflow = 0
        for _ in range(to_a):
            room = [k for k in range(1, depth + 2) if wa[k] < b * wa[k - 1]]
            if room:
                wa[rng.choice(room)] += 1
            else:
                overflow += 1
        n_b = 2 + spare - to_a + overflow
        # other side: u at layer min(depth, n_b - 1); extra nodes anywhere with room, or a new deeper layer
        db = min(depth, n_b - 1)
        wb = [1] * (db + 1) + [0]
        for _ in range(n_b - (db + 1)):
            room = [k for k in range(1, len(wb)) if wb[k] < b * wb[k - 1]]
            if room:
                wb[rng.choice(room)] += 1
            else:
                wb.append(1)
        edges: list[tuple[int, int]] = []
        layer_of: list[int] = []
        side_a: list[bool] = []
        rows_a = self._tree(rng, wa, 0, edges, layer_of, side_a, True)
        rows_b = self._tree(rng, wb, len(layer_of), edges, layer_of, side_a, False)
        answer = rng.choice(rows_a[depth])
        decoy = rng.choice(rows_b[db])
        # extra edges along one topological order (layer, then random), never explored -> other side,
        # on the explored side only to the same or the next layer
        key = [layer + rand() for layer in layer_of]
        extra = int(c.edge_density * len(edges) + rand())
        have = set(edges)
        for _ in range(20 * extra):
            if not extra:
                break
            x, y = int(rand() * n), int(rand() * n)
            if key[x] > key[y]:
                x, y = y, x
            if x == y or (x, y) in have:
                continue
            if side_a[x] and (not side_a[y] or layer_of[y] > layer_of[x] + 1):
                continue
            have.add((x, y))
            edges.append((x, y))
            extra -= 1
        return n, edges, 0, answer, decoy

    @staticmethod
    def _tree(rng: random.Random, widths: list[int], first: int, edges: list[tuple[int, int]],
              layer_of: list[int], side_a: list[bool], is_a: bool) -> list[list[int]]:
        """Nodes ``first..`` in layers of the given widths; each node below layer 0 gets a parent in the
        layer above, each parent at most ``len(slots) / width`` children (the caller keeps widths within
        ``branching`` times the layer above). Returns the node ids by layer."""
        rows: list[list[int]] = []
        nxt = first
        for k, w in enumerate(widths):
            row = list(range(nxt, nxt + w))
            nxt += w
            layer_of.extend([k] * w)
            side_a.extend([is_a] * w)
            if k:
                above = rows[-1]
                slots = above * ((w + len(above) - 1) // len(above))  # each parent as often as needed
                rng.shuffle(slots)
                edges.extend(zip(slots, row))
            rows.append(row)
        return rows

    @staticmethod
    def prompt(problem: ReachProblem) -> str:
        """``s>t|s>t|... Q a b R root`` and a newline: the trace's first line; a model continues from it."""
        return Question(problem.edges, problem.candidates, problem.root).to_line() + "\n"

    @staticmethod
    def parse_answer(text: str) -> int | None:
        """The node named on the last ``A `` line; None when there is none or that line is not ``A <node>``."""
        if not isinstance(text, str):
            return None
        last = None
        for line in text.split("\n"):
            if line.startswith("A "):
                last = line
        if last is None:
            return None
        step = grammar_module.parse_line(last.rstrip())
        return step.node if type(step) is Answer and step.node < MAX_NODES else None

    def score(self, problem: ReachProblem, text: str) -> float:
        """1.0 when the answer in ``text`` is the reachable candidate, else 0.0; never raises on model output."""
        return 1.0 if self.parse_answer(text) == problem.answer else 0.0

    @staticmethod
    @lru_cache(maxsize=1)
    def vocabulary() -> tuple[str, ...]:
        """Every node name, the grammar's words and symbols, the latent models' words, and the digits."""
        sample = ("|".join(_NAMES[:MAX_NODES]) + ">|\n Q R A P F startlatent latent endlatent pause")
        return vocabulary_from(sample)

    # records
    @staticmethod
    def problem_of(steps: list) -> ReachProblem | None:
        """The problem a trace's first line states, or None when it states none (or not a valid one)."""
        if steps and type(steps[0]) is Question:
            try:
                return question_problem(steps[0])
            except InputError:
                return None
        return None

    @staticmethod
    def problem_to_json(problem: ReachProblem) -> dict[str, Any]:
        return {"nodes": problem.nodes, "edges": [list(e) for e in problem.edges], "root": problem.root,
                "candidates": list(problem.candidates), "answer": problem.answer,
                "layers": [list(layer) for layer in problem.layers], "path": list(problem.path)}

    @staticmethod
    def problem_from_json(obj: Any, field: str = "problem") -> ReachProblem:
        """Needs ``nodes``, ``edges``, ``root``, ``candidates``; ``answer``, ``layers`` and ``path``, when
        present, must equal what the graph gives (they are recomputed)."""
        if not isinstance(obj, dict):
            raise InputError(f"expected an object with 'nodes', 'edges', 'root', 'candidates', "
                             f"got {type(obj).__name__}", field=field)
        for name in ("nodes", "edges", "root", "candidates"):
            if name not in obj:
                raise InputError("missing", field=f"{field}.{name}")
        nodes = obj["nodes"]
        _check_int(nodes, f"{field}.nodes")
        edges = obj["edges"]
        if not isinstance(edges, list) or len(edges) > MAX_NODES * MAX_NODES:
            raise InputError("expected a list of [source, target] pairs", field=f"{field}.edges")
        pairs = []
        for i, e in enumerate(edges):
            if not isinstance(e, list) or len(e) != 2:
                raise InputError("expected [source, target]", field=f"{field}.edges[{i}]")
            _check_int(e[0], f"{field}.edges[{i}][0]")
            _check_int(e[1], f"{field}.edges[{i}][1]")
            pairs.append((e[0], e[1]))
        _check_int(obj["root"], f"{field}.root")
        cands = obj["candidates"]
        if not isinstance(cands, list) or len(cands) != 2:
            raise InputError("expected two nodes", field=f"{field}.candidates")
        for i, x in enumerate(cands):
            _check_int(x, f"{field}.candidates[{i}]")
        try:
            problem = make_problem(nodes, tuple(pairs), obj["root"], (cands[0], cands[1]))
        except InputError as e:
            raise InputError(e.message, field=f"{field}.{e.field}" if e.field else field) from None
        for name, value in (("answer", problem.answer), ("layers", [list(x) for x in problem.layers]),
                            ("path", list(problem.path))):
            if name in obj and obj[name] != value:
                raise InputError(f"disagrees with the graph, which gives {value}", field=f"{field}.{name}")
        return problem

    @staticmethod
    def problem_from_line(line: str) -> ReachProblem:
        """A prompt line ``s>t|... Q a b R root``; ``nodes`` is the largest id named + 1."""
        step = grammar_module.parse_line(line.strip())
        if type(step) is not Question:
            raise InputError("expected 's>t|s>t|... Q a b R root' with node names naa..", field="problem")
        try:
            return question_problem(step)
        except InputError as e:
            raise InputError(e.message, field=f"problem.{e.field}" if e.field else "problem") from None

    @staticmethod
    def problem_label(problem: ReachProblem) -> str:
        return ReachabilityTask.prompt(problem).rstrip("\n")


def _heldout(prompt: str) -> bool:
    return zlib.crc32(prompt.encode()) % 10_000 < HELDOUT_FRACTION * 10_000


def _check_int(value: Any, field: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"expected an integer, got {type(value).__name__}", field=field)
    if not 0 <= value < MAX_NODES * MAX_NODES:
        raise InputError(f"{value} is out of range", field=field)
