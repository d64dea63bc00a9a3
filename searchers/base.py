"""What every searcher takes and how it signals that it cannot write the asked-for trace.

A searcher is a function ``(task, problem, options, rng) -> Trace`` that fills the trace's steps and
its meta (``searcher``, ``nodes_expanded``, ``backtracks``, ``solved``); the generator fills the
length fields. It raises :class:`SearchFailed` when the trace asked for cannot exist for this problem
(e.g. fewer than k distinct wrong branches): the generator then draws another problem.

Example::

    python -c "from reasonpipe.searchers.base import SearchOptions; print(SearchOptions(k=3))"
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchOptions:
    """Searcher settings; each searcher reads the fields that concern it."""

    k: int = 1                 # kbacktrack: exact number of backtracks, each to a distinct wrong branch
    beam: int = 5              # beam: width (1..5 as in Stream of Search)
    heuristic: str = "sum"     # countdown: sum | mult (Stream of Search's heuristics)
    threshold: str = "target"  # countdown dfs: prune children whose heuristic exceeds the target | none
    max_nodes: int = 0         # node-expansion limit; 0 = none (the trace then ends unsolved)

    def validate(self) -> None:
        from reasonpipe.errors import InputError

        if self.k < 0:
            raise InputError(f"must be >= 0, got {self.k}", field="k")
        if not 1 <= self.beam <= 64:
            raise InputError(f"must be 1..64, got {self.beam}", field="beam")
        if self.heuristic not in ("sum", "mult"):
            raise InputError(f"unknown heuristic {self.heuristic!r} (known: sum, mult)", field="heuristic")
        if self.threshold not in ("target", "none"):
            raise InputError(f"unknown threshold {self.threshold!r} (known: target, none)", field="threshold")
        if self.max_nodes < 0:
            raise InputError(f"must be >= 0, got {self.max_nodes}", field="max_nodes")


class SearchFailed(Exception):
    """The requested trace cannot be written for this problem (the caller may draw another)."""
