"""Streaming record I/O, atomic writes, typed configs and the pipeline job (small and fast)."""

from __future__ import annotations

import json
import os
import tracemalloc
from dataclasses import dataclass, field

import pytest

from reasonpipe import jsonl
from reasonpipe.config import load_config
from reasonpipe.errors import InputError
from reasonpipe.jsonl import RecordReader, atomic_write


def test_jsonl_and_json_array_read_the_same(tmp_path, monkeypatch):
    records = [{"i": i, "s": "x" * (i * 37 % 300), "nested": {"a": [i, i + 1]}} for i in range(500)]
    a = tmp_path / "a.jsonl"
    a.write_text("".join(json.dumps(r) + "\n" for r in records) + "\n\n")
    b = tmp_path / "b.json"
    b.write_text(json.dumps(records, indent=4))
    monkeypatch.setattr(jsonl, "_CHUNK", 97)  # records straddle every chunk boundary
    assert [r for _, r in RecordReader(str(a))] == records
    got = list(RecordReader(str(b)))
    assert [r for _, r in got] == records
    assert got[1][0] == json.dumps(records, indent=4).split("\n").index("    {", 2) + 1  # line of the record


def test_json_array_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[\n  {"a": 1},\n  {"a": 2,,}\n]\n')
    with pytest.raises(InputError, match=r"bad.json:3: invalid JSON"):
        list(RecordReader(str(bad)))
    trunc = tmp_path / "trunc.json"
    trunc.write_text('[{"a": 1}, {"a": 2}')
    with pytest.raises(InputError, match="unterminated JSON array"):
        list(RecordReader(str(trunc)))
    extra = tmp_path / "extra.json"
    extra.write_text('[{"a": 1}] {"b": 2}')
    with pytest.raises(InputError, match="extra data"):
        list(RecordReader(str(extra)))


def test_over_long_line_is_an_error_or_skipped(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_text('{"a": 1}\n{"b": "' + "y" * 5000 + '"}\n{"c": 3}\n')
    with pytest.raises(InputError, match=r"long.jsonl:2: line longer than 1000 bytes"):
        list(RecordReader(str(path), max_record_bytes=1000))
    reader = RecordReader(str(path), max_record_bytes=1000, skip_bad=True)
    assert [r for _, r in reader] == [{"a": 1}, {"c": 3}] and reader.skipped == 1


def test_memory_stays_flat_on_a_large_file(tmp_path):
    path = tmp_path / "big.jsonl"
    line = json.dumps({"text": "Current State: 1:[2, 3], Operations: []\n" * 50}) + "\n"
    with open(path, "w") as f:
        for _ in range(20_000):  # about 42 MB
            f.write(line)
    tracemalloc.start()
    n = sum(1 for _ in RecordReader(str(path)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 20_000 and os.path.getsize(path) > 40e6 and peak < 2e6


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(str(path)) as f:
            f.write("half")
            raise RuntimeError("crash")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]
    with atomic_write(str(path)) as f:
        f.write("new")
    assert path.read_text() == "new"


@dataclass
class Inner:
    n: int = 1
    name: str = "x"


@dataclass
class Outer:
    seed: int = 0
    rate: float = 0.5
    flag: bool = False
    items: list[Inner] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    maybe: int | None = None


def test_config_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 3\nitems:\n  - {n: 2, name: a}\n  - {n: 5}\nextra: {k: v}\n")
    cfg = load_config(Outer, str(path), ["--seed", "7", "--items.1.name", "b", "--rate=1", "--maybe", "4"])
    assert cfg == Outer(seed=7, rate=1.0, items=[Inner(2, "a"), Inner(5, "b")], extra={"k": "v"}, maybe=4)
    assert load_config(Outer, None, []) == Outer()


@dataclass
class WithDefaults:
    sets: dict = field(default_factory=lambda: {"test": {"split": "test"}, "big": {"nodes": 18, "depth": 4}})


def test_an_override_inside_a_default_dict_edits_the_default():
    cfg = load_config(WithDefaults, None, ["--sets.big.nodes", "10"])
    assert cfg.sets == {"test": {"split": "test"}, "big": {"nodes": 10, "depth": 4}}
    assert WithDefaults().sets["big"]["nodes"] == 18  # the default itself is not changed


@pytest.mark.parametrize("text,overrides,expect", [
    ("seed: 3\nitems:\n  - {n: two}\n", [], r"c.yaml:3: field 'items.0.n': expected int, got str"),
    ("seed: 3\nsede: 4\n", [], r"c.yaml:2: field 'sede': unknown key"),
    ("seed: [1\n", [], r"c.yaml:2: invalid YAML"),
    ("seed: 3\n", ["--flag", "maybe"], r"field 'flag': expected bool"),
    ("seed: 3\n", ["--items.4.n", "1"], r"field 'items.4': no such entry"),
])
def test_config_errors_name_file_line_field(tmp_path, text, overrides, expect):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=expect):
        load_config(Outer, str(path), overrides)


def test_pipeline_job_writes_run_folder_and_resumes(tmp_path, capsys):
    from reasonpipe.jobs.pipeline import cli

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(f"""name: tiny
seed: 2
workers: 1
quiet: true
runs_dir: {tmp_path / 'runs'}
datasets:
  - {{name: cd, task: countdown, searcher: dfs, n: 20}}
  - {{name: cdk, task: countdown, searcher: kbacktrack, k: 2, n: 10}}
  - {{name: sd, task: sudoku, searcher: dfs, n: 5}}
""")
    assert cli(["--config", str(recipe)]) == 0
    run = tmp_path / "runs" / "tiny"
    for name in ("report.md", "metrics.jsonl", "manifest.json", "trace_lengths.png", "backtracks.png",
                 "data/cd.jsonl", "verdicts/sd.jsonl"):
        assert (run / name).exists(), name
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["seed"] == 2 and manifest["config"]["datasets"][1]["k"] == 2
    assert len(manifest["datasets"]["cd"]["sha256"]) == 64 and manifest["versions"]["reasonpipe"]
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["valid"] for r in rows] == [1.0, 1.0, 1.0] and rows[1]["mean_backtracks"] == 2
    assert "| cd |" in (run / "report.md").read_text()
    before = (run / "data" / "cd.jsonl").read_bytes()
    assert cli(["--config", str(recipe)]) == 0  # second run: datasets reused
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(r["resumed"] for r in rows) and (run / "data" / "cd.jsonl").read_bytes() == before
    assert cli(["--config", str(recipe), "--datasets.0.n", "21"]) == 0  # changed request: regenerated
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["resumed"] for r in rows] == [False, True, True] and rows[0]["traces"] == 21
    capsys.readouterr()
    assert cli(["--config", str(recipe), "--datasets.0.task", "chess"]) == 2
    assert "unknown task 'chess'" in capsys.readouterr().err


def test_interrupted_gen_resumes_to_identical_bytes(tmp_path):
    from reasonpipe.tracegen import GenRequest, generate

    def request(out, workers=1):
        return GenRequest(task="countdown", searcher="dfs", out=str(out), n=300, seed=5, workers=workers, chunk=40)

    whole = tmp_path / "whole.jsonl"
    full = generate(request(whole))
    for workers in (1, 2):
        out = tmp_path / f"cut{workers}.jsonl"
        seen = []

        def stop_after_three(k):
            seen.append(k)
            if len(seen) == 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            generate(request(out, workers), progress=stop_after_three)
        assert not out.exists() and os.path.getsize(str(out) + ".partial") > 0
        with pytest.raises(InputError, match="other options"):
            generate(GenRequest(task="countdown", searcher="dfs", out=str(out), n=300, seed=6), resume=True)
        advanced = []
        resumed = generate(request(out, workers), progress=advanced.append, resume=True)
        assert out.read_bytes() == whole.read_bytes()
        assert advanced[0] == 120 and sum(advanced) == 300  # three chunks of 40 were already done
        assert resumed.traces == full.traces == 300 and resumed.solved == full.solved
        assert not os.path.exists(str(out) + ".partial") and not os.path.exists(str(out) + ".partial.json")
