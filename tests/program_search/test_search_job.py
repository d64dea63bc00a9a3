"""The search stage (``reasonpipe search --config F``): the same search as ``reasonpipe search evolve``, reused when
nothing changed, run again on a changed config, and always run again with a cache file (its contents are state)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonpipe.cli import main

SMALL = ["--task", "list_functions", "--budget", "120", "--population", "20", "--sample", "4", "--quiet", "true"]


def _config(tmp_path: Path, **extra: object) -> str:
    path = tmp_path / "search.yaml"
    path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in {"out": str(tmp_path / "run"), **extra}.items()))
    return str(path)


def test_search_stage_matches_the_tool_and_is_reused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, cache="memory", compare=True)
    assert main(["search", "--config", config, *SMALL]) == 0
    first = capsys.readouterr()
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [r["cache"] for r in results["runs"]] == ["none", "memory"]
    assert "same best program with and without the cache: yes" in first.out
    for name in ("report.md", "results.json", "history.png", "search.stage.json"):
        assert (tmp_path / "run" / name).exists(), name

    tool = tmp_path / "tool"
    assert main(["search", "evolve", *SMALL[:-2], "--quiet", "--cache", "memory", "--compare", "--report", str(tool)]) == 0
    capsys.readouterr()
    assert json.loads((tool / "results.json").read_text())["runs"][1]["best"] == results["runs"][1]["best"]

    mtime = (tmp_path / "run" / "results.json").stat().st_mtime_ns
    assert main(["search", "--config", config, *SMALL]) == 0
    second = capsys.readouterr()
    assert "reused" in second.err and (tmp_path / "run" / "results.json").stat().st_mtime_ns == mtime
    assert first.out.splitlines()[0] == second.out.splitlines()[0]  # the problem line, from the record

    assert main(["search", "--config", config, *SMALL, "--seed", "1"]) == 0
    assert "rerun" in capsys.readouterr().err.replace("re-run", "rerun")
    assert json.loads((tmp_path / "run" / "results.json").read_text())["request"]["seed"] == 1


def test_search_stage_with_a_cache_file_always_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, cache=str(tmp_path / "fh.db"))
    assert main(["search", "--config", config, *SMALL]) == 0
    evals = json.loads((tmp_path / "run" / "results.json").read_text())["runs"][0]["evaluations"]
    capsys.readouterr()
    assert main(["search", "--config", config, *SMALL]) == 0
    assert "reused" not in capsys.readouterr().err
    again = json.loads((tmp_path / "run" / "results.json").read_text())["runs"][0]["evaluations"]
    assert again < evals  # the warm cache saved evaluations: a reused record would have hidden this
