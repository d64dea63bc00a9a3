"""Continuous-thought training data, controls and the job end to end at toy size (reasonpipe.latent_*)."""

from __future__ import annotations

import json
import random

import pytest

from reasonpipe.errors import InputError
from reasonpipe.latent_data import collate, reachable_within, render
from reasonpipe.latent_train import LatentConfig, planned_steps, stage_batches, tokenizer
from reasonpipe.tasks import make_task


@pytest.fixture(scope="module")
def setting():
    task = make_task("reachability", nodes=10, depth=3)
    return task, [task.generate(random.Random(i)) for i in range(6)], tokenizer()


def test_the_pause_control_uses_the_same_positions_as_continuous_thought(setting):
    task, problems, tok = setting
    for stage in range(4):
        latent = collate(task, problems, "coconut", [stage] * 6, 2, tok)
        pause = collate(task, problems, "pause", [stage] * 6, 2, tok)
        assert latent.input_ids.shape == pause.input_ids.shape and latent.thoughts == pause.thoughts == 2 * stage
        differ = latent.input_ids != pause.input_ids
        assert (latent.input_ids[differ] == tok.convert_tokens_to_ids("latent")).all()
        assert (pause.input_ids[differ] == tok.convert_tokens_to_ids("pause")).all()
        assert int(differ.sum()) == 6 * 2 * stage
        assert (latent.labels == pause.labels).all() and (latent.attention_mask == pause.attention_mask).all()
        cols = (latent.input_ids == tok.convert_tokens_to_ids("latent")).nonzero()[:, 1].view(6, -1)
        assert (cols == cols[0]).all()  # the same columns in every row (left padding)


def test_each_stage_drops_one_cot_step_per_thought_group_and_labels_skip_the_block(setting):
    task, problems, tok = setting
    p = problems[0]
    full = render(task, p, "cot", 0, 1).rest
    assert full.startswith("P ") and full.endswith("A " + full.split("A ")[-1])
    assert task.score(p, full) == 1.0
    for stage in range(4):
        r = render(task, p, "coconut", stage, 1)
        assert r.thoughts == stage and r.rest.endswith(full.split("\n")[-2] + "\n")
        assert r.rest.count(">") == max(0, len(p.path) - 2 - stage)
    batch = collate(task, problems[:1], "coconut", [2], 1, tok)
    w = batch.prompt_width
    assert (batch.labels[0, :w + 4] == -100).all()  # prompt, startlatent, 2 latents, endlatent: given
    assert batch.labels[0, w + 4] == batch.input_ids[0, w + 4]
    assert batch.frontier[0] == [reachable_within(p, 1), reachable_within(p, 2)]
    with pytest.raises(InputError, match="one thought count"):
        collate(task, problems[:2], "coconut", [1, 2], 1, tok)
    with pytest.raises(InputError, match="unknown method"):
        render(task, p, "sampling", 0, 1)


def test_mixing_keeps_stages_apart_per_batch_and_the_plan_counts_every_batch():
    cfg = LatentConfig(task_options={"nodes": 10, "depth": 3}, batch_size=8, mix=0.3, stage0_epochs=1,
                       epochs_per_stage=2)
    batches = stage_batches(100, 3, cfg, random.Random(0))
    assert sorted(i for _, items in batches for i in items) == list(range(100))  # every example once
    assert {s for s, _ in batches} <= {0, 1, 2, 3} and sum(1 for s, _ in batches if s < 3) > 0
    assert planned_steps(cfg, 100) >= cfg.total_epochs * 13


def test_the_job_trains_every_method_and_writes_tables_probe_plots_and_manifest(tmp_path, capfd):
    from reasonpipe.jobs.latent import cli

    out = tmp_path / "run"
    config = tmp_path / "toy.yaml"
    config.write_text(f"""out: {out}
task_options: {{nodes: 8, depth: 2}}
eval_sets: {{test: {{split: test}}, larger: {{split: test, nodes: 10, depth: 3}}}}
train_problems: 48
eval_problems: 12
hidden: 32
heads: 2
stage0_epochs: 1
epochs_per_stage: 1
batch_size: 16
probe_problems: 12
frontier_weight: 0.5
quiet: true
""")
    args = ["--config", str(config)]
    assert cli(args) == 0
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {(r["method"], r["eval_set"]) for r in results} == {(m, s) for m in ("nocot", "cot", "pause", "coconut")
                                                                for s in ("test", "larger")}
    assert sorted(r["thoughts"] for r in results if r["method"] == "coconut" and r["eval_set"] == "test") == [0, 1, 2]
    probe = [json.loads(line) for line in (out / "probe.jsonl").read_text().splitlines()]
    assert sorted((r["model"], r["step"]) for r in probe) == [(m, t) for m in ("coconut", "pause", "untrained")
                                                                for t in (0, 1)]
    assert set(probe[0]["attention"]) == {"layer0", "layer1"} and len(probe[0]["reach_interval"]) == 2
    report = (out / "report.md").read_text()
    assert "## Accuracy" in report and "## Superposition probe" in report and "## Training" in report
    assert "## Headline" in report and "not learned" in report  # 48 graphs teach nothing: the verdict says so
    assert "coconut" in report.split("## Headline")[1].split("## Accuracy")[0] and "untrained" in report
    assert (out / "accuracy.png").stat().st_size > 5000 and (out / "probe.png").stat().st_size > 5000
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["config"]["hidden"] == 32 and manifest["sizes"]["coconut/seed-0"] > 0
    first = {r["method"]: r["accuracy"] for r in results if r["thoughts"] == 0}
    capfd.readouterr()
    assert cli(args) == 0  # rerun: every method reused, the same numbers
    again = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["method"]: r["accuracy"] for r in again if r["thoughts"] == 0} == first
    assert "(reused)" in (out / "report.md").read_text()
    assert capfd.readouterr().err.count(": reused: finished") == 6  # the shared stage 0, 4 trainings, the evaluation
    record = json.loads((out / "models" / "coconut" / "seed-0" / "train.stage.json").read_text())
    assert record["status"] == "done" and record["config"]["hidden"] == 32 and record["summary"]["steps"] > 0
    assert cli(args + ["--methods", "[nocot]", "--lr", "0.002"]) == 0  # a changed training setting: trained again
    assert "stage train" in capfd.readouterr().err.split("config changed (lr: 0.001 -> 0.002)")[0]
    assert "(reused)" not in (out / "report.md").read_text()


def test_a_run_resumes_after_its_last_finished_stage(tmp_path):
    """Interrupted (Ctrl-C) in its last curriculum stage, a method resumes after the stage before and ends with
    the weights of an uninterrupted run."""
    from reasonpipe.jobs.latent import train_stage
    from reasonpipe.latent_train import problems

    def config(out):
        return LatentConfig(out=str(out), task_options={"nodes": 8, "depth": 2}, train_problems=32, hidden=32,
                            heads=2, stage0_epochs=1, epochs_per_stage=1, batch_size=16, quiet=True)

    train = problems({"nodes": 8, "depth": 2, "split": "train"}, 32, "train", 0)
    whole, summary = train_stage(config(tmp_path / "whole"), "coconut", train, lambda k: None)
    before_last = json.loads((tmp_path / "whole" / "models" / "coconut" / "seed-0" / "stage-1" / "stage.json").read_text())

    seen = [0]

    def interrupt(k):
        seen[0] += k
        if seen[0] > before_last["steps"]:
            raise KeyboardInterrupt

    cut = config(tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        train_stage(cut, "coconut", train, interrupt)
    folder = tmp_path / "cut" / "models" / "coconut" / "seed-0"
    assert json.loads((folder / "train.stage.json").read_text())["status"] == "running"
    assert (folder / "stage-1").is_dir() and not (folder / "stage-2").exists() and not (folder / "final").exists()
    advanced = []
    resumed, again = train_stage(cut, "coconut", train, advanced.append)
    assert advanced[0] == before_last["steps"] and sum(advanced) == summary["steps"]  # after stage 1, not from 0
    assert again["steps"] == summary["steps"] and not again["reused"]
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert (a - b).abs().max() < 1e-5, name


# -- what makes the CPU recipe learn, and what its report says (issue 16) ----------------------------------

def test_drills_ask_every_edge_once_with_the_loss_on_its_destination_only(setting):
    from reasonpipe.latent_data import collate_drills
    from reasonpipe.tasks.reachability import node_index

    task, problems, tok = setting
    batch = collate_drills(task, problems, tok, random.Random(0))
    again = collate_drills(task, problems, tok, random.Random(0))
    assert (batch.input_ids == again.input_ids).all()  # the order is the rng's: seeded, reproducible
    for row, p in enumerate(problems):
        ids = batch.input_ids[row][batch.attention_mask[row].bool()].tolist()
        prompt = [tok.bos_token_id] + tok(task.prompt(p), add_special_tokens=False)["input_ids"]
        assert ids[:len(prompt)] == prompt  # the task's prompt, as every method sees it
        tokens = tok.convert_ids_to_tokens(ids[len(prompt):])
        asked = [(node_index(tokens[i]), node_index(tokens[i + 2])) for i in range(0, len(tokens), 4)]
        assert sorted(asked) == sorted(p.edges) and tokens[1::4] == [">"] * len(asked)
        labelled = (batch.labels[row] != -100).nonzero().flatten().tolist()
        assert [batch.input_ids[row, c].item() for c in labelled] == [tok.convert_tokens_to_ids(tokens[i + 2])
                                                                     for i in range(0, len(tokens), 4)]
        assert all(batch.labels[row, c] == batch.input_ids[row, c] for c in labelled)
    shuffled = collate_drills(task, problems, tok, random.Random(1))
    assert not (shuffled.input_ids == batch.input_ids).all()


def test_the_bfs_chain_of_thought_drops_one_frontier_line_per_stage(setting):
    task, problems, tok = setting
    p = problems[0]
    full = render(task, p, "cot", 0, 1, cot="bfs").rest
    lines = full.splitlines()
    assert [line[:2] for line in lines] == ["F "] * (len(p.path) - 1) + ["A "] and task.score(p, full) == 1.0
    for stage in range(len(p.path)):
        r = render(task, p, "coconut", stage, 2, cot="bfs")
        assert r.thoughts == 2 * stage and r.rest.splitlines() == lines[stage:]
        assert render(task, p, "pause", stage, 2, cot="bfs").rest == r.rest
    with pytest.raises(InputError, match="unknown CoT"):
        render(task, p, "cot", 0, 1, cot="dfs")


def test_stage_mixing_draws_earlier_stages_at_the_mix_rate_and_each_batch_collates_to_one_thought_count(setting):
    task, problems, tok = setting
    cfg = LatentConfig(task_options={"nodes": 10, "depth": 3}, batch_size=8, mix=0.25, per_step=2)
    batches = stage_batches(4000, 3, cfg, random.Random(0))
    earlier = sum(len(items) for s, items in batches if s < 3)
    assert abs(earlier / 4000 - 0.25) < 0.03  # binomial sd 0.007
    assert {s for s, _ in batches} == {0, 1, 2, 3}
    assert stage_batches(100, 0, cfg, random.Random(0)) == stage_batches(100, 0, cfg, random.Random(0))
    assert {s for s, _ in stage_batches(100, 2, LatentConfig(mix=0.0), random.Random(0))} == {2}
    for s, items in batches[:6]:
        batch = collate(task, [problems[i % 6] for i in items], "coconut", [s] * len(items), 2, tok)
        assert batch.thoughts == 2 * s


def test_the_learned_verdict_counts_from_a_guess_and_the_headline_intervals_are_wilson_over_pooled_seeds():
    from reasonpipe.diagnostics import learned_verdict
    from reasonpipe.jobs.latent import comparison_sentences, pooled
    from reasonpipe.latent_train import EvalPoint
    from reasonpipe.stats import Rate

    assert not learned_verdict(0.95, Rate(70, 100), None, chance=0.5).learned  # under 75%: half-way to 1.0
    assert learned_verdict(0.95, Rate(76, 100), None, chance=0.5).learned
    assert "half-way from chance (50%)" in learned_verdict(0.95, Rate(60, 100), None, chance=0.5).reason
    assert learned_verdict(0.95, Rate(60, 100), None).learned  # no guess: half of all problems

    def point(method, seed, correct, thoughts=0):
        return EvalPoint(method, "test", thoughts, correct / 300, 5.0, 3.0, 300, correct, seed)

    points = [point("cot", s, c) for s, c in ((0, 250), (1, 270), (2, 260))]
    points += [point("coconut", s, c, 3) for s, c in ((0, 290), (1, 295), (2, 292))]
    points += [point("pause", s, c, 3) for s, c in ((0, 289), (1, 293), (2, 290))]
    rate = pooled(points, "cot", "test", 0)
    assert (rate.successes, rate.n) == (780, 900)
    p, n, z = 780 / 900, 900, 1.959963984540054  # Wilson by hand
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    assert rate.interval == pytest.approx((centre - half, centre + half), abs=1e-12)
    cfg = LatentConfig(task_options={"nodes": 10, "depth": 3}, methods=["coconut", "pause", "cot"])

    class V:
        def __init__(self, learned):
            self.learned, self.reason = learned, "x"

    text = comparison_sentences(cfg, points, {"coconut": V(True), "pause": V(True), "cot": V(True)}, "test")
    assert "coconut 97.4%" in text and "the intervals overlap" in text  # coconut vs pause: 877 vs 872 of 900
    assert "coconut is ahead of cot" in text
    text = comparison_sentences(cfg, points, {"coconut": V(True), "pause": V(False), "cot": V(True)}, "test")
    assert "not meaningful, pause has not learned the task and is not below coconut" in text  # 877 vs 872 of 900
    low = [p for p in points if p.method != "pause"] + [point("pause", s, 150, 3) for s in range(3)]
    text = comparison_sentences(cfg, low, {"coconut": V(True), "pause": V(False), "cot": V(True)}, "test")
    assert "coconut learned the task and pause did not, with the same thought positions and schedule" in text
    text = comparison_sentences(cfg, low, {"coconut": V(False), "pause": V(False), "cot": V(True)}, "test")
    assert "not meaningful, neither has learned the task" in text


def test_the_gpu_recipe_runs_its_first_steps_on_a_cpu_at_reduced_width(tmp_path):
    """configs/latent-prosqa.yaml through the same code path (its graphs, curriculum, drills, evaluation and probe)
    at width 32 for 3 optimizer steps: a GPU run does not fail on set-up."""
    import yaml

    from reasonpipe.jobs.latent import cli
    from conftest import REPO

    base = yaml.safe_load((REPO / "configs" / "latent-prosqa.yaml").read_text())
    config = tmp_path / "prosqa-tiny.yaml"
    config.write_text(yaml.safe_dump({**base, "out": str(tmp_path / "run"), "hidden": 32, "heads": 2, "max_steps": 3,
                                      "train_problems": 64, "eval_problems": 6, "probe_problems": 6, "device": "cpu",
                                      "seeds": 1, "workers": 1, "quiet": True}))
    assert cli(["--config", str(config)]) == 0
    run = tmp_path / "run"
    summary = json.loads((run / "models" / "coconut" / "seed-0" / "train.stage.json").read_text())["summary"]
    assert summary["steps"] == 3
    results = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert {r["eval_set"] for r in results} == set(base["eval_sets"]) and {r["method"] for r in results} == set(
        base["methods"])
    assert "## Headline" in (run / "report.md").read_text()


def test_coconut_started_from_the_shared_stage_0_has_the_weights_it_would_have_trained_alone(tmp_path):
    """Coconut, pause and CoT train the same stage 0 (the full CoT, the same batches, drills and initialisation):
    the job trains it once and starts each from it; the result equals training the method on its own."""
    from reasonpipe.jobs.latent import train_stage
    from reasonpipe.latent_train import STAGE0, problems

    def config(out):
        return LatentConfig(out=str(out), task_options={"nodes": 8, "depth": 2}, train_problems=96, hidden=32,
                            heads=2, stage0_epochs=4, epochs_per_stage=1, batch_size=16, drill_weight=0.5, cot="bfs",
                            quiet=True)

    train = problems({"nodes": 8, "depth": 2, "split": "train"}, 96, "train", 0)
    alone, alone_summary = train_stage(config(tmp_path / "alone"), "coconut", train, lambda k: None)
    shared_cfg = config(tmp_path / "shared")
    assert train_stage(shared_cfg, STAGE0, train, lambda k: None)[1]["steps"] == 24  # 4 epochs of 6 batches
    steps = []
    started, summary = train_stage(shared_cfg, "coconut", train, steps.append)
    assert steps[0] == 24 and summary["steps"] == alone_summary["steps"]  # resumed after the shared stage 0
    for (name, a), b in zip(alone.state_dict().items(), started.state_dict().values()):
        assert (a - b).abs().max() < 1e-5, name
    def curve(run):  # the loss rows; the shared stage's rows say they came from it
        rows = (tmp_path / run / "models" / "coconut" / "seed-0" / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(r).items() if k != "method"} for r in rows], rows

    (shared, raw), (alone, _) = curve("shared"), curve("alone")
    assert shared == alone and json.loads(raw[0])["method"] == STAGE0


def test_the_training_plan_puts_each_shared_stage_0_before_the_methods_that_start_from_it():
    from reasonpipe.jobs.latent import training_plan

    cfg = LatentConfig(task_options={"nodes": 8, "depth": 2}, seeds=2, methods=["nocot", "cot", "pause", "coconut"])
    plan, after = training_plan(cfg)
    assert plan[:4] == [("stage0", 0), ("stage0", 1), ("nocot", 0), ("nocot", 1)] and after[:4] == [None] * 4
    assert sorted(plan[4:]) == sorted((m, s) for m in ("cot", "pause", "coconut") for s in (0, 1))
    assert all(plan[a] == ("stage0", seed) for (method, seed), a in zip(plan[4:], after[4:]))
    alone, none = training_plan(LatentConfig(task_options={"nodes": 8, "depth": 2}, methods=["nocot", "coconut"]))
    assert alone == [("nocot", 0), ("coconut", 0)] and none == [None, None]  # nothing to share


def test_the_learning_rate_warms_up_then_stays_or_follows_a_cosine_to_zero_in_every_stage():
    from reasonpipe.latent_train import lr_factor

    constant = LatentConfig(warmup_steps=4)
    assert [lr_factor(constant, k, 10) for k in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cosine = LatentConfig(warmup_steps=2, lr_schedule="cosine")
    assert [lr_factor(cosine, k, 10) for k in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert lr_factor(cosine, 6, 10) == pytest.approx(0.5)  # half-way through the 8 steps after the warm-up
    assert lr_factor(cosine, 10, 10) == pytest.approx(0.0) and lr_factor(LatentConfig(), 0, 10) == 1.0
    with pytest.raises(InputError, match="constant or cosine"):
        LatentConfig(lr_schedule="linear").validate()
