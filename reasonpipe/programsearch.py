"""Program-search experiments: evolve programs for one problem, with and/or without the functional-hash cache.

Builds the problem from a seed (List Functions or CountDown), runs aging evolution
(:mod:`reasonpipe.searchers.evolve`), and reports what was found and what the cache saved; with ``compare`` it runs
both ways from the same seed and checks that they found the same program. ``write_report`` leaves a table
(report.md), the raw numbers (results.json) and a plot of best fitness against candidates and evaluations.

Example::

    reasonpipe search evolve --task list_functions --budget 3000 --cache /tmp/fh.db --compare --report runs/evolve
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.fhash import FunctionalHashCache, MemoryStore, SQLiteStore
from reasonpipe.jsonl import atomic_write
from reasonpipe.report import markdown_table
from reasonpipe.seeds import stream
from reasonpipe.tasks import list_programs as lf
from reasonpipe.tasks import make_task
from reasonpipe.searchers.evolve import CountdownSpace, EvolveConfig, EvolveResult, ListFunctionsSpace, aging_evolution

TASKS = ("list_functions", "countdown")


@dataclass
class SearchRequest:
    """One program search: the problem, the evolution's settings and the cache's."""

    task: str = field(default="list_functions", metadata={"help": "list_functions | countdown"})
    budget: int = field(default=3000, metadata={"help": "candidates, the initial population included"})
    population: int = field(default=100, metadata={"help": "population size"})
    sample: int = field(default=10, metadata={"help": "tournament size"})
    seed: int = field(default=0, metadata={"help": "seed of the search"})
    problem_seed: int = field(default=0, metadata={"help": "seed of the problem"})
    cache: str | None = field(default=None, metadata={"help": "SQLite file of the functional-hash cache, or "
                                                      "'memory'; none: no cache"})
    compare: bool = field(default=False, metadata={"help": "also run without the cache and check the result is the "
                                                   "same"})
    max_evals: int = field(default=1, metadata={"help": "evaluate a behaviour up to K times and average"})
    remove_probability: float = field(default=0.0, metadata={"help": "drop an entry after a hit with this "
                                                              "probability"})
    heldout: int = field(default=200, metadata={"help": "list_functions: hidden inputs checked per evaluation (its "
                                                "cost)"})
    numbers: int = field(default=5, metadata={"help": "countdown: how many numbers"})


@dataclass
class RunSummary:
    cache: str
    best: str
    train_fitness: float
    test_score: float | None
    solved: bool
    candidates: int
    evaluations: int
    seconds: float
    cache_stats: dict[str, Any] | None
    history: list[tuple[int, int, float]]


def make_space(request: SearchRequest):
    """The search space and a description of the problem (the hidden program is shown, never searched)."""
    rng = stream(request.task, request.problem_seed)
    if request.task == "list_functions":
        problem = lf.generate(rng)
        space = ListFunctionsSpace(problem, heldout=request.heldout, heldout_seed=request.problem_seed)
        return space, {"hidden program": lf.show(problem.program), "train examples": len(problem.train),
                       "test examples": len(problem.test)}
    if request.task == "countdown":
        task = make_task("countdown", numbers=request.numbers, target_min=100, target_max=999, max_number=99)
        problem = task.generate(rng)
        return CountdownSpace(problem), {"numbers": list(problem.nums), "target": problem.target}
    raise InputError(f"unknown task {request.task!r} (known: {', '.join(TASKS)})", field="task")


def _open_cache(request: SearchRequest, namespace: str) -> FunctionalHashCache:
    store = MemoryStore() if request.cache == "memory" else SQLiteStore(request.cache)
    return FunctionalHashCache(store, max_evals=request.max_evals, remove_probability=request.remove_probability,
                               namespace=namespace, seed=request.seed)


def run_search(request: SearchRequest, progress: Any = None) -> tuple[dict[str, Any], list[RunSummary]]:
    """One run per mode asked for: without the cache (if no cache or compare), with it (if a cache)."""
    if request.budget < request.population or request.sample > request.population or request.sample < 1:
        raise InputError("need 1 <= sample <= population <= budget", field="budget")
    config = EvolveConfig(population=request.population, sample=request.sample, budget=request.budget,
                          seed=request.seed)
    modes = ([None] if request.cache is None or request.compare else []) + ([request.cache] if request.cache else [])
    problem_info: dict[str, Any] = {}
    runs = []
    for mode in modes:
        space, problem_info = make_space(request)
        # entries are only valid for this fitness function: the namespace names the task, problem and data
        namespace = json.dumps({"task": request.task, "problem_seed": request.problem_seed,
                                "numbers": request.numbers, "fitness": "v1"}, sort_keys=True)
        cache = _open_cache(request, namespace) if mode else None
        try:
            result: EvolveResult = aging_evolution(space, config, cache, progress)
        finally:
            if cache is not None:
                cache.close()
        test = lf.score(result.best, space.problem.test) if request.task == "list_functions" else None
        runs.append(RunSummary(cache=mode or "none", best=result.best_text, train_fitness=result.best_fitness,
                               test_score=test, solved=result.solved, candidates=result.candidates,
                               evaluations=result.evaluations, seconds=result.seconds,
                               cache_stats=None if cache is None else {**asdict(cache.stats),
                                                                      "saved_fraction": cache.stats.saved_fraction},
                               history=result.history))
    return problem_info, runs


def summary_rows(runs: list[RunSummary]) -> list[tuple[str, ...]]:
    """One row per quantity, one column per run."""
    def cell(run: RunSummary, name: str) -> str:
        s = run.cache_stats or {}
        return {
            "best program": run.best,
            "train fitness": f"{run.train_fitness:.4f}",
            "test score": "-" if run.test_score is None else f"{run.test_score:.4f}",
            "solved": "yes" if run.solved else "no",
            "candidates": str(run.candidates),
            "evaluations": str(run.evaluations),
            "full hits": str(s.get("full_hits", "-")),
            "evaluations saved": f"{s['saved_fraction']:.1%}" if s else "-",
            "seconds": f"{run.seconds:.2f}",
        }[name]

    names = ["best program", "train fitness", "test score", "solved", "candidates", "evaluations", "full hits",
             "evaluations saved", "seconds"]
    return [(name, *(cell(r, name) for r in runs)) for name in names]


def write_report(directory: str, request: SearchRequest, problem: dict[str, Any], runs: list[RunSummary]) -> str:
    """results.json, report.md (table) and history.png (best fitness against candidates and evaluations)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    with atomic_write(os.path.join(directory, "results.json")) as f:
        json.dump({"request": asdict(request), "problem": problem, "runs": [asdict(r) for r in runs]}, f, indent=2)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    for r in runs:
        made = [h[0] for h in r.history]
        evals = [h[1] for h in r.history]
        best = [h[2] for h in r.history]
        axes[0].plot(made, best, label=f"cache: {os.path.basename(r.cache)}")
        axes[1].plot(evals, best, label=f"cache: {os.path.basename(r.cache)}")
    axes[0].set_xlabel("candidates")
    axes[1].set_xlabel("evaluations")
    for ax in axes:
        ax.set_ylabel("best fitness so far")
        ax.legend(fontsize=8)
    fig.suptitle(f"aging evolution on {request.task} (seed {request.seed})")
    fig.tight_layout()
    with atomic_write(os.path.join(directory, "history.png"), "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
    headers = ["", *(f"cache: {r.cache}" for r in runs)]
    with atomic_write(os.path.join(directory, "report.md")) as f:
        f.write(f"# Program search: {request.task}\n\nProblem: {json.dumps(problem)}\n\n")
        f.write(markdown_table(headers, summary_rows(runs)))
        f.write("\n![history](history.png)\n")
    return os.path.join(directory, "report.md")


def same_result(runs: list[RunSummary]) -> bool:
    """Did every run find the same best program with the same fitness, with the same best-so-far curve?"""
    first = runs[0]
    return all(r.best == first.best and r.train_fitness == first.train_fitness
               and [h[2] for h in r.history] == [h[2] for h in first.history] for r in runs)
