"""The objection classifier, evaluated on phrasings it never trains on.

Two sets, both never trained on:
- validation (`tests/data/objections_heldout.tsv`): the thresholds and C in classifier.py were
  tuned on it, so its accuracy is a validation figure, optimistic by construction;
- test (`tests/data/objections_test.tsv`): written apart and never looked at while tuning; its
  accuracy is the honest estimate. Tune on validation only; if the test set is ever used to
  choose anything, write a new one.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import shutil
import subprocess
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from bot.knowledge.base import DEFAULT_DIR, INTENT_IDS, LABELS, KnowledgeBase
from bot.knowledge.classifier import (
    MAX_CHARS,
    Alternative,
    Classification,
    ObjectionClassifier,
    default_classifier,
    interpret,
    normalise,
)
from bot.knowledge.cli import classify_main
from bot.knowledge.linear import Analyzer, LinearTextModel, export

HELDOUT = Path(__file__).parent / "data" / "objections_heldout.tsv"  # validation: tuned on
TEST_SET = Path(__file__).parent / "data" / "objections_test.tsv"  # test: never tuned on
# Product requirement: at least 4 typed messages in 5 read right, on phrasings nobody tuned on.
TEST_ACCURACY_FLOOR = 0.80


def load_tsv(path: Path) -> list[tuple[str, str]]:
    """(label, text) rows; the first line is a header."""
    lines = path.read_text("utf-8").splitlines()
    assert lines[0] == "label\ttext"
    rows = []
    for n, line in enumerate(lines[1:], 2):
        label, sep, text = line.partition("\t")
        assert sep and text.strip(), f"{path.name}:{n}: expected label<TAB>text"
        assert label in LABELS, f"{path.name}:{n}: unknown label {label!r}"
        rows.append((label, text))
    return rows


def load_heldout() -> list[tuple[str, str]]:
    return load_tsv(HELDOUT)


def _tokens(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z0-9']+", normalise(text)))


def near_duplicate(ta: frozenset[str], tb: frozenset[str]) -> bool:
    """Same words, mostly the same words, or one word added ("hi" vs "hi bot")."""
    if ta == tb:
        return True
    small, big = sorted((ta, tb), key=len)
    return len(ta & tb) / len(ta | tb) >= 0.75 or (small <= big and len(big - small) <= 1)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load(DEFAULT_DIR)


@pytest.fixture(scope="module")
def classifier(kb: KnowledgeBase) -> ObjectionClassifier:
    return ObjectionClassifier.from_knowledge(kb)


@pytest.fixture(scope="module")
def heldout() -> list[tuple[str, str]]:
    return load_heldout()


@pytest.fixture(scope="module")
def test_set() -> list[tuple[str, str]]:
    return load_tsv(TEST_SET)


# --- the held-out set ------------------------------------------------------------------------


def test_heldout_covers_every_objection(heldout: list[tuple[str, str]]) -> None:
    counts = Counter(label for label, _ in heldout)
    assert set(counts) == set(LABELS)
    assert all(n >= 20 for n in counts.values()), counts
    assert len(heldout) >= 200


def test_heldout_is_disjoint_from_training(
    kb: KnowledgeBase, heldout: list[tuple[str, str]]
) -> None:
    training = [e for e, _ in kb.training_examples()]
    assert len(training) > sum(len(o.examples) for o in kb.objections.values())
    exact = {normalise(e) for e in training}
    assert not [t for _, t in heldout if normalise(t) in exact]
    train_tokens = [(e, _tokens(e)) for e in training]
    held_tokens = [(t, _tokens(t)) for _, t in heldout]
    near = [(t, e) for t, th in held_tokens for e, te in train_tokens if near_duplicate(th, te)]
    assert not near, f"held-out lines too close to training examples: {near[:5]}"


def test_heldout_has_no_internal_duplicates(heldout: list[tuple[str, str]]) -> None:
    texts = [normalise(t) for _, t in heldout]
    assert len(texts) == len(set(texts))


def test_the_test_set_covers_every_label_and_is_disjoint_from_the_rest(
    kb: KnowledgeBase, heldout: list[tuple[str, str]], test_set: list[tuple[str, str]]
) -> None:
    counts = Counter(label for label, _ in test_set)
    assert set(counts) == set(LABELS)
    assert all(n >= 8 for n in counts.values()), counts
    assert len(test_set) >= 150
    texts = [normalise(t) for _, t in test_set]
    assert len(texts) == len(set(texts))
    # Not a copy or a near copy of a training example nor of a validation line.
    others = [e for e, _ in kb.training_examples()] + [t for _, t in heldout]
    other_tokens = [(e, _tokens(e)) for e in others]
    near = [
        (t, e)
        for _, t in test_set
        for e, te in other_tokens
        if normalise(t) == normalise(e) or near_duplicate(_tokens(t), te)
    ]
    assert not near, f"test lines too close to training or validation lines: {near[:5]}"


# --- accuracy --------------------------------------------------------------------------------


def test_heldout_accuracy(
    classifier: ObjectionClassifier,
    heldout: list[tuple[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = [(label, classifier.classify(text)) for label, text in heldout]
    correct = [c.objection == label for label, c in results]
    accuracy = sum(correct) / len(results)

    per_class: dict[str, list[bool]] = {label: [] for label in LABELS}
    for (label, _), ok in zip(results, correct, strict=True):
        per_class[label].append(ok)

    verdicts: dict[str, list[tuple[str, Classification]]] = {
        "confident": [],
        "ambiguous": [],
        "unknown": [],
    }
    for label, c in results:
        verdicts[interpret(c)].append((label, c))

    decisions = [ok for label in INTENT_IDS for ok in per_class[label]]
    decision_accuracy = sum(decisions) / len(decisions)
    with capsys.disabled():
        print(
            f"\nVALIDATION accuracy (objections_heldout.tsv, thresholds tuned on it): "
            f"{accuracy:.3f} ({sum(correct)}/{len(results)})"
        )
        print(
            f"  typed decisions and feelings: {decision_accuracy:.3f} "
            f"({sum(decisions)}/{len(decisions)})"
        )
        for oid, oks in per_class.items():
            print(f"  {oid:17} {sum(oks) / len(oks):.2f}  ({sum(oks)}/{len(oks)})")
        for verdict, rows in verdicts.items():
            share = len(rows) / len(results)
            if verdict == "confident":
                hit = sum(c.objection == label for label, c in rows)
                detail = f"precision {hit / max(len(rows), 1):.2f}"
            elif verdict == "ambiguous":
                hit = sum(label in (c.objection, c.alternatives[0].objection) for label, c in rows)
                detail = f"right answer among the two {hit / max(len(rows), 1):.2f}"
            else:
                detail = "shown all buttons"
            print(f"  {verdict:9} {share:.2f} of messages, {detail}")

    assert accuracy >= 0.85
    assert decision_accuracy >= 0.85
    confident = verdicts["confident"]
    assert sum(c.objection == label for label, c in confident) / len(confident) >= 0.9


def test_test_set_accuracy(
    classifier: ObjectionClassifier,
    test_set: list[tuple[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The honest figure: phrasings never used to train or to tune anything."""
    results = [(label, classifier.classify(text)) for label, text in test_set]
    correct = sum(c.objection == label for label, c in results)
    accuracy = correct / len(results)
    confident = [(label, c) for label, c in results if interpret(c) == "confident"]
    precision = sum(c.objection == label for label, c in confident) / len(confident)
    with capsys.disabled():
        print(
            f"\nTEST accuracy (objections_test.tsv, never tuned on): "
            f"{accuracy:.3f} ({correct}/{len(results)})"
        )
        print(
            f"  confident on {len(confident) / len(results):.2f} of messages, "
            f"precision {precision:.2f}"
        )
    assert accuracy >= TEST_ACCURACY_FLOOR
    # Acting on a wrong reading is the costly mistake: when it is sure, it is right 9 in 10.
    assert precision >= 0.9
    # ...and asking back is a cost too: at least 7 messages in 10 are acted on directly.
    assert len(confident) / len(results) >= 0.7


def test_training_is_quick(kb: KnowledgeBase, capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    ObjectionClassifier.from_knowledge(kb)
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(f"\ntraining time: {elapsed:.2f} s")
    assert elapsed < 10  # target is well under 2 s; this only catches pathologies on busy CI


def test_classify_is_fast(
    classifier: ObjectionClassifier,
    heldout: list[tuple[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    texts = [t for _, t in heldout]
    start = time.perf_counter()
    for text in texts:
        classifier.classify(text)
    per_message = (time.perf_counter() - start) / len(texts)
    with capsys.disabled():
        print(f"\nclassify: {per_message * 1000:.2f} ms per message (mean of {len(texts)})")
    assert per_message < 0.05  # sanity bound only; the target is < 2 ms


# --- behaviour -------------------------------------------------------------------------------


def test_scam_is_recognised_confidently(classifier: ObjectionClassifier) -> None:
    c = classifier.classify("they asked me to send my bank card details to get the job")
    assert c.objection == "scam_suspected"
    assert interpret(c) == "confident"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I'm really nervous about tomorrow", "nervous"),
        ("the pay is way too low for me", "not_a_fit"),
        ("I love my current job", "not_looking"),
        ("hello!", "other"),
        # The bug report's typed decisions: an answer, not a worry to argue with.
        ("no thanks, I'm not going", "decide_pass"),
        ("I'll pass", "decide_pass"),
        ("ok fine ill go i guess", "decide_go"),
        ("still not sure", "decide_unsure"),
        ("I signed elsewhere", "signed_elsewhere"),
        ("part of me wants it, part of me doesn't", "mixed_feelings"),
        ("they want an unpaid take-home task that takes all weekend", "unpaid_task"),
    ],
)
def test_obvious_cases(classifier: ObjectionClassifier, text: str, expected: str) -> None:
    c = classifier.classify(text)
    assert (c.objection, interpret(c)) == (expected, "confident")


@pytest.mark.parametrize("text", ["", "   ", "\n\t \n"])
def test_empty_text_is_other(classifier: ObjectionClassifier, text: str) -> None:
    c = classifier.classify(text)
    assert c == Classification("other", 1.0, ())
    assert interpret(c) == "confident"


def test_huge_text_is_truncated_and_fast(classifier: ObjectionClassifier) -> None:
    text = "i'm worried i'll freeze in the interview " * 2500  # 100k characters
    assert len(text) >= 100_000
    start = time.perf_counter()
    c = classifier.classify(text)
    assert time.perf_counter() - start < 1.0
    assert c.objection == "nervous"
    assert len(normalise(text)) <= MAX_CHARS


def test_probabilities_are_consistent(
    classifier: ObjectionClassifier, heldout: list[tuple[str, str]]
) -> None:
    for _, text in heldout[::7]:
        c = classifier.classify(text)
        assert c.objection in LABELS
        assert len(c.alternatives) == 2
        labels = [c.objection, *(a.objection for a in c.alternatives)]
        assert len(set(labels)) == 3
        confidences = [c.confidence, *(a.confidence for a in c.alternatives)]
        assert confidences == sorted(confidences, reverse=True)
        assert all(0.0 <= p <= 1.0 for p in confidences)
        assert sum(confidences) <= 1.0 + 1e-9


@pytest.mark.parametrize("text", ["qwzx plmk", "asdfghjkl", "xkcd blorp fnord", "jjjjjj kkkk"])
def test_gibberish_is_not_understood(classifier: ObjectionClassifier, text: str) -> None:
    assert interpret(classifier.classify(text)) == "unknown"


def test_normalise() -> None:
    assert normalise("  I DON\u2019T   want\n\tit ") == "i don't want it"
    assert normalise("x" * 5000) == "x" * MAX_CHARS


def test_typographic_apostrophes_classify_alike(classifier: ObjectionClassifier) -> None:
    plain = classifier.classify("I don't think I'd get the job")
    curly = classifier.classify("I don\u2019t think I\u2019d get the job")
    assert plain == curly


def test_to_json_rounds_and_names_fields() -> None:
    c = Classification(
        "nervous", 0.93456, (Alternative("waste_of_time", 0.0412), Alternative("other", 0.011))
    )
    assert c.to_json() == {
        "objection": "nervous",
        "confidence": 0.93,
        "alternatives": [
            {"objection": "waste_of_time", "confidence": 0.04},
            {"objection": "other", "confidence": 0.01},
        ],
    }


def _c(top: float, second: float) -> Classification:
    return Classification("nervous", top, (Alternative("not_a_fit", second),))


# The rule, as specified (classifier.py's header): a reading is acted on when it has at least
# 40% and leads the runner-up by at least 20 points; a closer race whose two leaders hold at
# least 45% together is asked about ("did you mean A or B?"); anything else is not understood.
# The numbers are written here, not imported, so that a changed threshold fails a test.


@pytest.mark.parametrize(
    ("top", "second", "verdict"),
    [
        (0.9, 0.05, "confident"),
        (0.40, 0.20, "confident"),  # both bars met exactly
        (0.39, 0.10, "unknown"),  # a clear lead, but under 40%
        (0.41, 0.10, "confident"),
        (0.61, 0.42, "ambiguous"),  # 61% but only 19 points ahead
        (0.61, 0.40, "confident"),  # 21 points ahead
        (0.45, 0.40, "ambiguous"),  # close race between two likely answers
        (0.25, 0.20, "ambiguous"),  # close, and 45% together exactly
        (0.24, 0.20, "unknown"),  # close, but 44% together: too little to ask about
        (0.33, 0.13, "unknown"),  # a 20-point lead is not a close race, but too weak to act
        (0.3, 0.05, "unknown"),  # weak leader, nothing else likely either
        (0.15, 0.12, "unknown"),  # flat distribution
    ],
)
def test_interpret_thresholds(top: float, second: float, verdict: str) -> None:
    assert interpret(_c(top, second)) == verdict
    assert _c(top, second).interpret() == verdict


def test_interpret_without_a_runner_up() -> None:
    # A two-label model has one alternative; none at all counts as a runner-up at 0%.
    assert interpret(Classification("nervous", 0.40, ())) == "confident"
    assert interpret(Classification("nervous", 0.39, ())) == "unknown"


class FixedModel:
    """Stands in for the exported model: the probabilities we choose, label by label."""

    def __init__(self, probabilities: dict[str, float]) -> None:
        self.labels = tuple(probabilities)
        self._p = np.array(list(probabilities.values()))

    def probabilities(self, text: str) -> NDArray[np.float64]:
        return self._p


def fixed(**probabilities: float) -> ObjectionClassifier:
    """A classifier whose scores are these, the rest spread evenly over four other labels."""
    fillers = ("other", "decide_go", "decide_pass", "decide_unsure")
    rest = (1.0 - sum(probabilities.values())) / len(fillers)
    model = FixedModel({**probabilities, **dict.fromkeys(fillers, rest)})
    return ObjectionClassifier(cast(LinearTextModel, model))


def test_classify_reports_the_top_reading_and_the_next_two() -> None:
    c = fixed(nervous=0.10, not_a_fit=0.50, scam_suspected=0.30).classify("anything")
    assert c.objection == "not_a_fit" and c.confidence == pytest.approx(0.50)
    assert [(a.objection, round(a.confidence, 2)) for a in c.alternatives] == [
        ("scam_suspected", 0.30),
        ("nervous", 0.10),
    ]


@pytest.mark.parametrize(
    ("probabilities", "verdict"),
    [
        ({"nervous": 0.70, "not_a_fit": 0.20}, "confident"),
        ({"nervous": 0.41, "not_a_fit": 0.30}, "ambiguous"),
        ({"nervous": 0.38, "not_a_fit": 0.10}, "unknown"),
    ],
)
def test_classified_scores_lead_to_the_verdict(
    probabilities: dict[str, float], verdict: str
) -> None:
    c = fixed(**probabilities).classify("whatever was typed")
    assert (c.objection, interpret(c)) == ("nervous", verdict)


def test_binary_model_works() -> None:
    small = ObjectionClassifier.train(
        [
            ("hello", "other"),
            ("hi there", "other"),
            ("i'm scared", "nervous"),
            ("so nervous", "nervous"),
        ]
    )
    c = small.classify("i'm nervous")
    assert c.objection == "nervous"
    assert len(c.alternatives) == 1
    reference = small.pipeline.predict_proba(["i'm nervous"])[0]
    assert c.confidence == pytest.approx(reference[small.labels.index("nervous")])


def test_train_requires_two_labels() -> None:
    with pytest.raises(ValueError, match=r"^need examples of at least two labels to train$"):
        ObjectionClassifier.train([("hello", "other"), ("hi", "other")])


def test_default_classifier_is_cached() -> None:
    assert default_classifier() is default_classifier()
    assert set(default_classifier().labels) == set(LABELS)


# --- command line ----------------------------------------------------------------------------


def _parse(output: str) -> list[dict[str, object]]:
    objects = [json.loads(line) for line in output.splitlines()]
    for obj in objects:
        assert set(obj) == {"objection", "confidence", "alternatives"}
    return objects


def test_cli_with_arguments() -> None:
    out = io.StringIO()
    texts = ["i'm so nervous", "they want a fee to start, is that ok?", "bonjour \u00e0 tous"]
    assert classify_main(texts, io.StringIO("ignored\n"), out) == 0
    objects = _parse(out.getvalue())
    assert len(objects) == len(texts)
    assert objects[0]["objection"] == "nervous"
    assert objects[1]["objection"] == "scam_suspected"


def test_cli_reads_stdin_line_by_line_keeping_alignment() -> None:
    stdin = io.StringIO("hello\n\nthey want my bank details\r\ni'm overqualified for it")
    out = io.StringIO()
    assert classify_main([], stdin, out) == 0
    objects = _parse(out.getvalue())
    assert [o["objection"] for o in objects] == [
        "other",
        "other",
        "scam_suspected",
        "overqualified",
    ]
    assert objects[1] == {"objection": "other", "confidence": 1.0, "alternatives": []}


# --- the exported model and its cache --------------------------------------------------------


def test_the_exported_model_computes_what_scikit_learn_does(
    classifier: ObjectionClassifier, heldout: list[tuple[str, str]]
) -> None:
    texts = [normalise(t) for _, t in heldout] + ["x", "a  b", "ok", "é à ü", "!!!"]
    for text in texts:
        expected = classifier.pipeline.predict_proba([text])[0]
        assert classifier.probabilities(text) == pytest.approx(expected, abs=1e-9), text


def test_the_exported_binary_model_matches_too() -> None:
    small = ObjectionClassifier.train(
        [
            ("hello", "other"),
            ("hi there", "other"),
            ("i'm scared", "nervous"),
            ("so nervous", "nervous"),
        ]
    )
    for text in ("i'm nervous", "hello you", "zzz"):
        expected = small.pipeline.predict_proba([text])[0]
        assert small.probabilities(text) == pytest.approx(expected, abs=1e-12)


def test_the_model_is_kept_and_reused_until_the_content_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    content = tmp_path / "knowledge"
    shutil.copytree(DEFAULT_DIR, content)
    cache = tmp_path / "data"
    first = ObjectionClassifier.cached(cache, content)
    [saved] = list(cache.glob("classifier-*.model"))
    assert first.pipeline is not None  # trained here
    again = ObjectionClassifier.cached(cache, content)
    with pytest.raises(RuntimeError):
        again.pipeline  # loaded: nothing was trained  # noqa: B018
    text = "i'm scared i'll freeze"
    assert again.classify(text) == first.classify(text)
    # New content: a new key, trained again, the stale file removed.
    examples = content / "intents.toml"
    examples.write_text(examples.read_text() + "\n", "utf-8")
    ObjectionClassifier.cached(cache, content)
    [renewed] = list(cache.glob("classifier-*.model"))
    assert renewed != saved
    # A damaged file is trained over, not a crash, and the log says which file and why.
    renewed.write_bytes(b"not a model")
    with caplog.at_level(logging.WARNING, logger="bot.knowledge.classifier"):
        assert ObjectionClassifier.cached(cache, content).classify(text).objection == "nervous"
    (record,) = caplog.records
    assert record.getMessage().startswith(
        f"event=classifier_cache_unreadable file={renewed.name} error="
    )
    assert not record.getMessage().endswith("error=None")  # the reason is logged


def test_a_model_that_cannot_be_kept_is_used_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("a file where the folder should be")
    with caplog.at_level(logging.WARNING, logger="bot.knowledge.classifier"):
        trained = ObjectionClassifier.cached(not_a_folder)
    assert trained.classify("i'm scared i'll freeze").objection == "nervous"
    (record,) = caplog.records
    message = record.getMessage()
    assert message.startswith("event=classifier_cache_not_saved error=") and "data" in message
    assert not message.endswith("error=None")


# Typed on a phone: misspelt, unpunctuated. README: "character n-grams tolerate typos".
TYPOS = [
    ("im realy nervus about the intervew", "nervous"),
    ("scard ill freez up", "nervous"),
    ("the sallary is to low for me", "not_a_fit"),
    ("they want me to pay a fee upfrnt", "scam_suspected"),
    ("i alredy signed with anothr company", "signed_elsewhere"),
    ("im hapy at my curent job", "not_looking"),
    ("its a waist of my time", "waste_of_time"),
    ("i wont get the job anyways, im not qualifed", "wont_get_offer"),
    ("this role is beneeth my experiance", "overqualified"),
    ("ok fine ill go to the intervew", "decide_go"),
    ("no thanx im not goin", "decide_pass"),
    ("still not shure", "decide_unsure"),
    ("they want an unpayed take home assignmnet", "unpaid_task"),
    ("herd the company treats staf badly", "bad_company"),
]


def test_typos_are_tolerated(classifier: ObjectionClassifier) -> None:
    # Requirement: at least 3 typo'd messages in 4 are read right.
    right = [text for text, label in TYPOS if classifier.classify(text).objection == label]
    assert len(right) >= 0.75 * len(TYPOS), set(t for t, _ in TYPOS) - set(right)


def test_loading_the_kept_model_does_not_import_scikit_learn(tmp_path: Path) -> None:
    ObjectionClassifier.cached(tmp_path)
    code = (
        "import sys; from pathlib import Path;"
        "from bot.knowledge.classifier import ObjectionClassifier as C;"
        f"c = C.cached(Path({str(tmp_path)!r}));"
        "print(c.classify('i am so nervous').objection, 'sklearn' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["nervous", "False"]


# --- the model's design and its file -----------------------------------------------------------

SMALL = [
    ("hello", "other"),
    ("hi there", "other"),
    ("i'm scared", "nervous"),
    ("so nervous", "nervous"),
]


def test_the_model_reads_words_pairs_of_words_and_pieces_of_words() -> None:
    # The design classifier.py documents and its thresholds were tuned for: words and pairs
    # of words, one-letter words included ("i'm" is not "im"); character runs of 2 to 5
    # within a word, for typos; a repeated term counts less than twice (sublinear tf).
    # Changing any of it is a re-tuning, not a refactoring.
    model = ObjectionClassifier.train(SMALL).model
    assert [(a.kind, a.ngram_range, a.sublinear_tf) for a in model.analyzers] == [
        ("word", (1, 2), True),
        ("char_wb", (2, 5), True),
    ]
    words, chars = model.analyzers
    assert {"i", "m", "i m", "so nervous"} <= set(words.vocabulary)
    assert {" s", "sc", "scare", "ed "} <= set(chars.vocabulary)
    assert "scared" not in chars.vocabulary  # six characters: longer than a piece
    # Weak regularisation (C=10) suits short texts, and every class weighs the same however
    # many examples it has: a class written more often must not win ties for it.
    regression = ObjectionClassifier.train(SMALL).pipeline.named_steps["model"]
    assert (regression.C, regression.class_weight) == (10.0, "balanced")


def hand_made_model() -> LinearTextModel:
    """Three labels and two analyzers written by hand: terms in no alphabetical order (the
    column is what counts), one that is not ASCII, and plain as well as sublinear counts."""
    words = Analyzer(
        kind="word",
        ngram_range=(1, 2),
        token_pattern=r"(?u)\b\w+\b",
        vocabulary={"zeta": 0, "café": 1, "alpha": 2, "zeta zeta": 3},
        idf=array("d", [1.5, 2.0, 1.25, 3.0]),
        sublinear_tf=True,
    )
    chars = Analyzer(
        kind="char_wb",
        ngram_range=(2, 3),
        token_pattern="",
        vocabulary={"ze": 1, " a": 0},
        idf=array("d", [1.0, 3.0]),
        sublinear_tf=False,
    )
    return LinearTextModel(
        labels=("a", "b", "c"),
        analyzers=(words, chars),
        coef=(
            array("d", [0.5, -1.0, 2.0, 0.25, 0.0, 1.5]),
            array("d", [-0.5, 1.0, 0.0, -2.0, 0.75, 0.0]),
            array("d", [0.0, 0.5, -1.0, 1.0, -0.25, 2.5]),
        ),
        intercept=(0.1, -0.2, 0.3),
    )


def test_a_kept_model_reads_back_the_same_in_a_folder_made_for_it(tmp_path: Path) -> None:
    model = hand_made_model()
    path = tmp_path / "not" / "yet" / "there.model"
    model.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["there.model"]
    loaded = LinearTextModel.load(path)
    assert loaded == model
    text = "zeta zeta café alpha"
    assert loaded.probabilities(text) == model.probabilities(text)


def test_a_model_kept_on_a_machine_of_the_other_byte_order_reads_the_same(
    tmp_path: Path,
) -> None:
    model = hand_made_model()
    path = tmp_path / "m.model"
    model.save(path)
    header_line, _, body = path.read_bytes().partition(b"\n")
    header = json.loads(header_line)
    header["byteorder"] = "big" if header["byteorder"] == "little" else "little"
    doubles = array("d", body)
    doubles.byteswap()
    path.write_bytes(json.dumps(header).encode() + b"\n" + doubles.tobytes())
    assert LinearTextModel.load(path) == model


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: b"[]\n" + data.partition(b"\n")[2], "not a linear text model"),
        (
            lambda data: data.replace(b"linear-text-model/1", b"linear-text-model/0"),
            "not a linear text model",
        ),
        (lambda data: data[:-8], "the file is cut short"),
        (lambda data: data + b"\0", "unexpected data after the model"),
    ],
    ids=["not-an-object", "other-format", "cut-short", "trailing-data"],
)
def test_a_damaged_model_file_is_refused_saying_why(
    tmp_path: Path, damage: Callable[[bytes], bytes], reason: str
) -> None:
    path = tmp_path / "m.model"
    hand_made_model().save(path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=f"^{reason}$"):
        LinearTextModel.load(path)


def _fit(*vectorizers: TfidfVectorizer) -> Pipeline:
    pipeline = Pipeline(
        [
            ("features", FeatureUnion([(f"v{i}", v) for i, v in enumerate(vectorizers)])),
            ("model", LogisticRegression()),
        ]
    )
    texts = ["so so nervous", "nervous nervous me", "hello hello there", "hi there", "calm"]
    return pipeline.fit(texts, ["n", "n", "o", "o", "c"])


@pytest.mark.parametrize("sublinear", [True, False])
def test_export_counts_repeated_words_as_scikit_learn_does(sublinear: bool) -> None:
    pipeline = _fit(
        TfidfVectorizer(sublinear_tf=sublinear),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), sublinear_tf=sublinear),
    )
    model = export(pipeline)
    for text in ("nervous nervous nervous", "hello hello so", "there"):
        expected = pipeline.predict_proba([text])[0]
        assert model.probabilities(text) == pytest.approx(expected, abs=1e-12), text


@pytest.mark.parametrize(
    ("vectorizer", "name"),
    [
        (TfidfVectorizer(norm=None), "'word'"),
        (TfidfVectorizer(norm="l1"), "'word'"),
        (TfidfVectorizer(analyzer="char"), "'char'"),
    ],
)
def test_export_refuses_what_the_plain_model_cannot_compute(
    vectorizer: TfidfVectorizer, name: str
) -> None:
    with pytest.raises(ValueError, match=f"^cannot export analyzer {name}$"):
        export(_fit(vectorizer))


@pytest.mark.parametrize(
    "vectorizer",
    [
        TfidfVectorizer(ngram_range=(1, 1)),
        TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b"),
        TfidfVectorizer(ngram_range=(2, 3)),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3)),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3)),
    ],
    ids=["words-1", "words-1-2", "words-2-3", "chars-2-5", "chars-1-3", "chars-3-3"],
)
def test_the_terms_of_a_text_are_scikit_learns(vectorizer: TfidfVectorizer) -> None:
    # Every term, in order, counted as often as scikit-learn's own analyzer counts it, not
    # only those a vocabulary keeps: a short word, a long one, repeats, runs of spaces.
    model = export(_fit(vectorizer))
    (analyzer,) = model.analyzers
    reference = vectorizer.build_analyzer()
    for text in ("i am so  so nervous", "a", "interviewing tomorrow at 3", "ok ok ok ok", ""):
        assert analyzer.terms(text) == reference(text), text


def test_a_third_analyzer_reads_its_own_columns() -> None:
    pipeline = _fit(
        TfidfVectorizer(),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3)),
        TfidfVectorizer(ngram_range=(2, 2)),
    )
    model = export(pipeline)
    for text in ("so nervous there", "hello hello", "calm me"):
        expected = pipeline.predict_proba([text])[0]
        assert model.probabilities(text) == pytest.approx(expected, abs=1e-12), text


def test_large_scores_give_probabilities_not_an_overflow() -> None:
    # exp(800) does not fit in a double; the probabilities of scores 800, 700 and 0 do.
    small = LinearTextModel(
        labels=("a", "b", "c"),
        analyzers=(),
        coef=(array("d"), array("d"), array("d")),
        intercept=(800.0, 700.0, 0.0),
    )
    assert small.probabilities("anything") == pytest.approx((1.0, math.exp(-100), 0.0), abs=0)
