"""reasonpipe: search traces for puzzle tasks, exact step verification, and (as it grows) training on them.

Start at the CLI (:mod:`reasonpipe.cli`), the trace model (:mod:`reasonpipe.traces`) and the task registry
(:mod:`reasonpipe.tasks`); ``docs/architecture.md`` has the architecture.

Example::

    reasonpipe gen countdown --n 10 --searcher dfs --seed 1 --out /tmp/cd.jsonl
"""

__version__ = "0.1.0"
