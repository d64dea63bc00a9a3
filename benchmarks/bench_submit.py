"""What ``reasonpipe submit`` costs: start to first log line, and total time against running the job directly.

The job is a tiny SFT run (50 CountDown DFS traces, model ``tiny``, 3 steps), run three ways as real commands:

- ``python -m reasonpipe.jobs.sft --config F`` (the baseline: no Ray);
- ``reasonpipe submit sft --config F`` (an embedded Ray started, used and shut down by the command);
- ``reasonpipe submit sft --config F --address URL`` against a local cluster started here beforehand
  (the checkout uploaded as working_dir, as for a remote cluster), unless ``--no-address``.

Rows: ``submit_first_log_*`` (seconds from starting the command to the first line of the job's log on
stdout), ``submit_total_*`` and ``submit_overhead_*`` (total minus the baseline's total), ``sft_direct_total``.
Each row carries the 1-minute load average: other work on the machine moves these numbers a lot.

Example::

    OMP_NUM_THREADS=1 python benchmarks/bench_submit.py >> benchmarks/results/submit-cpu-2core.jsonl
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import yaml  # noqa: E402

from bench_traces import emit  # noqa: E402
from reasonpipe.tracegen import GenRequest, generate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def timed_command(argv: list[str]) -> dict:
    """Run ``argv``; seconds to its first stdout line and to its exit, its exit code and stderr."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    first: list[float] = []
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    reader.start()
    for _ in proc.stdout:
        if not first:
            first.append(time.perf_counter() - started)
    code = proc.wait()
    reader.join()
    return {"first_line_s": first[0] if first else None, "total_s": time.perf_counter() - started, "code": code,
            "stderr": "".join(err)}


def tiny_config(tmp: Path, name: str) -> Path:
    traces = tmp / "cd.jsonl"
    if not traces.exists():
        generate(GenRequest(task="countdown", searcher="dfs", out=str(traces), n=50, seed=1))
    config = tmp / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"data": [str(traces)], "model": "tiny", "max_steps": 3, "batch_size": 4,
                                      "save_every": 2, "out": str(tmp / name), "quiet": True}))
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-address", action="store_true", help="skip the run against a local cluster")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        direct = timed_command([python, "-m", "reasonpipe.jobs.sft", "--config", str(tiny_config(tmp, "direct"))])
        assert direct["code"] == 0, direct["stderr"]
        emit("sft_direct_total", direct["total_s"], "s", load=os.getloadavg()[0],
             what="python -m reasonpipe.jobs.sft, tiny model, 3 steps")

        runs = [("embedded", [])]
        context = None
        if not args.no_address:
            from reasonpipe.jobs.submit import init_local_ray

            path = os.environ["PATH"]
            os.environ["PATH"] = f"{Path(python).parent}{os.pathsep}{path}"  # the cluster's `python` is this one
            try:
                context = init_local_ray(num_cpus=os.cpu_count(), object_store_memory=200 * 2**20)
            finally:
                os.environ["PATH"] = path
            runs.append(("address", ["--address", f"http://{context.dashboard_url}"]))
        try:
            for label, extra in runs:
                run = timed_command([python, "-m", "reasonpipe.cli", "submit", "sft", "--config",
                                     str(tiny_config(tmp, label)), *extra])
                assert run["code"] == 0, run["stderr"]
                up = re.search(r"embedded Ray up in ([\d.]+) s", run["stderr"])
                emit(f"submit_first_log_{label}", run["first_line_s"], "s", target=15.0, load=os.getloadavg()[0],
                     ray_start_s=float(up.group(1)) if up else None)
                emit(f"submit_total_{label}", run["total_s"], "s", load=os.getloadavg()[0])
                emit(f"submit_overhead_{label}", run["total_s"] - direct["total_s"], "s", target=20.0,
                     baseline="python -m reasonpipe.jobs.sft, same config", load=os.getloadavg()[0])
        finally:
            if context is not None:
                import ray

                ray.shutdown()


if __name__ == "__main__":
    main()
