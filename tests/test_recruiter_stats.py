"""Funnel statistics, reasons, the CSV export and the chart, over a small hand-built funnel.

Every expected number below was counted by hand from the table in `seed`, not from the code.
"""

from __future__ import annotations

import asyncio
import csv
import io
import struct
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.recruiters import stats
from bot.recruiters.stats import (
    STAGES,
    STEPS,
    ConsentedRow,
    Funnel,
    Period,
    Reason,
    Scope,
    chart_png,
    consented_rows,
    export_csv,
    funnel,
    query_plans,
    reasons,
)
from bot.storage.db import Database

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
WEEK = NOW - timedelta(days=7)
MONTH = NOW - timedelta(days=30)

ANN, BEA = 900, 901  # two recruiters
O1, O2, O3 = 1, 2, 3  # O1, O2 are Ann's; O3 is Bea's
MAIN1, LINKEDIN1, MAIN2, MAIN3 = 11, 12, 21, 31


def ago(days: float) -> int:
    return int((NOW - timedelta(days=days)).timestamp())


# (user, opening, link, steps {step: days ago}, worries {worry: days ago})
# fmt: off
FUNNEL: list[tuple[int, int, int, dict[str, float], dict[str, float]]] = [
    # Opening 1, main link: users 1-7.
    (1, O1, MAIN1, dict(opened=40, engaged=40, go=39, time_set=39, reminded=35, attended=34),
        {"nervous": 40}),
    (2, O1, MAIN1, dict(opened=20, engaged=20, unsure=20, go=19, time_set=19, reminded=15),
        {"nervous": 20, "not_a_fit": 20}),
    (3, O1, MAIN1, dict(opened=10, engaged=10, pass_=10), {"not_a_fit": 10}),
    (4, O1, MAIN1, dict(opened=5, engaged=5, unsure=5), {"nervous": 5}),
    (5, O1, MAIN1, dict(opened=3, engaged=3, go=2, time_set=2, reminded=1, attended=0.05),
        {"commute": 3}),
    (6, O1, MAIN1, dict(opened=2), {}),
    (7, O1, MAIN1, dict(opened=1, engaged=1), {"nervous": 1}),
    # Opening 1, LinkedIn: users 8-12. User 9 sits exactly on the 7-day cut (included),
    # user 11 one second before it (excluded).
    (8, O1, LINKEDIN1, dict(opened=25, engaged=25, go=25, time_set=24), {"salary": 25}),
    (9, O1, LINKEDIN1, dict(opened=7, engaged=7, pass_=7), {"not_a_fit": 7}),
    (10, O1, LINKEDIN1, dict(opened=4, engaged=4, go=4, time_set=4, reminded=3), {"nervous": 4}),
    (11, O1, LINKEDIN1, dict(opened=7 + 1 / 86400), {}),
    (12, O1, LINKEDIN1, dict(opened=50, engaged=50, unsure=50), {"salary": 50}),
    # Opening 2 (Ann's too). User 1 again: a second candidacy, counted on its own.
    (1, O2, MAIN2, dict(opened=3, engaged=3, go=3, pass_=2), {}),
    (13, O2, MAIN2, dict(opened=8, engaged=8, go=8), {"nervous": 8}),
    (14, O2, MAIN2, dict(opened=1), {}),
    # Opening 3 is Bea's: plenty of activity that must never show up in Ann's figures.
    *[
        (u, O3, MAIN3, dict(opened=2, engaged=2, go=2, time_set=2), {w: 2})
        for u, w in ((15, "scam"), (16, "scam"), (17, "scam"), (18, "nervous"))
    ],
]
# fmt: on

# (user, opening, link, consent, name, decision, interview days from now, attended)
Candidate = tuple[int, int, int, int | None, str | None, str | None, float | None, str | None]
CANDIDATES: list[Candidate] = [
    (1, O1, MAIN1, 1, "Ana", "go", -38, "yes"),
    (2, O1, MAIN1, 1, '=HYPERLINK("http://x.example","open")', "go", -18, None),
    (3, O1, MAIN1, 0, None, "pass", None, None),
    (4, O1, MAIN1, None, None, "unsure", None, None),
    (5, O1, MAIN1, 0, None, "go", -1, "yes"),
    (6, O1, MAIN1, None, None, None, None, None),
    (7, O1, MAIN1, None, None, None, None, None),
    (8, O1, LINKEDIN1, 1, "Émile Zoë", "go", 7 + 4.5 / 24, None),
    (9, O1, LINKEDIN1, 1, "-2+3", "pass", None, None),
    (10, O1, LINKEDIN1, 1, "+44 20 7946 0000", "go", 2, None),
    (11, O1, LINKEDIN1, None, None, None, None, None),
    (12, O1, LINKEDIN1, 1, "@SUM(A1:A9)", "unsure", None, None),
    (1, O2, MAIN2, 0, None, "pass", None, None),
    (13, O2, MAIN2, 1, "Kai", "go", None, None),
    (14, O2, MAIN2, None, None, None, None, None),
    (15, O3, MAIN3, 1, "Bea's candidate", "go", 1, None),
    (16, O3, MAIN3, 0, None, "go", 1, None),
    (17, O3, MAIN3, None, None, "go", 1, None),
    (18, O3, MAIN3, None, None, "go", 1, None),
]


async def seed(db: Database) -> None:
    users = sorted({row[0] for row in FUNNEL} | {row[0] for row in CANDIDATES})
    conn = db.conn
    await conn.executemany(
        "INSERT INTO users (user_id, chat_id, state, created_at, updated_at)"
        " VALUES (?, ?, '{}', ?, ?)",
        [(u, u, ago(60), ago(60)) for u in users],
    )
    await conn.executemany(
        "INSERT INTO recruiters (user_id, status, name, created_at, updated_at)"
        " VALUES (?, 'approved', ?, ?, ?)",
        [(ANN, "Ann", ago(90), ago(90)), (BEA, "Bea", ago(90), ago(90))],
    )
    await conn.executemany(
        "INSERT INTO openings (id, recruiter_id, role, company, created_at) VALUES (?, ?, ?, ?, ?)",
        [
            (O1, ANN, "Backend developer", "Acme", ago(60)),
            (O2, ANN, "Data analyst", "Acme, Inc.", ago(60)),
            (O3, BEA, "Designer", "Other Co", ago(60)),
        ],
    )
    await conn.executemany(
        "INSERT INTO links (id, opening_id, code, channel, created_at) VALUES (?, ?, ?, ?, ?)",
        [
            (MAIN1, O1, "c-main1", None, ago(60)),
            (LINKEDIN1, O1, "c-li1", "LinkedIn", ago(60)),
            (MAIN2, O2, "c-main2", None, ago(60)),
            (MAIN3, O3, "c-main3", None, ago(60)),
        ],
    )
    rows = []
    for user, opening, link, steps, worries in FUNNEL:
        for step, days in steps.items():
            rows.append((opening, link, user, step.rstrip("_"), "", ago(days)))
        for worry, days in worries.items():
            rows.append((opening, link, user, "worry", worry, ago(days)))
    await conn.executemany(
        "INSERT INTO funnel (opening_id, link_id, user_id, step, worry, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    opened = {(u, o): s["opened"] for u, o, _, s, _ in FUNNEL}
    await conn.executemany(
        "INSERT INTO candidates (user_id, opening_id, first_link_id, last_link_id, consent,"
        " name, decision, interview_at, attended, first_at, last_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (u, o, link, link, consent, name, decision,
             None if when is None else ago(-when), attended,
             ago(opened[u, o]), ago(opened[u, o]))
            for u, o, link, consent, name, decision, when, attended in CANDIDATES
        ],
    )  # fmt: skip


@pytest.fixture
async def seeded(db: Database) -> Database:
    await seed(db)
    return db


def counts(*values: int) -> dict[str, int]:
    return dict(zip(STEPS, values, strict=True))


#                 opened engaged go unsure pass time_set reminded attended | decided
O1_ALL = (counts(12, 10, 5, 3, 2, 5, 4, 2), 9)
O1_MONTH = (counts(10, 8, 4, 2, 2, 4, 3, 1), 7)
O1_WEEK = (counts(6, 5, 2, 1, 1, 2, 2, 1), 4)
MAIN1_ALL = (counts(7, 6, 3, 2, 1, 3, 3, 2), 5)
LINKEDIN1_ALL = (counts(5, 4, 2, 1, 1, 2, 1, 0), 4)
O2_ALL = (counts(3, 2, 2, 0, 1, 0, 0, 0), 2)
# O1 + O2: user 1 decided in both openings, so 'decided' is 9 + 2, not 10.
ANN_ALL = (counts(15, 12, 7, 3, 3, 5, 4, 2), 11)
EVERYONE_ALL = (counts(19, 16, 11, 3, 3, 9, 4, 2), 15)
ZERO = (counts(0, 0, 0, 0, 0, 0, 0, 0), 0)


def pair(f: Funnel) -> tuple[dict[str, int], int]:
    return dict(f.counts), f.decided


# --- funnel ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "since", "expected"),
    [
        (Scope(opening_id=O1), None, O1_ALL),
        (Scope(opening_id=O1), MONTH, O1_MONTH),
        (Scope(opening_id=O1), WEEK, O1_WEEK),
        (Scope(link_id=MAIN1), None, MAIN1_ALL),
        (Scope(link_id=LINKEDIN1), None, LINKEDIN1_ALL),
        (Scope(opening_id=O2), None, O2_ALL),
        (Scope(recruiter_id=ANN), None, ANN_ALL),
        (Scope(), None, EVERYONE_ALL),
        # Set fields narrow each other; consistent ones change nothing.
        (Scope(recruiter_id=ANN, opening_id=O1), WEEK, O1_WEEK),
        (Scope(recruiter_id=ANN, opening_id=O1, link_id=MAIN1), None, MAIN1_ALL),
    ],
    ids=lambda v: repr(v) if isinstance(v, Scope) else None,
)
async def test_counts_per_step(
    seeded: Database, scope: Scope, since: datetime | None, expected: tuple[dict[str, int], int]
) -> None:
    assert pair(await seeded.run(funnel, scope, since)) == expected


async def test_the_links_of_an_opening_add_up_to_it(seeded: Database) -> None:
    main = await seeded.run(funnel, Scope(link_id=MAIN1), None)
    linkedin = await seeded.run(funnel, Scope(link_id=LINKEDIN1), None)
    whole = await seeded.run(funnel, Scope(opening_id=O1), None)
    for step in (*STEPS, "decided"):
        assert main.count(step) + linkedin.count(step) == whole.count(step), step


@pytest.mark.parametrize(
    "scope",
    [
        Scope(recruiter_id=ANN, opening_id=O3),  # Bea's opening, asked as Ann
        Scope(recruiter_id=ANN, link_id=MAIN3),  # Bea's link, asked as Ann
        Scope(recruiter_id=BEA, opening_id=O1),
        Scope(opening_id=O2, link_id=MAIN1),  # a link of another opening
        Scope(opening_id=999),
        Scope(link_id=999),
        Scope(recruiter_id=12345),  # no openings
    ],
    ids=repr,
)
async def test_a_scope_never_reaches_outside_itself(seeded: Database, scope: Scope) -> None:
    assert pair(await seeded.run(funnel, scope, None)) == ZERO
    assert await seeded.run(reasons, scope, None) == []


async def test_one_recruiter_never_sees_anothers_openings(seeded: Database) -> None:
    bea = await seeded.run(funnel, Scope(recruiter_id=BEA), None)
    assert pair(bea) == (counts(4, 4, 4, 0, 0, 4, 0, 0), 4)
    ann = await seeded.run(reasons, Scope(recruiter_id=ANN), None)
    assert "scam" not in {r.worry for r in ann}  # only Bea's candidates worried about a scam


async def test_the_period_cut_is_at_or_after_since(seeded: Database) -> None:
    # User 9 is exactly on the 7-day cut, user 11 one second before it.
    just_after = WEEK + timedelta(seconds=1)
    week = await seeded.run(funnel, Scope(link_id=LINKEDIN1), WEEK)
    later = await seeded.run(funnel, Scope(link_id=LINKEDIN1), just_after)
    assert week.counts["opened"] == 2  # users 9 and 10
    assert later.counts["opened"] == 1  # user 10
    assert week.counts["pass"] == 1 and later.counts["pass"] == 0


def test_periods() -> None:
    assert Period("7d").since(NOW) == WEEK
    assert Period("30d").since(NOW) == MONTH
    assert Period("all").since(NOW) is None


async def test_since_must_be_timezone_aware(seeded: Database) -> None:
    with pytest.raises(ValueError, match="timezone"):
        await seeded.run(funnel, Scope(opening_id=O1), datetime(2026, 11, 1))


async def test_drop_offs(seeded: Database) -> None:
    f = await seeded.run(funnel, Scope(opening_id=O1), None)
    # opened 12 -> engaged 10 -> decided 9 -> time set 5 -> reminded 4 -> attended 2
    assert [(s.name, s.count) for s in f.stages()] == list(
        zip(STAGES, (12, 10, 9, 5, 4, 2), strict=True)
    )
    drops = [s.drop_off for s in f.stages()]
    assert drops[0] is None
    assert drops[1:] == pytest.approx([100 * 2 / 12, 10.0, 100 * 4 / 9, 20.0, 50.0])


def test_drop_off_with_zeros_and_period_artefacts() -> None:
    nothing = Funnel(counts(0, 0, 0, 0, 0, 0, 0, 0), 0)
    assert [s.drop_off for s in nothing.stages()] == [None] * len(STAGES)
    assert nothing.empty
    # Opened 0 but engaged 3 (the opens were before the period): no division by zero;
    # engaged 3 -> decided 0 is a full drop; time set above decided is clamped to 0 %.
    odd = Funnel(counts(0, 3, 0, 0, 0, 1, 0, 0), 0)
    assert odd.drop_off("engaged") is None
    assert odd.drop_off("decided") == 100.0
    assert odd.drop_off("time_set") is None
    assert Funnel(counts(2, 3, 0, 0, 0, 0, 0, 0), 0).drop_off("engaged") == 0.0
    assert not odd.empty


# --- reasons ---------------------------------------------------------------------------------


async def test_reasons_order_and_suppression(seeded: Database) -> None:
    got = await seeded.run(reasons, Scope(opening_id=O1), None)
    # nervous 5, not_a_fit 3 (shown: 3 is the threshold); salary 2 and commute 1 hidden, and
    # hidden ones sort by id alone, so their order does not tell the 2 from the 1.
    assert got == [
        Reason("nervous", 5),
        Reason("not_a_fit", 3),
        Reason("commute", None),
        Reason("salary", None),
    ]
    assert [r.shown for r in got] == ["5", "3", "fewer than 3", "fewer than 3"]
    assert [r.short for r in got] == ["5", "3", "<3", "<3"]


async def test_reasons_by_period_and_ties(seeded: Database) -> None:
    week = await seeded.run(reasons, Scope(opening_id=O1), WEEK)
    assert week == [Reason("nervous", 3), Reason("commute", None), Reason("not_a_fit", None)]
    month = await seeded.run(reasons, Scope(opening_id=O1), MONTH)
    assert month == [
        Reason("nervous", 4),
        Reason("not_a_fit", 3),
        Reason("commute", None),
        Reason("salary", None),
    ]
    # Everyone: nervous 7, then a tie at 3 broken by id.
    everyone = await seeded.run(reasons, Scope(), None)
    assert everyone[:3] == [Reason("nervous", 7), Reason("not_a_fit", 3), Reason("scam", 3)]
    ann = await seeded.run(reasons, Scope(recruiter_id=ANN), None)
    assert ann[0] == Reason("nervous", 6)  # 5 in opening 1, 1 in opening 2


async def test_no_reasons_when_fewer_than_three_candidates_worried(seeded: Database) -> None:
    # Opening 2: only user 13 voiced a worry; LinkedIn this week: users 9 and 10. Listing
    # "nervous: fewer than 3" there would tell the recruiter what that one person said.
    assert await seeded.run(reasons, Scope(opening_id=O2), None) == []
    assert await seeded.run(reasons, Scope(link_id=LINKEDIN1), WEEK) == []
    # With a third worried candidate (all time on LinkedIn: 8, 9, 10, 12) they appear.
    assert await seeded.run(reasons, Scope(link_id=LINKEDIN1), None) == [
        Reason("nervous", None),
        Reason("not_a_fit", None),
        Reason("salary", None),
    ]


async def test_it_is_candidates_not_rows_that_must_number_three(seeded: Database) -> None:
    # Opening 2: user 14 now voices three worries. Four worry rows, still two people.
    conn = seeded.conn
    await conn.executemany(
        "INSERT INTO funnel (opening_id, link_id, user_id, step, worry, at)"
        " VALUES (?, ?, 14, 'worry', ?, ?)",
        [(O2, MAIN2, w, ago(1)) for w in ("commute", "salary", "scam")],
    )
    assert await seeded.run(reasons, Scope(opening_id=O2), None) == []


def test_reason_labels() -> None:
    assert Reason("nervous", 4).label({"nervous": "I'm nervous"}) == "I'm nervous"
    assert Reason("not_a_fit", None).label({"nervous": "I'm nervous"}) == "not_a_fit"
    assert Reason("not_a_fit", None).label() == "not_a_fit"


# --- query plans -----------------------------------------------------------------------------


def reads_index_only(plan: Iterable[str], index: str) -> bool:
    """Every access to funnel (alias f) is a search of `index` alone: no table, no scan."""
    access = [line for line in plan if line.startswith(("SEARCH f ", "SCAN f "))]
    return bool(access) and all(f"SEARCH f USING COVERING INDEX {index} (" in a for a in access)


@pytest.mark.parametrize(
    ("scope", "index"),
    [
        (Scope(opening_id=O1), "funnel_by_opening"),
        (Scope(recruiter_id=ANN, opening_id=O1), "funnel_by_opening"),
        (Scope(link_id=LINKEDIN1), "funnel_by_link"),
        (Scope(recruiter_id=ANN, link_id=LINKEDIN1), "funnel_by_link"),
        (Scope(recruiter_id=ANN), "funnel_by_opening"),
    ],
    ids=repr,
)
@pytest.mark.parametrize("since", [None, WEEK], ids=["all", "week"])
async def test_queries_read_the_covering_index(
    seeded: Database, scope: Scope, index: str, since: datetime | None
) -> None:
    plans = await seeded.run(query_plans, scope, since)
    assert set(plans) == {"steps", "decided", "worries", "worried"}
    for name, plan in plans.items():
        assert reads_index_only(plan, index), (name, plan)
        if since is not None:
            assert any("at>?" in line for line in plan), (name, plan)  # a range, not a filter
    if scope == Scope(recruiter_id=ANN):
        assert any("openings_recruiter" in line for line in plans["steps"])


def test_values_are_parameters_not_sql() -> None:
    queries = stats.funnel_queries(Scope(recruiter_id=987654, opening_id=123456), WEEK)
    for sql, params in queries.values():
        assert "987654" not in sql and "123456" not in sql
        assert 987654 in params and 123456 in params and int(WEEK.timestamp()) in params


# --- export ----------------------------------------------------------------------------------


def parse(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


HEADER = ["name", "role", "company", "channel", "decision", "interview_at", "attended"]
ANN_ROWS = [
    # Opening 1 in order of arrival, then opening 2; only consent = 1.
    ["'@SUM(A1:A9)", "Backend developer", "Acme", "LinkedIn", "unsure", "", ""],
    ["Ana", "Backend developer", "Acme", "", "go", "2026-10-16T10:00:00+00:00", "yes"],
    ["Émile Zoë", "Backend developer", "Acme", "LinkedIn", "go", "2026-11-30T14:30:00+00:00", ""],
    [
        '\'=HYPERLINK("http://x.example","open")',
        "Backend developer",
        "Acme",
        "",
        "go",
        "2026-11-05T10:00:00+00:00",
        "",
    ],
    ["'-2+3", "Backend developer", "Acme", "LinkedIn", "pass", "", ""],
    [
        "'+44 20 7946 0000",
        "Backend developer",
        "Acme",
        "LinkedIn",
        "go",
        "2026-11-25T10:00:00+00:00",
        "",
    ],
    ["Kai", "Data analyst", "Acme, Inc.", "", "go", "", ""],
]


async def test_export_only_consented_candidates_of_the_recruiter(seeded: Database) -> None:
    rows = await seeded.run(consented_rows, ANN)
    assert parse(export_csv(rows)) == [HEADER, *ANN_ROWS]
    assert rows[1].interview_at == datetime(2026, 10, 16, 10, 0, tzinfo=UTC)


async def test_export_for_admins_has_everyone_consented(seeded: Database) -> None:
    table = parse(export_csv(await seeded.run(consented_rows, None)))
    assert table[0] == HEADER
    assert [r[0] for r in table[1:]] == [r[0] for r in ANN_ROWS] + ["Bea's candidate"]
    bea = parse(export_csv(await seeded.run(consented_rows, BEA)))
    assert bea == [HEADER, ["Bea's candidate", "Designer", "Other Co", "", "go",
                            "2026-11-24T10:00:00+00:00", ""]]  # fmt: skip


def test_export_guards_every_text_cell_against_formulas() -> None:
    row = ConsentedRow("=1+1", "+role", "-co", "@chan", "\tgo", None, "\ryes")
    data = export_csv([row])
    assert parse(data)[1] == ["'=1+1", "'+role", "'-co", "'@chan", "'\tgo", "", "'\ryes"]
    safe = ConsentedRow("Jo = Jo", "Dev", "A-B", "job fair", "go", None, "")
    assert parse(export_csv([safe]))[1] == ["Jo = Jo", "Dev", "A-B", "job fair", "go", "", ""]
    assert parse(export_csv([])) == [HEADER]


# --- deleting a candidate's data -------------------------------------------------------------


async def test_deleting_a_user_removes_them_from_counts_and_export(seeded: Database) -> None:
    conn = seeded.conn
    await conn.execute("DELETE FROM users WHERE user_id = 1")  # candidate in O1 and O2
    # User 1 had opened, engaged, go, time_set, reminded, attended in O1 and decided in O2.
    assert pair(await seeded.run(funnel, Scope(opening_id=O1), None)) == (
        counts(11, 9, 4, 3, 2, 4, 3, 1),
        8,
    )
    assert pair(await seeded.run(funnel, Scope(opening_id=O2), None)) == (
        counts(2, 1, 1, 0, 0, 0, 0, 0),
        1,
    )
    assert (await seeded.run(reasons, Scope(opening_id=O1), None))[0] == Reason("nervous", 4)
    names = [r.name for r in await seeded.run(consented_rows, ANN)]
    assert "Ana" not in names and len(names) == len(ANN_ROWS) - 1


# --- chart -----------------------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_chart_is_a_phone_sized_png(seeded: Database) -> None:
    f = await seeded.run(funnel, Scope(opening_id=O1), None)
    r = await seeded.run(reasons, Scope(opening_id=O1), None)
    assert png_size(chart_png(f, r, "Backend developer, Acme", {"nervous": "Nervous"})) == (
        900,
        900,
    )
    # Without reasons (an empty funnel too) it is still one image of the same size.
    empty = Funnel(counts(0, 0, 0, 0, 0, 0, 0, 0), 0)
    assert png_size(chart_png(empty, [], "Nothing yet")) == (900, 900)


def test_chart_text_is_plain_not_mathtext() -> None:
    # Unescaped, "$\nosuchcommand$" is parsed as mathtext and drawing fails.
    f = Funnel(counts(5, 4, 3, 1, 1, 2, 1, 1), 4)
    title = r"Pay $\nosuchcommand$ bonus"
    labels = {"salary": r"salary $\alpha$ or $\nosuch$"}
    data = chart_png(f, [Reason("salary", 4), Reason("commute", None)], title, labels)
    assert png_size(data) == (900, 900)


async def test_concurrent_charts_do_not_interfere() -> None:
    a = Funnel(counts(50, 40, 30, 5, 5, 20, 15, 10), 35)
    b = Funnel(counts(7, 3, 1, 0, 2, 1, 1, 0), 3)
    inputs = [(a, [Reason("nervous", 9)], "A"), (b, [], "B")] * 3
    alone = [chart_png(*args) for args in inputs[:2]]
    together = await asyncio.gather(*(asyncio.to_thread(chart_png, *args) for args in inputs))
    assert alone[0] != alone[1]
    assert list(together) == alone * 3


def test_importing_stats_does_not_load_matplotlib() -> None:
    code = (
        "import sys, bot.recruiters.stats as s\n"
        "before = any(m.split('.')[0] == 'matplotlib' for m in sys.modules)\n"
        "s.chart_png(s.Funnel(dict.fromkeys(s.STEPS, 0), 0), [], 't')\n"
        "after = any(m.split('.')[0] == 'matplotlib' for m in sys.modules)\n"
        "print(before, after)\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    # The check would notice: drawing a chart does load it.
    assert done.stdout.split() == ["False", "True"]
