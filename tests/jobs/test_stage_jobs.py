"""The single-stage jobs (tracegen, verify, sft, rl, eval) and the latent job's evaluation as Stages: a second
run with the same config is reused (no work), a changed config or input re-runs with the old outputs removed, an
interrupted run resumes (not reused), and an explicit fresh start re-runs a finished one."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

OPTIONS = "{numbers: 3, max_number: 9, target_min: 10, target_max: 49}"


@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> Path:
    from reasonpipe.tracegen import GenRequest, generate

    out = tmp_path_factory.mktemp("traces") / "cd.jsonl"
    generate(GenRequest(task="countdown", searcher="dfs", out=str(out), n=40, seed=1,
                        task_options={"numbers": 3, "max_number": 9, "target_min": 10, "target_max": 49}))
    return out


def boom(*args, **kwargs):
    raise AssertionError("called although the stage should have been reused")


def record(path: Path) -> dict:
    return json.loads(path.read_text())


# -- tracegen ---------------------------------------------------------------------------------------------

def test_tracegen_job_reuses_resumes_from_its_partial_file_and_regenerates_a_changed_request(tmp_path, monkeypatch,
                                                                                          capsys):
    import reasonpipe.tracegen
    from reasonpipe.jobs import tracegen as job

    def args(out: Path, *extra: str) -> list[str]:
        return ["--task", "countdown", "--n", "40", "--chunk", "8", "--backend", "process", "--workers", "1",
                "--task_options", OPTIONS, "--out", str(out), "--quiet", "true", *extra]

    ref, out = tmp_path / "ref.jsonl", tmp_path / "cd.jsonl"
    assert job.cli(args(ref)) == 0
    capsys.readouterr()

    @contextlib.contextmanager
    def cut(label, total, quiet):  # Ctrl-C once 16 problems are written
        seen = [0]

        def advance(k):
            seen[0] += k
            if seen[0] >= 16:
                raise KeyboardInterrupt
        yield advance

    monkeypatch.setattr(job, "progress", cut)
    assert job.cli(args(out)) == 130
    assert not out.exists() and (tmp_path / "cd.jsonl.partial").exists()
    assert record(tmp_path / "cd.jsonl.stage.json")["status"] == "running"

    first: list[int] = []

    @contextlib.contextmanager
    def watch(label, total, quiet):
        yield first.append

    monkeypatch.setattr(job, "progress", watch)
    assert job.cli(args(out)) == 0
    assert first[0] == 16 and sum(first) == 40  # continued after the 16 problems of the partial file
    assert "resuming: an earlier run of the same config did not finish" in capsys.readouterr().err
    assert out.read_bytes() == ref.read_bytes()

    mtime = out.stat().st_mtime_ns
    monkeypatch.setattr(reasonpipe.tracegen, "generate", boom)
    assert job.cli(args(out, "--workers", "2")) == 0  # workers do not change the bytes: reused
    got = capsys.readouterr()
    assert "stage cd.jsonl" in got.err and ": reused: finished" in got.err and "traces" in got.out
    assert out.stat().st_mtime_ns == mtime

    monkeypatch.undo()  # the real generate and progress again
    seen_old: list[bool] = []
    real = reasonpipe.tracegen.generate

    def spy(request, progress=None, resume=False):
        seen_old.append(Path(request.out).exists() or Path(request.out + ".partial").exists())
        return real(request, progress=progress, resume=resume)

    monkeypatch.setattr(reasonpipe.tracegen, "generate", spy)
    assert job.cli(args(out, "--n", "48")) == 0
    assert "re-run from scratch: config changed (n: 40 -> 48)" in capsys.readouterr().err
    assert seen_old == [False]  # the old file was removed before generating
    lines = out.read_text().splitlines()
    assert len(lines) == 48 and lines[:40] == ref.read_text().splitlines()

    assert job.cli(args(out, "--n", "48", "--resume", "false")) == 0
    assert "re-run from scratch: a fresh start was asked for" in capsys.readouterr().err
    assert seen_old == [False, False] and len(out.read_text().splitlines()) == 48


# -- verify -----------------------------------------------------------------------------------------------

def test_verify_job_reuses_its_result_and_exit_code_and_reruns_on_new_bytes_or_force(tmp_path, traces, monkeypatch,
                                                                                    capsys):
    import reasonpipe.verify
    from reasonpipe.jobs import verify as job

    data, verdicts = tmp_path / "t.jsonl", tmp_path / "v.jsonl"
    shutil.copy(traces, data)
    args = ["--file", str(data), "--out", str(verdicts), "--quiet", "true"]
    assert job.cli(args) == 0 and verdicts.exists()
    assert record(tmp_path / "v.jsonl.stage.json")["summary"]["all_hold"] is True
    capsys.readouterr()
    real = reasonpipe.verify.verify_file
    monkeypatch.setattr(reasonpipe.verify, "verify_file", boom)
    assert job.cli(args) == 0
    got = capsys.readouterr()
    assert ": reused: finished" in got.err and "step verification" in got.out

    lines = data.read_text().splitlines()
    lines[3] = lines[3].replace("Exploring Operation: ", "Exploring Operation: 1", 1)
    data.write_text("\n".join(lines) + "\n")
    calls: list[bool] = []

    def spy(path, **kwargs):
        calls.append(verdicts.exists())
        return real(path, **kwargs)

    monkeypatch.setattr(reasonpipe.verify, "verify_file", spy)
    assert job.cli(args) == 1
    assert "config changed (inputs.file:" in capsys.readouterr().err and calls == [False]
    monkeypatch.setattr(reasonpipe.verify, "verify_file", boom)
    assert job.cli(args) == 1  # reused, with its exit code and failing-step table
    got = capsys.readouterr()
    assert ": reused: " in got.err and "first failing step" in got.out
    monkeypatch.setattr(reasonpipe.verify, "verify_file", spy)
    assert job.cli(args + ["--force", "true"]) == 1
    assert "a fresh start was asked for" in capsys.readouterr().err and calls == [False, False]
    # no out: the record lies beside the traces
    assert job.cli(["--file", str(data), "--quiet", "true"]) == 1
    assert record(tmp_path / "t.jsonl.verify.stage.json")["status"] == "done"


# -- sft --------------------------------------------------------------------------------------------------

def test_sft_job_resumes_an_interrupted_run_reuses_a_finished_one_and_restarts_a_changed_one(tmp_path, traces,
                                                                                          monkeypatch, capsys):
    from transformers import TrainerCallback

    import reasonpipe.sft
    from reasonpipe.config import load_config
    from reasonpipe.jobs import sft as job
    from reasonpipe.sft import SFTConfig

    data, out = tmp_path / "cd.jsonl", tmp_path / "sft"
    shutil.copy(traces, data)
    args = ["--data", f"[{data}]", "--out", str(out), "--model", "tiny", "--max_steps", "4", "--batch_size", "4",
            "--save_every", "2", "--max_len", "512", "--quiet", "true"]
    summary = out / "summary.json"
    seen: list[dict] = []

    def spy(cfg, callbacks=()):
        seen.append({"checkpoints": (out / "checkpoints").exists(), "final": (out / "final").exists()})
        return reasonpipe.sft.train(cfg, callbacks)

    class Interrupt(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(job, "train", lambda cfg: spy(cfg, [Interrupt()]))
    assert job.cli(args) == 130
    assert record(out / "sft.stage.json")["status"] == "running" and not (out / "final").exists()

    monkeypatch.setattr(job, "train", spy)
    assert job.cli(args) == 0
    assert "resuming: an earlier run of the same config did not finish" in capsys.readouterr().err
    done = json.loads(summary.read_text())
    assert done["steps"] == 4 and done["resumed_from"].endswith("checkpoint-2")  # not from scratch

    mtime = (out / "final" / "model.safetensors").stat().st_mtime_ns
    monkeypatch.setattr(job, "train", boom)
    assert job.cli(args + ["--save_every", "1", "--workers", "1"]) == 0  # neither changes the model: reused
    got = capsys.readouterr()
    assert "stage sft" in got.err and ": reused: finished" in got.err and "SFT of tiny" in got.out
    assert (out / "final" / "model.safetensors").stat().st_mtime_ns == mtime

    monkeypatch.setattr(job, "train", spy)
    assert job.cli(args + ["--max_steps", "6"]) == 0
    assert "re-run from scratch: config changed (max_steps: 4 -> 6)" in capsys.readouterr().err
    assert seen[-1] == {"checkpoints": False, "final": False}  # nothing of the old run left to resume from
    changed = json.loads(summary.read_text())
    assert changed["steps"] == 6 and changed["resumed_from"] is None

    assert job.cli(args + ["--max_steps", "6", "--resume", "never"]) == 0
    assert "re-run from scratch: a fresh start was asked for" in capsys.readouterr().err
    assert seen[-1] == {"checkpoints": False, "final": False} and len(seen) == 4

    with data.open("a") as f:  # other data bytes: the stage's input changed
        f.write(data.read_text().splitlines()[0] + "\n")
    state = job.sft_stage(load_config(SFTConfig, None, args + ["--max_steps", "6"])).state()
    assert state.status == "changed" and "inputs.data.0" in state.reason


# -- rl ---------------------------------------------------------------------------------------------------

def tiny_model(folder: Path, seed: int) -> Path:
    from reasonpipe.models import build_model
    from reasonpipe.tokenizer import TaskTokenizer

    hf = TaskTokenizer.for_task("countdown").hf()
    build_model("tiny", hf, max_positions=512, seed=seed).save_pretrained(folder)
    hf.save_pretrained(folder)
    return folder


def test_rl_job_reuses_reruns_on_a_new_warm_start_model_and_refuses_a_checkpoint_inside_its_folder(tmp_path,
                                                                                                 monkeypatch, capsys):
    from reasonpipe.jobs import rl as job

    model, out = tiny_model(tmp_path / "model", 0), tmp_path / "rl"
    calls: list[bool] = []

    def fake_train(cfg):  # the stage wiring, not GRPO (tests/train/test_rl.py trains)
        calls.append((out / "checkpoints").exists())
        (out / "checkpoints" / "checkpoint-2").mkdir(parents=True)
        (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{}")
        (out / "final").mkdir()
        summary = {"steps": cfg.max_steps, "probe_before": None, "probe_after": {"step": 2, "probe/pass@1": 0.5}}
        (out / "summary.json").write_text(json.dumps(summary))
        (out / "report.md").write_text("# GRPO\n")
        return summary

    monkeypatch.setattr(job, "train", fake_train)
    args = ["--model", str(model), "--out", str(out), "--max_steps", "2", "--quiet", "true"]
    assert job.cli(args) == 0 and calls == [False]
    assert "model" not in record(out / "rl.stage.json")["config"]  # the folder's bytes stand for it
    assert job.cli(args + ["--keep_checkpoints", "5"]) == 0 and calls == [False]
    got = capsys.readouterr()
    assert ": reused: finished" in got.err and "probe/pass@1 after (step 2)" in got.out
    tiny_model(model, 1)  # a retrained warm start
    assert job.cli(args) == 0 and calls == [False, False]
    assert "config changed (inputs.model:" in capsys.readouterr().err
    assert job.cli(args + ["--resume", "never"]) == 0 and calls == [False, False, False]
    assert job.cli(args + ["--resume", str(out / "checkpoints" / "checkpoint-2")]) == 2
    assert "a re-run would remove it" in capsys.readouterr().err and len(calls) == 3


# -- eval -------------------------------------------------------------------------------------------------

def test_eval_job_reuses_its_grid_reruns_on_a_changed_setting_or_model_and_resumes_an_interrupted_run(
        tmp_path, monkeypatch, capsys):
    import reasonpipe.evaluation
    from reasonpipe.jobs import evaluation as job

    backtrack, direct = tiny_model(tmp_path / "bt", 0), tiny_model(tmp_path / "direct", 1)
    out = tmp_path / "eval"
    results = out / "results.jsonl"
    args = ["--out", str(out), "--backtrack_model", str(backtrack), "--direct_model", str(direct), "--problems", "3",
            "--lengths", "[8, 16]", "--ns", "[1, 2]", "--direct_max_new_tokens", "8", "--device", "cpu",
            "--task_options", OPTIONS[:-1] + ", split: test_target}", "--batch_size", "4"]
    seen: list[bool] = []

    def spy(cfg, log=print):
        seen.append(results.exists())
        return reasonpipe.evaluation.run_eval(cfg, log)

    monkeypatch.setattr(job, "run_eval", spy)
    assert job.cli(args) == 0 and seen == [False]
    first = results.read_text()
    mtime = results.stat().st_mtime_ns
    capsys.readouterr()

    monkeypatch.setattr(job, "run_eval", boom)
    assert job.cli(args + ["--workers", "1"]) == 0
    got = capsys.readouterr()
    assert "stage eval" in got.err and ": reused: finished" in got.err and "L=16" in got.out and "n=2" in got.out
    assert results.stat().st_mtime_ns == mtime

    monkeypatch.setattr(job, "run_eval", spy)
    assert job.cli(args + ["--problems", "4"]) == 0 and seen == [False, False]  # old results removed first
    assert "config changed (problems: 3 -> 4)" in capsys.readouterr().err
    assert [json.loads(r)["problems"] for r in results.read_text().splitlines()] == [4] * len(first.splitlines())

    tiny_model(direct, 2)  # a retrained direct model: its bytes are the stage's input
    assert job.cli(args + ["--problems", "4"]) == 0 and seen == [False, False, False]
    assert "config changed (inputs.direct_model:" in capsys.readouterr().err

    def interrupted(cfg, log=print):
        raise KeyboardInterrupt

    monkeypatch.setattr(job, "run_eval", interrupted)
    assert job.cli(args) == 130
    assert record(out / "eval.stage.json")["status"] == "running"
    monkeypatch.setattr(job, "run_eval", spy)
    assert job.cli(args) == 0 and len(seen) == 4  # run, not reused
    assert "resuming: an earlier run of the same config did not finish" in capsys.readouterr().err
    assert record(out / "eval.stage.json")["status"] == "done"


# -- latent -----------------------------------------------------------------------------------------------

def test_latent_evaluation_is_a_stage_reused_on_a_second_run_and_rerun_when_its_setting_changes(
        tmp_path, monkeypatch, capfd):
    from reasonpipe.jobs import latent as job

    out = tmp_path / "run"
    config = tmp_path / "toy.yaml"
    config.write_text(f"""out: {out}
task_options: {{nodes: 8, depth: 2}}
eval_sets: {{test: {{split: test}}}}
methods: [nocot, coconut]
train_problems: 32
eval_problems: 8
hidden: 32
heads: 2
stage0_epochs: 1
epochs_per_stage: 1
batch_size: 16
probe_problems: 8
quiet: true
""")
    args = ["--config", str(config)]
    assert job.cli(args) == 0
    results, probe = out / "results.jsonl", out / "probe.jsonl"
    first, mtime = results.read_text(), results.stat().st_mtime_ns
    assert record(out / "evaluate.stage.json")["status"] == "done" and probe.read_text()
    capfd.readouterr()

    evaluate_all = job.evaluate_all
    monkeypatch.setattr(job, "evaluate_all", boom)
    assert job.cli(args) == 0
    got = capfd.readouterr()
    assert "stage evaluate" in got.err and got.err.count(": reused: finished") == 3  # 2 trainings, the evaluation
    assert results.stat().st_mtime_ns == mtime and results.read_text() == first
    assert "superposition probe" in got.out and "(reused)" in (out / "report.md").read_text()

    calls: list[bool] = []

    def spy(*a):
        calls.append(results.exists())
        return evaluate_all(*a)

    monkeypatch.setattr(job, "evaluate_all", spy)
    assert job.cli(args + ["--eval_problems", "10"]) == 0 and calls == [False]
    err = capfd.readouterr().err
    assert err.count(": reused: finished") == 2 and "config changed (eval_problems: 8 -> 10)" in err
    assert {json.loads(r)["problems"] for r in results.read_text().splitlines()} == {10}


# -- what the jobs added to reasonpipe.stage -----------------------------------------------------------------

def test_a_folder_input_is_hashed_by_its_files_and_fresh_reruns_a_finished_stage(tmp_path):
    from reasonpipe.errors import InputError
    from reasonpipe.stage import Stage, folder_sha256

    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "a.bin").write_bytes(b"a")
    (model / "sub" / "b.bin").write_bytes(b"b")
    before = folder_sha256(str(model))
    (model / "sub" / "b.bin").write_bytes(b"c")
    assert folder_sha256(str(model)) != before
    (model / "sub" / "b.bin").write_bytes(b"b")
    assert folder_sha256(str(model)) == before
    (model / "sub" / "b.bin").rename(model / "b.bin")  # same bytes, another place: another folder
    assert folder_sha256(str(model)) != before

    lines: list[str] = []
    calls: list[int] = []

    def make(**kw):
        return Stage("s", str(tmp_path / "run"), {"n": 1}, inputs={"model": str(model)}, outputs=["out.txt"],
                     scratch=["ckpt"], log=lines.append, **kw)

    def fn():
        calls.append(1)
        (tmp_path / "run" / "out.txt").write_text("x")
        return {"ok": True}

    assert make().run(fn) == {"ok": True} and make().run(fn) == {"ok": True} and len(calls) == 1
    (tmp_path / "run" / "ckpt").mkdir()
    (tmp_path / "run" / "ckpt" / "kept").write_text("k")
    again = make()
    again.run(fn, fresh=True)
    assert again.outcome == "rerun" and len(calls) == 2 and not (tmp_path / "run" / "ckpt").exists()
    assert lines[-1].endswith("re-run from scratch: a fresh start was asked for")
    (model / "a.bin").write_bytes(b"z")
    assert "inputs.model" in make().state().reason

    (tmp_path / "run" / "ckpt").mkdir()
    (tmp_path / "run" / "ckpt" / "checkpoint-1").mkdir()
    with pytest.raises(InputError, match="a re-run would remove it") as err:
        Stage("s", str(tmp_path / "run"), {}, inputs={"resume": str(tmp_path / "run" / "ckpt" / "checkpoint-1")},
              scratch=["ckpt"])
    assert err.value.field == "inputs.resume"
    fresh_new = Stage("t", str(tmp_path / "new"), {}, log=lines.append)
    fresh_new.run(lambda: {}, fresh=True)
    assert fresh_new.outcome == "ran"  # nothing there: a first run, not a re-run
