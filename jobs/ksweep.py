"""How much backtracking is enough? SFT on traces with exactly k backtracks for each k, then GRPO; accuracy of each.

For every k in ``ks`` (How Much Backtracking, Cai et al. 2025): ``kbacktrack`` traces with exactly k distinct
wrong branches (``k = 0`` is the solution path alone), an SFT run of a small model on them with the same
token budget for every k, its accuracy on held-out problems (one sample, ``max_new_tokens``), a GRPO run
from that checkpoint with the correctness reward, and the accuracy again. The run folder gets
``results.jsonl`` (one row per k), ``report.md`` (the table) and ``ksweep.png`` (accuracy against k after SFT
and after RL), and ``manifest.json``.

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
    eval_problems: int = field(default=100, metadata=helptext("held-out problems of each accuracy"))
    max_new_tokens: int = field(default=256, metadata=helptext("generated tokens of the one sample, at most"))
    temperature: float = field(default=0.0, metadata=helptext("sampling temperature of the accuracy (0: greedy)"))
    quiet: bool = field(default=False, metadata=helptext("no progress bars or log lines"))

    def __post_init__(self) -> None:  # the task's options, checked at load
        check_options(self.task, self.task_options, "task_options")
        check_options(self.task, self.eval_task_options or self.task_options, "eval_task_options")


def accuracy(model_dir: str, cfg: KSweepConfig) -> dict[str, float]:
    """Fraction of held-out problems solved by one sample of at most ``max_new_tokens`` tokens."""
    from reasonpipe.sampling import HFSampler
    from reasonpipe.strategies import judge
    from reasonpipe.tasks import make_task

    task = make_task(cfg.task, **(cfg.eval_task_options or cfg.task_options))
    problems = [task.generate(stream("ksweep-eval", cfg.seed, i)) for i in range(cfg.eval_problems)]
    prompts = [task.prompt(p) for p in problems]
    sampler = HFSampler(model_dir, batch_size=128)
    samples = sampler.sample(prompts, 1, cfg.max_new_tokens, cfg.temperature, cfg.seed)
    judged = [judge(task, p, q, s[0]) for p, q, s in zip(problems, prompts, samples)]
    return {"accuracy": sum(j.correct for j in judged) / len(judged),
            "mean_tokens": sum(j.completion.tokens for j in judged) / len(judged)}


def _resolved(config: Any) -> dict[str, Any]:
    """A built config as a stage's config: every field but ``quiet`` (which changes no output)."""
    return {k: v for k, v in dataclasses.asdict(config).items() if k != "quiet"}


def _eval_settings(cfg: KSweepConfig) -> dict[str, Any]:
    """What decides an accuracy of this sweep (besides the model)."""
    return {"task": cfg.task, "task_options": cfg.eval_task_options or cfg.task_options, "seed": cfg.seed,
            "eval_problems": cfg.eval_problems, "max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature}


def _accuracy_stage(cfg: KSweepConfig, folder: str, name: str, model_dir: str, model: Stage) -> dict[str, float]:
    """The accuracy of the checkpoint ``model_dir`` that the stage ``model`` made, as the stage ``name``
    (``<name>.json`` in ``folder``)."""
    out = f"{name}.json"
    stage = Stage(name, folder, {**_eval_settings(cfg), "model_stage": model.hash}, outputs=[out])

    def measure() -> dict[str, float]:
        result = accuracy(model_dir, cfg)
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
    after_sft = _accuracy_stage(cfg, folder, "accuracy_sft", os.path.join(sft_dir, "final"), sft_stage)

    rl_cfg = rl_config(cfg, folder)
    rl_stage = Stage("rl", folder, {**_resolved(rl_cfg), "model_stage": sft_stage.hash},
                     outputs=["rl/final", "rl/summary.json"], scratch=["rl"])
    rl_stage.run(lambda: grpo_train(rl_cfg))
    after_rl = _accuracy_stage(cfg, folder, "accuracy_rl", os.path.join(folder, "rl", "final"), rl_stage)
    return {"k": k, "sft_tokens": sft.get("tokens_seen"), "sft_last_loss": sft.get("last_loss"),
            "accuracy_sft": after_sft["accuracy"], "accuracy_rl": after_rl["accuracy"],
            "tokens_sft": after_sft["mean_tokens"], "tokens_rl": after_rl["mean_tokens"]}


def write_report(cfg: KSweepConfig, root: str, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with atomic_write(os.path.join(root, "results.jsonl")) as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    table = [[str(r["k"]), f"{r['accuracy_sft']:.3f}", f"{r['accuracy_rl']:.3f}", f"{r['tokens_sft']:.0f}",
              f"{r['tokens_rl']:.0f}", str(r["sft_tokens"])] for r in rows]
    lines = [f"# Backtrack-count sweep: {cfg.task}", "",
             f"SFT on {cfg.traces} `kbacktrack` traces per k (same token budget), then GRPO (correctness reward); "
             f"accuracy on {cfg.eval_problems} held-out problems, one sample of at most {cfg.max_new_tokens} tokens "
             f"(temperature {cfg.temperature}).", "",
             markdown_table(["k", "accuracy after SFT", "after RL", "tokens/answer after SFT", "after RL",
                             "SFT tokens"], table), "", "![accuracy against k](ksweep.png)", ""]
    with atomic_write(os.path.join(root, "report.md")) as f:
        f.write("\n".join(lines))
    fig, ax = plt.subplots(figsize=(6, 4))
    ks = [r["k"] for r in rows]
    ax.plot(ks, [r["accuracy_sft"] for r in rows], marker="o", label="after SFT")
    ax.plot(ks, [r["accuracy_rl"] for r in rows], marker="s", label="after SFT + GRPO")
    ax.set_xlabel("backtracks per training trace (k)")
    ax.set_ylabel("accuracy (held-out)")
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
    rows = []
    for k in cfg.ks:
        rows.append(run_k(cfg, k, root))
        print(f"k={k}: accuracy after SFT {rows[-1]['accuracy_sft']:.3f}, after RL {rows[-1]['accuracy_rl']:.3f}",
              flush=True)
    write_report(cfg, root, rows)
    write_manifest(root, dataclasses.asdict(cfg), cfg.seed,
                   {f"k{k}": os.path.join(root, f"k{k}", "traces.jsonl") for k in cfg.ks}, extra={"results": rows})
    print_table(f"{root}: accuracy against k", [(str(r["k"]), f"{r['accuracy_sft']:.3f}", f"{r['accuracy_rl']:.3f}")
                                                for r in rows], ("k", "after SFT", "after RL"))
    print(f"report: {root}/report.md")
    return 0


def cli(argv: list[str] | None = None) -> int:
    return run_job("ksweep", "ksweep", __doc__, KSweepConfig, main, argv)


if __name__ == "__main__":
    sys.exit(cli())
