"""The knowledge base: content is grounded in the five articles and within the voice limits."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from bot.knowledge.base import (
    DEFAULT_DIR,
    MAX_BODY,
    MAX_LABEL,
    MAX_QUOTE,
    MAX_SUMMARY,
    MAX_TITLE,
    NO_ARGUMENT_OBJECTIONS,
    OBJECTION_IDS,
    KnowledgeBase,
    KnowledgeError,
    load_default,
)

# The five articles live outside the repository (../shared/seeds beside the clone); SEEDS_DIR
# points elsewhere. A clone without them still runs every test that does not read them.
REPO = Path(__file__).resolve().parents[1]
SEEDS_DIR = Path(os.environ.get("SEEDS_DIR") or REPO.parent / "shared" / "seeds")
needs_seeds = pytest.mark.skipif(
    not SEEDS_DIR.is_dir(),
    reason=f"the seed articles are not in {SEEDS_DIR} (set SEEDS_DIR to check against them)",
)

_TYPOGRAPHIC = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'\[])")


def flatten(text: str) -> str:
    """Fold curly quotes to ASCII and collapse whitespace, so quotes match across line wraps."""
    return re.sub(r"\s+", " ", text.translate(_TYPOGRAPHIC)).strip()


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load(DEFAULT_DIR)


# --- sources ---------------------------------------------------------------------------------


@needs_seeds
def test_seeds_directory_exists() -> None:
    assert SEEDS_DIR.is_dir(), f"seed articles expected in {SEEDS_DIR}"


@needs_seeds
def test_every_source_file_exists(kb: KnowledgeBase) -> None:
    for source in kb.sources.values():
        assert (SEEDS_DIR / source.file).is_file(), f"{source.key}: {source.file} not in seeds"


@needs_seeds
def test_sources_cover_all_five_seed_files(kb: KnowledgeBase) -> None:
    seed_files = {p.name for p in SEEDS_DIR.glob("*.txt")}
    assert {s.file for s in kb.sources.values()} == seed_files


def test_source_labels_are_the_agreed_citations(kb: KnowledgeBase) -> None:
    labels = {s.file[:3]: s.label for s in kb.sources.values()}
    assert labels == {
        "000": "An Interview, An Opportunity",
        "001": "The Job Might Surprise You",
        "002": "To Interview or Not To Interview",
        "003": "Don't Want To Go On That Interview? Do It Anyway",
        "004": "Show Up to Your Interview (Even the Job You Don't Want)",
    }


def test_all_five_sources_are_used_by_arguments(kb: KnowledgeBase) -> None:
    used = {a.source.key for a in kb.arguments.values()}
    assert used == set(kb.sources), f"unused sources: {set(kb.sources) - used}"


# --- arguments -------------------------------------------------------------------------------


def test_every_argument_source_exists(kb: KnowledgeBase) -> None:
    for argument in kb.arguments.values():
        assert kb.sources[argument.source.key] is argument.source


def test_argument_count_is_reasonable(kb: KnowledgeBase) -> None:
    assert 25 <= len(kb.arguments) <= 40


def test_argument_titles_and_bodies_within_limits(kb: KnowledgeBase) -> None:
    for a in kb.arguments.values():
        assert len(a.title) <= MAX_TITLE, a.id
        assert not a.title.endswith("."), f"{a.id}: titles are headings, no full stop"
        assert len(a.body) <= MAX_BODY, a.id
        assert 2 <= len(sentences(a.body)) <= 3, f"{a.id}: body should be 2-3 sentences"


@needs_seeds
def test_quotes_are_short_and_verbatim_in_their_seed(kb: KnowledgeBase) -> None:
    seeds: dict[str, str] = {}
    quoted = [a for a in kb.arguments.values() if a.quote is not None]
    assert quoted, "expected a few quoted arguments"
    assert len(quoted) <= len(kb.arguments) // 2, "most arguments should need no quote"
    for a in quoted:
        assert a.quote is not None
        assert len(a.quote) <= MAX_QUOTE, a.id
        assert len(sentences(a.quote)) == 1, f"{a.id}: quote should be one sentence"
        if a.source.file not in seeds:
            seeds[a.source.file] = flatten((SEEDS_DIR / a.source.file).read_text("utf-8"))
        assert flatten(a.quote) in seeds[a.source.file], (
            f"{a.id}: quote not found verbatim in {a.source.file}"
        )


def test_every_argument_answers_some_objection(kb: KnowledgeBase) -> None:
    used = {a.id for o in kb.objections.values() for a in o.arguments}
    assert set(kb.arguments) - used == set()


# --- objections ------------------------------------------------------------------------------


def test_objection_ids_are_exactly_the_fixed_list_in_order(kb: KnowledgeBase) -> None:
    assert tuple(kb.objections) == OBJECTION_IDS


def test_objections_have_enough_arguments(kb: KnowledgeBase) -> None:
    for o in kb.objections.values():
        if o.id in NO_ARGUMENT_OBJECTIONS:
            assert o.arguments == (), o.id
        else:
            assert len(o.arguments) >= 2, o.id


def test_labels_and_summaries_fit(kb: KnowledgeBase) -> None:
    for o in kb.objections.values():
        assert len(o.label) <= MAX_LABEL, o.id
        assert len(o.summary) <= MAX_SUMMARY, o.id
    assert len({o.label for o in kb.objections.values()}) == len(kb.objections)


def test_honest_exceptions_are_offered(kb: KnowledgeBase) -> None:
    assert "exception_content" in {a.id for a in kb.objection("not_looking").arguments}
    assert "exception_red_flag" in {a.id for a in kb.objection("bad_company").arguments}


def test_examples_are_plentiful_and_unique(kb: KnowledgeBase) -> None:
    seen: dict[str, str] = {}
    for o in kb.objections.values():
        assert len(o.examples) >= 40, o.id
        for example in o.examples:
            key = flatten(example).lower()
            assert key not in seen, f"{example!r} in both {seen[key]} and {o.id}"
            seen[key] = o.id


# --- coaching --------------------------------------------------------------------------------


def test_coaching_sections_have_the_expected_size(kb: KnowledgeBase) -> None:
    c = kb.coaching
    assert 5 <= len(c.checklist) <= 7
    assert 4 <= len(c.gains) <= 5
    assert len(c.exceptions) >= 3
    assert 3 <= len(c.reflection) <= 4
    assert 2 <= len(c.pep) <= 3
    assert len(c.scam_points) >= 4
    for item in (*c.checklist, *c.gains, *c.exceptions, *c.reflection):
        assert 1 <= len(sentences(item.body)) <= 2, item.title


def test_templates_are_short_plain_text(kb: KnowledgeBase) -> None:
    c = kb.coaching
    assert len(c.withdrawal) <= 400
    assert len(c.thank_you) <= 400
    assert len(c.linkedin_note) <= 280
    for text in (c.withdrawal, c.thank_you, c.linkedin_note):
        assert "{{" not in text and "<" not in text


def test_scam_warning_is_grounded_in_tandym(kb: KnowledgeBase) -> None:
    assert kb.coaching.scam_source.key == "tandym"
    points = " ".join(kb.coaching.scam_points).lower()
    for needle in ("password", "financial", "money", "software", "whatsapp"):
        assert needle in points


def test_load_default_is_cached() -> None:
    assert load_default() is load_default()


# --- validation ------------------------------------------------------------------------------


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(DEFAULT_DIR, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text, f"fixture drift: {old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), "utf-8")


def test_copied_content_loads(content_dir: Path) -> None:
    assert KnowledgeBase.load(content_dir).objections.keys() == set(OBJECTION_IDS)


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "arguments.toml",
            'source = "surprise"',
            "source = surprise",
            "arguments.toml: invalid TOML",
        ),
        ("arguments.toml", 'source = "surprise"', 'source = "nope"', "unknown source 'nope'"),
        ("arguments.toml", 'quote = "', 'qoute = "', "unknown field(s) qoute"),
        ("arguments.toml", 'title = "Low-risk practice"', f'title = "{"x" * 41}"', "at most 40"),
        (
            "objections.toml",
            '"low_risk_practice",',
            '"low_risk_practise",',
            "unknown argument id 'low_risk_practise'",
        ),
        ("objections.toml", "[objection.nervous]", "[objection.anxious]", "missing objection"),
        ("objections.toml", 'label = "I\'m nervous"', f'label = "{"n" * 25}"', "at most 24"),
        ("sources.toml", "[sources.tandym]", "[sources.Tandym Group]", "invalid TOML"),
        ("coaching.toml", 'source = "tandym"\n', 'source = "ghost"\n', "unknown source 'ghost'"),
    ],
)
def test_broken_content_raises_a_clear_error(
    content_dir: Path, file: str, old: str, new: str, message: str
) -> None:
    _edit(content_dir / file, old, new)
    with pytest.raises(KnowledgeError) as excinfo:
        KnowledgeBase.load(content_dir)
    assert message in str(excinfo.value)
    assert str(excinfo.value).startswith(file)


def test_objection_with_a_single_argument_is_rejected(content_dir: Path) -> None:
    path = content_dir / "objections.toml"
    text = path.read_text("utf-8")
    start = text.index("[objection.overqualified]")
    block_start = text.index("arguments = [", start)
    block_end = text.index("]", block_start)
    text = text[:block_start] + 'arguments = ["future_role"' + text[block_end:]
    path.write_text(text, "utf-8")
    with pytest.raises(KnowledgeError, match=r"overqualified.*at least 2"):
        KnowledgeBase.load(content_dir)


def test_missing_file_is_reported(content_dir: Path) -> None:
    (content_dir / "coaching.toml").unlink()
    with pytest.raises(KnowledgeError, match=r"coaching.toml: file not found"):
        KnowledgeBase.load(content_dir)


def test_knowledge_error_is_a_value_error() -> None:
    assert issubclass(KnowledgeError, ValueError)
