"""Row hashing on a CUDA GPU: the mix64 fingerprint kernel against copy bandwidth, one JSON row per measurement.

Measures, on one GPU in one process:

- ``fhash_copy_bandwidth``: ``x.clone()`` of a 1 GiB tensor, counting bytes read AND written (2 GiB per clone);
- ``fhash_kernel``: :func:`reasonpipe.kernels.fhash.fingerprint_rows_triton` over 1 GiB ``[n, k]`` inputs (int32 and
  float32 at k = 64 and 1024, then float64, bfloat16 and uint8 at k = 1024, and 16 rows of 16M int32 for the
  column-split path), counting bytes READ only (the input once; the 16-byte-per-row output is not counted), and
  its ``fraction_of_copy`` = read bandwidth / copy bandwidth (the issue's target: >= 0.8 for int32/float32);
- before timing, each input's first call writes into a poisoned (0xFF) output and a subsample of rows (4,096
  random ones, the first and the last) is compared bit for bit with the CPU reference (``identical``);
- ``fhash_config``: a few block configurations at int32 k=1024 and float32 k=64 (which the defaults should be);
- ``fhash_cpu``: the numpy reference and BLAKE2b ``hash_rows`` on 64 MiB on the host, for scale.

Times are the mean of back-to-back calls between two CUDA events (each call includes its host work: seeds, the
position-key kernel, launches), after warm-up. ``benchmarks/kernels.py`` calls :func:`run` with its own ``emit``.

Example (on a CUDA machine; without one it exits with a message)::

    python benchmarks/kernels_fhash.py >> benchmarks/results/gpu.jsonl
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from reasonpipe.kernels.fhash import fingerprint_rows_triton, reference_fingerprints  # noqa: E402
from reasonpipe.fhash import hash_rows  # noqa: E402

GIB = 1 << 30
SHAPES = [(torch.int32, 64), (torch.int32, 1024), (torch.float32, 64), (torch.float32, 1024),
          (torch.float64, 1024), (torch.bfloat16, 1024), (torch.uint8, 1024), (torch.int32, 1 << 24)]
TARGET = 0.8  # of copy bandwidth, for int32/float32 (issue 9)
CONFIGS = [  # (tile_values, block_cols, num_warps); the first is the default
    (2048, 16, 4), (4096, 16, 8), (2048, 64, 4), (1024, 8, 4), (4096, 32, 4)]


def per_call_ms(fn: Callable[[], object], reps: int = 20, warmup: int = 3) -> float:
    """Mean milliseconds of ``reps`` back-to-back calls (host work overlaps the device's, as in a real loop)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / reps


def make_input(dtype: torch.dtype, k: int, nbytes: int = GIB) -> torch.Tensor:
    n = nbytes // (k * torch.tensor([], dtype=dtype).element_size())
    g = torch.Generator(device="cuda").manual_seed(0)
    if dtype.is_floating_point:
        x = torch.randn(n, k, device="cuda", generator=g).to(dtype)
        x.view(-1)[::1001] = -0.0
        x.view(-1)[::1009] = float("nan")
        return x
    info = torch.iinfo(dtype)
    return torch.randint(info.min, info.max, (n, k), device="cuda", dtype=dtype, generator=g)


def check_rows(x: torch.Tensor, out: torch.Tensor, sample: int = 4096) -> tuple[bool, int]:
    """Bit-identity of ``out`` with the CPU reference on a subsample of rows (first, last, random)."""
    n = x.shape[0]
    rows = torch.unique(torch.cat([torch.tensor([0, n - 1]), torch.randint(0, n, (min(sample, n),))]))
    got = out[rows.cuda()].cpu().numpy().view(np.uint64)
    ref = reference_fingerprints(x[rows.cuda()].cpu())
    return bool((got == ref).all()), len(rows)


def run(emit: Callable[..., object]) -> None:
    """All measurements above, each as ``emit(bench, value, unit, **extra)``."""
    if not torch.cuda.is_available():
        emit("fhash_kernel", None, "GB/s", reason="no CUDA device")
        return
    gpu = torch.cuda.get_device_name(0)
    src = torch.empty(GIB // 4, dtype=torch.int32, device="cuda").random_()
    ms = per_call_ms(lambda: src.clone())
    copy = 2 * GIB / (ms * 1e-3)  # bytes read + written per second
    emit("fhash_copy_bandwidth", copy / 1e9, "GB/s", ms=round(ms, 4), gpu=gpu,
         counted="read + write of a 1 GiB clone (2 GiB per call)")
    del src
    for dtype, k in SHAPES:
        name = str(dtype).removeprefix("torch.")
        x = make_input(dtype, k)
        out = torch.full((x.shape[0], 2), -1, dtype=torch.int64, device="cuda")
        fingerprint_rows_triton(x, out=out)
        torch.cuda.synchronize()
        unwritten = int((out == -1).all(1).sum())
        identical, checked = check_rows(x, out)
        ms = per_call_ms(lambda: fingerprint_rows_triton(x, out=out))
        read = x.numel() * x.element_size() / (ms * 1e-3)
        emit("fhash_kernel", read / 1e9, "GB/s", dtype=name, n=x.shape[0], k=k, ms=round(ms, 4),
             fraction_of_copy=round(read / copy, 3), copy_GBps=round(copy / 1e9, 1), identical=identical,
             checked_rows=checked, unwritten_rows=unwritten, gpu=gpu,
             target=TARGET if dtype in (torch.int32, torch.float32) and k <= 1024 else None,
             counted="bytes read (the input once); copy bandwidth counts read + write")
        if (dtype, k) in ((torch.int32, 1024), (torch.float32, 64)):
            for tile, cols, warps in CONFIGS:
                try:
                    def call():
                        return fingerprint_rows_triton(x, out=out, tile_values=tile, block_cols=cols, num_warps=warps)
                    call()
                    ok, _ = check_rows(x, out, 512)
                    ms = per_call_ms(call)
                    read = x.numel() * x.element_size() / (ms * 1e-3)
                    emit("fhash_config", read / 1e9, "GB/s", dtype=name, k=k, tile_values=tile, block_cols=cols,
                         num_warps=warps, default=(tile, cols, warps) == CONFIGS[0], ms=round(ms, 4),
                         fraction_of_copy=round(read / copy, 3), identical=ok, gpu=gpu)
                except Exception as e:  # noqa: BLE001 - one failing configuration must not stop the others
                    emit("fhash_config", None, "GB/s", dtype=name, k=k, tile_values=tile, block_cols=cols,
                         num_warps=warps, error=str(e)[:200], gpu=gpu)
        del x, out
        torch.cuda.empty_cache()
    host = np.random.default_rng(0).integers(-2**31, 2**31, (GIB // 16 // 4 // 1024, 1024)).astype(np.int32)
    for bench, fn in (("reference", lambda: reference_fingerprints(host)),
                      ("blake2b_hash_rows", lambda: hash_rows(host))):
        t0 = time.perf_counter()
        fn()
        sec = time.perf_counter() - t0
        emit("fhash_cpu", host.nbytes / sec / 1e9, "GB/s", version=bench, shape=list(host.shape), dtype="int32",
             seconds=round(sec, 3), threads=torch.get_num_threads(), note="host CPU, one process")


if __name__ == "__main__":
    if not torch.cuda.is_available():
        sys.exit("benchmarks/kernels_fhash.py needs a CUDA GPU and found none; on CPU, the reference and the "
                 "Triton interpreter are covered by tests/kernels/test_kernels_fhash.py")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_traces import emit as emit_row

    run(emit_row)
