"""Near-duplicate removal for generated documents: exact (normalised) match + MinHash-style bottom-k Jaccard."""

from __future__ import annotations

import hashlib
import re
from typing import Iterable, Sequence

_WORD = re.compile(r"\w+")


def normalise(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _h(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "big")


def sketch(text: str, shingle: int = 5, k: int = 64) -> frozenset[int]:
    """The k smallest hashes of the word `shingle`-grams (a bottom-k MinHash sketch)."""
    words = normalise(text).split()
    if len(words) < shingle:
        grams = {" ".join(words)}
    else:
        grams = {" ".join(words[i:i + shingle]) for i in range(len(words) - shingle + 1)}
    return frozenset(sorted(_h(g) for g in grams)[:k])


def estimate_jaccard(a: frozenset[int], b: frozenset[int], k: int = 64) -> float:
    union_bottom = sorted(a | b)[:k]
    if not union_bottom:
        return 1.0
    both = sum(1 for x in union_bottom if x in a and x in b)
    return both / len(union_bottom)


def dedup(texts: Sequence[str], threshold: float = 0.8, k: int = 64) -> list[int]:
    """Indices of the texts to keep (first occurrence wins)."""
    keep: list[int] = []
    seen_exact: set[str] = set()
    index: dict[int, list[int]] = {}  # sketch value -> kept positions holding it
    sketches: list[frozenset[int]] = []
    for i, text in enumerate(texts):
        norm = normalise(text)
        if not norm or norm in seen_exact:
            continue
        sk = sketch(text, k=k)
        candidates: set[int] = set()
        for v in sk:
            candidates.update(index.get(v, ()))
        if any(estimate_jaccard(sk, sketches[c], k) >= threshold for c in candidates):
            continue
        seen_exact.add(norm)
        pos = len(sketches)
        sketches.append(sk)
        for v in sk:
            index.setdefault(v, []).append(pos)
        keep.append(i)
    return keep


def dedup_records(records: Iterable[dict], threshold: float = 0.8, field: str = "text") -> list[dict]:
    records = list(records)
    return [records[i] for i in dedup([r[field] for r in records], threshold)]
