"""`python -m bot recruiters add|list|remove <telegram id>`: what the administrators' buttons
do, from the shell, on the same database (safe while the bot runs: WAL). The person is told by
a queued message, which the running bot's dispatcher finds within a minute (or a starting bot
at once); their command menu follows when that message goes out, or when they next use a
recruiter command, whichever comes first."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.recruiters import repo
from bot.recruiters.follower import DIGEST, relay, send_later
from bot.storage.db import Database
from bot.storage.store import Conn


async def recruiters_main(
    db_path: Path,
    action: str,
    user_id: int | None,
    out: TextIO,
    now: datetime | None = None,  # the machine's clock; tests pass the bot's
) -> int:
    db = await Database.open(db_path)
    now = now or datetime.now(UTC)
    try:
        if action == "list":
            for r in await db.run(repo.list_recruiters):
                out.write(f"{r.user_id}\t{r.status}\t{r.name or ''}\n")
            return 0
        assert user_id is not None
        return await db.atomic(_change, action, user_id, now, out)
    finally:
        await db.close()


def _change(conn: Conn, action: str, user_id: int, now: datetime, out: TextIO) -> int:
    current = repo.get_recruiter(conn, user_id)
    if action == "add":
        if current is not None and current.status == "approved":
            out.write(f"{user_id} is a recruiter already\n")
            return 0
        repo.set_status(conn, user_id, "approved", now)
        message = relay("recruiters/approved", {}, menu=True)
        # The bot queues their weekly digest when it next starts or they next use it.
        send_later(conn, user_id, message, now, expires=False)
        out.write(f"{user_id} is now a recruiter\n")
        return 0
    if current is None or current.status != "approved":
        out.write(f"{user_id} is not a recruiter\n")
        return 1
    repo.set_status(conn, user_id, "removed", now)
    repo.cancel_queued(conn, user_id, DIGEST)
    repo.set_draft(conn, user_id, {})  # a screen they had open takes no more typing
    send_later(conn, user_id, relay("recruiters/removed", {}, menu=False), now, expires=False)
    out.write(f"{user_id} is no longer a recruiter\n")
    return 0
