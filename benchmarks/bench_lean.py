"""Lean step verification: what our side costs, how many statements repeat, and Lean's steps/s where it exists.

Rows (one JSON line each, tagged with host and versions):

- ``lean_dedup_*``: on N generated traces, the steps Lean would be asked about, the distinct statements among
  them, and the fraction never sent to Lean (repeats within the run; a second run with ``--cache`` sends none);
- ``lean_prepare_statements``: our Python work per distinct statement before Lean runs (guard parse, statement
  policy, proof policy, the words for the keyword probe, rendering the candidate and the ``Stmts`` definition);
- ``lean_file_mode`` (``--jobs 1``) and ``lean_file_mode_jobs2``: distinct CountDown steps/s through the whole
  trusted check (``Stmts`` + ``Cand`` + ``Check``, the keyword probe and Lean's feature checks included), a real
  ``lean`` on PATH;
- ``lean_process_per_step``: the same check with one step per batch (three ``lean`` runs a step);
- ``lean_sandboxed_process_per_step``: one ``lean`` per step on a file holding one ``theorem ... := by decide``,
  through the sandbox, no trusted check: what the earlier design's one-process-per-step mode cost;
- ``lean_raw_process_per_step``: the same without the sandbox and without Python: the cheapest per-step check;
- ``lean_repl_mode``: steps/s through a real ``repl`` on PATH; without one the row says ``unmeasured``.

Example::

    OMP_NUM_THREADS=1 python benchmarks/bench_lean.py --traces 1000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_traces import emit  # noqa: E402
from reasonpipe.tracegen import GenRequest, generate  # noqa: E402
from reasonpipe.traces import read_traces  # noqa: E402
from reasonpipe.verifiers.lean import LeanConfig, LeanVerifier  # noqa: E402
from reasonpipe.verifiers.lean.backends import Goal, candidate_text, statement_text  # noqa: E402
from reasonpipe.verifiers.lean.formalize import formalize  # noqa: E402
from reasonpipe.verifiers.lean.guard import parse_declaration  # noqa: E402
from reasonpipe.verifiers.lean.policy import check_proof, check_statement, proof_words  # noqa: E402


def traces_of(task: str, n: int, tmp: str) -> list:
    path = os.path.join(tmp, f"{task}.jsonl")
    generate(GenRequest(task=task, searcher="dfs", out=path, n=n, seed=1))
    return list(read_traces(path))


def bench_dedup(task: str, traces: list) -> list[str]:
    started = time.perf_counter()
    statements = [f.statement for t in traces for f in formalize(t) if f.checked]
    formal_s = time.perf_counter() - started
    distinct = sorted(set(statements))
    steps = sum(len(t.steps) for t in traces)
    emit(f"lean_dedup_{task}", 1 - len(distinct) / max(1, len(statements)), "fraction not sent to Lean",
         traces=len(traces), steps=steps, statements=len(statements), distinct=len(distinct),
         formalize_steps_per_s=round(steps / formal_s))
    return distinct


def bench_prepare(distinct: list[str], limit: int = 5000) -> None:
    sample = distinct[:limit]
    started = time.perf_counter()
    for k, src in enumerate(sample):
        decl = parse_declaration(src)
        check_statement(decl)
        proof = check_proof("by decide")
        proof_words(src) | proof_words(proof)
        candidate_text(f"rpP_0123456789ab_{k}", Goal(decl, proof))
        statement_text(f"rpS_0123456789ab_{k}", decl)
    sec = time.perf_counter() - started
    emit("lean_prepare_statements", len(sample) / sec, "statements/s", n=len(sample), ms_per_statement=round(
        1000 * sec / len(sample), 3), what="guard parse + statement and proof policy + probe words + candidate "
        "render (re-guarded) + Stmts definition, per distinct statement")


def raw_per_step(lean: str, statements: list[str], *, sandboxed: bool) -> float:
    """Steps/s of one `lean` run per statement on a file holding just that theorem (no trusted check), bare or
    through the same sandbox and limits as the backend (the earlier design's one-process-per-step mode)."""
    from reasonpipe.verifiers.lean.sandbox import Limits, run_limited, sandbox_argv, scrubbed_env

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "Step.lean")
        started = time.perf_counter()
        for src in statements:
            with open(path, "w", encoding="utf-8") as f:
                f.write(parse_declaration(src).render("step", "by decide") + "\n")
            if sandboxed:
                run_limited(sandbox_argv([lean, "Step.lean"], tmp), cwd=tmp, limits=Limits(timeout_s=60),
                            env=scrubbed_env(home=tmp))
            else:
                subprocess.run([lean, path], capture_output=True, check=False)
        return len(statements) / (time.perf_counter() - started)


def bench_lean(distinct: list[str]) -> None:
    lean, repl = shutil.which("lean"), shutil.which("repl")
    names = ("lean_file_mode", "lean_process_per_step", "lean_raw_process_per_step", "lean_repl_mode")
    if lean is None:
        for name in names:
            emit(name, None, "steps/s", unmeasured="no `lean` on PATH")
        return
    from reasonpipe.verifiers.lean.formalize import Formal

    formals = [Formal(statement=s) for s in distinct[:2000]]
    version = subprocess.run([lean, "--version"], capture_output=True, text=True).stdout.strip()
    rates = {}
    for name, cfg, sample in (("lean_file_mode", LeanConfig(tactics=("decide",)), formals),
                              ("lean_file_mode_jobs2", LeanConfig(tactics=("decide",), jobs=2), formals),
                              ("lean_process_per_step", LeanConfig(tactics=("decide",), batch_size=1),
                               formals[:100])):
        v = LeanVerifier(cfg)
        started = time.perf_counter()
        verdicts = v.check_formals(sample)
        sec = time.perf_counter() - started
        rates[name] = v.stats.distinct / sec
        emit(name, rates[name], "distinct steps/s", steps=len(sample), distinct=v.stats.distinct,
             proved=sum(x.verdict == "proved" for x in verdicts), lean_runs=v.backend.runs, lean=version,
             sandbox="bubblewrap" if shutil.which("bwrap") else "none")
        v.close()
    for name, sandboxed, what in (
            ("lean_sandboxed_process_per_step", True, "one `lean` per step through the sandbox and limits, no trusted "
             "check: the earlier design's one-process-per-step mode"),
            ("lean_raw_process_per_step", False, "one bare `lean` per step: no sandbox, no Python, no trusted check "
             "(the cheapest per-step check there is)")):
        rate = raw_per_step(lean, distinct[:100], sandboxed=sandboxed)
        emit(name, rate, "distinct steps/s", steps=100, lean=version,
             file_mode_ratio=round(rates["lean_file_mode"] / rate, 1),
             file_mode_jobs2_ratio=round(rates["lean_file_mode_jobs2"] / rate, 1), what=what)
    emit("lean_file_mode_ratio", rates["lean_file_mode"] / rates["lean_process_per_step"], "x", lean=version,
         what="file mode / the same trusted check one step per batch")
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
        bench_lean(distinct)


if __name__ == "__main__":
    main()
