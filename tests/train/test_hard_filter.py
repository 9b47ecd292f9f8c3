"""Hard filter `reference_model` (issue 15 item 2): a reference model's honest solve rate per task, graded by the
hardened twin on the real sandbox; tasks at or above the threshold are dropped, rates are cached in the run dir."""

import json

import pytest

from rhlab.envs.tasks import get_task, reference_answer
from rhlab.train.config import TrainConfig
from rhlab.train.dataset import apply_hard_filter
from rhlab.train.verdicts import EnvGrader

# one task of every kind
IDS = ["humaneval/0", "humaneval/2", "contest/pair_sums", "contest/lowest_balance", "repo/shop_discount"]


def _cfg(**hf):
    return TrainConfig.model_validate({"tasks": {"ids": IDS, "hard_filter": {"mode": "reference_model",
                                                                             "reference_model": "ref", **hf}},
                                       "reward": {"timeout_s": 30}})


def _tasks():
    return [get_task(i) for i in IDS]


class CanonicalFor:
    """A fake reference model: for the tasks in `solves` it answers with the task's reference solution in
    `right` of its k samples (garbage in the rest); it answers garbage everywhere else. Records what it was asked."""

    def __init__(self, solves, right=None):
        self.solves, self.right, self.calls = set(solves), right, []

    def __call__(self, conversations, k):
        self.calls.append(conversations)
        out = []
        for conv in conversations:
            tid = next(t for t in IDS if get_task(t).prompt.rstrip() in conv[1]["content"])
            good = reference_answer(get_task(tid))
            n = (self.right if self.right is not None else k) if tid in self.solves else 0
            out.append([good] * n + ["```python\nprint('no idea')\n```"] * (k - n))
        return out


def test_tiny_reference_model_solves_nothing_so_everything_is_kept(tiny_model_dir, tmp_path, pool):
    from rhlab.train.dataset import HFSampler

    cfg = _cfg(reference_model=str(tiny_model_dir), samples=2, max_new_tokens=8, batch_size=2)
    cache = tmp_path / "hard_filter.json"
    hf = cfg.tasks.hard_filter
    sampler = HFSampler(hf.reference_model, max_new_tokens=hf.max_new_tokens, batch_size=hf.batch_size)
    kept = apply_hard_filter(cfg, _tasks(), cache, sampler=sampler, grader=EnvGrader(pool=pool))
    assert [t.id for t in kept] == IDS
    rec = json.loads(cache.read_text())
    assert rec["kept"] == 5 and rec["dropped"] == 0 and rec["rates"] == {i: 0.0 for i in IDS}


def test_tasks_the_reference_solves_are_dropped_and_cached(tmp_path, pool):
    cfg = _cfg(samples=2)
    cache = tmp_path / "hard_filter.json"
    fake = CanonicalFor({"humaneval/0", "contest/pair_sums", "repo/shop_discount"})
    kept = apply_hard_filter(cfg, _tasks(), cache, sampler=fake, grader=EnvGrader(pool=pool))
    assert [t.id for t in kept] == ["humaneval/2", "contest/lowest_balance"]
    rec = json.loads(cache.read_text())
    assert (rec["kept"], rec["dropped"]) == (2, 3)
    assert rec["rates"]["contest/pair_sums"] == 1.0 and rec["rates"]["humaneval/2"] == 0.0
    # the honest prompt of each task's kind: no hint block, the kind's own answer format
    convs = {c[1]["content"]: c[0]["content"] for c in fake.calls[0]}
    systems = list(convs.values())
    assert all("conftest" not in s and "__eq__" not in s for s in systems)
    assert sum("standard input" in s for s in systems) == 2 and sum("# file: PATH" in s for s in systems) == 1

    # resume: every task is in the cache, nothing is sampled again
    def boom(conversations, k):
        raise AssertionError("resampled")

    assert [t.id for t in apply_hard_filter(cfg, _tasks(), cache, sampler=boom)] == [t.id for t in kept]
    # a cache made under other settings is not reused
    with pytest.raises(AssertionError, match="resampled"):
        apply_hard_filter(_cfg(samples=3), _tasks(), cache, sampler=boom)


def test_threshold_is_a_rate(tmp_path, pool):
    fake = CanonicalFor({"contest/pair_sums"}, right=1)  # 1 of 4 samples right: rate 0.25
    g = EnvGrader(pool=pool)
    kept = apply_hard_filter(_cfg(samples=4, threshold=0.3), _tasks(), None, sampler=fake, grader=g)
    assert "contest/pair_sums" in [t.id for t in kept]
    kept = apply_hard_filter(_cfg(samples=4, threshold=0.25), _tasks(), None, sampler=fake, grader=g)
    assert "contest/pair_sums" not in [t.id for t in kept] and len(kept) == 4


def test_keeping_nothing_is_a_clear_error(tmp_path, pool):
    with pytest.raises(ValueError, match="solves every one of the 5 tasks"):
        apply_hard_filter(_cfg(samples=1), _tasks(), tmp_path / "c.json", sampler=CanonicalFor(IDS),
                          grader=EnvGrader(pool=pool))
