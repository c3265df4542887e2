"""Reading interview times and time zones typed in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.engine.when import parse_when, resolve_timezone

PARIS = ZoneInfo("Europe/Paris")
# Wednesday 4 March 2026, 10:00 in Paris (CET, UTC+1).
NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


# --- parse_when ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tue 3pm", local(2026, 3, 10, 15, 0)),  # the coming Tuesday
        ("tuesday 15:00", local(2026, 3, 10, 15, 0)),
        ("March 3 10:30", local(2027, 3, 3, 10, 30)),  # 3 March 2026 is past: next year's
        ("March 13 10:30", local(2026, 3, 13, 10, 30)),
        ("tomorrow 9am", local(2026, 3, 5, 9, 0)),
        ("in 2 hours", NOW + timedelta(hours=2)),
    ],
)
def test_day_and_time(text: str, expected: datetime) -> None:
    parsed = parse_when(text, NOW, PARIS)
    assert parsed is not None
    assert parsed.has_time
    assert parsed.moment == expected
    assert parsed.moment.tzinfo == UTC


@pytest.mark.parametrize(
    ("text", "day"),
    [("in 2 days", local(2026, 3, 6)), ("friday", local(2026, 3, 6)), ("today", local(2026, 3, 4))],
)
def test_a_day_without_a_time(text: str, day: datetime) -> None:
    parsed = parse_when(text, NOW, PARIS)
    assert parsed is not None
    assert not parsed.has_time
    assert parsed.moment == day  # local midnight, so the day shown is the right one


def test_a_bare_time_lands_on_the_chosen_day() -> None:
    friday = local(2026, 3, 6).astimezone(UTC)
    parsed = parse_when("3pm", NOW, PARIS, day=friday)
    assert parsed is not None and parsed.has_time
    assert parsed.moment == local(2026, 3, 6, 15, 0)
    # Without a day, "3pm" is today (it's 10:00 now).
    today = parse_when("3pm", NOW, PARIS)
    assert today is not None and today.moment == local(2026, 3, 4, 15, 0)


def test_the_same_words_mean_different_utc_moments_in_different_zones() -> None:
    tokyo = parse_when("Tue 3pm", NOW, ZoneInfo("Asia/Tokyo"))
    paris = parse_when("Tue 3pm", NOW, PARIS)
    assert tokyo is not None and paris is not None
    assert paris.moment - tokyo.moment == timedelta(hours=8)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "nonsense", "I'm nervous about it", "1", "42", "???", "x" * 10_000, "3pm " * 100],
)
def test_not_a_time(text: str) -> None:
    assert parse_when(text, NOW, PARIS) is None


# --- resolve_timezone ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("America/New_York", "America/New_York"),
        ("america/new_york", "America/New_York"),
        ("Berlin", "Europe/Berlin"),
        ("berlin", "Europe/Berlin"),
        ("  Tokyo  ", "Asia/Tokyo"),
        ("new york", "America/New_York"),
        ("New_York", "America/New_York"),
        ("NYC", "America/New_York"),
        ("UTC", "UTC"),
    ],
)
def test_names_and_cities(text: str, zone: str) -> None:
    assert resolve_timezone(text, NOW) == zone


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("UTC+3", timedelta(hours=3)),
        ("utc+3", timedelta(hours=3)),
        ("GMT-5", timedelta(hours=-5)),
        ("UTC+5:30", timedelta(hours=5, minutes=30)),
        ("UTC+0", timedelta(0)),
    ],
)
def test_offsets(text: str, offset: timedelta) -> None:
    zone = resolve_timezone(text, NOW)
    assert zone is not None
    assert ZoneInfo(zone).utcoffset(NOW) == offset


@pytest.mark.parametrize(
    ("typed", "offset"),
    [
        ("14:35", timedelta(hours=2)),
        ("14:37", timedelta(hours=2)),  # a clock a little off still lands on the hour
        ("2:35pm", timedelta(hours=2)),
        ("12:35", timedelta(0)),
        ("07:35", timedelta(hours=-5)),
        ("18:05", timedelta(hours=5, minutes=30)),
        ("23:35", timedelta(hours=11)),  # ahead, not 13 hours behind
    ],
)
def test_local_time_now(typed: str, offset: timedelta) -> None:
    now = datetime(2026, 1, 15, 12, 35, 20, tzinfo=UTC)
    zone = resolve_timezone(typed, now)
    assert zone is not None, typed
    assert ZoneInfo(zone).utcoffset(now) == offset


@pytest.mark.parametrize(
    "text",
    ["", "garbage", "the moon", "UTC+15", "25:99", "14", "13pm", "x" * 100, "Berlin " * 50],
)
def test_not_a_zone(text: str) -> None:
    assert resolve_timezone(text, NOW) is None


def test_very_long_text_is_refused_quickly() -> None:
    assert resolve_timezone("Europe/Paris" + " " + "a" * 100_000, NOW) is None
