"""What recruiters and candidates notice of the follower and the stats: the words and times of
the notices, the weekly digest's period and scope, what expires, the CSV export and the chart.

Expected values come from the templates in prompts/messages/recruiters/ and from the product's
rules (digest: the last 7 days of that recruiter's openings, top worries; times in the
recruiter's zone; CSV times in UTC; only consenting candidates exported), never from the code.
"""

from __future__ import annotations

import csv
import io
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from bot.engine.decide import Expire, Send
from bot.engine.model import (
    Attended,
    CantMakeIt,
    ConsentGiven,
    Decided,
    Event,
    InterviewSet,
    State,
    WorryNamed,
)
from bot.recruiters import repo, stats
from bot.recruiters.desk import RecruiterDesk
from bot.recruiters.follower import DIGEST, RecruiterFollower, next_digest
from bot.recruiters.stats import STEPS, Funnel, Reason, Scope, chart_png
from bot.storage.db import Database
from bot.storage.store import Conn, NudgeRow
from tests import test_recruiters as base
from tests.conftest import FakeClock
from tests.test_recruiters import (
    ADMIN,
    CANDIDATE,
    NOW,
    OTHER,
    RECRUITER,
    RENDERER,
    invite,
    pending,
    record,
    rows,
    setup_opening,
    start,
)

# An interview on Wednesday 25 Nov 2026 at 10:00 UTC (11:00 in Berlin).
INTERVIEW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


# The desk's fixtures, shared with tests/test_recruiters.py.
clock = base.clock
follower = base.follower
desk = base.desk


async def delivered(
    db: Database, follower: RecruiterFollower, recipient: int, at: datetime = NOW
) -> list[str]:
    """The texts `recipient` would get if the dispatcher sent their queue at `at`."""
    texts = []
    for nudge in await pending(db, recipient):
        decision = await follower.decide(nudge, at)
        assert isinstance(decision, Send), decision
        texts.extend(RENDERER.render(reply).plain_text for reply in decision.replies)
    return texts


async def set_zone(db: Database, user: int, zone: str) -> None:
    """The zone `user` chose with /timezone (kept in their conversation state)."""
    await db.run(repo.ensure_user, user, NOW)
    await db.conn.execute(
        "UPDATE users SET state = ? WHERE user_id = ?", (State(timezone=zone).to_json(), user)
    )


async def newcomer(db: Database, user: int) -> None:
    await db.run(repo.ensure_user, user, NOW)


def event(name: str = "Dana", user: int = CANDIDATE) -> Event:
    return Event(user, "text", "x", "", name)


def first_line(text: str) -> str:
    return text.strip().splitlines()[0]


# --- notices ---------------------------------------------------------------------------------


async def test_each_notice_names_what_the_candidate_did(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, link = await setup_opening(db)
    await record(db, follower, start(link.code))
    # Agreeing before deciding anything: there is nothing to tell yet.
    await record(db, follower, event(), ConsentGiven(True), state=State())
    assert await delivered(db, follower, RECRUITER) == []

    steps = [
        (Decided("go", None), State(decision="go"), "Dana plans to attend the Dev interview."),
        (
            Decided("unsure", "go"),
            State(decision="unsure"),
            "🤔 Dana is still unsure about the Dev interview.",
        ),
        # A time set while still unsure is no promise to attend.
        (InterviewSet(NOW + timedelta(days=3), None), State(decision="unsure"), None),
        (Attended("went_well"), State(decision="go"), "Dana attended the Dev interview."),
        (Attended("missed"), State(decision="go"), "Dana says the Dev interview didn't happen."),
    ]
    for milestone, state, expected in steps:
        before = len(await pending(db, RECRUITER))
        await record(db, follower, event(), milestone, state=state)
        texts = await delivered(db, follower, RECRUITER)
        if expected is None:
            assert len(texts) == before, milestone
        else:
            assert len(texts) == before + 1, milestone
            assert first_line(texts[-1]).endswith(expected), (milestone, texts[-1])


async def test_deciding_is_talking_it_through_and_a_mixed_interview_is_attended(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, link = await setup_opening(db)
    await record(db, follower, start(link.code))
    await record(db, follower, event(), Decided("go", None), state=State(decision="go"))
    await record(db, follower, event(), Attended("mixed"), state=State(decision="go"))
    assert await rows(db, "SELECT step FROM funnel ORDER BY step") == [
        ("attended",),
        ("engaged",),
        ("go",),
        ("opened",),
    ]


async def test_a_nameless_candidate_is_a_candidate_and_the_time_is_for_future_interviews(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, link = await setup_opening(db)
    await record(db, follower, start(link.code, name=""))
    going = State(decision="go")
    await record(db, follower, event(""), ConsentGiven(True), state=going)
    # An interview happening right now is no longer a time to quote.
    now_on = State(decision="go", interview_at=NOW)
    await record(db, follower, event(""), CantMakeIt(), state=now_on)
    texts = [first_line(t) for t in await delivered(db, follower, RECRUITER)]
    assert texts == [
        "✅ A candidate plans to attend the Dev interview.",
        "⚠️ A candidate can't make it to the Dev interview and may ask for another time.",
    ]


async def test_notice_times_are_in_the_recruiters_zone_not_the_machines(
    db: Database, follower: RecruiterFollower, machine_in_tokyo: None
) -> None:
    _opening, link = await setup_opening(db)
    await set_zone(db, RECRUITER, "Europe/Berlin")
    await record(db, follower, start(link.code))
    going = State(decision="go", interview_at=INTERVIEW)
    await record(db, follower, event(), ConsentGiven(True), state=going)
    [text] = await delivered(db, follower, RECRUITER)
    assert first_line(text) == "✅ Dana plans to attend the Dev interview, Wed 25 Nov 11:00."


async def test_a_recruiter_zone_no_longer_known_reads_as_utc(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, link = await setup_opening(db)
    await set_zone(db, RECRUITER, "Mars/Olympus_Mons")
    await record(db, follower, start(link.code))
    going = State(decision="go", interview_at=INTERVIEW)
    await record(db, follower, event(), ConsentGiven(True), state=going)
    [text] = await delivered(db, follower, RECRUITER)
    assert first_line(text) == "✅ Dana plans to attend the Dev interview, Wed 25 Nov 10:00."


async def test_news_expires_after_a_week_but_an_access_decision_does_not(
    db: Database, follower: RecruiterFollower, desk: RecruiterDesk
) -> None:
    _opening, link = await setup_opening(db)
    await record(db, follower, start(link.code))
    await record(db, follower, event(), ConsentGiven(True), state=State(decision="go"))
    [notice] = await pending(db, RECRUITER)
    assert isinstance(await follower.decide(notice, NOW + timedelta(days=6)), Send)
    late = NOW + timedelta(days=7, minutes=1)
    assert await follower.decide(notice, late) == Expire("deadline passed")

    await desk.request(CANDIDATE, "Sam")
    [ask] = await pending(db, ADMIN)
    # The administrator back from a month away still finds the request to decide.
    assert isinstance(await follower.decide(ask, NOW + timedelta(days=30)), Send)


# --- attribution and the invitation ----------------------------------------------------------


async def test_restart_with_a_code_attributes_like_start_and_other_commands_do_not(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, link = await setup_opening(db)
    stray = Event(CANDIDATE, "command", "help", link.code, "Dana")
    await record(db, follower, stray)
    assert await rows(db, "SELECT step FROM funnel") == []
    restart = Event(CANDIDATE, "command", "restart", link.code, "Dana")
    invitation = await invite(follower, restart)
    assert invitation is not None and invitation.role == "Dev"
    await record(db, follower, restart)
    assert await rows(db, "SELECT step FROM funnel") == [("opened",)]


async def test_a_candidate_who_agreed_is_not_asked_again_on_reopening_the_link(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, link = await setup_opening(db)
    await record(db, follower, start(link.code))
    await record(db, follower, event(), ConsentGiven(True), state=State())
    invitation = await invite(follower, start(link.code))
    assert invitation is not None and invitation.consent is True


async def test_the_invitation_carries_the_recruiters_note(
    db: Database, follower: RecruiterFollower
) -> None:
    def make(conn: Conn) -> repo.Link:
        repo.set_status(conn, RECRUITER, "approved", NOW, "Rita")
        opening = repo.create_opening(
            conn, RECRUITER, "Dev", "Acme", "online", "Bring your portfolio", NOW
        )
        return repo.add_link(conn, opening.id, None, NOW)

    link = await db.atomic(make)
    invitation = await invite(follower, start(link.code))
    assert invitation is not None and invitation.note == "Bring your portfolio"


async def test_yesterdays_questions_do_not_use_up_todays(
    db: Database, follower: RecruiterFollower, clock: FakeClock
) -> None:
    opening, link = await setup_opening(db)
    await record(db, follower, start(link.code))
    asked = NOW - timedelta(hours=30)
    for n in range(3):
        question = await db.run(repo.add_question, CANDIDATE, opening.id, f"q{n}", asked)
        await db.run(repo.answer_question, question.id, "a", asked)
    invitation = await invite(follower, Event(CANDIDATE, "text", "x"))
    assert invitation is not None and invitation.can_ask


# --- the digest ------------------------------------------------------------------------------


async def worried(
    db: Database, follower: RecruiterFollower, user: int, code: str, at: datetime, *worries: str
) -> None:
    await newcomer(db, user)
    await record(db, follower, Event(user, "command", "start", code, "C"), now=at)
    await record(db, follower, Event(user, "text", "x"), *map(WorryNamed, worries), now=at)


async def test_the_digest_covers_the_last_week_of_the_recruiters_own_openings(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, link = await setup_opening(db)
    _theirs, other_link = await setup_opening(db, OTHER)
    recent, old = NOW - timedelta(days=2), NOW - timedelta(days=10)
    # Seven candidates this week: every one nervous, six about the salary, five the commute,
    # four the fit, three a scam, and one about being paid late.
    worries = ["nervous", "salary", "commute", "not_a_fit", "scam"]
    for n in range(7):
        named = [w for i, w in enumerate(worries) if n < 7 - i]
        await worried(db, follower, 100 + n, link.code, recent, *named, *(["late"] * (n == 0)))
    # Ten days ago: three more candidates, each doubting; another recruiter's four this week.
    for n in range(3):
        await worried(db, follower, 200 + n, link.code, old, "old_doubt")
    for n in range(4):
        await worried(db, follower, 300 + n, other_link.code, recent, "nervous")

    due = NudgeRow(1, RECRUITER, RECRUITER, DIGEST, NOW, None, 0, "{}")  # as queued
    decision = await follower.decide(due, NOW)
    assert isinstance(decision, Send)
    text = RENDERER.render(decision.replies[0]).plain_text
    assert "• Opened the link: 7\n• Talked it through: 7\n• Decided: 0\n" in text
    # The five most common, with their labels; not the rare sixth, the old or the other's.
    top = "Top worries: I'm nervous: 7; salary: 6; commute: 5; not_a_fit: 4; scam: 3"
    assert top + "\n" in text + "\n"


async def test_three_worried_candidates_are_enough_to_show_worries(
    db: Database, follower: RecruiterFollower
) -> None:
    opening, link = await setup_opening(db)
    for user, worry in ((100, "nervous"), (101, "nervous"), (102, "commute")):
        await worried(db, follower, user, link.code, NOW, worry)
    found = await db.run(stats.reasons, Scope(opening_id=opening.id), None)
    # Three people worried, so the worries show; each count is too small to give as a number.
    assert [(r.worry, r.shown) for r in found] == [
        ("commute", "fewer than 3"),
        ("nervous", "fewer than 3"),
    ]


async def test_a_digest_not_sent_within_a_day_is_dropped(
    db: Database, follower: RecruiterFollower
) -> None:
    await setup_opening(db)
    assert await db.atomic(follower.schedule_digest, RECRUITER, NOW)
    [digest] = await pending(db, RECRUITER, DIGEST)
    assert digest.due_at == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert isinstance(await follower.decide(digest, digest.due_at + timedelta(hours=23)), Send)
    tuesday = digest.due_at + timedelta(days=1)
    assert await follower.decide(digest, tuesday) == Expire("deadline passed")


async def test_an_overdue_digest_is_not_pushed_to_next_week_by_other_activity(
    db: Database, follower: RecruiterFollower
) -> None:
    await setup_opening(db)
    await db.atomic(follower.schedule_digest, RECRUITER, NOW)
    # Monday 09:30: this week's digest is due but not yet out; the recruiter types /stats.
    later = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
    stats_command = Event(RECRUITER, "command", "stats", "")
    await record(db, follower, stats_command, state=State(), before=State(), now=later)
    [digest] = await pending(db, RECRUITER, DIGEST)
    assert digest.due_at == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


async def test_no_digest_is_planned_for_a_recruiter_who_turned_it_off_or_was_removed(
    db: Database, follower: RecruiterFollower
) -> None:
    await setup_opening(db)
    await db.run(repo.set_digest, RECRUITER, False)
    assert not await db.atomic(follower.schedule_digest, RECRUITER, NOW)
    await setup_opening(db, OTHER)
    await db.run(repo.set_status, OTHER, "removed", NOW)
    assert not await db.atomic(follower.schedule_digest, OTHER, NOW)
    assert await pending(db, RECRUITER, DIGEST) == await pending(db, OTHER, DIGEST) == []


def test_the_digest_day_is_the_recruiters_not_the_machines(machine_in_tokyo: None) -> None:
    # Monday 08:00 in Los Angeles, already Tuesday 01:00 in Tokyo: the digest is in an hour.
    now = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    assert next_digest(now, ZoneInfo("America/Los_Angeles")) == datetime(
        2026, 11, 23, 17, 0, tzinfo=UTC
    )


# --- the export ------------------------------------------------------------------------------


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


async def export(db: Database, recruiter: int = RECRUITER) -> list[list[str]]:
    return parse(stats.export_csv(await db.run(stats.consented_rows, recruiter)))


async def test_the_export_shows_the_shared_plans_in_utc_whatever_the_machines_zone(
    db: Database, follower: RecruiterFollower, machine_in_tokyo: None
) -> None:
    _opening, link = await setup_opening(db)
    await record(db, follower, start(link.code))
    done = State(decision="go", interview_at=INTERVIEW, attended="went_well")
    await record(db, follower, event(), ConsentGiven(True), state=done)
    assert (await export(db))[1:] == [
        ["Dana", "Dev", "Acme", "", "go", "2026-11-25T10:00:00+00:00", "went_well"]
    ]


async def test_a_nameless_undecided_candidate_exports_blank_cells(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, link = await setup_opening(db)
    await record(db, follower, start(link.code, name=""))
    await record(db, follower, event(""), ConsentGiven(True), state=State())
    assert (await export(db))[1:] == [["", "Dev", "Acme", "", "", "", ""]]


async def test_withdrawing_everywhere_takes_the_candidate_out_of_every_export(
    db: Database, follower: RecruiterFollower
) -> None:
    _first, first_link = await setup_opening(db)
    _second, second_link = await setup_opening(db, OTHER)
    going = State(decision="go")
    await record(db, follower, start(first_link.code))
    await record(db, follower, event(), ConsentGiven(True), state=going)
    await record(db, follower, start(second_link.code), now=NOW + timedelta(hours=1))
    await record(db, follower, event(), ConsentGiven(True), state=going)
    assert len(await export(db, RECRUITER)) == len(await export(db, OTHER)) == 2
    await record(db, follower, event(), ConsentGiven(False, everywhere=True), state=going)
    assert await export(db, RECRUITER) == await export(db, OTHER) == [list(stats.CSV_HEADER)]


# --- the chart -------------------------------------------------------------------------------


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Figure]]:
    """The figures chart_png draws, as they were saved: their texts and shapes are public."""
    saved: list[Figure] = []
    save = Figure.savefig

    def spy(self: Figure, *args: object, **kwargs: object) -> None:
        saved.append(self)
        save(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Figure, "savefig", spy)
    yield saved


def shown(text: Text | str) -> str:
    """A text as drawn: matplotlib draws an escaped dollar as a plain one."""
    return (text if isinstance(text, str) else text.get_text()).replace("\\$", "$")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def renderer_of(fig: Figure) -> RendererAgg:
    """Measures the figure as it was laid out when saved."""
    return FigureCanvasAgg(fig).get_renderer()


def assert_all_text_inside(fig: Figure) -> None:
    """No title, step or worry name, or count is cut off by the image's edges."""
    renderer = renderer_of(fig)
    texts: list[Text] = [t for t in fig.findobj(Text) if t.get_text() == fig.get_suptitle()]
    for ax in fig.axes:
        texts += [ax.title, *ax.get_yticklabels(), *ax.texts]
    assert len(texts) == 1 + sum(1 + 2 * len(ax.patches) for ax in fig.axes)  # all there
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= 900 and box.y0 >= 0 and box.y1 <= 900, text


FUNNEL = Funnel(dict(zip(STEPS, (12, 10, 5, 3, 2, 5, 4, 2), strict=True)), 9)
REASONS = [Reason("nervous", 8), Reason("salary", 4), Reason("commute", None)]


def test_the_chart_shows_one_labelled_bar_per_step_and_the_worries(
    figures: list[Figure],
) -> None:
    png = chart_png(FUNNEL, REASONS, "Dev at Acme, last 30 days", {"nervous": "I'm nervous"})
    assert png_size(png) == (900, 900)
    [fig] = figures
    funnel, worries = fig.axes
    assert shown(fig.get_suptitle()) == "Dev at Acme, last 30 days"
    assert funnel.get_title() == "Funnel: candidates per step (drop-off from the step above)"
    assert [t.get_text() for t in funnel.get_yticklabels()] == [
        "opened the link",
        "engaged",
        "decided\n(go 5 · unsure 3 · pass 2)",
        "interview time set",
        "reminded",
        "attended",
    ]
    assert len(funnel.patches) == 6
    # Counts and drop-offs: 12 -> 10 is 17 %, 10 -> 9 is 10 %, 9 -> 5 is 44 %, ...
    assert [t.get_text() for t in funnel.texts] == [
        "12",
        "10  (\N{MINUS SIGN}17%)",
        "9  (\N{MINUS SIGN}10%)",
        "5  (\N{MINUS SIGN}44%)",
        "4  (\N{MINUS SIGN}20%)",
        "2  (\N{MINUS SIGN}50%)",
    ]
    assert worries.get_title() == "Most common worries"
    assert [t.get_text() for t in worries.get_yticklabels()] == ["I'm nervous", "salary", "commute"]
    assert [t.get_text() for t in worries.texts] == ["8", "4", "<3"]


def test_the_charts_bars_are_to_scale_and_everything_fits_in_the_image(
    figures: list[Figure],
) -> None:
    chart_png(FUNNEL, REASONS, "Dev at Acme, all time")
    [fig] = figures
    renderer = renderer_of(fig)
    funnel, worries = fig.axes

    def bars(ax: Axes) -> list[Bbox]:
        return [p.get_window_extent(renderer) for p in ax.patches]

    for ax in fig.axes:
        for bar in bars(ax):
            # From the panel's left edge, and within the panel.
            assert bar.x0 == pytest.approx(ax.bbox.x0)
            assert bar.x1 <= ax.bbox.x1
    # A bar's length is proportional to its count: 12, 10, 9, 5, 4, 2.
    widths = [b.width for b in bars(funnel)]
    unit = widths[0] / 12
    assert widths == pytest.approx([n * unit for n in (12, 10, 9, 5, 4, 2)])
    # Worries 8 and 4; the hidden count's stub is visible, yet shorter than any count shown.
    nervous, salary, stub = (b.width for b in bars(worries))
    assert salary == pytest.approx(nervous / 2)
    assert 0 < stub < salary
    assert_all_text_inside(fig)


def test_a_long_title_is_wrapped_on_two_lines_at_most_and_dollars_stay_plain(
    figures: list[Figure],
) -> None:
    role, company = "Senior $backend$ developer " * 3, "Acme International Holdings " * 3
    chart_png(FUNNEL, [], f"{role.strip()} at {company.strip()}, last 30 days")
    chart_png(FUNNEL, [], "Pay $5 at Acme Intl, whose best developers earn $$$ every day")
    long, dollars = (shown(fig.get_suptitle()) for fig in figures)
    lines = long.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Senior $backend$") and lines[1].endswith("…")
    assert dollars.replace("\n", " ") == (
        "Pay $5 at Acme Intl, whose best developers earn $$$ every day"
    )
    for fig in figures:
        assert_all_text_inside(fig)
