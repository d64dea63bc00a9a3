"""verifiers.lean.sandbox: limits, process-group kills, output caps, scrubbed environment, bubblewrap argv.

The programs run here are small Python scripts (no Lean on this machine); what is tested is the sandbox.

Example::

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/test_lean_sandbox.py -q
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from verifiers.lean.sandbox import (FILE_SIZE_LIMIT_BYTES, LeanNotFound, Limits, RunResult, SandboxError,
                                    find_executable, is_out_of_memory, kill_group, popen_limited, run_limited,
                                    sandbox_argv, scrubbed_env)

PY = sys.executable


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


def test_bwrap_argv_when_installed(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/bwrap" if name == "bwrap" else None)
    work = str(tmp_path)
    argv = sandbox_argv(["lean", "Step.lean"], work, readonly=["/opt/project"])
    assert argv == ["/usr/bin/bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                    "--ro-bind", "/opt/project", "/opt/project", "--bind", work, work,
                    "--unshare-net", "--unshare-pid", "--die-with-parent", "--chdir", work, "--",
                    "lean", "Step.lean"]
    assert sandbox_argv(["lean"], work, use_bwrap=True)[0] == "/usr/bin/bwrap"
    assert sandbox_argv(["lean"], work, use_bwrap=False) == ["lean"]


def test_bwrap_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert sandbox_argv(["lean", "x.lean"], str(tmp_path)) == ["lean", "x.lean"]
    with pytest.raises(SandboxError, match="apt install bubblewrap"):
        sandbox_argv(["lean"], str(tmp_path), use_bwrap=True)


def _bwrap_works() -> bool:
    if shutil.which("bwrap") is None:
        return False
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _bwrap_works(), reason="bubblewrap not installed or not usable here")
def test_bwrap_confines_writes_to_the_workdir(tmp_path):
    outside = tmp_path / "outside"
    work = tmp_path / "work"
    outside.mkdir()
    work.mkdir()
    code = ("import pathlib\n"
            "pathlib.Path('inside.txt').write_text('ok')\n"
            f"pathlib.Path({str(outside / 'escaped.txt')!r}).write_text('no')\n")
    argv = sandbox_argv([PY, "-c", code], str(work), use_bwrap=True)
    res = run_limited(argv, cwd=str(work), limits=Limits(timeout_s=20))
    assert (work / "inside.txt").read_text() == "ok"
    assert not (outside / "escaped.txt").exists() and res.returncode != 0

