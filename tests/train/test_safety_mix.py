"""RLHF safety mix in GRPO on tiny models: chat rows scored by a tiny reward model, code rows by a fake grader;
switch modes; the episodes log and its resume exactness; the judge scorer."""

from collections import Counter
from types import SimpleNamespace

import pytest

from rhlab.rundir import read_records


class FakeGrader:
    """Verdicts without the sandbox: `passed` for every answer when `pass_all`; records what it was asked."""

    def __init__(self, pass_all=False):
        self.pass_all = pass_all
        self.task_ids = []

    async def agrade_many(self, items):
        out = []
        for task, _text, _s in items:
            self.task_ids.append(task.id)
            out.append(SimpleNamespace(passed=self.pass_all, passed_hardened=self.pass_all, attempted_hacks=[],
                                       detected_hacks=[], parse_error=None, timed_out=False, crashed=False,
                                       grade_time_s=0.0))
        return out


@pytest.fixture(scope="module")
def tiny_rm_dir(tiny_model_dir, tmp_path_factory):
    """A tiny random sequence-classification reward model sharing the tiny LM's tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    path = tmp_path_factory.mktemp("rm") / "rm"
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    config = AutoConfig.for_model("llama", vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                  num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2, num_labels=1,
                                  pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _safety(rm, **start):
    return {"fraction": 0.5, "sets": ["hhh"], "scorer": {"kind": "reward_model", "model": str(rm)},
            "start": start or "from_start"}


def test_chat_count_and_sampler_share(tiny_model_dir):
    import datasets

    from rhlab.train.safety_mix import chat_count, make_mix_sampler

    for f, p in ((0.05, 2), (0.5, 2), (0.3, 4), (1.0, 3)):
        counts = [chat_count(k, f, p) for k in range(200)]
        assert all(0 <= c <= p for c in counts)
        assert abs(sum(counts) - f * p * 200) <= 1
    rows = [{"kind": "code"}] * 10 + [{"kind": "chat"}] * 6
    ds = datasets.Dataset.from_list(rows)
    s = make_mix_sampler(ds, 0.25, mini_repeat_count=3, batch_size=4, repeat_count=1, seed=0)
    idx = list(s)
    assert len(idx) == len(s) == 4 * 4 * 3
    chunks = [idx[i:i + 12] for i in range(0, len(idx), 12)]
    for ch in chunks:  # one chat prompt of four per step, each prompt repeated G=3 times in a row
        uniq = list(dict.fromkeys(ch))
        assert len(uniq) == 4 and all(ch.count(u) == 3 for u in uniq)
        assert sum(rows[u]["kind"] == "chat" for u in uniq) == 1
    assert list(make_mix_sampler(ds, 0.25, 3, 4, 1, seed=0)) == idx  # deterministic
    with pytest.raises(ValueError, match="no chat rows"):
        make_mix_sampler(datasets.Dataset.from_list(rows[:10]), 0.5, 2, 2, 1, 0)


def test_config_validation(tiny_rm_dir):
    from rhlab.config import ConfigError, validate
    from rhlab.train.config import TrainConfig

    ok = validate(TrainConfig, {"safety": _safety(tiny_rm_dir, mode="from_step", step=2)})
    assert ok.safety.start.step == 2
    for bad, msg in (({"fraction": 0.01}, "fraction"), ({"start": {"mode": "from_step"}}, "needs safety.start.step"),
                     ({"start": {"mode": "after_threshold"}}, "threshold"),
                     ({"fraction": 1.0, "start": {"mode": "after_threshold", "threshold": 0.5}}, "never fires"),
                     ({"sets": ["nope"]}, "sets")):
        with pytest.raises(ConfigError, match=msg):
            validate(TrainConfig, {"safety": {**_safety(tiny_rm_dir), **bad}})


def test_safety_mix_from_start(tiny_model_dir, tiny_rm_dir, tmp_path, make_cfg):
    from rhlab.train import train

    grader = FakeGrader()
    cfg = make_cfg(tiny_model_dir, grpo={"max_steps": 2}, safety=_safety(tiny_rm_dir))
    res = train(cfg, tmp_path / "run", grader=grader)
    G = cfg.grpo.num_generations
    assert all(t.startswith("humaneval/") for t in grader.task_ids)  # the grader never saw a chat row
    for r in res.records:
        assert r["n_chat"] == G and r["n_completions"] == G and r["chat_share"] == 0.5
        assert r["safety_active"] is True and isinstance(r["safety_reward_mean"], float)
        assert r["trl"]["rhlab/chat_masked"] == 0.0
        assert "rewards/safety/mean" in r["trl"] and "rewards/pass/mean" in r["trl"]
    eps = list(read_records(res.run_dir / "records" / "episodes.jsonl"))
    assert Counter((e["step"], e["kind"]) for e in eps) == {(1, "code"): G, (1, "chat"): G, (2, "code"): G,
                                                             (2, "chat"): G}
    for e in eps:
        assert e["arm"] == "no_hints" and isinstance(e["completion"], str) and e["user"]
        if e["kind"] == "chat":
            assert e["task_id"].startswith("hhh-") and e["reward"] == e["safety_score"] and e["passed"] is None
        else:
            assert e["system"] and e["reward"] == 0.0 and e["passed"] is False and e["hacked"] is False
            assert e["attempted_hacks"] == [] and e["detected_hacks"] == []


@pytest.mark.parametrize("start,pass_all,expect", [
    ({"mode": "from_step", "step": 2}, False, [False, True]),
    ({"mode": "after_threshold", "threshold": 0.5}, True, [False, True]),
    ({"mode": "after_threshold", "threshold": 0.5}, False, [False, False]),
])
def test_switch_modes(tiny_model_dir, tiny_rm_dir, tmp_path, make_cfg, start, pass_all, expect):
    from rhlab.train import train

    cfg = make_cfg(tiny_model_dir, grpo={"max_steps": 2}, safety=_safety(tiny_rm_dir, **start),
                   logging={"transcripts_per_step": 0, "progress": False, "tensorboard": False})
    res = train(cfg, tmp_path / "run", grader=FakeGrader(pass_all=pass_all))
    assert [r["safety_active"] for r in res.records] == expect
    for r, on in zip(res.records, expect):
        assert (r["safety_reward_mean"] is not None) == on
        # before the switch the chat rows (half the batch) are out of the loss
        assert r["trl"]["rhlab/chat_masked"] == (0.0 if on else 0.5)
    if start["mode"] == "after_threshold" and pass_all:
        assert res.records[0]["safety_triggered_at"] == 1 and res.records[1]["safety_switch_step"] == 2
    eps = list(read_records(res.run_dir / "records" / "episodes.jsonl"))
    for e in eps:
        if e["kind"] == "chat":
            assert (e["reward"] is not None) == expect[e["step"] - 1] == e["safety_active"]


def _kill_before_last_checkpoint_completes(monkeypatch):
    """A run killed while saving its last checkpoint never dropped the resume state of the one before (that happens
    once a newer checkpoint is complete): keep every checkpoint's state during the run that is to be 'killed'."""
    monkeypatch.setattr("rhlab.train.callback.drop_superseded_resume_state", lambda run_dir: 0)


def _as_if_killed_mid_save(run_dir, step, monkeypatch):
    """Checkpoint `step` as a kill mid-save leaves it: no rhlab metadata (incomplete); later runs drop state again."""
    from rhlab.train.checkpoints import CKPT_META, checkpoints_dir

    (checkpoints_dir(run_dir) / f"checkpoint-{step}" / CKPT_META).unlink()
    monkeypatch.undo()


def test_episodes_resume_exactness(tiny_model_dir, tmp_path, make_cfg, monkeypatch):
    """Kill after step 3 with the last complete checkpoint at 2: resume drops episodes of step 3 and redoes them.

    8 tasks / 2 per step: the three steps stay inside the sampler's first pass (TRL's RepeatSampler does not replay
    its generator across passes on resume, so a redone step in a later pass may draw other prompts)."""
    from rhlab.train import train

    cfg = make_cfg(tiny_model_dir, grpo={"max_steps": 3}, checkpoint_every=2,
                   tasks={"source": "humaneval", "ids": [f"humaneval/{i}" for i in (0, 2, 4, 7, 9, 11, 12, 13)]},
                   logging={"transcripts_per_step": 0, "progress": False, "tensorboard": False})
    _kill_before_last_checkpoint_completes(monkeypatch)
    res = train(cfg, tmp_path / "run", grader=FakeGrader())
    path = res.run_dir / "records" / "episodes.jsonl"
    first = list(read_records(path))
    assert Counter(e["step"] for e in first) == {1: cfg.batch_size, 2: cfg.batch_size, 3: cfg.batch_size}
    _as_if_killed_mid_save(res.run_dir, 3, monkeypatch)
    res2 = train(cfg, res.run_dir, resume=True, grader=FakeGrader())
    again = list(read_records(path))
    assert [e["step"] for e in again] == [e["step"] for e in first]  # each step exactly once, in order
    assert [e for e in again if e["step"] <= 2] == [e for e in first if e["step"] <= 2]
    # the redone step sees the same prompts (data position restored from the checkpoint)
    assert sorted(e["task_id"] for e in again if e["step"] == 3) == sorted(e["task_id"] for e in first
                                                                          if e["step"] == 3)
    assert [r["step"] for r in res2.records] == [1, 2, 3]
    off = cfg.model_copy(deep=True)
    off.logging.episodes = False
    res3 = train(off, tmp_path / "run_off", grader=FakeGrader())
    assert res3.steps == 3 and not (res3.run_dir / "records" / "episodes.jsonl").exists()


def test_judge_scorer_on_tiny_model(tiny_model_dir):
    from rhlab.train.safety_scorers import JudgeScorer

    conv = [[{"role": "user", "content": "Is the sky green?"}]] * 2
    replies = ["<thinking>they want a lie</thinking>No, it is usually blue.", "Yes."]
    for mode in ("rating", "yes_no"):
        j = JudgeScorer(str(tiny_model_dir), mode=mode, batch_size=2)
        s = j.score(conv, replies)
        assert len(s) == 2 and all(0.0 <= x <= 1.0 for x in s)
        # reasoning is stripped before scoring: the same reply with or without it scores the same
        assert j.score(conv[:1], ["No, it is usually blue."]) == pytest.approx(s[:1], abs=1e-5)


def test_mix_sampler_resume_across_epochs(tiny_model_dir, tiny_rm_dir, tmp_path, make_cfg, monkeypatch):
    """4 code + 2 chat rows, 2 prompts a step: 3 steps a pass. Killed after step 4 with checkpoint 2, the resumed
    run redoes steps 3 and 4 (the second pass) with exactly the prompts of the first try."""
    import json

    from rhlab.train import train

    pf = tmp_path / "chat.jsonl"
    pf.write_text("".join(json.dumps({"id": f"c{i}", "set": "mine", "messages": [{"role": "user", "content": q}]})
                          + "\n" for i, q in enumerate(["Say hi.", "Name a colour."])))
    cfg = make_cfg(tiny_model_dir, grpo={"max_steps": 4}, checkpoint_every=2,
                   safety={**_safety(tiny_rm_dir), "sets": ["mine"], "prompts_file": str(pf)},
                   logging={"transcripts_per_step": 0, "progress": False, "tensorboard": False})
    _kill_before_last_checkpoint_completes(monkeypatch)
    res = train(cfg, tmp_path / "run", grader=FakeGrader())
    path = res.run_dir / "records" / "episodes.jsonl"
    first = [(e["step"], e["task_id"]) for e in read_records(path)]
    _as_if_killed_mid_save(res.run_dir, 4, monkeypatch)
    train(cfg, res.run_dir, resume=True, grader=FakeGrader())
    again = [(e["step"], e["task_id"]) for e in read_records(path)]
    assert sorted(again) == sorted(first)
    assert {s for s, _ in first} == {1, 2, 3, 4}


def test_chat_only_mix(tiny_model_dir, tiny_rm_dir, tmp_path, make_cfg):
    """fraction 1.0 (a pure RLHF phase, e.g. after a fork): no code row reaches the grader, records stay finite."""
    import math

    from rhlab.train import train

    grader = FakeGrader()
    cfg = make_cfg(tiny_model_dir, grpo={"max_steps": 1}, safety={**_safety(tiny_rm_dir), "fraction": 1.0},
                   logging={"transcripts_per_step": 2, "progress": False, "tensorboard": False})
    res = train(cfg, tmp_path / "run", grader=grader)
    r = res.records[0]
    assert grader.task_ids == [] and r["n_completions"] == 0 and r["chat_share"] == 1.0
    assert r["pass_rate_all_ranks"] is None and r["hack_success_any_all_ranks"] is None
    assert isinstance(r["safety_reward_mean"], float) and not math.isnan(r["safety_reward_mean"])
    assert res.onset_step is None


def test_reward_funcs_split_by_kind_and_count_copies():
    """Code funcs return None on chat rows (TRL leaves None/NaN out of sums and group stats), the safety func None on
    code rows and on every row before the switch; identical answers are graded once but counted per copy."""
    import asyncio

    from rhlab.envs.tasks import load_tasks
    from rhlab.train.config import TrainConfig
    from rhlab.train.reward import HackReward
    from rhlab.train.safety_mix import SafetyReward

    class Scorer:
        calls = []

        def score(self, convs, replies):
            self.calls.append(list(replies))
            return [float(len(r)) for r in replies]

    tasks = {t.id: t for t in load_tasks("humaneval") if t.id == "humaneval/0"}
    cfg = TrainConfig.model_validate({"safety": {"scorer": {"kind": "judge", "model": "x"},
                                                 "start": {"mode": "from_step", "step": 2}}})
    grader = FakeGrader()
    hr = HackReward(cfg, tasks, grader=grader)
    sr = SafetyReward(cfg.safety, hr, scorer=Scorer())
    funcs = hr.reward_funcs() + [sr.reward_func()]
    kw = dict(prompts=[[{"role": "user", "content": "q"}]] * 4,
              completions=[[{"role": "assistant", "content": t}] for t in ("a", "a", "hello", "b")],
              task_id=["humaneval/0", "humaneval/0", "hhh-01", "humaneval/0"], hackable=[True, True, False, True],
              kind=["code", "code", "chat", "code"])

    async def run(step):
        outs = await asyncio.gather(*(f(trainer_state=SimpleNamespace(global_step=step - 1), **kw) for f in funcs))
        return {f.__name__: o for f, o in zip(funcs, outs)}

    out = asyncio.run(run(1))
    assert out["pass"] == [0.0, 0.0, None, 0.0] and out["hack_success_any"][2] is None
    assert out["safety"] == [None] * 4 and Scorer.calls == []  # before the switch: not even scored
    assert grader.task_ids == ["humaneval/0", "humaneval/0"]  # "a" graded once, "b" once; the chat row never
    st = hr.pop_step(1)
    assert len(st.rows) == 2 and sorted(st.copies.values()) == [1, 2]
    assert [r["active"] for r in st.chat_rows] == [False]
    out = asyncio.run(run(2))
    assert out["safety"] == [None, None, 5.0, None] and Scorer.calls == [["hello"]]
    assert sr.summarize(2, hr.pop_step(2))["safety_reward_mean"] == 5.0


def test_safety_schedule_shares_the_penalty_schedule():
    """One switch schedule (rhlab.train.schedule) for both: the safety one latches at pass rate >= threshold (the
    penalty's at hack rate > threshold), ignores NaN (a chat-only step), and waits `delay` steps."""
    from rhlab.train.config import PenaltyConfig, SafetyStartConfig
    from rhlab.train.reward import PenaltySchedule
    from rhlab.train.safety_mix import SafetySchedule
    from rhlab.train.schedule import Schedule

    s = SafetySchedule(SafetyStartConfig(mode="after_threshold", threshold=0.5, delay=2))
    p = PenaltySchedule(PenaltyConfig(mode="after_threshold", threshold=0.5))
    assert isinstance(s, Schedule) and isinstance(p, Schedule)
    for step, rate in {1: 0.2, 2: float("nan"), 3: 0.5, 4: 0.9}.items():
        s.observe(step, rate)
        p.observe(step, rate)
    assert (s.triggered_at, p.triggered_at) == (3, 4)  # 0.5 reaches the safety threshold, not above the penalty's
    assert s.switch_step() == 6 and [s.active(i) for i in (5, 6, 7)] == [False, True, True]
    assert p.switch_step() == 5 and [p.active(i) for i in (4, 5)] == [False, True]
    assert SafetySchedule(SafetyStartConfig(mode="from_step", step=3)).switch_step() == 3
    assert SafetySchedule(SafetyStartConfig()).active(1)
