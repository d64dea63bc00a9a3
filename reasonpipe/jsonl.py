"""Streaming JSON record I/O: JSONL (one object a line) or one JSON array of objects, and atomic writes.

Readers hold one record at a time, so memory stays flat on files larger than memory. Bad input
(binary data, invalid UTF-8, malformed JSON, a line longer than ``max_record_bytes``, a record that is
not an object) raises :class:`~reasonpipe.errors.InputError` naming the file and line, or, with
``skip_bad=True``, is skipped and counted. Writers go to a temporary file that is renamed into place
only when complete, so a crash never leaves a half-written file where a good one was.

Example::

    python -c "from reasonpipe.jsonl import RecordReader; print(sum(1 for _ in RecordReader('cd.jsonl')))"
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
from collections.abc import Iterator
from typing import IO

from reasonpipe.errors import InputError

MAX_RECORD_BYTES = 64 * 1024 * 1024
_CHUNK = 1 << 20
_WS = " \t\r\n"


def sniff(path: str) -> str:
    """Kind of the file's content: ``"jsonl"``, ``"json-array"`` or ``"text"``.

    Raises InputError for a missing, empty or binary file.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(8192)
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path=path) from None
    if not head.strip():
        raise InputError("empty file, no records", path=path)
    if b"\x00" in head:
        raise InputError("binary data (NUL bytes), expected UTF-8 text", path=path, line=head[:head.index(b"\x00")].count(b"\n") + 1)
    first = head.lstrip()[:1]
    if first == b"{":
        return "jsonl"
    if first == b"[":
        return "json-array"
    return "text"


class RecordReader:
    """Iterate ``(line_number, record)`` over a JSONL file or a file holding one JSON array of objects.

    With ``skip_bad`` a bad record is counted in :attr:`skipped` (first messages kept in
    :attr:`errors`) instead of raised; callers route their own validation errors through
    :meth:`reject` so that both kinds are handled alike.
    """

    def __init__(self, path: str, *, skip_bad: bool = False, max_record_bytes: int = MAX_RECORD_BYTES) -> None:
        self.path = path
        self.skip_bad = skip_bad
        self.max_record_bytes = max_record_bytes
        self.skipped = 0
        self.errors: list[str] = []
        self.records = 0

    def reject(self, error: InputError) -> None:
        """Raise ``error`` (located in this file), or count it when skipping bad records."""
        error = error.located(path=self.path)
        if not self.skip_bad:
            raise error
        self.skipped += 1
        if len(self.errors) < 20:
            self.errors.append(str(error))

    def __iter__(self) -> Iterator[tuple[int, dict]]:
        kind = sniff(self.path)
        if kind == "text":
            raise InputError("not JSON: expected one JSON object a line or a JSON array of objects", path=self.path, line=1)
        inner = self._iter_array() if kind == "json-array" else self._iter_lines()
        for line, obj in inner:
            if not isinstance(obj, dict):
                self.reject(InputError(f"expected a JSON object, got {type(obj).__name__}", line=line))
                continue
            self.records += 1
            yield line, obj

    # -- JSONL ---------------------------------------------------------------------------------------
    def _iter_lines(self) -> Iterator[tuple[int, object]]:
        limit = self.max_record_bytes
        with open(self.path, "rb") as f:
            line_no = 0
            while True:
                raw = f.readline(limit + 1)
                if not raw:
                    return
                line_no += 1
                if len(raw) > limit and not raw.endswith(b"\n"):
                    while raw and not raw.endswith(b"\n"):  # drop the rest of the over-long line
                        raw = f.readline(_CHUNK)
                    self.reject(InputError(f"line longer than {limit} bytes", line=line_no))
                    continue
                if not raw.strip():
                    continue
                obj = self._decode(raw, line_no)
                if obj is not _BAD:
                    yield line_no, obj

    def _decode(self, raw: bytes, line_no: int) -> object:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            self.reject(InputError(f"not UTF-8 text (byte {e.start}); is this a binary file?", line=line_no))
            return _BAD
        if "\x00" in text:
            self.reject(InputError("binary data (NUL bytes), expected UTF-8 text", line=line_no))
            return _BAD
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            self.reject(InputError(f"invalid JSON: {e.msg} (column {e.colno})", line=line_no))
        except ValueError as e:  # e.g. integers longer than Python's digit limit
            self.reject(InputError(f"invalid JSON: {e}", line=line_no))
        except RecursionError:
            self.reject(InputError("invalid JSON: nested too deeply", line=line_no))
        return _BAD

    # -- one JSON array ------------------------------------------------------------------------------
    def _iter_array(self) -> Iterator[tuple[int, object]]:
        decoder = json.JSONDecoder()
        utf8 = codecs.getincrementaldecoder("utf-8")()
        with open(self.path, "rb") as f:
            buf, pos, line, eof = "", 0, 1, False

            def more() -> bool:
                nonlocal buf, pos, eof
                if eof:
                    return False
                chunk = f.read(_CHUNK)
                try:
                    text = utf8.decode(chunk, final=not chunk)
                except UnicodeDecodeError:
                    raise InputError("not UTF-8 text; is this a binary file?", path=self.path, line=line) from None
                if not chunk:
                    eof = True
                if "\x00" in text:
                    raise InputError("binary data (NUL bytes), expected UTF-8 text", path=self.path, line=line)
                buf = buf[pos:] + text
                pos = 0
                return bool(chunk) or bool(text)

            def skip_ws() -> None:
                nonlocal pos, line
                while True:
                    while pos < len(buf) and buf[pos] in _WS:
                        if buf[pos] == "\n":
                            line += 1
                        pos += 1
                    if pos < len(buf) or not more():
                        return

            skip_ws()
            if buf[pos:pos + 1] != "[":
                raise InputError("expected a JSON array", path=self.path, line=line)
            pos += 1
            first = True
            while True:
                skip_ws()
                if pos >= len(buf):
                    raise InputError("unterminated JSON array (file ends before ']')", path=self.path, line=line)
                if buf[pos] == "]":
                    pos += 1
                    skip_ws()
                    if pos < len(buf):
                        raise InputError("extra data after the JSON array", path=self.path, line=line)
                    return
                if not first:
                    if buf[pos] != ",":
                        raise InputError(f"expected ',' or ']' in JSON array, got {buf[pos]!r}", path=self.path, line=line)
                    pos += 1
                    skip_ws()
                first = False
                while True:
                    try:
                        obj, end = decoder.raw_decode(buf, pos)
                        break
                    except json.JSONDecodeError as e:
                        where = line + buf.count("\n", pos, e.pos)  # before more() moves the buffer
                        if len(buf) - pos > self.max_record_bytes or not more():
                            raise InputError(f"invalid JSON: {e.msg}", path=self.path, line=where) from None
                    except ValueError as e:
                        raise InputError(f"invalid JSON: {e}", path=self.path, line=line) from None
                start_line = line
                line += buf.count("\n", pos, end)
                pos = end
                yield start_line, obj


_BAD = object()


def dumps(record: dict) -> str:
    """One record as one compact JSON line (key order as given, so output is deterministic)."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync and rename it to ``path``.

    On any exception the temporary file is removed and whatever was at ``path`` stays as it was.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
    f = open(tmp, mode, **kwargs)
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)
    except BaseException:
        f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def drop_rows_after(path: str, step: int) -> int:
    """Remove the rows of a ``metrics.jsonl`` whose ``step`` is past ``step`` (a run resumed from that
    checkpoint logs them again); atomic. Returns how many were dropped."""
    if not os.path.exists(path):
        return 0
    with open(path, encoding="utf-8") as f:
        rows = [line for line in f if line.strip()]
    keep = [line for line in rows if json.loads(line).get("step", 0) <= step]
    if len(keep) != len(rows):
        with atomic_write(path) as f:
            f.writelines(keep)
    return len(rows) - len(keep)
