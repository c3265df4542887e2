"""The Telegram front end (bot/telegram/app.py) on the real stack: the runtime's PTB
Application polling the fake Bot API, with the inbox, the durable replies and the dispatcher.

Each test pushes updates, waits until the runtime finished handling exactly those (its inbox
worker's hook, with a deadline), and then checks what the bot said: the texts, the toasts and the
rows of the replies it owed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tomllib
import warnings
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from telegram import Update
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.warnings import PTBUserWarning

from bot.config import Settings
from bot.knowledge.base import KnowledgeBase
from bot.knowledge.classifier import ObjectionClassifier
from bot.logs import user_ref
from bot.render import RenderedMessage
from bot.runtime import BotRuntime, open_coach
from bot.sending import Blocked, Document, Photo, Rejected, RetryLater, SendError
from bot.service import Coach
from bot.storage import store as store_module
from bot.storage.store import from_ts
from bot.telegram.app import PACED, TelegramFrontEnd, build_application
from bot.telegram.intake import InboxWorker
from bot.telegram.sender import TelegramSender
from tests.conftest import FakeClock
from tests.conftest import deadline as eventually
from tests.fakebot import BOT_USERNAME, Call, FakeBotApi

JSON = dict[str, Any]
USER = 7
PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
# The largest integer SQLite stores: Telegram's ids are far below it, a forged update may not be.
SQLITE_MAX = 2**63 - 1


def prompt(name: str) -> str:
    """A message as the content team wrote it (plain-text templates only)."""
    return (PROMPTS / "messages" / f"{name}.html").read_text(encoding="utf-8").strip()


APOLOGY = prompt("error")
NOT_TEXT = "I can only read text, sorry."
STALE = "That button is from an older message and no longer works."
FIRST_QUESTION = "What brings you here?"
GROUP_TOAST = "I only work in a private chat with you"
STALE_TOAST = "That button no longer works"


class Bot:
    """The running bot, as a user sees it: push an update, wait until it was handled, read the
    Bot API calls it led to."""

    def __init__(self, api: FakeBotApi, runtime: BotRuntime) -> None:
        self.api = api
        self.runtime = runtime
        self._done: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        inner = runtime.worker.on_update

        def finished(update: Any, seconds: float) -> None:
            if inner is not None:
                inner(update, seconds)
            self._done[update.update_id].set()

        runtime.worker.on_update = finished

    async def push(self, update: JSON) -> list[Call]:
        """Deliver `update` (built with enqueue=False) and return the calls made while the
        runtime handled it."""
        mark = self.api.mark()
        self.api.push_update(update)
        await asyncio.wait_for(self._done[update["update_id"]].wait(), 10)
        return self.api.calls[mark:]

    async def say(self, text: str, user: int = USER, first_name: str | None = None) -> list[JSON]:
        calls = await self.push(self.api.push_message(user, text, first_name, enqueue=False))
        return sent(calls, user)

    async def press(self, data: str, user: int = USER) -> list[Call]:
        return await self.push(self.api.push_callback(user, data, enqueue=False))

    async def tap(self, label: str, user: int = USER) -> list[Call]:
        return await self.push(self.api.click(user, label, enqueue=False))

    async def replies(self, user: int = USER) -> list[tuple[str, datetime | None, str | None]]:
        """The rows of the replies the bot owed this user, oldest first: (state, due, error)."""
        rows = await self.runtime.coach.store.db.all(
            "SELECT state, due_at, last_error FROM nudges"
            " WHERE user_id = ? AND kind = 'reply' ORDER BY id",
            (user,),
        )
        return [(r["state"], from_ts(r["due_at"]), r["last_error"]) for r in rows]


def sent(calls: list[Call], user: int = USER) -> list[JSON]:
    """Messages Telegram took for `user`'s chat."""
    return [
        c.params
        for c in calls
        if c.method == "sendMessage" and c.ok and int(c.params["chat_id"]) == user
    ]


def answers(calls: list[Call]) -> list[Call]:
    return [c for c in calls if c.method == "answerCallbackQuery"]


PAIR = re.compile(r"(\w+)=(.*?)(?= \w+=|$)")


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, str]]:
    """Log lines of one event, as the key=value pairs the README promises (a value runs to
    the next key, so an error's description is whole)."""
    found = []
    for record in caplog.records:
        message = record.getMessage()
        pairs = dict(PAIR.findall(message))
        if pairs.get("event") == name:
            assert message.startswith("event="), message
            found.append(pairs)
    return found


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.telegram.app")


@pytest.fixture
async def bot(api: FakeBotApi, running_bot: Any) -> Any:
    async with running_bot() as runtime:
        yield Bot(api, runtime)


# --- buttons ---------------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["v9:dec:go", "v1:obj:../../etc", "v1:sit:nowhere", "garbage"])
async def test_a_stale_or_forged_button_gets_a_toast_and_shows_where_we_are(
    bot: Bot, data: str
) -> None:
    await bot.say("/start")
    calls = await bot.press(data)
    [answer] = answers(calls)
    assert answer.ok and answer.params["text"] == STALE_TOAST
    [stale, screen] = sent(calls)
    assert stale["text"].startswith(STALE) and FIRST_QUESTION in screen["text"]
    assert bot.api.last_keyboard(USER)[0][0]["text"] == "Unsure about an invite"


async def test_a_press_is_answered_once_and_silently_when_there_is_nothing_to_say(
    bot: Bot,
) -> None:
    await bot.say("/start")
    calls = await bot.tap("Just exploring")
    [answer] = answers(calls)
    assert answer.ok and "text" not in answer.params
    assert "which way do you lean" in sent(calls)[0]["text"]


# --- failures: an apology, and every press answered ------------------------------------------


def failing_coach(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_: object, **__: object) -> Any:
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(bot.runtime.coach, "handle", broken)


def test_the_apology_says_sorry_and_how_to_go_on() -> None:
    # The content the apology tests below expect, checked once against its intent.
    assert APOLOGY.startswith("Sorry, something went wrong")
    assert "/start" in APOLOGY


@pytest.mark.parametrize(
    ("push", "kind"),
    [
        (lambda api: api.push_message(USER, "/help", enqueue=False), "command"),
        (lambda api: api.push_message(USER, "I'm nervous", enqueue=False), "text"),
        (lambda api: api.push_sticker(USER, enqueue=False), "other"),
        (lambda api: api.push_callback(USER, "v1:sit:explore", enqueue=False), "button"),
    ],
)
async def test_when_handling_fails_the_user_gets_the_apology(
    bot: Bot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    push: Callable[[FakeBotApi], JSON],
    kind: str,
) -> None:
    await bot.say("/start")
    failing_coach(bot, monkeypatch)
    calls = await bot.push(push(bot.api))
    assert [m["text"] for m in sent(calls)] == [APOLOGY]
    pressed = answers(calls)
    if kind == "button":
        assert len(pressed) == 1 and pressed[0].ok and "text" not in pressed[0].params
    else:
        assert pressed == []
    [line] = events(caplog, "handling_failed")
    assert line == {"event": "handling_failed", "kind": kind, "user": user_ref(USER)}
    [record] = [r for r in caplog.records if "handling_failed" in r.getMessage()]
    assert record.levelno == logging.ERROR and record.exc_info is not None


async def test_a_failure_after_the_press_was_answered_does_not_answer_it_twice(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.say("/start")
    front = bot.runtime.front
    real = front.sender.send
    broke: list[int] = []

    async def send_once_broken(chat_id: int, message: Any) -> None:
        if not broke:
            broke.append(chat_id)
            raise RuntimeError("a bug while sending")
        await real(chat_id, message)

    monkeypatch.setattr(front.sender, "send", send_once_broken)
    calls = await bot.tap("Just exploring")
    assert len(answers(calls)) == 1 and answers(calls)[0].ok
    assert [m["text"] for m in sent(calls)] == [APOLOGY]


async def test_when_the_apology_cannot_be_sent_either_the_library_logs_it(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.say("/start")
    failing_coach(bot, monkeypatch)

    async def broken_send(*_: object) -> None:
        raise RuntimeError("no way out")

    monkeypatch.setattr(bot.runtime.front.sender, "send_any", broken_send)
    update = bot.api.push_message(USER, "/help", enqueue=False)
    assert sent(await bot.push(update)) == []
    [line] = events(caplog, "update_error")
    assert line == {"event": "update_error", "update_id": str(update["update_id"]), "error": ANY}
    [record] = [r for r in caplog.records if "update_error" in r.getMessage()]
    assert record.getMessage().endswith("error=RuntimeError('no way out')")


async def test_a_recruiter_command_that_fails_gets_the_apology(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_: object) -> Any:
        raise RuntimeError("the desk broke")

    monkeypatch.setattr(bot.runtime.desk, "command", broken)
    assert [m["text"] for m in await bot.say("/stats")] == [APOLOGY]
    assert events(caplog, "desk_failed") == [
        {"event": "desk_failed", "kind": "command", "user": user_ref(USER)}
    ]


async def test_an_apology_to_a_user_who_blocked_the_bot_marks_them_inactive(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.say("/start")
    failing_coach(bot, monkeypatch)
    bot.api.block_user(USER)
    await bot.say("/help")
    record = await bot.runtime.coach.store.load_user(USER)
    assert record is not None and not record.active


# --- replies Telegram did not take -----------------------------------------------------------
# A sticker after /start owes two replies: "I can only read text" and the current question.


async def sticker(bot: Bot) -> list[Call]:
    return await bot.push(bot.api.push_sticker(USER, enqueue=False))


def fail_nth_send(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, n: int, fail: Callable[[], None]
) -> None:
    """Make Telegram refuse the n-th message the front end sends from now on (1-based)."""
    sender = bot.runtime.front.sender
    real = sender.send
    count = 0

    async def send(chat_id: int, message: Any) -> None:
        nonlocal count
        count += 1
        if count == n:
            fail()
        await real(chat_id, message)

    monkeypatch.setattr(sender, "send", send)


async def test_a_refused_reply_is_failed_and_the_next_one_still_goes(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.say("/start")
    # Telegram's long descriptions are kept in part: a row is not a log file.
    bot.api.fail_next("sendMessage", 400, "Bad Request: " + "x" * 600, chat_id=USER)
    calls = await sticker(bot)
    assert [c.status for c in calls if c.method == "sendMessage"] == [400, 200]
    assert [FIRST_QUESTION in m["text"] for m in sent(calls)] == [True]
    *_, refused, next_one = await bot.replies()
    assert refused[0] == "failed"
    assert refused[2] is not None and 0 < len(refused[2]) <= 500 and set(refused[2]) <= {"x", "X"}
    assert next_one[0] == "sent"
    [line] = events(caplog, "reply_refused")
    assert line == {"event": "reply_refused", "user": user_ref(USER), "error": "X" + "x" * 599}


async def test_a_refused_last_reply_leaves_the_earlier_ones_sent(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.say("/start")
    fail_nth_send(bot, monkeypatch, 2, lambda: bot.api.fail_next("sendMessage", 400))
    calls = await sticker(bot)
    assert [m["text"].startswith(NOT_TEXT) for m in sent(calls)] == [True]
    *_, first, refused = await bot.replies()
    assert (first[0], refused[0]) == ("sent", "failed")


@pytest.mark.parametrize(
    ("status", "retry_after", "wait", "error"),
    [
        (502, None, 5, "Bad Gateway"),
        (502, None, 5, "x" * 500),
        (500, None, 5, "Internal Server Error"),
        (429, 7, 7, "Flood control exceeded"),
        (429, 1, 1, "Flood control exceeded"),
    ],
)
async def test_a_reply_telegram_could_not_take_now_waits_with_the_rest_for_the_dispatcher(
    bot: Bot,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    status: int,
    retry_after: int | None,
    wait: int,
    error: str,
) -> None:
    await bot.say("/start")
    woken: list[bool] = []
    wake = bot.runtime.coach.on_schedule
    assert wake is not None

    def woke() -> None:
        woken.append(True)
        wake()

    monkeypatch.setattr(bot.runtime.coach, "on_schedule", woke)
    description = "x" * 600 if error.startswith("x") else None  # kept in part, as a note
    bot.api.fail_next("sendMessage", status, description, retry_after, chat_id=USER)
    calls = await sticker(bot)
    # One attempt, then both replies queued, in order, for a retry `wait` seconds later
    # (Telegram's retry_after when it gave one); the dispatcher is told at once.
    assert [c.status for c in calls if c.method == "sendMessage"] == [status]
    *_, first, second = await bot.replies()
    later = clock() + timedelta(seconds=wait)
    assert first[:2] == second[:2] == ("pending", later)
    assert first[2] is not None and error in first[2] and len(first[2]) <= 500
    # A 5xx is a failure of the reply that met it; a flood wait is none, and the reply after
    # it was not even tried: neither uses up a try.
    last_two = "SELECT attempts FROM nudges WHERE kind = 'reply' ORDER BY id DESC LIMIT 2"
    attempts = await bot.runtime.coach.store.db.all(last_two)
    assert [r[0] for r in reversed(attempts)] == [0 if status == 429 else 1, 0]
    assert woken, "the dispatcher is woken for the queued replies"
    [line] = events(caplog, "reply_queued")
    assert line["user"] == user_ref(USER) and error in line["error"]
    # When they are due, the dispatcher sends both, in order.
    mark = bot.api.mark()
    clock.advance(seconds=wait)
    bot.runtime.dispatcher.wake()
    await bot.api.wait_for("sendMessage", lambda c: c.ok, count=2, after=mark)
    texts = [m["text"] for m in sent(bot.api.calls[mark:])]
    assert texts[0].startswith(NOT_TEXT) and FIRST_QUESTION in texts[1]


async def test_replies_after_one_telegram_could_not_take_wait_but_earlier_ones_are_sent(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    await bot.say("/start")
    fail_nth_send(bot, monkeypatch, 2, lambda: bot.api.fail_next("sendMessage", 502))
    calls = await sticker(bot)
    assert [c.status for c in calls if c.method == "sendMessage"] == [200, 502]
    *_, first, second = await bot.replies()
    assert first[0] == "sent"
    assert second[:2] == ("pending", clock() + timedelta(seconds=5))


@pytest.mark.parametrize("status", [200, 400, 502])
async def test_replies_another_process_took_over_are_left_to_it(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    # While the first reply was on its way, this process's lease ran out and another process
    # claimed the replies: whatever became of the send, their rows are the other's to write.
    await bot.say("/start")
    store = bot.runtime.coach.store
    sender = bot.runtime.front.sender
    real = sender.send
    other = "elsewhere:1:abc"

    async def send(chat_id: int, message: Any) -> None:
        await store.db.write(
            "UPDATE nudges SET claimed_by = ? WHERE user_id = ? AND state = 'sending'",
            (other, USER),
        )
        if status != 200:
            bot.api.fail_next("sendMessage", status, chat_id=USER)
        await real(chat_id, message)

    monkeypatch.setattr(sender, "send", send)
    await sticker(bot)
    rows = await store.db.all(
        "SELECT state, claimed_by FROM nudges WHERE user_id = ? AND kind = 'reply'"
        " ORDER BY id DESC LIMIT 2",
        (USER,),
    )
    assert [(r["state"], r["claimed_by"]) for r in rows] == [("sending", other)] * 2


async def test_a_single_reply_is_recorded_without_a_hop_of_its_own(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each /start's one reply is recorded by the next update's own read, before that
    # update's reply goes: no hop is added to wait for it.
    store = bot.runtime.coach.store
    real = store.db.run
    waits: list[object] = []

    async def run(work: Any, *args: Any, **kw: Any) -> Any:
        if work is store_module._nothing:
            waits.append(work)
        return await real(work, *args, **kw)

    monkeypatch.setattr(store.db, "run", run)
    for _ in range(3):
        assert len(await bot.say("/start")) == 1
    assert waits == []
    *_, before_last, last = await bot.replies()
    assert before_last[0] == "sent" and last[0] in ("sending", "sent")


@pytest.mark.parametrize(
    ("status", "description"),
    [(403, "Forbidden: bot was blocked by the user"), (400, "Bad Request: chat not found")],
)
async def test_a_user_who_blocked_the_bot_is_deactivated_and_owed_nothing(
    bot: Bot, caplog: pytest.LogCaptureFixture, status: int, description: str
) -> None:
    await bot.say("/start")
    bot.api.fail_next("sendMessage", status, description, chat_id=USER)
    calls = await sticker(bot)
    assert [c.status for c in calls if c.method == "sendMessage"] == [status]
    record = await bot.runtime.coach.store.load_user(USER)
    assert record is not None and not record.active
    *_, first, second = await bot.replies()
    assert first[0] == second[0] == "cancelled"
    assert events(caplog, "blocked") == [{"event": "blocked", "user": user_ref(USER)}]


async def test_blocked_after_the_first_reply_cancels_the_rest(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.say("/start")
    fail_nth_send(bot, monkeypatch, 2, lambda: bot.api.block_user(USER))
    calls = await sticker(bot)
    assert [c.status for c in calls if c.method == "sendMessage"] == [200, 403]
    *_, first, last = await bot.replies()
    # The one delivered is recorded as sent, not cancelled with the rest.
    assert (first[0], last[0]) == ("sent", "cancelled")
    record = await bot.runtime.coach.store.load_user(USER)
    assert record is not None and not record.active


# --- answers not queued before they went: a recruiter's, the apology --------------------------


async def outbox(bot: Bot, user: int = USER) -> list[tuple[str, int, int, str | None]]:
    """The queued replies for `user`: (state, due in seconds, attempts, error)."""
    rows = await bot.runtime.coach.store.db.all(
        "SELECT state, due_at, attempts, last_error FROM nudges"
        " WHERE user_id = ? AND kind = 'reply' ORDER BY id",
        (user,),
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def recorded(bot: Bot, states: list[str]) -> None:
    """Wait (polling, with a deadline) until the queued replies are in these states: the
    dispatcher records a send just after Telegram took it."""
    async with asyncio.timeout(10):
        while [row[0] for row in await outbox(bot)] != states:
            await asyncio.sleep(0.01)


async def after_the_wait(bot: Bot, clock: FakeClock, seconds: int, method: str) -> list[Call]:
    """Move the clock past the wait and let the dispatcher send what it holds."""
    mark = bot.api.mark()
    clock.advance(seconds=seconds)
    bot.runtime.dispatcher.wake()
    return await bot.api.wait_for(
        method, lambda c: c.ok and int(c.params["chat_id"]) == USER, after=mark
    )


@pytest.mark.parametrize(("status", "retry_after", "wait"), [(502, None, 5), (429, 3, 3)])
async def test_a_request_to_become_a_recruiter_telegram_did_not_take_is_sent_later(
    api: FakeBotApi,
    running_bot: Any,
    clock: FakeClock,
    status: int,
    retry_after: int | None,
    wait: int,
) -> None:
    async with running_bot(admin_ids=frozenset({99})) as runtime:
        bot = Bot(api, runtime)
        api.fail_next("sendMessage", status, retry_after=retry_after, chat_id=USER)
        assert await bot.say("/recruiter") == []
        due = int(clock().timestamp()) + wait
        [(state, due_at, attempts, error)] = await outbox(bot)
        # A 5xx is a failure, counted; a flood wait is none.
        assert (state, due_at, attempts) == ("pending", due, 0 if status == 429 else 1)
        assert error is not None and error != ""
        [call] = await after_the_wait(bot, clock, wait, "sendMessage")
        assert "asked the administrators" in call.params["text"]
        assert int(call.params["chat_id"]) == USER
        await recorded(bot, ["sent"])


async def test_an_administrators_links_and_qr_code_are_sent_later(
    api: FakeBotApi, running_bot: Any, clock: FakeClock
) -> None:
    # An administrator who never talked to the coach: the outbox needs a row to address.
    async with running_bot(admin_ids=frozenset({USER})) as runtime:
        bot = Bot(api, runtime)
        api.fail_next("sendMessage", 502, chat_id=USER)
        assert await bot.say("/links", first_name="Ada") == []
        [call] = await after_the_wait(bot, clock, 5, "sendMessage")
        assert "/newlink" in call.params["text"]
        # A picture too: the link's text went, its QR code waits in the outbox.
        api.fail_next("sendPhoto", 502, chat_id=USER)
        mark = api.mark()
        await bot.say("/newlink Designer at Acme")
        [failed] = [c for c in api.calls[mark:] if c.method == "sendPhoto"]
        assert failed.status == 502
        [photo] = await after_the_wait(bot, clock, 5, "sendPhoto")
        assert photo.params["photo"].data == failed.params["photo"].data
        assert photo.params["caption"] == failed.params["caption"]
        assert photo.params.get("reply_markup") == failed.params.get("reply_markup")
        await recorded(bot, ["sent", "sent"])


async def test_the_apology_telegram_did_not_take_is_sent_later(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    await bot.say("/start")
    failing_coach(bot, monkeypatch)
    bot.api.fail_next("sendMessage", 502, chat_id=USER)
    assert await bot.say("/help") == []
    [call] = await after_the_wait(bot, clock, 5, "sendMessage")
    assert call.params["text"] == APOLOGY


async def test_after_one_answer_telegram_did_not_take_the_rest_wait_behind_it_in_order(
    bot: Bot, clock: FakeClock
) -> None:
    front = bot.runtime.front
    answers_ = (RenderedMessage("one"), Photo(b"\x89PNG two", CAPTION), RenderedMessage("three"))
    bot.api.fail_next("sendMessage", 502, chat_id=USER)
    await front._send_all(USER, USER, answers_)
    # The first met the failure (counted); the other two were not tried.
    queued = [(r[0], r[2]) for r in await outbox(bot)]
    assert queued == [("pending", 1), ("pending", 0), ("pending", 0)]
    mark = bot.api.mark()
    clock.advance(seconds=5)
    bot.runtime.dispatcher.wake()
    await bot.api.wait_for("sendMessage", lambda c: c.ok, count=2, after=mark)
    sends = [c for c in bot.api.calls[mark:] if c.method in ("sendMessage", "sendPhoto")]
    assert [c.params.get("text", c.params.get("caption")) for c in sends] == [
        "one",
        CAPTION.text,
        "three",
    ]
    assert sends[1].params["photo"].data == b"\x89PNG two"


# --- Telegram's per-chat limit: one budget per chat, replies and nudges alike ----------------

OTHER = 8


def arrivals(calls: list[Call], user: int) -> list[float]:
    """When Telegram got each message for `user`'s chat (time.monotonic())."""
    return [c.at for c in calls if c.method == "sendMessage" and int(c.params["chat_id"]) == user]


async def test_replies_and_nudges_share_one_budget_per_chat(bot: Bot) -> None:
    front, dispatcher = bot.runtime.front, bot.runtime.dispatcher
    assert front.pacer is dispatcher.pacer
    assert front.on_flood == dispatcher.reply_flooded


async def test_replies_within_a_chats_burst_go_at_once(api: FakeBotApi, running_bot: Any) -> None:
    # A minute between messages once the burst is spent: any wait would outlast the test.
    async with running_bot(per_chat_interval_seconds=60.0) as runtime:
        bot = Bot(api, runtime)
        mark = api.mark()
        await bot.say("/start")
        await sticker(bot)  # two more: three in all, the burst
        assert len(arrivals(api.calls[mark:], USER)) == 3
        assert {row[0] for row in await bot.replies()} == {"sent"}
        assert runtime.front.pacer is not None and runtime.front.pacer.waiting(USER) == 0


async def test_a_flood_of_replies_is_spaced_and_other_chats_are_not_held_up(
    api: FakeBotApi, running_bot: Any
) -> None:
    async with running_bot(per_chat_interval_seconds=0.5) as runtime:
        bot = Bot(api, runtime)
        pacer = runtime.front.pacer
        assert pacer is not None
        mark = api.mark()
        await bot.say("/start")
        await sticker(bot)  # the burst is spent
        flood = asyncio.create_task(sticker(bot))
        await eventually(lambda: pacer.waiting(USER) == 1)  # its first reply waits its turn
        # Meanwhile another user is answered at once.
        assert [FIRST_QUESTION in m["text"] for m in await bot.say("/start", OTHER)] == [True]
        await asyncio.wait_for(flood, 10)
        mine, other = arrivals(api.calls[mark:], USER), arrivals(api.calls[mark:], OTHER)
        assert len(mine) == 5 and other[0] < mine[3]
        # Three at once, then one per 0.5 s (a request's latency of slack).
        assert mine[3] - mine[0] >= 0.5 - 0.05 and mine[4] - mine[0] >= 1.0 - 0.05
        assert {row[0] for row in await bot.replies()} == {"sent"}  # none went the long way


async def test_a_chat_that_floods_further_is_answered_through_the_outbox(
    api: FakeBotApi, running_bot: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_bot(per_chat_interval_seconds=0.2) as runtime:
        bot = Bot(api, runtime)
        pacer = runtime.front.pacer
        assert pacer is not None
        await bot.say("/start")
        for _ in range(pacer.burst - 1):
            await pacer.take(USER)  # the rest of the burst
        # A burst's worth of messages already waits for this chat (a user tapping fast).
        ahead = [asyncio.create_task(pacer.take(USER)) for _ in range(pacer.burst)]
        await eventually(lambda: pacer.waiting(USER) == pacer.burst)
        mark = api.mark()
        calls = await sticker(bot)  # handled at once: its replies wait in the outbox instead
        assert sent(calls) == []
        *_, first, second = await outbox(bot)
        assert first[0] == second[0] == "pending"
        assert (first[2], first[3]) == (0, PACED)  # a wait, not a failure
        [line] = events(caplog, "reply_paced")
        assert line["user"] == user_ref(USER) and float(line["seconds"]) == 0.8
        # The dispatcher, woken, sends them in order when the chat's budget has room.
        await api.wait_for("sendMessage", lambda c: c.ok, count=2, after=mark)
        texts = [m["text"] for m in sent(api.calls[mark:])]
        assert texts[0].startswith(NOT_TEXT) and FIRST_QUESTION in texts[1]
        assert all(task.done() for task in ahead)  # after those that waited before them
        await recorded(bot, ["sent"] * len(await outbox(bot)))


async def test_a_reply_never_overtakes_the_replies_its_chat_has_held_in_the_outbox(
    api: FakeBotApi, running_bot: Any, clock: FakeClock
) -> None:
    async with running_bot(per_chat_interval_seconds=0.5) as runtime:
        bot = Bot(api, runtime)
        pacer = runtime.front.pacer
        assert pacer is not None
        await bot.say("/start")
        for _ in range(pacer.burst - 1):
            await pacer.take(USER)  # the rest of the burst
        ahead = [asyncio.create_task(pacer.take(USER)) for _ in range(pacer.burst)]
        await eventually(lambda: pacer.waiting(USER) == pacer.burst)
        mark = api.mark()
        assert sent(await sticker(bot)) == []  # held in the outbox, due 2 s from now
        for task in ahead:  # those waiting give up: the next update finds nobody waiting
            task.cancel()
        await asyncio.gather(*ahead, return_exceptions=True)
        assert pacer.waiting(USER) == 0
        assert await bot.say("/start") == []  # behind the held ones, not before them
        assert [row[0] for row in await outbox(bot)][-3:] == ["pending"] * 3
        # Their time comes: the dispatcher sends the three in the order they were answered.
        clock.advance(seconds=3)
        runtime.dispatcher.wake()
        await api.wait_for("sendMessage", lambda c: c.ok, count=3, after=mark)
        texts = [m["text"] for m in sent(api.calls[mark:])]
        assert len(texts) == 3
        assert texts[0].startswith(NOT_TEXT) and FIRST_QUESTION in texts[1]
        assert FIRST_QUESTION in texts[2] and not texts[2].startswith(NOT_TEXT)
        # All sent: the chat's replies go at once again.
        await recorded(bot, ["sent"] * len(await outbox(bot)))
        await eventually(lambda: not runtime.front._held)
        assert len(await bot.say("/start")) == 1


@pytest.mark.parametrize(("status", "told"), [(429, [7.0]), (502, [])])
async def test_a_flood_wait_on_a_reply_is_told_to_the_dispatcher(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, status: int, told: list[float]
) -> None:
    floods: list[float] = []
    monkeypatch.setattr(bot.runtime.front, "on_flood", floods.append)
    await bot.say("/start")
    retry_after = 7 if status == 429 else None
    bot.api.fail_next("sendMessage", status, retry_after=retry_after, chat_id=USER)
    await sticker(bot)  # a conversation's replies
    # Another chat's (this one's later replies now wait behind those in the outbox).
    bot.api.fail_next("sendMessage", status, retry_after=retry_after, chat_id=OTHER)
    await bot.runtime.front._send_all(OTHER, OTHER, (RenderedMessage("an answer"),))
    assert floods == told * 2


class Alone:
    """The front end on its own (`build_application`, no inbox, no dispatcher): PTB's
    Application handles each update as it is given, as a front end without a runtime would."""

    def __init__(self, api: FakeBotApi, app: Any, front: TelegramFrontEnd) -> None:
        self.api, self.app, self.front = api, app, front

    async def push(self, update: JSON) -> list[Call]:
        mark = self.api.mark()
        await self.app.process_update(Update.de_json(update, self.app.bot))
        return self.api.calls[mark:]


@pytest.fixture
async def coach(
    make_settings: Callable[..., Settings],
    clock: FakeClock,
    kb: KnowledgeBase,
    classifier: ObjectionClassifier,
) -> Any:
    """The bot's coach on its own database, without a runtime around it."""
    opened = await open_coach(make_settings(), clock=clock, kb=kb, classifier=classifier)
    try:
        yield opened
    finally:
        await opened.store.db.close()


@pytest.fixture
async def alone(api: FakeBotApi, coach: Coach) -> Any:
    app, front = build_application(coach, "123:abc", api.base_url)
    await app.initialize()
    try:
        yield Alone(api, app, front)
    finally:
        await app.shutdown()


async def reply_rows(alone: Alone) -> list[Any]:
    return await alone.front.coach.store.db.all("SELECT * FROM nudges WHERE kind = 'reply'")


async def test_alone_there_is_no_recruiters_desk(alone: Alone) -> None:
    await alone.push(alone.api.push_message(USER, "/start", enqueue=False))
    stats = sent(await alone.push(alone.api.push_message(USER, "/stats", enqueue=False)))
    assert stats[0]["text"].startswith("I don't know that command.")
    typed = sent(await alone.push(alone.api.push_message(USER, "just looking", enqueue=False)))
    assert typed and all(m["text"] != APOLOGY for m in typed)


async def test_files_come_from_the_same_server_as_the_bot_api(coach: Coach) -> None:
    for base, files in [
        ("https://api.telegram.org/bot", "https://api.telegram.org/file/bot"),
        ("http://botapi:8081/bot", "http://botapi:8081/file/bot"),
        ("http://127.0.0.1:8081/custom", "http://127.0.0.1:8081/custom"),
    ]:
        app, _ = build_application(coach, "123:abc", base)
        assert app.bot.base_url == f"{base}123:abc"
        assert app.bot.base_file_url == f"{files}123:abc", base


async def test_alone_the_front_end_sends_replies_at_once_and_queues_none(alone: Alone) -> None:
    await alone.push(alone.api.push_message(USER, "/start", enqueue=False))
    calls = await alone.push(alone.api.push_sticker(USER, enqueue=False))
    [not_text, screen] = sent(calls)
    assert not_text["text"].startswith(NOT_TEXT) and FIRST_QUESTION in screen["text"]
    assert await reply_rows(alone) == []


@pytest.mark.parametrize("status", [502, 400, 429])
async def test_alone_a_failed_send_drops_the_rest_and_says_so(
    alone: Alone, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    # Without the inbox there are no queued replies to fall back on: it stops at the first
    # message Telegram refuses, and logs it.
    await alone.push(alone.api.push_message(USER, "/start", enqueue=False))
    alone.api.fail_next("sendMessage", status, chat_id=USER)
    calls = await alone.push(alone.api.push_sticker(USER, enqueue=False))
    assert [c.status for c in calls if c.method == "sendMessage"] == [status]
    assert await reply_rows(alone) == []
    [line] = events(caplog, "send_failed")
    assert line["user"] == user_ref(USER) and line["error"] not in ("", "None")
    helped = sent(await alone.push(alone.api.push_message(USER, "/help", enqueue=False)))
    assert helped[0]["text"].startswith("<b>What I can do</b>")


async def test_alone_a_blocked_user_is_deactivated(
    alone: Alone, caplog: pytest.LogCaptureFixture
) -> None:
    await alone.push(alone.api.push_message(USER, "/start", enqueue=False))
    alone.api.fail_next("sendMessage", 403, chat_id=USER)
    calls = await alone.push(alone.api.push_sticker(USER, enqueue=False))
    assert [c.status for c in calls if c.method == "sendMessage"] == [403]
    record = await alone.front.coach.store.load_user(USER)
    assert record is not None and not record.active
    assert events(caplog, "blocked") == [{"event": "blocked", "user": user_ref(USER)}]


async def test_alone_the_same_update_twice_is_handled_twice(alone: Alone) -> None:
    # Exactly-once is the inbox's promise; the front end alone hands each update on.
    update = alone.api.push_message(USER, "/help", enqueue=False)
    await alone.push(update)
    await alone.push(update)
    assert len(alone.api.sent_messages(USER)) == 2 * 2


@pytest.mark.parametrize("kind", ["message", "button"])
async def test_the_same_update_handed_over_twice_is_answered_once(
    bot: Bot, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    # The worker forgets what it handled (a restart, or its memory of ids is full): the store
    # still knows, and the second hand-over sends nothing; a press is still answered.
    await bot.say("/start")
    if kind == "message":
        update = bot.api.push_message(USER, "/help", enqueue=False)
    else:
        update = bot.api.push_callback(USER, "v1:sit:explore", enqueue=False)
    await bot.push(update)
    mark = bot.api.mark()
    await bot.runtime.app.process_update(Update.de_json(update, bot.runtime.app.bot))
    again = bot.api.calls[mark:]
    assert sent(again) == []
    if kind == "button":
        # Answered again (Telegram refuses a second answer; that is logged, nothing more).
        [answer] = answers(again)
        assert "text" not in answer.params
    assert events(caplog, "duplicate_update") == [
        {"event": "duplicate_update", "update_id": str(update["update_id"])}
    ]


# --- groups ----------------------------------------------------------------------------------

GROUP = {"id": -100123, "type": "supergroup", "title": "Team"}
STICKER = {"file_id": "x", "file_unique_id": "y", "type": "regular", "width": 1, "height": 1}
STICKER |= {"is_animated": False, "is_video": False}


def in_group(api: FakeBotApi, **fields: Any) -> JSON:
    message = {**api.make_message(USER, **fields), "chat": GROUP}
    return api.make_update(message=message)


@pytest.mark.parametrize(
    "fields",
    [
        {"text": "/start"},
        {"text": f"/help@{BOT_USERNAME}"},
        {"text": "I'm nervous"},
        {"sticker": STICKER},
    ],
)
async def test_messages_in_a_group_are_ignored(bot: Bot, fields: JSON) -> None:
    calls = await bot.push(in_group(bot.api, **fields))
    assert [c.method for c in calls if c.method != "getUpdates"] == []
    assert await bot.runtime.coach.store.load_user(USER) is None


async def test_a_button_in_a_group_is_answered_and_changes_nothing(bot: Bot) -> None:
    await bot.say("/start")
    message = {**bot.api.make_message(USER, "x"), "chat": GROUP}
    calls = await bot.push(bot.api.push_callback(USER, "v1:sit:explore", message, enqueue=False))
    [answer] = answers(calls)
    assert answer.ok and answer.params["text"] == GROUP_TOAST
    assert [c.method for c in calls if c.method.startswith("send")] == []
    record = await bot.runtime.coach.store.load_user(USER)
    assert record is not None and record.chat_id == USER
    # Still at the first question: the press in the group did not move the conversation.
    assert FIRST_QUESTION in (await bot.say("/help"))[-1]["text"]


# --- commands --------------------------------------------------------------------------------


async def test_a_command_addressed_to_the_bot_by_name_is_the_command(bot: Bot) -> None:
    helped = await bot.say(f"/help@{BOT_USERNAME}")
    assert helped[0]["text"].startswith("<b>What I can do</b>")
    # The name is what comes before the first "@".
    helped = await bot.say("/help@someone@else")
    assert helped[0]["text"].startswith("<b>What I can do</b>")
    started = await bot.say(f"/start@{BOT_USERNAME}", first_name="Ann")
    assert started[0]["text"].startswith("Hi Ann!")


async def test_commands_are_read_in_any_case(bot: Bot) -> None:
    assert (await bot.say("/START", first_name="Bo"))[0]["text"].startswith("Hi Bo!")
    assert (await bot.say("/Help"))[0]["text"].startswith("<b>What I can do</b>")


async def test_a_command_argument_survives_the_bot_name_and_extra_spaces(bot: Bot) -> None:
    # Monday 23 Nov 2026, 10:00 UTC (the fake clock): "Tue 3pm" is the next day.
    [confirm] = await bot.say(f"/INTERVIEW@{BOT_USERNAME}   Tue 3pm  ")
    assert "Tuesday 24 Nov at 15:00" in confirm["text"]


async def test_an_unknown_command_is_said_to_be_unknown(bot: Bot) -> None:
    for command in (f"/frobnicate@{BOT_USERNAME} now", "/Xstart", "/start_over", "/st"):
        replies = await bot.say(command)
        assert replies[0]["text"].startswith("I don't know that command."), command


async def test_recruiter_commands_go_to_the_recruiters_desk(bot: Bot) -> None:
    not_one = "This is for recruiters."
    for command in ("/stats", f"/LINKS@{BOT_USERNAME}", "/newlink Designer at Acme", "/export"):
        [reply] = await bot.say(command)
        assert reply["text"].startswith(not_one), command
    [asked] = await bot.say("/recruiter")
    assert not asked["text"].startswith(not_one)


async def test_recruiter_buttons_go_to_the_recruiters_desk(bot: Bot) -> None:
    await bot.say("/start")
    calls = await bot.press("r1:links")
    [answer] = answers(calls)
    assert answer.params["text"] == "Recruiters only"
    assert sent(calls)[0]["text"].startswith("This is for recruiters.")


async def recruiter_row(runtime: BotRuntime, user: int) -> tuple[str, str | None] | None:
    row = await runtime.coach.store.db.one(
        "SELECT status, name FROM recruiters WHERE user_id = ?", (user,)
    )
    return None if row is None else (row["status"], row["name"])


async def test_a_request_to_become_a_recruiter_carries_the_first_name(bot: Bot) -> None:
    await bot.say("/recruiter", first_name="Dana")
    assert await recruiter_row(bot.runtime, USER) == ("pending", "Dana")


@pytest.mark.parametrize("push", ["command", "button"])
async def test_an_administrator_becomes_a_recruiter_under_their_first_name(
    api: FakeBotApi, running_bot: Any, push: str
) -> None:
    async with running_bot(admin_ids=frozenset({USER})) as runtime:
        bot = Bot(api, runtime)
        if push == "command":
            await bot.say("/links", first_name="Ada")
        else:
            api.user(USER, first_name="Ada")
            await bot.press("r1:links")
        assert await recruiter_row(runtime, USER) == ("approved", "Ada")


async def test_a_desk_answer_to_a_user_who_blocked_the_bot_marks_them_inactive(
    bot: Bot,
) -> None:
    await bot.say("/start")
    bot.api.block_user(USER)
    await bot.say("/stats")
    record = await bot.runtime.coach.store.load_user(USER)
    assert record is not None and not record.active


async def test_a_button_without_data_gets_the_stale_toast(bot: Bot) -> None:
    # A game's button carries a game name instead of data; we have none, so it is stale.
    await bot.say("/start")
    update = bot.api.push_callback(USER, "", enqueue=False)
    del update["callback_query"]["data"]
    update["callback_query"]["game_short_name"] = "chess"
    calls = await bot.push(update)
    [answer] = answers(calls)
    assert answer.params["text"] == STALE_TOAST
    assert sent(calls)[0]["text"].startswith(STALE)


async def test_an_error_outside_any_update_is_logged_in_one_line(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.runtime.app.process_error(None, RuntimeError("network hiccup"))
    [line] = [r.getMessage() for r in caplog.records if "update_error" in r.getMessage()]
    assert line == "event=update_error update_id=None error=RuntimeError('network hiccup')"


# --- what the bot does not read --------------------------------------------------------------

NON_TEXT: dict[str, Callable[[FakeBotApi], JSON]] = {
    "sticker": lambda api: api.push_sticker(USER, enqueue=False),
    "photo": lambda api: api.push_photo(USER, "my CV", enqueue=False),
    "voice": lambda api: api.push_voice(USER, enqueue=False),
    "document": lambda api: api.push_document(USER, enqueue=False),
    "location": lambda api: api.make_update(
        message=api.make_message(USER, location={"latitude": 48.85, "longitude": 2.35})
    ),
    "contact": lambda api: api.make_update(
        message=api.make_message(
            USER, contact={"phone_number": "+100", "first_name": "Ann", "user_id": USER}
        )
    ),
    "dice": lambda api: api.make_update(
        message=api.make_message(USER, dice={"emoji": "🎲", "value": 3})
    ),
}


@pytest.mark.parametrize("kind", sorted(NON_TEXT))
async def test_anything_but_text_gets_the_friendly_i_read_text_reply(bot: Bot, kind: str) -> None:
    await bot.say("/start")
    calls = await bot.push(NON_TEXT[kind](bot.api))
    replies = sent(calls)
    assert replies[0]["text"].startswith(NOT_TEXT)
    assert FIRST_QUESTION in replies[1]["text"], "and where we were"
    assert [r[0] for r in await bot.replies()][-2:] == ["sent", "sent"]


# --- ids and odd text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "chat", "served"),
    [
        (SQLITE_MAX, SQLITE_MAX, True),
        (SQLITE_MAX + 1, SQLITE_MAX + 1, False),
        (USER, -SQLITE_MAX, True),
        (USER, -SQLITE_MAX - 1, False),
        (0, 0, False),
        (1, 1, True),
    ],
)
async def test_ids_beyond_what_sqlite_stores_are_ignored(
    bot: Bot, caplog: pytest.LogCaptureFixture, user: int, chat: int, served: bool
) -> None:
    message = bot.api.make_message(USER, "/start")
    message["from"] = {**message["from"], "id": user}
    message["chat"] = {**message["chat"], "id": chat}
    update = bot.api.make_update(message=message)
    calls = await bot.push(update)
    greeted = [c for c in calls if c.method == "sendMessage" and "Hi Ann" in c.params["text"]]
    assert bool(greeted) is served
    assert all(int(c.params["chat_id"]) == chat for c in greeted), "answered in its chat"
    if served:
        assert await bot.runtime.coach.store.load_user(user) is not None
    else:
        assert events(caplog, "update_ignored") == [
            {"event": "update_ignored", "reason": "ids", "update_id": str(update["update_id"])}
        ]


async def test_a_message_without_a_sender_is_ignored(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    message = bot.api.make_message(USER, "/start")
    del message["from"]
    calls = await bot.push(bot.api.make_update(message=message))
    assert sent(calls) == []
    assert [e["reason"] for e in events(caplog, "update_ignored")] == ["ids"]
    assert events(caplog, "update_error") == []


async def test_a_user_without_a_first_name_is_greeted_all_the_same(bot: Bot) -> None:
    message = bot.api.make_message(USER, "/start")
    message["from"] = {**message["from"], "first_name": ""}
    [greeting, *_] = sent(await bot.push(bot.api.make_update(message=message)))
    assert greeting["text"].startswith("Hi there!")


async def test_nul_characters_and_lone_surrogates_are_cleaned_from_what_users_send(
    bot: Bot,
) -> None:
    [greeting, *_] = await bot.say("/start", first_name="An\x00na\ud800")
    assert greeting["text"].startswith("Hi Anna\ufffd!")
    assert "Paris" in (await bot.say("/timezone Europe/Par\x00is"))[0]["text"]
    await bot.say("/timezone")
    assert "Tokyo" in (await bot.say("Asia/To\x00kyo"))[0]["text"]


# --- the command menu ------------------------------------------------------------------------


def menu_file() -> dict[str, dict[str, str]]:
    with (PROMPTS / "commands.toml").open("rb") as fh:
        return tomllib.load(fh)


async def test_the_command_menu_is_set_at_start_up_from_the_prompts(bot: Bot) -> None:
    [call] = bot.api.calls_of("setMyCommands")
    commands = {c["command"]: c["description"] for c in call.params["commands"]}
    assert commands == menu_file()["commands"]
    assert "scope" not in call.params
    assert "newlink" not in commands and "help" in commands


async def test_a_recruiters_menu_adds_their_commands_and_a_failure_is_not_fatal(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    front = bot.runtime.front
    await front.set_menu(USER, recruiter=True)
    call = bot.api.calls_of("setMyCommands")[-1]
    assert call.params["scope"] == {"type": "chat", "chat_id": USER}
    names = [c["command"] for c in call.params["commands"]]
    menus = menu_file()
    assert names == [*menus["commands"], *menus["recruiter_commands"]]
    await front.set_menu(USER, recruiter=False)
    [removed] = bot.api.calls_of("deleteMyCommands")
    assert removed.params["scope"] == {"type": "chat", "chat_id": USER}
    bot.api.fail_next("setMyCommands", 400, "Bad Request: chat not found")
    await front.set_menu(USER, recruiter=True)  # logged, not raised
    assert bot.api.calls_of("setMyCommands")[-1].status == 400
    [line] = events(caplog, "menu_failed")
    assert line == {"event": "menu_failed", "user": user_ref(USER), "error": "Chat not found"}


async def test_the_bot_serves_even_if_the_command_menu_cannot_be_set(
    api: FakeBotApi, running_bot: Any, caplog: pytest.LogCaptureFixture
) -> None:
    api.fail_next("setMyCommands", 500, "Internal Server Error")
    async with running_bot() as runtime:
        assert (await Bot(api, runtime).say("/help"))[0]["text"].startswith("<b>What I can do")
    assert events(caplog, "commands_not_set") == [
        {"event": "commands_not_set", "error": "Internal Server Error"}
    ]


async def test_a_press_telegram_will_not_let_us_answer_still_gets_its_replies(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.say("/start")
    bot.api.fail_next("answerCallbackQuery", 400, "Bad Request: query is too old")
    calls = await bot.tap("Just exploring")
    assert [c.status for c in answers(calls)] == [400]
    assert "which way do you lean" in sent(calls)[0]["text"]
    [line] = events(caplog, "callback_unanswered")
    query = answers(calls)[0].params["callback_query_id"]
    assert line == {"event": "callback_unanswered", "query": query, "error": "Query is too old"}


async def test_one_slow_conversation_does_not_hold_up_another(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    coach = bot.runtime.coach
    handle, release = coach.handle, asyncio.Event()

    async def slow_for_user_1(event: Any, *args: Any) -> Any:
        if event.user_id == 1:
            await release.wait()
        return await handle(event, *args)

    monkeypatch.setattr(coach, "handle", slow_for_user_1)
    first = bot.api.push_message(1, "/start", "Ann")
    bot.api.push_update(first)
    assert (await bot.say("/start", user=2, first_name="Bob"))[0]["text"].startswith("Hi Bob!")
    release.set()
    await bot.api.wait_for("sendMessage", lambda c: str(c.params["chat_id"]) == "1")


async def test_reminders_live_in_the_database_not_in_a_job_queue(bot: Bot) -> None:
    # PTB's JobQueue keeps jobs in memory and loses them on a restart.
    with pytest.warns(PTBUserWarning, match="No `JobQueue` set up"):
        assert bot.runtime.app.job_queue is None


async def test_files_users_send_can_be_fetched_from_the_same_api_server(bot: Bot) -> None:
    update = bot.api.push_photo(USER, content=b"\xff\xd8 a photo", enqueue=False)
    file = await bot.runtime.app.bot.get_file(update["message"]["photo"][-1]["file_id"])
    assert bytes(await file.download_as_bytearray()) == b"\xff\xd8 a photo"


# --- the sender: what Telegram is asked, and how its refusals are read -----------------------

CAPTION = RenderedMessage("<b>Your link</b> for Designer", ((("Open", "r1:open:1"),),))


async def test_messages_go_as_html_without_link_previews_and_with_their_buttons(
    bot: Bot,
) -> None:
    sender = TelegramSender(bot.runtime.app.bot)
    keyboard = ((("Yes", "v1:a"), ("No", "v1:b")), (("Back", "v1:c"),))
    await sender.send(USER, RenderedMessage("<b>Hi</b> https://example.org", keyboard))
    await sender.send(USER, RenderedMessage("No buttons"))
    first, second = bot.api.sent_messages(USER)
    assert first["text"] == "<b>Hi</b> https://example.org" and first["parse_mode"] == "HTML"
    assert first["link_preview_options"] == {"is_disabled": True}
    assert first["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Yes", "callback_data": "v1:a"}, {"text": "No", "callback_data": "v1:b"}],
            [{"text": "Back", "callback_data": "v1:c"}],
        ]
    }
    assert "reply_markup" not in second and second["parse_mode"] == "HTML"


async def test_pictures_and_files_go_with_their_html_captions_and_buttons(bot: Bot) -> None:
    sender = TelegramSender(bot.runtime.app.bot)
    await sender.send_any(USER, Photo(b"\x89PNG fake", CAPTION))
    await sender.send_any(USER, Document(b"a,b\n1,2\n", "candidates.csv", CAPTION))
    await sender.send_any(USER, Document(b"x", "plain.txt", RenderedMessage("Plain")))
    await sender.send_any(USER, RenderedMessage("And a message"))
    [photo] = bot.api.calls_of("sendPhoto")
    [document, plain] = bot.api.calls_of("sendDocument")
    buttons = {"inline_keyboard": [[{"text": "Open", "callback_data": "r1:open:1"}]]}
    for call in (photo, document):
        assert call.ok and call.params["caption"] == CAPTION.text
        assert call.params["parse_mode"] == "HTML"
        assert call.params["reply_markup"] == buttons
    assert photo.params["photo"].data == b"\x89PNG fake"
    assert document.params["document"].data == b"a,b\n1,2\n"
    assert document.params["document"].filename == "candidates.csv"
    assert plain.params["caption"] == "Plain" and "reply_markup" not in plain.params
    assert bot.api.sent_texts(USER) == ["And a message"]


async def raising(exc: Exception) -> None:
    raise exc


@pytest.mark.parametrize(
    ("error", "expected", "text"),
    [
        (Forbidden("Forbidden: bot was blocked by the user"), Blocked, "blocked by the user"),
        (BadRequest("Chat not found"), Blocked, "Chat not found"),
        (BadRequest("Message is too long"), Rejected, "Message is too long"),
        (NetworkError("Bad Gateway"), SendError, "Bad Gateway"),
        (TimedOut(), SendError, "Timed out"),
    ],
)
async def test_telegram_errors_are_read_as_what_to_do_next(
    error: Exception, expected: type[SendError], text: str
) -> None:
    with pytest.raises(SendError) as raised:
        await TelegramSender._call(raising(error))
    assert type(raised.value) is expected
    assert text in str(raised.value)


@pytest.mark.parametrize("timedelta_mode", ["true", "false"])
async def test_flood_control_says_how_long_to_wait(
    monkeypatch: pytest.MonkeyPatch, timedelta_mode: str
) -> None:
    # PTB gives retry_after as seconds or (its coming default) as a timedelta: both are read.
    monkeypatch.setenv("PTB_TIMEDELTA", timedelta_mode)
    with pytest.raises(RetryLater) as raised, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        await TelegramSender._call(raising(RetryAfter(12)))
    assert raised.value.seconds == 12
    assert "12" in str(raised.value)


async def test_a_token_refused_at_start_leaves_no_http_session_open(
    api: FakeBotApi,
    make_settings: Callable[..., Settings],
    clock: FakeClock,
    kb: KnowledgeBase,
    classifier: ObjectionClassifier,
) -> None:
    # PTB's Application never finished initialising, so its shutdown does nothing: the
    # runtime closes the two sessions (calls, long polling) itself.
    api.fail_next("getMe", 401, "Unauthorized")
    settings = make_settings()
    coach = await open_coach(settings, clock=clock, kb=kb, classifier=classifier)
    runtime = BotRuntime(settings, coach, clock=clock)
    with pytest.raises(InvalidToken):
        await runtime.start()
    assert len(runtime.front.requests) == 2
    assert all(request.is_open for request in runtime.front.requests)
    await runtime.stop()
    assert not any(request.is_open for request in runtime.front.requests)


async def test_the_bot_api_client_has_a_connection_per_update_in_flight(
    coach: Coach, clock: FakeClock
) -> None:
    # Against Telegram a call takes tens to hundreds of ms: fewer connections than updates
    # handled at once would make the pool, not Telegram, the limit. Long polling has its own.
    app, front = build_application(coach, "123:abc", "http://127.0.0.1:1/bot")
    calls, polling = front.requests
    in_flight = InboxWorker(app, coach.store, clock).concurrency
    assert calls.connections >= in_flight
    assert polling.connections == 1
    # When every connection is busy a call waits its turn for a while (a burst of 64
    # calls clears in a second or two), but not for ever: a handler must not hang.
    for request in (calls, polling):
        assert request.pool_timeout is not None and 5 <= request.pool_timeout <= 60
    assert app.bot._request == (polling, calls)  # PTB: (getUpdates, everything else)
