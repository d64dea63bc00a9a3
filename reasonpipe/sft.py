"""Supervised fine-tuning on search traces with TRL's ``SFTTrainer`` (loss on the trace, not the prompt).

Data: JSONL traces (``reasonpipe gen``). Each becomes ``<bos> prompt completion <eos>`` where the prompt
is the task's prompt (the trace's first line) and the loss covers the completion only. Tokenization is
done here, once, with a vectorised encoder (identical ids to the task tokenizer; checked per example), into
an Arrow dataset; TRL's own preparation is skipped. Batches are length-bucketed: the examples are
shuffled with the seed, cut into groups of 50 batches, each group sorted by length and cut into batches,
and the batches shuffled, so padding stays small and the order is a pure function of the seed (which is
what makes ``resume="auto"`` continue with the same data order).

The trainer subclass differs from TRL's defaults where speed demanded it: batches are right-padded and the
model runs without an attention mask (causal attention already keeps real tokens off the pads), the loss
is one cross-entropy over the (tiny-vocabulary) logits, and its metrics (token accuracy, tokens seen) stay on the device until a
logging step, instead of three device-to-host syncs per step; NaN filtering of the loss (another sync per
step) is off; on CUDA it trains in bf16 with the fused AdamW and can compile the model.

Budget: ``max_steps`` or ``max_tokens`` (training tokens, padding excluded), whichever comes first, so a
backtracking and a direct model can be compared at the same steps or the same tokens. The data order is
known before training, so the token budget becomes an exact step count up front, and the tokens seen at
every step are known on the host (no device sync to count them).

Layout: one training loop, :func:`_train_loop` (data order, token budget, model, which checkpoint to resume
from, metrics file, trainer, final save, summary), run by the single process and by every data-parallel
worker; what differs between them (rank and world size, a checkpoint handed over by Ray, extra callbacks, the
folder the HF Trainer saves checkpoints into) comes in as its arguments. :func:`train` validates the config,
runs the loop here when ``num_workers == 1`` and otherwise hands :func:`_ddp_worker` (the same loop, set up for
one Ray Train worker) to :func:`reasonpipe.distributed.run_on_workers`, the Ray Train plumbing below this
module (it never imports this one); both paths end with ``manifest.json``.

Data-parallel (``num_workers > 1``, DDP on Ray Train workers): one optimizer step sees
``batch_size x num_workers x grad_accum`` examples. Every worker builds the same dataset (a pure function of
the data files) and the same :func:`bucketed_order` for batches of the *global* micro-batch size
``batch_size x num_workers``; Accelerate's batch-sampler sharding (even batches, no split) then hands rank
``r`` every ``num_workers``-th micro-batch of ``batch_size``, starting at ``r``, which is the ``r``-th slice of
each global micro-batch. So 2 workers with batch B see in every step exactly the examples 1 worker with batch
2B sees, and the loss is the same mean over all counted tokens of the global batch (the Trainer sums the token
count over ranks, ``average_tokens_across_devices``, and DDP averages the gradients). ``max_tokens`` turns
into a step count on the global order, as in the single process. ``lr``, ``warmup_steps`` and ``max_steps``
are per optimizer step and are not rescaled with the number of workers. Checkpoints are reported to Ray and
land in ``out/checkpoints/checkpoint-<step>`` as in the single process (one ``rng_state_<rank>.pth`` per
worker); every report is a barrier, so ``save_every`` should not be tiny. A dead worker restarts the group (up
to ``max_failures`` times), which resumes from Ray's checkpoint and ends where an uninterrupted run would.
``resume="auto"`` across invocations: Ray's checkpoint list (its snapshot in ``out/checkpoints``), else the
last ``checkpoint-<step>`` folder as in the single process; ``resume="never"`` or a folder forgets Ray's list
first, and a folder is resumed from on the first attempt (later attempts use Ray's checkpoints). Rank 0
writes ``metrics.jsonl``, ``final/`` and ``summary.json``; the summary also has ``workers``,
``global_batch`` and ``replica_checksums`` (a SHA-256 of every rank's final parameters: DDP keeps the
replicas bit-identical, and this shows it). Every worker reads and tokenizes the data itself (fine for trace
files; a Ray Data pipeline would shard it instead).

Example::

    reasonpipe sft --config configs/sft-demo.yaml   # after make demo: retrain its backtrack model
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from reasonpipe.checkpoints import checkpoint_step, last_complete_checkpoint
from reasonpipe.config import helptext
from reasonpipe.distributed import (
    gather_checksums,
    gather_worker_nodes,
    rank_and_world,
    report_to_ray,
    restored_checkpoint,
    run_on_workers,
    scratch_folder,
)
from reasonpipe.errors import InputError
from reasonpipe.jsonl import RecordReader, atomic_write, drop_rows_after
from reasonpipe.manifest import write_manifest
from reasonpipe.models import (absolute_if_folder, build_model, check_model, load_causal_lm, load_tokenizer,
                               merge_adapter, resolve_device, resolve_model)
from reasonpipe.tasks import get_task_class
from reasonpipe.textformat import TextFormat
from reasonpipe.tokenizer import TaskTokenizer, count_tokens
from reasonpipe.trainer_args import TrainerSettings, tracking, trl_arguments, trl_report_to
from reasonpipe.trl_compat import GRADIENT_CHECKPOINTING_HELP


@dataclass
class SFTConfig(TrainerSettings):
    """One SFT run (YAML keys; ``--key value`` overrides)."""

    data: list[str] = field(default_factory=list, metadata=helptext("JSONL trace files"))
    out: str = field(default="runs/sft", metadata=helptext("run folder: checkpoints/, final/, metrics.jsonl, manifest.json"))
    task: str = field(default="countdown", metadata=helptext("the task of the traces (its tokenizer)"))
    model: str = field(default="tiny", metadata=helptext(
        "a size (tiny, 3M, 17M, 38M, 144M: from scratch), a model folder (a reasonpipe checkpoint or any Hugging Face "
        "causal LM) or a hub id (reasonpipe.models.resolve_model)"))
    max_len: int = field(default=4096, metadata=helptext("tokens per example; longer examples are dropped (and counted)"))
    batch_size: int = field(default=16, metadata=helptext("examples per device and step"))
    grad_accum: int = field(default=1, metadata=helptext("gradient-accumulation steps per optimizer step"))
    max_steps: int = field(default=1000, metadata=helptext("optimizer steps"))
    max_tokens: int = field(default=0, metadata=helptext("stop once this many training tokens were seen (0: no limit)"))
    lr: float = field(default=1e-3, metadata=helptext("peak learning rate (cosine schedule with a floor)"))
    min_lr_ratio: float = field(default=0.1, metadata=helptext("the schedule's floor, a fraction of lr"))
    warmup_steps: int = field(default=50, metadata=helptext("linear warm-up steps"))
    weight_decay: float = field(default=0.01, metadata=helptext("AdamW weight decay"))
    seed: int = field(default=0, metadata=helptext("seed of the model's initialisation and the data order"))
    save_every: int = field(default=200, metadata=helptext("steps between checkpoints"))
    keep_checkpoints: int = field(default=2, metadata=helptext("checkpoints kept (the oldest removed)"))
    log_every: int = field(default=10, metadata=helptext("steps between metrics.jsonl rows"))
    resume: str = field(default="auto", metadata=helptext("auto (continue from the last checkpoint) | never | a folder"))
    device: str = field(default="auto", metadata=helptext("auto | cpu | cuda"))
    bf16: bool = field(default=True, metadata=helptext("on CUDA"))
    compile: bool = field(default=False, metadata=helptext("torch.compile the model (CUDA; pays off on long runs)"))
    gradient_checkpointing: bool = field(default=False, metadata=helptext(GRADIENT_CHECKPOINTING_HELP))
    workers: int = field(default=0, metadata=helptext("dataloader workers"))
    num_workers: int = field(default=1, metadata=helptext(
        "data-parallel training processes; > 1: Ray Train DDP (reasonpipe.distributed), global batch = "
        "batch_size x num_workers"))
    max_failures: int = field(default=2, metadata=helptext(
        "num_workers > 1: restarts from the last checkpoint after a worker dies (-1: no limit)"))
    quiet: bool = field(default=False, metadata=helptext("no progress bar or log lines (metrics.jsonl only)"))
    heldout: int = field(default=64, metadata=helptext(
        "traces at the end of the data (at most a tenth of them) held out of training: the slice the learning "
        "diagnostics (task-token accuracy, reasonpipe.diagnostics) are measured on; 0: none"))
    diagnostics_every: int = field(default=0, metadata=helptext(
        "steps between learning diagnostics on the held-out traces (rows in metrics.jsonl); 0: at the end only"))

    def __post_init__(self) -> None:  # a known task (and the shared settings), checked at load
        get_task_class(self.task, field="task")
        super().__post_init__()


# -- data ---------------------------------------------------------------------------------------------

class FastEncoder:
    """Text -> token ids with numpy: the grammar's words become private-use characters, then every
    character is one token looked up in a table. Equal to the HF tokenizer on grammar text; a text whose
    count differs (an unknown word) falls back to the HF tokenizer."""

    def __init__(self, tok: TaskTokenizer, hf: Any) -> None:
        self.hf = hf
        vocab = tok.vocab
        self.unk = vocab["<unk>"]
        words = sorted((t for t in tok.tokens if len(t) > 1), key=len, reverse=True)
        self.replace = [(w, chr(0xE000 + i)) for i, w in enumerate(words)]
        self.table = np.full(0xE000 + len(words) + 1, self.unk, dtype=np.int32)
        for t in tok.tokens:
            if len(t) == 1 and ord(t) < 0xE000:
                self.table[ord(t)] = vocab[t]
        for w, ch in self.replace:
            self.table[ord(ch)] = vocab[w]

    def encode(self, text: str) -> np.ndarray:
        s = text
        for w, ch in self.replace:
            s = s.replace(w, ch)
        codes = np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32)
        if len(codes) != count_tokens(text):  # a word outside the grammar: the exact (slow) path
            return np.asarray(self.hf(text, add_special_tokens=False)["input_ids"], dtype=np.int32)
        ids = np.full(len(codes), self.unk, dtype=np.int32)
        known = codes < len(self.table)
        ids[known] = self.table[codes[known]]
        return ids


@dataclass
class DataStats:
    examples: int = 0
    dropped_too_long: int = 0
    tokens: int = 0
    completion_tokens: int = 0
    max_len_seen: int = 0
    heldout: int = 0  # traces kept out of training for the learning diagnostics
    no_answer: int = 0  # layout answer: traces that claim no answer (nothing for <answer>), left out


def build_dataset(paths: list[str], task: str, hf: Any, max_len: int, heldout: int = 0,
                  text_format: TextFormat | None = None):
    """An Arrow dataset with ``input_ids`` and ``labels`` (-100 on <bos> and the prompt), its examples' lengths,
    its stats, and the last ``heldout`` traces of the data as ``(text, prompt)`` pairs, kept out of the dataset.
    ``text_format`` with a model tokenizer: each example is its prompt's and completion's ids as the format writes
    them (:meth:`reasonpipe.textformat.TextFormat.prompt_ids`, ``completion_ids``)."""
    import pyarrow as pa
    from datasets import Dataset

    task_cls = get_task_class(task)
    task_obj = task_cls()
    enc = None if text_format is not None and text_format.pretrained else FastEncoder(TaskTokenizer.for_task(task), hf)
    bos, eos = hf.bos_token_id, hf.eos_token_id
    ids_parts, label_parts, offsets = [], [], [0]
    stats = DataStats()
    held: collections.deque[tuple[str, str]] = collections.deque()  # the last `heldout` traces, kept back
    seen = 0

    def records():
        nonlocal seen
        for path in paths:
            for line, record in RecordReader(path):
                if record.get("task") != task:
                    raise InputError(f"record is for task {record.get('task')!r}, not {task!r}", path=path,
                                     line=line, field="task")
                text = record["text"]
                prompt = task_obj.prompt(task_cls.problem_from_json(record["problem"]))
                if not text.startswith(prompt):  # every trace of ours starts with its problem's prompt
                    raise InputError("trace does not start with the task's prompt for its problem", path=path,
                                     line=line, field="text")
                seen += 1
                held.append((text, prompt))
                if len(held) > heldout:
                    yield held.popleft()
        # at most a tenth of the traces stay out, so that a small dataset still trains: the earliest of the kept-back
        # ones go to training after all, in their order (the same order as with no traces held out)
        while len(held) > seen // 10:
            yield held.popleft()

    pretrained = text_format is not None and text_format.pretrained
    for text, prompt in records():
        if pretrained:
            completion = text_format.completion_of(task_obj, prompt, text)
            if completion is None:
                stats.no_answer += 1
                continue
            p = np.asarray(text_format.prompt_ids(hf, text_format.wrap(task_obj, prompt)), dtype=np.int32)
            c = np.asarray(text_format.completion_ids(hf, completion), dtype=np.int32)  # ends with EOS
            pieces = [p, c]
        else:
            p = np.concatenate([[bos], enc.encode(prompt)])
            c = enc.encode(text[len(prompt):])
            pieces = [p, c, [eos]]
        n = sum(len(x) for x in pieces)
        if n > max_len:
            stats.dropped_too_long += 1
            continue
        seq = np.concatenate(pieces).astype(np.int32)
        lab = seq.copy()
        lab[: len(p)] = -100
        ids_parts.append(seq)
        label_parts.append(lab)
        offsets.append(offsets[-1] + n)
        stats.examples += 1
        stats.tokens += n
        stats.completion_tokens += n - len(p)
        stats.max_len_seen = max(stats.max_len_seen, n)
    if not stats.examples:
        raise InputError(f"no training examples (of {stats.dropped_too_long} traces, all longer than max_len "
                         f"{max_len})" if stats.dropped_too_long else "no training examples", field="data")
    off = pa.array(offsets, type=pa.int64())
    table = pa.table({
        "input_ids": pa.LargeListArray.from_arrays(off, pa.array(np.concatenate(ids_parts))),
        "labels": pa.LargeListArray.from_arrays(off, pa.array(np.concatenate(label_parts))),
    })
    stats.heldout = len(held)
    return Dataset(table), np.diff(np.asarray(offsets)), stats, list(held)


def bucketed_order(lengths: np.ndarray, batch_size: int, batches: int, seed: int) -> list[int]:
    """Example indices for ``batches`` batches: length-bucketed, shuffled, a pure function of the seed."""
    rng = random.Random(seed)
    n = len(lengths)
    order: list[int] = []
    group = 50 * batch_size
    while len(order) < batches * batch_size:
        idx = list(range(n))
        rng.shuffle(idx)
        epoch_batches = []
        for g in range(0, n - batch_size + 1 if n >= batch_size else 1, group):
            chunk = sorted(idx[g:g + group], key=lambda i: lengths[i])
            for b in range(0, len(chunk) - batch_size + 1 if len(chunk) >= batch_size else 1, batch_size):
                epoch_batches.append(chunk[b:b + batch_size])
        rng.shuffle(epoch_batches)
        for batch in epoch_batches:
            order.extend(batch)
    return order[: batches * batch_size]


# -- training -----------------------------------------------------------------------------------------

# TRL fields reasonpipe sets -> the SFTConfig field to set instead (the rest of what trl_config sets is fixed)
TRL_HOMES = {"per_device_train_batch_size": "batch_size", "gradient_accumulation_steps": "grad_accum",
             "max_steps": "max_steps (or max_tokens)", "learning_rate": "lr", "lr_scheduler_kwargs": "min_lr_ratio",
             "warmup_steps": "warmup_steps", "weight_decay": "weight_decay", "logging_steps": "log_every",
             "save_steps": "save_every", "save_total_limit": "keep_checkpoints", "seed": "seed", "data_seed": "seed",
             "bf16": "bf16", "use_cpu": "device", "torch_compile": "compile",
             "gradient_checkpointing": "gradient_checkpointing", "dataloader_num_workers": "workers",
             "report_to": "report_to", "disable_tqdm": "quiet", "output_dir": "out"}


def trl_config(cfg: SFTConfig):
    """TRL's SFTConfig for ``cfg``: reasonpipe's settings and the ``trl:`` pass-through
    (:func:`reasonpipe.trainer_args.trl_arguments`; a refused or unknown key is an InputError naming it)."""
    from trl import SFTConfig as TRLConfig

    cuda = resolve_device(cfg.device) == "cuda"
    owned = dict(
        output_dir=os.path.join(cfg.out, "checkpoints"),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        max_steps=cfg.max_steps,
        learning_rate=cfg.lr,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": cfg.min_lr_ratio},
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        logging_steps=cfg.log_every,
        logging_nan_inf_filter=False,
        save_steps=cfg.save_every,
        save_total_limit=cfg.keep_checkpoints,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=cuda and cfg.bf16,
        use_cpu=not cuda,
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        torch_compile=cuda and cfg.compile,
        gradient_checkpointing=cfg.gradient_checkpointing,
        dataloader_num_workers=cfg.workers,
        dataloader_pin_memory=cuda,
        report_to=trl_report_to(cfg.report_to),
        disable_tqdm=cfg.quiet or not sys.stderr.isatty(),  # in a log: StepLines instead
        dataset_kwargs={"skip_prepare_dataset": True},
        max_length=None,
        packing=False,
        completion_only_loss=True,
        remove_unused_columns=False,
        save_only_model=False,
    )
    return trl_arguments(TRLConfig, owned, cfg.trl, TRL_HOMES)


def make_trainer(cfg: SFTConfig, model: Any, hf: Any, dataset: Any, callbacks: list,
                 cum_tokens: list[int] | None = None, run_folder: str | None = None):
    """The TRL SFTTrainer subclass (:func:`reasonpipe.trl_compat.sft_trainer_class`), configured for speed (see
    the module docstring).

    ``cum_tokens[s]``: training tokens in the first ``s + 1`` steps (logged as ``tokens_seen``). ``run_folder``:
    where the trackers write (default ``cfg.out``; a DDP worker's trainer writes its checkpoints elsewhere).
    """
    from reasonpipe.trl_compat import sft_trainer_class

    args = trl_config(cfg)
    callbacks = list(callbacks) + tracking(cfg.report_to, run_folder or cfg.out)
    trainer = sft_trainer_class()(model=model, args=args, train_dataset=dataset, processing_class=hf,
                                  callbacks=callbacks, cum_tokens=cum_tokens)
    if cfg.quiet or not sys.stderr.isatty():
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # quiet: logs go to metrics.jsonl only
        if not cfg.quiet:
            from reasonpipe.console import step_lines

            trainer.add_callback(step_lines(f"sft {cfg.out}"))
    return trainer


def _callbacks(cfg: SFTConfig, metrics_path: str, started: float, hf: Any, heldout: list[tuple[str, str]],
               latest: dict[str, Any]):
    """Rank 0's callbacks: every log row to metrics.jsonl, and the learning diagnostics on the held-out traces
    every ``diagnostics_every`` steps and at the end (rows with ``diag/...`` keys; the last one also in ``latest``)."""
    from transformers import TrainerCallback

    from reasonpipe.diagnostics import token_accuracy

    def write(row: dict[str, Any]) -> None:
        with open(metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    class Metrics(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs:
                write({"step": state.global_step, "time": round(time.time() - started, 3), **logs})

    class Diagnostics(TrainerCallback):
        task = get_task_class(cfg.task)()

        def measure(self, state, model) -> None:
            texts, prompts = [t for t, _ in heldout], [p for _, p in heldout]
            acc = token_accuracy(model, hf, self.task, texts, prompts, max_len=cfg.max_len,
                                 text_format=cfg.text_format())
            latest.clear()
            latest.update(step=state.global_step, **acc.as_dict())
            write({"step": state.global_step, "time": round(time.time() - started, 3),
                   "diag/task_token_accuracy": acc.task, "diag/token_accuracy": acc.all, "diag/traces": acc.traces})

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if cfg.diagnostics_every and state.global_step % cfg.diagnostics_every == 0:
                self.measure(state, model)

        def on_train_end(self, args, state, control, model=None, **kwargs):
            if latest.get("step") != state.global_step:
                self.measure(state, model)

    return [Metrics()] + ([Diagnostics()] if heldout else [])


def train(cfg: SFTConfig, callbacks: list | tuple = ()) -> dict[str, Any]:
    """Run (or resume) one SFT run; returns a summary (also written to ``out/summary.json``).

    ``callbacks``: extra ``transformers.TrainerCallback`` objects (e.g. to stop early); with ``num_workers > 1``
    they are pickled to every worker (their ``args.process_index`` tells the rank).
    ``num_workers > 1`` runs :func:`_train_loop` data-parallel on Ray Train workers
    (:func:`reasonpipe.distributed.run_on_workers`): uses the Ray this process is connected to, else the cluster
    in ``RAY_ADDRESS`` (as inside a Ray job), else starts a local one; ``device="auto"`` trains on GPUs (NCCL)
    when the cluster has one per worker, else on CPUs (gloo).
    """
    check(cfg)
    if cfg.num_workers > 1:  # the workers run in their own working folders: every path they get is absolute
        cfg = dataclasses.replace(cfg, out=os.path.abspath(cfg.out), data=[os.path.abspath(p) for p in cfg.data],
                                  model=absolute_if_folder(cfg.model),
                                  resume=cfg.resume if cfg.resume in ("auto", "never") else os.path.abspath(cfg.resume))
    os.makedirs(cfg.out, exist_ok=True)
    if cfg.num_workers == 1:
        summary = _train_loop(cfg, callbacks)
    else:
        run_on_workers(
            _ddp_worker, {"cfg": cfg, "callbacks": list(callbacks)}, num_workers=cfg.num_workers, out=cfg.out,
            device=cfg.device, max_failures=cfg.max_failures, keep_checkpoints=cfg.keep_checkpoints,
            fresh=cfg.resume != "auto")
        with open(os.path.join(cfg.out, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)  # rank 0's
    write_manifest(cfg.out, asdict(cfg), cfg.seed, {f"data{i}": p for i, p in enumerate(cfg.data)},
                   extra={"summary": summary})
    return summary


def check(cfg: SFTConfig) -> Any:
    """Settings that cannot work, stopped before anything is written (the job calls it before its stage): the
    model with its tokenizer and format (:func:`reasonpipe.models.check_model`), the TRL pass-through, the rest.
    Returns the model check."""
    if cfg.num_workers < 1:
        raise InputError(f"num_workers must be at least 1, not {cfg.num_workers}", field="num_workers")
    if not cfg.data:
        raise InputError("no data files", field="data")
    ddp = cfg.num_workers > 1
    if ddp and cfg.max_failures < -1:
        raise InputError("max_failures must be -1 (no limit) or at least 0", field="max_failures")
    if cfg.resume not in ("auto", "never") and not os.path.isdir(cfg.resume):
        raise InputError("resume must be auto, never or a checkpoint folder", field="resume")
    if ddp and cfg.device not in ("auto", "cpu", "cuda"):
        raise InputError(f"device must be auto, cpu or cuda, not {cfg.device!r}", field="device")
    for path in cfg.data if ddp else ():
        if not os.path.isfile(path):
            raise InputError("no such data file", path=path, field="data")
    found = check_model(cfg.model, cfg.text_format(), cfg.task)
    cfg.check_settings(found.source.kind, get_task_class(cfg.task)(), lambda: trl_config(cfg), cfg.out)
    return found


def _ddp_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker (run by :func:`reasonpipe.distributed.run_on_workers`): :func:`_train_loop` as this
    rank, resuming from the checkpoint Ray hands it, reporting its checkpoints to Ray from a scratch folder."""
    cfg = dataclasses.replace(config["cfg"], device="cuda" if config["use_gpu"] else "cpu")
    rank, world = rank_and_world()
    with restored_checkpoint() as restored, scratch_folder(rank) as scratch:
        _train_loop(cfg, config["callbacks"], rank=rank, world=world, restored=restored,
                    summary_extra={"worker_nodes": gather_worker_nodes()},
                    first_callbacks=[report_to_ray()], trainer_out=scratch,
                    replica_checksums=gather_checksums)


def _train_loop(cfg: SFTConfig, callbacks: list | tuple = (), *, rank: int = 0, world: int = 1,
                restored: tuple[str, str] | None = None, first_callbacks: list | tuple = (),
                trainer_out: str | None = None,
                replica_checksums: Callable[[Any], list[str]] | None = None,
                summary_extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The SFT training loop, the same in the single process (the defaults) and in every data-parallel worker.

    Builds the dataset and the global data order (batches of ``batch_size x world``), turns ``max_tokens``
    into steps, builds the model, picks the checkpoint to resume from (``restored``, else ``cfg.resume``:
    the last complete one in ``out/checkpoints`` or a folder), resets ``metrics.jsonl`` or drops its rows
    after that checkpoint (rank 0), trains, saves ``out/final`` and writes ``out/summary.json`` (rank 0).

    ``rank``/``world``: this process among the data-parallel ones. ``restored``: ``(folder, path to report)``
    of a checkpoint handed over from outside (Ray's), which wins over ``cfg.resume``. ``first_callbacks``: run
    before the metrics file's and ``callbacks`` (the report-to-Ray one). ``trainer_out``: where the HF Trainer
    writes its checkpoints (default ``out``, i.e. ``out/checkpoints``). ``replica_checksums``: every rank's
    parameter checksum, a collective (DDP), added to the summary with ``workers`` and ``global_batch``.
    Returns the summary on rank 0, None on the other ranks.
    """
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    text_format = cfg.text_format()
    source = resolve_model(cfg.model)  # checked with the tokenizer by train() before any work
    hf = load_tokenizer(source.path) if text_format.pretrained else TaskTokenizer.for_task(cfg.task).hf()
    started = time.time()
    dataset, lengths, stats, heldout = build_dataset(cfg.data, cfg.task, hf, cfg.max_len, cfg.heldout, text_format)
    global_batch = cfg.batch_size * world
    order = bucketed_order(lengths, global_batch, cfg.max_steps * cfg.grad_accum, cfg.seed)
    per_step = lengths[np.asarray(order)].reshape(-1, global_batch * cfg.grad_accum).sum(axis=1)
    cum_tokens = np.cumsum(per_step).tolist()
    if cfg.max_tokens:  # the token budget as an exact number of steps
        cfg = dataclasses.replace(cfg, max_steps=min(cfg.max_steps, int(np.searchsorted(cum_tokens, cfg.max_tokens)) + 1))
    # DDP: the whole global order on every rank; Accelerate shards it by micro-batch (see the module docstring)
    dataset = dataset.select(order[: cfg.max_steps * global_batch * cfg.grad_accum])
    prepared = time.time() - started
    if source.kind == "size":
        model = build_model(cfg.model, hf, max_positions=max(cfg.max_len, 512), seed=cfg.seed)
    else:  # float32 weights (bf16 on CUDA comes from autocast); an adapter folder keeps training its adapter
        model = load_causal_lm(source.path, trainable=True, dtype=torch.float32)
    model = cfg.with_lora(model)

    local_checkpoints = os.path.join(cfg.out, "checkpoints")
    if restored:
        checkpoint, resumed_from = restored
    elif cfg.resume == "auto":
        checkpoint = last_complete_checkpoint(local_checkpoints) if os.path.isdir(local_checkpoints) else None
        resumed_from = checkpoint
    elif cfg.resume != "never":
        checkpoint = resumed_from = cfg.resume
    else:
        checkpoint = resumed_from = None
    start_step = checkpoint_step(checkpoint) if checkpoint else 0

    metrics_path = os.path.join(cfg.out, "metrics.jsonl")
    if rank == 0:
        if checkpoint is None and os.path.exists(metrics_path):
            os.unlink(metrics_path)  # a fresh run: its metrics start empty
        elif checkpoint is not None:
            drop_rows_after(metrics_path, start_step)  # logged again
    diagnostics: dict[str, Any] = {}  # the last held-out diagnostics (rank 0), for the summary
    all_callbacks = list(first_callbacks) + (_callbacks(cfg, metrics_path, started, hf, heldout, diagnostics)
                                             if rank == 0 else []) + list(callbacks)
    trainer_cfg = cfg if trainer_out is None else dataclasses.replace(cfg, out=trainer_out)
    trainer = make_trainer(trainer_cfg, model, hf, dataset, all_callbacks, cum_tokens, run_folder=cfg.out)
    t0 = time.time()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.time() - t0

    checksums = replica_checksums(model) if replica_checksums else None  # every rank joins
    final = os.path.join(cfg.out, "final")
    trainer.save_model(final)  # DDP: rank 0 writes
    if rank != 0:
        return None
    hf.save_pretrained(final)
    text_format.save(final)
    if cfg.lora.enabled and cfg.lora.merge:
        merge_adapter(final, os.path.join(cfg.out, "merged"))
    steps = trainer.state.global_step
    history = [r for r in trainer.state.log_history if "loss" in r]
    tokens_seen = cum_tokens[steps - 1] - (cum_tokens[start_step - 1] if start_step else 0)
    summary = {
        "steps": steps, "resumed_from": resumed_from, "train_seconds": round(seconds, 2),
        "prepare_seconds": round(prepared, 2), "tokens_seen_this_run": tokens_seen,
        "tokens_seen": cum_tokens[steps - 1],
        "tokens_per_second": round(tokens_seen / seconds, 1) if seconds > 0 else None,
        "first_loss": history[0]["loss"] if history else None, "last_loss": history[-1]["loss"] if history else None,
        "train_loss": result.training_loss, "data": asdict(stats),
        "parameters": sum(p.numel() for p in model.parameters()), "device": resolve_device(cfg.device),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "text_format": dataclasses.asdict(text_format), "model_source": source.kind,
        "diagnostics": diagnostics or None,
    }
    if checksums is not None:
        summary.update(workers=world, global_batch=global_batch * cfg.grad_accum, replica_checksums=checksums)
    summary.update(summary_extra or {})  # a DDP worker's: where the workers ran
    with atomic_write(os.path.join(cfg.out, "summary.json")) as f:
        json.dump(summary, f, indent=2)
    return summary
