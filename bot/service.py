"""The coach as a service: load state, run the engine, commit, render. Front ends call this."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from bot.engine import buttons, flow
from bot.engine.context import Context
from bot.engine.decide import NudgeDecision
from bot.engine.model import (
    DeleteUserData,
    Event,
    Invitation,
    MoveNudge,
    Outcome,
    PendingNudge,
    Referral,
    ScheduleNudge,
    SnoozeNudge,
    State,
)
from bot.engine.nudging import decide_nudge
from bot.engine.planner import QuietHours
from bot.engine.returning import welcome_back
from bot.knowledge.base import KnowledgeBase
from bot.knowledge.classifier import ObjectionClassifier
from bot.render import RenderedMessage, Renderer
from bot.storage.store import Conn, Durable, NudgeRow, Store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
NUDGE_ACTIONS = ("nudge", "pre", "post")  # buttons on a nudge, carrying its id


def utc_now() -> datetime:
    return datetime.now(UTC)


class Follower(Protocol):
    """A feature that follows the conversation (the recruiters') without the engine knowing
    it: it gives the conversation its invitation and the openings the user came through,
    records what happened in the same transaction as the new state, and composes the
    messages it queued when they are due."""

    kinds: frozenset[str]  # the nudge kinds it delivers

    def recruitment(
        self, conn: Conn, event: Event, now: datetime, *, referrals: bool = True
    ) -> tuple[Invitation | None, tuple[Referral, ...]]:
        """The invitation the conversation is about, and with `referrals` every opening a
        link brought the user to (open or not). Read in the hop that loads the user's state."""
        ...

    def record(
        self,
        conn: Conn,
        event: Event,
        before: State,
        outcome: Outcome,
        now: datetime,
        *,
        away: bool = False,
    ) -> bool:
        """Runs in the commit's transaction. Returns True if it queued messages to send.
        `away`: the user had blocked the bot or sent /stop before this update."""
        ...

    async def decide(self, nudge: NudgeRow, now: datetime) -> NudgeDecision: ...

    async def after_sent(self, nudge: NudgeRow) -> None: ...


@dataclass(frozen=True)
class Handled:
    messages: tuple[RenderedMessage, ...]
    notice: str | None = None
    # The queued replies' nudge ids, one per message, when handled durably (from the inbox):
    # the sender marks each sent; if it cannot, the dispatcher sends it later.
    reply_ids: tuple[int, ...] = ()
    # The user deleted their data: what is said now must not write any of it back.
    deleted: bool = False


class Coach:
    def __init__(
        self,
        store: Store,
        kb: KnowledgeBase,
        classifier: ObjectionClassifier,
        renderer: Renderer,
        *,
        default_timezone: str = "UTC",
        quiet: QuietHours | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.kb = kb
        self.classifier = classifier
        self.renderer = renderer
        self.default_timezone = default_timezone
        self.quiet = quiet or QuietHours()
        self.clock = clock
        self.follower: Follower | None = None
        # Whose lease the replies of a durably handled update are queued under (the process's).
        self.owner = ""
        # Called when a nudge was added or moved, so the dispatcher can wake up early.
        self.on_schedule: Callable[[], None] | None = None
        # One user's updates are handled one at a time (two quick taps must not race),
        # different users' in parallel. Locks vanish with their last user.
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, user_id: int) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[user_id] = lock
        return lock

    async def handle(self, event: Event, chat_id: int, update_id: int | None = None) -> Handled:
        """Handle one event; with the `update_id` of a stored update, exactly once: the update
        is marked handled and its replies queued in the same transaction as the new state."""
        async with self._lock(event.user_id):
            now = self.clock()
            follower = self.follower
            wanted = flow.reads_referrals(event)
            loaded = await self.store.load(
                event.user_id,
                self._tapped_id(event),
                (lambda conn: follower.recruitment(conn, event, now, referrals=wanted))
                if follower
                else None,
            )
            invitation, referrals = loaded.also or (None, ())
            record = loaded.record
            away = record is not None and (not record.active or record.opted_out)
            state = record.state if record else State()
            ctx = Context(
                kb=self.kb,
                classifier=self.classifier,
                now=now,
                default_timezone=self.default_timezone,
                quiet=self.quiet,
                pending=loaded.pending,
                tapped=loaded.tapped,
                invitation=invitation,
                referrals=referrals,
                returning=record is not None and not record.active,
            )
            # Back after blocking the bot: their first update, whatever it is, gets the plan back.
            outcome = welcome_back(event, flow.handle(event, state, ctx), ctx)
            # Render before committing: a broken template must not leave state half-moved.
            messages = tuple(self.renderer.render(reply) for reply in outcome.replies)
            queued = False

            def follow(conn: Conn) -> None:
                nonlocal queued
                assert follower is not None
                queued = follower.record(conn, event, state, outcome, now, away=away)

            durable = (
                None
                if update_id is None
                else Durable(update_id, [m.to_json() for m in messages], self.owner)
            )
            await self.store.commit(
                event.user_id,
                chat_id,
                outcome.state,
                outcome.effects,
                now,
                extra=follow if follower else None,
                durable=durable,
            )
        if self.on_schedule and (
            queued
            or any(isinstance(e, (ScheduleNudge, SnoozeNudge, MoveNudge)) for e in outcome.effects)
        ):
            self.on_schedule()
        deleted = any(isinstance(e, DeleteUserData) for e in outcome.effects)
        return Handled(
            messages, outcome.notice, tuple(durable.ids) if durable else (), deleted=deleted
        )

    @staticmethod
    def _tapped_id(event: Event) -> int | None:
        """The nudge a button on a nudge carries, if this is such a press."""
        if event.kind != "button":
            return None
        action = buttons.unpack(event.value)
        if action is None or action.name not in NUDGE_ACTIONS:
            return None
        return flow.small_int(action.args[0])

    async def decide_nudge(
        self, nudge: NudgeRow, state: State | None, now: datetime
    ) -> NudgeDecision:
        if self.follower is not None and nudge.kind in self.follower.kinds:
            return await self.follower.decide(nudge, now)
        pending = PendingNudge(nudge.id, nudge.kind, nudge.due_at, nudge.deadline)
        return decide_nudge(pending, state, now, self.kb, self.default_timezone, self.quiet)
