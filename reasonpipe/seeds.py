"""Seeds: every random stream in reasonpipe is named by a path, ``<namespace>/<seed>/<index>...``.

One convention for the whole project, so that a stream never depends on which process, worker or order made
it, and two uses of one seed never share a stream by accident: :func:`stream` gives a ``random.Random`` seeded by
the path's text (Python seeds a string through SHA-512, so it is the same in every process and run, whatever
``PYTHONHASHSEED``), and :func:`int_seed` an integer for torch or numpy from the path's SHA-256. The namespaces in
use (each names what it draws):

- ``reasonpipe/<seed>/<i>``: problem ``i`` of trace generation (``reasonpipe gen``, the pipeline's datasets, the
  RL stage's training problems); the namespace keeps its first name so that every dataset stays byte-identical;
- ``eval/<seed>/<i>``: the held-out problems of the evaluation grid; ``eval-search/<seed>/<i>`` its data bound's
  searcher;
- ``rl-probe/<seed>/<i>``: the RL stage's held-out probe problems; ``ksweep-eval/<seed>/<i>``: the k-sweep's;
- ``train/<seed>/<i>`` and ``eval-<set>/<seed>/<i>``: the continuous-thought job's graphs;
  ``latent/<seed>/<stage>/<epoch>``: its batch order;
- ``sample/<seed>/<batch>``: the torch generator of the hf sampler's batch;
- ``countdown-targets/<split_seed>``, ``heldout/<seed>``, ``countdown-probes/<seed>``, ``<task>/<seed>``: the
  CountDown split, the program-search problems and probes.

Example::

    python -c "from reasonpipe.seeds import stream, int_seed; print(stream('eval', 1, 0).random(), int_seed('sample', 1, 0))"
"""

from __future__ import annotations

import hashlib
import random


def path(namespace: str, *parts: int | str) -> str:
    """The stream's name: ``namespace/part/part...``."""
    return "/".join([namespace, *(str(p) for p in parts)])


def stream(namespace: str, *parts: int | str) -> random.Random:
    """The random stream named ``namespace/parts...`` (the same numbers in every process and run)."""
    return random.Random(path(namespace, *parts))


def int_seed(namespace: str, *parts: int | str) -> int:
    """A 63-bit integer seed for the stream ``namespace/parts...`` (for ``torch.manual_seed`` and numpy)."""
    return int.from_bytes(hashlib.sha256(path(namespace, *parts).encode()).digest()[:8], "big") >> 1
