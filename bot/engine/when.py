"""Understanding "when": interview times typed in words, and the user's time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    local_now = now.astimezone(zone)
    base = day.astimezone(zone) if day is not None else local_now
    if day is not None:
        base = base.replace(hour=0, minute=0, second=0, microsecond=0)
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
        for size in (3, 2, 1):
            name = " ".join(words[start : start + size])
            if len(words) - start >= size and name in places:
                return places[name]
    return None


_OFFSET_RE = re.compile(r"^(?:utc|gmt)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.I)
_CLOCK_RE = re.compile(r"^(\d{1,2})(?::|\.|h)?(\d{2})?\s*(am|pm)?$", re.I)


def resolve_timezone(text: str, now: datetime) -> str | None:
    """An IANA name, a city, "UTC+3", or the local time now ("14:35", "2:35pm")."""
    raw = " ".join(text.strip().split())
    if not raw or len(raw) > MAX_INPUT:
        return None
    key = raw.lower().replace("_", " ").strip(" .!")
    if key in _ALIASES:
        return _ALIASES[key]
    zones = _zones_by_key()
    for candidate in (raw.lower(), key, key.replace(" ", "_")):
        if candidate in zones:
            return zones[candidate]
    match = _OFFSET_RE.match(raw)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if minutes == 0 and hours <= 14:
            # Etc/GMT names have the sign inverted: UTC+3 is Etc/GMT-3.
            return "UTC" if hours == 0 else f"Etc/GMT{'-' if sign == '+' else '+'}{hours}"
        return _zone_for_offset(
            timedelta(hours=hours, minutes=minutes) * (1 if sign == "+" else -1), now
        )
    clock = _CLOCK_RE.match(raw)
    if clock:
        hour, minute, half = int(clock.group(1)), int(clock.group(2) or 0), clock.group(3)
        if half:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if half.lower() == "pm" else 0)
        if hour > 23 or minute > 59 or (clock.group(2) is None and not half):
            return None
        utc = now.astimezone(UTC)
        local = utc.replace(hour=hour, minute=minute, second=0, microsecond=0)
        offset = local - utc.replace(second=0, microsecond=0)
        # Bring into -12h..+14h, then round to the nearest quarter hour.
        while offset > timedelta(hours=14):
            offset -= timedelta(days=1)
        while offset < timedelta(hours=-12):
            offset += timedelta(days=1)
        quarters = round(offset.total_seconds() / 900)
        return _zone_for_offset(timedelta(seconds=quarters * 900), now)
    return _place_in(raw)


def _zone_for_offset(offset: timedelta, now: datetime) -> str | None:
    for name in _BY_OFFSET:
        if now.astimezone(ZoneInfo(name)).utcoffset() == offset:
            return name
    if offset.total_seconds() % 3600 == 0 and -12 <= offset.total_seconds() / 3600 <= 14:
        hours = int(offset.total_seconds() // 3600)
        return "UTC" if hours == 0 else f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"
    return None
