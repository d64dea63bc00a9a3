"""SFT on traces (TRL SFTTrainer): data preparation, loss going down, and resume after an interruption."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from reasonpipe.sft import FastEncoder, SFTConfig, bucketed_order, build_dataset, train
from reasonpipe.tokenizer import TaskTokenizer

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    from reasonpipe.tracegen import GenRequest, generate
    from reasonpipe.searchers import SearchOptions

    out = str(tmp_path_factory.mktemp("sft") / "cd3.jsonl")
    generate(GenRequest(task="countdown", searcher="dfs", out=out, n=400, seed=3, task_options={"numbers": 3},
                        search=SearchOptions()))
    return out


def test_fast_encoder_equals_the_tokenizer(traces):
    tok = TaskTokenizer.for_task("countdown")
    hf = tok.hf()
    enc = FastEncoder(tok, hf)
    with open(traces) as f:
        for line in list(f)[:50]:
            text = json.loads(line)["text"]
            assert enc.encode(text).tolist() == hf(text, add_special_tokens=False)["input_ids"]
    odd = "Statement 12 Hello\n"  # words outside the grammar: the exact path
    assert enc.encode(odd).tolist() == hf(odd, add_special_tokens=False)["input_ids"]


def test_dataset_masks_the_prompt_and_drops_long_examples(traces):
    hf = TaskTokenizer.for_task("countdown").hf()
    ds, lengths, stats, _ = build_dataset([traces], "countdown", hf, max_len=512)
    assert stats.examples + stats.dropped_too_long == 400 and stats.dropped_too_long > 0
    row = ds[0]
    ids, labels = row["input_ids"], row["labels"]
    assert ids[0] == hf.bos_token_id and ids[-1] == hf.eos_token_id and len(ids) <= 512 == max(512, len(ids))
    first = labels.index(next(x for x in labels if x != -100))
    assert all(x == -100 for x in labels[:first]) and labels[first:] == ids[first:]
    assert hf.decode(ids[1:first]).startswith("Current State:") and hf.decode(ids[1:first]).endswith("Operations: []\n")
    assert list(lengths) == [len(r) for r in ds["input_ids"]]


def test_bucketed_order_is_seeded_and_stable_in_its_prefix():
    lengths = np.random.default_rng(0).integers(10, 500, size=300)
    a = bucketed_order(lengths, 8, 20, seed=1)
    assert a == bucketed_order(lengths, 8, 20, seed=1) and a != bucketed_order(lengths, 8, 20, seed=2)
    assert bucketed_order(lengths, 8, 60, seed=1)[: len(a)] == a  # a longer run starts with the same batches
    spread = [max(lengths[a[i:i + 8]]) - min(lengths[a[i:i + 8]]) for i in range(0, len(a), 8)]
    assert np.mean(spread) < 60  # batches hold similar lengths


def config(traces, out, **kw) -> SFTConfig:
    base = dict(data=[traces], out=str(out), task="countdown", model="tiny", max_len=512, batch_size=8,
                max_steps=40, lr=3e-3, warmup_steps=5, save_every=10, log_every=5, quiet=True, seed=0)
    return SFTConfig(**{**base, **kw})


def test_sft_of_a_tiny_model_lowers_the_loss(traces, tmp_path):
    s = train(config(traces, tmp_path / "run", max_steps=60))
    assert s["steps"] == 60 and s["last_loss"] < s["first_loss"] - 0.8
    final = tmp_path / "run" / "final"
    assert (final / "tokenizer.json").exists() and (final / "config.json").exists()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("token_accuracy" in r for r in rows) and rows[-1]["step"] == 60
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["summary"]["steps"] == 60


def test_resume_continues_from_the_checkpoint_with_the_same_data_order(traces, tmp_path):
    from transformers import AutoModelForCausalLM, TrainerCallback

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 20:
                control.should_training_stop = True  # as if killed right after checkpoint-20 was written

    cut = tmp_path / "cut"
    first = train(config(traces, cut), callbacks=[Interrupt()])
    assert first["steps"] == 20 and (cut / "checkpoints" / "checkpoint-20").is_dir()
    resumed = train(config(traces, cut))  # resume="auto"
    assert resumed["resumed_from"].endswith("checkpoint-20") and resumed["steps"] == 40
    whole = train(config(traces, tmp_path / "whole", resume="never"))
    a = AutoModelForCausalLM.from_pretrained(cut / "final").state_dict()
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "whole" / "final").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)  # the same model as an uninterrupted run
    assert resumed["last_loss"] == pytest.approx(whole["last_loss"], rel=1e-4)


def test_equal_token_budget_stops_early(traces, tmp_path):
    s = train(config(traces, tmp_path / "budget", max_steps=200, max_tokens=20_000, log_every=2))
    assert s["steps"] < 200 and 20_000 <= s["tokens_seen"] < 20_000 + 8 * 512


def test_right_padding_needs_no_attention_mask():
    """The trainer drops the mask: with right padding the real tokens' logits are the same without it."""
    from reasonpipe.models import build_model

    hf = TaskTokenizer.for_task("countdown").hf()
    model = build_model("tiny", hf, seed=1).eval()
    ids = torch.randint(4, len(hf), (3, 20))
    mask = torch.ones_like(ids)
    for row, n in enumerate((20, 13, 7)):
        ids[row, n:] = hf.pad_token_id
        mask[row, n:] = 0
    with torch.no_grad():
        a = model(input_ids=ids, attention_mask=mask).logits
        b = model(input_ids=ids).logits
    assert torch.allclose(a[mask.bool()], b[mask.bool()], atol=1e-5)
