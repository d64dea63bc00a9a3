"""Fused per-token log-probabilities (and entropy) of chosen tokens, in one pass over the logits.

For logits ``[..., V]`` and token ids ``[...]`` this returns ``log softmax(logits / T)[id]`` and, on request, the
entropy of ``softmax(logits / T)`` per position, both float32, without materialising a ``[tokens, V]`` float32
tensor: one online log-sum-exp pass reads the logits once (bf16, fp16 or fp32; arithmetic in fp32). The backward
pass re-reads the logits, recomputes the probabilities from the saved log-sum-exp and writes the gradient once, in
the logits' dtype:

    d logp / d logits_j = (onehot(id)_j - p_j) / T            d H / d logits_j = -p_j (log p_j + H) / T

Positions whose id is ``ignore_index`` (or where ``mask`` is False) give 0 for both outputs and an exactly-zero
gradient row; their logits are never read, so inf or NaN there cannot leak. An id outside ``[0, V)`` that is not
``ignore_index`` gives NaN (loud, never a silent wrong number).

Parts, as in Liger-Kernel: the two ``@triton.jit`` kernels; launchers that pick block sizes with a small heuristic
(:func:`launch_config`; no ``@triton.autotune``, which fails in the interpreter); :class:`TokenLogprobs`, the
autograd ``Function``; :func:`token_logprobs`, the function to call; :func:`token_logprobs_reference`, the torch
reference with the same API (what runs on CPU, and what the tests compare against).

Tiling. Programs form a 1-D grid over blocks of ``block_rows`` rows (no grid dimension grows past CUDA's 65,535
y/z limit). Each program loops over the vocabulary in ``block_v`` chunks, keeping a running max, sum of
exponentials and (for the entropy) sum of ``e * (z - max)`` per row. Small vocabularies (e.g. 64) get many rows per
program (a ``64 x 64`` tile), so a launch is not one tiny program per row; large ones (32k-262k) get one row per
program and several chunks per row. The backward grid adds vocabulary splits per row block when there are few rows.

Dispatch: CUDA tensors run the Triton kernels; CPU tensors run the torch reference, unless ``impl="triton"`` is
asked for and ``TRITON_INTERPRET=1`` was set *before this module was imported* (Triton decides at definition time
whether a kernel is compiled or interpreted), which is how the CPU tests exercise the Triton code at tiny shapes.

What it does not do: no fused LM-head projection (TRL 1.16's own fused head projects in tiles and never holds the
logits; this op takes logits that exist); no split of one row's vocabulary across programs in the forward pass
(a handful of rows over a huge vocabulary uses few SMs); float64 runs only in the reference.

Example::

    python -c "import torch, reasonpipe.kernels.logprob as k; x = torch.randn(2, 5, 64); print(k.token_logprobs(x, x.argmax(-1)))"
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - triton ships with torch on Linux
    triton = None
    tl = None

if triton is not None:

    @triton.jit
    def _logprob_fwd_kernel(x_ptr, ids_ptr, logp_ptr, ent_ptr, lse_ptr,
                            n_rows, rows_per_batch, stride_b, stride_t, vocab, inv_temperature, ignore_index,
                            WITH_ENTROPY: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_V: tl.constexpr):
        # rows of this program; row r is (batch r // rows_per_batch, position r % rows_per_batch) of a 3-D view
        rows = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
        row_ok = rows < n_rows
        ids = tl.load(ids_ptr + rows, mask=row_ok, other=ignore_index).to(tl.int64)
        valid = row_ok & (ids != ignore_index)
        batch = rows // rows_per_batch
        base = batch * stride_b + (rows - batch * rows_per_batch) * stride_t
        m = tl.full((BLOCK_ROWS,), -3.0e38, tl.float32)  # running max of z = x / T; finite: never -inf - -inf
        s = tl.zeros((BLOCK_ROWS,), tl.float32)  # sum exp(z - m)
        a = tl.zeros((BLOCK_ROWS,), tl.float32)  # sum exp(z - m) * (z - m): entropy = log s - a / s
        for start in range(0, vocab, BLOCK_V):
            cols = start + tl.arange(0, BLOCK_V)
            load = valid[:, None] & (cols < vocab)[None, :]
            z = tl.load(x_ptr + base[:, None] + cols[None, :], mask=load, other=-float("inf")).to(tl.float32)
            z = z * inv_temperature
            m_new = tl.maximum(m, tl.max(z, axis=1))
            r = tl.exp(m - m_new)
            d = z - m_new[:, None]
            e = tl.exp(d)  # 0 where z is -inf (masked lanes, or a real -inf logit)
            if WITH_ENTROPY:
                # shift a to the new max: sum e'(z - m') = r * (a + s * (m - m')); e * d is 0 where e is 0 (z = -inf)
                a = r * (a + s * (m - m_new)) + tl.sum(e * tl.where(e > 0, d, 0.0), axis=1)
            s = s * r + tl.sum(e, axis=1)
            m = m_new
        s_safe = tl.where(valid, s, 1.0)
        lse = m + tl.log(s_safe)
        in_range = (ids >= 0) & (ids < vocab)
        target = tl.load(x_ptr + base + ids, mask=valid & in_range, other=0.0).to(tl.float32) * inv_temperature
        logp = tl.where(in_range, target - lse, float("nan"))
        tl.store(logp_ptr + rows, tl.where(valid, logp, 0.0), mask=row_ok)
        tl.store(lse_ptr + rows, tl.where(valid, lse, 0.0), mask=row_ok)
        if WITH_ENTROPY:
            ent = tl.log(s_safe) - a / s_safe
            tl.store(ent_ptr + rows, tl.where(valid, ent, 0.0), mask=row_ok)

    @triton.jit
    def _logprob_bwd_kernel(x_ptr, ids_ptr, lse_ptr, ent_ptr, glogp_ptr, gent_ptr, grad_ptr,
                            n_rows, rows_per_batch, stride_b, stride_t, vocab, inv_temperature, ignore_index,
                            splits, chunks_per_split,
                            HAS_GLOGP: tl.constexpr, HAS_GENT: tl.constexpr,
                            BLOCK_ROWS: tl.constexpr, BLOCK_V: tl.constexpr):
        # program = (row block, vocabulary split); the gradient is [n_rows, vocab], contiguous
        pid = tl.program_id(0)
        block = pid // splits
        split = pid - block * splits
        rows = block.to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
        row_ok = rows < n_rows
        ids = tl.load(ids_ptr + rows, mask=row_ok, other=ignore_index).to(tl.int64)
        valid = row_ok & (ids != ignore_index)
        batch = rows // rows_per_batch
        base = batch * stride_b + (rows - batch * rows_per_batch) * stride_t
        lse = tl.load(lse_ptr + rows, mask=row_ok, other=0.0)
        if HAS_GLOGP:
            g = tl.load(glogp_ptr + rows, mask=valid, other=0.0)
        if HAS_GENT:
            ge = tl.load(gent_ptr + rows, mask=valid, other=0.0)
            h = tl.load(ent_ptr + rows, mask=valid, other=0.0)
        v_begin = split * chunks_per_split * BLOCK_V
        v_end = tl.minimum(v_begin + chunks_per_split * BLOCK_V, vocab)
        for start in range(v_begin, v_end, BLOCK_V):
            cols = start + tl.arange(0, BLOCK_V)
            col_ok = cols < v_end
            z = tl.load(x_ptr + base[:, None] + cols[None, :], mask=valid[:, None] & col_ok[None, :],
                        other=-float("inf")).to(tl.float32) * inv_temperature
            logq = z - lse[:, None]
            p = tl.exp(logq)
            grad = tl.zeros((BLOCK_ROWS, BLOCK_V), tl.float32)
            if HAS_GLOGP:
                grad += g[:, None] * (tl.where(cols[None, :] == ids[:, None], 1.0, 0.0) - p)
            if HAS_GENT:
                grad -= ge[:, None] * p * tl.where(p > 0, logq + h[:, None], 0.0)  # 0 log 0 = 0
            grad = grad * inv_temperature  # masked rows: nothing loaded, p = 0 and g = 0, so exactly 0
            tl.store(grad_ptr + rows[:, None] * vocab + cols[None, :], grad.to(grad_ptr.dtype.element_ty),
                     mask=row_ok[:, None] & col_ok[None, :])


TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@dataclass(frozen=True)
class LaunchConfig:
    """Block sizes of one launch: a program covers ``block_rows`` rows and walks the vocabulary ``block_v`` columns
    at a time; ``splits`` (backward only) cuts each row block's vocabulary into that many programs."""

    block_rows: int
    block_v: int
    num_warps: int = 4
    num_stages: int | None = None  # None: Triton's default
    splits: int = 1


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def launch_config(n_rows: int, vocab: int, *, backward: bool = False, aligned: bool = True, tile: int = 4096,
                  target_programs: int = 1024) -> LaunchConfig:
    """Block sizes for ``n_rows`` rows over ``vocab`` columns.

    A program's tile holds about ``tile`` elements: ``block_v`` is the vocabulary rounded up to a power of two,
    capped at ``tile``; ``block_rows`` fills the rest (64 rows at vocab 64, one row from vocab 4096 up). The backward
    pass splits each row block's vocabulary so that about ``target_programs`` programs run when rows are few.
    ``aligned``: the row strides are multiples of 16 elements (Triton then vectorises the loads).
    """
    block_v = max(16, min(_next_pow2(vocab), tile))
    block_rows = max(1, min(tile // block_v, _next_pow2(max(1, n_rows)), 256))
    num_warps = 8 if block_rows * block_v >= 4096 else 4
    if not aligned and block_v <= 1024:
        # Rows that are not 16-element aligned (e.g. vocab 47) cannot be loaded as vectors, and Triton then lays
        # a small-vocab tile out one row per warp, so every thread keeps the running state of many rows: ptxas for
        # sm_90 gave the 64 x 64 forward tile 224 registers (8 warps; backward 255) against 40 (64) when aligned;
        # 16 x 64 with 4 warps takes 96 (backward 89). Fewer rows per program keep more programs resident.
        block_rows, num_warps = min(block_rows, 16), 4
    splits = 1
    if backward:
        chunks = math.ceil(vocab / block_v)
        row_blocks = math.ceil(max(1, n_rows) / block_rows)
        splits = max(1, min(chunks, math.ceil(target_programs / row_blocks)))
    return LaunchConfig(block_rows, block_v, num_warps, None, splits)


def interpreted() -> bool:
    """True when this module's kernels were defined under ``TRITON_INTERPRET=1`` (they then run on CPU tensors)."""
    return triton is not None and type(_logprob_fwd_kernel).__name__ == "InterpretedFunction"


def _rows_view(logits: torch.Tensor) -> tuple[torch.Tensor, int, int, int]:
    """``logits [..., V]`` as rows of a 3-D strided view without copying where possible:
    (tensor, rows_per_batch, batch stride, row stride). Only the last dimension must be contiguous."""
    if logits.stride(-1) != 1:
        logits = logits.contiguous()
    if logits.dim() == 1:
        logits = logits.unsqueeze(0)
    if logits.dim() == 2:
        return logits, max(1, logits.shape[0]), 0, logits.stride(0)
    x = logits.reshape(-1, logits.shape[-2], logits.shape[-1])  # a view when the leading dims merge, else a copy
    return x, max(1, x.shape[1]), x.stride(0), x.stride(1)


def _aligned(x: torch.Tensor, stride_b: int, stride_t: int) -> bool:
    """Whether Triton will see 16-aligned rows (its launch specialisation: pointer and strides divisible by 16)."""
    return x.data_ptr() % 16 == 0 and stride_b % 16 == 0 and stride_t % 16 == 0


def _kwargs(cfg: LaunchConfig) -> dict:
    out = {"num_warps": cfg.num_warps}
    if cfg.num_stages is not None:
        out["num_stages"] = cfg.num_stages
    return out


def _device_guard(t: torch.Tensor):
    import contextlib

    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def logprob_forward(logits: torch.Tensor, ids: torch.Tensor, logp: torch.Tensor, entropy: torch.Tensor | None,
                    lse: torch.Tensor, *, temperature: float = 1.0, ignore_index: int = -100,
                    config: LaunchConfig | None = None) -> None:
    """Launch the forward kernel into the given float32 buffers (``[rows]`` each; ``entropy`` None: not computed).

    ``logits [..., V]`` (last dimension contiguous), ``ids`` flattened to the rows of ``logits``, contiguous.
    Every element of ``logp``, ``lse`` (and ``entropy``) is written, masked rows included.
    """
    x, rows_per_batch, stride_b, stride_t = _rows_view(logits)
    vocab = x.shape[-1]
    n_rows = ids.numel()
    if n_rows == 0:
        return
    cfg = config or launch_config(n_rows, vocab, aligned=_aligned(x, stride_b, stride_t))
    grid = (triton.cdiv(n_rows, cfg.block_rows),)
    with _device_guard(x):
        _logprob_fwd_kernel[grid](x, ids, logp, entropy if entropy is not None else logp, lse,
                                  n_rows, rows_per_batch, stride_b, stride_t, vocab, 1.0 / temperature, ignore_index,
                                  WITH_ENTROPY=entropy is not None, BLOCK_ROWS=cfg.block_rows, BLOCK_V=cfg.block_v,
                                  **_kwargs(cfg))


def logprob_backward(logits: torch.Tensor, ids: torch.Tensor, lse: torch.Tensor, entropy: torch.Tensor | None,
                     grad_logp: torch.Tensor | None, grad_entropy: torch.Tensor | None, grad: torch.Tensor, *,
                     temperature: float = 1.0, ignore_index: int = -100, config: LaunchConfig | None = None) -> None:
    """Launch the backward kernel: ``grad [rows, V]`` (contiguous, any float dtype) gets the gradient w.r.t. the
    logits of ``sum(grad_logp * logp) + sum(grad_entropy * entropy)``; every element is written.

    ``lse`` and ``entropy`` are the forward's; ``grad_logp`` / ``grad_entropy`` float32 ``[rows]`` or None.
    """
    x, rows_per_batch, stride_b, stride_t = _rows_view(logits)
    vocab = x.shape[-1]
    n_rows = ids.numel()
    if n_rows == 0:
        return
    if grad_entropy is not None and entropy is None:
        raise ValueError("an entropy gradient needs the forward's entropy")
    cfg = config or launch_config(n_rows, vocab, backward=True, aligned=_aligned(x, stride_b, stride_t))
    chunks = triton.cdiv(vocab, cfg.block_v)
    splits = max(1, min(cfg.splits, chunks))
    chunks_per_split = triton.cdiv(chunks, splits)
    splits = triton.cdiv(chunks, chunks_per_split)  # no empty split
    grid = (triton.cdiv(n_rows, cfg.block_rows) * splits,)
    with _device_guard(x):
        _logprob_bwd_kernel[grid](x, ids, lse, entropy if entropy is not None else lse,
                                  grad_logp if grad_logp is not None else lse,
                                  grad_entropy if grad_entropy is not None else lse, grad,
                                  n_rows, rows_per_batch, stride_b, stride_t, vocab, 1.0 / temperature, ignore_index,
                                  splits, chunks_per_split,
                                  HAS_GLOGP=grad_logp is not None, HAS_GENT=grad_entropy is not None,
                                  BLOCK_ROWS=cfg.block_rows, BLOCK_V=cfg.block_v, **_kwargs(cfg))


class TokenLogprobs(torch.autograd.Function):
    """Autograd wrapper of the two kernels: ``apply(logits, ids, temperature, ignore_index, with_entropy, config)``
    returns ``logp`` or ``(logp, entropy)``; ``ids`` already carry ``ignore_index`` wherever a mask is False."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, ids: torch.Tensor, temperature: float, ignore_index: int,
                with_entropy: bool, config: LaunchConfig | None):
        ctx.set_materialize_grads(False)  # an unused entropy gets no gradient pass
        flat_ids = ids.reshape(-1).contiguous()
        n = flat_ids.numel()
        opts = {"device": logits.device, "dtype": torch.float32}
        logp = torch.empty(n, **opts)
        lse = torch.empty(n, **opts)
        ent = torch.empty(n, **opts) if with_entropy else None
        x = _rows_view(logits)[0]
        logprob_forward(x, flat_ids, logp, ent, lse, temperature=temperature, ignore_index=ignore_index,
                        config=config)
        ctx.save_for_backward(x, flat_ids, lse, ent if ent is not None else lse)
        ctx.opts = (logits.shape, logits.dtype, temperature, ignore_index, with_entropy, config)
        logp = logp.view(ids.shape)
        return (logp, ent.view(ids.shape)) if with_entropy else logp

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_logp: torch.Tensor | None, grad_ent: torch.Tensor | None = None):
        x, flat_ids, lse, ent = ctx.saved_tensors
        shape, dtype, temperature, ignore_index, with_entropy, config = ctx.opts
        if grad_logp is None and grad_ent is None:
            return None, None, None, None, None, None
        grad = torch.empty(shape, device=x.device, dtype=dtype)
        logprob_backward(x, flat_ids, lse, ent if with_entropy else None,
                         None if grad_logp is None else grad_logp.reshape(-1).float().contiguous(),
                         None if grad_ent is None else grad_ent.reshape(-1).float().contiguous(),
                         grad.view(-1, shape[-1]), temperature=temperature, ignore_index=ignore_index,
                         config=config)
        return grad, None, None, None, None, None


def _check(logits: torch.Tensor, ids: torch.Tensor, temperature: float, mask: torch.Tensor | None) -> None:
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point, got {logits.dtype}")
    if logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must be [..., vocab] with vocab >= 1, got shape {tuple(logits.shape)}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"ids must be int64 or int32, got {ids.dtype}")
    if tuple(ids.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"ids shape {tuple(ids.shape)} must be logits shape without vocab {tuple(logits.shape[:-1])}")
    if mask is not None and tuple(mask.shape) != tuple(ids.shape):
        raise ValueError(f"mask shape {tuple(mask.shape)} must equal ids shape {tuple(ids.shape)}")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be positive and finite, got {temperature}")


def token_logprobs_reference(logits: torch.Tensor, ids: torch.Tensor, *, temperature: float = 1.0,
                             ignore_index: int = -100, mask: torch.Tensor | None = None,
                             with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The torch reference of :func:`token_logprobs` (same arguments and results; autograd through torch ops).

    Computes in float32 (float64 for float64 logits, so ``torch.autograd.gradcheck`` applies) and materialises
    ``[..., V]`` intermediates: fine for the small vocabularies CPU runs use.
    """
    _check(logits, ids, temperature, mask)
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    vocab = logits.shape[-1]
    valid = ids != ignore_index
    if mask is not None:
        valid = valid & mask.bool()
    in_range = (ids >= 0) & (ids < vocab)
    z = torch.where(valid[..., None], logits.to(dtype) / temperature, 0.0)  # masked rows: no NaN, zero gradient
    lse = torch.logsumexp(z, dim=-1)
    picked = z.gather(-1, torch.where(valid & in_range, ids, 0).long()[..., None]).squeeze(-1)
    nan = torch.tensor(float("nan"), dtype=dtype, device=logits.device)
    logp = torch.where(valid, torch.where(in_range, picked - lse, nan), 0.0)
    if not with_entropy:
        return logp, None
    logq = z - lse[..., None]
    p = logq.exp()
    ent = -(p * torch.where(p > 0, logq, 0.0)).sum(-1)  # 0 log 0 = 0, and no NaN gradient through it
    return logp, torch.where(valid, ent, 0.0)


def _impl_for(logits: torch.Tensor, impl: str) -> str:
    if impl not in ("auto", "triton", "reference"):
        raise ValueError(f"impl must be auto, triton or reference, got {impl!r}")
    if impl == "reference":
        return "reference"
    if impl == "auto":  # CPU tensors take the reference even under the interpreter: it is ~1000x slower
        ok = triton is not None and logits.dtype in TRITON_DTYPES and logits.is_cuda
        return "triton" if ok else "reference"
    if triton is None:
        raise RuntimeError("impl='triton' needs the triton package")
    if logits.dtype not in TRITON_DTYPES:
        raise TypeError(f"the Triton path takes {', '.join(map(str, TRITON_DTYPES))}; got {logits.dtype}")
    if not logits.is_cuda and not interpreted():
        raise RuntimeError("impl='triton' on CPU tensors needs TRITON_INTERPRET=1 set before reasonpipe.kernels.logprob is "
                           f"imported (now TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET')!r}, kernels compiled)")
    return "triton"


def token_logprobs(logits: torch.Tensor, ids: torch.Tensor, *, temperature: float = 1.0, ignore_index: int = -100,
                   mask: torch.Tensor | None = None, with_entropy: bool = False, impl: str = "auto",
                   config: LaunchConfig | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token ``log softmax(logits / temperature)[ids]`` and, with ``with_entropy``, the entropy per position.

    Args:
        logits: ``[..., V]``, float32, bfloat16 or float16 (float64: reference only); only the last dimension need
            be contiguous (a slice such as ``logits[:, :-1]`` is read in place when its leading dims merge).
        ids: ``logits.shape[:-1]``, int64 or int32.
        temperature: the logits are divided by it (inside the kernel).
        ignore_index: ids equal to it give 0 for both outputs and a zero gradient row.
        mask: optional, ``ids``' shape; False acts like ``ignore_index``.
        with_entropy: also return the entropy (else None).
        impl: ``auto`` (Triton for CUDA tensors, else the reference), ``triton`` (on CPU tensors only under
            ``TRITON_INTERPRET=1``, set before import) or ``reference``.
        config: block sizes (tests and benchmarks); default :func:`launch_config`.

    Returns:
        ``(logp, entropy | None)``, float32 (float64 for float64 logits), shape of ``ids``; differentiable w.r.t.
        ``logits``.
    """
    _check(logits, ids, temperature, mask)
    if _impl_for(logits, impl) == "reference":
        return token_logprobs_reference(logits, ids, temperature=temperature, ignore_index=ignore_index, mask=mask,
                                        with_entropy=with_entropy)
    if mask is not None:
        ids = torch.where(mask.bool(), ids, torch.full_like(ids, ignore_index))
    out = TokenLogprobs.apply(logits, ids, float(temperature), int(ignore_index), bool(with_entropy), config)
    return (out[0], out[1]) if with_entropy else (out, None)
