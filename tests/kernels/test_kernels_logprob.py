"""reasonpipe.kernels.logprob: fused token log-probabilities (+ entropy) against float64 references, values and gradients.

Three layers:

- the torch reference, in this process: ``gradcheck`` in float64, values and gradients against a float64
  ``log_softmax`` at awkward shapes for each input dtype, masked rows, ``-inf`` logits, argument errors;
- the Triton code under ``TRITON_INTERPRET=1`` at tiny shapes: Triton decides when a kernel is *defined* whether it
  is interpreted, so ``test_triton_code_under_the_interpreter`` reruns this file in a subprocess with the variable
  set (tests/conftest.py's ``rerun_interpreted``), where the ``test_interp_*`` tests (marked ``triton_interpret``)
  run (here they skip);
- the compiled kernels: built for sm_90 here (Triton's compiler and bundled ptxas need no GPU; registers and spills
  checked at the default block sizes), and run at real shapes (vocab 47 and 64 with up to a million rows, 32,000,
  50,257, 151,936, 262,144) on a CUDA GPU, marked ``gpu``.

Inputs are fresh each run (seeded from the clock; a failure prints the seed, ``LOGPROB_SEED=N`` replays it).
Per-dtype tolerances apply to the gradient, which is written in the logits' dtype; the forward computes in float32
whatever the input dtype, so its tolerance is float32's against a float64 truth from the same (rounded) inputs.
"""

from __future__ import annotations

import os
import subprocess
import time
from unittest import mock

import pytest
import torch

from reasonpipe.kernels.logprob import (LaunchConfig, TokenLogprobs, interpreted, launch_config, logprob_backward,
                             logprob_forward, token_logprobs, token_logprobs_reference)

# gradient tolerances: (rtol, atol as a fraction of the largest |gradient|); the entropy term's (log p + H) cancels,
# so its float32 error is absolute-scale (seen: 2.2e-6 on a 9e-3 element at scale ~1)
GRAD_TOL = {torch.float32: (1e-4, 2e-5), torch.bfloat16: (8e-3, 1e-4), torch.float16: (2e-3, 5e-5)}


def assert_grad_close(grad: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    rtol, atol = GRAD_TOL[dtype]
    scale = float(expected.abs().max()) or 1.0
    torch.testing.assert_close(grad.double(), expected, rtol=rtol, atol=atol * scale)


@pytest.fixture
def gen() -> torch.Generator:
    seed = int(os.environ.get("LOGPROB_SEED", time.time_ns() % 2**31))
    print(f"seed {seed}: rerun with LOGPROB_SEED={seed}")  # pytest shows it when the test fails
    return torch.Generator().manual_seed(seed)


def make_case(gen: torch.Generator, shape: tuple[int, ...], vocab: int, dtype: torch.dtype, device: str = "cpu",
              masked: float = 0.25, scale: float = 4.0):
    """(logits, ids, mask, temperature, upstream grads of logp and entropy): random, some ids ignored (-100),
    some rows masked out, the rest uniformly over the vocabulary."""
    logits = (torch.randn(*shape, vocab, generator=gen) * scale).to(dtype).to(device)
    ids = torch.randint(0, vocab, shape, generator=gen)
    ids[torch.rand(shape, generator=gen) < masked / 2] = -100
    mask = torch.rand(shape, generator=gen) >= masked / 2
    if masked and ids.numel() >= 3:  # at least one row of each kind: ignored id, masked out, scored
        ids.view(-1)[0], mask.view(-1)[1], mask.view(-1)[2] = -100, False, True
        ids.view(-1)[2] = ids.view(-1)[2].clamp(min=0)
    temperature = float(0.5 + torch.rand((), generator=gen))
    w_logp, w_ent = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    return logits, ids.to(device), mask.to(device), temperature, w_logp.to(device), w_ent.to(device)


def truth(logits, ids, mask, temperature, w_logp, w_ent):
    """float64 logp, entropy and d(sum w_logp logp + w_ent entropy)/d logits, by autograd through log_softmax."""
    x = logits.detach().double().requires_grad_(True)
    valid = (ids != -100) & mask
    logq = torch.log_softmax(x / temperature, -1)
    lp = logq.gather(-1, ids.clamp(min=0)[..., None]).squeeze(-1)
    ent = -(logq.exp() * logq).sum(-1)
    lp, ent = torch.where(valid, lp, 0.0), torch.where(valid, ent, 0.0)
    (grad,) = torch.autograd.grad((lp * w_logp.double()).sum() + (ent * w_ent.double()).sum(), x)
    return lp.detach(), ent.detach(), grad


def truth_analytic(logits, ids, mask, temperature, w_logp, w_ent, chunk: int = 512):
    """The same as :func:`truth` by the closed-form gradient, in float64 row chunks (GPU-sized inputs)."""
    v = logits.shape[-1]
    x2, ids1, valid1 = logits.reshape(-1, v), ids.reshape(-1), ((ids != -100) & mask).reshape(-1)
    w1, w2 = w_logp.reshape(-1).double(), w_ent.reshape(-1).double()
    lps, ents, grads = [], [], []
    for a in range(0, x2.shape[0], chunk):
        logq = torch.log_softmax(x2[a:a + chunk].double() / temperature, -1)
        p = logq.exp()
        idc, val = ids1[a:a + chunk].clamp(min=0), valid1[a:a + chunk]
        lp = logq.gather(-1, idc[:, None]).squeeze(-1)
        ent = -(p * logq).sum(-1)
        onehot = torch.nn.functional.one_hot(idc, v).double()
        g = (w1[a:a + chunk, None] * (onehot - p) - w2[a:a + chunk, None] * p * (logq + ent[:, None])) / temperature
        lps.append(torch.where(val, lp, 0.0))
        ents.append(torch.where(val, ent, 0.0))
        grads.append(torch.where(val[:, None], g, 0.0))
    return (torch.cat(lps).view(ids.shape), torch.cat(ents).view(ids.shape), torch.cat(grads).view(logits.shape))


def check(case, impl: str, config: LaunchConfig | None = None, use: str = "both", truth_fn=truth) -> None:
    """Forward and gradient of ``token_logprobs`` against the float64 truth; masked rows exactly 0."""
    logits, ids, mask, temperature, w_logp, w_ent = case
    x = logits.detach().clone().requires_grad_(True)
    lp, ent = token_logprobs(x, ids, temperature=temperature, mask=mask, with_entropy=True, impl=impl, config=config)
    assert lp.dtype == ent.dtype == torch.float32 and lp.shape == ent.shape == ids.shape
    loss = {"both": (lp * w_logp).sum() + (ent * w_ent).sum(), "logp": (lp * w_logp).sum(),
            "entropy": (ent * w_ent).sum()}[use]
    (grad,) = torch.autograd.grad(loss, x)
    assert grad.dtype == logits.dtype and grad.shape == logits.shape
    t_lp, t_ent, t_grad = truth_fn(logits, ids, mask, temperature, w_logp * (use != "entropy"),
                                   w_ent * (use != "logp"))
    torch.testing.assert_close(lp.double(), t_lp, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ent.double(), t_ent, rtol=1e-5, atol=1e-5)
    assert_grad_close(grad, t_grad, logits.dtype)
    off = (ids == -100) | ~mask
    assert off.any() and (~off).any()
    assert (lp[off] == 0).all() and (ent[off] == 0).all() and (grad[off] == 0).all()
    assert torch.isfinite(lp).all() and torch.isfinite(ent).all() and torch.isfinite(grad).all()


# --- the torch reference (this process) -------------------------------------------------------------------------

def test_reference_gradcheck_float64(gen):
    logits, ids, mask, temperature, _, _ = make_case(gen, (2, 3), 7, torch.float64)
    ids[0, 0], mask[0, 1], ids[1, 2] = -100, False, 3  # at least one of each kind of row

    def f(x):
        return token_logprobs_reference(x, ids, temperature=temperature, mask=mask, with_entropy=True)

    assert torch.autograd.gradcheck(f, (logits.requires_grad_(True),))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_reference_against_float64_at_awkward_shape(gen, dtype):
    check(make_case(gen, (3, 47), 123, dtype), impl="reference")


def test_closed_form_gradient_equals_autograd(gen):
    """The GPU tests' chunked closed-form truth is the autograd truth."""
    case = make_case(gen, (5, 9), 37, torch.float32)
    for a, b in zip(truth(*case), truth_analytic(*case, chunk=7)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_reference_masked_rows_never_nan(gen):
    logits, ids, mask, temperature, w_logp, w_ent = make_case(gen, (4, 6), 40, torch.float32)
    off = (ids == -100) | ~mask
    logits[off] = float("nan")
    logits[off.nonzero()[0].tolist()][:3] = float("inf")
    x = logits.requires_grad_(True)
    lp, ent = token_logprobs(x, ids, temperature=temperature, mask=mask, with_entropy=True)
    (grad,) = torch.autograd.grad((lp * w_logp).sum() + (ent * w_ent).sum(), x)
    assert (lp[off] == 0).all() and (ent[off] == 0).all() and (grad[off] == 0).all()
    assert torch.isfinite(lp).all() and torch.isfinite(ent).all() and torch.isfinite(grad).all()


def test_reference_banned_tokens_minus_inf_logits(gen):
    """-inf logits (banned tokens) that are not the target: finite logp, entropy and gradient, equal to dropping
    those columns."""
    logits, ids, mask, temperature, w_logp, w_ent = make_case(gen, (3, 5), 30, torch.float32, masked=0)
    ids = ids.clamp(max=19)
    banned = logits.clone()
    banned[..., 20:] = float("-inf")
    x = banned.requires_grad_(True)
    lp, ent = token_logprobs(x, ids, temperature=temperature, with_entropy=True)
    (grad,) = torch.autograd.grad((lp * w_logp).sum() + (ent * w_ent).sum(), x)
    t_lp, t_ent, t_grad = truth(logits[..., :20], ids, torch.ones_like(mask), temperature, w_logp, w_ent)
    torch.testing.assert_close(lp.double(), t_lp, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ent.double(), t_ent, rtol=1e-5, atol=1e-5)
    assert_grad_close(grad[..., :20], t_grad, torch.float32)
    assert (grad[..., 20:] == 0).all()


def test_out_of_range_id_is_nan_not_a_number():
    logits = torch.randn(2, 16)
    lp, _ = token_logprobs(logits, torch.tensor([3, 16]))
    assert torch.isfinite(lp[0]) and torch.isnan(lp[1])


def test_argument_errors():
    x = torch.randn(2, 3, 8)
    with pytest.raises(ValueError, match="ids shape"):
        token_logprobs(x, torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        token_logprobs(x, torch.zeros(2, 3, dtype=torch.long), temperature=0.0)
    with pytest.raises(TypeError, match="ids must be"):
        token_logprobs(x, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="mask shape"):
        token_logprobs(x, torch.zeros(2, 3, dtype=torch.long), mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="impl"):
        token_logprobs(x, torch.zeros(2, 3, dtype=torch.long), impl="cuda")
    if not interpreted():
        with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
            token_logprobs(x, torch.zeros(2, 3, dtype=torch.long), impl="triton")


def test_cpu_auto_runs_the_reference():
    x = torch.randn(2, 3, 8)
    with mock.patch.object(TokenLogprobs, "apply", side_effect=AssertionError("Triton path on CPU")):
        lp, ent = token_logprobs(x, torch.zeros(2, 3, dtype=torch.long))
    assert ent is None and lp.shape == (2, 3)


def test_launch_config_tiles_and_one_dimensional_grid():
    small = launch_config(1_000_000, 64)
    assert small.block_v == 64 and small.block_rows >= 32  # many rows per program at a small vocabulary
    big = launch_config(16_384, 151_936)
    assert big.block_rows == 1 and big.block_v <= 8192  # one row per program, a loop over vocabulary chunks
    assert launch_config(5, 50).block_v == 64  # a vocabulary smaller than the block
    assert launch_config(65_536, 47, aligned=False).block_rows <= 16  # unaligned rows: fewer per program
    back = launch_config(8, 151_936, backward=True)
    assert back.splits > 1  # few rows: the backward splits the vocabulary across programs
    assert launch_config(16_384, 151_936, backward=True).splits == 1


def _compile_sm90(kernel, ints: dict[str, int], constexprs: dict, num_warps: int, dtype: str = "bf16") -> str:
    """Compile ``kernel`` for sm_90 as Triton's launcher would specialise it (16-divisible pointers and ints get
    the divisibility hint; no GPU needed), and return ptxas' resource usage line ("REG:n STACK:n ...")."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    ptr = {"x_ptr": f"*{dtype}", "ids_ptr": "*i64", "grad_ptr": f"*{dtype}"}
    sig, attrs = {}, {}
    for i, name in enumerate(kernel.arg_names):
        if name in constexprs:
            sig[name] = "constexpr"
        elif name.endswith("_ptr"):
            sig[name], attrs[(i,)] = ptr.get(name, "*fp32"), [["tt.divisibility", 16]]
        elif name == "inv_temperature":
            sig[name] = "fp32"
        else:
            sig[name] = "i64" if abs(ints[name]) >= 2**31 else "i32"
            if ints[name] % 16 == 0:
                attrs[(i,)] = [["tt.divisibility", 16]]
    compiled = triton.compile(ASTSource(fn=kernel, signature=sig, constexprs=constexprs, attrs=attrs),
                              target=GPUTarget("cuda", 90, 32), options={"num_warps": num_warps})
    cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"logprob_{os.getpid()}.cubin"), "wb") as f:
        f.write(compiled.asm["cubin"])
    out = subprocess.run([cuobjdump, "--dump-resource-usage", f.name], capture_output=True, text=True).stdout
    os.unlink(f.name)
    return next(line.strip() for line in out.splitlines() if "REG:" in line)


@pytest.mark.skipif(interpreted(), reason="compiles the kernels (not interpreted ones)")
@pytest.mark.parametrize("rows,vocab", [(65_536, 64), (65_536, 47), (16_384, 151_936)])
def test_kernels_compile_for_sm90_at_default_blocks(rows, vocab):
    """The compiled (not interpreted) kernels build for an H100/H200 with the default block sizes; where rows are
    16-aligned, no register spills and at most 128 registers a thread (this is how the small-vocab layout problem
    the launch heuristic avoids was found). Skips where Triton's bundled ptxas is missing."""
    import triton

    if not os.path.exists(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")):
        pytest.skip("Triton's bundled ptxas is not here")
    from reasonpipe.kernels.logprob import _logprob_bwd_kernel, _logprob_fwd_kernel

    aligned = vocab % 16 == 0
    ints = {"n_rows": rows, "rows_per_batch": rows, "stride_b": 0, "stride_t": vocab, "vocab": vocab,
            "ignore_index": -100, "splits": 1, "chunks_per_split": 1}
    usage = []
    for kernel, backward, flags in ((_logprob_fwd_kernel, False, {"WITH_ENTROPY": True}),
                                    (_logprob_bwd_kernel, True, {"HAS_GLOGP": True, "HAS_GENT": True})):
        cfg = launch_config(rows, vocab, backward=backward, aligned=aligned)
        line = _compile_sm90(kernel, ints, {**flags, "BLOCK_ROWS": cfg.block_rows, "BLOCK_V": cfg.block_v},
                             cfg.num_warps)
        usage.append(line)
        regs = int(line.split("REG:")[1].split()[0])
        stack = int(line.split("STACK:")[1].split()[0])
        if aligned:
            assert regs <= 128 and stack == 0, (kernel.__name__, cfg, line)
    print(usage)


# --- the Triton code under the interpreter (a subprocess) -------------------------------------------------------

def test_triton_code_under_the_interpreter(rerun_interpreted):
    """Reruns this file's ``interp`` tests with TRITON_INTERPRET=1 set before reasonpipe.kernels.logprob is imported."""
    rerun_interpreted()


INTERP_CASES = [  # (rows shape, vocab, dtype, config): each kind of tiling at a tiny size
    ((3, 47), 123, torch.float32, None),  # default: 32 rows x 128 columns, vocab not a multiple of the block
    ((3, 47), 123, torch.bfloat16, LaunchConfig(4, 32, splits=2)),  # several chunks, split backward
    ((200,), 64, torch.float16, None),  # vocab 64, many rows per program, last block partial
    ((5,), 50, torch.float32, LaunchConfig(2, 64)),  # vocab smaller than the block
    ((2, 3, 4), 300, torch.bfloat16, LaunchConfig(1, 64, splits=3)),  # 4-D, one row a program, 5 chunks
]


@pytest.mark.triton_interpret
@pytest.mark.parametrize("shape,vocab,dtype,config", INTERP_CASES)
def test_interp_against_float64(gen, shape, vocab, dtype, config):
    check(make_case(gen, shape, vocab, dtype), impl="triton", config=config)


@pytest.mark.triton_interpret
@pytest.mark.parametrize("use", ["logp", "entropy"])
def test_interp_one_output_in_the_loss(gen, use):
    check(make_case(gen, (4, 7), 45, torch.float32), impl="triton", config=LaunchConfig(4, 16), use=use)


@pytest.mark.triton_interpret
def test_interp_reads_a_slice_in_place(gen):
    """``logits[:, :-1]`` (what a causal LM's scoring takes) is read through its strides, not copied."""
    from reasonpipe.kernels.logprob import _rows_view

    full = (torch.randn(2, 9, 70, generator=gen) * 3).requires_grad_(True)
    part = full[:, :-1]
    assert _rows_view(part)[0].data_ptr() == full.data_ptr()
    _, ids, mask, temperature, w_logp, w_ent = make_case(gen, (2, 8), 70, torch.float32)
    lp, ent = token_logprobs(part, ids, mask=mask, temperature=temperature, with_entropy=True, impl="triton",
                             config=LaunchConfig(4, 32))
    (grad,) = torch.autograd.grad((lp * w_logp).sum() + (ent * w_ent).sum(), full)
    t_lp, t_ent, t_grad = truth(part, ids, mask, temperature, w_logp, w_ent)
    torch.testing.assert_close(lp.double(), t_lp, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ent.double(), t_ent, rtol=1e-5, atol=1e-5)
    assert_grad_close(grad[:, :-1], t_grad, torch.float32)
    assert (grad[:, -1] == 0).all()


@pytest.mark.triton_interpret
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_interp_poisoned_buffers_are_all_written(gen, dtype):
    """Outputs and gradient filled with NaN before the launch: every element is written, masked rows with 0."""
    logits, ids, mask, temperature, w_logp, w_ent = make_case(gen, (37,), 75, dtype, masked=0.4)
    ids = torch.where(mask, ids, -100).contiguous()
    off = ids == -100
    logits[off] = float("nan")  # never read
    n = ids.numel()
    logp, ent, lse = (torch.full((n,), float("nan")) for _ in range(3))
    cfg = LaunchConfig(8, 32, splits=2)
    logprob_forward(logits, ids, logp, ent, lse, temperature=temperature, config=cfg)
    assert torch.isfinite(logp).all() and torch.isfinite(ent).all() and torch.isfinite(lse).all()
    assert (logp[off] == 0).all() and (ent[off] == 0).all()
    grad = torch.full(logits.shape, float("nan"), dtype=dtype)
    logprob_backward(logits, ids, lse, ent, w_logp, w_ent, grad, temperature=temperature, config=cfg)
    assert torch.isfinite(grad).all() and (grad[off] == 0).all()
    t_lp, t_ent, t_grad = truth(logits.nan_to_num(0.0), ids, torch.ones_like(mask), temperature, w_logp, w_ent)
    torch.testing.assert_close(logp.double(), t_lp, rtol=1e-5, atol=1e-5)
    assert_grad_close(grad, t_grad, dtype)


@pytest.mark.triton_interpret
def test_interp_masked_rows_and_minus_inf_logits(gen):
    logits, ids, mask, temperature, w_logp, w_ent = make_case(gen, (6, 5), 40, torch.float32)
    off = (ids == -100) | ~mask
    logits[off] = float("inf")
    logits[~off] = logits[~off].index_fill(-1, torch.tensor([0, 7, 39]), float("-inf"))
    ids = torch.where(torch.isin(ids, torch.tensor([0, 7, 39])), 5, ids)
    outs = []
    for impl in ("triton", "reference"):
        x = logits.clone().requires_grad_(True)
        lp, ent = token_logprobs(x, ids, mask=mask, temperature=temperature, with_entropy=True, impl=impl,
                                 config=LaunchConfig(4, 16) if impl == "triton" else None)
        (grad,) = torch.autograd.grad((lp * w_logp).sum() + (ent * w_ent).sum(), x)
        assert torch.isfinite(lp).all() and torch.isfinite(ent).all() and torch.isfinite(grad).all()
        assert (lp[off] == 0).all() and (ent[off] == 0).all() and (grad[off] == 0).all()
        outs.append((lp, ent, grad))
    (lp, ent, grad), (lp_ref, ent_ref, grad_ref) = outs
    torch.testing.assert_close(lp, lp_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ent, ent_ref, rtol=1e-5, atol=1e-6)
    # the gradient sums two fp32 terms of opposite sign per element (seed 866671333 put one 5.3e-6 apart)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.triton_interpret
def test_interp_int32_ids_and_out_of_range():
    logits = torch.randn(3, 20)
    lp, _ = token_logprobs(logits, torch.tensor([4, 20, -100], dtype=torch.int32), impl="triton")
    ref, _ = token_logprobs_reference(logits, torch.tensor([4, 20, -100]))
    assert torch.isnan(lp[1]) and lp[2] == 0
    torch.testing.assert_close(lp[0], ref[0])


# --- the compiled kernels (a CUDA GPU) ---------------------------------------------------------------------------

GPU_CASES = [  # (rows, vocab, dtype): the benchmark's shapes, fewer rows where the float64 truth is large
    (65_536, 64, torch.bfloat16),
    (65_536, 47, torch.bfloat16),  # our CountDown tokenizer: rows not 16-aligned
    (2048, 50_257, torch.float16),  # GPT-2's vocabulary: large and unaligned
    (1_000_000, 64, torch.bfloat16),  # more row blocks than a 65,535 grid dimension would allow at 16 rows each
    (4096, 32_000, torch.float16),
    (2048, 151_936, torch.bfloat16),
    (512, 262_144, torch.float32),
]


@pytest.mark.gpu
@pytest.mark.parametrize("rows,vocab,dtype", GPU_CASES)
def test_gpu_compiled_against_float64(gen, rows, vocab, dtype):
    case = make_case(gen, (rows,), vocab, dtype, device="cuda")
    check(case, impl="triton", truth_fn=lambda *a: truth_analytic(*a, chunk=max(1, (1 << 27) // vocab)))


@pytest.mark.gpu
@pytest.mark.parametrize("rows,vocab,dtype", [(1_000_000, 64, torch.bfloat16), (1024, 151_936, torch.bfloat16)])
def test_gpu_poisoned_buffers_are_all_written(gen, rows, vocab, dtype):
    logits, ids, mask, temperature, w_logp, w_ent = make_case(gen, (rows,), vocab, dtype, device="cuda")
    ids = torch.where(mask, ids, -100).contiguous()
    logits[ids == -100] = float("nan")
    logp, ent, lse = (torch.full((rows,), float("nan"), device="cuda") for _ in range(3))
    logprob_forward(logits, ids, logp, ent, lse, temperature=temperature)
    grad = torch.full(logits.shape, float("nan"), dtype=dtype, device="cuda")
    logprob_backward(logits, ids, lse, ent, w_logp, w_ent, grad, temperature=temperature)
    torch.cuda.synchronize()
    for t in (logp, ent, lse, grad):
        assert torch.isfinite(t).all()
    assert (grad[ids == -100] == 0).all()
