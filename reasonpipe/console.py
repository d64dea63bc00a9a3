"""Terminal output: a progress bar on stderr for long work (progress lines in a log), and tables on stdout (rich).

Example::

    python -c "from reasonpipe.console import print_table; print_table('t', [('a', '1')], ('k', 'v'))"
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from reasonpipe.errors import InputError


def run_command(label: str, fn: Callable[[], int], interrupted: str = "interrupted") -> int:
    """Run a command's body: bad input or an OS error prints one line and gives 2, Ctrl-C gives 130.
    Without a terminal (a log, a Ray job) the libraries' tqdm bars are off: ours print lines instead."""
    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_DISABLE", "1")  # tqdm reads its TQDM_<param> overrides when imported
        if "transformers" in sys.modules:  # imported already: its own switch
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
    try:
        return fn()
    except InputError as e:
        print(f"{label}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # unreadable input, unwritable output, full disk
        where = f" {e.filename}" if e.filename else ""
        print(f"{label}: error:{where}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130


@contextmanager
def progress(label: str, total: int | None, quiet: bool, every_s: float = 15.0) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(k)``; shows a bar with rate and ETA on a terminal unless ``quiet``. Elsewhere (a log
    file, a Ray job's logs) it prints a line at most every ``every_s`` seconds and one at the end."""
    if quiet:
        yield lambda k: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        lines = LineProgress(label, total, every_s)
        yield lines.advance
        lines.report(final=True)
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if total:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(label, total=total)
        yield lambda k: bar.advance(task, k)


class LineProgress:
    """Progress as plain lines on stderr, ``label: done/total (pct) in s, rate/s, ETA s[, detail]``, at most one
    every ``every_s`` seconds (the first after ``every_s``): what a log file or a Ray job's logs can show.
    ``done`` counts work finished before (a resumed run): shown, but not in the rate."""

    def __init__(self, label: str, total: int | None, every_s: float = 15.0, done: int = 0, out: Any = None) -> None:
        self.label, self.total, self.every_s, self.out = label, total, every_s, out
        self.done = self.initial = done
        self.detail = ""  # appended to each line (e.g. the last loss)
        self.started = self.last = time.monotonic()

    def advance(self, k: int) -> None:
        self.done += k
        if time.monotonic() - self.last >= self.every_s:
            self.report()

    def report(self, final: bool = False) -> None:
        now = time.monotonic()
        self.last = now
        seconds = now - self.started
        rate = (self.done - self.initial) / seconds if seconds > 0 else 0.0
        count = f"{self.done:,}" + (f"/{self.total:,} ({self.done / self.total:.0%})" if self.total else "")
        line = f"{self.label}: {count} in {seconds:.0f} s, {rate:,.1f}/s"
        if self.total and not final and rate > 0:
            line += f", ETA {(self.total - self.done) / rate:.0f} s"
        line += (f", {self.detail}" if self.detail else "") + (" (done)" if final else "")
        print(line, file=self.out or sys.stderr, flush=True)


def step_lines(label: str, every_s: float = 15.0):
    """A callback printing a progress line at most every ``every_s`` seconds (steps, rate, ETA, last loss):
    what a log file or a Ray job's logs show instead of a progress bar. Rank 0 only."""
    from transformers import TrainerCallback

    class StepLines(TrainerCallback):
        lines: LineProgress | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.lines = LineProgress(label, state.max_steps, every_s, done=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.lines is not None and logs and "loss" in logs:
                self.lines.detail = f"loss {float(logs['loss']):.4f}"

        def on_step_end(self, args, state, control, **kwargs):
            if self.lines is not None:
                self.lines.advance(state.global_step - self.lines.done)

        def on_train_end(self, args, state, control, **kwargs):
            if self.lines is not None:
                self.lines.report(final=True)

    return StepLines()


def print_table(title: str, rows: Sequence[tuple[str, ...]], headers: Sequence[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for i, h in enumerate(headers):
        table.add_column(h, overflow="fold", no_wrap=i == 0)
    for row in rows:
        table.add_row(*row)
    console = Console(width=max(100, os.get_terminal_size(1).columns if sys.stdout.isatty() else 120))
    console.print(title, style="bold", markup=False, highlight=False)
    console.print(table)


