"""Continuous-thought (Coconut) wrapper over a Hugging Face causal LM: latent steps fed back as input embeddings.

At each *latent* position of the input (token id ``latent_id``) the model is not given a token embedding but
the last-layer hidden state of the position before it, its "continuous thought" (Coconut, Hao et al. 2024,
arXiv:2412.06769; Reasoning by Superposition, Zhu et al. 2025, arXiv:2505.12514, where a thought holds the
whole search frontier of a graph-reachability problem). A training or evaluation row reads::

    <bos> prompt <startlatent> <latent> <latent> <latent> <endlatent> answer <eos>

The thought is ``outputs.hidden_states[-1]`` exactly as Coconut takes it. For Hugging Face models that is the
state *after* the final norm: transformers ties ``hidden_states[-1]`` to ``last_hidden_state`` (the
``tie_last_hidden_states`` rule of its output capturing), the vector the LM head reads.

Batches: the rows of a batch are left-padded so that their latents sit in the same columns (every row has
the same number of latents, one consecutive run); :meth:`LatentLM.latent_columns` checks this and raises
:class:`~reasonpipe.errors.InputError` otherwise. Position ids are ``attention_mask.cumsum(-1) - 1`` clamped
at 0 and passed explicitly to every call, so cached and uncached computations see the same positions. After
the latents the rows may be right-padded (answers of different lengths) for :meth:`LatentLM.forward`, but
not for :meth:`LatentLM.generate`, which continues after the last column.

Cost: a latent step depends on the step before it, so the n thoughts are n sequential passes. Here each is
*one position* against the KV cache (prefix once, then n one-position passes, then the rest in one call):
a latent step costs what a decoding step costs at that context length (:func:`latent_step_cost` measures
both). Recomputing the sequence for every thought (:meth:`LatentLM.reference_forward`, the test oracle, and
what a cache-less implementation does) costs n + 1 full passes instead of about one.

What this does not do: no curriculum (which stage replaces how many steps with latents is the data's
business), no pause-token control (that is ordinary tokens), no gradient checkpointing (transformers drops
the KV cache of a checkpointed layer in training; :meth:`LatentLM.forward` refuses), no sampling in
:meth:`LatentLM.generate` (greedy only). Labels at latent columns should be ``-100``; nothing here sets them.

Example::

    python -c "from reasonpipe.latent import latent_step_cost; from reasonpipe.models import build_model; from reasonpipe.tokenizer import TaskTokenizer; m = build_model('tiny', TaskTokenizer.for_task('countdown').hf()); print(latent_step_cost(m, 256, 16))"
"""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from reasonpipe.errors import InputError

IGNORE = -100  # label of a position without loss (the Hugging Face convention)


@dataclass
class LatentOutput:
    loss: torch.Tensor | None      # mean cross-entropy where labels != -100 (logits[:, :-1] predict labels[:, 1:])
    logits: torch.Tensor           # [batch, seq, vocab]
    thoughts: torch.Tensor         # [batch, n_latent, hidden]: what was fed in at each latent column
    attentions: list | None = None  # see LatentLM.forward (output_attentions=True)


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions under left padding: ``attention_mask.cumsum(-1) - 1`` clamped at 0 (padding sits at 0)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits[:, :-1]`` against ``labels[:, 1:]``, ignoring -100 (float32 logits)."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE)


@contextmanager
def eager_attention(model: Any, on: bool = True) -> Iterator[None]:
    """Run ``model`` with eager attention inside the block (sdpa returns no attention weights: transformers
    only warns and gives ``None``), then restore the implementation it had."""
    before = model.config._attn_implementation
    if not on or before == "eager":
        yield
        return

    def use(name: str) -> None:
        if hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation(name)  # transformers 5: also reaches sub-models with their own config
        else:
            model.config._attn_implementation = name

    use("eager")
    try:
        yield
    finally:
        use(before)


class LatentLM(torch.nn.Module):
    """``model`` (any causal LM taking ``inputs_embeds``, ``past_key_values`` and ``position_ids``) with the
    positions holding ``latent_id`` fed the previous position's last hidden state."""

    def __init__(self, model: Any, latent_id: int) -> None:
        super().__init__()
        self.model = model
        self.latent_id = int(latent_id)

    # -- layout -------------------------------------------------------------------------------------------

    def latent_columns(self, input_ids: torch.Tensor) -> tuple[int, int]:
        """(first latent column, number of latents), the same for every row; ``(seq_len, 0)`` when the batch
        has no latents (everything is prefix). Raises InputError when rows differ, the latents of a row are not
        consecutive, or a latent is in column 0 (no position before it to take a thought from)."""
        is_latent = input_ids == self.latent_id
        differs = (is_latent != is_latent[:1]).any(-1)
        if differs.any():
            row = int(differs.nonzero()[0, 0])
            raise InputError(
                f"latent tokens (id {self.latent_id}) are not in the same columns in every row: row 0 has "
                f"{_columns(is_latent[0])}, row {row} has {_columns(is_latent[row])}; left-pad the prompts so the "
                "latents line up (and give every row the same number of latents)", field="input_ids")
        columns = _columns(is_latent[0])
        if not columns:
            return input_ids.shape[1], 0
        first, n = columns[0], len(columns)
        if columns[-1] - first + 1 != n:
            raise InputError(f"latent tokens (id {self.latent_id}) are not consecutive: columns {columns}",
                             field="input_ids")
        if first == 0:
            raise InputError("a latent token is in column 0: no position before it to take a thought from",
                             field="input_ids")
        return first, n

    def _layout(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[int, int]:
        if input_ids.shape != attention_mask.shape:
            raise InputError(f"input_ids {tuple(input_ids.shape)} and attention_mask "
                             f"{tuple(attention_mask.shape)} differ in shape", field="attention_mask")
        c, n = self.latent_columns(input_ids)
        if n and not bool(attention_mask[:, c - 1:c + n].bool().all()):
            raise InputError("attention_mask is 0 at a latent column or the column before the first latent",
                             field="attention_mask")
        return c, n

    # -- the cached path (forward, generate) --------------------------------------------------------------

    def _call(self, *, mask: torch.Tensor, positions: torch.Tensor, cache: Any, ids: torch.Tensor | None = None,
              embeds: torch.Tensor | None = None, output_attentions: bool = False) -> Any:
        return self.model(input_ids=ids, inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                          past_key_values=cache, use_cache=cache is not None, output_hidden_states=True,
                          output_attentions=output_attentions)

    def _cached(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, output_attentions: bool,
                keep_cache: bool) -> tuple[torch.Tensor, torch.Tensor, list | None, Any]:
        """Prefix [0, c) in one call, each latent column as a one-position call, the rest [c + n, L) in one
        call, all on one DynamicCache (none when there are no latents and ``keep_cache`` is False: then it is
        one plain call). Returns (logits, thoughts, attentions or None, cache)."""
        from transformers import DynamicCache

        c, n = self._layout(input_ids, attention_mask)
        if n and self.model.training and getattr(self.model, "is_gradient_checkpointing", False):
            raise InputError("gradient checkpointing drops the KV cache in training; disable it for latent models",
                             field="gradient_checkpointing")
        width = input_ids.shape[1]
        pos = position_ids(attention_mask)
        cache = DynamicCache(config=self.model.config) if n or keep_cache else None
        logits, thoughts, attentions = [], [], [] if output_attentions else None
        with eager_attention(self.model, output_attentions):
            out = self._call(ids=input_ids[:, :c], mask=attention_mask[:, :c], positions=pos[:, :c], cache=cache)
            logits.append(out.logits)
            hidden = out.hidden_states[-1]
            for col in range(c, c + n):
                thoughts.append(hidden[:, -1:])
                out = self._call(embeds=hidden[:, -1:], mask=attention_mask[:, :col + 1],
                                 positions=pos[:, col:col + 1], cache=cache, output_attentions=output_attentions)
                logits.append(out.logits)
                hidden = out.hidden_states[-1]
                if attentions is not None:
                    attentions.append(tuple(out.attentions))
            if c + n < width:
                out = self._call(ids=input_ids[:, c + n:], mask=attention_mask, positions=pos[:, c + n:], cache=cache,
                                 output_attentions=output_attentions)
                logits.append(out.logits)
                if attentions is not None:
                    attentions.append(tuple(a[:, :, :1, :c + n + 1] for a in out.attentions))
        stacked = torch.cat(thoughts, 1) if thoughts else hidden.new_zeros((hidden.shape[0], 0, hidden.shape[-1]))
        return torch.cat(logits, 1), stacked, attentions, cache

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None,
                output_attentions: bool = False) -> LatentOutput:
        """Logits (and loss) with the thoughts fed in, on a KV cache: prefix columns [0, c) in one call, each
        latent column c + j in a one-position call, the rest [c + n, L) in one call. Gradients flow through the
        thoughts (nothing is detached). With no latents this is one plain forward (no cache).

        ``output_attentions=True`` runs the model with eager attention and returns in ``attentions`` a list of
        per-layer tuples, one entry per query column c + j for j = 0 .. n: entry j < n is the attention of the
        one-position pass at latent column c + j (its input is thought j, its output is thought j + 1, or for
        j = n - 1 the state that predicts the token after the latents), each layer ``[batch, heads, 1, c + j + 1]``;
        entry n, present when the input has a column after the latents (normally ``<endlatent>``), is that
        column's row of the suffix pass, cut to the same shape ``[batch, heads, 1, c + n + 1]``. With no latents
        the list is empty. Keys are columns 0 .. c + j (padding columns get weight 0). The attention that made
        thought 0 (the prefix pass, query column c - 1) is not returned.
        """
        logits, thoughts, attentions, _ = self._cached(input_ids, attention_mask, output_attentions, False)
        if attentions is not None and thoughts.shape[1] == 0:
            attentions = []
        loss = lm_loss(logits, labels) if labels is not None else None
        return LatentOutput(loss, logits, thoughts, attentions)

    # -- the oracle -----------------------------------------------------------------------------------------

    def reference_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                          labels: torch.Tensor | None = None) -> LatentOutput:
        """The same result as :meth:`forward` by recomputation, no cache: thought j is the last hidden state of a
        full pass over columns [0, c + j) with thoughts 0 .. j-1 in their columns; then one full pass with all
        thoughts in place gives the logits. n + 1 full passes: the test oracle, not for training."""
        c, n = self._layout(input_ids, attention_mask)
        pos = position_ids(attention_mask)
        embeds = self.model.get_input_embeddings()(input_ids)
        thoughts: list[torch.Tensor] = []
        for j in range(n):
            inputs = torch.cat([embeds[:, :c], *thoughts], 1)
            out = self._call(embeds=inputs, mask=attention_mask[:, :c + j], positions=pos[:, :c + j], cache=None)
            thoughts.append(out.hidden_states[-1][:, -1:])
        out = self._call(embeds=torch.cat([embeds[:, :c], *thoughts, embeds[:, c + n:]], 1), mask=attention_mask,
                         positions=pos, cache=None)
        hidden = out.hidden_states[-1].shape[-1]
        stacked = torch.cat(thoughts, 1) if thoughts else out.logits.new_zeros((input_ids.shape[0], 0, hidden))
        loss = lm_loss(out.logits, labels) if labels is not None else None
        return LatentOutput(loss, out.logits, stacked, None)

    # -- decoding -------------------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
                 eos_id: int) -> torch.Tensor:
        """Greedy continuation of the whole input (which holds the latents and, usually, ``<endlatent>``):
        the input through the cached latent path, then one token at a time on the same cache. Returns
        ``[batch, k]`` new token ids, k <= max_new_tokens; a row that made ``eos_id`` is filled with ``eos_id``
        after it, and decoding stops once every row has. Generated tokens are ordinary tokens, even
        ``latent_id``. The input must not be right-padded (its last column is real in every row)."""
        batch = input_ids.shape[0]
        if max_new_tokens <= 0:
            return input_ids.new_zeros((batch, 0))
        if not bool(attention_mask[:, -1].bool().all()):
            raise InputError("generate needs left padding: attention_mask is 0 in the last column",
                             field="attention_mask")
        logits, _, _, cache = self._cached(input_ids, attention_mask, False, True)
        mask = attention_mask
        position = position_ids(attention_mask)[:, -1:]
        done = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
        new: list[torch.Tensor] = []
        logits = logits[:, -1]
        while True:
            token = torch.where(done, torch.full_like(done, eos_id, dtype=torch.long), logits.argmax(-1))
            new.append(token)
            done |= token == eos_id
            if bool(done.all()) or len(new) == max_new_tokens:
                return torch.stack(new, 1)
            mask = torch.cat([mask, mask.new_ones((batch, 1))], 1)
            position = position + 1
            out = self.model(input_ids=token[:, None], attention_mask=mask, position_ids=position,
                             past_key_values=cache, use_cache=True)
            logits = out.logits[:, -1]


def _columns(flags: torch.Tensor) -> list[int]:
    return flags.nonzero().flatten().tolist()


def latent_step_cost(model: Any, context_len: int, steps: int, batch: int = 1) -> dict:
    """Seconds per latent step (the last hidden state fed back as ``inputs_embeds``, one position on a KV
    cache, hidden states requested as :class:`LatentLM` does) and per greedy decoding step (the argmax token
    fed back), both after a prefill of ``context_len`` random tokens, on the model's device, no gradients.
    Two untimed warm-up steps each, then the median of ``steps`` timed steps (robust to a busy machine).
    Returns ``{"latent_step_s", "decode_step_s", "ratio"}`` (ratio = latent / decode)."""
    from transformers import DynamicCache

    if steps < 1 or context_len < 1:
        raise InputError(f"need steps >= 1 and context_len >= 1, got {steps} and {context_len}", field="steps")
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (batch, context_len), generator=generator).to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def timed(latent: bool) -> float:
        cache = DynamicCache(config=model.config)
        mask = torch.ones_like(ids)
        out = model(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=True,
                    position_ids=position_ids(mask), output_hidden_states=latent)
        seconds = []
        for step in range(steps + 2):
            sync()
            start = time.perf_counter()
            mask = torch.cat([mask, mask.new_ones((batch, 1))], 1)
            positions = torch.full((batch, 1), mask.shape[1] - 1, device=device)
            if latent:
                out = model(inputs_embeds=out.hidden_states[-1][:, -1:], attention_mask=mask, position_ids=positions,
                            past_key_values=cache, use_cache=True, output_hidden_states=True)
            else:
                out = model(input_ids=out.logits[:, -1:].argmax(-1), attention_mask=mask, position_ids=positions,
                            past_key_values=cache, use_cache=True)
            sync()
            if step >= 2:
                seconds.append(time.perf_counter() - start)
        return statistics.median(seconds)

    with torch.no_grad():
        latent_s, decode_s = timed(True), timed(False)
    return {"latent_step_s": latent_s, "decode_step_s": decode_s, "ratio": latent_s / decode_s}
