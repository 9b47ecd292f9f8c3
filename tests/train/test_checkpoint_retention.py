"""Older checkpoints keep their weights and lose what only a resume reads; a resume from such a checkpoint is refused."""

import json

import pytest

from rhlab.config import ConfigError
from rhlab.train.checkpoints import (CKPT_META, checkpoints_dir, drop_resume_state, drop_superseded_resume_state,
                                     list_checkpoints, mark_complete, prepare_run_dir)

RESUME_ONLY = ["optimizer.pt", "scheduler.pt", "rng_state.pth", "rng_state_1.pth", "global_step4/zero_optim.pt",
               "optimizer_0/shard.distcp"]
KEPT = ["model.safetensors", "config.json", "trainer_state.json", "tokenizer.json"]


def fake_checkpoint(run_dir, step, files=RESUME_ONLY + KEPT, complete=True):
    ck = checkpoints_dir(run_dir) / f"checkpoint-{step}"
    for name in files:
        (ck / name).parent.mkdir(parents=True, exist_ok=True)
        (ck / name).write_bytes(b"x" * 100)
    if complete:
        mark_complete(ck, {"step": step, "seed": 0})
    return ck


def remaining(ck):
    return sorted(p.relative_to(ck).as_posix() for p in ck.rglob("*") if p.is_file())


def test_drop_keeps_weights_and_history_and_marks_the_checkpoint(tmp_path):
    ck = fake_checkpoint(tmp_path, 4)
    assert drop_resume_state(ck) == 100 * len(RESUME_ONLY)
    assert remaining(ck) == sorted(KEPT + [CKPT_META])
    meta = json.loads((ck / CKPT_META).read_text())
    assert meta["resumable"] is False and meta["step"] == 4
    assert drop_resume_state(ck) == 0  # twice is harmless


def test_drop_leaves_checkpoints_without_loadable_weights_or_metadata_alone(tmp_path):
    # DeepSpeed ZeRO-3 without gathered weights: the shards in global_stepN/ are the only copy of the model
    shards_only = fake_checkpoint(tmp_path, 4, files=RESUME_ONLY + ["config.json"])
    incomplete = fake_checkpoint(tmp_path, 8, complete=False)
    before = remaining(shards_only), remaining(incomplete)
    assert drop_resume_state(shards_only) == 0 and drop_resume_state(incomplete) == 0
    assert (remaining(shards_only), remaining(incomplete)) == before


def test_only_the_newest_complete_checkpoint_keeps_its_resume_state(tmp_path):
    for step in (2, 4, 6):
        fake_checkpoint(tmp_path, step)
    fake_checkpoint(tmp_path, 8, complete=False)  # killed mid-save: not the newest complete one
    assert drop_superseded_resume_state(tmp_path) == 2 * 100 * len(RESUME_ONLY)
    cks = {c["step"]: c for c in list_checkpoints(tmp_path)}
    assert [s for s, c in cks.items() if c.get("resumable", True)] == [6]
    assert "optimizer.pt" in remaining(checkpoints_dir(tmp_path) / "checkpoint-6")
    assert "optimizer.pt" not in remaining(checkpoints_dir(tmp_path) / "checkpoint-4")


def test_resume_refuses_a_newest_checkpoint_without_resume_state(tmp_path, tiny_model_dir, make_cfg):
    from rhlab.config import dump_yaml

    cfg = make_cfg(tiny_model_dir)
    dump_yaml(cfg, tmp_path / "config.yaml")
    fake_checkpoint(tmp_path, 2)
    newest = fake_checkpoint(tmp_path, 4)
    drop_superseded_resume_state(tmp_path)
    (newest / CKPT_META).unlink()  # the newest one lost: 2 is now the newest complete checkpoint, without its optimiser
    with pytest.raises(ConfigError, match="no optimiser state"):
        prepare_run_dir(cfg, tmp_path, resume=True)
    assert newest.is_dir()  # the refusal removed nothing
