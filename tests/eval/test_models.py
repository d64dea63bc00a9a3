"""Model sizes, the FLOPs formula, and the strategies' arithmetic on fixed completions."""

from __future__ import annotations

import math

import pytest
import torch

from reasonpipe.budgets import flops, sequence_flops
from reasonpipe.models import SIZES, qwen2_config
from reasonpipe.sampling import Completion
from reasonpipe.tasks import make_task
from reasonpipe.tasks.countdown import CountdownProblem
from reasonpipe.tokenizer import TaskTokenizer
from reasonpipe.strategies import majority_correct, parallel_points, pass_at_k, sequential_points

HF = TaskTokenizer.for_task("countdown").hf()


def test_flops_formula_by_hand():
    # 3M: d=256, kv=64, ffn=512, 6 layers: lin = 2*256^2 + 2*256*64 + 3*256*512 = 557,056
    assert flops(6, 256, 64, 512, 1) == 6 * (557_056 * 1 + 256 * 1 * 2 / 2) == 3_343_872
    assert flops(6, 256, 64, 512, 4096) == 6 * (557_056 * 4096 + 256 * 4096 * 4097 / 2) == 26_578_255_872
    assert flops(1, 10, 2, 3, 5) == (2 * 100 + 2 * 10 * 2 + 3 * 10 * 3) * 5 + 10 * 5 * 6 / 2
    config = qwen2_config("3M", HF)
    assert sequence_flops(config, 4096) == flops(6, 256, 64, 512, 4096)


@pytest.mark.parametrize("size,low,high", [("3M", 3.0e6, 4e6), ("17M", 17e6, 19e6), ("38M", 38e6, 39e6),
                                           ("144M", 144e6, 146e6)])
def test_named_sizes_have_their_parameter_counts(size, low, high):
    from transformers import Qwen2ForCausalLM

    with torch.device("meta"):
        model = Qwen2ForCausalLM(qwen2_config(size, HF))
    n = sum(p.numel() for p in model.parameters())
    assert low <= n < high
    s = SIZES[size]
    assert model.config.num_attention_heads * model.config.head_dim == s.hidden
    assert model.config.num_key_value_heads * model.config.head_dim == s.kv


def test_pass_at_k_and_majority():
    assert pass_at_k(10, 3, 4) == pytest.approx(1 - math.comb(7, 4) / math.comb(10, 4)) == pytest.approx(5 / 6)
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4) and pass_at_k(4, 0, 2) == 0.0 and pass_at_k(4, 3, 2) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    assert majority_correct(["a", "b", "a"], [False, True, False]) is False
    assert majority_correct(["b", "a", "a", "b"], [True, False, False, True]) is True  # tie: first seen wins
    assert majority_correct([None, "x"], [False, True]) is True and majority_correct([None], [False]) is False


PROBLEM = CountdownProblem((3, 5, 7), 22)
PROMPT = make_task("countdown").prompt(PROBLEM)
GOOD = ("Exploring Operation: 3*5=15, Resulting Numbers: [7, 15]\nGenerated Node #0,0: 22:[7, 15] Operation: 3*5=15\n"
        "Moving to Node #0,0\nCurrent State: 22:[7, 15], Operations: ['3*5=15']\n"
        "Exploring Operation: 7+15=22, Resulting Numbers: [22]\n22,22 equal: Goal Reached\n")
BAD = GOOD.replace("7+15=22, Resulting Numbers: [22]\n22,22", "7+15=23, Resulting Numbers: [23]\n23,22")  # a wrong answer
GOOD2 = GOOD.replace("3*5=15", "5*3=15")  # a different (also correct) answer


def completion(text: str) -> Completion:
    ids = HF(text, add_special_tokens=False)["input_ids"] + [HF.eos_token_id]
    return Completion(text, len(ids), 1 + len(HF(PROMPT, add_special_tokens=False)["input_ids"]), True, tuple(ids))


def test_parallel_points_on_fixed_completions():
    task = make_task("countdown")
    config = qwen2_config("tiny", HF)
    rows = [[completion(BAD), completion(GOOD), completion(BAD), completion(GOOD2)]]
    pts = {p.budget: p for p in parallel_points(task, [PROBLEM], [PROMPT], rows, [1, 2, 4], config)}
    assert pts[1].accuracy == 0.0 and pts[2].accuracy == 1.0 and pts[4].accuracy == 1.0
    assert pts[1].pass_at_k == pytest.approx(0.5) and pts[2].pass_at_k == pytest.approx(1 - 1 / 6)
    # four answers, two wrong ones equal: majority picks the wrong answer at n=4; at n=2 the tie goes to BAD
    assert pts[4].majority == 0.0 and pts[2].majority == 0.0
    expected = sum(sequence_flops(config, c.prompt_tokens + c.tokens) for c in rows[0][:2])
    assert pts[2].mean_flops == pytest.approx(expected) and pts[2].mean_tokens == rows[0][0].tokens + rows[0][1].tokens


def test_sequential_points_cut_at_the_budget():
    task = make_task("countdown")
    config = qwen2_config("tiny", HF)
    c = completion(GOOD)
    pts = {p.budget: p for p in sequential_points(task, [PROBLEM], [PROMPT], [c], [10, c.tokens - 1, c.tokens],
                                                  config, HF)}
    assert pts[10].accuracy == 0.0 and pts[c.tokens].accuracy == 1.0
    assert pts[c.tokens - 1].accuracy == 1.0  # everything but <eos> already holds the answer
    assert pts[10].mean_tokens == 10 and pts[10].mean_flops == sequence_flops(config, c.prompt_tokens + 10)
