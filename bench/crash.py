"""Crash bench: the real bot, killed with SIGKILL at random moments under load, must lose
nothing and repeat at most what was in flight at each kill (one reply per conversation, one
reminder), and a second process beside it must send nothing the first one sends.

`python -m bench.crash` (defaults: 200 users, 5 messages each, 25 crashes, about a minute):
a loopback fake Bot API that holds updates until a later getUpdates offset acknowledges them
(as Telegram does) serves `python -m bot run` in a subprocess. Every user sends /start and
/help in turn (one and two replies), one after another; every user also has a check-back
reminder, due at a random moment while the bot is being killed.
Meanwhile the bot is killed with SIGKILL and restarted; beside it, from before the bot
starts until the last kill, a second process delivers reminders from the same database (the
bot's own dispatcher, with nothing else: a second poller would be refused, and a second copy
started once checks that it is). Each process calls the fake with a token of its own, so
every message is known by its sender. At the end it counts, per user, the replies that
arrived against those owed, and the reminders:

- updates lost: an update whose replies never came (it was acknowledged, then forgotten);
- replies lost: a reply owed that never came;
- duplicates: replies that came twice, per crash, and the most in one conversation (a kill
  can repeat the one message each conversation had in flight, sent but not yet recorded);
- reminders repeated after a kill: the last one a killed process sent, sent again (Telegram
  took it, the kill came before its record; Telegram offers no idempotent send): at most one
  per kill;
- reminders sent twice otherwise (two processes, or recovery taking back a live claim): must
  be 0; and reminders never sent.

Needs the test suite's fake Bot API (tests/fakebot.py); writes nothing but a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakebot import Call, FakeBotApi  # noqa: E402

REMINDER = "Have you decided?"
# What each user sends in turn, and how many messages answer it.
SCRIPT = (("/start", 1), ("/help", 2))


@dataclass
class Result:
    users: int
    updates: int
    crashes: int
    updates_lost: int = 0
    replies_lost: int = 0
    duplicate_replies: int = 0
    worst_user_duplicates: int = 0  # a crash can repeat one message per conversation
    reminders: int = 0  # sent, copies included
    reminders_after_kill: int = 0  # a killed process's last one, sent again: <= 1 per kill
    reminders_twice: int = 0  # sent twice any other way: by two processes, or by recovery
    reminders_missing: int = 0
    second_copy_exit: int | None = None
    beside_seconds: float = 0.0  # how long the second process delivered reminders beside
    beside_reminders: int = 0  # reminders it sent
    beside_twice: int = 0  # of the reminders sent twice, those it sent or had sent first
    seconds: float = 0.0
    restarts: list[float] = field(default_factory=list)

    @property
    def duplicates_per_crash(self) -> float:
        return self.duplicate_replies / self.crashes if self.crashes else 0.0

    def table(self) -> str:
        rows = [
            ("users / updates / crashes", f"{self.users} / {self.updates} / {self.crashes}"),
            ("updates lost", str(self.updates_lost)),
            ("replies lost", str(self.replies_lost)),
            (
                "duplicate replies (per crash)",
                f"{self.duplicate_replies} ({self.duplicates_per_crash:.2f})",
            ),
            ("most duplicates in one conversation", str(self.worst_user_duplicates)),
            (
                "reminders repeated after a kill (the one in flight)",
                f"{self.reminders_after_kill} (at most 1 per kill)",
            ),
            ("reminders sent twice otherwise (two processes, recovery)", str(self.reminders_twice)),
            ("reminders never sent", str(self.reminders_missing)),
            (
                "second process delivering reminders beside",
                f"{self.beside_seconds:.0f} s, {self.beside_reminders} of {self.reminders} sent,"
                f" {self.beside_twice} twice",
            ),
            (
                "second copy polling",
                f"refused to poll (exit {self.second_copy_exit})"
                if self.second_copy_exit == 3
                else f"exit {self.second_copy_exit}",
            ),
            ("whole run", f"{self.seconds:.0f} s"),
        ]
        lines = ["| | |", "|---|---:|", *(f"| {a} | {b} |" for a, b in rows)]
        return "\n".join(lines)


def seed(db_path: Path, users: range, due_within: float, rng: random.Random) -> None:
    """Users who are still unsure, each with a check-back due within `due_within` seconds."""
    subprocess_env = {**os.environ, "DATABASE_PATH": str(db_path), "LOG_LEVEL": "WARNING"}
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        env=subprocess_env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    now = int(time.time())
    state = '{"step":"unsure","decision":"unsure","timezone":"UTC"}'
    with sqlite3.connect(db_path) as conn:
        conn.executemany(
            "INSERT INTO users (user_id, chat_id, state, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [(u, u, state, now, now) for u in users],
        )
        conn.executemany(
            "INSERT INTO nudges (user_id, kind, due_at, deadline, created_at)"
            " VALUES (?, 'checkback', ?, ?, ?)",
            [
                (u, due, due + 86400, now)
                for u in users
                for due in [now + round(rng.uniform(0, due_within))]
            ],
        )


async def start_bot(
    api: FakeBotApi, env: dict[str, str], token: str, *, beside: bool = False
) -> asyncio.subprocess.Process:
    command = ("-m", "bench.crash", "--beside") if beside else ("-m", "bot", "run")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        env={**env, "TELEGRAM_BOT_TOKEN": token},
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def deliver_beside() -> None:
    """The bot's own dispatcher, on its own (`--beside`): a second process on the same
    database that delivers reminders, as the overlap of a restart or a second copy in
    webhook mode would, until SIGTERM."""
    from bot.config import load_settings
    from bot.runtime import BotRuntime, open_coach

    settings = load_settings()
    coach = await open_coach(settings)
    runtime = BotRuntime(settings, coach)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await runtime.app.initialize()
        coach.owner = runtime.dispatcher.owner
        await runtime.dispatcher.run(stop)
    finally:
        await runtime.stop()


async def polling(api: FakeBotApi, token: str, within: float = 60.0) -> None:
    """Until the process with this token has asked for updates (it holds the poller lock)."""
    deadline = time.monotonic() + within
    while not any(c.token == token and c.method == "getUpdates" for c in api.calls):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the bot did not start polling within {within:g} s")
        await asyncio.sleep(0.05)


def replies_to(api: FakeBotApi, user: int) -> int:
    return sum(REMINDER not in m["text"] for m in api.sent_messages(user))


def reminders_to(api: FakeBotApi, user: int) -> int:
    return sum(REMINDER in m["text"] for m in api.sent_messages(user))


async def user_walk(api: FakeBotApi, user: int, messages: int, patience: float) -> None:
    """Send one message at a time; wait for its replies (or give up after `patience`)."""
    owed = 0
    for n in range(messages):
        text, replies = SCRIPT[n % len(SCRIPT)]
        api.push_message(user, text, f"User{user}")
        owed += replies
        deadline = time.monotonic() + patience
        while replies_to(api, user) < owed and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


def count_reminders(
    result: Result, calls: list[Call], killed: set[str], beside: str, users: range
) -> None:
    """Sort the reminders that came twice by why: the last reminder a killed process sent,
    sent again (in flight at the kill), or anything else (two processes, recovery)."""
    reminders = [
        c
        for c in calls
        if c.method == "sendMessage" and c.ok and REMINDER in str(c.params.get("text", ""))
    ]
    last: dict[str, Call] = {c.token: c for c in reminders}  # each process's last one
    copies: defaultdict[int, list[Call]] = defaultdict(list)
    for c in reminders:
        copies[int(c.params["chat_id"])].append(c)
    result.reminders = len(reminders)
    result.beside_reminders = sum(c.token == beside for c in reminders)
    for u in users:
        sent = copies.get(u, [])
        result.reminders_missing += not sent
        for before, again in itertools.pairwise(sent):
            if before.token in killed and last[before.token] is before:
                result.reminders_after_kill += 1
            else:
                result.reminders_twice += 1
                result.beside_twice += beside in (before.token, again.token)


async def run(
    users: int = 200,
    messages: int = 5,
    crashes: int = 25,
    rng_seed: int = 7,
    patience: float = 40.0,
    settle: float = 60.0,
) -> Result:
    rng = random.Random(rng_seed)
    began = time.monotonic()
    ids = range(10_000, 10_000 + users)
    with tempfile.TemporaryDirectory(prefix="crash-bench-") as folder:
        db_path = Path(folder) / "bench.sqlite3"
        # Reminders come due while the bot is being killed (1.75 s between kills on average).
        seed(db_path, ids, crashes * 1.75, rng)
        async with FakeBotApi() as api:
            env = {
                **os.environ,
                "TELEGRAM_API_BASE_URL": api.base_url,
                "DATABASE_PATH": str(db_path),
                "LOG_LEVEL": "WARNING",
                "MAX_MESSAGES_PER_SECOND": "500",
                "PER_CHAT_INTERVAL_SECONDS": "0",
                # Reminders at any hour: the run must not depend on the time of day.
                "QUIET_HOURS_START": "00:00",
                "QUIET_HOURS_END": "00:00",
            }
            result = Result(users=users, updates=users * messages, crashes=crashes)
            # A token per process: the fake records which one made each call.
            tokens = (f"123:bot{n}" for n in range(10**6))
            killed: set[str] = set()
            beside_token = "123:beside"
            beside = await start_bot(api, env, beside_token, beside=True)
            # The bot starts once the second process is up (its getMe): on a busy machine the
            # second one's start-up could otherwise outlast a short run, and it would deliver
            # nothing, which would make "nothing sent twice" say nothing.
            up_by = time.monotonic() + 60
            while not any(c.token == beside_token for c in api.calls):
                if time.monotonic() > up_by:
                    raise RuntimeError("the second process did not start within a minute")
                await asyncio.sleep(0.05)
            beside_began = time.monotonic()
            token = next(tokens)
            bot = await start_bot(api, env, token)
            walkers = [asyncio.create_task(user_walk(api, u, messages, patience)) for u in ids]
            for crash in range(crashes):
                await asyncio.sleep(rng.uniform(0.5, 3.0))
                if crash == crashes // 2:
                    # Beside a bot that polls (it holds the lock), not one still starting: on a
                    # busy machine a copy started first would rightly take the lock itself.
                    await polling(api, token)
                    second = await start_bot(api, env, next(tokens))
                    result.second_copy_exit = await asyncio.wait_for(second.wait(), 60)
                bot.kill()  # SIGKILL: no cleanup, no goodbye
                await bot.wait()
                killed.add(token)
                restarted = time.monotonic()
                token = next(tokens)
                bot = await start_bot(api, env, token)
                result.restarts.append(restarted)
            beside.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(beside.wait(), 30)
            result.beside_seconds = time.monotonic() - beside_began
            await asyncio.gather(*walkers)
            owed = sum(SCRIPT[n % len(SCRIPT)][1] for n in range(messages))
            deadline = time.monotonic() + settle
            while time.monotonic() < deadline and (
                any(replies_to(api, u) < owed for u in ids)
                or any(reminders_to(api, u) == 0 for u in ids)
            ):
                await asyncio.sleep(0.2)
            bot.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(bot.wait(), 30)
            for u in ids:
                got = replies_to(api, u)
                missing = max(owed - got, 0)
                result.replies_lost += missing
                result.updates_lost += -(-missing // max(r for _, r in SCRIPT))
                result.duplicate_replies += max(got - owed, 0)
                result.worst_user_duplicates = max(result.worst_user_duplicates, got - owed)
            count_reminders(result, api.calls, killed, beside_token, ids)
    result.seconds = time.monotonic() - began
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--crashes", type=int, default=25)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--beside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.beside:
        asyncio.run(deliver_beside())
        return
    result = asyncio.run(run(args.users, args.messages, args.crashes, args.seed))
    print(result.table())


if __name__ == "__main__":
    main()
