"""Job entry points: one module per job, ``python -m jobs.<name> --config F [--key value ...]``.

Each has ``main(config) -> exit code`` so it runs the same under Ray or without it.

Example::

    python -m jobs.pipeline --config configs/demo-cpu.yaml
"""
