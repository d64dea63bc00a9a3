"""The JSON row every benchmark script here prints: the measurement plus where and with what it was taken.

Example::

    python -c "import sys; sys.path.insert(0, 'benchmarks'); from rows import machine; print(machine())"
"""

from __future__ import annotations

import json
import os
import platform
from typing import Any


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what platform knows."""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """Host, CPU, cores and Python: the fields that say where a row was measured."""
    return {"host": platform.node(), "cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version()}


def write_row(row: dict[str, Any], out: str | None = None) -> None:
    """Print ``row`` as one JSON line, and append it to ``out`` when given."""
    line = json.dumps(row)
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    print(line, flush=True)
