"""End to end for follow-ups: plan from the conversation, see them in `python -m bot nudges`,
restart a day later, and get what is due while what expired is dropped."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot.nudges.cli import print_pending
from tests.conftest import FakeClock
from tests.e2e import Conversation, texts
from tests.fakebot import FakeBotApi

USER = 601


async def pending(db_path: Path) -> list[dict[str, Any]]:
    out = io.StringIO()
    await print_pending(db_path, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def states(runtime: Any) -> dict[str, str]:
    async with runtime.coach.store.db.conn.execute(
        "SELECT kind, state FROM nudges WHERE kind != 'reply'"
    ) as cur:
        return {row[0]: row[1] for row in await cur.fetchall()}


async def until(read: Any, expected: dict[str, str], timeout: float = 5.0) -> None:
    """Poll the stored outcome until it holds, with a deadline (no blind sleeps)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await read()
        if all(found.get(k) == v for k, v in expected.items()):
            return
        assert asyncio.get_running_loop().time() < deadline, f"{found} != {expected}"
        await asyncio.sleep(0.01)


async def test_going_with_a_time_plans_reminders_and_survives_a_restart(
    api: FakeBotApi, running_bot: Any, clock: FakeClock, db_path: Path
) -> None:
    # Monday 23 Nov 2026, 10:00 UTC. The candidate is in Paris (UTC+1 in November).
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.say(USER, "/start")
        sent = await chat.say(USER, "/timezone Paris")
        assert "Europe/Paris" in texts(sent)
        sent = await chat.tap(USER, "Going, want to prepare")
        assert "When is the interview?" in texts(sent)
        sent = await chat.say(USER, "Wed 3pm")
        assert "Wednesday 25 Nov at 15:00" in texts(sent) and "right?" in texts(sent)
        sent = await chat.tap(USER, "Yes")
        plan = texts(sent)
        assert "Tuesday 24 Nov at 15:00" in plan  # the checklist, 24 h before, local time
        # What an operator sees, in UTC.
        planned = await pending(db_path)
        assert [(n["kind"], n["due_at"]) for n in planned] == [
            ("prep", "2026-11-24T14:00:00Z"),
            ("pep", "2026-11-25T12:00:00Z"),
            ("debrief", "2026-11-25T17:00:00Z"),
        ]
        assert all(n["user_id"] == USER for n in planned)

    # The operator command itself, on the same file.
    cli = subprocess.run(
        [sys.executable, "-m", "bot", "nudges"],
        env={**os.environ, "DATABASE_PATH": str(db_path)},
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert [json.loads(line)["kind"] for line in cli.stdout.splitlines()] == [
        "prep",
        "pep",
        "debrief",
    ]

    # Down for two days: back on Wednesday at 13:30 Paris time. The checklist's moment passed
    # (its deadline is 2 h before the interview)... but the pep talk is still worth sending.
    clock.now = clock.now.replace(day=25, hour=12, minute=30)
    mark = api.mark()
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await api.wait_for("sendMessage", lambda c: "Still on?" in c.params["text"], after=mark)
        # The fake answers before the dispatcher records the send: wait for the record.
        await until(lambda: states(runtime), {"prep": "expired", "pep": "sent"})
        labels = chat.labels(USER)
        assert {"Still on", "Need to reschedule", "Can't make it"} <= set(labels)
        assert {"Remind me later", "Stop reminders"} <= set(labels)
        sent = await chat.tap(USER, "Still on")
        assert "Good luck" in texts(sent)

        # Three hours after the interview: "How did it go?"
        clock.now = clock.now.replace(hour=17, minute=1)
        mark = api.mark()
        runtime.dispatcher.wake()
        await api.wait_for(
            "sendMessage", lambda c: "How did it go?" in c.params["text"], after=mark
        )
        sent = await chat.tap(USER, "Went well")
        reflection = texts(sent)
        assert "thank-you" in reflection.lower() and "LinkedIn" in reflection
        store = runtime.coach.store
        record = await store.load_user(USER)
        assert record is not None and record.state.attended == "went_well"
        assert [n.kind for n in await store.pending_nudges(USER)] == ["followup"]

        sent = await chat.say(USER, "/nudges")
        assert "follow-up" in texts(sent)
        sent = await chat.say(USER, "/stop")
        assert not await store.pending_nudges(USER)
        record = await store.load_user(USER)
        assert record is not None and record.opted_out


async def test_unsure_gets_checkbacks_until_deciding(
    api: FakeBotApi, running_bot: Any, clock: FakeClock, db_path: Path
) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.to_menu(USER, "Just exploring", "Leaning no")
        await chat.tap(USER, "right job")
        await chat.tap(USER, "That helps")
        sent = await chat.tap(USER, "Still unsure")
        assert "When is the interview?" in texts(sent)
        kinds = [n["kind"] for n in await pending(db_path)]
        assert kinds == ["checkback", "checkback", "checkback"]

        clock.advance(days=1, minutes=1)
        mark = api.mark()
        runtime.dispatcher.wake()
        await api.wait_for(
            "sendMessage", lambda c: "Have you decided?" in c.params["text"], after=mark
        )
        sent = await chat.tap(USER, "I'll go")
        assert "When is the interview?" in texts(sent)
        assert not await pending(db_path), "deciding stops the check-backs"


async def test_reschedule_moves_the_plan(api: FakeBotApi, running_bot: Any, db_path: Path) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.say(USER, "/start")
        await chat.tap(USER, "Going, want to prepare")
        await chat.tap(USER, "Tomorrow")
        sent = await chat.say(USER, "11:00")
        assert "Tuesday 24 Nov at 11:00" in texts(sent)
        sent = await chat.tap(USER, "Yes")
        # Under 30 hours away there is no day-before checklist; the chat showed it once, at
        # the decision, and saving the time does not repeat it.
        assert "checklist" not in texts(sent)
        shown = [m for m in api.sent_messages(USER) if "Read up on the company" in m["text"]]
        assert len(shown) == 1
        before = await pending(db_path)
        assert [n["kind"] for n in before] == ["pep", "debrief"]
        await chat.say(USER, "/interview next friday 9:30")
        await chat.tap(USER, "Yes")
        after = await pending(db_path)
        assert [n["kind"] for n in after] == ["prep", "pep", "debrief"]
        # Friday 27 Nov 9:30 UTC: the pep talk (7:30) falls in quiet hours and moves to 8:00.
        assert after[1]["due_at"] == "2026-11-27T08:00:00Z"
        assert after[2]["due_at"] == "2026-11-27T12:30:00Z"


async def test_a_new_zone_keeps_the_typed_time_and_cancelled_reminders_stay_cancelled(
    api: FakeBotApi, running_bot: Any, db_path: Path
) -> None:
    # Monday 23 Nov 2026, 10:00 UTC. Typed in Paris: Wednesday 15:00 = 14:00 UTC.
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.say(USER, "/start")
        await chat.say(USER, "/timezone Paris")
        await chat.tap(USER, "Going, want to prepare")
        await chat.say(USER, "Wed 3pm")
        await chat.tap(USER, "Yes")
        await chat.say(USER, "/nudges")
        pep = next(label for label in chat.labels(USER) if "pep talk" in label)
        sent = await chat.tap(USER, pep)
        assert "Cancelled" in texts(sent)
        sent = await chat.say(USER, "/timezone London")
        assert "stays at 15:00" in texts(sent)
        planned = await pending(db_path)
        # 15:00 in London is 15:00 UTC: the prep and the debrief moved an hour with it; the
        # cancelled pep talk did not come back.
        assert [(n["kind"], n["due_at"]) for n in planned] == [
            ("prep", "2026-11-24T15:00:00Z"),
            ("debrief", "2026-11-25T18:00:00Z"),
        ]
        sent = await chat.say(USER, "/mydata")
        assert "Wednesday 25 Nov at 15:00" in texts(sent)
        assert "going to the interview" in texts(sent) and "Europe/London" in texts(sent)
