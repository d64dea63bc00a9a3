"""Shared by every test folder: markers that skip where a capability is missing, the CLI run in-process, the
recorded data, and the re-run of a file's tests under the Triton interpreter.

Markers (declared in pyproject.toml). A test says what it needs and this file skips it, with the reason, where
that is missing; a test file never tests for a capability itself:

- ``gpu``: a CUDA device (``torch.cuda.is_available()``);
- ``lean``: a ``lean`` on PATH;
- ``early_lean``: the early (2021) Lean 4 build 7e317d23, unpacked under ~/.cache/early-lean4-7e317d23 (by
  ../shared/lean/early-lean4/install) or on PATH: the layouts the Lean stand-ins copy;
- ``lean_repl``: leanprover-community's ``repl`` on PATH;
- ``vllm``: vllm installed (``import vllm`` would find it);
- ``bwrap``: bubblewrap can create a sandbox here (``bwrap --ro-bind / / --unshare-all --die-with-parent true``
  exits 0; probed here, not by reasonpipe.verifiers.lean.sandbox, whose own probe is under test);
- ``triton_interpret``: runs only where the Triton kernels are interpreted (``TRITON_INTERPRET=1``), i.e. in
  the subprocess that the ``rerun_interpreted`` fixture starts;
- ``slow``: long-running, never skipped here (deselect with ``-m 'not slow'``).

Each capability is probed at most once per session, and only when a collected test carries its marker.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DATA = TESTS / "data"  # recordings shared by several areas (the Lean ones live in tests/lean/data)


# --- capabilities: marker -> why it is missing here (None: present) ------------------------------------------

def early_lean_path() -> str | None:
    """The early (2021) Lean 4 build: unpacked in the cache, else a ``lean`` on PATH that is that build."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    unpacked = os.path.join(cache, "early-lean4-7e317d23", "bin", "lean")
    if os.access(unpacked, os.X_OK):
        return unpacked
    found = shutil.which("lean")
    if found:
        try:
            version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        if "7e317d23" in version:
            return found
    return None


def _no_gpu() -> str | None:
    import torch

    return None if torch.cuda.is_available() else "no CUDA GPU"


def _no_lean() -> str | None:
    return None if shutil.which("lean") else "no `lean` on PATH"


def _no_early_lean() -> str | None:
    return None if early_lean_path() else "no early Lean 4: run ../shared/lean/early-lean4/install"


def _no_lean_repl() -> str | None:
    return None if shutil.which("repl") else "no leanprover-community `repl` on PATH"


def _no_vllm() -> str | None:
    return None if importlib.util.find_spec("vllm") is not None else "vllm is not installed"


def _no_bwrap() -> str | None:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap is not installed (apt-get install -y bubblewrap)"
    try:
        probe = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                               capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bubblewrap cannot run here: {e}"
    if probe.returncode != 0:
        return f"bubblewrap cannot create a sandbox here: {probe.stderr.decode(errors='replace').strip()}"
    return None


def interpreted() -> bool:
    """Are the Triton kernels defined interpreted in this process (TRITON_INTERPRET=1 before their import)?"""
    from reasonpipe.kernels.logprob import interpreted as kernels_interpreted

    return kernels_interpreted()


def _not_interpreted() -> str | None:
    return None if interpreted() else "runs in the TRITON_INTERPRET=1 subprocess"


PROBES = {"gpu": _no_gpu, "lean": _no_lean, "early_lean": _no_early_lean, "lean_repl": _no_lean_repl,
          "vllm": _no_vllm, "bwrap": _no_bwrap, "triton_interpret": _not_interpreted}


@functools.cache
def missing(marker: str) -> str | None:
    """Why the capability behind ``marker`` is missing here, or None (probed once per session)."""
    return PROBES[marker]()


def pytest_collection_modifyitems(config, items):
    for item in items:
        for marker in PROBES:
            if item.get_closest_marker(marker) is not None and (why := missing(marker)):
                item.add_marker(pytest.mark.skip(reason=why))
                break


# --- the Triton interpreter: one file's tests again, in a subprocess ------------------------------------------

@pytest.fixture
def rerun_interpreted(request):
    """``rerun_interpreted(SEED_VAR=value, timeout=600)`` runs the calling file's ``triton_interpret`` tests again in
    a subprocess with ``TRITON_INTERPRET=1`` (Triton decides when a kernel is *defined* whether it is
    interpreted, so this process cannot switch) and fails unless they all pass there. Keyword arguments other
    than ``timeout`` go into the subprocess's environment (a seed to replay, shown on failure). Skips where this
    process already interprets."""
    if interpreted():
        pytest.skip("already the interpreter subprocess")

    def run(timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
        environ = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1", **env}
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", str(request.path),
               "-m", "triton_interpret"]
        proc = subprocess.run(cmd, env=environ, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        replay = " ".join(f"{k}={v}" for k, v in env.items())
        out = f"{replay}\n{proc.stdout[-6000:]}{proc.stderr[-2000:]}"
        summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        assert proc.returncode == 0, out
        assert " passed" in summary and "skipped" not in summary, out
        return proc

    return run


# --- the CLI in-process --------------------------------------------------------------------------------------

@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """``cli("gen", "countdown", ...)`` -> CliResult; asserts that no traceback was printed."""
    from reasonpipe.cli import main

    def run(*argv: str) -> CliResult:
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse usage errors
            code = e.code
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return CliResult(code, captured.out, captured.err)

    return run


# --- a stand-in for a downloaded pretrained model --------------------------------------------------------------

@pytest.fixture(scope="session")
def pretrained_model(tmp_path_factory) -> str:
    """The folder of a small "pretrained" Qwen2 with its own BPE tokenizer and chat template (tests/pretrained.py),
    built once per session; loaded by path exactly like a model from the hub."""
    import importlib.util as iu

    spec = iu.spec_from_file_location("pretrained_standin", TESTS / "pretrained.py")
    module = iu.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(str(tmp_path_factory.mktemp("pretrained") / "model"))
