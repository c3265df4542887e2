"""What recruiters (and the administrators who approve them) do with the bot: ask for access,
make links for openings, see who is coming (with consent) and the funnel, answer questions.

Every command and button checks again who is asking: a recruiter sees and changes only their
own openings, an administrator all of them, anyone else gets a polite no. Screens that need
typed input (the /newlink steps, a channel name, an answer) keep a small draft in the
recruiter's row, so a restart in the middle loses nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.engine.buttons import pack as conversation_button
from bot.engine.model import Button, Keyboard, Reply
from bot.recruiters import repo, stats
from bot.recruiters.buttons import DESK
from bot.recruiters.codes import deep_link, qr_png
from bot.recruiters.follower import RecruiterFollower, relay, send_later
from bot.render import RenderedMessage, Renderer
from bot.sending import Document, Outgoing, Photo
from bot.storage.db import Database
from bot.storage.store import Conn

COMMANDS = frozenset({"recruiter", "newlink", "links", "stats", "export"})
MAX_FIELD = {"role": 80, "company": 80, "format": 120, "note": 300, "channel": 40}
MAX_ANSWER = 2000
# Six buttons a message at most. /links: up to five openings on one page; more go four a page
# with "Newer" and "Older". An opening's links: three on its screen and a button for each in
# its stats; more go three a page on a screen of their own, with "Previous" and "Next".
MAX_LISTED = 5
PER_PAGE = 4
LINKS_SHOWN = 3
CHANNELS_LISTED = 8  # lines of "By channel" in /stats; the links screen has them all
_AT_RE = re.compile(r"^(?P<role>.+?)\s+at\s+(?P<company>.+)$", re.IGNORECASE)
PERIODS = {p.value: p for p in stats.Period}


@dataclass(frozen=True)
class Answer:
    items: tuple[Outgoing, ...] = ()
    notice: str | None = None  # the toast for a button press
    # What to send once `items` went out: made then (a chart), so the text does not wait.
    later: Callable[[], Awaitable[tuple[Outgoing, ...]]] | None = None


def _rows(*buttons: Button) -> Keyboard:
    return tuple((b,) for b in buttons)


def _btn(label: str, action: str, *args: str | int, **params: object) -> Button:
    return Button(label, DESK.pack(action, *args), params)


def _id(text: str) -> int | None:
    """A number from button data, if SQLite can hold it (forged data may not)."""
    return int(text) if text.isdigit() and len(text) <= 15 else None


def _page(count: int, page: int, size: int) -> tuple[int, int]:
    """(the page, how many pages): a page past the end (an old button) shows the last."""
    pages = max(1, -(-count // size))
    return min(max(page, 0), pages - 1), pages


def _channel_label(link: repo.Link) -> str:
    return (link.channel or "main link")[:16]


class RecruiterDesk:
    def __init__(
        self,
        db: Database,
        renderer: Renderer,
        follower: RecruiterFollower,
        *,
        admin_ids: frozenset[int],
        clock: Callable[[], datetime],
        bot_username: Callable[[], str],
        worry_labels: Mapping[str, str],
    ) -> None:
        self.db = db
        self.renderer = renderer
        self.follower = follower
        self.admin_ids = admin_ids
        self.clock = clock
        self.bot_username = bot_username
        self.worry_labels = worry_labels
        # Set by the front end: wake the dispatcher, and show or hide recruiter commands.
        self.on_queue: Callable[[], None] | None = None
        self.menus: Callable[[int, bool], Awaitable[None]] | None = None
        # Who has a screen waiting for typed input (only the desk writes drafts), loaded
        # on first use: a candidate's message costs no database hop to route.
        self._drafting: set[int] | None = None
        # Messages that change someone's access carry their menu along (see cli.py).
        follower.menus = self._menu

    async def _menu(self, user_id: int, recruiter: bool) -> None:
        if self.menus is not None:
            await self.menus(user_id, recruiter)

    async def _refused(self, user_id: int) -> None:
        """A recruiter command from someone who is not one: if they were (removed from the
        shell while the bot ran), their menu still offers the commands. Take them away."""
        former = await self.db.run(repo.get_recruiter, user_id)
        if former is not None and former.status == "removed":
            await self._menu(user_id, False)

    # --- who is asking -----------------------------------------------------------------------

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.admin_ids

    async def is_recruiter(self, user_id: int) -> bool:
        if self.is_admin(user_id):
            return True
        return await self.db.run(repo.approved_recruiter, user_id) is not None

    async def wants_text(self, user_id: int) -> bool:
        """A screen of this user's waits for typed input (and they may still use it). Asked
        of every typed message: answered from memory for everyone without a draft."""
        if self._drafting is None:
            self._drafting = set(await self.db.run(repo.drafting))
        if user_id not in self._drafting:
            return False
        recruiter = await self.db.run(repo.get_recruiter, user_id)
        if not (recruiter and recruiter.draft.get("step")):
            # Closed meanwhile (a conversation command, the shell): no lookup next time.
            self._drafting.discard(user_id)
            return False
        return await self.is_recruiter(user_id)

    async def _set_draft(self, user_id: int, draft: dict[str, Any]) -> None:
        await self.db.run(repo.set_draft, user_id, draft)
        self._drafted(user_id, draft)

    def _drafted(self, user_id: int, draft: Mapping[str, Any]) -> None:
        """Keep the set of users with a screen open in step with what was just committed."""
        if self._drafting is None:
            return
        if draft.get("step"):
            self._drafting.add(user_id)
        else:
            self._drafting.discard(user_id)

    def _say(
        self, template: str, context: Mapping[str, Any] | None = None, *rows: Button
    ) -> RenderedMessage:
        return self.renderer.render(Reply(f"recruiters/{template}", context or {}, _rows(*rows)))

    def _answer(
        self,
        template: str,
        context: Mapping[str, Any] | None = None,
        *rows: Button,
        notice: str | None = None,
    ) -> Answer:
        return Answer((self._say(template, context, *rows),), notice)

    async def _owner_check(self, user_id: int, opening_id: int) -> repo.Opening | None:
        """The opening, if this user may see and change it."""
        return await self.db.run(self._owned, user_id, opening_id)

    def _owned(self, conn: Conn, user_id: int, opening_id: int) -> repo.Opening | None:
        opening = repo.get_opening(conn, opening_id)
        if opening is None:
            return None
        if opening.recruiter_id != user_id and not self.is_admin(user_id):
            return None
        return opening

    def _ensure_admin_row(self, conn: Conn, user_id: int, name: str) -> None:
        # Administrators are recruiters too: their openings need a row to belong to.
        if self.is_admin(user_id) and repo.approved_recruiter(conn, user_id) is None:
            repo.set_status(conn, user_id, "approved", self.clock(), name or None)

    def _wake(self) -> None:
        if self.on_queue is not None:
            self.on_queue()

    # --- commands ----------------------------------------------------------------------------

    async def command(self, user_id: int, first_name: str, name: str, argument: str) -> Answer:
        if name == "recruiter":
            return await self.request(user_id, first_name)
        if not await self.is_recruiter(user_id):
            await self._refused(user_id)
            return self._answer("not_recruiter")
        now = self.clock()

        def begin(conn: Conn) -> None:
            self._ensure_admin_row(conn, user_id, first_name)
            repo.set_draft(conn, user_id, {})  # a new command leaves any screen
            # Approved from the shell while the bot ran: their digest starts with their first
            # command (idempotent otherwise).
            self.follower.schedule_digest(conn, user_id, now)

        await self.db.atomic(begin)
        self._drafted(user_id, {})
        if name == "newlink":
            return await self.new_link(user_id, argument)
        if name == "links":
            return await self.links(user_id)
        if name == "stats":
            return await self.stats(user_id, "a", 0, stats.Period.MONTH.value)
        return await self.export(user_id)

    async def request(self, user_id: int, first_name: str) -> Answer:
        now = self.clock()
        if await self.is_recruiter(user_id):
            return self._answer("already")
        name = first_name.strip()[:64] or None

        def ask(conn: Conn) -> Answer | None:
            current = repo.get_recruiter(conn, user_id)
            if current is not None and current.status == "pending":
                return self._answer("request_pending")
            repo.set_status(conn, user_id, "pending", now, name)
            if not self.admin_ids:
                return self._answer("no_admins", {"user_id": user_id})
            for admin in sorted(self.admin_ids):
                buttons = (
                    ("r_approve", DESK.pack("appr", user_id, "yes")),
                    ("r_deny", DESK.pack("appr", user_id, "no")),
                )
                context = {"name": name or "", "user_id": user_id}
                payload = relay("recruiters/approve_request", context, buttons)
                send_later(conn, admin, payload, now, expires=False)
            return None

        refused = await self.db.atomic(ask)
        if refused is not None:
            return refused
        self._wake()
        return self._answer("request_sent")

    async def decide_request(self, admin: int, user_id: int, approve: bool) -> Answer:
        if not self.is_admin(admin):
            return self._answer("not_admin", notice="Administrators only")
        now = self.clock()

        def decide(conn: Conn) -> repo.Recruiter | None:
            current = repo.get_recruiter(conn, user_id)
            if current is not None and current.status == "pending":
                self.set_recruiter(conn, user_id, approve, now)
            return current

        current = await self.db.atomic(decide)
        if current is None or current.status != "pending":
            status = current.status if current else "unknown"
            return self._answer("request_done", {"status": status}, notice="Already decided")
        self._wake()
        if self.menus is not None:
            await self.menus(user_id, approve)
        context = {"name": current.name or "", "user_id": user_id, "approved": approve}
        return self._answer("request_decided", context, notice="Done")

    def set_recruiter(self, conn: Conn, user_id: int, approve: bool, now: datetime) -> None:
        """Approve or deny, tell the person, and plan their digest."""
        repo.set_status(conn, user_id, "approved" if approve else "denied", now)
        template = "recruiters/approved" if approve else "recruiters/denied"
        send_later(conn, user_id, relay(template, {}), now, expires=False)
        if approve:
            self.follower.schedule_digest(conn, user_id, now)

    # --- openings and links ------------------------------------------------------------------

    async def new_link(self, user_id: int, argument: str) -> Answer:
        argument = " ".join(argument.split())
        match = _AT_RE.match(argument)
        if match:
            role = match.group("role")[: MAX_FIELD["role"]]
            company = match.group("company")[: MAX_FIELD["company"]]
            return await self._create(user_id, {"role": role, "company": company})
        draft: dict[str, Any] = {"step": "role"}
        if argument:
            draft = {"step": "company", "role": argument[: MAX_FIELD["role"]]}
        await self._set_draft(user_id, draft)
        return self._prompt(draft)

    def _prompt(self, draft: Mapping[str, Any]) -> Answer:
        step = draft["step"]
        cancel = _btn("r_cancel", "cancel")
        if step in ("format", "note"):
            return self._answer(f"newlink_{step}", draft, _btn("r_skip", "skip"), cancel)
        return self._answer(f"newlink_{step}", draft, cancel)

    async def _create(self, user_id: int, draft: Mapping[str, Any]) -> Answer:
        now = self.clock()

        def create(conn: Conn) -> tuple[repo.Opening, repo.Link]:
            opening = repo.create_opening(
                conn,
                user_id,
                str(draft["role"]),
                str(draft["company"]),
                draft.get("format"),
                draft.get("note"),
                now,
            )
            link = repo.add_link(conn, opening.id, None, now)
            repo.set_draft(conn, user_id, {})
            return opening, link

        opening, link = await self.db.atomic(create)
        self._drafted(user_id, {})
        return self._link_answer(opening, link, "created")

    def _link_answer(self, opening: repo.Opening, link: repo.Link, why: str) -> Answer:
        url = deep_link(self.bot_username(), link.code)
        context = {"opening": opening, "channel": link.channel, "url": url, "why": why}
        text = self._say(
            "link", context, _btn("r_open", "open", opening.id), _btn("r_all", "links")
        )
        caption = self._say("qr_caption", context)
        return Answer((text, Photo(qr_png(url), caption)))

    async def text(self, user_id: int, text: str) -> Answer:
        recruiter = await self.db.run(repo.get_recruiter, user_id)
        draft = dict(recruiter.draft) if recruiter else {}
        step = draft.get("step")
        value = " ".join(text.split())
        if step == "answer":
            return await self._answer_question(user_id, int(draft.get("question", 0)), text)
        if step not in MAX_FIELD or not value:
            return self._prompt(draft) if step in MAX_FIELD else Answer()
        draft[str(step)] = value[: MAX_FIELD[str(step)]]
        return await self._advance(user_id, draft)

    async def _advance(self, user_id: int, draft: dict[str, Any]) -> Answer:
        order = {"role": "company", "company": "format", "format": "note", "note": None}
        step = draft["step"]
        if step == "channel":
            return await self._add_channel(user_id, int(draft.get("opening", 0)), draft["channel"])
        following = order.get(step)
        if following is None:
            return await self._create(user_id, draft)
        draft["step"] = following
        await self._set_draft(user_id, draft)
        return self._prompt(draft)

    async def links(self, user_id: int, page: int = 0) -> Answer:
        """The recruiter's openings, newest first: all five on one page, or four a page."""
        scope = None if self.is_admin(user_id) else user_id

        def read(conn: Conn) -> tuple[list[repo.Opening], dict[int, tuple[int, int]], int, int]:
            openings = repo.openings_of(conn, scope)
            size = MAX_LISTED if len(openings) <= MAX_LISTED else PER_PAGE
            shown, pages = _page(len(openings), page, size)
            openings = openings[shown * size : (shown + 1) * size]
            return openings, repo.opening_counts(conn, [o.id for o in openings]), shown, pages

        openings, counts, shown, pages = await self.db.run(read)
        listed = [
            {"opening": o, "opened": counts[o.id][0], "going": counts[o.id][1]} for o in openings
        ]
        buttons = [_btn("r_opening", "open", o.id, role=o.role[:18]) for o in openings]
        if shown > 0:
            buttons.append(_btn("r_newer", "page", shown - 1))
        if shown < pages - 1:
            buttons.append(_btn("r_older", "page", shown + 1))
        context = {"listed": listed, "page": shown + 1, "pages": pages}
        return self._answer("links", context, *buttons)

    def _link_rows(
        self, links: list[repo.Link], counts: Mapping[int, tuple[int, int]]
    ) -> list[dict[str, Any]]:
        return [
            {
                "channel": link.channel,
                "active": link.active,
                "url": deep_link(self.bot_username(), link.code),
                "opened": counts.get(link.id, (0, 0))[0],
                "going": counts.get(link.id, (0, 0))[1],
            }
            for link in links
        ]

    async def opening(self, user_id: int, opening_id: int, notice: str | None = None) -> Answer:
        opening = await self._owner_check(user_id, opening_id)
        if opening is None:
            return self._answer("not_yours", notice="Not one of your openings")

        def read(conn: Conn) -> tuple[list[repo.Link], dict[int, tuple[int, int]]]:
            return repo.links_of(conn, opening.id), repo.link_counts(conn, opening.id)

        links, counts = await self.db.run(read)
        pause = ("r_resume", "resume") if opening.status == "paused" else ("r_pause", "pause")
        close = ("r_reopen", "reopen") if opening.status == "closed" else ("r_close", "close")
        # More links than fit: their own screen (which adds channels too) instead of a new one.
        channels = (
            _btn("r_links_all", "chan", opening.id, 0, count=len(links))
            if len(links) > LINKS_SHOWN
            else _btn("r_channel", "op", opening.id, "channel")
        )
        buttons = [
            _btn("r_stats", "stats", "o", opening.id, stats.Period.MONTH.value),
            channels,
            _btn("r_newcode", "op", opening.id, "newcode"),
            *([] if opening.status == "closed" else [_btn(pause[0], "op", opening.id, pause[1])]),
            _btn(close[0], "op", opening.id, close[1]),
            _btn("r_all", "links"),
        ]
        context = {
            "opening": opening,
            "links": self._link_rows(links[:LINKS_SHOWN], counts),
            "more": len(links) - LINKS_SHOWN,
        }
        return self._answer("opening", context, *buttons, notice=notice)

    async def channels(self, user_id: int, opening_id: int, page: int) -> Answer:
        """Every link of an opening (old codes too), three a page, each with its numbers."""
        opening = await self._owner_check(user_id, opening_id)
        if opening is None:
            return self._answer("not_yours", notice="Not one of your openings")

        def read(conn: Conn) -> tuple[list[repo.Link], dict[int, tuple[int, int]]]:
            links = repo.links_of(conn, opening.id, active_only=False)
            return links, repo.link_counts(conn, opening.id)

        links, counts = await self.db.run(read)
        shown, pages = _page(len(links), page, LINKS_SHOWN)
        on_page = links[shown * LINKS_SHOWN : (shown + 1) * LINKS_SHOWN]
        month = stats.Period.MONTH.value
        buttons = [
            _btn("r_channel_stats", "stats", "l", link.id, month, channel=_channel_label(link))
            for link in on_page
        ]
        if shown > 0:
            buttons.append(_btn("r_prev", "chan", opening.id, shown - 1))
        if shown < pages - 1:
            buttons.append(_btn("r_next", "chan", opening.id, shown + 1))
        buttons.append(_btn("r_channel", "op", opening.id, "channel"))
        context = {
            "opening": opening,
            "links": self._link_rows(on_page, counts),
            "first": shown * LINKS_SHOWN + 1,
            "total": len(links),
            "page": shown + 1,
            "pages": pages,
        }
        return self._answer("channels", context, *buttons)

    async def act(self, user_id: int, opening_id: int, what: str) -> Answer:
        opening = await self._owner_check(user_id, opening_id)
        if opening is None:
            return self._answer("not_yours", notice="Not one of your openings")
        status = {"pause": "paused", "resume": "open", "close": "closed", "reopen": "open"}
        if what in status:
            await self.db.run(repo.set_opening_status, opening.id, status[what])
            return await self.opening(user_id, opening.id, notice=f"Now {status[what]}")
        if what == "newcode":
            now = self.clock()

            def renew(conn: Conn) -> repo.Link:
                links = repo.links_of(conn, opening.id)
                main = next((link for link in links if link.channel is None), None)
                if main is None:
                    return repo.add_link(conn, opening.id, None, now)
                return repo.replace_code(conn, main, now)

            return self._link_answer(opening, await self.db.atomic(renew), "newcode")
        if what == "channel":
            draft = {"step": "channel", "opening": opening.id}
            await self._set_draft(user_id, draft)
            return self._prompt(draft)
        return self._answer("stale", notice="That button no longer works")

    async def _add_channel(self, user_id: int, opening_id: int, channel: str) -> Answer:
        opening = await self._owner_check(user_id, opening_id)
        now = self.clock()

        def add(conn: Conn) -> repo.Link | None:
            repo.set_draft(conn, user_id, {})
            return None if opening is None else repo.add_link(conn, opening.id, channel, now)

        link = await self.db.atomic(add)
        self._drafted(user_id, {})
        if opening is None or link is None:
            return self._answer("not_yours")
        return self._link_answer(opening, link, "channel")

    # --- numbers -----------------------------------------------------------------------------

    async def stats(self, user_id: int, kind: str, item: int, period: str) -> Answer:
        admin = self.is_admin(user_id)
        scope = stats.Scope(recruiter_id=None if admin else user_id)
        title_context: dict[str, Any] = {"kind": kind}
        link: repo.Link | None = None
        if kind in ("o", "l"):
            opening_id = item
            if kind == "l":
                link = await self.db.run(repo.get_link, item)
                opening_id = link.opening_id if link else 0
            opening = await self._owner_check(user_id, opening_id)
            if opening is None:
                return self._answer("not_yours", notice="Not one of your openings")
            scope = stats.Scope(
                recruiter_id=scope.recruiter_id,
                opening_id=opening.id,
                link_id=link.id if link else None,
            )
            title_context.update(opening=opening, channel=link.channel if link else None)
        chosen = PERIODS.get(period, stats.Period.MONTH)
        since = chosen.since(self.clock())

        def read(conn: Conn) -> tuple[stats.Funnel, list[stats.Reason], list[dict[str, Any]]]:
            numbers = stats.funnel(conn, scope, since)
            reasons = stats.reasons(conn, scope, since)
            channels: list[dict[str, Any]] = []
            if kind == "o" and scope.opening_id is not None:
                # In the chosen period, like the rest of the screen.
                counts = repo.link_counts(conn, scope.opening_id, since)
                for each in repo.links_of(conn, scope.opening_id, active_only=False):
                    opened, going = counts.get(each.id, (0, 0))
                    channels.append({"link": each, "opened": opened, "going": going})
            return numbers, reasons, channels

        numbers, reasons, channels = await self.db.run(read)
        context = {
            **title_context,
            "period": chosen.value,
            "stages": numbers.stages(),
            "decisions": numbers.decisions,
            "empty": numbers.empty,
            "reasons": [(r.label(self.worry_labels), r.shown) for r in reasons],
            "channels": channels[:CHANNELS_LISTED],
            "more_channels": len(channels) - CHANNELS_LISTED,
        }
        periods = [
            _btn(f"r_period_{p.value}", "stats", kind, item, p.value)
            for p in stats.Period
            if p != chosen
        ]
        per_link: list[Button] = []
        if 1 < len(channels) <= LINKS_SHOWN:
            per_link = [
                _btn("r_channel_stats", "stats", "l", c["link"].id, chosen.value, channel=label)
                for c in channels
                for label in (_channel_label(c["link"]),)
            ]
        elif len(channels) > LINKS_SHOWN and scope.opening_id is not None:
            # Too many for a button each: the links screen has one per link, page by page.
            per_link = [_btn("r_links_all", "chan", scope.opening_id, 0, count=len(channels))]
        text = self._say("stats", context, *periods, *per_link, _btn("r_all", "links"))
        if numbers.empty:
            return Answer((text,))
        title = self.renderer.text("recruiters/chart_title", context)
        caption = self._say("chart_caption", context)

        async def chart() -> tuple[Outgoing, ...]:
            # CPU-bound, a fifth of a second or more: off the event loop, after the text.
            labels = self.worry_labels
            png = await asyncio.to_thread(stats.chart_png, numbers, reasons, title, labels)
            return (Photo(png, caption),)

        return Answer((text,), later=chart)

    async def export(self, user_id: int) -> Answer:
        recruiter = None if self.is_admin(user_id) else user_id
        rows = await self.db.run(stats.consented_rows, recruiter)
        if not rows:
            return self._answer("export_empty")
        name = f"candidates-{self.clock():%Y-%m-%d}.csv"
        caption = self._say("export_caption", {"count": len(rows)})
        data = await asyncio.to_thread(stats.export_csv, rows)
        return Answer((Document(data, name, caption),))

    # --- relayed questions -------------------------------------------------------------------

    async def reply(self, user_id: int, question_id: int) -> Answer:
        question = await self.db.run(repo.get_question, question_id)
        opening = await self._owner_check(user_id, question.opening_id) if question else None
        if question is None or opening is None:
            return self._answer("not_yours", notice="Not one of your questions")
        if question.answered:
            return self._answer("question_done", notice="Answered already")
        await self._set_draft(user_id, {"step": "answer", "question": question.id})
        context = {"text": question.text, "opening": opening}
        return self._answer("answer_prompt", context, _btn("r_cancel", "cancel"))

    async def _answer_question(self, user_id: int, question_id: int, text: str) -> Answer:
        answer = text.strip()[:MAX_ANSWER]
        if not answer:
            return Answer()
        now = self.clock()

        def send(conn: Conn) -> str:
            repo.set_draft(conn, user_id, {})
            question = repo.get_question(conn, question_id)
            opening = self._owned(conn, user_id, question.opening_id) if question else None
            if question is None or opening is None:
                return "not_yours"
            if not repo.answer_question(conn, question.id, answer, now):
                return "question_done"
            context = {"role": opening.role, "company": opening.company, "text": answer}
            buttons = (("ask_another", conversation_button("ask")),)
            payload = relay("recruiters/answer", context, buttons)
            send_later(conn, question.user_id, payload, now, about=question.user_id)
            return "answer_sent"

        outcome = await self.db.atomic(send)
        self._drafted(user_id, {})
        if outcome == "answer_sent":
            self._wake()
        return self._answer(outcome)

    # --- buttons -----------------------------------------------------------------------------

    async def button(self, user_id: int, first_name: str, data: str) -> Answer:
        action = DESK.unpack(data)
        if action is None:
            return self._answer("stale", notice="That button no longer works")
        name, args = action.name, action.args
        first = _id(args[0]) if args else None
        if name == "appr" and first is not None and args[1] in ("yes", "no"):
            return await self.decide_request(user_id, first, args[1] == "yes")
        if not await self.is_recruiter(user_id):
            await self._refused(user_id)
            return self._answer("not_recruiter", notice="Recruiters only")
        await self.db.atomic(self._ensure_admin_row, user_id, first_name)
        if name == "open" and first is not None:
            return await self.opening(user_id, first)
        if name == "op" and first is not None:
            return await self.act(user_id, first, args[1])
        if name == "stats" and args[0] in ("a", "o", "l") and (item := _id(args[1])) is not None:
            return await self.stats(user_id, args[0], item, args[2])
        if name == "links":
            return await self.links(user_id)
        if name == "page" and first is not None:
            return await self.links(user_id, first)
        if name == "chan" and first is not None and (page := _id(args[1])) is not None:
            return await self.channels(user_id, first, page)
        if name == "reply" and first is not None:
            return await self.reply(user_id, first)
        if name in ("skip", "cancel"):
            return await self._skip_or_cancel(user_id, name)
        if name == "digest" and args[0] in ("on", "off"):
            return await self.digest(user_id, args[0] == "on")
        return self._answer("stale", notice="That button no longer works")

    async def _skip_or_cancel(self, user_id: int, name: str) -> Answer:
        recruiter = await self.db.run(repo.get_recruiter, user_id)
        draft = dict(recruiter.draft) if recruiter else {}
        if name == "skip" and draft.get("step") in ("format", "note"):
            draft[str(draft["step"])] = None
            return await self._advance(user_id, draft)
        await self._set_draft(user_id, {})
        return self._answer("cancelled", notice="Cancelled")

    async def digest(self, user_id: int, on: bool) -> Answer:
        now = self.clock()

        def switch(conn: Conn) -> None:
            repo.set_digest(conn, user_id, on)
            if on:
                self.follower.schedule_digest(conn, user_id, now)
            else:
                repo.cancel_queued(conn, user_id, "digest")

        await self.db.atomic(switch)
        self._wake()
        button = (
            _btn("r_digest_on", "digest", "on") if not on else _btn("r_digest_off", "digest", "off")
        )
        return self._answer("digest_set", {"on": on}, button, notice="Saved")
