"""Operator view of the nudge queue: `python -m bot nudges` prints the pending ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.storage.db import Database
from bot.storage.store import Store


def iso_utc(moment: datetime) -> str:
    """ "2026-11-23T14:00:00Z": the store keeps whole seconds, so no fraction is lost."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def print_pending(db_path: Path, out: TextIO) -> int:
    """Write one JSON object per pending nudge, earliest first; returns how many.

    A database that does not exist yet is created and migrated (and prints nothing), so the
    command works on a fresh install. Safe while the bot runs: WAL lets this read alongside.
    """
    db = await Database.open(db_path)
    try:
        count = 0
        for row in await Store(db).all_pending():
            record = {
                "user_id": row.user_id,
                "kind": row.kind,
                "due_at": iso_utc(row.due_at),
                "id": row.id,
                "deadline": None if row.deadline is None else iso_utc(row.deadline),
                "attempts": row.attempts,
            }
            out.write(json.dumps(record) + "\n")
            count += 1
        out.flush()
        return count
    finally:
        await db.close()
