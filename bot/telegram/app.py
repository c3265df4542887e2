"""The Telegram front end: PTB handlers that turn updates into engine events and send replies.

Handler registration lives in `build_application`, in the order PTB tries them: commands,
buttons, typed text, then everything else (stickers, photos, voice...).
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from telegram import BotCommand, BotCommandScopeChat, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.engine.model import Event, EventKind
from bot.logs import user_ref
from bot.nudges.dispatcher import ChatPacer
from bot.recruiters.desk import COMMANDS as RECRUITER_COMMANDS
from bot.recruiters.desk import Answer, RecruiterDesk
from bot.render import PROMPTS_DIR, RenderedMessage
from bot.sending import Blocked, Outgoing, Rejected, RetryLater, SendError, to_payload
from bot.service import Coach, Handled
from bot.storage.store import REPLY_DEADLINE, AlreadyHandled, Mark
from bot.telegram.http import AiohttpRequest
from bot.telegram.sender import TelegramSender

log = logging.getLogger(__name__)

MAX_ID = 2**63 - 1  # SQLite's largest integer


def _valid_text(text: str) -> str:
    """Text as it can be sent back: a lone surrogate (invalid UTF-16 from a forged update)
    becomes U+FFFD instead of failing every message that echoes it."""
    clean = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return clean.replace("\x00", "")


def clean(event: Event) -> Event:
    return replace(
        event,
        value=_valid_text(event.value),
        argument=_valid_text(event.argument),
        first_name=_valid_text(event.first_name),
    )


REPLY_RETRY_SECONDS = 5.0  # a reply Telegram did not take goes again this soon
PACED = "paced: the chat had a burst of messages waiting"  # a held reply's note in the outbox
MARKS_KEPT = 1024  # chats whose last reply record may still wait, before a sweep
HELD_KEPT = 1024  # chats with replies held in the outbox, before a sweep of stale ones
# What handling an update gives back: the toast for a button press, and how to send replies.
Served = tuple[str | None, Callable[[], Awaitable[None]]]


@dataclass
class _Held:
    """A chat's replies this front end left in the outbox, not yet done with: the chat's later
    replies go there too, behind them, so that none overtakes an older one."""

    rows: set[int]
    until: datetime  # when the last of them is due


class TelegramFrontEnd:
    def __init__(
        self,
        coach: Coach,
        application: Application[Any, Any, Any, Any, Any, Any],
        requests: tuple[AiohttpRequest, ...],
    ) -> None:
        self.coach = coach
        self.app = application
        self.sender = TelegramSender(application.bot)
        # Recruiters' commands, buttons ("r1:...") and typed input go to their desk.
        self.desk: RecruiterDesk | None = None
        # Updates come from the inbox (the runtime's intake): handle them exactly once.
        self.durable = False
        self.requests = requests  # the HTTP sessions the Application uses, closed by close()
        # Each chat's latest reply record that may still be deferred (Store.sent).
        self._marks: dict[int, Mark] = {}
        # Chats with replies held in the outbox (in memory: no database round trip to ask).
        self._held: dict[int, _Held] = {}
        self._held_chat: dict[int, int] = {}  # a held reply's id -> its chat
        # Telegram's per-chat budget, shared with the nudges (the runtime hands over the
        # dispatcher's); None: replies are not paced (a front end alone, in tests).
        self.pacer: ChatPacer | None = None
        # Told when a reply meets a flood wait (retry_after, in seconds): the runtime pauses
        # the nudges being sent, as the flood may be the bot's as a whole.
        self.on_flood: Callable[[float], object] | None = None
        self.on_fault: Callable[[str], None] = lambda where: None  # the errors metric

    async def close(self) -> None:
        """Close the HTTP sessions, also when the Application never finished initialising
        (a refused token): its shutdown then does nothing, and aiohttp would complain."""
        for request in self.requests:
            await request.shutdown()

    async def on_command(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        text = (message.text or "") if message else ""
        head, _sep, argument = text.partition(" ")
        name = head.lstrip("/").split("@", 1)[0].lower()
        event = self._event(update, "command", name, argument.strip())
        if self.desk is not None and name in RECRUITER_COMMANDS:
            desk = self.desk
            await self._desk(
                update,
                event,
                lambda: desk.command(event.user_id, event.first_name, name, event.argument),
            )
            return
        await self._process(update, event)

    async def on_callback(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        data = query.data if query and isinstance(query.data, str) else ""
        chat = update.effective_chat
        if query is not None and (chat is None or chat.type != ChatType.PRIVATE):
            # A button in a group (a forwarded message) must not move the user's chat, and
            # their reminders with it, into the group: answered, ignored.
            await self._answer(query, "I only work in a private chat with you")
            return
        event = self._event(update, "button", data)
        if self.desk is not None and data.startswith("r1:"):
            desk = self.desk
            await self._desk(
                update, event, lambda: desk.button(event.user_id, event.first_name, data)
            )
            return
        await self._process(update, event)

    async def on_text(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        text = (message.text or "") if message else ""
        event = self._event(update, "text", text)
        if self.desk is not None and await self.desk.wants_text(event.user_id):
            desk = self.desk
            await self._desk(update, event, lambda: desk.text(event.user_id, event.value))
            return
        await self._process(update, event)

    async def on_other(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        # A sticker, photo, voice message...: the "I read text" reply is the same for all.
        await self._process(update, self._event(update, "other", ""))

    def _event(self, update: Update, kind: EventKind, value: str, argument: str = "") -> Event:
        return clean(Event(self._user(update), kind, value, argument, self._first_name(update)))

    @staticmethod
    def _user(update: Update) -> int:
        user = update.effective_user
        return user.id if user else 0

    async def _admissible(self, update: Update, event: Event) -> bool:
        """Ids SQLite can store (a forged update may carry 2^63), a real sender."""
        chat = update.effective_chat
        ids = (event.user_id, chat.id if chat else event.user_id)
        if event.user_id <= 0 or not all(-MAX_ID <= i <= MAX_ID for i in ids):
            log.warning("event=update_ignored reason=ids update_id=%s", update.update_id)
            return False
        return True

    @staticmethod
    def _first_name(update: Update) -> str:
        user = update.effective_user
        return user.first_name if user and user.first_name else ""

    async def _process(self, update: Update, event: Event) -> None:
        """The conversation's command, button or text, exactly once when durable."""

        async def handle(chat_id: int) -> Served | None:
            update_id = update.update_id if self.durable else None
            try:
                handled = await self.coach.handle(event, chat_id, update_id)
            except AlreadyHandled:
                log.info("event=duplicate_update update_id=%s", update.update_id)
                return None
            return handled.notice, lambda: self._send_replies(event.user_id, chat_id, handled)

        await self._serve(update, event, "handling_failed", handle)

    async def _desk(
        self, update: Update, event: Event, work: Callable[[], Awaitable[Answer]]
    ) -> None:
        """A recruiter's command, button or input."""

        async def handle(chat_id: int) -> Served:
            answer = await work()

            async def send() -> None:
                await self._send_all(event.user_id, chat_id, answer.items)
                if answer.later is not None:  # a chart, drawn once the text is out
                    await self._send_all(event.user_id, chat_id, await answer.later())

            return answer.notice, send

        await self._serve(update, event, "desk_failed", handle)

    async def _serve(
        self,
        update: Update,
        event: Event,
        failure: str,
        handle: Callable[[int], Awaitable[Served | None]],
    ) -> None:
        """The guarantees every update gets: ids checked, every press answered (with its
        toast), the replies sent, and an apology instead of a crash."""
        if not await self._admissible(update, event):
            return
        chat = update.effective_chat
        chat_id = chat.id if chat else event.user_id
        query = update.callback_query
        answered = False
        try:
            served = await handle(chat_id)
            if query is not None:
                answered = True
                await self._answer(query, served[0] if served else None)
            if served is not None:
                await served[1]()
        except Exception:
            log.exception("event=%s kind=%s user=%s", failure, event.kind, user_ref(event.user_id))
            self.on_fault(failure)
            if query is not None and not answered:
                await self._answer(query, None)
            error = RenderedMessage(self.coach.renderer.text("error", {}))
            await self._send_all(event.user_id, chat_id, (error,))

    async def set_menu(self, user_id: int, recruiter: bool) -> None:
        """Recruiter commands in the menu of recruiters' chats only (a chat scope)."""
        scope = BotCommandScopeChat(user_id)
        try:
            if recruiter:
                await self.app.bot.set_my_commands(load_commands(recruiter=True), scope=scope)
            else:
                await self.app.bot.delete_my_commands(scope=scope)
        except TelegramError as exc:  # the menu is a convenience: never fail a decision on it
            log.warning("event=menu_failed user=%s error=%s", user_ref(user_id), exc)

    @staticmethod
    async def _answer(query: Any, notice: str | None) -> None:
        # Every press gets an answer, or the user's button keeps spinning.
        try:
            await query.answer(notice)
        except TelegramError as exc:  # too old to answer: the replies still go out
            log.info("event=callback_unanswered query=%s error=%s", query.id, exc)

    async def _send_replies(self, user_id: int, chat_id: int, handled: Handled) -> None:
        """Send what the conversation answered. Durable replies are marked sent one by one,
        each on record before the next message goes to the chat (a kill between a send and
        its record repeats that one message, never a batch); any Telegram did not take (5xx,
        a timeout, flood control) stay queued for the dispatcher, so none is dropped. Each
        takes its place in the chat's budget first (`_pace`)."""
        if handled.deleted:
            # Their replies held in the outbox went with their data: the goodbye waits for
            # nothing, and never goes through the outbox, which would store it (and them).
            self._drop(chat_id)
            await self._send_all(user_id, chat_id, handled.messages, outbox=False)
            return
        if not handled.reply_ids:
            await self._send_all(user_id, chat_id, handled.messages)
            return
        store, owner = self.coach.store, self.coach.owner
        pairs = list(zip(handled.messages, handled.reply_ids, strict=True))
        sent: list[int] = []
        try:
            for index, (message, reply_id) in enumerate(pairs):
                if sent:
                    self._marked(chat_id, store.sent(sent, self.coach.clock(), owner))
                    sent.clear()
                held = await self._pace(chat_id)
                if held is not None:
                    log.info("event=reply_paced user=%s seconds=%.1f", user_ref(user_id), held)
                    later = self.coach.clock() + timedelta(seconds=held)
                    rest_ids = [rest for _message, rest in pairs[index:]]
                    self._hold(chat_id, rest_ids, later)
                    for rest in rest_ids:
                        await store.retry(rest, later, PACED, count_attempt=False, owner=owner)
                    self._wake()
                    return
                await self._settled(chat_id)
                try:
                    await self.sender.send(chat_id, message)
                except Blocked:
                    log.info("event=blocked user=%s", user_ref(user_id))
                    # Those that went out are on record already (each before the next goes);
                    # deactivating cancels the rest.
                    await store.deactivate(user_id)
                    self._drop(chat_id)  # their replies held in the outbox are cancelled too
                    return
                except Rejected as exc:
                    log.warning("event=reply_refused user=%s error=%s", user_ref(user_id), exc)
                    await store.finish(
                        reply_id, "failed", self.coach.clock(), str(exc)[:500], owner=owner
                    )
                    continue
                except SendError as exc:
                    flood = self._flooded(exc)
                    wait = exc.seconds if isinstance(exc, RetryLater) else REPLY_RETRY_SECONDS
                    later = self.coach.clock() + timedelta(seconds=wait)
                    log.warning("event=reply_queued user=%s error=%s", user_ref(user_id), exc)
                    self._hold(chat_id, [rest for _message, rest in pairs[index:]], later)
                    for _message, rest in pairs[index:]:
                        # A failure counts for the reply that met it; a flood wait is none,
                        # and the replies after it were not even tried.
                        failed = rest == reply_id and not flood
                        await store.retry(
                            rest, later, str(exc)[:500], count_attempt=failed, owner=owner
                        )
                    self._wake()
                    return
                sent.append(reply_id)
        finally:
            # The last one's record rides with the next hop to the database (usually the next
            # update's, which is written before that update's replies go out), or is settled
            # before another message goes to this chat, whichever comes first.
            if sent:
                self._marked(chat_id, store.sent(sent, self.coach.clock(), owner))

    def _marked(self, chat_id: int, mark: Mark) -> None:
        if len(self._marks) >= MARKS_KEPT:
            # Records written since carry no information: forget them.
            self._marks = {c: m for c, m in self._marks.items() if not m.written}
        self._marks[chat_id] = mark

    async def _settled(self, chat_id: int) -> None:
        """The chat's last reply on record before another goes (free when a hop carried it)."""
        mark = self._marks.get(chat_id)
        if mark is not None:
            await self.coach.store.settle(mark)
            if self._marks.get(chat_id) is mark:
                del self._marks[chat_id]

    async def _send_all(
        self,
        user_id: int,
        chat_id: int,
        messages: tuple[Outgoing, ...],
        *,
        outbox: bool = True,
    ) -> None:
        """Messages that were not queued before they went (a recruiter's answers, the
        apology, all of them without the inbox). One Telegram could not take now (a 5xx, a
        timeout, a flood wait) goes into the outbox with those after it, for the dispatcher,
        when there is one (durable) and `outbox` allows; without it, the rest are dropped
        and logged."""
        outbox = outbox and self.durable
        await self._settled(chat_id)
        for index, message in enumerate(messages):
            held = await self._pace(chat_id, outbox=outbox)
            if held is not None:
                log.info("event=reply_paced user=%s seconds=%.1f", user_ref(user_id), held)
                await self._queue(user_id, chat_id, messages[index:], held, PACED, failed=False)
                return
            try:
                await self.sender.send_any(chat_id, message)
            except Blocked:
                log.info("event=blocked user=%s", user_ref(user_id))
                await self.coach.store.deactivate(user_id)
                self._drop(chat_id)  # their replies held in the outbox are cancelled too
                return
            except Rejected as exc:
                log.warning("event=send_failed user=%s error=%s", user_ref(user_id), exc)
                return
            except SendError as exc:
                flood = self._flooded(exc)
                if not outbox:
                    log.warning("event=send_failed user=%s error=%s", user_ref(user_id), exc)
                    return
                wait = exc.seconds if isinstance(exc, RetryLater) else REPLY_RETRY_SECONDS
                rest = messages[index:]
                await self._queue(user_id, chat_id, rest, wait, str(exc), failed=not flood)
                log.warning("event=reply_queued user=%s error=%s", user_ref(user_id), exc)
                return

    async def _queue(
        self,
        user_id: int,
        chat_id: int,
        rest: tuple[Outgoing, ...],
        wait: float,
        error: str,
        *,
        failed: bool,
    ) -> None:
        now = self.coach.clock()
        later = now + timedelta(seconds=wait)
        ids = await self.coach.store.queue_replies(
            user_id,
            chat_id,
            [to_payload(item) for item in rest],
            later,
            error[:500],
            now,
            failed=failed,
        )
        self._hold(chat_id, ids, later)
        self._wake()

    def _wake(self) -> None:
        if self.coach.on_schedule is not None:
            self.coach.on_schedule()  # the dispatcher: replies wait for it in the outbox

    async def _pace(self, chat_id: int, *, outbox: bool = True) -> float | None:
        """This message's place in its chat's budget, which the nudges share: at once within
        the burst (a normal conversation never waits), or after the few already waiting (a
        quick double tap). A chat with a burst's worth of messages waiting already floods:
        with the outbox, the rest of its replies wait there instead, so that one user cannot
        hold the inbox's slots, and this returns how long from now (None: it may go now).
        While replies of the chat wait in the outbox, the later ones wait there too, due no
        sooner: going now, they would overtake them."""
        held = self._held_now(chat_id)
        if held is not None:
            return max((held.until - self.coach.clock()).total_seconds(), 0.0)
        pacer = self.pacer
        if pacer is None:
            return None
        ahead = pacer.waiting(chat_id)
        if self.durable and outbox and ahead >= pacer.burst:
            return (ahead + 1) * pacer.interval
        await pacer.take(chat_id)
        return None

    def _hold(self, chat_id: int, ids: list[int], until: datetime) -> None:
        """These replies of the chat wait in the outbox: hold its later ones behind them."""
        if not ids:
            return
        if len(self._held) >= HELD_KEPT:
            for chat in [c for c in self._held if self._stale(self._held[c])]:
                self._drop(chat)
        held = self._held.get(chat_id)
        if held is None:
            held = self._held[chat_id] = _Held(set(), until)
        held.rows.update(ids)
        held.until = max(held.until, until)
        self._held_chat.update((reply_id, chat_id) for reply_id in ids)

    def _held_now(self, chat_id: int) -> _Held | None:
        held = self._held.get(chat_id)
        if held is not None and self._stale(held):
            self._drop(chat_id)
            return None
        return held

    def _stale(self, held: _Held) -> bool:
        """Past their deadline, the held replies are never sent: nothing left to wait behind
        (their rows gone another way, deleted with the user's data, cancelled when blocked)."""
        return self.coach.clock() >= held.until + REPLY_DEADLINE

    def _drop(self, chat_id: int) -> None:
        held = self._held.pop(chat_id, None)
        if held is not None:
            for reply_id in held.rows:
                # SQLite gives a deleted row's id to the next one: it may be another chat's now.
                if self._held_chat.get(reply_id) == chat_id:
                    del self._held_chat[reply_id]

    def reply_done(self, reply_id: int) -> None:
        """The dispatcher is done with a reply in the outbox (sent, or given up): once all of
        its chat's held replies are, the chat's replies go at once again."""
        chat_id = self._held_chat.pop(reply_id, None)
        held = self._held.get(chat_id) if chat_id is not None else None
        if chat_id is not None and held is not None:
            held.rows.discard(reply_id)
            if not held.rows:
                del self._held[chat_id]

    def _flooded(self, exc: SendError) -> bool:
        """A flood wait (429) tells the runtime too: the nudges being sent pause with it."""
        if not isinstance(exc, RetryLater):
            return False
        if self.on_flood is not None:
            self.on_flood(exc.seconds)
        return True


def load_commands(*, recruiter: bool = False) -> list[BotCommand]:
    """The command menu; recruiters see their own commands after everyone's."""
    with (PROMPTS_DIR / "commands.toml").open("rb") as fh:
        menus: dict[str, dict[str, str]] = tomllib.load(fh)
    commands = dict(menus["commands"])
    if recruiter:
        commands.update(menus["recruiter_commands"])
    return [BotCommand(name, description) for name, description in commands.items()]


def file_url(base_url: str) -> str:
    """Where files are fetched: the Bot API's ".../bot" becomes ".../file/bot". The last
    "/bot", as a host may begin with "bot" too (http://botapi:8081/bot)."""
    head, found, tail = base_url.rpartition("/bot")
    return f"{head}/file/bot{tail}" if found else base_url


# As many as updates handled at once (the inbox worker's 64): against Telegram a call takes
# 50-300 ms, and 16 connections would cap the bot near 80 calls a second. aiohttp hands out a
# pooled connection in constant time, so idle ones cost nothing per request.
HTTP_CONNECTIONS = 64
HTTP_POOL_TIMEOUT = 10.0  # seconds a request may wait for a free connection


def build_application(
    coach: Coach, token: str, base_url: str
) -> tuple[Application[Any, Any, Any, Any, Any, Any], TelegramFrontEnd]:
    """PTB's Application, without its rate limiter: a reply to something the user just did
    goes at once within its chat's budget (Telegram allows about one a second per chat, with
    short bursts; the runtime hands the front end the dispatcher's ChatPacer, so replies and
    nudges share it); the overall budget paces reminders and digests in the dispatcher,
    leaving room for replies, and a reply refused with 429 is queued for the dispatcher,
    which waits retry_after (and pauses the nudges it is sending)."""
    calls = AiohttpRequest(HTTP_CONNECTIONS, pool_timeout=HTTP_POOL_TIMEOUT)
    polling = AiohttpRequest(1, pool_timeout=HTTP_POOL_TIMEOUT)
    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .base_file_url(file_url(base_url))
        # aiohttp rather than PTB's httpx: a sixth of the CPU per call (bot/telegram/http.py).
        # A request waits for a free connection up to HTTP_POOL_TIMEOUT; long polling holds
        # a connection of its own.
        .request(calls)
        .get_updates_request(polling)
        # No concurrent_updates: the inbox worker hands each update to process_update itself,
        # different users' in parallel (the Coach serialises each user's), so PTB's update
        # processor, which that setting configures, is never used.
        # Nudges live in SQLite (bot/nudges); PTB's in-memory JobQueue would lose them.
        .job_queue(None)
        .build()
    )
    front = TelegramFrontEnd(coach, application, (calls, polling))
    # Private chats only (groups and channels are ignored), and new messages only: an edited
    # "/stop" must not run again.
    private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    application.add_handler(MessageHandler(private & filters.COMMAND, front.on_command))
    application.add_handler(CallbackQueryHandler(front.on_callback))
    application.add_handler(MessageHandler(private & filters.TEXT, front.on_text))
    application.add_handler(MessageHandler(private & ~filters.TEXT, front.on_other))
    application.add_error_handler(_on_error)
    return application, front


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    # Handlers catch their own errors; this logs what escapes PTB itself (network, polling).
    log.error(
        "event=update_error update_id=%s error=%r",
        getattr(update, "update_id", None),
        context.error,
    )


async def set_commands(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Optional at start-up: if Telegram refuses, log it and serve anyway."""
    try:
        await application.bot.set_my_commands(load_commands())
    except TelegramError as exc:
        log.warning("event=commands_not_set error=%s", exc)
