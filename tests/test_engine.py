"""The conversation engine as pure functions: (event, state, context) -> Outcome, fake clock.

Every reply produced here is rendered with the real templates (`Renderer`, StrictUndefined) and
every keyboard is checked against Telegram's limits, so the walks also prove the content renders.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from bot.engine import buttons as B
from bot.engine import flow, planner
from bot.engine.context import Context
from bot.engine.model import (
    Attended,
    CancelNudge,
    CancelNudges,
    CantMakeIt,
    ConsentGiven,
    Decided,
    DeleteUserData,
    Effect,
    Event,
    InterviewSet,
    Invitation,
    MoveNudge,
    Outcome,
    PendingNudge,
    QuestionAsked,
    Reply,
    ScheduleNudge,
    SetOptOut,
    SnoozeNudge,
    State,
    Step,
    WorryNamed,
)
from bot.engine.nudging import nudge_reply
from bot.engine.returning import welcome_back
from bot.knowledge.base import KnowledgeBase, load_default
from bot.knowledge.classifier import (
    Alternative,
    Classification,
    ObjectionClassifier,
    default_classifier,
)
from bot.render import MAX_TEXT, RenderedMessage, Renderer

ROOT = Path(__file__).resolve().parent.parent
# Wednesday 4 March 2026, 09:00 UTC = 10:00 in Paris (CET, UTC+1; summer time starts 29 March).
NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
RENDERER = Renderer()
MAX_BUTTONS = 6
# The guide's "one idea per message, about 600 characters, readable on a phone".
MAX_PHONE_TEXT = 600
MAX_IN_ROW = flow.MAX_IN_ROW
# ...and at most two messages in answer to one tap or message.
MAX_MESSAGES = 2
# A bullet that does not start its line: a template's block tag ate the newline before it.
GLUED_BULLET = re.compile(r"[^\n]•")
# The five articles, with the labels the GUIDE says to cite them by.
SOURCE_LABELS = (
    "An Interview, An Opportunity",
    "The Job Might Surprise You",
    "To Interview or Not To Interview",
    "Don't Want To Go On That Interview? Do It Anyway",
    "Show Up to Your Interview (Even the Job You Don't Want)",
)


def kb() -> KnowledgeBase:
    return load_default()


def make_ctx(now: datetime = NOW, **changes: Any) -> Context:
    ctx = Context(kb=kb(), classifier=default_classifier(), now=now)
    return dataclasses.replace(ctx, **changes)


class StubClassifier:
    """Answers every text with one chosen classification (the engine only calls classify)."""

    def __init__(self, result: Classification) -> None:
        self.result = result
        self.seen: list[str] = []

    def classify(self, text: str) -> Classification:
        self.seen.append(text)
        return self.result


def stub_ctx(result: Classification, **changes: Any) -> Context:
    return make_ctx(classifier=cast(ObjectionClassifier, StubClassifier(result)), **changes)


def all_buttons(reply: Reply) -> list[tuple[str, B.Action]]:
    found = []
    for row in reply.keyboard:
        for button in row:
            action = B.unpack(button.data)
            assert action is not None, f"button data does not unpack: {button.data!r}"
            found.append((button.data, action))
    return found


def check_reply(reply: Reply) -> RenderedMessage:
    """Telegram's limits and the guide's: <= 6 buttons, data <= 64 bytes that unpacks, text
    <= 4096 characters (and about 600 for a phone), and the template renders with the context
    the engine gave it."""
    buttons = [b for row in reply.keyboard for b in row]
    assert len(buttons) <= MAX_BUTTONS, f"{reply.template}: {len(buttons)} buttons"
    for button in buttons:
        assert len(button.data.encode()) <= 64, button.data  # Telegram's callback_data limit
        assert B.unpack(button.data) is not None, button.data
    message = RENDERER.render(reply)
    assert message.text.strip(), f"{reply.template} rendered empty"
    assert len(message.plain_text) <= MAX_TEXT
    assert len(message.plain_text) <= MAX_PHONE_TEXT, f"{reply.template} is long for a phone"
    assert not GLUED_BULLET.search(message.plain_text), f"{reply.template}: {message.plain_text}"
    return message


class Convo:
    """One user talking to the engine; every outcome is rendered and checked."""

    def __init__(self, ctx: Context | None = None, state: State | None = None) -> None:
        self.ctx = ctx or make_ctx()
        self.state = state or State()
        self.out: Outcome = Outcome((), self.state)
        self.messages: list[RenderedMessage] = []
        self.templates_seen: set[str] = set()

    def send(self, event: Event) -> Outcome:
        self.out = flow.handle(event, self.state, self.ctx)
        assert len(self.out.replies) <= MAX_MESSAGES, [r.template for r in self.out.replies]
        self.messages = [check_reply(r) for r in self.out.replies]
        self.templates_seen.update(r.template for r in self.out.replies)
        self.state = self.out.state
        return self.out

    def cmd(self, name: str, argument: str = "", first_name: str = "Ada") -> Outcome:
        return self.send(Event(1, "command", name, argument, first_name))

    def tap(self, data: str) -> Outcome:
        return self.send(Event(1, "button", data))

    def say(self, text: str) -> Outcome:
        return self.send(Event(1, "text", text))

    def at(self, now: datetime) -> Convo:
        self.ctx = dataclasses.replace(self.ctx, now=now)
        return self

    @property
    def templates(self) -> list[str]:
        """The templates of the last replies; a long list sent as several messages of one
        template counts once."""
        names: list[str] = []
        for reply in self.out.replies:
            if not names or names[-1] != reply.template:
                names.append(reply.template)
        return names

    @property
    def text(self) -> str:
        return "\n".join(m.plain_text for m in self.messages)

    def actions(self) -> list[tuple[str, B.Action]]:
        return [pair for reply in self.out.replies for pair in all_buttons(reply)]

    def button(self, name: str, *args: str | int) -> str:
        """The data of a button shown in the last replies (fails if there is none)."""
        wanted = B.Action(name, tuple(str(a) for a in args))
        for data, action in self.actions():
            if action == wanted:
                return data
        shown = [data for data, _ in self.actions()]
        raise AssertionError(f"no {wanted} button among {shown}")

    def button_named(self, name: str) -> str:
        matches = [data for data, action in self.actions() if action.name == name]
        assert len(matches) == 1, f"expected one {name} button, got {matches}"
        return matches[0]

    def press(self, name: str, *args: str | int) -> Outcome:
        return self.tap(self.button(name, *args))


def schedules(effects: Iterable[Effect]) -> dict[str, ScheduleNudge]:
    found: dict[str, ScheduleNudge] = {}
    for effect in effects:
        if isinstance(effect, ScheduleNudge):
            assert effect.kind not in found, f"{effect.kind} scheduled twice in one outcome"
            found[effect.kind] = effect
    return found


def going_in_paris() -> Convo:
    """A user in Paris who said they are going and is asked when."""
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.press("lean", "yes")
    convo.press("dec", "go")
    assert convo.state.step == Step.ASK_WHEN
    return convo


def confirm(convo: Convo) -> Outcome:
    """Tap "Yes, that's right" on the proposed interview time."""
    return convo.tap(convo.button_named("whenok"))


# --- /start --------------------------------------------------------------------------------


def test_start_greets_by_name_says_it_is_a_bot_and_never_asks_for_secrets() -> None:
    convo = Convo()
    convo.cmd("start", first_name="Ada")
    assert convo.templates[0] == "welcome"
    welcome = convo.messages[0].plain_text
    assert "Ada" in welcome
    lower = welcome.lower()
    assert "automated" in lower
    assert "never" in lower
    for secret in ("password", "money", "bank details"):
        assert secret in lower
    # One message: it ends with the first question and its buttons, nothing else yet.
    assert convo.templates == ["welcome"] and "What brings you here?" in welcome
    assert {a for _, a in convo.actions()} == {
        B.Action("sit", (s,)) for s in ("invite", "prep", "explore")
    }
    assert convo.state.step == Step.SITUATION
    assert convo.out.effects == ()


def test_first_name_markup_is_escaped_and_long_names_are_cut() -> None:
    convo = Convo()
    convo.cmd("start", first_name="<b>Eve</b> & co")
    html = convo.messages[0].text
    assert "&lt;b&gt;Eve&lt;/b&gt; &amp; co" in html
    assert "<b>Eve</b>" not in html
    convo.cmd("start", first_name="N" * 5000)
    # A first name is greeted with at most 64 characters of it.
    assert "N" * 65 not in convo.messages[0].text
    assert "N" * 64 in convo.messages[0].text
    convo.cmd("start", first_name="  Ada  ")
    assert "Ada" in convo.messages[0].text and "  Ada" not in convo.messages[0].text


def test_start_again_keeps_timezone_and_interview_but_resets_the_talk() -> None:
    interview = NOW + timedelta(days=3)
    state = State(
        step=Step.GO,
        situation="invite",
        objection="nervous",
        decision="go",
        timezone="Europe/Paris",
        interview_at=interview,
    )
    convo = Convo(state=state)
    convo.cmd("start")
    assert convo.state.timezone == "Europe/Paris"
    assert convo.state.interview_at == interview
    assert convo.state.decision == "go"
    assert convo.state.objection is None and convo.state.situation is None
    assert convo.state.step == Step.SITUATION


# --- the objection menus -------------------------------------------------------------------


def menu_objections(convo: Convo) -> list[str]:
    return [a.args[0] for _, a in convo.actions() if a.name == "obj"]


@pytest.mark.parametrize(
    ("situation", "lean"),
    [("invite", "unsure"), ("invite", "no"), ("explore", "unsure"), ("explore", "no")],
)
def test_every_objection_is_at_most_four_taps_from_start(situation: str, lean: str) -> None:
    # Discover the menus by walking them.
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", situation)
    convo.press("lean", lean)
    assert convo.templates == ["menu"]
    first_page = menu_objections(convo)
    convo.tap(convo.button("nav", "menu_more"))
    assert convo.templates == ["menu_more"]
    more_page = menu_objections(convo)
    # Every doubt the knowledge base answers is on one of the two pages (small talk and an
    # unpaid task are only ever typed).
    assert set(first_page) | set(more_page) == set(kb().objections) - {"other", "unpaid_task"}
    assert not set(first_page) & set(more_page)

    for objection in first_page + more_page:
        walk = Convo()
        walk.cmd("start")
        taps = 0
        for step in (("sit", situation), ("lean", lean)):
            walk.press(*step)
            taps += 1
        if objection in more_page:
            walk.press("nav", "menu_more")
            taps += 1
        walk.press("obj", objection)
        taps += 1
        assert taps <= 4, f"{objection}: {taps} taps"
        if objection == "scam_suspected":
            assert walk.templates == ["scam"]
            assert kb().coaching.scam_source.label in walk.text
            continue
        # Where an article makes an honest exception, it comes first, or the question that
        # tells whether it applies; the arguments are one tap further.
        lead = {"not_looking": "exception", "other_offer": "question", "bad_company": "question"}
        if objection in lead:
            assert walk.templates == [lead[objection]]
            continue
        assert walk.templates == ["argument"]
        first_argument = kb().objections[objection].arguments[0]
        assert walk.out.replies[0].context["argument"] == first_argument
        assert first_argument.title in walk.text
        assert first_argument.source.label in walk.text
        assert walk.state.step == Step.ANSWER and walk.state.objection == objection


BACK_ACTIONS = {
    B.Action("when", ("change",)),
    B.Action("whenno"),
    B.Action("tz", ("keep",)),
}


def has_way_back(convo: Convo) -> bool:
    """A button that shows an earlier screen or undoes the last choice."""
    return any(a.name == "nav" or a in BACK_ACTIONS for _, a in convo.actions())


def test_each_step_offers_a_way_back() -> None:
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("start")
    assert convo.templates == ["welcome"]  # the root: nothing to go back to

    steps: list[tuple[str, tuple[str, ...]]] = [
        ("sit", ("invite",)),  # lean
        ("lean", ("unsure",)),  # menu
        ("nav", ("menu_more",)),  # menu_more
        ("obj", ("scam_suspected",)),  # scam
        ("scam", ("legit",)),  # "it's legitimate": menu again
        ("obj", ("nervous",)),  # argument
        ("arg", ("nervous", "1")),  # second argument
        ("ok", ("nervous",)),  # decision
        ("dec", ("unsure",)),  # unsure (+ ask when)
    ]
    for name, args in steps:
        convo.press(name, *args)
        assert has_way_back(convo), f"no way back after {name}:{args}: {convo.templates}"

    convo.press("when", "today")  # ask_time
    assert convo.templates == ["ask_time"] and has_way_back(convo)
    convo.say("6pm")  # confirm_when
    assert convo.templates == ["confirm_when"] and has_way_back(convo)
    convo.press("tz", "ask")  # ask_tz
    assert convo.templates == ["ask_tz"] and has_way_back(convo)
    convo.press("tz", "keep")
    assert convo.templates == ["confirm_when"]
    confirm(convo)  # plan
    assert convo.templates[0] == "plan" and has_way_back(convo)

    passing = Convo()
    passing.cmd("start")
    passing.press("sit", "invite")
    passing.press("lean", "no")
    passing.press("obj", "not_a_fit")
    passing.press("doubt", "not_a_fit")
    assert passing.templates == ["doubt"] and has_way_back(passing)
    passing.press("dec", "pass")
    assert passing.templates[0] == "pass" and has_way_back(passing)
    for lead in ("not_looking", "other_offer"):
        passing.tap(B.pack("obj", lead))
        assert passing.templates[0] in ("exception", "question") and has_way_back(passing)


def test_the_week_screen_has_no_buttons_but_the_day_buttons_above_still_work() -> None:
    convo = going_in_paris()
    today = convo.button("when", "today")
    convo.press("when", "week")
    assert convo.templates == ["ask_day_time"]
    # No keyboard on this message: the earlier day buttons are the way back, and still work.
    convo.tap(today)
    assert convo.templates == ["ask_time"]
    assert convo.state.proposed_at == datetime(2026, 3, 4, tzinfo=PARIS)


# --- the decision ----------------------------------------------------------------------------


def test_lean_yes_goes_straight_to_the_decision_and_lean_no_to_the_menu() -> None:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.press("lean", "yes")
    assert convo.templates == ["decision"] and convo.state.step == Step.DECISION
    assert {a.args[0] for _, a in convo.actions() if a.name == "dec"} == {"go", "unsure", "pass"}
    convo.press("nav", "menu")  # "Something bugs me"
    assert convo.templates == ["menu"]
    convo.press("nav", "decision")  # "Decide now": back to the choice, one tap
    assert convo.templates == ["decision"]
    convo.tap(B.pack("nav", "lean"))  # the lean question's "Back" from earlier
    convo.press("lean", "no")
    assert convo.templates == ["menu"] and convo.state.lean == "no"


@pytest.mark.parametrize("lean", ["no", "unsure", "yes"])
def test_the_worry_menu_keeps_the_decision_one_tap_away(lean: str) -> None:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.press("lean", lean)
    if lean == "yes":
        convo.press("nav", "menu")  # "Something bugs me"
    assert convo.templates == ["menu"]
    if lean == "no":  # leaning no: "I'll pass" itself
        convo.press("dec", "pass")
        assert convo.state.decision == "pass"
    else:  # otherwise the three choices, one tap away
        convo.press("nav", "decision")
        assert {a.args for _, a in convo.actions() if a.name == "dec"} == {
            ("go",),
            ("unsure",),
            ("pass",),
        }


@pytest.mark.parametrize("question", ["other_offer", "bad_company"])
def test_the_questions_before_the_arguments_offer_ill_pass(question: str) -> None:
    convo = at_menu()
    convo.tap(B.pack("obj", question))
    assert convo.templates == ["question"]
    convo.press("dec", "pass")
    assert convo.state.decision == "pass"


def test_going_prep_situation_skips_to_the_checklist() -> None:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "prep")
    assert convo.templates == ["go_checklist", "ask_when"]
    assert convo.state.decision == "go"


def test_decision_go_shows_the_checklist_and_asks_when() -> None:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.press("lean", "yes")
    convo.press("dec", "go")
    assert convo.templates == ["go_checklist", "ask_when"]
    for item in kb().coaching.checklist:
        assert item.title in convo.text
    assert convo.state.decision == "go" and convo.state.step == Step.ASK_WHEN
    # Going ends the "are you sure?" check-backs; nothing new without a time.
    assert any(
        isinstance(e, CancelNudges) and (not e.kinds or planner.CHECKBACK in e.kinds)
        for e in convo.out.effects
    )
    assert not schedules(convo.out.effects)
    assert {a.args[0] for _, a in convo.actions() if a.name == "when"} >= {"today", "tomorrow"}


def test_decision_unsure_shows_gains_asks_when_and_plans_checkbacks() -> None:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "explore")
    convo.press("lean", "unsure")
    convo.press("obj", "waste_of_time")
    convo.press("ok", "waste_of_time")
    assert convo.templates == ["decision"]
    convo.press("dec", "unsure")
    assert convo.templates == ["unsure", "ask_when"]
    for item in kb().coaching.gains:
        assert item.title in convo.text
    assert convo.state.decision == "unsure"
    effects = convo.out.effects
    assert isinstance(effects[0], CancelNudges)
    assert set(planner.KINDS) <= set(effects[0].kinds)
    checkbacks = [e for e in effects if isinstance(e, ScheduleNudge)]
    assert {e.kind for e in checkbacks} == {planner.CHECKBACK}
    # 09:00 UTC is outside the default quiet hours, so nothing moves: +1, +4, +7 days.
    assert [e.due_at for e in checkbacks] == [NOW + timedelta(days=d) for d in (1, 4, 7)]
    # README: each is good for 2 days (no interview to end it sooner).
    assert [e.deadline for e in checkbacks] == [NOW + timedelta(days=d + 2) for d in (1, 4, 7)]


def test_decision_pass_shows_exceptions_and_a_withdrawal_and_cancels_everything() -> None:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.press("lean", "no")
    convo.press("obj", "not_a_fit")
    convo.press("ok", "not_a_fit")
    convo.press("dec", "pass")
    assert convo.templates == ["pass", "withdraw_note"]
    # The articles' own exceptions, named with their source, then a note in our own words.
    assert "already employed" in convo.text and "red flag" in convo.text
    assert kb().coaching.exceptions["content"].source.label in convo.text
    assert kb().coaching.withdrawal in convo.text
    assert "Our own wording" in convo.text
    assert convo.out.effects == (CancelNudges(),)
    assert convo.state.decision == "pass" and convo.state.step == Step.PASS
    # No pressure, but a way to change one's mind.
    convo.press("dec", "go")
    assert convo.templates[0] == "go_checklist"


def test_after_three_reasons_in_a_row_the_coach_offers_the_decision() -> None:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.press("lean", "unsure")
    convo.press("obj", "nervous")
    arguments = kb().objections["nervous"].arguments
    assert len(arguments) > 3  # enough to see the coach stop after three
    assert convo.out.replies[0].context["argument"] == arguments[0]
    # "I'll pass" is one tap away on every argument.
    assert convo.button("dec", "pass")
    convo.press("arg", "nervous", 1)
    assert convo.out.replies[0].context["argument"] == arguments[1]
    assert arguments[1].title in convo.text and arguments[1].source.label in convo.text
    assert convo.state.arg_index == 1 and convo.state.in_row == 2
    assert convo.button("dec", "pass") and convo.button("arg", "nervous", 2)
    convo.press("arg", "nervous", 2)
    # The third in a row: no "Another reason", the decision instead.
    assert convo.out.replies[0].context["row_end"] is True
    assert not [a for _, a in convo.actions() if a.name == "arg"]
    assert {a.args[0] for _, a in convo.actions() if a.name == "dec"} == {"go", "unsure", "pass"}
    assert "Your call now" in convo.text
    # The same worry picked again later goes on with the reasons not yet given.
    convo.press("nav", "menu")
    convo.press("obj", "nervous")
    assert convo.out.replies[0].context["argument"] == arguments[3]
    assert convo.state.in_row == 1 and convo.button("arg", "nervous", 4)
    # An index past the end (an old message, a shorter list since) shows the last one.
    convo.tap(B.pack("arg", "nervous", 99))
    assert convo.out.replies[0].context["argument"] == arguments[-1]
    assert not [a for _, a in convo.actions() if a.name == "arg"]


def test_the_feeling_is_heard_once_before_the_first_argument() -> None:
    convo = at_menu()
    convo.press("obj", "nervous")
    acknowledge = kb().objections["nervous"].acknowledge
    assert acknowledge is not None
    assert convo.messages[0].plain_text.startswith(acknowledge)
    convo.press("arg", "nervous", 1)
    assert acknowledge not in convo.text


def test_low_risk_practice_comes_with_tandyms_caution() -> None:
    nervous = [a.id for a in kb().objections["nervous"].arguments]
    convo = Convo(state=State(step=Step.ANSWER, objection="nervous", in_row=1))
    convo.tap(B.pack("arg", "nervous", nervous.index("low_risk_practice")))
    assert "only for practice" in convo.text
    assert "Don't Want To Go On That Interview? Do It Anyway" in convo.text


def test_still_doubtful_stops_arguing_and_offers_to_talk_or_decide() -> None:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.press("lean", "unsure")
    convo.press("obj", "wont_get_offer")
    convo.press("doubt", "wont_get_offer")
    assert convo.templates == ["doubt"] and convo.state.step == Step.DOUBT
    # No argument and no "Another reason": another worry, their own words, or a decision.
    assert not [a for _, a in convo.actions() if a.name in ("arg", "obj")]
    assert {a.args[0] for _, a in convo.actions() if a.name == "dec"} == {"go", "unsure", "pass"}
    assert convo.button("nav", "menu") and convo.button("type")
    convo.cmd("help")
    assert convo.templates == ["help", "doubt"]
    convo.press("nav", "menu")
    convo.press("obj", "not_a_fit")
    convo.press("ok", "not_a_fit")
    assert convo.templates == ["decision"] and convo.state.step == Step.DECISION


# --- free text -------------------------------------------------------------------------------


def at_menu() -> Convo:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.press("lean", "unsure")
    return convo


def test_a_clear_objection_typed_gets_its_argument() -> None:
    convo = at_menu()
    convo.say("I get so anxious in interviews, I'm scared I'll freeze")
    assert convo.templates == ["argument"]
    assert convo.state.objection == "nervous"
    assert kb().objections["nervous"].arguments[0].source.label in convo.text


def test_a_scam_typed_gets_a_warning_and_no_encouragement() -> None:
    convo = at_menu()
    convo.say("they want me to pay a fee for the training kit and send my bank details first")
    assert convo.templates == ["scam"]
    assert convo.state.step == Step.SCAM
    assert "fraud" in convo.text.lower()
    for point in kb().coaching.scam_points:
        assert point in convo.text
    # Nothing on the way to "go": no argument, no checklist, no decision buttons.
    assert not {"argument", "go_checklist", "decision"} & set(convo.templates)
    assert not [a for _, a in convo.actions() if a.name in ("dec", "ok", "arg", "when")]


def test_gibberish_is_not_understood_and_shows_the_menu() -> None:
    convo = at_menu()
    convo.press("obj", "nervous")
    convo.say("qzx vbnm plk")
    assert convo.templates == ["not_understood", "menu"]
    assert convo.state.step == Step.MENU
    assert menu_objections(convo)


def test_a_greeting_gets_smalltalk_and_the_current_screen() -> None:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.say("hello")
    assert convo.templates == ["smalltalk", "lean"]
    assert convo.state.step == Step.LEAN


def test_ambiguous_text_asks_did_you_mean_with_both_options() -> None:
    close = Classification("nervous", 0.40, (Alternative("wont_get_offer", 0.35),))
    convo = Convo(ctx=stub_ctx(close))
    convo.cmd("start")
    convo.say("eh, the interview thing")
    assert convo.templates == ["did_you_mean"]
    assert menu_objections(convo) == ["nervous", "wont_get_offer"]
    assert convo.button("nav", "menu")  # "Neither"
    for oid in ("nervous", "wont_get_offer"):
        assert kb().objections[oid].summary in convo.text
    assert convo.state.step == Step.SITUATION  # nothing decided yet
    convo.press("obj", "wont_get_offer")
    assert convo.templates == ["argument"] and convo.state.objection == "wont_get_offer"


def test_did_you_mean_always_offers_two_readings_never_small_talk() -> None:
    close = Classification(
        "other", 0.30, (Alternative("nervous", 0.25), Alternative("not_a_fit", 0.1))
    )
    convo = Convo(ctx=stub_ctx(close))
    convo.cmd("start")
    convo.say("hmm")
    assert convo.templates == ["did_you_mean"]
    assert menu_objections(convo) == ["nervous", "not_a_fit"]
    assert convo.button("nav", "menu")
    # One question, not a list.
    assert convo.text.count("?") == 1 and "•" not in convo.text
    # With a single reading left, no one-option "did you mean": the list instead.
    lonely = Classification("other", 0.30, (Alternative("nervous", 0.25),))
    convo = Convo(ctx=stub_ctx(lonely))
    convo.say("hmm")
    assert convo.templates == ["not_understood", "menu"]


def test_did_you_mean_can_offer_a_decision() -> None:
    close = Classification(
        "not_a_fit", 0.45, (Alternative("decide_pass", 0.38), Alternative("other", 0.05))
    )
    convo = Convo(ctx=stub_ctx(close))
    convo.say("I'm not going, the pay is awful")
    assert convo.templates == ["did_you_mean"]
    assert kb().intents["decide_pass"].summary in convo.text
    convo.press("dec", "pass")
    assert convo.state.decision == "pass"


def test_a_likely_scam_is_flagged_even_when_not_certain() -> None:
    unsure_scam = Classification("scam_suspected", 0.36, (Alternative("not_a_fit", 0.34),))
    convo = Convo(ctx=stub_ctx(unsure_scam))
    convo.cmd("start")
    convo.say("they asked for money")
    assert convo.templates == ["scam"]


# --- buttons out of place --------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "v1:obj:no_such_objection",
        "v2:sit:invite",
        "v1:sit:invite:extra",
        "v1:sit",
        "v1:dec:maybe",
        "v1:nav:nowhere",
        "v1:launch:missiles",
        "v1:del:everything",
        "v1:whenok:-5",
        "v1:arg:nervous:x",
        "V1:SIT:INVITE",
        "sit:invite",
        "",
        "x" * 200,
        "v1:obj:' OR 1=1 --",
        "v1:sit:ínvite",
    ],
)
def test_forged_button_data_says_so_and_shows_where_we_are(data: str) -> None:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "invite")
    before = convo.state
    convo.tap(data)
    assert convo.templates == ["unknown_button", "lean"]
    assert convo.out.notice
    assert convo.state == before
    assert convo.out.effects == ()


def test_a_stale_button_acts_on_its_label() -> None:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "invite")
    old_lean = convo.button("lean", "unsure")
    convo.press("lean", "unsure")
    old_nervous = convo.button("obj", "nervous")
    convo.press("obj", "waste_of_time")
    convo.press("ok", "waste_of_time")
    assert convo.state.step == Step.DECISION
    convo.tap(old_nervous)  # from the menu two messages up
    assert convo.templates == ["argument"] and convo.state.objection == "nervous"
    convo.tap(old_lean)
    assert convo.templates == ["menu"] and convo.state.lean == "unsure"


def test_a_non_text_message_says_so_and_shows_where_we_are() -> None:
    convo = at_menu()
    convo.send(Event(1, "other", "sticker"))
    assert convo.templates == ["non_text", "menu"]
    assert convo.state.step == Step.MENU


# --- commands --------------------------------------------------------------------------------


def test_help_explains_and_shows_the_current_screen() -> None:
    convo = at_menu()
    convo.press("obj", "nervous")
    convo.cmd("help")
    assert convo.templates == ["help", "argument"]
    for command in ("/start", "/interview", "/timezone", "/nudges", "/stop", "/mydata"):
        assert command in convo.text
    convo.cmd("frobnicate")
    assert convo.templates == ["unknown_command", "argument"]


def test_about_names_all_five_sources() -> None:
    convo = Convo()
    convo.cmd("about")
    assert convo.templates == ["about"]
    for label in SOURCE_LABELS:
        assert label in convo.text
    assert len(kb().sources) == len(SOURCE_LABELS)


def test_mydata_then_delete_asks_first_and_deletes_on_yes() -> None:
    state = State(step=Step.MENU, decision="unsure", timezone="Europe/Paris")
    pending = (PendingNudge(7, planner.CHECKBACK, NOW + timedelta(days=1)),)
    convo = Convo(ctx=make_ctx(pending=pending), state=state)
    convo.cmd("mydata")
    assert convo.templates == ["mydata"]
    assert "Europe/Paris" in convo.text
    assert convo.out.effects == ()
    convo.press("del", "ask")
    assert convo.templates == ["delete_confirm"] and convo.out.effects == ()
    convo.press("del", "no")
    assert convo.templates[0] == "delete_kept" and convo.state == state
    assert convo.out.effects == ()
    convo.cmd("delete")
    assert convo.templates == ["delete_confirm"]
    convo.press("del", "yes")
    assert convo.templates == ["deleted"]
    assert convo.out.effects == (DeleteUserData(),)
    assert convo.state == State()


def test_stop_cancels_nudges_and_opts_out() -> None:
    convo = at_menu()
    convo.cmd("stop")
    assert convo.templates == ["stopped"]
    assert CancelNudges() in convo.out.effects
    assert SetOptOut(True) in convo.out.effects


def test_nudges_lists_pending_with_cancel_buttons() -> None:
    pending = tuple(
        PendingNudge(10 + i, kind, NOW + timedelta(days=i + 1))
        for i, kind in enumerate((planner.PREP, planner.PEP, planner.DEBRIEF))
    )
    convo = Convo(ctx=make_ctx(pending=pending), state=State(timezone="Europe/Paris"))
    convo.cmd("nudges")
    assert convo.templates == ["nudges"]
    cancels = [int(a.args[0]) for _, a in convo.actions() if a.name == "cancel"]
    assert cancels == [10, 11, 12]
    assert convo.button("stopall")
    convo.press("cancel", 11)
    assert convo.out.effects == (CancelNudge(11),)
    assert [int(a.args[0]) for _, a in convo.actions() if a.name == "cancel"] == [10, 12]
    convo.press("stopall")
    assert convo.out.effects == (CancelNudges(),)


def test_nudges_with_many_or_none_pending() -> None:
    many = tuple(PendingNudge(i, planner.CHECKBACK, NOW + timedelta(hours=i)) for i in range(9))
    convo = Convo(ctx=make_ctx(pending=many))
    convo.cmd("nudges")  # check_reply enforces <= 6 buttons
    assert convo.button("stopall")
    empty = Convo()
    empty.cmd("nudges")
    assert empty.actions() == []
    assert "/interview" in empty.text


# --- time zone -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "zone"),
    [("Berlin", "Europe/Berlin"), ("America/New_York", "America/New_York")],
)
def test_timezone_by_city_or_name(typed: str, zone: str) -> None:
    convo = at_menu()
    convo.cmd("timezone", typed)
    assert convo.state.timezone == zone
    assert convo.templates == ["tz_set", "menu"]
    assert convo.state.step == Step.MENU


def test_timezone_from_local_time() -> None:
    now = datetime(2026, 3, 4, 12, 35, tzinfo=UTC)
    convo = Convo(ctx=make_ctx(now=now))
    convo.cmd("timezone", "14:35")
    assert convo.state.timezone is not None
    assert ZoneInfo(convo.state.timezone).utcoffset(now) == timedelta(hours=2)


def test_timezone_garbage_asks_again_then_typed_city_returns_to_the_step() -> None:
    convo = at_menu()
    convo.cmd("timezone", "the moon, probably")
    assert convo.templates == ["tz_unknown", "ask_tz"]
    assert convo.state.timezone is None and convo.state.step == Step.ASK_TZ
    convo.say("blorp")
    assert convo.templates == ["tz_unknown", "ask_tz"]
    convo.say("tokyo")
    assert convo.state.timezone == "Asia/Tokyo"
    assert convo.state.step == Step.MENU and convo.templates == ["tz_set", "menu"]


def test_timezone_without_argument_asks_and_keep_returns() -> None:
    convo = at_menu()
    convo.cmd("timezone")
    assert convo.templates == ["ask_tz"] and convo.state.step == Step.ASK_TZ
    convo.press("tz", "keep")
    assert convo.state.step == Step.MENU and convo.templates == ["menu"]


def test_changing_the_timezone_keeps_the_typed_time_and_moves_the_plan_with_it() -> None:
    # Saved as Tuesday 14:00 in Paris (13:00 UTC); the user then says they are in Berlin.
    interview = datetime(2026, 3, 10, 14, 0, tzinfo=PARIS)
    pending = (
        PendingNudge(
            1, planner.PREP, interview - timedelta(hours=24), interview - timedelta(hours=2)
        ),
        PendingNudge(2, planner.PEP, interview - timedelta(hours=2), interview),
    )  # the debrief (id 3) was cancelled in /nudges: it is not pending
    state = State(step=Step.GO, decision="go", timezone="Europe/Paris", interview_at=interview)
    convo = Convo(ctx=make_ctx(pending=pending), state=state)
    convo.cmd("timezone", "Europe/London")
    london = datetime(2026, 3, 10, 14, 0, tzinfo=ZoneInfo("Europe/London"))
    assert convo.state.interview_at == london
    assert "14:00" in convo.text and "stays" in convo.text
    hour = london - interview
    assert hour == timedelta(hours=1)
    assert convo.out.effects == (
        MoveNudge(1, pending[0].due_at + hour, london - timedelta(hours=2)),
        MoveNudge(2, pending[1].due_at + hour, london),
    )
    # Nothing is planned afresh, so nothing cancelled comes back.
    assert not schedules(convo.out.effects)
    assert not [e for e in convo.out.effects if isinstance(e, CancelNudges)]


def test_a_reminder_moved_into_quiet_hours_is_dropped_if_it_cannot_wait() -> None:
    # 08:30 in Paris; the pep talk at 06:30 would be in quiet hours.
    interview = datetime(2026, 3, 10, 8, 30, tzinfo=PARIS)
    pep = PendingNudge(2, planner.PEP, datetime(2026, 3, 10, 8, 0, tzinfo=PARIS), interview)
    state = State(step=Step.GO, decision="go", timezone="Europe/Paris", interview_at=interview)
    convo = Convo(ctx=make_ctx(pending=(pep,)), state=state)
    convo.cmd("timezone", "Asia/Tokyo")
    tokyo = datetime(2026, 3, 10, 8, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert convo.state.interview_at == tokyo
    # 08:00 becomes 08:00 Tokyo minus nothing: moved with the interview, still allowed.
    moved = convo.out.effects
    assert moved == (MoveNudge(2, pep.due_at + (tokyo - interview), tokyo),)
    # In Honolulu the same wall-clock plan is fine too; but a 07:00 pep talk is quiet there.
    early = datetime(2026, 3, 10, 7, 30, tzinfo=PARIS)
    pep = PendingNudge(2, planner.PEP, datetime(2026, 3, 10, 7, 15, tzinfo=PARIS), early)
    state = state.evolve(interview_at=early)
    convo = Convo(ctx=make_ctx(pending=(pep,)), state=state)
    convo.cmd("timezone", "Europe/London")
    assert convo.out.effects == (CancelNudge(2),)


def test_changing_the_zone_on_the_confirm_screen_keeps_the_typed_time() -> None:
    convo = going_in_paris()
    convo.say("Tue 3pm")
    convo.press("tz", "ask")
    convo.say("I'm in Toronto")
    assert convo.templates == ["tz_set", "confirm_when"]
    assert convo.state.timezone == "America/Toronto"
    assert convo.state.proposed_at == datetime(
        2026, 3, 10, 15, 0, tzinfo=ZoneInfo("America/Toronto")
    )
    assert "15:00" in convo.messages[1].plain_text


def test_the_default_zone_is_asked_with_the_first_typed_time() -> None:
    convo = Convo(ctx=make_ctx(default_timezone="UTC"))
    convo.cmd("start")
    convo.press("sit", "prep")
    convo.say("Thursday 2pm")
    assert convo.templates == ["confirm_when"]
    assert convo.out.replies[0].context["ask_zone"] is True
    assert "type your city" in convo.text
    # A city typed right there: same 14:00, their zone, still on the confirm screen.
    convo.say("I'm in Toronto")
    assert convo.state.step == Step.CONFIRM_WHEN
    assert convo.state.proposed_at == datetime(
        2026, 3, 5, 14, 0, tzinfo=ZoneInfo("America/Toronto")
    )
    assert convo.out.replies[-1].context["ask_zone"] is False
    # Confirming a time in the default zone also confirms the zone.
    other = Convo(ctx=make_ctx(default_timezone="Europe/Paris"))
    other.cmd("interview", "Thursday 2pm")
    confirm(other)
    assert other.state.timezone == "Europe/Paris"


def test_a_correction_on_the_confirm_screen_changes_only_what_it_names() -> None:
    convo = going_in_paris()
    convo.say("Tue 2pm")
    convo.say("no wait, it's Thursday")
    assert convo.templates == ["confirm_when"] and convo.state.step == Step.CONFIRM_WHEN
    assert convo.state.proposed_at == datetime(2026, 3, 5, 14, 0, tzinfo=PARIS)
    convo.say("sorry, 3pm")
    assert convo.state.proposed_at == datetime(2026, 3, 5, 15, 0, tzinfo=PARIS)
    convo.say("oh actually it's next Monday at 10am")
    assert convo.state.proposed_at == datetime(2026, 3, 9, 10, 0, tzinfo=PARIS)
    # Not a time and not a place: understood like anywhere else.
    convo.say("no thanks, I'm not going")
    assert convo.state.decision == "pass"


@pytest.mark.parametrize(
    "step", [Step.SITUATION, Step.MENU, Step.ASK_WHEN, Step.CONFIRM_WHEN, Step.ASK_TZ]
)
@pytest.mark.parametrize(
    "text", ["x" * 100_000, "\x00\u202e<b>&amp;</b>", "\U0001f4a5" * 5000, " "]
)
def test_hostile_text_at_any_step_gets_a_normal_answer(step: Step, text: str) -> None:
    state = State(
        step=step, proposed_at=NOW + timedelta(days=1) if step == Step.CONFIRM_WHEN else None
    )
    convo = Convo(state=state)
    convo.say(text)  # check_reply renders every reply within Telegram's limits
    assert convo.out.replies
    assert "<b>&amp;</b>" not in "".join(m.text for m in convo.messages)


# --- interview time --------------------------------------------------------------------------

TUE_3PM = datetime(2026, 3, 10, 15, 0, tzinfo=PARIS)  # = 14:00 UTC


def test_interview_tue_3pm_in_paris_plans_reminders_at_the_right_utc_times() -> None:
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("interview", "Tue 3pm")
    assert convo.templates == ["confirm_when"]
    assert convo.state.step == Step.CONFIRM_WHEN
    assert convo.state.proposed_at == TUE_3PM
    assert "15:00" in convo.text and "Europe/Paris" in convo.text
    confirm(convo)
    assert convo.templates == ["plan"]
    assert convo.state.interview_at == datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    assert convo.state.decision == "go" and convo.state.step == Step.GO
    assert convo.out.effects[0] == CancelNudges(planner.KINDS)
    planned = schedules(convo.out.effects)
    assert set(planned) == {planner.PREP, planner.PEP, planner.DEBRIEF}
    assert planned["prep"].due_at == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)  # 24 h before
    assert planned["pep"].due_at == datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 2 h before
    assert planned["debrief"].due_at == datetime(2026, 3, 10, 17, 0, tzinfo=UTC)  # 3 h after
    interview = convo.state.interview_at
    # README's table: the checklist until 2 h before, the pep talk until the start, the
    # debrief for a week.
    assert planned["prep"].deadline == interview - timedelta(hours=2)
    assert planned["pep"].deadline == interview
    assert planned["debrief"].deadline == interview + timedelta(days=7)
    # The plan shows local times: 15:00 the day before, 13:00 and 18:00 on the day.
    for local in ("Monday 9 Mar at 15:00", "Tuesday 10 Mar at 13:00", "Tuesday 10 Mar at 18:00"):
        assert local in convo.text


def test_interview_within_30_hours_skips_prep_and_shows_the_checklist_now() -> None:
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("interview", "tomorrow 2pm")  # Thursday 14:00 Paris, 28 h away
    assert convo.state.proposed_at == datetime(2026, 3, 5, 14, 0, tzinfo=PARIS)
    confirm(convo)
    assert convo.templates == ["plan", "go_checklist"]
    assert kb().coaching.checklist[0].title in convo.text
    planned = schedules(convo.out.effects)
    assert planner.PREP not in planned
    assert planned["pep"].due_at == datetime(2026, 3, 5, 11, 0, tzinfo=UTC)


def test_rescheduling_cancels_and_replans() -> None:
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("interview", "Tue 3pm")
    confirm(convo)
    convo.cmd("interview", "Fri 4pm")
    confirm(convo)
    assert convo.out.effects[0] == CancelNudges(planner.KINDS)
    friday = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)
    assert convo.state.interview_at == friday
    planned = schedules(convo.out.effects)
    assert planned["prep"].due_at == friday - timedelta(hours=24)
    assert planned["pep"].due_at == friday - timedelta(hours=2)
    assert planned["debrief"].due_at == friday + timedelta(hours=3)


def test_reschedule_button_on_a_pep_nudge_leads_to_a_new_plan() -> None:
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("interview", "Tue 3pm")
    confirm(convo)
    convo.tap(B.pack("pre", 41, "resched"))
    assert convo.templates == ["ask_when"] and convo.state.step == Step.ASK_WHEN
    convo.say("Fri 4pm")
    assert convo.templates == ["confirm_when"]
    confirm(convo)
    assert convo.out.effects[0] == CancelNudges(planner.KINDS)
    assert convo.state.interview_at == datetime(2026, 3, 6, 15, 0, tzinfo=UTC)


def test_today_then_a_time() -> None:
    convo = going_in_paris()
    convo.press("when", "today")
    assert convo.templates == ["ask_time"]
    assert convo.state.proposed_at == datetime(2026, 3, 4, tzinfo=PARIS)
    convo.say("3pm")
    assert convo.templates == ["confirm_when"]
    assert convo.state.proposed_at == datetime(2026, 3, 4, 15, 0, tzinfo=PARIS)
    confirm(convo)
    # Five hours away: no prep nudge; the checklist was shown at the decision, not again.
    assert convo.templates == ["plan"]
    assert planner.PREP not in schedules(convo.out.effects)
    convo.cmd("interview", "today 5pm")
    confirm(convo)
    assert convo.templates == ["plan"]


def test_tomorrow_then_a_time() -> None:
    convo = going_in_paris()
    convo.press("when", "tomorrow")
    convo.say("9:30")
    assert convo.state.proposed_at == datetime(2026, 3, 5, 9, 30, tzinfo=PARIS)


def test_a_day_without_a_time_asks_for_the_time() -> None:
    convo = going_in_paris()
    convo.say("friday")
    assert convo.templates == ["ask_time"]
    assert convo.state.step == Step.ASK_WHEN
    assert convo.state.proposed_at == datetime(2026, 3, 6, tzinfo=PARIS)
    assert "Friday 6 Mar" in convo.text
    convo.say("11am")
    assert convo.state.proposed_at == datetime(2026, 3, 6, 11, 0, tzinfo=PARIS)
    assert convo.templates == ["confirm_when"]


def test_a_past_time_is_refused() -> None:
    convo = going_in_paris()
    convo.say("yesterday 3pm")
    assert convo.templates == ["when_past", "ask_when"]
    assert convo.state.proposed_at is None and convo.state.interview_at is None
    # A confirm button from long ago, for a time now past.
    stale = B.pack("whenok", int((NOW - timedelta(hours=1)).timestamp() // 60))
    convo.tap(stale)
    assert convo.templates == ["when_past", "ask_when"]
    assert convo.state.interview_at is None and convo.out.effects == ()


def test_unreadable_time_at_ask_when_says_so() -> None:
    convo = going_in_paris()
    convo.say("zzz qqq")
    assert convo.templates[0] == "when_unclear"
    assert convo.state.step == Step.ASK_WHEN


def test_not_scheduled_yet_cancels_interview_reminders() -> None:
    convo = going_in_paris()
    convo.press("when", "none")
    assert convo.templates == ["when_none"]
    assert convo.state.interview_pending and convo.state.interview_at is None
    assert convo.out.effects == (CancelNudges(planner.INTERVIEW_KINDS),)


def test_whenno_then_a_new_time() -> None:
    convo = going_in_paris()
    convo.say("Tue 3pm")
    convo.press("whenno")
    assert convo.templates == ["when_retype", "ask_when"] and convo.state.proposed_at is None
    convo.say("Wed 4pm")
    assert convo.state.proposed_at == datetime(2026, 3, 11, 16, 0, tzinfo=PARIS)


# --- nudge buttons ---------------------------------------------------------------------------

INTERVIEW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


def going_state(**changes: object) -> State:
    base = State(step=Step.GO, decision="go", timezone="Europe/Paris", interview_at=INTERVIEW)
    return base.evolve(**changes)


def test_pre_interview_buttons() -> None:
    convo = Convo(state=going_state())
    convo.tap(B.pack("pre", 41, "on"))
    assert convo.templates == ["pre_on"] and convo.out.notice
    assert convo.out.effects == () and convo.state == going_state()

    convo.tap(B.pack("pre", 41, "cant"))
    assert convo.templates == ["pre_cant"]
    assert convo.out.effects == (CancelNudges(planner.INTERVIEW_KINDS),)
    # A polite request for another time first; withdrawing only if they want out.
    assert kb().coaching.reschedule_note in convo.text
    assert kb().coaching.withdrawal not in convo.text
    assert convo.button("when", "change")
    convo.press("withdraw")
    assert convo.templates == ["withdraw_note"]
    assert kb().coaching.withdrawal in convo.text
    assert convo.state.decision == "pass" and convo.out.effects == (CancelNudges(),)


@pytest.mark.parametrize(("choice", "attended"), [("well", "went_well"), ("mixed", "mixed")])
def test_post_interview_went_well_or_mixed_plans_a_followup(choice: str, attended: str) -> None:
    after = INTERVIEW + timedelta(hours=3)
    convo = Convo(ctx=make_ctx(now=after), state=going_state())
    convo.tap(B.pack("post", 42, choice))
    assert convo.templates == ["reflection", "follow_up_notes"]
    assert convo.state.attended == attended and convo.state.step == Step.DEBRIEF
    assert kb().coaching.linkedin_note in convo.text
    cancel = convo.out.effects[0]
    assert isinstance(cancel, CancelNudges) and planner.FOLLOWUP in cancel.kinds
    planned = schedules(convo.out.effects)
    assert set(planned) == {planner.FOLLOWUP}
    assert planned["followup"].due_at == INTERVIEW + timedelta(days=7)  # a week after


def test_post_interview_missed() -> None:
    convo = Convo(ctx=make_ctx(now=INTERVIEW + timedelta(hours=3)), state=going_state())
    convo.tap(B.pack("post", 42, "missed"))
    assert convo.templates == ["post_missed"]
    assert not schedules(convo.out.effects)
    assert convo.button("when", "change")


def test_remind_me_later_snoozes_three_hours_outside_quiet_hours() -> None:
    tapped = PendingNudge(43, "pep", NOW, None)
    convo = Convo(ctx=make_ctx(tapped=tapped), state=going_state())
    convo.tap(B.pack("nudge", 43, "later"))
    assert convo.templates == ["snoozed"]
    assert convo.out.effects == (SnoozeNudge(43, NOW + timedelta(hours=3)),)


def test_remind_me_later_in_the_evening_waits_for_the_morning() -> None:
    evening = datetime(2026, 3, 4, 19, 30, tzinfo=PARIS)  # +3 h = 22:30, quiet
    tapped = PendingNudge(43, "checkback", evening, None)
    convo = Convo(ctx=make_ctx(now=evening.astimezone(UTC), tapped=tapped), state=going_state())
    convo.tap(B.pack("nudge", 43, "later"))
    assert convo.out.effects == (SnoozeNudge(43, datetime(2026, 3, 5, 8, 0, tzinfo=PARIS)),)


def test_stop_button_on_a_nudge_cancels_all_and_cancel_button_cancels_one() -> None:
    convo = Convo(state=going_state())
    convo.tap(B.pack("nudge", 43, "stop"))
    assert convo.templates == ["reminders_stopped"]
    assert convo.out.effects == (CancelNudges(),)
    convo.tap(B.pack("cancel", 44))
    assert convo.out.effects == (CancelNudge(44),)


def schedules_list(effects: Iterable[Effect]) -> list[ScheduleNudge]:
    return [e for e in effects if isinstance(e, ScheduleNudge)]


def pending_from(outcome: Outcome) -> tuple[PendingNudge, ...]:
    """What storage holds after an outcome: its schedules, as pending rows with ids 1, 2…"""
    planned = [e for e in outcome.effects if isinstance(e, ScheduleNudge)]
    return tuple(PendingNudge(i, e.kind, e.due_at, e.deadline) for i, e in enumerate(planned, 1))


def going_with_pep_cancelled() -> Convo:
    """Going on Tuesday 15:00 Paris, reminders planned, the pep talk cancelled in /nudges."""
    convo = going_in_paris()
    convo.say("Tue 3pm")
    confirm(convo)
    convo.ctx = dataclasses.replace(convo.ctx, pending=pending_from(convo.out))
    convo.cmd("nudges")
    pep = next(n for n in convo.ctx.pending if n.kind == planner.PEP)
    convo.press("cancel", pep.id)
    assert convo.out.effects == (CancelNudge(pep.id),)
    assert convo.state.cancelled == (planner.PEP,)
    remaining = tuple(n for n in convo.ctx.pending if n.id != pep.id)
    convo.ctx = dataclasses.replace(convo.ctx, pending=remaining)
    return convo


def test_a_reminder_cancelled_in_nudges_stays_cancelled_when_the_time_changes() -> None:
    convo = going_with_pep_cancelled()
    convo.cmd("interview", "Tue 4pm")
    confirm(convo)
    assert convo.state.interview_at == datetime(2026, 3, 10, 16, 0, tzinfo=PARIS)
    assert set(schedules(convo.out.effects)) == {planner.PREP, planner.DEBRIEF}
    assert "pep talk" not in convo.text  # the plan message lists what is planned


def test_a_reminder_cancelled_in_nudges_stays_cancelled_after_restart_and_going_again() -> None:
    convo = going_with_pep_cancelled()
    convo.cmd("restart")
    assert convo.state.cancelled == (planner.PEP,)
    convo.press("sit", "prep")  # "Going, want to prepare"
    assert set(schedules(convo.out.effects)) == {planner.PREP, planner.DEBRIEF}
    # ...and after a fraud flag that checked out.
    convo.say("they want me to pay a fee for training first")
    convo.press("scam", "legit")
    assert set(schedules(convo.out.effects)) == {planner.PREP, planner.DEBRIEF}
    convo.cmd("mydata")
    assert "cancelled for this interview (not planned again): pep talk" in convo.text


def test_a_cancelled_follow_up_is_not_planned_after_the_debrief() -> None:
    after = INTERVIEW + timedelta(hours=3)
    convo = Convo(ctx=make_ctx(now=after), state=going_state(cancelled=(planner.FOLLOWUP,)))
    convo.tap(B.pack("post", 42, "well"))
    assert convo.templates == ["reflection", "follow_up_notes"]
    assert not schedules(convo.out.effects)


def test_the_next_interview_after_one_that_happened_gets_every_reminder_again() -> None:
    after = INTERVIEW + timedelta(days=1)
    state = going_state(attended="went_well", cancelled=(planner.PEP,))
    convo = Convo(ctx=make_ctx(now=after), state=state)
    convo.cmd("interview", "Mar 20 3pm")
    confirm(convo)
    assert convo.state.cancelled == ()
    assert set(schedules(convo.out.effects)) == {planner.PREP, planner.PEP, planner.DEBRIEF}
    # A missed one moved to a new time is the same interview: what was cancelled stays so.
    missed = Convo(ctx=make_ctx(now=after), state=state.evolve(attended="no"))
    missed.cmd("interview", "Mar 20 3pm")
    confirm(missed)
    assert planner.PEP not in schedules(missed.out.effects)


def test_check_ins_kept_and_cancelled_stay_so_when_the_interview_is_set() -> None:
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.press("lean", "unsure")
    convo.tap(B.pack("dec", "unsure"))
    convo.ctx = dataclasses.replace(convo.ctx, pending=pending_from(convo.out))
    first = convo.ctx.pending[0]
    assert first.kind == planner.CHECKBACK and len(convo.ctx.pending) == 3
    convo.tap(B.pack("cancel", first.id))
    assert convo.state.cancelled == (planner.CHECKBACK,)
    convo.ctx = dataclasses.replace(convo.ctx, pending=convo.ctx.pending[1:])
    convo.cmd("interview", "Tue 3pm")
    confirm(convo)
    # The two kept check-ins are left as they are; no new ones replace the cancelled one.
    (cancel,) = [e for e in convo.out.effects if isinstance(e, CancelNudges)]
    assert planner.CHECKBACK not in cancel.kinds and cancel.kinds
    assert not schedules(convo.out.effects)
    # Deciding to wait again is a new decision: the check-ins its message promises, as if
    # none had been cancelled (two: the third would come after the interview).
    never_cancelled = Convo(state=convo.state.evolve(cancelled=()))
    never_cancelled.tap(B.pack("dec", "unsure"))
    convo.tap(B.pack("dec", "unsure"))
    assert convo.out.effects == never_cancelled.out.effects
    assert len(schedules_list(convo.out.effects)) == 2
    assert convo.state.cancelled == ()


def test_stop_all_reminders_is_not_a_cancelled_kind() -> None:
    # "Reminders stopped… /interview plans new ones": that promise stands.
    convo = Convo(state=going_state())
    convo.tap(B.pack("stopall"))
    assert convo.state.cancelled == ()


# --- state persistence -----------------------------------------------------------------------


def test_state_json_round_trip() -> None:
    full = State(
        step=Step.CONFIRM_WHEN,
        situation="invite",
        lean="unsure",
        objection="nervous",
        arg_index=2,
        decision="go",
        timezone="Asia/Kolkata",
        interview_at=datetime(2026, 3, 10, 14, 0, tzinfo=UTC),
        proposed_at=datetime(2026, 3, 11, 9, 30, tzinfo=UTC),
        interview_pending=True,
        attended="mixed",
        return_step=Step.MENU,
        cancelled=("pep", "prep"),
        given=(("nervous", 3), ("not_a_fit", 1)),
    )
    again = State.from_json(full.to_json())
    assert again == full
    assert again.interview_at is not None and again.interview_at.utcoffset() == timedelta(0)
    assert State.from_json(State().to_json()) == State()


@pytest.mark.parametrize(
    "raw", [None, "", "not json", "[]", "42", "null", '"text"', "{", '{"step": }']
)
def test_state_from_garbage_is_the_default(raw: str | None) -> None:
    assert State.from_json(raw) == State()


def test_state_from_json_drops_unknown_and_bad_fields_keeps_the_rest() -> None:
    raw = (
        '{"step": "menu", "future_field": [1, 2], "timezone": "Europe/Paris",'
        ' "return_step": "no_such_step", "interview_at": "next tuesday",'
        ' "proposed_at": "2026-03-10T15:00:00+01:00"}'
    )
    state = State.from_json(raw)
    assert state.step == Step.MENU
    assert state.timezone == "Europe/Paris"
    assert state.return_step is None
    assert state.interview_at is None
    assert state.proposed_at == datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    # An older version's row with only a step, and one whose step no longer exists.
    assert State.from_json('{"step": "lean"}') == State(step=Step.LEAN)
    assert State.from_json('{"step": "onboarding", "lean": "yes"}') == State(lean="yes")


@pytest.mark.parametrize(
    "raw",
    [
        '{"step": "answer", "objection": "nervous", "arg_index": "1"}',
        '{"step": "answer", "objection": ["nervous"]}',
        '{"step": "answer", "cancelled": "pep"}',
        '{"step": "answer", "given": [["nervous", -1]]}',
        '{"step": "answer", "given": [["nervous", true]]}',
        '{"step": "answer", "given": {"nervous": 2}}',
        '{"step": "answer", "cancelled": [1, "pep"]}',
        '{"step": "menu", "timezone": "Mars/Olympus_Mons", "interview_pending": "yes"}',
    ],
)
def test_state_with_wrongly_typed_fields_does_not_block_the_user(raw: str) -> None:
    convo = Convo(state=State.from_json(raw))
    convo.cmd("help")
    assert convo.templates[0] == "help"


def test_reasons_given_and_reminders_cancelled_fall_back_when_malformed() -> None:
    for bad in ('"pep"', "[1]", '{"pep": 1}'):
        assert State.from_json(f'{{"step": "menu", "cancelled": {bad}}}') == State(step=Step.MENU)
    for bad in ('[["nervous", -1]]', '[["nervous", true]]', '[["nervous"]]', '{"nervous": 2}'):
        assert State.from_json(f'{{"step": "menu", "given": {bad}}}') == State(step=Step.MENU)
    good = State.from_json('{"given": [["nervous", 2]], "cancelled": ["pep"]}')
    assert good == State(given=(("nervous", 2),), cancelled=("pep",))


# --- templates and labels --------------------------------------------------------------------


def source_of(module: str) -> str:
    return (ROOT / "bot" / "engine" / f"{module}.py").read_text(encoding="utf-8")


def test_every_template_named_in_the_engine_exists() -> None:
    names: set[str] = set()
    for module in ("flow", "nudging"):
        names |= set(re.findall(r'(?:Reply|in_parts)\(\s*"(\w+)"', source_of(module)))
    names |= {"welcome", "restart"}  # chosen by a conditional in on_command
    names |= {f"nudge_{kind}" for kind in planner.KINDS}
    assert len(names) > 30, "the pattern no longer finds the templates"
    existing = set(RENDERER.template_names())
    assert names - existing == set()


def test_every_button_label_named_in_the_engine_exists() -> None:
    keys: set[str] = set()
    for module in ("flow", "nudging"):
        keys |= set(re.findall(r'btn\(\s*"(\w+)"', source_of(module)))
    keys |= {f"sit_{s}" for s in flow.SITUATIONS}
    keys |= {f"lean_{v}" for v in flow.LEANS}
    keys |= {f"dec_{d}" for d in flow.DECISIONS}
    keys |= {f"when_{w}" for w in ("today", "tomorrow", "week", "nextweek", "none")}
    assert len(keys) > 30
    assert keys - set(RENDERER.labels) == set()


def test_every_template_renders_with_the_contexts_the_engine_produces() -> None:
    """A tour that reaches every message template through the engine itself."""
    seen: set[str] = set()

    def tour(convo: Convo) -> Convo:
        seen.update(convo.templates_seen)
        return convo

    c = Convo(state=State(timezone="Europe/Paris"))
    c.cmd("start")
    c.cmd("restart")
    c.press("sit", "explore")
    c.press("lean", "unsure")
    c.press("nav", "menu_more")
    c.press("obj", "scam_suspected")
    c.say("ok I'll go")  # scam_check
    c.press("scam", "steer")  # steer_clear
    c.cmd("restart")  # a new conversation: the fraud flag belonged to the old one
    paused = Convo(ctx=make_ctx(pending=(PendingNudge(3, planner.PEP, NOW + timedelta(days=1)),)))
    paused.tap(B.pack("obj", "scam_suspected"))  # scam, scam_paused
    tour(paused)
    c.press("sit", "explore")
    c.press("lean", "unsure")
    c.tap(B.pack("obj", "not_looking"))  # exception
    c.tap(B.pack("obj", "other_offer"))  # question
    c.press("q", "offer", "counter")  # counter_offer
    c.press("doubt", "other_offer")  # doubt
    c.say("part of me wants it, part of me doesn't")  # mixed
    c.say("they want a take-home assignment that takes a whole weekend, unpaid")  # unpaid_task
    c.press("nav", "menu")
    c.tap(B.pack("type"))
    c.say("qzx vbnm plk")
    c.say("hello")
    c.send(Event(1, "other", "photo"))
    c.tap("v0:forged")
    c.cmd("nope")
    c.press("obj", "nervous")
    c.press("ok", "nervous")
    c.press("dec", "unsure")
    c.press("when", "week")
    c.say("qqq zzz")
    c.say("yesterday 3pm")
    c.press("when", "today")
    c.say("Tue 3pm")
    c.press("whenno")
    c.say("Tue 3pm")
    c.press("tz", "ask")
    c.say("no")  # tz_which
    c.say("not a zone")
    c.say("Paris")
    c.say("Tue 3pm")
    confirm(c)
    c.tap(B.pack("dec", "go"))  # the "I'll go" from the unsure message above
    c.cmd("help")  # next_steps at GO
    c.cmd("timezone", "Berlin")  # tz_set, the interview kept at 15:00 Berlin time
    c.press("when", "change")
    c.press("when", "none")
    c.tap(B.pack("dec", "pass"))  # pass
    c.cmd("about")
    c.cmd("mydata")
    c.press("del", "ask")
    c.press("del", "no")
    c.cmd("delete")
    c.press("del", "yes")
    c.cmd("stop")
    tour(c)

    pending = (PendingNudge(5, planner.PEP, NOW + timedelta(hours=5)),)
    n = Convo(ctx=make_ctx(pending=pending, tapped=pending[0]), state=going_state())
    n.cmd("nudges")
    n.press("stopall")
    for data in (
        B.pack("pre", 5, "on"),
        B.pack("pre", 5, "cant"),
        B.pack("post", 5, "well"),
        B.pack("post", 5, "missed"),
        B.pack("nudge", 5, "later"),
    ):
        n.tap(data)
    tour(n)
    ambiguous = Classification("nervous", 0.40, (Alternative("wont_get_offer", 0.35),))
    d = Convo(ctx=stub_ctx(ambiguous))
    d.say("eh")
    tour(d)

    # With a recruiter's link: the invitation, consent, privacy and a relayed question.
    r = Convo(ctx=make_ctx(invitation=INVITED))
    r.cmd("start")
    r.press("sit", "invite")
    r.press("lean", "yes")
    r.press("dec", "go")  # consent
    r.press("consent", "no")
    r.cmd("privacy")
    r.press("consent", "yes")
    r.cmd("ask")  # ask_prompt
    r.press("askno")  # ask_cancelled
    r.cmd("ask")
    r.say("Is the interview in English?")  # ask_sent
    tour(r)
    w = Convo(ctx=make_ctx(invitation=dataclasses.replace(INVITED, can_ask=False)))
    w.cmd("ask")  # ask_wait
    w.ctx = make_ctx()
    w.cmd("ask")  # ask_no_link
    tour(w)

    for kind in planner.KINDS:
        row = PendingNudge(9, kind, NOW, None)
        state = going_state(attended="went_well")
        check_reply(nudge_reply(row, state, kb(), "Europe/Paris"))
        seen.add(f"nudge_{kind}")

    # Not produced by the engine: "error" is the adapter's.
    late = Convo(ctx=make_ctx(tapped=PendingNudge(7, "pep", NOW, NOW + timedelta(minutes=30))))
    late.tap(B.pack("nudge", 7, "later"))
    assert late.templates == ["snooze_too_late"]
    tour(late)
    # Through the engine's outcome, by the service: a returning user's first word.
    back, hi = make_ctx(returning=True), Event(1, "text", "hi", "", "Ada")
    for reply in welcome_back(hi, flow.handle(hi, going_state(), back), back).replies:
        check_reply(reply)
        seen.add(reply.template)
    for name in ("error",):
        check_reply(Reply(name))
        seen.add(name)
    assert set(RENDERER.template_names()) - seen == set()


def test_no_bullet_is_glued_to_the_text_before_it() -> None:
    """Every list template, rendered with the real content, keeps each item on its own line
    (Jinja's trim_blocks eats the newline after a block tag at the end of a line)."""
    coaching = kb().coaching
    pending = [
        PendingNudge(i, kind, NOW + timedelta(days=i)) for i, kind in enumerate(planner.KINDS)
    ]
    plan = [ScheduleNudge(kind, NOW + timedelta(days=1), None) for kind in planner.KINDS]
    state = going_state()
    contexts = {
        "about": {"sources": list(kb().sources.values())},
        "go_checklist": {"items": coaching.checklist, "soon": False},
        "unsure": {"items": coaching.gains},
        "reflection": {"items": coaching.reflection, "how": "well"},
        "scam": {"coaching": coaching},
        "steer_clear": {"coaching": coaching},
        "nudges": {"pending": pending, "zone": "Europe/Paris", "cancelled": 3},
        "plan": {"state": state, "zone": "Europe/Paris", "nudges": plan},
        "mydata": {
            "state": state,
            "worry": "I'm nervous",
            "zone": "UTC",
            "pending": pending,
            "invitation": INVITED,
        },
        "nudge_prep": {"interview_at": INTERVIEW, "zone": "UTC", "coaching": coaching},
    }
    for template, context in contexts.items():
        text = RENDERER.render(Reply(template, context)).plain_text
        assert text.count("•") >= 3, template
        assert not GLUED_BULLET.search(text), f"{template}:\n{text}"


# --- respecting a decision ------------------------------------------------------------------


NO = "no thanks, I'm not going"


@pytest.mark.parametrize(
    "step",
    [
        Step.SITUATION,
        Step.LEAN,
        Step.MENU,
        Step.ANSWER,
        Step.QUESTION,
        Step.EXCEPTION,
        Step.DOUBT,
        Step.DECISION,
        Step.ASK_WHEN,
        Step.CONFIRM_WHEN,
        Step.ASK_TZ,
        Step.GO,
    ],
)
def test_a_typed_no_is_understood_at_every_step(step: Step) -> None:
    state = State(
        step=step,
        objection="nervous",
        in_row=1,
        exception="content",
        proposed_at=NOW + timedelta(days=1),
        timezone="Europe/Paris",
    )
    convo = Convo(state=state)
    convo.say(NO)
    assert convo.state.decision == "pass" and convo.state.step == Step.PASS
    assert "argument" not in convo.templates
    assert CancelNudges() in convo.out.effects


PLAIN_REFUSALS = ("i'm out", "count me out", "forget it")
# The screens where the coach answers a worry or asks for the decision, as a user reaches them.
WORRY_SCREENS = {
    "the menu after leaning no": ("lean", "no"),
    "an argument": ("obj", "nervous"),
    "the offer question": ("obj", "other_offer"),
    "the exception": ("obj", "not_looking"),
    "doubt": ("doubt", "nervous"),
}


def at_worry_screen(where: str) -> Convo:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.press("lean", "no")
    if where != "the menu after leaning no":
        convo.tap(B.pack(*WORRY_SCREENS[where]))
    return convo


@pytest.mark.parametrize("where", list(WORRY_SCREENS))
@pytest.mark.parametrize("text", [*PLAIN_REFUSALS, "no thanks", "No thank you!", "nope, thanks"])
def test_a_plain_refusal_on_a_worry_screen_is_a_decision_not_to_go(where: str, text: str) -> None:
    convo = at_worry_screen(where)
    convo.say(text)
    assert convo.state.decision == "pass" and convo.state.step == Step.PASS
    assert "argument" not in convo.templates and "smalltalk" not in convo.templates


# (On the offer question a bare no answers "Have you already accepted it?": below.)
@pytest.mark.parametrize("where", [w for w in WORRY_SCREENS if w != "the offer question"])
@pytest.mark.parametrize("text", ["no", "Nope.", "no way"])
def test_a_bare_no_on_a_worry_screen_asks_whether_it_is_a_decision(where: str, text: str) -> None:
    convo = at_worry_screen(where)
    before = convo.state
    convo.say(text)
    assert convo.templates == ["did_you_mean"] and convo.state == before
    assert "decided not to go" in convo.text and "still not sure" in convo.text
    assert convo.button("dec", "pass") and convo.button("dec", "unsure")
    assert convo.button("nav", "menu")


def test_a_no_on_the_decision_screen_or_the_fraud_warning_is_the_decision() -> None:
    convo = Convo()
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.press("lean", "yes")
    assert convo.state.step == Step.DECISION
    convo.say("no")
    assert convo.state.decision == "pass"
    convo = flagged()
    convo.say("nope")
    assert convo.templates == ["steer_clear"]


def test_a_yes_or_no_to_have_you_accepted_it_answers_it() -> None:
    for text in ("yes", "Yep."):
        convo = at_worry_screen("the offer question")
        convo.say(text)
        assert convo.templates == ["exception"] and convo.state.exception == "signed"
    convo = at_worry_screen("the offer question")
    convo.say("no")  # not signed: the reasons, as "Not yet" gives them
    assert convo.templates == ["argument"] and convo.state.objection == "other_offer"
    assert convo.state.decision is None


@pytest.mark.parametrize("text", ["no", "no thanks", "yes"])
def test_a_bare_yes_or_no_elsewhere_is_not_taken_for_a_decision(text: str) -> None:
    convo = Convo()
    convo.cmd("start")  # "What brings you here?": a no answers nothing there
    convo.say(text)
    assert convo.state.decision is None and convo.templates[0] == "smalltalk"


@pytest.mark.parametrize(
    "setup",
    [
        ["/menu"],
        ["/menu", "#nervous"],
        ["/when"],
        ["/when", "Tue 3pm"],
        ["/when", "Tue 3pm", "#tz"],
    ],
)
def test_im_out_is_a_decision_on_the_time_and_zone_screens_too(setup: list[str]) -> None:
    convo = at_menu() if setup[0] == "/menu" else going_in_paris()
    for step in setup[1:]:
        if step == "#nervous":
            convo.press("obj", "nervous")
        elif step == "#tz":
            convo.press("tz", "ask")
        else:
            convo.say(step)
    convo.say("i'm out")
    assert convo.state.decision == "pass" and "argument" not in convo.templates


def proposing(text: str = "Tue 3pm", zone: str | None = "Europe/Paris") -> Convo:
    """Going, a time typed, and "Tuesday 10 Mar at 15:00: right?" on the screen."""
    convo = Convo(state=State(timezone=zone))
    convo.cmd("start")
    convo.press("sit", "prep")
    convo.say(text)
    assert convo.templates == ["confirm_when"]
    return convo


@pytest.mark.parametrize("text", ["yes", "Yep!", "correct", "that's right", "yes, correct"])
def test_a_typed_yes_on_the_confirmation_screen_saves_the_time(text: str) -> None:
    convo = proposing()
    convo.say(text)
    assert convo.templates[0] == "plan"
    assert convo.state.interview_at == datetime(2026, 3, 10, 15, 0, tzinfo=PARIS)
    assert InterviewSet(convo.state.interview_at, None) in convo.out.milestones
    assert set(schedules(convo.out.effects)) == {planner.PREP, planner.PEP, planner.DEBRIEF}


@pytest.mark.parametrize("text", ["no", "nope", "no that's wrong", "not right"])
def test_a_typed_no_on_the_confirmation_screen_asks_again(text: str) -> None:
    convo = proposing()
    convo.say(text)
    assert convo.templates == ["when_retype", "ask_when"]
    assert convo.state.step == Step.ASK_WHEN and convo.state.proposed_at is None
    assert convo.state.interview_at is None and convo.state.decision == "go"


def test_a_typed_yes_after_deciding_not_to_go_saves_nothing() -> None:
    convo = proposing()
    convo.tap(B.pack("dec", "pass"))
    convo.state = convo.state.evolve(step=Step.CONFIRM_WHEN)  # the old question, answered late
    convo.say("yes")
    assert convo.state.interview_at is None and not schedules(convo.out.effects)


@pytest.mark.parametrize("first", [None, "tz"])
def test_central_time_is_a_zone_on_the_confirmation_and_zone_screens(first: str | None) -> None:
    convo = proposing(zone=None)  # the default zone (UTC): asked with the time
    if first:
        convo.press("tz", "ask")
    convo.say("central time")
    assert "argument" not in convo.templates
    assert convo.state.timezone == "America/Chicago"
    assert convo.templates == ["tz_set", "confirm_when"]
    chicago = ZoneInfo("America/Chicago")
    assert convo.state.proposed_at == datetime(2026, 3, 10, 15, 0, tzinfo=chicago)  # kept 15:00


def test_a_yes_or_no_on_the_zone_screen() -> None:
    convo = proposing(zone=None)
    convo.press("tz", "ask")
    convo.say("no")
    assert convo.templates == ["tz_which"] and convo.state.step == Step.ASK_TZ
    assert convo.button("tz", "keep")
    convo.say("yes")  # the zone shown is theirs after all
    assert convo.templates == ["confirm_when"] and convo.state.step == Step.CONFIRM_WHEN


def test_a_decision_the_coach_is_unsure_of_is_asked_about_on_the_confirmation_screen() -> None:
    convo = going_in_paris()
    convo.say("Tue 3pm")
    proposed = convo.state
    convo.say("nah i'm good")  # not a time, not a zone: "not going", or content where they are
    assert convo.templates == ["did_you_mean"] and "decided not to go" in convo.text
    assert convo.state == proposed
    convo.press("dec", "pass")
    assert convo.state.decision == "pass"


@pytest.mark.parametrize(
    ("text", "decision"),
    [("ok fine ill go i guess", "go"), ("still not sure", "unsure"), ("I'll pass", "pass")],
)
def test_typed_decisions_are_acted_on(text: str, decision: str) -> None:
    convo = at_menu()
    convo.press("obj", "nervous")
    convo.say(text)
    assert convo.state.decision == decision


@pytest.mark.parametrize("objection", [o for o, v in kb().objections.items() if v.arguments])
def test_every_argument_as_the_engine_shows_it_fits_a_phone(objection: str) -> None:
    # Each reply is checked by Convo (at most 600 characters), at the start of a row (with the
    # line that hears the feeling) and at its end (with "Your call now").
    total = len(kb().objections[objection].arguments)
    for index in range(total):
        for in_row in (0, MAX_IN_ROW - 1):
            state = State(step=Step.ANSWER, objection=objection, arg_index=index, in_row=in_row)
            convo = Convo(state=state)
            convo.tap(B.pack("arg", objection, index))
            assert convo.templates == ["argument"]


def test_a_worry_reached_again_and_again_never_repeats_a_reason() -> None:
    """Each visit (three in a row, then the decision) goes on with the reasons not yet given,
    another worry in between or not; when none is left, the coach says so kindly and offers
    another worry, their own words or the decision: no lap round the same reasons."""
    arguments = kb().objections["not_a_fit"].arguments
    assert len(arguments) == 7
    convo = at_menu()
    shown: list[object] = []
    for visit in range(4):
        convo.tap(B.pack("obj", "not_a_fit"))
        while convo.templates == ["argument"]:
            shown.append(convo.out.replies[0].context["argument"])
            nexts = [a for _, a in convo.actions() if a.name == "arg"]
            if not nexts:
                break
            convo.tap(B.pack(*("arg", *nexts[0].args)))
        convo.press("nav", "menu")
        if visit == 1:
            convo.tap(B.pack("obj", "nervous"))  # another worry in between
            convo.press("nav", "menu")
    assert shown == list(arguments)  # each once, in order
    assert convo.templates == ["menu"]
    convo.tap(B.pack("obj", "not_a_fit"))
    assert convo.templates == ["doubt"] and convo.state.step == Step.DOUBT
    assert "all the reasons I have" in convo.text
    assert convo.button("dec", "pass") and convo.button("nav", "menu") and convo.button("type")
    # The nervous worry, met once in between, goes on from its second reason.
    convo.tap(B.pack("obj", "nervous"))
    assert convo.out.replies[0].context["argument"] == kb().objections["nervous"].arguments[1]


def test_happy_where_they_are_gets_the_exception_first() -> None:
    convo = at_menu()
    convo.tap(B.pack("obj", "not_looking"))
    assert convo.templates == ["exception"] and convo.state.step == Step.EXCEPTION
    assert "already employed" in convo.text
    assert convo.text.count("Worth knowing") == 1  # at most one gentle line
    assert convo.button("dec", "pass") and convo.button("dec", "go")
    convo.press("arg", "not_looking", 0)  # "Tell me more reasons"
    assert convo.state.in_row == 1
    assert convo.out.replies[0].context["argument"] == kb().objections["not_looking"].arguments[0]
    convo.tap(B.pack("obj", "not_looking"))
    convo.press("dec", "pass")
    # Respected already: one short note, not the exceptions again.
    assert convo.templates == ["withdraw_note"] and "Fair enough" in convo.text


def test_a_signed_offer_is_respected_not_argued_with() -> None:
    convo = at_menu()
    convo.say("I signed elsewhere")
    assert convo.templates == ["exception"]
    assert convo.state.exception == "signed" and convo.state.objection == "other_offer"
    assert "Congratulations" in convo.text
    assert not [a for _, a in convo.actions() if a.name == "arg"]
    convo.tap(B.pack("obj", "other_offer"))
    assert convo.templates == ["question"]
    convo.press("q", "offer", "signed")
    assert convo.templates == ["exception"]
    convo.press("dec", "pass")
    assert convo.templates == ["withdraw_note"] and convo.state.decision == "pass"


def test_another_offer_not_yet_signed_or_a_counter_offer_gets_the_arguments() -> None:
    convo = at_menu()
    convo.tap(B.pack("obj", "other_offer"))
    convo.press("q", "offer", "open")
    assert convo.templates == ["argument"] and convo.state.in_row == 1
    assert "counter" not in convo.text.lower()
    convo.press("nav", "menu")
    convo.tap(B.pack("obj", "other_offer"))
    convo.press("q", "offer", "counter")
    assert convo.templates == ["counter_offer", "argument"]
    assert kb().coaching.counter_offer in convo.text and "Our own advice" in convo.text
    # Typed, a counter-offer skips the question.
    offer = Classification("other_offer", 0.9, (Alternative("not_looking", 0.05),))
    typed = Convo(ctx=stub_ctx(offer))
    typed.say("my boss made me a counter-offer")
    assert typed.templates == ["counter_offer", "argument"]
    typed.say("I got an offer from another company")
    assert typed.templates == ["question"]


def test_a_real_red_flag_is_a_fair_reason_and_a_vague_doubt_gets_arguments() -> None:
    convo = at_menu()
    convo.tap(B.pack("obj", "bad_company"))
    assert convo.templates == ["question"]
    convo.press("q", "flag", "real")
    assert convo.templates == ["exception"] and convo.state.exception == "red_flag"
    assert "red flag" in convo.text
    convo.tap(B.pack("q", "flag", "vague"))
    assert convo.templates == ["argument"]
    assert convo.out.replies[0].context["argument"] == kb().objections["bad_company"].arguments[0]


def test_mixed_feelings_are_acknowledged_as_mixed() -> None:
    convo = at_menu()
    convo.say("part of me wants it, part of me doesn't")
    assert convo.templates == ["mixed"] and convo.state.step == Step.MIXED
    assert "Part of you" in convo.text
    assert convo.state.objection is None  # not forced into one worry
    assert {a.args[0] for _, a in convo.actions() if a.name == "dec"} == {"go", "unsure", "pass"}


# --- the fraud path --------------------------------------------------------------------------


def flagged() -> Convo:
    convo = at_menu()
    convo.say("they want me to pay a fee for training and send my bank details")
    assert convo.templates == ["scam"] and convo.state.scam
    return convo


def test_the_fraud_warning_offers_a_way_out_and_a_way_back() -> None:
    convo = flagged()
    assert "A legitimate recruiter will never ask you to" in convo.text
    assert "Tandym" in convo.text and "Our advice" in convo.text
    assert "until you have checked" not in convo.text  # paying is never fine after a check
    convo.press("scam", "steer")
    assert convo.templates == ["steer_clear"]
    assert "sensible" in convo.text and "official website" in convo.text
    assert convo.state.decision == "pass" and convo.out.effects == (CancelNudges(),)
    assert kb().coaching.withdrawal not in convo.text  # no letter to a likely scammer


def test_after_a_fraud_warning_no_is_the_sensible_call_never_an_argument() -> None:
    convo = flagged()
    convo.say("I won't go then")
    assert convo.templates == ["steer_clear"]
    convo = flagged()
    convo.tap(B.pack("dec", "pass"))
    assert convo.templates == ["steer_clear"]
    assert "practice" not in convo.text.lower()


def test_nothing_is_planned_for_a_likely_scam_unless_it_checked_out() -> None:
    convo = flagged()
    convo.say("ok fine I'll go")
    assert convo.templates == ["scam_check"] and convo.state.decision is None
    assert not schedules(convo.out.effects)
    convo.cmd("interview", "Tue 3pm")
    confirm(convo)
    assert convo.state.interview_at is not None
    assert not schedules(convo.out.effects)
    assert "fraud" in convo.text
    # /start keeps the interview, and with it the flag.
    convo.cmd("start")
    assert convo.state.scam
    convo.press("sit", "prep")
    assert convo.templates == ["scam_check"]
    convo.press("scamok", "go")
    assert not convo.state.scam and convo.state.decision == "go"
    assert set(schedules(convo.out.effects)) == {planner.PREP, planner.PEP, planner.DEBRIEF}


def planned_then_flagged() -> Convo:
    """Going, the interview saved and its reminders planned (and pending in storage), then a
    message that looks like fraud."""
    convo = going_in_paris()
    convo.say("Tue 3pm")
    confirm(convo)
    planned = schedules(convo.out.effects)
    assert set(planned) == {planner.PREP, planner.PEP, planner.DEBRIEF}
    pending = tuple(
        PendingNudge(n, s.kind, s.due_at, s.deadline) for n, s in enumerate(planned.values(), 1)
    )
    convo.ctx = dataclasses.replace(convo.ctx, pending=pending)
    convo.say("they asked me to pay a registration fee before the interview")
    return convo


def test_flagging_fraud_after_planning_cancels_the_interviews_reminders() -> None:
    convo = planned_then_flagged()
    assert convo.templates == ["scam", "scam_paused"] and convo.state.scam
    assert convo.out.effects == (CancelNudges(),)  # every kind: no pep talk, no check-in
    assert "cancelled your reminders" in convo.text
    # The choice is on the last message, where the thumb is.
    assert convo.out.replies[0].keyboard == ()
    assert convo.button("scam", "steer") and convo.button("scam", "legit")
    # /mydata no longer says both "no reminders" and "Reminders planned: 3".
    convo.ctx = dataclasses.replace(convo.ctx, pending=())
    convo.cmd("mydata")
    assert "possible fraud: yes" in convo.text and "Reminders planned: 0" in convo.text


def test_a_flag_without_reminders_says_nothing_of_them() -> None:
    convo = flagged()
    assert convo.templates == ["scam"] and "reminders" not in convo.text
    assert convo.out.effects == (CancelNudges(),)


def test_it_checked_out_plans_the_cancelled_reminders_again() -> None:
    convo = planned_then_flagged()
    convo.press("scam", "legit")
    assert convo.templates == ["menu"] and not convo.state.scam
    assert convo.out.effects[0] == CancelNudges(planner.KINDS)  # never doubled
    planned = schedules(convo.out.effects)
    assert set(planned) == {planner.PREP, planner.PEP, planner.DEBRIEF}
    assert planned[planner.PEP].due_at == datetime(2026, 3, 10, 13, 0, tzinfo=PARIS)


def test_a_pep_talk_from_before_the_flag_offers_no_note_to_the_likely_scammer() -> None:
    convo = planned_then_flagged()
    state = convo.state
    convo.tap(B.pack("pre", 2, "cant"))  # "Can't make it" on a pep talk sent before the flag
    assert convo.templates == ["steer_clear"]
    assert kb().coaching.reschedule_note not in convo.text
    assert kb().coaching.withdrawal not in convo.text
    assert convo.state.decision == "pass" and Decided("pass", "go") in convo.out.milestones
    assert not any(isinstance(m, CantMakeIt) for m in convo.out.milestones)
    # "I'd rather withdraw" from an older "Can't make it" message: no letter either.
    convo = Convo(state=state)
    convo.tap(B.pack("withdraw"))
    assert convo.templates == ["steer_clear"] and kb().coaching.withdrawal not in convo.text
    # "Still on" and "Need to reschedule": did it check out first? Nothing planned meanwhile.
    for choice in ("on", "resched"):
        convo = Convo(state=state)
        convo.tap(B.pack("pre", 2, choice))
        assert convo.templates == ["scam_check"] and convo.out.effects == ()
        assert convo.button("scamok", "go")


def started_over_after_a_fraud_warning() -> Convo:
    convo = flagged()
    convo.press("nav", "situation")  # "Start over" on the warning
    convo.press("sit", "invite")
    convo.press("lean", "no")
    assert convo.templates == ["menu"] and convo.state.scam  # the flag stands
    return convo


@pytest.mark.parametrize(
    "worry",
    [
        B.pack("obj", "nervous"),
        B.pack("arg", "not_a_fit", 1),  # "Another reason" from an older message
        B.pack("q", "offer", "open"),  # "Another offer? Not yet signed"
        B.pack("q", "flag", "vague"),
        "I'm scared I'll freeze",
    ],
)
def test_after_a_fraud_warning_a_worry_gets_the_flag_not_an_argument(worry: str) -> None:
    convo = started_over_after_a_fraud_warning()
    if worry.startswith("v1:"):
        convo.tap(worry)
    else:
        convo.say(worry)
    assert convo.templates == ["scam_check"] and "argument" not in convo.templates_seen
    assert "won't argue for going" in convo.text
    assert convo.state.scam and convo.state.step == Step.SCAM
    assert {a for _, a in convo.actions()} == {
        B.Action("scam", ("legit",)),
        B.Action("scam", ("steer",)),
    }


def test_after_a_fraud_warning_the_two_ways_on() -> None:
    convo = started_over_after_a_fraud_warning()
    convo.press("obj", "nervous")
    convo.press("scam", "steer")
    assert convo.templates == ["steer_clear"] and convo.state.decision == "pass"
    convo = started_over_after_a_fraud_warning()
    convo.press("obj", "nervous")
    convo.press("scam", "legit")  # it checked out: the worries are answered again
    assert convo.templates == ["menu"] and not convo.state.scam
    convo.press("obj", "nervous")
    assert convo.templates == ["argument"]


def test_it_is_legitimate_goes_back_to_the_worries() -> None:
    convo = flagged()
    convo.press("scam", "legit")
    assert convo.templates == ["menu"] and not convo.state.scam


def test_an_unpaid_take_home_task_is_a_question_not_fraud() -> None:
    convo = at_menu()
    convo.say("they want me to do an unpaid take-home assignment that takes 8 hours")
    assert convo.templates == ["unpaid_task"] and not convo.state.scam
    assert "isn't fraud" in convo.text and "Our own advice" in convo.text
    assert convo.button("dec", "pass")


# --- reads well ------------------------------------------------------------------------------


def test_the_checklist_is_shown_once_per_decision() -> None:
    convo = going_in_paris()
    assert convo.templates[0] == "go_checklist"
    convo.tap(B.pack("dec", "go"))
    assert "go_checklist" not in convo.templates
    convo.tap(B.pack("dec", "pass"))
    convo.tap(B.pack("dec", "go"))
    assert convo.templates[0] == "go_checklist"  # a new decision to go


def test_mydata_speaks_words_not_ids() -> None:
    state = State(
        step=Step.ANSWER, situation="invite", lean="no", objection="not_a_fit", decision="go"
    )
    convo = Convo(state=state)
    convo.cmd("mydata")
    assert "talking through a worry" in convo.text
    assert "Not the right job" in convo.text and "going" in convo.text
    for raw in ("not_a_fit", "answer", "invite"):
        assert raw not in convo.text
    assert "fraud" not in convo.text
    convo = Convo(state=state.evolve(scam=True))
    convo.cmd("mydata")
    assert "possible fraud: yes" in convo.text


def test_reminders_read_naturally() -> None:
    state = going_state(attended="went_well")
    pep = RENDERER.render(nudge_reply(PendingNudge(9, planner.PEP, NOW, None), state, kb(), "UTC"))
    assert "Your interview is on Tuesday 10 Mar at 14:00" in pep.plain_text
    week = RENDERER.render(
        nudge_reply(PendingNudge(9, planner.FOLLOWUP, NOW, None), state, kb(), "UTC")
    )
    assert kb().coaching.followup_note in week.plain_text
    assert "today" not in week.plain_text


# --- a recruiter's invitation ---------------------------------------------------------------

INVITED = Invitation(
    role="Backend <Engineer>",
    company="Acme & Co",
    format="45 minutes, video",
    note="Bring a laptop",
)


def invited(**changes: Any) -> Convo:
    return Convo(ctx=make_ctx(invitation=dataclasses.replace(INVITED, **changes)))


def test_the_welcome_names_the_role_the_company_and_the_note() -> None:
    convo = invited()
    convo.cmd("start")
    welcome = convo.messages[0]
    assert "invited to interview for Backend <Engineer> at Acme & Co" in welcome.plain_text
    assert "45 minutes, video" in welcome.plain_text and "Bring a laptop" in welcome.plain_text
    assert "&lt;Engineer&gt;" in welcome.text and "Acme &amp; Co" in welcome.text
    plain = Convo()
    plain.cmd("start")
    assert "invited" not in plain.text


def test_at_the_decision_an_invited_candidate_is_asked_for_consent_default_no() -> None:
    convo = invited()
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.press("lean", "yes")
    convo.press("dec", "go")
    assert convo.templates == ["go_checklist", "consent"]
    assert convo.state.step == Step.CONSENT and convo.state.decision == "go"
    assert Decided("go", None) in convo.out.milestones
    assert not [m for m in convo.out.milestones if isinstance(m, ConsentGiven)]
    assert "only ever see counts" in convo.text
    convo.press("consent", "yes")
    # What the question held back follows: when is the interview?
    assert convo.templates == ["ask_when"] and convo.state.step == Step.ASK_WHEN
    assert convo.out.milestones == (ConsentGiven(True),)
    # Asked once: deciding again does not ask again (the service loads the answer).
    again = invited(consent=True)
    again.state = convo.state
    again.tap(B.pack("dec", "unsure"))
    assert "consent" not in again.templates


def test_passing_keeps_the_note_for_after_the_consent_answer() -> None:
    convo = invited()
    convo.cmd("start")
    convo.tap(B.pack("dec", "pass"))
    assert convo.templates == ["pass", "consent"]
    convo.press("consent", "no")
    assert convo.templates == ["withdraw_note"]
    assert convo.out.milestones == (ConsentGiven(False),)
    assert convo.state.step == Step.PASS


def test_no_consent_question_without_a_link_or_for_a_likely_scam() -> None:
    convo = Convo()
    convo.tap(B.pack("dec", "go"))
    assert "consent" not in convo.templates
    scam = invited()
    scam.say("they want me to pay a fee and send my bank details")
    scam.press("scam", "steer")
    assert scam.templates == ["steer_clear"]
    assert Decided("pass", None) in scam.out.milestones


def test_privacy_shows_and_withdraws_consent_everywhere() -> None:
    convo = invited(consent=True)
    convo.cmd("privacy")
    assert "You agreed" in convo.text
    convo.press("consent", "none")
    assert convo.out.milestones == (ConsentGiven(False, everywhere=True),)
    assert "only counts" in convo.text
    assert convo.button("consent", "yes")
    nobody = Convo()
    nobody.cmd("privacy")
    assert "No recruiter sees anything" in nobody.text and not nobody.actions()


def test_a_question_goes_to_the_recruiter_one_at_a_time() -> None:
    convo = invited()
    convo.cmd("start")
    convo.press("sit", "invite")
    convo.cmd("ask")
    assert convo.templates == ["ask_prompt"] and convo.state.step == Step.ASK_RECRUITER
    assert "first name" in convo.text  # consent for this one message, said so
    convo.say("  Is the\n interview   in English?  ")
    assert convo.out.milestones == (QuestionAsked("Is the interview in English?"),)
    assert convo.templates == ["ask_sent", "lean"] and convo.state.step == Step.LEAN
    # A typed question is not a worry: nothing was classified as one.
    assert not [m for m in convo.out.milestones if isinstance(m, WorryNamed)]
    waiting = invited(can_ask=False)
    waiting.cmd("ask")
    assert waiting.templates[0] == "ask_wait" and waiting.state.step != Step.ASK_RECRUITER
    nolink = Convo()
    nolink.cmd("ask")
    assert nolink.templates == ["ask_no_link"]
    long = invited()
    long.cmd("ask")
    long.say("x" * 5000)
    (asked,) = long.out.milestones
    # Relayed whole up to 1000 characters, cut beyond.
    assert isinstance(asked, QuestionAsked) and asked.text == "x" * 1000


def test_the_ask_button_appears_only_where_a_recruiter_invited() -> None:
    for convo, expected in ((invited(), True), (Convo(), False), (invited(can_ask=False), False)):
        convo.tap(B.pack("doubt", "nervous"))
        assert any(a.name == "ask" for _, a in convo.actions()) is expected
    convo = invited()
    convo.say("they want an unpaid take-home task that takes all weekend")
    assert convo.templates == ["unpaid_task"] and convo.button("ask")


def test_milestones_say_what_happened() -> None:
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.tap(B.pack("obj", "nervous"))
    assert convo.out.milestones == (WorryNamed("nervous"),)
    convo.say("hello")
    assert convo.out.milestones == ()
    convo.cmd("interview", "Tue 3pm")
    confirm(convo)
    assert InterviewSet(TUE_3PM.astimezone(UTC), None) in convo.out.milestones
    convo.cmd("timezone", "London")
    (moved,) = convo.out.milestones
    assert isinstance(moved, InterviewSet) and moved.previous == TUE_3PM
    convo.tap(B.pack("pre", 5, "cant"))
    assert convo.out.milestones == (CantMakeIt(),)
    convo.press("withdraw")
    assert convo.out.milestones == (Decided("pass", "go"),)
    convo.tap(B.pack("post", 5, "missed"))
    assert convo.out.milestones == (Attended("missed"),)


def test_mydata_names_the_invitation_and_what_the_recruiter_sees() -> None:
    convo = invited(consent=False, questions=2)
    convo.cmd("mydata")
    assert "Backend <Engineer> at Acme & Co" in convo.text
    assert "counts only" in convo.text and "questions relayed: 2" in convo.text


# --- regressions ---------------------------------------------------------------------------


def test_deciding_go_again_does_not_duplicate_interview_reminders() -> None:
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("interview", "Tue 3pm")
    confirm(convo)
    convo.cmd("start")
    convo.press("sit", "prep")
    planned = schedules(convo.out.effects)
    assert planned, "the plan is made again"
    covered: set[str] = set()
    for effect in convo.out.effects:
        if isinstance(effect, CancelNudges):
            covered |= set(effect.kinds or planner.KINDS)
        if isinstance(effect, ScheduleNudge):
            assert effect.kind in covered, f"{effect.kind} planned without cancelling the old"


@pytest.mark.parametrize("minutes", ["9" * 12, "9" * 24])
def test_forged_huge_confirm_time_does_not_crash(minutes: str) -> None:
    convo = at_menu()
    convo.tap(f"v1:whenok:{minutes}")
    assert convo.templates == ["unknown_button", "menu"]
    assert convo.state.interview_at is None
    assert not schedules(convo.out.effects)


def test_a_stale_keep_zone_button_keeps_the_user_where_they_are() -> None:
    convo = at_menu()
    keep = B.pack("tz", "keep")
    convo.tap(keep)
    assert convo.state.step == Step.MENU
    assert convo.templates == ["menu"]


# --- more regressions: once known bugs, fixed ------------------------------------------------


def test_a_correction_typed_at_the_confirm_screen_is_relative_to_today() -> None:
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("interview", "Tue 3pm")  # proposes Tuesday 10 March
    assert convo.state.step == Step.CONFIRM_WHEN
    convo.say("tomorrow 10am")  # today is Wednesday 4 March
    assert convo.state.proposed_at == datetime(2026, 3, 5, 10, 0, tzinfo=PARIS)


def test_interview_with_an_unreadable_time_waits_for_the_time() -> None:
    convo = Convo(state=State(timezone="Europe/Paris"))
    convo.cmd("start")
    convo.cmd("interview", "soonish maybe")
    assert convo.templates[0] == "when_unclear"
    convo.say("Tue 3pm")
    assert convo.templates == ["confirm_when"]


def test_next_steps_shows_the_interview_in_the_same_zone_as_the_plan() -> None:
    convo = Convo(ctx=make_ctx(default_timezone="Europe/Paris"))
    convo.cmd("interview", "Tue 3pm")
    confirm(convo)
    assert "Tuesday 10 Mar at 15:00" in convo.text  # the plan, in Paris time
    convo.cmd("help")
    assert convo.templates == ["help", "next_steps"]
    assert "15:00" in convo.messages[1].plain_text


def test_an_offset_zone_is_shown_the_way_the_user_typed_it() -> None:
    convo = Convo()
    convo.cmd("timezone", "UTC+3")
    assert convo.state.timezone is not None
    assert ZoneInfo(convo.state.timezone).utcoffset(NOW) == timedelta(hours=3)
    assert "GMT-3" not in convo.text
    assert "+3" in convo.text
