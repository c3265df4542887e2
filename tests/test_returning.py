"""A user who blocked the bot comes back: their first update, whatever it is, gets the plan
back once (bot/engine/returning.py), on the engine alone."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from bot.engine import buttons as B
from bot.engine import flow
from bot.engine.model import (
    CancelNudges,
    DeleteUserData,
    Event,
    Outcome,
    ScheduleNudge,
    SetOptOut,
    State,
)
from bot.engine.planner import KINDS
from bot.engine.returning import welcome_back
from tests.test_engine import NOW, check_reply, going_state, make_ctx

BACK = make_ctx(returning=True)
HI = Event(1, "text", "hi, I'm back", "", "Ada")


def answer(event: Event, state: State, returning: bool = True) -> Outcome:
    ctx = dataclasses.replace(BACK, returning=returning)
    return welcome_back(event, flow.handle(event, state, ctx), ctx)


def test_a_word_from_a_returning_user_going_to_an_interview_puts_the_reminders_back() -> None:
    state = going_state()
    plain = flow.handle(HI, state, make_ctx())
    out = answer(HI, state)
    note, *rest = out.replies
    text = check_reply(note).plain_text
    assert text.startswith("Welcome back, Ada!")
    assert "Tuesday 10 Mar at 15:00" in text  # 14:00 UTC, in Paris and "/stop" in text
    # Then the answer to what they wrote, as anyone would get it.
    assert tuple(rest) == plain.replies and out.state == plain.state
    # Whatever was left is cleared, then the three reminders of an interview days away.
    cancel, *planned = out.effects
    assert cancel == CancelNudges(KINDS)
    assert [e.kind for e in planned if isinstance(e, ScheduleNudge)] == ["prep", "pep", "debrief"]
    assert all(e.due_at > NOW for e in planned if isinstance(e, ScheduleNudge))


def test_an_unsure_user_with_an_interview_gets_their_check_backs_back() -> None:
    out = answer(HI, going_state(decision="unsure"))
    kinds = {e.kind for e in out.effects if isinstance(e, ScheduleNudge)}
    assert kinds == {"checkback"} and out.replies[0].template == "welcome_back"


def test_any_first_update_counts_a_tap_or_a_sticker() -> None:
    for event in (Event(1, "button", B.pack("nav", "menu")), Event(1, "other", "sticker")):
        out = answer(event, going_state())
        assert out.replies[0].template == "welcome_back"
        assert any(isinstance(e, ScheduleNudge) for e in out.effects)


def test_start_says_it_once_in_its_greeting() -> None:
    out = answer(Event(1, "command", "start", "", "Ada"), going_state())
    assert [r.template for r in out.replies] == ["welcome"]
    assert "Welcome back!" in check_reply(out.replies[0]).plain_text
    assert sum(isinstance(e, CancelNudges) for e in out.effects) == 1


def test_someone_who_never_blocked_the_bot_gets_no_welcome_back() -> None:
    state = going_state()
    assert answer(HI, state, returning=False) == flow.handle(HI, state, make_ctx())


@pytest.mark.parametrize(
    "state",
    [
        State(),  # nothing planned
        going_state(decision=None),
        going_state(decision="no"),
        going_state(interview_at=NOW - timedelta(hours=1)),  # it is over
        going_state(scam=True),  # no pep talk for what looked like fraud
        going_state(decision="unsure", interview_at=None),  # no interview to come
        going_state(decision="unsure", interview_at=NOW),  # it is starting now
    ],
)
def test_nothing_to_put_back_means_no_word_about_it(state: State) -> None:
    assert answer(HI, state) == flow.handle(HI, state, BACK)


@pytest.mark.parametrize(
    ("event", "effect"),
    [
        (Event(1, "command", "stop"), SetOptOut),
        (Event(1, "button", B.pack("del", "yes")), DeleteUserData),
    ],
)
def test_a_first_update_that_stops_or_deletes_is_not_overruled(event: Event, effect: type) -> None:
    out = answer(event, going_state())
    assert any(isinstance(e, effect) for e in out.effects)
    assert not any(isinstance(e, ScheduleNudge) for e in out.effects)
    assert all(r.template != "welcome_back" for r in out.replies)


def test_the_answer_after_the_welcome_back_keeps_its_toast_and_what_it_noted() -> None:
    # A tap that answers with a toast, and one that notes the worry named (for the counts).
    for event, state in (
        (Event(1, "button", B.pack("pre", 41, "on")), going_state()),
        (Event(1, "button", B.pack("obj", "nervous")), going_state()),
    ):
        plain = flow.handle(event, state, make_ctx())
        assert plain.notice or plain.milestones
        out = answer(event, state)
        assert out.replies[0].template == "welcome_back"
        assert (out.notice, out.milestones) == (plain.notice, plain.milestones)
