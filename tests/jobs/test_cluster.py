"""A real two-node Ray cluster inside the tests: two Ray nodes on this machine (``ray.cluster_utils.Cluster``: a
head and a worker node, each its own raylet and object store, 1 CPU each and a custom resource ``node_a`` /
``node_b``), jobs submitted to its dashboard with ``reasonpipe submit ... --address``, exactly as to a remote cluster
(the checkout is uploaded as the job's working_dir).

- trace generation on Ray actors and SFT on 2 Ray Train workers (the ``pipeline`` job), then GRPO on 2 Ray Train
  workers (the ``rl`` job): with one CPU per node, the 2 actors and each worker group must use both nodes, and the
  summaries say they did (trace generation's ``ray_nodes``, the worker groups' ``worker_nodes``: the Ray node id
  each recorded where it ran; Ray's State API lost the node of some dead actors, so it is not used here);
- a node killed during SFT (``max_failures: 0``, so the job fails) and replaced: ``--retries 1`` submits the job
  again, which resumes SFT from the run folder's last checkpoint and ends at the uninterrupted step count;
- ``--storage``: a folder every node can write is accepted (checked from both nodes); one they cannot write is
  refused, naming the nodes and the reason, before the job is submitted.

The nodes run the test's own Python (its folder first on PATH, as the cluster's ``python``), and each node has its
own temp folder: with one shared folder (the default for two nodes on one machine), the worker node's runtime-env
agent deleted the uploaded working_dir, which the head node's job was running in, once its own actors were done
(the job's next import failed with "No such file or directory"); on real machines every node has its own disk.
About 2-3 minutes: ``slow``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reasonpipe.localray import free_port

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")]
TASK = "{numbers: 3, max_number: 9, target_min: 10, target_max: 49}"


def short_dir() -> str:
    """A node's own temp folder, with a short path (Ray's sockets live there: AF_UNIX paths stop at 107 bytes)."""
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="rpn-", dir="/tmp")
    atexit.register(shutil.rmtree, folder, True)
    return folder


@pytest.fixture
def cluster(monkeypatch):
    """(Cluster, dashboard URL): two nodes with 1 CPU each; this test process is connected to it (State API)."""
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    port = free_port()
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "resources": {"node_a": 1}, "include_dashboard": True, "dashboard_host": "127.0.0.1",
        "dashboard_port": port})
    c.add_node(num_cpus=1, resources={"node_b": 1}, temp_dir=short_dir())
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    try:
        yield c, f"http://127.0.0.1:{port}"
    finally:
        ray.shutdown()
        c.shutdown()


def submit(url: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reasonpipe", "submit", *args[:1], "--address", url, *args[1:]],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


def pipeline_config(folder: Path, steps: int, save_every: int, max_failures: int = 2) -> Path:
    path = folder / "two-node.yaml"
    path.write_text(f"""
name: two-node
seed: 1
workers: 2
runs_dir: {folder / 'runs'}
trace_backend: ray
datasets:
  - {{name: cd3, task: countdown, searcher: dfs, n: 600, options: {TASK}}}
models:
  - name: m
    data: [cd3]
    settings: {{model: tiny, max_len: 512, batch_size: 4, max_steps: {steps}, lr: 3e-3, warmup_steps: 1,
               save_every: {save_every}, num_workers: 2, max_failures: {max_failures}, heldout: 0, log_every: 1}}
evaluate: []
""")
    return path


def test_trace_generation_sft_and_grpo_use_both_nodes(cluster, tmp_path):
    import ray

    _, url = cluster
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(nodes) == 2
    r = submit(url, "pipeline", "--config", str(pipeline_config(tmp_path, steps=4, save_every=2)), "--storage",
               str(tmp_path))
    assert "shared by all 2 nodes" in r.stderr, r.stderr[-2000:]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    run = tmp_path / "runs" / "two-node"
    data = json.loads((run / "data" / "cd3.stage.json").read_text())["summary"]
    assert set(data["ray_nodes"]) == nodes  # trace generation: chunks made on each node
    summary = json.loads((tmp_path / "runs" / "two-node" / "models" / "m" / "summary.json").read_text())
    assert summary["workers"] == 2 and summary["replica_checksums"][0] == summary["replica_checksums"][1]
    assert set(summary["worker_nodes"]) == nodes  # SFT's 2 workers: one on each node

    r = submit(url, "rl", "--config", str(REPO / "configs" / "grpo-cpu.yaml"), "--model", "tiny", "--out",
               str(tmp_path / "rl"), "--num_workers", "2", "--problems", "8", "--probe_problems", "1", "--probe_ks", "[1]",
               "--probe_every", "0", "--num_generations", "4", "--prompts_per_step", "2", "--max_steps", "2",
               "--max_completion_length", "16", "--device", "cpu", "--quiet", "true")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((tmp_path / "rl" / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["workers"] == 2
    assert set(summary["worker_nodes"]) == nodes  # GRPO's 2 workers: one on each node


def test_a_node_killed_during_sft_is_retried_from_the_run_folder(cluster, tmp_path):
    c, url = cluster
    config = pipeline_config(tmp_path, steps=30, save_every=4, max_failures=0)
    proc = subprocess.Popen([sys.executable, "-m", "reasonpipe", "submit", "pipeline", "--config", str(config),
                             "--address", url, "--retries", "1"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    checkpoints = tmp_path / "runs" / "two-node" / "models" / "m" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and not list(checkpoints.glob("checkpoint-4/*")):
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.2)
    assert list(checkpoints.glob("checkpoint-4/*")), "no checkpoint within 300 s"
    worker = next(n for n in c.worker_nodes)
    c.remove_node(worker)  # SIGKILLs that node's raylet and its workers mid-run
    c.add_node(num_cpus=1, resources={"node_b": 1}, temp_dir=short_dir())  # a replacement, as an autoscaler brings
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]
    assert "retry" in out, out[-4000:]
    summary = json.loads((checkpoints.parent / "summary.json").read_text())
    assert summary["steps"] == 30 and summary["resumed_from"] and "checkpoint-" in summary["resumed_from"]
    assert summary["replica_checksums"][0] == summary["replica_checksums"][1]


def test_a_storage_the_nodes_cannot_use_is_refused_before_the_job(cluster, tmp_path):
    from ray.job_submission import JobSubmissionClient

    _, url = cluster
    r = submit(url, "pipeline", "--config", str(pipeline_config(tmp_path, steps=4, save_every=2)), "--storage",
               "/proc/reasonpipe-no-such-storage")
    assert r.returncode == 2, r.stderr[-2000:]
    error = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(error) == 1 and "is not usable from every node" in error[0] and "cannot write there" in error[0]
    assert len(re.findall(r"node [0-9a-f]{12}:", error[0])) == 2  # both nodes named
    submitted = [j.submission_id for j in JobSubmissionClient(url).list_jobs() if j.submission_id]
    assert len(submitted) == 1 and submitted[0].endswith("-storage"), submitted  # only the check ran
    assert not (tmp_path / "runs").exists()
