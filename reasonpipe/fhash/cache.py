"""The functional-hash cache (Gillard et al. 2023): evaluate each *behaviour* once, not each candidate.

``get_or_evaluate(candidate, probes, evaluate)`` runs the candidate on the probe inputs, hashes what it
did, and looks the hash up:

- **miss** (never seen): evaluate, store the fitness;
- **partial hit** (seen fewer than ``max_evals`` times): evaluate again, store, return the mean of all
  values seen (for noisy evaluations);
- **full hit**: return the stored mean without evaluating; with ``remove_probability`` the entry is then
  dropped, so a lucky score is not kept forever.

A candidate whose outputs have no canonical encoding is evaluated every time (counted ``uncacheable``),
never merged with another. The cache is exact when fitness is a function of the outputs on the probes
(make the probes include every input the fitness looks at); otherwise two candidates that agree on the
probes but not elsewhere share a fitness, which is the trade-off the paper makes for cheap probes.

Use a ``namespace`` per fitness function (task, data, metric): entries of different namespaces never mix,
so one SQLite file can serve many searches.

Example, from someone else's search loop::

    from reasonpipe.fhash import FunctionalHashCache, SQLiteStore
    cache = FunctionalHashCache(SQLiteStore("fitness.db"), namespace="my-task-v1")
    for program in my_search():
        fitness = cache.get_or_evaluate(program, probe_inputs, evaluate)
    print(cache.stats)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from reasonpipe.fhash.encode import DEFAULT_FLOAT_BITS, EncodeError, Encoder, digest, namespace_key
from reasonpipe.fhash.probe import probe
from reasonpipe.fhash.stores import MemoryStore, SQLiteStore


@dataclass
class CacheStats:
    """What the cache did since it was made (``reasonpipe cache stats`` sums these over runs)."""

    misses: int = 0
    partial_hits: int = 0
    full_hits: int = 0
    uncacheable: int = 0
    removed: int = 0
    eval_seconds: float = 0.0   # spent evaluating
    seconds_saved: float = 0.0  # the mean evaluation time of each full hit's entry

    @property
    def lookups(self) -> int:
        return self.misses + self.partial_hits + self.full_hits + self.uncacheable

    @property
    def evaluations(self) -> int:
        return self.misses + self.partial_hits + self.uncacheable

    @property
    def saved_fraction(self) -> float:
        """Evaluations saved over evaluations a cache-less run would have made."""
        return self.full_hits / self.lookups if self.lookups else 0.0

    def __str__(self) -> str:
        return (f"lookups {self.lookups}: {self.misses} misses, {self.partial_hits} partial hits, "
                f"{self.full_hits} full hits, {self.uncacheable} uncacheable; evaluations {self.evaluations} "
                f"({self.saved_fraction:.1%} saved, {self.seconds_saved:.3f} s saved)")


class FunctionalHashCache:
    """Cache fitness by functional hash; see the module docstring."""

    def __init__(self, store: MemoryStore | SQLiteStore | None = None, *, max_evals: int = 1,
                 remove_probability: float = 0.0, float_bits: int = DEFAULT_FLOAT_BITS,
                 namespace: bytes | str = b"", timeout: float | None = None, seed: int = 0) -> None:
        if max_evals < 1:
            raise ValueError(f"max_evals must be >= 1, got {max_evals}")
        if not 0.0 <= remove_probability <= 1.0:
            raise ValueError(f"remove_probability must be in [0, 1], got {remove_probability}")
        self.store = store if store is not None else MemoryStore()
        self.max_evals = max_evals
        self.remove_probability = remove_probability
        self.timeout = timeout
        self.encoder = Encoder(float_bits)
        self.key = namespace_key(namespace)
        self.rng = random.Random(seed)  # removal draws only: the caller's own randomness is untouched
        self.stats = CacheStats()
        self._flushed = CacheStats()

    def hash(self, candidate: Callable[[Any], Any], probes: Sequence[Any]) -> bytes | None:
        """The candidate's functional hash on ``probes`` (None when its outputs cannot be encoded)."""
        return self.hash_outputs(probe(candidate, probes, self.timeout))

    def hash_outputs(self, outputs: Any) -> bytes | None:
        try:
            return digest(self.encoder.encode(outputs), self.key)
        except EncodeError:
            return None

    def get_or_evaluate(self, candidate: Callable[[Any], Any], probes: Sequence[Any],
                        evaluate: Callable[[Any], float]) -> float:
        """The candidate's fitness: from the cache when its behaviour has been evaluated enough times."""
        return self.lookup_or_evaluate(self.hash(candidate, probes), candidate, evaluate)

    def lookup_or_evaluate(self, key: bytes | None, candidate: Any, evaluate: Callable[[Any], float]) -> float:
        """As :meth:`get_or_evaluate`, for a hash computed by the caller (e.g. with ``hash_rows``)."""
        stats = self.stats
        if key is None:
            stats.uncacheable += 1
            return self._evaluate(evaluate, candidate)[0]
        entry = self.store.get(key)
        if entry is None:
            stats.misses += 1
        elif entry.evals < self.max_evals:
            stats.partial_hits += 1
        else:
            stats.full_hits += 1
            stats.seconds_saved += entry.seconds / entry.evals
            if self.remove_probability and self.rng.random() < self.remove_probability:
                self.store.remove(key)
                stats.removed += 1
            return entry.mean
        fitness, seconds = self._evaluate(evaluate, candidate)
        return self.store.add(key, fitness, seconds).mean

    def _evaluate(self, evaluate: Callable[[Any], float], candidate: Any) -> tuple[float, float]:
        started = time.perf_counter()
        value = evaluate(candidate)
        seconds = time.perf_counter() - started
        try:
            fitness = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"evaluate() must return a number, got {type(value).__name__}") from None
        self.stats.eval_seconds += seconds
        return fitness, seconds

    def flush(self) -> None:
        """Add the statistics since the last flush to the store's counters (shared by every run on it)."""
        now, before = asdict(self.stats), asdict(self._flushed)
        delta = {k: now[k] - before[k] for k in now if now[k] != before[k]}
        if delta:
            self.store.add_counters(delta)
        self._flushed = CacheStats(**now)

    def close(self) -> None:
        self.flush()
        self.store.close()

    def __enter__(self) -> "FunctionalHashCache":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
