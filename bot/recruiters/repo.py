"""SQL for recruiters, their openings and links, candidates, the funnel and relayed questions.

Every function takes the connection it works on, so the same code runs inside the conversation's
commit (one transaction with the candidate's state) or in a transaction of its own.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.recruiters.codes import new_code
from bot.storage.store import to_ts as ts

Conn = sqlite3.Connection


@dataclass(frozen=True)
class Recruiter:
    user_id: int
    status: str  # pending | approved | denied | removed
    name: str | None
    digest: bool
    draft: dict[str, Any]


@dataclass(frozen=True)
class Opening:
    id: int
    recruiter_id: int
    role: str
    company: str
    format: str | None
    note: str | None
    status: str  # open | paused | closed


@dataclass(frozen=True)
class Link:
    id: int
    opening_id: int
    code: str
    channel: str | None
    active: bool


@dataclass(frozen=True)
class Candidate:
    user_id: int
    opening_id: int
    first_link_id: int
    consent: bool | None
    name: str | None


def _recruiter(row: sqlite3.Row) -> Recruiter:
    try:
        draft = json.loads(row["draft"] or "{}")
    except ValueError:
        draft = {}
    return Recruiter(
        user_id=row["user_id"],
        status=row["status"],
        name=row["name"],
        digest=bool(row["digest"]),
        draft=draft if isinstance(draft, dict) else {},
    )


def _opening(row: sqlite3.Row) -> Opening:
    return Opening(
        id=row["id"],
        recruiter_id=row["recruiter_id"],
        role=row["role"],
        company=row["company"],
        format=row["format"],
        note=row["note"],
        status=row["status"],
    )


def _link(row: sqlite3.Row) -> Link:
    return Link(row["id"], row["opening_id"], row["code"], row["channel"], bool(row["active"]))


def _candidate(row: sqlite3.Row) -> Candidate:
    consent = row["consent"]
    return Candidate(
        user_id=row["user_id"],
        opening_id=row["opening_id"],
        first_link_id=row["first_link_id"],
        consent=None if consent is None else bool(consent),
        name=row["name"],
    )


def _one(conn: Conn, sql: str, *params: Any) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(sql, params).fetchone()
    return row


def _all(conn: Conn, sql: str, *params: Any) -> list[sqlite3.Row]:
    return list(conn.execute(sql, params).fetchall())


# --- accounts --------------------------------------------------------------------------------


def ensure_user(conn: Conn, user_id: int, now: datetime) -> None:
    """A users row to address queued messages to (a private chat's id is the user's id)."""
    conn.execute(
        "INSERT OR IGNORE INTO users (user_id, chat_id, state, created_at, updated_at)"
        " VALUES (?, ?, '{}', ?, ?)",
        (user_id, user_id, ts(now), ts(now)),
    )


def get_recruiter(conn: Conn, user_id: int) -> Recruiter | None:
    row = _one(conn, "SELECT * FROM recruiters WHERE user_id = ?", user_id)
    return None if row is None else _recruiter(row)


def approved_recruiter(conn: Conn, user_id: int) -> Recruiter | None:
    """The recruiter, if approved now (not pending, denied or removed)."""
    recruiter = get_recruiter(conn, user_id)
    return recruiter if recruiter is not None and recruiter.status == "approved" else None


def set_status(
    conn: Conn, user_id: int, status: str, now: datetime, name: str | None = None
) -> None:
    conn.execute(
        "INSERT INTO recruiters (user_id, status, name, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET status = excluded.status,"
        " name = coalesce(excluded.name, recruiters.name), updated_at = excluded.updated_at",
        (user_id, status, name, ts(now), ts(now)),
    )


def list_recruiters(conn: Conn) -> list[Recruiter]:
    rows = _all(conn, "SELECT * FROM recruiters ORDER BY status, user_id")
    return [_recruiter(row) for row in rows]


def set_draft(conn: Conn, user_id: int, draft: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE recruiters SET draft = ? WHERE user_id = ?",
        (json.dumps(draft, separators=(",", ":")), user_id),
    )


def close_screen(conn: Conn, user_id: int) -> None:
    """Leave the screen in progress, if any (a no-op for everyone else)."""
    conn.execute(
        "UPDATE recruiters SET draft = '{}' WHERE user_id = ? AND draft <> '{}'", (user_id,)
    )


def drafting(conn: Conn) -> list[int]:
    """Who has a screen open that waits for typed input."""
    rows = _all(
        conn,
        "SELECT user_id FROM recruiters WHERE draft IS NOT NULL AND json_valid(draft)"
        " AND json_extract(draft, '$.step') IS NOT NULL",
    )
    return [int(row[0]) for row in rows]


def set_digest(conn: Conn, user_id: int, on: bool) -> None:
    conn.execute("UPDATE recruiters SET digest = ? WHERE user_id = ?", (int(on), user_id))


# --- openings and links ----------------------------------------------------------------------


def create_opening(
    conn: Conn,
    recruiter_id: int,
    role: str,
    company: str,
    fmt: str | None,
    note: str | None,
    now: datetime,
) -> Opening:
    cur = conn.execute(
        "INSERT INTO openings (recruiter_id, role, company, format, note, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (recruiter_id, role, company, fmt, note, ts(now)),
    )
    opening_id = cur.lastrowid
    assert opening_id is not None
    opening = get_opening(conn, opening_id)
    assert opening is not None
    return opening


def get_opening(conn: Conn, opening_id: int) -> Opening | None:
    row = _one(conn, "SELECT * FROM openings WHERE id = ?", opening_id)
    return None if row is None else _opening(row)


def openings_of(conn: Conn, recruiter_id: int | None) -> list[Opening]:
    """A recruiter's openings, newest first; None: everyone's (administrators)."""
    if recruiter_id is None:
        rows = _all(conn, "SELECT * FROM openings ORDER BY id DESC")
    else:
        rows = _all(
            conn, "SELECT * FROM openings WHERE recruiter_id = ? ORDER BY id DESC", recruiter_id
        )
    return [_opening(row) for row in rows]


def set_opening_status(conn: Conn, opening_id: int, status: str) -> None:
    conn.execute("UPDATE openings SET status = ? WHERE id = ?", (status, opening_id))


def add_link(conn: Conn, opening_id: int, channel: str | None, now: datetime) -> Link:
    for _ in range(5):  # 96 random bits: a collision is all but impossible, but cheap to handle
        try:
            cur = conn.execute(
                "INSERT INTO links (opening_id, code, channel, created_at) VALUES (?, ?, ?, ?)",
                (opening_id, new_code(), channel, ts(now)),
            )
        except sqlite3.IntegrityError:
            continue
        link_id = cur.lastrowid
        assert link_id is not None
        link = get_link(conn, link_id)
        assert link is not None
        return link
    raise RuntimeError("could not find a free link code")


def get_link(conn: Conn, link_id: int) -> Link | None:
    row = _one(conn, "SELECT * FROM links WHERE id = ?", link_id)
    return None if row is None else _link(row)


def links_of(conn: Conn, opening_id: int, *, active_only: bool = True) -> list[Link]:
    where = " AND active = 1" if active_only else ""
    rows = _all(conn, f"SELECT * FROM links WHERE opening_id = ?{where} ORDER BY id", opening_id)
    return [_link(row) for row in rows]


def replace_code(conn: Conn, link: Link, now: datetime) -> Link:
    """A new code for a link that leaked: the old one stops bringing new candidates."""
    conn.execute("UPDATE links SET active = 0 WHERE id = ?", (link.id,))
    return add_link(conn, link.opening_id, link.channel, now)


def find_code(conn: Conn, code: str) -> tuple[Link, Opening] | None:
    row = _one(conn, "SELECT * FROM links WHERE code = ?", code)
    if row is None:
        return None
    link = _link(row)
    opening = get_opening(conn, link.opening_id)
    return None if opening is None else (link, opening)


def link_counts(
    conn: Conn, opening_id: int, since: datetime | None = None
) -> dict[int, tuple[int, int]]:
    """(opened, decided to go) per link of an opening, reached since `since` (None: ever).

    One statement; each count reads a range of funnel_by_link (link_id, step, at), the index
    alone. (Grouping the opening's rows by link instead would visit every row of the table:
    funnel_by_opening does not hold the link.)
    """
    start = 0 if since is None else ts(since)
    rows = _all(
        conn,
        "SELECT l.id,"
        " (SELECT count(*) FROM funnel f WHERE f.link_id = l.id AND f.step = 'opened'"
        "  AND f.at >= ?1) AS opened,"
        " (SELECT count(*) FROM funnel f WHERE f.link_id = l.id AND f.step = 'go'"
        "  AND f.at >= ?1) AS going"
        " FROM links l WHERE l.opening_id = ?2",
        start,
        opening_id,
    )
    return {int(row["id"]): (int(row["opened"]), int(row["going"])) for row in rows}


def opening_counts(conn: Conn, opening_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(opened, decided to go) per opening, ever: two index-only counts each
    (funnel_by_opening), for the openings on one page of /links."""
    counts = {}
    for opening_id in opening_ids:
        row = _one(
            conn,
            "SELECT (SELECT count(*) FROM funnel WHERE opening_id = ?1 AND step = 'opened'),"
            " (SELECT count(*) FROM funnel WHERE opening_id = ?1 AND step = 'go')",
            opening_id,
        )
        assert row is not None
        counts[opening_id] = (int(row[0]), int(row[1]))
    return counts


# --- candidates and the funnel ---------------------------------------------------------------


def get_candidate(conn: Conn, user_id: int, opening_id: int) -> Candidate | None:
    row = _one(
        conn, "SELECT * FROM candidates WHERE user_id = ? AND opening_id = ?", user_id, opening_id
    )
    return None if row is None else _candidate(row)


def latest_candidate(conn: Conn, user_id: int) -> tuple[Candidate, Opening] | None:
    """The opening the candidate is talking about now: the one whose link they opened last."""
    row = _one(
        conn,
        "SELECT * FROM candidates WHERE user_id = ? ORDER BY last_at DESC LIMIT 1",
        user_id,
    )
    if row is None:
        return None
    candidate = _candidate(row)
    opening = get_opening(conn, candidate.opening_id)
    return None if opening is None else (candidate, opening)


@dataclass(frozen=True)
class Came:
    """An opening a candidate came to through a link, as /privacy and /mydata show it."""

    opening_id: int
    role: str
    company: str
    consent: bool | None
    closed: bool  # the opening is closed or its recruiter no longer approved
    questions: int


def openings_of_candidate(conn: Conn, user_id: int) -> list[Came]:
    """Every opening the candidate came through, whatever its status, first one first."""
    rows = _all(
        conn,
        "SELECT c.opening_id, o.role, o.company, c.consent,"
        " o.status = 'closed' OR coalesce(r.status, '') <> 'approved' AS closed,"
        " (SELECT count(*) FROM questions q"
        "  WHERE q.user_id = c.user_id AND q.opening_id = c.opening_id) AS questions"
        " FROM candidates c JOIN openings o ON o.id = c.opening_id"
        " LEFT JOIN recruiters r ON r.user_id = o.recruiter_id"
        " WHERE c.user_id = ? ORDER BY c.first_at, c.opening_id",
        user_id,
    )
    return [
        Came(
            opening_id=row["opening_id"],
            role=row["role"],
            company=row["company"],
            consent=None if row["consent"] is None else bool(row["consent"]),
            closed=bool(row["closed"]),
            questions=int(row["questions"]),
        )
        for row in rows
    ]


def touch(conn: Conn, user_id: int, link: Link, now: datetime) -> Candidate:
    """The candidate opened a link: the first link is kept, a later one recorded as latest."""
    conn.execute(
        "INSERT INTO candidates (user_id, opening_id, first_link_id, last_link_id, first_at,"
        " last_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(user_id, opening_id) DO UPDATE SET"
        " last_link_id = excluded.last_link_id, last_at = excluded.last_at",
        (user_id, link.opening_id, link.id, link.id, ts(now), ts(now)),
    )
    candidate = get_candidate(conn, user_id, link.opening_id)
    assert candidate is not None
    reach(conn, candidate, "opened", now)
    return candidate


def reach(conn: Conn, candidate: Candidate, step: str, now: datetime, worry: str = "") -> None:
    """A funnel step reached (the first time only), counted for the link that brought them."""
    conn.execute(
        "INSERT OR IGNORE INTO funnel (opening_id, link_id, user_id, step, worry, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (candidate.opening_id, candidate.first_link_id, candidate.user_id, step, worry, ts(now)),
    )


def set_consent(
    conn: Conn, user_id: int, opening_id: int | None, allowed: bool, name: str | None
) -> None:
    """Consent for one opening, or withdrawn for all (opening_id None). Without consent the
    name and the plans are not kept for the recruiter at all."""
    if opening_id is None:
        conn.execute(
            "UPDATE candidates SET consent = 0, name = NULL, decision = NULL,"
            " interview_at = NULL, attended = NULL WHERE user_id = ?",
            (user_id,),
        )
        return
    if allowed:
        conn.execute(
            "UPDATE candidates SET consent = 1, name = ? WHERE user_id = ? AND opening_id = ?",
            (name, user_id, opening_id),
        )
    else:
        conn.execute(
            "UPDATE candidates SET consent = 0, name = NULL, decision = NULL,"
            " interview_at = NULL, attended = NULL WHERE user_id = ? AND opening_id = ?",
            (user_id, opening_id),
        )


def consent_asked(conn: Conn, user_id: int, opening_id: int) -> None:
    """The consent question was put: until answered, that is a no (the default), and it is
    not put again."""
    conn.execute(
        "UPDATE candidates SET consent = 0 WHERE user_id = ? AND opening_id = ?"
        " AND consent IS NULL",
        (user_id, opening_id),
    )


def share_plans(
    conn: Conn,
    user_id: int,
    opening_id: int,
    decision: str | None,
    interview_at: datetime | None,
    attended: str | None,
) -> None:
    """What a consenting candidate lets the recruiter see (and export)."""
    conn.execute(
        "UPDATE candidates SET decision = ?, interview_at = ?, attended = ?"
        " WHERE user_id = ? AND opening_id = ? AND consent = 1",
        (
            decision,
            None if interview_at is None else ts(interview_at),
            attended,
            user_id,
            opening_id,
        ),
    )


# --- relayed questions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    id: int
    user_id: int
    opening_id: int
    text: str
    answered: bool


def add_question(conn: Conn, user_id: int, opening_id: int, text: str, now: datetime) -> Question:
    cur = conn.execute(
        "INSERT INTO questions (user_id, opening_id, text, asked_at) VALUES (?, ?, ?, ?)",
        (user_id, opening_id, text, ts(now)),
    )
    assert cur.lastrowid is not None
    return Question(cur.lastrowid, user_id, opening_id, text, False)


def get_question(conn: Conn, question_id: int) -> Question | None:
    row = _one(conn, "SELECT * FROM questions WHERE id = ?", question_id)
    if row is None:
        return None
    return Question(
        row["id"], row["user_id"], row["opening_id"], row["text"], row["answer"] is not None
    )


def answer_question(conn: Conn, question_id: int, answer: str, now: datetime) -> bool:
    """Record the answer; False if it was answered already (a second tap, a stale button)."""
    cur = conn.execute(
        "UPDATE questions SET answer = ?, answered_at = ? WHERE id = ? AND answer IS NULL",
        (answer, ts(now), question_id),
    )
    return cur.rowcount == 1


def question_counts(
    conn: Conn, user_id: int, since: datetime, open_since: datetime
) -> tuple[int, int, int]:
    """(all questions, asked since `since`, unanswered asked since `open_since`)."""
    row = _one(
        conn,
        "SELECT count(*) AS total,"
        " coalesce(sum(asked_at >= ?), 0) AS recent,"
        " coalesce(sum(answer IS NULL AND asked_at >= ?), 0) AS open"
        " FROM questions WHERE user_id = ?",
        ts(since),
        ts(open_since),
        user_id,
    )
    assert row is not None
    return int(row["total"]), int(row["recent"]), int(row["open"])


# --- messages through the nudge queue --------------------------------------------------------


def queue(
    conn: Conn,
    recipient: int,
    kind: str,
    payload: dict[str, Any],
    due: datetime,
    deadline: datetime | None,
    now: datetime,
    about: int | None = None,
) -> int:
    """A durable message for the dispatcher: sent when due, within Telegram's limits."""
    ensure_user(conn, recipient, now)
    cur = conn.execute(
        "INSERT INTO nudges (user_id, kind, due_at, deadline, created_at, payload, about_user_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            recipient,
            kind,
            ts(due),
            None if deadline is None else ts(deadline),
            ts(now),
            json.dumps(payload, separators=(",", ":")),
            about,
        ),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def cancel_queued(conn: Conn, recipient: int, kind: str) -> None:
    conn.execute(
        "UPDATE nudges SET state = 'cancelled'"
        " WHERE user_id = ? AND kind = ? AND state = 'pending'",
        (recipient, kind),
    )


def has_pending(
    conn: Conn,
    recipient: int,
    kind: str,
    now: datetime | None = None,
    besides: int | None = None,
) -> bool:
    """A message of this kind still to go: pending or being sent, not past its deadline at
    `now` (if given; such a row will only expire), and not the row `besides`."""
    row = _one(
        conn,
        "SELECT 1 FROM nudges WHERE user_id = ? AND kind = ? AND state IN ('pending', 'sending')"
        " AND (? IS NULL OR deadline IS NULL OR deadline > ?) AND id IS NOT ?",
        recipient,
        kind,
        None if now is None else ts(now),
        None if now is None else ts(now),
        besides,
    )
    return row is not None


def zone_of(conn: Conn, user_id: int) -> str | None:
    """The time zone a user chose with /timezone, if any (kept in their conversation state)."""
    row = _one(
        conn, "SELECT json_extract(state, '$.timezone') AS tz FROM users WHERE user_id = ?", user_id
    )
    return None if row is None else row["tz"]
