"""Repositories over the SQLite schema: user state and nudges, committed together."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from bot.engine import planner
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
Conn = sqlite3.Connection
T = TypeVar("T")
# Work another feature does in the same transaction as a user's new state, in the same hop.
Extra = Callable[[Conn], None]
# The text of an update goes as soon as it is handled: only the id stays, to recognise a
# redelivery.
_HANDLED = (
    "UPDATE inbox SET handled_at = ?, error = ?, payload = ''"
    " WHERE update_id = ? AND handled_at IS NULL"
)
# Replies owed for a saved state are nudges of this kind: sent at once by the process that
# handled the update (it holds their lease), or by the dispatcher if that process died.
REPLY = "reply"
# Until when a reply Telegram did not take is tried again (an outage): a day later, an answer
# to what the user did no longer helps them.
REPLY_DEADLINE = timedelta(days=1)
# How long a reply that went out may wait to be marked sent with the next hop (Store.sent).
MARK_WITHIN = 0.1
# How long `Store.settle` waits for another hop to write a mark before making one itself.
SETTLE_WITHIN = 2 * MARK_WITHIN


@dataclass
class Mark:
    """A deferred record of replies that went out (`Store.sent`): `written` once it is."""

    written: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)  # set with `written`


def _nothing(conn: Conn) -> None:
    """A hop with no work of its own: it carries the deferred writes."""


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


def _nudge(row: sqlite3.Row) -> NudgeRow:
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


def _pending(row: sqlite3.Row) -> PendingNudge:
    due = from_ts(row["due_at"])
    assert due is not None
    return PendingNudge(row["id"], row["kind"], due, from_ts(row["deadline"]))


@dataclass(frozen=True)
class Loaded(Generic[T]):
    """What handling one update reads, in one hop."""

    record: UserRecord | None
    pending: list[PendingNudge]
    tapped: PendingNudge | None
    also: T | None


def _user(row: sqlite3.Row) -> UserRecord:
    return UserRecord(
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        state=State.from_json(row["state"]),
        active=bool(row["active"]),
        opted_out=bool(row["opted_out"]),
    )


def _load_user(conn: Conn, user_id: int) -> UserRecord | None:
    row = conn.execute(
        "SELECT user_id, chat_id, state, active, opted_out FROM users WHERE user_id = ?",
        (user_id,),
    ).fetchone()
    return None if row is None else _user(row)


def _pending_nudges(conn: Conn, user_id: int) -> list[PendingNudge]:
    rows = conn.execute(
        "SELECT id, kind, due_at, deadline FROM nudges"
        " WHERE user_id = ? AND state = 'pending' ORDER BY due_at, id",
        (user_id,),
    ).fetchall()
    return [_pending(row) for row in rows]


def _get_nudge(conn: Conn, user_id: int, nudge_id: int) -> PendingNudge | None:
    row = conn.execute(
        "SELECT id, kind, due_at, deadline FROM nudges WHERE id = ? AND user_id = ?",
        (nudge_id, user_id),
    ).fetchone()
    return None if row is None else _pending(row)


def _handled(conn: Conn, update_id: int, ts: int, error: str | None = None) -> bool:
    """Mark a stored update handled; False if it was already."""
    return conn.execute(_HANDLED, (ts, error, update_id)).rowcount == 1


def _apply(conn: Conn, user_id: int, effect: Effect, ts: int) -> int | None:
    if isinstance(effect, ScheduleNudge):
        cur = conn.execute(
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
        # "All" is all of the conversation's reminders: never a reply the saved state owes, a
        # relayed answer or a digest, which live in the same table.
        kinds = effect.kinds or planner.KINDS
        marks = ",".join("?" * len(kinds))
        conn.execute(
            "UPDATE nudges SET state = 'cancelled'"
            f" WHERE user_id = ? AND state = 'pending' AND kind IN ({marks})",
            (user_id, *kinds),
        )
    elif isinstance(effect, CancelNudge):
        conn.execute(
            "UPDATE nudges SET state = 'cancelled'"
            " WHERE id = ? AND user_id = ? AND state = 'pending'",
            (effect.nudge_id, user_id),
        )
    elif isinstance(effect, MoveNudge):
        conn.execute(
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
        conn.execute(
            "UPDATE nudges SET state = 'pending', due_at = ?, attempts = 0"
            " WHERE id = ? AND user_id = ? AND state IN ('pending', 'sent')"
            " AND (deadline IS NULL OR deadline > ?)",
            (to_ts(effect.until), effect.nudge_id, user_id, to_ts(effect.until)),
        )
    elif isinstance(effect, SetOptOut):
        conn.execute(
            "UPDATE users SET opted_out = ? WHERE user_id = ?", (int(effect.opted_out), user_id)
        )
    return None


def _queue_replies(conn: Conn, user_id: int, durable: Durable, now: datetime) -> None:
    ts, lease_until = to_ts(now), to_ts(now + durable.lease)
    deadline = to_ts(now + REPLY_DEADLINE)
    for payload in durable.replies:
        cur = conn.execute(
            "INSERT INTO nudges (user_id, kind, due_at, deadline, created_at, payload, state,"
            " claimed_by, lease_until) VALUES (?, ?, ?, ?, ?, ?, 'sending', ?, ?)",
            (user_id, REPLY, ts, deadline, ts, payload, durable.owner, lease_until),
        )
        assert cur.lastrowid is not None
        durable.ids.append(cur.lastrowid)


def _held(owner: str | None) -> tuple[str, tuple[object, ...]]:
    # Only the lease holder records an outcome: a row taken back after its lease expired
    # belongs to whoever claimed it since.
    if owner is None:
        return "", ()
    return " AND state = 'sending' AND claimed_by = ?", (owner,)


class Store:
    """Every method is one hop to the database thread (reads together, a transaction whole)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Updates this process marked handled in a commit lately: the inbox worker need not
        # mark them again (a database round trip each).
        self._handled_ids: deque[int] = deque(maxlen=4096)

    # --- users -----------------------------------------------------------------------------

    async def load_user(self, user_id: int) -> UserRecord | None:
        return await self.db.run(_load_user, user_id)

    async def load(
        self,
        user_id: int,
        tapped_id: int | None = None,
        also: Callable[[Conn], T] | None = None,
    ) -> Loaded[T]:
        """Everything one update reads, in one hop: the user, their pending nudges, the nudge
        they tapped (sent ones too), and what `also` reads for another feature."""

        def read(conn: Conn) -> Loaded[T]:
            record = _load_user(conn, user_id)
            pending = _pending_nudges(conn, user_id) if record else []
            tapped = _get_nudge(conn, user_id, tapped_id) if record and tapped_id else None
            return Loaded(record, pending, tapped, also(conn) if also else None)

        return await self.db.run(read)

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
        `extra` runs last in the same transaction (a follower's records); `durable` marks
        the update handled and queues the replies the state owes.
        """
        ts = to_ts(now)
        deleting = any(isinstance(e, DeleteUserData) for e in effects)

        def write(conn: Conn) -> list[int]:
            new_ids: list[int] = []
            if durable is not None and not _handled(conn, durable.update_id, ts):
                # Handled already (a redelivery raced its first handling): nothing twice.
                raise AlreadyHandled(durable.update_id)
            if deleting:
                conn.execute("DELETE FROM nudges WHERE user_id = ?", (user_id,))
                conn.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
                return new_ids
            reset = ", active = 1, opted_out = 0" if user_wrote else ""
            conn.execute(
                "INSERT INTO users (user_id, chat_id, state, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(user_id) DO UPDATE SET chat_id = excluded.chat_id,"
                f" state = excluded.state, updated_at = excluded.updated_at{reset}",
                (user_id, chat_id, state.to_json(), ts, ts),
            )
            for effect in effects:
                new_id = _apply(conn, user_id, effect, ts)
                if new_id is not None:
                    new_ids.append(new_id)
            if extra is not None:
                extra(conn)
            if durable is not None:
                _queue_replies(conn, user_id, durable, now)
            return new_ids

        new_ids = await self.db.atomic(write)
        if durable is not None:
            self._handled_ids.append(durable.update_id)
        if deleting:
            # secure_delete overwrote the rows in the file; the checkpoint empties the WAL,
            # which still held them. The goodbye goes out directly: nothing may stay behind.
            await self.db.checkpoint()
        return new_ids

    # --- the inbox -------------------------------------------------------------------------

    async def receive(self, updates: Sequence[tuple[int, str]], now: datetime) -> int:
        """Store delivered updates (update_id, JSON) before they are acknowledged; a
        redelivered one is ignored. Returns how many were new."""
        if not updates:
            return 0
        rows = [(update_id, payload, to_ts(now)) for update_id, payload in updates]

        def insert(conn: Conn) -> int:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO inbox (update_id, payload, received_at) VALUES (?, ?, ?)",
                rows,
            )
            return conn.total_changes - before

        return await self.db.atomic(insert)

    async def next_offset(self) -> int | None:
        """The getUpdates offset after what is stored: acknowledges only stored updates."""
        row = await self.db.one("SELECT max(update_id) FROM inbox")
        return None if row is None or row[0] is None else int(row[0]) + 1

    async def unhandled(self, limit: int, after: int = -1) -> list[tuple[int, str]]:
        """Stored updates not handled yet, oldest first."""
        rows = await self.db.all(
            "SELECT update_id, payload FROM inbox WHERE handled_at IS NULL AND update_id > ?"
            " ORDER BY update_id LIMIT ?",
            (after, limit),
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    def handled_here(self, update_id: int) -> bool:
        return update_id in self._handled_ids

    async def mark_handled(self, update_id: int, now: datetime, error: str | None = None) -> None:
        await self.db.write(_HANDLED, (to_ts(now), error, update_id))

    async def forget_handled(self, before: datetime) -> int:
        """Handled updates older than `before` are not needed any more (they hold texts)."""
        return await self.db.write(
            "DELETE FROM inbox WHERE handled_at IS NOT NULL AND handled_at < ?"
            " AND update_id < (SELECT max(update_id) FROM inbox)",
            (to_ts(before),),
        )

    async def deactivate(self, user_id: int) -> None:
        """The user blocked the bot: stop everything for them until they write again."""

        def write(conn: Conn) -> None:
            conn.execute("UPDATE users SET active = 0 WHERE user_id = ?", (user_id,))
            conn.execute(
                "UPDATE nudges SET state = 'cancelled', last_error = 'blocked'"
                " WHERE user_id = ? AND state IN ('pending', 'sending')",
                (user_id,),
            )

        await self.db.atomic(write)

    # --- nudges ----------------------------------------------------------------------------

    async def pending_nudges(self, user_id: int) -> list[PendingNudge]:
        return await self.db.run(_pending_nudges, user_id)

    async def get_nudge(self, user_id: int, nudge_id: int) -> PendingNudge | None:
        """One of the user's nudges in any state (a tapped nudge was usually sent already)."""
        return await self.db.run(_get_nudge, user_id, nudge_id)

    async def next_due_at(self) -> datetime | None:
        """The earliest pending due time, answered from the partial index alone."""
        row = await self.db.one("SELECT min(due_at) FROM nudges WHERE state = 'pending'")
        return from_ts(row[0]) if row else None  # min() of no rows is NULL: None

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

        def claim(conn: Conn) -> list[NudgeRow]:
            ids = [
                row[0]
                for row in conn.execute(
                    "UPDATE nudges SET state = 'sending', claimed_by = ?, lease_until = ?"
                    " WHERE id IN (SELECT id FROM nudges WHERE state = 'pending' AND due_at <= ?"
                    " ORDER BY due_at, id LIMIT ?)"
                    " RETURNING id",
                    (owner, to_ts(now + lease), to_ts(now), limit),
                ).fetchall()
            ]
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            rows = conn.execute(
                f"SELECT {_NUDGE_COLUMNS} FROM nudges n JOIN users u ON u.user_id = n.user_id"
                f" WHERE n.id IN ({marks}) ORDER BY n.due_at, n.id",
                ids,
            ).fetchall()
            return [_nudge(row) for row in rows]

        return await self.db.atomic(claim)

    async def renew(self, nudge_id: int, owner: str, until: datetime) -> bool:
        """Extend a lease still held; False if it was lost (expired and taken back)."""
        changed = await self.db.write(
            "UPDATE nudges SET lease_until = ?"
            " WHERE id = ? AND state = 'sending' AND claimed_by = ?",
            (to_ts(until), nudge_id, owner),
        )
        return changed == 1

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
        held, params = _held(owner)
        changed = await self.db.write(
            "UPDATE nudges SET state = ?, last_error = ?, lease_until = NULL,"
            " attempts = attempts + ?,"
            f" sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?{held}",
            (state, error, int(attempted), state, to_ts(now), nudge_id, *params),
        )
        return changed == 1

    def sent(self, nudge_ids: Sequence[int], now: datetime, owner: str) -> Mark:
        """Record claimed nudges that went out (an update's replies) as sent, if `owner` still
        holds them: written with the next hop to the database (or within MARK_WITHIN seconds),
        without a hop of its own; `settle(mark)` waits until it is written. Should the process
        die first, they are sent again after the restart (at most twice, as for any claim)."""
        mark = Mark()
        if not nudge_ids:
            mark.written = True
            mark.done.set()
            return mark
        marks = ",".join("?" * len(nudge_ids))
        sql = (
            "UPDATE nudges SET state = 'sent', last_error = NULL, lease_until = NULL,"
            f" sent_at = ? WHERE id IN ({marks}) AND state = 'sending' AND claimed_by = ?"
        )
        params = (to_ts(now), *nudge_ids, owner)
        loop = asyncio.get_running_loop()

        def write(conn: Conn) -> None:
            # Outside any transaction (a hop runs deferred writes before its own work): on
            # disk when execute returns.
            conn.execute(sql, params)
            mark.written = True
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(mark.done.set)

        self.db.defer(write, MARK_WITHIN)
        return mark

    async def settle(self, mark: Mark) -> None:
        """Wait until a deferred `sent` record is written: by the next hop, whoever makes it,
        or by the flush timer within MARK_WITHIN seconds, so it costs no hop of its own; one
        only if neither wrote it in time (a failed write)."""
        if mark.written:
            return
        try:
            await asyncio.wait_for(mark.done.wait(), SETTLE_WITHIN)
        except TimeoutError:
            await self.db.run(_nothing)

    async def queue_replies(
        self,
        user_id: int,
        chat_id: int,
        payloads: Sequence[str],
        due_at: datetime,
        error: str,
        now: datetime,
        *,
        failed: bool = True,
    ) -> list[int]:
        """Messages Telegram did not take (a 5xx, a timeout, a flood wait) that were not
        queued before they went (a recruiter's answers, an apology): into the outbox, due at
        `due_at`, for the dispatcher to send in order. `failed`: the first met a real failure
        (counted); the others were not tried."""
        ts = to_ts(now)

        def write(conn: Conn) -> list[int]:
            # Someone the conversation never saw (an administrator) needs a row to address.
            conn.execute(
                "INSERT OR IGNORE INTO users (user_id, chat_id, state, created_at, updated_at)"
                " VALUES (?, ?, '{}', ?, ?)",
                (user_id, chat_id, ts, ts),
            )
            ids = []
            for n, payload in enumerate(payloads):
                cur = conn.execute(
                    "INSERT INTO nudges (user_id, kind, due_at, deadline, created_at, payload,"
                    " last_error, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        user_id,
                        REPLY,
                        to_ts(due_at),
                        to_ts(now + REPLY_DEADLINE),
                        ts,
                        payload,
                        error,
                        int(failed and n == 0),
                    ),
                )
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
            return ids

        return await self.db.atomic(write)

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
        held, params = _held(owner)
        changed = await self.db.write(
            "UPDATE nudges SET state = 'pending', due_at = ?, last_error = ?,"
            f" lease_until = NULL, attempts = attempts + ? WHERE id = ?{held}",
            (to_ts(due_at), error, int(count_attempt), nudge_id, *params),
        )
        return changed == 1

    async def claim_owners(self) -> list[str]:
        """Who holds claims now (from the small partial index of in-flight rows)."""
        rows = await self.db.all(
            "SELECT DISTINCT claimed_by FROM nudges WHERE state = 'sending'"
            " AND claimed_by IS NOT NULL"
        )
        return [str(row[0]) for row in rows]

    async def release_claims(self, owner: str) -> int:
        """Take back every claim of an owner known to be dead."""
        return await self.db.write(
            "UPDATE nudges SET state = 'pending', claimed_by = NULL, lease_until = NULL"
            " WHERE state = 'sending' AND claimed_by = ?",
            (owner,),
        )

    async def recover_in_flight(self, now: datetime | None = None) -> int:
        """Claimed nudges whose lease expired (their process died) go back to pending: sent
        at most twice, never lost. Without `now`, every claimed nudge (an operator's reset,
        with no bot running)."""
        expired = "" if now is None else " AND (lease_until IS NULL OR lease_until <= ?)"
        params: tuple[object, ...] = () if now is None else (to_ts(now),)
        return await self.db.write(
            "UPDATE nudges SET state = 'pending', claimed_by = NULL, lease_until = NULL"
            f" WHERE state = 'sending'{expired}",
            params,
        )

    async def queue_depths(self) -> dict[str, int]:
        """What waits in the database, for /metrics (each from a partial index)."""
        # Left to itself, SQLite counts pending nudges by scanning (user_id, state), i.e. every
        # nudge ever sent: named, the partial index holds only the pending ones.
        # The outbox (replies a saved state owes, waiting or being sent) apart from the other
        # nudges: from the same two small partial indexes, the kind read from their rows.
        row = await self.db.one(
            "SELECT (SELECT count(*) FROM nudges INDEXED BY nudges_pending_due"
            " WHERE state = 'pending'),"
            " (SELECT count(*) FROM nudges WHERE state = 'sending'),"
            " (SELECT count(*) FROM inbox WHERE handled_at IS NULL),"
            " (SELECT count(*) FROM nudges INDEXED BY nudges_pending_due"
            " WHERE state = 'pending' AND kind = ?),"
            " (SELECT count(*) FROM nudges INDEXED BY nudges_in_flight"
            " WHERE state = 'sending' AND kind = ?)",
            (REPLY, REPLY),
        )
        assert row is not None
        pending, in_flight, unhandled, replies_waiting, replies_sending = row
        return {
            "nudges_pending": pending - replies_waiting,
            "in_flight": in_flight,
            "inbox_unhandled": unhandled,
            "outbox": replies_waiting + replies_sending,
        }

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

        def take(conn: Conn) -> str:
            conn.execute(
                "INSERT INTO locks (name, owner, until, acquired_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET owner = excluded.owner,"
                " until = excluded.until, acquired_at = CASE WHEN locks.owner = excluded.owner"
                " THEN locks.acquired_at ELSE excluded.acquired_at END"
                " WHERE locks.owner = excluded.owner OR locks.until <= ? OR locks.owner = ?",
                (name, owner, to_ts(now + lease), to_ts(now), to_ts(now), dead),
            )
            # The row exists now: inserted, taken over, or held by someone else.
            (holder,) = conn.execute("SELECT owner FROM locks WHERE name = ?", (name,)).fetchone()
            return str(holder)

        holder = await self.db.atomic(take)
        return None if holder == owner else holder

    async def release_lock(self, name: str, owner: str) -> None:
        await self.db.write("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))

    async def all_pending(self) -> list[NudgeRow]:
        """Every pending nudge, earliest first (the operator's listing)."""
        rows = await self.db.all(
            f"SELECT {_NUDGE_COLUMNS} FROM nudges n JOIN users u ON u.user_id = n.user_id"
            " WHERE n.state = 'pending' ORDER BY n.due_at, n.id"
        )
        return [_nudge(row) for row in rows]
