"""The main job end to end at toy size: traces -> SFT of a backtrack and a direct model -> the budget grid."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_pipeline_trains_both_models_and_writes_both_curves(tmp_path, capsys):
    from reasonpipe.jobs.pipeline import cli

    opts = "{numbers: 3, max_number: 9, target_min: 10, target_max: 49}"
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(f"""name: toy
seed: 3
workers: 1
quiet: true
runs_dir: {tmp_path / 'runs'}
datasets:
  - {{name: dfs, task: countdown, searcher: dfs, n: 300, options: {opts}}}
  - {{name: direct, task: countdown, searcher: direct, n: 300, options: {opts}}}
models:
  - {{name: backtrack, data: [dfs], settings: {{model: tiny, max_len: 512, batch_size: 8, max_steps: 200, max_tokens: 60000, save_every: 10}}}}
  - {{name: direct, data: [direct], settings: {{model: tiny, max_len: 512, batch_size: 8, max_steps: 400, max_tokens: 60000, save_every: 100}}}}
evaluate:
  - backtrack: backtrack
    direct: direct
    settings: {{task: countdown, task_options: {opts}, problems: 6, lengths: [32, 64, 128], ns: [1, 2, 4], direct_max_new_tokens: 64}}
""")
    assert cli(["--config", str(recipe)]) == 0
    run = tmp_path / "runs" / "toy"
    rows = [json.loads(x) for x in (run / "eval" / "countdown" / "results.jsonl").read_text().splitlines()]
    kinds = {(r["strategy"], r["budget"]) for r in rows}
    assert {("sequential", 32), ("sequential", 128), ("parallel", 1), ("parallel", 4), ("data bound", 64)} <= kinds
    assert all(r["mean_flops"] > 0 for r in rows if r["strategy"] != "data bound")
    assert (run / "eval" / "countdown" / "accuracy_vs_flops.png").stat().st_size > 10_000
    report = (run / "report.md").read_text()
    assert "## Models (SFT)" in report and "## Parallel vs sequential: countdown" in report and "| sequential | L=32 |" in report
    assert "](eval/countdown/accuracy_vs_flops.png)" in report
    assert "## Which strategy is ahead at equal compute?\n\n- countdown: not meaningful: backtrack and direct have not" in report
    summaries = {m: json.loads((run / "models" / m / "summary.json").read_text()) for m in ("backtrack", "direct")}
    for s in summaries.values():
        assert 60_000 <= s["tokens_seen"] < 64_000 and s["last_loss"] < s["first_loss"]  # equal token budgets
    capsys.readouterr()
    assert cli(["--config", str(recipe)]) == 0  # everything reused on a second run
    assert "(reused)" in (run / "report.md").read_text()
    err = capsys.readouterr().err
    for stage in ("dfs (", "direct (", "sft (", "eval ("):
        assert f"stage {stage}" in err
    assert err.count(": reused: finished") == 5  # two datasets, two models, the evaluation
    for record in ("data/dfs.stage.json", "models/backtrack/sft.stage.json", "eval/countdown/eval.stage.json"):
        assert json.loads((run / record).read_text())["status"] == "done"
    # a changed evaluation setting re-runs the evaluation only, naming the field
    assert cli(["--config", str(recipe), "--evaluate.0.settings.problems", "4"]) == 0
    err = capsys.readouterr().err
    assert "stage eval" in err and "config changed (problems: 6 -> 4)" in err and err.count(": reused: ") == 4
    assert {json.loads(x)["problems"] for x in (run / "eval" / "countdown" / "results.jsonl").read_text().splitlines()} == {4}
    assert "## Has each model learned its task?" in report and "NOT LEARNED" in report  # 60k tokens: not learned
    assert "This comparison is not meaningful" in report
    assert all(s["diagnostics"]["traces"] == 30 for s in summaries.values())  # a tenth of 300 traces held out

    # two models trained side by side in two processes: the same weights as one after the other
    side = tmp_path / "side.yaml"
    # and a third model that starts from the backtrack model's weights (a curriculum stage), trained after it
    tuned = "  - {name: tuned, data: [dfs], init_from: backtrack, settings: {max_len: 512, batch_size: 8, max_steps: 3, log_every: 1}}\n"
    side.write_text(recipe.read_text().replace("name: toy", "name: side").replace("evaluate:\n", tuned + "evaluate:\n")
                    + "model_workers: 2\n")
    assert cli(["--config", str(side)]) == 0
    for m in ("backtrack", "direct"):
        one = (run / "models" / m / "final" / "model.safetensors").read_bytes()
        assert (tmp_path / "runs" / "side" / "models" / m / "final" / "model.safetensors").read_bytes() == one
    side_run = tmp_path / "runs" / "side" / "models"
    first = json.loads((side_run / "tuned" / "summary.json").read_text())["first_loss"]
    b = summaries["backtrack"]
    assert first < (b["first_loss"] + b["last_loss"]) / 2  # it started from the trained weights, not afresh
    assert "init_from" in json.loads((side_run / "tuned" / "sft.stage.json").read_text())["inputs"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(side.read_text().replace("init_from: backtrack", "init_from: nobody"))
    capsys.readouterr()
    assert cli(["--config", str(bad)]) == 2
    assert "init_from must name an earlier model" in capsys.readouterr().err
