"""The nudge dispatcher against a real SQLite file, a fake clock and a fake Bot API."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot

import bot.nudges.dispatcher as dispatcher_module
from bot.engine.decide import Defer, Expire, NudgeDecision, Send
from bot.engine.model import DeleteUserData, Reply, ScheduleNudge, SetOptOut, State
from bot.logs import user_ref
from bot.nudges.cli import print_pending
from bot.nudges.dispatcher import (
    ChatPacer,
    Decide,
    Dispatcher,
    DispatchStats,
    full_jitter,
    owner_is_dead,
    process_owner,
)
from bot.render import RenderedMessage, Renderer
from bot.sending import (
    Blocked,
    Document,
    Photo,
    Rejected,
    RetryLater,
    SendError,
    from_payload,
    to_payload,
)
from bot.storage.db import Database
from bot.storage.store import Durable, NudgeRow, Store, UserRecord
from bot.telegram.sender import TelegramSender

try:
    from tests.conftest import deadline as eventually
    from tests.fakebot import FakeBotApi
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from conftest import deadline as eventually  # type: ignore
    from fakebot import FakeBotApi  # type: ignore

T0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


class Clock:
    """The dispatcher's wall clock, moved by hand (rate limits still use real time)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Sent:
    chat_id: int
    text: str
    at: float  # time.monotonic() when the send started
    end: float = 0.0  # and when it returned


class RecordingSender:
    """In-process Sender: records messages, or raises the errors queued for a chat."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.sent: list[Sent] = []
        self.errors: dict[int, list[BaseException]] = {}
        self.attempts = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._changed = asyncio.Event()

    async def send(self, chat_id: int, message: RenderedMessage) -> None:
        started = time.monotonic()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            self.attempts += 1
            queued = self.errors.get(chat_id)
            if queued:
                raise queued.pop(0)
            self.sent.append(Sent(chat_id, message.text, started, time.monotonic()))
        finally:
            self.in_flight -= 1
            self._changed.set()

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    def texts(self) -> list[str]:
        return [s.text for s in self.sent]


async def decide(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
    """Like the engine: expire past the deadline, otherwise send one message naming the row."""
    if row.deadline is not None and now >= row.deadline:
        return Expire("deadline passed")
    return Send((Reply("t", {"id": row.id, "kind": row.kind}),))


@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    prompts = tmp_path / "prompts"
    (prompts / "messages").mkdir(parents=True)
    (prompts / "messages" / "t.html").write_text("Nudge {{ id }} <b>{{ kind }}</b>\n")
    (prompts / "messages" / "two.html").write_text("Part {{ n }}\n")
    (prompts / "buttons.toml").write_text('[labels]\nlater = "Later"\n')
    return Renderer(prompts)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "bot.sqlite3")
    yield database
    await database.close()


@pytest.fixture
def store(db: Database) -> Store:
    return Store(db)


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as server:
        yield server


@pytest.fixture
async def telegram(api: FakeBotApi) -> AsyncIterator[TelegramSender]:
    async with Bot("123:abc", base_url=api.base_url) as bot:
        yield TelegramSender(bot)


async def add(
    store: Store,
    user_id: int,
    due: datetime,
    *,
    kind: str = "pep",
    deadline: datetime | None = None,
) -> int:
    [nudge_id] = await store.commit(
        user_id, user_id * 10, State(), [ScheduleNudge(kind, due, deadline)], T0
    )
    return nudge_id


async def rows(db: Database) -> dict[int, dict[str, Any]]:
    async with db.conn.execute(
        "SELECT id, state, attempts, due_at, last_error, sent_at, claimed_by, lease_until"
        " FROM nudges"
    ) as cur:
        return {row["id"]: dict(row) for row in await cur.fetchall()}


async def set_attempts(db: Database, nudge_id: int, attempts: int) -> None:
    """As if the nudge had failed `attempts` times already."""
    await db.conn.execute("UPDATE nudges SET attempts = ? WHERE id = ?", (attempts, nudge_id))


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


def make(
    store: Store,
    sender: Any,
    renderer: Renderer,
    clock: Callable[[], datetime],
    *,
    decider: Decide = decide,
    **options: Any,
) -> Dispatcher:
    options.setdefault("per_chat_interval", 0.0)
    options.setdefault("rate_per_second", 1000.0)
    # No jitter unless a test asks for it: retry times are then exact.
    options.setdefault("jitter", lambda delay: delay)
    return Dispatcher(store, sender, renderer, decider, clock, **options)


def sent_ids(texts: list[str]) -> Counter[int]:
    return Counter(int(text.split()[1]) for text in texts)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=dispatcher_module.log.name)
    return caplog


def logged(
    caplog: pytest.LogCaptureFixture,
    level: int,
    *parts: str,
    error: type[BaseException] | None = None,
) -> bool:
    """Whether the dispatcher logged, at `level`, a line that tells all of `parts` (with the
    traceback of `error`): what an operator reads. The wording is free; the facts are not.
    Every line at that level is formatted, so one whose arguments do not fit fails the test."""
    lines = [
        (r.getMessage(), r.exc_info)
        for r in caplog.records
        if r.name == dispatcher_module.log.name and r.levelno == level
    ]
    return any(
        all(part in text for part in parts)
        and (error is None or (bool(exc) and issubclass(exc[0], error)))  # type: ignore[index, arg-type]
        for text, exc in lines
    )


class WatchedStore(Store):
    """The real store, watched: counts calls (a round of the loop ends by asking when the next
    nudge is due) and can make the next calls of a method fail like a locked database."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.calls: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()  # "claim_owners", "finish:sent"... -> how many
        self._called = asyncio.Event()

    def _call(self, name: str) -> None:
        self.calls[name] += 1
        self._called.set()
        if self.failures[name] > 0:
            self.failures[name] -= 1
            raise sqlite3.OperationalError("database is locked")

    @property
    def rounds(self) -> int:
        return self.calls["next_due_at"]

    async def claim_owners(self) -> list[str]:
        self._call("claim_owners")
        return await super().claim_owners()

    async def finish(
        self,
        nudge_id: int,
        state: str,
        now: datetime,
        error: str | None = None,
        *,
        owner: str | None = None,
        attempted: bool = False,
    ) -> bool:
        self._call(f"finish:{state}")
        return await super().finish(nudge_id, state, now, error, owner=owner, attempted=attempted)

    async def retry(
        self,
        nudge_id: int,
        due_at: datetime,
        error: str,
        *,
        count_attempt: bool = True,
        owner: str | None = None,
    ) -> bool:
        self._call("retry")
        return await super().retry(
            nudge_id, due_at, error, count_attempt=count_attempt, owner=owner
        )

    async def next_due_at(self) -> datetime | None:
        due = await super().next_due_at()
        # Counted as it returns: the loop then goes straight to its wait, without a pause in
        # between, so a test woken by this sees the loop idle.
        self._call("next_due_at")
        return due

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self._called.clear()
                await self._called.wait()

    async def hops(self, count: int) -> None:
        """Take `count` turns on the database thread. Its queue is first come, first served:
        a loop that did not stop to wait would take about as many turns meanwhile."""
        for _ in range(count):
            await self.db.one("SELECT 1")


# --- unit tests with the in-process sender ---------------------------------------------------


async def test_sends_due_nudges_once_and_leaves_future_ones(
    db: Database, store: Store, renderer: Renderer, logs: pytest.LogCaptureFixture
) -> None:
    clock, sender = Clock(), RecordingSender()
    due = [await add(store, user, T0 - timedelta(minutes=user)) for user in (1, 2, 3)]
    future = await add(store, 4, T0 + timedelta(hours=1))
    # One at a time, so the order of sending is the order of claiming.
    dispatcher = make(store, sender, renderer, clock, concurrency=1)

    stats = await dispatcher.run_once()
    assert (stats.sent, stats.total) == (3, 3)
    assert sender.texts() == [
        f"Nudge {due[2]} <b>pep</b>",  # earliest first
        f"Nudge {due[1]} <b>pep</b>",
        f"Nudge {due[0]} <b>pep</b>",
    ]
    state = await rows(db)
    assert all(state[i]["state"] == "sent" and state[i]["sent_at"] == ts(T0) for i in due)
    assert state[future]["state"] == "pending"

    assert (await dispatcher.run_once()).total == 0  # nothing is sent twice
    clock.advance(3600)
    assert (await dispatcher.run_once()).sent == 1
    assert sent_ids(sender.texts()) == Counter({i: 1 for i in [*due, future]})
    assert [r.getMessage() for r in logs.records if r.levelno >= logging.WARNING] == []


async def test_inactive_and_opted_out_users_are_skipped(
    db: Database, store: Store, renderer: Renderer
) -> None:
    sender = RecordingSender()
    opted = await add(store, 1, T0)
    await store.commit(1, 10, State(), [SetOptOut(True)], T0)
    gone = await add(store, 2, T0)
    await db.conn.execute("UPDATE users SET active = 0 WHERE user_id = 2")
    ok = await add(store, 3, T0)

    stats = await make(store, sender, renderer, Clock()).run_once()
    assert (stats.cancelled, stats.sent) == (2, 1)
    state = await rows(db)
    assert (state[opted]["state"], state[opted]["last_error"]) == ("cancelled", "opted out")
    assert (state[gone]["state"], state[gone]["last_error"]) == ("cancelled", "inactive")
    assert state[ok]["state"] == "sent"
    assert [s.chat_id for s in sender.sent] == [30]


async def test_defer_puts_the_nudge_back_for_later(
    db: Database, store: Store, renderer: Renderer
) -> None:
    clock, sender = Clock(), RecordingSender()
    nudge = await add(store, 1, T0)
    morning = T0 + timedelta(hours=9)
    calls: list[State | None] = []

    async def quiet(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        calls.append(state)
        return Defer(morning) if now < morning else await decide(row, state, now)

    dispatcher = Dispatcher(
        store, sender, renderer, quiet, clock, rate_per_second=1000, per_chat_interval=0
    )
    assert (await dispatcher.run_once()).deferred == 1
    row = (await rows(db))[nudge]
    assert (row["state"], row["due_at"], row["last_error"]) == (
        "pending",
        ts(morning),
        "quiet hours",
    )
    assert calls == [State()]  # the engine sees the user's stored state
    clock.now = morning
    assert (await dispatcher.run_once()).sent == 1
    assert len(sender.sent) == 1


async def test_one_failure_does_not_stop_the_others(
    db: Database, store: Store, renderer: Renderer, logs: pytest.LogCaptureFixture
) -> None:
    clock, sender = Clock(), RecordingSender()
    bad = await add(store, 1, T0)
    good = [await add(store, user, T0) for user in (2, 3, 4)]
    sender.errors[10] = [RuntimeError("boom")]
    stats = await make(store, sender, renderer, clock, backoff_base=30).run_once()
    assert (stats.sent, stats.retried, stats.total) == (3, 1, 4)
    state = await rows(db)
    assert [state[i]["state"] for i in good] == ["sent"] * 3
    assert (state[bad]["state"], state[bad]["attempts"]) == ("pending", 1)  # a real failure
    assert state[bad]["due_at"] == ts(T0) + 30
    assert state[bad]["last_error"] == "RuntimeError: boom"
    assert logged(logs, logging.WARNING, f"nudge={bad}", "RuntimeError: boom")
    assert not logged(logs, logging.ERROR)  # an ordinary failure, nothing went wrong here


async def test_a_half_sent_nudge_is_recorded_as_sent_not_repeated(
    db: Database, store: Store, renderer: Renderer, logs: pytest.LogCaptureFixture
) -> None:
    clock, sender = Clock(), RecordingSender()
    nudge = await add(store, 1, T0)

    async def two(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        return Send((Reply("two", {"n": 1}), Reply("two", {"n": 2})))

    async def fail_second(chat_id: int, message: RenderedMessage) -> None:
        if message.text == "Part 2":
            raise SendError("timed out")
        sender.sent.append(Sent(chat_id, message.text, time.monotonic()))

    heard: list[int] = []

    async def on_sent(row: NudgeRow) -> None:
        heard.append(row.id)

    sender.send = fail_second  # type: ignore[method-assign]
    dispatcher = make(store, sender, renderer, clock, decider=two, on_sent=on_sent)
    stats = await dispatcher.run_once()
    assert (stats.sent, stats.total) == (1, 1)
    assert sender.texts() == ["Part 1"]
    row = (await rows(db))[nudge]
    assert (row["state"], row["sent_at"], row["attempts"]) == ("sent", ts(T0), 0)
    assert row["last_error"] == "sent 1 of 2: SendError: timed out"
    assert heard == [nudge]  # the user has (part of) it: it counts as sent for listeners
    assert logged(logs, logging.WARNING, f"nudge={nudge}", "sent=1", "messages=2")
    clock.advance(3600)
    assert (await dispatcher.run_once()).total == 0
    assert sender.texts() == ["Part 1"]


async def test_a_flood_wait_met_halfway_through_a_nudge_still_pauses_the_others(
    db: Database, store: Store, renderer: Renderer, logs: pytest.LogCaptureFixture
) -> None:
    sender = RecordingSender()
    halfway = await add(store, 1, T0 - timedelta(minutes=1))  # first: the earlier one
    other = await add(store, 2, T0)
    floods: list[float] = []

    async def two(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        if row.id == other:
            return await decide(row, state, now)
        return Send((Reply("two", {"n": 1}), Reply("two", {"n": 2})))

    async def flood_on_part_2(chat_id: int, message: RenderedMessage) -> None:
        if message.text == "Part 2":
            floods.append(time.monotonic())
            raise RetryLater(0.3)
        await RecordingSender.send(sender, chat_id, message)

    sender.send = flood_on_part_2  # type: ignore[method-assign]
    dispatcher = make(store, sender, renderer, Clock(), decider=two, concurrency=1)
    stats = await dispatcher.run_once()
    assert (stats.sent, stats.total) == (2, 2)
    state = await rows(db)
    assert state[halfway]["state"] == "sent"
    assert state[halfway]["last_error"].startswith("sent 1 of 2: RetryLater")
    [then] = [s for s in sender.sent if s.chat_id == 20]
    assert then.at >= floods[0] + 0.3  # Telegram's wait applies to every chat
    assert logged(logs, logging.WARNING, "flood", "0.3s")


async def test_an_empty_reply_list_expires_the_nudge_instead_of_recording_it_sent(
    db: Database, store: Store, renderer: Renderer
) -> None:
    """Nothing went to the user, so the nudge was not sent (no sent_at, no listener told); it
    is not a failure either (nothing to retry): it ends as expired, with the reason."""
    clock, sender = Clock(), RecordingSender()
    nudge = await add(store, 1, T0)
    heard: list[int] = []

    async def nothing(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        return Send(())

    async def on_sent(row: NudgeRow) -> None:
        heard.append(row.id)

    dispatcher = make(store, sender, renderer, clock, decider=nothing, on_sent=on_sent)
    stats = await dispatcher.run_once()
    assert (stats.expired, stats.total) == (1, 1)
    row = (await rows(db))[nudge]
    assert (row["state"], row["last_error"], row["sent_at"], row["attempts"]) == (
        "expired",
        "nothing to send",
        None,
        0,
    )
    assert sender.attempts == 0 and heard == []
    clock.advance(3600)
    assert (await dispatcher.run_once()).total == 0


@pytest.mark.parametrize(
    ("until", "due"),
    [
        # A whole second: exactly as asked.
        (T0 + timedelta(hours=9), T0 + timedelta(hours=9)),
        # The store keeps whole seconds: the next one, never the one before (too early).
        (T0 + timedelta(hours=9, milliseconds=250), T0 + timedelta(hours=9, seconds=1)),
        # Now or in the past: the next second, so that this round does not claim it again.
        (T0, T0 + timedelta(seconds=1)),
        (T0 - timedelta(hours=1), T0 + timedelta(seconds=1)),
    ],
)
async def test_a_deferral_is_due_no_earlier_than_asked_and_never_in_the_same_round(
    db: Database, store: Store, renderer: Renderer, until: datetime, due: datetime
) -> None:
    nudge = await add(store, 1, T0)
    await set_attempts(db, nudge, 2)
    asked: list[int] = []

    async def defer(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        asked.append(row.id)
        return Defer(until)

    dispatcher = make(store, RecordingSender(), renderer, Clock(), decider=defer)
    stats = await dispatcher.run_once()
    assert (stats.deferred, stats.total) == (1, 1)
    assert asked == [nudge]
    row = (await rows(db))[nudge]
    # Quiet hours are not a failure: the retry budget is untouched.
    assert (row["state"], row["due_at"], row["attempts"], row["last_error"]) == (
        "pending",
        ts(due),
        2,
        "quiet hours",
    )


async def test_quiet_hours_and_flood_waits_do_not_use_up_the_retries(
    db: Database, store: Store, renderer: Renderer
) -> None:
    """One failure away from giving up: a deferral and a flood wait on the way must not be it."""
    clock, sender = Clock(), RecordingSender()
    nudge = await add(store, 1, T0)
    await set_attempts(db, nudge, 2)
    morning = T0 + timedelta(hours=9)

    async def quiet(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        return Defer(morning) if now < morning else await decide(row, state, now)

    sender.errors[10] = [RetryLater(0.01)]
    dispatcher = make(store, sender, renderer, clock, decider=quiet, max_attempts=3)
    assert (await dispatcher.run_once()).deferred == 1
    assert (await rows(db))[nudge]["attempts"] == 2
    clock.now = morning
    assert (await dispatcher.run_once()).retried == 1
    row = (await rows(db))[nudge]
    assert (row["state"], row["attempts"]) == ("pending", 2)
    clock.advance(1)
    assert (await dispatcher.run_once()).sent == 1
    row = (await rows(db))[nudge]
    assert (row["state"], row["attempts"], row["sent_at"]) == ("sent", 2, ts(morning) + 1)


async def test_a_flood_wait_retry_is_rounded_up(
    db: Database, store: Store, renderer: Renderer
) -> None:
    # Half a second past T0, Telegram asks for a quarter: T0 + 0.75 s is T0 + 1 in whole seconds
    # (T0 would be too early: due again at once, inside the flood wait).
    clock, sender = Clock(T0 + timedelta(milliseconds=500)), RecordingSender()
    nudge = await add(store, 1, T0)
    sender.errors[10] = [RetryLater(0.25)]
    stats = await make(store, sender, renderer, clock).run_once()
    assert (stats.retried, stats.total) == (1, 1)
    row = (await rows(db))[nudge]
    assert (row["state"], row["due_at"], row["attempts"]) == ("pending", ts(T0) + 1, 0)
    assert row["last_error"].startswith("RetryLater")


async def test_a_failed_send_is_retried_no_earlier_than_its_backoff(
    db: Database, store: Store, renderer: Renderer
) -> None:
    clock, sender = Clock(T0 + timedelta(milliseconds=500)), RecordingSender()
    nudge = await add(store, 1, T0)
    sender.errors[10] = [RuntimeError("down")]
    stats = await make(store, sender, renderer, clock, backoff_base=30).run_once()
    assert (stats.retried, stats.total) == (1, 1)
    # 30 s after T0 + 0.5 s is T0 + 30.5 s: the whole second after it, not the one before.
    assert (await rows(db))[nudge]["due_at"] == ts(T0) + 31


async def test_a_chats_nudges_go_a_burst_at_once_then_an_interval_apart(
    store: Store, renderer: Renderer
) -> None:
    sender = RecordingSender(latency=0.01)
    for kind in ("prep", "pep", "debrief", "checkback", "nudge"):
        await add(store, 1, T0, kind=kind)  # all for chat 10
    await add(store, 2, T0)
    dispatcher = make(store, sender, renderer, Clock(), per_chat_interval=0.1)
    assert (await dispatcher.run_once()).sent == 6
    starts = [s.at for s in sender.sent if s.chat_id == 10]
    assert len(starts) == 5
    # Three at once (the burst), then one per interval: never more than 3 + t / 0.1 in t.
    assert all(at - starts[0] >= (k - 2) * 0.1 - 1e-3 for k, at in enumerate(starts) if k >= 3)
    # Taken in turn, one at a time: in the order they were claimed.
    ids = [int(s.text.split()[1]) for s in sender.sent if s.chat_id == 10]
    assert ids == sorted(ids)
    assert len(dispatcher.pacer) == 2


async def test_a_burst_goes_at_once_and_the_next_waits_for_the_chats_budget() -> None:
    pacer = ChatPacer(interval=60.0, burst=3)
    for _ in range(3):
        await asyncio.wait_for(pacer.take(1), 5)  # no wait at all: within the burst
    fourth = asyncio.create_task(pacer.take(1))
    await eventually(lambda: pacer.waiting(1) == 1)
    await asyncio.wait_for(pacer.take(2), 5)  # another chat is not held up
    assert not fourth.done() and pacer.waiting(2) == 0
    fourth.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await fourth
    assert pacer.waiting(1) == 0


async def test_a_flood_to_one_chat_is_spaced_by_the_interval_in_order() -> None:
    pacer = ChatPacer(interval=0.05, burst=3)
    loop = asyncio.get_running_loop()
    done: list[tuple[int, float]] = []

    async def take(n: int) -> None:
        await pacer.take(7)
        done.append((n, loop.time()))

    started = loop.time()
    for n in range(3):
        await take(n)
    waiters = [asyncio.create_task(take(n)) for n in range(3, 8)]
    await asyncio.wait_for(asyncio.gather(*waiters), 10)
    assert [n for n, _ in done] == list(range(8))  # the waiters in the order they came
    # Leaky bucket of 3 draining one per 0.05 s: the k-th goes no sooner than (k - 2) * 0.05.
    assert all(at - started >= (n - 2) * 0.05 - 1e-3 for n, at in done if n >= 3)


async def test_an_interval_of_zero_paces_nothing_and_remembers_nothing() -> None:
    pacer = ChatPacer(interval=0.0)
    for _ in range(100):
        await asyncio.wait_for(pacer.take(1), 5)
    assert len(pacer) == 0 and pacer.waiting(1) == 0


def test_a_pacer_needs_a_burst_and_an_interval_that_make_sense() -> None:
    for interval, burst in [(-1.0, 3), (1.0, 0)]:
        with pytest.raises(ValueError):
            ChatPacer(interval, burst)


async def test_pacer_forgets_idle_chats() -> None:
    pacer = ChatPacer(interval=0.0, sweep_at=64)
    sizes = []
    for chat in range(1000):
        async with pacer.turn(chat):
            pass
        sizes.append(len(pacer))
    # Every chat is idle: the table never grows past the size that triggers a sweep.
    assert max(sizes) <= 64
    assert len(pacer) < 64


async def test_a_pacer_sweep_drops_drained_budgets_and_keeps_used_ones() -> None:
    pacer = ChatPacer(interval=0.01, burst=1, sweep_at=4)
    for chat in (1, 2, 3):
        await pacer.take(chat)
    # Waits until chat 3's bucket drained, so 1's and 2's (used before it) have too; 3's is
    # full again.
    await asyncio.wait_for(pacer.take(3), 5)
    await pacer.take(4)
    await pacer.take(5)  # the table is full: swept here
    assert len(pacer) == 3  # 3, 4 and 5


async def test_a_pacer_sweep_keeps_a_chats_budget_while_in_use() -> None:
    pacer = ChatPacer(interval=0.2, burst=1, sweep_at=2)
    await pacer.take(1)
    ended = time.monotonic()
    await pacer.take(2)
    await pacer.take(3)  # the table is full: swept here, and chat 1's budget is in use
    await pacer.take(1)
    assert time.monotonic() - ended >= 0.2 - 1e-3


async def _hold(pacer: ChatPacer, chat: int, entered: asyncio.Event, gate: asyncio.Event) -> None:
    async with pacer.turn(chat):
        entered.set()
        await gate.wait()


async def test_a_pacer_sweep_keeps_chats_with_senders_waiting() -> None:
    """A chat whose send is under way, with another waiting for its turn, survives a sweep:
    were it dropped, a third send to it would start alongside the first."""
    pacer = ChatPacer(interval=0.0, sweep_at=2)
    inside, most, order = 0, 0, []
    first_in, gate = asyncio.Event(), asyncio.Event()

    async def send(name: str) -> None:
        nonlocal inside, most
        async with pacer.turn(1):
            inside += 1
            most = max(most, inside)
            order.append(name)
            if name == "first":
                first_in.set()
                await gate.wait()
            inside -= 1

    first = asyncio.create_task(send("first"))
    second = asyncio.create_task(send("second"))
    await first_in.wait()  # the first holds chat 1; the second already waits for it
    async with pacer.turn(2):
        pass
    async with pacer.turn(3):  # the table is full: swept here
        pass
    third = asyncio.create_task(send("third"))
    gate.set()
    await asyncio.wait_for(asyncio.gather(first, second, third), 5)
    assert most == 1
    assert order == ["first", "second", "third"]


async def test_a_pacer_sweeps_again_only_once_the_table_has_doubled() -> None:
    pacer = ChatPacer(interval=0.0, sweep_at=4)
    gate = asyncio.Event()
    entered = [asyncio.Event() for _ in range(3)]
    held = [asyncio.create_task(_hold(pacer, chat, entered[chat], gate)) for chat in range(3)]
    for event in entered:
        await asyncio.wait_for(event.wait(), 5)
    sizes = []
    for chat in range(100, 107):
        async with pacer.turn(chat):
            pass
        sizes.append(len(pacer))
    gate.set()
    await asyncio.wait_for(asyncio.gather(*held), 5)
    # Three chats in use stay; idle ones go at each sweep. The first sweep comes when the table
    # holds 4 (sweep_at); it keeps 3, so the next one waits until it holds 6 (twice 3).
    assert sizes == [4, 4, 5, 6, 4, 5, 6]


async def test_a_nudge_due_just_after_a_burst_of_replies_waits_for_its_chats_budget(
    store: Store, renderer: Renderer
) -> None:
    sender = RecordingSender()
    dispatcher = make(store, sender, renderer, Clock(), per_chat_interval=0.3)
    burst = time.monotonic()
    for _ in range(3):  # three replies to chat 10, as the front end takes them
        await dispatcher.pacer.take(10)
    await add(store, 1, T0)  # chat 10
    await add(store, 2, T0)  # chat 20
    assert (await dispatcher.run_once()).sent == 2
    [other, after] = sender.sent
    # The other chat's nudge went at once; chat 10's waited for room in that chat's budget.
    assert (other.chat_id, after.chat_id) == (20, 10)
    assert after.at - burst >= 0.3 - 1e-3


async def test_a_nudge_queued_again_after_a_flood_wait_takes_one_place_in_its_chats_budget(
    store: Store, renderer: Renderer
) -> None:
    """Chat 10's nudge waits for the send in flight, which meets a 429: it waits out the
    pause and queues again, still the same message, so its chat's budget (two here, one a
    minute) has room left for exactly one more."""
    sender = RecordingSender()
    started, gate, placed = asyncio.Event(), asyncio.Event(), asyncio.Event()
    floods: list[float] = []

    async def flood_20(chat_id: int, message: RenderedMessage) -> None:
        if chat_id == 20 and not floods:
            started.set()
            await gate.wait()
            floods.append(time.monotonic())
            raise RetryLater(0.2)
        await RecordingSender.send(sender, chat_id, message)

    async def after_20(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        if row.user_id == 1:  # chat 10: only once chat 20's send is in flight
            await asyncio.wait_for(started.wait(), 5)
        return await decide(row, state, now)

    sender.send = flood_20  # type: ignore[method-assign]
    dispatcher = make(
        store,
        sender,
        renderer,
        Clock(),
        decider=after_20,
        per_chat_interval=30.0,
        per_chat_burst=2,
    )
    pacer = dispatcher.pacer
    take = pacer.take

    async def spied(chat_id: int) -> None:
        await take(chat_id)
        if chat_id == 10:
            placed.set()  # from here chat 10's nudge queues for the send in flight

    pacer.take = spied  # type: ignore[method-assign]
    await add(store, 1, T0)  # chat 10
    await add(store, 2, T0 - timedelta(minutes=1))  # chat 20
    run = asyncio.create_task(dispatcher.run_once())
    await asyncio.wait_for(placed.wait(), 5)
    gate.set()
    stats = await asyncio.wait_for(run, 5)
    assert (stats.sent, stats.retried) == (1, 1)
    [sent] = sender.sent
    assert sent.chat_id == 10 and sent.at >= floods[0] + 0.2  # it waited the pause out
    # One of chat 10's two places is left: one more goes at once, the next must wait.
    await asyncio.wait_for(take(10), 1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(take(10), 0.05)


async def test_a_reply_flooded_while_nudges_are_sent_pauses_them(
    store: Store, renderer: Renderer
) -> None:
    dispatcher: Dispatcher
    sender = RecordingSender()
    gate, sending = asyncio.Event(), asyncio.Event()
    real = sender.send

    async def held(chat_id: int, message: RenderedMessage) -> None:
        sending.set()
        await gate.wait()
        await real(chat_id, message)

    sender.send = held  # type: ignore[method-assign]
    dispatcher = make(store, sender, renderer, Clock())
    assert not dispatcher.reply_flooded(30)  # nothing being sent: nothing to pause
    await add(store, 1, T0)
    await add(store, 2, T0)
    run = asyncio.create_task(dispatcher.run_once())
    await asyncio.wait_for(sending.wait(), 5)
    assert dispatcher.reply_flooded(30)  # a reply met a flood wait meanwhile
    gate.set()
    # The nudge in flight went; the other waits out the flood, until the dispatcher stops.
    await sender.wait_until(lambda: len(sender.sent) == 1)
    await dispatcher.stop()
    stats = await asyncio.wait_for(run, 5)
    assert (stats.sent, len(sender.sent)) == (1, 1)


async def test_one_send_at_a_time_between_telegram_and_the_record(
    db: Database, store: Store, renderer: Renderer
) -> None:
    """A crash can repeat at most the one nudge Telegram took but the database has not yet
    recorded: when a send starts, every earlier one is recorded as sent."""
    sender = RecordingSender(latency=0.02)
    unrecorded_at_start: list[int] = []

    async def checked(chat_id: int, message: RenderedMessage) -> None:
        states = await rows(db)
        sent = len(sender.sent)
        unrecorded_at_start.append(sent - sum(r["state"] == "sent" for r in states.values()))
        await RecordingSender.send(sender, chat_id, message)

    sender.send = checked  # type: ignore[method-assign]
    for user in range(1, 21):
        await add(store, user, T0)
    stats = await make(store, sender, renderer, Clock(), concurrency=4, batch_size=7).run_once()
    assert stats.sent == 20
    assert sender.max_in_flight == 1
    assert unrecorded_at_start == [0] * 20


async def test_a_sent_nudge_whose_record_fails_once_is_not_sent_again(
    db: Database, renderer: Renderer, logs: pytest.LogCaptureFixture
) -> None:
    """Telegram took it, then the database hiccuped (locked) while recording it: the user has
    the message, so it is recorded again, never retried as if the send had failed."""
    store = WatchedStore(db)
    clock, sender = Clock(), RecordingSender()
    nudge = await add(store, 1, T0)
    store.failures["finish:sent"] = 1
    dispatcher = make(store, sender, renderer, clock)
    assert (await dispatcher.run_once()).sent == 1
    row = (await rows(db))[nudge]
    assert (row["state"], row["sent_at"], row["attempts"], row["last_error"]) == (
        "sent",
        ts(T0),
        0,
        None,
    )
    assert logged(logs, logging.WARNING, f"nudge={nudge}", error=sqlite3.OperationalError)
    clock.advance(3600)
    assert (await dispatcher.run_once()).total == 0
    assert sent_ids(sender.texts()) == Counter({nudge: 1})


async def test_a_sent_nudge_that_cannot_be_recorded_stays_claimed_not_retried(
    db: Database, renderer: Renderer, logs: pytest.LogCaptureFixture
) -> None:
    store = WatchedStore(db)
    clock, sender = Clock(), RecordingSender()
    nudge = await add(store, 1, T0)
    store.failures["finish:sent"] = 2  # the database stays down
    dispatcher = make(store, sender, renderer, clock)
    assert (await dispatcher.run_once()).total == 0  # nothing it could record
    row = (await rows(db))[nudge]
    assert (row["state"], row["attempts"]) == ("sending", 0)  # not put back for a retry
    assert logged(logs, logging.ERROR, f"nudge={nudge}", error=sqlite3.OperationalError)
    clock.advance(60)  # within the lease: nobody sends it again
    assert (await dispatcher.run_once()).total == 0
    assert sent_ids(sender.texts()) == Counter({nudge: 1})


async def test_stop_during_a_flood_wait_puts_claimed_nudges_back(
    db: Database, store: Store, renderer: Renderer
) -> None:
    sender = RecordingSender()
    ids = [await add(store, user, T0) for user in (1, 2, 3)]
    for nudge in ids:
        await set_attempts(db, nudge, 2)
    sender.errors[10] = [RetryLater(30)]
    asked: list[int] = []
    second_asked = asyncio.Event()

    async def noting(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        asked.append(row.id)
        if len(asked) == 2:
            # Nothing awaits between this answer and the pause: the second nudge is waiting
            # out the flood when the test goes on; the third waits for the one send slot.
            second_asked.set()
        return await decide(row, state, now)

    dispatcher = make(store, sender, renderer, Clock(), concurrency=1, decider=noting)
    task = asyncio.create_task(dispatcher.run())
    await asyncio.wait_for(second_asked.wait(), 5)
    await asyncio.wait_for(dispatcher.stop(), 5)  # not after the 30 s pause
    await asyncio.wait_for(task, 5)
    state = await rows(db)
    assert asked == ids[:2]
    assert [state[i]["state"] for i in ids] == ["pending"] * 3
    # Neither the flood wait nor the stop is a failure: no attempt used up.
    assert [state[i]["attempts"] for i in ids] == [2, 2, 2]
    assert state[ids[0]]["due_at"] == ts(T0) + 30
    # The two the stop interrupted are due as they were, with the reason.
    assert [(state[i]["due_at"], state[i]["last_error"]) for i in ids[1:]] == [
        (ts(T0), "dispatcher stopped")
    ] * 2
    assert sender.sent == []


async def test_a_nudge_waiting_for_a_send_slot_is_not_sent_after_stop(
    db: Database, store: Store, renderer: Renderer
) -> None:
    sending, gate = asyncio.Event(), asyncio.Event()
    sender = RecordingSender()

    async def held(chat_id: int, message: RenderedMessage) -> None:
        sending.set()
        await gate.wait()
        await RecordingSender.send(sender, chat_id, message)

    sender.send = held  # type: ignore[method-assign]
    first, waiting = await add(store, 1, T0), await add(store, 2, T0)
    await set_attempts(db, waiting, 2)
    dispatcher = make(store, sender, renderer, Clock(), concurrency=1)
    task = asyncio.create_task(dispatcher.run())
    await asyncio.wait_for(sending.wait(), 5)  # the first has the only slot; the other waits
    stopping = asyncio.create_task(dispatcher.stop())
    # The stop starts before the first send resumes (tasks run in the order they were woken).
    gate.set()
    await asyncio.wait_for(stopping, 5)
    await asyncio.wait_for(task, 5)
    assert sent_ids(sender.texts()) == Counter({first: 1})  # the send in flight finished
    state = await rows(db)
    assert state[first]["state"] == "sent"
    assert (
        state[waiting]["state"],
        state[waiting]["due_at"],
        state[waiting]["attempts"],
        state[waiting]["last_error"],
    ) == ("pending", ts(T0), 2, "dispatcher stopped")


@pytest.mark.parametrize(
    ("rate", "latency"),
    [
        (5.0, 0.0),  # the others wait for their turn at the rate (one per 0.2 s)
        (1000.0, 0.1),  # they wait behind a slow send, the one that meets the 429
    ],
)
async def test_sends_held_back_during_a_flood_wait_go_only_after_it(
    db: Database, store: Store, renderer: Renderer, rate: float, latency: float
) -> None:
    """Telegram's 429 applies to the whole bot: sends already queued when it comes must wait it
    out too, not go as soon as their turn comes."""
    sender = RecordingSender(latency=latency)
    floods: list[float] = []  # when the 429 answer came back

    async def flood_first(chat_id: int, message: RenderedMessage) -> None:
        if not floods and sender.attempts == 0:
            await asyncio.sleep(0.05)
            floods.append(time.monotonic())
            sender.attempts += 1
            raise RetryLater(0.3)
        await RecordingSender.send(sender, chat_id, message)

    sender.send = flood_first  # type: ignore[method-assign]
    ids = [await add(store, user, T0) for user in (1, 2, 3, 4)]
    dispatcher = make(store, sender, renderer, Clock(), concurrency=4, rate_per_second=rate)
    stats = await dispatcher.run_once()
    assert (stats.retried, stats.sent) == (1, 3)
    assert len(sender.sent) == 3
    assert all(s.at >= floods[0] + 0.3 for s in sender.sent), [
        s.at - floods[0] for s in sender.sent
    ]
    state = await rows(db)
    [flooded] = [i for i in ids if state[i]["state"] == "pending"]  # the one that met the 429
    assert sent_ids(sender.texts()) == Counter({i: 1 for i in ids if i != flooded})


async def test_a_slow_send_does_not_let_the_ones_behind_it_burst_past_the_rate(
    store: Store, renderer: Renderer
) -> None:
    """Telegram counts messages as they arrive: after a send that took long, the ones queued
    meanwhile must still go at the rate, not all at once."""
    sender = RecordingSender()
    starts: list[float] = []  # when each request reached "Telegram"

    async def slow_first(chat_id: int, message: RenderedMessage) -> None:
        starts.append(time.monotonic())
        if len(starts) == 1:
            await asyncio.sleep(0.3)
        await RecordingSender.send(sender, chat_id, message)

    sender.send = slow_first  # type: ignore[method-assign]
    for user in range(1, 21):
        await add(store, user, T0)
    dispatcher = make(store, sender, renderer, Clock(), rate_per_second=50, concurrency=16)
    assert (await dispatcher.run_once()).sent == 20
    assert len(starts) == 20
    # 50 per second: any 3 consecutive requests span at least 2/50 s, less one for slack
    # (timer jitter): 1/50 s. Turns queued behind the slow one all going at once: far less.
    assert all(c - a >= 1 / 50 for a, c in zip(starts, starts[2:], strict=False))


async def test_every_outcome_of_a_round_is_counted(
    db: Database, store: Store, renderer: Renderer
) -> None:
    """Two nudges of each outcome in one round, each for its own user: each is counted."""
    sender = RecordingSender()
    plan = {
        "sent": (1, 2),
        "deferred": (3, 4),
        "expired": (5, 6),
        "nothing to send": (7, 8),
        "retried": (9, 10),
        "flood": (19, 20),
        "rejected": (11, 12),
        "gave up": (13, 14),
        "blocked": (15, 16),
        "opted out": (17, 18),
    }
    what = {user: name for name, users in plan.items() for user in users}
    for user, name in what.items():
        nudge = await add(store, user, T0)
        if name == "gave up":
            await set_attempts(db, nudge, 7)  # the 8th failure is the last
        if name == "opted out":
            await store.commit(user, user * 10, State(), [SetOptOut(True)], T0)
    errors: dict[str, BaseException] = {
        "retried": RuntimeError("down"),
        "gave up": RuntimeError("down"),
        "rejected": Rejected("Bad Request: x"),
        "blocked": Blocked("Forbidden: bot was blocked by the user"),
        "flood": RetryLater(0.01),
    }
    for user, name in what.items():
        if name in errors:
            sender.errors[user * 10] = [errors[name]]

    async def by_plan(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        name = what[row.user_id]
        if name == "deferred":
            return Defer(T0 + timedelta(hours=1))
        if name == "expired":
            return Expire("deadline passed")
        if name == "nothing to send":
            return Send(())
        return await decide(row, state, now)

    dispatcher = make(store, sender, renderer, Clock(), decider=by_plan, max_attempts=8)
    stats = await dispatcher.run_once()
    assert stats == DispatchStats(sent=2, deferred=2, expired=4, failed=4, retried=4, cancelled=4)
    assert dispatcher.totals == stats


async def test_an_engine_or_template_error_is_a_failure_like_any_other(
    db: Database, store: Store, renderer: Renderer, logs: pytest.LogCaptureFixture
) -> None:
    """Retried later with a backoff, counted: a bug fixed by a deploy lets it go out."""
    engine_bug = await add(store, 1, T0)
    template_bug = await add(store, 2, T0)

    async def buggy(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        if row.id == engine_bug:
            raise KeyError("step")
        return Send((Reply("no-such-template", {}),))

    stats = await make(store, RecordingSender(), renderer, Clock(), decider=buggy).run_once()
    assert (stats.retried, stats.total) == (2, 2)
    state = await rows(db)
    assert [(state[i]["state"], state[i]["attempts"], state[i]["due_at"]) for i in state] == [
        ("pending", 1, ts(T0) + 30)
    ] * 2
    assert state[engine_bug]["last_error"] == "KeyError: 'step'"
    assert "no-such-template" in state[template_bug]["last_error"]
    assert logged(logs, logging.ERROR, f"nudge={engine_bug}", "kind=pep", error=KeyError)


async def test_an_outcome_that_cannot_be_recorded_leaves_the_nudge_to_its_lease(
    db: Database, renderer: Renderer, logs: pytest.LogCaptureFixture
) -> None:
    store = WatchedStore(db)
    nudge = await add(store, 1, T0)
    store.failures["retry"] = 1  # the database is locked when the failure is recorded

    async def broken(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        raise RuntimeError("engine bug")

    dispatcher = make(store, RecordingSender(), renderer, Clock(), decider=broken)
    await dispatcher.run_once()  # does not raise: the other nudges of the round go on
    row = (await rows(db))[nudge]
    assert (row["state"], row["attempts"]) == ("sending", 0)  # taken back once its lease ends
    assert logged(logs, logging.ERROR, f"nudge={nudge}", error=sqlite3.OperationalError)


@pytest.mark.parametrize("kind", ["pep", "reply"])
async def test_a_nudge_goes_to_the_chat_the_user_has_now(
    db: Database, store: Store, renderer: Renderer, kind: str
) -> None:
    if kind == "reply":
        await store.receive([(1, "{}")], T0)
        durable = Durable(1, [RenderedMessage("Saved").to_json()], owner="gone")
        await store.commit(1, 10, State(), [], T0, durable=durable)
        await store.recover_in_flight()
    else:
        await add(store, 1, T0)
    sender = RecordingSender()
    dispatcher = make(store, sender, renderer, Clock(), owner="me")
    [row] = await store.claim_due(T0, 10, "me")
    assert row.chat_id == 10
    await store.commit(1, 11, State(), [], T0, user_wrote=False)  # their chat changed since
    stats = DispatchStats()
    await dispatcher._handle(row, stats)
    assert stats.sent == 1
    assert [s.chat_id for s in sender.sent] == [11]


class DeletingStore(WatchedStore):
    """The user deletes all their data just after the dispatcher claimed their nudge."""

    async def load_user(self, user_id: int) -> UserRecord | None:
        await self.commit(user_id, user_id * 10, State(), [DeleteUserData()], T0)
        return await super().load_user(user_id)


@pytest.mark.parametrize("kind", ["pep", "reply"])
async def test_a_nudge_claimed_before_its_user_deleted_their_data_is_not_sent(
    db: Database, renderer: Renderer, kind: str
) -> None:
    store = DeletingStore(db)
    if kind == "reply":
        await store.receive([(1, "{}")], T0)
        saved = RenderedMessage("Saved").to_json()
        await store.commit(1, 10, State(), [], T0, durable=Durable(1, [saved, saved], "gone"))
        await store.recover_in_flight()
    else:
        await add(store, 1, T0)
        await add(store, 1, T0, kind="prep")
    sender = RecordingSender()
    stats = await make(store, sender, renderer, Clock()).run_once()
    assert (stats.cancelled, stats.total) == (2, 2)
    assert sender.attempts == 0
    assert await rows(db) == {}  # nothing of theirs stays, nor comes back


@pytest.mark.parametrize(("parts", "error"), [(2, "sent 1 of 2"), (3, "sent 2 of 3")])
async def test_a_nudge_cut_short_records_how_much_went_out(
    db: Database, store: Store, renderer: Renderer, parts: int, error: str
) -> None:
    nudge = await add(store, 1, T0)

    async def several(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        return Send(tuple(Reply("two", {"n": n}) for n in range(1, parts + 1)))

    sender = RecordingSender()

    async def fail_last(chat_id: int, message: RenderedMessage) -> None:
        if message.text == f"Part {parts}":
            raise SendError("timed out")
        await RecordingSender.send(sender, chat_id, message)

    sender.send = fail_last  # type: ignore[method-assign]
    assert (await make(store, sender, renderer, Clock(), decider=several).run_once()).sent == 1
    assert len(sender.sent) == parts - 1
    assert (await rows(db))[nudge]["last_error"] == f"{error}: SendError: timed out"


async def test_stop_before_run_returns_at_once(store: Store, renderer: Renderer) -> None:
    dispatcher = make(store, RecordingSender(), renderer, Clock())
    await asyncio.wait_for(dispatcher.stop(), 5)  # never started: nothing to wait for


async def test_on_sent_hears_of_each_sent_nudge_once_it_is_recorded(
    db: Database, store: Store, renderer: Renderer, logs: pytest.LogCaptureFixture
) -> None:
    clock, sender = Clock(), RecordingSender()
    sent = await add(store, 1, T0)
    expired = await add(store, 2, T0, deadline=T0)
    failing = await add(store, 3, T0)
    rejected = await add(store, 4, T0)
    sender.errors[30] = [RuntimeError("down")]
    sender.errors[40] = [Rejected("Bad Request: chat not found")]
    heard: list[tuple[int, str]] = []

    async def on_sent(row: NudgeRow) -> None:
        heard.append((row.id, (await rows(db))[row.id]["state"]))

    stats = await make(store, sender, renderer, clock, on_sent=on_sent).run_once()
    assert (stats.sent, stats.expired, stats.retried, stats.failed) == (1, 1, 1, 1)
    assert heard == [(sent, "sent")]
    state = await rows(db)
    assert (state[expired]["state"], state[expired]["last_error"]) == (
        "expired",
        "deadline passed",
    )
    assert (state[failing]["state"], state[failing]["attempts"]) == ("pending", 1)
    assert (state[rejected]["state"], state[rejected]["attempts"]) == ("failed", 1)
    assert state[rejected]["last_error"] == "Rejected: Bad Request: chat not found"
    assert logged(logs, logging.INFO, f"nudge={expired}", "kind=pep", "deadline passed")
    assert logged(logs, logging.ERROR, f"nudge={rejected}", "chat not found")
    assert logged(logs, logging.WARNING, f"nudge={failing}", "RuntimeError: down")


async def test_a_failing_on_sent_listener_does_not_undo_the_send(
    db: Database, store: Store, renderer: Renderer, logs: pytest.LogCaptureFixture
) -> None:
    clock, sender = Clock(), RecordingSender()
    nudge = await add(store, 1, T0)

    async def broken(row: NudgeRow) -> None:
        raise RuntimeError("listener bug")

    dispatcher = make(store, sender, renderer, clock, on_sent=broken)
    stats = await dispatcher.run_once()
    assert (stats.sent, stats.total) == (1, 1)
    assert (await rows(db))[nudge]["state"] == "sent"
    assert logged(logs, logging.ERROR, f"nudge={nudge}", error=RuntimeError)
    clock.advance(3600)
    assert (await dispatcher.run_once()).total == 0
    assert sent_ids(sender.texts()) == Counter({nudge: 1})


async def test_an_owed_reply_goes_out_as_stored_without_asking_the_engine(
    db: Database, store: Store, renderer: Renderer
) -> None:
    """A reply a saved state owes, left behind by a process that died: delivered as it was
    rendered, even to a user who just opted out (it answers what they did); one that cannot
    be read fails without being sent."""
    await store.receive([(7, "{}")], T0)
    stored = RenderedMessage("Saved <b>answer</b>")
    unreadable = ["{not json", '{"keyboard": []}', '{"text": "x", "keyboard": 5}']
    durable = Durable(7, [stored.to_json(), *unreadable], owner="gone")
    await store.commit(1, 10, State(), [SetOptOut(True)], T0, durable=durable)
    owed, *broken = durable.ids
    assert await store.recover_in_flight() == 4  # its process died with them

    async def engine(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        raise AssertionError("an owed reply is not the engine's to decide")

    sender = RecordingSender()
    stats = await make(store, sender, renderer, Clock(), decider=engine).run_once()
    assert (stats.sent, stats.failed, stats.total) == (1, 3, 4)
    assert [(s.chat_id, s.text) for s in sender.sent] == [(10, "Saved <b>answer</b>")]
    state = await rows(db)
    assert state[owed]["state"] == "sent"
    assert [(state[i]["state"], state[i]["last_error"], state[i]["attempts"]) for i in broken] == [
        ("failed", "unreadable", 0)
    ] * 3


def test_dispatch_stats_add_up() -> None:
    totals = DispatchStats(sent=1, failed=2)
    totals.add(DispatchStats(sent=3, retried=1, cancelled=4))
    assert totals == DispatchStats(sent=4, failed=2, retried=1, cancelled=4)
    assert totals.total == 11


@pytest.mark.parametrize(
    "options",
    [
        {"rate_per_second": 0},
        {"rate_per_second": -1},
        {"concurrency": 0},
        {"batch_size": 0},
        {"max_attempts": 0},
    ],
)
def test_a_dispatcher_refuses_settings_that_could_never_send(
    store: Store, renderer: Renderer, options: dict[str, float]
) -> None:
    with pytest.raises(ValueError, match="positive"):
        make(store, RecordingSender(), renderer, Clock(), **options)


def test_the_smallest_working_settings_are_accepted(store: Store, renderer: Renderer) -> None:
    dispatcher = make(
        store,
        RecordingSender(),
        renderer,
        Clock(),
        rate_per_second=0.5,
        concurrency=1,
        batch_size=1,
        max_attempts=1,
    )
    # Without an owner given, leases are held in this process's name.
    assert dispatcher.owner.startswith(f"{socket.gethostname()}:{os.getpid()}:")


# --- the running loop ------------------------------------------------------------------------


async def test_wake_delivers_a_sooner_nudge_promptly(db: Database, renderer: Renderer) -> None:
    clock, sender = Clock(), RecordingSender()
    store = WatchedStore(db)
    await add(store, 1, T0 + timedelta(hours=5))  # the loop sleeps (capped at 60 s) for this
    stop = asyncio.Event()
    dispatcher = make(store, sender, renderer, clock)
    task = asyncio.create_task(dispatcher.run(stop))
    await store.wait_until(lambda: store.rounds == 1)  # now idle, for up to a minute
    sooner = await add(store, 2, T0)
    dispatcher.wake()
    await sender.wait_until(lambda: len(sender.sent) == 1, timeout=10)
    assert sent_ids(sender.texts()) == Counter({sooner: 1})
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_a_wake_is_used_up_by_the_round_it_starts(db: Database, renderer: Renderer) -> None:
    """A wake() starts one round; the loop is idle again after it, not spinning on SQLite."""
    store = WatchedStore(db)
    dispatcher = make(store, RecordingSender(), renderer, Clock())
    task = asyncio.create_task(dispatcher.run())
    await store.wait_until(lambda: store.rounds == 1)
    await store.hops(20)
    assert store.rounds == 1  # nothing due: idle
    dispatcher.wake()
    await store.wait_until(lambda: store.rounds == 2)
    await store.hops(20)
    assert store.rounds == 2
    assert store.calls["claim_owners"] == 2
    await dispatcher.stop()
    await asyncio.wait_for(task, 5)


async def test_run_wakes_by_itself_when_the_next_nudge_is_due(
    db: Database, renderer: Renderer
) -> None:
    store = WatchedStore(db)
    sender = RecordingSender()
    clock = Clock(T0 + timedelta(milliseconds=800))
    nudge = await add(store, 1, T0 + timedelta(seconds=1))
    dispatcher = make(store, sender, renderer, clock)
    task = asyncio.create_task(dispatcher.run())
    await store.wait_until(lambda: store.rounds == 1)  # not due: it waits 0.2 s for it
    assert sender.sent == []
    clock.advance(0.2)
    await sender.wait_until(lambda: len(sender.sent) == 1, timeout=10)  # no wake() needed
    await dispatcher.stop()
    await asyncio.wait_for(task, 5)
    assert sent_ids(sender.texts()) == Counter({nudge: 1})


async def test_the_idle_wait_is_the_time_to_the_next_nudge_within_a_minute(
    store: Store, renderer: Renderer
) -> None:
    dispatcher = make(store, RecordingSender(), renderer, Clock())
    # Nothing pending, or nothing soon: look again within a minute anyway (the clock may jump).
    nothing = await dispatcher._idle_seconds()
    assert 0 < nothing <= 60
    await add(store, 1, T0 + timedelta(hours=5))
    assert await dispatcher._idle_seconds() == nothing
    await add(store, 2, T0 + timedelta(seconds=42))
    assert await dispatcher._idle_seconds() == 42
    await add(store, 3, T0 - timedelta(minutes=5))  # overdue: at once
    assert await dispatcher._idle_seconds() == 0


async def test_a_failed_round_pauses_then_the_loop_carries_on(
    db: Database,
    renderer: Renderer,
    monkeypatch: pytest.MonkeyPatch,
    logs: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(dispatcher_module, "ERROR_PAUSE_SECONDS", 0.5)
    store = WatchedStore(db)
    sender = RecordingSender()
    nudge = await add(store, 1, T0)  # due now
    store.failures["claim_owners"] = 1  # the database is locked for the first round
    dispatcher = make(store, sender, renderer, Clock())
    task = asyncio.create_task(dispatcher.run())
    await store.wait_until(lambda: store.calls["claim_owners"] == 1)
    await store.hops(20)
    # It pauses rather than hammering a database in trouble (the nudge due now waits too)...
    assert store.calls["claim_owners"] == 1 and sender.sent == []
    # ...and goes on by itself: the task did not die.
    await sender.wait_until(lambda: len(sender.sent) == 1, timeout=10)
    await dispatcher.stop()
    assert task.done()  # stop() returns once the loop has ended
    assert sent_ids(sender.texts()) == Counter({nudge: 1})
    assert logged(logs, logging.ERROR, "0.5s", error=sqlite3.OperationalError)  # next try


async def test_restart_recovers_and_sorts_out_overdue_nudges(
    tmp_path: Path, renderer: Renderer, logs: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "restart.sqlite3"
    db = await Database.open(path)
    store = Store(db)
    in_flight = await add(store, 1, T0)
    still_valid = await add(store, 2, T0 + timedelta(minutes=5), deadline=T0 + timedelta(days=1))
    too_late = await add(store, 3, T0 + timedelta(minutes=10), deadline=T0 + timedelta(hours=1))
    future = await add(store, 4, T0 + timedelta(days=2))
    assert [r.id for r in await store.claim_due(T0, 10)] == [in_flight]  # then the crash
    await db.close()

    db = await Database.open(path)  # three hours later
    store = Store(db)
    sender = RecordingSender()
    dispatcher = make(store, sender, renderer, Clock(T0 + timedelta(hours=3)))
    task = asyncio.create_task(dispatcher.run())
    await sender.wait_until(lambda: len(sender.sent) == 2)
    await dispatcher.stop()
    await task
    state = await rows(db)
    await db.close()
    assert sent_ids(sender.texts()) == Counter({in_flight: 1, still_valid: 1})
    assert (state[too_late]["state"], state[too_late]["last_error"]) == (
        "expired",
        "deadline passed",
    )
    assert state[future]["state"] == "pending"
    assert dispatcher.totals.sent == 2 and dispatcher.totals.expired == 1
    assert logged(logs, logging.WARNING, "1", "expired lease")  # the one in flight at the crash


# --- the real TelegramSender against the fake Bot API ----------------------------------------


async def test_blocked_user_is_deactivated_and_their_nudges_cancelled(
    db: Database,
    store: Store,
    renderer: Renderer,
    api: FakeBotApi,
    telegram: TelegramSender,
    logs: pytest.LogCaptureFixture,
) -> None:
    now_one = await add(store, 1, T0)
    later_one = await add(store, 1, T0 + timedelta(days=1))
    other = await add(store, 2, T0)
    api.block_user(10)
    stats = await make(store, telegram, renderer, Clock()).run_once()
    assert (stats.cancelled, stats.sent) == (1, 1)
    state = await rows(db)
    assert [state[i]["state"] for i in (now_one, later_one)] == ["cancelled", "cancelled"]
    assert state[now_one]["last_error"] == "blocked"
    assert state[other]["state"] == "sent"
    user = await store.load_user(1)
    assert user is not None and not user.active
    assert [m["chat_id"] for m in api.sent_messages()] == [20]
    # An event line for operators, naming the user only by their pseudonym.
    assert logged(logs, logging.INFO, "event=blocked", f"user={user_ref(1)}", f"={now_one}")


async def test_a_flood_wait_is_waited_out_not_polled(
    store: Store, renderer: Renderer, api: FakeBotApi, telegram: TelegramSender
) -> None:
    # The nudges queued behind a 429 sleep until it ends: a dispatcher polling in the meantime
    # would keep a core busy for the whole wait (and read its clock thousands of times).
    clock = Clock()
    readings = 0

    def counted() -> datetime:
        nonlocal readings
        readings += 1
        return clock()

    for user in (1, 2, 3):
        await add(store, user, T0)
    api.fail_next("sendMessage", 429, retry_after=1, chat_id=10)
    dispatcher = make(store, telegram, renderer, counted, concurrency=3)
    assert (await dispatcher.run_once()).sent == 2
    [flood] = [c for c in api.calls_of("sendMessage") if c.status == 429]
    assert all(c.at - flood.at >= 0.95 for c in api.calls_of("sendMessage") if c.ok)
    assert readings < 60  # a handful per nudge


async def test_a_round_keeps_no_bookkeeping_for_the_nudges_it_finished(
    store: Store, renderer: Renderer
) -> None:
    # Running for months: what a round learns about its claims must go with the round.
    sender = RecordingSender()
    sender.errors[20] = [SendError("timed out")]
    for user in (1, 2, 3):
        await add(store, user, T0)
    dispatcher = make(store, sender, renderer, Clock())
    stats = await dispatcher.run_once()
    assert (stats.sent, stats.retried) == (2, 1)
    assert dispatcher._leases == {}


async def test_flood_wait_pauses_sending_then_retries_without_duplicates(
    db: Database, store: Store, renderer: Renderer, api: FakeBotApi, telegram: TelegramSender
) -> None:
    clock = Clock()
    ids = [await add(store, user, T0) for user in (1, 2, 3)]
    api.fail_next("sendMessage", 429, retry_after=1, chat_id=10)
    dispatcher = make(store, telegram, renderer, clock, concurrency=1)
    stats = await dispatcher.run_once()
    assert (stats.retried, stats.sent) == (1, 2)
    [flood] = [c for c in api.calls_of("sendMessage") if c.status == 429]
    later = [c for c in api.calls_of("sendMessage") if c.ok]
    assert len(later) == 2
    assert all(c.at - flood.at >= 0.95 for c in later)  # everything waited out retry_after
    row = (await rows(db))[ids[0]]
    assert (row["state"], row["due_at"], row["attempts"]) == ("pending", ts(T0) + 1, 0)

    clock.advance(1)
    assert (await dispatcher.run_once()).sent == 1
    assert sent_ids(api.sent_texts()) == Counter({i: 1 for i in ids})
    state = await rows(db)
    assert [state[i]["state"] for i in ids] == ["sent"] * 3


async def test_server_errors_back_off_then_give_up(
    db: Database,
    store: Store,
    renderer: Renderer,
    api: FakeBotApi,
    telegram: TelegramSender,
    logs: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    nudge = await add(store, 1, T0)
    api.fail_next("sendMessage", 500, chat_id=10, times=10)
    dispatcher = make(store, telegram, renderer, clock, max_attempts=3, backoff_base=10)

    assert (await dispatcher.run_once()).retried == 1
    assert (await rows(db))[nudge]["due_at"] == ts(T0) + 10
    clock.advance(10)
    assert (await dispatcher.run_once()).retried == 1
    assert (await rows(db))[nudge]["due_at"] == ts(T0) + 10 + 20  # doubled
    clock.advance(20)
    assert (await dispatcher.run_once()).failed == 1
    row = (await rows(db))[nudge]
    assert (row["state"], row["attempts"]) == ("failed", 3)
    assert "Internal Server Error" in row["last_error"]
    assert len(api.calls_of("sendMessage")) == 3
    assert logged(logs, logging.ERROR, f"nudge={nudge}", "3", "Internal Server Error")
    clock.advance(3600)
    assert (await dispatcher.run_once()).total == 0


async def test_a_nudge_that_keeps_failing_gets_eight_tries_by_default(
    db: Database, store: Store, renderer: Renderer, api: FakeBotApi, telegram: TelegramSender
) -> None:
    # The runtime keeps the dispatcher's own retry budget: eight real failures, then given up.
    clock = Clock()
    nudge = await add(store, 1, T0)
    api.fail_next("sendMessage", 500, chat_id=10, times=20)
    dispatcher = make(store, telegram, renderer, clock, backoff_base=1)
    outcomes = []
    for _ in range(12):
        stats = await dispatcher.run_once()
        outcomes.append((stats.retried, stats.failed))
        clock.advance(3600)  # past any backoff
    assert outcomes == [(1, 0)] * 7 + [(0, 1)] + [(0, 0)] * 4
    row = (await rows(db))[nudge]
    assert (row["state"], row["attempts"]) == ("failed", 8)
    assert len(api.calls_of("sendMessage")) == 8


async def test_bad_request_fails_at_once(
    db: Database, store: Store, renderer: Renderer, api: FakeBotApi, telegram: TelegramSender
) -> None:
    nudge = await add(store, 1, T0)
    api.fail_next("sendMessage", 400, "Bad Request: can't parse entities", chat_id=10)
    stats = await make(store, telegram, renderer, Clock(), max_attempts=8).run_once()
    assert (stats.failed, stats.total) == (1, 1)
    row = (await rows(db))[nudge]
    assert (row["state"], row["attempts"]) == ("failed", 1)  # one try, no retry
    assert row["last_error"].startswith("Rejected: ")


async def test_global_rate_and_per_chat_interval_over_http(
    store: Store, renderer: Renderer, api: FakeBotApi, telegram: TelegramSender
) -> None:
    # Chat 10's first: five of its six would go within 25 ms at 200/s without its budget.
    kinds = ("prep", "debrief", "checkback", "nudge", "pre")
    extra = [await add(store, 1, T0, kind=kind) for kind in kinds]
    ids = [await add(store, user, T0) for user in range(1, 101)]
    # When each request leaves (what the limits govern): on a busy machine requests can reach
    # the fake bunched together however well they were spaced when sent.
    left: list[tuple[float, int]] = []
    send = telegram.send

    async def timed(chat_id: int, message: Any) -> None:
        left.append((time.monotonic(), chat_id))
        await send(chat_id, message)

    telegram.send = timed  # type: ignore[method-assign]
    dispatcher = make(
        store, telegram, renderer, Clock(), rate_per_second=200, per_chat_interval=0.2
    )
    started = time.monotonic()
    assert (await dispatcher.run_once()).sent == 105
    assert time.monotonic() - started >= 0.45  # 105 messages at 200/s, no burst
    calls = sorted(at for at, _chat in left)
    # Never more than the rate in any window (one message of slack for timer jitter).
    assert all(calls[i + 11] - calls[i] >= 0.05 for i in range(len(calls) - 11))
    chat_10 = [at for at, chat in left if chat == 10]
    assert len(chat_10) == 6
    # A burst of 3, then one per 0.2 s.
    assert all(at - chat_10[0] >= (k - 2) * 0.2 - 0.005 for k, at in enumerate(chat_10) if k >= 3)
    assert sent_ids(api.sent_texts()) == Counter({i: 1 for i in [*ids, *extra]})


# --- the operator listing --------------------------------------------------------------------


async def test_print_pending_lists_pending_nudges_in_due_order(
    tmp_path: Path, db: Database, store: Store
) -> None:
    later = await add(
        store, 7, T0 + timedelta(hours=2), kind="debrief", deadline=T0 + timedelta(days=7)
    )
    sooner = await add(store, 8, T0, kind="pep")
    done = await add(store, 9, T0 - timedelta(hours=1))
    await store.finish(done, "sent", T0)
    out = io.StringIO()
    assert await print_pending(db.path if isinstance(db.path, Path) else Path(db.path), out) == 2
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "user_id": 8,
            "kind": "pep",
            "due_at": "2026-11-23T14:00:00Z",
            "id": sooner,
            "deadline": None,
            "attempts": 0,
        },
        {
            "user_id": 7,
            "kind": "debrief",
            "due_at": "2026-11-23T16:00:00Z",
            "id": later,
            "deadline": "2026-11-30T14:00:00Z",
            "attempts": 0,
        },
    ]
    assert list(json.loads(lines[0]))[:3] == ["user_id", "kind", "due_at"]


async def test_print_pending_creates_a_missing_database(tmp_path: Path) -> None:
    path = tmp_path / "new" / "bot.sqlite3"
    out = io.StringIO()
    assert await print_pending(path, out) == 0
    assert out.getvalue() == ""
    assert path.exists()
    db = await Database.open(path, migrate=False)
    try:
        assert await db.version() >= 1
    finally:
        await db.close()


# --- leases and retries until the deadline ---------------------------------------------------


async def test_a_second_process_leaves_the_firsts_claims_alone(
    db: Database, store: Store, renderer: Renderer
) -> None:
    clock, sender = Clock(), RecordingSender()
    ids = [await add(store, user, T0) for user in (1, 2)]
    first = make(store, RecordingSender(), renderer, clock, owner="first")
    assert [r.id for r in await store.claim_due(T0, 10, first.owner)] == ids  # then it hangs
    second = make(store, sender, renderer, clock, owner="second")
    # What each of its rounds does first: take back expired leases only, then claim.
    assert await store.recover_in_flight(clock.now) == 0
    assert (await second.run_once()).total == 0
    assert sender.sent == [] and {r["state"] for r in (await rows(db)).values()} == {"sending"}
    # First died: once its lease (two minutes) expired, the second sends each once.
    clock.advance(121)
    second = make(store, sender, renderer, clock, owner="second")
    task = asyncio.create_task(second.run())
    await sender.wait_until(lambda: len(sender.sent) == 2)
    await second.stop()
    await task
    assert sent_ids(sender.texts()) == Counter({i: 1 for i in ids})


async def test_a_lost_lease_is_not_sent_and_not_recorded(
    db: Database, store: Store, renderer: Renderer
) -> None:
    clock, sender = Clock(), RecordingSender()
    nudge = await add(store, 1, T0)
    slow = make(store, sender, renderer, clock, owner="slow", lease=timedelta(seconds=30))
    [row] = await store.claim_due(T0, 10, slow.owner, timedelta(seconds=30))
    # Stuck for a minute (a long flood wait): the lease expired and another process took it.
    clock.advance(60)
    assert await store.recover_in_flight(clock.now) == 1
    assert await store.claim_due(clock.now, 10, "other") != []
    stats = DispatchStats()
    await slow._handle(row, stats)  # resumes: it must notice and step back
    assert sender.sent == []
    assert stats.total == 0  # not its nudge any more: nothing to count
    state = (await rows(db))[nudge]
    assert (state["state"], state["claimed_by"]) == ("sending", "other")  # the other's to finish


async def take_over(db: Database, nudge_id: int) -> None:
    """Another process has the nudge now: this one's lease expired, it was taken back and
    claimed again (what recover_in_flight and claim_due do, in one step)."""
    await db.conn.execute("UPDATE nudges SET claimed_by = 'other' WHERE id = ?", (nudge_id,))


@pytest.mark.parametrize(
    "outcome",
    ["expire", "defer", "nothing to send", "opted out", "inactive", "unreadable", "too late"],
)
async def test_a_process_that_lost_the_lease_records_no_decision(
    db: Database, store: Store, renderer: Renderer, outcome: str
) -> None:
    now = T0 + timedelta(days=2) if outcome == "too late" else T0  # a reply a day late
    if outcome in ("unreadable", "too late"):
        await store.receive([(1, "{}")], T0)
        payload = "{not json" if outcome == "unreadable" else '{"text":"Hello again"}'
        durable = Durable(1, [payload], owner="gone")
        await store.commit(1, 10, State(), [], T0, durable=durable)
        await store.recover_in_flight()
    else:
        await add(store, 1, T0)
    if outcome == "opted out":
        await store.commit(1, 10, State(), [SetOptOut(True)], T0)
    if outcome == "inactive":
        await db.conn.execute("UPDATE users SET active = 0 WHERE user_id = 1")
    decisions: dict[str, NudgeDecision] = {
        "expire": Expire("deadline passed"),
        "defer": Defer(T0 + timedelta(hours=1)),
        "nothing to send": Send(()),
    }

    async def decided(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        return decisions[outcome]

    sender = RecordingSender()
    dispatcher = make(store, sender, renderer, Clock(now), decider=decided, owner="slow")
    [row] = await store.claim_due(now, 10, "slow")
    await take_over(db, row.id)  # while this one was busy elsewhere
    before = await rows(db)
    await dispatcher._handle(row, DispatchStats())
    assert await rows(db) == before
    assert sender.attempts == 0


@pytest.mark.parametrize(
    ("error", "max_attempts"),
    [
        (None, 8),
        (RuntimeError("down"), 8),
        (RuntimeError("down"), 1),
        (Rejected("Bad Request: x"), 8),
        (RetryLater(0.01), 8),
    ],
    ids=["sent", "failed", "gave-up", "rejected", "flood"],
)
async def test_a_send_during_which_the_lease_was_lost_records_nothing(
    db: Database,
    store: Store,
    renderer: Renderer,
    logs: pytest.LogCaptureFixture,
    error: Exception | None,
    max_attempts: int,
) -> None:
    """Whatever came of the send, the row is the other process's now: neither sent, nor
    failed, nor put back by this one."""
    nudge = await add(store, 1, T0)
    sender = RecordingSender()

    async def taken_over(chat_id: int, message: RenderedMessage) -> None:
        await take_over(db, nudge)
        if error is not None:
            raise error

    sender.send = taken_over  # type: ignore[method-assign]
    dispatcher = make(store, sender, renderer, Clock(), owner="slow", max_attempts=max_attempts)
    await dispatcher.run_once()
    row = (await rows(db))[nudge]
    assert (
        row["state"],
        row["claimed_by"],
        row["attempts"],
        row["due_at"],
        row["last_error"],
        row["sent_at"],
    ) == ("sending", "other", 0, ts(T0), None, None)
    if error is None:  # it did go out: the operator is told it may go twice
        assert logged(logs, logging.WARNING, f"nudge={nudge}")


async def test_a_partly_sent_nudge_whose_lease_was_lost_is_left_to_its_new_owner(
    db: Database, store: Store, renderer: Renderer
) -> None:
    nudge = await add(store, 1, T0)

    async def two(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        return Send((Reply("two", {"n": 1}), Reply("two", {"n": 2})))

    sender = RecordingSender()

    async def taken_over_then_failing(chat_id: int, message: RenderedMessage) -> None:
        if message.text == "Part 2":
            raise SendError("timed out")
        await take_over(db, nudge)
        await RecordingSender.send(sender, chat_id, message)

    sender.send = taken_over_then_failing  # type: ignore[method-assign]
    await make(store, sender, renderer, Clock(), decider=two, owner="slow").run_once()
    row = (await rows(db))[nudge]
    assert (row["state"], row["claimed_by"], row["last_error"]) == ("sending", "other", None)


async def retry_waits(
    dispatcher: Dispatcher, clock: Clock, db: Database, nudge: int
) -> tuple[list[int], dict[str, Any]]:
    """Run rounds, each when the nudge's retry is due, until it is no longer pending: the
    waits between tries, and the row as it ended."""
    waits = []
    while True:
        await dispatcher.run_once()
        row = (await rows(db))[nudge]
        if row["state"] != "pending":
            return waits, row
        waits.append(row["due_at"] - ts(clock.now))
        clock.now = datetime.fromtimestamp(row["due_at"], UTC)


async def test_failures_retry_until_the_deadline_not_a_counter(
    db: Database, store: Store, renderer: Renderer, api: FakeBotApi, telegram: TelegramSender
) -> None:
    clock = Clock()
    # Three hours left: an outage of many minutes must not make it give up early.
    nudge = await add(store, 1, T0, deadline=T0 + timedelta(hours=3))
    api.fail_next("sendMessage", 502, chat_id=10, times=20)
    dispatcher = make(store, telegram, renderer, clock, max_attempts=2, backoff_base=60)
    waits, row = await retry_waits(dispatcher, clock, db, nudge)
    # 1, 2, 4, 8, 16, 32 minutes, then capped at an hour (123 minutes in all); the next hour
    # would pass the deadline, so the last try is 5 s before it (10,795 s in), and that one
    # failing is the end: not after max_attempts (2), nor with an hour left.
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 10_795 - 7380]
    assert (row["state"], row["attempts"]) == ("failed", 9)
    assert clock.now == T0 + timedelta(hours=3, seconds=-5)
    assert len(api.calls_of("sendMessage")) == 9


async def test_a_pep_talk_against_a_sender_that_always_fails_is_tried_to_its_deadline(
    db: Database, store: Store, renderer: Renderer
) -> None:
    # The audit's case: two hours to the interview, the dispatcher's own backoff (30 s on).
    # It used to give up after 8 failures, 56 minutes before the deadline.
    clock, sender = Clock(), RecordingSender()
    nudge = await add(store, 1, T0, deadline=T0 + timedelta(hours=2))
    sender.errors[10] = [RuntimeError("down")] * 50
    dispatcher = make(store, sender, renderer, clock)
    waits, row = await retry_waits(dispatcher, clock, db, nudge)
    assert waits[:7] == [30, 60, 120, 240, 480, 960, 1920]
    assert clock.now == T0 + timedelta(hours=2, seconds=-5)  # the last try, just before it
    assert (row["state"], row["attempts"], sender.attempts) == ("failed", 9, 9)
    assert sender.sent == []


async def test_with_jitter_the_tries_still_run_to_the_deadline(
    db: Database, store: Store, renderer: Renderer
) -> None:
    clock, sender = Clock(), RecordingSender()
    nudge = await add(store, 1, T0, deadline=T0 + timedelta(hours=2))
    sender.errors[10] = [RuntimeError("down")] * 100
    dispatcher = make(store, sender, renderer, clock, jitter=full_jitter)
    waits, row = await retry_waits(dispatcher, clock, db, nudge)
    assert row["state"] == "failed" and clock.now == T0 + timedelta(hours=2, seconds=-5)
    # Each wait between half of its backoff and all of it (30 s, doubling, an hour at most),
    # but the last, which stops at the deadline.
    for n, wait in enumerate(waits[:-1]):
        backoff = min(30 * 2**n, 3600)
        assert backoff // 2 <= wait <= backoff


async def test_a_reply_is_tried_through_an_hours_outage_minutes_apart_and_then_sent(
    db: Database, store: Store, renderer: Renderer
) -> None:
    clock, sender = Clock(), RecordingSender()
    await store.receive([(1, "{}")], T0)
    durable = Durable(1, ['{"text":"Hello again"}'], "dead process")
    await store.commit(1, 10, State(), [], T0, durable=durable)
    [reply] = durable.ids
    await store.release_claims("dead process")
    sender.errors[10] = [RuntimeError("Bad Gateway")] * 20  # about an hour and a half
    dispatcher = make(store, sender, renderer, clock)
    waits, row = await retry_waits(dispatcher, clock, db, reply)
    assert row["state"] == "sent" and sender.texts() == ["Hello again"]
    assert sum(waits) > 3600 and max(waits) == 300  # never more than 5 minutes apart
    assert row["attempts"] == 20


async def test_a_reply_a_day_late_is_not_sent(
    db: Database, store: Store, renderer: Renderer
) -> None:
    clock, sender = Clock(), RecordingSender()
    await store.receive([(1, "{}")], T0)
    durable = Durable(1, ['{"text":"Hello again"}'], "dead process")
    await store.commit(1, 10, State(), [], T0, durable=durable)
    await store.release_claims("dead process")
    clock.now = T0 + timedelta(days=1)
    stats = await make(store, sender, renderer, clock).run_once()
    assert stats.expired == 1 and sender.attempts == 0
    [row] = (await rows(db)).values()
    assert (row["state"], row["last_error"]) == ("expired", "too late")


async def test_each_reply_too_late_to_send_is_counted_and_logged(
    db: Database, store: Store, renderer: Renderer, logs: pytest.LogCaptureFixture
) -> None:
    await store.receive([(1, "{}")], T0)
    durable = Durable(1, ['{"text":"one"}', '{"text":"two"}'], "dead process")
    await store.commit(1, 10, State(), [], T0, durable=durable)
    await store.release_claims("dead process")
    stats = await make(store, RecordingSender(), renderer, Clock(T0 + timedelta(days=2))).run_once()
    assert (stats.expired, stats.total) == (2, 2)
    lines = [
        r.getMessage()
        for r in logs.records
        if r.name == dispatcher_module.log.name and r.levelno == logging.INFO
    ]
    for reply in durable.ids:
        expected = f'event=nudge_expired nudge={reply} kind=reply reason="too late to answer"'
        assert expected in lines


def test_the_outbox_keeps_messages_pictures_and_files_whole() -> None:
    caption = RenderedMessage("<b>Your link</b>", ((("Open", "r1:open:1"),),))
    message = RenderedMessage("Hello <i>again</i>", caption.keyboard)
    items = (
        message,
        Photo(bytes(range(256)), caption),
        Document(b"name,decision\r\n\xff\x00", "candidates.csv", RenderedMessage("CSV")),
    )
    for item in items:
        assert from_payload(to_payload(item)) == item
    # A message is stored as an update's queued replies are: either reads the other.
    assert to_payload(message) == message.to_json()
    for broken in ('{"caption": {"text": "x"}, "photo": "not base64!"}', '{"caption": 1}', "[]"):
        with pytest.raises((ValueError, KeyError, TypeError)):
            from_payload(broken)


async def test_a_picture_in_the_outbox_needs_a_sender_that_sends_pictures(
    db: Database, store: Store, renderer: Renderer
) -> None:
    picture = to_payload(Photo(b"png", RenderedMessage("QR")))
    ids = await store.queue_replies(1, 10, [picture, '{"text":"after"}'], T0, "Bad Gateway", T0)
    sender = RecordingSender()  # messages only
    stats = await make(store, sender, renderer, Clock(), concurrency=1).run_once()
    assert (stats.failed, stats.sent) == (1, 1) and sender.texts() == ["after"]
    states = await rows(db)
    assert [states[i]["state"] for i in ids] == ["failed", "sent"]
    assert states[ids[0]]["last_error"] == "Rejected: this sender sends no pictures or files"


async def test_backoff_is_capped_and_jittered(
    db: Database, store: Store, renderer: Renderer
) -> None:
    clock, sender = Clock(), RecordingSender()
    nudge = await add(store, 1, T0)
    sender.errors[10] = [RuntimeError("down")]
    await db.conn.execute("UPDATE nudges SET attempts = 30 WHERE id = ?", (nudge,))
    halves = make(store, sender, renderer, clock, max_attempts=99, jitter=lambda d: d / 2)
    assert (await halves.run_once()).retried == 1
    # 30 s * 2^30 would be decades: capped at an hour, then jittered.
    assert (await rows(db))[nudge]["due_at"] == ts(T0) + 1800
    spread = {full_jitter(100.0) for _ in range(50)}
    assert len(spread) > 1 and all(50.0 <= d <= 100.0 for d in spread)


@pytest.mark.parametrize(
    ("deadline_in", "retry_in"), [(5, None), (6, 1), (30, 25), (35, 30), (90, 30)]
)
async def test_the_last_retry_is_just_before_the_deadline(
    db: Database, store: Store, renderer: Renderer, deadline_in: int, retry_in: int | None
) -> None:
    """The engine expires a nudge once its deadline is reached: a backoff that would pass it
    leaves a last try 5 s before it, and with no time left for one the failure is final.
    With a deadline, the counter does not apply."""
    sender = RecordingSender()
    nudge = await add(store, 1, T0, deadline=T0 + timedelta(seconds=deadline_in))
    sender.errors[10] = [RuntimeError("down")]
    dispatcher = make(store, sender, renderer, Clock(), backoff_base=30, max_attempts=1)
    stats = await dispatcher.run_once()
    row = (await rows(db))[nudge]
    outcome = "failed" if retry_in is None else "pending"
    assert (row["state"], row["attempts"]) == (outcome, 1)
    assert (stats.failed, stats.retried) == ((1, 0) if retry_in is None else (0, 1))
    if retry_in is not None:
        assert row["due_at"] == ts(T0) + retry_in


@pytest.mark.parametrize(("stuck", "lease_at_send"), [(20, 60), (30, 90)])
async def test_a_lease_is_renewed_before_sending_once_half_of_it_is_gone(
    db: Database, store: Store, renderer: Renderer, stuck: int, lease_at_send: int
) -> None:
    """A nudge held up behind another (a slow send, a flood wait) renews its lease before it is
    sent once half of it has passed, so no other process takes it back meanwhile; with more
    than half left it spares the write."""
    clock = Clock()
    first, second = await add(store, 1, T0), await add(store, 2, T0)
    leases: list[tuple[str, int]] = []

    async def second_in_two_parts(
        row: NudgeRow, state: State | None, now: datetime
    ) -> NudgeDecision:
        if row.id == first:
            return Send((Reply("two", {"n": 0}),))
        return Send((Reply("two", {"n": 1}), Reply("two", {"n": 2})))

    async def slow(chat_id: int, message: RenderedMessage) -> None:
        nudge_id = first if chat_id == 10 else second
        leases.append((message.text, (await rows(db))[nudge_id]["lease_until"]))
        if nudge_id == first:
            clock.advance(stuck)  # this send took `stuck` seconds

    sender = RecordingSender()
    sender.send = slow  # type: ignore[method-assign]
    dispatcher = make(
        store,
        sender,
        renderer,
        clock,
        decider=second_in_two_parts,
        concurrency=1,
        lease=timedelta(seconds=60),
    )
    assert (await dispatcher.run_once()).sent == 2
    assert leases == [
        ("Part 0", ts(T0) + 60),
        ("Part 1", ts(T0) + lease_at_send),
        ("Part 2", ts(T0) + lease_at_send),  # no need to renew again right away
    ]
    assert (await rows(db))[second]["last_error"] is None


async def test_the_loop_leaves_a_live_peers_claims_alone(db: Database, renderer: Renderer) -> None:
    store = WatchedStore(db)
    sender = RecordingSender()
    nudge = await add(store, 1, T0)
    peer = f"{socket.gethostname()}:{os.getppid()}:abc123"  # our parent: alive, on this host
    assert [r.id for r in await store.claim_due(T0, 10, peer)] == [nudge]
    dispatcher = make(store, sender, renderer, Clock())
    task = asyncio.create_task(dispatcher.run())
    await store.wait_until(lambda: store.rounds == 1)
    await dispatcher.stop()
    await asyncio.wait_for(task, 5)
    assert sender.sent == []
    row = (await rows(db))[nudge]
    assert (row["state"], row["claimed_by"]) == ("sending", peer)


def test_a_lease_owner_names_this_process_and_this_run() -> None:
    owner = process_owner()
    assert owner.startswith(f"{socket.gethostname()}:{os.getpid()}:")
    assert process_owner() != owner  # a pid can be reused: a random part tells runs apart
    assert not owner_is_dead(owner)


def test_only_a_gone_process_on_this_host_is_judged_dead() -> None:
    host = socket.gethostname()
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    gone = int(finished.stdout)
    assert owner_is_dead(f"{host}:{gone}:abc123")
    assert not owner_is_dead(f"{host}:{os.getpid()}:abc123")  # ourselves
    assert not owner_is_dead(f"other-host:{gone}:abc123")  # can't tell: never
    assert not owner_is_dead(f"{host}:1:abc123")  # init: alive
    assert not owner_is_dead("garbage")
    assert not owner_is_dead(f"{host}:notapid:abc123")
    assert owner_is_dead(f"{host}:{gone}")  # the pid tells, with or without a random part


def test_a_process_someone_else_owns_is_judged_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_ours(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(dispatcher_module.os, "kill", not_ours)
    assert not owner_is_dead(f"{socket.gethostname()}:12345:abc123")


def test_judging_a_process_only_asks_it_sends_it_nothing() -> None:
    def default_signals() -> None:  # whatever this process ignores (nohup: SIGHUP)
        for number in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1):
            signal.signal(number, signal.SIG_DFL)

    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], preexec_fn=default_signals
    )
    try:
        assert not owner_is_dead(f"{socket.gethostname()}:{child.pid}:abc123")
    finally:
        child.terminate()
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGTERM  # no other signal reached it first


async def test_claims_of_a_dead_process_come_back_at_once(
    db: Database, store: Store, renderer: Renderer
) -> None:
    clock, sender = Clock(), RecordingSender()
    nudge = await add(store, 1, T0)
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = f"{socket.gethostname()}:{int(finished.stdout)}:abc123"
    await store.claim_due(T0, 10, dead)  # then it was killed, its lease far from over
    dispatcher = make(store, sender, renderer, clock)
    task = asyncio.create_task(dispatcher.run())
    await sender.wait_until(lambda: len(sender.sent) == 1)
    await dispatcher.stop()
    await task
    assert sent_ids(sender.texts()) == Counter({nudge: 1})


async def test_the_front_end_is_told_a_reply_is_done_only_once_it_is_sent_or_given_up(
    db: Database, renderer: Renderer
) -> None:
    """The front end holds a chat's later replies behind those in the outbox until it is told
    they are done with: never while one is back in the queue or its outcome unrecorded."""
    store = WatchedStore(db)
    clock, sender = Clock(), RecordingSender()
    [reply] = await store.queue_replies(1, 10, ['{"text":"held"}'], T0, "Bad Gateway", T0)
    pep = await add(store, 2, T0)
    done: list[int] = []
    dispatcher = make(store, sender, renderer, clock, concurrency=1)
    dispatcher.on_reply_done = done.append
    sender.errors[10] = [RuntimeError("Bad Gateway")]
    await dispatcher.run_once()  # the reply fails again and is queued; the nudge goes
    assert (await rows(db))[reply]["state"] == "pending" and sender.texts() == [
        f"Nudge {pep} <b>pep</b>"
    ]
    assert done == []  # not a reply: nothing to tell
    clock.advance(3600)
    sender.errors[10] = [RuntimeError("Bad Gateway")]
    store.failures["retry"] = 2  # and its failure cannot be recorded this time (nor retried)
    await dispatcher.run_once()
    assert (await rows(db))[reply]["state"] == "sending" and done == []  # left to its lease
    await store.recover_in_flight(clock.now + timedelta(hours=1))
    clock.advance(3600)
    await dispatcher.run_once()
    assert (await rows(db))[reply]["state"] == "sent" and done == [reply]


async def test_a_sweep_keeps_a_chat_while_any_of_its_sends_still_holds_its_turn() -> None:
    pacer = ChatPacer(0.0, sweep_at=2)  # no budget: only the sends in use keep a chat
    order: list[str] = []
    started = {name: asyncio.Event() for name in ("first", "second", "third")}
    release = {name: asyncio.Event() for name in ("first", "second", "third")}

    async def send(name: str) -> None:
        started[name].set()  # what follows runs at once, up to waiting for the chat's turn
        async with pacer.turn(1):
            order.append(f"{name} in")
            await release[name].wait()
            order.append(f"{name} out")

    first = asyncio.create_task(send("first"))
    await asyncio.wait_for(started["first"].wait(), 5)
    second = asyncio.create_task(send("second"))
    await asyncio.wait_for(started["second"].wait(), 5)  # it waits for the first's turn
    release["first"].set()
    await eventually(lambda: order[-1] == "second in")
    for other in (2, 3):  # the table fills up: the next entry sweeps it
        async with pacer.turn(other):
            pass
    release["third"].set()
    third = asyncio.create_task(send("third"))
    await asyncio.wait_for(started["third"].wait(), 5)
    release["second"].set()
    await asyncio.wait_for(asyncio.gather(first, second, third), 5)
    # The third waited for the second's turn: one send at a time to a chat, always.
    assert order == ["first in", "first out", "second in", "second out", "third in", "third out"]


async def test_a_reply_given_up_whose_outcome_cannot_be_recorded_is_not_told_done(
    db: Database, renderer: Renderer
) -> None:
    store = WatchedStore(db)
    [reply] = await store.queue_replies(1, 10, ['{"text":"late"}'], T0, "Bad Gateway", T0)
    clock, sender = Clock(T0 + timedelta(days=1, seconds=-1)), RecordingSender()  # its last try
    sender.errors[10] = [RuntimeError("Bad Gateway")]
    store.failures["finish:failed"] = 2  # giving up cannot be recorded (nor on the second go)
    done: list[int] = []
    dispatcher = make(store, sender, renderer, clock)
    dispatcher.on_reply_done = done.append
    await dispatcher.run_once()
    assert sender.attempts == 1 and store.calls["finish:failed"] == 2
    assert (await rows(db))[reply]["state"] == "sending" and done == []  # left to its lease


@pytest.mark.parametrize(
    ("late", "state"), [(timedelta(days=1, seconds=-10), "sent"), (timedelta(days=1), "expired")]
)
async def test_a_reply_queued_by_the_front_end_is_sent_for_a_day_and_no_longer(
    db: Database, store: Store, renderer: Renderer, late: timedelta, state: str
) -> None:
    [reply] = await store.queue_replies(1, 10, ['{"text":"held"}'], T0, "Bad Gateway", T0)
    sender = RecordingSender()
    await make(store, sender, renderer, Clock(T0 + late)).run_once()
    assert (await rows(db))[reply]["state"] == state
    assert sender.texts() == (["held"] if state == "sent" else [])
