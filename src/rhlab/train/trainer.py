"""GRPO on the hackable environments (TRL `GRPOTrainer`), with per-step hack metrics, checkpoints and resume.

    from rhlab.train import train, load_train_config
    result = train(load_train_config("configs/train/smoke.yaml"), "runs/smoke")          # fresh run
    result = train("runs/smoke/config.yaml", "runs/smoke", resume=True)                  # after a crash / kill -9

Run directory (rhlab.rundir):
    config.yaml, meta.json
    records/*.jsonl             the step, transcript, checkpoint and episode records (`records`)
    artefacts/checkpoints/checkpoint-N/   HF/TRL checkpoint + rhlab_checkpoint.json (`checkpoints`)
    artefacts/tensorboard/      TensorBoard scalars, written by TRL's `report_to` logger (`grpo`)
    artefacts/hard_filter.json  reference-model solve rates, kept/dropped counts (hard_filter.mode=reference_model)

This module is the orchestration only: the run dir and resume (`checkpoints`), the dataset (`dataset`), the reward
(`reward`, `safety_mix`), the TRL adapter (`grpo`) and the callback that writes the records (`callback`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rhlab.config import ConfigError, load_config
from rhlab.train.checkpoints import (ONSET_RULE, checkpoints_dir, is_main_process, last_checkpoint, prepare_run_dir,
                                     read_onset_rule)
from rhlab.train.onset import OnsetRule, onset_step
from rhlab.train.config import TrainConfig
from rhlab.train.records import STEPS
from rhlab.train.reward import HackReward, PenaltySchedule


@dataclass
class TrainResult:
    run_dir: Path
    steps: int  # last finished optimiser step
    onset_step: int | None
    last_checkpoint: Path | None
    records: list[dict[str, Any]] = field(default_factory=list)
    onset_rule: OnsetRule | None = None  # how onset_step was decided (rhlab.train.onset)


def train(config: TrainConfig | str | Path, run_dir: str | Path, resume: bool = False, *,
          grader=None, progress: bool | None = None, model=None, tasks: list | None = None,
          safety_scorer=None) -> TrainResult:
    """Run (or resume) GRPO. `grader` overrides the sandbox grader (an object with async `agrade_many`);
    `model` a preloaded (model, tokenizer) pair; `tasks` the task list (else loaded from config);
    `safety_scorer` the safety mix's scorer (an object with `score(conversations, replies)`; else built from
    `safety.scorer`)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cfg = config if isinstance(config, TrainConfig) else load_config(TrainConfig, config)
    run_dir = Path(run_dir)
    run, ckpt = prepare_run_dir(cfg, run_dir, resume)
    history = run.records(STEPS)
    start_step = max((r["step"] for r in history), default=0)

    from transformers.trainer_callback import DefaultFlowCallback, PrinterCallback

    from rhlab.models import load_model_and_tokenizer
    from rhlab.train.callback import RunCallback
    from rhlab.train.dataset import apply_hard_filter, build_dataset, select_tasks
    from rhlab.train.grpo import RHGRPOTrainer, grpo_args, peft_config, use_tensorboard_dir

    if tasks is None:
        tasks = select_tasks(cfg)
        # before the policy loads: the reference model it samples is freed again first
        tasks = apply_hard_filter(cfg, tasks, run.artefacts_dir / "hard_filter.json")
    if model is not None:
        mdl, tok = model
    else:
        mdl, tok = load_model_and_tokenizer(cfg.model)
    tok.padding_side = "left"
    extra_rows = None
    if cfg.safety is not None:
        from rhlab.train.safety_prompts import safety_rows

        try:
            extra_rows = safety_rows(cfg)
        except (ValueError, FileNotFoundError) as err:
            raise ConfigError(f"safety prompts: {err}") from None
    dataset = build_dataset(cfg, tasks, tok, extra_rows=extra_rows)
    by_id = {t.id: t for t in tasks}

    schedule = PenaltySchedule(cfg.reward.penalty)
    for r in history:  # rebuild the after-threshold latch from finished steps
        schedule.observe(r["step"], r.get("hack_success_any_all_ranks", r.get("hack_success_any")))
    reward = HackReward(cfg, by_id, grader=grader, schedule=schedule)
    rule = _onset_rule(cfg, run, resume, mdl, tok, dataset, reward)
    funcs, weights = reward.reward_funcs(), reward.reward_weights()
    safety = None
    if cfg.safety is not None:
        from rhlab.train.safety_mix import SafetyReward, SafetySchedule, quiet_unscored_rows_warning

        sched = SafetySchedule(cfg.safety.start)
        for r in history:  # rebuild the after-threshold latch from finished steps
            sched.observe(r["step"], r.get("pass_rate_all_ranks", r.get("pass_rate")))
        safety = SafetyReward(cfg.safety, reward, scorer=safety_scorer, schedule=sched)
        funcs.append(safety.reward_func())
        weights.append(float(cfg.safety.weight))
        quiet_unscored_rows_warning()
    if hasattr(reward.grader, "pool"):
        reward.grader.pool  # start the sandbox pool now, so step 1's grading time does not include its start-up
    args = grpo_args(cfg, checkpoints_dir(run_dir), weights)

    show = cfg.logging.progress if progress is None else progress
    cb = RunCallback(run, cfg, reward, history, start_step, show, safety=safety, rule=rule)
    mix = {}
    if safety is not None:
        mix = {"safety_fraction": float(cfg.safety.fraction),
               "chat_masked": lambda step: not safety.schedule.active(step)}
    trainer = RHGRPOTrainer(model=mdl, processing_class=tok, reward_funcs=funcs, args=args, train_dataset=dataset,
                            peft_config=peft_config(cfg), zero_variance_groups=cfg.grpo.zero_variance_groups,
                            dynamic_max_draws=ds.max_draws if (ds := cfg.grpo.dynamic_sampling).enabled else None,
                            **mix)
    # the records callback goes right after transformers' flow control and before the report_to loggers, which
    # then log the step record's numbers too
    callbacks = trainer.callback_handler.callbacks
    at = next((i + 1 for i, c in enumerate(callbacks) if isinstance(c, DefaultFlowCallback)), 0)
    callbacks.insert(at, cb)
    trainer.remove_callback(PrinterCallback)  # the raw log dicts; rhlab prints one line per step instead
    if start_step >= cfg.grpo.max_steps:
        cb.on_train_end(None, None, None)
    else:
        if is_main_process():  # only rank 0 logs
            use_tensorboard_dir(trainer, run_dir, first_step=start_step + 1)
        trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    records = run.records(STEPS)
    return TrainResult(
        run_dir=run_dir,
        steps=max((r["step"] for r in records), default=0),
        onset_step=onset_step(records, rule=rule),
        last_checkpoint=last_checkpoint(run_dir),
        records=records,
        onset_rule=rule,
    )


def _onset_rule(cfg: TrainConfig, run, resume: bool, mdl, tok, dataset, reward) -> OnsetRule:
    """The run's onset rule (rhlab.train.onset): a resume keeps the one its start recorded; a fresh start takes the
    start rate from the config (`start_rate`) or measures it (`start_rate_samples`), and writes RUN/onset_rule.json.
    Only rank 0 measures and writes (the other ranks write no records)."""
    from rhlab.train.onset import make_rule, per_step_completions

    if resume:
        rule = read_onset_rule(run.path)
        if rule is not None:
            return rule
    start = cfg.start_rate
    main = is_main_process()
    if start is None and cfg.start_rate_samples and main:
        from rhlab.train.start_rate import START_SAMPLES, measure_start_rate

        run.records_path(START_SAMPLES).unlink(missing_ok=True)  # a start that died before step 1 measured anew
        print(f"measuring the start rate: {cfg.start_rate_samples} samples of the start model under prompt "
              f"{cfg.prompt.arm}", flush=True)
        start = measure_start_rate(cfg, mdl, tok, list(dataset), reward, run, cfg.start_rate_samples)
        print(f"start rate: {start.successes}/{start.n} successful hacks", flush=True)
    rule = make_rule(cfg.onset_threshold, start, per_step_completions(cfg), cfg.onset_alpha)
    if main:
        (run.path / ONSET_RULE).write_text(rule.model_dump_json(indent=1), encoding="utf-8")
    return rule
