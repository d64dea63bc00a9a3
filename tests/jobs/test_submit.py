"""``reasonpipe submit`` and ``reasonpipe jobs`` (jobs/submit.py): Ray's Jobs API, embedded or at an address.

The embedded test runs first: it starts and stops Ray inside this process, which must not already have one;
the address tests then share one local cluster (``cluster``), started here with its dashboard. Jobs run as
subprocesses of Ray's job supervisor, so every path in their configs is absolute.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import ray  # imported here, not in a test: Ray's log handler keeps the sys.stderr of its first import
import yaml

from reasonpipe.jobs import submit as S

ROOT = Path(S.__file__).resolve().parent.parent


# -- helpers --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> Path:
    from reasonpipe.tracegen import GenRequest, generate

    out = tmp_path_factory.mktemp("traces") / "cd.jsonl"
    generate(GenRequest(task="countdown", searcher="dfs", out=str(out), n=50, seed=1))
    return out


def sft_config(path: Path, data: Path, out: Path, **extra) -> Path:
    config = {"data": [str(data)], "model": "tiny", "max_steps": 3, "batch_size": 4, "save_every": 2,
              "out": str(out), "quiet": True, **extra}
    path.write_text(yaml.safe_dump(config))
    return path


def tagged_processes(tag: str) -> list[str]:
    """Live processes (not this one) whose environment carries REASONPIPE_TEST_TAG=tag: ours, and only ours."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        if p.pid == os.getpid():
            continue
        try:
            if p.environ().get("REASONPIPE_TEST_TAG") == tag and p.status() != psutil.STATUS_ZOMBIE:
                found.append(f"{p.pid}: {' '.join(p.info['cmdline'] or [])[:120]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def wait_until(predicate, timeout_s: float, poll_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(poll_s)


def job_id(err: str) -> str:
    match = re.search(r"(reasonpipe-\S+) submitted", err)
    assert match, err
    return match.group(1)


# -- embedded Ray (first: it needs this process without a Ray) ------------------------------------------

def test_submit_without_address_runs_on_an_embedded_ray_and_leaves_nothing_behind(cli, traces, tmp_path, monkeypatch):
    if ray.is_initialized():  # left by another test module in this process; submit refuses to start a second
        ray.shutdown()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    tag = uuid.uuid4().hex
    monkeypatch.setenv("REASONPIPE_TEST_TAG", tag)  # inherited by every process Ray starts from here
    config = sft_config(tmp_path / "tiny-sft.yaml", traces, tmp_path / "sft")
    follow, while_running = S.follow, []  # Ray's processes as the job ends: proof the check below sees them

    def spy(*args, **kwargs):
        code = follow(*args, **kwargs)
        while_running.extend(tagged_processes(tag))
        return code

    monkeypatch.setattr(S, "follow", spy)

    r = cli("submit", "sft", "--config", config)

    assert r.code == 0, r.err + r.out[-2000:]
    assert any("raylet" in p for p in while_running) and any("gcs_server" in p for p in while_running)
    assert "embedded Ray up" in r.err and "SUCCEEDED" in r.err
    assert "SFT of tiny on" in r.out  # the job's own table, streamed from its logs
    assert (tmp_path / "sft" / "manifest.json").is_file() and (tmp_path / "sft" / "final").is_dir()
    assert not ray.is_initialized()
    wait_until(lambda: not tagged_processes(tag), timeout_s=15)  # processes take a moment to exit
    left = tagged_processes(tag)
    assert not left, f"Ray processes left behind: {left}"


# -- a cluster at an address ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster():
    """A local Ray with its Jobs API; its `python` is this interpreter (the cluster's environment)."""
    import ray

    path = os.environ["PATH"]
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{path}"
    try:
        context = S.init_local_ray(num_cpus=2, object_store_memory=100 * 2**20)  # its own dashboard agent port
    finally:
        os.environ["PATH"] = path
    try:
        yield f"http://{context.dashboard_url}"
    finally:
        ray.shutdown()


def test_submit_to_an_address_then_list_status_and_logs(cli, cluster, traces, tmp_path):
    config = sft_config(tmp_path / "tiny-sft.yaml", traces, tmp_path / "sft")

    r = cli("submit", "sft", "--config", config, "--address", cluster, "--name", "addr test", "--max_steps", "2")

    assert r.code == 0, r.err + r.out[-2000:]
    assert "SFT of tiny on" in r.out
    summary = (tmp_path / "sft" / "summary.json").read_text()
    assert '"steps": 2' in summary  # the override reached the job
    sid = job_id(r.err)
    assert sid.startswith("reasonpipe-sft-addr-test-")
    listed = cli("jobs", "list", "--address", cluster)
    assert listed.code == 0 and sid[:30] in listed.out and "SUCCEEDED" in listed.out
    status = cli("jobs", "status", sid, "--address", cluster)
    assert status.code == 0 and "SUCCEEDED" in status.out
    logs = cli("jobs", "logs", sid, "--address", cluster)
    assert logs.code == 0 and "SFT of tiny on" in logs.out


def test_jobs_stop_stops_a_running_job(cli, cluster, traces, tmp_path):
    from ray.job_submission import JobSubmissionClient

    config = sft_config(tmp_path / "long-sft.yaml", traces, tmp_path / "long", max_steps=100_000)
    r = cli("submit", "sft", "--config", config, "--address", cluster, "--no-wait")
    assert r.code == 0, r.err
    sid = r.out.strip()
    client = JobSubmissionClient(cluster)
    assert wait_until(lambda: client.get_job_status(sid).value == "RUNNING", timeout_s=60)

    stopped = cli("jobs", "stop", sid, "--address", cluster)

    assert stopped.code == 0 and "STOPPED" in stopped.out, stopped.out + stopped.err
    assert "STOPPED" in cli("jobs", "status", sid, "--address", cluster).out
    running = lambda: [p for p in psutil.process_iter(["cmdline"]) if str(config) in " ".join(p.info["cmdline"] or [])]
    assert wait_until(lambda: not running(), timeout_s=15), "the job's process outlived its stop"


def test_a_failing_job_exits_1_with_its_log_tail(cli, cluster, tmp_path):
    config = sft_config(tmp_path / "bad.yaml", tmp_path / "no-such-traces.jsonl", tmp_path / "sft")

    r = cli("submit", "sft", "--config", config, "--address", cluster)

    assert r.code == 1, r.err
    assert "failed: Job entrypoint command failed with exit code 2" in r.err
    tail = r.err.split("last log lines:", 1)[1]
    assert "no-such-traces.jsonl" in tail and "sft: error" in tail  # the job's own one-line error


def test_the_pipeline_job_runs_through_ray_with_its_stages_spread_over_ray_workers(cli, cluster, tmp_path):
    opts = "{numbers: 3, max_number: 9, target_min: 10, target_max: 49}"
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(f"""name: toy
seed: 3
workers: 2
quiet: true
runs_dir: {tmp_path / 'runs'}
datasets:
  - {{name: dfs, task: countdown, searcher: dfs, n: 200, options: {opts}}}
  - {{name: direct, task: countdown, searcher: direct, n: 200, options: {opts}}}
models:
  - {{name: backtrack, data: [dfs], settings: {{model: tiny, max_len: 512, batch_size: 8, max_steps: 20, save_every: 10}}}}
  - {{name: direct, data: [direct], settings: {{model: tiny, max_len: 512, batch_size: 8, max_steps: 20, save_every: 10}}}}
evaluate:
  - backtrack: backtrack
    direct: direct
    settings: {{task: countdown, task_options: {opts}, problems: 4, lengths: [32, 64], ns: [1, 2], direct_max_new_tokens: 32, workers: 2, batch_size: 2}}
""")

    r = cli("submit", "pipeline", "--config", recipe, "--address", cluster)

    assert r.code == 0, r.err + r.out[-3000:]
    run = tmp_path / "runs" / "toy"
    report = (run / "report.md").read_text()
    assert "## Trace datasets" in report and "## Models (SFT)" in report and "| sequential | L=32 |" in report
    assert "SUCCEEDED" in r.err
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["backend"] for row in rows] == ["ray", "ray"]  # trace generation joined the job's Ray
    assert json.loads((run / "eval" / "countdown" / "manifest.json").read_text())["config"]["workers"] == 2
    from reasonpipe.tracegen import GenRequest, generate

    generate(GenRequest(task="countdown", searcher="dfs", out=str(tmp_path / "here.jsonl"), n=200, seed=3,
                        task_options={"numbers": 3, "max_number": 9, "target_min": 10, "target_max": 49}))
    assert (run / "data" / "dfs.jsonl").read_bytes() == (tmp_path / "here.jsonl").read_bytes()  # Ray actors, same bytes


def kill_when(path: Path, needle: str, killed: list, timeout_s: float = 120.0) -> None:
    """SIGKILL every process whose command line has ``needle`` once ``path`` exists (in a thread)."""
    deadline = time.monotonic() + timeout_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    for p in psutil.process_iter(["cmdline"]):
        if needle in " ".join(p.info["cmdline"] or []) and p.pid != os.getpid():
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(signal.SIGKILL)
                killed.append(p.pid)


def test_a_job_killed_mid_run_is_resubmitted_and_resumes_to_the_uninterrupted_model(cli, cluster, traces, tmp_path):
    from transformers import AutoModelForCausalLM

    from reasonpipe.config import load_config
    from reasonpipe.sft import SFTConfig, train

    settings = {"max_steps": 12, "save_every": 4, "keep_checkpoints": 5}
    reference = load_config(SFTConfig, sft_config(tmp_path / "ref.yaml", traces, tmp_path / "ref", **settings), [])
    train(reference)
    config = sft_config(tmp_path / "killed.yaml", traces, tmp_path / "killed", **settings)
    killed: list = []
    killer = threading.Thread(target=kill_when, args=(tmp_path / "killed" / "checkpoints" / "checkpoint-4" /
                                                      "trainer_state.json", f"reasonpipe.jobs.sft --config {config}", killed))
    killer.start()

    r = cli("submit", "sft", "--config", config, "--address", cluster, "--retries", "1")

    killer.join()
    assert killed, "the job's process was not found"
    assert r.code == 0, r.err + r.out[-2000:]
    assert "failed; submitting it again (retry 1 of 1)" in r.err and "-retry1 SUCCEEDED" in r.err
    summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert summary["steps"] == 12 and summary["resumed_from"].endswith(("checkpoint-4", "checkpoint-8"))
    ours = AutoModelForCausalLM.from_pretrained(tmp_path / "killed" / "final").state_dict()
    ref = AutoModelForCausalLM.from_pretrained(tmp_path / "ref" / "final").state_dict()
    assert max((ours[k] - ref[k]).abs().max().item() for k in ref) < 1e-5
    rows = [json.loads(line) for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    steps = [row["step"] for row in rows if "loss" in row]
    assert steps == sorted(set(steps))  # rows past the checkpoint were logged once


def test_retries_are_refused_without_following_or_below_zero(cli, tmp_path, traces):
    config = sft_config(tmp_path / "c.yaml", traces, tmp_path / "sft")
    r = cli("submit", "sft", "--config", config, "--address", "http://127.0.0.1:9", "--retries", "2", "--no-wait")
    assert r.code == 2 and "--retries needs" in r.err
    r = cli("submit", "sft", "--config", config, "--retries", "-1")
    assert r.code == 2 and "--retries must be 0 or more" in r.err


# -- bad input ------------------------------------------------------------------------------------------

def test_bad_job_name_missing_config_and_unreachable_address_exit_2(cli, tmp_path, monkeypatch, traces):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    config = sft_config(tmp_path / "c.yaml", traces, tmp_path / "sft")
    r = cli("submit", "nope", "--config", config)
    assert r.code == 2 and "unknown job 'nope'" in r.err and "sft" in r.err and "pipeline" in r.err
    r = cli("submit", "sft", "--config", tmp_path / "missing.yaml")
    assert r.code == 2 and "missing.yaml: no such config file" in r.err
    r = cli("submit", "sft", "--config", config, "--address", "http://127.0.0.1:9")  # discard port: closed
    assert r.code == 2 and "http://127.0.0.1:9" in r.err
    r = cli("jobs", "status", "some-id", "--address", "http://127.0.0.1:9")
    assert r.code == 2 and "http://127.0.0.1:9" in r.err
    r = cli("jobs", "list")
    assert r.code == 2 and "--address" in r.err and "embedded" in r.err
    r = cli("submit", "sft", "--config", config, "--no-wait")
    assert r.code == 2 and "--no-wait needs --address" in r.err


# -- the pure parts -------------------------------------------------------------------------------------

def test_job_names_are_the_modules_of_jobs_with_a_main(tmp_path):
    (tmp_path / "__init__.py").write_text("def main(c): return 0\n")
    (tmp_path / "train.py").write_text("def main(config):\n    return 0\n")
    (tmp_path / "helper.py").write_text("def cli(): pass\n")
    (tmp_path / "broken.py").write_text("def main(:\n")
    (tmp_path / "submit.py").write_text("def main(c): return 0\n")
    assert S.available_jobs(tmp_path) == ["train"]
    assert {"sft", "pipeline", "evaluation", "rl", "ksweep"} <= set(S.available_jobs())
    assert S.check_job("sft") == "sft"
    with pytest.raises(S.SubmitError, match="valid jobs: .*sft"):
        S.check_job("submit")


def test_runtime_env_excludes_heavy_paths_and_never_overrides_the_users_env():
    env = S.runtime_env(ROOT, {"OMP_NUM_THREADS": "4"}, large_files=["data/big.bin"])
    assert env["working_dir"] == str(ROOT)
    for pattern in (".git", "runs/", "**/checkpoints/", ".venv/", "venv/", "**/__pycache__/", "*.jsonl.partial",
                    ".whl/", "/data/big.bin"):
        assert pattern in env["excludes"]
    assert env["env_vars"] == {"TOKENIZERS_PARALLELISM": "false"}  # OMP_NUM_THREADS is the user's
    assert S.runtime_env(None, {})["env_vars"] == {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    assert S.runtime_env(None, {"OMP_NUM_THREADS": "2", "TOKENIZERS_PARALLELISM": "true"}) == {}  # no upload


def test_large_files_not_otherwise_excluded_are_found(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "runs" / "huge.jsonl").write_bytes(b"x" * 2000)
    (tmp_path / "data" / "huge.jsonl").write_bytes(b"x" * 2000)
    (tmp_path / "small.txt").write_bytes(b"x")
    assert S.find_large_files(tmp_path, limit=1000) == ["data/huge.jsonl"]


def test_local_ray_gets_its_own_dashboard_agent_port_for_the_call_only():
    from ray._private import parameter

    from reasonpipe.localray import _dashboard_agent_port

    with _dashboard_agent_port(45678):
        assert parameter.RayParams().dashboard_agent_listen_port == 45678  # Ray's default would be 52365
        assert parameter.RayParams(dashboard_agent_listen_port=40000).dashboard_agent_listen_port == 40000
    assert parameter.RayParams().dashboard_agent_listen_port == 52365


def test_submission_id_is_stable_for_the_same_run_and_differs_otherwise():
    now = 1_800_000_000.0
    a = S.submission_id("sft", b"model: tiny\n", ["--max_steps", "3"], "sft-demo", now)
    assert a == S.submission_id("sft", b"model: tiny\n", ["--max_steps", "3"], "sft-demo", now)
    assert re.fullmatch(r"reasonpipe-sft-sft-demo-[0-9a-f]{8}-\d{8}-\d{6}", a)
    prefix = a.rsplit("-", 2)[0]
    assert S.submission_id("sft", b"model: tiny\n", ["--max_steps", "3"], "sft-demo", now + 60).startswith(prefix)
    for other in (S.submission_id("rl", b"model: tiny\n", ["--max_steps", "3"], "sft-demo", now),
                  S.submission_id("sft", b"model: 3M\n", ["--max_steps", "3"], "sft-demo", now),
                  S.submission_id("sft", b"model: tiny\n", ["--max_steps", "4"], "sft-demo", now)):
        assert other != a and other.rsplit("-", 2)[0] != prefix
    assert S.submission_id("sft", b"", [], "my run/№1", now).startswith("reasonpipe-sft-my-run-1-")


def test_plan_uploads_with_a_relative_config_and_runs_locally_with_an_absolute_one(tmp_path):
    inside = ROOT / "configs" / "sft-demo.yaml"
    common = dict(name=None, num_gpus=None, environ={}, now=0.0)
    remote = S.plan("sft", str(inside), ["--lr", "1e-3"], upload=True, python="python", **common)
    assert remote.entrypoint == "python -m reasonpipe.jobs.sft --config configs/sft-demo.yaml --lr 1e-3"
    assert remote.runtime_env["working_dir"] == str(ROOT) and remote.metadata["config"] == "configs/sft-demo.yaml"
    local = S.plan("sft", str(inside), [], upload=False, python="/opt/py 3/python", **common)
    assert local.entrypoint == f"'/opt/py 3/python' -m reasonpipe.jobs.sft --config {inside}"
    assert "working_dir" not in local.runtime_env
    outside = tmp_path / "x.yaml"
    outside.write_text("model: tiny\n")
    with pytest.raises(S.SubmitError, match="is not inside the uploaded working dir"):
        S.plan("sft", str(outside), [], upload=True, python="python", **common)
    on_this_machine = S.plan("sft", str(outside), [], upload=True, python="python", local_address=True, **common)
    assert on_this_machine.metadata["config"] == str(outside)  # the cluster reads the same filesystem
    assert S.same_machine("http://127.0.0.1:8265") and S.same_machine("localhost:6379")
    assert not S.same_machine("http://192.0.2.7:8265")
    assert S.plan("sft", str(outside), [], upload=False, python="python", **common).metadata["config"] == str(outside)
    assert S.split_overrides(["--", "--name", "x"]) == ("--name", "x")
    assert S.resolve_address(None, {"RAY_ADDRESS": "http://h:8265"}) == "http://h:8265"
    assert S.resolve_address("local", {"RAY_ADDRESS": "http://h:8265"}) is None


# -- Ctrl-C while following (a fake client: no Ray) -----------------------------------------------------

class FakeClient:
    """A running job whose log stream stays open; Ctrl-C (a real SIGINT) arrives while it is followed."""

    def __init__(self) -> None:
        self.status = "RUNNING"
        self.stopped = False
        self.polls = 0

    async def tail_job_logs(self, sid):
        yield "step 1\n"
        await asyncio.sleep(3600)
        yield "never"

    def get_job_status(self, sid):
        self.polls += 1
        if self.polls == 2:
            os.kill(os.getpid(), signal.SIGINT)
        if self.polls > 2000:  # the Ctrl-C was lost: end the wait so that the test fails instead of hanging
            return SimpleNamespace(value="SUCCEEDED")
        return SimpleNamespace(value=self.status)

    def stop_job(self, sid):
        self.stopped, self.status = True, "STOPPED"
        return True


class TakenIdClient:
    """Ray refuses an id it has seen (the same command twice in one second)."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def submit_job(self, *, submission_id, **kwargs):
        self.ids.append(submission_id)
        if len(self.ids) == 1:
            raise RuntimeError(f"Request failed: ValueError: Job with submission_id {submission_id} already exists.")
        return submission_id


def test_a_taken_id_gets_a_suffix_and_other_refusals_are_one_line():
    sub = S.Submission(job="sft", entrypoint="python -m reasonpipe.jobs.sft --config c.yaml", submission_id="reasonpipe-sft-c-1",
                       runtime_env={}, metadata={})
    client = TakenIdClient()
    assert S._submit(client, sub) == "reasonpipe-sft-c-1-2"
    assert client.ids == ["reasonpipe-sft-c-1", "reasonpipe-sft-c-1-2"]

    class Refusing:
        def submit_job(self, **kwargs):
            raise RuntimeError("Request failed with status code 400: Traceback (most recent call last):\n  File x\n"
                               "ValueError: entrypoint_num_gpus: no such resource\n.")

    with pytest.raises(S.SubmitError, match=r"refused the job: ValueError: entrypoint_num_gpus: no such resource$"):
        S._submit(Refusing(), sub)
    assert S.status_message("Job entrypoint command failed with exit code 2, last available logs (truncated):\nx") \
        == "Job entrypoint command failed with exit code 2"


@pytest.fixture
def default_ctrl_c():
    """Python's own Ctrl-C handler for the test, whatever an earlier test in this process installed: asyncio.run
    turns a SIGINT into KeyboardInterrupt only when it finds that one (a CI run hung here with another in place)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stdin, stops", [(io.StringIO(""), True), (Terminal("n\n"), False), (Terminal("y\n"), True)])
def test_ctrl_c_stops_the_job_unless_a_person_says_no(stdin, stops, capsys, default_ctrl_c):
    client = FakeClient()
    code = S.follow(client, "id-1", address="http://h:8265", out=sys.stdout, stdin=stdin, poll_s=0.01)
    assert code == 130 and client.stopped is stops
    captured = capsys.readouterr()
    assert "step 1" in captured.out
    assert ("stop the job? [y/N]" in captured.err) is isinstance(stdin, Terminal)
    assert ("keeps running" in captured.err) is not stops


class EndsClient:
    """Each submission ends with the next status of ``statuses`` (no logs)."""

    def __init__(self, statuses: list[str]) -> None:
        self.statuses, self.ids, self.current = list(statuses), [], {}

    def submit_job(self, *, submission_id, **kwargs):
        self.ids.append(submission_id)
        self.current[submission_id] = self.statuses.pop(0)
        return submission_id

    async def tail_job_logs(self, sid):
        yield f"{sid} ran\n"

    def get_job_status(self, sid):
        return SimpleNamespace(value=self.current[sid])

    def get_job_info(self, sid):
        return SimpleNamespace(message="Job entrypoint command failed with exit code -9")

    def get_job_logs(self, sid):
        return f"{sid} ran\n"


@pytest.mark.parametrize("statuses, retries, code, submitted", [
    (["FAILED", "FAILED", "SUCCEEDED"], 2, 0, 3),
    (["FAILED", "FAILED", "SUCCEEDED"], 1, 1, 2),   # out of retries: the last failure's exit code
    (["STOPPED", "SUCCEEDED"], 3, 130, 1),          # a stopped job is not retried
    (["SUCCEEDED"], 2, 0, 1),
])
def test_a_failed_job_is_resubmitted_up_to_retries_times(statuses, retries, code, submitted, capsys):
    sub = S.Submission(job="sft", entrypoint="python -m reasonpipe.jobs.sft --config c.yaml", submission_id="reasonpipe-sft-c-1",
                       runtime_env={}, metadata={})
    client = EndsClient(statuses)
    assert S._run_with_retries(client, sub, "http://h:8265", "http://h:8265", retries) == code
    assert client.ids == ["reasonpipe-sft-c-1"] + [f"reasonpipe-sft-c-1-retry{k}" for k in range(1, submitted)]
    assert capsys.readouterr().err.count("submitting it again") == submitted - 1


def test_runtime_env_and_storage_are_merged_into_the_job():
    from reasonpipe.jobs.submit import Submission, SubmitError, with_runtime_env

    sub = Submission("sft", "python -m reasonpipe.jobs.sft", "id", {"working_dir": "/x", "env_vars": {"A": "1"}}, {})
    got = with_runtime_env(sub, "{pip: [peft==0.22.0], env_vars: {B: 2}}", "/mnt/shared/runs").runtime_env
    assert got == {"working_dir": "/x", "pip": ["peft==0.22.0"],
                   "env_vars": {"A": "1", "B": "2", "REASONPIPE_STORAGE": "/mnt/shared/runs"}}
    assert with_runtime_env(sub, None, None) == sub
    for bad in ("[1, 2]", "{pip: [", "3"):
        with pytest.raises(SubmitError, match="--runtime-env"):
            with_runtime_env(sub, bad, None)
