"""Deliver due nudges straight from SQLite: one task, no in-memory job per nudge.

The dispatcher sleeps until the earliest pending nudge is due (or `wake()` says a sooner one
was added), claims due rows atomically (pending -> sending) under a lease in its own name,
asks the engine what to do with each, sends within Telegram's limits and records the outcome.
A row is marked sent right after its messages went out, so a crash can repeat at most the
nudges in flight at that moment. Leases are renewed while a nudge waits to be sent; a lease
that expires (its process died) is taken back by whichever process looks next, and a live one
never is, so two processes on one database never send the same nudge twice.

Failures retry with exponential backoff and jitter until the nudge's deadline (a counter only
for nudges without one); quiet hours, flood waits, crashes and shutdowns are not failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta

from aiolimiter import AsyncLimiter

from bot.engine.decide import Defer, Expire, NudgeDecision
from bot.engine.model import Reply, State
from bot.logs import quoted, user_ref
from bot.render import RenderedMessage, Renderer
from bot.sending import (
    Blocked,
    FileSender,
    Outgoing,
    Rejected,
    RetryLater,
    Sender,
    from_payload,
)
from bot.storage.store import DEFAULT_LEASE, REPLY, NudgeRow, Store

log = logging.getLogger(__name__)

# Async: some messages are composed from the database when due (a recruiter's weekly digest).
Decide = Callable[[NudgeRow, State | None, datetime], Awaitable[NudgeDecision]]
OnSent = Callable[[NudgeRow], Awaitable[None]]

# Re-check at least this often even with nothing due, in case the wall clock jumps.
MAX_IDLE_SECONDS = 60.0
# After a failed round (database locked, disk full...) wait before trying again.
ERROR_PAUSE_SECONDS = 5.0
# A Defer must move the nudge into the future, or the round would claim it again at once.
MIN_DEFER = timedelta(seconds=1)
MAX_ERROR_CHARS = 500
MAX_BACKOFF = timedelta(hours=1)  # however many failures, try again within the hour
# A reply answers something the user just did: once Telegram is back, it goes within minutes.
REPLY_MAX_BACKOFF = timedelta(minutes=5)
# The last try of a failing nudge is this long before its deadline (the engine expires a
# nudge at its deadline, so a try then would never be made).
LAST_TRY_BEFORE = timedelta(seconds=5)


def process_owner() -> str:
    """Who holds a lease: host, process and a random part (a pid can be reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def owner_is_dead(owner: str) -> bool:
    """True for an owner on this host whose process is gone (killed, crashed): its leases
    need not be waited out. Owners elsewhere, or alive, are never judged dead."""
    host, _sep, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def full_jitter(delay: float) -> float:
    """AWS's "full jitter": a uniform wait up to the backoff, so failed nudges spread out."""
    return random.uniform(delay / 2, delay)


@dataclass
class DispatchStats:
    sent: int = 0
    deferred: int = 0
    expired: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0

    def add(self, other: DispatchStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))


# Telegram lets a chat get a few messages at once before its limit of about one a second bites.
PER_CHAT_BURST = 3


@dataclass
class _Chat:
    budget: AsyncLimiter | None  # None: no per-chat limit (an interval of 0)
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    line: asyncio.Lock = field(default_factory=asyncio.Lock)  # waiters for the budget, in order
    users: int = 0  # tasks holding or waiting for its turn or its budget
    waiting: int = 0  # of which, waiting for room in its budget


class ChatPacer:
    """Telegram's per-chat limit (about one message a second, short bursts allowed; PTB's
    AIORateLimiter does not cover private chats), ONE budget per chat for everything sent to
    it: the replies to what the user did and the nudges the dispatcher sends.

    Each chat's budget is a leaky bucket (aiolimiter's AsyncLimiter) of `burst` messages that
    drains one every `interval` seconds: `burst` messages go at once, more go `interval` apart.
    A reply takes its place with `take()` and goes at once while the burst allows, so a normal
    conversation never waits and only a user who floods is paced; a nudge takes its place in
    the same budget, so it waits after a burst of replies to its chat, never before another
    chat's. The dispatcher's sends to one chat also take their `turn()`: one at a time, in the
    order they came (the outbox's replies after a failure).

    A chat whose bucket is empty and that nobody waits for carries no information, so such
    entries are swept whenever the table has doubled since the last sweep: memory stays
    proportional to the chats written to in the last `burst * interval` seconds, not to every
    chat ever written to.
    """

    def __init__(self, interval: float, burst: int = PER_CHAT_BURST, sweep_at: int = 1024) -> None:
        if interval < 0 or burst < 1:
            raise ValueError("the per-chat interval must be >= 0 and the burst >= 1")
        self.interval = interval
        self.burst = burst
        self._chats: dict[int, _Chat] = {}
        self._min_sweep = sweep_at
        self._sweep_at = sweep_at

    def __len__(self) -> int:
        return len(self._chats)

    def waiting(self, chat_id: int) -> int:
        """Sends to this chat waiting for room in its budget now."""
        chat = self._chats.get(chat_id)
        return chat.waiting if chat is not None else 0

    async def take(self, chat_id: int) -> None:
        """One message's place in the chat's budget: at once within the burst, else when the
        bucket has drained enough, after those already waiting."""
        if not self.interval:
            return
        chat = self._enter(chat_id)
        assert chat.budget is not None
        try:
            if not chat.waiting and chat.budget.has_capacity():
                await chat.budget.acquire()  # returns without yielding: room was checked
                return
            chat.waiting += 1
            try:
                # One waiter at a time in the bucket, the others in line: first come, first
                # served (AsyncLimiter alone lets a newcomer take room a waiter was woken for).
                async with chat.line:
                    await chat.budget.acquire()
            finally:
                chat.waiting -= 1
        finally:
            chat.users -= 1

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: int) -> AsyncIterator[None]:
        """The dispatcher's sends to one chat, one at a time in the order they came."""
        chat = self._enter(chat_id)
        try:
            async with chat.turn:
                yield
        finally:
            chat.users -= 1

    def _enter(self, chat_id: int) -> _Chat:
        if len(self._chats) >= self._sweep_at:
            self._sweep()
        chat = self._chats.get(chat_id)
        if chat is None:
            budget = AsyncLimiter(self.burst, self.burst * self.interval) if self.interval else None
            chat = self._chats[chat_id] = _Chat(budget)
        chat.users += 1  # no await since the lookup: a sweep cannot drop it in between
        return chat

    def _sweep(self) -> None:
        self._chats = {
            chat_id: chat
            for chat_id, chat in self._chats.items()
            if chat.users or (chat.budget is not None and not chat.budget.has_capacity(self.burst))
        }
        self._sweep_at = max(self._min_sweep, 2 * len(self._chats))


class _Stopped(Exception):
    """Raised inside a nudge's task when stop() interrupts a wait before anything was sent."""


def _ceil_second(moment: datetime) -> datetime:
    # The store keeps whole seconds and truncates; round up so a retry is never due early.
    return datetime.fromtimestamp(math.ceil(moment.timestamp()), UTC)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


class Dispatcher:
    def __init__(
        self,
        store: Store,
        sender: Sender,
        renderer: Renderer,
        decide: Decide,
        clock: Callable[[], datetime],
        *,
        # The two Telegram limits come from the settings, always: no second default here
        # (the short burst a chat may get at once is Telegram's, not a setting).
        rate_per_second: float,
        per_chat_interval: float,
        per_chat_burst: int = PER_CHAT_BURST,
        concurrency: int = 16,
        batch_size: int = 200,
        max_attempts: int = 8,
        backoff_base: float = 30.0,
        on_sent: OnSent | None = None,
        lease: timedelta = DEFAULT_LEASE,
        jitter: Callable[[float], float] = full_jitter,
        owner: str | None = None,
    ) -> None:
        if rate_per_second <= 0 or concurrency < 1 or batch_size < 1 or max_attempts < 1:
            raise ValueError("rate, concurrency, batch size and attempts must be positive")
        self._store = store
        self._sender = sender
        self._renderer = renderer
        self._decide = decide
        self._clock = clock
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._on_sent = on_sent
        self._lease = lease
        self._jitter = jitter
        self.owner = owner or process_owner()
        self._leases: dict[int, datetime] = {}  # nudge id -> when our lease on it ends
        self._in_flight = asyncio.Lock()
        # A bucket of ONE spaced 1/rate apart: AsyncLimiter(rate, 1) would allow a burst of
        # `rate` on top of `rate` per second, i.e. up to 2x Telegram's limit in some second.
        self._limiter = AsyncLimiter(1, 1 / rate_per_second)
        # One budget per chat, shared with the replies (the front end takes its places there).
        self._pacer = ChatPacer(per_chat_interval, per_chat_burst)
        self._slots = asyncio.Semaphore(concurrency)
        self._paused_until = 0.0  # time.monotonic(); Telegram's flood wait applies to all chats
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._finished = asyncio.Event()
        self._running = False
        self.totals = DispatchStats()
        self.on_fault: Callable[[str], None] = lambda where: None  # the errors metric
        # Told (the reply's id) when a reply in the outbox is done with, sent or not: the
        # front end holds the chat's later replies behind those it left here.
        self.on_reply_done: Callable[[int], None] = lambda nudge_id: None
        self._back: set[int] = set()  # rows put back in the queue while being handled

    @property
    def pacer(self) -> ChatPacer:
        return self._pacer

    # --- control ---------------------------------------------------------------------------

    def wake(self) -> None:
        """A nudge due sooner than the one we sleep for was committed: look again now."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop after the sends in flight; claimed nudges not yet sent go back to pending."""
        self._stopping.set()
        self._wake.set()
        if self._running:
            await self._finished.wait()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver nudges until `stop` is set or `stop()` is called.

        Cancelling the task also works; nudges it had claimed stay in 'sending' until the next
        start puts them back (any in the middle of a send may then be sent twice).
        """
        self._running = True
        self._finished.clear()
        follower = asyncio.create_task(self._follow(stop)) if stop is not None else None
        try:
            while not self._stopping.is_set():
                self._wake.clear()  # before the round: a wake() during it triggers another
                try:
                    # Claims whose process died (here before a restart, or a peer) come back
                    # once their lease expired, at once if that process is known dead; live
                    # ones stay with their owner.
                    for owner in await self._store.claim_owners():
                        if owner != self.owner and owner_is_dead(owner):
                            await self._store.release_claims(owner)
                    recovered = await self._store.recover_in_flight(self._clock())
                    if recovered:
                        log.warning(
                            'event=nudges_recovered count=%d reason="expired lease" state=pending',
                            recovered,
                        )
                    await self.run_once()
                    delay = await self._idle_seconds()
                except Exception:
                    log.exception("event=dispatch_round_failed retry_in=%ss", ERROR_PAUSE_SECONDS)
                    self.on_fault("dispatch_round")
                    delay = ERROR_PAUSE_SECONDS
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
        finally:
            if follower is not None:
                follower.cancel()
            self._running = False
            self._finished.set()

    async def _follow(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopping.set()
        self._wake.set()

    async def _idle_seconds(self) -> float:
        due = await self._store.next_due_at()
        if due is None:
            return MAX_IDLE_SECONDS
        return min(max((due - self._clock()).total_seconds(), 0.0), MAX_IDLE_SECONDS)

    # --- one round -------------------------------------------------------------------------

    async def run_once(self) -> DispatchStats:
        """Claim and handle every nudge due now, batch by batch; returns what happened."""
        stats = DispatchStats()
        # Claim against one `now`: whatever this round puts back (retries, deferrals) is due
        # strictly later, so the round ends even if every send fails.
        now = self._clock()
        while not self._stopping.is_set():
            rows = await self._store.claim_due(now, self._batch_size, self.owner, self._lease)
            if not rows:
                break
            until = self._clock() + self._lease
            self._leases.update((row.id, until) for row in rows)
            async with asyncio.TaskGroup() as group:
                for row in rows:
                    group.create_task(self._handle(row, stats))
        self.totals.add(stats)
        return stats

    async def _handle(self, row: NudgeRow, stats: DispatchStats) -> None:
        """Handle one claimed nudge; never raises (one failure must not stop the others)."""
        async with self._slots:
            try:
                try:
                    if self._stopping.is_set():
                        raise _Stopped
                    await self._dispatch(row, stats)
                except _Stopped:
                    await self._put_back(
                        row.id,
                        row.due_at,
                        "dispatcher stopped",
                        count_attempt=False,
                    )
                except Exception as exc:
                    log.exception("event=nudge_failed nudge=%d kind=%s", row.id, row.kind)
                    await self._attempt_failed(row, exc, stats)
            except Exception:
                # Recording failed too (database trouble): the row stays 'sending' and comes
                # back when its lease expires.
                log.exception("event=nudge_outcome_unrecorded nudge=%d", row.id)
                self._back.add(row.id)
            finally:
                self._leases.pop(row.id, None)
                if row.id not in self._back and row.kind == REPLY:
                    self.on_reply_done(row.id)
                self._back.discard(row.id)

    async def _put_back(
        self, nudge_id: int, due_at: datetime, error: str, *, count_attempt: bool = True
    ) -> None:
        """Back in the queue, to be handled again (noted for `on_reply_done`)."""
        self._back.add(nudge_id)
        await self._store.retry(
            nudge_id, due_at, error, count_attempt=count_attempt, owner=self.owner
        )

    async def _dispatch(self, row: NudgeRow, stats: DispatchStats) -> None:
        now = self._clock()
        user = await self._store.load_user(row.user_id)
        if user is None:
            # They deleted their data since the claim, this nudge with it: not a word more.
            stats.cancelled += 1
            return
        if row.kind == REPLY:
            # A reply a saved state owes (its process died before Telegram took it): no
            # quiet hours, no opt-out, it answers something the user just did.
            if row.deadline is not None and row.deadline <= now:
                await self._store.finish(row.id, "expired", now, "too late", owner=self.owner)
                stats.expired += 1
                log.info(
                    'event=nudge_expired nudge=%d kind=%s reason="too late to answer"',
                    row.id,
                    row.kind,
                )
                return
            try:
                message = from_payload(row.payload or "")
            except (ValueError, KeyError, TypeError):
                await self._store.finish(row.id, "failed", now, "unreadable", owner=self.owner)
                stats.failed += 1
                return
            await self._deliver_messages(row, user.chat_id, [message], stats)
            return
        if not user.active or user.opted_out:
            reason = "inactive" if not user.active else "opted out"
            await self._store.finish(row.id, "cancelled", now, reason, owner=self.owner)
            stats.cancelled += 1
            return
        decision = await self._decide(row, user.state, now)
        if isinstance(decision, Defer):
            until = _ceil_second(max(decision.until, now + MIN_DEFER))
            await self._put_back(row.id, until, "quiet hours", count_attempt=False)
            stats.deferred += 1
        elif isinstance(decision, Expire):
            await self._store.finish(row.id, "expired", now, decision.reason, owner=self.owner)
            stats.expired += 1
            log.info(
                "event=nudge_expired nudge=%d kind=%s reason=%s",
                row.id,
                row.kind,
                quoted(decision.reason),
            )
        else:
            await self._deliver(row, user.chat_id, decision.replies, stats)

    async def _deliver(
        self, row: NudgeRow, chat_id: int, replies: Sequence[Reply], stats: DispatchStats
    ) -> None:
        # Render everything first: a template error must not leave a nudge half sent.
        messages = [self._renderer.render(reply) for reply in replies]
        await self._deliver_messages(row, chat_id, messages, stats)

    async def _deliver_messages(
        self,
        row: NudgeRow,
        chat_id: int,
        messages: Sequence[Outgoing],
        stats: DispatchStats,
    ) -> None:
        if not messages:
            await self._store.finish(
                row.id, "expired", self._clock(), "nothing to send", owner=self.owner
            )
            stats.expired += 1
            return
        sent = 0
        error: str | None = None
        recorded: list[bool] = []

        async def record_sent() -> None:
            # Inside the send's critical section: Telegram has it, now the database does. If
            # the database fails here, that is not the send's failure (retrying would send it
            # twice): it is recorded once more below.
            try:
                recorded.append(
                    await self._store.finish(row.id, "sent", self._clock(), None, owner=self.owner)
                )
            except Exception:
                log.warning(
                    "event=nudge_sent_unrecorded nudge=%d action=record_again",
                    row.id,
                    exc_info=True,
                )

        try:
            for index, message in enumerate(messages):
                last = index == len(messages) - 1
                await self._send(row, chat_id, message, then=record_sent if last else None)
                sent += 1
        except Blocked:
            log.info(
                "event=blocked user=%s nudge=%d action=cancel_their_nudges",
                user_ref(row.user_id),
                row.id,
            )
            # This nudge too: it is one of theirs in 'sending'.
            await self._store.deactivate(row.user_id)
            stats.cancelled += 1
            return
        except Exception as exc:
            if isinstance(exc, RetryLater):
                self._pause(exc.seconds)
            if sent:
                # Retrying would repeat what the user already has: record it as sent.
                log.warning(
                    "event=nudge_partly_sent nudge=%d sent=%d messages=%d",
                    row.id,
                    sent,
                    len(messages),
                )
                error = f"sent {sent} of {len(messages)}: {_describe(exc)}"
            elif isinstance(exc, _Stopped):
                raise
            elif isinstance(exc, RetryLater):
                until = _ceil_second(self._clock() + timedelta(seconds=exc.seconds))
                await self._put_back(row.id, until, _describe(exc), count_attempt=False)
                stats.retried += 1
                return
            elif isinstance(exc, Rejected):
                log.error("event=nudge_rejected nudge=%d error=%s", row.id, quoted(exc))
                await self._store.finish(
                    row.id,
                    "failed",
                    self._clock(),
                    _describe(exc),
                    owner=self.owner,
                    attempted=True,
                )
                stats.failed += 1
                return
            else:
                log.warning(
                    "event=nudge_send_failed nudge=%d error=%s", row.id, quoted(_describe(exc))
                )
                await self._attempt_failed(row, exc, stats)
                return
        try:
            if not recorded:  # partly sent (with what went wrong), or the record above failed
                recorded.append(
                    await self._store.finish(row.id, "sent", self._clock(), error, owner=self.owner)
                )
            if not recorded[0]:
                log.warning("event=nudge_sent_after_lease_lost nudge=%d", row.id)
        except Exception:
            # Never retry a nudge the user already has; left in 'sending', a restart would
            # send it again (the one case the design allows).
            log.exception("event=nudge_sent_unrecorded nudge=%d action=left_claimed", row.id)
            return
        stats.sent += 1
        if self._on_sent is not None:
            try:
                await self._on_sent(row)
            except Exception:
                log.exception("event=on_sent_failed nudge=%d", row.id)

    async def _attempt_failed(
        self, row: NudgeRow, exc: BaseException, stats: DispatchStats
    ) -> None:
        """A real failure: try again later, with exponential backoff and jitter, for as long
        as the nudge still makes sense (its deadline, the last try just before it); a counter
        only for those without one."""
        now = self._clock()
        failures = row.attempts + 1
        cap = REPLY_MAX_BACKOFF if row.kind == REPLY else MAX_BACKOFF
        backoff = min(self._backoff_base * 2 ** (failures - 1), cap.total_seconds())
        again = now + timedelta(seconds=self._jitter(backoff))
        if row.deadline is None:
            give_up = failures >= self._max_attempts
        else:
            # A backoff that would pass the deadline still leaves a last try just before it.
            last_try = row.deadline - LAST_TRY_BEFORE
            give_up = last_try <= now
            again = min(again, last_try)
        if give_up:
            log.error(
                "event=nudge_gave_up nudge=%d failures=%d error=%s",
                row.id,
                failures,
                quoted(exc),
            )
            await self._store.finish(
                row.id, "failed", now, _describe(exc), owner=self.owner, attempted=True
            )
            stats.failed += 1
        else:
            await self._put_back(row.id, _ceil_second(again), _describe(exc))
            stats.retried += 1

    # --- sending within Telegram's limits --------------------------------------------------

    async def _send(
        self,
        row: NudgeRow,
        chat_id: int,
        message: Outgoing,
        then: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        async with self._pacer.turn(chat_id):
            placed = False
            while True:
                await self._wait_out_pause()
                await self._keep_lease(row)
                # Its place in the chat's budget, after any pause and before the queue for the
                # overall rate: a nudge due just after a burst of replies to its chat waits for
                # that chat's budget here, without holding up the nudges to other chats. Once:
                # queueing again after a flood wait (below) is the same message, not another.
                if not placed:
                    await self._pacer.take(chat_id)
                    placed = True
                # One nudge at a time between "Telegram took it" and "recorded as sent": a
                # crash can repeat at most that one, never a batch.
                async with self._in_flight:
                    # A flood wait that began while we queued behind the send that met it:
                    # wait it out and queue again, so the sends held back do not all go at
                    # once when it ends. None can begin from here to our send.
                    if self._paused_until > time.monotonic():
                        continue
                    # The rate is taken here, next to the send: taken before queueing, the
                    # turns would pile up behind a slow send and then all go at once.
                    await self._limiter.acquire()
                    await self._send_one(chat_id, message)
                    if then is not None:
                        await then()
                    return

    async def _send_one(self, chat_id: int, message: Outgoing) -> None:
        if isinstance(message, RenderedMessage):
            await self._sender.send(chat_id, message)
        elif isinstance(self._sender, FileSender):
            await self._sender.send_any(chat_id, message)  # a picture or a file in the outbox
        else:
            raise Rejected("this sender sends no pictures or files")

    async def _keep_lease(self, row: NudgeRow) -> None:
        """Renew the lease when half of it is gone (a long flood wait, a big batch); a lease
        lost meanwhile means another process has the nudge: don't send it."""
        now = self._clock()
        ends = self._leases.get(row.id, now)
        if ends - now > self._lease / 2:
            return
        until = now + self._lease
        if not await self._store.renew(row.id, self.owner, until):
            raise _Stopped
        self._leases[row.id] = until

    def reply_flooded(self, seconds: float) -> bool:
        """A reply met Telegram's flood control (429, retry_after `seconds`). Its chat waits in
        the outbox; if nudges are being sent meanwhile, the flood may be the bot's as a whole,
        so they wait too, as if one of theirs had met it. True if they were paused."""
        if not self._leases:  # nothing claimed, nothing being sent: nothing to pause
            return False
        self._pause(seconds)
        return True

    def _pause(self, seconds: float) -> None:
        log.warning("event=flood_wait scope=all_nudges pause=%.1fs", seconds)
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    async def _wait_out_pause(self) -> None:
        while (delay := self._paused_until - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
                raise _Stopped
