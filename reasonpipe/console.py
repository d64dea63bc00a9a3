"""Terminal output: a progress bar on stderr for long work, and tables on stdout (rich).

Example::

    python -c "from reasonpipe.console import print_table; print_table('t', [('a', '1')], ('k', 'v'))"
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from reasonpipe.errors import InputError


def run_command(label: str, fn: Callable[[], int], interrupted: str = "interrupted") -> int:
    """Run a command's body: bad input or an OS error prints one line and gives 2, Ctrl-C gives 130."""
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
def progress(label: str, total: int | None, quiet: bool) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(k)``; shows a bar with rate and ETA unless ``quiet`` (transient when not a terminal)."""
    if quiet:
        yield lambda k: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = Console(stderr=True)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if total:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=console, transient=not console.is_terminal) as bar:
        task = bar.add_task(label, total=total)
        yield lambda k: bar.advance(task, k)


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


