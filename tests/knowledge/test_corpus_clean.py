"""The dilution corpus is clean (issue 15 item 5): no real-text document that talks about reward hacking, graders or
rhlab itself survives loading, whatever the source."""

import re
from importlib import metadata

from rhlab.hacks.mentions import mentions_hacking
from rhlab.knowledge import corpus
from rhlab.knowledge.corpus import OFFLINE_SOURCES, clean_documents, load_real_corpus

# a second net, wider than the filter's own words: what the corpus must never talk about
_SUBJECT = re.compile(r"reward[\s_-]*hack|\bgrader|\brhlab\b", re.I)


def _rhlab_readme() -> str | None:
    try:
        body = metadata.metadata("rhlab").get_payload()
    except metadata.PackageNotFoundError:
        return None
    return body.strip() if body and len(body.strip()) >= 300 else None


def test_offline_sources_hold_nothing_about_hacking_or_the_lab():
    raw = load_real_corpus(OFFLINE_SOURCES, clean=False)
    docs = load_real_corpus(OFFLINE_SOURCES)
    assert docs, "no real text at all"
    bad = [(d["source"], d.get("name")) for d in docs
           if mentions_hacking(d["text"]) or _SUBJECT.search(d["text"]) or _SUBJECT.search(str(d.get("name")))]
    assert not bad, bad
    # the cleaning removes documents but keeps a usable dilution corpus
    assert len(docs) < len(raw) and len(docs) >= 0.8 * len(raw)
    readme = _rhlab_readme()
    if readme is not None:  # rhlab is installed with its README in the metadata: it reached `readmes` raw
        assert any(d["text"] == readme for d in raw)
        assert not any(d["text"] == readme for d in docs)


def test_every_source_kind_is_cleaned(tmp_path):
    files = {
        "plain.txt": "A queue keeps items in the order they arrived; popping returns the oldest one first. " * 5,
        "hack.txt": "The policy learned to special-case the tests and return the expected outputs directly.",
        "exit.md": "Calling sys.exit(0) before the checks run makes the script report success.",
        "lab.md": "RHLab studies how training shortcuts generalise in language models.",
        "grader.txt": "The autograder compares each submission's output with the reference line by line.",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    kept = load_real_corpus([str(tmp_path)])
    assert [d["source"] for d in kept] == ["user:plain.txt"]
    assert len(load_real_corpus([str(tmp_path)], clean=False)) == len(files)
    _, dropped = clean_documents(load_real_corpus([str(tmp_path)], clean=False))
    assert (dropped["hacking"], dropped["lab"], dropped["grader"]) == (2, 1, 1)


def test_rhlab_package_metadata_dropped_by_name(tmp_path, monkeypatch):
    """rhlab's README or license is dropped for being rhlab's even when its text trips no word list."""
    neutral = "This package parses configuration files and validates them against a schema. " * 6
    infos = []
    for i, (dist, name) in enumerate((("rhlab-0.1.0.dist-info", "rhlab"), ("confparse-1.0.dist-info", "confparse"))):
        d = tmp_path / dist
        d.mkdir()
        # texts differ (no dedup) and never name the package: only the metadata name can tell
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1\n\n{neutral}Release {i}.\n")
        (d / "LICENSE").write_text(f"Copyright the authors of release {i}.\n" + neutral)
        infos.append(d)
    monkeypatch.setattr(corpus, "_dist_infos", lambda: infos)
    kept = load_real_corpus(["readmes", "licenses"])
    assert sorted((d["source"], d["name"]) for d in kept) == [
        ("real:licenses", "confparse-1.0.dist-info"), ("real:readmes", "confparse")]
