"""Data-parallel SFT on Ray Train (``TorchTrainer``: DDP over gloo on CPU, NCCL on GPU), restarted from the last
checkpoint when a worker dies.

:func:`reasonpipe.sft.train` comes here when ``num_workers > 1``; with one worker it never starts Ray. Each of
the ``num_workers`` Ray Train workers runs the same trainer as the single-process path
(:func:`reasonpipe.sft.make_trainer`, TRL ``SFTTrainer``); the HF Trainer inside picks up the process group that
Ray Train set up (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the environment) and wraps the model in DDP.

Global batch and data order: one optimizer step sees ``batch_size x num_workers x grad_accum`` examples.
Every worker builds the same dataset (a pure function of the data files) and the same
:func:`~reasonpipe.sft.bucketed_order` for batches of the *global* micro-batch size ``batch_size x num_workers``;
Accelerate's batch-sampler sharding (even batches, no split) then hands rank ``r`` every ``num_workers``-th
micro-batch of ``batch_size``, starting at ``r``, which is the ``r``-th slice of each global micro-batch. So
2 workers with batch B see in every step exactly the examples 1 worker with batch 2B sees, and the loss is the
same mean over all counted tokens of the global batch (the Trainer sums the token count over ranks,
``average_tokens_across_devices``, and DDP averages the gradients). ``max_tokens`` turns into a step count on
the global order, as in the single-process path. ``lr``, ``warmup_steps`` and ``max_steps`` are per optimizer
step and are not rescaled with the number of workers.

Checkpoints go through Ray Train: Ray's run folder is ``out/checkpoints`` (``RunConfig(name="checkpoints",
storage_path=out)``) and each checkpoint is reported as ``checkpoint-<step>``, so the folders sit where the
single-process path writes them and hold the same HF Trainer files (model, optimizer, scheduler, trainer state;
one ``rng_state_<rank>.pth`` per worker: every rank reports its own files and Ray merges them). The HF Trainer
writes each checkpoint into a per-worker scratch folder first, which is deleted after the upload. Ray keeps
``keep_checkpoints`` of them (``CheckpointConfig(num_to_keep=...)``). Every report is a barrier through Ray's
controller (1-2 s each on a loaded 2-core machine), so ``save_every`` should not be tiny.

Resume: a worker that dies (SIGKILL, OOM, a lost node) or raises fails the worker group (an exception is retried
too, so a deterministic bug costs ``max_failures`` restarts before the run fails); Ray Train restarts the group
up to ``max_failures`` times (``FailureConfig``), and the restarted loop resumes the HF Trainer from
``ray.train.get_checkpoint()`` (weights, optimizer, scheduler, step, RNG, and the data order, which skips the
batches already trained on), so the run ends where an uninterrupted one would. ``resume="auto"`` across
invocations: Ray restores its checkpoint list from ``out/checkpoints/checkpoint_manager_snapshot.json``; with
no snapshot (e.g. a run started single-process) the last ``checkpoint-<step>`` folder is used, as in the
single-process path. ``resume="never"`` or a folder: the snapshot is removed first, so Ray starts a fresh list
(old checkpoint folders stay until a checkpoint of the same step overwrites them, as in the single-process
path); a folder is resumed from on the first attempt, later attempts use Ray's checkpoints.

Rank 0 writes ``metrics.jsonl`` (rows past the checkpoint resumed from are dropped first), ``final/`` and
``summary.json`` (atomic); the driver adds ``manifest.json``. The summary also has ``workers``,
``global_batch`` and ``replica_checksums`` (a SHA-256 of every rank's final parameters: DDP keeps the replicas
bit-identical, and this shows it).

Ray: the Ray this process is connected to, else ``RAY_ADDRESS``'s, else a local one started with its
dashboard (Ray Train needs the State API the dashboard serves, or its placement-group cleaner may kill the
workers; see :func:`init_local_ray`, and :func:`_check_state_api` for a Ray started elsewhere).

Not done here: every worker reads and tokenizes the data itself (fine for trace files; a Ray Data pipeline
would shard it instead); ``storage_path`` is ``out``, so on a multi-node cluster ``out`` must be on storage
every node sees (NFS; Ray checks and says so); elastic worker counts are not supported (a restart needs all
``num_workers`` again). The NCCL/GPU path is the same code with ``use_gpu=True`` and is not exercised by the
CPU tests.

Example::

    reasonpipe sft --config configs/sft-demo.yaml --num_workers 2   # 2 CPU workers on a local Ray
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import asdict
from typing import Any

import numpy as np

from reasonpipe.errors import InputError
from reasonpipe.jsonl import atomic_write, drop_rows_after
from reasonpipe.localray import init_local_ray
from reasonpipe.sft import SFTConfig

RUN_NAME = "checkpoints"  # Ray Train's run folder under ``out``: where the single-process path keeps checkpoints
SNAPSHOT = "checkpoint_manager_snapshot.json"  # Ray Train's list of reported checkpoints there (Ray 2.60's name)


def train_ddp(cfg: SFTConfig, callbacks: list | tuple = ()) -> dict[str, Any]:
    """Run (or resume) one SFT run on ``cfg.num_workers`` Ray Train workers; returns rank 0's summary (also in
    ``out/summary.json``).

    Uses the Ray this process is connected to, else the cluster in ``RAY_ADDRESS`` (as inside a Ray job),
    else starts a local one (:func:`init_local_ray`); disconnects from (or stops) what it connected to or
    started. ``device="auto"`` trains on GPUs (NCCL) when the cluster has one per worker, else on CPUs (gloo).
    ``callbacks``: extra ``transformers.TrainerCallback`` objects, pickled to every worker (their
    ``args.process_index`` tells the rank).
    """
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from reasonpipe.manifest import write_manifest

    if not cfg.data:
        raise InputError("no data files", field="data")
    if cfg.num_workers < 1:
        raise InputError(f"num_workers must be at least 1, not {cfg.num_workers}", field="num_workers")
    if cfg.max_failures < -1:
        raise InputError("max_failures must be -1 (no limit) or at least 0", field="max_failures")
    if cfg.resume not in ("auto", "never") and not os.path.isdir(cfg.resume):
        raise InputError("resume must be auto, never or a checkpoint folder", field="resume")
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise InputError(f"device must be auto, cpu or cuda, not {cfg.device!r}", field="device")
    for path in cfg.data:
        if not os.path.isfile(path):
            raise InputError("no such data file", path=path, field="data")
    # The workers run in their own working folders: every path they get is absolute.
    cfg = dataclasses.replace(cfg, out=os.path.abspath(cfg.out), data=[os.path.abspath(p) for p in cfg.data],
                              resume=cfg.resume if cfg.resume in ("auto", "never") else os.path.abspath(cfg.resume))
    os.makedirs(cfg.out, exist_ok=True)
    snapshot = os.path.join(cfg.out, RUN_NAME, SNAPSHOT)
    if cfg.resume != "auto" and os.path.exists(snapshot):
        os.unlink(snapshot)  # Ray would otherwise hand the previous run's last checkpoint to the first attempt

    started_ray = not ray.is_initialized()
    if started_ray and os.environ.get("RAY_ADDRESS", "local") != "local":
        ray.init()  # a Ray job (reasonpipe submit) or a cluster named by RAY_ADDRESS: connect to it
    elif started_ray:
        init_local_ray()
    try:
        if not started_ray:
            _check_state_api()  # a Ray started elsewhere: can Ray Train's cleaner reach the right State API?
        gpus = ray.cluster_resources().get("GPU", 0)
        if cfg.device == "cuda" and gpus < cfg.num_workers:
            raise InputError(f"{cfg.num_workers} workers need {cfg.num_workers} GPUs; the cluster has {gpus:g}",
                             field="device")
        use_gpu = cfg.device == "cuda" or (cfg.device == "auto" and gpus >= cfg.num_workers)
        worker_cfg = dataclasses.replace(cfg, device="cuda" if use_gpu else "cpu")
        trainer = TorchTrainer(
            _train_loop_per_worker,
            train_loop_config={"cfg": worker_cfg, "callbacks": list(callbacks)},
            scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=use_gpu),
            run_config=RunConfig(
                name=RUN_NAME,
                storage_path=cfg.out,
                failure_config=FailureConfig(max_failures=cfg.max_failures),
                checkpoint_config=CheckpointConfig(num_to_keep=max(1, cfg.keep_checkpoints)),
            ),
        )
        sigint = signal.getsignal(signal.SIGINT)
        try:
            trainer.fit()  # raises once the failures exceed max_failures
        finally:
            # Ray Train 2.60 installs a SIGINT handler that aborts its controller actor and leaves it behind: a
            # later Ctrl-C in this process then failed on the dead actor instead of interrupting
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, sigint)
    finally:
        if started_ray:
            ray.shutdown()
    with open(os.path.join(cfg.out, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    write_manifest(cfg.out, asdict(cfg), cfg.seed, {f"data{i}": p for i, p in enumerate(cfg.data)},
                   extra={"summary": summary})
    return summary


def _state_api_answer() -> str:
    """``"ok"`` if the State API this process reaches knows this process's node, ``"other"`` if it answers
    without knowing it (another cluster's), else why it does not answer."""
    import ray
    from ray.util.state import get_node

    try:
        found = get_node(ray.get_runtime_context().get_node_id(), timeout=30)
    except Exception as e:  # no dashboard, several Rays on the machine, ...
        return f"{type(e).__name__}: {e}"
    return "ok" if found is not None else "other"


def _check_state_api() -> None:
    """Ask the State API from where Ray Train's placement-group cleaner asks it (a zero-CPU task on the head
    node, with the job's environment): another cluster's answer would get the workers killed, so that is an
    error; no answer only leaves the cleaner idle (a warning). See :func:`init_local_ray`."""
    import warnings

    import ray
    from ray._common.constants import HEAD_NODE_RESOURCE_NAME

    probe = ray.remote(num_cpus=0, resources={HEAD_NODE_RESOURCE_NAME: 0.001})(_state_api_answer)
    answer = ray.get(probe.remote())
    fix = ("start Ray with reasonpipe.localray.init_local_ray(), or set RAY_API_SERVER_ADDRESS="
           "http://<head>:<dashboard port> in the environment Ray was started with")
    if answer == "other":
        raise InputError("the Ray State API that Ray Train's placement-group cleaner reaches belongs to another "
                         f"Ray cluster, which would make it kill this run's workers; {fix}", field="num_workers")
    if answer != "ok":
        warnings.warn(f"the Ray State API does not answer ({answer}): Ray Train cannot clean up after a crashed "
                      f"controller, and would kill the workers if another Ray's dashboard took its place; {fix}",
                      RuntimeWarning, stacklevel=3)


def _train_loop_per_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: build the global data order, take this rank's share (via Accelerate), train from
    the latest checkpoint if there is one, report checkpoints to Ray; rank 0 writes the run's files."""
    import ray.train
    import torch
    import torch.distributed as dist

    from reasonpipe.checkpoints import checkpoint_step, last_complete_checkpoint
    from reasonpipe.models import build_model
    from reasonpipe.sft import _callbacks, build_dataset, bucketed_order, make_trainer
    from reasonpipe.tokenizer import TaskTokenizer

    cfg: SFTConfig = config["cfg"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    started = time.time()
    hf = TaskTokenizer.for_task(cfg.task).hf()
    dataset, lengths, stats = build_dataset(cfg.data, cfg.task, hf, cfg.max_len)
    global_batch = cfg.batch_size * world
    order = bucketed_order(lengths, global_batch, cfg.max_steps * cfg.grad_accum, cfg.seed)
    per_step = lengths[np.asarray(order)].reshape(-1, global_batch * cfg.grad_accum).sum(axis=1)
    cum_tokens = np.cumsum(per_step).tolist()
    if cfg.max_tokens:
        cfg = dataclasses.replace(cfg, max_steps=min(cfg.max_steps, int(np.searchsorted(cum_tokens, cfg.max_tokens)) + 1))
    # The whole global order on every rank: Accelerate shards it by micro-batch (see the module docstring).
    dataset = dataset.select(order[: cfg.max_steps * global_batch * cfg.grad_accum])
    prepared = time.time() - started
    model = build_model(cfg.model, hf, max_positions=max(cfg.max_len, 512), seed=cfg.seed)

    checkpoint = ray.train.get_checkpoint()  # set on a restart after a failure, or from Ray's snapshot
    local_checkpoints = os.path.join(cfg.out, RUN_NAME)
    with (checkpoint.as_directory() if checkpoint else contextlib.nullcontext()) as ray_dir:
        if ray_dir:
            resume_dir, resumed_from = ray_dir, checkpoint.path
        elif cfg.resume == "auto":
            resume_dir = last_complete_checkpoint(local_checkpoints) if os.path.isdir(local_checkpoints) else None
            resumed_from = resume_dir
        elif cfg.resume != "never":
            resume_dir = resumed_from = cfg.resume
        else:
            resume_dir = resumed_from = None
        start_step = checkpoint_step(resume_dir) if resume_dir else 0

        metrics_path = os.path.join(cfg.out, "metrics.jsonl")
        callbacks = [_report_to_ray()]
        if rank == 0:
            if resume_dir is None and os.path.exists(metrics_path):
                os.unlink(metrics_path)  # a fresh run: its metrics start empty
            elif resume_dir is not None:
                drop_rows_after(metrics_path, start_step)  # logged again
            callbacks += _callbacks(cfg, metrics_path, started)
        callbacks += config["callbacks"]
        # The HF Trainer saves each checkpoint into this worker's scratch folder; _report_to_ray uploads it.
        scratch = tempfile.mkdtemp(prefix=f"reasonpipe-ddp-rank{rank}-")
        try:
            trainer = make_trainer(dataclasses.replace(cfg, out=scratch), model, hf, dataset, callbacks, cum_tokens)
            t0 = time.time()
            result = trainer.train(resume_from_checkpoint=resume_dir)
            seconds = time.time() - t0
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    checksums = [None] * world
    dist.all_gather_object(checksums, param_checksum(model))
    final = os.path.join(cfg.out, "final")
    trainer.save_model(final)  # rank 0 writes
    if rank != 0:
        return
    hf.save_pretrained(final)
    steps = trainer.state.global_step
    history = [r for r in trainer.state.log_history if "loss" in r]
    tokens_seen = cum_tokens[steps - 1] - (cum_tokens[start_step - 1] if start_step else 0)
    summary = {
        "steps": steps, "resumed_from": resumed_from, "train_seconds": round(seconds, 2),
        "prepare_seconds": round(prepared, 2), "tokens_seen_this_run": tokens_seen, "tokens_seen": cum_tokens[steps - 1],
        "tokens_per_second": round(tokens_seen / seconds, 1) if seconds > 0 else None,
        "first_loss": history[0]["loss"] if history else None, "last_loss": history[-1]["loss"] if history else None,
        "train_loss": result.training_loss, "data": asdict(stats),
        "parameters": sum(p.numel() for p in model.parameters()), "device": cfg.device,
        "workers": world, "global_batch": global_batch * cfg.grad_accum, "replica_checksums": checksums,
    }
    with atomic_write(os.path.join(cfg.out, "summary.json")) as f:
        json.dump(summary, f, indent=2)


def _report_to_ray():
    """A callback: after the HF Trainer saved ``checkpoint-<step>`` into this worker's scratch folder, report it
    (with the last logged metrics) to Ray Train, which copies it into ``out/checkpoints/checkpoint-<step>``
    (merged over ranks) and deletes the scratch copy. Every rank reports at every save (Ray's report is a
    barrier), and before any callback after it in the list runs."""
    import ray.train
    from ray.train import Checkpoint
    from transformers import TrainerCallback

    class ReportToRay(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            name = f"checkpoint-{state.global_step}"
            metrics: dict[str, Any] = {"step": state.global_step}
            for row in state.log_history:
                metrics.update({k: v for k, v in row.items() if isinstance(v, (int, float))})
            ray.train.report(metrics, checkpoint=Checkpoint.from_directory(os.path.join(args.output_dir, name)),
                             checkpoint_dir_name=name, delete_local_checkpoint_after_upload=True)

    return ReportToRay()


def param_checksum(model: Any) -> str:
    """SHA-256 of a model's parameters and buffers (bytes, in name order): equal iff bit-identical."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
