"""Training and sampling throughput: plain PyTorch against the SFT path, and HF generate's KV caches.

Rows (JSON, one per measurement, also appended to ``--out``):

- ``train_plain``: a plain loop (HF Qwen2 of a named size, bf16 autocast on CUDA, SDPA, fused AdamW, no
  compile; random tokens, batch ``--batch`` x ``--seq``): the baseline the issue measured;
- ``train_plain_compiled``: the same under ``torch.compile`` (the stretch target);
- ``train_sft``: our SFT path (``reasonpipe.sft.make_trainer``: TRL's SFTTrainer subclass) on data of the same
  shape, timed between the trainer's own step-end callbacks after ``--warmup`` steps;
- ``generate``: HF ``generate`` on a 4-layer 256-wide Qwen2 at batch 256, dynamic against static cache.

Example (CPU, a smoke run)::

    OMP_NUM_THREADS=2 python benchmarks/bench_sft_gpu.py --sizes tiny --batch 4 --seq 128 --steps 4 --warmup 1 --gen-batch 8 --gen-tokens 16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from reasonpipe.models import build_model  # noqa: E402
from reasonpipe.tokenizer import TaskTokenizer  # noqa: E402


def device_name() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu"


def emit(out: str | None, **row) -> None:
    row.update(device=device_name(), torch=torch.__version__, time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    line = json.dumps(row)
    print(line, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def plain_loop(size: str, batch: int, seq: int, steps: int, warmup: int, compile_model: bool) -> float:
    """Tokens/s of a minimal training loop (the baseline)."""
    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"
    hf = TaskTokenizer.for_task("countdown").hf()
    model = build_model(size, hf, max_positions=max(seq, 512)).to(dev)
    model.config._attn_implementation = "sdpa"
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=cuda)
    step_fn = model
    if compile_model:
        step_fn = torch.compile(model)
    x = torch.randint(4, len(hf), (batch, seq), device=dev)
    for i in range(warmup + steps):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=cuda):
            loss = step_fn(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    sync()
    return batch * seq * steps / (time.perf_counter() - t0)


def sft_path(size: str, batch: int, seq: int, steps: int, warmup: int, compile_model: bool, workers: int) -> float:
    """Tokens/s of reasonpipe's SFT trainer on data of the same shape."""
    import pyarrow as pa
    from datasets import Dataset
    from transformers import TrainerCallback

    from reasonpipe.sft import SFTConfig, make_trainer

    hf = TaskTokenizer.for_task("countdown").hf()
    n = batch * (steps + warmup)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, len(hf), (n, seq), generator=g).numpy()
    labels = ids.copy()
    labels[:, :16] = -100  # a prompt
    table = pa.table({"input_ids": [list(r) for r in ids], "labels": [list(r) for r in labels]})
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            sync()
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        cfg = SFTConfig(data=["synthetic"], out=tmp, model=size, max_len=seq, batch_size=batch, max_steps=steps + warmup,
                        save_every=10**9, log_every=10**9, warmup_steps=1, compile=compile_model, workers=workers,
                        quiet=True)
        model = build_model(size, hf, max_positions=max(seq, 512))
        trainer = make_trainer(cfg, model, hf, Dataset(table), [Clock()])
        trainer.train()
    return batch * seq * steps / (stamps[-1] - stamps[warmup - 1])


def generate(batch: int, new_tokens: int, static: bool) -> float:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"
    cfg = Qwen2Config(vocab_size=64, hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=8,
                      num_key_value_heads=2, head_dim=32, max_position_embeddings=2048, pad_token_id=0, eos_token_id=2,
                      bos_token_id=1)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).to(dev, dtype=torch.bfloat16 if cuda else torch.float32).eval()
    x = torch.randint(4, 64, (batch, 32), device=dev)
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=True, top_k=0, pad_token_id=0)
    if static:
        kwargs["cache_implementation"] = "static"
    with torch.inference_mode():
        model.generate(input_ids=x, **{**kwargs, "max_new_tokens": 8, "min_new_tokens": 8})  # warm-up
        sync()
        t0 = time.perf_counter()
        model.generate(input_ids=x, **kwargs)
        sync()
    return batch * new_tokens / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="3M,17M,38M,144M")
    p.add_argument("--sft-sizes", default="3M,17M", help="sizes for the SFT path (it builds a trainer each)")
    p.add_argument("--compile-sizes", default="3M,17M")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--gen-batch", type=int, default=256)
    p.add_argument("--gen-tokens", type=int, default=256)
    p.add_argument("--static", action="store_true", help="also time the static KV cache (it compiles: slow start)")
    p.add_argument("--out")
    a = p.parse_args()
    shape = {"batch": a.batch, "seq": a.seq, "steps": a.steps}
    for size in filter(None, a.sizes.split(",")):
        emit(a.out, bench="train_plain", size=size, tokens_per_s=round(plain_loop(size, a.batch, a.seq, a.steps, a.warmup, False)), **shape)
    for size in filter(None, a.sft_sizes.split(",")):
        emit(a.out, bench="train_sft", size=size, tokens_per_s=round(sft_path(size, a.batch, a.seq, a.steps, a.warmup, False, a.workers)), **shape)
    for size in filter(None, a.compile_sizes.split(",")):
        t0 = time.perf_counter()
        tps = plain_loop(size, a.batch, a.seq, a.steps, a.warmup, True)
        emit(a.out, bench="train_plain_compiled", size=size, tokens_per_s=round(tps), wall_s=round(time.perf_counter() - t0, 1), **shape)
        t0 = time.perf_counter()
        tps = sft_path(size, a.batch, a.seq, a.steps, a.warmup, True, a.workers)
        emit(a.out, bench="train_sft_compiled", size=size, tokens_per_s=round(tps), wall_s=round(time.perf_counter() - t0, 1), **shape)
    for static in (False, True):
        if static and not (a.static and torch.cuda.is_available()):
            continue
        emit(a.out, bench="generate", cache="static" if static else "dynamic", batch=a.gen_batch, new_tokens=a.gen_tokens,
             tokens_per_s=round(generate(a.gen_batch, a.gen_tokens, static)))


if __name__ == "__main__":
    main()
