"""Where does learning start on CountDown? Task-token accuracy against training tokens, per model size.

For each model size, trains SFT (``reasonpipe.sft``, the pipeline's own path) on a DFS trace file with the learning
diagnostics every ``--every`` steps, then splits the final model's teacher-forced accuracy on the held-out traces
by what the task tokens are (``reasonpipe.traces.countdown.task_spans``): an operation's **result** digits, the
**leftover** numbers after it, and the **check** (``equal: Goal Reached`` / ``unequal: No Solution``; its first
word separately, the decision), and the results by operator. One JSON row per size (host, versions, settings,
the curve, the split) to stdout or ``--out``; the figures behind the CPU recipes' comments come from here.

Example (about 5 minutes per size on one core)::

    reasonpipe gen countdown --n 20000 --searcher dfs --seed 1 --numbers 3 --max-number 9 --target-min 10 \\
        --target-max 49 --out /tmp/cd3-dfs.jsonl --quiet
    python benchmarks/learning_countdown.py --data /tmp/cd3-dfs.jsonl --sizes tiny 1M --minutes 4 --out /tmp/learn.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
from rows import machine, write_row  # noqa: E402 (benchmarks/rows.py)


def split_accuracy(path: str, heldout: list[tuple[str, str]], max_len: int) -> dict[str, Any]:
    """Teacher-forced accuracy of the model at ``path`` on ``heldout`` traces, split by kind of task token."""
    import torch
    from transformers import AutoModelForCausalLM

    from reasonpipe.diagnostics import task_token_mask
    from reasonpipe.models import load_tokenizer
    from reasonpipe.tasks import make_task
    from reasonpipe.traces.countdown import task_spans

    model = AutoModelForCausalLM.from_pretrained(path).eval()
    hf = load_tokenizer(path)
    task = make_task("countdown")
    counts: dict[str, list[int]] = {}

    def add(kind: str, ok: bool) -> None:
        c = counts.setdefault(kind, [0, 0])
        c[0] += ok
        c[1] += 1

    for text, prompt in heldout:
        ids = task_token_mask(hf, task, text, prompt)[0][:max_len]
        offsets = hf(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        with torch.no_grad():
            pred = model(input_ids=torch.tensor([ids])).logits[0].argmax(-1).tolist()
        for a, b in task_spans(text):
            piece = text[a:b]
            kind = "leftover" if piece.startswith("[") else "check" if "equal" in piece else "result"
            for t, (s, e) in enumerate(offsets):
                if s >= a and e <= b and t + 1 < len(ids):
                    ok = pred[t] == ids[t + 1]
                    add(kind, ok)
                    if kind == "check" and s == a:
                        add("check decision", ok)
                    if kind == "result":
                        operation = text[text.rfind(": ", 0, a) + 2:a - 1]  # "27+6" of "...: 27+6=33"
                        add(f"result {next(ch for ch in '+-*/' if ch in operation)}", ok)
    return {k: {"accuracy": round(c / n, 4), "tokens": n} for k, (c, n) in sorted(counts.items())}


def run(size: str, data: str, minutes: float, lr: float, every: int, max_len: int, batch: int) -> dict[str, Any]:
    from reasonpipe.sft import SFTConfig, train

    probe = SFTConfig(data=[data], model=size, max_steps=20, max_len=max_len, batch_size=batch, quiet=True,
                      heldout=0, save_every=10_000)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        speed = train(SFTConfig(**{**probe.__dict__, "out": os.path.join(tmp, "probe")}))["tokens_per_second"]
        tokens = int(speed * minutes * 60)
        cfg = SFTConfig(data=[data], out=os.path.join(tmp, "run"), model=size, max_steps=100_000, max_tokens=tokens,
                        max_len=max_len, batch_size=batch, lr=lr, warmup_steps=20, diagnostics_every=every,
                        heldout=64, save_every=100_000, quiet=True)
        summary = train(cfg)
        with open(os.path.join(cfg.out, "metrics.jsonl"), encoding="utf-8") as f:
            curve = [{"step": r["step"], "task_token_accuracy": round(r["diag/task_token_accuracy"], 4),
                      "token_accuracy": round(r["diag/token_accuracy"], 4)}
                     for r in map(json.loads, f) if "diag/task_token_accuracy" in r]
        from reasonpipe.sft import build_dataset
        from reasonpipe.tokenizer import TaskTokenizer

        heldout = build_dataset([data], "countdown", TaskTokenizer.for_task("countdown").hf(), max_len, 64)[3]
        split = split_accuracy(os.path.join(cfg.out, "final"), heldout, max_len)
    return {"size": size, "parameters": summary["parameters"], "tokens_seen": summary["tokens_seen"],
            "steps": summary["steps"], "tokens_per_second": summary["tokens_per_second"], "lr": lr, "batch": batch,
            "max_len": max_len, "minutes": round((time.time() - t0) / 60, 2), "curve": curve, "final_split": split}


def main() -> int:
    import torch
    import transformers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="DFS trace file (JSONL)")
    parser.add_argument("--sizes", nargs="+", default=["tiny", "1M"])
    parser.add_argument("--minutes", type=float, default=4.0, help="training time per size (by measured speed)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--every", type=int, default=100, help="steps between diagnostics")
    parser.add_argument("--max-len", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out", help="append the JSON rows here (default: stdout)")
    args = parser.parse_args()
    for size in args.sizes:
        write_row({"bench": "learning_countdown", **machine(), "torch": torch.__version__,
                   "transformers": transformers.__version__, "data": args.data,
                   **run(size, args.data, args.minutes, args.lr, args.every, args.max_len, args.batch)}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
