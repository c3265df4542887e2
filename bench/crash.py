"""Crash bench: the real bot, killed with SIGKILL at random moments under load, must lose
nothing and repeat at most what was in flight at each kill (one reply per conversation, one
reminder).

`python -m bench.crash` (defaults: 200 users, 5 messages each, 25 crashes, about two minutes):
a loopback fake Bot API that holds updates until a later getUpdates offset acknowledges them
(as Telegram does) serves `python -m bot run` in a subprocess. Every user sends /start and
/help in turn (one and two replies), one after another; every user also has a check-back
reminder due at once.
Meanwhile the bot is killed with SIGKILL and restarted, and once a second copy is started
beside it (it must refuse to poll). At the end it counts, per user, the replies that arrived
against those owed, and the reminders:

- updates lost: an update whose replies never came (it was acknowledged, then forgotten);
- replies lost: a reply owed that never came;
- duplicates: replies that came twice, per crash, and the most in one conversation (a kill
  can repeat the one message each conversation had in flight, sent but not yet recorded);
- reminders sent twice, and reminders never sent.

Needs the test suite's fake Bot API (tests/fakebot.py); writes nothing but a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakebot import FakeBotApi  # noqa: E402

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
    reminders_twice: int = 0
    reminders_missing: int = 0
    second_copy_exit: int | None = None
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
            ("reminders sent twice", str(self.reminders_twice)),
            ("reminders never sent", str(self.reminders_missing)),
            (
                "second copy",
                f"refused to poll (exit {self.second_copy_exit})"
                if self.second_copy_exit == 3
                else f"exit {self.second_copy_exit}",
            ),
            ("whole run", f"{self.seconds:.0f} s"),
        ]
        lines = ["| | |", "|---|---:|", *(f"| {a} | {b} |" for a, b in rows)]
        return "\n".join(lines)


def seed(db_path: Path, users: range) -> None:
    """Users who are still unsure, each with a check-back due now."""
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
            [(u, now, now + 86400, now) for u in users],
        )


async def start_bot(api: FakeBotApi, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


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
        seed(db_path, ids)
        async with FakeBotApi() as api:
            env = {
                **os.environ,
                "TELEGRAM_BOT_TOKEN": "123:abc",
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
            bot = await start_bot(api, env)
            walkers = [asyncio.create_task(user_walk(api, u, messages, patience)) for u in ids]
            for crash in range(crashes):
                await asyncio.sleep(rng.uniform(0.5, 3.0))
                if crash == crashes // 2:
                    second = await start_bot(api, env)
                    result.second_copy_exit = await asyncio.wait_for(second.wait(), 60)
                bot.kill()  # SIGKILL: no cleanup, no goodbye
                await bot.wait()
                restarted = time.monotonic()
                bot = await start_bot(api, env)
                result.restarts.append(restarted)
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
                got, reminders = replies_to(api, u), reminders_to(api, u)
                missing = max(owed - got, 0)
                result.replies_lost += missing
                result.updates_lost += -(-missing // max(r for _, r in SCRIPT))
                result.duplicate_replies += max(got - owed, 0)
                result.worst_user_duplicates = max(result.worst_user_duplicates, got - owed)
                result.reminders_twice += max(reminders - 1, 0)
                result.reminders_missing += reminders == 0
    result.seconds = time.monotonic() - began
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--crashes", type=int, default=25)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    result = asyncio.run(run(args.users, args.messages, args.crashes, args.seed))
    print(result.table())


if __name__ == "__main__":
    main()
