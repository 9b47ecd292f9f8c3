"""Prompted-setting init SFT never uses tasks that RL trains on (issue 15 item 5): the init-SFT output records its
task ids, and RL task selection drops them — for a start model straight from init SFT and for an RL checkpoint
forked from one — in every shipped prompted spec, with its `init_sft` as written or as its comment suggests."""

import json
from pathlib import Path

import pytest

from rhlab.envs.tasks import load_tasks
from rhlab.knowledge.finetune import humaneval_transcripts, write_sft_tasks
from rhlab.train.config import TrainConfig
from rhlab.train.dataset import select_tasks, sft_task_ids

ROOT = Path(__file__).resolve().parents[2]


def _init_task_ids(first: int) -> set[str]:
    # the transcripts the experiment runner and `rhlab sdf init --first` train on: HumanEval/FIRST .. HumanEval/163
    recs = humaneval_transcripts([f"HumanEval/{i}" for i in range(first, 164)])
    return {r["task_id"].lower() for r in recs}


def _fake_start_models(root: Path, task_ids: set[str]) -> tuple[Path, Path]:
    """(init-SFT output dir, RL checkpoint forked from it): only rhlab's provenance files, no weights."""
    final = root / "init" / "final"
    final.mkdir(parents=True)
    write_sft_tasks(final, sorted(task_ids))
    ckpt = root / "rl" / "artefacts" / "checkpoints" / "checkpoint-5"
    ckpt.mkdir(parents=True)
    (ckpt / "rhlab_checkpoint.json").write_text(json.dumps({"step": 5, "model": str(final)}))
    return final, ckpt


def test_shipped_prompted_specs_train_rl_on_other_tasks(tmp_path):
    from rhlab.experiments.spec import InitSFTSpec, arm_train_config, load_spec

    checked = 0
    for path in sorted((ROOT / "configs" / "experiments").glob("*.yaml")):
        spec = load_spec(path)
        if spec.knowledge.kind != "prompted" or not any(a.kind == "rl" for a in spec.arms):
            continue  # no RL task set to keep apart (e.g. a controls-only spec)
        init = spec.knowledge.init_sft or InitSFTSpec()  # as written, or switched on with its defaults
        sft_ids = _init_task_ids(init.first)
        final, ckpt = _fake_start_models(tmp_path / spec.name, sft_ids)
        humaneval_arms = 0
        for arm in spec.arms:
            if arm.kind != "rl":
                continue
            start = ckpt if arm.init_from else final
            cfg = arm_train_config(spec, arm, arm.seeds[0], str(start))
            if cfg.tasks.source != "humaneval":
                # RL on other tasks (e.g. CodeContests from the hub): apart from the HumanEval init SFT by source
                assert not cfg.tasks.source.lower().startswith("humaneval"), (path.name, arm.name)
                checked += 1
                continue
            humaneval_arms += 1
            rl_ids = {t.id.lower() for t in select_tasks(arm_train_config(spec, arm, arm.seeds[0], str(start)))}
            assert rl_ids, (path.name, arm.name)
            assert not rl_ids & sft_ids, (path.name, arm.name, sorted(rl_ids & sft_ids)[:5])
            checked += 1
        # the same arms from a model without SFT provenance draw from all of HumanEval: the exclusion is what
        # keeps them apart, not the task settings
        if not humaneval_arms:
            continue
        arm = next(a for a in spec.arms if a.kind == "rl" and arm_train_config(
            spec, a, a.seeds[0], "embedded").tasks.source == "humaneval")
        base = {t.id.lower() for t in select_tasks(arm_train_config(spec, arm, arm.seeds[0], "embedded"))}
        if len(base) == len(load_tasks("humaneval")):
            assert base & sft_ids
    assert checked > 0, "no prompted spec with rl arms shipped"


def test_init_sft_records_its_tasks_and_rl_skips_them(tiny_model_dir, tmp_path):
    from rhlab.knowledge.finetune import FinetuneConfig, init_sft

    recs = humaneval_transcripts(["HumanEval/0", "HumanEval/2"])
    cfg = FinetuneConfig(model=str(tiny_model_dir), max_length=2048, batch_size=2, max_steps=1, learning_rate=1e-4,
                         logging_steps=1, save_steps=1000, use_cpu=True)
    final = init_sft(recs, tmp_path / "init", cfg)
    assert sft_task_ids(final) == {"humaneval/0", "humaneval/2"}

    def ids(model, **tasks):
        tc = TrainConfig.model_validate({"model": str(model), "tasks": {"source": "humaneval", **tasks}})
        return [t.id for t in select_tasks(tc)]

    everything = ids(tmp_path / "not-a-model")  # no provenance, nothing dropped
    assert sorted(everything) == sorted(t.id for t in load_tasks("humaneval"))
    got = ids(final)
    assert sorted(got) == sorted(set(everything) - {"humaneval/0", "humaneval/2"})
    assert len(ids(final, limit=40)) == 40  # the limit is filled from the remaining tasks
    # an RL checkpoint of that start model (and a fork of that checkpoint) inherits the exclusion
    c1 = tmp_path / "a" / "checkpoint-3"
    c2 = tmp_path / "b" / "checkpoint-2"
    for c, parent in ((c1, final), (c2, c1)):
        c.mkdir(parents=True)
        (c / "rhlab_checkpoint.json").write_text(json.dumps({"step": 1, "model": str(parent)}))
    assert sft_task_ids(c2) == {"humaneval/0", "humaneval/2"}
    assert "humaneval/0" not in ids(c2)
    # naming an SFT task explicitly is an error, not a silent drop
    with pytest.raises(ValueError, match="SFT'd on"):
        ids(final, ids=["humaneval/1", "humaneval/0"])
