"""Button data: short, versioned, validated. `v1:<action>[:<arg>...]`, at most 64 bytes.

Every button carries all it needs to act on its own, so a button from an old message (or one
sent before a restart) still does what its label says instead of depending on the current step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERSION = "v1"
MAX_BYTES = 64  # Telegram's limit for callback_data

# action -> how many arguments it takes
ARITY: dict[str, int] = {
    "sit": 1,  # situation: invite | prep | explore
    "lean": 1,  # yes | unsure | no
    "nav": 1,  # show a step again (the "Back" buttons)
    "obj": 1,  # an objection id
    "arg": 2,  # objection id, argument index ("Another reason")
    "q": 2,  # the question before any argument: offer signed|open|counter, flag real|vague
    "ok": 1,  # "That helps" for an objection
    "doubt": 1,  # "Still doubtful" for an objection
    "dec": 1,  # go | unsure | pass
    "scam": 1,  # after a fraud warning: steer (clear) | legit
    "scamok": 1,  # it checked out after all: go | unsure
    "withdraw": 0,  # can't make it: the polite way out
    "consent": 1,  # may the recruiter see it: yes | no (this opening) | none (withdraw all)
    "ask": 0,  # ask the recruiter a question
    "askno": 0,  # never mind the question
    "type": 0,  # "Something else": invites typing
    "when": 1,  # today | tomorrow | week | nextweek | none | change
    "whenok": 1,  # confirm a proposed time (unix minutes)
    "whenno": 0,  # the proposed time is wrong
    "tz": 1,  # keep | ask
    "nudge": 2,  # nudge id, later | stop
    "pre": 2,  # nudge id, on | resched | cant
    "post": 2,  # nudge id, well | mixed | missed
    "cancel": 1,  # nudge id
    "stopall": 0,
    "del": 1,  # delete my data: ask | yes | no
}

_ARG_RE = re.compile(r"^[a-z0-9_]{1,24}$")


@dataclass(frozen=True)
class Action:
    name: str
    args: tuple[str, ...] = ()


class Codec:
    """Packs and checks button data of one family: `<version>:<action>[:<arg>...]`."""

    def __init__(self, version: str, arity: dict[str, int]) -> None:
        self.version = version
        self.arity = arity

    def pack(self, name: str, *args: str | int) -> str:
        """Build button data; raises on anything that would not survive a round trip."""
        if name not in self.arity or self.arity[name] != len(args):
            raise ValueError(f"bad button action {name!r} with {len(args)} args")
        parts = [self.version, name, *(str(a) for a in args)]
        for part in parts[2:]:
            if not _ARG_RE.match(part):
                raise ValueError(f"bad button argument {part!r}")
        data = ":".join(parts)
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"button data too long: {data!r}")
        return data

    def unpack(self, data: str | None) -> Action | None:
        """Parse button data; None for anything forged, malformed or of another family."""
        if not data or len(data.encode("utf-8", "replace")) > MAX_BYTES:
            return None
        parts = data.split(":")
        if len(parts) < 2 or parts[0] != self.version:
            return None
        name, args = parts[1], tuple(parts[2:])
        if self.arity.get(name) != len(args) or not all(_ARG_RE.match(a) for a in args):
            return None
        return Action(name, args)


CONVERSATION = Codec(VERSION, ARITY)
pack = CONVERSATION.pack
unpack = CONVERSATION.unpack
