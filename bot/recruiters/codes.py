"""Link codes, deep links and their QR codes."""

from __future__ import annotations

import io
import re
import secrets

import segno
from telegram.helpers import create_deep_linked_url

# Telegram's /start parameter: up to 64 characters of A-Za-z0-9_-. token_urlsafe(12) gives 16
# of them from 96 random bits: unguessable, and short enough to type from a poster.
CODE_BYTES = 12
CODE_RE = re.compile(r"^[A-Za-z0-9_-]{12,64}$")


def new_code() -> str:
    return secrets.token_urlsafe(CODE_BYTES)


def looks_like_code(text: str) -> bool:
    return bool(CODE_RE.match(text))


def deep_link(bot_username: str, code: str) -> str:
    """https://t.me/<bot>?start=<code>: opening it starts the bot with the code."""
    return create_deep_linked_url(bot_username, code)


def qr_png(url: str) -> bytes:
    """A QR code of the link as a PNG (segno is pure Python: no Pillow needed)."""
    out = io.BytesIO()
    # Medium error correction survives a crease in a printed poster; 8 px per module scans
    # from a phone screen too.
    segno.make(url, error="m").save(out, kind="png", scale=8, border=4)
    return out.getvalue()
