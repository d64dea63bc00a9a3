"""Learning diagnostics (reasonpipe.diagnostics) and intervals (reasonpipe.stats) on hand-made inputs.

The task tokens each grammar marks, the completion counts on right / wrong-but-claimed / malformed completions,
teacher-forced accuracy with an oracle model (100%) and an untrained one, the learned verdict both ways, and the
Wilson interval against a computation by hand.
"""

from __future__ import annotations

import math
import random

import pytest
import torch

from reasonpipe.errors import InputError
from reasonpipe.diagnostics import (CompletionStats, comparison_sentence, completion_stats, learned_verdict,
                                    task_token_mask, token_accuracy)
from reasonpipe.searchers import SearchOptions, get_searcher
from reasonpipe.stats import Rate, rate_text, wilson
from reasonpipe.tasks import make_task
from reasonpipe.tokenizer import TaskTokenizer
from reasonpipe.traces.countdown import task_spans
from reasonpipe.tasks.countdown import CountdownProblem

PROBLEM = CountdownProblem((3, 6, 9), 36)
PROMPT = "Current State: 36:[3, 6, 9], Operations: []\n"
RIGHT = ("Exploring Operation: 3*9=27, Resulting Numbers: [6, 27]\n"
         "Generated Node #0,0: 36:[6, 27] Operation: 3*9=27\n"
         "Moving to Node #0,0\n"
         "Current State: 36:[6, 27], Operations: ['3*9=27']\n"
         "Exploring Operation: 6+27=33, Resulting Numbers: [33]\n"
         "33,36 unequal: No Solution\n"
         "Moving to Node #0,0\n"
         "Current State: 36:[6, 27], Operations: ['3*9=27']\n"
         "Exploring Operation: 27+9=36, Resulting Numbers: [36]\n")
WRONG_ARITHMETIC = ("Exploring Operation: 3*9=12, Resulting Numbers: [6, 12]\n"
                    "Generated Node #0,0: 36:[6, 12] Operation: 3*9=12\n"
                    "Moving to Node #0,0\n"
                    "Current State: 36:[6, 12], Operations: ['3*9=12']\n"
                    "Exploring Operation: 6*12=36, Resulting Numbers: [36]\n"
                    "36,36 equal: Goal Reached\n")


def solution() -> str:
    """A correct CountDown trace for PROBLEM (the DFS searcher's)."""
    task = make_task("countdown")
    trace = get_searcher("countdown", "dfs")(task, PROBLEM, SearchOptions(), random.Random(0))
    assert trace.meta.solved
    return trace.to_text()[len(PROMPT):]


def test_countdown_task_spans_are_results_leftover_numbers_and_goal_checks() -> None:
    text = PROMPT + WRONG_ARITHMETIC
    assert [text[a:b] for a, b in task_spans(text)] == ["12", "[6, 12]", "36", "[36]", "equal: Goal Reached"]


def test_completion_counts_on_hand_made_completions() -> None:
    task = make_task("countdown")
    right = solution()
    malformed = "Exploring Operaton: 3*9=27\nblah\n"
    stats = completion_stats(task, [PROBLEM] * 3, [PROMPT] * 3, [right, WRONG_ARITHMETIC, malformed])
    assert stats == CompletionStats(n=3, well_formed=2, claimed=2, claimed_wrong=1, solved=1)
    # a sample cut by its budget mid-line is not held against its form
    cut = right[: right.index("\n", 40) + 10]
    assert completion_stats(task, [PROBLEM], [PROMPT], [cut], [False]).well_formed == 1
    assert completion_stats(task, [PROBLEM], [PROMPT], [cut], [True]).well_formed == 0


class Oracle(torch.nn.Module):
    """Predicts the next token of whichever known sequence the input is a prefix of (a model that has learned)."""

    def __init__(self, sequences: list[list[int]], vocab: int) -> None:
        super().__init__()
        self.sequences, self.vocab = sequences, vocab
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        logits = torch.zeros(*input_ids.shape, self.vocab)
        for i, row in enumerate(input_ids.tolist()):
            n = int(attention_mask[i].sum())
            seq = next(s for s in self.sequences if s[:n] == row[:n])
            for t in range(n - 1):
                logits[i, t, seq[t + 1]] = 1.0
        return type("Out", (), {"logits": logits})()


def test_token_accuracy_oracle_is_perfect_and_untrained_model_is_not() -> None:
    from reasonpipe.models import build_model

    task = make_task("countdown")
    hf = TaskTokenizer.for_task("countdown").hf()
    texts = [PROMPT + solution(), PROMPT + WRONG_ARITHMETIC]
    oracle = Oracle([task_token_mask(hf, task, t, PROMPT)[0] for t in texts], len(hf))
    acc = token_accuracy(oracle, hf, task, texts, [PROMPT] * 2, max_len=100_000)
    assert acc.task == 1.0 and acc.all == 1.0 and acc.traces == 2
    ids, completion, on_task = task_token_mask(hf, task, texts[1], PROMPT)
    assert hf.decode([i for i, on in zip(ids, on_task) if on]).replace(" ", "") == "12[6,12]36[36]equal:GoalReached"
    assert acc.task_total == sum(task_token_mask(hf, task, t, PROMPT)[2].count(True) for t in texts)
    assert not any(on and not c for c, on in zip(completion, on_task))  # task tokens are completion tokens

    untrained = build_model("tiny", hf, seed=0)
    low = token_accuracy(untrained, hf, task, texts, [PROMPT] * 2)
    assert low.task < 0.2


def test_learned_verdict_fires_on_an_untrained_model_and_not_on_one_that_solves() -> None:
    assert not learned_verdict(0.12, Rate(0, 200), 0.73).learned
    assert not learned_verdict(0.97, Rate(50, 200), 0.73).learned  # 25% < half of 73%
    assert not learned_verdict(0.85, Rate(150, 200), 0.73).learned  # solves, but task tokens under 90%
    ok = learned_verdict(0.97, Rate(100, 200), 0.73)
    assert ok.learned and "learned" in ok.reason
    assert learned_verdict(0.95, Rate(101, 200), None).learned  # no bound: half of all problems
    sentence = comparison_sentence({"backtrack": learned_verdict(0.1, Rate(0, 200), 0.7), "direct": ok})
    assert sentence.startswith("This comparison is not meaningful: backtrack has not learned")
    assert comparison_sentence({"backtrack": ok, "direct": ok}).startswith("Every model here has learned")


def test_wilson_interval_matches_a_hand_computation() -> None:
    # 42 of 100 at z = 1.96: centre (0.42 + 1.96^2/200) / (1 + 1.96^2/100), half-width
    # 1.96 sqrt(0.42 * 0.58 / 100 + 1.96^2 / 40000) / (1 + 1.96^2 / 100)
    z = 1.959963984540054
    centre = (0.42 + z * z / 200) / (1 + z * z / 100)
    half = z * math.sqrt(0.42 * 0.58 / 100 + z * z / 40000) / (1 + z * z / 100)
    lo, hi = wilson(42, 100)
    assert lo == pytest.approx(centre - half) and hi == pytest.approx(centre + half)
    assert (round(lo, 4), round(hi, 4)) == (0.3280, 0.5179)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == pytest.approx(1.0)
    assert wilson(0, 0) == (0.0, 1.0)
    assert rate_text(42, 100) == "42.0% [32.8, 51.8]"
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_a_rate_is_above_another_only_when_the_intervals_do_not_overlap() -> None:
    # 60/100 is [50.2, 69.1] and 40/100 [30.9, 49.8]: apart; 55/100 [45.2, 64.4] overlaps 40/100's
    assert Rate(60, 100).above(Rate(40, 100)) and not Rate(40, 100).above(Rate(60, 100))
    assert not Rate(55, 100).above(Rate(40, 100)) and not Rate(40, 100).above(Rate(40, 100))


def test_every_task_grammar_marks_its_task_tokens() -> None:
    from reasonpipe.tasks import task_names

    cases = {
        "sudoku": ("START original: (0, 1) = 9 solving SOL_S\n(0, 8) = 6\nguess: (7, 2) [6, 8, 9] = 9\n(7, 2) = 9\n"
                   "nocand: (8, 2)\nrevert: (7, 2) [6, 8, 9] = None\nSOL_E END\n",
                   ["6", "6, 8, 9", "9", "9", "nocand: (8, 2)"]),
        "reachability": ("naf>nae Q nad nab R naa\nF nah\nF nab nag\nA nab\n", ["nah", "nab nag", "nab"]),
        "zebra_puzzles": ("Problem: x\nTry: a\nCheck: clue 1 holds\nReject: clue 3 fails\nAnswer: arnold\n",
                          ["holds", "fails", "arnold"]),
    }
    for name, (text, expected) in cases.items():
        spans = make_task(name).grammar.task_spans(text)
        assert [text[a:b] for a, b in spans] == expected, name
    for name in task_names():  # every task's grammar has the rule
        assert callable(getattr(make_task(name).grammar, "task_spans", None)), name


def test_direction_sentence_compares_at_equal_compute_and_names_the_papers_direction() -> None:
    from reasonpipe.evaluation import EvalConfig, ModelDiagnostics, direction_sentence
    from reasonpipe.strategies import Point

    def grid(seq_acc: float, par_accs: list[float]) -> list[Point]:
        # one sequential point at 1e7 FLOPs; parallel points at 5e6, 1e7 and 4e7 (the last beyond equal compute)
        return ([Point("sequential", 1024, seq_acc, 600.0, 1e7, 200)]
                + [Point("parallel", n, a, 150.0 * n, f, 200) for n, a, f in zip((1, 2, 8), par_accs, (5e6, 1e7, 4e7))])

    learned = [ModelDiagnostics("backtrack", "b", {}, {}, 0, 200, "L=1024", 0.6, True, "learned"),
               ModelDiagnostics("direct", "d", {}, {}, 0, 200, "n=8", None, True, "learned")]
    cfg = EvalConfig(task="sudoku", task_options={}, paper_direction="backtrack")
    # backtracking 60% vs the direct model's best within 1e7 FLOPs (n=2: 30%; n=8's 90% costs 4x): ahead
    s = direction_sentence(cfg, grid(0.6, [0.2, 0.3, 0.9]), learned)
    assert "at up to 1e+07 FLOPs" in s and "best-of-2" in s and "backtracking is ahead" in s
    assert "the paper's direction holds here" in s
    s = direction_sentence(cfg, grid(0.2, [0.2, 0.5, 0.9]), learned)
    assert "direct best-of-n is ahead" in s and "the paper's direction does not hold here" in s
    s = direction_sentence(cfg, grid(0.30, [0.2, 0.33, 0.9]), learned)  # 60/200 vs 66/200: intervals overlap
    assert "intervals overlap" in s and "cannot confirm or refute it" in s
    not_learned = [learned[0], ModelDiagnostics("direct", "d", {}, {}, 0, 200, "n=8", None, False, "not learned")]
    s = direction_sentence(cfg, grid(0.6, [0.2, 0.3, 0.9]), not_learned)
    assert s.startswith("sudoku: not meaningful: direct has not learned") and "test the paper" in s
    assert "only one strategy" in direction_sentence(cfg, grid(0.6, [])[:1], learned[:1])
    with pytest.raises(InputError, match="unknown direction"):
        EvalConfig(task="sudoku", task_options={}, paper_direction="sideways")
