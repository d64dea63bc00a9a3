"""Trace generation on Ray actors: 2 workers against 1, same Ray, same problems, same bytes.

Example::

    OMP_NUM_THREADS=1 python benchmarks/bench_tracegen_ray.py --n 40000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_traces import emit  # noqa: E402
from reasonpipe.tracegen import GenRequest, generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=40000)
    args = parser.parse_args()
    import ray

    from reasonpipe.localray import init_local_ray

    init_local_ray(num_cpus=2)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            seconds, digests = {}, {}
            for workers in (1, 2):
                out = os.path.join(tmp, f"w{workers}.jsonl")
                started = time.perf_counter()
                generate(GenRequest(task="countdown", searcher="dfs", out=out, n=args.n, seed=1, workers=workers,
                                    backend="ray"))
                seconds[workers] = time.perf_counter() - started
                with open(out, "rb") as f:
                    digests[workers] = hashlib.md5(f.read()).hexdigest()
            for workers in (1, 2):
                emit(f"tracegen_ray_{workers}_workers", args.n / seconds[workers], "traces/s", n=args.n,
                     seconds=round(seconds[workers], 2), md5=digests[workers],
                     **({"speedup_vs_1": round(seconds[1] / seconds[2], 2), "target": 1.7,
                         "same_bytes": digests[1] == digests[2]} if workers == 2 else {}))
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
