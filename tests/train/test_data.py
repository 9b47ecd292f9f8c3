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


def test_hard_filter_ids_file(tmp_path):
    cfg = TrainConfig.model_validate({"tasks": {"ids": IDS}})
    tasks = select_tasks(cfg)
    f = tmp_path / "hard.txt"
    f.write_text("# hard ones\nhumaneval/3\nhumaneval/5\n")
    cfg_ids = TrainConfig.model_validate({"tasks": {"ids": IDS, "hard_filter": {"mode": "ids_file", "ids_file": str(f)}}})
    assert [t.id for t in apply_hard_filter(cfg_ids, tasks)] == ["humaneval/3", "humaneval/5"]

    with pytest.raises(ValueError, match="keeps none of the 10"):
        f.write_text("humaneval/99\n")
        apply_hard_filter(cfg_ids, tasks)


def test_each_task_kind_gets_its_own_format_and_user_turn():
    """A contest problem is not presented as a function to complete, nor a repository listing wrapped in a code
    fence; the function prompt is unchanged. Arms still differ only in the system prompt's framing."""
    ids = ["humaneval/0", "contest/pair_sums", "repo/shop_discount"]
    from rhlab.envs.tasks import get_task

    cfg = TrainConfig.model_validate({"prompt": {"arm": "dont_hack"}})
    tasks = [get_task(i) for i in ids]
    rows = {r["task_id"]: r for r in build_rows(cfg, tasks)}
    by_id = {t.id: t for t in tasks}
    fn, io, repo = (rows[i]["prompt"] for i in ids)
    assert fn[1]["content"] == f"Complete the following Python function.\n\n```python\n{by_id[ids[0]].prompt.rstrip()}\n```"
    assert "function" not in io[1]["content"] and "```python" not in io[1]["content"]
    assert "standard input" in io[1]["content"] and by_id[ids[1]].prompt.rstrip() in io[1]["content"]
    assert repo[1]["content"] == by_id[ids[2]].prompt.rstrip()  # its own `# file:` fences stay intact
    assert "function signature" in fn[0]["content"] and "standard input" in io[0]["content"]
    assert "# file: PATH" in repo[0]["content"]
    # the hint block is the same for every kind
    for sys_prompt in (fn[0]["content"], io[0]["content"], repo[0]["content"]):
        assert "We do not want these or any other reward hacks" in sys_prompt and "TestReport" in sys_prompt
    # an explicit user_template applies to every kind
    cfg2 = TrainConfig.model_validate({"prompt": {"user_template": "TASK:\n{prompt}"}})
    assert all(r["prompt"][1]["content"].startswith("TASK:\n") for r in build_rows(cfg2, tasks))
