"""Trace generation sharded over Ray actors writes the same bytes as one local process."""

from __future__ import annotations

import hashlib

import pytest

from reasonpipe.tracegen import GenRequest, generate

ray = pytest.importorskip("ray")


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_ray_backend_same_bytes_whatever_the_workers(tmp_path):
    base = dict(task="countdown", searcher="kbacktrack", n=150, seed=7, chunk=16,
                task_options={"numbers": 3, "max_number": 9, "target_min": 10, "target_max": 49})
    generate(GenRequest(out=str(tmp_path / "one.jsonl"), **base))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:  # joins the running Ray, as inside a submitted job
        for workers in (1, 2):
            generate(GenRequest(out=str(tmp_path / f"ray{workers}.jsonl"), workers=workers, backend="ray", **base))
    finally:
        ray.shutdown()
    assert _md5(tmp_path / "one.jsonl") == _md5(tmp_path / "ray1.jsonl") == _md5(tmp_path / "ray2.jsonl")
    assert not ray.is_initialized()
