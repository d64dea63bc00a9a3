"""RL with verifier rewards: TRL's ``GRPOTrainer`` on a task's problems, from an SFT checkpoint or from scratch.

A run generates ``problems`` training problems (seeded), rolls out ``num_generations`` completions per
prompt (transformers ``generate``; or TRL's vLLM integration with ``use_vllm``: colocated in the trainer, or a
server the job starts or names by URL, :mod:`reasonpipe.vllm_server`), scores them with a verifier
reward (:mod:`reasonpipe.rewards`: correctness, shaped or step score) and takes GRPO steps. Every
``probe_every`` steps (and before the first and after the last) it samples ``max(probe_ks)`` completions for
each of a fixed set of held-out probe problems and logs pass@k, so the run shows what RL does to diversity
(To Backtrack or Not: GRPO lifted pass@1 while pass@32 fell). Everything TRL logs (reward, its std,
completion length, entropy, KL) goes to ``metrics.jsonl`` with the probe rows; ``report.md`` has the
before/after table and ``grpo.png`` the curves. ``fused_logprobs: true`` computes the per-token log-probabilities
and entropies with :mod:`reasonpipe.kernels.logprob` (:func:`reasonpipe.trl_compat.fused_logprob_trainer_class`)
instead of TRL's fused LM head.

Warm start: ``model`` is an SFT run's ``final`` folder (its tokenizer and text format beside it; a LoRA adapter
folder keeps training its adapter). Cold start: ``model`` is a size name (``tiny``, ``3M``, ...) and the task
tokenizer is built. A pretrained model (a folder or hub id, ``tokenizer: model``) is prompted in its text format
(:mod:`reasonpipe.textformat`): plain or chat, and in the ``answer`` layout (TinyZero, How Much Backtracking) its
reward is the task's exact scorer on the ``<answer>`` content. The text format of a warm start is the one saved
beside it; the config's ``tokenizer``/``format``/``layout`` must agree with it. ``resume: auto`` continues from the last
checkpoint (TRL restores optimizer, scheduler, RNG and step); the prompt order is TRL's seeded sampler.

Data-parallel (``num_workers > 1``): the same loop on Ray Train workers, the global batch split over them, the
rollouts seeded per row so that any number of workers samples the same completions (see :func:`train`); with a
vLLM server, rank 0 asks it for every worker's rollouts in one seeded request.

What it does not do: no reference-model KL unless ``beta > 0`` (the paper's runs used 0); no reward
normalisation beyond GRPO's group baseline; the probe's pass@k uses the unbiased estimator over
``max(probe_ks)`` samples.

Example::

    reasonpipe rl --config configs/grpo-cpu.yaml   # after make demo (warm-starts its direct model)
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from reasonpipe.config import helptext
from reasonpipe.errors import InputError
from reasonpipe.jsonl import atomic_write, drop_rows_after
from reasonpipe.models import absolute_if_folder, resolve_device, resolve_model
from reasonpipe.rewards import make_reward
from reasonpipe.seeds import stream
from reasonpipe.textformat import TextFormat
from reasonpipe.trainer_args import TrainerSettings, tracking, trl_arguments, trl_report_to
from reasonpipe.trl_compat import GRADIENT_CHECKPOINTING_HELP
from reasonpipe.vllm_server import ServerSettings


@dataclass
class RLConfig(TrainerSettings):
    """One GRPO run (YAML keys; ``--key value`` overrides)."""

    model: str = field(default="tiny", metadata=helptext(
        "an SFT checkpoint folder (warm start), a size name (cold start), or a pretrained model folder or hub id"))
    out: str = field(default="runs/grpo", metadata=helptext("run folder: checkpoints/, final/, metrics.jsonl, report.md, "
                                                      "grpo.png"))
    task: str = field(default="countdown", metadata=helptext("the task: its problems, tokenizer and verifier"))
    task_options: dict[str, Any] = field(default_factory=dict, metadata=helptext("the task's options for the training "
                                                                           "problems"))
    probe_task_options: dict[str, Any] = field(default_factory=dict, metadata=helptext(
        "the task's options for the probe problems (empty: task_options)"))
    reward: str = field(default="correctness", metadata=helptext("correctness | shaped | step_score"))
    problems: int = field(default=512, metadata=helptext("training problems (prompts)"))
    probe_problems: int = field(default=32, metadata=helptext("held-out problems of the pass@k probe"))
    probe_ks: list[int] = field(default_factory=lambda: [1, 2, 4, 8], metadata=helptext(
        "the k of pass@k at each probe (max(probe_ks) samples per problem)"))
    probe_every: int = field(default=10, metadata=helptext("steps between probes; 0: only before and after"))
    probe_temperature: float = field(default=1.0, metadata=helptext("sampling temperature of the probe"))
    num_generations: int = field(default=8, metadata=helptext("completions per prompt (the GRPO group)"))
    prompts_per_step: int = field(default=4, metadata=helptext("prompts per optimizer step (each with num_generations "
                                                         "completions)"))
    max_steps: int = field(default=50, metadata=helptext("optimizer steps"))
    lr: float = field(default=1e-4, metadata=helptext("learning rate"))
    beta: float = field(default=0.0, metadata=helptext("KL coefficient (0: no reference model)"))
    temperature: float = field(default=1.0, metadata=helptext("sampling temperature of the rollouts"))
    max_completion_length: int = field(default=128, metadata=helptext("generated tokens per completion, at most"))
    save_every: int = field(default=10, metadata=helptext("steps between checkpoints"))
    keep_checkpoints: int = field(default=2, metadata=helptext("checkpoints kept (the oldest removed)"))
    log_every: int = field(default=1, metadata=helptext("steps between metrics.jsonl rows"))
    seed: int = field(default=0, metadata=helptext("seed of the problems, the model's initialisation and the sampling"))
    resume: str = field(default="auto", metadata=helptext("auto | never | a checkpoint folder"))
    device: str = field(default="auto", metadata=helptext("auto | cpu | cuda"))
    bf16: bool = field(default=True, metadata=helptext("on CUDA"))
    use_vllm: bool = field(default=False, metadata=helptext("rollouts through TRL's vLLM integration"))
    gradient_checkpointing: bool = field(default=False, metadata=helptext(GRADIENT_CHECKPOINTING_HELP))
    fused_logprobs: bool = field(default=False, metadata=helptext(
        "per-token log-probs/entropies by reasonpipe.kernels.logprob (reasonpipe.trl_compat.fused_logprob_trainer_class)"))
    vllm_mode: str = field(default="colocate", metadata=helptext(
        "colocate (vLLM in the trainer's process) | server (a vLLM server: vllm_server)"))
    vllm_server: ServerSettings = field(default_factory=ServerSettings, metadata=helptext(
        "vllm_mode server: the server the job starts or names by url (reasonpipe.vllm_server)"))
    quiet: bool = field(default=False, metadata=helptext("no progress bar or log lines (metrics.jsonl only)"))
    num_workers: int = field(default=1, metadata=helptext(
        "data-parallel training processes; > 1: DDP on Ray Train (reasonpipe.distributed), the same global batch "
        "(prompts_per_step x num_generations, split over the workers)"))
    max_failures: int = field(default=2, metadata=helptext(
        "num_workers > 1: restarts from the last checkpoint after a worker dies (-1: no limit)"))

    def __post_init__(self) -> None:  # the task's options, checked at load
        from reasonpipe.tasks import check_options

        check_options(self.task, self.task_options, "task_options")
        check_options(self.task, self.probe_task_options or self.task_options, "probe_task_options")
        super().__post_init__()

    def validate(self) -> None:
        if self.num_generations < 2:
            raise InputError("GRPO needs at least 2 generations per prompt", field="num_generations")
        if self.prompts_per_step < 1 or self.max_steps < 1 or self.problems < 1:
            raise InputError("prompts_per_step, max_steps and problems must be >= 1", field="max_steps")
        if not self.probe_ks or min(self.probe_ks) < 1:
            raise InputError("probe_ks must be positive integers", field="probe_ks")
        if self.resume not in ("auto", "never") and not os.path.isdir(self.resume):
            raise InputError("resume must be auto, never or a checkpoint folder", field="resume")
        if self.vllm_mode not in ("colocate", "server"):
            raise InputError(f"unknown vllm_mode {self.vllm_mode!r} (colocate | server)", field="vllm_mode")
        if self.num_workers < 1:
            raise InputError(f"num_workers must be at least 1, not {self.num_workers}", field="num_workers")
        if (self.prompts_per_step * self.num_generations) % self.num_workers:
            raise InputError(f"the global batch ({self.prompts_per_step} prompts x {self.num_generations} "
                             f"generations) must split evenly over {self.num_workers} workers", field="num_workers")
        if self.num_workers > 1 and self.use_vllm and self.vllm_mode != "server":
            raise InputError("colocated vLLM with num_workers > 1 is not supported: use vllm_mode server (rank 0 "
                             "asks one server for every worker's rollouts)", field="vllm_mode")
        if self.num_workers > 1 and self.max_failures < -1:
            raise InputError("max_failures must be -1 (no limit) or at least 0", field="max_failures")


def check(cfg: RLConfig) -> Any:
    """Settings that cannot work, stopped before anything is written (the job calls it first): the config's own
    checks, the model with its tokenizer and format (:func:`reasonpipe.models.check_model`), a warm start's saved
    format against the config's, the layout for the task, the ``trl:`` pass-through. Returns the model check."""
    from reasonpipe.models import check_model
    from reasonpipe.tasks import make_task

    cfg.validate()
    fmt = cfg.text_format()
    found = check_model(cfg.model, fmt, cfg.task)
    if cfg.use_vllm and found.source.kind == "size":
        raise InputError("use_vllm needs a checkpoint folder as model (vLLM loads it from disk)", field="model")
    if cfg.use_vllm and cfg.vllm_mode == "server":
        if cfg.lora.enabled or os.path.isfile(os.path.join(found.source.path, "adapter_config.json")):
            raise InputError("vllm_mode server serves a whole model: train without LoRA, or merge the adapter first "
                             "(lora.merge: true in the run that trained it) and start from merged/", field="lora")
        if cfg.vllm_server.weight_sync == "nccl" and resolve_device(cfg.device) != "cuda":
            raise InputError("weight_sync nccl pushes the weights over NCCL, which needs CUDA: use disk",
                             field="vllm_server.weight_sync")
    if found.source.kind != "size" and os.path.isfile(os.path.join(found.source.path, "format.json")):
        saved = TextFormat.load(found.source.path)
        if saved != fmt:
            raise InputError(f"{cfg.model} was trained in {saved}; set tokenizer, format, layout and system to match",
                             field="layout")
    cfg.check_settings(found.source.kind, make_task(cfg.task, **cfg.task_options), lambda: grpo_config(cfg), cfg.out)
    return found


def make_problems(cfg: RLConfig) -> tuple[Any, list[Any], list[Any]]:
    """The task, the training problems and the probe problems (disjoint seed streams)."""
    from reasonpipe.tasks import make_task

    task = make_task(cfg.task, **cfg.task_options)
    probe_task = make_task(cfg.task, **(cfg.probe_task_options or cfg.task_options))
    train = [task.generate(stream("reasonpipe", cfg.seed, i)) for i in range(cfg.problems)]
    probe = [probe_task.generate(stream("rl-probe", cfg.seed, i)) for i in range(cfg.probe_problems)]
    return task, train, probe


def load_policy(cfg: RLConfig) -> tuple[Any, Any]:
    """(model, tokenizer): a checkpoint or pretrained folder (an adapter folder on its base model, the adapter
    training on), LoRA added when asked, or a fresh model of a named size with the task tokenizer."""
    import torch

    from reasonpipe.models import build_model, load_causal_lm, load_tokenizer
    from reasonpipe.tokenizer import TaskTokenizer

    source = resolve_model(cfg.model)
    if source.kind == "size":
        hf = TaskTokenizer.for_task(cfg.task).hf()
        return build_model(cfg.model, hf, max_positions=max(512, 2 * cfg.max_completion_length), seed=cfg.seed), hf
    hf = load_tokenizer(source.path)
    return cfg.with_lora(load_causal_lm(source.path, trainable=True, dtype=torch.float32)), hf


def probe_pass_at_k(model: Any, hf: Any, task: Any, problems: list[Any], cfg: RLConfig, seed: int) -> dict[str, float]:
    """pass@k for every k in ``probe_ks`` on the probe problems, from ``max(probe_ks)`` samples each, and the
    learning diagnostics over those samples (:mod:`reasonpipe.diagnostics`: well-formed, claimed, claimed but
    wrong, as fractions of all samples)."""
    from reasonpipe.diagnostics import completion_stats
    from reasonpipe.sampling import HFSampler
    from reasonpipe.strategies import judge, pass_at_k

    n = max(cfg.probe_ks)
    fmt = cfg.text_format()
    prompts = [fmt.user_text(task, p) for p in problems]
    was_training = model.training
    model.eval()
    try:
        sampler = HFSampler.from_model(model, hf, batch_size=256, text_format=fmt)
        samples = sampler.sample(prompts, n, cfg.max_completion_length, cfg.probe_temperature, seed)
    finally:
        model.train(was_training)
    correct = [sum(judge(task, p, q, c, text_format=fmt).correct for c in cs)
               for p, q, cs in zip(problems, prompts, samples)]
    out = {f"probe/pass@{k}": sum(pass_at_k(n, c, k) for c in correct) / len(problems) for k in sorted(cfg.probe_ks)}
    out["probe/mean_tokens"] = sum(c.tokens for cs in samples for c in cs) / (n * len(problems))
    flat = [(p, task.prompt(p), c) for p, cs in zip(problems, samples) for c in cs]
    stats = completion_stats(task, [f[0] for f in flat], [f[1] for f in flat], [f[2].text for f in flat],
                             [f[2].finished for f in flat], text_format=fmt)
    for name in ("well_formed", "claimed", "claimed_wrong"):
        out[f"probe/{name}"] = getattr(stats, name) / max(stats.n, 1)
    out["probe/samples"] = stats.n
    return out


def _callbacks(cfg: RLConfig, task: Any, probe: list[Any], hf: Any, metrics_path: str, started: float,
               probes: list[dict]):
    from transformers import TrainerCallback

    def write(row: dict) -> None:
        with open(metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    class Metrics(TrainerCallback):
        """Every TRL log row to metrics.jsonl."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs:
                write({"step": state.global_step, "time": round(time.time() - started, 3), **logs})

    class Probe(TrainerCallback):
        """pass@k on the fixed probe set: before the first step, every ``probe_every`` steps, after the last."""

        def _probe(self, state, model) -> None:
            if any(p["step"] == state.global_step for p in probes):
                return
            row = {"step": state.global_step, "time": round(time.time() - started, 3),
                   **probe_pass_at_k(model, hf, task, probe, cfg, seed=cfg.seed)}
            probes.append(row)
            write(row)

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if state.global_step == 0:
                self._probe(state, model)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if cfg.probe_every and state.global_step % cfg.probe_every == 0:
                self._probe(state, model)

        def on_train_end(self, args, state, control, model=None, **kwargs):
            self._probe(state, model)

    return [Metrics(), Probe()]




# GRPOConfig fields reasonpipe sets -> the RLConfig field to set instead
TRL_HOMES = {"per_device_train_batch_size": "prompts_per_step", "num_generations": "num_generations",
             "max_completion_length": "max_completion_length", "temperature": "temperature", "beta": "beta",
             "learning_rate": "lr", "max_steps": "max_steps", "logging_steps": "log_every", "save_steps": "save_every",
             "save_total_limit": "keep_checkpoints", "seed": "seed", "data_seed": "seed", "bf16": "bf16",
             "use_cpu": "device", "report_to": "report_to", "disable_tqdm": "quiet", "use_vllm": "use_vllm",
             "vllm_mode": "vllm_mode", "gradient_checkpointing": "gradient_checkpointing", "output_dir": "out",
             "vllm_server_base_url": "vllm_server.url", "vllm_server_host": "vllm_server.url",
             "vllm_server_port": "vllm_server.url", "vllm_server_timeout": "vllm_server.start_timeout"}


def grpo_config(cfg: RLConfig, world: int = 1):
    """TRL's GRPOConfig for ``cfg`` on ``world`` data-parallel processes (each a slice of the global batch):
    reasonpipe's settings and the ``trl:`` pass-through (:func:`reasonpipe.trainer_args.trl_arguments`)."""
    from trl import GRPOConfig

    cuda = resolve_device(cfg.device) == "cuda"
    owned = dict(
        output_dir=os.path.join(cfg.out, "checkpoints"),
        per_device_train_batch_size=cfg.prompts_per_step * cfg.num_generations // world,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        beta=cfg.beta,
        learning_rate=cfg.lr,
        max_steps=cfg.max_steps,
        logging_steps=cfg.log_every,
        save_steps=cfg.save_every,
        save_total_limit=cfg.keep_checkpoints,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=cuda and cfg.bf16,
        use_cpu=not cuda,
        report_to=trl_report_to(cfg.report_to),
        disable_tqdm=cfg.quiet or not sys.stderr.isatty(),  # in a log: progress lines instead
        remove_unused_columns=False,  # the rewards read the `problem` column
        use_vllm=cfg.use_vllm,
        vllm_mode=cfg.vllm_mode,
        vllm_server_base_url=cfg.vllm_server.url or None,  # a server the job starts: its client finds it
        vllm_server_host="0.0.0.0",  # TRL's defaults, owned so that trl: refuses them (home: vllm_server.url)
        vllm_server_port=8000,
        vllm_server_timeout=cfg.vllm_server.start_timeout,
        save_only_model=False,
        gradient_checkpointing=cfg.gradient_checkpointing,
    )
    return trl_arguments(GRPOConfig, owned, cfg.trl, TRL_HOMES)


def make_trainer(cfg: RLConfig, model: Any, hf: Any, dataset: Any, reward: Any, callbacks: list,
                 probe_ids: list[int] | None = None, world: int = 1, run_folder: str | None = None,
                 server: Any = None):
    """TRL's GRPO trainer (the fused-log-prob one with ``fused_logprobs``), its transformers rollouts seeded per
    row of the global batch (:func:`reasonpipe.trl_compat.seeded_rollout_trainer_class`), for ``cfg`` on ``world``
    processes; ``probe_ids``: a prompt's ids (:meth:`reasonpipe.textformat.TextFormat.prompt_ids`), the check of
    every weight sync on CPU-colocated vLLM or a server, which need them; ``run_folder``: where the trackers write
    (default ``cfg.out``); ``server``: in ``vllm_mode: server``, the
    :class:`reasonpipe.vllm_server.ManagedServer` the rollouts come from."""
    from trl import GRPOTrainer

    from reasonpipe.trl_compat import (check_trl, fused_logprob_trainer_class, seeded_rollout_trainer_class,
                                       use_cpu_weight_sync, use_server_weight_sync, vllm_server_client)

    check_trl()

    cuda = resolve_device(cfg.device) == "cuda"
    args = grpo_config(cfg, world)
    callbacks = list(callbacks) + tracking(cfg.report_to, run_folder or cfg.out)
    if cfg.use_vllm:
        for key, value in (("VLLM_CPU_KVCACHE_SPACE", "1"), ("VLLM_ENABLE_V1_MULTIPROCESSING", "0"),
                           ("HF_HUB_OFFLINE", "1")):
            os.environ.setdefault(key, value)
    trainer_class = seeded_rollout_trainer_class(fused_logprob_trainer_class() if cfg.fused_logprobs else GRPOTrainer)
    serving = cfg.use_vllm and cfg.vllm_mode == "server"
    if serving and server is None and world == 1:  # data-parallel: rank 0 has it (only TRL's main process asks)
        raise ValueError("make_trainer: vllm_mode server needs the server (reasonpipe.vllm_server.managed_server)")
    with vllm_server_client(server, cfg.seed) if serving else contextlib.nullcontext():
        trainer = trainer_class(model=model, reward_funcs=[reward], args=args, train_dataset=dataset,
                                processing_class=hf, callbacks=callbacks)
    if serving and trainer.accelerator.is_main_process:  # the seed of each rollout request follows the step
        trainer.vllm_generation.vllm_client.step_of = lambda: trainer.state.global_step
    if serving and cfg.vllm_server.weight_sync == "disk":
        if not probe_ids:
            raise ValueError("make_trainer: a vLLM server's weight pushes are checked on probe_ids")
        use_server_weight_sync(trainer, server, probe_ids)
    if cfg.use_vllm and cfg.vllm_mode == "colocate" and not cuda:
        if not probe_ids:
            raise ValueError("make_trainer: CPU-colocated vLLM needs probe_ids to check its weight syncs")
        use_cpu_weight_sync(trainer, probe_ids)
    if cfg.quiet or not sys.stderr.isatty():
        from transformers.trainer_callback import PrinterCallback

        from reasonpipe.console import step_lines

        trainer.remove_callback(PrinterCallback)
        if not cfg.quiet:
            trainer.add_callback(step_lines(f"grpo {cfg.out}"))
    return trainer


def write_report(cfg: RLConfig, rows: list[dict], probes: list[dict], summary: dict) -> None:
    """report.md (before/after pass@k, reward over the run) and grpo.png (reward and pass@k curves)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reasonpipe.report import markdown_table

    ks = sorted(cfg.probe_ks)
    first, last = (probes[0], probes[-1]) if probes else ({}, {})
    table = [[f"pass@{k}", f"{first.get(f'probe/pass@{k}', float('nan')):.3f}",
              f"{last.get(f'probe/pass@{k}', float('nan')):.3f}"] for k in ks]
    table += [[label, f"{first.get(f'probe/{name}', float('nan')):.3f}", f"{last.get(f'probe/{name}', float('nan')):.3f}"]
              for name, label in (("well_formed", "well-formed samples"), ("claimed_wrong", "claimed but wrong"))]
    lines = [f"# GRPO: {cfg.task}, {cfg.reward} reward, from {cfg.model}", "",
             f"{summary['steps']} steps, {cfg.prompts_per_step} prompts x {cfg.num_generations} generations each, "
             f"beta {cfg.beta}, temperature {cfg.temperature}, {summary['train_seconds']} s on {summary['device']}.", "",
             f"Mean reward: first {summary['first_steps']} steps {summary['reward_first']:.3f}, "
             f"last {summary['first_steps']} steps {summary['reward_last']:.3f}.", "",
             f"## pass@k on {cfg.probe_problems} probe problems (step {first.get('step', '-')} -> "
             f"step {last.get('step', '-')})", "",
             markdown_table(["", "before RL", "after RL"], table), "", "![curves](grpo.png)", ""]
    with atomic_write(os.path.join(cfg.out, "report.md")) as f:
        f.write("\n".join(lines))
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    rewarded = [r for r in rows if "reward" in r]
    a.plot([r["step"] for r in rewarded], [r["reward"] for r in rewarded], label="mean reward")
    for k in ks:
        a.plot([p["step"] for p in probes], [p[f"probe/pass@{k}"] for p in probes], marker="o", label=f"probe pass@{k}")
    a.set_xlabel("GRPO step")
    a.legend()
    a.set_title("reward and probe pass@k")
    b.plot(ks, [first.get(f"probe/pass@{k}") for k in ks], marker="o", label="before RL")
    b.plot(ks, [last.get(f"probe/pass@{k}") for k in ks], marker="o", label="after RL")
    b.set_xscale("log", base=2)
    b.set_xlabel("k")
    b.set_ylabel("pass@k")
    b.legend()
    b.set_title("diversity: pass@k before and after")
    fig.tight_layout()
    tmp = os.path.join(cfg.out, ".grpo.png.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, os.path.join(cfg.out, "grpo.png"))


@contextlib.contextmanager
def _process_env_restored(names: tuple[str, ...] = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")):
    """TRL's colocated vLLM sets torch.distributed's variables in ``os.environ`` and leaves them: a later
    subprocess (e.g. a job submitted to a Ray started by this process) then tried to join a process group
    that no longer exists. Put them back as they were."""
    from reasonpipe.environ import environ_restored

    with environ_restored(names):
        yield


@contextlib.contextmanager
def _serving(cfg: RLConfig, in_worker: bool = False) -> Iterator[Any]:
    """In ``vllm_mode: server``: the run's vLLM server (:func:`reasonpipe.vllm_server.managed_server`: the one at
    ``vllm_server.url``, or one started on the starting model), stopped at the end; otherwise None.
    ``in_worker``: for rank 0 of data-parallel training, where ``launch: auto`` is a child process beside it (the
    workers already hold their CPUs or GPUs; ``launch: ray`` with ``resources`` gives the server its own); the
    server then lives and dies with that worker, and a restarted worker group starts a new one."""
    import dataclasses

    if not (cfg.use_vllm and cfg.vllm_mode == "server"):
        yield None
        return
    from reasonpipe.vllm_server import managed_server, write_info

    settings = cfg.vllm_server
    if in_worker and settings.launch == "auto":
        settings = dataclasses.replace(settings, launch="process")
    folder = resolve_model(cfg.model).path
    server = managed_server(settings, folder, cfg.out, resolve_device(cfg.device), cfg.seed)
    try:
        yield server
    finally:
        try:
            write_info(server, cfg.out)  # restarts and requests, for the user
        finally:
            server.stop()


def train(cfg: RLConfig, callbacks: list | tuple = ()) -> dict[str, Any]:
    """Run (or resume) one GRPO run; returns its summary (also ``out/summary.json``), with ``report.md``,
    ``grpo.png`` and ``manifest.json``.

    ``num_workers > 1`` runs :func:`_train_loop` data-parallel on Ray Train workers
    (:func:`reasonpipe.distributed.run_on_workers`, as SFT does): every worker rolls out its slice of the global
    batch (TRL gathers the rewards, so a prompt's whole group is in one advantage computation), DDP averages the
    gradients, checkpoints go through Ray to ``out/checkpoints``, and a dead worker restarts the group from the
    last one (``max_failures``). Rollouts are seeded per row of the global batch, so 2 workers sample what one
    process samples."""
    import dataclasses

    from reasonpipe.distributed import run_on_workers
    from reasonpipe.manifest import write_manifest

    check(cfg)
    if cfg.num_workers > 1:  # the workers run in their own working folders: every path they get is absolute
        cfg = dataclasses.replace(cfg, out=os.path.abspath(cfg.out), model=absolute_if_folder(cfg.model),
                                  resume=cfg.resume if cfg.resume in ("auto", "never") else os.path.abspath(cfg.resume))
    os.makedirs(cfg.out, exist_ok=True)
    if cfg.num_workers == 1:
        with _serving(cfg) as server:
            summary = _train_loop(cfg, callbacks, server=server)
    else:
        run_on_workers(_ddp_worker, {"cfg": cfg, "callbacks": list(callbacks)}, num_workers=cfg.num_workers,
                       out=cfg.out, device=cfg.device, max_failures=cfg.max_failures,
                       keep_checkpoints=cfg.keep_checkpoints, fresh=cfg.resume != "auto")
        with open(os.path.join(cfg.out, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)  # rank 0's
    with open(os.path.join(cfg.out, "metrics.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    probes = sorted((r for r in rows if any(k.startswith("probe/") for k in r)), key=lambda p: p["step"])
    write_report(cfg, rows, probes, summary)
    write_manifest(cfg.out, asdict(cfg), cfg.seed, {}, extra={"summary": summary})
    return summary


def _ddp_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker (run by :func:`reasonpipe.distributed.run_on_workers`): :func:`_train_loop` as this
    rank, resuming from the checkpoint Ray hands it, reporting its checkpoints to Ray from a scratch folder."""
    import dataclasses

    from reasonpipe.distributed import (gather_checksums, gather_worker_nodes, rank_and_world, report_to_ray,
                                        restored_checkpoint, scratch_folder)

    cfg = dataclasses.replace(config["cfg"], device="cuda" if config["use_gpu"] else "cpu")
    rank, world = rank_and_world()
    serving = _serving(cfg, in_worker=True) if rank == 0 else contextlib.nullcontext()  # TRL's main process asks
    with restored_checkpoint() as restored, scratch_folder(rank) as scratch, serving as server:
        _train_loop(cfg, config["callbacks"], rank=rank, world=world, restored=restored,
                    summary_extra={"worker_nodes": gather_worker_nodes()},
                    first_callbacks=[report_to_ray()], trainer_out=scratch, replica_checksums=gather_checksums,
                    server=server)


def _train_loop(cfg: RLConfig, callbacks: list | tuple = (), *, rank: int = 0, world: int = 1,
                restored: tuple[str, str] | None = None, first_callbacks: list | tuple = (),
                trainer_out: str | None = None, replica_checksums: Any = None,
                summary_extra: dict[str, Any] | None = None, server: Any = None) -> dict[str, Any] | None:
    """The GRPO run, the same in the single process (the defaults) and in every data-parallel worker: problems,
    policy, dataset, reward, the checkpoint to resume from (``restored``, else ``cfg.resume``), the metrics file
    (rank 0), training, ``final/`` and ``summary.json`` (rank 0). ``trainer_out``: where TRL writes its
    checkpoints (default ``out``); ``replica_checksums``: every rank's parameter checksum (a collective);
    ``summary_extra``: added to the summary (a DDP worker's: the Ray node of every rank); ``server``: the vLLM
    server of ``vllm_mode: server``. Returns the summary on rank 0, None elsewhere."""
    import dataclasses

    import torch
    from datasets import Dataset

    from reasonpipe.checkpoints import checkpoint_step, last_complete_checkpoint
    from reasonpipe.tasks import get_task_class

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    started = time.time()
    task, problems, probe = make_problems(cfg)
    model, hf = load_policy(cfg)
    cls = get_task_class(cfg.task)
    fmt = cfg.text_format()  # TRL encodes each prompt to fmt.prompt_ids (text, or chat messages it renders)
    dataset = Dataset.from_dict({"prompt": [fmt.trainer_prompt(hf, fmt.user_text(task, p)) for p in problems],
                                 "problem": [json.dumps(cls.problem_to_json(p)) for p in problems]})
    reward = make_reward(cfg.reward, cfg.task, cfg.task_options, text_format=fmt)
    metrics_path = os.path.join(cfg.out, "metrics.jsonl")
    checkpoint = None
    if restored:
        checkpoint = restored[0]
    elif cfg.resume == "auto" and os.path.isdir(os.path.join(cfg.out, "checkpoints")):
        checkpoint = last_complete_checkpoint(os.path.join(cfg.out, "checkpoints"))
    elif cfg.resume not in ("auto", "never"):
        checkpoint = cfg.resume
    resumed_from = restored[1] if restored else checkpoint
    probes: list[dict] = []
    if rank == 0 and checkpoint is None and os.path.exists(metrics_path):
        os.unlink(metrics_path)  # a fresh run: its metrics start empty
    elif rank == 0 and checkpoint is not None and os.path.exists(metrics_path):
        drop_rows_after(metrics_path, checkpoint_step(checkpoint))  # logged again
        with open(metrics_path, encoding="utf-8") as f:
            probes = [r for r in map(json.loads, f) if any(k.startswith("probe/") for k in r)]
    ours = _callbacks(cfg, task, probe, hf, metrics_path, started, probes) if rank == 0 else []
    trainer_cfg = cfg if trainer_out is None else dataclasses.replace(cfg, out=trainer_out)
    with _process_env_restored():
        trainer = make_trainer(trainer_cfg, model, hf, dataset, reward, list(first_callbacks) + ours + list(callbacks),
                               probe_ids=fmt.prompt_ids(hf, fmt.user_text(task, problems[0])), world=world,
                               run_folder=cfg.out, server=server)
        t0 = time.time()
        trainer.train(resume_from_checkpoint=checkpoint)
        seconds = time.time() - t0
    checksums = replica_checksums(model) if replica_checksums else None  # every rank joins
    final = os.path.join(cfg.out, "final")
    trainer.save_model(final)  # DDP: rank 0 writes
    if rank != 0:
        return None
    hf.save_pretrained(final)
    fmt.save(final)
    with open(metrics_path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rewards = [r["reward"] for r in rows if "reward" in r]
    span = max(1, min(10, len(rewards) // 2))  # mean reward over the first and the last 10 steps
    probes = sorted(probes, key=lambda p: p["step"])
    summary = {
        "steps": trainer.state.global_step, "resumed_from": resumed_from, "train_seconds": round(seconds, 2),
        "device": resolve_device(cfg.device), "first_steps": span,
        "reward_first": sum(rewards[:span]) / span if rewards else float("nan"),
        "reward_last": sum(rewards[-span:]) / span if rewards else float("nan"),
        "probe_before": probes[0] if probes else None, "probe_after": probes[-1] if probes else None,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if checksums is not None:
        summary.update(workers=world, global_batch=cfg.prompts_per_step * cfg.num_generations,
                       replica_checksums=checksums)
    summary.update(summary_extra or {})  # a DDP worker's: where the workers ran
    gaps = getattr(trainer, "vllm_sync_gaps", None)
    if gaps is not None:  # CPU colocate or a server: every weight sync was checked against the trained weights
        summary["vllm_sync_checks"] = len(gaps)
        summary["vllm_sync_max_logprob_gap"] = max(gaps, default=None)
    if server is not None:
        pushes = getattr(trainer, "vllm_push_seconds", [])
        summary["vllm_server"] = {**server.info(), "pushes": len(pushes),
                                  "push_seconds_mean": round(sum(pushes) / len(pushes), 4) if pushes else None}
    with atomic_write(os.path.join(cfg.out, "summary.json")) as f:
        json.dump(summary, f, indent=2)
    return summary
