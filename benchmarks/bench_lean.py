"""Lean step verification: what our side costs, how many statements repeat, and Lean's steps/s where it exists.

Rows (one JSON line each, tagged with host and versions):

- ``lean_dedup_*``: on N generated traces, the steps Lean would be asked about, the distinct statements among
  them, and the fraction never sent to Lean (repeats within the run; a second run with ``--cache`` sends none);
- ``lean_prepare_statements``: formalization + guard + rendering per distinct statement on this CPU (the
  Python work before Lean runs; Lean itself takes about 3 ms per small theorem in a batch);
- ``lean_file_mode`` / ``lean_process_per_step`` / ``lean_repl_mode``: steps/s with a real ``lean`` (and
  ``repl``) on PATH; without them the row says ``unmeasured`` and why.

Example::

    OMP_NUM_THREADS=1 python benchmarks/bench_lean.py --traces 1000
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_traces import emit  # noqa: E402
from reasonpipe.tracegen import GenRequest, generate  # noqa: E402
from reasonpipe.traces import read_traces  # noqa: E402
from verifiers.lean import LeanConfig, LeanVerifier  # noqa: E402
from verifiers.lean.formalize import formalize  # noqa: E402
from verifiers.lean.guard import parse_declaration  # noqa: E402
from verifiers.lean.verifier import LeanVerifier as _V  # noqa: E402


def traces_of(task: str, n: int, tmp: str) -> list:
    path = os.path.join(tmp, f"{task}.jsonl")
    generate(GenRequest(task=task, searcher="dfs", out=path, n=n, seed=1))
    return list(read_traces(path))


def bench_dedup(task: str, traces: list) -> list[str]:
    started = time.perf_counter()
    sources = [f.source for t in traces for f in formalize(t) if f.checked]
    formal_s = time.perf_counter() - started
    distinct = sorted(set(sources))
    steps = sum(len(t.steps) for t in traces)
    emit(f"lean_dedup_{task}", 1 - len(distinct) / max(1, len(sources)), "fraction not sent to Lean",
         traces=len(traces), steps=steps, statements=len(sources), distinct=len(distinct),
         formalize_steps_per_s=round(steps / formal_s))
    return distinct


def bench_prepare(distinct: list[str], limit: int = 5000) -> None:
    sample = distinct[:limit]
    started = time.perf_counter()
    for src in sample:
        _V._attempt(parse_declaration(src), "by decide")
    sec = time.perf_counter() - started
    emit("lean_prepare_statements", len(sample) / sec, "statements/s", n=len(sample),
         what="guard parse + render + re-parse of the rendered declaration (per distinct statement)")


def bench_lean(traces: list) -> None:
    lean, repl = shutil.which("lean"), shutil.which("repl")
    if lean is None:
        for name in ("lean_file_mode", "lean_process_per_step", "lean_repl_mode"):
            emit(name, None, "steps/s", unmeasured="no `lean` on PATH (none can be installed on this machine; the "
                 "device machines have none either)")
        return
    formals = [f for t in traces for f in formalize(t) if f.checked][:2000]
    for name, cfg in (("lean_file_mode", LeanConfig(tactics=("decide",))),
                      ("lean_process_per_step", LeanConfig(tactics=("decide",), batch_size=1))):
        v = LeanVerifier(cfg)
        sample = formals if cfg.batch_size > 1 else formals[:100]
        started = time.perf_counter()
        verdicts = v.check_formals(sample)
        sec = time.perf_counter() - started
        emit(name, v.stats.distinct / sec, "distinct steps/s", steps=len(sample), distinct=v.stats.distinct,
             proved=sum(x.verdict == "proved" for x in verdicts), lean=v.backend.version())
        v.close()
    if repl is None:
        emit("lean_repl_mode", None, "steps/s", unmeasured="no `repl` on PATH")
        return
    v = LeanVerifier(LeanConfig(mode="repl", tactics=("decide",)))
    started = time.perf_counter()
    verdicts = v.check_formals(formals[:500])
    sec = time.perf_counter() - started
    emit("lean_repl_mode", v.stats.distinct / sec, "distinct steps/s", steps=500, distinct=v.stats.distinct,
         proved=sum(x.verdict == "proved" for x in verdicts))
    v.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=1000, help="CountDown DFS traces (Sudoku: a tenth)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cd = traces_of("countdown", args.traces, tmp)
        distinct = bench_dedup("countdown", cd)
        bench_dedup("sudoku", traces_of("sudoku", max(1, args.traces // 10), tmp))
        bench_prepare(distinct)
        bench_lean(cd)


if __name__ == "__main__":
    main()
