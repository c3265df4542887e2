"""What to remind whom, and when: pure functions of the decision, the interview time and now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.engine.model import ScheduleNudge

# Nudge kinds. Stored in SQLite and used as template names (prompts/messages/nudge_<kind>.html).
PREP = "prep"  # preparation checklist, the day before
PEP = "pep"  # short pep talk, about 2 hours before
DEBRIEF = "debrief"  # "How did it go?", about 3 hours after
FOLLOWUP = "followup"  # keep the connection alive, a week later
CHECKBACK = "checkback"  # while undecided
KINDS = (PREP, PEP, DEBRIEF, FOLLOWUP, CHECKBACK)
# Reminders that only make sense before the interview; moved or dropped when it changes.
INTERVIEW_KINDS = (PREP, PEP, DEBRIEF, FOLLOWUP)

PREP_BEFORE = timedelta(hours=24)
PREP_ONLY_IF_AWAY = timedelta(hours=30)  # closer than this, the checklist is shown at once
PEP_BEFORE = timedelta(hours=2)
DEBRIEF_AFTER = timedelta(hours=3)
DEBRIEF_WINDOW = timedelta(days=7)
FOLLOWUP_AFTER = timedelta(days=7)
FOLLOWUP_WINDOW = timedelta(days=7)
FOLLOWUP_NOT_BEFORE = timedelta(days=1)  # after they said how it went
# Check-backs after 1 day, then 3 more days, then 3 more: at most three, stopped on a decision.
CHECKBACK_OFFSETS = (timedelta(days=1), timedelta(days=4), timedelta(days=7))
CHECKBACK_WINDOW = timedelta(days=2)
SNOOZE = timedelta(hours=3)


@dataclass(frozen=True)
class QuietHours:
    start: time = time(21, 0)
    end: time = time(8, 0)

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def respect_quiet_hours(
    due: datetime, deadline: datetime | None, zone: ZoneInfo, quiet: QuietHours
) -> datetime | None:
    """Move a nudge due in quiet hours to the end of them; None if its deadline passes first."""
    local = due.astimezone(zone)
    if quiet.contains(local.time().replace(tzinfo=None)):
        day = local.date()
        if local.time() >= quiet.end:
            # Quiet yet past the end: the evening of a window across midnight, which ends
            # tomorrow. (A window within a day holds no time past its end.)
            day = day + timedelta(days=1)
        moved = datetime.combine(day, quiet.end, tzinfo=zone).astimezone(due.tzinfo)
        if deadline is not None and moved >= deadline:
            return None
        return moved
    if deadline is not None and due >= deadline:
        return None
    return due


def _fit(
    kind: str,
    due: datetime,
    deadline: datetime | None,
    zone: ZoneInfo,
    quiet: QuietHours,
) -> list[ScheduleNudge]:
    moved = respect_quiet_hours(due, deadline, zone, quiet)
    return [] if moved is None else [ScheduleNudge(kind, moved, deadline)]


def plan_interview(
    interview_at: datetime, now: datetime, zone: ZoneInfo, quiet: QuietHours
) -> list[ScheduleNudge]:
    """Reminders for a candidate who is going and knows when."""
    plan: list[ScheduleNudge] = []
    if interview_at - now > PREP_ONLY_IF_AWAY:
        plan += _fit(PREP, interview_at - PREP_BEFORE, interview_at - PEP_BEFORE, zone, quiet)
    if interview_at - PEP_BEFORE > now:
        plan += _fit(PEP, interview_at - PEP_BEFORE, interview_at, zone, quiet)
    debrief_due = max(interview_at + DEBRIEF_AFTER, now)
    plan += _fit(DEBRIEF, debrief_due, interview_at + DEBRIEF_WINDOW, zone, quiet)
    return plan


def plan_checkbacks(
    now: datetime, interview_at: datetime | None, zone: ZoneInfo, quiet: QuietHours
) -> list[ScheduleNudge]:
    """Check-backs for an undecided candidate; none after the interview has started."""
    plan: list[ScheduleNudge] = []
    for offset in CHECKBACK_OFFSETS:
        due = now + offset
        deadline = due + CHECKBACK_WINDOW
        if interview_at is not None:
            deadline = min(deadline, interview_at)
        plan += _fit(CHECKBACK, due, deadline, zone, quiet)
    return plan


def plan_followup(
    interview_at: datetime | None, now: datetime, zone: ZoneInfo, quiet: QuietHours
) -> list[ScheduleNudge]:
    """A week after the interview (or after they told us how it went), a nudge to follow up;
    never sooner than a day after they told us, so a long-past interview still gets one."""
    due = max((interview_at or now) + FOLLOWUP_AFTER, now + FOLLOWUP_NOT_BEFORE)
    return _fit(FOLLOWUP, due, due + FOLLOWUP_WINDOW, zone, quiet)


def snooze_until(
    now: datetime, deadline: datetime | None, zone: ZoneInfo, quiet: QuietHours
) -> datetime | None:
    """When "Remind me later" brings a nudge back; None if that would miss its deadline."""
    return respect_quiet_hours(now + SNOOZE, deadline, zone, quiet)
