"""A client for the leanprover-community/repl JSON protocol: one long-lived Lean process checks many snippets.

The protocol (REPL/Main.lean in leanprover-community/repl): the client writes one JSON object followed by a
blank line; the REPL answers with one JSON object (pretty-printed over several lines, never containing a
blank line, since JSON strings escape their newlines) followed by a blank line.

- ``{"cmd": "def f := 37"}`` elaborates in a fresh environment and answers ``{"env": 0, "messages": [...],
  "sorries": [...]}``; ``{"cmd": ..., "env": 0}`` extends environment 0 (each command adds one);
- ``{"tactic": "exact 42", "proofState": 1}`` runs a tactic on a ``sorry``'s proof state and answers
  ``{"proofState": 2, "proofStatus": "Completed", "goals": []}``;
- failures the REPL knows about come back as ``{"message": "Unknown environment."}`` (or ``"Lean error:..."``).

The REPL reads a request line by line and joins the lines without their newlines, and a blank line before
the request makes it fail to parse and exit; so a request must be one line ended by exactly one blank line,
which ``json.dumps`` without indentation gives (it escapes newlines inside strings).

:class:`ReplProcess` is one process and the framing; :class:`ReplSession` adds a header environment (imports,
definitions) built once per process, restarts after crashes and timeouts, and recycles the process before
its memory grows too large. The processes run under :mod:`reasonpipe.verifiers.lean.sandbox`.

Example::

    python -c "from reasonpipe.verifiers.lean.repl import ReplSession; s = ReplSession(['repl'], 'def f := 37'); print(s.check('example : f = 37 := rfl')); s.close()"
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reasonpipe.verifiers.lean.sandbox import (LeanNotFound, Limits, SandboxError, describe_exit, is_out_of_memory,
                                    kill_group, popen_limited, sandbox_argv)

STDERR_TAIL_BYTES = 2048  # how much of the REPL's stderr a ReplCrashed carries
_READ_CHUNK = 1 << 16


class ReplError(RuntimeError):
    """Anything that went wrong talking to the REPL."""


class ReplStartError(ReplError):
    """The REPL could not be started, its header failed, or it failed too often in a row."""


class ReplCrashed(ReplError):
    """The REPL process exited while we waited for a reply."""

    def __init__(self, message: str, *, returncode: int | None, stderr_tail: str, out_of_memory: bool) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.out_of_memory = out_of_memory


class ReplTimeout(ReplError):
    """No reply within the time allowed; the process has been killed."""

    def __init__(self, message: str, *, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


class ReplProtocolError(ReplError):
    """The REPL refused a request (``reply`` holds its ``{"message": ...}``), or answered something unparsable
    (``reply`` is None)."""

    def __init__(self, message: str, *, reply: dict | None = None) -> None:
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True)
class Pos:
    """A position in the submitted code: 1-based line, 0-based column (in codepoints), as Lean counts."""

    line: int
    column: int


@dataclass(frozen=True)
class Message:
    """A message Lean printed: severity is "error", "warning" or "info"."""

    severity: str
    pos: Pos
    end_pos: Pos | None
    data: str


@dataclass(frozen=True)
class Sorry:
    """A ``sorry`` with its goal. ``proof_state`` is what tactic requests continue from. Sorries reported in
    tactic mode carry no position (``pos`` None)."""

    proof_state: int | None
    pos: Pos | None
    end_pos: Pos | None
    goal: str


@dataclass(frozen=True)
class ReplResponse:
    """A successful reply: a command's (``env``, messages, sorries) or a tactic's (proof state, status, goals)."""

    env: int | None
    messages: tuple[Message, ...]
    sorries: tuple[Sorry, ...]
    raw: dict  # the reply as parsed, for the keys not modelled here (infotree, tactics, traces)
    proof_state: int | None = None
    proof_status: str | None = None
    goals: tuple[str, ...] = ()

    @property
    def errors(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.severity == "error")

    @classmethod
    def from_json(cls, obj: dict) -> ReplResponse:
        """The reply ``obj`` as a response; ReplProtocolError for a refusal (``{"message": ...}``) or a reply
        that is neither a command's (``env``) nor a tactic's (``proofState``) or has malformed fields."""
        if not isinstance(obj, dict):
            raise ReplProtocolError(f"REPL reply is not a JSON object: {_snippet(obj)}")
        if "message" in obj:
            raise ReplProtocolError(f"the REPL refused the request: {obj['message']}", reply=obj)
        if "env" not in obj and "proofState" not in obj:
            raise ReplProtocolError(f"REPL reply has neither env nor proofState: {_snippet(obj)}", reply=obj)
        try:
            return cls(env=_optional_int(obj.get("env")),
                       messages=tuple(_message(m) for m in _list(obj.get("messages", []))),
                       sorries=tuple(_sorry(s) for s in _list(obj.get("sorries", []))),
                       raw=obj,
                       proof_state=_optional_int(obj.get("proofState")),
                       proof_status=_optional_str(obj.get("proofStatus")),
                       goals=tuple(_str(g) for g in _list(obj.get("goals", []))))
        except (KeyError, TypeError) as e:
            raise ReplProtocolError(f"malformed REPL reply ({e}): {_snippet(obj)}", reply=obj) from e


class ReplProcess:
    """One REPL process: send a request dict, read one reply dict (framing: JSON + blank line).

    ``argv`` runs through sandbox_argv (bubblewrap as ``limits.use_bwrap`` says) and popen_limited
    (memory and file-size limits) with ``cwd`` as the working directory. ``limits.timeout_s`` is the
    default time per request; ``limits.max_output_bytes`` bounds one reply. Not thread-safe: one caller.
    Raises LeanNotFound (from the sandbox) when ``argv[0]`` does not exist, ReplStartError when it cannot start.
    """

    def __init__(self, argv: Sequence[str], *, cwd: str, limits: Limits,
                 env: Mapping[str, str] | None = None, readonly: Sequence[str] = ()) -> None:
        self.limits = limits
        try:
            wrapped = sandbox_argv(argv, cwd, use_bwrap=limits.use_bwrap, readonly=readonly)
            self._proc: subprocess.Popen | None = popen_limited(wrapped, cwd=cwd, limits=limits, env=env)
        except LeanNotFound:  # passes through as it is: its message says how to install the missing tool
            raise
        except SandboxError as e:
            raise ReplStartError(str(e)) from e
        os.set_blocking(self._proc.stdin.fileno(), False)  # a request is written only as fast as it is read
        # a process nobody closed would hold its GBs until we exit: kill it when this object is collected
        self._finalizer = weakref.finalize(self, kill_group, self._proc)
        self._stdout = bytearray()  # read but not yet returned
        self._stderr_tail = bytearray()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def request(self, obj: dict, timeout: float | None = None) -> dict:
        """Send ``obj``, return the reply as parsed (``{"message": ...}`` refusals included).

        ReplTimeout after ``timeout`` seconds (default limits.timeout_s) and ReplProtocolError for output that
        is not a JSON object or is too large (both kill the process: the framing is lost); ReplCrashed when the
        process exits.
        """
        if self._proc is None:
            raise ReplError("the REPL process is closed")
        seconds = self.limits.timeout_s if timeout is None else timeout
        deadline = time.monotonic() + seconds
        self._check_quiet()
        block = self._exchange(encode_request(obj), deadline, seconds)
        try:
            reply = json.loads(block)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            self.close()
            raise ReplProtocolError(f"the REPL answered something that is not a JSON object: {_snippet(block)}")
        return reply

    def close(self) -> None:
        """Kill the process (a REPL holds nothing worth saving, and killing does not wait on a hung one)."""
        if self._proc is not None:
            self._finalizer()  # kill_group, once
            self._proc = None

    def __enter__(self) -> ReplProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_quiet(self) -> None:
        """Before a request: nothing may have arrived since the last reply. Output nobody asked for would be
        taken for the next reply, pairing each request with the previous one's answer; so it kills the process."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stdout.fileno(), selectors.EVENT_READ)
            while selector.select(0) and self._read_stdout():
                pass
        if self._stdout.strip():
            unsolicited = bytes(self._stdout)
            self.close()
            raise ReplProtocolError(f"the REPL printed output nobody asked for: {_snippet(unsolicited)}")

    def _exchange(self, request: bytes, deadline: float, seconds: float) -> str:
        """Write ``request`` and read until a reply block is complete, all before ``deadline``."""
        proc = self._proc
        pending = memoryview(request)
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout.fileno(), selectors.EVENT_READ)
            selector.register(proc.stderr.fileno(), selectors.EVENT_READ)
            selector.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
            while True:
                block = take_block(self._stdout)
                if block is not None:
                    return block
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.close()
                    raise ReplTimeout(f"no reply from the REPL within {seconds:.1f} s (process killed)",
                                      seconds=seconds)
                for key, _ in selector.select(remaining):
                    if key.fd == proc.stdin.fileno():
                        pending = self._write_some(pending)
                        if not pending:
                            selector.unregister(key.fd)
                    elif key.fd == proc.stderr.fileno():
                        if not self._read_stderr():
                            selector.unregister(key.fd)
                    elif not self._read_stdout():
                        self._crashed(deadline)

    def _write_some(self, pending: memoryview) -> memoryview:
        try:
            return pending[os.write(self._proc.stdin.fileno(), pending[:_READ_CHUNK]):]
        except BlockingIOError:
            return pending
        except BrokenPipeError:  # it exited; reading its stdout gives EOF next, and with it ReplCrashed
            return pending[:0]

    def _read_stdout(self) -> bool:
        """Read what is there; False at end of file."""
        chunk = os.read(self._proc.stdout.fileno(), _READ_CHUNK)
        self._stdout += chunk
        if len(self._stdout) > self.limits.max_output_bytes:
            size = len(self._stdout)
            self.close()
            raise ReplProtocolError(f"REPL reply larger than {self.limits.max_output_bytes} bytes "
                                    f"({size} read so far; process killed)")
        return bool(chunk)

    def _read_stderr(self) -> bool:
        chunk = os.read(self._proc.stderr.fileno(), _READ_CHUNK)
        self._stderr_tail = (self._stderr_tail + chunk)[-STDERR_TAIL_BYTES:]
        return bool(chunk)

    def _crashed(self, deadline: float) -> None:
        """Stdout closed: collect the exit status and the end of stderr, and raise ReplCrashed."""
        proc = self._proc
        try:  # it normally exits right after closing stdout; do not wait past the deadline for it
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        self._drain_stderr(grace=0.5)
        returncode = proc.poll()
        self.close()
        tail = self._stderr_tail.decode(errors="replace")
        oom = is_out_of_memory(returncode, tail)
        if returncode is None:
            why = "it closed its output but did not exit (killed)"
        else:
            why = describe_exit(returncode, tail, out_of_memory=oom, memory_mb=self.limits.memory_mb)
        raise ReplCrashed(f"the REPL process exited: {why}", returncode=returncode, stderr_tail=tail,
                          out_of_memory=oom)

    def _drain_stderr(self, grace: float) -> None:
        """Read stderr until end of file, or ``grace`` seconds (a helper process may still hold it open)."""
        end = time.monotonic() + grace
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stderr.fileno(), selectors.EVENT_READ)
            while (remaining := end - time.monotonic()) > 0 and selector.select(remaining):
                if not self._read_stderr():
                    return


class ReplSession:
    """A header environment built once; each check extends it; restart on crash/timeout (then re-run the header).

    ``cwd`` None: a private temporary directory, removed by close(). ``recycle_after``: the process is
    replaced after this many checks, since each command keeps an environment alive inside the REPL and its
    memory only grows. After a crash, timeout or unparsable reply the process is dropped and a new one is
    started on the next check; when more than ``max_restarts`` checks fail that way in a row, the session
    gives up and every check raises ReplStartError. Not thread-safe: one session per thread.
    """

    def __init__(self, argv: Sequence[str], header: str = "", *, cwd: str | None = None,
                 limits: Limits = Limits(), env: Mapping[str, str] | None = None, max_restarts: int = 3,
                 recycle_after: int = 2000, readonly: Sequence[str] = ()) -> None:
        if max_restarts < 0 or recycle_after < 1:
            raise ValueError(f"max_restarts must be >= 0 and recycle_after >= 1, "
                             f"got {max_restarts} and {recycle_after}")
        self._argv = list(argv)
        self._readonly = list(readonly)
        self._header = header
        self._limits = limits
        self._env = dict(env) if env is not None else None
        self._max_restarts = max_restarts
        self._recycle_after = recycle_after
        self.cwd = tempfile.mkdtemp(prefix="reasonpipe-repl-") if cwd is None else cwd
        # the private directory goes at close(), or when the session is collected or we exit without it
        self._remove_cwd = weakref.finalize(self, shutil.rmtree, self.cwd, ignore_errors=True) if cwd is None \
            else None
        self._process: ReplProcess | None = None
        self._header_env: int | None = None
        self._checks_on_process = 0
        self._failures_in_a_row = 0
        self._starts = 0
        self._closed = False
        self.restarts = 0  # processes started to replace one that crashed, hung or lost the framing
        self.recycles = 0  # processes replaced after recycle_after checks

    @property
    def pid(self) -> int | None:
        """The running REPL's process id; None before the first check and after a failure."""
        return self._process.pid if self._process is not None else None

    def check(self, code: str, timeout: float | None = None, *, env: int | None = None) -> ReplResponse:
        """Elaborate ``code`` in the header's environment (a fresh one when there is no header), or in ``env``
        (a number an earlier reply of the same process gave: valid only until the process is replaced).

        ``timeout`` defaults to limits.timeout_s. Raises ReplProtocolError when the REPL refuses the request,
        ReplCrashed / ReplTimeout when this check broke the process (the next check starts a new one), and
        ReplStartError when a new process cannot be started or its header fails.
        """
        if env is not None and self._process is None:
            raise ReplError(f"the REPL process that made environment {env} is gone")
        process = self._ready_process(recycle=env is None)  # never replace the process an env lives in
        request: dict = {"cmd": code}
        if env is not None:
            request["env"] = env
        elif self._header_env is not None:
            request["env"] = self._header_env
        return self._send(process, request, timeout)

    def pickle(self, env: int, path: str, timeout: float | None = None) -> None:
        """Write environment ``env`` to ``path`` (an .olean, the REPL's ``pickleTo``), for a kernel replay."""
        if self._process is None:
            raise ReplError(f"the REPL process that made environment {env} is gone")
        reply = self._send(self._ready_process(recycle=False), {"pickleTo": path, "env": env}, timeout)
        if reply.errors:
            raise ReplProtocolError(f"the REPL could not pickle environment {env}: {reply.errors[0].data}")

    def _send(self, process: ReplProcess, request: dict, timeout: float | None) -> ReplResponse:
        try:
            reply = process.request(request, timeout)
        except ReplError:  # crashed, hung or lost the framing: the process is dead
            self._drop_process()
            self._failures_in_a_row += 1
            raise
        self._failures_in_a_row = 0
        self._checks_on_process += 1
        return ReplResponse.from_json(reply)

    def close(self) -> None:
        self._drop_process()
        if self._remove_cwd is not None:
            self._remove_cwd()  # runs once, however often close() is called
        self._closed = True

    def __enter__(self) -> ReplSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ready_process(self, recycle: bool = True) -> ReplProcess:
        """The process for the next check: the current one, or a new one (recycling, or after a failure)."""
        if self._closed:
            raise ReplError("the REPL session is closed")
        if self._failures_in_a_row > self._max_restarts:
            raise ReplStartError(f"the REPL failed {self._failures_in_a_row} times in a row "
                                 f"(max_restarts={self._max_restarts}); giving up")
        if recycle and self._process is not None and self._checks_on_process >= self._recycle_after:
            self._drop_process()
            self.recycles += 1
        elif self._process is None and self._starts > 0:
            self.restarts += 1
        if self._process is None:
            self._process = self._start()
        return self._process

    def _start(self) -> ReplProcess:
        """A new process with the header elaborated; ReplStartError (counted as a failure) if that fails."""
        self._starts += 1
        self._checks_on_process = 0
        try:
            process = ReplProcess(self._argv, cwd=self.cwd, limits=self._limits, env=self._env, readonly=self._readonly)
        except ReplStartError:
            self._failures_in_a_row += 1
            raise
        if not self._header:
            self._header_env = None
            return process
        try:
            header = ReplResponse.from_json(process.request({"cmd": self._header}))
        except ReplError as e:
            process.close()
            self._failures_in_a_row += 1
            raise ReplStartError(f"the REPL header failed: {e}") from e
        if header.errors or header.env is None:
            process.close()
            self._failures_in_a_row += 1
            first = header.errors[0] if header.errors else None
            where = f"line {first.pos.line}, column {first.pos.column}: {first.data}" if first else "no env"
            raise ReplStartError(f"the REPL header has errors ({where})")
        self._header_env = header.env
        return process

    def _drop_process(self) -> None:
        if self._process is not None:
            self._process.close()
            self._process = None


def encode_request(obj: dict) -> bytes:
    """One request as the REPL reads it: the JSON on one line, then one blank line.

    ``json.dumps`` without indentation escapes every newline inside strings, so the request holds no blank
    line that would end it early (nor a raw newline, which the REPL would drop: it joins lines bare).
    """
    return (json.dumps(obj, ensure_ascii=False) + "\n\n").encode("utf-8")


def take_block(buffer: bytearray) -> str | None:
    """Remove the first complete reply from ``buffer`` and return it: the non-blank lines before a blank line.

    Blank lines before a reply are skipped. None while no blank line has ended a reply yet.
    """
    start = None
    pos = 0
    while (end := buffer.find(b"\n", pos)) >= 0:
        if buffer[pos:end].strip():
            if start is None:
                start = pos
        elif start is not None:
            block = bytes(buffer[start:pos]).rstrip(b"\r\n")
            del buffer[:end + 1]
            return block.decode("utf-8", errors="replace")
        pos = end + 1
    return None


def _pos(obj: object) -> Pos:
    if not isinstance(obj, dict):
        raise TypeError(f"position is not an object: {obj!r}")
    return Pos(line=_int(obj["line"]), column=_int(obj["column"]))


def _message(obj: object) -> Message:
    if not isinstance(obj, dict):
        raise TypeError(f"message is not an object: {obj!r}")
    end = obj.get("endPos")
    return Message(severity=_str(obj["severity"]), pos=_pos(obj["pos"]),
                   end_pos=_pos(end) if end is not None else None, data=_str(obj["data"]))


def _sorry(obj: object) -> Sorry:
    if not isinstance(obj, dict):
        raise TypeError(f"sorry is not an object: {obj!r}")
    pos, end = obj.get("pos"), obj.get("endPos")
    return Sorry(proof_state=_optional_int(obj.get("proofState")), pos=_pos(pos) if pos is not None else None,
                 end_pos=_pos(end) if end is not None else None, goal=_str(obj["goal"]))


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _optional_int(value: object) -> int | None:
    return None if value is None else _int(value)


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _optional_str(value: object) -> str | None:
    return None if value is None else _str(value)


def _list(value: object) -> list:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {value!r}")
    return value


def _snippet(value: object, limit: int = 200) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
