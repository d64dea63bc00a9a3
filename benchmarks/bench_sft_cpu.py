"""CPU SFT throughput: reasonpipe's SFT path against a plain PyTorch loop on the same model, data and batches.

Both train the same freshly initialised model (same size, same seed) for ``--steps`` optimizer steps on the same
examples in the same order and batch shape (``reasonpipe.sft.build_dataset`` + ``bucketed_order``, right-padded
batches), AdamW at the same learning rate, one thread. The plain loop is the floor any trainer pays: forward,
cross-entropy on the completion tokens, backward, step. Tokens/s counts the real (unpadded) tokens, warm-up steps
excluded. Also ours with gradient checkpointing, TRL's default, which reasonpipe turns off (it recomputes the
forward pass in the backward: about a third more compute for memory these models do not need). One JSON row per
size (host, versions, the tokens/s and their ratios to the plain loop) to stdout or ``--out``.

Example (about a minute per size here)::

    reasonpipe gen countdown --n 2000 --searcher dfs --seed 1 --numbers 3 --max-number 9 --target-min 10 \\
        --target-max 49 --out /tmp/cd3.jsonl --quiet
    python benchmarks/bench_sft_cpu.py --data /tmp/cd3.jsonl --sizes tiny 1M --steps 60
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
from rows import machine, write_row  # noqa: E402 (benchmarks/rows.py)
WARMUP = 10


def plain_loop(size: str, data: str, steps: int, batch: int, max_len: int, lr: float, seed: int) -> float:
    """Tokens/s of a plain PyTorch loop over the batches reasonpipe's SFT would train on, after WARMUP steps."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from reasonpipe.models import build_model
    from reasonpipe.sft import bucketed_order, build_dataset
    from reasonpipe.tokenizer import TaskTokenizer

    torch.set_num_threads(1)
    hf = TaskTokenizer.for_task("countdown").hf()
    dataset, lengths, _, _ = build_dataset([data], "countdown", hf, max_len)
    order = bucketed_order(lengths, batch, steps, seed)
    model = build_model(size, hf, max_positions=max(max_len, 512), seed=seed)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    pad = hf.pad_token_id
    tokens, t0 = 0, 0.0
    for step in range(steps):
        rows = [dataset[int(i)] for i in order[step * batch:(step + 1) * batch]]
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((batch, width), pad, dtype=torch.long)
        labels = torch.full((batch, width), -100, dtype=torch.long)
        for j, r in enumerate(rows):
            ids[j, :len(r["input_ids"])] = torch.tensor(r["input_ids"])
            labels[j, :len(r["labels"])] = torch.tensor(r["labels"])
        if step == WARMUP:
            t0, tokens = time.perf_counter(), 0
        logits = model(input_ids=ids, use_cache=False).logits[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels[:, 1:].reshape(-1), ignore_index=-100)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(np.sum([len(r["input_ids"]) for r in rows]))
    return tokens / (time.perf_counter() - t0)


def ours(size: str, data: str, steps: int, batch: int, max_len: int, lr: float, seed: int,
         checkpointing: bool = False) -> float:
    """Tokens/s of reasonpipe.sft.train on the same settings, after WARMUP steps (from its metrics rows);
    ``checkpointing``: with gradient checkpointing, TRL's default (off in reasonpipe)."""
    from reasonpipe.sft import SFTConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = SFTConfig(data=[data], out=tmp, model=size, max_steps=steps, max_len=max_len, batch_size=batch, lr=lr,
                        warmup_steps=0, seed=seed, save_every=10 * steps, log_every=WARMUP, heldout=0, quiet=True,
                        gradient_checkpointing=checkpointing)
        train(cfg)
        with open(os.path.join(tmp, "metrics.jsonl"), encoding="utf-8") as f:
            rows = [r for r in map(json.loads, f) if "tokens_seen" in r and "loss" in r]
    first = next(r for r in rows if r["step"] == WARMUP)
    last = rows[-1]
    return (last["tokens_seen"] - first["tokens_seen"]) / (last["time"] - first["time"])


def main() -> int:
    import torch
    import transformers
    import trl

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "1M"])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-len", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.steps < 3 * WARMUP:
        parser.error(f"--steps must be at least {3 * WARMUP}: tokens/s is read between logged steps after {WARMUP} "
                     "warm-up steps")
    for size in args.sizes:
        shape = (size, args.data, args.steps, args.batch, args.max_len, args.lr, args.seed)
        plain = plain_loop(*shape)
        mine = ours(*shape)
        trl_default = ours(*shape, checkpointing=True)
        write_row({
            "bench": "sft_cpu", **machine(), "threads": 1, "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
            "size": size, "steps": args.steps, "batch": args.batch, "max_len": args.max_len,
            "plain_tokens_per_s": round(plain, 1), "reasonpipe_tokens_per_s": round(mine, 1),
            "ratio": round(mine / plain, 3), "reasonpipe_checkpointing_tokens_per_s": round(trl_default, 1),
            "ratio_checkpointing": round(trl_default / plain, 3)}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
