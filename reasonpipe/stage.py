"""Stages: run a piece of a job, or reuse it when it already finished with the same resolved config.

Every job runs its work through :class:`Stage`, so all of them reuse and resume the same way: the multi-stage
ones (``reasonpipe.jobs.pipeline``, ``ksweep``, ``latent``) cut it into several stages, the single-stage ones
(``sft``, ``rl``, ``evaluation``, ``tracegen``, ``verify``) are one stage each. A stage is a name, a folder and
the resolved config that decides its outputs (a JSON-able dict; leave out what does not change them, e.g.
``quiet``).
Next to its outputs it keeps a record, ``<folder>/<name>.stage.json``: the config, its SHA-256 ``hash``, the
status (``running`` or ``done``), the SHA-256 of every output file and, once done, the stage's summary. The
record is written atomically (temporary file, fsync, rename): a crash leaves the previous record or the new
one, never half of one. ``stage.run(fn)`` then does one of four things:

- **reuse**: the record says ``done`` with the same hash and every declared output is still there (files with
  the recorded bytes): ``fn`` is not called and the recorded summary is returned.
- **resume**: the record has the same hash but says ``running`` (the process was killed, interrupted, or ``fn``
  raised), or a finished stage's output is gone or was changed: ``fn`` is called with the stage's files in
  place and decides how to resume (SFT and GRPO from their last complete checkpoint, trace generation from
  its ``.partial`` file, latent training after its last finished curriculum stage).
- **re-run**: the record holds another config (or other ``inputs`` bytes): the declared ``outputs`` and
  ``scratch`` paths are removed, so nothing made under the old config is resumed from or reused, and ``fn``
  runs from scratch.
- **run**: no record and none of the declared paths there: ``fn`` runs.

``stage.run(fn, fresh=True)`` (a job's ``resume: never``, ``force: true``) skips the choice: the declared paths
are removed and ``fn`` runs from scratch even when the stage finished with the same config.

Files there but no record (a run folder made before stages were recorded, by the old ``done.json`` code) count
as made under an unknown config: they are removed and the stage runs once more from scratch. Reuse, resume and
re-run each print one line (``log``, default stderr) that says why; a re-run names the changed fields with their
old and new values. A first run prints nothing.

Chain stages by putting the upstream stage's :attr:`Stage.hash` into the downstream config (a changed SFT
config then re-runs the evaluation that read its model), or name input files or folders in ``inputs`` (a
file's SHA-256, a folder's :func:`folder_sha256`, is part of the config). An input inside the stage's own
declared paths is refused (a re-run would remove it before ``fn`` reads it).

Example (runs as is: the second ``run`` is reused, the third re-runs because ``n`` changed; stderr says so)::

    python -c "import tempfile; from reasonpipe.stage import Stage; d = tempfile.mkdtemp(); [print(Stage('sq', d, {'n': n}).run(lambda: {'sq': n * n})) for n in (3, 3, 4)]"

In a job (``jobs/pipeline.py``), a stage that owns its folder and reads a dataset::

    stage = Stage("sft", out, resolved, inputs={"traces": data}, outputs=["final", "summary.json"], scratch=["*"])
    summary = stage.run(lambda: train(cfg))   # the recorded summary when reused
    if stage.reused: ...

What it does not do: no locking (two processes running the same stage at once are not detected); it does not
look inside ``fn`` (a stage reads only what its config and ``inputs`` say; anything else it reads is not
tracked); it does not checkpoint inside ``fn`` or make ``fn``'s own files atomic (``fn`` writes them to
temporary names itself, as every writer in reasonpipe does); it removes only the declared ``outputs`` and
``scratch`` paths on a re-run, never the other files of the folder, and never a ``*.stage.json`` record; and
it does not decide which config fields matter: the caller's dict is the config.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from reasonpipe.errors import InputError
from reasonpipe.jsonl import atomic_write
from reasonpipe.manifest import file_sha256

RECORD_SUFFIX = ".stage.json"

Status = Literal["new", "done", "interrupted", "stale", "changed", "unrecorded"]
Outcome = Literal["reused", "ran", "resumed", "rerun"]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def folder_sha256(path: str) -> str:
    """SHA-256 (hex) of a folder's files: every file's path relative to ``path`` and its SHA-256, in sorted order
    (symbolic links followed; an empty folder has a hash too)."""
    files = []
    for root, dirs, names in os.walk(path, followlinks=True):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(root, name)
            files.append((os.path.relpath(full, path).replace(os.sep, "/"), file_sha256(full)))
    blob = json.dumps(sorted(files), separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def canonical(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as JSON gives it back (tuples as lists, keys as strings); a TypeError for what JSON cannot hold."""
    try:
        return json.loads(json.dumps(config, sort_keys=True))
    except TypeError as e:
        raise TypeError(f"a stage's config must be JSON data: {e}") from None


def config_hash(config: Mapping[str, Any], inputs: Mapping[str, str] | None = None) -> str:
    """SHA-256 (hex) of the canonical JSON of the config and the inputs' SHA-256s."""
    blob = json.dumps({"config": canonical(config), "inputs": dict(inputs or {})}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


_MISSING = object()


def changed_fields(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the fields that differ between two configs (nested dicts are followed, lists compared
    whole); a field present in only one of them counts."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            out += changed_fields(old.get(key, _MISSING), new.get(key, _MISSING), name)
        return out
    return [] if old == new else [prefix or "(config)"]


def _lookup(config: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(config, dict) or key not in config:
            return _MISSING
        config = config[key]
    return config


def _short(value: Any, width: int = 40) -> str:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]  # a hash (another stage's, a file's)
    text = "(none)" if value is _MISSING else json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass(frozen=True)
class StageState:
    """Where a stage stands before it runs: ``status`` and a sentence saying why (``changed``: the fields)."""

    status: Status
    reason: str
    changed: tuple[str, ...] = ()


class Stage:
    """One stage of a job: run it, or reuse it when it finished with the same config (see the module docstring).

    ``name``: the record is ``<folder>/<name>.stage.json``. ``config``: JSON data that decides the outputs.
    ``outputs``: paths under ``folder`` that a finished stage has (files or folders); reuse needs every one, and
    a re-run removes them. ``scratch``: what an unfinished run leaves to resume from (checkpoints, ``.partial``
    files, logs), removed on a re-run, not needed for reuse; glob patterns (``"*"``: the whole folder belongs to
    the stage; records are never removed). ``inputs``: name -> file or folder whose bytes are part of the
    config (none of them inside ``outputs`` or ``scratch``). ``log``: where the one-line notices go (None:
    nowhere).
    """

    def __init__(self, name: str, folder: str, config: Mapping[str, Any], *, outputs: Sequence[str] = (),
                 scratch: Sequence[str] = (), inputs: Mapping[str, str] | None = None,
                 log: Callable[[str], None] | None = _stderr) -> None:
        if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
            raise InputError(f"not a usable stage name: {name!r}", field="name")
        for path in (*outputs, *scratch):
            parts = path.replace("\\", "/").split("/")
            if not path or os.path.isabs(path) or ".." in parts:
                raise InputError(f"stage {name}: {path!r} is not a path inside its folder", field="outputs")
        self.name = name
        self.folder = folder
        self.config = canonical(config)
        self.outputs = tuple(outputs)
        self.scratch = tuple(scratch)
        self.log = log
        self.inputs: dict[str, str] = {}
        for key, path in (inputs or {}).items():
            if os.path.isdir(path):
                self.inputs[key] = folder_sha256(path)
            elif os.path.isfile(path):
                self.inputs[key] = file_sha256(path)
            else:
                raise InputError("input file missing", path=path, field=f"inputs.{key}")
            owner = next((p for p in self._paths(self.outputs + self.scratch) if _inside(path, p)), None)
            if owner is not None:
                raise InputError(f"stage {name}: an input inside the stage's own {os.path.relpath(owner, folder)} "
                                 f"(a re-run would remove it); copy it elsewhere first", path=path,
                                 field=f"inputs.{key}")
        self.hash = config_hash(self.config, self.inputs)
        self.record_path = os.path.join(folder, name + RECORD_SUFFIX)
        self.outcome: Outcome | None = None   # set by run()
        self.summary: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"stage {self.name} ({self.folder})"

    @property
    def reused(self) -> bool:
        return self.outcome == "reused"

    # -- the record ----------------------------------------------------------------------------------------
    def record(self) -> dict[str, Any] | None:
        """The stage's record, or None (none, or unreadable: treated as no record)."""
        try:
            with open(self.record_path, encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def _write_record(self, **fields: Any) -> None:
        record = {"stage": self.name, "hash": self.hash, "config": self.config, "inputs": self.inputs, **fields}
        text = json.dumps(record, indent=2, sort_keys=False) + "\n"  # fails here, before the file is touched
        with atomic_write(self.record_path) as f:
            f.write(text)

    def _paths(self, patterns: Sequence[str]) -> list[str]:
        found: list[str] = []
        for pattern in patterns:
            exact = os.path.join(self.folder, pattern)  # a plain name first: "[a].jsonl" is a name, not a pattern
            matches = [exact] if os.path.lexists(exact) else sorted(glob.glob(os.path.join(glob.escape(self.folder),
                                                                                            pattern)))
            for path in matches:
                if not path.endswith(RECORD_SUFFIX) and path not in found:
                    found.append(path)
        return found

    def _fingerprints(self) -> dict[str, str]:
        """Each declared output: the SHA-256 of a file, ``"folder"`` for a folder; a missing one raises."""
        out = {}
        for rel in self.outputs:
            path = os.path.join(self.folder, rel)
            if os.path.isdir(path):
                out[rel] = "folder"
            elif os.path.isfile(path):
                out[rel] = file_sha256(path)
            else:
                raise RuntimeError(f"{self.label}: finished without writing its declared output {rel}")
        return out

    def _outputs_problem(self, recorded: Mapping[str, str]) -> str | None:
        for rel in self.outputs:
            path = os.path.join(self.folder, rel)
            if not os.path.exists(path):
                return f"its output {rel} is missing"
            want = recorded.get(rel)
            if want not in (None, "folder") and (not os.path.isfile(path) or file_sha256(path) != want):
                return f"its output {rel} was changed after the stage finished"
        return None

    # -- deciding and running ------------------------------------------------------------------------------
    def state(self) -> StageState:
        """What :meth:`run` would do, and why."""
        record = self.record()
        if record is None:
            present = self._paths(self.outputs + self.scratch)
            if present:
                names = ", ".join(os.path.relpath(p, self.folder) for p in present[:3])
                return StageState("unrecorded", f"{names}{' ...' if len(present) > 3 else ''} there but no record "
                                                f"of the config that made them (an older run folder?)")
            return StageState("new", "not run before")
        if record.get("hash") != self.hash:
            old = {"config": record.get("config"), "inputs": record.get("inputs") or {}}
            new = {"config": self.config, "inputs": self.inputs}
            fields = changed_fields(old, new)
            shown = [f.removeprefix("config.") for f in fields] or ["(the hash only)"]
            details = ", ".join(f"{s}: {_short(_lookup(old, f))} -> {_short(_lookup(new, f))}"
                                for s, f in zip(shown, fields)) or shown[0]
            return StageState("changed", f"config changed ({details})", tuple(shown))
        if record.get("status") != "done":
            return StageState("interrupted", "an earlier run of the same config did not finish")
        problem = self._outputs_problem(record.get("outputs") or {})
        if problem:
            return StageState("stale", problem)
        return StageState("done", f"finished {record.get('finished', '?')} with the same config "
                                  f"(hash {self.hash[:12]})")

    def done(self) -> bool:
        """Whether :meth:`run` would reuse the stage."""
        return self.state().status == "done"

    def clear(self) -> list[str]:
        """Remove the declared outputs and scratch paths (never a record); the paths removed."""
        removed = self._paths(self.outputs + self.scratch)
        for path in removed:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        return removed

    def run(self, fn: Callable[[], Mapping[str, Any]], *, fresh: bool = False) -> dict[str, Any]:
        """Reuse the stage or call ``fn() -> summary`` (a JSON-able mapping); the summary either way.

        After it, :attr:`outcome` says which (``reused``, ``ran``, ``resumed``, ``rerun``). If ``fn`` raises,
        the record stays ``running`` and the next run resumes. ``fresh``: never reuse or resume; the declared
        paths are removed first (when anything of the stage is there: ``rerun``).
        """
        state = self.state()
        if fresh and state.status != "new":
            state = StageState("changed", "a fresh start was asked for")
        if state.status == "done":
            record = self.record() or {}
            self._say(f"reused: {state.reason}")
            self.outcome, self.summary = "reused", dict(record.get("summary") or {})
            return dict(self.summary)
        if state.status in ("changed", "unrecorded"):
            self._say(f"re-run from scratch: {state.reason}")
            self.clear()
        elif state.status in ("interrupted", "stale"):
            self._say(f"resuming: {state.reason}")
        os.makedirs(self.folder, exist_ok=True)
        started = time.time()
        self._write_record(status="running", started=_now())
        summary = fn()
        if not isinstance(summary, Mapping):
            raise TypeError(f"{self.label}: its function returned {type(summary).__name__}, not a summary dict")
        summary = canonical(summary)
        self._write_record(status="done", started=_now(started), finished=_now(),
                           seconds=round(time.time() - started, 3), outputs=self._fingerprints(), summary=summary)
        self.outcome = {"new": "ran", "changed": "rerun", "unrecorded": "rerun"}.get(state.status, "resumed")
        self.summary = summary
        return dict(summary)

    def _say(self, message: str) -> None:
        if self.log is not None:
            self.log(f"{self.label}: {message}")


def _now(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
