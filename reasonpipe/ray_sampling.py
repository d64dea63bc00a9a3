"""Evaluation sampling spread over Ray workers: the sampler contract of :mod:`reasonpipe.sampling`, with the
work cut into batches that run on ``workers`` Ray actors, each holding its own copy of the model.

``hf``: the prompts' sequences are cut into the same batches one :class:`~reasonpipe.sampling.HFSampler` would
make, and each batch's random stream is seeded by the seed and the batch's position alone, so the completions
are the same whatever the number of workers (on CPU bit for bit: the same batch through the same kernels).
Batches go to whichever actor is free (at most two in flight per actor), so long and short batches balance.
``vllm``: the prompts are cut into ``workers`` contiguous shards, one vLLM engine per actor; vLLM seeds each
request by itself, so the samples do not depend on the sharding either (up to GPU kernel non-determinism).

Each actor takes one CPU, or one GPU when the cluster has one per worker. Ray: the one this process is
connected to, else ``RAY_ADDRESS``'s (inside a submitted job), else a local one for the sampler's lifetime
(:func:`reasonpipe.localray.ray_session`); :meth:`RaySampler.close` ends what it started. A worker that dies
is restarted and its batch run again (``max_restarts``).

Example::

    reasonpipe eval --config configs/eval-demo.yaml --workers 2   # after make demo
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.sampling import Completion, make_sampler, sample_jobs
from reasonpipe.textformat import TextFormat


class _SamplerActor:
    """One Ray worker: a sampler over its own copy of the checkpoint."""

    def __init__(self, kind: str, path: str, options: dict[str, Any]) -> None:
        import torch

        os.environ.setdefault("OMP_NUM_THREADS", "1")
        torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))
        self.kind, self.options = kind, options
        self.sampler = make_sampler(kind, path, **options)

    def load(self, path: str) -> None:
        """Another checkpoint in the same worker (the process and its imports are reused)."""
        self.sampler = None
        self.sampler = make_sampler(self.kind, path, **self.options)

    def batch(self, batch: list[list[int]], max_new_tokens: int, temperature: float, seed: int,
              index: int) -> list[Completion]:
        return self.sampler.generate_batch(batch, max_new_tokens, temperature, seed, index)

    def sample(self, prompts: list[str], n: int, max_new_tokens: int, temperature: float,
               seed: int) -> list[list[Completion]]:
        return self.sampler.sample(prompts, n, max_new_tokens, temperature, seed)


class RaySampler:
    """``workers`` Ray actors sampling from the checkpoint folder ``path``; the :class:`~reasonpipe.sampling.Sampler`
    contract. ``options`` are the sampler's own (``device``, ``batch_size``, ``max_model_len``, ...)."""

    def __init__(self, kind: str, path: str, workers: int, *, max_restarts: int = 2, **options: Any) -> None:
        import ray

        from reasonpipe.localray import ray_session

        if kind not in ("hf", "vllm"):
            raise InputError(f"unknown sampler {kind!r} (known: hf, vllm)", field="sampler")
        if workers < 1:
            raise InputError(f"workers must be at least 1, not {workers}", field="workers")
        self.kind, self.workers = kind, workers
        self._describe(path)
        self.batch_size = int(options.get("batch_size", 64))
        self._session = contextlib.ExitStack()
        self._session.enter_context(ray_session(num_cpus=workers))
        try:
            gpus = ray.cluster_resources().get("GPU", 0)
            device = options.get("device", "auto")
            if device == "cuda" and gpus < workers:
                raise InputError(f"{workers} workers on cuda need {workers} GPUs; the cluster has {gpus:g}",
                                 field="workers")
            want_gpu = device != "cpu" and gpus >= workers  # otherwise Ray hides the GPUs: the workers use CPUs
            actor = ray.remote(num_cpus=0 if want_gpu else 1, num_gpus=1 if want_gpu else 0,
                               max_restarts=max_restarts, max_task_retries=max_restarts)(_SamplerActor)
            self.actors = [actor.remote(kind, os.path.abspath(path), options) for _ in range(workers)]
        except BaseException:
            self._session.close()
            raise

    def _describe(self, path: str) -> None:
        from transformers import AutoConfig

        from reasonpipe.models import load_tokenizer

        if not os.path.isdir(path):
            raise InputError("no such checkpoint folder", path=path)
        self.tokenizer = load_tokenizer(path)
        self.text_format = TextFormat.load(path)
        self.config = AutoConfig.from_pretrained(path)

    def load(self, path: str) -> None:
        """Sample from another checkpoint with the same workers (starting a worker costs seconds: its
        imports; loading a small model, milliseconds)."""
        import ray

        self._describe(path)
        ray.get([actor.load.remote(os.path.abspath(path)) for actor in self.actors])

    def ready(self) -> None:
        """Wait until every worker has loaded its model (e.g. to time sampling alone)."""
        import ray

        ray.get([actor.__ray_ready__.remote() for actor in self.actors])

    def encode(self, prompt: str) -> list[int]:
        return self.text_format.prompt_ids(self.tokenizer, prompt)

    def sample(self, prompts: list[str], n: int, max_new_tokens: int, temperature: float,
               seed: int) -> list[list[Completion]]:
        import ray

        if self.kind == "vllm":
            size = -(-len(prompts) // self.workers)
            shards = [(a, prompts[a:a + size]) for a in range(0, len(prompts), size)]
            handles = [self.actors[k].sample.remote(part, n, max_new_tokens, temperature, seed)
                       for k, (_, part) in enumerate(shards)]
            return [row for rows in ray.get(handles) for row in rows]
        jobs = sample_jobs([self.encode(p) for p in prompts], n)
        batches = [jobs[start:start + self.batch_size] for start in range(0, len(jobs), self.batch_size)]
        done: dict[int, list[Completion]] = {}
        free = [a for a in self.actors for _ in range(2)]  # two batches in flight per actor
        running: dict[Any, tuple[int, Any]] = {}
        todo = list(range(len(batches)))
        while todo or running:
            while todo and free:
                b, actor = todo.pop(0), free.pop(0)
                handle = actor.batch.remote([ids for _, ids in batches[b]], max_new_tokens, temperature, seed, b)
                running[handle] = (b, actor)
            ready, _ = ray.wait(list(running), num_returns=1)
            b, actor = running.pop(ready[0])
            done[b] = ray.get(ready[0])
            free.append(actor)
        results: list[list[Completion]] = [[] for _ in prompts]
        for b, batch in enumerate(batches):
            for (i, _), completion in zip(batch, done[b]):
                results[i].append(completion)
        return results

    def close(self) -> None:
        """Release the actors (and stop the Ray this sampler started)."""
        import ray

        for actor in getattr(self, "actors", []):
            with contextlib.suppress(Exception):
                ray.kill(actor)
        self.actors = []
        self._session.close()

    def __enter__(self) -> RaySampler:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
