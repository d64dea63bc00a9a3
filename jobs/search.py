"""Program-search job: aging evolution with or without the functional-hash cache, as a stage (``reasonpipe search
--config F``).

The fields are those of ``reasonpipe search evolve`` (``reasonpipe.programsearch.SearchRequest``) plus ``out``, the
report folder (report.md, results.json, history.png). The run is one stage (``reasonpipe.stage.Stage``, record
``<out>/search.stage.json``): an unchanged rerun is reused (one line, then the recorded table), a changed config
runs again. With a cache file (``cache: PATH``) the result depends on what the file already holds, which no config
records, so such a run always runs again; ``cache: memory`` or no cache are reused.

Example::

    reasonpipe search --config configs/search-demo.yaml
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import Any

from reasonpipe.console import print_table, progress
from reasonpipe.jobs import run_job
from reasonpipe.programsearch import SearchRequest
from reasonpipe.stage import Stage


@dataclass
class SearchConfig(SearchRequest):
    """One program search (the fields of ``reasonpipe search evolve``) and where its report goes."""

    out: str = field(default="runs/search", metadata={"help": "report folder: report.md, results.json, history.png"})
    quiet: bool = field(default=False, metadata={"help": "no progress bar"})


def request_of(config: SearchConfig) -> SearchRequest:
    return SearchRequest(**{f.name: getattr(config, f.name) for f in dataclasses.fields(SearchRequest)})


def main(config: SearchConfig) -> int:
    from reasonpipe.programsearch import run_search, same_result, summary_rows, write_report

    request = request_of(config)
    stage = Stage("search", config.out, dataclasses.asdict(request),
                  outputs=["report.md", "results.json", "history.png"])

    def search() -> dict[str, Any]:
        runs_asked = 2 if request.cache and request.compare else 1
        with progress(f"evolve {request.task}", request.budget * runs_asked, config.quiet) as advance:
            problem, runs = run_search(request, progress=advance)
        write_report(config.out, request, problem, runs)
        return {"problem": problem, "rows": summary_rows(runs), "columns": [r.cache for r in runs],
                "same": same_result(runs) if len(runs) == 2 else None}

    stateful_cache = request.cache not in (None, "memory")
    summary = stage.run(search, fresh=stateful_cache)
    print("problem: " + ", ".join(f"{k} {v}" for k, v in summary["problem"].items()))
    print_table(f"{config.out}: aging evolution, seed {request.seed}, budget {request.budget}",
                [tuple(r) for r in summary["rows"]], ("", *(f"cache: {c}" for c in summary["columns"])))
    if summary["same"] is not None:
        print(f"same best program with and without the cache: {'yes' if summary['same'] else 'NO'}")
    return 0 if summary["same"] in (None, True) else 1


def cli(argv: list[str] | None = None) -> int:
    return run_job("search", "search", __doc__, SearchConfig, main, argv)


if __name__ == "__main__":
    sys.exit(cli())
