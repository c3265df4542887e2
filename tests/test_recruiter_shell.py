"""A recruiter's access and screens while the bot runs: `python -m bot recruiters add|remove`
tells the person by a queued, durable message, and their command menu follows when it goes
out or when they next try a recruiter command; a conversation command closes a recruiter screen
left half done.
"""

from __future__ import annotations

import io
from pathlib import Path

from bot.engine.decide import Send
from bot.engine.model import Event
from bot.recruiters import repo
from bot.recruiters.cli import recruiters_main
from bot.recruiters.desk import RecruiterDesk
from bot.recruiters.follower import RecruiterFollower
from bot.storage.db import Database
from bot.storage.store import Store
from tests import test_recruiters as base
from tests.test_recruiters import NOW, RECRUITER, RENDERER, queued, record

clock = base.clock
follower = base.follower
desk = base.desk

KIM = 77


class Menus:
    """Records what the front end was asked to do with a chat's command menu."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []

    async def __call__(self, user_id: int, recruiter: bool) -> None:
        self.calls.append((user_id, recruiter))


async def deliver(db: Database, follower: RecruiterFollower) -> list[str]:
    """What the dispatcher would send now, each then marked as sent (after_sent)."""
    texts = []
    for row in await Store(db).claim_due(NOW, 10):
        decision = await follower.decide(row, NOW)
        assert isinstance(decision, Send)
        texts += [RENDERER.render(reply).plain_text for reply in decision.replies]
        await follower.after_sent(row)
    return texts


async def test_removed_at_the_shell_they_are_told_and_the_menu_goes(
    db: Database, db_path: Path, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    menus = Menus()
    desk.menus = menus
    out = io.StringIO()
    assert await recruiters_main(db_path, "add", KIM, out, NOW) == 0
    assert [text.splitlines()[0] for text in await deliver(db, follower)] == [
        "You're approved as a recruiter."
    ]
    assert menus.calls == [(KIM, True)]
    assert await recruiters_main(db_path, "remove", KIM, out, NOW) == 0
    # Durable: it waits in the queue like the approval, and does not go stale.
    [notice] = await queued(db, KIM)
    assert notice["template"] == "recruiters/removed" and notice["menu"] is False
    [told] = await deliver(db, follower)
    assert told.startswith("Your recruiter access has ended.")
    assert menus.calls == [(KIM, True), (KIM, False)]


async def test_a_removed_recruiter_who_tries_a_command_loses_the_menu_at_once(
    db: Database, db_path: Path, desk: RecruiterDesk
) -> None:
    menus = Menus()
    desk.menus = menus
    out = io.StringIO()
    await recruiters_main(db_path, "add", KIM, out, NOW)
    await recruiters_main(db_path, "remove", KIM, out, NOW)
    answer = await desk.command(KIM, "Kim", "links", "")
    assert base.text_of(answer).startswith("This is for recruiters.")
    assert menus.calls == [(KIM, False)]
    await desk.button(KIM, "Kim", "r1:links")
    assert menus.calls == [(KIM, False), (KIM, False)]
    # Someone who never was a recruiter: no menu call for each refusal.
    await desk.command(KIM + 1, "Sam", "links", "")
    assert menus.calls == [(KIM, False), (KIM, False)]


async def test_messages_without_a_menu_change_leave_the_menu_alone(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    menus = Menus()
    desk.menus = menus
    await desk.request(KIM, "Kim")  # queues a request to the administrator
    assert await deliver(db, follower)
    assert menus.calls == []


async def test_a_conversation_command_closes_a_half_done_recruiter_screen(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    await db.run(repo.set_status, RECRUITER, "approved", NOW, "Rita")
    await desk.command(RECRUITER, "Rita", "newlink", "")
    assert await desk.wants_text(RECRUITER)  # "What's the role?"
    await record(db, follower, Event(RECRUITER, "command", "start", "", "Rita"))
    assert not await desk.wants_text(RECRUITER)
    assert (await db.run(repo.get_recruiter, RECRUITER)).draft == {}  # type: ignore[union-attr]
    # A button or typed text of the conversation leaves it as it was.
    await desk.command(RECRUITER, "Rita", "newlink", "")
    await record(db, follower, Event(RECRUITER, "text", "Dev", "", "Rita"))
    await record(db, follower, Event(RECRUITER, "button", "v1:nav:menu", "", "Rita"))
    assert await desk.wants_text(RECRUITER)
