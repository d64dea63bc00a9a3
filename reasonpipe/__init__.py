"""reasonpipe: search traces for puzzle tasks, exact step verification, and (as it grows) training on them.

Start at the CLI (:mod:`reasonpipe.cli`), the trace model (:mod:`reasonpipe.traces`) and the task registry
(:mod:`reasonpipe.tasks`); ``docs/architecture.md`` has the architecture.

Example::

    reasonpipe gen countdown --n 10 --searcher dfs --seed 1 --out /tmp/cd.jsonl
"""

import os as _os

__version__ = "0.1.0"

# The checkout keeps searchers/, verifiers/, kernels/ and jobs/ beside this folder; installed (a wheel), they are
# inside it (pyproject.toml's package-dir). Run from a checkout without an install (PYTHONPATH=., Ray's
# working_dir), the checkout joins this package's search path so that reasonpipe.verifiers is <checkout>/verifiers.
_here = _os.path.dirname(_os.path.abspath(__file__))
_checkout = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "verifiers")) and _os.path.isfile(
        _os.path.join(_checkout, "verifiers", "__init__.py")):
    __path__.append(_checkout)
del _here, _checkout
