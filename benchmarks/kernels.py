"""The kernels on a CUDA GPU: fused token log-probabilities checked and timed against the usual ways, then row hashing.

For each shape (bf16 logits; vocab 64 at 65,536 and 1,000,000 rows, vocab 32,000 and 151,936 at 16,384 rows) the
logits have the layout a causal LM's scoring sees, ``[B, T + 1, V]`` with the last position predicting nothing, and
``B * T`` rows are scored. Versions:

- ``fused``: :func:`reasonpipe.kernels.logprob.token_logprobs` with the entropy in the same pass (``fused_noent`` without);
- ``eager_fp32``: ``logits[:, :-1].float().log_softmax(-1).gather(...)`` (the issue's baseline; no entropy);
- ``chunked``: float32 ``logsumexp`` + gather over chunks of 4,096 rows (no entropy);
- ``liger``: Liger-Kernel's ``fused_selective_log_softmax`` (forward only, no entropy, no gradient), if importable;
- ``trl_triton``: TRL 1.16's ``selective_log_softmax_and_entropy`` Triton kernel (with entropy), if importable.

Modes: ``fwd`` (no grad, as when scoring the old policy), ``fwd_bwd`` (gradient of ``sum(w * logp)`` w.r.t. the
logits), ``grpo`` (a GRPO/DAPO clipped-ratio loss step: log-probs with gradient, entropy as a detached metric).
Each row gives the median time (``triton.testing.do_bench``), the peak memory beyond the inputs
(``torch.cuda.max_memory_allocated``; the returned gradient, the size of the logits, counts in ``fwd_bwd`` and
``grpo``), and the fraction of the floor: ``fwd`` reads the scored logits once, ``fwd_bwd`` and ``grpo`` read them
twice and write the gradient once, at the measured copy bandwidth (bytes read + written per second of a device
copy of 2 GiB). Before timing, each version's log-probs (and entropies, and for ``fused``/``eager_fp32`` the
gradient) are compared with a float64 truth on 2,048 sampled rows, and the fused kernels run once into NaN-filled
buffers (every element must be written). ``--sweep`` also times a few block configurations of each fused kernel.
Vocab 47 (our CountDown tokenizer; rows not 16-aligned, so no vector loads) is timed beside vocab 64.

Every measurement is a JSON line (``emit(bench, value, unit, **extra)``, tagged with host, GPU, versions and time;
appended to ``--out``); a table follows. At the end, ``benchmarks/kernels_fhash.py``'s ``run(emit)`` runs if that
file exists. Without CUDA the script prints why and exits 0.

Example (on a CUDA machine; Liger and TRL columns need their wheels importable; ``--smoke`` checks the script
itself on CPU under the Triton interpreter)::

    python benchmarks/kernels.py --out $OUT/kernels.jsonl --sweep
    TRITON_INTERPRET=1 python benchmarks/kernels.py --smoke --sweep
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from typing import Callable

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SHAPES = [  # (name, B, T, V): B * T rows scored
    ("v64_r65536", 1, 65_536, 64),
    ("v47_r65536", 1, 65_536, 47),  # our CountDown tokenizer's vocabulary: rows not 16-aligned
    ("v64_r1000000", 1, 1_000_000, 64),
    ("v32000_r16384", 16, 1024, 32_000),
    ("v151936_r16384", 16, 1024, 151_936),
]
QUICK_SHAPES = [("v64_r65536", 1, 65_536, 64), ("v32000_r2048", 2, 1024, 32_000), ("v151936_r2048", 2, 1024, 151_936)]
SMOKE_SHAPES = [("v64_r300", 1, 300, 64), ("v47_r100", 2, 50, 47), ("v5000_r8", 2, 4, 5000)]  # --smoke (CPU)
TEMPERATURE = 0.9
CHUNK_ROWS = 4096


def make_emit(out: str | None) -> Callable[..., dict]:
    """``emit(bench, value, unit, **extra)``: print one JSON row (and append it to ``out``); returns the row."""
    import triton

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (smoke: interpreter)"
    base = {"host": platform.node(), "device": device, "torch": torch.__version__,
            "triton": triton.__version__, "python": platform.python_version()}

    def emit(bench: str, value: float | None, unit: str, **extra) -> dict:
        value = None if value is None else round(float(value), 6)
        row = {"bench": bench, "value": value, "unit": unit, **extra, **base,
               "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        line = json.dumps(row)
        print(line, flush=True)
        if out:
            with open(out, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        return row

    return emit


# --- the versions: (logits [B, T+1, V], ids [B, T]) -> (logp [B, T], entropy [B, T] | None) ----------------------

def v_fused(logits, ids, with_entropy=True):
    from reasonpipe.kernels.logprob import token_logprobs

    full = torch.nn.functional.pad(ids, (0, 1), value=-100)  # the last position predicts nothing: never read
    lp, ent = token_logprobs(logits, full, temperature=TEMPERATURE, with_entropy=with_entropy, impl="triton")
    return lp[:, :-1], (ent[:, :-1] if ent is not None else None)


def v_fused_noent(logits, ids):
    return v_fused(logits, ids, with_entropy=False)


def v_eager(logits, ids):
    logq = (logits[:, :-1].float() / TEMPERATURE).log_softmax(-1)
    return logq.gather(-1, ids[..., None]).squeeze(-1), None


def v_chunked(logits, ids):
    b, t1, v = logits.shape
    out = []
    for i in range(b):
        for a in range(0, t1 - 1, CHUNK_ROWS):
            z = logits[i, a:min(a + CHUNK_ROWS, t1 - 1)].float() / TEMPERATURE
            out.append(z.gather(-1, ids[i, a:a + z.shape[0], None]).squeeze(-1) - z.logsumexp(-1))
    return torch.cat(out).view(ids.shape), None


def optional_versions() -> tuple[dict[str, Callable], dict[str, str]]:
    """Liger's and TRL's ops where importable; otherwise a note why the column is missing."""
    found, notes = {}, {}
    try:
        from liger_kernel.ops.grpo_loss import fused_selective_log_softmax

        def v_liger(logits, ids):
            return fused_selective_log_softmax(logits, ids, temperature=TEMPERATURE), None

        found["liger"] = v_liger
    except Exception as e:  # noqa: BLE001 - any import failure just drops the column
        notes["liger"] = f"liger_kernel not importable ({type(e).__name__}: {e}); carry its wheel for this column"
    try:
        from trl.trainer.utils import selective_log_softmax_and_entropy

        def v_trl(logits, ids):
            return selective_log_softmax_and_entropy(logits[:, :-1], ids, temperature=TEMPERATURE)

        found["trl_triton"] = v_trl
    except Exception as e:  # noqa: BLE001
        notes["trl_triton"] = f"trl not importable ({type(e).__name__}: {e})"
    return found, notes


NO_GRAD = {"liger"}  # forward-only ops


# --- measuring ---------------------------------------------------------------------------------------------------

def bench_ms(fn: Callable[[], object], cuda: bool, warmup: int = 25, rep: int = 100) -> float:
    """Median milliseconds of ``fn``: ``triton.testing.do_bench`` on CUDA, three wall-clock runs on CPU (smoke)."""
    if cuda:
        from triton.testing import do_bench

        return do_bench(fn, warmup=warmup, rep=rep, return_mode="median")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)[1]


def copy_bandwidth(cuda: bool) -> float:
    """Bytes read + written per second by a device-to-device copy of 2 GiB (median of do_bench)."""
    src = torch.randn(1 << 29 if cuda else 1 << 20, device="cuda" if cuda else "cpu")  # 2 GiB float32 on CUDA
    dst = torch.empty_like(src)
    ms = bench_ms(lambda: dst.copy_(src), cuda, rep=200)
    bw = 2 * src.numel() * src.element_size() / (ms * 1e-3)
    return bw


def peak_extra(fn: Callable[[], object], cuda: bool) -> int | None:
    """Bytes allocated at the peak of one call of ``fn`` beyond what was allocated before it (None on CPU)."""
    if not cuda:
        return None
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del out
    return peak


def sync(dev) -> None:
    if torch.device(dev).type == "cuda":
        torch.cuda.synchronize()


def empty_cache(cuda: bool) -> None:
    if cuda:
        torch.cuda.empty_cache()


def make_inputs(b: int, t: int, v: int, seed: int, dev: str):
    g = torch.Generator(device=dev).manual_seed(seed)
    logits = (torch.randn(b, t + 1, v, device=dev, generator=g) * 3).to(torch.bfloat16)
    ids = torch.randint(0, v, (b, t), device=dev, generator=g)
    mask = torch.rand(b, t, device=dev, generator=g) > 0.1
    adv = torch.randn(b, 1, device=dev, generator=g)
    w = torch.randn(b, t, device=dev, generator=g)
    return logits, ids, mask, adv, w


def grpo_loss(lp, ent, old, mask, adv):
    """DAPO-style clipped loss (TRL's default): token-level ratio, clip 0.2 / 0.28, mean over unmasked tokens."""
    ratio = torch.exp(lp - old)
    per = -torch.min(ratio * adv, torch.clamp(ratio, 0.8, 1.28) * adv)
    loss = (per * mask).sum() / mask.sum().clamp(min=1)
    metric = None if ent is None else (ent.detach() * mask).sum() / mask.sum()
    return loss, metric


def truth_rows(logits, ids, rows: torch.Tensor, w: torch.Tensor):
    """float64 logp, entropy and d(sum w logp)/d logits on the sampled flat rows (b * T + t)."""
    b, t1, v = logits.shape
    t = t1 - 1
    x = logits[rows // t, rows % t].double() / TEMPERATURE
    logq = x.log_softmax(-1)
    idx = ids.reshape(-1)[rows]
    lp = logq.gather(-1, idx[:, None]).squeeze(-1)
    p = logq.exp()
    ent = -(p * logq).sum(-1)
    grad = w.reshape(-1)[rows, None].double() * (torch.nn.functional.one_hot(idx, v).double() - p) / TEMPERATURE
    return lp, ent, grad


def check_version(name, fn, logits, ids, w, rows) -> dict:
    """Max errors of one version against the float64 truth on ``rows``."""
    t = ids.shape[1]
    t_lp, t_ent, t_grad = truth_rows(logits, ids, rows, w)
    out = {}
    if name in NO_GRAD:
        with torch.no_grad():
            lp, ent = fn(logits, ids)
    else:
        x = logits.detach().requires_grad_(True)
        lp, ent = fn(x, ids)
        if name in ("fused", "eager_fp32"):
            (grad,) = torch.autograd.grad((lp * w).sum(), x)
            g = grad[rows // t, rows % t].double()
            out["grad_rel_err"] = float((g - t_grad).abs().max() / t_grad.abs().max())
            out["grad_finite"] = bool(torch.isfinite(grad).all())
            del grad
    out["logp_max_abs_err"] = float((lp.detach().reshape(-1)[rows].double() - t_lp).abs().max())
    if ent is not None:
        out["entropy_max_abs_err"] = float((ent.detach().reshape(-1)[rows].double() - t_ent).abs().max())
    out["ok"] = (out["logp_max_abs_err"] < 1e-3 and out.get("entropy_max_abs_err", 0) < 1e-3
                 and out.get("grad_rel_err", 0) < 2e-2 and out.get("grad_finite", True))
    return out


def poisoned_check(logits, ids) -> bool:
    """The fused kernels into NaN-filled buffers, masked rows included: every element written and finite."""
    from reasonpipe.kernels.logprob import logprob_backward, logprob_forward

    full = torch.nn.functional.pad(ids, (0, 1), value=-100).reshape(-1).contiguous()
    n = full.numel()
    dev = logits.device
    lp, ent, lse = (torch.full((n,), float("nan"), device=dev) for _ in range(3))
    logprob_forward(logits, full, lp, ent, lse, temperature=TEMPERATURE)
    grad = torch.full((n, logits.shape[-1]), float("nan"), device=dev, dtype=logits.dtype)
    g = torch.randn(n, device=dev)
    logprob_backward(logits, full, lse, ent, g, g, grad, temperature=TEMPERATURE)
    sync(dev)
    ok = all(bool(torch.isfinite(x).all()) for x in (lp, ent, lse, grad))
    ok = ok and bool((grad[full == -100] == 0).all())
    del grad
    return ok


def time_modes(name, fn, logits, ids, mask, adv, w) -> dict[str, tuple[float | None, int | None, str]]:
    """{mode: (median ms, peak extra bytes, note)} for fwd, fwd_bwd and grpo."""
    cuda = logits.is_cuda
    res = {}

    def fwd():
        with torch.no_grad():
            return fn(logits, ids)

    x = logits.detach().requires_grad_(True)
    with torch.no_grad():
        old = fn(logits, ids)[0].detach() + 0.05 * torch.randn_like(w)  # ratios away from 1: the clip acts

    def fwd_bwd():
        lp, _ = fn(x, ids)
        return torch.autograd.grad((lp * w).sum(), x)

    def grpo():
        lp, ent = fn(x, ids)
        loss, _ = grpo_loss(lp, ent, old, mask, adv)
        return torch.autograd.grad(loss, x)

    for mode, call in (("fwd", fwd), ("fwd_bwd", fwd_bwd), ("grpo", grpo)):
        if mode != "fwd" and name in NO_GRAD:
            res[mode] = (None, None, "no gradient (forward-only op)")
            continue
        try:
            ms = bench_ms(call, cuda)
            res[mode] = (ms, peak_extra(call, cuda), "")
        except Exception as e:  # noqa: BLE001 - e.g. Liger's launch at > 65,535 rows in a grid dimension, or OOM
            res[mode] = (None, None, f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}")
            sync(logits.device)
            empty_cache(cuda)
    return res


def sweep(emit, shape_name, logits, ids, bw) -> list[tuple[str, str, float]]:
    """Kernel-only times of a few block configurations, forward (with entropy) and backward (both gradients), to
    tune :func:`reasonpipe.kernels.logprob.launch_config`; each row says whether it is the default and its floor fraction."""
    from reasonpipe.kernels.logprob import (LaunchConfig, _aligned, _rows_view, launch_config, logprob_backward,
                                 logprob_forward)

    v = logits.shape[-1]
    full = torch.nn.functional.pad(ids, (0, 1), value=-100).reshape(-1).contiguous()
    n = full.numel()
    x, _, sb, st = _rows_view(logits)
    aligned = _aligned(x, sb, st)
    if v <= 1024:
        rows_v = [(r, max(16, 4096 // r) if v > 64 else 64) for r in (8, 16, 64, 256)]
        fwd_cfgs = [LaunchConfig(r, min(bv, 1 << (v - 1).bit_length()), nw) for r, bv in rows_v for nw in (2, 4, 8)]
    else:
        fwd_cfgs = ([LaunchConfig(1, bv, nw) for bv in (2048, 4096, 8192) for nw in (4, 8, 16)]
                    + [LaunchConfig(1, 2048, 1, 4), LaunchConfig(1, 2048, 2, 3), LaunchConfig(2, 2048, 8)])
    bwd_cfgs = [c if v <= 1024 else LaunchConfig(c.block_rows, c.block_v, c.num_warps, c.num_stages, 1)
                for c in fwd_cfgs[:: max(1, len(fwd_cfgs) // 4)]]
    defaults = {"fwd": launch_config(n, v, aligned=aligned), "bwd": launch_config(n, v, backward=True, aligned=aligned)}
    if defaults["fwd"] not in fwd_cfgs:
        fwd_cfgs.append(defaults["fwd"])
    if defaults["bwd"] not in bwd_cfgs:
        bwd_cfgs.append(defaults["bwd"])
    read_ms = ids.numel() * v * logits.element_size() / bw * 1e3
    dev = logits.device
    logp, ent, lse = (torch.empty(n, device=dev) for _ in range(3))
    logprob_forward(logits, full, logp, ent, lse, temperature=TEMPERATURE)
    g = torch.randn(n, device=dev)
    grad = torch.empty(n, v, device=dev, dtype=logits.dtype)
    out = []
    for kind, cfgs, floor in (("fwd", fwd_cfgs, read_ms), ("bwd", bwd_cfgs, 2 * read_ms)):
        for cfg in cfgs:
            def call(kind=kind, cfg=cfg):
                if kind == "fwd":
                    return logprob_forward(logits, full, logp, ent, lse, temperature=TEMPERATURE, config=cfg)
                return logprob_backward(logits, full, lse, ent, g, None, grad, temperature=TEMPERATURE, config=cfg)

            try:
                ms = bench_ms(call, logits.is_cuda, warmup=10, rep=50)
            except Exception as e:  # noqa: BLE001 - a config that does not compile or launch
                emit("logprob_sweep", None, "ms", shape=shape_name, kernel=kind, config=vars(cfg), error=str(e)[:160])
                continue
            emit("logprob_sweep", ms, "ms", shape=shape_name, kernel=kind, config=vars(cfg),
                 default=cfg == defaults[kind], floor_fraction=round(floor / ms, 3))
            out.append((kind, str(vars(cfg)) + (" (default)" if cfg == defaults[kind] else ""), ms))
    del grad
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="append the JSON rows to this file")
    ap.add_argument("--quick", action="store_true", help="small shapes (a smoke run)")
    ap.add_argument("--sweep", action="store_true", help="also time block configurations of the fused kernels")
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    ap.add_argument("--skip-fhash", action="store_true", help="do not run benchmarks/kernels_fhash.py")
    ap.add_argument("--smoke", action="store_true",
                    help="check this script on CPU at tiny shapes under TRITON_INTERPRET=1 (times mean nothing)")
    args = ap.parse_args(argv)
    from reasonpipe.kernels.logprob import interpreted

    if args.smoke and not interpreted():
        print("benchmarks/kernels.py --smoke runs the Triton code on CPU: set TRITON_INTERPRET=1")
        return 2
    if not args.smoke and not torch.cuda.is_available():
        print("benchmarks/kernels.py: no CUDA device here; it measures GPU kernels and needs one "
              "(the CPU tests cover correctness: pytest tests/kernels/test_kernels_logprob.py). Nothing measured.")
        return 0
    cuda = not args.smoke
    dev = "cuda" if cuda else "cpu"

    emit = make_emit(args.out)
    print(f"seed {args.seed}", flush=True)
    bw = copy_bandwidth(cuda)
    emit("copy_bandwidth", bw / 1e12, "TB/s", note="device copy of 2 GiB, bytes read + written")
    optional, notes = optional_versions()
    for k, note in notes.items():
        emit("column_skipped", None, "", version=k, note=note)
    versions = {"fused": v_fused, "fused_noent": v_fused_noent, "eager_fp32": v_eager, "chunked": v_chunked,
                **optional}
    table = []
    sweeps = {}
    failures = 0
    for shape_name, b, t, v in (SMOKE_SHAPES if args.smoke else QUICK_SHAPES if args.quick else SHAPES):
        logits, ids, mask, adv, w = make_inputs(b, t, v, args.seed, dev)
        rows_scored = b * t
        read_bytes = rows_scored * v * logits.element_size()
        floors = {"fwd": read_bytes / bw * 1e3, "fwd_bwd": 3 * read_bytes / bw * 1e3}
        floors["grpo"] = floors["fwd_bwd"]
        sample = torch.randperm(rows_scored, device=dev)[:2048]
        poisoned_ok = poisoned_check(logits, ids)
        emit("logprob_poisoned_outputs_written", float(poisoned_ok), "bool", shape=shape_name)
        failures += not poisoned_ok
        for name, fn in versions.items():
            try:
                acc = check_version(name, fn, logits, ids, w, sample)
            except Exception as e:  # noqa: BLE001
                acc = {"ok": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"}
            emit("logprob_correct", float(acc.get("ok", False)), "bool", shape=shape_name, version=name, **acc)
            failures += name.startswith("fused") and not acc.get("ok", False)
            empty_cache(cuda)
            for mode, (ms, mem, note) in time_modes(name, fn, logits, ids, mask, adv, w).items():
                frac = None if ms is None else floors[mode] / ms
                emit(f"logprob_{mode}", ms, "ms", shape=shape_name, version=name, rows=rows_scored, vocab=v,
                     dtype="bf16", peak_extra_gb=None if mem is None else round(mem / 1e9, 3),
                     floor_ms=round(floors[mode], 4), floor_fraction=None if frac is None else round(frac, 3),
                     note=note)
                table.append((shape_name, mode, name, ms, mem, frac, note, acc.get("ok")))
            empty_cache(cuda)
        if args.sweep:
            sweeps[shape_name] = sweep(emit, shape_name, logits, ids, bw)
        del logits, ids, mask, adv, w
        empty_cache(cuda)
    print_table(table, bw, torch.cuda.get_device_name(0) if cuda else "cpu (smoke)", sweeps)
    fhash = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels_fhash.py")
    if os.path.exists(fhash) and not args.skip_fhash and cuda:
        spec = importlib.util.spec_from_file_location("kernels_fhash", fhash)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        if hasattr(mod, "run"):
            print("\n# benchmarks/kernels_fhash.py", flush=True)
            mod.run(emit)
    if failures:
        print(f"\n{failures} correctness check(s) of the fused kernels FAILED (see logprob_correct rows)")
    return 1 if failures else 0


def print_table(table, bw: float, device: str, sweeps: dict) -> None:
    def base_ms(shape, mode, version):
        return next((r[3] for r in table if r[0] == shape and r[1] == mode and r[2] == version), None)

    print(f"\n## fused token log-probs on {device}; copy bandwidth {bw / 1e12:.2f} TB/s (read + write)\n")
    print("| shape | mode | version | ms | x eager | floor fraction | peak extra GB | correct | note |")
    print("|---|---|---|---|---|---|---|---|---|")
    for shape, mode, name, ms, mem, frac, note, ok in table:
        eager = base_ms(shape, mode, "eager_fp32")
        speed = "" if ms is None or eager is None else f"{eager / ms:.2f}"
        print(f"| {shape} | {mode} | {name} | {'' if ms is None else f'{ms:.3f}'} | {speed} | "
              f"{'' if frac is None else f'{frac:.2f}'} | {'' if mem is None else f'{mem / 1e9:.3f}'} | "
              f"{'' if ok is None else ('yes' if ok else 'NO')} | {note} |")
    for shape, rows in sweeps.items():
        for kind in ("fwd", "bwd"):
            mine = sorted((r for r in rows if r[0] == kind), key=lambda r: r[2])
            if mine:
                default = next((r for r in mine if r[1].endswith("(default)")), None)
                print(f"sweep {shape} {kind}: best {mine[0][2]:.3f} ms {mine[0][1]}; default "
                      f"{'-' if default is None else f'{default[2]:.3f} ms'}")


if __name__ == "__main__":
    sys.exit(main())
