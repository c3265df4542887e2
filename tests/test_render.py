"""Button labels (bot/render.py) and the keyboard JSON the sender posts (bot/telegram/sender.py)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from bot.render import RenderedMessage, Renderer
from bot.telegram.sender import keyboard_json, markup


@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    (tmp_path / "messages").mkdir()
    (tmp_path / "buttons.toml").write_text(
        "[labels]\n"
        'plain = "Yes & <no>"\n'
        'greet = "Hi {{ name }}"\n'
        f'long = "{"x" * 70}"\n'
        'padded = "  Back  "\n',
        encoding="utf-8",
    )
    return Renderer(tmp_path)


def test_a_label_without_placeholders_reads_as_written(renderer: Renderer) -> None:
    # Labels are plain text in Telegram: nothing is escaped.
    assert renderer.label("plain", {}) == "Yes & <no>"
    assert renderer.label("plain", {"name": "ignored"}) == "Yes & <no>"
    assert renderer.label("padded", {}) == "Back"


def test_a_label_with_placeholders_is_rendered_each_time(renderer: Renderer) -> None:
    assert renderer.label("greet", {"name": "<b>Ann</b>"}) == "Hi <b>Ann</b>"
    assert renderer.label("greet", {"name": "Bo"}) == "Hi Bo"
    with pytest.raises(jinja2.UndefinedError):
        renderer.label("greet", {})


def test_a_long_label_is_cut_to_64_characters(renderer: Renderer) -> None:
    assert renderer.label("long", {}) == "x" * 63 + "…"
    assert renderer.label("greet", {"name": "y" * 80}) == "Hi " + "y" * 60 + "…"


def test_an_unknown_label_is_an_error(renderer: Renderer) -> None:
    with pytest.raises(KeyError):
        renderer.label("nope", {})


def test_the_keyboard_json_is_the_bot_apis_inline_keyboard() -> None:
    message = RenderedMessage("t", ((("A & B", "a"), ("B", "b")), (("C", "c"),)))
    expected = {
        "inline_keyboard": [
            [{"text": "A & B", "callback_data": "a"}, {"text": "B", "callback_data": "b"}],
            [{"text": "C", "callback_data": "c"}],
        ]
    }
    assert keyboard_json(message) == expected
    markup_object = markup(message)
    assert markup_object is not None and markup_object.to_dict() == expected  # the same


def test_no_keyboard_means_no_reply_markup() -> None:
    assert keyboard_json(RenderedMessage("t")) is None
    assert markup(RenderedMessage("t")) is None
