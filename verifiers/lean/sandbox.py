"""Run a Lean process (``lean``, ``lake``, the REPL, ``lean4checker``) with a time limit, a memory limit, a
scrubbed environment and, where bubblewrap works, a filesystem and network sandbox.

The threat: statements and proofs that reach Lean come from model output, and elaborating them can run code
(tactics, ``include_str``-style file reads, anything a macro expands to). The process that checks them is
therefore treated as hostile code that wants to read secrets (keys under $HOME, other users' traces), write
outside its scratch folder (poison a cache, a checkout, the toolchain), reach the network, or outlive us.
The first line of defence is the guard that rejects such proofs before anything runs; this module is the
second. What it does:

- **time**: a wall-clock limit; the child runs in its own session (process group) and on timeout the whole
  group is killed with SIGKILL, so helpers it spawned (``lake`` starts ``lean``) die with it; under
  bubblewrap the sandbox's own PID namespace dies with it too;
- **memory**: an address-space limit (``RLIMIT_AS``) in the child; an allocation past it fails, and the
  failure is reported as ``out_of_memory``. The limit is per process (``lake`` and its ``lean`` each get it)
  and counts *virtual* memory, memory-mapped ``.olean`` files included: ``import Mathlib`` maps several GB,
  so give such a header a larger ``memory_mb`` (or ``None``);
- **disk**: ``RLIMIT_FSIZE`` (64 MB per file) so a runaway write cannot fill a disk, and no core dumps;
- **output**: at most ``max_output_bytes`` of stdout and of stderr are kept, the rest is read and dropped
  (``truncated``) so a chatty child neither blocks nor fills our memory;
- **environment**: :func:`scrubbed_env` passes on only what Lean, elan and lake read; tokens and keys in
  the parent's environment never reach the child;
- **filesystem and network** (bubblewrap, ``bwrap``): :func:`sandbox_argv` wraps a command line so that the
  program sees an empty root with only these read-only binds:

  * the system folders needed to start a program: ``/usr``, ``/bin``, ``/sbin``, ``/lib``, ``/lib32``,
    ``/lib64``, ``/libx32`` (where they exist; ``--symlink`` where they are links into ``/usr``, as on
    Debian), and from ``/etc`` only ``ld.so.cache``, ``ld.so.conf(.d)``, ``alternatives`` and ``localtime``;
  * the toolchain of the program (:func:`toolchain_binds`): the folder of ``argv[0]`` and, following its
    symlinks, the toolchain prefix (the parent of its ``bin``), elan's home (``$ELAN_HOME`` or ``~/.elan``)
    when the program lives there, and for a ``#!`` script its interpreter (``#!/usr/bin/env NAME``: the
    NAME that ``env`` finds on PATH) with that interpreter's prefix;
  * the ``readonly`` paths the caller names (the Lean project, LEAN_PATH folders, other toolchains);

  plus a fresh tmpfs ``/tmp`` (private, gone when the sandbox ends), a minimal ``/dev`` and ``/proc``, and
  the work folder, bound read-write: the only writable path besides that private ``/tmp`` (the sandbox's
  root is read-only too). The work folder is also the start folder and ``$HOME``; ``$TMPDIR`` is ``/tmp``.
  Binds come after the tmpfs, so a toolchain, project or work folder under ``/tmp`` stays visible. All
  namespaces are unshared (``--unshare-all``: no network at all, own PIDs, IPC, UTS), all capabilities are
  dropped (``--cap-drop ALL``: root could otherwise remount the read-only binds writable), the program runs
  in a new session (no terminal to inject keystrokes into) and dies with its parent (``--die-with-parent``).
  Not readable in the sandbox, in particular: ``$HOME`` and ``/root``, ``/home``, ``/work``, ``/opt``,
  ``/srv``, ``/var``, the rest of ``/etc`` (``passwd``, ``ssl``, ...), the parent's ``/tmp``, unless a
  toolchain or a ``readonly`` path lies there. Still readable: the binds above, i.e. everything under
  ``/usr`` (world-readable system files) and the whole toolchain and project.

Use: ``run_limited(sandbox_argv(argv, tmp, use_bwrap=limits.use_bwrap, readonly=[project]), cwd=tmp, ...)``;
run_limited and popen_limited never wrap twice. Inside bubblewrap the process starts in ``workdir`` whatever
``cwd`` says. ``use_bwrap`` None (the default) uses bubblewrap when :func:`bwrap_works` (probed once per
process) and otherwise prints one warning line on stderr, once per process, and runs without it; True
requires it (SandboxError when it does not work); False never uses it.

Failures of the sandbox itself raise :class:`SandboxError` with one line, never a traceback: bubblewrap missing
when required, a program that cannot be found (:class:`LeanNotFound`), and bubblewrap's own errors at start
(``bwrap: execvp ...: No such file or directory`` when the program or its interpreter lies outside every
bind, ``bwrap: Can't ...`` for a bind that cannot be made). :func:`run_limited` raises those itself;
:func:`sandbox_failure` (for a RunResult) and :func:`bwrap_error` (for a return code and stderr, e.g. a REPL
started with popen_limited that exited at once) return the one line, "the sandbox could not start PROGRAM:
bwrap: ...", or None. They recognise exit status 1 with a single ``bwrap: `` line on stderr and nothing on
stdout; a program could print the same, so they are only ever used to fail a run, never to pass one.

What is *not* covered: without bubblewrap there is no filesystem or network isolation at all; the child can
read whatever this user can and write anywhere outside its temporary working directory (up to the file-size
limit). There is no seccomp filter (the kernel's whole system-call surface is reachable) and the number of
processes is not limited (``RLIMIT_NPROC`` counts all of this user's processes, so a low value breaks
unrelated work). Files under ``/usr`` and in the bound toolchain and project are readable by a proof.

Example::

    python -c "from reasonpipe.verifiers.lean.sandbox import Limits, run_limited; print(run_limited(['python3', '-c', 'print(6*7)'], cwd='.', limits=Limits(timeout_s=5)))"
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
import threading
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
    "bwrap": "install it: `apt-get install -y bubblewrap`",
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
    """The sandbox could not run the program at all (missing tool, bad working directory, a bubblewrap
    error at start). Its message is one line."""


class LeanNotFound(SandboxError):
    """The executable (``lean``, ``lake``, ``repl``) is not installed or not where it was said to be."""


@dataclass(frozen=True)
class Limits:
    """What a child may use. ``use_bwrap``: None uses bubblewrap when it works here, True requires it, False
    never (see bwrap_works)."""

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
    sandboxed: str | None = None  # the program bubblewrap was asked to run (None: not under bubblewrap)

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


# --- bubblewrap -------------------------------------------------------------------------------------------------

# Folders every program needs to start (the dynamic loader, libc, a shell); bound read-only, or recreated as
# symlinks where they are links into /usr (Debian's merged /usr).
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What the dynamic loader and libc read from /etc; the rest of /etc (passwd, ssl, ...) stays out.
_SYSTEM_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime")
# A program in PREFIX/bin (sbin, pyenv's shims) belongs to the toolchain PREFIX, which is bound whole, unless
# PREFIX is too broad (_too_broad: the root, a top-level folder, /home/USER, $HOME or one of its ancestors, so
# that a `~/bin/lean` does not expose all of $HOME): then only the bin folder is; name the rest in `readonly`.
_TOOL_FOLDERS = ("bin", "sbin", "shims")
_PROBE_TIMEOUT_S = 5.0
_MAX_SHEBANG_DEPTH = 4
_bwrap_lock = threading.Lock()
_bwrap_probe: tuple[str | None, str] | None = None  # (bwrap's path when it works, why not); None: not probed
_bwrap_warned = False


def bwrap_works() -> bool:
    """Does bubblewrap work here? ``bwrap --ro-bind / / --unshare-all --die-with-parent true`` must exit 0
    within a few seconds. Probed once per process (thread-safe); ``_forget_bwrap()`` probes again."""
    return _probe_bwrap()[0] is not None


def _probe_bwrap() -> tuple[str | None, str]:
    global _bwrap_probe
    with _bwrap_lock:
        if _bwrap_probe is None:
            _bwrap_probe = _run_probe()
        return _bwrap_probe


def _run_probe() -> tuple[str | None, str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "`bwrap` is not on PATH"
    try:  # its own group, killed whole on timeout (subprocess.run would wait for a stray child's pipes)
        probe = subprocess.Popen([bwrap, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 start_new_session=True)
    except OSError as e:
        return None, f"`{bwrap}` cannot be run: {e}"
    try:
        _, err = probe.communicate(timeout=_PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        kill_group(probe)
        return None, f"`{bwrap}` did not start a sandbox within {_PROBE_TIMEOUT_S:.0f} s"
    if probe.returncode != 0:
        last = _last_line(err.decode(errors="replace")) or f"exit status {probe.returncode}"
        return None, f"`{bwrap}` cannot create a sandbox here ({last})"
    return bwrap, ""


def _forget_bwrap() -> None:
    """Forget the probe and the warning (tests: after changing PATH)."""
    global _bwrap_probe, _bwrap_warned
    with _bwrap_lock:
        _bwrap_probe = None
        _bwrap_warned = False


def _bwrap_for(use_bwrap: bool | None) -> str | None:
    """bwrap's path when this run uses it; None to run without (after the one warning of this process)."""
    global _bwrap_warned
    if use_bwrap is False:
        return None
    bwrap, why = _probe_bwrap()
    if bwrap is not None:
        return bwrap
    if use_bwrap:
        raise SandboxError(f"bubblewrap is required but {why}; {_INSTALL_HINTS['bwrap']}")
    with _bwrap_lock:
        warn, _bwrap_warned = not _bwrap_warned, True
    if warn:
        print(f"reasonpipe: WARNING: bubblewrap does not work here ({why}): Lean runs WITHOUT filesystem "
              f"isolation, a proof can read and write whatever this user can; {_INSTALL_HINTS['bwrap']}",
              file=sys.stderr, flush=True)
    return None


def toolchain_binds(executable: str, *, env: Mapping[str, str] | None = None) -> list[str]:
    """The folders (or files) to bind read-only so that ``executable`` can run in the sandbox, beyond the
    system folders: the folder of the program, each link on its way to the real file and their toolchain
    prefixes (``PREFIX/bin/lean`` -> PREFIX), elan's home when the program lives there, and for a ``#!``
    script its interpreter likewise (``#!/usr/bin/env NAME``: the NAME ``env`` finds on PATH). Paths under
    the system folders are left out, and so are paths inside another path of the list.

    ``executable``: a path, or a name looked up on ``env``'s PATH (LeanNotFound when it is not there).
    ``env``: the environment the program will get (PATH, ELAN_HOME, HOME); default os.environ.
    """
    env = os.environ if env is None else env
    found: list[str] = []
    _add_program(found, _locate(executable, env), env, 0)
    return _outermost(p for p in found if not _under_any(p, _SYSTEM_DIRS))


def sandbox_argv(argv: Sequence[str], workdir: str, *, use_bwrap: bool | None = None,
                 readonly: Sequence[str] = (), env: Mapping[str, str] | None = None) -> list[str]:
    """``argv`` wrapped in bubblewrap (when used; see the module docstring for what the sandbox sees).

    ``readonly``: more paths to bind read-only (the Lean project, LEAN_PATH folders, other toolchains);
    those that do not exist are skipped. ``env``: the environment the program will get, for finding
    ``argv[0]`` and a script's interpreter on its PATH (default os.environ). ``argv[0]`` is replaced by its
    absolute path. Without bubblewrap (False, or None when bwrap does not work) ``argv`` comes back
    unchanged. Raises SandboxError (one line) when bubblewrap is required and does not work, and
    LeanNotFound when ``argv[0]`` is not found.
    """
    if not argv:
        raise SandboxError("empty command line")
    bwrap = _bwrap_for(use_bwrap)
    if bwrap is None:
        return list(argv)
    env = os.environ if env is None else env
    workdir = os.path.abspath(workdir)
    if not os.path.isdir(workdir):
        raise SandboxError(f"working directory {workdir} does not exist")
    program = _locate(argv[0], env)
    wrapped = [bwrap, "--unshare-all", "--cap-drop", "ALL", "--die-with-parent", "--new-session"]
    for folder in _SYSTEM_DIRS:
        if os.path.islink(folder) and _under_any(os.path.realpath(folder), ["/usr"]):
            wrapped += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            wrapped += ["--ro-bind", folder, folder]
    wrapped += [arg for path in _SYSTEM_ETC if os.path.exists(path) for arg in ("--ro-bind", path, path)]
    wrapped += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    # Binds come after the tmpfs (a toolchain or project under /tmp would otherwise be hidden by it) and the
    # writable work folder last (a work folder inside the project stays writable).
    binds = toolchain_binds(program, env=env)
    elan_home = _elan_home(env)
    for path in readonly:
        path = os.path.abspath(path)
        binds += [path, os.path.realpath(path)]
    for path in _outermost(p for p in binds if os.path.exists(p) and not _under_any(p, _SYSTEM_DIRS)):
        wrapped += ["--ro-bind", path, path]
    wrapped += ["--bind", workdir, workdir, "--remount-ro", "/",  # the root's own tmpfs: no writes either
                "--chdir", workdir, "--setenv", "HOME", workdir,
                "--setenv", "TMPDIR", "/tmp"]
    if any(_under_any(p, [elan_home]) for p in binds):  # HOME moved: tell elan's proxies where it is
        wrapped += ["--setenv", "ELAN_HOME", elan_home]
    return wrapped + ["--", program, *argv[1:]]


def bwrap_error(returncode: int | None, stderr: str, program: str = "the program") -> str | None:
    """One line, "the sandbox could not start PROGRAM: bwrap: ...", when a bubblewrap run ended with
    bubblewrap's own error before the program ran (exit status 1, one ``bwrap: `` line on stderr); else None.
    For runs of sandbox_argv's command lines only (a program may print the same text: use it to fail a run,
    never to pass one)."""
    if returncode != 1:
        return None
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if len(lines) != 1 or not lines[0].startswith("bwrap: "):
        return None
    return f"the sandbox could not start {program}: {lines[0][:300]}"


def sandbox_failure(result: RunResult) -> str | None:
    """bwrap_error for a run_limited result: the one line to raise as SandboxError, or None (also for runs
    not under bubblewrap). run_limited already raises it; this is for results obtained otherwise."""
    if result.sandboxed is None or result.timed_out or result.stdout.strip():
        return None
    return bwrap_error(result.returncode, result.stderr, result.sandboxed)


def _sandboxed_program(argv: Sequence[str]) -> str | None:
    """The program of a sandbox_argv command line (the word after ``--``), None for any other argv."""
    if os.path.basename(argv[0]) != "bwrap" or "--" not in argv[1:]:
        return None
    rest = list(argv[1:])
    i = rest.index("--")
    return rest[i + 1] if i + 1 < len(rest) else None


def _locate(name_or_path: str, env: Mapping[str, str]) -> str:
    """find_executable with ``env``'s PATH."""
    if os.sep in name_or_path:
        return find_executable(name_or_path)
    found = shutil.which(name_or_path, path=env.get("PATH", os.defpath))
    return found if found else find_executable(name_or_path)  # raises LeanNotFound with a hint


def _add_program(found: list[str], path: str, env: Mapping[str, str], depth: int) -> None:
    """Append to ``found`` what running ``path`` needs (see toolchain_binds)."""
    hops = [path]  # the path as named, each symlink on the way, the real file
    while os.path.islink(hops[-1]) and len(hops) < 40:
        hops.append(os.path.normpath(os.path.join(os.path.dirname(hops[-1]), os.readlink(hops[-1]))))
    hops.append(os.path.realpath(path))  # also resolves links among the folders
    elan_home = _elan_home(env)
    for hop in hops:
        found.append(_toolchain_root(hop))
        if _under_any(hop, [elan_home]):
            found.append(elan_home)
    interpreter = _shebang(hops[-1])
    if interpreter is None or depth >= _MAX_SHEBANG_DEPTH:
        return
    command, name = interpreter
    if os.path.isabs(command):
        _add_program(found, command, env, depth + 1)
    if name is not None:  # #!/usr/bin/env NAME
        target = _env_lookup(name, env)
        if target is not None:
            _add_program(found, target, env, depth + 1)


def _toolchain_root(path: str) -> str:
    """What to bind for a program at ``path``: PREFIX for PREFIX/bin/x, else its folder; never a folder
    that is too broad (then the bin folder, or the file itself)."""
    folder = os.path.dirname(path)
    if os.path.basename(folder) in _TOOL_FOLDERS and not _too_broad(os.path.dirname(folder)):
        return os.path.dirname(folder)
    return path if _too_broad(folder) else folder


def _too_broad(path: str) -> bool:
    path = os.path.normpath(path)
    if os.path.dirname(path) in ("/", "/home"):  # /, a top-level folder, a user's home
        return True
    homes = {os.path.expanduser("~"), os.environ.get("HOME", "")}
    return any(home and (home == path or home.startswith(path.rstrip("/") + "/")) for home in homes)


def _elan_home(env: Mapping[str, str]) -> str:
    home = env.get("ELAN_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".elan")
    return os.path.abspath(home)


def _shebang(path: str) -> tuple[str, str | None] | None:
    """(interpreter, NAME) for a ``#!`` script (NAME: what ``#!/usr/bin/env NAME`` runs, else None); None
    for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].decode(errors="replace").split()
    if not words:
        return None
    if os.path.basename(words[0]) != "env":
        return words[0], None
    name = next((w for w in words[1:] if not w.startswith("-") and "=" not in w), None)
    return words[0], name


def _env_lookup(name: str, env: Mapping[str, str]) -> str | None:
    """The NAME that ``env`` will run in the sandbox: the first on PATH that is a program, not a script
    (a script's folder outside the system folders, e.g. pyenv's shims, is not bound, so ``env`` passes it
    over in the sandbox), or the first script on PATH when there is no such program."""
    candidates = []
    for folder in env.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            candidates.append(os.path.abspath(candidate))
    for candidate in candidates:
        if _shebang(os.path.realpath(candidate)) is None or _under_any(candidate, _SYSTEM_DIRS):
            return candidate
    return candidates[0] if candidates else None


def _under_any(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _outermost(paths) -> list[str]:
    """The paths without duplicates and without those inside another one, in their first order."""
    unique = list(dict.fromkeys(os.path.normpath(p) for p in paths))
    return [p for p in unique if not any(q != p and _under_any(p, [q]) for q in unique)]


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
    found and SandboxError (one line) when it cannot be started at all, bubblewrap's own errors included
    (see sandbox_failure).
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
    result = RunResult(returncode=returncode, stdout=out, stderr=err, seconds=time.monotonic() - start,
                       timed_out=returncode is None, out_of_memory=is_out_of_memory(returncode, err),
                       truncated=truncated, memory_limit_mb=limits.memory_mb, sandboxed=_sandboxed_program(argv))
    failure = sandbox_failure(result)
    if failure is not None:
        raise SandboxError(failure)
    return result


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
