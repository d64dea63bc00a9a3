"""Continuous-thought job: train Coconut and its controls on graph reachability, evaluate, probe, report.

Trains every method of ``methods`` (``coconut``, ``pause``, ``cot``, ``nocot``; :mod:`reasonpipe.latent_train`)
on the same problems with the same schedule, once per seed of ``seeds`` (each seed its own problems, weights and
order; ``workers`` trainings side by side), evaluates each on every held-out set of ``eval_sets`` (greedy;
coconut and pause at every thought budget), with the learning diagnostics of the rest of the pipeline
(task-token accuracy, well-formed and claimed-but-wrong completions, the learned verdict of
:mod:`reasonpipe.diagnostics`, a guess solving half), probes the first seed's coconut and pause models and an
untrained model (the chance line; :mod:`reasonpipe.latent_probe`), and writes the run folder ``out``:
``models/<method>/seed-<seed>/`` (with ``metrics.jsonl``, its training loss), ``results.jsonl`` (one row per
method, seed, set and budget), ``probe.jsonl``, ``report.md`` (the headline with 95% intervals over every seed's
held-out problems and its sentences, accuracy, probe and training tables), ``accuracy.png``, ``probe.png`` and
``manifest.json`` (config, seeds, sizes).

Rerun: each training is the stage ``models/<method>/seed-<seed>/train`` (:class:`reasonpipe.stage.Stage`, record
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
from dataclasses import asdict, replace
from typing import Any

from reasonpipe.console import print_table, progress
from reasonpipe.diagnostics import Verdict, learned_verdict
from reasonpipe.jobs import run_job
from reasonpipe.jsonl import atomic_write
from reasonpipe.latent_train import SHARED_STAGE0, STAGE0, LatentConfig
from reasonpipe.stage import Stage
from reasonpipe.stats import Rate, rate_text

CHANCE = 0.5  # a guess between the two candidates


def main(config: LatentConfig) -> int:
    import torch

    from reasonpipe.latent_probe import ProbeRow, frontier_sentence, probe_table
    from reasonpipe.latent_train import EvalPoint, planned_steps
    from reasonpipe.manifest import write_manifest
    from reasonpipe.processes import spawn_map
    from reasonpipe.report import markdown_table

    config.validate()
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    os.makedirs(config.out, exist_ok=True)
    units = [(method, seed) for seed in config.seed_list for method in config.methods]
    plan, after = training_plan(config)
    if config.workers == 1 or len(plan) == 1:
        summaries = {}
        for method, seed in plan:
            label = f"latent {method}" + (f" seed {seed}" if config.seeds > 1 else "")
            one = replace(config, seed=seed)
            with progress(label, planned_steps(one, one.train_problems, method), config.quiet) as advance:
                summaries[(method, seed)] = train_stage(one, method, training_problems(one), advance)[1]
    else:  # one process a training, `workers` at a time, each after the stage 0 it starts from; progress lines
        done = spawn_map(train_unit, [(replace(config, seed=seed), method) for method, seed in plan], config.workers,
                         after=after)
        summaries = dict(zip(plan, done))
    summaries = {u: summaries[u] for u in units}  # the shared stage 0 is inside each method's own figures
    evaluated = evaluation_stage(config, summaries).run(lambda: evaluate_all(config, units))
    points = [EvalPoint(**p) for p in evaluated["points"]]
    probes = {name: [ProbeRow(**r) for r in rows] for name, rows in evaluated["probe"].items()}
    tokens = {(t["method"], t["seed"]): t for t in evaluated["tokens"]}
    first = next(iter(config.eval_sets))
    verdicts = learning_verdicts(config, points, tokens, first)
    headers, rows = accuracy_rows(points)
    head_headers, head_rows = headline_rows(config, points, tokens, verdicts, first)
    sentence = comparison_sentences(config, points, verdicts, first)
    train_headers = ["method", "seed", "steps", "epochs", "last loss", "train seconds", "parameters", "device"]
    train_rows = [[m, str(seed), str(s["steps"]), str(s["epochs"]), str(s["last_loss"]),
                   f"{s['train_seconds']}" + (" (reused)" if s.get("reused") else ""), f"{s['parameters']:,}",
                   s["device"]] for (m, seed), s in summaries.items()]
    plot_accuracy(points, os.path.join(config.out, "accuracy.png"))
    with atomic_write(os.path.join(config.out, "report.md")) as f:
        f.write(f"# Continuous thought on graph reachability: {config.out}\n\n"
                f"Seeds {', '.join(map(str, config.seed_list))}; training graphs {json.dumps(config.task_options)}, "
                f"{config.train_problems} problems; model {config.layers} layers x {config.hidden} ({config.heads} "
                f"heads); {config.stages} stages x {config.per_step} thoughts per step; the same schedule for every "
                f"method ({config.total_epochs} epochs" + (f", lookup drills weight {config.drill_weight}"
                                                           if config.drill_weight else "") + ").\n\n")
        f.write(f"## Headline ('{first}', every seed's problems pooled, 95% Wilson intervals)\n\n"
                + markdown_table(head_headers, head_rows) + "\n" + sentence + "\n\n")
        f.write("## Accuracy (greedy, held-out graphs, seeds pooled)\n\n" + markdown_table(headers, rows)
                + "\n![accuracy](accuracy.png)\n\n## Training\n\n" + markdown_table(train_headers, train_rows))
        if probes:
            all_rows = [r for rows_ in probes.values() for r in rows_]
            p_headers, p_rows = probe_table(all_rows)
            plot_probe(probes, os.path.join(config.out, "probe.png"))
            f.write(f"\n## Superposition probe ({all_rows[0].problems} graphs of '{first}', seed "
                    f"{config.seed})\n\n" + frontier_sentence(probes) + "\n\n" + markdown_table(p_headers, p_rows) +
                    "\nRows: the coconut model's thoughts, the pause model's hidden states at the same columns, and "
                    "an untrained model's thoughts (the chance line). Attention columns: mass per edge of the category "
                    "over the mean per edge (1.0 = average), for the position computing the next thought; see "
                    "reasonpipe/latent_probe.py.\n\n![probe](probe.png)\n")
    write_manifest(config.out, asdict(config), config.seed, {},
                   extra={"sizes": {f"{m}/seed-{seed}": s["parameters"] for (m, seed), s in summaries.items()},
                          "train_problems": config.train_problems,
                          "eval_problems": {k: config.eval_problems for k in config.eval_sets}})
    print_table(f"{config.out}: headline ('{first}')", head_rows, head_headers)
    print(sentence)
    print_table(f"{config.out}: accuracy", rows, headers)
    if probes:
        print_table(f"{config.out}: superposition probe", *reversed(probe_table(
            [r for rows_ in probes.values() for r in rows_])))
        print(frontier_sentence(probes))
    print(f"report: {os.path.join(config.out, 'report.md')}")
    return 0


def training_plan(config: LatentConfig) -> tuple[list[tuple[str, int]], list[int | None]]:
    """The trainings (method, seed) in the order they start, and for each the index of the one it starts from
    (:func:`reasonpipe.processes.spawn_map`'s ``after``): when two or more of coconut, pause and cot run, each seed's
    stage 0 first (once, shared), then the other methods (nocot: whole trainings that wait for nothing), then coconut,
    pause and cot of each seed, each after its seed's stage 0 (short: they fill the workers at the end)."""
    units = [(method, seed) for seed in config.seed_list for method in config.methods]
    if sum(m in SHARED_STAGE0 for m in config.methods) < 2:
        return units, [None] * len(units)
    plan: list[tuple[str, int]] = [(STAGE0, seed) for seed in config.seed_list]
    plan += [u for u in units if u[0] not in SHARED_STAGE0]  # the long ones before the short ones that wait
    after: list[int | None] = [None] * len(plan)
    for k, seed in enumerate(config.seed_list):
        for method in config.methods:
            if method in SHARED_STAGE0:
                plan.append((method, seed))
                after.append(k)
    return plan, after


def training_problems(config: LatentConfig) -> list:
    """The training graphs of ``config.seed``."""
    from reasonpipe.latent_train import problems

    return problems({**config.task_options, "split": "train"}, config.train_problems, "train", config.seed)


def held_out_problems(config: LatentConfig) -> dict[str, tuple[dict[str, Any], list]]:
    """Per evaluation set of ``config.seed``: its task options and its graphs (never trained on: split test)."""
    from reasonpipe.latent_train import problems

    return {name: ({**config.task_options, **opts},
                   problems({**config.task_options, **opts}, config.eval_problems, f"eval-{name}", config.seed))
            for name, opts in config.eval_sets.items()}


def trained_layout(config: LatentConfig, method: str) -> int:
    """The thought count a method is trained to use at its last stage (0 for cot and nocot)."""
    return config.stages * config.per_step if method in ("coconut", "pause") else 0


def pooled(points: list, method: str, eval_set: str, thoughts: int) -> Rate:
    """Every seed's problems of one method, set and thought count as one rate."""
    chosen = [p for p in points if (p.method, p.eval_set, p.thoughts) == (method, eval_set, thoughts)]
    return Rate(sum(p.correct for p in chosen), sum(p.problems for p in chosen))


def accuracy_rows(points: list) -> tuple[list[str], list[list[str]]]:
    """One row per method, set and thought count: every seed pooled (95% Wilson interval), each seed's accuracy,
    the mean extra positions and generated tokens, well-formed and claimed-but-wrong completions."""
    headers = ["method", "eval set", "thoughts", "accuracy [95%]", "per seed", "extra positions", "generated tokens",
               "well-formed", "claimed but wrong", "problems"]
    keys = sorted({(p.method, p.eval_set, p.thoughts) for p in points}, key=lambda k: (k[1], k[0], k[2]))
    rows = []
    for method, eval_set, m in keys:
        chosen = sorted((p for p in points if (p.method, p.eval_set, p.thoughts) == (method, eval_set, m)),
                        key=lambda p: p.seed)
        n = sum(p.problems for p in chosen)
        rows.append([method, eval_set, str(m), pooled(points, method, eval_set, m).text(),
                     " / ".join(f"{p.accuracy:.1%}" for p in chosen),
                     f"{sum(p.extra_positions for p in chosen) / len(chosen):.1f}",
                     f"{sum(p.mean_generated for p in chosen) / len(chosen):.1f}",
                     rate_text(sum(p.well_formed for p in chosen), n), rate_text(sum(p.claimed_wrong for p in chosen), n),
                     str(n)])
    return headers, rows


def pooled_tokens(config: LatentConfig, tokens: dict, method: str) -> float | None:
    """A method's teacher-forced task-token accuracy over every seed (None when none was measured)."""
    acc = [tokens[(method, s)] for s in config.seed_list if (method, s) in tokens]
    total = sum(t["task_total"] for t in acc)
    return sum(t["task_correct"] for t in acc) / total if total else None


def learning_verdicts(config: LatentConfig, points: list, tokens: dict, eval_set: str) -> dict[str, Verdict]:
    """Per method (seeds pooled): learned when its task-token accuracy and its accuracy at its trained layout pass
    :func:`reasonpipe.diagnostics.learned_verdict`, a guess (one of two candidates) solving half."""
    out = {}
    for method in config.methods:
        out[method] = learned_verdict(pooled_tokens(config, tokens, method),
                                      pooled(points, method, eval_set, trained_layout(config, method)), None,
                                      chance=CHANCE)
    return out


def headline_rows(config: LatentConfig, points: list, tokens: dict, verdicts: dict[str, Verdict],
                  eval_set: str) -> tuple[list[str], list[list[str]]]:
    """One row per method at its trained layout: pooled accuracy, each seed's, task-token accuracy, verdict."""
    headers = ["method", "thoughts", "accuracy [95%]", "per seed", "task-token acc.", "well-formed",
               "claimed but wrong", "verdict"]
    rows = []
    for method in config.methods:
        m = trained_layout(config, method)
        chosen = [p for p in points if (p.method, p.eval_set, p.thoughts) == (method, eval_set, m)]
        task = pooled_tokens(config, tokens, method)
        n = sum(p.problems for p in chosen)
        rows.append([method, str(m), pooled(points, method, eval_set, m).text(),
                     " / ".join(f"{p.accuracy:.1%}" for p in sorted(chosen, key=lambda p: p.seed)),
                     f"{task:.1%}" if task is not None else "-",
                     rate_text(sum(p.well_formed for p in chosen), n),
                     rate_text(sum(p.claimed_wrong for p in chosen), n), verdicts[method].reason])
    return headers, rows


SHARED = {("coconut", "pause"): "the same thought positions and schedule, no state fed back",
          ("coconut", "cot"): "the same schedule, thoughts instead of the written CoT",
          ("cot", "nocot"): "the same schedule, no chain of thought"}


def comparison_sentences(config: LatentConfig, points: list, verdicts: dict[str, Verdict], eval_set: str) -> str:
    """Coconut against its pause control and against CoT, and CoT against no CoT, in words: which is ahead (95%
    intervals apart). Between two learned methods that is a comparison of methods; when one learned the task and
    the other, with what the pair shares, did not and lies below it, that is the finding (a control failing where
    the method succeeds); when neither learned, or the one that did not is not below, nothing is shown."""
    out = []
    for (a, b), shared in SHARED.items():
        if a not in verdicts or b not in verdicts:
            continue
        ra = pooled(points, a, eval_set, trained_layout(config, a))
        rb = pooled(points, b, eval_set, trained_layout(config, b))
        learned = [m for m in (a, b) if verdicts[m].learned]
        if len(learned) == 1:
            won, lost = (a, b) if learned == [a] else (b, a)
            r_won, r_lost = (ra, rb) if won == a else (rb, ra)
            if r_won.above(r_lost):
                out.append(f"{a} {ra.text()} vs {b} {rb.text()}: {won} learned the task and {lost} did not, with "
                           f"{shared}: {won} is ahead (95% intervals apart).")
            else:
                out.append(f"{a} {ra.text()} vs {b} {rb.text()}: not meaningful, {lost} has not learned the task "
                           f"and is not below {won}.")
        elif not learned:
            out.append(f"{a} {ra.text()} vs {b} {rb.text()}: not meaningful, neither has learned the task.")
        elif ra.above(rb) or rb.above(ra):
            ahead, behind = (a, b) if ra.above(rb) else (b, a)
            out.append(f"{a} {ra.text()} vs {b} {rb.text()}: {ahead} is ahead of {behind} (95% intervals apart).")
        else:
            out.append(f"{a} {ra.text()} vs {b} {rb.text()}: the intervals overlap, no difference is shown.")
    return " ".join(out) if out else "No pair of methods to compare."


def evaluation_stage(config: LatentConfig, summaries: dict[tuple[str, int], dict[str, Any]]) -> Stage:
    """Evaluation and probe as the stage ``evaluate`` of ``out``: the config without ``out``, ``quiet`` and
    ``workers``, and each training's stage hash (``summaries[(method, seed)]["stage_hash"]``, :func:`train_stage`)."""
    resolved = {k: v for k, v in asdict(config).items() if k not in ("out", "quiet", "workers")}
    resolved["train_stages"] = {f"{method}/seed-{seed}": s["stage_hash"] for (method, seed), s in summaries.items()}
    return Stage("evaluate", config.out, resolved, outputs=["results.jsonl", "probe.jsonl"])


def evaluate_all(config: LatentConfig, units: list[tuple[str, int]]) -> dict[str, Any]:
    """Every trained model (``units``: method, seed) on every held-out set of its seed, its task-token accuracy on
    the first set, and the probe (first seed only) of the coconut and pause models and of an untrained model on
    that set's first ``probe_problems`` graphs, ``workers`` models at a time; writes ``results.jsonl`` and
    ``probe.jsonl``."""
    from reasonpipe.processes import spawn_map

    calls = [(replace(config, seed=seed), method, seed == config.seed) for method, seed in units]
    if "coconut" in config.methods:
        calls.append((config, "untrained", True))
    done = spawn_map(evaluate_unit, calls, config.workers)
    points = [p for d in done for p in d["points"]]
    tokens = [d["tokens"] for d in done if d["tokens"]]
    probes = {d["name"]: d["probe"] for d in done if d["probe"]}
    with atomic_write(os.path.join(config.out, "results.jsonl")) as f:
        for p in points:
            f.write(json.dumps(p) + "\n")
    with atomic_write(os.path.join(config.out, "probe.jsonl")) as f:
        for name, rows in probes.items():
            for r in rows:
                f.write(json.dumps({"model": name, **r}) + "\n")
    return {"points": points, "probe": probes, "tokens": tokens}


def evaluate_unit(config: LatentConfig, method: str, probed: bool) -> dict[str, Any]:
    """One model's share of :func:`evaluate_all` (module level: it runs in a spawned process): its points, its
    task-token accuracy, and, when ``probed`` (coconut, pause), its probe rows; ``method == "untrained"``: only the
    probe of a fresh model, the chance line."""
    from reasonpipe.latent_probe import probe
    from reasonpipe.latent_train import build_model, evaluate, load_trained, task_token_accuracy, tokenizer
    from reasonpipe.tasks import make_task

    held_out = held_out_problems(config)
    options, probs = next(iter(held_out.values()))
    task = make_task("reachability", **options)
    if method == "untrained":
        model = build_model(config, tokenizer(), config.seed).eval()
        rows = probe(config, model, task, probs[:config.probe_problems], method="coconut", name="untrained")
        return {"name": "untrained", "points": [], "tokens": None, "probe": [asdict(r) for r in rows]}
    model = load_trained(config, method)
    points = [asdict(p) for name, (opts, ps) in held_out.items() for p in evaluate(config, method, model, name, opts, ps)]
    tokens = task_token_accuracy(config, method, model, options, probs)
    rows = (probe(config, model, task, probs[:config.probe_problems], method=method)
            if probed and method in ("coconut", "pause") else [])
    return {"name": method, "points": points, "tokens": {"method": method, "seed": config.seed, **asdict(tokens)},
            "probe": [asdict(r) for r in rows]}


def train_stage(config: LatentConfig, method: str, train: list, advance) -> tuple[Any, dict[str, Any]]:
    """The training of one method (``config.seed``) as the stage ``models/<method>/seed-<seed>/train``: reused
    (the model loaded from ``final``) when it finished with the same
    :func:`~reasonpipe.latent_train.training_config`, resumed after its last finished curriculum stage when
    interrupted, trained afresh (the folder emptied) when it changed. The summary carries ``reused`` and the
    stage's ``stage_hash``. ``method`` :data:`~reasonpipe.latent_train.STAGE0`: the stage 0 that coconut, pause and
    cot share (output ``stage-0``; no model returned), trained first when two of them run."""
    from reasonpipe.latent_train import load_trained, model_folder, train_method, training_config

    stage = Stage("train", model_folder(config, method), training_config(config, method),
                  outputs=["stage-0" if method == STAGE0 else "final"], scratch=["*"])
    trained: list[Any] = []

    def fit() -> dict[str, Any]:
        model, summary = train_method(config, method, train, advance)
        trained.append(model)
        return summary

    summary = stage.run(fit)
    if method == STAGE0:
        return None, {**summary, "reused": stage.reused, "stage_hash": stage.hash}
    if stage.reused:
        advance(summary["steps"])
        return load_trained(config, method), {**summary, "reused": True, "stage_hash": stage.hash}
    return trained[0], {**summary, "reused": False, "stage_hash": stage.hash}


def train_unit(config: LatentConfig, method: str) -> dict[str, Any]:
    """:func:`train_stage` on ``config.seed``'s problems in a spawned process (progress as log lines every 30 s);
    its summary."""
    from reasonpipe.console import LineProgress

    from reasonpipe.latent_train import planned_steps

    lines = LineProgress(f"latent {method} seed {config.seed}", planned_steps(config, config.train_problems, method),
                         30.0)
    summary = train_stage(config, method, training_problems(config), (lambda k: None) if config.quiet else lines.advance)[1]
    if not config.quiet:
        lines.report(final=True)
    return summary


def plot_accuracy(points: list, path: str) -> None:
    """Accuracy (seeds pooled, 95% Wilson interval as error bars) against extra positions (thought block or CoT
    tokens), one panel per held-out set, the chance line (a guess between the two candidates) dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = sorted({p.eval_set for p in points})
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4), dpi=110, squeeze=False)
    for ax, name in zip(axes[0], sets):
        for method in sorted({p.method for p in points}):
            xs, ys, lo, hi = [], [], [], []
            for m in sorted({p.thoughts for p in points if (p.eval_set, p.method) == (name, method)}):
                chosen = [p for p in points if (p.eval_set, p.method, p.thoughts) == (name, method, m)]
                rate = pooled(points, method, name, m)
                low, high = rate.interval
                xs.append(sum(p.extra_positions for p in chosen) / len(chosen))
                ys.append(100 * rate.value)
                lo.append(max(0.0, 100 * (rate.value - low)))
                hi.append(max(0.0, 100 * (high - rate.value)))
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o-" if len(xs) > 1 else "s", capsize=3, label=method)
        ax.axhline(100 * CHANCE, color="k", ls="--", lw=0.8, label="chance")
        ax.set_title(f"held-out: {name}")
        ax.set_xlabel("extra positions before the answer")
        ax.set_ylabel("accuracy (%), 95% interval")
        ax.set_ylim(-2, 102)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)


def plot_probe(probes: dict[str, list], path: str) -> None:
    """Per thought: frontier recall of each probed model (coconut, pause, untrained: the chance line) with its 95%
    interval, and the coconut model's attention ratio per edge category (last layer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    for name, rows in probes.items():
        steps = [r.step for r in rows]
        err = [[max(0.0, r.reach_recall - r.reach_interval[0]) for r in rows],
               [max(0.0, r.reach_interval[1] - r.reach_recall) for r in rows]]
        left.errorbar(steps, [r.reach_recall for r in rows], yerr=err, fmt="o-", capsize=3,
                      label=f"{name}: reachable within t+1, recall@|F|")
    any_rows = next(iter(probes.values()))
    left.plot([r.step for r in any_rows], [r.chance for r in any_rows], "k--", label="|F|/nodes")
    left.set_xlabel("thought t")
    left.set_ylim(0, 1.05)
    left.legend(fontsize=7)
    rows = probes.get("coconut") or any_rows
    layers = sorted({layer for r in rows for layer in r.attention})
    if layers:
        last = layers[-1]
        width = 0.25
        steps = [r.step for r in rows]
        for i, c in enumerate(("frontier", "path", "unreachable")):
            right.bar([s + (i - 1) * width for s in steps], [r.attention.get(last, {}).get(c, 0.0) for r in rows],
                      width, label=c)
        right.axhline(1.0, color="k", lw=0.8)
        right.set_title(f"coconut: attention per edge / mean edge ({last})")
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
