"""The CLI as users run it: gen -> verify, determinism, other tools' files, and bad input (exit 2, no traceback)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from conftest import DATA


def lines(path) -> list[dict]:
    return [json.loads(x) for x in open(path, encoding="utf-8")]


@pytest.mark.parametrize("task,n", [("countdown", 60), ("sudoku", 12)])
def test_gen_then_verify_all_steps_proved_and_deterministic(cli, tmp_path, task, n):
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    assert cli("gen", task, "--n", n, "--searcher", "dfs", "--seed", 1, "--out", a, "--quiet").code == 0
    assert cli("gen", task, "--n", n, "--searcher", "dfs", "--seed", 1, "--out", b, "--quiet").code == 0
    assert cli("gen", task, "--n", n, "--searcher", "dfs", "--seed", 1, "--out", c, "--quiet", "--workers", 2).code == 0
    assert a.read_bytes() == b.read_bytes() == c.read_bytes()
    records = lines(a)
    assert len(records) == n and all(r["task"] == task and r["meta"]["chars"] == len(r["text"]) for r in records)
    result = cli("verify", a, "--out", tmp_path / "v.jsonl", "--quiet")
    assert result.code == 0, result.out
    verdicts = lines(tmp_path / "v.jsonl")
    assert all(v["valid"] and v["counts"]["proved"] == v["steps"] == len(v["verdicts"]) and not v["reasons"]
               for v in verdicts)
    assert "refuted" in result.out and f"│ traces                          │ {n}" in result.out


def test_different_seed_gives_different_file(cli, tmp_path):
    cli("gen", "countdown", "--n", 20, "--seed", 1, "--out", tmp_path / "a.jsonl", "--quiet")
    cli("gen", "countdown", "--n", 20, "--seed", 2, "--out", tmp_path / "b.jsonl", "--quiet")
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "b.jsonl").read_bytes()


@pytest.mark.parametrize("task", ["countdown", "sudoku"])
def test_one_changed_result_exits_1_naming_trace_and_step(cli, tmp_path, task):
    path = tmp_path / "t.jsonl"
    cli("gen", task, "--n", 5, "--searcher", "direct", "--seed", 3, "--out", path, "--quiet")
    records = lines(path)
    rec = records[2]
    if task == "countdown":
        # the second explored operation: change its result (and the numbers it claims), keep the grammar
        text_lines = rec["text"].split("\n")
        i = [k for k, x in enumerate(text_lines) if x.startswith("Exploring")][1]
        head, _, tail = text_lines[i].partition("=")
        value = int(tail.split(",")[0])
        text_lines[i] = f"{head}={value + 1}" + tail[len(str(value)):].replace(str(value), str(value + 1), 1)
    else:
        text_lines = rec["text"].split("\n")
        i = next(k for k, x in enumerate(text_lines) if x.startswith("("))
        r_c, _, v = text_lines[i].rpartition(" = ")
        text_lines[i] = f"{r_c} = {int(v) % 9 + 1}"
    rec["text"] = "\n".join(text_lines)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cli("verify", path, "--quiet", "--out", tmp_path / "v.jsonl")
    assert result.code == 1
    assert rec["id"] in result.out and f"│ {i + 1}" in result.out and "refuted" in result.out
    bad = [v for v in lines(tmp_path / "v.jsonl") if not v["valid"]]
    assert len(bad) == 1 and bad[0]["id"] == rec["id"] and bad[0]["first_failure"]["step"] == i + 1
    assert bad[0]["verdicts"][i] == "refuted" and str(i + 1) in bad[0]["reasons"]


def test_stream_of_search_files_verify_with_auto_format(cli, tmp_path):
    result = cli("verify", DATA / "sos_countdown_dfs.json", "--quiet")
    assert result.code == 0 and "│ sos" in result.out and "│ 24 " in result.out
    records = json.loads((DATA / "sos_countdown_dfs.json").read_text())
    jsonl = tmp_path / "sos.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert cli("verify", jsonl, "--quiet").code == 0
    text = tmp_path / "traces.txt"
    text.write_text("# Stream of Search traces\n\n" + "\n".join(r["search_path"] for r in records))
    result = cli("verify", text, "--quiet")
    assert result.code == 0 and "│ text" in result.out and "│ 24 " in result.out
    records[3]["search_path"] = records[3]["search_path"].replace("Moving to Node #0,0\n", "Moving to Node #0,9\n", 1)
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cli("verify", jsonl, "--format", "sos", "--quiet")
    assert result.code == 1 and "never generated" in result.out


@pytest.mark.parametrize("task", ["countdown", "sudoku"])
def test_kbacktrack_via_cli(cli, tmp_path, task):
    out = tmp_path / "k.jsonl"
    assert cli("gen", task, "--n", 10, "--searcher", "kbacktrack", "--k", 3, "--seed", 4, "--out", out, "--quiet").code == 0
    assert all(r["meta"]["backtracks"] == 3 and r["meta"]["solved"] for r in lines(out))
    assert cli("verify", out, "--quiet").code == 0


def test_gen_from_users_problems(cli, tmp_path):
    plain = tmp_path / "p.txt"
    plain.write_text("# mine\n3,5,7;22\n\n25, 5, 2 ; 28\n")
    out = tmp_path / "o.jsonl"
    assert cli("gen", "countdown", "--from", plain, "--searcher", "direct", "--out", out, "--quiet").code == 0
    recs = lines(out)
    assert [r["problem"] for r in recs] == [{"nums": [3, 5, 7], "target": 22}, {"nums": [25, 5, 2], "target": 28}]
    assert recs[0]["id"] == "p.txt:2" and all(r["meta"]["solved"] for r in recs)
    as_json = tmp_path / "p.jsonl"
    as_json.write_text(json.dumps({"id": "x1", "problem": {"nums": [4, 4], "target": 16}}) + "\n"
                       + json.dumps({"nums": [2, 3], "target": 6}) + "\n")
    assert cli("gen", "countdown", "--from", as_json, "--out", out, "--quiet").code == 0
    assert [r["id"] for r in lines(out)] == ["x1", "p.jsonl:2"]
    sudoku = tmp_path / "s.txt"
    sudoku.write_text("53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79\n")
    assert cli("gen", "sudoku", "--from", sudoku, "--out", out, "--quiet").code == 0
    assert cli("verify", out, "--quiet").code == 0


# -- bad input: exit 2, one message naming file, line and field ---------------------------------------

def good_record(cli, tmp_path) -> dict:
    path = tmp_path / "g.jsonl"
    cli("gen", "countdown", "--n", 1, "--searcher", "direct", "--out", path, "--quiet", "--steps")
    return lines(path)[0]


def test_steps_are_opt_in_and_checked_against_text(cli, tmp_path):
    plain, typed = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    cli("gen", "sudoku", "--n", 3, "--out", plain, "--quiet")
    cli("gen", "sudoku", "--n", 3, "--out", typed, "--quiet", "--steps")
    a, b = lines(plain), lines(typed)
    assert "steps" not in a[0] and [{k: v for k, v in r.items() if k != "steps"} for r in b] == a
    from reasonpipe.traces import Trace

    assert all([s.to_json() for s in Trace.from_record(r).steps] == r["steps"] for r in b)
    assert cli("verify", typed, "--quiet").code == 0
    b[1]["steps"][2][-1] = 0
    typed.write_text("".join(json.dumps(r) + "\n" for r in b))
    r = cli("verify", typed, "--quiet")
    assert r.code == 2 and f"{typed}:2: field 'steps[2]': disagrees with 'text' at step 3" in r.err


@pytest.mark.parametrize("mutate,expect", [
    (lambda r: "{not json", ":2: invalid JSON"),
    (lambda r: json.dumps({**r, "task": "chess"}), ":2: field 'task': unknown task 'chess' (known: countdown, sudoku, reachability, arc_1d, list_functions, color_cube_rotation, zebra_puzzles, self_reference, advanced_geometry)"),
    (lambda r: json.dumps({k: v for k, v in r.items() if k != "text"}), ":2: field 'text': missing"),
    (lambda r: json.dumps({**r, "text": 7}), ":2: field 'text': expected str, got int"),
    (lambda r: json.dumps({**r, "problem": {"nums": [1, "2"], "target": 3}}), ":2: field 'problem.nums[1]': expected an integer"),
    (lambda r: json.dumps(r).replace('"target":', '"target":1' + "0" * 1000 + ',"x":', 1),
     ":2: field 'problem.target': a 1001-digit number is out of range"),
    (lambda r: json.dumps(r).replace('"target":', '"target":1' + "0" * 5000 + ',"x":', 1), ":2: invalid JSON"),
    (lambda r: json.dumps({**r, "meta": {**r["meta"], "backtracks": "2"}}), ":2: field 'meta.backtracks': expected int"),
    (lambda r: json.dumps({**r, "steps": r["steps"][:-1]}), ":2: field 'steps["),
    (lambda r: "[1, 2]", ":2: expected a JSON object, got list"),
])
def test_bad_records_name_file_line_field(cli, tmp_path, mutate, expect):
    rec = good_record(cli, tmp_path)
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(rec) + "\n" + mutate(rec) + "\n" + json.dumps(rec) + "\n")
    result = cli("verify", path, "--quiet")
    assert result.code == 2
    assert f"{path}{expect}" in result.err, result.err
    skipped = cli("verify", path, "--quiet", "--skip-bad")
    assert skipped.code == 0 and "│ skipped bad records             │ 1" in skipped.out


def test_empty_binary_missing_and_usage(cli, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    r = cli("verify", empty)
    assert r.code == 2 and "empty file" in r.err
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n\n   \n")
    assert cli("verify", blank).code == 2
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00" + bytes(range(256)) * 10)
    r = cli("verify", binary)
    assert r.code == 2 and "binary" in r.err and str(binary) in r.err
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"task": "countdown", "text": "caf\xe9"}\n')
    r = cli("verify", latin)
    assert r.code == 2 and ":1: not UTF-8" in r.err
    r = cli("verify", tmp_path / "nope.jsonl")
    assert r.code == 2 and "cannot read" in r.err
    assert cli("verify").code == 2
    assert cli("gen", "chess", "--n", 1, "--out", tmp_path / "x").code == 2
    r = cli("gen", "sudoku", "--n", 1, "--searcher", "beam", "--out", tmp_path / "x")
    assert r.code == 2 and "unknown searcher 'beam' for sudoku (known: dfs, direct, kbacktrack)" in r.err
    r = cli("gen", "sudoku", "--n", 1, "--numbers", 3, "--out", tmp_path / "x")
    assert r.code == 2 and "numbers" in r.err
    r = cli("verify", DATA / "sos_countdown_dfs.json", "--format", "xml")
    assert r.code == 2 and "unknown format" in r.err


def test_bad_user_problems(cli, tmp_path):
    plain = tmp_path / "p.txt"
    plain.write_text("3,5,7;22\n3,x;4\n")
    r = cli("gen", "countdown", "--from", plain, "--out", tmp_path / "o.jsonl", "--quiet")
    assert r.code == 2 and f"{plain}:2: field 'problem': expected integers" in r.err
    assert not (tmp_path / "o.jsonl").exists()  # nothing half-written
    r = cli("gen", "countdown", "--from", plain, "--out", tmp_path / "o.jsonl", "--quiet", "--skip-bad")
    assert r.code == 0 and len(lines(tmp_path / "o.jsonl")) == 1
    sudoku = tmp_path / "s.txt"
    sudoku.write_text("123\n")
    r = cli("gen", "sudoku", "--from", sudoku, "--out", tmp_path / "o.jsonl", "--quiet")
    assert r.code == 2 and f"{sudoku}:1:" in r.err


def test_failed_gen_keeps_the_previous_file(cli, tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_text("precious\n")
    plain = tmp_path / "p.txt"
    plain.write_text("3,5,7;22\nbad\n")
    assert cli("gen", "countdown", "--from", plain, "--out", out, "--quiet").code == 2
    assert out.read_text() == "precious\n" and [p.name for p in tmp_path.iterdir() if "tmp" in p.name] == []


# -- one entry style: reasonpipe <stage> --config F [--key value] ------------------------------------------

# stage -> (a tiny config, an override, what the stage's main must receive)
STAGE_CASES = {
    "tracegen": ("task: sudoku\nn: 5\n", ["--workers", "1"], {"task": "sudoku", "n": 5, "workers": 1}),
    "verify": ("file: t.jsonl\n", ["--backend", "exact+lean"], {"file": "t.jsonl", "backend": "exact+lean"}),
    "sft": ("data: [a.jsonl]\nmodel: tiny\n", ["--max_steps", "3"], {"data": ["a.jsonl"], "max_steps": 3}),
    "rl": ("model: tiny\n", ["--task_options.numbers", "3"], {"model": "tiny", "task_options": {"numbers": 3}}),
    "eval": ("problems: 5\n", ["--lengths", "[32, 64]"], {"problems": 5, "lengths": [32, 64]}),
    "latent": ("hidden: 32\nheads: 2\n", ["--eval_sets.larger.nodes", "10"],  # the other default set is kept
               {"hidden": 32, "eval_sets": {"test": {"split": "test"},
                                            "larger": {"split": "test", "nodes": 10, "depth": 4}}}),
    "ksweep": ("ks: [0, 1]\n", ["--sft.max_steps", "2"], {"ks": [0, 1]}),
    "pipeline": ("name: t\ndatasets:\n  - {name: cd, task: countdown}\n", ["--datasets.0.n", "5"], {"name": "t"}),
}


def stage_module(stage: str):
    import importlib

    from reasonpipe.jobs import STAGES

    return importlib.import_module(f"reasonpipe.jobs.{STAGES[stage]}")


@pytest.fixture
def seen(monkeypatch):
    """Replace every stage's ``main`` by one that records its config: the command line, not the work, is tested."""
    from reasonpipe.jobs import STAGES

    got: dict[str, object] = {}
    for stage in STAGES:
        monkeypatch.setattr(stage_module(stage), "main", 
                            lambda config, stage=stage: got.setdefault(stage, config) and 0)
    return got


@pytest.mark.parametrize("stage", list(STAGE_CASES))
def test_every_stage_runs_as_reasonpipe_stage_with_config_and_overrides(cli, seen, tmp_path, stage):
    text, override, expect = STAGE_CASES[stage]
    config = tmp_path / "c.yaml"
    config.write_text(text)
    r = cli(stage, "--config", config, *override)
    assert r.code == 0, r.err
    got = seen[stage]
    assert {k: getattr(got, k) for k in expect} == expect
    if stage == "pipeline":
        assert got.datasets[0].name == "cd" and got.datasets[0].n == 5
    if stage == "ksweep":
        assert got.sft.max_steps == 2 and got.sft.lr == 1e-3  # a typed block: the other fields at their defaults


@pytest.mark.parametrize("tool,stage", [("gen", "tracegen"), ("verify", "verify")])
def test_gen_and_verify_with_config_are_their_job_stages(cli, seen, tmp_path, tool, stage):
    text, override, expect = STAGE_CASES[stage]
    config = tmp_path / "c.yaml"
    config.write_text(text)
    assert cli(tool, "--config", config, *override).code == 0
    assert {k: getattr(seen[stage], k) for k in expect} == expect


def test_the_job_stages_really_run_and_match_the_tools(cli, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert cli("gen", "countdown", "--n", 30, "--seed", 2, "--out", a, "--quiet").code == 0
    config = tmp_path / "gen.yaml"
    config.write_text(f"task: countdown\nn: 30\nseed: 2\nout: {b}\nbackend: process\nworkers: 1\nquiet: true\n")
    assert cli("gen", "--config", config).code == 0
    assert a.read_bytes() == b.read_bytes()  # the stage writes what the tool writes
    assert cli("tracegen", "--config", config, "--out", tmp_path / "c.jsonl").code == 0
    assert (tmp_path / "c.jsonl").read_bytes() == a.read_bytes()
    verify = tmp_path / "verify.yaml"
    verify.write_text(f"file: {a}\nquiet: true\n")
    r = cli("verify", "--config", verify)
    assert r.code == 0 and "step verification" in r.out
    r = cli("verify", "--config", verify, "--file", tmp_path / "missing.jsonl")
    assert r.code == 2 and r.err.startswith("reasonpipe verify: error:") and "missing.jsonl" in r.err


@pytest.mark.parametrize("stage", list(STAGE_CASES))
def test_stage_help_lists_every_field_with_type_default_and_help(cli, stage):
    import typing

    from reasonpipe.jobs import field_rows

    ask = ["--config", "F", "--help"] if stage == "verify" else ["--help"]  # verify without --config: the tool
    r = cli(stage, *ask)
    assert r.code == 0 and r.out.startswith(f"usage: reasonpipe {stage} [--config F] [--key value ...]")
    module = stage_module(stage)
    config_cls = next(iter(typing.get_type_hints(module.main).values()))  # main(config: TheConfig)
    rows = field_rows(config_cls)
    for name, tp, _, text in rows:
        assert f"--{name} {tp}" in r.out, name
        assert text.split()[0] in r.out, name
    assert f"python -m reasonpipe.jobs.{module.__name__.split('.')[2]} --config F" in r.out
    assert all(text for _, _, _, text in rows), [name for name, _, _, text in rows if not text]
    assert cli(stage, "--config", "not-read.yaml", "--help").code == 0  # --help wins: the file is not read


@dataclass
class HelpInner:
    size: int = field(default=3, metadata={"help": "the size"})


@dataclass
class HelpDemo:
    a: int = field(default=1, metadata={"help": "from   metadata"})
    b: str = "x"  # a comment is not help text
    c: list[HelpInner] = field(default_factory=list, metadata={"help": "inner ones"})
    d: HelpInner | None = None


def test_help_text_comes_from_field_metadata():
    from reasonpipe.jobs import field_rows

    rows = {name: (tp, default, text) for name, tp, default, text in field_rows(HelpDemo)}
    assert rows == {"a": ("int", "1", "from metadata"), "b": ("str", '"x"', ""),
                    "c": ("list[HelpInner]", "[]", "inner ones"), "c.N.size": ("int", "3", "the size"),
                    "d": ("HelpInner | None", "null", ""), "d.size": ("int", "3", "the size")}


def test_a_bad_override_exits_2_with_one_line_naming_the_field_and_the_valid_ones(cli, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(STAGE_CASES["pipeline"][0])
    r = cli("sft", "--max_step", 3)
    assert r.code == 2 and r.err.count("\n") == 1
    assert r.err.startswith("reasonpipe sft: error: --max_step: no such field (did you mean --max_steps?)")
    assert "the fields of SFTConfig: tokenizer, format, layout, system, lora, trl, report_to, data, out, task" in r.err
    r = cli("pipeline", "--config", config, "--datasets.0.nn", 3)
    assert r.code == 2 and "--datasets.0.nn: no such field (did you mean --datasets.0.n?)" in r.err
    assert "fields of datasets.0 (DatasetBlock): k, beam, heuristic, threshold, max_nodes, name, task, searcher, n," in r.err
    r = cli("pipeline", "--config", config, "--seed.x", 3)
    assert r.code == 2 and "--seed.x: seed (int) has no field 'x'" in r.err
    r = cli("eval", "--problems", "many")  # argparse, with the field's type
    assert r.code == 2 and r.err == "reasonpipe eval: error: --problems: expected int, got str 'many'\n"
    from reasonpipe.jobs import sft

    assert sft.cli(["--max_step", "3"]) == 2  # the module form checks the same way


def test_unknown_stage_lists_the_valid_ones_and_submit_takes_stage_names(cli, tmp_path):
    r = cli("evall", "--config", "c.yaml")
    assert r.code == 2 and "unknown command 'evall' (did you mean eval?)" in r.err
    for stage in ("tracegen", "verify --config", "sft", "rl", "eval", "latent", "ksweep", "pipeline"):
        assert stage in r.err
    r = cli("submit", "eval", "--config", tmp_path / "missing.yaml")  # eval -> jobs/evaluation.py
    assert r.code == 2 and "missing.yaml: no such config file" in r.err


def test_stages_are_the_job_modules_and_the_top_help_lists_them(cli):
    from reasonpipe.jobs import STAGES
    from reasonpipe.jobs.submit import available_jobs

    assert sorted(STAGES.values()) == sorted(available_jobs())
    r = cli("--help")
    assert r.code == 0 and all(f"\n    {stage} " in r.out for stage in STAGES)
    r = cli("verify", "--help")  # the tool's own help, pointing at the job form
    assert r.code == 0 and "--backend" in r.out and "reasonpipe verify --config F" in r.out
