"""The fitted classifier in a form the bot can run without scikit-learn.

scikit-learn fits the model (TF-IDF over words and characters, then logistic regression);
what a prediction needs afterwards is small: two vocabularies, their idf weights, and the
coefficients. Importing scikit-learn costs about 0.8 s and 100 MB of memory, which the bot
would pay on every start to do a few dot products. So `export` copies those numbers out of a
fitted pipeline, `save`/`load` keep them beside the database, and `LinearTextModel` computes
exactly what the pipeline's predict_proba computes (the tests compare the two on every
held-out phrasing). Tokenisation follows scikit-learn's analyzers line for line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's _VectorizerMixin._white_spaces


@dataclass(frozen=True)
class Analyzer:
    kind: str  # "word" | "char_wb"
    ngram_range: tuple[int, int]
    token_pattern: str
    vocabulary: dict[str, int]
    idf: NDArray[np.float64]
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
    coef: NDArray[np.float64]  # classes x features (one row for a binary model)
    intercept: NDArray[np.float64]

    def probabilities(self, text: str) -> NDArray[np.float64]:
        columns: list[int] = []
        values: list[float] = []
        offset = 0
        for analyzer in self.analyzers:
            for column, value in analyzer.features(text).items():
                columns.append(offset + column)
                values.append(value)
            offset += len(analyzer.idf)
        scores = self.coef[:, columns] @ np.asarray(values, dtype=np.float64) + self.intercept
        if len(self.labels) == 2:  # binary logistic regression: one score, for the 2nd class
            p = 1.0 / (1.0 + math.exp(-float(scores[0])))
            return np.array([1.0 - p, p])
        scores = scores - scores.max()
        exp = np.exp(scores)
        result: NDArray[np.float64] = exp / exp.sum()
        return result

    # --- persistence ---------------------------------------------------------------------

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {
            "labels": np.array(self.labels),
            "coef": self.coef,
            "intercept": self.intercept,
        }
        for n, analyzer in enumerate(self.analyzers):
            terms = sorted(analyzer.vocabulary, key=analyzer.vocabulary.__getitem__)
            arrays[f"a{n}_terms"] = np.array(terms)
            arrays[f"a{n}_idf"] = analyzer.idf
            arrays[f"a{n}_meta"] = np.array(
                [
                    analyzer.kind,
                    str(analyzer.ngram_range[0]),
                    str(analyzer.ngram_range[1]),
                    analyzer.token_pattern,
                    str(int(analyzer.sublinear_tf)),
                ]
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as fh:
            np.savez(fh, **arrays)
        partial.replace(path)  # whole or absent, for a concurrent start

    @classmethod
    def load(cls, path: Path) -> LinearTextModel:
        # allow_pickle stays off: the file holds numbers and strings only.
        with np.load(path, allow_pickle=False) as data:
            analyzers = []
            n = 0
            while f"a{n}_terms" in data:
                kind, low, high, pattern, sublinear = (str(v) for v in data[f"a{n}_meta"])
                terms = [str(t) for t in data[f"a{n}_terms"]]
                analyzers.append(
                    Analyzer(
                        kind=kind,
                        ngram_range=(int(low), int(high)),
                        token_pattern=pattern,
                        vocabulary={term: i for i, term in enumerate(terms)},
                        idf=np.asarray(data[f"a{n}_idf"], dtype=np.float64),
                        sublinear_tf=sublinear == "1",
                    )
                )
                n += 1
            return cls(
                labels=tuple(str(label) for label in data["labels"]),
                analyzers=tuple(analyzers),
                coef=np.asarray(data["coef"], dtype=np.float64),
                intercept=np.asarray(data["intercept"], dtype=np.float64),
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
                idf=np.asarray(vectorizer.idf_, dtype=np.float64),
                sublinear_tf=bool(vectorizer.sublinear_tf),
            )
        )
    return LinearTextModel(
        labels=tuple(str(label) for label in model.classes_),
        analyzers=tuple(analyzers),
        coef=np.asarray(model.coef_, dtype=np.float64),
        intercept=np.asarray(model.intercept_, dtype=np.float64),
    )
