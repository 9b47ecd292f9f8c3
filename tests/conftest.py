"""Test helpers shared across stages (fixtures only; each stage's tests keep their own setup)."""

from __future__ import annotations

import re

import pytest

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def word_ngrams(text: str, n: int = 7) -> set[tuple[str, ...]]:
    """Word n-grams of `text`, lowercased, punctuation and markup dropped (so copies survive reformatting)."""
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


@pytest.fixture
def ngrams():
    """`ngrams(text, n=7)` → set of word n-gram tuples, for overlap (contamination) checks."""
    return word_ngrams
