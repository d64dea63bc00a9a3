"""The main job: trace datasets -> SFT of the models -> the parallel-versus-sequential evaluation -> a report,
in one run folder.

Each step below is a stage (:class:`reasonpipe.stage.Stage`): reused when it finished with the same resolved
config, resumed when it was interrupted, run afresh (its old files removed) when its config changed; a record
``<name>.stage.json`` (config, hash, summary) lies next to its outputs, and one line says why a stage was
reused or re-run. Run folders made before these records existed re-run every stage once.

1. For each dataset in the config (stage ``data/<name>``): generate it (reused while the request and the file's
   bytes are the recorded ones; an interrupted one continues from its ``.partial`` file), then verify every
   step exactly. ``trace_backend: auto`` generates on Ray actors inside a Ray job (``reasonpipe submit``) and
   in a local process pool otherwise; the bytes are the same either way.
2. For each model (stage ``models/<name>/sft``): SFT on its datasets (``reasonpipe.sft``; ``num_workers > 1``
   in its settings trains with Ray Train DDP); reused while its settings and the datasets' bytes are the
   same, resumed from its last complete checkpoint when interrupted.
3. Each evaluation grid (stage ``eval`` in ``eval/<grid>/``, the grid named by ``evaluate.N.name`` or its task;
   ``reasonpipe.evaluation``; ``workers > 1`` in its settings samples on Ray actors): a backtracking model with
   one sample at budget L against a direct model's best-of-n, with FLOPs, every answer checked by the exact
   verifier, whether each model has learned its task, and which strategy is ahead at equal compute (against
   the paper's direction where ``paper_direction`` names it); re-run when its settings or a model stage's
   config changed. Several grids (one per task, say) make one report.

The run folder ``runs/<name>/`` gets ``data/*.jsonl``, ``verdicts/*.jsonl``, ``models/<name>/``, ``eval/<grid>/``,
``metrics.jsonl`` (one row per dataset), ``report.md`` (the tables), ``trace_lengths.png``, ``backtracks.png``
and ``manifest.json``; every file is written to a temporary name and renamed. Exit 0 when every step of every
trace holds, 1 otherwise, 2 on a bad config.

Example::

    reasonpipe pipeline --config configs/demo-cpu.yaml --workers 1
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from reasonpipe.jobs import run_job
from reasonpipe.config import helptext, settings_block, to_dict
from reasonpipe.console import print_table, progress
from reasonpipe.errors import InputError
from reasonpipe.evaluation import EvalConfig
from reasonpipe.jsonl import atomic_write
from reasonpipe.manifest import write_manifest
from reasonpipe.report import histograms, markdown_table
from reasonpipe.stage import Stage
from reasonpipe.tracegen import GenRequest, GenSummary, fingerprint, generate
from reasonpipe.verify import verify_file
from reasonpipe.searchers import SearchOptions
from reasonpipe.sft import SFTConfig


@dataclass(kw_only=True)
class DatasetBlock(SearchOptions):
    """One trace dataset: a task, a searcher and its settings (``k``, ``beam``, ``heuristic``, ``threshold``,
    ``max_nodes``: :class:`~reasonpipe.searchers.SearchOptions`'), and the task's options."""

    name: str = field(metadata=helptext("the dataset's name: data/<name>.jsonl, and how models.N.data names it"))
    task: str = field(metadata=helptext("the task (countdown, sudoku, reachability, arc_1d, ...)"))
    searcher: str = field(default="dfs", metadata=helptext("dfs | bfs | beam | direct | kbacktrack (by task)"))
    n: int = field(default=1000, metadata=helptext("number of traces"))
    options: dict[str, Any] = field(default_factory=dict, metadata=helptext(
        "the task's options, e.g. {numbers: 4, split: train}, or !include tasks/countdown-3.yaml"))

    def __post_init__(self) -> None:  # the task, its options, the searcher and its settings, checked at load
        super().__post_init__()
        from reasonpipe.searchers import get_searcher
        from reasonpipe.tasks import check_options

        check_options(self.task, self.options, "options")
        try:
            get_searcher(self.task, self.searcher)
        except InputError as e:
            raise InputError(e.message, field="searcher") from None


SFTSettings = settings_block(SFTConfig, "SFTSettings", __name__, filled={
    "data": "the pipeline sets it from models.N.data", "out": "the pipeline sets it: runs/<name>/models/<model>"},
    inherited={"seed": "the pipeline's seed", "quiet": "the pipeline's quiet", "task": "its datasets' task"})
EvalSettings = settings_block(EvalConfig, "EvalSettings", __name__, filled={
    "out": "the pipeline sets it: runs/<name>/eval/<grid>", "backtrack_model": "the pipeline sets it from evaluate.N.backtrack",
    "direct_model": "the pipeline sets it from evaluate.N.direct"}, inherited={"seed": "the pipeline's seed"})


@dataclass
class ModelBlock:
    """One SFT run of the pipeline: the fields of reasonpipe.sft.SFTConfig, with ``data`` naming datasets."""

    name: str = field(metadata=helptext("the model's name: models/<name>/, and how evaluate names it"))
    data: list[str] = field(default_factory=list, metadata=helptext("the datasets it trains on, by name"))
    init_from: str = field(default="", metadata=helptext(
        "start from the final weights of an earlier model of this pipeline (by name) instead of settings.model: a "
        "curriculum stage; a retrained earlier model retrains this one"))
    settings: SFTSettings = field(default_factory=SFTSettings, metadata=helptext(  # type: ignore[valid-type]
        "its SFT settings: the fields of reasonpipe.sft.SFTConfig but data and out"))


@dataclass
class EvalBlock:
    """One evaluation grid: EvalConfig fields, with the models named by their pipeline names."""

    name: str = field(default="", metadata=helptext(
        "the grid's name: eval/<name>/ and its report section (empty: its task's name)"))
    backtrack: str = field(default="", metadata=helptext("the backtracking model (sequential), by name"))
    direct: str = field(default="", metadata=helptext("the direct model (parallel), by name"))
    settings: EvalSettings = field(default_factory=EvalSettings, metadata=helptext(  # type: ignore[valid-type]
        "the grid's settings: the fields of reasonpipe.evaluation.EvalConfig but out and the models"))


@dataclass
class PipelineConfig:
    """Trace datasets, SFT of models on them, the parallel-versus-sequential grid, in runs/<name>/."""

    name: str = field(default="demo-cpu", metadata=helptext("the run folder's name: runs_dir/<name>/"))
    seed: int = field(default=1, metadata=helptext(
        "seed of the datasets, and of the models and the grid where their settings set none"))
    workers: int = field(default=2, metadata=helptext("trace-generation workers (the bytes are the same for any count)"))
    model_workers: int = field(default=1, metadata=helptext(
        "models trained at once, each in its own process (one thread each: on a 2-core machine, 2 trains two models "
        "side by side in the time of one); the models are the same for any count"))
    trace_backend: str = field(default="auto", metadata=helptext(
        "auto (ray inside a Ray job, else process) | ray | process"))
    runs_dir: str = field(default="runs", metadata=helptext("folder of the run folders"))
    quiet: bool = field(default=False, metadata=helptext("no progress bars or log lines"))
    datasets: list[DatasetBlock] = field(default_factory=list, metadata=helptext("the trace datasets"))
    models: list[ModelBlock] = field(default_factory=list, metadata=helptext("the models trained by SFT"))
    evaluate: list[EvalBlock] = field(default_factory=list, metadata=helptext(
        "the evaluation grids, e.g. one per task (none: no grid)"))


def trace_backend(choice: str) -> str:
    """``auto``: Ray actors when this process runs inside a Ray job (or is connected to a Ray), else a process
    pool (starting a Ray per dataset would cost more than it saves)."""
    if choice not in ("auto", "ray", "process"):
        raise InputError(f"unknown trace_backend {choice!r} (auto | ray | process)", field="trace_backend")
    if choice != "auto":
        return choice
    import ray

    return "ray" if ray.is_initialized() or os.environ.get("RAY_ADDRESS", "local") != "local" else "process"


def _gen_request(config: PipelineConfig, ds: DatasetBlock, out: str) -> GenRequest:
    return GenRequest(task=ds.task, searcher=ds.searcher, out=out, n=ds.n, seed=config.seed, workers=config.workers,
                      task_options=dict(ds.options), backend=trace_backend(config.trace_backend),
                      search=SearchOptions.of(ds))


def _generate_or_reuse(request: GenRequest, name: str, quiet: bool) -> tuple[GenSummary, bool]:
    """The dataset stage (:class:`reasonpipe.stage.Stage` ``<name>`` in ``data/``): reused when it finished with
    the same request and its file still has the recorded bytes, resumed from ``<out>.partial`` when
    interrupted, generated afresh when the request changed."""
    out = os.path.basename(request.out)
    stage = Stage(name, os.path.dirname(request.out), fingerprint(request), outputs=[out],
                  scratch=[out + ".partial", out + ".partial.json", out + ".done.json"])  # .done.json: old marker

    def gen() -> dict[str, Any]:
        with progress(f"gen {out}", request.n, quiet) as advance:
            return dataclasses.asdict(generate(request, progress=advance, resume=True))

    summary = stage.run(gen)
    return GenSummary(**{k: v for k, v in summary.items() if k != "errors"}), stage.reused


def check(config: PipelineConfig) -> None:
    """The cross-references, before any work starts (every block was built and checked at load, task options and
    searchers included): at least one dataset, every model's datasets and the evaluation's models named in the
    config. InputError naming the field."""
    if not config.datasets:
        raise InputError("no datasets to build", field="datasets")
    names = [d.name for d in config.datasets]
    for i, spec in enumerate(config.models):
        missing = [d for d in spec.data if d not in names]
        if missing or not spec.data:
            raise InputError(f"model {spec.name}: unknown datasets {missing} (known: {', '.join(names)})",
                             field=f"models.{i}.data")
        tasks = sorted({d.task for d in config.datasets if d.name in spec.data})
        if len(tasks) > 1:
            raise InputError(f"model {spec.name}: its datasets are of different tasks ({', '.join(tasks)}); one "
                             "model trains on one task's traces", field=f"models.{i}.data")
        earlier = [m.name for m in config.models[:i]]
        if spec.init_from and spec.init_from not in earlier:
            raise InputError(f"model {spec.name}: init_from must name an earlier model (earlier: "
                             f"{', '.join(earlier) or 'none'})", field=f"models.{i}.init_from")
    models = {m.name for m in config.models}
    grids: list[str] = []
    for i, spec in enumerate(config.evaluate):
        for role in ("backtrack", "direct"):
            name = getattr(spec, role)
            if name and name not in models:
                raise InputError(f"no model named {name!r} (known: {', '.join(sorted(models))})",
                                 field=f"evaluate.{i}.{role}")
        if grid_name(spec) in grids:
            raise InputError(f"two grids named {grid_name(spec)!r}: give each a name", field=f"evaluate.{i}.name")
        grids.append(grid_name(spec))


def grid_name(spec: EvalBlock) -> str:
    """A grid's name: its own, else its task's."""
    return spec.name or spec.settings.task or EvalConfig.task


def main(config: PipelineConfig) -> int:
    check(config)
    run_dir = os.path.join(config.runs_dir, config.name)
    files, all_valid, sections = build_datasets(config, run_dir)
    trained = train_models(config, run_dir, files)
    if trained:
        sections.append(("Models (SFT)", *_model_table(trained)))
    sentences = []
    for spec in config.evaluate:
        headers, rows, extra, sentence = _evaluate(config, spec, run_dir, trained)
        sections.append((f"Parallel vs sequential: {grid_name(spec)}", headers, rows, extra))
        sentences.append(sentence)
    if sentences:
        sections.append(("Which strategy is ahead at equal compute?", [], [], "\n".join(f"- {s}" for s in sentences)
                         + "\n"))
    with atomic_write(os.path.join(run_dir, "report.md")) as f:
        f.write(f"# {config.name}\n\nSeed {config.seed}. Every step of every trace verified exactly "
                f"({'all hold' if all_valid else 'SOME STEPS DO NOT HOLD'}).\n")
        for title, headers, rows, extra in sections:
            f.write(f"\n## {title}\n\n" + (markdown_table(headers, rows) if headers else "") + extra)
    write_manifest(run_dir, to_dict(config), config.seed, files)
    for title, headers, rows, extra in sections:
        if not headers:
            print(f"{run_dir}: {title.lower()}\n{extra}")
            continue
        keep = [0, 2, 3, 4, 5, 6, 8, 12, 13, 14] if title == "Trace datasets" else list(range(len(headers)))
        print_table(f"{run_dir}: {title.lower()}", [[str(r[i]) for i in keep] for r in rows], [headers[i] for i in keep])
    print(f"report: {os.path.join(run_dir, 'report.md')}")
    return 0 if all_valid else 1


def build_datasets(config: PipelineConfig, run_dir: str):
    """Generate (or reuse) and verify every dataset; their table and plots."""
    rows, metrics, lengths, backtracks, files = [], [], {}, {}, {}
    for ds in config.datasets:
        out = os.path.join(run_dir, "data", f"{ds.name}.jsonl")
        request = _gen_request(config, ds, out)
        gen, resumed = _generate_or_reuse(request, ds.name, config.quiet)
        with progress(f"verify {ds.name}", ds.n, config.quiet) as advance:
            ver = verify_file(out, out=os.path.join(run_dir, "verdicts", f"{ds.name}.jsonl"), per_trace=True,
                              progress=advance)
        files[ds.name] = out
        lengths[ds.name] = [t[0] for t in ver.per_trace]
        backtracks[ds.name] = [t[4] for t in ver.per_trace]
        n = max(gen.traces, 1)
        row = {"dataset": ds.name, "task": ds.task, "backend": request.backend, "searcher": ds.searcher + (f" k={ds.k}" if ds.searcher == "kbacktrack" else ""),
               "traces": gen.traces, "solved": gen.solved / n, "mean_chars": gen.chars / n, "mean_tokens": gen.tokens / n,
               "mean_backtracks": gen.backtracks / n, "mean_nodes": gen.nodes_expanded / n, "steps": ver.steps,
               **ver.counts, "valid": ver.valid / max(ver.traces, 1),
               "gen_traces_per_s": None if resumed else gen.traces / max(gen.seconds, 1e-9),
               "verify_steps_per_s": ver.steps / max(ver.seconds, 1e-9), "resumed": resumed}
        metrics.append(row)
        rows.append([ds.name, row["searcher"], gen.traces, f"{row['solved']:.1%}", f"{row['mean_tokens']:.0f}",
                     f"{row['mean_backtracks']:.2f}", ver.steps, ver.counts["proved"], ver.counts["refuted"],
                     ver.counts["no_check"], ver.counts["unformalizable"], ver.counts["error"], f"{row['valid']:.1%}",
                     "resumed" if resumed else f"{row['gen_traces_per_s']:.0f}", f"{row['verify_steps_per_s']:,.0f}"])
    headers = ["dataset", "searcher", "traces", "solved", "mean tokens", "mean backtracks", "steps", "proved",
               "refuted", "no_check", "unformalizable", "error", "valid", "gen traces/s", "verify steps/s"]
    with atomic_write(os.path.join(run_dir, "metrics.jsonl")) as f:
        for row in metrics:
            f.write(json.dumps(row) + "\n")
    histograms(os.path.join(run_dir, "trace_lengths.png"), lengths, xlabel="trace length (characters)",
               title=f"{config.name}: trace lengths", log_x=True)
    histograms(os.path.join(run_dir, "backtracks.png"), backtracks, xlabel="backtracks per trace",
               title=f"{config.name}: backtracks per trace", bins=40, share_x=False)
    all_valid = all(m["valid"] == 1.0 for m in metrics)
    extra = "\n![trace lengths](trace_lengths.png)\n\n![backtracks](backtracks.png)\n"
    return files, all_valid, [("Trace datasets", headers, rows, extra)]


def sft_config(config: PipelineConfig, spec: ModelBlock, run_dir: str, files: dict[str, str]) -> SFTConfig:
    """The SFT config of model ``spec``: its settings, the pipeline's seed and quiet and its datasets' task where
    they set none, its datasets' files and its folder ``models/<name>/``."""
    inherit = {"seed": config.seed, "quiet": config.quiet}
    inherit.update({"task": d.task for d in config.datasets if d.name in spec.data})  # one task (check)
    cfg = spec.settings.resolve(inherit, data=[files[d] for d in spec.data],
                                out=os.path.join(run_dir, "models", spec.name))
    if spec.init_from:
        cfg = dataclasses.replace(cfg, model=os.path.join(run_dir, "models", spec.init_from, "final"))
    return cfg


def eval_config(config: PipelineConfig, spec: EvalBlock, run_dir: str) -> EvalConfig:
    """A grid's config: its settings, the pipeline's seed where they set none, the models' final checkpoints and
    the folder ``eval/<grid>/``."""
    paths = {role: os.path.join(run_dir, "models", name, "final") if name else ""
             for role, name in (("backtrack_model", spec.backtrack), ("direct_model", spec.direct))}
    return spec.settings.resolve({"seed": config.seed}, **paths, out=os.path.join(run_dir, "eval", grid_name(spec)))


def train_model(config: PipelineConfig, spec: ModelBlock, run_dir: str, files: dict[str, str]) -> dict[str, Any]:
    """SFT of one model: the stage ``sft`` of ``models/<name>/``, reused when it finished with the same settings
    and data, resumed from its last complete checkpoint when interrupted, trained afresh when they changed."""
    from reasonpipe.sft import train

    missing = [d for d in spec.data if d not in files]
    if missing or not spec.data:
        raise InputError(f"model {spec.name}: unknown datasets {missing} (known: {', '.join(files)})",
                         field=f"models.{spec.name}.data")
    cfg = sft_config(config, spec, run_dir, files)
    out = cfg.out
    resolved = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "quiet"}
    inputs = {d: files[d] for d in spec.data}
    if spec.init_from:
        inputs["init_from"] = cfg.model  # the earlier model's weights: retrained, this one retrains
    stage = Stage("sft", out, resolved, inputs=inputs, outputs=["final", "summary.json"], scratch=["*"])
    summary = stage.run(lambda: train(cfg))
    return {**summary, "reused": stage.reused, "stage_hash": stage.hash}


def train_models(config: PipelineConfig, run_dir: str, files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every model's SFT stage, ``model_workers`` at a time in spawned processes (each stage is its own folder and
    record, so they share only the datasets they read), in waves: a model starting from another (``init_from``)
    trains after it."""
    from reasonpipe.processes import spawn_map

    waves: list[list[ModelBlock]] = []  # a model trains in the wave after the one that trains its init_from
    wave_of: dict[str, int] = {}
    for m in config.models:
        w = wave_of[m.init_from] + 1 if m.init_from else 0
        wave_of[m.name] = w
        waves += [[] for _ in range(w + 1 - len(waves))]
        waves[w].append(m)
    trained: dict[str, dict[str, Any]] = {}
    for wave in waves:
        summaries = spawn_map(train_model, [(config, m, run_dir, files) for m in wave], config.model_workers,
                              field="model_workers")
        trained.update({m.name: s for m, s in zip(wave, summaries)})
    return {m.name: trained[m.name] for m in config.models}


def _model_table(trained: dict[str, dict[str, Any]]):
    headers = ["model", "parameters", "examples", "dropped (too long)", "steps", "tokens seen", "first loss",
               "last loss", "held-out task-token acc.", "tokens/s", "device"]

    def task_acc(s: dict[str, Any]) -> str:
        d = s.get("diagnostics") or {}
        return "-" if d.get("task_token_accuracy") is None else f"{d['task_token_accuracy']:.1%} ({d['traces']} traces)"

    rows = [[name, f"{s['parameters']:,}", s["data"]["examples"], s["data"]["dropped_too_long"], s["steps"],
             f"{s['tokens_seen_this_run']:,}" + (" (reused)" if s.get("reused") else ""),
             f"{s['first_loss']:.3f}" if s["first_loss"] is not None else "-",
             f"{s['last_loss']:.3f}" if s["last_loss"] is not None else "-", task_acc(s),
             f"{s['tokens_per_second']:,.0f}" if s["tokens_per_second"] else "-", s["device"]]
            for name, s in trained.items()]
    return headers, rows, ""


def _evaluate(config: PipelineConfig, spec: EvalBlock, run_dir: str, trained: dict[str, dict[str, Any]]):
    """One grid's stage (reused, resumed or re-run like every stage): its table, plot, learning section and the
    sentence on which strategy is ahead."""
    from reasonpipe.evaluation import (HEADERS, ModelDiagnostics, diagnostics_section, direction_sentence, rows_of,
                                       run_eval)
    from reasonpipe.strategies import Point

    cfg = eval_config(config, spec, run_dir)
    models = {role: trained[name]["stage_hash"] for role, name in (("backtrack_model", spec.backtrack),
                                                                     ("direct_model", spec.direct)) if name}
    resolved = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "workers"}  # workers: the same samples
    stage = Stage("eval", cfg.out, {**resolved, "model_stages": models},
                  outputs=["results.jsonl", "diagnostics.json", "accuracy_vs_flops.png"], scratch=["*"])
    summary = stage.run(lambda: {"points": [dataclasses.asdict(p) for p in
                                            run_eval(cfg, log=lambda msg: None if config.quiet else print(msg))]})
    points = [Point(**p) for p in summary["points"]]
    with open(os.path.join(cfg.out, "diagnostics.json"), encoding="utf-8") as f:
        diagnostics = [ModelDiagnostics(**d) for d in json.load(f)]
    plot = os.path.relpath(os.path.join(cfg.out, "accuracy_vs_flops.png"), run_dir)
    return (HEADERS, rows_of(points), f"\n![accuracy vs FLOPs]({plot})\n\n" + diagnostics_section(diagnostics),
            direction_sentence(cfg, points, diagnostics))


def cli(argv: list[str] | None = None) -> int:
    return run_job("pipeline", "pipeline", __doc__, PipelineConfig, main, argv,
                   "interrupted (finished stages are kept and reused on the next run)")


if __name__ == "__main__":
    sys.exit(cli())
