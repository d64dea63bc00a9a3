"""Errors for bad input: one message naming the file, the line and the field.

Every reader in reasonpipe raises :class:`InputError` for input it cannot use; the CLI prints
``str(error)`` and exits with status 2, never a traceback.

Example::

    python -c "from reasonpipe.errors import InputError; print(InputError('cd.jsonl: bad', path='cd.jsonl', line=3, field='problem.target'))"
"""

from __future__ import annotations


class InputError(ValueError):
    """Input that cannot be used, located as precisely as we know (file, 1-based line, dotted field)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __reduce__(self):  # keep file/line/field when crossing a process boundary
        return (_restore, (self.message, self.path, self.line, self.field))

    def located(self, *, path: str | None = None, line: int | None = None) -> "InputError":
        """The same error with a file and line filled in where they were unknown."""
        return InputError(self.message, path=self.path or path, line=self.line or line, field=self.field)

    def __str__(self) -> str:
        where = self.path or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        field = f" field '{self.field}':" if self.field else ""
        return f"{where}:{field} {self.message}"


def _restore(message: str, path: str | None, line: int | None, field: str | None) -> InputError:
    return InputError(message, path=path, line=line, field=field)
