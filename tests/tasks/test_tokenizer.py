"""Task tokenizers: exact round trip on every trace grammar, counts equal to the real tokenizer's."""

from __future__ import annotations

import random

import pytest
from transformers import PreTrainedTokenizerFast

from reasonpipe.tasks import make_task
from reasonpipe.tokenizer import TaskTokenizer, count_tokens, tokens_of
from reasonpipe.searchers import SearchOptions, get_searcher

GRAMMARS = [("countdown", s) for s in ("dfs", "bfs", "beam", "direct", "kbacktrack")] + \
           [("sudoku", s) for s in ("dfs", "direct", "kbacktrack")]


@pytest.mark.parametrize("task,searcher", GRAMMARS)
def test_round_trip_on_every_grammar(task, searcher, tmp_path):
    tok = TaskTokenizer.for_task(task)
    tok.save(str(tmp_path))
    hf = PreTrainedTokenizerFast.from_pretrained(str(tmp_path))  # as every later stage loads it
    t = make_task(task)
    for i in range(4):
        rng = random.Random(i)
        text = get_searcher(task, searcher)(t, t.generate(rng), SearchOptions(k=2, beam=2), rng).to_text()
        ids = hf(text, add_special_tokens=False)["input_ids"]
        assert hf.unk_token_id not in ids and tok.unknown(text) == set()
        assert hf.decode(ids) == text
        assert len(ids) == tok.count(text) == len(tokens_of(text)) < len(text)  # words are single tokens


def test_count_matches_the_pattern_on_any_text():
    rng = random.Random(0)
    alphabet = "ab_Z09 \n,:[]#'-é\u0663\t"
    for _ in range(2000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert count_tokens(s) == len(tokens_of(s)), s


def test_vocabularies_are_small_and_words_are_tokens():
    cd = TaskTokenizer.for_task("countdown")
    assert {"Current", "State", "Exploring", "Goal", "Reached", "0", "9", " ", "\n", "["} <= set(cd.tokens)
    assert len(cd.tokens) < 60
    sd = TaskTokenizer.for_task("sudoku")
    assert {"START", "SOL_S", "guess", "revert", "None"} <= set(sd.tokens)
    hf = cd.hf()
    assert hf.decode(hf("Hello 47")["input_ids"]) == "<unk> 47"  # outside the grammar
