"""Qwen2-architecture models from config, trained from scratch, in the named sizes of To Backtrack or Not.

| size | hidden | kv (key/value width) | layers | ffn | heads (head dim) |
|---|---|---|---|---|---|
| tiny | 64 | 32 | 2 | 128 | 2 (32) |
| 3M | 256 | 64 | 6 | 512 | 8 (32) |
| 17M | 512 | 128 | 8 | 1024 | 8 (64) |
| 38M | 512 | 128 | 10 | 2048 | 8 (64) |
| 144M | 1024 | 256 | 12 | 3072 | 16 (64) |

The counts in the names are the paper's (transformer blocks; our task vocabularies are tiny, so embeddings
add little). Head dims are 32 or 64 because vLLM's CPU attention supports no smaller. Any local Hugging
Face causal-LM folder also works. Checkpoints are ``save_pretrained`` folders with the task tokenizer beside
them, loaded as ``PreTrainedTokenizerFast``.

Example::

    python -c "from reasonpipe.models import build_model, SIZES; from reasonpipe.tokenizer import TaskTokenizer; m = build_model('3M', TaskTokenizer.for_task('countdown').hf()); print(sum(p.numel() for p in m.parameters()))"
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from reasonpipe.errors import InputError


@dataclass(frozen=True)
class ModelSize:
    hidden: int
    kv: int
    layers: int
    ffn: int
    head_dim: int

    @property
    def heads(self) -> int:
        return self.hidden // self.head_dim

    @property
    def kv_heads(self) -> int:
        return self.kv // self.head_dim


SIZES: dict[str, ModelSize] = {
    "tiny": ModelSize(64, 32, 2, 128, 32),
    "1M": ModelSize(128, 64, 4, 512, 32),
    "3M": ModelSize(256, 64, 6, 512, 32),
    "17M": ModelSize(512, 128, 8, 1024, 64),
    "38M": ModelSize(512, 128, 10, 2048, 64),
    "144M": ModelSize(1024, 256, 12, 3072, 64),
}


def qwen2_config(size: str, tokenizer: Any, max_positions: int = 8192):
    """A Qwen2Config of a named size for ``tokenizer`` (a PreTrainedTokenizerFast)."""
    from transformers import Qwen2Config

    if size not in SIZES:
        raise InputError(f"unknown model size {size!r} (known: {', '.join(SIZES)}, or a checkpoint folder)",
                         field="model")
    s = SIZES[size]
    return Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=s.hidden, intermediate_size=s.ffn, num_hidden_layers=s.layers,
        num_attention_heads=s.heads, num_key_value_heads=s.kv_heads, head_dim=s.head_dim,
        max_position_embeddings=max_positions, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )


def build_model(spec: str, tokenizer: Any, *, max_positions: int = 8192, seed: int = 0):
    """A fresh model of a named size (weights from ``seed``), or the model saved in a local folder."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2ForCausalLM

    if os.path.isdir(spec):
        return AutoModelForCausalLM.from_pretrained(spec)
    config = qwen2_config(spec, tokenizer, max_positions)
    devices = []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return Qwen2ForCausalLM(config)


def resolve_device(name: str, field: str = "device") -> str:
    """``auto`` -> ``cuda`` when a CUDA device is visible, else ``cpu``; ``cuda`` without one is an InputError
    naming ``field``; anything else as given. The one place every stage decides where a model runs."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("no CUDA device here", field=field)
    return name


def load_tokenizer(path: str):
    """The task tokenizer saved beside a checkpoint (never AutoTokenizer: see the module docstring)."""
    from transformers import PreTrainedTokenizerFast

    if not os.path.isfile(os.path.join(path, "tokenizer.json")):
        raise InputError("no tokenizer.json: not a reasonpipe checkpoint folder", path=path)
    return PreTrainedTokenizerFast.from_pretrained(path)


def block_shape(config: Any) -> tuple[int, int, int, int]:
    """(layers, hidden, kv width, ffn) of a Qwen2-like config, for the FLOPs formula."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return (config.num_hidden_layers, config.hidden_size, config.num_key_value_heads * head_dim,
            config.intermediate_size)
