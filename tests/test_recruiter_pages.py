"""Screens that grow with the recruiter's work: /links with many openings, an opening with many
links. Every opening and every link stays reachable page by page, no message goes past
Telegram's 4096 characters, none carries more than six buttons, and a forged page or id is
refused like any other forged button.
"""

from __future__ import annotations

from bot.recruiters import repo
from bot.recruiters.buttons import DESK
from bot.recruiters.desk import RecruiterDesk
from bot.render import RenderedMessage
from bot.storage.db import Database
from bot.storage.store import Conn
from tests import test_recruiters as base
from tests.test_recruiters import NOW, RECRUITER, setup_opening, text_of

clock = base.clock
follower = base.follower
desk = base.desk

LIMIT = 4000  # under Telegram's 4096, with room to spare


def keyboard(answer: object) -> list[tuple[str, str]]:
    first = answer.items[0]  # type: ignore[attr-defined]
    assert isinstance(first, RenderedMessage)
    return [cell for row in first.keyboard for cell in row]


async def test_an_opening_with_sixty_channels_shows_every_link(
    db: Database, desk: RecruiterDesk
) -> None:
    def make(conn: Conn) -> int:
        repo.set_status(conn, RECRUITER, "approved", NOW, "Rita")
        opening = repo.create_opening(
            conn, RECRUITER, "R" * 80, "C" * 80, "F" * 120, "N" * 300, NOW
        )
        repo.add_link(conn, opening.id, None, NOW)
        for n in range(60):
            repo.add_link(conn, opening.id, f"{'L' * 38}{n:02d}", NOW)
        return opening.id

    opening_id = await db.atomic(make)
    links = await db.run(repo.links_of, opening_id)
    shown = await desk.button(RECRUITER, "Rita", DESK.pack("open", opening_id))
    assert len(text_of(shown)) < LIMIT and len(keyboard(shown)) <= 6
    assert "…and 58 more links" in text_of(shown)
    for period in ("7d", "30d", "all"):
        numbers = await desk.stats(RECRUITER, "o", opening_id, period)
        assert len(text_of(numbers)) < LIMIT and len(keyboard(numbers)) <= 6
        assert "All 61 links" in [label for label, _ in keyboard(numbers)]
    # Page by page: every link's address, and a button for its numbers.
    data = DESK.pack("chan", opening_id, 0)
    found_codes: list[str] = []
    stats_buttons: list[str] = []
    pages = 0
    while data:
        page = await desk.button(RECRUITER, "Rita", data)
        pages += 1
        assert len(text_of(page)) < LIMIT and len(keyboard(page)) <= 6
        found_codes += [link.code for link in links if link.code in text_of(page)]
        stats_buttons += [d for _, d in keyboard(page) if d.startswith("r1:stats:l:")]
        data = dict(keyboard(page)).get("Next \u00bb", "")
    assert pages == 21
    assert found_codes == [link.code for link in links]
    assert stats_buttons == [DESK.pack("stats", "l", link.id, "30d") for link in links]


async def test_forged_numbers_are_refused_like_any_forged_button(
    db: Database, desk: RecruiterDesk
) -> None:
    await setup_opening(db)
    huge = "9" * 24  # fits the button format, not SQLite's integers
    for data in (
        f"r1:open:{huge}",
        f"r1:op:{huge}:close",
        f"r1:stats:o:{huge}:all",
        f"r1:reply:{huge}",
        f"r1:page:{huge}",
        f"r1:chan:{huge}:0",
        f"r1:chan:1:{huge}",
    ):
        answer = await desk.button(RECRUITER, "Rita", data)
        assert answer.notice == "That button no longer works", data
    refused = await desk.button(RECRUITER, "Rita", f"r1:appr:{huge}:yes")
    assert refused.notice == "That button no longer works"
