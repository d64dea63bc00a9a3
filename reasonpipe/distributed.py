"""Ray Train plumbing: run one per-worker training loop on ``num_workers`` Ray Train workers (``TorchTrainer``:
DDP over gloo on CPU, NCCL on GPU), restarted from the last checkpoint when a worker dies.

This module knows nothing of what is trained: the SFT and GRPO stages (:mod:`reasonpipe.sft`, :mod:`reasonpipe.rl`)
own their training loops, each shared by its single process and every worker, and hand them here when
``num_workers > 1`` (with one worker they never start Ray). The layers::

    reasonpipe.sft, .rl     configs, data, make_trainer, the loop (_train_loop), train() -> run_on_workers
      reasonpipe.distributed  Ray start/join, TorchTrainer, checkpoints via Ray, the worker-side helpers
        reasonpipe.localray     a local Ray beside others

Driver side, :func:`run_on_workers`: connects to a Ray (or starts one), checks that Ray Train can run on it,
decides CPU or GPU, runs ``loop(config)`` on every worker (``config["use_gpu"]`` added) and waits. Inside the
loop, the HF Trainer picks up the process group that Ray Train set up (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``
in the environment) and wraps the model in DDP. Worker side, the loop uses :func:`rank_and_world`,
:func:`restored_checkpoint` (what to resume from), :func:`scratch_folder` (where the HF Trainer writes
checkpoints), :func:`report_to_ray` (the callback that hands them to Ray) and :func:`gather_checksums`
(:func:`param_checksum` of every rank's replica).

Checkpoints go through Ray Train: Ray's run folder is ``out/checkpoints`` (``RunConfig(name="checkpoints",
storage_path=out)``) and each checkpoint is reported as ``checkpoint-<step>``, so the folders sit where the
single-process path writes them and hold the same HF Trainer files (model, optimizer, scheduler, trainer state;
one ``rng_state_<rank>.pth`` per worker: every rank reports its own files and Ray merges them). The HF Trainer
writes each checkpoint into a per-worker scratch folder first, which is deleted after the upload. Ray keeps
``keep_checkpoints`` of them (``CheckpointConfig(num_to_keep=...)``). Every report is a barrier through Ray's
controller (1-2 s each on a loaded 2-core machine), so checkpoints should not be too frequent.

Resume: a worker that dies (SIGKILL, OOM, a lost node) or raises fails the worker group (an exception is retried
too, so a deterministic bug costs ``max_failures`` restarts before the run fails); Ray Train restarts the group
up to ``max_failures`` times (``FailureConfig``), and the restarted loop resumes from
:func:`restored_checkpoint` (``ray.train.get_checkpoint()``). Across invocations Ray restores its checkpoint
list from ``out/checkpoints/checkpoint_manager_snapshot.json``; ``fresh=True`` removes that snapshot first, so
Ray starts a fresh list (old checkpoint folders stay until a checkpoint of the same step overwrites them).

Ray: the Ray this process is connected to, else ``RAY_ADDRESS``'s, else a local one started with its
dashboard (Ray Train needs the State API the dashboard serves, or its placement-group cleaner may kill the
workers; see :func:`init_local_ray`, and :func:`_check_state_api` for a Ray started elsewhere).

Not done here: ``storage_path`` is ``out``, so on a multi-node cluster ``out`` must be on storage every node
sees (NFS; Ray checks and says so); elastic worker counts are not supported (a restart needs all
``num_workers`` again). The NCCL/GPU path is the same code with ``use_gpu=True`` and is not exercised by the
CPU tests.

Example::

    reasonpipe sft --config configs/sft-demo.yaml --num_workers 2   # 2 CPU workers on a local Ray
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.localray import init_local_ray

RUN_NAME = "checkpoints"  # Ray Train's run folder under ``out``: where the single-process path keeps checkpoints
SNAPSHOT = "checkpoint_manager_snapshot.json"  # Ray Train's list of reported checkpoints there (Ray 2.60's name)


# -- driver side --------------------------------------------------------------------------------------

def run_on_workers(loop: Callable[[dict[str, Any]], None], config: dict[str, Any], *, num_workers: int, out: str,
                   device: str = "auto", max_failures: int = 0, keep_checkpoints: int = 1,
                   fresh: bool = False) -> None:
    """Run ``loop(config)`` on ``num_workers`` Ray Train workers until it returns on all of them, restarting the
    group from the last reported checkpoint up to ``max_failures`` times (-1: no limit); raises once the
    failures exceed that.

    ``config`` is pickled to every worker, with ``config["use_gpu"]``: whether the workers have a GPU each.
    ``device``: ``"auto"`` uses GPUs (NCCL) when the cluster has one per worker, else CPUs (gloo); ``"cuda"``
    requires them; ``"cpu"``. ``out``: an absolute folder every worker can reach; Ray's checkpoints go to
    ``out/checkpoints`` (``keep_checkpoints`` of them). ``fresh``: forget Ray's checkpoint list from an earlier
    run there first (else Ray hands its last checkpoint to the first attempt).

    Uses the Ray this process is connected to, else the cluster in ``RAY_ADDRESS`` (as inside a Ray job),
    else starts a local one (:func:`init_local_ray`); disconnects from (or stops) what it connected to or
    started.
    """
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    snapshot = os.path.join(out, RUN_NAME, SNAPSHOT)
    if fresh and os.path.exists(snapshot):
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
        if device == "cuda" and gpus < num_workers:
            raise InputError(f"{num_workers} workers need {num_workers} GPUs; the cluster has {gpus:g}",
                             field="device")
        use_gpu = device == "cuda" or (device == "auto" and gpus >= num_workers)
        trainer = TorchTrainer(
            loop,
            train_loop_config={**config, "use_gpu": use_gpu},
            scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
            run_config=RunConfig(
                name=RUN_NAME,
                storage_path=out,
                failure_config=FailureConfig(max_failures=max_failures),
                checkpoint_config=CheckpointConfig(num_to_keep=max(1, keep_checkpoints)),
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


# -- worker side (inside the loop that run_on_workers runs) -------------------------------------------

def rank_and_world() -> tuple[int, int]:
    """This worker's rank and the number of workers."""
    import ray.train

    ctx = ray.train.get_context()
    return ctx.get_world_rank(), ctx.get_world_size()


@contextlib.contextmanager
def restored_checkpoint() -> Iterator[tuple[str, str] | None]:
    """The checkpoint Ray hands this worker (after a failure, or from Ray's snapshot of an earlier run) as
    ``(local folder, its path in the run folder)``, or None; the folder stays valid inside the ``with``."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        yield None
        return
    with checkpoint.as_directory() as folder:
        yield folder, checkpoint.path


@contextlib.contextmanager
def scratch_folder(rank: int) -> Iterator[str]:
    """A folder of this worker's for the HF Trainer's checkpoints (:func:`report_to_ray` uploads them), deleted
    afterwards."""
    scratch = tempfile.mkdtemp(prefix=f"reasonpipe-ddp-rank{rank}-")
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def report_to_ray():
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


def gather_checksums(model: Any) -> list[str]:
    """:func:`param_checksum` of every rank's model, in rank order (a collective: every rank calls it)."""
    import torch.distributed as dist

    checksums: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(checksums, param_checksum(model))
    return checksums


def gather_worker_nodes() -> list[str]:
    """The Ray node id of every rank, in rank order (a collective: every rank calls it): where the workers ran."""
    import ray
    import torch.distributed as dist

    nodes: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(nodes, ray.get_runtime_context().get_node_id())
    return nodes


def param_checksum(model: Any) -> str:
    """SHA-256 of a model's parameters and buffers (bytes, in name order): equal iff bit-identical."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
