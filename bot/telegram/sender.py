"""Deliver rendered messages through PTB's Bot, translating Telegram errors for the callers."""

from __future__ import annotations

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.render import RenderedMessage
from bot.sending import Blocked, Rejected, RetryLater, SendError


def markup(message: RenderedMessage) -> InlineKeyboardMarkup | None:
    if not message.keyboard:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(label, callback_data=data) for label, data in row]
            for row in message.keyboard
        ]
    )


class TelegramSender:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, chat_id: int, message: RenderedMessage) -> None:
        try:
            await self.bot.send_message(
                chat_id,
                message.text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup(message),
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except Forbidden as exc:
            raise Blocked(str(exc)) from exc
        except RetryAfter as exc:
            seconds = exc.retry_after
            raise RetryLater(
                seconds if isinstance(seconds, (int, float)) else seconds.total_seconds(), str(exc)
            ) from exc
        except BadRequest as exc:
            if "chat not found" in str(exc).lower():
                raise Blocked(str(exc)) from exc
            raise Rejected(str(exc)) from exc
        except TelegramError as exc:  # network errors, timeouts, 5xx: worth another try
            raise SendError(str(exc)) from exc
