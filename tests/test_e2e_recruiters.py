"""End to end for recruiters, through the fake Bot API: access, links and QR codes, attribution,
consent and notifications, relayed questions, the funnel, the digest and deletion."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import png
import zxingcpp

from bot.recruiters.cli import recruiters_main
from bot.storage.db import Database
from tests.conftest import FakeClock
from tests.e2e import Conversation, texts
from tests.fakebot import BOT_USERNAME, FakeBotApi

ADMIN = 1001
RECRUITER = 2002
OTHER_RECRUITER = 3003
CANDIDATE = 4004
STRANGER = 5005
LINK_RE = re.compile(rf"https://t\.me/{BOT_USERNAME}\?start=([A-Za-z0-9_-]+)")


def decode_qr(data: bytes) -> list[str]:
    """The texts the QR codes in a PNG hold (pypng reads it, zxing-cpp decodes it)."""
    width, height, rows, info = png.Reader(bytes=data).asDirect()
    pixels = np.array([list(row) for row in rows], dtype=np.uint8)
    planes = info["planes"]
    if planes > 1:
        pixels = pixels.reshape(height, width, planes)[:, :, 0]
    if info["bitdepth"] < 8:
        pixels = pixels * (255 // (2 ** info["bitdepth"] - 1))
    return [result.text for result in zxingcpp.read_barcodes(pixels)]


async def approve(db_path: Path, user_id: int) -> None:
    out = io.StringIO()
    assert await recruiters_main(db_path, "add", user_id, out) == 0


async def new_link(chat: Conversation, api: FakeBotApi, text: str) -> tuple[str, str]:
    """/newlink <text>: the link (as text) and the code in it; the QR photo holds the same."""
    mark = api.mark()
    sent = await chat.say(RECRUITER, f"/newlink {text}")
    match = LINK_RE.search(texts(sent))
    assert match, texts(sent)
    (photo,) = [c for c in api.calls[mark:] if c.method == "sendPhoto"]
    assert decode_qr(photo.params["photo"].data) == [match.group(0)]
    return match.group(0), match.group(1)


async def go_through_link(chat: Conversation, user: int, code: str, name: str) -> list[Any]:
    """A candidate opens the link, is unsure, leans yes and taps "I'll go": the consent question."""
    await chat.say(user, f"/start {code}", first_name=name)
    await chat.tap(user, "Unsure about an invite")
    await chat.tap(user, "Leaning yes")
    return await chat.tap(user, "I'll go")


async def consent_through_link(chat: Conversation, code: str) -> None:
    """Dana opens the link, types that she'll go and lets the recruiter see it."""
    await chat.say(CANDIDATE, f"/start {code}", first_name="Dana")
    await chat.say(CANDIDATE, "ok fine I'll go")
    await chat.tap(CANDIDATE, "Yes, they may see it")


async def delivered(api: FakeBotApi, chat_id: int, needle: str, after: int = 0) -> str:
    """Wait for a message the dispatcher sends (not a reply), and return its text."""
    [call] = await api.wait_for(
        "sendMessage",
        lambda c: int(c.params["chat_id"]) == chat_id and needle in c.params["text"],
        after=after,
    )
    return str(call.params["text"])


async def test_an_administrator_approves_a_request(api: FakeBotApi, running_bot: Any) -> None:
    async with running_bot(admin_ids=frozenset({ADMIN})) as runtime:
        chat = Conversation(api, runtime)
        sent = await chat.say(RECRUITER, "/recruiter", first_name="Rita")
        assert "asked the administrators" in texts(sent)
        sent = await chat.say(RECRUITER, "/recruiter", first_name="Rita")
        assert "waiting" in texts(sent)
        request = await delivered(api, ADMIN, "asks to become a recruiter")
        assert "Rita" in request and str(RECRUITER) in request
        mark = api.mark()
        sent = await chat.tap(ADMIN, "Approve")
        assert "Approved" in texts(sent)
        assert "approved as a recruiter" in await delivered(api, RECRUITER, "approved", mark)
        # The recruiter commands appear in that chat's menu only.
        menus = [
            c for c in api.calls_of("setMyCommands") if (c.params.get("scope") or {}).get("chat_id")
        ]
        # Administrators have them from the start, the new recruiter once approved.
        assert [m.params["scope"]["chat_id"] for m in menus] == [ADMIN, RECRUITER]
        assert "newlink" in [c["command"] for c in menus[0].params["commands"]]
        default = [c for c in api.calls_of("setMyCommands") if not c.params.get("scope")]
        assert "newlink" not in [c["command"] for c in default[0].params["commands"]]
        # A second tap on the same request changes nothing.
        sent = await chat.press(ADMIN, api.button_data(ADMIN, "Deny"))
        assert "decided already" in texts(sent)
        # And only an administrator can decide.
        sent = await chat.press(STRANGER, f"r1:appr:{STRANGER}:yes")
        assert "Only an administrator" in texts(sent)
        sent = await chat.say(RECRUITER, "/newlink Backend Engineer at Acme")
        assert LINK_RE.search(texts(sent))
    assert all(c.ok for c in api.calls_of("answerCallbackQuery"))


async def test_a_denied_request_is_told_and_gets_nothing(api: FakeBotApi, running_bot: Any) -> None:
    async with running_bot(admin_ids=frozenset({ADMIN})) as runtime:
        chat = Conversation(api, runtime)
        await chat.say(STRANGER, "/recruiter")
        await delivered(api, ADMIN, "asks to become")
        mark = api.mark()
        await chat.tap(ADMIN, "Deny")
        assert "declined" in await delivered(api, STRANGER, "declined", mark)
        sent = await chat.say(STRANGER, "/links")
        assert "for recruiters" in texts(sent)


async def test_without_administrators_the_request_says_how(
    api: FakeBotApi, running_bot: Any
) -> None:
    async with running_bot() as runtime:
        sent = await Conversation(api, runtime).say(STRANGER, "/recruiter")
    assert "from the shell" in texts(sent) and str(STRANGER) in texts(sent)


async def test_recruiter_commands_are_refused_politely_to_anyone_else(
    api: FakeBotApi, running_bot: Any
) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        for command in ("/newlink Dev at Acme", "/links", "/stats", "/export"):
            sent = await chat.say(STRANGER, command)
            assert "This is for recruiters" in texts(sent), command
            assert "/recruiter" in texts(sent)
        for forged in ("r1:open:1", "r1:op:1:close", "r1:stats:a:0:all", "r1:reply:1", "r1:x"):
            sent = await chat.press(STRANGER, forged)
            assert sent, forged
        # Typed text from a stranger is the conversation's, not the desk's.
        sent = await chat.say(STRANGER, "I'm so nervous about the interview")
        assert "Source:" in texts(sent)
    presses = api.calls_of("answerCallbackQuery")
    assert len(presses) == 5 and all(c.ok for c in presses)
    assert not api.calls_of("sendPhoto") and not api.calls_of("sendDocument")


async def test_links_with_qr_codes_channels_pause_close_and_new_codes(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    await approve(db_path, RECRUITER)
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        # Step by step, with the optional fields.
        sent = await chat.say(RECRUITER, "/newlink")
        assert "What's the role?" in texts(sent)
        await chat.say(RECRUITER, "Data <Analyst>")
        sent = await chat.say(RECRUITER, "Globex & Sons")
        assert "format" in texts(sent)
        await chat.say(RECRUITER, "45 minutes, video, with the team lead")
        mark = api.mark()
        sent = await chat.tap(RECRUITER, "Skip")  # no note
        assert "Data &lt;Analyst&gt;" in texts(sent) and "Globex &amp; Sons" in texts(sent)
        link = LINK_RE.search(texts(sent))
        assert link and len(link.group(1)) >= 12
        (photo,) = [c for c in api.calls[mark:] if c.method == "sendPhoto"]
        assert decode_qr(photo.params["photo"].data) == [link.group(0)]
        # A candidate sees the role, the company and the format.
        sent = await chat.say(CANDIDATE, f"/start {link.group(1)}")
        assert "Data &lt;Analyst&gt;</b> at <b>Globex &amp; Sons" in texts(sent)
        assert "45 minutes" in texts(sent)
        # A channel link of its own.
        sent = await chat.say(RECRUITER, "/links")
        assert "1 opened" in texts(sent)
        await chat.tap(RECRUITER, "Data <Analyst>")
        sent = await chat.tap(RECRUITER, "Link for a channel")
        assert "Name the channel" in texts(sent)
        sent = await chat.say(RECRUITER, "LinkedIn")
        linkedin = LINK_RE.search(texts(sent))
        assert linkedin and linkedin.group(1) != link.group(1) and "LinkedIn" in texts(sent)
        await chat.say(CANDIDATE + 1, f"/start {linkedin.group(1)}")
        await chat.tap(RECRUITER, "Manage this opening")
        sent = await chat.tap(RECRUITER, "Stats")
        assert "By channel" in texts(sent)
        assert "LinkedIn: 1 opened" in texts(sent) and "Main link: 1 opened" in texts(sent)
        # A new code: the old one no longer brings anyone.
        await chat.tap(RECRUITER, "All my openings")
        await chat.tap(RECRUITER, "Data <Analyst>")
        sent = await chat.tap(RECRUITER, "New code")
        fresh = LINK_RE.search(texts(sent))
        assert fresh and fresh.group(1) not in (link.group(1), linkedin.group(1))
        sent = await chat.say(CANDIDATE + 2, f"/start {link.group(1)}")
        assert "invited" not in texts(sent)
        sent = await chat.say(CANDIDATE + 2, f"/start {fresh.group(1)}")
        assert "invited to interview for" in texts(sent)
        # Paused, then closed: new candidates get the normal conversation, no error.
        await chat.tap(RECRUITER, "Manage this opening")
        sent = await chat.tap(RECRUITER, "Pause")
        assert "(paused)" in texts(sent)
        sent = await chat.say(CANDIDATE + 3, f"/start {fresh.group(1)}")
        assert "invited" not in texts(sent) and "What brings you here?" in texts(sent)
        await chat.tap(RECRUITER, "Close")
        for code in (fresh.group(1), "not-a-real-code-at-all", "<b>", "x" * 80):
            sent = await chat.say(CANDIDATE + 4, f"/start {code}")
            assert "invited" not in texts(sent) and "What brings you here?" in texts(sent)
    failed = [c for c in api.calls if not c.ok]
    assert not failed, [(c.method, c.params) for c in failed]


async def test_consent_yes_notifies_the_recruiter_and_no_keeps_counts_only(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    await approve(db_path, RECRUITER)
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        _url, code = await new_link(chat, api, "Backend Engineer at Acme")
        # Dana agrees.
        sent = await chat.say(CANDIDATE, f"/start {code}", first_name="Dana")
        assert "invited to interview for <b>Backend Engineer</b> at <b>Acme</b>" in texts(sent)
        await chat.tap(CANDIDATE, "Unsure about an invite")
        await chat.tap(CANDIDATE, "Leaning yes")
        sent = await chat.tap(CANDIDATE, "I'll go")
        assert "May the recruiter who invited you" in texts(sent)
        await chat.tap(CANDIDATE, "Yes, they may see it")
        mark = api.mark()
        await chat.say(CANDIDATE, "Wed 3pm", first_name="Dana")
        await chat.tap(CANDIDATE, "Yes")
        # Told at once on consent, and again with the time once it is set.
        notice = await delivered(api, RECRUITER, "Wed 25 Nov 15:00", mark)
        assert "Dana</b> plans to attend the <b>Backend Engineer" in notice
        mark = api.mark()
        await chat.say(CANDIDATE, "/interview Thu 4pm", first_name="Dana")
        await chat.tap(CANDIDATE, "Yes")
        assert "Thu 26 Nov 16:00" in await delivered(api, RECRUITER, "rescheduled", mark)
        # Sam says no: the recruiter hears nothing about Sam.
        await go_through_link(chat, CANDIDATE + 1, code, "Sam")
        await chat.tap(CANDIDATE + 1, "No, keep it private")
        await chat.say(CANDIDATE + 1, "Wed 3pm", first_name="Sam")
        mark = api.mark()
        await chat.tap(CANDIDATE + 1, "Yes")
        # Dana withdraws consent: later changes are not told either.
        sent = await chat.say(CANDIDATE, "/privacy")
        assert "You agreed" in texts(sent)
        await chat.tap(CANDIDATE, "Withdraw my consent")
        await chat.say(CANDIDATE, "/interview Fri 5pm")
        await chat.tap(CANDIDATE, "Yes")
        sent = await chat.say(RECRUITER, "/export")
    to_recruiter = [m["text"] for m in api.sent_messages(RECRUITER)]
    assert not [t for t in to_recruiter if "Sam" in t]
    assert not [t for t in to_recruiter if "Fri 27 Nov" in t]
    assert "nothing to export" in texts(sent)  # Dana withdrew, Sam never agreed


async def test_a_question_and_its_answer_go_through_the_bot(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    await approve(db_path, RECRUITER)
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        _url, code = await new_link(chat, api, "Backend Engineer at Acme")
        await chat.say(CANDIDATE, f"/start {code}", first_name="Dana")
        sent = await chat.say(CANDIDATE, "/ask")
        assert "first name" in texts(sent)  # consent for that one message, said so
        mark = api.mark()
        sent = await chat.say(CANDIDATE, "Is the <interview> in English?", first_name="Dana")
        assert "Sent to the recruiter" in texts(sent)
        question = await delivered(api, RECRUITER, "A question from", mark)
        assert "Dana" in question and "Is the &lt;interview&gt; in English?" in question
        assert str(CANDIDATE) not in question  # no account, no id
        # One question at a time.
        sent = await chat.say(CANDIDATE, "/ask")
        assert "still waiting" in texts(sent)
        reply = api.button_data(RECRUITER, "Reply")
        sent = await chat.press(RECRUITER, reply)
        assert "Your answer" in texts(sent)
        mark = api.mark()
        sent = await chat.say(RECRUITER, "Yes, <b>all</b> in English.")
        assert "Sent" in texts(sent)
        answer = await delivered(api, CANDIDATE, "The recruiter answered", mark)
        assert "Yes, &lt;b&gt;all&lt;/b&gt; in English." in answer
        assert str(RECRUITER) not in answer
        # The same Reply button again: answered already.
        sent = await chat.press(RECRUITER, reply)
        assert "answered already" in texts(sent)
        # Now another question may go.
        sent = await chat.say(CANDIDATE, "/ask")
        assert "Your question for the recruiter" in texts(sent)
        # A recruiter cannot answer another recruiter's question.
    await approve(db_path, OTHER_RECRUITER)
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        sent = await chat.press(OTHER_RECRUITER, "r1:reply:1")
        assert "isn't one of your" in texts(sent)


async def test_stats_funnel_reasons_and_chart_and_one_recruiter_cannot_see_another(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    await approve(db_path, RECRUITER)
    await approve(db_path, OTHER_RECRUITER)
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        _url, code = await new_link(chat, api, "Backend Engineer at Acme")
        for n in range(4):
            user = CANDIDATE + n
            await chat.say(user, f"/start {code}")
            await chat.say(user, "I'm so nervous, I always freeze in interviews")
            if n < 2:
                await chat.say(user, "ok fine I'll go")
        await chat.say(CANDIDATE + 9, f"/start {code}")
        await chat.say(CANDIDATE + 9, "the pay is way too low for me")
        mark = api.mark()
        sent = await chat.say(RECRUITER, "/stats")
        text = html.unescape(texts(sent))
        assert "Opened the link: 5" in text and "Talked it through: 5" in text
        assert "Decided: 2 (\u221260% from the step before)" in text
        assert "I'm nervous: 4" in text and "Not the right job: fewer than 3" in text
        (chart,) = [c for c in api.calls[mark:] if c.method == "sendPhoto"]
        assert chart.params["photo"].data.startswith(b"\x89PNG")
        # The numbers as text first; the chart, slower to draw, follows.
        sends = [c.method for c in api.calls[mark:] if c.method in ("sendMessage", "sendPhoto")]
        assert sends == ["sendMessage", "sendPhoto"]
        sent = await chat.tap(RECRUITER, "All time")
        assert "all time" in texts(sent)
        # The other recruiter sees none of it, and cannot forge their way in.
        sent = await chat.say(OTHER_RECRUITER, "/stats")
        assert "No candidates yet" in texts(sent)
        sent = await chat.say(OTHER_RECRUITER, "/links")
        assert "No openings yet" in texts(sent)
        for forged in ("r1:open:1", "r1:op:1:close", "r1:stats:o:1:all", "r1:stats:l:1:all"):
            sent = await chat.press(OTHER_RECRUITER, forged)
            assert "isn't one of your openings" in texts(sent), forged
        sent = await chat.say(CANDIDATE, "/start")
        assert "What brings you here?" in texts(sent)  # still open: the link kept working
    assert not [c for c in api.calls if not c.ok]


async def test_deleting_my_data_removes_me_from_stats_and_export(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    await approve(db_path, RECRUITER)
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        _url, code = await new_link(chat, api, "Backend Engineer at Acme")
        await consent_through_link(chat, code)
        await chat.say(CANDIDATE, "/ask")
        await chat.say(CANDIDATE, "Where is the office?")
        mark = api.mark()
        sent = await chat.say(RECRUITER, "/export")
        (document,) = [c for c in api.calls[mark:] if c.method == "sendDocument"]
        rows = list(csv.reader(io.StringIO(document.params["document"].data.decode("utf-8"))))
        assert rows[1][0] == "Dana" and "Backend Engineer" in rows[1][1]
        sent = await chat.say(CANDIDATE, "/mydata")
        assert "Backend Engineer at Acme" in texts(sent) and "questions relayed: 1" in texts(sent)
        await chat.tap(CANDIDATE, "Delete my data")
        await chat.tap(CANDIDATE, "Yes, delete everything")
        sent = await chat.say(RECRUITER, "/export")
        assert "nothing to export" in texts(sent)
        sent = await chat.say(RECRUITER, "/stats")
        assert "No candidates yet" in texts(sent)
    db = await Database.open(db_path)
    try:
        async with db.conn.execute(
            "SELECT (SELECT count(*) FROM questions), (SELECT count(*) FROM candidates),"
            " (SELECT count(*) FROM funnel), (SELECT count(*) FROM nudges WHERE about_user_id = ?)",
            (CANDIDATE,),
        ) as cur:
            row = await cur.fetchone()
    finally:
        await db.close()
    assert row is not None and tuple(row) == (0, 0, 0, 0)


async def test_the_weekly_digest_comes_on_monday_morning_after_a_restart(
    api: FakeBotApi, running_bot: Any, db_path: Path, clock: FakeClock
) -> None:
    # The clock starts on Monday 23 Nov 2026, 10:00 UTC: the first digest is next Monday.
    await approve(db_path, RECRUITER)
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.say(RECRUITER, "/timezone Europe/Berlin")
        _url, code = await new_link(chat, api, "Backend Engineer at Acme")
        await chat.say(CANDIDATE, f"/start {code}")
    clock.advance(days=6, hours=21, minutes=30)  # Monday 30 Nov, 07:30 UTC = 08:30 Berlin
    async with running_bot() as runtime:
        mark = api.mark()
        runtime.dispatcher.wake()
        assert not [c for c in api.calls[mark:] if "Your week" in str(c.params.get("text"))]
        clock.advance(minutes=31)  # 09:01 in Berlin
        runtime.dispatcher.wake()
        digest = await delivered(api, RECRUITER, "Your week", mark)
        assert "Opened the link: 1" in digest
        chat = Conversation(api, runtime)
        sent = await chat.tap(RECRUITER, "No weekly digest")
        assert "No more weekly digests" in texts(sent)


async def export_names(chat: Conversation, api: FakeBotApi, user: int) -> list[str]:
    """The names in `user`'s /export (empty when there is nothing to export)."""
    mark = api.mark()
    await chat.say(user, "/export")
    documents = [c for c in api.calls[mark:] if c.method == "sendDocument"]
    if not documents:
        return []
    data = documents[0].params["document"].data.decode("utf-8-sig")
    return [row[0] for row in list(csv.reader(io.StringIO(data)))[1:]]


async def test_consent_to_a_closed_opening_can_still_be_seen_and_withdrawn(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    await approve(db_path, RECRUITER)
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        _url, code = await new_link(chat, api, "Backend Engineer at Acme")
        await consent_through_link(chat, code)
        await chat.press(RECRUITER, "r1:op:1:close")
        # Closed: the recruiter still has Dana (she may be coming), and she still sees that.
        assert await export_names(chat, api, RECRUITER) == ["Dana"]
        sent = html.unescape(texts(await chat.say(CANDIDATE, "/mydata")))
        assert "link: Backend Engineer at Acme (closed); they see your first name" in sent
        assert "what recruiters see included" in sent
        sent = html.unescape(texts(await chat.say(CANDIDATE, "/privacy")))
        assert "didn't come through a recruiter's link" not in sent
        assert (
            "• Backend Engineer at Acme (closed): they see your first name, decision and"
            " interview time" in sent
        )
        assert chat.labels(CANDIDATE) == ["Withdraw my consent"]  # nothing open to agree to
        withdrawn = await chat.tap(CANDIDATE, "Withdraw my consent")
        sent = html.unescape(texts(withdrawn))
        assert "no recruiter sees your name or plans any more" in sent
        assert "• Backend Engineer at Acme (closed): counts only" in sent
        assert "reply_markup" not in withdrawn[-1]  # nothing left to withdraw or agree to
        assert await export_names(chat, api, RECRUITER) == []
        # Reopened: she is not shared again behind her back.
        await chat.press(RECRUITER, "r1:op:1:reopen")
        sent = html.unescape(texts(await chat.say(CANDIDATE, "/privacy")))
        assert "You agreed" not in sent and "Only counts" in sent
        assert chat.labels(CANDIDATE) == ["Let them see it"]
        assert await export_names(chat, api, RECRUITER) == []


async def test_privacy_lists_every_opening_and_withdraws_from_all(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    await approve(db_path, RECRUITER)
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        _url, first = await new_link(chat, api, "Backend Engineer at Acme")
        _url, second = await new_link(chat, api, "Data Analyst at Globex")
        await consent_through_link(chat, first)
        await chat.press(RECRUITER, "r1:op:1:close")
        # Then she comes through the second opening and has said nothing about it yet.
        await chat.say(CANDIDATE, f"/start {second}", first_name="Dana")
        sent = html.unescape(texts(await chat.say(CANDIDATE, "/mydata")))
        assert "Backend Engineer at Acme (closed); they see your first name" in sent
        assert "Data Analyst at Globex; they see counts only" in sent
        sent = html.unescape(texts(await chat.say(CANDIDATE, "/privacy")))
        assert "What the recruiter sees</b> (Globex, Data Analyst)\nOnly counts" in sent
        assert "Other openings you came through" in sent
        assert "• Backend Engineer at Acme (closed): they see your first name" in sent
        assert chat.labels(CANDIDATE) == ["Withdraw my consent", "Let them see it"]
        sent = html.unescape(texts(await chat.tap(CANDIDATE, "Withdraw my consent")))
        assert "• Backend Engineer at Acme (closed): counts only" in sent
        assert await export_names(chat, api, RECRUITER) == []


async def test_a_removed_recruiters_candidates_are_exported_to_nobody(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    await approve(db_path, RECRUITER)
    async with running_bot(admin_ids=frozenset({ADMIN})) as runtime:
        chat = Conversation(api, runtime)
        _url, code = await new_link(chat, api, "Backend Engineer at Acme")
        await consent_through_link(chat, code)
        assert await export_names(chat, api, ADMIN) == ["Dana"]
    assert await recruiters_main(db_path, "remove", RECRUITER, io.StringIO()) == 0
    async with running_bot(admin_ids=frozenset({ADMIN})) as runtime:
        chat = Conversation(api, runtime)
        # Dana agreed to be shown to that recruiter, not to whoever runs the bot.
        assert await export_names(chat, api, ADMIN) == []
        # She still sees her consent, and can take it back.
        sent = html.unescape(texts(await chat.say(CANDIDATE, "/privacy")))
        assert "• Backend Engineer at Acme (closed): they see your first name" in sent
        assert chat.labels(CANDIDATE) == ["Withdraw my consent"]


async def test_a_time_typed_at_the_consent_question_is_the_interview_time(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    await approve(db_path, RECRUITER)
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        _url, code = await new_link(chat, api, "Backend Engineer at Acme")
        sent = await go_through_link(chat, CANDIDATE, code, "Dana")
        assert "May the recruiter who invited you" in texts(sent)
        # She answers the question she expected ("When is it?"), not the one on screen.
        sent = await chat.say(CANDIDATE, "Thursday at 3pm", first_name="Dana")
        assert "Thursday 26 Nov at 15:00</b>, UTC time: right?" in texts(sent)
        assert "not sure I understood" not in texts(sent)
        sent = await chat.tap(CANDIDATE, "Yes")
        assert "Thursday 26 Nov at 15:00" in texts(sent)
        # The consent question's buttons still work, and the recruiter then hears it all.
        mark = api.mark()
        await chat.press(CANDIDATE, "v1:consent:yes")
        notice = await delivered(api, RECRUITER, "plans to attend", mark)
        assert "Dana" in notice and "Thu 26 Nov 15:00" in notice
        # "tomorrow 3pm" is a time too, not a change of heart to "unsure".
        other = CANDIDATE + 1
        await go_through_link(chat, other, code, "Sam")
        sent = await chat.say(other, "tomorrow 3pm", first_name="Sam")
        assert "Tuesday 24 Nov at 15:00</b>, UTC time: right?" in texts(sent)
        await chat.tap(other, "Yes")
        sent = await chat.say(other, "/mydata")
        assert "decision: going" in texts(sent)


async def test_the_consent_question_is_put_once(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    await approve(db_path, RECRUITER)
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        _url, code = await new_link(chat, api, "Backend Engineer at Acme")
        sent = await go_through_link(chat, CANDIDATE, code, "Dana")
        assert "May the recruiter who invited you" in texts(sent)
        # A question for the recruiter instead: afterwards, the time question, not consent.
        await chat.say(CANDIDATE, "/ask")
        sent = await chat.say(CANDIDATE, "Is it remote?", first_name="Dana")
        assert "Sent to the recruiter" in texts(sent)
        assert "May the recruiter" not in texts(sent) and "When is the interview?" in texts(sent)
        # Nor at a later decision: unanswered, it stays a no, and /privacy can change that.
        sent = await chat.say(CANDIDATE, "actually I'll pass, I don't want it")
        assert "May the recruiter" not in texts(sent)
        sent = await chat.say(CANDIDATE, "ok fine I'll go")
        assert "May the recruiter" not in texts(sent)
        sent = await chat.say(CANDIDATE, "/privacy")
        assert "Only counts" in texts(sent) and chat.labels(CANDIDATE) == ["Let them see it"]
    to_recruiter = [m["text"] for m in api.sent_messages(RECRUITER)]
    assert not [t for t in to_recruiter if "plans to attend" in t or "won't attend" in t]


async def test_links_page_through_many_long_openings_and_channels(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    await approve(db_path, RECRUITER)
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        roles = [f"{'R' * 78}{n:02d}" for n in range(30)]  # the longest a role may be
        for role in roles:
            await chat.say(RECRUITER, f"/newlink {role} at {'C' * 80}")
        # Every opening has a button on some page, newest first; no message is too long.
        seen: list[str] = []
        sent = await chat.say(RECRUITER, "/links")
        while True:
            assert len(sent) == 1 and len(sent[0]["text"]) < 4000
            keyboard = [b for row in api.last_keyboard(RECRUITER) for b in row]
            assert len(keyboard) <= 6
            seen += [b["callback_data"] for b in keyboard if b["text"].startswith("R")]
            if "Older \u00bb" not in chat.labels(RECRUITER):
                break
            sent = await chat.tap(RECRUITER, "Older \u00bb")
        assert seen == [f"r1:open:{n}" for n in range(30, 0, -1)]
        assert "(page 8 of 8, newest first)" in texts(sent)
        # The oldest one, from the last page, can be managed.
        sent = await chat.press(RECRUITER, seen[-1])
        assert f"<b>{roles[0]}</b>" in texts(sent)
        assert "Link for a channel" in chat.labels(RECRUITER)
        for n in range(7):
            await chat.press(RECRUITER, "r1:op:1:channel")
            await chat.say(RECRUITER, f"{'L' * 38}{n:02d}")
        sent = await chat.press(RECRUITER, "r1:open:1")
        assert "…and 5 more links" in texts(sent) and len(texts(sent)) < 4000
        assert "All 8 links" in chat.labels(RECRUITER)
        sent = await chat.press(RECRUITER, "r1:stats:o:1:all")
        assert "All 8 links" in chat.labels(RECRUITER)
        sent = await chat.tap(RECRUITER, "All 8 links")
        urls: set[str] = set()
        buttons: list[str] = []
        while True:
            assert len(texts(sent)) < 4000 and len(chat.labels(RECRUITER)) <= 6
            urls |= set(LINK_RE.findall(texts(sent)))
            keyboard = [b for row in api.last_keyboard(RECRUITER) for b in row]
            buttons += [b["callback_data"] for b in keyboard if "stats:l:" in b["callback_data"]]
            if "Next \u00bb" not in chat.labels(RECRUITER):
                break
            sent = await chat.tap(RECRUITER, "Next \u00bb")
        # The main link and seven channels: each link shown, and each with its numbers.
        assert len(urls) == 8 and len(set(buttons)) == 8
        sent = await chat.press(RECRUITER, buttons[-1])
        assert "· " + "L" * 38 + "06</b>, last 30 days" in texts(sent)
    assert not [c for c in api.calls if not c.ok]


async def test_a_digest_missed_while_the_bot_was_down_does_not_stop_the_next(
    api: FakeBotApi, running_bot: Any, db_path: Path, clock: FakeClock
) -> None:
    # Monday 23 Nov 10:00 UTC: the first digest is due Monday 30 Nov, 09:00.
    await approve(db_path, RECRUITER)
    async with running_bot() as runtime:
        await Conversation(api, runtime).say(RECRUITER, "/links")
    clock.advance(days=8)  # Tuesday 1 Dec, 10:00: down over Monday, that digest's day is over
    async with running_bot() as runtime:
        clock.advance(days=5, hours=23, minutes=1)  # Monday 7 Dec, 09:01
        mark = api.mark()
        runtime.dispatcher.wake()
        assert "Your week" in await delivered(api, RECRUITER, "Your week", mark)

        def digests(conn: Any) -> list[tuple[str, str]]:
            return [
                (state, str(datetime.fromtimestamp(due, UTC))[:16])
                for state, due in conn.execute(
                    "SELECT state, due_at FROM nudges WHERE kind = 'digest' ORDER BY due_at"
                )
            ]

        found = await runtime.coach.store.db.run(digests)
    # The missed one expired unsent; the next week's went out and the week after is planned.
    assert found[0] == ("expired", "2026-11-30 09:00")
    assert found[1:] == [
        (found[1][0], "2026-12-07 09:00"),  # sent (or being recorded as sent just now)
        ("pending", "2026-12-14 09:00"),
    ]
    assert found[1][0] in ("sending", "sent")
    weekly = [m for m in api.sent_messages(RECRUITER) if "Your week" in m["text"]]
    assert len(weekly) == 1


async def test_a_removed_recruiters_link_starts_the_normal_conversation(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    await approve(db_path, RECRUITER)
    async with running_bot() as runtime:
        _url, code = await new_link(Conversation(api, runtime), api, "Backend Engineer at Acme")
    assert await recruiters_main(db_path, "remove", RECRUITER, io.StringIO()) == 0
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        sent = await chat.say(CANDIDATE, f"/start {code}", first_name="Dana")
        assert "invited" not in texts(sent) and "What brings you here?" in texts(sent)
        sent = await chat.say(CANDIDATE, "/ask")
        assert "Your question for the recruiter" not in texts(sent)
    db = await Database.open(db_path)
    try:
        async with db.conn.execute(
            "SELECT (SELECT count(*) FROM candidates), (SELECT count(*) FROM funnel)"
        ) as cur:
            row = await cur.fetchone()
    finally:
        await db.close()
    assert row is not None and tuple(row) == (0, 0)  # not in anyone's counts either


async def test_access_changed_at_the_shell_while_the_bot_runs_is_told_and_shown(
    api: FakeBotApi, running_bot: Any, db_path: Path, clock: FakeClock
) -> None:
    def scoped(method: str, mark: int) -> Any:
        return api.wait_for(
            method,
            lambda c: (c.params.get("scope") or {}).get("chat_id") == RECRUITER,
            after=mark,
        )

    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.say(RECRUITER, "/start")
        mark = api.mark()
        added = await recruiters_main(db_path, "add", RECRUITER, io.StringIO(), clock())
        assert added == 0
        runtime.dispatcher.wake()  # its next look at the queue (within a minute otherwise)
        assert "approved as a recruiter" in await delivered(api, RECRUITER, "approved", mark)
        [menu] = await scoped("setMyCommands", mark)
        assert "newlink" in [c["command"] for c in menu.params["commands"]]
        mark = api.mark()
        removed = await recruiters_main(db_path, "remove", RECRUITER, io.StringIO(), clock())
        assert removed == 0
        runtime.dispatcher.wake()
        told = await delivered(api, RECRUITER, "access has ended", mark)
        assert "/recruiter" in told
        await scoped("deleteMyCommands", mark)
        sent = await chat.say(RECRUITER, "/links")
        assert "This is for recruiters" in texts(sent)


async def test_a_command_leaves_a_half_done_newlink(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    await approve(db_path, RECRUITER)
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        sent = await chat.say(RECRUITER, "/newlink")
        assert "What's the role?" in texts(sent)
        sent = await chat.say(RECRUITER, "/start")
        assert "What brings you here?" in texts(sent)
        # Their own worry, not an opening's role.
        sent = await chat.say(RECRUITER, "I'm so nervous about the interview")
        assert "Source:" in texts(sent) and "company" not in texts(sent)
        sent = await chat.say(RECRUITER, "/links")
        assert "No openings yet" in texts(sent)
