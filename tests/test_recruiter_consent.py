"""Consent whatever became of the opening: what /privacy and /mydata are given to show, what a
withdrawal covers, and that nothing agrees on a candidate's behalf to an opening closed since.

Expected values follow the product's rules (a candidate sees and can take back every consent
they gave; the recruiter who invited them, and only while approved, may see them), not the code.
"""

from __future__ import annotations

from bot.engine import buttons as B
from bot.engine.flow import reads_referrals
from bot.engine.model import ConsentAsked, ConsentGiven, Decided, Event, Referral, State
from bot.recruiters import repo, stats
from bot.recruiters.follower import RecruiterFollower
from bot.storage.db import Database
from tests import test_recruiters as base
from tests.test_recruiters import CANDIDATE, NOW, OTHER, RECRUITER, record, setup_opening, start

clock = base.clock
follower = base.follower


def said(name: str = "Dana") -> Event:
    return Event(CANDIDATE, "text", "x", "", name)


async def consented(db: Database, follower: RecruiterFollower, code: str) -> None:
    await record(db, follower, start(code))
    going = State(decision="go")
    await record(db, follower, said(), Decided("go", None), ConsentGiven(True), state=going)


async def test_referrals_list_every_opening_closed_or_not(
    db: Database, follower: RecruiterFollower
) -> None:
    first, first_link = await setup_opening(db)
    await consented(db, follower, first_link.code)
    await db.run(repo.set_opening_status, first.id, "closed")
    # Closed: no invitation for the conversation, but her consent is still there to see.
    invitation, referrals = await db.run(follower.recruitment, said(), NOW)
    assert invitation is None
    assert referrals == (Referral("Dev", "Acme", allowed=True, current=False, closed=True),)
    # Through a second recruiter's opening: that one is the conversation's, the first stays.
    _second, second_link = await setup_opening(db, OTHER)
    invitation, referrals = await db.run(follower.recruitment, start(second_link.code), NOW)
    assert invitation is not None and invitation.consent is None
    await record(db, follower, start(second_link.code))
    _, referrals = await db.run(follower.recruitment, said(), NOW)
    assert [(r.allowed, r.current, r.closed) for r in referrals] == [
        (True, False, True),
        (None, True, False),
    ]


async def test_a_withdrawal_covers_a_closed_opening_and_empties_the_export(
    db: Database, follower: RecruiterFollower
) -> None:
    opening, link = await setup_opening(db)
    await consented(db, follower, link.code)
    assert [r.name for r in await db.run(stats.consented_rows, RECRUITER)] == ["Dana"]
    await db.run(repo.set_opening_status, opening.id, "closed")
    await record(db, follower, said(), ConsentGiven(False, everywhere=True))
    assert await db.run(stats.consented_rows, RECRUITER) == []
    _, referrals = await db.run(follower.recruitment, said(), NOW)
    assert [r.allowed for r in referrals] == [False]


async def test_a_stale_allow_does_not_agree_to_an_opening_closed_since(
    db: Database, follower: RecruiterFollower
) -> None:
    opening, link = await setup_opening(db)
    await record(db, follower, start(link.code))
    await db.run(repo.set_opening_status, opening.id, "closed")
    await record(db, follower, said(), ConsentGiven(True), state=State(decision="go"))
    candidate = await db.run(repo.get_candidate, CANDIDATE, opening.id)
    assert candidate is not None and candidate.consent is None and candidate.name is None


async def test_a_removed_recruiters_candidates_are_in_no_export(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, link = await setup_opening(db)
    await consented(db, follower, link.code)
    assert len(await db.run(stats.consented_rows, None)) == 1  # an administrator's export
    await db.run(repo.set_status, RECRUITER, "removed", NOW)
    assert await db.run(stats.consented_rows, None) == []
    assert await db.run(stats.consented_rows, RECRUITER) == []
    # Approved again (the same person, back): their candidates' consent still stands.
    await db.run(repo.set_status, RECRUITER, "approved", NOW)
    assert len(await db.run(stats.consented_rows, RECRUITER)) == 1


def test_a_referral_after_each_choice() -> None:
    here = Referral("Dev", "Acme", allowed=None, current=True)
    there = Referral("Ops", "Globex", allowed=True, closed=True)
    assert here.after_consent("yes").allowed is True
    assert there.after_consent("yes").allowed is True  # agreeing covers this opening only
    assert here.after_consent("no").allowed is False
    assert there.after_consent("no").allowed is True
    assert here.after_consent("none").allowed is False
    assert there.after_consent("none").allowed is False


async def test_the_consent_question_once_put_is_a_no_until_answered(
    db: Database, follower: RecruiterFollower
) -> None:
    opening, link = await setup_opening(db)
    await record(db, follower, start(link.code))
    invitation, _ = await db.run(follower.recruitment, said(), NOW)
    assert invitation is not None and invitation.consent is None  # not asked: the engine asks
    await record(db, follower, said(), Decided("go", None), ConsentAsked())
    invitation, _ = await db.run(follower.recruitment, said(), NOW)
    assert invitation is not None and invitation.consent is False  # asked: not again
    await record(db, follower, said(), ConsentGiven(True), state=State(decision="go"))
    # Asked again somehow (an old message): an answer already given stands.
    await record(db, follower, said(), ConsentAsked())
    candidate = await db.run(repo.get_candidate, CANDIDATE, opening.id)
    assert candidate is not None and candidate.consent is True


async def test_a_removed_recruiters_link_is_an_unknown_code(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, link = await setup_opening(db)
    await db.run(repo.set_status, RECRUITER, "removed", NOW)
    invitation, referrals = await db.run(follower.recruitment, start(link.code), NOW)
    assert invitation is None and referrals == ()
    await record(db, follower, start(link.code))
    assert await base.rows(db, "SELECT count(*) FROM candidates") == [(0,)]
    assert await base.rows(db, "SELECT count(*) FROM funnel") == [(0,)]
    # Approved again: the same link works again.
    await db.run(repo.set_status, RECRUITER, "approved", NOW)
    invitation, _ = await db.run(follower.recruitment, start(link.code), NOW)
    assert invitation is not None and invitation.role == "Dev"


def test_only_the_events_that_show_referrals_load_them() -> None:
    """The openings list (a join and a count per opening) is read for /privacy, /mydata and a
    consent tap, not for every update."""

    def command(name: str) -> Event:
        return Event(CANDIDATE, "command", name, "", "Dana")

    def tap(*action: str) -> Event:
        return Event(CANDIDATE, "button", B.pack(*action))

    wanted = [command("privacy"), command("MyData"), tap("consent", "no"), tap("consent", "none")]
    assert all(reads_referrals(e) for e in wanted)
    ordinary = [said(), command("start"), command("help"), tap("dec", "go"), tap("ask")]
    assert not any(reads_referrals(e) for e in ordinary)
