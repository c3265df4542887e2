"""Reading interview times and time zones typed in words."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.engine import when
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
    ("text", "zone"),
    [
        ("central time", "America/Chicago"),
        ("Central Time", "America/Chicago"),
        ("I'm on central time", "America/Chicago"),
        ("eastern time", "America/New_York"),
        ("we're on pacific time", "America/Los_Angeles"),
        ("Mountain time.", "America/Denver"),
        ("central european time", "Europe/Berlin"),
        ("I live in central London", "Europe/London"),  # "central" alone is not a zone
    ],
)
def test_the_names_people_give_their_zone(text: str, zone: str) -> None:
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


# --- typed dates people write ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # README's own example: "at 2" is an hour, in the afternoon (interviews are daytime).
        ("it's on Thursday at 2", local(2026, 3, 5, 14, 0)),
        ("friday at 9", local(2026, 3, 6, 9, 0)),
        ("tomorrow at 4", local(2026, 3, 5, 16, 0)),
        ("tuesday at 15", local(2026, 3, 10, 15, 0)),
        ("friday at 2pm", local(2026, 3, 6, 14, 0)),  # an am/pm is taken as typed
        ("friday at 9:30", local(2026, 3, 6, 9, 30)),
        # A day of the month without the month: the next such day.
        ("the 12th at 10am", local(2026, 3, 12, 10, 0)),
        ("on the 3rd at 3pm", local(2026, 4, 3, 15, 0)),  # 3 March is past: April's
        # Inside a sentence, the one date in it.
        ("um the interview is friday 11am i think", local(2026, 3, 6, 11, 0)),
        ("they said next monday at 10am", local(2026, 3, 9, 10, 0)),
    ],
)
def test_dates_the_way_people_type_them(text: str, expected: datetime) -> None:
    parsed = parse_when(text, NOW, PARIS)
    assert parsed is not None, text
    assert (parsed.moment, parsed.has_time) == (expected, True)


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("FRIDAY", local(2026, 3, 6)),
        ("the 12th", local(2026, 3, 12)),
        ("umm it's the 12th", local(2026, 3, 12)),
        ("the 4th", local(2026, 3, 4)),  # today is the 4th
        ("the 2nd", local(2026, 4, 2)),
        ("March 12th", local(2026, 3, 12)),  # the month it names, not the next 12th
        ("12th of march", local(2026, 3, 12)),
    ],
)
def test_days_the_way_people_type_them(text: str, day: datetime) -> None:
    parsed = parse_when(text, NOW, PARIS)
    assert parsed is not None, text
    assert (parsed.moment, parsed.has_time) == (day, False)


def test_a_day_of_the_month_rolls_over_months_and_years() -> None:
    april = datetime(2026, 4, 20, 9, 0, tzinfo=UTC)
    the_31st = parse_when("the 31st", april, PARIS)  # April has 30 days: the 31st of May
    assert the_31st is not None and the_31st.moment == local(2026, 5, 31)
    december = datetime(2026, 12, 20, 9, 0, tzinfo=UTC)
    the_3rd = parse_when("the 3rd", december, PARIS)
    assert the_3rd is not None and the_3rd.moment == local(2027, 1, 3)


@pytest.mark.parametrize(
    "text",
    [
        "either monday or tuesday at 3pm",  # two dates: not guessed
        "call me now please",  # "now" is not an interview day
        "sometime next week maybe",  # no day in it: the week buttons ask for one
    ],
)
def test_sentences_without_one_clear_date(text: str) -> None:
    assert parse_when(text, NOW, PARIS) is None


def test_a_date_in_a_long_message_is_not_read() -> None:
    date = "tomorrow at 10am"
    exactly = date + " " + "x" * (200 - len(date) - 1)
    assert len(exactly) == 200
    parsed = parse_when(exactly, NOW, PARIS)
    assert parsed is not None and parsed.moment == local(2026, 3, 5, 10, 0)
    assert parse_when(exactly + "x", NOW, PARIS) is None  # 201 characters: something else
    chatty = "so they called and said the interview is tomorrow at 10am, " * 5
    assert parse_when(chatty, NOW, PARIS) is None


def test_a_chosen_day_takes_a_bare_time_but_not_a_named_day() -> None:
    tomorrow = local(2026, 3, 5).astimezone(UTC)  # the "Tomorrow" button
    for text, expected in [
        ("3pm", local(2026, 3, 5, 15, 0)),
        ("at 3", local(2026, 3, 5, 15, 0)),
        ("tomorrow at 3pm", local(2026, 3, 5, 15, 0)),  # tomorrow, not the day after
        ("friday 10am", local(2026, 3, 6, 10, 0)),
        ("today 5pm", local(2026, 3, 4, 17, 0)),
    ]:
        parsed = parse_when(text, NOW, PARIS, day=tomorrow)
        assert parsed is not None and parsed.moment == expected, text


def test_a_corrected_time_stays_on_the_proposed_day_even_when_earlier() -> None:
    thursday_2pm = local(2026, 3, 5, 14, 0).astimezone(UTC)
    for text, expected in [
        ("10am", local(2026, 3, 5, 10, 0)),
        ("00:30", local(2026, 3, 5, 0, 30)),
        ("midnight", local(2026, 3, 5, 0, 0)),
        ("at 3", local(2026, 3, 5, 15, 0)),
    ]:
        parsed = parse_when(text, NOW, PARIS, day=thursday_2pm)
        assert parsed is not None and parsed.moment == expected, text
    quarter_to_three = local(2026, 3, 5, 14, 45).astimezone(UTC)
    parsed = parse_when("00:30", NOW, PARIS, day=quarter_to_three)
    assert parsed is not None and parsed.moment == local(2026, 3, 5, 0, 30)


# --- a zone from the local time, an offset ----------------------------------------------------

JANUARY = datetime(2026, 1, 15, 12, 35, 20, tzinfo=UTC)  # New Zealand on summer time (+13)
JULY = datetime(2026, 7, 15, 12, 35, 20, tzinfo=UTC)  # New Zealand on standard time (+12)


@pytest.mark.parametrize(
    ("typed", "offset"),
    [
        ("12:35pm", timedelta(0)),  # noon hour: 12 pm is 12:xx, not 00:xx or 24:xx
        ("12:35am", timedelta(hours=12)),  # just after midnight: across the date line
        ("1:35pm", timedelta(hours=1)),
        ("9:35am", timedelta(hours=-3)),
        ("12:35 PM", timedelta(0)),
        ("10:35", timedelta(hours=-2)),  # no well-known zone: the fixed offset
    ],
)
def test_local_time_with_am_pm(typed: str, offset: timedelta) -> None:
    zone = resolve_timezone(typed, JANUARY)
    assert zone is not None, typed
    assert ZoneInfo(zone).utcoffset(JANUARY) == offset


def test_near_the_date_line_the_zone_where_people_live_wins() -> None:
    # 01:35 while it is 12:35 in London: UTC+13 (Auckland, in January) or UTC-11.
    assert resolve_timezone("01:35", JANUARY) == "Pacific/Auckland"
    # 00:35: UTC+12 (Fiji, Kamchatka) rather than UTC-12, where nobody lives.
    zone = resolve_timezone("00:35", JANUARY)
    assert zone is not None and ZoneInfo(zone).utcoffset(JANUARY) == timedelta(hours=12)
    # In July Auckland is at +12; 01:35 is then UTC+13 (Tonga), still not UTC-11.
    assert resolve_timezone("00:35", JULY) == "Pacific/Auckland"
    zone = resolve_timezone("01:35", JULY)
    assert zone is not None and ZoneInfo(zone).utcoffset(JULY) == timedelta(hours=13)
    # 02:35: Honolulu (UTC-10) rather than UTC+14.
    assert resolve_timezone("02:35", JANUARY) == "Pacific/Honolulu"


def test_local_time_on_the_other_side_of_midnight() -> None:
    small_hours = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)  # yesterday evening in Brazil
    zone = resolve_timezone("23:00", small_hours)
    assert zone is not None and ZoneInfo(zone).utcoffset(small_hours) == timedelta(hours=-3)
    late = datetime(2026, 1, 15, 22, 0, tzinfo=UTC)  # tomorrow morning in Brisbane
    zone = resolve_timezone("08:00", late)
    assert zone is not None and ZoneInfo(zone).utcoffset(late) == timedelta(hours=10)


def test_a_clock_a_few_minutes_off_still_finds_the_zone() -> None:
    # Seconds do not count: "14:42" is the minute 14:42, compared with the minute 12:35.
    now = datetime(2026, 1, 15, 12, 35, 50, tzinfo=UTC)
    for typed in ("14:42", "14:28", "14:35"):  # 7 minutes fast, 7 minutes slow, right
        zone = resolve_timezone(typed, now)
        assert zone is not None and ZoneInfo(zone).utcoffset(now) == timedelta(hours=2), typed
    # Eight minutes off is nearer a quarter past (UTC+2:15) than any zone: asked again.
    assert resolve_timezone("14:43", now) is None
    assert resolve_timezone("14:27", now) is None


def test_a_bare_hour_is_on_the_hour() -> None:
    # "2pm" is 14:00: 1 h 53 ahead of 12:07 is nearest UTC+2; 1 h 52 ahead of 12:08 is
    # nearest UTC+1:45, which no zone has.
    at_7 = datetime(2026, 1, 15, 12, 7, tzinfo=UTC)
    zone = resolve_timezone("2pm", at_7)
    assert zone is not None and ZoneInfo(zone).utcoffset(at_7) == timedelta(hours=2)
    assert resolve_timezone("2pm", datetime(2026, 1, 15, 12, 8, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("UTC+14", timedelta(hours=14)),
        ("UTC-12", timedelta(hours=-12)),
        ("UTC-3:30", timedelta(hours=-3, minutes=-30)),  # St John's, in January
        ("gmt+1", timedelta(hours=1)),
    ],
)
def test_offsets_at_the_edges(text: str, offset: timedelta) -> None:
    zone = resolve_timezone(text, JANUARY)
    assert zone is not None
    assert ZoneInfo(zone).utcoffset(JANUARY) == offset


@pytest.mark.parametrize("text", ["UTC-13", "UTC+14:30", "UTC+8:45", "UTC-14"])
def test_offsets_no_zone_has(text: str) -> None:
    assert resolve_timezone(text, JANUARY) is None


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("Europe/Paris.", "Europe/Paris"),
        ("tokyo!", "Asia/Tokyo"),
        ("Sao Paulo", "America/Sao_Paulo"),
        ("los angeles", "America/Los_Angeles"),
        ("I'm in new york city these days", "America/New_York"),
        ("moving to new york soon", "America/New_York"),
        ("EUROPE/LONDON", "Europe/London"),
    ],
)
def test_names_with_punctuation_capitals_and_spaces(text: str, zone: str) -> None:
    assert resolve_timezone(text, JANUARY) == zone


def test_hours_at_the_ends_of_the_afternoon_rule() -> None:
    # "at 1" .. "at 7" are afternoon hours, "at 8" and later are as typed.
    for text, expected in [
        ("monday at 1", local(2026, 3, 9, 13, 0)),
        ("monday at 7", local(2026, 3, 9, 19, 0)),
        ("monday at 8", local(2026, 3, 9, 8, 0)),
        ("monday at 12", local(2026, 3, 9, 12, 0)),
        ("friday at 23", local(2026, 3, 6, 23, 0)),
        ("friday at 0", local(2026, 3, 6, 0, 0)),
    ]:
        parsed = parse_when(text, NOW, PARIS)
        assert parsed is not None and (parsed.moment, parsed.has_time) == (expected, True), text


def test_the_first_of_the_month_and_days_that_do_not_exist() -> None:
    the_1st = parse_when("the 1st", NOW, PARIS)
    assert the_1st is not None and the_1st.moment == local(2026, 4, 1)
    # No month has a 32nd: whatever is read, it is not a day of March or April.
    the_32nd = parse_when("the 32nd", NOW, PARIS)
    assert the_32nd is None or the_32nd.moment > NOW + timedelta(days=2 * 366)


def test_a_day_of_the_month_counts_from_the_users_date_not_londons() -> None:
    # 23:30 UTC on the 11th is already the 12th in Tokyo: "the 11th" is next month's.
    tokyo = ZoneInfo("Asia/Tokyo")
    late = datetime(2026, 3, 11, 23, 30, tzinfo=UTC)
    parsed = parse_when("the 11th", late, tokyo)
    assert parsed is not None and parsed.moment == datetime(2026, 4, 11, tzinfo=tokyo)


def test_a_day_alone_is_midnight_whatever_the_time_now() -> None:
    odd = datetime(2026, 3, 4, 9, 17, 42, 500_000, tzinfo=UTC)
    for text, day in [("friday", 6), ("in 2 days", 6), ("tomorrow", 5)]:
        parsed = parse_when(text, odd, PARIS)
        assert parsed is not None and parsed.moment == local(2026, 3, day), text
        assert not parsed.has_time and parsed.moment.utcoffset() == timedelta(0)


def test_a_chosen_day_with_seconds_still_takes_midnight_on_that_day() -> None:
    chosen = local(2026, 3, 5, 14, 0).astimezone(UTC) + timedelta(seconds=30, microseconds=5)
    parsed = parse_when("midnight", NOW, PARIS, day=chosen)
    assert parsed is not None and parsed.moment == local(2026, 3, 5, 0, 0)


def test_a_zone_name_in_a_message_of_200_characters_but_not_more() -> None:
    text = "I'm in Toronto"
    padded = text + " " + "k" * (200 - len(text) - 1)
    assert len(padded) == 200
    assert resolve_timezone(padded, JANUARY) == "America/Toronto"
    assert resolve_timezone(padded + "k", JANUARY) is None


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("I'm in Ho Chi Minh City", "Asia/Ho_Chi_Minh"),  # a three-word place
        ("Regina.", "America/Regina"),  # a name too common to find in a sentence, typed alone
        ("Buenos_Aires", "America/Argentina/Buenos_Aires"),  # a city of a three-part name
        ("America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"),
    ],
)
def test_less_common_place_names(text: str, zone: str) -> None:
    assert resolve_timezone(text, JANUARY) == zone


@pytest.mark.parametrize("typed", ["24:30", "14:60", "23:99"])
def test_times_that_do_not_exist_are_not_a_zone(typed: str) -> None:
    assert resolve_timezone(typed, JANUARY) is None


def test_the_last_minute_of_an_hour_is_a_time() -> None:
    now = datetime(2026, 1, 15, 12, 59, tzinfo=UTC)
    zone = resolve_timezone("14:59", now)
    assert zone is not None and ZoneInfo(zone).utcoffset(now) == timedelta(hours=2)


def test_eight_minutes_off_far_from_london_is_not_a_zone_either() -> None:
    # 21:43 in Tokyo's 21:35: 8 minutes fast, nearer 09:15 ahead than 09:00.
    now = datetime(2026, 1, 15, 12, 35, 50, tzinfo=UTC)
    assert resolve_timezone("21:42", now) == "Asia/Tokyo"
    assert resolve_timezone("21:43", now) is None


def test_utc_itself_is_named_utc() -> None:
    assert resolve_timezone("UTC+0", JANUARY) == "UTC"
    assert resolve_timezone("UTC+3", JANUARY) == "Etc/GMT-3"  # Etc names invert the sign
    assert resolve_timezone("UTC-3", JANUARY) == "Etc/GMT+3"


# --- whatever the machine's zone, and only English -------------------------------------------


@pytest.mark.usefixtures("machine_in_tokyo")
def test_times_are_read_in_utc_whatever_the_machines_zone() -> None:
    assert datetime.now().astimezone().utcoffset() == timedelta(hours=9)  # the fixture works
    parsed = parse_when("Tue 3pm", NOW, PARIS)
    assert parsed is not None
    assert parsed.moment == local(2026, 3, 10, 15, 0)
    assert parsed.moment.utcoffset() == timedelta(0)
    # 10:00 typed at 09:00 UTC in March: UTC+1, which Paris is in winter.
    assert resolve_timezone("10:00", NOW) == "Europe/Paris"


@pytest.mark.parametrize("text", ["demain 10h", "lun 3pm", "domingo 10:00", "morgen 15 Uhr"])
def test_a_time_in_another_language_is_not_guessed(text: str) -> None:
    # The bot speaks English; guessing the language reads "demain 10h" as 20:00 tomorrow.
    assert parse_when(text, NOW, PARIS) is None


def test_warm_up_loads_what_the_first_reading_would(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "dateparser.search", raising=False)
    when._places.cache_clear()
    when._zones_by_key.cache_clear()
    when.warm_up(NOW)
    assert "dateparser.search" in sys.modules  # searching a sentence for a date
    assert when._places.cache_info().currsize == 1  # places named in a sentence
    assert when._zones_by_key.cache_info().currsize == 1  # zone names


def test_an_ordinal_no_month_has_is_not_a_date() -> None:
    # No month has a 45th day. It was read as 4 March 2045 (the engine then answered that it
    # is too far away, rather than that it is not a date).
    assert parse_when("the 45th", NOW, PARIS) is None
    assert parse_when("friday the 0th", NOW, PARIS) is None
    assert parse_when("the 32nd at 3pm", NOW, PARIS) is None
    assert parse_when("the 31st", NOW, PARIS) is not None
