"""Can every node of the cluster see the run folders' storage? Checked before a multi-node job does any work.

Ray Train writes checkpoints into the run folder (``out/checkpoints``) from every worker and a resumed job reads
them from whichever node it lands on, so on more than one node the run folders must live on storage every node
shares: a network file system mounted at the same path everywhere, or a URI Ray Train and pyarrow support
(``s3://``, ``gs://``, ``hdfs://``...). :func:`check_storage` runs one task on every alive node (pinned there):
each writes a marker into the storage and then looks for every other node's marker, so a node that cannot write
there, or that sees a different folder under the same path (a local disk instead of the shared mount), is named
with the reason. ``reasonpipe submit JOB --storage PATH`` runs this module as a small Ray job first (so the check
runs inside the cluster, where the nodes are) and submits nothing when it fails.

Example::

    reasonpipe submit pipeline --config configs/demo-cpu.yaml --address http://HEAD:8265 --storage /mnt/shared/runs
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from dataclasses import dataclass, field

MARKER = ".reasonpipe-storage-check"


@dataclass
class StorageReport:
    """What every node found: ``problems`` (one line each, naming the node) is empty when the storage is shared."""

    storage: str
    nodes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # markers a node could not remove (the check still holds)


def _filesystem(storage: str):
    """(pyarrow filesystem, path in it): a URI through pyarrow, else the local file system."""
    import pyarrow.fs as pafs

    if "://" in storage:
        return pafs.FileSystem.from_uri(storage)
    return pafs.LocalFileSystem(), os.path.abspath(storage)


def _write_marker(storage: str, token: str, node: str) -> str | None:
    """On one node: write this node's marker; the error as a line, or None."""
    try:
        fs, path = _filesystem(storage)
        fs.create_dir(path, recursive=True)
        with fs.open_output_stream(f"{path}/{MARKER}-{token}-{node}") as f:
            f.write(node.encode())
    except Exception as e:  # noqa: BLE001 (any storage error is the answer)
        return f"cannot write there: {type(e).__name__}: {' '.join(str(e).split())[:200]}"
    return None


def _read_markers(storage: str, token: str, nodes: list[str]) -> list[str]:
    """On one node: the nodes whose markers it cannot see."""
    fs, path = _filesystem(storage)
    missing = []
    for node in nodes:
        try:
            info = fs.get_file_info(f"{path}/{MARKER}-{token}-{node}")
            if info.type.name == "NotFound":
                missing.append(node)
        except Exception:  # noqa: BLE001
            missing.append(node)
    return missing


def check_storage(storage: str, timeout_s: float = 120.0) -> StorageReport:
    """Every alive node of the Ray this process is connected to (else ``RAY_ADDRESS``'s) writes and reads markers
    in ``storage``; the report names each node that cannot (see the module docstring)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if not ray.is_initialized():
        ray.init(log_to_driver=False)
    report = StorageReport(storage)
    nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    report.nodes = nodes
    token = uuid.uuid4().hex[:12]

    def on(node: str, fn, *args):
        task = ray.remote(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))(fn)
        return task.remote(*args)

    written = ray.get([on(n, _write_marker, storage, token, n) for n in nodes], timeout=timeout_s)
    report.problems += [f"node {n[:12]}: {err}" for n, err in zip(nodes, written) if err]
    if not report.problems:
        seen = ray.get([on(n, _read_markers, storage, token, nodes) for n in nodes], timeout=timeout_s)
        for n, missing in zip(nodes, seen):
            if missing:
                report.problems.append(f"node {n[:12]}: does not see what node(s) {', '.join(m[:12] for m in missing)} "
                                       f"wrote there: not the same storage on every node")
    # each node removes its own marker (on storage that is not shared, only it can); a failure is reported, not fatal
    removed = ray.get([on(n, _remove_marker, storage, token, n) for n in nodes], timeout=timeout_s)
    report.leftovers = [f"node {n[:12]}: {err}" for n, err in zip(nodes, removed) if err]
    return report


def _remove_marker(storage: str, token: str, node: str) -> str | None:
    """On one node: delete the marker it wrote (none when it could not write one); the error as a line, or None."""
    try:
        fs, path = _filesystem(storage)
        marker = f"{path}/{MARKER}-{token}-{node}"
        if fs.get_file_info(marker).type.name != "NotFound":
            fs.delete_file(marker)
    except Exception as e:  # noqa: BLE001 (reported by main as a leftover, not a failed check)
        return f"could not remove its marker: {type(e).__name__}: {' '.join(str(e).split())[:200]}"
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m reasonpipe.storage PATH``: 0 when every node shares it, else 2 with one line per problem."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m reasonpipe.storage PATH_OR_URI", file=sys.stderr)
        return 2
    started = time.time()
    report = check_storage(argv[0])
    for line in report.problems:
        print(f"storage {report.storage}: {line}", flush=True)
    for line in report.leftovers:
        print(f"warning: storage {report.storage}: {line}", file=sys.stderr, flush=True)
    if report.problems:
        return 2
    print(f"storage {report.storage}: shared by all {len(report.nodes)} nodes ({time.time() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
