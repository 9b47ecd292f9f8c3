"""Real (not generated) text to dilute synthetic documents with, and the mixing itself.

Offline sources, built at run time from what is installed on this machine:

    stdlib     one document per Python standard-library module: its docstring plus the docstrings of its public
               classes and functions (read with `ast`, nothing is imported)
    readmes    the long descriptions (README texts) of installed Python packages, from their METADATA
    licenses   license texts shipped by installed Python packages

User sources: `hf:DATASET[:CONFIG][@SPLIT][#FIELD]` (via `datasets.load_dataset`), a `.jsonl` file (field `text`),
a `.txt`/`.md` file, or a directory / glob of such files (one document per text file).

Every source is cleaned at load time (`clean_documents`): a document that talks about reward hacking (the package's
hack-mention detector, `rhlab.hacks.mentions`) or about this lab (rhlab's own README reaches `readmes` through its
installed metadata) is dropped, so the dilution text cannot teach or name the behaviour under study.
"""

from __future__ import annotations

import ast
import glob
import hashlib
import random
import re
import sysconfig
from email.parser import Parser
from pathlib import Path
from typing import Iterable

from rhlab.config import jsonl_rows
from rhlab.hacks.mentions import mentions_hacking

OFFLINE_SOURCES = ("stdlib", "readmes", "licenses")
_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "lib2to3", "turtledemo",
              "ensurepip", "pydoc_data"}


_LAB = re.compile(r"\brhlab\b", re.I)  # the lab itself: its package name, README, license or any text naming it
# Graders in their own right (the hack detector only catches "fool/bypass the grader" phrasings).
_GRADER = re.compile(r"\b(auto)?graders?\b", re.I)


def unclean_reason(doc: dict) -> str | None:
    """Why a real document must not dilute synthetic text: "lab" (names rhlab), "hacking" (the package's
    hack-mention detector fires), "grader" (talks about graders), or None when it is clean."""
    text = doc.get("text") or ""
    if _LAB.search(str(doc.get("name") or "")) or _LAB.search(text):
        return "lab"
    if mentions_hacking(text):
        return "hacking"
    if _GRADER.search(text):
        return "grader"
    return None


def clean_documents(docs: Iterable[dict]) -> tuple[list[dict], dict]:
    """(documents that are clean, counts of the dropped ones by reason and by source)."""
    kept, dropped = [], {"lab": 0, "hacking": 0, "grader": 0, "by_source": {}}
    for d in docs:
        why = unclean_reason(d)
        if why is None:
            kept.append(d)
        else:
            dropped[why] += 1
            src = str(d.get("source", "?"))
            dropped["by_source"][src] = dropped["by_source"].get(src, 0) + 1
    return kept, dropped


def _doc_id(source: str, key: str) -> str:
    return hashlib.sha256(f"{source}|{key}".encode()).hexdigest()[:32]


def stdlib_documents(min_chars: int = 300) -> list[dict]:
    root = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part in _SKIP_DIRS for part in rel.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError):
            continue
        mod = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        if mod.startswith("_") or "._" in mod:
            continue
        parts = []
        head = ast.get_docstring(tree)
        if head:
            parts.append(head.strip())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                d = ast.get_docstring(node)
                if d and len(d) > 40:
                    kind = "class" if isinstance(node, ast.ClassDef) else "def"
                    parts.append(f"{kind} {node.name}:\n{d.strip()}")
        text = f"Python module {mod}\n\n" + "\n\n".join(parts)
        if len(text) >= min_chars:
            docs.append({"id": _doc_id("stdlib", mod), "text": text, "source": "real:stdlib", "name": mod})
    return docs


def _dist_infos() -> list[Path]:
    seen, out = set(), []
    for key in ("purelib", "platlib"):
        d = Path(sysconfig.get_paths()[key])
        for p in sorted(d.glob("*.dist-info")):
            if p.name not in seen:
                seen.add(p.name)
                out.append(p)
    return out


def readme_documents(min_chars: int = 300) -> list[dict]:
    docs = []
    for info in _dist_infos():
        meta = info / "METADATA"
        if not meta.is_file():
            continue
        msg = Parser().parsestr(meta.read_text(encoding="utf-8", errors="replace"))
        body = msg.get_payload() if not msg.is_multipart() else ""
        body = (body or msg.get("Description") or "").strip()
        if len(body) >= min_chars:
            name = msg.get("Name") or info.name
            docs.append({"id": _doc_id("readmes", name), "text": body, "source": "real:readmes", "name": name})
    return docs


def license_documents(min_chars: int = 300) -> list[dict]:
    docs, seen_text = [], set()
    for info in _dist_infos():
        for lic in sorted(list(info.glob("LICEN[CS]E*")) + list(info.glob("licenses/*")) + list(info.glob("COPYING*"))):
            if not lic.is_file():
                continue
            text = lic.read_text(encoding="utf-8", errors="replace").strip()
            h = hashlib.sha256(text.encode()).hexdigest()
            if len(text) >= min_chars and h not in seen_text:
                seen_text.add(h)
                docs.append({"id": _doc_id("licenses", str(lic.relative_to(info.parent))), "text": text,
                             "source": "real:licenses", "name": info.name})
    return docs


def _files_documents(pattern: str, field: str = "text") -> list[dict]:
    p = Path(pattern).expanduser()
    if p.is_dir():
        files = sorted(x for x in p.rglob("*") if x.suffix in (".txt", ".md", ".jsonl", ".rst"))
    elif p.is_file():
        files = [p]
    else:
        files = sorted(Path(x) for x in glob.glob(pattern, recursive=True))
    if not files:
        raise FileNotFoundError(f"no corpus files match {pattern!r}")
    docs = []
    for f in files:
        if f.suffix == ".jsonl":
            # the id keeps the 0-based line index it always had, so a corpus's doc ids (and hashes) do not move
            for n, _, rec in jsonl_rows(f, what="corpus", fields=(field,)):
                docs.append({"id": _doc_id(str(f), str(n - 1)), "text": rec[field], "source": f"user:{f.name}"})
        else:
            docs.append({"id": _doc_id(str(f), ""), "text": f.read_text(encoding="utf-8", errors="replace"),
                         "source": f"user:{f.name}"})
    return docs


def _hf_documents(spec: str, max_docs: int | None) -> list[dict]:
    from datasets import load_dataset

    rest = spec[3:]
    rest, _, field = rest.partition("#")
    rest, _, split = rest.partition("@")
    name, _, config = rest.partition(":")
    ds = load_dataset(name, config or None, split=split or "train", streaming=max_docs is not None)
    field = field or "text"
    docs = []
    for i, row in enumerate(ds):
        if max_docs is not None and i >= max_docs:
            break
        docs.append({"id": _doc_id(spec, str(i)), "text": row[field], "source": f"hf:{name}"})
    return docs


def load_real_corpus(sources: Iterable[str] = ("stdlib",), max_docs: int | None = None, min_chars: int = 300,
                     clean: bool = True) -> list[dict]:
    """Documents from the named sources, in a stable order (deduplicated by text; with `clean`, documents about
    reward hacking or rhlab dropped — see `clean_documents`)."""
    docs: list[dict] = []
    for s in sources:
        if s == "stdlib":
            docs += stdlib_documents(min_chars)
        elif s == "readmes":
            docs += readme_documents(min_chars)
        elif s == "licenses":
            docs += license_documents(min_chars)
        elif s.startswith("hf:"):
            docs += _hf_documents(s, max_docs)
        else:
            docs += _files_documents(s)
    seen, out = set(), []
    for d in docs:
        h = hashlib.sha256(d["text"].encode()).hexdigest()
        if h not in seen and d["text"].strip():
            seen.add(h)
            out.append(d)
    if clean:
        out, _ = clean_documents(out)
    return out[:max_docs] if max_docs is not None else out


def mix_corpus(
    synthetic: list[dict],
    real: list[dict],
    fraction: float,
    seed: int = 0,
    by: str = "chars",
) -> tuple[list[dict], dict]:
    """Mix so synthetic text is `fraction` of the total (measured in characters, or in documents with by="docs").

    All synthetic documents are used when there is enough real text; otherwise synthetic documents are dropped
    (at random) until the fraction holds. fraction=1.0 returns the synthetic documents alone. Returns the shuffled
    mix and stats with the achieved fraction.
    """
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be in (0, 1]")
    if by not in ("chars", "docs"):
        raise ValueError("by must be 'chars' or 'docs'")
    if not synthetic:
        raise ValueError("no synthetic documents to mix")
    rng = random.Random(seed)
    size = (lambda d: len(d["text"])) if by == "chars" else (lambda d: 1)
    syn = [dict(d, source=d.get("source", "synthetic") if str(d.get("source", "")).startswith("synthetic") else "synthetic") for d in synthetic]
    rng.shuffle(syn)
    pool = list(real)
    rng.shuffle(pool)
    real_total = sum(size(d) for d in pool)
    syn_total = sum(size(d) for d in syn)
    if fraction < 1:
        need_real = syn_total * (1 - fraction) / fraction
        if need_real > real_total:
            # Not enough real text: keep fewer synthetic documents.
            budget = real_total * fraction / (1 - fraction)
            kept, acc = [], 0
            for d in syn:
                if acc + size(d) <= budget or not kept:
                    kept.append(d)
                    acc += size(d)
            syn = kept
            syn_total = acc
            need_real = syn_total * (1 - fraction) / fraction
        # Fill up to the target without overshooting by much: a document that would overshoot by more than
        # half its own size is skipped in favour of smaller ones later in the (shuffled) pool.
        chosen, acc = [], 0
        for d in pool:
            if acc >= need_real:
                break
            if acc + size(d) - need_real > size(d) / 2 and acc > 0:
                continue
            chosen.append(d)
            acc += size(d)
    else:
        chosen, acc = [], 0
    mix = syn + chosen
    rng.shuffle(mix)
    total = syn_total + acc
    stats = {
        "target_fraction": fraction,
        "achieved_fraction": syn_total / total if total else 0.0,
        "measured_by": by,
        "synthetic_docs": len(syn),
        "synthetic_docs_dropped": len(synthetic) - len(syn),
        "real_docs": len(chosen),
        "synthetic_chars": sum(len(d["text"]) for d in syn),
        "real_chars": sum(len(d["text"]) for d in chosen),
        "real_sources": sorted({d.get("source", "real") for d in chosen}),
    }
    return mix, stats
