"""Fixtures shared across stages (one definition each; a stage's own conftest keeps what only it uses)."""

from __future__ import annotations

import re

import pytest

# A fake secret in the host environment while a pool runs: the sandbox tests check no job can read it.
CANARY_SECRET = "sk-rhlab-test-secret-do-not-leak"

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def word_ngrams(text: str, n: int = 7) -> set[tuple[str, ...]]:
    """Word n-grams of `text`, lowercased, punctuation and markup dropped (so copies survive reformatting)."""
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


@pytest.fixture
def ngrams():
    """`ngrams(text, n=7)` → set of word n-gram tuples, for overlap (contamination) checks."""
    return word_ngrams


@pytest.fixture(scope="module")
def pool():
    """A two-worker SandboxPool, fresh for each test module: a hostile module's damage cannot reach another."""
    from rhlab.sandbox import SandboxPool

    with pytest.MonkeyPatch.context() as env:
        env.setenv("OPENAI_API_KEY", CANARY_SECRET)
        with SandboxPool(workers=2) as p:
            yield p


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Llama (rhlab.models.build_tiny_model) built once per session; tests only read it."""
    from rhlab.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
