"""The front end's answers that were not queued before they went (`_send_all`: a recruiter's
answers, the apology, the desk's later chart) and the replies it holds in the outbox.

Pinned here: such answers take their place in the chat's budget like the conversation's replies
(a chat that floods has them waiting in the outbox, a wait and not a failure, for the right user
and chat, and its later replies wait behind them); a queued answer keeps Telegram's reason; the
chat's last reply is on record before another message goes to it; a blocked user's held
replies are let go; and the front end's memory of held chats and pending records stays bounded
without losing what still matters.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.logs import user_ref
from bot.render import RenderedMessage
from bot.storage import store as store_module
from bot.storage.store import REPLY_DEADLINE, Mark
from bot.telegram import app as app_module
from bot.telegram.app import PACED
from tests import test_frontend as frontend
from tests.conftest import FakeClock
from tests.conftest import deadline as eventually
from tests.fakebot import BOT_USERNAME, FakeBotApi
from tests.test_frontend import (
    FIRST_QUESTION,
    OTHER,
    USER,
    Bot,
    events,
    outbox,
    recorded,
    sent,
)

# test_frontend's fixtures: the running bot, and its INFO lines captured (autouse).
bot = frontend.bot
_info_logs = frontend._info_logs

THIRD = 9
BYSTANDER = 10
LINK = re.compile(rf"https://t\.me/{BOT_USERNAME}\?start=([A-Za-z0-9_-]+)")
ONE, TWO = RenderedMessage("one"), RenderedMessage("two")


async def reply_ids(bot: Bot, user: int = USER) -> list[int]:
    """The ids of the replies in the outbox for `user`, oldest first."""
    rows = await bot.runtime.coach.store.db.all(
        "SELECT id FROM nudges WHERE user_id = ? AND kind = 'reply' ORDER BY id", (user,)
    )
    return [int(r[0]) for r in rows]


async def queued_by_failure(bot: Bot, user: int, *messages: RenderedMessage) -> list[int]:
    """`messages` for `user`, the first refused with a 502: all of them wait in the outbox,
    due 5 s from now (the clock does not move by itself: the dispatcher leaves them)."""
    before = set(await reply_ids(bot, user))
    bot.api.fail_next("sendMessage", 502, chat_id=user)
    await bot.runtime.front._send_all(user, user, messages)
    return [i for i in await reply_ids(bot, user) if i not in before]


def flooding(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """USER's chat floods: a burst's worth of messages already waits for room in its budget (a
    user tapping fast), as the shared pacer counts them; counted by hand, as real waiters would
    leave in real time, one per interval. Returns: they have gone."""
    pacer = bot.runtime.front.pacer
    assert pacer is not None
    real = pacer.waiting
    waiting = [pacer.burst]

    def count(chat_id: int) -> int:
        return waiting[0] if chat_id == USER else real(chat_id)

    monkeypatch.setattr(pacer, "waiting", count)
    return lambda: waiting.__setitem__(0, 0)


# --- answers of a chat that floods wait in the outbox -----------------------------------------


async def test_answers_to_a_chat_that_floods_wait_in_the_outbox_and_hold_its_later_replies(
    api: FakeBotApi,
    running_bot: Any,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running_bot(per_chat_interval_seconds=0.5) as runtime:
        bot = Bot(api, runtime)
        front = runtime.front
        pacer = front.pacer
        assert pacer is not None
        await bot.say("/start")
        gone = flooding(bot, monkeypatch)
        mark = api.mark()
        # A recruiter's answers (or an apology) for the chat: none goes now.
        await front._send_all(USER, USER, (ONE, TWO))
        assert sent(api.calls[mark:]) == []
        # Both wait in the outbox for USER, in order, due after those waiting: (3 + 1) * 0.5 s;
        # a wait, not a failure.
        due = int(clock().timestamp()) + 2
        assert (await outbox(bot))[-2:] == [("pending", due, 0, PACED)] * 2
        assert events(caplog, "reply_paced") == [
            {"event": "reply_paced", "user": user_ref(USER), "seconds": "2.0"}
        ]
        # Nobody waits for the chat any more, and its budget drains: its next reply still goes
        # behind the two held ones, never before them.
        gone()
        assert pacer.waiting(USER) == 0
        assert await bot.say("/start") == []
        assert [row[0] for row in await outbox(bot)][-3:] == ["pending"] * 3
        # Their time comes: the dispatcher sends all three to USER's chat, in order.
        clock.advance(seconds=3)
        runtime.dispatcher.wake()
        await api.wait_for("sendMessage", lambda c: c.ok, count=3, after=mark)
        texts = [m["text"] for m in sent(api.calls[mark:])]
        assert texts[:2] == ["one", "two"] and FIRST_QUESTION in texts[2]
        await recorded(bot, ["sent"] * len(await outbox(bot)))
        await eventually(lambda: not front._held)


async def test_an_answer_to_someone_who_never_talked_to_the_coach_waits_in_their_own_chat(
    api: FakeBotApi, running_bot: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An administrator's answer, paced: the outbox needs a row to address, with their chat.
    async with running_bot(per_chat_interval_seconds=0.5) as runtime:
        bot = Bot(api, runtime)
        gone = flooding(bot, monkeypatch)
        await runtime.front._send_all(USER, USER, (ONE,))
        gone()
        record = await runtime.coach.store.load_user(USER)
        assert record is not None and record.chat_id == USER
        mark = api.mark()
        clock.advance(seconds=3)
        runtime.dispatcher.wake()
        [call] = await api.wait_for("sendMessage", lambda c: c.ok, after=mark)
        assert int(call.params["chat_id"]) == USER and call.params["text"] == "one"


# --- answers Telegram did not take ------------------------------------------------------------


async def test_an_answer_telegram_did_not_take_keeps_its_reason_and_holds_the_chat(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.say("/start")
    bot.api.fail_next("sendMessage", 502, "Bad Gateway: " + "x" * 600, chat_id=USER)
    await bot.runtime.front._send_all(USER, USER, (ONE, TWO))
    *_, first, second = await outbox(bot)
    for error in (first[3], second[3]):
        # Telegram's reason, in part (a row is not a log file).
        assert error is not None and error.startswith("Bad Gateway: xxx") and len(error) == 500
    [line] = events(caplog, "reply_queued")
    assert line == {"event": "reply_queued", "user": user_ref(USER), "error": ANY_BAD_GATEWAY}
    # The chat's next reply waits behind them in the outbox.
    assert await bot.say("/help") == []
    assert [row[0] for row in await outbox(bot)][-3:] == ["pending"] * 3


class _BadGateway:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.startswith("Bad Gateway: xxx")

    def __repr__(self) -> str:
        return "'Bad Gateway: xxx...'"


ANY_BAD_GATEWAY: Any = _BadGateway()


# --- the chat's last reply is on record before another message goes ---------------------------


def reply_states_on_disk(db_path: Path, user: int) -> list[str]:
    """What another process reading the database file would see (not through the store, whose
    hop would write the pending record first)."""
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT state FROM nudges WHERE user_id = ? AND kind = 'reply' ORDER BY id", (user,)
        ).fetchall()
    return [str(r[0]) for r in rows]


def states_at_each_send(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, db_path: Path, method: str
) -> list[list[str]]:
    """USER's reply rows as the file holds them when each message is handed to the sender's
    `method` ("send": the conversation's replies; "send_any": the other answers)."""
    sender = bot.runtime.front.sender
    real = getattr(sender, method)
    seen: list[list[str]] = []

    async def recording(chat_id: int, message: Any) -> None:
        seen.append(reply_states_on_disk(db_path, USER))
        await real(chat_id, message)

    monkeypatch.setattr(sender, method, recording)
    return seen


async def test_the_chats_last_reply_is_on_record_before_an_answer_goes(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, db_path: Path
) -> None:
    # The record of a reply that went waits for the next hop to the database; here none comes
    # by itself for a while.
    monkeypatch.setattr(store_module, "MARK_WITHIN", 60.0)
    replies = await bot.say("/help")
    assert len(replies) == 2 and reply_states_on_disk(db_path, USER) == ["sent", "sending"]
    front = bot.runtime.front
    seen = states_at_each_send(bot, monkeypatch, db_path, "send_any")
    mark = bot.api.mark()
    await front._send_all(USER, USER, (ONE,))
    # A kill now would send "one" again at most, never /help's answer a second time.
    assert seen == [["sent", "sent"]]
    assert [m["text"] for m in sent(bot.api.calls[mark:])] == ["one"]


# --- a user who blocked the bot ---------------------------------------------------------------


async def test_a_user_who_blocks_the_bot_during_an_answer_has_their_held_replies_let_go(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.say("/start")
    front = bot.runtime.front
    real = front.sender.send_any
    held: list[int] = []

    async def send_any(chat_id: int, message: Any) -> None:
        if message is ONE:
            # While "one" is on its way, another answer of the chat waits in the outbox (a
            # 502); then Telegram says the user blocked the bot.
            held.extend(await queued_by_failure(bot, USER, TWO))
            assert USER in front._held
            bot.api.block_user(USER)
        await real(chat_id, message)

    monkeypatch.setattr(front.sender, "send_any", send_any)
    await front._send_all(USER, USER, (ONE,))
    record = await bot.runtime.coach.store.load_user(USER)
    assert record is not None and not record.active
    assert [row[0] for row in await outbox(bot)][-1:] == ["cancelled"]
    # Nothing of theirs is held any more: back, they are answered at once.
    assert held and USER not in front._held
    assert not set(held) & set(front._held_chat)
    bot.api.unblock_user(USER)
    assert [FIRST_QUESTION in m["text"] for m in await bot.say("/start")] == [True]


async def test_a_user_who_blocked_the_bot_before_the_desks_chart_is_deactivated(
    api: FakeBotApi, running_bot: Any
) -> None:
    async with running_bot(admin_ids=frozenset({USER})) as runtime:
        bot = Bot(api, runtime)
        await bot.say("/start", first_name="Ada")
        link = LINK.search(" ".join(m["text"] for m in await bot.say("/newlink Dev at Acme")))
        assert link is not None
        await bot.say(f"/start {link.group(1)}", user=OTHER)
        await bot.say("I'm so nervous, I always freeze in interviews", user=OTHER)
        # The numbers go; by the time the chart, slower to draw, follows, the user has blocked
        # the bot.
        api.fail_next("sendPhoto", 403, chat_id=USER)
        mark = api.mark()
        assert [m["text"].startswith("<b>") for m in await bot.say("/stats")] == [True]
        assert [c.status for c in api.calls[mark:] if c.method == "sendPhoto"] == [403]
        record = await runtime.coach.store.load_user(USER)
        assert record is not None and not record.active
        other = await runtime.coach.store.load_user(OTHER)
        assert other is not None and other.active


# --- held replies: done, stale, and the memory of them ---------------------------------------


async def test_a_chat_is_held_until_every_reply_it_holds_is_done(bot: Bot) -> None:
    front = bot.runtime.front
    await bot.say("/start")
    first = await queued_by_failure(bot, USER, ONE)
    # The chat's next answers go behind it, into the outbox too.
    before = await reply_ids(bot)
    await front._send_all(USER, USER, (TWO,))
    [second] = [i for i in await reply_ids(bot) if i not in before]
    held = front._held[USER]
    assert held.rows == {*first, second}
    # The dispatcher is done with one of them: the chat is still held by the other.
    front.reply_done(second)
    before = await reply_ids(bot)
    assert await bot.say("/help") == []
    third = [i for i in await reply_ids(bot) if i not in before]
    assert len(third) == 2
    # A reply the front end never held (one owed since a restart) changes nothing.
    front.reply_done(max(*third, *first) + 1000)
    assert front._held[USER].rows == {*first, *third}
    for reply_id in (*first, *third):
        front.reply_done(reply_id)
    assert USER not in front._held and not front._held_chat
    # Free again: answered at once.
    assert len(await bot.say("/help")) == 2


async def forget_held(bot: Bot) -> None:
    """The replies waiting in the outbox gone another way (deleted with their users' data): the
    dispatcher never says it is done with them. A user's replies sent since keep the ids of
    the deleted rows from being reused."""
    await bot.say("/start", user=BYSTANDER)
    await bot.runtime.coach.store.db.write(
        "DELETE FROM nudges WHERE kind = 'reply' AND state = 'pending'"
    )


async def test_held_replies_are_stale_exactly_a_reply_deadline_after_they_were_due(
    bot: Bot, clock: FakeClock
) -> None:
    for user in (USER, OTHER):
        await bot.say("/start", user=user)
        await queued_by_failure(bot, user, ONE)  # due 5 s from now
    await forget_held(bot)
    clock.advance(seconds=5 + REPLY_DEADLINE.total_seconds() - 1)
    # A second before: the chat's replies still wait behind them.
    assert await bot.say("/help", user=OTHER) == []
    clock.advance(seconds=1)
    # At the deadline: nothing left to wait behind, answered at once.
    assert [FIRST_QUESTION in m["text"] for m in await bot.say("/start")] == [True]
    assert USER not in bot.runtime.front._held


async def test_a_full_memory_of_held_chats_forgets_only_the_stale_ones(
    bot: Bot, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "HELD_KEPT", 2)
    front = bot.runtime.front
    stale = await queued_by_failure(bot, USER, ONE)
    await forget_held(bot)
    clock.advance(seconds=5 + REPLY_DEADLINE.total_seconds() + 60)
    kept = await queued_by_failure(bot, OTHER, ONE)
    assert set(front._held) == {USER, OTHER}  # below the limit: no sweep yet
    newest = await queued_by_failure(bot, THIRD, ONE)
    assert set(front._held) == {OTHER, THIRD}
    assert set(front._held_chat) == {*kept, *newest}
    assert not set(stale) & set(front._held_chat)


# --- the memory of pending records ------------------------------------------------------------


async def test_a_full_memory_of_pending_records_forgets_only_those_written(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "MARKS_KEPT", 2)
    front = bot.runtime.front
    written, waiting, newest = Mark(written=True), Mark(), Mark()
    front._marked(1, written)
    front._marked(2, waiting)
    assert front._marks == {1: written, 2: waiting}  # below the limit: no sweep yet
    front._marked(3, newest)
    # The one still waiting must be kept: the chat's next message waits for it.
    assert front._marks == {2: waiting, 3: newest}


async def test_a_record_written_by_another_chats_update_is_forgotten_when_memory_is_full(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "MARKS_KEPT", 1)
    front = bot.runtime.front
    await bot.say("/start")
    assert set(front._marks) == {USER}
    # OTHER's update is written before its reply goes, USER's record with it.
    await bot.say("/start", user=OTHER)
    assert set(front._marks) == {OTHER}


# --- found while pinning: two faults, fixed with these tests -----------------------------------


async def test_deleting_ones_data_while_replies_wait_in_the_outbox_leaves_nothing_behind(
    bot: Bot,
) -> None:
    await bot.say("/start")
    await queued_by_failure(bot, USER, ONE)  # the chat now holds its replies in the outbox
    calls = await bot.press("v1:del:yes")
    store = bot.runtime.coach.store
    # "The goodbye goes out directly: nothing may stay behind" (Store.commit).
    assert await store.load_user(USER) is None
    assert await store.db.all("SELECT id FROM nudges WHERE user_id = ?", (USER,)) == []
    assert [m["text"].startswith("Done: everything is deleted") for m in sent(calls)] == [True]
    assert USER not in bot.runtime.front._held  # their next words wait behind nothing


async def test_letting_go_of_a_stale_chat_leaves_another_chats_held_replies_alone(
    bot: Bot, clock: FakeClock
) -> None:
    front = bot.runtime.front
    [gone_id] = await queued_by_failure(bot, USER, ONE)
    await bot.runtime.coach.store.db.write("DELETE FROM nudges WHERE user_id = ?", (USER,))
    clock.advance(seconds=5 + REPLY_DEADLINE.total_seconds())  # USER's hold is stale
    [live_id] = await queued_by_failure(bot, OTHER, ONE)
    assert live_id == gone_id  # the id is used again
    await bot.say("/start")  # USER's stale hold is let go
    mark = bot.api.mark()
    clock.advance(seconds=5)
    bot.runtime.dispatcher.wake()
    await bot.api.wait_for(
        "sendMessage", lambda c: c.ok and int(c.params["chat_id"]) == OTHER, after=mark
    )
    await eventually(lambda: OTHER not in front._held)


async def test_the_goodbye_to_a_chat_that_floods_goes_out_and_stores_nothing(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.say("/start")
    flooding(bot, monkeypatch)  # any other answer would wait in the outbox now
    calls = await bot.press("v1:del:yes")
    store = bot.runtime.coach.store
    assert await store.load_user(USER) is None
    assert await store.db.all("SELECT id FROM nudges WHERE user_id = ?", (USER,)) == []
    assert [m["text"].startswith("Done: everything is deleted") for m in sent(calls)] == [True]


# --- the conversation's own replies ------------------------------------------------------------


async def test_each_reply_is_on_record_before_the_next_goes_to_the_chat(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, db_path: Path
) -> None:
    monkeypatch.setattr(store_module, "MARK_WITHIN", 60.0)  # no record written by its timer
    seen = states_at_each_send(bot, monkeypatch, db_path, "send")
    assert len(await bot.say("/help")) == 2
    # A kill between the two sends would repeat the second, never the first.
    assert seen == [["sending", "sending"], ["sent", "sending"]]


async def test_replies_sent_before_the_user_blocked_the_bot_stay_sent(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.say("/start")
    front = bot.runtime.front
    real = front.sender.send
    held: list[int] = []
    sends = [0]

    async def send(chat_id: int, message: Any) -> None:
        sends[0] += 1
        if sends[0] == 2:
            # As the second of /help's replies goes, an answer of the chat waits in the outbox
            # (a 502); then Telegram says the user blocked the bot.
            held.extend(await queued_by_failure(bot, USER, ONE))
            bot.api.block_user(USER)
        await real(chat_id, message)

    monkeypatch.setattr(front.sender, "send", send)
    await bot.say("/help")
    states = [row[0] for row in await outbox(bot)]
    record = await bot.runtime.coach.store.load_user(USER)
    assert record is not None and not record.active
    # The first reply went (recorded sent before the block); the rest never will.
    assert states[-3:] == ["sent", "cancelled", "cancelled"]
    assert USER not in front._held and not set(held) & set(front._held_chat)


async def test_a_reply_telegram_did_not_take_holds_the_chats_next_replies_behind_it(
    bot: Bot, clock: FakeClock
) -> None:
    await bot.say("/start")
    bot.api.fail_next("sendMessage", 502, chat_id=USER)
    await bot.say("/start")  # its reply is refused: queued, due in 5 s
    mark = bot.api.mark()
    await bot.say("/help")
    assert sent(bot.api.calls[mark:]) == []  # behind it, not before it
    assert [row[0] for row in await outbox(bot)][-3:] == ["pending"] * 3
    # Past the time the held ones were due (not yet sent): the next is due at once, no later.
    clock.advance(seconds=6)
    await bot.say("/start")
    assert (await outbox(bot))[-1][1] == int(clock().timestamp())
