"""Throughput of trace generation and exact verification, one JSON row per measurement.

Each row carries the host, CPU, device ("cpu": nothing here uses a GPU), Python and package versions, the
measured value, and, where a baseline ran in the same process on the same inputs, the baseline and the
ratio. Baselines: Stream of Search's own DFS generator and its checker (``metric_fn``), timed only when
``--sos-src DIR`` points at a checkout of kanishkg/stream-of-search's ``src`` folder (not shipped here);
dokusan's generator for Sudoku. Single-core figures run in this process with one thread; ``gen_cli``
runs the real command with ``--workers``.

Example::

    OMP_NUM_THREADS=1 python benchmarks/bench_traces.py --quick
    python benchmarks/bench_traces.py --sos-src ../stream-of-search/src --full-gen >> benchmarks/results/cpu.jsonl
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types

from reasonpipe.manifest import package_versions
from rows import cpu_name  # benchmarks/rows.py (this folder is on the path of a script run from it)
from reasonpipe.tasks import make_task
from reasonpipe.traces import Trace
from reasonpipe.traces import countdown as cd_grammar
from reasonpipe.verify import verify_file
from reasonpipe.searchers import SearchOptions, get_searcher
from reasonpipe.verifiers import get_verifier


BASE = {"host": platform.node(), "cpu": cpu_name(), "cores": os.cpu_count(), "device": "cpu",
        "python": platform.python_version(),
        "versions": {k: v for k, v in package_versions().items() if v and k in ("reasonpipe", "dokusan", "tokenizers")}}


def emit(bench: str, value: float | None, unit: str, **extra) -> None:
    """Print one JSON row; ``value`` None for a measurement that could not be taken (``extra`` says why)."""
    value = None if value is None else round(value, 4 if abs(value) < 10 else 1)
    row = {"bench": bench, "value": value, "unit": unit, **extra, **BASE,
           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(json.dumps(row), flush=True)


def best_of(fn, repeat: int) -> float:
    """Seconds of the fastest of ``repeat`` runs (each a cold start: grammar caches cleared)."""
    times = []
    for _ in range(repeat):
        for f in (cd_grammar.parse_line, cd_grammar._parse_nums, cd_grammar._parse_op, cd_grammar._parse_ops,
                  cd_grammar._valid_node):
            f.cache_clear()
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def load_sos(src: str | None):
    """Stream of Search's dfs and metric_fn from a checkout, or None."""
    if not src:
        return None
    sys.path.insert(0, os.path.abspath(src))
    sys.modules.setdefault("tiktoken", types.ModuleType("tiktoken"))  # imported by their modules, unused here
    import countdown_dfs
    import countdown_utils

    return countdown_dfs, countdown_utils


def bench_countdown(n: int, repeat: int, sos) -> None:
    task = make_task("countdown")
    dfs = get_searcher("countdown", "dfs")
    opts = SearchOptions()
    t0 = time.perf_counter()
    problems = [task.generate(random.Random(f"bench/{i}")) for i in range(n)]
    emit("countdown4_problem_generation", n / (time.perf_counter() - t0), "problems/s", n=n,
         note="solvable, train split: rejection sampling as Stream of Search, with an exact reachability check")

    texts: list[str] = []

    def ours() -> None:
        texts[:] = [dfs(task, p, opts, None).to_text() for p in problems]

    sec = best_of(ours, repeat)
    row = {"n": n, "mean_chars": round(statistics.mean(map(len, texts)), 1)}
    if sos:
        sos_dfs, sos_utils = sos
        sos_texts: list[str] = []

        def theirs() -> None:
            sos_texts[:] = [sos_dfs.dfs(p.target, list(p.nums), heuristic=sos_utils.sum_heuristic, threshold=p.target,
                                        search_trace="", open_set=[]) for p in problems]

        base = best_of(theirs, repeat)
        same = sum(a == b for a, b in zip(sos_texts, texts))
        row.update(baseline="stream-of-search countdown_dfs.dfs", baseline_value=round(n / base, 1),
                   ratio=round(base / sec, 2), identical_traces=f"{same}/{n}")
    else:
        row.update(baseline="stream-of-search countdown_dfs.dfs (issue #2 figure, not run here)", baseline_value=2300)
    emit("countdown4_dfs_traces", n / sec, "traces/s", **row)

    verifier = get_verifier("countdown")
    lines = sum(t.count("\n") for t in texts)
    explores = sum(t.count("Exploring Operation") for t in texts)
    traces = [Trace.from_text("countdown", t) for t in texts]
    valid = sum(verifier.report(t).valid for t in traces)
    sec = best_of(lambda: [verifier.check(Trace.from_text("countdown", t)) for t in texts], repeat)
    row = {"n": n, "steps": lines, "explore_steps": explores, "explore_steps_per_s": round(explores / sec, 1),
           "valid_traces": f"{valid}/{n}", "what": "parse text + check every step, in memory, cold caches"}
    if sos:
        _, sos_utils = sos
        base = best_of(lambda: [sos_utils.metric_fn(t) for t in texts], repeat)
        row.update(baseline="stream-of-search metric_fn (checks the final path only)",
                   baseline_explore_steps_per_s=round(explores / base, 1), ratio=round(base / sec, 2))
    else:
        row.update(baseline="stream-of-search checker (issue #2 figure, not run here)",
                   baseline_explore_steps_per_s=300_000)
    emit("countdown4_verify_steps", lines / sec, "steps/s", **row)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cd.jsonl")
        with open(path, "w") as f:
            for i, (p, t) in enumerate(zip(problems, texts)):
                f.write(json.dumps({"id": str(i), "task": "countdown", "problem": {"nums": list(p.nums), "target": p.target},
                                    "text": t}) + "\n")
        secs = []
        for _ in range(repeat):
            best_of(lambda: None, 1)  # clear caches
            s = verify_file(path)
            secs.append(s.seconds)
        emit("countdown4_verify_file", s.steps / min(secs), "steps/s", n=n, steps=s.steps,
             file_mb=round(os.path.getsize(path) / 1e6, 1), what="reasonpipe.verify.verify_file: read JSONL, parse, check")


def bench_sudoku(n: int, repeat: int, dokusan_n: int) -> None:
    task = make_task("sudoku")
    t0 = time.perf_counter()
    puzzles = [task.generate(random.Random(f"bench/{i}")) for i in range(n)]
    own = n / (time.perf_counter() - t0)
    doku = make_task("sudoku", source="dokusan")
    t0 = time.perf_counter()
    for i in range(dokusan_n):
        doku.generate(random.Random(f"bench/{i}"))
    base = dokusan_n / (time.perf_counter() - t0)
    emit("sudoku_puzzle_generation", own, "puzzles/s", n=n, givens=task.config.givens_count(), unique_solution=True,
         baseline="dokusan random_sudoku(avg_rank=150)", baseline_value=round(base, 2), baseline_n=dokusan_n,
         ratio=round(own / base, 1))
    guess = make_task("sudoku", require_guess=True)
    t0 = time.perf_counter()
    for i in range(max(20, n // 10)):
        guess.generate(random.Random(f"bench/{i}"))
    emit("sudoku_puzzle_generation_require_guess", max(20, n // 10) / (time.perf_counter() - t0), "puzzles/s",
         n=max(20, n // 10))
    dfs = get_searcher("sudoku", "dfs")
    texts: list[str] = []

    def write() -> None:
        texts[:] = [dfs(task, p, SearchOptions(), random.Random(0)).to_text() for p in puzzles]

    sec = best_of(write, repeat)
    emit("sudoku_dfs_traces", n / sec, "traces/s", n=n, mean_chars=round(statistics.mean(map(len, texts)), 1))
    verifier = get_verifier("sudoku")
    steps = sum(t.count("\n") for t in texts)
    sec = best_of(lambda: [verifier.check(Trace.from_text("sudoku", t)) for t in texts], repeat)
    emit("sudoku_verify", n / sec, "puzzles/s", n=n, steps=steps, steps_per_s=round(steps / sec, 1), target=200,
         what="parse text + check every step, in memory")


def bench_gen_cli(n: int, workers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cd.jsonl")
        cmd = [sys.executable, "-m", "reasonpipe", "gen", "countdown", "--n", str(n), "--searcher", "dfs", "--seed", "1",
               "--out", out, "--workers", str(workers), "--quiet"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
        sec = time.perf_counter() - t0
        size = os.path.getsize(out)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "reasonpipe", "verify", out, "--quiet"], stdout=subprocess.DEVNULL,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        vsec = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    shown = [c for c in cmd[3:] if c != out and c != "--out" and c != "--quiet"]
    emit("gen_cli_countdown4_dfs", n / sec, "traces/s", n=n, workers=workers, seconds=round(sec, 1),
         file_gb=round(size / 1e9, 3), command=" ".join(["reasonpipe"] + shown),
         verify_seconds=round(vsec, 1), verify_exit=proc.returncode, max_child_rss_mb=round(rss, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run, figures are noisy)")
    parser.add_argument("--sos-src", help="path to stream-of-search/src for the same-run baselines")
    parser.add_argument("--full-gen", action="store_true",
                        help="time `reasonpipe gen countdown --n 500000 --workers 2` (minutes, ~6 GB on disk)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    gc.set_threshold(50_000, 20, 20)  # as the CLI does
    n_cd, n_sd, n_doku, n_gen = (300, 100, 3, 2000) if args.quick else (3000, 1000, 30, 20000)
    sos = load_sos(args.sos_src)
    bench_countdown(n_cd, args.repeat, sos)
    bench_sudoku(n_sd, args.repeat, n_doku)
    bench_gen_cli(n_gen, 2)
    if args.full_gen:
        bench_gen_cli(500_000, 2)


if __name__ == "__main__":
    main()
