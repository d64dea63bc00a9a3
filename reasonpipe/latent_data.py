"""Training and evaluation sequences for continuous-thought reachability: one layout for the four methods.

Every sequence is ``<bos> prompt [thought block] [CoT] answer <eos>``, the prompt being the reachability task's
(``naa>nab|... Q nxx nyy R nzz\\n``) and the CoT the path after the root, one node per step
(:func:`reasonpipe.traces.reachability.cot_steps`). With ``m`` thought positions:

- ``coconut``: ``startlatent``, ``m`` x ``latent``, ``endlatent``; at stage ``k`` of the curriculum ``m = k * c``
  and the first ``k`` CoT steps are dropped (Coconut, Hao et al. 2024; a path shorter than ``k`` steps still
  gets ``k * c`` thoughts, Coconut's ``pad_latent_to_max``, so a batch of one stage has one thought count). The
  model feeds its own hidden state at each ``latent`` (:class:`reasonpipe.latent.LatentLM`).
- ``pause``: the same positions with ``pause`` instead of ``latent``: learned embeddings, not hidden states (the
  compute-matched control: the same number of extra positions, the same curriculum).
- ``cot``: the whole CoT in tokens, as the ``path`` searcher writes it (``P root>n1>...>nk\\n``), no thought block.
- ``nocot``: the answer right after the prompt.

Labels: -100 on the prompt and the thought block (``startlatent``/``endlatent`` included: they are given),
so the loss is on the remaining CoT, the answer line and ``<eos>``. A batch is left-padded on the prompt and
right-padded after it, so every row's thought block sits in the same columns (what
:class:`~reasonpipe.latent.LatentLM` needs). ``frontier`` targets (optional supervision of the thoughts, as
in the superposition paper's code): for thought ``j``, the nodes reachable from the root within ``j + 1`` edges.

**Lookup drills** (:func:`collate_drills`, optional auxiliary sequences, the same for every method): the prompt,
then the graph's edges again in a shuffled order, ``src>dst|`` each, the loss on every ``dst`` only (nothing
marks a drill: its first token, a source, is given, so the model is never taught to start one). A
chain of thought holds one or two edge lookups per sequence; a drill holds one per edge, which is what makes a
from-scratch model form the lookup (benchmarks/README.md, "Where reachability's lookups start to be learned").

Example::

    python -c "from reasonpipe.latent_data import render; from reasonpipe.tasks import make_task; import random; t = make_task('reachability', nodes=10, depth=3); print(render(t, t.generate(random.Random(0)), 'coconut', 2, 1))"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.traces.reachability import KINDS as COT_KINDS  # the CoT kinds cot_steps writes

METHODS = ("coconut", "pause", "cot", "nocot")
START, LATENT, END, PAUSE = "startlatent", "latent", "endlatent", "pause"


def reachable_within(problem: Any, steps: int) -> set[int]:
    """Nodes at BFS distance 1..``steps`` from the root (the frontier a thought can hold after ``steps``)."""
    return {n for layer in problem.layers[1:steps + 1] for n in layer}


@dataclass(frozen=True)
class Rendered:
    """One sequence's parts: the task prompt, ``thoughts`` positions of ``token`` between ``startlatent`` and
    ``endlatent`` (none when 0), then ``rest`` (the CoT left, the answer line)."""

    prompt: str
    thoughts: int
    token: str
    rest: str


def render(task: Any, problem: Any, method: str, stage: int, per_step: int, thoughts: int | None = None,
           cot: str = "path") -> Rendered:
    """The sequence of ``method`` at curriculum ``stage`` for ``problem`` (``task``: a ``reachability`` task).

    ``stage`` = CoT steps replaced (coconut/pause) by ``stage * per_step`` thought positions; ``thoughts``
    overrides that count (evaluation at other budgets) while still dropping ``stage`` steps. The thought block
    is kept apart from the text because its words would run together (a run of letters is one token).
    ``cot``: ``path`` (one node a step, ``P root>n1>n2``) or ``bfs`` (one BFS layer a step, ``F`` lines, as the
    ``bfs`` searcher writes them: each step a set of one-hop lookups, no look-ahead).
    """
    from reasonpipe.tasks.reachability import node_name
    from reasonpipe.traces.reachability import cot_steps

    if method not in METHODS:
        raise InputError(f"unknown method {method!r} (known: {', '.join(METHODS)})", field="method")
    if cot not in COT_KINDS:
        raise InputError(f"unknown CoT {cot!r} (known: {', '.join(COT_KINDS)})", field="cot")
    prompt = task.prompt(problem)
    steps = cot_steps(problem, cot)  # path: a node a step; bfs: an F line a step
    answer = f"A {node_name(problem.answer)}\n"

    def text(kept: list[str], first: bool) -> str:
        if not kept:
            return ""
        if cot == "bfs":
            return "\n".join(kept) + "\n"
        return "P " + ">".join(([node_name(problem.root)] if first else []) + kept) + "\n"

    if method == "nocot":
        return Rendered(prompt, 0, "", answer)
    if method == "cot":  # as the path / bfs searcher writes it
        return Rendered(prompt, 0, "", text(steps, True) + answer)
    m = stage * per_step if thoughts is None else thoughts  # also past a short path: one count per stage
    rest = steps[min(stage, len(steps)):]
    return Rendered(prompt, m, LATENT if method == "coconut" else PAUSE, text(rest, False) + answer)


@dataclass
class Batch:
    """Tensors for :class:`~reasonpipe.latent.LatentLM`; ``prompt_width`` = the column where completions start."""

    input_ids: Any
    attention_mask: Any
    labels: Any
    prompt_width: int
    thoughts: int
    frontier: list[list[set[int]]]  # per row, per thought: node ids the thought should hold


def collate(task: Any, problems: Sequence[Any], method: str, stages: Sequence[int], per_step: int, tokenizer: Any,
            thoughts: int | None = None, with_completion: bool = True, cot: str = "path") -> Batch:
    """Encode a batch (one stage per row; rows of one batch must share their thought count). Without the
    completion (evaluation), the input ends after the thought block, where generation starts. ``cot``: as
    :func:`render`."""
    import torch

    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    prompts, completions, counts = [], [], set()
    for problem, stage in zip(problems, stages):
        r = render(task, problem, method, stage, per_step, thoughts, cot)
        block = tokenizer.convert_tokens_to_ids([START] + [r.token] * r.thoughts + [END]) if r.thoughts else []
        rest = tokenizer(r.rest, add_special_tokens=False)["input_ids"] + [eos] if with_completion else []
        prompts.append([bos] + tokenizer(r.prompt, add_special_tokens=False)["input_ids"])
        completions.append(block + rest)
        counts.add(r.thoughts)
    if len(counts) != 1:
        raise InputError(f"one batch needs one thought count, got {sorted(counts)}", field="stages")
    m = counts.pop()
    width = max(len(p) for p in prompts)
    total = width + max(len(c) for c in completions)
    ids = torch.full((len(problems), total), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for row, (p, c) in enumerate(zip(prompts, completions)):
        start = width - len(p)
        ids[row, start:width] = torch.tensor(p)
        mask[row, start:width] = 1
        if c:
            ids[row, width:width + len(c)] = torch.tensor(c)
            mask[row, width:width + len(c)] = 1
            given = m + 2 if m else 0  # startlatent, the thoughts, endlatent
            labels[row, width + given:width + len(c)] = torch.tensor(c[given:])
    frontier = [[reachable_within(p, j + 1) for j in range(m)] for p in problems]
    return Batch(ids, mask, labels, width, m, frontier)


def drill_text(task: Any, problem: Any, order: Sequence[int]) -> tuple[str, list[str]]:
    """A drill's prompt (the task's) and its edges ``src>dst|`` in ``order`` (edge indices)."""
    from reasonpipe.tasks.reachability import node_name

    edges = [problem.edges[i] for i in order]
    return task.prompt(problem), [f"{node_name(s)}>{node_name(d)}|" for s, d in edges]


def collate_drills(task: Any, problems: Sequence[Any], tokenizer: Any, rng: Any) -> Batch:
    """Lookup drills for ``problems`` (edge order shuffled by ``rng``), right-padded; labels on each edge's
    destination token only (``src`` is given: a drill asks "which node does ``src`` point to?")."""
    import torch

    bos, pad = tokenizer.bos_token_id, tokenizer.pad_token_id
    rows = []
    for problem in problems:
        order = list(range(len(problem.edges)))
        rng.shuffle(order)
        head, edges = drill_text(task, problem, order)
        ids = [bos] + tokenizer(head, add_special_tokens=False)["input_ids"]
        labels = [-100] * len(ids)
        for edge in edges:
            src, arrow, dst, bar = tokenizer(edge, add_special_tokens=False)["input_ids"]  # one token each
            ids += [src, arrow, dst, bar]
            labels += [-100, -100, dst, -100]
        rows.append((ids, labels))
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    labels = torch.full_like(input_ids, -100)
    for row, (ids, lab) in enumerate(rows):
        input_ids[row, :len(ids)] = torch.tensor(ids)
        mask[row, :len(ids)] = 1
        labels[row, :len(lab)] = torch.tensor(lab)
    return Batch(input_ids, mask, labels, 0, 0, [[] for _ in problems])
