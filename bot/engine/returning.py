"""A user who blocked the bot (which cancelled their reminders) writes again.

Whatever their first update is, a tap, a word or /start, it gets the plan back: the reminders
their interview still calls for are set up again, with a word saying so, once. /start does
this itself (in its greeting); for anything else the word comes first, then the answer to
what they sent.
"""

from __future__ import annotations

from bot.engine import planner
from bot.engine.context import Context
from bot.engine.flow import MAX_NAME, plan_for
from bot.engine.model import (
    CancelNudges,
    DeleteUserData,
    Event,
    Outcome,
    Reply,
    ScheduleNudge,
    SetOptOut,
)


def welcome_back(event: Event, outcome: Outcome, ctx: Context) -> Outcome:
    """`outcome` (the answer to a returning user's first update) with their reminders put
    back, if their plan still calls for any and the update did not settle them itself."""
    if not ctx.returning or any(
        isinstance(e, ScheduleNudge | SetOptOut | DeleteUserData) for e in outcome.effects
    ):
        return outcome  # planned anew (/start), stopped, or deleted: theirs to decide
    state = outcome.state
    upcoming = state.interview_at is not None and state.interview_at > ctx.now
    if not upcoming or state.decision not in ("go", "unsure"):
        return outcome
    plan = plan_for(state, ctx)
    if not plan:
        return outcome
    note = Reply(
        "welcome_back",
        {
            "first_name": event.first_name.strip()[:MAX_NAME],
            "back": state,
            "zone": ctx.zone_name(state),
        },
    )
    return Outcome(
        (note, *outcome.replies),
        state,
        (CancelNudges(planner.KINDS), *plan, *outcome.effects),
        outcome.notice,
        outcome.milestones,
    )
