"""Where cached fitness lives: an in-memory LRU store and a SQLite store shared by many processes.

An entry, keyed by a 16-byte functional hash, holds every fitness value seen for that behaviour (in order)
and the total seconds those evaluations took. Both stores also keep named counters (the cache's hit and
miss statistics) so that ``reasonpipe cache stats`` can report on a file that many runs have used.

:class:`SQLiteStore` uses WAL and a busy timeout, so any number of processes (e.g. Ray workers) can read
and write one file at once; every write is one transaction (a batch is one too), so a writer killed with
``kill -9`` leaves every committed entry intact and the file readable. Appending a value is a single
``INSERT ... ON CONFLICT DO UPDATE``, so concurrent evaluations of the same hash are never lost.

Example::

    python -c "from reasonpipe.fhash import SQLiteStore; s = SQLiteStore('/tmp/fh.db'); s.add(b'k' * 16, 0.5, 0.1); print(s.get(b'k' * 16))"
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from reasonpipe.errors import InputError


@dataclass(frozen=True)
class Entry:
    """Fitness values seen for one behaviour, and the seconds their evaluations took in total.

    ``evals`` and ``mean`` are computed once, when the entry is made (a lookup only reads them).
    """

    values: tuple[float, ...]
    seconds: float
    evals: int = field(init=False)
    mean: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "evals", len(self.values))
        object.__setattr__(self, "mean", math.fsum(self.values) / len(self.values))


class MemoryStore:
    """An in-process LRU store: at most ``capacity`` entries (None: unbounded), least recently used dropped."""

    def __init__(self, capacity: int | None = 1_000_000) -> None:
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity must be >= 1 or None, got {capacity}")
        self.capacity = capacity
        self._data: OrderedDict[bytes, Entry] = OrderedDict()
        self.counters: dict[str, float] = {}
        self.evicted = 0

    def get(self, key: bytes) -> Entry | None:
        entry = self._data.get(key)
        if entry is not None:
            self._data.move_to_end(key)
        return entry

    def get_many(self, keys: Iterable[bytes]) -> dict[bytes, Entry]:
        out = {}
        for k in keys:
            e = self.get(k)
            if e is not None:
                out[k] = e
        return out

    def add(self, key: bytes, value: float, seconds: float) -> Entry:
        old = self._data.get(key)
        entry = Entry((*old.values, value), old.seconds + seconds) if old else Entry((value,), seconds)
        self._data[key] = entry
        self._data.move_to_end(key)
        if self.capacity is not None and len(self._data) > self.capacity:
            self._data.popitem(last=False)
            self.evicted += 1
        return entry

    def add_many(self, items: Iterable[tuple[bytes, float, float]]) -> None:
        for key, value, seconds in items:
            self.add(key, value, seconds)

    def remove(self, key: bytes) -> bool:
        return self._data.pop(key, None) is not None

    def clear(self) -> None:
        self._data.clear()
        self.counters.clear()

    def __len__(self) -> int:
        return len(self._data)

    def evaluations(self) -> int:
        return sum(e.evals for e in self._data.values())

    def add_counters(self, delta: dict[str, float]) -> None:
        for name, value in delta.items():
            self.counters[name] = self.counters.get(name, 0) + value

    def read_counters(self) -> dict[str, float]:
        return dict(self.counters)

    def close(self) -> None:
        """Nothing to release (present so every store closes alike)."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key BLOB PRIMARY KEY,      -- 16-byte functional hash
    vals BLOB NOT NULL,        -- fitness values seen, little-endian float64 each, in order
    seconds REAL NOT NULL,     -- total seconds of those evaluations
    updated REAL NOT NULL      -- unix time of the last change
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""
_UPSERT = ("INSERT INTO entries (key, vals, seconds, updated) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
           "vals = CAST(vals || excluded.vals AS BLOB), seconds = seconds + excluded.seconds, "  # || gives TEXT
           "updated = excluded.updated")
_FORMAT = "reasonpipe-fhash-1"
_pack = struct.Struct("<d").pack


def _entry(vals: bytes, seconds: float) -> Entry:
    return Entry(struct.unpack(f"<{len(vals) // 8}d", vals), seconds)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken up front (BEGIN IMMEDIATE) so concurrent writers queue, not deadlock."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SQLiteStore:
    """Entries in one SQLite file (WAL), shared safely by threads and processes.

    Each thread of each process gets its own connection (made lazily, so a store object can cross a
    ``fork`` or a pickle to a Ray worker by path).
    """

    def __init__(self, path: str, timeout: float = 60.0) -> None:
        self.path = os.fspath(path)
        self.timeout = timeout
        self._local = threading.local()
        self._connect()  # fail now, with a clear message, if the file is not a usable store

    def __getstate__(self) -> dict:
        return {"path": self.path, "timeout": self.timeout}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["timeout"])

    def _connect(self) -> sqlite3.Connection:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        try:
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable against process crashes
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
            if row is None:
                conn.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('format', ?)", (_FORMAT,))
            elif row[0] != _FORMAT:
                raise InputError(f"a cache of format {row[0]!r}, expected {_FORMAT!r}", path=self.path)
        except sqlite3.DatabaseError as e:
            raise InputError(f"not a reasonpipe cache (SQLite: {e})", path=self.path) from None
        local.conn, local.pid = conn, os.getpid()
        return conn

    def get(self, key: bytes) -> Entry | None:
        row = self._connect().execute("SELECT vals, seconds FROM entries WHERE key = ?", (key,)).fetchone()
        return None if row is None else _entry(row[0], row[1])

    def get_many(self, keys: Iterable[bytes]) -> dict[bytes, Entry]:
        keys = list(keys)
        conn = self._connect()
        out: dict[bytes, Entry] = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            sql = f"SELECT key, vals, seconds FROM entries WHERE key IN ({','.join('?' * len(part))})"
            for key, vals, seconds in conn.execute(sql, part):
                out[key] = _entry(vals, seconds)
        return out

    def add(self, key: bytes, value: float, seconds: float) -> Entry:
        """Append one fitness value (one transaction); returns the entry as it now stands."""
        row = self._connect().execute(_UPSERT + " RETURNING vals, seconds",
                                      (key, _pack(value), seconds, time.time())).fetchone()
        return _entry(row[0], row[1])

    def add_many(self, items: Iterable[tuple[bytes, float, float]]) -> None:
        """Append many values in one transaction: all of them are committed, or none."""
        now = time.time()
        rows = [(key, _pack(value), seconds, now) for key, value, seconds in items]
        with _transaction(self._connect()) as conn:
            conn.executemany(_UPSERT, rows)

    def remove(self, key: bytes) -> bool:
        return self._connect().execute("DELETE FROM entries WHERE key = ?", (key,)).rowcount > 0

    def clear(self) -> None:
        with _transaction(self._connect()) as conn:
            conn.execute("DELETE FROM entries")
            conn.execute("DELETE FROM counters")

    def __len__(self) -> int:
        return self._connect().execute("SELECT count(*) FROM entries").fetchone()[0]

    def evaluations(self) -> int:
        return int(self._connect().execute("SELECT coalesce(sum(length(vals)), 0) / 8 FROM entries").fetchone()[0])

    def add_counters(self, delta: dict[str, float]) -> None:
        with _transaction(self._connect()) as conn:
            conn.executemany("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET "
                             "value = value + excluded.value", list(delta.items()))

    def read_counters(self) -> dict[str, float]:
        return dict(self._connect().execute("SELECT name, value FROM counters ORDER BY name"))

    def check(self) -> str:
        """SQLite's integrity check of the file ("ok" when sound)."""
        return self._connect().execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local = threading.local()
