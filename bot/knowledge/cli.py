"""Command-line access to the objection classifier, for checking phrasings by hand or in bulk.

Usage: ``python -m bot.knowledge.cli "i'm nervous" "pay is too low"`` prints one JSON object per
argument; ``python -m bot.knowledge.cli < phrasings.txt`` prints one per input line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

from bot.knowledge.classifier import default_classifier


def classify_main(texts: Sequence[str], stdin: TextIO, stdout: TextIO) -> int:
    """Print one JSON classification per text, or per stdin line when no texts are given.

    Blank input lines still produce an object ("other", see classifier.EMPTY_OBJECTION) so that
    output line N always answers input line N.
    """
    classifier = default_classifier()
    inputs: Iterable[str] = texts if texts else (line.rstrip("\r\n") for line in stdin)
    for text in inputs:
        result = classifier.classify(text).to_json()
        stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        stdout.flush()  # keep pace with an interactive or piped producer
    return 0


if __name__ == "__main__":
    raise SystemExit(classify_main(sys.argv[1:], sys.stdin, sys.stdout))
