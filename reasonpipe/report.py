"""What a person looks at after a run: Markdown tables and PNG plots (matplotlib, headless).

Example::

    python -c "from reasonpipe.report import markdown_table; print(markdown_table(['a', 'b'], [[1, 2]]))"
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from reasonpipe.jsonl import atomic_write


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(map(cell, headers)) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(out) + "\n"


def histograms(path: str, series: dict[str, Sequence[float]], *, xlabel: str, title: str,
               log_x: bool = False, bins: int = 40) -> str:
    """One overlaid histogram per named series, saved atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    values = [np.asarray(v, dtype=float) for v in series.values() if len(v)]
    if values:
        lo = min(v.min() for v in values)
        hi = max(v.max() for v in values)
        if log_x:
            lo = max(lo, 1.0)
            edges = np.geomspace(lo, max(hi, lo * 1.01), bins)
            ax.set_xscale("log")
        else:
            edges = np.linspace(lo, hi if hi > lo else lo + 1, bins)
        for name, v in series.items():
            if len(v):
                ax.hist(np.clip(np.asarray(v, dtype=float), edges[0], edges[-1]), bins=edges, alpha=0.55,
                        label=f"{name} (n={len(v)})")
        ax.legend(fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("traces")
    ax.set_title(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
    return path
