"""Deliver rendered messages through PTB's Bot, translating Telegram errors for the callers."""

from __future__ import annotations

import warnings
from collections.abc import Awaitable

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.warnings import PTBUserWarning

from bot.render import RenderedMessage
from bot.sending import Blocked, Document, Outgoing, Photo, Rejected, RetryLater, SendError

warnings.filterwarnings("ignore", message="Please use 'Bot.sendMessage'", category=PTBUserWarning)
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def markup(message: RenderedMessage) -> InlineKeyboardMarkup | None:
    if not message.keyboard:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(label, callback_data=data) for label, data in row]
            for row in message.keyboard
        ]
    )


def keyboard_json(message: RenderedMessage) -> dict[str, object] | None:
    """The same keyboard as `markup`, as the Bot API's JSON."""
    if not message.keyboard:
        return None
    return {
        "inline_keyboard": [
            [{"text": label, "callback_data": data} for label, data in row]
            for row in message.keyboard
        ]
    }


class TelegramSender:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, chat_id: int, message: RenderedMessage) -> None:
        # Bot.send_message would parse Telegram's answer into a Message (with its keyboard),
        # which nothing here reads: a tenth of the bot's CPU per reply under load. The same
        # call, with PTB's serialisation and errors, returning the raw result instead.
        await self._call(
            self.bot.do_api_request(
                "sendMessage",
                api_kwargs={
                    "chat_id": chat_id,
                    "text": message.text,
                    "parse_mode": ParseMode.HTML,
                    # Plain JSON: PTB would build and then serialise a keyboard object.
                    "reply_markup": keyboard_json(message),
                    "link_preview_options": _NO_PREVIEW,
                },
            )
        )

    async def send_any(self, chat_id: int, item: Outgoing) -> None:
        """A message, a picture or a file; errors as for `send`."""
        if isinstance(item, Photo):
            await self._call(
                self.bot.send_photo(
                    chat_id,
                    item.png,
                    caption=item.caption.text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup(item.caption),
                )
            )
        elif isinstance(item, Document):
            await self._call(
                self.bot.send_document(
                    chat_id,
                    item.data,
                    filename=item.filename,
                    caption=item.caption.text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup(item.caption),
                )
            )
        else:
            await self.send(chat_id, item)

    @staticmethod
    async def _call(request: Awaitable[object]) -> None:
        try:
            await request
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
