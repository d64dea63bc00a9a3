"""Hash many candidates' output rows at once: ``hash_rows(outputs[n_candidates, n_probes, ...], algo=...)``.

Two algorithms, chosen explicitly (the default never changes under a caller's feet):

- ``algo="blake2b"`` (default): row ``i`` gets exactly ``functional_hash(outputs[i])`` (same dtype, shape
  and float rules, 16 bytes). The canonicalisation (NaN, -0.0, mantissa truncation, byte order) runs once
  over the whole tensor, vectorised in numpy; only the per-row digest is a Python loop. Runs wherever
  torch or numpy does; CUDA tensors are copied to the host first.
- ``algo="mix64"``: the fast non-cryptographic fingerprint of ``kernels/fhash.py`` (same canonicalisation
  rules, so the same rows are equal; bool, integer and real float dtypes only; collisions about 2**-126 per
  pair for data not built to collide, but anyone can build one). CUDA tensors run its Triton kernel on the
  GPU (one read of the data, no copy to the host but the 16 bytes per row); anything else runs its numpy
  reference, which gives identical bytes. Keys are 17 bytes, ``b"m"`` then the fingerprint, so they can
  never equal a 16-byte BLAKE2b key: one cache or store can hold both kinds without mixing them (the same
  behaviour hashed by the two algorithms is two entries). Pass them to ``FunctionalHashCache``'s
  ``lookup_or_evaluate``. On a CPU the reference runs about as fast as BLAKE2b does; mix64 pays off on GPUs.

Either way the namespace, the container type (torch or numpy), the dtype and ``shape[1:]`` are part of each
row's hash, and a row's hash does not depend on the other rows.

Example::

    python -c "import torch; from reasonpipe.fhash import hash_rows; x = torch.zeros(3, 4); print([h.hex()[:8] for h in hash_rows(x)], [h.hex()[:10] for h in hash_rows(x, algo='mix64')])"
"""

from __future__ import annotations

from typing import Any

from reasonpipe.fhash.encode import (DEFAULT_FLOAT_BITS, EncodeError, array_header, canonical_array_bytes, digest,
                                     float_mask, namespace_key)

ALGOS = ("blake2b", "mix64")
MIX64_PREFIX = b"m"  # first byte of every mix64 key (17 bytes long; BLAKE2b keys are 16)


def hash_rows(outputs: Any, float_bits: int = DEFAULT_FLOAT_BITS, namespace: bytes | str = b"",
              algo: str = "blake2b") -> list[bytes]:
    """One functional hash per leading row of a numpy array or torch tensor (``algo``: see the module docstring)."""
    if algo == "mix64":
        return _mix64_rows(outputs, float_bits, namespace)
    if algo != "blake2b":
        raise ValueError(f"unknown hash_rows algo {algo!r}; choose one of {', '.join(ALGOS)}")
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


def _mix64_rows(outputs: Any, float_bits: int, namespace: bytes | str) -> list[bytes]:
    import numpy as np

    from reasonpipe.kernels.fhash import fingerprint_rows, fingerprints_to_bytes

    float_mask(float_bits)  # validates
    if type(outputs).__module__.startswith("torch"):
        x, kind = outputs.detach(), b"X"
    else:
        x, kind = np.asarray(outputs), b"A"
    if x.ndim < 1:
        raise ValueError("hash_rows needs at least one dimension (the candidates)")
    name = str(x.dtype).removeprefix("torch.") if kind == b"X" else x.dtype.name
    n, k = x.shape[0], 1
    for d in x.shape[1:]:
        k *= d
    header = kind + array_header(name, tuple(x.shape[1:]), k)  # the kernel adds the dtype and k too
    try:
        fp = fingerprint_rows(x.reshape(n, k), float_bits, header, namespace_key(namespace))
    except TypeError as e:
        raise EncodeError(str(e)) from None
    return [MIX64_PREFIX + h for h in fingerprints_to_bytes(fp)]
