"""Typed configs all the way down: nested blocks built and checked at load, help from field metadata, flags
generated from the dataclasses, shared blocks by ``!include``, and every file of configs/ resolving as before."""

from __future__ import annotations

import dataclasses
import json
import os
import typing

import pytest
from conftest import DATA, REPO

from reasonpipe.config import load_config, to_dict
from reasonpipe.errors import InputError

PIPELINE = """name: t
datasets:
  - {name: cd, task: countdown, n: 5}
models:
  - name: m
    data: [cd]
    settings:
      model: tiny
      max_stepz: 3
"""


def stage_config_class(stage: str) -> type:
    import importlib

    from reasonpipe.jobs import STAGES

    module = importlib.import_module(f"reasonpipe.jobs.{STAGES[stage]}")
    return next(iter(typing.get_type_hints(module.main).values()))  # main(config: TheConfig)


# -- a bad nested key fails at load -------------------------------------------------------------------------

def test_a_bad_nested_key_fails_at_load_naming_file_line_and_field_and_nothing_runs(cli, tmp_path, monkeypatch):
    from reasonpipe.jobs import pipeline

    ran = []
    monkeypatch.setattr(pipeline, "main", lambda config: ran.append(config) or 0)
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE.replace("name: t", f"name: t\nruns_dir: {tmp_path / 'runs'}"))
    r = cli("pipeline", "--config", path)
    assert r.code == 2 and r.err.count("\n") == 1, r.err
    assert f"{path}:10: field 'models.0.settings.max_stepz': unknown key (known: tokenizer, format, layout, system, lora, trl, report_to, task, model," in r.err
    assert ran == [] and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("text,line,field,message", [
    (PIPELINE.replace("max_stepz: 3", "seed: x"), 9, "models.0.settings.seed", "expected int, got str 'x'"),
    (PIPELINE.replace("max_stepz: 3", "data: [a.jsonl]"), 9, "models.0.settings.data",
     "not a key of this block: the pipeline sets it from models.N.data"),
    (PIPELINE.replace("n: 5}", "n: 5, options: {numbrs: 3}}"), 3, "datasets.0.options.numbrs",
     "unknown option(s) numbrs for task countdown"),
    (PIPELINE.replace("n: 5}", "n: 5, searcher: beem}"), 3, "datasets.0.searcher", "unknown searcher 'beem'"),
    (PIPELINE.replace("      max_stepz: 3\n", "") + "evaluate:\n  - settings: {task_options: {numbers: many}}\n", 10,
     "evaluate.0.settings.task_options.numbers", "expected int, got str 'many'"),
])
def test_nested_blocks_are_typed_and_checked_at_load(tmp_path, text, line, field, message):
    from reasonpipe.jobs.pipeline import PipelineConfig

    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_config(PipelineConfig, str(path))
    assert (err.value.path, err.value.line, err.value.field) == (str(path), line, field)
    assert message in err.value.message


def test_ksweep_blocks_are_typed_and_refuse_the_fields_the_sweep_fills(tmp_path):
    from reasonpipe.jobs.ksweep import KSweepConfig

    cfg = load_config(KSweepConfig, None, ["--sft.max_steps", "2", "--rl.lr", "0.5"])
    assert cfg.sft.max_steps == 2 and cfg.rl.lr == 0.5
    path = tmp_path / "k.yaml"
    path.write_text("ks: [0]\nrl:\n  seed: 3\n")
    with pytest.raises(InputError) as err:
        load_config(KSweepConfig, str(path))
    assert (err.value.line, err.value.field) == (3, "rl.seed") and "the sweep's seed" in err.value.message
    path.write_text("task: sudoku\ntask_options: {numbers: 3}\n")
    with pytest.raises(InputError, match=r"k.yaml:2: field 'task_options.numbers': unknown option"):
        load_config(KSweepConfig, str(path))


def test_a_block_resolves_to_its_stage_config_inheriting_what_it_leaves_unset():
    from reasonpipe.jobs.pipeline import PipelineConfig, eval_config, sft_config

    cfg = load_config(PipelineConfig, None, ["--seed", "7", "--quiet", "true", "--datasets",
                                             "[{name: a, task: countdown}]", "--models",
                                             "[{name: x, data: [a]}, {name: y, data: [a], settings: {seed: 2}}]",
                                             "--evaluate", "[{direct: y}]"])
    x, y = (sft_config(cfg, m, "r", {"a": "r/a.jsonl"}) for m in cfg.models)
    assert (x.seed, x.quiet, x.data, x.out) == (7, True, ["r/a.jsonl"], os.path.join("r", "models", "x"))
    assert (y.seed, y.max_steps) == (2, 1000)  # its own seed, the SFTConfig default elsewhere
    ev = eval_config(cfg, cfg.evaluate[0], "r")
    assert (ev.seed, ev.backtrack_model, ev.direct_model, ev.task_options, ev.out) == (
        7, "", os.path.join("r", "models", "y", "final"), {"split": "test_target"}, os.path.join("r", "eval", "countdown"))


# -- help from field metadata, for every stage ----------------------------------------------------------------

def test_help_lists_nested_fields_dotted_with_their_help(cli):
    r = cli("pipeline", "--help")
    assert r.code == 0
    lines = r.out.splitlines()
    lr = next(i for i, x in enumerate(lines) if x.strip().startswith("--models.N.settings.lr float"))
    assert "peak learning rate" in lines[lr]
    seed = next(x for x in lines if x.strip().startswith("--evaluate.N.settings.seed int | None"))
    assert "seed of the sampling (unset: the pipeline's seed)" in seed
    assert "--models.N.settings.data" not in r.out and "--evaluate.N.settings.out " not in r.out  # the job fills them
    r = cli("ksweep", "--help")
    assert "--rl.num_generations int" in r.out and "completions per prompt" in r.out


@pytest.mark.parametrize("stage", ["tracegen", "verify", "sft", "rl", "eval", "latent", "ksweep", "pipeline"])
def test_every_field_of_every_stage_has_help_text(stage):
    from reasonpipe.jobs import field_rows

    rows = field_rows(stage_config_class(stage))
    assert len(rows) > 5
    assert [name for name, _, _, text in rows if not text] == []


# -- flags generated from the dataclasses -------------------------------------------------------------------

def test_the_parser_has_a_typed_flag_per_field_and_rejects_bad_values():
    from reasonpipe.jobs import config_parser, parse_job_args
    from reasonpipe.jobs.pipeline import PipelineConfig

    parser = config_parser("reasonpipe pipeline", PipelineConfig)
    flags = {s for a in parser._actions for s in a.option_strings}
    assert {"--seed", "--runs-dir", "--model-workers"} <= flags
    assert not any(".N." in f or f.startswith("--datasets.") for f in flags)  # list entries: dotted overrides
    path, given = parse_job_args(parser, PipelineConfig, ["--config", "c.yaml", "--seed", "3", "--runs-dir=x",
                                                          "--name", "2024", "--datasets.0.n", "9",
                                                          "--datasets.0.options.numbers", "3"])
    assert path == "c.yaml" and given == {"seed": 3, "runs_dir": "x", "name": "2024", "datasets.0.n": 9,
                                          "datasets.0.options.numbers": 3}  # a str field takes the text as it is
    for argv, message in ((["--seed", "many"], "--seed: expected int, got str 'many'"),
                          (["--evaluate.0.settings.lengths", "[1, x]"], "--evaluate.0.settings.lengths: expected int"),
                          (["--datasets.0.n", "x"], "--datasets.0.n: expected int"),
                          (["--seed"], "--seed: expected one argument"),
                          (["--sede", "1"], "--sede: no such field (did you mean --seed?)")):
        with pytest.raises(InputError) as err:
            parse_job_args(parser, PipelineConfig, argv)
        assert str(err.value).startswith(message), str(err.value)


def test_a_bad_flag_value_exits_2_with_one_line_before_the_config_is_read(cli, tmp_path):
    r = cli("sft", "--config", tmp_path / "missing.yaml", "--lr", "fast")
    assert r.code == 2 and r.err == "reasonpipe sft: error: --lr: expected float, got str 'fast'\n"
    r = cli("sft", "--config", tmp_path / "missing.yaml", "--lr", "3e-3")
    assert r.code == 2 and "cannot read config" in r.err  # the value was fine: now the file is read


# -- shared blocks: !include ---------------------------------------------------------------------------------

def test_include_is_relative_to_the_including_file_and_merges(tmp_path):
    from reasonpipe.jobs.ksweep import KSweepConfig

    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "cd.yaml").write_text("# shared\n{numbers: 3, max_number: 9}\n")
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "k.yaml"
    path.write_text("task_options: !include ../tasks/cd.yaml\n"
                    "eval_task_options: {<<: !include ../tasks/cd.yaml, split: test_target, numbers: 4}\n")
    cfg = load_config(KSweepConfig, str(path))
    assert cfg.task_options == {"numbers": 3, "max_number": 9}
    assert cfg.eval_task_options == {"numbers": 4, "max_number": 9, "split": "test_target"}


@pytest.mark.parametrize("shared,including,where,message", [
    ("{numbers: 3,\n max_numbr: 9}\n", "task_options: !include cd.yaml\n", "cd.yaml:2", "unknown option(s) max_numbr"),
    ("{numbers: 3,\n max_number: nine}\n", "task_options: !include cd.yaml\n", "cd.yaml:2",
     "field 'task_options.max_number': expected int"),
    ("{numbers: [3\n", "task_options: !include cd.yaml\n", "cd.yaml:2", "invalid YAML"),
    ("", "ks: [0]\ntask_options: !include cd.yaml\n", "k.yaml:2", "!include cd.yaml: an empty file"),
    ("{}", "ks: [0]\ntask_options: !include nope.yaml\n", "k.yaml:2", "cannot include"),
    ("a: !include k.yaml\n", "task_options: !include cd.yaml\n", "cd.yaml:1", "!include k.yaml: includes itself"),
])
def test_include_errors_name_the_included_file_and_line(tmp_path, shared, including, where, message):
    from reasonpipe.jobs.ksweep import KSweepConfig

    (tmp_path / "cd.yaml").write_text(shared)
    path = tmp_path / "k.yaml"
    path.write_text(including)
    with pytest.raises(InputError) as err:
        load_config(KSweepConfig, str(path))
    assert str(err.value).startswith(str(tmp_path / where)) and message in str(err.value), str(err.value)


# -- every file of configs/ resolves as it did before the typed blocks ------------------------------------------

def resolved(stage: str, path: str) -> dict:
    """The config a stage runs with, as plain data: for the pipeline and the sweep, the SFT, GRPO and evaluation
    configs their stages are given (what the stage hashes are made of)."""
    cfg = load_config(stage_config_class(stage), path)
    if stage == "pipeline":
        from reasonpipe.jobs.pipeline import eval_config, sft_config

        run_dir = os.path.join(cfg.runs_dir, cfg.name)
        files = {d.name: os.path.join(run_dir, "data", f"{d.name}.jsonl") for d in cfg.datasets}
        out = {k: v for k, v in to_dict(cfg).items() if k not in ("datasets", "models", "evaluate")}
        out["datasets"] = [dataclasses.asdict(d) for d in cfg.datasets]
        out["models"] = [{"name": m.name, "data": m.data, "sft": dataclasses.asdict(sft_config(cfg, m, run_dir, files))}
                         for m in cfg.models]
        out["evaluate"] = [{"name": e.name, "backtrack": e.backtrack, "direct": e.direct,
                            "eval": dataclasses.asdict(eval_config(cfg, e, run_dir))} for e in cfg.evaluate]
        return out
    if stage == "ksweep":
        from reasonpipe.jobs.ksweep import rl_config, sft_config

        folder = os.path.join(cfg.runs_dir, cfg.name, "k0")
        out = {k: v for k, v in to_dict(cfg).items() if k not in ("sft", "rl")}
        return {**out, "sft": dataclasses.asdict(sft_config(cfg, folder)),
                "rl": dataclasses.asdict(rl_config(cfg, folder))}
    return to_dict(cfg)


def test_every_config_resolves_as_before():
    expected = json.loads((DATA / "configs_resolved.json").read_text())
    files = sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))
    assert files == sorted(expected)  # a new config: add it to tests/data/configs_resolved.json
    for name, record in expected.items():
        got = json.loads(json.dumps(resolved(record["stage"], str(REPO / "configs" / f"{name}.yaml"))))
        assert got == record["resolved"], name
    shared = (REPO / "configs" / "demo-cpu.yaml").read_text()
    assert "!include tasks/countdown-3.yaml" in shared and "max_number: 9" not in shared


def test_a_model_trains_on_its_datasets_task_and_one_task_only():
    from reasonpipe.jobs.pipeline import PipelineConfig, check, sft_config

    datasets = "[{name: a, task: countdown}, {name: s, task: sudoku, options: {size: 6}}]"
    cfg = load_config(PipelineConfig, None, ["--datasets", datasets, "--models",
                                             "[{name: x, data: [s]}, {name: y, data: [a]}]"])
    check(cfg)
    assert [sft_config(cfg, m, "r", {"a": "a", "s": "s"}).task for m in cfg.models] == ["sudoku", "countdown"]
    cfg = load_config(PipelineConfig, None, ["--datasets", datasets, "--models", "[{name: x, data: [a, s]}]"])
    with pytest.raises(InputError, match="different tasks") as err:
        check(cfg)
    assert err.value.field == "models.0.data"
    cfg = load_config(PipelineConfig, None, ["--datasets", datasets, "--models", "[{name: x, data: [a]}]",
                                             "--evaluate", "[{direct: x}, {direct: x}]"])
    with pytest.raises(InputError, match="two grids named 'countdown'") as err:
        check(cfg)
    assert err.value.field == "evaluate.1.name"
