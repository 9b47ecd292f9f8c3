"""GRPO end to end on a tiny random model with the real sandbox grader; resume after SIGKILL in a subprocess."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


from rhlab.config import ConfigError, dump_yaml  # noqa: E402
from rhlab.rundir import read_records  # noqa: E402


def test_three_grpo_steps_with_records(tiny_model_dir, tmp_path, make_cfg):
    from rhlab.train import list_checkpoints, train

    cfg = make_cfg(tiny_model_dir, grpo={"zero_variance_groups": "mask"},
                      reward={"penalty": {"mode": "from_step", "start_step": 2}})
    res = train(cfg, tmp_path / "run")
    recs = res.records
    assert [r["step"] for r in recs] == [1, 2, 3] and res.steps == 3
    # a completion's reward lies between "the penalty fired" and "passed with a parsable block" (no PM here)
    w = cfg.reward.weights
    reward_lo, reward_hi = w.penalty * cfg.reward.penalty.value, w.pass_ + w.format
    assert cfg.reward.pm is None and reward_lo < 0 < reward_hi
    for r in recs:
        assert r["n_completions"] == cfg.batch_size  # every completion graded (random text: distinct)
        for k in ("pass_rate", "passed_hardened_rate", "hack_success_any", "hack_attempt_always_equal",
                  "hack_success_conftest_patch", "cot_mentions_hack_rate", "parse_error_rate"):
            assert 0.0 <= r[k] <= 1.0, (k, r[k])
        assert reward_lo <= r["reward_mean"] <= reward_hi, r["reward_mean"]
        assert r["step_seconds"] > 0 and r["grade_seconds"] >= 0
        assert r["grade_share"] == pytest.approx(r["grade_seconds"] / r["step_seconds"], rel=1e-2, abs=1e-4)
        assert "loss" in r["trl"] and "rewards/pass/mean" in r["trl"]
        assert "onset_step" in r
    assert [r["penalty_active"] for r in recs] == [False, True, True]
    # a random tiny model writes no code block: every answer is a parse error scoring 0, never NaN
    assert all(r["parse_error_rate"] == 1.0 and r["reward_mean"] == 0.0 for r in recs)
    # all-zero groups were masked out of the loss
    assert all(r["trl"]["rhlab/zero_variance_masked"] == 1.0 for r in recs)
    # checkpoints every 2 steps and at the end, each with metadata
    cks = list_checkpoints(res.run_dir)
    assert [c["step"] for c in cks] == [2, 3]
    assert all(Path(c["path"], "trainer_state.json").exists() for c in cks)
    # only the newest keeps what a resume reads; the older one keeps its weights (an eval point)
    assert [Path(c["path"], "optimizer.pt").exists() for c in cks] == [False, True]
    assert all(any(Path(c["path"]).glob("*.safetensors")) for c in cks)
    tr = list(read_records(res.run_dir / "records" / "transcripts.jsonl"))
    assert len(tr) == 3 * cfg.logging.transcripts_per_step and {t["step"] for t in tr} == {1, 2, 3}
    assert all("completion" in t and "verdict" in t for t in tr)
    assert any((res.run_dir / "artefacts" / "tensorboard").glob("events.out.tfevents.*"))
    # the same dir cannot be started again without --resume
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, res.run_dir)


def test_resume_after_sigkill(tiny_model_dir, tmp_path, make_cfg):
    cfg = make_cfg(tiny_model_dir, grpo={"max_steps": 7}, checkpoint_every=2)
    cfg_path = tmp_path / "train.yaml"
    dump_yaml(cfg, cfg_path)
    run = tmp_path / "run"
    steps_file = run / "records" / "train_steps.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "rhlab.cli", "train", "grpo", str(cfg_path), "--run-dir", str(run), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    killed_after = None
    deadline = time.time() + 400
    try:
        while time.time() < deadline:
            steps = [r["step"] for r in read_records(steps_file)] if steps_file.exists() else []
            ckpt2 = (run / "artefacts" / "checkpoints" / "checkpoint-2" / "rhlab_checkpoint.json").exists()
            if steps and max(steps) >= 3 and ckpt2:
                os.kill(proc.pid, signal.SIGKILL)
                killed_after = max(steps)
                break
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    err = proc.stderr.read().decode(errors="replace")[-3000:]
    assert killed_after is not None, f"run ended (rc={proc.returncode}) before it could be killed:\n{err}"
    assert rc == -signal.SIGKILL
    assert killed_after < 7, "the run finished before the kill; the test proved nothing"
    before = [r["step"] for r in read_records(steps_file)]
    # resume: the last complete checkpoint is loaded and later records are dropped and redone
    out = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    recs = list(read_records(steps_file))
    assert [r["step"] for r in recs] == list(range(1, 8)), (before, [r["step"] for r in recs])
    tr = list(read_records(run / "records" / "transcripts.jsonl"))
    per_step = {}
    for t in tr:
        per_step[t["step"]] = per_step.get(t["step"], 0) + 1
    assert per_step == {s: cfg.logging.transcripts_per_step for s in range(1, 8)}
    meta = list(read_records(run / "records" / "checkpoints.jsonl"))
    assert sorted(m["step"] for m in meta) == [2, 4, 6, 7]
    from rhlab.train import list_checkpoints

    assert [(c["step"], Path(c["path"], "optimizer.pt").exists()) for c in list_checkpoints(run)] == \
        [(2, False), (4, False), (6, False), (7, True)]
    # TensorBoard (TRL's report_to logger) also holds each step once: the redone steps' old events are purged
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "artefacts" / "tensorboard"))
    acc.Reload()
    for tag in ("train/loss", "train/rhlab/step_seconds"):
        assert [e.step for e in acc.Scalars(tag)] == list(range(1, 8)), tag
    got = {e.step: e.value for e in acc.Scalars("train/rhlab/step_seconds")}
    assert got == pytest.approx({r["step"]: r["step_seconds"] for r in recs}, rel=1e-5)
    # a resume with a changed reward is refused (an arm must not silently change mid-run)
    bad = cfg.model_copy(deep=True)
    bad.reward.weights.format = 0.5
    dump_yaml(bad, cfg_path)
    out = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "reward.weights.format" in out.stderr
