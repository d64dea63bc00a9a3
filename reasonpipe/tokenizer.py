"""Task tokenizers: one token per grammar word, digit, symbol or whitespace character.

Text is cut by one rule, :data:`PATTERN`: a run of letters (and ``_``) is a word, every other character
(each digit, each symbol, each space and newline) is one token. A task's vocabulary is every word and
symbol its trace grammar can write, plus the ten digits, so any number is spelled digit by digit and
every trace round-trips exactly; text outside the grammar maps to ``<unk>``. Special tokens: ``<pad>``,
``<bos>``, ``<eos>``, ``<unk>``. The rule and :func:`vocabulary_from` live with the grammars, in
:mod:`reasonpipe.traces.tokens` (the tasks, which sit below this module, state their vocabularies with
it), and are re-exported here.

Saved and loaded as ``PreTrainedTokenizerFast`` (``save_pretrained`` / ``from_pretrained``). Load it that
way, not with ``AutoTokenizer``, which may swap in a Qwen2 tokenizer for a Qwen2 config and drop
characters, and pass it everywhere as ``processing_class``.

Example::

    python -c "from reasonpipe.tokenizer import TaskTokenizer; t = TaskTokenizer.for_task('countdown'); print(t.hf()('47,47 equal').input_ids)"
"""

from __future__ import annotations

from dataclasses import dataclass

from reasonpipe.tasks import get_task_class
from reasonpipe.traces.tokens import (BOS, DIGITS, PATTERN, SPECIAL_TOKENS, count_tokens,  # noqa: F401 (re-exported)
                                      prompt_ids, strip_bos, tokens_of, vocabulary_from)


@dataclass(frozen=True)
class TaskTokenizer:
    """A task's token list; :meth:`hf` builds the Hugging Face tokenizer for it."""

    tokens: tuple[str, ...]

    @classmethod
    def for_task(cls, task: str) -> "TaskTokenizer":
        return cls(tuple(get_task_class(task).vocabulary()))

    @property
    def vocab(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(SPECIAL_TOKENS + self.tokens)}

    def count(self, text: str) -> int:
        """Tokens in ``text``, without special tokens."""
        return count_tokens(text)

    def unknown(self, text: str) -> set[str]:
        """Pre-tokens of ``text`` outside the vocabulary (each becomes ``<unk>``)."""
        return set(tokens_of(text)) - set(self.tokens)

    def hf(self):
        """The ``PreTrainedTokenizerFast`` for this vocabulary (imports tokenizers/transformers lazily)."""
        from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
        from transformers import PreTrainedTokenizerFast

        core = Tokenizer(models.WordLevel(self.vocab, unk_token="<unk>"))
        core.pre_tokenizer = pre_tokenizers.Split(Regex(PATTERN.pattern), behavior="isolated")
        core.decoder = decoders.Fuse()
        return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<bos>",
                                       eos_token="<eos>", unk_token="<unk>")

    def save(self, directory: str) -> None:
        """``save_pretrained`` into ``directory`` (reload with ``PreTrainedTokenizerFast.from_pretrained``)."""
        self.hf().save_pretrained(directory)
