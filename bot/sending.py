"""What a front end must do to deliver a message, and how delivery can fail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.render import RenderedMessage


@dataclass(frozen=True)
class Photo:
    """A picture (a link's QR code, a funnel chart) with its caption."""

    png: bytes
    caption: RenderedMessage


@dataclass(frozen=True)
class Document:
    """A file to download (a CSV export) with its caption."""

    data: bytes
    filename: str
    caption: RenderedMessage


Outgoing = RenderedMessage | Photo | Document


class SendError(Exception):
    """Delivery failed; subclasses say whether and when to try again."""


class Blocked(SendError):
    """The user blocked the bot or deleted their account (Telegram 403): stop writing."""


class RetryLater(SendError):
    """Flood control (Telegram 429): wait `seconds`, then try again."""

    def __init__(self, seconds: float, message: str = "") -> None:
        super().__init__(message or f"retry after {seconds}s")
        self.seconds = seconds


class Rejected(SendError):
    """Telegram refused this message (400): retrying the same message will not help."""


class Sender(Protocol):
    async def send(self, chat_id: int, message: RenderedMessage) -> None:
        """Deliver one message or raise a SendError."""
