"""The tracegen and verify job entry points (``python -m jobs.<name> --config F``), without Ray."""

from __future__ import annotations

from jobs import tracegen, verify


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
