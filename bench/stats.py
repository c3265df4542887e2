"""Benchmark: recruiter /stats (funnel + reasons), the chart and the CSV export at scale.

    python -m bench.stats                          # defaults below, about 30-60 seconds
    python -m bench.stats --candidates 100000 --noise-openings 20 --noise-size 5000 --runs 15

Builds a fresh SQLite file through the real migrations: one opening with --candidates candidates
(three links: main, LinkedIn, job fair) and --noise-openings other openings of --noise-size
each, spread over five recruiters (the benchmarked recruiter owns the big opening and a fifth
of the others). Funnel rows spread over 60 days: everyone opened, about 70 % engaged, most of
them decided (some changed their mind), worries across nine objection ids, interview times,
reminders and attendance. Then times, as medians of --runs runs after one warm-up: what the
recruiter waits for, the desk's own answers (/stats of the big opening as text, for each period,
and its chart drawn after it; the opening's screen; /links; the recruiter's /stats), then the
queries underneath (funnel + reasons for the big opening, one of its links, the recruiter's
openings and everything (admin), each period), the chart alone, and the consented export. Prints
the query plans and appends the report to bench/results-stats.md (--out), replacing an earlier
run's section of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.nudges import fmt_n, machine

if TYPE_CHECKING:
    import aiosqlite

    from bot.recruiters.stats import Scope

ROOT = Path(__file__).resolve().parent.parent
HEADING = "# Recruiter stats benchmark"
NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())
DAY = 86400
TARGET_MS = 200.0
RECRUITERS = 5
BIG = 1  # the big opening's id; its recruiter is recruiter 1
# Objection ids with a long tail, as real worries tend to have.
WORRIES = {
    "nervous": 30,
    "not_a_fit": 20,
    "already_employed": 12,
    "salary": 10,
    "commute": 8,
    "no_time": 7,
    "bad_reviews": 6,
    "overqualified": 4,
    "scam": 3,
}
MB = 1024 * 1024


# --- building the database -------------------------------------------------------------------


def pick_worries(rng: random.Random, k: int) -> list[str]:
    """k distinct objection ids, drawn by weight."""
    chosen: list[str] = []
    while len(chosen) < k:
        worry = rng.choices(list(WORRIES), weights=list(WORRIES.values()))[0]
        if worry not in chosen:
            chosen.append(worry)
    return chosen


def candidate_rows(
    rng: random.Random, user: int, opening: int, link: int
) -> tuple[list[tuple[Any, ...]], tuple[Any, ...]]:
    """One candidate's funnel rows and candidates row."""
    rows: list[tuple[Any, ...]] = []

    def add(step: str, at: int, worry: str = "") -> None:
        rows.append((opening, link, user, step, worry, min(at, NOW_TS)))

    opened = NOW_TS - rng.randrange(60 * DAY)
    add("opened", opened)
    decision = interview = attended = None
    if rng.random() < 0.70:
        engaged = opened + rng.randrange(30, 3600)
        add("engaged", engaged)
        for i, worry in enumerate(pick_worries(rng, rng.choice((0, 1, 1, 1, 2, 2, 3)))):
            add("worry", engaged + 60 * (i + 1), worry)
        if rng.random() < 0.85:
            at = engaged + rng.randrange(300, 2 * DAY)
            decision = rng.choices(("go", "unsure", "pass"), weights=(45, 25, 30))[0]
            add(decision, at)
            if decision == "unsure" and rng.random() < 0.4:  # made up their mind later
                decision = rng.choice(("go", "pass"))
                at += rng.randrange(DAY, 5 * DAY)
                add(decision, at)
            if decision == "go" and rng.random() < 0.8:
                add("time_set", at + rng.randrange(60, 3600))
                interview = at + rng.randrange(2 * DAY, 10 * DAY)
                if interview - DAY <= NOW_TS and rng.random() < 0.85:
                    add("reminded", interview - DAY)
                    if interview + 3600 <= NOW_TS and rng.random() < 0.75:
                        add("attended", interview + 3600)
                        attended = "yes"
    consent = rng.choices((None, 0, 1), weights=(50, 20, 30))[0]
    name = f"Candidate {user}" if consent == 1 else None
    candidate = (
        user,
        opening,
        link,
        link,
        consent,
        name,
        decision,
        interview,
        attended,
        opened,
        max(r[5] for r in rows),
    )
    return rows, candidate


def build_db(path: Path, big: int, noise_openings: int, noise_size: int) -> dict[str, Any]:
    from bot.storage.db import Database

    async def create() -> None:
        db = await Database.open(path)  # the real schema and migrations, WAL mode
        await db.close()

    started = time.perf_counter()
    asyncio.run(create())
    rng = random.Random(20270301)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")  # a scratch file: no need to survive a crash
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO recruiters (user_id, status, name, created_at, updated_at)"
        " VALUES (?, 'approved', ?, ?, ?)",
        [(r, f"Recruiter {r}", NOW_TS, NOW_TS) for r in range(1, RECRUITERS + 1)],
    )
    # Opening 1 is the big one; the others go round the recruiters, starting with recruiter 2.
    openings = [(BIG, 1, big)] + [
        (o, (o - 2 + 1) % RECRUITERS + 1, noise_size) for o in range(2, noise_openings + 2)
    ]
    conn.executemany(
        "INSERT INTO openings (id, recruiter_id, role, company, created_at) VALUES (?, ?, ?, ?, ?)",
        [(o, r, f"Role {o}", f"Company {r}", NOW_TS - 90 * DAY) for o, r, _ in openings],
    )
    links: dict[int, list[tuple[int, float]]] = {}
    link_rows: list[tuple[Any, ...]] = []
    for o, _, _ in openings:
        channels = (
            [(None, 0.6), ("LinkedIn", 0.3), ("job fair", 0.1)]
            if o == BIG
            else [(None, 0.7), ("LinkedIn", 0.3)]
        )
        for channel, share in channels:
            link_id = len(link_rows) + 1
            link_rows.append((link_id, o, f"code-{link_id}", channel, NOW_TS - 90 * DAY))
            links.setdefault(o, []).append((link_id, share))
    conn.executemany(
        "INSERT INTO links (id, opening_id, code, channel, created_at) VALUES (?, ?, ?, ?, ?)",
        link_rows,
    )
    user = 0
    funnel_count = 0
    for o, _, size in openings:
        ids = [link for link, _ in links[o]]
        shares = [share for _, share in links[o]]
        users, candidates, funnel = [], [], []
        for _ in range(size):
            user += 1
            rows, candidate = candidate_rows(rng, user, o, rng.choices(ids, shares)[0])
            users.append((user, user, NOW_TS - 60 * DAY, NOW_TS))
            candidates.append(candidate)
            funnel.extend(rows)
        conn.executemany(
            "INSERT INTO users (user_id, chat_id, state, created_at, updated_at)"
            " VALUES (?, ?, '{}', ?, ?)",
            users,
        )
        conn.executemany(
            "INSERT INTO candidates (user_id, opening_id, first_link_id, last_link_id, consent,"
            " name, decision, interview_at, attended, first_at, last_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            candidates,
        )
        conn.executemany(
            "INSERT INTO funnel (opening_id, link_id, user_id, step, worry, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            funnel,
        )
        funnel_count += len(funnel)
    conn.execute("COMMIT")
    big_rows = conn.execute("SELECT count(*) FROM funnel WHERE opening_id = ?", (BIG,)).fetchone()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {
        "seconds": time.perf_counter() - started,
        "bytes": path.stat().st_size,
        "users": user,
        "funnel_rows": funnel_count,
        "big_rows": big_rows[0],
        "linkedin": links[BIG][1][0],
        "own_openings": sum(1 for _, r, _ in openings if r == 1),
    }


# --- measuring -------------------------------------------------------------------------------


async def median_ms(runs: int, work: Callable[[], Awaitable[object]]) -> float:
    await work()  # warm-up: page cache and prepared-statement cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def measure_desk(db: Any, runs: int, linkedin: int) -> dict[str, Any]:
    """The desk's answers as the recruiter gets them: rendered, buttons and all. /stats sends
    its text first and draws the chart after (`Answer.later`): timed apart."""
    from bot.recruiters.desk import RecruiterDesk
    from bot.recruiters.follower import RecruiterFollower
    from bot.recruiters.stats import Period
    from bot.render import Renderer

    follower = RecruiterFollower(db, default_timezone="UTC", worry_labels={}, clock=lambda: NOW)
    desk = RecruiterDesk(
        db,
        Renderer(),
        follower,
        admin_ids=frozenset(),
        clock=lambda: NOW,
        bot_username=lambda: "coach_bot",
        worry_labels={},
    )
    texts: dict[str, float] = {}
    charts: dict[str, float] = {}
    for period in Period:
        texts[period.value] = await median_ms(runs, partial(desk.stats, 1, "o", BIG, period.value))
        answer = await desk.stats(1, "o", BIG, period.value)
        assert answer.later is not None and len(answer.items) == 1

        async def chart(answer: Any = answer) -> object:
            return await answer.later()

        charts[period.value] = await median_ms(max(3, runs // 3), chart)
    screens = {
        "the opening's screen (its links and their counts, all time)": partial(
            desk.opening, 1, BIG
        ),
        "/links (the recruiter's openings and their counts, all time)": partial(desk.links, 1),
        "/stats as typed (all the recruiter's openings, 30 days), text": partial(
            desk.stats, 1, "a", 0, Period.MONTH.value
        ),
        "/stats of the LinkedIn link, all time, text": partial(
            desk.stats, 1, "l", linkedin, Period.ALL.value
        ),
    }
    others = {label: await median_ms(runs, work) for label, work in screens.items()}
    return {"text_ms": texts, "chart_ms": charts, "screens_ms": others}


async def measure(path: Path, runs: int, linkedin: int) -> dict[str, Any]:
    from bot.recruiters import stats
    from bot.recruiters.stats import Period, Scope
    from bot.storage.db import Database

    db = await Database.open(path)
    conn = db.conn
    desk = await measure_desk(db, runs, linkedin)
    print("  the desk's answers: done", file=sys.stderr, flush=True)
    scopes = {
        "the big opening": Scope(recruiter_id=1, opening_id=BIG),
        "its LinkedIn link": Scope(recruiter_id=1, link_id=linkedin),
        "the recruiter's openings": Scope(recruiter_id=1),
        "everything (admin)": Scope(),
    }
    rows: list[dict[str, Any]] = []
    plans: dict[str, dict[str, list[str]]] = {}
    for label, scope in scopes.items():
        for period in Period:
            since = period.since(NOW)

            async def both(scope: Scope = scope, since: datetime | None = since) -> object:
                return (
                    await db.run(stats.funnel, scope, since),
                    await db.run(stats.reasons, scope, since),
                )

            f = await db.run(stats.funnel, scope, since)
            r = await db.run(stats.reasons, scope, since)
            rows.append(
                {
                    "scope": label,
                    "period": period.value,
                    "opened": f.counts["opened"],
                    "rows": sum(f.counts.values()) + await worry_rows(conn, scope, since),
                    "funnel_ms": await median_ms(runs, partial(db.run, stats.funnel, scope, since)),
                    "reasons_ms": await median_ms(
                        runs, partial(db.run, stats.reasons, scope, since)
                    ),
                    "both_ms": await median_ms(runs, both),
                    "reasons": len(r),
                }
            )
            if period in (Period.ALL, Period.WEEK):
                plans[f"{label}, {period.value}"] = await db.run(stats.query_plans, scope, since)
        print(f"  {label}: done", file=sys.stderr, flush=True)

    big = Scope(opening_id=BIG)
    f = await db.run(stats.funnel, big, None)
    r = await db.run(stats.reasons, big, None)
    started = time.perf_counter()
    png = stats.chart_png(f, r, "Role 1, Company 1")  # includes importing matplotlib
    chart_first = (time.perf_counter() - started) * 1000
    chart_times = []
    for _ in range(max(3, runs // 3)):
        started = time.perf_counter()
        stats.chart_png(f, r, "Role 1, Company 1")
        chart_times.append(time.perf_counter() - started)

    consented = await db.run(stats.consented_rows, 1)
    export_ms = await median_ms(max(3, runs // 3), partial(db.run, stats.consented_rows, 1))
    started = time.perf_counter()
    csv_bytes = stats.export_csv(consented)
    csv_ms = (time.perf_counter() - started) * 1000
    await db.close()
    return {
        "desk": desk,
        "rows": rows,
        "plans": plans,
        "chart_first_ms": chart_first,
        "chart_ms": statistics.median(chart_times) * 1000,
        "png_bytes": len(png),
        "export_rows": len(consented),
        "export_query_ms": export_ms,
        "export_csv_ms": csv_ms,
        "csv_bytes": len(csv_bytes),
    }


async def worry_rows(conn: aiosqlite.Connection, scope: Scope, since: datetime | None) -> int:
    """The scope's worry rows: with the step counts, what the queries have to read."""
    from bot.recruiters.stats import funnel_queries

    async with conn.execute(*funnel_queries(scope, since)["worries"]) as cur:
        return sum(int(n) for _, n in await cur.fetchall())


# --- the report ------------------------------------------------------------------------------


def report(args: argparse.Namespace, build: dict[str, Any], m: dict[str, Any], wall: float) -> str:
    out = [HEADING, ""]
    out.append(
        f"`python -m bench.stats --candidates {args.candidates} --noise-openings"
        f" {args.noise_openings} --noise-size {args.noise_size} --runs {args.runs}`"
        f" ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, whole run {wall:.0f} s)"
    )
    out += ["", "## Machine", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in machine().items()]
    out += [
        "",
        "## Data",
        "",
        f"* {fmt_n(build['users'])} candidates in {args.noise_openings + 1} openings of"
        f" {RECRUITERS} recruiters; {fmt_n(build['funnel_rows'])} funnel rows, of which"
        f" {fmt_n(build['big_rows'])} in the big opening ({fmt_n(args.candidates)} candidates).",
        f"* DB file {build['bytes'] / MB:.0f} MB, built in {build['seconds']:.1f} s"
        " (`executemany` in one transaction, through the real migrations).",
        f"* The recruiter's openings: the big one and {build['own_openings'] - 1} of the others.",
        "",
        f"## What the recruiter waits for: the desk's answers, median of {args.runs} runs",
        "",
        "Rendered and with their buttons, as the front end sends them. /stats of an opening"
        " answers with its text (funnel, reasons, each channel in the period) and draws the"
        " chart after the text went out.",
        "",
        "| /stats of the big opening | text answer | chart, sent after it |",
        "|---|---:|---:|",
    ]
    desk = m["desk"]
    for period, label in (("7d", "last 7 days"), ("30d", "last 30 days"), ("all", "all time")):
        text, chart = desk["text_ms"][period], desk["chart_ms"][period]
        out.append(f"| {label} | **{text:.1f} ms** | {chart:.0f} ms |")
    out += ["", "| other screens | answer |", "|---|---:|"]
    out += [f"| {label} | {ms:.1f} ms |" for label, ms in desk["screens_ms"].items()]
    out += [
        "",
        f"## /stats: `funnel` + `reasons`, median of {args.runs} runs (page cache warm)",
        "",
        "| scope | period | funnel rows read | opened | funnel | reasons | funnel + reasons |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in m["rows"]:
        out.append(
            f"| {r['scope']} | {r['period']} | {fmt_n(r['rows'])} | {fmt_n(r['opened'])}"
            f" | {r['funnel_ms']:.1f} ms | {r['reasons_ms']:.1f} ms | **{r['both_ms']:.1f} ms** |"
        )
    out += [
        "",
        "## Chart and export",
        "",
        "| what | time |",
        "|---|---:|",
        f"| `chart_png`, first call in the process (imports matplotlib) | {m['chart_first_ms']:.0f}"
        " ms |",
        f"| `chart_png`, later calls (median; {m['png_bytes'] / 1024:.0f} KB PNG, 900x900) |"
        f" {m['chart_ms']:.0f} ms |",
        f"| `consented_rows` for the recruiter ({fmt_n(m['export_rows'])} rows, median) |"
        f" {m['export_query_ms']:.0f} ms |",
        f"| `export_csv` of them ({m['csv_bytes'] / 1024:.0f} KB) | {m['export_csv_ms']:.0f} ms |",
    ]
    big = [r for r in m["rows"] if r["scope"] == "the big opening"]
    worst = max(r["both_ms"] for r in big)
    slowest_text = max(desk["text_ms"].values())
    scans = [
        f"{name}/{q}: {line}"
        for name, plan in m["plans"].items()
        for q, lines in plan.items()
        for line in lines
        if line.startswith("SCAN f")
    ]
    opening_scans = [s for s in scans if not s.startswith("everything")]
    out += [
        "",
        "## Targets",
        "",
        "| target | met | measured |",
        "|---|:---:|---|",
        f"| /stats of the {fmt_n(args.candidates)}-candidate opening answers (text) under"
        f" {TARGET_MS:.0f} ms, every period | {'yes' if slowest_text < TARGET_MS else '**no**'}"
        f" | slowest {slowest_text:.1f} ms |",
        f"| funnel + reasons for the {fmt_n(args.candidates)}-candidate opening under"
        f" {TARGET_MS:.0f} ms, every period | {'yes' if worst < TARGET_MS else '**no**'}"
        f" | slowest {worst:.1f} ms |",
        "| opening, link and recruiter scopes read the covering indexes, no scan of funnel"
        f" | {'yes' if not opening_scans else '**no**'}"
        f" | {'; '.join(opening_scans) or 'SEARCH f USING COVERING INDEX … (… step=? AND at>?)'} |",
        "",
        "## How funnel is read (EXPLAIN QUERY PLAN; all four statements, full plans on stdout)",
        "",
        "| scope, period | access to funnel | temporary b-trees |",
        "|---|---|---|",
    ]
    for name, plan in m["plans"].items():
        lines = [line for q in plan.values() for line in q]
        access = dict.fromkeys(x for x in lines if x.startswith(("SEARCH f ", "SCAN f ")))
        temp = [
            f"{q}: {x.removeprefix('USE TEMP B-TREE FOR ')}"
            for q, steps in plan.items()
            for x in steps
            if x.startswith("USE TEMP B-TREE")
        ]
        out.append(f"| {name} | {'<br>'.join(access)} | {'; '.join(temp) or 'none'} |")
    out += [
        "",
        "## How it was measured",
        "",
        "* One process, one aiosqlite connection opened with `Database.open`; each figure is the"
        " median of the runs after one unmeasured warm-up, so the page cache is warm.",
        "* funnel = `stats.funnel` (counts per opening and step, summed; distinct deciders per"
        " opening); reasons = `stats.reasons` (counts per worry; the distinct count of worried"
        " candidates runs only when every worry count is under 3, never at this size); the last"
        " column runs both, as /stats does.",
        "* The desk's answers are `RecruiterDesk.stats` / `.opening` / `.links` on the same"
        " connection, rendered with the real templates; the chart is `Answer.later()`, which the"
        " front end awaits only after sending the text.",
        "* Every scope but the admin one passes recruiter_id too, as a handler checking"
        " ownership would.",
        "* The admin scope has no narrower key, so it scans a covering index of the whole"
        " funnel: expected, and still a fraction of a second.",
        "* The first chart in a process pays for importing matplotlib; later ones are CPU-bound"
        " (run them with asyncio.to_thread).",
    ]
    return "\n".join(out) + "\n"


def write(out: Path, text: str) -> None:
    """Append our section, or replace the one an earlier run of this benchmark left."""
    old = out.read_text(encoding="utf-8") if out.exists() else ""
    start = old.find(HEADING + "\n")
    if start == -1:
        out.write_text(old.rstrip("\n") + ("\n\n" if old else "") + text, encoding="utf-8")
        return
    end = old.find("\n# ", start + len(HEADING))
    rest = old[end + 1 :] if end != -1 else ""
    out.write_text(old[:start] + text + ("\n" + rest if rest else ""), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--candidates", type=int, default=100_000, help="in the big opening")
    parser.add_argument("--noise-openings", type=int, default=20)
    parser.add_argument("--noise-size", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-stats.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-stats-") as tmp:
        path = Path(tmp) / "stats.sqlite3"
        print("building…", file=sys.stderr, flush=True)
        build = build_db(path, args.candidates, args.noise_openings, args.noise_size)
        print(
            f"built in {build['seconds']:.1f} s; measuring…",
            file=sys.stderr,
            flush=True,
        )
        m = asyncio.run(measure(path, args.runs, build["linkedin"]))
    text = report(args, build, m, time.perf_counter() - started)
    print(text)
    print("## Query plans\n")
    for name, plan in m["plans"].items():
        print(f"{name}:")
        for q, lines in plan.items():
            print("\n".join([f"  {q}:", *(f"    -> {line}" for line in lines)]))
    if not args.no_write:
        write(args.out, text)


if __name__ == "__main__":
    main()
