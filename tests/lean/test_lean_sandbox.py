"""reasonpipe.verifiers.lean.sandbox: limits, process-group kills, output caps, scrubbed environment, bubblewrap.

Most programs run here are small Python scripts. The bubblewrap tests run the real sandbox (they skip, saying
why, where `bwrap` is missing or cannot create a sandbox: `apt-get install -y bubblewrap`), and the real-Lean
ones run an early Lean 4 (``~/.cache/early-lean4-7e317d23`` as ../shared/lean/early-lean4/install unpacks it,
or `lean` on PATH) from toolchain folders the sandbox must bind.

Example::

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/lean/test_lean_sandbox.py -q
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from reasonpipe.verifiers.lean import sandbox
from reasonpipe.verifiers.lean.sandbox import (FILE_SIZE_LIMIT_BYTES, LeanNotFound, Limits, RunResult, SandboxError,
                                    bwrap_error, bwrap_works, find_executable, is_out_of_memory, kill_group,
                                    popen_limited, run_limited, sandbox_argv, sandbox_failure, scrubbed_env,
                                    toolchain_binds)

PY = sys.executable
REPO = Path(__file__).resolve().parents[2]
FAKE_LEAN = REPO / "tests" / "lean" / "fakes" / "fake_lean.py"


def run_py(code: str, tmp_path, **limits) -> RunResult:
    return run_limited([PY, "-c", code], cwd=str(tmp_path), limits=Limits(**limits))


def gone(pid: int) -> bool:
    """The process no longer runs (reaped, or a zombie waiting for its new parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("bad", [dict(timeout_s=0), dict(timeout_s=float("inf")), dict(memory_mb=10),
                                 dict(max_output_bytes=0), dict(use_bwrap="yes")])
def test_limits_reject_bad_values(bad):
    with pytest.raises(ValueError, match="Limits"):
        Limits(**bad)


def test_run_passes_stdin_and_collects_output(tmp_path):
    res = run_py("import sys; print(sys.stdin.read().upper()); print('to err', file=sys.stderr)", tmp_path,
                 timeout_s=10)
    # stdin=None: the child reads /dev/null, not our terminal
    assert (res.returncode, res.stdout, res.stderr) == (0, "\n", "to err\n")
    res = run_limited([PY, "-c", "import sys; print(sys.stdin.read().upper())"], cwd=str(tmp_path),
                      limits=Limits(timeout_s=10), stdin="x" * 300_000)  # more than a pipe holds
    assert res.stdout == "X" * 300_000 + "\n"
    assert not (res.timed_out or res.out_of_memory or res.truncated or res.crashed)
    assert res.why() == "exit status 0"


def test_exit_status_and_last_stderr_line(tmp_path):
    res = run_py("import sys; print('first', file=sys.stderr); print('boom', file=sys.stderr); sys.exit(3)",
                 tmp_path, timeout_s=10)
    assert res.returncode == 3 and not res.crashed
    assert res.why() == "exit status 3: boom"


def test_lean_errors_on_stdout_explain_the_exit(tmp_path):
    # `lean FILE` prints its errors on stdout and nothing on stderr
    res = run_py("print('a.lean:1:0: error: unknown identifier'); raise SystemExit(1)", tmp_path, timeout_s=10)
    assert res.why() == "exit status 1: a.lean:1:0: error: unknown identifier"


def test_timeout_kills_the_whole_process_group(tmp_path):
    code = ("import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(60)\n")
    start = time.monotonic()
    res = run_py(code, tmp_path, timeout_s=0.5)
    assert time.monotonic() - start < 2.0
    assert res.timed_out and res.returncode is None and not res.crashed and not res.out_of_memory
    assert res.why() in ("timed out after 0.5 s", "timed out after 0.6 s")
    grandchild = int(res.stdout.split()[0])
    deadline = time.monotonic() + 3
    while not gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(grandchild), "the child's own child survived the timeout"


def test_timeout_when_the_child_closes_its_pipes_but_keeps_running(tmp_path):
    code = "import os, time; os.close(1); os.close(2); time.sleep(60)"
    res = run_py(code, tmp_path, timeout_s=0.5)
    assert res.timed_out and res.returncode is None


def test_memory_limit_fails_a_big_allocation(tmp_path):
    res = run_py("b = bytearray(300 << 20); print('allocated')", tmp_path, timeout_s=20, memory_mb=256)
    assert res.returncode != 0 and "allocated" not in res.stdout
    assert res.out_of_memory and res.crashed
    assert res.why() == "out of memory (limit 256 MB)"
    # the same program without the limit allocates fine: the limit, not the machine, stopped it
    assert run_py("b = bytearray(300 << 20); print('allocated')", tmp_path, timeout_s=20,
                  memory_mb=None).stdout == "allocated\n"


def test_output_is_capped_and_the_child_is_not_blocked(tmp_path):
    code = "import sys; sys.stdout.write('x' * 1_000_000); sys.stderr.write('e' * 1_000_000)"
    res = run_py(code, tmp_path, timeout_s=10, max_output_bytes=1000)
    assert res.returncode == 0 and res.truncated
    assert res.stdout == "x" * 1000 and res.stderr == "e" * 1000


def test_file_size_limit(tmp_path):
    code = ("with open('big', 'wb') as f:\n"
            f"    for _ in range({FILE_SIZE_LIMIT_BYTES >> 20} + 8): f.write(b'0' * (1 << 20))\n")
    res = run_py(code, tmp_path, timeout_s=20)
    # Python ignores SIGXFSZ, so the write fails with EFBIG instead of the process being killed
    assert res.returncode != 0 and "File too large" in res.stderr
    assert (tmp_path / "big").stat().st_size == FILE_SIZE_LIMIT_BYTES


def test_popen_limited_sets_limits_and_its_own_group(tmp_path):
    code = ("import os, resource\n"
            "print(os.getpgid(0) == os.getpid(), os.getsid(0) == os.getpid())\n"
            "for r in (resource.RLIMIT_AS, resource.RLIMIT_CORE, resource.RLIMIT_FSIZE):\n"
            "    print(*resource.getrlimit(r))\n")
    proc = popen_limited([PY, "-c", code], cwd=str(tmp_path), limits=Limits(memory_mb=512))
    out, _ = proc.communicate(timeout=10)
    mb = 1 << 20
    assert out.decode().split("\n") == ["True True", f"{512 * mb} {512 * mb}", "0 0",
                                        f"{FILE_SIZE_LIMIT_BYTES} {FILE_SIZE_LIMIT_BYTES}", ""]


def test_kill_group_is_idempotent(tmp_path):
    proc = popen_limited([PY, "-c", "import time; time.sleep(60)"], cwd=str(tmp_path), limits=Limits())
    kill_group(proc)
    kill_group(proc)
    assert proc.returncode == -signal.SIGKILL and proc.stdout.closed


def test_crash_by_signal(tmp_path):
    res = run_py("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", tmp_path, timeout_s=10)
    assert res.returncode == -signal.SIGSEGV and res.crashed and not res.out_of_memory
    assert res.why() == "killed by signal SIGSEGV"


def test_out_of_memory_recognition():
    assert is_out_of_memory(1, "INTERNAL PANIC: out of memory\n")
    assert is_out_of_memory(-9, "") and is_out_of_memory(137, "")  # the kernel's OOM killer, or lake reporting it
    assert is_out_of_memory(134, "terminate called after throwing an instance of 'std::bad_alloc'")
    assert not is_out_of_memory(1, "error: unknown identifier")
    assert not is_out_of_memory(None, "out of memory")  # killed by us on timeout
    wrapped = RunResult(returncode=139, stdout="", stderr="", seconds=0.1, timed_out=False,
                        out_of_memory=False, truncated=False)
    assert wrapped.crashed and wrapped.why() == "exit status 139 (128 + SIGSEGV)"


def test_scrubbed_env_keeps_only_what_lean_needs(monkeypatch):
    for key, value in {"AWS_SECRET_ACCESS_KEY": "s3cr3t", "GITHUB_TOKEN": "ghp_x", "HF_TOKEN": "hf_x",
                       "SSH_AUTH_SOCK": "/tmp/agent", "ELAN_HOME": "/opt/elan", "PATH": "/usr/bin:/bin",
                       "HOME": "/home/u"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LANG", raising=False)
    monkeypatch.delenv("LC_ALL", raising=False)
    env = scrubbed_env({"LEAN_PATH": "/p"}, home="/tmp/h")
    assert env == {"PATH": "/usr/bin:/bin", "HOME": "/tmp/h", "ELAN_HOME": "/opt/elan", "LANG": "C.UTF-8",
                   "LC_ALL": "C.UTF-8", "LEAN_PATH": "/p", **({"TMPDIR": os.environ["TMPDIR"]}
                                                                 if "TMPDIR" in os.environ else {})}


def test_children_get_the_scrubbed_env_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_x")
    res = run_py("import os; print(os.environ.get('GITHUB_TOKEN'), 'PATH' in os.environ)", tmp_path,
                 timeout_s=10)
    assert res.stdout == "None True\n"


def test_missing_executables_say_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LeanNotFound) as lean:
        find_executable("lean")
    assert str(lean.value) == (
        "`lean` not found on PATH (install Lean 4 with elan: `curl https://raw.githubusercontent.com/leanprover/"
        "elan/master/elan-init.sh -sSf | sh`, then `elan default stable`; or pass --lean PATH)")
    with pytest.raises(LeanNotFound, match=r"`repl` not found on PATH .*lake build.*--repl PATH"):
        find_executable("repl")
    with pytest.raises(LeanNotFound, match=r"`/nowhere/lean` does not exist or is not executable .*elan"):
        find_executable("/nowhere/lean")
    with pytest.raises(LeanNotFound):
        run_limited(["lean", "--version"], cwd=str(tmp_path), limits=Limits())
    assert issubclass(LeanNotFound, SandboxError)
    assert find_executable(PY) == PY


def test_missing_working_directory(tmp_path):
    with pytest.raises(SandboxError, match="does not exist"):
        run_limited([PY, "-c", "pass"], cwd=str(tmp_path / "nope"), limits=Limits())


# --- bubblewrap: what sandbox_argv builds ------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def fresh_bwrap_probe():
    """Each test probes bubblewrap itself (some change PATH), and leaves no probe behind."""
    sandbox._forget_bwrap()
    yield
    sandbox._forget_bwrap()


@pytest.fixture
def fake_bwrap_ok(monkeypatch):
    """bubblewrap 'works' at /usr/bin/bwrap, without running anything."""
    monkeypatch.setattr(sandbox, "_bwrap_probe", ("/usr/bin/bwrap", ""))


def make_exe(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def binds_of(argv: list[str], flag: str = "--ro-bind") -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def test_sandbox_argv_binds_system_toolchain_project_and_workdir_only(fake_bwrap_ok, tmp_path):
    lean = make_exe(tmp_path / "toolchain" / "bin" / "lean", "#!/bin/sh\necho lean\n")
    project = tmp_path / "project"
    project.mkdir()
    work = str(tmp_path / "work")
    os.mkdir(work)
    argv = sandbox_argv([lean, "Step.lean"], work, readonly=[str(project), str(tmp_path / "missing")])
    assert argv[0] == "/usr/bin/bwrap" and argv[-3:] == ["--", lean, "Step.lean"]
    assert {"--unshare-all", "--die-with-parent", "--new-session"} <= set(argv)
    assert "--share-net" not in argv and argv[argv.index("--cap-drop") + 1] == "ALL"
    ro = binds_of(argv)
    assert "/" not in ro and "/usr" in ro
    for path in ro:  # no home, no /work, no /etc beyond what the loader reads
        assert path in (str(tmp_path / "toolchain"), str(project)) or path.startswith(("/usr", "/lib", "/etc/ld.so",
                                                                                     "/etc/alternatives",
                                                                                     "/etc/localtime")), path
    assert str(tmp_path / "missing") not in ro
    # /bin and friends: recreated as links where they are links into /usr (Debian), bound where they are folders
    for folder in ("/bin", "/lib"):
        links = {argv[i + 2]: argv[i + 1] for i, arg in enumerate(argv) if arg == "--symlink"}
        assert links.get(folder) == os.readlink(folder) if os.path.islink(folder) else folder in ro
    # the fresh /tmp comes before every bind under /tmp, the writable work folder is the only --bind, and last
    tmpfs = argv.index("/tmp", argv.index("--tmpfs"))
    assert all(argv.index(path) > tmpfs for path in (str(tmp_path / "toolchain"), str(project)))
    assert binds_of(argv, "--bind") == [work] and argv.index("--bind") > argv.index(str(project))
    assert argv[argv.index("--chdir") + 1] == work
    assert argv[argv.index("HOME") + 1] == work and argv[argv.index("TMPDIR") + 1] == "/tmp"


def test_sandbox_argv_finds_the_program_on_path(fake_bwrap_ok, tmp_path, monkeypatch):
    lean = make_exe(tmp_path / "tc" / "bin" / "lean", "#!/bin/sh\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'tc' / 'bin'}:/usr/bin:/bin")
    argv = sandbox_argv(["lean", "--version"], str(tmp_path))
    assert argv[-2:] == [lean, "--version"] and str(tmp_path / "tc") in binds_of(argv)
    with pytest.raises(LeanNotFound, match="`repl` not found on PATH"):
        sandbox_argv(["repl"], str(tmp_path))
    with pytest.raises(SandboxError, match="does not exist"):
        sandbox_argv(["lean"], str(tmp_path / "nope"))
    assert sandbox_argv(["lean"], str(tmp_path), use_bwrap=False) == ["lean"]


def test_toolchain_binds_prefix_links_and_interpreters(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ELAN_HOME", raising=False)
    lean = make_exe(tmp_path / "tc" / "bin" / "lean", "\x7fELF")
    assert toolchain_binds(lean) == [str(tmp_path / "tc")]
    # a link on PATH to a toolchain elsewhere: the link's folder (prefix) and the real toolchain
    link = tmp_path / "links" / "bin" / "lean"
    link.parent.mkdir(parents=True)
    link.symlink_to(lean)
    assert toolchain_binds(str(link)) == [str(tmp_path / "links"), str(tmp_path / "tc")]
    # a folder not named bin is bound itself; a script's interpreter and its prefix come along
    interp = make_exe(tmp_path / "opt" / "python" / "bin" / "python3", "\x7fELF")
    script = make_exe(tmp_path / "fakes" / "fake.py", f"#!{interp} -u\n")
    assert toolchain_binds(script) == [str(tmp_path / "fakes"), str(tmp_path / "opt" / "python")]
    # the system folders are never listed; #!/usr/bin/env NAME: the NAME env finds on the program's PATH
    env_script = make_exe(tmp_path / "fakes2" / "tool", "#!/usr/bin/env python3\nprint(1)\n")
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python3").symlink_to(PY)
    expected = [str(tmp_path / "fakes2"), str(tmp_path / "venv")]
    real_prefix = os.path.dirname(os.path.dirname(os.path.realpath(PY)))
    if not real_prefix.startswith("/usr"):
        expected.append(real_prefix)
    got = toolchain_binds(env_script, env={"PATH": f"{venv}:/usr/bin:/bin"})
    assert got[:2] == expected[:2] and set(expected) <= set(got) and not any(p.startswith("/usr") for p in got)


def test_toolchain_binds_pass_over_shims_and_keep_away_from_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("ELAN_HOME", raising=False)
    # a pyenv-style shim (a script) first on PATH, a real program after it: env in the sandbox, where the
    # shim's folder is not bound, runs the program, so that is what gets bound
    shims = tmp_path / "pyenv" / "shims"
    make_exe(shims / "python3", "#!/bin/sh\nexec pyenv exec python3 \"$@\"\n")
    make_exe(tmp_path / "py" / "bin" / "python3", "\x7fELF")
    script = make_exe(tmp_path / "fakes" / "tool", "#!/usr/bin/env python3\n")
    got = toolchain_binds(script, env={"PATH": f"{shims}:{tmp_path / 'py' / 'bin'}"})
    assert got == [str(tmp_path / "fakes"), str(tmp_path / "py")]
    # only scripts on PATH: the first one, with its toolchain (shims' parent)
    got = toolchain_binds(script, env={"PATH": str(shims)})
    assert got == [str(tmp_path / "fakes"), str(tmp_path / "pyenv")]
    # ~/bin/lean: $HOME is never bound whole, only the bin folder
    assert toolchain_binds(make_exe(home / "bin" / "lean", "\x7fELF")) == [str(home / "bin")]
    # elan's proxy: elan's whole home (the proxy reads its settings and toolchains there)
    elan = home / ".elan"
    make_exe(elan / "toolchains" / "stable" / "bin" / "lean", "\x7fELF")
    proxy = make_exe(elan / "bin" / "elan", "\x7fELF")
    (elan / "bin" / "lean").symlink_to("elan")
    assert toolchain_binds(str(elan / "bin" / "lean")) == [str(elan)]
    assert toolchain_binds(proxy, env={"ELAN_HOME": str(elan), "HOME": "/nowhere"}) == [str(elan)]
    with pytest.raises(LeanNotFound):
        toolchain_binds(str(tmp_path / "nope" / "lean"))


def test_sandbox_argv_tells_elan_where_its_home_is(fake_bwrap_ok, tmp_path, monkeypatch):
    elan = tmp_path / "elan"
    monkeypatch.setenv("ELAN_HOME", str(elan))
    make_exe(elan / "bin" / "elan", "\x7fELF")
    (elan / "bin" / "lean").symlink_to("elan")
    argv = sandbox_argv([str(elan / "bin" / "lean")], str(tmp_path))
    assert argv[argv.index("ELAN_HOME") + 1] == str(elan) and str(elan) in binds_of(argv)
    assert "ELAN_HOME" not in sandbox_argv([PY], str(tmp_path))


# --- bubblewrap: probe, warning, errors ---------------------------------------------------------------------

def fake_bwrap_on_path(tmp_path, monkeypatch, script: str) -> Path:
    """PATH holds only a `bwrap` stand-in (plus what /bin/sh needs)."""
    bin_dir = tmp_path / "fakebin"
    make_exe(bin_dir / "bwrap", "#!/bin/sh\n" + script)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_bwrap_not_working_warns_once_and_runs_without(tmp_path, monkeypatch, capsys):
    calls = tmp_path / "calls"
    fake_bwrap_on_path(tmp_path, monkeypatch,
                       f"echo probe >> {calls}\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    results = []
    threads = [threading.Thread(target=lambda: results.append(bwrap_works())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [False] * 8 and calls.read_text() == "probe\n"  # probed once, for all threads
    assert sandbox_argv([PY, "-c", "pass"], str(tmp_path)) == [PY, "-c", "pass"]
    assert sandbox_argv([PY], str(tmp_path), use_bwrap=None) == [PY]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("reasonpipe: WARNING: bubblewrap ")
    assert "WITHOUT filesystem isolation" in err and "Permission denied" in err
    assert "apt-get install -y bubblewrap" in err
    with pytest.raises(SandboxError) as required:
        sandbox_argv([PY], str(tmp_path), use_bwrap=True)
    assert "\n" not in str(required.value) and "Permission denied" in str(required.value)
    assert "apt-get install -y bubblewrap" in str(required.value)
    assert calls.read_text() == "probe\n" and capsys.readouterr().err == ""


def test_bwrap_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not bwrap_works()
    assert sandbox_argv(["lean", "x.lean"], str(tmp_path)) == ["lean", "x.lean"]
    assert "`bwrap` is not on PATH" in capsys.readouterr().err
    with pytest.raises(SandboxError, match=r"^bubblewrap is required but `bwrap` is not on PATH; install it: "
                                           r"`apt-get install -y bubblewrap`$"):
        sandbox_argv(["lean"], str(tmp_path), use_bwrap=True)
    assert sandbox_argv(["lean"], str(tmp_path), use_bwrap=False) == ["lean"]


def test_bwrap_probe_that_hangs_counts_as_not_working(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "_PROBE_TIMEOUT_S", 0.5)
    fake_bwrap_on_path(tmp_path, monkeypatch, "while :; do sleep 1; done\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'fakebin'}:/usr/bin:/bin")  # sleep
    start = time.monotonic()
    assert not bwrap_works()
    assert time.monotonic() - start < 5


def test_bwrap_error_recognition():
    line = "bwrap: execvp /tmp/x/bin/lean: No such file or directory"
    assert bwrap_error(1, line + "\n", "/tmp/x/bin/lean") == f"the sandbox could not start /tmp/x/bin/lean: {line}"
    assert bwrap_error(1, "bwrap: Can't find source path /p: No such file or directory\n") is not None
    assert bwrap_error(2, line) is None and bwrap_error(None, line) is None
    assert bwrap_error(1, "lean: error\n" + line) is None and bwrap_error(1, "") is None
    base = dict(returncode=1, stdout="", stderr=line + "\n", seconds=0.01, timed_out=False, out_of_memory=False,
                truncated=False)
    assert sandbox_failure(RunResult(**base, sandboxed="/tmp/x/bin/lean")).startswith("the sandbox could not start")
    assert sandbox_failure(RunResult(**base)) is None  # not a bubblewrap run
    assert sandbox_failure(RunResult(**{**base, "stdout": "Step.lean:1:0: error"}, sandboxed="lean")) is None


# --- bubblewrap for real --------------------------------------------------------------------------------------

def run_boxed(argv, work: Path, *, readonly=(), timeout_s: float = 30, env=None) -> RunResult:
    return run_limited(sandbox_argv(argv, str(work), use_bwrap=True, readonly=readonly), cwd=str(work),
                       limits=Limits(timeout_s=timeout_s), env=env)


@pytest.fixture
def work(tmp_path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.fixture
def secrets(tmp_path):
    """Secret files outside the sandbox: beside the work folder (under /tmp), in $HOME and in the repository."""
    name = f".pytest-sandbox-secret-{uuid.uuid4().hex[:8]}"
    paths = [tmp_path / "secret.txt", Path.home() / name, REPO / name]
    made = []
    try:
        for path in paths:
            try:
                path.write_text("s3cr3t")
                made.append(path)
            except OSError:
                pass
        yield made
    finally:
        for path in made:
            path.unlink(missing_ok=True)


@pytest.mark.bwrap
def test_bwrap_hides_files_outside_the_binds(work, secrets):
    assert len(secrets) >= 2
    targets = [str(p) for p in secrets] + ["/etc/passwd", "/etc/shadow", "/root/.bashrc",
                                           os.path.expanduser("~/.ssh/id_rsa")]
    code = ("import sys\n"
            "for path in sys.argv[1:]:\n"
            "    try:\n"
            "        print(path, open(path).read())\n"
            "    except OSError as e:\n"
            "        print(path, type(e).__name__)\n")
    res = run_boxed([PY, "-c", code, *targets], work)
    assert res.returncode == 0, res.why()
    assert "s3cr3t" not in res.stdout
    for line in res.stdout.splitlines():
        assert line.endswith(("FileNotFoundError", "PermissionError")), line
    # what the program sees of / and of the repository: no home, no checkout
    code = "import os, sys; print(*(os.listdir(sys.argv[1]) if os.path.isdir(sys.argv[1]) else []))"
    res = run_boxed([PY, "-c", code, str(REPO)], work)
    assert res.returncode == 0 and set(res.stdout.split()) <= {".venv"}, res.stdout + res.stderr


@pytest.mark.bwrap
def test_bwrap_confines_writes_to_the_workdir(tmp_path, work):
    outside = tmp_path / "outside"
    outside.mkdir()
    in_repo = REPO / f".pytest-sandbox-write-{uuid.uuid4().hex[:8]}"
    toolchain = Path(os.path.dirname(PY)) / "pytest-sandbox-write"
    code = ("import pathlib, sys\n"
            "pathlib.Path('inside.txt').write_text('ok')\n"
            "for path in sys.argv[1:]:\n"
            "    try:\n"
            "        pathlib.Path(path).write_text('no'); print(path, 'written')\n"
            "    except OSError as e:\n"
            "        print(path, type(e).__name__)\n")
    targets = [outside / "escaped.txt", in_repo, toolchain, "/escaped.txt", "/usr/escaped.txt"]
    try:
        res = run_boxed([PY, "-c", code, *map(str, targets)], work)
        assert res.returncode == 0, res.why()
        assert (work / "inside.txt").read_text() == "ok"
        assert "written" not in res.stdout, res.stdout
        for path in targets:
            assert not os.path.exists(path), path
    finally:
        in_repo.unlink(missing_ok=True)


@pytest.mark.bwrap
def test_bwrap_has_no_network(work):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.5)
        port = server.getsockname()[1]
        code = ("import socket, sys\n"
                "try:\n"
                f"    socket.create_connection(('127.0.0.1', {port}), timeout=3); print('connected')\n"
                "except OSError as e:\n"
                "    print(type(e).__name__)\n")
        res = run_boxed([PY, "-c", code], work)
        assert res.returncode == 0 and "connected" not in res.stdout, res.stdout + res.stderr
        with pytest.raises(socket.timeout):
            server.accept()


@pytest.mark.bwrap
def test_bwrap_runs_python_stand_ins(work, tmp_path):
    # a `#!/usr/bin/env python3` script: the sandbox binds the interpreter env finds on PATH
    tool = make_exe(tmp_path / "tc" / "bin" / "tool", "#!/usr/bin/env python3\nimport os, sys\n"
                                                     "print('ran', os.getcwd(), sys.argv[1:])\n")
    res = run_boxed([tool, "a"], work)
    assert (res.returncode, res.stdout) == (0, f"ran {work} ['a']\n"), res.stderr
    res = run_boxed([str(FAKE_LEAN), "--version"], work)
    assert res.returncode == 0 and "Lean" in res.stdout, res.stderr


@pytest.mark.bwrap
def test_bwrap_program_outside_every_bind_is_one_sandbox_error(work, tmp_path, monkeypatch):
    tool = make_exe(tmp_path / "tc" / "bin" / "tool", "#!/bin/sh\necho hi\n")
    monkeypatch.setattr(sandbox, "toolchain_binds", lambda executable, env=None: [])  # a gap in the binds
    with pytest.raises(SandboxError) as e:
        run_boxed([tool], work)
    assert str(e.value) == (f"the sandbox could not start {tool}: bwrap: execvp {tool}: "
                            "No such file or directory")
    monkeypatch.undo()
    broken = make_exe(tmp_path / "tc" / "bin" / "broken", "#!/nowhere/python3\n")  # interpreter missing
    with pytest.raises(SandboxError, match=r"^the sandbox could not start .*broken: bwrap: execvp .*broken: "):
        run_boxed([broken], work)


@pytest.mark.bwrap
def test_bwrap_timeout_kills_the_whole_sandbox(work):
    marker = f"pytest-sandbox-sleeper-{uuid.uuid4().hex}"
    code = ("import subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}])\n"
            "print('started', flush=True)\n"
            "time.sleep(60)\n")
    start = time.monotonic()
    res = run_boxed([PY, "-c", code], work, timeout_s=1.5)
    assert time.monotonic() - start < 4
    assert res.timed_out and res.stdout == "started\n"

    def sleepers() -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read() and not gone(int(entry)):
                        found.append(int(entry))
            except (OSError, ValueError):
                pass
        return found

    deadline = time.monotonic() + 3
    while sleepers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sleepers(), "a process of the sandbox survived the timeout"


# --- bubblewrap with a real Lean -------------------------------------------------------------------------------

def _real_lean() -> str | None:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    unpacked = os.path.join(cache, "early-lean4-7e317d23", "bin", "lean")
    return unpacked if os.access(unpacked, os.X_OK) else shutil.which("lean")


REAL_LEAN = _real_lean()


def clone_tree(src: str, dst: Path) -> None:
    """A copy of a toolchain (hard links where the filesystem allows: fast for a large one)."""
    def link_or_copy(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)
    shutil.copytree(src, dst, symlinks=True, copy_function=link_or_copy)


@pytest.mark.bwrap  # not `lean` (a Lean on PATH): the early Lean unpacked in the cache is enough
@pytest.mark.skipif(REAL_LEAN is None,
                    reason="no real Lean: run ../shared/lean/early-lean4/install or put `lean` on PATH")
@pytest.mark.parametrize("where", ["installed", "copy under /tmp", "link under /tmp"])
def test_bwrap_runs_a_real_lean_from_its_own_toolchain(where, work, tmp_path):
    prefix = subprocess.run([REAL_LEAN, "--print-prefix"], capture_output=True, text=True, timeout=60,
                            check=True).stdout.strip()
    lean = os.path.join(prefix, "bin", "lean")
    if where != "installed":  # issue 14, item 7: a toolchain under /tmp, hidden by the sandbox's fresh /tmp
        clone_tree(prefix, tmp_path / "lean4")
        prefix, lean = str(tmp_path / "lean4"), str(tmp_path / "lean4" / "bin" / "lean")
        if where == "link under /tmp":
            (tmp_path / "bin").mkdir()
            (tmp_path / "bin" / "lean").symlink_to(lean)
            lean = str(tmp_path / "bin" / "lean")
    assert run_boxed([lean, "--version"], work).stdout.startswith("Lean (version 4")
    assert run_boxed([lean, "--print-prefix"], work).stdout.strip() == prefix
    (work / "Step.lean").write_text("theorem t : 2 + 2 = 4 := rfl\n#print axioms t\n")
    res = run_boxed([lean, "Step.lean"], work)
    assert res.returncode == 0 and "'t' does not depend on any axioms" in res.stdout, res.stdout + res.stderr
