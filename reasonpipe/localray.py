"""A local Ray that the Jobs API and Ray Train can rely on, beside other Rays on the same machine.

``init_local_ray(**kwargs)`` is ``ray.init(address="local", include_dashboard=True, ...)`` with three fixes
for Ray 2.60 on a shared machine, found while building ``reasonpipe submit`` and DDP SFT:

- the dashboard *agent* (through which the Jobs API submits) always takes port 52365 under ``ray.init``; with
  another Ray on the machine that port is taken and every submission fails with "No available agent" (Ray's
  answer is ``ray start --dashboard-agent-listen-port``, ray-project/ray#34886): a free port is used instead,
  through the default of Ray's private ``RayParams`` for the duration of the call (Ray is pinned);
- Ray Train's placement-group cleaner asks the State API (served by the dashboard) whether a run is alive and
  kills its workers when the answer is "not found"; without ``RAY_API_SERVER_ADDRESS`` it asks whichever Ray
  it finds on the machine: the dashboard gets a free port and ``RAY_API_SERVER_ADDRESS`` points every Ray
  process at it (set in this process's environment only while Ray starts, so the raylet hands it to every
  worker; a ``runtime_env`` would do the same but kept Ray from reusing prestarted workers: 3-4 s per actor
  instead of 1 s);
- Ctrl-C at a terminal reaches the whole process group and killed the dashboard's module processes (then the
  stop request after a Ctrl-C hung): SIGINT is ignored and blocked while Ray starts, so its processes
  inherit "ignore".

Never ``ray stop`` (it kills every Ray on the machine); ``ray.shutdown()`` ends what this started.

Example::

    python -c "from reasonpipe.localray import init_local_ray; import ray; print(init_local_ray(num_cpus=1).dashboard_url); ray.shutdown()"
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from reasonpipe.environ import environ_restored

LOCAL = "local"


@contextmanager
def quiet(name: str, level: str = "WARNING") -> Iterator[None]:
    """Only ``level`` and above from logger ``name`` for the duration (its level restored after)."""
    import logging

    logger = logging.getLogger(name)
    saved = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(saved)


def free_port() -> int:
    """A TCP port nobody listens on now (on every interface; whoever asked binds it a moment later)."""
    import socket

    with socket.socket() as s:
        s.bind(("", 0))  # the agent listens on every interface
        return s.getsockname()[1]


@contextmanager
def _dashboard_agent_port(port: int) -> Iterator[None]:
    """Make ``ray.init`` start its dashboard agent on ``port``.

    Ray's Jobs API goes through the head's dashboard agent, whose HTTP port ``ray.init`` cannot choose: it is
    always 52365. With a second Ray on the machine (a notebook's, a test's, another ``submit``), that port is
    taken, the agent runs without HTTP and every submission fails with "No available agent". Ray's answer is
    ``ray start --dashboard-agent-listen-port`` (ray-project/ray#34886); inside ``ray.init`` the only handle
    is the default of its private ``RayParams``, replaced here for the duration of the call (Ray is pinned).
    """
    from ray._private import parameter

    original = parameter.RayParams

    class RayParams(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("dashboard_agent_listen_port", port)
            super().__init__(*args, **kwargs)

    parameter.RayParams = RayParams
    try:
        yield
    finally:
        parameter.RayParams = original


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Processes started meanwhile ignore SIGINT; a Ctrl-C meanwhile is delivered when this ends.

    Ctrl-C at a terminal goes to the whole foreground process group, the embedded Ray's processes included.
    Ray blocks SIGINT in most of them, but its dashboard's module processes get it, die, and the Jobs API
    with them: the stop request that should follow a Ctrl-C then hung. An ignored disposition is inherited
    across exec, and Python keeps an ignored SIGINT ignored; blocking it here as well keeps a Ctrl-C that
    comes during ``ray.init`` pending (blocked signals are not discarded) until the handler is back.
    """
    import signal
    import threading

    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def init_local_ray(**kwargs: Any):
    """Start a local Ray (see the module docstring) and return its context (``dashboard_url``, ...)."""
    import logging

    import ray

    port = free_port()
    options = {"address": LOCAL, "include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": port,
               "logging_level": logging.WARNING, "log_to_driver": False, **kwargs}
    env = {"RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{options['dashboard_port']}",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with environ_restored(env):
        os.environ.update(env)
        # "token authentication is enabled": noise for a cluster on 127.0.0.1
        with quiet("ray._private.authentication.authentication_token_setup", "ERROR"), \
                _dashboard_agent_port(free_port()), _sigint_blocked():
            return ray.init(**options)


@contextmanager
def ray_session(num_cpus: int | None = None) -> Iterator[bool]:
    """Ray for the duration of the block, for work spread over Ray tasks and actors (no Jobs API, no Ray Train).

    The Ray this process is already connected to (left as it is), else the cluster ``RAY_ADDRESS`` names (as
    inside a submitted job), else a local Ray without a dashboard with ``num_cpus`` CPUs. Yields whether it
    connected or started one; disconnects from, or stops, what it connected to or started.
    """
    import logging

    import ray

    if ray.is_initialized():
        yield False
        return
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False, "configure_logging": False}
    if os.environ.get("RAY_ADDRESS", LOCAL) == LOCAL:
        options.update(address=LOCAL, num_cpus=num_cpus, include_dashboard=False,
                       runtime_env={"env_vars": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}})
    with quiet("ray._private.authentication.authentication_token_setup", "ERROR"):
        ray.init(**options)
    try:
        yield True
    finally:
        ray.shutdown()
