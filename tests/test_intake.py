"""The way updates come in (bot/telegram/intake.py), piece by piece: the long poll's request,
the worker's bookkeeping, and the web server's webhook, health and metrics endpoints."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from telegram import Update
from telegram.error import NetworkError, RetryAfter

from bot.storage.db import Database
from bot.storage.store import Store
from bot.telegram import intake
from bot.telegram.intake import BATCH, MAX_BODY, InboxWorker, Poller, web_server
from tests.conftest import deadline

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def update(update_id: int) -> tuple[int, str]:
    return update_id, json.dumps({"update_id": update_id})


# --- the long poll ---------------------------------------------------------------------------


class RecordingBot:
    """getUpdates as a script: each call takes the next step (a list of updates or an
    exception to raise); once the script is done it answers empty long polls."""

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.calls: list[dict[str, Any]] = []

    async def do_api_request(self, method: str, api_kwargs: dict[str, Any], **kw: Any) -> object:
        self.calls.append({"method": method, "api_kwargs": api_kwargs, **kw})
        step = self.script.pop(0) if self.script else []
        if isinstance(step, BaseException):
            raise step
        await asyncio.sleep(0.001)
        return step


async def poll_until(poller: Poller, check: Callable[[], bool]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        await deadline(check)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_long_poll_asks_for_every_kind_of_update_and_outwaits_telegram(
    db: Database,
) -> None:
    bot = RecordingBot()
    poller = Poller(bot, Store(db), lambda: NOW, lambda updates: None)
    await poll_until(poller, lambda: bool(bot.calls))
    [first, *_] = bot.calls
    # Telegram holds a long poll open 10 s by default; our read waits 10 s longer than that,
    # so an empty poll is never mistaken for a network fault.
    assert first["method"] == "getUpdates"
    assert first["api_kwargs"] == {
        "offset": None,
        "timeout": 10,
        "allowed_updates": list(Update.ALL_TYPES),
    }
    assert first["read_timeout"] == 20


async def test_a_poller_started_again_acknowledges_what_was_stored_before(db: Database) -> None:
    store = Store(db)
    await store.receive([update(41), update(40)], NOW)
    bot = RecordingBot()
    poller = Poller(bot, store, lambda: NOW, lambda updates: None, timeout=1)
    await poll_until(poller, lambda: bool(bot.calls))
    assert bot.calls[0]["api_kwargs"]["offset"] == 42
    assert bot.calls[0]["read_timeout"] == 11


async def test_after_a_flood_wait_the_poller_polls_again(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    delivered: list[Sequence[tuple[int, str]]] = []
    bot = RecordingBot(RetryAfter(0), [{"update_id": 7}])
    poller = Poller(bot, Store(db), lambda: NOW, delivered.append, timeout=1)
    await poll_until(poller, lambda: bool(delivered))
    assert [u for u, _ in delivered[0]] == [7]
    [line] = [r.getMessage() for r in caplog.records if r.name == "bot.telegram.intake"]
    assert line == "event=bot_api_unreachable failures=1 retry_in=0s error=RetryAfter"


async def test_a_failed_poll_waits_the_back_off_of_its_rank(
    db: Database, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []

    def quick(failures: int) -> float:
        asked.append(failures)
        return 0.001

    monkeypatch.setattr(intake, "backoff", quick)
    caplog.set_level(logging.INFO, logger="bot.telegram.intake")
    bot = RecordingBot(NetworkError("down"), NetworkError("down"), [{"update_id": 3, "x": [1]}])
    delivered: list[Sequence[tuple[int, str]]] = []
    poller = Poller(bot, Store(db), lambda: NOW, delivered.append, timeout=1)
    await poll_until(poller, lambda: bool(delivered))
    assert asked == [1, 2]
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.telegram.intake"]
    assert lines == [
        "event=bot_api_unreachable failures=1 retry_in=0s error=NetworkError",
        "event=bot_api_unreachable failures=2 retry_in=0s error=NetworkError",
        "event=bot_api_back failures=2",
    ]
    assert delivered == [[(3, '{"update_id":3,"x":[1]}')]]  # kept compact


def test_flood_waits_are_read_as_seconds_whichever_form_they_come_in() -> None:
    # PTB gives retry_after as a number of seconds, or as a timedelta with PTB_TIMEDELTA set.
    assert intake.seconds_of(45) == 45.0
    assert intake.seconds_of(timedelta(minutes=1, seconds=3)) == 63.0


# --- the worker ------------------------------------------------------------------------------


class RecordingApp:
    """What the worker hands updates to. `hold` keeps every handler waiting until it is set;
    the handler of an id in `cancelled` is cancelled, of one in `failing` fails."""

    def __init__(self) -> None:
        self.bot = None
        self.seen: list[int] = []
        self.hold: asyncio.Event | None = None
        self.cancelled: set[int] = set()
        self.failing: set[int] = set()

    async def process_update(self, update: Any) -> None:
        self.seen.append(update.update_id)
        if self.hold is not None:
            await self.hold.wait()
        if update.update_id in self.cancelled:
            raise asyncio.CancelledError
        if update.update_id in self.failing:
            raise RuntimeError("handler bug")


class SpyStore(Store):
    """Counts the inbox reads and the handled marks; `stale` rows are added to every read, as
    a read that raced the marking of an update handled would return them."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.reads = 0
        self.marked: list[int] = []
        self.stale: list[tuple[int, str]] = []
        self.conversation_marks: set[int] = set()
        self.prunes = 0
        self.read_sizes: list[int] = []
        self.during_read: Callable[[], Awaitable[None]] | None = None

    async def unhandled(self, limit: int, after: int = -1) -> list[tuple[int, str]]:
        rows = await super().unhandled(limit, after)
        self.reads += 1
        self.read_sizes.append(len(rows))
        if self.during_read is not None:
            await self.during_read()
        return rows + self.stale

    async def mark_handled(self, update_id: int, now: datetime, error: str | None = None) -> None:
        self.marked.append(update_id)
        await super().mark_handled(update_id, now, error)

    def handled_here(self, update_id: int) -> bool:
        return update_id in self.conversation_marks

    async def forget_handled(self, before: datetime) -> int:
        self.prunes += 1
        return await super().forget_handled(before)


class Running:
    def __init__(self, worker: InboxWorker) -> None:
        self.worker = worker
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(worker.run(self.stop))

    async def close(self) -> None:
        await self.worker.drain()
        self.stop.set()
        await asyncio.wait_for(self.task, 10)


@pytest.fixture
async def spy(db: Database) -> SpyStore:
    return SpyStore(db)


@pytest.fixture
async def started(
    spy: SpyStore, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RecordingApp, Running]]:
    """A worker that has read its (empty) inbox once at start and is waiting: for an offer
    (a minute without one before it looks at the clock again, longer than any test waits)."""
    monkeypatch.setattr(intake, "IDLE_WAKE_SECONDS", 60.0)
    app = RecordingApp()
    running = Running(InboxWorker(app, spy, lambda: NOW, concurrency=8))
    await deadline(lambda: spy.reads == 1)
    yield app, running
    await running.close()


async def test_a_full_batch_offered_is_handed_over_from_memory(
    spy: SpyStore, started: tuple[RecordingApp, Running]
) -> None:
    app, _ = started
    # Not in the inbox: only the offer can bring them, as it should up to a batch's worth.
    offered = [update(n) for n in range(1, BATCH + 1)]
    started[1].worker.offer(offered)
    await deadline(lambda: len(app.seen) == BATCH)
    assert sorted(app.seen) == [n for n, _ in offered]
    assert spy.reads == 1


async def test_more_than_a_batch_offered_is_read_back_from_the_inbox(
    spy: SpyStore, started: tuple[RecordingApp, Running]
) -> None:
    app, running = started
    offered = [update(n) for n in range(1, BATCH + 2)]
    await spy.receive(offered, NOW)
    running.worker.offer(offered)
    await deadline(lambda: len(app.seen) == BATCH + 1)
    assert sorted(app.seen) == [n for n, _ in offered]  # each once
    assert spy.reads >= 2  # left in the inbox and read from there, not kept in memory


async def test_a_worker_is_alive_while_it_runs(spy: SpyStore) -> None:
    worker = InboxWorker(RecordingApp(), spy, lambda: NOW)
    assert worker.alive is False
    running = Running(worker)
    await deadline(lambda: spy.reads == 1)
    assert worker.alive is True
    await running.close()
    assert worker.alive is False


async def test_an_idle_worker_still_reads_the_inbox_now_and_then(
    spy: SpyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake, "IDLE_WAKE_SECONDS", 0.01)
    monkeypatch.setattr(intake, "RESCAN_EVERY_SECONDS", 0.0)
    app = RecordingApp()
    running = Running(InboxWorker(app, spy, lambda: NOW))
    await deadline(lambda: spy.reads == 1)
    # Stored but never offered (the safety net): found by a later read all the same.
    await spy.receive([update(1)], NOW)
    await deadline(lambda: app.seen == [1])
    await running.close()
    assert spy.prunes == 1  # an hour between prunes, however often it wakes


async def test_a_backlog_past_a_batch_is_all_started_before_any_finishes(
    spy: SpyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake, "IDLE_WAKE_SECONDS", 60.0)
    backlog = [update(n) for n in range(1, BATCH + 51)]
    await spy.receive(backlog, NOW)  # left by a crash: nothing offers them
    app = RecordingApp()
    app.hold = asyncio.Event()
    running = Running(InboxWorker(app, spy, lambda: NOW, concurrency=len(backlog)))
    await deadline(lambda: len(app.seen) == len(backlog))
    app.hold.set()
    await running.close()
    assert sorted(app.seen) == [n for n, _ in backlog]
    # Page by page, never more than a batch in memory, each stored update read once.
    assert spy.read_sizes == [BATCH, 50]


async def test_updates_offered_past_a_batch_during_a_read_are_not_forgotten(
    spy: SpyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake, "IDLE_WAKE_SECONDS", 60.0)
    app = RecordingApp()
    worker = InboxWorker(app, spy, lambda: NOW)
    late = [update(n) for n in range(1000, 1001 + BATCH)]

    async def poller_stores_and_offers() -> None:
        spy.during_read = None
        await spy.receive(late, NOW)
        worker.offer(late)  # too many to keep in memory: they are to be read back

    await spy.receive([update(1)], NOW)
    spy.during_read = poller_stores_and_offers  # while the worker's first read is under way
    running = Running(worker)
    await deadline(lambda: len(app.seen) == 1 + len(late))
    await running.close()
    assert sorted(app.seen) == [1] + [n for n, _ in late]


async def test_an_update_read_again_after_its_handling_is_not_handed_over_twice(
    spy: SpyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake, "REMEMBER_FINISHED", 2)
    monkeypatch.setattr(intake, "RESCAN_EVERY_SECONDS", 0.0)  # read the inbox every round
    app = RecordingApp()
    running = Running(InboxWorker(app, spy, lambda: NOW))
    first = [update(1), update(2), update(3)]
    await spy.receive(first, NOW)
    running.worker.offer(first)
    await deadline(lambda: len(app.seen) == 3)
    await running.worker.drain()
    # A read that raced the handling of 3 still returns it; 4 is new.
    spy.stale = [update(3)]
    await spy.receive([update(4)], NOW)
    running.worker.offer([update(4)])
    await deadline(lambda: 4 in app.seen)
    await running.close()
    assert sorted(app.seen) == [1, 2, 3, 4]  # the latest ones handled are remembered


async def test_in_flight_counts_the_updates_being_handled(
    started: tuple[RecordingApp, Running],
) -> None:
    app, running = started
    app.hold = asyncio.Event()
    running.worker.offer([update(1), update(2)])
    await deadline(lambda: len(app.seen) == 2)
    assert running.worker.in_flight == 2
    app.hold.set()
    await running.worker.drain()
    assert running.worker.in_flight == 0


async def test_a_clean_stop_waits_for_every_handler_even_past_a_cancelled_one(
    started: tuple[RecordingApp, Running],
) -> None:
    app, running = started
    app.hold = asyncio.Event()
    app.cancelled = {1}
    running.worker.offer([update(1), update(2)])
    await deadline(lambda: len(app.seen) == 2)
    draining = asyncio.create_task(running.worker.drain())
    app.hold.set()
    await asyncio.wait_for(draining, 10)  # not broken off by the cancelled one
    assert running.worker.in_flight == 0


async def test_a_failing_handler_is_logged_in_one_line_with_its_traceback(
    started: tuple[RecordingApp, Running], caplog: pytest.LogCaptureFixture
) -> None:
    app, running = started
    app.failing = {4}
    running.worker.offer([update(4)])
    await deadline(lambda: bool(caplog.records))
    await running.worker.drain()
    [record] = [r for r in caplog.records if r.name == "bot.telegram.intake"]
    assert record.getMessage() == "event=update_failed update_id=4"
    assert record.exc_info is not None and str(record.exc_info[1]) == "handler bug"


async def test_an_update_the_conversation_marked_is_not_marked_again(
    spy: SpyStore, started: tuple[RecordingApp, Running]
) -> None:
    app, running = started
    spy.conversation_marks = {1}
    await spy.receive([update(1), update(2)], NOW)
    running.worker.offer([update(1), update(2)])
    await deadline(lambda: len(app.seen) == 2)
    await running.worker.drain()
    assert spy.marked == [2]  # one database write per update, not two


async def test_an_unparseable_update_is_logged_by_its_error_type_alone(
    spy: SpyStore, started: tuple[RecordingApp, Running], caplog: pytest.LogCaptureFixture
) -> None:
    _, running = started
    broken = (9, '{"update_id": 9, "message": "Secret text"')
    await spy.receive([broken], NOW)
    running.worker.offer([broken])
    await deadline(lambda: spy.marked == [9])
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.telegram.intake"]
    assert lines == ["event=update_unparseable update_id=9 error=JSONDecodeError"]
    row = await spy.db.one("SELECT error, payload FROM inbox WHERE update_id = 9")
    assert row is not None and tuple(row) == ("unparseable", "")


async def test_the_time_reported_is_the_handlers_own(
    spy: SpyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = iter([100.0, 100.25])
    fake_time = types.SimpleNamespace(monotonic=time.monotonic, perf_counter=lambda: next(readings))
    monkeypatch.setattr(intake, "time", fake_time)
    timed: list[float] = []
    running = Running(
        InboxWorker(RecordingApp(), spy, lambda: NOW, on_update=lambda _u, s: timed.append(s))
    )
    running.worker.offer([update(1)])
    await deadline(lambda: bool(timed))
    await running.close()
    assert timed == [0.25]


# --- the web server --------------------------------------------------------------------------

SECRET = "XXXX"  # a valid secret token (Telegram allows A-Z, a-z, 0-9, _ and -)


class Web:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.accepted: list[tuple[int, str]] = []
        self.healthy = (True, "database: ok")
        self.fail_accept = False

    async def accept(self, update_id: int, payload: str) -> None:
        if self.fail_accept:
            raise RuntimeError("database gone")
        self.accepted.append((update_id, payload))

    async def health(self) -> tuple[bool, str]:
        return self.healthy

    async def metrics(self) -> tuple[bytes, str]:
        return b"coach_up 1\n", "text/plain; version=0.0.4; charset=utf-8"


@pytest.fixture
async def web(unused_tcp_port: int) -> AsyncIterator[Web]:
    web = Web(unused_tcp_port)
    server = web_server(
        webhook=("/hook", SECRET, web.accept), health=web.health, metrics=web.metrics
    )
    server.listen(unused_tcp_port, "127.0.0.1")
    yield web
    server.stop()
    await server.close_all_connections()


def padded(size: int) -> bytes:
    """A genuine update, padded with whitespace (still valid JSON) to exactly `size` bytes."""
    body = json.dumps({"update_id": 5, "message": {"text": "hi"}}).encode()
    return body + b" " * (size - len(body))


async def post(web: Web, content: bytes | AsyncIterator[bytes], **headers: str) -> int:
    async with httpx.AsyncClient(timeout=30) as http:
        return (await http.post(f"{web.base}/hook", content=content, headers=headers)).status_code


async def chunks(body: bytes) -> AsyncIterator[bytes]:
    # An async iterator: httpx sends it chunked, without a Content-Length.
    for start in range(0, len(body), 65536):
        yield body[start : start + 65536]


async def test_a_post_without_the_secret_header_is_refused_whatever_the_secret(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    assert await post(web, padded(100)) == 403
    assert web.accepted == []
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.telegram.intake"]
    assert lines == ["event=webhook_refused status=403"]


async def test_a_webhook_body_of_exactly_the_limit_is_taken_and_stored_compact(
    web: Web,
) -> None:
    token = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    assert await post(web, padded(MAX_BODY), **token) == 200
    assert await post(web, chunks(padded(MAX_BODY)), **token) == 200
    compact = '{"update_id":5,"message":{"text":"hi"}}'
    assert web.accepted == [(5, compact), (5, compact)]


async def test_a_webhook_body_over_the_limit_is_refused_with_or_without_its_length(
    web: Web,
) -> None:
    token = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    assert await post(web, padded(MAX_BODY + 1), **token) == 413
    # Chunked, the length is not known beforehand: the server stops reading at the limit.
    assert await post(web, chunks(padded(MAX_BODY + 1)), **token) == 400
    assert web.accepted == []


async def test_a_fault_while_storing_a_webhook_update_is_logged_with_its_traceback(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    web.fail_accept = True
    assert await post(web, padded(100), **{"X-Telegram-Bot-Api-Secret-Token": SECRET}) == 500
    [record] = [r for r in caplog.records if r.exc_info]
    assert record.exc_info is not None
    kind, error, trace = record.exc_info
    assert kind is RuntimeError and str(error) == "database gone" and trace is not None


@pytest.mark.parametrize(("healthy", "status"), [(True, 200), (False, 503)])
async def test_health_is_plain_text_with_its_status(web: Web, healthy: bool, status: int) -> None:
    web.healthy = (healthy, "database: ok\ndispatcher: running")
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{web.base}/healthz")
    assert answer.status_code == status
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.text == "database: ok\ndispatcher: running\n"


async def test_metrics_come_with_the_exposition_content_type(web: Web) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{web.base}/metrics")
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert answer.text == "coach_up 1\n"


async def test_a_connection_that_sends_nothing_is_closed(
    monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int
) -> None:
    monkeypatch.setattr(intake, "IDLE_CONNECTION_SECONDS", 0.2)
    web = Web(unused_tcp_port)
    server = web_server(webhook=None, health=web.health, metrics=web.metrics)
    server.listen(unused_tcp_port, "127.0.0.1")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
        # Held open without a request (as a slow client would): the server hangs up.
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
    finally:
        server.stop()


async def test_requests_leave_no_access_log(web: Web, caplog: pytest.LogCaptureFixture) -> None:
    # The access log would write the webhook's path and every scrape, at INFO.
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient() as http:
        await http.get(f"{web.base}/healthz")
        await http.get(f"{web.base}/nowhere")
    assert [r for r in caplog.records if r.name == "tornado.access"] == []


async def test_failed_and_unparseable_updates_are_counted_as_faults(db: Database) -> None:
    store = Store(db)
    updates = [(1, '{"update_id":1}'), (2, '{"update_id":2, "poll": {"id": "1"}}')]
    await store.receive(updates, NOW)
    app = RecordingApp()
    app.failing.add(1)
    faults: list[str] = []
    worker = InboxWorker(app, store, lambda: NOW, on_fault=faults.append)
    worker.offer(updates)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await deadline(lambda: len(faults) == 2)
    await worker.drain()
    stop.set()
    await asyncio.wait_for(task, 10)
    assert sorted(faults) == ["unparseable", "update"]


async def test_the_poller_stores_only_update_ids_telegram_could_have_sent(db: Database) -> None:
    delivered: list[Sequence[tuple[int, str]]] = []
    odd: list[object] = [True, -5, 2**63, 2**100, 1.5, "8", None]
    bot = RecordingBot([{"update_id": value} for value in odd] + [{"update_id": 2**63 - 1}])
    poller = Poller(bot, Store(db), lambda: NOW, delivered.append, timeout=1)
    await poll_until(poller, lambda: bool(delivered))
    assert [u for u, _ in delivered[0]] == [2**63 - 1]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"update_id": 1e400}', "update_id"),  # a float, infinite once parsed
        (b'{"update_id": %d}' % 2**100, "update_id"),  # beyond SQLite's integers
        (b'{"update_id": %d}' % 2**63, "update_id"),
        (b'{"update_id": -5}', "update_id"),
        (b'{"update_id": true}', "update_id"),
        (b'{"update_id": 5.0}', "update_id"),
        (b'{"update_id": "5"}', "update_id"),
        (b'{"message": {}}', "update_id"),
        (b"[5]", "update_id"),
        (b"5", "update_id"),
        (b"[" * 100_000, "json"),  # nested past the parser's recursion limit
        (b"{not json", "json"),
        (b'{"update_id": 5, "x": "\xff"}', "json"),  # not UTF-8
    ],
)
async def test_a_malformed_update_is_refused_with_400_and_one_line(
    web: Web, caplog: pytest.LogCaptureFixture, body: bytes, reason: str
) -> None:
    assert await post(web, body, **{"X-Telegram-Bot-Api-Secret-Token": SECRET}) == 400
    assert web.accepted == []
    records = [r for r in caplog.records if r.name == "bot.telegram.intake"]
    assert [r.getMessage() for r in records] == [
        f"event=webhook_refused status=400 reason={reason}"
    ]
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize("update_id", [0, 2**63 - 1])
async def test_update_ids_at_the_edges_are_taken(web: Web, update_id: int) -> None:
    token = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    body = json.dumps({"update_id": update_id}).encode()
    assert await post(web, body, **token) == 200
    assert web.accepted == [
        (update_id, json.dumps({"update_id": update_id}, separators=(",", ":")))
    ]


async def test_a_prune_forgets_only_the_updates_handled_more_than_a_day_ago(
    spy: SpyStore,
) -> None:
    """Telegram may deliver an update again within hours: a day's handled ids are kept, so a
    second delivery is still known as handled; older ones go (the newest always stays)."""
    await spy.receive([update(1), update(2), update(3)], NOW - timedelta(days=2))
    await spy.mark_handled(1, NOW - timedelta(hours=25))
    await spy.mark_handled(2, NOW - timedelta(hours=23))
    await spy.mark_handled(3, NOW - timedelta(hours=30))
    worker = InboxWorker(RecordingApp(), spy, lambda: NOW)
    assert await worker.prune() == 1
    async with spy.db.conn.execute("SELECT update_id FROM inbox ORDER BY update_id") as cur:
        assert [row[0] for row in await cur.fetchall()] == [2, 3]
