"""Terminal output: a progress bar on stderr for long work, and tables on stdout (rich).

Example::

    python -c "from reasonpipe.console import print_table; print_table('t', [('a', '1')], ('k', 'v'))"
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager


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


