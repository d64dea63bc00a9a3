"""Install names: the wheel and the editable install put everything under ``reasonpipe.``, and both run.

The checkout keeps ``searchers/``, ``verifiers/``, ``kernels/`` and ``jobs/`` beside ``reasonpipe/``;
pyproject.toml's ``package-dir`` installs them as ``reasonpipe.searchers`` and so on, so that nothing of ours
takes a top-level name another distribution has (``verifiers`` and ``kernels`` are PyPI packages too). Here the
wheel is built from a copy of the project's files (no ``build/`` in the checkout), installed without its
dependencies into a scratch venv that borrows this environment's third-party packages (a ``.pth`` line: the
borrowed folder's own ``.pth`` files, the editable hook among them, are not run), and run from outside the
checkout: ``reasonpipe gen`` must write the same bytes as the checkout's. The editable install is tested the
same way, and so is a plain checkout on ``PYTHONPATH`` with no install (how the device scripts and Ray's
``working_dir`` run it).

Run: ``python -m pytest -q tests/architecture/test_packaging.py``
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "reasonpipe", "searchers", "verifiers", "kernels", "jobs")
GEN = ["gen", "countdown", "--n", "5", "--searcher", "dfs", "--seed", "3", "--quiet"]
IMPORTS = ("import reasonpipe, reasonpipe.verifiers.lean.guard, reasonpipe.searchers.gym, reasonpipe.jobs.tracegen, "
           "reasonpipe.kernels; print(reasonpipe.__file__); print(reasonpipe.verifiers.lean.guard.__file__); "
           "print(reasonpipe.jobs.tracegen.__file__)")


def _copy_sources(dst: Path) -> Path:
    dst.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=ignore)
        else:
            shutil.copy2(src, dst / name)
    return dst


def _scratch_venv(path: Path) -> Path:
    """A venv without pip whose site-packages borrows this environment's (one .pth line, not its .pth files)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, env=_env())
    python = path / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True, env=_env()).stdout.strip()
    Path(site, "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _pip(python: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", *args], check=True, capture_output=True, text=True, env=_env())


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without PYTHONPATH (which would put the checkout before what is under test), plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "OMP_NUM_THREADS": "1", **(extra or {})}


def _gen(command: list[str], out: Path, cwd: Path, env: dict[str, str] | None = None) -> bytes:
    r = subprocess.run([*command, *GEN, "--out", str(out)], cwd=cwd, capture_output=True, text=True, env=_env(env))
    assert r.returncode == 0, r.stderr
    return out.read_bytes()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """``reasonpipe gen`` from this checkout (the environment the tests run in)."""
    tmp = tmp_path_factory.mktemp("ref")
    return _gen([sys.executable, "-m", "reasonpipe"], tmp / "ref.jsonl", cwd=REPO)


def _imported_from(python: Path, cwd: Path, env: dict[str, str] | None = None) -> list[Path]:
    r = subprocess.run([str(python), "-c", IMPORTS], cwd=cwd, capture_output=True, text=True, env=_env(env))
    assert r.returncode == 0, r.stderr
    return [Path(line) for line in r.stdout.split()]


@pytest.mark.slow
def test_wheel_installs_everything_under_reasonpipe_and_runs(tmp_path: Path, reference: bytes) -> None:
    src = _copy_sources(tmp_path / "src")
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(dist), str(src)], check=True, capture_output=True, text=True, env=_env())
    (wheel,) = dist.glob("reasonpipe-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"reasonpipe"}, tops  # no top-level verifiers/, kernels/, searchers/, jobs/
    for module in ("reasonpipe/verifiers/lean/guard.py", "reasonpipe/searchers/gym.py", "reasonpipe/jobs/sft.py",
                   "reasonpipe/kernels/logprob.py", "reasonpipe/tasks/gym/base.py", "reasonpipe/traces/tokens.py"):
        assert module in names, module
    # every package folder of the checkout is in the wheel (a package missing from pyproject's list would not be)
    for folder in ("reasonpipe", "searchers", "verifiers", "kernels", "jobs"):
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.relative_to(REPO / folder).as_posix()
            inside = f"reasonpipe/{rel}" if folder == "reasonpipe" else f"reasonpipe/{folder}/{rel}"
            assert inside in names, inside

    python = _scratch_venv(tmp_path / "venv")
    _pip(python, str(wheel))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for path in _imported_from(python, elsewhere):
        assert (tmp_path / "venv") in path.parents, path  # the installed copy, not the checkout
    script = tmp_path / "venv" / "bin" / "reasonpipe"
    assert _gen([str(script)], elsewhere / "w.jsonl", cwd=elsewhere) == reference


@pytest.mark.slow
def test_editable_install_and_plain_checkout_map_the_same_names(tmp_path: Path, reference: bytes) -> None:
    src = _copy_sources(tmp_path / "src")
    python = _scratch_venv(tmp_path / "venv")
    _pip(python, "-e", str(src))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    paths = _imported_from(python, elsewhere)
    assert all(src in p.parents for p in paths), paths
    assert paths[1] == src / "verifiers" / "lean" / "guard.py"
    assert _gen([str(python), "-m", "reasonpipe"], elsewhere / "e.jsonl", cwd=elsewhere) == reference

    # A checkout with no install at all: PYTHONPATH names it (the device scripts; Ray's working_dir is the cwd).
    bare = _scratch_venv(tmp_path / "bare")
    paths = _imported_from(bare, elsewhere, env={"PYTHONPATH": str(src)})
    assert paths[1] == src / "verifiers" / "lean" / "guard.py" and paths[2] == src / "jobs" / "tracegen.py"
    assert _gen([str(bare), "-m", "reasonpipe"], elsewhere / "p.jsonl", cwd=elsewhere,
                env={"PYTHONPATH": str(src)}) == reference


def test_no_top_level_name_of_ours_is_importable_from_the_checkout() -> None:
    """The old top-level names are gone: ``import verifiers`` from the checkout must not find ours."""
    r = subprocess.run([sys.executable, "-c", "import importlib.util as u, sys; sys.path.remove('') if '' in "
                        "sys.path else None; print([n for n in ('verifiers', 'searchers', 'kernels', 'jobs') "
                        "if (s := u.find_spec(n)) and s.origin and s.origin.startswith(sys.argv[1])])", str(REPO)],
                       cwd="/", capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
