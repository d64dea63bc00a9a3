#!/usr/bin/env python3
"""A stand-in for the leanprover-community/repl executable (tests only): it replays recorded exchanges
(``--golden NAME``) or evaluates commands with the fake Lean's judge (``--evaluate``).

``NAME.in`` holds the requests and ``NAME.expected.out`` the real REPL's replies, as JSON objects separated by
blank lines (the REPL's own test files). The fake reads requests framed as the real REPL reads them (lines
joined without their newlines until a blank line; a blank line before any request is a parse error that
makes the real REPL exit), checks that each equals the next recorded request (as parsed JSON), and writes the
recorded reply followed by a blank line. A request that does not match gets the reply
``{"message": "fake: unexpected request ..."}`` so that a test fails loudly, and the recording does not advance.

Failure modes, each counted in replies served by this process (K = 0: the first request):

- ``--crash-after K``: on the next request, write to stderr and exit with ``--exit-code`` (default 137);
- ``--hang-after K``: on the next request, sleep forever;
- ``--garbage-after K``: answer the next request with text that is not JSON;
- ``--oom-after K``: on the next request, write Lean's ``INTERNAL PANIC: out of memory`` to stderr, exit 1;
- ``--repeat-last``: once the recording is used up, replay its last exchange for every further request.

``--evaluate`` (instead of ``--golden``) answers the REPL protocol with fakelean_core.py's judge (the same one
as fake_lean.py, in the current style): ``{"cmd": text}`` runs text (its ``import`` header, if any) in a fresh
environment, ``{"cmd": text, "env": n}`` extends environment n, ``{"path": file, "env"?: n}`` runs a file;
every command gets a new environment number, also when it has errors (a declaration with an error is added,
depending on ``sorryAx``, as the real REPL's error recovery does). Replies are
``{"sorries": [...], "messages": [{"severity", "pos", "endPos", "data"}], "env": n}`` (empty lists left out),
messages at their positions in that command (a ``trace`` in command 2 is in command 2's reply). ``{"pickleTo":
path, "env": n}`` writes environment n as a fake olean (replies ``{"env": n}``; fake_lean4checker.py replays
it), ``{"unpickleEnvFrom": path}`` reads one back. An unknown environment is ``{"message": "Unknown
environment."}``; tactic mode is not supported. The failure modes above apply in both modes. Started through a
link whose name contains ``eval`` (e.g. ``repl-eval``), ``--evaluate`` is the default.

Example::

    printf '{"cmd": "def f := 37"}\\n\\n' | python3 tests/lean/fakes/fake_repl.py --golden def_eval
    printf '{"cmd": "theorem t : 2 + 2 = 4 := by decide"}\\n\\n' | python3 tests/lean/fakes/fake_repl.py --evaluate
"""

from __future__ import annotations

import json
import os
import sys
import time

# Only json, os, sys and time: this starts once per test that talks to a REPL, and argparse, re and pathlib
# would more than double its start-up time.

# <repo>/tests/lean/fakes/fake_repl.py -> <repo>/tests/lean/data/repl-golden (a copy of ../shared/lean)
_LEAN_TESTS = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
DEFAULT_DIR = os.path.join(_LEAN_TESTS, "data", "repl-golden")

USAGE = ("usage: fake_repl.py (--golden NAME [--dir DIR] [--repeat-last] | --evaluate) [--crash-after K] "
         "[--exit-code N] [--hang-after K] [--garbage-after K] [--oom-after K]")
_VALUED = {"--golden": str, "--dir": str, "--crash-after": int, "--exit-code": int, "--hang-after": int,
           "--garbage-after": int, "--oom-after": int}
_FLAGS = {"--repeat-last", "--evaluate"}


def parse_args(argv: list[str]) -> dict:
    """The options as a dict keyed by option name ("--golden": "readme", ...); exit 2 with the usage if bad."""
    options: dict = {"--dir": DEFAULT_DIR, "--exit-code": 137}
    args = iter(argv)
    for arg in args:
        if arg in _FLAGS:
            options[arg] = True
        elif arg in _VALUED and (value := next(args, None)) is not None:
            try:
                options[arg] = _VALUED[arg](value)
            except ValueError:
                die(2, f"fake: {arg} needs an integer, got {value!r}\n{USAGE}")
        else:
            die(2, f"fake: bad argument {arg!r}\n{USAGE}")
    if "--golden" not in options and "eval" in os.path.basename(sys.argv[0]):
        options["--evaluate"] = True  # a link named like `repl-eval`: evaluating is the default (no arguments)
    if ("--golden" in options) == ("--evaluate" in options):
        die(2, USAGE)
    return options


def blocks(path: str) -> list[str]:
    """The blank-line separated blocks of a golden file."""
    found: list[str] = []
    current: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f.read().split("\n") + [""]:
            if line.strip():
                current.append(line)
            elif current:
                found.append("\n".join(current))
                current = []
    return found


def read_request(stdin) -> str | None:
    """The next request's text, read the real REPL's way; None at end of input."""
    lines: list[str] = []
    while True:
        line = stdin.readline()
        if line == "":
            return None
        if line.strip():
            lines.append(line.rstrip())  # the REPL joins lines after trimming them on the right
        elif lines:
            return "".join(lines)
        else:  # the real REPL tries to parse the lone blank line, fails and exits
            die(1, 'uncaught exception: {"message": "Could not parse JSON:\\noffset 1: unexpected end of input"}')


def die(code: int, stderr: str) -> None:
    sys.stderr.write(stderr + "\n")
    sys.stderr.flush()
    sys.exit(code)


def reply(text: str) -> None:
    sys.stdout.write(text + "\n\n")
    sys.stdout.flush()


def failure_mode(options: dict, served: int) -> bool:
    """Acts out the failure mode due at this request; True when it answered the request (with garbage)."""
    if served == options.get("--crash-after"):
        die(options["--exit-code"], f"fake: crashing on request {served + 1}")
    if served == options.get("--oom-after"):
        die(1, "INTERNAL PANIC: out of memory")
    if served == options.get("--hang-after"):
        time.sleep(1e6)
    if served == options.get("--garbage-after"):
        reply("this is not JSON")
        return True
    return False


def evaluate(options: dict) -> None:
    """The REPL protocol answered by fakelean_core's judge."""
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    from fakelean_core import Repl

    repl = Repl()
    served = 0
    while (text := read_request(sys.stdin)) is not None:
        if text.startswith("#") or text.startswith("--"):
            continue
        try:
            request = json.loads(text)
        except ValueError as e:
            die(1, f'uncaught exception: {{"message": "Could not parse JSON:\\n{e}"}}')
        if not failure_mode(options, served):
            answer = repl.handle(request) if isinstance(request, dict) else {"message": "fake: not an object"}
            reply(json.dumps(answer, ensure_ascii=False))
        served += 1


def main(argv: list[str]) -> None:
    options = parse_args(argv)
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        stream.reconfigure(encoding="utf-8")
    if "--evaluate" in options:
        return evaluate(options)
    name, directory = options["--golden"], options["--dir"]

    # strict=False: some .in files hold a raw newline inside a JSON string (the real REPL took them)
    requests = [json.loads(b, strict=False) for b in blocks(os.path.join(directory, f"{name}.in"))]
    replies = blocks(os.path.join(directory, f"{name}.expected.out"))
    if len(requests) != len(replies):
        die(2, f"fake: {name}: {len(requests)} requests but {len(replies)} replies")

    served = 0
    position = 0
    while (text := read_request(sys.stdin)) is not None:
        if text.startswith("#") or text.startswith("--"):  # the real REPL skips comment lines silently
            continue
        try:
            request = json.loads(text)
        except ValueError as e:
            die(1, f'uncaught exception: {{"message": "Could not parse JSON:\\n{e}"}}')
        if failure_mode(options, served):
            served += 1
            continue
        if position >= len(requests):
            reply(json.dumps({"message": f"fake: no more recorded exchanges for {request!r}"}))
        elif request != requests[position]:
            reply(json.dumps({"message": f"fake: unexpected request {request!r}, "
                                         f"expected {requests[position]!r}"}))
        else:
            reply(replies[position])
            position += 1
            if options.get("--repeat-last") and position == len(requests):
                position -= 1
        served += 1


if __name__ == "__main__":
    main(sys.argv[1:])
