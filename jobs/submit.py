"""Submit a job (``jobs/<name>.py``) to Ray's Jobs API, follow its logs, and manage submitted jobs.

``reasonpipe submit <job> --config F [--key value ...]`` runs ``python -m reasonpipe.jobs.<job> --config F [--key value ...]``
as a Ray job and streams its logs until it ends (exit 0 succeeded, 1 failed, 130 stopped or interrupted,
2 bad input: unknown job, missing config, unreachable address).

- With ``--address URL`` (or ``RAY_ADDRESS``): the job goes to that cluster's Jobs API. The code is uploaded
  as ``runtime_env.working_dir`` (this checkout, without ``.git``, ``runs/``, checkpoints, virtual
  environments, caches, model weights and files over 50 MiB), so the job runs there in a copy of this tree:
  relative paths in the config are relative to the checkout's root, and data must be reachable from the
  cluster (``runs/`` is not uploaded). The config itself must be in the upload (it is passed relative to
  the root), except for a cluster on this machine, which reads an absolute path. The entry point runs the
  cluster's ``python``.
- With no address (or ``--address local``): a Ray with its dashboard starts inside this process
  (:func:`init_local_ray`), the job is submitted to it the same way and runs in this checkout, in the
  current directory (Ray starts it in the directory of the process that started Ray; nothing is uploaded),
  with this interpreter; Ray is shut down when the job ends, and with it every process it started.
  ``--no-wait`` is refused there: the cluster would end with the command.

Job ids: ``reasonpipe-<job>-<name or config stem>-<hash>-<YYYYmmdd-HHMMSS>``, the hash (8 hex digits) being
that of the job, the config file's content and the overrides, so reruns of one experiment share a prefix.
``--name`` only replaces the config stem in the id (and is shown as the job's name in the dashboard): an id
is never exactly ``--name`` because Ray refuses a second job with an id it has seen, and running the same
command twice must work. Environment variables ``OMP_NUM_THREADS=1`` and ``TOKENIZERS_PARALLELISM=false`` are
set for the job only where the user's own environment does not set them.

Ctrl-C while following a job asks ``stop the job? [y/N]`` on a terminal (otherwise, and for the embedded
cluster, which dies with this command anyway, it stops the job). ``reasonpipe jobs list|status|logs|stop``
needs an address: an embedded cluster lives only as long as its ``submit`` command.

``--retries N`` submits a job that FAILED again (as ``<id>-retry<k>``), up to N times: the driver process
killed, its node lost, a crash. Every job resumes from its run folder by default (finished stages reused, SFT
and RL from their last checkpoint, trace files from their last chunk), so a retry continues where the failed
attempt stopped. A stopped job is not retried. Inside a job, Ray Train restarts lost SFT workers by itself
(``max_failures``) and trace generation reruns a lost worker's chunks.

Multi-node: ``--storage PATH_OR_URI`` names the shared storage the run folders live on; before the job is
submitted, a small job runs :mod:`reasonpipe.storage` on the cluster (every node writes and reads a marker there)
and a node that cannot is named, with the reason, and nothing is submitted; the job gets ``REASONPIPE_STORAGE``.
``--runtime-env '{pip: [...], env_vars: {...}, container: {...}}'`` is merged into the job's runtime_env (Ray's
fields: the environment on every node is Ray's to build from it). Not done here: moving data, or choosing a node.
Job fields named like ``submit``'s own flags (``--name``, ``--address``) go after ``--``:
``reasonpipe submit pipeline --config F -- --name other``.

Example::

    reasonpipe submit sft --config configs/sft-demo.yaml   # embedded Ray; add --address http://HEAD:8265 for a cluster
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from reasonpipe.localray import LOCAL, init_local_ray, quiet

JOBS_DIR = Path(__file__).resolve().parent
NOT_JOBS = frozenset({"__init__", "submit"})
# Never uploaded as working_dir (gitignore syntax, relative to the checkout root). Ray also skips what
# .gitignore lists. Model weights and arrays are excluded by suffix, other big files by size (LARGE_FILE_BYTES).
EXCLUDES: tuple[str, ...] = (
    ".git", "runs/", "**/checkpoints/", ".venv/", "venv/", "**/__pycache__/", "*.jsonl.partial", ".whl/",
    ".pytest_cache/", "*.egg-info/", "build/", "dist/",
    "*.safetensors", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.npy", "*.npz", "*.parquet", "*.arrow",
)
LARGE_FILE_BYTES = 50 * 2**20
DEFAULT_ENV_VARS: dict[str, str] = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
EXIT_CODES: dict[str, int] = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 130}


class SubmitError(Exception):
    """Bad input or an unreachable cluster: one line for the user, exit status 2."""


@dataclass(frozen=True)
class Submission:
    """Everything sent to ``JobSubmissionClient.submit_job`` (pure data: see :func:`plan`)."""

    job: str
    entrypoint: str
    submission_id: str
    runtime_env: dict[str, Any]
    metadata: dict[str, str]
    num_gpus: float | None = None
    large_files: tuple[str, ...] = ()  # left out of the upload for their size


# -- the pure parts -------------------------------------------------------------------------------------

def available_jobs(jobs_dir: Path = JOBS_DIR) -> list[str]:
    """Modules of ``jobs/`` with a top-level ``def main`` (read, not imported: importing pulls in torch)."""
    names = []
    for path in sorted(jobs_dir.glob("*.py")):
        if path.stem in NOT_JOBS:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        if any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body):
            names.append(path.stem)
    return names


def check_job(name: str, jobs_dir: Path = JOBS_DIR) -> str:
    valid = available_jobs(jobs_dir)
    if name not in valid:
        raise SubmitError(f"unknown job {name!r}; valid jobs: {', '.join(valid)}")
    return name


def repo_root(jobs_dir: Path = JOBS_DIR) -> Path | None:
    """The checkout holding ``jobs/`` (it has a pyproject.toml), or None for an installed copy."""
    root = jobs_dir.parent
    return root if (root / "pyproject.toml").is_file() else None


def submission_id(job: str, config_text: bytes, overrides: Sequence[str], label: str, now: float) -> str:
    """``reasonpipe-<job>-<label>-<hash of job, config, overrides>-<local time>``, safe characters only."""
    digest = hashlib.sha256(json.dumps([job, hashlib.sha256(config_text).hexdigest(), list(overrides)]).encode())
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.")[:40] or "run"
    return f"reasonpipe-{job}-{safe}-{digest.hexdigest()[:8]}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"


def default_env_vars(environ: Mapping[str, str]) -> dict[str, str]:
    """The job's defaults for variables the user has not set (a user's setting is never overridden)."""
    return {k: v for k, v in DEFAULT_ENV_VARS.items() if k not in environ}


def runtime_env(root: Path | None, environ: Mapping[str, str], large_files: Sequence[str] = ()) -> dict[str, Any]:
    """The runtime_env of a job: env vars, and for an upload (``root`` given) working_dir with excludes."""
    env: dict[str, Any] = {}
    env_vars = default_env_vars(environ)
    if env_vars:
        env["env_vars"] = env_vars
    if root is not None:
        env["working_dir"] = str(root)
        env["excludes"] = list(EXCLUDES) + ["/" + f for f in large_files]
    return env


def _exclude_spec(root: Path, excludes: Sequence[str]):
    """A matcher for excluded paths (Ray's own gitignore-style matcher), with the root .gitignore."""
    from ray._private.thirdparty.pathspec import PathSpec  # what Ray uses for working_dir excludes

    lines = list(excludes)
    gitignore = root / ".gitignore"
    if gitignore.is_file() and os.environ.get("RAY_RUNTIME_ENV_IGNORE_GITIGNORE") != "1":
        lines += gitignore.read_text(encoding="utf-8").splitlines()
    return PathSpec.from_lines("gitwildmatch", lines)


def find_large_files(root: Path, limit: int = LARGE_FILE_BYTES) -> list[str]:
    """Files under ``root`` of ``limit`` bytes or more that the excludes do not already drop (relative paths)."""
    spec = _exclude_spec(root, EXCLUDES)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames if not spec.match_file(os.path.normpath(os.path.join(rel_dir, d)) + "/")]
        for name in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            try:
                big = os.path.getsize(os.path.join(dirpath, name)) >= limit
            except OSError:
                continue
            if big and not spec.match_file(rel):
                found.append(rel)
    return sorted(found)


def config_argument(config: str, root: Path | None, upload: bool, on_this_machine: bool) -> str:
    """The ``--config`` the job gets: relative to the root for an upload that includes it, else absolute
    (which a cluster on another machine cannot read: an error there)."""
    path = Path(config).resolve()
    if not path.is_file():
        raise SubmitError(f"{config}: no such config file")
    if not upload:
        return str(path)
    if root is None:
        raise SubmitError("submitting to a cluster uploads the source checkout, but jobs/ is not in one "
                          f"({JOBS_DIR}); run from a checkout of reasonpipe")
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = None
    if rel is not None and not _exclude_spec(root, EXCLUDES).match_file(rel):
        return rel
    if on_this_machine:
        return str(path)
    where = "is not inside" if rel is None else "is in a path excluded from"
    raise SubmitError(f"{config}: the config {where} the uploaded working dir {root}, so the cluster cannot "
                      "read it; put it under configs/")


def same_machine(address: str) -> bool:
    """Whether the cluster's address names this machine (then absolute paths outside the upload work)."""
    import socket
    from urllib.parse import urlsplit

    host = urlsplit(address if "://" in address else f"//{address}").hostname or ""
    if host in ("localhost", "127.0.0.1", "::1", "0.0.0.0", socket.gethostname(), socket.getfqdn()):
        return True
    try:
        return socket.gethostbyname(host).startswith("127.")
    except OSError:
        return False


def entrypoint(python: str, job: str, config: str, overrides: Sequence[str]) -> str:
    return shlex.join([python, "-m", f"reasonpipe.jobs.{job}", "--config", config, *overrides])


def split_overrides(extra: Sequence[str]) -> tuple[str, ...]:
    """The job's ``--key value`` overrides: what ``submit`` did not parse, with one ``--`` separator dropped."""
    extra = list(extra)
    if "--" in extra:
        extra.remove("--")
    return tuple(extra)


def plan(job: str, config: str, overrides: Sequence[str], *, upload: bool, name: str | None, num_gpus: float | None,
         environ: Mapping[str, str], now: float, python: str, local_address: bool = False) -> Submission:
    """What to submit: entry point, id, runtime_env and metadata (no Ray, no network). ``upload``: to an
    address (the checkout goes as working_dir); ``local_address``: that address is on this machine."""
    check_job(job)
    root = repo_root()
    config_arg = config_argument(config, root, upload, local_address)
    label = name or Path(config).stem
    large = find_large_files(root) if upload and root is not None else []
    sid = submission_id(job, Path(config).read_bytes(), overrides, label, now)
    metadata = {"job_name": label, "reasonpipe_job": job, "config": config_arg, "overrides": shlex.join(overrides)}
    return Submission(job=job, entrypoint=entrypoint(python, job, config_arg, overrides), submission_id=sid,
                      runtime_env=runtime_env(root if upload else None, environ, large), metadata=metadata,
                      num_gpus=num_gpus, large_files=tuple(large))


def exit_code(status: str) -> int:
    return EXIT_CODES.get(status, 1)


def status_message(message: str | None) -> str:
    """The first line of a job's status message, without Ray's copy of the logs after it."""
    lines = (message or "").strip().splitlines()
    return lines[0].split(", last available logs")[0] if lines else ""


def log_tail(logs: str, n: int = 20) -> str:
    return "\n".join(logs.rstrip("\n").split("\n")[-n:])


# -- talking to a cluster -------------------------------------------------------------------------------

def resolve_address(address: str | None, environ: Mapping[str, str]) -> str | None:
    """``--address``, else ``RAY_ADDRESS``; None (or ``local``) means an embedded cluster."""
    address = address or environ.get("RAY_ADDRESS") or None
    return None if address == LOCAL else address


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an http(s) address nobody answers (the Ray client waits without a timeout)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError as e:
        raise SubmitError(f"cannot reach Ray at {address}: {e.strerror or e}") from None


def connect(address: str):
    """A ``JobSubmissionClient`` for ``address``, or a SubmitError naming the address."""
    from ray.job_submission import JobSubmissionClient

    _check_reachable(address)
    try:
        return JobSubmissionClient(address)
    except Exception as e:  # ConnectionError, version or auth errors, a malformed address: one line each
        raise SubmitError(f"cannot reach Ray's Jobs API at {address}: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _say(message: str) -> None:
    print(f"submit: {message}", file=sys.stderr, flush=True)


async def _follow(client: Any, sid: str, out: TextIO, poll_s: float) -> str:
    """Stream the job's logs to ``out`` while watching its status; the terminal status."""
    import asyncio

    async def tail() -> None:
        try:
            async for chunk in client.tail_job_logs(sid):
                out.write(chunk)
                out.flush()
        except Exception as e:  # the stream broke (Ray raises RuntimeError, aiohttp its own): the status watch
            _say(f"log stream ended early: {_first_line(e)}")  # still ends the wait

    logs = asyncio.create_task(tail())
    last = None
    while True:
        status = str((await asyncio.to_thread(client.get_job_status, sid)).value)
        if status in EXIT_CODES:
            break
        if status != last:
            _say(f"{sid} {status}")
            last = status
        await asyncio.sleep(poll_s)
    try:  # the stream closes once the job has ended; give it a moment to deliver the last lines
        await asyncio.wait_for(logs, timeout=10)
    except asyncio.TimeoutError:
        pass
    return status


def wait_terminal(client: Any, sid: str, timeout_s: float, poll_s: float = 0.5) -> str:
    """Poll until the job is in a terminal state (or ``timeout_s``); its last status."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = str(client.get_job_status(sid).value)
        if status in EXIT_CODES or time.monotonic() > deadline:
            return status
        time.sleep(poll_s)


def _stop(client: Any, sid: str, timeout_s: float) -> str:
    """``stop_job``, then wait for a terminal state; the status. In a thread, bounded: Ray's client has no
    timeouts, and a Ctrl-C must not hang on a cluster that stopped answering."""
    import threading

    result = ["the cluster did not answer"]

    def stop() -> None:
        try:
            client.stop_job(sid)
            result[0] = wait_terminal(client, sid, timeout_s)
        except Exception as e:  # an unreachable cluster, a job that is gone: reported, not raised
            result[0] = f"could not stop it: {_first_line(e)}"

    thread = threading.Thread(target=stop, daemon=True)
    thread.start()
    thread.join(timeout_s + 5)
    return result[0]


def _ask_stop(embedded: bool, stdin: TextIO) -> bool:
    if embedded:
        _say("interrupted: stopping the job (the embedded Ray ends with this command)")
        return True
    if not stdin.isatty():
        _say("interrupted: stopping the job")
        return True
    print("stop the job? [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        return stdin.readline().strip().lower() in ("y", "yes")
    except KeyboardInterrupt:  # a second Ctrl-C: yes
        return True


def follow(client: Any, sid: str, *, address: str | None, out: TextIO, stdin: TextIO | None = None,
           poll_s: float = 1.0) -> int:
    """Stream logs until the job ends; the exit code (0 / 1 / 130). Ctrl-C: stop it (asked on a terminal)."""
    import asyncio  # here, not at the top: `reasonpipe` builds this module's parsers on every command

    started = time.monotonic()
    try:
        with quiet("ray.dashboard.modules.job.sdk"):  # it logs every websocket close at INFO
            status = asyncio.run(_follow(client, sid, out, poll_s))
    except KeyboardInterrupt:
        if _ask_stop(address is None, stdin or sys.stdin):
            _say(f"{sid} {_stop(client, sid, timeout_s=30)}")
        else:
            _say(f"{sid} keeps running: reasonpipe jobs logs {sid} --follow --address {address}")
        return 130
    _say(f"{sid} {status} after {time.monotonic() - started:.1f} s")
    if status == "FAILED":
        info = client.get_job_info(sid)
        print(f"job {sid} failed: {status_message(info.message) or 'no message'}", file=sys.stderr)
        print(f"last log lines:\n{log_tail(client.get_job_logs(sid))}", file=sys.stderr)
    return exit_code(status)


def _object_store_bytes() -> int:
    """10% of RAM, at most 1 GiB, at least Ray's 75 MiB minimum (plus margin)."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(100 * 2**20, min(2**30, ram // 10))


@contextmanager
def embedded_ray() -> Iterator[str]:
    """A Ray with its dashboard in this process for the duration; yields the Jobs API URL. Always shut down."""
    import ray

    if ray.is_initialized():
        raise SubmitError("Ray is already initialized in this process; pass --address to use that cluster")
    started = time.monotonic()
    try:
        context = init_local_ray(num_cpus=os.cpu_count(), object_store_memory=_object_store_bytes())
        if not context.dashboard_url:
            raise SubmitError("the embedded Ray started without its dashboard (is ray[default] installed?)")
        url = f"http://{context.dashboard_url}"
        _say(f"embedded Ray up in {time.monotonic() - started:.1f} s: dashboard {url}, "
             f"logs {context.address_info['session_dir']}/logs")
        yield url
    finally:
        ray.shutdown()


def _submit(client: Any, sub: Submission, agent_wait_s: float = 60.0) -> str:
    """Submit. Ray answers 'No available agent' until the head's dashboard agent is up (seconds after a
    fresh start): retried for ``agent_wait_s``. An id Ray has seen (the same command twice in one second)
    gets a suffix."""
    deadline = time.monotonic() + agent_wait_s
    attempt = 0
    kwargs: dict[str, Any] = {"entrypoint": sub.entrypoint, "runtime_env": sub.runtime_env or None,
                              "metadata": sub.metadata}
    if sub.num_gpus:
        kwargs["entrypoint_num_gpus"] = sub.num_gpus
    while True:
        sid = sub.submission_id if attempt == 0 else f"{sub.submission_id}-{attempt + 1}"
        try:
            # Ray logs each packaging step of working_dir at INFO and warns that it skips .git and .venv,
            # which EXCLUDES asks for anyway: only its errors are shown
            with quiet("ray._private.runtime_env", "ERROR"), quiet("ray.dashboard.modules.dashboard_sdk", "ERROR"):
                return client.submit_job(submission_id=sid, **kwargs)
        except RuntimeError as e:
            if "already exists" in str(e) and attempt < 5:
                attempt += 1
            elif "No available agent" in str(e) and time.monotonic() < deadline:
                time.sleep(0.5)
            else:
                raise SubmitError(f"the cluster refused the job: {_ray_error_line(e)}") from None


def _ray_error_line(e: Exception) -> str:
    """The useful line of a Ray HTTP error (its text carries a server-side traceback)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and ln.strip() != "."]
    errors = [ln for ln in lines if re.match(r"^[A-Za-z_.]*(Error|Exception):", ln)]
    return (errors[-1] if errors else lines[0] if lines else type(e).__name__)[:300]


# -- the commands ---------------------------------------------------------------------------------------

def cmd_submit(args: argparse.Namespace) -> int:
    """``reasonpipe submit``: see the module docstring."""
    try:
        return _submit_command(args)
    except SubmitError as e:
        print(f"reasonpipe submit: error: {e}", file=sys.stderr)
        return 2


def _submit_command(args: argparse.Namespace) -> int:
    address = resolve_address(args.address, os.environ)
    if args.num_gpus is not None and args.num_gpus < 0:
        raise SubmitError("--num-gpus must be 0 or more")
    retries = getattr(args, "retries", 0) or 0
    if retries < 0:
        raise SubmitError("--retries must be 0 or more")
    if retries and args.no_wait:
        raise SubmitError("--retries needs the command to follow the job: leave out --no-wait")
    if address is None and args.no_wait:
        raise SubmitError("--no-wait needs --address (or RAY_ADDRESS): an embedded Ray ends with this command, "
                          "and its job with it")
    sub = plan(args.job, args.config, split_overrides(getattr(args, "overrides", ())), upload=address is not None,
               name=args.name, num_gpus=args.num_gpus, environ=os.environ, now=time.time(),
               python="python" if address is not None else sys.executable,
               local_address=address is not None and same_machine(address))
    sub = with_runtime_env(sub, args.runtime_env, args.storage)
    if address is None:
        with embedded_ray() as url:
            _check_local_gpus(sub.num_gpus)
            client = connect(url)
            if args.storage:
                check_storage_on_cluster(client, sub, args.storage)
            return _run_with_retries(client, sub, None, url, retries)
    client = connect(address)
    for rel in sub.large_files:
        _say(f"not uploading {rel} (over {LARGE_FILE_BYTES // 2**20} MiB)")
    _say(f"uploading {sub.runtime_env['working_dir']} as the job's working_dir")
    if args.storage:
        check_storage_on_cluster(client, sub, args.storage)
    if args.no_wait:
        sid = _submit(client, sub)
        _say(f"{sid} submitted to {address}: {sub.entrypoint}")
        print(sid)
        _say(f"follow it with: reasonpipe jobs logs {sid} --follow --address {address}")
        return 0
    return _run_with_retries(client, sub, address, address, retries)


def with_runtime_env(sub: Submission, extra: str | None, storage: str | None) -> Submission:
    """``sub`` with the user's ``--runtime-env`` mapping merged into its runtime_env (its ``env_vars`` merged with
    ours; a bad mapping is a SubmitError) and ``REASONPIPE_STORAGE`` set when ``storage`` is given."""
    env = dict(sub.runtime_env)
    if extra:
        import yaml

        try:
            more = yaml.safe_load(extra)
        except yaml.YAMLError as e:
            raise SubmitError(f"--runtime-env is not JSON or YAML: {' '.join(str(e).split())[:160]}") from None
        if not isinstance(more, dict):
            raise SubmitError("--runtime-env must be a mapping, e.g. '{pip: [peft==0.22.0]}'")
        env_vars = {**env.get("env_vars", {}), **{k: str(v) for k, v in (more.pop("env_vars", None) or {}).items()}}
        env.update(more)
        env["env_vars"] = env_vars
    if storage:
        env["env_vars"] = {**env.get("env_vars", {}), "REASONPIPE_STORAGE": storage}
    return dataclasses.replace(sub, runtime_env=env)


def check_storage_on_cluster(client: Any, sub: Submission, storage: str, timeout_s: float = 300.0) -> None:
    """Run ``python -m reasonpipe.storage STORAGE`` as a small job on the cluster (every node writes and reads a
    marker there, :mod:`reasonpipe.storage`); a SubmitError naming the nodes and reasons when it fails, so the
    real job is never submitted."""
    python = sub.entrypoint.split(" -m ", 1)[0]
    check = dataclasses.replace(sub, entrypoint=f"{python} -m reasonpipe.storage {shlex.quote(storage)}",
                                submission_id=f"{sub.submission_id}-storage", metadata={"check": "storage"})
    sid = _submit(client, check)
    status = wait_terminal(client, sid, timeout_s)
    logs = client.get_job_logs(sid)
    lines = [line for line in logs.splitlines() if line.startswith(f"storage {storage}:")]
    if status != "SUCCEEDED":
        found = "; ".join(lines) or log_tail(logs, 3)
        raise SubmitError(f"--storage {storage} is not usable from every node ({status}): {found}")
    _say(lines[-1] if lines else f"storage {storage}: checked")


def _run_with_retries(client: Any, sub: Submission, address: str | None, url: str, retries: int) -> int:
    """Submit and follow; a job that FAILED is submitted again (``<id>-retry<k>``) up to ``retries`` times. The
    jobs resume from what an earlier attempt wrote (``resume: auto``, finished stages reused), so a retry
    continues rather than restarts. A stopped job or a Ctrl-C is not retried."""
    for attempt in range(retries + 1):
        this = sub if attempt == 0 else dataclasses.replace(sub, submission_id=f"{sub.submission_id}-retry{attempt}")
        sid = _submit(client, this)
        _say(f"{sid} submitted{f' to {address}' if address else ''}: {sub.entrypoint}")
        code = _follow_or_fail(client, sid, address, url)
        if code != EXIT_CODES["FAILED"]:
            return code
        if attempt < retries:
            _say(f"{sid} failed; submitting it again (retry {attempt + 1} of {retries}), resuming from its run folder")
    return code


def _follow_or_fail(client: Any, sid: str, address: str | None, url: str) -> int:
    try:
        return follow(client, sid, address=address, out=sys.stdout)
    except OSError as e:  # requests' ConnectionError is one: the cluster went away
        raise SubmitError(f"lost the connection to {url} while following {sid}: {_first_line(e)}") from None


def _check_local_gpus(num_gpus: float | None) -> None:
    import ray

    have = ray.cluster_resources().get("GPU", 0)
    if num_gpus and num_gpus > have:
        raise SubmitError(f"--num-gpus {num_gpus:g}: this machine has {have:g} GPUs for the embedded Ray")


def _time(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else ""


def cmd_jobs(args: argparse.Namespace) -> int:
    """``reasonpipe jobs list|status|logs|stop``: the Jobs API of a running cluster."""
    try:
        return _jobs_command(args)
    except SubmitError as e:
        print(f"reasonpipe jobs {args.jobs_action}: error: {e}", file=sys.stderr)
        return 2


def _jobs_command(args: argparse.Namespace) -> int:
    from reasonpipe.console import print_table

    address = resolve_address(args.address, os.environ)
    if address is None:
        raise SubmitError("needs --address URL (or RAY_ADDRESS), e.g. http://127.0.0.1:8265; a job submitted "
                          "without an address ran on an embedded Ray that ended with its `reasonpipe submit`")
    client = connect(address)
    if args.jobs_action == "list":
        jobs = sorted(client.list_jobs(), key=lambda j: j.start_time or 0)
        rows = [(j.submission_id or j.job_id or "", str(j.status.value), j.entrypoint[:80], _time(j.start_time),
                 _time(j.end_time)) for j in jobs]
        print_table(f"{address}: {len(rows)} jobs", rows, ("submission id", "status", "entrypoint", "start", "end"))
        return 0
    try:
        info = client.get_job_info(args.id)
    except RuntimeError as e:
        raise SubmitError(f"no job {args.id!r} at {address} ({_ray_error_line(e)})") from None
    if args.jobs_action == "status":
        message = status_message(info.message)
        print(f"{args.id}: {info.status.value}" + (f": {message}" if message else ""))
        return 0
    if args.jobs_action == "logs":
        if args.follow:
            return _follow_or_fail(client, args.id, address, address)
        sys.stdout.write(client.get_job_logs(args.id))
        return 0
    stopped = client.stop_job(args.id)
    status = wait_terminal(client, args.id, timeout_s=0 if args.no_wait else 30)
    print(f"{args.id}: {'stop requested' if stopped else 'already ended'}; status {status}")
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``submit`` and ``jobs`` to reasonpipe's subcommands (``sub`` from ``add_subparsers``)."""
    submit = sub.add_parser("submit", allow_abbrev=False, help="run a job (jobs/<name>.py) as a Ray job",
                            description="Run `python -m reasonpipe.jobs.<job> --config F [--key value ...]` as a Ray job and "
                            "follow its logs; any other --key value (or everything after --) goes to the job.")
    submit.add_argument("job", help=f"a module of jobs/ with main(config): {', '.join(available_jobs())}")
    submit.add_argument("--config", required=True, help="the job's YAML config")
    submit.add_argument("--address", help="Ray Jobs API, e.g. http://HEAD:8265 (default: RAY_ADDRESS; none or "
                        "'local': an embedded Ray for this command)")
    submit.add_argument("--num-gpus", type=float, help="GPUs reserved for the job's entry point")
    submit.add_argument("--name", help="a name for the job (in its id and the dashboard; default: config stem)")
    submit.add_argument("--no-wait", action="store_true", help="print the job id and return (needs an address)")
    submit.add_argument("--retries", type=int, default=0, help="submit a FAILED job again up to N times; it resumes "
                        "from its run folder (jobs default to resume: auto)")
    submit.add_argument("--storage", help="the shared storage the run folders live on (a path mounted on every node, "
                        "or a URI such as s3://bucket/runs): checked from every node before the job is submitted "
                        "(reasonpipe.storage); the job gets it as REASONPIPE_STORAGE")
    submit.add_argument("--runtime-env", help="a JSON or YAML mapping merged into the job's runtime_env (pip, "
                        "env_vars, container image...; Ray's runtime_env fields), e.g. '{pip: [peft==0.22.0]}'")

    jobs = sub.add_parser("jobs", help="list, inspect, follow or stop submitted Ray jobs")
    actions = jobs.add_subparsers(dest="jobs_action", required=True)
    for action, text in (("list", "every job of the cluster"), ("status", "a job's status and message"),
                         ("logs", "a job's logs"), ("stop", "stop a job")):
        p = actions.add_parser(action, help=text)
        if action != "list":
            p.add_argument("id", help="the submission id")
        p.add_argument("--address", help="Ray Jobs API, e.g. http://HEAD:8265 (default: RAY_ADDRESS)")
        if action == "logs":
            p.add_argument("--follow", action="store_true", help="stream until the job ends (exit 0/1/130)")
        if action == "stop":
            p.add_argument("--no-wait", action="store_true", help="do not wait for the job to end")
