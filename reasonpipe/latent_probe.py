"""The superposition probe: what a trained continuous-thought model holds in each thought, and where it looks.

Reasoning by Superposition (Zhu et al. 2025) argues that continuous thought ``t`` of a 2-layer model holds the
whole BFS frontier in superposition, and that the step computing it attends to the edges leaving that frontier.
For every thought of a ``coconut`` model on held-out graphs (all CoT steps replaced, ``max_stage * per_step``
thoughts) this measures:

- **frontier recall@|F|**: the inner product of thought ``t`` with every node's embedding (the tied
  input/output embedding) ranks the graph's nodes; recall of the top ``|F|`` against ``F`` = the nodes reachable
  within ``t + 1`` edges (``reach``), and against BFS layer ``t + 1`` alone (``layer``). Chance is about
  ``|F| / nodes``, reported beside it.
- **attention mass on edges**: the attention of latent position ``t`` (the step that computes thought ``t + 1``
  from thought ``t``), per layer, averaged over heads, summed over each edge's three tokens (``s > t``), and
  averaged over the edges of a category, divided by the average over all edges (1.0 = an average edge).
  Categories: *frontier* (the source is in ``F_t``, the root included), *path* (an edge of the shortest path),
  *unreachable* (the source is not reachable from the root), the others being neither. The paper's notebook
  reports 1.81 / 0.75 / 0.51 / 0.45 for frontier edges at steps 0-3 against 0.07-0.15 for unreachable ones
  (its normalisation differs; compare the ordering, not the numbers).

Example::

    python -c "from reasonpipe.latent_probe import probe_table; help(probe_table)"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reasonpipe.latent_data import collate, reachable_within

CATEGORIES = ("frontier", "path", "unreachable")


@dataclass
class ProbeRow:
    step: int                 # thought t
    reach_recall: float       # recall@|F| against nodes within t + 1 edges
    layer_recall: float       # recall@|L| against BFS layer t + 1
    chance: float             # mean |F| / nodes
    attention: dict[str, dict[str, float]]  # layer -> category -> mass ratio (attention of latent position t)
    problems: int


def _edge_columns(ids: list[int], arrow_id: int, offset: int) -> list[tuple[int, int, int]]:
    """Columns (s, >, t) of each edge of a prompt, in prompt order (the e-th ``>`` is edge e)."""
    return [(offset + i - 1, offset + i, offset + i + 1) for i, t in enumerate(ids) if t == arrow_id]


def probe(cfg: Any, model: Any, task: Any, problems: Sequence[Any]) -> list[ProbeRow]:
    """Probe every thought of ``model`` (a coconut model) on ``problems``; one row per thought."""
    import torch

    from reasonpipe.latent import LatentLM
    from reasonpipe.latent_train import node_token_ids, tokenizer
    from reasonpipe.tasks.reachability import MAX_NODES

    tok = tokenizer()
    arrow = tok.convert_tokens_to_ids(">")
    m = cfg.stages * cfg.per_step
    device = next(model.parameters()).device
    lm = LatentLM(model, tok.convert_tokens_to_ids("latent"))
    embed = model.get_input_embeddings().weight.detach()
    node_ids = node_token_ids(tok, MAX_NODES)
    sums = {"reach": [0.0] * m, "layer": [0.0] * m, "chance": [0.0] * m, "count": [0] * m}
    attention: list[dict[str, dict[str, list[float]]]] = [{} for _ in range(m)]
    for a in range(0, len(problems), cfg.batch_size):
        chunk = problems[a:a + cfg.batch_size]
        batch = collate(task, chunk, "coconut", [cfg.stages] * len(chunk), cfg.per_step, tok, thoughts=m,
                        with_completion=False)
        with torch.no_grad():
            out = lm(batch.input_ids.to(device), batch.attention_mask.to(device), output_attentions=True)
        for row, problem in enumerate(chunk):
            nodes = problem.nodes
            table = embed[node_ids[:nodes]]  # [nodes, hidden]
            ids = batch.input_ids[row].tolist()
            offset = ids.index(tok.bos_token_id)
            edges = _edge_columns(ids[offset:batch.prompt_width], arrow, offset)
            reachable = reachable_within(problem, len(problem.layers))
            path_edges = set(zip(problem.path, problem.path[1:]))
            for t in range(m):
                scores = out.thoughts[row, t].float() @ table.float().T
                for key, target in (("reach", reachable_within(problem, t + 1)),
                                    ("layer", set(problem.layers[t + 1]) if t + 1 < len(problem.layers) else set())):
                    if target:
                        top = set(torch.topk(scores, len(target)).indices.tolist())
                        sums[key][t] += len(top & target) / len(target)
                sums["chance"][t] += len(reachable_within(problem, t + 1)) / nodes
                sums["count"][t] += 1
                if out.attentions is None or t >= len(out.attentions):
                    continue
                frontier = reachable_within(problem, t + 1) | {problem.root}
                for layer, weights in enumerate(out.attentions[t]):
                    w = weights[row].float().mean(dim=0)[-1]  # heads averaged; the query is latent position t
                    mass = [float(w[list(cols)].sum()) for cols in edges]
                    mean_all = sum(mass) / max(len(mass), 1)
                    cats = {"frontier": [], "path": [], "unreachable": []}
                    for (s, d), value in zip(problem.edges, mass):
                        if s in frontier:
                            cats["frontier"].append(value)
                        if (s, d) in path_edges:
                            cats["path"].append(value)
                        if s not in reachable and s != problem.root:
                            cats["unreachable"].append(value)
                    slot = attention[t].setdefault(f"layer{layer}", {c: [] for c in CATEGORIES})
                    for c, values in cats.items():
                        if values and mean_all > 0:
                            slot[c].append(sum(values) / len(values) / mean_all)
    rows = []
    for t in range(m):
        n = max(sums["count"][t], 1)
        att = {layer: {c: (sum(v) / len(v) if v else float("nan")) for c, v in cats.items()}
               for layer, cats in attention[t].items()}
        rows.append(ProbeRow(t, sums["reach"][t] / n, sums["layer"][t] / n, sums["chance"][t] / n, att, n))
    return rows


def probe_table(rows: Sequence[ProbeRow]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows for a markdown table (one row per thought)."""
    layers = sorted({layer for r in rows for layer in r.attention})
    headers = ["thought", "reach recall@|F|", "layer recall@|L|", "chance |F|/nodes"] + \
        [f"{layer} {c}" for layer in layers for c in CATEGORIES]
    out = []
    for r in rows:
        cells = [str(r.step), f"{r.reach_recall:.2f}", f"{r.layer_recall:.2f}", f"{r.chance:.2f}"]
        cells += [f"{r.attention.get(layer, {}).get(c, float('nan')):.2f}" for layer in layers for c in CATEGORIES]
        out.append(cells)
    return headers, out
