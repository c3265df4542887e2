"""The weekly digest keeps coming: whenever one ends, sent or not (expired while the bot was
down, refused by Telegram, cancelled while they were away), next Monday's
is planned; only turning it off (or being removed) stops it.

Times follow the product's rule (Monday 09:00 in the recruiter's zone, UTC here; a digest not
out within a day is dropped), not the code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.engine.decide import Expire, Send
from bot.engine.model import CancelNudges, Event, Outcome, SetOptOut, State
from bot.recruiters import repo
from bot.recruiters.follower import DIGEST, RecruiterFollower
from bot.storage.db import Database
from bot.storage.store import Conn, Store
from tests import test_recruiters as base
from tests.test_recruiters import NOW, RECRUITER, pending, rows

clock = base.clock
follower = base.follower

MONDAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # the first digest after NOW
NEXT_MONDAY = MONDAY + timedelta(days=7)
TUESDAY = MONDAY + timedelta(days=1, hours=1)  # its day is over


async def recruiter(db: Database, follower: RecruiterFollower) -> None:
    await db.run(repo.set_status, RECRUITER, "approved", NOW, "Rita")
    assert await db.atomic(follower.schedule_digest, RECRUITER, NOW)


async def planned(db: Database) -> list[datetime]:
    return [n.due_at for n in await pending(db, RECRUITER, DIGEST)]


async def test_a_digest_that_expired_while_the_bot_was_down_plans_the_next(
    db: Database, follower: RecruiterFollower
) -> None:
    await recruiter(db, follower)
    [missed] = await pending(db, RECRUITER, DIGEST)
    assert await follower.decide(missed, TUESDAY) == Expire("deadline passed")
    assert await planned(db) == [missed.due_at, NEXT_MONDAY]  # the dispatcher drops the first


async def test_a_restart_after_the_missed_monday_plans_the_next_at_once(
    db: Database, follower: RecruiterFollower
) -> None:
    await recruiter(db, follower)
    [missed] = await pending(db, RECRUITER, DIGEST)
    # Restarted on Tuesday, before the dispatcher got to the old one: it only waits to expire.
    assert await db.atomic(follower.schedule_digest, RECRUITER, TUESDAY)
    assert await planned(db) == [MONDAY, NEXT_MONDAY]
    # When it does expire, no second one for the same Monday.
    assert isinstance(await follower.decide(missed, TUESDAY), Expire)
    assert await planned(db) == [MONDAY, NEXT_MONDAY]


async def test_the_next_digest_is_planned_when_one_goes_out_whatever_telegram_says(
    db: Database, follower: RecruiterFollower
) -> None:
    await recruiter(db, follower)
    [digest] = await pending(db, RECRUITER, DIGEST)
    assert isinstance(await follower.decide(digest, MONDAY), Send)
    # Planned before the send: a 400 or a failure after it changes nothing.
    assert await planned(db) == [MONDAY, NEXT_MONDAY]
    await db.conn.execute("UPDATE nudges SET state = 'failed' WHERE id = ?", (digest.id,))
    await db.conn.commit()
    await follower.after_sent(digest)
    assert await planned(db) == [NEXT_MONDAY]
    # Decided early (an odd clock), it still plans the Monday after its own.
    [following] = await pending(db, RECRUITER, DIGEST)
    await follower.decide(following, NOW)
    assert await planned(db) == [NEXT_MONDAY, NEXT_MONDAY + timedelta(days=7)]


async def test_stop_leaves_the_digest_and_it_comes_back_after_time_away(
    db: Database, follower: RecruiterFollower
) -> None:
    await recruiter(db, follower)
    store = Store(db)
    stop = Event(RECRUITER, "command", "stop", "", "Rita")
    stopping = Outcome((), State(), (CancelNudges(), SetOptOut(True)))

    def follow(event: Event, outcome: Outcome, away: bool) -> Callable[[Conn], None]:
        def extra(conn: Conn) -> None:
            follower.record(conn, event, State(), outcome, NOW, away=away)

        return extra

    # /stop cancels the conversation's reminders, not the recruiter's digest.
    await store.commit(
        RECRUITER, RECRUITER, State(), stopping.effects, NOW, extra=follow(stop, stopping, False)
    )
    states = await rows(db, "SELECT state FROM nudges WHERE kind = ? ORDER BY id", DIGEST)
    assert states == [("pending",)]
    # Due while they had opted out, the dispatcher cancels it (nothing goes to them then).
    await db.conn.execute("UPDATE nudges SET state = 'cancelled' WHERE kind = ?", (DIGEST,))
    await db.conn.commit()
    # An update from someone who was not away does not plan digests.
    help_ = Event(RECRUITER, "command", "help", "", "Rita")
    quiet = Outcome((), State(), ())
    await store.commit(RECRUITER, RECRUITER, State(), (), NOW, extra=follow(help_, quiet, False))
    assert await planned(db) == []
    # Back after /stop (or blocking the bot): their next update plans it again.
    await store.commit(RECRUITER, RECRUITER, State(), (), NOW, extra=follow(help_, quiet, True))
    assert await planned(db) == [MONDAY]


async def test_turned_off_or_removed_no_next_digest(
    db: Database, follower: RecruiterFollower
) -> None:
    await recruiter(db, follower)
    [digest] = await pending(db, RECRUITER, DIGEST)
    await db.run(repo.set_digest, RECRUITER, False)
    assert await follower.decide(digest, MONDAY) == Expire("no digest for this recruiter")
    assert await planned(db) == [MONDAY]  # only the one being decided, which expires
    await db.run(repo.set_digest, RECRUITER, True)
    await db.run(repo.set_status, RECRUITER, "removed", NOW)
    assert isinstance(await follower.decide(digest, MONDAY), Expire)
    assert await planned(db) == [MONDAY]
