"""How much backtracking is enough? SFT on traces with exactly k backtracks for each k, then GRPO; accuracy of each.

For every k in ``ks`` (How Much Backtracking, Cai et al. 2025): ``kbacktrack`` traces with exactly k distinct
wrong branches (``k = 0`` is the solution path alone), an SFT run of a small model on them with the same
token budget for every k, its accuracy on held-out problems (pass@1 and best-of-``samples``, each with its 95%
interval, and whether the model has learned the task: :mod:`reasonpipe.diagnostics`), a GRPO run from that
checkpoint with the correctness reward, and the accuracy again. ``model_workers`` ks run side by side, each in
its own process. The run folder gets ``results.jsonl`` (one row per k), ``report.md`` (the table, the verdicts
and one sentence per stage on which k is ahead beside the paper's optimum) and ``ksweep.png`` (accuracy against
k after SFT and after RL, with intervals), and ``manifest.json``.

The five steps of each k are stages (:class:`reasonpipe.stage.Stage`) in ``k<k>/``: ``traces``, ``sft``,
``accuracy_sft``, ``rl``, ``accuracy_rl``, each with its record ``<stage>.stage.json`` (resolved config, hash,
summary). A stage that finished with the same config is reused (one line says so); an interrupted one resumes
(trace generation from its ``.partial`` file, SFT and GRPO from their last complete checkpoints); one whose
config changed is re-run from scratch, never reused, and so is every stage after it (each downstream config
holds its upstream's hash or file bytes): e.g. a new ``sft.max_steps`` re-runs SFT, both accuracies and GRPO,
a new ``eval_problems`` only the two accuracies. Sweep folders made before these records existed re-run once.

Example::

    reasonpipe ksweep --config configs/backtrack-k-sweep-cpu.yaml
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from reasonpipe.jobs import run_job
from reasonpipe.config import helptext, settings_block
from reasonpipe.errors import InputError
from reasonpipe.console import print_table
from reasonpipe.jsonl import atomic_write
from reasonpipe.report import markdown_table
from reasonpipe.rl import RLConfig
from reasonpipe.seeds import stream
from reasonpipe.sft import SFTConfig
from reasonpipe.stage import Stage
from reasonpipe.tasks import check_options


SFTSettings = settings_block(SFTConfig, "SFTSettings", __name__, filled={
    "data": "the sweep sets it: k<k>/traces.jsonl", "out": "the sweep sets it: k<k>/sft",
    "task": "the sweep's task", "seed": "the sweep's seed", "quiet": "the sweep's quiet"})
RLSettings = settings_block(RLConfig, "RLSettings", __name__, filled={
    "model": "the sweep sets it: k<k>/sft/final", "out": "the sweep sets it: k<k>/rl", "task": "the sweep's task",
    "task_options": "the sweep's task_options", "probe_task_options": "the sweep's eval_task_options",
    "seed": "the sweep's seed", "quiet": "the sweep's quiet"})


@dataclass
class KSweepConfig:
    """For every k: kbacktrack traces, SFT, accuracy, GRPO, accuracy, in runs/<name>/k<k>/."""

    name: str = field(default="ksweep-cpu", metadata=helptext("the sweep folder's name: runs_dir/<name>/"))
    runs_dir: str = field(default="runs", metadata=helptext("folder of the run folders"))
    task: str = field(default="countdown", metadata=helptext("the task"))
    task_options: dict[str, Any] = field(default_factory=dict, metadata=helptext(
        "the task's options for the training problems (traces and GRPO)"))
    eval_task_options: dict[str, Any] = field(default_factory=dict, metadata=helptext(
        "the task's options for the held-out problems (empty: task_options)"))
    ks: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 5], metadata=helptext(
        "the backtrack counts swept (0: the solution path alone)"))
    traces: int = field(default=2000, metadata=helptext("kbacktrack traces per k"))
    seed: int = field(default=1, metadata=helptext("seed of the problems, the models and the sampling"))
    workers: int = field(default=1, metadata=helptext("trace-generation workers"))
    sft: SFTSettings = field(default_factory=SFTSettings, metadata=helptext(  # type: ignore[valid-type]
        "the SFT settings of every k: the fields of reasonpipe.sft.SFTConfig but those the sweep sets"))
    rl: RLSettings = field(default_factory=RLSettings, metadata=helptext(  # type: ignore[valid-type]
        "the GRPO settings of every k: the fields of reasonpipe.rl.RLConfig but those the sweep sets"))
    model_workers: int = field(default=1, metadata=helptext(
        "the ks run this many at a time, each in its own process (one core each on a CPU)"))
    eval_problems: int = field(default=100, metadata=helptext("held-out problems of each accuracy"))
    max_new_tokens: int = field(default=256, metadata=helptext("generated tokens of each sample, at most"))
    temperature: float = field(default=0.0, metadata=helptext("sampling temperature of the accuracy (0: greedy)"))
    samples: int = field(default=1, metadata=helptext(
        "samples per held-out problem: the accuracy is the first one's (pass@1), best-of-samples the largest "
        "budget the learning verdict reads (> 1 needs temperature > 0)"))
    quiet: bool = field(default=False, metadata=helptext("no progress bars or log lines"))

    def __post_init__(self) -> None:  # the task's options and the sampling, checked at load
        check_options(self.task, self.task_options, "task_options")
        check_options(self.task, self.eval_task_options or self.task_options, "eval_task_options")
        if self.samples < 1:
            raise InputError(f"must be at least 1, not {self.samples}", field="samples")
        if self.samples > 1 and self.temperature <= 0:
            raise InputError(f"{self.samples} greedy samples would be the same sample: set temperature > 0",
                             field="samples")


# How Much Backtracking's best k (Cai et al. 2025, Qwen2.5-3B after SFT): one backtrack on CountDown, five on Sudoku.
PAPER_OPTIMUM = {"countdown": 1, "sudoku": 5}


def accuracy(model_dir: str, cfg: KSweepConfig, k: int) -> dict[str, Any]:
    """The model at ``model_dir`` on ``eval_problems`` held-out problems: pass@1 (its first sample), best-of-
    ``samples``, the completion statistics of the first samples, the task-token accuracy on the problems' own
    k-backtrack traces (teacher-forced), the data bound (those traces solved within ``max_new_tokens``) and the
    learning verdict (:func:`reasonpipe.diagnostics.learned_verdict` at best-of-``samples``)."""
    from reasonpipe.diagnostics import completion_stats, learned_verdict, token_accuracy
    from reasonpipe.evaluation import EvalConfig, data_bound, searcher_traces
    from reasonpipe.models import load_causal_lm, load_tokenizer
    from reasonpipe.sampling import HFSampler
    from reasonpipe.searchers import SearchOptions
    from reasonpipe.stats import Rate
    from reasonpipe.strategies import judge
    from reasonpipe.tasks import make_task
    from reasonpipe.textformat import TextFormat

    options = cfg.eval_task_options or cfg.task_options
    task = make_task(cfg.task, **options)
    problems = [task.generate(stream("ksweep-eval", cfg.seed, i)) for i in range(cfg.eval_problems)]
    fmt = TextFormat.load(model_dir)  # a pretrained model's checkpoint is prompted and scored in its format
    prompts = [task.prompt(p) for p in problems]
    sampler = HFSampler(model_dir, batch_size=128)
    samples = sampler.sample([fmt.wrap(task, q) for q in prompts], cfg.samples, cfg.max_new_tokens, cfg.temperature,
                             cfg.seed)
    judged = [[judge(task, p, q, s, text_format=fmt) for s in row] for p, q, row in zip(problems, prompts, samples)]
    first = sum(row[0].correct for row in judged)
    best = sum(any(j.correct for j in row) for row in judged)
    stats = completion_stats(task, problems, prompts, [row[0].text for row in samples],
                             [row[0].finished for row in samples], text_format=fmt)
    # the held-out traces and the bound: the same searcher and k as the training traces, on these problems
    bound_cfg = EvalConfig(task=cfg.task, task_options=options, problem_seed=cfg.seed, lengths=[cfg.max_new_tokens],
                           backtrack_model=model_dir)  # its tokens count the bound's traces
    traces = searcher_traces(bound_cfg, problems, "kbacktrack", SearchOptions(k=k))
    bound = data_bound(bound_cfg, problems, traces)[0].accuracy
    held = [(t.to_text(), q) for t, q in zip(traces, prompts) if t is not None]
    model = load_causal_lm(model_dir)
    tokens = token_accuracy(model, load_tokenizer(model_dir), task, [t for t, _ in held], [q for _, q in held],
                            max_len=cfg.max_new_tokens + 256, text_format=fmt)
    verdict = learned_verdict(tokens.task, Rate(best, len(problems)), bound)
    n = len(problems)
    return {"accuracy": first / n, "solved": first, "problems": n, "samples": cfg.samples, "best_of": best,
            "mean_tokens": sum(row[0].completion.tokens for row in judged) / n, "bound": bound,
            "tokens": tokens.as_dict(), "completions": dataclasses.asdict(stats), "learned": verdict.learned,
            "reason": verdict.reason}


def _resolved(config: Any) -> dict[str, Any]:
    """A built config as a stage's config: every field but ``quiet`` (which changes no output)."""
    return {k: v for k, v in dataclasses.asdict(config).items() if k != "quiet"}


def _eval_settings(cfg: KSweepConfig) -> dict[str, Any]:
    """What decides an accuracy of this sweep (besides the model)."""
    return {"task": cfg.task, "task_options": cfg.eval_task_options or cfg.task_options, "seed": cfg.seed,
            "eval_problems": cfg.eval_problems, "max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature,
            "samples": cfg.samples}


def _accuracy_stage(cfg: KSweepConfig, k: int, folder: str, name: str, model_dir: str,
                    model: Stage) -> dict[str, Any]:
    """The accuracy of the checkpoint ``model_dir`` that the stage ``model`` made, as the stage ``name``
    (``<name>.json`` in ``folder``)."""
    out = f"{name}.json"
    stage = Stage(name, folder, {**_eval_settings(cfg), "model_stage": model.hash}, outputs=[out])

    def measure() -> dict[str, Any]:
        result = accuracy(model_dir, cfg, k)
        with atomic_write(os.path.join(folder, out)) as f:
            json.dump(result, f, indent=2)
        return result

    return stage.run(measure)


def sft_config(cfg: KSweepConfig, folder: str) -> SFTConfig:
    """The SFT config of one k (its folder ``k<k>/``): the ``sft`` block with the sweep's task, seed and quiet,
    trained on ``traces.jsonl`` into ``sft/``."""
    return cfg.sft.resolve({}, data=[os.path.join(folder, "traces.jsonl")], out=os.path.join(folder, "sft"),
                           task=cfg.task, seed=cfg.seed, quiet=cfg.quiet)


def rl_config(cfg: KSweepConfig, folder: str) -> RLConfig:
    """The GRPO config of one k: the ``rl`` block from the SFT model ``sft/final`` into ``rl/``, on the sweep's
    task and problems."""
    return cfg.rl.resolve({}, model=os.path.join(folder, "sft", "final"), out=os.path.join(folder, "rl"),
                          task=cfg.task, task_options=cfg.task_options, probe_task_options=cfg.eval_task_options,
                          seed=cfg.seed, quiet=cfg.quiet)


def run_k(cfg: KSweepConfig, k: int, root: str) -> dict[str, Any]:
    """Traces, SFT, accuracy, GRPO, accuracy for one k: five stages (:class:`reasonpipe.stage.Stage`) in
    ``k<k>/``, each reused when it finished with the same config (and, downstream, the same upstream stages)."""
    from reasonpipe.rl import train as grpo_train
    from reasonpipe.sft import train as sft_train
    from reasonpipe.tracegen import GenRequest, fingerprint, generate
    from reasonpipe.searchers import SearchOptions

    folder = os.path.join(root, f"k{k}")
    os.makedirs(folder, exist_ok=True)
    data = os.path.join(folder, "traces.jsonl")
    request = GenRequest(task=cfg.task, searcher="kbacktrack", out=data, n=cfg.traces, seed=cfg.seed,
                         workers=cfg.workers, task_options=cfg.task_options, search=SearchOptions(k=k))
    traces = Stage("traces", folder, fingerprint(request), outputs=["traces.jsonl"],
                   scratch=["traces.jsonl.partial", "traces.jsonl.partial.json"])
    traces.run(lambda: dataclasses.asdict(generate(request, resume=True)))

    sft_dir = os.path.join(folder, "sft")
    sft_cfg = sft_config(cfg, folder)
    sft_stage = Stage("sft", folder, _resolved(sft_cfg), inputs={"traces": data},
                      outputs=["sft/final", "sft/summary.json"], scratch=["sft"])
    sft = sft_stage.run(lambda: sft_train(sft_cfg))
    after_sft = _accuracy_stage(cfg, k, folder, "accuracy_sft", os.path.join(sft_dir, "final"), sft_stage)

    rl_cfg = rl_config(cfg, folder)
    rl_stage = Stage("rl", folder, {**_resolved(rl_cfg), "model_stage": sft_stage.hash},
                     outputs=["rl/final", "rl/summary.json"], scratch=["rl"])
    rl_stage.run(lambda: grpo_train(rl_cfg))
    after_rl = _accuracy_stage(cfg, k, folder, "accuracy_rl", os.path.join(folder, "rl", "final"), rl_stage)
    return {"k": k, "sft_tokens": sft.get("tokens_seen"), "sft_last_loss": sft.get("last_loss"),
            "accuracy_sft": after_sft["accuracy"], "accuracy_rl": after_rl["accuracy"],
            "tokens_sft": after_sft["mean_tokens"], "tokens_rl": after_rl["mean_tokens"],
            "sft": after_sft, "rl": after_rl}


def stage_sentence(task: str, stage: str, rows: list[dict[str, Any]]) -> str:
    """One sentence on one stage's k curve (``stage``: sft | rl): which k is ahead among the ks whose model has
    learned (pass@1, 95% Wilson intervals that do not overlap), and whether that is the paper's optimum."""
    from reasonpipe.stats import Rate

    when = {"sft": "After SFT", "rl": "After SFT and GRPO"}[stage]
    paper = PAPER_OPTIMUM.get(task)
    learned = [r for r in rows if r[stage]["learned"]]
    left_out = [str(r["k"]) for r in rows if not r[stage]["learned"]]
    if not learned:
        return (f"{when}, no k's model has learned the task (the verdicts above): the curve says how the models "
                "failed, not which k is best.")
    out = f" (k = {', '.join(left_out)} not learned, left out)" if left_out else ""
    rate = {r["k"]: Rate(r[stage]["solved"], r[stage]["problems"]) for r in learned}
    best = max(rate, key=lambda k: rate[k].value)
    if len(rate) == 1:
        return (f"{when}, only k = {best} has learned{out}: one point, no comparison between ks; "
                + (f"the paper's optimum k = {paper} cannot be tested here." if paper is not None else ""))
    ahead = all(rate[best].above(rate[k]) for k in rate if k != best)
    if not ahead:
        verdict = (f"the intervals of the ks that learned overlap{out}: no k is ahead here (the highest, k = {best}, "
                   f"solves {rate[best].text()})")
        if paper is not None:
            verdict += f"; the paper's optimum k = {paper} is neither confirmed nor refuted."
        return f"{when}, {verdict}"
    verdict = f"k = {best} is ahead of every other k that learned{out}: {rate[best].text()}"
    if paper is None:
        return f"{when}, {verdict}."
    agrees = "as in the paper" if best == paper else f"the paper's optimum is k = {paper}"
    return f"{when}, {verdict}; {agrees}."


def write_report(cfg: KSweepConfig, root: str, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reasonpipe.diagnostics import SOLVED_MIN_OF_BOUND, TASK_TOKEN_MIN
    from reasonpipe.stats import Rate, rate_text

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    def cells(a: dict[str, Any]) -> list[str]:
        return [rate_text(a["solved"], a["problems"]), rate_text(a["best_of"], a["problems"]),
                pct(a["tokens"]["task_token_accuracy"]), "learned" if a["learned"] else "NOT LEARNED"]

    with atomic_write(os.path.join(root, "results.jsonl")) as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    best = f"best of {cfg.samples}"
    table = [[str(r["k"]), f"{r['sft_tokens']:,}" if r["sft_tokens"] else "-", pct(r["sft"]["bound"]),
              *cells(r["sft"]), *cells(r["rl"]), f"{r['tokens_sft']:.0f} / {r['tokens_rl']:.0f}"] for r in rows]
    headers = ["k", "SFT tokens", "data bound", "SFT: pass@1 [95%]", f"SFT: {best}", "SFT: task-token acc.",
               "SFT: verdict", "RL: pass@1 [95%]", f"RL: {best}", "RL: task-token acc.", "RL: verdict",
               "tokens/answer (SFT / RL)"]
    reasons = [f"- k = {r['k']}, {stage}: {r[stage]['reason']}" for r in rows for stage in ("sft", "rl")]
    paper = PAPER_OPTIMUM.get(cfg.task)
    lines = [f"# Backtrack-count sweep: {cfg.task}", "",
             f"SFT on {cfg.traces} `kbacktrack` traces per k (same token budget), then GRPO (correctness reward); "
             f"{cfg.eval_problems} held-out problems, {cfg.samples} sample(s) each of at most {cfg.max_new_tokens} "
             f"tokens (temperature {cfg.temperature}). pass@1 is the first sample's; the task-token accuracy is "
             "teacher-forced on the problems' own k-backtrack traces; the data bound is those traces solved within "
             f"{cfg.max_new_tokens} tokens. A model has learned when its task-token accuracy is at least "
             f"{TASK_TOKEN_MIN:.0%} and it solves, {best}, at least {SOLVED_MIN_OF_BOUND:.0%} of the data bound "
             "(docs/architecture.md, \"Learning diagnostics\").", "",
             markdown_table(headers, table), "", "## Which k is best here?", "",
             (f"How Much Backtracking (Cai et al. 2025) found k = {paper} best on {cfg.task}." if paper is not None
              else f"How Much Backtracking reports no optimum for {cfg.task}."), "",
             stage_sentence(cfg.task, "sft", rows), "", stage_sentence(cfg.task, "rl", rows), "",
             "## Verdicts", "", *reasons, "", "![accuracy against k](ksweep.png)", ""]
    with atomic_write(os.path.join(root, "report.md")) as f:
        f.write("\n".join(lines))
    fig, ax = plt.subplots(figsize=(6, 4))
    ks = [r["k"] for r in rows]
    for stage, marker, label in (("sft", "o", "after SFT"), ("rl", "s", "after SFT + GRPO")):
        values = [100 * r[stage]["accuracy"] for r in rows]
        lows, highs = zip(*(Rate(r[stage]["solved"], r[stage]["problems"]).interval for r in rows))
        ax.errorbar(ks, values, yerr=[[max(0.0, v - 100 * lo) for v, lo in zip(values, lows)],
                                      [max(0.0, 100 * hi - v) for v, hi in zip(values, highs)]],
                    marker=marker, capsize=3, label=f"{label} (pass@1, 95%)")
    if paper is not None:
        ax.axvline(paper, color="k", linestyle=":", alpha=0.6, label=f"the paper's best k = {paper}")
    ax.set_xlabel("backtracks per training trace (k)")
    ax.set_ylabel("solved, % of held-out problems")
    ax.set_xticks(ks)
    ax.set_title(f"How much backtracking: {cfg.task}")
    ax.legend()
    fig.tight_layout()
    tmp = os.path.join(root, ".ksweep.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, os.path.join(root, "ksweep.png"))


def check(cfg: KSweepConfig) -> None:
    """What load does not check, before any work starts (the ``sft`` and ``rl`` blocks and the task's options
    were built and checked at load): at least one k."""
    if not cfg.ks:
        raise InputError("no backtrack counts to sweep", field="ks")


def main(cfg: KSweepConfig) -> int:
    from reasonpipe.manifest import write_manifest

    check(cfg)
    root = os.path.join(cfg.runs_dir, cfg.name)
    os.makedirs(root, exist_ok=True)
    from reasonpipe.processes import spawn_map

    rows = spawn_map(run_k, [(cfg, k, root) for k in cfg.ks], cfg.model_workers, field="model_workers")
    for r in rows:
        print(f"k={r['k']}: accuracy after SFT {r['accuracy_sft']:.3f}, after RL {r['accuracy_rl']:.3f}", flush=True)
    write_report(cfg, root, rows)
    write_manifest(root, dataclasses.asdict(cfg), cfg.seed,
                   {f"k{k}": os.path.join(root, f"k{k}", "traces.jsonl") for k in cfg.ks}, extra={"results": rows})
    print_table(f"{root}: accuracy against k",
                [(str(r["k"]), f"{r['accuracy_sft']:.3f}", "yes" if r["sft"]["learned"] else "no",
                  f"{r['accuracy_rl']:.3f}", "yes" if r["rl"]["learned"] else "no") for r in rows],
                ("k", "after SFT", "learned", "after RL", "learned"))
    print(f"report: {root}/report.md")
    return 0


def cli(argv: list[str] | None = None) -> int:
    return run_job("ksweep", "ksweep", __doc__, KSweepConfig, main, argv)


if __name__ == "__main__":
    sys.exit(cli())
