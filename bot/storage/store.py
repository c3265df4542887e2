"""Repositories over the SQLite schema: user state and nudges, committed together."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiosqlite

from bot.engine.model import (
    CancelNudge,
    CancelNudges,
    DeleteUserData,
    Effect,
    MoveNudge,
    PendingNudge,
    ScheduleNudge,
    SetOptOut,
    SnoozeNudge,
    State,
)
from bot.storage.db import Database

# How long a claimed nudge stays with its process without renewal; a crashed process's
# claims come back after this.
DEFAULT_LEASE = timedelta(minutes=2)


def to_ts(moment: datetime) -> int:
    return int(moment.timestamp())


def from_ts(ts: int | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True)
class UserRecord:
    user_id: int
    chat_id: int
    state: State
    active: bool
    opted_out: bool


@dataclass(frozen=True)
class NudgeRow:
    id: int
    user_id: int
    chat_id: int
    kind: str
    due_at: datetime
    deadline: datetime | None
    attempts: int
    payload: str | None = None  # what a message that is not a reminder needs (JSON)


_NUDGE_COLUMNS = "n.id, n.user_id, u.chat_id, n.kind, n.due_at, n.deadline, n.attempts, n.payload"
# Work another feature does in the same transaction as a user's new state.
Extra = Callable[[aiosqlite.Connection], Awaitable[None]]
# The text of an update goes as soon as it is handled: only the id stays, to recognise a
# redelivery.
_HANDLED = (
    "UPDATE inbox SET handled_at = ?, error = ?, payload = ''"
    " WHERE update_id = ? AND handled_at IS NULL"
)
# Replies owed for a saved state are nudges of this kind: sent at once by the process that
# handled the update (it holds their lease), or by the dispatcher if that process died.
REPLY = "reply"


class AlreadyHandled(Exception):
    """The update this state came from was handled before: the state is not saved again."""

    def __init__(self, update_id: int) -> None:
        super().__init__(f"update {update_id} was handled already")
        self.update_id = update_id


@dataclass
class Durable:
    """What makes handling one update exactly-once: the inbox row it came from is marked
    handled, and the replies the new state owes are queued, in the state's transaction."""

    update_id: int
    replies: Sequence[str]  # JSON payloads, in order
    owner: str
    lease: timedelta = DEFAULT_LEASE
    ids: list[int] = field(default_factory=list)  # the queued replies' nudge ids, filled in


def _nudge(row: aiosqlite.Row) -> NudgeRow:
    due = from_ts(row["due_at"])
    assert due is not None
    return NudgeRow(
        id=row["id"],
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        kind=row["kind"],
        due_at=due,
        deadline=from_ts(row["deadline"]),
        attempts=row["attempts"],
        payload=row["payload"],
    )


def _pending(row: aiosqlite.Row) -> PendingNudge:
    due = from_ts(row["due_at"])
    assert due is not None
    return PendingNudge(row["id"], row["kind"], due, from_ts(row["deadline"]))


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Updates this process marked handled in a commit lately: the inbox worker need not
        # mark them again (a database round trip each).
        self._handled_ids: deque[int] = deque(maxlen=4096)

    # --- users -----------------------------------------------------------------------------

    async def load_user(self, user_id: int) -> UserRecord | None:
        async with self.db.conn.execute(
            "SELECT user_id, chat_id, state, active, opted_out FROM users WHERE user_id = ?",
            (user_id,),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return UserRecord(
            user_id=row["user_id"],
            chat_id=row["chat_id"],
            state=State.from_json(row["state"]),
            active=bool(row["active"]),
            opted_out=bool(row["opted_out"]),
        )

    async def commit(
        self,
        user_id: int,
        chat_id: int,
        state: State,
        effects: Sequence[Effect],
        now: datetime,
        *,
        user_wrote: bool = True,
        extra: Extra | None = None,
        durable: Durable | None = None,
    ) -> list[int]:
        """Store the new state and apply the effects in ONE transaction; returns new nudge ids.

        A user who writes is active again and no longer opted out (/stop lasts until then).
        `extra` runs last in the same transaction (a subscriber's records); `durable` marks
        the update handled and queues the replies the state owes.
        """
        ts = to_ts(now)
        new_ids: list[int] = []
        deleting = any(isinstance(e, DeleteUserData) for e in effects)
        async with self.db.transaction() as conn:
            if durable is not None and not await self._handled(conn, durable.update_id, ts):
                # Handled already (a redelivery raced its first handling): nothing twice.
                raise AlreadyHandled(durable.update_id)
            if durable is not None:
                self._handled_ids.append(durable.update_id)
            if deleting:
                await conn.execute("DELETE FROM nudges WHERE user_id = ?", (user_id,))
                await conn.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
            else:
                await self._save(conn, user_id, chat_id, state, effects, ts, user_wrote, new_ids)
                if extra is not None:
                    await extra(conn)
                if durable is not None:
                    await self._queue_replies(conn, user_id, durable, now)
        if deleting:
            # secure_delete overwrote the rows in the file; the checkpoint empties the WAL,
            # which still held them. The goodbye goes out directly: nothing may stay behind.
            await self.db.checkpoint()
        return new_ids

    async def _save(
        self,
        conn: aiosqlite.Connection,
        user_id: int,
        chat_id: int,
        state: State,
        effects: Sequence[Effect],
        ts: int,
        user_wrote: bool,
        new_ids: list[int],
    ) -> None:
        reset = ", active = 1, opted_out = 0" if user_wrote else ""
        await conn.execute(
            "INSERT INTO users (user_id, chat_id, state, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(user_id) DO UPDATE SET chat_id = excluded.chat_id,"
            f" state = excluded.state, updated_at = excluded.updated_at{reset}",
            (user_id, chat_id, state.to_json(), ts, ts),
        )
        for effect in effects:
            new_id = await self._apply(conn, user_id, effect, ts)
            if new_id is not None:
                new_ids.append(new_id)

    @staticmethod
    async def _queue_replies(
        conn: aiosqlite.Connection, user_id: int, durable: Durable, now: datetime
    ) -> None:
        ts, lease_until = to_ts(now), to_ts(now + durable.lease)
        for payload in durable.replies:
            cur = await conn.execute(
                "INSERT INTO nudges (user_id, kind, due_at, created_at, payload, state,"
                " claimed_by, lease_until) VALUES (?, ?, ?, ?, ?, 'sending', ?, ?)",
                (user_id, REPLY, ts, ts, payload, durable.owner, lease_until),
            )
            assert cur.lastrowid is not None
            durable.ids.append(cur.lastrowid)

    # --- the inbox -------------------------------------------------------------------------

    async def receive(self, updates: Sequence[tuple[int, str]], now: datetime) -> int:
        """Store delivered updates (update_id, JSON) before they are acknowledged; a
        redelivered one is ignored. Returns how many were new."""
        if not updates:
            return 0
        async with self.db.transaction() as conn:
            before = conn.total_changes
            await conn.executemany(
                "INSERT OR IGNORE INTO inbox (update_id, payload, received_at) VALUES (?, ?, ?)",
                [(update_id, payload, to_ts(now)) for update_id, payload in updates],
            )
            return conn.total_changes - before

    async def next_offset(self) -> int | None:
        """The getUpdates offset after what is stored: acknowledges only stored updates."""
        async with self.db.conn.execute("SELECT max(update_id) FROM inbox") as cur:
            row = await cur.fetchone()
        return None if row is None or row[0] is None else int(row[0]) + 1

    async def unhandled(self, limit: int, after: int = -1) -> list[tuple[int, str]]:
        """Stored updates not handled yet, oldest first."""
        async with self.db.conn.execute(
            "SELECT update_id, payload FROM inbox WHERE handled_at IS NULL AND update_id > ?"
            " ORDER BY update_id LIMIT ?",
            (after, limit),
        ) as cur:
            return [(int(r[0]), str(r[1])) for r in await cur.fetchall()]

    def handled_here(self, update_id: int) -> bool:
        return update_id in self._handled_ids

    async def mark_handled(self, update_id: int, now: datetime, error: str | None = None) -> None:
        await self.db.write(_HANDLED, (to_ts(now), error, update_id))

    @staticmethod
    async def _handled(
        conn: aiosqlite.Connection, update_id: int, ts: int, error: str | None = None
    ) -> bool:
        """Mark a stored update handled; False if it was already."""
        cur = await conn.execute(_HANDLED, (ts, error, update_id))
        return cur.rowcount == 1

    async def forget_handled(self, before: datetime) -> int:
        """Handled updates older than `before` are not needed any more (they hold texts)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM inbox WHERE handled_at IS NOT NULL AND handled_at < ?"
                " AND update_id < (SELECT max(update_id) FROM inbox)",
                (to_ts(before),),
            )
            return cur.rowcount

    async def _apply(
        self, conn: aiosqlite.Connection, user_id: int, effect: Effect, ts: int
    ) -> int | None:
        if isinstance(effect, ScheduleNudge):
            cur = await conn.execute(
                "INSERT INTO nudges (user_id, kind, due_at, deadline, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    user_id,
                    effect.kind,
                    to_ts(effect.due_at),
                    None if effect.deadline is None else to_ts(effect.deadline),
                    ts,
                ),
            )
            return cur.lastrowid
        if isinstance(effect, CancelNudges):
            kinds = effect.kinds
            marks = ",".join("?" * len(kinds))
            where = f" AND kind IN ({marks})" if kinds else ""
            await conn.execute(
                "UPDATE nudges SET state = 'cancelled'"
                f" WHERE user_id = ? AND state = 'pending'{where}",
                (user_id, *kinds),
            )
        elif isinstance(effect, CancelNudge):
            await conn.execute(
                "UPDATE nudges SET state = 'cancelled'"
                " WHERE id = ? AND user_id = ? AND state = 'pending'",
                (effect.nudge_id, user_id),
            )
        elif isinstance(effect, MoveNudge):
            await conn.execute(
                "UPDATE nudges SET due_at = ?, deadline = ?"
                " WHERE id = ? AND user_id = ? AND state = 'pending'",
                (
                    to_ts(effect.due_at),
                    None if effect.deadline is None else to_ts(effect.deadline),
                    effect.nudge_id,
                    user_id,
                ),
            )
        elif isinstance(effect, SnoozeNudge):
            # Works for a nudge already sent too: "Remind me later" brings it back.
            await conn.execute(
                "UPDATE nudges SET state = 'pending', due_at = ?, attempts = 0"
                " WHERE id = ? AND user_id = ? AND state IN ('pending', 'sent')"
                " AND (deadline IS NULL OR deadline > ?)",
                (to_ts(effect.until), effect.nudge_id, user_id, to_ts(effect.until)),
            )
        elif isinstance(effect, SetOptOut):
            await conn.execute(
                "UPDATE users SET opted_out = ? WHERE user_id = ?",
                (int(effect.opted_out), user_id),
            )
        return None

    async def deactivate(self, user_id: int) -> None:
        """The user blocked the bot: stop everything for them until they write again."""
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE users SET active = 0 WHERE user_id = ?", (user_id,))
            await conn.execute(
                "UPDATE nudges SET state = 'cancelled', last_error = 'blocked'"
                " WHERE user_id = ? AND state IN ('pending', 'sending')",
                (user_id,),
            )

    async def user_data(self, user_id: int) -> dict[str, object] | None:
        """Everything stored about a user, for /mydata."""
        record = await self.load_user(user_id)
        if record is None:
            return None
        return {"record": record, "nudges": await self.pending_nudges(user_id)}

    # --- nudges ----------------------------------------------------------------------------

    async def pending_nudges(self, user_id: int) -> list[PendingNudge]:
        async with self.db.conn.execute(
            "SELECT id, kind, due_at, deadline FROM nudges"
            " WHERE user_id = ? AND state = 'pending' ORDER BY due_at, id",
            (user_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [_pending(row) for row in rows]

    async def get_nudge(self, user_id: int, nudge_id: int) -> PendingNudge | None:
        """One of the user's nudges in any state (a tapped nudge was usually sent already)."""
        async with self.db.conn.execute(
            "SELECT id, kind, due_at, deadline FROM nudges WHERE id = ? AND user_id = ?",
            (nudge_id, user_id),
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else _pending(row)

    async def next_due_at(self) -> datetime | None:
        """The earliest pending due time, answered from the partial index alone."""
        async with self.db.conn.execute(
            "SELECT min(due_at) FROM nudges WHERE state = 'pending'"
        ) as cur:
            row = await cur.fetchone()
        return from_ts(row[0]) if row and row[0] is not None else None

    async def claim_due(
        self,
        now: datetime,
        limit: int,
        owner: str = "",
        lease: timedelta = DEFAULT_LEASE,
    ) -> list[NudgeRow]:
        """Atomically move up to `limit` due nudges from pending to sending, earliest first,
        leased to `owner` until now + lease. A claim is not an attempt: only real failures
        count (a crash or a restart must not use up a nudge's retries)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE nudges SET state = 'sending', claimed_by = ?, lease_until = ?"
                " WHERE id IN (SELECT id FROM nudges WHERE state = 'pending' AND due_at <= ?"
                " ORDER BY due_at, id LIMIT ?)"
                " RETURNING id",
                (owner, to_ts(now + lease), to_ts(now), limit),
            )
            ids = [row[0] for row in await cur.fetchall()]
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            cur = await conn.execute(
                f"SELECT {_NUDGE_COLUMNS} FROM nudges n JOIN users u ON u.user_id = n.user_id"
                f" WHERE n.id IN ({marks}) ORDER BY n.due_at, n.id",
                ids,
            )
            return [_nudge(row) for row in await cur.fetchall()]

    async def renew(self, nudge_id: int, owner: str, until: datetime) -> bool:
        """Extend a lease still held; False if it was lost (expired and taken back)."""
        changed = await self.db.write(
            "UPDATE nudges SET lease_until = ?"
            " WHERE id = ? AND state = 'sending' AND claimed_by = ?",
            (to_ts(until), nudge_id, owner),
        )
        return changed == 1

    @staticmethod
    def _held(owner: str | None) -> tuple[str, tuple[object, ...]]:
        # Only the lease holder records an outcome: a row taken back after its lease expired
        # belongs to whoever claimed it since.
        if owner is None:
            return "", ()
        return " AND state = 'sending' AND claimed_by = ?", (owner,)

    async def finish(
        self,
        nudge_id: int,
        state: str,
        now: datetime,
        error: str | None = None,
        *,
        owner: str | None = None,
        attempted: bool = False,
    ) -> bool:
        """Record how a claimed nudge ended: sent, expired, cancelled or failed. `attempted`:
        it ended in a failed send, counted. False if `owner` no longer held the lease."""
        held, params = self._held(owner)
        changed = await self.db.write(
            "UPDATE nudges SET state = ?, last_error = ?, lease_until = NULL,"
            " attempts = attempts + ?,"
            f" sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?{held}",
            (state, error, int(attempted), state, to_ts(now), nudge_id, *params),
        )
        return changed == 1

    async def retry(
        self,
        nudge_id: int,
        due_at: datetime,
        error: str,
        *,
        count_attempt: bool = True,
        owner: str | None = None,
    ) -> bool:
        """Put a claimed nudge back in the queue for another attempt. Waits that are not
        failures (quiet hours, flood control, shutdown) pass count_attempt=False, so they never
        use up the retries meant for real errors."""
        held, params = self._held(owner)
        changed = await self.db.write(
            "UPDATE nudges SET state = 'pending', due_at = ?, last_error = ?,"
            f" lease_until = NULL, attempts = attempts + ? WHERE id = ?{held}",
            (to_ts(due_at), error, int(count_attempt), nudge_id, *params),
        )
        return changed == 1

    async def claim_owners(self) -> list[str]:
        """Who holds claims now (from the small partial index of in-flight rows)."""
        async with self.db.conn.execute(
            "SELECT DISTINCT claimed_by FROM nudges WHERE state = 'sending'"
            " AND claimed_by IS NOT NULL"
        ) as cur:
            return [str(row[0]) for row in await cur.fetchall()]

    async def release_claims(self, owner: str) -> int:
        """Take back every claim of an owner known to be dead."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE nudges SET state = 'pending', claimed_by = NULL, lease_until = NULL"
                " WHERE state = 'sending' AND claimed_by = ?",
                (owner,),
            )
            return cur.rowcount

    async def recover_in_flight(self, now: datetime | None = None) -> int:
        """Claimed nudges whose lease expired (their process died) go back to pending: sent
        at most twice, never lost. Without `now`, every claimed nudge (an operator's reset,
        with no bot running)."""
        expired = "" if now is None else " AND (lease_until IS NULL OR lease_until <= ?)"
        params: tuple[object, ...] = () if now is None else (to_ts(now),)
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE nudges SET state = 'pending', claimed_by = NULL, lease_until = NULL"
                f" WHERE state = 'sending'{expired}",
                params,
            )
            return cur.rowcount

    async def queue_depths(self) -> dict[str, int]:
        """What waits in the database, for /metrics (each from a partial index)."""
        async with self.db.conn.execute(
            "SELECT (SELECT count(*) FROM nudges WHERE state = 'pending'),"
            " (SELECT count(*) FROM nudges WHERE state = 'sending'),"
            " (SELECT count(*) FROM inbox WHERE handled_at IS NULL)"
        ) as cur:
            row = await cur.fetchone()
        assert row is not None
        return {"nudges_pending": row[0], "in_flight": row[1], "inbox_unhandled": row[2]}

    # --- named locks ---------------------------------------------------------------------

    async def acquire_lock(
        self,
        name: str,
        owner: str,
        now: datetime,
        lease: timedelta,
        *,
        dead: str | None = None,
    ) -> str | None:
        """Take (or renew) the lock `name` for `owner` until now + lease; None on success,
        else the owner who holds it (while their lease lasts, unless it is `dead`)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO locks (name, owner, until, acquired_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, until = excluded.until,"
                " acquired_at = CASE WHEN locks.owner = excluded.owner THEN locks.acquired_at"
                " ELSE excluded.acquired_at END"
                " WHERE locks.owner = excluded.owner OR locks.until <= ? OR locks.owner = ?",
                (name, owner, to_ts(now + lease), to_ts(now), to_ts(now), dead),
            )
            async with conn.execute("SELECT owner FROM locks WHERE name = ?", (name,)) as cur:
                row = await cur.fetchone()
        holder = None if row is None else str(row[0])
        return None if holder == owner else holder

    async def release_lock(self, name: str, owner: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))

    async def iter_pending(self) -> AsyncIterator[NudgeRow]:
        async with self.db.conn.execute(
            f"SELECT {_NUDGE_COLUMNS} FROM nudges n JOIN users u ON u.user_id = n.user_id"
            " WHERE n.state = 'pending' ORDER BY n.due_at, n.id"
        ) as cur:
            async for row in cur:
                yield _nudge(row)
