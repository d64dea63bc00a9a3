"""Which training checkpoint a run resumes from: the newest *complete* ``checkpoint-<step>`` folder.

The HF Trainer writes a checkpoint in place (weights, then optimizer and scheduler, then RNG states, then
``trainer_state.json``), not into a temporary folder that is renamed, so a process killed while saving leaves a
``checkpoint-<step>`` without its later files, and resuming from it fails. ``trainer_state.json`` is written
last: a folder without it is incomplete and skipped (and named on stderr), and the run resumes from the one
before, as if the kill had come a little earlier.

Example::

    python -c "from reasonpipe.checkpoints import last_complete_checkpoint; print(last_complete_checkpoint('runs/sft-demo/checkpoints'))"
"""

from __future__ import annotations

import json
import os
import re
import sys

STATE_FILE = "trainer_state.json"  # the HF Trainer's last write into a checkpoint
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_step(path: str) -> int:
    """The global step of a checkpoint folder: from its ``trainer_state.json``, else its ``checkpoint-<step>``
    name."""
    state = os.path.join(path, STATE_FILE)
    if os.path.isfile(state):
        with open(state, encoding="utf-8") as f:
            return int(json.load(f)["global_step"])
    match = _CHECKPOINT.match(os.path.basename(os.path.normpath(path)))
    if not match:
        raise ValueError(f"{path}: neither a {STATE_FILE} nor a checkpoint-<step> name")
    return int(match.group(1))


def last_complete_checkpoint(folder: str) -> str | None:
    """The complete ``checkpoint-<step>`` under ``folder`` with the highest step, or None (no folder, none
    complete). Incomplete ones newer than it are reported on stderr and left in place (the next save of that
    step overwrites them)."""
    if not os.path.isdir(folder):
        return None
    found = sorted(((int(m.group(1)), name) for name in os.listdir(folder)
                    if (m := _CHECKPOINT.match(name)) and os.path.isdir(os.path.join(folder, name))), reverse=True)
    for _, name in found:
        path = os.path.join(folder, name)
        if os.path.isfile(os.path.join(path, STATE_FILE)):
            return path
        print(f"resume: skipping {path}: incomplete (no {STATE_FILE}; the run was killed while saving it)",
              file=sys.stderr)
    return None
