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
    assert [r["step"] for r in probe] == [0, 1] and set(probe[0]["attention"]) == {"layer0", "layer1"}
    report = (out / "report.md").read_text()
    assert "## Accuracy" in report and "## Superposition probe" in report and "## Training" in report
    assert (out / "accuracy.png").stat().st_size > 5000 and (out / "probe.png").stat().st_size > 5000
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["config"]["hidden"] == 32 and manifest["sizes"]["coconut"] > 0
    first = {r["method"]: r["accuracy"] for r in results if r["thoughts"] == 0}
    capfd.readouterr()
    assert cli(args) == 0  # rerun: every method reused, the same numbers
    again = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["method"]: r["accuracy"] for r in again if r["thoughts"] == 0} == first
    assert "(reused)" in (out / "report.md").read_text()
    assert capfd.readouterr().err.count(": reused: finished") == 5  # 4 trainings and the evaluation
    record = json.loads((out / "models" / "coconut" / "train.stage.json").read_text())
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
    before_last = json.loads((tmp_path / "whole" / "models" / "coconut" / "stage-1" / "stage.json").read_text())

    seen = [0]

    def interrupt(k):
        seen[0] += k
        if seen[0] > before_last["steps"]:
            raise KeyboardInterrupt

    cut = config(tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        train_stage(cut, "coconut", train, interrupt)
    folder = tmp_path / "cut" / "models" / "coconut"
    assert json.loads((folder / "train.stage.json").read_text())["status"] == "running"
    assert (folder / "stage-1").is_dir() and not (folder / "stage-2").exists() and not (folder / "final").exists()
    advanced = []
    resumed, again = train_stage(cut, "coconut", train, advanced.append)
    assert advanced[0] == before_last["steps"] and sum(advanced) == summary["steps"]  # after stage 1, not from 0
    assert again["steps"] == summary["steps"] and not again["reused"]
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert (a - b).abs().max() < 1e-5, name
