"""Environment variables set for a while and then put back exactly as they were (unset ones unset again).

Example::

    python -c "import os; from reasonpipe.environ import environ_restored; exec('with environ_restored((\"X\",)):\n    os.environ[\"X\"] = \"1\"'); print(os.environ.get('X'))"
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


@contextmanager
def environ_restored(names: Iterable[str]) -> Iterator[None]:
    """On exit, every variable of ``names`` has the value (or absence) it had on entry."""
    saved = {k: os.environ.get(k) for k in names}
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
