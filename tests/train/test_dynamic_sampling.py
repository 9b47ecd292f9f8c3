"""Dynamic sampling (issue 15 item 3): DAPO-style refills of zero-variance groups inside RHGRPOTrainer, with their
cost in the step records, on a tiny model with a fake grader whose reward is constant on some tasks."""

import zlib
from collections import Counter
from types import SimpleNamespace

import pytest

from rhlab.rundir import read_records
from rhlab.train.config import TrainConfig
from rhlab.train.grpo import select_groups

TASKS = ["humaneval/0", "humaneval/2", "humaneval/4", "humaneval/7"]
MIXED = {"humaneval/4", "humaneval/7"}


class TaskGrader:
    """humaneval/0: every answer passes, humaneval/2: none does (zero-variance groups); the two others pass by a hash
    of the answer text, alternating inside each call, so their groups always mix passes and failures. `mixed=False`:
    every task is constant."""

    def __init__(self, mixed=True):
        self.mixed = mixed

    async def agrade_many(self, items):
        out, seen = [], Counter()
        for task, text, _s in items:
            if self.mixed and task.id in MIXED:
                seen[task.id] += 1
                ok = seen[task.id] % 2 == 0
            else:
                ok = task.id in ("humaneval/0", "humaneval/4")
            out.append(SimpleNamespace(passed=ok, passed_hardened=ok, attempted_hacks=[], detected_hacks=[],
                                       parse_error=None, timed_out=False, crashed=False, grade_time_s=0.0))
        return out


def test_select_groups_prefers_variance_then_fills():
    assert select_groups([[True, False], [False, True]], 2) == [(0, 1), (1, 0)]
    assert select_groups([[False, False], [False, False]], 2) == [(0, 0), (0, 1)]
    # the cap was hit with one varied group: the batch keeps its size with the first draws' flat groups
    assert select_groups([[True, True], [True, False]], 2) == [(1, 1), (0, 0)]
    assert select_groups([[True, True]], 2) == [(0, 0), (0, 1)]


def test_config_fields_and_refusals(make_cfg):
    cfg = TrainConfig.model_validate({"grpo": {"dynamic_sampling": {"enabled": True}}})
    assert cfg.grpo.dynamic_sampling.max_draws == 4
    assert TrainConfig().grpo.dynamic_sampling.enabled is False
    with pytest.raises(ValueError, match="max_draws"):
        TrainConfig.model_validate({"grpo": {"dynamic_sampling": {"enabled": True, "max_draws": 1}}})
    with pytest.raises(ValueError, match="safety mix"):
        TrainConfig.model_validate({"grpo": {"dynamic_sampling": {"enabled": True}},
                                    "safety": {"scorer": {"model": "x"}}})


def _per_step_episodes(run_dir):
    out = {}
    for e in read_records(run_dir / "records" / "episodes.jsonl"):
        out.setdefault(e["step"], Counter())[e["task_id"]] += max(1, e.get("copies", 1))
    return out


@pytest.mark.parametrize("mixed", [True, False])
def test_dynamic_sampling_bookkeeping(tiny_model_dir, tmp_path, make_cfg, mixed):
    from rhlab.train import train

    g, p, cap = 4, 2, 3
    cfg = make_cfg(tiny_model_dir, tasks={"source": "humaneval", "ids": TASKS},
                   grpo={"num_generations": g, "prompts_per_step": p, "max_steps": 2 if mixed else 1,
                         "dynamic_sampling": {"enabled": True, "max_draws": cap},
                         # mask: TRL's share of zero-advantage rows in the trained batch is then logged
                         "zero_variance_groups": "mask"},
                   logging={"progress": False, "transcripts_per_step": 0, "tensorboard": False})
    res = train(cfg, tmp_path / "run", grader=TaskGrader(mixed))
    episodes = _per_step_episodes(res.run_dir)
    assert len(res.records) == cfg.grpo.max_steps
    for r in res.records:
        draws = r["dynamic_draws"]
        assert draws == int(draws) and 1 <= draws <= cap
        # every draw's completions were generated, graded and logged; the extra ones are counted as the cost
        assert r["dynamic_extra_generations"] == (draws - 1) * g * p
        assert r["n_completions"] == draws * g * p == sum(episodes[r["step"]].values())
        if mixed:
            # two tasks always vary: the first draw either holds both (no refill) or the refill brings the
            # missing one (draws from tasks not drawn yet this step), so the trained batch is all varied
            assert draws <= 2 and r["dynamic_zero_variance_kept"] == 0.0
            # the batch trained on holds only the varied groups: no row has a zero advantage
            assert r["trl"]["rhlab/zero_variance_masked"] == 0.0
            assert (draws == 1) == (r["zero_variance_share"] == 0.0)
            if draws == 1:
                assert set(episodes[r["step"]]) <= MIXED
            else:  # the step saw the other two tasks as well
                assert set(episodes[r["step"]]) & MIXED and len(episodes[r["step"]]) >= 3
        else:
            # nothing varies: the cap is reached and the batch is filled with flat groups
            assert draws == cap and r["dynamic_zero_variance_kept"] == 1.0 and r["zero_variance_share"] == 1.0
            assert r["trl"]["rhlab/zero_variance_masked"] == 1.0
            assert r["trl"]["rhlab/dynamic_draws"] == cap
