"""Continuous thoughts (reasonpipe.latent): the cached path against recomputation, gradients through thoughts,
alignment errors, greedy decoding, one position per latent step, attention weights, the timing helper."""

from __future__ import annotations

import pytest
import torch

from reasonpipe.errors import InputError
from reasonpipe.latent import LatentLM, latent_step_cost, position_ids

LATENT, START, END, EOS = 5, 6, 7, 2
VOCAB = 32
CLOSE = {"atol": 1e-5, "rtol": 1e-5}


def tiny_model(seed: int = 0):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    # a larger init than the default 0.02 so that greedy decoding does not repeat one token
    config = Qwen2Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=128,
                         tie_word_embeddings=True, initializer_range=0.2, eos_token_id=EOS, pad_token_id=0)
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(config).float().eval()


@pytest.fixture(scope="module")
def lm() -> LatentLM:
    return LatentLM(tiny_model(), LATENT)


def batch(n_latent: int, prompts=((9, 10, 11), (12, 13, 14, 15, 16), (17,)), answer=(20, 21, 22, EOS)):
    """Rows ``<bos> prompt <start> latents <end> answer``, left-padded with 0 so the latents line up; labels
    -100 on padding and latents."""
    rows = [[1, *p, START] for p in prompts]
    width = max(map(len, rows))
    tail = [LATENT] * n_latent + [END, *answer]
    ids = torch.tensor([[0] * (width - len(r)) + r + tail for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * (len(r) + len(tail)) for r in rows])
    labels = ids.masked_fill((mask == 0) | (ids == LATENT), -100)
    return ids, mask, labels


@pytest.mark.parametrize("n_latent", [0, 1, 3])
def test_forward_equals_reference(lm, n_latent):
    ids, mask, labels = batch(n_latent)
    cached, reference = lm(ids, mask, labels), lm.reference_forward(ids, mask, labels)
    assert cached.logits.shape == (3, ids.shape[1], VOCAB)
    assert cached.thoughts.shape == reference.thoughts.shape == (3, n_latent, 64)
    torch.testing.assert_close(cached.logits, reference.logits, **CLOSE)
    torch.testing.assert_close(cached.thoughts, reference.thoughts, **CLOSE)
    torch.testing.assert_close(cached.loss, reference.loss, **CLOSE)
    assert cached.attentions is None
    if n_latent:  # the thoughts are really fed in: replacing them by the latent token's embedding changes the answer
        plain = lm.model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)).logits
        assert not torch.allclose(plain[:, -3:], cached.logits[:, -3:], atol=1e-3)


def test_left_padding_does_not_change_a_row(lm):
    ids, mask, _ = batch(2)
    alone_ids, alone_mask, _ = batch(2, prompts=((17,),))
    together, alone = lm(ids, mask), lm(alone_ids, alone_mask)
    width = alone_ids.shape[1]
    torch.testing.assert_close(together.logits[2, -width:], alone.logits[0], **CLOSE)
    torch.testing.assert_close(together.thoughts[2], alone.thoughts[0], **CLOSE)


def test_right_padded_answers_match_reference(lm):
    ids, mask, labels = batch(2)
    mask[0, -2:] = 0  # row 0's answer is two tokens shorter
    ids[0, -2:], labels[0, -2:] = 0, -100
    cached, reference = lm(ids, mask, labels), lm.reference_forward(ids, mask, labels)
    torch.testing.assert_close(cached.logits, reference.logits, **CLOSE)
    torch.testing.assert_close(cached.loss, reference.loss, **CLOSE)


def test_gradients_flow_through_thoughts():
    model = tiny_model(1).train()
    lm = LatentLM(model, LATENT)
    ids, mask, labels = batch(3)

    def grads(loss_of) -> dict[str, torch.Tensor]:
        model.zero_grad()
        loss_of().backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    cached = grads(lambda: lm(ids, mask, labels).loss)
    assert lm(ids, mask, labels).thoughts.requires_grad
    reference = grads(lambda: lm.reference_forward(ids, mask, labels).loss)
    for name, grad in cached.items():
        scale = float(reference[name].abs().max())  # float32 rounding, relative to the largest gradient
        torch.testing.assert_close(grad, reference[name], atol=1e-4 * scale, rtol=1e-4, msg=name)
        assert grad.abs().sum() > 0, name

    def detach_thoughts(module, args, kwargs):  # the same forward with the thoughts cut off the graph
        if kwargs.get("inputs_embeds") is not None:
            kwargs["inputs_embeds"] = kwargs["inputs_embeds"].detach()
        return args, kwargs

    handle = model.register_forward_pre_hook(detach_thoughts, with_kwargs=True)
    try:
        detached = grads(lambda: lm(ids, mask, labels).loss)
    finally:
        handle.remove()
    assert not torch.allclose(detached["model.layers.0.mlp.up_proj.weight"],
                              cached["model.layers.0.mlp.up_proj.weight"], atol=1e-6)


def test_misaligned_latents_raise(lm):
    ids, mask, _ = batch(2)
    shifted = ids.clone()
    shifted[1, :-1] = ids[1, 1:]  # row 1's latents one column to the left
    with pytest.raises(InputError, match="same columns"):
        lm(shifted, mask)
    fewer = ids.clone()
    fewer[2, fewer[2].eq(LATENT).nonzero()[0, 0]] = 9  # row 2 has one latent less
    with pytest.raises(InputError, match="same columns"):
        lm.latent_columns(fewer)
    gap = ids.clone()
    gap[:, ids[0].eq(LATENT).nonzero()[-1, 0] + 2] = LATENT  # a latent after <endlatent>
    with pytest.raises(InputError, match="consecutive"):
        lm(gap, mask)
    first = torch.tensor([[LATENT, 9, 10]])
    with pytest.raises(InputError, match="column 0"):
        lm(first, torch.ones_like(first))
    hidden = mask.clone()
    hidden[0, ids[0].eq(LATENT).nonzero()[0, 0]] = 0
    with pytest.raises(InputError, match="attention_mask"):
        lm(ids, hidden)
    assert lm.latent_columns(ids) == (int(ids[0].eq(LATENT).nonzero()[0, 0]), 2)
    assert lm.latent_columns(batch(0)[0]) == (batch(0)[0].shape[1], 0)


def uncached_greedy(lm: LatentLM, ids, mask, max_new_tokens: int, eos_id: int) -> torch.Tensor:
    """Greedy decoding by recomputing everything each step: thoughts from reference_forward, put in their
    columns of the token embeddings, the whole sequence through the model with no cache."""
    c, n = lm.latent_columns(ids)
    thoughts = lm.reference_forward(ids, mask).thoughts
    embed = lm.model.get_input_embeddings()
    done = torch.zeros(ids.shape[0], dtype=torch.bool)
    new = []
    for _ in range(max_new_tokens):
        tokens = torch.cat([ids, *[t[:, None] for t in new]], 1)
        full = torch.cat([mask, torch.ones(ids.shape[0], len(new), dtype=mask.dtype)], 1)
        embeds = embed(tokens)
        embeds = torch.cat([embeds[:, :c], thoughts, embeds[:, c + n:]], 1)
        logits = lm.model(inputs_embeds=embeds, attention_mask=full, position_ids=position_ids(full)).logits
        token = torch.where(done, torch.full_like(done, eos_id, dtype=torch.long), logits[:, -1].argmax(-1))
        new.append(token)
        done |= token == eos_id
        if done.all():
            break
    return torch.stack(new, 1)


@torch.no_grad()
def test_generate_equals_uncached_greedy(lm):
    for n_latent in (0, 3):
        ids, mask, _ = batch(n_latent, answer=())
        free = lm.generate(ids, mask, 8, eos_id=-1)  # an eos that never comes: the full budget
        assert free.shape == (3, 8)
        torch.testing.assert_close(free, uncached_greedy(lm, ids, mask, 8, -1))
        eos = int(free[1, 2])  # a token row 1 makes early: rows stop there and are filled with it
        stopped = lm.generate(ids, mask, 8, eos_id=eos)
        torch.testing.assert_close(stopped, uncached_greedy(lm, ids, mask, 8, eos))
        for row in stopped.tolist():
            if eos in row:
                assert set(row[row.index(eos):]) == {eos}
        assert lm.generate(ids, mask, 0, eos_id=eos).shape == (3, 0)
    right = mask.clone()
    right[0, -1] = 0
    with pytest.raises(InputError, match="left padding"):
        lm.generate(ids, right, 4, eos_id=EOS)


def test_each_latent_step_is_one_position(lm):
    ids, mask, _ = batch(3)
    c, n = lm.latent_columns(ids)
    lengths = []

    def record(module, args, kwargs):
        x = kwargs["input_ids"] if kwargs.get("input_ids") is not None else kwargs["inputs_embeds"]
        lengths.append((x.shape[1], kwargs["past_key_values"] is not None, kwargs["position_ids"][:, -1].tolist()))

    handle = lm.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        with torch.no_grad():
            lm(ids, mask)
    finally:
        handle.remove()
    assert [length for length, _, _ in lengths] == [c, 1, 1, 1, ids.shape[1] - c - n]
    assert all(cached for _, cached, _ in lengths)
    last = position_ids(mask)
    assert [p for _, _, p in lengths[1:4]] == [last[:, col].tolist() for col in range(c, c + n)]


def test_output_attentions_shapes(lm):
    ids, mask, _ = batch(3)
    c, n = lm.latent_columns(ids)
    before = lm.model.config._attn_implementation
    with torch.no_grad():
        out, plain = lm(ids, mask, output_attentions=True), lm(ids, mask)
    assert lm.model.config._attn_implementation == before  # restored after the eager run
    assert len(out.attentions) == n + 1
    for j, layers in enumerate(out.attentions):
        assert len(layers) == 2
        for weights in layers:
            assert weights.shape == (3, 4, 1, c + j + 1)
            torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4, 1))
            assert (weights * (mask[:, None, None, :c + j + 1] == 0)).abs().max() == 0  # nothing on padding
    real = mask.bool()  # eager and sdpa differ only at padding columns (rows that attend to nothing)
    torch.testing.assert_close(out.logits[real], plain.logits[real], **CLOSE)
    assert lm(*batch(0)[:2], output_attentions=True).attentions == []


def test_latent_step_cost_runs():
    cost = latent_step_cost(tiny_model(), context_len=16, steps=3, batch=2)
    assert set(cost) == {"latent_step_s", "decode_step_s", "ratio"}
    assert all(v > 0 for v in cost.values())
