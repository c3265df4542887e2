"""Settings from the environment or a `.env` file (documented in `.env.example`)."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Telegram tokens look like "123456:ABC-def_ghi"; a local emulator accepts "123:abc" too.
TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


class ConfigError(Exception):
    """A setting is missing or malformed; the CLI prints it in one line and exits 2."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    database_path: Path = Path("data/interview_coach.sqlite3")
    log_level: str = "INFO"
    default_timezone: str = "UTC"
    quiet_hours_start: time = time(21, 0)
    quiet_hours_end: time = time(8, 0)
    # Telegram allows ~30 messages/s overall and about 1/s per chat. This budget paces
    # reminders, notifications and digests; replies go at once, in the room left over.
    max_messages_per_second: float = Field(default=20.0, gt=0)
    per_chat_interval_seconds: float = Field(default=1.0, ge=0)
    # Webhook mode is used when WEBHOOK_URL is set; otherwise long polling.
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_secret: SecretStr | None = None
    # A daily online backup (SQLite's backup API) into this folder at BACKUP_AT (UTC), keeping
    # the newest BACKUP_KEEP; empty: none. `python -m bot backup` makes one by hand.
    backup_dir: Path | None = None
    backup_keep: int = Field(default=7, ge=1)
    backup_at: time = time(3, 0)
    # GET /healthz and /metrics: on the webhook's port in webhook mode; in polling mode on
    # METRICS_PORT when set.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_listen: str = "127.0.0.1"
    # Telegram user ids of the administrators who approve recruiters: "123,456".
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p for p in re.split(r"[,\s]+", value.strip()) if p]
            if not all(p.isdigit() for p in parts):
                raise ValueError("ADMIN_IDS must be Telegram user ids separated by commas")
            return frozenset(int(p) for p in parts)
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("default_timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"DEFAULT_TIMEZONE {value!r} is not an IANA time zone") from exc
        return value

    @field_validator("telegram_api_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("TELEGRAM_API_BASE_URL must start with http:// or https://")
        return value

    def require_token(self) -> str:
        if self.telegram_bot_token is None or not self.telegram_bot_token.get_secret_value():
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN is not set: put it in .env or the environment "
                "(see .env.example)"
            )
        token = self.telegram_bot_token.get_secret_value().strip()
        if not TOKEN_RE.match(token):
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN looks malformed: expected digits, a colon and letters, "
                "e.g. 123456:ABC-def"
            )
        return token


def load_settings(**overrides: object) -> Settings:
    """Load settings, turning validation errors into a one-line ConfigError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]).upper()
        raise ConfigError(f"{field}: {first['msg']}") from None
