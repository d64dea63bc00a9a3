"""Job stages: one module per job, each with ``main(config) -> exit code`` (so it runs the same under Ray or not).

One entry style for every stage, the config a dataclass loaded from YAML with ``--key value`` overrides (an
argparse parser generated from the dataclass, :func:`config_parser`: a flag per field, nested blocks dotted)::

    reasonpipe <stage> --config F [--key value ...]          # the command line
    reasonpipe <stage> --help                                 # the stage's fields: type, default, help
    reasonpipe submit <stage> --config F [--key value ...]   # the same stage as a Ray job (jobs/submit.py)
    python -m reasonpipe.jobs.<module> --config F [--key value ...]     # the module form: the same, without the CLI

The stages (:data:`STAGES`): tracegen, verify, sft, rl, eval (module ``evaluation``), latent, ksweep, pipeline,
search. ``reasonpipe gen TASK``, ``reasonpipe verify FILE`` and ``reasonpipe search evolve`` stay the interactive
tools; given ``--config`` they run the tracegen, verify and search stages. ``reasonpipe cache stats|clear PATH``
stays a tool only: it inspects one file and makes nothing a stage could reuse.

Example::

    reasonpipe pipeline --config configs/demo-cpu.yaml --datasets.0.n 100
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import json
import textwrap
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

# Stage name (``reasonpipe <stage>``) -> module of jobs/ (``python -m reasonpipe.jobs.<module>``).
STAGES: dict[str, str] = {"tracegen": "tracegen", "verify": "verify", "sft": "sft", "rl": "rl", "eval": "evaluation",
                          "latent": "latent", "ksweep": "ksweep", "pipeline": "pipeline", "search": "search"}

_PROG: ContextVar[str | None] = ContextVar("jobs_prog", default=None)


def stage_summary(stage: str) -> str:
    """The first sentence of the stage module's docstring, read without importing it (imports pull in torch)."""
    path = Path(__file__).resolve().parent / f"{STAGES[stage]}.py"
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError, UnicodeDecodeError):
        return ""
    first = " ".join(doc.split("\n\n")[0].split())
    return first.split(". ")[0].rstrip(".").replace("``", "`")


@contextmanager
def _invoked_as(prog: str) -> Iterator[None]:
    token = _PROG.set(prog)
    try:
        yield
    finally:
        _PROG.reset(token)


def run_stage(stage: str, argv: list[str], prog: str | None = None) -> int:
    """``reasonpipe <stage> ARGV``: the stage module's ``cli(argv)``, its messages naming ``prog``."""
    import importlib

    module = importlib.import_module(f"reasonpipe.jobs.{STAGES[stage]}")
    with _invoked_as(prog or f"reasonpipe {stage}"):
        return module.cli(argv)


def run_job(name: str, module: str, doc: str, config_cls: type, main: Callable[[Any], int], argv: list[str] | None,
            interrupted: str = "interrupted") -> int:
    """A job's command line: ``--config F`` plus ``--field value`` flags generated from ``config_cls``
    (:func:`config_parser`) and dotted overrides of list and mapping entries (``--datasets.0.n 100``), loaded
    into ``config_cls`` and passed to ``main``; bad input (an unknown flag, a bad value) exits 2 with one
    message (see :func:`reasonpipe.console.run_command`); ``--help`` lists the fields of ``config_cls`` with
    their help text (:func:`field_rows`)."""
    import os
    import sys

    from reasonpipe.config import load_config
    from reasonpipe.console import run_command

    invoked = _PROG.get()
    prog = invoked or f"python -m reasonpipe.jobs.{module}"
    asks = argparse.ArgumentParser(prog=prog, add_help=False, allow_abbrev=False)
    asks.add_argument("-h", "--help", action="store_true")
    if asks.parse_known_args(argv)[0].help:  # --help wins over everything else: nothing is read
        sys.stdout.write(job_help(prog, module, doc, config_cls))
        return 0

    def run() -> int:
        path, overrides = parse_job_args(config_parser(prog, config_cls), config_cls, argv)
        return main(load_config(config_cls, path, overrides))

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return run_command(invoked or name, run, interrupted)


# -- the command line of a config dataclass -------------------------------------------------------------------

def _flag_error(message: str) -> typing.NoReturn:
    """argparse's message (``argument --lr: expected float, ...``) as one InputError naming the flag."""
    from reasonpipe.errors import InputError

    head, sep, rest = message.partition(": ")
    if head.startswith("argument ") and sep:
        raise InputError(rest, path=head[len("argument "):].split("/")[0])
    raise InputError(message)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are :class:`reasonpipe.errors.InputError` (one line, exit 2 through
    :func:`reasonpipe.console.run_command`) instead of a usage message and ``sys.exit``."""

    def error(self, message: str) -> typing.NoReturn:  # type: ignore[override]
        _flag_error(message)
        raise AssertionError("unreachable")


@dataclasses.dataclass(frozen=True, eq=False)
class _Value:
    """An argparse ``type``: the text read as YAML (kept as text for a ``str`` field) and checked against the
    field's annotation; argparse reports a bad one as ``argument --field: <why>``."""

    tp: Any

    def __call__(self, text: str) -> Any:
        from reasonpipe.config import coerce, read_value
        from reasonpipe.errors import InputError

        value = read_value(text)
        if _strip_optional(self.tp) is str and (value is not None or self.tp is str):
            value = text  # a str field takes the text as it is (``--name 2024``); null only where None is allowed
        try:
            coerce(value, self.tp)
        except InputError as e:
            raise argparse.ArgumentTypeError(e.message) from None
        return value


def flag_fields(cls: type, prefix: str = "") -> list[tuple[str, Any, dataclasses.Field]]:
    """``(dotted name, annotation, field)`` of every field of dataclass ``cls`` that a flag sets: its own and
    those of nested dataclasses (``--sft.max_steps`` of the k-sweep), not those inside lists or mappings (dotted
    overrides: ``--datasets.0.n``)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        out.append((f"{prefix}{f.name}", hints[f.name], f))
        inner = _strip_optional(hints[f.name])
        if dataclasses.is_dataclass(inner):
            out += flag_fields(inner, f"{prefix}{f.name}.")
    return out


def config_parser(prog: str, config_cls: type) -> argparse.ArgumentParser:
    """The argparse parser of ``config_cls``: ``--config F``, ``-h/--help`` and one flag per field (its
    ``--dashed-name`` too) with the field's type converter, help and default; a flag left out keeps the
    file's value (the parser's defaults are not applied, only shown)."""
    parser = _Parser(prog=prog, add_help=False, allow_abbrev=False)
    parser.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    parser.add_argument("--config", metavar="F", help="YAML file of the fields (default: none, every field at its "
                                                      "default)")
    for name, tp, f in flag_fields(config_cls):
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        parser.add_argument(*flags, dest=name, type=_Value(tp), default=argparse.SUPPRESS,
                            metavar=_type_name(f, tp).upper(),
                            help=f"{f.metadata.get('help', '')} (default: {_default(f)})".strip())
    return parser


def parse_job_args(parser: argparse.ArgumentParser, config_cls: type,
                   argv: list[str] | None) -> tuple[str | None, dict[str, Any]]:
    """``(config path, overrides)`` from a job's arguments: the flags of ``parser`` (:func:`config_parser`), and
    the rest as dotted overrides of list and mapping entries, each checked against ``config_cls``
    (:func:`check_override`, which names the valid fields) and its value against the entry's type."""
    from reasonpipe.config import coerce, parse_overrides
    from reasonpipe.errors import InputError

    args, rest = parser.parse_known_args(argv)
    given = {k: v for k, v in vars(args).items() if k not in ("help", "config")}
    for key, value in parse_overrides(rest).items():
        tp = check_override(config_cls, key)
        try:
            coerce(value, tp)
        except InputError as e:
            raise InputError(e.message, path=f"--{key}") from None
        given[key] = value
    return args.config, given


# -- the fields of a config dataclass -------------------------------------------------------------------------

def _type_name(f: dataclasses.Field, tp: Any) -> str:
    if isinstance(f.type, str):  # the annotation as written (from __future__ import annotations)
        return f.type
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if dataclasses.is_dataclass(value):
        return "its fields' defaults"
    return json.dumps(value, default=str)  # JSON is YAML: the form --key value reads


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def field_rows(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """``(dotted name, type, default, help)`` for every field of dataclass ``cls``, nested dataclasses (also in
    lists: ``name.N.field``) included; the help is the field's ``metadata["help"]``."""
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # an annotation that does not resolve: listed as written, not recursed into
        hints = {f.name: Any for f in dataclasses.fields(cls)}
    rows = []
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        rows.append((path, _type_name(f, hints[f.name]), _default(f), " ".join(f.metadata.get("help", "").split())))
        inner = _strip_optional(hints[f.name])
        if typing.get_origin(inner) is list and typing.get_args(inner):
            inner, path = typing.get_args(inner)[0], f"{path}.N"
        if dataclasses.is_dataclass(inner):
            rows += field_rows(inner, f"{path}.")
    return rows


def job_help(prog: str, module: str, doc: str, config_cls: type) -> str:
    """The ``--help`` of a job stage: usage, the module's summary, and every config field with type, default, help."""
    rows = field_rows(config_cls)
    width = min(max(len(f"--{name} {tp}") for name, tp, _, _ in rows) + 4, 46)
    summary = " ".join(doc.split("\n\n")[0].split()).replace("``", "`")
    stage = next((s for s, m in STAGES.items() if m == module), module)
    lines = [f"usage: {prog} [--config F] [--key value ...]", "", textwrap.fill(summary, 100), "", "options:",
             f"  {'-h, --help':<{width - 2}}show this help and exit",
             f"  {'--config F':<{width - 2}}YAML file of the fields below (default: none, every field at its default)",
             "", (f"fields of {config_cls.__module__}.{config_cls.__qualname__} (YAML keys, or --key value: the "
                  "value read as YAML,"),
             "nested keys dotted: --a.b value, list entries by index: --a.0.b value):"]
    for name, tp, default, text in rows:
        head = f"  --{name} {tp}"
        note = "(required)" if default == "required" else f"(default: {default})"
        if len(head) > width - 2:
            lines.append(head)
            head = ""
        wrapped = textwrap.wrap(f"{text} {note}" if text else note, max(100 - width, 40))
        lines += [f"{head if i == 0 else '':<{width}}{w}" for i, w in enumerate(wrapped)]
    lines += ["", (f"module form: python -m reasonpipe.jobs.{module} --config F [--key value ...]; "
                   f"on Ray: reasonpipe submit {stage} --config F [--key value ...]")]
    return "\n".join(lines) + "\n"


def check_override(cls: type, key: str) -> Any:
    """The annotation of the entry ``key`` (dotted) of dataclass ``cls``; :class:`InputError` naming ``--key``
    and the valid fields when ``key`` is not a field path (or names a field that the job fills itself).
    Free-form mappings (``dict`` fields) take any key below them."""
    from reasonpipe.errors import InputError

    tp: Any = cls
    done: list[str] = []
    for part in key.split("."):
        tp = _strip_optional(tp)
        origin = typing.get_origin(tp)
        where = ".".join(done)
        if dataclasses.is_dataclass(tp):
            names = [f.name for f in dataclasses.fields(tp)]
            filled = getattr(tp, "filled", {})
            if part in filled:
                raise InputError(f"not a field of this block: {filled[part]}", path=f"--{key}")
            if part not in names:
                close = difflib.get_close_matches(part, names, n=1)
                hint = f" (did you mean --{'.'.join(done + close)}?)" if close else ""
                owner = f"{where} ({tp.__name__})" if where else tp.__name__
                raise InputError(f"no such field{hint}; the fields of {owner}: {', '.join(names)}", path=f"--{key}")
            tp = typing.get_type_hints(tp)[part]
        elif origin is list:
            if not part.isdigit():
                raise InputError(f"{where} is a list: expected an index (--{where}.0...), not {part!r}",
                                 path=f"--{key}")
            tp = (typing.get_args(tp) or (Any,))[0]
        elif tp is dict or origin is dict:
            tp = typing.get_args(tp)[1] if len(typing.get_args(tp)) == 2 else Any
        elif tp is Any:
            return Any
        else:
            raise InputError(f"{where} ({getattr(tp, '__name__', tp)}) has no field {part!r}", path=f"--{key}")
        done.append(part)
    return tp
