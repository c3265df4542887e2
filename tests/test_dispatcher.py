"""The nudge dispatcher against a real SQLite file, a fake clock and a fake Bot API."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import socket
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

from bot.engine.decide import Defer, Expire, NudgeDecision, Send
from bot.engine.model import Reply, ScheduleNudge, SetOptOut, State
from bot.nudges.cli import print_pending
from bot.nudges.dispatcher import (
    ChatPacer,
    Dispatcher,
    DispatchStats,
    full_jitter,
    owner_is_dead,
)
from bot.render import RenderedMessage, Renderer
from bot.sending import RetryLater, SendError
from bot.storage.db import Database
from bot.storage.store import NudgeRow, Store
from bot.telegram.sender import TelegramSender

try:
    from tests.fakebot import FakeBotApi
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
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
            self.sent.append(Sent(chat_id, message.text, started))
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
        "SELECT id, state, attempts, due_at, last_error, sent_at FROM nudges"
    ) as cur:
        return {row["id"]: dict(row) for row in await cur.fetchall()}


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


def make(
    store: Store, sender: Any, renderer: Renderer, clock: Callable[[], datetime], **options: Any
) -> Dispatcher:
    options.setdefault("per_chat_interval", 0.0)
    options.setdefault("rate_per_second", 1000.0)
    # No jitter unless a test asks for it: retry times are then exact.
    options.setdefault("jitter", lambda delay: delay)
    return Dispatcher(store, sender, renderer, decide, clock, **options)


def sent_ids(texts: list[str]) -> Counter[int]:
    return Counter(int(text.split()[1]) for text in texts)


# --- unit tests with the in-process sender ---------------------------------------------------


async def test_sends_due_nudges_once_and_leaves_future_ones(
    db: Database, store: Store, renderer: Renderer
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

    dispatcher = Dispatcher(store, sender, renderer, quiet, clock, per_chat_interval=0)
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
    db: Database, store: Store, renderer: Renderer
) -> None:
    clock, sender = Clock(), RecordingSender()
    bad = await add(store, 1, T0)
    good = [await add(store, user, T0) for user in (2, 3, 4)]
    sender.errors[10] = [RuntimeError("boom")]
    stats = await make(store, sender, renderer, clock, backoff_base=30).run_once()
    assert (stats.sent, stats.retried) == (3, 1)
    state = await rows(db)
    assert all(state[i]["state"] == "sent" for i in good)
    assert state[bad]["state"] == "pending"
    assert state[bad]["due_at"] == ts(T0) + 30
    assert "RuntimeError: boom" in state[bad]["last_error"]


async def test_a_half_sent_nudge_is_recorded_as_sent_not_repeated(
    db: Database, store: Store, renderer: Renderer
) -> None:
    sender = RecordingSender()
    nudge = await add(store, 1, T0)

    async def two(row: NudgeRow, state: State | None, now: datetime) -> NudgeDecision:
        return Send((Reply("two", {"n": 1}), Reply("two", {"n": 2})))

    async def fail_second(chat_id: int, message: RenderedMessage) -> None:
        if message.text == "Part 2":
            raise SendError("timed out")
        sender.sent.append(Sent(chat_id, message.text, time.monotonic()))

    sender.send = fail_second  # type: ignore[method-assign]
    stats = await Dispatcher(store, sender, renderer, two, Clock(), per_chat_interval=0).run_once()
    assert stats.sent == 1
    row = (await rows(db))[nudge]
    assert row["state"] == "sent"
    assert row["last_error"].startswith("sent 1 of 2")


async def test_per_chat_interval_is_honoured(store: Store, renderer: Renderer) -> None:
    sender = RecordingSender()
    for kind in ("prep", "pep", "debrief"):
        await add(store, 1, T0, kind=kind)  # all for chat 10
    await add(store, 2, T0)
    dispatcher = make(store, sender, renderer, Clock(), per_chat_interval=0.2)
    assert (await dispatcher.run_once()).sent == 4
    times = [s.at for s in sender.sent if s.chat_id == 10]
    assert len(times) == 3
    assert all(b - a >= 0.2 for a, b in itertools.pairwise(times))
    assert len(dispatcher.pacer) == 2


async def test_pacer_forgets_idle_chats() -> None:
    pacer = ChatPacer(interval=0.0, sweep_at=64)
    for chat in range(1000):
        async with pacer.slot(chat):
            pass
    assert len(pacer) < 64


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


async def test_stop_during_a_flood_wait_puts_claimed_nudges_back(
    db: Database, store: Store, renderer: Renderer
) -> None:
    sender = RecordingSender()
    ids = [await add(store, user, T0) for user in (1, 2, 3)]
    sender.errors[10] = [RetryLater(30)]
    dispatcher = make(store, sender, renderer, Clock(), concurrency=1)
    task = asyncio.create_task(dispatcher.run())
    await sender.wait_until(lambda: sender.attempts == 1)
    await asyncio.sleep(0.05)  # let the next nudge reach the pause
    started = time.monotonic()
    await asyncio.wait_for(dispatcher.stop(), 2)
    assert time.monotonic() - started < 1
    await task
    state = await rows(db)
    assert [state[i]["state"] for i in ids] == ["pending"] * 3
    assert state[ids[0]]["due_at"] == ts(T0) + 30
    assert sender.sent == []


# --- the running loop ------------------------------------------------------------------------


async def test_wake_delivers_a_sooner_nudge_promptly(store: Store, renderer: Renderer) -> None:
    clock, sender = Clock(), RecordingSender()
    await add(store, 1, T0 + timedelta(hours=5))  # the loop sleeps (capped at 60 s) for this
    stop = asyncio.Event()
    dispatcher = make(store, sender, renderer, clock)
    task = asyncio.create_task(dispatcher.run(stop))
    await asyncio.sleep(0.05)
    sooner = await add(store, 2, T0)
    started = time.monotonic()
    dispatcher.wake()
    await sender.wait_until(lambda: len(sender.sent) == 1, timeout=2)
    assert time.monotonic() - started < 0.5
    assert sent_ids(sender.texts()) == Counter({sooner: 1})
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_run_sleeps_until_the_earliest_due_nudge(store: Store, renderer: Renderer) -> None:
    sender = RecordingSender()
    now = datetime.now(UTC)
    due = datetime.fromtimestamp(int(now.timestamp()) + 1, UTC)  # the next whole second
    await add(store, 1, due)
    dispatcher = make(store, sender, renderer, lambda: datetime.now(UTC))
    task = asyncio.create_task(dispatcher.run())
    await sender.wait_until(lambda: len(sender.sent) == 1, timeout=3)
    assert datetime.now(UTC) >= due
    await dispatcher.stop()
    await task


async def test_restart_recovers_and_sorts_out_overdue_nudges(
    tmp_path: Path, renderer: Renderer
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


# --- the real TelegramSender against the fake Bot API ----------------------------------------


async def test_blocked_user_is_deactivated_and_their_nudges_cancelled(
    db: Database, store: Store, renderer: Renderer, api: FakeBotApi, telegram: TelegramSender
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
    assert all(c.at - flood.at >= 0.95 for c in later)  # everything waited out retry_after
    row = (await rows(db))[ids[0]]
    assert (row["state"], row["due_at"]) == ("pending", ts(T0) + 1)

    clock.advance(1)
    assert (await dispatcher.run_once()).sent == 1
    assert sent_ids(api.sent_texts()) == Counter({i: 1 for i in ids})
    assert all(r["state"] == "sent" for r in (await rows(db)).values())


async def test_server_errors_back_off_then_give_up(
    db: Database, store: Store, renderer: Renderer, api: FakeBotApi, telegram: TelegramSender
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
    clock.advance(3600)
    assert (await dispatcher.run_once()).total == 0


async def test_bad_request_fails_at_once(
    db: Database, store: Store, renderer: Renderer, api: FakeBotApi, telegram: TelegramSender
) -> None:
    nudge = await add(store, 1, T0)
    api.fail_next("sendMessage", 400, "Bad Request: can't parse entities", chat_id=10)
    assert (await make(store, telegram, renderer, Clock()).run_once()).failed == 1
    row = (await rows(db))[nudge]
    assert (row["state"], row["attempts"]) == ("failed", 1)


async def test_global_rate_and_per_chat_interval_over_http(
    store: Store, renderer: Renderer, api: FakeBotApi, telegram: TelegramSender
) -> None:
    ids = [await add(store, user, T0) for user in range(1, 101)]
    extra = [await add(store, 1, T0, kind=kind) for kind in ("prep", "debrief")]
    dispatcher = make(
        store, telegram, renderer, Clock(), rate_per_second=200, per_chat_interval=0.2
    )
    started = time.monotonic()
    assert (await dispatcher.run_once()).sent == 102
    assert time.monotonic() - started >= 0.45  # 102 messages at 200/s, no burst
    calls = sorted(c.at for c in api.calls_of("sendMessage"))
    # Never more than the rate in any window (one message of slack for timer jitter).
    assert all(calls[i + 11] - calls[i] >= 0.05 for i in range(len(calls) - 11))
    chat_10 = [c.at for c in api.calls_of("sendMessage") if c.params["chat_id"] == 10]
    assert len(chat_10) == 3
    assert all(b - a >= 0.2 for a, b in itertools.pairwise(chat_10))
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
    await slow._handle(row, DispatchStats())  # resumes: it must notice and step back
    assert sender.sent == []
    state = (await rows(db))[nudge]
    assert state["state"] == "sending"  # still the other process's to finish


async def test_failures_retry_until_the_deadline_not_a_counter(
    db: Database, store: Store, renderer: Renderer, api: FakeBotApi, telegram: TelegramSender
) -> None:
    clock = Clock()
    # Three hours left: an outage of many minutes must not make it give up early.
    nudge = await add(store, 1, T0, deadline=T0 + timedelta(hours=3))
    api.fail_next("sendMessage", 502, chat_id=10, times=20)
    dispatcher = make(store, telegram, renderer, clock, max_attempts=2, backoff_base=60)
    waits = []
    while True:
        stats = await dispatcher.run_once()
        row = (await rows(db))[nudge]
        if row["state"] != "pending":
            break
        waits.append(row["due_at"] - ts(clock.now))
        clock.now = datetime.fromtimestamp(row["due_at"], UTC)
    # 1, 2, 4, 8, 16, 32 minutes, then capped at an hour (123 minutes in all); the next try
    # would come after the deadline, so it gives up then, not after max_attempts (2).
    assert waits == [60, 120, 240, 480, 960, 1920, 3600]
    assert stats.failed == 1 and (row["state"], row["attempts"]) == ("failed", 8)
    assert len(api.calls_of("sendMessage")) == 8


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
