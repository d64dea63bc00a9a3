"""Continuous-thought decoding cost: a latent step (the previous hidden state fed back, KV cache reused)
against a normal greedy decoding step at the same context length, same model, same run.

Target (issue 8): a latent step costs no more than 1.5x a decoding step. Rows: seconds per step of each and the
ratio, and latent tokens/s, for the CPU config's model and the ProsQA-size model.

Example::

    OMP_NUM_THREADS=1 python benchmarks/bench_latent.py
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_traces import emit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    import torch

    from reasonpipe.latent import latent_step_cost
    from reasonpipe.latent_train import LatentConfig, build_model, tokenizer

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    tok = tokenizer()
    for name, hidden, heads, context, batch in (("cpu-config", 128, 4, 96, 1), ("cpu-config", 128, 4, 96, 32),
                                                ("prosqa-size", 768, 8, 200, 1), ("prosqa-size", 768, 8, 200, 128)):
        model = build_model(LatentConfig(hidden=hidden, heads=heads), tok, 0).to(device).eval()
        cost = latent_step_cost(model, context, args.steps, batch)
        emit(f"latent_step_{name}_b{batch}", cost["ratio"], "latent step / decode step", target=1.5,
             latent_step_ms=round(1000 * cost["latent_step_s"], 3), decode_step_ms=round(1000 * cost["decode_step_s"], 3),
             latent_tokens_per_s=round(batch / cost["latent_step_s"], 1), context=context, batch=batch, hidden=hidden,
             layers=2, device_name=torch.cuda.get_device_name() if device == "cuda" else "cpu")


if __name__ == "__main__":
    main()
