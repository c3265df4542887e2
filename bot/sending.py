"""What a front end must do to deliver a message, and how delivery can fail."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

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


def to_payload(item: Outgoing) -> str:
    """What goes in the outbox for a message Telegram did not take yet. A message is stored
    as `RenderedMessage.to_json` (what an update's queued replies hold); a picture or a file
    with its bytes in base64 and its caption."""
    if isinstance(item, RenderedMessage):
        return item.to_json()
    data: dict[str, Any] = {"caption": json.loads(item.caption.to_json())}
    if isinstance(item, Photo):
        data["photo"] = base64.b64encode(item.png).decode("ascii")
    else:
        data["document"] = base64.b64encode(item.data).decode("ascii")
        data["filename"] = item.filename
    return json.dumps(data, separators=(",", ":"))


def from_payload(raw: str) -> Outgoing:
    """`to_payload` read back; ValueError, KeyError or TypeError if it is not one."""
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not a message")
    if "caption" not in data:
        return RenderedMessage.from_json(raw)
    if not isinstance(data["caption"], dict):
        raise ValueError("not a caption")
    caption = RenderedMessage.from_json(json.dumps(data["caption"]))
    if "photo" in data:
        return Photo(base64.b64decode(data["photo"], validate=True), caption)
    body = base64.b64decode(data["document"], validate=True)
    return Document(body, str(data["filename"]), caption)


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


@runtime_checkable
class FileSender(Sender, Protocol):
    async def send_any(self, chat_id: int, item: Outgoing) -> None:
        """Deliver a message, a picture or a file, or raise a SendError."""
