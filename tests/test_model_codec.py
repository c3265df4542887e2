"""The engine's small pieces that mutation testing found loosely pinned: the button data codec,
reading a stored state back, and the zone the engine falls back to."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from bot.engine.buttons import Action, Codec
from bot.engine.context import Context
from bot.engine.model import State

# --- button data -----------------------------------------------------------------------------


@pytest.fixture
def codec() -> Codec:
    return Codec("v9", {"go": 1, "big": 3})


def test_a_codec_of_its_own_family_round_trips(codec: Codec) -> None:
    assert codec.pack("go", "x_1") == "v9:go:x_1"
    assert codec.unpack("v9:go:x_1") == Action("go", ("x_1",))
    assert codec.unpack("v1:go:x_1") is None  # another family's (or version's) button


@pytest.mark.parametrize(
    ("name", "args", "error"),
    [
        ("nope", (), "bad button action 'nope' with 0 args"),
        ("go", ("a", "b"), "bad button action 'go' with 2 args"),
        ("go", ("Bad!",), "bad button argument 'Bad!'"),
        ("big", ("ok", "ok", "Bad!"), "bad button argument 'Bad!'"),
    ],
)
def test_a_button_that_would_not_survive_a_round_trip_is_refused(
    codec: Codec, name: str, args: tuple[str, ...], error: str
) -> None:
    with pytest.raises(ValueError) as raised:
        codec.pack(name, *args)
    assert str(raised.value) == error


def test_button_data_may_use_all_of_telegrams_64_bytes_and_no_more(codec: Codec) -> None:
    # "v9:big:" is 7 bytes; 24 + 1 + 24 + 1 more leaves 7 for the last argument.
    longest = codec.pack("big", "a" * 24, "b" * 24, "c" * 7)
    assert len(longest.encode()) == 64
    assert codec.unpack(longest) == Action("big", ("a" * 24, "b" * 24, "c" * 7))
    with pytest.raises(ValueError) as raised:
        codec.pack("big", "a" * 24, "b" * 24, "c" * 8)
    assert str(raised.value).startswith("button data too long: ")
    assert codec.unpack(longest + "c") is None


@pytest.mark.parametrize("data", [None, ""])
def test_a_press_without_data_is_no_action(codec: Codec, data: str | None) -> None:
    assert codec.unpack(data) is None


# --- a stored state read back ----------------------------------------------------------------


def load(**fields: Any) -> State:
    return State.from_json(json.dumps(fields))


@pytest.mark.usefixtures("machine_in_tokyo")
def test_a_stored_time_comes_back_in_utc_whatever_the_machines_zone() -> None:
    loaded = load(interview_at="2026-12-03T14:00:00+01:00")
    assert loaded.interview_at == datetime(2026, 12, 3, 13, 0, tzinfo=UTC)
    assert loaded.interview_at is not None
    assert loaded.interview_at.utcoffset() == timedelta(0)


def test_a_field_of_the_wrong_type_falls_back_and_the_rest_is_kept() -> None:
    # A bool is an int to Python; a count is not a yes/no.
    assert load(arg_index=True, decision="go") == State(decision="go")
    assert load(in_row="3", lean="no") == State(lean="no")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd"])
def test_a_stored_zone_zoneinfo_does_not_know_is_dropped(zone: str) -> None:
    assert load(timezone=zone, decision="unsure") == State(decision="unsure")


def test_the_engine_falls_back_to_utc_for_a_zone_it_cannot_load() -> None:
    context = Context(
        kb=cast(Any, None),
        classifier=cast(Any, None),
        now=datetime(2026, 12, 1, tzinfo=UTC),
        default_timezone="Nowhere/Such_Place",
    )
    assert str(context.zone(State())) == "UTC"
    assert str(context.zone(State(timezone="Asia/Tokyo"))) == "Asia/Tokyo"
