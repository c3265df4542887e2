"""What each tap leaves behind: the step (where /help brings the user back), the words of the
screen, the buttons and their labels. README: "What happens when a user taps X" is one place;
/help, a stale button or a sticker show "where we are", so every step must have its screen.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.engine import buttons as B
from bot.engine import planner
from bot.engine.model import (
    Attended,
    CancelNudge,
    CancelNudges,
    Decided,
    Event,
    InterviewSet,
    Invitation,
    MoveNudge,
    PendingNudge,
    Referral,
    ScheduleNudge,
    SnoozeNudge,
    State,
    Step,
    WorryNamed,
)
from bot.knowledge.classifier import Alternative, Classification
from tests.test_engine import (
    NOW,
    PARIS,
    Convo,
    at_menu,
    confirm,
    going_in_paris,
    kb,
    make_ctx,
    schedules,
    stub_ctx,
)

INVITED = Invitation(role="Analyst", company="Acme", format=None, note=None)
INTERVIEW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # Tuesday 15:00 in Paris


def labels(convo: Convo) -> list[str]:
    return [label for m in convo.messages for row in m.keyboard for label, _ in row]


def screen_after_help(convo: Convo) -> list[str]:
    """The templates /help shows after its own message: the current step's screen."""
    convo.cmd("help")
    assert convo.templates[0] == "help"
    return convo.templates[1:]


# --- every step has its screen -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "screen"),
    [
        (State(step=Step.SITUATION), ["situation"]),
        (State(step=Step.LEAN), ["lean"]),
        (State(step=Step.MENU), ["menu"]),
        (State(step=Step.TYPE_IT), ["menu"]),
        (State(step=Step.MENU_MORE), ["menu_more"]),
        (State(step=Step.ANSWER, objection="nervous", in_row=1), ["argument"]),
        (State(step=Step.QUESTION, objection="other_offer"), ["question"]),
        (State(step=Step.EXCEPTION, objection="not_looking", exception="content"), ["exception"]),
        (State(step=Step.DOUBT, objection="nervous"), ["doubt"]),
        (State(step=Step.MIXED), ["mixed"]),
        (State(step=Step.SCAM, scam=True), ["scam"]),
        (State(step=Step.UNPAID, objection="unpaid_task"), ["unpaid_task"]),
        (State(step=Step.DECISION), ["decision"]),
        (State(step=Step.ASK_WHEN), ["ask_when"]),
        (State(step=Step.ASK_WHEN, proposed_at=INTERVIEW), ["ask_time"]),
        (State(step=Step.CONFIRM_WHEN, proposed_at=INTERVIEW), ["confirm_when"]),
        (State(step=Step.ASK_TZ), ["ask_tz"]),
        (State(step=Step.GO, decision="go", interview_at=INTERVIEW), ["next_steps"]),
        (State(step=Step.UNSURE, decision="unsure"), ["next_steps"]),
        (State(step=Step.PASS, decision="pass"), ["next_steps"]),
        (State(step=Step.DEBRIEF, decision="go", attended="mixed"), ["next_steps"]),
        # Steps that cannot be shown any more fall back to the first question.
        (State(step=Step.ANSWER, objection="no_such_worry"), ["situation"]),
        (State(step=Step.QUESTION, objection="nervous"), ["situation"]),
        (State(step=Step.EXCEPTION, exception="no_such_exception"), ["situation"]),
        (State(step=Step.CONFIRM_WHEN), ["situation"]),
        (State(step=Step.CONSENT), ["situation"]),  # no invitation any more
    ],
)
def test_help_shows_the_screen_of_every_step(state: State, screen: list[str]) -> None:
    convo = Convo(state=state.evolve(timezone="Europe/Paris"))
    assert screen_after_help(convo) == screen
    assert convo.state.step == state.step  # help changes nothing


def test_help_on_the_steps_that_need_a_recruiters_invitation() -> None:
    for step, screen in ((Step.CONSENT, "consent"), (Step.ASK_RECRUITER, "ask_prompt")):
        convo = Convo(ctx=make_ctx(invitation=INVITED), state=State(step=step))
        assert screen_after_help(convo) == [screen]


def test_where_we_are_after_each_tap() -> None:
    """Each tap leaves the user on a step that /help shows again."""
    convo = at_menu()
    convo.tap(B.pack("type"))  # "In my own words"
    assert convo.state.step == Step.TYPE_IT and screen_after_help(convo) == ["menu"]
    convo.tap(B.pack("obj", "unpaid_task"))
    assert convo.state.step == Step.UNPAID and convo.state.objection == "unpaid_task"
    assert screen_after_help(convo) == ["unpaid_task"]
    convo.tap(B.pack("nav", "mixed"))
    assert convo.state.step == Step.MIXED and screen_after_help(convo) == ["mixed"]
    convo.tap(B.pack("nav", "decision"))
    assert convo.templates == ["decision"] and convo.state.step == Step.DECISION
    convo.tap(B.pack("obj", "scam_suspected"))
    assert convo.state.objection == "scam_suspected" and screen_after_help(convo) == ["scam"]
    convo.press("scam", "legit")
    assert convo.state.step == Step.MENU and convo.state.scam is False
    convo.tap(B.pack("obj", "other_offer"))
    assert convo.state.step == Step.QUESTION
    assert (convo.state.in_row, convo.state.arg_index) == (0, 0)
    assert screen_after_help(convo) == ["question"]
    convo.press("q", "offer", "open")
    assert convo.state.step == Step.ANSWER and convo.state.arg_index == 0
    assert screen_after_help(convo) == ["argument"]


def test_where_we_are_after_the_time_buttons() -> None:
    convo = going_in_paris()
    convo.press("when", "tomorrow")
    assert convo.templates == ["ask_time"] and convo.state.step == Step.ASK_WHEN
    assert convo.state.proposed_at == datetime(2026, 3, 5, tzinfo=PARIS)
    convo.press("when", "change")
    assert convo.state.step == Step.ASK_WHEN and convo.state.proposed_at is None
    convo.tap(B.pack("when", "nextweek"))
    assert convo.templates == ["ask_day_time"] and "next week" in convo.text
    assert convo.state.step == Step.ASK_WHEN
    convo.tap(B.pack("when", "week"))
    assert "next week" not in convo.text
    convo.say("Tue 3pm")
    convo.press("whenno")
    assert convo.state.step == Step.ASK_WHEN and convo.state.proposed_at is None
    assert screen_after_help(convo) == ["ask_when"]


def test_today_is_the_users_midnight_whatever_the_minute() -> None:
    odd = datetime(2026, 3, 4, 9, 17, 42, 500_000, tzinfo=UTC)
    convo = going_in_paris().at(odd)
    convo.press("when", "today")
    assert convo.state.proposed_at == datetime(2026, 3, 4, tzinfo=PARIS)


# --- the words that depend on how the user got there -----------------------------------------


def test_the_menu_says_why_it_is_shown_again() -> None:
    first = at_menu()
    assert "Pick whatever weighs on you most" not in first.text
    again = at_menu()
    again.press("obj", "nervous")
    again.press("nav", "menu")
    assert "Pick whatever weighs on you most" in again.text
    not_understood = Convo(ctx=stub_ctx(Classification("other", 0.2, ())), state=State())
    not_understood.say("hmm")
    assert not_understood.templates == ["not_understood", "menu"]
    assert "Pick whatever weighs on you most" in not_understood.text
    no_arguments = at_menu()
    no_arguments.tap(B.pack("obj", "other"))  # "Something else" has no arguments of its own
    assert no_arguments.templates == ["menu"] and "Pick whatever" in no_arguments.text
    assert not [m for m in no_arguments.out.milestones if isinstance(m, WorryNamed)]
    legit = at_menu()
    legit.tap(B.pack("obj", "scam_suspected"))
    legit.press("scam", "legit")
    assert "Glad it checked out" in legit.text


def test_the_decision_screen_says_why_it_is_shown() -> None:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.press("lean", "yes")
    assert "leaning towards going" in convo.text
    convo = at_menu()
    convo.press("obj", "nervous")
    convo.press("ok", "nervous")
    assert "Glad it helped" in convo.text and "leaning" not in convo.text
    convo.tap(B.pack("nav", "decision"))
    assert "Glad it helped" not in convo.text and "leaning" not in convo.text


def test_the_when_question_says_why_it_is_asked() -> None:
    convo = Convo(state=State(timezone="Europe/Paris", decision="go", step=Step.GO))
    convo.cmd("interview")
    assert convo.templates == ["ask_when"] and convo.state.step == Step.ASK_WHEN
    assert "When is the interview?" in convo.text and "reminder" not in convo.text
    convo.tap(B.pack("pre", 5, "resched"))
    assert "When is the new time?" in convo.text
    convo = going_in_paris()
    assert "I'll send a reminder" in convo.text


def test_the_situation_question_has_no_stray_intro() -> None:
    convo = at_menu()
    convo.tap(B.pack("nav", "situation"))
    assert convo.templates == ["situation"]
    assert convo.text.startswith("What brings you here?")


def test_the_lean_screen_speaks_to_the_situation() -> None:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "explore")
    assert convo.state.situation == "explore" and "look around" in convo.text
    convo.tap(B.pack("sit", "invite"))
    assert convo.state.situation == "invite" and "invitation" in convo.text


def test_a_checklist_shown_at_once_says_it_is_because_it_is_soon() -> None:
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("interview", "tomorrow 2pm")
    confirm(convo)
    assert convo.templates == ["plan", "go_checklist"]
    assert "It's soon" in convo.messages[1].plain_text
    decided = going_in_paris()
    assert "It's soon" not in decided.text and "Good decision" in decided.text


# --- buttons and their labels ------------------------------------------------------------------


def test_the_worry_buttons_carry_their_labels() -> None:
    convo = at_menu()
    for oid in ("not_a_fit", "nervous", "waste_of_time", "wont_get_offer"):
        assert kb().objections[oid].label in labels(convo)
    convo.press("nav", "menu_more")
    for oid in ("not_looking", "overqualified", "other_offer", "bad_company", "scam_suspected"):
        assert kb().objections[oid].label in labels(convo)


def test_did_you_mean_offers_intents_as_buttons_that_work() -> None:
    signed_or_mixed = Classification(
        "signed_elsewhere", 0.40, (Alternative("mixed_feelings", 0.35),)
    )
    convo = Convo(ctx=stub_ctx(signed_or_mixed))
    convo.say("i dunno, i kind of signed something")
    assert convo.templates == ["did_you_mean"]
    assert {"I signed elsewhere", "I have mixed feelings"} <= set(labels(convo))
    signed = convo.button("q", "offer", "signed")
    convo.press("nav", "mixed")
    assert convo.templates == ["mixed"] and convo.state.step == Step.MIXED
    convo.tap(signed)
    assert convo.templates == ["exception"] and convo.state.exception == "signed"
    worry = Classification("nervous", 0.40, (Alternative("decide_go", 0.35),))
    convo = Convo(ctx=stub_ctx(worry))
    convo.say("eh")
    assert kb().objections["nervous"].label in labels(convo)
    assert "I've decided to go" in labels(convo)


def test_reminders_are_listed_in_the_users_time() -> None:
    pending = (PendingNudge(10, planner.PEP, INTERVIEW - timedelta(hours=2), INTERVIEW),)
    convo = Convo(ctx=make_ctx(pending=pending), state=State(timezone="Europe/Paris"))
    convo.cmd("nudges")
    assert "✕ Tue 10 Mar 13:00 pep talk" in labels(convo)


def test_every_screen_offers_its_ways_on() -> None:
    # The honest exception: all three decisions and a way back.
    convo = at_menu()
    convo.tap(B.pack("obj", "not_looking"))
    assert {a.args[0] for _, a in convo.actions() if a.name == "dec"} == {"go", "unsure", "pass"}
    # Mixed feelings: what holds me back, in my own words, or decide.
    convo.tap(B.pack("nav", "mixed"))
    assert convo.button("nav", "menu") and convo.button("type")
    # After a decision, "Start over" always; "Talk again" unless going.
    convo.tap(B.pack("dec", "pass"))
    convo.cmd("help")
    assert convo.button("nav", "situation") and convo.button("nav", "menu")
    going = Convo(state=State(step=Step.GO, decision="go", interview_at=INTERVIEW))
    going.cmd("help")
    assert going.button("nav", "situation") and going.button("when", "change")
    # The plan made when deciding to go with a time set offers to change it.
    unsure = Convo(state=State(step=Step.UNSURE, decision="unsure", interview_at=INTERVIEW))
    unsure.tap(B.pack("dec", "go"))
    assert unsure.templates == ["go_checklist", "plan"]
    assert unsure.button("when", "change")
    # The unsure screen offers talking again, going and passing.
    unsure.tap(B.pack("dec", "unsure"))
    assert unsure.button("nav", "menu") and unsure.button("dec", "go")
    assert unsure.button("dec", "pass")
    # A fraud warning is left by the sensible way out, never a dead end.
    flagged = at_menu()
    flagged.tap(B.pack("obj", "scam_suspected"))
    flagged.press("scam", "steer")
    assert flagged.button("nav", "situation")


# --- arguments in a row ------------------------------------------------------------------------


def test_an_argument_out_of_range_shows_the_nearest_one() -> None:
    arguments = kb().objections["nervous"].arguments
    for stored, shown in ((99, arguments[-1]), (-3, arguments[0])):
        convo = Convo(state=State(step=Step.ANSWER, objection="nervous", arg_index=stored))
        convo.cmd("help")
        assert convo.out.replies[1].context["argument"] == shown


def test_the_second_to_last_argument_still_offers_another() -> None:
    arguments = kb().objections["nervous"].arguments
    state = State(step=Step.ANSWER, objection="nervous", arg_index=len(arguments) - 2, in_row=1)
    convo = Convo(state=state)
    convo.cmd("help")
    assert convo.button("arg", "nervous", len(arguments) - 1)
    # The last one: no "Another reason"; still doubtful and the decision instead.
    convo.press("arg", "nervous", len(arguments) - 1)
    assert not [a for _, a in convo.actions() if a.name == "arg"]
    assert convo.button("doubt", "nervous") and convo.button("dec", "go")


def test_the_feeling_is_heard_only_before_a_first_argument() -> None:
    acknowledge = kb().objections["nervous"].acknowledge
    assert acknowledge is not None
    convo = at_menu()
    convo.press("obj", "nervous")
    assert acknowledge in convo.text
    # The first argument again, from an old button, in the same row: not heard twice.
    convo.tap(B.pack("arg", "nervous", 0))
    assert convo.state.in_row == 2 and acknowledge not in convo.text


def test_another_reason_for_a_different_worry_starts_a_new_row() -> None:
    convo = at_menu()
    convo.press("obj", "nervous")
    convo.press("arg", "nervous", 1)
    assert convo.state.in_row == 2
    convo.tap(B.pack("arg", "waste_of_time", 1))  # an older message's button
    assert convo.state.objection == "waste_of_time" and convo.state.in_row == 1


def test_a_new_worry_starts_at_its_first_argument() -> None:
    convo = at_menu()
    convo.press("obj", "nervous")
    convo.press("arg", "nervous", 1)
    convo.press("nav", "menu")
    convo.press("obj", "waste_of_time")
    first = kb().objections["waste_of_time"].arguments[0]
    assert convo.out.replies[0].context["argument"] == first
    assert convo.state.arg_index == 0 and convo.state.in_row == 1


def test_picking_the_same_worry_after_the_last_reason_does_not_go_round_again() -> None:
    arguments = kb().objections["nervous"].arguments
    convo = at_menu()
    convo.press("obj", "nervous")
    convo.tap(B.pack("arg", "nervous", 99))  # shows the last one
    assert convo.state.arg_index == len(arguments) - 1
    convo.press("nav", "menu")
    convo.press("obj", "nervous")
    assert convo.templates == ["doubt"] and "all the reasons" in convo.text


def test_buttons_that_name_nothing_answerable_are_unknown() -> None:
    for data in ("v1:arg:other:0", "v1:q:nope:signed", "v1:q:offer:nope", "v1:scamok:pass"):
        convo = at_menu()
        convo.tap(data)
        assert convo.templates == ["unknown_button", "menu"], data


def test_a_counter_offer_typed_is_about_the_other_offer() -> None:
    offer = Classification("other_offer", 0.9, (Alternative("not_looking", 0.05),))
    convo = Convo(ctx=stub_ctx(offer))
    convo.say("they made me a counter offer")
    assert convo.state.objection == "other_offer" and convo.state.step == Step.ANSWER
    assert (convo.state.arg_index, convo.state.in_row) == (0, 1)


def test_the_honest_exception_starts_a_fresh_row() -> None:
    state = State(step=Step.ANSWER, objection="nervous", arg_index=4, in_row=3)
    convo = Convo(state=state)
    convo.tap(B.pack("obj", "not_looking"))
    assert (convo.state.objection, convo.state.exception) == ("not_looking", "content")
    assert (convo.state.arg_index, convo.state.in_row) == (0, 0)
    convo.press("arg", "not_looking", 0)  # "Tell me more reasons"
    assert convo.state.in_row == 1
    convo.tap(B.pack("q", "offer", "signed"))
    assert convo.state.in_row == 0 and convo.state.objection == "other_offer"


# --- decisions -----------------------------------------------------------------------------


def test_a_decision_records_what_it_replaced() -> None:
    convo = going_in_paris()
    convo.tap(B.pack("dec", "pass"))
    assert Decided("pass", "go") in convo.out.milestones
    convo.tap(B.pack("dec", "unsure"))
    assert Decided("unsure", "pass") in convo.out.milestones
    flagged = at_menu()
    flagged.tap(B.pack("dec", "unsure"))
    flagged.tap(B.pack("obj", "scam_suspected"))
    flagged.press("scam", "steer")
    assert Decided("pass", "unsure") in flagged.out.milestones


def test_after_a_fraud_warning_even_unsure_waits_for_the_check() -> None:
    convo = at_menu()
    convo.tap(B.pack("obj", "scam_suspected"))
    convo.tap(B.pack("dec", "unsure"))
    assert convo.templates == ["scam_check"] and convo.state.step == Step.SCAM
    assert not schedules(convo.out.effects)
    convo.press("scamok", "unsure")
    assert convo.state.decision == "unsure" and convo.state.scam is False
    assert len(schedules_of(convo, planner.CHECKBACK)) == 3


def schedules_of(convo: Convo, kind: str) -> list[ScheduleNudge]:
    return [e for e in convo.out.effects if isinstance(e, ScheduleNudge) and e.kind == kind]


def test_steering_clear_is_a_pass_that_remembers_the_fraud() -> None:
    convo = going_in_paris()
    convo.tap(B.pack("obj", "scam_suspected"))
    convo.press("scam", "steer")
    assert convo.state.decision == "pass" and convo.state.step == Step.PASS
    assert convo.state.scam is True and convo.state.checklist_shown is False
    assert screen_after_help(convo) == ["next_steps"]


def test_a_decision_clears_the_checklist_for_the_next_go() -> None:
    for decision in ("unsure", "pass"):
        convo = going_in_paris()
        convo.tap(B.pack("dec", decision))
        assert convo.state.checklist_shown is False, decision
    withdrawn = Convo(state=State(step=Step.GO, decision="go", checklist_shown=True))
    withdrawn.tap(B.pack("withdraw"))
    assert withdrawn.state.step == Step.PASS and withdrawn.state.checklist_shown is False


def test_unsure_with_an_interview_set_is_not_asked_when() -> None:
    convo = Convo(state=State(step=Step.MENU, interview_at=INTERVIEW, timezone="Europe/Paris"))
    convo.tap(B.pack("dec", "unsure"))
    assert convo.templates == ["unsure"] and convo.state.step == Step.UNSURE
    assert convo.state.checklist_shown is False


def test_going_when_the_interview_starts_right_now_asks_when() -> None:
    convo = Convo(state=State(step=Step.MENU, interview_at=NOW, timezone="Europe/Paris"))
    convo.tap(B.pack("dec", "go"))
    assert convo.templates == ["go_checklist", "ask_when"]
    assert convo.state.step == Step.ASK_WHEN and not schedules(convo.out.effects)
    assert convo.out.effects == (CancelNudges(planner.KINDS),)


def test_a_user_who_passed_gets_no_reminders_for_an_old_confirmation() -> None:
    convo = Convo(state=State(step=Step.PASS, decision="pass", timezone="Europe/Paris"))
    convo.tap(B.pack("whenok", int(INTERVIEW.timestamp() // 60)))
    # Their "no" stands: no interview set, no step moved, nothing planned.
    assert convo.state.interview_at is None
    assert (convo.state.step, convo.state.decision) == (Step.PASS, "pass")
    assert not schedules(convo.out.effects)


# --- setting the interview time ----------------------------------------------------------------


def test_a_new_time_clears_what_belonged_to_the_old_one() -> None:
    state = State(
        step=Step.DEBRIEF,
        decision="go",
        attended="no",
        interview_pending=True,
        timezone="Europe/Paris",
    )
    convo = Convo(state=state)
    convo.cmd("interview", "Tue 3pm")
    confirm(convo)
    assert convo.state.interview_at == INTERVIEW
    assert convo.state.attended is None and convo.state.proposed_at is None
    assert convo.state.interview_pending is False
    assert convo.state.step == Step.GO


def test_an_undecided_user_who_sets_a_time_stays_undecided() -> None:
    convo = Convo(state=State(step=Step.UNSURE, decision="unsure", timezone="Europe/Paris"))
    convo.cmd("interview", "Tue 3pm")
    confirm(convo)
    assert convo.state.step == Step.UNSURE and convo.state.decision == "unsure"
    assert {e.kind for e in convo.out.effects if isinstance(e, ScheduleNudge)} == {
        planner.CHECKBACK
    }


def test_after_a_fraud_warning_the_plan_asks_whether_it_checked_out() -> None:
    state = State(step=Step.UNSURE, decision="unsure", scam=True, timezone="Europe/Paris")
    convo = Convo(state=state)
    convo.cmd("interview", "Tue 3pm")
    confirm(convo)
    assert convo.button("scamok", "unsure")
    fresh = Convo(state=State(scam=True, timezone="Europe/Paris"))
    fresh.cmd("interview", "Tue 3pm")
    confirm(fresh)
    assert fresh.button("scamok", "go")


def test_a_time_equal_to_now_has_passed() -> None:
    convo = going_in_paris()
    convo.say("today 10am")  # it is 10:00 in Paris
    assert convo.templates == ["when_past", "ask_when"]
    assert convo.state.step == Step.ASK_WHEN and convo.state.proposed_at is None
    convo.tap(B.pack("whenok", int(NOW.timestamp() // 60)))
    assert convo.templates == ["when_past", "ask_when"] and convo.state.interview_at is None


def test_a_confirmation_almost_two_years_ahead_is_accepted() -> None:
    later = NOW + timedelta(days=700)
    convo = going_in_paris()
    convo.tap(B.pack("whenok", int(later.timestamp() // 60)))
    assert convo.templates == ["plan"] and convo.state.interview_at == later


def test_not_scheduled_yet_forgets_the_old_time() -> None:
    convo = Convo(state=State(step=Step.GO, decision="go", interview_at=INTERVIEW))
    convo.tap(B.pack("when", "none"))
    assert convo.state.interview_at is None and convo.state.interview_pending
    assert convo.state.proposed_at is None


# --- the confirmation screen -------------------------------------------------------------------


def test_on_the_confirm_screen_a_correction_uses_the_users_zone() -> None:
    los_angeles = ZoneInfo("America/Los_Angeles")
    convo = Convo(state=State(step=Step.ASK_WHEN, decision="go", timezone="America/Los_Angeles"))
    convo.say("Tue 2pm")
    convo.say("no wait, it's Thursday")
    assert convo.state.proposed_at == datetime(2026, 3, 5, 14, 0, tzinfo=los_angeles)


def test_on_the_confirm_screen_words_that_are_no_time_say_so() -> None:
    unclear = Classification("other", 0.2, ())
    state = State(step=Step.CONFIRM_WHEN, proposed_at=INTERVIEW, timezone="Europe/Paris")
    convo = Convo(ctx=stub_ctx(unclear), state=state)
    convo.say("blorp")
    assert convo.templates == ["when_unclear", "confirm_when"]
    assert convo.state == state


def test_on_the_confirm_screen_a_new_date_too_far_away_is_refused() -> None:
    state = State(step=Step.CONFIRM_WHEN, proposed_at=INTERVIEW, timezone="Europe/Paris")
    convo = Convo(ctx=stub_ctx(Classification("other", 0.9, ())), state=state)
    convo.say("no, March 10 2029 3pm")
    assert convo.templates == ["when_unclear", "ask_when"]
    assert convo.state.step == Step.ASK_WHEN and convo.state.proposed_at is None


def test_on_the_confirm_screen_an_offset_is_a_zone() -> None:
    state = State(step=Step.CONFIRM_WHEN, proposed_at=INTERVIEW, timezone="Europe/Paris")
    convo = Convo(state=state)
    convo.say("UTC+5:30")
    assert convo.state.timezone == "Asia/Kolkata" and convo.state.step == Step.CONFIRM_WHEN


# --- zones ---------------------------------------------------------------------------------


def test_a_zone_typed_on_the_zone_screen_returns_to_the_step_and_forgets_it() -> None:
    convo = at_menu()
    convo.cmd("timezone")
    convo.say("Tokyo")
    assert convo.state.step == Step.MENU and convo.state.return_step is None
    convo.cmd("timezone")
    convo.press("tz", "keep")
    assert convo.state.step == Step.MENU and convo.state.return_step is None


def test_a_stale_return_step_does_not_take_over() -> None:
    convo = Convo(state=State(step=Step.DECISION, return_step=Step.MENU))
    convo.cmd("timezone")
    convo.press("tz", "keep")
    assert convo.state.step == Step.DECISION


def test_a_zone_change_after_the_interview_date_keeps_the_check_ins() -> None:
    passed = NOW - timedelta(days=1)
    checkback = PendingNudge(1, planner.CHECKBACK, NOW + timedelta(days=1), NOW + timedelta(days=3))
    state = State(step=Step.UNSURE, decision="unsure", interview_at=passed, timezone="UTC")
    convo = Convo(ctx=make_ctx(pending=(checkback,)), state=state)
    convo.cmd("timezone", "Europe/London")  # same time as UTC in March
    assert convo.out.effects == ()
    assert convo.out.replies[0].context["interview_at"] is None


def test_a_check_in_whose_two_days_end_before_the_moved_interview_keeps_its_two_days() -> None:
    tokyo_monday_2pm = datetime(2026, 3, 9, 14, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    due = datetime(2026, 3, 7, 23, 0, tzinfo=UTC)  # Sunday 08:00 in Tokyo
    capped = PendingNudge(2, planner.CHECKBACK, due, tokyo_monday_2pm)
    state = State(
        step=Step.UNSURE, decision="unsure", timezone="Asia/Tokyo", interview_at=tokyo_monday_2pm
    )
    convo = Convo(ctx=make_ctx(pending=(capped,)), state=state)
    convo.cmd("timezone", "Pacific/Honolulu")  # Monday 14:00 there is Tuesday 00:00 UTC
    assert convo.out.effects == (MoveNudge(2, due, due + timedelta(days=2)),)


def test_zone_changes_with_reminders_of_both_kinds_and_without_deadlines() -> None:
    pep = PendingNudge(3, planner.PEP, INTERVIEW - timedelta(hours=2), None)
    checkback = PendingNudge(4, planner.CHECKBACK, datetime(2026, 3, 8, 15, 0, tzinfo=UTC), None)
    state = State(step=Step.GO, decision="go", timezone="Europe/Paris", interview_at=INTERVIEW)
    for pending in ((checkback, pep), (pep, checkback)):
        convo = Convo(ctx=make_ctx(pending=pending), state=state)
        convo.cmd("timezone", "Europe/London")  # an hour later, the same 15:00
        hour = timedelta(hours=1)
        moved = {e.nudge_id: e for e in convo.out.effects if isinstance(e, MoveNudge)}
        assert moved[3] == MoveNudge(3, pep.due_at + hour, None)
        # A check-in without a deadline ends when the interview starts.
        assert moved[4] == MoveNudge(4, checkback.due_at, INTERVIEW + hour)


# --- nudge buttons -----------------------------------------------------------------------------


def going(**changes: object) -> State:
    base = State(step=Step.GO, decision="go", timezone="Europe/Paris", interview_at=INTERVIEW)
    return base.evolve(**changes)


def test_nudge_buttons_leave_the_state_alone_where_they_only_act() -> None:
    convo = Convo(state=going())
    convo.tap(B.pack("cancel", 44))
    assert convo.state == going() and convo.out.effects == (CancelNudge(44),)
    convo.tap(B.pack("nudge", 44, "stop"))
    assert convo.state == going() and convo.out.effects == (CancelNudges(),)
    convo.tap(B.pack("pre", 44, "on"))
    assert convo.state == going() and convo.out.notice == "Good luck!"


def test_snoozing_answers_ok_and_keeps_the_state() -> None:
    tapped = PendingNudge(43, planner.PEP, NOW, None)
    convo = Convo(ctx=make_ctx(tapped=tapped), state=going())
    convo.tap(B.pack("nudge", 43, "later"))
    assert convo.state == going() and convo.out.notice == "OK"
    assert convo.out.effects == (SnoozeNudge(43, NOW + timedelta(hours=3)),)
    late = Convo(
        ctx=make_ctx(tapped=PendingNudge(43, planner.PEP, NOW, NOW + timedelta(hours=1))),
        state=going(),
    )
    late.tap(B.pack("nudge", 43, "later"))
    assert late.templates == ["snooze_too_late"] and late.state == going()
    untapped = Convo(state=going())
    untapped.tap(B.pack("nudge", 43, "later"))  # not a nudge of theirs
    assert untapped.templates[0] == "unknown_button"


@pytest.mark.parametrize(
    "data", ["v1:nudge:5:bogus", "v1:pre:5:bogus", "v1:post:5:bogus", "v1:cancel:0"]
)
def test_nudge_buttons_with_unknown_choices_are_unknown(data: str) -> None:
    convo = Convo(state=going())
    convo.tap(data)
    assert convo.templates == ["unknown_button", "next_steps"]
    assert convo.out.effects == ()


def test_cant_make_it_and_missed_mark_the_interview_as_not_attended() -> None:
    convo = Convo(state=going())
    convo.tap(B.pack("pre", 5, "cant"))
    assert convo.state.attended == "no" and convo.state.step == Step.GO
    assert convo.button("nav", "situation")
    missed = Convo(ctx=make_ctx(now=INTERVIEW + timedelta(hours=3)), state=going())
    missed.tap(B.pack("post", 5, "missed"))
    assert missed.state.attended == "no" and missed.state.step == Step.DEBRIEF
    assert missed.out.effects == (CancelNudges((planner.DEBRIEF, planner.FOLLOWUP)),)
    assert missed.out.milestones == (Attended("missed"),)
    assert missed.button("nav", "situation")


def test_how_it_went_is_recorded_and_the_follow_up_waits_for_the_morning() -> None:
    evening = datetime(2026, 3, 10, 19, 0, tzinfo=PARIS)  # a week later at 19:00: fine
    for choice, attended in (("well", "went_well"), ("mixed", "mixed")):
        convo = Convo(
            ctx=make_ctx(now=evening.astimezone(UTC) + timedelta(hours=3)),
            state=going(interview_at=evening.replace(hour=22).astimezone(UTC)),
        )
        convo.tap(B.pack("post", 5, choice))
        assert convo.out.milestones == (Attended(attended),)
        (followup,) = schedules_of(convo, planner.FOLLOWUP)
        # A week after a 22:00 interview is 22:00, quiet in Paris: 08:00 the next morning.
        assert followup.due_at == datetime(2026, 3, 18, 8, 0, tzinfo=PARIS)


def test_reschedule_forgets_a_proposed_time() -> None:
    convo = Convo(state=going(proposed_at=INTERVIEW + timedelta(days=1)))
    convo.tap(B.pack("pre", 5, "resched"))
    assert convo.state.step == Step.ASK_WHEN and convo.state.proposed_at is None


def test_the_largest_id_a_button_may_carry() -> None:
    convo = Convo(state=going())
    convo.tap(B.pack("cancel", "9" * 15))
    assert convo.out.effects == (CancelNudge(int("9" * 15)),)
    convo.tap("v1:cancel:" + "9" * 16)
    assert convo.templates[0] == "unknown_button" and convo.out.effects == ()


# --- toasts: every press is answered ------------------------------------------------------------


def test_each_press_is_answered_with_a_few_words() -> None:
    convo = Convo()
    convo.tap("v1:launch:missiles")
    assert convo.out.notice == "That button no longer works"
    invited = Convo(ctx=make_ctx(invitation=INVITED))
    invited.cmd("start")
    invited.press("sit", "prep")
    invited.press("consent", "yes")
    assert invited.out.notice == "Shared with the recruiter"
    invited = Convo(ctx=make_ctx(invitation=INVITED))
    invited.cmd("start")
    invited.press("sit", "prep")
    invited.press("consent", "no")
    assert invited.out.notice == "Kept private"


# --- a recruiter's invitation ------------------------------------------------------------------


def test_after_the_consent_question_comes_the_question_it_held_back() -> None:
    convo = Convo(ctx=make_ctx(invitation=INVITED), state=State(timezone="Europe/Paris"))
    convo.cmd("start")
    convo.press("sit", "prep")
    assert convo.templates == ["go_checklist", "consent"]
    convo.tap(B.pack("consent", "no"))
    assert convo.templates == ["ask_when"] and convo.state.step == Step.ASK_WHEN
    assert convo.state.return_step is None and convo.state.after_consent is None
    assert convo.out.effects == ()


def test_passing_after_an_exception_asks_consent_with_the_note() -> None:
    convo = Convo(ctx=make_ctx(invitation=INVITED))
    convo.cmd("start")
    convo.tap(B.pack("obj", "not_looking"))
    convo.press("dec", "pass")
    assert convo.templates == ["withdraw_note", "consent"]
    convo.press("consent", "yes")
    assert convo.templates == ["next_steps"]  # the note was shown already
    assert convo.state.step == Step.PASS and screen_after_help(convo) == ["next_steps"]
    # A plain "I'll pass": the note waits for the answer, then nothing is held any more.
    plain = Convo(ctx=make_ctx(invitation=INVITED))
    plain.cmd("start")
    plain.tap(B.pack("dec", "pass"))
    assert plain.templates == ["pass", "consent"] and plain.state.after_consent == "note"
    plain.press("consent", "no")
    assert plain.templates == ["withdraw_note"]
    assert plain.state.after_consent is None and plain.state.return_step is None


def test_a_change_of_mind_on_privacy_leaves_the_step_alone() -> None:
    convo = Convo(ctx=make_ctx(invitation=dataclasses.replace(INVITED, consent=True)))
    convo.cmd("privacy")
    assert "Done:" not in convo.text and convo.button("consent", "none")
    before = convo.state
    convo.tap(B.pack("consent", "none"))
    assert convo.state == before and convo.out.effects == ()
    assert "Done:" in convo.text


def test_a_question_for_the_recruiter_returns_to_where_the_user_was() -> None:
    convo = Convo(ctx=make_ctx(invitation=INVITED), state=State(step=Step.DOUBT))
    convo.cmd("ask")
    assert convo.state.step == Step.ASK_RECRUITER
    convo.say("   ")  # nothing to send: asked again
    assert convo.templates == ["ask_prompt"] and convo.state.step == Step.ASK_RECRUITER
    convo.say("Is it remote?")
    assert convo.state.step == Step.DOUBT and convo.state.return_step is None
    assert convo.out.effects == ()
    # The recruiter's limit reached meanwhile: said so, back where they were.
    waiting = Convo(
        ctx=make_ctx(invitation=dataclasses.replace(INVITED, can_ask=False)),
        state=State(step=Step.ASK_RECRUITER, return_step=Step.DOUBT),
    )
    waiting.say("Is it remote?")
    assert waiting.templates == ["ask_wait", "doubt"]
    assert waiting.state.step == Step.DOUBT and waiting.state.return_step is None
    # The "Ask the recruiter" button does what /ask does; "Never mind" goes back.
    button = Convo(ctx=make_ctx(invitation=INVITED), state=State(step=Step.DOUBT))
    button.cmd("help")
    button.press("ask")
    assert button.templates == ["ask_prompt"] and button.state.step == Step.ASK_RECRUITER
    button.press("askno")
    assert button.templates == ["ask_cancelled", "doubt"] and button.state.step == Step.DOUBT
    assert button.state.return_step is None
    stale = Convo(ctx=make_ctx(invitation=INVITED), state=State(step=Step.MENU))
    stale.tap(B.pack("askno"))
    assert stale.state.step == Step.MENU


def test_without_a_link_there_is_nobody_to_ask() -> None:
    convo = Convo(state=State(step=Step.DOUBT))
    convo.cmd("ask")
    assert convo.templates == ["ask_no_link"] and convo.state == State(step=Step.DOUBT)


# --- commands ------------------------------------------------------------------------------


def test_delete_and_stop_commands() -> None:
    convo = Convo(state=going())
    convo.cmd("delete")
    assert convo.templates == ["delete_confirm"] and convo.state == going()
    convo.cmd("stop")
    assert convo.state == going()


def test_start_after_blocking_with_an_interview_starting_now_plans_nothing() -> None:
    convo = Convo(ctx=make_ctx(returning=True), state=going(interview_at=NOW))
    convo.cmd("start")
    assert convo.out.effects == ()


def test_a_sticker_says_so() -> None:
    convo = at_menu()
    convo.send(Event(1, "other", "sticker"))
    assert convo.templates == ["non_text", "menu"]


def test_withdrawing_from_an_interview_they_cannot_make() -> None:
    convo = Convo(state=going())
    convo.tap(B.pack("pre", 5, "cant"))
    convo.press("withdraw")
    assert convo.templates == ["withdraw_note"]
    assert convo.text.startswith("Understood. A short note to withdraw politely")
    # Another time after all, or start over; and /help shows they passed.
    assert convo.button("when", "change") and convo.button("nav", "situation")
    assert screen_after_help(convo) == ["next_steps"] and "decided to pass" in convo.text
    convo.tap(B.pack("dec", "go"))
    assert convo.templates[0] == "go_checklist"  # a new decision to go: the checklist again


# --- what each step leaves behind, continued ---------------------------------------------------


def test_help_on_the_menu_invites_picking_again() -> None:
    for step in (Step.MENU, Step.TYPE_IT):
        convo = Convo(state=State(step=step))
        convo.cmd("help")
        assert "Pick whatever weighs on you most" in convo.text


def test_help_on_the_honest_exception_keeps_tell_me_more() -> None:
    state = State(step=Step.EXCEPTION, objection="not_looking", exception="content")
    convo = Convo(state=state)
    convo.cmd("help")
    assert convo.button("arg", "not_looking", 0)


def test_tell_me_more_moves_on_to_the_arguments() -> None:
    state = State(step=Step.EXCEPTION, objection="not_looking", exception="content")
    convo = Convo(state=state)
    convo.tap(B.pack("arg", "not_looking", 0))
    assert convo.state.step == Step.ANSWER and screen_after_help(convo) == ["argument"]


def test_a_question_or_its_answer_starts_the_worry_from_its_first_argument() -> None:
    deep = State(step=Step.ANSWER, objection="nervous", arg_index=3, in_row=2)
    convo = Convo(state=deep)
    convo.tap(B.pack("obj", "other_offer"))
    assert (convo.state.in_row, convo.state.arg_index) == (0, 0)
    convo = Convo(state=deep)
    convo.tap(B.pack("q", "offer", "open"))
    first = kb().objections["other_offer"].arguments[0]
    assert convo.out.replies[0].context["argument"] == first
    assert convo.state.arg_index == 0


def test_a_worry_with_nothing_to_argue_goes_back_to_the_menu_step() -> None:
    convo = Convo(state=State(step=Step.DECISION))
    convo.tap(B.pack("obj", "other"))
    assert convo.state.step == Step.MENU


def test_going_a_second_time_shows_a_checklist_not_seen_yet() -> None:
    # Set a time first (far enough for no checklist at once), then decide to go.
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("interview", "Tue 3pm")
    confirm(convo)
    assert convo.state.decision == "go" and not convo.state.checklist_shown
    convo.tap(B.pack("dec", "go"))
    assert convo.templates == ["go_checklist", "plan"] and convo.state.step == Step.GO


def test_deciding_with_an_interview_set_lands_on_the_decided_step() -> None:
    convo = Convo(state=State(step=Step.MENU, interview_at=INTERVIEW, timezone="Europe/Paris"))
    convo.tap(B.pack("dec", "go"))
    assert convo.state.step == Step.GO and screen_after_help(convo) == ["next_steps"]


def test_asking_when_forgets_any_time_proposed_before() -> None:
    proposing = State(
        step=Step.CONFIRM_WHEN, proposed_at=INTERVIEW + timedelta(days=1), timezone="Europe/Paris"
    )
    past = int((NOW - timedelta(hours=1)).timestamp() // 60)
    for event in (
        Event(1, "button", B.pack("dec", "go")),
        Event(1, "button", B.pack("dec", "unsure")),
        Event(1, "command", "interview"),
        Event(1, "button", B.pack("when", "week")),
        Event(1, "button", B.pack("when", "change")),
        Event(1, "button", B.pack("whenok", past)),
    ):
        convo = Convo(state=proposing)
        convo.send(event)
        assert convo.state.step == Step.ASK_WHEN and convo.state.proposed_at is None
        assert screen_after_help(convo) == ["ask_when"]


def test_a_time_typed_with_interview_is_read_from_today_not_the_proposed_day() -> None:
    proposing = State(
        step=Step.CONFIRM_WHEN,
        proposed_at=datetime(2026, 3, 6, 9, 0, tzinfo=PARIS),  # Friday
        timezone="Europe/Paris",
    )
    convo = Convo(state=proposing)
    convo.cmd("interview", "3pm")
    assert convo.state.proposed_at == datetime(2026, 3, 4, 15, 0, tzinfo=PARIS)


def test_not_scheduled_yet_forgets_a_proposed_time() -> None:
    convo = Convo(state=going(proposed_at=INTERVIEW + timedelta(days=1)))
    convo.tap(B.pack("when", "none"))
    assert convo.state.proposed_at is None


def test_the_day_buttons_lead_to_the_time_question_from_anywhere() -> None:
    for choice, template in (("today", "ask_time"), ("week", "ask_day_time")):
        convo = Convo(state=going())
        convo.tap(B.pack("when", choice))
        assert convo.templates == [template] and convo.state.step == Step.ASK_WHEN


def test_change_date_asks_without_promising_reminders_again() -> None:
    convo = Convo(state=going())
    convo.cmd("help")
    convo.press("when", "change")
    assert "When is the interview?" in convo.text and "reminder" not in convo.text


def test_going_after_a_legit_check_and_an_old_steer_clear_button() -> None:
    convo = at_menu()
    convo.tap(B.pack("obj", "scam_suspected"))
    steer = convo.button("scam", "steer")
    convo.press("scam", "legit")
    assert convo.state.scam is False
    convo.tap(steer)  # they changed their mind again: steer clear after all
    assert convo.state.scam is True and convo.state.decision == "pass"


def test_undecided_at_the_very_start_of_the_interview_gets_check_ins() -> None:
    convo = Convo(state=State(step=Step.MENU, interview_at=NOW, timezone="UTC"))
    convo.tap(B.pack("dec", "unsure"))
    assert len(schedules_of(convo, planner.CHECKBACK)) == 3


def test_plans_are_made_in_the_users_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    late = datetime(2026, 3, 4, 23, 0, tzinfo=tokyo)  # 14:00 UTC
    convo = Convo(ctx=make_ctx(now=late.astimezone(UTC)), state=State(timezone="Asia/Tokyo"))
    convo.tap(B.pack("dec", "unsure"))
    first = schedules_of(convo, planner.CHECKBACK)[0]
    assert first.due_at == datetime(2026, 3, 6, 8, 0, tzinfo=tokyo)
    early = datetime(2026, 3, 10, 8, 30, tzinfo=tokyo)  # pep talk due 06:30: quiet there
    going_tokyo = Convo(state=State(timezone="Asia/Tokyo", interview_at=early.astimezone(UTC)))
    going_tokyo.tap(B.pack("dec", "go"))
    (pep,) = schedules_of(going_tokyo, planner.PEP)
    assert pep.due_at == datetime(2026, 3, 10, 8, 0, tzinfo=tokyo)


def test_a_new_time_records_the_one_it_replaced() -> None:
    convo = Convo(state=going())
    convo.cmd("interview", "Fri 4pm")
    confirm(convo)
    friday = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)
    assert InterviewSet(friday, INTERVIEW) in convo.out.milestones


def test_a_zone_change_as_the_interview_starts_moves_nothing() -> None:
    convo = Convo(state=going(interview_at=NOW))
    convo.cmd("timezone", "Europe/London")
    assert convo.state.interview_at == NOW and convo.out.effects == ()


def test_cant_make_it_from_any_step_returns_to_the_going_step() -> None:
    convo = Convo(state=going(step=Step.MENU))
    convo.tap(B.pack("pre", 5, "cant"))
    assert convo.state.step == Step.GO


def test_privacy_changed_there_offers_the_opposite_next() -> None:
    convo = Convo(ctx=make_ctx(invitation=INVITED))
    convo.cmd("privacy")
    convo.press("consent", "yes")
    assert convo.button("consent", "none")  # allowed now: the way to withdraw it
    convo.tap(B.pack("consent", "none"))
    assert convo.button("consent", "yes")


def test_a_no_from_away_speaks_for_this_opening_while_another_stays_shared() -> None:
    """After a typed time the consent buttons still work; a "No" then withdraws only the
    opening the conversation is about, and says so, not that no recruiter sees anything."""
    shared = Referral("Designer", "Beta", allowed=True)
    current = Referral("Backend <Engineer>", "Acme & Co", allowed=True, current=True)
    convo = Convo(ctx=make_ctx(invitation=INVITED, referrals=(current, shared)))
    convo.tap(B.pack("consent", "no"))
    assert "for this opening, the recruiter no longer sees your name or plans" in convo.text
    assert "no recruiter sees your name or plans any more" not in convo.text
    assert "Designer at Beta: they see your first name" in convo.text
    # With nothing else shared, it is every recruiter.
    convo = Convo(ctx=make_ctx(invitation=INVITED, referrals=(current,)))
    convo.tap(B.pack("consent", "no"))
    assert "no recruiter sees your name or plans any more" in convo.text
    assert "for this opening" not in convo.text
    # Withdrawn everywhere: every recruiter, whatever was shared before.
    convo = Convo(ctx=make_ctx(invitation=INVITED, referrals=(current, shared)))
    convo.tap(B.pack("consent", "none"))
    assert "no recruiter sees your name or plans any more" in convo.text
    assert "Designer at Beta: counts only" in convo.text
