#!/usr/bin/env python3
"""A stand-in for the ``lean`` executable in tests (it is NOT Lean): the judge lives in fakelean_core.py.

    fake_lean.py [--fake-style=early|current|infopos] [-o OUT.olean] [--json] FILE
    fake_lean.py --version | --help | --print-prefix | --print-libdir

The style comes from ``--fake-style=``, else $FAKE_LEAN_STYLE, else the executable's name (a name containing
``early``, e.g. a symlink ``lean-early``, prints as the 2021 Lean 4: information messages bare, no ``--json``;
``infopos``: information messages as ``FILE:L:C: info: text``), else ``current``. Exit 1 when an error was
printed. ``-o`` writes the module (a JSON "fake olean" that this stand-in, fake_repl.py and
fake_lean4checker.py read) only when no error was printed. Imports are found on LEAN_PATH. See
fakelean_core.py for what it judges, the tactics, the message layouts and the magic numbers (7777777 hangs,
6666666 SIGSEGV, 5555555 out of memory, 4444444 written with ``kernel_ok: false``).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from fakelean_core import cli_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli_main(sys.argv[0], sys.argv[1:]))
