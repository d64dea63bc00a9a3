"""Reachability: generator invariants (checked by independent graph code), prompt and trace formats, round trips,
searchers, exact verification of good and corrupted traces, scoring, tokenizer, config errors, CLI."""

from __future__ import annotations

import json
import random
import zlib
from collections import deque

import pytest

from reasonpipe.errors import InputError
from reasonpipe.tasks import make_task
from reasonpipe.tasks.reachability import (MAX_NODES, ReachabilityConfig, ReachabilityTask, ReachProblem,
                                           node_index, node_name)
from reasonpipe.tokenizer import TaskTokenizer, tokens_of
from reasonpipe.traces import Trace
from reasonpipe.traces import reachability as grammar
from reasonpipe.traces.reachability import Answer, Frontier, Path, Question, Unparsed, answer_line, cot_steps
from reasonpipe.searchers import get_searcher
from reasonpipe.searchers.base import SearchFailed, SearchOptions
from reasonpipe.searchers.reachability import bfs, direct, path
from reasonpipe.verifiers import get_verifier
from reasonpipe.verifiers.reachability import ReachabilityVerifier
from reasonpipe.verifiers.verdicts import Verdict

SEARCHERS = {"path": path, "bfs": bfs, "direct": direct}
CONFIGS = [
    {},
    {"nodes": 7, "depth": 4},                                   # the fewest nodes depth 4 allows
    {"nodes": 12, "depth": 3, "branching": 1},
    {"nodes": 40, "depth": 6, "branching": 3, "edge_density": 0.5},
    {"nodes": MAX_NODES, "depth": 8, "min_depth": 2, "edge_density": 0.3},
    {"nodes": 20, "depth": 4, "split": "test"},
]


def _generate(options: dict, n: int, seed: int = 0) -> list[ReachProblem]:
    task = make_task("reachability", **options)
    rng = random.Random(seed)
    return [task.generate(rng) for _ in range(n)]


@pytest.fixture(scope="module")
def problems() -> list[tuple[dict, ReachProblem]]:
    """500 problems over the configs above."""
    out = []
    for k, options in enumerate(CONFIGS):
        out.extend((options, p) for p in _generate(options, 500 // len(CONFIGS) + 1, seed=k))
    return out[:500]


# independent graph code (plain BFS / DFS), so the generator is not checked against itself
def _adjacency(p: ReachProblem) -> dict[int, list[int]]:
    adj: dict[int, list[int]] = {v: [] for v in range(p.nodes)}
    for s, t in p.edges:
        adj[s].append(t)
    return adj


def _distances(p: ReachProblem) -> dict[int, int]:
    adj, dist, queue = _adjacency(p), {p.root: 0}, deque([p.root])
    while queue:
        u = queue.popleft()
        for v in adj[u]:
            if v not in dist:
                dist[v] = dist[u] + 1
                queue.append(v)
    return dist


def _reaches(p: ReachProblem, target: int) -> bool:
    adj, stack, seen = _adjacency(p), [p.root], {p.root}
    while stack:
        u = stack.pop()
        if u == target:
            return True
        for v in adj[u]:
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return False


def _acyclic(p: ReachProblem) -> bool:
    adj, color = _adjacency(p), dict.fromkeys(range(p.nodes), 0)

    def visit(u: int) -> bool:
        color[u] = 1
        for v in adj[u]:
            if color[v] == 1 or (color[v] == 0 and not visit(v)):
                return False
        color[u] = 2
        return True

    return all(color[v] or visit(v) for v in range(p.nodes))


# -- generator --------------------------------------------------------------------------------------

def test_generated_problems_hold_every_invariant(problems):
    for options, p in problems:
        config = ReachabilityConfig(**options)
        assert p.nodes == config.nodes
        assert len(set(p.edges)) == len(p.edges) and all(s != t for s, t in p.edges)
        assert {x for e in p.edges for x in e} == set(range(p.nodes))  # every node on an edge: the prompt states all
        assert _acyclic(p)
        a, b = p.candidates
        assert a != b and p.answer in p.candidates
        assert [_reaches(p, c) for c in p.candidates].count(True) == 1 and _reaches(p, p.answer)
        decoy = a if b == p.answer else b  # a plausible distractor: pointed to from the unreachable part
        assert any(t == decoy and not _reaches(p, s) for s, t in p.edges)
        dist = _distances(p)
        layers = [tuple(sorted(v for v in dist if dist[v] == k)) for k in range(max(dist.values()) + 1)]
        assert p.layers == tuple(layers) and p.layers[0] == (p.root,)
        depth = len(p.path) - 1
        lo = config.min_depth or config.depth
        assert lo <= depth <= config.depth
        assert p.path[0] == p.root and p.path[-1] == p.answer and dist[p.answer] == depth
        assert all(e in set(p.edges) for e in zip(p.path, p.path[1:]))
        assert ReachabilityTask.heldout(p) == (config.split == "test")


def test_node_ids_and_candidate_order_carry_no_information():
    ps = _generate({}, 400, seed=5)
    assert len({p.root for p in ps}) == 20 and len({p.answer for p in ps}) == 20
    first_is_answer = sum(p.candidates[0] == p.answer for p in ps) / len(ps)
    assert 0.4 < first_is_answer < 0.6
    depths = {len(p.path) - 1 for p in _generate({"depth": 5, "min_depth": 2}, 200)}
    assert depths == {2, 3, 4, 5}


def test_generation_is_deterministic_per_seed():
    assert _generate({}, 30, seed=3) == _generate({}, 30, seed=3)
    assert _generate({}, 30, seed=3) != _generate({}, 30, seed=4)


def test_train_and_test_splits_are_disjoint_and_decided_by_the_prompt_hash():
    train = _generate({"nodes": 8, "depth": 2}, 300, seed=1)
    test = _generate({"nodes": 8, "depth": 2, "split": "test"}, 300, seed=1)
    task = ReachabilityTask()
    train_prompts = {task.prompt(p) for p in train}
    test_prompts = {task.prompt(p) for p in test}
    assert not train_prompts & test_prompts
    assert all(zlib.crc32(t.encode()) % 10_000 < 1_000 for t in test_prompts)
    assert all(zlib.crc32(t.encode()) % 10_000 >= 1_000 for t in train_prompts)


def test_ten_thousand_problems_are_fast():
    import time

    task, rng = ReachabilityTask(), random.Random(0)
    start = time.perf_counter()
    for _ in range(10_000):
        task.generate(rng)
    assert time.perf_counter() - start < 10.0


@pytest.mark.parametrize("options,field", [
    ({"nodes": MAX_NODES + 1}, "nodes"), ({"nodes": 6, "depth": 4}, "nodes"), ({"depth": 0}, "depth"),
    ({"branching": 0}, "branching"), ({"edge_density": -0.1}, "edge_density"), ({"split": "val"}, "split"),
    ({"min_depth": 5, "depth": 4}, "min_depth"), ({"nodes": "20"}, "nodes"), ({"colour": 1}, "colour"),
])
def test_bad_config_names_the_field(options, field):
    with pytest.raises(InputError) as e:
        make_task("reachability", **options)
    assert e.value.field == field


# -- names, prompt, answer ---------------------------------------------------------------------------

def test_node_names():
    assert [node_name(i) for i in (0, 1, 25, 26, 127)] == ["naa", "nab", "naz", "nba", "nex"]
    assert all(node_index(node_name(i)) == i for i in range(MAX_NODES))
    for bad in ("nzz", "naA", "xaa", "na", 3, "nex "):
        with pytest.raises(InputError):
            node_index(bad)
    with pytest.raises(InputError):
        node_name(MAX_NODES)


def test_prompt_format_exactly(problems):
    task = ReachabilityTask()
    for _, p in problems[:50]:
        a, b = (node_name(c) for c in p.candidates)
        edges = "|".join(f"{node_name(s)}>{node_name(t)}" for s, t in p.edges)
        expected = edges + f" Q {a} {b} R {node_name(p.root)}\n"
        assert task.prompt(p) == expected
        assert answer_line(p) == f"A {node_name(p.answer)}\n"
        assert ReachabilityTask.problem_from_line(task.prompt(p)) == p


def test_parse_answer_and_score_never_raise():
    task = ReachabilityTask()
    p = _generate({}, 1, seed=2)[0]
    other = next(c for c in p.candidates if c != p.answer)
    right, wrong = f"A {node_name(p.answer)}\n", f"A {node_name(other)}\n"
    assert task.parse_answer(task.prompt(p) + right) == p.answer
    assert task.score(p, task.prompt(p) + right) == 1.0
    assert task.score(p, right.rstrip("\n")) == 1.0
    assert task.score(p, wrong) == 0.0
    assert task.score(p, wrong + right) == 1.0 and task.score(p, right + wrong) == 0.0  # the last A line counts
    assert task.parse_answer(right + "A banana\n") is None  # the last A line is not a node
    for junk in ("", "A", "A \n", "P naa>nab\n", "A nzz\n", "\x00A naa", None, b"A naa", 12, "A n\u00e4a"):
        assert task.score(p, junk) == 0.0


# -- traces ---------------------------------------------------------------------------------------

def _trace(p: ReachProblem, name: str) -> Trace:
    return SEARCHERS[name](ReachabilityTask(), p, SearchOptions(), random.Random(0))


def test_trace_text_formats(problems):
    task = ReachabilityTask()
    for _, p in problems[:100]:
        names = [node_name(v) for v in p.path]
        prompt, answer = task.prompt(p), f"A {names[-1]}\n"
        assert _trace(p, "path").to_text() == prompt + "P " + ">".join(names) + "\n" + answer
        frontier = "".join("F " + " ".join(map(node_name, layer)) + "\n" for layer in p.layers[1:len(p.path)])
        assert _trace(p, "bfs").to_text() == prompt + frontier + answer
        assert _trace(p, "direct").to_text() == prompt + answer
        assert cot_steps(p, "path") == names[1:]
        assert cot_steps(p, "bfs") == frontier.splitlines()
    with pytest.raises(InputError):
        cot_steps(p, "dfs")


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_every_trace_round_trips_and_verifies(problems, name):
    task = ReachabilityTask()
    verifier = get_verifier("reachability")
    for _, p in problems:
        trace = get_searcher("reachability", name)(task, p, SearchOptions(), random.Random(0))
        text = trace.to_text()
        back = Trace.from_text("reachability", text)
        assert back.steps == trace.steps and back.problem == p and back.to_text() == text
        assert Trace.from_record(json.loads(json.dumps(trace.to_record(steps=True)))).steps == trace.steps
        assert trace.meta.searcher == name and trace.meta.backtracks == 0 and trace.meta.solved
        assert (trace.meta.nodes_expanded > 0) == (name != "direct")
        report = verifier.report(trace)
        assert report.valid and report.solved and report.counts[Verdict.PROVED] == len(trace.steps)
        assert task.score(p, text) == 1.0


def test_grammar_round_trips_odd_lines():
    text = " Q naa nab R nac\nF \nF nab naa\nP nzz\nA nab \nhello\nA nab\n"
    steps = grammar.parse(text)
    assert [type(s) for s in steps] == [Question, Frontier, Frontier, Path, Unparsed, Unparsed, Answer]
    assert grammar.to_text(steps) == text
    assert steps[0] == Question((), (0, 1), 2) and steps[2].nodes == (1, 0)


# -- verification of corrupted traces -----------------------------------------------------------------

def _verdicts(p: ReachProblem, text: str) -> list:
    return ReachabilityVerifier().verify(Trace.from_text("reachability", text, problem=p))


def _with(trace: Trace, index: int, step) -> str:
    steps = list(trace.steps)
    steps[index] = step
    return grammar.to_text(steps)


@pytest.fixture(scope="module")
def deep() -> ReachProblem:
    return _generate({"nodes": 20, "depth": 4, "edge_density": 0.3}, 1, seed=11)[0]


def test_wrong_edge_in_path_is_refuted_and_named(deep):
    p = deep
    t = _trace(p, "path")
    edges = set(p.edges)
    x = next(v for v in range(p.nodes) if (p.path[1], v) not in edges and v != p.path[2])
    bad = p.path[:2] + (x,) + p.path[3:]
    v = _verdicts(p, _with(t, 1, Path(bad)))
    assert v[1].verdict == Verdict.REFUTED and f"no edge {node_name(p.path[1])}>{node_name(x)}" in v[1].reason
    v = _verdicts(p, _with(t, 1, Path(p.path[1:])))
    assert v[1].verdict == Verdict.REFUTED and "root" in v[1].reason
    v = _verdicts(p, _with(t, 1, Path(p.path[:-1])))
    assert v[1].verdict == Verdict.REFUTED and "answer line names" in v[1].reason
    assert v[2].verdict == Verdict.PROVED  # the answer itself is still right


def test_wrong_frontier_is_refuted_with_missing_and_extra(deep):
    p = deep
    t = _trace(p, "bfs")
    layer1, layer2 = p.layers[1], p.layers[2]
    v = _verdicts(p, _with(t, 1, Frontier(layer1[1:])))
    assert v[1].verdict == Verdict.REFUTED and f"missing {node_name(layer1[0])}" in v[1].reason
    v = _verdicts(p, _with(t, 1, Frontier(layer1 + layer2[:1])))
    assert v[1].verdict == Verdict.REFUTED and f"extra {node_name(layer2[0])}" in v[1].reason
    v = _verdicts(p, _with(t, 1, Frontier(layer1 + layer1[:1])))
    assert v[1].verdict == Verdict.REFUTED and "more than once" in v[1].reason
    # layers swapped: both refuted; order inside a layer does not matter
    steps = list(t.steps)
    steps[1], steps[2] = steps[2], steps[1]
    v = _verdicts(p, grammar.to_text(steps))
    assert v[1].verdict == v[2].verdict == Verdict.REFUTED
    assert _verdicts(p, _with(t, 1, Frontier(tuple(reversed(layer1)))))[1].verdict == Verdict.PROVED
    # one F line too many, beyond the deepest layer
    beyond = grammar.to_text(t.steps[:-1] + [Frontier(p.layers[k]) for k in range(len(p.path), len(p.layers))]
                             + [Frontier((p.root,)), t.steps[-1]])
    v = _verdicts(p, beyond)
    assert v[-2].verdict == Verdict.REFUTED and "empty" in v[-2].reason


def test_wrong_answer_is_refuted_and_unsolved(deep):
    p = deep
    other = next(c for c in p.candidates if c != p.answer)
    for name in SEARCHERS:
        t = _trace(p, name)
        text = _with(t, len(t.steps) - 1, Answer(other))
        verdicts, solved = ReachabilityVerifier().check(Trace.from_text("reachability", text, problem=p))
        assert verdicts[-1].verdict == Verdict.REFUTED and not solved
        assert f"{node_name(other)} is not reachable" in verdicts[-1].reason
    stranger = next(v for v in range(p.nodes) if v not in p.candidates)
    v = _verdicts(p, _with(_trace(p, "direct"), 1, Answer(stranger)))
    assert v[1].verdict == Verdict.REFUTED and "not a candidate" in v[1].reason


def test_question_garbage_and_order_checks(deep):
    p = deep
    t = _trace(p, "path")
    q = t.steps[0]
    v = _verdicts(p, _with(t, 0, Question(q.edges[1:], q.candidates, q.root)))
    assert v[0].verdict == Verdict.REFUTED and "missing" in v[0].reason
    v = _verdicts(p, _with(t, 0, Question(q.edges, q.candidates, p.answer)))
    assert v[0].verdict == Verdict.REFUTED and "root" in v[0].reason
    v = _verdicts(p, _with(t, 0, Question(tuple(reversed(q.edges)), tuple(reversed(q.candidates)), q.root)))
    assert v[0].verdict == Verdict.PROVED
    v = _verdicts(p, "A " + node_name(p.answer) + "\n" + t.to_text() + "what now\n")
    assert [x.verdict for x in v] == [Verdict.UNFORMALIZABLE, Verdict.PROVED, Verdict.PROVED, Verdict.PROVED,
                                      Verdict.UNFORMALIZABLE]
    # a question line that is no valid problem (both candidates reachable): refuted, the rest has no graph
    text = "naa>nab|naa>nac Q nab nac R naa\nA nab\n"
    trace = Trace.from_text("reachability", text)
    assert trace.problem is None
    assert [x.verdict for x in ReachabilityVerifier().verify(trace)] == [Verdict.REFUTED, Verdict.UNFORMALIZABLE]


def test_verifier_error_is_not_refuted():
    broken = Trace.from_text("reachability", "naa>nab Q nab nac R naa\nA nab\n", problem=object())
    verdicts, solved = ReachabilityVerifier().check(broken)
    assert {v.verdict for v in verdicts} == {Verdict.ERROR} and not solved


# -- records and searcher failures -------------------------------------------------------------------

def test_problem_json_round_trip_and_errors(deep):
    obj = ReachabilityTask.problem_to_json(deep)
    assert ReachabilityTask.problem_from_json(json.loads(json.dumps(obj))) == deep
    core = {k: obj[k] for k in ("nodes", "edges", "root", "candidates")}
    assert ReachabilityTask.problem_from_json(core) == deep
    cases = [
        ({**obj, "answer": next(c for c in deep.candidates if c != deep.answer)}, "problem.answer"),
        ({**obj, "path": obj["path"][:-1]}, "problem.path"),
        ({**core, "edges": core["edges"] + [[obj["path"][1], obj["root"]]]}, "problem.edges"),  # a cycle
        ({**core, "candidates": [deep.answer, deep.answer]}, "problem.candidates"),
        ({**core, "candidates": [deep.answer, deep.path[1]]}, "problem.candidates"),  # both reachable
        ({**core, "root": 99}, "problem.root"),
        ({k: v for k, v in core.items() if k != "edges"}, "problem.edges"),
        ({**core, "edges": [[0, 1, 2]]}, "problem.edges[0]"),
        ({**core, "nodes": True}, "problem.nodes"),
    ]
    for bad, field in cases:
        with pytest.raises(InputError) as e:
            ReachabilityTask.problem_from_json(bad)
        assert e.value.field == field, (bad, e.value)


def test_searcher_fails_cleanly_without_exactly_one_reachable(deep):
    broken = ReachProblem(deep.nodes, deep.edges, deep.root, (deep.answer, deep.path[1]), deep.answer,
                          deep.layers, deep.path)
    for fn in SEARCHERS.values():
        with pytest.raises(SearchFailed):
            fn(ReachabilityTask(), broken, SearchOptions(), random.Random(0))


# -- tokenizer ------------------------------------------------------------------------------------------

def test_tokenizer_covers_every_trace_with_one_token_per_node(problems):
    tok = TaskTokenizer.for_task("reachability")
    vocab = set(tok.tokens)
    assert {node_name(i) for i in range(MAX_NODES)} <= vocab
    assert {"Q", "R", "A", "P", "F", "startlatent", "latent", "endlatent", "pause", ">", "|", " ", "\n"} <= vocab
    assert set("0123456789") <= vocab
    hf = tok.hf()
    for i in range(MAX_NODES):
        assert tokens_of(node_name(i)) == [node_name(i)]
        assert len(hf(node_name(i), add_special_tokens=False)["input_ids"]) == 1
    for _, p in problems[:100]:
        for name in SEARCHERS:
            text = _trace(p, name).to_text()
            assert tok.unknown(text) == set()
            ids = hf(text, add_special_tokens=False)["input_ids"]
            assert hf.unk_token_id not in ids and hf.decode(ids) == text
    prompt = ReachabilityTask.prompt(problems[0][1])
    assert tok.count(prompt) == 4 * len(problems[0][1].edges) - 1 + 11  # "s>t" and "|" per edge, " Q a b R r\n"


# -- CLI -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("searcher", sorted(SEARCHERS))
def test_cli_gen_then_verify(cli, tmp_path, searcher):
    out = tmp_path / f"{searcher}.jsonl"
    assert cli("gen", "reachability", "--n", 50, "--searcher", searcher, "--out", out, "--quiet").code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 50 and all(r["task"] == "reachability" for r in records)
    assert cli("verify", out, "--quiet").code == 0
    test = tmp_path / "test.jsonl"
    assert cli("gen", "reachability", "--n", 10, "--searcher", searcher, "--split", "test", "--out", test,
               "--quiet").code == 0
    assert cli("verify", test, "--quiet").code == 0
    # a refuted step makes verify exit 1
    record = records[0]
    lines = record["text"].splitlines()
    other = next(c for c in record["problem"]["candidates"] if c != record["problem"]["answer"])
    record["text"] = "\n".join(lines[:-1] + [f"A {node_name(other)}"]) + "\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(record) + "\n")
    assert cli("verify", bad, "--quiet").code == 1


def test_cli_gen_from_prompt_lines(cli, tmp_path):
    ps = _generate({"nodes": 10, "depth": 3}, 5, seed=9)
    src = tmp_path / "problems.txt"
    src.write_text("# prompts\n" + "".join(ReachabilityTask.prompt(p) for p in ps))
    out = tmp_path / "out.jsonl"
    assert cli("gen", "reachability", "--from", src, "--searcher", "bfs", "--out", out, "--quiet").code == 0
    texts = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    assert texts == [_trace(p, "bfs").to_text() for p in ps]
