"""What SFT and GRPO share past their own settings: the LoRA block, the ``trl:`` pass-through and ``report_to``.

- ``lora:`` (:class:`LoraBlock`): rank 0 trains every weight; rank > 0 trains LoRA adapters (``peft``) on
  ``target_modules``; the run's checkpoints and ``final/`` then hold the adapter (``adapter_config.json``), which
  evaluation and GRPO load on its base model, and ``merge: true`` also writes ``merged/`` (the base model with the
  adapter merged in, for vLLM or export).
- ``trl:`` a mapping merged into TRL's ``SFTConfig`` / ``GRPOConfig`` (:func:`trl_arguments`): any of their fields
  that reasonpipe does not set from a field of its own. A key reasonpipe sets (``learning_rate``, ...) is an
  error that names the reasonpipe field to set instead, so every setting has one home; a key TRL does not have is
  an error listing the valid ones.
- ``report_to``: ``none`` | ``tensorboard`` | ``wandb`` | ``trackio`` (a comma-separated list for several).
  TensorBoard writes its event files to ``<out>/tensorboard`` (:func:`tracking`); the others are TRL's own
  integrations (their packages and logins are the user's).

Example::

    reasonpipe sft --config configs/sft-demo.yaml --report_to tensorboard --trl.logging_first_step true
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from typing import Any

from reasonpipe.config import helptext
from reasonpipe.errors import InputError
from reasonpipe.textformat import TextFormat

REPORTERS = ("none", "tensorboard", "wandb", "trackio")
TENSORBOARD_DIR = "tensorboard"


@dataclass
class LoraBlock:
    """LoRA adapters instead of full fine-tuning (YAML block ``lora:``)."""

    rank: int = field(default=0, metadata=helptext("adapter rank; 0: no LoRA, every weight trains"))
    alpha: float = field(default=16.0, metadata=helptext("LoRA alpha (the update is scaled by alpha / rank)"))
    dropout: float = field(default=0.0, metadata=helptext("dropout on the adapter's input"))
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
                                      metadata=helptext("module names that get adapters"))
    merge: bool = field(default=False, metadata=helptext("also write <out>/merged: the base model with the adapter "
                                                         "merged in"))

    def __post_init__(self) -> None:
        if self.rank < 0:
            raise InputError("rank must be 0 (no LoRA) or positive", field="rank")
        if self.rank and not self.target_modules:
            raise InputError("LoRA needs at least one target module", field="target_modules")

    @property
    def enabled(self) -> bool:
        return self.rank > 0


@dataclass
class TrainerSettings:
    """The fields SFT's and GRPO's configs share (both inherit them): the text format of a pretrained model, LoRA,
    the ``trl:`` pass-through and the trackers."""

    tokenizer: str = field(default="task", metadata=helptext(
        "task (the task's own tokenizer: from scratch or a reasonpipe checkpoint) | model (a pretrained model's own "
        "tokenizer; the traces become text as format and layout say, reasonpipe.textformat)"))
    format: str = field(default="plain", metadata=helptext("tokenizer model: plain (prompt + completion) | chat (the "
                                                           "tokenizer's chat template)"))
    layout: str = field(default="trace", metadata=helptext(
        "tokenizer model: trace (the completion is the trace) | answer (<think> trace </think> <answer> answer "
        "</answer>, as TinyZero and How Much Backtracking; the task's exact scorer on the answer)"))
    system: str = field(default="", metadata=helptext("format chat: a system message (empty: none)"))
    lora: LoraBlock = field(default_factory=LoraBlock, metadata=helptext(
        "LoRA adapters (peft) instead of training every weight (reasonpipe.trainer_args)"))
    trl: dict[str, Any] = field(default_factory=dict, metadata=helptext(
        "more fields of TRL's SFTConfig / GRPOConfig, passed through (those reasonpipe sets from its own fields are "
        "refused)"))
    report_to: str = field(default="none", metadata=helptext(
        "none | tensorboard (event files in <out>/tensorboard) | wandb | trackio; several joined by commas"))

    def __post_init__(self) -> None:  # a text format that can be written, known trackers: checked at load
        self.text_format()
        report_targets(self.report_to)

    def text_format(self) -> TextFormat:
        """How the traces become the model's text (saved beside the checkpoints as ``format.json``)."""
        return TextFormat(self.tokenizer, self.format, self.layout, self.system)

    def check_settings(self, model_kind: str, task: Any, trl_config: Any, out: str) -> None:
        """Before a run writes anything: the layout for ``task`` (a task instance: the answer layout needs its
        answer form), LoRA only on a pretrained model (``model_kind`` of :class:`reasonpipe.models.ModelSource`), the
        ``trl:`` keys (``trl_config()`` builds TRL's config), the trackers."""
        self.text_format().check_task(task)
        if self.lora.enabled and model_kind == "size":
            raise InputError("LoRA adapts a pretrained model: name a model folder or hub id, or set lora.rank: 0",
                             field="lora.rank")
        trl_config()
        tracking(self.report_to, out)  # nothing is opened yet

    def with_lora(self, model: Any) -> Any:
        """``model`` with LoRA adapters when ``lora.rank`` > 0 (an adapter already on it keeps training)."""
        if not self.lora.enabled or hasattr(model, "peft_config"):
            return model
        from reasonpipe.models import add_lora

        return add_lora(model, self.lora.rank, self.lora.alpha, self.lora.dropout, self.lora.target_modules)


def report_targets(report_to: str, field_name: str = "report_to") -> list[str]:
    """The trackers named by ``report_to`` (``none``: no tracker), each checked."""
    names = [n.strip() for n in report_to.split(",") if n.strip()]
    bad = [n for n in names if n not in REPORTERS]
    if bad or not names:
        raise InputError(f"unknown report_to {report_to!r} ({' | '.join(REPORTERS)}, or several joined by commas)",
                         field=field_name)
    return [n for n in names if n != "none"]


def trl_report_to(report_to: str) -> list[str] | str:
    """``report_to`` for TRL's config: the trackers TRL's integrations serve (TensorBoard is ours: :func:`tracking`)."""
    return [t for t in report_targets(report_to) if t != "tensorboard"] or "none"


def tracking(report_to: str, out: str) -> list[Any]:
    """The callbacks of the trackers reasonpipe serves itself: TensorBoard, writing to ``<out>/tensorboard`` (on the
    main process only; the writer opens at the start of training)."""
    callbacks: list[Any] = []
    if "tensorboard" in report_targets(report_to):
        from transformers.integrations import TensorBoardCallback

        try:
            board = TensorBoardCallback()
        except RuntimeError:
            raise InputError("report_to tensorboard needs tensorboard: pip install 'reasonpipe[tensorboard]'",
                             field="report_to") from None
        board.logging_dir = os.path.join(out, TENSORBOARD_DIR)
        callbacks.append(board)
    return callbacks


def trl_arguments(config_class: type, owned: dict[str, Any], user: dict[str, Any], homes: dict[str, str],
                  field_name: str = "trl") -> Any:
    """``config_class(**owned, **user)``: TRL's config with reasonpipe's settings ``owned`` and the user's
    pass-through ``user``. ``homes`` maps a TRL field that reasonpipe sets to the reasonpipe field that sets it (for
    the error); unknown keys are an error listing the valid ones."""
    valid = sorted(f.name for f in dataclasses.fields(config_class) if f.init)
    for key in user:
        if key in owned:
            home = homes.get(key)
            where = f"set {home} instead" if home else "reasonpipe sets it itself"
            raise InputError(f"{key} is set by reasonpipe ({where})", field=f"{field_name}.{key}")
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise InputError(f"{config_class.__name__} has no field {key!r}{hint}; valid: {', '.join(valid)}",
                             field=f"{field_name}.{key}")
    try:
        return config_class(**owned, **user)
    except (TypeError, ValueError) as e:
        raise InputError(f"{config_class.__name__}: {' '.join(str(e).split())[:300]}", field=field_name) from None
