"""The Stage helper (reasonpipe.stage): reuse with the same config, re-run on a changed one (naming the field),
resume after an interruption, and a record that is never half-written."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest

import reasonpipe.jsonl
import reasonpipe.stage
from reasonpipe.errors import InputError
from reasonpipe.stage import Stage, changed_fields, config_hash


class Job:
    """A stage function that counts its calls, checkpoints to ``ckpt`` and writes ``out.json`` atomically;
    ``crash_after`` steps it raises as a Ctrl-C would."""

    def __init__(self, folder, config, crash_after=None):
        self.folder, self.config, self.crash_after = folder, config, crash_after
        self.calls, self.started_from = 0, []

    def __call__(self):
        self.calls += 1
        ckpt = os.path.join(self.folder, "ckpt")
        step = 0
        if os.path.exists(ckpt):
            with open(ckpt) as f:
                step = int(f.read())
        self.started_from.append(step)
        while step < self.config["steps"]:
            if self.crash_after is not None and step == self.crash_after:
                raise KeyboardInterrupt
            step += 1
            with reasonpipe.jsonl.atomic_write(ckpt) as f:
                f.write(str(step))
        result = {"steps": step, "value": self.config["steps"] * self.config["opts"]["lr"]}
        with reasonpipe.jsonl.atomic_write(os.path.join(self.folder, "out.json")) as f:
            json.dump(result, f)
        return result


def stage(folder, config, lines, **kw):
    return Stage("train", str(folder), config, outputs=["out.json"], scratch=["ckpt"], log=lines.append, **kw)


CONFIG = {"steps": 5, "opts": {"lr": 0.1, "layers": 2}}


def test_same_config_is_reused_without_calling_the_function(tmp_path):
    lines = []
    job = Job(str(tmp_path), CONFIG)
    first = stage(tmp_path, CONFIG, lines)
    assert not first.done() and first.state().status == "new"
    assert first.run(job) == {"steps": 5, "value": 0.5} and first.outcome == "ran" and lines == []
    again = stage(tmp_path, json.loads(json.dumps(CONFIG)), lines)  # an equal config, built anew
    assert again.done()
    assert again.run(job) == {"steps": 5, "value": 0.5} and again.reused and job.calls == 1
    assert len(lines) == 1 and re.search(r"stage train \(.*\): reused: finished .* same config \(hash [0-9a-f]{12}\)",
                                         lines[0])
    record = json.loads((tmp_path / "train.stage.json").read_text())
    assert record["status"] == "done" and record["config"] == CONFIG and record["hash"] == config_hash(CONFIG)
    assert record["summary"] == {"steps": 5, "value": 0.5} and len(record["outputs"]["out.json"]) == 64


def test_a_changed_config_reruns_from_scratch_and_names_the_changed_fields(tmp_path):
    lines = []
    stage(tmp_path, CONFIG, lines).run(Job(str(tmp_path), CONFIG))
    changed = {"steps": 3, "opts": {"lr": 0.2, "layers": 2}, "extra": True}
    job = Job(str(tmp_path), changed)
    s = stage(tmp_path, changed, lines)
    state = s.state()
    assert state.status == "changed" and state.changed == ("extra", "opts.lr", "steps")
    summary = s.run(job)
    assert s.outcome == "rerun" and job.started_from == [0]  # the old checkpoint (step 5) was removed, not resumed
    assert summary == {"steps": 3, "value": 0.6000000000000001}
    assert lines == [(f"stage train ({tmp_path}): re-run from scratch: config changed "
                      f"(extra: (none) -> true, opts.lr: 0.1 -> 0.2, steps: 5 -> 3)")]
    assert json.loads((tmp_path / "out.json").read_text())["steps"] == 3


def test_a_changed_input_file_reruns(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("a")
    lines = []
    job = Job(str(tmp_path), CONFIG)
    stage(tmp_path, CONFIG, lines, inputs={"data": str(data)}).run(job)
    assert stage(tmp_path, CONFIG, lines, inputs={"data": str(data)}).done()
    data.write_text("b")
    s = stage(tmp_path, CONFIG, lines, inputs={"data": str(data)})
    assert s.state().changed == ("inputs.data",)
    s.run(job)
    assert s.outcome == "rerun" and job.calls == 2 and "inputs.data:" in lines[-1]
    with pytest.raises(InputError, match="input file missing"):
        stage(tmp_path, CONFIG, lines, inputs={"data": str(tmp_path / "gone")})


def test_an_interrupted_stage_resumes_where_its_function_left_off(tmp_path):
    lines = []
    crashing = Job(str(tmp_path), CONFIG, crash_after=3)
    with pytest.raises(KeyboardInterrupt):
        stage(tmp_path, CONFIG, lines).run(crashing)
    record = json.loads((tmp_path / "train.stage.json").read_text())
    assert record["status"] == "running" and "summary" not in record and not (tmp_path / "out.json").exists()
    s = stage(tmp_path, CONFIG, lines)
    assert s.state().status == "interrupted" and not s.done()
    job = Job(str(tmp_path), CONFIG)
    assert s.run(job) == {"steps": 5, "value": 0.5}
    assert s.outcome == "resumed" and job.started_from == [3]
    assert lines == [f"stage train ({tmp_path}): resuming: an earlier run of the same config did not finish"]
    assert stage(tmp_path, CONFIG, lines).done()


def test_a_missing_or_changed_output_is_not_reused(tmp_path):
    lines = []
    job = Job(str(tmp_path), CONFIG)
    stage(tmp_path, CONFIG, lines).run(job)
    (tmp_path / "out.json").write_text('{"steps": 99}')
    s = stage(tmp_path, CONFIG, lines)
    assert s.state().status == "stale" and "out.json was changed" in s.state().reason
    s.run(job)
    assert s.outcome == "resumed" and json.loads((tmp_path / "out.json").read_text())["steps"] == 5
    (tmp_path / "out.json").unlink()
    assert "out.json is missing" in stage(tmp_path, CONFIG, lines).state().reason
    assert stage(tmp_path, CONFIG, lines).run(job) == {"steps": 5, "value": 0.5} and job.calls == 3


def test_files_without_a_record_are_removed_and_the_stage_runs_once_more(tmp_path):
    """A run folder of the old code: outputs and checkpoints there, no record of their config."""
    (tmp_path / "out.json").write_text('{"steps": 7}')
    (tmp_path / "ckpt").write_text("4")
    (tmp_path / "other.stage.json").write_text("{}")  # another stage's record: never removed
    (tmp_path / "notes.txt").write_text("mine")        # not declared: left alone
    lines = []
    job = Job(str(tmp_path), CONFIG)
    s = stage(tmp_path, CONFIG, lines)
    assert s.state().status == "unrecorded"
    s.run(job)
    assert s.outcome == "rerun" and job.started_from == [0] and "no record of the config" in lines[0]
    assert (tmp_path / "other.stage.json").exists() and (tmp_path / "notes.txt").read_text() == "mine"
    assert stage(tmp_path, CONFIG, lines).done()


def test_nothing_half_written_after_a_crash(tmp_path, monkeypatch):
    lines = []
    job = Job(str(tmp_path), CONFIG)
    stage(tmp_path, CONFIG, lines).run(job)
    before = (tmp_path / "train.stage.json").read_text()

    # a summary JSON cannot hold: an error before the record is touched; the stage is not marked done
    changed = {**CONFIG, "steps": 6}
    with pytest.raises(TypeError):
        stage(tmp_path, changed, lines).run(lambda: {"model": object()})
    assert json.loads((tmp_path / "train.stage.json").read_text())["status"] == "running"
    assert not stage(tmp_path, changed, lines).done()

    # killed while the record is being written (after part of it is out): the old record stays whole
    (tmp_path / "train.stage.json").write_text(before)

    def dies(fd):
        raise OSError("disk gone")

    monkeypatch.setattr(reasonpipe.jsonl.os, "fsync", dies)
    with pytest.raises(OSError, match="disk gone"):
        stage(tmp_path, changed, lines).run(Job(str(tmp_path), changed))
    monkeypatch.undo()
    assert (tmp_path / "train.stage.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []

    # a function that does not write its declared output: an error, and the stage is not done
    with pytest.raises(RuntimeError, match="declared output out.json"):
        Stage("empty", str(tmp_path), {}, outputs=["out.json"], scratch=["out.json"], log=None).run(dict)
    assert not Stage("empty", str(tmp_path), {}, outputs=["out.json"], log=None).done()


def test_changed_fields_and_bad_declarations(tmp_path):
    assert changed_fields({"a": 1, "b": {"c": [1, 2], "d": 0}}, {"a": 1, "b": {"c": [1, 3]}, "e": None}) == [
        "b.c", "b.d", "e"]
    assert changed_fields({"a": (1, 2)}, {"a": (1, 2)}) == []
    assert config_hash({"a": (1, 2), "b": 1}) == config_hash({"b": 1, "a": [1, 2]})  # canonical JSON
    for name in ("", "a/b", ".."):
        with pytest.raises(InputError, match="stage name"):
            Stage(name, str(tmp_path), {})
    with pytest.raises(InputError, match="inside its folder"):
        Stage("x", str(tmp_path), {}, scratch=["../elsewhere"])
    with pytest.raises(TypeError, match="JSON data"):
        Stage("x", str(tmp_path), {"f": object()})


def test_the_module_docstring_example_runs():
    line = next(x for x in reasonpipe.stage.__doc__.splitlines() if x.strip().startswith("python -c"))
    done = subprocess.run([sys.executable, *shlex.split(line.strip())[1:]], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.splitlines() == ["{'sq': 9}", "{'sq': 9}", "{'sq': 16}"]
    assert ": reused: finished" in done.stderr and "config changed (n: 3 -> 4)" in done.stderr
