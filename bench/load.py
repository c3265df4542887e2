"""Load benchmark: whole conversations of many users against our bot and a bare PTB echo bot.

    python -m bench.load                      # 500 users, 50 and 100 updates/s, about 3 minutes
    python -m bench.load --quick              # a 30-second smoke run (fewer users, short phases)
    python -m bench.load --users 1000 --rates 50 100 200 --duration 30 --saturation 20
    python -m bench.load --profile /tmp/bot.prof   # also cProfile our bot (inflates its CPU)
    python -m bench.load --bots project --seed-users 0 --inbox-concurrency 16   # an experiment

A loopback fake Telegram Bot API (tests/fakebot.py, a real tornado HTTP server) runs in this
process with the simulated users. Each bot runs as its own SUBPROCESS, one after the other, so
its CPU time and memory are its own: first a bare python-telegram-bot echo bot
(bench/echo_bot.py), then ours, `python -m bot run` (through a small runner that counts SQLite
round trips, see below) with the shipped settings but for the token, the Bot API URL and a
fresh database file. Both take updates by real HTTP long polling (getUpdates, 10 s timeout).

Users go through whole conversations: /start, taps on the inline buttons the bot actually sent
them (read from the fake: the last bot message in their chat), typed worries ("I'm so nervous",
"the salary is too low", ...). A user sends its next step only once the bot answered the
previous one (a message with buttons, or 250 ms without another reply). The echo bot gets the
same kinds of inputs (texts, commands, button presses with plausible data).

Phases, per bot: start-up (an update is queued before the process is spawned), a warm-up (each
user's first /start, at the highest rate), then open-loop arrivals paced at each --rates
(arrivals spread over the users; a user not yet answered is skipped), then saturation (every
user sends its next step as soon as it was answered, --saturation seconds). Then, for our bot
only, a database seeded with --seed-users users (real schema and migrations, states from real
engine conversations, pending nudges) for the memory target. Measured:

* latency: from an update entering the fake's queue to the first reply to that chat
  (sendMessage, editMessageText or answerCallbackQuery, whichever reaches the fake first);
* saturation throughput: first replies per second at the fake, after the first seconds;
* CPU per update: the subprocess's user+system CPU over the paced phases / their updates;
* peak RSS: VmHWM of the subprocess (what ru_maxrss reports);
* HTTP requests per update (counted by the fake, getUpdates included);
* SQLite round trips per update: calls of `aiosqlite.Connection._execute` (each is one hop to
  aiosqlite's thread), counted by caller by a wrapper the runner installs before it calls
  `bot.__main__.main(["run"])` (about 1 µs a hop); read by SIGUSR1 (the runner writes its
  counter to a file);
* the fake's own capacity, served alone to a raw-socket client in a subprocess.

The echo bot handles one update at a time (PTB's default; --echo-concurrency changes it: with
concurrent_updates(True) PTB's HTTP pool makes it far slower at saturation). Our bot is never
reconfigured unless asked: --inbox-concurrency patches its inbox worker's concurrency, and the
report then says the run is an experiment. Writes the report (Markdown) to
bench/results-load.md (--out). Needs psutil. On 2 CPUs the bot and this process compete: see
"Noise" in the report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the bench side only: a bot subprocess must not pay for these imports
    import psutil

    from tests.fakebot import FakeBotApi

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/load.py` too, not only `-m bench.load`
    sys.path.insert(0, str(ROOT))
TOKEN = "123:abc"
MB = 1024 * 1024
FIRST_USER = 700_000_001  # simulated users' ids (private chats: chat id = user id)
STARTUP_USER = 699_999_999  # sends the update queued before the bot starts
QUIET = 0.25  # a step without a keyboard is answered once no reply came for this long
LOST_AFTER = 20.0  # seconds without any reply: the update counts as lost
SAT_WARMUP = 2.0  # seconds of saturation not counted (the first burst of every user at once)
NOISY = 0.15  # other processes using more than this share of a core: the run is disturbed

REPLIES = ("sendMessage", "editMessageText", "answerCallbackQuery", "sendPhoto", "sendDocument")
# What users type: worries, decisions, and (when asked "when") a time.
TEXTS = (
    "I'm so nervous",
    "the salary is too low",
    "it's too far",
    "no thanks, I'm not going",
    "ok fine I'll go",
    "I'm not sure I'm qualified for this",
)
TIME_TEXT = "next Tuesday at 10am"  # typed when asked "When is the interview?"
CLOCK_TEXT = "10am"  # typed when asked "What time on ...?"
# Button data the echo bot gets (it sends no keyboards): shaped like ours, v1:<step>:<choice>.
ECHO_BUTTONS = (
    "v1:sit:unsure",
    "v1:lean:no",
    "v1:obj:nervous",
    "v1:more:nervous:1",
    "v1:dec:go",
    "v1:menu",
)
P_START = 0.03  # a step is /start
P_TAP = 0.72  # a step is a tap, when there are buttons; the rest is typed text

TARGETS = {
    "cpu_ratio": 1.2,  # CPU per update <= 1.2x echo's
    "p99_ms": 20.0,  # at 100 updates/s
    "p99_rate": 100.0,
    "throughput_ratio": 0.8,  # saturation >= 80% of echo's
    "rss_big_mb": 100.0,  # with 100,000 users in the database
    "first_reply_s": 1.0,
    "sqlite_per_update": 3.0,
}


# ==============================================================================================
# The bot subprocesses (kept free of the bench's imports: their memory is measured)
# ==============================================================================================


def serve(kind: str, counts: str | None, profile: str | None) -> int:
    if kind == "echo":
        from bench.echo_bot import main as echo_main

        echo_main()
        return 0
    return serve_project(counts, profile)


def serve_project(counts_path: str | None, profile: str | None) -> int:
    """`python -m bot run`, with every hop to aiosqlite's thread counted (by its caller)."""
    import aiosqlite.core

    calls: Counter[str] = Counter()
    original: Callable[..., Any] = aiosqlite.core.Connection._execute
    dumps = 0

    skip = (f"{os.sep}aiosqlite{os.sep}", os.path.join("bot", "storage", "db.py"))

    async def counting(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        # Named by the first caller outside aiosqlite and bot/storage/db.py (awaiting
        # coroutines are each other's f_back while they run), and what it sent to the thread.
        frame = sys._getframe(1)
        while frame.f_back is not None and any(p in frame.f_code.co_filename for p in skip):
            frame = frame.f_back
        sent = getattr(fn, "__qualname__", type(fn).__name__).replace(".<locals>", "")
        calls[f"{frame.f_code.co_qualname} → {sent}"] += 1
        return await original(self, fn, *args, **kwargs)

    aiosqlite.core.Connection._execute = counting  # type: ignore[method-assign]

    def dump(*_: object) -> None:
        nonlocal dumps
        if counts_path is None:
            return
        dumps += 1
        tmp = counts_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"seq": dumps, "total": sum(calls.values()), "by": dict(calls)}, fh)
        os.replace(tmp, counts_path)

    signal.signal(signal.SIGUSR1, dump)
    experiment = os.environ.get("BENCH_INBOX_CONCURRENCY")
    if experiment:  # --inbox-concurrency: an experiment, not the shipped configuration
        from bot.telegram.intake import InboxWorker

        defaults = InboxWorker.__init__.__kwdefaults__ or {}
        defaults["concurrency"] = int(experiment)
        InboxWorker.__init__.__kwdefaults__ = defaults
    from bot.__main__ import main as bot_main

    if profile is None:
        code = bot_main(["run"])
    else:
        import cProfile

        # The main thread's CPU clock: time spent preempted (a busy machine) is not charged.
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        try:
            code = bot_main(["run"])
        finally:
            profiler.disable()
            profiler.dump_stats(profile)
    dump()
    return code


async def hammer(url: str, seconds: float, connections: int) -> dict[str, float]:
    """A raw HTTP/1.1 keep-alive client (cheaper than httpx, so the fake is what is measured):
    three sendMessage with a keyboard (as PTB encodes them) to one getUpdates(timeout=0)."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    keyboard = json.dumps(
        {
            "inline_keyboard": [
                [{"text": f"Choice {i}", "callback_data": f"v1:x:{i}"}] for i in "abc"
            ]
        }
    )

    def request(method: str, fields: dict[str, str]) -> bytes:
        body = urllib.parse.urlencode(fields).encode()
        head = (
            f"POST /bot{TOKEN}/{method} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    sends = [
        request(
            "sendMessage",
            {
                "chat_id": str(FIRST_USER + i),
                "text": "<b>Nervous?</b> That is normal: a first interview is a conversation.",
                "parse_mode": "HTML",
                "reply_markup": keyboard,
                "link_preview_options": '{"is_disabled": true}',
            },
        )
        for i in range(50)
    ]
    poll = request("getUpdates", {"timeout": "0", "offset": "1"})
    length_re = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, port)
        n = index
        while time.perf_counter() < deadline:
            writer.write(poll if n % 4 == 0 else sends[n % len(sends)])
            head = await reader.readuntil(b"\r\n\r\n")
            match = length_re.search(head)
            await reader.readexactly(int(match.group(1)) if match else 0)
            n += 1
            done += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    return {"requests": done, "seconds": time.perf_counter() - started}


# ==============================================================================================
# The simulated users, observing the fake
# ==============================================================================================


@dataclass
class Phase:
    name: str
    rate: float | None = None  # offered rate; None: as fast as answered (saturation)
    started: float = 0.0
    ended: float = 0.0  # arrivals stop
    drained: float = 0.0  # every update answered (or lost)
    pushed: int = 0
    lost: int = 0
    waited: int = 0  # arrivals that found no user ready (all waiting for answers)
    latencies: list[float] = field(default_factory=list)  # seconds
    answers: list[float] = field(default_factory=list)  # perf_counter of each first reply
    kinds: Counter[str] = field(default_factory=Counter)
    # Deltas over the phase (arrivals through drain), filled by the caller.
    cpu: float = 0.0
    main_cpu: float = 0.0  # of which the event loop's thread
    bench_cpu: float = 0.0
    other_cpu: float = 0.0  # every other process on the machine: noise
    requests: Counter[str] = field(default_factory=Counter)
    sqlite: int | None = None
    sqlite_by: Counter[str] = field(default_factory=Counter)

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass(eq=False)
class User:
    uid: int
    rng: random.Random
    started: bool = False
    busy: bool = False
    step: int = 0
    pushed_at: float = 0.0
    answered: bool = False
    replies: int = 0
    phase: Phase | None = None


def _chat(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _has_buttons(markup: Any) -> bool:
    if not isinstance(markup, dict):
        return False
    rows: list[list[dict[str, Any]]] = markup.get("inline_keyboard") or []
    return any("callback_data" in b for row in rows for b in row)


class Users:
    """Simulated users of one bot; hooks the fake's reply methods to see answers as they come.

    `echo`: the bot answers each update with exactly one reply, so the first one completes a
    step. Ours may send several messages: a step is complete at a message with buttons, or
    QUIET seconds after its last reply."""

    def __init__(
        self,
        api: FakeBotApi,
        ids: Iterable[int],
        *,
        echo: bool,
        seed: int,
        startup_chat: int = STARTUP_USER,
    ) -> None:
        self.api = api
        self.echo = echo
        self.startup_chat = startup_chat
        self.loop = asyncio.get_running_loop()
        self.users = {
            uid: User(uid, random.Random(seed * 1_000_003 + uid))
            for uid in ids
            if uid != startup_chat
        }
        order = list(self.users.values())
        random.Random(seed).shuffle(order)
        self.ready: deque[User] = deque(order)
        self.ready_event = asyncio.Event()
        self.idle_event = asyncio.Event()
        self.busy = 0
        self.closed_loop = False
        self.phase = Phase("idle")
        self.queries: dict[str, int] = {}  # callback_query id -> chat
        self.first_poll: float | None = None
        self.startup_reply: float | None = None
        self._watchdog = asyncio.create_task(self._watch())
        for method in REPLIES:
            self._observe(method)
        self._observe_polls()

    # ---------------------------------------------------------------- hooks into the fake

    def _observe(self, method: str) -> None:
        key = method.lower()
        name, impl = self.api._methods[key]

        async def observed(ctx: Any, params: dict[str, Any]) -> Any:
            at = time.perf_counter()
            if name == "answerCallbackQuery":
                chat = self.queries.pop(str(params.get("callback_query_id")), None)
            else:
                chat = _chat(params.get("chat_id"))
            try:
                return await impl(ctx, params)  # stored first: the next step reads it
            finally:
                if chat is not None:
                    self.on_reply(chat, at, _has_buttons(params.get("reply_markup")))

        self.api._methods[key] = (name, observed)

    def _observe_polls(self) -> None:
        name, impl = self.api._methods["getupdates"]

        async def observed(ctx: Any, params: dict[str, Any]) -> Any:
            if self.first_poll is None:
                self.first_poll = time.perf_counter()
            return await impl(ctx, params)

        self.api._methods["getupdates"] = (name, observed)

    # ---------------------------------------------------------------- answers

    def on_reply(self, chat: int, at: float, buttons: bool) -> None:
        if chat == self.startup_chat:
            if self.startup_reply is None:
                self.startup_reply = at
            return
        user = self.users.get(chat)
        if user is None or not user.busy:
            return  # a late message of a step already complete, or a reminder
        user.replies += 1
        if not user.answered:
            user.answered = True
            assert user.phase is not None
            user.phase.latencies.append(at - user.pushed_at)
            user.phase.answers.append(at)
        if self.echo or buttons:
            self._complete(user)
        else:
            self.loop.call_later(QUIET, self._quiet, user, user.step, user.replies)

    def _quiet(self, user: User, step: int, replies: int) -> None:
        if user.busy and user.step == step and user.replies == replies:
            self._complete(user)

    def _complete(self, user: User) -> None:
        user.busy = False
        self.busy -= 1
        if self.busy == 0:
            self.idle_event.set()
        if self.closed_loop:
            self.loop.call_soon(self._push_if_idle, user)
        else:
            self.ready.append(user)
            self.ready_event.set()

    def _push_if_idle(self, user: User) -> None:
        if self.closed_loop and not user.busy:
            self.push(user)
        elif not user.busy:
            self.ready.append(user)
            self.ready_event.set()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.perf_counter()
            for user in self.users.values():
                if user.busy and not user.answered and now - user.pushed_at > LOST_AFTER:
                    assert user.phase is not None
                    user.phase.lost += 1
                    self._complete(user)

    # ---------------------------------------------------------------- what users send

    def push(self, user: User) -> None:
        api, rng, uid = self.api, user.rng, user.uid
        roll = rng.random()
        message: dict[str, Any] | None = None
        buttons: list[str] = list(ECHO_BUTTONS)
        asked = ""
        if not self.echo:
            message = api.last_bot_message(uid)
            markup = (message or {}).get("reply_markup") or {}
            rows: list[list[dict[str, Any]]] = markup.get("inline_keyboard") or []
            buttons = [str(b["callback_data"]) for row in rows for b in row if "callback_data" in b]
            asked = str((message or {}).get("text", "")).lower()
        if not user.started or roll < P_START:
            kind, update = "command", api.push_message(uid, "/start")
            user.started = True
        elif buttons and roll < P_START + P_TAP:
            kind = "tap"
            update = api.push_callback(uid, rng.choice(buttons), message)
            self.queries[str(update["callback_query"]["id"])] = uid
        else:
            kind = "text"
            text = rng.choice(TEXTS)
            if "what time" in asked and rng.random() < 0.5:
                text = CLOCK_TEXT
            elif "when is the interview" in asked and rng.random() < 0.5:
                text = TIME_TEXT
            update = api.push_message(uid, text)
        user.pushed_at = time.perf_counter()
        user.busy, user.answered, user.replies = True, False, 0
        user.step += 1
        user.phase = self.phase
        self.busy += 1
        self.idle_event.clear()
        self.phase.pushed += 1
        self.phase.kinds[kind] += 1

    # ---------------------------------------------------------------- phases

    async def paced(self, name: str, rate: float, seconds: float) -> Phase:
        """Open loop: arrivals at `rate`, each from the user who waited longest for its turn."""
        phase = self.phase = Phase(name, rate)
        phase.started = start = time.perf_counter()
        k = 0
        while True:
            due = start + k / rate
            if due >= start + seconds:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if not self.ready:
                phase.waited += 1
                while not self.ready:
                    self.ready_event.clear()
                    await self.ready_event.wait()
            self.push(self.ready.popleft())
            k += 1
        phase.ended = time.perf_counter()
        await self.drain(phase)
        return phase

    async def saturate(self, seconds: float) -> Phase:
        """Closed loop: every user sends its next step as soon as the last was answered."""
        phase = self.phase = Phase("saturation")
        phase.started = time.perf_counter()
        self.closed_loop = True
        while self.ready:
            self.push(self.ready.popleft())
        await asyncio.sleep(seconds)
        self.closed_loop = False
        phase.ended = time.perf_counter()
        await self.drain(phase)
        return phase

    async def drain(self, phase: Phase, timeout: float = LOST_AFTER + 5) -> None:
        if self.busy:
            try:
                async with asyncio.timeout(timeout):
                    await self.idle_event.wait()
            except TimeoutError:
                for user in self.users.values():
                    if user.busy:
                        phase.lost += 1
                        self._complete(user)
        phase.drained = time.perf_counter()

    async def wait_startup(self, proc: BotProcess, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while self.startup_reply is None:
            code = proc.proc.returncode if proc.proc is not None else None
            if code is not None:
                raise RuntimeError(f"the {proc.kind} bot exited with {code}")
            if time.perf_counter() > deadline:
                raise RuntimeError("the bot did not answer the update queued before its start")
            await asyncio.sleep(0.002)

    def close(self) -> None:
        self._watchdog.cancel()


# ==============================================================================================
# A bot subprocess
# ==============================================================================================


def settings_names() -> set[str]:
    """Every setting .env.example documents: none may leak in from the caller's environment."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))


class BotProcess:
    def __init__(
        self,
        kind: str,
        base_url: str,
        folder: Path,
        db: Path,
        profile: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.folder = folder
        self.counts = folder / f"{db.stem}.round-trips.json"
        self.log = folder / f"{db.stem}.log"
        env = {k: v for k, v in os.environ.items() if k not in settings_names()}
        env.update(
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_BASE_URL=base_url,
            DATABASE_PATH=str(db),
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        )
        env.pop("BENCH_INBOX_CONCURRENCY", None)
        env.pop("ECHO_CONCURRENCY", None)
        env.update(extra_env or {})
        self.env = env
        self.args = [sys.executable, "-m", "bench.load", "--serve", kind]
        if kind == "project":
            self.args += ["--counts", str(self.counts)]
            if profile:
                self.args += ["--profile", profile]
        self.proc: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None
        self.spawned = 0.0
        self._seq = 0

    async def start(self) -> None:
        import psutil

        log = self.log.open("ab")
        # cwd: the temporary folder, so no .env of a developer's is read.
        self.spawned = time.perf_counter()
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, env=self.env, cwd=self.folder, stdout=log, stderr=log
        )
        log.close()
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        assert self.ps is not None
        t = self.ps.cpu_times()
        return float(t.user + t.system + t.children_user + t.children_system)

    def main_thread_cpu(self) -> float:
        """CPU of the thread that runs the event loop (the rest: aiosqlite's and others)."""
        assert self.ps is not None
        for thread in self.ps.threads():
            if thread.id == self.ps.pid:
                return float(thread.user_time + thread.system_time)
        return math.nan

    def peak_rss(self) -> int:
        """VmHWM: the most resident memory the process ever had (ru_maxrss, while it runs)."""
        assert self.ps is not None
        try:
            for line in Path(f"/proc/{self.ps.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return int(self.ps.memory_info().rss)

    def rss(self) -> int:
        assert self.ps is not None
        return int(self.ps.memory_info().rss)

    async def round_trips(self) -> dict[str, Any] | None:
        if self.kind != "project" or self.proc is None:
            return None
        self._seq += 1
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.perf_counter() + 5.0
        while time.perf_counter() < deadline:
            try:
                data: dict[str, Any] = json.loads(self.counts.read_text(encoding="utf-8"))
                if data["seq"] >= self._seq:
                    return data
            except (OSError, ValueError):
                pass
            await asyncio.sleep(0.005)
        raise RuntimeError("the bot did not report its SQLite round trips")

    async def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(30):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# ==============================================================================================
# Runs
# ==============================================================================================


@dataclass
class BotResult:
    kind: str
    spawn_to_poll: float = 0.0  # medians over `starts`
    spawn_to_reply: float = 0.0
    starts: list[tuple[float, float]] = field(default_factory=list)  # (to poll, to reply)
    phases: list[Phase] = field(default_factory=list)
    saturation: Phase | None = None
    peak_rss: int = 0
    peak_rss_paced: int = 0  # before saturation
    rss_after_start: int = 0
    exit_code: int | None = None

    def paced(self) -> list[Phase]:
        return [p for p in self.phases if p.rate is not None and not p.name.startswith("warm")]

    def started(self, poll: float, reply: float) -> None:
        self.starts.append((poll, reply))
        self.spawn_to_poll = statistics.median(s[0] for s in self.starts)
        self.spawn_to_reply = statistics.median(s[1] for s in self.starts)

    def start_range(self) -> str:
        if len(self.starts) < 2:
            return ""
        replies = [s[1] for s in self.starts]
        return f" (median of {len(replies)} starts: {min(replies):.2f}-{max(replies):.2f} s)"


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat via psutil."""
    import psutil

    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0))


async def measured(proc: BotProcess, api: FakeBotApi, run: Callable[[], Awaitable[Phase]]) -> Phase:
    """Run a phase and charge it the CPU, requests and round trips from its start to drain."""
    cpu0, main0, bench0, busy0 = proc.cpu(), proc.main_thread_cpu(), own_cpu(), machine_busy()
    req0 = Counter(api.counts)
    rt0 = await proc.round_trips()
    phase = await run()
    phase.cpu, phase.bench_cpu = proc.cpu() - cpu0, own_cpu() - bench0
    phase.main_cpu = proc.main_thread_cpu() - main0
    phase.other_cpu = max(machine_busy() - busy0 - phase.cpu - phase.bench_cpu, 0.0)
    phase.requests = Counter(api.counts)
    phase.requests.subtract(req0)
    rt1 = await proc.round_trips()
    if rt0 is not None and rt1 is not None:
        phase.sqlite = int(rt1["total"]) - int(rt0["total"])
        phase.sqlite_by = Counter(rt1["by"])
        phase.sqlite_by.subtract(Counter(rt0["by"]))
    return phase


async def run_bot(
    kind: str,
    args: argparse.Namespace,
    folder: Path,
    *,
    db: Path | None = None,
    ids: Sequence[int] | None = None,
    startup_chat: int = STARTUP_USER,
    memory_only: bool = False,
) -> BotResult:
    """Start-up, then the phases, against a fresh fake; `memory_only`: one short paced phase."""
    from tests.fakebot import FakeBotApi

    result = BotResult(kind)
    api = FakeBotApi(record=False)
    await api.start()
    ids = ids if ids is not None else range(FIRST_USER, FIRST_USER + args.users)
    users = Users(api, ids, echo=kind == "echo", seed=args.seed, startup_chat=startup_chat)
    db = db or folder / f"{kind}.sqlite3"
    profile = args.profile if kind == "project" and not memory_only else None
    extra = {}
    if kind == "echo" and args.echo_concurrency:
        extra["ECHO_CONCURRENCY"] = args.echo_concurrency
    if kind == "project" and args.inbox_concurrency:
        extra["BENCH_INBOX_CONCURRENCY"] = str(args.inbox_concurrency)
    proc = BotProcess(kind, api.base_url, folder, db, profile, extra)
    rates = sorted(args.rates)
    if not memory_only:
        for n in range(1, args.starts):  # extra starts, each on a fresh database
            result.started(*await start_only(kind, folder / f"{kind}-start{n}.sqlite3", extra))
    try:
        api.push_message(startup_chat, "/start")
        await proc.start()
        await users.wait_startup(proc, 120.0)
        assert users.first_poll is not None and users.startup_reply is not None
        result.started(users.first_poll - proc.spawned, users.startup_reply - proc.spawned)
        result.rss_after_start = proc.rss()
        if memory_only:
            note(f"{kind}: {rates[0]:g} updates/s for {args.memory_seconds:g} s")
            phase = await measured(
                proc, api, partial(users.paced, "load", rates[0], args.memory_seconds)
            )
            result.phases.append(phase)
            result.peak_rss_paced = proc.peak_rss()
            if args.saturation > 0:
                note(f"{kind}: saturation for {args.memory_seconds:g} s")
                result.saturation = await measured(
                    proc, api, partial(users.saturate, args.memory_seconds)
                )
        else:
            # Warm-up: every user's first /start, at the highest rate.
            top = rates[-1]
            result.phases.append(await users.paced("warm-up", top, len(users.users) / top))
            for rate in rates:
                note(f"{kind}: {rate:g} updates/s for {args.duration:g} s")
                phase = await measured(
                    proc, api, partial(users.paced, f"{rate:g}/s", rate, args.duration)
                )
                result.phases.append(phase)
            result.peak_rss_paced = proc.peak_rss()
            if args.saturation > 0:
                note(f"{kind}: saturation for {args.saturation:g} s")
                result.saturation = await measured(
                    proc, api, partial(users.saturate, args.saturation)
                )
        result.peak_rss = proc.peak_rss()
    except BaseException:
        print(f"--- {kind} bot log (tail) ---\n{proc.tail()}", file=sys.stderr)
        raise
    finally:
        users.close()
        result.exit_code = await proc.stop()
        await api.stop()
    return result


async def start_only(kind: str, db: Path, extra: dict[str, str]) -> tuple[float, float]:
    """Spawn the bot with an update queued, wait for its answer, stop it: (to poll, to reply)."""
    from tests.fakebot import FakeBotApi

    api = FakeBotApi(record=False)
    await api.start()
    users = Users(api, (), echo=kind == "echo", seed=0)
    proc = BotProcess(kind, api.base_url, db.parent, db, None, extra)
    try:
        api.push_message(STARTUP_USER, "/start")
        await proc.start()
        await users.wait_startup(proc, 120.0)
        assert users.first_poll is not None and users.startup_reply is not None
        return users.first_poll - proc.spawned, users.startup_reply - proc.spawned
    except BaseException:
        print(f"--- {kind} bot log (tail) ---\n{proc.tail()}", file=sys.stderr)
        raise
    finally:
        users.close()
        await proc.stop()
        await api.stop()


def note(text: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the fake alone


async def fake_capacity(seconds: float, connections: int = 16) -> dict[str, float]:
    from tests.fakebot import FakeBotApi

    api = FakeBotApi(record=False)
    await api.start()
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        cpu0, t0 = own_cpu(), time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.load",
            "--hammer",
            api.url,
            "--hammer-seconds",
            str(seconds),
            "--hammer-connections",
            str(connections),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        cpu, wall = own_cpu() - cpu0, time.perf_counter() - t0
        client = json.loads(out.decode().strip().splitlines()[-1])
        served = sum(api.counts.values())
    finally:
        await api.stop()
    return {
        "requests": served,
        "rate": served / client["seconds"],
        "cpu_share": cpu / wall,
        "seconds": client["seconds"],
        "connections": connections,
    }


# ---------------------------------------------------------------- 100,000 users


def conversation_states(
    folder: Path, conversations: int, seed: int
) -> list[tuple[str, list[tuple[str, int, int | None]]]]:
    """Final states and pending nudges of short conversations run through the real engine."""
    from bot.engine import flow
    from bot.engine.context import Context
    from bot.engine.model import CancelNudges, Event, Keyboard, ScheduleNudge, State, Step
    from bot.knowledge.base import load_default
    from bot.knowledge.classifier import ObjectionClassifier

    kb = load_default()
    classifier = ObjectionClassifier.cached(folder)
    now = datetime.now(UTC)
    rng = random.Random(seed)
    out = []
    for n in range(conversations):
        state = State()
        nudges: list[ScheduleNudge] = []
        event = Event(n + 1, "command", "start", first_name="Ann")
        for _ in range(rng.randint(2, 12)):
            outcome = flow.handle(event, state, Context(kb=kb, classifier=classifier, now=now))
            state = outcome.state
            for effect in outcome.effects:
                if isinstance(effect, ScheduleNudge):
                    nudges.append(effect)
                elif isinstance(effect, CancelNudges):
                    nudges = [x for x in nudges if effect.kinds and x.kind not in effect.kinds]
            keyboard: Keyboard = next(
                (r.keyboard for r in reversed(outcome.replies) if r.keyboard), ()
            )
            buttons = [b.data for row in keyboard for b in row]
            roll = rng.random()
            if state.step == Step.ASK_WHEN and roll < 0.7:
                event = Event(n + 1, "text", TIME_TEXT)
            elif buttons and roll < 0.8:
                event = Event(n + 1, "button", rng.choice(buttons))
            else:
                event = Event(n + 1, "text", rng.choice(TEXTS))
        base = int(now.timestamp())
        out.append(
            (
                state.to_json(),
                [
                    (
                        x.kind,
                        int(x.due_at.timestamp()) - base,
                        None if x.deadline is None else int(x.deadline.timestamp()) - base,
                    )
                    for x in nudges
                ],
            )
        )
    return out


async def seed_database(path: Path, users: int, folder: Path, seed: int) -> dict[str, Any]:
    import sqlite3

    from bot.storage.db import Database

    started = time.perf_counter()
    db = await Database.open(path)  # the real schema, through the migrations
    await db.close()
    samples = conversation_states(folder, 200, seed)
    now = int(time.time())
    day = 86400
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO users (user_id, chat_id, state, created_at, updated_at) VALUES (?,?,?,?,?)",
        (
            (u, u, samples[u % len(samples)][0], now - u % (30 * day), now - u % day)
            for u in range(1, users + 1)
        ),
    )
    # Their pending reminders, all due after the run (a day or more ahead) so none goes out.
    conn.executemany(
        "INSERT INTO nudges (user_id, kind, due_at, deadline, created_at) VALUES (?,?,?,?,?)",
        (
            (
                u,
                kind,
                now + max(due, day) + u % 3600,
                None if deadline is None else now + max(deadline, due, day) + day,
                now,
            )
            for u in range(1, users + 1)
            for kind, due, deadline in samples[u % len(samples)][1]
        ),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    nudges = conn.execute("SELECT count(*) FROM nudges").fetchone()[0]
    conn.close()
    state_bytes = sum(len(s) for s, _ in samples) / len(samples)
    return {
        "users": users,
        "nudges": int(nudges),
        "bytes": path.stat().st_size,
        "state_bytes": state_bytes,
        "seconds": time.perf_counter() - started,
    }


async def memory_run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    path = folder / "seeded.sqlite3"
    note(f"seeding {args.seed_users:,} users")
    info = await seed_database(path, args.seed_users, folder, args.seed)
    note("our bot on the seeded database")
    # Seeded users spread over the whole table; one more of them sends the queued update.
    step = max(args.seed_users // (args.users + 1), 1)
    picked = list(range(1, args.seed_users + 1, step))[: args.users + 1]
    result = await run_bot(
        "project",
        args,
        folder,
        db=path,
        ids=picked[1:],
        startup_chat=picked[0],
        memory_only=True,
    )
    return {"seed": info, "bot": result}


async def fit_classifier(folder: Path) -> float:
    """Our bot fits its classifier on its first start and keeps it beside the database; do
    that here (timed), so the measured start-ups are the usual ones."""
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from pathlib import Path;"
        " from bot.knowledge.classifier import ObjectionClassifier;"
        " ObjectionClassifier.cached(Path(sys.argv[1]))",
        str(folder),
        cwd=folder,
    )
    if await proc.wait() != 0:
        raise RuntimeError("fitting the classifier failed")
    return time.perf_counter() - started


# ==============================================================================================
# The report
# ==============================================================================================


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)) - 1, 0)]


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def lat(phase: Phase | None) -> str:
    if phase is None or not phase.latencies:
        return "n/a"
    xs = phase.latencies
    return f"{ms(pct(xs, 50))} / {ms(pct(xs, 95))} / {ms(pct(xs, 99))} ms"


def throughput(phase: Phase | None) -> float:
    if phase is None:
        return math.nan
    start, end = phase.started + sat_warmup(phase.seconds), phase.ended
    counted = sum(1 for t in phase.answers if start <= t <= end)
    return counted / (end - start) if end > start else math.nan


def totals(phases: Sequence[Phase]) -> tuple[int, float, int, int | None]:
    """Updates, CPU seconds, HTTP requests and SQLite round trips (None: not counted)."""
    updates = sum(p.pushed for p in phases)
    cpu = sum(p.cpu for p in phases)
    requests = sum(sum(p.requests.values()) for p in phases)
    counted = [p.sqlite for p in phases if p.sqlite is not None]
    sqlite = sum(counted) if phases and len(counted) == len(phases) else None
    return updates, cpu, requests, sqlite


def by_rate(result: BotResult, rate: float) -> Phase | None:
    return next((p for p in result.paced() if p.rate == rate), None)


def ratio(a: float, b: float) -> str:
    return "n/a" if not b or math.isnan(a) or math.isnan(b) else f"{a / b:.2f}"


def sat_warmup(seconds: float) -> float:
    """The start of a saturation phase that is not counted: the burst of every user at once."""
    return min(SAT_WARMUP, seconds / 3)


# Callers of the dispatcher's periodic work, as grouped in "SQLite round trips, by caller".
PERIODIC_HOPS = tuple(
    f"Store.{name} "
    for name in (
        "claim_due",
        "claim_owners",
        "recover_in_flight",
        "next_due_at",
        "renew",
        "queue_depths",
        "forget_handled",
    )
)


def verdict(value: float, ok: bool, miss: str) -> str:
    if math.isnan(value):
        return "n/a"
    return "met" if ok else f"**missed** by {miss}"


def missed_why(
    echo: BotResult, ours: BotResult, rows: list[tuple[str, ...]], *, noisy: bool, users: int
) -> list[str]:
    """A line of explanation for each missed target, from what this run measured."""
    missed = {row[0] for row in rows if row[-1].startswith("**missed**")}
    e_upd, e_cpu, e_req, _ = totals(echo.paced())
    o_upd, o_cpu, o_req, o_sql = totals(ours.paced())
    lines = []
    if "CPU per update (paced phases)" in missed and e_upd and o_upd:
        extra = (o_cpu / o_upd - e_cpu / e_upd) * 1000
        sql = o_sql / o_upd if o_sql is not None else math.nan
        lines.append(
            f"- CPU per update: ours does {extra:.2f} ms more work per update than an echo:"
            f" {num(sql)} SQLite round trips (each a hop to aiosqlite's thread and back),"
            f" {num(o_req / o_upd)} HTTP requests against the echo's {num(e_req / e_upd)}"
            " (a keyboard, a callback answer), reading typed text with the classifier and"
            " rendering templates. The ratio moves between runs with the machine's noise"
            " (README, Benchmarks)."
        )
    if any(r.startswith("start-up: spawn → first reply") for r in missed):
        lines.append(
            "- Start-up: importing PTB, aiohttp, Jinja and dateparser, opening the database and"
            " loading the saved classifier come before the first reply (the echo bot imports"
            " PTB alone)."
        )
    if any(r.startswith("SQLite round trips per update") for r in missed):
        lines.append(
            "- SQLite round trips: a reply's 'sent' mark rides with the next update's hop; at"
            " a low rate no next update comes within the flush delay, and the mark takes a"
            " hop of its own."
        )
    if any(r.startswith("peak RSS with") for r in missed):
        lines.append(
            "- Memory: SQLite's page cache and the Python objects of the users talking at"
            " once; the database itself stays on disk."
        )
    sat = ours.saturation
    if "saturation throughput" in missed and sat is not None and sat.drained > sat.started:
        sends = sum(n for method, n in sat.requests.items() if method.startswith("send"))
        per_chat = sends / (sat.drained - sat.started) / max(users, 1)
        lines.append(
            f"- Saturation: each simulated user sends its next step as soon as the last is"
            f" answered, so our bot sent {per_chat:.2f} messages a second to each chat on"
            " average (more to the fastest, often two at a time), close to"
            " Telegram's limit of about one (a burst of 3 allowed), which our bot keeps (replies"
            " and nudges share each chat's budget) and the echo bot does not: at saturation"
            " the budget holds the fastest users back. Telegram would answer the echo bot's"
            " excess with 429s. People tap slower: the paced phases never meet the budget."
        )
    if any(r.startswith("latency at") for r in missed):
        lines.append(
            "- Throughput and latency: the same per-update work as the CPU row; on a disturbed"
            " machine the bot's process gets less of a core."
        )
    if lines and noisy:
        lines.append(
            "- And this run was disturbed (above): other processes took CPU from the bot, the"
            " fake and the users, which moves every timed figure."
        )
    return lines


def report(
    args: argparse.Namespace,
    echo: BotResult,
    ours: BotResult,
    big: dict[str, Any] | None,
    capacity: dict[str, float],
    fit_seconds: float,
    wall: float,
    command: str,
    load_start: tuple[float, float, float] = (math.nan, math.nan, math.nan),
) -> str:
    from bench.nudges import machine

    out = ["# Load benchmark: our bot against a bare PTB echo bot", ""]
    out.append(f"`{command}` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, whole run {wall:.0f} s)")
    out += ["", "## Machine", "", "| | |", "|---|---|"]
    out.append(
        "| load average at the start (1/5/15 min) | "
        + " / ".join(f"{x:.2f}" for x in load_start)
        + " |"
    )
    out += [f"| {k} | {v} |" for k, v in machine().items()]
    out.append(f"| temporary folder (databases) | {filesystem(Path(tempfile.gettempdir()))} |")
    out.append(f"| code | {revision()} |")
    out.append(f"| scheduling priority of this run and its bots (nice) | {os.nice(0)} |")
    out.append(f"| httpx imports its command line (click, rich) in both bots | {httpx_cli()} |")

    rates = sorted(args.rates)
    e_upd, e_cpu, e_req, _ = totals(echo.paced())
    o_upd, o_cpu, o_req, o_sql = totals(ours.paced())
    e_cpu_u = e_cpu / e_upd if e_upd else math.nan
    o_cpu_u = o_cpu / o_upd if o_upd else math.nan
    e_tp, o_tp = throughput(echo.saturation), throughput(ours.saturation)
    o_at = by_rate(ours, TARGETS["p99_rate"])
    p99 = pct(o_at.latencies, 99) * 1000 if o_at else math.nan

    rows: list[tuple[str, str, str, str, str, str]] = []
    need_tp = TARGETS["throughput_ratio"] * e_tp
    rows.append(
        (
            "saturation throughput",
            f"{e_tp:.0f} updates/s",
            f"{o_tp:.0f} updates/s",
            ratio(o_tp, e_tp),
            f"≥ {TARGETS['throughput_ratio']:.0%} of echo's",
            verdict(o_tp + e_tp, o_tp >= need_tp, f"{need_tp - o_tp:.0f} updates/s"),
        )
    )
    for r in rates:
        e_p, o_p = by_rate(echo, r), by_rate(ours, r)
        target, met = "", ""
        if r == TARGETS["p99_rate"]:
            target = f"p99 < {TARGETS['p99_ms']:g} ms"
            met = verdict(p99, p99 < TARGETS["p99_ms"], f"{p99 - TARGETS['p99_ms']:.1f} ms")
        e99 = pct(e_p.latencies, 99) if e_p else math.nan
        o99 = pct(o_p.latencies, 99) if o_p else math.nan
        rows.append(
            (
                f"latency at {r:g} updates/s, p50 / p95 / p99",
                lat(e_p),
                lat(o_p),
                f"p99: {ratio(o99, e99)}",
                target,
                met,
            )
        )
    allowed_cpu = TARGETS["cpu_ratio"] * e_cpu_u
    rows.append(
        (
            "CPU per update (paced phases)",
            f"{ms(e_cpu_u)} ms",
            f"{ms(o_cpu_u)} ms",
            ratio(o_cpu_u, e_cpu_u),
            f"≤ {TARGETS['cpu_ratio']:g} x echo's",
            verdict(
                o_cpu_u + e_cpu_u,
                o_cpu_u <= allowed_cpu,
                f"{(o_cpu_u - allowed_cpu) * 1000:.2f} ms/update (needs ≤"
                f" {allowed_cpu * 1000:.2f} ms)",
            ),
        )
    )
    rows.append(
        (
            "resident memory after start-up (first reply)",
            mb(echo.rss_after_start),
            mb(ours.rss_after_start),
            ratio(ours.rss_after_start, echo.rss_after_start),
            "",
            "",
        )
    )
    rows.append(
        (
            "peak resident memory (VmHWM, whole run)",
            mb(echo.peak_rss),
            mb(ours.peak_rss),
            ratio(ours.peak_rss, echo.peak_rss),
            "",
            "",
        )
    )
    rows.append(
        (
            "start-up: spawn → first getUpdates",
            seconds(echo.spawn_to_poll),
            seconds(ours.spawn_to_poll),
            ratio(ours.spawn_to_poll, echo.spawn_to_poll),
            "",
            "",
        )
    )
    first = ours.spawn_to_reply if ours.spawn_to_reply else math.nan
    rows.append(
        (
            "start-up: spawn → first reply to an update queued before",
            seconds(echo.spawn_to_reply) + echo.start_range(),
            seconds(ours.spawn_to_reply) + ours.start_range(),
            ratio(ours.spawn_to_reply, echo.spawn_to_reply),
            f"< {TARGETS['first_reply_s']:g} s",
            verdict(
                first,
                first < TARGETS["first_reply_s"],
                f"{(first - TARGETS['first_reply_s']) * 1000:.0f} ms",
            ),
        )
    )
    e_rpu = e_req / e_upd if e_upd else math.nan
    o_rpu = o_req / o_upd if o_upd else math.nan
    rows.append(
        (
            "HTTP requests per update (getUpdates included)",
            num(e_rpu),
            num(o_rpu),
            ratio(o_rpu, e_rpu),
            "",
            "",
        )
    )
    o_spu = o_sql / o_upd if o_sql is not None and o_upd else math.nan
    # The dispatcher's rounds (looking for due nudges, leases, the metrics' queue depths) come
    # with the clock, not with updates: shown apart, the target is for an update's own.
    own_by: Counter[str] = Counter()
    for p in ours.paced():
        own_by.update(p.sqlite_by)
    periodic = sum(n for name, n in own_by.items() if name.startswith(PERIODIC_HOPS))
    o_periodic = periodic / o_upd if o_upd and own_by else 0.0
    o_spu -= o_periodic
    rows.append(
        (
            "SQLite round trips per update (an update's own; the dispatcher's rounds apart)",
            "—",
            f"{num(o_spu)} (+{num(o_periodic)})",
            "",
            f"≤ {TARGETS['sqlite_per_update']:g}",
            verdict(
                o_spu,
                o_spu <= TARGETS["sqlite_per_update"] + 0.005,  # as printed, two decimals
                f"{o_spu - TARGETS['sqlite_per_update']:.2f} an update",
            ),
        )
    )
    if big is not None:
        b: BotResult = big["bot"]
        seeded = int(big["seed"]["users"])
        peak = b.peak_rss / MB
        rows.append(
            (
                f"peak RSS with {seeded:,} users in the database",
                "—",
                mb(b.peak_rss),
                "",
                f"< {TARGETS['rss_big_mb']:g} MB",
                verdict(
                    peak,
                    peak < TARGETS["rss_big_mb"],
                    f"{peak - TARGETS['rss_big_mb']:.1f} MB",
                )
                + ("" if seeded >= 100_000 else " (fewer than 100,000 users: indicative)"),
            )
        )
    noisy = [
        (label, p)
        for label, r in results_of(echo, ours, big)
        for p in [*r.paced(), *([r.saturation] if r.saturation else [])]
        if p.drained > p.started and p.other_cpu / (p.drained - p.started) > NOISY
    ]
    warning = []
    codes = {label: r.exit_code for label, r in results_of(echo, ours, big)}
    if any(code not in (0, None) for code in codes.values()):
        shown = ", ".join(f"{label}: {code}" for label, code in codes.items())
        warning += [f"**A bot did not stop cleanly on SIGTERM (exit codes: {shown}).**", ""]
    if noisy:
        worst = max(p.other_cpu / (p.drained - p.started) for _label, p in noisy)
        warning += [
            f"**Disturbed run: other processes used up to {worst:.0%} of a core during"
            f" {len(noisy)} phase(s) ({', '.join(f'{label} {p.name}' for label, p in noisy)});"
            " the figures below are not reliable. Run again on a quiet machine.**",
            "",
        ]
    sat = (
        f", then {args.saturation:g} s of saturation (the first"
        f" {sat_warmup(args.saturation):g} s not counted)"
        if args.saturation > 0
        else ""
    )
    out += [
        "",
        "## Results",
        "",
        *warning,
        f"{args.users} simulated users; a warm-up (each user's /start), then paced phases of"
        f" {args.duration:g} s at {', '.join(f'{r:g}' for r in rates)} updates/s{sat}.",
        "",
        "| | echo bot | our bot | ours / echo | target | |",
        "|---|---:|---:|---:|---|---|",
    ]
    out += [f"| {' | '.join(r)} |" for r in rows]
    why = missed_why(echo, ours, rows, noisy=bool(noisy), users=args.users)
    if why:
        out += ["", "Where a target was missed, why:", "", *why]

    out += [
        "",
        "## Phases",
        "",
        "Latency in ms, from an update queued in the fake to the first reply to its chat. CPU"
        " shares are of one core: the bot's process, this one (the fake Bot API and the"
        " simulated users), and everything else the machine ran meanwhile (noise). Requests per"
        " update by method, as the fake counted them.",
        "",
        "| bot | phase | offered | updates | lost | no user ready | p50 | p95 | p99 | max |"
        " CPU/update | of it, event loop thread | bot CPU | fake + users CPU |"
        " other processes' CPU | requests/update |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    results = results_of(echo, ours, big)
    for label, result in results:
        for p in [*result.paced(), *([result.saturation] if result.saturation else [])]:
            out.append(phase_row(label, p))
    out += [
        "",
        f"Input mix in the paced phases: ours {mix(ours.paced())}; echo {mix(echo.paced())}.",
    ]

    by: Counter[str] = Counter()
    for p in ours.paced():
        by.update(p.sqlite_by)
    if o_upd and by:
        out += [
            "",
            "## SQLite round trips per update, by caller",
            "",
            "A round trip is one call of `aiosqlite.Connection._execute`: one hop to aiosqlite's"
            " thread and back (every execute, fetch and commit through aiosqlite is one; so is"
            " each `Database.run`/`atomic` of ours, however many statements it carries). They"
            " are counted inside our bot's process by a wrapper that the runner (`python -m"
            " bench.load --serve project`) puts on `aiosqlite.core.Connection._execute` before it"
            " calls `bot.__main__.main(['run'])`, the entry point of `python -m bot run`; the"
            " runner writes its counter to a file on SIGUSR1. Grouped by the `__qualname__` of"
            " the function sent to the thread; paced phases only.",
            "",
            "| caller | per update |",
            "|---|---:|",
        ]
        out += [
            f"| `{name}` | {n / o_upd:.2f} |" for name, n in by.most_common() if n / o_upd >= 0.005
        ]

    if big is not None:
        b = big["bot"]
        s = big["seed"]
        load = b.phases[0] if b.phases else None
        out += [
            "",
            f"## Our bot with {s['users']:,} users in the database",
            "",
            f"Seeded through the real migrations (`Database.open`, then bulk INSERTs):"
            f" {s['users']:,} users whose states are the final states of 200 conversations run"
            f" through the engine (`flow.handle`, `State.to_json()`, {s['state_bytes']:.0f} bytes"
            f" on average), and the {s['nudges']:,} nudges those conversations scheduled, pending"
            f" and moved a day or more ahead so none is sent during the run; {s['bytes'] / MB:.0f}"
            f" MB on disk, built in {s['seconds']:.1f} s. The update queued before the start"
            f" comes from a seeded user; then {args.users} seeded users spread over the table"
            f" talk to the bot at {rates[0]:g} updates/s for {args.memory_seconds:g} s"
            + (f", then as fast as it answers for {args.memory_seconds:g} s." if sat else "."),
            "",
            "| | |",
            "|---|---:|",
            f"| spawn → first getUpdates | {seconds(b.spawn_to_poll)} |",
            f"| spawn → first reply to an update queued before | {seconds(b.spawn_to_reply)} |",
            f"| RSS after that reply | {mb(b.rss_after_start)} |",
            f"| peak RSS after the paced load | {mb(b.peak_rss_paced)} |",
            f"| peak RSS after saturation too (the figure above) | {mb(b.peak_rss)} |",
            f"| latency p50 / p95 / p99 at {rates[0]:g} updates/s | {lat(load)} |",
        ]

    busiest = max(
        (
            sum(p.requests.values()) / (p.drained - p.started)
            for _label, r in results
            for p in [*r.paced(), *([r.saturation] if r.saturation else [])]
            if p.drained > p.started
        ),
        default=0.0,
    )
    out += [
        "",
        "## The fake Bot API alone",
        "",
        f"It served {capacity['rate']:.0f} requests/s ({capacity['requests']:,.0f} in"
        f" {capacity['seconds']:.1f} s: three sendMessage with a keyboard to one getUpdates, over"
        f" {capacity['connections']:.0f} keep-alive connections from a raw-socket client in"
        f" another process), using {capacity['cpu_share']:.0%} of one core. The busiest phase"
        f" above asked {busiest:.0f} requests/s of it ({busiest / capacity['rate']:.0%} of that),"
        " so the fake is not what limits the figures; see also its CPU share per phase.",
    ]

    echo_conf = args.echo_concurrency or "false"
    out += [
        "",
        "## How it was measured",
        "",
        "* Each bot is its own subprocess, spawned by this one, one after the other; the fake"
        " Bot API (tests/fakebot.py, record=False, with its reply methods and getUpdates"
        " wrapped to timestamp them) and the simulated users share this process's event loop."
        " Latency therefore includes the fake's own HTTP handling and any delay of this loop.",
        f"* A step is answered at a message with buttons, or {QUIET * 1000:.0f} ms after a"
        " reply with no other after it (the echo bot: at its one reply). A user sends its next"
        " step only once the last was answered; at each paced arrival the user who waited"
        " longest goes ('no user ready': arrivals that had to wait for one). Users tap a"
        " random button of the last bot message (seeded RNG), type a worry or, when asked, a"
        f" time ({P_TAP:.0%} taps when there are buttons, {P_START:.0%} /start, the rest text).",
        f"* An update not answered within {LOST_AFTER:g} s counts as lost.",
        f"* Start-up: the median of {args.starts} start(s) per bot, each on a fresh database"
        " file with an update already queued (Python's imports and the OS page cache warm);"
        " 'first reply' is the first reply to that update's chat.",
        "* CPU: user + system time of the bot's process (all its threads: aiosqlite's too) from"
        " a phase's first arrival until its last update was answered, over the phase's"
        " updates. The headline figure pools the paced phases: neither start-up, the warm-up"
        " nor saturation are in it. 'Of it, event loop thread': the share of the thread that"
        " runs asyncio (PTB, httpx, the engine, rendering); the rest is aiosqlite's thread"
        " (SQLite itself) and any asyncio.to_thread worker. Peak RSS: VmHWM from /proc (what"
        " ru_maxrss reports).",
        "* Saturation throughput: first replies per second seen by the fake while every user"
        " sends its next step as soon as the last was answered (up to one update per user in"
        f" flight), after the first {sat_warmup(args.saturation):g} s.",
        "* Our bot: `python -m bot run` with the shipped settings (.env.example's defaults,"
        " none inherited from the environment, no .env in its working folder), long polling"
        " (10 s), a fresh database file. Its classifier is fitted once beforehand and kept"
        " beside the database, as after its first start (that fit took"
        f" {fit_seconds:.1f} s here, in a process of its own).",
        "* The echo bot (bench/echo_bot.py): a PTB Application with one MessageHandler (send"
        " the text back) and one CallbackQueryHandler (answer), no JobQueue, run_polling with"
        f" a 10 s long poll, concurrent_updates={echo_conf}"
        + (" (PTB's default: one update at a time)." if echo_conf == "false" else "."),
        f"* Noise: {os.cpu_count()} logical CPUs shared by the bot, the fake and the users (and"
        " anything else running: see the load averages and the 'other processes' column); at"
        " saturation the bot and the fake compete for them. Each figure is one run: expect"
        " 10-20% between runs here, more for p99 (a single pause of the bot, a garbage"
        " collection or a lazy import, moves it).",
    ]
    if args.inbox_concurrency:
        out.append(
            f"* EXPERIMENT, not the shipped configuration: our inbox worker's concurrency was"
            f" {args.inbox_concurrency} (shipped: 64)."
        )
    if args.profile:
        out.append(
            f"* Our bot ran under cProfile (--profile {args.profile}): its CPU, latency and"
            " throughput figures are inflated and not comparable with a normal run."
        )
    return "\n".join(out) + "\n"


def results_of(
    echo: BotResult, ours: BotResult, big: dict[str, Any] | None
) -> list[tuple[str, BotResult]]:
    results = [("echo", echo), ("ours", ours)]
    if big is not None:
        results.append((f"ours, {int(big['seed']['users']):,} users in the DB", big["bot"]))
    return results


def phase_row(label: str, p: Phase) -> str:
    span = p.drained - p.started
    offered = f"{p.pushed / p.seconds:.0f}/s" if p.seconds else ""
    if p.rate is None:
        offered = f"{throughput(p):.0f}/s answered"
    breakdown = ", ".join(
        f"{m} {n / p.pushed:.2f}"
        for m, n in sorted(p.requests.items(), key=lambda kv: -kv[1])
        if n > 0 and p.pushed
    )
    xs = p.latencies
    return (
        f"| {label} | {p.name} | {offered} | {p.pushed} | {p.lost} | {p.waited}"
        f" | {ms(pct(xs, 50))} | {ms(pct(xs, 95))} | {ms(pct(xs, 99))}"
        f" | {ms(max(xs) if xs else math.nan)}"
        f" | {ms(p.cpu / p.pushed if p.pushed else math.nan)} ms"
        f" | {p.main_cpu / p.cpu if p.cpu else math.nan:.0%}"
        f" | {p.cpu / span:.0%} | {p.bench_cpu / span:.0%} | {p.other_cpu / span:.0%}"
        f" | {breakdown} |"
    )


def mix(phases: Sequence[Phase]) -> str:
    kinds: Counter[str] = Counter()
    for p in phases:
        kinds.update(p.kinds)
    n = sum(kinds.values()) or 1
    return ", ".join(f"{k} {v / n:.0%}" for k, v in kinds.most_common()) or "none"


def mb(value: int) -> str:
    return f"{value / MB:.1f} MB" if value else "n/a"


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value else "n/a"


def num(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def revision() -> str:
    """The commit measured, and whether bot/ differed from it when the report was written."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "not a git checkout"
    dirty = git("status", "--porcelain", "--", "bot", "prompts")
    return f"git {head}" + (" with uncommitted changes in bot/ or prompts/" if dirty else "")


def httpx_cli() -> str:
    """httpx imports its CLI (click, rich, pygments) whenever they are installed (dev tools
    such as mutmut bring them): both bots then start slower and hold a few MB more."""
    import importlib.util

    found = all(importlib.util.find_spec(m) is not None for m in ("click", "rich", "pygments"))
    return (
        "yes (they are installed here: about +4.5 MB and +0.15 s of start-up per bot)"
        if found
        else "no"
    )


def filesystem(path: Path) -> str:
    import psutil

    best = None
    for part in psutil.disk_partitions(all=True):
        if str(path).startswith(part.mountpoint) and (
            best is None or len(part.mountpoint) > len(best.mountpoint)
        ):
            best = part
    return f"{path} on {best.fstype} ({best.device})" if best else str(path)


def profile_summary(path: str, limit: int = 25) -> str:
    import io
    import pstats

    buf = io.StringIO()
    stats = pstats.Stats(path, stream=buf)
    stats.sort_stats("tottime").print_stats(limit)
    buf.write("\n")
    stats.sort_stats("cumulative").print_stats(limit)
    return buf.getvalue()


# ==============================================================================================
# Main
# ==============================================================================================


async def run_all(args: argparse.Namespace, command: str) -> str:
    started = time.perf_counter()
    load = os.getloadavg()
    note("load average now: " + " / ".join(f"{x:.2f}" for x in load))
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        folder = Path(tmp)
        note("fitting the classifier once (as a first start would)")
        fit = await fit_classifier(folder)
        note(f"the fake Bot API alone for {args.hammer_seconds:g} s")
        capacity = await fake_capacity(args.hammer_seconds)
        note("echo bot")
        echo = await run_bot("echo", args, folder) if "echo" in args.bots else BotResult("echo")
        note("our bot")
        ours = (
            await run_bot("project", args, folder)
            if "project" in args.bots
            else BotResult("project")
        )
        big = await memory_run(args, folder) if args.seed_users > 0 else None
        wall = time.perf_counter() - started
        text = report(args, echo, ours, big, capacity, fit, wall, command, load)
    if args.profile:
        text += "\n## cProfile of our bot\n\n```\n" + profile_summary(args.profile) + "```\n"
    return text


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--rates", type=float, nargs="+", default=[50.0, 100.0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per paced rate")
    parser.add_argument("--saturation", type=float, default=12.0, help="seconds of saturation")
    parser.add_argument("--seed-users", type=int, default=100_000, help="0: skip that part")
    parser.add_argument("--memory-seconds", type=float, default=5.0)
    parser.add_argument("--starts", type=int, default=3, help="start-ups timed per bot (median)")
    parser.add_argument("--hammer-seconds", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--bots", nargs="+", choices=["echo", "project"], default=["echo", "project"]
    )
    parser.add_argument("--quick", action="store_true", help="a 30-second smoke run")
    parser.add_argument("--profile", help="cProfile our bot into this file (inflates its CPU)")
    parser.add_argument(
        "--echo-concurrency",
        help="the echo bot's concurrent_updates: false (PTB's default, the baseline), true, or N",
    )
    parser.add_argument(
        "--inbox-concurrency",
        type=int,
        help="experiment: our inbox worker's concurrency (shipped: 64); not the shipped setup",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-load.md")
    # Internal: the subprocesses.
    parser.add_argument("--serve", choices=["echo", "project"], help=argparse.SUPPRESS)
    parser.add_argument("--counts", help=argparse.SUPPRESS)
    parser.add_argument("--hammer", help=argparse.SUPPRESS)
    parser.add_argument("--hammer-connections", type=int, default=16, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        sys.exit(serve(args.serve, args.counts, args.profile))
    if args.hammer:
        result = asyncio.run(hammer(args.hammer, args.hammer_seconds, args.hammer_connections))
        print(json.dumps(result))
        return
    if args.quick:
        args.users, args.starts = min(args.users, 150), 1
        args.duration, args.saturation = 3.0, 3.0
        args.memory_seconds, args.hammer_seconds = 1.0, 0.5
    command = "python -m bench.load " + " ".join(argv if argv is not None else sys.argv[1:])
    text = asyncio.run(run_all(args, command.strip()))
    print(text)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
