"""Updates in, durably: stored in the inbox before Telegram is told they arrived, then handled
from there, one at a time per user and exactly once.

- Polling: getUpdates with the offset after the last *stored* update, so an update is only
  acknowledged once it is on disk (PTB's own Updater acknowledges a batch before handling it).
- Webhook: the secret header is checked before the body is read, the body is capped, and the
  update is stored before the 200 goes back.
- The worker hands stored updates to PTB's Application one by one (different users in
  parallel); an update the library cannot parse is skipped and logged once, without its text.
  Stored updates are handed to it in memory; it reads the inbox itself at start, when it fell
  behind, and now and then as a safety net (a database hop per update saved).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import warnings
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import tornado.httpserver
import tornado.web
from telegram import Update
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError
from telegram.warnings import PTBUserWarning

from bot.service import Clock
from bot.storage.db import DatabaseUnavailable
from bot.storage.store import Store

log = logging.getLogger(__name__)
# We ask for getUpdates' raw JSON on purpose (Bot.get_updates parses it, and an update the
# library cannot parse would be fetched again forever): PTB's advice does not apply.
warnings.filterwarnings("ignore", message="Please use 'Bot.getUpdates'", category=PTBUserWarning)

MAX_BODY = 1024 * 1024  # Telegram's updates are a few KB; anything this big is not from it
MAX_BACKOFF_SECONDS = 60.0
BATCH = 100
RESCAN_EVERY_SECONDS = 60.0  # the inbox is read again now and then, in case one was missed
REMEMBER_FINISHED = 4096  # ids handled lately, so a stale read never hands one over twice
KEEP_HANDLED = timedelta(days=1)
PRUNE_EVERY_SECONDS = 3600.0
IDLE_WAKE_SECONDS = 5.0  # an idle worker looks at the clock this often (rescan, prune)
IDLE_CONNECTION_SECONDS = 60.0  # a connection that sends nothing is closed after this
MAX_UPDATE_ID = 2**63 - 1  # what SQLite's INTEGER holds; Telegram's ids are far below


def valid_update_id(value: object) -> int | None:
    """An update id as Telegram sends them (a JSON integer, 0 or more, that SQLite can
    store), or None: not a float (1e400), a boolean (true), negative, or beyond 2^63."""
    if type(value) is int and 0 <= value <= MAX_UPDATE_ID:
        return value
    return None


class Poller:
    """Long polling that stores each batch before asking for the next (which acknowledges it)."""

    def __init__(
        self,
        bot: Any,
        store: Store,
        clock: Clock,
        deliver: Callable[[Sequence[tuple[int, str]]], None],
        *,
        timeout: int = 10,
    ) -> None:
        self.bot = bot
        self.store = store
        self.clock = clock
        self.deliver = deliver  # the stored batch goes on to the worker in memory
        self.timeout = timeout
        self.failures = 0  # in a row: for the backoff and the health check

    async def run(self, stop: asyncio.Event) -> None:
        offset = await self.store.next_offset()
        while not stop.is_set():
            self._still_there()  # the next getUpdates acknowledges what was stored
            try:
                raw = await self.bot.do_api_request(
                    "getUpdates",
                    api_kwargs={
                        "offset": offset,
                        "timeout": self.timeout,
                        "allowed_updates": list(Update.ALL_TYPES),
                    },
                    read_timeout=self.timeout + 10,
                )
            except (InvalidToken, Conflict):
                raise  # not a passing fault: the token, or another getUpdates/webhook
            except RetryAfter as exc:
                await self._back_off(stop, exc, seconds_of(exc.retry_after))
                continue
            except TelegramError as exc:
                await self._back_off(stop, exc, None)
                continue
            if self.failures:
                log.info("event=bot_api_back failures=%d", self.failures)
                self.failures = 0
            updates = [
                (update_id, json.dumps(u, separators=(",", ":")))
                for u in raw or []
                if isinstance(u, dict)
                and (update_id := valid_update_id(u.get("update_id"))) is not None
            ]
            if updates:
                await self.store.receive(updates, self.clock())
                self._still_there()  # stored where it will be found: else never handed over
                offset = max(update_id for update_id, _ in updates) + 1
                self.deliver(updates)

    def _still_there(self) -> None:
        """DatabaseUnavailable if the file was deleted or replaced: updates stored now
        would be lost at exit, so none may be acknowledged (Telegram keeps them)."""
        lost = self.store.db.lost()
        if lost is not None:
            raise DatabaseUnavailable(self.store.db.path, lost)

    async def _back_off(self, stop: asyncio.Event, exc: Exception, seconds: float | None) -> None:
        self.failures += 1
        delay = seconds if seconds is not None else backoff(self.failures)
        # One line per step, not a traceback a second.
        log.warning(
            "event=bot_api_unreachable failures=%d retry_in=%.0fs error=%s",
            self.failures,
            delay,
            type(exc).__name__,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


async def first_of(one: asyncio.Event, other: asyncio.Event, timeout: float | None = None) -> None:
    """Wait until either event is set, or the timeout (if any) passes."""
    waits = [asyncio.ensure_future(one.wait()), asyncio.ensure_future(other.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


def backoff(failures: int) -> float:
    """Seconds to wait after this many failures in a row: doubling, up to a minute."""
    return min(2.0**failures, MAX_BACKOFF_SECONDS)


def seconds_of(value: Any) -> float:
    """retry_after as seconds, whether PTB gives it as a timedelta or a number."""
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)


class InboxWorker:
    """Hands stored updates to PTB, oldest first; marks each handled when its handler ends
    (the conversation marks it itself, in the transaction of the state it led to)."""

    def __init__(
        self,
        application: Any,
        store: Store,
        clock: Clock,
        *,
        concurrency: int = 64,
        on_update: Callable[[Update, float], None] | None = None,
        on_fault: Callable[[str], None] | None = None,
    ) -> None:
        self.app = application
        self.store = store
        self.clock = clock
        self.on_update = on_update
        self.on_fault = on_fault  # "unparseable", "update": for the errors metric
        self._wake = asyncio.Event()
        self.concurrency = concurrency  # updates handled at once
        self._slots = asyncio.Semaphore(concurrency)
        self._offered: deque[tuple[int, str]] = deque()
        self._rescan = True  # read the inbox: at start, and when offers were dropped
        self._next_rescan = 0.0
        self._read_after = -1  # where the next inbox read starts (paging through a backlog)
        # The updates being handled, by id: the tasks are kept here (asyncio holds only weak
        # references) and leave when their handling ends.
        self._running: dict[int, asyncio.Task[None]] = {}
        self._finished: OrderedDict[int, None] = OrderedDict()
        self._next_prune = 0.0
        self.alive = False

    @property
    def in_flight(self) -> int:
        """Updates being handled now (for /metrics)."""
        return len(self._running)

    def offer(self, updates: Sequence[tuple[int, str]]) -> None:
        """Updates just stored, handed over without reading them back. Past a batch's worth
        waiting, they are left in the inbox to be read when the worker catches up."""
        if len(self._offered) + len(updates) > BATCH:
            self._rescan = True
        else:
            self._offered.extend(updates)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        self.alive = True
        try:
            while not stop.is_set():
                self._wake.clear()
                started = False
                for update_id, payload in await self._next_batch():
                    # An id may come twice (offered, and read back from the inbox), or be
                    # handled by the time we reach it (we wait for slots): handed over once.
                    if update_id in self._running or update_id in self._finished:
                        continue
                    await self._slots.acquire()
                    self._running[update_id] = asyncio.create_task(self._handle(update_id, payload))
                    started = True
                if started:
                    continue  # more may have come meanwhile
                if time.monotonic() >= self._next_prune:
                    await self.prune()
                await first_of(self._wake, stop, IDLE_WAKE_SECONDS)
        finally:
            self.alive = False

    async def _next_batch(self) -> list[tuple[int, str]]:
        found = list(self._offered)
        self._offered.clear()
        if self._rescan or time.monotonic() >= self._next_rescan:
            self._rescan = False
            self._next_rescan = time.monotonic() + RESCAN_EVERY_SECONDS
            stored = await self.store.unhandled(BATCH, self._read_after)
            if len(stored) == BATCH:
                # A full page: more wait behind it, read on from its end next round (the
                # page's own updates may all still be in flight). An offer dropped during
                # the read has set _rescan already: it is not cleared here.
                self._rescan = True
                self._read_after = stored[-1][0]
            else:
                self._read_after = -1  # the next read starts from the oldest again
            found = sorted(dict(stored + found).items())
        return found

    async def prune(self) -> int:
        """Forget handled updates older than a day (Telegram redelivers within hours): the
        inbox keeps only their ids, but months of ids would still grow without bound."""
        self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
        return await self.store.forget_handled(self.clock() - KEEP_HANDLED)

    async def drain(self) -> None:
        """Let the updates in flight finish (a clean stop)."""
        if self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _handle(self, update_id: int, payload: str) -> None:
        started = time.perf_counter()
        try:
            try:
                update = Update.de_json(json.loads(payload), self.app.bot)
            except Exception as exc:
                # Logged once, without the update's content (it may hold names and texts).
                log.error(
                    "event=update_unparseable update_id=%d error=%s",
                    update_id,
                    exc.__class__.__name__,
                )
                self._fault("unparseable")
                await self.store.mark_handled(update_id, self.clock(), "unparseable")
                return
            try:
                await self.app.process_update(update)
            finally:
                # The conversation marks its update in its own commit; the rest (recruiters'
                # commands, ignored updates, failures) are marked here.
                if not self.store.handled_here(update_id):
                    await self.store.mark_handled(update_id, self.clock())
                if self.on_update is not None:
                    self.on_update(update, time.perf_counter() - started)
        except Exception:
            log.exception("event=update_failed update_id=%d", update_id)
            self._fault("update")
        finally:
            self._finished[update_id] = None
            if len(self._finished) > REMEMBER_FINISHED:
                self._finished.popitem(last=False)
            self._running.pop(update_id, None)
            self._slots.release()
            if self._rescan:
                self._wake.set()  # more wait in the inbox: read them now a slot is free

    def _fault(self, where: str) -> None:
        if self.on_fault is not None:
            self.on_fault(where)


@tornado.web.stream_request_body
class _WebhookHandler(tornado.web.RequestHandler):
    """Telegram's POSTs: the secret is checked as soon as the headers are in (prepare runs
    before any of the body is read, as the body is streamed), the body is capped, and the
    update is stored before the 200 goes back."""

    def initialize(self, secret: str, accept: Callable[[int, str], Awaitable[None]]) -> None:
        self.secret = secret
        self.accept = accept
        self.body = bytearray()

    def prepare(self) -> None:
        given = self.request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            raise tornado.web.HTTPError(403)
        size = self.request.headers.get("Content-Length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY):
            raise tornado.web.HTTPError(413)

    def data_received(self, chunk: bytes) -> None:
        # A body without a Content-Length (chunked) is capped by the server's max_body_size.
        if self._finished:
            return  # refused already: the rest is read and dropped, never kept
        self.body.extend(chunk)

    async def post(self) -> None:
        try:
            data = json.loads(bytes(self.body))
        except (ValueError, RecursionError):  # not JSON, not UTF-8, nested beyond reason
            raise tornado.web.HTTPError(400, "json") from None
        update_id = valid_update_id(data.get("update_id")) if isinstance(data, dict) else None
        if update_id is None:
            raise tornado.web.HTTPError(400, "update_id")
        await self.accept(update_id, json.dumps(data, separators=(",", ":")))
        self.finish()

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # A forged or malformed post is not our error: one short line, no body, no secret.
        if isinstance(value, tornado.web.HTTPError):
            reason = f" reason={value.log_message}" if value.log_message else ""
            log.warning("event=webhook_refused status=%d%s", value.status_code, reason)
        else:
            super().log_exception(typ, value, tb)


class _HealthHandler(tornado.web.RequestHandler):
    def initialize(self, check: Callable[[], Awaitable[tuple[bool, str]]]) -> None:
        self.check = check

    async def get(self) -> None:
        ok, detail = await self.check()
        self.set_status(200 if ok else 503)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(detail + "\n")


class _MetricsHandler(tornado.web.RequestHandler):
    def initialize(self, exposition: Callable[[], Awaitable[tuple[bytes, str]]]) -> None:
        self.exposition = exposition

    async def get(self) -> None:
        body, content_type = await self.exposition()
        self.set_header("Content-Type", content_type)
        self.finish(body)


def web_server(
    *,
    webhook: tuple[str, str, Callable[[int, str], Awaitable[None]]] | None,
    health: Callable[[], Awaitable[tuple[bool, str]]],
    metrics: Callable[[], Awaitable[tuple[bytes, str]]],
) -> tornado.httpserver.HTTPServer:
    """/healthz and /metrics, and the webhook at its path when there is one. Bodies over
    MAX_BODY are refused by their Content-Length before a byte is read."""
    routes: list[Any] = [
        (r"/healthz", _HealthHandler, {"check": health}),
        (r"/metrics", _MetricsHandler, {"exposition": metrics}),
    ]
    if webhook is not None:
        path, secret, accept = webhook
        routes.append((path, _WebhookHandler, {"secret": secret, "accept": accept}))
    app = tornado.web.Application(routes, log_function=lambda handler: None)
    return tornado.httpserver.HTTPServer(
        app, max_body_size=MAX_BODY, idle_connection_timeout=IDLE_CONNECTION_SECONDS
    )
