"""Shared fixtures: a fake clock, settings on a temporary SQLite file, the fake Bot API, and
the real bot runtime (PTB Application + dispatcher) wired to them."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Settings
from bot.knowledge.base import KnowledgeBase, load_default
from bot.knowledge.classifier import ObjectionClassifier, default_classifier
from bot.runtime import BotRuntime, open_coach
from bot.storage.db import Database
from tests.fakebot import FakeBotApi


async def deadline(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait until `check()` holds, polling, or fail after `seconds`."""
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.01)


class FakeClock:
    """An injected clock tests move by hand: time travel without sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    # A Monday morning in UTC, far from quiet hours in most zones.
    return FakeClock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_default()


@pytest.fixture(scope="session")
def classifier() -> ObjectionClassifier:
    return default_classifier()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "coach.sqlite3"


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(db_path)
    yield database
    await database.close()


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as server:
        yield server


@pytest.fixture
def make_settings(api: FakeBotApi, db_path: Path) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "telegram_bot_token": "123:abc",
            "telegram_api_base_url": api.base_url,
            "database_path": db_path,
            "default_timezone": "UTC",
            "max_messages_per_second": 200.0,
            "per_chat_interval_seconds": 0.0,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]

    return make


Runner = Callable[..., "asynccontextmanager[BotRuntime]"]


@pytest.fixture
def running_bot(
    make_settings: Callable[..., Settings],
    clock: FakeClock,
    kb: KnowledgeBase,
    classifier: ObjectionClassifier,
) -> Callable[..., object]:
    """`async with running_bot() as runtime:` the real bot, polling the fake Bot API."""

    @asynccontextmanager
    async def run(webhook: bool = False, **overrides: object) -> AsyncIterator[BotRuntime]:
        settings = make_settings(**overrides)
        coach = await open_coach(settings, clock=clock, kb=kb, classifier=classifier)
        runtime = BotRuntime(settings, coach, clock=clock)
        try:
            await runtime.start(webhook=webhook, poll_timeout=1)
            yield runtime
        finally:
            await runtime.stop()

    return run


@pytest.fixture(autouse=True)
def _no_env_file(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A developer's own .env or environment must not leak into tests.
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_API_BASE_URL", "DATABASE_PATH", "WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    yield


# Opt into PTB's coming behaviour (RetryAfter.retry_after as a timedelta) so tests don't warn;
# the sender handles both forms.
os.environ.setdefault("PTB_TIMEDELTA", "true")


@pytest.fixture
def machine_in_tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host's own zone set far from UTC: nothing read or stored may depend on it."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        yield
    finally:
        monkeypatch.undo()
        time.tzset()
