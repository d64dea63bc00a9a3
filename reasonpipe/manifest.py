"""Run manifests: what produced a run folder, so a result can be traced back and reproduced.

``manifest.json`` holds the resolved config, the seed, the git revision (and whether the tree was dirty),
the versions of the packages that matter, the host, the command line and a SHA-256 of every dataset file.

Example::

    python -c "from reasonpipe.manifest import package_versions; print(package_versions())"
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from typing import Any

from reasonpipe.jsonl import atomic_write

PACKAGES = ("reasonpipe", "torch", "transformers", "tokenizers", "trl", "ray", "triton", "vllm", "numpy",
            "rich", "matplotlib", "dokusan", "pyyaml")


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision(directory: str = ".") -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def host() -> dict[str, Any]:
    return {"hostname": platform.node(), "platform": platform.platform(), "machine": platform.machine(),
            "cpus": os.cpu_count()}


def write_manifest(run_dir: str, config: dict[str, Any], seed: int, datasets: dict[str, str],
                   extra: dict[str, Any] | None = None) -> str:
    """Write ``run_dir/manifest.json`` atomically; ``datasets`` maps a name to a file path."""
    manifest = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": sys.argv,
        "seed": seed,
        "config": config,
        "git": git_revision(os.path.dirname(os.path.abspath(__file__))),
        "versions": package_versions(),
        "host": host(),
        "datasets": {name: {"path": path, "bytes": os.path.getsize(path), "sha256": file_sha256(path)}
                     for name, path in datasets.items()},
        **(extra or {}),
    }
    path = os.path.join(run_dir, "manifest.json")
    with atomic_write(path) as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return path
