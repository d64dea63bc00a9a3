"""Job entry points: one module per job, ``python -m jobs.<name> --config F [--key value ...]``.

Each has ``main(config) -> exit code`` so it runs the same under Ray or without it.

Example::

    python -m jobs.pipeline --config configs/demo-cpu.yaml
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def run_job(name: str, module: str, doc: str, config_cls: type, main: Callable[[Any], int], argv: list[str] | None,
            interrupted: str = "interrupted") -> int:
    """A job's command line: ``--config F`` plus ``--key value`` overrides, loaded into ``config_cls`` and
    passed to ``main``; bad input exits 2 with one message (see :func:`reasonpipe.console.run_command`)."""
    import argparse
    import os

    from reasonpipe.config import load_config
    from reasonpipe.console import run_command

    parser = argparse.ArgumentParser(prog=f"python -m jobs.{module}", description=doc.split("\n\n")[0])
    parser.add_argument("--config", help=f"YAML with the fields of {config_cls.__module__}.{config_cls.__name__}")
    args, overrides = parser.parse_known_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return run_command(name, lambda: main(load_config(config_cls, args.config, overrides)), interrupted)
