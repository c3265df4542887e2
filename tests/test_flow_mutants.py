"""Behaviour of the conversation engine that mutation testing (mutmut, `bot/engine/flow.py`)
found unpinned: each test states what the user sees or what is stored, not how the code does it.

Driven like tests/test_engine.py: a fake clock, every reply rendered and checked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.engine import flow, planner
from bot.engine.model import MoveNudge, PendingNudge, State, Step
from tests.test_engine import NOW, PARIS, Convo, confirm, going_in_paris, make_ctx, schedules

HELSINKI = ZoneInfo("Europe/Helsinki")  # UTC+2 in March 2026, one hour ahead of Paris


# --- times are stored in UTC, whatever the machine's zone ------------------------------------


def stored_in_utc(moment: datetime | None) -> bool:
    return moment is not None and moment.utcoffset() == timedelta(0)


@pytest.mark.usefixtures("machine_in_tokyo")
@pytest.mark.parametrize("day", ["today", "tomorrow"])
def test_a_day_button_stores_the_day_in_utc_whatever_the_machines_zone(day: str) -> None:
    assert datetime.now().astimezone().utcoffset() == timedelta(hours=9)  # the fixture works
    convo = going_in_paris()
    convo.press("when", day)
    assert stored_in_utc(convo.state.proposed_at)
    assert '"proposed_at":"2026-03-0' in convo.state.to_json()
    assert "+00:00" in convo.state.to_json()


@pytest.mark.usefixtures("machine_in_tokyo")
def test_a_corrected_day_on_the_confirm_screen_is_stored_in_utc() -> None:
    convo = going_in_paris()
    convo.say("Tue 2pm")
    convo.say("no wait, it's Thursday")
    assert convo.state.step == Step.CONFIRM_WHEN
    # The coming Thursday, 5 March, at the same 14:00 in Paris (UTC+1): 13:00 UTC.
    assert convo.state.proposed_at == datetime(2026, 3, 5, 13, 0, tzinfo=UTC)
    assert stored_in_utc(convo.state.proposed_at)


@pytest.mark.usefixtures("machine_in_tokyo")
def test_a_zone_change_stores_the_moved_times_in_utc() -> None:
    interview = datetime(2026, 3, 10, 14, 0, tzinfo=PARIS)
    proposed = datetime(2026, 3, 11, 15, 0, tzinfo=PARIS)
    state = State(
        step=Step.GO,
        decision="go",
        timezone="Europe/Paris",
        interview_at=interview,
        proposed_at=proposed,
    )
    convo = Convo(state=state)
    convo.cmd("timezone", "Europe/Helsinki")
    assert convo.state.interview_at == datetime(2026, 3, 10, 14, 0, tzinfo=HELSINKI)
    assert convo.state.proposed_at == datetime(2026, 3, 11, 15, 0, tzinfo=HELSINKI)
    assert stored_in_utc(convo.state.interview_at)
    assert stored_in_utc(convo.state.proposed_at)
    assert "+09:00" not in convo.state.to_json()


# --- a zone change at the edges ------------------------------------------------------------


def test_a_zone_name_this_machine_does_not_know_is_asked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name the zone reader gives but the host's time-zone database lacks (an older tzdata):
    asked again, like any unknown place, and nothing is changed."""
    monkeypatch.setattr(flow, "resolve_timezone", lambda text, now: "Mars/Olympus_Mons")
    state = State(step=Step.MENU, timezone="Europe/Paris")
    convo = Convo(state=state)
    convo.cmd("timezone", "Olympus Mons")
    assert convo.templates == ["tz_unknown", "ask_tz"]
    assert convo.state.timezone == "Europe/Paris"
    assert convo.state.step == Step.ASK_TZ


def test_an_interview_the_new_zone_would_start_right_now_is_left_where_it_was() -> None:
    # 11:00 in Paris is 10:00 UTC, an hour from now; 11:00 in Helsinki is 09:00 UTC: now.
    interview = datetime(2026, 3, 4, 11, 0, tzinfo=PARIS)
    prep = PendingNudge(1, planner.PEP, interview - timedelta(minutes=30), interview)
    state = State(step=Step.GO, decision="go", timezone="Europe/Paris", interview_at=interview)
    convo = Convo(ctx=make_ctx(pending=(prep,)), state=state)
    convo.cmd("timezone", "Europe/Helsinki")
    assert convo.state.timezone == "Europe/Helsinki"
    assert convo.state.interview_at == interview  # not moved to a start that is now
    assert convo.out.effects == ()  # its reminders stay too
    # The instant is kept, so it is still to come and announced: 10:00 UTC, 12:00 in Helsinki,
    # and said as kept, not as a time that "stays".
    assert "In that zone, 11:00 on Wednesday 4 Mar is no longer ahead, so I kept your" in (
        convo.text
    )
    assert "12:00 your time, on Wednesday 4 Mar" in convo.text
    assert "stays" not in convo.text


def test_an_interview_starting_right_now_is_no_longer_upcoming_after_a_zone_change() -> None:
    state = State(step=Step.UNSURE, decision="unsure", timezone="Europe/Paris", interview_at=NOW)
    # A check-in due tomorrow that ended when the interview started: it now runs its own two days.
    due = NOW + timedelta(days=1)
    checkin = PendingNudge(7, planner.CHECKBACK, due, NOW)
    convo = Convo(ctx=make_ctx(pending=(checkin,)), state=state)
    convo.cmd("timezone", "Europe/Helsinki")
    assert "Your interview" not in convo.text
    assert convo.out.replies[0].context["interview_at"] is None
    assert convo.out.effects == (MoveNudge(7, due, due + timedelta(days=2)),)


# --- the farthest interview that is not a typo ---------------------------------------------
# flow.py reads a date more than two years (2 x 366 days) ahead as a typo; the limit itself is
# still a date: from Wednesday 4 March 2026, 10:00 in Paris, that is Sunday 5 March 2028, 10:00.


def test_a_time_exactly_at_the_far_limit_is_proposed_and_a_minute_later_is_not() -> None:
    convo = going_in_paris()
    convo.say("March 5 2028 10am")
    assert convo.templates == ["confirm_when"]
    assert convo.state.proposed_at == datetime(2028, 3, 5, 10, 0, tzinfo=PARIS)
    confirm(convo)  # and its "Yes, that's right" is not taken for a forged one
    assert convo.templates[0] == "plan"
    assert convo.state.interview_at == datetime(2028, 3, 5, 10, 0, tzinfo=PARIS)
    convo = going_in_paris()
    convo.say("March 5 2028 10:01am")
    assert convo.templates == ["when_unclear", "ask_when"]
    assert convo.state.proposed_at is None


# --- what is planned for whom ----------------------------------------------------------------
# `plan_for` (the nudges that fit the decision and the interview time) is the one place every
# path that plans goes through; the conversation reaches it today only with "go" or "unsure",
# so its own rule is pinned here: an interview alone plans nothing.


@pytest.mark.parametrize("decision", [None, "pass"])
def test_an_interview_without_a_decision_to_go_plans_no_reminders(decision: str | None) -> None:
    state = State(decision=decision, timezone="Europe/Paris", interview_at=NOW + timedelta(days=5))
    assert flow.plan_for(state, make_ctx()) == []
    # The same interview for someone going: its reminders.
    going = flow.plan_for(state.evolve(decision="go"), make_ctx())
    assert set(schedules(going)) == {planner.PREP, planner.PEP, planner.DEBRIEF}
