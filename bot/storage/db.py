"""SQLite connection, pragmas and schema migrations (PRAGMA user_version)."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)


def migrations() -> list[tuple[int, str]]:
    """(version, sql) for every file in migrations/, in order. File names start with NNNN_."""
    folder = resources.files("bot.storage") / "migrations"
    found = []
    for item in folder.iterdir():
        if item.name.endswith(".sql"):
            found.append((int(item.name.split("_", 1)[0]), item.read_text(encoding="utf-8")))
    return sorted(found)


LATEST_VERSION = max(v for v, _ in migrations())
LOCKED_TRIES = 6  # start-up waits this many busy timeouts (30 s) for another writer


class DatabaseUnavailable(Exception):
    """The database cannot be opened or written: one clear line, not a traceback."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"cannot use the database at {path}: {reason}")


class Database:
    """One aiosqlite connection in WAL mode; writes go through `transaction()`."""

    def __init__(self, conn: aiosqlite.Connection, path: Path | str) -> None:
        self.conn = conn
        self.path = path
        # One connection is shared by every task: the lock keeps one task's BEGIN from
        # landing inside another's open transaction (and its rollback from undoing ours).
        self.lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str, *, migrate: bool = True) -> Database:
        """Open (creating the file and its folder) and migrate; DatabaseUnavailable with the
        reason when the folder is a file, the file read-only, or another writer holds it."""
        try:
            if str(path) != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = await aiosqlite.connect(str(path), isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise DatabaseUnavailable(path, _reason(exc)) from None
        conn.row_factory = aiosqlite.Row
        db = cls(conn, path)
        try:
            await conn.execute("PRAGMA busy_timeout=5000")
            await db._retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are overwritten, not left readable in free pages (/mydata delete).
            await conn.execute("PRAGMA secure_delete=ON")
            if migrate:
                await db._retry_locked(db.migrate)
            else:
                await db.ping()
        except sqlite3.Error as exc:
            await conn.close()
            raise DatabaseUnavailable(path, _reason(exc)) from None
        return db

    async def _retry_locked(self, work: Any) -> Any:
        for attempt in range(LOCKED_TRIES):
            try:
                return await work()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == LOCKED_TRIES - 1:
                    raise
                log.warning("event=database_locked attempt=%d; waiting", attempt + 1)
        return None

    def usable(self) -> str | None:
        """Why the file cannot be relied on now (its folder deleted, made read-only), or
        None. An open SQLite file whose folder was deleted still accepts writes, to an
        unlinked file: lost at exit. The health check asks this."""
        if str(self.path) == ":memory:":
            return None
        path = Path(self.path)
        if not path.exists():
            return "the database file is gone"
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
            return "the database file or its folder is read-only"
        return None

    async def checkpoint(self) -> None:
        """Move the WAL into the file and empty it (after a deletion: nothing stays behind)."""
        async with self.lock:
            await self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def close(self) -> None:
        await self.conn.close()

    async def ping(self) -> None:
        """Raises if the database does not answer (the health check)."""
        async with self.conn.execute("SELECT count(*) FROM sqlite_master") as cur:
            await cur.fetchone()

    async def version(self) -> int:
        async with self.conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self, target: int | None = None) -> int:
        """Apply pending migrations, each in its own transaction with its version bump."""
        current = await self.version()
        for version, sql in migrations():
            if version <= current or (target is not None and version > target):
                continue
            log.info("applying migration %04d", version)
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(sql):
                    await self.conn.execute(statement)
                await self.conn.execute(f"PRAGMA user_version = {int(version)}")
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")
            current = version
        return current

    async def write(self, sql: str, params: Sequence[object] = ()) -> int:
        """One statement, atomic on its own: no BEGIN/COMMIT round trips (a third of the cost
        of a one-statement transaction). Under the lock, so it never lands inside another
        task's open transaction. Returns the rows it changed."""
        async with self.lock:
            cursor = await self.conn.execute(sql, params)
            return cursor.rowcount

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error; one at a time."""
        async with self.lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, NotADirectoryError | FileExistsError):
        return f"its folder is not a folder ({text})"
    return text


def _statements(sql: str) -> list[str]:
    """Split a migration script into statements (our scripts hold no ';' inside strings)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
