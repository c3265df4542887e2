"""The operator's side, in-process: backups, log redaction, the database's error paths and the
runtime's supervision of its components."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from telegram.error import InvalidToken

from bot import logs
from bot.config import Settings
from bot.engine import when
from bot.engine.model import State
from bot.storage import backup as backups
from bot.storage import db as db_module
from bot.storage.db import Database, DatabaseUnavailable
from bot.storage.store import Store
from tests.conftest import FakeClock, deadline
from tests.e2e import Conversation, texts
from tests.fakebot import FakeBotApi

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


# --- backups ---------------------------------------------------------------------------------


async def seeded(path: Path) -> Database:
    db = await Database.open(path)
    store = Store(db)
    for user in range(1, 4):
        await store.commit(user, user, State(), [], NOW)
    return db


def users_in(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT user_id FROM users ORDER BY user_id")]


async def test_a_backup_into_a_folder_is_a_whole_dated_copy(tmp_path: Path) -> None:
    db = await seeded(tmp_path / "live.sqlite3")
    try:
        made = await backups.backup(db, tmp_path / "copies")
    finally:
        await db.close()
    assert made.parent == tmp_path / "copies"
    assert made.name.startswith("interview_coach-") and made.suffix == ".sqlite3"
    # Only the finished copy is left: no half-written file beside it.
    assert [p.name for p in made.parent.iterdir()] == [made.name]
    assert users_in(made) == [1, 2, 3]


async def test_a_backup_to_a_file_name_writes_that_file(tmp_path: Path) -> None:
    db = await seeded(tmp_path / "live.sqlite3")
    try:
        made = await backups.backup(db, tmp_path / "deep" / "er" / "copy.sqlite3")
    finally:
        await db.close()
    assert made == tmp_path / "deep" / "er" / "copy.sqlite3"
    assert users_in(made) == [1, 2, 3]


async def test_backup_main_prints_where_the_copy_went(tmp_path: Path) -> None:
    db = await seeded(tmp_path / "live.sqlite3")
    await db.close()
    out = io.StringIO()
    assert await backups.backup_main(tmp_path / "live.sqlite3", None, out) == 0
    made = Path(out.getvalue().strip())
    assert made.parent == tmp_path / "backups"  # beside the database by default
    assert users_in(made) == [1, 2, 3]


@pytest.mark.usefixtures("machine_in_tokyo")
def test_the_name_says_when_in_utc() -> None:
    berlin_noon = datetime(2026, 11, 23, 12, 0, 5).astimezone(UTC)
    assert backups.backup_name(berlin_noon) == (
        f"interview_coach-{berlin_noon:%Y%m%d-%H%M%S}.sqlite3"
    )
    assert backups.backup_name(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == (
        "interview_coach-20260102-030405.sqlite3"
    )


def test_prune_keeps_the_newest_and_nothing_else_of_ours(tmp_path: Path) -> None:
    names = [f"interview_coach-2026010{d}-000000.sqlite3" for d in range(1, 6)]
    for name in [*names, "notes.txt", "other.sqlite3"]:
        (tmp_path / name).write_text("x")
    removed = backups.prune(tmp_path, 2)
    assert sorted(p.name for p in removed) == names[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*names[3:], "notes.txt", "other.sqlite3"]
    )
    assert sorted(p.name for p in backups.prune(tmp_path, 0)) == names[3:]


def test_prune_lets_a_copy_deleted_meanwhile_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The daily backup and an operator (or a second bot on the folder) prune the same copies:
    # one already gone by the time we delete it is not an error.
    kept = tmp_path / "interview_coach-20260105-000000.sqlite3"
    kept.write_text("x")
    gone = tmp_path / "interview_coach-20260101-000000.sqlite3"  # listed, then deleted
    listed = Path.glob
    monkeypatch.setattr(Path, "glob", lambda self, pattern: [gone, *listed(self, pattern)])
    assert backups.prune(tmp_path, 1) == [gone]
    assert kept.exists()


@pytest.mark.usefixtures("machine_in_tokyo")
def test_the_next_backup_is_strictly_later() -> None:
    at = time(3, 0)
    assert backups.next_backup(datetime(2026, 11, 23, 2, 59, tzinfo=UTC), at) == datetime(
        2026, 11, 23, 3, 0, tzinfo=UTC
    )
    # At 03:00 exactly, today's is done: tomorrow's.
    assert backups.next_backup(datetime(2026, 11, 23, 3, 0, tzinfo=UTC), at) == datetime(
        2026, 11, 24, 3, 0, tzinfo=UTC
    )
    assert backups.next_backup(datetime(2026, 11, 23, 23, 0, tzinfo=UTC), at) == datetime(
        2026, 11, 24, 3, 0, tzinfo=UTC
    )
    # 16:00 UTC is already the 24th in Tokyo: the day is UTC's, not the machine's.
    assert backups.next_backup(datetime(2026, 11, 23, 16, 0, tzinfo=UTC), time(23, 0)) == (
        datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
    )


async def test_daily_backs_up_when_the_time_comes_and_stops_when_asked(tmp_path: Path) -> None:
    db = await seeded(tmp_path / "live.sqlite3")
    folder = tmp_path / "daily"
    stop = asyncio.Event()
    # A clock a moment before 04:00: the first copy is due at once.
    almost = datetime(2026, 11, 23, 3, 59, 59, 980000, tzinfo=UTC)
    task = asyncio.create_task(backups.daily(db, folder, 1, time(4, 0), stop, clock=lambda: almost))
    try:
        await deadline(lambda: folder.is_dir() and any(folder.glob("interview_coach-*")))
        stop.set()
        await asyncio.wait_for(task, 10)
    finally:
        stop.set()
        await db.close()
    copies = list(folder.glob("interview_coach-*.sqlite3"))
    assert len(copies) == 1  # keep=1: older ones pruned as new ones come
    assert users_in(copies[0]) == [1, 2, 3]


async def test_backups_into_a_new_nested_folder_and_again_into_it(tmp_path: Path) -> None:
    db = await seeded(tmp_path / "live.sqlite3")
    try:
        first = await backups.backup(db, tmp_path / "a" / "b")
        (tmp_path / "a" / "b" / first.name).rename(tmp_path / "a" / "b" / "kept.sqlite3")
        second = await backups.backup(db, tmp_path / "a" / "b")
    finally:
        await db.close()
    assert first.parent == second.parent == tmp_path / "a" / "b"
    assert users_in(second) == [1, 2, 3]


async def test_daily_prunes_to_keep_and_says_what_it_did(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.storage.backup")
    db = await seeded(tmp_path / "live.sqlite3")
    folder = tmp_path / "daily"
    folder.mkdir()
    old = [f"interview_coach-2026010{d}-000000.sqlite3" for d in (1, 2, 3)]
    for name in old:
        (folder / name).write_text("an older copy")
    stop = asyncio.Event()
    almost = datetime(2026, 11, 23, 3, 59, 59, 980000, tzinfo=UTC)
    task = asyncio.create_task(backups.daily(db, folder, 2, time(4, 0), stop, clock=lambda: almost))
    try:
        await deadline(lambda: any(r.name == "bot.storage.backup" for r in caplog.records))
        stop.set()
        await asyncio.wait_for(task, 10)
    finally:
        stop.set()
        await db.close()
    [new] = [p.name for p in folder.iterdir() if p.name not in old]
    assert sorted(p.name for p in folder.iterdir()) == sorted([old[2], new])
    first = next(r for r in caplog.records if r.name == "bot.storage.backup")
    assert first.getMessage() == f"event=backup file={new} pruned=2"


async def test_a_failed_backup_is_logged_and_the_next_one_still_comes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await seeded(tmp_path / "live.sqlite3")
    calls = 0
    real = backups.backup

    async def flaky(database: Database, target: Path) -> Path:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk full")
        return await real(database, target)

    monkeypatch.setattr(backups, "backup", flaky)
    stop = asyncio.Event()
    almost = datetime(2026, 11, 23, 3, 59, 59, 990000, tzinfo=UTC)
    task = asyncio.create_task(
        backups.daily(db, tmp_path / "d", 3, time(4, 0), stop, clock=lambda: almost)
    )
    try:
        await deadline(lambda: calls >= 2)
        stop.set()
        await asyncio.wait_for(task, 10)
    finally:
        stop.set()
        await db.close()
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failed[0].getMessage() == "event=backup_failed"
    assert failed[0].exc_info is not None and str(failed[0].exc_info[1]) == "disk full"
    assert list((tmp_path / "d").glob("interview_coach-*.sqlite3"))


# --- logs ------------------------------------------------------------------------------------


@pytest.fixture
def clean_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "_secrets", set())
    monkeypatch.setattr(logs, "_key", b"interview-coach")


def test_a_token_and_its_secret_half_are_redacted(clean_logs: None) -> None:
    logs.add_secret("123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw")
    line = (
        "POST https://api.telegram.org/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe"
        " rejected AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    )
    assert logs.redact(line) == (
        "POST https://api.telegram.org/bot[redacted]/getMe rejected [redacted]"
    )


def test_url_quoted_secrets_are_redacted_and_short_fragments_are_not(clean_logs: None) -> None:
    logs.add_secret("se cret/with+symbols")
    assert logs.redact("x=se%20cret%2Fwith%2Bsymbols") == "x=[redacted]"
    logs.add_secret("1:ab")  # both halves too short to be told from ordinary words
    logs.add_secret("")
    logs.add_secret(None)
    assert logs.redact("tab 1:ab about") == "tab 1:ab about"


def test_user_refs_are_stable_hide_the_id_and_depend_on_the_key(
    clean_logs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = logs.user_ref(424242)
    assert first == logs.user_ref(424242) and first != logs.user_ref(424243)
    assert "424242" not in first and len(first) == 12
    monkeypatch.setattr(logging, "basicConfig", lambda **_: None)
    logs.setup("INFO", ["123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"])
    assert logs.user_ref(424242) != first  # keyed with the token once there is one


def test_the_formatter_redacts_tracebacks_too(clean_logs: None) -> None:
    logs.add_secret("webhook-secret-123")
    try:
        raise RuntimeError("bad header webhook-secret-123")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        import sys

        record.exc_info = sys.exc_info()
    text = logs.RedactingFormatter("%(message)s").format(record)
    assert "webhook-secret-123" not in text
    assert "bad header [redacted]" in text


def test_setup_formats_every_handler_and_quiets_httpx(
    clean_logs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    monkeypatch.setattr(root, "handlers", [handler])
    httpx_logger = logging.getLogger("httpx")
    monkeypatch.setattr(httpx_logger, "level", logging.NOTSET)
    logs.setup("INFO", ["987654:ZZsecretZZsecretZZ"])
    assert isinstance(handler.formatter, logs.RedactingFormatter)
    assert httpx_logger.level == logging.WARNING
    assert logs.redact("ZZsecretZZsecretZZ") == "[redacted]"


# --- the database's error paths ------------------------------------------------------------


async def test_a_folder_that_is_a_file_is_one_clear_reason(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    with pytest.raises(DatabaseUnavailable, match="its folder is not a folder"):
        await Database.open(tmp_path / "data" / "coach.sqlite3")


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "coach.sqlite3"
    path.write_bytes(b"this is not an SQLite file, just some text" * 100)
    with pytest.raises(DatabaseUnavailable, match="cannot use the database at"):
        await Database.open(path)


async def test_usable_notices_a_deleted_file(tmp_path: Path) -> None:
    path = tmp_path / "coach.sqlite3"
    db = await Database.open(path)
    try:
        assert db.usable() is None
        path.unlink()
        assert db.usable() == "the database file is gone"
    finally:
        await db.close()
    memory = await Database.open(":memory:")
    try:
        assert memory.usable() is None
    finally:
        await memory.close()


async def test_opening_without_migrating_checks_the_file_answers(tmp_path: Path) -> None:
    path = tmp_path / "coach.sqlite3"
    (await Database.open(path)).conn  # noqa: B018 (created and migrated)
    db = await Database.open(path, migrate=False)
    try:
        assert await db.version() > 0
    finally:
        await db.close()


async def test_a_failed_transaction_is_rolled_back_whole(db: Database) -> None:
    def half(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO users (user_id, chat_id, state, created_at, updated_at)"
            " VALUES (1, 1, '{}', 0, 0)"
        )
        raise ValueError("second statement failed")

    with pytest.raises(ValueError):
        await db.atomic(half)
    assert await db.all("SELECT * FROM users") == []
    # And the connection is usable: no transaction left open.
    assert await db.write("DELETE FROM users") == 0


async def test_the_database_folder_is_made_however_deep(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "coach.sqlite3"
    db = await Database.open(path)
    try:
        assert path.exists()
    finally:
        await db.close()


async def test_a_refused_file_names_the_path_and_sqlites_reason(tmp_path: Path) -> None:
    path = tmp_path / "coach.sqlite3"
    path.write_bytes(b"this is not an SQLite file, just some text" * 100)
    with pytest.raises(DatabaseUnavailable) as caught:
        await Database.open(path)
    assert str(caught.value) == f"cannot use the database at {path}: file is not a database"


async def test_a_folder_that_cannot_be_made_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    path = tmp_path / "data" / "coach.sqlite3"
    with pytest.raises(DatabaseUnavailable) as caught:
        await Database.open(path)
    assert str(caught.value).startswith(f"cannot use the database at {path}: its folder")


def test_an_error_without_text_is_named_by_its_type() -> None:
    assert db_module._reason(sqlite3.OperationalError()) == "OperationalError"
    assert db_module._reason(sqlite3.OperationalError("disk I/O error")) == "disk I/O error"


async def test_usable_notices_a_read_only_file_or_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root every file is writable: the operating system's answer is simulated.
    path = tmp_path / "coach.sqlite3"
    db = await Database.open(path)
    try:
        for unwritable in (path, tmp_path):
            monkeypatch.setattr(
                os,
                "access",
                lambda p, mode, unwritable=unwritable: Path(p) != unwritable,
            )
            assert db.usable() == "the database file or its folder is read-only"
        monkeypatch.undo()
        assert db.usable() is None
    finally:
        await db.close()


class Failing:
    """Work that fails with SQLite's `error` on its first `times` calls (all of them when
    None), then is done; it counts its tries."""

    def __init__(self, error: str, times: int | None = None) -> None:
        self.error = error
        self.times = times
        self.tries = 0

    async def __call__(self) -> str:
        self.tries += 1
        if self.times is None or self.tries <= self.times:
            raise sqlite3.OperationalError(self.error)
        return "done"


async def test_start_up_waits_out_another_writers_lock_a_bounded_number_of_times(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    locked_twice = Failing("database is locked", times=2)
    with caplog.at_level(logging.WARNING, logger="bot.storage.db"):
        assert await db._retry_locked(locked_twice) == "done"
    assert locked_twice.tries == 3
    assert [r.getMessage() for r in caplog.records if r.name == "bot.storage.db"] == [
        "event=database_locked attempt=1 action=wait",
        "event=database_locked attempt=2 action=wait",
    ]

    always_locked = Failing("database is locked")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await db._retry_locked(always_locked)
    assert always_locked.tries == db_module.LOCKED_TRIES  # then it gives up with SQLite's error

    broken = Failing("disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk"):
        await db._retry_locked(broken)
    assert broken.tries == 1  # any other error at once


# --- the runtime's supervision -------------------------------------------------------------


async def test_the_date_parser_is_warmed_up_after_start_on_a_thread(
    api: FakeBotApi, running_bot: Any, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    calls: list[tuple[datetime, bool]] = []
    done = threading.Event()

    def warm_up(now: datetime) -> None:
        calls.append((now, threading.current_thread() is threading.main_thread()))
        done.set()

    monkeypatch.setattr(when, "warm_up", warm_up)
    async with running_bot() as runtime:
        await deadline(done.is_set)
        await deadline(lambda: runtime._warming is not None and runtime._warming.done())
        ok, detail = await runtime.health()  # a finished warm-up is not a stopped component
        assert ok and "warm" not in detail, detail
    assert calls == [(clock(), False)]


async def test_a_failed_warm_up_is_logged_and_the_bot_serves(
    api: FakeBotApi,
    running_bot: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(now: datetime) -> None:
        raise LookupError("no language data")

    monkeypatch.setattr(when, "warm_up", broken)
    async with running_bot() as runtime:
        await deadline(lambda: "event=warm_up_failed" in caplog.text)
        assert "LookupError('no language data')" in caplog.text
        sent = await Conversation(api, runtime).say(7, "/help")
        assert sent


def test_warm_up_loads_dateparser_and_the_zone_tables() -> None:
    # What the first candidate to type a time would otherwise load: afterwards the same
    # parse reads the same, and the zone lookups are cached.
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    when._places.cache_clear()
    when._zones_by_key.cache_clear()
    when.warm_up(now)
    assert when._places.cache_info().currsize == 1
    assert when._zones_by_key.cache_info().currsize == 1
    parsed = when.parse_when("maybe next friday at 3pm", now, ZoneInfo("UTC"))
    assert parsed is not None and parsed.moment == datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


async def test_a_component_that_dies_is_restarted_and_counted(
    api: FakeBotApi, running_bot: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_bot() as runtime:
        runs = 0
        restarted = asyncio.Event()

        async def fragile() -> None:
            nonlocal runs
            runs += 1
            if runs == 1:
                raise RuntimeError("boom")
            restarted.set()
            await asyncio.Event().wait()  # runs until stopped

        runtime._supervise("fragile", fragile)
        await asyncio.wait_for(restarted.wait(), 10)
        assert runs == 2
        assert "event=component_died component=fragile" in caplog.text
        body, _ = await runtime.exposition()
        assert b'coach_errors_total{where="fragile"} 1.0' in body
        ok, detail = await runtime.health()
        assert ok and "fragile: running" in detail


async def test_a_rejected_token_stops_the_component_and_fails_the_health_check(
    api: FakeBotApi, running_bot: Any
) -> None:
    async with running_bot() as runtime:

        async def rejected() -> None:
            raise InvalidToken("token rejected")

        runtime._supervise("poller-like", rejected)
        await deadline(lambda: runtime.failed is not None)
        ok, detail = await runtime.health()
        assert not ok
        assert "stopped: poller-like: token rejected" in detail
        assert "poller-like: stopped" in detail
        # The rest goes on: the conversation still answers.
        sent = await Conversation(api, runtime).say(7, "/help")
        assert "What I can do" in texts(sent)


async def test_a_lost_poller_lock_stops_polling_here(
    api: FakeBotApi, running_bot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.runtime.POLLER_RENEW_SECONDS", 0.01)
    async with running_bot() as runtime:
        store = runtime.coach.store
        # Another process took the lock over (say, after this one hung past its lease).
        await store.db.write("UPDATE locks SET owner = 'intruder' WHERE name = 'poller'")
        await deadline(lambda: runtime._tasks["poller"].done())
        assert runtime.alive()["poller"] is False


async def test_health_reports_a_database_gone(
    running_bot: Any, db_path: Path, make_settings: Callable[..., Settings]
) -> None:
    async with running_bot() as runtime:
        db_path.unlink()
        ok, detail = await runtime.health()
        assert not ok and "database: the database file is gone" in detail


# --- the intake, in-process ------------------------------------------------------------------


class ScriptedBot:
    """A bot whose getUpdates answers from a script: a list of results or exceptions."""

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.offsets: list[object] = []

    async def do_api_request(self, method: str, api_kwargs: dict[str, Any], **_: Any) -> object:
        assert method == "getUpdates"
        self.offsets.append(api_kwargs["offset"])
        step = self.script.pop(0) if self.script else []
        if isinstance(step, BaseException):
            raise step
        if not self.script:
            await asyncio.sleep(0)  # an empty long poll: let the test look
        return step


async def test_the_poller_waits_as_long_as_flood_control_asks(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    from telegram.error import RetryAfter

    from bot.telegram.intake import Poller

    bot = ScriptedBot(RetryAfter(45))
    poller = Poller(bot, Store(db), lambda: NOW, lambda updates: None, timeout=1)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    await deadline(lambda: "bot_api_unreachable" in caplog.text)
    assert "retry_in=45s" in caplog.text and "error=RetryAfter" in caplog.text
    assert poller.failures == 1
    stop.set()  # the wait ends with the stop, not after 45 s
    await asyncio.wait_for(task, 10)


def test_the_back_off_doubles_up_to_a_minute() -> None:
    from bot.telegram.intake import backoff

    assert [backoff(n) for n in (1, 2, 3, 5, 6, 7, 30)] == [2, 4, 8, 32, 60, 60, 60]


async def test_the_poller_recovers_and_stores_only_real_updates(
    db: Database, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from telegram.error import NetworkError

    from bot.telegram import intake

    monkeypatch.setattr(intake, "backoff", lambda failures: 0.01)
    caplog.set_level(logging.INFO, logger="bot.telegram.intake")
    delivered: list[list[tuple[int, str]]] = []
    update = {"update_id": 41, "message": {"text": "hi"}}
    bot = ScriptedBot(NetworkError("down"), NetworkError("down"), [update, {"no": "id"}, 7])
    poller = intake.Poller(bot, Store(db), lambda: NOW, delivered.append, timeout=1)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    await deadline(lambda: bool(delivered) and len(bot.offsets) >= 4)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert "failures=1" in caplog.text and "failures=2" in caplog.text
    assert "event=bot_api_back failures=2" in caplog.text
    assert poller.failures == 0
    # Only what has an update_id is stored and passed on; the next poll acknowledges it.
    assert [u for u, _ in delivered[0]] == [41]
    assert await Store(db).next_offset() == 42
    assert bot.offsets[:3] == [None, None, None] and bot.offsets[3] == 42


async def test_another_poller_or_a_webhook_is_not_a_passing_fault(db: Database) -> None:
    from telegram.error import Conflict

    from bot.telegram.intake import Poller

    poller = Poller(
        ScriptedBot(Conflict("terminated by other getUpdates")),
        Store(db),
        lambda: NOW,
        lambda u: None,
    )
    with pytest.raises(Conflict):
        await asyncio.wait_for(poller.run(asyncio.Event()), 10)


class RecordingApp:
    """What the worker hands updates to: records them; one id may be made to fail."""

    def __init__(self, fail: int | None = None) -> None:
        self.bot = None
        self.seen: list[int] = []
        self.fail = fail

    async def process_update(self, update: Any) -> None:
        self.seen.append(update.update_id)
        if update.update_id == self.fail:
            raise RuntimeError("handler bug")


async def unhandled_count(db: Database) -> int:
    row = await db.one("SELECT count(*) FROM inbox WHERE handled_at IS NULL")
    assert row is not None
    return int(row[0])


async def test_the_worker_hands_each_stored_update_over_once_even_past_a_batch(
    db: Database,
) -> None:
    from bot.telegram.intake import BATCH, InboxWorker

    store = Store(db)
    updates = [(n, f'{{"update_id":{n}}}') for n in range(1, BATCH + 51)]
    await store.receive(updates, NOW)
    app = RecordingApp()
    worker = InboxWorker(app, store, lambda: NOW, concurrency=8)
    # Offered in memory as the poller does: the first batch fits, the rest is read back.
    worker.offer(updates[:BATCH])
    worker.offer(updates[BATCH:])
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await deadline(lambda: len(app.seen) >= len(updates))
    await worker.drain()
    stop.set()
    await asyncio.wait_for(task, 10)
    assert sorted(app.seen) == [n for n, _ in updates]  # every one, none twice
    assert await unhandled_count(db) == 0


async def test_a_handler_that_fails_is_logged_and_its_update_not_retried_forever(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.telegram.intake import InboxWorker

    store = Store(db)
    updates = [(1, '{"update_id":1}'), (2, '{"update_id":2}')]
    await store.receive(updates, NOW)
    app = RecordingApp(fail=1)
    handled: list[int] = []
    worker = InboxWorker(
        app, store, lambda: NOW, on_update=lambda update, _s: handled.append(update.update_id)
    )
    worker.offer(updates)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await deadline(lambda: len(app.seen) == 2)
    await worker.drain()
    stop.set()
    await asyncio.wait_for(task, 10)
    assert "event=update_failed update_id=1" in caplog.text
    assert sorted(handled) == [1, 2]  # both counted and timed in the metrics
    assert await unhandled_count(db) == 0


async def test_the_copy_itself_refuses_to_go_over_the_live_database(tmp_path: Path) -> None:
    # The daily backup calls it directly, without the command's check in front of it.
    db = await seeded(tmp_path / "live.sqlite3")
    try:
        for target in (tmp_path / "live.sqlite3", tmp_path / "live.sqlite3-wal"):
            with pytest.raises(backups.BackupFailed) as failed:
                await backups.backup(db, target)
            assert (
                str(failed.value) == f"{target} is the live database: give another file or a folder"
            )
        assert not list(tmp_path.glob("*.partial"))
    finally:
        await db.close()


async def test_a_backup_refused_over_the_live_file_opens_nothing(tmp_path: Path) -> None:
    # Not even a database that does not exist yet: none is made just to be refused.
    live = tmp_path / "new.sqlite3"
    with pytest.raises(backups.BackupFailed, match="is the live database"):
        await backups.backup_main(live, live, io.StringIO())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (sqlite3.OperationalError("disk I/O error"), "disk I/O error"),
        (OSError(28, "No space left on device"), "No space left on device"),
        (sqlite3.DatabaseError(), "DatabaseError"),  # no words at all: at least its kind
    ],
)
async def test_a_backup_that_cannot_be_written_says_why_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, reason: str
) -> None:
    async def failing(db: Database, target: Path) -> Path:
        raise error

    monkeypatch.setattr(backups, "backup", failing)
    await (await seeded(tmp_path / "live.sqlite3")).close()
    target = tmp_path / "copies"
    with pytest.raises(backups.BackupFailed) as failed:
        await backups.backup_main(tmp_path / "live.sqlite3", target, io.StringIO())
    assert str(failed.value) == f"cannot write the backup to {target}: {reason}"


def test_a_lock_held_past_every_try_is_told_with_the_time_waited() -> None:
    # Six tries of SQLite's five-second busy timeout, then one line.
    reason = db_module._reason(sqlite3.OperationalError("database is locked"))
    assert reason == (
        "another process kept it locked for 30 s (database is locked); stop it and try again"
    )
