"""The command line (`python -m bot ...`), the terminal demo and the settings, in-process:
`main(argv)` with the environment, standard input and output in the test's hands."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from bot import logs
from bot.__main__ import main
from bot.config import ConfigError, Settings, load_settings
from bot.console import BANNER, demo, show
from bot.engine.model import ScheduleNudge, State
from bot.knowledge.classifier import ObjectionClassifier, model_path
from bot.render import RenderedMessage
from bot.runtime import POLLER_LOCK
from bot.service import Handled
from bot.storage.db import Database
from bot.storage.store import Store
from tests.fakebot import FakeBotApi

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "bot" / "storage" / "migrations"
TOKEN = "424242:S3cretTokenPart_xyz"
T = TypeVar("T")


@pytest.fixture
def home(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    classifier: ObjectionClassifier,
) -> Iterator[Path]:
    """An empty working folder (no .env), no settings in the environment but the database's,
    a fitted classifier beside it, and the process-wide logging put back afterwards."""
    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("DEMO_NAME", raising=False)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "coach.sqlite3"))
    # open_coach keeps the fitted model beside the database: fitted once here, not per test.
    classifier.model.save(model_path(tmp_path))
    monkeypatch.setattr(logs, "_key", logs._key)
    monkeypatch.setattr(logs, "_secrets", set(logs._secrets))
    root = logging.getLogger()
    level, formatters = root.level, [(h, h.formatter) for h in root.handlers]
    yield tmp_path
    root.setLevel(level)
    for handler, formatter in formatters:
        handler.setFormatter(formatter)


def run(
    capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None
) -> tuple[int, str, str]:
    """`python -m bot *argv`: exit code, standard output, standard error."""
    capsys.readouterr()
    if stdin is not None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("sys.stdin", io.StringIO(stdin))
            code = main(list(argv))
    else:
        code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    assert exited.value.code == 2
    return capsys.readouterr().err


# --- help and usage --------------------------------------------------------------------------

COMMANDS = ("run", "demo", "classify", "nudges", "migrate", "backup", "recruiters")


def test_help_names_every_command(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m bot")
    assert "Interview Coach" in out
    for command in COMMANDS:
        assert command in out, command


def test_a_missing_or_unknown_command_is_a_usage_error(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "required: command" in usage_error(capsys)
    assert "invalid choice: 'serve'" in usage_error(capsys, "serve")
    assert "invalid choice: 'promote'" in usage_error(capsys, "recruiters", "promote", "1")
    assert "invalid int value: 'bob'" in usage_error(capsys, "recruiters", "add", "bob")


def test_the_run_help_explains_webhook(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--webhook" in capsys.readouterr().out


# --- settings errors: one line, exit code 2 --------------------------------------------------


def test_run_without_a_token_says_where_to_put_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "run")
    assert (code, out) == (2, "")
    assert err == (
        "error: TELEGRAM_BOT_TOKEN is not set: put it in .env or the environment "
        "(see .env.example)\n"
    )


def test_run_webhook_without_its_url_is_a_config_error(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", "http://127.0.0.1:9/bot")  # never reached
    code, out, err = run(capsys, "run", "--webhook")
    assert (code, out) == (2, "")
    assert err == "error: --webhook needs WEBHOOK_URL (see .env.example)\n"


@pytest.mark.parametrize("token", ["not-a-token", "123456", ":abc", "12:ab cd", "12:ab!"])
def test_run_with_a_malformed_token_is_refused_before_any_request(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
    code, _, err = run(capsys, "run")
    assert code == 2
    assert err == (
        "error: TELEGRAM_BOT_TOKEN looks malformed: expected digits, a colon and letters, "
        "e.g. 123456:ABC-def\n"
    )


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("LOG_LEVEL", "loud", "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        ("DEFAULT_TIMEZONE", "Mars/Olympus", "'Mars/Olympus' is not an IANA time zone"),
        ("QUIET_HOURS_START", "25:00", ""),
        ("MAX_MESSAGES_PER_SECOND", "0", "greater than 0"),
        ("WEBHOOK_PORT", "eighty", "integer"),
        ("WEBHOOK_PORT", "-1", "greater than or equal to 1"),
        ("WEBHOOK_PORT", "0", "greater than or equal to 1"),
        ("METRICS_PORT", "99999", "less than or equal to 65535"),
        ("ADMIN_IDS", "12,bob", "ADMIN_IDS must be Telegram user ids separated by commas"),
        ("TELEGRAM_API_BASE_URL", "api.telegram.org/bot", "must start with http:// or https://"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_for_every_command(
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    says: str,
) -> None:
    monkeypatch.setenv(name, value)
    for command in ("migrate", "nudges"):
        code, out, err = run(capsys, command)
        assert (code, out) == (2, "")
        assert err.startswith(f"error: {name}: ") and says in err
        assert err.count("\n") == 1, err
    assert not (home / "coach.sqlite3").exists(), "nothing is touched"


# --- the database commands -------------------------------------------------------------------


def test_migrate_creates_the_database_at_the_latest_schema(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latest = len(list(MIGRATIONS.glob("*.sql")))
    db = home / "coach.sqlite3"
    assert run(capsys, "migrate") == (0, f"{db}: schema version {latest}\n", "")
    assert run(capsys, "migrate") == (0, f"{db}: schema version {latest}\n", "")


def test_an_unusable_database_is_one_line_and_exit_1(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / "a-file").write_text("x")
    monkeypatch.setenv("DATABASE_PATH", str(home / "a-file" / "coach.sqlite3"))
    for argv in (["migrate"], ["nudges"], ["recruiters", "list"], ["backup"]):
        code, out, err = run(capsys, *argv)
        assert (code, out) == (1, ""), argv
        assert err.startswith("error: cannot use the database at ") and err.count("\n") == 1


def on_database(db_path: Path, work: Callable[[Store], Awaitable[T]]) -> T:
    async def go() -> T:
        db = await Database.open(db_path)
        try:
            return await work(Store(db))
        finally:
            await db.close()

    return asyncio.run(go())


@pytest.mark.parametrize("in_tokyo", [False, True], ids=["utc_machine", "machine_in_tokyo"])
def test_nudges_prints_the_pending_ones_as_json_lines(
    home: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest, in_tokyo: bool
) -> None:
    if in_tokyo:  # the times printed are UTC whatever the machine's own zone
        request.getfixturevalue("machine_in_tokyo")
    assert run(capsys, "nudges") == (0, "", "")
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    pep = ScheduleNudge("pep", datetime(2026, 11, 24, 13, 0, tzinfo=UTC), None)
    prep = ScheduleNudge(
        "prep",
        datetime(2026, 11, 23, 18, 0, tzinfo=UTC),
        datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
    )
    ids = on_database(
        home / "coach.sqlite3", lambda store: store.commit(42, 42, State(), [pep, prep], now)
    )
    code, out, err = run(capsys, "nudges")
    assert (code, err) == (0, "")
    assert [json.loads(line) for line in out.splitlines()] == [
        {
            "user_id": 42,
            "kind": "prep",
            "due_at": "2026-11-23T18:00:00Z",
            "id": ids[1],
            "deadline": "2026-11-24T15:00:00Z",
            "attempts": 0,
        },
        {
            "user_id": 42,
            "kind": "pep",
            "due_at": "2026-11-24T13:00:00Z",
            "id": ids[0],
            "deadline": None,
            "attempts": 0,
        },
    ]


def test_recruiters_are_added_listed_and_removed(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "recruiters", "list") == (0, "", "")
    assert run(capsys, "recruiters", "add", "77") == (0, "77 is now a recruiter\n", "")
    assert run(capsys, "recruiters", "add", "77") == (0, "77 is a recruiter already\n", "")
    assert run(capsys, "recruiters", "list") == (0, "77\tapproved\t\n", "")
    assert run(capsys, "recruiters", "remove", "77") == (0, "77 is no longer a recruiter\n", "")
    assert run(capsys, "recruiters", "remove", "77") == (1, "77 is not a recruiter\n", "")
    assert run(capsys, "recruiters", "remove", "78") == (1, "78 is not a recruiter\n", "")
    assert run(capsys, "recruiters", "list") == (0, "77\tremoved\t\n", "")


@pytest.mark.parametrize("action", ["add", "remove"])
def test_adding_or_removing_a_recruiter_needs_their_id(
    home: Path, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    code, out, err = run(capsys, "recruiters", action)
    assert (code, out) == (2, "")
    assert err == "error: a Telegram user id is needed, e.g. 123456789\n"


def test_backup_copies_the_database_where_asked_or_beside_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "recruiters", "add", "77")[0] == 0
    code, out, err = run(capsys, "backup", str(home / "copies"))
    assert (code, err) == (0, "")
    made = Path(out.strip())
    assert made.parent == home / "copies" and made.suffix == ".sqlite3"
    with sqlite3.connect(made) as conn:
        assert conn.execute("SELECT user_id, status FROM recruiters").fetchall() == [
            (77, "approved")
        ]
    code, out, _ = run(capsys, "backup")
    assert code == 0 and Path(out.strip()).parent == home / "backups"
    assert Path(out.strip()).is_file()


def test_classify_answers_one_json_object_per_text(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "classify", "I'm so nervous, I always freeze", "the pay is low")
    assert code == 0
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["objection"] == "nervous"
    assert second["objection"] != "nervous" and 0 <= second["confidence"] <= 1
    code, out, _ = run(capsys, "classify", stdin="I'm so nervous, I always freeze\n\n")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["objection"] for line in lines] == ["nervous", "other"]


# --- the terminal demo -----------------------------------------------------------------------


def test_demo_runs_the_conversation_in_the_terminal(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMO_NAME", "Zoe")
    typed = "\n".join(["3", "", "/HELP  me", "9", "I'm so nervous, I always freeze", ""])
    code, out, _ = run(capsys, "demo", stdin=typed)
    assert code == 0
    assert out.startswith(BANNER)
    assert "Hi Zoe!" in out
    # Buttons are numbered choices; "3" taps the third.
    situations = ("Unsure about an invite", "Going, want to prepare", "Just exploring")
    assert "".join(f"  [{n}] {label}\n" for n, label in enumerate(situations, 1)) in out
    after_three = out.split("\n> ", 2)[1]
    assert "which way do you lean" in after_three
    # A blank line is skipped; commands work in any case; a number with no such button is
    # typed text; then an argument with its source.
    rest = out.split("\n> ")
    assert rest[2] == ""
    assert "What I can do" in rest[3]
    assert "not sure I understood" in rest[4]
    assert "Source:" in rest[5]
    assert out.endswith("\n> \nBye!\n")
    assert logging.getLogger().level == logging.WARNING, "the demo keeps its screen readable"
    assert all(len(line) <= 78 for line in out.splitlines())


async def test_demo_numbers_follow_the_last_keyboard(home: Path) -> None:
    out = io.StringIO()
    # Just exploring; /about (no buttons: the numbers still mean the lean buttons); Unsure;
    # the sixth and last button (Decide now); 0, which is no button; then /start and the first.
    typed = "3\n/about\n2\n6\n0\n/start\n1\n"
    assert await demo(load_settings(), io.StringIO(typed), out, "Ida") == 0
    screens = out.getvalue().split("\n> ")
    assert "Hi Ida!" in screens[0]
    assert "which way do you lean" in screens[1]
    assert "five articles" in screens[2]
    assert "What holds you back?" in screens[3]
    assert "what do you decide" in screens[4]
    assert "not sure I understood" in screens[5]
    assert "What brings you here?" in screens[6]
    assert "which way do you lean" in screens[7]


def test_show_prints_choices_in_order_and_the_toast() -> None:
    out = io.StringIO()
    handled = Handled(
        (
            RenderedMessage("<b>First</b> &amp; one", ((("A", "v1:a"), ("B", "v1:b")),)),
            RenderedMessage("Second", ((("C", "v1:c"),), (("D", "v1:d"),))),
            RenderedMessage("No buttons"),
        ),
        notice="Saved",
    )
    assert show(handled, out) == ["v1:c", "v1:d"]
    assert out.getvalue() == (
        "\nFirst & one\n  [1] A\n  [2] B\n\nSecond\n  [1] C\n  [2] D\n\nNo buttons\n  (Saved)\n"
    )
    # Paragraphs wrap to a 78-column terminal; a word that fits is never cut.
    wrapped = io.StringIO()
    assert show(Handled((RenderedMessage("x " * 60 + "\n" + "y" * 78),)), wrapped) == []
    blank, *xs, ys = wrapped.getvalue().split("\n")[:-1]
    assert blank == "" and ys == "y" * 78
    assert len(xs) == 2 and all(70 < len(line) <= 78 for line in xs[:1])
    assert " ".join(xs).split() == ["x"] * 60


# --- run -------------------------------------------------------------------------------------


def test_run_refuses_to_poll_beside_another_copy(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", "http://127.0.0.1:9/bot")  # never reached
    holder = "elsewhere:4242:abc"
    on_database(
        home / "coach.sqlite3",
        lambda store: store.acquire_lock(
            POLLER_LOCK, holder, datetime.now(UTC), timedelta(minutes=5)
        ),
    )
    code, out, err = run(capsys, "run")
    assert (code, out) == (3, "")
    assert err.startswith("error: another copy of the bot is already polling") and holder in err


@contextmanager
def api_in_a_thread() -> Iterator[tuple[FakeBotApi, asyncio.AbstractEventLoop]]:
    """The fake Bot API in its own thread and loop, for `main` to run in this one."""
    ready: concurrent.futures.Future[tuple[FakeBotApi, asyncio.AbstractEventLoop]] = (
        concurrent.futures.Future()
    )
    stop = threading.Event()

    async def serve() -> None:
        async with FakeBotApi() as api:
            ready.set_result((api, asyncio.get_running_loop()))
            await asyncio.to_thread(stop.wait)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    try:
        yield ready.result(timeout=10)
    finally:
        stop.set()
        thread.join(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_with_a_token_telegram_rejects_is_one_line_without_the_token(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with api_in_a_thread() as (api, _):
        api.fail_next("getMe", 401, "Unauthorized", times=5)
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", api.base_url)
        code, out, err = run(capsys, "run")
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "S3cretTokenPart_xyz" not in err and "[redacted]" in err


@pytest.mark.parametrize("webhook", [False, True])
def test_run_serves_until_sigterm(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, webhook: bool
) -> None:
    with api_in_a_thread() as (api, loop):
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", api.base_url)
        argv = ["run"]
        url = f"http://127.0.0.1:{free_port()}/hook"
        if webhook:
            argv.append("--webhook")
            monkeypatch.setenv("WEBHOOK_URL", url)
            monkeypatch.setenv("WEBHOOK_PORT", url.split(":")[2].split("/")[0])

        async def converse() -> str:
            # Serving (the signal handlers are in place by then): a user, then SIGTERM.
            if webhook:
                [hooked] = await api.wait_for("setWebhook", timeout=30)
                assert hooked.params["url"] == url
                await api.deliver(api.push_message(5, "/start", "Kay", enqueue=False))
            else:
                await api.wait_for("deleteWebhook", timeout=30)
                api.push_message(5, "/start", "Kay")
            [greeting] = await api.wait_for("sendMessage", timeout=10)
            return str(greeting.params["text"])

        served = asyncio.run_coroutine_threadsafe(converse(), loop)
        returned = threading.Event()

        def stop_when_served() -> None:
            with contextlib.suppress(Exception):
                served.result(timeout=40)
            # Only while `main` runs: its loop's handler turns SIGTERM into a clean stop.
            if not returned.is_set():
                os.kill(os.getpid(), signal.SIGTERM)

        stopper = threading.Thread(target=stop_when_served, daemon=True)
        stopper.start()
        try:
            code, _, err = run(capsys, "run", *argv[1:])
        finally:
            returned.set()
        stopper.join(10)
        assert code == 0, err
        assert served.result().startswith("Hi Kay!")
    # The token never reaches a log line; the polling lock is let go.
    assert "S3cretTokenPart_xyz" not in err
    assert logs.redact(f"token {TOKEN}") == "token [redacted]"
    locks = on_database(home / "coach.sqlite3", lambda store: store.db.all("SELECT * FROM locks"))
    assert locks == []


# --- settings --------------------------------------------------------------------------------


def test_the_defaults_are_what_env_example_documents(home: Path) -> None:
    bare = load_settings()
    shutil.copy(ROOT / ".env.example", home / ".env")
    documented = load_settings()
    assert bare == documented
    assert bare.telegram_bot_token is None


def test_the_environment_overrides_the_env_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / ".env").write_text("LOG_LEVEL=ERROR\nDEFAULT_TIMEZONE=Europe/Paris\n")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = load_settings()
    assert (settings.log_level, settings.default_timezone) == ("DEBUG", "Europe/Paris")


@pytest.mark.parametrize(
    ("value", "token"),
    [("123:abc", "123:abc"), ("  424242:AA-bb_CC9  ", "424242:AA-bb_CC9")],
)
def test_a_well_formed_token_is_given_back_without_spaces(value: str, token: str) -> None:
    assert load_settings(telegram_bot_token=value).require_token() == token


@pytest.mark.parametrize("value", [None, "", "   ", "abc", "123:", "123:abc\nxyz", "x123:abc"])
def test_a_missing_or_malformed_token_is_a_config_error(value: str | None) -> None:
    settings = load_settings(telegram_bot_token=value)
    with pytest.raises(ConfigError, match=r"^TELEGRAM_BOT_TOKEN (is not set|looks malformed)"):
        settings.require_token()


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("default_timezone", "America/Argentina/Buenos_Aires", True),
        ("default_timezone", "Mars/Olympus", False),
        ("default_timezone", "../../etc/passwd", False),
        ("default_timezone", "/abs/path", False),
        ("log_level", "debug", True),
        ("log_level", "Info", True),
        ("log_level", "warning", True),
        ("log_level", "ERROR", True),
        ("log_level", "critical", True),
        ("log_level", "TRACE", False),
        ("quiet_hours_start", "22:30", True),
        ("quiet_hours_start", "24:00", False),
        ("quiet_hours_end", "noon", False),
        ("max_messages_per_second", "0.5", True),
        ("max_messages_per_second", "0", False),
        ("max_messages_per_second", "-1", False),
        ("per_chat_interval_seconds", "0", True),
        ("per_chat_interval_seconds", "-0.1", False),
        ("backup_keep", "1", True),
        ("backup_keep", "0", False),
        ("webhook_port", "443", True),
        ("webhook_port", "https", False),
        ("telegram_api_base_url", "http://127.0.0.1:8081/bot", True),
        ("telegram_api_base_url", "https://api.telegram.org/bot", True),
        ("telegram_api_base_url", "ftp://example.org/bot", False),
        ("admin_ids", "1, 2 3,,", True),
        ("admin_ids", "1;2", False),
        ("admin_ids", "-5", False),
    ],
)
def test_each_setting_is_checked_and_named_when_wrong(
    home: Path, monkeypatch: pytest.MonkeyPatch, field: str, value: str, ok: bool
) -> None:
    monkeypatch.setenv(field.upper(), value)
    if ok:
        load_settings()
        return
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert str(error.value).startswith(f"{field.upper()}: ")
    assert "\n" not in str(error.value)


def test_settings_are_read_into_their_types(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_IDS", "1, 2 3,,")
    monkeypatch.setenv("QUIET_HOURS_START", "22:30")
    monkeypatch.setenv("LOG_LEVEL", "warning")
    monkeypatch.setenv("BACKUP_DIR", "copies")
    settings = load_settings()
    assert settings.admin_ids == frozenset({1, 2, 3})
    assert settings.quiet_hours_start == time(22, 30)
    assert settings.log_level == "WARNING"
    assert settings.backup_dir == Path("copies")
    assert load_settings(admin_ids=frozenset({9})).admin_ids == frozenset({9})


def test_logging_redacts_the_token_and_the_webhook_secret(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("WEBHOOK_SECRET", "MyWebhookSecret_123")
    assert run(capsys, "migrate")[0] == 0
    line = f"url=/bot{TOKEN}/getMe secret=MyWebhookSecret_123"
    assert logs.redact(line) == "url=/bot[redacted]/getMe secret=[redacted]"
