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


def _kill_one_maker(killed: list) -> None:
    """SIGKILL one of this Ray's trace-generation actors (its process is titled ``ray::_RayMaker``)."""
    import os
    import signal

    import psutil

    if killed:
        return
    for proc in psutil.process_iter(["cmdline"]):
        if any("_RayMaker" in part for part in proc.info["cmdline"] or ()):
            os.kill(proc.pid, signal.SIGKILL)
            killed.append(proc.pid)
            return


BASE = dict(task="countdown", searcher="dfs", n=600, seed=3, chunk=8,
            task_options={"numbers": 3, "max_number": 9, "target_min": 10, "target_max": 49})


def test_a_killed_ray_worker_is_restarted_and_no_chunk_is_lost_or_doubled(tmp_path):
    generate(GenRequest(out=str(tmp_path / "one.jsonl"), **BASE))
    killed: list = []
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        generate(GenRequest(out=str(tmp_path / "ray.jsonl"), workers=2, backend="ray", **BASE),
                 progress=lambda k: _kill_one_maker(killed))
    finally:
        ray.shutdown()
    assert killed  # a worker died mid-run
    assert _md5(tmp_path / "one.jsonl") == _md5(tmp_path / "ray.jsonl")


def test_a_worker_lost_for_good_leaves_a_resumable_file(tmp_path):
    generate(GenRequest(out=str(tmp_path / "one.jsonl"), **BASE))
    out = tmp_path / "ray.jsonl"
    killed: list = []
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with pytest.raises(ray.exceptions.RayActorError):
            generate(GenRequest(out=str(out), workers=2, backend="ray", max_restarts=0, **BASE),
                     progress=lambda k: _kill_one_maker(killed))
        assert not out.exists() and (tmp_path / "ray.jsonl.partial.json").exists()
        generate(GenRequest(out=str(out), workers=2, backend="ray", **BASE), resume=True)
    finally:
        ray.shutdown()
    assert _md5(tmp_path / "one.jsonl") == _md5(out)
