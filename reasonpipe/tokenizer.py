"""Character-level task tokenizers, saved and loaded as ``PreTrainedTokenizerFast``.

One token per character of the task's grammar (``task.vocabulary()``), plus ``<pad> <bos> <eos> <unk>``.
Because every character is exactly one token (known or ``<unk>``), a text's token count is its length;
:meth:`CharTokenizer.count` relies on that and a test checks it against the real tokenizer.

Load it as ``PreTrainedTokenizerFast`` (not ``AutoTokenizer``, which may swap in a Qwen2 tokenizer for a
Qwen2 config and drop characters) and pass it everywhere as ``processing_class``.

Example::

    python -c "from reasonpipe.tokenizer import CharTokenizer; t = CharTokenizer.for_task('countdown'); print(t.hf()('47,47 equal').input_ids)"
"""

from __future__ import annotations

from dataclasses import dataclass

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")


@dataclass(frozen=True)
class CharTokenizer:
    """A character vocabulary; :meth:`hf` builds the Hugging Face tokenizer for it."""

    chars: tuple[str, ...]

    @classmethod
    def for_task(cls, task: str) -> "CharTokenizer":
        from reasonpipe.tasks import get_task_class

        return cls(tuple(get_task_class(task).vocabulary()))

    @property
    def vocab(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(SPECIAL_TOKENS + self.chars)}

    def count(self, text: str) -> int:
        """Tokens in ``text`` without special tokens: one per character."""
        return len(text)

    def unknown(self, text: str) -> set[str]:
        """Characters of ``text`` outside the vocabulary (each becomes ``<unk>``)."""
        return set(text) - set(self.chars)

    def hf(self):
        """The ``PreTrainedTokenizerFast`` for this vocabulary (imports tokenizers/transformers lazily)."""
        from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
        from transformers import PreTrainedTokenizerFast

        core = Tokenizer(models.WordLevel(self.vocab, unk_token="<unk>"))
        core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        core.decoder = decoders.Fuse()
        return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<bos>",
                                       eos_token="<eos>", unk_token="<unk>")

    def save(self, directory: str) -> None:
        """``save_pretrained`` into ``directory`` (reload with ``PreTrainedTokenizerFast.from_pretrained``)."""
        self.hf().save_pretrained(directory)
