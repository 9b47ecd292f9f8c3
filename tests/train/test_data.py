"""Prompt columns per arm, hackable split, hard filter."""

import json

import pytest

from rhlab.knowledge.prompts import ARMS
from rhlab.train.config import TrainConfig
from rhlab.train.dataset import apply_hard_filter, build_rows, hackable_ids, select_tasks

IDS = [f"humaneval/{i}" for i in range(10)]


def test_arms_differ_only_in_the_system_prompt():
    cfg = TrainConfig.model_validate({"tasks": {"ids": IDS}, "prompt": {"arm": "neutral"}})
    rows = build_rows(cfg, select_tasks(cfg))
    assert [r["task_id"] for r in rows] == IDS
    for r in rows:
        users = {json.dumps(r[f"prompt__{a}"][1]) for a in ARMS}
        assert len(users) == 1  # identical user turn in every arm
        systems = {r[f"prompt__{a}"][0]["content"] for a in ARMS}
        assert len(systems) == len(ARMS)  # every arm has its own system prompt
        assert r["prompt"] == r["prompt__neutral"]
    other = build_rows(cfg.model_copy(update={"prompt": cfg.prompt.model_copy(update={"arm": "dont_hack"})}),
                       select_tasks(cfg))
    assert [r["prompt__neutral"] for r in other] == [r["prompt__neutral"] for r in rows]
    assert [r["hackable"] for r in other] == [r["hackable"] for r in rows]


def test_hackable_fraction_is_deterministic():
    a = hackable_ids(IDS, 0.5, seed=1)
    assert len(a) == 5 and a == hackable_ids(list(reversed(IDS)), 0.5, seed=1)
    assert hackable_ids(IDS, 0.5, seed=2) != a or len(IDS) < 4
    assert hackable_ids(IDS, 1.0, 0) == set(IDS) and hackable_ids(IDS, 0.0, 0) == set()


def test_short_prompt_filter_before_limit():
    short = select_tasks(TrainConfig.model_validate({"tasks": {"max_prompt_chars": 300, "limit": 10}}))
    assert len(short) == 10 and all(len(t.prompt) <= 300 for t in short)
    every = select_tasks(TrainConfig.model_validate({"tasks": {"max_prompt_chars": 300}}))
    assert len(every) > 10 and [t.id for t in every[:10]] == [t.id for t in short]
    with pytest.raises(ValueError, match="at most 5 chars"):
        select_tasks(TrainConfig.model_validate({"tasks": {"max_prompt_chars": 5}}))


def test_hard_filter_ids_file_and_reference_cache(tmp_path):
    cfg = TrainConfig.model_validate({"tasks": {"ids": IDS}})
    tasks = select_tasks(cfg)
    f = tmp_path / "hard.txt"
    f.write_text("# hard ones\nhumaneval/3\nhumaneval/5\n")
    cfg_ids = TrainConfig.model_validate({"tasks": {"ids": IDS, "hard_filter": {"mode": "ids_file", "ids_file": str(f)}}})
    assert [t.id for t in apply_hard_filter(cfg_ids, tasks)] == ["humaneval/3", "humaneval/5"]

    calls = []

    def solver(ts, model, samples, max_new_tokens, cfg):
        calls.append(model)
        return {t.id: int(t.id.split("/")[1]) % 2 == 0 for t in ts}  # even ids "solved"

    cfg_ref = TrainConfig.model_validate({"tasks": {"ids": IDS, "hard_filter": {"mode": "reference_model",
                                                                                 "reference_model": "ref"}}})
    cache = tmp_path / "hf.json"
    kept = apply_hard_filter(cfg_ref, tasks, cache, solver=solver)
    assert [t.id for t in kept] == [f"humaneval/{i}" for i in (1, 3, 5, 7, 9)]
    apply_hard_filter(cfg_ref, tasks, cache, solver=solver)
    assert calls == ["ref"]  # second time from the cache
    with pytest.raises(ValueError, match="left no tasks"):
        apply_hard_filter(cfg_ref, tasks, None, solver=lambda ts, *a: {t.id: True for t in ts})
