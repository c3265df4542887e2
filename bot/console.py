"""The terminal front end: the same engine and database, buttons shown as numbered choices."""

from __future__ import annotations

import asyncio
import textwrap
from typing import TextIO

from bot.config import Settings
from bot.engine.model import Event
from bot.runtime import open_coach
from bot.service import Handled

DEMO_USER = 1  # one local demo user; /restart or /mydata → delete to begin afresh

WIDTH = 78  # a terminal's columns, less one
BANNER = """Interview Coach, terminal demo. Type a number to tap a button, or type freely.
Commands work as in Telegram (/help, /restart, /interview, /nudges, ...).
Ctrl-D quits.
"""


def show(handled: Handled, out: TextIO) -> list[str]:
    """Print the messages; return the callback data of the last keyboard, in number order."""
    choices: list[str] = []
    for message in handled.messages:
        out.write("\n")
        for paragraph in message.plain_text.split("\n"):
            out.write(textwrap.fill(paragraph, WIDTH, replace_whitespace=False) + "\n")
        if message.keyboard:
            choices = []
            for row in message.keyboard:
                for label, data in row:
                    choices.append(data)
                    out.write(f"  [{len(choices)}] {label}\n")
    if handled.notice:
        out.write(f"  ({handled.notice})\n")
    out.flush()
    return choices


async def demo(settings: Settings, stdin: TextIO, out: TextIO, first_name: str = "") -> int:
    coach = await open_coach(settings)
    try:
        out.write(BANNER)
        handled = await coach.handle(
            Event(DEMO_USER, "command", "start", "", first_name), DEMO_USER
        )
        choices = show(handled, out)
        while True:
            out.write("\n> ")
            out.flush()
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                out.write("\nBye!\n")
                return 0
            text = line.strip()
            if not text:
                continue
            if text.isdigit() and 1 <= int(text) <= len(choices):
                event = Event(DEMO_USER, "button", choices[int(text) - 1], "", first_name)
            elif text.startswith("/"):
                head, _sep, argument = text.partition(" ")
                event = Event(DEMO_USER, "command", head[1:].lower(), argument, first_name)
            else:
                event = Event(DEMO_USER, "text", text, "", first_name)
            handled = await coach.handle(event, DEMO_USER)
            choices = show(handled, out) or choices
    finally:
        await coach.store.db.close()
