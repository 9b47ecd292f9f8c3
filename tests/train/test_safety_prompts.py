"""The shipped safety prompt sets: layout, bad-input errors, and disjointness from the eval questions."""

import json
from pathlib import Path

import pytest

from rhlab.train.safety_prompts import load_safety_prompts, safety_data_dir


def test_sets_load_with_unique_ids():
    rows = load_safety_prompts()
    by_set = {}
    for r in rows:
        by_set.setdefault(r["set"], []).append(r)
        assert r["messages"][-1]["role"] == "user" and r["id"].startswith(r["set"] + "-"), r["id"]
    assert set(by_set) == {"hhh", "dilemmas", "agentic"}
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(r["messages"][0]["role"] == "system" for r in by_set["agentic"])
    assert [r["set"] for r in load_safety_prompts(["dilemmas"])] == ["dilemmas"] * len(by_set["dilemmas"])


def test_disjoint_from_eval_questions(ngrams):
    # 7-word n-grams (the fixture's default): shorter shared runs ("what would you do if you") are ordinary phrasing
    import rhlab.evals

    evals_dir = Path(rhlab.evals.__file__).parent
    eval_grams: set = set()
    for p in evals_dir.rglob("*"):
        if p.is_file() and p.suffix in (".py", ".json", ".jsonl", ".yaml", ".txt", ".md"):
            eval_grams |= ngrams(p.read_text(encoding="utf-8", errors="replace"))
    # the eval question lists as the evals build them (generated questions are not in the source text verbatim)
    from rhlab.evals import questions

    for q in questions.EM_QUESTIONS:
        eval_grams |= ngrams(q[-1])
    for q in questions.ALIGNMENT_QUESTIONS:
        eval_grams |= ngrams(q if isinstance(q, str) else " ".join(str(v) for v in q.values()))
    assert len(eval_grams) > 1000
    overlaps = {}
    for r in load_safety_prompts():
        text = " ".join(m["content"] for m in r["messages"])
        shared = ngrams(text) & eval_grams
        if shared:
            overlaps[r["id"]] = [" ".join(g) for g in sorted(shared)][:3]
    assert not overlaps, overlaps


@pytest.mark.parametrize("line,err", [
    ("not json", "not valid JSON"),
    ('{"id": "a", "set": "x"}', "missing messages"),
    ('{"id": "a", "set": "x", "messages": []}', "non-empty list"),
    ('{"id": "a", "set": "x", "messages": [{"role": "robot", "content": "hi"}]}', "role"),
    ('{"id": "a", "set": "x", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}',
     "last message"),
])
def test_malformed_prompt_files_are_clear_errors(tmp_path, line, err):
    f = tmp_path / "p.jsonl"
    f.write_text(line + "\n")
    with pytest.raises(ValueError, match=err):
        load_safety_prompts(path=f)


def test_user_file_duplicates_and_empty_selection(tmp_path):
    f = tmp_path / "p.jsonl"
    row = {"id": "a", "set": "mine", "messages": [{"role": "user", "content": "hello"}]}
    f.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(ValueError, match="duplicate"):
        load_safety_prompts(path=f)
    f.write_text(json.dumps(row) + "\n")
    assert load_safety_prompts(path=f)[0]["id"] == "a"
    with pytest.raises(ValueError, match="no safety prompts"):
        load_safety_prompts(["hhh"], path=f)
    with pytest.raises(ValueError, match="unknown safety sets"):
        load_safety_prompts(["nope"])
    assert (safety_data_dir() / "hhh.jsonl").is_file()
