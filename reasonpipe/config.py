"""Typed configs: dataclasses loaded from YAML, with ``--key value`` overrides (dotted keys, list indices).

Values are type-checked against the dataclass annotations; a wrong type or an unknown key is an
InputError naming the file, the YAML line and the field. Override values are read as YAML scalars
(``--workers 2``, ``--datasets.0.n 100``, ``--options.split test_target``).

Example::

    reasonpipe pipeline --config configs/demo-cpu.yaml --seed 3 --datasets.0.n 100
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

import yaml

from reasonpipe.errors import InputError

T = TypeVar("T")
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _lines(node: yaml.Node, prefix: str, out: dict[str, int]) -> None:
    """Map every dotted key path of a composed YAML document to its 1-based line."""
    out[prefix] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = f"{prefix}.{key.value}" if prefix else str(key.value)
            out[path] = key.start_mark.line + 1
            _lines(value, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _lines(value, f"{prefix}.{i}" if prefix else str(i), out)


def parse_overrides(args: Sequence[str]) -> dict[str, Any]:
    """``["--a.b", "3", "--c=x"]`` -> ``{"a.b": 3, "c": "x"}`` (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise InputError(f"expected --key value, got {arg!r}", field="overrides")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args):
                raise InputError(f"--{key} needs a value", field=key)
            value = args[i + 1]
            i += 1
        try:
            out[key.replace("-", "_")] = yaml.safe_load(value) if value != "" else ""
        except yaml.YAMLError:
            out[key.replace("-", "_")] = value
        i += 1
    return out


def _set(data: Any, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = data
    for j, part in enumerate(parts[:-1]):
        key: Any = int(part) if isinstance(cur, list) and part.isdigit() else part
        if isinstance(cur, dict) and key not in cur and not parts[j + 1].isdigit():
            cur = cur.setdefault(key, {})  # a new mapping, e.g. --options.split test_target
            continue
        try:
            cur = cur[key]
        except (IndexError, KeyError, TypeError):
            raise InputError("no such entry to override", field=".".join(parts[: j + 1])) from None
    last = parts[-1]
    if isinstance(cur, list):
        if not last.isdigit() or int(last) >= len(cur):
            raise InputError("no such list entry to override", field=dotted)
        cur[int(last)] = value
    elif isinstance(cur, dict):
        cur[last] = value
    else:
        raise InputError("cannot override inside a scalar", field=dotted)


def _coerce(value: Any, tp: Any, field: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, field)
            except InputError as e:
                errors.append(e.message)
        raise InputError("; ".join(errors), field=field)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, field)
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise InputError(f"expected a list, got {type(value).__name__}", field=field)
        return [_coerce(v, item, f"{field}.{i}") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise InputError(f"expected a mapping, got {type(value).__name__}", field=field)
        return dict(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _FLOAT.fullmatch(value):  # YAML 1.1 reads 3e-3 as a string
        return float(value)
    if tp in (int, float, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise InputError(f"expected {tp.__name__}, got {type(value).__name__} {value!r:.40}", field=field)
        return value
    return value


def build(cls: type[T], data: Any, prefix: str = "") -> T:
    """An instance of dataclass ``cls`` from a mapping, every field type-checked."""
    if not isinstance(data, dict):
        raise InputError(f"expected a mapping, got {type(data).__name__}", field=prefix or None)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise InputError(f"unknown key (known: {', '.join(fields)})", field=where)
    values = {}
    for name, f in fields.items():
        path = f"{prefix}.{name}" if prefix else name
        if name in data:
            values[name] = _coerce(data[name], hints[name], path)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise InputError("missing", field=path)
    return cls(**values)


def load_config(cls: type[T], path: str | None, overrides: Sequence[str] | dict[str, Any] = ()) -> T:
    """Load ``cls`` from a YAML file (or defaults when ``path`` is None) and apply overrides."""
    data: Any = {}
    lines: dict[str, int] = {}
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise InputError(f"cannot read config: {e.strerror}", path=path) from None
        except UnicodeDecodeError:
            raise InputError("not UTF-8 text", path=path) from None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise InputError(f"invalid YAML: {getattr(e, 'problem', e)}", path=path,
                             line=mark.line + 1 if mark else None) from None
        if node is not None:
            _lines(node, "", lines)
        data = {} if data is None else data
    items = overrides.items() if isinstance(overrides, dict) else parse_overrides(overrides).items()
    for key, value in items:
        _seed_default(cls, data, key)
        _set(data, key, value)
        lines.pop(key, None)
    try:
        return build(cls, data)
    except InputError as e:
        line = None
        if e.field:
            parts = e.field.split(".")
            while parts and line is None:  # the closest enclosing key that has a line
                line = lines.get(".".join(parts))
                parts.pop()
        raise InputError(e.message, path=path or "<defaults>", line=line, field=e.field) from None


def _seed_default(cls: type, data: dict[str, Any], key: str) -> None:
    """Before ``--a.b value`` changes part of field ``a`` that the file does not set, put ``a``'s default there,
    so the override edits the default (``--eval_sets.larger.nodes 10`` keeps the other sets) instead of
    replacing it with the one key."""
    top = key.split(".")[0]
    if "." not in key or top in data or not dataclasses.is_dataclass(cls):
        return
    for f in dataclasses.fields(cls):
        if f.name == top and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
            if isinstance(default, (dict, list)):
                data[top] = copy.deepcopy(default)


def to_dict(config: Any) -> dict[str, Any]:
    """The resolved config as plain data (for manifests)."""
    return dataclasses.asdict(config)
