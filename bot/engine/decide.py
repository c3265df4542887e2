"""What the dispatcher asks the engine about a due nudge: send it, move it, or drop it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.engine.model import Reply


@dataclass(frozen=True)
class Send:
    replies: tuple[Reply, ...]


@dataclass(frozen=True)
class Defer:
    """Not now (quiet hours in the user's zone): put it back for `until`."""

    until: datetime


@dataclass(frozen=True)
class Expire:
    """It no longer makes sense (its deadline passed, the user decided, or opted out)."""

    reason: str


NudgeDecision = Send | Defer | Expire
