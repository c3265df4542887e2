"""SQLite storage on a temporary file: migrations, atomic commits, the nudge queue."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import bot.storage.db as db_module
import bot.storage.store as store_module
from bot.engine.model import (
    CancelNudge,
    CancelNudges,
    DeleteUserData,
    Effect,
    MoveNudge,
    ScheduleNudge,
    SetOptOut,
    SnoozeNudge,
    State,
    Step,
)
from bot.storage.db import LATEST_VERSION, Database
from bot.storage.store import AlreadyHandled, Durable, Store, UserRecord

NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sub" / "coach.sqlite3"


@pytest.fixture
def store(db: Database) -> Store:
    return Store(db)


async def rows(db: Database, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with db.conn.execute(sql, params) as cur:
        return [tuple(r) for r in await cur.fetchall()]


async def nudge_states(db: Database) -> dict[int, str]:
    return {i: s for i, s in await rows(db, "SELECT id, state FROM nudges")}


def nudge(kind: str, hours: float, deadline_hours: float | None = None) -> ScheduleNudge:
    deadline = None if deadline_hours is None else NOW + timedelta(hours=deadline_hours)
    return ScheduleNudge(kind, NOW + timedelta(hours=hours), deadline)


async def full_rows(db: Database) -> dict[int, dict[str, Any]]:
    """Every column of every nudge, by id."""
    async with db.conn.execute("SELECT * FROM nudges") as cur:
        return {r["id"]: dict(r) for r in await cur.fetchall()}


async def put(db: Database, nudge_id: int, **columns: object) -> None:
    """Set a nudge's columns directly (a state the store would reach by a longer way)."""
    sets = ", ".join(f"{name} = ?" for name in columns)
    await db.conn.execute(f"UPDATE nudges SET {sets} WHERE id = ?", (*columns.values(), nudge_id))


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


async def one_in_each_state(store: Store) -> dict[str, int]:
    """User 1's "pep" nudges (deadline in two days), one in each state a nudge can be in."""
    ids = await store.commit(
        1, 100, State(), [nudge("pep", h, 48) for h in (-5, -4, -3, -2, -1, 5)], NOW
    )
    claimed = await store.claim_due(NOW, 10, "me")  # the five due ones, earliest first
    assert [n.id for n in claimed] == ids[:5]
    assert await store.finish(ids[0], "sent", NOW, owner="me")
    assert await store.finish(ids[1], "failed", NOW, "gave up", owner="me", attempted=True)
    assert await store.finish(ids[2], "expired", NOW, "deadline passed", owner="me")
    assert await store.finish(ids[3], "cancelled", NOW, "opted out", owner="me")
    names = ("sent", "failed", "expired", "cancelled", "sending", "pending")
    return dict(zip(names, ids, strict=True))


# --- migrations ------------------------------------------------------------------------------


async def test_migrations_from_empty(db: Database, db_path: Path) -> None:
    assert db_path.exists()
    assert await db.version() == LATEST_VERSION
    tables = {r[0] for r in await rows(db, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "nudges"} <= tables
    indexes = {r[0] for r in await rows(db, "SELECT name FROM sqlite_master WHERE type='index'")}
    assert "nudges_pending_due" in indexes
    assert (await rows(db, "PRAGMA journal_mode"))[0][0] == "wal"
    assert (await rows(db, "PRAGMA foreign_keys"))[0][0] == 1


async def test_reopening_is_idempotent_and_keeps_data(db_path: Path) -> None:
    first = await Database.open(db_path)
    await Store(first).commit(1, 100, State(step=Step.MENU), [nudge("pep", 1)], NOW)
    await first.close()
    for _ in range(2):
        again = await Database.open(db_path)
        assert await again.version() == LATEST_VERSION
        assert await again.migrate() == LATEST_VERSION
        record = await Store(again).load_user(1)
        assert record is not None and record.state.step == Step.MENU
        assert len(await Store(again).pending_nudges(1)) == 1
        await again.close()


async def test_migrate_step_by_step_from_an_unmigrated_file(db_path: Path) -> None:
    raw = await Database.open(db_path, migrate=False)
    assert await raw.version() == 0
    assert await raw.migrate(target=0) == 0
    assert await rows(raw, "SELECT name FROM sqlite_master WHERE name = 'users'") == []
    assert await raw.migrate() == LATEST_VERSION
    assert await rows(raw, "SELECT name FROM sqlite_master WHERE name = 'users'") != []
    await raw.close()


# --- commit ----------------------------------------------------------------------------------


async def test_commit_stores_state_and_returns_new_nudge_ids(store: Store, db: Database) -> None:
    state = State(step=Step.GO, decision="go", timezone="Europe/Paris")
    ids = await store.commit(5, 500, state, [nudge("prep", 1), nudge("pep", 2, 3)], NOW)
    assert len(ids) == 2 and len(set(ids)) == 2
    record = await store.load_user(5)
    assert record is not None
    assert record.state == state and record.chat_id == 500
    assert record.active and not record.opted_out
    pending = await store.pending_nudges(5)
    assert [(n.id, n.kind) for n in pending] == list(zip(ids, ["prep", "pep"], strict=True))
    assert pending[1].deadline == NOW + timedelta(hours=3)
    assert pending[0].due_at == NOW + timedelta(hours=1)


async def test_commit_is_atomic(
    store: Store, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.commit(1, 100, State(step=Step.MENU), [], NOW)
    real_apply = store_module._apply
    calls = 0

    def failing_apply(
        conn: sqlite3.Connection, user_id: int, effect: Effect, ts: int
    ) -> int | None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk on fire")
        return real_apply(conn, user_id, effect, ts)

    monkeypatch.setattr(store_module, "_apply", failing_apply)
    with pytest.raises(RuntimeError, match="disk on fire"):
        await store.commit(
            1, 100, State(step=Step.GO, decision="go"), [nudge("prep", 1), nudge("pep", 2)], NOW
        )
    assert calls == 2
    record = await store.load_user(1)
    assert record is not None and record.state == State(step=Step.MENU)
    assert await rows(db, "SELECT * FROM nudges") == []
    # The connection is usable afterwards: no transaction left open.
    monkeypatch.setattr(store_module, "_apply", real_apply)
    await store.commit(1, 100, State(step=Step.LEAN), [nudge("pep", 2)], NOW)
    assert len(await store.pending_nudges(1)) == 1


async def test_a_new_user_failing_commit_leaves_no_user(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: object) -> int | None:
        raise RuntimeError("boom")

    monkeypatch.setattr(store_module, "_apply", boom)
    with pytest.raises(RuntimeError):
        await store.commit(2, 200, State(), [CancelNudges()], NOW)
    assert await store.load_user(2) is None


async def test_extra_work_joins_the_states_transaction(store: Store, db: Database) -> None:
    """Another feature's records go in with the new state, or not at all."""
    seen: list[str] = []

    def note(update_id: int, fail: bool = False) -> Callable[[sqlite3.Connection], None]:
        def extra(conn: sqlite3.Connection) -> None:
            seen.append(conn.execute("SELECT state FROM users WHERE user_id = 1").fetchone()[0])
            conn.execute(
                "INSERT INTO inbox (update_id, payload, received_at) VALUES (?, '{}', 0)",
                (update_id,),
            )
            if fail:
                raise RuntimeError("follower bug")

        return extra

    menu = State(step=Step.MENU)
    await store.commit(1, 100, menu, [], NOW, extra=note(1))
    assert seen == [menu.to_json()]  # it runs after the state is written, and sees it
    with pytest.raises(RuntimeError, match="follower bug"):
        await store.commit(1, 100, State(step=Step.GO), [nudge("pep", 1)], NOW, extra=note(2, True))
    assert await rows(db, "SELECT update_id FROM inbox") == [(1,)]
    record = await store.load_user(1)
    assert record is not None and record.state == menu
    assert await store.pending_nudges(1) == []


async def test_cancel_nudges_by_kind_or_all(store: Store, db: Database) -> None:
    ids = await store.commit(
        1, 100, State(), [nudge("prep", 1), nudge("pep", 2), nudge("checkback", 3)], NOW
    )
    other = await store.commit(2, 200, State(), [nudge("pep", 2)], NOW)
    await store.commit(1, 100, State(), [CancelNudges(("prep", "pep"))], NOW)
    states = await nudge_states(db)
    assert [states[i] for i in ids] == ["cancelled", "cancelled", "pending"]
    assert states[other[0]] == "pending"  # another user's nudge of the same kind stays
    await store.commit(1, 100, State(), [CancelNudges()], NOW)
    states = await nudge_states(db)
    assert states[ids[2]] == "cancelled" and states[other[0]] == "pending"


async def test_cancel_one_nudge_only_for_its_owner(store: Store, db: Database) -> None:
    (mine,) = await store.commit(1, 100, State(), [nudge("pep", 2)], NOW)
    (theirs,) = await store.commit(2, 200, State(), [nudge("pep", 2)], NOW)
    await store.commit(1, 100, State(), [CancelNudge(theirs)], NOW)  # a forged id
    assert (await nudge_states(db))[theirs] == "pending"
    await store.commit(1, 100, State(), [CancelNudge(mine)], NOW)
    assert (await nudge_states(db))[mine] == "cancelled"


async def test_snooze_moves_a_pending_or_sent_nudge_of_its_owner(
    store: Store, db: Database
) -> None:
    (first, second) = await store.commit(1, 100, State(), [nudge("pep", 1), nudge("prep", 2)], NOW)
    (theirs,) = await store.commit(2, 200, State(), [nudge("pep", 1)], NOW)
    await store.finish(second, "sent", NOW)
    later = NOW + timedelta(hours=5)
    await store.commit(
        1,
        100,
        State(),
        [SnoozeNudge(first, later), SnoozeNudge(second, later), SnoozeNudge(theirs, later)],
        NOW,
    )
    due = {i: d for i, d in await rows(db, "SELECT id, due_at FROM nudges")}
    assert due[first] == due[second] == int(later.timestamp())
    assert (await nudge_states(db))[second] == "pending"  # "Remind me later" brings it back
    assert due[theirs] == int((NOW + timedelta(hours=1)).timestamp())


async def test_snooze_does_not_revive_a_cancelled_nudge(store: Store, db: Database) -> None:
    (nid,) = await store.commit(1, 100, State(), [nudge("pep", 1)], NOW)
    await store.commit(1, 100, State(), [CancelNudges()], NOW)
    await store.commit(1, 100, State(), [SnoozeNudge(nid, NOW + timedelta(hours=3))], NOW)
    assert (await nudge_states(db))[nid] == "cancelled"


@pytest.mark.parametrize(
    "effects",
    [
        pytest.param([CancelNudges()], id="all"),
        pytest.param([CancelNudges(("pep",))], id="by-kind"),
        pytest.param("each", id="one-by-one"),
    ],
)
async def test_cancelling_never_rewrites_a_nudge_that_left_the_queue(
    store: Store, db: Database, effects: list[Effect] | str
) -> None:
    """Cancelling is about what is still to come: a nudge in flight, sent, failed or expired
    keeps its state and history (the dispatcher owns one in flight; the others are records)."""
    ids = await one_in_each_state(store)
    if effects == "each":
        effects = [CancelNudge(i) for i in ids.values()]
    assert isinstance(effects, list)
    before = await full_rows(db)
    await store.commit(1, 100, State(), effects, NOW)
    after = await full_rows(db)
    assert after[ids["pending"]] == {**before[ids["pending"]], "state": "cancelled"}
    for name in ("sending", "sent", "failed", "expired", "cancelled"):
        assert after[ids[name]] == before[ids[name]], name


async def test_snooze_brings_back_only_a_pending_or_sent_nudge(store: Store, db: Database) -> None:
    """A nudge in flight is the dispatcher's; a failed or expired one never reached the user and
    a cancelled one was turned off: none comes back with "Remind me later"."""
    ids = await one_in_each_state(store)
    before = await full_rows(db)
    later = NOW + timedelta(hours=10)
    await store.commit(1, 100, State(), [SnoozeNudge(i, later) for i in ids.values()], NOW)
    after = await full_rows(db)
    for name in ("pending", "sent"):
        assert (after[ids[name]]["state"], after[ids[name]]["due_at"]) == ("pending", ts(later))
    for name in ("sending", "failed", "expired", "cancelled"):
        assert after[ids[name]] == before[ids[name]], name


@pytest.mark.parametrize(
    ("until", "moved"),
    [
        (timedelta(hours=6) - timedelta(seconds=1), True),  # just before the deadline
        (timedelta(hours=6), False),  # at it: the engine expires a nudge due at its deadline
        (timedelta(hours=7), False),  # after it
    ],
)
async def test_snooze_does_not_move_a_nudge_past_its_deadline(
    store: Store, db: Database, until: timedelta, moved: bool
) -> None:
    (nid,) = await store.commit(1, 100, State(), [nudge("pep", 1, 6)], NOW)
    await put(db, nid, attempts=2)  # it had failed twice
    before = await full_rows(db)
    await store.commit(1, 100, State(), [SnoozeNudge(nid, NOW + until)], NOW)
    after = (await full_rows(db))[nid]
    if moved:
        # A new reminder the user asked for: due when asked, with its retries whole again.
        assert after == {**before[nid], "due_at": ts(NOW + until), "attempts": 0}
    else:
        assert after == before[nid]


async def test_snooze_without_a_deadline_moves_the_nudge_any_distance(
    store: Store, db: Database
) -> None:
    (nid,) = await store.commit(1, 100, State(), [nudge("pep", 1)], NOW)
    far = NOW + timedelta(days=30)
    await store.commit(1, 100, State(), [SnoozeNudge(nid, far)], NOW)
    assert (await full_rows(db))[nid]["due_at"] == ts(far)


async def test_move_changes_only_the_owners_pending_nudges(store: Store, db: Database) -> None:
    """The interview moved with the time zone: its pending reminders move; a cancelled or a
    sent one stays as it was (a reminder cancelled in /nudges stays cancelled)."""
    pending, cancelled, sent = await store.commit(
        1, 100, State(), [nudge("prep", 1, 5), nudge("pep", 2, 6), nudge("debrief", 3, 7)], NOW
    )
    (theirs,) = await store.commit(2, 200, State(), [nudge("pep", 2, 6)], NOW)
    await store.commit(1, 100, State(), [CancelNudge(cancelled)], NOW)
    await store.finish(sent, "sent", NOW)
    before = {i: (d, dl) for i, d, dl in await rows(db, "SELECT id, due_at, deadline FROM nudges")}
    hour = timedelta(hours=1)
    moves: list[Effect] = [
        MoveNudge(n, NOW + timedelta(hours=10), NOW + timedelta(hours=12))
        for n in (pending, cancelled, sent, theirs)
    ]
    moves.append(MoveNudge(pending, NOW + 10 * hour, None))  # the last word wins
    await store.commit(1, 100, State(), moves, NOW)
    after = {i: (d, dl) for i, d, dl in await rows(db, "SELECT id, due_at, deadline FROM nudges")}
    assert after[pending] == (int((NOW + 10 * hour).timestamp()), None)
    for untouched in (cancelled, sent, theirs):
        assert after[untouched] == before[untouched]
    assert await nudge_states(db) == {
        pending: "pending",
        cancelled: "cancelled",
        sent: "sent",
        theirs: "pending",
    }


async def test_opt_out_until_the_user_writes_again(store: Store) -> None:
    await store.commit(1, 100, State(), [CancelNudges(), SetOptOut(True)], NOW)
    record = await store.load_user(1)
    assert record is not None and record.opted_out
    await store.commit(1, 100, State(), [], NOW, user_wrote=False)
    record = await store.load_user(1)
    assert record is not None and record.opted_out
    await store.commit(1, 100, State(), [], NOW)
    record = await store.load_user(1)
    assert record is not None and not record.opted_out


async def test_deactivate_cancels_and_writing_reactivates(store: Store, db: Database) -> None:
    ids = await store.commit(1, 100, State(), [nudge("pep", -1), nudge("prep", 5)], NOW)
    await store.claim_due(NOW, 10)  # the first is now in flight
    await store.deactivate(1)
    record = await store.load_user(1)
    assert record is not None and not record.active
    states = await nudge_states(db)
    assert [states[i] for i in ids] == ["cancelled", "cancelled"]
    assert await store.claim_due(NOW + timedelta(days=1), 10) == []
    await store.commit(1, 100, State(), [], NOW)
    record = await store.load_user(1)
    assert record is not None and record.active


async def test_delete_user_data_removes_user_and_nudges(store: Store, db: Database) -> None:
    await store.commit(1, 100, State(decision="go"), [nudge("pep", 1), nudge("prep", 2)], NOW)
    await store.commit(2, 200, State(), [nudge("pep", 1)], NOW)
    await store.commit(1, 100, State(), [DeleteUserData()], NOW)
    assert await store.load_user(1) is None
    assert await rows(db, "SELECT id FROM nudges WHERE user_id = 1") == []
    assert await store.load_user(2) is not None
    assert len(await store.pending_nudges(2)) == 1


# --- the nudge queue -------------------------------------------------------------------------


async def test_claim_due_returns_due_pending_rows_in_due_order(store: Store, db: Database) -> None:
    a = (await store.commit(1, 100, State(), [nudge("pep", -1)], NOW))[0]
    b = (await store.commit(2, 200, State(), [nudge("prep", -3)], NOW))[0]
    c = (await store.commit(3, 300, State(), [nudge("checkback", -2)], NOW))[0]
    future = (await store.commit(4, 400, State(), [nudge("pep", 1)], NOW))[0]
    cancelled = (await store.commit(5, 500, State(), [nudge("pep", -5)], NOW))[0]
    await store.commit(5, 500, State(), [CancelNudge(cancelled)], NOW)

    claimed = await store.claim_due(NOW, 10, "me")
    assert [n.id for n in claimed] == [b, c, a]
    assert [n.chat_id for n in claimed] == [200, 300, 100]
    assert all(n.attempts == 0 for n in claimed)  # a claim is not an attempt
    leases = await rows(db, "SELECT claimed_by, lease_until FROM nudges WHERE state = 'sending'")
    assert set(leases) == {("me", int((NOW + timedelta(minutes=2)).timestamp()))}
    states = await nudge_states(db)
    assert {states[i] for i in (a, b, c)} == {"sending"}
    assert states[future] == "pending" and states[cancelled] == "cancelled"
    assert await store.claim_due(NOW, 10) == []  # a second claim gets none of them
    assert await store.next_due_at() == NOW + timedelta(hours=1)


async def test_claim_due_respects_the_limit_earliest_first(store: Store) -> None:
    for hours in (-1, -4, -2, -3):
        await store.commit(1, 100, State(), [nudge("pep", hours)], NOW)
    first = await store.claim_due(NOW, 2)
    assert [n.due_at for n in first] == [NOW - timedelta(hours=4), NOW - timedelta(hours=3)]
    rest = await store.claim_due(NOW, 10)
    assert [n.due_at for n in rest] == [NOW - timedelta(hours=2), NOW - timedelta(hours=1)]


async def test_recover_in_flight_puts_claimed_rows_back(store: Store, db: Database) -> None:
    ids = await store.commit(1, 100, State(), [nudge("pep", -1), nudge("prep", -2)], NOW)
    claimed = await store.claim_due(NOW, 10)
    await store.finish(claimed[0].id, "sent", NOW)
    assert await store.recover_in_flight() == 1
    states = await nudge_states(db)
    assert sorted(states[i] for i in ids) == ["pending", "sent"]
    again = await store.claim_due(NOW, 10)
    assert [n.id for n in again] == [claimed[1].id]
    assert again[0].attempts == 0  # the crash did not use up a retry
    assert await store.recover_in_flight() == 1
    assert await store.recover_in_flight() == 0


async def test_a_live_lease_is_never_taken_back(store: Store, db: Database) -> None:
    """Two processes on one database: the second one's start-up recovery must leave the
    first one's in-flight nudges alone until their lease expires."""
    (nid,) = await store.commit(1, 100, State(), [nudge("pep", -1)], NOW)
    lease = timedelta(minutes=2)
    assert [n.id for n in await store.claim_due(NOW, 10, "first", lease)] == [nid]
    assert await store.recover_in_flight(NOW + timedelta(minutes=1)) == 0
    assert await store.claim_due(NOW + timedelta(minutes=1), 10, "second") == []
    # Renewed while sending, it lasts; the second process's outcome is refused.
    assert await store.renew(nid, "first", NOW + timedelta(minutes=5))
    assert not await store.renew(nid, "second", NOW + timedelta(minutes=9))
    assert await store.recover_in_flight(NOW + timedelta(minutes=4)) == 0
    assert not await store.finish(nid, "sent", NOW, owner="second")
    assert not await store.retry(nid, NOW, "x", owner="second")
    assert (await nudge_states(db))[nid] == "sending"
    # Expired (the first process died): taken back, and the late first process cannot record.
    assert await store.recover_in_flight(NOW + timedelta(minutes=5)) == 1
    assert [n.id for n in await store.claim_due(NOW + timedelta(minutes=5), 10, "second")] == [nid]
    assert not await store.finish(nid, "sent", NOW, owner="first")
    assert await store.finish(nid, "sent", NOW, owner="second")
    assert (await nudge_states(db))[nid] == "sent"


async def test_an_owner_that_lost_the_lease_changes_nothing(store: Store, db: Database) -> None:
    """Whatever a process that lost its lease reports (sent, failed, try again...), the row is
    as the store left it: taken back (pending), then someone else's, then finished."""
    (nid,) = await store.commit(1, 100, State(), [nudge("pep", -1)], NOW)
    await store.claim_due(NOW, 10, "first", timedelta(minutes=2))
    late = NOW + timedelta(minutes=3)

    async def reports(owner: str) -> list[bool]:
        return [
            await store.finish(nid, "sent", late, owner=owner),
            await store.finish(nid, "failed", late, "boom", owner=owner, attempted=True),
            await store.finish(nid, "expired", late, "deadline passed", owner=owner),
            await store.finish(nid, "cancelled", late, "blocked", owner=owner),
            await store.retry(nid, late + timedelta(hours=1), "boom", owner=owner),
            await store.retry(nid, late, "quiet hours", count_attempt=False, owner=owner),
        ]

    assert await store.recover_in_flight(late) == 1  # its lease expired: back to pending
    before = await full_rows(db)
    assert await reports("first") == [False] * 6
    assert await full_rows(db) == before
    assert [n.id for n in await store.claim_due(late, 10, "second")] == [nid]
    before = await full_rows(db)
    assert await reports("first") == [False] * 6
    assert await full_rows(db) == before
    assert await store.finish(nid, "sent", late, owner="second")
    before = await full_rows(db)
    assert before[nid]["state"] == "sent"
    # Finished: not even its last holder can rewrite it.
    assert await reports("second") == [False] * 6
    assert await full_rows(db) == before


async def test_sent_records_only_the_rows_the_owner_still_holds(store: Store, db: Database) -> None:
    mine, retried, theirs, unlisted, waiting, done = await store.commit(
        1, 100, State(), [nudge("reply", -1) for _ in range(6)], NOW
    )
    lease = ts(NOW + timedelta(minutes=2))
    for nid in (mine, retried, unlisted):
        await put(db, nid, state="sending", claimed_by="me", lease_until=lease)
    await put(db, retried, last_error="timed out")  # an earlier try failed
    await put(db, theirs, state="sending", claimed_by="them", lease_until=lease)
    earlier = ts(NOW - timedelta(hours=1))
    await put(db, done, state="sent", claimed_by="me", sent_at=earlier)
    before = await full_rows(db)
    now = NOW + timedelta(seconds=5)

    store.sent([mine, retried, theirs, waiting, done], now, "me")
    assert await full_rows(db) == before  # not yet: it waits for the next hop
    await db.flush()

    after = await full_rows(db)
    for nid in (mine, retried):
        assert after[nid] == {
            **before[nid],
            "state": "sent",
            "sent_at": ts(now),
            "lease_until": None,
            "last_error": None,
        }
    for nid in (theirs, unlisted, waiting, done):
        assert after[nid] == before[nid]
    store.sent([], now, "me")
    await db.flush()
    assert await full_rows(db) == after


async def test_only_real_failures_count_as_attempts(store: Store, db: Database) -> None:
    (nid,) = await store.commit(1, 100, State(), [nudge("pep", -1)], NOW)
    for counted in (False, True, False, True):
        await store.claim_due(NOW, 10, "me")
        assert await store.retry(nid, NOW, "x", count_attempt=counted, owner="me")
    await store.claim_due(NOW, 10, "me")
    assert await store.finish(nid, "failed", NOW, "gave up", owner="me", attempted=True)
    assert await rows(db, "SELECT attempts, state FROM nudges") == [(3, "failed")]


async def test_a_named_lock_has_one_holder_while_its_lease_lasts(store: Store) -> None:
    lease = timedelta(seconds=30)
    assert await store.acquire_lock("poller", "a", NOW, lease) is None
    assert await store.acquire_lock("poller", "b", NOW + timedelta(seconds=10), lease) == "a"
    assert await store.acquire_lock("poller", "a", NOW + timedelta(seconds=20), lease) is None
    assert await store.acquire_lock("poller", "b", NOW + timedelta(seconds=40), lease) == "a"
    assert await store.acquire_lock("other", "b", NOW, lease) is None  # another name, free
    # Expired: the next one takes it; released: free at once.
    assert await store.acquire_lock("poller", "b", NOW + timedelta(seconds=50), lease) is None
    await store.release_lock("poller", "a")  # not a's any more: no effect
    assert await store.acquire_lock("poller", "a", NOW + timedelta(seconds=51), lease) == "b"
    await store.release_lock("poller", "b")
    assert await store.acquire_lock("poller", "a", NOW + timedelta(seconds=52), lease) is None


async def test_the_queue_is_read_through_indexes_not_whole_table_scans(
    store: Store, db: Database
) -> None:
    """The nudges table keeps every nudge ever sent; the queue's work must not grow with it.
    Each statement the store runs for the queue, exactly as it ran (traced), is planned so
    that no step reads every nudge (a scan is fine only of a partial index, which holds just
    the live ones), and due order comes from an index, not from sorting what was found (a
    sort is fine only of rows fetched by id)."""
    for user in range(1, 30):
        await store.commit(user, user, State(), [nudge("pep", user), nudge("prep", -user)], NOW)
    partial = {r["name"] for r in await db.all("PRAGMA index_list(nudges)") if r["partial"]}
    assert partial  # the schema has some
    statements: list[str] = []
    await db.run(lambda conn: conn.set_trace_callback(statements.append))
    try:
        await store.next_due_at()
        [first, *_] = await store.claim_due(NOW, 10, "me")
        await store.claim_owners()
        await store.renew(first.id, "me", NOW + timedelta(minutes=2))
        await store.finish(first.id, "sent", NOW, owner="me")
        await store.recover_in_flight(NOW)
        await store.release_claims("someone")
        await store.queue_depths()
        await store.all_pending()
    finally:
        await db.run(lambda conn: conn.set_trace_callback(None))
    queries = [sql for sql in statements if re.search(r"\bnudges\b", sql)]
    assert len(queries) >= 9
    table_step = re.compile(r"(SCAN|SEARCH) (nudges|n)\b(.*)")
    for sql in queries:
        plan = [str(r[-1]) for r in await db.all(f"EXPLAIN QUERY PLAN {sql}")]
        steps = [m for m in map(table_step.match, plan) if m]
        assert steps, (sql, plan)
        for step in steps:
            kind, how = step.group(1), step.group(3)
            if kind == "SCAN":
                used = re.search(r"USING (?:COVERING )?INDEX (\w+)", how)
                assert used and used.group(1) in partial, (sql, plan)
        if any("TEMP B-TREE FOR ORDER BY" in s for s in plan):
            assert all("INTEGER PRIMARY KEY" in m.group(3) for m in steps), (sql, plan)


async def test_queue_depths_count_what_waits(store: Store, db: Database) -> None:
    await one_in_each_state(store)  # one of user 1's is pending, one in flight
    await store.commit(2, 200, State(), [nudge("pep", 3), nudge("prep", 4)], NOW)
    await store.receive([(1, "{}"), (2, "{}"), (3, "{}"), (4, "{}")], NOW)
    await store.mark_handled(2, NOW)
    # Update 4 owes three replies: one goes out (sent), one is being sent, one failed and
    # waits for the dispatcher. The outbox is those two, counted apart from the nudges.
    owed = Durable(4, ["{}", "{}", "{}"], owner="me")
    await store.commit(3, 300, State(), [], NOW, durable=owed)
    await store.finish(owed.ids[0], "sent", NOW, owner="me")
    await store.retry(owed.ids[2], NOW, "502", owner="me")
    assert await store.queue_depths() == {
        "nudges_pending": 3,
        "in_flight": 2,
        "inbox_unhandled": 2,
        "outbox": 2,
    }


async def test_load_reads_what_an_update_needs_in_one_go(store: Store, db: Database) -> None:
    state = State(step=Step.GO, decision="go")
    (later, sooner, cancelled) = await store.commit(
        1, 100, state, [nudge("pep", 2, 3), nudge("prep", 1), nudge("checkback", 4)], NOW
    )
    (theirs,) = await store.commit(2, 200, State(), [nudge("pep", 1)], NOW)
    await store.commit(1, 100, state, [CancelNudge(cancelled)], NOW)
    await put(db, later, attempts=1)

    def count_users(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT count(*) FROM users").fetchone()[0])

    loaded = await store.load(1, tapped_id=cancelled, also=count_users)
    assert loaded.record == UserRecord(1, 100, state, active=True, opted_out=False)
    assert [(n.id, n.kind, n.due_at, n.deadline) for n in loaded.pending] == [
        (sooner, "prep", NOW + timedelta(hours=1), None),
        (later, "pep", NOW + timedelta(hours=2), NOW + timedelta(hours=3)),
    ]
    # The nudge they tapped, whatever its state (a tapped one was usually sent already).
    assert loaded.tapped is not None
    assert (loaded.tapped.id, loaded.tapped.kind) == (cancelled, "checkback")
    assert loaded.also == 2
    assert (await store.load(1)).tapped is None
    assert (await store.load(1, tapped_id=theirs)).tapped is None  # not theirs to tap
    assert (await store.load(1)).also is None
    stranger = await store.load(3, tapped_id=theirs, also=count_users)
    assert (stranger.record, stranger.pending, stranger.tapped) == (None, [], None)


async def test_load_asks_only_what_the_user_can_have(store: Store, db: Database) -> None:
    # Every update starts with a load (README, "Benchmarks": at most three hops per update):
    # a stranger has no nudges to read, and one who tapped nothing has no tapped nudge.
    (theirs,) = await store.commit(1, 100, State(), [nudge("pep", 1)], NOW)
    statements: list[str] = []
    await db.conn.set_trace_callback(statements.append)

    async def selects(user_id: int, tapped_id: int | None = None) -> int:
        statements.clear()
        await store.load(user_id, tapped_id=tapped_id)
        return sum(1 for s in statements if s.lstrip().upper().startswith("SELECT"))

    assert await selects(3, tapped_id=theirs) == 1  # a stranger: only the user lookup
    assert await selects(1) == 2  # the user and their pending nudges
    assert await selects(1, tapped_id=theirs) == 3  # and the one they tapped


async def test_get_nudge_finds_a_users_own_nudge_in_any_state(store: Store) -> None:
    ids = await one_in_each_state(store)
    for nid in ids.values():
        found = await store.get_nudge(1, nid)
        assert found is not None and (found.id, found.kind) == (nid, "pep")
    assert await store.get_nudge(2, ids["pending"]) is None


@pytest.mark.parametrize(
    ("state", "attempted", "attempts", "sent_at"),
    [
        ("sent", False, 2, True),
        ("failed", True, 3, False),  # a failed send: counted
        ("failed", False, 2, False),  # e.g. a reply that could not be read: not a send
        ("expired", False, 2, False),
        ("cancelled", False, 2, False),
    ],
)
async def test_finish_records_the_outcome(
    store: Store, db: Database, state: str, attempted: bool, attempts: int, sent_at: bool
) -> None:
    (nid,) = await store.commit(1, 100, State(), [nudge("pep", -1)], NOW)
    await put(db, nid, attempts=2)
    await store.claim_due(NOW, 10, "me")
    later = NOW + timedelta(seconds=30)
    error = None if state == "sent" else "why"
    options = {"attempted": True} if attempted else {}
    assert await store.finish(nid, state, later, error, owner="me", **options)
    row = (await full_rows(db))[nid]
    assert (row["state"], row["last_error"], row["lease_until"], row["attempts"]) == (
        state,
        error,
        None,
        attempts,
    )
    assert row["sent_at"] == (ts(later) if sent_at else None)


async def test_the_inbox_edges(store: Store) -> None:
    assert await store.next_offset() is None  # nothing stored: no offset to acknowledge
    assert await store.receive([], NOW) == 0
    assert await store.next_offset() is None
    assert await store.unhandled(10) == []
    await store.receive([(3, "c"), (1, "a"), (2, "b")], NOW)
    assert await store.unhandled(2) == [(1, "a"), (2, "b")]  # oldest first, at most `limit`
    assert await store.unhandled(10, after=1) == [(2, "b"), (3, "c")]
    await store.mark_handled(2, NOW, "boom")
    assert await store.unhandled(10) == [(1, "a"), (3, "c")]
    assert not store.handled_here(1)
    await store.commit(1, 100, State(), [], NOW, durable=Durable(1, [], "me"))
    assert store.handled_here(1) and not store.handled_here(3)
    with pytest.raises(AlreadyHandled) as raised:
        await store.commit(1, 100, State(), [], NOW, durable=Durable(1, [], "me"))
    assert raised.value.update_id == 1 and "1" in str(raised.value)


async def test_move_gives_the_nudge_its_new_deadline(store: Store, db: Database) -> None:
    (nid,) = await store.commit(1, 100, State(), [nudge("pep", 1, 5)], NOW)
    due, deadline = NOW + timedelta(hours=2), NOW + timedelta(hours=8)
    await store.commit(1, 100, State(), [MoveNudge(nid, due, deadline)], NOW)
    row = (await full_rows(db))[nid]
    assert (row["due_at"], row["deadline"]) == (ts(due), ts(deadline))


async def test_owed_replies_are_queued_leased_to_the_process_that_sends_them(
    store: Store, db: Database
) -> None:
    await store.receive([(9, "{}")], NOW)
    durable = Durable(9, ['{"text":"a"}', '{"text":"b"}'], "me", lease=timedelta(seconds=90))
    await store.commit(1, 100, State(), [nudge("pep", 1)], NOW, durable=durable)
    queued = {i: r for i, r in (await full_rows(db)).items() if r["kind"] == "reply"}
    assert durable.ids == sorted(queued)
    assert {(r["claimed_by"], r["lease_until"], r["due_at"]) for r in queued.values()} == {
        ("me", ts(NOW) + 90, ts(NOW))
    }
    # Its process sends them and records them, all at once.
    store.sent(durable.ids, NOW, "me")
    await db.flush()
    states = {i: r["state"] for i, r in (await full_rows(db)).items() if r["kind"] == "reply"}
    assert states == dict.fromkeys(durable.ids, "sent")


async def test_concurrent_commits_and_claims_on_one_connection(store: Store, db: Database) -> None:
    new_ids: list[int] = []
    claimed: list[int] = []

    async def user(n: int) -> None:
        new_ids.extend(await store.commit(n, n, State(step=Step.MENU), [nudge("pep", -1)], NOW))

    async def claim() -> None:
        claimed.extend(n.id for n in await store.claim_due(NOW, 5))

    await asyncio.gather(*(user(n) for n in range(50)), *(claim() for _ in range(20)))
    assert len(set(new_ids)) == 50
    claimed.extend(n.id for n in await store.claim_due(NOW, 100))
    assert sorted(claimed) == sorted(new_ids)  # each nudge claimed exactly once
    count = await rows(db, "SELECT count(*) FROM users")
    assert count[0][0] == 50


async def test_all_pending_lists_everyones_pending_nudges_earliest_first(store: Store) -> None:
    await store.commit(
        1, 100, State(timezone="Asia/Tokyo"), [nudge("pep", 2), nudge("prep", 1)], NOW
    )
    [cancelled] = await store.commit(2, 200, State(), [nudge("checkback", 3)], NOW)
    await store.commit(2, 200, State(), [nudge("followup", 4), CancelNudge(cancelled)], NOW)
    pending = await store.all_pending()
    assert [(n.user_id, n.chat_id, n.kind) for n in pending] == [
        (1, 100, "prep"),
        (1, 100, "pep"),
        (2, 200, "followup"),
    ]
    assert [n.due_at for n in pending] == [NOW + timedelta(hours=h) for h in (1, 2, 4)]


async def test_a_dead_holders_lock_can_be_taken_at_once(store: Store) -> None:
    lease = timedelta(minutes=1)
    assert await store.acquire_lock("poller", "dead", NOW, lease) is None
    assert await store.acquire_lock("poller", "new", NOW, lease) == "dead"
    assert await store.acquire_lock("poller", "new", NOW, lease, dead="someone else") == "dead"
    assert await store.acquire_lock("poller", "new", NOW, lease, dead="dead") is None


async def test_an_update_is_handled_once_and_its_replies_queued_with_the_state(
    store: Store, db: Database
) -> None:
    assert await store.receive([(5, '{"update_id":5}'), (6, '{"update_id":6}')], NOW) == 2
    assert await store.receive([(5, '{"update_id":5}')], NOW) == 0  # a redelivery
    assert await store.next_offset() == 7
    first = Durable(5, ['{"text":"a"}', '{"text":"b"}'], "me")
    await store.commit(1, 100, State(step=Step.MENU), [], NOW, durable=first)
    assert len(first.ids) == 2
    queued = await rows(db, "SELECT kind, state, claimed_by, payload FROM nudges ORDER BY id")
    assert queued == [
        ("reply", "sending", "me", '{"text":"a"}'),
        ("reply", "sending", "me", '{"text":"b"}'),
    ]
    assert await store.unhandled(10) == [(6, '{"update_id":6}')]
    # Handled again (a race with a redelivery): refused, and nothing of it is saved.
    with pytest.raises(AlreadyHandled):
        await store.commit(
            1, 100, State(step=Step.DECISION), [], NOW, durable=Durable(5, ['{"text":"c"}'], "me")
        )
    record = await store.load_user(1)
    assert record is not None and record.state.step == Step.MENU
    assert len(await rows(db, "SELECT id FROM nudges")) == 2
    # The handled update's text is gone; its id stays to recognise a redelivery.
    assert await rows(db, "SELECT payload FROM inbox WHERE update_id = 5") == [("",)]


async def test_old_handled_updates_are_forgotten_but_the_latest_id_stays(
    store: Store, db: Database
) -> None:
    await store.receive([(1, "{}"), (2, "{}"), (3, "{}"), (4, "{}")], NOW)
    for update_id in (1, 2, 4):
        await store.mark_handled(update_id, NOW)
    assert await store.forget_handled(NOW) == 0  # nothing older than the cut yet
    assert await store.forget_handled(NOW + timedelta(seconds=1)) == 2  # 1 and 2
    # 3 is unhandled, 4 is the newest (the next getUpdates offset is read from it).
    assert await rows(db, "SELECT update_id FROM inbox ORDER BY update_id") == [(3,), (4,)]
    assert await store.next_offset() == 5


# --- deferred writes: replies marked sent with the next hop ----------------------------------


async def sending_replies(store: Store, update_id: int = 9) -> list[int]:
    await store.receive([(update_id, "{}")], NOW)
    durable = Durable(update_id, ['{"text":"a"}', '{"text":"b"}'], "me")
    await store.commit(1, 100, State(), [], NOW, durable=durable)
    return durable.ids


async def reply_states(db: Database) -> dict[int, str]:
    return {i: r["state"] for i, r in (await full_rows(db)).items() if r["kind"] == "reply"}


async def test_a_sent_mark_rides_with_the_next_hop(store: Store, db: Database) -> None:
    ids = await sending_replies(store)
    hops = 0
    real = db.conn._execute

    async def counting(fn: Any, *args: Any, **kw: Any) -> Any:
        nonlocal hops
        hops += 1
        return await real(fn, *args, **kw)

    db.conn._execute = counting  # type: ignore[method-assign]
    try:
        store.sent(ids, NOW, "me")
        assert hops == 0
        assert db._flush_timer is not None  # a hop of its own, should none come in time
        # The next update's read carries the mark: one hop for both, the mark first.
        loaded = await store.load(1)
        assert hops == 1
        assert db._flush_timer is None  # taken: no flush left to come
        assert loaded.record is not None
        db.conn._execute = real  # type: ignore[method-assign]
        assert await reply_states(db) == dict.fromkeys(ids, "sent")
    finally:
        db.conn._execute = real  # type: ignore[method-assign]


class Hops:
    """Counts the database's hops, and those `Store.settle` makes of its own."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.all = 0
        self.own = 0
        real = db.conn._execute

        async def counting(fn: Any, *args: Any, **kw: Any) -> Any:
            self.all += 1
            self.own += getattr(fn, "__name__", "") == "_nothing"  # wrapped by a carrying hop
            return await real(fn, *args, **kw)

        monkeypatch.setattr(db.conn, "_execute", counting)


async def test_settling_waits_for_the_next_hop_without_one_of_its_own(
    store: Store, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await sending_replies(store)
    monkeypatch.setattr(store_module, "MARK_WITHIN", 60.0)  # no timer comes meanwhile
    hops = Hops(db, monkeypatch)
    mark = store.sent([first], NOW, "me")
    assert not mark.written
    settling = asyncio.create_task(store.settle(mark))
    await asyncio.sleep(0)  # it waits...
    assert not settling.done()
    await store.load(1)  # ...for another update's read, which carries the record
    await asyncio.wait_for(settling, 5)
    assert mark.written and (hops.all, hops.own) == (1, 0)
    # Written already: nothing to wait for.
    await store.settle(mark)
    assert hops.all == 1
    assert store.sent([], NOW, "me").written  # nothing to record
    assert await reply_states(db) == {first: "sent", second: "sending"}


async def test_settling_with_no_hop_coming_is_done_by_the_flush_timer(
    store: Store, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    [first, _] = await sending_replies(store)
    monkeypatch.setattr(store_module, "MARK_WITHIN", 0.0)
    hops = Hops(db, monkeypatch)
    mark = store.sent([first], NOW, "me")
    await asyncio.wait_for(store.settle(mark), 5)
    assert mark.written and (hops.all, hops.own) == (1, 0)


async def test_settling_makes_a_hop_of_its_own_when_none_wrote_the_record_in_time(
    store: Store, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    [first, _] = await sending_replies(store)
    monkeypatch.setattr(store_module, "MARK_WITHIN", 60.0)
    monkeypatch.setattr(store_module, "SETTLE_WITHIN", 0.0)
    hops = Hops(db, monkeypatch)
    mark = store.sent([first], NOW, "me")
    await asyncio.wait_for(store.settle(mark), 5)
    assert mark.written and (hops.all, hops.own) == (1, 1)
    assert await reply_states(db) == {first: "sent", _: "sending"}


async def test_a_sent_mark_is_written_by_the_timer_when_no_hop_comes(
    store: Store, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await sending_replies(store)
    monkeypatch.setattr(store_module, "MARK_WITHIN", 0.0)
    store.sent(ids, NOW, "me")
    deadline = asyncio.get_running_loop().time() + 10
    while db._deferred and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0)  # yield to the timer; the deadline bounds the wait
    while db._flushing and asyncio.get_running_loop().time() < deadline:
        await asyncio.wait(set(db._flushing), timeout=1)
    assert not db._deferred and not db._flushing
    assert await reply_states(db) == dict.fromkeys(ids, "sent")


async def test_closing_the_database_writes_the_deferred_marks(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    db = await Database.open(path)
    store = Store(db)
    ids = await sending_replies(store)
    store.sent(ids, NOW, "me")
    await db.close()
    again = await Database.open(path)
    try:
        assert await reply_states(again) == dict.fromkeys(ids, "sent")
    finally:
        await again.close()


async def test_a_failing_deferred_write_does_not_fail_the_hop_it_rides_with(
    store: Store, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await sending_replies(store)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE no_such_table SET x = 1")

    db.defer(broken, 60)
    with caplog.at_level(logging.WARNING, logger="bot.storage.db"):
        loaded = await store.load(1)
    assert loaded.record is not None
    assert "event=deferred_write_failed error=no such table: no_such_table" in caplog.text
    assert not db._deferred


async def test_deferred_writes_apply_in_order_before_the_hops_own_work(db: Database) -> None:
    await db.write("CREATE TABLE t (n INTEGER)")
    db.defer(lambda conn: conn.execute("INSERT INTO t VALUES (1)"), 60)
    db.defer(lambda conn: conn.execute("UPDATE t SET n = n * 10"), 60)
    rows = await db.all("SELECT n FROM t")
    assert [r[0] for r in rows] == [10]


async def test_the_flush_timer_keeps_its_task_and_raises_nothing(
    store: Store, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The loop keeps only a weak reference to a task: the timer must hold the flush it starts.
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        ids = await sending_replies(store)
        monkeypatch.setattr(store_module, "MARK_WITHIN", 0.0)
        store.sent(ids, NOW, "me")
        deadline = loop.time() + 10
        while db._deferred and loop.time() < deadline:
            await asyncio.sleep(0)  # yield to the timer; the deadline bounds the wait
        assert db._flushing, "the flush started by the timer is held until it ends"
        await asyncio.wait(set(db._flushing), timeout=10)
        assert await reply_states(db) == dict.fromkeys(ids, "sent")
    finally:
        loop.set_exception_handler(None)
    assert errors == []


async def test_deferred_writes_lost_to_a_closed_connection_are_logged_not_raised(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    db.defer(lambda conn: conn.execute("SELECT 1"), 60)
    await db.conn.close()
    with caplog.at_level(logging.WARNING, logger="bot.storage.db"):
        await db.flush()
    (record,) = [r for r in caplog.records if r.name == "bot.storage.db"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "event=deferred_writes_lost error=no active connection"


async def test_a_failing_deferred_write_is_logged_as_one_event_line(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    db.defer(lambda conn: conn.execute("UPDATE no_such_table SET x = 1"), 60)
    with caplog.at_level(logging.WARNING, logger="bot.storage.db"):
        await db.ping()
    assert [r.getMessage() for r in caplog.records if r.name == "bot.storage.db"] == [
        "event=deferred_write_failed error=no such table: no_such_table"
    ]


# --- the connection's settings and helpers ----------------------------------------------------


async def test_the_connection_waits_for_another_writer_and_writes_without_fsync_each_commit(
    db: Database,
) -> None:
    # Another process holding the write lock is waited for (seconds), not failed at once.
    timeout = await db.one("PRAGMA busy_timeout")
    assert timeout is not None and timeout[0] >= 1000
    # WAL: a commit survives the process dying without waiting for the disk each time
    # (synchronous NORMAL, 1; FULL, 2, would sync every commit; OFF, 0, could corrupt).
    mode = await db.one("PRAGMA journal_mode")
    sync = await db.one("PRAGMA synchronous")
    assert mode is not None and mode[0].lower() == "wal"
    assert sync is not None and sync[0] == 1
    foreign = await db.one("PRAGMA foreign_keys")
    assert foreign is not None and foreign[0] == 1


async def test_deleted_data_is_not_left_readable_in_the_file_or_its_wal(
    store: Store, db: Database, db_path: Path
) -> None:
    marker = "zq-unmistakable-marker-" * 8
    await store.commit(7, 70, State(situation=marker), [nudge("pep", 5)], NOW)
    await store.commit(7, 70, State(), [DeleteUserData()], NOW)
    await db.checkpoint()
    assert await store.load_user(7) is None
    files = [db_path, db_path.with_name(db_path.name + "-wal")]
    for path in files:
        if path.exists():
            assert marker.encode() not in path.read_bytes(), path.name


async def test_one_all_run_and_atomic_pass_their_arguments(db: Database) -> None:
    row = await db.one("SELECT ? + ?", (2, 3))
    assert row is not None and row[0] == 5
    assert [tuple(r) for r in await db.all("SELECT ?, ?", ("a", 1))] == [("a", 1)]

    def work(conn: sqlite3.Connection, first: int, *, second: int) -> tuple[int, int]:
        return first, second

    assert await db.run(work, 1, second=2) == (1, 2)
    assert await db.atomic(work, 3, second=4) == (3, 4)


async def test_migrate_to_a_target_applies_it_and_later_ones_after(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = await Database.open(db_path, migrate=False)
    try:
        with caplog.at_level(logging.INFO, logger="bot.storage.db"):
            assert await raw.migrate(target=2) == 2
        assert await raw.version() == 2
        assert [r.getMessage() for r in caplog.records if r.name == "bot.storage.db"] == [
            "event=migration version=0001",
            "event=migration version=0002",
        ]
        # The ones already applied are skipped, the rest still run.
        assert await raw.migrate() == LATEST_VERSION
        assert LATEST_VERSION > 2
    finally:
        await raw.close()


def test_a_migration_script_is_split_into_statements_without_its_comments() -> None:
    script = (
        "CREATE TABLE a (x INTEGER); -- a comment -- with dashes; and a semicolon\n"
        "-- a whole line of comment\n"
        "CREATE INDEX a_x ON a (x);\n"
    )
    assert db_module._statements(script) == [
        "CREATE TABLE a (x INTEGER)",
        "CREATE INDEX a_x ON a (x)",
    ]


# --- what a claimed row carries ----------------------------------------------------------------


async def test_a_claimed_row_carries_its_deadline_and_a_replys_payload(store: Store) -> None:
    await store.commit(1, 100, State(), [nudge("pep", -1, 48), nudge("prep", -2)], NOW)
    await store.receive([(5, "{}")], NOW)
    durable = Durable(5, ['{"text":"hello"}'], "other")
    await store.commit(2, 200, State(), [], NOW, durable=durable)
    await store.recover_in_flight()  # the reply's lease taken back: the queue sends it
    by_kind = {n.kind: n for n in await store.claim_due(NOW, 10, "me")}
    assert by_kind["pep"].deadline == NOW + timedelta(hours=48)
    assert by_kind["prep"].deadline is None
    assert by_kind["pep"].payload is None
    assert by_kind["reply"].payload == '{"text":"hello"}'
    assert by_kind["reply"].chat_id == 200


async def test_a_retry_counts_as_an_attempt_unless_told_otherwise(
    store: Store, db: Database
) -> None:
    (nid,) = await store.commit(1, 100, State(), [nudge("pep", -1)], NOW)
    await store.claim_due(NOW, 10, "me")
    assert await store.retry(nid, NOW, "network down", owner="me")
    assert await rows(db, "SELECT attempts, state FROM nudges") == [(1, "pending")]


async def test_claim_owners_names_who_holds_claims(store: Store) -> None:
    await store.commit(1, 100, State(), [nudge("pep", -2), nudge("prep", -1)], NOW)
    assert await store.claim_owners() == []
    await store.claim_due(NOW, 1, "first")
    await store.claim_due(NOW, 1, "second")
    assert sorted(await store.claim_owners()) == ["first", "second"]


def test_the_memory_of_updates_handled_here_is_bounded(store: Store) -> None:
    # A long-running process must not remember every update id it ever handled.
    assert store._handled_ids.maxlen is not None
