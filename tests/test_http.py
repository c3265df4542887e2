"""The Bot API client (bot/telegram/http.py) against a small aiohttp server on 127.0.0.1:
what goes over the wire, and which PTB error each failure becomes."""

from __future__ import annotations

import asyncio
import inspect
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import BodyPartReader, web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData
from telegram.request._requestparameter import RequestParameter

from bot.telegram.http import AiohttpRequest


class Server:
    """Records each request; `/slow` answers only when `release` is set."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.release = asyncio.Event()
        self.slow_started = asyncio.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "agent": request.headers.get("User-Agent"),
            "type": request.content_type,
            "host": request.host,
        }
        if request.content_type == "multipart/form-data":
            parts = {}
            async for part in await request.multipart():
                assert isinstance(part, BodyPartReader)
                parts[part.name] = (
                    part.filename,
                    part.headers.get("Content-Type"),
                    bytes(await part.read()),
                )
            entry["parts"] = parts
        elif request.content_type == "application/json":
            entry["raw"] = await request.read()
            entry["json"] = await request.json()
        else:
            entry["body"] = await request.read()
        self.seen.append(entry)
        if request.path.endswith("/slow"):
            self.slow_started.set()
            await self.release.wait()
        if request.path.endswith("/teapot"):
            return web.json_response({"ok": False, "description": "no"}, status=418)
        return web.json_response({"ok": True, "result": True})


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    srv.url = f"http://127.0.0.1:{port}"
    yield srv
    srv.release.set()
    await runner.cleanup()


def params(**values: Any) -> RequestData:
    return RequestData([RequestParameter.from_input(k, v) for k, v in values.items()])


async def test_posts_parameters_as_json_with_ptb_user_agent(server: Server) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="y")]])
    async with AiohttpRequest(2) as request:
        status, body = await request.do_request(
            f"{server.url}/bot1:x/sendMessage",
            "POST",
            params(chat_id=7, text="héllo <b>", reply_markup=keyboard),
        )
    assert status == 200
    assert BaseRequest.parse_json_payload(body) == {"ok": True, "result": True}
    (seen,) = server.seen
    assert seen["path"] == "/bot1:x/sendMessage"
    assert seen["type"] == "application/json"
    assert seen["json"] == {
        "chat_id": 7,
        "text": "héllo <b>",
        "reply_markup": {"inline_keyboard": [[{"text": "Yes", "callback_data": "y"}]]},
    }
    assert seen["agent"] == BaseRequest.USER_AGENT
    # Compact: no whitespace between the JSON's tokens (outside its strings).
    assert not re.search(r"\s", re.sub(r'"(?:[^"\\]|\\.)*"', "", seen["raw"].decode()))


async def test_uploads_files_as_multipart_beside_the_parameters(server: Server) -> None:
    photo = InputFile(b"\x89PNG fake", filename="qr.png")
    async with AiohttpRequest() as request:
        status, _ = await request.do_request(
            f"{server.url}/bot1:x/sendPhoto", "POST", params(chat_id=7, photo=photo)
        )
    assert status == 200
    (seen,) = server.seen
    assert seen["type"] == "multipart/form-data"
    assert seen["parts"]["chat_id"] == (None, "text/plain; charset=utf-8", b"7")
    (name,) = [k for k in seen["parts"] if k != "chat_id"]
    assert seen["parts"][name] == ("qr.png", "image/png", b"\x89PNG fake")


async def test_returns_an_error_status_as_it_came(server: Server) -> None:
    async with AiohttpRequest() as request:
        status, body = await request.do_request(f"{server.url}/bot1:x/teapot", "POST")
    assert status == 418
    assert BaseRequest.parse_json_payload(body)["description"] == "no"
    assert server.seen[0]["body"] == b""


async def test_a_slow_answer_is_timed_out(server: Server) -> None:
    async with AiohttpRequest(read_timeout=0.05) as request:
        with pytest.raises(TimedOut):
            await request.do_request(f"{server.url}/bot1:x/slow", "POST")
    assert server.slow_started.is_set()


async def test_a_longer_read_timeout_per_call_is_honoured(server: Server) -> None:
    async with AiohttpRequest(read_timeout=0.01) as request:
        call = asyncio.ensure_future(
            request.do_request(f"{server.url}/bot1:x/slow", "POST", read_timeout=30)
        )
        await asyncio.wait_for(server.slow_started.wait(), 10)
        server.release.set()
        status, _ = await asyncio.wait_for(call, 10)
    assert status == 200


async def test_waiting_for_a_busy_pool_times_out(server: Server) -> None:
    # aiohttp bounds the wait for a pooled connection and the connecting together.
    async with AiohttpRequest(
        1, pool_timeout=0.05, connect_timeout=0.05, read_timeout=30
    ) as request:
        busy = asyncio.ensure_future(request.do_request(f"{server.url}/bot1:x/slow", "POST"))
        await asyncio.wait_for(server.slow_started.wait(), 10)
        with pytest.raises(TimedOut):
            await request.do_request(f"{server.url}/bot1:x/getMe", "POST")
        server.release.set()
        assert (await asyncio.wait_for(busy, 10))[0] == 200
    assert [s["path"] for s in server.seen] == ["/bot1:x/slow"]


async def test_a_refused_connection_is_a_network_error_not_a_timeout() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request: nothing listens
    async with AiohttpRequest() as request:
        with pytest.raises(NetworkError) as caught:
            await request.do_request(f"http://127.0.0.1:{port}/bot1:x/getMe", "POST")
    assert not isinstance(caught.value, TimedOut)
    assert "aiohttp.ClientConnectorError" in caught.value.message


async def test_needs_initialising_and_can_start_again_after_shutdown(server: Server) -> None:
    request = AiohttpRequest()
    assert not request.is_open
    with pytest.raises(RuntimeError, match=r"^This AiohttpRequest is not initialized!$"):
        await request.do_request(f"{server.url}/bot1:x/getMe", "POST")
    await request.initialize()
    assert request.is_open
    await request.shutdown()
    assert not request.is_open
    with pytest.raises(RuntimeError, match=r"^This AiohttpRequest is not initialized!$"):
        await request.do_request(f"{server.url}/bot1:x/getMe", "POST")
    await request.initialize()
    assert (await request.do_request(f"{server.url}/bot1:x/getMe", "POST"))[0] == 200
    await request.shutdown()
    await request.shutdown()  # twice is harmless
    assert len(server.seen) == 1


def test_default_read_timeout_is_reported_to_ptb() -> None:
    assert AiohttpRequest().read_timeout == 5.0
    assert AiohttpRequest(read_timeout=None).read_timeout is None


def test_at_least_one_connection() -> None:
    with pytest.raises(ValueError, match=r"^connections must be at least 1$"):
        AiohttpRequest(0)
    assert AiohttpRequest(1).connections == 1


async def test_proxies_come_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "bots.internal")
    async with AiohttpRequest() as request:
        assert request._proxy("https://api.telegram.org/bot1:x/getMe") == (
            "http://proxy.example:3128"
        )
        assert request._proxy("https://bots.internal/bot1:x/getMe") is None
        assert request._proxy("http://api.telegram.org/bot1:x/getMe") is None  # no HTTP_PROXY
        # Read at start: a later change of the environment does not apply until a restart.
        monkeypatch.setenv("HTTPS_PROXY", "http://other.example:1")
        assert request._proxy("https://api.telegram.org/bot1:x/getMe") == (
            "http://proxy.example:3128"
        )


async def test_without_proxy_variables_no_proxy_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    async with AiohttpRequest() as request:
        assert request._proxy("https://api.telegram.org/bot1:x/getMe") is None


class Timeouts:
    """Records the aiohttp.ClientTimeout of each request (aiohttp has no write timeout, so
    the bounds are only visible here)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: list[aiohttp.ClientTimeout] = []
        real = aiohttp.ClientTimeout

        def record(**kw: Any) -> aiohttp.ClientTimeout:
            made = real(**kw)
            self.made.append(made)
            return made

        monkeypatch.setattr(aiohttp, "ClientTimeout", record)

    def last(self) -> tuple[float | None, float | None, float | None, float | None]:
        t = self.made[-1]
        return t.connect, t.sock_connect, t.sock_read, t.total


async def test_default_timeouts_are_those_of_ptbs_httpx_request(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    ptb = inspect.signature(HTTPXRequest.__init__).parameters
    pool, connect, read, write, media = (
        ptb[name].default
        for name in (
            "pool_timeout",
            "connect_timeout",
            "read_timeout",
            "write_timeout",
            "media_write_timeout",
        )
    )
    timeouts = Timeouts(monkeypatch)
    async with AiohttpRequest() as request:
        await request.do_request(f"{server.url}/bot1:x/getMe", "POST", params(chat_id=1))
        assert timeouts.last() == (pool + connect, connect, read, pool + connect + write + read)
        photo = InputFile(b"x", filename="a.png")
        await request.do_request(f"{server.url}/bot1:x/sendPhoto", "POST", params(photo=photo))
        assert timeouts.last() == (pool + connect, connect, read, pool + connect + media + read)


async def test_each_timeout_bounds_its_own_part_of_the_exchange(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    timeouts = Timeouts(monkeypatch)
    async with AiohttpRequest(
        pool_timeout=1, connect_timeout=2, write_timeout=3, read_timeout=4, media_write_timeout=50
    ) as request:
        url = f"{server.url}/bot1:x/getMe"
        await request.do_request(url, "POST")
        # The pool wait and the connecting together; the whole exchange bounded by the sum.
        assert timeouts.last() == (3, 2, 4, 10)
        photo = InputFile(b"x", filename="a.png")
        await request.do_request(url, "POST", params(photo=photo))
        assert timeouts.last() == (3, 2, 4, 57)  # an upload gets the media write timeout
        # Given per call, each replaces its default.
        await request.do_request(
            url, "POST", read_timeout=40, write_timeout=30, connect_timeout=20, pool_timeout=10
        )
        assert timeouts.last() == (30, 20, 40, 100)
        await request.do_request(url, "POST", params(photo=photo), write_timeout=30)
        assert timeouts.last() == (3, 2, 4, 37)


async def test_no_limit_on_a_part_means_no_limit_on_the_whole(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    timeouts = Timeouts(monkeypatch)
    async with AiohttpRequest(
        pool_timeout=1, connect_timeout=2, write_timeout=3, read_timeout=4
    ) as request:
        url = f"{server.url}/bot1:x/getMe"
        await request.do_request(url, "POST", read_timeout=None)
        assert timeouts.last() == (3, 2, None, None)
        await request.do_request(url, "POST", write_timeout=None)
        assert timeouts.last() == (3, 2, 4, None)
        await request.do_request(url, "POST", connect_timeout=None)
        assert timeouts.last() == (None, None, 4, None)
        await request.do_request(url, "POST", pool_timeout=None)
        assert timeouts.last() == (None, 2, 4, None)
    async with AiohttpRequest(read_timeout=None) as request:
        await request.do_request(f"{server.url}/bot1:x/getMe", "POST")
        assert timeouts.last()[2:] == (None, None)


async def test_requests_go_through_the_proxy_the_environment_names(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url)  # the test server plays the proxy
    async with AiohttpRequest() as request:
        # The host does not exist: only a request handed to the proxy gets an answer.
        status, _ = await request.do_request("http://api.telegram.invalid/bot1:x/getMe", "POST")
    assert status == 200
    (seen,) = server.seen
    assert seen["host"] == "api.telegram.invalid"
    assert seen["path"] == "/bot1:x/getMe"
