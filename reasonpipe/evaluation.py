"""Parallel versus sequential at equal compute (To Backtrack or Not): the budget grid on held-out problems.

The backtracking model gets one sample per problem with a length budget L (generated tokens); the direct
model gets n samples, best-of-n judged by the exact checker (also majority vote and pass@n). Every point
carries the mean generated tokens and FLOPs per problem (``reasonpipe.budgets``). The *data bound* is the
symbolic search that wrote the training traces, run on the same problems: solved at L when its trace
(completion part) fits in L tokens. Output in ``out``: ``results.jsonl`` (one row per point),
``report.md`` (a table), ``accuracy_vs_flops.png`` (both curves and the bound), ``manifest.json``.

Problems are drawn with their own seed from the task's held-out split (CountDown: held-out targets).

Example::

    reasonpipe eval --config configs/eval-demo.yaml   # after make demo
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from reasonpipe.config import helptext
from reasonpipe.errors import InputError
from reasonpipe.jsonl import atomic_write
from reasonpipe.report import markdown_table
from reasonpipe.seeds import stream
from reasonpipe.searchers import SearchOptions, get_searcher
from reasonpipe.strategies import Point, parallel_points, sequential_points
from reasonpipe.tasks import check_options, make_task
from reasonpipe.tokenizer import TaskTokenizer


@dataclass
class EvalConfig:
    """The parallel-versus-sequential grid (YAML keys; ``--key value`` overrides)."""

    out: str = field(default="runs/eval", metadata=helptext("run folder: results.jsonl, report.md, accuracy_vs_flops.png, "
                                                      "manifest.json"))
    task: str = field(default="countdown", metadata=helptext("the task"))
    task_options: dict[str, Any] = field(default_factory=lambda: {"split": "test_target"}, metadata=helptext(
        "the task's options for the held-out problems"))
    problems: int = field(default=200, metadata=helptext("held-out problems"))
    problem_seed: int = field(default=1234, metadata=helptext("seed of the problems (their own, apart from the sampling's)"))
    backtrack_model: str = field(default="", metadata=helptext("checkpoint folder of the backtracking model (sequential)"))
    direct_model: str = field(default="", metadata=helptext("checkpoint folder of the direct model (parallel)"))
    lengths: list[int] = field(default_factory=lambda: [256, 512, 1024, 2048, 4096], metadata=helptext(
        "the sequential model's budgets L: generated tokens of its one sample"))
    ns: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64], metadata=helptext(
        "the parallel model's budgets n: samples per problem"))
    direct_max_new_tokens: int = field(default=256, metadata=helptext("the direct model's generated tokens per sample "
                                                                 "(enough for a solution path)"))
    sequential_temperature: float = field(default=0.0, metadata=helptext(
        "sampling temperature of the backtracking model (0: greedy)"))
    parallel_temperature: float = field(default=1.0, metadata=helptext("sampling temperature of the direct model"))
    data_searcher: str = field(default="dfs", metadata=helptext(
        "the searcher that wrote the backtracking model's traces (the data bound)"))
    sampler: str = field(default="hf", metadata=helptext("hf | vllm"))
    batch_size: int = field(default=64, metadata=helptext("hf: prompts per generate call"))
    workers: int = field(default=1, metadata=helptext(
        "> 1: sampling spread over Ray actors (reasonpipe.ray_sampling), the same samples"))
    static_cache: bool = field(default=False, metadata=helptext("hf on CUDA: a static KV cache"))
    device: str = field(default="auto", metadata=helptext("auto | cpu | cuda"))
    seed: int = field(default=0, metadata=helptext("seed of the sampling"))

    def __post_init__(self) -> None:  # the task's options, checked at load
        check_options(self.task, self.task_options, "task_options")


def eval_problems(cfg: EvalConfig) -> list[Any]:
    task = make_task(cfg.task, **cfg.task_options)
    return [task.generate(stream("eval", cfg.problem_seed, i)) for i in range(cfg.problems)]


def data_bound(cfg: EvalConfig, problems: list[Any]) -> list[Point]:
    """The training data's searcher on the eval problems: solved within L completion tokens."""
    task = make_task(cfg.task, **cfg.task_options)
    search = get_searcher(cfg.task, cfg.data_searcher)
    tok = TaskTokenizer.for_task(cfg.task)
    rows = []
    for i, p in enumerate(problems):
        trace = search(task, p, SearchOptions(), stream("eval-search", cfg.problem_seed, i))
        text = trace.to_text()
        prompt = task.prompt(p)
        rows.append((trace.meta.solved, tok.count(text[len(prompt):]) + 1))  # + <eos>
    points = []
    for L in sorted(cfg.lengths):
        solved = [ok and n <= L for ok, n in rows]
        points.append(Point("data bound", L, sum(solved) / len(rows), sum(min(n, L) for _, n in rows) / len(rows),
                            0.0, len(rows)))
    return points


class _Samplers:
    """One sampler per model, in this process or on ``cfg.workers`` Ray actors that stay up from one model to
    the next (a worker's start costs seconds; loading a small model into it, milliseconds)."""

    def __init__(self, cfg: EvalConfig, options: dict[str, Any]) -> None:
        self.cfg, self.options, self.pool = cfg, options, None

    def get(self, path: str) -> Any:
        from reasonpipe.sampling import make_sampler

        if self.cfg.workers == 1:
            return make_sampler(self.cfg.sampler, path, **self.options)
        if self.pool is None:
            from reasonpipe.ray_sampling import RaySampler

            self.pool = RaySampler(self.cfg.sampler, path, self.cfg.workers, **self.options)
        else:
            self.pool.load(path)
        self.pool.ready()  # the timings below are sampling, not starting workers
        return self.pool

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def run_eval(cfg: EvalConfig, log: Any = print) -> list[Point]:
    if cfg.workers < 1:
        raise InputError(f"workers must be at least 1, not {cfg.workers}", field="workers")
    if not cfg.backtrack_model and not cfg.direct_model:
        raise InputError("set backtrack_model and/or direct_model (checkpoint folders)", field="backtrack_model")
    os.makedirs(cfg.out, exist_ok=True)
    task = make_task(cfg.task, **cfg.task_options)
    problems = eval_problems(cfg)
    prompts = [task.prompt(p) for p in problems]
    options = {"device": cfg.device, "batch_size": cfg.batch_size, "static_cache": cfg.static_cache} \
        if cfg.sampler == "hf" else {"max_model_len": max(cfg.lengths + [cfg.direct_max_new_tokens]) + 512}
    points: list[Point] = []
    timings = {}
    samplers = _Samplers(cfg, options)
    try:
        if cfg.backtrack_model:
            sampler = samplers.get(cfg.backtrack_model)
            t0 = time.time()
            samples = [row[0] for row in sampler.sample(prompts, 1, max(cfg.lengths), cfg.sequential_temperature,
                                                        cfg.seed)]
            timings["sequential_seconds"] = round(time.time() - t0, 2)
            points += sequential_points(task, problems, prompts, samples, cfg.lengths, sampler.config,
                                        sampler.tokenizer)
            del sampler  # before the next model is loaded
            log(f"sequential: {timings['sequential_seconds']} s, {sum(s.tokens for s in samples):,} tokens")
        if cfg.direct_model:
            sampler = samplers.get(cfg.direct_model)
            t0 = time.time()
            samples = sampler.sample(prompts, max(cfg.ns), cfg.direct_max_new_tokens, cfg.parallel_temperature,
                                     cfg.seed)
            timings["parallel_seconds"] = round(time.time() - t0, 2)
            points += parallel_points(task, problems, prompts, samples, cfg.ns, sampler.config)
            del sampler
            log(f"parallel: {timings['parallel_seconds']} s, {sum(c.tokens for row in samples for c in row):,} tokens")
    finally:
        samplers.close()
    points += data_bound(cfg, problems)
    write_results(cfg, points, timings)
    return points


HEADERS = ["strategy", "budget", "accuracy", "majority", "pass@n", "mean tokens", "mean FLOPs", "problems"]


def rows_of(points: list[Point]) -> list[list[str]]:
    def f(x: float | None, spec: str) -> str:
        return "-" if x is None else format(x, spec)

    return [[p.strategy, ("L=" if p.strategy != "parallel" else "n=") + str(p.budget), f(p.accuracy, ".1%"),
             f(p.majority, ".1%"), f(p.pass_at_k, ".1%"), f(p.mean_tokens, ".1f"),
             f(p.mean_flops, ".3g") if p.mean_flops else "-", str(p.problems)] for p in points]


def write_results(cfg: EvalConfig, points: list[Point], timings: dict[str, float]) -> None:
    from reasonpipe.manifest import write_manifest

    with atomic_write(os.path.join(cfg.out, "results.jsonl")) as f:
        for p in points:
            f.write(json.dumps(asdict(p)) + "\n")
    with atomic_write(os.path.join(cfg.out, "report.md")) as f:
        f.write(f"# Parallel vs sequential: {cfg.task}, {cfg.problems} held-out problems\n\n")
        f.write(f"Backtracking model: `{cfg.backtrack_model}`; direct model: `{cfg.direct_model}`; sampler {cfg.sampler}; "
                f"timings {json.dumps(timings)}.\n\n")
        f.write(markdown_table(HEADERS, rows_of(points)))
        f.write("\n![accuracy vs FLOPs](accuracy_vs_flops.png)\n")
    plot(points, os.path.join(cfg.out, "accuracy_vs_flops.png"), f"{cfg.task}: {cfg.problems} held-out problems")
    write_manifest(cfg.out, asdict(cfg), cfg.seed, {}, extra={"timings": timings})


def plot(points: list[Point], path: str, title: str) -> None:
    """Accuracy against FLOPs per problem: the sequential and parallel curves (log x), and the data bound."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    seq = [p for p in points if p.strategy == "sequential"]
    par = [p for p in points if p.strategy == "parallel"]
    for series, label, style in ((seq, "backtracking model, 1 sample, budget L", "o-"),
                                 (par, "direct model, best-of-n", "s-")):
        if series:
            ax.plot([p.mean_flops for p in series], [100 * p.accuracy for p in series], style, label=label)
            for p in series:
                ax.annotate(("L=" if p.strategy == "sequential" else "n=") + str(p.budget),
                            (p.mean_flops, 100 * p.accuracy), fontsize=7, xytext=(3, 3), textcoords="offset points")
    bound = [p for p in points if p.strategy == "data bound"]
    if bound and seq:
        flops_at = {p.budget: p.mean_flops for p in seq}
        ax.plot([flops_at[p.budget] for p in bound], [100 * p.accuracy for p in bound], "k--", alpha=0.6,
                label="data bound (the symbolic search at L)")
    ax.set_xscale("log")
    ax.set_xlabel("FLOPs per problem (generation)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
