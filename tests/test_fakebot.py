"""The fake Bot API server works with a real python-telegram-bot Application."""

from __future__ import annotations

import asyncio
import datetime as dtm
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakebot import ApiError, FakeBotApi, UploadedFile, html_visible_text

TOKEN = "123:abc"
CHAT = 42
KEYBOARD = InlineKeyboardMarkup(
    [
        [
            InlineKeyboardButton("Yes, let's go", callback_data="ready:yes"),
            InlineKeyboardButton("Not sure", callback_data="ready:unsure"),
        ]
    ]
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as server:
        yield server


class Recorder:
    def __init__(self) -> None:
        self.errors: list[object] = []


def build_app(
    api: FakeBotApi, recorder: Recorder | None = None
) -> Application[Any, Any, Any, Any, Any, Any]:
    app = (
        Application.builder()
        .token(TOKEN)
        .base_url(api.base_url)
        .base_file_url(api.base_file_url)
        .build()
    )

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            "<b>Welcome!</b> Ready to practise?", parse_mode=ParseMode.HTML, reply_markup=KEYBOARD
        )

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Noted")
        await query.edit_message_text(f"You chose: {query.data}")

    async def on_sticker(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Nice sticker! Tell me in words, please.")

    async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        tg_file = await message.photo[-1].get_file()
        data = await tg_file.download_as_bytearray()
        await message.reply_text(f"Photo with {len(data)} bytes")

    async def on_voice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Got your voice message")

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if recorder is not None:
            recorder.errors.append(context.error)

    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_handler(MessageHandler(filters.Sticker.ALL, on_sticker))
    app.add_handler(MessageHandler(filters.PHOTO, on_photo))
    app.add_handler(MessageHandler(filters.VOICE, on_voice))
    app.add_error_handler(on_error)
    return app


@asynccontextmanager
async def polling_app(
    api: FakeBotApi, recorder: Recorder | None = None
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    app = build_app(api, recorder)
    await app.initialize()
    try:
        await app.start()
        try:
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0, timeout=1)
            try:
                yield app
            finally:
                await app.updater.stop()
        finally:
            await app.stop()
    finally:
        await app.shutdown()


# ------------------------------------------------------------------------------------------
# Polling round trips with a real Application
# ------------------------------------------------------------------------------------------


async def test_polling_round_trip(api: FakeBotApi) -> None:
    recorder = Recorder()
    async with polling_app(api, recorder):
        update = api.push_message(CHAT, "/start", first_name="Ann")
        assert update["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
        [call] = await api.wait_for("sendMessage")

    assert call.ok
    assert call.params["chat_id"] == CHAT
    assert call.params["text"] == "<b>Welcome!</b> Ready to practise?"
    assert call.params["parse_mode"] == "HTML"
    assert call.params["reply_markup"] == {
        "inline_keyboard": [
            [
                {"text": "Yes, let's go", "callback_data": "ready:yes"},
                {"text": "Not sure", "callback_data": "ready:unsure"},
            ]
        ]
    }
    # Telegram answers with the parsed text and echoes the inline keyboard.
    assert call.result["text"] == "Welcome! Ready to practise?"
    assert call.result["chat"] == {"id": CHAT, "type": "private", "first_name": "Ann"}
    assert call.result["from"]["username"] == "interview_coach_test_bot"
    assert call.result["reply_markup"] == call.params["reply_markup"]

    assert api.sent_texts(CHAT) == ["<b>Welcome!</b> Ready to practise?"]
    assert [b["text"] for b in api.last_keyboard(CHAT)[0]] == ["Yes, let's go", "Not sure"]
    assert api.button_data(CHAT, "Not sure") == "ready:unsure"
    with pytest.raises(AssertionError, match="Not sure"):
        api.button_data(CHAT, "Maybe")

    methods = api.methods()
    assert methods[:2] == ["getMe", "deleteWebhook"]
    assert "getUpdates" in methods
    assert api.pending_updates == 0  # PTB confirmed the update on shutdown
    assert api.content_types["application/x-www-form-urlencoded"] > 0
    assert recorder.errors == []


async def test_each_call_records_the_token_it_came_with(api: FakeBotApi) -> None:
    # Processes that share one fake with tokens of their own can be told apart (bench/crash.py).
    async with httpx.AsyncClient() as client:
        for token in ("123:first", "123:second"):
            await client.post(f"{api.url}/bot{token}/sendMessage", json={"chat_id": 1, "text": "x"})
    assert [(c.method, c.token) for c in api.calls] == [
        ("sendMessage", "123:first"),
        ("sendMessage", "123:second"),
    ]


async def test_callback_query_is_answered_and_message_edited(api: FakeBotApi) -> None:
    recorder = Recorder()
    async with polling_app(api, recorder) as app:
        api.push_message(CHAT, "/start")
        await api.wait_for("sendMessage")
        mark = api.mark()
        update = api.click(CHAT, "Not sure")
        [answer] = await api.wait_for("answerCallbackQuery", after=mark)
        [edit] = await api.wait_for("editMessageText", after=mark)

        query = update["callback_query"]
        assert query["message"]["message_id"] == edit.params["message_id"]
        assert answer.ok and answer.params == {
            "callback_query_id": query["id"],
            "text": "Noted",
        }
        assert edit.ok and edit.params["text"] == "You chose: ready:unsure"
        assert edit.result["edit_date"] >= edit.result["date"]
        assert api.last_keyboard(CHAT) == []  # edit without reply_markup drops the keyboard

        # Telegram refuses to answer the same query twice.
        with pytest.raises(BadRequest, match=r"(?i)query is too old"):
            await app.bot.answer_callback_query(query["id"])
        with pytest.raises(BadRequest, match=r"(?i)query ID is invalid"):
            await app.bot.answer_callback_query("999")
    assert recorder.errors == []


async def test_callback_without_keyboard_gets_synthetic_message(api: FakeBotApi) -> None:
    async with polling_app(api):
        update = api.push_callback(CHAT, "ready:yes")
        await api.wait_for("answerCallbackQuery")
        [edit] = await api.wait_for("editMessageText")
    assert update["callback_query"]["message"]["from"]["is_bot"] is True
    assert edit.ok


async def test_sticker_photo_and_voice_updates(api: FakeBotApi) -> None:
    recorder = Recorder()
    async with polling_app(api, recorder):
        api.push_sticker(CHAT)
        api.push_photo(CHAT, content=b"x" * 321)
        api.push_voice(CHAT, duration=7)
        calls = await api.wait_for("sendMessage", count=3)
    assert sorted(c.params["text"] for c in calls) == [
        "Got your voice message",
        "Nice sticker! Tell me in words, please.",
        "Photo with 321 bytes",
    ]
    assert api.calls_of("getFile")[0].ok
    assert recorder.errors == []


async def test_message_ids_increase_per_chat(api: FakeBotApi) -> None:
    async with build_app(api) as app:
        first = await app.bot.send_message(1, "a")
        second = await app.bot.send_message(1, "b")
        other = await app.bot.send_message(2, "c")
    assert (first.message_id, second.message_id, other.message_id) == (1, 2, 1)
    assert first.from_user is not None and first.from_user.id == 123


# ------------------------------------------------------------------------------------------
# Errors as PTB sees them
# ------------------------------------------------------------------------------------------


async def test_forbidden_injection_and_blocked_user(api: FakeBotApi) -> None:
    async with build_app(api) as app:
        api.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id=7)
        await app.bot.send_message(8, "other chat is not affected")
        with pytest.raises(Forbidden, match=r"(?i)blocked by the user"):
            await app.bot.send_message(7, "hi")
        await app.bot.send_message(7, "works again")

        api.block_user(7)
        with pytest.raises(Forbidden):
            await app.bot.send_message(7, "hi")
        with pytest.raises(Forbidden):
            await app.bot.send_chat_action(7, "typing")
        api.unblock_user(7)
        await app.bot.send_message(7, "unblocked")

    assert [p["text"] for p in api.sent_messages(7)] == ["works again", "unblocked"]
    assert len(api.sent_messages(7, include_failed=True)) == 4
    failed = [c for c in api.calls_of("sendMessage") if not c.ok]
    assert [c.status for c in failed] == [403, 403]


async def test_retry_after_and_server_errors(
    api: FakeBotApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without PTB_TIMEDELTA, PTB 22 warns (PTBDeprecationWarning) whenever RetryAfter is built.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with build_app(api) as app:
        api.fail_next("sendMessage", 429, retry_after=3)
        with pytest.raises(RetryAfter) as exc_info:
            await app.bot.send_message(CHAT, "hi")
        assert exc_info.value.retry_after == dtm.timedelta(seconds=3)
        [call] = api.calls_of("sendMessage")
        assert call.status == 429 and call.error == "Too Many Requests: retry after 3"

        api.fail_next("sendMessage", 500, times=2)
        for _ in range(2):
            with pytest.raises(NetworkError, match=r"(?i)Internal Server Error"):
                await app.bot.send_message(CHAT, "hi")
        api.fail_next("sendMessage", 400, "Bad Request: chat not found")
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await app.bot.send_message(CHAT, "hi")
        await app.bot.send_message(CHAT, "finally")
    assert api.sent_texts() == ["finally"]


async def test_text_validation(api: FakeBotApi) -> None:
    async with build_app(api) as app:
        bot = app.bot
        with pytest.raises(BadRequest, match=r"(?i)message is too long"):
            await bot.send_message(CHAT, "x" * 4097)
        await bot.send_message(CHAT, "x" * 4096)
        # Tags and entities do not count towards the limit.
        await bot.send_message(CHAT, "<b>" + "&lt;" * 4096 + "</b>", parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
            await bot.send_message(CHAT, "   ")
        with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
            await bot.send_message(CHAT, "<b></b>", parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            await bot.send_message(CHAT, "<b>unclosed", parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match=r'(?i)Unsupported start tag "br"'):
            await bot.send_message(CHAT, "line<br>break", parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            await bot.send_message(CHAT, "salary < 5k & bonus", parse_mode=ParseMode.HTML)
        # Without parse_mode the same text is fine.
        await bot.send_message(CHAT, "salary < 5k & bonus")
    assert len(api.sent_messages(CHAT)) == 3


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        ("plain", "plain"),
        ("<b>bold</b> <i>it</i> &amp; &lt;tag&gt; &#128512;", "bold it & <tag> \U0001f600"),
        ('<a href="https://example.com/?a=1&amp;b=2">link</a>', "link"),
        ('<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>', "st"),
        ('<pre><code class="language-python">x = 1</code></pre>', "x = 1"),
        ("<blockquote expandable>quote</blockquote> a > b", "quote a > b"),
        ('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', "👍"),
        ("<B>upper</B>", "upper"),
    ],
)
def test_html_visible_text_accepts(text: str, visible: str) -> None:
    assert html_visible_text(text) == visible


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<div>x</div>", 'Unsupported start tag "div"'),
        ("<span>x</span>", 'must have class "tg-spoiler"'),
        ("a < b", 'Unexpected character "<"'),
        ("Tom & Jerry", 'Unescaped "&"'),
        ("&nbsp;", 'Unescaped "&"'),
        ("ü<b", "Unclosed start tag at byte offset 2"),
    ],
)
def test_html_visible_text_rejects(text: str, reason: str) -> None:
    with pytest.raises(ApiError) as exc_info:
        html_visible_text(text)
    assert exc_info.value.error_code == 400
    assert exc_info.value.description.startswith("Bad Request: can't parse entities: ")
    assert reason in exc_info.value.description


async def test_keyboard_validation(api: FakeBotApi) -> None:
    async with build_app(api) as app:
        bot = app.bot
        # PTB does not check the 64-byte limit client-side: the request reaches the server.
        long_data = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="é" * 33)]])
        with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
            await bot.send_message(CHAT, "hi", reply_markup=long_data)
        ok_data = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="é" * 32)]])
        await bot.send_message(CHAT, "hi", reply_markup=ok_data)

        empty_text = InlineKeyboardMarkup([[InlineKeyboardButton("", callback_data="x")]])
        with pytest.raises(BadRequest, match=r"(?i)text must be non-empty"):
            await bot.send_message(CHAT, "hi", reply_markup=empty_text)

        too_many = InlineKeyboardMarkup(
            [[InlineKeyboardButton(str(i), callback_data=str(i))] for i in range(101)]
        )
        with pytest.raises(BadRequest, match=r"(?i)reply markup is too long"):
            await bot.send_message(CHAT, "hi", reply_markup=too_many)
    assert api.calls_of("sendMessage")[0].status == 400
    assert len(api.sent_messages(CHAT)) == 1


async def test_edit_validation(api: FakeBotApi) -> None:
    async with build_app(api) as app:
        bot = app.bot
        msg = await bot.send_message(CHAT, "question", reply_markup=KEYBOARD)
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot.edit_message_text("question", CHAT, msg.message_id, reply_markup=KEYBOARD)
        edited = await bot.edit_message_reply_markup(CHAT, msg.message_id, reply_markup=None)
        assert isinstance(edited, object) and api.last_keyboard(CHAT) == []
        with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
            await bot.edit_message_text("x", CHAT, 999)
        user_message = api.push_message(CHAT, "mine")["message"]
        with pytest.raises(BadRequest, match=r"(?i)message can't be edited"):
            await bot.edit_message_text("x", CHAT, user_message["message_id"])
        assert await bot.delete_message(CHAT, msg.message_id) is True
        assert await bot.edit_message_text("x", inline_message_id="abc") is True


# ------------------------------------------------------------------------------------------
# Protocol details
# ------------------------------------------------------------------------------------------


async def test_long_poll_wakes_immediately_and_honours_offset(api: FakeBotApi) -> None:
    async with build_app(api) as app:
        bot = app.bot
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.create_task(bot.get_updates(timeout=10))
        await api.wait_until(lambda: api.active_polls == 1, what="a pending getUpdates")
        api.push_message(CHAT, "hello")
        updates = await asyncio.wait_for(task, timeout=3)
        assert loop.time() - started < 2
        assert [u.message.text for u in updates if u.message] == ["hello"]

        # Not confirmed yet: delivered again.
        again = await bot.get_updates(timeout=0)
        assert [u.update_id for u in again] == [updates[0].update_id]
        # Confirmed by offset: dropped.
        assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=0) == ()
        assert api.pending_updates == 0

        # limit and allowed_updates.
        api.push_message(CHAT, "one")
        api.push_callback(CHAT, "cb")
        api.push_message(CHAT, "two")
        only_callbacks = await bot.get_updates(timeout=0, allowed_updates=["callback_query"])
        assert [u.callback_query.data for u in only_callbacks if u.callback_query] == ["cb"]
        api.push_message(CHAT, "three")
        api.push_message(CHAT, "four")
        limited = await bot.get_updates(timeout=0, limit=1, allowed_updates=[])
        assert len(limited) == 1 and limited[0].callback_query is not None

        await bot.get_updates(offset=limited[-1].update_id + 10, timeout=0)


async def test_second_long_poll_terminates_the_first(api: FakeBotApi) -> None:
    # PTB's get_updates connection pool has size 1, so use raw HTTP for two concurrent polls.
    url = f"{api.base_url}{TOKEN}/getUpdates"
    async with httpx.AsyncClient(timeout=10) as client:
        first = asyncio.create_task(client.post(url, data={"timeout": "10"}))
        await api.wait_until(lambda: api.active_polls == 1, what="first poll")
        second = await client.post(url, data={"timeout": "0"})
        first_response = await first
    assert second.json() == {"ok": True, "result": []}
    assert first_response.status_code == 409
    assert "terminated by other getUpdates" in first_response.json()["description"]


async def test_webhook_round_trip(api: FakeBotApi) -> None:
    recorder = Recorder()
    port = free_port()
    webhook_url = f"http://127.0.0.1:{port}/tg"
    app = build_app(api, recorder)
    await app.initialize()
    try:
        await app.start()
        try:
            assert app.updater is not None
            await app.updater.start_webhook(
                listen="127.0.0.1",
                port=port,
                url_path="tg",
                webhook_url=webhook_url,
                secret_token="s3cret",
            )
            try:
                [set_call] = api.calls_of("setWebhook")
                assert set_call.params["url"] == webhook_url
                assert set_call.params["secret_token"] == "s3cret"
                info = await app.bot.get_webhook_info()
                assert info.url == webhook_url

                update = api.push_message(CHAT, "/start", enqueue=False)
                assert api.pending_updates == 0
                assert await api.post_update(webhook_url, update, secret_token="s3cret") == 200
                [call] = await api.wait_for("sendMessage")
                assert call.params["chat_id"] == CHAT

                # Registered URL + secret are used by default; a wrong secret is refused.
                await api.deliver(api.push_sticker(CHAT, enqueue=False))
                await api.wait_for("sendMessage", count=2)
                wrong = api.push_message(CHAT, "/start", enqueue=False)
                assert await api.post_update(webhook_url, wrong, secret_token="nope") == 403

                with pytest.raises(Conflict, match=r"(?i)webhook is active"):
                    await app.bot.get_updates()
            finally:
                await app.updater.stop()
        finally:
            await app.stop()
    finally:
        await app.shutdown()
    assert len(api.sent_messages(CHAT)) == 2
    assert recorder.errors == []


async def test_file_upload_and_download(api: FakeBotApi) -> None:
    async with build_app(api) as app:
        bot = app.bot
        sent = await bot.send_photo(
            CHAT, photo=b"\x89PNG fake", caption="<i>chart</i>", parse_mode="HTML"
        )
        assert sent.caption == "chart" and sent.photo[-1].file_size == 9
        doc = await bot.send_document(CHAT, document=b"%PDF", filename="cv.pdf")
        assert doc.document is not None and doc.document.file_name == "cv.pdf"
        tg_file = await bot.get_file(sent.photo[-1].file_id)
        assert await tg_file.download_as_bytearray() == bytearray(b"\x89PNG fake")
        with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
            await bot.send_photo(CHAT, photo=sent.photo[-1].file_id, caption="x" * 1025)

    upload = api.calls_of("sendPhoto")[0].params["photo"]
    assert isinstance(upload, UploadedFile) and upload.data == b"\x89PNG fake"
    assert api.calls_of("sendDocument")[0].params["document"].filename == "cv.pdf"
    assert api.content_types["multipart/form-data"] == 2


async def test_methods_are_case_insensitive_and_unknown_ones_404(api: FakeBotApi) -> None:
    async with build_app(api) as app:
        result = await app.bot.do_api_request(
            "SENDmessage", api_kwargs={"chat_id": CHAT, "text": "raw"}
        )
        assert result["text"] == "raw"
        with pytest.raises(EndPointNotFound):
            await app.bot.do_api_request("fooBar")
    assert api.sent_texts(CHAT) == ["raw"]
    assert api.calls_of("foobar")[0].status == 404

    async with httpx.AsyncClient() as client:
        r = await client.post(f"{api.url}/botnot-a-token/getMe")
        assert r.status_code == 404
        assert r.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        r = await client.post(
            f"{api.base_url}{TOKEN}/sendMessage", json={"chat_id": CHAT, "text": "json body"}
        )
        assert r.json()["result"]["text"] == "json body"
        r = await client.get(f"{api.base_url}{TOKEN}/nope")
        assert r.json()["description"] == "Not Found: method not found"


async def test_token_whitelist() -> None:
    async with FakeBotApi(tokens=["1:good"]) as api:
        async with Bot("1:good", base_url=api.base_url) as good:
            assert good.username == "interview_coach_test_bot"
            assert good.id == 1
        bad = Bot("1:bad", base_url=api.base_url)
        try:
            with pytest.raises(InvalidToken, match="Unauthorized"):
                await bad.get_me()
        finally:
            # A failed initialize() leaves the bot "uninitialized", so shutdown() would be a
            # no-op and leak the connection: close the request object directly.
            await bad.request.shutdown()


async def test_wait_for_timeout_lists_recorded_methods(api: FakeBotApi) -> None:
    async with build_app(api) as app:
        await app.bot.send_chat_action(CHAT, "typing")
        with pytest.raises(AssertionError, match=r"(?i)sendMessage.*getMe.*sendChatAction"):
            await api.wait_for("sendMessage", timeout=0.05)
        api.clear()
        assert api.calls == [] and not api.counts


async def test_latency_and_record_false() -> None:
    async with FakeBotApi(latency=0.05, record=False) as api, build_app(api) as app:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(app.bot.send_message(CHAT, f"m{i}") for i in range(5)))
        elapsed = loop.time() - started
        await api.wait_for_count("sendmessage", 5, timeout=1)
        assert api.calls == []
        assert api.counts["sendMessage"] == 5
        assert elapsed >= 0.05
        with pytest.raises(RuntimeError):
            await api.wait_for("sendMessage")
