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


def _edges(lo: float, hi: float, bins: int, log_x: bool):
    import numpy as np

    if log_x:
        lo = max(lo, 1.0)
        return np.geomspace(lo, max(hi, lo * 1.01), bins)
    if hi - lo < bins:  # small integers (e.g. backtracks): one bar per value, at least six values wide
        return np.arange(np.floor(lo), np.floor(max(hi, lo + 5)) + 2) - 0.5
    return np.linspace(lo, hi, bins)


def histograms(path: str, series: dict[str, Sequence[float]], *, xlabel: str, title: str,
               log_x: bool = False, bins: int = 40, share_x: bool = True) -> str:
    """One small histogram panel per named series, saved atomically as PNG.

    ``share_x`` gives every panel the same x range (to compare them); otherwise each panel fits its data.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [n for n, v in series.items() if len(v)]
    cols = 2 if len(names) > 1 else 1
    rows = max(1, (len(names) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 1.9 * rows + 0.8), dpi=110, squeeze=False,
                             sharex=share_x)
    if names:
        values = {n: np.asarray(series[n], dtype=float) for n in names}
        shared = _edges(min(v.min() for v in values.values()), max(v.max() for v in values.values()), bins, log_x)
        for ax, name in zip(axes.flat, names):
            v = values[name]
            edges = shared if share_x else _edges(v.min(), v.max(), bins, log_x)
            ax.hist(np.clip(v, edges[0], edges[-1]), bins=edges, color="tab:blue")
            ax.set_title(f"{name}  (n={len(v)}, mean {v.mean():.4g})", fontsize=9)
            if log_x:
                ax.set_xscale("log")
            ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    for ax in axes.flat if not share_x else axes[-1]:
        ax.set_xlabel(xlabel, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
    return path
