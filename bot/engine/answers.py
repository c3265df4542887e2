"""Short answers the classifier has too few words for: "no thanks", "nope", "yes", "that's right".

Without a question, a bare "no" or "yes" is small talk, and the classifier reads it so. What it
means depends on the screen it answers ("right?", "have you accepted it?", a worry the coach is
answering), so the engine reads it here and decides by the screen. English only, like when.py.
"""

from __future__ import annotations

import re
from typing import Literal

from bot.knowledge.classifier import normalise

_WORD_RE = re.compile(r"[a-z']+")
MAX_WORDS = 5  # longer text says more than yes or no: it is for the classifier

NO_WORDS = frozenset({"no", "nope", "nah", "naw", "nay", "not", "wrong", "incorrect"})
YES_WORDS = frozenset(
    {
        "yes", "yep", "yeah", "yup", "yea", "ya", "y", "correct", "right", "exactly",
        "perfect", "ok", "okay", "sure", "confirmed", "indeed", "good", "fine",
    }
)  # fmt: skip
POLITE = frozenset({"thanks", "thank", "you", "thx", "ty", "please", "sorry", "cheers"})
# Words that only carry a yes or a no: "that's right", "no, it's wrong", "looks good".
_FILLER = frozenset(
    {"that's", "thats", "that", "is", "it", "it's", "its", "all", "quite", "looks", "sounds",
     "seems", "spot", "on", "totally", "absolutely", "very", "way", "so"}
)  # fmt: skip
# A plain refusal is a no-word with at most polite words around it ("no thanks", "nope").
_REFUSALS = frozenset({"no", "nope", "nah", "naw", "nay"})

Answer = Literal["yes", "no"]


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(normalise(text))


def yes_or_no(text: str) -> Answer | None:
    """ "yes", "correct", "that's right" -> yes; "no", "no that's wrong", "not quite" -> no;
    anything with a word that is neither (a day, a city, a worry) -> None."""
    words = _words(text)
    if not words or len(words) > MAX_WORDS:
        return None
    if any(w not in NO_WORDS | YES_WORDS | POLITE | _FILLER for w in words):
        return None
    if any(w in NO_WORDS for w in words):  # "not right" is a no
        return "no"
    if any(w in YES_WORDS for w in words):
        return "yes"
    return None


def refusal(text: str) -> Literal["polite", "bare"] | None:
    """A plain no: "no thanks", "no thank you" (polite: declining what was offered) or a bare
    "no", "nope" (what it declines is for the screen to say)."""
    words = _words(text)
    if not words or len(words) > MAX_WORDS:
        return None
    if not all(w in _REFUSALS or w in POLITE or w == "way" for w in words):
        return None
    if not any(w in _REFUSALS for w in words):
        return None  # "thank you" alone declines nothing
    return "polite" if any(w in POLITE for w in words) else "bare"
