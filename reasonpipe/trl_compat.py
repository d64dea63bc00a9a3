"""Where reasonpipe reaches into TRL's internals: every override of a private TRL method, in one module, checked
against the TRL version it was written for.

TRL's public API does not cover what the pipeline needs, so a few methods of its trainers are replaced:

- :func:`sft_trainer_class`: ``SFTTrainer`` with our data order (``_get_train_sampler``), a plain cross-entropy loss
  on right-padded batches without the attention mask (``compute_loss``), and sync-free token accuracy plus
  ``tokens_seen`` in its logs (``log``);
- :func:`fused_logprob_trainer_class`: ``GRPOTrainer`` whose per-token log-probabilities and entropies come from
  :mod:`reasonpipe.kernels.logprob` (``_get_per_token_logps_and_entropies``);
- :func:`use_cpu_weight_sync`: TRL's colocated vLLM rebuilt in float32 on vLLM's CPU backend, with its
  ``vllm_generation.sync_weights`` replaced by a checked reload (:func:`vllm_logprob_gap`);
- :func:`vllm_server_client` and :func:`use_server_weight_sync`: TRL's server mode talking to a
  :class:`reasonpipe.vllm_server.ManagedServer`: the ``VLLMClient`` that ``VLLMGeneration`` builds is replaced by a
  subclass (health before every request, a restart of a dead server, request timeouts, a seed per request), and
  ``vllm_generation.sync_weights`` by a push through a folder, checked by log-probabilities;
- :func:`seeded_rollout_trainer_class`: a ``GRPOTrainer`` (or a subclass) whose transformers rollouts are a pure
  function of (seed, step, row of the global batch) (``_generate_single_turn``), so that any number of
  data-parallel workers samples the completions one process samples.

Each depends on the signature and behaviour of a private method, so :func:`check_trl` (called before a trainer is
built) refuses a TRL whose major.minor version is not :data:`TESTED_TRL` (the version pyproject.toml pins), naming
these methods; ``REASONPIPE_ALLOW_TRL=1`` tries anyway. Moving to a new TRL: run tests/train (they exercise
every override), then add its version here.

Example::

    python -c "from reasonpipe.trl_compat import check_trl; print(check_trl())"
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

TESTED_TRL = ("1.16",)  # major.minor versions whose private methods the overrides below were written against
# TRL's SFTConfig and GRPOConfig turn gradient checkpointing on; ours default it off (benchmarks/bench_sft_cpu.py).
GRADIENT_CHECKPOINTING_HELP = ("recompute activations in the backward pass: less memory, about a third more compute "
                               "(TRL's default is on; off here: these models are small)")
OVERRIDDEN = ("SFTTrainer._get_train_sampler", "SFTTrainer.compute_loss", "SFTTrainer.log",
              "GRPOTrainer._get_per_token_logps_and_entropies", "GRPOTrainer.vllm_generation.sync_weights",
              "GRPOTrainer._generate_single_turn",
              "trl.generation.vllm_generation.VLLMClient (server mode)")


def check_trl(version: str | None = None) -> str:
    """The installed TRL version (or ``version``), if the overrides were written for it; RuntimeError otherwise
    (``REASONPIPE_ALLOW_TRL=1``: only the check is skipped)."""
    if version is None:
        import trl

        version = trl.__version__
    if ".".join(version.split(".")[:2]) in TESTED_TRL or os.environ.get("REASONPIPE_ALLOW_TRL") == "1":
        return version
    raise RuntimeError(
        f"trl {version} is installed, but reasonpipe overrides private TRL methods written against trl "
        f"{' / '.join(TESTED_TRL)} ({', '.join(OVERRIDDEN)}; reasonpipe/trl_compat.py): install the pinned version "
        f"(pip install -e . pins it), or set REASONPIPE_ALLOW_TRL=1 to try this one anyway")


def sft_trainer_class() -> type:
    """TRL's ``SFTTrainer`` with a plain cross-entropy loss and sync-free per-step metrics; data order is ours
    (the dataset is already in training order). ``cum_tokens`` (a constructor keyword): training tokens in the
    first ``s + 1`` steps, logged as ``tokens_seen``."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import SequentialSampler
    from trl import SFTTrainer

    check_trl()

    class TraceSFTTrainer(SFTTrainer):
        """SFTTrainer with a plain cross-entropy loss and sync-free per-step metrics; data order is ours."""

        def __init__(self, *args: Any, cum_tokens: list[int] | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._acc = None  # device tensor: [correct, counted]
            self.cum_tokens = cum_tokens  # training tokens in the first s + 1 steps (logged as tokens_seen)

        def _get_train_sampler(self, *args: Any, **kwargs: Any):
            return SequentialSampler(self.train_dataset)  # the order was fixed by bucketed_order

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            # Batches are right-padded, so under causal attention no real token ever sees a pad: the mask is
            # not needed, and leaving it out lets SDPA use its fused causal kernels instead of a masked path
            # (the masked path ran at 128k tokens/s for the 3M model on an H200, bucketed up to 4096 tokens).
            outputs = model(input_ids=inputs["input_ids"], use_cache=False)
            logits = outputs.logits[:, :-1, :]
            target = labels[:, 1:]
            loss_sum = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), target.reshape(-1),
                                       ignore_index=-100, reduction="sum")
            mask = target != -100
            counted = mask.sum()
            denom = num_items_in_batch if num_items_in_batch is not None else counted
            loss = loss_sum / torch.as_tensor(denom, device=loss_sum.device).clamp(min=1)
            if num_items_in_batch is not None and self.args.average_tokens_across_devices and self.args.world_size > 1:
                # DDP (reasonpipe.distributed): the count is over all ranks and DDP averages the gradients, so
                # scale back up, as the Trainer's own compute_loss does (the logged loss is the ranks' mean)
                loss = loss * self.accelerator.num_processes
            if model.training:
                with torch.no_grad():
                    correct = ((logits.argmax(-1) == target) & mask).sum()
                    step = torch.stack([correct, counted]).double()
                    self._acc = step if self._acc is None else self._acc + step
            return (loss, outputs) if return_outputs else loss

        def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
            if self._acc is not None and "loss" in logs:
                if torch.distributed.is_available() and torch.distributed.is_initialized():
                    torch.distributed.all_reduce(self._acc)  # DDP: every rank logs, so every rank joins
                correct, counted = self._acc.tolist()  # the one sync, at logging steps
                logs["token_accuracy"] = correct / max(counted, 1)
                self._acc = None
            if self.cum_tokens and self.state.global_step:
                logs["tokens_seen"] = self.cum_tokens[min(self.state.global_step, len(self.cum_tokens)) - 1]
            super().log(logs, *args, **kwargs)

    return TraceSFTTrainer


def vllm_logprob_gap(llm: Any, model: Any, ids: list[int]) -> float:
    """Largest |vLLM - transformers| log-probability of the tokens of ``ids`` (each given the ones before)."""
    from vllm import SamplingParams

    from reasonpipe.vllm_server import max_gap, model_logprobs

    out = llm.generate([{"prompt_token_ids": ids}], SamplingParams(max_tokens=1, prompt_logprobs=0), use_tqdm=False)
    theirs = [d[t].logprob for d, t in zip(out[0].prompt_logprobs[1:], ids[1:])]
    return max_gap(model_logprobs(model, ids), theirs)


def use_cpu_weight_sync(trainer: Any, probe_ids: list[int], tolerance: float = 1e-3) -> None:
    """Make TRL 1.16's colocated vLLM usable on vLLM's CPU backend, for this trainer only:

    - TRL builds its ``LLM`` without a dtype, and vLLM then runs a float32 checkpoint in bf16 on CPU, whose
      log-probabilities differed from the trained model's by up to 0.16 nats on the tiny model (0.27 against
      the same model in bf16: different kernels); rebuilt in float32 they agree to 3e-5. So the ``LLM`` is
      rebuilt in float32 (one more start-up, about 10 s for a tiny model);
    - TRL's ``sync_weights`` fails there ('Parameter' object has no attribute 'weight_loader'): it is replaced
      by vLLM's checkpoint-format reload, and after every update vLLM's log-probabilities on a probe sequence
      must match the trained weights within ``tolerance`` (RuntimeError otherwise).
    """
    import gc

    from vllm import LLM

    gen = trainer.vllm_generation
    old = gen.llm.llm_engine.model_config
    gen.llm = None
    gc.collect()
    gen.llm = LLM(model=old.model, tokenizer=old.tokenizer, dtype="float32", enforce_eager=True,
                  max_model_len=old.max_model_len, seed=0, distributed_executor_backend="external_launcher",
                  max_num_batched_tokens=4096, logprobs_mode="processed_logprobs")

    def sync_weights() -> None:
        model = trainer.accelerator.unwrap_model(trainer.model)
        weights = ((name, p.detach().to("cpu")) for name, p in model.state_dict().items())
        gen.llm.llm_engine.model_executor.driver_worker.reload_weights(weights_iterator=weights,
                                                                       is_checkpoint_format=True)
        gen.llm.reset_prefix_cache()
        gap = vllm_logprob_gap(gen.llm, model, probe_ids)
        trainer.vllm_sync_gaps.append(gap)
        if gap > tolerance:
            raise RuntimeError(f"vLLM does not follow the trained weights after a sync: log-probabilities differ "
                               f"by up to {gap:.3g} (tolerance {tolerance})")

    trainer.vllm_sync_gaps = []
    gen.sync_weights = sync_weights


@contextlib.contextmanager
def vllm_server_client(server: Any, seed: int) -> Iterator[None]:
    """While a GRPO trainer is built in ``vllm_mode: server``: TRL's ``VLLMClient`` (which ``VLLMGeneration`` builds
    on the main process) replaced by a subclass that talks to ``server`` (a
    :class:`reasonpipe.vllm_server.ManagedServer`) whatever URL TRL was given:

    - before every rollout request, ``server.ensure()`` (``/health``; a dead server the job started is restarted
      from the last pushed weights), and a request that fails on the connection is sent once more after it;
    - every request has ``request_timeout``, and HTTP retries are few (TRL's 5 retries, back-off 2 s doubling,
      add up to about a minute, 2 + 4 + 8 + 16 + 32 s, before a killed server's first request fails);
    - each rollout request carries a seed, ``int_seed("grpo-server-rollout", seed, step, call)``, so the server's
      samples follow the run's seed;
    - with ``weight_sync: disk`` there is no NCCL group (:func:`use_server_weight_sync` pushes instead), only a check
      that the server has its dev-mode endpoints.

    The trainer's step comes from ``client.step_of``, which the caller points at the trainer once it is built
    (``reasonpipe.rl.make_trainer``); a resumed run then draws the seeds the uninterrupted one drew."""
    import requests
    import trl.generation.vllm_generation as vg
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    from reasonpipe.seeds import int_seed

    check_trl()
    base = vg.VLLMClient

    class ServerClient(base):
        def __init__(self, base_url: str | None = None, *args: Any, **kwargs: Any) -> None:
            server.ensure()
            super().__init__(base_url=server.url, group_port=kwargs.get("group_port", 51216),
                             connection_timeout=kwargs.get("connection_timeout", 0.0))
            adapter = HTTPAdapter(max_retries=Retry(total=1, connect=1, read=0, backoff_factor=0.5,
                                                    allowed_methods=["GET", "POST"]))
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)
            self.step_of: Any = lambda: 0
            self._calls: tuple[int, int] = (-1, 0)  # (step, requests in that step)

        def init_communicator(self, device: Any = 0) -> None:
            if server.settings.weight_sync == "nccl":
                return super().init_communicator(device)
            self.get_server_info()  # a clear error when the dev-mode endpoints are off

        def _get(self, url: str, **kwargs: Any) -> dict:
            kwargs.setdefault("timeout", server.settings.request_timeout)
            return super()._get(url, **kwargs)

        def _post(self, url: str, **kwargs: Any) -> dict:
            kwargs.setdefault("timeout", server.settings.request_timeout)
            try:
                return super()._post(url, **kwargs)
            except requests.Timeout:
                raise RuntimeError(f"the vLLM server at {self.base_url} did not answer {url} within "
                                   f"{server.settings.request_timeout:g} s (vllm_server.request_timeout)") from None

        def generate(self, prompts: Any, *args: Any, generation_kwargs: dict | None = None, **kwargs: Any) -> dict:
            step = self.step_of()
            calls = self._calls[1] + 1 if self._calls[0] == step else 0
            self._calls = (step, calls)
            generation_kwargs = {"seed": int_seed("grpo-server-rollout", seed, step, calls) % 2**31,
                                 **(generation_kwargs or {})}
            for attempt in range(2):
                if server.ensure(hooks=True):
                    self.base_url = server.url
                try:
                    out = super().generate(prompts, *args, generation_kwargs=generation_kwargs, **kwargs)
                    server.requests += 1
                    return out
                except requests.ConnectionError:
                    if attempt:
                        raise
            raise AssertionError("unreachable")

    vg.VLLMClient = ServerClient
    try:
        yield
    finally:
        vg.VLLMClient = base


def use_server_weight_sync(trainer: Any, server: Any, probe_ids: list[int], tolerance: float = 1e-3) -> None:
    """TRL's ``vllm_generation.sync_weights`` in server mode replaced by a push through a folder
    (:meth:`reasonpipe.vllm_server.ManagedServer.push`: every ``state_dict`` key, the tied LM head included), then
    the check: the server's log-probabilities on ``probe_ids`` within ``tolerance`` of the trained model's
    (RuntimeError otherwise), also after a restart. Main process only (DDP replicas hold the same weights)."""
    from reasonpipe.vllm_server import full_state

    gen = trainer.vllm_generation
    trainer.vllm_sync_gaps = []
    trainer.vllm_push_seconds = []

    def check() -> None:
        model = trainer.accelerator.unwrap_model(trainer.model)
        gap = server.logprob_gap(model, probe_ids)
        trainer.vllm_sync_gaps.append(gap)
        if gap > tolerance:
            raise RuntimeError(f"the vLLM server at {server.url} does not follow the trained weights: "
                               f"log-probabilities differ by up to {gap:.3g} (tolerance {tolerance})")

    def sync_weights() -> None:
        if not trainer.accelerator.is_main_process:
            return
        model = trainer.accelerator.unwrap_model(trainer.model)
        if server.ensure(hooks=False):  # restarted from the last push: this push and check follow
            gen.vllm_client.base_url = server.url
        trainer.vllm_push_seconds.append(server.push(full_state(model), model.config))
        check()

    if trainer.accelerator.is_main_process:
        server.on_restart.append(check)
    gen.sync_weights = sync_weights


def fused_logprob_trainer_class() -> type:
    """TRL's ``GRPOTrainer`` with its per-token log-probabilities and entropies computed by
    :func:`reasonpipe.kernels.logprob.token_logprobs` (``fused_logprobs: true``).

    TRL 1.16 scores completions through a fused LM head it patches onto the model (``fused_lm_head=True``: the
    hidden states are projected in tiles and the logits never exist whole). This subclass instead runs the model's
    ordinary forward for the last ``logits_to_keep + 1`` positions (logits in the model's dtype, under the same
    autocast) and reads them once with the fused log-prob kernel (Triton on CUDA, the torch reference on CPU;
    ``logprob_impl`` picks, as ``impl`` does there). Same semantics as TRL's method: logits divided by
    ``self.temperature``; the completion tokens scored, each from the position before it; positions whose
    ``attention_mask`` is 0 give 0 log-prob and 0 entropy; float32 results, ``[batch, logits_to_keep]``; chunks of
    ``batch_size`` rows. The last position's logits (which predict nothing) get ``ignore_index``, so the gradient
    is written for the whole logits tensor in one pass with no slice copy. Multimodal inputs and the MoE
    auxiliary loss fall back to TRL's own method. Trade-off: this holds the ``[b, K + 1, V]`` logits and their
    gradient in the model's dtype, which TRL's tiled head avoids; at our task vocabularies (tens of tokens) that is
    small, at 150k-token vocabularies it is ~5 GB per 16k tokens in bf16.
    """
    import torch
    from trl import GRPOTrainer

    from reasonpipe.kernels.logprob import token_logprobs

    check_trl()

    class FusedLogprobGRPOTrainer(GRPOTrainer):
        logprob_impl = "auto"  # auto | triton | reference (reasonpipe.kernels.logprob.token_logprobs' impl)

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                               batch_size=None, compute_entropy=False, compute_aux_loss=False,
                                               **extra):
            if compute_aux_loss or any(v is not None for v in extra.values()):
                return super()._get_per_token_logps_and_entropies(
                    model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                    compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **extra)
            batch_size = batch_size or input_ids.size(0)
            all_logps, all_entropies = [], []
            for start in range(0, input_ids.size(0), batch_size):
                ids = input_ids[start:start + batch_size]
                mask = attention_mask[start:start + batch_size]
                with self.accelerator.autocast():
                    logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=logits_to_keep + 1,
                                   use_cache=False).logits  # [b, K + 1, V]: position j predicts token j + 1
                targets = ids[:, -logits_to_keep:].masked_fill(mask[:, -logits_to_keep:] == 0, -100)
                targets = torch.nn.functional.pad(targets, (0, 1), value=-100)  # the last position predicts nothing
                logps, entropies = token_logprobs(logits, targets, temperature=self.temperature, ignore_index=-100,
                                                  with_entropy=compute_entropy, impl=self.logprob_impl)
                all_logps.append(logps[:, :-1])
                if compute_entropy:
                    all_entropies.append(entropies[:, :-1])
            logps = torch.cat(all_logps, dim=0)
            return logps, (torch.cat(all_entropies, dim=0) if compute_entropy else None), None

    return FusedLogprobGRPOTrainer


def seeded_rollout_trainer_class(base: type) -> type:
    """``base`` (TRL's ``GRPOTrainer`` or a subclass of it) whose transformers rollouts are a pure function of
    (seed, global step, generation call, row of the global batch), whatever the number of processes.

    TRL samples with the process's torch generator, so two data-parallel workers would draw other completions than
    one process with the same global batch. Here each row is sampled by the Gumbel-max trick: the logits divided by
    the temperature, plus Gumbel noise from a generator of the row's own (seeded by
    ``reasonpipe.seeds.int_seed("grpo-rollout", seed, step, call, row)``, ``row`` = process index x rows per
    process + the row's index here, which is the row's place in the global batch as Accelerate shards it), then
    the argmax: an exact sample of softmax(logits / T). The result is the same distribution as TRL's sampling, a
    different random stream. Only plain temperature sampling is seeded this way: with ``top_p < 1``, ``top_k``,
    ``min_p`` or vLLM rollouts TRL's own sampling runs. Cost: one small random draw per row and token (negligible
    beside the forward pass on CPU; on a GPU, batches of hundreds of rows add that many kernel launches per token).
    """
    import copy

    import torch
    from transformers import LogitsProcessorList

    from reasonpipe.seeds import int_seed

    check_trl()

    class GumbelRows:
        """A logits processor: scores / T + Gumbel noise, one generator per row."""

        def __init__(self, seeds: list[int], temperature: float) -> None:
            self.seeds, self.temperature, self.generators = seeds, temperature, None

        def __call__(self, input_ids, scores):
            if self.generators is None:
                self.generators = [torch.Generator(device=scores.device).manual_seed(s) for s in self.seeds]
            u = torch.stack([torch.rand(scores.shape[-1], generator=g, device=scores.device) for g in self.generators])
            gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1 - 1e-7)))
            return scores.float() / self.temperature + gumbel

    class SeededRolloutTrainer(base):
        def _seedable(self) -> bool:
            g = None if self.use_vllm else getattr(self, "generation_config", None)
            return (g is not None and bool(getattr(g, "do_sample", True)) and (g.top_p is None or g.top_p >= 1.0)
                    and not g.top_k and not getattr(g, "min_p", None) and (self.temperature or 0) > 0)

        def _generate_single_turn(self, prompt_ids, *args, **kwargs):
            if not self._seedable():
                return super()._generate_single_turn(prompt_ids, *args, **kwargs)
            step = self.state.global_step
            self._rollout_call = getattr(self, "_rollout_call", (step, -1))
            call = self._rollout_call[1] + 1 if self._rollout_call[0] == step else 0
            self._rollout_call = (step, call)
            first = self.accelerator.process_index * len(prompt_ids)
            seeds = [int_seed("grpo-rollout", self.args.seed, step, call, first + i) for i in range(len(prompt_ids))]
            model = self.accelerator.unwrap_model(self.model_wrapped)
            greedy = copy.deepcopy(self.generation_config)
            greedy.do_sample, greedy.temperature, greedy.top_p, greedy.top_k = False, None, None, None
            original = model.generate

            def generate(*a, **k):
                k["generation_config"] = greedy
                return original(*a, logits_processor=LogitsProcessorList([GumbelRows(seeds, self.temperature)]), **k)

            model.generate = generate
            try:
                return super()._generate_single_turn(prompt_ids, *args, **kwargs)
            finally:
                del model.generate

    SeededRolloutTrainer.__name__ = f"Seeded{base.__name__}"
    return SeededRolloutTrainer
