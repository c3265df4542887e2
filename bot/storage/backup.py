"""Online copies of the database with SQLite's backup API: consistent while the bot writes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TextIO

import aiosqlite

from bot.storage.db import Database

log = logging.getLogger(__name__)
PREFIX = "interview_coach-"


class BackupFailed(Exception):
    """The copy cannot be made where asked: one clear line, exit 1."""


def default_folder(db_path: Path) -> Path:
    return db_path.parent / "backups"


def backup_name(now: datetime) -> str:
    return f"{PREFIX}{now.astimezone(UTC):%Y%m%d-%H%M%S}.sqlite3"


async def backup(db: Database, target: Path) -> Path:
    """Copy the live database to `target` (a file, or a folder to put a dated file in)."""
    if target.is_dir() or not target.suffix:
        target.mkdir(parents=True, exist_ok=True)
        target = target / backup_name(datetime.now(UTC))
    if _is_live(target, Path(db.path)):
        # The copy would replace the file being copied (or its WAL) when it is renamed.
        raise BackupFailed(f"{target} is the live database: give another file or a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    async with aiosqlite.connect(str(partial)) as copy:
        # pages=256 with a pause between steps: the bot keeps writing while it copies.
        await db.conn.backup(copy, pages=256, sleep=0.01)
    partial.replace(target)  # a copy is either whole or absent
    return target


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups in the folder; returns the deleted."""
    copies = sorted(folder.glob(f"{PREFIX}*.sqlite3"))
    stale = copies[:-keep] if keep > 0 else copies
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _is_live(target: Path, db_path: Path) -> bool:
    """Whether `target` is the database file or one of SQLite's files beside it, by any
    name (relative, through a link)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        live = Path(f"{db_path}{suffix}")
        if target.resolve() == live.resolve():
            return True
        with contextlib.suppress(OSError):  # either may not exist
            if os.path.samefile(target, live):
                return True
    return False


async def backup_main(db_path: Path, target: Path | None, out: TextIO) -> int:
    """`python -m bot backup`: BackupFailed with the reason if the copy cannot be made."""
    target = target or default_folder(db_path)
    if _is_live(target, db_path):  # refused before the database is even opened
        raise BackupFailed(f"{target} is the live database: give another file or a folder")
    db = await Database.open(db_path)
    try:
        made = await backup(db, target)
    except (OSError, sqlite3.Error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise BackupFailed(f"cannot write the backup to {target}: {reason}") from None
    finally:
        await db.close()
    out.write(f"{made}\n")
    return 0


def next_backup(now: datetime, at: time) -> datetime:
    """The next `at` (UTC) strictly after now."""
    now = now.astimezone(UTC)
    next_run = datetime.combine(now.date(), at, tzinfo=UTC)
    return next_run if next_run > now else next_run + timedelta(days=1)


async def daily(
    db: Database,
    folder: Path,
    keep: int,
    at: time,
    stop: asyncio.Event,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """A backup every day at `at` (UTC), keeping the newest `keep`."""
    while not stop.is_set():
        now = clock()
        wait = (next_backup(now, at) - now).total_seconds()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
        if stop.is_set():
            return
        try:
            made = await backup(db, folder)
            removed = prune(folder, keep)
            log.info("event=backup file=%s pruned=%d", made.name, len(removed))
        except Exception:
            log.exception("event=backup_failed")
