"""Functional-hash cache throughput and its effect on evolutionary search, one JSON row per measurement.

Rows carry host, CPU, device, Python and package versions. Timings are best of ``--repeat`` runs on one
core. The search rows run the same seeds with and without the cache and report evaluations, the fraction
saved and whether the same program was found.

Example::

    OMP_NUM_THREADS=1 python benchmarks/bench_fhash.py --quick
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time

import torch

from bench_traces import emit
from reasonpipe.fhash import Encoder, FunctionalHashCache, MemoryStore, SQLiteStore, digest, functional_hash, hash_rows
from reasonpipe.fhash.encode import namespace_key
from reasonpipe.programsearch import SearchRequest, run_search, same_result


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_hashing(n: int, repeat: int) -> None:
    rng = random.Random(0)
    enc, key = Encoder(), namespace_key("bench")
    ints = [rng.randint(-10**6, 10**6) for _ in range(n)]
    sec = best(lambda: [digest(enc.encode(v), key) for v in ints], repeat)
    emit("fhash_hash_single_int", n / sec, "outputs/s", n=n, target=500_000, what="encode + 16-byte BLAKE2b, one int")
    floats = [rng.random() for _ in range(n)]
    sec = best(lambda: [digest(enc.encode(v), key) for v in floats], repeat)
    emit("fhash_hash_single_float", n / sec, "outputs/s", n=n, target=500_000)
    # a List Functions candidate's behaviour: 8 probe outputs, each a short list of small ints
    behaviours = [[tuple(rng.randint(0, 9) for _ in range(rng.randint(1, 8))) for _ in range(8)] for _ in range(n // 8)]
    sec = best(lambda: [digest(enc.encode(b), key) for b in behaviours], repeat)
    emit("fhash_hash_behaviour_8_lists", 8 * len(behaviours) / sec, "outputs/s", candidates=len(behaviours),
         candidates_per_s=round(len(behaviours) / sec, 1), target=500_000)

    x = torch.randn(20_000, 64)
    rows = best(lambda: hash_rows(x), repeat)
    loop = best(lambda: [functional_hash(x[i]) for i in range(2_000)], 1) * 10
    emit("fhash_hash_rows_torch", 20_000 / rows, "rows/s", shape=list(x.shape), dtype="float32",
         baseline="functional_hash per row", baseline_value=round(20_000 / loop, 1), ratio=round(loop / rows, 1))


def bench_stores(n: int, repeat: int) -> None:
    keys = [os.urandom(16) for _ in range(n)]
    mem = MemoryStore(capacity=None)
    for k in keys:
        mem.add(k, 0.5, 0.001)
    sec = best(lambda: [mem.get(k) for k in keys], repeat)
    emit("fhash_memory_lookup", n / sec, "lookups/s", n=n, target=1_000_000, what="MemoryStore.get, hits")
    cache = FunctionalHashCache(mem)
    sec = best(lambda: [cache.lookup_or_evaluate(k, None, None) for k in keys], repeat)
    emit("fhash_cache_full_hit", n / sec, "lookups/s", n=n, what="FunctionalHashCache.lookup_or_evaluate, full hits")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.db")
        store = SQLiteStore(path)
        batch = 1000

        def insert() -> None:
            store.clear()
            for i in range(0, n, batch):
                store.add_many([(k, 0.5, 0.001) for k in keys[i:i + batch]])

        sec = best(insert, repeat)
        emit("fhash_sqlite_insert_batched", n / sec, "inserts/s", n=n, batch=batch, target=20_000)
        sec = best(lambda: [store.get(k) for k in keys], repeat)
        emit("fhash_sqlite_lookup", n / sec, "lookups/s", n=n, target=50_000, what="SQLiteStore.get, hits, WAL")
        sec = best(lambda: [store.get_many(keys[i:i + 500]) for i in range(0, n, 500)], repeat)
        emit("fhash_sqlite_lookup_batched", n / sec, "lookups/s", n=n, batch=500)
        few = keys[: n // 10]
        store.clear()
        sec = best(lambda: [store.add(k, 0.5, 0.001) for k in few], 1)
        emit("fhash_sqlite_insert_single", len(few) / sec, "inserts/s", n=len(few), what="one transaction each")


def bench_search(problems: int, budget: int, heldout: int) -> None:
    saved, same, solved, t_plain, t_cache, e_plain, e_cache = [], 0, 0, 0.0, 0.0, 0, 0
    for ps in range(problems):
        request = SearchRequest(task="list_functions", budget=budget, seed=ps, problem_seed=ps, cache="memory",
                                compare=True, heldout=heldout)
        _, (plain, cached) = run_search(request)
        same += same_result([plain, cached])
        solved += plain.solved
        saved.append(1 - cached.evaluations / plain.evaluations)
        t_plain += plain.seconds
        t_cache += cached.seconds
        e_plain += plain.evaluations
        e_cache += cached.evaluations
    emit("evolve_list_functions_saved", 1 - e_cache / e_plain, "fraction of evaluations saved", problems=problems,
         budget=budget, heldout_inputs_per_eval=heldout, evaluations_without=e_plain, evaluations_with=e_cache,
         same_result=f"{same}/{problems}", solved=f"{solved}/{problems}", saved_min=round(min(saved), 3),
         saved_median=round(statistics.median(saved), 3), seconds_without=round(t_plain, 2),
         seconds_with=round(t_cache, 2), speedup=round(t_plain / t_cache, 2), aim=0.8,
         anchor="AutoML-Zero reproduction: 2667 evaluations without FEC, 1141 with (57% saved)")
    request = SearchRequest(task="countdown", budget=budget, seed=0, problem_seed=0, cache="memory", compare=True)
    _, (plain, cached) = run_search(request)
    emit("evolve_countdown_saved", 1 - cached.evaluations / plain.evaluations, "fraction of evaluations saved",
         budget=budget, same_result=same_result([plain, cached]), seconds_without=round(plain.seconds, 3),
         seconds_with=round(cached.seconds, 3),
         note="evaluating an expression costs less than probing it: the cache saves evaluations, not time, here")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, problems = (20_000, 3) if args.quick else (200_000, 20)
    bench_hashing(n, args.repeat)
    bench_stores(n // 2, args.repeat)
    bench_search(problems, 3000, 200)


if __name__ == "__main__":
    main()
