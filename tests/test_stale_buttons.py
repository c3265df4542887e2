"""Old buttons pressed after the conversation moved on: a decision made since stands."""

from __future__ import annotations

from bot.engine import buttons as B
from bot.engine.model import ScheduleNudge, Step
from tests.test_engine import going_in_paris


def test_an_old_yes_thats_right_does_not_undo_a_pass() -> None:
    convo = going_in_paris()
    convo.say("Thursday 2pm")
    assert convo.templates == ["confirm_when"]
    old_yes = convo.button_named("whenok")
    convo.tap(B.pack("dec", "pass"))  # they decided not to go after all
    assert (convo.state.decision, convo.state.step) == ("pass", Step.PASS)
    before = convo.state

    convo.tap(old_yes)

    assert convo.state == before  # no interview set, still at their "no"
    assert convo.state.interview_at is None
    assert not [e for e in convo.out.effects if isinstance(e, ScheduleNudge)]
    assert convo.templates == ["next_steps"]
    assert "You decided to pass" in convo.text


def test_an_old_yes_thats_right_still_sets_the_time_while_unsure() -> None:
    # Only a "no" stands against it: an undecided candidate may give the time (check-backs
    # are planned around it), as a candidate who is going does.
    convo = going_in_paris()
    convo.say("Thursday 2pm")
    old_yes = convo.button_named("whenok")
    convo.tap(B.pack("dec", "unsure"))
    convo.tap(old_yes)
    assert convo.state.decision == "unsure"
    assert convo.state.interview_at is not None
    assert convo.state.step == Step.UNSURE
    assert convo.templates == ["plan"]
