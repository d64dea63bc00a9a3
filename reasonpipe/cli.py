"""The ``reasonpipe`` command: the interactive tools and every job stage.

- Tools: ``gen`` writes search traces, ``verify FILE`` checks every step of them, ``export FILE`` writes them
  for other trainers (TRL, verl), ``search`` (program search),
  ``cache`` (a functional-hash cache file), ``submit`` / ``jobs`` (Ray jobs).
- Job stages (:data:`jobs.STAGES`): ``reasonpipe <stage> --config F [--key value ...]`` for tracegen, verify,
  sft, rl, eval, latent, ksweep, pipeline, search; ``reasonpipe <stage> --help`` lists the stage's config fields;
  ``reasonpipe submit <stage> ...`` runs the same stage as a Ray job. ``gen``, ``verify`` and ``search`` take the
  job form when the line has ``--config``: ``reasonpipe verify --config F`` is the verify stage, ``reasonpipe gen
  --config F`` the tracegen stage, ``reasonpipe search --config F`` the search stage, while ``reasonpipe verify
  FILE``, ``reasonpipe gen TASK`` and ``reasonpipe search evolve`` stay the tools.

Exit status: 0 success (for ``verify``: every step holds), 1 some step does not hold, 2 bad input or
usage (one message naming file, line and field; never a traceback), 130 interrupted.

Example::

    reasonpipe gen countdown --n 1000 --searcher dfs --seed 1 --out cd.jsonl && reasonpipe verify cd.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from reasonpipe.console import print_table, progress, run_command
from reasonpipe.errors import InputError

# Task options as flags: flag -> (config field, type, help). Which task accepts which is the task's config.
TASK_FLAGS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "--numbers": ("numbers", int, "countdown: how many numbers (2-8; default 4)"),
    "--target-min": ("target_min", int, "countdown: smallest target (default 10)"),
    "--target-max": ("target_max", int, "countdown: largest target (default 100)"),
    "--max-number": ("max_number", int, "countdown: largest input number (default target-max - 1)"),
    "--split": ("split", str, "countdown: train | test_target (held-out targets) | test_solution (held-out solutions); "
                "reachability: train | test"),
    "--split-seed": ("split_seed", int, "countdown: seed of the held-out target and solution choice (default 0)"),
    "--givens": ("givens", int, "sudoku: number of givens of the own generator"),
    "--source": ("source", str, "sudoku: own | dokusan (To Backtrack or Not's generator, slow)"),
    "--avg-rank": ("avg_rank", int, "sudoku: dokusan's avg_rank (default 150)"),
    "--size": ("size", int, "sudoku: board size 9 (3x3 boxes), 6 (2x3 boxes) or 4 (2x2 boxes) (default 9)"),
    "--nodes": ("nodes", int, "reachability: nodes per graph (default 20, at most 128)"),
    "--depth": ("depth", int, "reachability: path steps from the root to the reachable candidate (default 4)"),
    "--min-depth": ("min_depth", int, "reachability: draw the depth in [min-depth, depth] (default: depth)"),
    "--branching": ("branching", int, "reachability: out-degree on the explored side (default 2)"),
    "--edge-density": ("edge_density", float, "reachability: extra edges, a fraction of the tree edges (default 0.1)"),
}


def _bool_or_none(text: str) -> bool | None:
    return {"yes": True, "no": False, "any": None}[text]


# ``reasonpipe gen|verify --config F``: the job stage of the tool (see the module docstring).
TOOL_STAGES: dict[str, str] = {"gen": "tracegen", "verify": "verify", "search": "search"}
TOOLS = ("gen", "verify", "export", "search", "cache", "submit", "jobs")
EPILOG = """job stages: reasonpipe <stage> --config F [--key value ...] (the config's fields as --key value; YAML
values; nested keys dotted), reasonpipe <stage> --help for the fields, reasonpipe submit <stage> ... on Ray, and
python -m reasonpipe.jobs.<module> --config F [--key value ...] as the module form. gen, verify and search run their
job stage (tracegen, verify, search) when given --config; reasonpipe gen TASK, reasonpipe verify FILE and reasonpipe
search evolve are the tools."""


def make_parser() -> argparse.ArgumentParser:
    from reasonpipe.jobs import STAGES, stage_summary
    from reasonpipe.searchers.base import SearchOptions

    parser = argparse.ArgumentParser(prog="reasonpipe", description="reasoning and program-search pipeline: "
                                     "interactive tools and job stages", epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser("gen", help="generate search traces (JSONL) (with --config: the tracegen stage)",
                         epilog="With --config, `reasonpipe gen --config F [--key value ...]` runs the tracegen job "
                         "stage (jobs/tracegen.py), as `reasonpipe tracegen` does; `reasonpipe tracegen --help` "
                         "lists its fields.")
    gen.add_argument("task", help="countdown | sudoku | arc_1d | list_functions | color_cube_rotation | zebra_puzzles | "
                     "self_reference | advanced_geometry")
    gen.add_argument("--n", type=int, help="number of traces (default: all problems of --from)")
    gen.add_argument("--searcher", default="dfs", help="dfs | bfs | beam | direct | kbacktrack (default dfs)")
    for f in dataclasses.fields(SearchOptions):  # the searcher's settings, declared once in SearchOptions
        gen.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default,
                         help=f"{f.metadata['help']} (default {f.default})")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--out", required=True, help="output JSONL (written atomically)")
    gen.add_argument("--workers", type=int, default=1, help="processes (output is identical for any count)")
    gen.add_argument("--from", dest="problems", help="the user's problems: JSONL, or one a line "
                     "(countdown 'n1,n2,...;target', sudoku 81 characters)")
    gen.add_argument("--skip-bad", action="store_true", help="skip bad problems (counted) instead of stopping")
    gen.add_argument("--steps", action="store_true", help="also write the typed steps of each trace (larger files)")
    gen.add_argument("--resume", action="store_true", help="continue an interrupted run of the same command "
                     "(from OUT.partial); the result is identical to an uninterrupted run")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    for flag, (_, kind, help_text) in TASK_FLAGS.items():
        gen.add_argument(flag, type=kind, help=help_text)
    gen.add_argument("--unsolvable", action="store_true", help="countdown: do not require solvable problems")
    gen.add_argument("--require-guess", type=_bool_or_none, choices=[True, False, None], metavar="{yes,no,any}",
                     help="sudoku: only puzzles that need (yes) / do not need (no) guessing")

    ver = sub.add_parser("verify", help="verify every step of every trace in a file (with --config: the verify "
                         "stage)", epilog="With --config, `reasonpipe verify --config F [--key value ...]` runs the "
                         "verify job stage (jobs/verify.py); `reasonpipe verify --config F --help` lists its fields.")
    ver.add_argument("file")
    ver.add_argument("--format", default="auto", help="auto | reasonpipe | sos | text | safe (default auto)")
    ver.add_argument("--backend", default="exact", choices=["exact", "lean", "exact+lean"],
                     help="exact checker, Lean 4, or exact confirmed by Lean (default exact)")
    lean = ver.add_argument_group("Lean backend (--backend lean or exact+lean)")
    lean.add_argument("--lean-mode", default="file", choices=["file", "repl"],
                      help="file: many steps per `lean` run; repl: a persistent leanprover-community/repl")
    lean.add_argument("--lean", default="lean", help="the lean executable (default: `lean` on PATH)")
    lean.add_argument("--repl", default="repl", help="the REPL executable (default: `repl` on PATH)")
    lean.add_argument("--lean-header", help="file with the statement header, e.g. `import Mathlib`")
    lean.add_argument("--lean-project", help="a Lake project folder: Lean runs under `lake env` there")
    lean.add_argument("--tactics", help="closing tactics to try, comma-separated (default decide,rfl,omega,simp)")
    lean.add_argument("--jobs", type=int, default=1, help="Lean processes at once (default 1)")
    lean.add_argument("--timeout", type=float, default=20.0, help="seconds per step (file mode: per 50 steps)")
    lean.add_argument("--memory-mb", type=int, default=8192, help="memory limit of each Lean process")
    lean.add_argument("--batch-size", type=int, default=1000, help="declarations per `lean` run (file mode)")
    lean.add_argument("--cache", help="SQLite file of verdicts of earlier runs (reasonpipe.fhash store)")
    lean.add_argument("--trust-tactics", action="store_true",
                      help="let proofs use any tactic (default: an allow-list; nothing that prints, sleeps, reads "
                           "files or runs code). For your own provers on your own machine")
    lean.add_argument("--replay", default="auto", choices=["auto", "on", "off"],
                      help="re-check the compiled candidates in Lean's kernel with lean4checker: auto (when "
                           "installed), on (required), off")
    lean.add_argument("--lean4checker", default="lean4checker", help="the lean4checker executable for --replay")
    lean.add_argument("--budget", type=float, help="wall-clock seconds of Lean for the whole call; steps left "
                                                   "after it are `error`")
    lean.add_argument("--no-bwrap", action="store_true",
                      help="run Lean without bubblewrap even where it works (no filesystem isolation)")
    ver.add_argument("--out", help="per-trace verdicts (JSONL, one verdict per step)")
    ver.add_argument("--skip-bad", action="store_true", help="skip bad records (counted) instead of stopping")
    ver.add_argument("--show", type=int, default=20, help="failing traces to list (default 20)")
    ver.add_argument("--quiet", action="store_true", help="no progress bar")

    exp = sub.add_parser("export", help="write traces for other trainers: TRL prompt-completion or messages rows, "
                         "verl's RL parquet (reasonpipe.export)")
    exp.add_argument("file", help="a trace JSONL file, as `reasonpipe gen` writes")
    exp.add_argument("--to", required=True, help="prompt-completion | messages | verl")
    exp.add_argument("--out", required=True,
                     help="output: JSONL, or Parquet when it ends in .parquet (written atomically)")
    exp.add_argument("--layout", default="trace", help="trace (the completion is the rest of the trace) | answer "
                     "(<think> trace </think> <answer> ... </answer>; countdown) (default trace)")
    exp.add_argument("--system", default="", help="messages, verl: a system message first")
    exp.add_argument("--split", default="train", help="verl: extra_info.split (default train)")
    exp.add_argument("--score", default="exact", help="verl: extra_info.score, what reasonpipe.rewards.compute_score "
                     "gives: exact (the task's scorer) | step (fraction of steps verified) (default exact)")
    exp.add_argument("--skip-unanswered", action="store_true",
                     help="answer layout: leave out traces that claim no answer (counted) instead of stopping")
    exp.add_argument("--limit", type=int, help="at most this many rows")
    exp.add_argument("--quiet", action="store_true", help="no progress bar")

    search = sub.add_parser("search", help="program search (with --config: the search stage)").add_subparsers(dest="method", required=True)
    evo = search.add_parser("evolve", help="aging evolution, with or without the functional-hash cache")
    evo.add_argument("--task", default="list_functions", help="list_functions | countdown")
    evo.add_argument("--budget", type=int, default=3000, help="candidates, initial population included")
    evo.add_argument("--population", type=int, default=100)
    evo.add_argument("--sample", type=int, default=10, help="tournament size")
    evo.add_argument("--seed", type=int, default=0, help="seed of the search")
    evo.add_argument("--problem-seed", type=int, default=0, help="seed of the problem")
    evo.add_argument("--cache", help="SQLite file of the functional-hash cache, or 'memory'; none: no cache")
    evo.add_argument("--compare", action="store_true", help="also run without the cache and check the result is the same")
    evo.add_argument("--max-evals", type=int, default=1, help="evaluate a behaviour up to K times and average")
    evo.add_argument("--remove-probability", type=float, default=0.0, help="drop an entry after a hit with this probability")
    evo.add_argument("--heldout", type=int, default=200, help="list_functions: hidden inputs checked per evaluation (its cost)")
    evo.add_argument("--numbers", type=int, default=5, help="countdown: how many numbers")
    evo.add_argument("--report", help="folder for report.md, results.json and history.png")
    evo.add_argument("--quiet", action="store_true", help="no progress bar")

    cache = sub.add_parser("cache", help="inspect or empty a functional-hash cache file")
    cache_sub = cache.add_subparsers(dest="action", required=True)
    for action, text in (("stats", "entries, evaluations and hit statistics"), ("clear", "remove every entry")):
        cache_sub.add_parser(action, help=text).add_argument("path")
    for stage in STAGES:  # listed here; main() hands their command lines to jobs.run_stage
        if stage not in TOOLS:
            sub.add_parser(stage, add_help=False, help=stage_summary(stage))
    from reasonpipe.jobs.submit import add_parsers  # submit, jobs: Ray jobs

    add_parsers(sub)
    for action in sub.choices["submit"]._actions:  # its stages by the names used here
        if action.dest == "job":
            action.help = f"the stage: {', '.join(STAGES)} (or a module of jobs/: python -m reasonpipe.jobs.<module>)"
    return parser


def job_stage(argv: Sequence[str]) -> str | None:
    """The job stage a ``reasonpipe`` command line runs, or None for a tool: ``<stage> ...``, and ``gen`` or
    ``verify`` with ``--config`` (before any ``--``)."""
    from reasonpipe.jobs import STAGES

    if not argv:
        return None
    head, rest = argv[0], list(argv[1:])
    rest = rest[: rest.index("--")] if "--" in rest else rest
    if head in TOOL_STAGES:
        return TOOL_STAGES[head] if any(a == "--config" or a.startswith("--config=") for a in rest) else None
    return head if head in STAGES else None


def unknown_command(name: str) -> str | None:
    """One line naming the valid commands when ``name`` is none of them, else None."""
    import difflib

    from reasonpipe.jobs import STAGES

    valid = [*TOOLS, *(s for s in STAGES if s not in TOOLS)]
    if name.startswith("-") or name in valid:
        return None
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    stages = ", ".join(s if s not in TOOLS else f"{s} --config" for s in STAGES)
    return (f"reasonpipe: error: unknown command {name!r}{hint}; job stages: {stages}; "
            f"tools: {', '.join(TOOLS)} (reasonpipe --help)")


def cmd_gen(args: argparse.Namespace) -> int:
    from reasonpipe.tracegen import GenRequest, generate
    from reasonpipe.searchers import SearchOptions

    options = {field: getattr(args, flag[2:].replace("-", "_")) for flag, (field, _, _) in TASK_FLAGS.items()}
    options = {k: v for k, v in options.items() if v is not None}
    if args.unsolvable:
        options["solvable"] = False
    if args.require_guess is not None:
        options["require_guess"] = args.require_guess
    search = SearchOptions.of(args)
    request = GenRequest(task=args.task, searcher=args.searcher, out=args.out, n=args.n, seed=args.seed,
                         workers=args.workers, task_options=options, search=search, problems=args.problems,
                         skip_bad=args.skip_bad, steps=args.steps)
    with progress(f"gen {args.task}/{args.searcher}", args.n, args.quiet) as advance:
        summary = generate(request, progress=advance, resume=args.resume)
    print_table(f"{args.out}: {args.task} traces by {args.searcher}", summary.rows(), ("", "value"))
    for err in summary.errors:
        print(f"skipped: {err}", file=sys.stderr)
    return 0


def _lean_config(args: argparse.Namespace):
    from reasonpipe.verifiers.lean import DEFAULT_TACTICS, LeanConfig

    header = ""
    if args.lean_header:
        if not os.path.isfile(args.lean_header):
            raise InputError("no such header file", path=args.lean_header)
        with open(args.lean_header, encoding="utf-8") as f:
            header = f.read()
    tactics = tuple(t.strip() for t in args.tactics.split(",") if t.strip()) if args.tactics else DEFAULT_TACTICS
    try:
        return LeanConfig(mode=args.lean_mode, lean=args.lean, repl=args.repl, header=header,
                          project=args.lean_project, tactics=tactics, timeout_s=args.timeout,
                          memory_mb=args.memory_mb, jobs=args.jobs, batch_size=args.batch_size, cache=args.cache,
                          trust_tactics=args.trust_tactics, replay=args.replay, lean4checker=args.lean4checker,
                          budget_s=args.budget, bwrap=False if args.no_bwrap else None)
    except ValueError as e:
        raise InputError(str(e), field="lean options") from None


def cmd_verify(args: argparse.Namespace) -> int:
    from reasonpipe.verify import verify_file

    lean = None
    if args.backend != "exact":
        from reasonpipe.verifiers.lean import lean_missing_message

        lean = _lean_config(args)
        missing = lean_missing_message(lean)
        if missing is not None:
            print(f"reasonpipe verify --backend {args.backend}: {missing}", file=sys.stderr)
            return 2
    from reasonpipe.verifiers.lean.sandbox import SandboxError

    try:
        with progress(f"verify {os.path.basename(args.file)}", None, args.quiet) as advance:
            summary = verify_file(args.file, fmt=args.format, out=args.out, skip_bad=args.skip_bad,
                                  keep_failing=args.show, progress=advance, backend=args.backend, lean=lean)
    except SandboxError as e:  # Lean could not be run at all: one line, not a traceback
        print(f"reasonpipe verify --backend {args.backend}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print_table(f"{args.file}: step verification", summary.rows(), ("", "value"))
    if summary.failing:
        rows = [(r.id, str(r.line or ""), str(r.first_failure + 1), r.first_failure_verdict, r.first_failure_reason,
                 r.first_failure_text[:80]) for r in summary.failing]
        more = summary.failing_total - len(summary.failing)
        title = "first failing step of each failing trace" + (f" (first {len(rows)}; {more} more)" if more else "")
        print_table(title, rows, ("trace", "line", "step", "verdict", "reason", "step text"))
    for err in summary.skip_errors:
        print(f"skipped: {err}", file=sys.stderr)
    return 0 if summary.valid == summary.traces else 1


def cmd_export(args: argparse.Namespace) -> int:
    from reasonpipe.export import ExportOptions, export_file

    options = ExportOptions(to=args.to, layout=args.layout, system=args.system, split=args.split, score=args.score,
                            skip_unanswered=args.skip_unanswered, limit=args.limit)
    with progress(f"export {os.path.basename(args.file)}", None, args.quiet) as advance:
        summary = export_file(args.file, args.out, options, progress=advance)
    print_table(f"{args.out}: {args.file} for {args.to}", summary.table(), ("", "value"))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from reasonpipe.programsearch import SearchRequest, run_search, same_result, summary_rows, write_report

    request = SearchRequest(task=args.task, budget=args.budget, population=args.population, sample=args.sample,
                            seed=args.seed, problem_seed=args.problem_seed, cache=args.cache, compare=args.compare,
                            max_evals=args.max_evals, remove_probability=args.remove_probability,
                            heldout=args.heldout, numbers=args.numbers)
    runs_asked = 2 if args.cache and args.compare else 1
    with progress(f"evolve {args.task}", args.budget * runs_asked, args.quiet) as advance:
        problem, runs = run_search(request, progress=advance)
    print("problem: " + ", ".join(f"{k} {v}" for k, v in problem.items()))
    print_table(f"aging evolution, seed {args.seed}, budget {args.budget}", summary_rows(runs),
                ("", *(f"cache: {r.cache}" for r in runs)))
    code = 0
    if len(runs) == 2:
        same = same_result(runs)
        saved = 1 - runs[1].evaluations / runs[0].evaluations
        print(f"same best program with and without the cache: {'yes' if same else 'NO'}; "
              f"evaluations saved by the cache: {saved:.1%} ({runs[0].evaluations} -> {runs[1].evaluations})")
        code = 0 if same else 1
    elif runs[0].cache_stats:
        print(f"evaluations saved by the cache: {runs[0].cache_stats['saved_fraction']:.1%}")
    if args.report:
        print(f"report: {write_report(args.report, request, problem, runs)}")
    return code


def cmd_cache(args: argparse.Namespace) -> int:
    from reasonpipe.fhash import CacheStats, SQLiteStore

    if not os.path.isfile(args.path):
        raise InputError("no such cache file", path=args.path)
    store = SQLiteStore(args.path)
    if args.action == "clear":
        n = len(store)
        store.clear()
        print(f"{args.path}: removed {n} entries")
        return 0
    counters = store.read_counters()
    stats = CacheStats(**{k: type(getattr(CacheStats(), k))(v) for k, v in counters.items() if hasattr(CacheStats(), k)})
    size = sum(os.path.getsize(p) for p in (args.path, args.path + "-wal") if os.path.exists(p))
    rows = [("entries (distinct behaviours)", f"{len(store):,}"), ("evaluations stored", f"{store.evaluations():,}"),
            ("lookups", f"{stats.lookups:,}"), ("misses", f"{stats.misses:,}"), ("partial hits", f"{stats.partial_hits:,}"),
            ("full hits (evaluations saved)", f"{stats.full_hits:,}"), ("uncacheable", f"{stats.uncacheable:,}"),
            ("saved fraction", f"{stats.saved_fraction:.1%}"), ("evaluation seconds spent", f"{stats.eval_seconds:.2f}"),
            ("evaluation seconds saved", f"{stats.seconds_saved:.2f}"), ("file size", f"{size / 1e6:.2f} MB"),
            ("integrity", store.check())]
    print_table(f"{args.path}: functional-hash cache", rows, ("", "value"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Parsing and verifying allocate millions of short-lived, acyclic objects; the default gen-0 threshold
    # (700) runs the cycle collector constantly. 50,000 made `verify` about 15% faster (1000 DFS traces).
    gc.set_threshold(50_000, 20, 20)
    argv = list(sys.argv[1:] if argv is None else argv)
    stage = job_stage(argv)
    if stage is not None:  # a job stage: the rest of the line is --config F and --key value overrides
        from reasonpipe.jobs import run_stage

        return run_stage(stage, argv[1:], prog=f"reasonpipe {argv[0]}")
    if argv and (message := unknown_command(argv[0])):
        print(message, file=sys.stderr)
        return 2
    args, extra = make_parser().parse_known_args(argv)
    if args.command == "submit":  # the rest of the line is the job's --key value overrides
        from reasonpipe.jobs import STAGES

        args.job = STAGES.get(args.job, TOOL_STAGES.get(args.job, args.job))  # a stage name -> its module
        args.overrides, extra = extra, []
    if extra:
        make_parser().error(f"unrecognized arguments: {' '.join(extra)}")
    from reasonpipe.jobs.submit import cmd_jobs, cmd_submit

    command = {"gen": cmd_gen, "verify": cmd_verify, "export": cmd_export, "search": cmd_search, "cache": cmd_cache,
               "submit": cmd_submit, "jobs": cmd_jobs}[args.command]
    interrupted = ("interrupted: the traces so far are kept; run the same command with --resume to continue"
                   if args.command == "gen" else "interrupted")
    return run_command(f"reasonpipe {args.command}", lambda: command(args), interrupted)


if __name__ == "__main__":
    sys.exit(main())
