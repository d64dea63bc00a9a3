"""The superposition probe (reasonpipe.latent_probe): recall is 1.0 for thoughts that are the frontier and chance
for random ones, the pause readout uses coconut's columns and the same (final-norm) hidden state, intervals,
the table and the sentence."""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict

import pytest
import torch

from reasonpipe.errors import InputError
from reasonpipe.latent import LatentLM, position_ids
from reasonpipe.latent_data import collate, reachable_within
from reasonpipe.latent_probe import (ProbeRow, frontier_recall, frontier_sentence, mean_interval, probe, probe_table,
                                     read_thoughts, thought_columns)
from reasonpipe.latent_train import LatentConfig, build_model, node_token_ids, tokenizer
from reasonpipe.tasks import make_task

NODES, HIDDEN = 8, 32


@pytest.fixture(scope="module")
def setting():
    cfg = LatentConfig(task_options={"nodes": NODES, "depth": 2}, hidden=HIDDEN, heads=2, layers=1, batch_size=64)
    task = make_task("reachability", nodes=NODES, depth=2)
    return cfg, task, tokenizer()


def orthonormal_nodes(cfg, tok):
    """A tiny model whose node embeddings (tied) are the unit vectors e_0 .. e_7: a thought's inner products
    with them are its first eight coordinates."""
    model = build_model(cfg, tok, 0).eval()
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        for i, token in enumerate(node_token_ids(tok, NODES)):
            weight[token] = torch.nn.functional.one_hot(torch.tensor(i), HIDDEN).float()
    return model


def graphs(task, n: int, seed: int = 0) -> list:
    return [task.generate(random.Random(seed * 100_000 + i)) for i in range(n)]


def test_mean_interval_matches_a_hand_computation():
    mean, low, high = mean_interval([0.5, 1.0, 0.75, 0.25])
    sd = math.sqrt((0.125 ** 2 + 0.375 ** 2 + 0.125 ** 2 + 0.375 ** 2) / 3)  # sample sd about 0.625
    assert mean == pytest.approx(0.625)
    assert low == pytest.approx(0.625 - 1.959963984540054 * sd / 2)
    assert high == pytest.approx(0.625 + 1.959963984540054 * sd / 2)
    assert mean_interval([1.0, 1.0, 1.0, 0.9])[2] == 1.0  # clipped at 1
    assert mean_interval([0.0, 0.0, 0.1])[1] == 0.0  # and at 0
    assert mean_interval([1.0, 1.0]) == (1.0, 1.0, 1.0)
    assert mean_interval([0.4]) == (0.4, 0.0, 1.0)  # no spread to estimate from one value
    assert all(math.isnan(v) for v in mean_interval([]))


def test_frontier_recall_ranks_by_inner_product():
    table = torch.eye(NODES, HIDDEN)
    target = {1, 4, 6}
    assert frontier_recall(table[sorted(target)].mean(0), table, target) == 1.0
    assert frontier_recall(table[[0, 2, 3]].mean(0), table, target) == 0.0
    assert frontier_recall(table[[1, 2, 3]].mean(0), table, target) == pytest.approx(1 / 3)
    assert math.isnan(frontier_recall(table[0], table, set()))


def test_thoughts_that_are_the_frontier_have_recall_one(setting):
    cfg, task, tok = setting
    model = orthonormal_nodes(cfg, tok)
    table = model.get_input_embeddings().weight.detach()[node_token_ids(tok, NODES)]
    m = cfg.stages * cfg.per_step

    def frontier_thoughts(batch, chunk):  # thought t = the mean embedding of the nodes within t + 1 edges
        out = torch.zeros(len(chunk), m, HIDDEN)
        for row, problem in enumerate(chunk):
            for t in range(m):
                out[row, t] = table[sorted(reachable_within(problem, t + 1))].mean(0)
        return out

    problems = graphs(task, 40)
    rows = probe(cfg, model, task, problems, thoughts_fn=frontier_thoughts)
    assert [r.step for r in rows] == list(range(m)) and m == 2
    for r in rows:
        assert r.reach_recall == 1.0 and tuple(r.reach_interval) == (1.0, 1.0)
        assert r.problems == 40 and r.method == "coconut"
        assert r.chance < 1.0
    assert rows[0].layer_recall == 1.0  # within one edge is BFS layer 1
    assert "hold the frontier:" in frontier_sentence({"coconut": rows})


def test_random_thoughts_get_chance(setting):
    cfg, task, tok = setting
    model = orthonormal_nodes(cfg, tok)
    m = cfg.stages * cfg.per_step
    generator = torch.Generator().manual_seed(0)

    def random_thoughts(batch, chunk):  # iid Gaussian scores over the 8 nodes: a uniformly random ranking
        return torch.randn(len(chunk), m, HIDDEN, generator=generator)

    problems = graphs(task, 1000, seed=1)
    rows = probe(cfg, model, task, problems, thoughts_fn=random_thoughts)
    for t, r in enumerate(rows):
        # a random ranking's expected recall@|F| is |F| / nodes, per problem; chance is its mean
        expected = sum(len(reachable_within(p, t + 1)) / p.nodes for p in problems) / len(problems)
        assert r.chance == pytest.approx(expected)
        low, high = r.reach_interval
        assert abs(r.reach_recall - expected) < min(0.03, high - low)  # within ~4 standard errors
        assert 0.01 < high - low < 0.08
    assert "do not hold the frontier" in frontier_sentence({"coconut": rows})


def test_pause_reads_the_same_columns_and_the_same_hidden_state_as_coconut(setting):
    cfg, task, tok = setting
    model = build_model(cfg, tok, 3).eval()
    problems = graphs(task, 5, seed=2)
    m = 2
    batches = {method: collate(task, problems, method, [cfg.stages] * 5, cfg.per_step, tok, thoughts=m,
                               with_completion=False) for method in ("coconut", "pause")}
    reads = {method: read_thoughts(model, b, method, tok) for method, b in batches.items()}
    coconut, pause = reads["coconut"], reads["pause"]
    width = batches["coconut"].prompt_width
    assert batches["pause"].prompt_width == width
    assert coconut.readout_columns == pause.readout_columns == thought_columns(width, m)[0] == [width, width + 1]
    assert coconut.query_columns == pause.query_columns == [width + 1, width + 2]
    ids, mask = batches["coconut"].input_ids, batches["coconut"].attention_mask
    assert LatentLM(model, tok.convert_tokens_to_ids("latent")).latent_columns(ids) == (coconut.query_columns[0], m)
    with torch.no_grad():
        plain = LatentLM(model, tok.convert_tokens_to_ids("latent"))(ids, mask).thoughts  # sdpa, not eager
        # after the final norm in both: the base model's last_hidden_state (what the tied head reads)
        base = model.model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)).last_hidden_state
        p_ids, p_mask = batches["pause"].input_ids, batches["pause"].attention_mask
        p_base = model.model(input_ids=p_ids, attention_mask=p_mask,
                             position_ids=position_ids(p_mask)).last_hidden_state
    torch.testing.assert_close(coconut.thoughts, plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(coconut.thoughts[:, 0], base[:, width], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pause.thoughts, p_base[:, [width, width + 1]], atol=1e-5, rtol=1e-5)
    # thought 0 comes from the startlatent column, identical in both sequences: the same vector
    torch.testing.assert_close(pause.thoughts[:, 0], coconut.thoughts[:, 0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(pause.thoughts[:, 1], coconut.thoughts[:, 1], atol=1e-4)  # the thought fed back
    for t in range(m):
        assert len(coconut.attention[t]) == len(pause.attention[t]) == 1
        for a, b in zip(coconut.attention[t], pause.attention[t]):
            assert a.shape == b.shape == (5, width + 2 + t)
            torch.testing.assert_close(a.sum(-1), torch.ones(5))
            torch.testing.assert_close(b.sum(-1), torch.ones(5))
    with pytest.raises(InputError, match="thought block"):
        read_thoughts(model, batches["coconut"], "pause", tok)


def test_probe_runs_on_tiny_models_for_every_method(setting):
    cfg, task, tok = setting
    problems = graphs(task, 24, seed=3)
    by_method = {
        "coconut": probe(cfg, build_model(cfg, tok, 4).eval(), task, problems),
        "pause": probe(cfg, build_model(cfg, tok, 5).eval(), task, problems, method="pause"),
        "untrained": probe(cfg, build_model(cfg, tok, 6).eval(), task, problems, name="untrained"),
    }
    for method, rows in by_method.items():
        assert [r.step for r in rows] == [0, 1] and {r.method for r in rows} == {method}
        for r in rows:
            assert r.problems == 24 and 0 < r.chance < 1
            for value, (low, high) in ((r.reach_recall, r.reach_interval), (r.layer_recall, r.layer_interval)):
                assert 0.0 <= low <= value <= high <= 1.0
            assert set(r.attention) == {"layer0"} and set(r.attention["layer0"]) == {"frontier", "path", "unreachable"}
            assert all(math.isnan(v) or v > 0 for v in r.attention["layer0"].values())
    headers, cells = probe_table([r for rows in by_method.values() for r in rows])
    assert headers[:2] == ["method", "thought"] and len(cells) == 6
    assert [c[0] for c in cells] == ["coconut"] * 2 + ["pause"] * 2 + ["untrained"] * 2
    assert all(len(c) == len(headers) for c in cells)
    sentence = frontier_sentence(by_method)
    assert "untrained model" in sentence and "pause model" in sentence
    with pytest.raises(InputError, match="unknown probe method"):
        probe(cfg, build_model(cfg, tok, 4), task, problems, method="cot")


def row(step: int, recall: float, interval: tuple[float, float], method: str = "coconut",
        chance: float = 0.3) -> ProbeRow:
    return ProbeRow(step, recall, recall, chance, {}, 100, method, interval, interval)


def test_table_shows_intervals_and_old_rows_still_load():
    headers, cells = probe_table([row(0, 0.83, (0.79, 0.87))])
    assert headers[2] == "reach recall@|F| [95%]" and cells[0][:5] == ["coconut", "0", "0.83 [0.79, 0.87]",
                                                                       "0.83 [0.79, 0.87]", "0.30"]
    old = {"step": 0, "reach_recall": 0.5, "layer_recall": 0.4, "chance": 0.3,
           "attention": {"layer0": {"frontier": 1.2, "path": 1.1, "unreachable": float("nan")}}, "problems": 12}
    loaded = ProbeRow(**old)
    assert loaded.method == "coconut" and all(math.isnan(v) for v in loaded.reach_interval)
    assert probe_table([loaded])[1][0][2:5] == ["0.50", "0.40", "0.30"]  # no interval known: just the mean
    again = ProbeRow(**json.loads(json.dumps(asdict(row(1, 0.6, (0.5, 0.7))))))  # tuples come back as lists
    assert probe_table([again])[1][0][2] == "0.60 [0.50, 0.70]"
    old_rows = frontier_sentence({"coconut": [loaded], "pause": [loaded]})
    assert old_rows.startswith("These rows have no intervals") and "not distinguishable" in old_rows


def test_frontier_sentence_above_overlapping_partial_and_without_untrained():
    above = frontier_sentence({"coconut": [row(0, 0.91, (0.88, 0.94)), row(1, 0.85, (0.8, 0.9))],
                               "untrained": [row(0, 0.35, (0.3, 0.4), "untrained"),
                                             row(1, 0.5, (0.45, 0.55), "untrained")]})
    assert above.startswith("The continuous thoughts hold the frontier:")
    assert "0.91 [0.88, 0.94] at thought 0" in above and "0.35 [0.30, 0.40]" in above and "untrained" in above

    overlapping = frontier_sentence({"coconut": [row(0, 0.4, (0.33, 0.47))],
                                     "untrained": [row(0, 0.35, (0.3, 0.4), "untrained")]})
    assert overlapping.startswith("The continuous thoughts do not hold the frontier here")
    assert "within an untrained model's interval or below it" in overlapping

    partial = frontier_sentence({"coconut": [row(0, 0.9, (0.85, 0.95)), row(1, 0.5, (0.4, 0.6))],
                                 "untrained": [row(0, 0.3, (0.25, 0.35), "untrained"),
                                               row(1, 0.5, (0.45, 0.55), "untrained")]})
    assert "only at thought 0" in partial and "at thought 1 it is within an untrained" in partial

    no_untrained = frontier_sentence({"coconut": [row(0, 0.9, (0.85, 0.95), chance=0.3)]})
    assert no_untrained.startswith("The continuous thoughts hold the frontier") and "chance" in no_untrained
    at_chance = frontier_sentence({"coconut": [row(0, 0.32, (0.25, 0.39), chance=0.3)], "untrained": []})
    assert at_chance.startswith("The continuous thoughts do not hold") and "not above the chance line (0.30)" in at_chance

    with_pause = frontier_sentence({"coconut": [row(0, 0.9, (0.85, 0.95)), row(1, 0.6, (0.5, 0.7))],
                                    "pause": [row(0, 0.4, (0.35, 0.45), "pause"), row(1, 0.62, (0.55, 0.69), "pause")]})
    assert "Against the pause model" in with_pause
    assert "higher at thought 0 (0.90 vs 0.40 [0.35, 0.45])" in with_pause
    assert "not distinguishable at thought 1" in with_pause
    assert frontier_sentence({}).startswith("No coconut probe rows")
