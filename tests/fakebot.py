"""A fake Telegram Bot API server for tests and benchmarks.

``FakeBotApi`` is a small tornado HTTP server bound to ``127.0.0.1`` on a free port that runs
inside the caller's asyncio event loop.  Point a *real* python-telegram-bot ``Application`` at it::

    async with FakeBotApi() as api:
        app = (
            Application.builder()
            .token("123:abc")
            .base_url(api.base_url)
            .base_file_url(api.base_file_url)
            .build()
        )
        ...
        api.push_message(42, "/start")
        [call] = await api.wait_for("sendMessage")

What PTB actually sends (22.x, ``HTTPXRequest``): ``POST {base_url}{token}/{method}`` where every
parameter is a form field whose value is either the raw string (for ``str`` values) or the JSON
dump of the value (ints, bools, dicts such as ``reply_markup``, lists such as
``allowed_updates``).  Without files the body is ``application/x-www-form-urlencoded``; with
files it is ``multipart/form-data`` (the file goes in a part named after the parameter, e.g.
``photo``).  ``application/json`` bodies (used by other clients) are accepted too.  Errors are
answered with the HTTP status equal to ``error_code``; PTB maps the status, not the body field,
to its exception classes (403 -> Forbidden, 400 -> BadRequest, 401/404 -> InvalidToken, 409 ->
Conflict, others -> NetworkError) and raises ``RetryAfter`` whenever
``parameters.retry_after`` is present.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import httpx
import tornado.httpserver
import tornado.netutil
import tornado.web

JSONDict = dict[str, Any]

__all__ = [
    "BOT_FIRST_NAME",
    "BOT_USERNAME",
    "Call",
    "FakeBotApi",
    "UploadedFile",
    "html_visible_text",
    "running_fake_bot_api",
]

BOT_USERNAME = "interview_coach_test_bot"
BOT_FIRST_NAME = "Interview Coach"
MAX_MESSAGE_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_BUTTONS = 100
DEFAULT_FIRST_NAME = "Ann"

# Update types delivered when allowed_updates was never set (or set to an empty list).
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

# Form fields that must stay strings even if they look like JSON ("123", "true", ...).
_STRING_FIELDS = frozenset(
    {
        "action",
        "address",
        "animation",
        "audio",
        "business_connection_id",
        "callback_query_id",
        "caption",
        "certificate",
        "currency",
        "custom_emoji_id",
        "description",
        "document",
        "emoji",
        "explanation",
        "file_id",
        "first_name",
        "inline_message_id",
        "ip_address",
        "language_code",
        "last_name",
        "message_effect_id",
        "name",
        "parse_mode",
        "payload",
        "phone_number",
        "photo",
        "query",
        "question",
        "secret_token",
        "short_description",
        "sticker",
        "text",
        "thumbnail",
        "title",
        "url",
        "username",
        "vcard",
        "video",
        "video_note",
        "voice",
    }
)

_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

_TOKEN_PATH_RE = re.compile(r"^/bot(\d+):([^/]+)/([A-Za-z0-9_]*)$")
_FILE_PATH_RE = re.compile(r"^/file/bot(\d+):([^/]+)/(.+)$")
_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

_CONFLICT_OTHER_POLL = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"


# --------------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadedFile:
    """A file part received in a multipart/form-data request."""

    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Call:
    """One recorded Bot API request (recorded when its answer is known).

    ``at`` is ``time.monotonic()`` at arrival.  ``status`` is the HTTP status / ``error_code``
    of the answer, ``result`` the ``result`` of a successful answer and ``error`` the
    ``description`` of a failed one.
    """

    method: str
    params: JSONDict
    at: float
    status: int = 200
    result: Any = None
    error: str | None = None
    token: str = ""  # the bot token in the URL: which process made the call, when they differ

    @property
    def ok(self) -> bool:
        return self.status == 200


class ApiError(Exception):
    """Raised inside method implementations to answer with ``{"ok": false, ...}``."""

    def __init__(
        self, error_code: int, description: str, parameters: JSONDict | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters


@dataclass
class _FailRule:
    method: str  # lower-case
    error_code: int
    description: str
    retry_after: int | None
    chat_id: int | str | None
    times: int


@dataclass(eq=False)
class _Poller:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    superseded: bool = False


@dataclass
class _StoredMessage:
    message: JSONDict
    raw_text: str | None = None
    parse_mode: str | None = None


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str


# --------------------------------------------------------------------------------------------
# HTML validation (Telegram's "HTML" parse mode)
# --------------------------------------------------------------------------------------------

_SUPPORTED_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
_TAG_RE = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)"
    r"((?:\s+[A-Za-z_:][-A-Za-z0-9_:.]*(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*)"
    r"\s*>"
)
_ATTR_RE = re.compile(r"([A-Za-z_:][-A-Za-z0-9_:.]*)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?")
_ENTITY_RE = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def html_visible_text(text: str) -> str:
    """Validate ``text`` like Telegram's HTML parse mode and return the visible text.

    Raises ``ApiError(400, "Bad Request: can't parse entities: ...")`` for unsupported or
    unbalanced tags and for a ``<`` or ``&`` that is neither a tag nor a supported entity
    (``&lt; &gt; &amp; &quot;`` and numeric entities).
    """

    def fail(reason: str) -> ApiError:
        return ApiError(400, f"Bad Request: can't parse entities: {reason}")

    out: list[str] = []
    stack: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "<":
            m = _TAG_RE.match(text, i)
            if m is None:
                if text.startswith("</", i):
                    raise fail(f"Unclosed end tag at byte offset {_byte_offset(text, i)}")
                if i + 1 < n and text[i + 1].isalpha():
                    raise fail(f"Unclosed start tag at byte offset {_byte_offset(text, i)}")
                raise fail(
                    f'Unexpected character "<" at byte offset {_byte_offset(text, i)}; '
                    "escape it as &lt;"
                )
            closing, name, attrs_src = m.group(1) == "/", m.group(2).lower(), m.group(3)
            if closing:
                if not stack:
                    raise fail(f"Unexpected end tag at byte offset {_byte_offset(text, i)}")
                if stack[-1] != name:
                    raise fail(
                        f"Unmatched end tag at byte offset {_byte_offset(text, i)}, "
                        f'expected "</{stack[-1]}>", found "</{name}>"'
                    )
                stack.pop()
            else:
                if name not in _SUPPORTED_TAGS:
                    raise fail(
                        f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, i)}'
                    )
                attrs = {a.lower(): (v or "").strip("\"'") for a, v in _ATTR_RE.findall(attrs_src)}
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise fail('Tag "span" must have class "tg-spoiler"')
                if name == "tg-emoji" and not attrs.get("emoji-id"):
                    raise fail('Tag "tg-emoji" must have attribute "emoji-id"')
                if name == "a" and "href" in attrs and not attrs["href"]:
                    raise fail("Empty URL in a link")
                stack.append(name)
            i = m.end()
        elif ch == "&":
            m = _ENTITY_RE.match(text, i)
            if m is None:
                raise fail(
                    f'Unescaped "&" at byte offset {_byte_offset(text, i)}; escape it as &amp;'
                )
            out.append(html.unescape(m.group(0)))
            i = m.end()
        else:
            j = i
            while j < n and text[j] not in "<&":
                j += 1
            out.append(text[i:j])
            i = j
    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def _visible_text(text: str, parse_mode: str | None) -> str:
    if parse_mode is not None and str(parse_mode).lower() == "html":
        return html_visible_text(text)
    return text


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _chat_key(chat_id: Any) -> int | str:
    if isinstance(chat_id, bool):
        return str(chat_id)
    if isinstance(chat_id, int):
        return chat_id
    s = str(chat_id)
    try:
        return int(s)
    except ValueError:
        return s


def _decode_form_value(name: str, raw: str) -> Any:
    if name in _STRING_FIELDS:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _update_type(update: JSONDict) -> str:
    for key in update:
        if key != "update_id":
            return key
    return ""


def _require_int(params: JSONDict, name: str) -> int:
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ApiError(400, f"Bad Request: {name} is empty")
    try:
        return int(value)
    except ValueError as exc:
        raise ApiError(400, f"Bad Request: invalid {name} specified") from exc


def _inline_keyboard(markup: Any) -> list[list[JSONDict]] | None:
    if isinstance(markup, dict):
        rows = markup.get("inline_keyboard")
        if isinstance(rows, list):
            return rows
    return None


def _validate_reply_markup(markup: Any) -> None:
    if markup is None:
        return
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise ApiError(
                400, "Bad Request: can't parse inline keyboard button: field must be an Array"
            )
        if sum(len(r) for r in rows) > MAX_INLINE_BUTTONS:
            raise ApiError(400, "Bad Request: reply markup is too long")
        for row in rows:
            for button in row:
                _validate_inline_button(button)
    elif "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise ApiError(400, "Bad Request: can't parse keyboard button: field must be an Array")
        for row in rows:
            for button in row:
                text = button.get("text") if isinstance(button, dict) else button
                if not isinstance(text, str) or not text.strip():
                    raise ApiError(400, "Bad Request: keyboard button text must be non-empty")


_BUTTON_ACTIONS = (
    "callback_data",
    "url",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "callback_game",
    "pay",
    "web_app",
    "copy_text",
)


def _validate_inline_button(button: Any) -> None:
    if not isinstance(button, dict):
        raise ApiError(
            400, "Bad Request: can't parse inline keyboard button: object expected as button"
        )
    text = button.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(
            400, "Bad Request: can't parse inline keyboard button: text must be non-empty"
        )
    if not any(key in button for key in _BUTTON_ACTIONS):
        raise ApiError(
            400,
            "Bad Request: can't parse inline keyboard button: "
            "Text buttons are unallowed in the inline keyboard",
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
            raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not re.match(r"^(https?|tg)://\S+$", url):
            raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")


# --------------------------------------------------------------------------------------------
# The HTTP layer
# --------------------------------------------------------------------------------------------


class _Handler(tornado.web.RequestHandler):
    api: FakeBotApi
    gone: asyncio.Event
    poller: _Poller | None

    def initialize(self, api: FakeBotApi) -> None:
        self.api = api
        self.gone = asyncio.Event()
        self.poller = None

    def on_connection_close(self) -> None:
        self.gone.set()
        if self.poller is not None:
            self.poller.wake.set()

    def compute_etag(self) -> str | None:
        return None

    async def get(self, _path: str) -> None:
        await self.api._serve(self)

    async def post(self, _path: str) -> None:
        await self.api._serve(self)

    def send_json(self, status: int, payload: JSONDict) -> None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        self.set_status(status, reason)
        self.set_header("Content-Type", "application/json")
        try:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (a test's hostile name) travels as Telegram sends it: "\ud800".
            body = json.dumps(payload).encode("ascii")
        self.finish(body)


# --------------------------------------------------------------------------------------------
# FakeBotApi
# --------------------------------------------------------------------------------------------

_MethodImpl = Callable[["_Ctx", JSONDict], Awaitable[Any]]


@dataclass
class _Ctx:
    bot_id: int
    handler: _Handler


class FakeBotApi:
    """Fake Telegram Bot API server running in the current event loop.

    Args:
        latency: artificial delay (seconds) before each request is processed.
        record: keep every request in :attr:`calls`; with ``False`` only :attr:`counts` is
            updated (flat memory for long benchmarks).
        tokens: if given, only these (well-formed) tokens are accepted, others get 401.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        record: bool = True,
        tokens: Iterable[str] | None = None,
    ) -> None:
        self.latency = latency
        self.record = record
        self.tokens: frozenset[str] | None = frozenset(tokens) if tokens is not None else None
        self.calls: list[Call] = []
        self.counts: Counter[str] = Counter()
        self.content_types: Counter[str] = Counter()

        self._server: tornado.httpserver.HTTPServer | None = None
        self._port: int | None = None
        self._http: httpx.AsyncClient | None = None
        self._closing = asyncio.Event()
        self._changed = asyncio.Event()
        self._inflight: set[asyncio.Task[Any]] = set()

        self._updates: deque[JSONDict] = deque()
        self._update_ids = itertools.count(1)
        self._pollers: set[_Poller] = set()
        self._allowed_updates: list[str] | None = None
        self._webhook: JSONDict | None = None
        self._commands: dict[str, list[JSONDict]] = {}

        self._users: dict[int, JSONDict] = {}
        self._bot_id = 123
        self._message_ids: dict[int | str, itertools.count[int]] = {}
        self._messages: dict[int | str, dict[int, _StoredMessage]] = {}
        self._max_messages_per_chat: int | None = None if record else 50
        self._callback_ids = itertools.count(4_000_000_001)
        self._open_queries: dict[str, float] = {}
        self._files: dict[str, _StoredFile] = {}
        self._file_seq = itertools.count(1)

        self._fail_rules: list[_FailRule] = []
        self._blocked: set[int | str] = set()

        self._methods: dict[str, tuple[str, _MethodImpl]] = {}
        for name, impl in self._method_table().items():
            self._methods[name.lower()] = (name, impl)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> FakeBotApi:
        if self._server is not None:
            return self
        self._closing = asyncio.Event()
        self._changed = asyncio.Event()
        app = tornado.web.Application(
            [(r"(/.*)", _Handler, {"api": self})],
            log_function=lambda _handler: None,
        )
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets(sockets)
        self._port = sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._closing.set()
        self._wake_pollers()
        self._notify()
        server.stop()
        pending = {t for t in self._inflight if not t.done()}
        if pending:
            _done, still = await asyncio.wait(pending, timeout=2.0)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=1.0)
        await server.close_all_connections()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> FakeBotApi:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeBotApi is not started")
        return self._port

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """Value for PTB's ``base_url`` (``http://127.0.0.1:PORT/bot``)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """Value for PTB's ``base_file_url`` (``http://127.0.0.1:PORT/file/bot``)."""
        return f"{self.url}/file/bot"

    # ---------------------------------------------------------------- recording & waiting

    def calls_of(self, method: str) -> list[Call]:
        m = method.lower()
        return [c for c in self.calls if c.method.lower() == m]

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]

    def mark(self) -> int:
        """Current number of recorded calls, for ``wait_for(..., after=api.mark())``."""
        return len(self.calls)

    def clear(self) -> None:
        """Forget recorded calls and counts (server state such as updates is kept)."""
        self.calls.clear()
        self.counts.clear()
        self.content_types.clear()

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_until(
        self, condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
    ) -> None:
        """Wait until ``condition()`` is true, re-checking after every recorded call."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"Timed out after {timeout}s waiting for {what}. {self._summary()}"
                )
            event = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await event.wait()

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        count: int = 1,
        timeout: float = 5.0,
        after: int = 0,
    ) -> list[Call]:
        """Wait until ``count`` calls of ``method`` (matching ``predicate``) were recorded.

        Only calls with index ``>= after`` in :attr:`calls` are considered (see :meth:`mark`).
        Returns the first ``count`` matching calls; raises ``AssertionError`` on timeout.
        """
        if not self.record:
            raise RuntimeError("wait_for needs record=True; use wait_for_count instead")
        m = method.lower()
        found: list[Call] = []

        def check() -> bool:
            found[:] = [
                c
                for c in self.calls[after:]
                if c.method.lower() == m and (predicate is None or predicate(c))
            ]
            return len(found) >= count

        await self.wait_until(check, timeout, f"{count} x {method} call(s)")
        return found[:count]

    async def wait_for_count(self, method: str, count: int, timeout: float = 5.0) -> None:
        """Wait until ``counts[method] >= count`` (works with ``record=False``)."""
        name = self._canonical(method)
        await self.wait_until(
            lambda: self.counts[name] >= count, timeout, f"counts[{name!r}] >= {count}"
        )

    async def wait_updates_confirmed(self, timeout: float = 5.0) -> None:
        """Wait until every pushed update was confirmed by a getUpdates offset."""
        await self.wait_until(lambda: not self._updates, timeout, "all updates confirmed")

    def _summary(self) -> str:
        if not self.record:
            return f"Counts: {dict(self.counts)}"
        tail = [
            f"{c.method}" + ("" if c.ok else f"[{c.status}]")
            for c in self.calls
            if c.method != "getUpdates"
        ][-40:]
        return f"Counts: {dict(self.counts)}. Recorded (without getUpdates, last 40): {tail}"

    # ---------------------------------------------------------------- assertion helpers

    def sent_messages(
        self, chat_id: int | str | None = None, include_failed: bool = False
    ) -> list[JSONDict]:
        """Params of (successful, unless ``include_failed``) sendMessage calls."""
        key = _chat_key(chat_id) if chat_id is not None else None
        return [
            c.params
            for c in self.calls
            if c.method == "sendMessage"
            and (include_failed or c.ok)
            and (key is None or _chat_key(c.params.get("chat_id")) == key)
        ]

    def sent_texts(self, chat_id: int | str | None = None) -> list[str]:
        return [str(p.get("text", "")) for p in self.sent_messages(chat_id)]

    def bot_messages(self, chat_id: int | str) -> list[JSONDict]:
        """Current state (after edits/deletes) of stored bot messages in a chat, oldest first."""
        store = self._messages.get(_chat_key(chat_id), {})
        return [s.message for s in store.values() if s.message.get("from", {}).get("is_bot", False)]

    def last_bot_message(self, chat_id: int | str) -> JSONDict | None:
        msgs = self.bot_messages(chat_id)
        return msgs[-1] if msgs else None

    def _last_keyboard_message(self, chat_id: int | str) -> JSONDict | None:
        for msg in reversed(self.bot_messages(chat_id)):
            if _inline_keyboard(msg.get("reply_markup")):
                return msg
        return None

    def last_keyboard(self, chat_id: int | str) -> list[list[JSONDict]]:
        """Inline keyboard currently shown on the latest bot message that has one ([] if none)."""
        msg = self._last_keyboard_message(chat_id)
        return (_inline_keyboard(msg.get("reply_markup")) or []) if msg else []

    def button_data(self, chat_id: int | str, label_substring: str) -> str:
        """callback_data of the button in :meth:`last_keyboard` whose text contains the label."""
        rows = self.last_keyboard(chat_id)
        for row in rows:
            for button in row:
                if label_substring in str(button.get("text", "")) and "callback_data" in button:
                    return str(button["callback_data"])
        labels = [b.get("text") for row in rows for b in row]
        raise AssertionError(
            f"No button containing {label_substring!r} in chat {chat_id}; buttons: {labels}"
        )

    # ---------------------------------------------------------------- error injection

    def fail_next(
        self,
        method: str,
        error_code: int = 400,
        description: str | None = None,
        retry_after: int | None = None,
        chat_id: int | str | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (optionally only for ``chat_id``) fail."""
        if description is None:
            description = {
                400: "Bad Request",
                403: "Forbidden: bot was blocked by the user",
                429: f"Too Many Requests: retry after {retry_after or 1}",
                500: "Internal Server Error",
                502: "Bad Gateway",
            }.get(error_code, "Error")
        if error_code == 429 and retry_after is None:
            retry_after = 1
        self._fail_rules.append(
            _FailRule(
                method=method.lower(),
                error_code=error_code,
                description=description,
                retry_after=retry_after,
                chat_id=_chat_key(chat_id) if chat_id is not None else None,
                times=times,
            )
        )

    def block_user(self, chat_id: int | str) -> None:
        """Every call addressed to ``chat_id`` answers 403 "bot was blocked by the user"."""
        self._blocked.add(_chat_key(chat_id))

    def unblock_user(self, chat_id: int | str) -> None:
        self._blocked.discard(_chat_key(chat_id))

    def _injected_failure(self, method_lower: str, params: JSONDict) -> ApiError | None:
        chat = _chat_key(params["chat_id"]) if "chat_id" in params else None
        for rule in self._fail_rules:
            if rule.method != method_lower:
                continue
            if rule.chat_id is not None and rule.chat_id != chat:
                continue
            rule.times -= 1
            if rule.times <= 0:
                self._fail_rules.remove(rule)
            extra = {"retry_after": rule.retry_after} if rule.retry_after is not None else None
            return ApiError(rule.error_code, rule.description, extra)
        if chat is not None and chat in self._blocked:
            return ApiError(403, "Forbidden: bot was blocked by the user")
        return None

    # ---------------------------------------------------------------- users and updates

    def user(
        self,
        user_id: int,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> JSONDict:
        """The (remembered) Telegram User object of a test user; given fields are updated."""
        profile = self._users.setdefault(
            user_id,
            {
                "id": user_id,
                "is_bot": False,
                "first_name": DEFAULT_FIRST_NAME,
                "language_code": "en",
            },
        )
        if first_name is not None:
            profile["first_name"] = first_name
        if last_name is not None:
            profile["last_name"] = last_name
        if username is not None:
            profile["username"] = username
        if language_code is not None:
            profile["language_code"] = language_code
        return dict(profile)

    def _chat(self, chat_id: int | str) -> JSONDict:
        key = _chat_key(chat_id)
        if isinstance(key, int) and key > 0:
            profile = self._users.get(key) or self.user(key)
            chat: JSONDict = {"id": key, "type": "private", "first_name": profile["first_name"]}
            for extra in ("last_name", "username"):
                if extra in profile:
                    chat[extra] = profile[extra]
            return chat
        if isinstance(key, int):
            return {"id": key, "type": "supergroup", "title": "Test group"}
        return {"id": -1001000000000, "type": "channel", "title": "Test channel", "username": key}

    def _next_message_id(self, chat_id: int | str) -> int:
        key = _chat_key(chat_id)
        counter = self._message_ids.get(key)
        if counter is None:
            counter = self._message_ids[key] = itertools.count(1)
        return next(counter)

    def _store_message(
        self, message: JSONDict, raw_text: str | None = None, parse_mode: Any = None
    ) -> None:
        key = _chat_key(message["chat"]["id"])
        store = self._messages.setdefault(key, {})
        store[int(message["message_id"])] = _StoredMessage(
            message=message, raw_text=raw_text, parse_mode=parse_mode
        )
        limit = self._max_messages_per_chat
        while limit is not None and len(store) > limit:
            del store[next(iter(store))]

    def make_update(self, **payload: Any) -> JSONDict:
        """``{"update_id": <next>, **payload}`` (not queued)."""
        return {"update_id": next(self._update_ids), **payload}

    def push_update(self, update: JSONDict) -> JSONDict:
        """Queue an update for getUpdates (assigns ``update_id`` if missing) and wake pollers."""
        if "update_id" not in update:
            update = {"update_id": next(self._update_ids), **update}
        self._updates.append(update)
        self._wake_pollers()
        return update

    async def post_update(
        self, webhook_url: str | None, update: JSONDict, secret_token: str | None = None
    ) -> int:
        """POST an update to a webhook like Telegram does; returns the HTTP status.

        With ``webhook_url=None`` the URL and secret registered via setWebhook are used.
        """
        if webhook_url is None:
            if self._webhook is None:
                raise AssertionError("No webhook registered via setWebhook")
            webhook_url = str(self._webhook["url"])
            if secret_token is None:
                secret_token = self._webhook.get("secret_token")
        headers = {"Content-Type": "application/json"}
        if secret_token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret_token
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0)
        response = await self._http.post(
            webhook_url, content=json.dumps(update).encode("utf-8"), headers=headers
        )
        return response.status_code

    async def deliver(self, update: JSONDict) -> None:
        """POST to the registered webhook if there is one, else queue for getUpdates."""
        if self._webhook is not None:
            status = await self.post_update(None, update)
            if status != 200:
                raise AssertionError(f"Webhook answered HTTP {status}")
        else:
            self.push_update(update)

    @property
    def pending_updates(self) -> int:
        """Number of queued updates not yet confirmed via a getUpdates offset."""
        return len(self._updates)

    @property
    def active_polls(self) -> int:
        """Number of getUpdates requests currently long-polling."""
        return len(self._pollers)

    @property
    def webhook(self) -> JSONDict | None:
        """Params of the active setWebhook call, or None."""
        return self._webhook

    def _finish_update(self, enqueue: bool, **payload: Any) -> JSONDict:
        update = self.make_update(**payload)
        return self.push_update(update) if enqueue else update

    def make_message(
        self,
        user_id: int,
        text: str | None = None,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        **fields: Any,
    ) -> JSONDict:
        """A Message dict sent by the user in their private chat (not queued)."""
        user = self.user(user_id, first_name, last_name, username, language_code)
        message: JSONDict = {
            "message_id": self._next_message_id(user_id),
            "from": user,
            "chat": self._chat(user_id),
            "date": int(time.time()),
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split(maxsplit=1)[0]
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}
                ]
        message.update(fields)
        self._store_message(message)
        return message

    def push_message(
        self,
        user_id: int,
        text: str,
        first_name: str | None = None,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        enqueue: bool = True,
    ) -> JSONDict:
        """The user sends ``text`` (``/cmd ...`` gets a bot_command entity). Returns the update.

        With ``enqueue=False`` the update is only built (e.g. for :meth:`post_update`).
        """
        message = self.make_message(
            user_id,
            text,
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
        )
        return self._finish_update(enqueue, message=message)

    def _new_file(self, data: bytes, prefix: str, suffix: str) -> _StoredFile:
        seq = next(self._file_seq)
        stored = _StoredFile(
            file_id=f"{prefix}{seq:06d}AAQCAAEgAAAAAAAAAAAB",
            file_unique_id=f"{prefix}U{seq:06d}",
            data=data,
            file_path=f"{prefix.lower()}s/file_{seq}{suffix}",
        )
        self._files[stored.file_id] = stored
        return stored

    def push_sticker(self, user_id: int, emoji: str = "👍", *, enqueue: bool = True) -> JSONDict:
        f = self._new_file(b"RIFF\x00\x00\x00\x00WEBPVP8 ", "CAAC", ".webp")
        sticker = {
            "file_id": f.file_id,
            "file_unique_id": f.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "set_name": "TestStickers",
            "file_size": len(f.data),
        }
        return self._finish_update(enqueue, message=self.make_message(user_id, sticker=sticker))

    def push_photo(
        self,
        user_id: int,
        caption: str | None = None,
        *,
        content: bytes = b"\xff\xd8\xff\xe0fake-jpeg",
        enqueue: bool = True,
    ) -> JSONDict:
        small = self._new_file(content, "AgAC", ".jpg")
        big = self._new_file(content, "AgAC", ".jpg")
        sizes = [
            {
                "file_id": small.file_id,
                "file_unique_id": small.file_unique_id,
                "width": 90,
                "height": 67,
                "file_size": len(content),
            },
            {
                "file_id": big.file_id,
                "file_unique_id": big.file_unique_id,
                "width": 1280,
                "height": 960,
                "file_size": len(content),
            },
        ]
        extra: JSONDict = {"photo": sizes}
        if caption is not None:
            extra["caption"] = caption
        return self._finish_update(enqueue, message=self.make_message(user_id, **extra))

    def push_voice(
        self,
        user_id: int,
        duration: int = 3,
        *,
        content: bytes = b"OggS\x00fake-voice",
        enqueue: bool = True,
    ) -> JSONDict:
        f = self._new_file(content, "AwAC", ".oga")
        voice = {
            "file_id": f.file_id,
            "file_unique_id": f.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(content),
        }
        return self._finish_update(enqueue, message=self.make_message(user_id, voice=voice))

    def push_document(
        self,
        user_id: int,
        file_name: str = "cv.pdf",
        *,
        mime_type: str = "application/pdf",
        content: bytes = b"%PDF-1.4 fake",
        caption: str | None = None,
        enqueue: bool = True,
    ) -> JSONDict:
        f = self._new_file(content, "BQAC", "." + file_name.rsplit(".", 1)[-1])
        document = {
            "file_id": f.file_id,
            "file_unique_id": f.file_unique_id,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": len(content),
        }
        extra: JSONDict = {"document": document}
        if caption is not None:
            extra["caption"] = caption
        return self._finish_update(enqueue, message=self.make_message(user_id, **extra))

    def push_callback(
        self,
        user_id: int,
        data: str,
        message: JSONDict | None = None,
        *,
        enqueue: bool = True,
    ) -> JSONDict:
        """The user presses an inline button with ``data``.

        ``message`` defaults to the latest bot message in the chat whose keyboard has a button
        with this data, else the latest bot message, else a synthetic bot message.
        """
        if message is None:
            message = self._message_with_button(user_id, data)
        if message is None:
            message = self.last_bot_message(user_id)
        if message is None:
            message = {
                "message_id": self._next_message_id(user_id),
                "from": self._bot_user(self._bot_id),
                "chat": self._chat(user_id),
                "date": int(time.time()),
                "text": "(synthetic message)",
            }
            self._store_message(message, raw_text=message["text"])
        query_id = str(next(self._callback_ids))
        self._open_queries[query_id] = time.monotonic()
        query = {
            "id": query_id,
            "from": self.user(user_id),
            "message": message,
            "chat_instance": str(-(abs(user_id) * 7919 + 1_000_003)),
            "data": data,
        }
        return self._finish_update(enqueue, callback_query=query)

    def click(self, user_id: int, label_substring: str, *, enqueue: bool = True) -> JSONDict:
        """Press the button of :meth:`last_keyboard` whose text contains ``label_substring``."""
        data = self.button_data(user_id, label_substring)
        return self.push_callback(
            user_id, data, self._message_with_button(user_id, data), enqueue=enqueue
        )

    def _message_with_button(self, chat_id: int | str, data: str) -> JSONDict | None:
        for msg in reversed(self.bot_messages(chat_id)):
            for row in _inline_keyboard(msg.get("reply_markup")) or []:
                if any(b.get("callback_data") == data for b in row):
                    return msg
        return None

    # ---------------------------------------------------------------- request handling

    def _canonical(self, method: str) -> str:
        entry = self._methods.get(method.lower())
        return entry[0] if entry else method

    def _wake_pollers(self) -> None:
        for poller in self._pollers:
            poller.wake.set()

    async def _serve(self, handler: _Handler) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self._serve_inner(handler)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _serve_inner(self, handler: _Handler) -> None:
        # PTB percent-encodes file download paths (":" in the token becomes %3A).
        path = urllib.parse.unquote(handler.request.path)
        m = _TOKEN_PATH_RE.match(path)
        if m is None:
            fm = _FILE_PATH_RE.match(path)
            if fm is not None and handler.request.method == "GET":
                self._serve_file(handler, fm.group(3))
                return
            handler.send_json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        bot_id, secret, method = int(m.group(1)), m.group(2), m.group(3)
        self._bot_id = bot_id
        if self.tokens is not None and f"{bot_id}:{secret}" not in self.tokens:
            handler.send_json(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        at = time.monotonic()
        try:
            params = self._parse_params(handler)
        except ValueError as exc:
            handler.send_json(
                400,
                {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"},
            )
            return
        if self.latency > 0:
            await self._sleep(self.latency)

        entry = self._methods.get(method.lower())
        name = entry[0] if entry else method
        status, result, error, parameters = 200, None, None, None
        try:
            if entry is None:
                raise ApiError(404, "Not Found: method not found")
            failure = self._injected_failure(method.lower(), params)
            if failure is not None:
                raise failure
            result = await entry[1](_Ctx(bot_id=bot_id, handler=handler), params)
        except ApiError as exc:
            status, error, parameters = exc.error_code, exc.description, exc.parameters

        self.counts[name] += 1
        if self.record:
            self.calls.append(
                Call(
                    method=name,
                    params=params,
                    at=at,
                    status=status,
                    result=result,
                    error=error,
                    token=f"{bot_id}:{secret}",
                )
            )
        self._notify()
        if handler.gone.is_set():
            return
        if status == 200:
            handler.send_json(200, {"ok": True, "result": result})
        else:
            payload: JSONDict = {"ok": False, "error_code": status, "description": error}
            if parameters:
                payload["parameters"] = parameters
            handler.send_json(status, payload)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closing.wait()

    def _parse_params(self, handler: _Handler) -> JSONDict:
        request = handler.request
        ctype = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        self.content_types[ctype or "(none)"] += 1
        params: JSONDict = {}
        for name, values in request.query_arguments.items():
            params[name] = _decode_form_value(name, values[-1].decode("utf-8"))
        if ctype == "application/json":
            if request.body:
                body = json.loads(request.body)
                if not isinstance(body, dict):
                    raise ValueError("JSON object expected")
                params.update(body)
            return params
        for name, values in request.body_arguments.items():
            params[name] = _decode_form_value(name, values[-1].decode("utf-8"))
        for name, files in request.files.items():
            f = files[-1]
            params[name] = UploadedFile(
                filename=f.get("filename", ""),
                content_type=f.get("content_type", "application/octet-stream"),
                data=f.get("body", b""),
            )
        # attach://name references to uploaded parts
        for name, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                part = value[len("attach://") :]
                if part in params and isinstance(params[part], UploadedFile):
                    params[name] = params[part]
        return params

    def _serve_file(self, handler: _Handler, file_path: str) -> None:
        for stored in self._files.values():
            if stored.file_path == file_path:
                handler.set_header("Content-Type", "application/octet-stream")
                handler.finish(stored.data)
                return
        handler.send_json(404, {"ok": False, "error_code": 404, "description": "Not Found"})

    # ---------------------------------------------------------------- method implementations

    def _method_table(self) -> dict[str, _MethodImpl]:
        true_methods = [
            "setMyDescription",
            "setMyShortDescription",
            "setMyName",
            "setChatMenuButton",
            "deleteMyCommands",
            "setMessageReaction",
            "close",
            "logOut",
        ]
        table: dict[str, _MethodImpl] = {name: self._m_true for name in true_methods}
        table.update(
            {
                "getMe": self._m_get_me,
                "getUpdates": self._m_get_updates,
                "setWebhook": self._m_set_webhook,
                "deleteWebhook": self._m_delete_webhook,
                "getWebhookInfo": self._m_get_webhook_info,
                "setMyCommands": self._m_set_my_commands,
                "getMyCommands": self._m_get_my_commands,
                "getChatMenuButton": self._m_get_chat_menu_button,
                "sendMessage": self._m_send_message,
                "editMessageText": self._m_edit_message_text,
                "editMessageReplyMarkup": self._m_edit_message_reply_markup,
                "editMessageCaption": self._m_edit_message_caption,
                "deleteMessage": self._m_delete_message,
                "deleteMessages": self._m_delete_messages,
                "answerCallbackQuery": self._m_answer_callback_query,
                "sendChatAction": self._m_send_chat_action,
                "sendPhoto": self._m_send_photo,
                "sendDocument": self._m_send_document,
                "getFile": self._m_get_file,
                "getChat": self._m_get_chat,
            }
        )
        return table

    def _bot_user(self, bot_id: int) -> JSONDict:
        return {
            "id": bot_id,
            "is_bot": True,
            "first_name": BOT_FIRST_NAME,
            "username": BOT_USERNAME,
        }

    async def _m_true(self, ctx: _Ctx, params: JSONDict) -> bool:
        return True

    async def _m_get_me(self, ctx: _Ctx, params: JSONDict) -> JSONDict:
        return {
            **self._bot_user(ctx.bot_id),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_get_updates(self, ctx: _Ctx, params: JSONDict) -> list[JSONDict]:
        if self._webhook is not None:
            raise ApiError(409, _CONFLICT_WEBHOOK)
        offset = params.get("offset")
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = max(0.0, min(50.0, float(params.get("timeout") or 0)))
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(a) for a in allowed] or None
        if offset is not None:
            offset = int(offset)
            if offset < 0:
                while len(self._updates) > -offset:
                    self._updates.popleft()
            else:
                while self._updates and int(self._updates[0]["update_id"]) < offset:
                    self._updates.popleft()
            self._notify()

        for other in self._pollers:
            other.superseded = True
            other.wake.set()
        poller = _Poller()
        self._pollers.add(poller)
        ctx.handler.poller = poller
        self._notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                self._drop_unwanted_updates()
                if poller.superseded:
                    raise ApiError(409, _CONFLICT_OTHER_POLL)
                if self._updates or self._closing.is_set() or ctx.handler.gone.is_set():
                    break
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                poller.wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await poller.wake.wait()
        finally:
            self._pollers.discard(poller)
            ctx.handler.poller = None
        return list(itertools.islice(self._updates, limit))

    def _drop_unwanted_updates(self) -> None:
        allowed = self._allowed_updates
        if not self._updates:
            return

        def wanted(update: JSONDict) -> bool:
            kind = _update_type(update)
            if allowed is None:
                return kind not in _DEFAULT_EXCLUDED_UPDATES
            return kind in allowed

        if not all(wanted(u) for u in self._updates):
            self._updates = deque(u for u in self._updates if wanted(u))

    async def _m_set_webhook(self, ctx: _Ctx, params: JSONDict) -> bool:
        url = params.get("url")
        if not url:
            self._webhook = None
            return True
        if not isinstance(url, str) or not re.match(r"^https?://", url):
            raise ApiError(400, "Bad Request: bad webhook: invalid webhook URL specified")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN_RE.match(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(a) for a in allowed] or None
        self._webhook = {k: v for k, v in params.items() if not isinstance(v, UploadedFile)}
        for poller in self._pollers:
            poller.superseded = True
            poller.wake.set()
        return True

    async def _m_delete_webhook(self, ctx: _Ctx, params: JSONDict) -> bool:
        self._webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _m_get_webhook_info(self, ctx: _Ctx, params: JSONDict) -> JSONDict:
        info: JSONDict = {
            "url": self._webhook["url"] if self._webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook is not None:
            info["max_connections"] = int(self._webhook.get("max_connections") or 40)
            if self._allowed_updates is not None:
                info["allowed_updates"] = list(self._allowed_updates)
        return info

    @staticmethod
    def _commands_key(params: JSONDict) -> str:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)

    async def _m_set_my_commands(self, ctx: _Ctx, params: JSONDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for cmd in commands:
            name = cmd.get("command", "") if isinstance(cmd, dict) else ""
            if not re.match(r"^[a-z0-9_]{1,32}$", str(name)):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not str(cmd.get("description", "")).strip():
                raise ApiError(400, "Bad Request: command description is empty")
        self._commands[self._commands_key(params)] = commands
        return True

    async def _m_get_my_commands(self, ctx: _Ctx, params: JSONDict) -> list[JSONDict]:
        return self._commands.get(self._commands_key(params), [])

    async def _m_get_chat_menu_button(self, ctx: _Ctx, params: JSONDict) -> JSONDict:
        return {"type": "commands"}

    async def _m_get_chat(self, ctx: _Ctx, params: JSONDict) -> JSONDict:
        if "chat_id" not in params:
            raise ApiError(400, "Bad Request: chat_id is empty")
        return {**self._chat(params["chat_id"]), "accent_color_id": 0, "max_reaction_count": 11}

    def _check_text(self, params: JSONDict, key: str = "text") -> str:
        text = params.get(key)
        if not isinstance(text, str):
            raise ApiError(400, "Bad Request: message text is empty")
        visible = _visible_text(text, params.get("parse_mode"))
        if not visible.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(visible) > MAX_MESSAGE_LENGTH:
            raise ApiError(400, "Bad Request: message is too long")
        return visible

    def _check_caption(self, params: JSONDict) -> str | None:
        caption = params.get("caption")
        if caption is None:
            return None
        visible = _visible_text(str(caption), params.get("parse_mode"))
        if len(visible) > MAX_CAPTION_LENGTH:
            raise ApiError(400, "Bad Request: message caption is too long")
        return visible

    def _require_chat(self, params: JSONDict) -> int | str:
        if "chat_id" not in params or params["chat_id"] in ("", None):
            raise ApiError(400, "Bad Request: chat_id is empty")
        return _chat_key(params["chat_id"])

    def _new_bot_message(self, ctx: _Ctx, chat_id: int | str, **fields: Any) -> JSONDict:
        message: JSONDict = {
            "message_id": self._next_message_id(chat_id),
            "from": self._bot_user(ctx.bot_id),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
        }
        message.update({k: v for k, v in fields.items() if v is not None})
        return message

    @staticmethod
    def _echo_markup(markup: Any) -> JSONDict | None:
        # Telegram only echoes inline keyboards back in the Message object.
        return markup if _inline_keyboard(markup) is not None else None

    async def _m_send_message(self, ctx: _Ctx, params: JSONDict) -> JSONDict:
        chat_id = self._require_chat(params)
        visible = self._check_text(params)
        markup = params.get("reply_markup")
        _validate_reply_markup(markup)
        message = self._new_bot_message(
            ctx, chat_id, text=visible, reply_markup=self._echo_markup(markup)
        )
        self._store_message(message, raw_text=params["text"], parse_mode=params.get("parse_mode"))
        return message

    def _find_message(self, params: JSONDict) -> _StoredMessage:
        chat_id = self._require_chat(params)
        message_id = _require_int(params, "message_id")
        stored = self._messages.get(chat_id, {}).get(message_id)
        if stored is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if not stored.message.get("from", {}).get("is_bot", False):
            raise ApiError(400, "Bad Request: message can't be edited")
        return stored

    async def _m_edit_message_text(self, ctx: _Ctx, params: JSONDict) -> JSONDict | bool:
        visible = self._check_text(params)
        markup = params.get("reply_markup")
        _validate_reply_markup(markup)
        if "inline_message_id" in params:
            return True
        stored = self._find_message(params)
        message = stored.message
        if "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        new_markup = self._echo_markup(markup)
        if (
            stored.raw_text == params["text"]
            and stored.parse_mode == params.get("parse_mode")
            and message.get("reply_markup") == new_markup
        ):
            raise ApiError(400, _NOT_MODIFIED)
        message = {k: v for k, v in message.items() if k not in ("reply_markup", "entities")}
        message.update(text=visible, edit_date=int(time.time()))
        if new_markup is not None:
            message["reply_markup"] = new_markup
        stored.message, stored.raw_text = message, params["text"]
        stored.parse_mode = params.get("parse_mode")
        return message

    async def _m_edit_message_reply_markup(self, ctx: _Ctx, params: JSONDict) -> JSONDict | bool:
        markup = params.get("reply_markup")
        _validate_reply_markup(markup)
        if "inline_message_id" in params:
            return True
        stored = self._find_message(params)
        new_markup = self._echo_markup(markup)
        if stored.message.get("reply_markup") == new_markup:
            raise ApiError(400, _NOT_MODIFIED)
        message = {k: v for k, v in stored.message.items() if k != "reply_markup"}
        message["edit_date"] = int(time.time())
        if new_markup is not None:
            message["reply_markup"] = new_markup
        stored.message = message
        return message

    async def _m_edit_message_caption(self, ctx: _Ctx, params: JSONDict) -> JSONDict | bool:
        caption = self._check_caption(params)
        markup = params.get("reply_markup")
        _validate_reply_markup(markup)
        if "inline_message_id" in params:
            return True
        stored = self._find_message(params)
        if "text" in stored.message:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        message = {k: v for k, v in stored.message.items() if k not in ("reply_markup", "caption")}
        message["edit_date"] = int(time.time())
        if caption is not None:
            message["caption"] = caption
        new_markup = self._echo_markup(markup)
        if new_markup is not None:
            message["reply_markup"] = new_markup
        stored.message = message
        return message

    async def _m_delete_message(self, ctx: _Ctx, params: JSONDict) -> bool:
        chat_id = self._require_chat(params)
        message_id = _require_int(params, "message_id")
        self._messages.get(chat_id, {}).pop(message_id, None)
        return True

    async def _m_delete_messages(self, ctx: _Ctx, params: JSONDict) -> bool:
        chat_id = self._require_chat(params)
        for message_id in params.get("message_ids") or []:
            self._messages.get(chat_id, {}).pop(int(message_id), None)
        return True

    async def _m_answer_callback_query(self, ctx: _Ctx, params: JSONDict) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if query_id not in self._open_queries:
            raise ApiError(400, _QUERY_INVALID)
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        del self._open_queries[query_id]
        return True

    async def _m_send_chat_action(self, ctx: _Ctx, params: JSONDict) -> bool:
        self._require_chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    def _file_from_param(
        self, value: Any, what: str, prefix: str, suffix: str
    ) -> tuple[_StoredFile, str]:
        """Returns the stored file and a file name for an uploaded file or a file_id/URL."""
        if isinstance(value, UploadedFile):
            name = value.filename or f"file{suffix}"
            return self._new_file(value.data, prefix, suffix), name
        if isinstance(value, str) and value:
            known = self._files.get(value)
            if known is not None:
                return known, known.file_path.rsplit("/", 1)[-1]
            if re.match(r"^https?://", value):
                return self._new_file(b"", prefix, suffix), value.rsplit("/", 1)[-1] or "file"
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        raise ApiError(400, f"Bad Request: there is no {what} in the request")

    async def _m_send_photo(self, ctx: _Ctx, params: JSONDict) -> JSONDict:
        chat_id = self._require_chat(params)
        caption = self._check_caption(params)
        markup = params.get("reply_markup")
        _validate_reply_markup(markup)
        stored, _name = self._file_from_param(params.get("photo"), "photo", "AgAC", ".jpg")
        photo = [
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "width": 320,
                "height": 240,
                "file_size": len(stored.data),
            }
        ]
        message = self._new_bot_message(
            ctx, chat_id, photo=photo, caption=caption, reply_markup=self._echo_markup(markup)
        )
        self._store_message(message)
        return message

    async def _m_send_document(self, ctx: _Ctx, params: JSONDict) -> JSONDict:
        chat_id = self._require_chat(params)
        caption = self._check_caption(params)
        markup = params.get("reply_markup")
        _validate_reply_markup(markup)
        value = params.get("document")
        stored, name = self._file_from_param(value, "document", "BQAC", ".bin")
        document = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": name,
            "mime_type": (
                value.content_type
                if isinstance(value, UploadedFile)
                else "application/octet-stream"
            ),
            "file_size": len(stored.data),
        }
        message = self._new_bot_message(
            ctx,
            chat_id,
            document=document,
            caption=caption,
            reply_markup=self._echo_markup(markup),
        )
        self._store_message(message)
        return message

    async def _m_get_file(self, ctx: _Ctx, params: JSONDict) -> JSONDict:
        stored = self._files.get(str(params.get("file_id", "")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }


@asynccontextmanager
async def running_fake_bot_api(
    *, latency: float = 0.0, record: bool = True, tokens: Iterable[str] | None = None
) -> AsyncIterator[FakeBotApi]:
    """``async with running_fake_bot_api() as api: ...``"""
    api = FakeBotApi(latency=latency, record=record, tokens=tokens)
    await api.start()
    try:
        yield api
    finally:
        await api.stop()
