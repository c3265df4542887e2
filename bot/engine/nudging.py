"""What a due nudge becomes: the messages to send, a later time, or nothing any more."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.engine import planner
from bot.engine.decide import Defer, Expire, NudgeDecision, Send
from bot.engine.flow import DECISIONS, btn, rows
from bot.engine.model import Button, PendingNudge, Reply, State, known_zone
from bot.knowledge.base import KnowledgeBase


def _still_relevant(kind: str, state: State, now: datetime) -> str | None:
    """Why a nudge no longer makes sense, or None if it still does."""
    interview = state.interview_at
    if kind in planner.KINDS and state.scam:
        return "flagged as possible fraud"  # until the candidate says it checked out
    if kind in (planner.PREP, planner.PEP):
        if state.decision != "go" or interview is None or interview <= now:
            return "no upcoming interview"
    elif kind == planner.DEBRIEF:
        if state.decision != "go" or interview is None or state.attended is not None:
            return "nothing to debrief"
    elif kind == planner.FOLLOWUP:
        if state.attended not in ("went_well", "mixed"):
            return "no interview to follow up"
    elif kind == planner.CHECKBACK:
        if state.decision not in (None, "unsure"):
            return "already decided"
    else:
        return f"unknown kind {kind}"
    return None


def decide_nudge(
    nudge: PendingNudge,
    state: State | None,
    now: datetime,
    kb: KnowledgeBase,
    default_timezone: str,
    quiet: planner.QuietHours,
) -> NudgeDecision:
    if state is None:
        return Expire("user gone")
    if nudge.deadline is not None and nudge.deadline <= now:
        return Expire("deadline passed")
    reason = _still_relevant(nudge.kind, state, now)
    if reason:
        return Expire(reason)
    zone_name = state.timezone or default_timezone
    zone = known_zone(zone_name)
    if zone is None:
        zone_name, zone = "UTC", ZoneInfo("UTC")
    moved = planner.respect_quiet_hours(now, nudge.deadline, zone, quiet)
    if moved is None:
        return Expire("quiet hours last past the deadline")
    if moved > now:
        return Defer(moved)
    return Send((nudge_reply(nudge, state, kb, zone_name),))


def nudge_reply(nudge: PendingNudge, state: State, kb: KnowledgeBase, zone: str) -> Reply:
    later = btn("remind_later", "nudge", nudge.id, "later")
    stop = btn("stop_reminders", "nudge", nudge.id, "stop")
    choices: list[Button] = []
    context: dict[str, object] = {
        "interview_at": state.interview_at,
        "zone": zone,
        "coaching": kb.coaching,
    }
    if nudge.kind == planner.PEP:
        choices = [
            btn("still_on", "pre", nudge.id, "on"),
            btn("reschedule", "pre", nudge.id, "resched"),
            btn("cant_make_it", "pre", nudge.id, "cant"),
        ]
        context["pep"] = kb.coaching.pep[nudge.id % len(kb.coaching.pep)]
    elif nudge.kind == planner.DEBRIEF:
        choices = [
            btn("went_well", "post", nudge.id, "well"),
            btn("mixed", "post", nudge.id, "mixed"),
            btn("didnt_happen", "post", nudge.id, "missed"),
        ]
    elif nudge.kind == planner.CHECKBACK:
        choices = [btn(f"dec_{d}", "dec", d) for d in DECISIONS]
    return Reply(f"nudge_{nudge.kind}", context, rows(*choices, later, stop))
