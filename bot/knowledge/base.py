"""The knowledge base: sources, arguments, objections and coaching content, loaded from TOML.

The content lives in ``prompts/knowledge/*.toml`` so that writers can edit it without touching
code. Everything is validated at load time, so a typo in the content fails at start-up (and in the
tests) with a message that names the file and the entry, instead of surfacing mid-conversation.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "prompts" / "knowledge"

# Fixed objection ids, in the order the buttons are shown. The engine and the classifier rely on
# these; the TOML must define exactly this set.
OBJECTION_IDS: tuple[str, ...] = (
    "not_a_fit",
    "not_looking",
    "overqualified",
    "nervous",
    "other_offer",
    "wont_get_offer",
    "waste_of_time",
    "bad_company",
    "scam_suspected",
    "unpaid_task",
    "other",
)
# Objections answered by a dedicated flow rather than by arguments.
NO_ARGUMENT_OBJECTIONS = frozenset({"other", "scam_suspected", "unpaid_task"})
# What a candidate may type instead of a worry (intents.toml): decisions and overall feelings.
# The classifier reads them beside the objections; the engine acts on them first.
INTENT_IDS: tuple[str, ...] = (
    "decide_go",
    "decide_unsure",
    "decide_pass",
    "signed_elsewhere",
    "mixed_feelings",
)
# Everything the classifier can answer.
LABELS: tuple[str, ...] = OBJECTION_IDS + INTENT_IDS
# The honest exceptions shown before any argument (coaching.toml [exceptions.<id>]).
EXCEPTION_IDS: tuple[str, ...] = ("content", "red_flag", "signed")

# Limits from the content guide: titles are bold one-liners, bodies readable on a phone,
# button labels fit Telegram's inline keyboard without truncation.
MAX_TITLE = 40
MAX_BODY = 350
MAX_QUOTE = 160
MAX_LABEL = 24
MAX_SUMMARY = 40
MAX_ITEM_BODY = 240
MAX_TEMPLATE = 400
MAX_LINKEDIN_NOTE = 280  # LinkedIn allows 300; leave room for the candidate's own edits.
MAX_PEP = 160
MAX_SCAM_POINT = 80
MAX_ADVICE = 300
MAX_ACKNOWLEDGE = 120

_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class KnowledgeError(ValueError):
    """The knowledge base files are missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Source:
    key: str
    label: str
    by: str
    file: str
    year: int | None


# Our own advice and wording, shown as such: never passed off as one of the articles.
OURS = Source(key="ours", label="Interview Coach", by="our own advice", file="", year=None)


@dataclass(frozen=True)
class Caveat:
    text: str
    source: Source


@dataclass(frozen=True)
class Argument:
    id: str
    title: str
    body: str
    quote: str | None
    source: Source
    point: str  # what it argues, so that the first few for one worry say different things
    caveat: Caveat | None = None


@dataclass(frozen=True)
class Objection:
    id: str
    label: str
    summary: str
    arguments: tuple[Argument, ...]
    examples: tuple[str, ...]
    acknowledge: str | None = None  # one line that hears the feeling before any argument


@dataclass(frozen=True)
class Intent:
    id: str
    summary: str
    examples: tuple[str, ...]


@dataclass(frozen=True)
class CoachingItem:
    title: str
    body: str | None
    source: Source


@dataclass(frozen=True)
class HonestException:
    """An honest exception: respect first, then at most one line worth knowing."""

    id: str
    title: str
    body: str
    quote: str | None
    source: Source
    worth: Caveat | None


@dataclass(frozen=True)
class PepLine:
    text: str
    source: Source


@dataclass(frozen=True)
class Coaching:
    checklist: tuple[CoachingItem, ...]
    gains: tuple[CoachingItem, ...]
    exceptions: dict[str, HonestException]
    withdrawal: str  # our wording
    reschedule_note: str  # our wording
    scam_points: tuple[str, ...]
    scam_source: Source
    steer_clear: tuple[str, ...]  # our advice
    counter_offer: str  # our advice
    unpaid_task: str  # our advice
    reflection: tuple[CoachingItem, ...]
    thank_you: str
    linkedin_note: str
    followup_note: str  # the LinkedIn note a week later
    follow_up_source: Source  # the article behind the thank-you and LinkedIn notes
    pep: tuple[PepLine, ...]


@dataclass(frozen=True)
class KnowledgeBase:
    sources: dict[str, Source]
    arguments: dict[str, Argument]
    objections: dict[str, Objection]  # in file order
    intents: dict[str, Intent]
    coaching: Coaching

    @classmethod
    def load(cls, directory: Path) -> KnowledgeBase:
        """Read and validate the five TOML files in ``directory``."""
        sources = _parse_sources(_read(directory / "sources.toml"))
        arguments = _parse_arguments(_read(directory / "arguments.toml"), sources)
        objections = _parse_objections(_read(directory / "objections.toml"), arguments)
        intents = _parse_intents(_read(directory / "intents.toml"))
        coaching = _parse_coaching(_read(directory / "coaching.toml"), sources)
        return cls(
            sources=sources,
            arguments=arguments,
            objections=objections,
            intents=intents,
            coaching=coaching,
        )

    def training_examples(self) -> list[tuple[str, str]]:
        """(text, label) for the classifier: every objection's and intent's phrasings."""
        items: list[Objection | Intent] = [*self.objections.values(), *self.intents.values()]
        return [(example, item.id) for item in items for example in item.examples]

    def summary(self, label: str) -> str:
        """How "Did you mean…?" names an objection or an intent."""
        if label in self.intents:
            return self.intents[label].summary
        return self.objection(label).summary

    def objection(self, objection_id: str) -> Objection:
        try:
            return self.objections[objection_id]
        except KeyError:
            raise KeyError(f"unknown objection {objection_id!r}") from None


@functools.cache
def load_default() -> KnowledgeBase:
    """The knowledge base shipped with the bot, loaded once per process."""
    return KnowledgeBase.load(DEFAULT_DIR)


# --- parsing helpers -------------------------------------------------------------------------


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise KnowledgeError(f"{path.name}: file not found in {path.parent}") from None
    except tomllib.TOMLDecodeError as exc:
        raise KnowledgeError(f"{path.name}: invalid TOML: {exc}") from None


def _check_keys(
    where: str, table: Mapping[str, Any], required: set[str], optional: set[str]
) -> None:
    # Unknown keys are rejected so that a misspelt field ("qoute") is not silently ignored.
    missing = required - table.keys()
    if missing:
        raise KnowledgeError(f"{where}: missing {', '.join(sorted(missing))}")
    unknown = table.keys() - required - optional
    if unknown:
        raise KnowledgeError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")


def _text(where: str, value: Any, max_len: int) -> str:
    if not isinstance(value, str):
        raise KnowledgeError(f"{where}: expected a string, got {type(value).__name__}")
    if not value.strip():
        raise KnowledgeError(f"{where}: must not be empty")
    if value != value.strip():
        raise KnowledgeError(f"{where}: has leading or trailing whitespace")
    if len(value) > max_len:
        raise KnowledgeError(f"{where}: {len(value)} characters, at most {max_len} allowed")
    return value


def _optional(where: str, raw: Mapping[str, Any], key: str, max_len: int) -> str | None:
    return None if key not in raw else _text(f"{where}.{key}", raw[key], max_len)


def _ident(where: str, value: Any) -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise KnowledgeError(f"{where}: {value!r} is not a snake_case id")
    return value


def _source(where: str, value: Any, sources: Mapping[str, Source], *, ours: bool = False) -> Source:
    """A key of sources.toml; "ours" too where our own advice is allowed."""
    if ours and value == OURS.key:
        return OURS
    if not isinstance(value, str) or value not in sources:
        known = ", ".join([*sources, *([OURS.key] if ours else [])])
        raise KnowledgeError(f"{where}: unknown source {value!r} (known: {known})")
    return sources[value]


def _caveat(
    where: str, raw: Mapping[str, Any], text_key: str, sources: Mapping[str, Source]
) -> Caveat | None:
    """An optional line with its own source: `<text_key>` and `<text_key>_source`."""
    source_key = f"{text_key}_source"
    if text_key not in raw and source_key not in raw:
        return None
    if text_key not in raw or source_key not in raw:
        raise KnowledgeError(f"{where}: {text_key} and {source_key} go together")
    return Caveat(
        text=_text(f"{where}.{text_key}", raw[text_key], MAX_ADVICE),
        source=_source(f"{where}.{source_key}", raw[source_key], sources, ours=True),
    )


def _table_list(where: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        raise KnowledgeError(f"{where}: expected a non-empty array of tables")
    return value


def _parse_sources(data: dict[str, Any]) -> dict[str, Source]:
    _check_keys("sources.toml", data, {"sources"}, set())
    table = data["sources"]
    if not isinstance(table, dict) or not table:
        raise KnowledgeError("sources.toml: [sources.<key>] tables expected")
    sources: dict[str, Source] = {}
    for key, raw in table.items():
        where = f"sources.toml: [sources.{key}]"
        _ident(where, key)
        if not isinstance(raw, dict):
            raise KnowledgeError(f"{where}: expected a table")
        _check_keys(where, raw, {"label", "by", "file"}, {"year"})
        year = raw.get("year")
        if year is not None and (not isinstance(year, int) or isinstance(year, bool)):
            raise KnowledgeError(f"{where}.year: expected an integer year, got {year!r}")
        sources[key] = Source(
            key=key,
            label=_text(f"{where}.label", raw["label"], 80),
            by=_text(f"{where}.by", raw["by"], 80),
            file=_text(f"{where}.file", raw["file"], 200),
            year=year,
        )
    return sources


def _parse_arguments(data: dict[str, Any], sources: Mapping[str, Source]) -> dict[str, Argument]:
    _check_keys("arguments.toml", data, {"argument"}, set())
    arguments: dict[str, Argument] = {}
    for n, raw in enumerate(_table_list("arguments.toml: [[argument]]", data["argument"]), 1):
        where = f"arguments.toml: argument #{n}"
        _check_keys(
            where,
            raw,
            {"id", "point", "title", "body", "source"},
            {"quote", "caveat", "caveat_source"},
        )
        arg_id = _ident(f"{where}.id", raw["id"])
        where = f"arguments.toml: argument {arg_id!r}"
        if arg_id in arguments:
            raise KnowledgeError(f"{where}: duplicate id")
        arguments[arg_id] = Argument(
            id=arg_id,
            title=_text(f"{where}.title", raw["title"], MAX_TITLE),
            body=_text(f"{where}.body", raw["body"], MAX_BODY),
            quote=_optional(where, raw, "quote", MAX_QUOTE),
            source=_source(f"{where}.source", raw["source"], sources),
            point=_ident(f"{where}.point", raw["point"]),
            caveat=_caveat(where, raw, "caveat", sources),
        )
    return arguments


def _parse_objections(
    data: dict[str, Any], arguments: Mapping[str, Argument]
) -> dict[str, Objection]:
    _check_keys("objections.toml", data, {"objection"}, set())
    table = data["objection"]
    if not isinstance(table, dict):
        raise KnowledgeError("objections.toml: [objection.<id>] tables expected")
    missing = [oid for oid in OBJECTION_IDS if oid not in table]
    if missing:
        raise KnowledgeError(f"objections.toml: missing objection(s) {', '.join(missing)}")
    unknown = [oid for oid in table if oid not in OBJECTION_IDS]
    if unknown:
        raise KnowledgeError(
            f"objections.toml: unknown objection(s) {', '.join(unknown)} "
            f"(the ids are fixed: {', '.join(OBJECTION_IDS)})"
        )
    objections: dict[str, Objection] = {}
    for oid, raw in table.items():
        where = f"objections.toml: [objection.{oid}]"
        if not isinstance(raw, dict):
            raise KnowledgeError(f"{where}: expected a table")
        _check_keys(where, raw, {"label", "summary", "arguments", "examples"}, {"acknowledge"})
        arg_ids = raw["arguments"]
        if not isinstance(arg_ids, list):
            raise KnowledgeError(f"{where}.arguments: expected a list of argument ids")
        if oid in NO_ARGUMENT_OBJECTIONS:
            if arg_ids:
                raise KnowledgeError(f"{where}.arguments: must be empty (handled by its own flow)")
        elif len(arg_ids) < 2:
            raise KnowledgeError(f"{where}.arguments: at least 2 argument ids required")
        resolved: list[Argument] = []
        for arg_id in arg_ids:
            if arg_id not in arguments:
                raise KnowledgeError(f"{where}.arguments: unknown argument id {arg_id!r}")
            if arguments[arg_id] in resolved:
                raise KnowledgeError(f"{where}.arguments: {arg_id!r} listed twice")
            resolved.append(arguments[arg_id])
        objections[oid] = Objection(
            id=oid,
            label=_text(f"{where}.label", raw["label"], MAX_LABEL),
            summary=_text(f"{where}.summary", raw["summary"], MAX_SUMMARY),
            arguments=tuple(resolved),
            examples=_examples(where, raw["examples"]),
            acknowledge=_optional(where, raw, "acknowledge", MAX_ACKNOWLEDGE),
        )
    return objections


def _examples(where: str, examples: Any) -> tuple[str, ...]:
    if not isinstance(examples, list) or not examples:
        raise KnowledgeError(f"{where}.examples: expected a non-empty list of phrasings")
    return tuple(_text(f"{where}.examples", e, 500) for e in examples)


def _parse_intents(data: dict[str, Any]) -> dict[str, Intent]:
    _check_keys("intents.toml", data, {"intent"}, set())
    table = data["intent"]
    if not isinstance(table, dict):
        raise KnowledgeError("intents.toml: [intent.<id>] tables expected")
    if set(table) != set(INTENT_IDS):
        raise KnowledgeError(
            f"intents.toml: expected exactly the intents {', '.join(INTENT_IDS)}, "
            f"got {', '.join(table)}"
        )
    intents: dict[str, Intent] = {}
    for iid in INTENT_IDS:
        where = f"intents.toml: [intent.{iid}]"
        raw = table[iid]
        if not isinstance(raw, dict):
            raise KnowledgeError(f"{where}: expected a table")
        _check_keys(where, raw, {"summary", "examples"}, set())
        intents[iid] = Intent(
            id=iid,
            summary=_text(f"{where}.summary", raw["summary"], MAX_SUMMARY),
            examples=_examples(where, raw["examples"]),
        )
    return intents


def _items(
    where: str, value: Any, sources: Mapping[str, Source], *, body: bool = True
) -> tuple[CoachingItem, ...]:
    """A list of items; `body=False` for lists of short instructions (titles only)."""
    items = []
    for n, raw in enumerate(_table_list(where, value), 1):
        at = f"{where} #{n}"
        _check_keys(at, raw, {"title", "source", *(["body"] if body else [])}, set())
        items.append(
            CoachingItem(
                title=_text(f"{at}.title", raw["title"], MAX_TITLE),
                body=_text(f"{at}.body", raw["body"], MAX_ITEM_BODY) if body else None,
                source=_source(f"{at}.source", raw["source"], sources),
            )
        )
    return tuple(items)


def _exceptions(
    where: str, value: Any, sources: Mapping[str, Source]
) -> dict[str, HonestException]:
    if not isinstance(value, dict) or set(value) != set(EXCEPTION_IDS):
        raise KnowledgeError(f"{where}: expected [exceptions.<id>] for {', '.join(EXCEPTION_IDS)}")
    found: dict[str, HonestException] = {}
    for eid in EXCEPTION_IDS:
        raw = value[eid]
        at = f"{where}: [exceptions.{eid}]"
        if not isinstance(raw, dict):
            raise KnowledgeError(f"{at}: expected a table")
        _check_keys(at, raw, {"title", "body", "source"}, {"quote", "worth", "worth_source"})
        found[eid] = HonestException(
            id=eid,
            title=_text(f"{at}.title", raw["title"], MAX_TITLE),
            body=_text(f"{at}.body", raw["body"], MAX_ITEM_BODY),
            quote=_optional(at, raw, "quote", MAX_QUOTE),
            source=_source(f"{at}.source", raw["source"], sources, ours=True),
            worth=_caveat(at, raw, "worth", sources),
        )
    return found


def _strings(where: str, value: Any, max_len: int) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise KnowledgeError(f"{where}: must be a non-empty list")
    return tuple(_text(where, item, max_len) for item in value)


def _parse_coaching(data: dict[str, Any], sources: Mapping[str, Source]) -> Coaching:
    where = "coaching.toml"
    _check_keys(
        where,
        data,
        {
            "checklist",
            "gains",
            "exceptions",
            "advice",
            "withdrawal",
            "reschedule_note",
            "scam",
            "reflection",
            "thank_you",
            "linkedin_note",
            "followup_note",
            "follow_up_source",
            "pep",
        },
        set(),
    )
    scam = data["scam"]
    if not isinstance(scam, dict):
        raise KnowledgeError(f"{where}: [scam] must be a table")
    _check_keys(f"{where}: [scam]", scam, {"points", "source", "steer_clear"}, set())
    advice = data["advice"]
    if not isinstance(advice, dict):
        raise KnowledgeError(f"{where}: [advice] must be a table")
    _check_keys(f"{where}: [advice]", advice, {"counter_offer", "unpaid_task"}, set())
    pep = []
    for n, raw in enumerate(_table_list(f"{where}: [[pep]]", data["pep"]), 1):
        at = f"{where}: [[pep]] #{n}"
        _check_keys(at, raw, {"text", "source"}, set())
        pep.append(
            PepLine(
                text=_text(f"{at}.text", raw["text"], MAX_PEP),
                source=_source(f"{at}.source", raw["source"], sources),
            )
        )
    return Coaching(
        checklist=_items(f"{where}: [[checklist]]", data["checklist"], sources, body=False),
        gains=_items(f"{where}: [[gains]]", data["gains"], sources),
        exceptions=_exceptions(where, data["exceptions"], sources),
        withdrawal=_text(f"{where}: withdrawal", data["withdrawal"], MAX_TEMPLATE),
        reschedule_note=_text(f"{where}: reschedule_note", data["reschedule_note"], MAX_TEMPLATE),
        scam_points=_strings(f"{where}: [scam].points", scam["points"], MAX_SCAM_POINT),
        scam_source=_source(f"{where}: [scam].source", scam["source"], sources),
        steer_clear=_strings(f"{where}: [scam].steer_clear", scam["steer_clear"], MAX_ADVICE),
        counter_offer=_text(
            f"{where}: [advice].counter_offer", advice["counter_offer"], MAX_ADVICE
        ),
        unpaid_task=_text(f"{where}: [advice].unpaid_task", advice["unpaid_task"], MAX_ADVICE),
        reflection=_items(f"{where}: [[reflection]]", data["reflection"], sources),
        thank_you=_text(f"{where}: thank_you", data["thank_you"], MAX_TEMPLATE),
        linkedin_note=_text(f"{where}: linkedin_note", data["linkedin_note"], MAX_LINKEDIN_NOTE),
        followup_note=_text(f"{where}: followup_note", data["followup_note"], MAX_LINKEDIN_NOTE),
        follow_up_source=_source(f"{where}: follow_up_source", data["follow_up_source"], sources),
        pep=tuple(pep),
    )
