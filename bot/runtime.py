"""Wiring: database, coach, Telegram application and nudge dispatcher, started and stopped
together. Tests use the same object as `python -m bot run`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from telegram import Update
from telegram.ext import Application

from bot.config import Settings
from bot.engine.planner import QuietHours
from bot.knowledge.base import KnowledgeBase, load_default
from bot.knowledge.classifier import ObjectionClassifier, default_classifier
from bot.nudges.dispatcher import Dispatcher
from bot.recruiters import repo as recruiters
from bot.recruiters.desk import RecruiterDesk
from bot.recruiters.follower import RecruiterFollower
from bot.render import Renderer, default_renderer
from bot.service import Clock, Coach, utc_now
from bot.storage.db import Database
from bot.storage.store import Store
from bot.telegram.app import TelegramFrontEnd, build_application, set_commands
from bot.telegram.sender import TelegramSender

log = logging.getLogger(__name__)

POLLER_LOCK = "poller"
POLLER_LEASE = timedelta(seconds=60)  # a dead poller's lock frees itself after this
POLLER_RENEW_SECONDS = 20.0


class AlreadyRunning(Exception):
    """Another process polls Telegram for this database: two would split the updates."""

    def __init__(self, holder: str) -> None:
        super().__init__(
            f"another copy of the bot is already polling with this database ({holder}); "
            "stop it first"
        )
        self.holder = holder


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
    coach = Coach(
        Store(db),
        kb,
        classifier or default_classifier(),
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
            overall_rate=settings.max_messages_per_second,
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
        self._dispatch_task: asyncio.Task[None] | None = None
        self._lock_task: asyncio.Task[None] | None = None
        self._holds_lock = False

    async def start(self, *, webhook: bool | None = None, poll_timeout: int = 10) -> None:
        use_webhook = self.settings.webhook_url is not None if webhook is None else webhook
        if not use_webhook:
            # One poller per database: a second copy would take half the updates and race the
            # first on every user's state.
            holder = await self.coach.store.acquire_lock(
                POLLER_LOCK, self.dispatcher.owner, self._clock(), POLLER_LEASE
            )
            if holder is not None:
                raise AlreadyRunning(holder)
            self._holds_lock = True
            self._lock_task = asyncio.create_task(self._keep_lock(), name="poller-lock")
        await self.app.initialize()
        await set_commands(self.app)
        await self._sync_recruiters()
        await self.app.start()
        assert self.app.updater is not None
        if use_webhook:
            assert self.settings.webhook_url is not None
            secret = self.settings.webhook_secret
            await self.app.updater.start_webhook(
                listen=self.settings.webhook_listen,
                port=self.settings.webhook_port,
                url_path=self.settings.webhook_url.rsplit("/", 1)[-1],
                webhook_url=self.settings.webhook_url,
                secret_token=secret.get_secret_value() if secret else None,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            await self.app.updater.start_polling(
                poll_interval=0, timeout=poll_timeout, allowed_updates=Update.ALL_TYPES
            )
        self._dispatch_task = asyncio.create_task(self.dispatcher.run(), name="nudges")
        log.info("Interview Coach is serving (%s)", "webhook" if use_webhook else "polling")

    async def _keep_lock(self) -> None:
        while True:
            await asyncio.sleep(POLLER_RENEW_SECONDS)
            try:
                holder = await self.coach.store.acquire_lock(
                    POLLER_LOCK, self.dispatcher.owner, self._clock(), POLLER_LEASE
                )
            except Exception:
                log.exception("could not renew the poller lock; trying again")
                continue
            if holder is not None:
                log.critical("the poller lock was taken by %s; stopping updates here", holder)
                if self.app.updater is not None and self.app.updater.running:
                    await self.app.updater.stop()
                return

    async def _sync_recruiters(self) -> None:
        """Recruiters approved or removed from the shell while the bot was down: their menus,
        and a weekly digest queued for each one who wants it."""
        db = self.coach.store.db
        everyone = await recruiters.list_recruiters(db.conn)
        approved = {r.user_id for r in everyone if r.status == "approved"}
        async with db.transaction() as conn:
            for user_id in approved:
                await self.follower.schedule_digest(conn, user_id, self._clock())
        for user_id in sorted(approved | set(self.settings.admin_ids)):
            await self.front.set_menu(user_id, True)
        for r in everyone:
            if r.user_id not in approved and r.user_id not in self.settings.admin_ids:
                await self.front.set_menu(r.user_id, False)

    async def stop(self) -> None:
        if self._lock_task is not None:
            self._lock_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lock_task
        await self.dispatcher.stop()
        if self._dispatch_task is not None:
            self._dispatch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatch_task
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
        if self._holds_lock:
            with contextlib.suppress(Exception):
                await self.coach.store.release_lock(POLLER_LOCK, self.dispatcher.owner)
        await self.coach.store.db.close()


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    settings.require_token()  # fail before opening anything
    coach = await open_coach(settings)
    runtime = BotRuntime(settings, coach)
    try:
        await runtime.start()
        await stop.wait()
    finally:
        await runtime.stop()
