"""A stand-in for a downloaded pretrained model, built inside the tests (there is no model hub here).

A byte-level BPE tokenizer trained with ``tokenizers`` on generated CountDown text (Qwen2.5's special tokens
and a Qwen-style chat template), and a small Qwen2 with that vocabulary, both written with ``save_pretrained``:
the folder loads by path exactly like a model from the hub (``config.json``, ``model.safetensors``,
``tokenizer.json``, ``tokenizer_config.json``, ``chat_template.jinja``). Its weights are "pretrained" for a few
dozen steps of next-token prediction on that text (seeded, about 5 s), so that its embeddings mean something, as a
real model's do (a LoRA adapter on a random model barely moves its loss); the tests check the plumbing
(encodings, formats, errors, losses) and what a few steps of training do, not fluency.

Example::

    python tests/pretrained.py /tmp/pretrained-tiny
"""

from __future__ import annotations

import random
import sys

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def corpus(n: int = 300, seed: int = 0) -> list[str]:
    """Text like what the model will read: CountDown traces, the answer layout's tags and some prose."""
    from reasonpipe.searchers import SearchOptions, get_searcher
    from reasonpipe.tasks import make_task
    from reasonpipe.textformat import TextFormat

    task = make_task("countdown", numbers=3)
    fmt = TextFormat("model", "plain", "answer")
    texts = []
    for i in range(n):
        problem = task.generate(random.Random(seed * 100_003 + i))
        trace = get_searcher("countdown", "dfs")(task, problem, SearchOptions(), random.Random(i)).to_text()
        texts.append(trace)
        texts.append(fmt.user_text(task, problem) + (fmt.completion(task, problem, trace) or ""))
    texts += ["The quick brown fox jumps over the lazy dog. Numbers: 0 1 2 3 4 5 6 7 8 9 + - * / ( ) = ."] * 20
    return texts


def build(folder: str, *, vocab_size: int = 512, hidden: int = 64, layers: int = 2, seed: int = 0,
          chat: bool = True, pretrain_steps: int = 60) -> str:
    """Write the tokenizer and a fresh small Qwen2 to ``folder``; returns ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(corpus(), trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(folder)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=hidden // 32, num_key_value_heads=1,
                         head_dim=32, max_position_embeddings=2048, tie_word_embeddings=True,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
        pretrain(model, tok, pretrain_steps, seed)
        model.save_pretrained(folder)
    return folder


def pretrain(model, tok, steps: int, seed: int, width: int = 128, batch: int = 8) -> None:
    """Next-token prediction on the corpus, cut into rows of ``width`` tokens (seeded order)."""
    import torch

    ids = [i for text in corpus(seed=seed + 1) for i in tok(text)["input_ids"] + [tok.eos_token_id]]
    rows = torch.tensor(ids[: len(ids) // width * width]).view(-1, width)
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        chunk = rows[order[(step * batch + torch.arange(batch)) % len(rows)]]
        model(input_ids=chunk, labels=chunk).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


if __name__ == "__main__":
    print(build(sys.argv[1]))
