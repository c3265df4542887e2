"""The recruiters' side of a candidate's conversation: attribution, the funnel, consent,
notifications and relayed questions. The engine never calls this: the service asks it for
the invitation a conversation starts with and hands it the conversation's milestones, which
it records in the same transaction as the candidate's new state."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.engine import planner
from bot.engine.decide import Expire, NudgeDecision, Send
from bot.engine.model import (
    Attended,
    Button,
    CantMakeIt,
    ConsentAsked,
    ConsentGiven,
    Decided,
    DeleteUserData,
    Event,
    InterviewSet,
    Invitation,
    Outcome,
    QuestionAsked,
    Referral,
    Reply,
    State,
    WorryNamed,
    known_zone,
)
from bot.recruiters import repo, stats
from bot.recruiters.buttons import DESK
from bot.recruiters.codes import looks_like_code
from bot.storage.db import Database
from bot.storage.store import Conn, NudgeRow

RELAY = "relay"  # a prepared message: a notification, a relayed question or answer
DIGEST = "digest"  # the weekly numbers, composed when due
KINDS = frozenset({RELAY, DIGEST})
RELAY_LIFETIME = timedelta(days=7)  # a notification older than this is news no more
DIGEST_AT = time(9, 0)  # Monday morning in the recruiter's time zone
QUESTIONS_A_DAY = 3
OPEN_QUESTION_WAIT = timedelta(days=7)  # after this an unanswered question no longer blocks
PERIOD_DAYS = 7


def usable(conn: Conn, link: repo.Link, opening: repo.Opening) -> bool:
    """A link that still brings new candidates: current code, opening open, its recruiter
    still approved (a removed recruiter's links are unknown codes: no invitation, no count)."""
    if not link.active or opening.status != "open":
        return False
    return repo.approved_recruiter(conn, opening.recruiter_id) is not None


def start_code(event: Event) -> str | None:
    if event.kind == "command" and event.value in ("start", "restart"):
        code = event.argument.strip()
        return code if looks_like_code(code) else None
    return None


def relay(
    template: str,
    context: Mapping[str, Any],
    buttons: tuple[tuple[str, str], ...] = (),
    *,
    menu: bool | None = None,
) -> dict[str, Any]:
    """The payload of a prepared message: template, context and (label key, data) buttons;
    `menu`: once it is sent, show (True) or hide (False) the recipient's recruiter commands."""
    payload: dict[str, Any] = {
        "template": template,
        "context": dict(context),
        "buttons": [list(b) for b in buttons],
    }
    if menu is not None:
        payload["menu"] = menu
    return payload


def send_later(
    conn: Conn,
    recipient: int,
    payload: dict[str, Any],
    now: datetime,
    *,
    about: int | None = None,
    expires: bool = True,
) -> None:
    """Queue a prepared message for the dispatcher, due now. `about`: the candidate it
    concerns (deleting their data drops it); news expires after RELAY_LIFETIME, a decision
    on someone's access does not."""
    deadline = now + RELAY_LIFETIME if expires else None
    repo.queue(conn, recipient, RELAY, payload, now, deadline, now, about=about)


def _menu_of(nudge: NudgeRow) -> bool | None:
    try:
        payload = json.loads(nudge.payload or "{}")
    except ValueError:
        return None
    menu = payload.get("menu") if isinstance(payload, dict) else None
    return menu if isinstance(menu, bool) else None


def reply_from(payload: Mapping[str, Any]) -> Reply:
    buttons = tuple((Button(str(label), str(data)),) for label, data in payload.get("buttons", []))
    return Reply(str(payload["template"]), dict(payload.get("context", {})), buttons)


def short_time(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b} {local:%H:%M}"


def next_digest(now: datetime, zone: ZoneInfo) -> datetime:
    """The next Monday 09:00 in the zone, strictly after now."""
    local = now.astimezone(zone)
    days = (0 - local.weekday()) % 7
    candidate = datetime.combine(local.date() + timedelta(days=days), DIGEST_AT, tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(
            local.date() + timedelta(days=days or 7), DIGEST_AT, tzinfo=zone
        )
    return candidate


class RecruiterFollower:
    kinds = KINDS

    def __init__(
        self,
        db: Database,
        *,
        default_timezone: str,
        worry_labels: Mapping[str, str],
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.default_timezone = default_timezone
        self.worry_labels = worry_labels
        self.clock = clock
        # Set by the desk: show or hide a user's recruiter commands (a chat-scoped menu).
        self.menus: Callable[[int, bool], Awaitable[None]] | None = None

    # --- before the engine -------------------------------------------------------------------

    def recruitment(
        self, conn: Conn, event: Event, now: datetime, *, referrals: bool = True
    ) -> tuple[Invitation | None, tuple[Referral, ...]]:
        """The invitation the conversation is about and, with `referrals` (only the few events
        that show them ask: a join and a count per opening), every opening they came through."""
        found = self._opening_for(conn, event)
        invitation = self._invitation(conn, event, found, now)
        if not referrals:
            return invitation, ()
        current = found[0].id if found else None
        came_through = tuple(
            Referral(
                role=came.role,
                company=came.company,
                allowed=came.consent,
                current=came.opening_id == current,
                closed=came.closed,
                questions=came.questions,
            )
            for came in repo.openings_of_candidate(conn, event.user_id)
        )
        return invitation, came_through

    def invitation(self, conn: Conn, event: Event, now: datetime) -> Invitation | None:
        return self._invitation(conn, event, self._opening_for(conn, event), now)

    def _invitation(
        self,
        conn: Conn,
        event: Event,
        found: tuple[repo.Opening, bool | None] | None,
        now: datetime,
    ) -> Invitation | None:
        if found is None:
            return None
        opening, consent = found
        total, recent, waiting = repo.question_counts(
            conn, event.user_id, now - timedelta(days=1), now - OPEN_QUESTION_WAIT
        )
        return Invitation(
            role=opening.role,
            company=opening.company,
            format=opening.format,
            note=opening.note,
            consent=consent,
            can_ask=waiting == 0 and recent < QUESTIONS_A_DAY,
            questions=total,
        )

    def _opening_for(self, conn: Conn, event: Event) -> tuple[repo.Opening, bool | None] | None:
        code = start_code(event)
        if code is not None:
            hit = repo.find_code(conn, code)
            if hit is not None and usable(conn, *hit):
                _link, opening = hit
                candidate = repo.get_candidate(conn, event.user_id, opening.id)
                return opening, candidate.consent if candidate else None
        latest = repo.latest_candidate(conn, event.user_id)
        if latest is None:
            return None
        candidate, opening = latest
        if not self._current(conn, opening):
            return None
        return opening, candidate.consent

    @staticmethod
    def _current(conn: Conn, opening: repo.Opening) -> bool:
        """The opening a candidate already came through is still one to talk about: not
        closed, and its recruiter still approved."""
        recruiter = repo.approved_recruiter(conn, opening.recruiter_id)
        return opening.status != "closed" and recruiter is not None

    # --- in the commit transaction -----------------------------------------------------------

    def record(
        self,
        conn: Conn,
        event: Event,
        before: State,
        outcome: Outcome,
        now: datetime,
        *,
        away: bool = False,
    ) -> bool:
        user = event.user_id
        if event.kind == "command":
            # A conversation command leaves a recruiter screen half done (/newlink's steps, a
            # reply): what they type next belongs to the conversation they turned to.
            repo.close_screen(conn, user)
        rezoned = before.timezone != outcome.state.timezone
        if rezoned:
            # A recruiter's digest comes on Monday 09:00 in their zone: follow it.
            repo.cancel_queued(conn, user, DIGEST)
        if (rezoned or away) and not any(isinstance(e, DeleteUserData) for e in outcome.effects):
            # Planned again where something ended it: a new zone (just above), or a digest
            # cancelled while they had blocked the bot or sent /stop (the dispatcher sends
            # nothing to them then). The conversation's own cancels leave digests alone.
            self.schedule_digest(conn, user, now)
        code = start_code(event)
        if code is not None:
            hit = repo.find_code(conn, code)
            if hit is not None and usable(conn, *hit):
                repo.touch(conn, user, hit[0], now)
        if not outcome.milestones:
            return False
        latest = repo.latest_candidate(conn, user)
        if latest is None:
            return False
        candidate, opening = latest
        queued = False
        notices: list[str] = []
        for milestone in outcome.milestones:
            if isinstance(milestone, WorryNamed):
                repo.reach(conn, candidate, "engaged", now)
                repo.reach(conn, candidate, "worry", now, milestone.objection)
            elif isinstance(milestone, Decided):
                repo.reach(conn, candidate, "engaged", now)
                repo.reach(conn, candidate, milestone.decision, now)
                withdrew = milestone.decision == "pass" and milestone.previous == "go"
                notices.append("withdrew" if withdrew else milestone.decision)
            elif isinstance(milestone, InterviewSet):
                repo.reach(conn, candidate, "time_set", now)
                if milestone.previous is not None:
                    notices.append("rescheduled")
                elif outcome.state.decision == "go" and "go" not in notices:
                    notices.append("go")
            elif isinstance(milestone, CantMakeIt):
                notices.append("cant")
            elif isinstance(milestone, Attended):
                if milestone.how in ("went_well", "mixed"):
                    repo.reach(conn, candidate, "attended", now)
                notices.append("attended" if milestone.how != "missed" else "missed")
            elif isinstance(milestone, ConsentAsked):
                repo.consent_asked(conn, user, opening.id)
            elif isinstance(milestone, ConsentGiven):
                if milestone.allowed and not self._current(conn, opening):
                    continue  # a stale "Allow" for an opening closed since: nothing to agree to
                scope = None if milestone.everywhere else opening.id
                name = event.first_name.strip()[:64] or None
                repo.set_consent(conn, user, scope, milestone.allowed, name)
                if milestone.allowed and outcome.state.decision:
                    # Just agreed: tell the recruiter where things stand now.
                    notices.append(outcome.state.decision)
            elif isinstance(milestone, QuestionAsked):
                queued |= self._relay_question(conn, event, opening, milestone.text, now)
        candidate = repo.get_candidate(conn, user, opening.id) or candidate
        if candidate.consent:
            state = outcome.state
            repo.share_plans(
                conn, user, opening.id, state.decision, state.interview_at, state.attended
            )
            for what in dict.fromkeys(notices):  # once each, in order
                queued |= self._notify(conn, candidate, opening, what, outcome, now)
        return queued

    def _recruiter_zone(self, conn: Conn, recruiter_id: int) -> ZoneInfo:
        name = repo.zone_of(conn, recruiter_id) or self.default_timezone
        return known_zone(name) or ZoneInfo("UTC")

    def _notify(
        self,
        conn: Conn,
        candidate: repo.Candidate,
        opening: repo.Opening,
        what: str,
        outcome: Outcome,
        now: datetime,
    ) -> bool:
        recruiter = repo.approved_recruiter(conn, opening.recruiter_id)
        if recruiter is None:
            return False
        interview = outcome.state.interview_at
        zone = self._recruiter_zone(conn, recruiter.user_id)
        context = {
            "what": what,
            "name": candidate.name or "",
            "role": opening.role,
            "company": opening.company,
            "when": short_time(interview, zone) if interview and interview > now else "",
        }
        payload = relay("recruiters/notice", context)
        send_later(conn, recruiter.user_id, payload, now, about=candidate.user_id)
        return True

    def _relay_question(
        self,
        conn: Conn,
        event: Event,
        opening: repo.Opening,
        text: str,
        now: datetime,
    ) -> bool:
        recruiter = repo.approved_recruiter(conn, opening.recruiter_id)
        if recruiter is None:
            return False
        question = repo.add_question(conn, event.user_id, opening.id, text, now)
        context = {
            "name": event.first_name.strip()[:64],
            "role": opening.role,
            "company": opening.company,
            "text": text,
        }
        # The recruiter answers through the bot: neither sees the other's account.
        buttons = (("r_reply", DESK.pack("reply", question.id)),)
        payload = relay("recruiters/question", context, buttons)
        send_later(conn, recruiter.user_id, payload, now, about=event.user_id)
        return True

    # --- when a queued message is due --------------------------------------------------------

    async def decide(self, nudge: NudgeRow, now: datetime) -> NudgeDecision:
        if nudge.kind == DIGEST:
            # Next Monday's first, whatever becomes of this one: sent, expired (the bot was
            # down over Monday), refused by Telegram or failed.
            after = max(now, nudge.due_at)  # the Monday after this one's, never the same
            await self.db.atomic(self.schedule_digest, nudge.user_id, after, nudge.id)
        try:
            payload = json.loads(nudge.payload or "{}")
        except ValueError:
            return Expire("unreadable payload")
        if not isinstance(payload, dict):
            return Expire("unreadable payload")
        if nudge.deadline is not None and nudge.deadline <= now:
            return Expire("deadline passed")
        if nudge.kind == RELAY:
            if not isinstance(payload.get("template"), str):
                return Expire("unreadable payload")
            return Send((reply_from(payload),))
        return await self.db.run(self._digest, nudge.user_id, now)

    def _digest(self, conn: Conn, recruiter_id: int, now: datetime) -> NudgeDecision:
        recruiter = repo.approved_recruiter(conn, recruiter_id)
        if recruiter is None or not recruiter.digest:
            return Expire("no digest for this recruiter")
        since = now - timedelta(days=PERIOD_DAYS)
        scope = stats.Scope(recruiter_id=recruiter_id)
        numbers = stats.funnel(conn, scope, since)
        reasons = stats.reasons(conn, scope, since)
        context = {
            "stages": numbers.stages(),
            "decisions": numbers.decisions,
            "empty": numbers.empty,
            "reasons": [(r.label(self.worry_labels), r.shown) for r in reasons[:5]],
        }
        buttons = ((Button("r_digest_off", DESK.pack("digest", "off")),),)
        return Send((Reply("recruiters/digest", context, buttons),))

    async def after_sent(self, nudge: NudgeRow) -> None:
        now = self.clock()
        if nudge.kind == RELAY and self.menus is not None:
            menu = _menu_of(nudge)
            if menu is not None:  # access given or ended from the shell: the menu follows
                await self.menus(nudge.user_id, menu)
        elif nudge.kind in (planner.PREP, planner.PEP):

            def reminded(conn: Conn) -> None:
                latest = repo.latest_candidate(conn, nudge.user_id)
                if latest is not None:
                    repo.reach(conn, latest[0], "reminded", now)

            await self.db.atomic(reminded)

    def schedule_digest(
        self, conn: Conn, recruiter_id: int, now: datetime, besides: int | None = None
    ) -> bool:
        """The next weekly digest, unless the recruiter turned it off or one is still to come
        (one past its deadline only waits to expire; `besides`: the one being decided)."""
        recruiter = repo.approved_recruiter(conn, recruiter_id)
        if recruiter is None or not recruiter.digest:
            return False
        if repo.has_pending(conn, recruiter_id, DIGEST, now, besides):
            return False
        due = next_digest(now, self._recruiter_zone(conn, recruiter_id))
        repo.queue(conn, recruiter_id, DIGEST, {}, due, due + timedelta(days=1), now)
        return True
