"""Which model a run trains: a size from scratch, a local Hugging Face folder, or a hub id; and the checks that
its tokenizer means something to it.

``model:`` is one of three things (:func:`resolve_model`):

- a size name, a Qwen2 trained from scratch with the task tokenizer (the sizes of To Backtrack or Not):

| size | hidden | kv (key/value width) | layers | ffn | heads (head dim) |
|---|---|---|---|---|---|
| tiny | 64 | 32 | 2 | 128 | 2 (32) |
| 1M | 128 | 64 | 4 | 512 | 4 (32) |
| 3M | 256 | 64 | 6 | 512 | 8 (32) |
| 17M | 512 | 128 | 8 | 1024 | 8 (64) |
| 38M | 512 | 128 | 10 | 2048 | 8 (64) |
| 144M | 1024 | 256 | 12 | 3072 | 16 (64) |

  (the counts in the names are the paper's transformer blocks; head dims are 32 or 64 because vLLM's CPU
  attention supports no smaller);
- a local folder (``save_pretrained``): a reasonpipe checkpoint or any causal LM with its tokenizer;
- a hub id (``Qwen/Qwen2.5-0.5B``), fetched into the Hugging Face cache with ``snapshot_download`` (only from
  the cache when ``HF_HUB_OFFLINE`` is set) and then used as its local folder; without network or cache a
  one-line error names the id.

:func:`check_model` reads only the config and the tokenizer (no weights), before a run writes anything, and
stops on a pair that would train on meaningless ids: the task tokenizer with a pretrained model, a model
tokenizer asked of a folder without one (or of a task-tokenizer checkpoint), a tokenizer with ids beyond the
model's embedding, a chat format without a chat template. Tokenizers load as ``PreTrainedTokenizerFast`` from
``tokenizer.json``, never ``AutoTokenizer``, which may swap in a Qwen2 tokenizer class for a Qwen2 config and
encode differently from the file the model was trained with.

LoRA (``peft``, an optional extra): :func:`add_lora` wraps a model; a folder with ``adapter_config.json`` loads as
its base model plus the adapter (:func:`load_causal_lm`), and :func:`merge_adapter` writes the merged model.

Example::

    python -c "from reasonpipe.models import build_model, SIZES; from reasonpipe.tokenizer import TaskTokenizer; m = build_model('3M', TaskTokenizer.for_task('countdown').hf()); print(sum(p.numel() for p in m.parameters()))"
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.textformat import TextFormat


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
        raise InputError(f"unknown model size {size!r} (known: {', '.join(SIZES)}, or a model folder or hub id)",
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
    from transformers import Qwen2ForCausalLM

    if os.path.isdir(spec):
        return load_causal_lm(spec)
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
    """The tokenizer saved in a model folder, from its ``tokenizer.json`` (never AutoTokenizer: see the module
    docstring)."""
    from transformers import PreTrainedTokenizerFast

    if not os.path.isfile(os.path.join(path, "tokenizer.json")):
        raise InputError("no tokenizer.json in the model folder (a fast tokenizer is needed)", path=path)
    return PreTrainedTokenizerFast.from_pretrained(path)


def block_shape(config: Any) -> tuple[int, int, int, int]:
    """(layers, hidden, kv width, ffn) of a Qwen2-like config, for the FLOPs formula."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return (config.num_hidden_layers, config.hidden_size, config.num_key_value_heads * head_dim,
            config.intermediate_size)


# -- which model: a size, a folder, a hub id -------------------------------------------------------------------

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
HUB_FILES = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.tiktoken"]


@dataclass(frozen=True)
class ModelSource:
    """Where a run's model comes from: ``kind`` size | folder | hub; ``path`` the size name or a local folder
    (a hub id's snapshot in the Hugging Face cache)."""

    spec: str
    kind: str
    path: str


def absolute_if_folder(spec: str) -> str:
    """``spec`` as an absolute path when it names a folder here (for workers that run in other folders), else as is
    (a size or a hub id)."""
    return os.path.abspath(spec) if os.path.isdir(spec) else spec


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` as the Hugging Face libraries read it (read now, not at their import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def resolve_model(spec: str, field: str = "model") -> ModelSource:
    """A size name, an existing folder, or a hub id fetched into (or found in) the Hugging Face cache; anything
    else, or a hub id that cannot be had, is a one-line InputError naming ``field`` and the id."""
    if spec in SIZES:
        return ModelSource(spec, "size", spec)
    if os.path.isdir(spec):
        return ModelSource(spec, "folder", os.path.abspath(spec))
    if not HUB_ID.match(spec) or spec.startswith((".", "~")):
        raise InputError(f"no such model folder {spec!r} (a size: {', '.join(SIZES)}; a folder; or a hub id "
                         "like Qwen/Qwen2.5-0.5B)", field=field)
    from huggingface_hub import snapshot_download

    offline = hub_offline()
    try:
        path = snapshot_download(spec, allow_patterns=HUB_FILES, local_files_only=offline)
    except Exception as e:  # noqa: BLE001 (network, auth, not-found: all one line naming the id)
        where = ("HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache" if offline
                 else f"it could not be fetched ({type(e).__name__}: {' '.join(str(e).split())[:160]})")
        raise InputError(f"model {spec!r} is not a size ({', '.join(SIZES)}) or a folder, and as a hub id {where}; "
                         f"download it where there is network (huggingface-cli download {spec}) or name its "
                         "folder", field=field) from None
    return ModelSource(spec, "hub", path)


@dataclass
class ModelCheck:
    """What :func:`check_model` found: the source, the text format to train in, and the sizes it compared."""

    source: ModelSource
    text_format: TextFormat
    vocab_size: int = 0          # the model's embedding rows (0 for a size: built to fit)
    tokenizer_size: int = 0


def _task_vocab(task: str) -> dict[str, int]:
    from reasonpipe.tokenizer import TaskTokenizer

    return TaskTokenizer.for_task(task).vocab


def check_model(spec: str, text_format: TextFormat, task: str, field: str = "model") -> ModelCheck:
    """The model named ``spec`` with the tokenizer and format of ``text_format``, checked without loading
    weights (see the module docstring for what stops a run); the error says what to set."""
    source = resolve_model(spec, field)
    if source.kind == "size":
        if text_format.pretrained:
            raise InputError(f"model {spec} is a size trained from scratch with the task tokenizer; tokenizer: model "
                             "needs a pretrained model (a folder or hub id): set tokenizer: task or name one",
                             field="tokenizer")
        return ModelCheck(source, text_format)
    folder = source.path
    if not os.path.isfile(os.path.join(folder, "config.json")) and not is_adapter(folder):
        raise InputError("not a model folder (no config.json)", path=folder, field=field)
    vocab_size = _embedding_rows(folder)
    has_tokenizer = os.path.isfile(os.path.join(folder, "tokenizer.json"))
    saved = TextFormat.load(folder) if os.path.isfile(os.path.join(folder, "format.json")) else None
    task_checkpoint = (saved is not None and not saved.pretrained) or (
        saved is None and has_tokenizer and _tokenizer_vocab(folder) == _task_vocab(task))
    if not text_format.pretrained:
        if not task_checkpoint:
            what = "has no tokenizer.json" if not has_tokenizer else "is a pretrained model with its own tokenizer"
            raise InputError(f"{spec} {what}: the task tokenizer's ids would mean nothing to it; set tokenizer: model "
                             "(with the model's tokenizer in the folder)", field="tokenizer")
    else:
        if not has_tokenizer:
            raise InputError(f"{spec} has no tokenizer.json: tokenizer: model needs the model's own (fast) tokenizer "
                             "saved in the folder; save it there, or set tokenizer: task for a reasonpipe checkpoint",
                             field="tokenizer")
        if task_checkpoint:
            raise InputError(f"{spec} was trained with the {task} task tokenizer: set tokenizer: task", field="tokenizer")
    tokenizer = load_tokenizer(folder)
    n_tok = len(tokenizer)
    if vocab_size and n_tok > vocab_size:
        raise InputError(f"the tokenizer of {spec} has {n_tok} tokens but the model's embedding has {vocab_size} rows: "
                         f"ids from {vocab_size} on would index past it; use the tokenizer the model was trained with",
                         field="tokenizer")
    if text_format.pretrained and text_format.format == "chat" and not getattr(tokenizer, "chat_template", None):
        raise InputError(f"format chat: the tokenizer of {spec} has no chat template; set format: plain",
                         field="format")
    return ModelCheck(source, text_format, vocab_size, n_tok)


def _embedding_rows(folder: str) -> int:
    """``vocab_size`` of the folder's model config (the base model's for an adapter folder)."""
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path) and is_adapter(folder):
        path = os.path.join(adapter_base(folder), "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise InputError(f"unreadable model config: {e}", path=path) from None
    rows = config.get("vocab_size") or config.get("text_config", {}).get("vocab_size") or 0
    return int(rows)


def _tokenizer_vocab(folder: str) -> dict[str, int]:
    try:
        with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    vocab = dict(data.get("model", {}).get("vocab") or {})
    vocab.update({t["content"]: t["id"] for t in data.get("added_tokens", [])})
    return vocab


# -- LoRA (peft) -----------------------------------------------------------------------------------------------

ADAPTER_CONFIG = "adapter_config.json"


def is_adapter(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, ADAPTER_CONFIG))


def adapter_base(folder: str) -> str:
    """The base model an adapter folder was trained on (its ``base_model_name_or_path``)."""
    with open(os.path.join(folder, ADAPTER_CONFIG), encoding="utf-8") as f:
        return json.load(f)["base_model_name_or_path"]


def _peft():
    try:
        import peft
    except ImportError:
        raise InputError("LoRA needs peft: pip install 'reasonpipe[lora]'", field="lora") from None
    return peft


def add_lora(model: Any, rank: int, alpha: float, dropout: float, target_modules: list[str]) -> Any:
    """``model`` with LoRA adapters of ``rank`` on ``target_modules`` (only they train)."""
    peft = _peft()
    config = peft.LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
                             task_type="CAUSAL_LM")
    try:
        return peft.get_peft_model(model, config)
    except ValueError as e:  # e.g. target modules not found in the model
        raise InputError(f"LoRA: {' '.join(str(e).split())[:200]}", field="lora.target_modules") from None


def load_causal_lm(folder: str, *, trainable: bool = False, **kwargs: Any) -> Any:
    """The model saved in ``folder``: a full model, or an adapter folder's base model with the adapter on it
    (``trainable``: the adapter keeps training)."""
    if is_adapter(folder):
        return _peft().AutoPeftModelForCausalLM.from_pretrained(folder, is_trainable=trainable, **kwargs)
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, **kwargs)


def merge_adapter(folder: str, out: str) -> str:
    """Write the base model with the adapter of ``folder`` merged into it to ``out`` (with the folder's tokenizer
    and text format), e.g. for vLLM; returns ``out``."""
    import shutil

    model = load_causal_lm(folder).merge_and_unload()
    tmp = out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    for name in os.listdir(folder):
        if name.startswith(("tokenizer", "special_tokens", "chat_template")) or name == "format.json":
            shutil.copy2(os.path.join(folder, name), tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out
