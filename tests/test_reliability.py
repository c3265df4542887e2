"""Running unattended: one poller per database, leases, and the operator's view of faults."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import crash
from bot.config import Settings
from bot.engine.model import Event
from bot.runtime import AlreadyRunning, BotRuntime, open_coach
from bot.storage.backup import prune
from bot.storage.db import Database
from bot.storage.store import Store
from tests.conftest import FakeClock
from tests.e2e import Conversation, texts
from tests.fakebot import FakeBotApi

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


async def test_a_second_poller_on_the_same_database_stops_with_one_clear_line(
    api: FakeBotApi,
    running_bot: Any,
    make_settings: Callable[..., Settings],
    clock: FakeClock,
) -> None:
    async with running_bot() as first:
        settings = make_settings()
        coach = await open_coach(settings, clock=clock)
        second = BotRuntime(settings, coach, clock=clock)
        with pytest.raises(AlreadyRunning, match="already polling with this database"):
            await second.start(poll_timeout=1)
        await second.stop()
        # The first one goes on serving.
        sent = await Conversation(api, first).say(7, "/start")
        assert "What brings you here?" in texts(sent)
    # Stopped cleanly, the lock is free again at once.
    async with running_bot() as again:
        sent = await Conversation(api, again).say(7, "/help")
        assert "What I can do" in texts(sent)


# --- nothing lost ----------------------------------------------------------------------------


async def stored(runtime: BotRuntime) -> list[tuple[int, str, str | None]]:
    async with runtime.coach.store.db.conn.execute(
        "SELECT update_id, payload, error FROM inbox ORDER BY update_id"
    ) as cur:
        return [(int(r[0]), str(r[1]), r[2]) for r in await cur.fetchall()]


async def test_an_update_stored_before_a_crash_is_handled_after_the_restart(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    # Stored, acknowledged to Telegram, and then the process died before handling it.
    update = api.push_message(7, "/start", "Kim", enqueue=False)
    db = await Database.open(db_path)
    await Store(db).receive([(update["update_id"], json.dumps(update))], FakeClock(T0)())
    await db.close()
    async with running_bot() as runtime:
        await api.wait_for("sendMessage", lambda c: "Kim" in c.params["text"])
        # Handled once: its text is gone from the database, only the id stays.
        [(update_id, payload, error)] = await stored(runtime)
    assert (update_id, payload, error) == (update["update_id"], "", None)


async def test_a_redelivered_update_is_handled_once(api: FakeBotApi, running_bot: Any) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        update = api.push_message(7, "/start", "Lee", enqueue=False)
        api.push_update(update)
        await chat._wait_done(1)
        mark = api.mark()
        api.push_update(update)  # Telegram sent it again (it never saw our acknowledgement)
        api.push_message(7, "/help")
        await chat._wait_done(2)
    greetings = [c for c in api.calls[mark:] if "Lee" in str(c.params.get("text", ""))]
    assert greetings == []
    assert sum("Hi Lee" in m["text"] for m in api.sent_messages(7)) == 1


async def test_a_reply_owed_by_a_saved_state_is_sent_after_a_restart(
    api: FakeBotApi, running_bot: Any, make_settings: Callable[..., Settings], clock: FakeClock
) -> None:
    # A process saved the state and its reply, then died before Telegram took the reply.
    settings = make_settings()
    coach = await open_coach(settings, clock=clock)
    coach.owner = "dead process"
    update = api.push_message(7, "/start", "Max", enqueue=False)
    await coach.store.receive([(update["update_id"], json.dumps(update))], clock())
    handled = await coach.handle(Event(7, "command", "start", "", "Max"), 7, update["update_id"])
    assert len(handled.reply_ids) == 1
    await coach.store.db.close()
    clock.advance(minutes=3)  # its lease on the replies ran out
    async with running_bot():
        await api.wait_for("sendMessage", lambda c: "What brings you here" in c.params["text"])
    texts_sent = api.sent_texts(7)
    assert sum("Hi Max" in t for t in texts_sent) == 1  # sent once
    assert "Hi Max" in texts_sent[0]


async def test_a_reply_telegram_did_not_take_is_sent_again(
    api: FakeBotApi, running_bot: Any, clock: FakeClock
) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        api.fail_next("sendMessage", 502, chat_id=7)
        await chat.say(7, "/help")
        assert not [c for c in api.calls_of("sendMessage") if c.ok]
        clock.advance(seconds=5)
        runtime.dispatcher.wake()
        # The first message (help) failed with a 502: queued, and delivered by the
        # dispatcher; nothing is dropped.
        await api.wait_for("sendMessage", lambda c: c.ok and "What I can do" in c.params["text"])
    assert [c.status for c in api.calls_of("sendMessage")].count(502) == 1


async def test_a_kill_after_two_replies_went_out_repeats_one_of_them_at_most(
    api: FakeBotApi,
    running_bot: Any,
    db_path: Path,
    tmp_path: Path,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process dies the moment Telegram took the second of /help's two replies: the
    database as it is then (a copy) holds the first as sent, so a restart on it sends the
    second again, and only that one."""
    image = tmp_path / "killed.sqlite3"
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.say(7, "/start")
        sender = runtime.front.sender
        real = sender.send
        killed, finish = asyncio.Event(), asyncio.Event()

        async def send(chat_id: int, message: Any) -> None:
            await real(chat_id, message)
            if "What I can do" not in message.text:  # /help's second reply went out: killed
                with sqlite3.connect(db_path) as live, sqlite3.connect(image) as copy:
                    live.backup(copy)
                killed.set()
                await finish.wait()

        monkeypatch.setattr(sender, "send", send)
        api.push_message(7, "/help")
        await asyncio.wait_for(killed.wait(), 10)
        helped = api.sent_texts(7)[-2:]
        assert "What I can do" in helped[0] and len(helped) == 2
        finish.set()
    clock.advance(minutes=3)  # the dead process's lock and leases ran out
    mark = api.mark()
    async with running_bot(database_path=image) as restarted:
        store = restarted.coach.store
        await api.wait_for("sendMessage", lambda c: c.ok, after=mark)
        async with asyncio.timeout(10):
            while await store.db.one(
                "SELECT id FROM nudges WHERE kind = 'reply' AND state != 'sent'"
            ):
                await asyncio.sleep(0.01)
    again = [str(c.params["text"]) for c in api.calls[mark:] if c.method == "sendMessage"]
    assert again == [helped[1]]


async def test_an_update_the_library_cannot_parse_is_skipped_once(
    api: FakeBotApi, running_bot: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        broken = api.make_update(poll={"id": "1", "question": "Secret question?"})
        api.push_update(broken)
        sent = await chat.say(7, "/help")  # the next one is handled as usual
        assert "What I can do" in texts(sent)
        rows = await stored(runtime)
    assert (broken["update_id"], "", "unparseable") in rows
    lines = [r.getMessage() for r in caplog.records if "unparseable" in r.getMessage()]
    assert len(lines) == 1 and "Secret question" not in lines[0]


# --- no way in -------------------------------------------------------------------------------


async def test_webhook_without_a_secret_makes_one_and_refuses_forgeries(
    api: FakeBotApi, running_bot: Any, unused_tcp_port: int
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/hook"
    async with running_bot(
        webhook=True, webhook_url=url, webhook_port=unused_tcp_port, webhook_secret=None
    ) as runtime:
        secret = api.calls_of("setWebhook")[-1].params["secret_token"]
        assert secret == runtime.webhook_secret and len(secret) >= 32
        chat = Conversation(api, runtime)
        forged = api.push_message(7, "/start", "Eve", enqueue=False)
        assert await api.post_update(url, forged) == 403
        assert await api.post_update(url, forged, secret_token="guess") == 403
        async with httpx.AsyncClient() as http:
            huge = await http.post(
                url,
                content=b"x" * (2 * 1024 * 1024),
                headers={"X-Telegram-Bot-Api-Secret-Token": secret},
            )
            assert huge.status_code == 413
            bad = await http.post(
                url, content=b"{not json", headers={"X-Telegram-Bot-Api-Secret-Token": secret}
            )
            assert bad.status_code == 400
            assert (
                await http.get(f"http://127.0.0.1:{unused_tcp_port}/healthz")
            ).status_code == 200
        assert await stored(runtime) == []  # nothing forged got in
        genuine = api.push_message(7, "/start", "Wes", enqueue=False)
        assert await api.post_update(url, genuine, secret_token=secret) == 200
        await chat._wait_done(1)
    assert api.sent_messages(7)[0]["text"].startswith("Hi Wes")


# --- running it ------------------------------------------------------------------------------


async def test_health_and_metrics_in_polling_mode(
    api: FakeBotApi, running_bot: Any, unused_tcp_port: int
) -> None:
    base = f"http://127.0.0.1:{unused_tcp_port}"
    async with running_bot(metrics_port=unused_tcp_port) as runtime:
        chat = Conversation(api, runtime)
        await chat.say(7, "/start")
        async with httpx.AsyncClient() as http:
            health = await http.get(f"{base}/healthz")
            metrics = (await http.get(f"{base}/metrics")).text
            assert health.status_code == 200
            assert "database: ok" in health.text and "dispatcher: running" in health.text
            assert 'coach_updates_total{kind="message"} 1.0' in metrics
            assert 'coach_queue{queue="inbox_unhandled"} 0.0' in metrics
            assert 'coach_queue{queue="updates_handling"} 0.0' in metrics
            assert 'coach_component_up{component="poller"} 1.0' in metrics
            # The dispatcher dies: the health check says so while it is restarted.
            runtime._tasks["dispatcher"].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runtime._tasks["dispatcher"]
            sick = await http.get(f"{base}/healthz")
            assert sick.status_code == 503 and "dispatcher: stopped" in sick.text


# --- secrets stay out of the logs ------------------------------------------------------------

TOKEN = "424242:S3cretTokenPart_xyz"


async def run_cli(api: FakeBotApi, tmp_path: Path, *args: str, token: str = TOKEN) -> str:
    """`python -m bot run` at DEBUG against the fake Bot API: one /start, then SIGTERM."""
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": token,
        "TELEGRAM_API_BASE_URL": api.base_url,
        "DATABASE_PATH": str(tmp_path / "cli.sqlite3"),
        "LOG_LEVEL": "DEBUG",
        "WEBHOOK_SECRET": "MyWebhookSecret_123",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        *args,
        env=env,
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        exited = asyncio.ensure_future(proc.wait())
        polled = asyncio.ensure_future(api.wait_for("deleteWebhook", timeout=30))
        await asyncio.wait({exited, polled}, return_when=asyncio.FIRST_COMPLETED)
        polled.cancel()
        if not exited.done():
            api.push_message(7, "/start", "Kay")
            await api.wait_for("sendMessage", timeout=10)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    return (out + err).decode("utf-8", "replace")


async def test_no_log_line_at_any_level_holds_the_token(api: FakeBotApi, tmp_path: Path) -> None:
    output = await run_cli(api, tmp_path)
    assert "sendMessage" in output and "DEBUG" in output  # it did log, at every level
    assert "S3cretTokenPart_xyz" not in output and "MyWebhookSecret_123" not in output
    assert "[redacted]" in output


async def test_a_rejected_token_is_one_line_without_the_token(
    api: FakeBotApi, tmp_path: Path
) -> None:
    api.fail_next("getMe", 401, "Unauthorized", times=5)
    output = await run_cli(api, tmp_path)
    assert "S3cretTokenPart_xyz" not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in output


# --- faults, said clearly --------------------------------------------------------------------


def run_bot_cli(*args: str, db_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_PATH": str(db_path), "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, cwd=ROOT, capture_output=True, text=True
    )


def test_an_unusable_database_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result = run_bot_cli("migrate", db_path=blocker / "coach.sqlite3")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: cannot use the database at")
    assert "not a folder" in result.stderr


def test_a_read_only_database_is_one_clear_line(tmp_path: Path) -> None:
    readonly = tmp_path / "ro.sqlite3"
    assert run_bot_cli("migrate", db_path=readonly).returncode == 0
    readonly.chmod(0o444)
    (tmp_path / "ro.sqlite3-wal").unlink(missing_ok=True)
    tmp_path.chmod(0o555)
    try:
        if os.access(readonly, os.W_OK):
            # test_unattended.py has SQLite open the file read-only itself, root or not.
            pytest.skip("running as a user who can write read-only files (root)")
        result = run_bot_cli("nudges", db_path=readonly)
    finally:
        tmp_path.chmod(0o755)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot use the database" in result.stderr


async def test_the_health_check_fails_when_the_database_file_is_gone(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    async with running_bot() as runtime:
        ok, detail = await runtime.health()
        assert ok and "database: ok" in detail
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        ok, detail = await runtime.health()
        assert not ok and "database: the database file is gone" in detail


def test_backup_makes_a_consistent_copy(tmp_path: Path) -> None:
    db_path = tmp_path / "live.sqlite3"
    assert run_bot_cli("recruiters", "add", "77", db_path=db_path).returncode == 0
    result = run_bot_cli("backup", str(tmp_path / "copies"), db_path=db_path)
    assert result.returncode == 0, result.stderr
    copy = Path(result.stdout.strip())
    assert copy.parent == tmp_path / "copies" and copy.name.startswith("interview_coach-")
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT user_id, status FROM recruiters").fetchall() == [
            (77, "approved")
        ]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert not list((tmp_path / "copies").glob("*.partial"))
    for n in range(4):
        (tmp_path / "copies" / f"interview_coach-2026010{n}-000000.sqlite3").write_text("")
    removed = prune(tmp_path / "copies", keep=2)
    assert len(removed) == 3 and copy.exists()


async def test_deleted_data_leaves_nothing_in_the_file_or_its_wal(
    api: FakeBotApi, running_bot: Any, db_path: Path, clock: FakeClock
) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.say(7, "/timezone Pacific/Chatham")  # a zone nobody else here uses
        await chat.say(7, "/mydata")
        await chat.tap(7, "Delete my data")
        await chat.tap(7, "Yes, delete everything")
        await runtime.coach.store.db.checkpoint()
        raw = b"".join(
            Path(f"{db_path}{suffix}").read_bytes()
            for suffix in ("", "-wal")
            if Path(f"{db_path}{suffix}").exists()
        )
    assert b"Pacific/Chatham" not in raw


async def test_a_user_who_blocked_the_bot_gets_their_plan_back(
    api: FakeBotApi, running_bot: Any
) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.say(7, "/start")
        await chat.tap(7, "Going, want to prepare")
        await chat.say(7, "Fri 3pm")
        await chat.tap(7, "Yes")
        planned = [n.kind for n in await runtime.coach.store.pending_nudges(7)]
        assert planned
        api.block_user(7)
        await chat.say(7, "/nudges")  # the reply fails with 403: the user is deactivated
        assert await runtime.coach.store.pending_nudges(7) == []
        api.unblock_user(7)
        sent = await chat.say(7, "/start")
        assert "Welcome back" in texts(sent)
        assert [n.kind for n in await runtime.coach.store.pending_nudges(7)] == planned


async def test_a_user_who_blocked_the_bot_and_writes_first_gets_their_plan_back_once(
    api: FakeBotApi, running_bot: Any
) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.say(7, "/start")
        await chat.tap(7, "Going, want to prepare")
        await chat.say(7, "Fri 3pm")
        await chat.tap(7, "Yes")
        planned = [n.kind for n in await runtime.coach.store.pending_nudges(7)]
        assert planned == ["prep", "pep", "debrief"]
        api.block_user(7)
        await chat.say(7, "/nudges")  # the reply fails with 403: the user is deactivated
        assert await runtime.coach.store.pending_nudges(7) == []
        api.unblock_user(7)
        sent = await chat.say(7, "hi, I'm back")
        assert texts(sent).startswith("Welcome back")
        assert [n.kind for n in await runtime.coach.store.pending_nudges(7)] == planned
        # Once: /start afterwards is a plain welcome, and the plan is not doubled.
        again = await chat.say(7, "/start")
        assert "Welcome back" not in texts(again)
        assert [n.kind for n in await runtime.coach.store.pending_nudges(7)] == planned


# --- proof -----------------------------------------------------------------------------------


async def test_crash_bench_short_nothing_lost_nothing_sent_twice() -> None:
    """bench/crash.py in small: SIGKILL under load, restarts, a second process delivering
    reminders beside the bot all along, a second poller started once."""
    result = await crash.run(users=20, messages=3, crashes=3, rng_seed=11, patience=30)
    print(f"\n{result.table()}")
    assert result.second_copy_exit == 3  # refused to poll beside the first
    assert (result.updates_lost, result.replies_lost) == (0, 0)
    assert result.reminders_missing == 0
    # Two processes on one database, restarts and their recovery: never a reminder twice.
    assert result.beside_reminders > 0, "the second process delivered some itself"
    assert result.reminders_twice == result.beside_twice == 0
    # A kill may repeat the one message a conversation had in flight, never a batch; and the
    # one reminder in flight (they go out one at a time): Telegram sends are not idempotent,
    # so a kill between Telegram taking it and its record repeats it.
    assert result.worst_user_duplicates <= result.crashes
    assert result.reminders_after_kill <= result.crashes


async def until_handled(runtime: BotRuntime, timeout: float = 5.0) -> None:
    """Every stored update handled (polled with a deadline)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (await runtime.coach.store.queue_depths())["inbox_unhandled"]:
        assert asyncio.get_running_loop().time() < deadline, "updates left unhandled"
        await asyncio.sleep(0.01)


# --- hostile or odd updates ------------------------------------------------------------------


async def test_edited_messages_groups_and_forged_ids_are_ignored(
    api: FakeBotApi, running_bot: Any
) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.say(7, "/start")
        # An edited /stop is not a new command.
        edited = api.make_message(7, "/stop", edit_date=1)
        api.push_update(api.make_update(edited_message=edited))
        # A button pressed in a group where the message was forwarded.
        group = {"id": -100123, "type": "supergroup", "title": "Team"}
        message = {**api.make_message(7, "x"), "chat": group}
        api.push_callback(7, "v1:sit:invite", message)
        # A forged update with ids beyond SQLite's integers.
        huge = api.make_message(7, "/start")
        huge["from"] = {**huge["from"], "id": 2**63}
        huge["chat"] = {**huge["chat"], "id": 2**63}
        api.push_update(api.make_update(message=huge))
        api.push_message(7, "/help")  # handled after all of those
        await api.wait_for("sendMessage", lambda c: "What I can do" in c.params["text"])
        await until_handled(runtime)
        record = await runtime.coach.store.load_user(7)
    assert record is not None and not record.opted_out and record.chat_id == 7
    presses = api.calls_of("answerCallbackQuery")
    assert [p.params.get("text") for p in presses] == ["I only work in a private chat with you"]
    assert not [m for m in api.sent_messages() if int(m["chat_id"]) != 7]


async def test_a_lone_surrogate_in_a_name_still_gets_a_reply(
    api: FakeBotApi, running_bot: Any
) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        sent = await chat.say(7, "/start", first_name="Ana\ud800")
    assert sent and "Hi Ana\ufffd" in texts(sent)


async def test_the_bot_api_down_is_one_line_per_step_and_work_resumes(
    api: FakeBotApi, running_bot: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.telegram.intake")
    async with running_bot() as runtime:
        api.fail_next("getUpdates", 502, times=2)
        chat = Conversation(api, runtime)
        sent = await chat.say(7, "/start")  # arrives once the API is back
        assert "What brings you here?" in texts(sent)
    lines = [r.getMessage() for r in caplog.records if "bot_api_unreachable" in r.getMessage()]
    assert len(lines) == 2 and all(
        r.exc_info is None for r in caplog.records if "bot_api_unreachable" in r.getMessage()
    )
    assert any("bot_api_back failures=2" in r.getMessage() for r in caplog.records)


async def test_the_inbox_worker_forgets_old_handled_updates(
    api: FakeBotApi, running_bot: Any, clock: FakeClock
) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.say(7, "/start")
        await chat.say(7, "/help")
        [first, second] = [u for u, _, _ in await stored(runtime)]
        assert await runtime.worker.prune() == 0  # handled just now: kept
        clock.advance(days=1, seconds=1)
        assert await runtime.worker.prune() == 1
        # The older one is forgotten; the newest stays (the next offset is read from it).
        assert [u for u, _, _ in await stored(runtime)] == [second] and first < second
