"""Run a candidate on every probe input and record its behaviour: outputs, exceptions and timeouts.

An exception becomes :class:`~reasonpipe.fhash.encode.Raised` (its type), a probe that runs past
``timeout`` seconds becomes :class:`~reasonpipe.fhash.encode.TimedOut`; both are behaviours that hash like
any output, so failing candidates are grouped by how they fail, never merged with working ones.
``KeyboardInterrupt`` and ``SystemExit`` are not behaviours: they propagate.

The timeout uses ``SIGALRM`` (Unix, main thread), which interrupts Python code between bytecodes; a
candidate stuck inside one C call is stopped when that call returns. Inputs are passed as they are
(``copy_inputs=True`` deep-copies each, for candidates that mutate their arguments).

Example::

    python -c "from reasonpipe.fhash import probe; print(probe(lambda x: 10 // x, [5, 0]))"
"""

from __future__ import annotations

import contextlib
import copy
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from reasonpipe.fhash.encode import Raised, TimedOut


class _Deadline(BaseException):
    """Raised into the candidate when its time is up (a BaseException, so ``except Exception`` in the
    candidate cannot swallow it)."""


@contextlib.contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    if seconds is None:
        yield
        return
    if seconds <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {seconds}")
    if threading.current_thread() is not threading.main_thread():
        raise ValueError("a probe timeout needs the main thread (it uses SIGALRM); pass timeout=None here")

    def alarm(signum, frame):
        raise _Deadline()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def probe(candidate: Callable[[Any], Any], probes: Sequence[Any], timeout: float | None = None, *,
          copy_inputs: bool = False) -> list[Any]:
    """``[candidate(x) for x in probes]``, with each exception or timeout recorded as a behaviour."""
    outputs: list[Any] = []
    for x in probes:
        if copy_inputs:
            x = copy.deepcopy(x)
        try:
            with _deadline(timeout):
                y = candidate(x)
        except _Deadline:
            y = TimedOut()
        except Exception as e:  # any failure of the candidate is part of its behaviour
            y = Raised.of(e)
        outputs.append(y)
    return outputs
