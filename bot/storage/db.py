"""SQLite connection, pragmas and schema migrations (PRAGMA user_version)."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import aiosqlite

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


def migrations() -> list[tuple[int, str]]:
    """(version, sql) for every file in migrations/, in order. File names start with NNNN_."""
    folder = resources.files("bot.storage") / "migrations"
    found = []
    for item in folder.iterdir():
        if item.name.endswith(".sql"):
            found.append((int(item.name.partition("_")[0]), item.read_text(encoding="utf-8")))
    return sorted(found)


LATEST_VERSION = max(v for v, _ in migrations())
BUSY_TIMEOUT_MS = 5000  # a write waits this long for another writer before "locked"
LOCKED_TRIES = 6  # start-up waits this many busy timeouts (30 s) for another writer


class DatabaseUnavailable(Exception):
    """The database cannot be opened or written: one clear line, not a traceback."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"cannot use the database at {path}: {reason}")
        self.reason = reason


class Database:
    """One aiosqlite connection in WAL mode. Work goes to its thread in hops: `run` for reads
    and one-statement writes, `atomic` for a transaction, each a single hop (a hop costs more
    than the SQL it carries, so a whole update's reads are one hop and its writes another)."""

    def __init__(self, conn: aiosqlite.Connection, path: Path | str) -> None:
        self.conn = conn
        self.path = path
        # Which file was opened: one moved over it later is not the one this connection writes.
        self._identity: tuple[int, int] | None = None
        # Writes that may wait (see `defer`), oldest first, and the timer that flushes them.
        self._deferred: list[Callable[[sqlite3.Connection], object]] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

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
            await db.pragma(f"busy_timeout={BUSY_TIMEOUT_MS}")
            await db._retry_locked(lambda: db.pragma("journal_mode=WAL"))
            await db.pragma("synchronous=NORMAL")
            await db.pragma("foreign_keys=ON")
            # Deleted rows are overwritten, not left readable in free pages (/mydata delete).
            await db.pragma("secure_delete=ON")
            if migrate:
                await db._retry_locked(db.migrate)
            else:
                await db.ping()
            db._identity = _identity(path)  # the file exists by now (WAL mode wrote it)
        except sqlite3.Error as exc:
            await conn.close()
            raise DatabaseUnavailable(path, _reason(exc)) from None
        return db

    async def _retry_locked(self, work: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            try:
                return await work()
            except sqlite3.OperationalError as exc:
                attempt += 1
                if "locked" not in str(exc) or attempt >= LOCKED_TRIES:
                    raise
                log.warning("event=database_locked attempt=%d action=wait", attempt)

    async def at_start(self, work: Callable[[], Awaitable[T]]) -> T:
        """Start-up work on the database: another writer's lock is waited out as when opening
        (LOCKED_TRIES busy timeouts, one line per wait); if it stays locked, or the file
        cannot be written, DatabaseUnavailable with the reason, for one clear line."""
        try:
            return await self._retry_locked(work)
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(self.path, _reason(exc)) from None

    async def probe(self) -> None:
        """Begin a write and take it back: fails as the first real write would (another
        writer holds the lock, the file is read-only), before any work depends on it."""

        def attempt(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")  # waits out the busy timeout for the write lock
            try:
                (version,) = conn.execute("PRAGMA user_version").fetchone()
                conn.execute(f"PRAGMA user_version = {int(version)}")  # refused if read-only
            finally:
                if conn.in_transaction:  # SQLite may have rolled back on its own
                    conn.execute("ROLLBACK")

        await self.run(attempt)

    def lost(self) -> str | None:
        """Why what this connection writes no longer reaches the file at its path (deleted
        with its folder, or another file moved over it), or None. SQLite goes on writing
        into the unlinked file without a word: all of it is lost at exit."""
        if str(self.path) == ":memory:":
            return None
        # One stat: an exists() then a stat() would call a file deleted between the two
        # "replaced".
        found = _identity(self.path)
        if found is None:
            return "the database file is gone"
        if self._identity is not None and found != self._identity:
            return "the database file was replaced by another file"
        return None

    def usable(self) -> str | None:
        """Why the file cannot be relied on now (lost, or made read-only), or None. The
        health check asks this."""
        lost = self.lost()
        if lost is not None or str(self.path) == ":memory:":
            return lost
        path = Path(self.path)
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
            return "the database file or its folder is read-only"
        return None

    async def checkpoint(self) -> None:
        """Move the WAL into the file and empty it (after a deletion: nothing stays behind)."""
        await self.pragma("wal_checkpoint(TRUNCATE)")

    async def pragma(self, setting: str) -> None:
        # Read to the end: a statement left with rows unread keeps COMMIT from working.
        await self.all(f"PRAGMA {setting}")

    async def close(self) -> None:
        await self.flush()  # its hop also stops the flush timer
        await self.conn.close()

    async def ping(self) -> None:
        """Raises if the database does not answer (the health check)."""
        await self.one("SELECT count(*) FROM sqlite_master")

    async def version(self) -> int:
        # The pragma always answers one row (0 in a new file).
        return int(await self.run(lambda c: c.execute("PRAGMA user_version").fetchone()[0]))

    async def one(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Row | None:
        """The first row of a query, in one hop."""
        row: sqlite3.Row | None = await self.run(lambda c: c.execute(sql, params).fetchone())
        return row

    async def all(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Every row of a query, in one hop."""
        return await self.run(lambda c: list(c.execute(sql, params).fetchall()))

    async def migrate(self, target: int | None = None) -> int:
        """Apply pending migrations, each in its own transaction with its version bump."""
        current = await self.version()
        for version, sql in migrations():
            if version <= current or (target is not None and version > target):
                continue
            log.info("event=migration version=%04d", version)
            await self.atomic(_apply_migration, version, sql)
            current = version
        return current

    async def run(
        self, work: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        """`work(conn, ...)` in the database thread, in one hop. Its statements are not a
        transaction together: for reads, or a single statement (atomic on its own). Deferred
        writes go first, in the same hop."""
        deferred, self._deferred = self._deferred, []
        hop: Callable[Concatenate[sqlite3.Connection, P], T] = work
        if deferred:
            # This hop takes them: the timer restarts with the next deferred write, so it
            # fires only when no hop came within `within` of the oldest one waiting.
            if self._flush_timer is not None:
                self._flush_timer.cancel()
                self._flush_timer = None

            @functools.wraps(work)  # the bench counts hops by the name of their work
            def hop(conn: sqlite3.Connection, /, *args: P.args, **kw: P.kwargs) -> T:
                _apply_deferred(conn, deferred)
                return work(conn, *args, **kw)

        # aiosqlite's own hop (every execute and fetch is one): the only way to run several
        # statements for the price of one. Covered by every test that touches the database.
        result: T = await self.conn._execute(hop, self.conn._conn, *args, **kw)  # type: ignore[no-untyped-call]
        return result

    def defer(self, work: Callable[[sqlite3.Connection], object], within: float) -> None:
        """Run `work` (one statement, atomic on its own) at the start of the next hop, or
        after `within` seconds if no hop comes first: a write nothing waits for rides along
        with the next update's instead of costing a hop of its own. Lost only if the process
        dies first, so it must be one whose loss is safe (marking replies sent: unmarked,
        they are sent again, never lost)."""
        self._deferred.append(work)
        if self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(within, self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_timer = None
        if self._deferred:
            task = asyncio.get_running_loop().create_task(self.flush())
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def flush(self) -> None:
        """Apply the deferred writes now."""
        if self._deferred:
            try:
                await self.run(lambda conn: None)
            except (sqlite3.Error, ValueError) as exc:  # closed meanwhile: nothing to do
                log.warning("event=deferred_writes_lost error=%s", exc)

    async def atomic(
        self, work: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        """`work(conn, ...)` inside BEGIN IMMEDIATE ... COMMIT, rolled back if it raises: one
        transaction, one hop. Nothing else runs in the database thread meanwhile."""

        def transaction(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn, *args, **kw)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self.run(transaction)

    async def write(self, sql: str, params: Sequence[object] = ()) -> int:
        """One statement, atomic on its own (no BEGIN/COMMIT). Returns the rows it changed."""
        return await self.run(lambda conn: conn.execute(sql, params).rowcount)


def _apply_deferred(
    conn: sqlite3.Connection, deferred: list[Callable[[sqlite3.Connection], object]]
) -> None:
    for write in deferred:
        try:
            write(conn)
        except sqlite3.Error as exc:  # not the hop's own work: it must not fail for this
            log.warning("event=deferred_write_failed error=%s", exc)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, NotADirectoryError | FileExistsError):
        return f"its folder is not a folder ({text})"
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        waited = LOCKED_TRIES * BUSY_TIMEOUT_MS / 1000
        return f"another process kept it locked for {waited:g} s ({text}); stop it and try again"
    if isinstance(exc, sqlite3.OperationalError) and "readonly" in text:
        return f"the file or its folder is read-only ({text})"
    return text


def _identity(path: Path | str) -> tuple[int, int] | None:
    """The file's device and inode, or None (in memory, or no file yet)."""
    if str(path) == ":memory:":
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _apply_migration(conn: sqlite3.Connection, version: int, sql: str) -> None:
    for statement in _statements(sql):
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {int(version)}")


def _statements(sql: str) -> list[str]:
    """Split a migration script into statements (our scripts hold no ';' inside strings)."""
    lines = [line.partition("--")[0] for line in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
