"""Running unattended: one poller per database, leases, and the operator's view of faults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.config import Settings
from bot.runtime import AlreadyRunning, BotRuntime, open_coach
from tests.conftest import FakeClock
from tests.e2e import Conversation, texts
from tests.fakebot import FakeBotApi


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
