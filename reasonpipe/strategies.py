"""Inference-time strategies over a model: sequential (one long sample within L tokens) and parallel
(n short samples: best-of-n by the exact checker, majority vote, pass@k), each with its tokens and FLOPs.

A completion is *correct* when the task's exact scorer accepts the full trace (prompt + completion): the
final answer follows the rules and reaches the goal. Best-of-n is correct when any of the n is (the
checker picks it); majority vote takes the most common parsed answer (ties: the first seen) and is correct
when that answer is; pass@k is the unbiased estimator ``1 - C(n-c, k) / C(n, k)`` from n samples with c
correct.

Budgets reuse samples: the sequential curve samples once at the largest L and reads each smaller L as the
prefix of L tokens (the same tokens a run stopped at L would have made, for the same seed); the parallel
curve samples the largest n and reads each smaller n as the first n samples.

Example::

    python -c "from reasonpipe.strategies import pass_at_k; print(pass_at_k(10, 3, 4))"
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from reasonpipe.budgets import sequence_flops
from reasonpipe.sampling import Completion
from reasonpipe.tasks import completion_text, score_completion
from reasonpipe.textformat import ANSWER, TextFormat


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c of them correct) is correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def majority_correct(answers: list[Any], correct: list[bool]) -> bool:
    """Is the most common non-empty answer correct? (ties: the first answer seen among the tied)"""
    seen = [(a, ok) for a, ok in zip(answers, correct) if a is not None]
    if not seen:
        return False
    counts = Counter(a for a, _ in seen)
    top = max(counts.values())
    winner = next(a for a, _ in seen if counts[a] == top)
    return next(ok for a, ok in seen if a == winner)


@dataclass
class Judged:
    """One completion, judged."""

    completion: Completion
    correct: bool
    answer: Any  # hashable parsed answer, or None


def judge(task: Any, problem: Any, prompt: str, completion: Completion, token_prefix: int | None = None,
          tokenizer: Any = None, text_format: TextFormat | None = None) -> Judged:
    """Score ``prompt + completion`` (optionally only its first ``token_prefix`` generated tokens); in the answer
    layout of ``text_format``, the ``<answer>`` content (:meth:`reasonpipe.textformat.TextFormat.score`)."""
    text = completion.text
    if token_prefix is not None and completion.tokens > token_prefix:
        ids = completion.ids[:token_prefix]
        text = tokenizer.decode([t for t in ids if t != tokenizer.eos_token_id])
        completion = Completion(text, token_prefix, completion.prompt_tokens, False, ids)
    if text_format is not None and text_format.layout == "answer":
        ok = text_format.score(task, problem, text) == 1.0
        found = ANSWER.findall(text)
        return Judged(completion, ok, " ".join(found[-1].split()) if found else None)
    ok = score_completion(task, problem, prompt, text) == 1.0
    answer = task.parse_answer(completion_text(prompt, text))
    if isinstance(answer, list):
        answer = tuple(str(a) for a in answer)
    return Judged(completion, ok, answer)


@dataclass
class Point:
    """Accuracy at one budget, with what it cost."""

    strategy: str        # sequential | parallel
    budget: int          # L for sequential, n for parallel
    accuracy: float      # sequential: solved; parallel: best-of-n
    mean_tokens: float   # generated tokens per problem (all samples)
    mean_flops: float    # FLOPs per problem, by the paper's formula, over prompt + generated tokens
    problems: int
    majority: float | None = None
    pass_at_k: float | None = None


def sequential_points(task: Any, problems: list[Any], prompts: list[str], samples: list[Completion],
                      lengths: list[int], config: Any, tokenizer: Any) -> list[Point]:
    """One sample per problem, read at each length budget L (in generated tokens)."""
    points = []
    for L in sorted(lengths):
        judged = [judge(task, p, pr, c, L, tokenizer) for p, pr, c in zip(problems, prompts, samples)]
        tokens = [j.completion.tokens for j in judged]
        flops = [sequence_flops(config, j.completion.prompt_tokens + j.completion.tokens) for j in judged]
        points.append(Point("sequential", L, sum(j.correct for j in judged) / len(judged), sum(tokens) / len(judged),
                            sum(flops) / len(judged), len(judged)))
    return points


def parallel_points(task: Any, problems: list[Any], prompts: list[str], samples: list[list[Completion]],
                    ns: list[int], config: Any) -> list[Point]:
    """The first n samples per problem, at each n: best-of-n, majority and pass@n."""
    judged = [[judge(task, p, pr, c) for c in row] for p, pr, row in zip(problems, prompts, samples)]
    points = []
    for n in sorted(ns):
        best, major, passk, tokens, flops = 0, 0, 0.0, 0, 0.0
        for row in judged:
            first = row[:n]
            correct = [j.correct for j in first]
            best += any(correct)
            major += majority_correct([j.answer for j in first], correct)
            passk += pass_at_k(len(row), sum(j.correct for j in row), n)
            tokens += sum(j.completion.tokens for j in first)
            flops += sum(sequence_flops(config, j.completion.prompt_tokens + j.completion.tokens) for j in first)
        m = len(judged)
        points.append(Point("parallel", n, best / m, tokens / m, flops / m, m, major / m, passk / m))
    return points
