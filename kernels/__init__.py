"""Triton kernels for the hot paths, each beside its torch reference and autograd wrapper.

Empty until the kernels issue lands (fused token log-probabilities for RL, batched functional hashing);
the package exists so the distribution's layout matches DESIGN.md.

Example::

    python -c "import kernels"
"""
