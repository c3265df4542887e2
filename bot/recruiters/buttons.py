"""Recruiter button data: `r1:<action>[:<arg>...]`, a family apart from the conversation's, so
the front end routes it to the recruiters' desk. Every action is checked again when pressed:
who presses it must be allowed to (their own opening, or an administrator)."""

from __future__ import annotations

from bot.engine.buttons import Codec

DESK = Codec(
    "r1",
    {
        "appr": 2,  # an administrator decides a request: user id, yes | no
        "open": 1,  # show an opening: its id
        "op": 2,  # act on an opening: id, pause | resume | close | reopen | newcode | channel
        "stats": 3,  # scope a | o | l, its id (0 for all), period 7d | 30d | all
        "links": 0,  # back to the list of openings
        "page": 1,  # a page of the list of openings: its number, from 0
        "chan": 2,  # the links of an opening, a page at a time: opening id, page from 0
        "reply": 1,  # answer a relayed question: its id
        "skip": 0,  # skip an optional /newlink step
        "cancel": 0,  # leave the screen in progress
        "digest": 1,  # the weekly digest: on | off
    },
)
