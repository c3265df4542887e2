"""The engine's vocabulary: what comes in (events), what it keeps (state), what goes out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo

EventKind = Literal["command", "button", "text", "other"]


@dataclass(frozen=True)
class Event:
    """One thing a user did, stripped of everything Telegram-specific."""

    user_id: int
    kind: EventKind
    # command name without the slash ("start"), button data or the typed text; empty for
    # a non-text message (a sticker, a photo: all get the same "I read text" answer).
    value: str = ""
    # Text after a command ("/start <payload>", "/timezone Europe/Paris").
    argument: str = ""
    first_name: str = ""


class Step(StrEnum):
    """Where a user is in the conversation; buttons are self-contained so this only
    decides what typed text means and what "show me where I am" shows."""

    SITUATION = "situation"
    LEAN = "lean"
    MENU = "menu"
    MENU_MORE = "menu_more"
    TYPE_IT = "type_it"
    ANSWER = "answer"
    QUESTION = "question"  # "Have you signed it?" / "A real red flag?" before any argument
    EXCEPTION = "exception"  # an honest exception, shown with respect before any argument
    DOUBT = "doubt"  # still doubtful after the arguments: talk it through, or decide
    MIXED = "mixed"  # "part of me wants it, part of me doesn't"
    SCAM = "scam"
    UNPAID = "unpaid"  # an unpaid task or a long test: a question for the employer
    DECISION = "decision"
    GO = "go"
    UNSURE = "unsure"
    PASS = "pass"
    ASK_WHEN = "ask_when"
    CONFIRM_WHEN = "confirm_when"
    ASK_TZ = "ask_tz"
    DEBRIEF = "debrief"
    CONSENT = "consent"  # may the recruiter who invited them see their name and plans?
    ASK_RECRUITER = "ask_recruiter"  # the next text is a question for that recruiter


@dataclass(frozen=True)
class State:
    """Everything the coaching needs to remember about one user, and nothing more."""

    step: Step = Step.SITUATION
    situation: str | None = None
    lean: str | None = None
    objection: str | None = None
    arg_index: int = 0
    in_row: int = 0  # arguments shown in a row for this worry; after a few, the coach stops
    # How many of each worry's arguments were given (they come in order): (objection, count).
    given: tuple[tuple[str, int], ...] = ()
    exception: str | None = None  # the honest exception that applies (content | red_flag | signed)
    scam: bool = False  # flagged as likely fraud: nothing is planned unless it checked out
    decision: str | None = None
    checklist_shown: bool = False  # the checklist is shown once per decision to go
    timezone: str | None = None
    interview_at: datetime | None = None  # UTC
    proposed_at: datetime | None = None  # a parsed time awaiting "right?"
    interview_pending: bool = False  # said "not scheduled yet"
    attended: str | None = None  # went_well | mixed | missed
    # Reminder kinds the candidate cancelled in /nudges for this interview: not planned again
    # when the plan moves (a new time, "I'll go" again, "it checked out").
    cancelled: tuple[str, ...] = ()
    # Where typed text for ASK_TZ / ASK_WHEN came from, so we can return there afterwards.
    return_step: Step | None = None
    # What the consent question held back, shown once it is answered: ask_when | note.
    after_consent: str | None = None

    def evolve(self, **changes: Any) -> State:
        return replace(self, **changes)

    def to_json(self) -> str:
        data = asdict(self)
        for key in ("interview_at", "proposed_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | None) -> State:
        """Load stored state; unknown or malformed fields fall back to defaults so an old
        row written by an earlier version never blocks a user."""
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        known = {f for f in cls.__dataclass_fields__}
        clean: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                continue
            if key in ("step", "return_step") and value is not None:
                try:
                    value = Step(value)
                except ValueError:
                    continue
            if key == "given":
                pairs = value if isinstance(value, list) else None
                if pairs is None or not all(_given_pair(p) for p in pairs):
                    continue
                value = tuple((str(o), int(n)) for o, n in pairs)
            if key == "cancelled":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    continue
                value = tuple(value)
            if key in ("interview_at", "proposed_at") and value is not None:
                try:
                    value = datetime.fromisoformat(value).astimezone(UTC)
                except (TypeError, ValueError):
                    continue
            if value is not None and not _fits(key, value):
                continue  # a field of the wrong type falls back to its default
            clean[key] = value
        try:
            return cls(**clean)
        except TypeError:
            return cls()


_TYPES: dict[str, type | tuple[type, ...]] = {
    "situation": str,
    "lean": str,
    "objection": str,
    "arg_index": int,
    "in_row": int,
    "exception": str,
    "scam": bool,
    "decision": str,
    "checklist_shown": bool,
    "after_consent": str,
    "timezone": str,
    "interview_pending": bool,
    "attended": str,
}


def _given_pair(pair: Any) -> bool:
    return (
        isinstance(pair, list)
        and len(pair) == 2
        and isinstance(pair[0], str)
        and isinstance(pair[1], int)
        and not isinstance(pair[1], bool)
        and pair[1] >= 0
    )


def _fits(key: str, value: Any) -> bool:
    expected = _TYPES.get(key)
    if expected is None:
        return True  # steps and datetimes were checked above
    if expected is int and isinstance(value, bool):
        return False
    if key == "timezone":
        return isinstance(value, str) and known_zone(value) is not None
    return isinstance(value, expected)


def known_zone(name: str) -> ZoneInfo | None:
    """The zone by IANA name, or None for a name zoneinfo does not know."""
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return None


@dataclass(frozen=True)
class Invitation:
    """The opening a candidate came to the bot for, through a recruiter's link. The engine only
    reads it: who the recruiter is and how links work is not its business."""

    role: str
    company: str
    format: str | None = None
    note: str | None = None
    # May the recruiter see name, decision, time? None: not asked yet; False: no, or asked
    # and not answered (the question is put once).
    consent: bool | None = None
    can_ask: bool = True  # no question waiting for an answer, and under the day's limit
    questions: int = 0  # questions relayed so far (for /mydata)


@dataclass(frozen=True)
class Referral:
    """An opening a recruiter's link brought the candidate to, whatever became of it since:
    what /privacy and /mydata list, and what withdrawing consent covers."""

    role: str
    company: str
    allowed: bool | None = None  # that recruiter may see name, decision, time; None: not asked
    current: bool = False  # the opening of the invitation the conversation is about
    closed: bool = False  # closed, or its recruiter is no longer one: no new candidates
    questions: int = 0  # questions relayed to that recruiter

    def after_consent(self, choice: str) -> Referral:
        """As it stands once the candidate chose: yes | no (the current opening) | none
        (withdrawn everywhere)."""
        if choice == "none":
            return replace(self, allowed=False)
        if self.current:
            return replace(self, allowed=choice == "yes")
        return self


@dataclass(frozen=True)
class Button:
    """A button: `label` names an entry of prompts/buttons.toml, rendered with `params`."""

    label: str
    data: str
    params: Mapping[str, Any] = field(default_factory=dict)


Keyboard = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True)
class Reply:
    """One message: a template in prompts/messages/ with its context, and its buttons."""

    template: str
    context: Mapping[str, Any] = field(default_factory=dict)
    keyboard: Keyboard = ()


# Side effects the storage layer commits in the same transaction as the new state.
@dataclass(frozen=True)
class ScheduleNudge:
    kind: str
    due_at: datetime
    deadline: datetime | None


@dataclass(frozen=True)
class CancelNudges:
    """Cancel the user's pending reminders of `kinds`; empty means all of the conversation's
    reminder kinds (planner.KINDS), never an owed reply, a relayed message or a digest."""

    kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class CancelNudge:
    nudge_id: int


@dataclass(frozen=True)
class MoveNudge:
    """Move a pending nudge (the interview moved, e.g. with the time zone)."""

    nudge_id: int
    due_at: datetime
    deadline: datetime | None


@dataclass(frozen=True)
class SnoozeNudge:
    nudge_id: int
    until: datetime


@dataclass(frozen=True)
class SetOptOut:
    opted_out: bool


@dataclass(frozen=True)
class DeleteUserData:
    pass


Effect = (
    ScheduleNudge
    | CancelNudges
    | CancelNudge
    | MoveNudge
    | SnoozeNudge
    | SetOptOut
    | DeleteUserData
)


# Milestones: what happened in the conversation, for features that subscribe to it (the
# recruiters' funnel and notifications) without the engine knowing they exist.
@dataclass(frozen=True)
class WorryNamed:
    objection: str


@dataclass(frozen=True)
class Decided:
    decision: str  # go | unsure | pass
    previous: str | None


@dataclass(frozen=True)
class InterviewSet:
    at: datetime
    previous: datetime | None


@dataclass(frozen=True)
class CantMakeIt:
    pass


@dataclass(frozen=True)
class Attended:
    how: str  # went_well | mixed | missed


@dataclass(frozen=True)
class ConsentGiven:
    allowed: bool
    everywhere: bool = False  # withdrawn for every opening, not only the current one


@dataclass(frozen=True)
class ConsentAsked:
    """The consent question was put: once per opening; unanswered, it stays a no."""


@dataclass(frozen=True)
class QuestionAsked:
    text: str


Milestone = (
    WorryNamed
    | Decided
    | InterviewSet
    | CantMakeIt
    | Attended
    | ConsentAsked
    | ConsentGiven
    | QuestionAsked
)


@dataclass(frozen=True)
class Outcome:
    replies: tuple[Reply, ...]
    state: State
    effects: tuple[Effect, ...] = ()
    # Short text for the button-press acknowledgement ("toast"); None answers silently.
    notice: str | None = None
    milestones: tuple[Milestone, ...] = ()


@dataclass(frozen=True)
class PendingNudge:
    """A scheduled nudge as the engine sees it (for /nudges and its buttons)."""

    id: int
    kind: str
    due_at: datetime
    deadline: datetime | None = None
