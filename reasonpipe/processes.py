"""Independent calls in spawned processes, a fixed number at a time: how several small models train side by side
on a CPU (one core each, ``OMP_NUM_THREADS=1`` inherited), each call writing only its own folder.

A call's exception is raised here, in the caller, after the calls already running finish; results come back in
the order of the calls. ``workers == 1`` (or a single call) runs them in this process, one after another, so
that a test can patch what they call.

Example::

    python -c "from reasonpipe.processes import spawn_map; import math; print(spawn_map(math.factorial, [(5,), (6,)], 2))"
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from reasonpipe.errors import InputError

T = TypeVar("T")


def spawn_map(fn: Callable[..., T], calls: Sequence[tuple[Any, ...]], workers: int,
              field: str = "workers") -> list[T]:
    """``[fn(*args) for args in calls]``, at most ``workers`` at a time in spawned processes (``fn`` and its
    arguments must pickle: a module-level function). ``field`` names the setting in the error for ``workers < 1``."""
    if workers < 1:
        raise InputError(f"must be at least 1, not {workers}", field=field)
    if workers == 1 or len(calls) < 2:
        return [fn(*args) for args in calls]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the spawned processes
    with ProcessPoolExecutor(min(workers, len(calls)), mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(fn, *args) for args in calls]
        return [f.result() for f in futures]
