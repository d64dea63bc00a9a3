"""Which words the configured Lean and header make keywords, asked of Lean itself (and remembered).

After a parse error Lean skips to the next token that can start a command and runs that command, so a word in
a proof that the header's grammar makes a command keyword could start a second command after the theorem. A hand
list of command keywords is never complete (every library adds its own), so the guard's list is only the first
line; this module asks the Lean that will check the proofs, with the configured header, about every word a batch
uses that is neither allow-listed nor a dotted name (:func:`reasonpipe.verifiers.lean.policy.proof_words`):

- **token test** (the default mode): ``example : True := let WORD := trivial; WORD`` parses at WORD only when
  WORD is an identifier, not a reserved token of the grammar (tactic names are mostly not reserved: the policy's
  allow-list handles those). A word outside the allow-list must be an identifier, so every reserved token,
  every command keyword among them, is refused.
- **command test** (``trust_tactics``): the line ``WORD`` alone after ``set_option pp.all false`` fails at its
  first column ("expected command") unless WORD can start a command. Custom tactics are then fine; command
  keywords are not.

The probe file holds the untrusted words, but each is a single identifier-like word the guard accepted, so a word
can do no more than be (or not be) a keyword; when in doubt a word is refused (fail closed).
Answers are cached per probe object (one per verifier, so per Lean and header).

Example::

    python -c "from reasonpipe.verifiers.lean.keywords import token_probe_lines; print(token_probe_lines(['foo']))"
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence

PROBE_CHUNK = 2000  # words per probe run


TOKEN_PREFIX = "example : True := let "
TOKEN_COLUMN = len(TOKEN_PREFIX)  # where the word stands: a token fails to parse exactly there
SEPARATOR = "set_option pp.all false"  # a complete command that takes no argument from the next line


def token_probe_lines(words: Sequence[str]) -> list[str]:
    """One line per word; the line fails to parse at the word iff the word is a token (not an identifier).

    A command keyword makes Lean resume parsing at it and may spill an error into the next line, but at that
    line's first column, never at :data:`TOKEN_COLUMN`."""
    return [f"{TOKEN_PREFIX}{w} := trivial; {w}" for w in words]


def command_probe_lines(words: Sequence[str]) -> list[str]:
    """Two lines per word (a complete command that takes nothing from the next line, then the word alone): the
    word's line fails at column 0 ("expected command") iff the word cannot start a command. Word ``i`` is on
    line ``2 * i + 1`` (0-based)."""
    out = []
    for w in words:
        out += [SEPARATOR, w]
    return out


class KeywordProbe:
    """Keywords among words, asked of Lean through ``run``: lines -> {index of a line with an error: the
    columns of its errors}."""

    def __init__(self, run: Callable[[Sequence[str]], dict[int, set[int]]], *, commands_only: bool = False) -> None:
        self._run = run
        self.commands_only = commands_only
        self._known: dict[str, bool] = {}
        self._lock = threading.Lock()
        self.runs = 0

    def keywords(self, words: Iterable[str]) -> set[str]:
        """The words that are refused: tokens (default) or command starters (``commands_only``)."""
        words = set(words)
        with self._lock:
            new = sorted(w for w in words if w not in self._known)
        for i in range(0, len(new), PROBE_CHUNK):
            chunk = new[i:i + PROBE_CHUNK]
            if self.commands_only:
                failed = self._run(command_probe_lines(chunk))
                # an identifier or a non-command token fails at its own line (not a command): allowed
                found = {w: 0 not in failed.get(2 * j + 1, ()) for j, w in enumerate(chunk)}
            else:
                failed = self._run(token_probe_lines(chunk))
                found = {w: TOKEN_COLUMN in failed.get(j, ()) for j, w in enumerate(chunk)}
            with self._lock:
                self._known.update(found)
                self.runs += 1
        with self._lock:
            return {w for w in words if self._known[w]}
