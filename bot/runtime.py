"""Wiring: database, coach, Telegram application and nudge dispatcher, started and stopped
together. Tests use the same object as `python -m bot run`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

from telegram import Update
from telegram.error import (
    BadRequest,
    Conflict,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application
from tornado.httpserver import HTTPServer
from tornado.web import HTTPError

from bot import logs
from bot.config import Settings
from bot.engine import when
from bot.engine.planner import QuietHours
from bot.knowledge.base import KnowledgeBase, load_default
from bot.knowledge.classifier import ObjectionClassifier
from bot.metrics import Metrics
from bot.nudges.dispatcher import Dispatcher, DispatchStats, owner_is_dead
from bot.recruiters import repo as recruiters
from bot.recruiters.desk import RecruiterDesk
from bot.recruiters.follower import RecruiterFollower
from bot.render import Renderer, default_renderer
from bot.service import Clock, Coach, utc_now
from bot.storage.backup import daily
from bot.storage.db import Database, DatabaseUnavailable
from bot.storage.store import Conn, Store
from bot.telegram import intake
from bot.telegram.app import TelegramFrontEnd, build_application, set_commands
from bot.telegram.intake import InboxWorker, Poller, web_server
from bot.telegram.sender import TelegramSender

log = logging.getLogger(__name__)

POLLER_LOCK = "poller"
POLLER_LEASE = timedelta(seconds=60)  # a dead poller's lock frees itself after this
POLLER_RENEW_SECONDS = 20.0
FIRST_RESTART_SECONDS = 1.0  # a component that died is restarted after this, then longer
WATCH_SECONDS = 5.0  # the database file is looked for this often (and before every ack)


class AlreadyRunning(Exception):
    """Another process polls Telegram for this database: two would split the updates."""

    def __init__(self, holder: str) -> None:
        super().__init__(
            f"another copy of the bot is already polling with this database ({holder}); "
            "stop it first"
        )
        self.holder = holder


class CannotListen(Exception):
    """The web server's address cannot be bound: one clear line, exit 1."""

    def __init__(self, host: str, port: int, names: str, exc: OSError) -> None:
        reason = exc.strerror or str(exc) or type(exc).__name__
        super().__init__(f"cannot listen on {host}:{port} ({names}_LISTEN, {names}_PORT): {reason}")


async def open_coach(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    kb: KnowledgeBase | None = None,
    classifier: ObjectionClassifier | None = None,
    renderer: Renderer | None = None,
) -> Coach:
    db = await Database.open(settings.database_path)
    kb = kb or load_default()
    if classifier is None:
        # Fitted once per content change and kept beside the database: no scikit-learn, no
        # training on a normal start.
        classifier = await asyncio.to_thread(
            ObjectionClassifier.cached, Path(settings.database_path).parent
        )
    coach = Coach(
        Store(db),
        kb,
        classifier,
        renderer or default_renderer(),
        default_timezone=settings.default_timezone,
        quiet=QuietHours(settings.quiet_hours_start, settings.quiet_hours_end),
        clock=clock,
    )
    coach.follower = RecruiterFollower(
        db,
        default_timezone=settings.default_timezone,
        worry_labels=worry_labels(kb),
        clock=clock,
    )
    return coach


def worry_labels(kb: KnowledgeBase) -> dict[str, str]:
    """Worries as recruiters read them: the candidates' menu labels."""
    return {o.id: o.label for o in kb.objections.values()}


class BotRuntime:
    def __init__(self, settings: Settings, coach: Coach, *, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.coach = coach
        token = settings.require_token()
        self.app: Application[Any, Any, Any, Any, Any, Any]
        self.front: TelegramFrontEnd
        self.app, self.front = build_application(
            coach,
            token,
            settings.telegram_api_base_url,
        )
        follower = coach.follower
        assert isinstance(follower, RecruiterFollower)
        self.follower = follower
        self.dispatcher = Dispatcher(
            coach.store,
            TelegramSender(self.app.bot),
            coach.renderer,
            coach.decide_nudge,
            clock,
            rate_per_second=settings.max_messages_per_second,
            per_chat_interval=settings.per_chat_interval_seconds,
            on_sent=follower.after_sent,
        )
        coach.on_schedule = self.dispatcher.wake
        # One per-chat budget for replies and nudges; a flood wait met by a reply pauses the
        # nudges being sent (the overall rate stays theirs alone).
        self.front.pacer = self.dispatcher.pacer
        self.front.on_flood = self.dispatcher.reply_flooded
        # Replies the front end left in the outbox hold its chat's later ones behind them.
        self.dispatcher.on_reply_done = self.front.reply_done
        self.desk = RecruiterDesk(
            coach.store.db,
            coach.renderer,
            follower,
            admin_ids=settings.admin_ids,
            clock=clock,
            bot_username=lambda: self.app.bot.username,
            worry_labels=worry_labels(coach.kb),
        )
        self.desk.on_queue = self.dispatcher.wake
        self.desk.menus = self.front.set_menu
        self.front.desk = self.desk
        self._clock = clock
        self.metrics = Metrics()
        self._reported = DispatchStats()
        self.worker = InboxWorker(
            self.app, coach.store, clock, on_update=self._count, on_fault=self._fault
        )
        self.front.on_fault = self._fault
        self.dispatcher.on_fault = self._fault
        self.front.durable = True
        self.poller: Poller | None = None
        self.server: HTTPServer | None = None
        self.webhook_secret: str | None = None
        self._stop = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}  # components, for the health check
        self._restarting: set[str] = set()  # died, waiting to be started again
        self._warming: asyncio.Task[None] | None = None
        self._holds_lock = False
        self.failed: str | None = None  # a component stopped for good (token, conflict)
        self._serving = False  # start() went through
        self.start_failures = 0  # Bot API calls at start that failed in a row
        # A fault the bot must not serve through (its database file gone): `serve` stops
        # and raises it.
        self.fatal: DatabaseUnavailable | None = None
        self.halted = asyncio.Event()

    async def start(self, *, webhook: bool | None = None, poll_timeout: int = 10) -> None:
        use_webhook = self.settings.webhook_url is not None if webhook is None else webhook
        store = self.coach.store
        db = store.db
        # Every start-up write waits out another writer's lock (one line per wait) and ends
        # in one clear line if it stays locked or the file cannot be written. A write tried
        # first, before anything depends on it.
        await db.at_start(db.probe)
        if not use_webhook:
            # One poller per database: a second copy would take half the updates and race the
            # first on every user's state.
            owner = self.dispatcher.owner
            holder = await db.at_start(
                lambda: store.acquire_lock(POLLER_LOCK, owner, self._clock(), POLLER_LEASE)
            )
            if holder is not None and owner_is_dead(holder):
                # Killed (kill -9, a power cut) before it could let go: no need to wait.
                log.warning('event=stale_lock holder=%s reason="its process is gone"', holder)
                dead = holder
                holder = await db.at_start(
                    lambda: store.acquire_lock(
                        POLLER_LOCK, owner, self._clock(), POLLER_LEASE, dead=dead
                    )
                )
            if holder is not None:
                raise AlreadyRunning(holder)
            self._holds_lock = True
        # Before Telegram is asked anything: a port in use or an address not of this machine
        # is one clear line at once, and /healthz answers (503, starting) while it waits.
        self._listen(use_webhook)
        await self._reach("getMe", self.app.initialize)
        await set_commands(self.app)
        await self._sync_recruiters()
        self.coach.owner = self.dispatcher.owner
        self._supervise("dispatcher", self.dispatcher.run)
        self._supervise("inbox", lambda: self.worker.run(self._stop))
        if self.settings.backup_dir is not None:
            folder, keep = self.settings.backup_dir, self.settings.backup_keep
            at, db = self.settings.backup_at, store.db
            self._supervise("backup", lambda: daily(db, folder, keep, at, self._stop))
        if use_webhook:
            url = self.settings.webhook_url
            assert url is not None and self.webhook_secret is not None
            secret_token = self.webhook_secret
            await self._reach(
                "setWebhook",
                lambda: self.app.bot.set_webhook(
                    url, secret_token=secret_token, allowed_updates=list(Update.ALL_TYPES)
                ),
            )
        else:
            await self._reach("deleteWebhook", self.app.bot.delete_webhook)
            self.poller = Poller(
                self.app.bot, store, self._clock, self.worker.offer, timeout=poll_timeout
            )
            poller = self.poller
            self._supervise("poller", lambda: poller.run(self._stop))
            self._tasks["lock"] = asyncio.create_task(self._keep_lock(), name="poller-lock")
        self._tasks["watch"] = asyncio.create_task(self._watch_database(), name="database-watch")
        self._serving = True
        log.info("event=serving mode=%s", "webhook" if use_webhook else "polling")
        self._warming = asyncio.create_task(self._warm_up(), name="warm-up")

    def _listen(self, use_webhook: bool) -> None:
        """The webhook with /healthz and /metrics on WEBHOOK_LISTEN:WEBHOOK_PORT, or in
        polling mode those two on METRICS_LISTEN:METRICS_PORT when set. CannotListen if the
        address cannot be bound."""
        settings = self.settings
        webhook = None
        if use_webhook:
            url = settings.webhook_url
            assert url is not None
            secret = settings.webhook_secret
            # No secret set: make one, so a forged post can never get in.
            self.webhook_secret = secret.get_secret_value() if secret else token_urlsafe(32)
            logs.add_secret(self.webhook_secret)
            webhook = ("/" + url.rsplit("/", 1)[-1], self.webhook_secret, self._accept)
            host, port, names = settings.webhook_listen, settings.webhook_port, "WEBHOOK"
        elif settings.metrics_port is not None:
            host, port, names = settings.metrics_listen, settings.metrics_port, "METRICS"
        else:
            return
        server = web_server(webhook=webhook, health=self.health, metrics=self.exposition)
        try:
            server.listen(port, host)
        except OSError as exc:  # in use, not an address of this machine, not a name at all
            raise CannotListen(host, port, names, exc) from None
        self.server = server

    async def _reach(self, method: str, call: Callable[[], Awaitable[object]]) -> None:
        """A Bot API call start-up cannot do without, tried until Telegram answers, as the
        poller does at run time: the same back-off, one line per step, flood waits as long
        as asked. A rejected token or a refused request is raised at once; a stop asked
        meanwhile cancels the wait (see `serve`)."""
        error: TelegramError
        while True:
            try:
                await call()
            except RetryAfter as exc:
                error, delay = exc, intake.seconds_of(exc.retry_after)
            except (InvalidToken, BadRequest):
                raise  # not passing: the token, or a setting Telegram refuses
            except NetworkError as exc:  # unreachable, 5xx, timed out
                error, delay = exc, intake.backoff(self.start_failures + 1)
            else:
                if self.start_failures:
                    log.info("event=bot_api_back failures=%d", self.start_failures)
                self.start_failures = 0
                return
            self.start_failures += 1
            log.warning(
                "event=bot_api_unreachable during=start method=%s failures=%d retry_in=%.0fs"
                " error=%s",
                method,
                self.start_failures,
                delay,
                type(error).__name__,
            )
            await asyncio.sleep(delay)

    async def _warm_up(self) -> None:
        # On a thread, beside the first updates: slower by a little rather than one of them
        # waiting for it all.
        try:
            await asyncio.to_thread(when.warm_up, self._clock())
        except Exception as exc:  # only ever a cost moved to the first parse
            log.warning("event=warm_up_failed error=%r", exc)

    def _supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run a component for the life of the runtime; if it dies, say so and restart it."""

        async def supervised() -> None:
            pause = FIRST_RESTART_SECONDS
            while not self._stop.is_set():
                self._restarting.discard(name)
                try:
                    await run()
                    return
                except asyncio.CancelledError:
                    raise
                except (InvalidToken, Conflict) as exc:
                    log.critical("event=stopped component=%s error=%s", name, exc)
                    self.failed = f"{name}: {exc}"
                    return
                except DatabaseUnavailable as exc:  # the poller found the file gone
                    self._halt(exc.reason)
                    return
                except Exception:
                    self._restarting.add(name)  # down until it runs again: the health check
                    self._fault(name)
                    log.exception("event=component_died component=%s restart_in=%.0fs", name, pause)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), pause)
                pause = min(pause * 2, 60.0)

        self._tasks[name] = asyncio.create_task(supervised(), name=name)

    async def _accept(self, update_id: int, payload: str) -> None:
        update = (update_id, payload)
        new = await self.coach.store.receive([update], self._clock())
        lost = self.coach.store.db.lost()
        if lost is not None:
            # Stored where nothing will find it: no 200, so Telegram sends it again later.
            self._halt(lost)
            raise HTTPError(503)
        if new:
            self.worker.offer([update])

    async def _watch_database(self) -> None:
        """Between updates too: a file deleted while nothing comes in stops the bot."""
        while not self._stop.is_set():
            lost = self.coach.store.db.lost()
            if lost is not None:
                self._halt(lost)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), WATCH_SECONDS)

    def _halt(self, reason: str) -> None:
        """The database file is gone or replaced: whatever is written now is lost at exit.
        Stop acknowledging updates at once (Telegram keeps them for the next start) and let
        `serve` stop the bot with one clear line."""
        if self.fatal is not None:
            return
        db = self.coach.store.db
        self.fatal = DatabaseUnavailable(db.path, reason)
        log.error(
            'event=database_lost path=%s reason=%s action="no more updates acknowledged; stopping"',
            logs.quoted(db.path),
            logs.quoted(reason),
        )
        poll = self._tasks.get("poller")
        if poll is not None and poll is not asyncio.current_task():
            poll.cancel()  # its next getUpdates would acknowledge what it stored
        self.halted.set()

    def _fault(self, where: str) -> None:
        """A fault caught where it happened (a component, a handler, an update, a round)."""
        self.metrics.errors.labels(where).inc()

    def _count(self, update: Update, seconds: float) -> None:
        kind = next(
            (k for k in ("callback_query", "message", "edited_message") if getattr(update, k)),
            "other",
        )
        self.metrics.updates.labels(kind).inc()
        self.metrics.latency.observe(seconds)
        if log.isEnabledFor(logging.DEBUG):  # a line per update: DEBUG, not at load
            user = update.effective_user
            log.debug(
                "event=update update_id=%d kind=%s user=%s ms=%.1f",
                update.update_id,
                kind,
                logs.user_ref(user.id) if user else "-",
                seconds * 1000,
            )

    def alive(self) -> dict[str, bool]:
        return {
            name: not task.done() and name not in self._restarting
            for name, task in self._tasks.items()
            if name not in ("lock", "watch")
        }

    async def health(self) -> tuple[bool, str]:
        """Healthy: the database answers and every component runs."""
        lines = []
        db = self.coach.store.db
        try:
            await asyncio.wait_for(db.ping(), 5.0)
            problem = db.usable()
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        ok = problem is None and self._serving
        if not self._serving:
            tries = f": bot api unreachable, {self.start_failures} tries"
            lines.append(f"starting{tries if self.start_failures else ''}")
        lines.append(f"database: {problem or 'ok'}")
        for name, up in self.alive().items():
            ok &= up
            waiting = name in self._restarting and not self._tasks[name].done()
            lines.append(f"{name}: {'running' if up else 'restarting' if waiting else 'stopped'}")
        if self.poller is not None and self.poller.failures:
            lines.append(f"bot api: unreachable, {self.poller.failures} tries")
        if self.failed:
            ok = False
            lines.append(f"stopped: {self.failed}")
        return ok, "\n".join(lines)

    async def exposition(self) -> tuple[bytes, str]:
        totals = self.dispatcher.totals
        for outcome in ("sent", "failed", "expired", "retried", "deferred", "cancelled"):
            # Counters only go up: add what the dispatcher did since the last scrape.
            delta = getattr(totals, outcome) - getattr(self._reported, outcome)
            self.metrics.nudges.labels(outcome).inc(delta)
            setattr(self._reported, outcome, getattr(totals, outcome))
        try:
            queues = await self.coach.store.queue_depths()
        except Exception:
            queues = {}
        queues["updates_handling"] = self.worker.in_flight
        return self.metrics.exposition(queues, self.alive())

    async def _keep_lock(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), POLLER_RENEW_SECONDS)
            if self._stop.is_set():
                return
            try:
                holder = await self.coach.store.acquire_lock(
                    POLLER_LOCK, self.dispatcher.owner, self._clock(), POLLER_LEASE
                )
            except Exception:
                log.exception("event=lock_renewal_failed action=retry")
                continue
            if holder is not None:
                log.critical("event=lock_lost holder=%s action=stop_polling", holder)
                poll = self._tasks.get("poller")
                if poll is not None:
                    poll.cancel()
                return

    async def _sync_recruiters(self) -> None:
        """Recruiters approved or removed from the shell while the bot was down: their menus,
        and a weekly digest queued for each one who wants it."""
        db = self.coach.store.db
        everyone = await db.at_start(lambda: db.run(recruiters.list_recruiters))
        approved = {r.user_id for r in everyone if r.status == "approved"}
        now = self._clock()

        def plan(conn: Conn) -> None:
            for user_id in approved:
                self.follower.schedule_digest(conn, user_id, now)

        await db.at_start(lambda: db.atomic(plan))
        for user_id in sorted(approved | set(self.settings.admin_ids)):
            await self.front.set_menu(user_id, True)
        for r in everyone:
            if r.user_id not in approved and r.user_id not in self.settings.admin_ids:
                await self.front.set_menu(r.user_id, False)

    async def stop(self) -> None:
        """Stop taking updates, finish those in flight, stop the dispatcher after its current
        send, close the database."""
        self._stop.set()
        poll = self._tasks.pop("poller", None)
        if poll is not None:
            poll.cancel()  # it may be inside a long poll: nothing is lost, all is stored
            with contextlib.suppress(asyncio.CancelledError):
                await poll
        if self.server is not None:
            self.server.stop()
        await self.worker.drain()
        await self.dispatcher.stop()
        tasks = [*self._tasks.values(), *([self._warming] if self._warming else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.server is not None:
            await self.server.close_all_connections()
        await self.app.shutdown()
        await self.front.close()
        if self._holds_lock:
            with contextlib.suppress(Exception):
                await self.coach.store.release_lock(POLLER_LOCK, self.dispatcher.owner)
        await self.coach.store.db.close()
        log.info("event=stopped")


async def serve(settings: Settings, stop: asyncio.Event, *, webhook: bool | None = None) -> None:
    """`python -m bot run`: start, serve until `stop` is set, stop cleanly. A stop asked
    during start-up (the Bot API or the database still awaited) ends it just as cleanly. A
    fault the bot must not serve through (its database file gone) stops it too, and is
    raised afterwards (one line and exit 1)."""
    settings.require_token()  # fail before opening anything
    coach = await open_coach(settings)
    runtime = BotRuntime(settings, coach)
    try:
        if await _unless(stop, runtime.start(webhook=webhook)):
            await intake.first_of(stop, runtime.halted)
    finally:
        await runtime.stop()
    if runtime.fatal is not None:
        raise runtime.fatal


async def _unless(stop: asyncio.Event, work: Awaitable[None]) -> bool:
    """Run `work` unless `stop` comes first (then cancel it): True if it ran to its end."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if task.done():
        task.result()  # its error, if any
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False
