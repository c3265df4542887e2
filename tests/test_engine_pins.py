"""Engine behaviour that the mutation run of 6 December showed unpinned (docs/mutants.md):
stored state read back, the flag's "It checked out" pressed again, a row of reasons after
the "all given" screen, and the edges of a plain yes or no."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.engine import buttons as B
from bot.engine import flow
from bot.engine.answers import refusal, yes_or_no
from bot.engine.model import CancelNudges, Decided, Invitation, ScheduleNudge, State, Step
from bot.engine.planner import KINDS
from tests.test_engine import INTERVIEW, NOW, Convo, going_state, make_ctx

NERVOUS = "nervous"


# --- stored state, read back --------------------------------------------------------------


@pytest.mark.parametrize("given", ["3", '"nervous"', "null", '{"nervous": 2}'])
def test_a_malformed_count_of_reasons_given_falls_back_without_losing_the_fields_after_it(
    given: str,
) -> None:
    # The malformed field first: the fields stored after it are still read.
    raw = f'{{"given": {given}, "step": "menu", "decision": "go"}}'
    assert State.from_json(raw) == State(step=Step.MENU, decision="go")


def test_malformed_cancelled_kinds_fall_back_without_losing_the_fields_after_it() -> None:
    raw = '{"cancelled": [1], "step": "menu", "decision": "unsure"}'
    assert State.from_json(raw) == State(step=Step.MENU, decision="unsure")


def test_a_worry_none_of_whose_reasons_was_given_yet_is_a_count_of_zero() -> None:
    assert State.from_json('{"given": [["nervous", 0]]}') == State(given=((NERVOUS, 0),))


# --- the fraud flag -----------------------------------------------------------------------


def test_it_checked_out_pressed_again_replans_and_cancels_nothing() -> None:
    # The flag was lifted already (an old message's button): the reminders planned when it
    # was lifted stand; planning them again would repeat those already sent.
    convo = Convo(state=going_state())
    convo.tap(B.pack("scam", "legit"))
    assert convo.out.effects == ()
    assert convo.state.step == Step.MENU and not convo.state.scam
    # Nothing planned to begin with (no decision yet): still nothing cancelled.
    convo = Convo(state=State(step=Step.MENU))
    convo.tap(B.pack("scam", "legit"))
    assert convo.out.effects == ()


def test_a_pep_talk_button_pressed_while_the_flag_stands_stays_on_the_flag() -> None:
    for choice in ("on", "resched"):
        convo = Convo(state=going_state(scam=True, step=Step.GO))
        convo.tap(B.pack("pre", 41, choice))
        assert convo.templates == ["scam_check"]
        assert convo.state == going_state(scam=True, step=Step.SCAM)


def test_a_worry_named_while_the_flag_stands_is_remembered_as_the_last_one() -> None:
    ctx = make_ctx()
    label = ctx.kb.objections[NERVOUS].label
    convo = Convo(ctx, going_state(scam=True, step=Step.MENU))
    convo.tap(B.pack("obj", NERVOUS))
    assert convo.templates == ["scam_check"] and convo.state.objection == NERVOUS
    convo.cmd("mydata")
    assert f"Last worry: {label}" in convo.text
    # The question before a worry's reasons ("Have you already accepted it?"), too.
    convo = Convo(ctx, going_state(scam=True, step=Step.QUESTION, objection=None))
    convo.tap(B.pack("q", "offer", "open"))
    assert convo.templates == ["scam_check"] and convo.state.objection == "other_offer"


# --- reasons: all given, then a row starts afresh ----------------------------------------


def test_after_every_reason_was_given_the_doubt_screen_keeps_the_worry_and_ends_the_row() -> None:
    ctx = make_ctx()
    label = ctx.kb.objections[NERVOUS].label
    count = len(ctx.kb.objections[NERVOUS].arguments)
    # Three reasons in a row were shown, then the menu; the same worry picked again.
    state = State(step=Step.MENU, objection=None, in_row=3, given=((NERVOUS, count),))
    convo = Convo(ctx, state)
    convo.tap(B.pack("obj", NERVOUS))
    assert convo.templates == ["doubt"] and convo.state.step == Step.DOUBT
    assert convo.state.objection == NERVOUS
    convo.cmd("mydata")
    assert f"Last worry: {label}" in convo.text
    # Its first reason asked for again (an older message's button): a new row begins, which
    # hears the feeling first and offers another reason.
    convo = Convo(ctx, state)
    convo.tap(B.pack("obj", NERVOUS))
    convo.tap(B.pack("arg", NERVOUS, 0))
    assert convo.templates == ["argument"] and convo.state.in_row == 1
    [reply] = convo.out.replies
    assert reply.context["acknowledge"] == ctx.kb.objections[NERVOUS].acknowledge
    assert ("arg", B.Action("arg", (NERVOUS, "1"))) in [
        (a.name, a) for _label, a in convo.actions()
    ]


def test_a_reason_shown_again_never_lowers_the_count_of_those_given() -> None:
    ctx = make_ctx()
    convo = Convo(ctx, State(step=Step.ANSWER, objection=NERVOUS, given=((NERVOUS, 3),)))
    convo.tap(B.pack("arg", NERVOUS, 0))
    assert convo.state.given == ((NERVOUS, 3),)


# --- /start, and a new interview ----------------------------------------------------------


def test_start_without_an_interview_forgets_the_kinds_of_reminder_cancelled() -> None:
    convo = Convo(state=State(step=Step.GO, decision="go", cancelled=("pep",)))
    convo.cmd("start")
    assert convo.state.cancelled == ()


def test_a_new_interview_after_a_mixed_one_plans_every_reminder_again() -> None:
    later = INTERVIEW + timedelta(days=7)
    state = going_state(attended="mixed", cancelled=("pep",), interview_at=NOW - timedelta(days=1))
    out = flow.set_interview(state, make_ctx(), later)
    assert out.state.cancelled == ()
    assert "pep" in {e.kind for e in out.effects if isinstance(e, ScheduleNudge)}


def test_going_to_a_new_time_cancels_every_kind_even_the_check_ins_cancelled_before() -> None:
    # A check-in left from undecided days must not outlive the decision to go.
    state = going_state(cancelled=("checkback",))
    out = flow.set_interview(state, make_ctx(), INTERVIEW + timedelta(days=1))
    cancels = [e for e in out.effects if isinstance(e, CancelNudges)]
    assert cancels == [CancelNudges(KINDS)]


# --- a plain yes or no --------------------------------------------------------------------


def test_a_typed_refusal_at_a_decision_is_noted_as_not_going() -> None:
    convo = Convo(state=State(step=Step.DECISION, decision="unsure"))
    convo.say("no thanks")
    assert convo.state.decision == "pass"
    assert Decided("pass", "unsure") in convo.out.milestones


def test_five_words_are_still_a_plain_answer_and_six_are_not() -> None:
    assert yes_or_no("yes that is quite right") == "yes"
    assert yes_or_no("yes that is quite right indeed") is None
    assert refusal("no no no thank you") == "polite"
    assert refusal("no no no no no") == "bare"
    assert refusal("no no no no no no") is None


# --- a time typed at the consent question --------------------------------------------------

ASKED_CONSENT = State(step=Step.CONSENT, return_step=Step.ASK_WHEN, decision="go")


def test_a_date_too_far_ahead_typed_at_the_consent_question_asks_for_the_time_again() -> None:
    ctx = make_ctx(invitation=Invitation(role="Analyst", company="Acme"))
    convo = Convo(ctx, ASKED_CONSENT)
    convo.say("12 March 2031 at 3pm")  # a typo: more than two years ahead
    assert convo.templates == ["when_unclear", "ask_when"]
    assert convo.state == State(step=Step.ASK_WHEN, decision="go")


def test_a_time_typed_after_the_consent_question_was_left_is_not_taken_for_the_interview() -> None:
    # The step it stood in front of is remembered, but the question is no longer on screen.
    state = State(step=Step.MENU, return_step=Step.ASK_WHEN, decision="go")
    convo = Convo(make_ctx(), state)
    convo.say("Thursday at 3pm")
    assert convo.state.step != Step.CONFIRM_WHEN and convo.state.proposed_at is None
