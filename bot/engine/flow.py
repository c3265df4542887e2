"""The coaching conversation: what happens when a user taps, types or sends anything.

Read top to bottom: the screens (what each step shows), then the handlers for commands,
buttons and text. Everything is a pure function of (event, state, context) -> Outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.engine import buttons as B
from bot.engine import planner
from bot.engine.answers import refusal, yes_or_no
from bot.engine.context import Context
from bot.engine.model import (
    Attended,
    Button,
    CancelNudge,
    CancelNudges,
    CantMakeIt,
    ConsentAsked,
    ConsentGiven,
    Decided,
    DeleteUserData,
    Effect,
    Event,
    InterviewSet,
    Keyboard,
    Milestone,
    MoveNudge,
    Outcome,
    QuestionAsked,
    Referral,
    Reply,
    ScheduleNudge,
    SetOptOut,
    SnoozeNudge,
    State,
    Step,
    WorryNamed,
    known_zone,
)
from bot.engine.when import is_time_only, parse_when, resolve_timezone
from bot.knowledge.classifier import Classification, interpret

Replies = tuple[Reply, ...]

# The objection menu, split to keep at most 6 buttons a message: the commonest first.
MENU_FIRST = ("not_a_fit", "nervous", "waste_of_time", "wont_get_offer")
MENU_MORE = ("not_looking", "overqualified", "other_offer", "bad_company", "scam_suspected")
SITUATIONS = ("invite", "prep", "explore")
LEANS = ("yes", "unsure", "no")
DECISIONS = ("go", "unsure", "pass")
WHEN_CHOICES = ("today", "tomorrow", "week", "nextweek", "none", "change")
MAX_NAME = 64  # a first name longer than this is cut, not echoed whole
MAX_AHEAD = timedelta(days=2 * 366)  # interviews further away than this are typos
SCAM_OVERRIDE = 0.35  # safety first: a likely scam is flagged even when not certain
SCAM_SECOND = 0.25  # ...and when it is the runner-up of an uncertain reading
# After this many arguments in a row the coach stops arguing and offers the decision.
MAX_IN_ROW = 3
# Worries where an article's honest exception comes first, before any argument...
LEAD_EXCEPTION = {"not_looking": "content"}
# ...or a question that tells whether one applies ("signed already?", "a real red flag?").
LEAD_QUESTION = {"other_offer": "offer", "bad_company": "flag"}
QUESTIONS = {"offer": ("signed", "open", "counter"), "flag": ("real", "vague")}
# Typed decisions (intents.toml) and the decision each one is.
INTENT_DECISIONS = {"decide_go": "go", "decide_unsure": "unsure", "decide_pass": "pass"}
# Readings that decide (or settle) whether to go: asked about even where a time was asked for.
DECISION_READINGS = frozenset({*INTENT_DECISIONS, "signed_elsewhere"})
MAX_QUESTION = 1000  # characters of a question relayed to a recruiter
# Where a plain "no" typed is about going: the screens that answer a worry or ask for the
# decision. "No thanks" there declines going; a bare "no" is asked about ("not going, or still
# not sure?"), except where the screen asked for the decision itself.
DECLINING_STEPS = frozenset(
    {
        Step.MENU,
        Step.MENU_MORE,
        Step.TYPE_IT,
        Step.ANSWER,
        Step.QUESTION,
        Step.EXCEPTION,
        Step.DOUBT,
        Step.MIXED,
        Step.UNPAID,
    }
)
DECIDING_STEPS = frozenset({Step.DECISION, Step.SCAM})


def small_int(text: str) -> int | None:
    """A number from button data, if it fits SQLite's integers (forged data may not)."""
    return int(text) if text.isdigit() and len(text) <= 15 else None


def btn(key: str, action: str, /, *args: str | int, **params: object) -> Button:
    """A button labelled by prompts/buttons.toml entry `key`, rendered with `params`."""
    return Button(key, B.pack(action, *args), params)


def rows(*buttons: Button) -> Keyboard:
    """One button a row: easiest to hit with a thumb."""
    return tuple((b,) for b in buttons)


def decision_buttons() -> tuple[Button, ...]:
    return tuple(btn(f"dec_{d}", "dec", d) for d in DECISIONS)


def ask_buttons(ctx: Context) -> tuple[Button, ...]:
    """ "Ask the recruiter", where a recruiter's link brought the candidate and a question can
    be sent now."""
    invitation = ctx.invitation
    return (btn("ask_recruiter", "ask"),) if invitation and invitation.can_ask else ()


def noting(outcome: Outcome, *milestones: Milestone) -> Outcome:
    """The outcome, with what happened recorded for the features that subscribe to it."""
    return replace(outcome, milestones=(*outcome.milestones, *milestones))


# --- screens -------------------------------------------------------------------------------


def situation_screen(intro: str = "") -> Replies:
    keyboard = rows(*(btn(f"sit_{s}", "sit", s) for s in SITUATIONS))
    return (Reply("situation", {"intro": intro}, keyboard),)


def lean_screen(state: State) -> Replies:
    keyboard = rows(
        *(btn(f"lean_{lean}", "lean", lean) for lean in LEANS), btn("back", "nav", "situation")
    )
    return (Reply("lean", {"situation": state.situation or "invite"}, keyboard),)


def menu_screen(ctx: Context, state: State, mode: str = "first") -> Replies:
    """What holds them back. The way to decide stays one tap away in the last place (where
    "Back" to the lean question was: six buttons at most): leaning no, "I'll pass" itself;
    otherwise "Decide now", the three choices."""
    decide_now = (
        btn("dec_pass", "dec", "pass")
        if state.lean == "no"
        else btn("decide_now", "nav", "decision")
    )
    keyboard = rows(
        *(btn("objection", "obj", o, label=ctx.kb.objections[o].label) for o in MENU_FIRST),
        btn("something_else", "nav", "menu_more"),
        decide_now,
    )
    return (Reply("menu", {"mode": mode}, keyboard),)


def menu_more_screen(ctx: Context) -> Replies:
    keyboard = rows(
        *(btn("objection", "obj", o, label=ctx.kb.objections[o].label) for o in MENU_MORE),
        btn("back", "nav", "menu"),
    )
    return (Reply("menu_more", {}, keyboard),)


def argument_screen(ctx: Context, state: State) -> Replies:
    """One argument; after MAX_IN_ROW in a row (or the last one) the decision, not another."""
    objection = state.objection or ""
    item = ctx.kb.objections[objection]
    index = min(max(state.arg_index, 0), len(item.arguments) - 1)
    more = index + 1 < len(item.arguments)
    row_end = state.in_row >= MAX_IN_ROW or not more
    if row_end:
        keyboard = rows(
            *decision_buttons(), btn("doubtful", "doubt", objection), btn("back", "nav", "menu")
        )
    else:
        keyboard = rows(
            btn("helps", "ok", objection),
            btn("another", "arg", objection, index + 1),
            btn("dec_pass", "dec", "pass"),
            btn("doubtful", "doubt", objection),
            btn("back", "nav", "menu"),
        )
    context = {
        "objection": item,
        "argument": item.arguments[index],
        # The feeling is heard once, before the first argument, not before each.
        "acknowledge": item.acknowledge if index == 0 and state.in_row <= 1 else None,
        "row_end": row_end,
    }
    return (Reply("argument", context, keyboard),)


def exception_screen(ctx: Context, exception: str, objection: str | None) -> Replies:
    """An honest exception: respect first, at most one line worth knowing, then the choice."""
    # Content where they are, they may still want the reasons; signed or a red flag, no.
    wants_more = exception == "content" and objection in ctx.kb.objections
    more = [btn("tell_me_more", "arg", objection, 0)] if wants_more and objection else []
    keyboard = rows(
        btn("dec_pass", "dec", "pass"),
        *more,
        btn("dec_go", "dec", "go"),
        btn("dec_unsure", "dec", "unsure"),
        btn("back", "nav", "menu"),
    )
    return (Reply("exception", {"exception": ctx.kb.coaching.exceptions[exception]}, keyboard),)


def question_screen(question: str) -> Replies:
    keyboard = rows(
        *(btn(f"q_{question}_{a}", "q", question, a) for a in QUESTIONS[question]),
        btn("dec_pass", "dec", "pass"),  # deciding needs no answer to the question
        btn("back", "nav", "menu"),
    )
    return (Reply("question", {"question": question}, keyboard),)


def doubt_screen(ctx: Context, mode: str = "doubtful") -> Replies:
    """Still doubtful after the arguments (or, `all_given`, every reason for this worry was
    given): no more arguing; talk it through or decide."""
    keyboard = rows(
        btn("other_worry", "nav", "menu"),
        btn("in_my_words", "type"),
        *decision_buttons(),
        *ask_buttons(ctx),
    )
    return (Reply("doubt", {"mode": mode}, keyboard),)


def mixed_screen() -> Replies:
    keyboard = rows(
        btn("what_holds_me_back", "nav", "menu"), btn("in_my_words", "type"), *decision_buttons()
    )
    return (Reply("mixed", {}, keyboard),)


def scam_screen(ctx: Context, paused: bool = False) -> Replies:
    """The fraud warning; `paused`: it just cancelled reminders the candidate had."""
    keyboard = rows(
        btn("steer_clear", "scam", "steer"),
        btn("its_legit", "scam", "legit"),
        btn("start_over", "nav", "situation"),
    )
    warning = {"coaching": ctx.kb.coaching}
    if paused:  # one idea a message: the warning, then what became of the reminders
        return (Reply("scam", warning), Reply("scam_paused", {}, keyboard))
    return (Reply("scam", warning, keyboard),)


def scam_check_screen(decision: str) -> Replies:
    """Deciding to go after a fraud warning: nothing is planned until it checked out."""
    keyboard = rows(btn("it_checked_out", "scamok", decision), btn("steer_clear", "scam", "steer"))
    return (Reply("scam_check", {"mode": "decision"}, keyboard),)


def flag_stands(state: State) -> Outcome:
    """A worry while the interview is flagged as possible fraud (after "Start over", say): no
    argument for going, only the flag and the two ways on."""
    keyboard = rows(btn("it_checked_out", "scam", "legit"), btn("steer_clear", "scam", "steer"))
    return Outcome(
        (Reply("scam_check", {"mode": "worry"}, keyboard),), state.evolve(step=Step.SCAM)
    )


def unpaid_screen(ctx: Context) -> Replies:
    # A question for the employer: where a recruiter invited them, it can go to them directly.
    keyboard = rows(*ask_buttons(ctx), btn("back_to_worries", "nav", "menu"), *decision_buttons())
    return (Reply("unpaid_task", {"coaching": ctx.kb.coaching}, keyboard),)


def decision_screen(mode: str = "plain") -> Replies:
    keyboard = rows(*decision_buttons(), btn("something_bugs_me", "nav", "menu"))
    return (Reply("decision", {"mode": mode}, keyboard),)


def ask_when_screen(mode: str = "plain") -> Replies:
    keyboard = (
        (btn("when_today", "when", "today"), btn("when_tomorrow", "when", "tomorrow")),
        (btn("when_week", "when", "week"), btn("when_nextweek", "when", "nextweek")),
        (btn("when_none", "when", "none"),),
    )
    return (Reply("ask_when", {"mode": mode}, keyboard),)


def ask_time_screen(state: State, ctx: Context) -> Replies:
    return (
        Reply(
            "ask_time",
            {"day": state.proposed_at, "zone": ctx.zone_name(state)},
            rows(btn("back", "when", "change")),
        ),
    )


def confirm_when_screen(state: State, ctx: Context, moment: datetime) -> Replies:
    minutes = int(moment.timestamp() // 60)
    keyboard = rows(
        btn("yes_right", "whenok", minutes),
        btn("no_wrong", "whenno"),
        btn("change_tz", "tz", "ask"),
    )
    # A zone nobody chose is only the default: ask for it with the first typed time.
    context = {"moment": moment, "zone": ctx.zone_name(state), "ask_zone": not state.timezone}
    return (Reply("confirm_when", context, keyboard),)


def ask_tz_screen(state: State, ctx: Context) -> Replies:
    context = {"zone": ctx.zone_name(state), "now": ctx.now}
    return (Reply("ask_tz", context, rows(btn("keep_tz", "tz", "keep"))),)


def current_screen(state: State, ctx: Context) -> Replies:
    """Show where the user is: used after help, fallbacks and stale or forged buttons."""
    step = state.step
    if step == Step.LEAN:
        return lean_screen(state)
    if step in (Step.MENU, Step.TYPE_IT):
        return menu_screen(ctx, state, "again")
    if step == Step.MENU_MORE:
        return menu_more_screen(ctx)
    objection = ctx.kb.objections.get(state.objection or "")
    if step == Step.ANSWER and objection is not None and objection.arguments:
        return argument_screen(ctx, state)
    if step == Step.QUESTION and state.objection in LEAD_QUESTION:
        return question_screen(LEAD_QUESTION[state.objection])
    if step == Step.EXCEPTION and state.exception in ctx.kb.coaching.exceptions:
        return exception_screen(ctx, state.exception, state.objection)
    if step == Step.DOUBT:
        return doubt_screen(ctx)
    if step == Step.MIXED:
        return mixed_screen()
    if step == Step.SCAM:
        return scam_screen(ctx)
    if step == Step.UNPAID:
        return unpaid_screen(ctx)
    if step == Step.DECISION:
        return decision_screen()
    if step == Step.ASK_WHEN:
        return ask_time_screen(state, ctx) if state.proposed_at else ask_when_screen()
    if step == Step.CONFIRM_WHEN and state.proposed_at is not None:
        return confirm_when_screen(state, ctx, state.proposed_at)
    if step == Step.ASK_TZ:
        return ask_tz_screen(state, ctx)
    if step in (Step.GO, Step.UNSURE, Step.PASS, Step.DEBRIEF):
        keyboard = (*next_steps_keyboard(state), *rows(*ask_buttons(ctx)))
        return (Reply("next_steps", next_steps_context(state, ctx), keyboard),)
    if step == Step.CONSENT and ctx.invitation is not None:
        return consent_screen(ctx)
    if step == Step.ASK_RECRUITER:
        return ask_screen(ctx)
    return situation_screen()


def next_steps_context(state: State, ctx: Context) -> dict[str, object]:
    return {"state": state, "zone": ctx.zone_name(state)}


def next_steps_keyboard(state: State) -> Keyboard:
    if state.decision == "go":
        return rows(btn("change_date", "when", "change"), btn("start_over", "nav", "situation"))
    return rows(btn("talk_again", "nav", "menu"), btn("start_over", "nav", "situation"))


# --- outcomes of the decision ----------------------------------------------------------------


def decide(state: State, ctx: Context, decision: str) -> Outcome:
    if decision in ("go", "unsure") and state.scam:
        return Outcome(scam_check_screen(decision), state.evolve(step=Step.SCAM))
    outcome = noting(_decide(state, ctx, decision), Decided(decision, state.decision))
    return ask_consent(outcome, ctx)


def ask_consent(outcome: Outcome, ctx: Context) -> Outcome:
    """At the first decision, a candidate a recruiter invited is asked whether that recruiter
    may see their name, decision and interview time. What the question holds back follows the
    answer, so the step stays at two messages: the note to copy, or the step's own screen (the
    time question)."""
    invitation = ctx.invitation
    if invitation is None or invitation.consent is not None or outcome.state.scam:
        return outcome
    first, *rest = outcome.replies
    held = "note" if rest and rest[0].template == "withdraw_note" else None
    state = outcome.state.evolve(
        step=Step.CONSENT, return_step=outcome.state.step, after_consent=held
    )
    asked = replace(outcome, replies=(first, *consent_screen(ctx)), state=state)
    return noting(asked, ConsentAsked())  # once: not again at a later decision


def consent_screen(ctx: Context) -> Replies:
    keyboard = rows(btn("consent_yes", "consent", "yes"), btn("consent_no", "consent", "no"))
    return (Reply("consent", {"invitation": ctx.invitation}, keyboard),)


def on_consent(choice: str, state: State, ctx: Context) -> Outcome:
    """The answer to the consent question, or a change of mind from /privacy."""
    allowed = choice == "yes"
    given = ConsentGiven(allowed, everywhere=choice == "none")
    if state.step != Step.CONSENT:
        referrals = tuple(r.after_consent(choice) for r in ctx.referrals)
        context = {
            "invitation": ctx.invitation,
            "allowed": allowed,
            "changed": True,
            "referrals": referrals,
        }
        keyboard = privacy_keyboard(ctx, allowed, referrals)
        return Outcome((Reply("privacy", context, keyboard),), state, (), None, (given,))
    back = state.return_step or Step.GO
    new = state.evolve(step=back, return_step=None, after_consent=None)
    replies: Replies
    if state.after_consent == "note":
        replies = (withdraw_note(ctx, None),)
    else:
        replies = current_screen(new, ctx)
    notice = "Shared with the recruiter" if allowed else "Kept private"
    return Outcome(replies, new, (), notice, (given,))


def privacy_keyboard(ctx: Context, allowed: bool | None, referrals: Sequence[Referral]) -> Keyboard:
    """Withdraw while any recruiter may see something (an opening closed since included);
    agree only to the opening the conversation is about."""
    withdraw = allowed or any(r.allowed for r in referrals)
    return rows(
        *([btn("consent_withdraw", "consent", "none")] if withdraw else []),
        *([btn("consent_allow", "consent", "yes")] if ctx.invitation and not allowed else []),
    )


def ask_screen(ctx: Context) -> Replies:
    return (Reply("ask_prompt", {"invitation": ctx.invitation}, rows(btn("ask_cancel", "askno"))),)


def ask_recruiter(state: State, ctx: Context) -> Outcome:
    """ "Ask the recruiter": the next text goes to them, if a link brought the candidate."""
    invitation = ctx.invitation
    if invitation is None:
        return Outcome((Reply("ask_no_link", {}),), state)
    if not invitation.can_ask:
        return Outcome((Reply("ask_wait", {}), *current_screen(state, ctx)), state)
    new = state.evolve(step=Step.ASK_RECRUITER, return_step=_return_to(state))
    return Outcome(ask_screen(ctx), new)


def on_question(text: str, state: State, ctx: Context) -> Outcome:
    question = " ".join(text.split())[:MAX_QUESTION]
    back = state.evolve(step=state.return_step or Step.SITUATION, return_step=None)
    if ctx.invitation is None or not ctx.invitation.can_ask:
        return Outcome((Reply("ask_wait", {}), *current_screen(back, ctx)), back)
    if not question:
        return Outcome(ask_screen(ctx), state)
    replies = (Reply("ask_sent", {"invitation": ctx.invitation}), *current_screen(back, ctx))
    return Outcome(replies, back, (), None, (QuestionAsked(question),))


def withdraw_note(ctx: Context, after: str | None) -> Reply:
    keyboard = rows(btn("actually_go", "dec", "go"), btn("start_over", "nav", "situation"))
    return Reply("withdraw_note", {"coaching": ctx.kb.coaching, "after": after}, keyboard)


def _decide(state: State, ctx: Context, decision: str) -> Outcome:
    coaching = ctx.kb.coaching
    if decision == "go":
        # The checklist is shown once per decision: not again for a second "I'll go".
        show = not (state.decision == "go" and state.checklist_shown)
        state = state.evolve(decision="go", step=Step.GO, checklist_shown=True)
        # Replace whatever was planned: going again must not double the reminders.
        effects: list[Effect] = [CancelNudges(planner.KINDS)]
        replies: Replies = (
            (Reply("go_checklist", {"items": coaching.checklist, "soon": False}),) if show else ()
        )
        if state.interview_at is not None and state.interview_at > ctx.now:
            effects += plan_for(state, ctx)
            replies += (
                Reply("plan", plan_context(state, ctx, effects), next_steps_keyboard(state)),
            )
        else:
            state = state.evolve(step=Step.ASK_WHEN, proposed_at=None)
            replies += ask_when_screen("go")
        return Outcome(replies, state, tuple(effects))
    if decision == "unsure":
        # A new decision to wait: the check-ins the message promises, even after one was
        # cancelled before.
        cancelled = tuple(k for k in state.cancelled if k != planner.CHECKBACK)
        state = state.evolve(
            decision="unsure", step=Step.UNSURE, checklist_shown=False, cancelled=cancelled
        )
        effects = [CancelNudges(planner.KINDS), *plan_for(state, ctx)]
        keyboard = rows(
            btn("talk_again", "nav", "menu"),
            btn("dec_go", "dec", "go"),
            btn("dec_pass", "dec", "pass"),
        )
        replies = (Reply("unsure", {"items": coaching.gains}, keyboard),)
        if state.interview_at is None and not state.interview_pending:
            state = state.evolve(step=Step.ASK_WHEN, proposed_at=None)
            replies += ask_when_screen("unsure")
        return Outcome(replies, state, tuple(effects))
    if state.scam:
        return steer_clear(state, ctx)
    after = state.exception if state.step == Step.EXCEPTION else None
    state = state.evolve(decision="pass", step=Step.PASS, checklist_shown=False)
    note = withdraw_note(ctx, after)
    if after in coaching.exceptions:
        # The exception was just shown with respect: no need to say it twice.
        return Outcome((note,), state, (CancelNudges(),))
    pass_reply = Reply("pass", {"source": coaching.exceptions["content"].source})
    return Outcome((pass_reply, note), state, (CancelNudges(),))


def steer_clear(state: State, ctx: Context) -> Outcome:
    """Not going near a likely scam: the sensible call, said so; no note to the scammer."""
    state = state.evolve(decision="pass", step=Step.PASS, scam=True, checklist_shown=False)
    keyboard = rows(btn("start_over", "nav", "situation"))
    reply = Reply("steer_clear", {"coaching": ctx.kb.coaching}, keyboard)
    return Outcome((reply,), state, (CancelNudges(),))


def plan_for(state: State, ctx: Context) -> list[Effect]:
    """The nudges that fit the user's decision and interview time, from now on."""
    if state.scam:
        return []  # no pep talk for an interview that looked like fraud, unless it checked out
    zone, now, quiet = ctx.zone(state), ctx.now, ctx.quiet
    interview = state.interview_at if state.interview_at and state.interview_at > now else None
    plan: list[ScheduleNudge] = []
    if state.decision == "unsure":
        plan = planner.plan_checkbacks(now, interview, zone, quiet)
    elif state.decision == "go" and interview is not None:
        plan = planner.plan_interview(interview, now, zone, quiet)
    # What they cancelled in /nudges stays cancelled for this interview.
    return [n for n in plan if n.kind not in state.cancelled]


def plan_context(state: State, ctx: Context, effects: Sequence[Effect]) -> dict[str, object]:
    scheduled = [e for e in effects if isinstance(e, ScheduleNudge)]
    return {"state": state, "zone": ctx.zone_name(state), "nudges": scheduled}


def set_interview(state: State, ctx: Context, moment: datetime) -> Outcome:
    outcome = _set_interview(state, ctx, moment)
    if outcome.state.interview_at == moment:
        return noting(outcome, InterviewSet(moment, state.interview_at))
    return outcome


def _set_interview(state: State, ctx: Context, moment: datetime) -> Outcome:
    if moment <= ctx.now:
        state = state.evolve(step=Step.ASK_WHEN, proposed_at=None)
        return Outcome((Reply("when_past", {}), *ask_when_screen()), state)
    if state.decision is None:
        state = state.evolve(decision="go")  # "I'm going and want to prepare"
    happened = state.attended in ("went_well", "mixed")  # so this is another interview
    state = state.evolve(
        interview_at=moment,
        interview_pending=False,
        proposed_at=None,
        attended=None,
        # Saying yes to a time typed in the default zone confirms that zone too.
        timezone=ctx.zone_name(state),
        cancelled=() if happened else state.cancelled,
    )
    state = state.evolve(step=Step.GO if state.decision == "go" else Step.UNSURE)
    # A kind they cancelled is neither planned again nor touched: what is left of it (the
    # check-ins an undecided user kept) stays as it was. Going, no check-in is left.
    kinds = tuple(k for k in planner.KINDS if state.decision == "go" or k not in state.cancelled)
    effects: list[Effect] = [CancelNudges(kinds), *plan_for(state, ctx)]
    keyboard = next_steps_keyboard(state)
    if state.scam:
        keyboard = (*rows(btn("it_checked_out", "scamok", state.decision or "go")), *keyboard)
    replies: Replies = (Reply("plan", plan_context(state, ctx, effects), keyboard),)
    soon = moment - ctx.now <= planner.PREP_ONLY_IF_AWAY
    if state.decision == "go" and soon and not state.checklist_shown and not state.scam:
        # Too close for the day-before checklist: show it now, once.
        replies += (Reply("go_checklist", {"items": ctx.kb.coaching.checklist, "soon": True}),)
        state = state.evolve(checklist_shown=True)
    return Outcome(replies, state, tuple(effects))


# --- worries and typed intents ---------------------------------------------------------------


def answer_objection(state: State, ctx: Context, objection: str, typed: str = "") -> Outcome:
    """A worry just named (tapped or typed): the honest exception or a question first where the
    articles make one, else the strongest argument, after one line that hears the feeling."""
    outcome = _answer_objection(state, ctx, objection, typed)
    if objection in ctx.kb.objections and objection != "other":
        return noting(outcome, WorryNamed(objection))
    return outcome


def _answer_objection(state: State, ctx: Context, objection: str, typed: str) -> Outcome:
    if objection == "scam_suspected":
        # Flagging stops whatever was planned for this interview: no pep talk or check-in for
        # a likely scam. They are planned again only if the candidate says it checked out.
        new = state.evolve(step=Step.SCAM, objection=objection, scam=True)
        paused = any(n.kind in planner.KINDS for n in ctx.pending)
        return Outcome(scam_screen(ctx, paused), new, (CancelNudges(),))
    if objection == "unpaid_task":
        return Outcome(unpaid_screen(ctx), state.evolve(step=Step.UNPAID, objection=objection))
    if objection not in ctx.kb.objections or not ctx.kb.objections[objection].arguments:
        return Outcome(menu_screen(ctx, state, "again"), state.evolve(step=Step.MENU))
    if objection == "other_offer" and "counter" in typed.lower():
        return answer_question("offer", "counter", state, ctx)
    if objection in LEAD_EXCEPTION:
        exception = LEAD_EXCEPTION[objection]
        new = state.evolve(
            step=Step.EXCEPTION, objection=objection, exception=exception, in_row=0, arg_index=0
        )
        return Outcome(exception_screen(ctx, exception, objection), new)
    if objection in LEAD_QUESTION:
        new = state.evolve(step=Step.QUESTION, objection=objection, in_row=0, arg_index=0)
        return Outcome(question_screen(LEAD_QUESTION[objection]), new)
    if state.scam:
        return flag_stands(state.evolve(objection=objection))
    return next_argument(state, ctx, objection)


def given(state: State, objection: str) -> int:
    """How many of this worry's arguments the candidate has been given (in order)."""
    return max((n for o, n in state.given if o == objection), default=0)


def having_given(state: State, objection: str, index: int) -> tuple[tuple[str, int], ...]:
    count = max(given(state, objection), index + 1)
    return (*((o, n) for o, n in state.given if o != objection), (objection, count))


def next_argument(state: State, ctx: Context, objection: str, before: Replies = ()) -> Outcome:
    """The same worry again carries on with the reasons not yet given; once all were given,
    the coach says so kindly and offers another worry, their own words or the decision,
    instead of going round again."""
    index = given(state, objection)
    if index >= len(ctx.kb.objections[objection].arguments):
        new = state.evolve(step=Step.DOUBT, objection=objection, in_row=0)
        return Outcome((*before, *doubt_screen(ctx, "all_given")), new)
    new = state.evolve(
        step=Step.ANSWER,
        objection=objection,
        arg_index=index,
        in_row=1,
        given=having_given(state, objection, index),
    )
    return Outcome((*before, *argument_screen(ctx, new)), new)


def another_argument(state: State, ctx: Context, objection: str, index: int) -> Outcome:
    """ "Another reason" (or "Tell me more" after an exception): the next in the row."""
    if state.scam:
        return flag_stands(state)
    index = min(index, len(ctx.kb.objections[objection].arguments) - 1)
    in_row = state.in_row + 1 if state.objection == objection else 1
    new = state.evolve(
        step=Step.ANSWER,
        objection=objection,
        arg_index=index,
        in_row=in_row,
        given=having_given(state, objection, index),
    )
    return Outcome(argument_screen(ctx, new), new)


def answer_question(question: str, answer: str, state: State, ctx: Context) -> Outcome:
    """The answer to the question asked before any argument."""
    objection = "other_offer" if question == "offer" else "bad_company"
    if answer in ("signed", "real"):
        exception = "signed" if answer == "signed" else "red_flag"
        new = state.evolve(step=Step.EXCEPTION, objection=objection, exception=exception, in_row=0)
        return Outcome(exception_screen(ctx, exception, objection), new)
    if state.scam:
        return flag_stands(state.evolve(objection=objection))
    # Our own advice on a counter-offer, only where it applies: before the reasons.
    counter = (
        (Reply("counter_offer", {"coaching": ctx.kb.coaching}),) if answer == "counter" else ()
    )
    return next_argument(state, ctx, objection, counter)


def act_on(label: str, state: State, ctx: Context, typed: str = "") -> Outcome:
    """What a confident reading of typed text leads to: a decision first, then a worry."""
    if label in INTENT_DECISIONS:
        return decide(state, ctx, INTENT_DECISIONS[label])
    if label == "signed_elsewhere":
        return answer_question("offer", "signed", state, ctx)
    if label == "mixed_feelings":
        return Outcome(mixed_screen(), state.evolve(step=Step.MIXED))
    return answer_objection(state, ctx, label, typed)


def reading_button(label: str, ctx: Context) -> Button:
    """A button for one reading of typed text in "Did you mean…?"."""
    if label in INTENT_DECISIONS:
        return btn(f"intent_{label}", "dec", INTENT_DECISIONS[label])
    if label == "signed_elsewhere":
        return btn(f"intent_{label}", "q", "offer", "signed")
    if label == "mixed_feelings":
        return btn(f"intent_{label}", "nav", "mixed")
    return btn("objection", "obj", label, label=ctx.kb.objections[label].label)


def looks_like_scam(result: Classification, verdict: str) -> bool:
    """Safety first: warn on a likely scam even when the classifier is not sure of it
    ("I have to pay to get the job" also reads like a complaint about pay)."""
    if result.objection == "scam_suspected":
        return result.confidence >= SCAM_OVERRIDE
    second = result.alternatives[0] if result.alternatives else None
    return (
        verdict != "confident"
        and second is not None
        and second.objection == "scam_suspected"
        and second.confidence >= SCAM_SECOND
    )


def did_you_mean(
    readings: Sequence[str], state: State, ctx: Context, back: bool = False
) -> Outcome:
    """ "Did you mean A or B?", asked as a question, with both readings and the list of worries,
    or (`back`, where a time or a zone was asked for) the way back to that question."""
    neither = btn("neither_back", "nav", "here") if back else btn("neither", "nav", "menu")
    keyboard = rows(*(reading_button(r, ctx) for r in readings), neither)
    context = {"options": [ctx.kb.summary(r) for r in readings]}
    return Outcome((Reply("did_you_mean", context, keyboard),), state)


def short_answer(text: str, state: State, ctx: Context) -> Outcome | None:
    """A plain yes or no, read by the screen it answers (the classifier, rightly, takes a bare
    "no" for small talk); None when the text is more than that or the screen asked no such
    thing."""
    kind = refusal(text)
    if state.step == Step.QUESTION and state.objection == "other_offer" and kind != "polite":
        answer = yes_or_no(text)  # "Have you already accepted it?"
        if answer is not None:
            return answer_question("offer", "signed" if answer == "yes" else "open", state, ctx)
    if kind is None:
        return None
    if state.step in DECIDING_STEPS or (kind == "polite" and state.step in DECLINING_STEPS):
        return decide(state, ctx, "pass")
    if state.step in DECLINING_STEPS:
        return did_you_mean(("decide_pass", "decide_unsure"), state, ctx)
    return None


def understand(text: str, state: State, ctx: Context, expecting: str = "") -> Outcome:
    """Free text: act on a clear decision or worry, ask when two readings are close, else say
    so. `expecting` ("when", "zone") is what the step asked for, which the text was not."""
    if not expecting and (short := short_answer(text, state, ctx)) is not None:
        return short
    result = ctx.classifier.classify(text)
    verdict = interpret(result)
    if looks_like_scam(result, verdict):
        return answer_objection(state, ctx, "scam_suspected")
    if verdict == "confident" and result.objection != "other":
        return act_on(result.objection, state, ctx, text)
    if expecting == "zone":
        state = state.evolve(step=Step.ASK_TZ, return_step=_return_to(state))
    if verdict == "ambiguous":
        # Always two readings (the top three hold at most one "other"), asked as a question.
        readings = [result.objection, *(a.objection for a in result.alternatives)]
        readings = [r for r in readings if r != "other"][:2]
        # Where a time or a zone was asked for, only a possible decision is worth the question
        # ("I don't want to go" is an answer; a mistyped date is not a worry).
        if len(readings) == 2 and (not expecting or DECISION_READINGS & set(readings)):
            return did_you_mean(readings, state, ctx, back=bool(expecting))
    if expecting == "when":
        return Outcome((Reply("when_unclear", {}), *current_screen(state, ctx)), state)
    if expecting == "zone":
        return Outcome((Reply("tz_unknown", {}), *ask_tz_screen(state, ctx)), state)
    if verdict == "confident":
        return Outcome((Reply("smalltalk", {}), *current_screen(state, ctx)), state)
    return Outcome(
        (Reply("not_understood", {}), *menu_screen(ctx, state, "again")),
        state.evolve(step=Step.MENU),
    )


# --- commands --------------------------------------------------------------------------------


def on_command(event: Event, state: State, ctx: Context) -> Outcome:
    name = event.value.lower()
    if name in ("start", "restart"):
        keep = state.interview_at is not None  # a planned interview and its decision stay
        fresh = State(
            timezone=state.timezone,
            interview_at=state.interview_at,
            interview_pending=state.interview_pending,
            decision=state.decision if keep else None,
            checklist_shown=state.checklist_shown if keep else False,
            scam=state.scam if keep else False,
            cancelled=state.cancelled if keep else (),
        )
        first = event.first_name.strip()[:MAX_NAME]
        template = "welcome" if name == "start" else "restart"
        effects: list[Effect] = []
        upcoming = fresh.interview_at is not None and fresh.interview_at > ctx.now
        if ctx.returning and upcoming and fresh.decision in ("go", "unsure"):
            # Back after blocking the bot, which cancelled their reminders: plan them again.
            effects = [CancelNudges(planner.KINDS), *plan_for(fresh, ctx)]
        context = {
            "first_name": first,
            "invitation": ctx.invitation,
            "back": fresh if effects else None,
            "zone": ctx.zone_name(fresh),
        }
        # One message: the greeting ends with the first question and carries its buttons.
        (question,) = situation_screen()
        reply = Reply(template, {**context, "ask": True}, question.keyboard)
        return Outcome((reply,), fresh, tuple(effects))
    if name == "help":
        return Outcome((Reply("help", {}), *current_screen(state, ctx)), state)
    if name == "about":
        return Outcome((Reply("about", {"sources": list(ctx.kb.sources.values())}),), state)
    if name == "mydata":
        keyboard = rows(btn("delete_data", "del", "ask"))
        return Outcome((Reply("mydata", mydata_context(state, ctx), keyboard),), state)
    if name == "delete":
        return on_delete("ask", state, ctx)
    if name == "timezone":
        if event.argument.strip():
            return set_timezone(event.argument, state, ctx)
        new = state.evolve(step=Step.ASK_TZ, return_step=_return_to(state))
        return Outcome(ask_tz_screen(new, ctx), new)
    if name == "interview":
        if event.argument.strip():
            asking = state.evolve(step=Step.ASK_WHEN, proposed_at=None)
            return on_when_text(event.argument, asking, ctx)
        new = state.evolve(step=Step.ASK_WHEN, proposed_at=None)
        return Outcome(ask_when_screen("change"), new)
    if name == "nudges":
        return Outcome(nudges_screen(state, ctx), state)
    if name == "ask":
        return ask_recruiter(state, ctx)
    if name == "privacy":
        consent = ctx.invitation.consent if ctx.invitation else None
        view = {
            "invitation": ctx.invitation,
            "allowed": consent,
            "changed": False,
            "referrals": ctx.referrals,
        }
        keyboard = privacy_keyboard(ctx, consent, ctx.referrals)
        return Outcome((Reply("privacy", view, keyboard),), state)
    if name == "stop":
        return Outcome((Reply("stopped", {}),), state, (CancelNudges(), SetOptOut(True)))
    return Outcome((Reply("unknown_command", {}), *current_screen(state, ctx)), state)


def reads_referrals(event: Event) -> bool:
    """Whether the answer to `event` may list the openings the candidate came through
    (ctx.referrals): /privacy, /mydata and a consent tap (answered with /privacy's screen when
    it comes from away from the consent question). Only these load them."""
    if event.kind == "command":
        return event.value.lower() in ("privacy", "mydata")
    if event.kind == "button":
        action = B.unpack(event.value)
        return action is not None and action.name == "consent"
    return False


def mydata_context(state: State, ctx: Context) -> dict[str, object]:
    """What /mydata shows, in words: the template names each value, the ids stay inside."""
    objection = ctx.kb.objections.get(state.objection or "")
    return {
        "state": state,
        "worry": objection.label if objection else None,
        "zone": ctx.zone_name(state),
        "pending": list(ctx.pending),
        "invitation": ctx.invitation,
        "referrals": ctx.referrals,
    }


def _return_to(state: State) -> Step:
    """The step to come back to after a detour. Not the consent question: it is put once,
    and the step it stood in front of is where the conversation goes on."""
    if state.step in (Step.ASK_TZ, Step.CONSENT) and state.return_step:
        return state.return_step
    return state.step


def nudges_screen(state: State, ctx: Context, cancelled: int | None = None) -> Replies:
    pending = [n for n in ctx.pending if n.id != cancelled]
    keyboard = rows(
        *(
            btn("cancel_nudge", "cancel", n.id, kind=n.kind, when=_short(n.due_at, ctx, state))
            for n in pending[:5]
        ),
        *([btn("stop_all", "stopall")] if pending else []),
    )
    context = {"pending": pending, "zone": ctx.zone_name(state), "cancelled": cancelled}
    return (Reply("nudges", context, keyboard),)


def _short(moment: datetime, ctx: Context, state: State) -> str:
    local = moment.astimezone(ctx.zone(state))
    return f"{local:%a} {local.day} {local:%b} {local:%H:%M}"


def same_wall_clock(moment: datetime, old: ZoneInfo, new: ZoneInfo) -> datetime:
    """The instant that shows the same local time in `new` as `moment` does in `old`."""
    local = moment.astimezone(old).replace(tzinfo=None)
    return local.replace(tzinfo=new).astimezone(UTC)


def move_plan(delta: timedelta, zone: ZoneInfo, ctx: Context) -> list[Effect]:
    """The interview moved by `delta`: move its pending reminders with it (a reminder the user
    cancelled is not pending, so it stays cancelled), out of quiet hours in the new zone."""
    effects: list[Effect] = []
    for nudge in ctx.pending:
        if nudge.kind not in planner.INTERVIEW_KINDS:
            continue
        deadline = nudge.deadline + delta if nudge.deadline is not None else None
        due = planner.respect_quiet_hours(nudge.due_at + delta, deadline, zone, ctx.quiet)
        effects.append(CancelNudge(nudge.id) if due is None else MoveNudge(nudge.id, due, deadline))
    return effects


def refit_checkbacks(
    interview: datetime | None, was: datetime | None, zone: ZoneInfo, ctx: Context
) -> list[Effect]:
    """An undecided user's pending check-ins, planned again in a new zone: out of its quiet
    hours, and never after the interview (which may have moved) has started. Their days stay,
    since they count from the decision; one cancelled in /nudges is not pending and stays so."""
    effects: list[Effect] = []
    for nudge in ctx.pending:
        if nudge.kind != planner.CHECKBACK:
            continue
        deadline = nudge.deadline
        if deadline is not None and deadline == was:
            # It ended when the interview started: it ends when the interview starts now.
            deadline = nudge.due_at + planner.CHECKBACK_WINDOW
        if interview is not None:
            deadline = interview if deadline is None else min(deadline, interview)
        due = planner.respect_quiet_hours(nudge.due_at, deadline, zone, ctx.quiet)
        if due is None:
            effects.append(CancelNudge(nudge.id))
        elif (due, deadline) != (nudge.due_at, nudge.deadline):
            effects.append(MoveNudge(nudge.id, due, deadline))
    return effects


def keep_zone(state: State, ctx: Context) -> Outcome:
    """ "Keep this zone" (tapped, or a yes typed on the zone screen)."""
    if state.step != Step.ASK_TZ:  # a stale "Keep this zone": nothing to leave
        return Outcome(current_screen(state, ctx), state)
    back = state.return_step or Step.SITUATION
    new = state.evolve(step=back, return_step=None)
    return Outcome(current_screen(new, ctx), new)


def on_zone_text(text: str, state: State, ctx: Context) -> Outcome:
    """Typed on "Your time zone is UTC… To change it, send a city": a yes keeps it, a no asks
    for the city; anything else is read as a zone (or what else the coach understands)."""
    answer = yes_or_no(text)
    if answer == "yes":
        return keep_zone(state, ctx)
    if answer == "no":
        return Outcome((Reply("tz_which", {}, rows(btn("keep_tz", "tz", "keep"))),), state)
    return set_timezone(text, state, ctx)


def set_timezone(text: str, state: State, ctx: Context) -> Outcome:
    name = resolve_timezone(text, ctx.now)
    zone = known_zone(name) if name else None
    if name is None or zone is None:
        return understand(text, state, ctx, expecting="zone")
    back = state.return_step if state.step == Step.ASK_TZ else state.step
    new = state.evolve(timezone=name, step=back or Step.SITUATION, return_step=None)
    old = ctx.zone(state)
    effects: list[Effect] = []
    # "Thursday 2pm" meant 2 pm where they are: the typed wall-clock time stays, the instant
    # (and the plan with it) moves.
    milestones: list[Milestone] = []
    kept = False  # the typed wall-clock time has already come in the new zone
    if state.interview_at is not None and state.interview_at > ctx.now:
        moved = same_wall_clock(state.interview_at, old, zone)
        if moved > ctx.now:
            new = new.evolve(interview_at=moved)
            effects = move_plan(moved - state.interview_at, zone, ctx)
            if moved != state.interview_at:
                milestones.append(InterviewSet(moved, state.interview_at))
        else:
            # That time has already come in the new zone: the interview keeps its moment,
            # and the message says so rather than that its time "stays".
            kept = True
    if state.proposed_at is not None:
        new = new.evolve(proposed_at=same_wall_clock(state.proposed_at, old, zone))
    upcoming = new.interview_at if new.interview_at and new.interview_at > ctx.now else None
    effects += refit_checkbacks(upcoming, state.interview_at, zone, ctx)
    context = {
        "zone": name,
        "now": ctx.now,
        "interview_at": upcoming,
        "kept": kept,
        "typed_zone": old.key,
    }
    if new.step in (Step.GO, Step.UNSURE, Step.PASS, Step.DEBRIEF):
        replies: Replies = (Reply("tz_set", context, next_steps_keyboard(new)),)
    else:
        replies = (Reply("tz_set", context), *current_screen(new, ctx))
    return Outcome(replies, new, tuple(effects), None, tuple(milestones))


# --- buttons ---------------------------------------------------------------------------------


def on_button(event: Event, state: State, ctx: Context) -> Outcome:
    action = B.unpack(event.value)
    outcome = _on_action(action, state, ctx) if action is not None else None
    if outcome is None:
        # Forged, malformed or from a version we no longer speak: say so, show where we are.
        replies = (Reply("unknown_button", {}), *current_screen(state, ctx))
        return Outcome(replies, state, notice="That button no longer works")
    return outcome


def _on_action(action: B.Action, state: State, ctx: Context) -> Outcome | None:
    name, args = action.name, action.args
    if name == "sit" and args[0] in SITUATIONS:
        new = state.evolve(situation=args[0])
        if args[0] == "prep":
            return decide(new, ctx, "go")
        return Outcome(lean_screen(new), new.evolve(step=Step.LEAN))
    if name == "lean" and args[0] in LEANS:
        new = state.evolve(lean=args[0])
        if args[0] == "yes":
            return Outcome(decision_screen("leaning_yes"), new.evolve(step=Step.DECISION))
        return Outcome(menu_screen(ctx, new), new.evolve(step=Step.MENU))
    if name == "nav":
        return navigate(args[0], state, ctx)
    if name == "obj" and args[0] in ctx.kb.objections:
        return answer_objection(state, ctx, args[0])
    if name == "arg" and (index := small_int(args[1])) is not None:
        objection = ctx.kb.objections.get(args[0])
        return (
            another_argument(state, ctx, args[0], index)
            if objection and objection.arguments
            else None
        )
    if name == "q" and args[1] in QUESTIONS.get(args[0], ()):
        return answer_question(args[0], args[1], state, ctx)
    if name == "ok" and args[0] in ctx.kb.objections:
        return Outcome(decision_screen("helped"), state.evolve(step=Step.DECISION))
    if name == "doubt" and args[0] in ctx.kb.objections:
        return Outcome(doubt_screen(ctx), state.evolve(step=Step.DOUBT))
    if name == "dec" and args[0] in DECISIONS:
        return decide(state, ctx, args[0])
    if name == "scam" and args[0] == "steer":
        return noting(steer_clear(state, ctx), Decided("pass", state.decision))
    if name == "scam" and args[0] == "legit":
        # They say it checked out: back to the worries, and the reminders the flag cancelled
        # are planned again.
        new = state.evolve(scam=False, step=Step.MENU)
        replan = plan_for(new, ctx) if state.scam else []
        effects = (CancelNudges(planner.KINDS), *replan) if replan else ()
        return Outcome(menu_screen(ctx, new, "legit"), new, effects)
    if name == "scamok" and args[0] in ("go", "unsure"):
        return decide(state.evolve(scam=False), ctx, args[0])
    if name == "withdraw":
        return noting(withdraw(state, ctx), Decided("pass", state.decision))
    if name == "consent" and args[0] in ("yes", "no", "none"):
        return on_consent(args[0], state, ctx)
    if name == "ask":
        return ask_recruiter(state, ctx)
    if name == "askno":
        back = state.return_step if state.step == Step.ASK_RECRUITER else state.step
        new = state.evolve(step=back or Step.SITUATION, return_step=None)
        return Outcome((Reply("ask_cancelled", {}), *current_screen(new, ctx)), new)
    if name == "type":
        return Outcome((Reply("type_it", {}),), state.evolve(step=Step.TYPE_IT))
    if name == "when" and args[0] in WHEN_CHOICES:
        return on_when_choice(args[0], state, ctx)
    if name == "whenok" and (minutes := small_int(args[0])) is not None:
        if minutes > (ctx.now + MAX_AHEAD).timestamp() // 60:
            return None  # forged: nobody confirmed an interview that far away
        return confirm_proposed(datetime.fromtimestamp(minutes * 60, UTC), state, ctx)
    if name == "whenno":
        return retype_when(state)
    if name == "tz" and args[0] in ("ask", "keep"):
        if args[0] == "keep":
            return keep_zone(state, ctx)
        new = state.evolve(step=Step.ASK_TZ, return_step=_return_to(state))
        return Outcome(ask_tz_screen(new, ctx), new)
    if name in ("nudge", "pre", "post", "cancel") and (nudge_id := small_int(args[0])):
        return on_nudge_button(name, nudge_id, args[1:], state, ctx)
    if name == "stopall":
        return Outcome((Reply("reminders_stopped", {}),), state, (CancelNudges(),))
    if name == "del" and args[0] in ("ask", "yes", "no"):
        return on_delete(args[0], state, ctx)
    return None


def withdraw(state: State, ctx: Context) -> Outcome:
    """Out of an interview they can't make: the polite note, and nothing more planned. Not
    for a likely scam: no letter to a scammer, steering clear is confirmed instead."""
    if state.scam:
        return steer_clear(state, ctx)
    new = state.evolve(decision="pass", step=Step.PASS, checklist_shown=False)
    keyboard = rows(btn("new_time", "when", "change"), btn("start_over", "nav", "situation"))
    note = replace(withdraw_note(ctx, "cant"), keyboard=keyboard)
    return Outcome((note,), new, (CancelNudges(),))


def navigate(target: str, state: State, ctx: Context) -> Outcome | None:
    """The "Back" buttons: show a step again (state follows, nothing is lost)."""
    screens: dict[str, tuple[Step, Callable[[], Replies]]] = {
        "situation": (Step.SITUATION, lambda: situation_screen()),
        "lean": (Step.LEAN, lambda: lean_screen(state)),
        "menu": (Step.MENU, lambda: menu_screen(ctx, state, "again")),
        "menu_more": (Step.MENU_MORE, lambda: menu_more_screen(ctx)),
        "decision": (Step.DECISION, lambda: decision_screen()),
        "mixed": (Step.MIXED, mixed_screen),
    }
    if target == "here":  # "Neither: go back": the question they were answering, again
        return Outcome(current_screen(state, ctx), state)
    if target not in screens:
        return None
    step, screen = screens[target]
    return Outcome(screen(), state.evolve(step=step))


def on_when_choice(choice: str, state: State, ctx: Context) -> Outcome:
    zone = ctx.zone(state)
    today = ctx.now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    if choice in ("today", "tomorrow"):
        day = today + timedelta(days=1 if choice == "tomorrow" else 0)
        new = state.evolve(step=Step.ASK_WHEN, proposed_at=day.astimezone(UTC))
        return Outcome(ask_time_screen(new, ctx), new)
    if choice in ("week", "nextweek"):
        new = state.evolve(step=Step.ASK_WHEN, proposed_at=None)
        return Outcome((Reply("ask_day_time", {"next": choice == "nextweek"}),), new)
    if choice == "none":
        new = state.evolve(
            interview_pending=True,
            interview_at=None,
            proposed_at=None,
            step=Step.GO if state.decision == "go" else Step.UNSURE,
        )
        effects = (CancelNudges(planner.INTERVIEW_KINDS),)
        return Outcome((Reply("when_none", {}, next_steps_keyboard(new)),), new, effects)
    new = state.evolve(step=Step.ASK_WHEN, proposed_at=None)
    return Outcome(ask_when_screen("change"), new)


def on_when_text(text: str, state: State, ctx: Context) -> Outcome:
    zone = ctx.zone(state)
    parsed = parse_when(text, ctx.now, zone, day=state.proposed_at)
    if parsed is not None and parsed.moment > ctx.now + MAX_AHEAD:
        parsed = None  # "3099" is a typo, not an interview
    if parsed is None:
        return understand(text, state, ctx, expecting="when")
    if not parsed.has_time:
        new = state.evolve(step=Step.ASK_WHEN, proposed_at=parsed.moment)
        return Outcome(ask_time_screen(new, ctx), new)
    return propose(parsed.moment, state, ctx)


def propose(moment: datetime, state: State, ctx: Context) -> Outcome:
    """A time read from the user's words: confirm it back, or say it has passed."""
    if moment <= ctx.now:
        new = state.evolve(step=Step.ASK_WHEN, proposed_at=None)
        return Outcome((Reply("when_past", {}), *ask_when_screen()), new)
    if moment > ctx.now + MAX_AHEAD:
        return Outcome((Reply("when_unclear", {}), *current_screen(state, ctx)), state)
    new = state.evolve(step=Step.CONFIRM_WHEN, proposed_at=moment)
    return Outcome(confirm_when_screen(new, ctx, moment), new)


def confirm_proposed(moment: datetime, state: State, ctx: Context) -> Outcome:
    """ "Yes, that's right" (tapped or typed): the interview time is saved."""
    if state.decision == "pass":
        # A time confirmed before they decided not to go: that "no" stands. (To go after
        # all, they decide again, and are asked the time.)
        return Outcome(current_screen(state, ctx), state)
    return set_interview(state, ctx, moment)


def retype_when(state: State) -> Outcome:
    """ "No, let me retype" (tapped or typed)."""
    new = state.evolve(step=Step.ASK_WHEN, proposed_at=None)
    return Outcome((Reply("when_retype", {}), *ask_when_screen()), new)


def on_confirm_text(text: str, state: State, ctx: Context) -> Outcome:
    """Typed on "Thursday 14:00: right?": yes or no, a correction of the day or the time, a
    place (the zone), or anything else the coach understands."""
    proposed = state.proposed_at
    answer = yes_or_no(text)  # the screen's own question: "…: right?"
    if answer == "yes" and proposed is not None:
        return confirm_proposed(proposed, state, ctx)
    if answer == "no":
        return retype_when(state)
    zone = ctx.zone(state)
    parsed = parse_when(text, ctx.now, zone)
    if parsed is not None and proposed is not None:
        local = proposed.astimezone(zone)
        if not parsed.has_time:  # "no wait, it's Thursday": another day, the same time
            day = parsed.moment.astimezone(zone).date()
            moment = datetime.combine(day, local.time(), tzinfo=zone).astimezone(UTC)
            return propose(moment, state, ctx)
        if is_time_only(text):  # "no, 3pm": the same day, another time
            same_day = parse_when(text, ctx.now, zone, day=proposed)
            if same_day is not None:
                return propose(same_day.moment, state, ctx)
    if parsed is not None:
        return on_when_text(text, state.evolve(step=Step.ASK_WHEN, proposed_at=None), ctx)
    if resolve_timezone(text, ctx.now) is not None:  # "I'm in Toronto"
        return set_timezone(text, state, ctx)
    return understand(text, state, ctx, expecting="when")


def on_nudge_button(
    name: str, nudge_id: int, args: tuple[str, ...], state: State, ctx: Context
) -> Outcome | None:
    choice = args[0] if args else ""
    if name == "cancel":
        # The kind stays cancelled for this interview: a new time or "I'll go" again does not
        # bring it back.
        kinds = {n.kind for n in ctx.pending if n.id == nudge_id} & set(planner.KINDS)
        new = state.evolve(cancelled=tuple(sorted({*state.cancelled, *kinds})))
        return Outcome(nudges_screen(state, ctx, cancelled=nudge_id), new, (CancelNudge(nudge_id),))
    if name == "nudge" and choice == "later":
        tapped = ctx.tapped
        if tapped is None or tapped.id != nudge_id:
            return None  # not this user's nudge (or gone): the unknown-button answer
        until = planner.snooze_until(ctx.now, tapped.deadline, ctx.zone(state), ctx.quiet)
        if until is None:
            return Outcome((Reply("snooze_too_late", {}),), state)
        context = {"until": until, "zone": ctx.zone_name(state)}
        return Outcome(
            (Reply("snoozed", context),), state, (SnoozeNudge(nudge_id, until),), notice="OK"
        )
    if name == "nudge" and choice == "stop":
        return Outcome((Reply("reminders_stopped", {}),), state, (CancelNudges(),))
    if name == "pre" and state.scam:
        # A pep talk sent before the interview was flagged as possible fraud: no good-luck,
        # no new time and no note to the likely scammer.
        if choice == "cant":
            return noting(steer_clear(state, ctx), Decided("pass", state.decision))
        if choice in ("on", "resched"):
            return Outcome(scam_check_screen("go"), state.evolve(step=Step.SCAM))
        return None
    if name == "pre" and choice == "on":
        return Outcome((Reply("pre_on", {}),), state, notice="Good luck!")
    if name == "pre" and choice == "resched":
        new = state.evolve(step=Step.ASK_WHEN, proposed_at=None)
        return Outcome(ask_when_screen("reschedule"), new)
    if name == "pre" and choice == "cant":
        # Ask for another time first; withdrawing is a second, deliberate tap.
        new = state.evolve(attended="no", step=Step.GO)
        keyboard = rows(
            btn("new_time", "when", "change"),
            btn("rather_withdraw", "withdraw"),
            btn("start_over", "nav", "situation"),
        )
        reply = Reply("pre_cant", {"coaching": ctx.kb.coaching}, keyboard)
        cancel = CancelNudges(planner.INTERVIEW_KINDS)
        return Outcome((reply,), new, (cancel,), None, (CantMakeIt(),))
    if name == "post" and choice in ("well", "mixed"):
        new = state.evolve(attended="went_well" if choice == "well" else "mixed", step=Step.DEBRIEF)
        effects: list[Effect] = [CancelNudges((planner.DEBRIEF, planner.FOLLOWUP))]
        if planner.FOLLOWUP not in state.cancelled:
            effects += planner.plan_followup(
                state.interview_at, ctx.now, ctx.zone(state), ctx.quiet
            )
        context = {"items": ctx.kb.coaching.reflection, "how": choice}
        replies = (
            Reply("reflection", context),
            Reply("follow_up_notes", {"coaching": ctx.kb.coaching}),
        )
        return Outcome(replies, new, tuple(effects), None, (Attended(new.attended or ""),))
    if name == "post" and choice == "missed":
        new = state.evolve(attended="no", step=Step.DEBRIEF)
        keyboard = rows(btn("new_time", "when", "change"), btn("start_over", "nav", "situation"))
        cancel = CancelNudges((planner.DEBRIEF, planner.FOLLOWUP))
        missed = Reply("post_missed", {}, keyboard)
        return Outcome((missed,), new, (cancel,), None, (Attended("missed"),))
    return None


def on_delete(choice: str, state: State, ctx: Context) -> Outcome:
    if choice == "ask":
        keyboard = rows(btn("delete_yes", "del", "yes"), btn("delete_no", "del", "no"))
        return Outcome((Reply("delete_confirm", {}, keyboard),), state)
    if choice == "yes":
        return Outcome((Reply("deleted", {}),), State(), (DeleteUserData(),))
    return Outcome((Reply("delete_kept", {}), *current_screen(state, ctx)), state)


# --- entry point -----------------------------------------------------------------------------


def handle(event: Event, state: State, ctx: Context) -> Outcome:
    """One event in, the replies, the new state and the side effects out."""
    if event.kind == "command":
        return on_command(event, state, ctx)
    if event.kind == "button":
        return on_button(event, state, ctx)
    if event.kind == "text":
        text = event.value
        if state.step == Step.CONFIRM_WHEN:
            return on_confirm_text(text, state, ctx)
        if state.step == Step.ASK_WHEN:
            return on_when_text(text, state, ctx)
        if state.step == Step.ASK_TZ:
            return on_zone_text(text, state, ctx)
        if state.step == Step.ASK_RECRUITER:
            return on_question(text, state, ctx)
        if state.step == Step.CONSENT and state.return_step == Step.ASK_WHEN:
            # The consent question stands in for "When is the interview?": a typed time
            # answers that one (the consent buttons keep working, and /privacy has them).
            asking = state.evolve(step=Step.ASK_WHEN, return_step=None, after_consent=None)
            if parse_when(text, ctx.now, ctx.zone(state), day=state.proposed_at) is not None:
                return on_when_text(text, asking, ctx)
        return understand(text, state, ctx)
    return Outcome((Reply("non_text", {}), *current_screen(state, ctx)), state)
