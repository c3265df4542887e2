"""A bare python-telegram-bot echo bot: the baseline that `bench/load.py` runs beside ours.

    TELEGRAM_BOT_TOKEN=123:abc TELEGRAM_API_BASE_URL=http://127.0.0.1:PORT/bot \\
        python -m bench.echo_bot

It does as little as a PTB bot can while still answering everything our bot answers: a text
(commands included) gets one `sendMessage` with the same text, a button press one
`answerCallbackQuery`. Same base URL as ours, PTB's default HTTP pool, no JobQueue (ours has
none either), and `run_polling` with a 10 s long poll like `python -m bot run`. Updates are
handled one at a time, PTB's default; ECHO_CONCURRENCY=true (or a number) sets
`concurrent_updates` instead. No storage, no rendering, no logging set up.
"""

from __future__ import annotations

import os
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

POLL_TIMEOUT = 10  # seconds, the same long poll as bot/runtime.py's Poller


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is not None and message.text:
        await context.bot.send_message(message.chat_id, message.text)


async def answer(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer()


def build(
    token: str, base_url: str, concurrency: int | bool = False
) -> Application[Any, Any, Any, Any, Any, Any]:
    application = (
        Application.builder()
        .token(token)
        .base_url(base_url)
        # The last "/bot": a host may begin with "bot" too (imports nothing of ours).
        .base_file_url("{0}/file/bot{2}".format(*base_url.rpartition("/bot")))
        .concurrent_updates(concurrency)
        .job_queue(None)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.add_handler(CallbackQueryHandler(answer))
    return application


def main() -> None:
    token = os.environ.get("TELEGRAM_BOT_TOKEN", "123:abc")
    base_url = os.environ.get("TELEGRAM_API_BASE_URL", "https://api.telegram.org/bot")
    raw = os.environ.get("ECHO_CONCURRENCY", "false").lower()
    concurrency: int | bool = raw == "true" if raw in ("true", "false") else int(raw)
    build(token, base_url, concurrency).run_polling(
        allowed_updates=Update.ALL_TYPES, timeout=POLL_TIMEOUT
    )


if __name__ == "__main__":
    main()
