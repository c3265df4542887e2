"""SQLite storage on a temporary file: migrations, atomic commits, the nudge queue."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

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
from bot.storage.store import AlreadyHandled, Durable, Store

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


async def test_due_lookup_uses_the_partial_index(store: Store, db: Database) -> None:
    for user in range(1, 30):
        await store.commit(user, user, State(), [nudge("pep", user), nudge("prep", -user)], NOW)
    queries = [
        "SELECT id FROM nudges WHERE state = 'pending' AND due_at <= ? ORDER BY due_at LIMIT ?",
        "UPDATE nudges SET state = 'sending', claimed_by = 'x', lease_until = 0"
        " WHERE id IN (SELECT id FROM nudges WHERE state = 'pending' AND due_at <= ?"
        " ORDER BY due_at LIMIT ?) RETURNING id",
    ]
    for sql in queries:
        plan = [r[-1] for r in await rows(db, f"EXPLAIN QUERY PLAN {sql}", 0, 10)]
        assert any("nudges_pending_due" in step for step in plan), plan
        assert not any(step.strip() == "SCAN nudges" for step in plan), plan
        assert not any("TEMP B-TREE FOR ORDER BY" in step for step in plan), plan
    plan = [
        r[-1]
        for r in await rows(
            db, "EXPLAIN QUERY PLAN SELECT min(due_at) FROM nudges WHERE state = 'pending'"
        )
    ]
    assert any("nudges_pending_due" in step for step in plan), plan


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
