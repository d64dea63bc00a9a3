"""Calls in spawned processes, a fixed number at a time: how several small models train side by side on a CPU
(one core each, ``OMP_NUM_THREADS=1`` inherited), each call writing only its own folder; a call may wait for an
earlier one (``after``: the latent job's methods start from a shared first stage).

A call's exception is raised here, in the caller, once it finishes (the calls already running finish as the pool
closes); results come back in the order of the calls. A worker dies with the process that started it
(:func:`die_with_parent`): a killed job leaves nothing training behind it. ``workers == 1`` (or a single call) runs them in this process, one after another, so
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
              field: str = "workers", after: Sequence[int | None] | None = None) -> list[T]:
    """``[fn(*args) for args in calls]``, at most ``workers`` at a time in spawned processes (``fn`` and its
    arguments must pickle: a module-level function). ``field`` names the setting in the error for ``workers < 1``.

    ``after[i]``: the index of an earlier call that must finish before call ``i`` starts (None: none). A free
    worker takes the first call in list order whose call before it has finished, so the list order is the
    priority: a call that others wait for goes first."""
    if workers < 1:
        raise InputError(f"must be at least 1, not {workers}", field=field)
    after = list(after) if after is not None else [None] * len(calls)
    if len(after) != len(calls) or any(a is not None and not 0 <= a < i for i, a in enumerate(after)):
        raise InputError("after[i] must name an earlier call (or be None) for every call", field="after")
    if workers == 1 or len(calls) < 2:
        return [fn(*args) for args in calls]
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the spawned processes
    results: dict[int, T] = {}
    waiting = list(range(len(calls)))
    running: dict[Any, int] = {}
    with ProcessPoolExecutor(min(workers, len(calls)), mp_context=mp.get_context("spawn"),
                             initializer=die_with_parent) as pool:
        while waiting or running:
            while len(running) < workers:
                ready = [i for i in waiting if after[i] is None or after[i] in results]
                if not ready:
                    break
                waiting.remove(ready[0])
                running[pool.submit(fn, *calls[ready[0]])] = ready[0]
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                results[running.pop(future)] = future.result()  # a call's error: raised here
    return [results[i] for i in range(len(calls))]


def die_with_parent() -> None:
    """In a spawned worker: ask Linux to send it SIGTERM when its parent dies, so that a killed job (``kill``,
    ``timeout``, a Ray job stopped) leaves no training running behind it. Elsewhere nothing."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before the line above
            os._exit(1)
