"""The coaching conversation: what happens when a user taps, types or sends anything.

Read top to bottom: the screens (what each step shows), then the handlers for commands,
buttons and text. Everything is a pure function of (event, state, context) -> Outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from bot.engine import buttons as B
from bot.engine.context import Context
from bot.engine.model import (
    Button,
    CancelNudge,
    CancelNudges,
    DeleteUserData,
    Effect,
    Event,
    Keyboard,
    Outcome,
    Reply,
    ScheduleNudge,
    SetOptOut,
    SnoozeNudge,
    State,
    Step,
)
from bot.knowledge.classifier import Classification, interpret
from bot.nudges import planner
from bot.nudges.when import parse_when, resolve_timezone

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


def small_int(text: str) -> int | None:
    """A number from button data, if it fits SQLite's integers (forged data may not)."""
    return int(text) if text.isdigit() and len(text) <= 15 else None


def btn(key: str, action: str, /, *args: str | int, **params: object) -> Button:
    """A button labelled by prompts/buttons.toml entry `key`, rendered with `params`."""
    return Button(key, B.pack(action, *args), params)


def rows(*buttons: Button) -> Keyboard:
    """One button a row: easiest to hit with a thumb."""
    return tuple((b,) for b in buttons)


def in_parts(
    template: str,
    items: Sequence[object],
    keyboard: Keyboard = (),
    size: int = 3,
    **context: object,
) -> Replies:
    """A list too long for one phone screen, as several short messages; buttons on the last."""
    parts = [items[i : i + size] for i in range(0, len(items), size)] or [[]]
    return tuple(
        Reply(
            template,
            {**context, "items": part, "first": n == 0, "last": n == len(parts) - 1},
            keyboard if n == len(parts) - 1 else (),
        )
        for n, part in enumerate(parts)
    )


# --- screens -------------------------------------------------------------------------------


def situation_screen(intro: str = "") -> Replies:
    keyboard = rows(*(btn(f"sit_{s}", "sit", s) for s in SITUATIONS))
    return (Reply("situation", {"intro": intro}, keyboard),)


def lean_screen(state: State) -> Replies:
    keyboard = rows(
        *(btn(f"lean_{lean}", "lean", lean) for lean in LEANS), btn("back", "nav", "situation")
    )
    return (Reply("lean", {"situation": state.situation or "invite"}, keyboard),)


def menu_screen(ctx: Context, mode: str = "first") -> Replies:
    keyboard = rows(
        *(btn("objection", "obj", o, label=ctx.kb.objections[o].label) for o in MENU_FIRST),
        btn("something_else", "nav", "menu_more"),
        btn("back", "nav", "lean"),
    )
    return (Reply("menu", {"mode": mode}, keyboard),)


def menu_more_screen(ctx: Context) -> Replies:
    keyboard = rows(
        *(btn("objection", "obj", o, label=ctx.kb.objections[o].label) for o in MENU_MORE),
        btn("back", "nav", "menu"),
    )
    return (Reply("menu_more", {}, keyboard),)


def argument_screen(ctx: Context, objection: str, index: int) -> Replies:
    item = ctx.kb.objections[objection]
    arguments = item.arguments
    index = min(max(index, 0), len(arguments) - 1)
    more = index + 1 < len(arguments)
    keyboard = rows(
        btn("helps", "ok", objection),
        *([btn("another", "arg", objection, index + 1)] if more else []),
        btn("doubtful", "doubt", objection),
        btn("back", "nav", "menu"),
    )
    context = {
        "objection": item,
        "argument": arguments[index],
        "index": index,
        "total": len(arguments),
        "last": not more,
    }
    return (Reply("argument", context, keyboard),)


def scam_screen(ctx: Context) -> Replies:
    keyboard = rows(btn("back_to_worries", "nav", "menu"), btn("start_over", "nav", "situation"))
    return (Reply("scam", {"coaching": ctx.kb.coaching}, keyboard),)


def decision_screen(mode: str = "plain") -> Replies:
    keyboard = rows(
        *(btn(f"dec_{d}", "dec", d) for d in DECISIONS),
        btn("something_bugs_me", "nav", "menu"),
    )
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
    context = {"moment": moment, "zone": ctx.zone_name(state)}
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
        return menu_screen(ctx, "again")
    if step == Step.MENU_MORE:
        return menu_more_screen(ctx)
    if step == Step.ANSWER and state.objection in ctx.kb.objections:
        return argument_screen(ctx, state.objection, state.arg_index)
    if step == Step.SCAM:
        return scam_screen(ctx)
    if step == Step.DECISION:
        return decision_screen()
    if step == Step.ASK_WHEN:
        return ask_time_screen(state, ctx) if state.proposed_at else ask_when_screen()
    if step == Step.CONFIRM_WHEN and state.proposed_at is not None:
        return confirm_when_screen(state, ctx, state.proposed_at)
    if step == Step.ASK_TZ:
        return ask_tz_screen(state, ctx)
    if step in (Step.GO, Step.UNSURE, Step.PASS, Step.DEBRIEF):
        context = {"state": state, "zone": ctx.zone_name(state)}
        return (Reply("next_steps", context, next_steps_keyboard(state)),)
    return situation_screen()


def next_steps_keyboard(state: State) -> Keyboard:
    if state.decision == "go":
        return rows(btn("change_date", "when", "change"), btn("start_over", "nav", "situation"))
    return rows(btn("talk_again", "nav", "menu"), btn("start_over", "nav", "situation"))


# --- outcomes of the decision ----------------------------------------------------------------


def decide(state: State, ctx: Context, decision: str) -> Outcome:
    coaching = ctx.kb.coaching
    if decision == "go":
        state = state.evolve(decision="go", step=Step.GO)
        # Replace whatever was planned: going again must not double the reminders.
        effects: list[Effect] = [CancelNudges(planner.KINDS)]
        replies: Replies = in_parts("go_checklist", coaching.checklist, soon=False)
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
        state = state.evolve(decision="unsure", step=Step.UNSURE)
        effects = [CancelNudges(planner.KINDS), *plan_for(state, ctx)]
        keyboard = rows(
            btn("talk_again", "nav", "menu"),
            btn("dec_go", "dec", "go"),
            btn("dec_pass", "dec", "pass"),
        )
        replies = in_parts("unsure", coaching.gains, keyboard)
        if state.interview_at is None and not state.interview_pending:
            state = state.evolve(step=Step.ASK_WHEN, proposed_at=None)
            replies += ask_when_screen("unsure")
        return Outcome(replies, state, tuple(effects))
    state = state.evolve(decision="pass", step=Step.PASS)
    keyboard = rows(btn("actually_go", "dec", "go"), btn("start_over", "nav", "situation"))
    replies = (
        *in_parts("pass", coaching.exceptions),
        Reply("withdraw_note", {"coaching": coaching}, keyboard),
    )
    return Outcome(replies, state, (CancelNudges(),))


def plan_for(state: State, ctx: Context) -> list[Effect]:
    """The nudges that fit the user's decision and interview time, from now on."""
    zone, now, quiet = ctx.zone(state), ctx.now, ctx.quiet
    interview = state.interview_at if state.interview_at and state.interview_at > now else None
    if state.decision == "unsure":
        return [*planner.plan_checkbacks(now, interview, zone, quiet)]
    if state.decision == "go" and interview is not None:
        return [*planner.plan_interview(interview, now, zone, quiet)]
    return []


def plan_context(state: State, ctx: Context, effects: Sequence[Effect]) -> dict[str, object]:
    scheduled = [e for e in effects if isinstance(e, ScheduleNudge)]
    return {"state": state, "zone": ctx.zone_name(state), "nudges": scheduled}


def set_interview(state: State, ctx: Context, moment: datetime) -> Outcome:
    if moment <= ctx.now:
        state = state.evolve(step=Step.ASK_WHEN, proposed_at=None)
        return Outcome((Reply("when_past", {}), *ask_when_screen()), state)
    if state.decision is None:
        state = state.evolve(decision="go")  # "I'm going and want to prepare"
    state = state.evolve(
        interview_at=moment, interview_pending=False, proposed_at=None, attended=None
    )
    state = state.evolve(step=Step.GO if state.decision == "go" else Step.UNSURE)
    effects: list[Effect] = [CancelNudges(planner.KINDS), *plan_for(state, ctx)]
    replies: Replies = (
        Reply("plan", plan_context(state, ctx, effects), next_steps_keyboard(state)),
    )
    if state.decision == "go" and moment - ctx.now <= planner.PREP_ONLY_IF_AWAY:
        replies += in_parts("go_checklist", ctx.kb.coaching.checklist, soon=True)
    return Outcome(replies, state, tuple(effects))


# --- objections ------------------------------------------------------------------------------


def answer_objection(state: State, ctx: Context, objection: str, index: int = 0) -> Outcome:
    if objection == "scam_suspected":
        return Outcome(scam_screen(ctx), state.evolve(step=Step.SCAM, objection=objection))
    if objection not in ctx.kb.objections or not ctx.kb.objections[objection].arguments:
        return Outcome(menu_screen(ctx, "again"), state.evolve(step=Step.MENU))
    index = min(max(index, 0), len(ctx.kb.objections[objection].arguments) - 1)
    new = state.evolve(step=Step.ANSWER, objection=objection, arg_index=index)
    return Outcome(argument_screen(ctx, objection, index), new)


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


def understand(text: str, state: State, ctx: Context) -> Outcome:
    """Free text: answer a clear objection, ask when two are close, else show the menu."""
    result = ctx.classifier.classify(text)
    verdict = interpret(result)
    if looks_like_scam(result, verdict):
        return answer_objection(state, ctx, "scam_suspected")
    if verdict == "confident":
        if result.objection == "other":
            return Outcome((Reply("smalltalk", {}), *current_screen(state, ctx)), state)
        return answer_objection(state, ctx, result.objection)
    if verdict == "ambiguous":
        options = [result.objection, *(a.objection for a in result.alternatives[:1])]
        options = [o for o in options if o in ctx.kb.objections and o != "other"]
        if options:
            keyboard = rows(
                *(btn("objection", "obj", o, label=ctx.kb.objections[o].label) for o in options),
                btn("neither", "nav", "menu"),
            )
            context = {"options": [ctx.kb.objections[o] for o in options]}
            return Outcome((Reply("did_you_mean", context, keyboard),), state)
    return Outcome(
        (Reply("not_understood", {}), *menu_screen(ctx, "again")), state.evolve(step=Step.MENU)
    )


# --- commands --------------------------------------------------------------------------------


def on_command(event: Event, state: State, ctx: Context) -> Outcome:
    name = event.value.lower()
    if name in ("start", "restart"):
        fresh = State(
            timezone=state.timezone,
            interview_at=state.interview_at,
            interview_pending=state.interview_pending,
            decision=state.decision if state.interview_at else None,
        )
        first = event.first_name.strip()[:MAX_NAME]
        template = "welcome" if name == "start" else "restart"
        return Outcome((Reply(template, {"first_name": first}), *situation_screen()), fresh)
    if name == "help":
        return Outcome((Reply("help", {}), *current_screen(state, ctx)), state)
    if name == "about":
        return Outcome((Reply("about", {"sources": list(ctx.kb.sources.values())}),), state)
    if name == "mydata":
        context = {"state": state, "zone": ctx.zone_name(state), "pending": list(ctx.pending)}
        keyboard = rows(btn("delete_data", "del", "ask"))
        return Outcome((Reply("mydata", context, keyboard),), state)
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
    if name == "stop":
        return Outcome((Reply("stopped", {}),), state, (CancelNudges(), SetOptOut(True)))
    return Outcome((Reply("unknown_command", {}), *current_screen(state, ctx)), state)


def _return_to(state: State) -> Step:
    return state.return_step if state.step == Step.ASK_TZ and state.return_step else state.step


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


def set_timezone(text: str, state: State, ctx: Context) -> Outcome:
    zone = resolve_timezone(text, ctx.now)
    if zone is None:
        new = state.evolve(step=Step.ASK_TZ, return_step=_return_to(state))
        return Outcome((Reply("tz_unknown", {}), *ask_tz_screen(new, ctx)), new)
    back = state.return_step if state.step == Step.ASK_TZ else state.step
    new = state.evolve(timezone=zone, step=back or Step.SITUATION, return_step=None)
    effects: list[Effect] = []
    if new.interview_at and new.interview_at > ctx.now and new.decision in ("go", "unsure"):
        # Quiet hours depend on the zone: plan again in the new one.
        effects = [CancelNudges(planner.KINDS), *plan_for(new, ctx)]
    replies: Replies = (Reply("tz_set", {"zone": zone, "now": ctx.now}),)
    if new.step == Step.CONFIRM_WHEN and new.proposed_at is not None:
        # "3pm" meant 3pm where they are: read the proposed time again in the new zone.
        return Outcome(
            (*replies, Reply("tz_retype", {})),
            new.evolve(step=Step.ASK_WHEN, proposed_at=None),
            tuple(effects),
        )
    return Outcome(replies + current_screen(new, ctx), new, tuple(effects))


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
        return Outcome(menu_screen(ctx), new.evolve(step=Step.MENU))
    if name == "nav":
        return navigate(args[0], state, ctx)
    if name == "obj" and args[0] in ctx.kb.objections:
        return answer_objection(state, ctx, args[0])
    if name == "arg" and args[0] in ctx.kb.objections and args[1].isdigit():
        return answer_objection(state, ctx, args[0], int(args[1]))
    if name == "ok" and args[0] in ctx.kb.objections:
        return Outcome(decision_screen("helped"), state.evolve(step=Step.DECISION))
    if name == "doubt" and args[0] in ctx.kb.objections:
        return Outcome(menu_screen(ctx, "doubtful"), state.evolve(step=Step.MENU))
    if name == "dec" and args[0] in DECISIONS:
        return decide(state, ctx, args[0])
    if name == "type":
        return Outcome((Reply("type_it", {}),), state.evolve(step=Step.TYPE_IT))
    if name == "when" and args[0] in WHEN_CHOICES:
        return on_when_choice(args[0], state, ctx)
    if name == "whenok" and (minutes := small_int(args[0])) is not None:
        if minutes > (ctx.now + MAX_AHEAD).timestamp() // 60:
            return None  # forged: nobody confirmed an interview that far away
        return set_interview(state, ctx, datetime.fromtimestamp(minutes * 60, UTC))
    if name == "whenno":
        new = state.evolve(step=Step.ASK_WHEN, proposed_at=None)
        return Outcome((Reply("when_retype", {}), *ask_when_screen()), new)
    if name == "tz" and args[0] in ("ask", "keep"):
        if args[0] == "keep":
            if state.step != Step.ASK_TZ:  # a stale "Keep this zone": nothing to leave
                return Outcome(current_screen(state, ctx), state)
            back = state.return_step or Step.SITUATION
            new = state.evolve(step=back, return_step=None)
            return Outcome(current_screen(new, ctx), new)
        new = state.evolve(step=Step.ASK_TZ, return_step=_return_to(state))
        return Outcome(ask_tz_screen(new, ctx), new)
    if name in ("nudge", "pre", "post", "cancel") and (nudge_id := small_int(args[0])):
        return on_nudge_button(name, nudge_id, args[1:], state, ctx)
    if name == "stopall":
        return Outcome((Reply("reminders_stopped", {}),), state, (CancelNudges(),))
    if name == "del" and args[0] in ("ask", "yes", "no"):
        return on_delete(args[0], state, ctx)
    return None


def navigate(target: str, state: State, ctx: Context) -> Outcome | None:
    """The "Back" buttons: show a step again (state follows, nothing is lost)."""
    screens: dict[str, tuple[Step, Callable[[], Replies]]] = {
        "situation": (Step.SITUATION, lambda: situation_screen()),
        "lean": (Step.LEAN, lambda: lean_screen(state)),
        "menu": (Step.MENU, lambda: menu_screen(ctx, "again")),
        "menu_more": (Step.MENU_MORE, lambda: menu_more_screen(ctx)),
        "decision": (Step.DECISION, lambda: decision_screen()),
    }
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
        result = ctx.classifier.classify(text)
        if interpret(result) == "confident" and result.objection != "other":
            return answer_objection(state, ctx, result.objection)
        return Outcome((Reply("when_unclear", {}), *current_screen(state, ctx)), state)
    if not parsed.has_time:
        new = state.evolve(step=Step.ASK_WHEN, proposed_at=parsed.moment)
        return Outcome(ask_time_screen(new, ctx), new)
    if parsed.moment <= ctx.now:
        new = state.evolve(step=Step.ASK_WHEN, proposed_at=None)
        return Outcome((Reply("when_past", {}), *ask_when_screen()), new)
    new = state.evolve(step=Step.CONFIRM_WHEN, proposed_at=parsed.moment)
    return Outcome(confirm_when_screen(new, ctx, parsed.moment), new)


def on_nudge_button(
    name: str, nudge_id: int, args: tuple[str, ...], state: State, ctx: Context
) -> Outcome | None:
    choice = args[0] if args else ""
    if name == "cancel":
        return Outcome(
            nudges_screen(state, ctx, cancelled=nudge_id), state, (CancelNudge(nudge_id),)
        )
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
    if name == "pre" and choice == "on":
        return Outcome((Reply("pre_on", {}),), state, notice="Good luck!")
    if name == "pre" and choice == "resched":
        new = state.evolve(step=Step.ASK_WHEN, proposed_at=None)
        return Outcome(ask_when_screen("reschedule"), new)
    if name == "pre" and choice == "cant":
        new = state.evolve(attended="no", step=Step.PASS)
        keyboard = rows(btn("new_time", "when", "change"), btn("start_over", "nav", "situation"))
        reply = Reply("pre_cant", {"coaching": ctx.kb.coaching}, keyboard)
        return Outcome((reply,), new, (CancelNudges(planner.INTERVIEW_KINDS),))
    if name == "post" and choice in ("well", "mixed"):
        new = state.evolve(attended="went_well" if choice == "well" else "mixed", step=Step.DEBRIEF)
        effects: list[Effect] = [CancelNudges((planner.DEBRIEF, planner.FOLLOWUP))]
        effects += planner.plan_followup(state.interview_at, ctx.now, ctx.zone(state), ctx.quiet)
        replies = (
            *in_parts("reflection", ctx.kb.coaching.reflection, size=2, how=choice),
            Reply("follow_up_notes", {"coaching": ctx.kb.coaching}),
        )
        return Outcome(replies, new, tuple(effects))
    if name == "post" and choice == "missed":
        new = state.evolve(attended="no", step=Step.DEBRIEF)
        keyboard = rows(btn("new_time", "when", "change"), btn("start_over", "nav", "situation"))
        effects = [CancelNudges((planner.DEBRIEF, planner.FOLLOWUP))]
        return Outcome((Reply("post_missed", {}, keyboard),), new, tuple(effects))
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
            # A correction typed on the confirm screen is a new date, not a time on that day.
            return on_when_text(text, state.evolve(proposed_at=None), ctx)
        if state.step == Step.ASK_WHEN:
            return on_when_text(text, state, ctx)
        if state.step == Step.ASK_TZ:
            return set_timezone(text, state, ctx)
        return understand(text, state, ctx)
    return Outcome((Reply("non_text", {"kind": event.value}), *current_screen(state, ctx)), state)
