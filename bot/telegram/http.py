"""PTB's network layer on aiohttp instead of httpx.

`BaseRequest` is python-telegram-bot's documented extension point for the HTTP client. The
bench (bench/load.py) found httpx to be most of the bot's CPU: about 1.2 ms per Bot API call
on loopback, against 0.18 ms for aiohttp, whose HTTP parser is compiled. httpcore re-checks
every pooled connection (two system calls each) whenever a request starts or ends, which
grows with the pool. A reply costs two or three calls, so the client decides how many
updates a second the bot can serve.

Behaviour kept from PTB's `HTTPXRequest`: the same default timeouts, `TimedOut` for a timeout
(a pool wait included) and `NetworkError` for any other transport failure, multipart for
uploads, proxies from the environment (`HTTPS_PROXY`).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_JSON = {"Content-Type": "application/json"}


class AiohttpRequest(BaseRequest):
    """One aiohttp session with up to `connections` kept-alive connections."""

    def __init__(
        self,
        connections: int = 16,
        *,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        self.connections = connections
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str] = {}
        self._proxy_for: dict[tuple[str, str], str | None] = {}

    @property
    def pool_timeout(self) -> float | None:
        """How long a request waits for a free connection (None: for ever)."""
        return self._pool

    @property
    def read_timeout(self) -> float | None:
        return self._read

    @property
    def is_open(self) -> bool:
        return self._session is not None and not self._session.closed

    async def initialize(self) -> None:
        # The session belongs to the running loop, so it is made here, not in __init__; and
        # made again after a shutdown, as HTTPXRequest does.
        if not self.is_open:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections),
                headers={"User-Agent": self.USER_AGENT},
                # Not trust_env: aiohttp would then look the proxy up on a worker thread for
                # every request; the environment is read once here instead.
            )
            self._proxies = urllib.request.getproxies()
            self._proxy_for.clear()

    async def shutdown(self) -> None:
        if self._session is not None and self.is_open:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or not self.is_open:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        read = _given(read_timeout, self._read)
        write = _given(write_timeout, self._media_write if files else self._write)
        connect = _given(connect_timeout, self._connect)
        pool = _given(pool_timeout, self._pool)
        timeout = aiohttp.ClientTimeout(
            # aiohttp's `connect` covers waiting for a pooled connection and opening one.
            connect=_total(pool, connect),
            sock_connect=connect,
            sock_read=read,
            # aiohttp has no write timeout: the whole exchange is bounded instead.
            total=_total(pool, connect, write, read),
        )
        data: Any = None
        headers: dict[str, str] | None = None
        if files:
            form = aiohttp.FormData()
            for name, value in request_data.json_parameters.items() if request_data else ():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            data = form
        elif request_data is not None:
            # A JSON body, which the Bot API accepts: form-encoding percent-escapes every
            # character of the keyboards' JSON one by one (a tenth of the bot's CPU).
            data = json.dumps(request_data.parameters, separators=(",", ":"))
            headers = _JSON
        try:
            async with session.request(
                method, url, data=data, headers=headers, timeout=timeout, proxy=self._proxy(url)
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # asyncio's and aiohttp's timeouts are both TimeoutError
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc

    def _proxy(self, url: str) -> str | None:
        """HTTPS_PROXY / HTTP_PROXY, unless NO_PROXY names the host (as httpx honours them)."""
        if not self._proxies:
            return None
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key not in self._proxy_for:
            bypass = urllib.request.proxy_bypass(key[1])
            self._proxy_for[key] = None if bypass else self._proxies.get(key[0])
        return self._proxy_for[key]


def _given(value: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value


def _total(*parts: float | None) -> float | None:
    """The sum, or no limit when any part has none."""
    return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)
