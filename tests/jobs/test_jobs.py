"""The tracegen and verify job entry points (``python -m reasonpipe.jobs.<name> --config F``), without Ray."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonpipe.jobs import tracegen, verify

REPO = Path(__file__).resolve().parents[2]


def test_tracegen_then_verify_jobs(tmp_path):
    out = tmp_path / "cd.jsonl"
    assert tracegen.cli(["--task", "countdown", "--n", "30", "--out", str(out), "--backend", "process",
                         "--workers", "1", "--quiet", "true"]) == 0
    assert verify.cli(["--file", str(out), "--quiet", "true"]) == 0
    lines = out.read_text().splitlines()
    lines[3] = lines[3].replace("Exploring Operation: ", "Exploring Operation: 1", 1)
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    assert verify.cli(["--file", str(tmp_path / "bad.jsonl"), "--quiet", "true"]) == 1
    assert verify.cli(["--file", str(tmp_path / "missing.jsonl"), "--quiet", "true"]) == 2


def test_ksweep_reruns_a_changed_stage_and_what_follows_it_never_reusing_stale_results(tmp_path, monkeypatch, capsys):
    """The sweep's five stages per k with SFT, GRPO and the accuracy stubbed (real traces): an unchanged config
    reuses everything, a changed setting re-runs its stage and every stage after it, and the results follow."""
    import json
    import os

    import reasonpipe.rl
    import reasonpipe.sft
    from reasonpipe.jobs import ksweep

    calls = []

    def fake_train(kind):
        def train(cfg):
            calls.append(kind)
            assert not os.path.exists(os.path.join(cfg.out, "stale")), "a changed stage resumed from old files"
            os.makedirs(os.path.join(cfg.out, "final"), exist_ok=True)
            open(os.path.join(cfg.out, "stale"), "w").close()
            summary = {"tokens_seen": cfg.max_steps * 10, "last_loss": 1.0 / cfg.max_steps}
            with open(os.path.join(cfg.out, "summary.json"), "w") as f:
                json.dump(summary, f)
            return summary
        return train

    def fake_accuracy(model_dir, cfg, k):
        calls.append("accuracy")
        with open(os.path.join(os.path.dirname(os.path.dirname(model_dir)), "sft", "summary.json")) as f:
            sft = json.load(f)
        return {"accuracy": sft["tokens_seen"] / 1000 + cfg.eval_problems / 1e6, "mean_tokens": 1.0, "solved": 1,
                "problems": cfg.eval_problems, "best_of": 1, "bound": 1.0, "tokens": {"task_token_accuracy": 0.5},
                "learned": False, "reason": "not learned: a stub"}

    monkeypatch.setattr(reasonpipe.sft, "train", fake_train("sft"))
    monkeypatch.setattr(reasonpipe.rl, "train", fake_train("rl"))
    monkeypatch.setattr(ksweep, "accuracy", fake_accuracy)
    opts = "{numbers: 3, max_number: 9, target_min: 10, target_max: 49}"
    recipe = tmp_path / "k.yaml"
    recipe.write_text(f"name: k\nruns_dir: {tmp_path}\ntask_options: {opts}\nks: [1]\ntraces: 12\nquiet: true\n"
                      f"sft: {{max_steps: 20}}\nrl: {{max_steps: 2}}\neval_problems: 4\n")
    results = tmp_path / "k" / "results.jsonl"

    def sweep(*overrides):
        calls.clear()
        assert ksweep.cli(["--config", str(recipe), *overrides]) == 0
        return json.loads(results.read_text().splitlines()[0]), capsys.readouterr().err

    first, _ = sweep()
    assert calls == ["sft", "accuracy", "rl", "accuracy"] and first["accuracy_sft"] == 0.2 + 4e-6
    assert sorted(p.name for p in (tmp_path / "k" / "k1").glob("*.stage.json")) == [
        "accuracy_rl.stage.json", "accuracy_sft.stage.json", "rl.stage.json", "sft.stage.json", "traces.stage.json"]
    again, err = sweep()
    assert calls == [] and again == first and err.count(": reused: ") == 5
    changed, err = sweep("--sft.max_steps", "30")
    assert calls == ["sft", "accuracy", "rl", "accuracy"]  # SFT and everything after it, the traces reused
    assert changed["accuracy_sft"] == 0.3 + 4e-6 and changed["sft_tokens"] == 300  # not the stale 0.2
    assert "stage sft" in err and "config changed (max_steps: 20 -> 30)" in err and "stage traces" in err
    evaluated, err = sweep("--sft.max_steps", "30", "--eval_problems", "8")
    assert calls == ["accuracy", "accuracy"] and evaluated["accuracy_sft"] == 0.3 + 8e-6
    assert "config changed (eval_problems: 4 -> 8)" in err
    _, err = sweep("--sft.max_steps", "30", "--eval_problems", "8", "--traces", "16")
    assert calls == ["sft", "accuracy", "rl", "accuracy"] and "config changed (n: 12 -> 16)" in err
    assert "config changed (inputs.traces:" in err  # SFT re-run because its data's bytes changed


def _sweep_row(k: int, sft: tuple[int, bool], rl: tuple[int, bool]) -> dict:
    def acc(solved_learned):
        solved, learned = solved_learned
        return {"solved": solved, "problems": 200, "learned": learned}
    return {"k": k, "sft": acc(sft), "rl": acc(rl)}


def test_ksweep_sentence_names_the_k_ahead_only_among_models_that_learned():
    from reasonpipe.jobs.ksweep import stage_sentence

    rows = [_sweep_row(0, (40, True), (20, False)), _sweep_row(1, (120, True), (30, False)),
            _sweep_row(2, (60, True), (10, False)), _sweep_row(5, (150, False), (10, False))]
    sft = stage_sentence("countdown", "sft", rows)
    assert sft.startswith("After SFT, k = 1 is ahead of every other k that learned (k = 5 not learned, left out)")
    assert "60.0% [53.1, 66.5]" in sft and sft.endswith("as in the paper.")  # k = 5's 75% does not count
    assert "the paper's optimum is k = 5" in stage_sentence("sudoku", "sft", rows)
    assert stage_sentence("countdown", "rl", rows).startswith("After SFT and GRPO, no k's model has learned")
    close = [_sweep_row(0, (100, True), (0, False)), _sweep_row(1, (110, True), (0, False))]
    assert "overlap" in stage_sentence("countdown", "sft", close) and "neither confirmed nor refuted" in \
        stage_sentence("countdown", "sft", close)
    assert "only k = 1 has learned" in stage_sentence("countdown", "sft", close[1:])


def test_ksweep_accuracy_of_an_untrained_model_is_not_learned(tmp_path):
    """The real measure on a random tiny model: pass@1 and best-of-2 counts, the held-out k-backtrack traces'
    task-token accuracy near chance, the data bound of those traces, and the verdict 'not learned'."""
    import torch

    from reasonpipe.config import load_config
    from reasonpipe.jobs.ksweep import KSweepConfig, accuracy
    from reasonpipe.models import build_model
    from reasonpipe.tokenizer import TaskTokenizer

    hf = TaskTokenizer.for_task("countdown").hf()
    torch.manual_seed(0)
    build_model("tiny", hf, max_positions=512, seed=3).save_pretrained(tmp_path)
    hf.save_pretrained(tmp_path)
    cfg = load_config(KSweepConfig, None, ["--task_options", "{numbers: 3, max_number: 9, target_min: 10, "
                                           "target_max: 49}", "--eval_problems", "6", "--samples", "2",
                                           "--temperature", "1.0", "--max_new_tokens", "48"])
    got = accuracy(str(tmp_path), cfg, 1)
    assert got["problems"] == 6 and got["samples"] == 2 and 0 <= got["solved"] <= got["best_of"] <= 6
    assert got["tokens"]["task_token_accuracy"] < 0.5 and got["tokens"]["traces"] == 6
    assert 0.0 <= got["bound"] <= 1.0 and got["completions"]["n"] == 6
    assert not got["learned"] and got["reason"].startswith("not learned: task-token accuracy")


def test_ksweep_refuses_several_greedy_samples():
    import pytest

    from reasonpipe.config import load_config
    from reasonpipe.errors import InputError
    from reasonpipe.jobs.ksweep import KSweepConfig

    with pytest.raises(InputError, match="set temperature > 0") as err:
        load_config(KSweepConfig, None, ["--samples", "4", "--temperature", "0"])
    assert err.value.field == "samples"


def test_spawn_map_keeps_the_order_and_raises_a_calls_error():
    import math

    import pytest

    from reasonpipe.errors import InputError
    from reasonpipe.processes import spawn_map

    assert spawn_map(math.factorial, [(5,), (3,), (4,)], 2) == [120, 6, 24]
    assert spawn_map(math.factorial, [(5,), (3,)], 1) == [120, 6]
    with pytest.raises(ValueError):
        spawn_map(math.factorial, [(3,), (-1,)], 2)
    with pytest.raises(InputError) as err:
        spawn_map(math.factorial, [(3,)], 0, field="model_workers")
    assert err.value.field == "model_workers"


def test_a_bad_nested_block_fails_before_any_work(tmp_path):
    """Every nested block of the pipeline is built into its typed config at load: a misspelt SFT key, an unknown
    searcher or evaluation key is one error naming the field, before a single trace is generated."""
    import pytest

    from reasonpipe.jobs.pipeline import PipelineConfig
    from reasonpipe.config import load_config
    from reasonpipe.errors import InputError

    base = ["--runs_dir", str(tmp_path), "--name", "bad", "--quiet", "true"]
    for override, field in ((["--models.0.settings.max_stepz", "5"], "models.0.settings.max_stepz"),
                            (["--datasets.0.searcher", "dfz"], "datasets.0.searcher"),
                            (["--evaluate.0.settings.problemz", "3"], "evaluate.0.settings.problemz")):
        with pytest.raises(InputError) as err:
            load_config(PipelineConfig, str(REPO / "configs" / "demo-cpu.yaml"), base + override)
        assert err.value.field == field and err.value.path.endswith("demo-cpu.yaml") and err.value.line
        assert not (tmp_path / "bad").exists()  # nothing generated, nothing written


def test_a_bad_ksweep_block_fails_before_any_work(tmp_path):
    import pytest

    from reasonpipe.jobs.ksweep import KSweepConfig
    from reasonpipe.config import load_config
    from reasonpipe.errors import InputError

    with pytest.raises(InputError) as err:
        load_config(KSweepConfig, str(REPO / "configs" / "backtrack-k-sweep-cpu.yaml"),
                    ["--runs_dir", str(tmp_path), "--rl.max_stepz", "3"])
    assert err.value.field == "rl.max_stepz" and list(tmp_path.iterdir()) == []


def test_spawn_map_starts_a_call_only_after_the_call_it_waits_for_and_in_list_order_otherwise(tmp_path):
    import math

    from reasonpipe.errors import InputError
    from reasonpipe.processes import spawn_map

    log = tmp_path / "log"
    calls = [(str(log), "a", 0.6), (str(log), "b", 0.0), (str(log), "c", 0.0), (str(log), "d", 0.0)]
    assert spawn_map(_stamp, calls, 2, after=[None, None, 0, None]) == ["a", "b", "c", "d"]
    order = log.read_text().split()
    assert order.index("a-end") < order.index("c-start")  # c waited for a
    assert order.index("d-start") < order.index("c-start")  # d was ready first: it did not wait behind c
    with pytest.raises(InputError, match="earlier call"):
        spawn_map(math.factorial, [(3,), (4,)], 2, after=[1, None])


def _stamp(path: str, name: str, seconds: float) -> str:
    import time

    with open(path, "a") as f:
        f.write(f"{name}-start\n")
    time.sleep(seconds)
    with open(path, "a") as f:
        f.write(f"{name}-end\n")
    return name


def test_spawned_workers_die_with_the_job_that_started_them(tmp_path):
    """A job killed with SIGKILL (no chance to clean up) leaves no worker running: each worker gets SIGTERM from
    Linux when its parent dies."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pids = tmp_path / "pids"
    script = (f"import sys; sys.path[:0] = {sys.path!r}\n"
              "from reasonpipe.processes import spawn_map\n"
              f"from test_jobs import _sleep_forever\n"
              f"spawn_map(_sleep_forever, [({str(pids)!r},), ({str(pids)!r},)], 2)\n")
    job = subprocess.Popen([sys.executable, "-c", script], cwd=os.path.dirname(__file__))
    deadline = time.time() + 60
    while (not pids.exists() or len(pids.read_text().split()) < 2) and time.time() < deadline:
        time.sleep(0.2)
    workers = [int(p) for p in pids.read_text().split()]
    assert len(workers) == 2
    job.send_signal(signal.SIGKILL)
    job.wait()
    deadline = time.time() + 10
    while any(_alive(p) for p in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _sleep_forever(path: str) -> None:
    import os
    import time

    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(600)
