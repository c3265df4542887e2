"""What the engine reads besides the event and the state: content, the clock, settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.engine.model import Invitation, PendingNudge, Referral, State, known_zone
from bot.engine.planner import QuietHours
from bot.knowledge.base import KnowledgeBase
from bot.knowledge.classifier import ObjectionClassifier


@dataclass(frozen=True)
class Context:
    kb: KnowledgeBase
    classifier: ObjectionClassifier
    now: datetime  # aware, UTC: injected so tests can travel in time
    default_timezone: str = "UTC"
    quiet: QuietHours = field(default_factory=QuietHours)
    pending: Sequence[PendingNudge] = field(default_factory=tuple)
    # The nudge a nudge button refers to (sent ones are not pending), loaded by the service.
    tapped: PendingNudge | None = None
    # The opening a recruiter's link brought the candidate to, if any.
    invitation: Invitation | None = None
    # Every opening a recruiter's link brought them to, open or not (/privacy, /mydata).
    referrals: tuple[Referral, ...] = ()
    # They blocked the bot (their reminders were cancelled) and now write again.
    returning: bool = False

    def zone_name(self, state: State) -> str:
        return state.timezone or self.default_timezone

    def zone(self, state: State) -> ZoneInfo:
        return known_zone(self.zone_name(state)) or ZoneInfo("UTC")
