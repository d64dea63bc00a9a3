"""Row fingerprints ("mix64"): one 128-bit fingerprint per row of an ``[n, k]`` tensor, reading it once.

The functional-hash cache (``reasonpipe.fhash``) hashes many candidates' output rows; BLAKE2b over the
canonical bytes costs a Python call per row. This module fingerprints every row in one memory-bound pass: a
Triton kernel on CUDA, and a vectorised numpy reference elsewhere that gives IDENTICAL bits. Use it through
``reasonpipe.fhash.hash_rows(outputs, algo="mix64")``, or directly::

    fp = fingerprint_rows(x, float_bits=32, header=b"my-task")  # int64 [n, 2] holding uint64 bits
    keys = fingerprints_to_bytes(fp)                              # 16 bytes per row

What a row's fingerprint is (the definition both implementations follow):

1. **Canonical values.** Each element gets canonical bits by the rules of ``reasonpipe.fhash``: every NaN is
   one value, ``-0.0`` equals ``0.0``, and a float keeps ``float_bits`` of a double's 52 mantissa bits
   (truncated after widening to float64, so values group exactly as in ``functional_hash``). 64-bit dtypes
   (int64, uint64, float64) give one 64-bit value per element. Every other dtype gives one 32-bit word per
   element (signed ints sign-extended, unsigned ints and bool zero-extended; float16, bfloat16 and float32
   as the float32 holding their canonical value, NaN as 0x7FC00000), and each pair of words makes one value
   ``v = w[2i] | w[2i+1] << 32`` (an odd row is padded with a zero word).
2. **Seeds.** BLAKE2b of ``mix64-v1``, the dtype's name, the row length ``k`` and the caller's ``header``,
   keyed with the caller's ``key`` (e.g. a namespace key), gives four 64-bit seeds ``sa, sb, fa, fb``
   (``n`` is not among them: a row's fingerprint does not depend on the other rows).
3. **Per value.** ``mix`` (below) is SplitMix64's finaliser (Stafford's "Mix13": xor-shift 30, multiply,
   xor-shift 27, multiply, xor-shift 31), a bijection of 64-bit words in which each input bit flips each
   output bit with probability close to 1/2. Position ``j`` has a key ``ka_j = mix(sa + j*G)`` and an odd
   multiplier ``mb_j = mix(sb + j*G) | 1`` (``G = 0x9E3779B97F4A7C15``, SplitMix64's increment), so order
   matters. Value ``j`` of a row gives ``h_j = mix(v_j ^ ka_j)``; lane A is ``sum(h_j)`` and lane B is
   ``sum(mb_j * h_j)``, both modulo 2**64 (one ``mix`` per value: the second lane costs one multiply).
4. **Final avalanche.** The fingerprint is ``(mix(A ^ fa), mix(B ^ fb))``, written as 16 little-endian bytes.

Collision properties, honestly: this is a fast NON-cryptographic fingerprint. Two rows that differ in exactly
one 64-bit value always get different fingerprints (``mix`` is a bijection, so lane A changes). Otherwise
the differences ``d_j = h'_j - h_j`` at the positions that differ look random, and a collision needs both
``sum(d_j) = 0`` and ``sum(mb_j * d_j) = 0`` modulo 2**64: for data not built to collide, about 2**-126 per
pair of rows (a heuristic, not a proof: ``mix`` is not a random function, and a few bits are lost to the
multipliers' common factor 2). By the birthday bound, 2**50 distinct rows would still collide with
probability below 2**-26. Anyone who wants a collision can make one (``mix`` is invertible, and sums of keyed
terms fall to generalised-birthday attacks even with a secret key), so do not use it where an adversary
chooses the rows; ``algo="blake2b"`` is for that.

Layout and speed: one program per tile of ``BLOCK_R`` rows, walking the row in chunks of ``BLOCK_C`` values
with elementwise lane sums (one reduction across threads per tile, at the end), on a 1-D grid of at most
65,535 programs (programs loop over the tiles beyond that, so no grid dimension grows with ``n`` or ``k``). The position keys are computed
once per call into a small table (``kv`` x 16 bytes, read from cache). When rows are too few to fill the GPU
the columns are split too, and a second small kernel adds the per-split lane sums (integer sums modulo 2**64
are exact in any order, so the result is deterministic). Each input word is read once; compiled for sm_90
the loop is about 18 instructions per 32-bit word (SASS of a 128 x 16 int32 tile), where the SMs can issue
about 30 (H200) to 45 (H100) per word read at copy bandwidth. Dtypes narrower than 32 bits are widened to a word each,
so uint8/bool/16-bit inputs are compute-bound rather than memory-bound. Block sizes are untuned guesses
until ``benchmarks/kernels_fhash.py`` has run on a GPU.

Example (the CPU reference; on a CUDA tensor the kernel runs and gives the same bits)::

    python -c "import torch; from reasonpipe.kernels.fhash import fingerprint_rows, fingerprints_to_bytes as b; print([h.hex()[:8] for h in b(fingerprint_rows(torch.arange(6).view(3, 2)))])"
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the reference still works; fingerprint_rows on CUDA says what is missing
    triton = None

ALGO_VERSION = b"mix64-v1"
GOLDEN = 0x9E3779B97F4A7C15  # SplitMix64's increment: 2**64 / golden ratio, odd
CANONICAL_NAN32 = 0x7FC00000  # float32 quiet NaN; widened to float64 it is reasonpipe.fhash's canonical NaN
CANONICAL_NAN64 = 0x7FF8000000000000
SIGN32 = 0x80000000  # -0.0 as float32 bits
SIGN64 = 0x8000000000000000
_TILE_VALUES = 2048  # values (64-bit) per program tile: 16 KB of input for 32-bit dtypes; untuned
_BLOCK_COLS = 16  # values per row and chunk (128 bytes): few threads share a row, so its final sum is cheap; untuned
_MAX_ROWS, _MAX_COLS = (1 << 31) - (1 << 16), 1 << 30
_REF_CHUNK = 1 << 20  # values per chunk of the numpy reference (bounds its temporaries to ~30 MB)

_WORD64 = {"int64", "uint64", "float64"}
_SUPPORTED = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "bfloat16", "float32", "float64"}


def mix(x):
    """SplitMix64's finaliser (Stafford Mix13) on uint64: the ONE mixing function of this module.

    Written with operators only, so the same source runs on numpy ``uint64`` arrays (the reference) and,
    wrapped by ``triton.jit``, on Triton ``uint64`` tensors (the kernel); both wrap modulo 2**64.
    """
    x = x ^ (x >> 30)
    x = x * 0xBF58476D1CE4E5B9
    x = x ^ (x >> 27)
    x = x * 0x94D049BB133111EB
    x = x ^ (x >> 31)
    return x


def float_mask(float_bits: int) -> int:
    """The mask keeping sign, exponent and the top ``float_bits`` mantissa bits of a float64 (as reasonpipe.fhash)."""
    if not 0 <= float_bits <= 52:
        raise ValueError(f"float_bits must be 0..52, got {float_bits}")
    return ~((1 << (52 - float_bits)) - 1) & 0xFFFFFFFFFFFFFFFF


def dtype_name(x: Any) -> str:
    """``int32``, ``bfloat16``, ... for a torch tensor or a numpy array."""
    if isinstance(x, torch.Tensor):
        return str(x.dtype).removeprefix("torch.")
    return np.asarray(x).dtype.name


def seeds(dtype: str, k: int, header: bytes = b"", key: bytes = b"") -> tuple[int, int, int, int]:
    """``(sa, sb, fa, fb)``: the lane and final seeds for rows of ``k`` elements of ``dtype``."""
    material = b"%s|%s|%d|%s" % (ALGO_VERSION, dtype.encode(), k, bytes(header))
    d = hashlib.blake2b(material, digest_size=32, key=bytes(key), person=b"reasonpipe-mx64").digest()
    return tuple(int.from_bytes(d[i:i + 8], "little") for i in range(0, 32, 8))


def _check(x: Any) -> str:
    name = dtype_name(x)
    if name not in _SUPPORTED:
        raise TypeError(f"mix64 fingerprints take {', '.join(sorted(_SUPPORTED))}; got {name}")
    if len(x.shape) != 2:
        raise ValueError(f"fingerprints need a 2-D [n, k] input, got shape {tuple(x.shape)}")
    if x.shape[0] >= _MAX_ROWS or x.shape[1] >= _MAX_COLS:  # the kernel's 32-bit row and column indices
        raise ValueError(f"at most {_MAX_ROWS - 1} rows of {_MAX_COLS - 1} elements, got {tuple(x.shape)}")
    return name


# ---------------------------------------------------------------------------------------------- reference


def _canonical_values(a: np.ndarray, name: str, float_bits: int) -> np.ndarray:
    """The ``[n, kv]`` uint64 values of step 1 (see the module docstring) for a 2-D array of dtype ``name``."""
    a = a.astype(a.dtype.newbyteorder("="), copy=False)
    if a.dtype.kind == "f":
        with np.errstate(invalid="ignore"):  # signalling NaNs warn; they become the canonical NaN below
            d = a.astype(np.float64)
            nan = np.isnan(d)
            d = d + 0.0  # turns -0.0 into 0.0
        bits = d.view(np.uint64) & np.uint64(float_mask(float_bits))
        if name == "float64":
            return np.where(nan, np.uint64(CANONICAL_NAN64), bits)
        words = bits.view(np.float64).astype(np.float32).view(np.uint32)  # exact: truncation only drops bits
        words = np.where(nan, np.uint32(CANONICAL_NAN32), words)
    elif name in _WORD64:
        return np.ascontiguousarray(a).view(np.uint64)
    elif a.dtype.kind == "b" or a.dtype.kind == "u":
        words = a.astype(np.uint32)
    else:
        words = a.astype(np.int32).view(np.uint32)  # sign-extends
    n, k = words.shape
    if k % 2:
        words = np.concatenate([words, np.zeros((n, 1), np.uint32)], axis=1)
    w = words.astype(np.uint64)
    return w[:, 0::2] | (w[:, 1::2] << np.uint64(32))


def reference_fingerprints(x: Any, float_bits: int = 32, header: bytes = b"", key: bytes = b"") -> np.ndarray:
    """The fingerprints of the rows of ``x`` (2-D torch tensor or numpy array) as a numpy ``uint64 [n, 2]``."""
    if not isinstance(x, torch.Tensor):
        x = np.asarray(x)
    name = _check(x)
    float_mask(float_bits)  # validates
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        a = (t.float() if t.dtype == torch.bfloat16 else t).numpy()  # bfloat16 -> float32 is exact
    else:
        a = x
    n, k = a.shape
    sa, sb, fa, fb = seeds(name, k, header, key)
    kv = (k if name in _WORD64 else (k + 1) // 2)
    ka, mb = position_keys(sa, sb, kv)
    out = np.empty((n, 2), np.uint64)
    step = max(1, _REF_CHUNK // max(kv, 1))
    for r0 in range(0, n, step):
        h = mix(_canonical_values(a[r0:r0 + step], name, float_bits) ^ ka)
        lane_a = np.add.reduce(h, axis=1, dtype=np.uint64)  # wraps modulo 2**64
        lane_b = np.add.reduce(h * mb, axis=1, dtype=np.uint64)
        out[r0:r0 + step, 0] = mix(lane_a ^ np.uint64(fa))
        out[r0:r0 + step, 1] = mix(lane_b ^ np.uint64(fb))
    return out


def position_keys(sa: int, sb: int, kv: int) -> tuple[np.ndarray, np.ndarray]:
    """``ka[j] = mix(sa + j*G)`` and the odd multipliers ``mb[j] = mix(sb + j*G) | 1`` (uint64, j < kv)."""
    pos = np.arange(kv, dtype=np.uint64) * np.uint64(GOLDEN)
    return mix(np.uint64(sa) + pos), mix(np.uint64(sb) + pos) | np.uint64(1)


# ---------------------------------------------------------------------------------------------- Triton

if triton is not None:
    _mix_tl = triton.jit(mix)
    # a kernel may only read globals that are constexpr
    _GOLDEN_C = tl.constexpr(GOLDEN)
    _NAN32_C = tl.constexpr(CANONICAL_NAN32)
    _NAN64_C = tl.constexpr(CANONICAL_NAN64)
    _SIGN32_C = tl.constexpr(SIGN32)
    _SIGN64_C = tl.constexpr(SIGN64)

    @triton.jit
    def _values(x_ptr, rows, c0, row_ok, k, stride, WORDS32: tl.constexpr, KIND: tl.constexpr,
                ZEXT: tl.constexpr, TRUNC_F32: tl.constexpr, fmask, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
        """The canonical uint64 values ``[BLOCK_R, BLOCK_C]`` from value column ``c0`` on (step 1)."""
        base = rows.to(tl.int64)[:, None] * stride
        if WORDS32:
            wcols = 2 * c0 + tl.arange(0, 2 * BLOCK_C)
            raw = tl.load(x_ptr + base + wcols[None, :], mask=row_ok[:, None] & (wcols < k)[None, :], other=0)
            if KIND >= 2:  # float16 / float32 (2), bfloat16 (3)
                if KIND == 3:  # bfloat16 travels as int16 bits: its float32 is those bits shifted up (exact)
                    f = (raw.to(tl.int32) << 16).to(tl.float32, bitcast=True)
                else:
                    f = raw.to(tl.float32)
                if TRUNC_F32:  # float_bits < 23: truncate as float64 (subnormals too), back to float32 exactly
                    d = (f.to(tl.float64).to(tl.uint64, bitcast=True) & fmask).to(tl.float64, bitcast=True)
                    g = d.to(tl.float32)
                else:  # float_bits >= 23 keeps every bit a float32 has: nothing to truncate
                    g = f
                w = g.to(tl.uint32, bitcast=True)
                w = tl.where(w == _SIGN32_C, tl.zeros_like(w), w)
                w = tl.where(f != f, tl.full(w.shape, _NAN32_C, tl.uint32), w)
            else:  # integers, viewed as signed by the launcher: sign-extend, then mask to zero-extend unsigned
                w = raw.to(tl.int32).to(tl.uint32, bitcast=True) & ZEXT
            lo, hi = tl.split(tl.reshape(w.to(tl.uint64), [BLOCK_R, BLOCK_C, 2]))
            return lo | (hi << 32)
        else:
            cols = c0 + tl.arange(0, BLOCK_C)
            raw = tl.load(x_ptr + base + cols[None, :], mask=row_ok[:, None] & (cols < k)[None, :], other=0)
            b = raw.to(tl.uint64, bitcast=True)
            if KIND == 2:  # float64: -0.0 -> 0.0 before truncating (a truncated negative subnormal keeps its sign)
                b = tl.where(b == _SIGN64_C, tl.zeros_like(b), b) & fmask
                b = tl.where(raw != raw, tl.full(b.shape, _NAN64_C, tl.uint64), b)
            return b

    @triton.jit
    def _keys_kernel(seed_ptr, keys_ptr, kv, BLOCK: tl.constexpr):
        """The position keys ``keys[j] = (ka[j], mb[j])`` of :func:`position_keys`, as int64 pairs."""
        sa = tl.load(seed_ptr + 0).to(tl.uint64, bitcast=True)
        sb = tl.load(seed_ptr + 1).to(tl.uint64, bitcast=True)
        for start in range(tl.program_id(0) * BLOCK, kv, tl.num_programs(0) * BLOCK):
            j = start + tl.arange(0, BLOCK)
            p = j.to(tl.uint64) * _GOLDEN_C
            dst = keys_ptr + j.to(tl.int64) * 2
            tl.store(dst, _mix_tl(sa + p).to(tl.int64, bitcast=True), mask=j < kv)
            tl.store(dst + 1, (_mix_tl(sb + p) | 1).to(tl.int64, bitcast=True), mask=j < kv)

    @triton.jit
    def _accumulate(acc_a, acc_b, x_ptr, keys_ptr, rows, c0, c_end, row_ok, k, stride, fmask, WORDS32: tl.constexpr,
                    KIND: tl.constexpr, ZEXT: tl.constexpr, TRUNC_F32: tl.constexpr, MASK_COLS: tl.constexpr,
                    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
        """Add value columns ``c0 .. c0 + BLOCK_C`` of the block's rows to the elementwise lane sums (step 3)."""
        cols = c0 + tl.arange(0, BLOCK_C)
        if MASK_COLS:
            ka = tl.load(keys_ptr + cols * 2, mask=cols < c_end, other=0).to(tl.uint64, bitcast=True)
            mb = tl.load(keys_ptr + cols * 2 + 1, mask=cols < c_end, other=0).to(tl.uint64, bitcast=True)
        else:
            ka = tl.load(keys_ptr + cols * 2).to(tl.uint64, bitcast=True)
            mb = tl.load(keys_ptr + cols * 2 + 1).to(tl.uint64, bitcast=True)
        v = _values(x_ptr, rows, c0, row_ok, k, stride, WORDS32, KIND, ZEXT, TRUNC_F32, fmask, BLOCK_R, BLOCK_C)
        h = _mix_tl(v ^ ka[None, :])
        if MASK_COLS:  # rows past n need no mask: their sums are never stored
            h = tl.where((cols < c_end)[None, :], h, tl.zeros_like(h))
        return acc_a + h, acc_b + h * mb[None, :]

    @triton.jit
    def _rows_kernel(x_ptr, keys_ptr, out_ptr, part_ptr, seed_ptr, n, k, kv, stride, n_row_blocks, n_tiles,
                     cols_per_split, WORDS32: tl.constexpr, KIND: tl.constexpr, ZEXT: tl.constexpr,
                     TRUNC_F32: tl.constexpr, SPLIT: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
        """Lane sums of each (row block, column split) tile; finalised here, or written as partials when SPLIT."""
        fa = tl.load(seed_ptr + 2).to(tl.uint64, bitcast=True)
        fb = tl.load(seed_ptr + 3).to(tl.uint64, bitcast=True)
        fmask = tl.load(seed_ptr + 4).to(tl.uint64, bitcast=True)
        for tile in range(tl.program_id(0), n_tiles, tl.num_programs(0)):  # grid-stride over tiles
            rb = tile % n_row_blocks
            split = tile // n_row_blocks
            rows = rb * BLOCK_R + tl.arange(0, BLOCK_R)
            row_ok = rows < n
            c_begin = split * cols_per_split
            c_end = tl.minimum(kv, c_begin + cols_per_split)
            c_full = c_begin + (c_end - c_begin) // BLOCK_C * BLOCK_C
            # elementwise sums across column chunks; one reduction across threads per tile, at the end
            acc_a = tl.zeros([BLOCK_R, BLOCK_C], tl.uint64)
            acc_b = tl.zeros([BLOCK_R, BLOCK_C], tl.uint64)
            for c0 in range(c_begin, c_full, BLOCK_C):  # whole chunks: no column mask
                acc_a, acc_b = _accumulate(acc_a, acc_b, x_ptr, keys_ptr, rows, c0, c_end, row_ok, k, stride, fmask,
                                           WORDS32, KIND, ZEXT, TRUNC_F32, False, BLOCK_R, BLOCK_C)
            if c_full < c_end:  # the last, partial chunk of the row (or of the split)
                acc_a, acc_b = _accumulate(acc_a, acc_b, x_ptr, keys_ptr, rows, c_full, c_end, row_ok, k, stride,
                                           fmask, WORDS32, KIND, ZEXT, TRUNC_F32, True, BLOCK_R, BLOCK_C)
            lane_a = tl.sum(acc_a, axis=1)
            lane_b = tl.sum(acc_b, axis=1)
            if SPLIT:
                dst = part_ptr + (split.to(tl.int64) * n + rows) * 2
                tl.store(dst, lane_a.to(tl.int64, bitcast=True), mask=row_ok)
                tl.store(dst + 1, lane_b.to(tl.int64, bitcast=True), mask=row_ok)
            else:
                dst = out_ptr + rows.to(tl.int64) * 2
                tl.store(dst, _mix_tl(lane_a ^ fa).to(tl.int64, bitcast=True), mask=row_ok)
                tl.store(dst + 1, _mix_tl(lane_b ^ fb).to(tl.int64, bitcast=True), mask=row_ok)

    @triton.jit
    def _finish_kernel(part_ptr, out_ptr, seed_ptr, n, n_splits, BLOCK: tl.constexpr):
        """Add the per-split lane sums of each row (modulo 2**64) and apply the final avalanche (step 4)."""
        fa = tl.load(seed_ptr + 2).to(tl.uint64, bitcast=True)
        fb = tl.load(seed_ptr + 3).to(tl.uint64, bitcast=True)
        for start in range(tl.program_id(0) * BLOCK, n, tl.num_programs(0) * BLOCK):
            rows = start + tl.arange(0, BLOCK)
            ok = rows < n
            acc_a = tl.zeros([BLOCK], tl.uint64)
            acc_b = tl.zeros([BLOCK], tl.uint64)
            for s in range(0, n_splits):
                src = part_ptr + (s * n + rows.to(tl.int64)) * 2
                acc_a += tl.load(src, mask=ok, other=0).to(tl.uint64, bitcast=True)
                acc_b += tl.load(src + 1, mask=ok, other=0).to(tl.uint64, bitcast=True)
            dst = out_ptr + rows.to(tl.int64) * 2
            tl.store(dst, _mix_tl(acc_a ^ fa).to(tl.int64, bitcast=True), mask=ok)
            tl.store(dst + 1, _mix_tl(acc_b ^ fb).to(tl.int64, bitcast=True), mask=ok)


def interpreted() -> bool:
    """True when this module's kernels were defined under ``TRITON_INTERPRET=1`` (they then run on CPU tensors)."""
    if triton is None:
        return False
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(_rows_kernel, InterpretedFunction)


def _signed(u: int) -> int:
    return u - (1 << 64) if u >= 1 << 63 else u


def _pow2(x: int) -> int:
    return 1 << max(0, (x - 1).bit_length())


def fingerprint_rows_triton(x: torch.Tensor, float_bits: int = 32, header: bytes = b"", key: bytes = b"", *,
                            tile_values: int = _TILE_VALUES, block_cols: int | None = None,
                            max_programs: int | None = None, splits: int | None = None,
                            num_warps: int = 4, out: torch.Tensor | None = None) -> torch.Tensor:
    """The Triton kernel: fingerprints of the rows of a 2-D tensor as ``int64 [n, 2]`` on its device.

    Runs compiled on CUDA tensors, and on CPU tensors only under ``TRITON_INTERPRET=1`` (tests). The keyword
    knobs are for tests and benchmarks: values per tile, values per tile row, the most programs (default
    65,535 on CUDA, 4 on the interpreter; programs loop over the tiles beyond), column splits (default:
    enough for 4 tiles per multiprocessor when rows are few), warps per program; ``out`` is written in place
    (tests poison it first).
    """
    if triton is None:
        raise RuntimeError("the mix64 kernel needs triton (pip install triton); the CPU reference does not")
    name = _check(x)
    mask = float_mask(float_bits)
    if not x.is_cuda and not interpreted():
        raise RuntimeError("the mix64 kernel runs on CUDA tensors, or on CPU tensors with TRITON_INTERPRET=1 set "
                           "before reasonpipe.kernels.fhash is imported; fingerprint_rows runs the reference on CPU")
    n, k = x.shape
    if out is None:
        out = torch.empty((n, 2), dtype=torch.int64, device=x.device)
    elif out.shape != (n, 2) or out.dtype != torch.int64 or out.device != x.device or not out.is_contiguous():
        raise ValueError(f"out must be a contiguous int64 [{n}, 2] tensor on {x.device}, got {out.dtype} "
                         f"{tuple(out.shape)} on {out.device}")
    if n == 0:
        return out
    if k and x.stride(1) != 1:
        x = x.contiguous()
    words32 = name not in _WORD64
    kind = {"bfloat16": 3}.get(name, 2 if name.startswith("float") else 0)
    if kind == 3:  # bfloat16 as its bits (the interpreter's own conversion flushes subnormals)
        x = x.view(torch.int16)
    zext = {"bool": 0xFF, "uint8": 0xFF, "uint16": 0xFFFF}.get(name, 0xFFFFFFFF)
    if kind == 0:  # integers travel as signed ints of their width (same bits); ZEXT undoes sign extension
        x = x.view({1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[x.element_size()])
    kv = (k + 1) // 2 if words32 else k
    block_c = block_cols or min(_pow2(max(kv, 1)), _BLOCK_COLS)
    block_r = max(1, min(tile_values // block_c, _pow2(n)))
    n_row_blocks = triton.cdiv(n, block_r)
    # programs: one per tile up to CUDA's 65,535 (the hardware balances them; a grid capped at what fits on
    # the SMs at once would not know the occupancy), looping over tiles beyond that; 4 on the interpreter
    fill = 4 * torch.cuda.get_device_properties(x.device).multi_processor_count if x.is_cuda else 4
    max_programs = min(max_programs or (65_535 if x.is_cuda else 4), 65_535)
    chunks = max(1, triton.cdiv(kv, block_c))
    if splits is None:  # too few row blocks to fill the GPU: split the columns too
        splits = 1 if n_row_blocks >= fill else min(chunks, triton.cdiv(fill, n_row_blocks))
    cols_per_split = triton.cdiv(chunks, max(1, min(splits, chunks))) * block_c
    splits = max(1, triton.cdiv(kv, cols_per_split))
    sa, sb, fa, fb = seeds(name, k, header, key)
    seed_t = torch.tensor([_signed(s) for s in (sa, sb, fa, fb, mask)], dtype=torch.int64)
    if x.is_cuda:  # pinned + non_blocking: no wait for the GPU, so back-to-back calls overlap host and device
        seed_t = seed_t.pin_memory().to(x.device, non_blocking=True)
    part = torch.empty((splits, n, 2) if splits > 1 else (1,), dtype=torch.int64, device=x.device)
    keys = torch.empty((max(kv, 1), 2), dtype=torch.int64, device=x.device)
    _keys_kernel[(min(triton.cdiv(kv, 1024), max_programs) or 1,)](seed_t, keys, kv, BLOCK=1024)
    n_tiles = n_row_blocks * splits
    _rows_kernel[(min(n_tiles, max_programs),)](
        x, keys, out, part, seed_t, n, k, kv, x.stride(0) if k else 0, n_row_blocks, n_tiles, cols_per_split,
        WORDS32=words32, KIND=kind, ZEXT=zext, TRUNC_F32=float_bits < 23, SPLIT=splits > 1,
        BLOCK_R=block_r, BLOCK_C=block_c, num_warps=num_warps)
    if splits > 1:
        block = 256
        _finish_kernel[(min(triton.cdiv(n, block), max_programs),)](part, out, seed_t, n, splits, BLOCK=block)
    return out


def fingerprint_rows(x: Any, float_bits: int = 32, header: bytes = b"", key: bytes = b"") -> torch.Tensor:
    """One 128-bit fingerprint per row of a 2-D tensor or array, as ``int64 [n, 2]`` (the uint64 bits).

    CUDA tensors run the Triton kernel (the result stays on their device); anything else runs the numpy
    reference. Both give the same bits. ``header`` and ``key`` seed the fingerprint (e.g. the caller's
    dtype/shape description and a namespace key): different headers or keys give unrelated fingerprints.
    """
    if isinstance(x, torch.Tensor) and x.is_cuda:
        return fingerprint_rows_triton(x.detach(), float_bits, header, key)
    return torch.from_numpy(reference_fingerprints(x, float_bits, header, key).view(np.int64))


def fingerprints_to_bytes(fp: Any) -> list[bytes]:
    """16 bytes per row (lane A then lane B, each little-endian) of an ``[n, 2]`` fingerprint tensor/array."""
    a = fp.detach().cpu().numpy() if isinstance(fp, torch.Tensor) else np.asarray(fp)
    data = np.ascontiguousarray(a).astype("<u8", copy=False).tobytes()  # int64 -> uint64 keeps the bits
    return [data[i:i + 16] for i in range(0, len(data), 16)]
