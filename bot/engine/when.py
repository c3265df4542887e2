"""Understanding "when": interview times typed in words, and the user's time zone."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from dateparser.date import DateDataParser

_TIME_RE = re.compile(r"\d\s*(?:am|pm)\b|\d:\d\d|\bnoon\b|\bmidnight\b", re.I)
# A time with nothing that names a day ("3pm", "at 15:30", "no, 10am"): on the confirmation
# screen it corrects the time of the day already proposed.
_TIME_ONLY_RE = re.compile(
    r"^(?:\W*(?:no|nope|sorry|wait|oops|actually|i mean|make (?:it|that)|it'?s|it is|at)\b)*"
    r"\W*(?:\d{1,2}(?:[:.h]\d\d)?\s*(?:am|pm)?|noon|midnight)\W*$",
    re.I,
)
# What people put around a date when they correct themselves: "no wait, it's Thursday".
_FILLER_RE = re.compile(
    r"^(?:\W*(?:no|nope|sorry|wait|oops|oh|actually|i mean|make (?:it|that)|it'?s|it is|"
    r"the interview is|interview is|its|um+|er+m*|correction)\b)+\W*",
    re.I,
)
_DAY_WORD_RE = re.compile(
    r"\b(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\b|\b(?:today|tomorrow|tonight)\b|"
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s*\d",
    re.I,
)
MAX_INPUT = 200  # nobody types a date in more; longer text is something else
# "at 2", "at 10": an hour with nothing after it, which dateparser reads as a day or a month
# ("Thursday at 2" became 4 February). Interviews happen in the daytime: 1 to 7 is afternoon.
_BARE_HOUR_RE = re.compile(r"\bat\s+([01]?\d|2[0-3])\b(?!\s*(?:[:.h]\d|[ap]\.?m\b|o'?clock))", re.I)
AFTERNOON_UNTIL = 7  # "at 7" is 19:00, "at 8" is 08:00
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
# "at 24", "at 30": no hour, yet dateparser made "Friday at 24" the 24th. Asked again instead.
_NOT_AN_HOUR_RE = re.compile(
    rf"\bat\s+(?:2[4-9]|[3-9]\d)\b(?!\s*(?:[:.h]\d|[ap]\.?m\b|o'?clock|(?:of\s+)?(?:{_MONTHS})))",
    re.I,
)
# "the 12th" with no month, which dateparser reads as December. It means the next 12th.
_ORDINAL_RE = re.compile(
    rf"\b(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)\b(?!\W*(?:of\s+)?(?:{_MONTHS}))", re.I
)
_MONTH_BEFORE_RE = re.compile(rf"(?:{_MONTHS})[a-z]*\.?\s*$", re.I)


@dataclass(frozen=True)
class Parsed:
    """A moment in UTC; `has_time` is False when only a day was given ("friday")."""

    moment: datetime
    has_time: bool


def parse_when(
    text: str, now: datetime, zone: ZoneInfo, day: datetime | None = None
) -> Parsed | None:
    """Parse "Tue 3pm", "March 3 10:30", "in 2 days" in the user's zone.

    `day` (aware) is the date already chosen ("Tomorrow" button): a bare time lands on it.
    """
    text = " ".join(text.split())
    if not text or len(text) > MAX_INPUT or not re.search(r"\d|[a-z]{3}", text, re.I):
        return None
    if _NOT_AN_HOUR_RE.search(text) or any(
        not 1 <= int(m.group(1)) <= 31 for m in _ORDINAL_RE.finditer(text)
    ):
        return None  # "at 24", "the 45th": no time, no day; dateparser would make one up
    text = _BARE_HOUR_RE.sub(_bare_hour, text)
    text = _name_the_month(text, now.astimezone(zone).date())
    parsed = _parse(text, now, zone, day)
    if parsed is None:
        # "no wait, it's Thursday": drop the words around the date, else look for it in the text.
        stripped = _FILLER_RE.sub("", text)
        if stripped and stripped != text:
            parsed = _parse(stripped, now, zone, day)
        if parsed is None:
            found = _find_date_text(stripped, now, zone)
            if found is not None and found != text:
                parsed = _parse(found, now, zone, day)
    return parsed


def warm_up(now: datetime) -> None:
    """Load what the first parse would (dateparser's language data, its search, the zone
    tables): about 0.2 s that the first candidate to type a time after a start would wait."""
    parse_when("maybe next friday at 3pm", now, ZoneInfo("UTC"))
    resolve_timezone("I'm in Toronto", now)


def _bare_hour(match: re.Match[str]) -> str:
    hour = int(match.group(1))
    if 1 <= hour <= AFTERNOON_UNTIL:
        hour += 12
    return f"at {hour:02d}:00"


def _name_the_month(text: str, today: date) -> str:
    """ "the 12th" -> "12 March 2026": the next 12th from today (today's included)."""

    def named(match: re.Match[str]) -> str:
        day = int(match.group(1))  # 1-31: parse_when turned the others away
        if _MONTH_BEFORE_RE.search(text[: match.start()]):
            return match.group(0)  # "March 12th" names its month already
        year, month = today.year, today.month
        if day < today.day:
            year, month = _next_month(year, month)
        while day > calendar.monthrange(year, month)[1]:  # "the 31st" in April: in May
            year, month = _next_month(year, month)
        return f"{day} {calendar.month_name[month]} {year}"

    return _ORDINAL_RE.sub(named, text)


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def is_time_only(text: str) -> bool:
    """True for a bare time ("3pm", "no, 10:30"): it names no day."""
    return bool(_TIME_ONLY_RE.match(" ".join(text.split())))


def _find_date_text(text: str, now: datetime, zone: ZoneInfo) -> str | None:
    """The part of a sentence that holds a date, if dateparser finds exactly one."""
    if not text:
        return None
    # Imported when first needed: it loads language data (0.1 s) that a start can do without.
    from dateparser.search import search_dates

    try:
        found = search_dates(
            text,
            languages=["en"],
            settings={"RELATIVE_BASE": now.astimezone(zone).replace(tzinfo=None)},
        )
    except (ValueError, OverflowError):
        return None
    if not found or len(found) != 1:
        return None
    fragment = found[0][0]
    # Inside a sentence dateparser also "finds" dates in stray numbers and words ("now", "a",
    # "12th at 10" read as 10 December): trust only a fragment that names a day.
    return fragment if _DAY_WORD_RE.search(fragment) else None


def _parse(text: str, now: datetime, zone: ZoneInfo, day: datetime | None) -> Parsed | None:
    # A bare time ("3pm") lands on the day already chosen; words that name a day ("tomorrow
    # at 3pm" after the "Tomorrow" button) count from today, as they do everywhere else.
    base = now.astimezone(zone)
    if day is not None and not _DAY_WORD_RE.search(text):
        base = day.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    parser = DateDataParser(
        languages=["en"],
        settings={
            "PREFER_DATES_FROM": "future",
            "RETURN_TIME_AS_PERIOD": True,
            "RELATIVE_BASE": base.replace(tzinfo=None),
        },
    )
    try:
        data = parser.get_date_data(text)
    except (ValueError, OverflowError):
        return None
    if data.date_obj is None:
        return None
    naive = data.date_obj.replace(tzinfo=None)
    # dateparser reports period "day" for relative dates even with a time ("tomorrow 10am").
    has_time = data.period == "time" or bool(_TIME_RE.search(text))
    if not has_time:
        naive = naive.replace(hour=0, minute=0, second=0, microsecond=0)
    # A bare number ("1") parses as a day of some month; nobody means that.
    if not has_time and text.strip().isdigit():
        return None
    moment = naive.replace(tzinfo=zone).astimezone(UTC)
    return Parsed(moment, has_time)


# Cities people type that are not the last part of an IANA name.
_ALIASES = {
    "nyc": "America/New_York",
    "new york city": "America/New_York",
    "sf": "America/Los_Angeles",
    "san francisco": "America/Los_Angeles",
    "la": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "boston": "America/New_York",
    "washington": "America/New_York",
    "miami": "America/New_York",
    "atlanta": "America/New_York",
    "dallas": "America/Chicago",
    "houston": "America/Chicago",
    "austin": "America/Chicago",
    "washington dc": "America/New_York",
    "munich": "Europe/Berlin",
    "frankfurt": "Europe/Berlin",
    "hamburg": "Europe/Berlin",
    "milan": "Europe/Rome",
    "barcelona": "Europe/Madrid",
    "manchester": "Europe/London",
    "edinburgh": "Europe/London",
    "st petersburg": "Europe/Moscow",
    "kiev": "Europe/Kyiv",
    "mumbai": "Asia/Kolkata",
    "delhi": "Asia/Kolkata",
    "new delhi": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata",
    "bengaluru": "Asia/Kolkata",
    "beijing": "Asia/Shanghai",
    "sydney": "Australia/Sydney",
    "melbourne": "Australia/Melbourne",
    "toronto": "America/Toronto",
    "montreal": "America/Toronto",
    "vancouver": "America/Vancouver",
    "sao paulo": "America/Sao_Paulo",
    "tel aviv": "Asia/Jerusalem",
    "dubai": "Asia/Dubai",
    "new jersey": "America/New_York",
    "california": "America/Los_Angeles",
    "texas": "America/Chicago",
    "utc": "UTC",
    "gmt": "UTC",
    # The names people in North America give their zone ("I'm on central time"): the zone's
    # main city, with its summer time. "Central European time" is Europe's.
    "central time": "America/Chicago",
    "us central": "America/Chicago",
    "central standard time": "America/Chicago",
    "eastern time": "America/New_York",
    "us eastern": "America/New_York",
    "eastern standard time": "America/New_York",
    "mountain time": "America/Denver",
    "us mountain": "America/Denver",
    "mountain standard time": "America/Denver",
    "pacific time": "America/Los_Angeles",
    "us pacific": "America/Los_Angeles",
    "pacific standard time": "America/Los_Angeles",
    "central european time": "Europe/Berlin",
}

# Zone "cities" that are also common words or names: not taken from inside a sentence
# ("I'm in the west", "meeting Regina at 3"), only when typed on their own.
_NOT_IN_SENTENCES = frozenset(
    {
        "act", "atka", "christmas", "currie", "darwin", "dawson", "east", "easter", "eucla",
        "jersey", "lindeman", "male", "midway", "nome", "north", "regina", "resolute", "reunion",
        "south", "stanley", "thule", "victoria", "virgin", "wake", "west",
    }
)  # fmt: skip
_REGIONS = (
    "Africa/",
    "America/",
    "Asia/",
    "Atlantic/",
    "Australia/",
    "Europe/",
    "Indian/",
    "Pacific/",
)
_WORD_RE = re.compile(r"[a-z]+")

# Zones offered when the user tells us their local time: one well-known zone per offset.
_BY_OFFSET = [
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Halifax",
    "America/Sao_Paulo",
    "Atlantic/Azores",
    "Europe/London",
    "Europe/Paris",
    "Europe/Athens",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Adelaide",
    "Australia/Sydney",
    "Pacific/Noumea",
    "Pacific/Auckland",
    "America/St_Johns",
    "Asia/Tehran",
    "Asia/Kabul",
]


@cache
def _zones_by_key() -> dict[str, str]:
    index: dict[str, str] = {}
    for name in sorted(available_timezones()):
        if name.startswith(("posix/", "right/")) or name in ("localtime", "Factory"):
            continue
        index.setdefault(name.lower(), name)
        city = name.rsplit("/", 1)[-1].lower().replace("_", " ")
        # Prefer canonical continent zones over legacy aliases ("US/...", "Etc/...").
        if "/" in name and not name.startswith(("US/", "Etc/", "SystemV/")):
            index.setdefault(city, name)
    return index


@cache
def _places() -> dict[str, str]:
    """Place names to find inside a sentence: cities of the continental zones, and aliases."""
    index: dict[str, str] = {}
    for name in sorted(available_timezones()):
        parts = name.split("/")
        if len(parts) == 2 and name.startswith(_REGIONS):
            city = parts[1].lower().replace("_", " ")
            if city not in _NOT_IN_SENTENCES:
                index.setdefault(city, name)
    index.update(_ALIASES)
    return index


def _place_in(text: str) -> str | None:
    """The zone of the first place named in a sentence ("I'm in Toronto"), longest name first
    ("new york" before "york")."""
    words = _WORD_RE.findall(text.lower())
    places = _places()
    for start in range(len(words)):
        for size in (3, 2, 1):  # near the end a slice is shorter: the same name, checked early
            name = " ".join(words[start : start + size])
            if name in places:
                return places[name]
    return None


_OFFSET_RE = re.compile(r"^(?:utc|gmt)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.I)
_CLOCK_RE = re.compile(r"^(\d{1,2})(?::|\.|h)?(\d{2})?\s*(am|pm)?$", re.I)
_EARLIEST = timedelta(hours=-12)  # the offsets in use: UTC-12 ...
_LATEST = timedelta(hours=14)  # ... to UTC+14


def resolve_timezone(text: str, now: datetime) -> str | None:
    """An IANA name, a city, "UTC+3", or the local time now ("14:35", "2:35pm")."""
    raw = " ".join(text.strip().split())
    if not raw or len(raw) > MAX_INPUT:
        return None
    key = raw.lower().replace("_", " ").strip(" .!")
    if key in _ALIASES:
        return _ALIASES[key]
    zones = _zones_by_key()
    for candidate in (key, key.replace(" ", "_")):
        if candidate in zones:
            return zones[candidate]
    match = _OFFSET_RE.match(raw)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        offset = timedelta(hours=hours, minutes=minutes)
        offset = offset if sign == "+" else -offset
        if not _EARLIEST <= offset <= _LATEST:
            return None
        # "UTC+3" stays the fixed offset they typed; "UTC+5:30" is the zone that has it now.
        return _fixed_zone(offset) if minutes == 0 else _listed_zone(offset, now)
    clock = _CLOCK_RE.match(raw)
    if clock:
        hour, minute, half = int(clock.group(1)), int(clock.group(2) or 0), clock.group(3)
        if half:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if half.lower() == "pm" else 0)
        if hour > 23 or minute > 59 or (clock.group(2) is None and not half):
            return None
        # Minute against minute: a typed "14:35" is that whole minute, whatever the seconds
        # (they cancel out).
        utc = now.astimezone(UTC)
        offset = utc.replace(hour=hour, minute=minute) - utc
        # The typed time may be yesterday, today or tomorrow in UTC, and a clock a few minutes
        # off still means a zone: round to the quarter hour. Near the date line two offsets
        # fit ("01:35" at 12:35 UTC is UTC-11 or UTC+13): a well-known zone wins (Auckland in
        # January), else the later one, where more people live (UTC+12, not UTC-12).
        fits = [_quarter(offset + timedelta(days=days)) for days in (-1, 0, 1)]
        fits = [fit for fit in fits if _EARLIEST <= fit <= _LATEST]
        for fit in fits:
            if (name := _listed_zone(fit, now)) is not None:
                return name
        latest = max(fits)
        return _fixed_zone(latest) if latest % timedelta(hours=1) == timedelta(0) else None
    return _place_in(raw)


def _quarter(offset: timedelta) -> timedelta:
    return timedelta(minutes=15 * round(offset.total_seconds() / 900))


def _listed_zone(offset: timedelta, now: datetime) -> str | None:
    """The well-known zone with this offset now, if there is one."""
    for name in _BY_OFFSET:
        if now.astimezone(ZoneInfo(name)).utcoffset() == offset:
            return name
    return None


def _fixed_zone(offset: timedelta) -> str:
    """A whole-hour offset as a zone name. Etc/GMT names have the sign inverted: UTC+3 is
    Etc/GMT-3."""
    hours = int(offset / timedelta(hours=1))
    return "UTC" if hours == 0 else f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"
