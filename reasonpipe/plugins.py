"""Plug-ins: a config's ``task``, ``searcher``, ``verifier`` or ``reward`` given as ``module:attr`` names the
user's own code instead of a built-in name (``docs/plugins.md``; ``examples/plugins/`` is a worked example).

:func:`load_object` imports ``module`` (as Python imports anything: it must be on ``sys.path``, e.g. through
``PYTHONPATH``) and returns its attribute ``attr`` (dotted for a nested one, ``module:Outer.inner``); every failure
is an :class:`~reasonpipe.errors.InputError` naming the config field: the module cannot be imported (with the
ImportError's message, so a missing dependency of the plug-in shows as such), the attribute is missing, or it is
not callable. What each kind must further provide (a task's contract, a verifier's ``verify``/``report``) is
checked where that kind is looked up (:mod:`reasonpipe.tasks`, :mod:`reasonpipe.verifiers`).

It keeps no registry and no cache of its own beyond Python's ``sys.modules``. Naming a module imports it, which
runs its code: a config, or a trace file whose records name a plug-in task, is trusted as the code it names.

Example::

    python -c "from reasonpipe.plugins import load_object; print(load_object('math:hypot', field='reward', kind='reward')(3, 4))"
"""

from __future__ import annotations

import importlib
from typing import Any

from reasonpipe.errors import InputError


def is_plugin(spec: Any) -> bool:
    """Whether ``spec`` names a plug-in (``module:attr``) rather than a built-in name."""
    return isinstance(spec, str) and ":" in spec


def split_spec(spec: str, field: str, kind: str) -> tuple[str, str]:
    """``"pkg.mod:Attr"`` -> ``("pkg.mod", "Attr")``; InputError naming ``field`` for any other shape."""
    module, sep, attr = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if not sep or not module.strip() or not attr.strip() or ":" in attr:
        raise InputError(f"expected module:attr for a plug-in {kind}, got {spec!r}", field=field)
    return module.strip(), attr.strip()


def load_object(spec: str, field: str, kind: str) -> Any:
    """The callable that ``spec`` (``module:attr``) names, for the config field ``field`` (its error names it);
    ``kind`` says what it should be in messages ("task class", "searcher", "verifier", "reward")."""
    module_name, attr = split_spec(spec, field, kind)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise InputError(f"cannot import module {module_name!r} of the plug-in {kind} {spec!r}: {e} (is its folder "
                         f"on PYTHONPATH?)", field=field) from None
    except SyntaxError as e:
        raise InputError(f"cannot import module {module_name!r} of the plug-in {kind} {spec!r}: {e.msg} "
                         f"({e.filename}:{e.lineno})", field=field) from None
    obj: Any = module
    for i, part in enumerate(attr.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            owner = module_name if i == 0 else f"{module_name}:{'.'.join(attr.split('.')[:i])}"
            raise InputError(f"{owner} has no attribute {part!r} (the plug-in {kind} {spec!r})", field=field) from None
    if not callable(obj):
        raise InputError(f"{spec} is a {type(obj).__name__}, not a {kind} (expected a class or a function)",
                         field=field)
    return obj
