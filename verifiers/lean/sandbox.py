"""Run a Lean process (``lean``, ``lake``, the REPL) with a time limit, a memory limit and a scrubbed environment.

Statements that reach Lean come from model output, so the process that checks them is treated as hostile
code. What this module does about it:

- **time**: a wall-clock limit; the child runs in its own session (process group) and on timeout the whole
  group is killed with SIGKILL, so helpers it spawned (``lake`` starts ``lean``) die with it;
- **memory**: an address-space limit (``RLIMIT_AS``) in the child; an allocation past it fails, and the
  failure is reported as ``out_of_memory``. The limit is per process (``lake`` and its ``lean`` each get it)
  and counts *virtual* memory, memory-mapped ``.olean`` files included: ``import Mathlib`` maps several GB,
  so give such a header a larger ``memory_mb`` (or ``None``);
- **disk**: ``RLIMIT_FSIZE`` (64 MB per file) so a runaway write cannot fill a disk, and no core dumps;
- **output**: at most ``max_output_bytes`` of stdout and of stderr are kept, the rest is read and dropped
  (``truncated``) so a chatty child neither blocks nor fills our memory;
- **environment**: :func:`scrubbed_env` passes on only what Lean, elan and lake read; tokens and keys in
  the parent's environment never reach the child;
- **filesystem and network**, only with bubblewrap (``bwrap``, ``apt install bubblewrap``): the root
  filesystem is read-only, only the working directory is writable, ``/tmp`` is a fresh tmpfs, there is no
  network, and the sandbox dies with its parent. :func:`sandbox_argv` wraps a command line that way; the
  caller composes it (``run_limited(sandbox_argv(argv, tmp, use_bwrap=limits.use_bwrap), cwd=tmp, ...)``),
  so run_limited and popen_limited never wrap twice. Inside bubblewrap the process starts in ``workdir``
  whatever ``cwd`` says.

What is *not* covered: without bubblewrap there is no filesystem or network isolation at all; the child can
read whatever this user can and write anywhere outside its temporary working directory (up to the file-size
limit). The number of processes is not limited (``RLIMIT_NPROC`` counts all of this user's processes, so a
low value breaks unrelated work). The first line of defence is therefore the statement guard that rejects
``#eval``, ``IO`` and friends before anything runs; this module is the second.

Example::

    python -c "from verifiers.lean.sandbox import Limits, run_limited; print(run_limited(['python3', '-c', 'print(6*7)'], cwd='.', limits=Limits(timeout_s=5)))"
"""

from __future__ import annotations

import math
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

FILE_SIZE_LIMIT_BYTES = 64 << 20  # RLIMIT_FSIZE of every child: the largest file it may write

# What Lean, elan and lake read from the environment; everything else (tokens, keys, proxies) is dropped.
_ENV_ALLOWED = ("PATH", "HOME", "ELAN_HOME", "ELAN_TOOLCHAIN", "LEAN_PATH", "LEAN_SRC_PATH", "LEAN_SYSROOT",
                "LAKE_HOME", "LANG", "LC_ALL", "TMPDIR")
_DEFAULT_LOCALE = "C.UTF-8"

_ELAN_HINT = ("install Lean 4 with elan: `curl https://raw.githubusercontent.com/leanprover/elan/master/"
              "elan-init.sh -sSf | sh`, then `elan default stable`")
_INSTALL_HINTS = MappingProxyType({
    "lean": f"{_ELAN_HINT}; or pass --lean PATH",
    "lake": f"lake comes with Lean 4: {_ELAN_HINT}",
    "elan": _ELAN_HINT,
    "repl": ("build leanprover-community/repl: `git clone https://github.com/leanprover-community/repl`, then "
             "`lake build` in the checkout gives .lake/build/bin/repl; or pass --repl PATH"),
    "bwrap": "install bubblewrap: `apt install bubblewrap`",
})

# Messages by which Lean (``INTERNAL PANIC: out of memory``), C++ (``std::bad_alloc``), Python
# (``MemoryError``) and libc (ENOMEM: ``Cannot allocate memory``) report a failed allocation.
_OOM_PATTERN = re.compile(r"out of memory|std::bad_alloc|MemoryError|Cannot allocate memory", re.IGNORECASE)
_VALID_SIGNALS = frozenset(int(s) for s in signal.valid_signals())

# Sets the limits in the child and execs the real program. A launcher rather than Popen's preexec_fn,
# because preexec_fn is documented unsafe when the parent has threads (callers of this module may).
# A limit above the inherited hard limit cannot be set, so the lower of the two is kept.
_LIMITS_LAUNCHER = """\
import os, resource, sys
def cap(which, value):
    hard = resource.getrlimit(which)[1]
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))
address_space, file_size = int(sys.argv[1]), int(sys.argv[2])
cap(resource.RLIMIT_CORE, 0)
cap(resource.RLIMIT_FSIZE, file_size)
if address_space > 0:
    cap(resource.RLIMIT_AS, address_space)
os.execv(sys.argv[3], sys.argv[3:])
"""


class SandboxError(RuntimeError):
    """The sandbox could not run the program at all (missing tool, bad working directory)."""


class LeanNotFound(SandboxError):
    """The executable (``lean``, ``lake``, ``repl``) is not installed or not where it was said to be."""


@dataclass(frozen=True)
class Limits:
    """What a child may use. ``use_bwrap``: None uses bubblewrap when installed, True requires it, False never."""

    timeout_s: float = 60.0
    memory_mb: int | None = 8192
    max_output_bytes: int = 16 << 20
    use_bwrap: bool | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.timeout_s, (int, float)) and 0 < self.timeout_s < math.inf):
            raise ValueError(f"Limits.timeout_s must be a positive number of seconds, got {self.timeout_s!r}")
        if self.memory_mb is not None and not (isinstance(self.memory_mb, int) and self.memory_mb >= 64):
            raise ValueError(f"Limits.memory_mb must be None or an integer >= 64, got {self.memory_mb!r}")
        if not (isinstance(self.max_output_bytes, int) and self.max_output_bytes > 0):
            raise ValueError(f"Limits.max_output_bytes must be a positive integer, got {self.max_output_bytes!r}")
        if self.use_bwrap not in (None, True, False):
            raise ValueError(f"Limits.use_bwrap must be None, True or False, got {self.use_bwrap!r}")


@dataclass(frozen=True)
class RunResult:
    """How a limited run ended. ``returncode`` is None when the run was killed on timeout."""

    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool
    out_of_memory: bool
    truncated: bool
    memory_limit_mb: int | None = None  # the limit it ran under, for why()

    @property
    def crashed(self) -> bool:
        """Killed by a signal or out of memory (a timeout is not a crash: we killed it)."""
        if self.timed_out:
            return False
        return self.out_of_memory or _signal_of(self.returncode) is not None

    def why(self) -> str:
        """One line for a human: how the run ended."""
        if self.timed_out:
            return f"timed out after {self.seconds:.1f} s"
        return describe_exit(self.returncode, self.stderr or self.stdout, out_of_memory=self.out_of_memory,
                             memory_mb=self.memory_limit_mb)


def is_out_of_memory(returncode: int | None, stderr: str) -> bool:
    """Did a process that exited with ``returncode`` (None: still running or killed by us) run out of memory?

    SIGKILL that we did not send (-9, or 137 from a wrapper like lake) is the kernel's OOM killer; otherwise
    the process has to say so on stderr.
    """
    if returncode is None or returncode == 0:
        return False
    if returncode in (-signal.SIGKILL, 128 + signal.SIGKILL):
        return True
    return bool(_OOM_PATTERN.search(stderr[-4096:]))


def describe_exit(returncode: int | None, output: str, *, out_of_memory: bool, memory_mb: int | None) -> str:
    """One line for a process that ended by itself: out of memory, a signal, or an exit status plus the last
    line of ``output`` (stderr, or stdout for tools like ``lean`` that report errors there)."""
    if out_of_memory:
        return f"out of memory (limit {memory_mb} MB)" if memory_mb is not None else "out of memory"
    if returncode is None:
        return "still running"
    if returncode < 0:
        return f"killed by signal {_signal_name(-returncode)}"
    text = f"exit status {returncode}"
    sig = _signal_of(returncode)
    if sig is not None:  # a wrapper (lake, a shell) reports its child's death by signal N as 128 + N
        text += f" (128 + {_signal_name(sig)})"
    last = _last_line(output)
    return f"{text}: {last}" if last and returncode != 0 else text


def scrubbed_env(extra: Mapping[str, str] | None = None, *, home: str | None = None) -> dict[str, str]:
    """The parent's environment reduced to what Lean, elan and lake need, then ``extra`` on top.

    ``home`` replaces HOME (elan finds its toolchains under ``$HOME/.elan`` unless ELAN_HOME is set).
    LANG and LC_ALL default to C.UTF-8 so messages are UTF-8 whatever the parent's locale.
    """
    env = {key: os.environ[key] for key in _ENV_ALLOWED if key in os.environ}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", _DEFAULT_LOCALE)
    env.setdefault("LC_ALL", _DEFAULT_LOCALE)
    if home is not None:
        env["HOME"] = home
    env.update(extra or {})
    return env


def find_executable(name_or_path: str) -> str:
    """The path to run for ``name_or_path`` (a name looked up on PATH, or a path); LeanNotFound otherwise.

    The path is not resolved through symlinks: elan's ``lean`` and ``lake`` are links to one proxy binary
    that picks the tool by the name it was started under.
    """
    tool = os.path.basename(name_or_path)
    hint = _INSTALL_HINTS.get(tool)
    if os.sep in name_or_path:
        if os.path.isfile(name_or_path) and os.access(name_or_path, os.X_OK):
            return os.path.abspath(name_or_path)
        where = f"`{name_or_path}` does not exist or is not executable"
    else:
        found = shutil.which(name_or_path)
        if found:
            return found
        where = f"`{name_or_path}` not found on PATH"
    raise LeanNotFound(f"{where} ({hint})" if hint else where)


def sandbox_argv(argv: Sequence[str], workdir: str, *, use_bwrap: bool | None = None,
                 readonly: Sequence[str] = ()) -> list[str]:
    """``argv`` wrapped in bubblewrap (when used): read-only root, ``workdir`` the only writable path.

    ``readonly``: extra paths to bind read-only after the fresh /tmp (a Lean project under /tmp, say).
    Without bubblewrap (None and not installed, or False) ``argv`` comes back unchanged.
    """
    bwrap = shutil.which("bwrap") if use_bwrap is not False else None
    if bwrap is None:
        if use_bwrap:
            raise SandboxError(f"bubblewrap (`bwrap`) is required but not on PATH ({_INSTALL_HINTS['bwrap']})")
        return list(argv)
    workdir = os.path.abspath(workdir)
    wrapped = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    # Binds come after the tmpfs: a working directory under /tmp would otherwise be hidden by it.
    for path in readonly:
        path = os.path.abspath(path)
        wrapped += ["--ro-bind", path, path]
    wrapped += ["--bind", workdir, workdir,
                "--unshare-net", "--unshare-pid",  # no network; cannot see or signal processes outside
                "--die-with-parent", "--chdir", workdir, "--"]
    return wrapped + list(argv)


def popen_limited(argv: Sequence[str], *, cwd: str, limits: Limits,
                  env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start ``argv`` under ``limits`` (memory and file size; the timeout is the caller's to enforce) in its
    own process group, with binary pipes for stdin, stdout and stderr. ``env`` None: scrubbed_env().
    """
    return _spawn(argv, cwd=cwd, limits=limits, env=env, stdin=subprocess.PIPE)


def run_limited(argv: Sequence[str], *, cwd: str, limits: Limits, env: Mapping[str, str] | None = None,
                stdin: str | None = None) -> RunResult:
    """Run ``argv`` to completion under ``limits`` and report how it ended.

    ``argv`` runs as given (wrap it with sandbox_argv for bubblewrap). Never raises for the child's own
    failure (crash, timeout, out of memory are in the result); raises LeanNotFound when ``argv[0]`` cannot be
    found and SandboxError when it cannot be started at all.
    """
    start = time.monotonic()
    proc = _spawn(argv, cwd=cwd, limits=limits, env=env,
                  stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
    try:
        data = stdin.encode() if stdin is not None else None
        stdout, stderr, truncated, finished = _pump(proc, data, start + limits.timeout_s, limits.max_output_bytes)
        if finished:
            returncode: int | None = proc.wait(timeout=max(0.0, start + limits.timeout_s - time.monotonic()))
        else:
            returncode = None
    except subprocess.TimeoutExpired:  # closed its pipes but kept running
        returncode = None
    finally:
        kill_group(proc)  # helpers left behind die too, also after a normal exit
    out = stdout.decode(errors="replace")
    err = stderr.decode(errors="replace")
    return RunResult(returncode=returncode, stdout=out, stderr=err, seconds=time.monotonic() - start,
                     timed_out=returncode is None, out_of_memory=is_out_of_memory(returncode, err),
                     truncated=truncated, memory_limit_mb=limits.memory_mb)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``'s process group (it leads one: see _spawn), reap ``proc`` and close its pipes.

    Safe to call again: an empty group is simply not there any more.
    """
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # group gone (PermissionError: macOS, for a zombie leader)
        pass
    proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:  # stdin whose reader died with unflushed data: BrokenPipeError
                pass


def _spawn(argv: Sequence[str], *, cwd: str, limits: Limits, env: Mapping[str, str] | None,
           stdin: int) -> subprocess.Popen:
    """Popen of ``argv`` behind the limits launcher, leading a new process group."""
    if not argv:
        raise SandboxError("empty command line")
    if not os.path.isdir(cwd):
        raise SandboxError(f"working directory {cwd} does not exist")
    program = [find_executable(argv[0]), *argv[1:]]
    address_space = limits.memory_mb << 20 if limits.memory_mb is not None else -1
    launcher = [sys.executable, "-S", "-I", "-c", _LIMITS_LAUNCHER, str(address_space),
                str(FILE_SIZE_LIMIT_BYTES), *program]
    try:
        return subprocess.Popen(launcher, cwd=cwd, env=dict(env) if env is not None else scrubbed_env(),
                                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)  # own session and group: killpg reaches all of it
    except OSError as e:
        raise SandboxError(f"could not start {argv[0]}: {e}") from e


def _pump(proc: subprocess.Popen, stdin: bytes | None, deadline: float,
          cap: int) -> tuple[bytes, bytes, bool, bool]:
    """Feed ``stdin`` and read stdout/stderr until both close or ``deadline`` (time.monotonic()) passes.

    Returns (stdout, stderr, truncated, finished); each stream keeps its first ``cap`` bytes.
    One thread with a selector: nothing blocks past the deadline, whatever the child does with its pipes.
    """
    kept = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    truncated = False
    pending = memoryview(stdin or b"")
    with selectors.DefaultSelector() as selector:
        for fd in kept:
            selector.register(fd, selectors.EVENT_READ)
        if proc.stdin is not None:
            os.set_blocking(proc.stdin.fileno(), False)
            selector.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bytes(kept[proc.stdout.fileno()]), bytes(kept[proc.stderr.fileno()]), truncated, False
            for key, _ in selector.select(remaining):
                if key.fd in kept:
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        selector.unregister(key.fd)
                        continue
                    buf = kept[key.fd]
                    room = cap - len(buf)
                    buf += chunk[:room]
                    truncated = truncated or len(chunk) > room
                else:
                    pending = _write_some(key.fd, pending)
                    if not pending:  # all written (or the child stopped reading): send EOF
                        selector.unregister(key.fd)
                        proc.stdin.close()
    return bytes(kept[proc.stdout.fileno()]), bytes(kept[proc.stderr.fileno()]), truncated, True


def _write_some(fd: int, pending: memoryview) -> memoryview:
    """Write what the pipe takes now; the rest. A closed pipe (the child exited) drops the rest."""
    try:
        return pending[os.write(fd, pending[:1 << 16]):]
    except BlockingIOError:
        return pending
    except BrokenPipeError:
        return pending[:0]


def _signal_of(returncode: int | None) -> int | None:
    """The signal that ended a process: -N from Popen, or 128 + N as a wrapper (lake, a shell) reports it."""
    if returncode is None:
        return None
    number = -returncode if returncode < 0 else returncode - 128
    return number if number in _VALID_SIGNALS else None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_line(text: str, limit: int = 200) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""
