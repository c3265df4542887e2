"""The recruiters' follower, desk and shell command on a real SQLite file, without Telegram."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.engine.decide import Expire, Send
from bot.engine.model import (
    Attended,
    CantMakeIt,
    ConsentGiven,
    Decided,
    Event,
    InterviewSet,
    Invitation,
    Outcome,
    QuestionAsked,
    Reply,
    State,
    WorryNamed,
)
from bot.recruiters import repo
from bot.recruiters.buttons import DESK
from bot.recruiters.cli import recruiters_main
from bot.recruiters.desk import RecruiterDesk
from bot.recruiters.follower import (
    DIGEST,
    QUESTIONS_A_DAY,
    RELAY,
    RecruiterFollower,
    next_digest,
    relay,
)
from bot.render import Renderer
from bot.storage.db import Database
from bot.storage.store import Conn, NudgeRow, Store
from tests.conftest import FakeClock

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday
RECRUITER, OTHER, ADMIN, CANDIDATE = 10, 20, 30, 40
RENDERER = Renderer()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def follower(db: Database, clock: FakeClock) -> RecruiterFollower:
    return RecruiterFollower(
        db, default_timezone="UTC", worry_labels={"nervous": "I'm nervous"}, clock=clock
    )


def make_desk(
    db: Database,
    follower: RecruiterFollower,
    clock: FakeClock,
    admins: frozenset[int] = frozenset({ADMIN}),
) -> RecruiterDesk:
    """A desk as the bot builds it at start-up: a new one stands for a restart."""
    return RecruiterDesk(
        db,
        RENDERER,
        follower,
        admin_ids=admins,
        clock=clock,
        bot_username=lambda: "coach_bot",
        worry_labels={"nervous": "I'm nervous"},
    )


@pytest.fixture
def desk(db: Database, follower: RecruiterFollower, clock: FakeClock) -> RecruiterDesk:
    return make_desk(db, follower, clock)


async def setup_opening(
    db: Database, recruiter: int = RECRUITER, status: str = "approved"
) -> tuple[repo.Opening, repo.Link]:
    def make(conn: Conn) -> tuple[repo.Opening, repo.Link]:
        repo.set_status(conn, recruiter, status, NOW, "Rita")
        opening = repo.create_opening(conn, recruiter, "Dev", "Acme", None, None, NOW)
        link = repo.add_link(conn, opening.id, None, NOW)
        repo.ensure_user(conn, CANDIDATE, NOW)
        return opening, link

    return await db.atomic(make)


def start(code: str, name: str = "Dana") -> Event:
    return Event(CANDIDATE, "command", "start", code, name)


async def record(
    db: Database,
    follower: RecruiterFollower,
    event: Event,
    *milestones: Any,
    state: State | None = None,
    before: State | None = None,
    now: datetime = NOW,
) -> bool:
    outcome = Outcome((), state or State(), milestones=milestones)
    return await db.atomic(follower.record, event, before or State(), outcome, now)


async def invite(follower: RecruiterFollower, event: Event) -> Invitation | None:
    return await follower.db.run(follower.invitation, event, follower.clock())


async def rows(db: Database, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with db.conn.execute(sql, params) as cur:
        return [tuple(r) for r in await cur.fetchall()]


async def pending(db: Database, recipient: int, kind: str = RELAY) -> list[NudgeRow]:
    """The messages queued for `recipient` and not sent yet, earliest first."""
    return [n for n in await Store(db).all_pending() if n.user_id == recipient and n.kind == kind]


async def queued(db: Database, recipient: int, kind: str = RELAY) -> list[dict[str, Any]]:
    found = await rows(
        db,
        "SELECT payload FROM nudges WHERE user_id = ? AND kind = ? AND state = 'pending'",
        recipient,
        kind,
    )
    return [json.loads(p) for (p,) in found]


# --- the digest's time -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        # Monday 08:00 in Berlin: this morning at 09:00.
        (datetime(2026, 11, 23, 7, 0, tzinfo=UTC), "Europe/Berlin", datetime(2026, 11, 23, 9, 0)),
        # Monday 09:00 exactly: next week.
        (datetime(2026, 11, 23, 8, 0, tzinfo=UTC), "Europe/Berlin", datetime(2026, 11, 30, 9, 0)),
        # Sunday evening in New York: tomorrow.
        (
            datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
            "America/New_York",
            datetime(2026, 11, 23, 9, 0),
        ),
        # Across the end of summer time: still 09:00 local.
        (datetime(2026, 10, 20, 12, 0, tzinfo=UTC), "Europe/Berlin", datetime(2026, 10, 26, 9, 0)),
    ],
)
def test_the_digest_comes_on_the_next_monday_at_nine_local(
    now: datetime, zone: str, expected: datetime
) -> None:
    due = next_digest(now, ZoneInfo(zone))
    assert due.astimezone(ZoneInfo(zone)).replace(tzinfo=None) == expected
    assert due > now


# --- attribution and the invitation ----------------------------------------------------------


async def test_the_first_link_is_kept_and_a_later_one_recorded(
    db: Database, follower: RecruiterFollower
) -> None:
    opening, first = await setup_opening(db)
    second = await db.atomic(repo.add_link, opening.id, "LinkedIn", NOW)
    await record(db, follower, start(first.code))
    await record(db, follower, start(second.code), now=NOW + timedelta(hours=1))
    await record(db, follower, start(first.code), now=NOW + timedelta(hours=2))
    assert await rows(
        db, "SELECT first_link_id, last_link_id FROM candidates WHERE user_id = ?", CANDIDATE
    ) == [(first.id, first.id)]
    # Opened once, counted for the channel that brought them first.
    assert await rows(db, "SELECT link_id, step FROM funnel") == [(first.id, "opened")]


async def test_the_invitation_follows_the_latest_usable_link(
    db: Database, follower: RecruiterFollower
) -> None:
    opening, link = await setup_opening(db)
    assert await invite(follower, start(link.code)) is not None
    assert await invite(follower, Event(CANDIDATE, "text", "hi")) is None  # not yet attributed
    await record(db, follower, start(link.code))
    invitation = await invite(follower, Event(CANDIDATE, "text", "hi"))
    assert invitation is not None and (invitation.role, invitation.company) == ("Dev", "Acme")
    assert invitation.consent is None and invitation.can_ask
    await db.run(repo.set_opening_status, opening.id, "paused")
    # Paused: no new attribution, but a candidate already in keeps the context.
    assert await invite(follower, Event(CANDIDATE + 1, "command", "start", link.code)) is None
    assert await invite(follower, Event(CANDIDATE, "text", "hi")) is not None
    await db.run(repo.set_opening_status, opening.id, "closed")
    assert await invite(follower, Event(CANDIDATE, "text", "hi")) is None
    await db.run(repo.set_opening_status, opening.id, "open")
    await db.run(repo.set_status, RECRUITER, "removed", NOW)
    assert await invite(follower, Event(CANDIDATE, "text", "hi")) is None


async def test_questions_one_at_a_time_and_a_few_a_day(
    db: Database, follower: RecruiterFollower, clock: FakeClock
) -> None:
    _opening, link = await setup_opening(db)
    await record(db, follower, start(link.code))
    assert await record(db, follower, start(""), QuestionAsked("Is it remote?"))
    [payload] = await queued(db, RECRUITER)
    assert payload["context"]["text"] == "Is it remote?"
    assert DESK.unpack(payload["buttons"][0][1]) is not None
    invitation = await invite(follower, Event(CANDIDATE, "text", "x"))
    assert invitation is not None and not invitation.can_ask and invitation.questions == 1
    # An unanswered question stops blocking after a week.
    clock.advance(days=7, minutes=1)
    invitation = await invite(follower, Event(CANDIDATE, "text", "x"))
    assert invitation is not None and invitation.can_ask
    for n in range(QUESTIONS_A_DAY):
        question = await db.run(repo.add_question, CANDIDATE, _opening.id, f"q{n}", clock.now)
        assert await db.run(repo.answer_question, question.id, "a", clock.now)
        assert not await db.run(repo.answer_question, question.id, "again", clock.now)
    invitation = await invite(follower, Event(CANDIDATE, "text", "x"))
    assert invitation is not None and not invitation.can_ask  # the day's limit


# --- milestones, consent and notifications ---------------------------------------------------


async def test_milestones_become_funnel_steps_consented_or_not(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, link = await setup_opening(db)
    await record(db, follower, start(link.code))
    at = NOW + timedelta(days=2)
    text = Event(CANDIDATE, "text", "x")
    await record(db, follower, text, WorryNamed("nervous"), WorryNamed("nervous"))
    await record(db, follower, text, Decided("go", None), state=State(decision="go"))
    await record(db, follower, text, InterviewSet(at, None), state=State(decision="go"))
    await record(db, follower, text, Attended("missed"))
    steps = await rows(db, "SELECT step, worry FROM funnel ORDER BY step, worry")
    assert steps == [
        ("engaged", ""),
        ("go", ""),
        ("opened", ""),
        ("time_set", ""),
        ("worry", "nervous"),
    ]
    await record(db, follower, text, Attended("went_well"))
    assert ("attended",) in await rows(db, "SELECT step FROM funnel")
    # Nobody agreed: the recruiter was told nothing, and nothing of the plans is kept.
    assert await queued(db, RECRUITER) == []
    assert await rows(db, "SELECT name, decision, interview_at FROM candidates") == [
        (None, None, None)
    ]


async def test_with_consent_the_recruiter_hears_of_each_change(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, link = await setup_opening(db)
    await record(db, follower, start(link.code))
    at = NOW + timedelta(days=2)
    going = State(decision="go", interview_at=at)
    text = Event(CANDIDATE, "button", "x", "", "Dana")
    assert await record(db, follower, text, ConsentGiven(True), state=going)
    await record(db, follower, text, InterviewSet(at + timedelta(days=1), at), state=going)
    await record(db, follower, text, CantMakeIt(), state=going)
    await record(db, follower, text, Decided("pass", "go"), state=State(decision="pass"))
    notices = [p["context"] for p in await queued(db, RECRUITER)]
    assert [n["what"] for n in notices] == ["go", "rescheduled", "cant", "withdrew"]
    assert notices[0]["name"] == "Dana" and notices[0]["when"] == "Wed 25 Nov 10:00"
    assert await rows(db, "SELECT about_user_id FROM nudges") == [(CANDIDATE,)] * 4
    assert await rows(db, "SELECT name, decision FROM candidates") == [("Dana", "pass")]
    # Withdrawn everywhere: the name and plans go, and no further word.
    await record(db, follower, text, ConsentGiven(False, everywhere=True), state=going)
    await record(db, follower, text, Decided("go", "pass"), state=going)
    assert len(await queued(db, RECRUITER)) == 4
    assert await rows(db, "SELECT consent, name, decision FROM candidates") == [(0, None, None)]


async def test_a_removed_recruiter_is_told_nothing(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, link = await setup_opening(db)
    await record(db, follower, start(link.code))
    await db.run(repo.set_status, RECRUITER, "removed", NOW)
    text = Event(CANDIDATE, "text", "x", "", "Dana")
    assert not await record(db, follower, text, ConsentGiven(True), state=State(decision="go"))
    assert not await record(db, follower, text, QuestionAsked("hello?"))
    assert await queued(db, RECRUITER) == []


# --- delivery --------------------------------------------------------------------------------


def row(
    kind: str, payload: str | None, deadline: datetime | None = None, user: int = 1
) -> NudgeRow:
    return NudgeRow(1, user, user, kind, NOW, deadline, 1, payload)


async def test_a_queued_message_is_sent_as_prepared_or_dropped(
    follower: RecruiterFollower,
) -> None:
    payload = relay(
        "recruiters/answer",
        {"role": "Dev", "company": "Acme", "text": "Yes"},
        (("ask_another", "v1:ask"),),
    )
    decision = await follower.decide(row(RELAY, json.dumps(payload)), NOW)
    assert isinstance(decision, Send)
    (reply,) = decision.replies
    assert reply.template == "recruiters/answer" and reply.context["text"] == "Yes"
    assert reply.keyboard[0][0].data == "v1:ask"
    assert "Yes" in RENDERER.render(reply).plain_text
    for broken in ("{", "[1]", '{"context": {}}', '{"template": 7}'):
        assert await follower.decide(row(RELAY, broken), NOW) == Expire("unreadable payload")
    # No payload at all reads as an empty one: nothing to send.
    assert await follower.decide(row(RELAY, None), NOW) == Expire("unreadable payload")
    late = row(RELAY, json.dumps(payload), deadline=NOW)
    assert await follower.decide(late, NOW) == Expire("deadline passed")
    almost = row(RELAY, json.dumps(payload), deadline=NOW + timedelta(seconds=1))
    assert isinstance(await follower.decide(almost, NOW), Send)


async def test_the_digest_is_composed_when_due_and_the_next_one_queued(
    db: Database, follower: RecruiterFollower, clock: FakeClock
) -> None:
    _opening, link = await setup_opening(db)
    await record(db, follower, start(link.code))
    decision = await follower.decide(row(DIGEST, "{}", user=RECRUITER), NOW)
    assert isinstance(decision, Send)
    assert "Opened the link: 1" in RENDERER.render(decision.replies[0]).plain_text
    await follower.after_sent(row(DIGEST, "{}", user=RECRUITER))
    [(due,)] = await rows(
        db, "SELECT due_at FROM nudges WHERE kind = 'digest' AND state = 'pending'"
    )
    assert datetime.fromtimestamp(due, UTC) == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    await db.run(repo.set_digest, RECRUITER, False)
    assert not await db.atomic(follower.schedule_digest, RECRUITER, NOW)
    assert await follower.decide(row(DIGEST, "{}", user=RECRUITER), NOW) == Expire(
        "no digest for this recruiter"
    )


async def test_a_zone_change_moves_a_recruiters_digest(
    db: Database, follower: RecruiterFollower
) -> None:
    await setup_opening(db)
    assert await db.atomic(follower.schedule_digest, RECRUITER, NOW)
    assert not await db.atomic(follower.schedule_digest, RECRUITER, NOW)  # one at a time
    await db.conn.execute(
        "UPDATE users SET state = ? WHERE user_id = ?",
        (State(timezone="Asia/Tokyo").to_json(), RECRUITER),
    )
    event = Event(RECRUITER, "command", "timezone", "Tokyo")
    await record(db, follower, event, state=State(timezone="Asia/Tokyo"), before=State())
    [(due,)] = await rows(
        db, "SELECT due_at FROM nudges WHERE kind = 'digest' AND state = 'pending'"
    )
    # Monday 30 Nov, 09:00 in Tokyo.
    assert datetime.fromtimestamp(due, UTC) == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


async def test_a_sent_reminder_counts_as_reminded(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, link = await setup_opening(db)
    await record(db, follower, start(link.code))
    await follower.after_sent(row("checkback", None, user=CANDIDATE))
    assert ("reminded",) not in await rows(db, "SELECT step FROM funnel")
    await follower.after_sent(row("pep", None, user=CANDIDATE))
    assert ("reminded",) in await rows(db, "SELECT step FROM funnel")


# --- the desk --------------------------------------------------------------------------------


def text_of(answer: Any) -> str:
    return "\n".join(
        getattr(item, "plain_text", "") or getattr(getattr(item, "caption", None), "plain_text", "")
        for item in answer.items
    )


async def test_newlink_in_one_line_or_in_steps(db: Database, desk: RecruiterDesk) -> None:
    await setup_opening(db)
    answer = await desk.command(RECRUITER, "Rita", "newlink", "Data   Analyst  AT  Globex Corp")
    assert "Data Analyst at Globex Corp" in text_of(answer)
    assert "https://t.me/coach_bot?start=" in text_of(answer)
    answer = await desk.command(RECRUITER, "Rita", "newlink", "Designer")
    assert "and the company?" in text_of(answer)  # the role given, the company asked
    assert await desk.wants_text(RECRUITER)
    answer = await desk.text(RECRUITER, "   ")
    assert "and the company?" in text_of(answer)  # nothing typed: asked again
    await desk.text(RECRUITER, "Initech " + "x" * 200)
    answer = await desk.button(RECRUITER, "Rita", DESK.pack("skip"))
    assert "short note" in text_of(answer)
    answer = await desk.text(RECRUITER, "Bring your portfolio")
    assert "Designer at Initech" in text_of(answer)
    assert not await desk.wants_text(RECRUITER)
    openings = await db.run(repo.openings_of, RECRUITER)
    newest = openings[0]
    assert (newest.role, newest.format, newest.note) == ("Designer", None, "Bring your portfolio")
    assert len(newest.company) == 80  # capped


async def test_a_cancelled_draft_creates_nothing(db: Database, desk: RecruiterDesk) -> None:
    await setup_opening(db)
    await desk.command(RECRUITER, "Rita", "newlink", "")
    await desk.text(RECRUITER, "Tester")
    answer = await desk.button(RECRUITER, "Rita", DESK.pack("cancel"))
    assert answer.notice == "Cancelled" and not await desk.wants_text(RECRUITER)
    assert len(await db.run(repo.openings_of, RECRUITER)) == 1


async def test_each_sees_their_own_openings_and_an_admin_all(
    db: Database, desk: RecruiterDesk
) -> None:
    mine, _ = await setup_opening(db)
    theirs, _ = await setup_opening(db, OTHER)
    answer = await desk.command(RECRUITER, "Rita", "links", "")
    assert [b[0][1] for b in answer.items[0].keyboard] == [DESK.pack("open", mine.id)]
    answer = await desk.command(ADMIN, "Ada", "links", "")
    assert {b[0][1] for b in answer.items[0].keyboard} == {
        DESK.pack("open", mine.id),
        DESK.pack("open", theirs.id),
    }
    answer = await desk.button(RECRUITER, "Rita", DESK.pack("op", theirs.id, "close"))
    assert answer.notice == "Not one of your openings"
    assert (await db.run(repo.get_opening, theirs.id)).status == "open"  # type: ignore[union-attr]
    answer = await desk.button(ADMIN, "Ada", DESK.pack("op", theirs.id, "pause"))
    assert answer.notice == "Now paused"


async def test_a_draft_left_by_a_removed_recruiter_takes_no_text(
    db: Database, desk: RecruiterDesk
) -> None:
    await setup_opening(db)
    await desk.command(RECRUITER, "Rita", "newlink", "")
    assert await desk.wants_text(RECRUITER)
    await db.run(repo.set_status, RECRUITER, "removed", NOW)
    assert not await desk.wants_text(RECRUITER)
    answer = await desk.command(RECRUITER, "Rita", "links", "")
    assert "This is for recruiters" in text_of(answer)


async def test_requests_are_sent_to_each_administrator_once(
    db: Database, desk: RecruiterDesk
) -> None:
    await desk.request(CANDIDATE, "Sam")
    [payload] = await queued(db, ADMIN)
    assert payload["context"] == {"name": "Sam", "user_id": CANDIDATE}
    answer = await desk.request(CANDIDATE, "Sam")
    assert "waiting" in text_of(answer)
    assert len(await queued(db, ADMIN)) == 1
    answer = await desk.decide_request(ADMIN, CANDIDATE, approve=True)
    assert answer.notice == "Done" and await desk.is_recruiter(CANDIDATE)
    assert [p["template"] for p in await queued(db, CANDIDATE)] == ["recruiters/approved"]
    assert len(await queued(db, CANDIDATE, DIGEST)) == 1


async def test_shell_add_list_remove(db_path: Path) -> None:
    out = io.StringIO()
    assert await recruiters_main(db_path, "add", 77, out) == 0
    assert await recruiters_main(db_path, "add", 77, out) == 0
    assert await recruiters_main(db_path, "list", None, out) == 0
    assert await recruiters_main(db_path, "remove", 77, out) == 0
    assert await recruiters_main(db_path, "remove", 77, out) == 1
    assert await recruiters_main(db_path, "remove", 78, out) == 1
    assert out.getvalue().splitlines() == [
        "77 is now a recruiter",
        "77 is a recruiter already",
        "77\tapproved\t",
        "77 is no longer a recruiter",
        "77 is not a recruiter",
        "78 is not a recruiter",
    ]


# --- the recruiters' texts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "expected"),
    [
        ("go", "Dana plans to attend the Dev interview, Wed 25 Nov 10:00."),
        ("unsure", "Dana is still unsure about the Dev interview."),
        ("pass", "Dana won't attend the Dev interview."),
        ("withdrew", "Dana has withdrawn from the Dev interview."),
        ("rescheduled", "Dana rescheduled the Dev interview to Wed 25 Nov 10:00."),
        ("cant", "Dana can't make it to the Dev interview (Wed 25 Nov 10:00)"),
        ("attended", "Dana attended the Dev interview."),
        ("missed", "Dana says the Dev interview didn't happen."),
    ],
)
def test_each_notice_says_what_happened(what: str, expected: str) -> None:
    context = {"what": what, "name": "Dana", "role": "Dev", "company": "Acme"}
    context["when"] = "Wed 25 Nov 10:00"
    text = RENDERER.render(Reply("recruiters/notice", context)).plain_text
    assert expected in text and "with their consent" in text
    anonymous = RENDERER.render(Reply("recruiters/notice", {**context, "name": ""})).plain_text
    assert anonymous.startswith(("✅ A candidate", "🤔 A candidate", "A candidate", "🗓 A", "⚠️ A"))


async def test_stats_and_lists_read_well(db: Database, desk: RecruiterDesk) -> None:
    opening, link = await setup_opening(db)
    follower = desk.follower
    for n in range(4):
        event = Event(CANDIDATE + n, "command", "start", link.code)
        await db.run(repo.ensure_user, CANDIDATE + n, NOW)
        outcome = Outcome((), State(), milestones=(WorryNamed("nervous"),))
        await db.atomic(follower.record, event, State(), outcome, NOW)
    answer = await desk.stats(RECRUITER, "o", opening.id, "all")
    # The text first; the chart is drawn once that went out.
    (text,) = answer.items
    assert answer.later is not None
    (chart,) = await answer.later()
    plain = text.plain_text  # type: ignore[union-attr]
    funnel = "• Opened the link: 4\n• Talked it through: 4\n• Decided: 0 (\u2212100% from"
    assert funnel in plain
    assert "• I'm nervous: 4" in plain
    assert not re.search(r"[^\n]•", plain)
    assert chart.png.startswith(b"\x89PNG")  # type: ignore[union-attr]
    listing = (await desk.links(RECRUITER)).items[0].plain_text  # type: ignore[union-attr]
    assert "• Dev at Acme: 4 opened, 0 going" in listing
    assert not re.search(r"[^\n]•", listing)
