"""Funnel statistics for recruiters: counts per step, drop-offs, the common worries, a chart and
the CSV of consented candidates. Pure reads over the SQLite schema (0003_recruiters.sql).

Counts are candidates of an opening (a person invited to two openings counts in each), reached
within the period: a row counts when its step was first reached at or after `since`. So over
7 days "engaged" may exceed "opened" (opened 10 days ago, engaged yesterday); drop-offs are
then shown as 0 % rather than negative.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# Funnel order. 'worry' rows are not a step of their own here: they feed `reasons`.
STEPS: tuple[str, ...] = (
    "opened",
    "engaged",
    "go",
    "unsure",
    "pass",
    "time_set",
    "reminded",
    "attended",
)
DECISIONS: tuple[str, ...] = ("go", "unsure", "pass")
# The main line the drop-offs are measured along; "decided" is any of DECISIONS.
STAGES: tuple[str, ...] = ("opened", "engaged", "decided", "time_set", "reminded", "attended")
WORRY = "worry"
# Smaller counts of a worry are never shown as numbers, so no one candidate stands out.
MIN_SHOWN = 3
CHART_REASONS = 10  # more would not stay readable on a phone


class Period(StrEnum):
    """The periods /stats offers; the values are short enough for callback data."""

    WEEK = "7d"
    MONTH = "30d"
    ALL = "all"

    def since(self, now: datetime) -> datetime | None:
        days = {Period.WEEK: 7, Period.MONTH: 30}.get(self)
        return None if days is None else now - timedelta(days=days)


@dataclass(frozen=True)
class Scope:
    """Whose stats: set fields narrow each other (intersect); none set means everything.

    Scope(recruiter_id=r, opening_id=o) is empty when o is not r's, so a handler that always
    passes the asking recruiter's id cannot show another recruiter's opening by mistake.
    """

    recruiter_id: int | None = None
    opening_id: int | None = None
    link_id: int | None = None


@dataclass(frozen=True)
class Stage:
    name: str
    count: int
    # Percent of the previous stage that did not reach this one; None for the first stage
    # and when the previous stage is 0 (nothing to drop from).
    drop_off: float | None


@dataclass(frozen=True)
class Funnel:
    counts: Mapping[str, int]  # every name in STEPS, 0 when no row
    decided: int  # candidates with at least one of DECISIONS

    def count(self, stage: str) -> int:
        return self.decided if stage == "decided" else self.counts[stage]

    def drop_off(self, stage: str) -> float | None:
        index = STAGES.index(stage)
        if index == 0:
            return None
        before, now = self.count(STAGES[index - 1]), self.count(stage)
        if before == 0:
            return None
        return max(0.0, (before - now) * 100.0 / before)

    def stages(self) -> tuple[Stage, ...]:
        return tuple(Stage(s, self.count(s), self.drop_off(s)) for s in STAGES)

    @property
    def empty(self) -> bool:
        return not any(self.counts.values())

    @property
    def decisions(self) -> dict[str, int]:
        """go / unsure / pass: candidates who gave that answer (one who changed their mind
        counts under each, so these may add up to more than `decided`)."""
        return {d: self.counts[d] for d in DECISIONS}


@dataclass(frozen=True)
class Reason:
    worry: str  # objection id, e.g. 'nervous'
    count: int | None  # None: fewer than MIN_SHOWN; the real number never leaves this module

    @property
    def shown(self) -> str:
        return str(self.count) if self.count is not None else f"fewer than {MIN_SHOWN}"

    @property
    def short(self) -> str:
        """For tight spaces (the chart)."""
        return str(self.count) if self.count is not None else f"<{MIN_SHOWN}"

    def label(self, labels: Mapping[str, str] | None = None) -> str:
        return (labels or {}).get(self.worry, self.worry)


@dataclass(frozen=True)
class ConsentedRow:
    name: str
    role: str
    company: str
    channel: str  # '' for the main link
    decision: str
    interview_at: datetime | None
    attended: str


# --- queries ---------------------------------------------------------------------------------

Query = tuple[str, tuple[Any, ...]]


def _ts(since: datetime | None) -> int | None:
    if since is None:
        return None
    if since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    return int(since.timestamp())


def _scoped(scope: Scope) -> tuple[str, list[Any], str]:
    """FROM … WHERE … selecting the scope's funnel rows as `f`, and the column to group by
    so that rows come out in index order (a GROUP BY without a temporary sort).

    Opening and link scopes reach funnel through funnel_by_opening / funnel_by_link with
    (id = ? AND step = ? AND at > ?), reading the covering index alone; the joined links and
    openings rows are single primary-key lookups that only check ownership.
    """
    params: list[Any] = []
    if scope.link_id is not None:
        sql = (
            "FROM links l JOIN openings o ON o.id = l.opening_id"
            " JOIN funnel f ON f.link_id = l.id WHERE l.id = ?"
        )
        params.append(scope.link_id)
        if scope.opening_id is not None:
            sql += " AND l.opening_id = ?"
            params.append(scope.opening_id)
        key = "l.id"  # a link belongs to one opening
    elif scope.opening_id is not None:
        sql = "FROM openings o JOIN funnel f ON f.opening_id = o.id WHERE o.id = ?"
        params.append(scope.opening_id)
        key = "o.id"
    elif scope.recruiter_id is not None:
        sql = "FROM openings o JOIN funnel f ON f.opening_id = o.id WHERE 1"
        key = "o.id"
    else:
        return "FROM funnel f WHERE 1", params, "f.opening_id"
    if scope.recruiter_id is not None:
        sql += " AND o.recruiter_id = ?"
        params.append(scope.recruiter_id)
    return sql, params, key


def _filtered(
    scope: Scope, steps: Sequence[str], since: datetime | None
) -> tuple[str, tuple[Any, ...], str]:
    sql, params, key = _scoped(scope)
    sql += f" AND f.step IN ({', '.join('?' * len(steps))})"  # placeholders only
    params.extend(steps)
    ts = _ts(since)
    if ts is not None:
        sql += " AND f.at >= ?"
        params.append(ts)
    return sql, tuple(params), key


def _distinct_users(where: str, key: str) -> str:
    # A candidate may have said several of go/unsure/pass (or voiced several worries):
    # distinct users, per opening, summed.
    return (
        "SELECT coalesce(sum(n), 0) FROM"
        f" (SELECT count(DISTINCT f.user_id) AS n {where} GROUP BY {key})"
    )


def funnel_queries(scope: Scope, since: datetime | None) -> dict[str, Query]:
    """The statements `funnel` and `reasons` run, by name (for EXPLAIN QUERY PLAN).

    Counts are per opening (the key), summed here or by the caller: the same person in two
    openings is two candidates, and grouping by opening first follows the index order.
    """
    steps, steps_params, key = _filtered(scope, STEPS, since)
    decided, decided_params, _ = _filtered(scope, DECISIONS, since)
    worry, worry_params, _ = _filtered(scope, (WORRY,), since)
    return {
        # One row per candidate and step, so count(*) counts candidates.
        "steps": (f"SELECT f.step, count(*) {steps} GROUP BY {key}, f.step", steps_params),
        "decided": (_distinct_users(decided, key), decided_params),
        "worries": (f"SELECT f.worry, count(*) {worry} GROUP BY f.worry", worry_params),
        "worried": (_distinct_users(worry, key), worry_params),
    }


def _all(conn: sqlite3.Connection, query: Query) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.execute(*query).fetchall()]


def funnel(conn: sqlite3.Connection, scope: Scope, since: datetime | None) -> Funnel:
    queries = funnel_queries(scope, since)
    counts = dict.fromkeys(STEPS, 0)
    for step, n in _all(conn, queries["steps"]):
        counts[step] += int(n)
    [(decided,)] = _all(conn, queries["decided"])
    return Funnel(counts, int(decided))


def reasons(conn: sqlite3.Connection, scope: Scope, since: datetime | None) -> list[Reason]:
    """The scope's worries, most common first (ties and hidden counts by id).

    Counts under MIN_SHOWN come back as None. When fewer than MIN_SHOWN candidates voiced any
    worry at all, the list is empty: "nervous: fewer than 3" about a link sent to one person
    would name that person's worry.
    """
    queries = funnel_queries(scope, since)
    counted = {worry: int(n) for worry, n in _all(conn, queries["worries"])}
    # A worry counted MIN_SHOWN times was voiced by that many candidates. Otherwise all the
    # counts are small, so counting the distinct candidates reads only a few index entries.
    if not any(n >= MIN_SHOWN for n in counted.values()):
        [(worried,)] = _all(conn, queries["worried"])
        if worried < MIN_SHOWN:
            return []
    found = [Reason(w, n if n >= MIN_SHOWN else None) for w, n in counted.items()]
    # Hidden counts sort as equals, so the order does not tell a 2 from a 1.
    return sorted(found, key=lambda r: (-(r.count or 0), r.worry))


def query_plans(
    conn: sqlite3.Connection, scope: Scope, since: datetime | None
) -> dict[str, list[str]]:
    """EXPLAIN QUERY PLAN of each statement in `funnel_queries`, one line per plan step."""
    plans = {}
    for name, (sql, params) in funnel_queries(scope, since).items():
        rows = _all(conn, ("EXPLAIN QUERY PLAN " + sql, params))
        plans[name] = [str(row[3]) for row in rows]
    return plans


# --- export ----------------------------------------------------------------------------------

CSV_HEADER = ("name", "role", "company", "channel", "decision", "interview_at", "attended")
# A cell starting with one of these is a formula to Excel, LibreOffice and Sheets (OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def consented_rows(conn: sqlite3.Connection, recruiter_id: int | None) -> list[ConsentedRow]:
    """Candidates who agreed to be shown (consent = 1), of one recruiter or of everyone.

    Only of approved recruiters: a candidate agreed to be shown to the recruiter who invited
    them; once that recruiter is removed, nobody else (an administrator included) gets them.
    """
    sql = (
        "SELECT c.name, o.role, o.company, l.channel, c.decision, c.interview_at, c.attended"
        " FROM openings o"
        " JOIN recruiters r ON r.user_id = o.recruiter_id AND r.status = 'approved'"
        " JOIN candidates c ON c.opening_id = o.id AND c.consent = 1"
        " JOIN links l ON l.id = c.first_link_id"
    )
    params: tuple[Any, ...] = ()
    if recruiter_id is not None:
        sql += " WHERE o.recruiter_id = ?"
        params = (recruiter_id,)
    sql += " ORDER BY o.id, c.first_at, c.user_id"
    return [
        ConsentedRow(
            name=name or "",
            role=role,
            company=company,
            channel=channel or "",
            decision=decision or "",
            interview_at=None if at is None else datetime.fromtimestamp(at, UTC),
            attended=attended or "",
        )
        for name, role, company, channel, decision, at, attended in _all(conn, (sql, params))
    ]


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def export_csv(rows: Sequence[ConsentedRow]) -> bytes:
    """UTF-8 CSV with a header row; times in ISO 8601 UTC.

    Starts with a byte-order mark: without it Excel reads UTF-8 as the local code page and
    mangles any non-ASCII name. Every text cell is guarded against formula injection.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for r in rows:
        at = "" if r.interview_at is None else r.interview_at.astimezone(UTC).isoformat()
        cells = (r.name, r.role, r.company, r.channel, r.decision, at, r.attended)
        writer.writerow([_cell(c) for c in cells])
    return out.getvalue().encode("utf-8-sig")


# --- chart -----------------------------------------------------------------------------------

STEP_LABELS: Mapping[str, str] = {
    "opened": "opened the link",
    "engaged": "engaged",
    "decided": "decided",
    "time_set": "interview time set",
    "reminded": "reminded",
    "attended": "attended",
}


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width, max_lines=2, placeholder="…")) or text


def _plain(text: str) -> str:
    # An unescaped pair of '$' would switch matplotlib to mathtext; "\$" draws a plain '$'.
    return text.replace("$", r"\$")


def chart_png(
    funnel: Funnel,
    reasons: Sequence[Reason],
    title: str,
    labels: Mapping[str, str] | None = None,
    step_labels: Mapping[str, str] | None = None,
) -> bytes:
    """One 900x900 PNG: the funnel as horizontal bars and, if any, the top reasons.

    CPU-bound (about 0.2 s, more on the first call, which imports matplotlib): call it
    through asyncio.to_thread. Uses Figure + FigureCanvasAgg, no pyplot state, so calls are
    independent.
    """
    # Imported here so the bot starts (and most processes run) without loading matplotlib.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = {**STEP_LABELS, **(step_labels or {})}
    shown = list(reasons[:CHART_REASONS])
    fig = Figure(figsize=(9, 9), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    if shown:
        top, bottom = fig.subplots(2, 1, height_ratios=[len(STAGES), max(len(shown), 3)])
    else:
        top, bottom = fig.subplots(1, 1), None
    fig.suptitle(_plain(_wrap(title, 48)), fontsize=18)

    stages = funnel.stages()
    values = [s.count for s in stages]
    decision_split = " · ".join(f"{d} {funnel.counts[d]}" for d in DECISIONS)
    ticks = [
        names.get(s.name, s.name) + (f"\n({decision_split})" if s.name == "decided" else "")
        for s in stages
    ]
    positions = range(len(stages))
    bars = top.barh(positions, values, color="#3b7dd8")
    top.set_yticks(list(positions), [_plain(t) for t in ticks], fontsize=13)
    top.invert_yaxis()
    texts = [
        f"{s.count:,}" + ("" if s.drop_off is None else f"  (\N{MINUS SIGN}{s.drop_off:.0f}%)")
        for s in stages
    ]
    top.bar_label(bars, texts, padding=4, fontsize=13)
    top.set_xlim(0, max(max(values), 1) * 1.35)  # room for the labels right of the bars
    top.set_title("Funnel: candidates per step (drop-off from the step above)", fontsize=13)
    _tidy(top)

    if bottom is not None:
        # Hidden counts get a short stub bar: visible, yet not a length to read a number from.
        largest = max((r.count or 0 for r in shown), default=0)
        stub = max(largest, MIN_SHOWN) * 0.04
        lengths = [r.count if r.count is not None else stub for r in shown]
        colours = ["#e08a2c" if r.count is not None else "#c9c9c9" for r in shown]
        rbars = bottom.barh(range(len(shown)), lengths, color=colours)
        bottom.set_yticks(
            list(range(len(shown))),
            [_plain(_wrap(r.label(labels), 28)) for r in shown],
            fontsize=13,
        )
        bottom.invert_yaxis()
        bottom.bar_label(rbars, [r.short for r in shown], padding=4, fontsize=13)
        bottom.set_xlim(0, max(largest, MIN_SHOWN) * 1.25)
        bottom.set_title("Most common worries", fontsize=13)
        _tidy(bottom)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _tidy(ax: Axes) -> None:
    ax.xaxis.set_visible(False)  # the bars are labelled; an axis would only add clutter
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
