"""The fitted classifier in a form the bot can run without scikit-learn.

scikit-learn fits the model (TF-IDF over words and characters, then logistic regression);
what a prediction needs afterwards is small: two vocabularies, their idf weights, and the
coefficients. Importing scikit-learn costs about 0.8 s and 100 MB of memory, which the bot
would pay on every start to do a few dot products. So `export` copies those numbers out of a
fitted pipeline, `save`/`load` keep them beside the database, and `LinearTextModel` computes
exactly what the pipeline's predict_proba computes (the tests compare the two on every
held-out phrasing). Tokenisation follows scikit-learn's analyzers line for line.

Plain Python (`array` of doubles, C-level `sum(map(...))`) rather than NumPy: a message has a
few hundred features, so the arithmetic is cheap either way, while importing NumPy costs
15 MB of resident memory and 60 ms of every start.
"""

from __future__ import annotations

import json
import math
import operator
import re
import sys
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's _VectorizerMixin._white_spaces
FORMAT = "linear-text-model/1"


@dataclass(frozen=True)
class Analyzer:
    kind: str  # "word" | "char_wb"
    ngram_range: tuple[int, int]
    token_pattern: str
    vocabulary: dict[str, int]
    idf: array[float]
    sublinear_tf: bool

    def terms(self, text: str) -> list[str]:
        low, high = self.ngram_range
        if self.kind == "word":
            tokens = re.findall(self.token_pattern, text)
            grams = list(tokens) if low == 1 else []
            for n in range(max(low, 2), min(high + 1, len(tokens) + 1)):
                grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
            return grams
        grams = []
        for word in _WHITE_SPACES.sub(" ", text).split():
            padded = f" {word} "
            for n in range(low, high + 1):
                offset = 0
                grams.append(padded[offset : offset + n])
                while offset + n < len(padded):
                    offset += 1
                    grams.append(padded[offset : offset + n])
                if offset == 0:  # a short word is counted once
                    break
        return grams

    def features(self, text: str) -> dict[int, float]:
        """Column -> l2-normalised tf-idf weight, for the terms in the vocabulary."""
        counts: dict[int, int] = {}
        vocabulary = self.vocabulary
        for term in self.terms(text):
            column = vocabulary.get(term)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        weights = {
            column: ((1.0 + math.log(count)) if self.sublinear_tf else count) * self.idf[column]
            for column, count in counts.items()
        }
        norm = math.sqrt(sum(w * w for w in weights.values()))
        return {column: w / norm for column, w in weights.items()} if norm else {}


@dataclass(frozen=True)
class LinearTextModel:
    labels: tuple[str, ...]
    analyzers: tuple[Analyzer, ...]  # concatenated, in this order (a FeatureUnion)
    coef: tuple[array[float], ...]  # one row of feature weights per class (one if binary)
    intercept: tuple[float, ...]

    def probabilities(self, text: str) -> tuple[float, ...]:
        columns: list[int] = []
        values: list[float] = []
        offset = 0
        for analyzer in self.analyzers:
            for column, value in analyzer.features(text).items():
                columns.append(offset + column)
                values.append(value)
            offset += len(analyzer.idf)
        if columns:
            pick = operator.itemgetter(*columns)
            picked = [pick(row) for row in self.coef]
            if len(columns) == 1:  # itemgetter of one column gives the value, not a tuple
                picked = [(w,) for w in picked]
            scores = [
                math.fsum(map(operator.mul, weights, values)) + b
                for weights, b in zip(picked, self.intercept, strict=True)
            ]
        else:
            scores = list(self.intercept)
        if len(self.labels) == 2:  # binary logistic regression: one score, for the 2nd class
            p = 1.0 / (1.0 + math.exp(-scores[0]))
            return (1.0 - p, p)
        top = max(scores)
        exp = [math.exp(s - top) for s in scores]
        total = sum(exp)
        return tuple(e / total for e in exp)

    # --- persistence ---------------------------------------------------------------------
    # One JSON line (labels, analyzers, vocabularies, sizes), then the idf and coefficient
    # arrays as raw doubles in the order the header lists them.

    def save(self, path: Path) -> None:
        header = {
            "format": FORMAT,
            "byteorder": sys.byteorder,
            "labels": list(self.labels),
            "intercept": list(self.intercept),
            "rows": len(self.coef),
            "analyzers": [
                {
                    "kind": a.kind,
                    "ngram_range": list(a.ngram_range),
                    "token_pattern": a.token_pattern,
                    "sublinear_tf": a.sublinear_tf,
                    "terms": sorted(a.vocabulary, key=a.vocabulary.__getitem__),
                }
                for a in self.analyzers
            ],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as fh:
            fh.write(json.dumps(header, ensure_ascii=True).encode("ascii") + b"\n")
            for analyzer in self.analyzers:
                fh.write(analyzer.idf.tobytes())
            for row in self.coef:
                fh.write(row.tobytes())
        partial.replace(path)  # whole or absent, for a concurrent start

    @classmethod
    def load(cls, path: Path) -> LinearTextModel:
        """Raises ValueError (or OSError) for a file that is not a whole model."""
        with path.open("rb") as fh:
            header = json.loads(fh.readline())
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise ValueError("not a linear text model")
            swap = header["byteorder"] != sys.byteorder

            def doubles(count: int) -> array[float]:
                values = array("d")
                values.frombytes(fh.read(count * values.itemsize))
                if len(values) != count:
                    raise ValueError("the file is cut short")
                if swap:
                    values.byteswap()
                return values

            analyzers = tuple(
                Analyzer(
                    kind=str(a["kind"]),
                    ngram_range=(int(a["ngram_range"][0]), int(a["ngram_range"][1])),
                    token_pattern=str(a["token_pattern"]),
                    vocabulary={str(term): i for i, term in enumerate(a["terms"])},
                    idf=doubles(len(a["terms"])),
                    sublinear_tf=bool(a["sublinear_tf"]),
                )
                for a in header["analyzers"]
            )
            width = sum(len(a.idf) for a in analyzers)
            coef = tuple(doubles(width) for _ in range(int(header["rows"])))
            if fh.read(1):
                raise ValueError("unexpected data after the model")
        return cls(
            labels=tuple(str(label) for label in header["labels"]),
            analyzers=analyzers,
            coef=coef,
            intercept=tuple(float(b) for b in header["intercept"]),
        )


def export(pipeline: Pipeline) -> LinearTextModel:
    """The numbers a fitted FeatureUnion(TfidfVectorizer...) + LogisticRegression uses."""
    union = pipeline.named_steps["features"]
    model = pipeline.named_steps["model"]
    analyzers = []
    for _name, vectorizer in union.transformer_list:
        if vectorizer.analyzer not in ("word", "char_wb") or vectorizer.norm != "l2":
            raise ValueError(f"cannot export analyzer {vectorizer.analyzer!r}")
        analyzers.append(
            Analyzer(
                kind=vectorizer.analyzer,
                ngram_range=tuple(vectorizer.ngram_range),
                token_pattern=vectorizer.token_pattern,
                vocabulary={str(k): int(v) for k, v in vectorizer.vocabulary_.items()},
                idf=array("d", (float(x) for x in vectorizer.idf_)),
                sublinear_tf=bool(vectorizer.sublinear_tf),
            )
        )
    return LinearTextModel(
        labels=tuple(str(label) for label in model.classes_),
        analyzers=tuple(analyzers),
        coef=tuple(array("d", (float(x) for x in row)) for row in model.coef_),
        intercept=tuple(float(b) for b in model.intercept_),
    )
