"""Continuous-thought training on graph reachability: Coconut's curriculum and three compute-matched controls.

Four methods, one schedule (:mod:`reasonpipe.latent_data` for the sequences): stage 0 trains on the full CoT
(the path after the root) for ``stage0_epochs`` epochs, then stages ``k = 1..max_stage`` for
``epochs_per_stage`` epochs each, the optimizer reset at every stage (Coconut's ProsQA recipe). At stage ``k``
``coconut`` replaces the first ``k`` CoT steps by ``k * per_step`` continuous thoughts and ``pause`` by as many
learned pause embeddings; ``cot`` keeps the whole CoT and ``nocot`` none, trained on the same schedule (same
epochs, same optimizer resets), so every method sees the same number of examples. ``mix``: the probability
that an example of stage ``k`` is drawn at an earlier stage instead, so earlier stages are not forgotten.
``frontier_weight > 0`` adds the superposition paper's supervision of the thoughts: thought ``j``, read out
through the LM head, should put its mass on the nodes reachable within ``j + 1`` edges. ``drill_weight > 0``
adds the lookup drills of the step's graphs (:func:`reasonpipe.latent_data.collate_drills`) to every method's
loss, at the stages up to ``drill_last_stage``: without them a from-scratch model does not form the one-hop edge
lookup at CPU size (benchmarks/README.md, "Where reachability's lookups start to be learned"). ``cot``: the path (a node a step) or the BFS frontiers (a
layer a step) as the chain of thought that coconut and pause replace. ``max_steps`` stops early (a set-up check).

Models: Qwen2 architecture from scratch, ``layers`` (2 in the paper) x ``hidden`` with ``heads`` heads, the
task tokenizer (every node one token). All methods run through :class:`reasonpipe.latent.LatentLM` (with no
latent positions it is a plain forward).

Evaluation: greedy accuracy with the completions' diagnostics (:func:`evaluate`) and the teacher-forced
task-token accuracy (:func:`task_token_accuracy`), as for every model of the pipeline (:mod:`reasonpipe.diagnostics`).

Resumable: each stage's weights go to ``models/<method>/seed-<seed>/stage-<k>/`` (written to a temporary folder,
then renamed, with the settings' hash in its ``stage.json``) and a rerun starts after the last finished stage of
the same settings. Reusing a finished method is the job's: ``reasonpipe.jobs.latent`` runs each method and seed as
the stage ``models/<method>/seed-<seed>/train`` (:class:`reasonpipe.stage.Stage`, config :func:`training_config`).

Example::

    reasonpipe latent --config configs/latent-cpu.yaml
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reasonpipe.config import helptext
from reasonpipe.diagnostics import TokenAccuracy
from reasonpipe.errors import InputError
from reasonpipe.jsonl import drop_rows_after
from reasonpipe.latent_data import COT_KINDS, METHODS, collate, collate_drills, render
from reasonpipe.seeds import stream

TASK = "reachability"
STAGE0 = "stage0"  # the shared first stage's folder name (models/stage0/seed-<seed>)
SHARED_STAGE0 = ("coconut", "pause", "cot")  # methods whose stage 0 is the same training: the full CoT


@dataclass
class LatentConfig:
    """Continuous thought on graph reachability (YAML keys; ``--key value`` overrides)."""

    out: str = field(default="runs/latent-cpu", metadata=helptext(
        "run folder: results.jsonl, probe.jsonl, report.md, accuracy.png, manifest.json"))
    seed: int = field(default=0, metadata=helptext("seed of the problems, the models' initialisation and the data order"))
    seeds: int = field(default=1, metadata=helptext(
        "replications: seeds seed, seed + 1, ..., each with its own training and held-out problems, initialisation "
        "and data order; the headline pools their held-out problems"))
    workers: int = field(default=1, metadata=helptext(
        "trainings and evaluations run side by side in spawned processes (one core each); 1: in this process"))
    task_options: dict[str, Any] = field(default_factory=lambda: {"nodes": 12, "depth": 3}, metadata=helptext(
        "the reachability task's options for the training graphs"))
    eval_sets: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "test": {"split": "test"}, "larger": {"split": "test", "nodes": 18, "depth": 4}}, metadata=helptext(
        "held-out evaluation sets by name: overrides of task_options (split test: graphs never trained on)"))
    train_problems: int = field(default=4000, metadata=helptext("training graphs"))
    eval_problems: int = field(default=300, metadata=helptext("graphs per evaluation set"))
    methods: list[str] = field(default_factory=lambda: list(METHODS), metadata=helptext(
        f"the methods trained and compared: {' | '.join(METHODS)}"))
    layers: int = field(default=2, metadata=helptext("transformer layers"))
    hidden: int = field(default=128, metadata=helptext("hidden width"))
    heads: int = field(default=4, metadata=helptext("attention heads (hidden must be a multiple)"))
    cot: str = field(default="path", metadata=helptext(
        "the chain of thought: path (P root>n1>..., a node a step) | bfs (F lines, a BFS layer a step); coconut and "
        "pause replace its steps"))
    per_step: int = field(default=1, metadata=helptext("thoughts per replaced CoT step (Coconut's c)"))
    max_stage: int = field(default=0, metadata=helptext("CoT steps replaced at the last stage; 0: the training depth"))
    stage0_epochs: int = field(default=3, metadata=helptext("epochs of stage 0 (the full chain of thought)"))
    epochs_per_stage: int = field(default=3, metadata=helptext("epochs of every later curriculum stage"))
    mix: float = field(default=0.1, metadata=helptext(
        "probability that an example of stage k is drawn at an earlier stage instead, in [0, 1)"))
    frontier_weight: float = field(default=0.0, metadata=helptext(
        "weight of the thoughts' supervision by the nodes reachable within j + 1 edges (Reasoning by Superposition); "
        "0: none"))
    drill_weight: float = field(default=0.0, metadata=helptext(
        "weight of the lookup drills (reasonpipe.latent_data.collate_drills: each step's graphs again, every edge's "
        "destination predicted from its source), added to every method's loss at every step; 0: none"))
    drill_last_stage: int = field(default=-1, metadata=helptext(
        "the last curriculum stage with drills: 0 = stage 0 only (where the lookup forms), -1 = every stage"))
    max_steps: int = field(default=0, metadata=helptext(
        "stop training after this many optimizer steps (a set-up check of a large recipe); 0: the whole schedule"))
    batch_size: int = field(default=32, metadata=helptext("examples per step"))
    lr: float = field(default=1e-3, metadata=helptext("learning rate"))
    weight_decay: float = field(default=0.01, metadata=helptext("AdamW weight decay"))
    warmup_steps: int = field(default=0, metadata=helptext(
        "linear learning-rate warm-up after every stage's optimizer reset, in steps; 0: none"))
    lr_schedule: str = field(default="constant", metadata=helptext(
        "after the warm-up, in every stage: constant | cosine (down to 0 at the stage's end)"))
    budgets: list[int] = field(default_factory=list, metadata=helptext(
        "thought counts at evaluation; empty: 0..max_stage*per_step"))
    probe_problems: int = field(default=200, metadata=helptext("graphs of the frontier probe"))
    device: str = field(default="auto", metadata=helptext("auto | cpu | cuda"))
    quiet: bool = field(default=False, metadata=helptext("no progress bars or log lines"))

    def __post_init__(self) -> None:  # the task's options and every evaluation set's, checked at load
        from reasonpipe.tasks import check_options

        check_options("reachability", self.task_options, "task_options")
        for name, options in self.eval_sets.items():
            check_options("reachability", {**self.task_options, **options}, f"eval_sets.{name}")

    def validate(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise InputError(f"unknown or no methods {unknown} (known: {', '.join(METHODS)})", field="methods")
        for name in ("layers", "hidden", "heads", "per_step", "batch_size", "train_problems", "eval_problems", "seeds",
                     "workers"):
            if getattr(self, name) < 1:
                raise InputError(f"must be at least 1, not {getattr(self, name)}", field=name)
        if self.hidden % self.heads:
            raise InputError(f"hidden {self.hidden} is not a multiple of heads {self.heads}", field="heads")
        if self.drill_last_stage < -1:
            raise InputError(f"must be -1 (every stage) or a stage, not {self.drill_last_stage}", field="drill_last_stage")
        if self.drill_weight < 0 or self.max_steps < 0 or self.warmup_steps < 0:
            field_name = next(n for n in ("drill_weight", "max_steps", "warmup_steps") if getattr(self, n) < 0)
            raise InputError(f"must be at least 0, not {getattr(self, field_name)}", field=field_name)
        if not 0 <= self.mix < 1:
            raise InputError(f"must be in [0, 1), not {self.mix}", field="mix")
        if self.lr_schedule not in ("constant", "cosine"):
            raise InputError(f"must be constant or cosine, not {self.lr_schedule!r}", field="lr_schedule")
        if self.cot not in COT_KINDS:
            raise InputError(f"must be one of {', '.join(COT_KINDS)}, not {self.cot!r}", field="cot")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"device must be auto, cpu or cuda, not {self.device!r}", field="device")

    @property
    def stages(self) -> int:
        from reasonpipe.tasks.reachability import ReachabilityConfig

        return self.max_stage or int(self.task_options.get("depth", ReachabilityConfig.depth))

    @property
    def seed_list(self) -> list[int]:
        return [self.seed + k for k in range(self.seeds)]

    @property
    def total_epochs(self) -> int:
        return self.stage0_epochs + self.stages * self.epochs_per_stage


def device_of(cfg: LatentConfig) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device


def tokenizer():
    from reasonpipe.tokenizer import TaskTokenizer

    return TaskTokenizer.for_task(TASK).hf()


def node_token_ids(tok: Any, nodes: int) -> list[int]:
    """Token id of node 0..nodes-1."""
    from reasonpipe.tasks.reachability import node_name

    return [tok.convert_tokens_to_ids(node_name(i)) for i in range(nodes)]


def build_model(cfg: LatentConfig, tok: Any, seed: int):
    """A fresh Qwen2 of ``layers`` x ``hidden`` (MLP 4x) with ``heads`` heads, tied embeddings, weights from ``seed``."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=len(tok), hidden_size=cfg.hidden, intermediate_size=4 * cfg.hidden,
                         num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads,
                         max_position_embeddings=2048, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, use_sliding_window=False)
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(config)


def problems(options: dict[str, Any], n: int, tag: str, seed: int) -> list[Any]:
    """``n`` problems of the reachability task with ``options``, each from its own seeded generator."""
    from reasonpipe.tasks import make_task

    task = make_task(TASK, **options)
    return [task.generate(stream(tag, seed, i)) for i in range(n)]


def stage_batches(n: int, stage: int, cfg: LatentConfig, rng: random.Random) -> list[tuple[int, list[int]]]:
    """One epoch at ``stage``: (stage, example indices) batches; each example is at ``stage``, or with
    probability ``mix`` at an earlier one; a batch holds one stage (one thought count)."""
    assigned: dict[int, list[int]] = {}
    for i in range(n):
        s = rng.randrange(stage) if stage and rng.random() < cfg.mix else stage
        assigned.setdefault(s, []).append(i)
    batches = []
    for s, items in sorted(assigned.items()):
        rng.shuffle(items)
        batches += [(s, items[a:a + cfg.batch_size]) for a in range(0, len(items), cfg.batch_size)]
    rng.shuffle(batches)
    return batches


def frontier_loss(model: Any, thoughts: Any, frontier: list[list[set[int]]], node_ids: list[int]) -> Any:
    """Cross-entropy of each thought, read out by the LM head, against the uniform distribution on its frontier."""
    import torch

    logp = torch.log_softmax(model.lm_head(thoughts).float(), dim=-1)  # [b, m, vocab]
    terms = []
    for row, sets in enumerate(frontier):
        for j, nodes in enumerate(sets):
            if nodes:
                ids = torch.tensor([node_ids[n] for n in sorted(nodes)], device=logp.device)
                terms.append(-logp[row, j, ids].mean())
    return torch.stack(terms).mean() if terms else thoughts.sum() * 0


TRAINING_FIELDS = ("seed", "task_options", "train_problems", "layers", "hidden", "heads", "cot", "per_step", "max_stage",
                   "stage0_epochs", "epochs_per_stage", "mix", "frontier_weight", "drill_weight", "drill_last_stage",
                   "max_steps", "batch_size", "lr", "weight_decay", "warmup_steps",
                   "lr_schedule")


def training_config(cfg: LatentConfig, method: str) -> dict[str, Any]:
    """What decides a method's trained weights (not the evaluation settings): the config of its training stage."""
    return {"method": method, **{k: getattr(cfg, k) for k in TRAINING_FIELDS}}


def settings_hash(cfg: LatentConfig, method: str) -> str:
    """A short hash of :func:`training_config`, kept in each curriculum stage's ``stage.json``."""
    blob = json.dumps(training_config(cfg, method), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_trained(cfg: LatentConfig, method: str) -> Any:
    """The finished model of ``method`` (``models/<method>/final``), in eval mode on the config's device."""
    from transformers import AutoModelForCausalLM

    folder = os.path.join(model_folder(cfg, method), "final")
    return AutoModelForCausalLM.from_pretrained(folder).to(device_of(cfg)).eval()


def model_folder(cfg: LatentConfig, method: str) -> str:
    """Where ``method`` trained with ``cfg.seed`` lives: ``<out>/models/<method>/seed-<seed>`` (``method`` may be
    :data:`STAGE0`, the shared first stage)."""
    return os.path.join(cfg.out, "models", method, f"seed-{cfg.seed}")


def train_stage0(cfg: LatentConfig, train: Sequence[Any],
                 progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Stage 0 once for every method of :data:`SHARED_STAGE0` (``models/stage0/seed-<seed>/stage-0``): the full
    chain of thought with no thought positions, the same batches, drills and initialisation as each of them would
    train; :func:`train_method` then starts those methods from it. The summary of the stage."""
    return train_method(cfg, STAGE0, train, progress)[1]


def train_method(cfg: LatentConfig, method: str, train: Sequence[Any],
                 progress: Callable[[int], None] | None = None) -> tuple[Any, dict[str, Any]]:
    """Train one method, resuming after its last finished curriculum stage of the same settings; the model
    (eval mode) and a summary. The mean loss of every 20 steps goes to ``models/<method>/metrics.jsonl``.
    Whether a finished method is reused is the job's stage (:mod:`reasonpipe.jobs.latent`, :mod:`reasonpipe.stage`)."""
    import torch

    from reasonpipe.latent import LatentLM
    from reasonpipe.tasks import make_task
    from reasonpipe.tasks.reachability import MAX_NODES

    tok = tokenizer()
    device = device_of(cfg)
    folder = model_folder(cfg, method)
    wanted = settings_hash(cfg, method)
    task = make_task(TASK, **cfg.task_options)
    last_stage = 0 if method == STAGE0 else cfg.stages
    data_method = "cot" if method == STAGE0 else method  # stage 0 of coconut and pause is the full CoT
    model = build_model(cfg, tok, cfg.seed)
    first_stage, steps, seconds_before, resumed_from = 0, 0, 0.0, None
    candidates = [(os.path.join(folder, f"stage-{stage}"), stage, wanted) for stage in range(last_stage, -1, -1)]
    if method in SHARED_STAGE0:  # nothing of its own: start after the shared stage 0, when it was trained
        candidates.append((os.path.join(model_folder(cfg, STAGE0), "stage-0"), 0, settings_hash(cfg, STAGE0)))
    for stage_dir, stage, settings in candidates:  # resume after the last finished stage of these settings
        marker = os.path.join(stage_dir, "stage.json")
        if os.path.exists(marker):
            with open(marker, encoding="utf-8") as f:
                saved = json.load(f)
            if saved.get("settings") == settings:
                from transformers import AutoModelForCausalLM

                model = AutoModelForCausalLM.from_pretrained(stage_dir)
                first_stage, steps, seconds_before, resumed_from = stage + 1, saved["steps"], saved["seconds"], stage_dir
                if progress:
                    progress(steps)
                break
    model.to(device).train()
    os.makedirs(folder, exist_ok=True)
    metrics_path = os.path.join(folder, "metrics.jsonl")
    shared = os.path.join(model_folder(cfg, STAGE0), "metrics.jsonl")
    if first_stage == 0 and os.path.exists(metrics_path):
        os.unlink(metrics_path)
    if resumed_from and not resumed_from.startswith(folder + os.sep) and os.path.exists(shared):
        shutil.copyfile(shared, metrics_path)  # the shared stage's loss curve heads this method's
    drop_rows_after(metrics_path, steps)  # rows logged after the stage resumed from
    lm = LatentLM(model, tok.convert_tokens_to_ids("latent"))
    node_ids = node_token_ids(tok, MAX_NODES)
    started = time.time()
    losses: list[float] = []
    for stage in range(first_stage, last_stage + 1):
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        epochs = cfg.stage0_epochs if stage == 0 else cfg.epochs_per_stage
        plan = [stage_batches(len(train), stage, cfg, stream("latent", cfg.seed, stage, e)) for e in range(epochs)]
        length = sum(len(batches) for batches in plan)
        warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: lr_factor(cfg, k, length))
        for epoch, batches in enumerate(plan):
            drill_rng = stream("latent-drill", cfg.seed, stage, epoch)
            for s, items in batches:
                if cfg.max_steps and steps >= cfg.max_steps:
                    break
                graphs = [train[i] for i in items]
                batch = collate(task, graphs, data_method, [s] * len(items), cfg.per_step, tok, cot=cfg.cot)
                out = lm(batch.input_ids.to(device), batch.attention_mask.to(device), batch.labels.to(device))
                loss = out.loss
                if cfg.frontier_weight and method == "coconut" and batch.thoughts:
                    loss = loss + cfg.frontier_weight * frontier_loss(model, out.thoughts, batch.frontier, node_ids)
                if cfg.drill_weight and (cfg.drill_last_stage < 0 or stage <= cfg.drill_last_stage):
                    drills = collate_drills(task, graphs, tok, drill_rng)
                    loss = loss + cfg.drill_weight * model(input_ids=drills.input_ids.to(device),
                                                           attention_mask=drills.attention_mask.to(device),
                                                           labels=drills.labels.to(device)).loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                warmup.step()
                steps += 1
                losses.append(float(out.loss.detach()))
                if steps % 20 == 0:
                    with open(metrics_path, "a", encoding="utf-8") as f:
                        f.write(json.dumps({"method": method, "step": steps, "stage": stage, "epoch": epoch,
                                            "loss": round(sum(losses[-20:]) / len(losses[-20:]), 5)}) + "\n")
                if progress:
                    progress(1)
        _save(model, tok, os.path.join(folder, f"stage-{stage}"),
              {"settings": wanted, "steps": steps, "seconds": seconds_before + time.time() - started})
    if method != STAGE0:
        _save(model, tok, os.path.join(folder, "final"), None)
    summary = {"method": method, "steps": steps, "epochs": cfg.stage0_epochs if method == STAGE0 else cfg.total_epochs,
               "train_seconds": round(seconds_before + time.time() - started, 1),
               "last_loss": round(sum(losses[-20:]) / max(len(losses[-20:]), 1), 4) if losses else None,
               "parameters": sum(p.numel() for p in model.parameters()), "device": device}
    return model.eval(), summary


def lr_factor(cfg: LatentConfig, k: int, length: int) -> float:
    """The learning rate of step ``k`` of a stage of ``length`` steps, as a fraction of ``lr``: a linear warm-up over
    ``warmup_steps``, then 1 (``constant``) or a cosine down to 0 at the stage's end (``cosine``)."""
    if k < cfg.warmup_steps:
        return (k + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return 1.0
    done = (k - cfg.warmup_steps) / max(length - cfg.warmup_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))


def planned_steps(cfg: LatentConfig, n: int, method: str = "") -> int:
    """Optimizer steps of one method (:data:`STAGE0`: of the shared stage 0 alone): the batches
    :func:`stage_batches` makes for every stage and epoch, at most ``max_steps``."""
    total = sum(len(stage_batches(n, stage, cfg, stream("latent", cfg.seed, stage, epoch)))
                for stage in range(1 if method == STAGE0 else cfg.stages + 1)
                for epoch in range(cfg.stage0_epochs if stage == 0 else cfg.epochs_per_stage))
    return min(total, cfg.max_steps) if cfg.max_steps else total


def _save(model: Any, tok: Any, folder: str, marker: dict | None) -> None:
    """Weights (and the tokenizer) into a temporary folder renamed to ``folder``."""
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if marker is not None:
        with open(os.path.join(tmp, "stage.json"), "w", encoding="utf-8") as f:
            json.dump(marker, f)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


@dataclass
class EvalPoint:
    method: str
    eval_set: str
    thoughts: int            # latent / pause positions (0 for cot and nocot)
    accuracy: float
    mean_generated: float    # generated tokens (CoT + answer + <eos>)
    extra_positions: float   # positions between the prompt and the answer line: thought block or CoT tokens
    problems: int
    correct: int = 0         # problems solved (accuracy * problems, kept exact for the intervals)
    seed: int = 0            # the model's seed (cfg.seed of its training)
    well_formed: int = 0     # completions whose every line is in the task's grammar (reasonpipe.diagnostics)
    claimed: int = 0         # completions with an answer line
    claimed_wrong: int = 0   # ... whose answer is the unreachable candidate


def evaluate(cfg: LatentConfig, method: str, model: Any, eval_name: str, options: dict[str, Any],
             probs: Sequence[Any]) -> list[EvalPoint]:
    """Greedy accuracy of one model on ``probs``, at every thought budget (coconut, pause) or once, with the
    completions' well-formed / claimed / claimed-but-wrong counts (:func:`reasonpipe.diagnostics.completion_stats`)."""
    import torch

    from reasonpipe.diagnostics import completion_stats
    from reasonpipe.latent import LatentLM
    from reasonpipe.tasks import make_task

    tok = tokenizer()
    task = make_task(TASK, **options)
    device = next(model.parameters()).device
    lm = LatentLM(model, tok.convert_tokens_to_ids("latent"))
    depth = max(len(p.path) - 1 for p in probs)
    budgets = [0] if method in ("cot", "nocot") else (cfg.budgets or list(range(cfg.stages * cfg.per_step + 1)))
    nodes = max(p.nodes for p in probs)
    if method == "cot":  # the whole CoT and the answer line: a path of depth nodes, or depth F lines
        max_new = (4 * depth if cfg.cot == "path" else depth * (2 * nodes + 2)) + 12
    else:  # every CoT step is dropped (the last stage's layout, at any thought count): the answer line
        max_new = 8
    points = []
    for m in budgets:
        texts, finished, generated, extra = [], [], 0, 0
        for a in range(0, len(probs), cfg.batch_size):
            chunk = probs[a:a + cfg.batch_size]
            batch = collate(task, chunk, method, [cfg.stages] * len(chunk), cfg.per_step, tok, thoughts=m,
                            with_completion=False, cot=cfg.cot)
            with torch.no_grad():
                new = lm.generate(batch.input_ids.to(device), batch.attention_mask.to(device), max_new, tok.eos_token_id)
            for ids in new.tolist():
                finished.append(tok.eos_token_id in ids)
                if finished[-1]:
                    ids = ids[:ids.index(tok.eos_token_id) + 1]
                text = tok.decode([t for t in ids if t != tok.eos_token_id])
                texts.append(text)
                generated += len(ids)
                answer_at = text.rfind("A ")
                cot_tokens = len(tok(text[:max(answer_at, 0)], add_special_tokens=False)["input_ids"])
                extra += (m + 2 if m else 0) + cot_tokens
        stats = completion_stats(task, probs, [task.prompt(p) for p in probs], texts, finished)
        n = len(probs)
        points.append(EvalPoint(method, eval_name, m, stats.solved / n, generated / n, extra / n, n, stats.solved,
                                cfg.seed, stats.well_formed, stats.claimed, stats.claimed_wrong))
    return points


def task_token_accuracy(cfg: LatentConfig, method: str, model: Any, options: dict[str, Any],
                        probs: Sequence[Any]) -> TokenAccuracy:
    """Teacher-forced next-token accuracy on ``probs``' sequences of ``method`` at the last curriculum stage (the
    layout it is evaluated in): on the task's tokens (``grammar.task_spans``: the path nodes and the answer) and on
    every labelled token. The thought block is given, as in training."""
    import torch

    from reasonpipe.latent import LatentLM
    from reasonpipe.tasks import make_task

    tok = tokenizer()
    task = make_task(TASK, **options)
    device = next(model.parameters()).device
    lm = LatentLM(model, tok.convert_tokens_to_ids("latent"))
    out = TokenAccuracy(traces=len(probs))
    for a in range(0, len(probs), cfg.batch_size):
        chunk = probs[a:a + cfg.batch_size]
        batch = collate(task, chunk, method, [cfg.stages] * len(chunk), cfg.per_step, tok, cot=cfg.cot)
        with torch.no_grad():
            logits = lm(batch.input_ids.to(device), batch.attention_mask.to(device)).logits
        hit = (logits[:, :-1].argmax(-1).cpu() == batch.input_ids[:, 1:])
        labelled = batch.labels[:, 1:] != -100
        on_task = torch.zeros_like(labelled)
        for row, problem in enumerate(chunk):
            rest = render(task, problem, method, cfg.stages, cfg.per_step, cot=cfg.cot).rest
            enc = tok(rest, add_special_tokens=False, return_offsets_mapping=True)
            spans = task.grammar.task_spans(rest)
            start = int(labelled[row].nonzero()[0])  # the first labelled column: rest's first token
            for k, (a0, b0) in enumerate(enc["offset_mapping"]):
                on_task[row, start + k] = any(s < b0 and a0 < e for s, e in spans)
        out.correct += int((hit & labelled).sum())
        out.total += int(labelled.sum())
        out.task_correct += int((hit & on_task).sum())
        out.task_total += int(on_task.sum())
    return out
