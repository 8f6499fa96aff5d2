"""Opening the store file and the two ways to use it: a short-lived connection, a write transaction.

Every table (runs, jobs, controls) goes through these, so the pragmas, the timeouts and the
refusal of a foreign file are decided once. A connection per operation keeps a store object
safe to share between the search thread and UI threads (sqlite3 connections are not), and WAL
lets readers in other processes read while a step is being written.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from core.errors import UserError
from core.store.schema import NotOurStore, prepare


class StoreError(UserError, LookupError):
    """A user-facing store problem (unknown run, unreadable file): one line."""


def open_store_file(path: Path) -> None:
    """Create the folder and the tables (or migrate them), and switch the file to WAL; a foreign
    file, an unreadable one or a folder that cannot be made is one StoreError line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a folder should be, no permission, ...
        raise StoreError(
            f"cannot create the folder of run store {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        with connect(path) as con:
            prepare(con, path)  # refuses a foreign file before changing it
            con.execute("PRAGMA journal_mode=WAL")
    except NotOurStore as exc:
        raise StoreError(str(exc)) from None
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open run store {path}: {exc}") from None


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection for one operation (autocommit; rows by column name), closed afterwards."""
    con = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA busy_timeout=30000")
    con.execute("PRAGMA synchronous=NORMAL")
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(path: Path) -> Iterator[sqlite3.Connection]:
    """One IMMEDIATE write transaction: committed when the block ends, rolled back if it raises."""
    with connect(path) as con:
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
