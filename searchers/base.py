"""What every searcher takes and how it signals that it cannot write the asked-for trace.

A searcher is a function ``(task, problem, options, rng) -> Trace`` that fills the trace's steps and
its meta (``searcher``, ``nodes_expanded``, ``backtracks``, ``solved``); the generator fills the
length fields. It raises :class:`SearchFailed` when the trace asked for cannot exist for this problem
(e.g. fewer than k distinct wrong branches): the generator then draws another problem.

Example::

    python -c "from reasonpipe.searchers.base import SearchOptions; print(SearchOptions(k=3))"
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SearchOptions:
    """Searcher settings; each searcher reads the fields that concern it.

    Declared here once: the configs that carry them (``reasonpipe tracegen``'s, the pipeline's datasets) inherit
    these fields, ``reasonpipe gen`` makes its flags from them, and :meth:`of` reads them back out of either."""

    k: int = field(default=1, metadata={"help": "kbacktrack: exact number of backtracks, each to a distinct wrong "
                                                "branch"})
    beam: int = field(default=5, metadata={"help": "beam: width (1..5 as in Stream of Search)"})
    heuristic: str = field(default="sum", metadata={"help": "countdown: sum | mult (Stream of Search's heuristics)"})
    threshold: str = field(default="target", metadata={"help": "countdown dfs: prune children whose heuristic "
                                                              "exceeds the target (target) | none"})
    max_nodes: int = field(default=0, metadata={"help": "node-expansion limit, 0 = none (the trace then ends "
                                                        "unsolved)"})

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def of(cls, config: Any) -> SearchOptions:
        """The searcher settings of a config that carries them (a subclass, or any object with these fields)."""
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})

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
