"""The Coach service over a real SQLite file with a fake clock: engine + storage + rendering."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.engine import buttons as B
from bot.engine import planner
from bot.engine.model import Event, State, Step
from bot.knowledge.base import load_default
from bot.knowledge.classifier import default_classifier
from bot.recruiters.follower import RELAY, relay, send_later
from bot.render import Renderer
from bot.service import Coach, Handled
from bot.storage.db import Database
from bot.storage.store import REPLY, Store

NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # Wednesday, 10:00 in Paris
USER, CHAT = 7, 70


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_coach(db: Database, clock: Clock) -> Coach:
    return Coach(Store(db), load_default(), default_classifier(), Renderer(), clock=clock)


@pytest.fixture
def coach(db: Database, clock: Clock) -> Coach:
    return make_coach(db, clock)


def datas(handled: Handled) -> list[str]:
    return [data for m in handled.messages for row in m.keyboard for _, data in row]


def button(handled: Handled, name: str, *args: str | int) -> str:
    wanted = B.Action(name, tuple(str(a) for a in args))
    for data in datas(handled):
        if B.unpack(data) == wanted:
            return data
    raise AssertionError(f"no {wanted} among {datas(handled)}")


def text(handled: Handled) -> str:
    return "\n".join(m.plain_text for m in handled.messages)


async def tap(coach: Coach, data: str, user: int = USER) -> Handled:
    return await coach.handle(Event(user, "button", data), user * 10)


async def command(coach: Coach, name: str, argument: str = "", user: int = USER) -> Handled:
    return await coach.handle(Event(user, "command", name, argument, "Ada"), user * 10)


async def state_of(coach: Coach, user: int = USER) -> State:
    record = await coach.store.load_user(user)
    assert record is not None
    return record.state


async def test_start_to_decision_is_stored(coach: Coach) -> None:
    welcome = await command(coach, "start")
    assert "Ada" in text(welcome)
    lean = await tap(coach, button(welcome, "sit", "invite"))
    menu = await tap(coach, button(lean, "lean", "unsure"))
    argument = await tap(coach, button(menu, "obj", "nervous"))
    source = load_default().objections["nervous"].arguments[0].source.label
    assert source in text(argument)
    decision = await tap(coach, button(argument, "ok", "nervous"))
    assert (await state_of(coach)).step == Step.DECISION
    unsure = await tap(coach, button(decision, "dec", "unsure"))
    assert datas(unsure)
    state = await state_of(coach)
    assert state.decision == "unsure" and state.objection == "nervous"
    pending = await coach.store.pending_nudges(USER)
    assert [n.kind for n in pending] == [planner.CHECKBACK] * 3
    assert pending[0].due_at == NOW + timedelta(days=1)
    record = await coach.store.load_user(USER)
    assert record is not None and record.chat_id == USER * 10


async def test_state_survives_a_restart_and_an_old_button_still_works(
    db_path: Path, clock: Clock
) -> None:
    first_db = await Database.open(db_path)
    first = make_coach(first_db, clock)
    welcome = await command(first, "start")
    lean = await tap(first, button(welcome, "sit", "explore"))
    old_unsure = button(lean, "lean", "unsure")
    await first_db.close()

    clock.now += timedelta(hours=5)
    second_db = await Database.open(db_path)
    second = make_coach(second_db, clock)
    assert (await state_of(second)).situation == "explore"
    assert (await state_of(second)).step == Step.LEAN
    help_ = await command(second, "help")
    assert button(help_, "lean", "yes")  # shows where we were
    menu = await tap(second, old_unsure)
    assert button(menu, "obj", "nervous")
    state = await state_of(second)
    assert state.step == Step.MENU and state.lean == "unsure" and state.situation == "explore"
    await second_db.close()


async def test_nudges_survive_a_restart(db_path: Path, clock: Clock) -> None:
    first_db = await Database.open(db_path)
    first = make_coach(first_db, clock)
    await command(first, "timezone", "Europe/Paris")
    confirm = await command(first, "interview", "Tue 3pm")
    await tap(
        first,
        button(confirm, "whenok", int(datetime(2026, 3, 10, 14, 0, tzinfo=UTC).timestamp() // 60)),
    )
    await first_db.close()

    second_db = await Database.open(db_path)
    second = make_coach(second_db, clock)
    listing = await command(second, "nudges")
    kinds = [n.kind for n in await second.store.pending_nudges(USER)]
    assert kinds == [planner.PREP, planner.PEP, planner.DEBRIEF]
    cancels = [B.unpack(d) for d in datas(listing) if d.startswith("v1:cancel:")]
    assert len(cancels) == 3
    await second_db.close()


async def test_one_users_concurrent_events_are_serialised(coach: Coach) -> None:
    await command(coach, "start")
    # Both events change a different part of the state: run unserialised, the second to
    # commit would overwrite the first with the state it loaded before the first committed.
    await asyncio.gather(
        command(coach, "timezone", "Europe/Berlin"),
        tap(coach, B.pack("sit", "invite")),
    )
    state = await state_of(coach)
    assert state.timezone == "Europe/Berlin"
    assert state.situation == "invite"


async def test_many_taps_of_one_user_all_count(coach: Coach) -> None:
    await command(coach, "start")
    taps = [B.pack("sit", "invite"), B.pack("lean", "no"), B.pack("obj", "nervous")]
    await asyncio.gather(*(tap(coach, d) for d in taps), command(coach, "timezone", "Tokyo"))
    state = await state_of(coach)
    assert (state.situation, state.lean, state.objection, state.timezone) == (
        "invite",
        "no",
        "nervous",
        "Asia/Tokyo",
    )


async def test_different_users_do_not_mix(coach: Coach) -> None:
    await asyncio.gather(*(command(coach, "start", user=u) for u in range(1, 11)))
    await asyncio.gather(*(tap(coach, B.pack("sit", "explore"), user=u) for u in range(1, 11)))
    for u in range(1, 11):
        record = await coach.store.load_user(u)
        assert record is not None and record.chat_id == u * 10
        assert record.state.situation == "explore"


async def test_on_schedule_is_called_when_nudges_are_scheduled(coach: Coach) -> None:
    calls: list[int] = []
    coach.on_schedule = lambda: calls.append(1)
    await command(coach, "start")
    await tap(coach, B.pack("sit", "invite"))
    assert calls == []  # nothing scheduled yet
    await tap(coach, B.pack("dec", "unsure"))
    assert calls == [1]
    await tap(coach, B.pack("nudge", 1, "later"))  # a snooze moves a nudge too
    assert calls == [1, 1]
    await command(coach, "stop")  # cancelling wakes nobody
    assert calls == [1, 1]


async def test_delete_then_nothing_is_left(coach: Coach) -> None:
    await command(coach, "start")
    await tap(coach, B.pack("dec", "unsure"))
    assert await coach.store.pending_nudges(USER)
    confirm = await command(coach, "delete")
    await tap(coach, button(confirm, "del", "yes"))
    assert await coach.store.load_user(USER) is None
    assert await coach.store.pending_nudges(USER) == []


async def test_stop_cancels_and_opts_out_until_the_user_writes(coach: Coach) -> None:
    await command(coach, "start")
    await tap(coach, B.pack("dec", "unsure"))
    await command(coach, "stop")
    record = await coach.store.load_user(USER)
    assert record is not None and record.opted_out
    assert await coach.store.pending_nudges(USER) == []
    await command(coach, "help")
    record = await coach.store.load_user(USER)
    assert record is not None and not record.opted_out


@pytest.mark.parametrize(
    "cancel",
    [
        pytest.param(lambda coach: tap(coach, B.pack("dec", "pass")), id="pass"),
        pytest.param(lambda coach: command(coach, "stop"), id="stop"),
    ],
)
async def test_cancelling_all_reminders_keeps_owed_replies_and_relays(
    coach: Coach, cancel: Callable[[Coach], Awaitable[Handled]]
) -> None:
    """A reply the saved state still owes (held by per-chat pacing) and a relayed answer are
    messages the user is owed, not reminders: "I'll pass" or /stop leaves them to go out."""
    await command(coach, "start")
    await tap(coach, B.pack("dec", "unsure"))  # three check-backs planned
    later = NOW + timedelta(seconds=5)

    def owe(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO nudges (user_id, kind, due_at, deadline, created_at, payload)"
            " VALUES (?, ?, ?, NULL, ?, '{}')",
            (USER, REPLY, int(later.timestamp()), int(NOW.timestamp())),
        )
        send_later(conn, USER, relay("recruiters/answer", {}), later)

    await coach.store.db.atomic(owe)
    await cancel(coach)
    assert sorted(n.kind for n in await coach.store.pending_nudges(USER)) == [RELAY, REPLY]
    async with coach.store.db.conn.execute(
        "SELECT state, count(*) FROM nudges WHERE kind = ? GROUP BY state", (planner.CHECKBACK,)
    ) as cur:
        assert [tuple(r) for r in await cur.fetchall()] == [("cancelled", 3)]


async def test_a_cancel_button_cancels_only_the_users_own_nudge(coach: Coach) -> None:
    await tap(coach, B.pack("dec", "unsure"), user=1)
    await tap(coach, B.pack("dec", "unsure"), user=2)
    theirs = (await coach.store.pending_nudges(2))[0].id
    await tap(coach, B.pack("cancel", theirs), user=1)
    assert theirs in [n.id for n in await coach.store.pending_nudges(2)]
    mine = (await coach.store.pending_nudges(1))[0].id
    await tap(coach, B.pack("cancel", mine), user=1)
    assert mine not in [n.id for n in await coach.store.pending_nudges(1)]


async def test_decide_nudge_uses_the_services_settings(coach: Coach, clock: Clock) -> None:
    await tap(coach, B.pack("dec", "unsure"))
    state = await state_of(coach)
    clock.now += timedelta(days=1)
    due = await coach.store.claim_due(clock.now, 10)
    assert [n.kind for n in due] == [planner.CHECKBACK]
    decision = await coach.decide_nudge(due[0], state, clock.now)
    assert type(decision).__name__ == "Send"


async def test_going_again_does_not_double_the_reminders(coach: Coach) -> None:
    await command(coach, "timezone", "Europe/Paris")
    confirm = await command(coach, "interview", "Tue 3pm")
    await tap(
        coach,
        button(confirm, "whenok", int(datetime(2026, 3, 10, 14, 0, tzinfo=UTC).timestamp() // 60)),
    )
    await command(coach, "start")
    await tap(coach, B.pack("sit", "prep"))
    kinds = [n.kind for n in await coach.store.pending_nudges(USER)]
    assert sorted(kinds) == sorted([planner.PREP, planner.PEP, planner.DEBRIEF])


@pytest.mark.parametrize("data", ["v1:cancel:" + "9" * 24, "v1:nudge:" + "9" * 24 + ":later"])
async def test_forged_huge_nudge_id_is_an_unknown_button(coach: Coach, data: str) -> None:
    await command(coach, "start")
    handled = await tap(coach, data)
    assert handled.notice  # "That button no longer works"
    assert await coach.store.pending_nudges(USER) == []
    assert (await state_of(coach)).step == Step.SITUATION


async def test_snooze_respects_the_deadline(coach: Coach, clock: Clock) -> None:
    confirm = await command(coach, "interview", "in 3 hours")
    interview = NOW + timedelta(hours=3)
    await tap(coach, button(confirm, "whenok", int(interview.timestamp() // 60)))
    clock.now = interview - timedelta(hours=2)
    (pep,) = await coach.store.claim_due(clock.now, 10)
    assert pep.kind == planner.PEP and pep.deadline == interview
    await coach.store.finish(pep.id, "sent", clock.now)
    clock.now = interview - timedelta(hours=1)
    await tap(coach, B.pack("nudge", pep.id, "later"))
    for nudge in await coach.store.pending_nudges(USER):
        assert nudge.deadline is None or nudge.due_at < nudge.deadline, nudge
