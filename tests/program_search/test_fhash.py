"""Functional hashing: canonical encoding, probes, the cache's semantics, and the SQLite store under
concurrent writers and SIGKILL."""

from __future__ import annotations

import math
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from reasonpipe.fhash import (EncodeError, FunctionalHashCache, MemoryStore, Raised, SQLiteStore, TimedOut,
                              functional_hash, hash_rows, probe)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository

# values whose behaviours all differ (types, shapes, dtypes, order, failures)
DISTINCT = [
    None, True, False, 0, 1, -1, 2**70, 1.0, 1.5, float("inf"), -float("inf"), float("nan"), "1", "", b"1",
    [1], (1,), [1, 2], [2, 1], [[1], 2], {"a": 1}, {"a": 2}, {"b": 1}, {1}, frozenset({1, 2}),
    np.int64(1), np.float32(1.0), np.array([1, 2]), np.array([1, 2], dtype=np.int32), np.array([[1, 2]]),
    np.array([1.0, 2.0]), np.array([1.0, 2.0], dtype=np.float32), torch.tensor([1, 2]), torch.tensor([1.0, 2.0]),
    torch.zeros(2, 3), torch.zeros(3, 2), Raised("builtins.ValueError"), Raised("builtins.TypeError"), TimedOut(),
]

SCRIPT = textwrap.dedent("""
    import sys, numpy as np, torch
    sys.path.insert(0, {root!r})
    from reasonpipe.fhash import functional_hash, Raised, TimedOut
    values = [None, True, 7, -3.25, float("nan"), -0.0, "héllo", b"x", [1, (2, 3)], {{"b": [1.5], "a": None}},
              {{3, 1, 2}}, np.arange(6, dtype=np.int16).reshape(2, 3), np.array([0.1, -0.0, np.nan], dtype=np.float32),
              torch.tensor([[1.5, 2.0]], dtype=torch.bfloat16), Raised("builtins.KeyError"), TimedOut()]
    print(",".join(functional_hash(v, namespace="t").hex() for v in values))
""")


def test_equal_behaviour_equal_hash_across_processes():
    code = SCRIPT.format(root=ROOT)
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(runs) == 1  # same digests in two processes with different hash seeds
    here = {}
    exec(code.replace("print(", "here['out'] = ("), {"here": here})  # and in this process
    assert here["out"] == runs.pop().strip()


def test_equal_values_equal_hash_and_dict_order_ignored():
    assert functional_hash({"a": 1, "b": [2, 3]}) == functional_hash({"b": [2, 3], "a": 1})
    assert functional_hash({3, 1, 2}) == functional_hash({1, 2, 3})
    assert functional_hash(np.arange(4)) == functional_hash(np.arange(4).copy())
    assert functional_hash(np.arange(4)) == functional_hash(np.arange(4).astype(">i8"))  # byte order is not behaviour
    assert functional_hash(torch.arange(4)) == functional_hash(torch.arange(8)[::2] // 2)


def test_different_behaviour_different_hash():
    digests = [functional_hash(v) for v in DISTINCT]
    assert len(set(digests)) == len(DISTINCT)
    assert functional_hash([1, 2]) != functional_hash([1, 2], namespace="other")
    assert all(len(d) == 16 for d in digests)


def test_float_truncation_groups_within_tolerance_and_separates_beyond():
    h = functional_hash
    assert h(0.0) == h(-0.0) and h([0.0]) == h([-0.0])
    nan_payload = struct.unpack(">d", bytes.fromhex("7ff8000000000123"))[0]
    assert h(float("nan")) == h(-float("nan")) == h(nan_payload) == h(math.inf - math.inf)
    # 32 kept mantissa bits: relative resolution 2**-32 ~ 2.3e-10
    assert h(1.0) == h(1.0 + 1e-12) == h(1.0 + 1e-11)
    assert h(1.0) != h(1.0 + 1e-9) and h(1.0) != h(1.0 + 1e-6)
    assert h(1.0, float_bits=10) == h(1.0 + 1e-4, float_bits=10) and h(1.0, float_bits=52) != h(1.0 + 1e-12, float_bits=52)
    a = np.array([1.0, -0.0, np.nan, 3.0])
    b = np.array([1.0 + 1e-12, 0.0, -np.nan, 3.0 + 3e-12])
    assert h(a) == h(b) and h(a) != h(a + 1e-6)
    assert h(torch.tensor([1.0, -0.0])) == h(torch.tensor([1.0 + 1e-12, 0.0], dtype=torch.float32))
    assert h(math.inf) != h(1e308)


def test_hash_rows_equals_per_row_hash():
    for x in (torch.randn(6, 5), torch.randn(4, 3, 2).to(torch.bfloat16), torch.randint(0, 9, (5, 4)),
              np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32), np.arange(12).reshape(4, 3)):
        floating = x.dtype.is_floating_point if isinstance(x, torch.Tensor) else x.dtype.kind == "f"
        if floating:
            x[0] = -0.0
        rows = hash_rows(x, namespace="ns")
        assert rows == [functional_hash(x[i], namespace="ns") for i in range(len(x))]
    assert len(set(hash_rows(torch.eye(5)))) == 5


def test_probe_records_exceptions_and_timeouts_as_behaviours():
    def spin(x):
        while True:
            try:
                x += 1
            except Exception:  # a candidate cannot swallow the deadline
                x = 0

    outs = probe(lambda x: 10 // x, [5, 0, "a"])
    assert outs == [2, Raised("builtins.ZeroDivisionError"), Raised("builtins.TypeError")]
    started = time.perf_counter()
    assert probe(spin, [0, 1], timeout=0.05) == [TimedOut(), TimedOut()]
    assert time.perf_counter() - started < 2
    # failures hash by how they fail: same failure -> same hash; different -> different; never like a value
    h = functional_hash
    assert h(probe(lambda x: 1 / x, [0])) == h(probe(lambda x: x // 0, [3]))
    assert h(probe(lambda x: 1 / x, [0])) != h(probe(lambda x: [][x], [0])) != h(probe(spin, [0], timeout=0.02))
    assert h(probe(lambda x: 1 / x, [0])) != h([None])
    with pytest.raises(KeyboardInterrupt):
        probe(lambda x: (_ for _ in ()).throw(KeyboardInterrupt), [1])


def test_unencodable_outputs_are_never_merged():
    with pytest.raises(EncodeError):
        functional_hash([object()])
    cache = FunctionalHashCache()
    calls = []
    for _ in range(3):
        cache.get_or_evaluate(lambda x: object(), [1], lambda c: calls.append(1) or 0.5)
    assert len(calls) == 3 and cache.stats.uncacheable == 3 and len(cache.store) == 0


def test_cache_hits_partial_hits_and_noise_averaging():
    values = iter([1.0, 3.0, 5.0, 7.0])
    cache = FunctionalHashCache(max_evals=3)
    double, twice = (lambda x: 2 * x), (lambda x: x + x)
    got = [cache.get_or_evaluate(c, [1, 2], lambda _: next(values)) for c in (double, twice, double, twice)]
    assert got == [1.0, 2.0, 3.0, 3.0]  # miss, partial (mean 1,3), partial (mean 1,3,5), full hit
    s = cache.stats
    assert (s.misses, s.partial_hits, s.full_hits, s.evaluations, s.lookups) == (1, 2, 1, 3, 4)
    assert s.saved_fraction == 0.25 and s.seconds_saved >= 0


def test_remove_probability_and_namespaces_and_lru():
    cache = FunctionalHashCache(remove_probability=1.0)
    n = []
    for _ in range(4):
        cache.get_or_evaluate(lambda x: x, [1], lambda _: n.append(1) or 1.0)
    assert len(n) == 2 and cache.stats.removed == 2  # miss, hit (removed), miss, hit (removed)
    store = MemoryStore()
    a = FunctionalHashCache(store, namespace="task-a")
    b = FunctionalHashCache(store, namespace="task-b")
    assert a.get_or_evaluate(abs, [-1], lambda _: 0.1) == 0.1 and b.get_or_evaluate(abs, [-1], lambda _: 0.9) == 0.9
    assert len(store) == 2
    small = MemoryStore(capacity=2)
    for i in range(3):
        small.add(bytes([i]) * 16, float(i), 0.0)
    small.get(bytes([1]) * 16)
    small.add(bytes([3]) * 16, 3.0, 0.0)
    assert small.get(bytes([0]) * 16) is None and small.get(bytes([1]) * 16) is not None and small.evicted == 2


def test_cache_is_deterministic_in_its_own_removal_draws():
    def run():
        cache = FunctionalHashCache(remove_probability=0.5, seed=3)
        for i in range(200):
            cache.get_or_evaluate(lambda x, k=i % 7: x * k, [1, 2], lambda _: 1.0)
        s = cache.stats
        return s.misses, s.full_hits, s.removed

    first = run()
    assert first == run() and first[2] > 0


def test_sqlite_store_roundtrip_and_counters(tmp_path):
    path = str(tmp_path / "c.db")
    with FunctionalHashCache(SQLiteStore(path), max_evals=2) as cache:
        for c in (abs, abs, abs):
            cache.get_or_evaluate(c, [-2, 3], lambda _: 0.25)
    store = SQLiteStore(path)
    (key,) = [k for k in store.get_many([cache.hash(abs, [-2, 3])])]
    entry = store.get(key)
    assert entry.values == (0.25, 0.25) and entry.evals == 2 and store.evaluations() == 2
    counters = store.read_counters()
    assert counters["misses"] == 1 and counters["partial_hits"] == 1 and counters["full_hits"] == 1
    with FunctionalHashCache(SQLiteStore(path), max_evals=2) as again:  # a second run adds to the counters
        again.get_or_evaluate(abs, [-2, 3], lambda _: 1.0)
    assert SQLiteStore(path).read_counters()["full_hits"] == 2 and store.check() == "ok"
    shipped = pickle.loads(pickle.dumps(store))  # as a Ray worker gets it: by path, its own connection
    assert shipped.get(key).values == (0.25, 0.25)
    (tmp_path / "bad.db").write_bytes(b"not a database at all" * 100)
    from reasonpipe.errors import InputError

    with pytest.raises(InputError, match="not a reasonpipe cache"):
        SQLiteStore(str(tmp_path / "bad.db"))


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from reasonpipe.fhash import SQLiteStore
    store = SQLiteStore({path!r})
    who, n = int(sys.argv[1]), int(sys.argv[2])
    for i in range(n):
        key = (i).to_bytes(8, "big") + (who if i % 2 else 0).to_bytes(8, "big")  # odd keys private, even shared
        if i % 3:
            store.add(key, float(who), 0.001)
        else:
            store.add_many([(key, float(who), 0.001)])
""")


def test_two_processes_writing_one_file_lose_nothing(tmp_path):
    path = str(tmp_path / "shared.db")
    SQLiteStore(path)
    code = WRITER.format(root=ROOT, path=path)
    n = 600
    procs = [subprocess.Popen([sys.executable, "-c", code, str(who), str(n)]) for who in (1, 2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    store = SQLiteStore(path)
    shared = n // 2  # even i: the same key from both writers
    assert len(store) == shared + 2 * (n - shared)
    assert store.evaluations() == 2 * n
    for i in range(0, n, 2):
        entry = store.get(i.to_bytes(8, "big") + (0).to_bytes(8, "big"))
        assert entry.evals == 2 and sorted(entry.values) == [1.0, 2.0]


KILLED = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from reasonpipe.fhash import SQLiteStore
    store = SQLiteStore({path!r})
    batch = 2000
    for b in range(10**6):
        store.add_many([((b * batch + i).to_bytes(16, "big"), 0.5, 0.0) for i in range(batch)])
        print(b + 1, flush=True)
""")


def test_sigkill_mid_batch_leaves_every_committed_entry(tmp_path):
    path = str(tmp_path / "killed.db")
    proc = subprocess.Popen([sys.executable, "-c", KILLED.format(root=ROOT, path=path)], stdout=subprocess.PIPE,
                            text=True)
    committed = 0
    while committed < 5:
        committed = int(proc.stdout.readline())
    time.sleep(0.013)  # somewhere inside a later batch
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = SQLiteStore(path)
    assert store.check() == "ok"
    n = len(store)
    assert n >= committed * 2000 and n % 2000 == 0  # every committed batch, whole; no partial batch
    assert store.get_many([(i).to_bytes(16, "big") for i in range(0, committed * 2000, 97)]).__len__() == \
        len(range(0, committed * 2000, 97))
