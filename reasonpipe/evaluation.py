"""Parallel versus sequential at equal compute (To Backtrack or Not): the budget grid on held-out problems.

The backtracking model gets one sample per problem with a length budget L (generated tokens); the direct
model gets n samples, best-of-n judged by the exact checker (also majority vote and pass@n). Every point
carries the mean generated tokens and FLOPs per problem (``reasonpipe.budgets``). The *data bound* is the
symbolic search that wrote the training traces, run on the same problems: solved at L when its trace
(completion part) fits in L tokens. Output in ``out``: ``results.jsonl`` (one row per point),
``report.md`` (a table), ``accuracy_vs_flops.png`` (both curves and the bound), ``manifest.json``.

Problems are drawn with their own seed from the task's held-out split (``task_options.split``; CountDown:
``test_target``, targets never seen in training, or ``test_solution``, training targets but problems whose
canonical solution is in the held-out tenth). The report says whether each model has learned its task
(:mod:`reasonpipe.diagnostics`) and, when both have, which strategy is ahead at equal compute and whether that
is the paper's direction (``paper_direction``).

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


DIRECTIONS = ("", "backtrack", "direct")


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
    direct_searcher: str = field(default="direct", metadata=helptext(
        "the searcher that wrote the direct model's traces (its held-out traces for the learning diagnostics)"))
    direct_max_new_tokens: int = field(default=256, metadata=helptext("the direct model's generated tokens per sample "
                                                                 "(enough for a solution path)"))
    sequential_temperature: float = field(default=0.0, metadata=helptext(
        "sampling temperature of the backtracking model (0: greedy)"))
    parallel_temperature: float = field(default=1.0, metadata=helptext("sampling temperature of the direct model"))
    data_searcher: str = field(default="dfs", metadata=helptext(
        "the searcher that wrote the backtracking model's traces (the data bound)"))
    paper_direction: str = field(default="", metadata=helptext(
        "what To Backtrack or Not found on this task at equal compute: backtrack (Sudoku) | direct (CountDown) | "
        "empty (no claim); the report says whether this grid agrees"))
    sampler: str = field(default="hf", metadata=helptext("hf | vllm"))
    batch_size: int = field(default=64, metadata=helptext("hf: prompts per generate call"))
    workers: int = field(default=1, metadata=helptext(
        "> 1: sampling spread over Ray actors (reasonpipe.ray_sampling), the same samples"))
    static_cache: bool = field(default=False, metadata=helptext("hf on CUDA: a static KV cache"))
    device: str = field(default="auto", metadata=helptext("auto | cpu | cuda"))
    seed: int = field(default=0, metadata=helptext("seed of the sampling"))

    def __post_init__(self) -> None:  # the task's options and the paper's direction, checked at load
        check_options(self.task, self.task_options, "task_options")
        if self.paper_direction not in DIRECTIONS:
            raise InputError(f"unknown direction {self.paper_direction!r} (backtrack | direct | empty)",
                             field="paper_direction")


def eval_problems(cfg: EvalConfig) -> list[Any]:
    task = make_task(cfg.task, **cfg.task_options)
    return [task.generate(stream("eval", cfg.problem_seed, i)) for i in range(cfg.problems)]


def searcher_traces(cfg: EvalConfig, problems: list[Any], searcher: str,
                    options: SearchOptions | None = None) -> list[Any]:
    """The traces ``searcher`` writes for the eval problems (the data bound's, and the held-out traces the
    learning diagnostics read), with ``options`` (e.g. ``k`` of ``kbacktrack``); a problem it cannot write a trace
    for gets None."""
    from reasonpipe.searchers.base import SearchFailed

    task = make_task(cfg.task, **cfg.task_options)
    search = get_searcher(cfg.task, searcher)
    out = []
    for i, p in enumerate(problems):
        try:
            out.append(search(task, p, options or SearchOptions(), stream("eval-search", cfg.problem_seed, i)))
        except SearchFailed:
            out.append(None)
    return out


def data_bound(cfg: EvalConfig, problems: list[Any], traces: list[Any] | None = None) -> list[Point]:
    """The training data's searcher on the eval problems: solved within L completion tokens (of the backtracking
    model's tokenizer: the task's, or a pretrained model's in its text format)."""
    task = make_task(cfg.task, **cfg.task_options)
    count = _completion_counter(cfg.backtrack_model, task) if cfg.backtrack_model else None
    tok = TaskTokenizer.for_task(cfg.task)
    rows = []
    for p, trace in zip(problems, traces if traces is not None else searcher_traces(cfg, problems, cfg.data_searcher)):
        if trace is None:
            rows.append((False, 0))
            continue
        text = trace.to_text()
        prompt = task.prompt(p)
        n = count(prompt, text) if count else tok.count(text[len(prompt):]) + 1  # + <eos>
        rows.append((trace.meta.solved, n))
    points = []
    for L in sorted(cfg.lengths):
        solved = [ok and n <= L for ok, n in rows]
        points.append(Point("data bound", L, sum(solved) / len(rows), sum(min(n, L) for _, n in rows) / len(rows),
                            0.0, len(rows)))
    return points


def _completion_counter(path: str, task: Any) -> Any:
    """For a pretrained model's checkpoint: ``(prompt, trace text) -> completion tokens`` (EOS included) in its text
    format; None for a task-tokenizer checkpoint (counted by the task tokenizer)."""
    from reasonpipe.models import load_tokenizer
    from reasonpipe.textformat import TextFormat

    fmt = TextFormat.load(path)
    if not fmt.pretrained:
        return None
    hf = load_tokenizer(path)
    return lambda prompt, text: len(fmt.completion_ids(hf, fmt.completion_of(task, prompt, text) or ""))


def check_models(cfg: EvalConfig) -> None:
    """The grid scores traces: a checkpoint written in the answer layout is refused (score it with GRPO's probe or
    ``reasonpipe.rewards.compute_score``)."""
    from reasonpipe.textformat import TextFormat

    for name in ("backtrack_model", "direct_model"):
        path = getattr(cfg, name)
        if path and os.path.isdir(path) and TextFormat.load(path).layout != "trace":
            raise InputError("a checkpoint in the answer layout: the grid reads traces (layout trace)", path=path,
                             field=name)


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


@dataclass
class ModelDiagnostics:
    """Has one evaluated model learned its task (:mod:`reasonpipe.diagnostics`)? Its figures and the verdict."""

    role: str                       # backtrack | direct
    model: str
    tokens: dict[str, Any]          # TokenAccuracy.as_dict() on the held-out traces of its searcher
    samples: dict[str, int]         # CompletionStats over its samples (sequential: one per problem at the largest L)
    solved: int                     # problems solved at the largest budget
    problems: int
    budget: str                     # the largest budget, e.g. L=1024 or n=16
    bound: float | None             # the data bound's solved fraction at that budget (None: no bound)
    learned: bool = False
    reason: str = ""


def model_diagnostics(cfg: EvalConfig, role: str, path: str, task: Any, problems: list[Any], prompts: list[str],
                      traces: list[Any], samples: list[list[Any]], largest: Point,
                      bound: float | None) -> ModelDiagnostics:
    """Task-token accuracy of the model at ``path`` on ``traces`` (the held-out traces of the searcher that wrote its
    training data), completion statistics over ``samples`` (per problem, its samples); solved is the grid's point at
    the largest budget (``largest``: sequential at the largest L, best-of-n at the largest n), judged once there."""
    from reasonpipe.diagnostics import completion_stats, learned_verdict, token_accuracy
    from reasonpipe.models import load_causal_lm, load_tokenizer
    from reasonpipe.stats import Rate
    from reasonpipe.textformat import TextFormat

    model = load_causal_lm(path)
    held = [(t.to_text(), pr) for t, pr in zip(traces, prompts) if t is not None]
    acc = token_accuracy(model, load_tokenizer(path), task, [t for t, _ in held], [p for _, p in held],
                         max_len=max(cfg.lengths) + 256, text_format=TextFormat.load(path))
    del model
    flat = [(p, pr, c) for p, pr, row in zip(problems, prompts, samples) for c in row]
    stats = completion_stats(task, [f[0] for f in flat], [f[1] for f in flat], [f[2].text for f in flat],
                             [f[2].finished for f in flat])
    solved = round(largest.accuracy * largest.problems)
    budget = ("L=" if largest.strategy == "sequential" else "n=") + str(largest.budget)
    verdict = learned_verdict(acc.task, Rate(solved, largest.problems), bound)
    return ModelDiagnostics(role, path, acc.as_dict(), asdict(stats), solved, largest.problems, budget, bound,
                            verdict.learned, verdict.reason)


def run_eval(cfg: EvalConfig, log: Any = print) -> list[Point]:
    if cfg.workers < 1:
        raise InputError(f"workers must be at least 1, not {cfg.workers}", field="workers")
    if not cfg.backtrack_model and not cfg.direct_model:
        raise InputError("set backtrack_model and/or direct_model (checkpoint folders)", field="backtrack_model")
    check_models(cfg)
    os.makedirs(cfg.out, exist_ok=True)
    task = make_task(cfg.task, **cfg.task_options)
    problems = eval_problems(cfg)
    prompts = [task.prompt(p) for p in problems]
    options = {"device": cfg.device, "batch_size": cfg.batch_size, "static_cache": cfg.static_cache} \
        if cfg.sampler == "hf" else {"max_model_len": max(cfg.lengths + [cfg.direct_max_new_tokens]) + 512}
    points: list[Point] = []
    timings = {}
    bound_traces = searcher_traces(cfg, problems, cfg.data_searcher)
    bound = data_bound(cfg, problems, bound_traces)
    diagnostics: list[ModelDiagnostics] = []
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
            diagnostics.append(model_diagnostics(cfg, "backtrack", cfg.backtrack_model, task, problems, prompts,
                                                 bound_traces, [[s] for s in samples], points[-1], bound[-1].accuracy))
        if cfg.direct_model:
            sampler = samplers.get(cfg.direct_model)
            t0 = time.time()
            samples = sampler.sample(prompts, max(cfg.ns), cfg.direct_max_new_tokens, cfg.parallel_temperature,
                                     cfg.seed)
            timings["parallel_seconds"] = round(time.time() - t0, 2)
            points += parallel_points(task, problems, prompts, samples, cfg.ns, sampler.config)
            del sampler
            log(f"parallel: {timings['parallel_seconds']} s, {sum(c.tokens for row in samples for c in row):,} tokens")
            diagnostics.append(model_diagnostics(cfg, "direct", cfg.direct_model, task, problems, prompts,
                                                 searcher_traces(cfg, problems, cfg.direct_searcher),
                                                 samples, points[-1], None))
    finally:
        samplers.close()
    points += bound
    write_results(cfg, points, timings, diagnostics)
    return points


HEADERS = ["strategy", "budget", "accuracy [95% CI]", "majority", "pass@n", "mean tokens", "mean FLOPs", "problems"]


def rows_of(points: list[Point]) -> list[list[str]]:
    from reasonpipe.stats import rate_text

    def f(x: float | None, spec: str) -> str:
        return "-" if x is None else format(x, spec)

    return [[p.strategy, ("L=" if p.strategy != "parallel" else "n=") + str(p.budget),
             rate_text(round(p.accuracy * p.problems), p.problems),
             f(p.majority, ".1%"), f(p.pass_at_k, ".1%"), f(p.mean_tokens, ".1f"),
             f(p.mean_flops, ".3g") if p.mean_flops else "-", str(p.problems)] for p in points]


DIAGNOSTIC_HEADERS = ["model", "task-token acc.", "token acc.", "well-formed", "claimed but wrong", "solved",
                      "data bound", "verdict"]


def diagnostic_rows(diagnostics: list[ModelDiagnostics]) -> list[list[str]]:
    from reasonpipe.stats import rate_text

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    return [[f"{d.role} ({d.budget})", pct(d.tokens["task_token_accuracy"]), pct(d.tokens["token_accuracy"]),
             rate_text(d.samples["well_formed"], d.samples["n"]), rate_text(d.samples["claimed_wrong"], d.samples["n"]),
             rate_text(d.solved, d.problems), pct(d.bound), "learned" if d.learned else "NOT LEARNED"]
            for d in diagnostics]


def diagnostics_section(diagnostics: list[ModelDiagnostics]) -> str:
    """The report's learning section: the table, each verdict in words, and whether the comparison means anything."""
    from reasonpipe.diagnostics import SOLVED_MIN_OF_BOUND, TASK_TOKEN_MIN, Verdict, comparison_sentence

    if not diagnostics:
        return ""
    sentence = comparison_sentence({d.role: Verdict(d.learned, d.reason) for d in diagnostics})
    lines = ["## Has each model learned its task?", "",
             f"Task-token accuracy: teacher-forced next-token accuracy on the tokens that carry the task, on the "
             f"held-out problems' traces of the searcher that wrote the model's data; the other rates are over its "
             f"samples (95% Wilson intervals). Learned means task-token accuracy >= {TASK_TOKEN_MIN:.0%} and solving "
             f"at least {SOLVED_MIN_OF_BOUND:.0%} of what the data bound solves at the largest budget (the direct "
             f"model: of all problems).", "", markdown_table(DIAGNOSTIC_HEADERS, diagnostic_rows(diagnostics)), ""]
    lines += [f"- {d.role}: {d.reason}" for d in diagnostics]
    lines += ["", f"**{sentence}**", ""]
    return "\n".join(lines)


def direction_sentence(cfg: EvalConfig, points: list[Point], diagnostics: list[ModelDiagnostics]) -> str:
    """Which strategy is ahead at equal compute, in one sentence, and whether that is the paper's direction.

    Equal compute: both strategies' points up to the smaller of their largest FLOPs per problem (the cheapest point
    when none is that cheap); each strategy's best accuracy there. One is ahead when the two 95% Wilson intervals do
    not overlap (a conservative test). Nothing is concluded when either model has not learned its task."""
    from reasonpipe.stats import Rate

    seq = [p for p in points if p.strategy == "sequential"]
    par = [p for p in points if p.strategy == "parallel"]
    if not seq or not par:
        return f"{cfg.task}: only one strategy was evaluated; there is nothing to compare."
    not_learned = [d.role for d in diagnostics if not d.learned]
    paper = {"backtrack": "backtracking ahead", "direct": "direct best-of-n ahead"}.get(cfg.paper_direction)
    if not_learned:
        return (f"{cfg.task}: not meaningful: {' and '.join(not_learned)} "
                f"{'has' if len(not_learned) == 1 else 'have'} not learned the task, so this grid cannot tell "
                f"which strategy is ahead{f' or test the paper (it found {paper})' if paper else ''}.")
    cap = min(max(p.mean_flops for p in seq), max(p.mean_flops for p in par))

    def best(series: list[Point]) -> Point:
        within = [p for p in series if p.mean_flops <= cap] or [min(series, key=lambda p: p.mean_flops)]
        return max(within, key=lambda p: (p.accuracy, -p.mean_flops))

    b, d = best(seq), best(par)
    rb, rd = (Rate(round(p.accuracy * p.problems), p.problems) for p in (b, d))
    if rb.above(rd):
        ahead, verdict = "backtrack", "backtracking is ahead"
    elif rd.above(rb):
        ahead, verdict = "direct", "direct best-of-n is ahead"
    else:
        ahead, verdict = "", "the 95% intervals overlap, so neither is ahead by more than this grid resolves"
    sentence = (f"{cfg.task}: at up to {cap:.3g} FLOPs per problem, the backtracking model (one sample, L={b.budget}) "
                f"solves {rb.text()} and the direct model (best-of-{d.budget}) {rd.text()}: {verdict}.")
    if paper:
        holds = ("the paper's direction holds here" if ahead == cfg.paper_direction else
                 "this grid cannot confirm or refute it" if not ahead else "the paper's direction does not hold here")
        sentence += f" The paper found {paper} on this task: {holds}."
    return sentence


def write_results(cfg: EvalConfig, points: list[Point], timings: dict[str, float],
                  diagnostics: list[ModelDiagnostics] | None = None) -> None:
    from reasonpipe.manifest import write_manifest

    diagnostics = diagnostics or []
    with atomic_write(os.path.join(cfg.out, "results.jsonl")) as f:
        for p in points:
            f.write(json.dumps(asdict(p)) + "\n")
    with atomic_write(os.path.join(cfg.out, "diagnostics.json")) as f:
        json.dump([asdict(d) for d in diagnostics], f, indent=2)
    with atomic_write(os.path.join(cfg.out, "report.md")) as f:
        f.write(f"# Parallel vs sequential: {cfg.task}, {cfg.problems} held-out problems\n\n")
        f.write(f"Backtracking model: `{cfg.backtrack_model}`; direct model: `{cfg.direct_model}`; sampler {cfg.sampler}; "
                f"timings {json.dumps(timings)}.\n\n")
        f.write(diagnostics_section(diagnostics))
        f.write(f"\n## Which strategy is ahead at equal compute?\n\n{direction_sentence(cfg, points, diagnostics)}\n")
        f.write("\n## Accuracy per budget\n\n")
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
