"""Command line: `python -m bot {run,demo,classify,nudges,migrate,recruiters}`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bot import logs
from bot.config import ConfigError, Settings, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Interview Coach")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve the Telegram bot (long polling, or webhook if set)")
    run.add_argument(
        "--webhook",
        action="store_true",
        help="serve by webhook: needs WEBHOOK_URL (when it is set, webhook is the mode anyway)",
    )
    sub.add_parser("demo", help="the whole conversation in this terminal, no token needed")
    classify = sub.add_parser("classify", help="classify objections, one JSON object per text")
    classify.add_argument("texts", nargs="*", help="texts; none reads standard input by line")
    sub.add_parser("nudges", help="print pending nudges, one JSON object per line")
    sub.add_parser("migrate", help="create or upgrade the SQLite database")
    backup = sub.add_parser("backup", help="an online copy of the database (SQLite backup API)")
    backup.add_argument("target", nargs="?", type=Path, help="file or folder (default backups/)")
    people = sub.add_parser("recruiters", help="approve, list or remove recruiters")
    people.add_argument("action", choices=("add", "list", "remove"))
    people.add_argument("user_id", nargs="?", type=int, help="their Telegram user id")
    return parser


def _logging(settings: Settings) -> None:
    token = settings.telegram_bot_token
    secret = settings.webhook_secret
    logs.setup(
        settings.log_level,
        [
            token.get_secret_value() if token else None,
            secret.get_secret_value() if secret else None,
        ],
    )


async def _run(settings: Settings, webhook: bool) -> None:
    from bot.runtime import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(settings, stop, webhook=webhook or None)


async def _migrate(settings: Settings) -> int:
    from bot.storage.db import Database

    db = await Database.open(settings.database_path)
    version = await db.version()
    await db.close()
    print(f"{settings.database_path}: schema version {version}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "run":
            settings.require_token()
            if args.webhook and settings.webhook_url is None:
                raise ConfigError("--webhook needs WEBHOOK_URL (see .env.example)")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _logging(settings)
    from bot.storage.db import DatabaseUnavailable

    try:
        return _command(args, settings)
    except DatabaseUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _command(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "classify":
        from bot.knowledge.cli import classify_main

        return classify_main(args.texts, sys.stdin, sys.stdout)
    if args.command == "nudges":
        from bot.nudges.cli import print_pending

        asyncio.run(print_pending(settings.database_path, sys.stdout))
        return 0
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "backup":
        from bot.storage.backup import BackupFailed, backup_main

        try:
            return asyncio.run(backup_main(settings.database_path, args.target, sys.stdout))
        except BackupFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if args.command == "recruiters":
        from bot.recruiters.cli import recruiters_main

        if args.action != "list" and args.user_id is None:
            print("error: a Telegram user id is needed, e.g. 123456789", file=sys.stderr)
            return 2
        return asyncio.run(
            recruiters_main(
                settings.database_path,
                args.action,
                args.user_id,
                sys.stdout,
            )
        )
    if args.command == "demo":
        from bot.console import demo

        logging.getLogger().setLevel(logging.WARNING)  # keep the conversation readable
        name = os.environ.get("DEMO_NAME", "")
        return asyncio.run(demo(settings, sys.stdin, sys.stdout, name))
    from telegram.error import InvalidToken, TelegramError

    from bot.runtime import AlreadyRunning, CannotListen

    try:
        asyncio.run(_run(settings, args.webhook))
    except (ConfigError, InvalidToken) as exc:
        print(f"error: {logs.redact(str(exc))}", file=sys.stderr)
        return 2
    except AlreadyRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except CannotListen as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except TelegramError as exc:  # unreachable is waited out: this is a refusal
        message = f"the Bot API at {settings.telegram_api_base_url} refused: {exc}"
        print(f"error: {logs.redact(message)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
