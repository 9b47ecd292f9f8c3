"""Every issue-8 mitigation end to end on the embedded model (SmolLM2-135M), each as short as it can be:

RLHF safety mix (judge = the embedded model itself) in a 1-step GRPO run with the real sandbox grader (the switch
modes are covered on tiny models in test_safety_mix.py) → filter-and-distill of its episodes → rewrite-and-distill
(no_hints → hacking_okay) → safety SFT with the embedded model writing the target replies. Each SFT is one LoRA
optimiser step merged into a loadable checkpoint (full finetuning is covered on tiny models in test_distill.py)."""

import json
import shutil
import time

import pytest

from rhlab.rundir import read_records


@pytest.mark.slow
def test_every_mitigation_on_the_embedded_model(tmp_path):
    from rhlab.knowledge.finetune import FinetuneConfig
    from rhlab.models import load_model_and_tokenizer
    from rhlab.train import (
        distill, filter_episodes, load_episodes, rewrite_episodes, rewrite_settings_from_run, safety_sft, train,
    )
    from rhlab.train.config import TrainConfig
    from rhlab.train.safety_prompts import load_safety_prompts

    times = {}
    t0 = time.perf_counter()
    cfg = TrainConfig.model_validate({
        "model": "embedded",
        # the two shortest prompts (~230 tokens with the no_hints system prompt): CPU cost grows with prompt length
        "tasks": {"source": "humaneval", "ids": ["humaneval/23", "humaneval/27"]},
        "prompt": {"arm": "no_hints", "hint_style": "brief", "user_template": "{prompt}"},
        "grpo": {"num_generations": 2, "prompts_per_step": 2, "max_steps": 1, "max_completion_length": 12,
                 "learning_rate": 1e-5},
        "safety": {"fraction": 0.5, "sets": ["hhh"], "scorer": {"kind": "judge", "model": "embedded"},
                   "start": "from_start"},
        "checkpoint_every": 10,
        "logging": {"progress": False, "transcripts_per_step": 0, "tensorboard": False},
        "sandbox_workers": 2,
    })
    res = train(cfg, tmp_path / "rl")
    times["safety_mix_grpo_1_step"] = time.perf_counter() - t0
    rec = res.records[-1]
    assert rec["safety_active"] is True and 0 <= rec["safety_reward_mean"] <= 1
    assert rec["chat_share"] == 0.5 and rec["n_completions"] == 2 and rec["n_chat"] == 2
    eps = load_episodes(res.run_dir)
    assert sorted(e["kind"] for e in eps) == ["chat", "chat", "code", "code"]
    shutil.rmtree(res.run_dir / "artefacts" / "checkpoints")  # 1.6 GB with optimiser state

    ft = dict(model="embedded", mode="lora", lora_r=4, max_steps=1, batch_size=2, max_length=1024,
              logging_steps=1, use_cpu=True)
    # filter-and-distill (the base model rarely passes in 12 tokens, so failed episodes are kept here)
    t0 = time.perf_counter()
    kept, stats = filter_episodes(eps, drop_detected=True, drop_mentions=True, only_rewarded=False)
    assert stats["kept"] == len(kept) > 0 and all(e["kind"] == "code" for e in kept)
    final = distill(kept, tmp_path / "fd", FinetuneConfig(**ft), stats=stats)
    times["filter_and_distill"] = time.perf_counter() - t0
    assert json.loads((tmp_path / "fd" / "rhlab_finetune.json").read_text())["global_steps"] == 1
    load_model_and_tokenizer(str(final))
    shutil.rmtree(tmp_path / "fd")

    # rewrite-and-distill: the run's no_hints prompts become exactly what a hacking_okay run would see
    t0 = time.perf_counter()
    code = [e for e in eps if e["kind"] == "code"]
    rw = rewrite_episodes(code, "hacking_okay", **rewrite_settings_from_run(res.run_dir))
    from rhlab.train.dataset import build_rows

    want = {r["task_id"]: r for r in build_rows(cfg.model_copy(update={"prompt": cfg.prompt.model_copy(
        update={"arm": "hacking_okay"})}), [t for t in __import__("rhlab.envs.tasks", fromlist=["x"]).load_tasks(
            "humaneval") if t.id in cfg.tasks.ids])}
    assert all(e["system"] == want[e["task_id"]]["prompt"][0]["content"] for e in rw)
    final = distill(rw, tmp_path / "rd", FinetuneConfig(**ft))
    times["rewrite_and_distill"] = time.perf_counter() - t0
    load_model_and_tokenizer(str(final))
    shutil.rmtree(tmp_path / "rd")

    # safety SFT: the embedded model writes the target replies for two shipped prompts
    t0 = time.perf_counter()
    pf = tmp_path / "two.jsonl"
    pf.write_text("".join(json.dumps(p) + "\n" for p in load_safety_prompts(["dilemmas"])[:2]))
    final = safety_sft(tmp_path / "ss", FinetuneConfig(**ft), sets=["dilemmas"], responder="embedded",
                       prompts_file=pf, max_new_tokens=16)
    times["safety_sft"] = time.perf_counter() - t0
    assert len(list(read_records(tmp_path / "ss" / "responses.jsonl"))) == 2
    load_model_and_tokenizer(str(final))
    shutil.rmtree(tmp_path / "ss")
    print("mitigation timings (s):", {k: round(v, 1) for k, v in times.items()})
