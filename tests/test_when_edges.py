"""Typed times that are no time: asked again rather than read as a day."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.engine.when import parse_when

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # a Tuesday
UTC_ZONE = ZoneInfo("UTC")


@pytest.mark.parametrize("text", ["friday at 24", "Friday at 30", "at 24", "thursday at 99"])
def test_an_hour_past_23_is_not_read_as_a_day(text: str) -> None:
    # dateparser read "friday at 24" as the 24th of the month, with no time.
    assert parse_when(text, NOW, UTC_ZONE) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("friday at 23", datetime(2026, 12, 4, 23, 0, tzinfo=UTC)),
        ("friday at 2", datetime(2026, 12, 4, 14, 0, tzinfo=UTC)),
        ("at 24 dec 3pm", datetime(2026, 12, 24, 15, 0, tzinfo=UTC)),
        ("the 24th at 3pm", datetime(2026, 12, 24, 15, 0, tzinfo=UTC)),
    ],
)
def test_real_hours_and_days_next_to_at_still_read(text: str, expected: datetime) -> None:
    parsed = parse_when(text, NOW, UTC_ZONE)
    assert parsed is not None and parsed.moment == expected and parsed.has_time
