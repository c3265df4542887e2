"""Faults an operator meets running the bot for months, each one clear line (issue 9's
follow-up): a database locked or read-only at start-up, its file deleted while the bot runs,
components waiting to be restarted, the Bot API down at start, settings that cannot be
served, malformed updates."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import httpx
import pytest
from telegram.error import BadRequest

from bot import logs
from bot.config import Settings
from bot.knowledge.base import KnowledgeBase
from bot.knowledge.classifier import ObjectionClassifier, model_path
from bot.runtime import BotRuntime, open_coach
from bot.storage import db as db_module
from bot.storage.db import DatabaseUnavailable
from bot.telegram import intake
from tests.conftest import FakeClock, deadline
from tests.e2e import Conversation, texts
from tests.fakebot import FakeBotApi
from tests.test_cli import api_in_a_thread, free_port, home, run  # noqa: F401  (home: a fixture)

LOCKED = "database is locked"
ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's writer, as SQLite sees it: a connection holding the write lock."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield holder
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()


@pytest.fixture
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer's lock waited out in 3 tries of 50 ms, not 6 of 5 s."""
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(db_module, "LOCKED_TRIES", 3)


def locked_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "event=database_locked" in r.getMessage()]


def webhook_settings(port: int, webhook: bool) -> dict[str, object]:
    if not webhook:
        return {}
    return {"webhook_url": f"http://127.0.0.1:{port}/hook", "webhook_port": port}


# --- the database locked or read-only at start-up ------------------------------------------


@pytest.mark.parametrize("webhook", [False, True], ids=["polling", "webhook"])
async def test_start_up_waits_out_another_writer_and_then_serves(
    api: FakeBotApi,
    make_settings: Callable[..., Settings],
    clock: FakeClock,
    kb: KnowledgeBase,
    classifier: ObjectionClassifier,
    db_path: Path,
    short_waits: None,
    caplog: pytest.LogCaptureFixture,
    unused_tcp_port: int,
    webhook: bool,
) -> None:
    settings = make_settings(**webhook_settings(unused_tcp_port, webhook))
    coach = await open_coach(settings, clock=clock, kb=kb, classifier=classifier)
    runtime = BotRuntime(settings, coach, clock=clock)
    try:
        with write_lock(db_path):
            starting = asyncio.create_task(runtime.start(webhook=webhook, poll_timeout=1))
            await deadline(lambda: len(locked_lines(caplog)) >= 1)
            assert not starting.done()  # waiting, not failed
        await asyncio.wait_for(starting, 10)  # the lock let go: it goes on
        assert locked_lines(caplog)[0] == "event=database_locked attempt=1 action=wait"
        chat = Conversation(api, runtime)
        if webhook:
            update = api.push_message(7, "/help", enqueue=False)
            assert await api.post_update(None, update) == 200
            await chat._wait_done(1)
            assert "What I can do" in texts(api.sent_messages(7))
        else:
            assert "What I can do" in texts(await chat.say(7, "/help"))
    finally:
        await runtime.stop()


@pytest.mark.parametrize("webhook", [False, True], ids=["polling", "webhook"])
async def test_every_start_up_write_waits_out_a_lock_not_only_the_first(
    api: FakeBotApi,
    make_settings: Callable[..., Settings],
    clock: FakeClock,
    kb: KnowledgeBase,
    classifier: ObjectionClassifier,
    short_waits: None,
    caplog: pytest.LogCaptureFixture,
    unused_tcp_port: int,
    webhook: bool,
) -> None:
    # The poller's lock and the recruiters' digests are written after the first write went
    # through: another writer may come in between. Each of those transactions meets a lock
    # once.
    settings = make_settings(**webhook_settings(unused_tcp_port, webhook))
    coach = await open_coach(settings, clock=clock, kb=kb, classifier=classifier)
    db = coach.store.db
    real_atomic = db.atomic
    met: list[str] = []

    async def atomic(work: Any, *args: Any, **kw: Any) -> Any:
        name = getattr(work, "__name__", "?")
        if name in ("take", "plan") and name not in met:  # the poller's lock, the digests
            met.append(name)
            raise sqlite3.OperationalError(LOCKED)
        return await real_atomic(work, *args, **kw)

    db.atomic = atomic  # type: ignore[method-assign]
    runtime = BotRuntime(settings, coach, clock=clock)
    try:
        await runtime.start(webhook=webhook, poll_timeout=1)
        db.atomic = real_atomic  # type: ignore[method-assign]
        assert met == (["plan"] if webhook else ["take", "plan"])
        assert len(locked_lines(caplog)) == len(met)  # each waited once, then went through
        if not webhook:
            assert runtime._holds_lock
    finally:
        db.atomic = real_atomic  # type: ignore[method-assign]
        await runtime.stop()


def migrated(path: Path) -> Path:
    async def go() -> None:
        db = await db_module.Database.open(path)
        await db.close()

    asyncio.run(go())
    return path


@pytest.mark.parametrize("argv", [["run"], ["run", "--webhook"]], ids=["polling", "webhook"])
def test_a_database_that_stays_locked_is_one_line_and_exit_1(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    short_waits: None,
    caplog: pytest.LogCaptureFixture,
    argv: list[str],
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", "http://127.0.0.1:9/bot")  # never reached
    if "--webhook" in argv:  # set, it would be the mode anyway
        monkeypatch.setenv("WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("WEBHOOK_PORT", str(free_port()))
    path = migrated(home / "coach.sqlite3")
    with write_lock(path), stopped_after(60):  # never served: one that would, fails
        code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err.startswith(f"error: cannot use the database at {path}: ") and err.count("\n") == 1
    assert "kept it locked" in err and LOCKED in err
    assert len(locked_lines(caplog)) == 2  # one line per wait, then the error
    assert "Traceback" not in err and not any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize("argv", [["run"], ["run", "--webhook"]], ids=["polling", "webhook"])
def test_a_read_only_database_at_start_up_is_one_line_and_exit_1(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    # chmod 444 means nothing to root (the tests' user here): SQLite is made to open the file
    # read-only itself, which is what it does with a file it may not write.
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", "http://127.0.0.1:9/bot")  # never reached
    if "--webhook" in argv:  # set, it would be the mode anyway
        monkeypatch.setenv("WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("WEBHOOK_PORT", str(free_port()))
    path = migrated(home / "coach.sqlite3")
    connect = aiosqlite.connect
    monkeypatch.setattr(
        db_module.aiosqlite,
        "connect",
        lambda database, **kw: connect(f"file:{database}?mode=ro", uri=True, **kw),
    )
    with stopped_after(60):  # never served: one that would, fails
        code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err == (
        f"error: cannot use the database at {path}: the file or its folder is read-only"
        " (attempt to write a readonly database)\n"
    )


async def test_at_start_names_the_reason_and_lets_other_errors_through(
    db: db_module.Database,
) -> None:
    async def broken() -> None:
        raise sqlite3.DatabaseError("file is not a database")

    with pytest.raises(DatabaseUnavailable, match="file is not a database") as refused:
        await db.at_start(broken)
    assert refused.value.reason == "file is not a database"

    async def bug() -> None:
        raise KeyError("not the database's")

    with pytest.raises(KeyError):
        await db.at_start(bug)
    await db.at_start(db.probe)  # a writable file: the probe changes nothing
    assert await db.version() == db_module.LATEST_VERSION


# --- the database file deleted or replaced while the bot runs -------------------------------


def delete_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def lost_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "event=database_lost" in r.getMessage()]


async def test_a_database_deleted_while_polling_stops_acknowledging_and_loses_nothing(
    api: FakeBotApi, running_bot: Any, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.say(7, "/start")
        delete_database(db_path)
        api.push_message(7, "/help")
        await asyncio.wait_for(runtime.halted.wait(), 10)
        [line] = lost_lines(caplog)
        assert line.levelno == logging.ERROR and line.exc_info is None
        assert 'reason="the database file is gone"' in line.getMessage()
        assert isinstance(runtime.fatal, DatabaseUnavailable)
        assert (
            str(runtime.fatal) == f"cannot use the database at {db_path}: the database file is gone"
        )
        assert api.pending_updates == 1  # never acknowledged: Telegram still holds it
        assert runtime.alive()["poller"] is False
        ok, detail = await runtime.health()
        assert not ok and "database: the database file is gone" in detail
        assert chat.done == 1  # and not handled into the deleted file either
    # The next start (a new file, or a restored copy) gets it from Telegram and answers.
    async with running_bot() as again:
        await api.wait_for("sendMessage", lambda c: "What I can do" in c.params["text"])
        await api.wait_updates_confirmed()
    assert again.fatal is None


async def test_a_database_deleted_while_serving_a_webhook_refuses_updates(
    api: FakeBotApi,
    running_bot: Any,
    db_path: Path,
    caplog: pytest.LogCaptureFixture,
    unused_tcp_port: int,
) -> None:
    async with running_bot(webhook=True, **webhook_settings(unused_tcp_port, True)) as runtime:
        delete_database(db_path)
        update = api.push_message(7, "/start", enqueue=False)
        assert await api.post_update(None, update) == 503  # Telegram will send it again
        assert runtime.halted.is_set() and len(lost_lines(caplog)) == 1
        assert await api.post_update(None, update) == 503  # and again: one line all the same
        assert len(lost_lines(caplog)) == 1
    assert not api.sent_messages(7)


async def test_a_database_deleted_while_nothing_comes_in_is_noticed(
    api: FakeBotApi,
    running_bot: Any,
    db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    unused_tcp_port: int,
) -> None:
    monkeypatch.setattr("bot.runtime.WATCH_SECONDS", 0.01)
    async with running_bot(webhook=True, **webhook_settings(unused_tcp_port, True)) as runtime:
        assert not runtime.halted.is_set()
        delete_database(db_path)
        await asyncio.wait_for(runtime.halted.wait(), 10)


async def test_lost_tells_a_deleted_file_from_one_moved_over_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "coach.sqlite3"
    db = await db_module.Database.open(path)
    try:
        assert db.lost() is None and db.usable() is None
        other = await db_module.Database.open(tmp_path / "restored.sqlite3")
        await other.close()
        (tmp_path / "restored.sqlite3").replace(path)  # a copy put in its place
        assert db.lost() == "the database file was replaced by another file"
        assert db.usable() == db.lost()
        path.unlink()
        assert db.lost() == "the database file is gone"
    finally:
        await db.close()
    memory = await db_module.Database.open(":memory:")
    assert memory.lost() is None and memory.usable() is None
    await memory.close()


@contextlib.contextmanager
def stopped_after(seconds: float) -> Iterator[None]:
    """SIGTERM to this process if the block has not ended within `seconds` (`main` stops
    cleanly on it), so a bot that would serve forever fails the test instead of hanging."""
    with sigterm_when(lambda: False, seconds):
        yield


def test_run_stops_with_one_line_and_exit_1_when_its_database_folder_is_deleted(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    classifier: ObjectionClassifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = home / "data"
    folder.mkdir()
    classifier.model.save(model_path(folder))
    monkeypatch.setenv("DATABASE_PATH", str(folder / "coach.sqlite3"))
    with api_in_a_thread() as (api, loop):
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", api.base_url)

        async def delete_when_polling() -> None:
            await api.wait_for("deleteWebhook", timeout=30)
            shutil.rmtree(folder)
            api.push_message(5, "/start", "Kay")

        deleted = asyncio.run_coroutine_threadsafe(delete_when_polling(), loop)
        with stopped_after(60):  # should it serve on regardless: stopped, and the test fails
            code, out, err = run(capsys, "run")
        deleted.result(10)
        assert api.pending_updates == 1
    assert (code, out) == (1, "")
    assert err == (
        f"error: cannot use the database at {folder / 'coach.sqlite3'}: the database file is gone\n"
    )
    assert len(lost_lines(caplog)) == 1


# --- health and metrics --------------------------------------------------------------------


async def test_a_component_waiting_to_be_restarted_is_not_healthy(
    api: FakeBotApi,
    running_bot: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("bot.runtime.FIRST_RESTART_SECONDS", 2.0)
    async with running_bot() as runtime:
        runs = 0
        back = asyncio.Event()

        async def fragile() -> None:
            nonlocal runs
            runs += 1
            if runs == 1:
                raise RuntimeError("boom")
            back.set()
            await asyncio.Event().wait()

        runtime._supervise("fragile", fragile)
        await deadline(lambda: "event=component_died component=fragile" in caplog.text)
        ok, detail = await runtime.health()  # dead, its restart two seconds away
        assert not ok and "fragile: restarting" in detail
        body, _ = await runtime.exposition()
        assert b'coach_component_up{component="fragile"} 0.0' in body
        await asyncio.wait_for(back.wait(), 10)
        ok, detail = await runtime.health()
        assert ok and "fragile: running" in detail
        body, _ = await runtime.exposition()
        assert b'coach_component_up{component="fragile"} 1.0' in body


def error_count(body: bytes, where: str) -> float:
    prefix = f'coach_errors_total{{where="{where}"}} '.encode()
    lines = [line for line in body.splitlines() if line.startswith(prefix)]
    return float(lines[0][len(prefix) :]) if lines else 0.0


async def test_errors_count_failed_handlers_unparseable_updates_and_dispatch_rounds(
    api: FakeBotApi,
    running_bot: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        body, _ = await runtime.exposition()
        assert error_count(body, "handling_failed") == 0
        handle = runtime.coach.handle

        async def broken(*args: Any, **kw: Any) -> Any:
            raise RuntimeError("engine bug")

        monkeypatch.setattr(runtime.coach, "handle", broken)
        await chat.say(7, "/help")  # the apology goes out
        monkeypatch.setattr(runtime.coach, "handle", handle)
        api.push_update(api.make_update(poll={"id": "1", "question": "?"}))
        await chat.say(7, "/help")  # handled after the unparseable one
        store = runtime.coach.store
        owners = store.claim_owners

        async def locked() -> list[str]:
            monkeypatch.setattr(store, "claim_owners", owners)
            raise sqlite3.OperationalError(LOCKED)

        monkeypatch.setattr(store, "claim_owners", locked)
        runtime.dispatcher.wake()
        await deadline(lambda: "event=dispatch_round_failed" in caplog.text)
        body, _ = await runtime.exposition()
    assert error_count(body, "handling_failed") == 1
    assert error_count(body, "unparseable") == 1
    assert error_count(body, "dispatch_round") == 1


async def test_the_outbox_is_measured_apart_from_pending_nudges(
    api: FakeBotApi, running_bot: Any
) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        body, _ = await runtime.exposition()
        assert b'coach_queue{queue="outbox"} 0.0' in body
        api.fail_next("sendMessage", 502, chat_id=7)
        # Telegram did not take the first of /help's two messages: both wait in the outbox.
        await chat.say(7, "/help")
        body, _ = await runtime.exposition()
    assert b'coach_queue{queue="outbox"} 2.0' in body
    assert b'coach_queue{queue="nudges_pending"} 0.0' in body


# --- the Bot API unreachable at start --------------------------------------------------------


def unreachable_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "event=bot_api_unreachable" in r.getMessage()]


@pytest.mark.parametrize(
    ("webhook", "method"), [(False, "getMe"), (True, "setWebhook")], ids=["polling", "webhook"]
)
async def test_start_up_waits_for_the_bot_api_one_line_a_step(
    api: FakeBotApi,
    running_bot: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    unused_tcp_port: int,
    webhook: bool,
    method: str,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.runtime")
    waits: list[int] = []
    monkeypatch.setattr(intake, "backoff", lambda failures: waits.append(failures) or 0.01)
    api.fail_next(method, 502, times=3)
    settings = webhook_settings(unused_tcp_port, webhook)
    async with running_bot(webhook=webhook, **settings) as runtime:
        lines = unreachable_lines(caplog)
        assert [r.getMessage() for r in lines] == [
            f"event=bot_api_unreachable during=start method={method} failures={n}"
            " retry_in=0s error=NetworkError"
            for n in (1, 2, 3)
        ]
        assert all(r.levelno == logging.WARNING and r.exc_info is None for r in lines)
        assert waits == [1, 2, 3]  # the poller's back-off, step by step
        assert "event=bot_api_back failures=3" in caplog.text
        assert runtime.start_failures == 0
        chat = Conversation(api, runtime)
        update = api.push_message(7, "/help", enqueue=webhook is False)
        if webhook:
            assert await api.post_update(None, update) == 200
            await chat._wait_done(1)
        else:
            await chat._wait_done(1)
    assert "What I can do" in texts(api.sent_messages(7))


async def test_a_refusal_at_start_up_is_not_waited_out(
    api: FakeBotApi,
    make_settings: Callable[..., Settings],
    clock: FakeClock,
    kb: KnowledgeBase,
    classifier: ObjectionClassifier,
) -> None:
    api.fail_next("setWebhook", 400, "Bad Request: bad webhook: HTTPS url must be provided")
    settings = make_settings(webhook_url="http://example.invalid/hook", webhook_port=free_port())
    coach = await open_coach(settings, clock=clock, kb=kb, classifier=classifier)
    runtime = BotRuntime(settings, coach, clock=clock)
    try:
        with pytest.raises(BadRequest, match=r"(?i)https url must be provided"):
            await runtime.start(webhook=True)
        assert runtime.start_failures == 0
    finally:
        await runtime.stop()


@contextlib.contextmanager
def sigterm_when(check: Callable[[], bool], seconds: float = 30.0) -> Iterator[None]:
    """SIGTERM to this process as soon as `check()` holds (polled), or after `seconds`."""
    done = threading.Event()

    def stop_then() -> None:
        end = time.monotonic() + seconds
        while not done.is_set() and not check() and time.monotonic() < end:
            done.wait(0.01)
        if not done.is_set():
            os.kill(os.getpid(), signal.SIGTERM)

    stopper = threading.Thread(target=stop_then, daemon=True)
    stopper.start()
    try:
        yield
    finally:
        done.set()
        stopper.join(10)


def test_run_waits_for_an_unreachable_bot_api_until_stopped(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", f"http://127.0.0.1:{free_port()}/bot")
    monkeypatch.setattr(intake, "backoff", lambda failures: 0.01)
    with sigterm_when(lambda: len(unreachable_lines(caplog)) >= 3):
        code, out, err = run(capsys, "run")
    # Nothing listened: it kept trying, one line a step, and SIGTERM stopped it cleanly.
    assert (code, out, err) == (0, "", "")
    lines = unreachable_lines(caplog)
    assert len(lines) >= 3 and all(r.exc_info is None for r in lines)
    assert "failures=3 " in lines[2].getMessage()


# --- settings that cannot be served ---------------------------------------------------------


@contextlib.contextmanager
def port_taken() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def lock_rows(path: Path) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT * FROM locks").fetchall()


@pytest.mark.parametrize(
    ("argv", "names"),
    [(["run"], "METRICS"), (["run", "--webhook"], "WEBHOOK")],
    ids=["metrics", "webhook"],
)
def test_a_port_in_use_is_one_line_and_exit_1(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    names: str,
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", "http://127.0.0.1:9/bot")  # never reached
    if names == "WEBHOOK":  # set, it would be the mode anyway
        monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.com/hook")
    with port_taken() as port:
        monkeypatch.setenv(f"{names}_PORT", str(port))
        with stopped_after(60):  # never served: one that would, fails
            code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err == (
        f"error: cannot listen on 127.0.0.1:{port} ({names}_LISTEN, {names}_PORT):"
        " Address already in use\n"
    )
    assert lock_rows(home / "coach.sqlite3") == []  # the poller's lock let go again


def test_an_address_not_of_this_machine_is_one_line_and_exit_1(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    address = "192.0.2.1"  # TEST-NET-1 (RFC 5737): never a machine's own
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", "http://127.0.0.1:9/bot")  # never reached
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.com/hook")
    monkeypatch.setenv("WEBHOOK_LISTEN", address)
    monkeypatch.setenv("WEBHOOK_PORT", "8443")
    with stopped_after(60):  # never served: one that would, fails
        code, out, err = run(capsys, "run", "--webhook")
    assert (code, out) == (1, "")
    assert err == (
        f"error: cannot listen on {address}:8443 (WEBHOOK_LISTEN, WEBHOOK_PORT):"
        " Cannot assign requested address\n"
    )


async def test_health_says_starting_while_the_bot_api_is_awaited(
    api: FakeBotApi,
    make_settings: Callable[..., Settings],
    clock: FakeClock,
    kb: KnowledgeBase,
    classifier: ObjectionClassifier,
    monkeypatch: pytest.MonkeyPatch,
    unused_tcp_port: int,
) -> None:
    monkeypatch.setattr(intake, "backoff", lambda failures: 0.01)
    api.fail_next("getMe", 502, times=1000)
    settings = make_settings(metrics_port=unused_tcp_port)
    coach = await open_coach(settings, clock=clock, kb=kb, classifier=classifier)
    runtime = BotRuntime(settings, coach, clock=clock)
    starting = asyncio.create_task(runtime.start(poll_timeout=1))
    try:
        await deadline(lambda: runtime.start_failures >= 2)
        async with httpx.AsyncClient() as http:
            health = await http.get(f"http://127.0.0.1:{unused_tcp_port}/healthz")
        assert health.status_code == 503
        assert health.text.startswith("starting: bot api unreachable, ")
    finally:
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await runtime.stop()


# --- backups where they cannot go -----------------------------------------------------------


def test_a_backup_over_the_live_database_is_refused(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(capsys, "recruiters", "add", "77")[0] == 0
    live = home / "coach.sqlite3"
    (home / "link.sqlite3").symlink_to(live)
    os.link(live, home / "hard.sqlite3")  # a second name for the same file, not a link to it
    targets = ("coach.sqlite3", "./link.sqlite3", "hard.sqlite3")
    for target in (str(live), *targets, *(f"{live}-{end}" for end in ("wal", "shm", "journal"))):
        code, out, err = run(capsys, "backup", target)
        assert (code, out) == (1, ""), target
        said = Path(target)
        assert err == f"error: {said} is the live database: give another file or a folder\n"
    assert not list(home.glob("*.partial"))
    with contextlib.closing(sqlite3.connect(live)) as conn:  # untouched
        assert conn.execute("SELECT user_id FROM recruiters").fetchall() == [(77,)]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_backup_where_no_file_can_be_is_one_line(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    (home / "a-file").write_text("x")
    target = home / "a-file" / "x"
    code, out, err = run(capsys, "backup", str(target))
    assert (code, out) == (1, "")
    assert err == f"error: cannot write the backup to {target}: Not a directory\n"


# --- logs ------------------------------------------------------------------------------------

LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}
KEY_VALUE = re.compile(r'event=\w+( \w+=("[^"]*"|[^\s"]+))*')


def log_formats() -> list[tuple[str, int, str]]:
    """Every format string the bot's modules hand their logger: (file, line, format)."""
    found = []
    for source in sorted((ROOT / "bot").rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOG_METHODS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "log"
            ):
                first = node.args[0] if node.args else None
                text = first.value if isinstance(first, ast.Constant) else repr(first)
                found.append((source.name, node.lineno, str(text)))
    return found


def test_every_log_line_of_the_bot_is_key_value() -> None:
    formats = log_formats()
    assert len(formats) > 40  # the walk found them
    # With any value put in (each %-placeholder one word), the line parses as key=value.
    filled = [(f, n, re.sub(r"%[-\d.]*[sdfr]", "v", text)) for f, n, text in formats]
    loose = [(f, n, text) for f, n, text in filled if not KEY_VALUE.fullmatch(text)]
    assert loose == []


def test_quoted_values_keep_a_line_one_line() -> None:
    assert logs.quoted("RuntimeError") == "RuntimeError"
    assert logs.quoted("Bad Request: chat not found") == '"Bad Request: chat not found"'
    assert logs.quoted('say "hi"\nthen=go') == '"say \\"hi\\"\\nthen=go"'
    assert logs.quoted("") == '""'
    assert logs.quoted(RuntimeError("down")) == "down"


async def test_each_update_is_one_debug_line_with_its_id_and_a_hashed_user(
    api: FakeBotApi, running_bot: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.runtime")
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        update = api.push_message(4242, "I'm scared I'll freeze", enqueue=False)
        api.push_update(update)
        await chat._wait_done(1)
        await deadline(lambda: "event=update " in caplog.text)
    [line] = [r for r in caplog.records if r.getMessage().startswith("event=update ")]
    assert line.levelno == logging.DEBUG
    text = line.getMessage()
    assert re.fullmatch(
        rf"event=update update_id={update['update_id']} kind=message"
        rf" user={logs.user_ref(4242)} ms=\d+\.\d",
        text,
    )
    everything = "\n".join(r.getMessage() for r in caplog.records)
    hidden = everything.replace(str(update["update_id"]), "").replace(logs.user_ref(4242), "")
    assert "4242" not in hidden  # the user only as a keyed hash
    assert "freeze" not in everything
