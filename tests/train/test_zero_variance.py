"""Zero-variance groups (issue 15 item 3): every step record carries the share of prompt groups whose rewards are all
equal, checked against the episodes log on a tiny model with a fake grader, under both ways the share is obtained
(TRL's per-group `frac_reward_zero_std`, and rhlab's own count when TRL's is a whole-batch figure)."""

import zlib
from types import SimpleNamespace

import pytest

from rhlab.rundir import read_records

TASKS = ["humaneval/0", "humaneval/2", "humaneval/4", "humaneval/7"]


class TaskGrader:
    """humaneval/0: every answer passes; humaneval/2: none does; the other two: pass by a hash of the answer text, so
    their groups usually (not always) mix passes and failures."""

    async def agrade_many(self, items):
        out = []
        for task, text, _s in items:
            if task.id == "humaneval/0":
                ok = True
            elif task.id == "humaneval/2":
                ok = False
            else:
                ok = zlib.crc32(text.encode()) % 2 == 0
            out.append(SimpleNamespace(passed=ok, passed_hardened=ok, attempted_hacks=[], detected_hacks=[],
                                       parse_error=None, timed_out=False, crashed=False, grade_time_s=0.0))
        return out


def _expected_shares(run_dir):
    """Per step: share of the step's task groups whose logged rewards are all equal (from records/episodes.jsonl)."""
    by_step: dict[int, dict[str, set]] = {}
    for e in read_records(run_dir / "records" / "episodes.jsonl"):
        by_step.setdefault(e["step"], {}).setdefault(e["task_id"], set()).add(e["reward"])
    return {s: (len(g), sum(len(r) == 1 for r in g.values()) / len(g)) for s, g in by_step.items()}


@pytest.mark.parametrize("scale", ["none", "batch"])
def test_zero_variance_share_in_step_records(tiny_model_dir, tmp_path, make_cfg, scale):
    from rhlab.train import train

    # 4 prompts per step over 4 tasks: every step holds the all-pass and the all-fail group (share >= 0.5), and the
    # batch always mixes passes and failures, so a whole-batch std is never 0
    cfg = make_cfg(tiny_model_dir, tasks={"source": "humaneval", "ids": TASKS},
                   grpo={"num_generations": 4, "prompts_per_step": 4, "max_steps": 2, "scale_rewards": scale},
                   logging={"progress": False, "transcripts_per_step": 0, "tensorboard": scale == "none"})
    res = train(cfg, tmp_path / "run", grader=TaskGrader())
    expected = _expected_shares(res.run_dir)
    assert sorted(expected) == [1, 2]
    for r in res.records:
        n_groups, share = expected[r["step"]]
        assert n_groups == 4
        assert share >= 0.5
        assert r["zero_variance_share"] == pytest.approx(share)
        if scale == "none":  # TRL's metric is per group here and is reused as is
            assert r["zero_variance_share"] == r["trl"]["frac_reward_zero_std"]
            assert "rhlab/zero_variance_share" not in r["trl"]
        else:  # TRL's is the batch's std (never 0 here): rhlab counts the groups itself
            assert r["trl"]["frac_reward_zero_std"] == 0.0
            assert r["trl"]["rhlab/zero_variance_share"] == pytest.approx(share)
    if scale == "none":
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(res.run_dir / "artefacts" / "tensorboard"))
        acc.Reload()
        got = {e.step: e.value for e in acc.Scalars("train/rhlab/zero_variance_share")}
        assert got == pytest.approx({s: expected[s][1] for s in expected})
