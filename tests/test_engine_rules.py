"""The conversation's rules at their edges: each expectation is stated from the product's rules
(README, GUIDE), never computed with the engine's own constants.

Driven like tests/test_engine.py: a fake clock, every reply rendered and checked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.engine import buttons as B
from bot.engine import planner
from bot.engine.model import (
    CancelNudge,
    CancelNudges,
    InterviewSet,
    MoveNudge,
    PendingNudge,
    ScheduleNudge,
    State,
    Step,
)
from bot.knowledge.classifier import Alternative, Classification
from tests.test_engine import (
    NOW,
    PARIS,
    Convo,
    confirm,
    going_in_paris,
    kb,
    make_ctx,
    menu_objections,
    schedules,
    stub_ctx,
)

TOKYO = ZoneInfo("Asia/Tokyo")


def reading(top: str, p: float, *others: tuple[str, float]) -> Classification:
    """A classification with chosen scores: the engine's input, not the classifier's guess."""
    return Classification(top, p, tuple(Alternative(label, q) for label, q in others))


def told(result: Classification, state: State | None = None) -> Convo:
    """A user at the worries menu types something the classifier reads as `result`."""
    convo = Convo(ctx=stub_ctx(result), state=state or State(step=Step.MENU))
    convo.say("some words")
    return convo


# --- a likely scam: safety first, at two thresholds ------------------------------------------
# The rule (README): "A likely scam is flagged even at lower confidence". As specified: a scam
# reading of 35% or more is flagged even when it is not a confident reading; a scam runner-up of
# 25% or more is flagged when the leading reading is not confident either.


@pytest.mark.parametrize("p", [0.35, 0.36, 0.9])
def test_a_scam_reading_of_35_percent_or_more_gets_the_fraud_warning(p: float) -> None:
    convo = told(reading("scam_suspected", p, ("not_a_fit", 0.30)))
    assert convo.templates == ["scam"]
    assert convo.state.step == Step.SCAM and convo.state.scam


def test_a_scam_reading_just_under_35_percent_is_a_question_not_a_warning() -> None:
    # Close to another reading: "did you mean" with both, the scam one among them.
    convo = told(reading("scam_suspected", 0.34, ("not_a_fit", 0.30)))
    assert convo.templates == ["did_you_mean"]
    assert menu_objections(convo) == ["scam_suspected", "not_a_fit"]
    assert not convo.state.scam and convo.state.step == Step.MENU
    # Alone and weak: not understood, the menu (which lists "Looks like a scam").
    convo = told(reading("scam_suspected", 0.34, ("not_a_fit", 0.05)))
    assert convo.templates == ["not_understood", "menu"]
    assert not convo.state.scam


@pytest.mark.parametrize("p", [0.25, 0.26, 0.3])
def test_a_scam_runner_up_of_25_percent_or_more_gets_the_fraud_warning(p: float) -> None:
    convo = told(reading("not_a_fit", 0.40, ("scam_suspected", p)))
    assert convo.templates == ["scam"] and convo.state.scam


def test_a_scam_runner_up_just_under_25_percent_is_offered_not_flagged() -> None:
    convo = told(reading("not_a_fit", 0.40, ("scam_suspected", 0.24)))
    assert convo.templates == ["did_you_mean"]
    assert menu_objections(convo) == ["not_a_fit", "scam_suspected"]
    assert not convo.state.scam


def test_a_confident_other_reading_is_answered_despite_a_scam_runner_up() -> None:
    convo = told(reading("not_a_fit", 0.70, ("scam_suspected", 0.26)))
    assert convo.templates == ["argument"] and convo.state.objection == "not_a_fit"
    assert not convo.state.scam


def test_only_the_runner_up_counts_not_the_third_reading() -> None:
    convo = told(reading("nervous", 0.36, ("not_a_fit", 0.31), ("scam_suspected", 0.30)))
    assert convo.templates == ["did_you_mean"]
    assert menu_objections(convo) == ["nervous", "not_a_fit"]


def test_a_likely_scam_typed_on_the_time_screen_is_flagged_too() -> None:
    state = State(step=Step.ASK_WHEN, decision="go", timezone="Europe/Paris")
    convo = told(reading("scam_suspected", 0.35, ("other", 0.3)), state)
    assert convo.templates == ["scam"] and convo.state.scam


# --- a change of zone moves what is planned ----------------------------------------------------

TUE_2PM_PARIS = datetime(2026, 3, 10, 14, 0, tzinfo=PARIS)  # 13:00 UTC
TUE_2PM_TOKYO = datetime(2026, 3, 10, 14, 0, tzinfo=TOKYO)  # 05:00 UTC


def test_a_new_zone_replans_the_check_ins_of_an_undecided_user() -> None:
    """README: changing the zone keeps the typed 14:00 and moves the plan with it. For someone
    still undecided the plan is check-ins: out of quiet hours in the new zone, and never after
    the interview (now 14:00 in Tokyo, 8 hours earlier) has started."""
    untouched = PendingNudge(
        1,
        planner.CHECKBACK,
        datetime(2026, 3, 5, 9, 0, tzinfo=UTC),
        datetime(2026, 3, 7, 9, 0, tzinfo=UTC),
    )  # 18:00 in Tokyo, over by Saturday: fine as it is
    at_midnight = PendingNudge(
        2, planner.CHECKBACK, datetime(2026, 3, 8, 15, 0, tzinfo=UTC), TUE_2PM_PARIS
    )  # Monday 00:00 in Tokyo; good until the interview
    too_late = PendingNudge(
        3, planner.CHECKBACK, datetime(2026, 3, 10, 9, 0, tzinfo=UTC), TUE_2PM_PARIS
    )  # Tuesday 18:00 in Tokyo: after the interview there
    state = State(
        step=Step.UNSURE, decision="unsure", timezone="Europe/Paris", interview_at=TUE_2PM_PARIS
    )
    convo = Convo(ctx=make_ctx(pending=(untouched, at_midnight, too_late)), state=state)
    convo.cmd("timezone", "Asia/Tokyo")
    assert convo.state.interview_at == TUE_2PM_TOKYO
    assert convo.out.effects == (
        MoveNudge(2, datetime(2026, 3, 9, 8, 0, tzinfo=TOKYO), TUE_2PM_TOKYO),
        CancelNudge(3),
    )
    assert convo.out.milestones == (InterviewSet(TUE_2PM_TOKYO, TUE_2PM_PARIS),)


def test_a_later_interview_gives_a_check_in_its_two_days_back() -> None:
    # Planned in Tokyo, cut short by the interview there; in Paris the interview is 8 hours
    # later, so the check-in runs its full two days (or until the interview, if sooner).
    capped = PendingNudge(
        4, planner.CHECKBACK, datetime(2026, 3, 8, 23, 0, tzinfo=UTC), TUE_2PM_TOKYO
    )  # Monday 08:00 in Tokyo, Monday 00:00 in Paris
    state = State(
        step=Step.UNSURE, decision="unsure", timezone="Asia/Tokyo", interview_at=TUE_2PM_TOKYO
    )
    convo = Convo(ctx=make_ctx(pending=(capped,)), state=state)
    convo.cmd("timezone", "Europe/Paris")
    assert convo.state.interview_at == TUE_2PM_PARIS
    # Two days after Sunday 23:00 UTC is Tuesday 23:00, after the interview: it ends then.
    assert convo.out.effects == (
        MoveNudge(4, datetime(2026, 3, 9, 8, 0, tzinfo=PARIS), TUE_2PM_PARIS),
    )


def test_a_new_zone_moves_check_ins_out_of_its_night_without_an_interview() -> None:
    night_in_tokyo = PendingNudge(
        5,
        planner.CHECKBACK,
        datetime(2026, 3, 5, 15, 0, tzinfo=UTC),
        datetime(2026, 3, 7, 15, 0, tzinfo=UTC),
    )  # 16:00 in Paris, midnight in Tokyo
    state = State(step=Step.UNSURE, decision="unsure", timezone="Europe/Paris")
    convo = Convo(ctx=make_ctx(pending=(night_in_tokyo,)), state=state)
    convo.cmd("timezone", "Tokyo")
    assert convo.out.effects == (
        MoveNudge(5, datetime(2026, 3, 6, 8, 0, tzinfo=TOKYO), night_in_tokyo.deadline),
    )
    # Back to Paris: 08:00 in Tokyo is 00:00 in Paris, quiet again: 08:00 Paris.
    moved = PendingNudge(
        5, planner.CHECKBACK, datetime(2026, 3, 6, 8, 0, tzinfo=TOKYO), night_in_tokyo.deadline
    )
    convo = Convo(ctx=make_ctx(pending=(moved,)), state=convo.state)
    convo.cmd("timezone", "Paris")
    assert convo.out.effects == (
        MoveNudge(5, datetime(2026, 3, 6, 8, 0, tzinfo=PARIS), night_in_tokyo.deadline),
    )


def test_a_new_zone_leaves_a_going_users_reminders_to_the_interview_alone() -> None:
    # Going: no check-ins pending, and the reminders move with the interview (not re-fitted
    # as check-ins would be).
    pep = PendingNudge(6, planner.PEP, TUE_2PM_PARIS - timedelta(hours=2), TUE_2PM_PARIS)
    state = State(step=Step.GO, decision="go", timezone="Europe/Paris", interview_at=TUE_2PM_PARIS)
    convo = Convo(ctx=make_ctx(pending=(pep,)), state=state)
    convo.cmd("timezone", "Asia/Tokyo")
    assert convo.out.effects == (MoveNudge(6, TUE_2PM_TOKYO - timedelta(hours=2), TUE_2PM_TOKYO),)


# --- /start -----------------------------------------------------------------------------------


def test_start_forgets_a_decision_that_has_no_interview() -> None:
    """README: /start begins the talk again; "a planned interview and its decision stay".
    Without an interview, an old "no" (or fraud flag, or checklist seen) does not."""
    state = State(
        step=Step.PASS,
        decision="pass",
        checklist_shown=True,
        scam=True,
        timezone="Europe/Paris",
        interview_pending=True,
    )
    convo = Convo(state=state)
    convo.cmd("start")
    assert convo.state.decision is None
    assert not convo.state.scam and not convo.state.checklist_shown
    assert convo.state.timezone == "Europe/Paris" and convo.state.interview_pending
    assert convo.out.effects == ()
    # A fresh "I'm going to prepare": the checklist again, no fraud check in the way.
    convo.press("sit", "prep")
    assert convo.templates == ["go_checklist", "ask_when"]


def test_start_keeps_the_decision_of_a_planned_interview() -> None:
    interview = NOW + timedelta(days=3)
    state = State(
        step=Step.GO,
        decision="go",
        checklist_shown=True,
        timezone="Europe/Paris",
        interview_at=interview,
    )
    convo = Convo(state=state)
    convo.cmd("start")
    assert convo.state.decision == "go" and convo.state.checklist_shown
    assert convo.out.effects == ()  # their reminders are still there


@pytest.mark.parametrize("decision", ["go", "unsure"])
def test_start_after_blocking_the_bot_plans_the_reminders_again(decision: str) -> None:
    # README: a 403 cancels their nudges; "a user who comes back with /start gets their plan
    # back".
    state = State(decision=decision, timezone="Europe/Paris", interview_at=TUE_2PM_PARIS)
    convo = Convo(ctx=make_ctx(returning=True), state=state)
    convo.cmd("start")
    assert convo.out.effects[0] == CancelNudges(planner.KINDS)
    planned = [e for e in convo.out.effects if isinstance(e, ScheduleNudge)]
    if decision == "go":
        assert {e.kind for e in planned} == {planner.PREP, planner.PEP, planner.DEBRIEF}
    else:
        assert [e.due_at for e in planned] == [NOW + timedelta(days=d) for d in (1, 4)]
    assert convo.out.replies[0].context["back"] is not None


@pytest.mark.parametrize(
    "state",
    [
        State(decision="pass", interview_at=TUE_2PM_PARIS),  # not going: nothing to plan
        State(decision="go", interview_at=NOW - timedelta(hours=1)),  # already over
        State(decision="go"),  # no time given
    ],
)
def test_start_after_blocking_the_bot_plans_nothing_without_an_upcoming_interview(
    state: State,
) -> None:
    convo = Convo(ctx=make_ctx(returning=True), state=state)
    convo.cmd("start")
    assert convo.out.effects == ()
    assert convo.out.replies[0].context["back"] is None


# --- dates far ahead ---------------------------------------------------------------------------
# flow.py: "interviews further away than this are typos" (about two years): such a date is not
# proposed, and a forged confirmation of one is refused.


def test_a_date_almost_two_years_ahead_is_proposed() -> None:
    convo = going_in_paris()
    convo.say("March 1 2028 10am")
    assert convo.templates == ["confirm_when"]
    assert convo.state.proposed_at == datetime(2028, 3, 1, 10, 0, tzinfo=PARIS)


@pytest.mark.parametrize("typed", ["March 10 2028 10am", "June 1 2030 9am", "3099 March 3 10am"])
def test_a_date_more_than_two_years_ahead_is_a_typo(typed: str) -> None:
    convo = going_in_paris()
    before = convo.state
    convo.say(typed)
    assert convo.templates == ["when_unclear", "ask_when"]
    assert convo.state == before and convo.out.effects == ()


@pytest.mark.parametrize("typed", ["friday at 99", "the 32nd"])
def test_an_hour_or_a_day_that_does_not_exist_is_not_proposed(typed: str) -> None:
    # Read as small talk by the classifier (stubbed), so only the date reading is at stake.
    before = State(step=Step.ASK_WHEN, decision="go", timezone="Europe/Paris")
    convo = Convo(ctx=stub_ctx(reading("other", 0.9)), state=before)
    convo.say(typed)
    assert convo.templates == ["when_unclear", "ask_when"]
    assert convo.state == before


def test_a_far_away_day_typed_as_a_correction_is_not_proposed() -> None:
    convo = going_in_paris()
    convo.say("Tue 2pm")
    proposing = convo.state
    convo.say("no wait, it's March 10 2029")
    assert convo.templates == ["when_unclear", "confirm_when"]
    assert convo.state == proposing


def test_a_forged_confirmation_years_ahead_is_refused() -> None:
    convo = going_in_paris()
    three_years = int((NOW + timedelta(days=3 * 365)).timestamp() // 60)
    convo.tap(B.pack("whenok", three_years))
    assert convo.templates == ["unknown_button", "ask_when"]
    assert convo.state.interview_at is None
    a_year = NOW + timedelta(days=365)
    convo.tap(B.pack("whenok", int(a_year.timestamp() // 60)))
    assert convo.templates == ["plan"] and convo.state.interview_at == a_year


# --- "when?" after "not scheduled yet" ---------------------------------------------------------


def test_an_undecided_user_who_has_no_date_yet_is_not_asked_again() -> None:
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.press("lean", "unsure")
    convo.press("obj", "waste_of_time")
    convo.press("ok", "waste_of_time")
    convo.press("dec", "unsure")
    assert convo.templates == ["unsure", "ask_when"]
    convo.press("when", "none")
    assert convo.templates == ["when_none"]
    assert convo.state.step == Step.UNSURE and convo.state.interview_pending
    # The check-ins stay; only reminders about an interview are cancelled.
    assert convo.out.effects == (CancelNudges(planner.INTERVIEW_KINDS),)
    # Still unsure, a day later (from a check-in): no second "When is it?".
    convo.at(NOW + timedelta(days=1)).tap(B.pack("dec", "unsure"))
    assert convo.templates == ["unsure"] and convo.state.step == Step.UNSURE
    later = NOW + timedelta(days=1)  # the check-ins planned again, from then
    planned = [e.due_at for e in convo.out.effects if isinstance(e, ScheduleNudge)]
    assert planned == [later + timedelta(days=d) for d in (1, 4, 7)]


def test_a_date_given_after_not_scheduled_yet_plans_the_reminders() -> None:
    convo = going_in_paris()
    convo.press("when", "none")
    assert convo.templates == ["when_none"] and convo.state.step == Step.GO
    convo.press("when", "change")  # "Change the date", once they know it
    assert convo.templates == ["ask_when"] and convo.state.step == Step.ASK_WHEN
    convo.say("Tue 3pm")
    confirm(convo)
    assert convo.state.interview_at == datetime(2026, 3, 10, 15, 0, tzinfo=PARIS)
    assert not convo.state.interview_pending
    assert set(schedules(convo.out.effects)) == {planner.PREP, planner.PEP, planner.DEBRIEF}


def test_going_again_without_a_date_asks_when_again() -> None:
    convo = going_in_paris()
    convo.press("when", "none")
    convo.tap(B.pack("dec", "go"))
    assert convo.templates == ["ask_when"]  # the checklist was shown already
    assert convo.state.step == Step.ASK_WHEN


# --- an undecided user whose interview has passed ----------------------------------------------


def test_an_undecided_user_after_the_interview_date_still_gets_check_ins() -> None:
    """The check-ins are capped by an upcoming interview (README: "2 days later, or the
    interview"); one that has passed caps nothing: after 1, 4 and 7 days, 2 days each."""
    state = State(
        step=Step.UNSURE,
        decision="unsure",
        timezone="Europe/Paris",
        interview_at=NOW - timedelta(days=1),
    )
    convo = Convo(state=state)
    convo.tap(B.pack("dec", "unsure"))
    assert convo.out.effects[0] == CancelNudges(planner.KINDS)
    planned = [e for e in convo.out.effects if isinstance(e, ScheduleNudge)]
    assert [(e.kind, e.due_at, e.deadline) for e in planned] == [
        (planner.CHECKBACK, NOW + timedelta(days=d), NOW + timedelta(days=d + 2)) for d in (1, 4, 7)
    ]


def test_going_after_the_interview_date_asks_for_the_new_date() -> None:
    state = State(
        step=Step.UNSURE,
        decision="unsure",
        timezone="Europe/Paris",
        interview_at=NOW - timedelta(days=1),
    )
    convo = Convo(state=state)
    convo.tap(B.pack("dec", "go"))
    assert convo.templates == ["go_checklist", "ask_when"]
    assert not schedules(convo.out.effects)


# --- the checklist: the day before, or at once when the interview is 30 hours away or less -----


def test_an_interview_exactly_30_hours_away_gets_the_checklist_at_once() -> None:
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("interview", "Thursday 4pm")  # Thu 15:00 UTC: NOW + 30 h
    confirm(convo)
    assert convo.state.interview_at == NOW + timedelta(hours=30)
    assert convo.templates == ["plan", "go_checklist"]
    assert planner.PREP not in schedules(convo.out.effects)
    assert convo.state.checklist_shown


def test_an_interview_just_inside_30_hours_gets_the_checklist_at_once() -> None:
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("interview", "Thursday 3:59pm")
    confirm(convo)
    assert convo.templates == ["plan", "go_checklist"]
    assert planner.PREP not in schedules(convo.out.effects)


def test_an_interview_just_over_30_hours_away_gets_the_checklist_the_day_before() -> None:
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("interview", "Thursday 4:01pm")
    confirm(convo)
    interview = NOW + timedelta(hours=30, minutes=1)
    assert convo.templates == ["plan"]
    assert not convo.state.checklist_shown
    prep = schedules(convo.out.effects)[planner.PREP]
    assert prep.due_at == interview - timedelta(hours=24)


def test_the_checklist_at_once_only_once_and_never_for_a_likely_scam() -> None:
    convo = Convo(state=State(timezone="Europe/Paris", checklist_shown=True, decision="go"))
    convo.cmd("interview", "tomorrow 2pm")
    confirm(convo)
    assert convo.templates == ["plan"]
    flagged = Convo(state=State(timezone="Europe/Paris", scam=True))
    flagged.cmd("interview", "tomorrow 2pm")
    confirm(flagged)
    assert flagged.templates == ["plan"] and not flagged.state.checklist_shown
    unsure = Convo(state=State(timezone="Europe/Paris", decision="unsure"))
    unsure.cmd("interview", "tomorrow 2pm")
    confirm(unsure)
    assert unsure.templates == ["plan"]


# --- times typed the way people type them ------------------------------------------------------


def test_readmes_thursday_at_2_is_proposed_as_2pm() -> None:
    convo = going_in_paris()
    convo.say("it's on Thursday at 2")
    assert convo.templates == ["confirm_when"]
    assert convo.state.proposed_at == datetime(2026, 3, 5, 14, 0, tzinfo=PARIS)
    assert "14:00" in convo.text


def test_tomorrow_typed_after_the_tomorrow_button_is_tomorrow() -> None:
    convo = going_in_paris()
    convo.press("when", "tomorrow")
    convo.say("tomorrow at 3pm")
    assert convo.state.proposed_at == datetime(2026, 3, 5, 15, 0, tzinfo=PARIS)


def test_an_earlier_time_typed_on_the_confirm_screen_keeps_the_day() -> None:
    convo = going_in_paris()
    convo.say("Thursday 2pm")
    convo.say("no, 10am")
    assert convo.templates == ["confirm_when"]
    assert convo.state.proposed_at == datetime(2026, 3, 5, 10, 0, tzinfo=PARIS)
    convo.say("sorry, at 3")
    assert convo.state.proposed_at == datetime(2026, 3, 5, 15, 0, tzinfo=PARIS)


def test_a_day_typed_on_the_confirm_screen_that_has_passed_is_refused() -> None:
    convo = going_in_paris()
    convo.say("Thursday 9am")
    convo.say("no wait, it's today")  # today at 09:00 is an hour ago
    assert convo.templates == ["when_past", "ask_when"]
    assert convo.state.proposed_at is None and convo.state.step == Step.ASK_WHEN


def test_the_knowledge_base_is_what_the_engine_reads() -> None:
    # Guards the helpers above: the objections named in these tests exist.
    assert {"scam_suspected", "not_a_fit", "nervous"} <= set(kb().objections)


# --- an uncertain decision where a time or a zone was asked for -----------------------------
# The README: a typed decision is understood "even on the interview-time and time-zone
# screens". A reading the classifier is unsure of is asked about there as on the menu, when
# one of the two readings decides; a mistyped date that reads like two worries is not.

PROPOSED = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
TIME_SCREENS = {
    Step.ASK_WHEN: State(step=Step.ASK_WHEN, decision="go"),
    Step.CONFIRM_WHEN: State(step=Step.CONFIRM_WHEN, decision="go", proposed_at=PROPOSED),
    Step.ASK_TZ: State(step=Step.ASK_TZ, decision="go", return_step=Step.GO),
}
UNSURE_NO = reading("decide_pass", 0.40, ("waste_of_time", 0.30), ("other", 0.1))


@pytest.mark.parametrize("step", list(TIME_SCREENS))
def test_an_uncertain_decision_on_a_time_or_zone_screen_is_asked_about(step: Step) -> None:
    before = TIME_SCREENS[step]
    convo = told(UNSURE_NO, before)
    assert convo.templates == ["did_you_mean"]
    assert "decided not to go" in convo.text
    assert convo.button("dec", "pass")
    assert convo.state == before  # still on that screen: a time or a city typed next is read
    # "Neither": back to the question they were answering, not the list of worries.
    convo.press("nav", "here")
    expected = {Step.ASK_WHEN: "ask_when", Step.CONFIRM_WHEN: "confirm_when"}
    assert convo.templates == [expected.get(step, "ask_tz")] and convo.state == before


@pytest.mark.parametrize("step", list(TIME_SCREENS))
def test_two_worries_on_a_time_or_zone_screen_are_not_asked_about(step: Step) -> None:
    convo = told(reading("not_a_fit", 0.40, ("waste_of_time", 0.30)), TIME_SCREENS[step])
    assert convo.templates[0] == ("tz_unknown" if step == Step.ASK_TZ else "when_unclear")


def test_neither_go_back_pressed_later_shows_where_the_user_is() -> None:
    convo = Convo(state=State(step=Step.MENU))
    convo.tap(B.pack("nav", "here"))
    assert convo.templates == ["menu"] and convo.state == State(step=Step.MENU)
