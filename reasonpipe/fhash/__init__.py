"""Functional hashing (Gillard et al. 2023, "Unified Functional Hashing in Automatic Machine Learning").

Two candidates that behave the same on a fixed set of probe inputs get the same 128-bit hash, so the
expensive evaluation of the second can be skipped. Import this package on its own, from any search loop::

    from reasonpipe.fhash import FunctionalHashCache, SQLiteStore
    cache = FunctionalHashCache(SQLiteStore("fitness.db"), namespace="my-task-v1")
    for program in my_search():
        fitness = cache.get_or_evaluate(program, probe_inputs, evaluate)
    print(cache.stats)

Pieces: :func:`functional_hash` (canonical encoding + BLAKE2b), :func:`probe` (outputs, exceptions and
timeouts on the probes), :class:`FunctionalHashCache` (misses, partial and full hits, ``max_evals``,
``remove_probability``), :class:`MemoryStore` / :class:`SQLiteStore`, :func:`hash_rows` (many candidates'
output tensors at once).

Example::

    python -c "from reasonpipe.fhash import functional_hash as h; print(h([1, 2]) == h([1, 2]), h([1, 2]) != h([2, 1]))"
"""

from reasonpipe.fhash.batch import hash_rows
from reasonpipe.fhash.cache import CacheStats, FunctionalHashCache
from reasonpipe.fhash.encode import (DEFAULT_FLOAT_BITS, EncodeError, Encoder, Raised, TimedOut, digest,
                                     functional_hash, namespace_key)
from reasonpipe.fhash.probe import probe
from reasonpipe.fhash.stores import Entry, MemoryStore, SQLiteStore

__all__ = ["CacheStats", "DEFAULT_FLOAT_BITS", "EncodeError", "Encoder", "Entry", "FunctionalHashCache",
           "MemoryStore", "Raised", "SQLiteStore", "TimedOut", "digest", "functional_hash", "hash_rows",
           "namespace_key", "probe"]
