"""Drive the real bot through the fake Bot API like a user would, and wait for its answers."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.runtime import BotRuntime
from tests.fakebot import FakeBotApi

JSON = dict[str, Any]
SENDS = ("sendMessage", "sendPhoto", "sendDocument")


class Conversation:
    """Counts updates the bot finished handling, so a test waits for exactly that, no sleeps."""

    def __init__(self, api: FakeBotApi, runtime: BotRuntime) -> None:
        self.api = api
        self.runtime = runtime
        self.done = 0
        self._changed = asyncio.Condition()
        front = runtime.front
        process, desk = front._process, front._desk

        async def counted(update: Any, event: Any, *rest: Any) -> None:
            try:
                handler = desk if rest else process
                await handler(update, event, *rest)
            finally:
                async with self._changed:
                    self.done += 1
                    self._changed.notify_all()

        # The conversation's updates and the recruiters' desk's: each counts once when done.
        front._process = counted  # type: ignore[method-assign]
        front._desk = counted  # type: ignore[method-assign]

    async def _wait_done(self, target: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.done >= target)

    async def _exchange(self, user: int, push: Any) -> list[JSON]:
        mark = self.api.mark()
        target = self.done + 1
        push()
        await self._wait_done(target)
        return [
            c.params
            for c in self.api.calls[mark:]
            if c.method in SENDS and c.ok and int(c.params["chat_id"]) == user
        ]

    async def say(self, user: int, text: str, first_name: str | None = None) -> list[JSON]:
        return await self._exchange(user, lambda: self.api.push_message(user, text, first_name))

    async def tap(self, user: int, label: str) -> list[JSON]:
        return await self._exchange(user, lambda: self.api.click(user, label))

    async def press(self, user: int, data: str) -> list[JSON]:
        return await self._exchange(user, lambda: self.api.push_callback(user, data))

    async def sticker(self, user: int) -> list[JSON]:
        return await self._exchange(user, lambda: self.api.push_sticker(user))

    async def to_menu(
        self, user: int, situation: str = "Unsure about an invite", lean: str = "Leaning no"
    ) -> list[JSON]:
        """/start, a situation and a lean: the three steps before the objection menu."""
        await self.say(user, "/start")
        await self.tap(user, situation)
        return await self.tap(user, lean)

    def labels(self, user: int) -> list[str]:
        return [b["text"] for row in self.api.last_keyboard(user) for b in row]


def texts(messages: list[JSON]) -> str:
    """The text of messages, and the captions of pictures and files."""
    return "\n".join(str(m.get("text", m.get("caption", ""))) for m in messages)
