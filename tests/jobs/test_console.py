"""Progress where no terminal is (a log file, a Ray job's logs): plain lines, throttled (reasonpipe.console)."""

from __future__ import annotations

import io
import os
import re

from reasonpipe.console import LineProgress, progress


def test_line_progress_prints_counts_rate_eta_and_a_final_line(monkeypatch):
    now = [0.0]
    monkeypatch.setattr("reasonpipe.console.time.monotonic", lambda: now[0])
    out = io.StringIO()
    lines = LineProgress("gen cd", 100, every_s=15.0, done=10, out=out)  # 10 done before (resumed)
    now[0] = 5.0
    lines.advance(10)          # too soon
    now[0] = 20.0
    lines.advance(20)          # a line
    lines.detail = "loss 0.5000"
    now[0] = 21.0
    lines.advance(10)          # too soon
    now[0] = 40.0
    lines.report(final=True)
    got = out.getvalue().splitlines()
    assert got == ["gen cd: 40/100 (40%) in 20 s, 1.5/s, ETA 40 s",
                   "gen cd: 50/100 (50%) in 40 s, 1.0/s, loss 0.5000 (done)"]


def test_progress_without_a_terminal_writes_lines_not_a_bar(capsys):
    with progress("verify x", None, quiet=False, every_s=0.0) as advance:
        advance(3)
        advance(4)
    err = capsys.readouterr().err
    assert re.findall(r"verify x: ([\d,]+) in", err) == ["3", "7", "7"]
    assert err.rstrip().endswith("(done)") and "\r" not in err
    with progress("quiet", 5, quiet=True) as advance:
        advance(5)
    assert capsys.readouterr().err == ""


def test_commands_without_a_terminal_turn_library_progress_bars_off():
    import subprocess
    import sys

    code = ("import sys\nfrom reasonpipe.console import run_command\n"
            "def body():\n    from transformers.utils import logging\n"
            "    for _ in logging.tqdm(range(3), desc='a library bar'):\n        pass\n    return 0\n"
            "sys.exit(run_command('x', body))\n")
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "a library bar" not in done.stderr  # stderr is a pipe here, as in a log or a Ray job
