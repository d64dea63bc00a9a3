"""The superposition probe: does a continuous thought hold the BFS frontier, and where does the next step look?

Reasoning by Superposition (Zhu et al. 2025) argues that continuous thought ``t`` of a 2-layer model holds the
whole BFS frontier in superposition, and that the step computing the next thought attends to the edges leaving
that frontier. A recall number alone means little (a model that ranks nodes at random already gets
``|F| / nodes``), so the probe is run the same way on three models and read against each other:

- ``coconut``: the trained continuous-thought model; thought ``t`` is what :class:`~reasonpipe.latent.LatentLM`
  feeds back at latent position ``t`` (``out.thoughts[:, t]``): the last-layer hidden state of column
  ``prompt_width + t`` (``prompt_width`` holds ``startlatent``; latent ``t`` sits at ``prompt_width + 1 + t``).
- ``pause``: the compute-matched control, the same sequence with ``pause`` tokens in the latent columns, run as
  a plain forward; "thought ``t``" is its last-layer hidden state at the *same* column ``prompt_width + t``
  (``hidden_states[-1]`` in both cases, i.e. after the final norm, the vector the tied LM head reads), and its
  attention is that of the query at the same column as coconut's latent position ``t``
  (:func:`thought_columns` gives both column lists; :func:`read_thoughts` reads them).
- an untrained model (the chance line): a freshly initialised model probed as ``coconut``; the caller builds
  it and passes ``name="untrained"`` so its rows say so.

For every thought ``t`` (``stages * per_step`` thoughts, all CoT steps replaced) on held-out graphs:

- **frontier recall@|F|** (:func:`frontier_recall`): the inner product of thought ``t`` with every node's
  embedding (the tied input/output embedding) ranks the graph's nodes; recall of the top ``|F|`` against ``F`` =
  the nodes reachable within ``t + 1`` edges (``reach``), and against BFS layer ``t + 1`` alone (``layer``;
  problems without that layer are left out). Each is the mean over problems with a 95% interval
  (:func:`mean_interval`: normal approximation, mean +- 1.96 sd / sqrt(n), clipped to [0, 1]). ``chance`` is the
  mean ``|F| / nodes``: exactly what a uniformly random ranking gets in expectation.
- **attention mass on edges**: the attention of the query at latent position ``t`` (the step that computes
  thought ``t + 1`` from thought ``t``), per layer, averaged over heads, summed over each edge's three tokens
  (``s > t``), averaged over the edges of a category and divided by the average over all edges (1.0 = an
  average edge); the mean of that ratio over problems (``nan`` when no problem has an edge of the category).
  Categories: *frontier* (the source is within ``t + 1`` edges, the root included), *path* (an edge of the
  shortest path), *unreachable* (the source is not reachable from the root). The paper's notebook reports
  1.81 / 0.75 / 0.51 / 0.45 for frontier edges at steps 0-3 against 0.07-0.15 for unreachable ones (its
  normalisation differs; compare the ordering, not the numbers).

:func:`probe_table` lays rows of several models out as one table; :func:`frontier_sentence` says in words
whether coconut's thoughts hold the frontier: reach recall above the untrained model's (the 95% intervals do
not overlap) at each thought, and how it compares with the pause model.

Example (an untrained tiny model: its recall is the chance line)::

    python -c "import random; from reasonpipe.latent_train import LatentConfig, build_model, tokenizer; from reasonpipe.tasks import make_task; from reasonpipe.latent_probe import probe, probe_table, frontier_sentence; cfg = LatentConfig(task_options={'nodes': 10, 'depth': 3}, hidden=32, heads=2, layers=1); task = make_task('reachability', nodes=10, depth=3); ps = [task.generate(random.Random(i)) for i in range(40)]; rows = probe(cfg, build_model(cfg, tokenizer(), 0).eval(), task, ps, name='untrained'); print(probe_table(rows)); print(frontier_sentence({'coconut': probe(cfg, build_model(cfg, tokenizer(), 1).eval(), task, ps), 'untrained': rows}))"
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.latent_data import Batch, collate, reachable_within
from reasonpipe.stats import Z95

CATEGORIES = ("frontier", "path", "unreachable")
PROBE_METHODS = ("coconut", "pause")
NAN = float("nan")


@dataclass
class ProbeRow:
    step: int                 # thought t
    reach_recall: float       # recall@|F| against nodes within t + 1 edges (mean over problems)
    layer_recall: float       # recall@|L| against BFS layer t + 1 (mean over problems having that layer)
    chance: float             # mean |F| / nodes: a random ranking's expected reach recall
    attention: dict[str, dict[str, float]]  # layer -> category -> mass ratio (attention of latent position t)
    problems: int
    method: str = "coconut"   # the probed model: coconut | pause | untrained (or any name the caller gave)
    reach_interval: tuple[float, float] = (NAN, NAN)  # 95% interval of reach_recall (nan: rows from before)
    layer_interval: tuple[float, float] = (NAN, NAN)  # 95% interval of layer_recall


@dataclass
class Readout:
    """What :func:`read_thoughts` reads from one batch: thought ``t`` of every row, and the attention of the query
    at latent position ``t`` per layer (heads averaged, keys ``0 .. query_columns[t]``)."""

    thoughts: Any                    # [batch, m, hidden], last-layer hidden state at readout_columns[t]
    attention: list[list[Any]]       # [t][layer] -> [batch, query_columns[t] + 1]
    readout_columns: list[int] = field(default_factory=list)
    query_columns: list[int] = field(default_factory=list)


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` (each in [0, 1], e.g. per-problem recalls) and its 95% normal
    approximation interval, mean +- 1.96 * sd / sqrt(n) (sd: the sample standard deviation), clipped to [0, 1].
    No values: all ``nan``; one value: the whole [0, 1] (no spread to estimate)."""
    n = len(values)
    if n == 0:
        return NAN, NAN, NAN
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0, 1.0
    half = Z95 * statistics.stdev(values) / math.sqrt(n)
    return mean, max(0.0, mean - half), min(1.0, mean + half)


def frontier_recall(thought: Any, table: Any, target: set[int]) -> float:
    """Recall@|target|: rank the rows of ``table`` ([nodes, hidden], row i = node i's embedding) by their inner
    product with ``thought`` ([hidden]) and count how many of the top ``len(target)`` are in ``target``, over
    ``len(target)``. ``nan`` for an empty target."""
    import torch

    if not target:
        return NAN
    scores = table.float() @ thought.float()
    top = set(torch.topk(scores, len(target)).indices.tolist())
    return len(top & set(target)) / len(target)


def thought_columns(prompt_width: int, thoughts: int) -> tuple[list[int], list[int]]:
    """(readout columns, query columns) of a collated batch whose thought block starts at ``prompt_width``
    (the ``startlatent`` column): thought ``t`` is the last hidden state of column ``prompt_width + t`` (what
    :class:`~reasonpipe.latent.LatentLM` feeds in at latent column ``prompt_width + 1 + t``), and the step
    computing thought ``t + 1`` is the query at column ``prompt_width + 1 + t``. The same for coconut and pause."""
    return [prompt_width + t for t in range(thoughts)], [prompt_width + 1 + t for t in range(thoughts)]


def read_thoughts(model: Any, batch: Batch, method: str, tok: Any) -> Readout:
    """Thoughts and attention rows of ``model`` on ``batch`` (collated with ``method``, no completion needed).

    ``coconut``: through :class:`~reasonpipe.latent.LatentLM` (thoughts fed back; ``out.thoughts`` and the
    one-position passes' attentions). ``pause``: one plain forward with eager attention, the last hidden state
    and the attention rows taken at the same columns (:func:`thought_columns`). Raises InputError when the
    batch's thought block is not where :func:`thought_columns` says."""
    import torch

    from reasonpipe.latent import LatentLM, eager_attention, position_ids

    if method not in PROBE_METHODS:
        raise InputError(f"unknown probe method {method!r} (known: {', '.join(PROBE_METHODS)})", field="method")
    m = batch.thoughts
    readout, query = thought_columns(batch.prompt_width, m)
    device = next(model.parameters()).device
    ids, mask = batch.input_ids.to(device), batch.attention_mask.to(device)
    token = tok.convert_tokens_to_ids("latent" if method == "coconut" else "pause")
    start = tok.convert_tokens_to_ids("startlatent")
    if m and not (bool((ids[:, batch.prompt_width] == start).all()) and bool((ids[:, query] == token).all())):
        raise InputError(f"the batch's thought block is not at columns {batch.prompt_width} (startlatent) and "
                         f"{query[0]}..{query[-1]} ({method})", field="batch")
    with torch.no_grad():
        if method == "coconut":
            lm = LatentLM(model, tok.convert_tokens_to_ids("latent"))
            out = lm(ids, mask, output_attentions=True)
            thoughts = out.thoughts
            attention = [[w.float().mean(dim=1)[:, -1] for w in out.attentions[t]] for t in range(m)]
        else:
            with eager_attention(model):
                out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask),
                            output_hidden_states=True, output_attentions=True)
            thoughts = out.hidden_states[-1][:, readout]
            attention = [[w[:, :, q, :q + 1].float().mean(dim=1) for w in out.attentions] for q in query]
    return Readout(thoughts, attention, readout, query)


def _edge_columns(ids: list[int], arrow_id: int, offset: int) -> list[tuple[int, int, int]]:
    """Columns (s, >, t) of each edge of a prompt, in prompt order (the e-th ``>`` is edge e)."""
    return [(offset + i - 1, offset + i, offset + i + 1) for i, t in enumerate(ids) if t == arrow_id]


def _edge_ratios(problem: Any, weights: Any, edges: list[tuple[int, int, int]], frontier: set[int]) -> dict[str, float]:
    """Per category: mean attention mass of its edges over the mean over all edges (absent: no such edge)."""
    mass = [float(weights[list(cols)].sum()) for cols in edges]
    mean_all = sum(mass) / max(len(mass), 1)
    if mean_all <= 0:
        return {}
    reachable = reachable_within(problem, len(problem.layers))
    path_edges = set(zip(problem.path, problem.path[1:]))
    cats: dict[str, list[float]] = {c: [] for c in CATEGORIES}
    for (s, d), value in zip(problem.edges, mass):
        if s in frontier:
            cats["frontier"].append(value)
        if (s, d) in path_edges:
            cats["path"].append(value)
        if s not in reachable and s != problem.root:
            cats["unreachable"].append(value)
    return {c: sum(v) / len(v) / mean_all for c, v in cats.items() if v}


def probe(cfg: Any, model: Any, task: Any, problems: Sequence[Any], method: str = "coconut",
          name: str | None = None,
          thoughts_fn: Callable[[Batch, Sequence[Any]], Any] | None = None) -> list[ProbeRow]:
    """Probe every thought of ``model`` on ``problems`` (``cfg``: ``stages``, ``per_step``, ``batch_size``);
    one row per thought. ``method``: ``coconut`` (thoughts fed back) or ``pause`` (a plain forward over the
    pause sequence, read at the same columns). ``name``: the rows' ``method`` label (default ``method``; e.g.
    ``"untrained"`` for a fresh model probed as coconut). ``thoughts_fn(batch, chunk)``, when given, replaces
    the thoughts read from the model by its ``[len(chunk), m, hidden]`` tensor (a seam for tests: hand-made
    thoughts); the attention is still the model's."""
    from reasonpipe.latent_train import node_token_ids, tokenizer
    from reasonpipe.tasks.reachability import MAX_NODES

    if method not in PROBE_METHODS:
        raise InputError(f"unknown probe method {method!r} (known: {', '.join(PROBE_METHODS)})", field="method")
    tok = tokenizer()
    arrow = tok.convert_tokens_to_ids(">")
    m = cfg.stages * cfg.per_step
    embed = model.get_input_embeddings().weight.detach()
    node_ids = node_token_ids(tok, MAX_NODES)
    reach: list[list[float]] = [[] for _ in range(m)]
    layer: list[list[float]] = [[] for _ in range(m)]
    chance: list[list[float]] = [[] for _ in range(m)]
    attention: list[dict[str, dict[str, list[float]]]] = [{} for _ in range(m)]
    for a in range(0, len(problems), cfg.batch_size):
        chunk = problems[a:a + cfg.batch_size]
        batch = collate(task, chunk, method, [cfg.stages] * len(chunk), cfg.per_step, tok, thoughts=m,
                        with_completion=False, cot=getattr(cfg, "cot", "path"))
        read = read_thoughts(model, batch, method, tok)
        thoughts = read.thoughts if thoughts_fn is None else thoughts_fn(batch, chunk)
        for row, problem in enumerate(chunk):
            table = embed[node_ids[:problem.nodes]]  # [nodes, hidden]
            ids = batch.input_ids[row].tolist()
            offset = ids.index(tok.bos_token_id)
            edges = _edge_columns(ids[offset:batch.prompt_width], arrow, offset)
            for t in range(m):
                target = reachable_within(problem, t + 1)
                thought = thoughts[row, t].to(table.device)
                reach[t].append(frontier_recall(thought, table, target))
                if t + 1 < len(problem.layers):
                    layer[t].append(frontier_recall(thought, table, set(problem.layers[t + 1])))
                chance[t].append(len(target) / problem.nodes)
                frontier = target | {problem.root}
                for k, weights in enumerate(read.attention[t]):
                    slot = attention[t].setdefault(f"layer{k}", {c: [] for c in CATEGORIES})
                    for c, ratio in _edge_ratios(problem, weights[row], edges, frontier).items():
                        slot[c].append(ratio)
    rows = []
    for t in range(m):
        r_mean, r_low, r_high = mean_interval([v for v in reach[t] if not math.isnan(v)])
        l_mean, l_low, l_high = mean_interval(layer[t])
        att = {k: {c: (sum(v) / len(v) if v else NAN) for c, v in cats.items()} for k, cats in attention[t].items()}
        rows.append(ProbeRow(t, r_mean, l_mean, sum(chance[t]) / max(len(chance[t]), 1), att, len(reach[t]),
                             name or method, (r_low, r_high), (l_low, l_high)))
    return rows


def _interval_text(value: float, interval: Sequence[float]) -> str:
    """``"0.83 [0.79, 0.87]"``; just the value when the interval is unknown (rows written before intervals)."""
    lo, hi = (float(x) for x in interval)
    if math.isnan(lo) or math.isnan(hi):
        return f"{value:.2f}"
    return f"{value:.2f} [{lo:.2f}, {hi:.2f}]"


def probe_table(rows: Sequence[ProbeRow]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows for a markdown table: one row per method and thought, recalls with their 95% intervals."""
    layers = sorted({layer for r in rows for layer in r.attention})
    headers = ["method", "thought", "reach recall@|F| [95%]", "layer recall@|L| [95%]", "chance |F|/nodes"] + \
        [f"{layer} {c}" for layer in layers for c in CATEGORIES]
    out = []
    for r in rows:
        cells = [r.method, str(r.step), _interval_text(r.reach_recall, r.reach_interval),
                 _interval_text(r.layer_recall, r.layer_interval), f"{r.chance:.2f}"]
        cells += [f"{r.attention.get(layer, {}).get(c, NAN):.2f}" for layer in layers for c in CATEGORIES]
        out.append(cells)
    return headers, out


def _compare(row: ProbeRow, other: ProbeRow | None) -> int:
    """+1 when ``row``'s 95% reach interval lies wholly above ``other``'s (``other`` None: above the chance line
    ``row.chance``), -1 wholly below, 0 when they overlap or an interval is unknown (nan)."""
    lo, hi = (float(x) for x in row.reach_interval)
    o_lo, o_hi = (row.chance, row.chance) if other is None else (float(x) for x in other.reach_interval)
    if lo > o_hi:
        return 1
    if hi < o_lo:
        return -1
    return 0


def _thoughts_text(steps: list[int]) -> str:
    return ("thought " if len(steps) == 1 else "thoughts ") + ", ".join(str(s) for s in steps)


def frontier_sentence(rows_by_method: dict[str, list[ProbeRow]]) -> str:
    """One or two sentences saying whether the continuous thoughts hold the frontier: coconut's reach recall
    against the ``untrained`` rows (the chance line; without them, against each row's ``chance``) at every
    thought, 'above' meaning the 95% intervals do not overlap, then against the ``pause`` rows when present."""
    coconut = sorted(rows_by_method.get("coconut") or [], key=lambda r: r.step)
    if not coconut:
        return "No coconut probe rows: nothing to say about the continuous thoughts."
    untrained = {r.step: r for r in rows_by_method.get("untrained") or []}
    pause = {r.step: r for r in rows_by_method.get("pause") or []}
    base, not_above = (("an untrained model", "within an untrained model's interval or below it") if untrained
                       else ("chance (|F|/nodes)", "not above the chance line"))
    verdicts = [_compare(r, untrained.get(r.step) if untrained else None) for r in coconut]
    ours = ", ".join(f"{_interval_text(r.reach_recall, r.reach_interval)} at thought {r.step}" for r in coconut)
    if untrained:
        theirs = ", ".join(_interval_text(untrained[r.step].reach_recall, untrained[r.step].reach_interval)
                           if r.step in untrained else f"{r.chance:.2f} (chance)" for r in coconut)
    else:
        theirs = ", ".join(f"{r.chance:.2f}" for r in coconut)
    above = [r.step for r, v in zip(coconut, verdicts) if v > 0]
    if any(math.isnan(float(x)) for r in coconut for x in r.reach_interval):
        first = (f"These rows have no intervals (written before the probe kept them): reach recall {ours} against "
                 f"{theirs} for {base}; rerun the probe to tell whether the thoughts hold the frontier.")
    elif len(above) == len(coconut):
        first = (f"The continuous thoughts hold the frontier: reach recall {ours}, above {base} "
                 f"({theirs}) at every thought (95% intervals apart).")
    elif above:
        rest = [r.step for r in coconut if r.step not in above]
        first = (f"The continuous thoughts hold the frontier only at {_thoughts_text(above)}: reach recall {ours} "
                 f"against {theirs} for {base}; at {_thoughts_text(rest)} it is {not_above}.")
    else:
        first = (f"The continuous thoughts do not hold the frontier here: reach recall {ours} is {not_above} "
                 f"({theirs}).")
    if not pause:
        return first
    groups: dict[int, list[str]] = {1: [], 0: [], -1: []}
    for r in coconut:
        p = pause.get(r.step)
        if p is not None:
            groups[_compare(r, p)].append(f"thought {r.step} ({r.reach_recall:.2f} vs "
                                          f"{_interval_text(p.reach_recall, p.reach_interval)})")
    parts = [f"{label} at {', '.join(groups[k])}" for k, label in
             ((1, "higher"), (0, "not distinguishable"), (-1, "lower")) if groups[k]]
    if not parts:
        return first
    return first + (" Against the pause model (the same positions, no state fed back) coconut's reach recall is "
                    + "; ".join(parts) + ".")
