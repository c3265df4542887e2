"""Logging an operator can read and share: one line per event, secrets never in it.

The bot token (PTB logs request URLs at DEBUG; its "token rejected" error quotes it) and the
webhook secret are replaced in every formatted line, tracebacks included. Users appear as a
keyed hash, never as their Telegram id, and message texts are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.parse
from collections.abc import Iterable

REDACTED = "[redacted]"
_secrets: set[str] = set()
_key = b"interview-coach"


def add_secret(secret: str | None) -> None:
    """Never print this (and, for a token, its secret half after the colon)."""
    if not secret:
        return
    for part in (secret, secret.partition(":")[2]):
        if len(part) >= 6:  # a short fragment would redact ordinary words
            _secrets.add(part)
            _secrets.add(urllib.parse.quote(part, safe=""))


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def user_ref(user_id: int) -> str:
    """A stable pseudonym for log lines: the same user reads the same, the id stays hidden
    (keyed with the bot's token, so it cannot be looked up without it)."""
    return hmac.new(_key, str(user_id).encode(), hashlib.sha256).hexdigest()[:12]


def quoted(value: object) -> str:
    """A value for a key=value line: as it is when it is one word, else in double quotes
    with quotes, backslashes and line breaks escaped, so the line stays one line."""
    text = str(value)
    if text and not any(c.isspace() or c in '"=\\' for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup(level: str, secrets: Iterable[str | None]) -> None:
    global _key
    for secret in secrets:
        add_secret(secret)
        if secret:
            _key = hashlib.sha256(secret.encode()).digest()
    logging.basicConfig(level=level)
    formatter = RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
    # httpx logs every request at INFO, with the token in the URL: redacted, but noise.
    logging.getLogger("httpx").setLevel(logging.WARNING)
