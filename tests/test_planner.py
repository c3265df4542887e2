"""Nudge planning with fixed datetimes, and what a due nudge becomes (decide_nudge)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.engine import buttons as B
from bot.engine import planner
from bot.engine.decide import Defer, Expire, Send
from bot.engine.model import PendingNudge, ScheduleNudge, State, Step
from bot.engine.nudging import decide_nudge
from bot.engine.planner import QuietHours
from bot.knowledge.base import load_default
from bot.render import Renderer

PARIS = ZoneInfo("Europe/Paris")
TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
QUIET = QuietHours()  # 21:00 to 08:00
NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # Wednesday, 10:00 in Paris


def by_kind(plan: list[ScheduleNudge]) -> dict[str, ScheduleNudge]:
    found = {n.kind: n for n in plan}
    assert len(found) == len(plan), "one nudge of each kind at most"
    return found


# --- quiet hours -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        (time(20, 59), False),
        (time(21, 0), True),
        (time(23, 59), True),
        (time(0, 0), True),
        (time(7, 59), True),
        (time(8, 0), False),
        (time(12, 0), False),
    ],
)
def test_default_quiet_hours_span_midnight(local: time, quiet: bool) -> None:
    assert QUIET.contains(local) is quiet


def test_quiet_hours_within_a_day_and_disabled() -> None:
    siesta = QuietHours(time(13, 0), time(15, 0))
    assert siesta.contains(time(14, 0)) and not siesta.contains(time(15, 0))
    assert not siesta.contains(time(12, 59))
    off = QuietHours(time(9, 0), time(9, 0))
    assert not any(off.contains(time(h, m)) for h in range(24) for m in (0, 30))


def test_early_morning_in_tokyo_moves_to_eight_tokyo_time() -> None:
    due = datetime(2026, 3, 10, 6, 0, tzinfo=TOKYO).astimezone(UTC)
    moved = planner.respect_quiet_hours(due, None, TOKYO, QUIET)
    assert moved == datetime(2026, 3, 10, 8, 0, tzinfo=TOKYO)
    assert moved is not None and moved.tzinfo == UTC  # stays in the caller's zone


def test_late_evening_in_paris_moves_to_eight_next_morning() -> None:
    due = datetime(2026, 3, 10, 22, 30, tzinfo=PARIS).astimezone(UTC)
    moved = planner.respect_quiet_hours(due, None, PARIS, QUIET)
    assert moved == datetime(2026, 3, 11, 8, 0, tzinfo=PARIS)


def test_the_same_utc_moment_is_quiet_in_one_zone_and_not_another() -> None:
    due = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)  # 12:00 Tokyo, 04:00 Paris, 22:00 NY
    assert planner.respect_quiet_hours(due, None, TOKYO, QUIET) == due
    assert planner.respect_quiet_hours(due, None, PARIS, QUIET) == datetime(
        2026, 3, 10, 8, 0, tzinfo=PARIS
    )
    assert planner.respect_quiet_hours(due, None, NEW_YORK, QUIET) == datetime(
        2026, 3, 10, 8, 0, tzinfo=NEW_YORK
    )


def test_a_move_past_the_deadline_drops_the_nudge() -> None:
    due = datetime(2026, 3, 10, 6, 0, tzinfo=TOKYO)
    deadline = datetime(2026, 3, 10, 7, 30, tzinfo=TOKYO)
    assert planner.respect_quiet_hours(due, deadline, TOKYO, QUIET) is None
    # Landing exactly on the deadline is too late as well.
    assert planner.respect_quiet_hours(due, due.replace(hour=8), TOKYO, QUIET) is None
    assert planner.respect_quiet_hours(due, due.replace(hour=9), TOKYO, QUIET) is not None


def test_outside_quiet_hours_only_the_deadline_matters() -> None:
    due = datetime(2026, 3, 10, 12, 0, tzinfo=PARIS)
    assert planner.respect_quiet_hours(due, None, PARIS, QUIET) == due
    assert planner.respect_quiet_hours(due, due + timedelta(minutes=1), PARIS, QUIET) == due
    assert planner.respect_quiet_hours(due, due, PARIS, QUIET) is None


def test_disabled_quiet_hours_never_move_anything() -> None:
    off = QuietHours(time(0, 0), time(0, 0))
    due = datetime(2026, 3, 10, 3, 0, tzinfo=PARIS)
    assert planner.respect_quiet_hours(due, None, PARIS, off) == due


def test_quiet_hours_across_a_dst_change() -> None:
    # Europe's clocks go forward on Sunday 29 March 2026: 08:00 that morning is 06:00 UTC.
    due = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # 00:30 CET on the 29th
    moved = planner.respect_quiet_hours(due, None, PARIS, QUIET)
    assert moved == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)


# --- plan_interview --------------------------------------------------------------------------


def test_interview_plan_prep_pep_debrief() -> None:
    interview = datetime(2026, 3, 10, 15, 0, tzinfo=PARIS)
    plan = by_kind(planner.plan_interview(interview, NOW, PARIS, QUIET))
    assert set(plan) == {planner.PREP, planner.PEP, planner.DEBRIEF}
    assert plan["prep"].due_at == interview - timedelta(hours=24)
    assert plan["pep"].due_at == interview - timedelta(hours=2)
    assert plan["debrief"].due_at == interview + timedelta(hours=3)
    # Each has a deadline after which it no longer makes sense (README's table): the
    # checklist until 2 h before, the pep talk until the interview, the debrief for a week.
    assert plan["prep"].deadline == interview - timedelta(hours=2)
    assert plan["pep"].deadline == interview
    assert plan["debrief"].deadline == interview + timedelta(days=7)


def test_interview_less_than_30_hours_away_has_no_prep() -> None:
    interview = NOW + timedelta(hours=29)
    plan = by_kind(planner.plan_interview(interview, NOW, ZoneInfo("UTC"), QUIET))
    assert planner.PREP not in plan
    assert planner.PEP in plan and planner.DEBRIEF in plan


def test_interview_within_two_hours_has_only_the_debrief() -> None:
    interview = NOW + timedelta(minutes=90)
    plan = by_kind(planner.plan_interview(interview, NOW, ZoneInfo("UTC"), QUIET))
    assert set(plan) == {planner.DEBRIEF}


def test_pep_before_an_early_interview_in_tokyo_waits_for_eight() -> None:
    interview = datetime(2026, 3, 10, 8, 30, tzinfo=TOKYO)  # pep due 06:30: quiet
    plan = by_kind(planner.plan_interview(interview, NOW, TOKYO, QUIET))
    assert plan["pep"].due_at == datetime(2026, 3, 10, 8, 0, tzinfo=TOKYO)
    assert plan["pep"].due_at == datetime(2026, 3, 9, 23, 0, tzinfo=UTC)


def test_pep_before_an_eight_oclock_interview_is_dropped() -> None:
    interview = datetime(2026, 3, 10, 8, 0, tzinfo=TOKYO)  # pep would land on the interview
    plan = by_kind(planner.plan_interview(interview, NOW, TOKYO, QUIET))
    assert planner.PEP not in plan
    assert planner.PREP in plan


def test_debrief_after_an_evening_interview_waits_for_the_morning() -> None:
    interview = datetime(2026, 3, 10, 19, 0, tzinfo=PARIS)  # +3 h = 22:00
    plan = by_kind(planner.plan_interview(interview, NOW, PARIS, QUIET))
    assert plan["debrief"].due_at == datetime(2026, 3, 11, 8, 0, tzinfo=PARIS)


def test_an_interview_already_over_still_gets_a_debrief_now() -> None:
    # Started an hour ago: "How did it go?" at its usual time, 3 h after the start.
    interview = NOW - timedelta(hours=1)
    plan = by_kind(planner.plan_interview(interview, NOW, ZoneInfo("UTC"), QUIET))
    assert set(plan) == {planner.DEBRIEF}
    assert plan["debrief"].due_at == NOW + timedelta(hours=2)
    # Over for longer than that: asked now, not in the past.
    interview = NOW - timedelta(hours=5)
    plan = by_kind(planner.plan_interview(interview, NOW, ZoneInfo("UTC"), QUIET))
    assert plan["debrief"].due_at == NOW
    assert plan["debrief"].deadline == interview + timedelta(days=7)


# --- check-backs -----------------------------------------------------------------------------


def test_checkbacks_after_one_four_and_seven_days() -> None:
    plan = planner.plan_checkbacks(NOW, None, PARIS, QUIET)
    assert [n.kind for n in plan] == [planner.CHECKBACK] * 3
    assert [n.due_at for n in plan] == [NOW + timedelta(days=d) for d in (1, 4, 7)]
    # README: each one is good for 2 days, then it is dropped rather than sent late.
    assert [n.deadline for n in plan] == [NOW + timedelta(days=d + 2) for d in (1, 4, 7)]


def test_checkbacks_are_capped_by_the_interview() -> None:
    interview = NOW + timedelta(days=5)
    plan = planner.plan_checkbacks(NOW, interview, PARIS, QUIET)
    assert [n.due_at for n in plan] == [NOW + timedelta(days=1), NOW + timedelta(days=4)]
    for n in plan:
        assert n.deadline is not None and n.deadline <= interview
    assert plan[-1].deadline == interview


def test_no_checkbacks_when_the_interview_is_tomorrow_morning() -> None:
    assert planner.plan_checkbacks(NOW, NOW + timedelta(hours=20), PARIS, QUIET) == []


def test_checkbacks_planned_late_in_the_evening_arrive_in_the_morning() -> None:
    late = datetime(2026, 3, 4, 22, 15, tzinfo=PARIS)
    plan = planner.plan_checkbacks(late.astimezone(UTC), None, PARIS, QUIET)
    assert [n.due_at for n in plan] == [
        datetime(2026, 3, day, 8, 0, tzinfo=PARIS) for day in (6, 9, 12)
    ]
    # The 2-day window counts from the day it was meant for (22:15 on the 5th, 8th, 11th).
    assert [n.deadline for n in plan] == [
        datetime(2026, 3, day, 22, 15, tzinfo=PARIS) for day in (7, 10, 13)
    ]


# --- follow-up and snooze --------------------------------------------------------------------


def test_followup_a_week_after_the_interview() -> None:
    interview = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    plan = planner.plan_followup(interview, interview + timedelta(hours=3), ZoneInfo("UTC"), QUIET)
    assert len(plan) == 1 and plan[0].kind == planner.FOLLOWUP
    assert plan[0].due_at == interview + timedelta(days=7)
    assert plan[0].deadline is not None and plan[0].deadline > plan[0].due_at


def test_followup_for_a_long_past_interview_is_still_in_the_future() -> None:
    # A month later they tell us how it went: the follow-up comes the next day, for a week.
    interview = NOW - timedelta(days=30)
    plan = planner.plan_followup(interview, NOW, ZoneInfo("UTC"), QUIET)
    assert [(n.kind, n.due_at, n.deadline) for n in plan] == [
        (planner.FOLLOWUP, NOW + timedelta(days=1), NOW + timedelta(days=8))
    ]
    # Six and a half days after: still at least a day to send the note.
    recent = NOW - timedelta(days=6, hours=12)
    (followup,) = planner.plan_followup(recent, NOW, ZoneInfo("UTC"), QUIET)
    assert followup.due_at == NOW + timedelta(days=1)
    # Five days after: a week after the interview, two days from now.
    (followup,) = planner.plan_followup(NOW - timedelta(days=5), NOW, ZoneInfo("UTC"), QUIET)
    assert followup.due_at == NOW + timedelta(days=2)


def test_followup_without_an_interview_time_comes_a_week_after_the_answer() -> None:
    (followup,) = planner.plan_followup(None, NOW, ZoneInfo("UTC"), QUIET)
    assert followup.due_at == NOW + timedelta(days=7)
    assert followup.deadline == NOW + timedelta(days=14)


def test_followup_due_in_the_night_waits_for_the_morning_in_the_users_zone() -> None:
    interview = datetime(2026, 3, 4, 22, 0, tzinfo=TOKYO)  # a week later 22:00 Tokyo: quiet
    (followup,) = planner.plan_followup(interview, interview + timedelta(hours=3), TOKYO, QUIET)
    assert followup.due_at == datetime(2026, 3, 12, 8, 0, tzinfo=TOKYO)


def test_snooze_three_hours_later_or_after_quiet_hours_or_not_at_all() -> None:
    utc = ZoneInfo("UTC")
    assert planner.snooze_until(NOW, None, utc, QUIET) == NOW + timedelta(hours=3)
    evening = datetime(2026, 3, 4, 19, 30, tzinfo=PARIS)
    assert planner.snooze_until(evening, None, PARIS, QUIET) == datetime(
        2026, 3, 5, 8, 0, tzinfo=PARIS
    )
    assert planner.snooze_until(NOW, NOW + timedelta(hours=2), utc, QUIET) is None


# --- decide_nudge ----------------------------------------------------------------------------

INTERVIEW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # 15:00 Paris
GOING = State(step=Step.GO, decision="go", timezone="Europe/Paris", interview_at=INTERVIEW)


def row(kind: str, due: datetime, deadline: datetime | None, nudge_id: int = 7) -> PendingNudge:
    return PendingNudge(nudge_id, kind, due, deadline)


def decide(nudge: PendingNudge, state: State | None, now: datetime) -> Send | Defer | Expire:
    return decide_nudge(nudge, state, now, load_default(), "UTC", QUIET)


def test_a_valid_pep_is_sent_with_its_buttons() -> None:
    due = INTERVIEW - timedelta(hours=2)
    decision = decide(row(planner.PEP, due, INTERVIEW, nudge_id=12), GOING, due)
    assert isinstance(decision, Send)
    (reply,) = decision.replies
    assert reply.template == "nudge_pep"
    actions = {B.unpack(b.data) for r in reply.keyboard for b in r}
    for choice in ("on", "resched", "cant"):
        assert B.Action("pre", ("12", choice)) in actions
    assert B.Action("nudge", ("12", "later")) in actions
    assert B.Action("nudge", ("12", "stop")) in actions
    text = Renderer().render(reply).plain_text
    assert "15:00" in text  # the interview, in the user's zone


def test_debrief_and_checkback_carry_their_answer_buttons() -> None:
    after = INTERVIEW + timedelta(hours=3)
    debrief = decide(row(planner.DEBRIEF, after, INTERVIEW + timedelta(days=7)), GOING, after)
    assert isinstance(debrief, Send)
    names = {B.unpack(b.data) for r in debrief.replies[0].keyboard for b in r}
    assert {B.Action("post", ("7", c)) for c in ("well", "mixed", "missed")} <= names
    unsure = GOING.evolve(decision="unsure", step=Step.UNSURE)
    check = decide(row(planner.CHECKBACK, NOW, NOW + timedelta(days=2)), unsure, NOW)
    assert isinstance(check, Send)
    names = {B.unpack(b.data) for r in check.replies[0].keyboard for b in r}
    assert {B.Action("dec", (d,)) for d in ("go", "unsure", "pass")} <= names


def test_nothing_is_sent_for_an_interview_flagged_as_possible_fraud() -> None:
    flagged = GOING.evolve(scam=True)
    due = INTERVIEW - timedelta(hours=2)
    for kind in planner.KINDS:
        nudge = row(kind, due, None)
        assert decide(nudge, flagged, due) == Expire("flagged as possible fraud"), kind
    # The same pep talk, once it checked out, is sent.
    assert isinstance(decide(row(planner.PEP, due, INTERVIEW), GOING, due), Send)


def test_expired_after_the_deadline() -> None:
    deadline = INTERVIEW - timedelta(hours=2)
    decision = decide(row(planner.PREP, NOW, deadline), GOING, deadline + timedelta(seconds=1))
    assert decision == Expire("deadline passed")
    # At the deadline itself it is too late as well; a second before, it is sent.
    assert decide(row(planner.PREP, NOW, deadline), GOING, deadline) == Expire("deadline passed")
    before = decide(row(planner.PREP, NOW, deadline), GOING, deadline - timedelta(seconds=1))
    assert isinstance(before, Send) and before.replies[0].template == "nudge_prep"


def test_checkback_expires_once_the_user_decided() -> None:
    nudge = row(planner.CHECKBACK, NOW, NOW + timedelta(days=2))
    assert decide(nudge, GOING, NOW) == Expire("already decided")
    assert decide(nudge, GOING.evolve(decision="pass"), NOW) == Expire("already decided")
    for undecided in (State(decision=None), State(decision="unsure")):
        sent = decide(nudge, undecided, NOW)
        assert isinstance(sent, Send) and sent.replies[0].template == "nudge_checkback"


def test_pre_interview_reminder_expires_once_the_interview_started() -> None:
    # No deadline on the row, so it is the interview time itself that stops it.
    started = INTERVIEW + timedelta(minutes=5)
    gone = Expire("no upcoming interview")
    for kind in (planner.PREP, planner.PEP):
        assert decide(row(kind, started, None), GOING, started) == gone
        assert decide(row(kind, INTERVIEW, None), GOING, INTERVIEW) == gone  # starting now
    # ... or when the user no longer goes, or never said when.
    due = INTERVIEW - timedelta(hours=2)
    assert decide(row(planner.PEP, due, None), GOING.evolve(decision="pass"), due) == gone
    no_date = GOING.evolve(interview_at=None)
    assert decide(row(planner.PEP, due, None), no_date, due) == gone
    sent = decide(row(planner.PEP, due, None), GOING, due)
    assert isinstance(sent, Send) and sent.replies[0].template == "nudge_pep"


def test_debrief_expires_once_answered_and_followup_needs_an_answer() -> None:
    after = INTERVIEW + timedelta(hours=3)
    answered = GOING.evolve(attended="went_well")
    debrief = row(planner.DEBRIEF, after, None)
    assert decide(debrief, answered, after) == Expire("nothing to debrief")
    assert decide(debrief, GOING.evolve(decision="pass"), after) == Expire("nothing to debrief")
    assert decide(debrief, GOING.evolve(interview_at=None), after) == Expire("nothing to debrief")
    asked = decide(debrief, GOING, after)
    assert isinstance(asked, Send) and asked.replies[0].template == "nudge_debrief"
    week = INTERVIEW + timedelta(days=7)
    for how in ("went_well", "mixed"):
        sent = decide(row(planner.FOLLOWUP, week, None), GOING.evolve(attended=how), week)
        assert isinstance(sent, Send) and sent.replies[0].template == "nudge_followup"
    nothing = Expire("no interview to follow up")
    assert decide(row(planner.FOLLOWUP, week, None), GOING, week) == nothing
    assert decide(row(planner.FOLLOWUP, week, None), GOING.evolve(attended="no"), week) == nothing


def test_unknown_kind_or_user_gone_expires() -> None:
    assert decide(row("horoscope", NOW, None), GOING, NOW) == Expire("unknown kind horoscope")
    assert decide(row(planner.PEP, NOW, INTERVIEW), None, NOW) == Expire("user gone")


def test_deferred_during_quiet_hours_in_the_users_zone() -> None:
    night = datetime(2026, 3, 4, 23, 0, tzinfo=PARIS)
    unsure = State(decision="unsure", timezone="Europe/Paris")
    decision = decide(row(planner.CHECKBACK, night, night + timedelta(days=2)), unsure, night)
    assert decision == Defer(datetime(2026, 3, 5, 8, 0, tzinfo=PARIS))
    # The same moment is 17:00 in New York (sent at once) and 07:00 in Tokyo (08:00 there).
    in_new_york = unsure.evolve(timezone="America/New_York")
    nudge = row(planner.CHECKBACK, night, night + timedelta(days=2))
    sent = decide(nudge, in_new_york, night)
    assert isinstance(sent, Send) and sent.replies[0].context["zone"] == "America/New_York"
    in_tokyo = unsure.evolve(timezone="Asia/Tokyo")
    assert decide(nudge, in_tokyo, night) == Defer(datetime(2026, 3, 5, 8, 0, tzinfo=TOKYO))


def test_quiet_hours_lasting_past_the_deadline_expire() -> None:
    night = datetime(2026, 3, 4, 23, 0, tzinfo=PARIS)
    unsure = State(decision="unsure", timezone="Europe/Paris")
    nudge = row(planner.CHECKBACK, night, night + timedelta(hours=2))
    assert decide(nudge, unsure, night) == Expire("quiet hours last past the deadline")


def test_a_broken_stored_zone_falls_back_to_utc() -> None:
    state = State(decision="unsure", timezone="Mars/Olympus_Mons")
    noon = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    decision = decide(row(planner.CHECKBACK, noon, None), state, noon)
    assert isinstance(decision, Send)
    assert decision.replies[0].context["zone"] == "UTC"
    Renderer().render(decision.replies[0])
    # Quiet hours are UTC's too: 23:00 UTC waits until 08:00 UTC.
    night = datetime(2026, 3, 4, 23, 0, tzinfo=UTC)
    deferred = decide(row(planner.CHECKBACK, night, None), state, night)
    assert deferred == Defer(datetime(2026, 3, 5, 8, 0, tzinfo=UTC))


# --- boundaries and quiet windows of any shape -----------------------------------------------

SIESTA = QuietHours(time(13, 0), time(15, 0))  # allowed by the settings: a window within a day


def test_a_daytime_quiet_window_starts_at_its_first_minute() -> None:
    assert SIESTA.contains(time(13, 0))
    assert SIESTA.contains(time(14, 59))
    assert not SIESTA.contains(time(15, 0))
    assert not SIESTA.contains(time(21, 30)) and not SIESTA.contains(time(3, 0))


@pytest.mark.parametrize(
    ("due", "sent"),
    [
        (time(13, 0), time(15, 0)),
        (time(14, 10), time(15, 0)),
        (time(12, 59), time(12, 59)),
        (time(15, 0), time(15, 0)),
        (time(23, 0), time(23, 0)),  # the night is not quiet with this setting
    ],
)
def test_a_nudge_due_in_a_daytime_quiet_window_moves_to_its_end_the_same_day(
    due: time, sent: time
) -> None:
    moment = datetime.combine(datetime(2026, 3, 10).date(), due, tzinfo=PARIS)
    moved = planner.respect_quiet_hours(moment.astimezone(UTC), None, PARIS, SIESTA)
    assert moved == datetime.combine(moment.date(), sent, tzinfo=PARIS)


def test_planning_with_a_daytime_quiet_window() -> None:
    # Decided at 13:30 in Paris: the check-ins at 13:30 on later days move to 15:00.
    decided = datetime(2026, 3, 4, 13, 30, tzinfo=PARIS)
    plan = planner.plan_checkbacks(decided.astimezone(UTC), None, PARIS, SIESTA)
    assert [n.due_at for n in plan] == [
        datetime(2026, 3, day, 15, 0, tzinfo=PARIS) for day in (5, 8, 11)
    ]
    # An interview at 16:00: its pep talk (14:00) waits until 15:00; its checklist the day
    # before at 16:00 and the debrief at 19:00 are outside the window.
    interview = datetime(2026, 3, 10, 16, 0, tzinfo=PARIS)
    plan_by_kind = by_kind(planner.plan_interview(interview, NOW, PARIS, SIESTA))
    assert plan_by_kind["pep"].due_at == datetime(2026, 3, 10, 15, 0, tzinfo=PARIS)
    assert plan_by_kind["prep"].due_at == datetime(2026, 3, 9, 16, 0, tzinfo=PARIS)
    assert plan_by_kind["debrief"].due_at == datetime(2026, 3, 10, 19, 0, tzinfo=PARIS)


def test_the_moved_time_is_given_in_the_zone_it_came_in() -> None:
    due = datetime(2026, 3, 10, 6, 0, tzinfo=TOKYO)
    moved = planner.respect_quiet_hours(due, None, TOKYO, QUIET)
    assert moved == datetime(2026, 3, 10, 8, 0, tzinfo=TOKYO)
    assert moved is not None and moved.utcoffset() == timedelta(hours=9)


def test_the_checklist_is_planned_only_for_an_interview_more_than_30_hours_away() -> None:
    utc = ZoneInfo("UTC")
    at_30 = by_kind(planner.plan_interview(NOW + timedelta(hours=30), NOW, utc, QUIET))
    assert planner.PREP not in at_30  # "> 30 h away": exactly 30 h is shown at once instead
    beyond = NOW + timedelta(hours=30, minutes=1)
    plan = by_kind(planner.plan_interview(beyond, NOW, utc, QUIET))
    assert plan["prep"].due_at == beyond - timedelta(hours=24)


def test_the_pep_talk_needs_more_than_two_hours() -> None:
    utc = ZoneInfo("UTC")
    two_hours = by_kind(planner.plan_interview(NOW + timedelta(hours=2), NOW, utc, QUIET))
    assert set(two_hours) == {planner.DEBRIEF}  # its moment would be now: no pep talk
    later = NOW + timedelta(hours=2, minutes=1)
    plan = by_kind(planner.plan_interview(later, NOW, utc, QUIET))
    assert plan["pep"].due_at == NOW + timedelta(minutes=1)


def test_an_early_interview_in_tokyo_gets_its_checklist_at_eight_the_day_before() -> None:
    interview = datetime(2026, 3, 10, 7, 0, tzinfo=TOKYO)
    plan = by_kind(planner.plan_interview(interview, NOW, TOKYO, QUIET))
    # 07:00 the day before is quiet: 08:00 Tokyo. The pep talk (05:00) cannot wait until
    # 08:00, after the start, so there is none.
    assert plan["prep"].due_at == datetime(2026, 3, 9, 8, 0, tzinfo=TOKYO)
    assert set(plan) == {planner.PREP, planner.DEBRIEF}
