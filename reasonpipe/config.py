"""Typed configs: dataclasses loaded from YAML, with ``--key value`` overrides (dotted keys, list indices).

Values are type-checked against the dataclass annotations, nested dataclasses (a job's blocks) included, and a
dataclass's ``__post_init__`` may raise :class:`InputError` for a field of its own (a task's options checked
against the task): every error names the file, the YAML line and the dotted field, and comes at load, before
any work. Override values are read as YAML scalars (``--workers 2``, ``--datasets.0.n 100``,
``--options.split test_target``).

Shared blocks: a YAML value ``!include tasks/countdown-3.yaml`` is the document of that file, read relative to
the including file (``configs/tasks/`` holds the shared task options); ``<<: !include FILE`` merges it into a
mapping that adds or changes keys (``{<<: !include tasks/countdown-3.yaml, split: test_target}``). Errors
inside an included file name that file and its line.

A job's block of another stage's fields (the pipeline's SFT settings) is :func:`settings_block`: the stage
config's fields, less those the job fills itself, with those it passes down left optional.

Example::

    reasonpipe pipeline --config configs/demo-cpu.yaml --seed 3 --datasets.0.n 100
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import yaml

from reasonpipe.errors import InputError

T = TypeVar("T")
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
INCLUDE = "!include"


# -- YAML with !include --------------------------------------------------------------------------------

def _read(path: str, mark: yaml.Mark | None = None) -> str:
    where = {"path": mark.name, "line": mark.line + 1} if mark else {"path": path}
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        what = f"cannot include {path}" if mark else "cannot read config"
        raise InputError(f"{what}: {e.strerror}", **where) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", path=path) from None


def _yaml_error(e: yaml.YAMLError, path: str) -> InputError:
    mark = getattr(e, "problem_mark", None)
    return InputError(f"invalid YAML: {getattr(e, 'problem', None) or e}", path=mark.name if mark else path,
                      line=mark.line + 1 if mark else None)


def compose(path: str, _mark: yaml.Mark | None = None, _stack: tuple[str, ...] = ()) -> yaml.Node | None:
    """The YAML node tree of the file ``path``, every ``!include FILE`` value replaced by the tree of ``FILE``
    (relative to the including file); each node's marks name the file it came from."""
    text = _read(path, _mark)
    loader = yaml.SafeLoader(text)
    loader.name = path  # marks (and so errors) name the file
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as e:
        raise _yaml_error(e, path) from None
    finally:
        loader.dispose()
    if node is None:
        return None
    stack = (*_stack, os.path.realpath(path))

    def resolve(child: yaml.Node) -> yaml.Node:
        if not (isinstance(child, yaml.ScalarNode) and child.tag == INCLUDE):
            walk(child)
            return child
        target = os.path.join(os.path.dirname(path), child.value)
        if os.path.realpath(target) in stack:
            raise InputError(f"{INCLUDE} {child.value}: includes itself", path=path, line=child.start_mark.line + 1)
        included = compose(target, child.start_mark, stack)
        if included is None:
            raise InputError(f"{INCLUDE} {child.value}: an empty file", path=path, line=child.start_mark.line + 1)
        return included

    def walk(node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            node.value = [(key, resolve(value)) for key, value in node.value]
        elif isinstance(node, yaml.SequenceNode):
            node.value = [resolve(value) for value in node.value]

    return resolve(node)


def _construct(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise _yaml_error(e, node.start_mark.name) from None
    finally:
        loader.dispose()


def load_yaml(path: str) -> tuple[Any, dict[str, tuple[str, int]]]:
    """The data of a YAML file (``!include`` resolved) and, for every dotted key path, the file and 1-based line
    it was written on."""
    node = compose(path)
    lines: dict[str, tuple[str, int]] = {}
    if node is None:
        return None, lines
    _lines(node, "", lines)
    return _construct(node), lines


def _lines(node: yaml.Node, prefix: str, out: dict[str, tuple[str, int]]) -> None:
    """Map every dotted key path of a composed YAML document to its file and 1-based line."""
    out[prefix] = (node.start_mark.name, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        merged = [v for k, v in node.value if k.tag == "tag:yaml.org,2002:merge"]
        for value in merged:  # <<: a mapping (or a list of them): its keys, unless written here too
            for m in (value.value if isinstance(value, yaml.SequenceNode) else [value]):
                _lines(m, prefix, out)
        out[prefix] = (node.start_mark.name, node.start_mark.line + 1)
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                continue
            path = f"{prefix}.{key.value}" if prefix else str(key.value)
            for old in [k for k in out if k.startswith(path + ".")]:  # a merged key written here again
                del out[old]
            out[path] = (key.start_mark.name, key.start_mark.line + 1)
            _lines(value, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _lines(value, f"{prefix}.{i}" if prefix else str(i), out)


# -- overrides -----------------------------------------------------------------------------------------

def read_value(text: str) -> Any:
    """A command-line value read as YAML (``3`` -> 3, ``[1, 2]`` -> a list); text that is not YAML stays text."""
    if text == "":
        return ""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


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
        out[key.replace("-", "_")] = read_value(value)
        i += 1
    return out


def _set(data: Any, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = data
    for j, part in enumerate(parts[:-1]):
        key: Any = int(part) if isinstance(cur, list) and part.isdigit() else part
        if isinstance(cur, dict) and cur.get(key) is None and not parts[j + 1].isdigit():
            cur[key] = {}  # a new mapping, e.g. --options.split test_target
            cur = cur[key]
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


# -- building a dataclass from data ----------------------------------------------------------------------

def coerce(value: Any, tp: Any, field: str = "") -> Any:
    """``value`` checked against the annotation ``tp`` (ints taken as floats where a float is wanted, mappings
    built into dataclasses); InputError naming ``field`` otherwise."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        if len(args) == 2 and type(None) in args:  # Optional[X]: X's own error, naming its own field
            return coerce(value, next(a for a in args if a is not type(None)), field)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, field)
            except InputError as e:
                errors.append(e.message)
        raise InputError("; ".join(errors), field=field or None)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, field)
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise InputError(f"expected a list, got {type(value).__name__}", field=field or None)
        return [coerce(v, item, f"{field}.{i}" if field else str(i)) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise InputError(f"expected a mapping, got {type(value).__name__}", field=field or None)
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is not Any:
            return {k: coerce(v, args[1], f"{field}.{k}" if field else str(k)) for k, v in value.items()}
        return dict(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _FLOAT.fullmatch(value):  # YAML 1.1 reads 3e-3 as a string
        return float(value)
    if tp in (int, float, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise InputError(f"expected {tp.__name__}, got {type(value).__name__} {value!r:.40}", field=field or None)
        return value
    return value


def _join(prefix: str, name: str | None) -> str | None:
    if not name:
        return prefix or None
    return f"{prefix}.{name}" if prefix else name


def build(cls: type[T], data: Any, prefix: str = "") -> T:
    """An instance of dataclass ``cls`` from a mapping, every field type-checked (nested dataclasses too) and
    ``cls``'s own checks (``__post_init__``) run, errors naming the dotted field under ``prefix``."""
    if not isinstance(data, dict):
        raise InputError(f"expected a mapping, got {type(data).__name__}", field=prefix or None)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        filled: Mapping[str, str] = getattr(cls, "filled", {})
        name = str(unknown[0])
        if name in filled:
            raise InputError(f"not a key of this block: {filled[name]}", field=_join(prefix, name))
        raise InputError(f"unknown key (known: {', '.join(fields)})", field=_join(prefix, name))
    values = {}
    for name, f in fields.items():
        if name in data:
            values[name] = coerce(data[name], hints[name], _join(prefix, name) or "")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise InputError("missing", field=_join(prefix, name))
    try:
        return cls(**values)
    except InputError as e:  # a check of the dataclass itself, naming one of its fields
        raise InputError(e.message, field=_join(prefix, e.field)) from None


def load_config(cls: type[T], path: str | None, overrides: Sequence[str] | dict[str, Any] = ()) -> T:
    """Load ``cls`` from a YAML file (or defaults when ``path`` is None) and apply overrides."""
    data: Any = {}
    lines: dict[str, tuple[str, int]] = {}
    if path is not None:
        data, lines = load_yaml(path)
        data = {} if data is None else data
    items = overrides.items() if isinstance(overrides, dict) else parse_overrides(overrides).items()
    for key, value in sorted(items, key=lambda kv: kv[0].count(".")):  # --a {...} before --a.b x
        _seed_default(cls, data, key)
        _set(data, key, value)
        for old in [k for k in lines if k == key or k.startswith(key + ".")]:
            del lines[old]
    try:
        return build(cls, data)
    except InputError as e:
        where = (path or "<defaults>", None)
        if e.field:
            parts = e.field.split(".")
            while parts:  # the closest enclosing key that has a line
                if ".".join(parts) in lines:
                    where = lines[".".join(parts)]
                    break
                parts.pop()
        raise InputError(e.message, path=where[0], line=where[1], field=e.field) from None


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


def helptext(text: str) -> dict[str, str]:
    """A field's metadata with its ``--help`` text: ``field(default=1, metadata=helptext("..."))``."""
    return {"help": " ".join(text.split())}


# -- a job's block of another config's fields ------------------------------------------------------------

class SettingsBlock:
    """Base of the classes :func:`settings_block` makes: ``source`` is the config they stand for, ``filled``
    the fields the job sets itself (name -> who sets it), ``inherited`` those that take the job's value when
    left unset (name -> whose value)."""

    source: ClassVar[type]
    filled: ClassVar[Mapping[str, str]]
    inherited: ClassVar[Mapping[str, str]]

    def __post_init__(self) -> None:  # the source's own checks (a task's options), on the values set here
        self.resolve({}, **{name: _default_of(self.source, name) for name in self.filled})

    def resolve(self, inherit: Mapping[str, Any], **filled: Any) -> Any:
        """The ``source`` config: this block's values, ``inherit[name]`` where an inherited field is unset, and
        ``filled``."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        for name in self.inherited:
            if values[name] is None:
                if name in inherit:
                    values[name] = inherit[name]
                else:
                    del values[name]
        return self.source(**values, **filled)


def _default_of(cls: type, name: str) -> Any:
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def settings_block(source: type, name: str, module: str, *, filled: Mapping[str, str],
                   inherited: Mapping[str, str] | None = None) -> type:
    """A dataclass ``name`` (of module ``module``) with the fields of dataclass ``source``, their types, defaults
    and help, for a job's nested block: the fields of ``filled`` left out (a block that sets one is an
    InputError quoting ``filled[field]``), those of ``inherited`` optional, None meaning the job's value
    (``inherited[field]`` says whose, in the help). ``block.resolve(inherit, **filled)`` is the ``source``
    config. ``source`` is defined once; the block follows it."""
    inherited = inherited or {}
    hints = typing.get_type_hints(source)
    specs: list[tuple[str, Any, Any]] = []
    for f in dataclasses.fields(source):
        if f.name in filled:
            continue
        text = f.metadata.get("help", "")
        if f.name in inherited:
            meta = {**f.metadata, "help": f"{text} (unset: {inherited[f.name]})"}
            specs.append((f.name, hints[f.name] | None, dataclasses.field(default=None, metadata=meta)))
        elif f.default_factory is not dataclasses.MISSING:
            specs.append((f.name, hints[f.name], dataclasses.field(default_factory=f.default_factory,
                                                                   metadata=f.metadata)))
        else:
            specs.append((f.name, hints[f.name], dataclasses.field(default=f.default, metadata=f.metadata)))
    namespace = {"__module__": module, "source": source, "filled": dict(filled), "inherited": dict(inherited),
                 "__doc__": f"The fields of {source.__module__}.{source.__qualname__} but "
                            f"{', '.join(filled)}, which the job fills."}
    return dataclasses.make_dataclass(name, specs, bases=(SettingsBlock,), namespace=namespace)
