"""Hash many candidates' output rows at once: ``hash_rows(outputs[n_candidates, n_probes, ...])``.

Row ``i`` gets exactly ``functional_hash(outputs[i])`` (same dtype, shape and float rules), but the
canonicalisation (NaN, -0.0, mantissa truncation, byte order) runs once over the whole tensor, vectorised
in numpy; only the per-row digest is a Python loop. On CUDA a Triton kernel from ``kernels/`` is meant to
replace this path (a later issue); this one runs wherever torch or numpy does.

Example::

    python -c "import torch; from reasonpipe.fhash import hash_rows; print([h.hex()[:8] for h in hash_rows(torch.zeros(3, 4))])"
"""

from __future__ import annotations

from typing import Any

from reasonpipe.fhash.encode import DEFAULT_FLOAT_BITS, array_header, canonical_array_bytes, digest, namespace_key


def hash_rows(outputs: Any, float_bits: int = DEFAULT_FLOAT_BITS, namespace: bytes | str = b"") -> list[bytes]:
    """One functional hash per leading row of a numpy array or torch tensor."""
    import numpy as np

    prefix = b"A"
    if type(outputs).__module__.startswith("torch"):
        import torch

        x = outputs.detach()
        name = str(x.dtype).removeprefix("torch.")
        if x.dtype == torch.bfloat16:
            x = x.float()
        outputs = x.cpu().contiguous().numpy()
        prefix = b"X" + name.encode() + b"|"
    a = np.ascontiguousarray(outputs)
    if a.ndim < 1:
        raise ValueError("hash_rows needs at least one dimension (the candidates)")
    n = a.shape[0]
    data = canonical_array_bytes(a, float_bits)
    row = len(data) // n if n else 0
    head = prefix + array_header(a.dtype.name, a.shape[1:], row)
    key = namespace_key(namespace)
    view = memoryview(data)
    return [digest(head + view[i * row:(i + 1) * row], key) for i in range(n)]
