"""What recruiters, administrators and candidates see of the recruiters' desk, pinned where
the other tests leave it loose: access requests and decisions, an administrator's own row, the
weekly digest switch, exports, and questions relayed both ways (and deleted with the candidate).

Expectations come from the templates in prompts/messages/recruiters/, the labels in
prompts/buttons.toml and the button format in bot/recruiters/buttons.py (`r1:<action>:<arg>`).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.engine.decide import Send
from bot.engine.model import ConsentGiven, DeleteUserData, Event, QuestionAsked, State
from bot.recruiters import repo
from bot.recruiters.cli import recruiters_main
from bot.recruiters.desk import RecruiterDesk
from bot.recruiters.follower import DIGEST, RecruiterFollower
from bot.render import RenderedMessage
from bot.sending import Document
from bot.storage.db import Database
from bot.storage.store import NudgeRow, Store
from tests import test_recruiters as base
from tests.conftest import FakeClock
from tests.test_recruiters import (
    ADMIN,
    CANDIDATE,
    NOW,
    OTHER,
    RECRUITER,
    RENDERER,
    make_desk,
    pending,
    record,
    setup_opening,
    start,
    text_of,
)

# The desk's fixtures, shared with tests/test_recruiters.py.
clock = base.clock
follower = base.follower
desk = base.desk

NEXT_MONDAY_NINE = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # NOW is Monday 23 Nov, 10:00 UTC
A_MONTH_LATER = NOW + timedelta(days=30)


async def deliver(follower: RecruiterFollower, nudge: NudgeRow, at: datetime) -> RenderedMessage:
    """What the dispatcher would send for a queued message at `at` (it must still be sent)."""
    decision = await follower.decide(nudge, at)
    assert isinstance(decision, Send), decision
    (reply,) = decision.replies
    return RENDERER.render(reply)


def buttons(message: object) -> list[tuple[str, str]]:
    """The (label, data) of every button under a message, row by row."""
    assert isinstance(message, RenderedMessage)
    return [button for row in message.keyboard for button in row]


async def shell_list(db_path: Path) -> list[str]:
    out = io.StringIO()
    assert await recruiters_main(db_path, "list", None, out) == 0
    return out.getvalue().splitlines()


async def delete_candidate(db: Database) -> None:
    """The candidate taps "Yes, delete everything"."""
    await Store(db).commit(CANDIDATE, CANDIDATE, State(), [DeleteUserData()], NOW)


# --- asking for access and deciding ----------------------------------------------------------


async def test_asking_again_when_already_a_recruiter_changes_nothing(
    db: Database, desk: RecruiterDesk
) -> None:
    await setup_opening(db)
    answer = await desk.command(RECRUITER, "Rita", "recruiter", "")
    assert "You're a recruiter already." in text_of(answer)
    assert await desk.is_recruiter(RECRUITER)  # not put back to "pending"
    assert await pending(db, ADMIN) == []  # and no administrator is bothered


async def test_the_request_and_the_decision_name_the_person(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    answer = await desk.request(CANDIDATE, "  Sam  ")
    assert "I've asked the administrators" in text_of(answer)
    [request] = await pending(db, ADMIN)
    shown = await deliver(follower, request, NOW)
    assert "Sam (Telegram id 40) asks to become a recruiter" in shown.plain_text
    assert buttons(shown) == [("Approve", "r1:appr:40:yes"), ("Deny", "r1:appr:40:no")]
    answer = await desk.button(ADMIN, "Ada", "r1:appr:40:yes")
    assert answer.notice == "Done"
    assert "Approved: Sam (40). I've let them know." in text_of(answer)


async def test_a_nameless_request_reads_someone_and_the_request(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    await desk.request(CANDIDATE, "   ")
    [request] = await pending(db, ADMIN)
    shown = await deliver(follower, request, NOW)
    assert shown.plain_text.startswith("Someone (Telegram id 40) asks")
    answer = await desk.decide_request(ADMIN, CANDIDATE, approve=False)
    assert "Declined: the request (40)." in text_of(answer)


async def test_a_long_first_name_is_cut_to_telegrams_64_characters(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    await desk.request(CANDIDATE, "N" * 100)
    [request] = await pending(db, ADMIN)
    shown = await deliver(follower, request, NOW)
    assert f"{'N' * 64} (Telegram id 40)" in shown.plain_text
    assert "N" * 65 not in shown.plain_text


async def test_access_requests_and_decisions_never_go_stale(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    # News expires after a week; a request, an approval or a refusal does not.
    await desk.request(CANDIDATE, "Sam")
    await desk.request(CANDIDATE + 1, "Max")
    first, second = await pending(db, ADMIN)
    assert "Sam" in (await deliver(follower, first, A_MONTH_LATER)).plain_text
    assert "Max" in (await deliver(follower, second, A_MONTH_LATER)).plain_text
    await desk.decide_request(ADMIN, CANDIDATE, approve=True)
    await desk.decide_request(ADMIN, CANDIDATE + 1, approve=False)
    [approved] = await pending(db, CANDIDATE)
    [denied] = await pending(db, CANDIDATE + 1)
    approval = await deliver(follower, approved, A_MONTH_LATER)
    assert "You're approved as a recruiter." in approval.plain_text
    refusal = await deliver(follower, denied, A_MONTH_LATER)
    assert "was declined" in refusal.plain_text


async def test_only_an_administrator_decides_and_only_once(
    db: Database, desk: RecruiterDesk
) -> None:
    await desk.request(CANDIDATE, "Sam")
    answer = await desk.button(RECRUITER, "Rita", "r1:appr:40:yes")
    assert answer.notice == "Administrators only"
    assert "Only an administrator can decide that." in text_of(answer)
    assert not await desk.is_recruiter(CANDIDATE)
    await desk.button(ADMIN, "Ada", "r1:appr:40:yes")
    answer = await desk.button(ADMIN, "Ada", "r1:appr:40:no")  # the other button, later
    assert answer.notice == "Already decided"
    assert "That request was decided already (approved)." in text_of(answer)
    assert await desk.is_recruiter(CANDIDATE)
    # Nobody ever asked: nothing to decide.
    answer = await desk.decide_request(ADMIN, CANDIDATE + 5, approve=True)
    assert answer.notice == "Already decided"
    assert "That request was decided already (unknown)." in text_of(answer)


# --- an administrator's own row and a first command ------------------------------------------


async def test_an_administrator_works_as_a_recruiter_from_the_first_command(
    db: Database, db_path: Path, desk: RecruiterDesk
) -> None:
    answer = await desk.command(ADMIN, "Ada", "links", "")
    assert "No openings yet" in text_of(answer)
    # Listed in the shell under their first name, with a digest for next Monday 09:00 (UTC).
    assert await shell_list(db_path) == ["30\tapproved\tAda"]
    [digest] = await pending(db, ADMIN, DIGEST)
    assert digest.due_at == NEXT_MONDAY_NINE
    # And their openings have an owner: /newlink works at once.
    answer = await desk.command(ADMIN, "Ada", "newlink", "Dev at Acme")
    assert "https://t.me/coach_bot?start=" in text_of(answer)
    # A button pressed without a first name does not lose the one they have.
    await desk.button(ADMIN, "", "r1:links")
    assert await shell_list(db_path) == ["30\tapproved\tAda"]


async def test_a_recruiter_added_from_the_shell_gets_a_digest_with_their_first_command(
    db: Database, db_path: Path, desk: RecruiterDesk
) -> None:
    assert await recruiters_main(db_path, "add", RECRUITER, io.StringIO()) == 0
    assert await pending(db, RECRUITER, DIGEST) == []
    await desk.command(RECRUITER, "Rita", "links", "")
    [digest] = await pending(db, RECRUITER, DIGEST)
    assert digest.due_at == NEXT_MONDAY_NINE


async def test_a_new_command_leaves_an_open_screen_even_after_a_restart(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower, clock: FakeClock
) -> None:
    await setup_opening(db)
    await desk.command(RECRUITER, "Rita", "newlink", "")
    assert await desk.wants_text(RECRUITER)
    await desk.command(RECRUITER, "Rita", "links", "")
    assert not await desk.wants_text(RECRUITER)
    restarted = make_desk(db, follower, clock)
    assert not await restarted.wants_text(RECRUITER)  # "Tester" now goes to the coach


async def test_stats_period_buttons_cover_all_openings(db: Database, desk: RecruiterDesk) -> None:
    await setup_opening(db)
    answer = await desk.command(RECRUITER, "Rita", "stats", "")
    # /stats shows the last 30 days and offers the other periods. Button data outlives the
    # message it came with, so its format is a contract: scope "a" with id 0 stands for all
    # the recruiter's openings (bot/recruiters/buttons.py).
    assert buttons(answer.items[0]) == [
        ("Last 7 days", "r1:stats:a:0:7d"),
        ("All time", "r1:stats:a:0:all"),
        ("All my openings", "r1:links"),
    ]


# --- the weekly digest switch ----------------------------------------------------------------


async def test_the_digest_switch_cancels_and_plans_the_next_monday(
    db: Database, desk: RecruiterDesk, clock: FakeClock
) -> None:
    await setup_opening(db)
    await desk.command(RECRUITER, "Rita", "links", "")
    assert len(await pending(db, RECRUITER, DIGEST)) == 1
    answer = await desk.button(RECRUITER, "Rita", "r1:digest:off")
    assert answer.notice == "Saved"
    assert "No more weekly digests. You can turn them back on here." in text_of(answer)
    assert buttons(answer.items[0]) == [("Weekly digest on", "r1:digest:on")]
    assert await pending(db, RECRUITER, DIGEST) == []
    await desk.command(RECRUITER, "Rita", "links", "")  # and it stays off
    assert await pending(db, RECRUITER, DIGEST) == []
    clock.advance(days=2)  # Wednesday: still next Monday
    answer = await desk.button(RECRUITER, "Rita", "r1:digest:on")
    assert answer.notice == "Saved"
    assert "The weekly digest is on: Monday mornings, your time." in text_of(answer)
    assert buttons(answer.items[0]) == [("No weekly digest", "r1:digest:off")]
    [digest] = await pending(db, RECRUITER, DIGEST)
    assert digest.due_at == NEXT_MONDAY_NINE


# --- export ----------------------------------------------------------------------------------


async def consenting_candidate(
    db: Database, follower: RecruiterFollower, recruiter: int, user: int, name: str
) -> None:
    _opening, link = await setup_opening(db, recruiter)
    await db.run(repo.ensure_user, user, NOW)
    await record(db, follower, Event(user, "command", "start", link.code, name))
    agree = Event(user, "button", "x", "", name)
    await record(db, follower, agree, ConsentGiven(True), state=State(decision="go"))


async def test_each_recruiter_exports_their_own_candidates_and_an_admin_everyone(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    await consenting_candidate(db, follower, RECRUITER, CANDIDATE, "Dana")
    await consenting_candidate(db, follower, OTHER, CANDIDATE + 1, "Eve")

    async def export(user: int) -> tuple[str, str, list[str]]:
        (document,) = (await desk.command(user, "X", "export", "")).items
        assert isinstance(document, Document)
        table = list(csv.reader(io.StringIO(document.data.decode("utf-8-sig"))))
        return document.filename, document.caption.plain_text, [r[0] for r in table[1:]]

    name, caption, names = await export(RECRUITER)
    assert name == "candidates-2026-11-23.csv"
    assert caption.startswith("1 candidate who agreed to share")
    assert names == ["Dana"]
    _, _, names = await export(OTHER)
    assert names == ["Eve"]
    _, caption, names = await export(ADMIN)
    assert caption.startswith("2 candidates who agreed to share")
    assert sorted(names) == ["Dana", "Eve"]


# --- relayed questions -----------------------------------------------------------------------


async def ask(db: Database, follower: RecruiterFollower, text: str, name: str = "Dana") -> str:
    """The candidate opens the recruiter's link and asks; returns the Reply button's data."""
    _opening, link = await setup_opening(db)
    await record(db, follower, start(link.code))
    await record(db, follower, Event(CANDIDATE, "text", text, "", name), QuestionAsked(text))
    [relayed] = await pending(db, RECRUITER)
    shown = await deliver(follower, relayed, NOW)
    [(label, data)] = buttons(shown)
    assert label == "Reply"
    return data


async def test_a_stored_question_reads_back_unanswered_until_answered(db: Database) -> None:
    opening, _link = await setup_opening(db)
    question = await db.run(repo.add_question, CANDIDATE, opening.id, "Is it remote?", NOW)
    expected = repo.Question(question.id, CANDIDATE, opening.id, "Is it remote?", False)
    assert question == expected
    assert await db.run(repo.get_question, question.id) == expected
    assert await db.run(repo.answer_question, question.id, "Yes", NOW)
    read = await db.run(repo.get_question, question.id)
    assert read == repo.Question(question.id, CANDIDATE, opening.id, "Is it remote?", True)


async def test_a_question_goes_to_the_recruiter_and_the_answer_back_with_its_button(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower, clock: FakeClock
) -> None:
    reply = await ask(db, follower, "Is it remote?")
    answer = await desk.button(RECRUITER, "Rita", reply)
    assert "Your answer about Dev at Acme, to:\nIs it remote?" in text_of(answer)
    assert buttons(answer.items[0]) == [("Cancel", "r1:cancel")]
    answer = await desk.text(RECRUITER, "  Yes, fully remote.  ")
    assert "Sent. Thanks for answering!" in text_of(answer)
    # After a restart the recruiter's next message is theirs again, not a second answer.
    assert not await make_desk(db, follower, clock).wants_text(RECRUITER)
    [answered] = await pending(db, CANDIDATE)
    shown = await deliver(follower, answered, NOW)
    assert "The recruiter answered (Dev at Acme):\nYes, fully remote." in shown.plain_text
    assert buttons(shown) == [("Ask another question", "v1:ask")]
    # The same Reply button again.
    answer = await desk.button(RECRUITER, "Rita", reply)
    assert answer.notice == "Answered already"
    assert "That question has been answered already." in text_of(answer)


async def test_a_relayed_question_cuts_the_name_to_64_characters(
    db: Database, follower: RecruiterFollower
) -> None:
    await ask(db, follower, "Is it remote?", name="D" * 100)
    [relayed] = await pending(db, RECRUITER)
    shown = (await deliver(follower, relayed, NOW)).plain_text
    assert f"A question from {'D' * 64} about Dev at Acme" in shown


async def test_a_question_is_deleted_with_the_candidates_data(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    reply = await ask(db, follower, "Is it remote?")
    await delete_candidate(db)
    # The relayed question, not yet delivered, is gone; its Reply button says so.
    assert await pending(db, RECRUITER) == []
    answer = await desk.button(RECRUITER, "Rita", reply)
    assert answer.notice == "Not one of your questions"
    assert "isn't one of your openings, or it no longer exists" in text_of(answer)


async def test_an_answer_to_a_question_deleted_meanwhile_goes_nowhere(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    reply = await ask(db, follower, "Is it remote?")
    await desk.button(RECRUITER, "Rita", reply)
    await delete_candidate(db)
    answer = await desk.text(RECRUITER, "Yes")
    assert "isn't one of your openings, or it no longer exists" in text_of(answer)
    assert not await desk.wants_text(RECRUITER)
    assert await pending(db, CANDIDATE) == []


async def test_two_people_answering_the_same_question_send_one_answer(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower
) -> None:
    reply = await ask(db, follower, "Is it remote?")
    await desk.button(RECRUITER, "Rita", reply)
    await desk.button(ADMIN, "Ada", reply)
    await desk.text(RECRUITER, "Yes")
    answer = await desk.text(ADMIN, "No")
    assert "That question has been answered already." in text_of(answer)
    [answered] = await pending(db, CANDIDATE)
    assert "Yes" in (await deliver(follower, answered, NOW)).plain_text


async def test_an_administrator_dropped_from_the_list_cannot_finish_answering(
    db: Database, desk: RecruiterDesk, follower: RecruiterFollower, clock: FakeClock
) -> None:
    reply = await ask(db, follower, "Is it remote?")
    await desk.button(ADMIN, "Ada", reply)
    # Restarted without Ada among the administrators: still a recruiter, but it isn't hers.
    restarted = make_desk(db, follower, clock, frozenset())
    assert await restarted.wants_text(ADMIN)
    answer = await restarted.text(ADMIN, "No")
    assert "isn't one of your openings" in text_of(answer)
    assert await pending(db, CANDIDATE) == []
