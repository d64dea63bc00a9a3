"""Symbolic searchers that write traces, by task and name.

``countdown``: ``dfs``, ``bfs``, ``beam``, ``direct``, ``kbacktrack``; ``sudoku``: ``dfs``, ``direct``,
``kbacktrack``; ``reachability``: ``path``, ``bfs``, ``direct``; the reasoning-gym tasks
(:mod:`reasonpipe.tasks.gym`): ``direct``, ``kbacktrack`` (:mod:`reasonpipe.searchers.gym`). Each is
``(task, problem, options, rng) -> Trace`` (see :mod:`reasonpipe.searchers.base`).

Example::

    reasonpipe gen sudoku --n 3 --searcher dfs --seed 0 --out /tmp/sd.jsonl
"""

from __future__ import annotations

from collections.abc import Callable

from reasonpipe.errors import InputError
from reasonpipe.tasks import GYM_TASKS
from reasonpipe.searchers import countdown, gym, reachability, sudoku
from reasonpipe.searchers.base import SearchFailed, SearchOptions

SEARCHERS: dict[str, dict[str, Callable]] = {
    "countdown": {"dfs": countdown.dfs, "bfs": countdown.bfs, "beam": countdown.beam,
                  "direct": countdown.direct, "kbacktrack": countdown.kbacktrack},
    "sudoku": {"dfs": sudoku.dfs, "direct": sudoku.direct, "kbacktrack": sudoku.kbacktrack},
    "reachability": {"path": reachability.path, "bfs": reachability.bfs, "direct": reachability.direct},
}
# every reasoning-gym task (reasonpipe.tasks.GYM_TASKS) shares one table
GYM_SEARCHERS: dict[str, Callable] = gym.SEARCHERS


def get_searcher(task: str, name: str) -> Callable:
    """The searcher ``name`` for ``task``; InputError listing the valid names otherwise."""
    table = SEARCHERS.get(task)
    if table is None and task in GYM_TASKS:
        table = GYM_SEARCHERS
    if table is None:
        raise InputError(f"no searchers for task {task!r} (known: {', '.join(SEARCHERS)})", field="task")
    if name not in table:
        raise InputError(f"unknown searcher {name!r} for {task} (known: {', '.join(table)})", field="searcher")
    return table[name]


__all__ = ["GYM_SEARCHERS", "SEARCHERS", "SearchFailed", "SearchOptions", "get_searcher"]
