"""Job stages: one module per job, each with ``main(config) -> exit code`` (so it runs the same under Ray or not).

One entry style for every stage, the config a dataclass loaded from YAML with ``--key value`` overrides::

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

import ast
import dataclasses
import difflib
import inspect
import io
import json
import textwrap
import tokenize
import types
import typing
from collections.abc import Callable, Iterator, Mapping
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
            interrupted: str = "interrupted", help: Mapping[str, str] | None = None) -> int:
    """A job's command line: ``--config F`` plus ``--key value`` overrides, loaded into ``config_cls`` and
    passed to ``main``; bad input (an unknown ``--key`` included) exits 2 with one message (see
    :func:`reasonpipe.console.run_command`); ``--help`` lists the fields of ``config_cls`` (:func:`field_rows`),
    ``help`` giving the text of fields that carry none."""
    import argparse
    import os
    import sys

    from reasonpipe.config import load_config, parse_overrides
    from reasonpipe.console import run_command

    invoked = _PROG.get()
    prog = invoked or f"python -m reasonpipe.jobs.{module}"
    parser = argparse.ArgumentParser(prog=prog, add_help=False, allow_abbrev=False)
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("--config")
    args, overrides = parser.parse_known_args(argv)
    if args.help:
        sys.stdout.write(job_help(prog, module, doc, config_cls, help))
        return 0

    def run() -> int:
        values = parse_overrides(overrides)
        for key in values:
            check_override(config_cls, key)
        return main(load_config(config_cls, args.config, values))

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return run_command(invoked or name, run, interrupted)


# -- the fields of a config dataclass -------------------------------------------------------------------------

def _source_comments(cls: type) -> dict[str, str]:
    """Each field's comments in the class source: trailing, continued on the next lines (indented past the field),
    or on the lines just above it (at the field's indentation)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, tuple[int, str, bool]] = {}  # line -> (column, text, alone on its line)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                alone = not tok.line[: tok.start[1]].strip()
                comments[tok.start[0]] = (tok.start[1], tok.string.lstrip("#").strip(), alone)
        body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
    except (SyntaxError, tokenize.TokenError, IndexError, AttributeError):
        return {}
    out: dict[str, list[str]] = {}
    last: tuple[str, int] | None = None  # the previous field and its column
    prev_end = 0
    for node in body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            prev_end = node.end_lineno or node.lineno
            last = None
            continue
        name, col = node.target.id, node.col_offset
        leading = []
        for line in range(prev_end + 1, node.lineno):
            if line not in comments:
                continue
            c_col, text, alone = comments[line]
            if last and alone and c_col > last[1]:
                out.setdefault(last[0], []).append(text)  # continues the previous field's comment
            elif alone and c_col == col:
                leading.append(text)
        trailing = [comments[line][1] for line in range(node.lineno, (node.end_lineno or node.lineno) + 1)
                    if line in comments and not comments[line][2]]
        out[name] = leading + trailing
        last, prev_end = (name, col), node.end_lineno or node.lineno
    return {name: " ".join(parts) for name, parts in out.items() if parts}


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
        value = dataclasses.asdict(value)
    return json.dumps(value, default=str)  # JSON is YAML: the form --key value reads


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def field_rows(cls: type, extra_help: Mapping[str, str] | None = None,
               prefix: str = "") -> list[tuple[str, str, str, str]]:
    """``(dotted name, type, default, help)`` for every field of dataclass ``cls``, nested dataclasses (also in
    lists: ``name.N.field``) included. Help: the field's ``metadata["help"]``, else ``extra_help[name]``, else
    the field's comment in the class source."""
    extra_help = extra_help or {}
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # an annotation that does not resolve: listed as written, not recursed into
        hints = {f.name: Any for f in dataclasses.fields(cls)}
    comments = _source_comments(cls)
    rows = []
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        text = f.metadata.get("help") or extra_help.get(path) or comments.get(f.name, "")
        rows.append((path, _type_name(f, hints[f.name]), _default(f), " ".join(text.split())))
        inner = _strip_optional(hints[f.name])
        if typing.get_origin(inner) is list and typing.get_args(inner):
            inner, path = typing.get_args(inner)[0], f"{path}.N"
        if dataclasses.is_dataclass(inner):
            rows += field_rows(inner, extra_help, f"{path}.")
    return rows


def job_help(prog: str, module: str, doc: str, config_cls: type, extra_help: Mapping[str, str] | None = None) -> str:
    """The ``--help`` of a job stage: usage, the module's summary, and every config field with type, default, help."""
    rows = field_rows(config_cls, extra_help)
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


def check_override(cls: type, key: str) -> None:
    """Raise :class:`InputError` naming ``--key`` and the valid fields when ``key`` (dotted) is not a field path
    of dataclass ``cls``; free-form mappings (``dict`` fields) take any key below them."""
    from reasonpipe.errors import InputError

    tp: Any = cls
    done: list[str] = []
    for part in key.split("."):
        tp = _strip_optional(tp)
        origin = typing.get_origin(tp)
        where = ".".join(done)
        if dataclasses.is_dataclass(tp):
            names = [f.name for f in dataclasses.fields(tp)]
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
        elif tp is Any or tp is dict or origin is dict:
            return
        else:
            raise InputError(f"{where} ({getattr(tp, '__name__', tp)}) has no field {part!r}", path=f"--{key}")
        done.append(part)
