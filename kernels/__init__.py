"""Triton kernels for the hot paths, each beside its torch reference and autograd wrapper.

``reasonpipe.kernels.logprob``: per-token log-probabilities (+ entropy) of chosen tokens in one pass over the logits, with
its backward (``token_logprobs``; the GRPO trainer's ``fused_logprobs`` switch).
``reasonpipe.kernels.fhash``: 128-bit row fingerprints ("mix64") behind ``reasonpipe.fhash.hash_rows(..., algo="mix64")``.

Example::

    python -c "import kernels"
"""
