"""Reading a plain yes or no (bot/engine/answers.py): what the screens build on."""

from __future__ import annotations

import pytest

from bot.engine.answers import refusal, yes_or_no


@pytest.mark.parametrize(
    "text", ["yes", "Yep!", "correct", "that's right", "That\u2019s correct.", "yes please", "ok"]
)
def test_yes(text: str) -> None:
    assert yes_or_no(text) == "yes"


@pytest.mark.parametrize(
    "text", ["no", "nope", "no that's wrong", "wrong", "not right", "that's not correct", "nah"]
)
def test_no(text: str) -> None:
    assert yes_or_no(text) == "no"


@pytest.mark.parametrize(
    "text",
    ["", "thanks", "no wait, it's Thursday", "yes 3pm", "Berlin", "right after lunch",
     "yes yes yes yes yes yes", "i'm nervous"],
)  # fmt: skip
def test_neither(text: str) -> None:
    assert yes_or_no(text) is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("no thanks", "polite"),
        ("No thank you!", "polite"),
        ("nope, sorry", "polite"),
        ("no", "bare"),
        ("NO.", "bare"),
        ("no way", "bare"),
        ("thank you", None),
        ("not right", None),  # a no to a question, not declining anything
        ("no, the pay is too low", None),  # a worry: for the classifier
        ("", None),
    ],
)
def test_refusal(text: str, kind: str | None) -> None:
    assert refusal(text) == kind
