"""What a recruiter sees of their links, per channel, and what the shell command leaves behind.

Pins behaviour that mutation testing found unguarded: per-channel counts and buttons on the
opening screen and in /stats, the buttons of each /newlink step, the toasts of refused and
stale buttons, new codes, the QR code, the digest switch and the shell's queued messages.
Every expected text comes from prompts/ (templates and button labels) or from the product's
rules, not from running the code under test.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import png
import pytest
import segno
import zxingcpp

from bot.engine.decide import Expire, Send
from bot.engine.model import ConsentGiven, Decided, Event, State, WorryNamed
from bot.recruiters import repo, stats
from bot.recruiters.buttons import DESK
from bot.recruiters.cli import recruiters_main
from bot.recruiters.desk import Answer, RecruiterDesk
from bot.recruiters.follower import DIGEST, RecruiterFollower
from bot.render import RenderedMessage
from bot.sending import Document, Photo
from bot.storage.db import Database
from bot.storage.store import Conn, Store
from tests import test_recruiters as base
from tests.conftest import FakeClock
from tests.test_recruiters import (
    ADMIN,
    CANDIDATE,
    NOW,
    OTHER,
    RECRUITER,
    RENDERER,
    make_desk,
    queued,
    record,
    setup_opening,
    text_of,
)

# The desk's fixtures, shared with tests/test_recruiters.py.
clock = base.clock
follower = base.follower
desk = base.desk

STALE = "That button no longer works"
STALE_TEXT = "That button is from an older message and no longer works."
NOT_YOURS = "Not one of your openings"
NOT_YOURS_TEXT = "That isn't one of your openings, or it no longer exists."
NEW_CODE_TEXT = "A new code: the old link no longer brings new candidates."


# --- helpers ---------------------------------------------------------------------------------


def message(answer: Answer) -> RenderedMessage:
    first = answer.items[0]
    assert isinstance(first, RenderedMessage)
    return first


def labels(answer: Answer) -> list[str]:
    return [label for row in message(answer).keyboard for label, _data in row]


def data_of(answer: Answer, label: str) -> str:
    [data] = [d for row in message(answer).keyboard for text, d in row if text == label]
    return data


async def arrive(
    db: Database,
    follower: RecruiterFollower,
    user: int,
    code: str,
    *milestones: Any,
    state: State | None = None,
    days_ago: float = 0,
) -> None:
    """A candidate opens a link (and may reach milestones right after)."""
    await db.run(repo.ensure_user, user, NOW)
    at = NOW - timedelta(days=days_ago)
    await record(db, follower, Event(user, "command", "start", code, "Dana"), now=at)
    if milestones:
        event = Event(user, "text", "x", "", "Dana")
        await record(db, follower, event, *milestones, state=state, now=at)


async def going(db: Database, follower: RecruiterFollower, user: int, code: str) -> None:
    await arrive(db, follower, user, code, Decided("go", None), state=State(decision="go"))


def url(code: str) -> str:
    return f"https://t.me/coach_bot?start={code}"


def read_qr(data: bytes) -> list[Any]:
    """The QR codes in a PNG, as zxing-cpp reads them (pypng decodes the image)."""
    width, height, pixel_rows, info = png.Reader(bytes=data).asDirect()
    pixels = np.array([list(r) for r in pixel_rows], dtype=np.uint8)
    if info["planes"] > 1:
        pixels = pixels.reshape(height, width, info["planes"])[:, :, 0]
    if info["bitdepth"] < 8:
        pixels = pixels * (255 // (2 ** info["bitdepth"] - 1))
    return list(zxingcpp.read_barcodes(pixels))


# --- /newlink, step by step ------------------------------------------------------------------


async def test_each_newlink_step_can_be_cancelled_and_only_optional_ones_skipped(
    db: Database, desk: RecruiterDesk
) -> None:
    await setup_opening(db)
    answer = await desk.command(RECRUITER, "Rita", "newlink", "")
    assert "What's the role?" in text_of(answer)
    assert labels(answer) == ["Cancel"]
    answer = await desk.text(RECRUITER, "Designer")
    assert "and the company?" in text_of(answer)
    assert labels(answer) == ["Cancel"]
    answer = await desk.text(RECRUITER, "Initech")
    assert "The interview format" in text_of(answer)
    assert labels(answer) == ["Skip", "Cancel"]
    answer = await desk.button(RECRUITER, "Rita", DESK.pack("skip"))
    assert "A short note for candidates" in text_of(answer)
    assert labels(answer) == ["Skip", "Cancel"]
    answer = await desk.button(RECRUITER, "Rita", DESK.pack("skip"))
    assert "Designer at Initech" in text_of(answer)
    assert labels(answer) == ["Manage this opening", "All my openings"]
    # The channel prompt is not optional either.
    answer = await desk.button(RECRUITER, "Rita", data_of(answer, "Manage this opening"))
    answer = await desk.button(RECRUITER, "Rita", data_of(answer, "Link for a channel"))
    assert "Name the channel" in text_of(answer)
    assert labels(answer) == ["Cancel"]


async def test_cancel_on_an_optional_step_cancels_rather_than_skips(
    db: Database, desk: RecruiterDesk
) -> None:
    await setup_opening(db)
    await desk.command(RECRUITER, "Rita", "newlink", "Tester")
    answer = await desk.text(RECRUITER, "Initech")
    assert "The interview format" in text_of(answer)
    assert await desk.wants_text(RECRUITER)
    answer = await desk.button(RECRUITER, "Rita", DESK.pack("cancel"))
    assert answer.notice == "Cancelled" and text_of(answer) == "Cancelled."
    assert not await desk.wants_text(RECRUITER)
    assert [o.role for o in await db.run(repo.openings_of, RECRUITER)] == ["Dev"]


async def test_after_a_link_is_made_a_restart_takes_no_more_typed_input(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower, clock: FakeClock
) -> None:
    opening, _ = await setup_opening(db)
    await desk.command(RECRUITER, "Rita", "newlink", "Designer")
    await desk.text(RECRUITER, "Initech")
    await desk.text(RECRUITER, "Video call")
    answer = await desk.text(RECRUITER, "Bring your portfolio")
    assert "Designer at Initech" in text_of(answer)
    again = make_desk(db, follower, clock)
    assert not await again.wants_text(RECRUITER)
    # The same for a channel link.
    shown = await desk.button(RECRUITER, "Rita", DESK.pack("open", opening.id))
    await desk.button(RECRUITER, "Rita", data_of(shown, "Link for a channel"))
    answer = await desk.text(RECRUITER, "LinkedIn")
    assert "Dev at Acme · LinkedIn" in text_of(answer)
    again = make_desk(db, follower, clock)
    assert not await again.wants_text(RECRUITER)
    assert len(await db.run(repo.openings_of, RECRUITER)) == 2


async def test_a_damaged_draft_reads_as_no_screen_open(db: Database, desk: RecruiterDesk) -> None:
    await setup_opening(db)
    await db.conn.execute("UPDATE recruiters SET draft = '[1]' WHERE user_id = ?", (RECRUITER,))
    assert not await desk.wants_text(RECRUITER)
    assert await desk.text(RECRUITER, "hello") == Answer()
    answer = await desk.button(RECRUITER, "Rita", DESK.pack("skip"))
    assert answer.notice == "Cancelled"


# --- codes and the QR code -------------------------------------------------------------------


async def test_the_qr_code_holds_the_link_robustly_and_large_enough_to_scan(
    db: Database, desk: RecruiterDesk
) -> None:
    await setup_opening(db)
    answer = await desk.command(RECRUITER, "Rita", "newlink", "Dev at Globex")
    [link] = await db.run(repo.links_of, 2)
    assert url(link.code) in text_of(answer)
    photo = answer.items[1]
    assert isinstance(photo, Photo)
    assert photo.png.startswith(b"\x89PNG\r\n\x1a\n")
    assert photo.caption.plain_text == "Dev at Globex"
    [found] = read_qr(photo.png)
    assert found.text == url(link.code)
    # At least medium error correction: a crease in a printed poster leaves it readable.
    assert found.ec_level in ("M", "Q", "H")
    # At least 8 pixels a module, and the standard's quiet zone of 4 modules around it.
    modules = segno.make(url(link.code), error="m").symbol_size(scale=1, border=0)[0]
    left, right = found.position.top_left.x, found.position.top_right.x
    module = (right - left) / modules
    assert module >= 8
    assert left >= 4 * module


async def test_a_code_that_is_taken_is_drawn_again(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _opening, link = await setup_opening(db)
    draws = iter([link.code, "Fresh_code-1234"])
    monkeypatch.setattr(repo, "new_code", lambda: next(draws))
    second = await db.atomic(repo.add_link, link.opening_id, "LinkedIn", NOW)
    assert second.code == "Fresh_code-1234"
    monkeypatch.setattr(repo, "new_code", lambda: link.code)
    with pytest.raises(RuntimeError) as failed:
        await db.atomic(repo.add_link, link.opening_id, "Job fair", NOW)
    assert str(failed.value) == "could not find a free link code"


async def test_a_new_code_retires_the_old_link_and_says_so(
    db: Database, desk: RecruiterDesk
) -> None:
    opening, old = await setup_opening(db)
    answer = await desk.button(RECRUITER, "Rita", DESK.pack("op", opening.id, "newcode"))
    assert text_of(answer).startswith(NEW_CODE_TEXT)
    [fresh] = await db.run(repo.links_of, opening.id)
    assert fresh.code != old.code and url(fresh.code) in text_of(answer)
    shown = text_of(await desk.button(RECRUITER, "Rita", DESK.pack("open", opening.id)))
    assert url(fresh.code) in shown and old.code not in shown
    # A link made for the first time says nothing about an old one.
    answer = await desk.command(RECRUITER, "Rita", "newlink", "QA at Acme")
    assert NEW_CODE_TEXT not in text_of(answer)


async def test_new_code_on_an_opening_without_a_main_link_makes_one(
    db: Database, desk: RecruiterDesk
) -> None:
    await setup_opening(db)

    def bare(conn: Conn) -> repo.Opening:
        opening = repo.create_opening(conn, RECRUITER, "QA", "Acme", None, None, NOW)
        repo.add_link(conn, opening.id, "LinkedIn", NOW)
        return opening

    opening = await db.atomic(bare)
    answer = await desk.button(RECRUITER, "Rita", DESK.pack("op", opening.id, "newcode"))
    links = await db.run(repo.links_of, opening.id)
    assert [link.channel for link in links] == ["LinkedIn", None]
    assert url(links[1].code) in text_of(answer)
    shown = text_of(await desk.button(RECRUITER, "Rita", DESK.pack("open", opening.id)))
    assert "LinkedIn: 0 opened, 0 going" in shown and "Main link: 0 opened, 0 going" in shown


# --- per-channel counts ----------------------------------------------------------------------


async def test_the_opening_screen_counts_each_channel_with_its_link(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    opening, main = await setup_opening(db)
    linkedin = await db.atomic(repo.add_link, opening.id, "LinkedIn", NOW)
    await going(db, follower, CANDIDATE, main.code)
    await arrive(db, follower, CANDIDATE + 1, main.code)
    shown = text_of(await desk.button(RECRUITER, "Rita", DESK.pack("open", opening.id)))
    assert f"Main link: 2 opened, 1 going\n{url(main.code)}" in shown
    assert f"LinkedIn: 0 opened, 0 going\n{url(linkedin.code)}" in shown
    listing = text_of(await desk.command(RECRUITER, "Rita", "links", ""))
    assert "• Dev at Acme: 2 opened, 1 going" in listing
    numbers = text_of(await desk.stats(RECRUITER, "o", opening.id, "all"))
    assert "• Main link: 2 opened, 1 going\n• LinkedIn: 0 opened, 0 going" in numbers


async def test_stats_by_channel_keep_a_retired_code_and_each_link_has_a_button(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    opening, main = await setup_opening(db)
    linkedin = await db.atomic(repo.add_link, opening.id, "LinkedIn", NOW)
    await going(db, follower, CANDIDATE, main.code)
    await arrive(db, follower, CANDIDATE + 1, main.code)
    await arrive(db, follower, CANDIDATE + 2, linkedin.code)
    answer = await desk.stats(RECRUITER, "o", opening.id, "all")
    assert "Dev at Acme, all time" in text_of(answer)
    assert "• Opened the link: 3" in text_of(answer)
    assert labels(answer) == [
        "Last 7 days",
        "Last 30 days",
        "main link",
        "LinkedIn",
        "All my openings",
    ]
    # One channel's own numbers, from its button.
    one = await desk.button(RECRUITER, "Rita", data_of(answer, "LinkedIn"))
    assert one.notice is None
    text = text_of(one)
    assert "Dev at Acme · LinkedIn, all time" in text
    assert "• Opened the link: 1" in text and "• Decided: 0" in text
    assert "By channel" not in text
    assert labels(one) == ["Last 7 days", "Last 30 days", "All my openings"]
    main_only = text_of(await desk.button(RECRUITER, "Rita", data_of(answer, "main link")))
    assert "• Opened the link: 2" in main_only and "• Decided: 1" in main_only
    # A new code: the old main link is still counted, marked as such.
    await desk.button(RECRUITER, "Rita", DESK.pack("op", opening.id, "newcode"))
    text = text_of(await desk.stats(RECRUITER, "o", opening.id, "all"))
    assert "• Main link (old code): 2 opened, 1 going" in text
    assert "• LinkedIn: 1 opened, 0 going" in text
    assert "• Main link: 0 opened, 0 going" in text


async def test_channel_buttons_only_with_several_channels_and_three_at_most(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    opening, main = await setup_opening(db)
    await arrive(db, follower, CANDIDATE, main.code)
    periods = ["Last 7 days", "Last 30 days"]
    answer = await desk.stats(RECRUITER, "o", opening.id, "all")
    assert labels(answer) == [*periods, "All my openings"]  # one link: nothing to split
    await db.atomic(repo.add_link, opening.id, "International job fair", NOW)
    answer = await desk.stats(RECRUITER, "o", opening.id, "all")
    # A long channel name is cut to fit its button.
    assert labels(answer) == [*periods, "main link", "International jo", "All my openings"]
    await db.atomic(repo.add_link, opening.id, "LinkedIn", NOW)
    await db.atomic(repo.add_link, opening.id, "Posters", NOW)
    answer = await desk.stats(RECRUITER, "o", opening.id, "all")
    # Six buttons a message at most: past three links, one button leads to all of them.
    assert labels(answer) == [*periods, "All 4 links", "All my openings"]
    assert "• Posters: 0 opened, 0 going" in text_of(answer)
    # Three a page there, each with its numbers' button, and a way on and back.
    page = await desk.button(RECRUITER, "Rita", data_of(answer, "All 4 links"))
    assert "Dev at Acme: links 1\u20133 of 4" in text_of(page)
    assert labels(page) == [
        "main link",
        "International jo",
        "LinkedIn",
        "Next \u00bb",
        "Link for a channel",
    ]
    last = await desk.button(RECRUITER, "Rita", data_of(page, "Next \u00bb"))
    assert "Dev at Acme: links 4\u20134 of 4" in text_of(last)
    assert "Posters: 0 opened, 0 going\nhttps://t.me/coach_bot?start=" in text_of(last)
    assert labels(last) == ["Posters", "\u00ab Previous", "Link for a channel"]
    posters = text_of(await desk.button(RECRUITER, "Rita", data_of(last, "Posters")))
    assert "Dev at Acme · Posters, last 30 days" in posters


async def test_stats_keep_to_the_chosen_period(
    db: Database,
    desk: RecruiterDesk,
    follower: RecruiterFollower,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opening, main = await setup_opening(db)
    for n in range(3):  # six weeks ago, all nervous
        await arrive(db, follower, CANDIDATE + n, main.code, WorryNamed("nervous"), days_ago=42)
    await arrive(db, follower, CANDIDATE + 9, main.code)  # today
    drawn: list[Any] = []
    real = stats.chart_png

    def spy(*args: Any) -> bytes:
        drawn.append(args)
        return real(*args)

    monkeypatch.setattr(stats, "chart_png", spy)
    answer = await desk.stats(RECRUITER, "o", opening.id, "30d")
    assert not drawn  # the text does not wait for the chart
    assert answer.later is not None
    (chart,) = await answer.later()
    assert isinstance(chart, Photo) and chart.caption.plain_text
    month = text_of(answer)
    assert "Dev at Acme, last 30 days" in month
    assert "• Opened the link: 1" in month
    assert "Why they hesitate" not in month
    # An unknown period (an old or forged button) shows the last 30 days.
    forged = await desk.button(RECRUITER, "Rita", DESK.pack("stats", "o", opening.id, "forever"))
    assert text_of(forged) == month
    all_time = await desk.stats(RECRUITER, "o", opening.id, "all")
    assert all_time.later is not None
    await all_time.later()
    everything = text_of(all_time)
    assert "• Opened the link: 4" in everything
    assert "• I'm nervous: 3" in everything
    # The chart names the worries as the text does.
    assert drawn and all(args[3] == {"nervous": "I'm nervous"} for args in drawn)


async def test_an_administrators_stats_cover_every_recruiter(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    _mine, mine = await setup_opening(db)
    _theirs, theirs = await setup_opening(db, OTHER)
    await arrive(db, follower, CANDIDATE, mine.code)
    await arrive(db, follower, CANDIDATE + 1, theirs.code)
    admin = text_of(await desk.command(ADMIN, "Ada", "stats", ""))
    assert "• Opened the link: 2" in admin
    recruiter = text_of(await desk.command(RECRUITER, "Rita", "stats", ""))
    assert "• Opened the link: 1" in recruiter


# --- the opening's buttons -------------------------------------------------------------------


async def test_the_opening_buttons_follow_its_status(db: Database, desk: RecruiterDesk) -> None:
    opening, _ = await setup_opening(db)
    shown = await desk.button(RECRUITER, "Rita", DESK.pack("open", opening.id))
    common = ["Stats", "Link for a channel", "New code"]
    assert labels(shown) == [*common, "Pause", "Close", "All my openings"]
    shown = await desk.button(RECRUITER, "Rita", data_of(shown, "Pause"))
    assert shown.notice == "Now paused" and "Dev at Acme (paused)" in text_of(shown)
    assert labels(shown) == [*common, "Resume", "Close", "All my openings"]
    shown = await desk.button(RECRUITER, "Rita", data_of(shown, "Resume"))
    assert shown.notice == "Now open" and "Dev at Acme (open)" in text_of(shown)
    assert labels(shown) == [*common, "Pause", "Close", "All my openings"]
    shown = await desk.button(RECRUITER, "Rita", data_of(shown, "Close"))
    assert shown.notice == "Now closed" and "Dev at Acme (closed)" in text_of(shown)
    # Closed: no pausing, only reopening.
    assert labels(shown) == [*common, "Reopen", "All my openings"]
    shown = await desk.button(RECRUITER, "Rita", data_of(shown, "Reopen"))
    assert shown.notice == "Now open" and "Dev at Acme (open)" in text_of(shown)
    # Paused, then closed: still only reopening.
    await desk.button(RECRUITER, "Rita", DESK.pack("op", opening.id, "pause"))
    shown = await desk.button(RECRUITER, "Rita", DESK.pack("op", opening.id, "close"))
    assert labels(shown) == [*common, "Reopen", "All my openings"]


async def test_the_list_of_openings_pages_through_every_one(
    db: Database, desk: RecruiterDesk
) -> None:
    await setup_opening(db)
    await setup_opening(db, OTHER)
    for role in ("QA", "Ops", "Data", "Senior Backend Engineer"):
        await db.run(repo.create_opening, RECRUITER, role, "Acme", None, None, NOW)
    answer = await desk.command(RECRUITER, "Rita", "links", "")
    # Five openings, all with a button on one page.
    assert labels(answer) == ["Senior Backend Eng", "Data", "Ops", "QA", "Dev"]
    assert "page" not in text_of(answer)
    await db.run(repo.create_opening, RECRUITER, "Intern", "Acme", None, None, NOW)
    await db.run(repo.create_opening, OTHER, "Sales", "Globex", None, None, NOW)
    # Six: four a page, newest first, with a button to the older ones.
    answer = await desk.button(RECRUITER, "Rita", DESK.pack("links"))
    assert labels(answer) == ["Intern", "Senior Backend Eng", "Data", "Ops", "Older \u00bb"]
    assert "Your openings (page 1 of 2, newest first)" in text_of(answer)
    assert "Dev at Acme" not in text_of(answer)
    older = await desk.button(RECRUITER, "Rita", data_of(answer, "Older \u00bb"))
    assert labels(older) == ["QA", "Dev", "\u00ab Newer"]
    assert "Your openings (page 2 of 2, newest first)" in text_of(older)
    assert "• Dev at Acme: 0 opened, 0 going" in text_of(older)
    assert "Sales" not in text_of(answer) + text_of(older)  # another recruiter's
    # A page past the end (an old or forged button): the last one.
    gone = await desk.button(RECRUITER, "Rita", DESK.pack("page", 7))
    assert text_of(gone) == text_of(older)
    assert data_of(answer, "Older \u00bb") == DESK.pack("page", 1)


# --- refusals and stale buttons --------------------------------------------------------------


async def test_another_recruiters_or_a_missing_opening_is_refused_with_a_toast(
    db: Database, desk: RecruiterDesk
) -> None:
    mine, main = await setup_opening(db)
    theirs, their_link = await setup_opening(db, OTHER)
    assert (mine.id, main.id) == (1, 1)  # a missing link below must not read as opening 1
    for data in (
        DESK.pack("open", theirs.id),
        DESK.pack("open", 999),
        DESK.pack("op", theirs.id, "channel"),
        DESK.pack("stats", "o", theirs.id, "all"),
        DESK.pack("stats", "l", their_link.id, "all"),
        DESK.pack("stats", "l", 999, "all"),
    ):
        answer = await desk.button(RECRUITER, "Rita", data)
        assert answer.notice == NOT_YOURS, data
        assert text_of(answer) == NOT_YOURS_TEXT, data
    assert not await desk.wants_text(RECRUITER)


async def test_stale_forged_and_strangers_buttons_get_a_toast(
    db: Database, desk: RecruiterDesk
) -> None:
    opening, _ = await setup_opening(db)
    await desk.command(RECRUITER, "Rita", "links", "")  # queues the weekly digest
    for data in (
        "r1:nonsense",
        "r1:open:1:2",
        DESK.pack("op", opening.id, "explode"),
        DESK.pack("stats", "x", opening.id, "all"),
        DESK.pack("open", "off"),
        DESK.pack("reply", "on"),
        DESK.pack("digest", "maybe"),
    ):
        answer = await desk.button(RECRUITER, "Rita", data)
        assert answer.notice == STALE, data
        assert text_of(answer).startswith(STALE_TEXT), data
    assert len(await queued(db, RECRUITER, DIGEST)) == 1  # none of them touched the digest
    answer = await desk.button(CANDIDATE, "Sam", DESK.pack("open", opening.id))
    assert answer.notice == "Recruiters only"
    assert text_of(answer).startswith("This is for recruiters.")


async def test_the_digest_buttons_turn_it_off_and_on(db: Database, desk: RecruiterDesk) -> None:
    await setup_opening(db)
    await desk.command(RECRUITER, "Rita", "links", "")
    assert len(await queued(db, RECRUITER, DIGEST)) == 1
    answer = await desk.button(RECRUITER, "Rita", DESK.pack("digest", "off"))
    assert answer.notice == "Saved"
    assert text_of(answer) == "No more weekly digests. You can turn them back on here."
    assert labels(answer) == ["Weekly digest on"]
    assert await queued(db, RECRUITER, DIGEST) == []
    answer = await desk.button(RECRUITER, "Rita", data_of(answer, "Weekly digest on"))
    assert text_of(answer) == "The weekly digest is on: Monday mornings, your time."
    assert labels(answer) == ["No weekly digest"]
    assert len(await queued(db, RECRUITER, DIGEST)) == 1


# --- administrators --------------------------------------------------------------------------


async def test_an_administrators_first_press_makes_them_a_recruiter_row(
    db: Database, db_path: Path, desk: RecruiterDesk
) -> None:
    theirs, _ = await setup_opening(db, OTHER)
    answer = await desk.button(ADMIN, "Ada", DESK.pack("op", theirs.id, "channel"))
    assert "Name the channel" in text_of(answer)
    assert await desk.wants_text(ADMIN)
    answer = await desk.text(ADMIN, "Job fair")
    assert "Dev at Acme · Job fair" in text_of(answer)
    out = io.StringIO()
    assert await recruiters_main(db_path, "list", None, out) == 0
    assert f"{ADMIN}\tapproved\tAda" in out.getvalue().splitlines()


async def test_a_channel_typed_after_losing_admin_rights_makes_no_link(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower, clock: FakeClock
) -> None:
    theirs, _ = await setup_opening(db, OTHER)
    await desk.command(ADMIN, "Ada", "links", "")
    await desk.button(ADMIN, "Ada", DESK.pack("op", theirs.id, "channel"))
    # Restarted without Ada among the administrators; she is still a recruiter.
    again = make_desk(db, follower, clock, frozenset())
    assert await again.wants_text(ADMIN)
    answer = await again.text(ADMIN, "Job fair")
    assert text_of(answer) == NOT_YOURS_TEXT
    assert [link.channel for link in await db.run(repo.links_of, theirs.id)] == [None]
    assert not await again.wants_text(ADMIN)


# --- candidates' news for the recruiter ------------------------------------------------------


async def test_news_for_a_recruiter_goes_stale_after_a_week(
    db: Database, follower: RecruiterFollower
) -> None:
    _opening, main = await setup_opening(db)
    await arrive(db, follower, CANDIDATE, main.code)
    event = Event(CANDIDATE, "button", "x", "", "Dana")
    await record(db, follower, event, ConsentGiven(True), state=State(decision="go"))
    [row] = await Store(db).claim_due(NOW + timedelta(days=8), 10)
    assert row.user_id == RECRUITER
    assert isinstance(await follower.decide(row, NOW + timedelta(days=1)), Send)
    assert await follower.decide(row, NOW + timedelta(days=8)) == Expire("deadline passed")


async def test_a_consenting_candidates_interview_time_is_in_the_export(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    _opening, main = await setup_opening(db)
    await arrive(db, follower, CANDIDATE, main.code)
    at = NOW + timedelta(days=2, hours=4)
    event = Event(CANDIDATE, "button", "x", "", "Dana")
    state = State(decision="go", interview_at=at)
    await record(db, follower, event, ConsentGiven(True), state=state)
    [document] = (await desk.export(RECRUITER)).items
    assert isinstance(document, Document)
    table = list(csv.reader(io.StringIO(document.data.decode("utf-8-sig"), newline="")))
    assert table[1][:2] == ["Dana", "Dev"]
    assert table[1][5] == "2026-11-25T14:00:00+00:00"


# --- the shell command -----------------------------------------------------------------------


async def test_a_recruiter_added_at_the_shell_is_told_however_late_the_bot_starts(
    db: Database, db_path: Path, follower: RecruiterFollower
) -> None:
    out = io.StringIO()
    assert await recruiters_main(db_path, "add", 77, out) == 0
    later = NOW + timedelta(days=30)
    [row] = await Store(db).claim_due(later, 10)
    assert row.user_id == 77
    decision = await follower.decide(row, later)
    assert isinstance(decision, Send)
    [reply] = decision.replies
    text = RENDERER.render(reply).plain_text
    assert text.startswith("You're approved as a recruiter.")


async def test_removal_at_the_shell_cancels_the_weekly_digest(
    db: Database, db_path: Path, desk: RecruiterDesk
) -> None:
    out = io.StringIO()
    assert await recruiters_main(db_path, "add", 77, out) == 0
    await desk.command(77, "Kim", "links", "")
    assert len(await queued(db, 77, DIGEST)) == 1
    assert await recruiters_main(db_path, "remove", 77, out) == 0
    assert await queued(db, 77, DIGEST) == []


async def test_the_shell_lists_the_name_a_requester_gave(
    db: Database, db_path: Path, desk: RecruiterDesk
) -> None:
    await desk.request(CANDIDATE, "Sam")
    out = io.StringIO()
    assert await recruiters_main(db_path, "list", None, out) == 0
    assert out.getvalue() == f"{CANDIDATE}\tpending\tSam\n"
    answer = await desk.decide_request(ADMIN, CANDIDATE, approve=True)
    assert text_of(answer) == f"Approved: Sam ({CANDIDATE}). I've let them know."
