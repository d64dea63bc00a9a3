"""Resuming picks the newest complete checkpoint (reasonpipe.checkpoints)."""

from __future__ import annotations

import json

import pytest

from reasonpipe.checkpoints import checkpoint_step, last_complete_checkpoint


def make(folder, step: int, complete: bool = True) -> None:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"x")
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))


def test_the_newest_complete_checkpoint_wins_and_a_half_written_one_is_skipped(tmp_path, capsys):
    assert last_complete_checkpoint(str(tmp_path / "none")) is None
    make(tmp_path, 4)
    make(tmp_path, 12)
    make(tmp_path, 8)
    (tmp_path / "checkpoint-99.txt").write_text("not a folder")
    assert last_complete_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-12")  # by step, not by name
    make(tmp_path, 16, complete=False)  # killed while saving
    assert last_complete_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-12")
    assert "checkpoint-16: incomplete" in capsys.readouterr().err


def test_only_incomplete_checkpoints_mean_a_fresh_start(tmp_path):
    make(tmp_path, 4, complete=False)
    assert last_complete_checkpoint(str(tmp_path)) is None


def test_the_step_comes_from_the_trainer_state_else_the_name(tmp_path):
    make(tmp_path, 8)
    (tmp_path / "checkpoint-8" / "trainer_state.json").write_text(json.dumps({"global_step": 7}))
    assert checkpoint_step(str(tmp_path / "checkpoint-8")) == 7
    make(tmp_path, 5, complete=False)
    assert checkpoint_step(str(tmp_path / "checkpoint-5") + "/") == 5
    (tmp_path / "mine").mkdir()
    with pytest.raises(ValueError, match="checkpoint-<step>"):
        checkpoint_step(str(tmp_path / "mine"))
