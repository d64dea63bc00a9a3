#!/usr/bin/env python3
"""A stand-in for ``lean4checker`` in tests: ``fake_lean4checker.py [--fresh] MODULE...``.

Reads MODULE.olean (a fake olean written by fake_lean.py ``-o`` or fake_repl.py ``pickleTo``) from the LEAN_PATH
folders and replays it in the "kernel": exit 0 when every declaration has ``kernel_ok``; otherwise prints
``error: kernel rejected NAME: ...`` for each one that has not (fake_lean.py writes ``kernel_ok: false`` for a
theorem whose statement holds the magic number 4444444) and exits 1. A module that is not found or not a fake
olean is an ``error: ...`` line and exit 1. ``--fresh`` also replays the modules it imports.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from fakelean_core import checker_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(checker_main(sys.argv[1:]))
