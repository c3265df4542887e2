"""Faults an operator meets running the bot for months, each one clear line (issue 9's
follow-up): a database locked or read-only at start-up, its file deleted while the bot runs,
components waiting to be restarted, the Bot API down at start, settings that cannot be
served, malformed updates."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bot.config import Settings
from bot.knowledge.base import KnowledgeBase
from bot.knowledge.classifier import ObjectionClassifier
from bot.runtime import BotRuntime, open_coach
from bot.storage import db as db_module
from bot.storage.db import DatabaseUnavailable
from tests.conftest import FakeClock, deadline
from tests.e2e import Conversation, texts
from tests.fakebot import FakeBotApi
from tests.test_cli import free_port, home, run  # noqa: F401  (home: a fixture)

LOCKED = "database is locked"


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
        assert locked_lines(caplog)[0] == "event=database_locked attempt=1; waiting"
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
    monkeypatch.setenv("WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("WEBHOOK_PORT", str(free_port()))
    path = migrated(home / "coach.sqlite3")
    with write_lock(path):
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
    monkeypatch.setenv("WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("WEBHOOK_PORT", str(free_port()))
    path = migrated(home / "coach.sqlite3")
    connect = aiosqlite.connect
    monkeypatch.setattr(
        db_module.aiosqlite,
        "connect",
        lambda database, **kw: connect(f"file:{database}?mode=ro", uri=True, **kw),
    )
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
