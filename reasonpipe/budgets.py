"""Compute budgets: FLOPs per generated sequence by To Backtrack or Not's formula (DESIGN.md).

For a sequence of ``L`` tokens through ``n_layer`` blocks of width ``d``, key/value width ``kv`` and MLP
width ``ffn``::

    FLOPs(L) = n_layer * (lin * L + d * L * (L + 1) / 2),   lin = 2*d**2 + 2*d*kv + 3*d*ffn

``lin * L`` is the per-token linear work (query and output projections, key and value projections, the
gated MLP); ``d * L * (L + 1) / 2`` the attention over a causal prefix. Embeddings and the LM head are left
out, as in the paper. Every accuracy in an evaluation carries these FLOPs and the tokens behind them.

Example::

    python -c "from reasonpipe.budgets import flops; print(flops(6, 256, 64, 512, 4096))"
"""

from __future__ import annotations

from typing import Any

from reasonpipe.models import block_shape


def flops(n_layer: int, d: int, kv: int, ffn: int, length: int) -> float:
    """FLOPs of one sequence of ``length`` tokens."""
    lin = 2 * d * d + 2 * d * kv + 3 * d * ffn
    return float(n_layer * (lin * length + d * length * (length + 1) / 2))


def sequence_flops(config: Any, length: int) -> float:
    """FLOPs of one sequence for a Qwen2-like model config."""
    return flops(*block_shape(config), length)
