"""reasonpipe.trl_compat: the overrides of TRL's private methods live there, behind a version check."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from reasonpipe.trl_compat import OVERRIDDEN, TESTED_TRL, check_trl

REPO = Path(__file__).resolve().parents[2]


def test_the_installed_trl_is_the_tested_one() -> None:
    import trl

    assert check_trl() == trl.__version__
    assert ".".join(trl.__version__.split(".")[:2]) in TESTED_TRL


def test_another_trl_is_refused_naming_the_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REASONPIPE_ALLOW_TRL", raising=False)
    with pytest.raises(RuntimeError) as e:
        check_trl("1.17.0")
    assert "trl 1.17.0 is installed" in str(e.value) and all(name in str(e.value) for name in OVERRIDDEN)
    assert check_trl("1.16.3") == "1.16.3"
    monkeypatch.setenv("REASONPIPE_ALLOW_TRL", "1")
    assert check_trl("1.17.0") == "1.17.0"


def test_no_other_module_subclasses_a_trl_trainer_or_overrides_its_private_methods() -> None:
    """Only trl_compat may define a subclass of a TRL trainer or a private (underscore) trainer method."""
    offenders = []
    for root in ("reasonpipe", "jobs", "searchers", "verifiers", "kernels"):
        for path in (REPO / root).rglob("*.py"):
            if path.name == "trl_compat.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    bases = [ast.unparse(b) for b in node.bases]
                    if any(b.endswith(("SFTTrainer", "GRPOTrainer")) for b in bases):
                        offenders.append(f"{path.relative_to(REPO)}: class {node.name}({', '.join(bases)})")
    assert offenders == []
