"""What the recruiter reads in /stats and the weekly digest: the decisions split into going,
unsure and not going, and each channel's numbers in the period chosen.

Expected texts come from prompts/messages/recruiters/ and the product's rules (counts are of
candidates who reached a step within the period; one who changed their mind counts under each
answer they gave), not from the code.
"""

from __future__ import annotations

from datetime import timedelta

from bot.engine.decide import Send
from bot.engine.model import Decided, Event, State
from bot.recruiters import repo
from bot.recruiters.desk import RecruiterDesk
from bot.recruiters.follower import DIGEST, RecruiterFollower
from bot.storage.db import Database
from tests import test_recruiters as base
from tests.test_recruiters import (
    CANDIDATE,
    NOW,
    RECRUITER,
    RENDERER,
    pending,
    record,
    setup_opening,
    text_of,
)

clock = base.clock
follower = base.follower
desk = base.desk


async def candidate(
    db: Database, follower: RecruiterFollower, user: int, code: str, *decisions: str, days: int = 0
) -> None:
    """A candidate opens the link and gives these answers, in order, `days` ago."""
    at = NOW - timedelta(days=days)
    await db.run(repo.ensure_user, user, at)
    await record(db, follower, Event(user, "command", "start", code, "X"), now=at)
    previous = None
    for decision in decisions:
        milestone = Decided(decision, previous)
        event = Event(user, "text", "x", "", "X")
        await record(db, follower, event, milestone, state=State(decision=decision), now=at)
        previous = decision


async def test_stats_split_the_decided_into_going_unsure_and_not_going(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    opening, link = await setup_opening(db)
    for n, answers in enumerate((("go",), ("go",), ("unsure",), ("pass",), ())):
        await candidate(db, follower, CANDIDATE + n, link.code, *answers)
    text = text_of(await desk.stats(RECRUITER, "o", opening.id, "30d"))
    split = "   going 2 · unsure 1 · not going 1\n"
    assert "• Decided: 4\n" + split in text  # everyone who talked it through decided
    assert "change of mind" not in text
    # One changes her mind: she counts under both answers, and the line says so.
    await candidate(db, follower, CANDIDATE + 9, link.code, "unsure", "go")
    text = text_of(await desk.stats(RECRUITER, "o", opening.id, "30d"))
    assert (
        "• Decided: 5\n"
        "   going 3 · unsure 2 · not going 1 (a change of mind counts under each answer)\n"
    ) in text


async def test_no_split_when_nobody_decided(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    opening, link = await setup_opening(db)
    await candidate(db, follower, CANDIDATE, link.code)
    text = text_of(await desk.stats(RECRUITER, "o", opening.id, "30d"))
    assert "• Decided: 0" in text and "going" not in text


async def test_the_digest_splits_last_weeks_decisions(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, link = await setup_opening(db)
    await candidate(db, follower, CANDIDATE, link.code, "go")
    await candidate(db, follower, CANDIDATE + 1, link.code, "pass")
    await candidate(db, follower, CANDIDATE + 2, link.code, "unsure", days=10)  # the week before
    assert await db.atomic(follower.schedule_digest, RECRUITER, NOW)
    [digest] = await pending(db, RECRUITER, DIGEST)
    decision = await follower.decide(digest, digest.due_at)
    assert isinstance(decision, Send)
    text = RENDERER.render(decision.replies[0]).plain_text
    assert "• Decided: 2\n   going 1 · unsure 0 · not going 1\n" in text


async def test_each_channels_numbers_follow_the_period(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    opening, main = await setup_opening(db)
    linkedin = await db.atomic(repo.add_link, opening.id, "LinkedIn", NOW)
    await candidate(db, follower, CANDIDATE, main.code, "go", days=40)
    await candidate(db, follower, CANDIDATE + 1, linkedin.code, "go", days=2)
    month = text_of(await desk.stats(RECRUITER, "o", opening.id, "30d"))
    assert "• Main link: 0 opened, 0 going\n• LinkedIn: 1 opened, 1 going" in month
    ever = text_of(await desk.stats(RECRUITER, "o", opening.id, "all"))
    assert "• Main link: 1 opened, 1 going\n• LinkedIn: 1 opened, 1 going" in ever
