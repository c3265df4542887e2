"""Render engine replies into Telegram HTML with Jinja2 templates from prompts/."""

from __future__ import annotations

import html
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from bot.engine.buttons import MAX_BYTES
from bot.engine.model import Reply

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
MAX_TEXT = 4096  # Telegram's limit for a message, counted after entity parsing
MAX_LABEL = 64


@dataclass(frozen=True)
class RenderedMessage:
    """A message ready to send: Telegram HTML and rows of (label, callback data)."""

    text: str
    keyboard: tuple[tuple[tuple[str, str], ...], ...] = ()

    @property
    def plain_text(self) -> str:
        return html_to_plain(self.text)

    def to_json(self) -> str:
        """For a reply queued in the database until Telegram took it."""
        return json.dumps({"text": self.text, "keyboard": self.keyboard}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> RenderedMessage:
        data = json.loads(raw)
        keyboard = tuple(
            tuple((str(label), str(callback)) for label, callback in row)
            for row in data.get("keyboard", ())
        )
        return cls(str(data["text"]), keyboard)


_TAG_RE = re.compile(r"<[^>]+>")


def html_to_plain(text: str) -> str:
    """Telegram HTML as the reader sees it (for the terminal and for length checks)."""
    return html.unescape(_TAG_RE.sub("", text))


def _when(moment: datetime | None, zone: str = "UTC") -> str:
    """ "Thursday 14 Nov at 15:00" in the user's zone (reads after "on": "on Thursday…")."""
    if moment is None:
        return ""
    return f"{_day(moment, zone)} at {_clock(moment, zone)}"


def _day(moment: datetime | None, zone: str = "UTC") -> str:
    """ "Thursday 14 Nov" in the user's zone."""
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%A} {local.day} {local:%b}"


def _clock(moment: datetime | None, zone: str = "UTC") -> str:
    """ "15:00" in the user's zone."""
    return "" if moment is None else f"{moment.astimezone(ZoneInfo(zone)):%H:%M}"


def zone_label(zone: str) -> str:
    """IANA's Etc/GMT-3 means UTC+3 (POSIX signs); show people the sign they expect."""
    match = re.fullmatch(r"Etc/GMT([+-])(\d{1,2})", zone)
    if match:
        return f"UTC{'-' if match.group(1) == '+' else '+'}{match.group(2)}"
    return zone


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


class Renderer:
    def __init__(self, prompts_dir: Path = PROMPTS_DIR) -> None:
        self.dir = prompts_dir
        # Autoescape everything: names, typed text and knowledge-base strings may hold markup.
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(prompts_dir / "messages"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters["when"] = _when
        self.env.filters["day"] = _day
        self.env.filters["clock"] = _clock
        self.env.filters["zone"] = zone_label
        self.env.filters["truncate_chars"] = _truncate
        with (prompts_dir / "buttons.toml").open("rb") as fh:
            raw_labels: dict[str, str] = tomllib.load(fh)["labels"]
        # Button labels are plain text in Telegram: no escaping, but still templates.
        self.label_env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
        self.labels = {k: self.label_env.from_string(v) for k, v in raw_labels.items()}
        # Most labels have no placeholders: render those once, not on every keyboard.
        self._static = {
            k: _truncate(v.strip(), MAX_LABEL) for k, v in raw_labels.items() if "{" not in v
        }

    def text(self, template: str, context: Mapping[str, Any]) -> str:
        body = self.env.get_template(f"{template}.html").render(**context)
        # Templates are written for reading; collapse the blank-line noise Jinja leaves.
        body = re.sub(r"\n{3,}", "\n\n", body).strip()
        if len(html_to_plain(body)) > MAX_TEXT:
            raise ValueError(f"template {template} rendered over {MAX_TEXT} characters")
        return body

    def label(self, key: str, params: Mapping[str, Any]) -> str:
        static = self._static.get(key)
        if static is not None:
            return static
        return _truncate(self.labels[key].render(**params).strip(), MAX_LABEL)

    def render(self, reply: Reply) -> RenderedMessage:
        rows = []
        for row in reply.keyboard:
            cells = []
            for button in row:
                if len(button.data.encode()) > MAX_BYTES:
                    raise ValueError(f"button data over {MAX_BYTES} bytes: {button.data}")
                cells.append((self.label(button.label, button.params), button.data))
            rows.append(tuple(cells))
        return RenderedMessage(self.text(reply.template, reply.context), tuple(rows))

    def template_names(self) -> list[str]:
        return sorted(
            p.stem for p in (self.dir / "messages").glob("*.html") if not p.stem.startswith("_")
        )


@cache
def default_renderer() -> Renderer:
    return Renderer()
