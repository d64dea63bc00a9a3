"""GRPO with ``fused_logprobs``: the loss and the parameter gradients of one step equal TRL's own computation.

One tiny trainer (``make_trainer`` with the switch on) scores the same hand-made batch twice: through our
``_get_per_token_logps_and_entropies`` (reasonpipe.kernels.logprob) and through TRL 1.16's (its fused LM head). Left-padded
prompts, right-padded completions, temperature 0.7, an old policy different from the current one (the clipping
acts), the entropy bonus and the high-entropy token mask on, so the entropy gradient counts too. On CPU the
reference runs in-process; the Triton code runs in a subprocess under ``TRITON_INTERPRET=1``.
"""

from __future__ import annotations

import os
import time
import types

import pytest
import torch

SEED = int(os.environ.get("GRPO_FUSED_SEED", time.time_ns() % 2**31))


def build_trainer(tmp: str, device: str = "cpu", bf16: bool = False):
    from datasets import Dataset

    from reasonpipe.rl import RLConfig, make_trainer
    from reasonpipe.models import build_model
    from reasonpipe.rewards import make_reward
    from reasonpipe.traces.tokens import BOS
    from reasonpipe.tokenizer import TaskTokenizer

    cfg = RLConfig(model="tiny", out=tmp, task="countdown", num_generations=2, prompts_per_step=2,
                        max_completion_length=8, temperature=0.7, fused_logprobs=True, quiet=True, device=device,
                        bf16=bf16)
    hf = TaskTokenizer.for_task("countdown").hf()
    model = build_model("tiny", hf, max_positions=64, seed=0)
    data = Dataset.from_dict({"prompt": [BOS + "Current State: 5:[2, 3], Operations: []\n"] * 4,
                              "problem": ['{"nums": [2, 3], "target": 5}'] * 4})
    trainer = make_trainer(cfg, model, hf, data, make_reward("correctness", "countdown"), [])
    trainer.entropy_coef, trainer._entropy_bonus_enabled = 0.05, True  # the entropy term gets a gradient
    trainer.top_entropy_quantile = 0.5  # and the high-entropy token mask acts
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); the loss is called directly here
    return trainer, len(hf)


def batch(vocab: int, seed: int, device: str = "cpu") -> dict:
    g = torch.Generator().manual_seed(seed)
    b, p, k = 4, 5, 7
    prompt_ids = torch.randint(4, vocab, (b, p), generator=g)
    prompt_mask = torch.ones(b, p, dtype=torch.long)
    prompt_mask[1, :2] = 0  # left padding
    prompt_mask[3, :1] = 0
    completion_ids = torch.randint(4, vocab, (b, k), generator=g)
    completion_mask = torch.ones(b, k, dtype=torch.long)
    completion_mask[0, 5:] = 0  # right padding after the end of a completion
    completion_mask[2, 3:] = 0
    out = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
           "completion_mask": completion_mask, "advantages": torch.randn(b, generator=g),
           "num_items_in_batch": completion_mask.sum(), "noise": 0.3 * torch.randn(b, k, generator=g)}
    return {key: v.to(device) for key, v in out.items()}


def loss_and_grads(trainer, inputs: dict, trl_method: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                       dict[str, torch.Tensor]]:
    """(per-token logps, entropies, loss, parameter gradients) of one GRPO step on ``inputs``."""
    from trl import GRPOTrainer

    if trl_method:
        trainer._get_per_token_logps_and_entropies = types.MethodType(
            GRPOTrainer._get_per_token_logps_and_entropies, trainer)
    else:
        trainer.__dict__.pop("_get_per_token_logps_and_entropies", None)
    model = trainer.model
    model.train()
    model.zero_grad(set_to_none=True)
    input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    attention = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    k = inputs["completion_ids"].size(1)
    with torch.no_grad():
        logps, ents, _ = trainer._get_per_token_logps_and_entropies(model, input_ids, attention, k,
                                                                     compute_entropy=True)
    step = {key: v for key, v in inputs.items() if key != "noise"}
    step["old_per_token_logps"] = inputs["old"]
    loss = trainer.compute_loss(model, step)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return logps, ents, loss.detach(), grads


def check_matches_trl(trainer, vocab: int, seed: int, bf16: bool = False) -> None:
    """Ours against TRL's on one batch. float32: to rounding. bf16 autocast: the two paths compute the logits with
    differently shaped bf16 matrix products (TRL's head in tiles of the valid rows), so a logit can round one bf16
    step apart (~0.4%); the tolerances are then those of bf16, and gradients are compared by relative norm."""
    device = str(trainer.accelerator.device)
    inputs = batch(vocab, seed, device)
    ref_logps, ref_ents, _, _ = loss_and_grads(trainer, {**inputs, "old": torch.zeros(1, device=device)},
                                               trl_method=True)
    inputs["old"] = (ref_logps + inputs["noise"]) * inputs["completion_mask"]  # ratios away from 1: clipping acts
    theirs = loss_and_grads(trainer, inputs, trl_method=True)
    ours = loss_and_grads(trainer, inputs, trl_method=False)
    msg = f"seed {seed} (rerun with GRPO_FUSED_SEED={seed})"
    tol = {"rtol": 2e-2, "atol": 5e-2} if bf16 else {"rtol": 1e-5, "atol": 2e-6}
    assert ours[0].dtype == theirs[0].dtype == torch.float32 and ours[0].shape == theirs[0].shape, msg
    torch.testing.assert_close(ours[0], theirs[0], **tol, msg=lambda m: f"logps, {msg}: {m}")
    torch.testing.assert_close(ours[1], theirs[1], **tol, msg=lambda m: f"entropies, {msg}: {m}")
    assert (ours[0][inputs["completion_mask"] == 0] == 0).all() and (ours[1][inputs["completion_mask"] == 0] == 0).all()
    torch.testing.assert_close(ours[2], theirs[2], rtol=2e-2 if bf16 else 1e-5, atol=1e-3 if bf16 else 1e-7,
                               msg=lambda m: f"loss, {msg}: {m}")
    assert ours[3].keys() == theirs[3].keys() and len(ours[3]) > 0
    scale = max(g.abs().max().item() for g in theirs[3].values())
    assert scale > 0, msg
    for name, g in theirs[3].items():
        if bf16:
            rel = ((ours[3][name] - g).norm() / g.norm().clamp(min=1e-12)).item()
            assert rel < 5e-2, f"grad {name}: relative norm difference {rel:.3g}, {msg}"
        else:
            torch.testing.assert_close(ours[3][name], g, rtol=1e-4, atol=1e-5 * scale,
                                       msg=lambda m, name=name: f"grad {name}, {msg}: {m}")


@pytest.fixture(scope="module")
def fused_trainer(tmp_path_factory):
    return build_trainer(str(tmp_path_factory.mktemp("grpo")))


def test_switch_selects_fused_trainer(fused_trainer):
    trainer, _ = fused_trainer
    # the fused-log-prob trainer, under the seeded rollouts every GRPO run has (reasonpipe.trl_compat)
    assert type(trainer).__name__ == "SeededFusedLogprobGRPOTrainer" and trainer.logprob_impl == "auto"
    assert "FusedLogprobGRPOTrainer" in [c.__name__ for c in type(trainer).__mro__]


def test_loss_and_grads_match_trl_reference_path(fused_trainer):
    trainer, vocab = fused_trainer
    check_matches_trl(trainer, vocab, SEED)


def test_loss_and_grads_match_trl_triton_interpreter(rerun_interpreted):
    """The Triton kernels (interpreted on CPU) inside the GRPO step, in a subprocess with TRITON_INTERPRET=1."""
    rerun_interpreted(timeout=300, GRPO_FUSED_SEED=str(SEED))


@pytest.mark.triton_interpret
def test_inside_interpreter(tmp_path):
    """Runs in the subprocess of test_loss_and_grads_match_trl_triton_interpreter."""
    trainer, vocab = build_trainer(str(tmp_path))
    trainer.logprob_impl = "triton"
    check_matches_trl(trainer, vocab, SEED)


@pytest.mark.gpu
@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_gpu_loss_and_grads_match_trl(tmp_path, bf16):
    """On CUDA the compiled Triton kernels run inside the step (``impl="auto"``), against TRL's fused LM head."""
    trainer, vocab = build_trainer(str(tmp_path), device="cuda", bf16=bf16)
    assert str(trainer.accelerator.device).startswith("cuda")
    check_matches_trl(trainer, vocab, SEED, bf16=bf16)
