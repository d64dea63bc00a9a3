"""Continuous-thought job: train Coconut and its controls on graph reachability, evaluate, probe, report.

Trains every method of ``methods`` (``coconut``, ``pause``, ``cot``, ``nocot``; :mod:`reasonpipe.latent_train`)
on the same problems with the same schedule, evaluates each on every held-out set of ``eval_sets`` (greedy;
coconut and pause at every thought budget), probes the coconut model's thoughts (:mod:`reasonpipe.latent_probe`),
and writes the run folder ``out``: ``models/<method>/`` (with ``metrics.jsonl``, its training loss), ``results.jsonl``
(one row per method, set and budget), ``probe.jsonl``, ``report.md`` (accuracy, probe and training tables),
``accuracy.png``, ``probe.png`` and ``manifest.json`` (config, seeds, sizes).

Rerun: each method's training is the stage ``models/<method>/train`` (:class:`reasonpipe.stage.Stage`, record
``train.stage.json`` beside ``final/``): reused when it finished with the same training settings (one line says
so), resumed after its last finished curriculum stage when interrupted, trained afresh when a training setting
changed (the line names it). Evaluation and probe are the stage ``evaluate`` of ``out`` (record
``evaluate.stage.json``, outputs ``results.jsonl`` and ``probe.jsonl``), its config the whole config without
``out`` and ``quiet`` plus every training stage's hash: reused when nothing changed (nothing sampled), run again
when an evaluation setting changed or a method was trained again. The report, plots and manifest are written
from its results on every run (the training table marks reused trainings). Run folders made before these
records existed train and evaluate once more.

Example::

    reasonpipe latent --config configs/latent-cpu.yaml
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from typing import Any

from reasonpipe.jobs import run_job
from reasonpipe.console import print_table, progress
from reasonpipe.jsonl import atomic_write
from reasonpipe.latent_train import LatentConfig
from reasonpipe.stage import Stage


def main(config: LatentConfig) -> int:
    import torch

    from reasonpipe.latent_probe import ProbeRow, probe_table
    from reasonpipe.latent_train import EvalPoint, planned_steps, problems
    from reasonpipe.manifest import write_manifest
    from reasonpipe.report import markdown_table

    config.validate()
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    os.makedirs(config.out, exist_ok=True)
    train = problems({**config.task_options, "split": "train"}, config.train_problems, "train", config.seed)
    held_out = {name: ({**config.task_options, **opts},
                       problems({**config.task_options, **opts}, config.eval_problems, f"eval-{name}", config.seed))
                for name, opts in config.eval_sets.items()}
    trained: dict[str, Any] = {}
    summaries: dict[str, dict[str, Any]] = {}
    for method in config.methods:
        with progress(f"latent {method}", planned_steps(config, len(train)), config.quiet) as advance:
            trained[method], summaries[method] = train_stage(config, method, train, advance)
    evaluated = evaluation_stage(config, summaries).run(lambda: evaluate_all(config, trained, held_out))
    points = [EvalPoint(**p) for p in evaluated["points"]]
    probe_rows = [ProbeRow(**r) for r in evaluated["probe"]]
    headers = ["method", "eval set", "thoughts", "accuracy", "extra positions", "generated tokens", "problems"]
    rows = [[p.method, p.eval_set, str(p.thoughts), f"{p.accuracy:.1%}", f"{p.extra_positions:.1f}",
             f"{p.mean_generated:.1f}", str(p.problems)] for p in points]
    train_headers = ["method", "steps", "epochs", "last loss", "train seconds", "parameters", "device"]
    train_rows = [[m, str(s["steps"]), str(s["epochs"]), str(s["last_loss"]),
                   f"{s['train_seconds']}" + (" (reused)" if s.get("reused") else ""), f"{s['parameters']:,}",
                   s["device"]] for m, s in summaries.items()]
    plot_accuracy(points, os.path.join(config.out, "accuracy.png"))
    with atomic_write(os.path.join(config.out, "report.md")) as f:
        f.write(f"# Continuous thought on graph reachability: {config.out}\n\n"
                f"Seed {config.seed}; training graphs {json.dumps(config.task_options)}, {config.train_problems} "
                f"problems; model {config.layers} layers x {config.hidden} ({config.heads} heads); "
                f"{config.stages} stages x {config.per_step} thoughts per step; the same schedule for every "
                f"method ({config.total_epochs} epochs).\n\n## Accuracy (greedy, held-out graphs)\n\n")
        f.write(markdown_table(headers, rows) + "\n![accuracy](accuracy.png)\n\n## Training\n\n")
        f.write(markdown_table(train_headers, train_rows))
        if probe_rows:
            p_headers, p_rows = probe_table(probe_rows)
            plot_probe(probe_rows, os.path.join(config.out, "probe.png"))
            f.write(f"\n## Superposition probe (coconut, {probe_rows[0].problems} graphs of "
                    f"'{next(iter(held_out))}')\n\n" + markdown_table(p_headers, p_rows) +
                    "\nAttention columns: mass per edge of the category over the mean per edge (1.0 = average), "
                    "for the latent position computing the next thought; see reasonpipe/latent_probe.py.\n"
                    "\n![probe](probe.png)\n")
    write_manifest(config.out, asdict(config), config.seed, {},
                   extra={"sizes": {m: s["parameters"] for m, s in summaries.items()},
                          "train_problems": len(train), "eval_problems": {k: len(v[1]) for k, v in held_out.items()}})
    print_table(f"{config.out}: accuracy", rows, headers)
    if probe_rows:
        print_table(f"{config.out}: superposition probe", *reversed(probe_table(probe_rows)))
    print(f"report: {os.path.join(config.out, 'report.md')}")
    return 0


def evaluation_stage(config: LatentConfig, summaries: dict[str, dict[str, Any]]) -> Stage:
    """Evaluation and probe as the stage ``evaluate`` of ``out``: the config without ``out`` and ``quiet``, and
    each method's training-stage hash (``summaries[method]["stage_hash"]``, from :func:`train_stage`)."""
    resolved = {k: v for k, v in asdict(config).items() if k not in ("out", "quiet")}
    resolved["train_stages"] = {method: s["stage_hash"] for method, s in summaries.items()}
    return Stage("evaluate", config.out, resolved, outputs=["results.jsonl", "probe.jsonl"])


def evaluate_all(config: LatentConfig, trained: dict[str, Any],
                 held_out: dict[str, tuple[dict[str, Any], list]]) -> dict[str, Any]:
    """Every trained model on every held-out set, and the probe of the coconut model on the first set's first
    ``probe_problems`` graphs; writes ``results.jsonl`` and ``probe.jsonl``. The stage summary: both as rows."""
    from reasonpipe.latent_probe import probe
    from reasonpipe.latent_train import evaluate
    from reasonpipe.tasks import make_task

    points = [p for method, model in trained.items() for name, (options, probs) in held_out.items()
              for p in evaluate(config, method, model, name, options, probs)]
    probe_rows = []
    if "coconut" in trained:
        options, probs = next(iter(held_out.values()))
        probe_rows = probe(config, trained["coconut"], make_task("reachability", **options),
                           probs[:config.probe_problems])
    with atomic_write(os.path.join(config.out, "results.jsonl")) as f:
        for p in points:
            f.write(json.dumps(asdict(p)) + "\n")
    with atomic_write(os.path.join(config.out, "probe.jsonl")) as f:
        for r in probe_rows:
            f.write(json.dumps(asdict(r)) + "\n")
    return {"points": [asdict(p) for p in points], "probe": [asdict(r) for r in probe_rows]}


def train_stage(config: LatentConfig, method: str, train: list, advance) -> tuple[Any, dict[str, Any]]:
    """The training of one method as the stage ``models/<method>/train``: reused (the model loaded from
    ``final``) when it finished with the same :func:`~reasonpipe.latent_train.training_config`, resumed after
    its last finished curriculum stage when interrupted, trained afresh (the folder emptied) when it changed.
    The summary carries ``reused`` and the stage's ``stage_hash``."""
    from reasonpipe.latent_train import load_trained, train_method, training_config

    stage = Stage("train", os.path.join(config.out, "models", method), training_config(config, method),
                  outputs=["final"], scratch=["*"])
    trained: list[Any] = []

    def fit() -> dict[str, Any]:
        model, summary = train_method(config, method, train, advance)
        trained.append(model)
        return summary

    summary = stage.run(fit)
    if stage.reused:
        advance(summary["steps"])
        return load_trained(config, method), {**summary, "reused": True, "stage_hash": stage.hash}
    return trained[0], {**summary, "reused": False, "stage_hash": stage.hash}


def plot_accuracy(points: list, path: str) -> None:
    """Accuracy against extra positions (thought block or CoT tokens), one panel per held-out set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = sorted({p.eval_set for p in points})
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4), dpi=110, squeeze=False)
    for ax, name in zip(axes[0], sets):
        for method in sorted({p.method for p in points}):
            series = [p for p in points if p.eval_set == name and p.method == method]
            ax.plot([p.extra_positions for p in series], [100 * p.accuracy for p in series],
                    "o-" if len(series) > 1 else "s", label=method)
        ax.set_title(f"held-out: {name}")
        ax.set_xlabel("extra positions before the answer")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(-2, 102)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)


def plot_probe(rows: list, path: str) -> None:
    """Per thought: frontier recall (and chance), and the attention ratio per edge category (last layer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r.step for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    left.plot(steps, [r.reach_recall for r in rows], "o-", label="reachable within t+1: recall@|F|")
    left.plot(steps, [r.layer_recall for r in rows], "s-", label="BFS layer t+1: recall@|L|")
    left.plot(steps, [r.chance for r in rows], "k--", label="chance |F|/nodes")
    left.set_xlabel("thought t")
    left.set_ylim(0, 1.05)
    left.legend(fontsize=8)
    layers = sorted({layer for r in rows for layer in r.attention})
    if layers:
        last = layers[-1]
        width = 0.25
        for i, c in enumerate(("frontier", "path", "unreachable")):
            right.bar([s + (i - 1) * width for s in steps], [r.attention.get(last, {}).get(c, 0.0) for r in rows],
                      width, label=c)
        right.axhline(1.0, color="k", lw=0.8)
        right.set_title(f"attention per edge / mean edge ({last})")
        right.set_xlabel("latent position t")
        right.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)


def cli(argv: list[str] | None = None) -> int:
    return run_job("latent", "latent", __doc__, LatentConfig, main, argv,
                   "interrupted (finished stages are kept; the next run resumes after them)")


if __name__ == "__main__":
    sys.exit(cli())
