"""Symbolic searchers that write traces, by task and name.

``countdown``: ``dfs``, ``bfs``, ``beam``, ``direct``, ``kbacktrack``; ``sudoku``: ``dfs``, ``direct``,
``kbacktrack``; ``reachability``: ``path``, ``bfs``, ``direct``; the reasoning-gym tasks
(:mod:`reasonpipe.tasks.gym`): ``direct``, ``kbacktrack`` (:mod:`reasonpipe.searchers.gym`). Each is
``(task, problem, options, rng) -> Trace`` (see :mod:`reasonpipe.searchers.base`). A plug-in searcher is named
``module:function`` instead (``docs/plugins.md``), for any task; a plug-in task has only plug-in searchers.

Example::

    reasonpipe gen sudoku --n 3 --searcher dfs --seed 0 --out /tmp/sd.jsonl
"""

from __future__ import annotations

from collections.abc import Callable

from reasonpipe.errors import InputError
from reasonpipe.plugins import is_plugin, load_object
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
    """The searcher ``name`` for ``task``, or the plug-in ``module:function`` ``name`` names; InputError listing the
    valid names otherwise."""
    if is_plugin(name):
        return load_object(name, "searcher", "searcher")
    table = SEARCHERS.get(task)
    if table is None and task in GYM_TASKS:
        table = GYM_SEARCHERS
    if table is None and is_plugin(task):
        raise InputError(f"{name!r} is a built-in searcher; the plug-in task {task} needs a plug-in searcher "
                         f"(module:function)", field="searcher")
    if table is None:
        raise InputError(f"no searchers for task {task!r} (known: {', '.join(SEARCHERS)})", field="task")
    if name not in table:
        raise InputError(f"unknown searcher {name!r} for {task} (known: {', '.join(table)})", field="searcher")
    return table[name]


__all__ = ["GYM_SEARCHERS", "SEARCHERS", "SearchFailed", "SearchOptions", "get_searcher"]
