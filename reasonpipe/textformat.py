"""How a task's problems and traces become a model's text: the task tokenizer's form, or a pretrained model's.

A :class:`TextFormat` is saved beside every checkpoint (``format.json``) and read back by everything that later
encodes a prompt or scores a completion (the samplers, GRPO, evaluation, ``reasonpipe export``), so a model is
always prompted exactly as it was trained. Three choices:

- ``tokenizer``: ``task`` (one token per grammar word and digit, :mod:`reasonpipe.tokenizer`; the prompt is
  ``<bos>`` and the trace's first line) or ``model`` (a pretrained model's own tokenizer, its text as below).
- ``format`` (model tokenizer): ``plain`` (prompt text, then the completion and the tokenizer's end-of-sequence
  token) or ``chat`` (the prompt as the user's message, rendered by the tokenizer's chat template with the
  generation prompt; the completion is the assistant's message, ended by the end-of-sequence token, which for a
  chat model is its end-of-turn token).
- ``layout``: ``trace`` (the completion is the rest of the trace, in the task's grammar; its score is the task's
  score of prompt + completion) or ``answer`` (the layout of TinyZero and How Much Backtracking: an instruction
  after the problem, then ``<think> trace </think>`` and ``<answer> the answer </answer>``; its score is the
  task's exact scorer on the ``<answer>`` content alone, the task's ``score_answer``).

A checkpoint without ``format.json`` is a task-tokenizer checkpoint (every checkpoint written before this file
existed). Prompts and completions are encoded apart (prompt ids, then completion ids), as a sampler sees them.

Example::

    python -c "from reasonpipe.textformat import TextFormat; from reasonpipe.tasks import make_task; import random; t = make_task('countdown'); p = t.generate(random.Random(0)); print(TextFormat('model', 'plain', 'answer').user_text(t, p))"
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from reasonpipe.errors import InputError
from reasonpipe.jsonl import atomic_write
from reasonpipe.traces.tokens import BOS, prompt_ids, strip_bos

FILE = "format.json"
TOKENIZERS = ("task", "model")
FORMATS = ("plain", "chat")
LAYOUTS = ("trace", "answer")
ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
THINK = re.compile(r"<think>(.*?)</think>", re.S)
THINK_OPEN = "<think>\n"
INSTRUCTION = ("Think it through inside <think> </think> tags, then give the final answer inside <answer> </answer> "
               "tags: {hint}.")


@dataclass(frozen=True)
class TextFormat:
    """The text a model reads and writes for a task (see the module docstring)."""

    tokenizer: str = "task"
    format: str = "plain"
    layout: str = "trace"
    system: str = ""  # chat: a system message first (empty: none)

    def __post_init__(self) -> None:
        for name, allowed in (("tokenizer", TOKENIZERS), ("format", FORMATS), ("layout", LAYOUTS)):
            if getattr(self, name) not in allowed:
                raise InputError(f"unknown {name} {getattr(self, name)!r} ({' | '.join(allowed)})", field=name)
        if self.tokenizer == "task" and (self.format, self.layout) != ("plain", "trace"):
            raise InputError(f"format {self.format} / layout {self.layout} need a model's tokenizer: the task "
                             "tokenizer writes only the task's grammar (set tokenizer: model)", field="tokenizer")

    @property
    def pretrained(self) -> bool:
        return self.tokenizer == "model"

    def check_task(self, task: Any, field: str = "layout") -> None:
        """InputError unless ``task`` can be written in this layout (``answer`` needs the task's answer form)."""
        if self.layout == "answer" and not hasattr(task, "score_answer"):
            raise InputError(f"layout answer: task {type(task).__name__} has no answer form (answer_text and "
                             "score_answer; CountDown has one)", field=field)

    # -- text ----------------------------------------------------------------------------------------------

    def user_text(self, task: Any, problem: Any) -> str:
        """The prompt as the user writes it: the trace's first line, and in the answer layout the instruction."""
        return self.wrap(task, task.prompt(problem))

    def wrap(self, task: Any, first_line: str) -> str:
        """The user text for a trace whose first line (the task's prompt) is ``first_line``."""
        if self.layout == "trace":
            return first_line
        return first_line + INSTRUCTION.format(hint=getattr(task, "ANSWER_HINT", "the answer")) + "\n"

    def completion(self, task: Any, problem: Any, trace_text: str) -> str | None:
        """What the model should write after the prompt for the trace ``trace_text`` (None: the trace claims no
        answer, so the answer layout has nothing to put in ``<answer>``)."""
        return self.completion_of(task, task.prompt(problem), trace_text)

    def completion_of(self, task: Any, first_line: str, trace_text: str) -> str | None:
        """:meth:`completion` for a trace whose first line is ``first_line``."""
        body = trace_text[len(first_line):] if trace_text.startswith(first_line) else trace_text
        if self.layout == "trace":
            return body
        answer = task.answer_text(trace_text)
        if answer is None:
            return None
        return f"{THINK_OPEN}{body.rstrip()}\n</think>\n<answer> {answer} </answer>"

    def body_offset(self) -> int:
        """Where the trace's body (the trace after its first line) starts in a completion."""
        return len(THINK_OPEN) if self.layout == "answer" else 0

    def messages(self, user_text: str, completion: str | None = None) -> list[dict[str, str]]:
        """The chat messages: system (when set), user, and the assistant's completion when given."""
        out = [{"role": "system", "content": self.system}] if self.system else []
        out.append({"role": "user", "content": user_text})
        if completion is not None:
            out.append({"role": "assistant", "content": completion})
        return out

    def prompt_text(self, hf: Any, user_text: str) -> str:
        """The prompt as text: the task form's ``<bos>`` and prompt line, a pretrained model's plain prompt (its
        tokenizer adds its own special tokens, if any, when encoding), or the chat template's rendering."""
        if not self.pretrained:
            return BOS + strip_bos(user_text)
        if self.format == "chat":
            if not getattr(hf, "chat_template", None):
                raise InputError("format chat: the model's tokenizer has no chat template (use format: plain)",
                                 field="format")
            return hf.apply_chat_template(self.messages(user_text), tokenize=False, add_generation_prompt=True)
        return user_text

    def trainer_prompt(self, hf: Any, user_text: str) -> str | list[dict[str, str]]:
        """The prompt as TRL's GRPO trainer takes it, so that its encoding is :meth:`prompt_ids`: the chat messages
        (TRL renders the template) or the text (TRL encodes it with the tokenizer's own special tokens)."""
        if self.pretrained and self.format == "chat":
            return self.messages(user_text)
        return self.prompt_text(hf, user_text)

    def prompt_ids(self, hf: Any, user_text: str) -> list[int]:
        """The prompt's token ids, as every sampler and trainer here encodes it."""
        if not self.pretrained:
            return prompt_ids(hf, strip_bos(user_text))
        if self.format == "chat":
            return hf(self.prompt_text(hf, user_text), add_special_tokens=False)["input_ids"]
        return hf(user_text)["input_ids"]

    def completion_ids(self, hf: Any, completion: str) -> list[int]:
        """The completion's token ids, ended by the end-of-sequence token (what a sampler stops on)."""
        return hf(completion, add_special_tokens=False)["input_ids"] + [hf.eos_token_id]

    def decode(self, hf: Any, ids: list[int]) -> str:
        """Generated ids (without the end-of-sequence token) as text."""
        return hf.decode(ids, skip_special_tokens=self.pretrained)

    # -- scoring --------------------------------------------------------------------------------------------

    def trace_text(self, task: Any, problem: Any, completion: str) -> str:
        """The trace a completion holds, as the task's grammar reads it: prompt line + completion (trace layout),
        prompt line + the ``<think>`` content (answer layout; the whole completion when there is no tag)."""
        if self.layout == "answer":
            m = THINK.search(completion)
            completion = m.group(1).strip("\n") + "\n" if m else completion
        return task.prompt(problem) + completion

    def score(self, task: Any, problem: Any, completion: str) -> float:
        """The task's exact score of a completion: of the whole trace (trace layout), of the last ``<answer>``
        (answer layout; no answer tag scores 0). Never raises on model output."""
        if self.layout == "trace":
            return float(task.score(problem, self.trace_text(task, problem, completion)))
        found = ANSWER.findall(completion)
        return float(task.score_answer(problem, found[-1])) if found else 0.0

    # -- beside a checkpoint ----------------------------------------------------------------------------------

    def save(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        with atomic_write(os.path.join(folder, FILE)) as f:
            json.dump(asdict(self), f, indent=2)

    @classmethod
    def load(cls, folder: str) -> "TextFormat":
        """The format saved in ``folder``; a folder without one is a task-tokenizer checkpoint."""
        path = os.path.join(folder, FILE)
        if not os.path.isfile(path):
            return cls()
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise InputError(f"unreadable text format: {e}", path=path) from None
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            raise InputError(f"not a text format (keys: {', '.join(sorted(known))})", path=path)
        return cls(**data)
